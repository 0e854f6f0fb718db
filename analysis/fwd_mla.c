/* analysis/fwd_mla.c — multi-head latent attention (fwd_mla.h has the math).
 *
 * Shape legend: N = S·T rows; D hidden; H heads; Dn, Dr, Dv = qk_nope, qk_rope, v head dims,
 * Dqk = Dn + Dr; Rq, Rkv = q and kv LoRA ranks.
 * Layout: q and k are [N × H·Dqk] with each head's nope part first and its rope part after
 * (the concatenation transformers builds), v is [N × H·Dv], so attention is the same strided
 * products as fwd.c's.
 */
#include "fwd_mla.h"

#include "../core/kern.h"
#include "fwd_ops.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

struct fwd_mla {
    int max_n, max_len, dr;
    float *qa;       /* [N × Rq] q_a_proj output, normed in place (q_b_proj input) */
    float *ckv;      /* [N × (Rkv + Dr)] kv_a_proj_with_mqa output */
    float *cn;       /* [N × Rkv] kv_a_layernorm output (kv_b_proj input) */
    float *kv;       /* [N × H·(Dn + Dv)] kv_b_proj output */
    float *q, *k;    /* [N × H·Dqk] */
    float *v;        /* [N × H·Dv] */
    float *att;      /* [N × H·Dv] attention output (o_proj input) */
    float *scores;   /* [T × T] */
    float *rcos, *rsin; /* [max_len × Dr/2], attention factor included */
    float *tmp;      /* [Dr] one rope vector */
};

static double correction_dim(double rot, int dim, double base, int max_pos)
{
    return dim * log(max_pos / (rot * 2 * 3.14159265358979323846)) / (2 * log(base));
}

void fwd_mla_inv_freq(const hfc_config *c, double *f)
{
    fwd_yarn_inv_freq(&c->ds.yarn, c->rope_theta, c->ds.qk_rope_dim, f);
}

void fwd_yarn_inv_freq(const hfc_yarn *y, double theta, int dim, double *f)
{
    int half = dim / 2;
    for (int i = 0; i < half; i++)
        f[i] = pow(theta, -2.0 * i / dim);
    if (!y || !y->on)
        return;
    double lo = correction_dim(y->beta_fast, dim, theta, y->orig_max_pos);
    double hi = correction_dim(y->beta_slow, dim, theta, y->orig_max_pos);
    if (y->truncate) {
        lo = floor(lo);
        hi = ceil(hi);
    }
    lo = lo > 0 ? lo : 0;
    hi = hi < dim - 1 ? hi : dim - 1;
    if (lo == hi)
        hi += 0.001; /* avoid a zero-width ramp */
    for (int i = 0; i < half; i++) {
        double ramp = (i - lo) / (hi - lo);
        ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
        double extra = 1 - ramp; /* weight of the extrapolated (unscaled) frequency */
        f[i] = f[i] / y->factor * (1 - extra) + f[i] * extra;
    }
}

int fwd_mla_new(fwd_mla **out, const hfc_config *c, int max_seq, int max_len, vl_err *err)
{
    const hfc_dsv3 *ds = &c->ds;
    size_t N = (size_t)max_seq * max_len, H = c->n_heads, Dr = ds->qk_rope_dim;
    size_t Dqk = ds->qk_nope_dim + Dr, Rq = ds->q_lora_rank, Rkv = ds->kv_lora_rank;
    size_t sizes[] = {N * Rq, N * (Rkv + Dr), N * Rkv, N * H * (ds->qk_nope_dim + ds->v_head_dim),
                      N * H * Dqk, N * H * Dqk, N * H * ds->v_head_dim, N * H * ds->v_head_dim,
                      (size_t)max_len * max_len, (size_t)max_len * Dr / 2,
                      (size_t)max_len * Dr / 2, Dr};
    enum { NB = sizeof sizes / sizeof sizes[0] };
    size_t total = 0;
    for (int i = 0; i < NB; i++)
        total += (sizes[i] + 15) / 16 * 16;
    fwd_mla *a = vl_calloc(1, sizeof *a + total * sizeof(float) + 64);
    double *f = vl_malloc((Dr / 2 + 1) * sizeof *f);
    if (!a || !f) {
        vl_free(a);
        vl_free(f);
        return vl_errf(err, VL_ENOMEM, "forward: out of memory for MLA buffers");
    }
    float *p = (float *)(((uintptr_t)(a + 1) + 63) & ~(uintptr_t)63);
    float **dst[NB] = {&a->qa, &a->ckv, &a->cn, &a->kv, &a->q, &a->k, &a->v, &a->att,
                       &a->scores, &a->rcos, &a->rsin, &a->tmp};
    for (int i = 0; i < NB; i++) {
        *dst[i] = p;
        p += (sizes[i] + 15) / 16 * 16;
    }
    a->max_n = (int)N;
    a->max_len = max_len;
    a->dr = (int)Dr;
    fwd_mla_inv_freq(c, f);
    double af = ds->yarn.on ? ds->yarn.attn_factor : 1.0;
    for (int t = 0; t < max_len; t++) /* float64 angles, rounded once */
        for (size_t i = 0; i < Dr / 2; i++) {
            a->rcos[(size_t)t * (Dr / 2) + i] = (float)(cos(t * f[i]) * af);
            a->rsin[(size_t)t * (Dr / 2) + i] = (float)(sin(t * f[i]) * af);
        }
    vl_free(f);
    *out = a;
    return 0;
}

void fwd_mla_free(fwd_mla *a) { vl_free(a); }

/* The regrouping is a pure copy into u, so both layouts reach the rotation with the same numbers
 * in the same slots: the bit-exactness fwd_mla.h promises needs nothing more. */
void fwd_mla_rope(fwd_mla *a, float *x, int Dr, int t, int interleave)
{
    int half = Dr / 2;
    VL_ASSERT(Dr == a->dr && t >= 0 && t < a->max_len);
    const float *cs = a->rcos + (size_t)t * half, *sn = a->rsin + (size_t)t * half;
    float *u = a->tmp;
    for (int i = 0; i < half; i++) {
        u[i] = interleave ? x[2 * i] : x[i];
        u[half + i] = interleave ? x[2 * i + 1] : x[half + i];
    }
    for (int i = 0; i < half; i++) {
        x[i] = u[i] * cs[i] - u[half + i] * sn[i];
        x[half + i] = u[half + i] * cs[i] + u[i] * sn[i];
    }
}

double fwd_mla_attend(fwd_mla *a, const hfc_config *c, const model_layer *L, const float *xn,
                      int S, int T, int layer, const tap_set *taps, float *out)
{
    const hfc_dsv3 *ds = &c->ds;
    int N = S * T, D = c->hidden, H = c->n_heads, Dn = ds->qk_nope_dim, Dr = ds->qk_rope_dim,
        Dv = ds->v_head_dim, Dqk = Dn + Dr, Rq = ds->q_lora_rank, Rkv = ds->kv_lora_rank,
        Dkv = Dn + Dv;
    float eps = (float)c->rms_eps, scale = (float)ds->softmax_scale;
    double flops = 0;
    VL_ASSERT(N <= a->max_n && T <= a->max_len);
    if (Rq > 0) {
        kern_matmul(a->qa, xn, L->q_a, N, D, Rq, 0);                          /* [N × Rq] */
        fwd_rmsnorm(a->qa, a->qa, L->q_a_norm, N, Rq, eps);
        fwd_emit(taps, TAP_Q_B_IN, layer, -1, a->qa, N, Rq, NULL, NULL, S, T);
        kern_matmul(a->q, a->qa, L->q_b, N, Rq, H * Dqk, 0);                 /* [N × H·Dqk] */
        flops += 2.0 * N * D * Rq + 2.0 * N * Rq * H * Dqk;
    } else {
        kern_matmul(a->q, xn, L->wq, N, D, H * Dqk, 0);
        flops += 2.0 * N * D * H * Dqk;
    }
    kern_matmul(a->ckv, xn, L->kv_a, N, D, Rkv + Dr, 0);                     /* [N × Rkv+Dr] */
    for (int r = 0; r < N; r++)
        memcpy(a->cn + (size_t)r * Rkv, a->ckv + (size_t)r * (Rkv + Dr), (size_t)Rkv * 4);
    fwd_rmsnorm(a->cn, a->cn, L->kv_a_norm, N, Rkv, eps);                   /* [N × Rkv] */
    fwd_emit(taps, TAP_KV_B_IN, layer, -1, a->cn, N, Rkv, NULL, NULL, S, T);
    kern_matmul(a->kv, a->cn, L->kv_b, N, Rkv, H * Dkv, 0);                 /* [N × H·Dkv] */
    flops += 2.0 * N * D * (Rkv + Dr) + 2.0 * N * Rkv * H * Dkv;
    for (int r = 0; r < N; r++) {
        int t = r % T;
        float *kr = a->ckv + (size_t)r * (Rkv + Dr) + Rkv; /* shared k_rope, roped once */
        fwd_mla_rope(a, kr, Dr, t, ds->rope_interleave);
        for (int h = 0; h < H; h++) {
            float *qh = a->q + (size_t)r * H * Dqk + (size_t)h * Dqk;
            float *kh = a->k + (size_t)r * H * Dqk + (size_t)h * Dqk;
            const float *kvh = a->kv + (size_t)r * H * Dkv + (size_t)h * Dkv;
            fwd_mla_rope(a, qh + Dn, Dr, t, ds->rope_interleave);
            memcpy(kh, kvh, (size_t)Dn * 4);
            memcpy(kh + Dn, kr, (size_t)Dr * 4);
            memcpy(a->v + (size_t)r * H * Dv + (size_t)h * Dv, kvh + Dn, (size_t)Dv * 4);
        }
    }
    int ldq = H * Dqk, ldv = H * Dv;
    for (int s = 0; s < S; s++)
        for (int h = 0; h < H; h++) {
            size_t r0 = (size_t)s * T;
            kern_matmul_st(a->scores, T, a->q + r0 * ldq + (size_t)h * Dqk, ldq,    /* [T × T] */
                           a->k + r0 * ldq + (size_t)h * Dqk, ldq, T, Dqk, T, scale, 0);
            fwd_softmax_causal(a->scores, T);
            kern_matmul_nn_st(a->att + r0 * ldv + (size_t)h * Dv, ldv, a->scores, T,
                              a->v + r0 * ldv + (size_t)h * Dv, ldv, T, T, Dv, 0); /* [T × Dv] */
            flops += 2.0 * T * T * (Dqk + Dv);
        }
    fwd_emit(taps, TAP_ATTN_O_IN, layer, -1, a->att, N, H * Dv, NULL, NULL, S, T);
    kern_matmul(out, a->att, L->wo, N, H * Dv, D, 0);                       /* [N × D] */
    return flops + 2.0 * N * H * Dv * D;
}
