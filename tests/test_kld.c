/* tests/test_kld.c — KLD metrics against a long-double brute force on small distributions and
 * on full-vocabulary rows.
 *
 * Per-token tolerance: kld_token_eval's exponentials come from core/vexp.h, each within
 * VEXP_MAX_REL relative of the true value, summed in float32 lanes over blocks of 64; a
 * log-sum-exp then carries ≲ 2·VEXP_MAX_REL absolute error and KL, entropy and NLL (sums and
 * differences of two of them) ≲ 4·VEXP_MAX_REL. The summaries are checked exactly against a
 * brute force over the per-token values the function returned. */
#include "../analysis/kld.h"
#include "../core/vexp.h"
#include "check.h"

#include <gsl/gsl_errno.h>
#include <stdint.h>

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 11;
}
static double unif(uint64_t *s) { return (double)lcg(s) / 9007199254740992.0; }

/* Brute force: probabilities by direct exp/sum in long double. */
static void bf_probs(const float *l, int V, long double *p)
{
    long double z = 0;
    for (int v = 0; v < V; v++)
        z += expl((long double)l[v]);
    for (int v = 0; v < V; v++)
        p[v] = expl((long double)l[v]) / z;
}

/* Brute-force percentile: linear interpolation between order statistics at f·(n−1). */
static double bf_quantile(double *x, size_t n, double f)
{
    for (size_t i = 1; i < n; i++) /* insertion sort: n is small */
        for (size_t j = i; j > 0 && x[j - 1] > x[j]; j--) {
            double t = x[j];
            x[j] = x[j - 1];
            x[j - 1] = t;
        }
    double pos = f * (double)(n - 1);
    size_t i = (size_t)pos;
    double fr = pos - (double)i;
    return i + 1 < n ? (1 - fr) * x[i] + fr * x[i + 1] : x[i];
}

/* Rows of a 16k vocabulary shaped like a model's (a few large logits, a long low tail), q a
 * perturbation of r at three strengths: every value within TOL of the long-double brute force,
 * and a vocabulary size that is not a multiple of the lanes (the scalar tail). */
static void test_full_vocab(chk *c)
{
    enum { V = 16387 };
    static float lr[V], lq[V];
    static long double p[V], q[V];
    uint64_t s = 7;
    for (int t = 0; t < 6; t++) {
        for (int v = 0; v < V; v++) {
            double u = unif(&s);
            lr[v] = (float)(12.0 * u * u * u - 4.0 + (v % 97 == 0 ? 6.0 * unif(&s) : 0.0));
            lq[v] = lr[v] + (float)((unif(&s) - 0.5) * 0.3 * (t % 3));
        }
        int y = (int)(lcg(&s) % V);
        kld_token k = kld_token_eval(lr, lq, V, y);
        bf_probs(lr, V, p);
        bf_probs(lq, V, q);
        long double kl = 0, h = 0;
        for (int v = 0; v < V; v++) {
            kl += p[v] * logl(p[v] / q[v]);
            h -= p[v] * logl(p[v]);
        }
        double tol = 4 * VEXP_MAX_REL;
        CHECK_NEAR(c, k.kld, (double)kl, tol, 0, "16k vocab: kld");
        CHECK_NEAR(c, k.entropy_ref, (double)h, tol, 0, "16k vocab: entropy");
        CHECK_NEAR(c, k.nll_ref, -(double)logl(p[y]), tol, 0, "16k vocab: nll ref");
        CHECK_NEAR(c, k.nll_q, -(double)logl(q[y]), tol, 0, "16k vocab: nll q");
        CHECK_NEAR(c, k.dp, (double)(q[y] - p[y]), tol, 0, "16k vocab: dp");
    }
    lq[V - 1] = NAN; /* a NaN in the scalar tail still poisons every value */
    kld_token k = kld_token_eval(lr, lq, V, 0);
    CHECK(c, isnan(k.kld) && isnan(k.nll_q), "NaN logit gives NaN KLD");
    lq[V - 1] = 0;
    lq[5] = INFINITY;
    k = kld_token_eval(lr, lq, V, 0);
    CHECK(c, isnan(k.kld), "Inf logit gives NaN KLD");
}

int main(void)
{
    gsl_set_error_handler_off();
    chk c;
    chk_init(&c, "test_kld");
    enum { V = 37, N = 101 };
    uint64_t s = 42;
    float lr[V], lq[V];
    long double p[V], q[V];
    double kl_bf[N], kl_got[N];
    const double TOL = 4 * VEXP_MAX_REL;
    kld_acc a, a1, a2;
    kld_acc_init(&a);
    kld_acc_init(&a1);
    kld_acc_init(&a2);
    double sum_dp2 = 0, sum_nr = 0, sum_nq = 0;
    int same = 0;
    c.quiet = 1;
    for (int t = 0; t < N; t++) {
        for (int v = 0; v < V; v++) {
            lr[v] = (float)(6.0 * unif(&s) - 3.0);
            lq[v] = lr[v] + (float)((unif(&s) - 0.5) * (t % 7) * 0.4);
        }
        int y = (int)(lcg(&s) % V);
        kld_token k = kld_token_eval(lr, lq, V, y);
        bf_probs(lr, V, p);
        bf_probs(lq, V, q);
        long double kl = 0;
        int ar = 0, aq = 0;
        for (int v = 0; v < V; v++) {
            kl += p[v] * logl(p[v] / q[v]);
            if (p[v] > p[ar]) ar = v;
            if (q[v] > q[aq]) aq = v;
        }
        kl_bf[t] = (double)kl;
        kl_got[t] = k.kld;
        CHECK_NEAR(&c, k.kld, (double)kl, TOL, 0, "kld token");
        CHECK_NEAR(&c, k.dp, (double)(q[y] - p[y]), TOL, 0, "dp token");
        CHECK_NEAR(&c, k.nll_ref, -(double)logl(p[y]), TOL, 0, "nll ref");
        CHECK_NEAR(&c, k.nll_q, -(double)logl(q[y]), TOL, 0, "nll q");
        CHECK_INT(&c, k.same_top, ar == aq, "same top");
        long double h = 0;
        for (int v = 0; v < V; v++)
            h -= p[v] * logl(p[v]);
        CHECK_NEAR(&c, k.entropy_ref, (double)h, TOL, 0, "reference entropy");
        same += ar == aq;
        sum_dp2 += k.dp * k.dp;
        sum_nr += k.nll_ref;
        sum_nq += k.nll_q;
        kld_acc_add(&a, &k, NULL);
        kld_acc_add(t < 40 ? &a1 : &a2, &k, NULL);
        /* identical rows: exactly zero */
        kld_token z = kld_token_eval(lr, lr, V, y);
        CHECK(&c, z.kld == 0.0 && z.dp == 0.0 && z.same_top == 1, "self KLD exactly 0");
    }
    c.quiet = 0;
    CHECK(&c, c.fail == 0, "per-token values match brute force (%d tokens)", N);

    kld_summary sm;
    CHECK_INT(&c, kld_summarize(&a, &sm, NULL), 0, "summarize");
    double m = 0, m2 = 0, m_bf = 0;
    for (int t = 0; t < N; t++) {
        m += kl_got[t];
        m2 += kl_got[t] * kl_got[t];
        m_bf += kl_bf[t];
    }
    CHECK_NEAR(&c, m / N, m_bf / N, TOL, 0, "mean KLD vs brute force");
    m /= N;
    double se = sqrt((m2 / N - m * m) / (N - 1));
    CHECK_NEAR(&c, sm.kld_mean, m, 1e-13, 1e-9, "mean KLD");
    CHECK_NEAR(&c, sm.kld_mean_se, se, 1e-13, 1e-6, "mean KLD standard error");
    CHECK_NEAR(&c, sm.kld_median, bf_quantile(kl_got, N, 0.5), 1e-13, 1e-9, "median");
    CHECK_NEAR(&c, sm.kld_p90, bf_quantile(kl_got, N, 0.9), 1e-13, 1e-9, "p90");
    CHECK_NEAR(&c, sm.kld_p99, bf_quantile(kl_got, N, 0.99), 1e-13, 1e-9, "p99");
    CHECK_NEAR(&c, sm.kld_p999, bf_quantile(kl_got, N, 0.999), 1e-13, 1e-9, "p99.9");
    CHECK_NEAR(&c, sm.kld_max, kl_got[N - 1], 1e-13, 1e-9, "max (sorted brute force)");
    CHECK_NEAR(&c, sm.same_top, (double)same / N, 0, 1e-15, "same top fraction");
    CHECK_NEAR(&c, sm.rms_dp, sqrt(sum_dp2 / N), 1e-14, 1e-9, "RMS dp");
    CHECK_NEAR(&c, sm.ppl_ref, exp(sum_nr / N), 0, 1e-11, "PPL ref");
    CHECK_NEAR(&c, sm.ppl_q, exp(sum_nq / N), 0, 1e-11, "PPL q");
    CHECK_NEAR(&c, sm.ln_ppl_ratio, (sum_nq - sum_nr) / N, 1e-13, 1e-9, "ln PPL ratio");

    /* merge of two runs = one run over both: per-token arrays and summary identical */
    CHECK_INT(&c, kld_acc_merge(&a1, &a2, NULL), 0, "merge");
    CHECK(&c, a1.n == a.n && !memcmp(a1.kld, a.kld, a.n * sizeof(double)) &&
                  !memcmp(a1.nll_q, a.nll_q, a.n * sizeof(double)),
          "merged per-token arrays equal the single run");
    kld_summary sm2;
    kld_summarize(&a1, &sm2, NULL);
    CHECK(&c, !memcmp(&sm, &sm2, sizeof sm), "merged summary bit-identical");

    test_full_vocab(&c);

    kld_acc empty;
    kld_acc_init(&empty);
    vl_err e = {0, ""};
    CHECK_INT(&c, kld_summarize(&empty, &sm2, &e), VL_ERANGE, "empty summary is an error");
    CHECK_HAS(&c, e.msg, "no tokens", "empty summary message");
    kld_acc_deinit(&a);
    kld_acc_deinit(&a1);
    kld_acc_deinit(&a2);
    return chk_done(&c);
}
