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
#include <stdarg.h>
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

/* CHECK_NEAR with a formatted name. */
static void nearf(chk *c, double got, double want, double abs_tol, double rtol, const char *fmt,
                  ...) __attribute__((format(printf, 6, 7)));
static void nearf(chk *c, double got, double want, double abs_tol, double rtol, const char *fmt,
                  ...)
{
    char name[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    CHECK_NEAR(c, got, want, abs_tol, rtol, name);
}

/* Mean and llama.cpp's standard error √((E[x²] − E[x]²)/(n−1)), long double. */
static void bf_mean_se(const double *x, size_t n, double *mean, double *se)
{
    long double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        s += x[i];
        s2 += (long double)x[i] * x[i];
    }
    long double m = s / n, var = s2 / n - m * m;
    *mean = (double)m;
    *se = var > 0 ? (double)sqrtl(var / (n - 1)) : 0.0;
}

/* The rest of llama-perplexity's statistic set, each recomputed by brute force from the
 * per-token values: KLD low percentiles and minimum, Δp mean ± SE and percentiles, RMS Δp's
 * SE, PPL ± SE, Cor(ln PPL_q, ln PPL_ref) as llama.cpp writes it (cov / (SE_q·SE_ref)). */
static void check_llama_set(chk *c, const kld_acc *a, const kld_summary *sm, double *dp,
                            const double *nr, const double *nq, size_t n)
{
    double x[512], m, se;
    memcpy(x, a->kld, n * sizeof *x);
    const double kf[] = {0.10, 0.05, 0.01, 0.001};
    const double kv[] = {sm->kld_p10, sm->kld_p05, sm->kld_p01, sm->kld_p001};
    for (int i = 0; i < 4; i++)
        nearf(c, kv[i], bf_quantile(x, n, kf[i]), 1e-15, 1e-12, "KLD %g%% percentile",
                   100 * kf[i]);
    CHECK(c, sm->kld_min == x[0], "minimum KLD %g == smallest %g", sm->kld_min, x[0]);
    bf_mean_se(dp, n, &m, &se);
    CHECK_NEAR(c, sm->dp_mean, m, 1e-15, 1e-11, "mean Δp");
    CHECK_NEAR(c, sm->dp_mean_se, se, 1e-15, 1e-9, "mean Δp SE");
    memcpy(x, dp, n * sizeof *x);
    const double df[] = {0.999, 0.99, 0.95, 0.90, 0.75, 0.5, 0.25, 0.10, 0.05, 0.01, 0.001};
    const double dv[] = {sm->dp_p999, sm->dp_p99, sm->dp_p95, sm->dp_p90, sm->dp_p75,
                         sm->dp_median, sm->dp_p25, sm->dp_p10, sm->dp_p05, sm->dp_p01,
                         sm->dp_p001};
    for (int i = 0; i < 11; i++)
        nearf(c, dv[i], bf_quantile(x, n, df[i]), 1e-15, 1e-12, "Δp %g%% percentile",
                   100 * df[i]);
    CHECK(c, sm->dp_min == x[0] && sm->dp_max == x[n - 1], "Δp minimum and maximum");
    CHECK(c, sm->dp_min < 0 && sm->dp_max > 0, "Δp takes both signs here (%g, %g)", sm->dp_min,
          sm->dp_max);
    double sq[512], msq, sesq;
    for (size_t i = 0; i < n; i++)
        sq[i] = dp[i] * dp[i];
    bf_mean_se(sq, n, &msq, &sesq);
    CHECK_NEAR(c, sm->rms_dp_se, sesq / (2 * sqrt(msq)), 1e-15, 1e-9, "RMS Δp SE");
    double mr, ser, mq, seq;
    bf_mean_se(nr, n, &mr, &ser);
    bf_mean_se(nq, n, &mq, &seq);
    CHECK_NEAR(c, sm->ppl_ref_se, exp(mr) * ser, 0, 1e-9, "PPL(base) SE");
    CHECK_NEAR(c, sm->ppl_q_se, exp(mq) * seq, 0, 1e-9, "PPL(Q) SE");
    long double sab = 0;
    for (size_t i = 0; i < n; i++)
        sab += (long double)nq[i] * nr[i];
    double cov = (double)((sab / n - (long double)mq * mr) / (n - 1));
    double cor = cov / (seq * ser);
    nearf(c, sm->ln_ppl_cor, cor, 1e-12, 1e-9, "Cor(ln PPL(Q), ln PPL(base)) = %.6f", cor);
    CHECK(c, cor > 0.5 && cor < 1, "correlation of related nlls in (0.5, 1): %g", cor);
}

/* Entropy terciles by brute force: thresholds at the 1/3, 2/3 quantiles, each token in its
 * slice, mean ± SE per slice; slice counts add to n. */
static void check_entropy_slice(chk *c, const kld_acc *a, const double *h, size_t n)
{
    kld_summary sm;
    kld_summarize(a, &sm, NULL);
    CHECK(c, isnan(sm.ent_thr[0]) && isnan(sm.ent_kld[2]) && sm.ent_n[0] == 0,
          "entropy slice unset after kld_summarize");
    CHECK_INT(c, kld_slice_entropy(a, h, &sm, NULL), 0, "kld_slice_entropy");
    double x[512];
    memcpy(x, h, n * sizeof *x);
    double t1 = bf_quantile(x, n, 1.0 / 3.0), t2 = bf_quantile(x, n, 2.0 / 3.0);
    CHECK_NEAR(c, sm.ent_thr[0], t1, 1e-15, 1e-12, "tercile threshold t1");
    CHECK_NEAR(c, sm.ent_thr[1], t2, 1e-15, 1e-12, "tercile threshold t2");
    size_t total = 0;
    for (int k = 0; k < 3; k++) {
        double v[512];
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if ((k == 0 && h[i] <= t1) || (k == 1 && h[i] > t1 && h[i] <= t2) ||
                (k == 2 && h[i] > t2))
                v[m++] = a->kld[i];
        double mean, se;
        bf_mean_se(v, m, &mean, &se);
        CHECK(c, sm.ent_n[k] == m, "slice %d: %zu tokens (brute force %zu)", k, sm.ent_n[k], m);
        nearf(c, sm.ent_kld[k], mean, 1e-15, 1e-11, "slice %d mean KLD", k);
        nearf(c, sm.ent_kld_se[k], se, 1e-15, 1e-9, "slice %d SE", k);
        total += m;
    }
    CHECK(c, total == n && sm.ent_n[0] >= n / 3 && sm.ent_n[2] >= n / 3 - 1,
          "slices partition the tokens into thirds (%zu %zu %zu)", sm.ent_n[0], sm.ent_n[1],
          sm.ent_n[2]);
    /* a constant entropy puts every token in the low slice, the others empty (NaN) */
    double flat[512];
    for (size_t i = 0; i < n; i++)
        flat[i] = 1.5;
    kld_slice_entropy(a, flat, &sm, NULL);
    CHECK(c, sm.ent_n[0] == n && sm.ent_n[1] == 0 && isnan(sm.ent_kld[1]) &&
                 isnan(sm.ent_kld[2]),
          "constant entropy: one slice");
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
    double kl_bf[N], kl_got[N], dp_got[N], nr_got[N], nq_got[N], h_got[N];
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
        dp_got[t] = k.dp;
        nr_got[t] = k.nll_ref;
        nq_got[t] = k.nll_q;
        h_got[t] = k.entropy_ref;
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

    check_llama_set(&c, &a, &sm, dp_got, nr_got, nq_got, N);
    check_entropy_slice(&c, &a, h_got, N);

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
