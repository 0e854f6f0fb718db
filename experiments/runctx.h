/* experiments/runctx.h — what the runner's stages share (private to experiments/): the run
 * context and the helpers the stages call down into (the model on first use, the sets of one
 * family, the few-token policy, allocation result names and calib lists).
 *
 * A run_ctx lives for one run_experiment call. The model and tokenizer are opened on first use
 * (run_need_model), so a run that is all cache hits never loads them. `s` is the writable copy
 * of the store for the stage being run; stages write only their own groups.
 *
 * Layering inside experiments/: runner.c → stage_*.c (stage.h) → runctx.c; nothing here calls
 * back up into the runner.
 */
#ifndef VL_RUNCTX_H
#define VL_RUNCTX_H

#include "../analysis/calib.h"
#include "../analysis/model.h"
#include "../analysis/stats.h"
#include "../core/par.h"
#include "../io/h5s.h"
#include "../io/journal.h"
#include "../io/tok.h"
#include "../alloc/qcache.h"
#include "expcfg.h"

#include <stdint.h>
#include <stdio.h>

typedef struct {
    const exp_config *cfg;
    FILE *out;          /* tables (run_opts.out); NULL = none */
    FILE *log;          /* one line per stage or row (run_opts.log); NULL = none */
    int progress;       /* run_opts.progress */
    const char *model_dir;
    model *m;           /* NULL until run_need_model */
    tok_tokenizer *tok;
    h5s_store *s;       /* the stage's writable store */
    char draws[2048];   /* replicate k > 0: how each calibration set was drawn ("en:disjoint,
                           noise:reseeded"), filled by run_build_sets; "" otherwise */
    const char *stage_key; /* the running stage's cache key (its journal's key) */
    par_fault *fault;   /* run_opts.fault */
    qcache *qcache;     /* the run's packed ggml tensors (alloc/qcache.h): the sens stage's
                           RD tables and additivity copies and the eval rows quantize a tensor
                           once per format and statistics; one per replicate */
    int pipeline;       /* run_opts.pipeline */
} run_ctx;

/* Byte cap of run_ctx.qcache: past it, tensors are quantized again instead of kept. */
#define RUN_QCACHE_BYTES ((size_t)1 << 30)

/* The journal of per-item commits of STAGE ("sens", "eval"): OUT.STAGE.items.r<RANK>
 * (io/journal.h) under the stage's key; every rank has opened when this returns (collective).
 * Logs "STAGE: N items from the journal" when it found some. */
int run_journal_open(run_ctx *c, const char *stage, jr **out, vl_err *err);
/* Its file prefix, OUT.STAGE.items, into buf[cap]. */
void run_journal_prefix(const exp_config *cfg, const char *stage, char *buf, size_t cap);

/* Open the model and tokenizer if not yet open. */
int run_need_model(run_ctx *c, vl_err *err);

/* Build the sets of one family ([calib.*] is_eval 0, [eval.*] is_eval 1) into a new book, in
 * dependency order (a set after the sets its source names). Calibration sets of replicate
 * cfg->replicate > 0 are that replicate's draws (expcfg.h); c->draws records how. *out owned
 * by the caller. */
int run_build_sets(run_ctx *c, int is_eval, calib_book **out, vl_err *err);

/* The fq few-token policy and threshold the config asks for (route_all is refused by the
 * config parser: the stats stage gathers no route-all statistics). */
void run_few_policy(const exp_config *cfg, int *policy, double *min_tokens);

/* 1 if the [quant] menu has a GPTQ format (the stats stage then keeps XᵀX and the alloc stage
 * predicts with the output error), 0 if not, a negative VL_E* code on a bad menu. */
int run_menu_has_gptq(const exp_config *cfg, vl_err *err);

/* Allocation result name of allocation a at target t: "NAME-%g" ("en-2.5"). */
void run_alloc_result_name(const exp_alloc *a, double target, char *buf, size_t cap);

/* Names comma-joined into buf (cut at cap): "en,zh", the `calib` of stored allocations and
 * /eval rows (the allocation's statistics sets, exp_alloc_stats). */
void run_join_sets(const exp_slist *l, char *buf, size_t cap);

#endif
