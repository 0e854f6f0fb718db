/* analysis/stats_int.h — private cross-file helpers of the stats module (stats.c, stats_h5.c).
 * Not part of the public API. */
#ifndef VL_STATS_INT_H
#define VL_STATS_INT_H

#include "stats.h"

#include <stddef.h>

/* The accumulator (opaque to everyone else). */
#define FIXED_SLOTS ((int)STAT_EXPERT_IN) /* slots before the per-expert ones */

struct stat_acc {
    stat_config cfg;
    unsigned char *sparse; /* [L] copy of layer_sparse */
    int per_layer;         /* FIXED_SLOTS + 2E inputs per layer */
    stat_input *inputs;    /* [L × per_layer]; cols 0 = absent */
    stat_router *routers;  /* [L]; n_experts 0 = absent */
    stat_tokens tokens;
    const int32_t *ids;    /* current batch (stat_begin_batch), borrowed */
    int ids_n_seq, ids_seq_len;
    double *p1, *p2, *p4;  /* [max_cols] per-sequence partial sums */
    double *rp, *rw;       /* [E] per-sequence router partials */
    double *rprob;         /* [E] one token's probabilities */
    int *sel;              /* [K] one token's selected experts */
    double *xtx_part;      /* [xtx_slots × kx × kx] per-sequence XᵀX partials of one event */
    int xtx_slots;         /* partials computed before one (threaded) fold */
    int *xtx_fail;         /* [kx] fold: first partial whose term failed in row i, or −1 */
    float *rowbuf;         /* [max_seq_len × kx] contiguous copy of strided rows */
    int kx;                /* widest input with XᵀX */
    int failed;
    vl_err err;            /* first callback error */
};

/* Mutable views for the reader (stat_read), which fills a freshly made accumulator. */
stat_input *stat_input_mut(stat_acc *a, int layer, stat_slot slot, int expert);
stat_router *stat_router_mut(stat_acc *a, int layer);
stat_tokens *stat_tokens_mut(stat_acc *a);

/* Record a callback error (only the first is kept). */
void stat_fail(stat_acc *a, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "layer 3 experts.7.in" for messages. */
void stat_label(char *buf, size_t n, int layer, stat_slot s, int e);

/* Number of exact XᵀX entries stored for K channels: K(K+1)/2. */
static inline int64_t stat_xtx_packed(int k) { return (int64_t)k * (k + 1) / 2; }

#endif
