/* analysis/fwd_par.c — the products of the forward's blocks (analysis/fwd.c) in parts on
 * threads, and the primitives only they use (RoPE, biases, causal attention by blocks).
 *
 * With more than one thread (kern_threads()), rows, (sequence, head) pairs and experts are cut
 * into parts that run on kern_parallel_blas's threads, one BLAS thread each: BLAS splitting each
 * product itself left the second core idle in everything between products (norms, RoPE,
 * softmax, SwiGLU, gathers, the LM head's tile conversion), and its idle thread spinning
 * (OpenBLAS waits by sched_yield) took the core from our own threads. With one thread there
 * is one part, the whole range, and the operations run in the serial order: the same bits as
 * a plain loop of products. A part writes only its own rows (pairs, experts); the taps fire
 * from the caller's thread between parts, in tap.h's order.
 */
#include "fwd_int.h"

#include "../core/kern.h"
#include "fwd_ops.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- primitives (pure) */

/* x: rows of n_heads·Dh (row stride ld), the first being batch row r0; batch row r is
 * position r % T. */
static void rope(float *x, int ld, const float *cs, const float *sn, int r0, int rows, int T,
                 int n_heads, int Dh)
{
    int half = Dh / 2;
    for (int r = 0; r < rows; r++) {
        int pos = (r0 + r) % T;
        const float *c = cs + (size_t)pos * half, *s = sn + (size_t)pos * half;
        for (int hd = 0; hd < n_heads; hd++) {
            float *a = x + (size_t)r * ld + (size_t)hd * Dh, *b = a + half;
            for (int i = 0; i < half; i++) {
                float x1 = a[i], x2 = b[i];
                a[i] = x1 * c[i] - x2 * s[i];
                b[i] = x2 * c[i] + x1 * s[i];
            }
        }
    }
}

static void add_bias(float *y, const float *b, int rows, int cols)
{
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < cols; i++)
            y[(size_t)r * cols + i] += b[i];
}

/* RMSNorm and residual adds of the batch's rows on kern_parallel_for's threads (each row is
 * computed alone, so the bits do not depend on the split; one thread: one call, as before). */
typedef struct {
    float *y;
    const float *x, *w;
    int cols;
    float eps;
} rows_op;

static void norm_range(void *arg, int r0, int r1)
{
    const rows_op *o = arg;
    fwd_rmsnorm(o->y + (size_t)r0 * o->cols, o->x + (size_t)r0 * o->cols, o->w, r1 - r0, o->cols,
                o->eps);
}

void fwd_rmsnorm_rows(float *y, const float *x, const float *w, int rows, int cols, float eps)
{
    rows_op o = {y, x, w, cols, eps};
    kern_parallel_for(rows, 256, norm_range, &o);
}

static void add_range(void *arg, int r0, int r1)
{
    const rows_op *o = arg;
    for (size_t i = (size_t)r0 * o->cols; i < (size_t)r1 * o->cols; i++)
        o->y[i] += o->x[i];
}

/* y[rows × cols] += x */
void fwd_add_rows(float *y, const float *x, int rows, int cols)
{
    rows_op o = {y, x, NULL, cols, 0};
    kern_parallel_for(rows, 256, add_range, &o);
}

/* One (sequence, head): o[T × Dh] = softmax_causal(q·kᵀ·scale)·v, by blocks of ATT_BLOCK
 * query rows; block [i0, i1) reads keys 0..i1−1 only, so the masked upper triangle is never
 * computed (about half of the products). q and o rows have stride ldq, k and v rows ldk.
 * Returns the flops done. */
enum { ATT_BLOCK = 64 };

static double attend_causal(float *sc, const float *q, int ldq, const float *k, const float *v,
                            int ldk, float *o, int T, int Dh, float scale)
{
    double fl = 0;
    for (int i0 = 0; i0 < T; i0 += ATT_BLOCK) {
        int i1 = i0 + ATT_BLOCK < T ? i0 + ATT_BLOCK : T, nb = i1 - i0;
        kern_matmul_st(sc, i1, q + (size_t)i0 * ldq, ldq, k, ldk, nb, Dh, i1, scale, 0);
        fwd_softmax_causal_rows(sc, i1, nb, i0);                          /* [nb × i1] */
        kern_matmul_nn_st(o + (size_t)i0 * ldq, ldq, sc, i1, v, ldk, nb, i1, Dh, 0);
        fl += 4.0 * nb * i1 * Dh;
    }
    return fl;
}

/* The parts (threads) the parallel blocks may use now, at most FWD_MAX_PARTS: kern_threads(),
 * each past the first with its own [T × T] scores (grown here; without memory for them, the
 * parts there are). 1: the serial order. */
static int fwd_scratch(fwd_state *st)
{
    int want = kern_threads();
    want = want < FWD_MAX_PARTS ? want : FWD_MAX_PARTS;
    if (want - 1 > st->n_scr) {
        size_t tt = (size_t)st->max_len * st->max_len;
        float *p = vl_malloc((size_t)(want - 1) * tt * sizeof *p);
        if (!p) /* no memory for more: the threads there are */
            return st->n_scr + 1;
        vl_free(st->scr);
        st->scr = p;
        st->n_scr = want - 1;
    }
    return want > 1 ? want : 1;
}

/* Items [n·part/np, n·(part+1)/np) of n: a part's contiguous share. */
static int share(int n, int part, int np) { return (int)((long long)n * part / np); }

typedef struct {
    fwd_state *st;
    int S, T, Hq, Hkv, Dh;
    float scale;
    double fl[FWD_MAX_PARTS]; /* flops of each part */
} attn_job;

/* A part of the (sequence, query head) pairs, in sequence-major order; on one part, every
 * pair in the serial order on st->scores. */
static void attn_part(void *arg, int part, int np)
{
    attn_job *j = arg;
    fwd_state *st = j->st;
    int Dh = j->Dh, Hq = j->Hq, T = j->T, Dq = Hq * Dh, Dkv = j->Hkv * Dh, n = j->S * Hq;
    float *sc = part ? st->scr + (size_t)(part - 1) * st->max_len * st->max_len : st->scores;
    j->fl[part] = 0;
    for (int it = share(n, part, np); it < share(n, part + 1, np); it++) {
        int s = it / Hq, hd = it % Hq;
        size_t r0 = (size_t)s * T, kv = (size_t)(hd / (Hq / j->Hkv)) * Dh;
        j->fl[part] += attend_causal(sc, st->q + r0 * Dq + (size_t)hd * Dh, Dq,
                                     st->k + r0 * Dkv + kv, st->v + r0 * Dkv + kv, Dkv,
                                     st->att + r0 * Dq + (size_t)hd * Dh, T, Dh, j->scale);
    }
}

/* ---------------------------------------------------------------- row parts */

typedef struct {
    fwd_state *st;
    const model_layer *L;
    const ctx *x;
} rows_job;

/* First row and row count of part `part` of np over the batch's N rows. */
static int part_rows(const rows_job *j, int part, int np, int *n)
{
    int r0 = share(j->x->N, part, np);
    *n = share(j->x->N, part + 1, np) - r0;
    return r0;
}

/* Parts for a region over N rows: the threads there are, one per 64 rows at least. */
static int row_parts(fwd_state *st, int N)
{
    int np = fwd_scratch(st);
    return np < N / 64 ? np : (N / 64 > 1 ? N / 64 : 1);
}

/* q, k, v of a part's rows: projections, biases, per-head norms (qwen3), RoPE. */
static void qkv_part(void *arg, int part, int np)
{
    const rows_job *j = arg;
    fwd_state *st = j->st;
    const model_layer *L = j->L;
    const hfc_config *c = j->x->c;
    int D = c->hidden, Dh = c->head_dim, Hq = c->n_heads, Hkv = c->n_kv_heads, Dq = Hq * Dh,
        Dkv = Hkv * Dh, n, r0 = part_rows(j, part, np, &n);
    float eps = (float)c->rms_eps;
    float *q = st->q + (size_t)r0 * Dq, *k = st->k + (size_t)r0 * Dkv,
          *v = st->v + (size_t)r0 * Dkv;
    const float *xn = st->xn + (size_t)r0 * D;
    kern_matmul(q, xn, L->wq, n, D, Dq, 0);                           /* [n × Dq] */
    kern_matmul(k, xn, L->wk, n, D, Dkv, 0);                          /* [n × Dkv] */
    kern_matmul(v, xn, L->wv, n, D, Dkv, 0);
    if (L->bq) {
        add_bias(q, L->bq, n, Dq);
        add_bias(k, L->bk, n, Dkv);
        add_bias(v, L->bv, n, Dkv);
    }
    if (L->q_norm) { /* per head: n·H rows of Dh */
        fwd_rmsnorm(q, q, L->q_norm, n * Hq, Dh, eps);
        fwd_rmsnorm(k, k, L->k_norm, n * Hkv, Dh, eps);
    }
    rope(q, Dq, st->rcos, st->rsin, r0, n, j->x->T, Hq, Dh);
    rope(k, Dkv, st->rcos, st->rsin, r0, n, j->x->T, Hkv, Dh);
}

/* h += o_proj(att) (+ bias) for a part's rows. */
static void oproj_part(void *arg, int part, int np)
{
    const rows_job *j = arg;
    fwd_state *st = j->st;
    int D = j->x->c->hidden, Dq = j->x->c->n_heads * j->x->c->head_dim, n,
        r0 = part_rows(j, part, np, &n);
    float *out = st->out + (size_t)r0 * D, *h = st->h + (size_t)r0 * D;
    kern_matmul(out, st->att + (size_t)r0 * Dq, j->L->wo, n, Dq, D, 0);   /* [n × D] */
    if (j->L->bo)
        add_bias(out, j->L->bo, n, D);
    for (size_t i = 0; i < (size_t)n * D; i++)
        h[i] += out[i];
}

/* fa = silu(xn·gateᵀ) ⊙ xn·upᵀ for a part's rows of the dense MLP (f = L->mlp) or of the
 * shared expert (f = L->shared); width from the job. */
typedef struct {
    rows_job r;
    const model_ffn *f;
    int F;
} ffn_job;

static void ffn_up_part(void *arg, int part, int np)
{
    const ffn_job *j = arg;
    fwd_state *st = j->r.st;
    int D = j->r.x->c->hidden, F = j->F, n, r0 = part_rows(&j->r, part, np, &n);
    float *fa = st->fa + (size_t)r0 * F, *fb = st->fb + (size_t)r0 * F;
    kern_matmul(fa, st->xn + (size_t)r0 * D, j->f->gate, n, D, F, 0);    /* [n × F] */
    kern_matmul(fb, st->xn + (size_t)r0 * D, j->f->up, n, D, F, 0);
    kern_silu_mul(fa, fb, (size_t)n * F);
}

/* out = fa·downᵀ for a part's rows of the dense MLP. */
static void mlp_down_part(void *arg, int part, int np)
{
    const ffn_job *j = arg;
    int D = j->r.x->c->hidden, n, r0 = part_rows(&j->r, part, np, &n);
    kern_matmul(j->r.st->out + (size_t)r0 * D, j->r.st->fa + (size_t)r0 * j->F, j->f->down, n,
                j->F, D, 0);                                          /* [n × D] */
}

/* ---------------------------------------------------------------- experts on threads */

/* The first expert of part `part` of np: the experts are cut where the slots before them
 * reach part/np of all, so the parts get about equal rows (an expert's rows stay together). */
static int expert_cut(const int *off, int E, int part, int np)
{
    if (part >= np)
        return E;
    long long target = (long long)off[E] * part / np;
    int e = 0;
    while (e < E && off[e] < target)
        e++;
    return e;
}

typedef struct {
    fwd_state *st;
    const ctx *x;
    int up, down; /* which halves to run: gate/up/SwiGLU, down */
} expert_job;

/* The experts of one part: expert_ffn's products for each, on this part's BLAS thread. */
static void experts_part(void *arg, int part, int np)
{
    const expert_job *j = arg;
    fwd_state *st = j->st;
    int D = j->x->c->hidden, F = j->x->c->moe_intermediate, E = j->x->c->n_experts;
    for (int e = expert_cut(st->off, E, part, np); e < expert_cut(st->off, E, part + 1, np);
         e++) {
        int o = st->off[e], n = st->off[e + 1] - o;
        float *xe = st->xs + (size_t)o * D, *ga = st->fa + (size_t)o * F,
              *ub = st->fb + (size_t)o * F;
        if (n && j->up) {
            kern_matmul(ga, xe, st->fe[e]->gate, n, D, F, 0);         /* [n × F] */
            kern_matmul(ub, xe, st->fe[e]->up, n, D, F, 0);
            kern_silu_mul(ga, ub, (size_t)n * F);
        }
        if (n && j->down)
            kern_matmul(xe, ga, st->fe[e]->down, n, F, D, 0);         /* [n × D] */
    }
}

/* Every routed expert's float32 weights into st->fe when the layer's are all held at once
 * (a layer within the cache's budget: mw_expert then only points at them); 0 if not (the
 * serial loop converts them one at a time) or on error. */
static int experts_held(fwd_state *st, const model_weights *w, const ctx *x, int *rc,
                        vl_err *err)
{
    if (!mw_experts_held(st->mw, x->l))
        return 0;
    for (int e = 0; e < x->c->n_experts && !*rc; e++)
        *rc = mw_expert(st->mw, w, x->l, e, &st->fe[e], err);
    return !*rc;
}

/* The routed experts of the layer on threads (kern_parallel_blas, experts cut into parts of
 * about equal rows), the taps in expert order as the serial loop (fwd.c expert_ffn) fires
 * them: between the halves, or with route-all after both (its pass over every row uses fa and
 * fb as scratch once the routed rows are done). */
int fwd_par_experts(fwd_state *st, const model_weights *w, const ctx *x, int *rc, vl_err *err)
{
    int E = x->c->n_experts, D = x->c->hidden, F = x->c->moe_intermediate;
    if (kern_threads() < 2 || E < 2)
        return 0;
    if (!experts_held(st, w, x, rc, err))
        return *rc != 0;
    int taps = tap_wants(x->taps, TAP_EXPERT_DOWN_IN), np = fwd_scratch(st);
    int all = x->opts->route_all_experts;
    expert_job j = {st, x, 1, !taps || all};
    kern_parallel_blas(np < E ? np : E, experts_part, &j);
    st->flops += 6.0 * st->off[E] * D * F;
    for (int e = 0; e < E && all && taps; e++) {
        fwd_set_dense_w(st, e, x->N);
        fwd_expert_dense(st, st->fe[e], e, x);
    }
    if (taps && !all) {
        for (int e = 0; e < E; e++) {
            int o = st->off[e];
            fwd_emit(x->taps, TAP_EXPERT_DOWN_IN, x->l, e, st->fa + (size_t)o * F,
                     st->off[e + 1] - o, F, st->slot_row + o, st->slot_w + o, x->S, x->T);
        }
        j = (expert_job){st, x, 0, 1};
        kern_parallel_blas(np < E ? np : E, experts_part, &j);
    }
    return 1;
}

/* rlog = xn·routerᵀ for a part's rows. */
static void router_part(void *arg, int part, int np)
{
    const rows_job *j = arg;
    int D = j->x->c->hidden, E = j->x->c->n_experts, n, r0 = part_rows(j, part, np, &n);
    kern_matmul(j->st->rlog + (size_t)r0 * E, j->st->xn + (size_t)r0 * D, j->L->router, n, D,
                E, 0);                                                /* [n × E] */
}

/* Slots [i0, i1) gather their rows of xn into xs. */
static void gather_slots(void *arg, int i0, int i1)
{
    const rows_job *j = arg;
    int D = j->x->c->hidden;
    for (int i = i0; i < i1; i++)
        memcpy(j->st->xs + (size_t)i * D, j->st->xn + (size_t)j->st->slot_row[i] * D,
               (size_t)D * sizeof(float));
}

/* out rows [r0, r1) = Σ of their slots' expert outputs × routing weights, each row's slots
 * added in increasing slot order (slots are expert-major: HF's index_add_ order), so a row
 * gets the same sums whichever thread does it. */
static void combine_rows(void *arg, int r0, int r1)
{
    const rows_job *j = arg;
    fwd_state *st = j->st;
    int D = j->x->c->hidden, K = j->x->c->n_experts_per_tok;
    for (int r = r0; r < r1; r++) {
        float *o = st->out + (size_t)r * D;
        memset(o, 0, (size_t)D * sizeof *o);
        int last = -1;
        for (int k = 0; k < K; k++) { /* the row's slots by increasing index (K is small) */
            int sl = -1;
            for (int q = 0; q < K; q++) {
                int c = st->row_slot[(size_t)r * K + q];
                if (c > last && (sl < 0 || c < sl))
                    sl = c;
            }
            last = sl;
            const float *y = st->xs + (size_t)sl * D;
            float wt = st->slot_w[sl];
            for (int d = 0; d < D; d++)
                o[d] += y[d] * wt;
        }
    }
}

/* The shared expert's down projection and gate for a part's rows, added into out. */
static void shared_down_part(void *arg, int part, int np)
{
    const ffn_job *j = arg;
    fwd_state *st = j->r.st;
    const model_layer *L = j->r.L;
    int D = j->r.x->c->hidden, n, r0 = part_rows(&j->r, part, np, &n);
    float *xs = st->xs + (size_t)r0 * D, *sg = st->sg + r0, *out = st->out + (size_t)r0 * D;
    kern_matmul(xs, st->fa + (size_t)r0 * j->F, L->shared.down, n, j->F, D, 0);  /* [n × D] */
    if (L->shared_gate)                                               /* [n × 1] */
        kern_matmul(sg, st->xn + (size_t)r0 * D, L->shared_gate, n, D, 1, 0);
    for (int r = 0; r < n; r++) { /* deepseek_v3's shared experts have no gate: weight 1 */
        float g = L->shared_gate ? 1.0f / (1.0f + expf(-sg[r])) : 1.0f;
        for (int d = 0; d < D; d++)
            out[(size_t)r * D + d] += g * xs[(size_t)r * D + d];
    }
}

typedef struct {
    fwd_state *st;
    const model_weights *w;
    int N;
    int rc[FWD_MAX_PARTS];
    vl_err err[FWD_MAX_PARTS];
} head_job;

/* The LM head for a part's rows; parts past the first convert the head's tiles into their own
 * cache (the tile buffer of one cache is not to be shared). */
static void head_part(void *arg, int part, int np)
{
    head_job *j = arg;
    fwd_state *st = j->st;
    const model *m = st->m;
    int D = model_config(m)->hidden, V = model_config(m)->vocab;
    int r0 = share(j->N, part, np), n = share(j->N, part + 1, np) - r0;
    mw_cache **c = part ? &st->hmw[part] : &st->mw;
    j->rc[part] = *c ? 0 : mw_new(c, m, &j->err[part]);
    if (!j->rc[part])
        j->rc[part] = mw_head_logits(*c, j->w, st->xn + (size_t)r0 * D, n,
                                     st->logits + (size_t)r0 * V, NULL, &j->err[part]);
}

int fwd_par_head(fwd_state *st, const model_weights *w, int N, vl_err *err)
{
    int np = row_parts(st, N);
    if (np < 2 || kern_threads() < 2)
        return mw_head_logits(st->mw, w, st->xn, N, st->logits, &st->flops, err);
    head_job *j = vl_calloc(1, sizeof *j);
    if (!j)
        return vl_errf(err, VL_ENOMEM, "forward: out of memory");
    *j = (head_job){.st = st, .w = w, .N = N};
    kern_parallel_blas(np, head_part, j);
    int rc = 0;
    for (int p = 0; p < np && !rc; p++)
        if ((rc = j->rc[p]) && err)
            *err = j->err[p];
    vl_free(j);
    st->flops += 2.0 * N * model_config(st->m)->hidden * model_config(st->m)->vocab;
    return rc;
}

/* ---------------------------------------------------------------- the blocks' entry points */

void fwd_par_qkv(fwd_state *st, const model_layer *L, const ctx *x)
{
    const hfc_config *c = x->c;
    int N = x->N, D = c->hidden, Dq = c->n_heads * c->head_dim, Dkv = c->n_kv_heads * c->head_dim;
    rows_job rj = {st, L, x};
    kern_parallel_blas(row_parts(st, N), qkv_part, &rj);
    st->flops += 2.0 * N * D * Dq;
    st->flops += 2.0 * N * D * Dkv;
    st->flops += 2.0 * N * D * Dkv;
}

/* (sequence, head) pairs on threads, one BLAS thread each: a pair's products are too small
 * (≤ 64 × 256 × 64) for BLAS to split them well. */
void fwd_par_attend(fwd_state *st, const ctx *x, float scale)
{
    const hfc_config *c = x->c;
    attn_job aj = {st, x->S, x->T, c->n_heads, c->n_kv_heads, c->head_dim, scale, {0}};
    int np = fwd_scratch(st), pairs = x->S * c->n_heads;
    kern_parallel_blas(np < pairs ? np : pairs, attn_part, &aj);
    for (int p = 0; p < FWD_MAX_PARTS; p++)
        st->flops += aj.fl[p];
}

void fwd_par_oproj(fwd_state *st, const model_layer *L, const ctx *x)
{
    int N = x->N, D = x->c->hidden, Dq = x->c->n_heads * x->c->head_dim;
    rows_job rj = {st, L, x};
    kern_parallel_blas(row_parts(st, N), oproj_part, &rj);
    st->flops += 2.0 * N * Dq * D;
}

void fwd_par_ffn_up(fwd_state *st, const model_layer *L, const ctx *x, const model_ffn *f,
                    int F)
{
    ffn_job j = {{st, L, x}, f, F};
    kern_parallel_blas(row_parts(st, x->N), ffn_up_part, &j);
    st->flops += 2.0 * x->N * x->c->hidden * F;
    st->flops += 2.0 * x->N * x->c->hidden * F;
}

void fwd_par_mlp_down(fwd_state *st, const model_layer *L, const ctx *x)
{
    ffn_job j = {{st, L, x}, &L->mlp, x->c->intermediate};
    kern_parallel_blas(row_parts(st, x->N), mlp_down_part, &j);
    st->flops += 2.0 * x->N * x->c->intermediate * x->c->hidden;
}

void fwd_par_router(fwd_state *st, const model_layer *L, const ctx *x)
{
    rows_job rj = {st, L, x};
    kern_parallel_blas(row_parts(st, x->N), router_part, &rj);
    st->flops += 2.0 * x->N * x->c->hidden * x->c->n_experts;
}

void fwd_par_gather(fwd_state *st, const ctx *x)
{
    rows_job rj = {st, NULL, x};
    kern_parallel_for(st->off[x->c->n_experts], 256, gather_slots, &rj);
}

void fwd_par_combine(fwd_state *st, const ctx *x)
{
    rows_job rj = {st, NULL, x};
    kern_parallel_for(x->N, 64, combine_rows, &rj);
}

void fwd_par_shared_down(fwd_state *st, const model_layer *L, const ctx *x)
{
    int N = x->N, D = x->c->hidden, Fs = x->c->shared_intermediate;
    ffn_job j = {{st, L, x}, &L->shared, Fs};
    kern_parallel_blas(row_parts(st, N), shared_down_part, &j);
    st->flops += 2.0 * N * Fs * D;
    if (L->shared_gate)
        st->flops += 2.0 * N * D;
}
