// Replacement for Debian wasi-libc (2022-05)'s crt1-command.o. Calling
// __wasm_call_ctors explicitly stops wasm-ld from wrapping every other export
// (cabi_realloc!) in ctors/dtors, which breaks component-model calls.
#include <wasi/api.h>
extern void __wasm_call_ctors(void);
extern void __wasm_call_dtors(void);
extern int __main_void(void);

__attribute__((export_name("_start")))
void _start(void) {
    __wasm_call_ctors();
    int r = __main_void();
    __wasm_call_dtors();
    if (r != 0) __wasi_proc_exit(r);
}
