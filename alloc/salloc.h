/* alloc/salloc.h — bit allocation from a sensitivity store: build the solver's problem
 * (alloc/solve.h) from sens.h5 (alloc/sens.h), and keep solved allocations in alloc.h5.
 *
 * Items: every quantizable tensor of the store (SENS_TENSOR), or one item per group
 * (SENS_GROUP: layer × projection class, all routed experts of a layer's projection together,
 * named by the glob of sens_group_name, e.g. "model.layers.3.mlp.experts.*.down_proj.weight").
 * Either granularity can be built from a store of either granularity: distortion is per tensor
 * (sens_tensor_dist), and a group item sums its tensors. Options: the formats of the store's
 * RD table, named by their canonical qfmt name; an item's bits per weight is the exact
 * Σ_t n_t·bpw(t, f) / Σ_t n_t (scales and zeros counted). Distortion of an item in format f on
 * set s = Σ_{t ∈ item} sens_tensor_dist(s, t, f, kind): α(ε0) of the tensor's sensitivity unit
 * (alpha0, the first noise level, 0.01 by default — the small-ε end, where KLD ≈ α ε²) times
 * the tensor's share of the unit's error: SENS_E_OUT (default) the output error rel_out under
 * set s's XᵀX, SENS_E_REL the relative weight error rel_w. A set's column therefore predicts
 * that set's mean KLD (nats/token) under the additive model.
 *
 * alloc.h5 (docs/hdf5-schema.md, "vbrlab alloc"): one group /alloc/<NAME> per allocation, NAME
 * [A-Za-z0-9._+-]+ (usable as an eval row name). Attribute `assignment` is the allocation as
 * text, one line "<hf tensor name>\t<format>\n" per quantized tensor in model order — group
 * items expanded to their tensors — the same text qb_alloc_read_text reads. Other attributes:
 * calib, stats_file (which statistics GPTQ and importance use when the allocation is applied),
 * sens_file, objective, solver, granularity, error, sets (comma-separated), items
 * (newline-joined), target_bpw, bits_used, budget_bits, gap, lower_bound, objective_value;
 * whole-model bits: budget ("body": target_bpw counts the items; "model": it counts every
 * weight of the model and body_target_bpw is the items' target the solver used), bpw_body
 * (bits over the items' weights), bpw_model (items' bits plus kept_bits over model_weights),
 * model_weights, kept_bits, kept_rule ("stored" | "gguf", alloc/mbits.h).
 * Datasets: predicted_kld f64 [n_sets], item_bpw f64 [n_items].
 *
 * Not here: solving (solve.h), applying (alloc/qbind.h). Not thread-safe per store; the
 * problem builder is pure and reentrant.
 */
#ifndef VL_SALLOC_H
#define VL_SALLOC_H

#include "qbind.h"
#include "../core/err.h"
#include "../io/h5s.h"
#include "sens.h"
#include "solve.h"

#include <stdio.h>

/* A problem built from a sens store, with the map back to the store's tensors. Plain; owned by
 * itself (salloc_problem_free). */
typedef struct {
    solve_problem *prob;   /* items × formats, n_sets distortion columns */
    int n_tensors;         /* the store's T */
    char **tensor_name;    /* [T] HF names, owned */
    int *tensor_item;      /* [T] item of each tensor */
    int n_sets;
    char **set_name;       /* [n_sets] owned, column order of prob */
    sens_gran gran;
    sens_err_kind kind;
    /* whole-model bits (alloc/mbits.h): every weight of the model, the bits of the tensors no
       item covers at their kept precision under `rule` (MB_GGUF for granularity gguf, else
       MB_STORED; NaN from a store written before they were kept) */
    int64_t model_weights;
    double kept_bits;
    int rule;
} salloc_problem;

/* A budget over the whole model: the items' target bpw that spends model_bpw·model_weights
 * bits in all, (model_bpw·W − kept_bits)/Σ_items n, into *body_bpw. Errors: a store without
 * whole-model counts (VL_EFORMAT), a model target the kept tensors alone exceed (VL_ERANGE,
 * naming the least model bpw). */
int salloc_model_target(const salloc_problem *p, double model_bpw, double *body_bpw,
                        vl_err *err);
/* Whole-model bpw of an allocation using bits_used bits on the items (NaN without counts). */
double salloc_model_bpw(const salloc_problem *p, double bits_used);

/* Build the problem over sets[0..n_sets) (names of the store's sets; unknown name: VL_ENOTFOUND
 * "sens: no set \"x\" (sets: a, b)"; a name twice: VL_EARG). Errors when a needed number is
 * missing: NaN α (set not measured) or NaN error (the set has no XᵀX for SENS_E_OUT; use
 * SENS_E_REL) name the set, tensor and format. *out owned by the caller. */
int salloc_build(salloc_problem **out, const sens_result *r, const char *const *sets,
                 int n_sets, sens_gran gran, sens_err_kind kind, vl_err *err);
void salloc_problem_free(salloc_problem *p); /* NULL ok */

/* "out" | "rel" ↔ SENS_E_OUT | SENS_E_REL. */
int salloc_error_parse(const char *s, sens_err_kind *out, vl_err *err);
const char *salloc_error_name(sens_err_kind k);

/* The assignment text of result res (one line per tensor, model order, see above). *text is
 * vl_malloc'd. */
int salloc_assignment(const salloc_problem *p, const solve_result *res, char **text,
                      vl_err *err);

/* Default allocation name: "<set>-<bpw>" for one set, "<objective>-<a>-<b>-<bpw>" for
 * several, bpw with %g ("en-2.5", "minimax-en-zh-2.5"). Truncated to cap. */
void salloc_default_name(char *out, size_t cap, const char *const *sets, int n_sets,
                         solve_objective obj, double target_bpw);

/* Provenance written with an allocation; strings borrowed, NULL = "". */
typedef struct {
    const char *calib;      /* statistics set GPTQ/importance use when applying it */
    const char *stats_file; /* stats.h5 holding that set */
    const char *sens_file;  /* the sens.h5 it came from */
    int budget_model;       /* 1: the target was set over the whole model (model_target) */
    double model_target;    /* that target (bpw over every weight of the model) */
} salloc_meta;

/* What an allocation proves: "optimal" (gap 0), "node-limit" (the exact search stopped at its
 * node limit; the gap is what is proven), "gap" (stopped at a relative gap, or a Lagrangian
 * solution with its bound), "baseline" (no lower bound). Static string. */
const char *salloc_status(const solve_result *res);

/* Write (or replace) /alloc/NAME in writable store st. NAME must be [A-Za-z0-9._+-]+
 * (VL_EARG otherwise). par is the solve's parameters (target, objective, method). */
int salloc_write(h5s_store *st, const char *name, const salloc_problem *p,
                 const solve_result *res, const solve_params *par, const salloc_meta *meta,
                 vl_err *err);

/* One stored allocation, read back (all strings owned; salloc_record_free). */
typedef struct {
    char *name, *assignment, *calib, *stats_file, *sets, *objective, *solver;
    char *status;            /* "" in files older than the attribute */
    char *budget; /* "body" | "model"; "" from stores written before budgets */
    double target_bpw;
    double gap, objective_value; /* 0 when absent (older files) */
    int n_sets;              /* members of `sets` (1 when absent) = length of predicted_kld */
    double *predicted_kld;   /* [n_sets] */
    int n_items;             /* lines of `items`; 0 when absent (then no item_bpw) */
    double *item_bpw;        /* [n_items] or NULL */
} salloc_record;

/* Names of the allocations in st (sorted; h5s_names_free). No /alloc group or an empty one:
 * VL_ENOTFOUND "FILE: no allocations (group /alloc)". */
int salloc_list(h5s_store *st, char ***names, int *count, vl_err *err);
/* Read and validate /alloc/NAME — the one reader of a stored allocation (eval, export, plot,
 * report and the runner go through it). Absent: VL_ENOTFOUND naming the file and the
 * allocations it has. Missing calib/stats_file/sets/objective/solver/status read as "".
 * Checked, each failure one line naming the file and the problem: the assignment is non-empty
 * and every line a tensor and a known format; `sets` and `calib` members follow the name rule;
 * objective/solver/granularity/error/status are known values; target_bpw in (0, 64];
 * predicted_kld has one finite value >= 0 per set; item_bpw one bpw in (0, 64] per line of
 * `items`; bits_used, budget_bits, bpw, objective_value >= 0, gap not NaN, node_limited in
 * [0, 1]. */
int salloc_read(h5s_store *st, const char *name, salloc_record *out, vl_err *err);
void salloc_record_free(salloc_record *r); /* leaves r zeroed; NULL ok */

/* Append the items of a stored allocation to a (qb_alloc_parse_text on its assignment; errors
 * "FILE:/alloc/NAME:LINE: ..."); rec (may be NULL) gets the record on success, caller frees. */
int salloc_read_qb(h5s_store *st, const char *name, qb_alloc *a, salloc_record *rec,
                   vl_err *err);

/* One allocation request over a sens result: the problem's sets, granularity and error term,
 * the solver's parameters, one solve per target. Strings borrowed. */
typedef struct {
    const char *const *sets;  /* [n_sets] the store's sets, the problem's column order */
    int n_sets;
    sens_gran gran;
    sens_err_kind kind;
    solve_params par;         /* method, objective, weights, limits; target_bpw is set per
                               * target, set to 0 */
    const double *target_bpw; /* [n_targets] */
    int n_targets;
    const char *const *names; /* [n_targets] the /alloc/NAME of each; NULL: salloc_default_name */
    salloc_meta meta;         /* meta.calib NULL: the first set; budget_model/model_target are
                               * set per target from budget_model below */
    int budget_model;         /* 1: each target counts every weight of the model
                               * (salloc_model_target gives the items' target) */
    const char *what;         /* context of a failing target's error ("alloc en": "alloc en:
                               * target 2.5 bpw: ..."); NULL: none */
    unsigned baselines;       /* SALLOC_BASE_* solved beside every target (0: none), at the
                               * same budget, problem and objective (salloc_baselines) */
    int random_draws;         /* with SALLOC_BASE_RANDOM */
    uint64_t baseline_seed;   /* the random baselines' seeds derive from it */
    const char *alloc_set;    /* the runner's 2×2 record (experiments/expcfg.h): the sets the */
    const char *stats_set;    /* allocation came from and those that quantize it, comma-joined,
                               * as attributes of each VBR result (not of its baselines); NULL:
                               * not written */
} salloc_req;

/* Baselines beside a VBR result (salloc_req.baselines bits), in this order: uniform (best
 * uniform format at or below the budget), rules (k-quant-like rules), random1..R (random
 * feasible assignments filling the budget); alloc/solve.h. */
enum { SALLOC_BASE_UNIFORM = 1, SALLOC_BASE_RULES = 2, SALLOC_BASE_RANDOM = 4 };
#define SALLOC_MAX_RANDOM 64
#define SALLOC_MAX_BASELINES (2 + SALLOC_MAX_RANDOM)
typedef struct {
    char name[256];      /* "VBR.uniform", "VBR.rules", "VBR.random1" ... */
    solve_method method; /* SOLVE_UNIFORM, SOLVE_RULES, SOLVE_RANDOM */
    uint64_t seed;       /* random d: rng_child_seed(seed, "baseline.random.VBR.d"); else 0 */
} salloc_baseline;

/* The baselines of VBR result VBR into out[SALLOC_MAX_BASELINES]: which (SALLOC_BASE_* bits),
 * random_draws (≤ SALLOC_MAX_RANDOM) random ones seeded from seed. Returns their count. The one
 * rule the alloc stage (which solves them) and the eval stage (which evaluates them) share. */
int salloc_baselines(unsigned which, int random_draws, uint64_t seed, const char *vbr,
                     salloc_baseline *out);

/* Called with each solved target, before it is written (printing); non-zero stops the run. */
typedef int (*salloc_each_fn)(void *ctx, const char *name, const salloc_problem *p,
                              const solve_result *res);

/* The alloc stage as one call (`vbrlab alloc --sens` and the runner's alloc stage): build the
 * problem from r (salloc_build), solve it once per target (solve_run; objective sum over
 * several sets is the weighted objective with weights 1) and, when out is not NULL, write each
 * as /alloc/NAME (salloc_write), followed by its baselines (q->baselines). each (may be NULL)
 * sees every result first. */
int salloc_run(const sens_result *r, const salloc_req *q, h5s_store *out, salloc_each_fn each,
               void *ctx, vl_err *err);

/* Does PATH look like an HDF5 file: the 8-byte signature at offset 0 (no user block), or,
 * when the file cannot be read, a name ending in .h5 / .hdf5. Pure apart from reading 8 bytes. */
int salloc_is_hdf5(const char *path);

#endif
