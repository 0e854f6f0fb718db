/* plots/pfig_tips.c — per-cell hover text of the map figures (pfig_tips.h). */
#define _POSIX_C_SOURCE 200809L
#include "pfig_tips.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A growable string; oom remembered, checked once at the end. */
typedef struct {
    char *b;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *sb, const char *fmt, ...)
{
    if (sb->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    if (sb->n + (size_t)k + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 128;
        while (cap < sb->n + (size_t)k + 1)
            cap *= 2;
        char *nb = vl_realloc(sb->b, cap);
        if (!nb) {
            sb->oom = 1;
            return;
        }
        sb->b = nb;
        sb->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(sb->b + sb->n, sb->cap - sb->n, fmt, ap);
    va_end(ap);
    sb->n += (size_t)k;
}

static int find(char *const *labels, int n, const char *want)
{
    for (int i = 0; i < n; i++)
        if (labels[i] && !strcmp(labels[i], want))
            return i;
    return -1;
}

/* x's value at g's cell (i, j), matched by labels; NaN when x has no such cell. */
static double at(const psrc_grid *x, const psrc_grid *g, int i, int j)
{
    int a = find(x->row_labels, x->rows, g->row_labels[i]);
    int b = find(x->col_labels, x->cols, g->col_labels[j]);
    return a < 0 || b < 0 ? NAN : x->m[(size_t)a * x->cols + b];
}

/* One source line of the tips: a grid per set (n of them, NULL where absent). */
typedef struct {
    char **names;
    int n;
    psrc_grid *g;
} per_set;

static void per_set_free(per_set *p)
{
    for (int i = 0; p->g && i < p->n; i++)
        psrc_grid_free(&p->g[i]);
    vl_free(p->g);
    h5s_names_free(p->names, p->n);
    memset(p, 0, sizeof *p);
}

enum { SRC_SENS, SRC_USAGE, SRC_ALLOC };

/* The grids of every member of GROUP in st; a member whose data are absent or do not fit this
 * figure (VL_ENOTFOUND, VL_EARG: e.g. group-granularity α asked per expert) stays empty. */
static int load(h5s_store *st, const char *group, int src, int proj, per_set *p, vl_err *err)
{
    memset(p, 0, sizeof *p);
    int rc = psrc_members(st, group, &p->names, &p->n, err);
    if (rc || !p->n)
        return rc;
    if (!(p->g = vl_calloc((size_t)p->n, sizeof *p->g)))
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", h5s_path(st));
    for (int i = 0; i < p->n && !rc; i++) {
        vl_err e = {0, ""};
        rc = src == SRC_SENS    ? psrc_sens_map(st, p->names[i], proj, &p->g[i], &e)
             : src == SRC_USAGE ? psrc_expert_usage(st, p->names[i], &p->g[i], &e)
                                : psrc_alloc_map(st, p->names[i], proj, &p->g[i], &e);
        if (rc == VL_ENOTFOUND || rc == VL_EARG) {
            psrc_grid_free(&p->g[i]);
            rc = 0;
        } else if (rc && err) {
            *err = e;
        }
    }
    return rc;
}

/* "LABEL: set v, set v" for the sets with a value at cell (i, j); nothing when none has. */
static void line(sbuf *sb, const char *label, const per_set *p, const psrc_grid *g, int i,
                 int j, const char *fmt, const char *unit)
{
    int first = 1;
    for (int k = 0; k < p->n; k++) {
        double v = p->g[k].m ? at(&p->g[k], g, i, j) : NAN;
        if (isnan(v))
            continue;
        if (first)
            sb_printf(sb, "\n%s: ", label);
        else
            sb_printf(sb, ", ");
        sb_printf(sb, "%s ", p->names[k]);
        sb_printf(sb, fmt, v);
        sb_printf(sb, "%s", unit);
        first = 0;
    }
}

int pfig_tips(h5s_store *s, h5s_store *stats, h5s_store *alloc, const pfig_req *r,
              const psrc_grid *g, char ***tips, vl_err *err)
{
    *tips = NULL;
    stats = stats ? stats : s;
    alloc = alloc ? alloc : s;
    int usage = r->kind == PFIG_EXPERT_USAGE;
    /* per-expert cells: an expert-usage map, or a map of one experts.* projection */
    int per_expert = usage || (r->proj >= 0 && !strncmp(psrc_proj_names[r->proj], "experts.", 8));
    per_set sens = {0}, use = {0}, al = {0};
    int rc = usage ? 0 : load(s, "/sens", SRC_SENS, r->proj, &sens, err);
    if (!rc && per_expert)
        rc = load(stats, "/stats", SRC_USAGE, -1, &use, err);
    if (!rc && !usage)
        rc = load(alloc, "/alloc", SRC_ALLOC, r->proj, &al, err);
    size_t n = (size_t)g->rows * g->cols;
    char **t = rc ? NULL : vl_calloc(n + 1, sizeof *t);
    if (!rc && !t)
        rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", h5s_path(s));
    for (int i = 0; !rc && i < g->rows; i++)
        for (int j = 0; !rc && j < g->cols; j++) {
            sbuf sb = {0};
            if (usage)
                sb_printf(&sb, "layer %s, expert %s", g->row_labels[i], g->col_labels[j]);
            else if (r->proj >= 0)
                sb_printf(&sb, "layer %s, %s, %s %s", g->row_labels[i],
                          psrc_proj_names[r->proj], per_expert ? "expert" : "column",
                          g->col_labels[j]);
            else
                sb_printf(&sb, "layer %s, %s%s", g->row_labels[i], g->col_labels[j],
                          !strncmp(g->col_labels[j], "experts.", 8) ? " (all experts)" : "");
            line(&sb, "α (KLD/ε²)", &sens, g, i, j, "%.3g", "");
            /* usage grids are layers × experts: a per-expert cell's column label is its
             * expert, so the labels match */
            if (per_expert)
                line(&sb, "routed share", &use, g, i, j, "%.1f", " %");
            line(&sb, "bits", &al, g, i, j, "%.3g", "");
            if (sb.oom || !sb.b) {
                vl_free(sb.b);
                rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", h5s_path(s));
            }
            t[(size_t)i * g->cols + j] = sb.b;
        }
    per_set_free(&sens);
    per_set_free(&use);
    per_set_free(&al);
    if (rc && t) {
        h5s_names_free(t, (int)n);
        t = NULL;
    }
    *tips = t;
    return rc;
}
