/* alloc/solve_core.c — the reduced instance, convex hulls, the LP relaxation and the greedy.
 *
 * LP relaxation of the multiple-choice knapsack (Sinha & Zoltners 1979): per item replace the
 * options by the lower convex hull of (bits, cost); start every item at its fewest-bits vertex
 * and buy hull segments in order of cost decrease per bit. Taking whole segments until one does
 * not fit and a fraction of that one is the LP optimum, hence a lower bound on the integer
 * optimum. The greedy keeps walking: it skips that item from then on (its later segments need
 * the skipped one) and takes any other segment that still fits.
 */
#include "solve_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- the instance */

static int check_params(const solve_problem *p, const solve_params *par, vl_err *err)
{
    if (!isfinite(par->target_bpw) || par->target_bpw <= 0)
        return vl_errf(err, VL_EARG, "solve: target bpw %g must be > 0", par->target_bpw);
    if (par->objective == SOLVE_OBJ_SUM && (par->set < 0 || par->set >= p->n_sets))
        return vl_errf(err, VL_EARG, "solve: set %d out of range (the problem has %d)", par->set,
                       p->n_sets);
    if (par->objective == SOLVE_OBJ_WEIGHTED) {
        double sum = 0;
        if (!par->weights)
            return vl_errf(err, VL_EARG, "solve: objective weighted needs weights");
        for (int s = 0; s < p->n_sets; s++) {
            if (!isfinite(par->weights[s]) || par->weights[s] < 0)
                return vl_errf(err, VL_EARG, "solve: weight %d (%g) must be ≥ 0", s,
                               par->weights[s]);
            sum += par->weights[s];
        }
        if (sum <= 0)
            return vl_errf(err, VL_EARG, "solve: the set weights are all zero");
    }
    if (p->n_items == 0)
        return vl_errf(err, VL_EARG, "solve: the problem has no items");
    return 0;
}

/* Item i's bpw bounds: the tighter of its own and its class's. */
static void bounds(const solve_problem *p, int i, double *lo, double *hi)
{
    const solve_item *it = &p->items[i];
    *lo = it->floor_bpw;
    *hi = it->ceil_bpw;
    if (it->cls >= 0) {
        *lo = fmax(*lo, p->classes[it->cls].floor_bpw);
        *hi = fmin(*hi, p->classes[it->cls].ceil_bpw);
    }
}

/* May item i use option j? Pins override the bpw bounds. */
static int allowed(const solve_problem *p, int i, int j)
{
    const solve_item *it = &p->items[i];
    if (it->pin >= 0)
        return j == it->pin;
    double lo, hi;
    bounds(p, i, &lo, &hi);
    return it->opt[j].bpw >= lo && it->opt[j].bpw <= hi;
}

int solve_inst_build(const solve_problem *p, const solve_params *par, const double *scale,
                     solve_inst *in, vl_err *err)
{
    memset(in, 0, sizeof *in);
    int rc = check_params(p, par, err);
    if (rc)
        return rc;
    in->p = p;
    in->n = p->n_items;
    int mm = par->objective == SOLVE_OBJ_MINIMAX || par->objective == SOLVE_OBJ_MINIMAX_RAW;
    in->S = mm ? p->n_sets : 1;
    for (int i = 0; i < p->n_items; i++)
        in->tot += p->items[i].n_opt;
    in->off = vl_malloc((size_t)(in->n + 1) * sizeof *in->off);
    in->orig = vl_malloc((size_t)in->tot * sizeof *in->orig);
    in->bits = vl_malloc((size_t)in->tot * sizeof *in->bits);
    in->d = vl_malloc((size_t)in->tot * in->S * sizeof *in->d);
    if (!in->off || !in->orig || !in->bits || !in->d) {
        solve_inst_deinit(in);
        return vl_errf(err, VL_ENOMEM, "solve: out of memory");
    }
    int64_t nw = solve_problem_weights(p);
    double minbits = 0;
    int o = 0;
    for (int i = 0; i < p->n_items; i++) {
        const solve_item *it = &p->items[i];
        in->off[i] = o;
        double mb = INFINITY;
        for (int j = 0; j < it->n_opt; j++) {
            if (!allowed(p, i, j))
                continue;
            const double *dj = it->opt[j].dist;
            in->orig[o] = j;
            in->bits[o] = (double)it->n * it->opt[j].bpw;
            mb = fmin(mb, in->bits[o]);
            double *dst = &in->d[(size_t)o * in->S];
            if (mm) {
                for (int s = 0; s < in->S; s++)
                    dst[s] = scale ? dj[s] * scale[s] : dj[s];
            } else if (par->objective == SOLVE_OBJ_SUM) {
                dst[0] = dj[par->set];
            } else {
                dst[0] = 0;
                for (int s = 0; s < p->n_sets; s++)
                    dst[0] += par->weights[s] * dj[s];
            }
            o++;
        }
        if (o == in->off[i]) { /* a pin is always allowed: only the bounds can get here */
            double lo, hi;
            bounds(p, i, &lo, &hi);
            solve_inst_deinit(in);
            if (it->n_opt == 0)
                return vl_errf(err, VL_ECONFIG, "solve: item \"%s\" has no options", it->name);
            return vl_errf(err, VL_ECONFIG, "solve: item \"%s\": no option with bpw in [%g, %g]",
                           it->name, lo, hi);
        }
        minbits += mb;
    }
    in->off[in->n] = o;
    in->tot = o;
    in->budget = par->target_bpw * (double)nw;
    in->cap = in->budget * (1 + 1e-12);
    if (minbits > in->cap) {
        double b = in->budget;
        solve_inst_deinit(in);
        return vl_errf(err, VL_ERANGE,
                       "solve: infeasible: target %g bpw is a budget of %.0f bits, but the "
                       "cheapest allowed assignment needs %.0f bits (%.6g bpw)",
                       par->target_bpw, b, minbits, minbits / (double)nw);
    }
    return 0;
}

void solve_inst_deinit(solve_inst *in)
{
    vl_free(in->off);
    vl_free(in->orig);
    vl_free(in->bits);
    vl_free(in->d);
    memset(in, 0, sizeof *in);
}

/* ---------------------------------------------------------------- evaluation and local moves */

void solve_eval(const solve_inst *in, const int *choice, double *D, double *bits)
{
    *bits = 0;
    for (int s = 0; s < in->S; s++)
        D[s] = 0;
    for (int i = 0; i < in->n; i++) {
        *bits += in->bits[choice[i]];
        for (int s = 0; s < in->S; s++)
            D[s] += in->d[(size_t)choice[i] * in->S + s];
    }
}

double solve_vmax(const double *D, int S)
{
    double m = D[0];
    for (int s = 1; s < S; s++)
        m = fmax(m, D[s]);
    return m;
}

void solve_improve(const solve_inst *in, int *choice, double *D, double *bits)
{
    const int S = in->S;
    /* a few passes: each move strictly lowers the objective, so this cannot cycle; the limit
     * only bounds the time on big instances */
    for (int pass = 0; pass < 8; pass++) {
        int moved = 0;
        for (int i = 0; i < in->n; i++) {
            int cur = choice[i], best = cur;
            double bestv = solve_vmax(D, S);
            const double *dc = &in->d[(size_t)cur * S];
            for (int o = in->off[i]; o < in->off[i + 1]; o++) {
                if (o == cur || *bits - in->bits[cur] + in->bits[o] > in->cap)
                    continue;
                const double *dn = &in->d[(size_t)o * S];
                double v = -INFINITY;
                for (int s = 0; s < S; s++)
                    v = fmax(v, D[s] - dc[s] + dn[s]);
                if (v < bestv) {
                    bestv = v;
                    best = o;
                }
            }
            if (best != cur) {
                for (int s = 0; s < S; s++)
                    D[s] += in->d[(size_t)best * S + s] - dc[s];
                *bits += in->bits[best] - in->bits[cur];
                choice[i] = best;
                moved = 1;
            }
        }
        if (!moved)
            break;
    }
    solve_eval(in, choice, D, bits); /* exact sums, not the incremental ones */
}

/* ---------------------------------------------------------------- hulls and the LP */

static double wcost(const solve_inst *in, const double *w, int o)
{
    double c = 0;
    for (int s = 0; s < in->S; s++)
        c += w[s] * in->d[(size_t)o * in->S + s];
    return c;
}

/* Sort key of a segment: 16 bytes instead of the 40 of solve_seg, because on big instances
 * (~500k segments, sorted once per multiplicative-weights round) moving the structs was most of
 * the time. Order: slope, then position, then the segment's index, which within one item is
 * its order along the hull (an item's segments are stored contiguously, hull order). */
typedef struct {
    double slope;
    int pos, idx;
} seg_key;

static int seg_key_cmp(const void *a, const void *b)
{
    const seg_key *x = a, *y = b;
    if (x->slope != y->slope)
        return x->slope < y->slope ? -1 : 1;
    if (x->pos != y->pos)
        return x->pos < y->pos ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* lp->seg by (slope, pos, v) ascending. */
static int sort_segs(solve_lp *lp, vl_err *err)
{
    seg_key *key = vl_malloc(((size_t)lp->nseg + 1) * sizeof *key);
    solve_seg *out = vl_malloc(((size_t)lp->nseg + 1) * sizeof *out);
    if (!key || !out) {
        vl_free(key);
        vl_free(out);
        solve_lp_deinit(lp);
        return vl_errf(err, VL_ENOMEM, "solve: out of memory");
    }
    for (int k = 0; k < lp->nseg; k++)
        key[k] = (seg_key){lp->seg[k].slope, lp->seg[k].pos, k};
    qsort(key, (size_t)lp->nseg, sizeof *key, seg_key_cmp);
    for (int k = 0; k < lp->nseg; k++)
        out[k] = lp->seg[key[k].idx];
    vl_free(key);
    vl_free(lp->seg);
    lp->seg = out;
    return 0;
}

/* Lower convex hull of item i's alive options: writes global indices into hv (bits ascending,
 * cost strictly descending, slopes strictly ascending), returns the count. c is scratch cost
 * per local option. */
static int hull(const solve_inst *in, int i, const double *w, const unsigned char *alive,
                int *hv, double *c)
{
    int m = 0;
    for (int o = in->off[i]; o < in->off[i + 1]; o++) {
        if (alive && !alive[o])
            continue;
        double co = wcost(in, w, o);
        /* insertion sort by (bits, cost): items have a few dozen options at most */
        int k = m++;
        while (k > 0 && (in->bits[hv[k - 1]] > in->bits[o] ||
                         (in->bits[hv[k - 1]] == in->bits[o] && c[k - 1] > co))) {
            hv[k] = hv[k - 1];
            c[k] = c[k - 1];
            k--;
        }
        hv[k] = o;
        c[k] = co;
    }
    int h = 0;
    for (int k = 0; k < m; k++) {
        if (h > 0 && c[k] >= c[h - 1])
            continue; /* dominated: no fewer bits and no lower cost */
        /* pop while the last vertex is not strictly below the chord (slopes must increase) */
        while (h >= 2) {
            double b0 = in->bits[hv[h - 2]], b1 = in->bits[hv[h - 1]], b2 = in->bits[hv[k]];
            if ((c[h - 1] - c[h - 2]) * (b2 - b1) < (c[k] - c[h - 1]) * (b1 - b0))
                break;
            h--;
        }
        hv[h] = hv[k];
        c[h] = c[k];
        h++;
    }
    return h;
}

int solve_lp_build(solve_lp *lp, const solve_inst *in, const double *w,
                   const unsigned char *alive, const int *rank, int npos, vl_err *err)
{
    memset(lp, 0, sizeof *lp);
    lp->n = rank ? npos : in->n;
    int maxm = 0;
    for (int i = 0; i < in->n; i++)
        maxm = in->off[i + 1] - in->off[i] > maxm ? in->off[i + 1] - in->off[i] : maxm;
    lp->hoff = vl_calloc((size_t)in->n + 1, sizeof *lp->hoff);
    lp->hv = vl_malloc(((size_t)in->tot + 1) * sizeof *lp->hv);
    lp->sufb = vl_calloc((size_t)lp->n + 1, sizeof *lp->sufb);
    lp->sufc = vl_calloc((size_t)lp->n + 1, sizeof *lp->sufc);
    lp->seg = vl_malloc(((size_t)in->tot + 1) * sizeof *lp->seg);
    double *c = vl_malloc(((size_t)maxm + 1) * sizeof *c);
    if (!lp->hoff || !lp->hv || !lp->sufb || !lp->sufc || !lp->seg || !c) {
        vl_free(c);
        solve_lp_deinit(lp);
        return vl_errf(err, VL_ENOMEM, "solve: out of memory");
    }
    int h = 0;
    for (int i = 0; i < in->n; i++) {
        lp->hoff[i] = h;
        int pos = rank ? rank[i] : i;
        if (pos < 0)
            continue;
        int m = hull(in, i, w, alive, lp->hv + h, c);
        VL_ASSERT(m > 0);
        lp->sufb[pos] = in->bits[lp->hv[h]];
        lp->sufc[pos] = c[0];
        for (int k = 1; k < m; k++) {
            solve_seg *sg = &lp->seg[lp->nseg++];
            sg->pos = pos;
            sg->item = i;
            sg->v = k - 1;
            sg->db = in->bits[lp->hv[h + k]] - in->bits[lp->hv[h + k - 1]];
            sg->dc = c[k] - c[k - 1];
            sg->slope = sg->dc / sg->db;
        }
        h += m;
    }
    lp->hoff[in->n] = h;
    vl_free(c);
    for (int k = lp->n - 1; k >= 0; k--) { /* per-position values → suffix sums */
        lp->sufb[k] += lp->sufb[k + 1];
        lp->sufc[k] += lp->sufc[k + 1];
    }
    return sort_segs(lp, err);
}

void solve_lp_deinit(solve_lp *lp)
{
    vl_free(lp->hoff);
    vl_free(lp->hv);
    vl_free(lp->sufb);
    vl_free(lp->sufc);
    vl_free(lp->seg);
    memset(lp, 0, sizeof *lp);
}

double solve_lp_eval(const solve_lp *lp, int depth, double capl, double *mu)
{
    double r = capl - lp->sufb[depth], val = lp->sufc[depth];
    if (mu)
        *mu = 0;
    if (r < 0)
        return INFINITY;
    for (int k = 0; k < lp->nseg; k++) {
        const solve_seg *sg = &lp->seg[k];
        if (sg->pos < depth)
            continue;
        if (sg->db <= r) {
            r -= sg->db;
            val += sg->dc;
        } else {
            if (mu)
                *mu = -sg->slope;
            return val + sg->dc * (r / sg->db);
        }
    }
    return val;
}

int solve_greedy(const solve_inst *in, const solve_lp *lp, int *choice, double *lp_val)
{
    int *hp = vl_calloc((size_t)in->n, sizeof *hp);
    unsigned char *blocked = vl_calloc((size_t)in->n, 1);
    if (!hp || !blocked) {
        vl_free(hp);
        vl_free(blocked);
        return VL_ENOMEM;
    }
    double used = lp->sufb[0], cost = lp->sufc[0];
    int have_lp = 0, rc = used > in->cap ? VL_ERANGE : 0;
    for (int k = 0; !rc && k < lp->nseg; k++) {
        const solve_seg *sg = &lp->seg[k];
        if (blocked[sg->item])
            continue;
        if (used + sg->db <= in->cap) {
            used += sg->db;
            cost += sg->dc;
            hp[sg->item]++;
        } else {
            if (!have_lp)
                *lp_val = cost + sg->dc * ((in->cap - used) / sg->db);
            have_lp = 1;
            blocked[sg->item] = 1;
        }
    }
    if (!have_lp)
        *lp_val = cost; /* every segment fitted: the LP optimum is integral */
    for (int i = 0; i < in->n; i++)
        choice[i] = lp->hv[lp->hoff[i] + hp[i]];
    vl_free(hp);
    vl_free(blocked);
    return rc;
}

/* ---------------------------------------------------------------- solutions */

int solve_sol_init(solve_sol *s, const solve_inst *in, vl_err *err)
{
    memset(s, 0, sizeof *s);
    s->choice = vl_malloc((size_t)in->n * sizeof *s->choice);
    s->D = vl_calloc((size_t)in->S, sizeof *s->D);
    s->lb = -INFINITY;
    if (!s->choice || !s->D) {
        solve_sol_deinit(s);
        return vl_errf(err, VL_ENOMEM, "solve: out of memory");
    }
    return 0;
}

void solve_sol_deinit(solve_sol *s)
{
    vl_free(s->choice);
    vl_free(s->D);
    memset(s, 0, sizeof *s);
}
