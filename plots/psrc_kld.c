/* plots/psrc_kld.c — the readers of the KLD figures: the matrix, its significance marks, and
 * KLD vs bpw with bootstrap intervals (layouts and rules in plotsrc.h). */
#define _POSIX_C_SOURCE 200809L
#include "plotsrc.h"
#include "psrc_int.h"

#include "../analysis/eval.h"
#include "../analysis/paired.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* mean_kld with its row and column names, through the store's one validating reader
 * (analysis/eval.h ev_read_store). */
static int read_matrix(h5s_store *s, double **m, char ***rows, int *nr, char ***cols, int *nc,
                       vl_err *err)
{
    ev_store ev;
    *m = NULL;
    *rows = *cols = NULL;
    *nr = *nc = 0;
    int rc = ev_read_store(s, &ev, err);
    if (rc)
        return rc;
    *m = ev.mean_kld;
    *rows = ev.rows;
    *cols = ev.cols;
    *nr = ev.n_rows;
    *nc = ev.n_cols;
    ev.mean_kld = NULL;
    ev.rows = ev.cols = NULL;
    ev.n_rows = ev.n_cols = 0;
    ev_store_free(&ev);
    return 0;
}

int psrc_kld_matrix(h5s_store *s, psrc_grid *out, vl_err *err)
{
    memset(out, 0, sizeof *out);
    double *m;
    char **rows, **cols;
    int nr, nc;
    int rc = read_matrix(s, &m, &rows, &nr, &cols, &nc, err);
    if (rc)
        return rc;
    out->rows = nr;
    out->cols = nc;
    out->m = m;
    out->row_labels = rows;
    out->col_labels = cols;
    return 0;
}

/* Per-sequence mean KLD of /eval/<row>/<dom>/kld [seqs, n]: *out vl_malloc'd, *n_seq its
 * length. Absent, malformed or negative data (an older store, a hand-made fixture): *out NULL,
 * 0 returned — the figure is drawn without the interval. */
static int seq_means(h5s_store *s, const char *row, const char *dom, double **out, int *n_seq,
                     vl_err *err)
{
    *out = NULL;
    *n_seq = 0;
    char p[512];
    snprintf(p, sizeof p, "/eval/%s/%s/kld", row, dom);
    if (!h5s_exists(s, p))
        return 0;
    double *tok = NULL;
    int nd = 0;
    int64_t sh[H5S_MAX_DIMS];
    vl_err e = {0, ""};
    if (h5s_read(s, p, H5S_F64, (void **)&tok, &nd, sh, &e) || nd != 2 || sh[0] < 1 ||
        sh[1] < 1 || sh[0] > (1 << 24) || sh[1] > (1 << 24)) {
        vl_free(tok);
        return 0;
    }
    size_t n = (size_t)sh[0] * (size_t)sh[1];
    for (size_t i = 0; i < n; i++)
        if (!(tok[i] >= 0) || !isfinite(tok[i])) {
            vl_free(tok);
            return 0;
        }
    *out = vl_malloc((size_t)sh[0] * sizeof **out);
    if (!*out) {
        vl_free(tok);
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", h5s_path(s));
    }
    pr_seq_means(tok, (int)sh[0], (int)sh[1], *out);
    *n_seq = (int)sh[0];
    vl_free(tok);
    return 0;
}

/* 95 % bootstrap interval of row r's mean KLD on domain d (d < 0: the mean over the domains
 * with a value), NaN when the per-token data do not allow it. */
static int row_ci(h5s_store *s, const char *row, char **cols, int nc, const double *mrow, int d,
                  double *lo, double *hi, vl_err *err)
{
    *lo = *hi = NAN;
    double *x = NULL;
    int n = 0, nd = 0, rc = 0, ok = 1;
    for (int j = 0; j < nc && !rc && ok; j++) {
        if ((d >= 0 && j != d) || isnan(mrow[j]))
            continue;
        double *v;
        int nv;
        if ((rc = seq_means(s, row, cols[j], &v, &nv, err)))
            break;
        if (!v || (x && nv != n)) { /* no data, or domains of different sizes */
            ok = 0;
        } else if (!x) {
            x = v;
            n = nv;
            v = NULL;
        } else {
            for (int k = 0; k < n; k++)
                x[k] += v[k];
        }
        nd += ok;
        vl_free(v);
    }
    if (!rc && ok && x && n >= 2) {
        for (int k = 0; k < n; k++)
            x[k] /= nd;
        pr_diff o;
        if (!(rc = pr_paired(x, NULL, 1, n, PSRC_BOOT, PSRC_BOOT_SEED, PR_LEVEL, &o, err))) {
            *lo = o.lo;
            *hi = o.hi;
        }
    }
    vl_free(x);
    return rc;
}

/* The series of a row (see plotsrc.h) into key; *baseline set for the dashed ones. */
static void row_series(h5s_store *s, const char *row, const ev_row_attrs *a, char *key,
                       size_t size, int *baseline)
{
    *baseline = 1;
    if (!strcmp(a->kind, "uniform")) {
        snprintf(key, size, "uniform %.*s", (int)strcspn(a->format, "-"), a->format);
        if (key[strlen(key) - 1] == ' ') /* a uniform row without a format attribute */
            key[strlen(key) - 1] = '\0';
        return;
    }
    char *solver = NULL, g[512];
    if (*a->solver)
        solver = vl_strdup(a->solver);
    else if (*a->alloc) { /* rows written before eval stored the solver: the run store's */
        snprintf(g, sizeof g, "/alloc/%s", a->alloc);
        if (!h5s_exists(s, g) || h5s_attr_get(s, g, "solver", &solver, NULL))
            solver = NULL;
    }
    const char *base = !solver                     ? NULL
                       : !strcmp(solver, "uniform") ? "best uniform ≤ budget"
                       : !strcmp(solver, "rules")   ? "rules baseline"
                       : !strcmp(solver, "random")  ? "random baseline"
                                                    : NULL;
    if (base && *a->calib)
        snprintf(key, size, "%s, %s statistics", base, a->calib);
    else if (base)
        snprintf(key, size, "%s", base);
    else if (*a->calib)
        snprintf(key, size, "VBR, calibrated on %s", a->calib);
    else {
        const char *dash = strrchr(row, '-');
        int len = dash && dash != row ? (int)(dash - row) : (int)strlen(row);
        snprintf(key, size, "VBR, calibrated on %.*s", len, row);
    }
    *baseline = base != NULL;
    vl_free(solver);
}

int psrc_kld_vs_bpw(h5s_store *s, const char *domain, psrc_lines *out, vl_err *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->metric, sizeof out->metric, "mean_kld");
    psrc_grid g;
    int rc = psrc_kld_matrix(s, &g, err);
    if (rc)
        return rc;
    const double *m = g.m;
    char **rows = g.row_labels, **cols = g.col_labels;
    int nr = g.rows, nc = g.cols, d = -1;
    for (int j = 0; domain && j < nc; j++)
        if (!strcmp(cols[j], domain))
            d = j;
    if (domain && d < 0)
        rc = vl_errf(err, VL_ENOTFOUND, "%s: no evaluation domain %s in /eval/matrix (has %s%s)",
                     h5s_path(s), domain, cols[0], nc > 1 ? ", …" : "");
    for (int r = 0; r < nr && !rc; r++) {
        char key[256];
        int baseline;
        ev_row_attrs a;
        if ((rc = ev_read_row(s, rows[r], &a, err)))
            break;
        double bpw = a.bpw;
        row_series(s, rows[r], &a, key, sizeof key, &baseline);
        ev_row_attrs_free(&a);
        double y = 0, lo, hi;
        int ny = 0;
        for (int j = 0; j < nc; j++)
            if ((d < 0 || j == d) && !isnan(m[(size_t)r * nc + j])) {
                y += m[(size_t)r * nc + j];
                ny++;
            }
        if ((rc = row_ci(s, rows[r], cols, nc, m + (size_t)r * nc, d, &lo, &hi, err)))
            break;
        int k = psrc_series_of(out, key, nr, 1);
        if (k < 0) {
            rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", h5s_path(s));
            break;
        }
        psrc_series *t = &out->s[k];
        t->baseline = baseline;
        t->x[t->n] = bpw;
        t->lo[t->n] = lo;
        t->hi[t->n] = hi;
        t->y[t->n++] = ny ? y / ny : NAN;
    }
    psrc_sort_series(out);
    psrc_grid_free(&g);
    if (rc)
        psrc_lines_free(out);
    return rc;
}

int psrc_kld_marks(h5s_store *s, const psrc_grid *g, unsigned char **marks, vl_err *err)
{
    *marks = NULL;
    int R = g->rows, C = g->cols, any = 0, rc = 0;
    unsigned char *mk = vl_calloc((size_t)R * C + 1, 1);
    if (!mk)
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", h5s_path(s));
    for (int d = 0; d < C && !rc; d++) {
        int best = -1;
        for (int r = 0; r < R; r++) {
            double v = g->m[(size_t)r * C + d];
            if (!isnan(v) && (best < 0 || v < g->m[(size_t)best * C + d]))
                best = r;
        }
        double *b = NULL;
        int nb = 0;
        if (best < 0 || (rc = seq_means(s, g->row_labels[best], g->col_labels[d], &b, &nb, err)) ||
            !b)
            continue;
        any = 1;
        mk[(size_t)best * C + d] = 1;
        for (int r = 0; r < R && !rc; r++) {
            double *a = NULL;
            int na = 0;
            if (r == best || isnan(g->m[(size_t)r * C + d]) ||
                (rc = seq_means(s, g->row_labels[r], g->col_labels[d], &a, &na, err)) || !a ||
                na != nb || nb < 2) {
                vl_free(a);
                continue;
            }
            pr_diff o;
            if (!(rc = pr_paired(a, b, 1, nb, PSRC_BOOT, PSRC_BOOT_SEED, PR_LEVEL, &o, err)))
                mk[(size_t)r * C + d] = (unsigned char)o.zero_in;
            vl_free(a);
        }
        vl_free(b);
    }
    if (rc || !any)
        vl_free(mk);
    else
        *marks = mk;
    return rc;
}
