/* analysis/spass.c — the statistics pass (see spass.h): stat_config from the model, the XᵀX
 * selection by regex on tensor names, batched forwards with progress.
 */
#define _POSIX_C_SOURCE 200809L
#include "spass.h"

#include "lfwd.h"
#include "pipeline.h"
#include "sfile.h"

#include "../core/par.h"
#include "../core/prog.h"

#include <regex.h>
#include <stdio.h>
#include <string.h>

struct spass {
    const model *m;
    spass_opts o;
    regex_t re;       /* compiled --hessian pattern (has_re) */
    int has_re;
    fwd_state *st;    /* batch × max_len */
    pl_pipe *pl;      /* the ranks' pipeline (one stage when none) */
    int n_xtx;        /* inputs selected by the last spass_acc_new */
};

spass_opts spass_opts_defaults(void)
{
    spass_opts o = {8, 256, NULL, 0, 0, 1, 0, 0, 1};
    return o;
}

/* ---------------------------------------------------------------- XᵀX selection */

/* Does any weight of the model that reads (layer, slot, expert) match the selection? */
static int want_xtx(void *user, int layer, stat_slot slot, int expert)
{
    spass *p = user;
    if (p->o.no_hessian)
        return 0;
    if (!p->has_re)
        return 1;
    char list[512], name[256];
    snprintf(list, sizeof list, "%s", stat_slot_weights(slot));
    for (char *save = NULL, *w = strtok_r(list, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        char rel[192];
        if (strstr(w, "%d"))
            snprintf(rel, sizeof rel, "%.*s%d%s", (int)(strstr(w, "%d") - w), w, expert,
                     strstr(w, "%d") + 2);
        else
            snprintf(rel, sizeof rel, "%s", w);
        snprintf(name, sizeof name, "model.layers.%d.%s.weight", layer, rel);
        if (model_tensor_find(p->m, name) >= 0 && regexec(&p->re, name, 0, NULL, 0) == 0)
            return 1;
    }
    return 0;
}

static int count_xtx(void *user, int layer, stat_slot slot, int expert)
{
    spass *p = user;
    int w = want_xtx(user, layer, slot, expert);
    p->n_xtx += w;
    return w;
}

/* ---------------------------------------------------------------- lifecycle */

int spass_new(spass **out, const model *m, const spass_opts *o, vl_err *err)
{
    *out = NULL;
    if (o->batch <= 0 || o->max_len <= 0)
        return vl_errf(err, VL_EARG, "stats: batch %d and length %d must be > 0", o->batch,
                       o->max_len);
    if (o->layer_major && o->pipeline > 1) {
        return vl_errf(err, VL_EARG, "layer-major statistics (a memory cap) and a pipeline of "
                       "%d stages cannot be combined: choose one", o->pipeline);
    }
    spass *p = vl_calloc(1, sizeof *p);
    if (!p)
        return vl_errf(err, VL_ENOMEM, "stats: out of memory");
    p->m = m;
    p->o = *o;
    p->o.hessian = NULL; /* not kept: the caller's string need not outlive us */
    if (o->hessian && !o->no_hessian) {
        int rc = regcomp(&p->re, o->hessian, REG_EXTENDED | REG_NOSUB);
        if (rc) {
            char msg[256];
            regerror(rc, &p->re, msg, sizeof msg);
            vl_free(p);
            return vl_errf(err, VL_EARG, "--hessian \"%s\": %s", o->hessian, msg);
        }
        p->has_re = 1;
    }
    int rc = fwd_state_new(&p->st, m, o->batch, o->max_len, err);
    if (!rc)
        rc = pl_new(&p->pl, m, o->pipeline > 1 ? o->pipeline : 1,
                    (int64_t)o->batch * o->max_len, err);
    if (rc) {
        spass_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int spass_acc_new(spass *p, int64_t max_tokens, stat_acc **out, vl_err *err)
{
    const hfc_config *c = model_config(p->m);
    unsigned char sparse[HFC_MAX_LAYERS];
    for (int l = 0; l < c->n_layers; l++)
        sparse[l] = c->layer_is_moe[l] != 0;
    stat_config sc = stat_config_defaults();
    sc.n_layers = c->n_layers;
    sc.hidden = c->hidden;
    sc.attn_out = c->n_heads * c->head_dim;
    if (c->arch == HFC_DEEPSEEK_V3) { /* MLA widths and the model's own routing */
        sc.attn_out = c->n_heads * c->ds.v_head_dim;
        sc.q_lora = c->ds.q_lora_rank;
        sc.kv_lora = c->ds.kv_lora_rank;
        sc.sigmoid_scores = 1;
    }
    sc.n_experts = c->n_experts;
    sc.top_k = c->n_experts_per_tok;
    sc.norm_topk_prob = c->norm_topk_prob;
    sc.moe_inter = c->moe_intermediate;
    sc.shared_inter = c->shared_intermediate;
    sc.dense_inter = c->intermediate;
    if (c->arch == HFC_DEEPSEEK_V4) { /* fwd_dsv4.c's taps */
        sc.attn_out = c->n_heads * c->head_dim / c->v4.o_groups; /* wo_a's per-group input */
        sc.q_lora = c->v4.q_lora_rank;
        sc.o_lora = c->v4.o_groups * c->v4.o_lora_rank;
        sc.router_choice = 1;
    }
    sc.vocab = c->vocab;
    sc.layer_sparse = sparse;
    sc.max_seq_len = p->o.max_len;
    sc.token_stats = 1;
    sc.max_tokens = max_tokens;
    sc.want_xtx = count_xtx;
    sc.want_xtx_user = p;
    p->n_xtx = 0;
    return stat_new(out, &sc, err);
}

int spass_xtx_inputs(const spass *p) { return p->n_xtx; }

/* ---------------------------------------------------------------- the pass */

typedef struct {
    stat_acc *a;
    int seq_len, n_stage, n_tok; /* n_tok: tokens this rank runs per stage */
    prog *pg;
    char *what;
    size_t what_cap;
    const char *label;
} lm_ctx;

/* lfwd's hooks: progress per stage; the ids of each batch (the token statistics read them at
 * TAP_LOGITS); the accumulator's first error stops the pass. */
static int lm_stage(void *user, int stage, vl_err *err)
{
    lm_ctx *x = user;
    snprintf(x->what, x->what_cap, "stats %s stage %d/%d", x->label, stage + 2, x->n_stage);
    prog_update(x->pg, (int64_t)(stage + 1) * x->n_tok);
    return stat_status(x->a, err);
}

static int lm_batch(void *user, int stage, int seq0, int n, const int32_t *ids, vl_err *err)
{
    lm_ctx *x = user;
    (void)stage;
    (void)seq0;
    int rc = stat_status(x->a, err);
    return rc ? rc : stat_begin_batch(x->a, ids, n, x->seq_len, err);
}

/* Layer-major: this rank's batches (b ≡ rank mod R, in order: each keeps its companions, and
 * only the last batch of the set can be short, so it stays last) through lfwd_run. */
static int run_layer_major(spass *p, stat_acc *a, const int32_t *ids, int n_seq, int seq_len,
                           const fwd_opts *fo, const tap_set *taps, const char *label,
                           vl_err *err)
{
    int B = p->o.batch, n_batch = (n_seq + B - 1) / B, mine = 0;
    for (int b = 0; b < n_batch; b++)
        if (par_mine(b))
            mine += n_seq - b * B < B ? n_seq - b * B : B;
    if (!mine)
        return 0;
    const int32_t *sub = ids;
    int32_t *own = NULL;
    if (par_size() > 1) {
        if (!(own = vl_malloc((size_t)mine * seq_len * sizeof *own)))
            return vl_errf(err, VL_ENOMEM, "out of memory");
        size_t o = 0;
        for (int b = 0; b < n_batch; b++) {
            int nb = n_seq - b * B < B ? n_seq - b * B : B;
            if (!par_mine(b))
                continue;
            memcpy(own + o, ids + (size_t)b * B * seq_len, (size_t)nb * seq_len * sizeof *own);
            o += (size_t)nb * seq_len;
        }
        sub = own;
    }
    const hfc_config *c = model_config(p->m);
    char what[160];
    snprintf(what, sizeof what, "stats %s stage 0/%d", label, c->n_layers + 2);
    prog pg;
    prog_init(&pg, what, "tok", (int64_t)(c->n_layers + 2) * mine * seq_len);
    pg.enabled &= p->o.progress && par_rank() == 0;
    lm_ctx x = {a, seq_len, c->n_layers + 2, mine * seq_len, &pg, what, sizeof what, label};
    lfwd_ext hk = {taps, lm_stage, lm_batch, &x};
    lfwd_params lp = {B, p->o.mem_cap, fo};
    int rc = lfwd_run_ext(p->m, model_base(p->m), p->st, sub, mine, seq_len, &lp, &hk, NULL,
                          NULL, NULL, err);
    prog_finish(&pg);
    vl_free(own);
    return rc ? rc : stat_status(a, err);
}

int spass_run(spass *p, stat_acc *a, const int32_t *ids, int n_seq, int seq_len,
              const char *label, vl_err *err)
{
    if (seq_len > p->o.max_len || n_seq <= 0 || seq_len <= 0)
        return vl_errf(err, VL_EARG, "set %s: %d × %d tokens (longest allowed %d)", label,
                       n_seq, seq_len, p->o.max_len);
    fwd_opts fo = fwd_opts_defaults();
    fo.route_all_experts = p->o.route_all_experts;
    tap_set taps = stat_taps(a);
    /* Work items are whole batches, round-robin over the ranks (core/par.h): each batch keeps
     * the companions it has in a one-process run, so its activations, and the totals that
     * stat_allreduce adds as integers, are the same bits. Rank 0 reports progress for the job
     * (its own batches stand for R batches each). */
    int R = pl_groups(p->pl), n_batch = (n_seq + p->o.batch - 1) / p->o.batch;
    int64_t *item_tok = vl_malloc((size_t)n_batch * sizeof *item_tok);
    int *owner = vl_malloc((size_t)n_batch * sizeof *owner);
    if (!item_tok || !owner) {
        vl_free(item_tok);
        vl_free(owner);
        return par_agree(vl_errf(err, VL_ENOMEM, "set %s: out of memory", label), err);
    }
    char what[128];
    snprintf(what, sizeof what, "stats %s 0/%d seq", label, n_seq);
    prog pg;
    prog_init(&pg, what, "tok", (int64_t)n_seq * seq_len);
    pg.enabled &= p->o.progress && par_rank() == 0;
    int rc = 0;
    if (p->o.layer_major) {
        pg.enabled = 0;
        for (int b = 0; b < n_batch; b++) {
            int s0 = b * p->o.batch;
            item_tok[b] = (int64_t)(n_seq - s0 < p->o.batch ? n_seq - s0 : p->o.batch) * seq_len;
            owner[b] = pl_owner(p->pl, b); /* one stage (spass_new): rank b mod R, par_mine's */
        }
        rc = run_layer_major(p, a, ids, n_seq, seq_len, &fo, &taps, label, err);
    }
    for (int b = 0; b < n_batch && !p->o.layer_major; b++) {
        int s0 = b * p->o.batch;
        int nb = n_seq - s0 < p->o.batch ? n_seq - s0 : p->o.batch;
        item_tok[b] = (int64_t)nb * seq_len;
        owner[b] = pl_owner(p->pl, b);
        if (rc || !pl_mine(p->pl, b))
            continue;
        const int32_t *bt = ids + (size_t)s0 * seq_len;
        const float *lg;
        rc = stat_begin_batch(a, bt, nb, seq_len, err);
        if (rc == 0)
            rc = pl_forward(p->pl, model_base(p->m), p->st, bt, nb, seq_len, b, 0, &fo, &taps,
                            &lg, err);
        if (rc == 0)
            rc = stat_status(a, err);
        int done = (b + R) * p->o.batch < n_seq ? (b + R) * p->o.batch : n_seq;
        /* the label is rewritten in place: prog borrows the buffer */
        snprintf(what, sizeof what, "stats %s %d/%d seq", label, done, n_seq);
        prog_update(&pg, (int64_t)done * seq_len);
    }
    prog_finish(&pg);
    rc = pl_finish(p->pl, rc, err);
    rc = stat_allreduce(a, item_tok, owner, n_batch, rc, err);
    vl_free(item_tok);
    vl_free(owner);
    return rc ? vl_errctx(err, rc, "set %s", label) : 0;
}

void spass_free(spass *p)
{
    if (!p)
        return;
    if (p->has_re)
        regfree(&p->re);
    fwd_state_free(p->st);
    pl_free(p->pl);
    vl_free(p);
}

int spass_run_book(const model *m, const calib_book *book, const spass_opts *o, h5s_store *s,
                   spass_set_fn on_set, void *ctx, vl_err *err)
{
    int n = calib_book_count(book), rc = 0;
    spass_opts so = *o;
    so.max_len = 1;
    for (int i = 0; i < n; i++)
        if (calib_book_set(book, i)->seq_len > so.max_len)
            so.max_len = calib_book_set(book, i)->seq_len;
    spass *p = NULL;
    if ((rc = spass_new(&p, m, &so, err)))
        return rc;
    for (int i = 0; rc == 0 && i < n; i++) {
        const calib_set *cs = calib_book_set(book, i);
        stat_acc *acc = NULL;
        rc = spass_acc_new(p, (int64_t)cs->n_seq * cs->seq_len, &acc, err);
        if (rc == 0)
            rc = spass_run(p, acc, cs->ids, cs->n_seq, cs->seq_len, cs->spec.name, err);
        /* seed and skip are stored as decimal strings: sfile_merge joins them as "a+b" */
        char seed[32], skip[32];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)cs->spec.seed);
        snprintf(skip, sizeof skip, "%lld", (long long)cs->spec.skip);
        sfile_set st = {cs->spec.name, cs->spec.source, seed, skip, cs->n_seq, cs->seq_len,
                        cs->ids};
        if (rc == 0 && s) /* NULL on the ranks other than 0 (core/par.h): only rank 0 writes */
            rc = sfile_write_set(s, &st, acc, err);
        if (rc == 0 && on_set)
            rc = on_set(ctx, i, cs, acc, err);
        stat_free(acc);
    }
    spass_free(p);
    return rc;
}
