/*
 * progress.c - see progress.h.
 */
#include "progress.h"
#include "../common/mp_common.h"

#include <stdio.h>
#include <unistd.h>

void mp_progress_start(mp_progress *p, const char *label, uint64_t total, int quiet)
{
    p->enabled = !quiet && isatty(2);
    p->label = label;
    p->unit = NULL;
    p->total = total;
    p->done = 0;
    p->start = mp_now();
    p->last_draw = 0;
}

void mp_progress_start_count(mp_progress *p, const char *label, const char *unit, uint64_t total, int quiet)
{
    mp_progress_start(p, label, total, quiet);
    p->unit = unit;
}

static void draw(mp_progress *p, double t)
{
    enum { WIDTH = 30 };
    double frac = p->total ? (double)p->done / (double)p->total : 1.0;
    int fill = (int)(frac * WIDTH);
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    double el = t - p->start, rate = el > 0 ? (double)p->done / el : 0;
    double eta = rate > 0 ? (double)(p->total - p->done) / rate : 0;
    char d[32], tot[32], r[32];
    if (p->unit) {
        snprintf(d, sizeof d, "%llu", (unsigned long long)p->done);
        snprintf(tot, sizeof tot, "%llu %s", (unsigned long long)p->total, p->unit);
        snprintf(r, sizeof r, "%.1f", rate);
    } else {
        mp_fmt_bytes(p->done, d, sizeof d);
        mp_fmt_bytes(p->total, tot, sizeof tot);
        mp_fmt_bytes((uint64_t)rate, r, sizeof r);
    }
    fprintf(stderr, "\r%s [%s] %s / %s  %s/s  ETA %.0fs   ", p->label, bar, d, tot, r, eta);
    fflush(stderr);
}

void mp_progress_add(mp_progress *p, uint64_t bytes)
{
    p->done += bytes;
    if (!p->enabled) return;
    double t = mp_now();
    if (t - p->last_draw < 0.1 && p->done < p->total) return;
    p->last_draw = t;
    draw(p, t);
}

void mp_progress_end(mp_progress *p)
{
    if (p->enabled) fprintf(stderr, "\r\033[K");
}

void mp_progress_event(void *user, const mp_event *ev)
{
    mp_progress *p = user;
    switch (ev->kind) {
    case MP_EVENT_START: mp_progress_start_count(p, ev->label, ev->unit, ev->total, 0); break;
    case MP_EVENT_ADVANCE: mp_progress_add(p, ev->done - p->done); break;
    case MP_EVENT_END: mp_progress_end(p); break;
    case MP_EVENT_NOTE: fprintf(stderr, "modelprep: %s\n", ev->note); break;
    case MP_EVENT_COUNT: break;
    }
}
