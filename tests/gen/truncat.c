/*
 * truncat.c - LD_PRELOAD shim that cuts a file short while it is mapped: the first mmap(2) of a
 * file whose path contains MP_TRUNC_AT truncates that file to MP_TRUNC_TO bytes (default 0)
 * right after mapping it, as another process rewriting a checkpoint mid-run would. The mapped
 * pages past the new end are gone: the next read of them faults (SIGBUS), which modelprep must
 * report in one line naming the file (tests/cli/input_cut_short_while_mapped_is_named.sh).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    static void *(*real)(void *, size_t, int, int, int, off_t);
    static int done;
    if (!real) real = (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, "mmap");
    void *p = real(addr, len, prot, flags, fd, off);
    const char *at = getenv("MP_TRUNC_AT"), *to = getenv("MP_TRUNC_TO");
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = p != MAP_FAILED && fd >= 0 && at && !done ? readlink(link, path, sizeof path - 1) : -1;
    if (n > 0) {
        path[n] = '\0';
        if (strstr(path, at)) {
            done = 1;
            if (truncate(path, to ? atoll(to) : 0) != 0) perror("truncat");
        }
    }
    return p;
}
