/* tests/test_dsv3.c — DeepSeek-V3 (MLA, YaRN, sigmoid group-limited MoE, FP8 weights) against
 * transformers' float64 golden, in both config spellings; routing invariants; load errors.
 *
 * Golden (tests/fixtures/tiny-deepseek-v3/golden.h5, transformers 5.17 in float64 on the
 * dequantized weights): hidden_states/00 = embeddings, 01..02 = outputs of layers 0..1,
 * 03 = final-normed hidden state; router_logits/00..01 = router input × router weightᵀ of the
 * MoE layers 1..2; logits. Logits must agree to 1e-3 (max abs) with the same argmax everywhere;
 * the legacy spelling (config.legacy.json) must give bit-identical logits.
 */
#define _POSIX_C_SOURCE 200809L
#include "../analysis/fwd.h"
#include "../analysis/fwd_mla.h"
#include "../analysis/model.h"
#include "../analysis/moe_route.h"
#include "../analysis/spass.h"
#include "../analysis/stats.h"
#include "../core/kern.h"
#include "../core/rng.h"
#include "../io/h5s.h"
#include "../io/st.h"
#include "check.h"
#include "testio.h"
#include "testmodel.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIX "tests/fixtures/tiny-deepseek-v3"

enum { MAXL = 8 };

typedef struct {
    float *resid[MAXL], *router[MAXL];
    int qb_rows[MAXL], qb_cols[MAXL], kvb_cols[MAXL], o_cols[MAXL];
    double wsum[MAXL];  /* Σ routing weights of TAP_EXPERT_IN rows per layer */
    int n_rows[MAXL];   /* expert rows per layer */
    int64_t per_expert[MAXL][16]; /* TAP_EXPERT_IN rows per (layer, expert) */
    tm_route route;     /* the router events' selection against the expert rows */
} capture;

static void on_event(void *user, const tap_event *ev)
{
    capture *cp = user;
    int l = ev->layer;
    if (l < 0 || l >= MAXL)
        return;
    tm_route_event(&cp->route, ev);
    if (ev->point == TAP_RESIDUAL && !cp->resid[l])
        cp->resid[l] = tm_dup_rows(ev);
    if (ev->point == TAP_ROUTER_LOGITS && !cp->router[l])
        cp->router[l] = tm_dup_rows(ev);
    if (ev->point == TAP_Q_B_IN) {
        cp->qb_rows[l] = ev->rows;
        cp->qb_cols[l] = ev->cols;
    }
    if (ev->point == TAP_KV_B_IN)
        cp->kvb_cols[l] = ev->cols;
    if (ev->point == TAP_ATTN_O_IN)
        cp->o_cols[l] = ev->cols;
    if (ev->point == TAP_EXPERT_IN)
        for (int r = 0; r < ev->rows; r++) {
            cp->wsum[l] += ev->row_weight[r];
            cp->n_rows[l]++;
            cp->per_expert[l][ev->expert & 15]++;
        }
}

static void capture_free(capture *cp)
{
    for (int l = 0; l < MAXL; l++) {
        free(cp->resid[l]);
        free(cp->router[l]);
    }
    tm_route_free(&cp->route);
}

static double max_abs(const float *a, const float *b, long n)
{
    double m = 0;
    for (long i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* Rows r < N of the [N × V] logits A and B whose argmax (first maximum) agree. */
static int argmax_agree(const float *a, const float *b, int N, int V)
{
    int same = 0;
    for (int r = 0; r < N; r++) {
        int ia = 0, ib = 0;
        for (int v = 1; v < V; v++) {
            ia = a[(size_t)r * V + v] > a[(size_t)r * V + ia] ? v : ia;
            ib = b[(size_t)r * V + v] > b[(size_t)r * V + ib] ? v : ib;
        }
        same += ia == ib;
    }
    return same;
}

/* Forward the golden batch through DIR; every comparison is a check. Returns the logits. */
static float *golden(chk *c, const char *dir, const char *label)
{
    model *m = NULL;
    h5s_store *g = NULL;
    vl_err e = {0};
    int rc = model_open(&m, dir, &e);
    CHECK(c, rc == 0, "%s: model_open%s%s", label, rc ? ": " : "", rc ? e.msg : "");
    if (rc == 0)
        rc = h5s_open(&g, FIX "/golden.h5", &e);
    if (rc) {
        model_close(m);
        return NULL;
    }
    const hfc_config *cf = model_config(m);
    int32_t *ids = NULL;
    int64_t sh[H5S_MAX_DIMS];
    h5s_read(g, "/input_ids", H5S_I32, (void **)&ids, NULL, sh, &e);
    int S = (int)sh[0], T = (int)sh[1], N = S * T, D = cf->hidden, V = cf->vocab;
    fwd_state *st = NULL;
    capture cp = {0};
    tap_set ts = {on_event, &cp, TAP_ALL};
    const float *lg = NULL;
    rc = fwd_state_new(&st, m, S, T, &e);
    if (rc == 0)
        rc = fwd_run(m, model_base(m), st, ids, S, T, NULL, &ts, &lg, &e);
    CHECK(c, rc == 0, "%s: forward %s", label, rc ? e.msg : "ok");
    float *out = NULL;
    char name[160];
    for (int k = 0; rc == 0 && k <= cf->n_layers; k++) {
        char ds[40];
        float *want = NULL, *got = malloc(sizeof(float) * N * D);
        snprintf(ds, sizeof ds, "/hidden_states/%02d", k);
        h5s_read(g, ds, H5S_F32, (void **)&want, NULL, NULL, &e);
        if (k == 0)
            fwd_embed(m, model_base(m), ids, N, got, &e);
        else if (k < cf->n_layers)
            memcpy(got, cp.resid[k - 1], sizeof(float) * N * D);
        else
            memcpy(got, fwd_final_hidden(st), sizeof(float) * N * D);
        snprintf(name, sizeof name, "%s: %s (max|d| %.3g)", label, ds,
                 want ? max_abs(got, want, (long)N * D) : -1.0);
        CHECK_TENSOR(c, got, want, (long)N * D, 1e-3, 1e-4, name);
        free(got);
        free(want);
    }
    for (int j = 0, l = 0; rc == 0 && l < cf->n_layers; l++) {
        if (!cf->layer_is_moe[l])
            continue;
        char ds[40], *mod = NULL, wantmod[64];
        float *want = NULL;
        snprintf(ds, sizeof ds, "/router_logits/%02d", j++);
        h5s_read(g, ds, H5S_F32, (void **)&want, NULL, NULL, &e);
        h5s_attr_get(g, ds, "module", &mod, &e);
        snprintf(wantmod, sizeof wantmod, "model.layers.%d.mlp.gate", l);
        CHECK_STR(c, mod, wantmod, "router golden names the layer's router");
        snprintf(name, sizeof name, "%s: %s = layer %d router logits (max|d| %.3g)", label, ds, l,
                 want && cp.router[l] ? max_abs(cp.router[l], want, (long)N * cf->n_experts) : -1);
        CHECK_TENSOR(c, cp.router[l], want, (long)N * cf->n_experts, 1e-4, 0, name);
        free(want);
        free(mod);
    }
    float *want = NULL;
    if (rc == 0 && h5s_read(g, "/logits", H5S_F32, (void **)&want, NULL, NULL, &e) == 0) {
        snprintf(name, sizeof name, "%s: logits within 1e-3 (max|d| %.3g)", label,
                 max_abs(lg, want, (long)N * V));
        CHECK_TENSOR(c, lg, want, (long)N * V, 1e-3, 0, name);
        CHECK_INT(c, argmax_agree(lg, want, N, V), N, "argmax identical at every position");
        out = malloc(sizeof(float) * N * V);
        memcpy(out, lg, sizeof(float) * N * V);
    }
    /* tap shapes and routing mass: q_b / kv_b inputs are the LoRA ranks, o_proj's H·Dv;
     * each token's K weights sum to routed_scaling_factor (norm_topk_prob) */
    int shapes = 1;
    double wdev = 0;
    for (int l = 0; l < cf->n_layers; l++) {
        shapes &= cp.qb_rows[l] == N && cp.qb_cols[l] == cf->ds.q_lora_rank &&
                  cp.kvb_cols[l] == cf->ds.kv_lora_rank &&
                  cp.o_cols[l] == cf->n_heads * cf->ds.v_head_dim;
        if (cf->layer_is_moe[l]) {
            wdev = fmax(wdev, fabs(cp.wsum[l] - N * cf->ds.routed_scaling));
            shapes &= cp.n_rows[l] == N * cf->n_experts_per_tok;
        }
    }
    CHECK(c, rc == 0 && shapes, "%s: MLA taps (q_b in %d wide, kv_b in %d, o in %d) and N·K "
          "expert rows", label, cf->ds.q_lora_rank, cf->ds.kv_lora_rank,
          cf->n_heads * cf->ds.v_head_dim);
    CHECK(c, rc == 0 && wdev < 1e-3, "%s: each token's routing weights sum to %g (|d| %.2g)",
          label, cf->ds.routed_scaling, wdev);
    long n_moe = 0;
    for (int l = 0; l < cf->n_layers; l++)
        n_moe += cf->layer_is_moe[l] != 0;
    CHECK(c, rc == 0 && cp.route.bad == 0 && cp.route.hits == cp.route.selected &&
             cp.route.selected == n_moe * N * cf->n_experts_per_tok,
          "%s: the router events' selection (%ld of %ld met, %ld bad) is the experts' rows and "
          "weights", label, cp.route.hits, cp.route.selected, cp.route.bad);
    free(want);
    capture_free(&cp);
    free(ids);
    fwd_state_free(st);
    h5s_close(g);
    model_close(m);
    return out;
}

/* The statistics pass (analysis/spass) on the golden batch: the router statistics replicate the
 * forward's own routing (counts per expert = the rows the forward sent to each expert), the
 * MLA inputs get statistics of their LoRA widths, and sum_weight totals N × routed_scaling. */
static void test_stats(chk *c)
{
    model *m = NULL;
    h5s_store *g = NULL;
    vl_err e = {0};
    if (model_open(&m, FIX, &e) || h5s_open(&g, FIX "/golden.h5", &e)) {
        CHECK(c, 0, "stats: open %s", e.msg);
        model_close(m);
        return;
    }
    const hfc_config *cf = model_config(m);
    int32_t *ids = NULL;
    int64_t sh[H5S_MAX_DIMS];
    h5s_read(g, "/input_ids", H5S_I32, (void **)&ids, NULL, sh, &e);
    h5s_close(g);
    int S = (int)sh[0], T = (int)sh[1], N = S * T;
    spass_opts o = spass_opts_defaults();
    o.batch = S;
    o.max_len = T;
    o.no_hessian = 1;
    o.progress = 0;
    spass *p = NULL;
    stat_acc *a = NULL;
    int rc = spass_new(&p, m, &o, &e);
    if (rc == 0)
        rc = spass_acc_new(p, N, &a, &e);
    if (rc == 0)
        rc = spass_run(p, a, ids, S, T, "golden", &e);
    CHECK(c, rc == 0, "stats pass on the golden batch%s%s", rc ? ": " : "", rc ? e.msg : "");
    /* the forward's own routing, from its expert taps */
    capture cp = {0};
    fwd_state *st = NULL;
    const float *lg;
    tap_set ts = {on_event, &cp, TAP_BIT(TAP_EXPERT_IN)};
    if (rc == 0 && (rc = fwd_state_new(&st, m, S, T, &e)) == 0)
        rc = fwd_run(m, model_base(m), st, ids, S, T, NULL, &ts, &lg, &e);
    int same = rc == 0, widths = rc == 0;
    double wdev = 0;
    for (int l = 0; rc == 0 && l < cf->n_layers; l++) {
        const stat_input *qb = stat_input_get(a, l, STAT_Q_B_IN, -1);
        const stat_input *kvb = stat_input_get(a, l, STAT_KV_B_IN, -1);
        const stat_input *oi = stat_input_get(a, l, STAT_O_IN, -1);
        widths &= qb && qb->cols == cf->ds.q_lora_rank && qb->rows == N && kvb &&
                  kvb->cols == cf->ds.kv_lora_rank && oi && oi->cols == 256;
        const stat_router *r = stat_router_get(a, l);
        if (!cf->layer_is_moe[l]) {
            same &= r == NULL;
            continue;
        }
        double w = 0;
        for (int x = 0; r && x < cf->n_experts; x++) {
            same &= r->routed[x] == cp.per_expert[l][x];
            w += fx_to_f64(&r->sum_weight[x]);
        }
        wdev = fmax(wdev, fabs(w - N * cf->ds.routed_scaling));
    }
    CHECK(c, same, "router statistics count exactly the experts the forward routed to");
    CHECK(c, widths, "MLA inputs: q_b_in %d wide, kv_b_in %d wide, o_in 256 wide, N rows",
          cf->ds.q_lora_rank, cf->ds.kv_lora_rank);
    CHECK(c, wdev < 1e-3, "router statistics: Σ selected weight = N × routed_scaling_factor "
          "(|d| %.2g)", wdev);
    fwd_state_free(st);
    stat_free(a);
    spass_free(p);
    free(ids);
    model_close(m);
}

/* ---------------------------------------------------------------- scratch model folders */

static void copy_file(const char *src, const char *dst)
{
    size_t n = 0;
    char *b = tio_slurp(src, &n);
    FILE *f = fopen(dst, "wb");
    if (f && b)
        fwrite(b, 1, n, f);
    if (f)
        fclose(f);
    free(b);
}

/* DIR holding CONFIG as config.json and the fixture's weights (or WEIGHTS). */
static void make_dir(const char *dir, const char *config, const char *weights)
{
    char p[512];
    mkdir(dir, 0700);
    snprintf(p, sizeof p, "%s/config.json", dir);
    copy_file(config, p);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    unlink(p);
    if (weights)
        copy_file(weights, p);
    else
        copy_file(FIX "/model.safetensors", p);
}

static void rm_dir(const char *dir)
{
    char p[512];
    snprintf(p, sizeof p, "%s/config.json", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    unlink(p);
    rmdir(dir);
}

static void test_load_errors(chk *c)
{
    char dir[128], w[256], cfg[256];
    snprintf(dir, sizeof dir, "/tmp/vbrlab-test-dsv3-%d", (int)getpid());
    snprintf(w, sizeof w, "/tmp/vbrlab-test-dsv3-%d.safetensors", (int)getpid());
    const char *sc = "model.layers.1.self_attn.kv_b_proj.weight_scale_inv";
    CHECK(c, tm_rewrite(FIX "/model.safetensors", w, sc, NULL) == 0, "write weights without one weight_scale_inv");
    make_dir(dir, FIX "/config.json", w);
    model *m = NULL;
    vl_err e = {0};
    int rc = model_open(&m, dir, &e);
    CHECK_INT(c, rc, VL_ENOTFOUND, "missing weight_scale_inv rejected");
    CHECK_HAS(c, e.msg, sc, "error names the missing scale tensor");
    CHECK_HAS(c, e.msg, "model.layers.1.self_attn.kv_b_proj.weight\" is F8_E4M3",
              "error names the FP8 weight");
    CHECK_HAS(c, e.msg, "model.safetensors", "error names the file");
    model_close(m);
    /* FP8 weights with a config that has no quantization_config */
    json_error_t je;
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    make_dir(dir, FIX "/config.json", NULL);
    json_t *root = json_load_file(cfg, 0, &je);
    json_object_del(root, "quantization_config");
    json_dump_file(root, cfg, 0);
    json_decref(root);
    rc = model_open(&m, dir, &e);
    CHECK_INT(c, rc, VL_ECONFIG, "FP8 weights without quantization_config rejected");
    CHECK_HAS(c, e.msg, "has no quantization_config.weight_block_size", "message says why");
    model_close(m);
    /* a truncated shard */
    size_t n = 0;
    char *b = tio_slurp(FIX "/model.safetensors", &n), p[512];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    make_dir(dir, FIX "/config.json", NULL);
    FILE *f = fopen(p, "wb");
    fwrite(b, 1, n / 2, f);
    fclose(f);
    free(b);
    rc = model_open(&m, dir, &e);
    CHECK_INT(c, rc, VL_ETRUNC, "half an FP8 shard rejected");
    CHECK_HAS(c, e.msg, p, "error names the shard");
    model_close(m);
    rm_dir(dir);
    unlink(w);
}

/* ---------------------------------------------------------------- routing and RoPE units */

static void test_route(chk *c)
{
    hfc_config h;
    vl_err e;
    if (hfc_load(&h, FIX "/config.json", &e)) {
        CHECK(c, 0, "config: %s", e.msg);
        return;
    }
    /* 8 experts in 4 groups of 2; top-2 groups; top-2 experts */
    float lg[8] = {2.0f, 1.9f, -3, -3, 0.5f, 0.4f, 1.0f, 0.9f}, bias[8] = {0}, scr[16], w[2];
    int sel[2];
    moe_route_dsv3(&h, lg, bias, scr, sel, w);
    float s0 = 1 / (1 + expf(-2.0f)), s1 = 1 / (1 + expf(-1.9f));
    CHECK(c, sel[0] == 0 && sel[1] == 1, "no bias: the two best experts (0, 1)");
    CHECK_NEAR(c, w[0], s0 / (s0 + s1) * 2.5, 1e-6, 0, "weight 0 = sigmoid share × 2.5");
    /* a bias moves the selection but not the weights' source: group 1 (experts 2, 3) wins */
    bias[2] = bias[3] = 5;
    moe_route_dsv3(&h, lg, bias, scr, sel, w);
    float s2 = 1 / (1 + expf(3.0f));
    CHECK(c, sel[0] == 2 || sel[0] == 3, "bias on group 1: its experts are chosen (%d, %d)",
          sel[0], sel[1]);
    CHECK_NEAR(c, w[0], s2 / (s2 + s2) * 2.5, 1e-6, 0, "weights from the unbiased scores");
    /* group limit: expert 6 (score 1.0) loses to 4 groups' top-2 sums when its group is out */
    float lg2[8] = {3, 2.9f, 2.8f, 2.7f, -5, -5, 1.5f, -9};
    memset(bias, 0, sizeof bias);
    moe_route_dsv3(&h, lg2, bias, scr, sel, w);
    CHECK(c, (sel[0] == 0 && sel[1] == 1), "top-2 within the 2 best groups (0,1 | 2,3)");
    float lg3[8] = {3, -9, 2.9f, -9, 2.8f, 2.7f, -9, -9};
    moe_route_dsv3(&h, lg3, bias, scr, sel, w);
    /* group sums: g0 = σ3+σ-9, g1 = σ2.9+σ-9, g2 = σ2.8+σ2.7 (best), g3 tiny → groups 2, 0 */
    CHECK(c, sel[0] == 0 && sel[1] == 4, "group scores are top-2 sums: expert 2 (score 2.9) "
          "loses to 4 (2.8) because group 1's second expert is weak (%d, %d)", sel[0], sel[1]);
    /* YaRN frequencies: the fastest dims keep θ^(-2i/d), the slowest are divided by factor */
    double f[16];
    fwd_mla_inv_freq(&h, f);
    CHECK_NEAR(c, f[0], 1.0, 0, 1e-15, "YaRN keeps the fastest frequency");
    CHECK_NEAR(c, f[15], pow(1e4, -30.0 / 32) / 4, 0, 1e-12, "YaRN divides the slowest by 4");
}

/* Row r of W [rows × cols] to row perm(r): within each Dr-wide rope block starting at
 * offset o + k·stride, pair order (x0,x1,x2,x3,..) becomes half order (x0,x2,..,x1,x3,..). */
static float *deinterleave_rows(const float *w, int rows, int cols, int o, int stride, int n,
                                int Dr)
{
    float *d = malloc(sizeof(float) * rows * cols);
    memcpy(d, w, sizeof(float) * rows * cols);
    for (int k = 0; k < n; k++)
        for (int i = 0; i < Dr / 2; i++)
            for (int h = 0; h < 2; h++)
                memcpy(d + (size_t)(o + k * stride + h * Dr / 2 + i) * cols,
                       w + (size_t)(o + k * stride + 2 * i + h) * cols, sizeof(float) * cols);
    return d;
}

static void no_interleave(json_t *r) { json_object_set_new(r, "rope_interleave", json_false()); }
static void no_q_lora(json_t *r) { json_object_set_new(r, "q_lora_rank", json_null()); }

/* Write FIX/config.json with EDIT applied into DIR (plus the fixture's weights). */
static void make_dir_edit(const char *dir, void (*edit)(json_t *))
{
    char cfg[256];
    json_error_t je;
    make_dir(dir, FIX "/config.json", NULL);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    json_t *root = json_load_file(cfg, 0, &je);
    edit(root);
    json_dump_file(root, cfg, 0);
    json_decref(root);
}

/* The exact half of the interleave equivalence: RoPE of a pair-order vector with rope_interleave
 * true and of the same vector in half order with it false give the same bits at every position
 * (fwd_mla.h: the regrouping is a copy, the rotation then meets the same numbers); the
 * pair-order vector rotated as if in half order gives other bits (the flag is read). */
static void test_rope_exact(chk *c, const hfc_config *cf)
{
    enum { T = 256, REPS = 4 };
    int Dr = cf->ds.qk_rope_dim, same = 0, differ = 0;
    fwd_mla *a = NULL;
    rng *r = NULL;
    vl_err e = {0};
    int rc = fwd_mla_new(&a, cf, 1, T, &e);
    if (rc == 0)
        rc = rng_new(&r, 20261202, &e);
    CHECK(c, rc == 0, "rope: tables and rng %s", rc ? e.msg : "ok");
    float *x = malloc(sizeof(float) * Dr), *y1 = malloc(sizeof(float) * Dr),
          *y2 = malloc(sizeof(float) * Dr);
    for (int t = 0; rc == 0 && t < T; t++)
        for (int k = 0; k < REPS; k++) {
            for (int i = 0; i < Dr; i++)
                x[i] = (float)rng_gaussian(r, 1.0);
            float *y0 = deinterleave_rows(x, Dr, 1, 0, 0, 1, Dr);
            memcpy(y1, x, sizeof(float) * Dr);
            memcpy(y2, x, sizeof(float) * Dr);
            fwd_mla_rope(a, y0, Dr, t, 0);
            fwd_mla_rope(a, y1, Dr, t, 1);
            fwd_mla_rope(a, y2, Dr, t, 0);
            same += memcmp(y0, y1, sizeof(float) * Dr) == 0;
            differ += memcmp(y2, y1, sizeof(float) * Dr) != 0;
            free(y0);
        }
    CHECK_INT(c, same, T * REPS, "RoPE of pair order (interleave) = RoPE of half order, bit for "
              "bit, at positions 0..255");
    CHECK_INT(c, differ, T * REPS, "RoPE of pair order read as half order differs every time");
    free(x);
    free(y1);
    free(y2);
    rng_free(r);
    fwd_mla_free(a);
}

/* Max |logit − golden| over which a model's logits still "reproduce the golden with the rope
 * rows reordered". Not bit for bit with BLAS: permuting W's rows moves their dot products to
 * other output columns of the q_b / kv_a GEMM, and an optimized sgemm may sum a column's K
 * products in an order that depends on the column's place in its register tile. OpenBLAS
 * 0.3.21's Haswell sgemm kernel (what it dispatches on an AMD EPYC it does not know) does: 16 of
 * q_b's 384 columns and 8 of kv_a's 160 change bits, by up to 1.4e-7·Σ|x·w|; its SkylakeX kernel
 * gives the same bits. Reordering a float32 sum of K terms changes it by at most
 * 2γ_K·Σ|x_k·w_k| (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., §3.1), the
 * size of rounding it at all, so the logits move by about float32's own distance from the
 * float64 golden: measured 7.3e-6 (max over all 61440 logits) against that distance's 1.0e-5.
 * Over OpenBLAS's kernels (OPENBLAS_CORETYPE = SkylakeX, Haswell, Zen, Sandybridge, Nehalem,
 * Prescott) the move was 0 or 7.3e-6 and the distance 0.94e-5..1.24e-5. 1e-4, ten times the
 * distance, leaves room for other kernels and is 1/60000 of the 5.98 that the flag alone moves
 * the logits. */
#define REORDER_TOL 1e-4

/* rope_interleave false with the rope rows of q_b_proj and kv_a_proj_with_mqa permuted from pair
 * order to half order computes the interleaved model: the rope-rotated q and k are the same bits
 * given the same GEMM outputs (test_rope_exact), so the logits are bit for bit the same with the
 * reference kernels (each output sums k = 0..K−1 whatever its column) and within REORDER_TOL
 * with BLAS; either way they match transformers' float64 golden as the interleaved model does.
 * Without the permutation they miss it by far more than the golden tolerance (the flag is read). */
static void test_interleave(chk *c, const float *ref)
{
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/vbrlab-test-dsv3-il-%d", (int)getpid());
    make_dir_edit(dir, no_interleave);
    model *m = NULL;
    vl_err e = {0};
    int rc = model_open(&m, dir, &e);
    CHECK(c, rc == 0 && ref, "rope_interleave false opens%s%s", rc ? ": " : "", rc ? e.msg : "");
    if (rc || !ref) {
        rm_dir(dir);
        return;
    }
    const hfc_config *cf = model_config(m);
    const hfc_dsv3 *d = &cf->ds;
    int H = cf->n_heads, Dqk = d->qk_nope_dim + d->qk_rope_dim, L = cf->n_layers, S = 3, T = 20,
        V = cf->vocab;
    long n = (long)S * T * V;
    test_rope_exact(c, cf);
    int32_t *ids = NULL;
    float *want = NULL;
    h5s_store *g = NULL;
    h5s_open(&g, FIX "/golden.h5", &e);
    h5s_read(g, "/input_ids", H5S_I32, (void **)&ids, NULL, NULL, &e);
    h5s_read(g, "/logits", H5S_F32, (void **)&want, NULL, NULL, &e);
    h5s_close(g);
    fwd_state *st = NULL;
    const float *lg;
    fwd_state_new(&st, m, S, T, &e);
    rc = fwd_run(m, model_base(m), st, ids, S, T, NULL, NULL, &lg, &e);
    double dflag = rc == 0 && want ? max_abs(lg, want, n) : -1;
    CHECK(c, dflag > 1e-3, "rope_interleave false on the same weights misses the golden by more "
          "than 1e-3 (max|d| %.3g)", dflag);
    model_weights *w = NULL;
    model_weights_clone(&w, m, model_base(m), &e);
    float *own[2 * 8] = {0};
    for (int l = 0; l < L && l < 8; l++) {
        model_layer *Ly = &w->layers[l];
        char nq[96], nkv[96]; /* the stored weights (the clone's slots are NULL) */
        snprintf(nq, sizeof nq, "model.layers.%d.self_attn.q_b_proj.weight", l);
        snprintf(nkv, sizeof nkv, "model.layers.%d.self_attn.kv_a_proj_with_mqa.weight", l);
        float *qb = tm_weights(m, w, (size_t)model_tensor_find(m, nq));
        float *kva = tm_weights(m, w, (size_t)model_tensor_find(m, nkv));
        own[2 * l] = deinterleave_rows(qb, H * Dqk, d->q_lora_rank, d->qk_nope_dim, Dqk, H,
                                       d->qk_rope_dim);
        own[2 * l + 1] = deinterleave_rows(kva, d->kv_lora_rank + d->qk_rope_dim, cf->hidden,
                                           d->kv_lora_rank, 0, 1, d->qk_rope_dim);
        free(qb);
        free(kva);
        Ly->q_b = own[2 * l];
        Ly->kv_a = own[2 * l + 1];
    }
    rc = fwd_run(m, w, st, ids, S, T, NULL, NULL, &lg, &e);
    double dref = rc == 0 ? max_abs(lg, ref, n) : -1;
    if (strcmp(kern_backend(), "reference") == 0)
        CHECK(c, rc == 0 && memcmp(lg, ref, sizeof(float) * n) == 0, "reference kernels: "
              "rope_interleave false + rope rows in half order = the interleaved logits, bit for "
              "bit (max|d| %.3g)", dref);
    else
        CHECK(c, rc == 0 && dref <= REORDER_TOL, "%s: rope_interleave false + rope rows in half "
              "order = the interleaved logits within %g (max|d| %.3g)", kern_backend(),
              REORDER_TOL, dref);
    if (rc == 0 && want) {
        CHECK_TENSOR(c, lg, want, n, 1e-3, 0,
                     "rope rows in half order: logits within 1e-3 of the golden");
        CHECK_INT(c, argmax_agree(lg, want, S * T, V), S * T,
                  "rope rows in half order: argmax of the golden at every position");
    } else
        CHECK(c, 0, "rope rows in half order: forward %s, golden logits %s", rc ? e.msg : "ok",
              want ? "read" : "missing");
    free(want);
    for (int i = 0; i < 16; i++)
        free(own[i]);
    model_weights_free(w);
    fwd_state_free(st);
    free(ids);
    model_close(m);
    /* q_lora_rank null: the plan wants a plain q_proj, which this checkpoint does not have */
    make_dir_edit(dir, no_q_lora);
    rc = model_open(&m, dir, &e);
    CHECK_INT(c, rc, VL_ENOTFOUND, "q_lora_rank null needs q_proj");
    CHECK_HAS(c, e.msg, "model.layers.0.self_attn.q_proj.weight\" missing", "error names q_proj");
    model_close(m);
    rm_dir(dir);
}

int main(void)
{
    chk c;
    chk_init(&c, "test_dsv3");
    test_route(&c);
    float *a = golden(&c, FIX, "transformers-5 config");
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/vbrlab-test-dsv3-legacy-%d", (int)getpid());
    make_dir(dir, FIX "/config.legacy.json", NULL);
    float *b = golden(&c, dir, "legacy config");
    CHECK(&c, a && b && memcmp(a, b, sizeof(float) * 60 * 1024) == 0,
          "both spellings: bit-identical logits");
    rm_dir(dir);
    test_interleave(&c, a);
    free(a);
    free(b);
    model *m = NULL;
    vl_err e;
    if (model_open(&m, FIX, &e) == 0) {
        model_info in;
        model_get_info(m, &in);
        CHECK_INT(&c, in.n_fp8, 3 * 5 + 3 + 2 * (8 * 3 + 3), "FP8 tensors (5 attention + 3 FFN "
                  "per layer, experts)");
        CHECK_INT(&c, in.n_unused, 0, "every tensor of the file used (scales included)");
        CHECK_INT(&c, in.params[MODEL_C_ROUTER], 2 * (8 * 256 + 8), "router + bias parameters");
        model_close(m);
    }
    test_stats(&c);
    test_load_errors(&c);
    return chk_done(&c);
}
