/* analysis/stats_tap.c — the tap callback of the stats module: events → per-sequence float64
 * partials → exact fixed-point totals (stats.h explains why per sequence).
 */
#include "stats_int.h"

#include "../core/kern.h"
#include "../core/vexp.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- batch */

int stat_begin_batch(stat_acc *a, const int32_t *ids, int n_seq, int seq_len, vl_err *err)
{
    if (n_seq <= 0 || seq_len <= 0 || seq_len > a->cfg.max_seq_len)
        return vl_errf(err, VL_EARG, "stats: batch of %d × %d tokens (max_seq_len %d)", n_seq,
                       seq_len, a->cfg.max_seq_len);
    a->ids = ids;
    a->ids_n_seq = n_seq;
    a->ids_seq_len = seq_len;
    return 0;
}

/* ---------------------------------------------------------------- inputs */

/* Sequence of event row i (expert rows map through row_token). */
static int row_seq(const tap_event *ev, int i)
{
    return (ev->row_token ? ev->row_token[i] : i) / ev->seq_len;
}

static int fx_add_or_fail(stat_acc *a, fx_num *dst, double v, int layer, stat_slot s, int e,
                          const char *what, int ch)
{
    if (fx_add_f64(dst, v) == 0)
        return 0;
    char lab[96];
    stat_label(lab, sizeof lab, layer, s, e);
    stat_fail(a, VL_ERANGE, "stats: %s: %s of channel %d: %s", lab, what, ch,
              isfinite(v) ? "fixed-point sum out of range" : "non-finite activation");
    return -1;
}

/* One row x[0..K) into the per-channel float64 partials (Σx, Σx², Σx⁴, max |x|; NaN never
 * raises the max, the sums carry it). Four channels a step through vector extensions (the
 * same operations per channel as a scalar loop, so the same bits). */
typedef double chan_d4 __attribute__((vector_size(32)));
typedef float chan_f4 __attribute__((vector_size(16)));
typedef int64_t chan_i4 __attribute__((vector_size(32)));

VEXP_CLONES static void channel_sums(double *p1, double *p2, double *p4, double *amax,
                                     const float *x, int K)
{
    int c = 0;
    for (; c + 4 <= K; c += 4) {
        chan_f4 xf;
        chan_d4 a, b, d, m;
        memcpy(&xf, x + c, sizeof xf);
        chan_d4 v = __builtin_convertvector(xf, chan_d4), v2 = v * v;
        memcpy(&a, p1 + c, sizeof a);
        memcpy(&b, p2 + c, sizeof b);
        memcpy(&d, p4 + c, sizeof d);
        memcpy(&m, amax + c, sizeof m);
        a += v;
        b += v2;
        d += v2 * v2;
        chan_d4 av = (chan_d4)((chan_i4)v & (chan_i4){INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX});
        chan_i4 gt = av > m;
        m = (chan_d4)(((chan_i4)av & gt) | ((chan_i4)m & ~gt));
        memcpy(p1 + c, &a, sizeof a);
        memcpy(p2 + c, &b, sizeof b);
        memcpy(p4 + c, &d, sizeof d);
        memcpy(amax + c, &m, sizeof m);
    }
    for (; c < K; c++) {
        double v = x[c], v2 = v * v;
        p1[c] += v;
        p2[c] += v2;
        p4[c] += v2 * v2;
        double m = fabs(v);
        if (m > amax[c])
            amax[c] = m;
    }
}

/* Rows [r0, r1) of the event, all of one sequence, into input `in`. */
static void input_rows(stat_acc *a, stat_input *in, const tap_event *ev, int r0, int r1,
                       stat_slot s, int e)
{
    const int K = in->cols;
    double *p1 = a->p1, *p2 = a->p2, *p4 = a->p4, *amax = in->absmax;
    memset(p1, 0, (size_t)K * sizeof *p1);
    memset(p2, 0, (size_t)K * sizeof *p2);
    memset(p4, 0, (size_t)K * sizeof *p4);
    int64_t routed = 0;
    for (int r = r0; r < r1; r++) {
        channel_sums(p1, p2, p4, amax, ev->data + (size_t)r * ev->stride, K);
        routed += !ev->row_weight || ev->row_weight[r] > 0.0f;
    }
    for (int c = 0; c < K; c++)
        if (fx_add_or_fail(a, &in->sum_x[c], p1[c], ev->layer, s, e, "Σx", c) ||
            fx_add_or_fail(a, &in->sum_x2[c], p2[c], ev->layer, s, e, "Σx²", c) ||
            fx_add_or_fail(a, &in->sum_x4[c], p4[c], ev->layer, s, e, "Σx⁴", c))
            return;
    in->rows += r1 - r0;
    in->rows_routed += routed;
}

/* XᵀX partial of rows [r0, r1) (one sequence) into partial slot `slot`. */
static void xtx_partial(stat_acc *a, const tap_event *ev, int r0, int r1, int K, int slot)
{
    /* kern_xtx_upper wants dense rows: copy when the event's stride is wider than K */
    const float *x = ev->data + (size_t)r0 * ev->stride;
    if (ev->stride != (size_t)K) {
        for (int r = r0; r < r1; r++)
            memcpy(a->rowbuf + (size_t)(r - r0) * K, ev->data + (size_t)r * ev->stride,
                   (size_t)K * sizeof(float));
        x = a->rowbuf;
    }
    kern_xtx_upper(a->xtx_part + (size_t)slot * K * K, x, r1 - r0, K);
}

typedef struct {
    fx_num *xtx;        /* packed upper triangle */
    const double *part; /* [n_part × K × K] partials, upper triangles */
    int n_part, K;
    int *fail;          /* [K] first failing partial per row, −1 */
} fold_job;

/* Item j folds triangle rows j and K−1−j (K + 1 terms a partial: equal work per item). */
static void fold_items(void *ctx, int j0, int j1)
{
    const fold_job *f = ctx;
    const int K = f->K;
    for (int j = j0; j < j1; j++)
        for (int h = 0; h < 2; h++) {
            int i = h ? K - 1 - j : j;
            if (h && i == j)
                break;
            fx_num *t = f->xtx + (size_t)i * K - (size_t)i * (i - 1) / 2;
            f->fail[i] = -1;
            for (int p = 0; p < f->n_part; p++) {
                const double *v = f->part + ((size_t)p * K + i) * K + i;
                if (fx_add_f64_n(t, v, (size_t)(K - i)) < (size_t)(K - i)) {
                    f->fail[i] = p;
                    break;
                }
            }
        }
}

/* The n_part partials into the exact totals, triangle rows split over kern_parallel_for's
 * threads (every row belongs to one thread; the sums are exact, so the split changes no bit). */
static void xtx_fold(stat_acc *a, stat_input *in, int n_part, const tap_event *ev, stat_slot s,
                     int e)
{
    const int K = in->cols;
    fold_job f = {in->xtx, a->xtx_part, n_part, K, a->xtx_fail};
    /* threads only for ≳ 0.2 ms of terms each: a join costs a wake-up (much more on a busy
     * machine) */
    int min_items = (int)(200000 / ((long)n_part * (K + 1))) + 1;
    kern_parallel_for((K + 1) / 2, min_items, fold_items, &f);
    for (int i = 0; i < K; i++)
        if (f.fail[i] >= 0) { /* fx_add_or_fail's message for the refused row */
            const double *v = a->xtx_part + ((size_t)f.fail[i] * K + i) * K + i;
            int finite = 1;
            for (int j = 0; j < K - i; j++)
                finite &= isfinite(v[j]) != 0;
            char lab[96];
            stat_label(lab, sizeof lab, ev->layer, s, e);
            stat_fail(a, VL_ERANGE, "stats: %s: XᵀX of channel %d: %s", lab, i,
                      finite ? "fixed-point sum out of range" : "non-finite activation");
            return;
        }
}

static int event_slot(tap_point p, stat_slot *s)
{
    switch (p) {
    case TAP_ATTN_IN: *s = STAT_ATTN_IN; return 1;
    case TAP_ATTN_O_IN: *s = STAT_O_IN; return 1;
    case TAP_MLP_IN: *s = STAT_MLP_IN; return 1;
    case TAP_EXPERT_IN: *s = STAT_EXPERT_IN; return 1;
    case TAP_EXPERT_DOWN_IN: *s = STAT_EXPERT_DOWN; return 1;
    case TAP_SHARED_DOWN_IN: *s = STAT_SHARED_DOWN; return 1;
    case TAP_MLP_DOWN_IN: *s = STAT_MLP_DOWN; return 1;
    case TAP_Q_B_IN: *s = STAT_Q_B_IN; return 1;
    case TAP_KV_B_IN: *s = STAT_KV_B_IN; return 1;
    case TAP_O_LORA_IN: *s = STAT_O_LORA_IN; return 1;
    default: return 0;
    }
}

/* Validate the event's rows against its batch shape; 0 if usable. */
static int check_rows(stat_acc *a, const tap_event *ev, int cols, const char *what)
{
    long long N = (long long)ev->n_seq * ev->seq_len;
    if (ev->n_seq <= 0 || ev->seq_len <= 0 || ev->seq_len > a->cfg.max_seq_len) {
        stat_fail(a, VL_ESHAPE, "stats: %s: batch %d × %d (max_seq_len %d)", what, ev->n_seq, ev->seq_len, a->cfg.max_seq_len);
        return -1;
    }
    if (ev->cols != cols || ev->rows < 0 || ev->rows > N || ev->stride < (size_t)ev->cols ||
        (!ev->row_token && ev->rows != N)) {
        stat_fail(a, VL_ESHAPE, "stats: %s: event %d × %d (stride %zu), expected "
                  "%s%lld × %d", what, ev->rows, ev->cols, ev->stride,
                  ev->row_token ? "≤ " : "", N, cols);
        return -1;
    }
    for (int i = 0; ev->row_token && i < ev->rows; i++)
        if (ev->row_token[i] < 0 || ev->row_token[i] >= N) {
            stat_fail(a, VL_ESHAPE, "stats: %s: row %d maps to token %d of %lld", what, i, ev->row_token[i], N);
            return -1;
        }
    return 0;
}

static void on_input(stat_acc *a, const tap_event *ev, stat_slot s)
{
    int e = s >= STAT_EXPERT_IN ? ev->expert : -1;
    stat_input *in = stat_input_mut(a, ev->layer, s, e);
    char lab[96];
    stat_label(lab, sizeof lab, ev->layer, s, e);
    if (!in) {
        stat_fail(a, VL_ESHAPE, "stats: %s: no such input in this model", lab);
        return;
    }
    if (check_rows(a, ev, in->cols, lab))
        return;
    /* runs of consecutive rows of one sequence are one partial each; XᵀX partials are
     * computed xtx_slots at a time, then folded on threads */
    int n_part = 0;
    for (int r0 = 0; r0 < ev->rows && !a->failed;) {
        int q = row_seq(ev, r0), r1 = r0 + 1;
        while (r1 < ev->rows && row_seq(ev, r1) == q)
            r1++;
        input_rows(a, in, ev, r0, r1, s, e);
        if (in->xtx && !a->failed) {
            xtx_partial(a, ev, r0, r1, in->cols, n_part++);
            if (n_part == a->xtx_slots) {
                xtx_fold(a, in, n_part, ev, s, e);
                n_part = 0;
            }
        }
        r0 = r1;
    }
    if (n_part && !a->failed)
        xtx_fold(a, in, n_part, ev, s, e);
}

/* ---------------------------------------------------------------- router */

/* Softmax of one row in float64 into p; returns the entropy (nats), NaN on NaN input. */
static double softmax_entropy(const float *l, int n, double *p)
{
    float m = l[0];
    for (int i = 1; i < n; i++)
        m = l[i] > m ? l[i] : m;
    if (!(m > -INFINITY))
        return NAN; /* NaN maximum (NaN compares false) or every logit −Inf */
    double s = 0.0, sl = 0.0;
    for (int i = 0; i < n; i++) {
        if (isnan(l[i]))
            return NAN;
        double d = (double)l[i] - m, e = exp(d);
        p[i] = e;
        s += e;
        if (e > 0.0) /* skip underflowed terms: e·d would be 0·(−Inf) for −Inf logits */
            sl += e * d;
    }
    for (int i = 0; i < n; i++)
        p[i] /= s;
    return log(s) - sl / s; /* H = log Σe^d − Σ e^d·d / Σe^d */
}

/* DeepSeek-V3: sigmoid scores of one row into s (float64); returns the entropy (nats) of the
 * scores normalised to sum 1. */
static double sigmoid_scores(const float *l, int n, double *s)
{
    double sum = 0.0, h = 0.0;
    for (int i = 0; i < n; i++)
        sum += (s[i] = 1.0 / (1.0 + exp(-(double)l[i])));
    for (int i = 0; i < n; i++)
        if (s[i] > 0)
            h -= s[i] / sum * log(s[i] / sum);
    return h;
}

static int router_flush(stat_acc *a, stat_router *r, double ent, int layer)
{
    int rc = fx_add_f64(&r->sum_entropy, ent);
    for (int e = 0; e < r->n_experts && !rc; e++)
        rc = fx_add_f64(&r->sum_prob[e], a->rp[e]) || fx_add_f64(&r->sum_weight[e], a->rw[e]);
    if (rc)
        stat_fail(a, VL_ERANGE, "stats: layer %d router: fixed-point sum out of range", layer);
    return rc;
}

/* After token t of a router event: at the end of a sequence (or of the event) the partials go
 * into the exact totals and restart. Nonzero after a recorded failure. */
static int router_token_done(stat_acc *a, stat_router *r, const tap_event *ev, int t,
                             double *ent)
{
    if (t + 1 < ev->rows && row_seq(ev, t + 1) == row_seq(ev, t))
        return 0;
    if (router_flush(a, r, *ent, ev->layer))
        return -1;
    *ent = 0.0;
    memset(a->rp, 0, (size_t)r->n_experts * sizeof *a->rp);
    memset(a->rw, 0, (size_t)r->n_experts * sizeof *a->rw);
    return 0;
}

/* The forward's selection of event row t (tap.h: sel, k = top_k); NULL after a recorded
 * failure. */
static const int *router_sel(stat_acc *a, const tap_event *ev, int t, int E, const char *lab)
{
    const int *sel = ev->sel + (size_t)t * ev->k;
    for (int j = 0; j < ev->k; j++)
        if (sel[j] < 0 || sel[j] >= E) {
            stat_fail(a, VL_ESHAPE, "stats: %s: token %d selects expert %d of %d", lab, t,
                      sel[j], E);
            return NULL;
        }
    return sel;
}

static void on_router(stat_acc *a, const tap_event *ev)
{
    stat_router *r = stat_router_mut(a, ev->layer);
    if (!r) {
        stat_fail(a, VL_ESHAPE, "stats: layer %d: router logits in a dense layer", ev->layer);
        return;
    }
    const int E = r->n_experts, K = a->cfg.top_k, sig = a->cfg.sigmoid_scores;
    char lab[48];
    snprintf(lab, sizeof lab, "layer %d router", ev->layer);
    if (check_rows(a, ev, E, lab))
        return;
    if (!ev->sel || ev->k != K || (sig && !ev->sel_w)) {
        stat_fail(a, VL_ESHAPE, "stats: %s: event without the forward's top-%d selection "
                  "(k %d)", lab, K, ev->sel ? ev->k : 0);
        return;
    }
    double ent = 0.0;
    memset(a->rp, 0, (size_t)E * sizeof *a->rp);
    memset(a->rw, 0, (size_t)E * sizeof *a->rw);
    for (int t = 0; t < ev->rows; t++) {
        const float *l = ev->data + (size_t)t * ev->stride;
        double h = softmax_entropy(l, E, a->rprob);
        if (isnan(h)) {
            stat_fail(a, VL_ERANGE, "stats: layer %d router: token %d: NaN or all −Inf logits",
                      ev->layer, t);
            return;
        }
        if (sig) /* DeepSeek-V3: sigmoid scores (stats.h) */
            h = sigmoid_scores(l, E, a->rprob);
        const int *sel = router_sel(a, ev, t, E, lab);
        if (!sel)
            return;
        double norm = 0.0;
        for (int j = 0; j < K; j++)
            norm += a->rprob[sel[j]];
        for (int j = 0; j < K; j++) {
            int e = sel[j];
            r->routed[e]++;
            a->rw[e] += sig ? ev->sel_w[(size_t)t * K + j]
                        : a->cfg.norm_topk_prob ? a->rprob[e] / norm : a->rprob[e];
            for (int q = 0; q < K; q++)
                r->coselect[(size_t)e * E + sel[q]]++;
        }
        for (int e = 0; e < E; e++)
            a->rp[e] += a->rprob[e];
        ent += h;
        r->tokens++;
        if (router_token_done(a, r, ev, t, &ent))
            return;
    }
}

/* deepseek_v4: the forward's own choice, [N × 2E] (tap.h TAP_ROUTER_CHOICE); the routing
 * entropy is that of the distribution in columns 0..E−1. */
static void on_router_choice(stat_acc *a, const tap_event *ev)
{
    stat_router *r = stat_router_mut(a, ev->layer);
    if (!r) {
        stat_fail(a, VL_ESHAPE, "stats: layer %d: router choice in a dense layer", ev->layer);
        return;
    }
    const int E = r->n_experts;
    char lab[48];
    snprintf(lab, sizeof lab, "layer %d router choice", ev->layer);
    if (check_rows(a, ev, 2 * E, lab))
        return;
    double ent = 0.0;
    memset(a->rp, 0, (size_t)E * sizeof *a->rp);
    memset(a->rw, 0, (size_t)E * sizeof *a->rw);
    for (int t = 0; t < ev->rows; t++) {
        const float *p = ev->data + (size_t)t * ev->stride, *wsel = p + E;
        double h = 0;
        int n = 0;
        for (int e = 0; e < E; e++) {
            if (!(p[e] >= 0) || !(wsel[e] >= 0)) {
                stat_fail(a, VL_ERANGE, "stats: %s: token %d: negative or NaN entry", lab, t);
                return;
            }
            h -= p[e] > 0 ? p[e] * log(p[e]) : 0.0;
            a->rp[e] += p[e];
            if (wsel[e] > 0) {
                a->sel[n < a->cfg.top_k ? n : a->cfg.top_k - 1] = e;
                n++;
            }
        }
        if (n != a->cfg.top_k) {
            stat_fail(a, VL_ESHAPE, "stats: %s: token %d selects %d experts, top_k %d", lab, t,
                      n, a->cfg.top_k);
            return;
        }
        for (int j = 0; j < n; j++) {
            int e = a->sel[j];
            r->routed[e]++;
            a->rw[e] += wsel[e];
            for (int q = 0; q < n; q++)
                r->coselect[(size_t)e * E + a->sel[q]]++;
        }
        ent += h;
        r->tokens++;
        if (router_token_done(a, r, ev, t, &ent))
            return;
    }
}

/* ---------------------------------------------------------------- logits */

/* Σe and Σ e·d over one row, d = l − m, e = exp(d) by core/vexp.h (−Inf logits add 0, not
 * 0·−Inf); eight lanes in float32 over blocks of 64 entries, the blocks in float64. Returns 0
 * when a logit is NaN. */
enum { ENT_BLOCK = 64 };

VEXP_CLONES_FMA static int entropy_sums(const float *l, int n, float m, double *se, double *sed)
{
    double s = 0.0, sl = 0.0;
    const vexp_f8_t vm = VEXP_SPLAT(m), zero = VEXP_SPLAT(0.0f);
    vexp_i8_t nan = {0};
    int i = 0;
    while (i + 8 <= n) {
        vexp_f8_t a = zero, b = zero;
        int end = i + ENT_BLOCK < n ? i + ENT_BLOCK : n;
        for (; i + 8 <= end; i += 8) {
            vexp_f8_t x;
            memcpy(&x, l + i, sizeof x);
            nan |= x != x;
            vexp_f8_t d = x - vm, e = d;
            vexp_f8(&e);
            a += e;
            b += VEXP_SELECT(e > zero, e * d, zero);
        }
        for (int k = 0; k < 8; k++) {
            s += a[k];
            sl += b[k];
        }
    }
    int bad = 0;
    for (int k = 0; k < 8; k++)
        bad |= nan[k];
    for (; i < n; i++) {
        bad |= isnan(l[i]);
        float d = l[i] - m, e = vexp_f1(d);
        s += e;
        if (e > 0.0f)
            sl += (double)e * d;
    }
    *se = s;
    *sed = sl;
    return !bad;
}

/* Entropy from Σe^d and Σ e^d·d with d = l − max: H = log Σe^d − Σ e^d·d / Σe^d. The
 * exponentials carry core/vexp.h's relative error (≤ VEXP_MAX_REL), so H and log p are within
 * a few VEXP_MAX_REL of the exact values. */
/* The largest of l[0..n) as the scalar scan `m = l[i] > m ? l[i] : m` from m = l[0] finds it
 * (NaN never taken unless l[0] is NaN), eight lanes a step: the scalar scan was a third of the
 * entropy's time. Lanes may keep another zero's sign than the scan, which changes no sum of
 * the entropy (e^±0 = 1, e·(±0) adds nothing). */
VEXP_CLONES static float row_max(const float *l, int n)
{
    vexp_f8_t m = VEXP_SPLAT(l[0]);
    int i = 1;
    for (; i + 8 <= n; i += 8) {
        vexp_f8_t x;
        memcpy(&x, l + i, sizeof x);
        m = VEXP_SELECT(x > m, x, m);
    }
    float r = m[0];
    for (int k = 1; k < 8; k++)
        r = m[k] > r ? m[k] : r;
    for (; i < n; i++)
        r = l[i] > r ? l[i] : r;
    return r;
}

double stat_entropy(const float *logits, int n, int target, double *logprob)
{
    float m = row_max(logits, n);
    double h = NAN, lp = NAN, s, sl;
    if (m > -INFINITY && entropy_sums(logits, n, m, &s, &sl)) {
        h = log(s) - sl / s;
        if (target >= 0 && target < n)
            lp = ((double)logits[target] - m) - log(s);
    }
    if (logprob)
        *logprob = lp;
    return h;
}

typedef struct {
    const stat_acc *a;
    const tap_event *ev;
    double *h, *lp; /* [rows] outputs */
} entropy_job;

static void entropy_rows(void *ctx, int r0, int r1)
{
    const entropy_job *j = ctx;
    const tap_event *ev = j->ev;
    for (int r = r0; r < r1; r++) {
        int next = r % ev->seq_len + 1 < ev->seq_len ? j->a->ids[r + 1] : -1;
        j->h[r] = stat_entropy(ev->data + (size_t)r * ev->stride, ev->cols, next, &j->lp[r]);
    }
}

static void on_logits(stat_acc *a, const tap_event *ev)
{
    if (check_rows(a, ev, a->cfg.vocab, "logits"))
        return;
    if (!a->ids || a->ids_n_seq != ev->n_seq || a->ids_seq_len != ev->seq_len) {
        stat_fail(a, VL_EARG, "stats: logits of a %d × %d batch without its token ids "
                  "(stat_begin_batch)", ev->n_seq, ev->seq_len);
        return;
    }
    stat_tokens *tk = &a->tokens;
    if (tk->n + ev->rows > tk->cap) {
        stat_fail(a, VL_ERANGE, "stats: per-token arrays full (%lld of %lld tokens)",
                  (long long)tk->n + ev->rows, (long long)tk->cap);
        return;
    }
    for (int r = 0; r < ev->rows; r++) {
        int next = r % ev->seq_len + 1 < ev->seq_len ? a->ids[r + 1] : -1;
        if (next >= ev->cols) {
            stat_fail(a, VL_ERANGE, "stats: token id %d out of vocabulary %d", next, ev->cols);
            return;
        }
    }
    /* every token's entropy on kern_parallel_for's threads, then checked in order */
    entropy_job j = {a, ev, tk->entropy + tk->n, tk->logprob + tk->n};
    kern_parallel_for(ev->rows, 32, entropy_rows, &j); /* ≥ 32 rows (½M exps) a thread */
    for (int r = 0; r < ev->rows; r++)
        if (isnan(j.h[r])) {
            stat_fail(a, VL_ERANGE, "stats: logits of token %d: NaN or all −Inf", r);
            return;
        }
    tk->n += ev->rows;
}

/* ---------------------------------------------------------------- dispatch */

void stat_tap(void *user, const tap_event *ev)
{
    stat_acc *a = user;
    if (a->failed)
        return;
    stat_slot s;
    if (ev->point == TAP_LOGITS) {
        if (a->cfg.token_stats)
            on_logits(a, ev);
        return;
    }
    if (ev->layer < 0 || ev->layer >= a->cfg.n_layers) {
        stat_fail(a, VL_ESHAPE, "stats: event for layer %d of %d", ev->layer, a->cfg.n_layers);
        return;
    }
    if (ev->point == TAP_ROUTER_LOGITS && !a->cfg.router_choice)
        on_router(a, ev);
    else if (ev->point == TAP_ROUTER_CHOICE && a->cfg.router_choice)
        on_router_choice(a, ev);
    else if (event_slot(ev->point, &s))
        on_input(a, ev, s);
}

tap_set stat_taps(stat_acc *a)
{
    unsigned want = TAP_BIT(TAP_ATTN_IN) | TAP_BIT(TAP_ATTN_O_IN) | TAP_BIT(TAP_MLP_IN) |
                    (a->cfg.q_lora > 0 ? TAP_BIT(TAP_Q_B_IN) : 0) |
                    (a->cfg.kv_lora > 0 ? TAP_BIT(TAP_KV_B_IN) : 0) |
                    (a->cfg.o_lora > 0 ? TAP_BIT(TAP_O_LORA_IN) : 0);
    unsigned router = a->cfg.router_choice ? TAP_BIT(TAP_ROUTER_CHOICE)
                                           : TAP_BIT(TAP_ROUTER_LOGITS);
    for (int l = 0; l < a->cfg.n_layers; l++)
        want |= a->sparse[l] ? router | TAP_BIT(TAP_EXPERT_IN) |
                                   TAP_BIT(TAP_EXPERT_DOWN_IN) |
                                   (a->cfg.shared_inter > 0 ? TAP_BIT(TAP_SHARED_DOWN_IN) : 0)
                             : TAP_BIT(TAP_MLP_DOWN_IN);
    if (a->cfg.token_stats)
        want |= TAP_BIT(TAP_LOGITS);
    tap_set ts = {stat_tap, a, want};
    return ts;
}
