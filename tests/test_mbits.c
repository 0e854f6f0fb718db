/* tests/test_mbits.c — whole-model bits (alloc/mbits.h), the token embedding and LM head as
 * sensitivity units and allocation items, a model budget, and the granularity gguf.
 *
 * Hand-computed counts on the embedded model (tied embeddings, 25,460,480 weights: body
 * 21,233,664 in 6 layers × (q 65,536 + k 32,768 + v 32,768 + o 65,536 + 16 experts × 3 ×
 * 65,536 + shared 3 × 65,536); embedding 16,384 × 256 = 4,194,304 counted once; routers 6 ×
 * 16 × 256 = 24,576; 1-row tensors 7,936 = norms 13 × 256 + q/k/v biases 6 × 512 +
 * shared_expert_gate 6 × 256), all BF16 in the checkpoint; and on the untied deepseek_v3
 * fixture (lm_head a tensor of its own).
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include "../alloc/mbits.h"
#include "../alloc/qbind.h"
#include "../alloc/salloc.h"
#include "../alloc/sens.h"
#include "../analysis/eval.h"
#include "../analysis/fwd.h"

#include <math.h>
#include <string.h>

#define CI(c, got, want) CHECK_INT(c, got, want, #got)
#define CN(c, got, want, tol) CHECK_NEAR(c, got, want, tol, 0, #got)

#define TINY "models/vbrlab-moe-tiny"
#define DSV3 "tests/fixtures/tiny-deepseek-v3"

static const double N_ALL = 25460480, N_BODY = 21233664, N_EMB = 4194304, N_ROUTER = 24576,
                    N_ROW1 = 7936;

/* Format callback: q4_K on the body matrices (and the embedding when ctx says so). */
typedef struct {
    const model *m;
    qfmt f;
    int embed;    /* 1: the embedding too */
    int head;     /* 1: the LM head too */
    int body;     /* 1: the decoder matrices */
} pick;

static int is_body(const model_tensor *t)
{
    return t->rows >= 2 && t->cols >= 2 &&
           (t->cls == MODEL_C_ATTN || t->cls == MODEL_C_EXPERT || t->cls == MODEL_C_SHARED ||
            t->cls == MODEL_C_MLP);
}

static const qfmt *pick_fmt(const void *ctx, size_t i)
{
    const pick *p = ctx;
    const model_tensor *t = model_tensor_at(p->m, i);
    if ((p->body && is_body(t)) || (p->embed && t->cls == MODEL_C_EMBED) ||
        (p->head && t->cls == MODEL_C_LM_HEAD))
        return &p->f;
    return NULL;
}

static void test_counts_tied(chk *c, const model *m)
{
    vl_err e;
    model_info mi;
    model_get_info(m, &mi);
    CN(c, (double)mi.params_total, N_ALL, 0);
    pick p = {m, {0}, 0, 0, 1};
    CI(c, qfmt_parse(&p.f, "ggml-q4_K", &e), 0);
    mb_count st = mb_count_model(m, pick_fmt, &p, MB_STORED);
    CN(c, (double)st.model_weights, N_ALL, 0);
    CN(c, (double)st.body_weights, N_BODY, 0);
    /* q4_K: 144 bytes per 256 weights = 4.5 bits; every other tensor BF16 */
    CN(c, st.body_bits, 4.5 * N_BODY, 0);
    CN(c, st.model_bits, 4.5 * N_BODY + 16 * (N_ALL - N_BODY), 0);
    CN(c, st.bpw_model, (4.5 * N_BODY + 16 * (N_ALL - N_BODY)) / N_ALL, 1e-12);
    mb_count gg = mb_count_model(m, pick_fmt, &p, MB_GGUF);
    CN(c, gg.model_bits, 4.5 * N_BODY + 32 * N_ROW1 + 16 * (N_ROUTER + N_EMB), 0);
    /* the tied embedding at q4_K: counted once (no lm_head tensor to count again) */
    p.embed = 1;
    gg = mb_count_model(m, pick_fmt, &p, MB_GGUF);
    CN(c, gg.model_bits, 4.5 * (N_BODY + N_EMB) + 32 * N_ROW1 + 16 * N_ROUTER, 0);
    CN(c, (double)gg.body_weights, N_BODY + N_EMB, 0);
    /* nothing quantized: the checkpoint's own bits (8 · stored bytes) */
    st = mb_count_model(m, NULL, NULL, MB_STORED);
    CN(c, st.model_bits, 8.0 * (double)mi.stored_bytes, 0);
    CN(c, st.bpw_body, 0, 0);
    CN(c, mb_kept_bits(m, NULL, MB_STORED), 16 * N_ALL, 0);
}

static void test_counts_untied(chk *c, const model *m)
{
    vl_err e;
    model_info mi;
    model_get_info(m, &mi);
    int64_t emb = mi.params[MODEL_C_EMBED], head = mi.params[MODEL_C_LM_HEAD];
    CHECK(c, head == 262144 && emb == 262144, "untied fixture: embed %lld, head %lld",
          (long long)emb, (long long)head);
    pick p = {m, {0}, 1, 0, 0};
    CI(c, qfmt_parse(&p.f, "ggml-q8_0", &e), 0); /* 34 bytes per 32 weights = 8.5 bits */
    mb_count st = mb_count_model(m, pick_fmt, &p, MB_STORED);
    mb_count none = mb_count_model(m, NULL, NULL, MB_STORED);
    CN(c, (double)st.model_weights, (double)mi.params_total, 0);
    /* FP8 tensors' block scales are stored bytes but not counted (alloc/mbits.h) */
    CHECK(c, mi.n_fp8 > 0 ? none.model_bits < 8.0 * (double)mi.stored_bytes
                          : none.model_bits == 8.0 * (double)mi.stored_bytes,
          "untied: %g bits kept vs %lld stored bytes (%d FP8 tensors)", none.model_bits,
          (long long)mi.stored_bytes, mi.n_fp8);
    /* only the embedding changes: its stored bits become 8.5 per weight; the head stays */
    double emb_stored = (double)emb * mb_kept_bpw(model_tensor_at(m, 0), MB_STORED);
    CN(c, st.model_bits, none.model_bits - emb_stored + 8.5 * (double)emb, 0);
    p.head = 1;
    mb_count both = mb_count_model(m, pick_fmt, &p, MB_STORED);
    CN(c, (double)both.body_weights, (double)(emb + head), 0);
    CN(c, both.body_bits, 8.5 * (double)(emb + head), 0);
}

/* The layout with embed_head: the tied embedding is one unit (no head tensor); untied: both;
 * kept bits are the rest at the hand counts. */
static void test_layout(chk *c, const model *tied, const model *untied)
{
    vl_err e;
    sens_result r;
    memset(&r, 0, sizeof r);
    CI(c, sens_layout(&r, tied, SENS_GGUF, 0, &e), 0);
    int n_emb = 0, n_head = 0, eu = -1;
    for (int t = 0; t < r.n_tensors; t++) {
        n_emb += r.t[t].proj == SENS_P_EMBED;
        n_head += r.t[t].proj == SENS_P_HEAD;
        if (r.t[t].proj == SENS_P_EMBED)
            eu = r.t[t].unit;
    }
    CI(c, n_emb, 1);
    CI(c, n_head, 0);
    CI(c, r.n_units, 60 + 1);
    CHECK(c, eu >= 0 && !strcmp(r.unit_name[eu], "model.embed_tokens.weight"), "embed unit %d",
          eu);
    CN(c, (double)r.model_weights, N_ALL, 0);
    CN(c, r.kept_bits[MB_STORED], 16 * (N_ROW1 + N_ROUTER), 0);
    CN(c, r.kept_bits[MB_GGUF], 32 * N_ROW1 + 16 * N_ROUTER, 0);
    sens_result_free(&r);
    CI(c, sens_layout(&r, tied, SENS_GROUP, 0, &e), 0);
    CI(c, r.n_units, 60);
    CN(c, r.kept_bits[MB_GGUF], 32 * N_ROW1 + 16 * (N_ROUTER + N_EMB), 0);
    sens_result_free(&r);
    CI(c, sens_layout(&r, untied, SENS_TENSOR, 1, &e), 0);
    n_emb = n_head = 0;
    for (int t = 0; t < r.n_tensors; t++) {
        n_emb += r.t[t].proj == SENS_P_EMBED;
        n_head += r.t[t].proj == SENS_P_HEAD;
        if (r.t[t].proj == SENS_P_HEAD)
            CI(c, sens_tensor_from(&r.t[t], 3), 3);
        if (r.t[t].proj == SENS_P_EMBED)
            CI(c, sens_tensor_from(&r.t[t], 3), SENS_FROM_EMBED);
    }
    CI(c, n_emb, 1);
    CI(c, n_head, 1);
    sens_result_free(&r);
}

/* α of the untied fixture's embedding and head: a perturbed embedding must be looked up again
 * (from the cached layer-0 input it would change nothing: α 0) and the head's noise reaches the
 * logits from layer L. */
static void test_alpha_outer(chk *c, const model *m)
{
    vl_err e;
    sens_result r;
    memset(&r, 0, sizeof r);
    int32_t ids[2 * 16];
    for (int i = 0; i < 32; i++)
        ids[i] = (int32_t)((i * 37 + 11) % 1000);
    const char *names[1] = {"s"};
    sens_set *s = NULL;
    sens_params p = sens_defaults();
    p.draws = 1;
    p.boot = 0;
    int rc = sens_layout(&r, m, SENS_TENSOR, 1, &e);
    if (!rc)
        rc = sens_alloc_alpha(&r, 1, names, &e);
    if (!rc)
        rc = sens_set_new(&s, m, ids, 2, 16, &e);
    CI(c, rc, 0);
    for (int t = 0; !rc && t < r.n_tensors; t++) {
        if (r.t[t].proj != SENS_P_EMBED && r.t[t].proj != SENS_P_HEAD)
            continue;
        int u = r.t[t].unit;
        CI(c, sens_unit_alpha(&r, 0, u, m, s, &p, &e), 0);
        double a = r.alpha[0][u];
        CHECK(c, isfinite(a) && a > 1e-6, "alpha of %s = %g (> 0)", r.t[t].name, a);
    }
    /* the embedding perturbed but run from layer 0's cached input: nothing changes */
    model_weights *w = NULL;
    CI(c, model_weights_clone(&w, m, model_base(m), &e), 0);
    float *noisy = malloc(sizeof(float) * 262144);
    const sens_tensor *te = NULL;
    for (int t = 0; t < r.n_tensors; t++)
        if (r.t[t].proj == SENS_P_EMBED)
            te = &r.t[t];
    const float **slot = model_weights_slot(m, w, (size_t)te->mi);
    CI(c, sens_noise(noisy, *slot, te, 0.03, 1, &e), 0);
    *slot = noisy;
    double k0 = -1, k1 = -1;
    CI(c, sens_set_kld(s, w, 0, &k0, &e), 0);
    CI(c, sens_set_kld(s, w, SENS_FROM_EMBED, &k1, &e), 0);
    CN(c, k0, 0, 1e-12);
    CHECK(c, k1 > 1e-7, "KLD with the embedding looked up again %g > 0", k1);
    free(noisy);
    model_weights_free(w);
    sens_set_free(s);
    sens_result_free(&r);
}

/* Eval (ev_run on a qb_bind binding) of an allocation holding only the embedding: 2 bits
 * differ from the reference, 8 bits are close. */
static void test_eval_embed(chk *c, const model *m)
{
    vl_err e;
    int32_t ids[2 * 24];
    for (int i = 0; i < 48; i++)
        ids[i] = (int32_t)((i * 131 + 7) % 16000);
    ev_runner *run = NULL;
    CI(c, ev_runner_new(&run, m, 2, 24, &e), 0);
    double kl[2] = {-1, -1};
    const char *fmts[2] = {"rtn-b2-g64-asym", "rtn-b8-g64-asym"};
    for (int k = 0; k < 2 && run; k++) {
        qb_alloc a;
        qb_alloc_init(&a);
        CI(c, qb_alloc_outer(&a, m, fmts[k], &e), 0);
        CI(c, a.n, 1); /* tied: the embedding only */
        qb_binding *b = NULL;
        CI(c, qb_bind(&b, m, &a, NULL, NULL, "embed", &e), 0);
        ev_result res;
        ev_result_init(&res);
        if (b && !ev_run(run, qb_weights(b), ids, 2, 24, &res, NULL, &e))
            kl[k] = res.sum.kld_mean;
        CI(c, b ? (int)qb_get_info(b).n_weights : -1, (int)N_EMB);
        ev_result_deinit(&res);
        qb_free(b);
        qb_alloc_deinit(&a);
    }
    CHECK(c, kl[0] > 0.05, "embedding at 2 bits: KLD %g > 0.05", kl[0]);
    CHECK(c, kl[1] >= 0 && kl[1] < 1e-3, "embedding at 8 bits: KLD %g < 1e-3", kl[1]);
    ev_runner_free(run);
}

/* A synthetic gguf-granularity store of the embedded model (menu ggml q2_K, q4_K, q8_0) and
 * a model budget: the allocation's whole-model bpw, recounted from its assignment with
 * mb_count_model, meets the budget, and the embedding is an item. */
static const qfmt *assigned(const void *ctx, size_t i)
{
    const qfmt *v = ctx;
    return v[i].bits ? &v[i] : NULL;
}

static void test_model_budget(chk *c, const model *m)
{
    vl_err e;
    sens_result r;
    memset(&r, 0, sizeof r);
    const char *set1[1] = {"en"};
    int rc = sens_layout(&r, m, SENS_GGUF, 0, &e);
    if (!rc)
        rc = sens_alloc_alpha(&r, 1, set1, &e);
    qfmt_menu menu = {0, NULL};
    if (!rc)
        rc = qfmt_menu_parse(&menu, "ggml:q2_K,q4_K,q8_0", &e);
    CI(c, rc, 0);
    if (rc)
        return;
    int T = r.n_tensors, F = r.n_formats = menu.n, U = r.n_units;
    r.fmt = menu.v;
    r.eps[0] = 0.01;
    r.eps[1] = 0.03;
    for (int u = 0; u < U; u++)
        r.alpha[0][u] = r.alpha[1][u] = 1.0 + 0.05 * u;
    r.bpw = vl_calloc((size_t)T * F, sizeof(double));
    r.rel_w = vl_calloc((size_t)T * F, sizeof(double));
    r.w_norm2 = vl_calloc((size_t)T, sizeof(double));
    for (int t = 0; t < T; t++) {
        r.w_norm2[t] = 1;
        for (int f = 0; f < F; f++) {
            r.bpw[t * F + f] = qfmt_bpw(&r.fmt[f], r.t[t].rows, r.t[t].cols);
            r.rel_w[t * F + f] = pow(0.25, r.bpw[t * F + f]);
        }
    }
    salloc_problem *sp = NULL;
    CI(c, salloc_build(&sp, &r, set1, 1, SENS_GGUF, SENS_E_REL, &e), 0);
    if (!sp)
        return;
    int emb_item = solve_problem_find_item(sp->prob, "model.embed_tokens.weight");
    CHECK(c, emb_item >= 0, "the embedding is an item (%d)", emb_item);
    CI(c, sp->prob->n_items, 61);
    double body = 0;
    CI(c, salloc_model_target(sp, 3.0, &body, &e), 0);
    CN(c, body, (3.0 * N_ALL - (32 * N_ROW1 + 16 * N_ROUTER)) / (N_BODY + N_EMB), 1e-12);
    CHECK(c, salloc_model_target(sp, 0.001, &body, &e) == VL_ERANGE, "a model budget below the "
          "kept tensors' bits is refused: %s", e.msg);
    solve_params par = solve_params_defaults();
    par.method = SOLVE_LAGRANGE;
    CI(c, salloc_model_target(sp, 3.0, &par.target_bpw, &e), 0);
    solve_result res;
    memset(&res, 0, sizeof res);
    CI(c, solve_run(sp->prob, &par, &res, &e), 0);
    double mb = salloc_model_bpw(sp, res.bits_used);
    CHECK(c, mb <= 3.0 + 1e-12 && mb > 2.8, "model bpw %g within a 3.0 budget", mb);
    /* recount from the assignment text, through the model's own tensor list */
    char *text = NULL;
    CI(c, salloc_assignment(sp, &res, &text, &e), 0);
    qb_alloc a;
    qb_alloc_init(&a);
    CI(c, qb_alloc_parse_text(&a, text, "assignment", &e), 0);
    qfmt *per = calloc(model_tensor_count(m), sizeof *per);
    for (int k = 0; k < a.n; k++) {
        long i = model_tensor_find(m, a.v[k].item);
        if (i >= 0)
            per[i] = a.v[k].fmt;
    }
    mb_count cnt = mb_count_model(m, assigned, per, MB_GGUF);
    CN(c, cnt.bpw_model, mb, 1e-12);
    CHECK(c, strstr(text, "model.embed_tokens.weight\tggml-") != NULL, "embedding assigned");
    free(per);
    qb_alloc_deinit(&a);
    vl_free(text);
    solve_result_free(&res);
    salloc_problem_free(sp);
    /* granularity gguf from a store without the embedding is refused */
    sens_result g;
    memset(&g, 0, sizeof g);
    CI(c, sens_layout(&g, m, SENS_GROUP, 0, &e), 0);
    CI(c, sens_alloc_alpha(&g, 1, set1, &e), 0);
    g.n_formats = 1; /* past the "no RD table" check; the refusal comes first */
    sp = NULL;
    CHECK(c, salloc_build(&sp, &g, set1, 1, SENS_GGUF, SENS_E_REL, &e) == VL_EARG && !sp,
          "granularity gguf without the embedding refused: %s", e.msg);
    g.n_formats = 0;
    sens_result_free(&g);
    sens_result_free(&r);
}

int main(void)
{
    chk c;
    chk_init(&c, "mbits");
    vl_err e;
    model *tied = NULL, *untied = NULL;
    if (model_open(&tied, TINY, &e) || model_open(&untied, DSV3, &e)) {
        printf("FAIL open: %s\n", e.msg);
        return 1;
    }
    test_counts_tied(&c, tied);
    test_counts_untied(&c, untied);
    test_layout(&c, tied, untied);
    test_alpha_outer(&c, untied);
    test_eval_embed(&c, tied);
    test_model_budget(&c, tied);
    model_close(tied);
    model_close(untied);
    return chk_done(&c);
}
