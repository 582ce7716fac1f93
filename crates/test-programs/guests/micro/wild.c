/* Hands the host addresses outside its memory, as a hostile app would. Each WASI call
   answers EFAULT (21) and the app goes on: it prints each call's errno (run it with an
   environment, so that environ_get has something to write). Then it
   publishes a topic from outside its memory, which the canonical ABI answers with a
   trap: the run fails, the device goes on. */
#include <stdint.h>
#include <stdio.h>

#define WASI(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(name)))

WASI("fd_write") int32_t raw_fd_write(int32_t fd, int32_t iovs, int32_t count, int32_t written);
WASI("args_sizes_get") int32_t raw_args_sizes_get(int32_t count, int32_t size);
WASI("args_get") int32_t raw_args_get(int32_t ptrs, int32_t buf);
WASI("environ_get") int32_t raw_environ_get(int32_t ptrs, int32_t buf);
WASI("random_get") int32_t raw_random_get(int32_t buf, int32_t len);
WASI("clock_time_get") int32_t raw_clock_time_get(int32_t id, int64_t precision, int32_t out);
WASI("poll_oneoff") int32_t raw_poll_oneoff(int32_t subs, int32_t events, int32_t count,
                                            int32_t out);

__attribute__((import_module("wedge:edge/messaging@0.1.0"), import_name("publish")))
void raw_publish(int32_t topic, int32_t topic_len, int32_t payload, int32_t payload_len,
                 int32_t qos, int32_t ret);

/* Near the top of the 32-bit address space: an address plus a length wraps around. */
#define WILD ((int32_t)0xFFFFFFF0u)

static uint32_t iov[2];
static uint32_t result;
/* One clock subscription (48 bytes): userdata, tag 0, clock 1, timeout 0. */
static uint8_t sub[48] = {[8] = 0, [16] = 1};
static uint8_t ret[32];

static void report(const char *call, int32_t errno_) { printf("wild: %s %ld\n", call, (long)errno_); }

int main(void) {
    int32_t end = (int32_t)(__builtin_wasm_memory_size(0) * 65536);
    report("fd_write-iovs", raw_fd_write(1, WILD, 1, (int32_t)&result));
    iov[0] = (uint32_t)WILD;
    iov[1] = 64;
    report("fd_write-buffer", raw_fd_write(1, (int32_t)iov, 1, (int32_t)&result));
    iov[1] = 0;
    report("fd_write-written", raw_fd_write(1, (int32_t)iov, 1, WILD));
    /* Two iovs from the memory's last 8 bytes: the second is past its end. */
    report("fd_write-end", raw_fd_write(1, end - 8, 2, (int32_t)&result));
    report("args_sizes_get", raw_args_sizes_get(WILD, WILD));
    report("args_get", raw_args_get(WILD, WILD));
    report("environ_get", raw_environ_get(end, end));
    report("random_get", raw_random_get(WILD, 64));
    report("random_get-end", raw_random_get(end - 8, 16));
    report("clock_time_get", raw_clock_time_get(1, 0, end - 4));
    report("poll_oneoff-subs", raw_poll_oneoff(WILD, (int32_t)ret, 1, (int32_t)&result));
    report("poll_oneoff-events", raw_poll_oneoff((int32_t)sub, WILD, 1, (int32_t)&result));
    puts("wild: publishing from outside memory");
    fflush(stdout);
    raw_publish(WILD, 64, 0, 0, 0, (int32_t)ret);
    puts("wild: still running");
    return 0;
}
