/* analysis/fwd.h — the float32 forward pass of a decoder-only LLM (dense or MoE), with taps.
 *
 * deepseek_v4 runs its own forward (analysis/fwd_dsv4.h) behind the same calls: its residual
 * rows are hc_mult·D wide (fwd_residual_width) and its taps are listed in fwd_dsv4.c.
 *
 * Math as Hugging Face transformers computes it (LlamaModel, Qwen2/Qwen3, Qwen2Moe/Qwen3Moe,
 * Mixtral): token embedding; per layer x += o_proj(attn(rope(q), rope(k), v)) on
 * input_layernorm(x), then x += mlp(post_attention_layernorm(x)) where mlp is a SwiGLU MLP or a
 * MoE block (softmax router, top-k, optional renormalisation, SwiGLU experts weighted by their
 * routing weight, plus a shared expert gated by sigmoid(x·w_sgᵀ)); final RMSNorm; LM head.
 * Every sequence of a batch has positions 0..T-1 and attends causally to itself only.
 *
 * Top-k ties: among equal router probabilities the lower expert index is chosen first (what
 * torch.topk does on the CPU in practice; it does not promise it).
 *
 * What it does not do: KV caching / incremental decoding, padding masks (all sequences of a
 * batch have the same length), sliding windows, rope scaling variants.
 *
 * deepseek_v3: multi-head latent attention (analysis/fwd_mla.h), the sigmoid group-limited router
 * with e_score_correction_bias for selection only (analysis/moe_route.h), routing weights ×
 * routed_scaling_factor, shared experts without a gate, dense MLPs below first_k_dense_replace.
 *
 * Taps (analysis/tap.h), per layer in this order: TAP_ATTN_IN, (MLA: TAP_Q_B_IN with a q LoRA,
 * TAP_KV_B_IN,) TAP_ATTN_O_IN, TAP_MLP_IN; in a MoE layer TAP_ROUTER_LOGITS (after routing,
 * with the top-k chosen: sel / sel_w), TAP_EXPERT_IN for every expert 0..E-1 (0 rows when none
 * is routed to it), TAP_EXPERT_DOWN_IN for every expert, TAP_SHARED_DOWN_IN if the model has a
 * shared expert; in a dense layer TAP_MLP_DOWN_IN; then TAP_RESIDUAL. TAP_LOGITS last.
 * Expert events list the rows routed to the expert in increasing batch row (row_token) with
 * their routing weights (row_weight, after any renormalisation); their rows sum to N·K per
 * layer. There is no event for the embeddings: they are rows of model_weights.embed.
 *
 * A fwd_state holds every buffer of a run, sized once by fwd_state_new for at most max_seq
 * sequences of max_len tokens; fwd_run does not allocate. A state serves one run at a time
 * (not thread-safe); the model and a weights binding may be shared by many states.
 */
#ifndef VL_FWD_H
#define VL_FWD_H

#include "../core/err.h"
#include "model.h"
#include "tap.h"

#include <stdint.h>

typedef struct fwd_state fwd_state;

typedef struct {
    /* Statistics only: every routed expert also runs on every token, and its TAP_EXPERT_IN /
     * TAP_EXPERT_DOWN_IN events carry all N tokens (row_weight 0 for tokens not routed to it).
     * The output (and logits) stay the normal top-k combination. */
    int route_all_experts;
} fwd_opts;

fwd_opts fwd_opts_defaults(void);

/* Buffers for up to max_seq × max_len tokens of model M (which must outlive the state). */
int fwd_state_new(fwd_state **out, const model *m, int max_seq, int max_len, vl_err *err);

/* Run n_seq sequences of seq_len tokens: ids[s·seq_len + t], each in [0, vocab). W is the
 * weights binding (model_base(m) or a clone); OPTS may be NULL (defaults); TAPS may be NULL.
 * On success *logits points to [n_seq·seq_len × vocab] float32 (row s·seq_len + t), owned by
 * the state and valid until its next run or fwd_state_free. Errors: VL_EARG (batch larger
 * than the state, state of another model), VL_ERANGE (token id out of range). */
int fwd_run(const model *m, const model_weights *w, fwd_state *st, const int32_t *ids,
            int n_seq, int seq_len, const fwd_opts *opts, const tap_set *taps,
            const float **logits, vl_err *err);

/* Resume a run at decoder layer LAYER (0..L; L runs only the final norm and head) from
 * hidden_in [n_seq·seq_len × D], the residual stream entering that layer: the embeddings
 * (fwd_embed) for layer 0, else the TAP_RESIDUAL rows of layer LAYER−1 from an earlier run of
 * the same batch. Bit for bit equal to fwd_run when given the rows fwd_run computed (same
 * code path and order); taps fire only for layers LAYER.. and the logits. hidden_in is copied
 * (it may be any caller buffer). ids: the batch's token ids; deepseek_v4's hash-routed layers
 * read them, the other families ignore them. NULL is allowed: deepseek_v4 then reuses the ids
 * of the state's last batch and refuses (VL_EARG) a batch of another shape. Logits and errors
 * as fwd_run; VL_EARG for a bad layer. */
int fwd_run_from(const model *m, const model_weights *w, fwd_state *st, const int32_t *ids,
                 int layer,
                 const float *hidden_in, int n_seq, int seq_len, const fwd_opts *opts,
                 const tap_set *taps, const float **logits, vl_err *err);

/* Only decoder layers [from, to) of a batch, in place on hidden [n_seq·seq_len × residual
 * width]: it holds layer FROM's input on entry and layer TO−1's output on return (the
 * TAP_RESIDUAL rows). ids: the batch's token ids (deepseek_v4's hash-routed layers read them;
 * the other families ignore them, NULL allowed). No head, no logits; taps fire for those
 * layers. The same code path as fwd_run, so a batch run layer by layer and then
 * fwd_run_from(L) gives fwd_run's logits bit for bit. A layer-major pass (analysis/lfwd.h)
 * calls this for layer i on every batch before layer i+1: the state keeps layer i's float32
 * weights across those calls. */
int fwd_run_layers(const model *m, const model_weights *w, fwd_state *st, const int32_t *ids,
                   int from, int to, float *hidden, int n_seq, int seq_len,
                   const fwd_opts *opts, const tap_set *taps, vl_err *err);

/* The embedding rows of ids[0..n) into out [n × fwd_residual_width] (layer 0's input;
 * deepseek_v4: the embedding in each of its hc_mult streams). VL_ERANGE on a bad id.
 * Pure apart from out. */
int fwd_embed(const model *m, const model_weights *w, const int32_t *ids, int n, float *out,
              vl_err *err);

/* After a run: the final-normed hidden states [N × D] (input of the LM head); same lifetime as
 * the logits. */
const float *fwd_final_hidden(const fwd_state *st);

/* After a run: floating-point operations of the matrix products it did (2·m·n·k each,
 * attention scores and P·V included, route-all extras included). */
double fwd_last_flops(const fwd_state *st);

/* A layer whose float32 weights exceed BYTES is converted in parts and its routed experts one
 * at a time (analysis/mweights.h; default MW_LAYER_BUDGET_DEFAULT, 256 MiB): the same logits
 * bit for bit, less memory, more conversions per batch. deepseek_v4 converts whole layers. */
void fwd_set_layer_budget(fwd_state *st, size_t bytes);

/* Float32 tensors from FN (analysis/mweights.h mw_provider, e.g. alloc/qbind.h qb_provide of a
 * lazy fake-quant binding) where the binding's slot is NULL; NULL FN: the stored tensors. */
void fwd_set_provider(fwd_state *st, int (*fn)(void *user, size_t i, const float **data,
                                               float **owned, vl_err *err), void *user);

void fwd_state_free(fwd_state *st); /* NULL is a no-op */

/* Width of a residual row (fwd_embed's output, TAP_RESIDUAL, fwd_run_from's input): D, or
 * hc_mult·D for deepseek_v4, whose residual is hc_mult streams (analysis/fwd_dsv4.h). */
int fwd_residual_width(const model *m);

#endif
