/* tests/test_additivity.c — the additivity check (alloc/sens.h, sens_band.c, sens_add.c):
 * band construction, draws, the held-out split and the band statistics on hand-made data
 * (values computed by hand in the comments), then the check on the embedded model against an
 * independent recomputation: measured on the held-out sequence only, predicted with α from the
 * other sequences, every set checked, a one-width menu reported as one distinct assignment. */
#include "../alloc/sens.h"
#include "../analysis/spass.h"
#include "check.h"

#include <gsl/gsl_errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define CI(c, got, want) CHECK_INT(c, got, want, #got)

static void test_bands(chk *c)
{
    sens_band b[SENS_MAX_BANDS];
    int w1[4] = {2, 3, 4, 2}; /* widths 2, 3, 4 (2 twice): bands 2/3 and 3/4 */
    CI(c, sens_bands(w1, 4, b, SENS_MAX_BANDS), 2);
    CHECK(c, b[0].lo == 2 && b[0].hi == 3 && b[1].lo == 3 && b[1].hi == 4, "bands 2/3, 3/4");
    int w2[2] = {4, 2}; /* unsorted, one gap: one band 2/4 */
    CI(c, sens_bands(w2, 2, b, SENS_MAX_BANDS), 1);
    CHECK(c, b[0].lo == 2 && b[0].hi == 4, "band 2/4 from widths {4, 2}");
    int w3[2] = {3, 3}; /* one width: one band that cannot mix */
    CI(c, sens_bands(w3, 2, b, SENS_MAX_BANDS), 1);
    CHECK(c, b[0].lo == 3 && b[0].hi == 3, "one width: band 3/3");
    int w4[5] = {1, 2, 3, 4, 5};
    CI(c, sens_bands(w4, 5, b, 2), 2); /* capped */

    qfmt f = {QFMT_RTN, 3, 64, 0, QFMT_ROT_NONE}, g = {QFMT_GGML, 10, 0, 0, QFMT_ROT_NONE};
    CI(c, sens_fmt_width(&f, 3.5), 3);
    CI(c, sens_fmt_width(&g, 2.625), 2); /* ggml: floor of its bpw (q2_K) */

    /* draws of band 2/3 over formats of widths {2, 3, 4, 2}: only widths 2 and 3, both
     * formats of width 2 used, about half the units at 3; seeded */
    enum { U = 400 };
    static int ch[U], ch2[U];
    sens_band b23 = {2, 3};
    rng *r1 = NULL, *r2 = NULL;
    CI(c, rng_new(&r1, 7, NULL), 0);
    CI(c, rng_new(&r2, 7, NULL), 0);
    sens_band_draw(&b23, w1, 4, U, r1, ch);
    sens_band_draw(&b23, w1, 4, U, r2, ch2);
    int cnt[4] = {0};
    for (int u = 0; u < U; u++)
        cnt[ch[u]]++;
    CHECK(c, cnt[2] == 0, "no width-4 format in band 2/3");
    CHECK(c, cnt[0] > 50 && cnt[3] > 50, "both width-2 formats drawn (%d, %d)", cnt[0], cnt[3]);
    CHECK(c, cnt[1] > 150 && cnt[1] < 250, "about half the units at width 3 (%d of %d)", cnt[1],
          U);
    CHECK(c, !memcmp(ch, ch2, sizeof ch), "the same seed draws the same assignment");
    rng_free(r1);
    rng_free(r2);

    int first;
    CI(c, sens_holdout(1, &first), 0);
    CI(c, sens_holdout(2, &first), 1);
    CI(c, first, 1);
    CI(c, sens_holdout(5, &first), 2); /* ceil(5/4) = 2: sequences 3, 4 */
    CI(c, first, 3);
    CI(c, sens_holdout(16, &first), 4);
    CI(c, first, 12);
}

static void test_stats(chk *c)
{
    vl_err e = {0};
    /* x = 1..5, y = 2,1,4,3,5: dx = −2..2, dy = −1,−2,1,0,2, Σdxdy = 8, Σdx² = Σdy² = 10:
     * Pearson 0.8; y's ranks are its values: Spearman 0.8; Σxy = 53, Σx² = 55: ratio 53/55;
     * slope Σdxdy/Σdx² = 0.8. bpw constant: the partial r is the plain r. */
    double x[5] = {1, 2, 3, 4, 5}, y[5] = {2, 1, 4, 3, 5}, z[5] = {2.5, 2.5, 2.5, 2.5, 2.5};
    int ch[5] = {0, 1, 2, 3, 4}; /* U = 1: five distinct assignments */
    double o[SENS_BS_COUNT], o2[SENS_BS_COUNT];
    CI(c, sens_band_stats(o, x, y, z, ch, 1, 5, 500, 3, "t", &e), 0);
    CHECK_NEAR(c, o[SENS_BS_PEARSON], 0.8, 1e-12, 0, "Pearson 0.8");
    CHECK_NEAR(c, o[SENS_BS_SPEARMAN], 0.8, 1e-12, 0, "Spearman 0.8");
    CHECK_NEAR(c, o[SENS_BS_PARTIAL], 0.8, 1e-12, 0, "partial given a constant = Pearson");
    CHECK_NEAR(c, o[SENS_BS_RATIO], 53.0 / 55, 1e-12, 0, "ratio 53/55");
    CHECK_NEAR(c, o[SENS_BS_SLOPE], 0.8, 1e-12, 0, "slope 0.8");
    CHECK(c, o[SENS_BS_N] == 5 && o[SENS_BS_DISTINCT] == 5, "5 draws, 5 distinct");
    CHECK(c, o[SENS_BS_RATIO_LO] <= o[SENS_BS_RATIO] && o[SENS_BS_RATIO] <= o[SENS_BS_RATIO_HI] &&
             o[SENS_BS_RATIO_LO] < o[SENS_BS_RATIO_HI],
          "ratio inside its interval [%g, %g]", o[SENS_BS_RATIO_LO], o[SENS_BS_RATIO_HI]);
    CHECK(c, o[SENS_BS_SLOPE_LO] < o[SENS_BS_SLOPE_HI], "slope interval has width");
    /* seeded intervals on 40 noisy points (continuous resample distribution) */
    double xs[40], ys[40], zs[40];
    int cs[40];
    for (int i = 0; i < 40; i++) {
        xs[i] = 1 + i;
        ys[i] = xs[i] * (1 + 0.3 * sin(1.7 * i)); /* ratio about 1 */
        zs[i] = 2 + 0.01 * (i % 3);
        cs[i] = i;
    }
    CI(c, sens_band_stats(o, xs, ys, zs, cs, 1, 40, 300, 3, "t", &e), 0);
    CI(c, sens_band_stats(o2, xs, ys, zs, cs, 1, 40, 300, 3, "t", &e), 0);
    CHECK(c, !memcmp(o, o2, sizeof o), "seeded: the same intervals");
    CHECK(c, o[SENS_BS_RATIO_LO] < 1 && o[SENS_BS_RATIO_HI] > 1 &&
             o[SENS_BS_RATIO_HI] - o[SENS_BS_RATIO_LO] < 0.3,
          "ratio interval [%g, %g] around 1", o[SENS_BS_RATIO_LO], o[SENS_BS_RATIO_HI]);
    CI(c, sens_band_stats(o2, xs, ys, zs, cs, 1, 40, 300, 4, "t", &e), 0);
    CHECK(c, o2[SENS_BS_RATIO_LO] != o[SENS_BS_RATIO_LO] ||
             o2[SENS_BS_RATIO_HI] != o[SENS_BS_RATIO_HI], "another seed, other intervals");

    /* Spearman ≠ Pearson: y = 1,2,3,4,100 (monotone): Spearman 1; mean y 22, dy = −21, −20,
     * −19, −18, 78: Σdxdy = 42 + 20 + 0 − 18 + 156 = 200, Σdy² = 441 + 400 + 361 + 324 + 6084
     * = 7610: Pearson 200/√(10·7610) = 0.72499943... A NaN draw is left out. */
    double x6[6] = {1, 2, 3, 4, 5, NAN}, y6[6] = {1, 2, 3, 4, 100, 7}, z6[6] = {0};
    int ch6[6] = {0, 1, 2, 3, 4, 5};
    CI(c, sens_band_stats(o, x6, y6, z6, ch6, 1, 6, 0, 3, "t", &e), 0);
    CHECK_NEAR(c, o[SENS_BS_SPEARMAN], 1, 1e-12, 0, "Spearman 1");
    CHECK_NEAR(c, o[SENS_BS_PEARSON], 200 / sqrt(76100.0), 1e-12, 0, "Pearson 0.72500");
    CHECK(c, o[SENS_BS_N] == 5, "the NaN draw left out");
    CHECK(c, isnan(o[SENS_BS_RATIO_LO]), "no resamples: no interval");

    /* partial r: z = 1..4, x = z + e1, y = z + e2 with e1 = (1,−1,−1,1), e2 = (2,−4,2,0), both
     * orthogonal to 1 and z, so they are the residuals given z: partial r = e1·e2/(|e1||e2|)
     * = 4/√(4·24) = 1/√6 = 0.408248..., while the plain r of x and y is larger. */
    double zp[4] = {1, 2, 3, 4}, xp[4] = {2, 1, 2, 5}, yp[4] = {3, -2, 5, 4};
    CHECK_NEAR(c, sens_partial_corr(xp, yp, zp, 4), 1 / sqrt(6.0), 1e-12, 0,
               "partial r = 1/√6");
    CHECK(c, isnan(sens_partial_corr(xp, yp, zp, 3)), "partial r needs 4 points");

    /* one distinct assignment (every draw the same): no correlation, reported as such */
    int same[5] = {1, 1, 1, 1, 1};
    CI(c, sens_band_stats(o, x, y, z, same, 1, 5, 100, 3, "t", &e), 0);
    CHECK(c, o[SENS_BS_DISTINCT] == 1 && o[SENS_BS_N] == 5 && isnan(o[SENS_BS_PEARSON]) &&
             isnan(o[SENS_BS_RATIO]),
          "one distinct assignment: n 5, distinct 1, no statistics");
}

enum { NS = 4, TL = 16 };

/* Statistics of two sets (ids differ) with XᵀX, for sens_rd. */
static int make_stats(const model *m, int32_t ids[2][NS * TL], stat_acc *acc[2], vl_err *e)
{
    uint32_t x = 77;
    int V = model_config(m)->vocab;
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < NS * TL; i++) {
            x = x * 1664525u + 1013904223u;
            ids[s][i] = (int32_t)(1 + (x >> 8) % (uint32_t)(V - 1));
        }
    spass_opts o = spass_opts_defaults();
    o.batch = NS;
    o.max_len = TL;
    o.hessian = "layers\\.[01]\\."; /* out form on the first two layers; NaN elsewhere */
    spass *sp = NULL;
    int rc = spass_new(&sp, m, &o, e);
    for (int s = 0; !rc && s < 2; s++) {
        rc = spass_acc_new(sp, NS * TL, &acc[s], e);
        if (!rc)
            rc = spass_run(sp, acc[s], ids[s], NS, TL, s ? "b" : "a", e);
    }
    spass_free(sp);
    return rc;
}

/* Made-up per-sequence KLDs: α' must come from sequences 0..2, never from the held-out 3. */
static void fake_alpha(sens_result *r, int si)
{
    int U = r->n_units;
    r->set_seqs[si] = NS;
    r->seq_kld[si] = vl_malloc(2 * (size_t)U * NS * sizeof(double));
    for (int k = 0; k < 2; k++)
        for (int u = 0; u < U; u++)
            for (int q = 0; q < NS; q++)
                r->seq_kld[si][((size_t)k * U + u) * NS + q] =
                    q == NS - 1 ? 1e3 : 1e-4 * (1 + u % 7) * (1 + q + si);
    for (int u = 0; u < U; u++)
        r->alpha[0][(size_t)si * U + u] = 1e9; /* the solver's α: must not be used */
}

static void test_check(chk *c, const model *m)
{
    vl_err e = {0};
    int32_t ids[2][NS * TL];
    stat_acc *acc[2] = {NULL, NULL};
    CI(c, make_stats(m, ids, acc, &e), 0);
    sens_result r = {0};
    const char *names[] = {"a", "b"};
    sens_params p = sens_defaults();
    CI(c, p.add_draws, 30);
    p.add_draws = 3;
    CI(c, sens_layout(&r, m, SENS_GROUP, 0, &e), 0);
    CI(c, sens_alloc_alpha(&r, 2, names, &e), 0);
    int rc = sens_rd(&r, m, "rtn:b=2..3:g=64", acc, &p, NULL, &e);
    CHECK(c, rc == 0, "sens_rd: %s", rc ? e.msg : "ok");
    if (rc)
        goto done;
    r.eps[0] = 0.01;
    r.eps[1] = 0.03; /* a store needs both (sens_read) */
    int U = r.n_units, A = 0;
    for (int s = 0; s < 2; s++) {
        fake_alpha(&r, s);
        sens_set *ss = NULL;
        float *q = NULL;
        CI(c, sens_set_new(&ss, m, ids[s], NS, TL, &e), 0);
        CI(c, sens_quantize_set(&r, m, acc[s], s, &p, &q, &e), 0);
        CI(c, sens_additivity(&r, s, m, ss, q, &p, &e), 0);
        A = r.n_add;
        CHECK(c, r.add_holdout[2 * s] == 3 && r.add_holdout[2 * s + 1] == 1,
              "set %d: sequence 3 held out", s);
        /* independent: a set of the held-out sequence alone, bound the same way */
        sens_set *ho = NULL;
        CI(c, sens_set_new(&ho, m, ids[s] + 3 * TL, 1, TL, &e), 0);
        double alpha3[256];
        for (int u = 0; u < U; u++) { /* α' = mean over sequences 0..2 of the made-up KLDs */
            double t = 0;
            for (int k = 0; k < 3; k++)
                t += 1e-4 * (1 + u % 7) * (1 + k + s);
            alpha3[u] = t / 3 / (0.01 * 0.01);
        }
        int meas_ok = 1, pred_ok = 1, mixed = 0;
        for (int a = 0; a < A; a++) {
            const int *ch = r.add_choice + (size_t)a * U;
            double bpw, kl, pr[2], want = 0;
            CI(c, sens_assign_eval(&r, m, ho, q, s, ch, &bpw, &kl, pr, &e), 0);
            double got = r.add_measured[(size_t)s * A + a], all;
            /* a batch of 1 vs 4 rounds differently in BLAS: agreement to float precision */
            meas_ok &= fabs(kl - got) <= 1e-4 * kl && bpw == r.add_bpw[a];
            CI(c, sens_assign_eval(&r, m, ss, q, s, ch, &bpw, &all, pr, &e), 0);
            meas_ok &= fabs(all - got) > 1e-3 * all; /* not the mean over every sequence */
            if (a == 0)
                printf("# set %d draw 0: held-out %.9g, recomputed %.9g, all sequences %.9g\n",
                       s, got, kl, all);
            for (int i = 0; i < r.n_tensors; i++)
                want += sens_tensor_dist_alpha(&r, s, i, ch[r.t[i].unit], SENS_E_REL,
                                               alpha3[r.t[i].unit]);
            pred_ok &= fabs(want - r.add_pred[0][(size_t)s * A + a]) <= 1e-12 * want;
            int w2 = 0, w3 = 0;
            for (int u = 0; u < U; u++) {
                w2 += r.fmt[ch[u]].bits == 2;
                w3 += r.fmt[ch[u]].bits == 3;
            }
            mixed += w2 > 0 && w3 > 0;
        }
        CHECK(c, meas_ok, "set %d: measured = KLD of the bound draw on the held-out sequence", s);
        CHECK(c, pred_ok, "set %d: prediction from α of sequences 0..2 only", s);
        CHECK(c, mixed == A, "set %d: every draw mixes 2- and 3-bit units (%d of %d)", s, mixed,
              A);
        const double *st = r.add_stats + (size_t)s * r.n_bands * 2 * SENS_BS_COUNT;
        CHECK(c, st[SENS_BS_N] == 3 && st[SENS_BS_DISTINCT] == 3 && isfinite(st[SENS_BS_PEARSON]),
              "set %d: band 2/3 rel: 3 draws, 3 distinct, a correlation", s);
        sens_set_free(ho);
        sens_set_free(ss);
        vl_free(q);
    }
    CI(c, r.n_bands, 1);
    CI(c, A, 3);
    CHECK(c, r.band[0].lo == 2 && r.band[0].hi == 3, "one band 2/3");
    CHECK(c, r.add_measured[0] != r.add_measured[A], "the two sets measure differently");

    /* store round trip */
    h5s_store *h = NULL;
    const char *path = "build/test_additivity_rt.h5";
    CI(c, h5s_create(&h, path, &e), 0);
    CI(c, sens_write(&r, h, &e), 0);
    CI(c, h5s_commit(h, &e), 0);
    sens_result b;
    CI(c, h5s_open(&h, path, &e), 0);
    rc = sens_read(&b, h, &e);
    CHECK(c, rc == 0, "read back: %s", rc ? e.msg : "ok");
    h5s_close(h);
    if (!rc) {
        size_t ns = 2 * (size_t)r.n_bands * 2 * SENS_BS_COUNT;
        CHECK(c, b.n_add == A && b.add_draws == 3 && b.n_bands == 1 &&
                 !memcmp(b.add_stats, r.add_stats, ns * sizeof(double)) &&
                 !memcmp(b.add_measured, r.add_measured, 2 * (size_t)A * sizeof(double)) &&
                 !memcmp(b.add_holdout, r.add_holdout, 4 * sizeof(int)),
              "additivity read back bit for bit");
        sens_result_free(&b);
    }
    remove(path);
done:
    sens_result_free(&r);

    /* a one-width menu: one band, one distinct assignment, reported as such */
    sens_result r1 = {0};
    CI(c, sens_layout(&r1, m, SENS_GROUP, 0, &e), 0);
    CI(c, sens_alloc_alpha(&r1, 2, names, &e), 0);
    CI(c, sens_rd(&r1, m, "rtn:b=2:g=64", acc, &p, NULL, &e), 0);
    r1.eps[0] = 0.01;
    fake_alpha(&r1, 0);
    sens_set *ss = NULL;
    float *q = NULL;
    CI(c, sens_set_new(&ss, m, ids[0], NS, TL, &e), 0);
    CI(c, sens_quantize_set(&r1, m, acc[0], 0, &p, &q, &e), 0);
    CI(c, sens_additivity(&r1, 0, m, ss, q, &p, &e), 0);
    CHECK(c, r1.n_bands == 1 && r1.band[0].lo == 2 && r1.band[0].hi == 2 &&
             r1.add_stats[SENS_BS_DISTINCT] == 1 && r1.add_stats[SENS_BS_N] == 3 &&
             isnan(r1.add_stats[SENS_BS_PEARSON]),
          "one width: band 2/2, 3 draws, 1 distinct assignment, no correlation");
    sens_set_free(ss);
    vl_free(q);
    sens_result_free(&r1);
    stat_free(acc[0]);
    stat_free(acc[1]);
}

int main(void)
{
    chk c;
    chk_init(&c, "additivity");
    gsl_set_error_handler_off();
    test_bands(&c);
    test_stats(&c);
    vl_err e;
    model *m = NULL;
    if (model_open(&m, "models/vbrlab-moe-tiny", &e)) {
        printf("cannot open model: %s\n", e.msg);
        return 1;
    }
    test_check(&c, m);
    model_close(m);
    return chk_done(&c);
}
