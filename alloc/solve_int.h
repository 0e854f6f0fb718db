/* alloc/solve_int.h — private pieces shared by the solver files (not a public API).
 *
 * solve_inst is the problem reduced to what a solver needs: per item the allowed options only
 * (bits = n·bpw, a distortion vector of S dims), where S = 1 for SUM/WEIGHTED (the distortion
 * already scalarised) and S = n_sets for MINIMAX (each column scaled by 1/D_s*) and MINIMAX_RAW. Every solver minimises max_s D_s, which for
 * S = 1 is the scalar objective. solve_lp is the LP (convex hull) relaxation for one weighting w
 * of the S dims: per item the lower convex hull of (bits, w·d), and all hull segments sorted by
 * slope, so that the LP optimum is "take segments in slope order until the budget ends".
 */
#ifndef VL_SOLVE_INT_H
#define VL_SOLVE_INT_H

#include "solve.h"

typedef struct {
    const solve_problem *p;
    int n;          /* items */
    int S;          /* distortion dims */
    int tot;        /* allowed options over all items */
    int *off;       /* [n+1] item i's options are off[i] .. off[i+1]−1 */
    int *orig;      /* [tot] index into p->items[i].opt */
    double *bits;   /* [tot] n_i·bpw */
    double *d;      /* [tot·S] distortion vectors */
    double budget;  /* target_bpw · Σ n */
    double cap;     /* budget plus the rounding slack: "fits" means bits ≤ cap */
} solve_inst;

/* scale (MINIMAX objectives; NULL: 1): set s's column is multiplied by scale[s]. */
int solve_inst_build(const solve_problem *p, const solve_params *par, const double *scale,
                     solve_inst *in, vl_err *err);
void solve_inst_deinit(solve_inst *in);

/* Bits and D[S] of a choice (global option indices, one per item). */
void solve_eval(const solve_inst *in, const int *choice, double *D, double *bits);
/* max_s D[s] */
double solve_vmax(const double *D, int S);
/* Single-item moves to any option that fits and lowers max_s D, until none does (or a few
 * passes). Updates choice, D and *bits. */
void solve_improve(const solve_inst *in, int *choice, double *D, double *bits);

typedef struct {
    int pos;       /* the item's position in the caller's order (its rank) */
    int item;
    int v;         /* the segment's index along its item's hull */
    double db, dc; /* bits added, cost added (dc < 0) */
    double slope;  /* dc/db */
} solve_seg;

typedef struct {
    int n;              /* positions (items in the order) */
    int *hoff;          /* [n_items+1] hull vertices of item i: hv[hoff[i] .. hoff[i+1]−1] */
    int *hv;            /* global option indices, bits ascending, cost strictly descending */
    double *sufb;       /* [n+1] Σ over positions ≥ k of the min-bits vertex's bits */
    double *sufc;       /* [n+1] … and its cost */
    solve_seg *seg;     /* [nseg] by slope ascending (best gain per bit first) */
    int nseg;
} solve_lp;

/* Build the relaxation for cost w·d over the options with alive[o] != 0 (alive NULL: all).
 * rank[i] is item i's position (< 0: left out), NULL: identity. Each included item must have
 * an alive option. */
int solve_lp_build(solve_lp *lp, const solve_inst *in, const double *w,
                   const unsigned char *alive, const int *rank, int npos, vl_err *err);
void solve_lp_deinit(solve_lp *lp);
/* LP optimum over positions ≥ depth with capl bits: +inf if even the min-bits vertices do not
 * fit. *mu (may be NULL) gets the multiplier (−slope of the fractional segment, 0 if none). */
double solve_lp_eval(const solve_lp *lp, int depth, double capl, double *mu);
/* The Lagrangian greedy on lp (built with rank NULL): writes choice (global option indices),
 * returns 0 or VL_ERANGE if the min-bits vertices exceed the cap; *lp_val gets the LP bound. */
int solve_greedy(const solve_inst *in, const solve_lp *lp, int *choice, double *lp_val);

/* Solvers on an instance; on success choice, D and bits describe the answer and lb is a proven
 * lower bound on min max_s D_s (−inf if none). */
typedef struct {
    int *choice;    /* [n] global option indices */
    double *D;      /* [S] */
    double bits;
    double lb;
    long nodes;
    int node_limited; /* EXACT: the search stopped at node_limit with nodes unexplored */
} solve_sol;

int solve_sol_init(solve_sol *s, const solve_inst *in, vl_err *err);
void solve_sol_deinit(solve_sol *s);

/* LAGRANGE; lambda (may be NULL, [S]) gets the best set weights found (MINIMAX). */
int solve_lagrange(const solve_inst *in, const solve_params *par, solve_sol *s, double *lambda,
                   vl_err *err);
int solve_exact(const solve_inst *in, const solve_params *par, solve_sol *s, vl_err *err);
int solve_uniform(const solve_inst *in, solve_sol *s, vl_err *err);
int solve_rules(const solve_inst *in, solve_sol *s, vl_err *err);
int solve_random(const solve_inst *in, uint64_t seed, solve_sol *s, vl_err *err);

#endif
