/* alloc/solve_problem.c — building and validating a solve_problem (items, options, classes). */
#include "solve.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- lifecycle */

int solve_problem_new(int n_sets, solve_problem **out, vl_err *err)
{
    *out = NULL;
    if (n_sets < 1)
        return vl_errf(err, VL_EARG, "solve: n_sets %d must be ≥ 1", n_sets);
    solve_problem *p = vl_calloc(1, sizeof *p);
    if (!p)
        return vl_errf(err, VL_ENOMEM, "solve: out of memory");
    p->n_sets = n_sets;
    *out = p;
    return 0;
}

void solve_problem_free(solve_problem *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n_items; i++) {
        solve_item *it = &p->items[i];
        for (int j = 0; j < it->n_opt; j++) {
            vl_free(it->opt[j].name);
            vl_free(it->opt[j].dist);
        }
        vl_free(it->opt);
        vl_free(it->name);
    }
    for (int c = 0; c < p->n_classes; c++)
        vl_free(p->classes[c].name);
    vl_free(p->classes);
    vl_free(p->items);
    vl_free(p->name_idx);
    vl_free(p);
}

/* Grow *arr (elements of size sz) so that it holds at least need; doubles the capacity. */
static int grow(void **arr, int *cap, int need, size_t sz)
{
    if (need <= *cap)
        return 0;
    int nc = *cap ? *cap * 2 : 8;
    while (nc < need)
        nc *= 2;
    void *q = vl_realloc(*arr, (size_t)nc * sz);
    if (!q)
        return VL_ENOMEM;
    *arr = q;
    *cap = nc;
    return 0;
}

/* ---------------------------------------------------------------- items and options */

/* FNV-1a of the name: item names differ in a few digits, which it mixes well enough. */
static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The slot of `name` in the index: where it is, or the empty slot where it would go. */
static int name_slot(const solve_problem *p, const char *name)
{
    int mask = p->name_cap - 1, k = (int)(name_hash(name) & (uint32_t)mask);
    while (p->name_idx[k] && strcmp(p->items[p->name_idx[k] - 1].name, name))
        k = (k + 1) & mask;
    return k;
}

/* Keep the index at most half full (rebuilt from the items when it doubles). */
static int name_index_grow(solve_problem *p, int need)
{
    if (2 * need <= p->name_cap)
        return 0;
    int nc = p->name_cap ? p->name_cap : 64;
    while (nc < 2 * need)
        nc *= 2;
    int *q = vl_calloc((size_t)nc, sizeof *q);
    if (!q)
        return VL_ENOMEM;
    vl_free(p->name_idx);
    p->name_idx = q;
    p->name_cap = nc;
    for (int i = 0; i < p->n_items; i++)
        p->name_idx[name_slot(p, p->items[i].name)] = i + 1;
    return 0;
}

int solve_problem_find_item(const solve_problem *p, const char *name)
{
    if (!p->name_cap)
        return -1;
    return p->name_idx[name_slot(p, name)] - 1;
}

int solve_problem_add_item(solve_problem *p, const char *name, int64_t n, int *idx, vl_err *err)
{
    if (n <= 0)
        return vl_errf(err, VL_ERANGE, "solve: item \"%s\": n_weights %lld must be > 0", name,
                       (long long)n);
    if (n > SOLVE_MAX_WEIGHTS - p->n_weights) /* checked without forming the overflowing sum */
        return vl_errf(err, VL_ERANGE, "solve: item \"%s\": n_weights %lld takes the total past "
                       "2^53 weights", name, (long long)n);
    if (solve_problem_find_item(p, name) >= 0)
        return vl_errf(err, VL_EARG, "solve: item \"%s\" added twice", name);
    if (grow((void **)&p->items, &p->cap_items, p->n_items + 1, sizeof *p->items) ||
        name_index_grow(p, p->n_items + 1))
        return vl_errf(err, VL_ENOMEM, "solve: out of memory");
    solve_item *it = &p->items[p->n_items];
    memset(it, 0, sizeof *it);
    it->name = vl_strdup(name);
    if (!it->name)
        return vl_errf(err, VL_ENOMEM, "solve: out of memory");
    it->n = n;
    p->n_weights += n;
    it->cls = -1;
    it->pin = -1;
    it->floor_bpw = 0;
    it->ceil_bpw = INFINITY;
    if (idx)
        *idx = p->n_items;
    p->n_items++;
    p->name_idx[name_slot(p, name)] = p->n_items;
    return 0;
}

int solve_problem_add_option(solve_problem *p, int item, const char *name, double bpw,
                             const double *dist, vl_err *err)
{
    VL_ASSERT(item >= 0 && item < p->n_items);
    solve_item *it = &p->items[item];
    if (!isfinite(bpw) || bpw < 0)
        return vl_errf(err, VL_ERANGE, "solve: item \"%s\" option \"%s\": bpw %g must be ≥ 0",
                       it->name, name, bpw);
    for (int s = 0; s < p->n_sets; s++)
        if (!isfinite(dist[s]) || dist[s] < 0)
            return vl_errf(err, VL_ERANGE,
                           "solve: item \"%s\" option \"%s\": distortion[%d] %g must be ≥ 0",
                           it->name, name, s, dist[s]);
    for (int j = 0; j < it->n_opt; j++)
        if (!strcmp(it->opt[j].name, name))
            return vl_errf(err, VL_EARG, "solve: item \"%s\": option \"%s\" given twice",
                           it->name, name);
    if (grow((void **)&it->opt, &it->cap_opt, it->n_opt + 1, sizeof *it->opt))
        return vl_errf(err, VL_ENOMEM, "solve: out of memory");
    solve_option *o = &it->opt[it->n_opt];
    o->name = vl_strdup(name);
    o->dist = vl_malloc((size_t)p->n_sets * sizeof *o->dist);
    if (!o->name || !o->dist) {
        vl_free(o->name);
        vl_free(o->dist);
        return vl_errf(err, VL_ENOMEM, "solve: out of memory");
    }
    memcpy(o->dist, dist, (size_t)p->n_sets * sizeof *o->dist);
    o->bpw = bpw;
    it->n_opt++;
    return 0;
}

/* ---------------------------------------------------------------- constraints */

static int class_get(solve_problem *p, const char *cls, int *out, vl_err *err)
{
    for (int c = 0; c < p->n_classes; c++)
        if (!strcmp(p->classes[c].name, cls)) {
            *out = c;
            return 0;
        }
    if (grow((void **)&p->classes, &p->cap_classes, p->n_classes + 1, sizeof *p->classes))
        return vl_errf(err, VL_ENOMEM, "solve: out of memory");
    solve_class *k = &p->classes[p->n_classes];
    k->name = vl_strdup(cls);
    if (!k->name)
        return vl_errf(err, VL_ENOMEM, "solve: out of memory");
    k->floor_bpw = 0;
    k->ceil_bpw = INFINITY;
    *out = p->n_classes++;
    return 0;
}

static int check_bounds(const char *what, const char *name, double lo, double hi, vl_err *err)
{
    if (isnan(lo) || isnan(hi) || lo < 0 || lo > hi)
        return vl_errf(err, VL_ERANGE, "solve: %s \"%s\": bpw bounds [%g, %g] invalid", what,
                       name, lo, hi);
    return 0;
}

int solve_problem_set_class(solve_problem *p, int item, const char *cls, vl_err *err)
{
    VL_ASSERT(item >= 0 && item < p->n_items);
    int c, rc = class_get(p, cls, &c, err);
    if (rc)
        return rc;
    p->items[item].cls = c;
    return 0;
}

int solve_problem_class_bounds(solve_problem *p, const char *cls, double floor_bpw,
                               double ceil_bpw, vl_err *err)
{
    int c, rc = check_bounds("class", cls, floor_bpw, ceil_bpw, err);
    if (rc || (rc = class_get(p, cls, &c, err)))
        return rc;
    p->classes[c].floor_bpw = floor_bpw;
    p->classes[c].ceil_bpw = ceil_bpw;
    return 0;
}

int solve_problem_item_bounds(solve_problem *p, int item, double floor_bpw, double ceil_bpw,
                              vl_err *err)
{
    VL_ASSERT(item >= 0 && item < p->n_items);
    int rc = check_bounds("item", p->items[item].name, floor_bpw, ceil_bpw, err);
    if (rc)
        return rc;
    p->items[item].floor_bpw = floor_bpw;
    p->items[item].ceil_bpw = ceil_bpw;
    return 0;
}

int solve_problem_pin(solve_problem *p, int item, const char *opt, vl_err *err)
{
    VL_ASSERT(item >= 0 && item < p->n_items);
    solve_item *it = &p->items[item];
    for (int j = 0; j < it->n_opt; j++)
        if (!strcmp(it->opt[j].name, opt)) {
            it->pin = j;
            return 0;
        }
    return vl_errf(err, VL_ENOTFOUND, "solve: item \"%s\" has no option \"%s\" to pin", it->name,
                   opt);
}

int64_t solve_problem_weights(const solve_problem *p) { return p->n_weights; }
