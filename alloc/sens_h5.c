/* alloc/sens_h5.c — sens_result to and from the HDF5 store (/sens; docs/hdf5-schema.md,
 * section "vbrlab sens"). Every number read back is validated before use. */
#include "sens.h"

#include "../analysis/calib.h"
#include "../core/num.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- write */

typedef struct {
    h5s_store *st;
    vl_err *err;
    int rc;
} wr;

static void put(wr *w, const char *path, h5s_dtype t, const void *data, int nd, int64_t d0,
                int64_t d1, int64_t d2, const char *units, const char *meaning)
{
    int64_t sh[3] = {d0, d1, d2};
    if (!w->rc)
        w->rc = h5s_write(w->st, path, t, data, nd, sh, units, meaning, w->err);
}

/* A name list attribute (h5s_attr_set_names); a NULL list is an allocation that failed. */
static void attr_names(wr *w, const char *path, const char *name, char *const *v, int n)
{
    if (!w->rc)
        w->rc = v ? h5s_attr_set_names(w->st, path, name, (const char *const *)v, n, w->err)
                  : vl_errf(w->err, VL_ENOMEM, "sens: out of memory");
}

static void attr(wr *w, const char *path, const char *name, const char *v)
{
    if (!w->rc)
        w->rc = v ? h5s_attr_set(w->st, path, name, v, w->err)
                  : vl_errf(w->err, VL_ENOMEM, "sens: out of memory");
}

static void attr_f(wr *w, const char *path, const char *name, double v)
{
    if (!w->rc)
        w->rc = h5s_attr_set_f64(w->st, path, name, v, w->err);
}

static void write_tensors(wr *w, const sens_result *r)
{
    int T = r->n_tensors;
    int64_t *n = vl_malloc((size_t)T * sizeof *n);
    int *iv = vl_malloc((size_t)T * 6 * sizeof *iv);
    char **names = vl_malloc((size_t)T * sizeof *names);
    if (!n || !iv || !names) {
        w->rc = w->rc ? w->rc : vl_errf(w->err, VL_ENOMEM, "sens: out of memory");
    } else {
        for (int i = 0; i < T; i++) {
            n[i] = r->t[i].n;
            int row[6] = {r->t[i].layer, r->t[i].expert, (int)r->t[i].proj, r->t[i].unit,
                          r->t[i].rows, r->t[i].cols};
            for (int k = 0; k < 6; k++)
                iv[(size_t)k * T + i] = row[k];
            names[i] = r->t[i].name;
        }
        put(w, "/sens/tensors/n_weights", H5S_I64, n, 1, T, 0, 0, "weights", "weights per tensor");
        attr_names(w, "/sens", "tensor_names", names, T); /* after the first dataset: /sens
                                                               * exists now */
        static const char *const what[6][2] = {
            {"layer", "decoder layer of the tensor"},
            {"expert", "routed expert index, -1 otherwise"},
            {"proj", "projection class (sens_proj; legend in the proj_names attribute)"},
            {"unit", "index of the sensitivity unit (unit_names) holding the tensor"},
            {"rows", "rows of the weight (output features)"},
            {"cols", "columns of the weight (input features)"}};
        char path[64];
        for (int k = 0; k < 6; k++) {
            snprintf(path, sizeof path, "/sens/tensors/%s", what[k][0]);
            put(w, path, H5S_I32, iv + (size_t)k * T, 1, T, 0, 0, "index", what[k][1]);
        }
        char *pn[SENS_P_COUNT];
        for (int k = 0; k < SENS_P_COUNT; k++)
            pn[k] = (char *)sens_proj_name((sens_proj)k);
        attr_names(w, "/sens/tensors/proj", "proj_names", pn, SENS_P_COUNT);
    }
    vl_free(n);
    vl_free(iv);
    vl_free(names);
}

static void write_alpha(wr *w, const sens_result *r)
{
    int S = r->n_sets, U = r->n_units;
    attr_names(w, "/sens", "set_names", r->set_name, S);
    attr_names(w, "/sens", "unit_names", r->unit_name, U);
    attr(w, "/sens", "granularity", sens_gran_name(r->gran));
    if (r->model_weights > 0) { /* 0: not counted (a result built without a model) */
        attr_f(w, "/sens", "model_weights", (double)r->model_weights);
        attr_f(w, "/sens", "kept_bits_stored", r->kept_bits[0]);
        attr_f(w, "/sens", "kept_bits_gguf", r->kept_bits[1]);
    }
    attr_f(w, "/sens", "eps0", r->eps[0]);
    attr_f(w, "/sens", "eps1", r->eps[1]);
    attr_f(w, "/sens", "seed", (double)r->seed);
    put(w, "/sens/set_tokens", H5S_I64, r->set_tokens, 1, S, 0, 0, "tokens",
        "tokens each set's alpha was measured on");
    put(w, "/sens/alpha/kld0", H5S_F64, r->kld[0], 2, S, U, 0, "nat/token",
        "mean KL(ref||perturbed) with every tensor of the unit at relative noise eps0");
    put(w, "/sens/alpha/kld1", H5S_F64, r->kld[1], 2, S, U, 0, "nat/token",
        "the same at eps1");
    put(w, "/sens/alpha/alpha0", H5S_F64, r->alpha[0], 2, S, U, 0, "nat/token",
        "alpha = kld0/eps0^2: KLD per unit squared relative Frobenius error");
    put(w, "/sens/alpha/alpha1", H5S_F64, r->alpha[1], 2, S, U, 0, "nat/token",
        "alpha at eps1 = kld1/eps1^2");
    double *ratio = vl_malloc((size_t)S * U * sizeof *ratio);
    if (!ratio && !w->rc)
        w->rc = vl_errf(w->err, VL_ENOMEM, "sens: out of memory");
    for (size_t i = 0; ratio && i < (size_t)S * U; i++)
        ratio[i] = r->alpha[1][i] / r->alpha[0][i];
    put(w, "/sens/alpha/ratio", H5S_F64, ratio, 2, S, U, 0, "1",
        "alpha1/alpha0: 1 where KLD is quadratic in the noise (linearity check)");
    vl_free(ratio);
    if (!r->n_draws)
        return; /* α not measured (a store of RD tables only) */
    attr_f(w, "/sens", "n_draws", r->n_draws);
    attr_f(w, "/sens", "n_boot", r->n_boot);
    put(w, "/sens/set_seqs", H5S_I32, r->set_seqs, 1, S, 0, 0, "sequences",
        "sequences each set's alpha was measured on (0: not measured)");
    static const char *const lv[2] = {"0", "1"};
    char path[256];
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "/sens/alpha/alpha%s_se", lv[k]);
        put(w, path, H5S_F64, r->alpha_se[k], 2, S, U, 0, "nat/token",
            "bootstrap standard error of alpha over the set's sequences (NaN: fewer than 2)");
        snprintf(path, sizeof path, "/sens/alpha/alpha%s_draws", lv[k]);
        put(w, path, H5S_F64, r->draw_alpha[k], 3, S, U, r->n_draws, "nat/token",
            "alpha of each noise draw (the stored alpha is their mean)");
        snprintf(path, sizeof path, "/sens/alpha/alpha%s_draw_sd", lv[k]);
        put(w, path, H5S_F64, r->alpha_draw_sd[k], 2, S, U, 0, "nat/token",
            "sample standard deviation of alpha over the noise draws (NaN for one draw)");
    }
    for (int s = 0; s < S; s++) {
        if (!r->seq_kld[s])
            continue;
        snprintf(path, sizeof path, "/sens/seq_kld/%s", r->set_name[s]);
        put(w, path, H5S_F64, r->seq_kld[s], 3, 2, U, r->set_seqs[s], "nat/token",
            "[eps index, unit, sequence]: mean KL(ref||perturbed) over each sequence's tokens, "
            "mean over the noise draws");
    }
}

static void write_rd(wr *w, const sens_result *r)
{
    int S = r->n_sets, T = r->n_tensors, F = r->n_formats;
    char **fn = vl_calloc((size_t)F, sizeof *fn);
    double *fb = vl_calloc((size_t)F, sizeof *fb);
    if (!fn || !fb) {
        w->rc = w->rc ? w->rc : vl_errf(w->err, VL_ENOMEM, "sens: out of memory");
        vl_free(fn);
        vl_free(fb);
        return;
    }
    double nw = 0;
    for (int i = 0; i < T; i++)
        nw += (double)r->t[i].n;
    for (int f = 0; f < F; f++) {
        fn[f] = vl_malloc(QFMT_NAME_MAX);
        if (fn[f])
            qfmt_name(&r->fmt[f], fn[f]);
        for (int i = 0; i < T; i++)
            fb[f] += r->bpw[(size_t)i * F + f] * (double)r->t[i].n / nw;
    }
    int ok = 1;
    for (int f = 0; f < F; f++)
        ok &= fn[f] != NULL;
    attr_names(w, "/sens", "format_names", ok ? fn : NULL, F);
    attr(w, "/sens", "formats_spec", r->spec);
    attr(w, "/sens", "quant_stats", "own"); /* each set's columns: its own statistics */
    attr(w, "/sens", "few_policy", r->few_policy);
    attr_f(w, "/sens", "min_tokens", r->min_tokens);
    put(w, "/sens/rd/format_bpw", H5S_F64, fb, 1, F, 0, 0, "bit/weight",
        "bits per weight of each format over all quantized tensors (weighted by size)");
    put(w, "/sens/rd/bpw", H5S_F64, r->bpw, 2, T, F, 0, "bit/weight",
        "exact stored bits per weight of tensor t in format f (scales and zeros included)");
    put(w, "/sens/rd/rel_w", H5S_F64, r->rel_w, 3, S, T, F, "1",
        "relative weight error ||dW||^2/||W||^2, tensor quantized with set s's statistics");
    put(w, "/sens/rd/rel_imp", H5S_F64, r->rel_imp, 3, S, T, F, "1",
        "importance-weighted relative error, quantized with and weighted by E[x^2] of set s");
    put(w, "/sens/rd/rel_out", H5S_F64, r->rel_out, 3, S, T, F, "1",
        "relative output error tr(dW H dW^T)/tr(W H W^T), quantized with and H = X^T X of set s");
    put(w, "/sens/rd/few", H5S_U8, r->few, 3, S, T, F, "flag",
        "1 when the few-token policy changed how tensor t was quantized in format f for set s");
    put(w, "/sens/rd/w_norm2", H5S_F64, r->w_norm2, 1, T, 0, 0, "weight^2", "||W||_F^2");
    put(w, "/sens/rd/out_energy", H5S_F64, r->out_energy, 2, S, T, 0, "activation^2",
        "tr(W H W^T)/rows: mean squared output norm per token on set s");
    if (r->route_share) /* absent: every tensor weighs 1 (synthetic stores) */
        put(w, "/sens/rd/route_share", H5S_F64, r->route_share, 2, S, T, 0, "1",
            "rho: routed expert: sum of its selected routing weight over the set's tokens / "
            "tokens (share of tokens x mean routing weight); 1 for other tensors");
    put(w, "/sens/rd/noise_energy", H5S_F64, r->noise_energy, 2, S, T, 0, "activation^2",
        "||W||^2 tr(H)/(cols rows): expected output energy of unit-relative isotropic noise");
    for (int f = 0; f < F; f++)
        vl_free(fn[f]);
    vl_free(fn);
    vl_free(fb);
}

#define ADD_STAT_COLS "n,n_distinct,pearson,spearman,partial_bpw,ratio,ratio_lo,ratio_hi," \
                      "slope,slope_lo,slope_hi"

static void write_add(wr *w, const sens_result *r)
{
    int A = r->n_add, U = r->n_units, S = r->n_sets, B = r->n_bands;
    if (!A)
        return;
    const char *g = "/sens/additivity";
    int *bw = vl_malloc(2 * (size_t)B * sizeof *bw);
    if (!bw) {
        w->rc = w->rc ? w->rc : vl_errf(w->err, VL_ENOMEM, "sens: out of memory");
        return;
    }
    for (int b = 0; b < B; b++) {
        bw[2 * b] = r->band[b].lo;
        bw[2 * b + 1] = r->band[b].hi;
    }
    put(w, "/sens/additivity/band_widths", H5S_I32, bw, 2, B, 2, 0, "bit",
        "per band: the two bit widths its draws mix (lo, hi; lo = hi: the menu has one)");
    vl_free(bw);
    put(w, "/sens/additivity/band", H5S_I32, r->add_band, 1, A, 0, 0, "index",
        "band of each draw");
    put(w, "/sens/additivity/bpw", H5S_F64, r->add_bpw, 1, A, 0, 0, "bit/weight",
        "achieved bits per weight of the draw over the quantized tensors");
    put(w, "/sens/additivity/choice", H5S_I32, r->add_choice, 2, A, U, 0, "index",
        "format index (format_names) of every unit in each draw (the same draws on every set)");
    put(w, "/sens/additivity/measured", H5S_F64, r->add_measured, 2, S, A, 0, "nat/token",
        "measured mean KLD of the fake-quantized model on the set's held-out sequences "
        "(NaN: set not checked)");
    put(w, "/sens/additivity/pred_rel", H5S_F64, r->add_pred[0], 2, S, A, 0, "nat/token",
        "predicted KLD: sum over tensors of alpha' times the relative weight error share "
        "(alpha' from the sequences not held out)");
    put(w, "/sens/additivity/pred_out", H5S_F64, r->add_pred[1], 2, S, A, 0, "nat/token",
        "predicted KLD: the same with the relative output error share");
    put(w, "/sens/additivity/holdout", H5S_I32, r->add_holdout, 2, S, 2, 0, "sequence",
        "per set: first held-out sequence and their count (the last ceil(n/4)); 0: unchecked");
    if (!w->rc) {
        int64_t sh[4] = {S, B, 2, SENS_BS_COUNT};
        w->rc = h5s_write(w->st, "/sens/additivity/stats", H5S_F64, r->add_stats, 4, sh, "1",
                          "per set, band, error form (rel, out): n, n_distinct (draws, "
                          "assignments), Pearson, Spearman, partial r given bpw (1), ratio "
                          "sum(xy)/sum(x^2) and least-squares slope of measured on predicted "
                          "(1) with 95% bootstrap intervals over draws", w->err);
    }
    attr(w, "/sens/additivity/stats", "columns", ADD_STAT_COLS);
    attr(w, "/sens/additivity/stats", "forms", "rel,out");
    attr_f(w, g, "draws_per_band", r->add_draws);
}

int sens_write(const sens_result *r, h5s_store *st, vl_err *err)
{
    if (r->seed > (uint64_t)1 << 53) /* the attribute is a double: exact up to 2^53 only */
        return vl_errf(err, VL_ERANGE, "%s: seed %llu above 2^53 cannot be stored exactly",
                       h5s_path(st), (unsigned long long)r->seed);
    wr w = {st, err, 0};
    write_tensors(&w, r);
    write_alpha(&w, r);
    if (r->n_formats)
        write_rd(&w, r);
    write_add(&w, r);
    return w.rc;
}

/* ---------------------------------------------------------------- read */

typedef struct {
    h5s_store *st;
    vl_err *err;
    int rc;
} rd;

/* Read PATH as type t with exactly the shape [d0] / [d0, d1] / [d0, d1, d2] (nd dimensions),
 * the shape the /sens attributes and the other datasets imply. */
static void *get_nd(rd *x, const char *path, h5s_dtype t, int nd_want, int64_t d0, int64_t d1,
                    int64_t d2)
{
    if (x->rc)
        return NULL;
    void *data = NULL;
    int nd;
    int64_t sh[H5S_MAX_DIMS], want[3] = {d0, d1, d2};
    if (!h5s_exists(x->st, path)) {
        x->rc = vl_errf(x->err, VL_ENOTFOUND, "%s: missing dataset %s", h5s_path(x->st), path);
        return NULL;
    }
    if ((x->rc = h5s_read(x->st, path, t, &data, &nd, sh, x->err)))
        return NULL;
    int ok = nd == nd_want;
    for (int k = 0; ok && k < nd; k++)
        ok = sh[k] == want[k];
    if (!ok) {
        char got[96] = "", exp[96] = "";
        for (int k = 0, a = 0, b = 0; k < nd || k < nd_want; k++) {
            if (k < nd && a < (int)sizeof got)
                a += snprintf(got + a, sizeof got - (size_t)a, "%s%lld", k ? ", " : "",
                              (long long)sh[k]);
            if (k < nd_want && b < (int)sizeof exp)
                b += snprintf(exp + b, sizeof exp - (size_t)b, "%s%lld", k ? ", " : "",
                              (long long)want[k]);
        }
        vl_free(data);
        x->rc = vl_errf(x->err, VL_ESHAPE, "%s: %s has shape [%s], the /sens attributes say [%s]",
                        h5s_path(x->st), path, got, exp);
        return NULL;
    }
    return data;
}

static void *get(rd *x, const char *path, h5s_dtype t, int64_t n)
{
    return get_nd(x, path, t, 1, n, 0, 0);
}

static void *get2(rd *x, const char *path, h5s_dtype t, int64_t a, int64_t b)
{
    return get_nd(x, path, t, 2, a, b, 0);
}

static void *get3(rd *x, const char *path, h5s_dtype t, int64_t a, int64_t b, int64_t c)
{
    return get_nd(x, path, t, 3, a, b, c);
}

/* Every v[0..n) finite and >= 0 (NaN too when nan_ok: "not measured"); else one line naming
 * the dataset and the entry. */
static void check_nonneg(rd *x, const char *path, const double *v, int64_t n, int nan_ok)
{
    for (int64_t i = 0; !x->rc && v && i < n; i++)
        if (!(isnan(v[i]) && nan_ok) && !(v[i] >= 0 && isfinite(v[i])))
            x->rc = vl_errf(x->err, VL_ERANGE, "%s: %s[%lld] = %g (must be finite and >= 0%s)",
                            h5s_path(x->st), path, (long long)i, v[i],
                            nan_ok ? ", or NaN" : "");
}


static char *get_attr(rd *x, const char *path, const char *name)
{
    char *v = NULL;
    if (!x->rc)
        x->rc = h5s_attr_get(x->st, path, name, &v, x->err);
    return v;
}

static void read_names(rd *x, const char *attr, int *n, char ***v)
{
    if (!x->rc)
        x->rc = h5s_attr_get_names(x->st, "/sens", attr, v, n, x->err);
}

static void read_tensors(rd *x, sens_result *r)
{
    char **names = NULL;
    read_names(x, "tensor_names", &r->n_tensors, &names);
    int T = r->n_tensors;
    int64_t *n = get(x, "/sens/tensors/n_weights", H5S_I64, T);
    static const char *const f[6] = {"layer", "expert", "proj", "unit", "rows", "cols"};
    int *iv[6] = {0};
    char path[64];
    for (int k = 0; k < 6; k++) {
        snprintf(path, sizeof path, "/sens/tensors/%s", f[k]);
        iv[k] = get(x, path, H5S_I32, T);
    }
    if (!x->rc && !(r->t = vl_calloc((size_t)T, sizeof *r->t)))
        x->rc = vl_errf(x->err, VL_ENOMEM, "sens: out of memory");
    for (int i = 0; !x->rc && i < T; i++) {
        sens_tensor *t = &r->t[i];
        *t = (sens_tensor){-1, names[i], iv[0][i], iv[1][i], (sens_proj)iv[2][i], iv[4][i],
                           iv[5][i], n[i], iv[3][i]};
        names[i] = NULL;
        if (t->rows < 1 || t->cols < 1 || t->n != (int64_t)t->rows * t->cols ||
            iv[2][i] < 0 || iv[2][i] >= SENS_P_COUNT || t->unit < 0 || t->unit >= r->n_units ||
            (t->layer < 0 && !(t->proj == SENS_P_EMBED || t->proj == SENS_P_HEAD)) ||
            t->layer < -1 || t->expert < -1 || !t->name[0])
            x->rc = vl_errf(x->err, VL_EFORMAT,
                            "%s: /sens/tensors: bad entry %d (\"%s\": layer %d, expert %d, "
                            "unit %d of %d, %d x %d = %lld weights?)",
                            h5s_path(x->st), i, t->name, t->layer, t->expert, t->unit,
                            r->n_units, t->rows, t->cols, (long long)t->n);
    }
    for (int i = 0; names && i < T; i++)
        vl_free(names[i]);
    vl_free(names);
    vl_free(n);
    for (int k = 0; k < 6; k++)
        vl_free(iv[k]);
}


static double get_f(rd *x, const char *path, const char *name)
{
    double v = NAN;
    if (!x->rc)
        x->rc = h5s_attr_get_f64(x->st, path, name, &v, x->err);
    return v;
}

/* An attribute holding a whole number (stored as a double) in [0, 2^53]: checked before any
 * conversion, since NaN, a negative or a huge double cast to an integer is undefined. */
/* An attribute holding a whole number (stored as a double) in [0, 2^53]: checked before any
 * conversion, since NaN, a negative or a huge double cast to an integer is undefined. */
static uint64_t get_whole(rd *x, const char *path, const char *name)
{
    double v = get_f(x, path, name);
    int64_t w = 0;
    if (!x->rc && num_whole(v, 0, (int64_t)1 << 53, &w))
        x->rc = vl_errf(x->err, VL_EFORMAT, "%s: %s@%s = %g is not a whole number in [0, 2^53]",
                        h5s_path(x->st), path, name, v);
    return (uint64_t)w;
}

static void read_rd(rd *x, sens_result *r)
{
    int S = r->n_sets, T = r->n_tensors;
    char **fn = NULL;
    if (x->rc || !h5s_exists(x->st, "/sens/rd/bpw"))
        return; /* α only */
    read_names(x, "format_names", &r->n_formats, &fn);
    int F = r->n_formats;
    if (!x->rc && !(r->fmt = vl_calloc((size_t)F, sizeof *r->fmt)))
        x->rc = vl_errf(x->err, VL_ENOMEM, "sens: out of memory");
    for (int f = 0; !x->rc && f < F; f++)
        x->rc = qfmt_parse(&r->fmt[f], fn[f], x->err);
    for (int f = 0; fn && f < F; f++)
        vl_free(fn[f]);
    vl_free(fn);
    r->spec = get_attr(x, "/sens", "formats_spec");
    r->few_policy = get_attr(x, "/sens", "few_policy");
    char *qs = get_attr(x, "/sens", "quant_stats");
    if (!x->rc && strcmp(qs, "own"))
        x->rc = vl_errf(x->err, VL_EFORMAT, "%s: /sens: quant_stats \"%s\" (expected \"own\": "
                        "each set's RD columns quantized with its own statistics)",
                        h5s_path(x->st), qs);
    vl_free(qs);
    r->min_tokens = get_f(x, "/sens", "min_tokens");
    int64_t tf = (int64_t)T * F;
    if (!x->rc && !(r->min_tokens >= 0 && isfinite(r->min_tokens)))
        x->rc = vl_errf(x->err, VL_ERANGE, "%s: /sens@min_tokens = %g (must be finite and >= 0)",
                        h5s_path(x->st), r->min_tokens);
    r->bpw = get2(x, "/sens/rd/bpw", H5S_F64, T, F);
    r->rel_w = get3(x, "/sens/rd/rel_w", H5S_F64, S, T, F);
    r->rel_imp = get3(x, "/sens/rd/rel_imp", H5S_F64, S, T, F);
    r->rel_out = get3(x, "/sens/rd/rel_out", H5S_F64, S, T, F);
    r->few = get3(x, "/sens/rd/few", H5S_U8, S, T, F);
    r->w_norm2 = get(x, "/sens/rd/w_norm2", H5S_F64, T);
    r->out_energy = get2(x, "/sens/rd/out_energy", H5S_F64, S, T);
    r->noise_energy = get2(x, "/sens/rd/noise_energy", H5S_F64, S, T);
    if (!x->rc && h5s_exists(x->st, "/sens/rd/route_share"))
        r->route_share = get2(x, "/sens/rd/route_share", H5S_F64, S, T);
    for (int64_t i = 0; !x->rc && i < tf; i++)
        if (!(r->bpw[i] > 0 && r->bpw[i] <= 64))
            x->rc = vl_errf(x->err, VL_ERANGE, "%s: /sens/rd/bpw[%lld] = %g (must be in (0, 64])",
                            h5s_path(x->st), (long long)i, r->bpw[i]);
    check_nonneg(x, "/sens/rd/rel_w", r->rel_w, S * tf, 0);
    check_nonneg(x, "/sens/rd/rel_imp", r->rel_imp, S * tf, 1);
    check_nonneg(x, "/sens/rd/rel_out", r->rel_out, S * tf, 1);
    for (int64_t i = 0; !x->rc && i < S * tf; i++)
        if (r->few[i] > 1)
            x->rc = vl_errf(x->err, VL_ERANGE, "%s: /sens/rd/few[%lld] = %d (a flag: 0 or 1)",
                            h5s_path(x->st), (long long)i, r->few[i]);
    check_nonneg(x, "/sens/rd/w_norm2", r->w_norm2, T, 0);
    check_nonneg(x, "/sens/rd/out_energy", r->out_energy, (int64_t)S * T, 1);
    check_nonneg(x, "/sens/rd/noise_energy", r->noise_energy, (int64_t)S * T, 1);
    check_nonneg(x, "/sens/rd/route_share", r->route_share, (int64_t)S * T, 1);
}

/* The additivity check (stores written before the per-band layout hold /sens/additivity/corr
 * instead of /stats: read as not measured). */
static void read_add(rd *x, sens_result *r)
{
    int nd, S = r->n_sets, U = r->n_units;
    int64_t sh[H5S_MAX_DIMS];
    if (x->rc || !h5s_exists(x->st, "/sens/additivity/stats"))
        return;
    if ((x->rc = h5s_shape(x->st, "/sens/additivity/stats", &nd, sh, x->err)))
        return;
    if (nd != 4 || sh[0] != S || sh[1] < 1 || sh[1] > SENS_MAX_BANDS || sh[2] != 2 ||
        sh[3] != SENS_BS_COUNT) {
        x->rc = vl_errf(x->err, VL_EFORMAT, "%s: /sens/additivity/stats: bad shape",
                        h5s_path(x->st));
        return;
    }
    int B = r->n_bands = (int)sh[1];
    double d = get_f(x, "/sens/additivity", "draws_per_band");
    if (!x->rc && !(d >= 1 && d <= SENS_MAX_ADD_DRAWS && d == floor(d)))
        x->rc = vl_errf(x->err, VL_EFORMAT, "%s: /sens/additivity: bad draws_per_band %g",
                        h5s_path(x->st), d);
    if (x->rc)
        return;
    r->add_draws = (int)d;
    int A = r->n_add = B * r->add_draws;
    int *bw = get2(x, "/sens/additivity/band_widths", H5S_I32, B, 2);
    r->add_band = get(x, "/sens/additivity/band", H5S_I32, A);
    r->add_bpw = get(x, "/sens/additivity/bpw", H5S_F64, A);
    r->add_choice = get2(x, "/sens/additivity/choice", H5S_I32, A, U);
    r->add_measured = get2(x, "/sens/additivity/measured", H5S_F64, S, A);
    r->add_pred[0] = get2(x, "/sens/additivity/pred_rel", H5S_F64, S, A);
    r->add_pred[1] = get2(x, "/sens/additivity/pred_out", H5S_F64, S, A);
    check_nonneg(x, "/sens/additivity/bpw", r->add_bpw, A, 0);
    check_nonneg(x, "/sens/additivity/measured", r->add_measured, (int64_t)S * A, 1);
    check_nonneg(x, "/sens/additivity/pred_rel", r->add_pred[0], (int64_t)S * A, 1);
    check_nonneg(x, "/sens/additivity/pred_out", r->add_pred[1], (int64_t)S * A, 1);
    r->add_holdout = get2(x, "/sens/additivity/holdout", H5S_I32, S, 2);
    /* [S, B, 2, SENS_BS_COUNT]: its shape was checked above (get_nd stops at 3 dimensions) */
    if (!x->rc)
        x->rc = h5s_read(x->st, "/sens/additivity/stats", H5S_F64, (void **)&r->add_stats, &nd,
                         sh, x->err);
    if (!x->rc && !(r->band = vl_malloc((size_t)B * sizeof *r->band)))
        x->rc = vl_errf(x->err, VL_ENOMEM, "sens: out of memory");
    for (int b = 0; !x->rc && b < B; b++) {
        r->band[b] = (sens_band){bw[2 * b], bw[2 * b + 1]};
        if (bw[2 * b] < 1 || bw[2 * b] > bw[2 * b + 1] || bw[2 * b + 1] > 64)
            x->rc = vl_errf(x->err, VL_EFORMAT, "%s: /sens/additivity/band_widths: bad band %d",
                            h5s_path(x->st), b);
    }
    vl_free(bw);
    for (int a = 0; !x->rc && a < A; a++)
        if (r->add_band[a] != a / r->add_draws)
            x->rc = vl_errf(x->err, VL_EFORMAT, "%s: /sens/additivity/band: draw %d in band %d",
                            h5s_path(x->st), a, r->add_band[a]);
    for (int64_t i = 0; !x->rc && i < (int64_t)A * U; i++)
        if (r->add_choice[i] < 0 || r->add_choice[i] >= r->n_formats)
            x->rc = vl_errf(x->err, VL_EFORMAT, "%s: /sens/additivity/choice: format %d "
                            "outside the menu", h5s_path(x->st), r->add_choice[i]);
    for (int s = 0; !x->rc && s < S; s++) {
        int f0 = r->add_holdout[2 * s], h = r->add_holdout[2 * s + 1];
        int n = r->set_seqs ? r->set_seqs[s] : f0 + h; /* no α counts: the split alone */
        if (h < 0 || f0 < 0 || (h && (f0 + h != n || h >= n)))
            x->rc = vl_errf(x->err, VL_EFORMAT, "%s: /sens/additivity/holdout: set %s: "
                            "sequences [%d, +%d) of %d", h5s_path(x->st), r->set_name[s], f0,
                            h, n);
    }
}

/* SE, draws and per-sequence KLDs (absent in stores written before they were measured: the
 * fields stay empty and are printed as not measured). */
static void read_alpha_extra(rd *x, sens_result *r)
{
    int S = r->n_sets, U = r->n_units;
    if (x->rc || !h5s_exists(x->st, "/sens/set_seqs"))
        return;
    double d = get_f(x, "/sens", "n_draws"), b = get_f(x, "/sens", "n_boot");
    if (!x->rc && !(d >= 1 && d <= SENS_MAX_DRAWS && d == floor(d) && b >= 0 && b < 1e7 &&
                    b == floor(b)))
        x->rc = vl_errf(x->err, VL_EFORMAT, "%s: /sens: bad n_draws %g or n_boot %g",
                        h5s_path(x->st), d, b);
    if (x->rc)
        return;
    r->n_draws = (int)d;
    r->n_boot = (int)b;
    r->set_seqs = get(x, "/sens/set_seqs", H5S_I32, S);
    static const char *const lv[2] = {"0", "1"};
    char path[256];
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "/sens/alpha/alpha%s_se", lv[k]);
        r->alpha_se[k] = get2(x, path, H5S_F64, S, U);
        check_nonneg(x, path, r->alpha_se[k], (int64_t)S * U, 1);
        snprintf(path, sizeof path, "/sens/alpha/alpha%s_draws", lv[k]);
        r->draw_alpha[k] = get3(x, path, H5S_F64, S, U, r->n_draws);
        check_nonneg(x, path, r->draw_alpha[k], (int64_t)S * U * r->n_draws, 1);
        snprintf(path, sizeof path, "/sens/alpha/alpha%s_draw_sd", lv[k]);
        r->alpha_draw_sd[k] = get2(x, path, H5S_F64, S, U);
        check_nonneg(x, path, r->alpha_draw_sd[k], (int64_t)S * U, 1);
    }
    if (!x->rc && !(r->seq_kld = vl_calloc((size_t)S, sizeof *r->seq_kld)))
        x->rc = vl_errf(x->err, VL_ENOMEM, "sens: out of memory");
    for (int s = 0; !x->rc && s < S; s++) {
        if (r->set_seqs[s] < 0 || r->set_seqs[s] > (1 << 24) ||
            r->set_seqs[s] > r->set_tokens[s]) {
            x->rc = vl_errf(x->err, VL_EFORMAT,
                            "%s: /sens/set_seqs[%d] = %d sequences (of %lld tokens): not a "
                            "count in [0, tokens]", h5s_path(x->st), s, r->set_seqs[s],
                            (long long)r->set_tokens[s]);
            break;
        }
        snprintf(path, sizeof path, "/sens/seq_kld/%s", r->set_name[s]);
        if (r->set_seqs[s]) {
            r->seq_kld[s] = get3(x, path, H5S_F64, 2, U, r->set_seqs[s]);
            check_nonneg(x, path, r->seq_kld[s], 2 * (int64_t)U * r->set_seqs[s], 1);
        }
    }
}

/* Set names follow the one name rule (calib_name_ok) and are distinct; unit names are
 * non-empty and distinct (they key the units). */
static void check_names(rd *x, const sens_result *r)
{
    for (int s = 0; !x->rc && s < r->n_sets; s++) {
        if (!calib_name_ok(r->set_name[s]))
            x->rc = vl_errf(x->err, VL_EFORMAT,
                            "%s: /sens@set_names: set %d is not a name ([A-Za-z0-9._+-]+)",
                            h5s_path(x->st), s);
        for (int k = 0; !x->rc && k < s; k++)
            if (!strcmp(r->set_name[k], r->set_name[s]))
                x->rc = vl_errf(x->err, VL_EFORMAT, "%s: /sens@set_names: set %s twice",
                                h5s_path(x->st), r->set_name[s]);
    }
    for (int u = 0; !x->rc && u < r->n_units; u++)
        if (!r->unit_name[u][0])
            x->rc = vl_errf(x->err, VL_EFORMAT, "%s: /sens@unit_names: unit %d has no name",
                            h5s_path(x->st), u);
}

/* Whole-model bit counts: absent in stores written before they were kept (NaN, 0 weights);
 * present ones must be sane. */
static void read_model_bits(rd *x, sens_result *r)
{
    double mw = 0;
    r->kept_bits[0] = r->kept_bits[1] = NAN;
    if (x->rc || h5s_attr_get_f64(x->st, "/sens", "model_weights", &mw, NULL))
        return;
    int64_t body = 0;
    for (int i = 0; i < r->n_tensors; i++)
        body += r->t[i].n;
    const char *k[2] = {"kept_bits_stored", "kept_bits_gguf"};
    for (int j = 0; j < 2 && !x->rc; j++)
        if (h5s_attr_get_f64(x->st, "/sens", k[j], &r->kept_bits[j], NULL) ||
            !(r->kept_bits[j] >= 0 && isfinite(r->kept_bits[j])))
            x->rc = vl_errf(x->err, VL_EFORMAT, "%s: /sens@%s missing or bad",
                            h5s_path(x->st), k[j]);
    if (!x->rc && !(mw >= (double)body && mw < 9.0e15))
        x->rc = vl_errf(x->err, VL_EFORMAT, "%s: /sens@model_weights = %g, fewer than the %lld "
                        "weights of its tensors", h5s_path(x->st), mw, (long long)body);
    r->model_weights = (int64_t)mw;
}

int sens_read(sens_result *r, h5s_store *st, vl_err *err)
{
    memset(r, 0, sizeof *r);
    rd x = {st, err, 0};
    char *g = get_attr(&x, "/sens", "granularity");
    if (!x.rc)
        x.rc = sens_gran_parse(g, &r->gran, err);
    vl_free(g);
    read_names(&x, "unit_names", &r->n_units, &r->unit_name);
    read_names(&x, "set_names", &r->n_sets, &r->set_name);
    check_names(&x, r);
    read_tensors(&x, r);
    int S = r->n_sets, U = r->n_units;
    r->eps[0] = get_f(&x, "/sens", "eps0");
    r->eps[1] = get_f(&x, "/sens", "eps1");
    r->seed = get_whole(&x, "/sens", "seed");
    for (int k = 0; k < 2 && !x.rc; k++)
        if (!(r->eps[k] > 0 && r->eps[k] < 1e6))
            x.rc = vl_errf(err, VL_ERANGE, "%s: /sens@eps%d = %g (must be finite and > 0)",
                           h5s_path(st), k, r->eps[k]);
    read_model_bits(&x, r);
    r->set_tokens = get(&x, "/sens/set_tokens", H5S_I64, S);
    for (int s = 0; !x.rc && s < S; s++)
        if (r->set_tokens[s] < 0)
            x.rc = vl_errf(err, VL_ERANGE, "%s: /sens/set_tokens[%d] = %lld is a negative count",
                           h5s_path(st), s, (long long)r->set_tokens[s]);
    r->kld[0] = get2(&x, "/sens/alpha/kld0", H5S_F64, S, U);
    r->kld[1] = get2(&x, "/sens/alpha/kld1", H5S_F64, S, U);
    r->alpha[0] = get2(&x, "/sens/alpha/alpha0", H5S_F64, S, U);
    r->alpha[1] = get2(&x, "/sens/alpha/alpha1", H5S_F64, S, U);
    /* NaN = not measured: allowed; a negative or infinite KLD or α is not a measurement */
    check_nonneg(&x, "/sens/alpha/kld0", r->kld[0], (int64_t)S * U, 1);
    check_nonneg(&x, "/sens/alpha/kld1", r->kld[1], (int64_t)S * U, 1);
    check_nonneg(&x, "/sens/alpha/alpha0", r->alpha[0], (int64_t)S * U, 1);
    check_nonneg(&x, "/sens/alpha/alpha1", r->alpha[1], (int64_t)S * U, 1);
    read_alpha_extra(&x, r);
    read_rd(&x, r);
    read_add(&x, r);
    if (x.rc)
        sens_result_free(r);
    return x.rc;
}
