/*
 * progress.h - internal to programs/: a progress bar on stderr, drawn only when stderr is a
 * terminal and --quiet is not given: bytes done, rate and ETA, at most ten times a second.
 * The library's jobs (convert, split, verify) report through mp_progress_event (the job sends
 * no progress under --quiet); their notes are printed as "modelprep: <note>" lines.
 */
#ifndef MP_PROGRESS_H
#define MP_PROGRESS_H

#include "../include/modelprep.h"

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
/* An mp_progress_fn drawing on the mp_progress `user`: START, ADVANCE and END drive the bar
 * above, NOTE prints a line. */
void mp_progress_event(void *user, const mp_event *ev);

#endif
