/*
 * enospc.c - LD_PRELOAD shim for the disk-full tests: write(2) and copy_file_range(2) to any file
 * descriptor above 2 fail with ENOSPC once MP_ENOSPC_AFTER bytes have gone through. The crash-safety test runs
 * convert and split under it and expects exit 5, the file and the byte counts named, and no
 * output left behind.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

ssize_t write(int fd, const void *buf, size_t n);
ssize_t copy_file_range(int in, off64_t *in_off, int out, off64_t *out_off, size_t n, unsigned flags);

static long long budget = -2; /* bytes left before ENOSPC; -1: no limit */

/* How many of n bytes to let through to fd; 0 with errno ENOSPC when none. */
static size_t allow(int fd, size_t n)
{
    if (budget == -2) {
        const char *s = getenv("MP_ENOSPC_AFTER");
        budget = s ? atoll(s) : -1;
    }
    if (fd <= 2 || budget < 0 || (long long)n <= budget) return n;
    if (budget == 0) errno = ENOSPC;
    return (size_t)budget;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    static ssize_t (*real)(int, const void *, size_t);
    if (!real) real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    size_t ok = allow(fd, n);
    if (n > 0 && ok == 0) return -1;
    ssize_t w = real(fd, buf, ok);
    if (w > 0 && fd > 2 && budget > 0) budget -= w;
    return w;
}

ssize_t copy_file_range(int in, off64_t *in_off, int out, off64_t *out_off, size_t n, unsigned flags)
{
    static ssize_t (*real)(int, off64_t *, int, off64_t *, size_t, unsigned);
    if (!real) real = (ssize_t(*)(int, off64_t *, int, off64_t *, size_t, unsigned))dlsym(RTLD_NEXT, "copy_file_range");
    size_t ok = allow(out, n);
    if (n > 0 && ok == 0) return -1;
    ssize_t w = real(in, in_off, out, out_off, ok, flags);
    if (w > 0 && out > 2 && budget > 0) budget -= w;
    return w;
}
