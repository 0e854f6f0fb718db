/* analysis/calib_overlap.c — leakage check: do two families of id runs share a window?
 *
 * Every window of W consecutive symbols of the indexed runs is hashed (polynomial rolling hash
 * mod 2^64) into a sorted array; a probe hashes its own windows the same way and looks each up
 * by binary search, confirming a hash hit symbol by symbol, so a reported match is a real
 * match (a hash collision only costs a comparison). Cost: O(N log N) for N indexed symbols.
 */
#include "calib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HASH_BASE 0x100000001b3ull /* odd: multiplication by it is a bijection mod 2^64 */

typedef struct {
    uint64_t h;
    int run, pos;
} wentry;

typedef struct {
    const int32_t *v;
    int n, tag;
} wrun;

struct calib_windex {
    int window;
    wrun *runs;
    int n_runs, cap_runs;
    wentry *e;
    size_t n_e, cap_e;
    int sorted;
};

int calib_windex_new(calib_windex **out, int window, vl_err *err)
{
    *out = NULL;
    if (window < 1)
        return vl_errf(err, VL_EARG, "overlap: window %d (must be ≥ 1)", window);
    calib_windex *x = vl_calloc(1, sizeof *x);
    if (!x)
        return vl_errf(err, VL_ENOMEM, "overlap: out of memory");
    x->window = window;
    *out = x;
    return 0;
}

void calib_windex_free(calib_windex *x)
{
    if (!x)
        return;
    vl_free(x->runs);
    vl_free(x->e);
    vl_free(x);
}

/* B^W mod 2^64: the weight of the symbol leaving the window. */
static uint64_t base_pow(int w)
{
    uint64_t p = 1;
    for (int i = 0; i < w; i++)
        p *= HASH_BASE;
    return p;
}

/* Calls f(ctx, hash, pos) for every window of v[0..n); stops when f returns non-zero. */
static int each_window(const int32_t *v, int n, int w, int (*f)(void *, uint64_t, int),
                       void *ctx)
{
    if (n < w)
        return 0;
    uint64_t h = 0, top = base_pow(w);
    for (int i = 0; i < n; i++) {
        h = h * HASH_BASE + (uint32_t)v[i] + 1;
        if (i >= w)
            h -= top * ((uint64_t)(uint32_t)v[i - w] + 1);
        if (i >= w - 1) {
            int r = f(ctx, h, i - w + 1);
            if (r)
                return r;
        }
    }
    return 0;
}

typedef struct {
    calib_windex *x;
    int run;
} add_ctx;

static int add_one(void *p, uint64_t h, int pos)
{
    add_ctx *a = p;
    calib_windex *x = a->x;
    if (vl_grow(&x->e, x->n_e, &x->cap_e, sizeof *x->e, 1024))
        return -1;
    x->e[x->n_e++] = (wentry){h, a->run, pos};
    return 0;
}

int calib_windex_add(calib_windex *x, const int32_t *v, int n, int tag, vl_err *err)
{
    if (x->n_runs == x->cap_runs) {
        int cap = x->cap_runs ? 2 * x->cap_runs : 64;
        wrun *r = vl_realloc(x->runs, (size_t)cap * sizeof *r);
        if (!r)
            return vl_errf(err, VL_ENOMEM, "overlap: out of memory");
        x->runs = r;
        x->cap_runs = cap;
    }
    x->runs[x->n_runs] = (wrun){v, n, tag};
    add_ctx a = {x, x->n_runs};
    if (each_window(v, n, x->window, add_one, &a))
        return vl_errf(err, VL_ENOMEM, "overlap: out of memory");
    x->n_runs++;
    x->sorted = 0;
    return 0;
}

static int by_hash(const void *a, const void *b)
{
    const wentry *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    if (x->run != y->run)
        return x->run < y->run ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

typedef struct {
    const calib_windex *x;
    const int32_t *v;
    calib_match *m;
} find_ctx;

static int find_one(void *p, uint64_t h, int pos)
{
    find_ctx *f = p;
    const calib_windex *x = f->x;
    size_t lo = 0, hi = x->n_e; /* first entry with hash ≥ h */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (x->e[mid].h < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t k = lo; k < x->n_e && x->e[k].h == h; k++) {
        const wrun *r = &x->runs[x->e[k].run];
        if (!memcmp(r->v + x->e[k].pos, f->v + pos, (size_t)x->window * sizeof *f->v)) {
            *f->m = (calib_match){r->tag, x->e[k].run, x->e[k].pos, pos};
            return 1;
        }
    }
    return 0;
}

int calib_windex_find(calib_windex *x, const int32_t *v, int n, calib_match *m)
{
    if (!x->sorted) {
        qsort(x->e, x->n_e, sizeof *x->e, by_hash);
        x->sorted = 1;
    }
    find_ctx f = {x, v, m};
    return each_window(v, n, x->window, find_one, &f);
}

/* ---------------------------------------------------------------- sets */

int calib_overlap_window(const calib_ids *cal, int n_cal, const calib_ids *ev, int n_ev)
{
    int w = CALIB_OVERLAP_WINDOW;
    for (int i = 0; i < n_cal; i++)
        w = cal[i].seq_len < w ? cal[i].seq_len : w;
    for (int i = 0; i < n_ev; i++)
        w = ev[i].seq_len < w ? ev[i].seq_len : w;
    return w;
}

int calib_overlap_check(const calib_ids *cal, int n_cal, const calib_ids *ev, int n_ev,
                        vl_err *err)
{
    if (n_cal == 0 || n_ev == 0)
        return 0;
    int w = calib_overlap_window(cal, n_cal, ev, n_ev);
    calib_windex *x = NULL;
    int rc = calib_windex_new(&x, w, err);
    int *first = vl_calloc((size_t)n_cal + 1, sizeof *first); /* run index of set i's seq 0 */
    if (!rc && !first)
        rc = vl_errf(err, VL_ENOMEM, "overlap: out of memory");
    for (int i = 0, run = 0; !rc && i < n_cal; i++) {
        first[i] = run;
        for (int s = 0; !rc && s < cal[i].n_seq; s++, run++)
            rc = calib_windex_add(x, cal[i].ids + (size_t)s * cal[i].seq_len, cal[i].seq_len,
                                  i, err);
    }
    for (int d = 0; !rc && d < n_ev; d++)
        for (int s = 0; !rc && s < ev[d].n_seq; s++) {
            calib_match m;
            if (!calib_windex_find(x, ev[d].ids + (size_t)s * ev[d].seq_len, ev[d].seq_len, &m))
                continue;
            rc = vl_errf(err, VL_EARG,
                         "evaluation domain %s overlaps calibration set %s: sequence %d, "
                         "tokens %d..%d equal sequence %d, tokens %d..%d (%d-token window)",
                         ev[d].name, cal[m.tag].name, s, m.probe_pos, m.probe_pos + w - 1,
                         m.run - first[m.tag], m.pos, m.pos + w - 1, w);
        }
    vl_free(first);
    calib_windex_free(x);
    return rc;
}
