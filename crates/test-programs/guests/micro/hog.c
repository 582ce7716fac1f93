/* Takes memory 16 KiB at a time until the runtime refuses more, says how much it
   got, then exits 0: its memory cap holds and it goes on running. */
#include <stdio.h>
#include <stdlib.h>

/* Where each block goes, so that the compiler keeps every allocation. */
static char *volatile last;

int main(void) {
    size_t got = 0;
    for (;;) {
        char *block = malloc(16 * 1024);
        if (block == NULL)
            break;
        block[16 * 1024 - 1] = 1;
        last = block;
        got += 16;
    }
    printf("hog: got %zu KiB, then was refused\n", got);
    return 0;
}
