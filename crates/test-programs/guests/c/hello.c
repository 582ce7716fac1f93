/* Prints a greeting, from C (clang-16 + wasi-libc). */
#include <stdio.h>

int main(void) {
    puts("hello from C on wedge");
    return 0;
}
