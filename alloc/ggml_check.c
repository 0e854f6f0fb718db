/* alloc/ggml_check.c — compare ggml_fmt's decode and quantizers with llama.cpp's goldens. */
#include "ggml_check.h"

#include "../io/h5s.h"
#include "ggml_fmt.h"

#include <math.h>
#include <string.h>

typedef struct {
    h5s_store *s;
    const char *cs;     /* case name */
    const float *w;     /* [rows, cols] */
    const float *imp;   /* [cols] */
    int64_t rows, cols;
} gc_case;

/* Decode the [rows, rb] blocks at dataset path into deq (rows·cols floats). */
static int decode_set(const gc_case *c, ggf_type t, const char *path, float *deq, vl_err *err)
{
    uint8_t *q = NULL;
    int nd;
    int64_t sh[H5S_MAX_DIMS];
    int rc = h5s_read(c->s, path, H5S_U8, (void **)&q, &nd, sh, err);
    if (rc) return rc;
    int64_t rb = ggf_row_bytes(t, c->cols);
    if (nd != 2 || sh[0] != c->rows || sh[1] != rb) {
        vl_free(q);
        return vl_errf(err, VL_ESHAPE, "%s: %s: shape is not [%lld, %lld]", h5s_path(c->s), path,
                       (long long)c->rows, (long long)rb);
    }
    for (int64_t r = 0; r < c->rows && !rc; r++)
        rc = ggf_decode_row(t, q + r * rb, (size_t)rb, deq + r * c->cols, c->cols, err);
    vl_free(q);
    if (rc) vl_errctx(err, rc, "%s: %s", h5s_path(c->s), path);
    return rc;
}

static double sq_err(const gc_case *c, const float *deq, int weighted)
{
    double e = 0;
    for (int64_t r = 0; r < c->rows; r++)
        for (int64_t j = 0; j < c->cols; j++) {
            double d = (double)c->w[r * c->cols + j] - deq[r * c->cols + j];
            e += (weighted ? c->imp[j] : 1.0) * d * d;
        }
    return e;
}

static int check_type(const gc_case *c, const char *tname, double max_ratio, FILE *out,
                      ggf_check_result *res, vl_err *err)
{
    int t = ggf_from_name(tname);
    if (t < 0) return vl_errf(err, VL_EFORMAT, "%s: /%s/%s: unknown ggml type", h5s_path(c->s), c->cs, tname);
    char p[256], p2[256];
    int64_t n = c->rows * c->cols;
    float *deq = vl_malloc((size_t)n * sizeof *deq), *ref = NULL;
    uint8_t *q = vl_malloc((size_t)ggf_row_bytes(t, c->cols));
    if (!deq || !q) {
        vl_free(deq), vl_free(q);
        return vl_errf(err, VL_ENOMEM, "out of memory");
    }
    int64_t nbad = 0;
    double llama_wsq = 0, llama_sq = 0, plain_ref = -1, ours = 0;
    snprintf(p, sizeof p, "/%s/%s/imatrix_q", c->cs, tname);
    snprintf(p2, sizeof p2, "/%s/%s/imatrix_deq", c->cs, tname);
    int nd, rc = decode_set(c, t, p, deq, err);
    int64_t sh[H5S_MAX_DIMS];
    if (!rc) rc = h5s_read(c->s, p2, H5S_F32, (void **)&ref, &nd, sh, err);
    if (!rc && (nd != 2 || sh[0] != c->rows || sh[1] != c->cols))
        rc = vl_errf(err, VL_ESHAPE, "%s: %s: wrong shape", h5s_path(c->s), p2);
    for (int64_t i = 0; !rc && i < n; i++) nbad += memcmp(&deq[i], &ref[i], 4) != 0;
    snprintf(p, sizeof p, "/%s/%s", c->cs, tname);
    if (!rc) rc = h5s_attr_get_f64(c->s, p, "wsq_err", &llama_wsq, err);
    if (!rc) rc = h5s_attr_get_f64(c->s, p, "sq_err", &llama_sq, err);
    snprintf(p2, sizeof p2, "/%s/%s/plain_q", c->cs, tname);
    int plain_ok = 1;
    if (!rc && h5s_exists(c->s, p2)) {
        rc = h5s_attr_get_f64(c->s, p, "sq_err_plain", &plain_ref, err);
        if (!rc) rc = decode_set(c, t, p2, deq, err);
        if (!rc) {
            double e = sq_err(c, deq, 0);
            plain_ok = fabs(e - plain_ref) <= 1e-6 * fabs(plain_ref) + 1e-30;
        }
    }
    for (int64_t r = 0; !rc && r < c->rows; r++) {
        rc = ggf_quantize_row(t, c->w + r * c->cols, c->imp, c->cols, q, err);
        if (!rc) rc = ggf_decode_row(t, q, (size_t)ggf_row_bytes(t, c->cols), deq + r * c->cols, c->cols, err);
    }
    if (!rc) {
        ours = sq_err(c, deq, 1);
        double ratio = llama_wsq > 0 ? ours / llama_wsq : (ours > 0 ? INFINITY : 1.0);
        int dec_ok = nbad == 0 && plain_ok;
        res->n_lines++;
        res->n_decode_bad += !dec_ok;
        res->n_ratio_bad += !(ratio <= max_ratio);
        if (ratio > res->worst_ratio) res->worst_ratio = ratio;
        if (out) {
            fprintf(out, "%-24s %-8s bpw %7.4f  wsq ours/llama.cpp %.6g / %.6g = %.4f%s  (unweighted %.4f)  decode ",
                    c->cs, tname, ggf_bpw(t), ours, llama_wsq, ratio, ratio <= max_ratio ? "" : " (TOO HIGH)",
                    llama_sq > 0 ? sq_err(c, deq, 0) / llama_sq : NAN);
            if (dec_ok)
                fprintf(out, "ok\n");
            else
                fprintf(out, "MISMATCH (%lld of %lld values%s)\n", (long long)nbad, (long long)n,
                        plain_ok ? "" : ", plain_q error differs");
        }
    }
    vl_free(deq), vl_free(q), vl_free(ref);
    return rc;
}

static int check_case(h5s_store *s, const char *cs, const char *only, double max_ratio, FILE *out,
                      ggf_check_result *res, vl_err *err)
{
    gc_case c = {.s = s, .cs = cs};
    char p[256];
    int nd;
    int64_t sh[H5S_MAX_DIMS], shi[H5S_MAX_DIMS];
    float *w = NULL, *imp = NULL;
    snprintf(p, sizeof p, "/%s/weights", cs);
    int rc = h5s_read(s, p, H5S_F32, (void **)&w, &nd, sh, err);
    if (!rc && nd != 2) rc = vl_errf(err, VL_ESHAPE, "%s: %s: not 2-D", h5s_path(s), p);
    snprintf(p, sizeof p, "/%s/importance", cs);
    int ndi;
    if (!rc) rc = h5s_read(s, p, H5S_F32, (void **)&imp, &ndi, shi, err);
    if (!rc && (ndi != 1 || shi[0] != sh[1]))
        rc = vl_errf(err, VL_ESHAPE, "%s: %s: not [%lld]", h5s_path(s), p, (long long)sh[1]);
    char **names = NULL;
    int nn = 0;
    snprintf(p, sizeof p, "/%s", cs);
    if (!rc) rc = h5s_list(s, p, &names, &nn, err);
    c.w = w, c.imp = imp, c.rows = rc ? 0 : sh[0], c.cols = rc ? 0 : sh[1];
    for (int i = 0; !rc && i < nn; i++) {
        if (!strcmp(names[i], "weights") || !strcmp(names[i], "importance")) continue;
        if (only && strcmp(only, names[i])) continue;
        rc = check_type(&c, names[i], max_ratio, out, res, err);
    }
    h5s_names_free(names, nn);
    vl_free(w), vl_free(imp);
    return rc;
}

int ggf_check_goldens(const char *path, const char *only_type, double max_ratio, FILE *out,
                      ggf_check_result *res, vl_err *err)
{
    memset(res, 0, sizeof *res);
    h5s_store *s = NULL;
    int rc = h5s_open(&s, path, err);
    if (rc) return rc;
    char **cases = NULL;
    int nc = 0;
    rc = h5s_list(s, "/", &cases, &nc, err);
    if (!rc && nc == 0) rc = vl_errf(err, VL_EFORMAT, "%s: no cases", path);
    for (int i = 0; !rc && i < nc; i++) rc = check_case(s, cases[i], only_type, max_ratio, out, res, err);
    h5s_names_free(cases, nc);
    h5s_close(s);
    return rc;
}
