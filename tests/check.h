/* tests/check.h — vbrlab's small test harness (header-only, used by every tests/test_*.c).
 *
 * A chk record is owned by the test's main: counted checks, one line per check ("PASS name" or
 * "FAIL name: observed vs expected" with file:line), float compares with absolute and relative
 * tolerance, a tensor compare that reports max |Δ|, NMSE and the first mismatching index, and
 * chk_done() which prints "SUITE: N passed, M failed" and returns the exit status (1 if any
 * check failed). Checks inside big loops can set c->quiet to print only failures.
 */
#ifndef VL_CHECK_H
#define VL_CHECK_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *suite;
    int pass, fail;
    int quiet;  /* 1: print FAIL lines only */
} chk;

static inline void chk_init(chk *c, const char *suite)
{
    c->suite = suite;
    c->pass = c->fail = 0;
    c->quiet = 0;
}

static inline int chk_vreport(chk *c, int ok, const char *file, int line, const char *fmt,
                              va_list ap)
{
    if (ok)
        c->pass++;
    else
        c->fail++;
    if (ok && c->quiet)
        return ok;
    printf("%s ", ok ? "PASS" : "FAIL");
    vprintf(fmt, ap);
    if (!ok)
        printf("  [%s:%d]", file, line);
    printf("\n");
    fflush(stdout);
    return ok;
}

static inline int chk_report(chk *c, int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static inline int chk_report(chk *c, int ok, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    chk_vreport(c, ok, file, line, fmt, ap);
    va_end(ap);
    return ok;
}

/* CHECK(c, cond, "name %d", i): passes when cond is true. */
#define CHECK(c, cond, ...) chk_report((c), !!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* Integers equal. */
#define CHECK_INT(c, got, want, name)                                                       \
    do {                                                                                    \
        long long g_ = (long long)(got), w_ = (long long)(want);                            \
        chk_report((c), g_ == w_, __FILE__, __LINE__, "%s: got %lld, want %lld", (name),    \
                   g_, w_);                                                                 \
    } while (0)

/* |got − want| <= abs_tol + rtol·|want| (NaN never passes). */
#define CHECK_NEAR(c, got, want, abs_tol, rtol, name)                                          \
    do {                                                                                    \
        double g_ = (double)(got), w_ = (double)(want);                                     \
        int ok_ = fabs(g_ - w_) <= (abs_tol) + (rtol)*fabs(w_);                                \
        chk_report((c), ok_, __FILE__, __LINE__, "%s: got %.9g, want %.9g (|d| %.3g)",      \
                   (name), g_, w_, fabs(g_ - w_));                                          \
    } while (0)

/* Strings equal; also checks that got is not NULL. */
#define CHECK_STR(c, got, want, name)                                                       \
    do {                                                                                    \
        const char *g_ = (got), *w_ = (want);                                               \
        chk_report((c), g_ && strcmp(g_, w_) == 0, __FILE__, __LINE__,                      \
                   "%s: got \"%s\", want \"%s\"", (name), g_ ? g_ : "(null)", w_);          \
    } while (0)

/* got contains the substring want (for one-line error messages). */
#define CHECK_HAS(c, got, want, name)                                                       \
    do {                                                                                    \
        const char *g_ = (got), *w_ = (want);                                               \
        chk_report((c), g_ && strstr(g_, w_) != NULL, __FILE__, __LINE__,                   \
                   "%s: \"%s\" contains \"%s\"", (name), g_ ? g_ : "(null)", w_);          \
    } while (0)

typedef struct {
    double max_abs;   /* max |got − want| */
    double max_rel;   /* max |got − want| / max(|want|, 1e-6) */
    double nmse;      /* Σ(got − want)² / Σ want² */
    long first_bad;   /* first index with |Δ| > abs_tol + rtol·|want|, −1 if none */
    int nonfinite;    /* got has NaN/Inf */
} chk_diff;

static inline chk_diff chk_diff_f32(const float *got, const float *want, long n, double abs_tol,
                                    double rtol)
{
    chk_diff d = {0, 0, 0, -1, 0};
    double num = 0, den = 0;
    for (long i = 0; i < n; i++) {
        double g = got[i], w = want[i], a = fabs(g - w);
        if (!isfinite(g))
            d.nonfinite = 1;
        if (a > d.max_abs)
            d.max_abs = a;
        double r = a / (fabs(w) > 1e-6 ? fabs(w) : 1e-6);
        if (r > d.max_rel)
            d.max_rel = r;
        num += a * a;
        den += w * w;
        if (d.first_bad < 0 && !(a <= abs_tol + rtol * fabs(w)))
            d.first_bad = i;
    }
    d.nmse = den > 0 ? num / den : num;
    return d;
}

/* Compare two float arrays; one line with max |Δ|, max rel, NMSE and the first bad index. */
#define CHECK_TENSOR(c, got, want, n, abs_tol, rtol, name)                                     \
    do {                                                                                    \
        chk_diff d_ = chk_diff_f32((got), (want), (n), (abs_tol), (rtol));                     \
        chk_report((c), d_.first_bad < 0 && !d_.nonfinite, __FILE__, __LINE__,              \
                   "%s: n=%ld max|d| %.3g max rel %.3g nmse %.3g first bad %ld", (name),    \
                   (long)(n), d_.max_abs, d_.max_rel, d_.nmse, d_.first_bad);               \
    } while (0)

/* Print the summary line the runner reads; return the process exit status. */
static inline int chk_done(const chk *c)
{
    printf("%s: %d passed, %d failed\n", c->suite, c->pass, c->fail);
    return c->fail ? 1 : 0;
}

#endif
