/*
 * progress.h - internal to convert/: a progress bar on stderr, drawn only when stderr is a
 * terminal and --quiet is not given: bytes done, rate and ETA, at most ten times a second.
 */
#ifndef MP_PROGRESS_H
#define MP_PROGRESS_H

#include <stdint.h>

typedef struct mp_progress {
    int enabled;
    const char *label;
    const char *unit;    /* NULL: done and total are bytes; else a count of these ("tensors") */
    uint64_t total, done;
    double start, last_draw;
} mp_progress;

void mp_progress_start(mp_progress *p, const char *label, uint64_t total, int quiet);
/* The same bar counting items of `unit` instead of bytes. */
void mp_progress_start_count(mp_progress *p, const char *label, const char *unit, uint64_t total, int quiet);
void mp_progress_add(mp_progress *p, uint64_t bytes);
void mp_progress_end(mp_progress *p);   /* clears the line */
double mp_now(void);                     /* monotonic seconds */

#endif
