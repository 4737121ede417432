/*
 * fuzz_common.c - see fuzz_common.h.
 */
#define _GNU_SOURCE
#include "fuzz_common.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* The scratch directory goes when the fuzzer exits normally (on /dev/shm it holds memory). */
static void remove_dir(void)
{
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_dir(void)
{
    if (!dir[0]) {
        /* Memory-backed when the machine has /dev/shm: every exec writes and reopens its input,
         * and on a disk file system that costs 15x the parsing (1.2k against 22k execs/s). */
        const char *base = getenv("MP_FUZZ_TMPDIR");
        if (!base || !*base) base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/modelprep-fuzz-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(dir)) abort();
        atexit(remove_dir);
    }
    return dir;
}

const char *fuzz_put(const char *name, const uint8_t *data, size_t size)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) abort();
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) abort();
        done += (size_t)w;
    }
    close(fd);
    return path;
}
