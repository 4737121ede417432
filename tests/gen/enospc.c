/*
 * enospc.c - LD_PRELOAD shim for the disk-full tests: write(2) to any file descriptor above 2
 * fails with ENOSPC once MP_ENOSPC_AFTER bytes have gone through. The crash-safety test runs
 * convert and split under it and expects exit 5, the file and the byte counts named, and no
 * output left behind.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

ssize_t write(int fd, const void *buf, size_t n);

ssize_t write(int fd, const void *buf, size_t n)
{
    static ssize_t (*real)(int, const void *, size_t);
    static long long budget = -2;
    if (!real) real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    if (budget == -2) {
        const char *s = getenv("MP_ENOSPC_AFTER");
        budget = s ? atoll(s) : -1;
    }
    if (fd > 2 && budget >= 0) {
        if ((long long)n > budget) {
            if (budget == 0) {
                errno = ENOSPC;
                return -1;
            }
            n = (size_t)budget;
        }
        ssize_t w = real(fd, buf, n);
        if (w > 0) budget -= w;
        return w;
    }
    return real(fd, buf, n);
}
