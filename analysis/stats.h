/* analysis/stats.h — activation, router and per-token statistics, fed by the forward's taps.
 *
 * A stat_acc is a tap consumer (stat_taps gives the tap_set). For the input of every linear
 * weight — per expert for routed experts — it keeps raw sums per input channel: rows, Σx, Σx²,
 * Σx⁴, absmax, and optionally the full XᵀX; per MoE layer the router statistics (tokens routed
 * to each expert by the top-k, Σ router probability, Σ selected weight, Σ routing entropy, E×E
 * co-selection counts); and per token the next-token entropy and log-probability.
 *
 * Tap points → inputs (stat_slot):
 *   TAP_ATTN_IN → STAT_ATTN_IN (q/k/v_proj share it)    TAP_ATTN_O_IN → STAT_O_IN (o_proj)
 *   TAP_MLP_IN → STAT_MLP_IN (router, shared expert gate/up, shared_expert_gate; dense gate/up)
 *   TAP_EXPERT_IN(e) → STAT_EXPERT_IN e (gate/up)       TAP_EXPERT_DOWN_IN(e) → STAT_EXPERT_DOWN e
 *   TAP_SHARED_DOWN_IN → STAT_SHARED_DOWN               TAP_MLP_DOWN_IN → STAT_MLP_DOWN (dense)
 *   TAP_ROUTER_LOGITS (+ sel) → stat_router             TAP_LOGITS → stat_tokens
 *   MLA (deepseek_v3): TAP_ATTN_IN also feeds q_a_proj / kv_a_proj_with_mqa; TAP_Q_B_IN →
 *   STAT_Q_B_IN (q_b_proj), TAP_KV_B_IN → STAT_KV_B_IN (kv_b_proj); mlp.shared_experts.* read
 *   STAT_MLP_IN / STAT_SHARED_DOWN like qwen's shared_expert.
 *   deepseek_v4: TAP_Q_B_IN → STAT_Q_B_IN (wq_b, indexer wq_b), TAP_O_LORA_IN →
 *   STAT_O_LORA_IN (wo_b), TAP_ATTN_O_IN's G group events → STAT_O_IN (wo_a: the G groups'
 *   inputs pooled, rows = G·N), TAP_ROUTER_CHOICE → stat_router (router_choice)
 *
 * EXACT MERGE. Sums are exact fixed-point integers (core/fx.h: 192 bits, 2^-96 resolution),
 * built like this: the rows of one event that belong to one sequence (batch row / seq_len) are
 * summed in float64 in row order, and that per-sequence partial is added to the fixed-point
 * total. A sequence's partial depends only on its own rows, and integer addition is associative
 * and commutative, so the totals are the same for any grouping of whole sequences into batches
 * or runs: merge(A, B) equals the run over A ∪ B bit for bit, and merge(A, B) = merge(B, A)
 * (given a forward whose activations per sequence do not depend on the batch). XᵀX partials
 * come from kern_xtx_acc per sequence the same way. Counts are int64, absmax is a max (both
 * exact). The float64 values (stat_input_f64) are derived from the exact totals by correct
 * rounding, so equal totals give equal doubles. Per-token arrays merge by concatenation
 * (A's tokens, then B's), the order of a run over A then B.
 *
 * Route-all-experts: an expert event row with row_weight 0 reached the expert for statistics
 * only. Such rows enter the sums and `rows`; `rows_routed` counts rows with row_weight > 0.
 *
 * Router: the selection is the forward's own, carried by the TAP_ROUTER_LOGITS event (tap.h:
 * sel, k = top_k), never re-derived here; probabilities are a float64 softmax of the logits;
 * the selected weight is p (or p / Σ_selected p with norm_topk_prob), in float64 from those
 * probabilities. Entropy is in nats.
 * Sigmoid routers (stat_config.sigmoid_scores, DeepSeek-V3): the "probability" of an expert is
 * its sigmoid score σ(logit) (not a distribution: the scores do not sum to 1), the entropy is
 * that of the scores normalised to sum 1, and the selected weight is the event's sel_w, the
 * weight the forward applied to the expert's output (× routed_scaling_factor).
 *
 * Errors inside the tap callback (shape mismatch, NaN/Inf, fixed-point overflow, full token
 * arrays) cannot be returned through tap_fn: the first one is kept and later events are ignored;
 * stat_status reports it. After an error the contents are unspecified (discard or reset).
 *
 * Storage layout (stat_write/stat_read): docs/hdf5-schema.md, section "stats".
 * Thread-safety: one stat_acc per thread; the tap callback is not reentrant.
 */
#ifndef VL_STATS_H
#define VL_STATS_H

#include "../core/err.h"
#include "../core/fx.h"
#include "../io/h5s.h"
#include "../io/hfcfg.h"
#include "tap.h"

#include <stdint.h>

typedef enum {
    STAT_ATTN_IN,     /* input of q/k/v_proj                          [D] */
    STAT_O_IN,        /* input of o_proj                              [attn_out] */
    STAT_MLP_IN,      /* input of router, shared gate/up, shared_expert_gate or dense gate/up [D] */
    STAT_SHARED_DOWN, /* input of the shared expert's down_proj (MoE layers)  [shared_inter] */
    STAT_MLP_DOWN,    /* input of a dense MLP's down_proj (dense layers)      [dense_inter] */
    STAT_Q_B_IN,      /* MLA: input of q_b_proj (q_a_layernorm output) [q_lora] */
    STAT_KV_B_IN,     /* MLA: input of kv_b_proj (kv_a_layernorm output) [kv_lora] */
    STAT_O_LORA_IN,   /* deepseek_v4: input of wo_b                    [o_lora] */
    STAT_EXPERT_IN,   /* input of routed expert e's gate/up           [D] */
    STAT_EXPERT_DOWN, /* input of routed expert e's down_proj         [moe_inter] */
    STAT_SLOT_COUNT
} stat_slot;

typedef struct {
    int n_layers;       /* L */
    int hidden;         /* D */
    int attn_out;       /* Hq·Dh, width of o_proj's input */
    int n_experts;      /* E routed experts per MoE layer (0: dense model) */
    int top_k;          /* K experts per token */
    int norm_topk_prob; /* 1: selected weights renormalised to sum 1 */
    int moe_inter;      /* F, routed expert width */
    int shared_inter;   /* Fs, shared expert width (0: none) */
    int dense_inter;    /* I, dense MLP width (used by dense layers) */
    int vocab;          /* V, width of TAP_LOGITS */
    const unsigned char *layer_sparse; /* [L] 1 = MoE layer; NULL: all MoE iff n_experts > 0.
                                          Copied by stat_new. */
    int max_seq_len;    /* longest sequence an event may carry (sizes the XᵀX copy buffer) */
    int token_stats;    /* 1: per-token entropy/log-prob from TAP_LOGITS */
    int64_t max_tokens; /* capacity of the per-token arrays (allocated at stat_new) */
    int q_lora, kv_lora; /* MLA: widths of STAT_Q_B_IN / STAT_KV_B_IN (0: no such input);
                            deepseek_v4: q_lora is wq_b's input width */
    int o_lora;         /* deepseek_v4 o_groups·o_lora_rank (STAT_O_LORA_IN); 0: none */
    int router_choice;  /* 1: router statistics from TAP_ROUTER_CHOICE (the forward's own
                           selection: deepseek_v4's biased / hash routing), not from a softmax
                           top-k of TAP_ROUTER_LOGITS */
    int sigmoid_scores; /* 1: sigmoid router scores (DeepSeek-V3, above); 0: softmax */
    /* Which inputs get a full XᵀX: called once per input at stat_new; NULL = none. */
    int (*want_xtx)(void *user, int layer, stat_slot slot, int expert);
    void *want_xtx_user;
} stat_config;

/* Input statistics of one weight input. Read-only to callers. */
typedef struct {
    int cols;             /* K input channels */
    int64_t rows;         /* rows accumulated (for experts: all rows given, route-all included) */
    int64_t rows_routed;  /* rows with row_weight > 0 (= rows for non-expert inputs) */
    fx_num *sum_x;        /* [K] exact Σx */
    fx_num *sum_x2;       /* [K] exact Σx² */
    fx_num *sum_x4;       /* [K] exact Σx⁴ */
    double *absmax;       /* [K] max |x| (0 before any row) */
    fx_num *xtx;          /* [K(K+1)/2] exact XᵀX, packed upper triangle row-major (i ≤ j:
                             index i·K − i(i−1)/2 + (j − i)); NULL when not wanted */
} stat_input;

/* Router statistics of one MoE layer. Read-only to callers. */
typedef struct {
    int n_experts;        /* E */
    int64_t tokens;       /* tokens seen */
    int64_t *routed;      /* [E] tokens whose top-k holds the expert (Σ = tokens·K) */
    fx_num *sum_prob;     /* [E] exact Σ softmax probability */
    fx_num *sum_weight;   /* [E] exact Σ selected weight (0 when not selected) */
    fx_num sum_entropy;   /* exact Σ over tokens of the routing entropy (nats) */
    int64_t *coselect;    /* [E×E] tokens selecting both a and b; diagonal = routed */
} stat_router;

/* Per-token statistics in run order (sequence-major). Read-only to callers. */
typedef struct {
    int64_t n, cap;       /* tokens stored, capacity */
    double *entropy;      /* [n] next-token entropy of the model's distribution (nats) */
    double *logprob;      /* [n] log p(actual next token) (nats); NaN at a sequence's last
                             token (no next token in the batch) */
} stat_tokens;

typedef struct stat_acc stat_acc;

/* Zeroed defaults (no layers, no XᵀX, no token stats). */
stat_config stat_config_defaults(void);

/* Allocate every accumulator (zeroed) for cfg; nothing is allocated later except by merge.
 * Errors: VL_ECONFIG (inconsistent sizes), VL_ENOMEM. *out owned by caller (stat_free). */
int stat_new(stat_acc **out, const stat_config *cfg, vl_err *err);
void stat_free(stat_acc *a); /* NULL ok */

/* The configuration (layer_sparse points to the accumulator's copy; want_xtx is kept). */
const stat_config *stat_cfg(const stat_acc *a);

/* The tap_set feeding this accumulator (valid while a lives). */
tap_set stat_taps(stat_acc *a);
/* The tap_fn itself (user = the stat_acc). */
void stat_tap(void *user, const tap_event *ev);

/* Declare the batch about to be run: its token ids [n_seq × seq_len] (borrowed until the next
 * call; needed for the log-prob of the next token). Required before a batch when token_stats
 * is on; harmless otherwise. VL_EARG on bad shapes. */
int stat_begin_batch(stat_acc *a, const int32_t *ids, int n_seq, int seq_len, vl_err *err);

/* 0, or the first error met by the tap callback (copied into err). */
int stat_status(const stat_acc *a, vl_err *err);

/* Accessors; NULL when the layer has no such input (e.g. experts of a dense layer). Pointers
 * valid until stat_free; contents change with further events, merges and resets. */
const stat_input *stat_input_get(const stat_acc *a, int layer, stat_slot slot, int expert);
const stat_router *stat_router_get(const stat_acc *a, int layer);
const stat_tokens *stat_tokens_get(const stat_acc *a);

/* Float64 views of an input's exact sums (each pointer may be NULL to skip): sum_x, sum_x2,
 * sum_x4 [K]; xtx [K×K] full symmetric matrix (requires in->xtx). */
void stat_input_f64(const stat_input *in, double *sum_x, double *sum_x2, double *sum_x4,
                    double *xtx);

/* dst += src. Same configuration required (VL_ESHAPE otherwise, naming the difference);
 * VL_ERANGE on fixed-point overflow; token arrays are concatenated (dst grows). On error dst
 * is unspecified. src unchanged. */
int stat_merge(stat_acc *dst, const stat_acc *src, vl_err *err);

/* Collective over the ranks of core/par.h (analysis/stats_par.c): every rank ran its own
 * items (in increasing order) into its own a; afterwards every rank's a holds the totals over
 * all items — exact sums and counts added as integers, absmax the max, per-token arrays
 * concatenated in item order (item i contributed item_tokens[i] tokens, held by rank
 * owner[i]; owner NULL: rank i mod size) — the bits one process gets running every item in
 * order. A rank may have seen only some layers of an item (a pipeline stage,
 * analysis/pipeline.h): its other layers' sums are zero and add nothing. local_rc: this rank's
 * status so far (see par.h); a sticky callback error of any rank fails every rank. One rank: a
 * is left as is. */
int stat_allreduce(stat_acc *a, const int64_t *item_tokens, const int *owner, int64_t n_items,
                   int local_rc, vl_err *err);

/* Zero every sum, count and token array; clears the sticky error. */
void stat_reset(stat_acc *a);

/* Entropy (nats) of softmax(logits[0..n)) computed in float64; *logprob (if not NULL) gets
 * log p[target] (NaN when target < 0). Returns NaN if any logit is NaN or all are −Inf. */
double stat_entropy(const float *logits, int n, int target, double *logprob);

/* Names: the storage name of a slot ("attn_in", ...) and the Hugging Face weights (relative to
 * model.layers.N., expert index as %d) that read it, space separated. Static strings. */
const char *stat_slot_name(stat_slot s);
const char *stat_slot_weights(stat_slot s);

/* Write every accumulator under `group` (e.g. "/stats/en"); see docs/hdf5-schema.md. The
 * accumulator must be error-free (stat_status). */
int stat_write(const stat_acc *a, h5s_store *s, const char *group, vl_err *err);
/* Read back what stat_write wrote into a new accumulator (exact sums restored bit for bit;
 * want_xtx follows the stored datasets; max_seq_len from the stored attribute). */
int stat_read(stat_acc **out, h5s_store *s, const char *group, vl_err *err);
/* The statistics of calibration sets NAMES[0..n) of a stats store (/stats/<name>), merged
 * exactly (stat_merge) when n > 1. VL_ENOTFOUND naming the file and set when one is absent. */
int stat_read_sets(stat_acc **out, h5s_store *s, const char *const *names, int n,
                   vl_err *err);

#endif
