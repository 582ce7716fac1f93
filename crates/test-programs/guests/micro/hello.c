/* Greets its arguments: the same core module under `wedge run` and on a
   microcontroller (wedge-micro). */
#include <stdio.h>

int main(int argc, char **argv) {
    printf("hello from %s", argv[0]);
    for (int i = 1; i < argc; i++)
        printf(" %s", argv[i]);
    printf("\n");
    return 0;
}
