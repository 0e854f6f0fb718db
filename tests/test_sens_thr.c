/* tests/test_sens_thr.c — the speed paths of the sensitivity scan give the numbers of the
 * plain ones: the vectorised per-token KL (alloc/sens_kld.c) against a long-double brute
 * force over perturbations from 1e-5 to 20 nats, common shifts and odd vocabularies; a scan on
 * 3 threads, and one on the model kept in float32, give the α, draws and per-sequence KLDs of
 * the one-thread scan on the stored weights, bit for bit. */
#include "../alloc/sens.h"
#include "../analysis/spass.h"
#include "../core/kern.h"
#include "../core/rng.h"
#include "check.h"

#include <gsl/gsl_errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

enum { S = 2, TL = 12 };

/* The scan's KL in long double: KL(p̂ ‖ q) with p̂ = p/Σp (the stored float32 reference
 * probabilities) and q ∝ p̂·e^δ, δ = z − z0 (the perturbed run moves the reference's log-odds
 * by δ): log Σ p̂ e^δ − Σ p̂ δ, the first term as log1p of Σ p̂ expm1(δ) so that no digit is
 * lost at δ = 1e-5. (Against the exact softmax of z0 instead of p̂ the value moves by
 * Σ (p̂ − softmax) δ, float32 rounding of p times δ: first order in δ, 1e-3 of a 1e-5 KL.) */
static long double brute_kl(const float *z0, const float *p, const float *z, int V)
{
    long double ps = 0, a = 0, b = 0;
    for (int v = 0; v < V; v++)
        ps += p[v];
    for (int v = 0; v < V; v++) {
        long double d = (long double)z[v] - (long double)z0[v];
        a += p[v] / ps * expm1l(d);
        b += p[v] / ps * d;
    }
    return log1pl(a) - b;
}

static void test_token_kl(chk *c)
{
    static const int vocab[] = {16384, 1003, 7};
    static const double scale[] = {1e-5, 1e-3, 3e-2, 0.3, 2.0, 20.0};
    rng *g = NULL;
    vl_err e;
    CHECK_INT(c, rng_new_child(&g, 7, "test.sens.kl", &e), 0, "rng");
    double worst = 0;
    int zero_ok = 1, n = 0;
    for (int iv = 0; iv < 3; iv++) {
        int V = vocab[iv];
        float *z0 = vl_malloc((size_t)V * sizeof *z0), *z = vl_malloc((size_t)V * sizeof *z);
        float *p = vl_malloc((size_t)V * sizeof *p);
        for (int v = 0; v < V; v++)
            z0[v] = (float)rng_gaussian(g, 3.0);
        double mx = z0[0], se = 0, ps = 0;
        for (int v = 0; v < V; v++)
            mx = z0[v] > mx ? z0[v] : mx;
        for (int v = 0; v < V; v++)
            se += exp(z0[v] - mx);
        for (int v = 0; v < V; v++) {
            p[v] = (float)exp(z0[v] - mx - log(se));
            ps += p[v];
        }
        zero_ok &= sens_token_kl(z0, p, ps, z0, V) == 0.0;
        for (int is = 0; is < 6; is++)
            for (int shift = 0; shift < 2; shift++) { /* shift: every logit also moves by 0.7 */
                for (int v = 0; v < V; v++)
                    z[v] = z0[v] + (float)rng_gaussian(g, scale[is]) + (shift ? 0.7f : 0.0f);
                double got = sens_token_kl(z0, p, ps, z, V);
                long double want = brute_kl(z0, p, z, V);
                double rel = fabs(got - (double)want) / (double)want;
                worst = rel > worst ? rel : worst;
                n++;
            }
        vl_free(z0);
        vl_free(z);
        vl_free(p);
    }
    rng_free(g);
    CHECK(c, zero_ok, "KL of identical logits is exactly 0");
    CHECK(c, worst <= 2e-6, "vectorised KL = long-double brute force within 2e-6 relative "
          "(worst %.3g over %d rows; δ from 1e-5 to 20, shifted or not)", worst, n);
}

static void make_ids(int32_t *ids, int n, int vocab)
{
    uint32_t x = 77;
    for (int i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        ids[i] = (int32_t)(1 + (x >> 8) % (uint32_t)(vocab - 1));
    }
}

/* The whole scan (every group unit, both ε, 2 draws) on 1 and 3 threads, and on 2 threads
 * with the model kept in float32 (sens_set_keep_f32), bit for bit. The caller's BLAS is on 2
 * threads throughout (the reference run and the 1-thread scan would use it if the set did not
 * run every forward on one BLAS thread: OpenBLAS's threaded sgemm sums in another order, which
 * moved α by up to 4e-4 relative against the 3-thread scan's). */
static void test_threads(chk *c, const model *m)
{
    enum { RUNS = 3 };
    int32_t ids[S * TL];
    make_ids(ids, S * TL, model_config(m)->vocab);
    vl_err e = {0};
    sens_set *ss = NULL, *kept = NULL;
    int blas = kern_threads();
    kern_set_threads(2);
    CHECK_INT(c, sens_set_new(&ss, m, ids, S, TL, &e), 0, "sens_set_new");
    CHECK_INT(c, sens_set_new(&kept, m, ids, S, TL, &e), 0, "sens_set_new (kept)");
    CHECK_INT(c, sens_set_keep_f32(ss, 1024, &e), 0, "a 1 KiB cap keeps nothing");
    CHECK(c, sens_set_base(ss) == model_base(m), "nothing kept: the runs start from model_base");
    CHECK_INT(c, sens_set_keep_f32(kept, SENS_KEEP_F32_DEFAULT, &e), 1, "the model kept");
    CHECK(c, sens_set_base(kept) != model_base(m), "kept: the runs start from the copy");
    sens_result r[RUNS];
    const char *names[] = {"a"};
    static const int nt[RUNS] = {1, 3, 2};
    for (int k = 0; k < RUNS; k++) {
        memset(&r[k], 0, sizeof r[k]);
        sens_params p = sens_defaults();
        p.threads = nt[k];
        int rc = sens_layout(&r[k], m, SENS_GROUP, 0, &e);
        rc = rc ? rc : sens_alloc_alpha(&r[k], 1, names, &e);
        rc = rc ? rc : sens_alpha(&r[k], 0, m, k == 2 ? kept : ss, &p, &e);
        CHECK(c, rc == 0, "scan %d on %d threads: %s", k, nt[k], rc ? e.msg : "ok");
    }
    int U = r[0].n_units, D = r[0].n_draws, n = S, pos = 1;
    double worst[RUNS] = {0};
    for (int k = 1; k < RUNS; k++)
        for (int l = 0; l < 2; l++)
            for (int u = 0; u < U; u++) {
                const double *a = r[0].alpha[l], *b = r[k].alpha[l];
                pos &= a[u] > 0;
                double d = fabs(a[u] - b[u]) / a[u];
                for (int q = 0; q < D; q++) {
                    double x = r[0].draw_alpha[l][(size_t)u * D + q];
                    double y = r[k].draw_alpha[l][(size_t)u * D + q];
                    d = fmax(d, fabs(x - y) / x);
                }
                for (int q = 0; q < n; q++) {
                    size_t i = ((size_t)l * U + u) * n + q;
                    d = fmax(d, fabs(r[0].seq_kld[0][i] - r[k].seq_kld[0][i]) /
                                    r[0].seq_kld[0][i]);
                }
                worst[k] = d > worst[k] ? d : worst[k];
            }
    CHECK(c, pos && U == 60 && D == 2, "one thread: 60 units, 2 draws, every α > 0");
    CHECK(c, worst[1] == 0, "3 threads: α, draws' α and per-sequence KLD = one thread's bit for "
          "bit (worst relative difference %.3g)", worst[1]);
    CHECK(c, worst[2] == 0, "2 threads on the kept float32 model: α, draws' α and per-sequence "
          "KLD = the stored weights' bit for bit (worst relative difference %.3g)", worst[2]);
    CHECK(c, kern_threads() == 2 || !strcmp(kern_backend(), "reference"),
          "the caller's BLAS thread count is restored (%d)", kern_threads());
    kern_set_threads(blas);
    for (int k = 0; k < RUNS; k++)
        sens_result_free(&r[k]);
    sens_set_free(ss);
    sens_set_free(kept);
}

/* Bit-for-bit equal arrays of n doubles (NaN equal to NaN). */
static int same_f64(const double *a, const double *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(a[i] == b[i] || (isnan(a[i]) && isnan(b[i]))))
            return 0;
    return 1;
}

/* Two sets with XᵀX (rel_out), two RTN formats: sens_rd_begin + sens_rd_set per set give
 * sens_rd's tables, and set s's tensors are sens_quantize_set's. */
static void test_rd_set(chk *c, const model *m)
{
    int32_t ids[2][S * TL];
    make_ids(ids[0], S * TL, model_config(m)->vocab);
    for (int i = 0; i < S * TL; i++)
        ids[1][i] = (ids[0][i] * 5 + 3) % model_config(m)->vocab;
    vl_err e = {0};
    spass_opts o = spass_opts_defaults();
    o.batch = S;
    o.max_len = TL;
    spass *sp = NULL;
    stat_acc *acc[2] = {NULL, NULL};
    CHECK_INT(c, spass_new(&sp, m, &o, &e), 0, "spass_new");
    for (int s = 0; sp && s < 2; s++) {
        CHECK_INT(c, spass_acc_new(sp, S * TL, &acc[s], &e), 0, "spass_acc_new");
        CHECK_INT(c, spass_run(sp, acc[s], ids[s], S, TL, s ? "b" : "a", &e), 0, "spass_run");
    }
    spass_free(sp);
    const char *names[] = {"a", "b"}, *spec = "rtn:b=2:g=64;rtn:b=3:g=128:s=sym";
    sens_result a = {0}, b = {0};
    sens_params p = sens_defaults();
    int rc = sens_layout(&a, m, SENS_GROUP, 0, &e);
    rc = rc ? rc : sens_alloc_alpha(&a, 2, names, &e);
    rc = rc ? rc : sens_rd(&a, m, spec, acc, &p, NULL, &e);
    rc = rc ? rc : sens_layout(&b, m, SENS_GROUP, 0, &e);
    rc = rc ? rc : sens_alloc_alpha(&b, 2, names, &e);
    rc = rc ? rc : sens_rd_begin(&b, spec, &p, &e);
    float *q[2] = {NULL, NULL}, *want = NULL;
    for (int s = 0; !rc && s < 2; s++)
        rc = sens_rd_set(&b, m, acc[s], s, &p, &q[s], &e);
    CHECK(c, rc == 0, "RD of both sets, both ways: %s", rc ? e.msg : "ok");
    if (!rc) {
        size_t T = (size_t)a.n_tensors, F = (size_t)a.n_formats, stf = 2 * T * F;
        int same = same_f64(a.rel_w, b.rel_w, stf) && same_f64(a.rel_imp, b.rel_imp, stf) &&
                   same_f64(a.rel_out, b.rel_out, stf) && same_f64(a.bpw, b.bpw, T * F) &&
                   !memcmp(a.few, b.few, stf) && same_f64(a.w_norm2, b.w_norm2, T) &&
                   same_f64(a.out_energy, b.out_energy, 2 * T) &&
                   same_f64(a.noise_energy, b.noise_energy, 2 * T) &&
                   same_f64(a.route_share, b.route_share, 2 * T);
        int finite = isfinite(b.rel_out[stf - 1]) && isfinite(b.rel_w[0]);
        CHECK(c, same && finite, "sens_rd_set per set = sens_rd, bit for bit (%zu entries)",
              stf);
        int qsame = 1;
        for (int s = 0; s < 2; s++) {
            rc = sens_quantize_set(&a, m, acc[s], s, &p, &want, &e);
            qsame &= !rc && !memcmp(want, q[s], sens_q_offset(&a, (int)T) * sizeof *want);
            vl_free(want);
            want = NULL;
        }
        CHECK(c, qsame, "set s's tensors from sens_rd_set = sens_quantize_set's, bit for bit");
    }
    vl_free(q[0]);
    vl_free(q[1]);
    sens_result_free(&a);
    sens_result_free(&b);
    stat_free(acc[0]);
    stat_free(acc[1]);
}

int main(void)
{
    chk c;
    chk_init(&c, "sens_thr");
    gsl_set_error_handler_off();
    test_token_kl(&c);
    vl_err e;
    model *m = NULL;
    if (model_open(&m, "models/vbrlab-moe-tiny", &e)) {
        printf("cannot open model: %s\n", e.msg);
        return 1;
    }
    test_rd_set(&c, m);
    test_threads(&c, m);
    model_close(m);
    return chk_done(&c);
}
