/* analysis/stats_h5.c — stat_acc ⇄ HDF5 store (layout: docs/hdf5-schema.md, "stats").
 *
 * Every exact sum is stored twice: the float64 value for readers, and the fixed-point limbs
 * (`*_exact`, int64 [n, 3]) from which `vbrlab stats merge` rebuilds the totals bit for bit.
 */
#include "stats_int.h"

#include "../core/num.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define FX_UNITS "fixed point: int64 limbs, least significant first, value = N·2^-96"

enum { PATH_MAX_LEN = 512, GROUP_MAX_LEN = 256 }; /* group + the longest suffix fits */

/* p = base/name. Callers keep group names under GROUP_MAX_LEN (checked at entry), and the
 * suffixes below are short, so truncation cannot happen; it is still checked. */
static void pj(char *p, const char *base, const char *name)
{
    int n = snprintf(p, PATH_MAX_LEN, "%s/%s", base, name);
    VL_ASSERT(n > 0 && n < PATH_MAX_LEN);
}

/* ---------------------------------------------------------------- writing */

static int w_f64(h5s_store *s, const char *path, const double *d, int64_t n0, int64_t n1,
                 const char *units, const char *meaning, vl_err *err)
{
    int64_t shape[2] = {n0, n1};
    return h5s_write(s, path, H5S_F64, d, n1 ? 2 : 1, shape, units, meaning, err);
}

static int w_i64(h5s_store *s, const char *path, const int64_t *d, int64_t n0, int64_t n1,
                 const char *units, const char *meaning, vl_err *err)
{
    int64_t shape[2] = {n0, n1};
    return h5s_write(s, path, H5S_I64, d, n1 ? 2 : 1, shape, units, meaning, err);
}

/* `name` (float64 view) and `name`_exact (limbs) of n fixed-point sums. */
static int w_fx(h5s_store *s, const char *base, const char *name, const fx_num *v, int64_t n,
                const char *units, const char *meaning, vl_err *err)
{
    char p[PATH_MAX_LEN];
    double *f = vl_malloc((size_t)n * sizeof *f);
    if (!f)
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", h5s_path(s));
    for (int64_t i = 0; i < n; i++)
        f[i] = fx_to_f64(&v[i]);
    pj(p, base, name);
    int rc = w_f64(s, p, f, n, 0, units, meaning, err);
    vl_free(f);
    char ex[64];
    if (snprintf(ex, sizeof ex, "%s_exact", name) >= (int)sizeof ex)
        return vl_errf(err, VL_EARG, "stats: dataset name %s too long", name);
    pj(p, base, ex);
    _Static_assert(sizeof(fx_num) == FX_LIMBS * sizeof(int64_t), "fx_num has no padding");
    return rc ? rc : w_i64(s, p, (const int64_t *)(const void *)v, n, FX_LIMBS, FX_UNITS, meaning, err);
}

static void input_path(char *p, size_t n, const char *group, int l, stat_slot sl, int e)
{
    int k = sl >= STAT_EXPERT_IN
                ? snprintf(p, n, "%s/layers/%02d/experts/%03d/%s", group, l, e, stat_slot_name(sl))
                : snprintf(p, n, "%s/layers/%02d/%s", group, l, stat_slot_name(sl));
    VL_ASSERT(k > 0 && (size_t)k < n);
}

static int write_input(h5s_store *s, const char *g, const stat_input *in, int expert,
                       stat_slot sl, vl_err *err)
{
    const int K = in->cols;
    char p[PATH_MAX_LEN], w[256];
    int64_t cnt[2] = {in->rows, in->rows_routed};
    pj(p, g, "count");
    int rc = w_i64(s, p, &cnt[0], 1, 0, "rows", "rows (tokens) accumulated into this input; "
                   "for experts all rows given, route-all rows included", err);
    pj(p, g, "count_routed");
    rc = rc ? rc : w_i64(s, p, &cnt[1], 1, 0, "rows", "rows with routing weight > 0 (tokens "
                         "really routed); equals count for non-expert inputs", err);
    rc = rc ? rc : w_fx(s, g, "sum_x", in->sum_x, K, "activation", "Σx per input channel", err);
    rc = rc ? rc : w_fx(s, g, "sum_x2", in->sum_x2, K, "activation^2", "Σx² per input channel",
                        err);
    rc = rc ? rc : w_fx(s, g, "sum_x4", in->sum_x4, K, "activation^4", "Σx⁴ per input channel",
                        err);
    pj(p, g, "absmax");
    rc = rc ? rc : w_f64(s, p, in->absmax, K, 0, "activation", "max |x| per input channel", err);
    if (!rc && in->xtx) {
        rc = w_fx(s, g, "xtx", in->xtx, stat_xtx_packed(K), "activation^2", "XᵀX, packed upper "
                  "triangle row-major (i ≤ j), K(K+1)/2 entries", err);
    }
    snprintf(w, sizeof w, stat_slot_weights(sl), expert, expert, expert, expert);
    return rc ? rc : h5s_attr_set(s, g, "weights", w, err);
}

static int write_router(h5s_store *s, const char *g, const stat_router *r, vl_err *err)
{
    const int E = r->n_experts;
    char p[PATH_MAX_LEN];
    pj(p, g, "tokens");
    int rc = w_i64(s, p, &r->tokens, 1, 0, "tokens", "tokens routed in this layer", err);
    pj(p, g, "routed");
    rc = rc ? rc : w_i64(s, p, r->routed, E, 0, "tokens", "tokens whose top-k holds the expert "
                         "(replicated from the router logits)", err);
    rc = rc ? rc : w_fx(s, g, "sum_prob", r->sum_prob, E, "probability",
                        "Σ over tokens of the expert's softmax router probability", err);
    rc = rc ? rc : w_fx(s, g, "sum_weight", r->sum_weight, E, "probability",
                        "Σ over tokens of the expert's selected (top-k) weight", err);
    rc = rc ? rc : w_fx(s, g, "sum_entropy", &r->sum_entropy, 1, "nats",
                        "Σ over tokens of the routing distribution's entropy", err);
    pj(p, g, "coselect");
    return rc ? rc : w_i64(s, p, r->coselect, E, E, "tokens", "tokens selecting both experts "
                           "a and b; diagonal = routed", err);
}

int stat_write(const stat_acc *a, h5s_store *s, const char *group, vl_err *err)
{
    if (strlen(group) >= GROUP_MAX_LEN)
        return vl_errf(err, VL_EARG, "%s: group name too long: %.40s...", h5s_path(s), group);
    if (a->failed)
        return vl_errf(err, VL_EARG, "%s: %s: statistics hold an error: %s", h5s_path(s),
                       group, a->err.msg);
    const stat_config *c = &a->cfg;
    char p[PATH_MAX_LEN];
    pj(p, group, "layer_sparse");
    int64_t shape[1] = {c->n_layers};
    int rc = h5s_write(s, p, H5S_U8, a->sparse, 1, shape, "flag",
                       "1 = MoE layer (router and experts), 0 = dense MLP", err);
    for (int l = 0; !rc && l < c->n_layers; l++) {
        for (int sl = 0; !rc && sl < STAT_SLOT_COUNT; sl++)
            for (int e = 0; !rc && e < (sl >= STAT_EXPERT_IN ? c->n_experts : 1); e++) {
                const stat_input *in = stat_input_get(a, l, (stat_slot)sl, e);
                if (!in)
                    continue;
                input_path(p, sizeof p, group, l, (stat_slot)sl, e);
                rc = write_input(s, p, in, e, (stat_slot)sl, err);
            }
        const stat_router *r = stat_router_get(a, l);
        if (!rc && r) {
            VL_ASSERT(snprintf(p, sizeof p, "%s/layers/%02d/router", group, l) < (int)sizeof p);
            rc = write_router(s, p, r, err);
        }
    }
    const stat_tokens *tk = &a->tokens;
    if (!rc && c->token_stats && tk->n > 0) {
        pj(p, group, "tokens/entropy");
        rc = w_f64(s, p, tk->entropy, tk->n, 0, "nats", "next-token entropy of the model per "
                   "token, run order (sequence-major)", err);
        pj(p, group, "tokens/logprob");
        rc = rc ? rc : w_f64(s, p, tk->logprob, tk->n, 0, "nats", "log-probability of the "
                             "actual next token; NaN at each sequence's last token", err);
    }
    struct { const char *k; double v; } at[] = {
        {"n_layers", c->n_layers}, {"hidden", c->hidden}, {"attn_out", c->attn_out},
        {"n_experts", c->n_experts}, {"top_k", c->top_k}, {"norm_topk_prob", c->norm_topk_prob},
        {"moe_inter", c->moe_inter}, {"shared_inter", c->shared_inter},
        {"dense_inter", c->dense_inter}, {"vocab", c->vocab}, {"max_seq_len", c->max_seq_len},
        {"token_stats", c->token_stats}, {"n_tokens", (double)tk->n},
        {"fx_frac_bits", FX_FRAC_BITS}, {"fx_limbs", FX_LIMBS},
    };
    for (size_t i = 0; !rc && i < sizeof at / sizeof *at; i++)
        rc = h5s_attr_set_f64(s, group, at[i].k, at[i].v, err);
    /* MLA widths only where they exist, so files of other models are unchanged */
    if (!rc && c->q_lora > 0)
        rc = h5s_attr_set_f64(s, group, "q_lora", c->q_lora, err);
    if (!rc && c->kv_lora > 0)
        rc = h5s_attr_set_f64(s, group, "kv_lora", c->kv_lora, err);
    if (!rc && c->o_lora > 0)
        rc = h5s_attr_set_f64(s, group, "o_lora", c->o_lora, err);
    if (!rc && c->router_choice > 0)
        rc = h5s_attr_set_f64(s, group, "router_choice", c->router_choice, err);
    return rc;
}

/* ---------------------------------------------------------------- reading */

typedef struct {
    h5s_store *s;
    const char *group;
} xtx_probe;

static int stored_xtx(void *user, int l, stat_slot sl, int e)
{
    xtx_probe *pr = user;
    char p[PATH_MAX_LEN];
    input_path(p, sizeof p, pr->group, l, sl, e);
    VL_ASSERT(strlen(p) + 11 < sizeof p);
    strcat(p, "/xtx_exact");
    return h5s_exists(pr->s, p) == 1;
}

/* Read dataset base/name into dst, which must hold exactly n × n1 elements of type t. */
static int r_exact(h5s_store *s, const char *base, const char *name, h5s_dtype t, void *dst,
                   int64_t n, int64_t n1, size_t elem, vl_err *err)
{
    char p[PATH_MAX_LEN];
    pj(p, base, name);
    void *d = NULL;
    int nd = 0;
    int64_t sh[H5S_MAX_DIMS];
    int rc = h5s_read(s, p, t, &d, &nd, sh, err);
    if (rc)
        return rc;
    if (nd != (n1 ? 2 : 1) || sh[0] != n || (n1 && sh[1] != n1)) {
        vl_free(d);
        return vl_errf(err, VL_ESHAPE, "%s: %s: shape does not match the statistics layout",
                       h5s_path(s), p);
    }
    memcpy(dst, d, (size_t)n * (n1 ? (size_t)n1 : 1) * elem);
    vl_free(d);
    return 0;
}

static int read_input(h5s_store *s, const char *g, stat_input *in, vl_err *err)
{
    const int K = in->cols;
    const size_t fx = sizeof(fx_num) / FX_LIMBS;
    int rc = r_exact(s, g, "count", H5S_I64, &in->rows, 1, 0, 8, err);
    rc = rc ? rc : r_exact(s, g, "count_routed", H5S_I64, &in->rows_routed, 1, 0, 8, err);
    rc = rc ? rc : r_exact(s, g, "sum_x_exact", H5S_I64, in->sum_x, K, FX_LIMBS, fx, err);
    rc = rc ? rc : r_exact(s, g, "sum_x2_exact", H5S_I64, in->sum_x2, K, FX_LIMBS, fx, err);
    rc = rc ? rc : r_exact(s, g, "sum_x4_exact", H5S_I64, in->sum_x4, K, FX_LIMBS, fx, err);
    rc = rc ? rc : r_exact(s, g, "absmax", H5S_F64, in->absmax, K, 0, 8, err);
    if (!rc && in->xtx)
        rc = r_exact(s, g, "xtx_exact", H5S_I64, in->xtx, stat_xtx_packed(K), FX_LIMBS, fx, err);
    return rc;
}

static int read_router(h5s_store *s, const char *g, stat_router *r, vl_err *err)
{
    const int E = r->n_experts;
    const size_t fx = sizeof(fx_num) / FX_LIMBS;
    int rc = r_exact(s, g, "tokens", H5S_I64, &r->tokens, 1, 0, 8, err);
    rc = rc ? rc : r_exact(s, g, "routed", H5S_I64, r->routed, E, 0, 8, err);
    rc = rc ? rc : r_exact(s, g, "sum_prob_exact", H5S_I64, r->sum_prob, E, FX_LIMBS, fx, err);
    rc = rc ? rc : r_exact(s, g, "sum_weight_exact", H5S_I64, r->sum_weight, E, FX_LIMBS, fx,
                           err);
    rc = rc ? rc : r_exact(s, g, "sum_entropy_exact", H5S_I64, &r->sum_entropy, 1, FX_LIMBS, fx,
                           err);
    return rc ? rc : r_exact(s, g, "coselect", H5S_I64, r->coselect, E, E, 8, err);
}

/* The invariants the accumulator keeps (stats.h), checked on what a store holds, so that a
 * store contradicting itself is refused in one line instead of merged, allocated or plotted. */
static int check_input(h5s_store *s, const char *p, const stat_input *in, vl_err *err)
{
    if (in->rows < 0 || in->rows_routed < 0 || in->rows_routed > in->rows)
        return vl_errf(err, VL_EFORMAT, "%s: %s/count = %lld, %s/count_routed = %lld (want 0 <= "
                       "count_routed <= count)", h5s_path(s), p, (long long)in->rows, p,
                       (long long)in->rows_routed);
    for (int k = 0; k < in->cols; k++)
        if (!(in->absmax[k] >= 0) || isinf(in->absmax[k]))
            return vl_errf(err, VL_EFORMAT, "%s: %s/absmax[%d] = %g is not a finite magnitude",
                           h5s_path(s), p, k, in->absmax[k]);
    return 0;
}

static int check_router(h5s_store *s, const char *p, const stat_router *r, int top_k,
                        vl_err *err)
{
    const int E = r->n_experts;
    int64_t sum = 0, want;
    if (r->tokens < 0)
        return vl_errf(err, VL_EFORMAT, "%s: %s/tokens = %lld is negative", h5s_path(s), p,
                       (long long)r->tokens);
    for (int e = 0; e < E; e++)
        if (r->routed[e] < 0 || num_add_i64(sum, r->routed[e], &sum))
            return vl_errf(err, VL_EFORMAT, "%s: %s/routed[%d] = %lld is not a count (or the "
                           "counts overflow)", h5s_path(s), p, e, (long long)r->routed[e]);
    if (num_mul_i64(r->tokens, top_k, &want) || sum != want)
        return vl_errf(err, VL_EFORMAT, "%s: %s/routed sums to %lld, not %s/tokens x top_k = "
                       "%lld x %d", h5s_path(s), p, (long long)sum, p, (long long)r->tokens, top_k);
    for (int a = 0; a < E; a++)
        for (int b = 0; b < E; b++) {
            int64_t x = r->coselect[(size_t)a * E + b];
            if (x < 0 || x != r->coselect[(size_t)b * E + a] || (a == b && x != r->routed[a]))
                return vl_errf(err, VL_EFORMAT, "%s: %s/coselect[%d][%d] = %lld (want a "
                               "symmetric count matrix whose diagonal is routed)",
                               h5s_path(s), p, a, b, (long long)x);
        }
    return 0;
}

/* An integer attribute within [lo, hi]. */
static int attr_int(h5s_store *s, const char *g, const char *k, long long lo, long long hi,
                    long long *v, vl_err *err)
{
    double d;
    int rc = h5s_attr_get_f64(s, g, k, &d, err);
    if (rc)
        return rc;
    int64_t w;
    if (num_whole(d, lo, hi, &w))
        return vl_errf(err, VL_ERANGE, "%s: %s: attribute %s = %g out of range", h5s_path(s), g,
                       k, d);
    *v = w;
    return 0;
}

int stat_read(stat_acc **out, h5s_store *s, const char *group, vl_err *err)
{
    *out = NULL;
    if (strlen(group) >= GROUP_MAX_LEN)
        return vl_errf(err, VL_EARG, "%s: group name too long: %.40s...", h5s_path(s), group);
    const char *keys[] = {"n_layers", "hidden", "attn_out", "n_experts", "top_k",
                          "norm_topk_prob", "moe_inter", "shared_inter", "dense_inter", "vocab",
                          "max_seq_len", "token_stats", "n_tokens", "fx_frac_bits"};
    long long v[14];
    int rc = 0;
    for (int i = 0; !rc && i < 14; i++)
        rc = attr_int(s, group, keys[i], 0, i == 12 ? (1ll << 40) : (1 << 30), &v[i], err);
    if (rc)
        return rc;
    long long lora[4] = {0, 0, 0, 0}; /* absent (no MLA / deepseek_v4): 0 */
    const char *lk[4] = {"q_lora", "kv_lora", "o_lora", "router_choice"};
    for (int i = 0; !rc && i < 4; i++)
        if ((rc = attr_int(s, group, lk[i], 1, 1 << 20, &lora[i], err)) == VL_ENOTFOUND)
            rc = 0;
    if (rc)
        return rc;
    if (v[13] != FX_FRAC_BITS)
        return vl_errf(err, VL_EFORMAT, "%s: %s: fixed-point scale 2^-%lld, expected 2^-%d",
                       h5s_path(s), group, v[13], FX_FRAC_BITS);
    char p[PATH_MAX_LEN];
    pj(p, group, "layer_sparse");
    unsigned char *sparse = NULL;
    int nd = 0;
    int64_t sh[H5S_MAX_DIMS];
    rc = h5s_read(s, p, H5S_U8, (void **)&sparse, &nd, sh, err);
    if (rc)
        return rc;
    if (nd != 1 || sh[0] != v[0]) {
        vl_free(sparse);
        return vl_errf(err, VL_ESHAPE, "%s: %s: %lld layers expected", h5s_path(s), p, v[0]);
    }
    xtx_probe pr = {s, group};
    stat_config c = stat_config_defaults();
    c.n_layers = (int)v[0];
    c.hidden = (int)v[1];
    c.attn_out = (int)v[2];
    c.n_experts = (int)v[3];
    c.top_k = (int)v[4];
    c.norm_topk_prob = (int)v[5];
    c.moe_inter = (int)v[6];
    c.shared_inter = (int)v[7];
    c.dense_inter = (int)v[8];
    c.vocab = (int)v[9];
    c.max_seq_len = (int)v[10];
    c.token_stats = (int)v[11];
    c.max_tokens = v[12];
    c.q_lora = (int)lora[0];
    c.kv_lora = (int)lora[1];
    c.o_lora = (int)lora[2];
    c.router_choice = (int)lora[3];
    c.layer_sparse = sparse;
    c.want_xtx = stored_xtx;
    c.want_xtx_user = &pr;
    stat_acc *a;
    rc = stat_new(&a, &c, err);
    vl_free(sparse);
    if (rc)
        return vl_errctx(err, rc, "%s: %s", h5s_path(s), group);
    a->cfg.want_xtx = NULL; /* the probe lived on this stack frame */
    a->cfg.want_xtx_user = NULL;
    for (int l = 0; !rc && l < c.n_layers; l++) {
        for (int sl = 0; !rc && sl < STAT_SLOT_COUNT; sl++)
            for (int e = 0; !rc && e < (sl >= STAT_EXPERT_IN ? c.n_experts : 1); e++) {
                stat_input *in = stat_input_mut(a, l, (stat_slot)sl, e);
                if (!in)
                    continue;
                input_path(p, sizeof p, group, l, (stat_slot)sl, e);
                rc = read_input(s, p, in, err);
                rc = rc ? rc : check_input(s, p, in, err);
            }
        stat_router *r = stat_router_mut(a, l);
        if (!rc && r) {
            VL_ASSERT(snprintf(p, sizeof p, "%s/layers/%02d/router", group, l) < (int)sizeof p);
            rc = read_router(s, p, r, err);
            rc = rc ? rc : check_router(s, p, r, c.top_k, err);
        }
    }
    stat_tokens *tk = stat_tokens_mut(a);
    if (!rc && c.token_stats && c.max_tokens > 0) {
        pj(p, group, "tokens");
        rc = r_exact(s, p, "entropy", H5S_F64, tk->entropy, c.max_tokens, 0, 8, err);
        rc = rc ? rc : r_exact(s, p, "logprob", H5S_F64, tk->logprob, c.max_tokens, 0, 8, err);
        tk->n = c.max_tokens;
    }
    if (rc) {
        stat_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

int stat_read_sets(stat_acc **out, h5s_store *s, const char *const *names, int n,
                   vl_err *err)
{
    stat_acc *acc = NULL, *more = NULL;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        char g[160];
        snprintf(g, sizeof g, "/stats/%s", names[i]);
        if (!h5s_exists(s, g))
            rc = vl_errf(err, VL_ENOTFOUND, "%s: no statistics of set \"%s\" (%s)",
                         h5s_path(s), names[i], g);
        else if (!acc)
            rc = stat_read(&acc, s, g, err);
        else if (!(rc = stat_read(&more, s, g, err)))
            rc = stat_merge(acc, more, err);
        stat_free(more);
        more = NULL;
    }
    if (rc) {
        stat_free(acc);
        return rc;
    }
    *out = acc;
    return 0;
}
