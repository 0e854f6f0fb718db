/* core/prog.c — tty-only progress reporting. */
#define _POSIX_C_SOURCE 200809L
#include "prog.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

double prog_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void prog_init(prog *p, const char *what, const char *unit, int64_t total)
{
    p->what = what;
    p->unit = unit;
    p->total = total;
    p->done = 0;
    p->t_start = prog_now();
    p->t_last = 0.0;
    p->enabled = isatty(2);
}

static void prog_print(const prog *p, double now)
{
    double el = now - p->t_start;
    double rate = el > 0 ? (double)p->done / el : 0.0;
    double eta = rate > 0 ? (double)(p->total - p->done) / rate : 0.0;
    fprintf(stderr, "\r%s: %lld/%lld %s, %.1f %s/s, ETA %.0f s   ", p->what,
            (long long)p->done, (long long)p->total, p->unit, rate, p->unit, eta);
    fflush(stderr);
}

void prog_update(prog *p, int64_t done)
{
    p->done = done;
    if (!p->enabled)
        return;
    double now = prog_now();
    if (now - p->t_last < 0.25)
        return;
    p->t_last = now;
    prog_print(p, now);
}

void prog_finish(prog *p)
{
    if (!p->enabled)
        return;
    prog_print(p, prog_now());
    fputc('\n', stderr);
}
