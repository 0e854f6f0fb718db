/* analysis/pipeline.h — model parallelism: the decoder layers split over a pipeline of ranks,
 * the residual rows passed from rank to rank (`--pipeline P`, docs/scaling.md).
 *
 * R ranks (core/par.h) form D = R / P data-parallel groups of P stages: rank r is stage r mod P
 * of group r / P. Stage s holds layers [s·L/P, (s+1)·L/P) (as equal as integer division makes
 * them; P ≤ L, so none is empty); stage 0 also embeds, the last stage also runs the head (final
 * norm, LM head). A rank touches only its own stages' weights: the forward converts a layer's
 * stored tensors to float32 when it runs it (analysis/mweights.h), and the mapped pages of the
 * other stages are never read, so the ranks of a pipeline together hold a model that none holds
 * alone.
 *
 * Work items (batches of sequences) belong to groups: item i to group i mod D (pl_mine), or
 * from a work queue that stage 0 of each group draws on and passes down its pipeline
 * (pl_next). Every stage of a group runs the group's items in the same order: a batch enters
 * stage 0, its rows go stage to stage by point-to-point messages (par_send), and its logits
 * appear on the last stage, which therefore owns the item's results (pl_owner). Taps fire on
 * the stage that runs the layer, so each layer's statistics are recorded by the rank that holds
 * it; the other ranks' accumulators stay zero for that layer, and the exact integer reductions
 * (analysis/stats_par.c) bring every layer to every rank.
 *
 * Why the bits do not change: a batch runs through layers [0, L) as fwd_run_layers pieces and
 * the head as fwd_run_from(L), the same code on the same rows as fwd_run (analysis/fwd.h); the
 * rows cross ranks as bytes.
 *
 * Stopping: every stage calls pl_finish after its last item, failed or not. A stage that
 * failed drains what its upstream still sends (so no rank blocks in a send), an upstream stage
 * that stops early sends an end marker that makes the downstream stages' waits fail with
 * "stage S stopped", and the next collective (par_agree) reports the lowest failing rank — the
 * first failure of its pipeline, since upstream stages have lower ranks.
 *
 * With P = 1 every call is the plain one-process path (pl_forward is fwd_run, items round-robin
 * over the ranks as par_mine). A pipeline is not thread-safe; one per process and command.
 */
#ifndef VL_PIPELINE_H
#define VL_PIPELINE_H

#include "../core/err.h"
#include "../core/par.h"
#include "fwd.h"
#include "model.h"

#include <stdint.h>

typedef struct pl_pipe pl_pipe;

/* The pipeline of P stages for model M over the running ranks, with room for batches of up to
 * max_rows token rows. Errors (VL_EARG, one line): P < 1; P > 1 in the serial build ("needs
 * the MPI build"); P not dividing the number of ranks; P above the layer count. */
int pl_new(pl_pipe **out, const model *m, int P, int64_t max_rows, vl_err *err);
void pl_free(pl_pipe *p); /* NULL: no-op */

int pl_stages(const pl_pipe *p); /* P */
int pl_groups(const pl_pipe *p); /* D = ranks / P */
int pl_stage(const pl_pipe *p);  /* this rank's stage */
int pl_is_last(const pl_pipe *p); /* this rank runs the head (holds the logits) */
/* This rank's layers [*from, *to). */
void pl_layers(const pl_pipe *p, int *from, int *to);

/* Does item i belong to this rank's group (i mod D)? */
int pl_mine(const pl_pipe *p, int64_t item);
/* The rank that holds item i's results under pl_mine's distribution: the last stage of group
 * i mod D. */
int pl_owner(const pl_pipe *p, int64_t item);

/* The next item of a work queue (core/par.h) for this rank's group, −1 when none is left:
 * stage 0 takes it from Q and passes it down the pipeline; the other stages receive it. */
int pl_next(pl_pipe *p, par_queue *q, int64_t *item, vl_err *err);

/* Item ITEM (ids [n_seq × seq_len], n_seq·seq_len ≤ max_rows) through the pipeline with
 * binding W on state ST (sized for the batch). Every stage of the group calls it for the same
 * items in the same order. TAG tells apart several forwards of one item (eval: 0 the
 * reference, 1 the quantized binding); a stage receiving another item or tag than it expects
 * fails (VL_EIO) instead of computing on the wrong rows. *logits: on the last stage as fwd_run's (owned by ST), NULL on the
 * other stages. OPTS, TAPS as fwd_run (taps fire for this stage's layers and, on the last
 * stage, the logits). Errors: fwd_run's, MPI's, VL_EIO "stage S stopped" (upstream ended). */
int pl_forward(pl_pipe *p, const model_weights *w, fwd_state *st, const int32_t *ids, int n_seq,
               int seq_len, int64_t item, int tag, const fwd_opts *opts, const tap_set *taps,
               const float **logits, vl_err *err);

/* End of this stage's items (after success or failure, on every rank): see "Stopping" above.
 * Returns local_rc, or an MPI error while draining. Then the pipeline can run another pass. */
int pl_finish(pl_pipe *p, int local_rc, vl_err *err);

#endif
