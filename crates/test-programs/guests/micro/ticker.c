/* Prints `NAME tick I` COUNT times (its first argument, 5 by default), sleeping
   10 ms between ticks (poll_oneoff on a clock), then exits 0: two tickers
   interleave on one core. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    int count = argc > 1 ? atoi(argv[1]) : 5;
    struct timespec pause = {0, 10 * 1000 * 1000};
    for (int i = 0; i < count; i++) {
        printf("%s tick %d\n", argv[0], i);
        nanosleep(&pause, NULL);
    }
    return 0;
}
