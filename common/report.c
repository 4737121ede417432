/*
 * report.c - a job's progress and notes, passed to its caller's callback (mp_common.h).
 */
#include "mp_common.h"

#include <stdio.h>
#include <time.h>

double mp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void emit(const mp_reporter *r, mp_event_kind kind, const char *note)
{
    if (!r->fn || (r->quiet && kind != MP_EVENT_NOTE)) return;
    mp_event ev = {.kind = kind, .label = r->label, .total = r->total, .done = r->done, .note = note, .unit = r->unit};
    r->fn(r->user, &ev);
}

void mp_report_start(mp_reporter *r, const char *label, uint64_t total)
{
    r->label = label;
    r->total = total;
    r->done = 0;
    emit(r, MP_EVENT_START, NULL);
}

void mp_report_add(mp_reporter *r, uint64_t bytes)
{
    r->done += bytes;
    emit(r, MP_EVENT_ADVANCE, NULL);
}

void mp_report_end(mp_reporter *r)
{
    emit(r, MP_EVENT_END, NULL);
}

void mp_report_note(const mp_reporter *r, const char *fmt, ...)
{
    if (!r || !r->fn) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    emit(r, MP_EVENT_NOTE, line);
}
