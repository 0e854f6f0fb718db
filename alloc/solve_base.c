/* alloc/solve_base.c — the baselines: uniform, and a k-quant-like rule mix.
 *
 * Levels: every distinct option name in the problem, ordered by its mean bpw over the items
 * that offer it (ties by name). At level L an item takes the option named L if it is allowed
 * (pins, floors, ceilings), otherwise its allowed option whose bpw is nearest L's mean bpw
 * (ties: fewer bits) — so pinned and bounded items keep their constraints in every baseline.
 *
 * UNIFORM: the level whose assignment uses the most bits within the budget (ties: lower
 * objective). If none fits, VL_ERANGE names the cheapest level.
 *
 * RULES, in the spirit of llama.cpp's k-quant mixes (llama_tensor_get_type in
 * src/llama-quant.cpp bumps attn_v, attn_output and the early ffn_down): an item is "bumped"
 * when its name contains v_proj, o_proj, attn_v or attn_output, or contains down_proj or
 * ffn_down and its layer (the number after "layers." or "blk.") is among the first
 * ceil(n_layers/8) layers (n_layers = 1 + the largest layer number seen). "One step up" from
 * level L is one bit width up, as from q2_K to q3_K: the lowest level whose mean bpw is at least
 * L's + RULE_STEP (0.75), else the highest level. Bumped items take L's step up, the others
 * level L; the highest L that fits wins. Then the rest of the budget is filled by rule, not by
 * sensitivity: one step up, while it fits, for the other down-projections (down_proj,
 * ffn_down), then the other attention projections (q/k_proj, attn_q/attn_k, MLA's q_a/q_b/
 * kv_a/kv_b), then every other item, each group in item order. If no level fits with the
 * bumps, the result is the uniform baseline.
 *
 * RANDOM: every item at its cheapest allowed option, then, while some item has a next dearer
 * allowed option (by bpw) that still fits, one such item drawn uniformly (seeded stream
 * rng_child_seed(seed, "solve.random")) moves one option up: a feasible assignment that uses
 * the budget with no regard to distortion (the "random at the same budget" baseline).
 */
#include "solve_int.h"

#include "../core/num.h"
#include "../core/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name; /* borrowed from the problem */
    double bpw;       /* mean over the items that offer it */
    int count;
} level;

static int level_cmp(const void *a, const void *b)
{
    const level *x = a, *y = b;
    if (x->bpw != y->bpw)
        return x->bpw < y->bpw ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Distinct option names by mean bpw; *out owned by the caller. */
static int levels(const solve_problem *p, level **out, int *nl)
{
    int cap = 16, n = 0;
    level *lv = vl_malloc((size_t)cap * sizeof *lv);
    if (!lv)
        return VL_ENOMEM;
    for (int i = 0; i < p->n_items; i++)
        for (int j = 0; j < p->items[i].n_opt; j++) {
            const solve_option *o = &p->items[i].opt[j];
            int k = 0;
            while (k < n && strcmp(lv[k].name, o->name))
                k++;
            if (k == n) {
                if (n == cap) {
                    level *q = vl_realloc(lv, (size_t)(cap *= 2) * sizeof *lv);
                    if (!q) {
                        vl_free(lv);
                        return VL_ENOMEM;
                    }
                    lv = q;
                }
                lv[n++] = (level){o->name, 0, 0};
            }
            lv[k].bpw += o->bpw;
            lv[k].count++;
        }
    for (int k = 0; k < n; k++)
        lv[k].bpw /= lv[k].count;
    qsort(lv, (size_t)n, sizeof *lv, level_cmp);
    *out = lv;
    *nl = n;
    return 0;
}

/* Item i's option at level l (global index into the instance). */
static int pick(const solve_inst *in, int i, const level *l)
{
    const solve_item *it = &in->p->items[i];
    int best = -1;
    double bd = INFINITY;
    for (int o = in->off[i]; o < in->off[i + 1]; o++) {
        const solve_option *op = &it->opt[in->orig[o]];
        if (!strcmp(op->name, l->name))
            return o;
        double dd = fabs(op->bpw - l->bpw);
        if (dd < bd || (dd == bd && in->bits[o] < in->bits[best])) {
            bd = dd;
            best = o;
        }
    }
    return best;
}

#define MAX_LAYER (1 << 20) /* far above any model; keeps layer + 1 and n_layers + 7 in int */

/* The layer number after "layers." or "blk." in name, −1 if none, −2 if above MAX_LAYER. */
static int layer_of(const char *name)
{
    const char *keys[] = {"layers.", "blk."};
    for (int k = 0; k < 2; k++) {
        const char *s = strstr(name, keys[k]);
        int64_t l;
        if (s && s[strlen(keys[k])] >= '0' && s[strlen(keys[k])] <= '9')
            return num_digits(s + strlen(keys[k]), NULL, MAX_LAYER, &l) ? -2 : (int)l;
    }
    return -1;
}

static int bumped(const char *name, int n_layers)
{
    if (strstr(name, "v_proj") || strstr(name, "o_proj") || strstr(name, "attn_v") ||
        strstr(name, "attn_output"))
        return 1;
    if (strstr(name, "down_proj") || strstr(name, "ffn_down")) {
        int l = layer_of(name), first = (n_layers + 7) / 8;
        return l >= 0 && l < first;
    }
    return 0;
}

/* Assignment at level a (bumped items at level b) into choice; returns its bits. */
static double assign(const solve_inst *in, const level *la, const level *lb,
                     const unsigned char *bump, int *choice)
{
    double bits = 0;
    for (int i = 0; i < in->n; i++) {
        choice[i] = pick(in, i, bump && bump[i] ? lb : la);
        bits += in->bits[choice[i]];
    }
    return bits;
}

int solve_uniform(const solve_inst *in, solve_sol *s, vl_err *err)
{
    level *lv;
    int nl, found = 0;
    int *ch = vl_malloc((size_t)in->n * sizeof *ch);
    double *D = vl_malloc((size_t)in->S * sizeof *D);
    if (!ch || !D || levels(in->p, &lv, &nl)) {
        vl_free(ch);
        vl_free(D);
        return vl_errf(err, VL_ENOMEM, "solve: out of memory");
    }
    double best_bits = -1, best_v = INFINITY, min_bits = INFINITY;
    const char *min_name = NULL;
    for (int k = 0; k < nl; k++) {
        double bits;
        assign(in, &lv[k], NULL, NULL, ch);
        solve_eval(in, ch, D, &bits);
        double v = solve_vmax(D, in->S);
        if (bits < min_bits) {
            min_bits = bits;
            min_name = lv[k].name;
        }
        if (bits > in->cap)
            continue;
        if (bits > best_bits || (bits == best_bits && v < best_v)) {
            best_bits = bits;
            best_v = v;
            memcpy(s->choice, ch, (size_t)in->n * sizeof *ch);
            found = 1;
        }
    }
    int rc = 0;
    if (found)
        solve_eval(in, s->choice, s->D, &s->bits);
    else
        rc = vl_errf(err, VL_ERANGE,
                     "solve: uniform: no single option fits the budget of %.0f bits; the "
                     "cheapest, \"%s\", needs %.0f bits",
                     in->budget, min_name ? min_name : "?", min_bits);
    vl_free(lv);
    vl_free(ch);
    vl_free(D);
    return rc;
}

#define RULE_STEP 0.75 /* bpw of "one bit width up" (q2_K 2.625 → q3_K 3.4375: 0.81) */

/* Fill group of an item not bumped: 1 down-projection, 2 attention, 3 anything else. */
static int fill_group(const char *name)
{
    if (strstr(name, "down_proj") || strstr(name, "ffn_down"))
        return 1;
    static const char *attn[] = {"q_proj", "k_proj", "attn_q", "attn_k", "q_a_proj", "q_b_proj",
                                 "kv_a_proj", "kv_b_proj", "self_attn", "attn_"};
    for (size_t k = 0; k < sizeof attn / sizeof *attn; k++)
        if (strstr(name, attn[k]))
            return 2;
    return 3;
}

/* The level one step up from lv[k] (see the opening comment). */
static int step_up(const level *lv, int nl, int k)
{
    for (int j = k + 1; j < nl; j++)
        if (lv[j].bpw >= lv[k].bpw + RULE_STEP)
            return j;
    return nl - 1;
}

int solve_rules(const solve_inst *in, solve_sol *s, vl_err *err)
{
    level *lv;
    int nl, n_layers = 0;
    unsigned char *bump = vl_malloc((size_t)in->n + 1);
    if (!bump || levels(in->p, &lv, &nl)) {
        vl_free(bump);
        return vl_errf(err, VL_ENOMEM, "solve: out of memory");
    }
    for (int i = 0; i < in->n; i++) {
        int l = layer_of(in->p->items[i].name);
        if (l == -2) {
            vl_free(bump);
            vl_free(lv);
            return vl_errf(err, VL_ERANGE, "solve: item \"%s\": layer number above %d",
                           in->p->items[i].name, MAX_LAYER);
        }
        n_layers = l + 1 > n_layers ? l + 1 : n_layers;
    }
    for (int i = 0; i < in->n; i++)
        bump[i] = (unsigned char)bumped(in->p->items[i].name, n_layers);
    int found = 0, k = nl - 1;
    double bits = 0;
    for (; k >= 0 && !found; k--)
        found = (bits = assign(in, &lv[k], &lv[step_up(lv, nl, k)], bump, s->choice)) <= in->cap;
    if (found) { /* fill by rule: k + 1 is the base level */
        const level *up = &lv[step_up(lv, nl, k + 1)];
        for (int g = 1; g <= 3; g++)
            for (int i = 0; i < in->n; i++) {
                if (bump[i] || fill_group(in->p->items[i].name) != g)
                    continue;
                int o = pick(in, i, up);
                double nb = bits - in->bits[s->choice[i]] + in->bits[o];
                if (in->bits[o] > in->bits[s->choice[i]] && nb <= in->cap) {
                    s->choice[i] = o;
                    bits = nb;
                }
            }
    }
    vl_free(lv);
    vl_free(bump);
    if (!found)
        return solve_uniform(in, s, err);
    solve_eval(in, s->choice, s->D, &s->bits);
    return 0;
}

int solve_random(const solve_inst *in, uint64_t seed, solve_sol *s, vl_err *err)
{
    int *cand = vl_malloc(((size_t)in->n + 1) * sizeof *cand);
    rng *g = NULL;
    int rc = cand ? rng_new_child(&g, seed, "solve.random", err)
                  : vl_errf(err, VL_ENOMEM, "solve: out of memory");
    double bits = 0;
    for (int i = 0; !rc && i < in->n; i++) { /* cheapest allowed option */
        int best = in->off[i];
        for (int o = in->off[i]; o < in->off[i + 1]; o++)
            best = in->bits[o] < in->bits[best] ? o : best;
        s->choice[i] = best;
        bits += in->bits[best];
    }
    if (!rc && bits > in->cap)
        rc = vl_errf(err, VL_ERANGE, "solve: random: the cheapest allowed assignment needs %.0f "
                     "bits, above the budget of %.0f", bits, in->budget);
    while (!rc) {
        int nc = 0; /* items whose next dearer option fits */
        for (int i = 0; i < in->n; i++) {
            int nx = -1, c = s->choice[i];
            for (int o = in->off[i]; o < in->off[i + 1]; o++)
                if (in->bits[o] > in->bits[c] && (nx < 0 || in->bits[o] < in->bits[nx]))
                    nx = o;
            if (nx >= 0 && bits - in->bits[c] + in->bits[nx] <= in->cap)
                cand[nc++] = i;
        }
        if (!nc)
            break;
        int i = cand[rng_uniform_int(g, (uint64_t)nc)], c = s->choice[i], nx = -1;
        for (int o = in->off[i]; o < in->off[i + 1]; o++)
            if (in->bits[o] > in->bits[c] && (nx < 0 || in->bits[o] < in->bits[nx]))
                nx = o;
        bits += in->bits[nx] - in->bits[c];
        s->choice[i] = nx;
    }
    rng_free(g);
    vl_free(cand);
    if (!rc)
        solve_eval(in, s->choice, s->D, &s->bits);
    return rc;
}
