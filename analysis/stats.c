/* analysis/stats.c — the tap consumer: per-input raw sums, router and per-token statistics.
 *
 * Everything is sized at stat_new; the tap callback never allocates. Exactness rests on one
 * rule (stats.h): float64 partial sums are formed over the rows of one sequence only, in row
 * order, then added to core/fx fixed-point totals.
 */
#include "stats_int.h"

#include "../core/kern.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const slot_names[STAT_SLOT_COUNT] = {
    [STAT_ATTN_IN] = "attn_in",
    [STAT_O_IN] = "o_in",
    [STAT_MLP_IN] = "mlp_in",
    [STAT_SHARED_DOWN] = "shared_down_in",
    [STAT_MLP_DOWN] = "mlp_down_in",
    [STAT_Q_B_IN] = "q_b_in",
    [STAT_KV_B_IN] = "kv_b_in",
    [STAT_O_LORA_IN] = "o_lora_in",
    [STAT_EXPERT_IN] = "in",
    [STAT_EXPERT_DOWN] = "down_in",
};

static const char *const slot_weights[STAT_SLOT_COUNT] = {
    [STAT_ATTN_IN] = "self_attn.q_proj self_attn.k_proj self_attn.v_proj self_attn.q_a_proj "
                     "self_attn.kv_a_proj_with_mqa attn.wq_a attn.wkv attn.compressor.wkv "
                     "attn.compressor.wgate attn.indexer.compressor.wkv "
                     "attn.indexer.compressor.wgate attn.indexer.weights_proj",
    [STAT_O_IN] = "self_attn.o_proj attn.wo_a",
    [STAT_MLP_IN] = "mlp.gate mlp.shared_expert.gate_proj mlp.shared_expert.up_proj "
                    "mlp.shared_expert_gate mlp.gate_proj mlp.up_proj "
                    "mlp.shared_experts.gate_proj mlp.shared_experts.up_proj ffn.gate "
                    "ffn.shared_experts.w1 ffn.shared_experts.w3",
    [STAT_SHARED_DOWN] = "mlp.shared_expert.down_proj mlp.shared_experts.down_proj "
                         "ffn.shared_experts.w2",
    [STAT_MLP_DOWN] = "mlp.down_proj",
    [STAT_Q_B_IN] = "self_attn.q_b_proj attn.wq_b attn.indexer.wq_b",
    [STAT_KV_B_IN] = "self_attn.kv_b_proj",
    [STAT_O_LORA_IN] = "attn.wo_b",
    [STAT_EXPERT_IN] = "mlp.experts.%d.gate_proj mlp.experts.%d.up_proj ffn.experts.%d.w1 "
                       "ffn.experts.%d.w3",
    [STAT_EXPERT_DOWN] = "mlp.experts.%d.down_proj ffn.experts.%d.w2",
};

_Static_assert(sizeof slot_names / sizeof *slot_names == STAT_SLOT_COUNT, "slot table");

const char *stat_slot_name(stat_slot s) { return s < STAT_SLOT_COUNT ? slot_names[s] : "?"; }
const char *stat_slot_weights(stat_slot s) { return s < STAT_SLOT_COUNT ? slot_weights[s] : ""; }

/* ---------------------------------------------------------------- helpers */

static int slot_index(const stat_acc *a, stat_slot slot, int expert)
{
    if ((int)slot < FIXED_SLOTS)
        return (int)slot;
    return FIXED_SLOTS + (slot == STAT_EXPERT_DOWN ? a->cfg.n_experts : 0) + expert;
}

static stat_input *input_at(const stat_acc *a, int layer, stat_slot slot, int expert)
{
    if (!a || layer < 0 || layer >= a->cfg.n_layers || slot >= STAT_SLOT_COUNT)
        return NULL;
    if (slot >= STAT_EXPERT_IN && (expert < 0 || expert >= a->cfg.n_experts))
        return NULL;
    stat_input *in = &a->inputs[(size_t)layer * a->per_layer + slot_index(a, slot, expert)];
    return in->cols > 0 ? in : NULL;
}

/* Width of an input in a layer, 0 when the layer has no such input. */
static int slot_cols(const stat_config *c, int sparse, stat_slot s)
{
    switch (s) {
    case STAT_ATTN_IN: return c->hidden;
    case STAT_O_IN: return c->attn_out;
    case STAT_MLP_IN: return c->hidden;
    case STAT_SHARED_DOWN: return sparse ? c->shared_inter : 0;
    case STAT_MLP_DOWN: return sparse ? 0 : c->dense_inter;
    case STAT_Q_B_IN: return c->q_lora;
    case STAT_KV_B_IN: return c->kv_lora;
    case STAT_O_LORA_IN: return c->o_lora;
    case STAT_EXPERT_IN: return sparse ? c->hidden : 0;
    case STAT_EXPERT_DOWN: return sparse ? c->moe_inter : 0;
    default: return 0;
    }
}

void stat_label(char *buf, size_t n, int layer, stat_slot s, int e)
{
    if (s >= STAT_EXPERT_IN)
        snprintf(buf, n, "layer %d experts.%d.%s", layer, e, slot_names[s]);
    else
        snprintf(buf, n, "layer %d %s", layer, slot_names[s]);
}

/* The first error is the cause; later ones are consequences and are dropped. */
void stat_fail(stat_acc *a, int code, const char *fmt, ...)
{
    if (a->failed)
        return;
    a->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->err.msg, sizeof a->err.msg, fmt, ap);
    va_end(ap);
    a->err.code = code;
}

/* ---------------------------------------------------------------- lifecycle */

stat_config stat_config_defaults(void)
{
    stat_config c;
    memset(&c, 0, sizeof c);
    c.top_k = 1;
    return c;
}

static void input_free(stat_input *in)
{
    vl_free(in->sum_x);
    vl_free(in->sum_x2);
    vl_free(in->sum_x4);
    vl_free(in->absmax);
    vl_free(in->xtx);
}

static int input_alloc(stat_input *in, int cols, int xtx)
{
    in->cols = cols;
    in->sum_x = vl_calloc((size_t)cols, sizeof(fx_num));
    in->sum_x2 = vl_calloc((size_t)cols, sizeof(fx_num));
    in->sum_x4 = vl_calloc((size_t)cols, sizeof(fx_num));
    in->absmax = vl_calloc((size_t)cols, sizeof(double));
    in->xtx = xtx ? vl_calloc((size_t)stat_xtx_packed(cols), sizeof(fx_num)) : NULL;
    return in->sum_x && in->sum_x2 && in->sum_x4 && in->absmax && (!xtx || in->xtx);
}

static int router_alloc(stat_router *r, int e)
{
    r->n_experts = e;
    r->routed = vl_calloc((size_t)e, sizeof(int64_t));
    r->sum_prob = vl_calloc((size_t)e, sizeof(fx_num));
    r->sum_weight = vl_calloc((size_t)e, sizeof(fx_num));
    r->coselect = vl_calloc((size_t)e * e, sizeof(int64_t));
    return r->routed && r->sum_prob && r->sum_weight && r->coselect;
}

static void router_free(stat_router *r)
{
    vl_free(r->routed);
    vl_free(r->sum_prob);
    vl_free(r->sum_weight);
    vl_free(r->coselect);
}

static int check_config(const stat_config *c, vl_err *err)
{
    const int big = 1 << 20; /* far above any real width; keeps size products in range */
    if (c->n_layers <= 0 || c->n_layers > 4096)
        return vl_errf(err, VL_ECONFIG, "stats: n_layers %d out of range", c->n_layers);
    if (c->hidden <= 0 || c->hidden > big || c->attn_out <= 0 || c->attn_out > big)
        return vl_errf(err, VL_ECONFIG, "stats: hidden %d / attn_out %d out of range",
                       c->hidden, c->attn_out);
    if (c->n_experts < 0 || c->n_experts > 4096 ||
        (c->n_experts > 0 && (c->top_k <= 0 || c->top_k > c->n_experts)))
        return vl_errf(err, VL_ECONFIG, "stats: n_experts %d / top_k %d inconsistent",
                       c->n_experts, c->top_k);
    if (c->moe_inter < 0 || c->moe_inter > big || c->shared_inter < 0 ||
        c->shared_inter > big || c->dense_inter < 0 || c->dense_inter > big ||
        c->vocab < 0 || c->vocab > (1 << 24))
        return vl_errf(err, VL_ECONFIG, "stats: MLP widths or vocab out of range");
    if (c->q_lora < 0 || c->q_lora > big || c->kv_lora < 0 || c->kv_lora > big)
        return vl_errf(err, VL_ECONFIG, "stats: MLA LoRA widths out of range");
    if (c->max_seq_len <= 0 || c->max_seq_len > (1 << 24))
        return vl_errf(err, VL_ECONFIG, "stats: max_seq_len %d out of range", c->max_seq_len);
    if (c->token_stats && (c->vocab <= 0 || c->max_tokens < 0))
        return vl_errf(err, VL_ECONFIG, "stats: token statistics need vocab > 0");
    for (int l = 0; l < c->n_layers; l++) {
        int sp = c->layer_sparse ? c->layer_sparse[l] != 0 : c->n_experts > 0;
        if (sp && (c->n_experts <= 0 || c->moe_inter <= 0))
            return vl_errf(err, VL_ECONFIG, "stats: layer %d is MoE but n_experts %d, "
                           "moe_inter %d", l, c->n_experts, c->moe_inter);
        if (!sp && c->dense_inter <= 0)
            return vl_errf(err, VL_ECONFIG, "stats: layer %d is dense but dense_inter %d", l,
                           c->dense_inter);
    }
    return 0;
}

int stat_new(stat_acc **out, const stat_config *cfg, vl_err *err)
{
    *out = NULL;
    int rc = check_config(cfg, err);
    if (rc)
        return rc;
    stat_acc *a = vl_calloc(1, sizeof *a);
    if (!a)
        return vl_errf(err, VL_ENOMEM, "stats: out of memory");
    a->cfg = *cfg;
    const int L = cfg->n_layers, E = cfg->n_experts;
    a->per_layer = FIXED_SLOTS + 2 * E;
    a->sparse = vl_malloc((size_t)L);
    a->inputs = vl_calloc((size_t)L * a->per_layer, sizeof *a->inputs);
    a->routers = vl_calloc((size_t)L, sizeof *a->routers);
    int ok = a->sparse && a->inputs && a->routers;
    int max_cols = 1;
    for (int l = 0; ok && l < L; l++) {
        a->sparse[l] = cfg->layer_sparse ? cfg->layer_sparse[l] != 0 : E > 0;
        for (int s = 0; ok && s < STAT_SLOT_COUNT; s++) {
            int cols = slot_cols(cfg, a->sparse[l], (stat_slot)s);
            int ne = s >= STAT_EXPERT_IN ? E : 1;
            for (int e = 0; ok && cols > 0 && e < ne; e++) {
                int ex = s >= STAT_EXPERT_IN ? e : -1;
                int x = cfg->want_xtx && cfg->want_xtx(cfg->want_xtx_user, l, (stat_slot)s, ex);
                ok = input_alloc(&a->inputs[(size_t)l * a->per_layer +
                                            slot_index(a, (stat_slot)s, e)], cols, x);
                max_cols = cols > max_cols ? cols : max_cols;
                if (x && cols > a->kx)
                    a->kx = cols;
            }
        }
        if (ok && a->sparse[l])
            ok = router_alloc(&a->routers[l], E);
    }
    a->cfg.layer_sparse = a->sparse;
    if (ok) {
        a->p1 = vl_malloc((size_t)max_cols * sizeof(double));
        a->p2 = vl_malloc((size_t)max_cols * sizeof(double));
        a->p4 = vl_malloc((size_t)max_cols * sizeof(double));
        a->rp = vl_malloc((size_t)(E + 1) * sizeof(double));
        a->rw = vl_malloc((size_t)(E + 1) * sizeof(double));
        a->rprob = vl_malloc((size_t)(E + 1) * sizeof(double));
        a->sel = vl_malloc((size_t)(cfg->top_k + 1) * sizeof(int));
        ok = a->p1 && a->p2 && a->p4 && a->rp && a->rw && a->rprob && a->sel;
    }
    if (ok && a->kx > 0) {
        /* up to 16 sequences' partials per fold, within 64 MiB (one for wide inputs) */
        size_t one = (size_t)a->kx * a->kx * sizeof(double), cap = (size_t)64 << 20;
        a->xtx_slots = one * 16 <= cap ? 16 : one >= cap ? 1 : (int)(cap / one);
        a->xtx_part = vl_malloc(one * a->xtx_slots);
        a->xtx_fail = vl_malloc((size_t)a->kx * sizeof(int));
        a->rowbuf = vl_malloc((size_t)cfg->max_seq_len * a->kx * sizeof(float));
        ok = a->xtx_part && a->xtx_fail && a->rowbuf;
    }
    if (ok && cfg->token_stats && cfg->max_tokens > 0) {
        a->tokens.entropy = vl_malloc((size_t)cfg->max_tokens * sizeof(double));
        a->tokens.logprob = vl_malloc((size_t)cfg->max_tokens * sizeof(double));
        a->tokens.cap = cfg->max_tokens;
        ok = a->tokens.entropy && a->tokens.logprob;
    }
    if (!ok) {
        stat_free(a);
        return vl_errf(err, VL_ENOMEM, "stats: out of memory for the accumulators");
    }
    *out = a;
    return 0;
}

void stat_free(stat_acc *a)
{
    if (!a)
        return;
    if (a->inputs)
        for (size_t i = 0; i < (size_t)a->cfg.n_layers * a->per_layer; i++)
            input_free(&a->inputs[i]);
    if (a->routers)
        for (int l = 0; l < a->cfg.n_layers; l++)
            router_free(&a->routers[l]);
    vl_free(a->inputs);
    vl_free(a->routers);
    vl_free(a->sparse);
    vl_free(a->tokens.entropy);
    vl_free(a->tokens.logprob);
    vl_free(a->p1);
    vl_free(a->p2);
    vl_free(a->p4);
    vl_free(a->rp);
    vl_free(a->rw);
    vl_free(a->rprob);
    vl_free(a->sel);
    vl_free(a->xtx_part);
    vl_free(a->xtx_fail);
    vl_free(a->rowbuf);
    vl_free(a);
}

const stat_config *stat_cfg(const stat_acc *a) { return &a->cfg; }

/* ---------------------------------------------------------------- accessors */

const stat_input *stat_input_get(const stat_acc *a, int layer, stat_slot slot, int expert)
{
    return input_at(a, layer, slot, expert);
}

stat_input *stat_input_mut(stat_acc *a, int layer, stat_slot slot, int expert)
{
    return input_at(a, layer, slot, expert);
}

const stat_router *stat_router_get(const stat_acc *a, int layer)
{
    if (!a || layer < 0 || layer >= a->cfg.n_layers || !a->sparse[layer])
        return NULL;
    return &a->routers[layer];
}

stat_router *stat_router_mut(stat_acc *a, int layer)
{
    return (stat_router *)stat_router_get(a, layer);
}

const stat_tokens *stat_tokens_get(const stat_acc *a) { return &a->tokens; }
stat_tokens *stat_tokens_mut(stat_acc *a) { return &a->tokens; }

int stat_status(const stat_acc *a, vl_err *err)
{
    if (!a->failed)
        return 0;
    return vl_errf(err, a->err.code, "%s", a->err.msg);
}

void stat_input_f64(const stat_input *in, double *sum_x, double *sum_x2, double *sum_x4,
                    double *xtx)
{
    const int K = in->cols;
    for (int c = 0; c < K; c++) {
        if (sum_x)
            sum_x[c] = fx_to_f64(&in->sum_x[c]);
        if (sum_x2)
            sum_x2[c] = fx_to_f64(&in->sum_x2[c]);
        if (sum_x4)
            sum_x4[c] = fx_to_f64(&in->sum_x4[c]);
    }
    if (!xtx)
        return;
    VL_ASSERT(in->xtx);
    const fx_num *p = in->xtx;
    for (int i = 0; i < K; i++)
        for (int j = i; j < K; j++, p++)
            xtx[(size_t)i * K + j] = xtx[(size_t)j * K + i] = fx_to_f64(p);
}

/* ---------------------------------------------------------------- merge, reset */

/* Why two configurations differ, or NULL when they match. */
static const char *config_diff(const stat_acc *x, const stat_acc *y)
{
    const stat_config *a = &x->cfg, *b = &y->cfg;
    if (a->n_layers != b->n_layers)
        return "number of layers";
    if (a->hidden != b->hidden || a->attn_out != b->attn_out || a->moe_inter != b->moe_inter ||
        a->shared_inter != b->shared_inter || a->dense_inter != b->dense_inter ||
        a->q_lora != b->q_lora || a->kv_lora != b->kv_lora)
        return "layer widths";
    if (a->n_experts != b->n_experts || a->top_k != b->top_k ||
        a->norm_topk_prob != b->norm_topk_prob || memcmp(x->sparse, y->sparse, a->n_layers))
        return "experts or routing";
    if (a->token_stats != b->token_stats || (a->token_stats && a->vocab != b->vocab))
        return "token statistics";
    for (size_t i = 0; i < (size_t)a->n_layers * x->per_layer; i++)
        if (!x->inputs[i].xtx != !y->inputs[i].xtx)
            return "set of inputs with XᵀX";
    return NULL;
}

static int add_fx(fx_num *d, const fx_num *s, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (fx_add(&d[i], &s[i]))
            return -1;
    return 0;
}

static int add_i64(int64_t *d, const int64_t *s, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (__builtin_add_overflow(d[i], s[i], &d[i]))
            return -1;
    return 0;
}

static int merge_input(stat_input *d, const stat_input *s)
{
    const int K = d->cols;
    for (int c = 0; c < K; c++)
        d->absmax[c] = s->absmax[c] > d->absmax[c] ? s->absmax[c] : d->absmax[c];
    return add_i64(&d->rows, &s->rows, 1) || add_i64(&d->rows_routed, &s->rows_routed, 1) ||
           add_fx(d->sum_x, s->sum_x, K) || add_fx(d->sum_x2, s->sum_x2, K) ||
           add_fx(d->sum_x4, s->sum_x4, K) ||
           (d->xtx && add_fx(d->xtx, s->xtx, stat_xtx_packed(K)));
}

static int merge_router(stat_router *d, const stat_router *s)
{
    const int E = d->n_experts;
    return add_i64(&d->tokens, &s->tokens, 1) || add_i64(d->routed, s->routed, E) ||
           add_fx(d->sum_prob, s->sum_prob, E) || add_fx(d->sum_weight, s->sum_weight, E) ||
           add_fx(&d->sum_entropy, &s->sum_entropy, 1) ||
           add_i64(d->coselect, s->coselect, (int64_t)E * E);
}

static int merge_tokens(stat_tokens *d, const stat_tokens *s)
{
    if (d->n + s->n > d->cap) {
        int64_t cap = d->n + s->n;
        double *h = vl_realloc(d->entropy, (size_t)cap * sizeof *h);
        if (h)
            d->entropy = h;
        double *lp = h ? vl_realloc(d->logprob, (size_t)cap * sizeof *lp) : NULL;
        if (!lp)
            return -1;
        d->logprob = lp;
        d->cap = cap;
    }
    if (s->n > 0) {
        memcpy(d->entropy + d->n, s->entropy, (size_t)s->n * sizeof *d->entropy);
        memcpy(d->logprob + d->n, s->logprob, (size_t)s->n * sizeof *d->logprob);
    }
    d->n += s->n;
    return 0;
}

int stat_merge(stat_acc *dst, const stat_acc *src, vl_err *err)
{
    if (dst->failed || src->failed)
        return vl_errf(err, VL_EARG, "stats merge: an accumulator holds an error: %s",
                       dst->failed ? dst->err.msg : src->err.msg);
    const char *why = config_diff(dst, src);
    if (why)
        return vl_errf(err, VL_ESHAPE, "stats merge: the two accumulators differ in %s", why);
    for (int l = 0; l < dst->cfg.n_layers; l++) {
        for (int i = 0; i < dst->per_layer; i++) {
            stat_input *d = &dst->inputs[(size_t)l * dst->per_layer + i];
            if (d->cols && merge_input(d, &src->inputs[(size_t)l * src->per_layer + i]))
                return vl_errf(err, VL_ERANGE, "stats merge: layer %d input %d: sum out of "
                               "range", l, i);
        }
        if (dst->sparse[l] && merge_router(&dst->routers[l], &src->routers[l]))
            return vl_errf(err, VL_ERANGE, "stats merge: layer %d router: sum out of range", l);
    }
    if (merge_tokens(&dst->tokens, &src->tokens))
        return vl_errf(err, VL_ENOMEM, "stats merge: out of memory for %lld tokens",
                       (long long)(dst->tokens.n + src->tokens.n));
    return 0;
}

void stat_reset(stat_acc *a)
{
    for (size_t i = 0; i < (size_t)a->cfg.n_layers * a->per_layer; i++) {
        stat_input *in = &a->inputs[i];
        if (!in->cols)
            continue;
        in->rows = in->rows_routed = 0;
        memset(in->sum_x, 0, (size_t)in->cols * sizeof(fx_num));
        memset(in->sum_x2, 0, (size_t)in->cols * sizeof(fx_num));
        memset(in->sum_x4, 0, (size_t)in->cols * sizeof(fx_num));
        memset(in->absmax, 0, (size_t)in->cols * sizeof(double));
        if (in->xtx)
            memset(in->xtx, 0, (size_t)stat_xtx_packed(in->cols) * sizeof(fx_num));
    }
    for (int l = 0; l < a->cfg.n_layers; l++) {
        stat_router *r = &a->routers[l];
        if (!r->n_experts)
            continue;
        const int E = r->n_experts;
        r->tokens = 0;
        memset(r->routed, 0, (size_t)E * sizeof(int64_t));
        memset(r->sum_prob, 0, (size_t)E * sizeof(fx_num));
        memset(r->sum_weight, 0, (size_t)E * sizeof(fx_num));
        memset(&r->sum_entropy, 0, sizeof r->sum_entropy);
        memset(r->coselect, 0, (size_t)E * E * sizeof(int64_t));
    }
    a->tokens.n = 0;
    a->failed = 0;
    memset(&a->err, 0, sizeof a->err);
    a->ids = NULL;
}
