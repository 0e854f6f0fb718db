/* plots/plotsrc.c — store readers for the figures (layouts in plotsrc.h). */
#define _POSIX_C_SOURCE 200809L
#include "plotsrc.h"

#include "../alloc/sens.h"
#include "../analysis/eval.h"

#include "../alloc/qfmt.h"
#include "../core/num.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const psrc_proj_names[PSRC_N_PROJ] = {
    "q_proj",           "k_proj",          "v_proj",           "o_proj",
    "experts.gate_proj", "experts.up_proj", "experts.down_proj", "shared.gate_proj",
    "shared.up_proj",   "shared.down_proj", "mlp.gate_proj",    "mlp.up_proj",
    "mlp.down_proj",    "q_a_proj",        "q_b_proj",         "kv_a_proj_with_mqa",
    "kv_b_proj",
};

void psrc_grid_free(psrc_grid *g)
{
    if (!g)
        return;
    for (int i = 0; g->row_labels && i < g->rows; i++)
        vl_free(g->row_labels[i]);
    for (int j = 0; g->col_labels && j < g->cols; j++)
        vl_free(g->col_labels[j]);
    vl_free(g->row_labels);
    vl_free(g->col_labels);
    vl_free(g->m);
    memset(g, 0, sizeof *g);
}

void psrc_lines_free(psrc_lines *l)
{
    if (!l)
        return;
    for (int i = 0; l->s && i < l->n_series; i++) {
        vl_free(l->s[i].name);
        vl_free(l->s[i].x);
        vl_free(l->s[i].y);
    }
    vl_free(l->s);
    memset(l, 0, sizeof *l);
}

/* ---------------------------------------------------------------- tensor names */

/* The number right after KEY in s ("layers." → 3), −1 when absent or not a number. */
static int num_after(const char *s, const char *key, const char **rest)
{
    const char *p = strstr(s, key);
    if (!p)
        return -1;
    p += strlen(key);
    int64_t v;
    if (num_digits(p, rest, 999999, &v))
        return -1;
    return (int)v;
}

int psrc_tensor_cell(const char *name, int *layer, int *expert, int *col)
{
    const char *rest;
    int l = num_after(name, "layers.", &rest);
    if (l < 0)
        return 0;
    static const char *const projs[] = {"gate_proj", "up_proj", "down_proj"};
    static const char *const v4[] = {".w1.", ".w3.", ".w2."}; /* deepseek_v4's spelling */
    int base;
    if (strstr(rest, "shared_expert.") || strstr(rest, "shared_experts.")) /* qwen, deepseek */
        base = 7;
    else if (strstr(rest, ".experts."))
        base = 4;
    else if (strstr(rest, ".mlp."))
        base = 10;
    else if (strstr(rest, "self_attn.")) {
        for (int j = 13; j < PSRC_N_PROJ; j++) /* MLA first: whole-word names */
            if (strstr(rest, psrc_proj_names[j])) {
                *layer = l, *expert = -1, *col = j;
                return 1;
            }
        for (int j = 0; j < 4; j++)
            if (strstr(rest, psrc_proj_names[j])) {
                *layer = l, *expert = -1, *col = j;
                return 1;
            }
        return 0;
    } else
        return 0;
    for (int j = 0; j < 3; j++)
        if (strstr(rest, projs[j]) || (base != 10 && strstr(rest, v4[j]))) {
            *layer = l;
            *expert = base == 4 ? num_after(rest, "experts.", NULL) : -1;
            *col = base + j;
            return 1;
        }
    return 0; /* router gate, shared_expert_gate */
}

int psrc_proj_parse(const char *s)
{
    if (!s)
        return -1;
    for (int j = 0; j < PSRC_N_PROJ; j++)
        if (!strcmp(s, psrc_proj_names[j]))
            return j;
    /* short forms: the expert projections first, they are what a per-expert map shows */
    static const char *const shorts[][2] = {
        {"gate_proj", "gate"}, {"up_proj", "up"}, {"down_proj", "down"}};
    for (int j = 0; j < 3; j++)
        if (!strcmp(s, shorts[j][0]) || !strcmp(s, shorts[j][1]))
            return 4 + j;
    static const char *const attn[] = {"q", "k", "v", "o"};
    for (int j = 0; j < 4; j++)
        if (!strcmp(s, attn[j]))
            return j;
    return -1;
}

/* ---------------------------------------------------------------- store helpers */

/* Read a float64 dataset of ndim dimensions; a missing one is "FILE: no dataset PATH (WHY)". */
static int read_f64(h5s_store *s, const char *path, int ndim, int64_t shape[H5S_MAX_DIMS],
                    double **data, const char *why, vl_err *err)
{
    *data = NULL;
    if (!h5s_exists(s, path))
        return vl_errf(err, VL_ENOTFOUND, "%s: no dataset %s (%s)", h5s_path(s), path, why);
    int nd;
    int rc = h5s_read(s, path, H5S_F64, (void **)data, &nd, shape, err);
    if (rc)
        return rc;
    if (nd != ndim) {
        vl_free(*data);
        *data = NULL;
        return vl_errf(err, VL_ESHAPE, "%s: dataset %s has %d dimensions, expected %d",
                       h5s_path(s), path, nd, ndim);
    }
    return 0;
}

/* A name list attribute (h5s_attr_get_names); absent: VL_ENOTFOUND naming the attribute. */
static int read_lines(h5s_store *s, const char *obj, const char *attr, char ***lines, int *n,
                      vl_err *err)
{
    *lines = NULL;
    *n = 0;
    vl_err e = {0};
    int rc = h5s_exists(s, obj) ? h5s_attr_get_names(s, obj, attr, lines, n, &e) : VL_ENOTFOUND;
    if (rc == VL_ENOMEM)
        return vl_errf(err, rc, "%s", e.msg);
    if (rc)
        return vl_errf(err, VL_ENOTFOUND, "%s: no attribute %s on %s", h5s_path(s), attr, obj);
    return 0;
}

int psrc_members(h5s_store *s, const char *group, char ***names, int *n, vl_err *err)
{
    *names = NULL;
    *n = 0;
    if (!h5s_exists(s, group))
        return 0;
    /* vbrlab sens keeps its sets as an attribute of /sens, not as member groups */
    if (!strcmp(group, "/sens"))
        return read_lines(s, group, "set_names", names, n, err);
    return h5s_list(s, group, names, n, err);
}

static char *fmt_label(const char *fmt, int i)
{
    char b[32];
    snprintf(b, sizeof b, fmt, i);
    return vl_strdup(b);
}

/* Allocate g as rows × cols of NaN with row labels "0".."rows-1" and numbered or named
 * columns (names NULL: "0".."cols-1"). */
static int grid_alloc(psrc_grid *g, int rows, int cols, const char *const *names, vl_err *err)
{
    memset(g, 0, sizeof *g);
    g->m = vl_malloc((size_t)rows * cols * sizeof *g->m);
    g->row_labels = vl_calloc((size_t)rows, sizeof(char *));
    g->col_labels = vl_calloc((size_t)cols, sizeof(char *));
    g->rows = rows;
    g->cols = cols;
    int ok = g->m && g->row_labels && g->col_labels;
    for (int i = 0; ok && i < rows; i++)
        ok = (g->row_labels[i] = fmt_label("%d", i)) != NULL;
    for (int j = 0; ok && j < cols; j++)
        ok = (g->col_labels[j] = names ? vl_strdup(names[j]) : fmt_label("%d", j)) != NULL;
    if (!ok) {
        psrc_grid_free(g);
        return vl_errf(err, VL_ENOMEM, "plot: out of memory for a %d × %d grid", rows, cols);
    }
    for (long i = 0; i < (long)rows * cols; i++)
        g->m[i] = NAN;
    return 0;
}

/* ---------------------------------------------------------------- expert usage */

int psrc_expert_usage(h5s_store *s, const char *set, psrc_grid *out, vl_err *err)
{
    memset(out, 0, sizeof *out);
    char p[512];
    snprintf(p, sizeof p, "/stats/%s/layer_sparse", set);
    if (!h5s_exists(s, p))
        return vl_errf(err, VL_ENOTFOUND, "%s: no dataset %s (expert usage needs `vbrlab stats` "
                                          "of set %s)", h5s_path(s), p, set);
    uint8_t *sparse = NULL;
    int nd;
    int64_t sh[H5S_MAX_DIMS];
    int rc = h5s_read(s, p, H5S_U8, (void **)&sparse, &nd, sh, err);
    if (rc)
        return rc;
    if (nd != 1 || sh[0] < 1 || sh[0] > 4096) {
        vl_free(sparse);
        return vl_errf(err, VL_ESHAPE, "%s: dataset %s must be [L] with 1 ≤ L ≤ 4096",
                       h5s_path(s), p);
    }
    int L = (int)sh[0], E = 0;
    double *routed[4096] = {0};
    for (int l = 0; l < L && !rc; l++) {
        if (!sparse[l])
            continue;
        snprintf(p, sizeof p, "/stats/%s/layers/%02d/router/routed", set, l);
        rc = read_f64(s, p, 1, sh, &routed[l], "routed tokens per expert", err);
        if (!rc && (sh[0] < 1 || sh[0] > 65536 || (E && sh[0] != E)))
            rc = vl_errf(err, VL_ESHAPE, "%s: dataset %s has %lld experts, expected %d",
                         h5s_path(s), p, (long long)sh[0], E);
        if (!rc)
            E = (int)sh[0];
        for (int e = 0; !rc && e < E; e++)
            if (!(routed[l][e] >= 0) || !isfinite(routed[l][e]))
                rc = vl_errf(err, VL_ERANGE, "%s: %s[%d] = %g is not a count", h5s_path(s), p, e,
                             routed[l][e]);
    }
    if (!rc && E == 0)
        rc = vl_errf(err, VL_ENOTFOUND, "%s: set %s has no MoE layer (no router statistics)",
                     h5s_path(s), set);
    if (!rc)
        rc = grid_alloc(out, L, E, NULL, err);
    for (int l = 0; l < L && !rc; l++) {
        if (!routed[l])
            continue;
        double tot = 0;
        for (int e = 0; e < E; e++)
            tot += routed[l][e];
        for (int e = 0; e < E; e++)
            out->m[(size_t)l * E + e] = tot > 0 ? 100.0 * routed[l][e] / tot : NAN;
    }
    for (int l = 0; l < L; l++)
        vl_free(routed[l]);
    vl_free(sparse);
    if (rc)
        psrc_grid_free(out);
    return rc;
}

/* ---------------------------------------------------------------- per-tensor maps */

typedef enum { AGG_SUM, AGG_MEAN } agg_kind;

/* Fill a layers × projection (proj < 0) or layers × experts (proj ≥ 0) grid from named values;
 * cells aggregate their tensors. Values must be finite and ≥ 0 (NaN = skip). */
static int tensor_grid(const char *file, const char *what, char **names, const double *v, int n,
                       int proj, agg_kind agg, psrc_grid *out, vl_err *err)
{
    int L = 0, E = 0, used[PSRC_N_PROJ] = {0}, hit = 0;
    for (int i = 0; i < n; i++) {
        int l, e, c;
        if (!psrc_tensor_cell(names[i], &l, &e, &c))
            continue;
        if (!isnan(v[i]) && (!isfinite(v[i]) || v[i] < 0))
            return vl_errf(err, VL_ERANGE, "%s: %s of %s is %g (must be ≥ 0 and finite)", file,
                           what, names[i], v[i]);
        L = l + 1 > L ? l + 1 : L;
        used[c] = 1;
        if (proj >= 0 && c == proj && e >= 0) {
            E = e + 1 > E ? e + 1 : E;
            hit = 1;
        }
    }
    if (L == 0)
        return vl_errf(err, VL_ENOTFOUND, "%s: no %s of a layer projection", file, what);
    if (L > 4096 || E > 65536)
        return vl_errf(err, VL_ERANGE, "%s: layer or expert index out of range", file);
    if (proj >= 0 && !hit)
        return vl_errf(err, VL_ENOTFOUND, "%s: no per-expert %s for %s", file, what,
                       psrc_proj_names[proj]);
    int cols = 0, colmap[PSRC_N_PROJ];
    const char *labels[PSRC_N_PROJ];
    for (int c = 0; c < PSRC_N_PROJ; c++) {
        colmap[c] = -1;
        if (used[c]) {
            colmap[c] = cols;
            labels[cols++] = psrc_proj_names[c];
        }
    }
    int rc = proj >= 0 ? grid_alloc(out, L, E, NULL, err) : grid_alloc(out, L, cols, labels, err);
    if (rc)
        return rc;
    int *cnt = vl_calloc((size_t)out->rows * out->cols, sizeof *cnt);
    if (!cnt) {
        psrc_grid_free(out);
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", file);
    }
    for (int i = 0; i < n; i++) {
        int l, e, c;
        if (!psrc_tensor_cell(names[i], &l, &e, &c) || isnan(v[i]))
            continue;
        if (proj >= 0 && (c != proj || e < 0))
            continue;
        size_t k = (size_t)l * out->cols + (size_t)(proj >= 0 ? e : colmap[c]);
        out->m[k] = cnt[k]++ ? out->m[k] + v[i] : v[i];
    }
    for (size_t k = 0; agg == AGG_MEAN && k < (size_t)out->rows * out->cols; k++)
        if (cnt[k])
            out->m[k] /= cnt[k];
    vl_free(cnt);
    return 0;
}

/* Index of set NAME in a sens result, or an error listing the sets. */
static int sens_set_index(const sens_result *r, const char *file, const char *name, vl_err *err)
{
    char list[512] = "";
    for (int i = 0, k = 0; i < r->n_sets; i++) {
        if (!strcmp(r->set_name[i], name))
            return i;
        k += snprintf(list + k, k < (int)sizeof list ? sizeof list - (size_t)k : 0, "%s%s",
                      i ? ", " : "", r->set_name[i]);
    }
    return vl_errf(err, VL_ENOTFOUND, "%s: /sens has no set \"%s\" (sets: %s)", file, name,
                   list);
}

int psrc_sens_map(h5s_store *s, const char *set, int proj, psrc_grid *out, vl_err *err)
{
    memset(out, 0, sizeof *out);
    sens_result r;
    int rc = sens_read(&r, s, err);
    if (rc)
        return rc;
    int si = sens_set_index(&r, h5s_path(s), set, err);
    if (si < 0) {
        sens_result_free(&r);
        return si;
    }
    if (proj >= 0 && r.gran == SENS_GROUP) {
        sens_result_free(&r);
        return vl_errf(err, VL_EARG, "%s: α was measured per layer × projection group; a "
                       "per-expert map needs vbrlab sens --granularity tensor", h5s_path(s));
    }
    /* per tensor: its unit's α shared among the unit's members, so that a cell (sum over its
     * tensors) shows the unit's α at group granularity and Σ of per-tensor α otherwise */
    int *members = vl_calloc((size_t)r.n_units + 1, sizeof *members);
    double *v = vl_malloc(((size_t)r.n_tensors + 1) * sizeof *v);
    char **names = vl_malloc(((size_t)r.n_tensors + 1) * sizeof *names);
    if (!members || !v || !names)
        rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", h5s_path(s));
    for (int t = 0; !rc && t < r.n_tensors; t++)
        members[r.t[t].unit]++;
    for (int t = 0; !rc && t < r.n_tensors; t++) {
        double a = r.alpha[0][(size_t)si * r.n_units + r.t[t].unit];
        v[t] = a / members[r.t[t].unit];
        names[t] = r.t[t].name;
    }
    if (!rc)
        rc = tensor_grid(h5s_path(s), "α", names, v, r.n_tensors, proj, AGG_SUM, out, err);
    vl_free(members);
    vl_free(v);
    vl_free(names);
    sens_result_free(&r);
    return rc;
}

int psrc_alloc_map(h5s_store *s, const char *name, int proj, psrc_grid *out, vl_err *err)
{
    memset(out, 0, sizeof *out);
    char g[512];
    snprintf(g, sizeof g, "/alloc/%s", name);
    char **lines;
    int n;
    int rc = read_lines(s, g, "assignment", &lines, &n, err);
    if (rc)
        return rc;
    double *bits = vl_malloc((size_t)(n ? n : 1) * sizeof *bits);
    if (!bits)
        rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", h5s_path(s));
    for (int i = 0; i < n && !rc; i++) {
        char *tab = strchr(lines[i], '\t');
        qfmt f;
        vl_err fe = {0, ""};
        if (!tab || qfmt_parse(&f, tab + 1, &fe)) {
            rc = vl_errf(err, VL_EFORMAT, "%s: %s@assignment line %d: %s", h5s_path(s), g, i + 1,
                         tab ? fe.msg : "no tab between tensor and format");
            break;
        }
        *tab = '\0';
        bits[i] = f.bits;
    }
    if (!rc)
        rc = tensor_grid(h5s_path(s), "bits", lines, bits, n, proj, AGG_MEAN, out, err);
    vl_free(bits);
    h5s_names_free(lines, n);
    return rc;
}

/* ---------------------------------------------------------------- eval */

/* mean_kld with its row and column names; validated non-negative or NaN. */
static int read_matrix(h5s_store *s, double **m, char ***rows, int *nr, char ***cols, int *nc,
                       vl_err *err)
{
    int64_t sh[H5S_MAX_DIMS];
    *rows = *cols = NULL;
    *nr = *nc = 0;
    int rc = read_f64(s, "/eval/matrix/mean_kld", 2, sh, m, "KLD matrix: vbrlab eval", err);
    if (!rc)
        rc = read_lines(s, "/eval/matrix", "rows", rows, nr, err);
    if (!rc)
        rc = read_lines(s, "/eval/matrix", "cols", cols, nc, err);
    if (!rc && (sh[0] != *nr || sh[1] != *nc || *nr < 1 || *nc < 1))
        rc = vl_errf(err, VL_ESHAPE, "%s: /eval/matrix/mean_kld is [%lld, %lld] but names %d × %d",
                     h5s_path(s), (long long)sh[0], (long long)sh[1], *nr, *nc);
    for (long i = 0; !rc && i < (long)*nr * *nc; i++)
        if (!isnan((*m)[i]) && !((*m)[i] >= 0 && isfinite((*m)[i])))
            rc = vl_errf(err, VL_ERANGE, "%s: /eval/matrix/mean_kld holds %g (KLD must be ≥ 0)",
                         h5s_path(s), (*m)[i]);
    if (rc) {
        vl_free(*m);
        *m = NULL;
        h5s_names_free(*rows, *nr);
        h5s_names_free(*cols, *nc);
        *rows = *cols = NULL;
        *nr = *nc = 0;
    }
    return rc;
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

/* Index of series NAME in l, appended when new. */
static int series_of(psrc_lines *l, const char *name, int cap)
{
    for (int i = 0; i < l->n_series; i++)
        if (!strcmp(l->s[i].name, name))
            return i;
    psrc_series *ns = vl_realloc(l->s, (size_t)(l->n_series + 1) * sizeof *ns);
    if (!ns)
        return -1;
    l->s = ns;
    psrc_series *t = &l->s[l->n_series];
    memset(t, 0, sizeof *t);
    t->name = vl_strdup(name);
    t->x = vl_malloc((size_t)cap * sizeof(double));
    t->y = vl_malloc((size_t)cap * sizeof(double));
    l->n_series++;
    return t->name && t->x && t->y ? l->n_series - 1 : -1;
}

/* Sort every series by x (insertion sort: a few points each). */
static void sort_series(psrc_lines *l)
{
    for (int k = 0; k < l->n_series; k++) {
        psrc_series *t = &l->s[k];
        for (int i = 1; i < t->n; i++)
            for (int j = i; j > 0 && t->x[j - 1] > t->x[j]; j--) {
                double a = t->x[j], b = t->y[j];
                t->x[j] = t->x[j - 1], t->y[j] = t->y[j - 1];
                t->x[j - 1] = a, t->y[j - 1] = b;
            }
    }
}

int psrc_kld_vs_bpw(h5s_store *s, const char *domain, psrc_lines *out, vl_err *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->metric, sizeof out->metric, "mean_kld");
    double *m;
    char **rows, **cols;
    int nr, nc;
    int rc = read_matrix(s, &m, &rows, &nr, &cols, &nc, err);
    if (rc)
        return rc;
    int d = -1;
    for (int j = 0; domain && j < nc; j++)
        if (!strcmp(cols[j], domain))
            d = j;
    if (domain && d < 0)
        rc = vl_errf(err, VL_ENOTFOUND, "%s: no evaluation domain %s in /eval/matrix (has %s%s)",
                     h5s_path(s), domain, cols[0], nc > 1 ? ", …" : "");
    for (int r = 0; r < nr && !rc; r++) {
        char key[256];
        ev_row_attrs a;
        if ((rc = ev_read_row(s, rows[r], &a, err)))
            break;
        double bpw = a.bpw;
        if (!strcmp(a.kind, "uniform"))
            snprintf(key, sizeof key, "uniform %.*s", (int)strcspn(a.format, "-"), a.format);
        else if (*a.calib)
            snprintf(key, sizeof key, "VBR, calibrated on %s", a.calib);
        else {
            const char *dash = strrchr(rows[r], '-');
            int len = dash && dash != rows[r] ? (int)(dash - rows[r]) : (int)strlen(rows[r]);
            snprintf(key, sizeof key, "VBR, calibrated on %.*s", len, rows[r]);
        }
        ev_row_attrs_free(&a);
        if (key[strlen(key) - 1] == ' ') /* uniform row without a format attribute */
            key[strlen(key) - 1] = '\0';
        double y = 0;
        int ny = 0;
        for (int j = 0; j < nc; j++)
            if ((d < 0 || j == d) && !isnan(m[(size_t)r * nc + j])) {
                y += m[(size_t)r * nc + j];
                ny++;
            }
        int k = series_of(out, key, nr);
        if (k < 0) {
            rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", h5s_path(s));
            break;
        }
        out->s[k].x[out->s[k].n] = bpw;
        out->s[k].y[out->s[k].n++] = ny ? y / ny : NAN;
    }
    sort_series(out);
    vl_free(m);
    h5s_names_free(rows, nr);
    h5s_names_free(cols, nc);
    if (rc)
        psrc_lines_free(out);
    return rc;
}

/* ---------------------------------------------------------------- RD */

int psrc_rd(h5s_store *s, int proj, int layer, psrc_lines *out, vl_err *err)
{
    memset(out, 0, sizeof *out);
    sens_result r;
    int rc = sens_read(&r, s, err);
    if (rc)
        return rc;
    /* the first set's RD column (quantized with and measured under its own statistics): the
       output error when stored, else the weight error */
    int T = r.n_tensors, nf = r.n_formats, qs = 0;
    const double *dist = r.rel_w;
    snprintf(out->metric, sizeof out->metric, "rel_w");
    if (r.rel_out && qs >= 0 && qs < r.n_sets) {
        const double *o = r.rel_out + (size_t)qs * T * nf;
        int finite = 1;
        for (size_t i = 0; i < (size_t)T * nf; i++)
            finite &= !isnan(o[i]);
        if (finite) {
            dist = o;
            snprintf(out->metric, sizeof out->metric, "rel_out");
        }
    }
    for (int f = 0; f < nf && !rc; f++) {
        double sx = 0, sy = 0, nw = 0;
        for (int i = 0; i < T && !rc; i++) {
            const sens_tensor *t = &r.t[i];
            int l, e, c;
            if (!psrc_tensor_cell(t->name, &l, &e, &c) || (proj >= 0 && c != proj) ||
                (layer >= 0 && l != layer))
                continue;
            double x = r.bpw[(size_t)i * nf + f], y = dist[(size_t)i * nf + f];
            if (isnan(x) || isnan(y))
                continue;
            char fn[QFMT_NAME_MAX];
            if (!(x > 0 && x <= 64) || !(y >= 0) || !isfinite(y))
                rc = vl_errf(err, VL_ERANGE, "%s: /sens/rd of %s, %s: bpw %g, %s %g out of range",
                             h5s_path(s), t->name, qfmt_name(&r.fmt[f], fn), x, out->metric, y);
            /* weighted by size: the class's error per weight */
            sx += x * (double)t->n, sy += y * (double)t->n, nw += (double)t->n;
        }
        if (rc || !(nw > 0))
            continue;
        char key[32];
        snprintf(key, sizeof key, "%s%s", r.fmt[f].method == QFMT_GPTQ ? "GPTQ" : "RTN",
                 r.fmt[f].rot == QFMT_ROT_HAD ? " + Hadamard" : "");
        int k = series_of(out, key, nf);
        if (k < 0) {
            rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", h5s_path(s));
            break;
        }
        out->s[k].x[out->s[k].n] = sx / nw;
        out->s[k].y[out->s[k].n++] = sy / nw;
    }
    if (!rc && out->n_series == 0)
    {
        char where[32] = "";
        if (layer >= 0)
            snprintf(where, sizeof where, " in layer %d", layer);
        rc = vl_errf(err, VL_ENOTFOUND, "%s: /sens/rd has no tensor of %s%s", h5s_path(s),
                     proj >= 0 ? psrc_proj_names[proj] : "any projection", where);
    }
    sort_series(out);
    sens_result_free(&r);
    if (rc)
        psrc_lines_free(out);
    return rc;
}
