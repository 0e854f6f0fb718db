/* tests/test_sens.c — fwd_run_from equals the full run bit for bit; noise has the asked
 * relative error; α reproducible with a seed, different with another, positive, linear at
 * small ε; sens.h5 round trip; bad granularity / format spec errors. Small sets (2 × 24). */
#include "../alloc/sens.h"
#include "../analysis/fwd.h"
#include "check.h"

#include <gsl/gsl_errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

enum { S = 2, TL = 24 };

/* The expression text names each check. */
#define CI(c, got, want) CHECK_INT(c, got, want, #got)
#define CS(c, got, want) CHECK_STR(c, got, want, #got)
#define CH(c, got, want) CHECK_HAS(c, got, want, #got)

static void make_ids(int32_t *ids, int n, int vocab)
{
    uint32_t x = 2024;
    for (int i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        ids[i] = (int32_t)(1 + (x >> 8) % (uint32_t)(vocab - 1));
    }
}

typedef struct {
    float *h;  /* [(L+1) × N × D] */
    int N, D;
} cap;

static void grab(void *u, const tap_event *ev)
{
    cap *c = u;
    memcpy(c->h + (size_t)(ev->layer + 1) * c->N * c->D, ev->data,
           (size_t)c->N * c->D * sizeof(float));
}

static void test_run_from(chk *c, const model *m, const int32_t *ids)
{
    const hfc_config *cf = model_config(m);
    int N = S * TL, D = cf->hidden, V = cf->vocab, L = cf->n_layers;
    vl_err e;
    fwd_state *st;
    CI(c, fwd_state_new(&st, m, S, TL, &e), 0);
    cap cp = {vl_malloc((size_t)(L + 1) * N * D * sizeof(float)), N, D};
    float *ref = vl_malloc((size_t)N * V * sizeof *ref);
    tap_set ts = {grab, &cp, TAP_BIT(TAP_RESIDUAL)};
    const float *lg;
    CI(c, fwd_embed(m, model_base(m), ids, N, cp.h, &e), 0);
    CI(c, fwd_run(m, model_base(m), st, ids, S, TL, NULL, &ts, &lg, &e), 0);
    memcpy(ref, lg, (size_t)N * V * sizeof *ref);
    for (int l = 0; l <= L; l++) {
        CI(c, fwd_run_from(m, model_base(m), st, l, cp.h + (size_t)l * N * D, S, TL,
                                  NULL, NULL, &lg, &e), 0);
        char what[64];
        snprintf(what, sizeof what, "run_from(%d) logits bit-identical", l);
        CHECK(c, !memcmp(lg, ref, (size_t)N * V * sizeof *ref), what);
    }
    CI(c, fwd_run_from(m, model_base(m), st, L + 1, cp.h, S, TL, NULL, NULL, &lg, &e),
              VL_EARG);
    int32_t bad = V;
    CI(c, fwd_embed(m, model_base(m), &bad, 1, cp.h, &e), VL_ERANGE);
    vl_free(cp.h);
    vl_free(ref);
    fwd_state_free(st);
}

static void test_noise(chk *c, const sens_result *r, const model *m)
{
    const sens_tensor *t = &r->t[0];
    const float *w = *model_weights_slot(m, (model_weights *)model_base(m), (size_t)t->mi);
    float *a = vl_malloc((size_t)t->n * sizeof *a), *b = vl_malloc((size_t)t->n * sizeof *b);
    vl_err e;
    CI(c, sens_noise(a, w, t, 0.01, 7, &e), 0);
    CI(c, sens_noise(b, w, t, 0.01, 7, &e), 0);
    CHECK(c, !memcmp(a, b, (size_t)t->n * sizeof *a), "same seed, same noise");
    double dn = 0, wn = 0;
    for (int64_t i = 0; i < t->n; i++) {
        dn += ((double)a[i] - w[i]) * ((double)a[i] - w[i]);
        wn += (double)w[i] * w[i];
    }
    CHECK_NEAR(c, sqrt(dn / wn), 0.01, 1e-5, 0, "relative noise = eps");
    CI(c, sens_noise(b, w, t, 0.01, 8, &e), 0);
    CHECK(c, memcmp(a, b, (size_t)t->n * sizeof *a) != 0, "other seed, other noise");
    vl_free(a);
    vl_free(b);
}

int main(void)
{
    chk c;
    chk_init(&c, "sens");
    gsl_set_error_handler_off();
    vl_err e;
    model *m = NULL;
    if (model_open(&m, "models/vbrlab-moe-tiny", &e)) {
        printf("cannot open model: %s\n", e.msg);
        return 1;
    }
    int32_t ids[S * TL];
    make_ids(ids, S * TL, model_config(m)->vocab);
    test_run_from(&c, m, ids);

    sens_result r = {0};
    CI(&c, sens_layout(&r, m, SENS_GROUP, &e), 0);
    CI(&c, r.n_tensors, 6 * (4 + 16 * 3 + 3));
    CI(&c, r.n_units, 6 * 10);
    CS(&c, r.unit_name[4], "model.layers.0.mlp.experts.*.gate_proj.weight");
    test_noise(&c, &r, m);

    const char *names[] = {"a", "b"};
    CI(&c, sens_alloc_alpha(&r, 2, names, &e), 0);
    sens_set *ss = NULL;
    CI(&c, sens_set_new(&ss, m, ids, S, TL, &e), 0);
    double k0;
    CI(&c, sens_set_kld(ss, model_base(m), 0, &k0, &e), 0);
    CHECK(&c, k0 >= 0 && k0 < 1e-12, "KLD of the reference against itself is 0");
    sens_params p = sens_defaults();
    /* a few units of every kind: q, v, o of layer 0, experts and shared of layer 2, layer 5 k */
    /* layer 0 q/v/o, layer 2 experts and shared, layer 5 k and its whole MLP (after the last
     * router: no routing flip can make those nonlinear) */
    static const int units[] = {0, 2, 3, 24, 26, 27, 29, 51, 54, 55, 56, 57, 58, 59};
    enum { NU = sizeof units / sizeof *units };
    for (int k = 0; k < NU; k++) {
        CI(&c, sens_unit_alpha(&r, 0, units[k], m, ss, &p, &e), 0);
        CI(&c, sens_unit_alpha(&r, 1, units[k], m, ss, &p, &e), 0); /* same seed */
    }
    int pos = 1, same = 1, lin = 0;
    for (int k = 0; k < NU; k++) {
        int u = units[k];
        pos &= r.alpha[0][u] > 0 && r.alpha[1][u] > 0;
        same &= r.alpha[0][u] == r.alpha[0][r.n_units + u];
        double ratio = r.alpha[1][u] / r.alpha[0][u];
        lin += u >= 54 && ratio > 0.9 && ratio < 1.1;
        printf("# unit %-48s α(0.01) %.4g  ratio %.4f\n", r.unit_name[u], r.alpha[0][u], ratio);
    }
    CHECK(&c, pos, "every α > 0");
    CHECK(&c, same, "α reproducible with the same seed");
    CHECK(&c, lin == 6, "α(0.03)/α(0.01) within [0.9, 1.1] for the post-router units of layer 5");
    p.seed = 2;
    int differ = 0;
    for (int k = 0; k < NU; k++) {
        CI(&c, sens_unit_alpha(&r, 1, units[k], m, ss, &p, &e), 0);
        differ += r.alpha[0][units[k]] != r.alpha[0][r.n_units + units[k]];
    }
    CHECK(&c, differ == NU, "another seed gives other α");

    /* round trip (α only) */
    h5s_store *h;
    const char *path = "build/test_sens_rt.h5";
    CI(&c, h5s_create(&h, path, &e), 0);
    CI(&c, sens_write(&r, h, &e), 0);
    CI(&c, h5s_commit(h, &e), 0);
    sens_result b;
    CI(&c, h5s_open(&h, path, &e), 0);
    CI(&c, sens_read(&b, h, &e), 0);
    if (e.code)
        printf("# %s\n", e.msg);
    h5s_close(h);
    CI(&c, b.n_tensors, r.n_tensors);
    CI(&c, b.n_units, r.n_units);
    CS(&c, b.t[100].name, r.t[100].name);
    CI(&c, b.t[100].unit, r.t[100].unit);
    CS(&c, b.set_name[1], "b");
    CHECK(&c, !memcmp(b.alpha[1], r.alpha[1], 2 * (size_t)r.n_units * sizeof(double)),
          "α read back bit for bit");
    sens_result_free(&b);
    remove(path);

    sens_gran g;
    CI(&c, sens_gran_parse("layer", &g, &e), VL_EARG);
    CH(&c, e.msg, "granularity \"layer\"");
    sens_set_free(ss);
    sens_result_free(&r);
    model_close(m);
    return chk_done(&c);
}
