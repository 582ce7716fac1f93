/* `files read PATH` / `files write PATH TEXT`, from C: prints `ok ...` or `error: ...`
 * (exit status 1), like the Rust guest of the same name. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

static int fail(const char *path) {
    printf("error: %s: %s\n", path, strerror(errno));
    return 1;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "read") == 0) {
        FILE *f = fopen(argv[2], "r");
        if (!f) return fail(argv[2]);
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
        fclose(f);
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "write") == 0) {
        FILE *f = fopen(argv[2], "w");
        if (!f) return fail(argv[2]);
        fputs(argv[3], f);
        if (fclose(f) != 0) return fail(argv[2]);
        printf("ok wrote %s\n", argv[2]);
        return 0;
    }
    puts("usage: files read PATH | files write PATH TEXT");
    return 2;
}
