/* tests/test_hadamard.c — randomized Hadamard rotation: round trip, orthonormality, the
 * transformed Hessian and importance, and its use against outlier columns. */
#include "../alloc/fq.h"
#include "../alloc/hadamard.h"
#include "../alloc/rd.h"
#include "check.h"
#include "qtest.h"

#include <string.h>

static void test_round_trip(chk *c)
{
    static const int ns[] = {256, 768, 1000, 7, 1};
    qt_rng r = {5};
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) {
        int n = ns[i], rows = 5;
        float *w = qt_matrix(&r, rows, n, 1.0), *x = malloc((size_t)rows * n * sizeof *x);
        memcpy(x, w, (size_t)rows * n * sizeof *x);
        vl_err e;
        int rc = had_rotate_rows(x, rows, n, 99, &e);
        double moved = 0;
        for (int k = 0; k < rows * n; k++)
            moved += fabs((double)x[k] - w[k]);
        rc |= had_unrotate_rows(x, rows, n, 99, &e);
        CHECK(c, rc == 0 && (n == 1 || moved > 1.0), "n=%d: rotation changes W (sum |d| %.3g)",
              n, moved);
        CHECK_TENSOR(c, x, w, (long)rows * n, 1e-6, 0, "rotate then unrotate");
        free(w);
        free(x);
    }
}

/* Rᵀ built by rotating the rows of the identity (row i becomes R·e_i). */
static double *explicit_rt(int n, uint64_t seed)
{
    double *m = calloc((size_t)n * n, sizeof *m);
    for (int i = 0; i < n; i++)
        m[(size_t)i * n + i] = 1.0;
    had_rotate_rows_f64(m, n, n, seed);
    return m;
}

static void test_orthonormal(chk *c)
{
    static const int ns[] = {8, 24, 100, 64};
    for (size_t t = 0; t < sizeof ns / sizeof *ns; t++) {
        int n = ns[t];
        double *m = explicit_rt(n, 1234), worst = 0, worst_entry = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int k = 0; k < n; k++)
                    s += m[(size_t)i * n + k] * m[(size_t)j * n + k];
                worst = fmax(worst, fabs(s - (i == j)));
                if (n == 64) /* one block: every entry ±1/8 */
                    worst_entry = fmax(worst_entry, fabs(fabs(m[(size_t)i * n + j]) - 0.125));
            }
        CHECK(c, worst < 1e-12, "n=%d: R·Rᵀ = I (max dev %.3g)", n, worst);
        if (n == 64)
            CHECK(c, worst_entry < 1e-15, "n=64: |R_ij| = 1/8 (max dev %.3g)", worst_entry);
        free(m);
    }
    int plus = 0;
    for (int j = 0; j < 1000; j++)
        plus += had_sign(77, j) > 0;
    CHECK(c, plus > 430 && plus < 570, "signs balanced: %d of 1000 positive", plus);
    int diff = 0;
    for (int j = 0; j < 64; j++)
        diff += had_sign(77, j) != had_sign(78, j);
    CHECK(c, diff > 10, "seeds give different signs (%d of 64 differ)", diff);
}

static void test_hessian(chk *c)
{
    int n = 24;
    uint64_t seed = 31;
    qt_rng r = {9};
    double *h = qt_hessian(&r, 64, n), *hr = malloc((size_t)n * n * sizeof *hr);
    memcpy(hr, h, (size_t)n * n * sizeof *hr);
    had_rotate_sym(hr, n, seed);
    double *rt = explicit_rt(n, seed), worst = 0, scale = 0;
    for (int i = 0; i < n; i++) /* (R H Rᵀ)_ij = Σ_kl R_ik H_kl R_jl, R_ik = rt[k][i] */
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int k = 0; k < n; k++)
                for (int l = 0; l < n; l++)
                    s += rt[(size_t)k * n + i] * h[(size_t)k * n + l] * rt[(size_t)l * n + j];
            worst = fmax(worst, fabs(s - hr[(size_t)i * n + j]));
            scale = fmax(scale, fabs(s));
        }
    CHECK(c, worst <= 1e-12 * scale, "had_rotate_sym = R·H·Rᵀ (max dev %.3g of %.3g)", worst,
          scale);

    double imp[24], want[24];
    for (int j = 0; j < n; j++)
        imp[j] = 1.0 + j * j;
    for (int i = 0; i < n; i++) {
        want[i] = 0;
        for (int k = 0; k < n; k++)
            want[i] += rt[(size_t)k * n + i] * rt[(size_t)k * n + i] * imp[k];
    }
    had_rotate_diag(imp, n);
    double dev = 0;
    for (int i = 0; i < n; i++)
        dev = fmax(dev, fabs(imp[i] - want[i]));
    CHECK(c, dev < 1e-9, "had_rotate_diag = diag(R·diag(imp)·Rᵀ) (max dev %.3g)", dev);
    free(h);
    free(hr);
    free(rt);
}

static void test_outliers(chk *c)
{
    qt_rng r = {21};
    int rows = 32, cols = 256;
    float *w = qt_matrix(&r, rows, cols, 0.02), *o = malloc((size_t)rows * cols * sizeof *o);
    for (int i = 0; i < rows; i++) /* four outlier input channels */
        for (int j = 10; j < cols; j += 64)
            w[(size_t)i * cols + j] *= 25.0f;
    fq_params p = fq_defaults();
    vl_err e;
    for (int b = 2; b <= 4; b++) {
        qfmt f = {QFMT_RTN, b, 64, 0, QFMT_ROT_NONE}, fh = f;
        fh.rot = QFMT_ROT_HAD;
        rd_point plain, rot;
        int rc = rd_eval(&plain, o, w, rows, cols, &f, NULL, NULL, &p, NULL, "w", &e);
        rc |= rd_eval(&rot, o, w, rows, cols, &fh, NULL, NULL, &p, NULL, "w", &e);
        CHECK(c, rc == 0 && rot.rel_w < 0.8 * plain.rel_w,
              "b%d outlier columns: Hadamard+RTN error %.4g < RTN %.4g", b, rot.rel_w,
              plain.rel_w);
        CHECK(c, rot.bits == plain.bits, "rotation costs no bits");
    }
    /* GPTQ in the rotated basis (H' = R·H·Rᵀ) beats RTN in the rotated basis. */
    double *h = qt_hessian(&r, 512, cols);
    fq_stats st = {NULL, h, 512};
    qfmt fr = {QFMT_RTN, 3, 64, 0, QFMT_ROT_HAD}, fg = fr;
    fg.method = QFMT_GPTQ;
    rd_point pr, pg;
    int rc = rd_eval(&pr, o, w, rows, cols, &fr, &st, NULL, &p, NULL, "w", &e);
    rc |= rd_eval(&pg, o, w, rows, cols, &fg, &st, NULL, &p, NULL, "w", &e);
    CHECK(c, rc == 0 && pg.rel_out <= pr.rel_out,
          "b3 had: GPTQ output error %.4g <= RTN %.4g", pg.rel_out, pr.rel_out);
    free(h);
    free(w);
    free(o);
}

int main(void)
{
    chk c;
    chk_init(&c, "test_hadamard");
    test_round_trip(&c);
    test_orthonormal(&c);
    test_hessian(&c);
    test_outliers(&c);
    return chk_done(&c);
}
