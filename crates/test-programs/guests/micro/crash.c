/* Says so, then traps (an unreachable instruction). */
#include <stdio.h>

int main(void) {
    puts("crash: about to trap");
    fflush(stdout);
    __builtin_trap();
}
