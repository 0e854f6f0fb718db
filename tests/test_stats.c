#define _POSIX_C_SOURCE 200809L
/* tests/test_stats.c — analysis/stats against brute force on synthetic tap events.
 *
 * A tiny two-layer model shape (layer 0 MoE, layer 1 dense) and per-sequence synthetic
 * activations from a seeded generator. The test replays the forward's event order itself,
 * keeps long-double brute-force sums of everything it emits, and checks: Σx/Σx²/Σx⁴/absmax/XᵀX,
 * route-all counts, router top-k/probabilities/entropy/co-selection, per-token entropy and
 * log-prob, exact merge (A∪B, other batching, B+A) by memcmp, reset, error reports. The
 * fixed-point sums themselves (core/fx) are tests/test_fx.c's.
 */
#include "../analysis/stats.h"
#include "../core/rng.h"
#include "../core/vexp.h"
#include "check.h"
#include "testio.h"

#include <gsl/gsl_errno.h>
#include <unistd.h>

enum { L = 2, D = 8, A = 6, E = 4, K = 2, F = 5, FS = 3, I = 7, V = 11, T = 6, NSEQ = 12 };
enum { MAXC = 8, PAD = 3 };

typedef struct {
    float attn[L][T][D], o[L][T][A], mlp[L][T][D];
    float rl[T][E];        /* layer 0 router logits */
    float xd[T][E][F];     /* layer 0 expert down inputs, per token and expert */
    float sd[T][FS];       /* layer 0 shared down input */
    float dd[T][I];        /* layer 1 dense down input */
    float logits[T][V];
    int32_t ids[T];
} seqdata;

typedef struct {
    long double s1[MAXC], s2[MAXC], s4[MAXC], xtx[MAXC][MAXC];
    double amax[MAXC];
    long long rows, routed;
} brute_in;

typedef struct {
    brute_in in[L][STAT_SLOT_COUNT][E];
    long long routed[E], cos[E][E], tokens;
    long double sp[E], sw[E], sent;
    double ent[NSEQ * T * 2], lp[NSEQ * T * 2];
    int ntok;
} brute;

static seqdata S[NSEQ];

static void make_data(uint64_t seed)
{
    for (int q = 0; q < NSEQ; q++) {
        char lab[32];
        snprintf(lab, sizeof lab, "seq%d", q);
        rng *r;
        VL_ASSERT(rng_new_child(&r, seed, lab, NULL) == 0);
        float *f = (float *)&S[q];
        size_t nf = offsetof(seqdata, ids) / sizeof(float);
        for (size_t i = 0; i < nf; i++) /* mixed scales: some channels large, some tiny */
            f[i] = (float)rng_gaussian(r, i % 7 == 0 ? 40.0 : i % 5 == 0 ? 1e-3 : 1.0);
        for (int t = 0; t < T; t++) /* router logits on a 0.5 grid: ties happen */
            for (int e = 0; e < E; e++)
                S[q].rl[t][e] = (float)(0.5 * (int)rng_uniform_int(r, 5));
        for (int t = 0; t < T; t++)
            S[q].ids[t] = (int32_t)rng_uniform_int(r, V);
        rng_free(r);
    }
}

/* ---------------------------------------------------------------- brute force */

static void brute_rows(brute_in *b, const float *x, int rows, int cols, size_t stride,
                       const float *w)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * stride;
        for (int i = 0; i < cols; i++) {
            long double v = xr[i];
            b->s1[i] += v;
            b->s2[i] += v * v;
            b->s4[i] += v * v * v * v;
            if (fabs(xr[i]) > b->amax[i])
                b->amax[i] = fabs(xr[i]);
            for (int j = 0; j < cols; j++)
                b->xtx[i][j] += v * (long double)xr[j];
        }
        b->rows++;
        b->routed += !w || w[r] > 0;
    }
}

/* top-k, larger first, ties to the lower index (the rule stats.h states) */
static void brute_topk(const float *l, int *sel)
{
    int used[E] = {0};
    for (int j = 0; j < K; j++) {
        int best = -1;
        for (int e = 0; e < E; e++)
            if (!used[e] && (best < 0 || l[e] > l[best]))
                best = e;
        used[best] = 1;
        sel[j] = best;
    }
}

static void brute_softmax(const float *l, int n, long double *p, long double *h)
{
    long double m = l[0], s = 0;
    for (int i = 1; i < n; i++)
        m = l[i] > m ? l[i] : m;
    for (int i = 0; i < n; i++)
        s += p[i] = expl(l[i] - m);
    *h = 0;
    for (int i = 0; i < n; i++) {
        p[i] /= s;
        if (p[i] > 0)
            *h -= p[i] * logl(p[i]);
    }
}

static stat_slot slot_of(tap_point p)
{
    switch (p) {
    case TAP_ATTN_IN: return STAT_ATTN_IN;
    case TAP_ATTN_O_IN: return STAT_O_IN;
    case TAP_MLP_IN: return STAT_MLP_IN;
    case TAP_EXPERT_IN: return STAT_EXPERT_IN;
    case TAP_EXPERT_DOWN_IN: return STAT_EXPERT_DOWN;
    case TAP_SHARED_DOWN_IN: return STAT_SHARED_DOWN;
    default: return STAT_MLP_DOWN;
    }
}

/* Fire one event and add its rows to the brute-force sums of its input. */
static void emit(const tap_set *ts, tap_event *ev, brute *bf, tap_point pt, int layer, int cols,
                 size_t stride, const float *buf, int rows)
{
    ev->point = pt;
    ev->layer = layer;
    ev->data = buf;
    ev->rows = rows;
    ev->cols = cols;
    ev->stride = stride;
    tap_emit(ts, ev);
    if (bf && pt != TAP_ROUTER_LOGITS && pt != TAP_LOGITS)
        brute_rows(&bf->in[layer][slot_of(pt)][ev->expert < 0 ? 0 : ev->expert], buf, rows,
                   cols, stride, ev->row_weight);
}

/* ---------------------------------------------------------------- the fake forward */

/* Emit the events of one batch made of sequences qs[0..n), in the forward's order. */
static void run_batch(stat_acc *acc, const int *qs, int n, int route_all, brute *bf)
{
    const int N = n * T;
    static float bufA[NSEQ * T * (D + PAD)], bufB[NSEQ * T * E * F], bufC[NSEQ * T * V];
    static int32_t ids[NSEQ * T];
    static int rt[NSEQ * T];
    static float rw[NSEQ * T];
    tap_set ts = stat_taps(acc);
    for (int s = 0; s < n; s++)
        memcpy(ids + s * T, S[qs[s]].ids, sizeof S[0].ids);
    VL_ASSERT(stat_begin_batch(acc, ids, n, T, NULL) == 0);
    tap_event ev = {.n_seq = n, .seq_len = T, .expert = -1};
    for (int l = 0; l < L; l++) {
        for (int s = 0; s < n; s++)
            for (int t = 0; t < T; t++)
                memcpy(bufA + (size_t)(s * T + t) * (D + PAD), S[qs[s]].attn[l][t],
                       D * sizeof(float));
        emit(&ts, &ev, bf, TAP_ATTN_IN, l, D, D + PAD, bufA, N); /* padded stride: the copy path */
        for (int s = 0; s < n; s++)
            for (int t = 0; t < T; t++)
                memcpy(bufA + (size_t)(s * T + t) * A, S[qs[s]].o[l][t], A * sizeof(float));
        emit(&ts, &ev, bf, TAP_ATTN_O_IN, l, A, A, bufA, N);
        static float mlp[NSEQ * T * D];
        for (int s = 0; s < n; s++)
            for (int t = 0; t < T; t++)
                memcpy(mlp + (size_t)(s * T + t) * D, S[qs[s]].mlp[l][t], D * sizeof(float));
        emit(&ts, &ev, bf, TAP_MLP_IN, l, D, D, mlp, N);
        if (l == 1) {
            for (int s = 0; s < n; s++)
                memcpy(bufA + (size_t)s * T * I, S[qs[s]].dd, sizeof S[0].dd);
            emit(&ts, &ev, bf, TAP_MLP_DOWN_IN, l, I, I, bufA, N);
            continue;
        }
        static float rl[NSEQ * T * E];
        static int sel[NSEQ * T][K];
        for (int s = 0; s < n; s++)
            for (int t = 0; t < T; t++) {
                const float *lg = S[qs[s]].rl[t];
                memcpy(rl + (size_t)(s * T + t) * E, lg, E * sizeof(float));
                brute_topk(lg, sel[s * T + t]);
                if (!bf)
                    continue;
                long double p[E], h, norm = 0;
                brute_softmax(lg, E, p, &h);
                for (int j = 0; j < K; j++)
                    norm += p[sel[s * T + t][j]];
                for (int j = 0; j < K; j++) {
                    int e = sel[s * T + t][j];
                    bf->routed[e]++;
                    bf->sw[e] += p[e]; /* norm_topk_prob false in this config */
                    for (int q = 0; q < K; q++)
                        bf->cos[e][sel[s * T + t][q]]++;
                }
                for (int e = 0; e < E; e++)
                    bf->sp[e] += p[e];
                bf->sent += h;
                bf->tokens++;
            }
        ev.sel = sel[0], ev.k = K; /* the fake forward's own choice (tap.h) */
        emit(&ts, &ev, bf, TAP_ROUTER_LOGITS, l, E, E, rl, N);
        ev.sel = NULL, ev.k = 0;
        /* experts: rows routed to e in batch-row order; route-all adds the rest with weight 0 */
        int cnt[E];
        for (int e = 0; e < E; e++) {
            int m = 0;
            for (int tk = 0; tk < N; tk++) {
                int hit = sel[tk][0] == e || sel[tk][1] == e;
                if (!hit && !route_all)
                    continue;
                rt[m] = tk;
                rw[m] = hit ? 0.25f : 0.0f;
                memcpy(bufA + (size_t)m * D, mlp + (size_t)tk * D, D * sizeof(float));
                memcpy(bufB + (size_t)m * F, S[qs[tk / T]].xd[tk % T][e], F * sizeof(float));
                m++;
            }
            cnt[e] = m;
            ev.expert = e;
            ev.row_token = rt;
            ev.row_weight = rw;
            emit(&ts, &ev, bf, TAP_EXPERT_IN, l, D, D, bufA, m);
            emit(&ts, &ev, bf, TAP_EXPERT_DOWN_IN, l, F, F, bufB, m);
        }
        (void)cnt;
        ev.expert = -1;
        ev.row_token = NULL;
        ev.row_weight = NULL;
        for (int s = 0; s < n; s++)
            memcpy(bufA + (size_t)s * T * FS, S[qs[s]].sd, sizeof S[0].sd);
        emit(&ts, &ev, bf, TAP_SHARED_DOWN_IN, l, FS, FS, bufA, N);
    }
    for (int s = 0; s < n; s++)
        for (int t = 0; t < T; t++) {
            memcpy(bufC + (size_t)(s * T + t) * V, S[qs[s]].logits[t], V * sizeof(float));
            if (bf) {
                long double p[V], h;
                brute_softmax(S[qs[s]].logits[t], V, p, &h);
                bf->ent[bf->ntok] = (double)h;
                bf->lp[bf->ntok] = t + 1 < T ? (double)logl(p[S[qs[s]].ids[t + 1]]) : NAN;
                bf->ntok++;
            }
        }
    emit(&ts, &ev, bf, TAP_LOGITS, L, V, V, bufC, N);
}

/* ---------------------------------------------------------------- setup */

static int want_all(void *u, int l, stat_slot s, int e) { return 1; }

static stat_acc *new_acc(void)
{
    static const unsigned char sparse[L] = {1, 0};
    stat_config c = stat_config_defaults();
    c.n_layers = L;
    c.hidden = D;
    c.attn_out = A;
    c.n_experts = E;
    c.top_k = K;
    c.moe_inter = F;
    c.shared_inter = FS;
    c.dense_inter = I;
    c.vocab = V;
    c.layer_sparse = sparse;
    c.max_seq_len = T;
    c.token_stats = 1;
    c.max_tokens = NSEQ * T;
    c.want_xtx = want_all;
    stat_acc *a;
    vl_err err = {0};
    if (stat_new(&a, &c, &err)) {
        fprintf(stderr, "stat_new: %s\n", err.msg);
        exit(1);
    }
    return a;
}

static void run_range(stat_acc *a, int q0, int q1, int per_batch, int route_all, brute *bf)
{
    int qs[NSEQ];
    for (int q = q0; q < q1; q += per_batch) {
        int n = q1 - q < per_batch ? q1 - q : per_batch;
        for (int i = 0; i < n; i++)
            qs[i] = q + i;
        run_batch(a, qs, n, route_all, bf);
    }
}

/* ---------------------------------------------------------------- comparisons */

static int same_input(const stat_input *x, const stat_input *y)
{
    const int k = x->cols;
    if (x->cols != y->cols || x->rows != y->rows || x->rows_routed != y->rows_routed)
        return 0;
    if (memcmp(x->sum_x, y->sum_x, k * sizeof(fx_num)) ||
        memcmp(x->sum_x2, y->sum_x2, k * sizeof(fx_num)) ||
        memcmp(x->sum_x4, y->sum_x4, k * sizeof(fx_num)) ||
        memcmp(x->absmax, y->absmax, k * sizeof(double)) ||
        memcmp(x->xtx, y->xtx, (size_t)k * (k + 1) / 2 * sizeof(fx_num)))
        return 0;
    double vx[3][MAXC], vy[3][MAXC], mx[MAXC * MAXC], my[MAXC * MAXC];
    stat_input_f64(x, vx[0], vx[1], vx[2], mx);
    stat_input_f64(y, vy[0], vy[1], vy[2], my);
    return !memcmp(vx, vy, sizeof vx) && !memcmp(mx, my, (size_t)k * k * sizeof(double));
}

static int same_router(const stat_router *x, const stat_router *y)
{
    return x->tokens == y->tokens && !memcmp(x->routed, y->routed, E * sizeof(int64_t)) &&
           !memcmp(x->sum_prob, y->sum_prob, E * sizeof(fx_num)) &&
           !memcmp(x->sum_weight, y->sum_weight, E * sizeof(fx_num)) &&
           !memcmp(&x->sum_entropy, &y->sum_entropy, sizeof(fx_num)) &&
           !memcmp(x->coselect, y->coselect, E * E * sizeof(int64_t));
}

/* 1 if every input and router of x and y is bit-identical (tokens too if `tokens`). */
static int same_acc(const stat_acc *x, const stat_acc *y, int tokens)
{
    for (int l = 0; l < L; l++) {
        for (int s = 0; s < STAT_SLOT_COUNT; s++)
            for (int e = 0; e < (s >= STAT_EXPERT_IN ? E : 1); e++) {
                const stat_input *a = stat_input_get(x, l, s, e), *b = stat_input_get(y, l, s, e);
                if (!a != !b || (a && !same_input(a, b)))
                    return 0;
            }
        const stat_router *a = stat_router_get(x, l), *b = stat_router_get(y, l);
        if (!a != !b || (a && !same_router(a, b)))
            return 0;
    }
    const stat_tokens *a = stat_tokens_get(x), *b = stat_tokens_get(y);
    return !tokens || (a->n == b->n && !memcmp(a->entropy, b->entropy, a->n * 8) &&
                       !memcmp(a->logprob, b->logprob, a->n * 8));
}

/* ---------------------------------------------------------------- tests */

static void test_brute(chk *c, int route_all)
{
    static brute bf;
    memset(&bf, 0, sizeof bf);
    stat_acc *a = new_acc();
    run_range(a, 0, NSEQ, 5, route_all, &bf);
    vl_err err = {0};
    CHECK_INT(c, stat_status(a, &err), 0, "no callback error");
    const char *ra = route_all ? "route-all" : "top-k";
    int bad = 0, checked = 0;
    for (int l = 0; l < L; l++)
        for (int s = 0; s < STAT_SLOT_COUNT; s++)
            for (int e = 0; e < (s >= STAT_EXPERT_IN ? E : 1); e++) {
                const stat_input *in = stat_input_get(a, l, s, e);
                if (!in)
                    continue;
                brute_in *b = &bf.in[l][s][e];
                double s1[MAXC], s2[MAXC], s4[MAXC], xtx[MAXC * MAXC];
                stat_input_f64(in, s1, s2, s4, xtx);
                checked++;
                bad += in->rows != b->rows || in->rows_routed != b->routed;
                for (int i = 0; i < in->cols; i++) {
                    double tol = 1e-12;
                    bad += fabs(s1[i] - (double)b->s1[i]) > tol * (1 + (double)b->s2[i]);
                    bad += fabs(s2[i] - (double)b->s2[i]) > tol * (double)b->s2[i] + 1e-25;
                    bad += fabs(s4[i] - (double)b->s4[i]) > tol * (double)b->s4[i] + 1e-25;
                    bad += in->absmax[i] != b->amax[i];
                    for (int j = 0; j < in->cols; j++)
                        bad += fabs(xtx[i * in->cols + j] - (double)b->xtx[i][j]) >
                               tol * sqrtl(b->s2[i] * b->s2[j]) + 1e-25;
                }
            }
    CHECK(c, checked == 3 + 2 * E + 1 + 4, "%s: all %d inputs present", ra, checked);
    CHECK_INT(c, bad, 0, "Σx, Σx², Σx⁴, absmax, XᵀX, rows vs brute force (mismatches)");
    /* counts: tokens × K routed, tokens × E rows with route-all */
    long long rows = 0, routed = 0, tokens = NSEQ * T;
    for (int e = 0; e < E; e++) {
        rows += stat_input_get(a, 0, STAT_EXPERT_IN, e)->rows;
        routed += stat_input_get(a, 0, STAT_EXPERT_DOWN, e)->rows_routed;
    }
    CHECK_INT(c, rows, tokens * (route_all ? E : K), "expert rows sum");
    CHECK_INT(c, routed, tokens * K, "expert rows really routed sum to tokens × K");
    const stat_router *r = stat_router_get(a, 0);
    CHECK(c, r && !stat_router_get(a, 1), "router only in the MoE layer");
    long long sum_routed = 0;
    int rbad = 0;
    for (int e = 0; e < E; e++) {
        sum_routed += r->routed[e];
        rbad += r->routed[e] != bf.routed[e] || r->routed[e] != r->coselect[e * E + e];
        rbad += fabs(fx_to_f64(&r->sum_prob[e]) - (double)bf.sp[e]) > 1e-12;
        rbad += fabs(fx_to_f64(&r->sum_weight[e]) - (double)bf.sw[e]) > 1e-12;
        for (int q = 0; q < E; q++)
            rbad += r->coselect[e * E + q] != bf.cos[e][q];
    }
    CHECK_INT(c, sum_routed, tokens * K, "router: Σ routed = tokens × k");
    CHECK_INT(c, r->tokens, tokens, "router: tokens");
    CHECK_INT(c, rbad, 0, "router: routed, co-selection, Σp, Σweight vs brute force");
    CHECK_NEAR(c, fx_to_f64(&r->sum_entropy), (double)bf.sent, 1e-11, 1e-12, "router Σentropy");
    const stat_tokens *tk = stat_tokens_get(a);
    CHECK_INT(c, tk->n, bf.ntok, "per-token count");
    int tbad = 0;
    /* stat_entropy's exponentials are core/vexp.h's (relative error ≤ VEXP_MAX_REL each) */
    for (int i = 0; i < tk->n && i < bf.ntok; i++) {
        tbad += fabs(tk->entropy[i] - bf.ent[i]) > 4 * VEXP_MAX_REL;
        tbad += isnan(bf.lp[i]) ? !isnan(tk->logprob[i])
                                : fabs(tk->logprob[i] - bf.lp[i]) > 4 * VEXP_MAX_REL;
    }
    CHECK_INT(c, tbad, 0, "per-token entropy and log-prob vs brute force");
    stat_free(a);
}

static void test_merge(chk *c)
{
    stat_acc *a = new_acc(), *b = new_acc(), *u = new_acc(), *w = new_acc(), *ba = new_acc();
    vl_err err = {0};
    run_range(a, 0, 5, 2, 1, NULL);      /* A: sequences 0..4 in batches of 2 */
    run_range(b, 5, NSEQ, 3, 1, NULL);   /* B: sequences 5..11 in batches of 3 */
    run_range(u, 0, NSEQ, 2, 1, NULL);   /* A∪B in batches of 2 */
    run_range(w, 0, NSEQ, NSEQ, 1, NULL); /* A∪B in one batch */
    run_range(ba, 5, NSEQ, 3, 1, NULL);  /* B, then A merged in: B + A */
    CHECK(c, !same_acc(a, u, 0), "A alone differs from A∪B (the test can fail)");
    CHECK_INT(c, stat_merge(a, b, &err), 0, "merge(A, B)");
    stat_acc *a2 = new_acc();
    run_range(a2, 0, 5, 2, 1, NULL);
    CHECK_INT(c, stat_merge(ba, a2, &err), 0, "merge(B, A)");
    CHECK(c, same_acc(a, u, 1), "merge(A, B) == run over A∪B, bit for bit (incl. tokens)");
    CHECK(c, same_acc(a, w, 1), "== run over A∪B in one batch, bit for bit");
    CHECK(c, same_acc(a, ba, 0), "merge(A, B) == merge(B, A) (sums, counts, XᵀX, router)");
    /* merge of a different configuration is refused */
    stat_config cfg = *stat_cfg(a);
    cfg.want_xtx = NULL;
    stat_acc *nox;
    CHECK_INT(c, stat_new(&nox, &cfg, &err), 0, "stat_new without XᵀX");
    CHECK_INT(c, stat_merge(a, nox, &err), VL_ESHAPE, "merge with other XᵀX set refused");
    CHECK_HAS(c, err.msg, "XᵀX", "merge error names the difference");
    stat_reset(u);
    CHECK(c, stat_input_get(u, 0, STAT_ATTN_IN, -1)->rows == 0 &&
                 stat_tokens_get(u)->n == 0, "reset zeroes counts and tokens");
    run_range(u, 0, NSEQ, 4, 1, NULL);
    CHECK(c, same_acc(u, w, 1), "after reset, a new run equals the earlier one");
    stat_free(nox);
    stat_free(a);
    stat_free(b);
    stat_free(u);
    stat_free(w);
    stat_free(ba);
    stat_free(a2);
}

static void test_entropy(chk *c)
{
    static float l[4096];
    for (int i = 0; i < 4096; i++)
        l[i] = 3.25f;
    double lp;
    CHECK_NEAR(c, stat_entropy(l, 4096, 7, &lp), log(4096.0), 1e-12, 0, "uniform over V: log V");
    CHECK_NEAR(c, lp, -log(4096.0), 1e-12, 0, "uniform: log p = −log V");
    for (int i = 0; i < 4096; i++) /* a spread row with a scalar tail, vs long double */
        l[i] = (float)(i % 37) * 0.25f - (float)(i % 11);
    long double z = 0, zl = 0;
    for (int i = 0; i < 4093; i++) {
        long double e = expl((long double)l[i]);
        z += e;
        zl += e * l[i];
    }
    CHECK_NEAR(c, stat_entropy(l, 4093, 5, &lp), (double)(logl(z) - zl / z), 4 * VEXP_MAX_REL, 0,
               "spread row: entropy within 4·VEXP_MAX_REL");
    CHECK_NEAR(c, lp, (double)(l[5] - logl(z)), 4 * VEXP_MAX_REL, 0, "spread row: log p");
    for (int i = 0; i < 100; i++)
        l[i] = -INFINITY;
    l[42] = 1.0f;
    CHECK_NEAR(c, stat_entropy(l, 100, 42, &lp), 0.0, 1e-15, 0, "one-hot: 0");
    CHECK_NEAR(c, lp, 0.0, 1e-15, 0, "one-hot: log p(target) = 0");
    l[42] = 0.0f;
    for (int i = 0; i < 100; i++)
        l[i] = i == 42 ? 0.0f : -1e4f; /* exp underflows to 0 */
    CHECK_NEAR(c, stat_entropy(l, 100, 3, &lp), 0.0, 1e-15, 0, "near one-hot: 0");
    CHECK_NEAR(c, lp, -1e4, 1e-9, 0, "near one-hot: log p of another token");
    l[0] = l[1] = 5.0f;
    CHECK_NEAR(c, stat_entropy(l, 2, -1, &lp), log(2.0), 1e-15, 0, "two equal: log 2");
    CHECK(c, isnan(lp), "no target: log p NaN");
    l[1] = NAN;
    CHECK(c, isnan(stat_entropy(l, 2, 0, NULL)), "NaN logit: NaN");
}

static void test_errors(chk *c)
{
    stat_acc *a = new_acc();
    tap_set ts = stat_taps(a);
    float x[T * D];
    for (int i = 0; i < T * D; i++)
        x[i] = 1.0f;
    tap_event ev = {.point = TAP_ATTN_IN, .layer = 0, .expert = -1, .data = x, .rows = T,
                    .cols = D - 1, .stride = D, .n_seq = 1, .seq_len = T};
    tap_emit(&ts, &ev);
    vl_err err = {0};
    CHECK_INT(c, stat_status(a, &err), VL_ESHAPE, "wrong width reported");
    CHECK_HAS(c, err.msg, "layer 0 attn_in", "message names the input");
    stat_reset(a);
    CHECK_INT(c, stat_status(a, &err), 0, "reset clears the error");
    ev.cols = D;
    x[5] = NAN;
    tap_emit(&ts, &ev);
    CHECK_INT(c, stat_status(a, &err), VL_ERANGE, "NaN activation reported");
    CHECK_HAS(c, err.msg, "non-finite", "message says non-finite");
    stat_reset(a);
    x[5] = 3e38f; /* x⁴ overflows float64 to Inf */
    tap_emit(&ts, &ev);
    CHECK_INT(c, stat_status(a, &err), VL_ERANGE, "x⁴ beyond range reported");
    stat_reset(a);
    x[5] = 1.0f;
    ev.point = TAP_EXPERT_IN;
    ev.layer = 1;
    ev.expert = 0;
    tap_emit(&ts, &ev);
    CHECK_INT(c, stat_status(a, &err), VL_ESHAPE, "expert event in a dense layer refused");
    /* router events carry the forward's selection (tap.h); the stats never re-derive it */
    stat_reset(a);
    int sel[T * K];
    for (int i = 0; i < T * K; i++)
        sel[i] = i % K;
    tap_event rv = {.point = TAP_ROUTER_LOGITS, .layer = 0, .expert = -1, .data = x, .rows = T,
                    .cols = E, .stride = E, .n_seq = 1, .seq_len = T};
    tap_emit(&ts, &rv);
    CHECK_INT(c, stat_status(a, &err), VL_ESHAPE, "router event without a selection refused");
    CHECK_HAS(c, err.msg, "layer 0 router: event without the forward's top-2 selection",
              "message names the router and the missing selection");
    stat_reset(a);
    rv.sel = sel, rv.k = K;
    sel[3] = E;
    tap_emit(&ts, &rv);
    CHECK_INT(c, stat_status(a, &err), VL_ESHAPE, "selected expert out of range refused");
    CHECK_HAS(c, err.msg, "token 1 selects expert 4 of 4", "message names the token and expert");
    stat_reset(a);
    sel[3] = 1;
    tap_emit(&ts, &rv);
    CHECK_INT(c, stat_status(a, &err), 0, "a well-formed selection accepted");
    stat_free(a);
    stat_config cfg = stat_config_defaults();
    stat_acc *b = NULL;
    CHECK_INT(c, stat_new(&b, &cfg, &err), VL_ECONFIG, "empty config refused");
    CHECK(c, b == NULL, "no object on error");
}

static void test_h5(chk *c)
{
    stat_acc *a = new_acc(), *b = NULL;
    run_range(a, 0, NSEQ, 4, 1, NULL);
    vl_err err = {0};
    char path[64];
    snprintf(path, sizeof path, "/tmp/vbrlab-test-stats-%d.h5", (int)getpid());
    h5s_store *s = NULL;
    int rc = h5s_create(&s, path, &err);
    rc = rc ? rc : stat_write(a, s, "/stats/en", &err);
    rc = rc ? rc : h5s_commit(s, &err);
    CHECK(c, rc == 0, "write and commit: %s", rc ? err.msg : "ok");
    rc = h5s_open(&s, path, &err);
    rc = rc ? rc : stat_read(&b, s, "/stats/en", &err);
    CHECK(c, rc == 0, "read back: %s", rc ? err.msg : "ok");
    CHECK(c, b && same_acc(a, b, 1), "HDF5 round trip is bit-exact (sums, XᵀX, router, tokens)");
    double *v = NULL;
    int nd;
    int64_t sh[H5S_MAX_DIMS];
    if (h5s_read(s, "/stats/en/layers/00/experts/002/down_in/sum_x2", H5S_F64, (void **)&v, &nd,
                 sh, &err) == 0) {
        double want[F];
        stat_input_f64(stat_input_get(a, 0, STAT_EXPERT_DOWN, 2), NULL, want, NULL, NULL);
        CHECK(c, nd == 1 && sh[0] == F && !memcmp(v, want, sizeof want), "float64 view stored");
    } else
        CHECK(c, 0, "sum_x2 readable: %s", err.msg);
    vl_free(v);
    char *units = NULL;
    CHECK_INT(c, h5s_attr_get(s, "/stats/en/layers/01/mlp_down_in/count", "units", &units, &err),
              0, "units attribute present");
    vl_free(units);
    stat_acc *x = NULL;
    CHECK_INT(c, stat_read(&x, s, "/stats/zh", &err) < 0, 1, "missing group is an error");
    h5s_close(s);
    remove(path);
    stat_free(a);
    stat_free(b);
}

/* A copy of SRC with one dataset (or element) of DST_DS rewritten, then stat_read of it. */
static int read_edited(const char *src, const char *ds, int elem, double v, vl_err *err)
{
    char dst[96];
    snprintf(dst, sizeof dst, "%s.edit.h5", src);
    size_t n;
    char *bytes = tio_slurp(src, &n);
    FILE *f = fopen(dst, "wb");
    if (!bytes || !f || fwrite(bytes, 1, n, f) != n) {
        free(bytes);
        if (f)
            fclose(f);
        return 1;
    }
    fclose(f);
    free(bytes);
    h5s_store *s;
    int rc = h5s_open_rw(&s, dst, err);
    h5s_dtype t = strstr(ds, "absmax") ? H5S_F64 : H5S_I64;
    void *d = NULL;
    int nd;
    int64_t sh[H5S_MAX_DIMS];
    rc = rc ? rc : h5s_read(s, ds, t, &d, &nd, sh, err);
    if (!rc) {
        if (t == H5S_F64)
            ((double *)d)[elem] = v;
        else
            ((int64_t *)d)[elem] = (int64_t)v;
        rc = h5s_write(s, ds, t, d, nd, sh, "edited", "test edit", err);
        rc = rc ? rc : h5s_commit(s, err);
    } else
        h5s_close(s);
    vl_free(d);
    if (rc)
        return 1;
    stat_acc *x = NULL;
    rc = h5s_open(&s, dst, err);
    rc = rc ? rc : stat_read(&x, s, "/stats/en", err);
    stat_free(x);
    h5s_close(s);
    remove(dst);
    return rc;
}

/* Stores that contradict themselves, generated over the datasets of a real statistics store:
 * negative counts, more routed rows than rows, a NaN/negative/infinite absmax, router counts
 * that do not sum to tokens × top_k, an asymmetric co-selection matrix or one whose diagonal is
 * not the routed counts. stat_read (so stats merge, sens, eval and the runner) refuses each with
 * one line naming the dataset. */
static void test_contradictions(chk *c)
{
    stat_acc *a = new_acc();
    run_range(a, 0, NSEQ, 4, 1, NULL);
    vl_err err = {0};
    char path[64];
    snprintf(path, sizeof path, "/tmp/vbrlab-test-stats-bad-%d.h5", (int)getpid());
    h5s_store *s = NULL;
    int rc = h5s_create(&s, path, &err);
    rc = rc ? rc : stat_write(a, s, "/stats/en", &err);
    rc = rc ? rc : h5s_commit(s, &err);
    char *dump = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&dump, &len);
    rc = rc ? rc : h5s_open(&s, path, &err);
    rc = rc ? rc : h5s_dump(s, m, &err);
    fclose(m);
    h5s_close(s);
    CHECK(c, rc == 0, "contradictions: a valid store to start from (%s)", rc ? err.msg : "ok");
    static const struct {
        const char *suffix;
        int elem;
        double v;
        const char *what;
    } edits[] = {
        {"/count", 0, -1, "count_routed <= count"}, {"/count_routed", 0, 1e15, "count_routed"},
        {"/count_routed", 0, -3, "count_routed"},  {"/absmax", 0, NAN, "finite magnitude"},
        {"/absmax", 1, -1, "finite magnitude"},    {"/absmax", 0, INFINITY, "finite magnitude"},
        {"/router/tokens", 0, -1, "negative"},     {"/router/tokens", 0, 1, "top_k"},
        {"/router/routed", 0, -5, "not a count"},  {"/router/routed", 1, 1e6, "top_k"},
        {"/router/coselect", 1, 7, "coselect"}, {"/router/coselect", 0, 0, "coselect"},
    };
    int cases = 0, bad = 0;
    for (size_t k = 0; k < sizeof edits / sizeof *edits; k++) {
        int hits = 0;
        for (char *l = dump; l && *l && hits < 3;) {
            char *next = strchr(l, '\n');
            char ds[256];
            if (sscanf(l, "DATASET %255s", ds) == 1) {
                size_t n = strlen(ds), sl = strlen(edits[k].suffix);
                if (n > sl && !strcmp(ds + n - sl, edits[k].suffix) &&
                    (strstr(edits[k].suffix, "router") || !strstr(ds, "router"))) {
                    hits++;
                    cases++;
                    vl_err e = {0, ""};
                    int r = read_edited(path, ds, edits[k].elem, edits[k].v, &e);
                    int ok = r == VL_EFORMAT && !strchr(e.msg, '\n') && strstr(e.msg, ds) &&
                             strstr(e.msg, edits[k].what);
                    if (!ok) {
                        CHECK(c, 0, "%s[%d] = %g: refused naming it (%d: %s)", ds,
                              edits[k].elem, edits[k].v, r, e.msg);
                        bad++;
                    }
                }
            }
            l = next ? next + 1 : NULL;
        }
        CHECK(c, hits > 0, "the store has %s datasets to edit", edits[k].suffix);
    }
    CHECK(c, bad == 0, "%d self-contradicting statistics stores, each refused in one line",
          cases);
    free(dump);
    remove(path);
    stat_free(a);
}

int main(void)
{
    gsl_set_error_handler_off();
    chk c;
    chk_init(&c, "stats");
    make_data(20240607);
    test_brute(&c, 0);
    test_brute(&c, 1);
    test_merge(&c);
    test_entropy(&c);
    test_errors(&c);
    test_h5(&c);
    test_contradictions(&c);
    return chk_done(&c);
}
