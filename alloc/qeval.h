/* alloc/qeval.h — the eval stage: allocations fake-quantized (qbind.h) and evaluated against the
 * reference on every domain (analysis/eval.h), stored under /eval in the layout of
 * docs/hdf5-schema.md, "vbrlab eval". `vbrlab eval` and the runner's eval stage are adapters
 * over it: they make the rows (which allocation, which statistics, which provenance) and call
 * qe_run_row per row and qe_finish once.
 *
 * A qe_eval holds the domains (borrowed), one ev_runner and the summary of every row × domain;
 * rows are run in order 0 .. n_rows − 1 (row 0 also writes /eval/domains). Not thread-safe.
 * Ranks (core/par.h): every rank makes the same calls; ev_run shares each domain's sequence
 * blocks over them, every rank ends with every summary, and a NULL store S (the ranks other
 * than 0) computes without writing.
 */
#ifndef VL_QEVAL_H
#define VL_QEVAL_H

#include "../analysis/calib.h"
#include "../analysis/eval.h"
#include "../analysis/model.h"
#include "../analysis/stats.h"
#include "../core/err.h"
#include "../io/h5s.h"
#include "../io/journal.h"
#include "qbind.h"

#include <stdio.h>

/* One row of the matrix. */
typedef struct {
    const char *name;       /* row name (calib_name_ok), /eval/<name> */
    const qb_alloc *alloc;  /* what to quantize */
    const stat_acc *stats;  /* its calibration statistics; NULL: none (uniform importance) */
    qb_params qp;           /* quantizer options */
    ev_row_attrs attrs;     /* provenance; n_tensors, n_weights and bpw come from the binding */
} qe_row;

typedef struct qe_eval qe_eval;

/* An evaluation of n_rows rows of model M on every set of DOMAINS (both must outlive it),
 * batch sequences per forward. */
int qe_new(qe_eval **out, const model *m, const calib_book *domains, int batch, int n_rows,
           vl_err *err);

/* Layer-major evaluation (analysis/eval.h ev_runner_set_layer_major) with lazy bindings
 * (qbind.h qb_bind_lazy): a layer's listed tensors are fake-quantized when the forward reaches
 * the layer and freed after it, once per domain, instead of a float32 copy of every quantized
 * tensor for the whole row; the reference logits of a domain live in memory up to MEM_CAP
 * bytes (0: no cap), beyond in a temporary file. The same numbers bit for bit. Call before the
 * first row. */
void qe_set_layer_major(qe_eval *q, int on, int64_t mem_cap);

/* Score only the second half of each window (analysis/eval.h, ev_runner_set_second_half);
 * call before the first row. */
void qe_set_second_half(qe_eval *q, int on);

/* Run the forwards on a pipeline of STAGES ranks (ev_runner_set_pipeline; 1: none); call
 * before the first row. Errors: VL_EARG (the pipeline does not fit the ranks or the model). */
int qe_set_pipeline(qe_eval *q, int stages, vl_err *err);

/* Row r: bind ROW's allocation, run every domain, write /eval/<row>/<dom> (and /eval/domains
 * at r = 0) and the row's attribute set (ev_write_row). PROGRESS: a progress line on stderr
 * (tty only). Errors carry "row NAME". */
int qe_run_row(qe_eval *q, h5s_store *s, int r, const qe_row *row, int progress, vl_err *err);

/* /eval/matrix of the rows run (ROW_NAMES[n_rows], in row order); the tables on F when F is
 * not NULL (ev_print_matrix). */
int qe_finish(qe_eval *q, h5s_store *s, const char *const *row_names, FILE *f, vl_err *err);

/* Per-item commit (`vbrlab run`): every allocation × domain evaluated is appended to J by
 * rank 0 as soon as it is done ("eval/ROW/DOMAIN/seqs=N/len=L": ev_result_pack's bytes; the
 * row's binding facts as "eval/ROW/@info"), and one found there is taken instead of run (a
 * row whose domains and facts are all there is not even quantized). FAULT: a simulated crash
 * for the fault tests (core/par.h). Either may be NULL; both must outlive the rows. */
void qe_set_journal(qe_eval *q, jr *j, par_fault *fault);

void qe_free(qe_eval *q); /* NULL ok */

#endif
