/* alloc/solve_exact.c — exact multiple-choice knapsack: reduced-cost elimination, then branch
 * and bound with LP (convex hull) bounds, on the real bit costs (no discretised budget).
 *
 * 1. The Lagrangian solver gives an incumbent (upper bound UB).
 * 2. Bound weightings: the scalar objective itself (S = 1), or for MINIMAX every set alone
 *    (e_s) plus the best set weighting λ the multiplicative-weights rounds found. For any
 *    weighting w in the simplex, w·D ≤ max_s D_s, so a lower bound on min w·D is one on the
 *    minimax objective; the node bound is the max over the weightings.
 * 3. Reduced-cost elimination (the classical MCKP reduction, e.g. Pisinger 1995): with the LP
 *    multiplier μ of a weighting, L(μ) = Σ_i min_j (c_ij + μ b_ij) − μ·cap is a lower bound,
 *    and any solution using option j of item i costs at least L(μ) + r_ij, where
 *    r_ij = c_ij + μ b_ij − min_j' (c_ij' + μ b_ij'). Options with L + r_ij ≥ UB cannot lead
 *    to a better solution and are dropped. Items left with one option are fixed.
 * 4. Depth-first branch and bound over the remaining items (those with the widest cost spread
 *    first); at each node the children are ranked by their bound (fixed part + LP of the free
 *    items on the remaining budget) and explored best first; a child whose bound is ≥ UB is
 *    pruned with all after it.
 * With node_limit reached, unexplored nodes' bounds are kept: the proven lower bound is the
 * minimum of those and UB, so the reported gap is honest. rel_gap > 0 prunes nodes that could
 * improve UB by less than rel_gap·UB (then the gap reported is at most that), and no search
 * starts when the Lagrangian or root bound already proves gap ≤ rel_gap·UB: on big instances
 * (tens of thousands of items) the LP bound is that tight and the search would be slow, each
 * node costing a pass over the core's hull segments.
 */
#include "solve_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const solve_inst *in;
    int S, K;             /* distortion dims, bound weightings */
    double *w;            /* [K·S] the weightings */
    double *c;            /* [K·tot] w_k · d_o */
    solve_lp *lp;         /* [K] relaxations over the core items, by position */
    unsigned char *alive; /* [tot] */
    int ncore, maxm;
    int *ord;             /* [ncore] position → item */
    double *Dst;          /* [(ncore+1)·S] D of the fixed part at each depth */
    double *wdst;         /* [(ncore+1)·K] the weightings applied to Dst, per depth */
    int *cur, *best;      /* [ncore] option chosen at each position; the best leaf's */
    int *kid_o;           /* [ncore·maxm] children per depth */
    double *kid_b;
    double ub, rel_gap, abandoned;
    double fixed_bits;    /* bits of the items reduction fixed */
    long nodes, limit;
    int improved;
} bb;

static double tol(const bb *b) { return b->rel_gap * fabs(b->ub); }

static void dfs(bb *b, int depth, double used, double bound)
{
    if (b->nodes >= b->limit) {
        b->abandoned = fmin(b->abandoned, bound);
        return;
    }
    b->nodes++;
    const solve_inst *in = b->in;
    const int S = b->S;
    double *D = &b->Dst[(size_t)depth * S];
    if (depth == b->ncore) {
        double v = solve_vmax(D, S);
        if (v < b->ub) {
            b->ub = v;
            memcpy(b->best, b->cur, (size_t)b->ncore * sizeof *b->cur);
            b->improved = 1;
        }
        return;
    }
    double *wd = &b->wdst[(size_t)depth * b->K]; /* off the stack: the recursion is deep */
    for (int k = 0; k < b->K; k++) {
        wd[k] = 0;
        for (int s = 0; s < S; s++)
            wd[k] += b->w[(size_t)k * S + s] * D[s];
    }
    int i = b->ord[depth], nk = 0;
    int *ko = &b->kid_o[(size_t)depth * b->maxm];
    double *kb = &b->kid_b[(size_t)depth * b->maxm];
    for (int o = in->off[i]; o < in->off[i + 1]; o++) {
        double nu = used + in->bits[o];
        if (!b->alive[o] || nu > in->cap)
            continue;
        double bd = -INFINITY;
        for (int k = 0; k < b->K; k++)
            bd = fmax(bd, wd[k] + b->c[(size_t)k * in->tot + o] +
                              solve_lp_eval(&b->lp[k], depth + 1, in->cap - nu, NULL));
        int q = nk++; /* insertion sort by bound: a handful of children */
        while (q > 0 && kb[q - 1] > bd) {
            ko[q] = ko[q - 1];
            kb[q] = kb[q - 1];
            q--;
        }
        ko[q] = o;
        kb[q] = bd;
    }
    for (int q = 0; q < nk; q++) {
        if (kb[q] >= b->ub - tol(b))
            break;
        int o = ko[q];
        double *Dn = D + S;
        for (int s = 0; s < S; s++)
            Dn[s] = D[s] + in->d[(size_t)o * S + s];
        b->cur[depth] = o;
        dfs(b, depth + 1, used + in->bits[o], kb[q]);
    }
}

static void bb_free(bb *b)
{
    if (b->lp)
        for (int k = 0; k < b->K; k++)
            solve_lp_deinit(&b->lp[k]);
    vl_free(b->lp);
    vl_free(b->w);
    vl_free(b->c);
    vl_free(b->alive);
    vl_free(b->ord);
    vl_free(b->Dst);
    vl_free(b->wdst);
    vl_free(b->cur);
    vl_free(b->best);
    vl_free(b->kid_o);
    vl_free(b->kid_b);
}

/* min over item i's alive options of c_o + μ·bits_o */
static double priced_min(const bb *b, const double *c, double mu, int i)
{
    double m = INFINITY;
    for (int o = b->in->off[i]; o < b->in->off[i + 1]; o++)
        if (b->alive[o])
            m = fmin(m, c[o] + mu * b->in->bits[o]);
    return m;
}

/* Step 3: drop options whose reduced cost proves them useless; *root_lb gets the LP root
 * bound. Stops early with *dead = 1 when an item has no option left (UB is then optimal). */
static int eliminate(bb *b, double *root_lb, int *dead, vl_err *err)
{
    const solve_inst *in = b->in;
    *root_lb = -INFINITY;
    *dead = 0;
    for (int k = 0; k < b->K && !*dead; k++) {
        solve_lp lp;
        double mu;
        int rc = solve_lp_build(&lp, in, &b->w[(size_t)k * b->S], b->alive, NULL, 0, err);
        if (rc)
            return rc;
        *root_lb = fmax(*root_lb, solve_lp_eval(&lp, 0, in->cap, &mu));
        solve_lp_deinit(&lp);
        const double *c = &b->c[(size_t)k * in->tot];
        double L = -mu * in->cap;
        for (int i = 0; i < in->n; i++)
            L += priced_min(b, c, mu, i);
        for (int i = 0; i < in->n; i++) {
            double m = priced_min(b, c, mu, i);
            int left = 0;
            for (int o = in->off[i]; o < in->off[i + 1]; o++) {
                if (b->alive[o] && L + (c[o] + mu * in->bits[o] - m) >= b->ub - tol(b))
                    b->alive[o] = 0;
                left += b->alive[o];
            }
            *dead |= left == 0;
        }
    }
    return 0;
}

typedef struct {
    double spread;
    int item;
} spread_key;

/* Spread descending, ties by item index (a total order: qsort is not stable). */
static int spread_cmp(const void *a, const void *b)
{
    const spread_key *x = a, *y = b;
    if (x->spread != y->spread)
        return x->spread > y->spread ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

/* Steps 3–4 after the incumbent is known. Sets *done when no better solution can exist. */
static int setup(bb *b, double *root_lb, int *done, vl_err *err)
{
    const solve_inst *in = b->in;
    int rc = eliminate(b, root_lb, done, err);
    if (rc || *done)
        return rc;
    double fixed_bits = 0;
    int *rank = vl_malloc((size_t)in->n * sizeof *rank);
    double *spread = vl_malloc((size_t)in->n * sizeof *spread);
    if (!rank || !spread) {
        vl_free(rank);
        vl_free(spread);
        return vl_errf(err, VL_ENOMEM, "solve: out of memory");
    }
    b->ncore = 0;
    b->maxm = 1;
    for (int s = 0; s < b->S; s++)
        b->Dst[s] = 0;
    const double *cl = &b->c[(size_t)(b->K - 1) * in->tot]; /* λ (or the scalar) costs */
    for (int i = 0; i < in->n && !*done; i++) {
        int na = 0, last = -1;
        double lo = INFINITY, hi = -INFINITY;
        for (int o = in->off[i]; o < in->off[i + 1]; o++)
            if (b->alive[o]) {
                na++;
                last = o;
                lo = fmin(lo, cl[o]);
                hi = fmax(hi, cl[o]);
            }
        rank[i] = -1;
        if (na == 0) {
            *done = 1; /* every option of this item is proven no better than UB */
        } else if (na == 1) {
            fixed_bits += in->bits[last];
            for (int s = 0; s < b->S; s++)
                b->Dst[s] += in->d[(size_t)last * b->S + s];
        } else {
            b->ord[b->ncore++] = i;
            spread[i] = hi - lo;
            b->maxm = na > b->maxm ? na : b->maxm;
        }
    }
    if (!*done && fixed_bits > in->cap)
        *done = 1;
    b->fixed_bits = fixed_bits;
    /* widest spread first: deciding those early tightens the bounds most; qsort because a big
     * instance (tens of thousands of items) can leave a big core */
    spread_key *key = vl_malloc(((size_t)b->ncore + 1) * sizeof *key);
    if (!key) {
        vl_free(rank);
        vl_free(spread);
        return vl_errf(err, VL_ENOMEM, "solve: out of memory");
    }
    for (int q = 0; q < b->ncore; q++)
        key[q] = (spread_key){spread[b->ord[q]], b->ord[q]};
    qsort(key, (size_t)b->ncore, sizeof *key, spread_cmp);
    for (int q = 0; q < b->ncore; q++)
        b->ord[q] = key[q].item;
    vl_free(key);
    for (int q = 0; q < b->ncore; q++)
        rank[b->ord[q]] = q;
    vl_free(spread);
    b->kid_o = vl_malloc(((size_t)b->ncore * b->maxm + 1) * sizeof *b->kid_o);
    b->kid_b = vl_malloc(((size_t)b->ncore * b->maxm + 1) * sizeof *b->kid_b);
    b->lp = vl_calloc((size_t)b->K, sizeof *b->lp);
    if (!b->kid_o || !b->kid_b || !b->lp) {
        vl_free(rank);
        return vl_errf(err, VL_ENOMEM, "solve: out of memory");
    }
    for (int k = 0; k < b->K && !*done && !rc; k++)
        rc = solve_lp_build(&b->lp[k], in, &b->w[(size_t)k * b->S], b->alive, rank, b->ncore,
                            err);
    vl_free(rank);
    return rc;
}

int solve_exact(const solve_inst *in, const solve_params *par, solve_sol *s, vl_err *err)
{
    const int S = in->S, K = S == 1 ? 1 : S + 1;
    bb b = {.in = in, .S = S, .K = K, .rel_gap = par->rel_gap > 0 ? par->rel_gap : 0,
            .limit = par->node_limit > 0 ? par->node_limit : 1, .abandoned = INFINITY};
    b.w = vl_calloc((size_t)K * S, sizeof *b.w);
    b.c = vl_malloc(((size_t)K * in->tot + 1) * sizeof *b.c);
    b.alive = vl_malloc((size_t)in->tot + 1);
    b.ord = vl_malloc(((size_t)in->n + 1) * sizeof *b.ord);
    b.Dst = vl_calloc(((size_t)in->n + 1) * S, sizeof *b.Dst);
    b.wdst = vl_malloc(((size_t)in->n + 1) * K * sizeof *b.wdst);
    b.cur = vl_malloc(((size_t)in->n + 1) * sizeof *b.cur);
    b.best = vl_malloc(((size_t)in->n + 1) * sizeof *b.best);
    int rc = 0;
    if (!b.w || !b.c || !b.alive || !b.ord || !b.Dst || !b.wdst || !b.cur || !b.best) {
        rc = vl_errf(err, VL_ENOMEM, "solve: out of memory");
        goto done;
    }
    /* the last weighting is λ (or 1 for a scalar objective): it also ranks the items */
    if ((rc = solve_lagrange(in, par, s, &b.w[(size_t)(K - 1) * S], err)))
        goto done;
    for (int k = 0; k < K - 1; k++)
        b.w[(size_t)k * S + k] = 1;
    for (int k = 0; k < K; k++)
        for (int o = 0; o < in->tot; o++) {
            double v = 0;
            for (int q = 0; q < S; q++)
                v += b.w[(size_t)k * S + q] * in->d[(size_t)o * S + q];
            b.c[(size_t)k * in->tot + o] = v;
        }
    memset(b.alive, 1, (size_t)in->tot);
    b.ub = solve_vmax(s->D, S);
    double root_lb;
    int finished;
    if (b.ub - s->lb > tol(&b)) {
        if ((rc = setup(&b, &root_lb, &finished, err)))
            goto done;
        s->lb = fmax(s->lb, root_lb);
        if (!finished && b.ub - s->lb > tol(&b)) /* the root bound may already suffice */
            dfs(&b, 0, b.fixed_bits, s->lb);
    }
    if (b.improved) {
        for (int i = 0; i < in->n; i++) /* fixed items: their one alive option */
            for (int o = in->off[i]; o < in->off[i + 1]; o++)
                if (b.alive[o])
                    s->choice[i] = o;
        for (int q = 0; q < b.ncore; q++)
            s->choice[b.ord[q]] = b.best[q];
        solve_eval(in, s->choice, s->D, &s->bits);
    }
    {
        double ub = solve_vmax(s->D, S);
        double proven = fmin(ub - b.rel_gap * fabs(ub), b.abandoned);
        s->lb = fmin(ub, fmax(s->lb, proven));
    }
    s->nodes = b.nodes;
    s->node_limited = isfinite(b.abandoned) && b.nodes >= b.limit;
done:
    bb_free(&b);
    return rc;
}
