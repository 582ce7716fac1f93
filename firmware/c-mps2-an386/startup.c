/* Reset and exceptions of the C firmware, the C library's heap (_sbrk) and the RAM it
   measures: no vendor startup code, so that everything it runs on is in this folder. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "board.h"

extern uint32_t __data_start, __data_end, __data_load, __bss_start, __bss_end;
extern uint8_t __heap_start, __stack_limit, __stack_top;

int main(void);
void SysTick_Handler(void);

/* What the unused main stack is painted with. */
#define PAINT 0xA5A5A5A5u

static uint8_t *heap_break = &__heap_start;

/* newlib's malloc grows its heap here, up to the main stack. */
void *_sbrk(ptrdiff_t increment) {
    uint8_t *old = heap_break;
    if (increment > &__stack_limit - heap_break || increment < &__heap_start - heap_break) {
        errno = ENOMEM;
        return (void *)-1;
    }
    heap_break += increment;
    return old;
}

/* The rest of what newlib's stdio asks of the system: its output on UART0, no files. */
int _write(int fd, const char *bytes, int len) {
    (void)fd;
    uart_write((const uint8_t *)bytes, (size_t)len);
    return len;
}

int _read(int fd, char *bytes, int len) {
    (void)fd, (void)bytes, (void)len;
    errno = ENOSYS;
    return -1;
}

int _close(int fd) {
    (void)fd;
    errno = ENOSYS;
    return -1;
}

long _lseek(int fd, long offset, int whence) {
    (void)fd, (void)offset, (void)whence;
    errno = ENOSYS;
    return -1;
}

struct stat;
int _fstat(int fd, struct stat *st) {
    (void)fd, (void)st;
    errno = ENOSYS;
    return -1;
}

int _isatty(int fd) { return fd <= 2; }

size_t ram_statics(void) { return (size_t)(&__heap_start - (uint8_t *)0x20000000); }

size_t ram_heap_peak(void) { return (size_t)(heap_break - &__heap_start); }

size_t ram_stack_peak(void) {
    const uint32_t *at = (const uint32_t *)&__stack_limit;
    while (at < (const uint32_t *)&__stack_top && *at == PAINT) {
        at++;
    }
    return (size_t)((const uint8_t *)&__stack_top - (const uint8_t *)at);
}

void reset(void) {
    memcpy(&__data_start, &__data_load, (size_t)((uint8_t *)&__data_end - (uint8_t *)&__data_start));
    memset(&__bss_start, 0, (size_t)((uint8_t *)&__bss_end - (uint8_t *)&__bss_start));
    /* Paint the stack below this frame (memset's own frame is above the mark). */
    uint32_t here;
    for (uint32_t *at = (uint32_t *)&__stack_limit; at + 64 < &here; at++) {
        *at = PAINT;
    }
    semihosting_exit(main() == 0);
}

static void fault(void) {
    static const char line[] = "c-firmware: fault\n";
    uart_write((const uint8_t *)line, sizeof line - 1);
    semihosting_exit(0);
}

void semihosting_exit(int ok) {
    /* SYS_EXIT with ADP_Stopped_ApplicationExit or ADP_Stopped_RunTimeErrorUnknown. */
    register uint32_t op __asm__("r0") = 0x18;
    register uint32_t reason __asm__("r1") = ok ? 0x20026 : 0x20023;
    __asm__ volatile("bkpt 0xAB" : : "r"(op), "r"(reason) : "memory");
    for (;;) {
    }
}

/* The Cortex-M vector table: the initial stack pointer, then the exceptions. */
__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))&__stack_top,
    reset,
    fault, /* NMI */
    fault, /* HardFault */
    fault, /* MemManage */
    fault, /* BusFault */
    fault, /* UsageFault */
    0, 0, 0, 0,
    fault, /* SVCall */
    fault, /* DebugMonitor */
    0,
    fault, /* PendSV */
    SysTick_Handler,
};
