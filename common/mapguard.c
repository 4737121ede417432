/*
 * mapguard.c - input files mapped for reading, noted so that a fault on a page the file lost
 * since (it was cut short while mapped: SIGBUS) names that file in one line instead of a crash
 * (doc/safety.md, "Inputs that change while read").
 *
 * A fixed table of slots, written with atomics and read by the signal handler, which may not
 * lock or allocate. A mapping that finds no free slot is still made; a fault there is reported
 * without the file's name.
 */
#define _GNU_SOURCE /* MAP_POPULATE */
#include "mp_common.h"

#include <sys/mman.h>

#define SLOTS 256

static struct {
    uintptr_t start;  /* 0: free */
    size_t len;
    const char *path; /* the caller's, valid until mp_unmap */
} slots[SLOTS];

void *mp_map_file(int fd, uint64_t at, size_t len, int populate, const char *path)
{
    void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | (populate ? MAP_POPULATE : 0), fd, (off_t)at);
    if (p == MAP_FAILED) return NULL;
    for (size_t i = 0; i < SLOTS; i++) {
        uintptr_t none = 0;
        if (__atomic_load_n(&slots[i].start, __ATOMIC_RELAXED) != 0) continue;
        /* claimed with a marker first, so that the handler never sees a start without its path */
        if (!__atomic_compare_exchange_n(&slots[i].start, &none, (uintptr_t)1, 0, __ATOMIC_ACQ_REL,
                                         __ATOMIC_RELAXED))
            continue;
        slots[i].len = len;
        slots[i].path = path;
        __atomic_store_n(&slots[i].start, (uintptr_t)p, __ATOMIC_RELEASE);
        break;
    }
    return p;
}

void mp_unmap(void *p, size_t len)
{
    if (!p) return;
    for (size_t i = 0; i < SLOTS; i++)
        if (__atomic_load_n(&slots[i].start, __ATOMIC_ACQUIRE) == (uintptr_t)p) {
            __atomic_store_n(&slots[i].start, (uintptr_t)0, __ATOMIC_RELEASE);
            break;
        }
    munmap(p, len);
}

const char *mp_map_owner(const void *addr)
{
    uintptr_t a = (uintptr_t)addr;
    for (size_t i = 0; i < SLOTS; i++) {
        uintptr_t s = __atomic_load_n(&slots[i].start, __ATOMIC_ACQUIRE);
        if (s > 1 && a >= s && a - s < slots[i].len) return slots[i].path;
    }
    return NULL;
}
