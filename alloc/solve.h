/* alloc/solve.h — bit allocation: choose one option (quant format) per item under a bit budget.
 *
 * The problem: items (a tensor, one expert, or a group such as "all experts of layer L's
 * down_proj", whichever granularity the caller builds), each with n weights and options; an
 * option has a name, bits per weight and a predicted distortion for each of S calibration sets.
 * Choosing option j for item i costs n_i·bpw_ij bits. The budget is target_bpw · Σ n_i. Every
 * item takes exactly one allowed option (a multiple-choice knapsack). Objectives:
 *   SUM       Σ_i d_ij[set]                          (one calibration set)
 *   WEIGHTED  Σ_i Σ_s w_s d_ij[s]                    (w_s ≥ 0 given)
 *   MINIMAX   max_s D_s / D_s*                       (the worst relative damage; D_s = Σ_i d_ij[s]
 *                                                     and D_s* the set's own SUM optimum at the
 *                                                     same budget and constraints, by EXACT
 *                                                     whatever the method; D_s* ≤ 0 is an error)
 *   MINIMAX_RAW  max_s D_s                           (the worst raw damage: the set with the
 *                                                     larger baseline always binds)
 * Constraints: an item's allowed options are those with floor ≤ bpw ≤ ceiling, where floor and
 * ceiling are the tighter of the item's own and its class's; a pinned item has only its pinned
 * option (a pin overrides the bounds). Floors/ceilings are per item, not averages over a class.
 *
 * Solvers (solve_method):
 *   LAGRANGE  Lagrangian relaxation on each item's lower convex hull in (bits, cost), greedy fill
 *             of the budget along hull segments in order of gain per bit, then a local pass that
 *             moves single items to any better option that still fits. Reports the LP (convex
 *             hull) lower bound and the gap. MINIMAX: multiplicative weights over the sets (see
 *             solve.c); the lower bound is max over the tried set weights λ of the LP bound of
 *             the λ-weighted problem, valid because Σ λ_s D_s ≤ max_s D_s.
 *   EXACT     branch and bound on the real costs with LP bounds, after Lagrangian reduced-cost
 *             elimination of options. Exact up to floating-point rounding of sums (~1e-12
 *             relative); gap 0 when it finishes within node_limit, else the best found and the
 *             proven gap. MINIMAX is solved directly (bound = max over the sets and the best λ of
 *             their LP bounds).
 *   UNIFORM   the same option name everywhere (an item lacking it, or not allowed it, takes its
 *             allowed option nearest in bpw); the name whose assignment uses the most bits
 *             within the budget. None fits: VL_ERANGE naming the nearest.
 *   RULES     a k-quant-like mix (solve_base.c documents the rule): attention v/o and the
 *             early down-projections one bit width up, the highest level that fits, the rest of
 *             the budget filled by rule (down-projections, then attention, then the rest).
 *   RANDOM    a random feasible assignment that fills the budget (seeded by `seed`; the
 *             distortion plays no part): the "random at the same budget" baseline.
 * Every solver returns an assignment within the budget or an error; the budget test allows a
 * relative slack of 1e-12 for rounding in sums of n·bpw.
 *
 * Not here: building items from a model or a sensitivity store (alloc/sens, later), writing to
 * HDF5. All numbers are float64. Nothing here keeps global state; all functions are reentrant.
 */
#ifndef VL_SOLVE_H
#define VL_SOLVE_H

#include <stdint.h>
#include <stdio.h>

#include "../core/err.h"

/* ---- the problem (plain; build it with the functions below, read fields directly) ---- */

typedef struct {
    char *name;      /* owned, e.g. "q2_K" */
    double bpw;      /* bits per weight, ≥ 0 */
    double *dist;    /* [n_sets] predicted distortion per set, ≥ 0, owned */
} solve_option;

typedef struct {
    char *name;          /* owned, unique within the problem */
    int64_t n;           /* number of weights, > 0 */
    int cls;             /* class index into solve_problem.classes, −1: none */
    int pin;             /* pinned option index, −1: none */
    double floor_bpw;    /* allowed options have bpw ≥ floor_bpw (default 0) */
    double ceil_bpw;     /* … and bpw ≤ ceil_bpw (default +inf) */
    int n_opt, cap_opt;
    solve_option *opt;   /* [n_opt], in insertion order, names unique within the item */
} solve_item;

typedef struct {
    char *name;          /* owned */
    double floor_bpw, ceil_bpw;
} solve_class;

typedef struct {
    int n_sets;                 /* S ≥ 1: distortion columns per option */
    int n_items, cap_items;
    solve_item *items;          /* [n_items], in insertion order */
    int n_classes, cap_classes;
    solve_class *classes;       /* [n_classes] */
    int *name_idx;              /* private: open-addressing index of item names (item + 1, 0
                                 * empty), [name_cap] a power of two; kept by add_item */
    int name_cap;
    int64_t n_weights;          /* Σ items[].n, kept by add_item, ≤ SOLVE_MAX_WEIGHTS */
} solve_problem;

/* Total weights a problem may hold: 2^53, so that Σ n stays exact in a double and never
 * overflows int64 however many items a file lists. */
#define SOLVE_MAX_WEIGHTS ((int64_t)1 << 53)

/* New empty problem with n_sets ≥ 1 distortion columns. *out owned by the caller, free with
 * solve_problem_free. */
int solve_problem_new(int n_sets, solve_problem **out, vl_err *err);
void solve_problem_free(solve_problem *p);

/* Add an item (n > 0, name unique, the total staying ≤ SOLVE_MAX_WEIGHTS: VL_ERANGE otherwise);
 * *idx (may be NULL) gets its index. */
int solve_problem_add_item(solve_problem *p, const char *name, int64_t n, int *idx, vl_err *err);
/* Find an item by name: index or −1 (hashed, O(1) expected). */
int solve_problem_find_item(const solve_problem *p, const char *name);
/* Add an option to item `item`: bpw ≥ 0 finite, dist[n_sets] ≥ 0 finite (copied), name unique
 * within the item. */
int solve_problem_add_option(solve_problem *p, int item, const char *name, double bpw,
                             const double *dist, vl_err *err);
/* Put an item in a class (created on first use, bounds 0..+inf). */
int solve_problem_set_class(solve_problem *p, int item, const char *cls, vl_err *err);
/* Per-class bpw bounds (creates the class if needed); floor ≤ ceil. */
int solve_problem_class_bounds(solve_problem *p, const char *cls, double floor_bpw,
                               double ceil_bpw, vl_err *err);
/* Per-item bpw bounds; floor ≤ ceil. */
int solve_problem_item_bounds(solve_problem *p, int item, double floor_bpw, double ceil_bpw,
                              vl_err *err);
/* Pin item to its option named `opt` (VL_ENOTFOUND if it has none). */
int solve_problem_pin(solve_problem *p, int item, const char *opt, vl_err *err);

/* Σ n over the items. */
int64_t solve_problem_weights(const solve_problem *p);

/* Read a problem file (plain text, one option per line):
 *     item n_weights option_name bits_per_weight distortion [distortion_set2 ...]
 * '#' starts a comment, blank lines are ignored, fields are separated by blanks. A line with
 * only `item n_weights` declares an item (it must get options later). Items keep their
 * first-appearance order, options their line order. Errors are "FILE:LINE: problem" (bad
 * number, negative value, n_weights differing for one item, a different number of distortion
 * columns than the first option line, duplicate option, empty file, item with no options).
 * *out owned by the caller. */
int solve_problem_read(const char *path, solve_problem **out, vl_err *err);

/* ---- solving ---- */

typedef enum { SOLVE_EXACT, SOLVE_LAGRANGE, SOLVE_UNIFORM, SOLVE_RULES, SOLVE_RANDOM }
    solve_method;
typedef enum { SOLVE_OBJ_SUM, SOLVE_OBJ_WEIGHTED, SOLVE_OBJ_MINIMAX, SOLVE_OBJ_MINIMAX_RAW }
    solve_objective;

typedef struct {
    solve_method method;
    solve_objective objective;
    double target_bpw;        /* budget = target_bpw · Σ n; > 0 */
    int set;                  /* SUM: which distortion column (0-based) */
    const double *weights;    /* WEIGHTED: [n_sets], ≥ 0, not all 0; borrowed during the call */
    long node_limit;          /* EXACT: branch-and-bound nodes before giving up (best + gap) */
    double rel_gap;           /* EXACT: stop proving once gap ≤ rel_gap·objective (0: exact);
                               * MINIMAX rounds (both solvers) also stop at that gap */
    int mw_iters;             /* MINIMAX: multiplicative-weights rounds */
    uint64_t seed;            /* RANDOM: the draw's seed (default 1) */
} solve_params;

/* method EXACT, objective SUM, set 0, target 2.0, node_limit 2e6, rel_gap 0, mw_iters 200,
 * seed 1. */
solve_params solve_params_defaults(void);

/* Parse names used on command lines: "exact|lagrange|uniform|rules|random",
 * "sum|weighted|minimax|minimax-raw".
 * Return 0 and set *out, or VL_EARG. */
int solve_method_parse(const char *s, solve_method *out, vl_err *err);
int solve_objective_parse(const char *s, solve_objective *out, vl_err *err);
const char *solve_method_name(solve_method m);
const char *solve_objective_name(solve_objective o);

typedef struct {
    int n_items, n_sets;
    int *choice;          /* [n_items] chosen option index into items[i].opt, owned */
    double bits_used;     /* Σ n_i·bpw */
    double budget;        /* target_bpw · Σ n */
    int64_t n_weights;    /* Σ n */
    double objective;     /* the minimized value for the objective asked */
    double *dist_set;     /* [n_sets] Σ_i d_i[s] of the chosen options, owned */
    double lower_bound;   /* proven lower bound on the optimum (−inf for baselines) */
    double gap;           /* objective − lower_bound (0: proven optimal; +inf: none) */
    long nodes;           /* EXACT: nodes visited */
    int node_limited;     /* EXACT: stopped at node_limit, not proven optimal (gap > 0) */
    solve_method method;
    solve_objective objective_kind;
    double *set_opt;      /* MINIMAX: [n_sets] D_s*, each set's own optimum (owned); else NULL */
} solve_result;

/* Solve p under par. On success *out is filled (caller frees with solve_result_free). Errors:
 * VL_EARG (bad params), VL_ECONFIG (an item without allowed options), VL_ERANGE (infeasible:
 * the cheapest allowed assignment exceeds the budget, or no uniform option fits). */
int solve_run(const solve_problem *p, const solve_params *par, solve_result *out, vl_err *err);
void solve_result_free(solve_result *r);

/* Plain-text table: one line per item (item, option, bpw, distortion per set), then totals
 * (bits used, budget, objective, per-set distortion, lower bound and gap). */
void solve_result_print(FILE *f, const solve_problem *p, const solve_result *r);
/* One line per item: REGEX=OPTION, REGEX the item name with regex metacharacters escaped
 * (e.g. blk\.3\.ffn_down_exps=q2_K), usable as llama.cpp --tensor-type NAME=TYPE arguments
 * when items are named after GGUF tensors and options after ggml types. */
void solve_result_export_regex(FILE *f, const solve_problem *p, const solve_result *r);

#endif
