/* analysis/fwd_mla.h — multi-head latent attention (DeepSeek-V3), one layer's attention.
 *
 * Math as transformers' DeepseekV3Attention (eager) computes it, on xn = input_layernorm(h):
 *   q   = q_b(rmsnorm(q_a(xn), q_a_layernorm))      (or q_proj(xn) when q_lora_rank is null)
 *         per head [Dn nope | Dr rope]
 *   ckv = kv_a_proj_with_mqa(xn) = [c (Rkv) | k_rope (Dr, one for all heads)]
 *   kv  = kv_b(rmsnorm(c, kv_a_layernorm))         per head [Dn k_nope | Dv v]
 *   RoPE on q's and k's Dr parts (rope_interleave: the pairs (x0,x1),(x2,x3).. are first
 *         regrouped as (x0,x2,..,x1,x3,..)), rotate_half layout, YaRN inv_freq and cos/sin × the
 *         attention factor (hfc_yarn)
 *   out = o_proj(softmax(q·kᵀ · softmax_scale + causal) · v), softmax_scale = (Dn+Dr)^−½ ·
 *         mscale(factor, mscale_all_dim)² with YaRN
 * Taps fired (tap.h order): TAP_Q_B_IN (with a q LoRA), TAP_KV_B_IN, TAP_ATTN_O_IN.
 *
 * A fwd_mla holds the buffers for up to max_seq × max_len tokens and the RoPE tables; one run
 * at a time (owned by a fwd_state).
 */
#ifndef VL_FWD_MLA_H
#define VL_FWD_MLA_H

#include "../core/err.h"
#include "model.h"
#include "tap.h"

typedef struct fwd_mla fwd_mla;

int fwd_mla_new(fwd_mla **out, const hfc_config *c, int max_seq, int max_len, vl_err *err);
void fwd_mla_free(fwd_mla *a); /* NULL is a no-op */

/* out [S·T × D] = the attention block's output (before the residual add) for xn [S·T × D].
 * Returns the floating-point operations of its products. */
double fwd_mla_attend(fwd_mla *a, const hfc_config *c, const model_layer *L, const float *xn,
                      int S, int T, int layer, const tap_set *taps, float *out);

/* RoPE at position t (< the max_len a was made for) on the Dr-wide vector x, in place, with a's
 * tables; the output is in rotate_half layout. interleave: x holds the pairs (x0,x1),(x2,x3)..
 * and is first regrouped as (x0,x2,..,x1,x3,..) (transformers' apply_rotary_pos_emb_interleave).
 * So fwd_mla_rope(x, interleave 1) and fwd_mla_rope(the regrouped x, interleave 0) give the same
 * bits. Uses a's scratch: one call at a time per fwd_mla. */
void fwd_mla_rope(fwd_mla *a, float *x, int Dr, int t, int interleave);

/* The RoPE inverse frequencies (Dr/2 of them) for config c: plain θ^(−2i/Dr), or YaRN's blend of
 * interpolated and extrapolated frequencies (transformers' _compute_yarn_parameters). */
void fwd_mla_inv_freq(const hfc_config *c, double *inv_freq);
/* The same for any rotary slice: DIM rotated dims at base THETA, YaRN when y && y->on
 * (deepseek_v4's compress rope too). */
void fwd_yarn_inv_freq(const hfc_yarn *y, double theta, int dim, double *inv_freq);

#endif
