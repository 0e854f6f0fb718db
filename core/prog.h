/* core/prog.h — progress lines on stderr for long work: done/total, rate, ETA.
 *
 * Prints only when stderr is a terminal (DESIGN: quiet otherwise), at most a few times a
 * second, overwriting one line with '\r'. The caller owns the struct (plain, on the stack).
 */
#ifndef VL_PROG_H
#define VL_PROG_H

#include <stdint.h>

typedef struct {
    const char *what;  /* label, borrowed for the struct's lifetime */
    const char *unit;  /* unit of the rate, e.g. "tok" */
    int64_t total;     /* units of work in all */
    int64_t done;      /* units done so far */
    double t_start;    /* seconds (monotonic) at prog_init */
    double t_last;     /* seconds at the last print */
    int enabled;       /* stderr is a tty */
} prog;

void prog_init(prog *p, const char *what, const char *unit, int64_t total);
void prog_update(prog *p, int64_t done);  /* sets done, prints if due */
void prog_finish(prog *p);                /* final line + newline (tty only) */

/* Monotonic clock in seconds (for bench and progress, never for tests). */
double prog_now(void);

#endif
