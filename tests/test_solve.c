/* tests/test_solve.c — bit-allocation solvers against brute force, hand-solved examples, the
 * problem-file parser's errors, and `vbrlab alloc` end to end. */
#define _POSIX_C_SOURCE 200809L
#include "../alloc/salloc.h"
#include "../alloc/solve.h"
#include "../core/hash.h"
#include "check.h"
#include "testio.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

static uint64_t next(uint64_t *s) /* splitmix64: the tests' own seeded stream */
{
    uint64_t z = hash_mix64(*s); /* the same stream as before: state + γ, then the finaliser */
    *s += 0x9e3779b97f4a7c15ull;
    return z;
}
static double unif(uint64_t *s) { return (double)(next(s) >> 11) * 0x1.0p-53; }
static int irange(uint64_t *s, int lo, int hi) { return lo + (int)(next(s) % (uint64_t)(hi - lo + 1)); }

static const double BPW[] = {1.5, 2.0, 2.5625, 3.0, 3.4375, 4.0, 4.5, 6.0, 8.0};
#define NBPW ((int)(sizeof BPW / sizeof *BPW))

/* The test's own reading of the constraints (solve.h): pin wins, else item ∩ class bounds. */
static int allowed(const solve_problem *p, int i, int j)
{
    const solve_item *it = &p->items[i];
    if (it->pin >= 0)
        return j == it->pin;
    double lo = it->floor_bpw, hi = it->ceil_bpw;
    if (it->cls >= 0) {
        lo = fmax(lo, p->classes[it->cls].floor_bpw);
        hi = fmin(hi, p->classes[it->cls].ceil_bpw);
    }
    return it->opt[j].bpw >= lo && it->opt[j].bpw <= hi;
}

static double brute(const solve_problem *p, const solve_params *par);

/* MINIMAX (relative): D_s* of every set by brute force into ref (else ref untouched). */
static void set_refs(const solve_problem *p, const solve_params *par, double *ref)
{
    if (par->objective != SOLVE_OBJ_MINIMAX)
        return;
    for (int s = 0; s < p->n_sets; s++) {
        solve_params q = *par;
        q.objective = SOLVE_OBJ_SUM;
        q.set = s;
        ref[s] = brute(p, &q);
    }
}

static double objective(const solve_problem *p, const solve_params *par, const double *D,
                        const double *ref)
{
    double v = 0;
    if (par->objective == SOLVE_OBJ_SUM)
        return D[par->set];
    for (int s = 0; s < p->n_sets; s++)
        v = par->objective == SOLVE_OBJ_WEIGHTED ? v + par->weights[s] * D[s]
            : par->objective == SOLVE_OBJ_MINIMAX ? fmax(v, D[s] / ref[s])
                                                  : fmax(v, D[s]);
    return v;
}

/* Enumerate every assignment: the optimum, or +inf if none fits. */
static double brute(const solve_problem *p, const solve_params *par)
{
    int n = p->n_items, S = p->n_sets, c[16] = {0};
    double budget = par->target_bpw * (double)solve_problem_weights(p), best = INFINITY;
    double ref[8];
    set_refs(p, par, ref);
    for (;;) {
        int ok = 1;
        double bits = 0, D[8] = {0};
        for (int i = 0; i < n && ok; i++) {
            ok = allowed(p, i, c[i]);
            bits += (double)p->items[i].n * p->items[i].opt[c[i]].bpw;
            for (int s = 0; s < S; s++)
                D[s] += p->items[i].opt[c[i]].dist[s];
        }
        if (ok && bits <= budget * (1 + 1e-12))
            best = fmin(best, objective(p, par, D, ref));
        int i = 0;
        while (i < n && ++c[i] == p->items[i].n_opt)
            c[i++] = 0;
        if (i == n)
            return best;
    }
}

/* Does r respect the budget and every constraint, and are its totals right? */
static int valid(const solve_problem *p, const solve_params *par, const solve_result *r)
{
    double bits = 0, D[8] = {0};
    for (int i = 0; i < p->n_items; i++) {
        if (!allowed(p, i, r->choice[i]))
            return 0;
        bits += (double)p->items[i].n * p->items[i].opt[r->choice[i]].bpw;
        for (int s = 0; s < p->n_sets; s++)
            D[s] += p->items[i].opt[r->choice[i]].dist[s];
    }
    double budget = par->target_bpw * (double)solve_problem_weights(p), ref[8];
    if (bits > budget * (1 + 1e-12) || fabs(bits - r->bits_used) > 1e-9 * budget)
        return 0;
    set_refs(p, par, ref);
    return fabs(objective(p, par, D, ref) - r->objective) <= 1e-9 * (1 + fabs(r->objective));
}

/* A random instance: 2–6 items × 2–5 options (some dominated), S sets, some constraints. */
static solve_problem *random_problem(uint64_t *rs, int S)
{
    solve_problem *p;
    if (solve_problem_new(S, &p, NULL))
        return NULL;
    int n = irange(rs, 2, 6);
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "blk.%d.item%d", i % 3, i);
        solve_problem_add_item(p, name, irange(rs, 1, 64) * 16, NULL, NULL);
        int m = irange(rs, 2, 5), used[NBPW] = {0};
        for (int j = 0; j < m; j++) {
            int b;
            do
                b = irange(rs, 0, NBPW - 1);
            while (used[b]);
            used[b] = 1;
            double d[8];
            for (int s = 0; s < S; s++) /* mostly falling with bits, sometimes not */
                d[s] = 10 * unif(rs) * exp(-0.7 * BPW[b]) * (unif(rs) < 0.2 ? 3 : 1);
            snprintf(name, sizeof name, "o%d", b);
            solve_problem_add_option(p, i, name, BPW[b], d, NULL);
        }
        double u = unif(rs);
        if (u < 0.1)
            solve_problem_pin(p, i, p->items[i].opt[irange(rs, 0, m - 1)].name, NULL);
        else if (u < 0.2)
            solve_problem_item_bounds(p, i, 2.0, 6.0, NULL);
        else if (u < 0.3)
            solve_problem_set_class(p, i, "cls", NULL);
    }
    solve_problem_class_bounds(p, "cls", 0, 4.5, NULL);
    return p;
}

/* ---------------------------------------------------------------- brute-force comparisons */

static void test_random(chk *c)
{
    uint64_t rs = 20240606;
    int exact_bad = 0, gap_bad = 0, lag_bad = 0, base_bad = 0, mono_bad = 0, infeas_ok = 0;
    int runs = 0, minimax_runs = 0, limited_bad = 0;
    c->quiet = 1;
    for (int t = 0; t < 200; t++) {
        int S = irange(&rs, 1, 3);
        solve_problem *p = random_problem(&rs, S);
        double w[8];
        for (int s = 0; s < S; s++)
            w[s] = 0.1 + unif(&rs);
        for (int obj = 0; obj <= SOLVE_OBJ_MINIMAX_RAW; obj++) {
            solve_params par = solve_params_defaults();
            par.objective = (solve_objective)obj;
            par.set = irange(&rs, 0, S - 1);
            par.weights = w;
            par.target_bpw = 1.5 + 6.5 * unif(&rs);
            double opt = brute(p, &par);
            solve_result r;
            vl_err e = {0, ""};
            int rc = solve_run(p, &par, &r, &e);
            runs++;
            minimax_runs += obj >= SOLVE_OBJ_MINIMAX;
            if (!isfinite(opt)) {
                /* infeasible (or a constraint leaves an item nothing): a clear error */
                infeas_ok += rc == VL_ERANGE || rc == VL_ECONFIG;
                exact_bad += rc == 0;
                continue;
            }
            if (rc || !valid(p, &par, &r) || fabs(r.objective - opt) > 1e-9 * (1 + opt)) {
                exact_bad++;
                printf("  instance %d obj %d: rc %d (%s) exact %.12g brute %.12g\n", t, obj, rc,
                       e.msg, rc ? NAN : r.objective, opt);
            }
            gap_bad += !rc && r.gap != 0;
            if (!rc) {
                /* more budget is never worse (not for the relative minimax: D_s* falls too) */
                solve_result r2;
                solve_params more = par;
                more.target_bpw += 0.5 * unif(&rs);
                mono_bad += solve_run(p, &more, &r2, NULL) ||
                            (obj != SOLVE_OBJ_MINIMAX && r2.objective > r.objective * (1 + 1e-12));
                solve_result_free(&r2);
                /* node limit 1: still feasible, and the proven bound below the optimum */
                more = par;
                more.node_limit = 1;
                limited_bad += solve_run(p, &more, &r2, NULL) || !valid(p, &par, &r2) ||
                               r2.lower_bound > opt * (1 + 1e-9) + 1e-12 ||
                               r2.objective < opt * (1 - 1e-9) - 1e-12;
                solve_result_free(&r2);
            }
            solve_result_free(&r);
            /* Lagrangian: feasible, no better than the optimum, its bound no higher */
            par.method = SOLVE_LAGRANGE;
            if (solve_run(p, &par, &r, NULL) || !valid(p, &par, &r) ||
                r.objective < opt * (1 - 1e-9) - 1e-12 ||
                r.objective - r.gap > opt * (1 + 1e-9) + 1e-12 || r.gap < 0) {
                lag_bad++;
                printf("  instance %d obj %d: lagrange %.12g gap %.3g brute %.12g\n", t, obj,
                       r.objective, r.gap, opt);
            }
            solve_result_free(&r);
            /* baselines: within the budget and the constraints, or an ERANGE error */
            for (int m = SOLVE_UNIFORM; m <= SOLVE_RANDOM; m++) {
                par.method = (solve_method)m;
                rc = solve_run(p, &par, &r, NULL);
                base_bad += rc ? rc != VL_ERANGE : !valid(p, &par, &r) || r.objective < opt * (1 - 1e-9) - 1e-12;
                solve_result_free(&r);
            }
        }
        solve_problem_free(p);
    }
    c->quiet = 0;
    CHECK(c, exact_bad == 0, "exact = brute force on %d random runs (%d minimax): %d bad", runs,
          minimax_runs, exact_bad);
    CHECK(c, gap_bad == 0, "exact reports gap 0 when it finishes: %d bad", gap_bad);
    CHECK(c, lag_bad == 0, "lagrange feasible and optimum within its gap: %d bad", lag_bad);
    CHECK(c, base_bad == 0, "uniform/rules/random within budget and constraints: %d bad",
          base_bad);
    CHECK(c, mono_bad == 0, "exact: more budget is never worse: %d bad", mono_bad);
    CHECK(c, limited_bad == 0, "exact with node limit 1: feasible, bound ≤ optimum: %d bad",
          limited_bad);
    CHECK(c, infeas_ok > 0, "infeasible random runs gave errors (%d seen)", infeas_ok);
}

/* A bigger instance where the node limit must bite: the gap is honest. */
static void test_node_limit(chk *c)
{
    uint64_t rs = 7;
    solve_problem *p;
    solve_problem_new(1, &p, NULL);
    for (int i = 0; i < 60; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        solve_problem_add_item(p, name, irange(&rs, 100, 999), NULL, NULL);
        for (int b = 0; b < NBPW; b++) {
            double d = (1 + 9 * unif(&rs)) * exp(-0.7 * BPW[b]) * (0.9 + 0.2 * unif(&rs));
            snprintf(name, sizeof name, "o%d", b);
            solve_problem_add_option(p, i, name, BPW[b], &d, NULL);
        }
    }
    solve_params par = solve_params_defaults();
    par.target_bpw = 3.1;
    solve_result full, lim;
    CHECK_INT(c, solve_run(p, &par, &full, NULL), 0, "60 items: exact runs");
    CHECK_NEAR(c, full.gap, 0, 0, 0, "60 items: exact finishes with gap 0");
    par.node_limit = 3;
    CHECK_INT(c, solve_run(p, &par, &lim, NULL), 0, "60 items, 3 nodes: runs");
    CHECK(c, lim.lower_bound <= full.objective * (1 + 1e-12) && lim.objective >= full.objective,
          "3 nodes: bound %.9g ≤ optimum %.9g ≤ found %.9g", lim.lower_bound, full.objective,
          lim.objective);
    CHECK(c, lim.bits_used <= lim.budget, "3 nodes: within budget");
    CHECK(c, lim.node_limited && lim.gap > 0 && !strcmp(salloc_status(&lim), "node-limit"),
          "3 nodes: marked as stopped by the node limit (gap %.3g), not optimal", lim.gap);
    CHECK(c, !full.node_limited && !strcmp(salloc_status(&full), "optimal"),
          "the finished search is not marked and is optimal");
    par.method = SOLVE_LAGRANGE;
    solve_result lag;
    solve_run(p, &par, &lag, NULL);
    CHECK(c, lag.objective - lag.gap <= full.objective * (1 + 1e-12) &&
                 lag.objective >= full.objective * (1 - 1e-12),
          "60 items: lagrange %.9g gap %.3g brackets the optimum %.9g", lag.objective, lag.gap,
          full.objective);
    solve_result_free(&full);
    solve_result_free(&lim);
    solve_result_free(&lag);
    solve_problem_free(p);
}

/* ---------------------------------------------------------------- hand-solved examples */

/* The example of the end-to-end test (solved by hand in its comment there). */
static solve_problem *hand_problem(void)
{
    static const struct {
        const char *item;
        int n;
        const char *opt;
        double bpw, d;
    } rows[] = {
        {"blk.0.attn_v", 100, "q2", 2, 10},  {"blk.0.attn_v", 100, "q4", 4, 3},
        {"blk.0.attn_v", 100, "q8", 8, 1},   {"blk.0.ffn_up", 100, "q2", 2, 6},
        {"blk.0.ffn_up", 100, "q4", 4, 5},   {"blk.0.ffn_up", 100, "q8", 8, 4.5},
        {"blk.1.ffn_down", 200, "q2", 2, 8}, {"blk.1.ffn_down", 200, "q4", 4, 2},
        {"blk.1.ffn_down", 200, "q8", 8, 1.5},
    };
    solve_problem *p;
    solve_problem_new(1, &p, NULL);
    for (size_t k = 0; k < sizeof rows / sizeof *rows; k++) {
        int i = solve_problem_find_item(p, rows[k].item);
        if (i < 0)
            solve_problem_add_item(p, rows[k].item, rows[k].n, &i, NULL);
        solve_problem_add_option(p, i, rows[k].opt, rows[k].bpw, &rows[k].d, NULL);
    }
    return p;
}

static double run_obj(const solve_problem *p, solve_method m, double target, char *choice,
                      int *rc)
{
    solve_params par = solve_params_defaults();
    par.method = m;
    par.target_bpw = target;
    solve_result r;
    vl_err e = {0, ""};
    *rc = solve_run(p, &par, &r, &e);
    if (*rc)
        return NAN;
    choice[0] = '\0';
    for (int i = 0; i < p->n_items; i++) {
        strcat(choice, p->items[i].opt[r.choice[i]].name);
        strcat(choice, i + 1 < p->n_items ? "," : "");
    }
    double v = r.objective;
    solve_result_free(&r);
    return v;
}

/* The item-name index across its regrowths: every name found, unknown ones not, duplicates
 * refused; and rel_gap: the exact solver's answer is within its proven gap ≤ rel_gap·objective
 * of the true optimum. */
static void test_names_gap(chk *c)
{
    uint64_t rs = 11;
    solve_problem *p;
    solve_problem_new(1, &p, NULL);
    int bad = 0;
    for (int i = 0; i < 3000; i++) {
        char name[32];
        snprintf(name, sizeof name, "blk.%d.ffn_down.%d", i / 256, i % 256);
        int idx = -1;
        bad += solve_problem_add_item(p, name, irange(&rs, 100, 999), &idx, NULL) != 0 ||
               idx != i;
        for (int b = 0; b < NBPW; b++) {
            double d = (1 + 9 * unif(&rs)) * exp(-0.7 * BPW[b]) * (0.9 + 0.2 * unif(&rs));
            snprintf(name, sizeof name, "o%d", b);
            bad += solve_problem_add_option(p, i, name, BPW[b], &d, NULL) != 0;
        }
    }
    CHECK_INT(c, bad, 0, "3000 items added");
    int miss = 0;
    for (int i = 0; i < 3000; i++) {
        char name[32];
        snprintf(name, sizeof name, "blk.%d.ffn_down.%d", i / 256, i % 256);
        miss += solve_problem_find_item(p, name) != i;
    }
    CHECK_INT(c, miss, 0, "every name found at its index");
    CHECK_INT(c, solve_problem_find_item(p, "blk.0.ffn_down.256"), -1, "unknown name: -1");
    vl_err e = {0, ""};
    CHECK_INT(c, solve_problem_add_item(p, "blk.11.ffn_down.7", 5, NULL, &e), VL_EARG,
              "duplicate name refused");
    CHECK_HAS(c, e.msg, "added twice", "duplicate message");
    CHECK_INT(c, p->n_items, 3000, "nothing added by the refusal");
    solve_params par = solve_params_defaults();
    par.target_bpw = 3.1;
    par.method = SOLVE_LAGRANGE;
    solve_result lag, ex;
    CHECK_INT(c, solve_run(p, &par, &lag, NULL), 0, "3000 items: lagrange runs");
    par.method = SOLVE_EXACT;
    par.rel_gap = 1e-3;
    CHECK_INT(c, solve_run(p, &par, &ex, NULL), 0, "3000 items: exact to 1e-3 runs");
    CHECK(c, ex.gap <= 1e-3 * ex.objective, "exact gap %.3g ≤ 1e-3 · %.9g", ex.gap, ex.objective);
    CHECK(c, ex.lower_bound <= lag.objective * (1 + 1e-12) && ex.objective <= lag.objective,
          "exact %.9g ≤ lagrange %.9g, bound %.9g below both", ex.objective, lag.objective,
          ex.lower_bound);
    CHECK(c, ex.bits_used <= ex.budget * (1 + 1e-12), "exact within budget");
    solve_result_free(&lag);
    solve_result_free(&ex);
    solve_problem_free(p);
}

static void test_hand(chk *c)
{
    solve_problem *p = hand_problem();
    char ch[128];
    int rc;
    /* 3 bpw: 1200 bits; all q2 = 800 bits, 24; the 400 bits left buy attn_v (−7, 200 bits) and
     * ffn_up (−1, 200 bits) → 16, better than ffn_down alone (−6, 400 bits) → 18 */
    CHECK_NEAR(c, run_obj(p, SOLVE_EXACT, 3, ch, &rc), 16, 1e-12, 0, "hand: exact at 3 bpw");
    CHECK_STR(c, ch, "q4,q4,q2", "hand: exact choice");
    /* uniform: 3 bpw fits only q2 (24); 4 bpw fits q4 exactly (1600 bits, 10) */
    CHECK_NEAR(c, run_obj(p, SOLVE_UNIFORM, 3, ch, &rc), 24, 1e-12, 0, "hand: uniform at 3");
    CHECK_NEAR(c, run_obj(p, SOLVE_UNIFORM, 4, ch, &rc), 10, 1e-12, 0, "hand: uniform at 4");
    CHECK_STR(c, ch, "q4,q4,q4", "hand: uniform at 4 is q4");
    run_obj(p, SOLVE_UNIFORM, 1.9, ch, &rc);
    CHECK_INT(c, rc, VL_ERANGE, "hand: uniform below q2 is an error");
    /* rules: attn_v and layer 0's ffn_down are bumped (2 layers → the first one); there is no
     * layer-0 down_proj here, so at level q2 attn_v gets q4: 1000 bits; level q4 with attn_v
     * at q8 needs 2000 bits. The fill: blk.1.ffn_down to q4 would need 1400 bits > 1200; the
     * next group (attention: none left), then the rest: ffn_up to q4, 1200 bits: 3 + 5 + 8 */
    CHECK_NEAR(c, run_obj(p, SOLVE_RULES, 3, ch, &rc), 16, 1e-12, 0, "hand: rules at 3 bpw");
    CHECK_STR(c, ch, "q4,q4,q2", "hand: rules choice");
    /* infeasible: 1 bpw is 400 bits < 800 */
    solve_params par = solve_params_defaults();
    par.target_bpw = 1;
    solve_result r;
    vl_err e = {0, ""};
    CHECK_INT(c, solve_run(p, &par, &r, &e), VL_ERANGE, "hand: 1 bpw is infeasible");
    CHECK_HAS(c, e.msg, "infeasible: target 1 bpw is a budget of 400 bits, but the cheapest "
                        "allowed assignment needs 800 bits", "hand: infeasible message");
    /* pin ffn_down to q8 at 5 bpw (2000 bits): the others must stay at q2 → 10 + 6 + 1.5 */
    solve_problem_pin(p, 2, "q8", NULL);
    CHECK_NEAR(c, run_obj(p, SOLVE_EXACT, 5, ch, &rc), 17.5, 1e-12, 0, "hand: pinned q8");
    CHECK_STR(c, ch, "q2,q2,q8", "hand: pin respected");
    CHECK_NEAR(c, run_obj(p, SOLVE_LAGRANGE, 5, ch, &rc), 17.5, 1e-12, 0, "hand: lagrange pin");
    run_obj(p, SOLVE_EXACT, 4.9, ch, &rc);
    CHECK_INT(c, rc, VL_ERANGE, "hand: pin makes 4.9 bpw infeasible");
    p->items[2].pin = -1;
    /* class ceiling 2 bpw on attn_v at 3 bpw: attn_v q2 (200); of 1000 bits left, ffn_up q2 +
     * ffn_down q4 (1000 bits, 6 + 2) beats q4 + q2 (5 + 8) → 10 + 8 = 18 */
    solve_problem_set_class(p, 0, "attn", NULL);
    solve_problem_class_bounds(p, "attn", 0, 2, NULL);
    CHECK_NEAR(c, run_obj(p, SOLVE_EXACT, 3, ch, &rc), 18, 1e-12, 0, "hand: class ceiling");
    CHECK_STR(c, ch, "q2,q2,q4", "hand: class ceiling respected");
    /* a floor no option meets: a clear configuration error */
    solve_problem_class_bounds(p, "attn", 9, 10, NULL);
    par.target_bpw = 9;
    CHECK_INT(c, solve_run(p, &par, &r, &e), VL_ECONFIG, "hand: unmeetable floor");
    CHECK_HAS(c, e.msg, "item \"blk.0.attn_v\": no option with bpw in [9, 10]",
              "hand: unmeetable floor message");
    solve_problem_free(p);
}

/* Minimax with a known answer: x matters only to set 0, y only to set 1; one may go up. */
static void test_minimax(chk *c)
{
    solve_problem *p;
    solve_problem_new(2, &p, NULL);
    double xl[2] = {10, 0}, xh[2] = {1, 0}, yl[2] = {0, 12}, yh[2] = {0, 1};
    solve_problem_add_item(p, "x", 100, NULL, NULL);
    solve_problem_add_item(p, "y", 100, NULL, NULL);
    solve_problem_add_option(p, 0, "lo", 2, xl, NULL);
    solve_problem_add_option(p, 0, "hi", 4, xh, NULL);
    solve_problem_add_option(p, 1, "lo", 2, yl, NULL);
    solve_problem_add_option(p, 1, "hi", 4, yh, NULL);
    solve_params par = solve_params_defaults();
    par.target_bpw = 3;
    solve_result r;
    /* sum over set 0 lifts x (D = 1, 12); minimax lifts y (D = 10, 1): max 10 < 12 */
    solve_run(p, &par, &r, NULL);
    CHECK(c, r.choice[0] == 1 && r.choice[1] == 0, "minimax: set-0 sum lifts x");
    solve_result_free(&r);
    for (int m = SOLVE_EXACT; m <= SOLVE_LAGRANGE; m++) {
        par.method = (solve_method)m;
        par.objective = SOLVE_OBJ_MINIMAX_RAW;
        solve_run(p, &par, &r, NULL);
        CHECK(c, r.choice[0] == 0 && r.choice[1] == 1, "minimax %s lifts y",
              solve_method_name(par.method));
        CHECK_NEAR(c, r.objective, 10, 1e-12, 0, "minimax objective = worst set");
        CHECK_NEAR(c, r.dist_set[0], 10, 1e-12, 0, "minimax: set 0");
        CHECK_NEAR(c, r.dist_set[1], 1, 1e-12, 0, "minimax: set 1");
        CHECK(c, r.lower_bound <= 10 + 1e-12, "minimax lower bound %.9g ≤ 10", r.lower_bound);
        solve_result_free(&r);
    }
    solve_problem_free(p);
}

/* ---------------------------------------------------------------- the parser */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_parser(chk *c, const char *dir)
{
    static const struct {
        const char *text, *want;
        int code;
    } cases[] = {
        {"a 10 q2 x 1\n", ":1: bits_per_weight \"x\" is not a finite number", VL_EFORMAT},
        {"a 10 q2 nan 1\n", ":1: bits_per_weight \"nan\" is not a finite number", VL_EFORMAT},
        {"a 10 q2 2 -1\n", ":1: distortion -1 is negative", VL_ERANGE},
        {"a 10 q2 -2 1\n", ":1: bits_per_weight -2 is negative", VL_ERANGE},
        {"a -5 q2 2 1\n", ":1: n_weights -5 must be positive", VL_ERANGE},
        {"a 1.5 q2 2 1\n", ":1: n_weights \"1.5\" is not an integer", VL_EFORMAT},
        {"a 10 q2 2 1\n\n# c\na 20 q4 4 0.5\n",
         ":4: item \"a\": n_weights 20 differs from 10 given before", VL_EFORMAT},
        {"a 10 q2 2 1 2\nb 10 q2 2 1\n", ":2: 1 distortion columns, the first option line had 2",
         VL_EFORMAT},
        {"", ":0: empty problem: no option lines", VL_EFORMAT},
        {"# only a comment\n\n", ":2: empty problem: no option lines", VL_EFORMAT},
        {"a 10\nb 10 q2 2 1\n", ":1: item \"a\" has no options", VL_EFORMAT},
        {"a 10 q2 2 1\na 10 q2 3 1\n", ":2: item \"a\": option \"q2\" given twice", VL_EFORMAT},
        {"a 10 q2\n", ":1: expected \"item n_weights option bits_per_weight distortion...\"",
         VL_EFORMAT},
    };
    char path[4200];
    snprintf(path, sizeof path, "%s/p.txt", dir);
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        write_file(path, cases[k].text);
        solve_problem *p = NULL;
        vl_err e = {0, ""};
        int rc = solve_problem_read(path, &p, &e);
        CHECK_INT(c, rc, cases[k].code, "parser case code");
        char want[4400];
        snprintf(want, sizeof want, "%s%s", path, cases[k].want);
        CHECK_HAS(c, e.msg, want, "parser case message");
        CHECK(c, p == NULL, "parser case: no problem returned on error");
    }
    /* a good file: declaration order, comments, two sets */
    write_file(path, "# two sets\nb 7  # declared first\n\na 10 q2 2 1 2 # trailing\n"
                     "b 7 q4 4.5 0.25 0.5\na 10 q4 4 0 0\n");
    solve_problem *p = NULL;
    vl_err e = {0, ""};
    CHECK_INT(c, solve_problem_read(path, &p, &e), 0, "parser: good file");
    if (p) {
        CHECK_INT(c, p->n_sets, 2, "parser: sets");
        CHECK_INT(c, p->n_items, 2, "parser: items");
        CHECK_STR(c, p->items[0].name, "b", "parser: first-appearance order");
        CHECK_INT(c, p->items[1].n_opt, 2, "parser: a's options");
        CHECK_NEAR(c, p->items[0].opt[0].bpw, 4.5, 0, 0, "parser: bpw");
        CHECK_NEAR(c, p->items[0].opt[0].dist[1], 0.5, 0, 0, "parser: second distortion");
        CHECK_INT(c, solve_problem_weights(p), 17, "parser: weights");
    }
    solve_problem_free(p);
    snprintf(path, sizeof path, "%s/missing.txt", dir);
    CHECK_INT(c, solve_problem_read(path, &p, &e), VL_ENOTFOUND, "parser: missing file");
    CHECK_HAS(c, e.msg, "missing.txt: No such file", "parser: missing file message");
}

/* ---------------------------------------------------------------- vbrlab alloc */

/* Run cmdline; check its exit status (0 or not, as ok says) and that its output starts with
 * want. */
static void run_cli(chk *c, const char *cmdline, const char *want, int ok, const char *name)
{
    char out[8192];
    int st = tio_run(cmdline, out, sizeof out);
    CHECK(c, (st == 0) == ok, "%s: exit status %d", name, st);
    if (!CHECK(c, strncmp(out, want, strlen(want)) == 0, "%s: output starts as expected", name))
        printf("--- got:\n%s--- want:\n%s\n", out, want);
}

static void test_cli(chk *c, const char *dir)
{
    const char *bin = getenv("VBRLAB_BIN");
    if (!bin) {
        CHECK(c, 0, "VBRLAB_BIN is set (make test sets it)");
        return;
    }
    char path[4200], cmd[9000];
    snprintf(path, sizeof path, "%s/hand.txt", dir);
    /* the hand example of test_hand: at 3 bpw the optimum is q4, q4, q2 with 16; the LP takes
     * attn_v's q2→q4 (slope −7/200) whole, then half of ffn_down's (−6/400): 24 − 7 − 3 = 14 */
    write_file(path, "# hand example\n"
                     "blk.0.attn_v 100 q2 2 10\nblk.0.attn_v 100 q4 4 3\n"
                     "blk.0.attn_v 100 q8 8 1\nblk.0.ffn_up 100 q2 2 6\n"
                     "blk.0.ffn_up 100 q4 4 5\nblk.0.ffn_up 100 q8 8 4.5\n"
                     "blk.1.ffn_down 200 q2 2 8\nblk.1.ffn_down 200 q4 4 2\n"
                     "blk.1.ffn_down 200 q8 8 1.5\n");
    const char *table = "item            option       bpw    distortion\n"
                        "blk.0.attn_v    q4        4.0000             3\n"
                        "blk.0.ffn_up    q4        4.0000             5\n"
                        "blk.1.ffn_down  q2        2.0000             8\n";
    char want[2048];
    snprintf(want, sizeof want, "%s%s", table,
             "solver       exact, objective sum\n"
             "bits used    1200.00 (3.000000 bpw)\n"
             "budget       1200.00 (3.000000 bpw)\n"
             "objective    16\n"
             "distortion   16\n"
             "lower bound  16\n"
             "gap          0 (proven optimal)\n"
             "nodes        ");
    snprintf(cmd, sizeof cmd, "%s alloc --problem %s --target-bpw 3 2>&1", bin, path);
    run_cli(c, cmd, want, 1, "cli: exact table");
    snprintf(want, sizeof want, "%s%s", table,
             "solver       lagrange, objective sum\n"
             "bits used    1200.00 (3.000000 bpw)\n"
             "budget       1200.00 (3.000000 bpw)\n"
             "objective    16\n"
             "distortion   16\n"
             "lower bound  14\n"
             "gap          2 (0.125 relative)\n");
    snprintf(cmd, sizeof cmd, "%s alloc --problem %s --target-bpw 3 --solver lagrange 2>&1", bin,
             path);
    run_cli(c, cmd, want, 1, "cli: lagrange table");
    snprintf(cmd, sizeof cmd, "%s alloc --problem %s --target-bpw 3 --export-regex 2>&1", bin,
             path);
    run_cli(c, cmd, "blk\\.0\\.attn_v=q4\nblk\\.0\\.ffn_up=q4\nblk\\.1\\.ffn_down=q2\n",
            1, "cli: export regex");
    snprintf(cmd, sizeof cmd, "%s alloc --problem %s --target-bpw 1 2>&1", bin, path);
    run_cli(c, cmd, "vbrlab alloc: solve: infeasible: target 1 bpw", 0, "cli: infeasible");
    snprintf(cmd, sizeof cmd, "%s alloc --sens x.h5 --target-bpw 2 2>&1", bin);
    run_cli(c, cmd, "vbrlab alloc: --sens needs --set NAME or --sets A,B,...", 0,
            "cli: --sens without a set");
}

int main(void)
{
    chk c;
    chk_init(&c, "test_solve");
    char dir[64];
    if (tio_tmpdir(dir, sizeof dir, "solve")) {
        CHECK(&c, 0, "mkdtemp");
        return chk_done(&c);
    }
    test_random(&c);
    test_node_limit(&c);
    test_names_gap(&c);
    test_hand(&c);
    test_minimax(&c);
    test_parser(&c, dir);
    test_cli(&c, dir);
    char path[4200];
    const char *files[] = {"p.txt", "hand.txt"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[k]);
        unlink(path);
    }
    rmdir(dir);
    return chk_done(&c);
}
