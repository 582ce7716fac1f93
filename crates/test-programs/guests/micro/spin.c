/* Says so, then loops forever without calling the host: only a fuel budget
   stops it. */
#include <stdio.h>

int main(void) {
    puts("spin: looping");
    fflush(stdout);
    volatile unsigned long n = 0;
    for (;;)
        n++;
}
