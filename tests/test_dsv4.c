/* tests/test_dsv4.c — deepseek_v4 against transformers 5.17's float64 golden, and its config.
 *
 * Fixture tests/fixtures/tiny-deepseek-v4 (make_fixtures.py beside it): 4 layers, one of each
 * attention kind (HCA, CSA, sliding, CSA), a hash-routed first MoE layer, FP8 block weights.
 * golden.h5: hidden_states/00 is the embedding in every stream, 01..03 the streams after
 * layers 0..2, 04 model.norm(hc_head(streams)); router_logits/NN = router input · weightᵀ.
 * Checked: every hidden state and router logit, logits within 1e-3 and the same argmax, a
 * resume from each layer equal to the full run, config errors naming the key.
 */
#define _POSIX_C_SOURCE 200809L
#include "../alloc/sens.h"
#include "../analysis/fwd.h"
#include "../analysis/model.h"
#include "../analysis/model_dsv4.h"
#include "../io/h5s.h"
#include "../plots/plotsrc.h"
#include "../io/st.h"
#include "check.h"
#include "testio.h"
#include "testmodel.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIX "tests/fixtures/tiny-deepseek-v4"

enum { MAX_L = 8 };

typedef struct {
    float *resid[MAX_L], *router[MAX_L];
    int n_expert_rows[MAX_L];
    tm_route route; /* the router events' selection against the expert rows */
} capture;

static void on_event(void *user, const tap_event *ev)
{
    capture *cp = user;
    int l = ev->layer;
    if (l >= MAX_L)
        return;
    tm_route_event(&cp->route, ev);
    if (ev->point == TAP_RESIDUAL && !cp->resid[l])
        cp->resid[l] = tm_dup_rows(ev);
    if (ev->point == TAP_ROUTER_LOGITS && !cp->router[l])
        cp->router[l] = tm_dup_rows(ev);
    if (ev->point == TAP_EXPERT_IN)
        for (int r = 0; r < ev->rows; r++)
            cp->n_expert_rows[l] += ev->row_weight[r] > 0;
}

static void capture_free(capture *cp)
{
    for (int l = 0; l < MAX_L; l++) {
        free(cp->resid[l]);
        free(cp->router[l]);
    }
    tm_route_free(&cp->route);
}

static float *read_f32(chk *c, h5s_store *g, const char *ds)
{
    float *want = NULL;
    vl_err e = {0};
    if (h5s_read(g, ds, H5S_F32, (void **)&want, NULL, NULL, &e)) {
        CHECK(c, 0, "read %s: %s", ds, e.msg);
        return NULL;
    }
    return want;
}

/* Each part of the math the golden covers: change one tensor (in a cloned binding) and the
 * logits must move by more than the golden tolerance, so the golden test could fail on it. */
typedef struct {
    int layer;        /* −1: global */
    int slot;         /* v4_slot, or v4_global for layer −1 */
    int mode;         /* 0 negate, 1 zero, 2 next expert (tid2eid) */
    const char *what;
} ablation;

static void ablations(chk *c, const model *m, fwd_state *st, const int32_t *ids, int S, int T,
                      const float *full)
{
    static const ablation k[] = {
        {0, V4_SINKS, 0, "HCA layer attention sinks"},
        {0, V4_C_APE, 0, "HCA compressor position bias"},
        {0, V4_C_WGATE, 1, "HCA compressor gate"},
        {1, V4_C_WGATE, 0, "CSA compressor gate (overlapping windows)"},
        {1, V4_I_WPROJ, 0, "CSA lightning indexer head weights (top-k choice)"},
        {3, V4_I_WQ_B, 0, "CSA lightning indexer queries"},
        {2, V4_KV_NORM, 0, "sliding layer shared KV norm"},
        {2, V4_WO_A, 0, "grouped output projection"},
        {0, V4_TID2EID, 2, "hash routing table"},
        {1, V4_GATE_BIAS, 0, "router selection bias"},
        {0, V4_HC_ATTN_BASE, 0, "mHC attention-site base"},
        {3, V4_HC_FFN_SCALE, 0, "mHC ffn-site scales"},
        {-1, V4_G_HC_BASE, 0, "hyper head base"},
    };
    const hfc_config *cf = model_config(m);
    vl_err e = {0};
    int V = cf->vocab, N = S * T;
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        long ix = k[i].layer < 0 ? mdsv4_global(cf, (v4_global)k[i].slot)
                                 : mdsv4_index(cf, k[i].layer, (v4_slot)k[i].slot);
        if (ix < 0) {
            CHECK(c, 0, "%s: no tensor", k[i].what);
            continue;
        }
        const model_tensor *t = model_tensor_at(m, (size_t)ix);
        model_weights *w = NULL;
        model_weights_clone(&w, m, model_base(m), &e);
        const float **slot = model_weights_slot(m, w, (size_t)ix);
        float *ref = tm_weights(m, w, (size_t)ix);
        float *buf = malloc(sizeof(float) * t->numel);
        for (int64_t j = 0; j < t->numel; j++)
            buf[j] = k[i].mode == 0 ? -ref[j]
                     : k[i].mode == 1 ? 0.0f
                                      : (float)(((int)ref[j] + 1) % cf->n_experts);
        *slot = buf;
        const float *lg = NULL;
        int rc = fwd_run(m, w, st, ids, S, T, NULL, NULL, &lg, &e);
        double mx = 0;
        for (long j = 0; rc == 0 && j < (long)N * V; j++)
            mx = fabs(lg[j] - full[j]) > mx ? fabs(lg[j] - full[j]) : mx;
        CHECK(c, rc == 0 && mx > 1e-3, "%s (%s) moves the logits: max |Δ| %.3g", k[i].what,
              t->name, mx);
        free(buf);
        free(ref);
        model_weights_free(w);
    }
}

/* The sensitivity cache resumes at a layer from the hc_mult-stream residual it captured: the
 * KLD of a perturbed binding is the same from layer 0 and from the perturbed layer, and 0 for
 * the model's own weights. */
static void sens_resume(chk *c, const model *m, const int32_t *ids, int S, int T)
{
    const hfc_config *cf = model_config(m);
    sens_set *ss = NULL;
    vl_err e = {0};
    int rc = sens_set_new(&ss, m, ids, S, T, &e);
    CHECK(c, rc == 0, "sens_set_new %s", rc ? e.msg : "ok");
    if (rc)
        return;
    double k0 = -1, k2 = -1, kb = -1;
    rc = sens_set_kld(ss, model_base(m), 2, &kb, &e);
    CHECK(c, rc == 0 && kb == 0.0, "own weights from layer 2: KLD %g", kb);
    model_weights *w = NULL;
    model_weights_clone(&w, m, model_base(m), &e);
    long ix = mdsv4_index(cf, 2, V4_WO_B);
    const model_tensor *t = model_tensor_at(m, (size_t)ix);
    const float **slot = model_weights_slot(m, w, (size_t)ix);
    float *ref = tm_weights(m, w, (size_t)ix);
    float *buf = malloc(sizeof(float) * t->numel);
    for (int64_t j = 0; j < t->numel; j++)
        buf[j] = ref[j] * (1.0f + 0.05f * (float)((j * 7919) % 13 - 6) / 6.0f);
    *slot = buf;
    rc = sens_set_kld(ss, w, 0, &k0, &e) || sens_set_kld(ss, w, 2, &k2, &e);
    CHECK(c, rc == 0 && k0 > 0 && k0 == k2, "layer 2 wo_b perturbed: KLD from layer 0 %.9g, "
          "from layer 2 %.9g", k0, k2);
    free(buf);
    free(ref);
    model_weights_free(w);
    sens_set_free(ss);
}

static void golden(chk *c)
{
    vl_err e = {0};
    model *m = NULL;
    h5s_store *g = NULL;
    int rc = model_open(&m, FIX, &e);
    CHECK(c, rc == 0, "model_open %s", rc ? e.msg : "ok");
    if (rc == 0)
        rc = h5s_open(&g, FIX "/golden.h5", &e);
    CHECK(c, rc == 0, "open golden %s", rc ? e.msg : "ok");
    if (rc) {
        model_close(m);
        return;
    }
    const hfc_config *cf = model_config(m);
    int32_t *ids = NULL;
    int nd = 0;
    int64_t sh[H5S_MAX_DIMS];
    rc = h5s_read(g, "/input_ids", H5S_I32, (void **)&ids, &nd, sh, &e);
    CHECK(c, rc == 0 && nd == 2, "input_ids");
    int S = (int)sh[0], T = (int)sh[1], N = S * T, D = cf->hidden, V = cf->vocab,
        L = cf->n_layers, W = fwd_residual_width(m);
    CHECK_INT(c, W, 4 * D, "residual width hc_mult·D");
    fwd_state *st = NULL;
    rc = fwd_state_new(&st, m, S, T, &e);
    capture cp = {0};
    tap_set ts = {on_event, &cp, TAP_ALL};
    const float *lg = NULL;
    if (rc == 0)
        rc = fwd_run(m, model_base(m), st, ids, S, T, NULL, &ts, &lg, &e);
    CHECK(c, rc == 0, "forward %s", rc ? e.msg : "ok");
    if (rc)
        goto done;
    float *emb = malloc(sizeof(float) * N * W);
    fwd_embed(m, model_base(m), ids, N, emb, &e);
    for (int l = 0; l <= L; l++) {
        char ds[64];
        snprintf(ds, sizeof ds, "/hidden_states/%02d", l);
        float *want = read_f32(c, g, ds);
        const float *got = l == 0 ? emb : l < L ? cp.resid[l - 1] : fwd_final_hidden(st);
        if (want)
            CHECK_TENSOR(c, got, want, (long)N * (l < L ? W : D), 2e-3, 1e-3, ds);
        free(want);
        snprintf(ds, sizeof ds, "/router_logits/%02d", l);
        if (l < L && (want = read_f32(c, g, ds))) {
            CHECK_TENSOR(c, cp.router[l], want, (long)N * cf->n_experts, 1e-3, 1e-3, ds);
            free(want);
        }
        if (l < L) /* every token reaches top-k experts (hash layers: its tid2eid row) */
            CHECK(c, cp.n_expert_rows[l] == N * cf->n_experts_per_tok,
                  "layer %d: %d routed rows, expected N·K = %d", l, cp.n_expert_rows[l],
                  N * cf->n_experts_per_tok);
    }
    CHECK(c, cp.route.bad == 0 && cp.route.hits == cp.route.selected &&
             cp.route.selected == (long)L * N * cf->n_experts_per_tok,
          "the router events' selection (%ld of %ld met, %ld bad; hash layers too) is the "
          "experts' rows and weights", cp.route.hits, cp.route.selected, cp.route.bad);
    float *want = read_f32(c, g, "/logits");
    if (want) {
        CHECK_TENSOR(c, lg, want, (long)N * V, 1e-3, 0, "logits");
        int same = 1;
        for (int r = 0; r < N; r++) {
            int a = 0, b = 0;
            for (int v = 1; v < V; v++) {
                a = lg[(size_t)r * V + v] > lg[(size_t)r * V + a] ? v : a;
                b = want[(size_t)r * V + v] > want[(size_t)r * V + b] ? v : b;
            }
            same &= a == b;
        }
        CHECK(c, same, "argmax identical at all %d positions", N);
    }
    /* resuming at layer l from the captured streams gives the same logits bit for bit */
    float *full = malloc(sizeof(float) * N * V);
    memcpy(full, lg, sizeof(float) * N * V);
    for (int l = 1; l <= L; l++) {
        rc = fwd_run_from(m, model_base(m), st, NULL, l, cp.resid[l - 1], S, T, NULL, NULL, &lg,
                          &e);
        CHECK(c, rc == 0 && !memcmp(lg, full, sizeof(float) * N * V),
              "fwd_run_from layer %d equals the full run", l);
    }
    ablations(c, m, st, ids, S, T, full);
    sens_resume(c, m, ids, S, T);
    free(full);
    free(want);
    free(emb);
done:
    capture_free(&cp);
    free(ids);
    fwd_state_free(st);
    h5s_close(g);
    model_close(m);
}

/* ---------------------------------------------------------------- config */

/* Per-expert sensitivity maps place V4's expert and shared-expert matrices (w1/w3/w2) in the
 * gate/up/down columns. */
static void plot_cells(chk *c)
{
    int l = -1, e = -1, col = -1;
    int ok = psrc_tensor_cell("model.layers.3.ffn.experts.5.w2.weight", &l, &e, &col);
    CHECK(c, ok && l == 3 && e == 5 && col == 6, "experts.5.w2 → layer 3 expert 5 down column");
    ok = psrc_tensor_cell("model.layers.1.ffn.shared_experts.w3.weight", &l, &e, &col);
    CHECK(c, ok && l == 1 && e == -1 && col == 8, "shared_experts.w3 → shared up column");
    ok = psrc_tensor_cell("model.layers.1.ffn.gate.weight", &l, &e, &col);
    CHECK(c, !ok, "the router has no cell");
}

static void config_values(chk *c)
{
    hfc_config h;
    vl_err e = {0};
    int rc = hfc_load(&h, FIX "/config.json", &e);
    CHECK(c, rc == 0, "hfc_load %s", rc ? e.msg : "ok");
    const hfc_dsv4 *v = &h.v4;
    CHECK(c, h.arch == HFC_DEEPSEEK_V4 && h.n_kv_heads == 1 && h.head_dim == 64 &&
             h.n_experts == 8 && h.n_experts_per_tok == 2 && h.moe_intermediate == 64 &&
             h.shared_intermediate == 64, "sizes");
    CHECK(c, v->q_lora_rank == 64 && v->o_groups == 2 && v->o_lora_rank == 64 &&
             v->hc_mult == 4 && v->hc_sinkhorn_iters == 20 && v->hc_eps == 1e-6, "mHC and ranks");
    CHECK(c, v->rope_dim_main == 16 && v->rope_dim_compress == 16 && v->theta_main == 1e4 &&
             v->theta_compress == 1.6e5, "partial rope: 16 dims, main 1e4, compress 1.6e5");
    CHECK(c, v->sliding_window == 8 && v->rate_csa == 4 && v->rate_hca == 8 &&
             v->index_heads == 2 && v->index_head_dim == 32 && v->index_topk == 4,
          "window, compress rates, indexer");
    CHECK(c, v->att_kind[0] == HFC_ATT_HCA && v->att_kind[1] == HFC_ATT_CSA &&
             v->att_kind[2] == HFC_ATT_SLIDING && v->att_kind[3] == HFC_ATT_CSA,
          "layer_types");
    CHECK(c, v->hash_moe[0] && !v->hash_moe[1] && !v->hash_moe[2] && !v->hash_moe[3],
          "mlp_layer_types");
    CHECK(c, v->scoring == HFC_SCORE_SQRTSOFTPLUS && v->routed_scaling == 1.5 &&
             v->swiglu_limit == 1.0 && h.fp8_block[0] == 128 && h.fp8_block[1] == 128,
          "routing, swiglu_limit, fp8 blocks");
}

/* The fixture's config.json with FROM replaced by TO (once) written to dir/config.json. */
static int write_variant(const char *dir, const char *from, const char *to)
{
    size_t n = 0;
    char *txt = tio_slurp(FIX "/config.json", &n), path[512];
    char *at = txt ? strstr(txt, from) : NULL;
    if (!at) {
        free(txt);
        return -1;
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        free(txt);
        return -1;
    }
    fprintf(f, "%.*s%s%s", (int)(at - txt), txt, to, at + strlen(from));
    fclose(f);
    free(txt);
    return 0;
}

static void config_errors(chk *c)
{
    static const struct {
        const char *from, *to, *msg;
    } k[] = {
        {"\"rope_type\": \"default\"\n    }\n  }", "\"rope_type\": \"yarn\"\n    }\n  }",
         "\"rope_parameters.main.rope_type\" = \"yarn\" not supported"},
        {"\"n_shared_experts\": 1", "\"n_shared_experts\": 2", "\"n_shared_experts\" must be 1"},
        {"\"scoring_func\": \"sqrtsoftplus\"", "\"scoring_func\": \"noaux\"",
         "\"scoring_func\" = \"noaux\" not supported"},
        {"\"sliding_attention\",", "\"full_attention\",", "layer_types[2] is not"},
        {"\"num_key_value_heads\": 1", "\"num_key_value_heads\": 2",
         "\"num_key_value_heads\" must be 1"},
        {"\"hash_moe\",", "\"dense\",", "mlp_layer_types[0] is not hash_moe or moe"},
        {"\"o_groups\": 2", "\"o_groups\": 3", "\"o_groups\" does not divide"},
        {"\"q_lora_rank\": 64,", "", "missing field \"q_lora_rank\""},
        {"\"norm_topk_prob\": true", "\"norm_topk_prob\": false", "\"norm_topk_prob\" false"},
        {"\"quant_method\": \"fp8\"", "\"quant_method\": \"gptq\"",
         "quantization_config.quant_method \"gptq\" not supported"},
    };
    char dir[64], path[600];
    CHECK(c, tio_tmpdir(dir, sizeof dir, "dsv4-cfg") == 0, "temp dir");
    snprintf(path, sizeof path, "%s/config.json", dir);
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        hfc_config h;
        vl_err e = {0};
        int w = write_variant(dir, k[i].from, k[i].to);
        int rc = w ? -1 : hfc_load(&h, path, &e);
        CHECK(c, w == 0 && rc == VL_ECONFIG && strstr(e.msg, k[i].msg) && strstr(e.msg, path),
              "config error %zu: %s", i, w ? "variant not written" : e.msg);
    }
    /* legacy spellings: compress_ratios per layer and num_hash_layers */
    hfc_config h;
    vl_err e = {0};
    int w = write_variant(dir, "\"layer_types\": [\n    \"heavily_compressed_attention\",\n    "
                          "\"compressed_sparse_attention\",\n    \"sliding_attention\",\n    "
                          "\"compressed_sparse_attention\"\n  ],",
                          "\"compress_ratios\": [8, 4, 0, 4], \"num_hash_layers\": 2,");
    /* 8 is not a legacy ratio (0/4/128): refused, naming the key */
    int rc = w ? -1 : hfc_load(&h, path, &e);
    CHECK(c, rc == VL_ECONFIG && strstr(e.msg, "compress_ratios[0]"), "legacy ratio 8: %s",
          e.msg);
    w = write_variant(dir, "\"layer_types\": [\n    \"heavily_compressed_attention\",\n    "
                      "\"compressed_sparse_attention\",\n    \"sliding_attention\",\n    "
                      "\"compressed_sparse_attention\"\n  ],",
                      "\"compress_ratios\": [128, 4, 0, 4],");
    rc = w ? -1 : hfc_load(&h, path, &e);
    CHECK(c, rc == 0 && h.v4.att_kind[0] == HFC_ATT_HCA && h.v4.att_kind[1] == HFC_ATT_CSA &&
             h.v4.att_kind[2] == HFC_ATT_SLIDING, "legacy compress_ratios %s", rc ? e.msg : "");
    unlink(path);
    rmdir(dir);
}

/* Max |Δ| of the fixture's logits under config variant (FROM → TO) against REF. */
static double variant_logits(chk *c, const char *from, const char *to, const float *ref,
                             hfc_config *h)
{
    char dir[64], p[600], lnk[600];
    double mx = -1;
    CHECK(c, tio_tmpdir(dir, sizeof dir, "dsv4-yarn") == 0, "temp dir");
    snprintf(p, sizeof p, "%s/config.json", dir);
    snprintf(lnk, sizeof lnk, "%s/model.safetensors", dir);
    char *cwd = getcwd(NULL, 0), tgt[1200];
    snprintf(tgt, sizeof tgt, "%s/" FIX "/model.safetensors", cwd ? cwd : ".");
    free(cwd);
    model *m = NULL;
    fwd_state *st = NULL;
    vl_err e = {0};
    int32_t ids[20];
    for (int t = 0; t < 20; t++)
        ids[t] = (int32_t)((t * 37 + 11) % 1024);
    const float *lg = NULL;
    int rc = write_variant(dir, from, to) || symlink(tgt, lnk) ? -1 : model_open(&m, dir, &e);
    if (rc == 0)
        *h = *model_config(m);
    if (rc == 0)
        rc = fwd_state_new(&st, m, 1, 20, &e);
    if (rc == 0)
        rc = fwd_run(m, model_base(m), st, ids, 1, 20, NULL, NULL, &lg, &e);
    CHECK(c, rc == 0, "variant forward %s", rc ? e.msg : "ok");
    for (long j = 0; rc == 0 && j < 20L * 1024; j++)
        mx = fabs(lg[j] - ref[j]) > mx ? fabs(lg[j] - ref[j]) : mx;
    fwd_state_free(st);
    model_close(m);
    unlink(p);
    unlink(lnk);
    rmdir(dir);
    return mx;
}

/* YaRN on the compress rope (real V4 configs use it): factor 1 is the plain rope (same logits),
 * factor 4 moves them; the flat spelling forces attention_factor 1, the nested one keeps the
 * mscale. */
static void yarn(chk *c)
{
    static const char plain[] = "\"rope_theta\": 160000.0,\n      \"rope_type\": \"default\"";
    hfc_config h;
    model *m = NULL;
    fwd_state *st = NULL;
    vl_err e = {0};
    int32_t ids[20];
    for (int t = 0; t < 20; t++)
        ids[t] = (int32_t)((t * 37 + 11) % 1024);
    const float *lg = NULL;
    float ref[20 * 1024];
    int rc = model_open(&m, FIX, &e);
    if (rc == 0)
        rc = fwd_state_new(&st, m, 1, 20, &e);
    if (rc == 0)
        rc = fwd_run(m, model_base(m), st, ids, 1, 20, NULL, NULL, &lg, &e);
    CHECK(c, rc == 0, "reference forward");
    if (rc == 0)
        memcpy(ref, lg, sizeof ref);
    fwd_state_free(st);
    model_close(m);
    double d1 = variant_logits(c, plain, "\"rope_theta\": 160000.0, \"factor\": 1.0, "
                               "\"original_max_position_embeddings\": 256,\n      "
                               "\"rope_type\": \"yarn\"", ref, &h);
    CHECK(c, d1 >= 0 && d1 < 1e-4 && h.v4.yarn_compress.on && h.v4.yarn_compress.attn_factor == 1,
          "compress YaRN factor 1 = plain rope: max |Δ| %.3g", d1);
    double d4 = variant_logits(c, plain, "\"rope_theta\": 160000.0, \"factor\": 4.0, "
                               "\"original_max_position_embeddings\": 8,\n      "
                               "\"rope_type\": \"yarn\"", ref, &h);
    CHECK(c, d4 > 1e-3 && fabs(h.v4.yarn_compress.attn_factor - (0.1 * log(4.0) + 1)) < 1e-12,
          "compress YaRN factor 4 moves the logits (%.3g); nested dict keeps mscale %.6g", d4,
          h.v4.yarn_compress.attn_factor);
    /* flat spelling: the dict's yarn goes to compress with attention_factor forced to 1 */
    double df = variant_logits(c, "\"rope_parameters\": {", "\"rope_scaling\": {\"type\": "
                               "\"yarn\", \"factor\": 4.0, \"original_max_position_embeddings\": "
                               "8}, \"unused_rope_parameters\": {", ref, &h);
    CHECK(c, df >= 0 && h.v4.yarn_compress.on && h.v4.yarn_compress.attn_factor == 1.0 &&
             h.v4.yarn_compress.factor == 4.0, "legacy rope_scaling yarn read (attention factor "
          "%g)", h.v4.yarn_compress.attn_factor);
}

/* FP8 weights without (or with misshapen) block scales are errors naming the tensor. */
static void fp8_errors(chk *c)
{
    vl_err e = {0};
    int rc;
    char dir[64], path[600], cfg[600];
    CHECK(c, tio_tmpdir(dir, sizeof dir, "dsv4-fp8") == 0, "temp dir");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    write_variant(dir, "\"architectures\"", "\"architectures\"");
    const char *victim = "model.layers.2.attn.wo_b.weight_scale_inv";
    for (int mode = 0; mode < 2; mode++) { /* 0: scale dropped, 1: scale stored as [1, 2] */
        rc = tm_rewrite(FIX "/model.safetensors", path, mode ? NULL : victim, mode ? victim : NULL);
        CHECK(c, rc == 0, "write variant %d", mode);
        model *m = NULL;
        rc = model_open(&m, dir, &e);
        CHECK(c, rc == (mode ? VL_ESHAPE : VL_ENOTFOUND) && strstr(e.msg, victim),
              "%s scale: %s", mode ? "misshapen" : "missing", e.msg);
        model_close(m);
    }
    unlink(path);
    unlink(cfg);
    rmdir(dir);
}

/* ---------------------------------------------------------------- end to end */

/* vbrlab info names the V4 classes; vbrlab run completes every stage; the store's router
 * statistics count N·K routed slots per layer (the hash layer too) and the allocation spends
 * bits only on the quantizable classes. */
static void end_to_end(chk *c)
{
    static char log[1 << 16];
    int st = tio_vbrlab("info " FIX, log, sizeof log);
    int ok = st == 0 && strstr(log, "hyper-connections") && strstr(log, "compressor/indexer") &&
             strstr(log, "deepseek_v4") && strstr(log, "BF16+F8_E4M3") &&
             strstr(log, "attention wo_a") && strstr(log, "routed experts w2") &&
             strstr(log, "HCA+hash, CSA, sliding, CSA");
    CHECK(c, ok, "info lists the deepseek_v4 classes%s%s", ok ? "" : ":\n", ok ? "" : log);
    char dir[64], ini[600], out[600], args[1400];
    CHECK(c, tio_tmpdir(dir, sizeof dir, "dsv4-run") == 0, "temp dir");
    snprintf(ini, sizeof ini, "%s/run.ini", dir);
    snprintf(out, sizeof out, "%s/run.h5", dir);
    char *src = tio_slurp("tests/data/run-dsv4.ini", NULL);
    FILE *f = fopen(ini, "w");
    for (char *line = src, *next; f && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        fprintf(f, "%s\n", strncmp(line, "out =", 5) ? line : "");
        if (!strncmp(line, "out =", 5))
            fprintf(f, "out = %s\n", out);
    }
    if (f)
        fclose(f);
    free(src);
    snprintf(args, sizeof args, "run %s", ini);
    st = tio_vbrlab(args, log, sizeof log);
    ok = st == 0 && strstr(log, "stats: done") && strstr(log, "sens: done") &&
         strstr(log, "alloc.en: done") && strstr(log, "eval: done") && strstr(log, "report: done");
    CHECK(c, ok, "vbrlab run completes every stage (exit %d)%s%s", st, ok ? "" : ":\n",
          ok ? "" : log);
    h5s_store *g = NULL;
    vl_err e = {0};
    /* vbrlab forward on the golden's first sequence: same logits, streams as golden.h5 */
    int32_t *gid = NULL;
    float *glg = NULL, *lg = NULL, *hs = NULL;
    int nd = 0;
    int64_t sh[H5S_MAX_DIMS], sh2[H5S_MAX_DIMS];
    int rc = h5s_open(&g, FIX "/golden.h5", &e);
    if (rc == 0)
        rc = h5s_read(g, "/input_ids", H5S_I32, (void **)&gid, NULL, sh, &e);
    if (rc == 0)
        rc = h5s_read(g, "/logits", H5S_F32, (void **)&glg, NULL, NULL, &e);
    h5s_close(g);
    g = NULL;
    char idl[512] = "", fout[600];
    for (int t = 0; rc == 0 && t < sh[1]; t++)
        snprintf(idl + strlen(idl), sizeof idl - strlen(idl), "%s%d", t ? "," : "", gid[t]);
    snprintf(fout, sizeof fout, "%s/fwd.h5", dir);
    snprintf(args, sizeof args, "forward %s --ids %s --out %s --hidden --router", FIX, idl, fout);
    st = rc ? -1 : tio_vbrlab(args, log, sizeof log);
    if (st == 0)
        rc = h5s_open(&g, fout, &e);
    if (st == 0 && rc == 0)
        rc = h5s_read(g, "/logits", H5S_F32, (void **)&lg, NULL, NULL, &e) ||
             h5s_read(g, "/hidden_states/02", H5S_F32, (void **)&hs, &nd, sh2, &e);
    if (st == 0 && rc == 0)
        CHECK_TENSOR(c, lg, glg, (long)sh[1] * 1024, 1e-3, 0, "vbrlab forward logits of sequence 0");
    else
        CHECK(c, 0, "vbrlab forward (exit %d) %s", st, st ? log : e.msg);
    CHECK(c, rc == 0 && nd == 4 && sh2[2] == 4 && sh2[3] == 256,
          "vbrlab forward --hidden writes the 4 streams [1, T, 4, 256]");
    h5s_close(g);
    g = NULL;
    unlink(fout);
    free(gid);
    free(glg);
    free(lg);
    free(hs);
    rc = h5s_open(&g, out, &e);
    CHECK(c, rc == 0, "open run store %s", rc ? e.msg : "");
    /* the hash layer's counts are those of its table: tid2eid[token] for every token */
    int32_t *ids = NULL;
    model *m = NULL;
    int64_t want0[8] = {0};
    if (rc == 0 && h5s_read(g, "/sets/en/input_ids", H5S_I32, (void **)&ids, NULL, NULL, &e) == 0 &&
        model_open(&m, FIX, &e) == 0) {
        float *tid = tm_weights(m, model_base(m),
                                (size_t)mdsv4_index(model_config(m), 0, V4_TID2EID));
        for (int t = 0; t < 64 && tid; t++)
            for (int k = 0; k < 2; k++)
                want0[(int)tid[ids[t] * 2 + k]]++;
        free(tid);
    }
    model_close(m);
    free(ids);
    for (int l = 0; rc == 0 && l < 4; l++) {
        char p[128];
        int64_t *routed = NULL, *tokens = NULL;
        snprintf(p, sizeof p, "/stats/en/layers/%02d/router/routed", l);
        int r1 = h5s_read(g, p, H5S_I64, (void **)&routed, NULL, NULL, &e);
        snprintf(p, sizeof p, "/stats/en/layers/%02d/router/tokens", l);
        int r2 = h5s_read(g, p, H5S_I64, (void **)&tokens, NULL, NULL, &e);
        int64_t sum = 0;
        for (int x = 0; r1 == 0 && x < 8; x++)
            sum += routed[x];
        CHECK(c, r1 == 0 && r2 == 0 && tokens[0] == 64 && sum == 2 * 64,
              "layer %d router statistics: %lld tokens, %lld routed slots", l,
              r2 ? -1LL : (long long)tokens[0], (long long)sum);
        if (l == 0 && r1 == 0)
            CHECK(c, !memcmp(routed, want0, sizeof want0), "hash layer routed counts = tid2eid "
                  "counts of the calibration tokens (%lld %lld %lld ...)", (long long)routed[0],
                  (long long)routed[1], (long long)routed[2]);
        free(routed);
        free(tokens);
    }
    double *bpw = NULL;
    if (rc == 0 && h5s_read(g, "/alloc/en-2.5/item_bpw", H5S_F64, (void **)&bpw, &nd, sh, &e) == 0)
        CHECK(c, nd == 1 && sh[0] == 44, "44 allocation units (per layer wq_a, wq_b, wkv, wo_a, "
              "wo_b, experts.* w1/w3/w2, shared w1/w3/w2): %lld", (long long)sh[0]);
    else
        CHECK(c, 0, "read allocation: %s", e.msg);
    free(bpw);
    h5s_close(g);
    unlink(ini);
    unlink(out);
    rmdir(dir);
}

int main(void)
{
    chk c;
    chk_init(&c, "test_dsv4");
    golden(&c);
    config_values(&c);
    plot_cells(&c);
    config_errors(&c);
    fp8_errors(&c);
    yarn(&c);
    end_to_end(&c);
    return chk_done(&c);
}
