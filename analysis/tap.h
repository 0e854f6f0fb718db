/* analysis/tap.h — the statistics hook of the forward pass.
 *
 * Taps are data, not code in the forward: a tap_set is one callback, a user pointer and a bit
 * mask of the tap points wanted. The forward calls tap_emit() once per point per layer (per
 * expert for expert points); tap_emit returns at once when the set is NULL or the bit is clear,
 * so a forward without taps pays one branch per point.
 *
 * Events fire from the calling thread in a fixed order (layer by layer; within a layer in the
 * order of the enum; experts in increasing index), so consumers see the same sequence every run.
 * The data in an event is borrowed: valid only during the callback. Consumers accumulate or copy.
 *
 * Rows: an event carries a row-major matrix view (rows × cols, row stride in floats). For
 * whole-batch points the rows are the batch's tokens in order (sequence-major: token t of
 * sequence s is row s·T + t) and row_token is NULL. For expert points the rows are the tokens
 * routed to that expert, row_token[i] is the batch row of row i, and row_weight[i] is the
 * routing weight applied to that expert's output for that token (0 for tokens that reach the
 * expert only because of route-all statistics; see fwd.h).
 *
 * Router: TAP_ROUTER_LOGITS carries the forward's top-k selection beside the logits (sel,
 * sel_w, k), the same choice the experts ran with.
 */
#ifndef VL_TAP_H
#define VL_TAP_H

#include <stddef.h>

typedef enum {
    TAP_ATTN_IN,        /* input of q/k/v_proj (after input_layernorm)   [N × D]; MLA:
                           of q_a_proj (or q_proj) and kv_a_proj_with_mqa; deepseek_v4: of wq_a,
                           wkv, the compressors and the indexer's wkv/wgate/weights_proj */
    TAP_Q_B_IN,         /* MLA: input of q_b_proj (q_a_layernorm output)  [N × Rq];
                           deepseek_v4: of wq_b and the indexer's wq_b (q_norm output) */
    TAP_KV_B_IN,        /* MLA: input of kv_b_proj (kv_a_layernorm output) [N × Rkv] */
    TAP_ATTN_O_IN,      /* input of o_proj (attention output)             [N × Hq·Dh];
                           MLA: [N × H·Dv]; deepseek_v4: one event per output group g,
                           [N × Hq·Dh/G], columns g·Hq·Dh/G.. (wo_a's input) */
    TAP_O_LORA_IN,      /* deepseek_v4: input of wo_b                     [N × G·o_lora_rank] */
    TAP_MLP_IN,         /* input of the MLP/MoE block (after post_attention_layernorm) [N × D]:
                           the input of the router, the shared expert's gate/up and
                           shared_expert_gate, and a dense MLP's gate/up */
    TAP_ROUTER_LOGITS,  /* router logits before softmax/sigmoid            [N × E], with the
                           forward's selection: sel / sel_w [N × k] (below) */
    TAP_ROUTER_CHOICE,  /* deepseek_v4 (routers that are not softmax top-k): [N × 2E], columns
                           0..E−1 the routing distribution (scores / Σ scores), E..2E−1 the
                           selected experts' normalised weights (0 = not selected) */
    TAP_EXPERT_IN,      /* input of routed expert e's gate/up (rows routed to e) [n_e × D] */
    TAP_EXPERT_DOWN_IN, /* input of routed expert e's down_proj: silu(g)·u [n_e × F] */
    TAP_SHARED_DOWN_IN, /* input of the shared expert's down_proj         [N × Fs] */
    TAP_MLP_DOWN_IN,    /* input of a dense MLP's down_proj               [N × I] */
    TAP_RESIDUAL,       /* residual stream after layer l                  [N × D] */
    TAP_LOGITS,         /* final logits (layer = n_layers)                [N × V] */
    TAP_COUNT
} tap_point;

#define TAP_BIT(p) (1u << (p))
#define TAP_ALL ((1u << TAP_COUNT) - 1u)

typedef struct {
    tap_point point;
    int layer;               /* decoder layer 0..L-1 (L for TAP_LOGITS) */
    int expert;              /* routed expert index, −1 for non-expert points */
    const float *data;       /* rows × cols, row stride `stride` floats; borrowed */
    int rows, cols;
    size_t stride;
    const int *row_token;    /* expert points: batch row of each row; NULL = identity */
    const float *row_weight; /* expert points: routing weight of each row; NULL otherwise */
    int n_seq, seq_len;      /* batch shape: N = n_seq · seq_len rows in whole-batch events */
    /* TAP_ROUTER_LOGITS: the experts the forward routed each row to and the weights it applied
     * (sel[r·k + j], sel_w[r·k + j], in selection order), so consumers see the model's own
     * routing (group limits, correction biases, hash layers) instead of re-deriving it from
     * the logits; NULL and 0 for other points */
    const int *sel;
    const float *sel_w;
    int k;
} tap_event;

typedef void (*tap_fn)(void *user, const tap_event *ev);

typedef struct {
    tap_fn fn;      /* called for every wanted event */
    void *user;     /* passed through unchanged */
    unsigned want;  /* OR of TAP_BIT(point) */
} tap_set;

static inline int tap_wants(const tap_set *ts, tap_point p)
{
    return ts && ts->fn && (ts->want & TAP_BIT(p));
}

static inline void tap_emit(const tap_set *ts, const tap_event *ev)
{
    if (tap_wants(ts, ev->point))
        ts->fn(ts->user, ev);
}

#endif
