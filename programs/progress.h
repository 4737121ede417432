/*
 * progress.h - internal to programs/: the progress bar on stderr, drawn from a job's progress
 * events (mp_progress_fn, common/mp_common.h) only when stderr is a terminal (the job sends none
 * under --quiet): bytes done, rate and ETA, at most ten times a second. The job's notes are
 * printed as "modelprep: <note>" lines.
 */
#ifndef MP_PROGRESS_H
#define MP_PROGRESS_H

#include "../common/mp_common.h"

typedef struct mp_progress {
    int enabled;
    const char *label;
    uint64_t total, done;
    double start, last_draw;
} mp_progress;

/* An mp_progress_fn; user is a zero-initialised mp_progress. */
void mp_progress_event(void *user, const mp_event *ev);

#endif
