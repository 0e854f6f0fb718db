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
 * ceil(n_layers/8) layers (n_layers = 1 + the largest layer number seen). Bumped items take
 * level L+1, the others level L; the highest L that fits wins. If no level fits with the bumps,
 * the result is the uniform baseline.
 */
#include "solve_int.h"

#include "../core/num.h"

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
    int found = 0;
    for (int k = nl - 1; k >= 0 && !found; k--)
        found = assign(in, &lv[k], &lv[k + 1 < nl ? k + 1 : k], bump, s->choice) <= in->cap;
    vl_free(lv);
    vl_free(bump);
    if (!found)
        return solve_uniform(in, s, err);
    solve_eval(in, s->choice, s->D, &s->bits);
    return 0;
}
