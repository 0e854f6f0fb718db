/* experiments/stage.h — the stages of a run (private to experiments/). Each writes its groups
 * into c->s; the runner (runner.c) records and commits. The stages call down into runctx.h and
 * the library, never back into the runner.
 */
#ifndef VL_STAGE_H
#define VL_STAGE_H

#include "runctx.h"

int stage_stats(run_ctx *c, vl_err *err);
int stage_sens(run_ctx *c, vl_err *err);
int stage_alloc(run_ctx *c, int alloc_idx, vl_err *err);
int stage_eval(run_ctx *c, vl_err *err);
int stage_report(run_ctx *c, vl_err *err);
int stage_export(run_ctx *c, vl_err *err);

/* Report tables (never fatal: a table that cannot be made says why in its place). */
/* llama-perplexity's statistic set per domain and/or the KLD per entropy tercile, from /eval. */
void report_kld_tables(FILE *f, h5s_store *s, int llama, int entropy);
/* Per MoE layer and expert: routing share per calibration set, bits per allocation. */
void report_expert_bits(FILE *f, run_ctx *c);

#endif
