/* analysis/eval_store.c — /eval in the store: domains, per-token results with their summary
 * attributes (one table, so the writer and the reader name the same attributes), the matrix.
 * Layout: docs/hdf5-schema.md, section "vbrlab eval".
 */
#define _POSIX_C_SOURCE 200809L
#include "eval.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- summary attributes */

/* The scalar attributes of /eval/<row>/<dom>: name, field of kld_summary (a double), meaning.
 * n_tokens, ppl_ratio and the entropy slice counts are handled apart. */
static const struct {
    const char *name;
    size_t off;
} sum_attr[] = {
#define F(n) {#n, offsetof(kld_summary, n)}
    F(kld_mean),   F(kld_mean_se), F(kld_median), F(kld_p90),    F(kld_p95),
    F(kld_p99),    F(kld_p999),    F(kld_max),    F(kld_p10),    F(kld_p05),
    F(kld_p01),    F(kld_p001),    F(kld_min),    F(same_top),   F(same_top_se),
    F(rms_dp),     F(rms_dp_se),   F(dp_mean),    F(dp_mean_se), F(dp_max),
    F(dp_p999),    F(dp_p99),      F(dp_p95),     F(dp_p90),     F(dp_p75),
    F(dp_median),  F(dp_p25),      F(dp_p10),     F(dp_p05),     F(dp_p01),
    F(dp_p001),    F(dp_min),      F(ppl_ref),    F(ppl_q),      F(ppl_ref_se),
    F(ppl_q_se),   F(ln_ppl_ratio), F(ln_ppl_ratio_se), F(ln_ppl_cor),
#undef F
};

static const char *const slice_names[KLD_SLICES] = {"low", "mid", "high"};

const char *ev_slice_name(int k) { return k >= 0 && k < KLD_SLICES ? slice_names[k] : "?"; }

static double *sum_field(kld_summary *m, size_t off) { return (double *)((char *)m + off); }

static int write_summary(h5s_store *s, const char *g, const kld_summary *m, vl_err *err)
{
    kld_summary c = *m;
    int rc = h5s_attr_set_f64(s, g, "n_tokens", (double)m->n, err);
    for (size_t i = 0; !rc && i < sizeof sum_attr / sizeof *sum_attr; i++)
        rc = h5s_attr_set_f64(s, g, sum_attr[i].name, *sum_field(&c, sum_attr[i].off), err);
    if (!rc)
        rc = h5s_attr_set_f64(s, g, "ppl_ratio", m->ppl_q / m->ppl_ref, err);
    if (!rc)
        rc = h5s_attr_set_f64(s, g, "entropy_t1", m->ent_thr[0], err);
    if (!rc)
        rc = h5s_attr_set_f64(s, g, "entropy_t2", m->ent_thr[1], err);
    for (int k = 0; !rc && k < KLD_SLICES; k++) {
        char a[48];
        snprintf(a, sizeof a, "kld_mean_%s_entropy", slice_names[k]);
        rc = h5s_attr_set_f64(s, g, a, m->ent_kld[k], err);
        snprintf(a, sizeof a, "kld_mean_se_%s_entropy", slice_names[k]);
        if (!rc)
            rc = h5s_attr_set_f64(s, g, a, m->ent_kld_se[k], err);
        snprintf(a, sizeof a, "n_tokens_%s_entropy", slice_names[k]);
        if (!rc)
            rc = h5s_attr_set_f64(s, g, a, (double)m->ent_n[k], err);
    }
    return rc;
}

int ev_read_summary(h5s_store *s, const char *row, const char *dom, kld_summary *m, vl_err *err)
{
    memset(m, 0, sizeof *m);
    char g[2 * EV_NAME_MAX + 16];
    snprintf(g, sizeof g, "/eval/%s/%s", row, dom);
    double n = 0;
    if (!h5s_exists(s, g) || h5s_attr_get_f64(s, g, "n_tokens", &n, NULL))
        return vl_errf(err, VL_ENOTFOUND, "%s: no evaluation %s (attribute n_tokens)",
                       h5s_path(s), g);
    if (!(n >= 1 && n < 1e15))
        return vl_errf(err, VL_ERANGE, "%s: %s@n_tokens = %g", h5s_path(s), g, n);
    m->n = (size_t)n;
    /* attributes a store of an older vbrlab lacks read as NaN */
    for (size_t i = 0; i < sizeof sum_attr / sizeof *sum_attr; i++)
        if (h5s_attr_get_f64(s, g, sum_attr[i].name, sum_field(m, sum_attr[i].off), NULL))
            *sum_field(m, sum_attr[i].off) = NAN;
    const char *thr[2] = {"entropy_t1", "entropy_t2"};
    for (int k = 0; k < 2; k++)
        if (h5s_attr_get_f64(s, g, thr[k], &m->ent_thr[k], NULL))
            m->ent_thr[k] = NAN;
    for (int k = 0; k < KLD_SLICES; k++) {
        char a[48];
        double v;
        snprintf(a, sizeof a, "kld_mean_%s_entropy", slice_names[k]);
        m->ent_kld[k] = h5s_attr_get_f64(s, g, a, &v, NULL) ? NAN : v;
        snprintf(a, sizeof a, "kld_mean_se_%s_entropy", slice_names[k]);
        m->ent_kld_se[k] = h5s_attr_get_f64(s, g, a, &v, NULL) ? NAN : v;
        snprintf(a, sizeof a, "n_tokens_%s_entropy", slice_names[k]);
        m->ent_n[k] = h5s_attr_get_f64(s, g, a, &v, NULL) || !(v >= 0 && v <= n) ? 0 : (size_t)v;
    }
    return 0;
}

/* ---------------------------------------------------------------- domains and results */

int ev_write_domain(h5s_store *s, const calib_set *set, const ev_result *res, vl_err *err)
{
    char g[CALIB_NAME_MAX + 32], p[sizeof g + 32], seed[32];
    snprintf(g, sizeof g, "/eval/domains/%s", set->spec.name);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)set->spec.seed); /* exact */
    int64_t sh[2] = {set->n_seq, set->seq_len};
    VL_ASSERT(res->n_seq == set->n_seq && res->len == set->seq_len);
    snprintf(p, sizeof p, "%s/ids", g);
    int rc = h5s_write(s, p, H5S_I32, set->ids, 2, sh, "token id",
                       "token ids of the evaluation sequences, built as calibration sets are "
                       "(analysis/calib.h) from the source and seed in the group's attributes",
                       err);
    if (rc)
        return rc;
    sh[1] = set->seq_len - 1 - res->first;
    snprintf(p, sizeof p, "%s/entropy_ref", g);
    if ((rc = h5s_write(s, p, H5S_F64, res->entropy_ref, 2, sh, "nat",
                        "entropy of the reference model's next-token distribution at the "
                        "scored positions first_position .. len-2 of each sequence",
                        err)))
        return rc;
    int64_t two = 2;
    snprintf(p, sizeof p, "%s/entropy_terciles", g);
    if ((rc = h5s_write(s, p, H5S_F64, res->sum.ent_thr, 1, &two, "nat",
                        "thresholds t1, t2 of the entropy slices: low H <= t1 < mid <= t2 < "
                        "high (the 1/3 and 2/3 quantiles of entropy_ref)",
                        err)))
        return rc;
    if ((rc = h5s_attr_set(s, g, "source", set->spec.source, err)) ||
        (rc = h5s_attr_set(s, g, "kind", calib_kind_name(set->spec.kind), err)) ||
        (rc = h5s_attr_set_f64(s, g, "seqs", set->n_seq, err)) ||
        (rc = h5s_attr_set_f64(s, g, "len", set->seq_len, err)) ||
        (rc = h5s_attr_set_f64(s, g, "first_position", res->first, err)) ||
        (rc = h5s_attr_set(s, g, "seed", seed, err)))
        return rc;
    return 0;
}

int ev_write_result(h5s_store *s, const char *alloc, const char *domain, const ev_result *res,
                    vl_err *err)
{
    char g[2 * EV_NAME_MAX + 16], p[sizeof g + 32];
    snprintf(g, sizeof g, "/eval/%s/%s", alloc, domain);
    int64_t sh[2] = {res->n_seq, res->len - 1 - res->first};
    VL_ASSERT(res->acc.n == (size_t)sh[0] * (size_t)sh[1]);
    const struct {
        const char *name;
        h5s_dtype t;
        const void *data;
        const char *units, *meaning;
    } ds[] = {
        {"kld", H5S_F64, res->acc.kld, "nat",
         "KL(p_ref || p_quant) of the next-token distributions at the scored positions "
         "first_position .. len-2"},
        {"dp", H5S_F64, res->acc.dp, "probability",
         "p_quant(actual next token) - p_ref(actual next token)"},
        {"nll_ref", H5S_F64, res->acc.nll_ref, "nat", "-log p_ref(actual next token)"},
        {"nll_q", H5S_F64, res->acc.nll_q, "nat", "-log p_quant(actual next token)"},
        {"same_top", H5S_U8, res->acc.same, "1",
         "1 where argmax p_quant == argmax p_ref (lowest index on ties), else 0"},
    };
    for (size_t i = 0; i < sizeof ds / sizeof *ds; i++) {
        snprintf(p, sizeof p, "%s/%s", g, ds[i].name);
        int rc = h5s_write(s, p, ds[i].t, ds[i].data, 2, sh, ds[i].units, ds[i].meaning, err);
        if (rc)
            return rc;
    }
    int rc = h5s_attr_set_f64(s, g, "first_position", res->first, err);
    return rc ? rc : write_summary(s, g, &res->sum, err);
}

/* ---------------------------------------------------------------- the matrix */

int ev_write_matrix(h5s_store *s, const ev_matrix *mx, vl_err *err)
{
    size_t n = (size_t)mx->n_alloc * mx->n_dom;
    double *v = vl_malloc((n ? n : 1) * KLD_SLICES * sizeof *v);
    int rc = 0;
    if (!v) {
        rc = vl_errf(err, VL_ENOMEM, "eval: out of memory writing the matrix");
        goto done;
    }
    int64_t sh[3] = {mx->n_alloc, mx->n_dom, KLD_SLICES};
    static const char *const names[] = {"mean_kld", "mean_kld_se", "same_top", "ppl_ratio",
                                        "kld_entropy", "kld_entropy_se"};
    static const char *const units[] = {"nat", "nat", "1", "1", "nat", "nat"};
    static const char *const meaning[] = {
        "mean per-token KL(p_ref || p_quant); row = allocation (attribute rows), column = "
        "eval domain (attribute cols)",
        "standard error of mean_kld (llama.cpp's definition)",
        "fraction of tokens whose argmax agrees with the reference's",
        "PPL_quant / PPL_ref on the domain",
        "mean KLD of the tokens in each tercile of the reference entropy (last axis: low, "
        "mid, high; thresholds in /eval/domains/<dom>/entropy_terciles)",
        "standard error of kld_entropy"};
    for (int k = 0; k < 6 && !rc; k++) {
        int sliced = k >= 4;
        for (size_t i = 0; i < n; i++) {
            const kld_summary *m = &mx->sums[i];
            if (sliced) {
                for (int j = 0; j < KLD_SLICES; j++)
                    v[i * KLD_SLICES + j] = k == 4 ? m->ent_kld[j] : m->ent_kld_se[j];
                continue;
            }
            v[i] = k == 0 ? m->kld_mean
                 : k == 1 ? m->kld_mean_se
                 : k == 2 ? m->same_top
                          : m->ppl_q / m->ppl_ref;
        }
        char p[64];
        snprintf(p, sizeof p, "/eval/matrix/%s", names[k]);
        rc = h5s_write(s, p, H5S_F64, v, sliced ? 3 : 2, sh, units[k], meaning[k], err);
    }
    if (!rc && !(rc = h5s_attr_set_names(s, "/eval/matrix", "rows", mx->alloc_names,
                                         mx->n_alloc, err)))
        rc = h5s_attr_set_names(s, "/eval/matrix", "cols", mx->dom_names, mx->n_dom, err);
    if (!rc)
        rc = h5s_attr_set(s, "/eval/matrix", "scored",
                          mx->second_half ? "second_half" : "all", err);
done:
    vl_free(v);
    return rc;
}
