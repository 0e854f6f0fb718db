/* tests/test_quant.c — fp16 rounding, RTN, GPTQ, fake-quant dispatch and rate–distortion. */
#include "../alloc/fq.h"
#include "../alloc/gptq.h"
#include "../alloc/quant.h"
#include "../alloc/rd.h"
#include "../core/kern.h"
#include "check.h"
#include "qtest.h"

#include <string.h>

static void test_f16(chk *c)
{
    CHECK(c, quant_f16_round(1.0f) == 1.0f, "fp16(1) = 1");
    CHECK(c, quant_f16_round(1.0f + 0x1p-11f) == 1.0f, "fp16: tie to even rounds down");
    CHECK(c, quant_f16_round(1.0f + 3 * 0x1p-11f) == 1.0f + 0x1p-9f, "fp16: tie to even up");
    CHECK(c, quant_f16_round(0.1f) == 0.0999755859375f, "fp16(0.1) = 0.0999755859375");
    CHECK(c, quant_f16_round(65504.0f) == 65504.0f, "fp16 max");
    CHECK(c, isinf(quant_f16_round(65520.0f)), "fp16 overflow to Inf");
    CHECK(c, quant_f16_round(0x1p-24f) == 0x1p-24f, "smallest subnormal");
    CHECK(c, quant_f16_round(0x1p-26f) == 0.0f, "below half the smallest subnormal");
    CHECK(c, quant_f16_round(-3.0f * 0x1p-25f) == -0x1p-23f, "subnormal tie to even, negative");
}

/* W on a representable grid of f: per group an fp16 scale, an integer zero (asym), integer
 * levels with both extremes present, so min/max recovers the exact parameters. */
static float *grid_matrix(qt_rng *r, int rows, int cols, const qfmt *f)
{
    float *w = malloc((size_t)rows * cols * sizeof *w);
    int g = f->group ? f->group : cols, maxq = (1 << f->bits) - 1, half = 1 << (f->bits - 1);
    for (int i = 0; i < rows; i++)
        for (int c0 = 0; c0 < cols; c0 += g) {
            int n = cols - c0 < g ? cols - c0 : g;
            float s = quant_f16_round((float)(0.001 + qt_unif(r)));
            if (f->sym && qt_unif(r) < 0.5)
                s = -s;
            int z = qt_int(r, 0, maxq);
            for (int j = 0; j < n; j++) {
                float *x = &w[(size_t)i * cols + c0 + j];
                if (f->sym) {
                    int q = j == 0 ? -half : qt_int(r, -half, half - 1);
                    *x = s * (float)q;
                } else {
                    int q = j == 0 ? 0 : j == 1 ? maxq : qt_int(r, 0, maxq);
                    *x = s * (float)(q - z);
                }
            }
        }
    return w;
}

static void test_exact_grid(chk *c)
{
    qt_rng r = {42};
    int rows = 6, cols = 202; /* 202: a partial last group for every group size */
    double *h = qt_hessian(&r, 256, cols);
    int ok_rtn = 1, ok_gptq = 1, n = 0;
    for (int bits = 1; bits <= 8; bits++)
        for (int gi = 0; gi < QFMT_N_GROUPS; gi++)
            for (int s = 0; s < 2; s++) {
                qfmt f = {QFMT_RTN, bits, qfmt_groups[gi], s, QFMT_ROT_NONE};
                float *w = grid_matrix(&r, rows, cols, &f);
                float *o = malloc((size_t)rows * cols * sizeof *o);
                vl_err e;
                if (quant_rtn(o, w, rows, cols, &f, NULL, NULL, "grid", &e) ||
                    memcmp(o, w, (size_t)rows * cols * sizeof *o))
                    ok_rtn = 0;
                if (gptq_quantize(o, w, rows, cols, &f, h, NULL, NULL, "grid", &e) ||
                    memcmp(o, w, (size_t)rows * cols * sizeof *o))
                    ok_gptq = 0;
                if (!ok_rtn || !ok_gptq) {
                    char buf[QFMT_NAME_MAX];
                    printf("  not exact: %s\n", qfmt_name(&f, buf));
                }
                n++;
                free(w);
                free(o);
            }
    CHECK(c, ok_rtn, "RTN reproduces %d representable-grid matrices exactly", n);
    CHECK(c, ok_gptq, "GPTQ reproduces %d representable-grid matrices exactly", n);
    free(h);
}

static double rtn_err(const float *w, int rows, int cols, const qfmt *f, const double *imp,
                      const quant_params *p, int weighted)
{
    float *o = malloc((size_t)rows * cols * sizeof *o);
    vl_err e;
    rd_point pt;
    if (quant_rtn(o, w, rows, cols, f, imp, p, "w", &e) ||
        rd_measure(&pt, w, o, rows, cols, f, imp, NULL, &e))
        pt.rel_w = pt.rel_imp = NAN;
    free(o);
    return weighted ? pt.rel_imp : pt.rel_w;
}

/* The clip search the slow, obvious way: every ratio's grid (quant_grp_at), its weighted
 * squared error summed in float64 in order, the first strictly smallest kept, stopping at an
 * exact fit. */
static quant_grp brute_fit(const float *x, const double *imp, int n, int bits, int sym,
                           const quant_params *p)
{
    quant_grp best = quant_grp_at(x, n, bits, sym, 1.0);
    double best_e = -1;
    for (int i = 0; i < p->clip_steps && best_e != 0.0; i++) {
        double r = p->clip_steps > 1 ? 1.0 - (1.0 - p->clip_min) * i / (p->clip_steps - 1) : 1.0;
        quant_grp g = quant_grp_at(x, n, bits, sym, r);
        double e = 0;
        for (int j = 0; j < n; j++) {
            double d = (double)x[j] - (double)quant_grp_fake(&g, x[j], bits, sym);
            e += (imp ? imp[j] : 1.0) * d * d;
        }
        if (best_e < 0 || e < best_e) {
            best_e = e;
            best = g;
        }
    }
    return best;
}

/* quant_grp_fit (ratios in vector lanes) = brute_fit, grid for grid, over group sizes, bits,
 * both grids, 1 to 45 ratios, with and without importances, on groups with outliers, zeros,
 * constant and tiny entries (quotients beyond 2²⁴ at the smallest fp16 scale). */
static void test_clip_search(chk *c)
{
    qt_rng r = {11};
    enum { N = 96 };
    double imp[N];
    for (int j = 0; j < N; j++)
        imp[j] = exp(2.0 * qt_gauss(&r));
    static const int steps[] = {1, 2, 8, 20, 33, 45};
    int same = 1, n_cases = 0;
    for (int kind = 0; kind < 4; kind++) {
        float x[N];
        for (int j = 0; j < N; j++)
            x[j] = kind == 0 ? (float)(0.02 * qt_gauss(&r))
                 : kind == 1 ? (j == 7 ? 30.0f : (float)(0.01 * qt_gauss(&r)))
                 : kind == 2 ? (float)(j % 3) * 1e-9f - (j == 40 ? 1e4f : 0.0f)
                             : (j % 5 ? 0.25f : 0.0f);
        for (int b = 1; b <= 8; b++)
            for (int sym = 0; sym < 2; sym++)
                for (int is = 0; is < 6; is++)
                    for (int ui = 0; ui < 2; ui++)
                        for (int n = 17; n <= N; n += 79 - 17) {
                            quant_params p = {steps[is], 0.4};
                            quant_grp a = quant_grp_fit(x, ui ? imp : NULL, n, b, sym, &p);
                            quant_grp w = brute_fit(x, ui ? imp : NULL, n, b, sym, &p);
                            same &= !memcmp(&a.scale, &w.scale, sizeof a.scale) &&
                                    a.zero == w.zero;
                            n_cases++;
                        }
    }
    CHECK(c, same, "vectorised clip search = the one-ratio-at-a-time search, grid for grid "
          "(%d groups)", n_cases);
}

static void test_rtn(chk *c)
{
    qt_rng r = {7};
    int rows = 48, cols = 192;
    float *w = qt_matrix(&r, rows, cols, 0.02);
    double *imp = malloc(cols * sizeof *imp);
    for (int j = 0; j < cols; j++) /* heavy-tailed importances, like E[x²] */
        imp[j] = exp(2.0 * qt_gauss(&r));

    for (int s = 0; s < 2; s++) {
        qfmt f = {QFMT_RTN, 1, 64, s, QFMT_ROT_NONE};
        double prev = INFINITY;
        int mono = 1;
        for (int b = 1; b <= 8; b++) {
            f.bits = b;
            double e = rtn_err(w, rows, cols, &f, NULL, NULL, 0);
            mono &= e <= prev;
            prev = e;
        }
        CHECK(c, mono, "RTN %s error non-increasing in bits 1..8 (8 bits: %.3g)",
              s ? "sym" : "asym", prev);
        CHECK(c, prev < 1e-4, "RTN 8-bit relative error small: %.3g", prev);
    }

    quant_params plain = {1, 0.5};
    int never_worse = 1, strictly = 0;
    for (int b = 1; b <= 4; b++)
        for (int s = 0; s < 2; s++) {
            qfmt f = {QFMT_RTN, b, 32, s, QFMT_ROT_NONE};
            double e_plain = rtn_err(w, rows, cols, &f, imp, &plain, 1);
            double e_search = rtn_err(w, rows, cols, &f, imp, NULL, 1);
            never_worse &= e_search <= e_plain;
            strictly += e_search < 0.99 * e_plain;
        }
    CHECK(c, never_worse, "weighted clip search never worse than plain min/max (8 formats)");
    CHECK(c, strictly >= 4, "weighted clip search clearly better in %d of 8 formats", strictly);

    /* Rows on threads (kern_parallel_for, ≥ 8k weights a thread: 43 rows of 192 here, so 1
       or 2 or 3 ranges): the same bits on 1, 2 and 3 threads, and every row as the row
       quantized alone. */
    vl_err e = {0, ""};
    qfmt f = {QFMT_RTN, 2, 64, 0, QFMT_ROT_NONE};
    float *o = malloc((size_t)rows * cols * sizeof *o);
    float *o1 = malloc((size_t)rows * cols * sizeof *o1), row[192];
    int blas = kern_threads(), same = 1, rc = 0;
    kern_set_threads(1);
    rc |= quant_rtn(o1, w, rows, cols, &f, imp, NULL, "t", &e);
    for (int nt = 2; nt <= 3; nt++) {
        kern_set_threads(nt);
        rc |= quant_rtn(o, w, rows, cols, &f, imp, NULL, "t", &e);
        same &= !memcmp(o, o1, (size_t)rows * cols * sizeof *o);
    }
    kern_set_threads(blas);
    for (int i = 0; i < rows; i += 13) {
        rc |= quant_rtn(row, w + (size_t)i * cols, 1, cols, &f, imp, NULL, "t", &e);
        same &= !memcmp(row, o1 + (size_t)i * cols, sizeof row);
    }
    CHECK(c, rc == 0 && same, "RTN on 1, 2 and 3 threads and row by row: the same bits");
    free(o1);

    /* Input errors. */
    w[5 * cols + 7] = NAN;
    CHECK_INT(c, quant_rtn(o, w, rows, cols, &f, NULL, NULL, "blk.0.q", &e), VL_ERANGE, "NaN");
    CHECK_HAS(c, e.msg, "tensor \"blk.0.q\": weight [5, 7] is nan", "NaN message");
    w[5 * cols + 7] = 0;
    imp[3] = -1;
    CHECK_INT(c, quant_rtn(o, w, rows, cols, &f, imp, NULL, "t", &e), VL_ERANGE, "neg imp");
    CHECK_HAS(c, e.msg, "importance of input 3", "negative importance message");
    free(o);
    free(w);
    free(imp);
}

/* Relative output error of a quantizer run through fq_tensor. */
static double out_err(const float *w, int rows, int cols, const qfmt *f, const double *h,
                      const double *imp, const fq_params *p)
{
    fq_stats st = {imp, h, 1e6};
    rd_point pt;
    vl_err e;
    if (rd_eval(&pt, NULL, w, rows, cols, f, &st, NULL, p, NULL, "w", &e)) {
        printf("  rd_eval: %s\n", e.msg);
        return NAN;
    }
    return pt.rel_out;
}

static void test_gptq(chk *c)
{
    qt_rng r = {11};
    int rows = 64, cols = 256;
    float *w = qt_matrix(&r, rows, cols, 0.05);
    double *h = qt_hessian(&r, 512, cols);
    double *imp = malloc(cols * sizeof *imp);
    for (int j = 0; j < cols; j++)
        imp[j] = h[(size_t)j * cols + j];
    fq_params p = fq_defaults(), pao = fq_defaults();
    pao.gptq.act_order = 1;
    for (int b = 2; b <= 4; b++) {
        qfmt fr = {QFMT_RTN, b, 64, 0, QFMT_ROT_NONE}, fg = fr;
        fg.method = QFMT_GPTQ;
        double e_rtn = out_err(w, rows, cols, &fr, h, NULL, &p);
        double e_rtn_imp = out_err(w, rows, cols, &fr, h, imp, &p);
        double e_gptq = out_err(w, rows, cols, &fg, h, NULL, &p);
        double e_ao = out_err(w, rows, cols, &fg, h, NULL, &pao);
        CHECK(c, e_gptq <= e_rtn && e_gptq <= e_rtn_imp,
              "b%d g64 asym: GPTQ output error %.4g <= RTN %.4g, RTN+imatrix %.4g", b, e_gptq,
              e_rtn, e_rtn_imp);
        CHECK(c, e_ao <= e_rtn_imp, "b%d: GPTQ act-order %.4g <= RTN+imatrix %.4g", b, e_ao,
              e_rtn_imp);
    }

    /* Lazy block updates equal the one-column-at-a-time sweep (block 1) and odd block sizes. */
    qfmt fb = {QFMT_GPTQ, 3, 64, 0, QFMT_ROT_NONE};
    float *o1 = malloc((size_t)rows * cols * sizeof *o1), *o2b = malloc((size_t)rows * cols * 4);
    gptq_params gp = gptq_defaults();
    vl_err eb;
    gp.block = 1;
    int rcb = gptq_quantize(o1, w, rows, cols, &fb, h, &gp, NULL, "t", &eb);
    for (int blk = 64; blk <= 256; blk += 64) { /* 64, 128 (default), 192, 256 */
        gp.block = blk;
        rcb |= gptq_quantize(o2b, w, rows, cols, &fb, h, &gp, NULL, "t", &eb);
        CHECK_TENSOR(c, o2b, o1, (long)rows * cols, 1e-6, 0, "GPTQ block vs block 1");
    }
    CHECK_INT(c, rcb, 0, "GPTQ block runs");

    /* With H diagonal nothing propagates: GPTQ equals RTN with importance diag H (same clip
     * search), and without clip search plain RTN. */
    double *hd = calloc((size_t)cols * cols, sizeof *hd), *dg = malloc(cols * sizeof *dg);
    for (int j = 0; j < cols; j++)
        hd[(size_t)j * cols + j] = dg[j] = 1.0 + j % 5;
    rcb = gptq_quantize(o1, w, rows, cols, &fb, hd, NULL, NULL, "t", &eb);
    rcb |= quant_rtn(o2b, w, rows, cols, &fb, dg, NULL, "t", &eb);
    CHECK(c, rcb == 0 && !memcmp(o1, o2b, (size_t)rows * cols * sizeof *o1),
          "GPTQ with diagonal H = RTN with importance diag H, bit for bit");
    quant_params plain = {1, 0.5};
    gp = gptq_defaults();
    gp.clip = plain;
    rcb = gptq_quantize(o1, w, rows, cols, &fb, hd, &gp, NULL, "t", &eb);
    rcb |= quant_rtn(o2b, w, rows, cols, &fb, NULL, &plain, "t", &eb);
    CHECK(c, rcb == 0 && !memcmp(o1, o2b, (size_t)rows * cols * sizeof *o1),
          "GPTQ without clip search, diagonal H = plain RTN, bit for bit");
    free(dg);
    free(hd);
    free(o1);
    free(o2b);

    /* Dead inputs: zero column out, no error. */
    vl_err e = {0, ""};
    for (int j = 0; j < cols; j++)
        h[(size_t)5 * cols + j] = h[(size_t)j * cols + 5] = 0.0;
    float *o = malloc((size_t)rows * cols * sizeof *o);
    gptq_info gi;
    qfmt f = {QFMT_GPTQ, 3, 128, 1, QFMT_ROT_NONE};
    int rc = gptq_quantize(o, w, rows, cols, &f, h, NULL, &gi, "t", &e);
    int zero = 1;
    for (int i = 0; i < rows; i++)
        zero &= o[(size_t)i * cols + 5] == 0.0f;
    CHECK(c, rc == 0 && gi.dead == 1 && zero, "dead input: zero column (rc %d, dead %d)", rc,
          gi.dead);
    free(o);

    /* Indefinite H: retries, then a named error. */
    float w2[4] = {0.5f, -0.25f, 0.125f, 1.0f}, o2[4];
    double h_mild[4] = {1, 1.5, 1.5, 1}, h_bad[4] = {1, 100, 100, 1};
    qfmt f2 = {QFMT_GPTQ, 4, 0, 0, QFMT_ROT_NONE};
    rc = gptq_quantize(o2, w2, 2, 2, &f2, h_mild, NULL, &gi, "t", &e);
    CHECK(c, rc == 0 && gi.retries == 2 && gi.percdamp == 1.0,
          "indefinite H recovers after 2 retries (rc %d, retries %d, percdamp %g)", rc,
          gi.retries, gi.percdamp);
    rc = gptq_quantize(o2, w2, 2, 2, &f2, h_bad, NULL, &gi, "blk.3.experts.7.up_proj", &e);
    CHECK_INT(c, rc, VL_EEXTERN, "strongly indefinite H fails");
    CHECK_HAS(c, e.msg, "tensor \"blk.3.experts.7.up_proj\": GPTQ Hessian not positive definite",
              "indefinite H message");
    double h_neg[4] = {-1, 0, 0, 1};
    CHECK_INT(c, gptq_quantize(o2, w2, 2, 2, &f2, h_neg, NULL, NULL, "t", &e), VL_ERANGE,
              "negative diagonal rejected");
    CHECK_INT(c, gptq_perm_bits(256), 256 * 8, "act-order permutation bits 256");
    CHECK_INT(c, gptq_perm_bits(768), 768 * 10, "act-order permutation bits 768");
    free(w);
    free(h);
    free(imp);
}

static void test_fq_policy(chk *c)
{
    qt_rng r = {3};
    int rows = 8, cols = 64;
    float *w = qt_matrix(&r, rows, cols, 1.0);
    double *h = qt_hessian(&r, 128, cols);
    float *o = malloc((size_t)rows * cols * sizeof *o);
    qfmt f = {QFMT_GPTQ, 3, 32, 0, QFMT_ROT_NONE};
    fq_stats few = {NULL, h, 10}, all = {NULL, h, 1000};
    fq_params p = fq_defaults();
    fq_info info;
    vl_err e = {0, ""};
    p.min_tokens = 100;
    p.few = FQ_FEW_RTN;
    int rc = fq_tensor(o, w, rows, cols, &f, &few, NULL, &p, &info, "t", &e);
    CHECK(c, rc == 0 && info.method == QFMT_RTN && info.few_applied, "policy rtn");
    p.few = FQ_FEW_ROUTE_ALL;
    rc = fq_tensor(o, w, rows, cols, &f, &few, &all, &p, &info, "t", &e);
    CHECK(c, rc == 0 && info.method == QFMT_GPTQ && info.few_applied, "policy route-all");
    rc = fq_tensor(o, w, rows, cols, &f, &few, NULL, &p, &info, "t", &e);
    CHECK_INT(c, rc, VL_EARG, "route-all without fallback");
    p.few = FQ_FEW_UNIFORM;
    rc = fq_tensor(o, w, rows, cols, &f, &few, NULL, &p, &info, "t", &e);
    CHECK(c, rc == 0 && info.method == QFMT_RTN, "policy uniform runs GPTQ as RTN without H");
    p.min_tokens = 0;
    fq_stats noh = {NULL, NULL, 1000};
    CHECK_INT(c, fq_tensor(o, w, rows, cols, &f, &noh, NULL, &p, &info, "t", &e), VL_EARG,
              "GPTQ without H");
    CHECK_HAS(c, e.msg, "GPTQ needs", "GPTQ without H message");
    fq_policy pol;
    CHECK(c, fq_policy_parse(&pol, "route-all", &e) == 0 && pol == FQ_FEW_ROUTE_ALL,
          "policy parse");
    CHECK_INT(c, fq_policy_parse(&pol, "all", &e), VL_ECONFIG, "bad policy name");

    /* rd: the output error with H = I equals the weight error. */
    double *eye = calloc((size_t)cols * cols, sizeof *eye);
    for (int j = 0; j < cols; j++)
        eye[(size_t)j * cols + j] = 1.0;
    qfmt fr = {QFMT_RTN, 2, 64, 1, QFMT_ROT_NONE};
    rd_point pt;
    rc = quant_rtn(o, w, rows, cols, &fr, NULL, NULL, "t", &e);
    rc |= rd_measure(&pt, w, o, rows, cols, &fr, NULL, eye, &e);
    CHECK(c, rc == 0 && fabs(pt.rel_out - pt.rel_w) < 1e-12 && pt.rel_imp == pt.rel_w,
          "rd with H = I: rel_out %.6g = rel_w %.6g", pt.rel_out, pt.rel_w);
    CHECK_NEAR(c, pt.bpw, 2.25, 0, 0, "rd bpw b2 row(64) sym");
    free(eye);
    free(w);
    free(h);
    free(o);
}

/* kern_dgemm (BLAS) against its reference twin, on sub-blocks with both op(A). */
static void test_dgemm(chk *c)
{
    qt_rng r = {1};
    enum { M = 13, N = 17, K = 9, LD = 20 };
    double a[LD * LD], b[LD * LD], c1[LD * LD], c2[LD * LD];
    for (int i = 0; i < LD * LD; i++) {
        a[i] = qt_gauss(&r);
        b[i] = qt_gauss(&r);
        c1[i] = c2[i] = qt_gauss(&r);
    }
    for (int t = 0; t < 2; t++) {
        kern_dgemm(c1, a + 1, b + 2, M, N, K, t, LD, LD, LD, -0.5, 1.0);
        kern_dgemm_ref(c2, a + 1, b + 2, M, N, K, t, LD, LD, LD, -0.5, 1.0);
        double dev = 0;
        for (int i = 0; i < LD * LD; i++)
            dev = fmax(dev, fabs(c1[i] - c2[i]));
        CHECK(c, dev < 1e-12, "kern_dgemm trans_a=%d matches reference (max dev %.3g)", t, dev);
    }
}

int main(void)
{
    chk c;
    chk_init(&c, "test_quant");
    test_dgemm(&c);
    test_f16(&c);
    test_exact_grid(&c);
    test_rtn(&c);
    test_clip_search(&c);
    test_gptq(&c);
    test_fq_policy(&c);
    return chk_done(&c);
}
