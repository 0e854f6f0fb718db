/* tests/test_lfwd.c — weights one layer at a time, layer-major forward, capped activations.
 *
 * - acts: rows round-trip bit for bit in memory and through the spill file; a range outside
 *   the store and an unusable TMPDIR are clean errors.
 * - lfwd_run (every batch through layer i, then i+1; the residual rows in an acts store) gives
 *   fwd_run's logits on the same batches bit for bit, with no cap and with a 1-byte cap that
 *   forces the spill file: on a MoE fixture, on DeepSeek-V3 (FP8 weights) and on DeepSeek-V4
 *   (hash routing needs each batch's ids; hc_mult-wide residual rows).
 * - The stored weights are converted per layer: model_tensor_f32 of the base binding equals
 *   model_tensor_load, and mw_stage gives the same pointers back when asked for the same
 *   stage again (a layer-major pass converts a layer once), new ones after a slot changed.
 * - model_tensor_rows gives the rows of the whole conversion (FP8 block rows; a range cutting a
 *   block is refused), and the head in vocabulary tiles (mw_head_logits, 4 tiles on the
 *   embedded model's tied 16384 × 256 embedding) equals the reference product over the whole
 *   converted matrix to float32 rounding, bit for bit through a binding's own head data.
 */
#define _POSIX_C_SOURCE 200809L
#include "../analysis/acts.h"
#include "../analysis/fwd.h"
#include "../analysis/lfwd.h"
#include "../analysis/mweights.h"
#include "../core/kern.h"
#include "check.h"

#include <math.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_acts(chk *c)
{
    enum { R = 37, Wd = 5 };
    float src[R * Wd], got[R * Wd];
    for (int i = 0; i < R * Wd; i++)
        src[i] = (float)i * 0.37f - 3.0f;
    for (int spill = 0; spill < 2; spill++) {
        acts *a = NULL;
        vl_err e;
        int rc = acts_new(&a, R, Wd, spill ? 1 : 0, &e);
        CHECK(c, rc == 0, "acts_new (cap %s)", spill ? "1 byte" : "none");
        if (rc)
            continue;
        CHECK_INT(c, acts_spilled(a), spill, "spilled exactly when over the cap");
        rc = acts_put(a, 0, 10, src, &e) || acts_put(a, 10, R - 10, src + 10 * Wd, &e);
        memset(got, 0, sizeof got);
        rc = rc || acts_get(a, 3, R - 3, got + 3 * Wd, &e) || acts_get(a, 0, 3, got, &e);
        CHECK(c, rc == 0 && !memcmp(src, got, sizeof src), "rows round-trip bit for bit (%s)",
              spill ? "file" : "memory");
        CHECK_INT(c, acts_get(a, 30, 8, got, &e), VL_EARG, "rows past the end refused");
        acts_free(a);
    }
    const char *old = getenv("TMPDIR");
    char *keep = old ? strdup(old) : NULL;
    setenv("TMPDIR", "/nonexistent-vbrlab-dir", 1);
    acts *a = NULL;
    vl_err e;
    int rc = acts_new(&a, R, Wd, 1, &e);
    CHECK_INT(c, rc, VL_EIO, "unusable TMPDIR: VL_EIO");
    CHECK_HAS(c, rc ? e.msg : "", "/nonexistent-vbrlab-dir", "error names the directory");
    acts_free(a);
    if (keep)
        setenv("TMPDIR", keep, 1);
    else
        unsetenv("TMPDIR");
    free(keep);
}

typedef struct {
    float *logits; /* [n_seq·T × V] */
    size_t row;    /* floats per sequence */
    int next;      /* the sequence the next batch must start at */
} sink_ctx;

static int collect(void *user, int seq0, int n, const float *lg, vl_err *err)
{
    sink_ctx *s = user;
    if (seq0 != s->next)
        return vl_errf(err, VL_EARG, "batch at %d, expected %d", seq0, s->next);
    memcpy(s->logits + (size_t)seq0 * s->row, lg, (size_t)n * s->row * sizeof *lg);
    s->next = seq0 + n;
    return 0;
}

static void test_layered(chk *c, const char *dir)
{
    enum { S = 5, B = 2, T = 6 };
    model *m = NULL;
    vl_err e;
    if (model_open(&m, dir, &e)) {
        CHECK(c, 0, "%s: %s", dir, e.msg);
        return;
    }
    const hfc_config *cf = model_config(m);
    int V = cf->vocab;
    int32_t ids[S * T];
    for (int i = 0; i < S * T; i++)
        ids[i] = (int32_t)((i * 7919 + 13) % V);
    size_t row = (size_t)T * V;
    float *ref = malloc(S * row * sizeof *ref), *got = malloc(S * row * sizeof *got);
    fwd_state *st = NULL;
    int rc = fwd_state_new(&st, m, B, T, &e);
    for (int s0 = 0; !rc && s0 < S; s0 += B) { /* the reference: fwd_run batch by batch */
        int nb = S - s0 < B ? S - s0 : B;
        const float *lg;
        if (!(rc = fwd_run(m, model_base(m), st, ids + s0 * T, nb, T, NULL, NULL, &lg, &e)))
            memcpy(ref + (size_t)s0 * row, lg, (size_t)nb * row * sizeof *lg);
    }
    CHECK(c, rc == 0, "%s: fwd_run batches%s%s", dir, rc ? ": " : "", rc ? e.msg : "");
    /* every layer over a 0-byte budget: attention, MLP and each routed expert converted
     * alone (deepseek_v4 converts whole layers either way) */
    fwd_state *sp = NULL;
    float *parts = malloc(S * row * sizeof *parts);
    int rp = rc ? rc : fwd_state_new(&sp, m, B, T, &e);
    if (!rp)
        fwd_set_layer_budget(sp, 0);
    for (int s0 = 0; !rp && s0 < S; s0 += B) {
        int nb = S - s0 < B ? S - s0 : B;
        const float *lg;
        if (!(rp = fwd_run(m, model_base(m), sp, ids + s0 * T, nb, T, NULL, NULL, &lg, &e)))
            memcpy(parts + (size_t)s0 * row, lg, (size_t)nb * row * sizeof *lg);
    }
    CHECK(c, rp == 0 && !memcmp(ref, parts, S * row * sizeof *parts),
          "%s: layers in parts and experts one at a time: the same logits bit for bit", dir);
    fwd_state_free(sp);
    free(parts);
    for (int cap = 0; !rc && cap < 2; cap++) {
        lfwd_params p = {B, cap ? 1 : 0, NULL};
        sink_ctx sc = {got, row, 0};
        int spilled = -1;
        memset(got, 0xff, S * row * sizeof *got);
        int r2 = lfwd_run(m, model_base(m), st, ids, S, T, &p, collect, &sc, &spilled, &e);
        CHECK(c, r2 == 0 && sc.next == S, "%s: layer-major run (%s)%s%s", dir,
              cap ? "1-byte cap" : "no cap", r2 ? ": " : "", r2 ? e.msg : "");
        CHECK_INT(c, spilled, cap, "residual rows spilled to a file exactly under the cap");
        CHECK(c, r2 == 0 && !memcmp(ref, got, S * row * sizeof *got),
              "%s: layer-major logits = fwd_run's bit for bit (%s)", dir,
              cap ? "spilled" : "in memory");
    }
    fwd_state_free(st);
    free(ref);
    free(got);
    model_close(m);
}

static void test_stage(chk *c, const char *dir)
{
    model *m = NULL;
    vl_err e;
    if (model_open(&m, dir, &e)) {
        CHECK(c, 0, "%s: %s", dir, e.msg);
        return;
    }
    long ix = model_tensor_find(m, "model.layers.1.self_attn.o_proj.weight");
    const model_tensor *t = model_tensor_at(m, (size_t)ix);
    const float *d;
    float *own, *direct = malloc((size_t)t->numel * sizeof *direct);
    int rc = model_tensor_f32(m, model_base(m), (size_t)ix, &d, &own, &e) ||
             model_tensor_load(m, (size_t)ix, direct, &e);
    CHECK(c, rc == 0 && own == d && !memcmp(d, direct, (size_t)t->numel * sizeof *d),
          "base binding: model_tensor_f32 converts the stored tensor (= model_tensor_load)");
    mw_cache *mc = NULL;
    model_weights *w = NULL;
    const model_weights *v1, *v2;
    rc = mw_new(&mc, m, &e) || model_weights_clone(&w, m, model_base(m), &e) ||
         mw_stage(mc, w, 1, &v1, &e);
    const float *wo = rc ? NULL : v1->layers[1].wo;
    CHECK(c, rc == 0 && wo && !memcmp(wo, direct, (size_t)t->numel * sizeof *wo) &&
                 !v1->layers[0].wo && v1->layers[1].attn_norm && !v1->layers[0].attn_norm,
          "stage 1: layer 1 converted, layer 0 not");
    rc = rc || mw_stage(mc, w, 1, &v2, &e);
    CHECK(c, rc == 0 && v2->layers[1].wo == wo, "the same stage again: reused, not converted");
    w->layers[1].wo = direct; /* a fake-quant slot: the stage must follow it */
    rc = rc || mw_stage(mc, w, 1, &v2, &e);
    CHECK(c, rc == 0 && v2->layers[1].wo == direct, "a changed slot: the binding's pointer");
    CHECK(c, rc == 0 && mw_experts_held(mc, 1) && !mw_experts_held(mc, 0),
          "a whole layer held: its experts are, another layer's are not");
    /* a layer over the budget: parts, experts one at a time */
    mw_set_budget(mc, 0);
    const model_weights *va = NULL, *vm = NULL;
    rc = rc || mw_part(mc, model_base(m), 1, MW_PART_ATTN, &va, &e);
    CHECK(c, rc == 0 && va->layers[1].wo && va->layers[1].attn_norm && !va->layers[1].router,
          "over budget, attention part: attention tensors, no router");
    rc = rc || mw_part(mc, model_base(m), 1, MW_PART_MLP, &vm, &e);
    CHECK(c, rc == 0 && !vm->layers[1].wo && vm->layers[1].router && vm->layers[1].mlp_norm &&
                 !vm->layers[1].experts[0].gate,
          "over budget, MLP part: router and norm, no attention, no routed expert");
    CHECK(c, rc == 0 && !mw_experts_held(mc, 1), "over budget: the experts are not held");
    long gx = model_tensor_find(m, "model.layers.1.mlp.experts.2.gate_proj.weight");
    const model_tensor *gt = model_tensor_at(m, (size_t)gx);
    float *g = malloc((size_t)gt->numel * sizeof *g);
    const model_ffn *f = NULL;
    rc = rc || model_tensor_load(m, (size_t)gx, g, &e) || mw_expert(mc, model_base(m), 1, 2, &f, &e);
    CHECK(c, rc == 0 && f->gate && f->up && f->down &&
                 !memcmp(f->gate, g, (size_t)gt->numel * sizeof *g) &&
                 !vm->layers[1].experts[1].gate,
          "mw_expert: expert 2 converted alone (= model_tensor_load), expert 1 not");
    free(g);
    mw_free(mc);
    model_weights_free(w);
    vl_free(own);
    free(direct);
    model_close(m);
}

static void test_rows(chk *c)
{
    const char *dir = "tests/fixtures/tiny-deepseek-v3";
    model *m = NULL;
    vl_err e;
    if (model_open(&m, dir, &e)) {
        CHECK(c, 0, "%s: %s", dir, e.msg);
        return;
    }
    long ix = model_tensor_find(m, "model.layers.0.self_attn.q_b_proj.weight"); /* FP8 384×128 */
    const model_tensor *t = model_tensor_at(m, (size_t)ix);
    size_t C = (size_t)t->cols;
    float *all = malloc((size_t)t->numel * sizeof *all), *part = malloc(256 * C * sizeof *part);
    int rc = model_tensor_load(m, (size_t)ix, all, &e);
    int r1 = rc ? rc : model_tensor_rows(m, model_base(m), (size_t)ix, 128, 256, part, &e);
    CHECK(c, r1 == 0 && !memcmp(part, all + 128 * C, 256 * C * sizeof *part),
          "FP8 rows 128..384 = those of the whole conversion bit for bit");
    r1 = model_tensor_rows(m, model_base(m), (size_t)ix, 64, 64, part, &e);
    CHECK_INT(c, r1, VL_EARG, "FP8 rows cutting a 128-row block refused");
    CHECK_HAS(c, r1 ? e.msg : "", "q_b_proj", "the error names the tensor");
    free(all);
    free(part);
    model_close(m);
}

static void test_head(chk *c)
{
    const char *dir = "models/vbrlab-moe-tiny";
    enum { N = 3 };
    model *m = NULL;
    vl_err e;
    if (model_open(&m, dir, &e)) {
        CHECK(c, 0, "%s: %s", dir, e.msg);
        return;
    }
    size_t hi = model_head_index(m);
    const model_tensor *t = model_tensor_at(m, hi);
    int V = t->rows, D = t->cols;
    CHECK(c, (size_t)V * D * 4 > 2 * MW_HEAD_TILE_BYTES, "the head spans several tiles");
    float *h = malloc((size_t)t->numel * sizeof *h), *x = malloc((size_t)N * D * sizeof *x);
    float *ref = malloc((size_t)N * V * sizeof *ref), *got = malloc((size_t)N * V * sizeof *got);
    float *got2 = malloc((size_t)N * V * sizeof *got2);
    for (int i = 0; i < N * D; i++)
        x[i] = (float)sin(0.37 * i) * 2.0f;
    mw_cache *mc = NULL;
    model_weights *w = NULL;
    int rc = model_tensor_load(m, hi, h, &e) || mw_new(&mc, m, &e) ||
             model_weights_clone(&w, m, model_base(m), &e);
    if (!rc)
        kern_matmul_ref(ref, x, h, N, D, V, 0);
    double fl = 0;
    rc = rc || mw_head_logits(mc, model_base(m), x, N, got, &fl, &e);
    double worst = 0;
    for (int i = 0; !rc && i < N * V; i++) {
        double d = fabs((double)got[i] - ref[i]) / (1.0 + fabs(ref[i]));
        worst = d > worst ? d : worst;
    }
    CHECK(c, rc == 0 && worst < 1e-5, "tiled head = the whole product (worst rel. diff %.2g)",
          worst);
    CHECK(c, fl == 2.0 * N * D * V, "flops counted 2·N·D·V");
    *model_weights_slot(m, w, hi) = h; /* a binding's own (e.g. fake-quant) head */
    rc = rc || mw_head_logits(mc, w, x, N, got2, NULL, &e);
    CHECK(c, rc == 0 && !memcmp(got, got2, (size_t)N * V * sizeof *got),
          "a binding's head data: the same bits as the stored head converted in tiles");
    mw_free(mc);
    model_weights_free(w);
    free(h);
    free(x);
    free(ref);
    free(got);
    free(got2);
    model_close(m);
}

int main(void)
{
    chk c;
    chk_init(&c, "test_lfwd");
    test_acts(&c);
    test_layered(&c, "tests/fixtures/qwen3-moe");
    test_layered(&c, "tests/fixtures/tiny-deepseek-v3");
    test_layered(&c, "tests/fixtures/tiny-deepseek-v4");
    test_stage(&c, "tests/fixtures/qwen3-moe");
    test_rows(&c);
    test_head(&c);
    return chk_done(&c);
}
