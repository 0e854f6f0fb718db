/* analysis/eval.h — per-domain KL divergence of a quantized binding against the reference.
 *
 * An evaluation domain is a set in the sense of analysis/calib.h (a name, a source, sequences ×
 * length, a seed), built by the same code as the calibration sets: a corpus file (use the
 * *.eval.txt files, which share no document with *.calib.txt) or a synthetic source
 * (noise:uniform, ...). Only the defaults differ (ev_domain_parse).
 *
 * Ranks (core/par.h): the batches (sequence blocks) of an ev_run are handed out by a work
 * queue, so a rank that finishes early takes more; the per-token arrays are put back in batch
 * order afterwards, the same bits as one process.
 *
 * ev_run feeds the same ids in batches to the reference binding (model_base, never
 * approximated) and to the quantized binding, each through its own fwd_state, and for every
 * scored position evaluates kld_token_eval(ref, quant, next id) (analysis/kld.h). Scored
 * positions: every position but the last of each sequence (0 .. len − 2), or, with
 * ev_runner_set_second_half, only the second half of each window as llama-perplexity scores
 * it (positions len/2 .. len − 2, len − 1 − len/2 tokens: 255 of a 512-token window), so that
 * numbers compare with llama.cpp's. Per-token values are kept in sequence-major order,
 * len − 1 − first per sequence, together with the reference's next-token entropy, so results
 * can be sliced later (by position, by entropy, by routing). Summaries are kld_summarize's
 * (llama.cpp's statistic set) and kld_slice_entropy's (terciles of the reference entropy).
 *
 * Storage (ev_write_result, ev_write_domain, ev_write_matrix): docs/hdf5-schema.md, section
 * "vbrlab eval". Thread-safety: an ev_runner serves one run at a time.
 */
#ifndef VL_EVAL_H
#define VL_EVAL_H

#include "../core/err.h"
#include "../core/par.h"
#include "../core/prog.h"
#include "../io/h5s.h"
#include "calib.h"
#include "kld.h"
#include "model.h"
#include "mweights.h"

#include <stdint.h>
#include <stdio.h>

/* ---------------------------------------------------------------- domains */

#define EV_NAME_MAX CALIB_NAME_MAX /* names follow calib_name_ok */
#define EV_DEFAULT_SEQS 8
#define EV_DEFAULT_LEN 128

/* Parse a domain spec: analysis/calib.h's set grammar (NAME=SOURCE[,seqs=N][,len=L][,seed=S]
 * ..., sources PATH, mix:, noise:uniform|bytes|shuffle:SET, self:T=X, entropy:SET:BUCKET),
 * with the evaluation defaults seqs=EV_DEFAULT_SEQS, len=EV_DEFAULT_LEN where the spec gives
 * none. Build the ids with calib_book_add. Errors as calib_spec_parse. Pure. */
int ev_domain_parse(const char *text, calib_spec *out, vl_err *err);

/* A new book (env: its model, tokenizer, batch; role CALIB_ROLE_EVAL) with the domains
 * specs[0..n) built in order (ev_domain_parse, calib_book_add). *out NULL on error. */
int ev_domain_book(calib_book **out, const calib_env *env, const char *const *specs, int n,
                   vl_err *err);

/* ---------------------------------------------------------------- running */

typedef struct {
    int n_seq, len;       /* shape of the ids evaluated */
    int first;            /* first scored position (ev_first_scored) */
    kld_acc acc;          /* per token, n_seq·(len − 1 − first), sequence-major */
    double *entropy_ref;  /* [n_seq·(len − 1 − first)] reference next-token entropy (nats) */
    kld_summary sum;      /* kld_summarize(acc) and kld_slice_entropy(acc, entropy_ref) */
} ev_result;

/* The first scored position of a len-token window: len/2 when scoring the second half
 * (llama-perplexity's `first = n_ctx/2`), else 0. Pure. */
int ev_first_scored(int len, int second_half);

void ev_result_init(ev_result *r);
void ev_result_deinit(ev_result *r); /* NULL ok */

/* Seconds spent, accumulated over every ev_run of a runner (bench). */
typedef struct {
    double ref_s, quant_s, kld_s; /* reference forward (0 when kept), quantized forward,
                                     per-token metrics */
    int64_t tokens;               /* tokens fed to each forward */
} ev_timing;

typedef struct ev_runner ev_runner;

/* Two forward states of batch_seq sequences × max_len tokens each for model M (which must
 * outlive the runner). */
int ev_runner_new(ev_runner **out, const model *m, int batch_seq, int max_len, vl_err *err);

/* Reference logits kept per domain (the ids are the key), reused by every later ev_run on the
 * same ids: by default up to EV_REF_BUDGET_DEFAULT bytes (n_tokens × vocab × 4 bytes a
 * domain, 64 MiB for 8 × 128 tokens of a 16k vocabulary); past the budget a domain's reference
 * is recomputed each time. Either way the numbers are the same bits. 0 turns keeping off. */
#define EV_REF_BUDGET_DEFAULT ((size_t)1 << 30)
void ev_runner_set_ref_budget(ev_runner *r, size_t bytes);

/* Run the forwards on a pipeline of STAGES ranks (analysis/pipeline.h; 1: none, the
 * default): stage 0 of each data-parallel group draws the batches, the last stage computes the
 * metrics; the results are the same bits. Errors: pl_new's (VL_EARG). */
int ev_runner_set_pipeline(ev_runner *r, int stages, vl_err *err);

/* Score only the second half of each window (positions len/2 .. len − 2) from now on; a window
 * of fewer than 3 tokens is then VL_EARG in ev_run. Off by default. */
void ev_runner_set_second_half(ev_runner *r, int on);

/* Evaluate binding WQ against model_base on ids [n_seq × len] (len ≤ max_len). RES (from
 * ev_result_init, or reused: it is reset) receives every token and the summary. PG (may be
 * NULL) is advanced by the tokens done, starting from pg->done. Errors: fwd_run's, VL_ENOMEM,
 * VL_ERANGE for a logit NaN/Inf. */
int ev_run(ev_runner *r, const model_weights *wq, const int32_t *ids, int n_seq, int len,
           ev_result *res, prog *pg, vl_err *err);

/* Layer-major runs from now on (analysis/lfwd.h): a domain's batches go through the
 * reference layer by layer (its logits kept per domain in an acts store: MEM_CAP bytes in
 * memory, the rest in a temporary file; 0: no cap) and then through the quantized binding
 * layer by layer, so each layer's weights are converted (or fake-quantized, ev_run_ext's
 * provider) once per domain, and only the quantized forward state exists. Ranks: batch b on
 * rank b mod R (static). The per-token numbers are the batch-major run's bit for bit. */
void ev_runner_set_layer_major(ev_runner *r, int on, int64_t mem_cap);

/* ev_run with PROV (analysis/mweights.h; e.g. alloc/qbind.h qb_provide over a lazy binding,
 * PROV_USER the binding) supplying the float32 tensors of WQ's NULL slots; NULL: ev_run. */
int ev_run_ext(ev_runner *r, const model_weights *wq, mw_provider prov, void *prov_user,
               const int32_t *ids, int n_seq, int len, ev_result *res, prog *pg, vl_err *err);

/* A simulated crash for the fault tests (core/par.h: the rank fails its K-th batch); NULL
 * (default): none. F must outlive the runner's runs. */
void ev_runner_set_fault(ev_runner *r, par_fault *f);

/* A result as bytes (analysis/eval_pack.c; the journal payload of an evaluation item):
 * n_seq·(len − 1 − first) scored tokens of kld, dp, nll_ref, nll_q, entropy_ref (float64
 * each, in that order) then same_top (one byte each). unpack resets R and recomputes the
 * summary and the entropy slice. */
size_t ev_result_bytes(int n_seq, int len, int first);
void ev_result_pack(const ev_result *r, void *buf);
int ev_result_unpack(ev_result *r, int n_seq, int len, int first, const void *buf,
                     vl_err *err);

ev_timing ev_runner_timing(const ev_runner *r);
void ev_runner_free(ev_runner *r); /* NULL ok */

/* ---------------------------------------------------------------- storage and tables */

/* /eval/domains/<set name>/{ids, entropy_ref, entropy_terciles} and the set's definition as
 * attributes. RES supplies entropy_ref and the tercile thresholds (any allocation's result: the
 * reference does not depend on it). */
int ev_write_domain(h5s_store *s, const calib_set *set, const ev_result *res, vl_err *err);
/* /eval/<alloc>/<domain>/{kld, dp, nll_ref, nll_q, same_top} and the summary as attributes. */
int ev_write_result(h5s_store *s, const char *alloc, const char *domain, const ev_result *res,
                    vl_err *err);
/* The summary attributes of /eval/<row>/<dom> back into *M (per-token arrays are not read).
 * Attributes an older store lacks read as NaN (slice counts as 0); no group or no n_tokens:
 * VL_ENOTFOUND. */
int ev_read_summary(h5s_store *s, const char *row, const char *dom, kld_summary *m,
                    vl_err *err);
/* "low", "mid", "high" for slice 0, 1, 2. */
const char *ev_slice_name(int k);

/* The matrix, rows = allocations, cols = domains; sums[a·n_dom + d]. */
typedef struct {
    int n_alloc, n_dom;
    const char *const *alloc_names; /* [n_alloc] */
    const char *const *dom_names;   /* [n_dom] */
    const kld_summary *sums;        /* [n_alloc·n_dom] */
    int second_half;                /* the tokens were scored on the second half only */
} ev_matrix;

/* /eval/matrix/{mean_kld, mean_kld_se, same_top, ppl_ratio} [n_alloc, n_dom] and
 * /eval/matrix/{kld_entropy, kld_entropy_se} [n_alloc, n_dom, 3] float64, with the attributes
 * rows and cols (names joined by '\n') and scored ("all" | "second_half"). */
int ev_write_matrix(h5s_store *s, const ev_matrix *mx, vl_err *err);

/* Markdown tables on F: mean KLD ± SE, same-top %, PPL ratio (PPL_q / PPL_ref), then
 * ev_print_entropy and ev_print_llama. */
void ev_print_matrix(FILE *f, const ev_matrix *mx);
/* Mean KLD ± SE per entropy tercile: allocation × (domain × low/mid/high), thresholds first. */
void ev_print_entropy(FILE *f, const ev_matrix *mx);
/* Per domain, llama-perplexity's statistic block as a table: metric × allocation. */
void ev_print_llama(FILE *f, const ev_matrix *mx);

/* ---------------------------------------------------------------- a row's attributes */

/* The one attribute set of /eval/<row> (docs/hdf5-schema.md, "vbrlab eval"), written by
 * `vbrlab eval` and `vbrlab run` alike (through alloc/qeval.h) and read by the report and the
 * plots through ev_read_row. Strings are borrowed for ev_write_row; ev_read_row fills them with
 * vl_malloc'd copies ("" for an absent optional string), freed by ev_row_attrs_free. */
typedef struct {
    const char *kind;       /* "vbr" (an allocation) | "uniform" (one format everywhere) */
    const char *source;     /* allocation file (text or alloc.h5; the run store), or "uniform" */
    const char *format;     /* the uniform format, or "mixed" */
    const char *alloc;      /* the stored allocation applied (/alloc/<alloc> of source); "" none */
    double target_bpw;      /* the allocation's target; 0 for uniform rows and text files */
    const char *calib;      /* sets whose statistics quantized the row (comma-joined); "" none */
    const char *stats_file; /* the file holding them; "" none */
    const char *solver;     /* the stored allocation's solver (exact, lagrange, uniform, rules,
                               …); "" for uniform rows, text files and older stores */
    int n_tensors;          /* tensors fake-quantized */
    int64_t n_weights;      /* their weights */
    double bpw;             /* their exact stored bits per weight (the body) */
    /* whole-model bits (alloc/mbits.h): every weight, the kept tensors at their stored dtype
       (bpw_model) or as llama.cpp's GGUF file holds them (bpw_file; NaN unless every
       quantized tensor has a ggml type). Read back as NaN from rows written without them. */
    double bpw_model, bpw_file;
    int64_t model_weights;
} ev_row_attrs;

/* Write A's attributes on /eval/<row>; calib and stats_file only when non-empty (a row
 * quantized without statistics has neither). */
int ev_write_row(h5s_store *s, const char *row, const ev_row_attrs *a, vl_err *err);

/* Read /eval/<row>'s attributes. bpw is required (VL_ENOTFOUND otherwise) and must lie in
 * (0, 64] (VL_ERANGE); an absent kind is "uniform" when source is "uniform", else "vbr";
 * absent numbers are 0, absent strings "". */
int ev_read_row(h5s_store *s, const char *row, ev_row_attrs *a, vl_err *err);
void ev_row_attrs_free(ev_row_attrs *a); /* of ev_read_row; leaves a zeroed; NULL ok */

/* ---------------------------------------------------------------- the whole store, validated */

/* The KLD matrix of an evaluation store with its names; all owned (ev_store_free). */
typedef struct {
    int n_rows, n_cols;
    char **rows, **cols;  /* allocation (row) and domain (column) names */
    double *mean_kld;     /* [n_rows × n_cols], NaN or finite >= 0 */
    double *mean_kld_se;  /* same shape, NULL when absent */
    double *same_top;     /* same shape, fractions in [0, 1]; NULL when absent */
    double *ppl_ratio;    /* same shape, > 0; NULL when absent */
} ev_store;

/* Read and validate /eval — the one reader of an evaluation store (plots, report, runner):
 * rows/cols attributes present, every name follows the name rule (rows not matrix/domains),
 * no name twice; mean_kld (required) and mean_kld_se/same_top/ppl_ratio (when present) are
 * [rows, cols] with values in range; every row's attribute set passes ev_read_row; for every
 * domain with a definition (/eval/domains/<dom>: seqs, len whole numbers, seed a decimal
 * 64-bit integer) its ids are [seqs, len], entropy_ref and each row's kld/dp/nll_ref/nll_q/
 * same_top [seqs, len−1], n_tokens = seqs·(len−1), and every per-token KLD finite and >= 0.
 * Each failure: one line naming the file and the problem. */
int ev_read_store(h5s_store *s, ev_store *out, vl_err *err);
/* Only the names: /eval/matrix@rows and @cols, validated as ev_read_store does (h5s_names_free
 * each). */
int ev_read_names(h5s_store *s, char ***rows, int *n_rows, char ***cols, int *n_cols,
                  vl_err *err);
void ev_store_free(ev_store *m); /* leaves m zeroed; NULL ok */

#endif
