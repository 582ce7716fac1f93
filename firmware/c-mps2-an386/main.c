/* A C firmware on wedge-micro's C API (docs/micro.md), for QEMU's MPS2 AN386: runs the
   bundle QEMU loaded at 0x00200000 to its end, then goes through the rest of the API
   (each app's outcome, a second load refused whole, a start and a stop by name, an
   unknown name) and reports whether freeing the runtime gives its heap back. Exit status
   (semihosting) 0 when the bundle ran, 1 when it was refused. The end-to-end tests in
   crates/wedge/tests/e2e/micro.rs boot it. */
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include "board.h"
#include "wedge_micro.h"

/* Where QEMU's `-device loader` puts the bundle, and the most it may take there. */
#define BUNDLE ((const uint8_t *)0x00200000u)
#define BUNDLE_MAX 0x00200000u

/* Writes a line of the firmware's on the console. */
static void say(const char *format, ...) {
    char line[256];
    int len = snprintf(line, sizeof line, "c-firmware: ");
    va_list args;
    va_start(args, format);
    len += vsnprintf(line + len, sizeof line - (size_t)len - 1, format, args);
    va_end(args);
    if (len > (int)sizeof line - 2) {
        len = (int)sizeof line - 2;
    }
    line[len++] = '\n';
    uart_write((const uint8_t *)line, (size_t)len);
}

void wedge_micro_abort(const char *message) {
    say("abort: %s", message);
    semihosting_exit(0);
}

/* Prints how the last run of the app `name` ended. */
static void report(wedge_micro_t *rt, const char *name) {
    wedge_micro_outcome_t outcome;
    int32_t status = wedge_micro_outcome(rt, name, &outcome);
    if (status != WEDGE_MICRO_OK) {
        say("no outcome for `%s`: %s", name, wedge_micro_last_error(rt));
        return;
    }
    switch (outcome.end) {
    case WEDGE_MICRO_END_NONE:
        say("`%s` is running", name);
        break;
    case WEDGE_MICRO_END_EXITED:
        say("`%s` exited with %ld", name, (long)outcome.exit_code);
        break;
    case WEDGE_MICRO_END_OUT_OF_FUEL:
        say("`%s` ran out of fuel", name);
        break;
    case WEDGE_MICRO_END_FAILED:
        say("`%s` failed: %s", name, outcome.message);
        break;
    case WEDGE_MICRO_END_STOPPED:
        say("`%s` was stopped", name);
        break;
    default:
        say("`%s` ended in an unknown way (%ld)", name, (long)outcome.end);
    }
}

int main(void) {
    board_init();
    size_t heap_before = (size_t)mallinfo().uordblks;
    wedge_micro_t *rt;
    int32_t status = wedge_micro_new(&BOARD, &rt);
    if (status != WEDGE_MICRO_OK) {
        say("cannot build the runtime (%ld)", (long)status);
        return 1;
    }
    int32_t apps = wedge_micro_load_bundle(rt, BUNDLE, BUNDLE_MAX);
    if (apps < 0) {
        say("cannot load the bundle (%ld): %s; %lu apps", (long)apps, wedge_micro_last_error(rt),
            (unsigned long)wedge_micro_app_count(rt));
        wedge_micro_free(rt);
        return 1;
    }
    say("loaded %ld apps", (long)apps);
    wedge_micro_start_all(rt);
    wedge_micro_run(rt);
    for (size_t i = 0; i < wedge_micro_app_count(rt); i++) {
        report(rt, wedge_micro_app_name(rt, i));
    }

    status = wedge_micro_load_bundle(rt, BUNDLE, BUNDLE_MAX);
    say("loading it again: %ld (%s), %lu apps", (long)status, wedge_micro_last_error(rt),
        (unsigned long)wedge_micro_app_count(rt));
    /* The first app again, stopped after its first turn. */
    const char *first = wedge_micro_app_name(rt, 0);
    say("starting `%s` again: %ld", first, (long)wedge_micro_start(rt, first));
    wedge_micro_step(rt);
    report(rt, first);
    say("stopping `%s`: %ld", first, (long)wedge_micro_stop(rt, first));
    report(rt, first);
    status = wedge_micro_start(rt, "no-such-app");
    say("starting `no-such-app`: %ld (%s)", (long)status, wedge_micro_last_error(rt));

    wedge_micro_free(rt);
    size_t heap_after = (size_t)mallinfo().uordblks;
    /* A second runtime, the bundle loaded, freed: what stays is wasmtime's once-made
       registry of code (a few hundred bytes), the same after every runtime. */
    if (wedge_micro_new(&BOARD, &rt) == WEDGE_MICRO_OK) {
        wedge_micro_load_bundle(rt, BUNDLE, BUNDLE_MAX);
        wedge_micro_free(rt);
    }
    say("heap in use: %lu B before the runtime, %lu B after wedge_micro_free, %lu B after a "
        "second one",
        (unsigned long)heap_before, (unsigned long)heap_after,
        (unsigned long)mallinfo().uordblks);
    say("RAM static %lu B, heap peak %lu B, stack peak %lu B", (unsigned long)ram_statics(),
        (unsigned long)ram_heap_peak(), (unsigned long)ram_stack_peak());
    return 0;
}
