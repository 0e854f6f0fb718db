/* tests/test_fwd_thr.c — the forward's thread paths (analysis/fwd.c: rows, (sequence, head)
 * pairs and experts in parts on threads, each part on one BLAS thread) give the one-thread
 * numbers: logits of 2 threads within float32 rounding of 1 thread on every family the
 * parts touch (qwen2_moe with shared expert, qwen3_moe with a dense layer, llama, mixtral,
 * DeepSeek-V3's MLA), route-all unchanged, a 2-thread run repeatable bit for bit, the same
 * tap events in the same order; and the statistics of a 2-thread pass merge exactly
 * (A + B == A∪B bit for bit) and agree with the 1-thread pass to float32 rounding. Also the
 * vectorised conversions of io/st_conv.c against their scalar definitions.
 */
#define _POSIX_C_SOURCE 200809L
#include "../analysis/fwd.h"
#include "../analysis/model.h"
#include "../analysis/spass.h"
#include "../core/kern.h"
#include "../io/st.h"
#include "check.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { S = 4, T = 80, MAX_EV = 1024 };

static void make_ids(int32_t *ids, int n, int vocab, uint32_t x)
{
    for (int i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        ids[i] = (int32_t)((x >> 8) % (uint32_t)vocab);
    }
}

/* The (point, layer, expert, rows) of every tap event, in order. */
typedef struct {
    int n;
    long key[MAX_EV];
} evlog;

static void on_event(void *user, const tap_event *ev)
{
    evlog *g = user;
    if (g->n < MAX_EV)
        g->key[g->n] = (((long)ev->layer * TAP_COUNT + ev->point) * 1000 + ev->expert + 1) *
                           100000 + ev->rows;
    g->n++;
}

/* Logits of one run on `threads` threads (copied: the state is freed). */
static float *run_logits(chk *c, const model *m, const int32_t *ids, int threads, int route_all,
                         evlog *g)
{
    size_t n = (size_t)S * T * model_config(m)->vocab;
    float *out = malloc(n * sizeof *out);
    fwd_state *st = NULL;
    vl_err e;
    const float *lg;
    fwd_opts o = fwd_opts_defaults();
    o.route_all_experts = route_all;
    tap_set ts = {on_event, g, TAP_ALL};
    kern_set_threads(threads);
    int rc = fwd_state_new(&st, m, S, T, &e);
    rc = rc ? rc : fwd_run(m, model_base(m), st, ids, S, T, &o, g ? &ts : NULL, &lg, &e);
    CHECK(c, rc == 0, "%s: forward on %d thread%s%s%s", model_dir(m), threads,
          threads > 1 ? "s" : "", rc ? ": " : "", rc ? e.msg : "");
    if (rc == 0)
        memcpy(out, lg, n * sizeof *out);
    fwd_state_free(st);
    kern_set_threads(0);
    return out;
}

static void test_model(chk *c, const char *dir)
{
    model *m = NULL;
    vl_err e;
    if (model_open(&m, dir, &e)) {
        CHECK(c, 0, "%s opens: %s", dir, e.msg);
        return;
    }
    long n = (long)S * T * model_config(m)->vocab;
    static int32_t ids[S * T];
    make_ids(ids, S * T, model_config(m)->vocab, 4711);
    static evlog g1, g2;
    memset(&g1, 0, sizeof g1);
    memset(&g2, 0, sizeof g2);
    float *one = run_logits(c, m, ids, 1, 0, &g1), *two = run_logits(c, m, ids, 2, 0, &g2);
    float *again = run_logits(c, m, ids, 2, 0, NULL);
    char name[160];
    snprintf(name, sizeof name, "%s: logits of 2 threads = 1 thread (float32 rounding)", dir);
    CHECK_TENSOR(c, two, one, n, 1e-4, 1e-4, name);
    CHECK(c, !memcmp(two, again, (size_t)n * sizeof *two), "%s: 2-thread run repeats bit for "
          "bit", dir);
    CHECK(c, g1.n == g2.n && g1.n <= MAX_EV && !memcmp(g1.key, g2.key, g1.n * sizeof *g1.key),
          "%s: same tap events in the same order on 2 threads (%d, %d)", dir, g1.n, g2.n);
    if (model_config(m)->n_experts > 0) {
        float *ra = run_logits(c, m, ids, 2, 1, NULL);
        snprintf(name, sizeof name, "%s: route-all on 2 threads = top-k on 1 thread", dir);
        CHECK_TENSOR(c, ra, one, n, 1e-4, 1e-4, name);
        free(ra);
    }
    free(one);
    free(two);
    free(again);
    model_close(m);
}

/* ---------------------------------------------------------------- statistics */

/* Statistics (no XᵀX) of sequences [s0, s1) of ids in batches of 2 on `threads` threads. */
static stat_acc *stats_of(chk *c, const model *m, const int32_t *ids, int s0, int s1,
                          int threads, int xtx)
{
    spass_opts o = spass_opts_defaults();
    o.batch = 2;
    o.max_len = T;
    o.no_hessian = !xtx;
    o.hessian = xtx ? "layers\\.0\\.(self_attn\\.q_proj|mlp\\.experts\\.3\\.down_proj)" : NULL;
    o.progress = 0;
    spass *p = NULL;
    stat_acc *a = NULL;
    vl_err e;
    kern_set_threads(threads);
    int rc = spass_new(&p, m, &o, &e);
    rc = rc ? rc : spass_acc_new(p, (int64_t)S * T, &a, &e);
    rc = rc ? rc : spass_run(p, a, ids + (size_t)s0 * T, s1 - s0, T, "t", &e);
    CHECK(c, rc == 0, "stats of sequences %d..%d on %d threads%s%s", s0, s1 - 1, threads,
          rc ? ": " : "", rc ? e.msg : "");
    spass_free(p);
    kern_set_threads(0);
    return a;
}

static int same_fx(const fx_num *x, const fx_num *y, size_t n)
{
    return (!x && !y) || (x && y && !memcmp(x, y, n * sizeof *x));
}

/* 1 if every input, router and token statistic of a and b is bit-identical. */
static int same_stats(const stat_acc *a, const stat_acc *b, const hfc_config *cf)
{
    int E = cf->n_experts > 0 ? cf->n_experts : 1;
    for (int l = 0; l < cf->n_layers; l++) {
        for (int s = 0; s < STAT_SLOT_COUNT; s++)
            for (int e = 0; e < (s >= STAT_EXPERT_IN ? E : 1); e++) {
                const stat_input *x = stat_input_get(a, l, s, s >= STAT_EXPERT_IN ? e : -1),
                                 *y = stat_input_get(b, l, s, s >= STAT_EXPERT_IN ? e : -1);
                if (!x || !y) {
                    if (x != y)
                        return 0;
                    continue;
                }
                size_t K = (size_t)x->cols;
                if (x->rows != y->rows || x->rows_routed != y->rows_routed ||
                    !same_fx(x->sum_x, y->sum_x, K) || !same_fx(x->sum_x2, y->sum_x2, K) ||
                    !same_fx(x->sum_x4, y->sum_x4, K) ||
                    memcmp(x->absmax, y->absmax, K * sizeof *x->absmax) ||
                    !same_fx(x->xtx, y->xtx, K * (K + 1) / 2))
                    return 0;
            }
        const stat_router *r = stat_router_get(a, l), *q = stat_router_get(b, l);
        if (r && q && (r->tokens != q->tokens || !same_fx(r->sum_prob, q->sum_prob, E) ||
                       !same_fx(r->sum_weight, q->sum_weight, E) ||
                       memcmp(r->routed, q->routed, E * sizeof *r->routed)))
            return 0;
    }
    const stat_tokens *x = stat_tokens_get(a), *y = stat_tokens_get(b);
    return x->n == y->n && !memcmp(x->entropy, y->entropy, x->n * sizeof *x->entropy) &&
           !memcmp(x->logprob, y->logprob, x->n * sizeof *x->logprob);
}

/* Largest difference of Σx² between a and b over every input's channels, relative to the
 * input's mean Σx² (a channel near zero has no relative precision to compare). */
static double worst_sum_x2(const stat_acc *a, const stat_acc *b, const hfc_config *cf)
{
    double worst = 0;
    int E = cf->n_experts > 0 ? cf->n_experts : 1;
    for (int l = 0; l < cf->n_layers; l++)
        for (int s = 0; s < STAT_SLOT_COUNT; s++)
            for (int e = 0; e < (s >= STAT_EXPERT_IN ? E : 1); e++) {
                const stat_input *x = stat_input_get(a, l, s, s >= STAT_EXPERT_IN ? e : -1),
                                 *y = stat_input_get(b, l, s, s >= STAT_EXPERT_IN ? e : -1);
                double mean = 0;
                for (int k = 0; x && y && k < x->cols; k++)
                    mean += fx_to_f64(&y->sum_x2[k]) / x->cols;
                for (int k = 0; x && y && k < x->cols; k++) {
                    double u = fx_to_f64(&x->sum_x2[k]), v = fx_to_f64(&y->sum_x2[k]);
                    double d = fabs(u - v) / (mean + 1e-30);
                    worst = d > worst ? d : worst;
                }
            }
    return worst;
}

static void test_stats(chk *c, int xtx)
{
    model *m = NULL;
    vl_err e;
    if (model_open(&m, "models/vbrlab-moe-tiny", &e)) {
        CHECK(c, 0, "embedded model opens: %s", e.msg);
        return;
    }
    const hfc_config *cf = model_config(m);
    static int32_t ids[S * T];
    make_ids(ids, S * T, cf->vocab, 99);
    const char *w = xtx ? "with XᵀX" : "no XᵀX";
    stat_acc *a = stats_of(c, m, ids, 0, 2, 2, xtx), *b = stats_of(c, m, ids, 2, S, 2, xtx);
    stat_acc *u = stats_of(c, m, ids, 0, S, 2, xtx), *one = stats_of(c, m, ids, 0, S, 1, xtx);
    if (a && b && u && one) {
        CHECK_INT(c, stat_merge(a, b, &e), 0, "merge A + B (2 threads)");
        CHECK(c, same_stats(a, u, cf), "%s: 2 threads: merge(A, B) == run over A∪B, bit for "
              "bit", w);
        double d = worst_sum_x2(u, one, cf);
        CHECK(c, d < 1e-3, "%s: Σx² of 2 threads = 1 thread to float32 rounding (max rel "
              "%.3g)", w, d);
    }
    stat_free(a);
    stat_free(b);
    stat_free(u);
    stat_free(one);
    model_close(m);
}

/* st_bf16_rows = st_bf16_to_f32 of each element (65,549 mixed bit patterns, three
 * offsets); st_all_finite finds one NaN or Inf anywhere. */
static void test_conv(chk *c)
{
    enum { N = 65536 + 13 };
    static uint8_t src[2 * N];
    static float got[N];
    for (int i = 0; i < N; i++) {
        src[2 * i] = (uint8_t)(i * 7 + 3);
        src[2 * i + 1] = (uint8_t)((i >> 8) ^ (i * 5));
    }
    int bad = 0;
    for (int off = 0; off < 3; off++) {
        st_bf16_rows(src + 2 * off, got, (size_t)N - off);
        for (int i = 0; i < N - off; i++) {
            float w = st_bf16_to_f32((uint16_t)(src[2 * (i + off)] | src[2 * (i + off) + 1] << 8));
            bad += memcmp(&w, &got[i], sizeof w) != 0;
        }
    }
    CHECK_INT(c, bad, 0, "st_bf16_rows = st_bf16_to_f32 on every element (mismatches)");
    float x[37];
    for (int i = 0; i < 37; i++)
        x[i] = (float)i - 18.5f;
    int ok = st_all_finite(x, 37);
    for (int i = 0; i < 37; i++)
        for (int k = 0; k < 3; k++) {
            float keep = x[i];
            x[i] = k == 0 ? NAN : k == 1 ? INFINITY : -INFINITY;
            ok &= !st_all_finite(x, 37);
            x[i] = keep;
        }
    CHECK(c, ok, "st_all_finite: finite row passes, one NaN/±Inf at any index fails");
}

int main(void)
{
    chk c;
    chk_init(&c, "test_fwd_thr");
    test_conv(&c);
    const char *dirs[] = {"models/vbrlab-moe-tiny", "tests/fixtures/qwen3-moe",
                          "tests/fixtures/llama-dense", "tests/fixtures/mixtral",
                          "tests/fixtures/tiny-deepseek-v3"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        test_model(&c, dirs[i]);
    test_stats(&c, 0);
    test_stats(&c, 1);
    return chk_done(&c);
}
