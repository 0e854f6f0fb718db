/* alloc/rd.c — relative weight, importance-weighted and output errors (see rd.h). */
#include "rd.h"

#include "../core/kern.h"

#include <math.h>

static double ratio(double num, double den)
{
    if (den > 0.0)
        return num / den;
    return num == 0.0 ? 0.0 : INFINITY;
}

int rd_measure(rd_point *out, const float *w, const float *wq, int rows, int cols,
               const qfmt *f, const double *imp, const double *h, vl_err *err)
{
    double nw = 0, dw = 0, niw = 0, diw = 0;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            double a = w[(size_t)i * cols + j], d = (double)wq[(size_t)i * cols + j] - a;
            double m = imp ? imp[j] : 1.0;
            nw += a * a;
            dw += d * d;
            niw += m * a * a;
            diw += m * d * d;
        }
    out->rel_w = ratio(dw, nw);
    out->rel_imp = ratio(diw, niw);
    out->rel_out = NAN;
    if (h) {
        /* s = [ΔW; W] (2·rows × cols); c = s·H; tr(s_r H s_rᵀ) = Σ_j c_rj s_rj. */
        size_t n = (size_t)rows * cols;
        double *s = vl_malloc(2 * n * sizeof *s), *c = vl_malloc(2 * n * sizeof *c);
        if (!s || !c) {
            vl_free(s);
            vl_free(c);
            return vl_errf(err, VL_ENOMEM, "rate-distortion: out of memory (%d x %d)", rows,
                           cols);
        }
        for (size_t k = 0; k < n; k++) {
            s[k] = (double)wq[k] - (double)w[k];
            s[n + k] = w[k];
        }
        kern_dgemm(c, s, h, 2 * rows, cols, cols, 0, cols, cols, cols, 1.0, 0.0);
        double td = 0, tw = 0;
        for (size_t k = 0; k < n; k++) {
            td += c[k] * s[k];
            tw += c[n + k] * s[n + k];
        }
        out->rel_out = ratio(td, tw);
        vl_free(s);
        vl_free(c);
    }
    out->bits = qfmt_bits(f, rows, cols);
    out->bpw = qfmt_bpw(f, rows, cols);
    return 0;
}

int rd_eval(rd_point *out, float *wq_out, const float *w, int rows, int cols, const qfmt *f,
            const fq_stats *st, const fq_stats *fallback, const fq_params *p, fq_info *info,
            const char *name, vl_err *err)
{
    if (rows < 1 || cols < 1)
        return vl_errf(err, VL_EARG, "tensor \"%s\": bad shape %d x %d", name, rows, cols);
    float *wq = wq_out ? wq_out : vl_malloc((size_t)rows * cols * sizeof *wq);
    if (!wq)
        return vl_errf(err, VL_ENOMEM, "tensor \"%s\": out of memory", name);
    int rc = fq_tensor(wq, w, rows, cols, f, st, fallback, p, info, name, err);
    if (rc == 0)
        rc = rd_measure(out, w, wq, rows, cols, f, st ? st->imp : NULL, st ? st->h : NULL, err);
    if (!wq_out)
        vl_free(wq);
    return rc;
}
