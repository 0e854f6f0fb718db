/* analysis/eval_read.c — the one validating reader of an evaluation store (/eval; layout in
 * docs/hdf5-schema.md, "vbrlab eval"). The plots, the report and the runner read the KLD
 * matrix through ev_read_store, so a store that contradicts itself is refused the same way
 * wherever it is read.
 */
#include "eval.h"

#include "../core/num.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void ev_store_free(ev_store *m)
{
    if (!m)
        return;
    h5s_names_free(m->rows, m->n_rows);
    h5s_names_free(m->cols, m->n_cols);
    vl_free(m->mean_kld);
    vl_free(m->mean_kld_se);
    vl_free(m->same_top);
    vl_free(m->ppl_ratio);
    memset(m, 0, sizeof *m);
}

/* Attribute ATTR of /eval/matrix (h5s_attr_get_names): the one name rule, distinct. */
static int names(h5s_store *s, const char *attr, char ***out, int *n, vl_err *err)
{
    int rc = h5s_attr_get_names(s, "/eval/matrix", attr, out, n, err);
    if (rc == VL_ENOTFOUND)
        return vl_errf(err, VL_EFORMAT, "%s: /eval/matrix: missing attribute %s", h5s_path(s),
                       attr);
    char **w = *out;
    for (int k = 0; !rc && k < *n; k++) {
        const char *p = w[k];
        if (!calib_name_ok(p) || (!strcmp(attr, "rows") && (!strcmp(p, "matrix") ||
                                                            !strcmp(p, "domains"))))
            rc = vl_errf(err, VL_EFORMAT, "%s: /eval/matrix@%s: entry %d is not a name "
                         "([A-Za-z0-9._+-]+, not matrix or domains)", h5s_path(s), attr, k + 1);
        for (int j = 0; !rc && j < k; j++)
            if (!strcmp(w[j], p))
                rc = vl_errf(err, VL_EFORMAT, "%s: /eval/matrix@%s: %s twice", h5s_path(s), attr,
                             p);
    }
    if (!rc && *n == 0)
        rc = vl_errf(err, VL_EFORMAT, "%s: /eval/matrix@%s: entry 1 is not a name "
                     "([A-Za-z0-9._+-]+, not matrix or domains)", h5s_path(s), attr);
    if (rc) {
        h5s_names_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int ev_read_names(h5s_store *s, char ***rows, int *n_rows, char ***cols, int *n_cols,
                  vl_err *err)
{
    *cols = NULL;
    *n_cols = 0;
    int rc = names(s, "rows", rows, n_rows, err);
    if (!rc && (rc = names(s, "cols", cols, n_cols, err))) {
        h5s_names_free(*rows, *n_rows);
        *rows = NULL;
        *n_rows = 0;
    }
    return rc;
}

/* /eval/matrix/NAME: [R, D] float64, every value NaN or in [lo, hi]; absent: *out NULL, an
 * error only when required. */
static int matrix(h5s_store *s, const char *name, int required, int R, int D, double lo,
                  double hi, double **out, vl_err *err)
{
    char p[64];
    snprintf(p, sizeof p, "/eval/matrix/%s", name);
    *out = NULL;
    if (!h5s_exists(s, p))
        return required ? vl_errf(err, VL_ENOTFOUND, "%s: missing dataset %s", h5s_path(s), p)
                        : 0;
    int nd;
    int64_t sh[H5S_MAX_DIMS];
    int rc = h5s_read(s, p, H5S_F64, (void **)out, &nd, sh, err);
    if (!rc && (nd != 2 || sh[0] != R || sh[1] != D))
        rc = vl_errf(err, VL_ESHAPE, "%s: %s is not [%d, %d] (the rows × cols attributes)",
                     h5s_path(s), p, R, D);
    for (long i = 0; !rc && i < (long)R * D; i++)
        if (!isnan((*out)[i]) && !((*out)[i] >= lo && (*out)[i] <= hi))
            rc = vl_errf(err, VL_ERANGE, "%s: %s[%ld, %ld] = %g is out of range [%g, %g]",
                         h5s_path(s), p, i / D, i % D, (*out)[i], lo, hi);
    if (rc) {
        vl_free(*out);
        *out = NULL;
    }
    return rc;
}

/* A whole-number float64 attribute in [lo, hi]. */
static int whole_attr(h5s_store *s, const char *g, const char *a, int64_t lo, int64_t hi,
                      int64_t *out, vl_err *err)
{
    double v = NAN;
    int rc = h5s_attr_get_f64(s, g, a, &v, err);
    if (rc)
        return vl_errf(err, VL_EFORMAT, "%s: %s: missing or non-numeric attribute %s",
                       h5s_path(s), g, a);
    if (num_whole(v, lo, hi, out))
        return vl_errf(err, VL_ERANGE, "%s: %s@%s = %g is not a whole number in [%lld, %lld]",
                       h5s_path(s), g, a, v, (long long)lo, (long long)hi);
    return 0;
}

/* Dataset P, when present, has exactly shape [a, b]. */
static int shape2(h5s_store *s, const char *p, int64_t a, int64_t b, vl_err *err)
{
    if (!h5s_exists(s, p))
        return 0;
    int nd;
    int64_t sh[H5S_MAX_DIMS];
    int rc = h5s_shape(s, p, &nd, sh, err);
    if (!rc && (nd != 2 || sh[0] != a || sh[1] != b))
        rc = vl_errf(err, VL_ESHAPE, "%s: %s is not [%lld, %lld] (the domain's seqs × len)",
                     h5s_path(s), p, (long long)a, (long long)b);
    return rc;
}

/* A domain's definition (when its group exists: stores made before it was recorded lack it)
 * and the shapes of everything stored per token on it: [seqs, len] ids, [seqs, len-1] the rest;
 * kld per token finite and >= 0. */
static int check_domain(h5s_store *s, const ev_store *m, int d, vl_err *err)
{
    char g[EV_NAME_MAX + 32], p[2 * EV_NAME_MAX + 48];
    snprintf(g, sizeof g, "/eval/domains/%s", m->cols[d]);
    snprintf(p, sizeof p, "%s/ids", g);
    if (!h5s_exists(s, g) || !h5s_exists(s, p))
        return 0;
    int64_t seqs = 0, len = 0;
    uint64_t seed;
    char *sv = NULL;
    int rc = whole_attr(s, g, "seqs", 1, 1 << 24, &seqs, err);
    if (!rc)
        rc = whole_attr(s, g, "len", 2, 1 << 24, &len, err);
    if (!rc && !h5s_attr_get(s, g, "seed", &sv, NULL) && num_u64(sv, UINT64_MAX, 0, &seed))
        rc = vl_errf(err, VL_ERANGE, "%s: %s@seed is not a seed (a decimal 64-bit unsigned "
                     "integer)", h5s_path(s), g);
    vl_free(sv);
    if (!rc)
        rc = shape2(s, p, seqs, len, err);
    snprintf(p, sizeof p, "%s/entropy_ref", g);
    if (!rc)
        rc = shape2(s, p, seqs, len - 1, err);
    static const char *const per_tok[] = {"kld", "dp", "nll_ref", "nll_q", "same_top"};
    for (int r = 0; !rc && r < m->n_rows; r++) {
        for (size_t k = 0; !rc && k < sizeof per_tok / sizeof *per_tok; k++) {
            snprintf(p, sizeof p, "/eval/%s/%s/%s", m->rows[r], m->cols[d], per_tok[k]);
            rc = shape2(s, p, seqs, len - 1, err);
        }
        snprintf(p, sizeof p, "/eval/%s/%s", m->rows[r], m->cols[d]);
        int64_t nt;
        double v;
        if (!rc && !h5s_attr_get_f64(s, p, "n_tokens", &v, NULL) &&
            (num_whole(v, 0, INT64_MAX / 2, &nt) || nt != seqs * (len - 1)))
            rc = vl_errf(err, VL_EFORMAT, "%s: %s@n_tokens = %g, the domain has %lld × %lld",
                         h5s_path(s), p, v, (long long)seqs, (long long)(len - 1));
        snprintf(p, sizeof p, "/eval/%s/%s/kld", m->rows[r], m->cols[d]);
        if (rc || !h5s_exists(s, p))
            continue;
        double *kl = NULL;
        int nd;
        int64_t sh[H5S_MAX_DIMS];
        rc = h5s_read(s, p, H5S_F64, (void **)&kl, &nd, sh, err);
        for (int64_t i = 0; !rc && i < seqs * (len - 1); i++)
            if (!(kl[i] >= 0 && isfinite(kl[i])))
                rc = vl_errf(err, VL_ERANGE, "%s: %s[%lld] = %g (a KLD: finite and >= 0)",
                             h5s_path(s), p, (long long)i, kl[i]);
        vl_free(kl);
    }
    return rc;
}

int ev_read_store(h5s_store *s, ev_store *m, vl_err *err)
{
    memset(m, 0, sizeof *m);
    if (!h5s_exists(s, "/eval/matrix/mean_kld"))
        return vl_errf(err, VL_ENOTFOUND, "%s: no dataset /eval/matrix/mean_kld (KLD matrix: "
                       "vbrlab eval)", h5s_path(s));
    int rc = ev_read_names(s, &m->rows, &m->n_rows, &m->cols, &m->n_cols, err);
    int R = m->n_rows, D = m->n_cols;
    if (!rc)
        rc = matrix(s, "mean_kld", 1, R, D, 0, INFINITY, &m->mean_kld, err);
    for (long i = 0; !rc && i < (long)R * D; i++)
        if (isinf(m->mean_kld[i]))
            rc = vl_errf(err, VL_ERANGE, "%s: /eval/matrix/mean_kld[%ld, %ld] is infinite",
                         h5s_path(s), i / D, i % D);
    if (!rc)
        rc = matrix(s, "mean_kld_se", 0, R, D, 0, 1e300, &m->mean_kld_se, err);
    if (!rc)
        rc = matrix(s, "same_top", 0, R, D, 0, 1, &m->same_top, err);
    if (!rc)
        rc = matrix(s, "ppl_ratio", 0, R, D, 1e-300, 1e300, &m->ppl_ratio, err);
    for (int r = 0; !rc && r < R; r++) {
        ev_row_attrs a;
        rc = ev_read_row(s, m->rows[r], &a, err);
        ev_row_attrs_free(&a);
    }
    for (int d = 0; !rc && d < D; d++)
        rc = check_domain(s, m, d, err);
    if (rc)
        ev_store_free(m);
    return rc;
}
