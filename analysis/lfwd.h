/* analysis/lfwd.h — the forward of a whole token set, layer-major.
 *
 * Every batch goes through layer i before any goes through layer i+1, so each layer's float32
 * weights are converted once (analysis/mweights.h) and memory holds one layer's weights, one
 * batch's buffers (the fwd_state) and the residual rows of the whole set between two layers
 * (analysis/acts.h: in memory up to mem_cap bytes, else in an unlinked temporary file). Then
 * the head runs batch by batch and each batch's logits go to a sink, in batch order.
 *
 * The logits are fwd_run's on the same batches bit for bit: each batch runs the same code on
 * the same rows (fwd_run_layers, fwd_run_from), only the order of batches and layers changes.
 */
#ifndef VL_LFWD_H
#define VL_LFWD_H

#include "../core/err.h"
#include "fwd.h"

#include <stdint.h>

typedef struct {
    int batch;              /* sequences per batch (at most the state's max_seq) */
    int64_t mem_cap;        /* bytes of residual rows kept in memory; 0: no cap */
    const fwd_opts *opts;   /* NULL: defaults */
} lfwd_params;

/* What the statistics and the evaluation add to a layer-major run (lfwd_run_ext). Stage
 * numbers: −1 the embedding, 0..L−1 a decoder layer, L the head. Zero fields: none. */
typedef struct {
    const tap_set *taps;    /* fire for every batch of every layer, in layer-major order:
                               layer i's events of all batches, then layer i+1's; TAP_LOGITS
                               in batch order */
    /* Before a stage's first batch (e.g. bind that layer's fake-quantized weights into W). */
    int (*stage)(void *user, int stage, vl_err *err);
    /* Before each batch of a stage, with the batch's ids (e.g. stat_begin_batch). */
    int (*batch)(void *user, int stage, int seq0, int n, const int32_t *ids, vl_err *err);
    void *user;
} lfwd_ext;

/* Gets logits [n·seq_len × vocab] of sequences seq0..seq0+n−1, valid during the call;
 * a non-zero return stops the pass with that code. */
typedef int (*lfwd_sink)(void *user, int seq0, int n, const float *logits, vl_err *err);

/* Run n_seq sequences of seq_len tokens ids[s·seq_len + t] through model M with binding W on
 * state ST (sized for p->batch × seq_len). *spilled (if not NULL) tells whether the residual
 * rows went to a temporary file. Errors: fwd_run's, acts.h's, the sink's. */
int lfwd_run(const model *m, const model_weights *w, fwd_state *st, const int32_t *ids,
             int n_seq, int seq_len, const lfwd_params *p, lfwd_sink sink, void *user,
             int *spilled, vl_err *err);

/* lfwd_run with taps and hooks (X may be NULL: lfwd_run; SINK may be NULL: logits dropped).
 * Errors also the hooks'. The taps see fwd_run's events of each batch (the same rows, so
 * per-sequence statistics are the same bits), in stage order. */
int lfwd_run_ext(const model *m, const model_weights *w, fwd_state *st, const int32_t *ids,
                 int n_seq, int seq_len, const lfwd_params *p, const lfwd_ext *x,
                 lfwd_sink sink, void *user, int *spilled, vl_err *err);

#endif
