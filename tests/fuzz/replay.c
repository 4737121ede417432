/*
 * replay.c - runs a harness over every file of the given corpus directories, without libFuzzer
 * (zstd's regression_driver.c): `make test` replays the checked-in corpus with the ordinary and
 * the sanitizer builds.
 */
#include "fuzz_common.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int main(int argc, char **argv)
{
    size_t runs = 0;
    for (int i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (!d) {
            fprintf(stderr, "replay: cannot open %s\n", argv[i]);
            return 1;
        }
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            FILE *f = fopen(path, "rb");
            if (!f) continue;
            fseek(f, 0, SEEK_END);
            long n = ftell(f);
            fseek(f, 0, SEEK_SET);
            uint8_t *buf = malloc((size_t)n + 1);
            size_t got = fread(buf, 1, (size_t)n, f);
            fclose(f);
            LLVMFuzzerTestOneInput(buf, got);
            free(buf);
            runs++;
        }
        closedir(d);
    }
    printf("replay: %zu inputs, no crash\n", runs);
    return 0;
}
