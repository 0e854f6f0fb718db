/* experiments/expcfg.h — experiment config files: parse, validate, render, stage cache keys.
 *
 * One INI file (read with libinih) describes one reproducible ablation. Sections:
 *
 *   [experiment]   name (required), model (dir; empty = the embedded model), seed (uint64, 0),
 *                  out (results .h5, required), threads (0 = all), allow_overlap (false:
 *                  the eval stage refuses an [eval.*] domain that shares a 64-token window
 *                  with a [calib.*] set, analysis/calib.h), baselines (none; a list of
 *                  uniform, rules, random: for every VBR result NAME-BPW the alloc stage also
 *                  solves NAME-BPW.uniform (best uniform format at or below the budget),
 *                  NAME-BPW.rules (k-quant-like rules) and NAME-BPW.random1..R (random
 *                  feasible assignments filling the budget, seeds derived from the experiment
 *                  seed), all evaluated and reported beside it; alloc/solve.h),
 *                  random_draws (R, 3), score_second_half (false:
 *                  every position is scored; true: only the second half of each window, as
 *                  llama-perplexity scores it), replicates (1: how many times
 *                  every calibration set is drawn; see "Replicates" below), mem_cap
 *                  (bytes; absent: batch-major; present: the stats and eval stages run
 *                  layer-major, analysis/lfwd.h, with that many bytes of activations in
 *                  memory and the rest in a temporary file, 0 = no cap; same results),
 *                  export (none | llama.cpp: after the report, every VBR allocation NAME-BPW
 *                  becomes a llama-quantize recipe in OUT-stem.export/NAME-BPW/ — tensor
 *                  types, imatrix, quantize.sh, README — recorded as /export/NAME-BPW;
 *                  alloc/gguf_export.h; replicates > 1: replicate 0's allocations, in OUT)
 *   [calib.NAME]   source (required), seqs (64), len (256), seed (derived when absent)
 *   [eval.NAME]    source (required), seqs (32), len (256), seed (derived when absent)
 *   [quant]        formats (required: a format menu such as rtn:b=2..4:g=64;gptq:b=2..4:g=64),
 *                  percdamp (0.01), act_order (false), starved_policy (uniform;
 *                  route_all is refused: not implemented),
 *                  min_tokens (16)
 *   [sens]         method (noise), eps (0.01,0.03: one or two levels; one is used for both),
 *                  granularity (tensor), seed (derived), tokens (0 = every calibration
 *                  token; N caps α's tokens per set), draws (2: noise draws per unit and ε),
 *                  add_draws (30: additivity draws per band, 0 = no check; alloc/sens.h),
 *                  embed_head (false: the token embedding and LM head are units and
 *                  allocation items too; granularity gguf implies it)
 *   [alloc.NAME]   sets (required; alloc_set is another name for it), objective (sum | weighted | minimax: max_s D_s/D_s*, the
 *                  worst damage relative to each set's own optimum | minimax-raw: max_s D_s),
 *                  weights (required for weighted), solver (exact), granularity (tensor),
 *                  target_bpw (required; a list is a sweep), uniform (canonical format names,
 *                  e.g. gptq-b2-g64-asym, of the uniform baseline rows; optional), budget
 *                  (body: target_bpw counts the quantized items; model: the whole model,
 *                  alloc/salloc.h), uniform_outer (a format for the uniform rows' token
 *                  embedding and LM head; default: kept), stats_set (calibration sets whose
 *                  quantizer statistics, importance and XᵀX, quantize the allocation's rows;
 *                  default: `sets`), llama_mix (llama.cpp ftypes among IQ2_XXS, IQ2_XS,
 *                  IQ2_S, IQ2_M, case-sensitive: each is a baseline row "llama-FTYPE" with
 *                  llama-quantize's per-tensor types, alloc/llmix.h, evaluated like a uniform
 *                  row; only with granularity gguf). The 2×2 design of "allocation from set A,
 *                  statistics from set B" is alloc_set = A, stats_set = B.
 *                  Granularity gguf (group items plus token_embd/output) needs [sens]
 *                  granularity gguf or embed_head = true, as does uniform_outer.
 *   [report]       tables (all), plots (all), term (png)
 *   [claim.NAME]   text (required: the claim in words), tests (required: a comma list of
 *                  "A > B @ D", "A < B @ D" or "A ~M B @ D", exp_test); the report prints a
 *                  verdict per claim decided from the paired-difference intervals
 *                  (analysis/paired.h pr_decide, pr_combine)
 *
 * NAME is [A-Za-z0-9_.+-]+. Values are trimmed; lists are comma-separated; booleans are
 * true/false/1/0/yes/no; numbers are parsed completely and range-checked (seqs ≥ 1, len ≥ 2,
 * 0 < eps < 1, 0 < target_bpw ≤ 32, weights ≥ 0 and not all 0). At least one [calib.*] set.
 * quant.formats is checked with qfmt_menu_parse and alloc.uniform names with qfmt_parse
 * (alloc/qfmt.h); both are stored as written.
 *
 * Sources: the SOURCE of `vbrlab stats --set NAME=SOURCE`, parsed by the same parser
 * (calib_source_parse, analysis/calib.h); seqs, len and seed are the section's keys:
 *   PATH                       a corpus file (documents separated by a line holding only \x1e)
 *   mix:A*0.5+B*0.5            a weighted mix of other sets (weight > 0; "A" alone means A*1;
 *                              a config's mix names at least two sets)
 *   noise:uniform | noise:bytes | noise:shuffle:SET
 *   self | self:T=1.0          text sampled from the model at temperature T (0 < T ≤ 100)
 *   entropy:SET:low|mid|high   an entropy bucket of another set
 * A word and a colon that is no kind and no existing file ("noize:uniform") is an unknown kind.
 * A set named in a source is a set of the same family: calib sources name [calib.*] sets, eval
 * sources name [eval.*] sets (each stage builds its own sets). References are checked after the
 * whole file is read; a reference cycle (through mix, shuffle or entropy) is an error.
 *
 * Corpus paths (one rule): an absolute path is used as is; a relative path is tried from the
 * working directory first and, if no file is there, from the config file's directory. The file
 * must exist then; src.source keeps the text as written (it is what the canonical rendering and
 * the cache keys see), `resolved` the path that was found.
 *
 * libinih as built by Debian: lines of at most 199 characters (a longer line is an error),
 * comments start with ';' or '#' at the start of a line, or ';' after whitespace inline; an
 * indented line continues the previous value (and is therefore reported as a duplicate key).
 *
 * Errors are one line: "FILE:LINE: [section] key: problem"; problems found after the whole
 * file is read (missing keys, dangling references) name the line of the key involved when there
 * is one, else "FILE: [section]: problem".
 *
 * Stage cache keys are FNV-1a 64 over a canonical text rendering of exactly the sections a stage
 * depends on (never the raw file text, so comments, whitespace, key order and section order do
 * not matter):
 *   stats        experiment.model, experiment.seed, every [calib.*] (effective seeds)
 *   sens         stats key + [quant] + [sens]
 *   alloc.NAME   sens key + [alloc.NAME] without `uniform` and `llama_mix` (stats_set does
 *                not change the solution, but the stored allocation records it as its `calib`)
 *   eval         every alloc key + every alloc's `uniform` list (and `llama_mix` when given)
 *                + every [eval.*]
 *                (+ "score = second_half" when experiment.score_second_half is true; absent
 *                otherwise, so the keys of configs without it did not change)
 *   report       eval key + [report] + every [claim.*]
 * experiment.name, out, threads, mem_cap and allow_overlap never enter a key (they do not change
 * results; allow_overlap only lets a run go ahead).
 *
 * Replicates (replicates = R > 1): replicate k = 0 .. R−1 draws every [calib.*] set anew and
 * runs stats → sens → alloc → eval on its own store (exp_replicate_out); [eval.*] domains are
 * the same in every replicate. Replicate 0 is exactly the unreplicated run (same sets, same
 * keys, the store OUT itself). Replicate k > 0 draws a corpus-file set as sequences
 * k·seqs .. (k+1)·seqs − 1 of the same shuffled cut (disjoint from every other replicate's),
 * and when the corpus is too short for that, with the seed exp_replicate_seed (logged: such
 * draws may share sequences); every other source kind draws with exp_replicate_seed (mixes of
 * file sets take their parts from the parts' replicate draws). The stats key of replicate
 * k > 0 holds `replicate = k`, so every stage of every replicate is cached on its own and R
 * may grow without redoing the replicates already done. The report stage (in OUT) reads all
 * replicate stores; its key holds R and the eval key of every replicate.
 *
 * Thread-safety: exp_config is plain data; parsing touches only the caller's objects, so
 * different configs may be parsed concurrently. A parsed config is read-only to its users.
 */
#ifndef VL_EXPCFG_H
#define VL_EXPCFG_H

#include "../analysis/calib.h"
#include "../core/err.h"

#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

#define EXP_MAX_REPLICATES 1000

/* ---- enums and their spellings (index = enum value) ---- */

typedef enum { EXP_STARVED_UNIFORM, EXP_STARVED_RTN, EXP_STARVED_COUNT } exp_starved;
typedef enum { EXP_GRAN_TENSOR, EXP_GRAN_GROUP, EXP_GRAN_GGUF, EXP_GRAN_COUNT } exp_gran;
typedef enum { EXP_BUDGET_BODY, EXP_BUDGET_MODEL, EXP_BUDGET_COUNT } exp_budget;
typedef enum { EXP_SENS_NOISE, EXP_SENS_COUNT } exp_sens_method;
/* order = solve_objective's (stage_alloc casts) */
typedef enum { EXP_OBJ_SUM, EXP_OBJ_WEIGHTED, EXP_OBJ_MINIMAX, EXP_OBJ_MINIMAX_RAW,
               EXP_OBJ_COUNT } exp_objective;
typedef enum { EXP_SOLVER_EXACT, EXP_SOLVER_LAGRANGE, EXP_SOLVER_UNIFORM, EXP_SOLVER_RULES,
               EXP_SOLVER_COUNT } exp_solver;
typedef enum { EXP_TERM_PNG, EXP_TERM_SVG, EXP_TERM_PDF, EXP_TERM_COUNT } exp_term;
/* report tables and plots are bit sets: bit i = names[i] */
typedef enum { EXP_TABLE_KLD_MATRIX, EXP_TABLE_VBR_VS_UNIFORM, EXP_TABLE_EXPERT_USAGE,
               EXP_TABLE_ADDITIVITY, EXP_TABLE_SENSITIVITY, EXP_TABLE_LLAMA_STATS,
               EXP_TABLE_KLD_ENTROPY, EXP_TABLE_EXPERT_BITS, EXP_TABLE_COUNT } exp_table;
typedef enum { EXP_PLOT_SENS_MAP, EXP_PLOT_SENS_DIFF, EXP_PLOT_EXPERT_USAGE, EXP_PLOT_RD,
               EXP_PLOT_KLD_MATRIX, EXP_PLOT_KLD_VS_BPW, EXP_PLOT_ALLOC_MAP,
               EXP_PLOT_COUNT } exp_plot;
/* export runs last and only when [experiment] export is not none */
typedef enum { EXP_STAGE_STATS, EXP_STAGE_SENS, EXP_STAGE_ALLOC, EXP_STAGE_EVAL,
               EXP_STAGE_REPORT, EXP_STAGE_EXPORT } exp_stage;
typedef enum { EXP_EXPORT_NONE, EXP_EXPORT_LLAMACPP, EXP_EXPORT_COUNT } exp_export;

extern const char *const exp_starved_names[EXP_STARVED_COUNT];     /* uniform rtn */
extern const char *const exp_gran_names[EXP_GRAN_COUNT];           /* tensor group gguf */
extern const char *const exp_budget_names[EXP_BUDGET_COUNT];       /* body model */
extern const char *const exp_sens_method_names[EXP_SENS_COUNT];    /* noise */
extern const char *const exp_objective_names[EXP_OBJ_COUNT]; /* sum weighted minimax minimax-raw */
extern const char *const exp_solver_names[EXP_SOLVER_COUNT];       /* exact lagrange ... */
extern const char *const exp_term_names[EXP_TERM_COUNT];           /* png svg pdf */
extern const char *const exp_export_names[EXP_EXPORT_COUNT];       /* none llama.cpp */
/* baseline allocations added beside every VBR result ([experiment] baselines) */
typedef enum { EXP_BASE_UNIFORM, EXP_BASE_RULES, EXP_BASE_RANDOM, EXP_BASE_COUNT } exp_baseline;
#define EXP_MAX_RANDOM_DRAWS 64
extern const char *const exp_baseline_names[EXP_BASE_COUNT];     /* uniform rules random */
extern const char *const exp_table_names[EXP_TABLE_COUNT];         /* kld_matrix ... */
extern const char *const exp_plot_names[EXP_PLOT_COUNT];           /* sens_map ... */

/* ---- plain records (all strings and arrays owned by the config) ---- */

typedef struct { int n; double *v; } exp_dlist;  /* n values */
typedef struct { int n; char **v; } exp_slist;   /* n NUL-terminated strings */

typedef struct {
    char *name;          /* NAME of [calib.NAME] / [eval.NAME] */
    calib_spec src;      /* the source as calib_source_parse parsed it (analysis/calib.h): kind,
                            parts (mix, shuffle and entropy references), weights, temperature,
                            bucket; src.source the text as written. The shape and seed are the
                            keys below (runctx fills the rest of the spec from them). */
    char *resolved;      /* FILE: the existing file found by the path rule above */
    int seqs;            /* sequences, 1 ≤ seqs ≤ 10^7 */
    int len;             /* tokens per sequence, 2 ≤ len ≤ 2^20 */
    int has_seed;        /* 0: seed unset, use exp_set_seed() */
    uint64_t seed;       /* valid when has_seed */
    int line;            /* line of the `source` key (for later error messages) */
} exp_set;

typedef struct {
    char *name;            /* NAME of [alloc.NAME] */
    exp_slist sets;        /* calib set names, distinct, ≥ 1 */
    exp_objective objective;
    exp_dlist weights;     /* objective weighted: one per set, ≥ 0, not all 0; else n = 0 */
    exp_solver solver;
    exp_gran granularity;
    exp_dlist target_bpw;  /* the budget sweep, each in (0, 32], ≥ 1 value */
    exp_slist uniform;     /* uniform baseline format names (n = 0: none) */
    exp_budget budget;     /* what target_bpw counts: the quantized items (body) or the whole
                              model (alloc/salloc.h) */
    char *uniform_outer;   /* the uniform rows' token embedding / LM head format (canonical
                              name); NULL: they stay at full precision */
    exp_slist stats_sets;  /* stats_set: the sets whose quantizer statistics (importance, XᵀX)
                              quantize the rows (n = 0: `sets`, the allocation's own) */
    exp_slist llama_mix;   /* llama.cpp ftype mixes evaluated as rows "llama-FTYPE" (IQ2_XXS,
                              IQ2_XS, IQ2_S, IQ2_M; alloc/llmix.h); n = 0: none */
    int line;              /* line of the `sets` (or `alloc_set`) key */
} exp_alloc;

/* One test of a claim: "A > B @ D" (mean KLD of row A exceeds row B's on domain D), "A < B @
 * D", or "A ~M B @ D" (|A − B| ≤ M × B's mean KLD on D). Rows are allocation results
 * ("NAME-BPW"), uniform baseline formats of the config ("FORMAT+OUTER" when the allocation
 * has a uniform_outer, as the eval stage names the row) or llama.cpp mixes ("llama-IQ2_XS"). */
typedef enum { EXP_CMP_GREATER, EXP_CMP_LESS, EXP_CMP_WITHIN } exp_cmp;
typedef struct {
    char *a, *b, *domain;
    exp_cmp op;
    double margin;         /* WITHIN: relative margin > 0 */
} exp_test;

/* [claim.NAME]: a statement the report decides (verdict table). */
typedef struct {
    char *name;
    char *text;            /* the claim in words */
    int n_tests;           /* ≥ 1: every test must hold */
    exp_test *tests;
    int line;              /* line of the `tests` key */
} exp_claim;

typedef struct {
    char *path;            /* the config file as given to exp_config_parse */
    /* [experiment] */
    char *name;
    char *model;           /* "" = the embedded model */
    uint64_t seed;
    char *out;
    int threads;           /* 0 = all cores; ≤ 4096 */
    int allow_overlap;     /* 1: evaluate domains that share tokens with a calibration set */
    unsigned baselines;    /* bit exp_baseline: baseline allocations beside every VBR result */
    int random_draws;      /* random baseline draws per VBR result (default 3; 1..64) */
    int score_second_half; /* 1: the eval stage scores positions len/2 .. len−2 of each window
                              only, as llama-perplexity does (analysis/eval.h) */
    int replicates;        /* R ≥ 1 (default 1; the CLI's --replicates overrides the file) */
    int64_t mem_cap;       /* −1 (absent): the stats and eval stages run batch-major; else
                              layer-major with this many bytes of activations in memory, the
                              rest in a temporary file (0: no cap); same results either way */
    exp_export export_kind; /* none (default) | llama.cpp: the export stage writes a recipe
                              per allocation (experiments/stage_export.c) */
    int replicate;         /* not a key of the file: the replicate a copy of the config stands
                              for (0 in a parsed config; the runner sets it on shallow copies) */
    /* [calib.*], [eval.*], [alloc.*] in file order */
    int n_calib, n_eval, n_alloc, n_claim;
    exp_set *calib;
    exp_set *eval;
    exp_alloc *alloc;
    exp_claim *claim;      /* [claim.*] in file order */
    /* [quant] */
    char *formats;         /* format menu spec (alloc/qfmt.h grammar), valid, as written */
    double percdamp;       /* GPTQ dampening, fraction of mean diag(H), 0 < x ≤ 1 */
    int act_order;         /* 0/1 */
    exp_starved starved_policy;
    int min_tokens;        /* experts with fewer calibration tokens are "starved"; ≥ 0 */
    /* [sens] */
    exp_sens_method sens_method;
    exp_dlist eps;         /* relative Frobenius noise levels, each in (0, 1) */
    exp_gran sens_granularity;
    int sens_has_seed;
    uint64_t sens_seed;    /* valid when sens_has_seed; else exp_sens_seed() */
    int sens_tokens;       /* tokens per set α is measured on (leading whole sequences);
                              0 = every token (default) */
    int sens_draws;        /* noise draws averaged per unit and ε (default 2; 1..64) */
    int sens_add_draws;    /* additivity draws per band (default 30; 0 = no check) */
    int sens_embed_head;   /* 1: the token embedding and LM head are units and items too */
    /* [report] */
    unsigned tables;       /* bit EXP_TABLE_* */
    unsigned plots;        /* bit EXP_PLOT_* */
    exp_term term;
} exp_config;

/* ---- lifecycle ---- */

/* Parse and validate the INI file at path into *cfg (which need not be initialised). On
 * success returns 0 and the caller owns *cfg (release with exp_config_free). On failure returns
 * a negative VL_E* (VL_ENOTFOUND: no such file; VL_EIO: unreadable or not a regular file;
 * VL_ECONFIG: anything wrong in it; VL_ENOMEM),
 * fills err with one line "FILE:LINE: [section] key: problem" and leaves *cfg zeroed (nothing
 * to free). Checks that corpus files exist (relative to the working directory / config dir). */
int exp_config_parse(const char *path, exp_config *cfg, vl_err *err);

/* Release everything exp_config_parse allocated and zero *cfg. NULL and a zeroed config are
 * no-ops. */
void exp_config_free(exp_config *cfg);

/* ---- queries ---- */

/* Index of the set / alloc with that name, or −1. */
int exp_find_calib(const exp_config *cfg, const char *name);
int exp_find_eval(const exp_config *cfg, const char *name);
int exp_find_alloc(const exp_config *cfg, const char *name);
int exp_find_claim(const exp_config *cfg, const char *name);

/* The canonical spelling of a claim test: "A > B @ D", "A ~0.1 B @ D". */
void exp_test_text(const exp_test *t, char *buf, size_t cap);

/* The statistics sets of allocation a: stats_set when given, else its sets. */
const exp_slist *exp_alloc_stats(const exp_alloc *a);

/* The seed a set uses: its own when given, else derived deterministically from the experiment
 * seed and the set's section name ("calib.NAME" or "eval.NAME", so a calib and an eval set of
 * the same name never share a stream): splitmix64(FNV-1a64(section) ^ splitmix64(seed)).
 * is_eval selects the family. Pure function. */
uint64_t exp_set_seed(const exp_config *cfg, const exp_set *set, int is_eval);

/* The seed replicate k > 0 draws set SET with when it cannot take disjoint corpus sequences
 * (and always for a source other than a corpus file): rng_child_seed(exp_set_seed(...),
 * "replicate.K") truncated to 53 bits like every derived seed. k = 0: exp_set_seed. Pure. */
uint64_t exp_replicate_seed(const exp_config *cfg, const exp_set *set, int k);

/* The store of replicate k: OUT itself for k = 0, else OUT with ".repK" before its extension
 * ("out/demo.h5" → "out/demo.rep3.h5"; no extension: "OUT.repK"). VL_ECONFIG when it does not
 * fit in cap bytes. */
int exp_replicate_out(const exp_config *cfg, int k, char *buf, size_t cap, vl_err *err);

/* [sens] seed: its own when given, else derived as above from the section name "sens". */
uint64_t exp_sens_seed(const exp_config *cfg);

/* ---- canonical text and cache keys ---- */

/* Write the canonical rendering of the whole config: fixed section order (experiment, calib.*
 * by name, eval.* by name, quant, sens, alloc.* by name, report), fixed key order, every value
 * explicit (defaults and effective seeds written out, floats as %.17g). It is itself a valid
 * config that parses back to the same rendering. Returns 0, or VL_EIO when writing fails. */
int exp_config_render(const exp_config *cfg, FILE *f, vl_err *err);

/* Cache key of a stage: FNV-1a 64 of the canonical rendering of what the stage depends on
 * (table in the opening comment). alloc_idx selects the allocation for EXP_STAGE_ALLOC
 * (0 ≤ alloc_idx < n_alloc; a caller bug otherwise) and is ignored for other stages. Pure
 * function of the parsed config. */
uint64_t exp_stage_key(const exp_config *cfg, exp_stage stage, int alloc_idx);

#endif
