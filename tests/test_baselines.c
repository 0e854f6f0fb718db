/* tests/test_baselines.c — the same-budget baselines and the fair minimax (alloc/solve.h):
 * the rules mix meets its budget and raises attention v/o and the down-projections (then fills
 * by rule), random draws are feasible, fill the budget and are seeded; minimax minimises the
 * worst damage relative to each set's own optimum, checked on a 3-item instance solved by hand
 * (minimax-raw kept). Brute-force checks of every solver are in test_solve.c. */
#include "../alloc/solve.h"
#include "check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* A two-layer dense-model-like problem (q/k/v/o, gate/up/down per layer, 1000 weights each,
 * options q2/q3/q4 at 2/3/4 bpw with falling distortion). */
static solve_problem *layer_problem(void)
{
    static const char *proj[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                  "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                  "mlp.down_proj"};
    solve_problem *p;
    solve_problem_new(1, &p, NULL);
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < 7; k++) {
            char name[64];
            int i;
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, proj[k]);
            solve_problem_add_item(p, name, 1000, &i, NULL);
            for (int b = 2; b <= 4; b++) {
                double d = (1 + k + 7 * l) * exp(-(double)b);
                char on[16];
                snprintf(on, sizeof on, "q%d", b);
                solve_problem_add_option(p, i, on, b, &d, NULL);
            }
        }
    return p;
}

/* Which width (2..4) item NAME-part got in r. */
static int width_of(const solve_problem *p, const solve_result *r, int l, const char *part)
{
    for (int i = 0; i < p->n_items; i++)
        if (strstr(p->items[i].name, part) && p->items[i].name[13] == '0' + l)
            return (int)p->items[i].opt[r->choice[i]].bpw;
    return -1;
}

/* Rules meet the budget and raise attention v/o and the down-projections; random draws are
 * feasible, fill the budget and are seeded. */
static void test_rules_random(chk *c)
{
    solve_problem *p = layer_problem();
    solve_params par = solve_params_defaults();
    solve_result r;
    vl_err e = {0, ""};
    /* 2.5 bpw = 35000 bits of 14000 weights: base q2 (28000) with v, o of both layers and
     * layer 0's down (ceil(2/8) = 1 layer) at q3: 33000; fill: layer 1's down +1000 = 34000,
     * then layer 0's q +1000 = 35000: exactly the budget; k, gate, up stay at q2 */
    par.method = SOLVE_RULES;
    par.target_bpw = 2.5;
    CHECK_INT(c, solve_run(p, &par, &r, &e), 0, "rules at 2.5 bpw");
    CHECK(c, r.bits_used <= r.budget && r.bits_used == 35000, "rules: %.0f of %.0f bits",
          r.bits_used, r.budget);
    int up = width_of(p, &r, 0, "q_proj") == 3 && width_of(p, &r, 1, "q_proj") == 2;
    for (int l = 0; l < 2; l++) {
        up &= width_of(p, &r, l, "v_proj") == 3 && width_of(p, &r, l, "o_proj") == 3;
        up &= width_of(p, &r, l, "down_proj") == 3 && width_of(p, &r, l, "k_proj") == 2;
        up &= width_of(p, &r, l, "gate_proj") == 2 && width_of(p, &r, l, "up_proj") == 2;
    }
    CHECK(c, up, "rules: v, o, down, then layer 0's q one width up; the rest at q2");
    solve_result_free(&r);
    /* 2.4 bpw = 33600 bits: the base with bumps (33000) fits; layer 1's down (+1000) does
     * not, nor any attention step (+1000 each): 33000 bits */
    par.target_bpw = 2.4;
    CHECK_INT(c, solve_run(p, &par, &r, &e), 0, "rules at 2.4 bpw");
    CHECK(c, r.bits_used == 33000 && width_of(p, &r, 0, "down_proj") == 3 &&
             width_of(p, &r, 1, "down_proj") == 2,
          "rules at 2.4: bumps only (%.0f bits)", r.bits_used);
    solve_result_free(&r);
    /* 2.2 bpw = 30800 bits: no level fits with the bumps: the uniform baseline, q2 */
    par.target_bpw = 2.2;
    CHECK_INT(c, solve_run(p, &par, &r, &e), 0, "rules at 2.2 bpw");
    CHECK(c, r.bits_used == 28000, "rules at 2.2: uniform q2 (%.0f bits)", r.bits_used);
    solve_result_free(&r);

    /* random: feasible, no single step left that fits, seeded */
    par.method = SOLVE_RANDOM;
    par.target_bpw = 2.75;
    solve_result a, b;
    CHECK_INT(c, solve_run(p, &par, &a, &e), 0, "random at 2.75 bpw");
    CHECK_INT(c, solve_run(p, &par, &b, &e), 0, "random again");
    CHECK(c, !memcmp(a.choice, b.choice, (size_t)p->n_items * sizeof *a.choice),
          "random: the same seed, the same draw");
    CHECK(c, a.bits_used <= a.budget && a.budget - a.bits_used < 1000,
          "random: %.0f of %.0f bits, no 1000-bit step left", a.bits_used, a.budget);
    CHECK(c, !isfinite(a.lower_bound), "random: a baseline, no bound");
    solve_result_free(&b);
    int differ = 0;
    for (uint64_t sd = 2; sd < 6; sd++) {
        par.seed = sd;
        CHECK_INT(c, solve_run(p, &par, &b, &e), 0, "random, another seed");
        differ += memcmp(a.choice, b.choice, (size_t)p->n_items * sizeof *a.choice) != 0;
        solve_result_free(&b);
    }
    CHECK(c, differ == 4, "random: 4 other seeds, 4 other draws (%d)", differ);
    solve_result_free(&a);
    solve_method m;
    CHECK_INT(c, solve_method_parse("random", &m, &e), 0, "parse random");
    solve_problem_free(p);
}

/* Fair minimax on a 3-item instance solved by hand. Items a, b, c of 100 weights, options lo
 * (2 bpw, 200 bits) and hi (4 bpw, 400 bits); budget 3 bpw = 900 bits: all lo = 600 bits, one
 * hi = 800, two = 1000 > 900, so exactly one item is lifted (lifting never hurts here).
 * Distortion (set 0, set 1), lo → hi:
 *   a  (10, 0) → (1, 0)      matters to set 0 only
 *   b  (0, 100) → (0, 95)    set 1's large baseline, a small gain
 *   c  (2, 20) → (2, 2)      set 1's best lift
 * Lift a: D = (1 + 0 + 2, 0 + 100 + 20) = (3, 120);  lift b: (12, 115);  lift c: (12, 102).
 * Each set's own optimum: D0* = 3 (lift a), D1* = 102 (lift c).
 * Raw minimax max_s D_s: 120, 115, 102 → lift c (102): set 1, the larger baseline, binds.
 * Fair minimax max_s D_s/D_s*: lift a max(3/3, 120/102) = 1.17647..., lift b max(4, 1.127) = 4,
 * lift c max(4, 1) = 4 → lift a, objective 120/102 = 20/17. */
static void test_minimax_fair(chk *c)
{
    solve_problem *p;
    solve_problem_new(2, &p, NULL);
    static const double d[3][2][2] = {{{10, 0}, {1, 0}}, {{0, 100}, {0, 95}}, {{2, 20}, {2, 2}}};
    static const char *nm[3] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        solve_problem_add_item(p, nm[i], 100, NULL, NULL);
        solve_problem_add_option(p, i, "lo", 2, d[i][0], NULL);
        solve_problem_add_option(p, i, "hi", 4, d[i][1], NULL);
    }
    solve_params par = solve_params_defaults();
    par.target_bpw = 3;
    solve_result r;
    vl_err e = {0, ""};
    for (int m = SOLVE_EXACT; m <= SOLVE_LAGRANGE; m++) {
        par.method = (solve_method)m;
        const char *mn = solve_method_name(par.method);
        par.objective = SOLVE_OBJ_MINIMAX_RAW;
        CHECK_INT(c, solve_run(p, &par, &r, &e), 0, "raw minimax runs");
        CHECK(c, r.choice[0] == 0 && r.choice[1] == 0 && r.choice[2] == 1,
              "raw minimax (%s) lifts c", mn);
        CHECK_NEAR(c, r.objective, 102, 1e-12, 0, "raw minimax objective 102");
        CHECK(c, r.set_opt == NULL, "raw minimax: no set optima");
        solve_result_free(&r);
        par.objective = SOLVE_OBJ_MINIMAX;
        CHECK_INT(c, solve_run(p, &par, &r, &e), 0, "fair minimax runs");
        CHECK(c, r.choice[0] == 1 && r.choice[1] == 0 && r.choice[2] == 0,
              "fair minimax (%s) lifts a", mn);
        CHECK_NEAR(c, r.objective, 20.0 / 17, 1e-12, 0, "fair minimax objective 120/102");
        CHECK(c, r.set_opt && r.set_opt[0] == 3 && r.set_opt[1] == 102,
              "set optima D* = (3, 102)");
        CHECK(c, r.dist_set[0] == 3 && r.dist_set[1] == 120, "fair minimax D = (3, 120)");
        CHECK(c, r.lower_bound <= 20.0 / 17 + 1e-12, "fair lower bound %.9g ≤ 20/17",
              r.lower_bound);
        solve_result_free(&r);
    }
    /* a set whose optimum is 0: no relative damage, a clear error */
    solve_problem *z;
    solve_problem_new(2, &z, NULL);
    double zl[2] = {1, 1}, zh[2] = {1, 0};
    solve_problem_add_item(z, "x", 100, NULL, NULL);
    solve_problem_add_option(z, 0, "lo", 2, zl, NULL);
    solve_problem_add_option(z, 0, "hi", 4, zh, NULL);
    par.method = SOLVE_EXACT;
    par.target_bpw = 4;
    CHECK_INT(c, solve_run(z, &par, &r, &e), VL_ERANGE, "optimum 0: refused");
    CHECK_HAS(c, e.msg, "minimax-raw", "optimum 0: the message names the raw form");
    solve_objective o;
    CHECK_INT(c, solve_objective_parse("minimax-raw", &o, &e), 0, "parse minimax-raw");
    CHECK(c, o == SOLVE_OBJ_MINIMAX_RAW, "minimax-raw parses to the raw objective");
    solve_problem_free(z);
    solve_problem_free(p);
}

int main(void)
{
    chk c;
    chk_init(&c, "baselines");
    test_minimax_fair(&c);
    test_rules_random(&c);
    return chk_done(&c);
}
