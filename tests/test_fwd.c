/* tests/test_fwd.c — the forward pass against Hugging Face goldens, and its invariants.
 *
 * Goldens (golden.h5: input_ids, hidden_states/NN, router_logits/NN, logits from transformers
 * in float64): the embedded qwen2_moe model and the random-weight fixtures in tests/fixtures/
 * (llama and qwen3 dense, qwen3_moe, mixtral). Invariants: batch vs one sequence at a time,
 * the causal prefix property, tap order and counts, route-all statistics leaving the logits
 * unchanged, a cloned weights binding, model_open errors on broken model directories.
 */
#define _POSIX_C_SOURCE 200809L
#include "../analysis/fwd.h"
#include "../analysis/model.h"
#include "../io/h5s.h"
#include "../io/st.h"
#include "check.h"
#include "testmodel.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define TINY "models/vbrlab-moe-tiny"

/* ---------------------------------------------------------------- capture consumer */

enum { MAX_EVENTS = 4096, MAX_LAYERS = 16 };

typedef struct {
    int n;
    tap_point point[MAX_EVENTS];
    int layer[MAX_EVENTS], expert[MAX_EVENTS], rows[MAX_EVENTS], cols[MAX_EVENTS];
    float *resid[MAX_LAYERS];   /* copies of TAP_RESIDUAL per layer */
    float *router[MAX_LAYERS];  /* copies of TAP_ROUTER_LOGITS per layer */
    float *mlp_in;              /* TAP_MLP_IN of layer 0 */
    double expert_in_err;       /* max |EXPERT_IN row − MLP_IN row at row_token| (layer 0) */
    double wsum[MAX_LAYERS];    /* Σ row_weight over TAP_EXPERT_IN events per layer */
    int bad_rowmap;             /* an expert event whose row_token is out of range */
    tm_route route;             /* the router events' selection against the expert rows */
} capture;

static void on_event(void *user, const tap_event *ev)
{
    capture *cp = user;
    if (cp->n < MAX_EVENTS) {
        cp->point[cp->n] = ev->point;
        cp->layer[cp->n] = ev->layer;
        cp->expert[cp->n] = ev->expert;
        cp->rows[cp->n] = ev->rows;
        cp->cols[cp->n] = ev->cols;
    }
    cp->n++;
    tm_route_event(&cp->route, ev);
    int l = ev->layer, N = ev->n_seq * ev->seq_len;
    if (ev->point == TAP_RESIDUAL && l < MAX_LAYERS && !cp->resid[l])
        cp->resid[l] = tm_dup_rows(ev);
    if (ev->point == TAP_ROUTER_LOGITS && l < MAX_LAYERS && !cp->router[l])
        cp->router[l] = tm_dup_rows(ev);
    if (ev->point == TAP_MLP_IN && l == 0 && !cp->mlp_in)
        cp->mlp_in = tm_dup_rows(ev);
    if (ev->point == TAP_EXPERT_IN && l < MAX_LAYERS) {
        for (int r = 0; r < ev->rows; r++) {
            int t = ev->row_token ? ev->row_token[r] : r;
            if (t < 0 || t >= N) {
                cp->bad_rowmap = 1;
                continue;
            }
            cp->wsum[l] += ev->row_weight[r];
            for (int d = 0; l == 0 && cp->mlp_in && d < ev->cols; d++) {
                double a = fabs(ev->data[r * ev->stride + d] - cp->mlp_in[(size_t)t * ev->cols + d]);
                cp->expert_in_err = a > cp->expert_in_err ? a : cp->expert_in_err;
            }
        }
    }
}

static void capture_free(capture *cp)
{
    for (int l = 0; l < MAX_LAYERS; l++) {
        free(cp->resid[l]);
        free(cp->router[l]);
    }
    free(cp->mlp_in);
    tm_route_free(&cp->route);
    memset(cp, 0, sizeof *cp);
}

/* ---------------------------------------------------------------- golden comparison */

static void cmp(chk *c, const char *dir, const char *what, const float *got, const float *want,
                long n, double abs_tol)
{
    char name[256];
    snprintf(name, sizeof name, "%s %s", dir, what);
    CHECK_TENSOR(c, got, want, n, abs_tol, 1e-3, name);
}

/* Forward the golden input through model DIR; compare every hidden state, router logits and
 * logits; logits max |Δ| <= 1e-3 and the same argmax everywhere. Returns the logits (malloc). */
static float *golden_test(chk *c, const char *dir)
{
    char path[512];
    vl_err e = {0};
    model *m = NULL;
    h5s_store *g = NULL;
    snprintf(path, sizeof path, "%s/golden.h5", dir);
    int rc = model_open(&m, dir, &e);
    CHECK(c, rc == 0, "%s: model_open%s%s", dir, rc ? ": " : "", rc ? e.msg : "");
    if (rc == 0)
        rc = h5s_open(&g, path, &e);
    CHECK(c, rc == 0, "%s: open golden%s%s", dir, rc ? ": " : "", rc ? e.msg : "");
    if (rc) {
        model_close(m);
        return NULL;
    }
    const hfc_config *cf = model_config(m);
    int32_t *ids = NULL;
    int nd = 0;
    int64_t sh[H5S_MAX_DIMS];
    rc = h5s_read(g, "/input_ids", H5S_I32, (void **)&ids, &nd, sh, &e);
    CHECK(c, rc == 0 && nd == 2, "%s: input_ids %s", dir, rc ? e.msg : "2-d");
    int S = (int)sh[0], T = (int)sh[1], N = S * T, D = cf->hidden, V = cf->vocab;
    fwd_state *st = NULL;
    rc = fwd_state_new(&st, m, S, T, &e);
    capture cp = {0};
    tap_set ts = {on_event, &cp, TAP_BIT(TAP_RESIDUAL) | TAP_BIT(TAP_ROUTER_LOGITS)};
    const float *lg = NULL;
    if (rc == 0)
        rc = fwd_run(m, model_base(m), st, ids, S, T, NULL, &ts, &lg, &e);
    CHECK(c, rc == 0, "%s: forward %s", dir, rc ? e.msg : "ok");
    float *out = NULL;
    for (int l = 0; rc == 0 && l <= cf->n_layers; l++) {
        char ds[64];
        float *want = NULL;
        snprintf(ds, sizeof ds, "/hidden_states/%02d", l);
        if (h5s_read(g, ds, H5S_F32, (void **)&want, NULL, NULL, &e)) {
            CHECK(c, 0, "%s: read %s: %s", dir, ds, e.msg);
            continue;
        }
        float *got = malloc(sizeof(float) * N * D);
        if (l == 0 && model_embed_rows(m, model_base(m), ids, N, got, (size_t)D, &e))
            CHECK(c, 0, "%s: embedding rows: %s", dir, e.msg);
        if (l > 0 && l < cf->n_layers)
            memcpy(got, cp.resid[l - 1], sizeof(float) * N * D);
        if (l == cf->n_layers)
            memcpy(got, fwd_final_hidden(st), sizeof(float) * N * D);
        cmp(c, dir, ds, got, want, (long)N * D, 2e-3);
        free(got);
        free(want);
        snprintf(ds, sizeof ds, "/router_logits/%02d", l);
        if (l < cf->n_layers && cf->layer_is_moe[l]) {
            rc = h5s_read(g, ds, H5S_F32, (void **)&want, NULL, NULL, &e);
            CHECK(c, rc == 0, "%s: read %s", dir, ds);
            if (rc == 0)
                cmp(c, dir, ds, cp.router[l], want, (long)N * cf->n_experts, 1e-3);
            free(want);
            rc = 0;
        }
    }
    float *want = NULL;
    if (rc == 0 && h5s_read(g, "/logits", H5S_F32, (void **)&want, NULL, NULL, &e) == 0) {
        cmp(c, dir, "logits", lg, want, (long)N * V, 1e-3);
        int same = 1;
        for (int r = 0; r < N; r++) {
            int a = 0, b = 0;
            for (int v = 1; v < V; v++) {
                a = lg[(size_t)r * V + v] > lg[(size_t)r * V + a] ? v : a;
                b = want[(size_t)r * V + v] > want[(size_t)r * V + b] ? v : b;
            }
            same &= a == b;
        }
        CHECK(c, same, "%s: argmax identical at all %d positions", dir, N);
        out = malloc(sizeof(float) * N * V);
        memcpy(out, lg, sizeof(float) * N * V);
    }
    free(want);
    capture_free(&cp);
    free(ids);
    fwd_state_free(st);
    h5s_close(g);
    model_close(m);
    return out;
}

/* ---------------------------------------------------------------- invariants (embedded) */

static int32_t *golden_ids(const char *dir, int *S, int *T)
{
    char path[512];
    vl_err e;
    h5s_store *g = NULL;
    int32_t *ids = NULL;
    int64_t sh[H5S_MAX_DIMS];
    snprintf(path, sizeof path, "%s/golden.h5", dir);
    if (h5s_open(&g, path, &e) || h5s_read(g, "/input_ids", H5S_I32, (void **)&ids, NULL, sh, &e)) {
        h5s_close(g);
        return NULL;
    }
    h5s_close(g);
    *S = (int)sh[0];
    *T = (int)sh[1];
    return ids;
}

/* One sequence at a time, and prefixes, give the batch's logits. */
static void test_batching(chk *c, const model *m, const int32_t *ids, int S, int T,
                          const float *full)
{
    int V = model_config(m)->vocab, P = 10;
    fwd_state *st = NULL;
    vl_err e;
    const float *lg;
    CHECK(c, fwd_state_new(&st, m, S, T, &e) == 0, "state %d x %d", S, T);
    for (int s = 0; s < S; s++) {
        int rc = fwd_run(m, model_base(m), st, ids + (size_t)s * T, 1, T, NULL, NULL, &lg, &e);
        CHECK(c, rc == 0, "single sequence %d runs", s);
        char name[64];
        snprintf(name, sizeof name, "sequence %d alone = in the batch", s);
        CHECK_TENSOR(c, lg, full + (size_t)s * T * V, (long)T * V, 1e-5, 1e-4, name);
    }
    int32_t *pre = malloc(sizeof(int32_t) * S * P);
    for (int s = 0; s < S; s++)
        memcpy(pre + (size_t)s * P, ids + (size_t)s * T, sizeof(int32_t) * P);
    int rc = fwd_run(m, model_base(m), st, pre, S, P, NULL, NULL, &lg, &e);
    CHECK(c, rc == 0, "prefix batch %d x %d runs", S, P);
    double worst = 0;
    for (int s = 0; rc == 0 && s < S; s++)
        for (long i = 0; i < (long)P * V; i++) {
            double d = fabs(lg[(size_t)s * P * V + i] - full[(size_t)s * T * V + i]);
            worst = d > worst ? d : worst;
        }
    CHECK(c, rc == 0 && worst <= 1e-4, "causal prefix: logits of %d-token prefixes match "
          "(max|d| %.3g)", P, worst);
    free(pre);
    fwd_state_free(st);
}

/* Tap order and counts, expert rows, route-all statistics. */
static void test_taps(chk *c, const model *m, const int32_t *ids, int S, int T)
{
    const hfc_config *cf = model_config(m);
    int L = cf->n_layers, E = cf->n_experts, K = cf->n_experts_per_tok, N = S * T;
    int V = cf->vocab;
    fwd_state *st = NULL;
    vl_err e;
    const float *lg;
    fwd_state_new(&st, m, S, T, &e);
    static capture cp, ca; /* large: keep off the stack */
    tap_set ts = {on_event, &cp, TAP_ALL};
    int rc = fwd_run(m, model_base(m), st, ids, S, T, NULL, &ts, &lg, &e);
    CHECK(c, rc == 0, "forward with all taps");
    float *ref = malloc(sizeof(float) * N * V);
    memcpy(ref, lg, sizeof(float) * N * V);
    /* MoE layer: attn_in, o_in, mlp_in, router, residual; E expert_in + E down_in; shared
     * down_in. Dense layer: attn_in, o_in, mlp_in, mlp_down_in, residual. Then the logits. */
    int want_n = 1;
    for (int l = 0; l < L; l++)
        want_n += cf->layer_is_moe[l] ? 5 + 2 * E + (cf->shared_intermediate > 0) : 5;
    CHECK_INT(c, cp.n, want_n, "event count");
    int ordered = 1, rows_ok = 1;
    for (int i = 1; i < cp.n && i < MAX_EVENTS; i++) {
        long a = ((long)cp.layer[i - 1] * TAP_COUNT + cp.point[i - 1]) * 1000 + cp.expert[i - 1];
        long b = ((long)cp.layer[i] * TAP_COUNT + cp.point[i]) * 1000 + cp.expert[i];
        ordered &= a < b;
    }
    CHECK(c, ordered, "events in (layer, point, expert) order");
    for (int l = 0; l < L; l++) {
        long in = 0, down = 0;
        for (int i = 0; i < cp.n && i < MAX_EVENTS; i++) {
            if (cp.layer[i] != l)
                continue;
            in += cp.point[i] == TAP_EXPERT_IN ? cp.rows[i] : 0;
            down += cp.point[i] == TAP_EXPERT_DOWN_IN ? cp.rows[i] : 0;
            if (cp.point[i] == TAP_EXPERT_DOWN_IN)
                rows_ok &= cp.cols[i] == cf->moe_intermediate;
        }
        rows_ok &= in == (long)N * K * cf->layer_is_moe[l] &&
                   down == (long)N * K * cf->layer_is_moe[l];
    }
    CHECK(c, rows_ok, "per-expert rows sum to N*K = %d per layer (in and down_in)", N * K);
    CHECK(c, cp.expert_in_err == 0.0 && !cp.bad_rowmap,
          "expert input rows are the MLP input rows of their row_token (max|d| %g)",
          cp.expert_in_err);
    long n_moe = 0;
    for (int l = 0; l < L; l++)
        n_moe += cf->layer_is_moe[l] != 0;
    CHECK(c, cp.route.bad == 0 && cp.route.hits == cp.route.selected &&
             cp.route.selected == n_moe * N * K,
          "the router events' selection (%ld of %ld met, %ld bad) is the experts' rows and "
          "weights", cp.route.hits, cp.route.selected, cp.route.bad);

    fwd_opts o = fwd_opts_defaults();
    o.route_all_experts = 1;
    ts.user = &ca;
    rc = fwd_run(m, model_base(m), st, ids, S, T, &o, &ts, &lg, &e);
    CHECK(c, rc == 0 && memcmp(lg, ref, sizeof(float) * N * V) == 0,
          "route-all: logits bit-identical to the top-k run");
    CHECK_INT(c, ca.n, cp.n, "route-all: same event count");
    int all_ok = 1;
    double wdiff = 0;
    for (int l = 0; l < L; l++) {
        long in = 0, down = 0;
        for (int i = 0; i < ca.n && i < MAX_EVENTS; i++) {
            in += ca.layer[i] == l && ca.point[i] == TAP_EXPERT_IN ? ca.rows[i] : 0;
            down += ca.layer[i] == l && ca.point[i] == TAP_EXPERT_DOWN_IN ? ca.rows[i] : 0;
        }
        all_ok &= in == (long)N * E * cf->layer_is_moe[l] &&
                  down == (long)N * E * cf->layer_is_moe[l];
        wdiff = fmax(wdiff, fabs(ca.wsum[l] - cp.wsum[l]));
    }
    CHECK(c, all_ok, "route-all: per-expert rows sum to N*E = %d per layer", N * E);
    CHECK(c, ca.route.bad == 0 && ca.route.hits == cp.route.hits,
          "route-all: the selection's rows carry its weights, the others weight 0 (%ld bad)",
          ca.route.bad);
    CHECK(c, wdiff < 1e-3 && cp.wsum[L - 1] > 0, "route-all: same routing weight mass "
          "(|d| %g)", wdiff);
    if (cf->norm_topk_prob) /* renormalised: each token's K weights sum to 1 */
        CHECK_NEAR(c, cp.wsum[L - 1], N, 1e-3, 0, "norm_topk_prob: weights sum to 1 per token");
    else /* plain softmax probabilities of the top K: less than 1 per token */
        CHECK(c, cp.wsum[L - 1] < N, "top-k weights without renormalisation sum below N");
    capture_free(&cp);
    capture_free(&ca);
    free(ref);
    fwd_state_free(st);
}

/* A cloned binding, a replaced tensor, argument errors (embedded model). */
static void test_binding(chk *c, const model *m, const int32_t *ids, int S, int T)
{
    const hfc_config *cf = model_config(m);
    int N = S * T, V = cf->vocab;
    fwd_state *st = NULL;
    vl_err e;
    const float *lg;
    int rc = fwd_state_new(&st, m, S, T, &e);
    if (rc == 0)
        rc = fwd_run(m, model_base(m), st, ids, S, T, NULL, NULL, &lg, &e);
    CHECK(c, rc == 0, "binding: reference run");
    if (rc) {
        fwd_state_free(st);
        return;
    }
    float *ref = malloc(sizeof(float) * N * V);
    memcpy(ref, lg, sizeof(float) * N * V);

    /* a cloned binding gives the same logits; replacing one expert changes them */
    model_weights *w = NULL;
    rc = model_weights_clone(&w, m, model_base(m), &e);
    CHECK(c, rc == 0, "clone the binding");
    rc = fwd_run(m, w, st, ids, S, T, NULL, NULL, &lg, &e);
    CHECK(c, rc == 0 && memcmp(lg, ref, sizeof(float) * N * V) == 0, "clone: same logits");
    long ti = model_tensor_find(m, "model.layers.2.mlp.experts.3.down_proj.weight");
    CHECK(c, ti >= 0, "find expert tensor by name");
    if (ti >= 0) {
        const model_tensor *t = model_tensor_at(m, (size_t)ti);
        const float **slot = model_weights_slot(m, w, (size_t)ti);
        CHECK(c, slot == &w->layers[2].experts[3].down && !*slot && t->rows == cf->hidden,
              "slot of %s is the binding's pointer, NULL (stored) in a clone of the base",
              t->name);
        float *zero = calloc((size_t)t->numel, sizeof *zero);
        *slot = zero;
        rc = fwd_run(m, w, st, ids, S, T, NULL, NULL, &lg, &e);
        CHECK(c, rc == 0 && memcmp(lg, ref, sizeof(float) * N * V) != 0,
              "clone with one expert zeroed: logits change");
        CHECK(c, model_base(m)->layers[2].experts[3].down == NULL, "base binding untouched");
        free(zero);
    }
    model_weights_free(w);

    int32_t bad[2] = {0, V};
    rc = fwd_run(m, model_base(m), st, bad, 1, 2, NULL, NULL, &lg, &e);
    CHECK(c, rc == VL_ERANGE, "token id = vocab rejected");
    CHECK_HAS(c, e.msg, "outside the vocabulary", "token id error message");
    rc = fwd_run(m, model_base(m), st, ids, S + 1, T, NULL, NULL, &lg, &e);
    CHECK(c, rc == VL_EARG, "batch larger than the state rejected");
    free(ref);
    fwd_state_free(st);
}

static void test_info(chk *c, const model *m)
{
    model_info in;
    model_get_info(m, &in);
    CHECK_INT(c, in.params_total, 25460480, "embedded model parameters (MODEL_CARD)");
    int64_t sum = 0;
    for (int k = 0; k < MODEL_C_COUNT; k++)
        sum += in.params[k];
    CHECK_INT(c, sum, in.params_total, "classes sum to the total");
    CHECK_INT(c, in.params[MODEL_C_EMBED], 16384 * 256, "embedding parameters");
    CHECK_INT(c, in.params[MODEL_C_ROUTER], 6 * 16 * 256, "router parameters");
    CHECK_INT(c, in.params[MODEL_C_EXPERT], 6LL * 16 * 3 * 256 * 256, "routed expert parameters");
    CHECK_INT(c, in.params[MODEL_C_LM_HEAD], 0, "tied lm_head counts 0");
    CHECK_NEAR(c, in.bits_per_weight, 16.0, 0, 0, "bf16 = 16 stored bits per weight");
    CHECK_INT(c, in.n_unused, 0, "no unused tensors");
}

/* ---------------------------------------------------------------- model_open errors */

/* Copy fixture SRC to DST leaving out tensor DROP (or reshaping tensor RESHAPE to [1, n]). */
static int broken_copy(const char *src, const char *dst, const char *drop, const char *reshape)
{
    char path[512];
    mkdir(dst, 0700);
    snprintf(path, sizeof path, "%s/model.safetensors", dst);
    int rc = tm_rewrite(src, path, drop, reshape);
    char cfg[512], buf[4096];
    snprintf(cfg, sizeof cfg, "%s/config.json", src);
    FILE *fi = fopen(cfg, "rb");
    snprintf(cfg, sizeof cfg, "%s/config.json", dst);
    FILE *fo = fopen(cfg, "wb");
    size_t got = fi ? fread(buf, 1, sizeof buf, fi) : 0;
    if (fo)
        fwrite(buf, 1, got, fo);
    if (fi)
        fclose(fi);
    if (fo)
        fclose(fo);
    return rc || !got ? -1 : 0;
}

static void test_open_errors(chk *c)
{
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/vbrlab-test-fwd-%d", (int)getpid());
    const char *src = "tests/fixtures/mixtral";
    const char *miss = "model.layers.1.block_sparse_moe.experts.2.w3.weight";
    model *m = NULL;
    vl_err e = {0};
    CHECK(c, broken_copy(src, dir, miss, NULL) == 0, "write a model missing one tensor");
    int rc = model_open(&m, dir, &e);
    CHECK(c, rc == VL_ENOTFOUND && !m, "missing tensor rejected (%d)", rc);
    CHECK_HAS(c, e.msg, miss, "error names the tensor");
    CHECK_HAS(c, e.msg, dir, "error names the model");
    const char *bad = "model.layers.0.self_attn.k_proj.weight";
    CHECK(c, broken_copy(src, dir, NULL, bad) == 0, "write a model with one tensor misshapen");
    rc = model_open(&m, dir, &e);
    CHECK(c, rc == VL_ESHAPE && !m, "wrong shape rejected (%d)", rc);
    CHECK_HAS(c, e.msg, bad, "error names the tensor");
    CHECK_HAS(c, e.msg, "model.safetensors", "error names the file");
    CHECK_HAS(c, e.msg, "expected [32,64]", "error gives the expected shape");
    CHECK(c, broken_copy(src, dir, NULL, NULL) == 0, "write an intact copy");
    rc = model_open(&m, dir, &e);
    CHECK(c, rc == 0, "intact copy opens%s%s", rc ? ": " : "", rc ? e.msg : "");
    model_close(m);
    char p[256];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/config.json", dir);
    unlink(p);
    rmdir(dir);
    rc = model_open(&m, "/nonexistent/model", &e);
    CHECK(c, rc != 0 && !m, "missing directory rejected: %s", e.msg);
}

int main(void)
{
    chk c;
    chk_init(&c, "test_fwd");
    float *full = golden_test(&c, TINY);
    const char *fixtures[] = {"tests/fixtures/llama-dense", "tests/fixtures/qwen3-dense",
                              "tests/fixtures/qwen3-moe", "tests/fixtures/mixtral"};
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
        free(golden_test(&c, fixtures[i]));
    model *m = NULL;
    vl_err e;
    int S = 0, T = 0;
    int32_t *ids = golden_ids(TINY, &S, &T);
    if (full && ids && model_open(&m, TINY, &e) == 0) {
        test_info(&c, m);
        test_batching(&c, m, ids, S, T, full);
        test_taps(&c, m, ids, S, T);
        test_binding(&c, m, ids, S, T);
    } else {
        CHECK(&c, 0, "embedded model available for the invariant tests");
    }
    model_close(m);
    free(ids);
    /* a MoE model with a dense layer (mlp_only_layers [0]) and no shared expert */
    m = NULL;
    ids = golden_ids("tests/fixtures/qwen3-moe", &S, &T);
    if (ids && model_open(&m, "tests/fixtures/qwen3-moe", &e) == 0)
        test_taps(&c, m, ids, S, T);
    else
        CHECK(&c, 0, "qwen3-moe fixture available for the tap tests");
    model_close(m);
    free(ids);
    free(full);
    test_open_errors(&c);
    return chk_done(&c);
}
