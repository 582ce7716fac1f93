/* A WASI reactor, as ITK-Wasm ships its programs: built with -mexec-model=reactor,
 * it exports `_initialize` (which runs the constructors) and a default export `""`
 * instead of `_start`. It prints whether its constructor ran before the default
 * export. */
#include <stdio.h>

static const char *state = "not initialized";

__attribute__((constructor)) static void init(void) { state = "initialized"; }

__attribute__((export_name(""))) void run(void) {
    printf("reactor %s\n", state);
}
