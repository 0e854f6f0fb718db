/* analysis/spass.h — the statistics pass: calibration sequences through the forward into a
 * stat_acc (analysis/stats.h), in batches, with progress on stderr.
 *
 * A spass binds a model, one fwd_state (sized once for `batch` sequences of the longest length
 * it will see) and the choice of inputs that get a full XᵀX. For each set the caller makes an
 * accumulator with spass_acc_new, feeds it with spass_run, writes it and frees it, so only one
 * set's XᵀX is in memory at a time.
 *
 * XᵀX selection (--hessian PATTERN): PATTERN is a POSIX extended regular expression searched
 * (unanchored) in the Hugging Face tensor names of the model ("model.layers.3.mlp.experts.7.
 * up_proj.weight"). A weight input gets XᵀX when any weight that reads it (stat_slot_weights,
 * experts substituted, only tensors the model has) matches. NULL pattern: every weight; the
 * spass_opts.no_hessian flag: none. Memory: K(K+1)/2 × 24 bytes per input (192-bit sums), about
 * 0.8 MB for K = 256; the embedded model with everything selected needs ~170 MB per set.
 *
 * Batching: the stats module sums per sequence, so totals do not depend on how sequences are
 * grouped — as long as each sequence's activations do not. Attention is per sequence, but the
 * routed experts' matrix products gather the rows of the whole batch, and BLAS may round one
 * row differently with another row count, so two runs are bit-identical when each sequence
 * meets the same batch companions (e.g. set sizes that are multiples of the batch); otherwise
 * they agree to float32 rounding.
 *
 * Layer-major (spass_opts.layer_major): the same batches run layer by layer (lfwd_run), so the
 * taps see the same rows per sequence and the totals are the same bits as batch-major; the
 * token statistics come in batch order either way. Memory: one layer's float32 weights, one
 * batch's buffers and the set's residual rows (capped by mem_cap, beyond it a temporary file).
 *
 * Ranks (core/par.h): under mpirun every rank calls spass_run with the same ids; batch b runs
 * on rank b mod R and stat_allreduce brings the totals to every rank. Batches keep their
 * companions, so R ranks give the bits of one process whatever the set size. With
 * o.pipeline = P > 1 the ranks form pipelines of P stages (analysis/pipeline.h): batch b runs
 * on group b mod (R / P), each stage records the statistics of its own layers, the last stage
 * the per-token ones, and the same reduction gathers them.
 * Not thread-safe; one spass per thread.
 */
#ifndef VL_SPASS_H
#define VL_SPASS_H

#include "../core/err.h"
#include "../io/h5s.h"
#include "calib.h"
#include "fwd.h"
#include "model.h"
#include "stats.h"

#include <stdint.h>

typedef struct {
    int batch;             /* sequences per forward (> 0) */
    int max_len;           /* longest sequence (> 0); sizes the fwd_state */
    const char *hessian;   /* POSIX ERE on tensor names; NULL = every weight (unless no_hessian) */
    int no_hessian;        /* 1: no XᵀX at all */
    int route_all_experts; /* statistics of every expert on every token (fwd.h) */
    int progress;          /* 1: progress lines on stderr (core/prog.h; tty only) */
    int layer_major;       /* 1: every batch through layer i before layer i+1 (analysis/lfwd.h):
                              each layer converted once, not once per batch */
    int64_t mem_cap;       /* layer-major: bytes of residual rows kept in memory, the rest in a
                              temporary file; 0: no cap */
    int pipeline;          /* stages of a pipeline over the ranks (analysis/pipeline.h);
                              0 or 1: none */
} spass_opts;

typedef struct spass spass;

spass_opts spass_opts_defaults(void); /* batch 8, max_len 256, every weight, no route-all,
                                         batch-major */

/* Bind model M (must outlive the spass). Errors: VL_EARG (bad batch/len, a pattern that does
 * not compile: "--hessian \"(\": <regerror text>", a pipeline that does not fit: pl_new),
 * VL_ENOMEM. */
int spass_new(spass **out, const model *m, const spass_opts *o, vl_err *err);

/* A new accumulator for M's shapes with token statistics for up to max_tokens tokens and XᵀX
 * on the selected inputs. Owned by the caller (stat_free). */
int spass_acc_new(spass *p, int64_t max_tokens, stat_acc **out, vl_err *err);

/* Number of weight inputs with XᵀX under the selection (for messages and the bench). */
int spass_xtx_inputs(const spass *p);

/* Run ids [n_seq × seq_len] through the forward `batch` sequences at a time into a
 * (collective over the ranks: see above; every rank ends with the whole set's totals).
 * seq_len ≤ max_len. `label` names the set in progress lines and errors. Errors of the
 * forward or of the accumulator (stat_status) come back one line, prefixed "set LABEL: ". */
int spass_run(spass *p, stat_acc *a, const int32_t *ids, int n_seq, int seq_len,
              const char *label, vl_err *err);

void spass_free(spass *p); /* NULL ok */

/* ---------------------------------------------------------------- the stats stage */

/* Called once per set of spass_run_book with its accumulator (valid only during the call). */
typedef int (*spass_set_fn)(void *ctx, int set, const calib_set *cs, const stat_acc *acc,
                            vl_err *err);

/* The statistics stage, shared by `vbrlab stats` and the runner: every set of BOOK in book
 * order through one spass for model M (o->max_len is taken from the book's longest set), each
 * written into S (NULL: not written — the ranks other than 0) with sfile_write_set (analysis/sfile.h: definition, ids, /stats/<set>, token
 * statistics) and freed before the next, so one set's XᵀX is in memory at a time. ON_SET (may
 * be NULL) sees each accumulator before it is freed; a non-zero return stops the pass. */
int spass_run_book(const model *m, const calib_book *book, const spass_opts *o, h5s_store *s,
                   spass_set_fn on_set, void *ctx, vl_err *err);

#endif
