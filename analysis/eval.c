/* analysis/eval.c — evaluation domains, the reference-vs-quantized run, storage and tables.
 *
 * Why two fwd_states: fwd_run's logits live in its state until the next run, and the metric
 * needs the reference and the quantized logits of the same batch side by side.
 * The reference logits of a domain are kept (ev_ref: the ids and n_tokens × vocab floats) and
 * reused by every later allocation evaluated on the same ids, as llama.cpp's base-logits file
 * is: the reference forward is deterministic and batched the same way, so the kept rows are
 * the bits a new run would give. Domains that do not fit the runner's budget are recomputed.
 * The per-token metrics of a batch run on kern_parallel_for's threads (each token is
 * independent), then enter the accumulator in order.
 */
#define _POSIX_C_SOURCE 200809L
#include "eval.h"

#include "acts.h"
#include "fwd.h"
#include "lfwd.h"
#include "pipeline.h"

#include "../core/kern.h"
#include "../core/par.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One domain's reference logits, rows s·len + t like fwd_run's. */
typedef struct {
    int32_t *ids; /* [n_seq·len] the key */
    int n_seq, len;
    float *logits; /* [n_seq·len × V] */
    unsigned char *have; /* [batches] 1: the batch's rows are filled (by this rank: under
                            dynamic scheduling a rank fills the batches it happened to run) */
} ev_ref;

/* Layer-major: one domain's reference logits (this rank's batches) in an acts store. */
typedef struct {
    int32_t *ids; /* [n_seq·len] the key (the whole domain's ids) */
    int n_seq, len;
    acts *logits; /* [this rank's rows × V] */
} ev_lref;

struct ev_runner {
    const model *m;
    fwd_state *ref, *q;  /* ref: made at the first batch-major run (layer-major runs the
                            reference on q, without a provider) */
    int batch_seq, max_len;
    int second_half;     /* score positions len/2 .. len−2 only (llama-perplexity's rule) */
    ev_timing t;
    kld_token *tok;      /* [batch_seq·max_len] one batch's per-token metrics */
    ev_ref *refs;        /* [n_refs] kept reference logits */
    int n_refs;
    size_t ref_bytes, ref_budget;
    par_fault *fault;    /* test hook, NULL: none */
    int layer_major;     /* ev_runner_set_layer_major */
    int64_t mem_cap;
    ev_lref *lrefs;      /* [n_lrefs] layer-major references */
    int n_lrefs;
    float *lrow;         /* [max_len × V] one sequence's reference logits (layer-major) */
    pl_pipe *pl;         /* the ranks' pipeline (one stage when none) */
};

/* ---------------------------------------------------------------- domains */

int ev_domain_parse(const char *text, calib_spec *out, vl_err *err)
{
    int rc = calib_spec_parse(text, out, err);
    if (rc)
        return rc;
    /* entropy buckets and shuffles take their shape from the pool set */
    if (out->kind == CALIB_ENTROPY || out->kind == CALIB_SHUFFLE)
        return 0;
    if (!(out->given & CALIB_GIVEN_SEQS))
        out->n_seq = EV_DEFAULT_SEQS;
    if (!(out->given & CALIB_GIVEN_LEN))
        out->seq_len = EV_DEFAULT_LEN;
    return 0;
}

int ev_domain_book(calib_book **out, const calib_env *env, const char *const *specs, int n,
                   vl_err *err)
{
    calib_book *b = NULL;
    int rc = calib_book_new(&b, env, err);
    for (int d = 0; d < n && !rc; d++) {
        calib_spec sp;
        if (!(rc = ev_domain_parse(specs[d], &sp, err)))
            rc = calib_book_add(b, &sp, err);
    }
    if (rc) {
        calib_book_free(b);
        b = NULL;
    }
    *out = b;
    return rc;
}

/* ---------------------------------------------------------------- results */

void ev_result_init(ev_result *r)
{
    memset(r, 0, sizeof *r);
    kld_acc_init(&r->acc);
}

void ev_result_deinit(ev_result *r)
{
    if (!r)
        return;
    kld_acc_deinit(&r->acc);
    vl_free(r->entropy_ref);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- running */

int ev_runner_new(ev_runner **out, const model *m, int batch_seq, int max_len, vl_err *err)
{
    *out = NULL;
    if (batch_seq < 1 || max_len < 2)
        return vl_errf(err, VL_EARG, "eval: batch of %d × %d tokens (need ≥ 1 × 2)", batch_seq,
                       max_len);
    ev_runner *r = vl_calloc(1, sizeof *r);
    if (!r)
        return vl_errf(err, VL_ENOMEM, "eval: out of memory");
    r->m = m;
    r->batch_seq = batch_seq;
    r->max_len = max_len;
    r->ref_budget = EV_REF_BUDGET_DEFAULT;
    r->tok = vl_malloc((size_t)batch_seq * max_len * sizeof *r->tok);
    if (!r->tok) {
        vl_free(r);
        return vl_errf(err, VL_ENOMEM, "eval: out of memory");
    }
    int rc = fwd_state_new(&r->q, m, batch_seq, max_len, err);
    if (!rc)
        rc = pl_new(&r->pl, m, 1, 0, err);
    if (rc) {
        ev_runner_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

int ev_runner_set_pipeline(ev_runner *r, int stages, vl_err *err)
{
    pl_pipe *p = NULL;
    int rc = pl_new(&p, r->m, stages, (int64_t)r->batch_seq * r->max_len, err);
    if (rc)
        return rc;
    pl_free(r->pl);
    r->pl = p;
    return 0;
}

int ev_first_scored(int len, int second_half) { return second_half ? len / 2 : 0; }

typedef struct {
    const float *lr, *lq;
    const int32_t *ids;
    int len, V;
    int first, m; /* first scored position, scored positions per sequence */
    kld_token *tok;
} metrics_job;

/* Scored tokens [i0, i1) of a batch (index s·m + t − first) into job->tok. */
static void metrics_range(void *ctx, int i0, int i1)
{
    const metrics_job *j = ctx;
    for (int i = i0; i < i1; i++) {
        size_t row = (size_t)(i / j->m) * j->len + (size_t)(j->first + i % j->m);
        j->tok[i] = kld_token_eval(j->lr + row * j->V, j->lq + row * j->V, j->V,
                                   j->ids[row + 1]);
    }
}

/* Metrics of one batch: nb sequences of len tokens, logits rows s·len + t; positions
 * res->first .. len − 2 of each sequence are scored. */
static int batch_metrics(ev_runner *r, ev_result *res, const float *lr, const float *lq,
                         const int32_t *ids, int nb, int len, int V, size_t tok0, vl_err *err)
{
    int m = len - 1 - res->first, n = nb * m;
    metrics_job j = {lr, lq, ids, len, V, res->first, m, r->tok};
    kern_parallel_for(n, 32, metrics_range, &j); /* ≥ 32 tokens (1M exps) a thread */
    for (int i = 0; i < n; i++) {
        const kld_token *k = &r->tok[i];
        if (!isfinite(k->kld) || !isfinite(k->nll_q) || !isfinite(k->nll_ref))
            return vl_errf(err, VL_ERANGE,
                           "eval: non-finite metric at sequence %zu position %d (logits "
                           "NaN/Inf?)",
                           tok0 / (size_t)m + (size_t)(i / m), res->first + i % m);
        res->entropy_ref[res->acc.n] = k->entropy_ref;
        int rc = kld_acc_add(&res->acc, k, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* The per-token arrays of res, each rank holding its own batches (item b: n_tok[b] tokens,
 * run by rank owner[b]), replaced by the whole run's in batch order (core/par.h). */
static int share_tokens(ev_result *res, const int64_t *n_tok, const int *owner, int n_batch,
                        int rc, vl_err *err)
{
    size_t total = 0;
    for (int b = 0; b < n_batch; b++)
        total += (size_t)n_tok[b];
    void **arr[] = {(void **)&res->acc.kld, (void **)&res->acc.dp, (void **)&res->acc.nll_ref,
                    (void **)&res->acc.nll_q, (void **)&res->entropy_ref,
                    (void **)&res->acc.same};
    for (size_t k = 0; k < sizeof arr / sizeof *arr; k++) {
        size_t sz = arr[k] == (void **)&res->acc.same ? 1 : sizeof(double);
        void *all = rc ? NULL : vl_malloc(total * sz + 1);
        if (rc == 0 && !all)
            rc = vl_errf(err, VL_ENOMEM, "eval: out of memory for %zu tokens", total);
        rc = par_concat_owned(*arr[k], all, n_tok, owner, n_batch, sz, rc, err);
        if (rc == 0) {
            vl_free(*arr[k]);
            *arr[k] = all;
        } else {
            vl_free(all);
        }
    }
    if (rc == 0)
        res->acc.n = res->acc.cap = total;
    return rc;
}

/* The kept reference of ids [n_seq × len], or NULL. */
static ev_ref *ref_find(ev_runner *r, const int32_t *ids, int n_seq, int len)
{
    for (int i = 0; i < r->n_refs; i++) {
        ev_ref *f = &r->refs[i];
        if (f->n_seq == n_seq && f->len == len &&
            !memcmp(f->ids, ids, (size_t)n_seq * len * sizeof *ids))
            return f;
    }
    return NULL;
}

/* A new empty entry for ids when the budget allows (NULL otherwise: recompute each time). */
static ev_ref *ref_new(ev_runner *r, const int32_t *ids, int n_seq, int len)
{
    size_t n = (size_t)n_seq * len, V = (size_t)model_config(r->m)->vocab;
    size_t bytes = n * V * sizeof(float) + n * sizeof *ids;
    if (bytes > r->ref_budget - r->ref_bytes || r->ref_bytes > r->ref_budget)
        return NULL;
    ev_ref *grown = vl_realloc(r->refs, (size_t)(r->n_refs + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    r->refs = grown;
    ev_ref *f = &r->refs[r->n_refs];
    /* every stage of a pipeline keeps the same entries (so they skip the same reference
     * runs), but only the last one holds logits */
    int hold = pl_is_last(r->pl);
    f->ids = vl_malloc(n * sizeof *ids);
    f->logits = hold ? vl_malloc(n * V * sizeof(float)) : NULL;
    f->have = vl_calloc((size_t)n_seq, 1); /* ≥ the batch count */
    if (!f->ids || (hold && !f->logits) || !f->have) {
        vl_free(f->ids);
        vl_free(f->logits);
        vl_free(f->have);
        return NULL;
    }
    memcpy(f->ids, ids, n * sizeof *ids);
    f->n_seq = n_seq;
    f->len = len;
    r->n_refs++;
    r->ref_bytes += bytes;
    return f;
}

/* Drop the last entry (a run that failed while filling it). */
static void ref_drop_last(ev_runner *r)
{
    ev_ref *f = &r->refs[--r->n_refs];
    r->ref_bytes -= (size_t)f->n_seq * f->len *
                    ((size_t)model_config(r->m)->vocab * sizeof(float) + sizeof *f->ids);
    vl_free(f->ids);
    vl_free(f->logits);
    vl_free(f->have);
}

void ev_runner_set_ref_budget(ev_runner *r, size_t bytes) { r->ref_budget = bytes; }
void ev_runner_set_fault(ev_runner *r, par_fault *f) { r->fault = f; }

void ev_runner_set_second_half(ev_runner *r, int on) { r->second_half = !!on; }

void ev_runner_set_layer_major(ev_runner *r, int on, int64_t mem_cap)
{
    r->layer_major = !!on;
    r->mem_cap = mem_cap;
}

/* ---------------------------------------------------------------- layer-major */

typedef struct {
    ev_runner *r;
    ev_result *res;
    acts *ref;
    const int32_t *ids;   /* this rank's sequences */
    int len, V, B, R, rank;
    double kld_s;
} lm_ctx;

/* The reference pass's sink: the batch's logits into the store. */
static int lm_keep(void *user, int seq0, int n, const float *lg, vl_err *err)
{
    lm_ctx *x = user;
    return acts_put(x->ref, (int64_t)seq0 * x->len, (int64_t)n * x->len, lg, err);
}

/* The quantized pass's sink: metrics sequence by sequence against the stored reference (the
 * tokens enter the result in sequence order, as batch-major's do). */
static int lm_score(void *user, int seq0, int n, const float *lq, vl_err *err)
{
    lm_ctx *x = user;
    double t0 = prog_now();
    size_t rowf = (size_t)x->len * (size_t)x->V;
    int per_seq = x->len - 1 - x->res->first, rc = 0;
    for (int s = 0; s < n && !rc; s++) {
        int k = seq0 + s, b = k / x->B; /* this rank's k-th sequence: its b-th batch */
        size_t gseq = (size_t)(x->rank + (size_t)b * x->R) * x->B + (size_t)(k % x->B);
        rc = acts_get(x->ref, (int64_t)k * x->len, x->len, x->r->lrow, err);
        if (!rc)
            rc = batch_metrics(x->r, x->res, x->r->lrow, lq + (size_t)s * rowf,
                               x->ids + (size_t)k * x->len, 1, x->len, x->V, gseq * per_seq,
                               err);
    }
    x->kld_s += prog_now() - t0;
    return rc;
}

/* The kept reference of this rank's share of ids, or a new one computed now (layer-major on
 * the runner's q state, no provider). */
static int lm_reference(ev_runner *r, lm_ctx *x, const int32_t *ids, int n_seq, int mine,
                        vl_err *err)
{
    for (int i = 0; i < r->n_lrefs; i++) {
        ev_lref *f = &r->lrefs[i];
        if (f->n_seq == n_seq && f->len == x->len &&
            !memcmp(f->ids, ids, (size_t)n_seq * x->len * sizeof *ids)) {
            x->ref = f->logits;
            return 0;
        }
    }
    ev_lref *grown = vl_realloc(r->lrefs, (size_t)(r->n_lrefs + 1) * sizeof *grown);
    if (!grown)
        return vl_errf(err, VL_ENOMEM, "eval: out of memory");
    r->lrefs = grown;
    ev_lref f = {vl_malloc((size_t)n_seq * x->len * sizeof *ids), n_seq, x->len, NULL};
    int rc = f.ids ? acts_new(&f.logits, (int64_t)mine * x->len, x->V, r->mem_cap, err)
                   : vl_errf(err, VL_ENOMEM, "eval: out of memory");
    x->ref = f.logits;
    lfwd_params lp = {x->B, r->mem_cap, NULL};
    fwd_set_provider(r->q, NULL, NULL);
    double t0 = prog_now();
    if (!rc)
        rc = lfwd_run(r->m, model_base(r->m), r->q, x->ids, mine, x->len, &lp, lm_keep, x, NULL,
                      err);
    r->t.ref_s += prog_now() - t0;
    if (rc) {
        vl_free(f.ids);
        acts_free(f.logits);
        return rc;
    }
    memcpy(f.ids, ids, (size_t)n_seq * x->len * sizeof *ids);
    r->lrefs[r->n_lrefs++] = f;
    return 0;
}

/* ev_run layer-major: batch b on rank b mod R (owner[b]); this rank's batches, in order,
 * through the reference (kept per domain) and then through WQ (PROV: its lazy tensors). */
static int run_layer_major(ev_runner *r, const model_weights *wq, mw_provider prov,
                           void *prov_user, const int32_t *ids, int n_seq, int len,
                           ev_result *res, int *owner, int n_batch, vl_err *err)
{
    int B = r->batch_seq, R = par_size(), mine = 0, V = model_config(r->m)->vocab;
    for (int b = 0; b < n_batch; b++) {
        owner[b] = b % R;
        if (owner[b] == par_rank())
            mine += n_seq - b * B < B ? n_seq - b * B : B;
    }
    if (!mine)
        return 0;
    if (!r->lrow && !(r->lrow = vl_malloc((size_t)r->max_len * V * sizeof *r->lrow)))
        return vl_errf(err, VL_ENOMEM, "eval: out of memory");
    int32_t *own = NULL;
    const int32_t *sub = ids;
    if (R > 1) { /* only the last batch can be short, and it stays last */
        if (!(own = vl_malloc((size_t)mine * len * sizeof *own)))
            return vl_errf(err, VL_ENOMEM, "eval: out of memory");
        size_t o = 0;
        for (int b = par_rank(); b < n_batch; b += R) {
            size_t nr = (size_t)(n_seq - b * B < B ? n_seq - b * B : B) * len;
            memcpy(own + o, ids + (size_t)b * B * len, nr * sizeof *own);
            o += nr;
        }
        sub = own;
    }
    lm_ctx x = {r, res, NULL, sub, len, V, B, R, par_rank(), 0};
    int rc = lm_reference(r, &x, ids, n_seq, mine, err);
    lfwd_params lp = {B, r->mem_cap, NULL};
    double t0 = prog_now();
    fwd_set_provider(r->q, prov, prov_user);
    if (!rc)
        rc = lfwd_run(r->m, wq, r->q, sub, mine, len, &lp, lm_score, &x, NULL, err);
    fwd_set_provider(r->q, NULL, NULL); /* frees the last stage's quantized weights */
    r->t.quant_s += prog_now() - t0 - x.kld_s;
    r->t.kld_s += x.kld_s;
    r->t.tokens += (int64_t)mine * len;
    vl_free(own);
    return rc;
}

/* The end of a run: the per-token arrays of every rank in batch order, the summaries; frees
 * item_tok and owner. */
static int finish(ev_runner *r, ev_result *res, int64_t *item_tok, int *owner, int n_batch,
                  int rc, vl_err *err)
{
    (void)r;
    if (par_size() > 1)
        rc = share_tokens(res, item_tok, owner, n_batch, rc, err);
    vl_free(item_tok);
    vl_free(owner);
    if (!rc)
        rc = kld_summarize(&res->acc, &res->sum, err);
    return rc ? rc : kld_slice_entropy(&res->acc, res->entropy_ref, &res->sum, err);
}

int ev_run(ev_runner *r, const model_weights *wq, const int32_t *ids, int n_seq, int len,
           ev_result *res, prog *pg, vl_err *err)
{
    return ev_run_ext(r, wq, NULL, NULL, ids, n_seq, len, res, pg, err);
}

int ev_run_ext(ev_runner *r, const model_weights *wq, mw_provider prov, void *prov_user,
               const int32_t *ids, int n_seq, int len, ev_result *res, prog *pg, vl_err *err)
{
    if (n_seq < 1 || len < 2 || len > r->max_len)
        return vl_errf(err, VL_EARG, "eval: %d sequences of %d tokens (runner holds ≤ %d)",
                       n_seq, len, r->max_len);
    if (r->layer_major && pl_stages(r->pl) > 1)
        return vl_errf(err, VL_EARG, "eval: layer-major evaluation (a memory cap) and a "
                       "pipeline of %d stages cannot be combined: choose one", pl_stages(r->pl));
    if (r->second_half && len < 3)
        return vl_errf(err, VL_EARG, "eval: scoring the second half of a %d-token window leaves "
                       "no token (need len ≥ 3)", len);
    ev_result_deinit(res);
    ev_result_init(res);
    res->n_seq = n_seq;
    res->len = len;
    res->first = ev_first_scored(len, r->second_half);
    int per_seq = len - 1 - res->first;
    size_t n_tok = (size_t)n_seq * (size_t)per_seq;
    int n_batch = (n_seq + r->batch_seq - 1) / r->batch_seq;
    res->entropy_ref = vl_malloc(n_tok * sizeof *res->entropy_ref);
    int64_t *item_tok = vl_malloc((size_t)n_batch * sizeof *item_tok);
    int *owner = vl_malloc((size_t)n_batch * sizeof *owner);
    if (!res->entropy_ref || !item_tok || !owner) {
        vl_free(item_tok);
        vl_free(owner);
        return par_agree(vl_errf(err, VL_ENOMEM, "eval: out of memory for %zu tokens", n_tok),
                         err);
    }
    int V = model_config(r->m)->vocab, R = par_size(), rc = 0;
    int64_t done0 = pg ? pg->done : 0;
    if (r->layer_major) {
        for (int b = 0; b < n_batch; b++) {
            int s0 = b * r->batch_seq;
            item_tok[b] = (int64_t)(n_seq - s0 < r->batch_seq ? n_seq - s0 : r->batch_seq) *
                          per_seq;
        }
        rc = run_layer_major(r, wq, prov, prov_user, ids, n_seq, len, res, owner, n_batch, err);
        if (pg && par_rank() == 0)
            prog_update(pg, done0 + (int64_t)n_seq * len);
        return finish(r, res, item_tok, owner, n_batch, rc, err);
    }
    if (!r->ref && (rc = fwd_state_new(&r->ref, r->m, r->batch_seq, r->max_len, err)) != 0) {
        vl_free(item_tok);
        vl_free(owner);
        return par_agree(rc, err);
    }
    fwd_set_provider(r->q, prov, prov_user);
    ev_ref *kept = ref_find(r, ids, n_seq, len), *fill = kept ? NULL : ref_new(r, ids, n_seq, len);
    ev_ref *keep = kept ? kept : fill;
    for (int b = 0; b < n_batch; b++) {
        int s0 = b * r->batch_seq;
        item_tok[b] = (int64_t)(n_seq - s0 < r->batch_seq ? n_seq - s0 : r->batch_seq) * per_seq;
        owner[b] = -1;
    }
    /* Batches (sequence blocks) are handed out by a work queue (core/par.h): a rank that
     * finishes early takes the next. A batch's tokens depend only on the batch, and
     * share_tokens puts them back in batch order: R ranks give one's bits. A kept reference
     * holds the batches this rank ran; another batch's reference is computed (and kept) when
     * the rank first gets it. In a pipeline (analysis/pipeline.h) stage 0 of each group draws
     * the batches and passes them down; the last stage computes the metrics and owns them. */
    par_queue *qu = NULL;
    int last = pl_is_last(r->pl);
    rc = par_queue_new(&qu, n_batch, rc, err);
    while (!rc) {
        int64_t it;
        if ((rc = pl_next(r->pl, qu, &it, err)) || it < 0)
            break;
        int b = (int)it;
        if (last)
            owner[b] = par_rank();
        if ((rc = par_fault_hit(r->fault, err)))
            break;
        int s0 = b * r->batch_seq;
        int nb = n_seq - s0 < r->batch_seq ? n_seq - s0 : r->batch_seq;
        const int32_t *bid = ids + (size_t)s0 * len;
        size_t row0 = (size_t)s0 * len * (size_t)V, rows = (size_t)nb * len * (size_t)V;
        const float *lr = NULL, *lq = NULL;
        double t0 = prog_now();
        if (keep && keep->have[b]) {
            lr = keep->logits ? keep->logits + row0 : NULL;
        } else if (!(rc = pl_forward(r->pl, model_base(r->m), r->ref, bid, nb, len, it, 0,
                                     NULL, NULL, &lr, err)) && keep) {
            if (lr)
                memcpy(keep->logits + row0, lr, rows * sizeof *lr);
            keep->have[b] = 1;
        }
        double t1 = prog_now();
        if (!rc)
            rc = pl_forward(r->pl, wq, r->q, bid, nb, len, it, 1, NULL, NULL, &lq, err);
        double t2 = prog_now();
        if (!rc && last)
            rc = batch_metrics(r, res, lr, lq, bid, nb, len, V, (size_t)s0 * per_seq, err);
        double t3 = prog_now();
        if (rc)
            break;
        r->t.ref_s += t1 - t0;
        r->t.quant_s += t2 - t1;
        r->t.kld_s += t3 - t2;
        r->t.tokens += (int64_t)nb * len;
        /* seen from rank 0: the batches handed out so far, over all ranks */
        int done = s0 + r->batch_seq < n_seq ? s0 + r->batch_seq : n_seq;
        if (pg && par_rank() == 0) /* rank 0 reports for the job */
            prog_update(pg, done0 + (int64_t)done * len);
    }
    rc = pl_finish(r->pl, rc, err); /* before any collective: a stage may still be waiting */
    par_queue_free(qu); /* collective: reached by every rank, failed or not */
    fwd_set_provider(r->q, NULL, NULL);
    if (rc && fill)
        ref_drop_last(r);
    if (R > 1)
        rc = par_owners(owner, n_batch, rc, err);
    return finish(r, res, item_tok, owner, n_batch, rc, err);
}

ev_timing ev_runner_timing(const ev_runner *r) { return r->t; }

void ev_runner_free(ev_runner *r)
{
    if (!r)
        return;
    fwd_state_free(r->ref);
    fwd_state_free(r->q);
    pl_free(r->pl);
    for (int i = 0; i < r->n_refs; i++) {
        vl_free(r->refs[i].ids);
        vl_free(r->refs[i].logits);
        vl_free(r->refs[i].have);
    }
    vl_free(r->refs);
    for (int i = 0; i < r->n_lrefs; i++) {
        vl_free(r->lrefs[i].ids);
        acts_free(r->lrefs[i].logits);
    }
    vl_free(r->lrefs);
    vl_free(r->lrow);
    vl_free(r->tok);
    vl_free(r);
}

