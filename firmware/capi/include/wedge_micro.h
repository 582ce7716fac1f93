/*
 * wedge_micro.h: wedge-micro's C API, to run Wasm apps on a microcontroller from C
 * firmware (Zephyr, FreeRTOS, bare metal). Link with libwedge_micro.a, built by
 * scripts/micro.sh for thumbv7em-none-eabi (Cortex-M4/M7, the soft-float ABI: compile
 * C with -mfloat-abi=soft, or softfp on a core with an FPU). docs/micro.md has the rest.
 *
 * Apps come in a bundle made on the host by `wedge micro bundle`: Pulley code compiled
 * for exactly this runtime, each app's memory cap, fuel budget, restarts, arguments,
 * environment and messaging grants, and sha256 digests the runtime checks before it
 * runs anything. The apps run on the thread that calls wedge_micro_step or
 * wedge_micro_run, in turns, each in its own store.
 *
 * What the firmware provides:
 *   - malloc, realloc and free (the C library's), 8-byte aligned: every byte the
 *     runtime and its apps use comes from this heap (about 130 KiB per running app).
 *   - void wedge_micro_abort(const char *message): called on a bug in the runtime, or
 *     when malloc fails (never because of what an app does); reports the message and
 *     stops or resets the device; must not return.
 * What the library provides besides the functions below: wasmtime_tls_get and
 * wasmtime_tls_set, as two statics, so one thread at a time may use wedge-micro.
 *
 * Every function checks its pointers for NULL (WEDGE_MICRO_E_INVALID). Functions that
 * fail return a negative status and keep a message for wedge_micro_last_error.
 */
#ifndef WEDGE_MICRO_H
#define WEDGE_MICRO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Statuses. */
#define WEDGE_MICRO_OK 0
/* The engine could not be built. */
#define WEDGE_MICRO_E_ENGINE (-1)
/* An app's code is not this runtime's (another wasmtime, target or settings). */
#define WEDGE_MICRO_E_CODE (-2)
/* An app cannot be linked: an import the runtime lacks, no _start, a name taken. */
#define WEDGE_MICRO_E_LINK (-3)
/* An app cannot be instantiated. */
#define WEDGE_MICRO_E_INSTANTIATE (-4)
/* Not a bundle, not 16-byte aligned, or tampered with (a digest does not match). */
#define WEDGE_MICRO_E_BUNDLE (-5)
/* No app has that name. */
#define WEDGE_MICRO_E_NOT_FOUND (-6)
/* A NULL pointer, a board with a function missing, or a name that is not UTF-8. */
#define WEDGE_MICRO_E_INVALID (-7)

/* The board's services to apps, each called with ctx, from the thread running the
 * apps. All five are required. */
typedef struct wedge_micro_board {
    void *ctx;
    /* Writes an app's stdout/stderr, or a line of the runtime's, on the console. */
    void (*console)(void *ctx, const uint8_t *bytes, size_t len);
    /* Nanoseconds since the board started (monotonic). */
    uint64_t (*monotonic_ns)(void *ctx);
    /* Nanoseconds since the Unix epoch, as well as the board knows. */
    uint64_t (*realtime_ns)(void *ctx);
    /* Fills buf with random bytes (the board's best source). */
    void (*random)(void *ctx, uint8_t *buf, size_t len);
    /* Waits for the next timer tick or interrupt: every app is asleep. */
    void (*idle)(void *ctx);
} wedge_micro_board_t;

/* A runtime: the apps of a device and the engine they run in. */
typedef struct wedge_micro wedge_micro_t;

/* How an app's last run ended. */
typedef enum wedge_micro_end {
    WEDGE_MICRO_END_NONE = 0,        /* running, or never started */
    WEDGE_MICRO_END_EXITED = 1,      /* _start returned or proc_exit: exit_code */
    WEDGE_MICRO_END_OUT_OF_FUEL = 2, /* its fuel budget ran out */
    WEDGE_MICRO_END_FAILED = 3,      /* trapped, or could not start: message */
    WEDGE_MICRO_END_STOPPED = 4,     /* wedge_micro_stop */
} wedge_micro_end_t;

typedef struct wedge_micro_outcome {
    /* A wedge_micro_end_t (a fixed-size field: enums' sizes vary with -fshort-enums). */
    int32_t end;
    int32_t exit_code;
    /* Why it failed ("" otherwise); valid until the next call on the runtime. */
    const char *message;
} wedge_micro_outcome_t;

/* Builds a runtime for apps on *board (copied; its functions must stay callable until
 * wedge_micro_free). On success *out is the runtime. */
int32_t wedge_micro_new(const wedge_micro_board_t *board, wedge_micro_t **out);

/* Checks the bundle at bytes (16-byte aligned; trailing bytes after it are ignored) and
 * adds its apps, all or none. The bytes must stay there, unchanged, until
 * wedge_micro_free: the apps' code runs in place (flash, or RAM). Returns the number
 * of apps added, or a negative status. */
int32_t wedge_micro_load_bundle(wedge_micro_t *rt, const uint8_t *bytes, size_t len);

/* The number of apps, and the name of app index (NULL past the last; valid until
 * wedge_micro_free). */
size_t wedge_micro_app_count(const wedge_micro_t *rt);
const char *wedge_micro_app_name(const wedge_micro_t *rt, size_t index);

/* Starts every app not running; starts the app name (again if it ended, its restart
 * count anew); stops it where it is, freeing its memory. */
int32_t wedge_micro_start_all(wedge_micro_t *rt);
int32_t wedge_micro_start(wedge_micro_t *rt, const char *name);
int32_t wedge_micro_stop(wedge_micro_t *rt, const char *name);

/* Gives each running app one turn (until it yields after a slice of fuel, sleeps or
 * ends; ended apps restart as their bundle says). Returns 1 while any app runs. */
int32_t wedge_micro_step(wedge_micro_t *rt);

/* Runs the apps until none runs, calling the board's idle while every app sleeps. */
int32_t wedge_micro_run(wedge_micro_t *rt);

/* How the last run of the app name ended, in *out. */
int32_t wedge_micro_outcome(wedge_micro_t *rt, const char *name, wedge_micro_outcome_t *out);

/* The last error's message ("" if none); valid until the next call on the runtime. */
const char *wedge_micro_last_error(const wedge_micro_t *rt);

/* Frees the runtime and every app's memory; apps still running end without a word. */
void wedge_micro_free(wedge_micro_t *rt);

/* Provided by the firmware: see above. Must not return. */
void wedge_micro_abort(const char *message) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* WEDGE_MICRO_H */
