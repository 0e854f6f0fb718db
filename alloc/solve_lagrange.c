/* alloc/solve_lagrange.c — the fast solver: LP-hull greedy, and minimax by multiplicative
 * weights over the calibration sets.
 *
 * Scalar objectives (S = 1): one greedy walk over the hull segments (solve_core.c), then
 * single-item moves; the LP value is the lower bound.
 *
 * MINIMAX (S sets): min_x max_s D_s(x) = min_x max_{λ ∈ simplex} Σ_s λ_s D_s(x). For any λ in
 * the simplex the LP relaxation of the λ-weighted problem is ≤ its integer optimum ≤ the
 * minimax optimum (weak duality), so max over the λ tried is a proven lower bound. λ is moved
 * by exponentiated-gradient ascent on that concave dual (the multiplicative-weights method,
 * Arora, Hazan & Kale 2012): the sets the current allocation serves worst get more weight.
 * Each round's allocation is polished by single-item moves on max_s D_s itself, and the best
 * is kept. Guarantee: the answer is feasible and within the reported gap of the optimum; the
 * bound converges to the LP bound of the minimax problem, not to the integer optimum, so the
 * gap is the LP integrality gap plus what the rounds did not close. The exact solver closes it.
 */
#include "solve_int.h"

#include <math.h>
#include <string.h>

int solve_lagrange(const solve_inst *in, const solve_params *par, solve_sol *s, double *lambda,
                   vl_err *err)
{
    const int S = in->S;
    int rounds = S == 1 ? 1 : (par->mw_iters > 0 ? par->mw_iters : 1);
    double *w = vl_malloc((size_t)S * sizeof *w), *D = vl_malloc((size_t)S * sizeof *D);
    int *ch = vl_malloc((size_t)in->n * sizeof *ch);
    int rc = 0;
    if (!w || !D || !ch) {
        rc = vl_errf(err, VL_ENOMEM, "solve: out of memory");
        goto done;
    }
    for (int k = 0; k < S; k++)
        w[k] = 1.0 / S;
    if (lambda)
        memcpy(lambda, w, (size_t)S * sizeof *w);
    double ub = INFINITY;
    s->lb = -INFINITY;
    for (int t = 0; t < rounds; t++) {
        solve_lp lp;
        double lpv = -INFINITY, bits;
        if ((rc = solve_lp_build(&lp, in, w, NULL, NULL, 0, err)))
            goto done;
        rc = solve_greedy(in, &lp, ch, &lpv);
        solve_lp_deinit(&lp);
        if (rc) {
            rc = vl_errf(err, rc, rc == VL_ENOMEM ? "solve: out of memory"
                                                  : "solve: infeasible budget");
            goto done;
        }
        if (lpv > s->lb) {
            s->lb = lpv;
            if (lambda)
                memcpy(lambda, w, (size_t)S * sizeof *w);
        }
        solve_eval(in, ch, D, &bits);
        /* the step direction is the raw greedy's D (a supergradient estimate of the dual at w),
         * taken before polishing */
        double vm = solve_vmax(D, S), eta = 1.0 / sqrt(t + 1.0);
        for (int k = 0; k < S && vm > 0; k++)
            w[k] *= exp(eta * D[k] / vm);
        double z = 0;
        for (int k = 0; k < S; k++)
            z += w[k];
        for (int k = 0; k < S; k++)
            w[k] /= z;
        solve_improve(in, ch, D, &bits);
        double v = solve_vmax(D, S);
        if (v < ub) {
            ub = v;
            memcpy(s->choice, ch, (size_t)in->n * sizeof *ch);
            memcpy(s->D, D, (size_t)S * sizeof *D);
            s->bits = bits;
        }
        if (ub - s->lb <= fmax(1e-12, par->rel_gap) * fabs(ub)) /* close enough: stop */
            break;
    }
    if (s->lb > ub)
        s->lb = ub; /* rounding: the LP value can exceed an optimal integer one by an ulp */
done:
    vl_free(w);
    vl_free(D);
    vl_free(ch);
    return rc;
}
