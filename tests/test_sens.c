/* tests/test_sens.c — fwd_run_from equals the full run bit for bit; noise has the asked
 * relative error; α reproducible with a seed, different with another, positive, linear at
 * small ε; sens.h5 round trip; bad granularity / format spec errors. Small sets (2 × 24). */
#include "../alloc/sens.h"
#include "../alloc/rd.h"
#include "../analysis/fwd.h"
#include "../analysis/spass.h"
#include "../core/fx.h"
#include "check.h"
#include "testmodel.h"

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
        CI(c, fwd_run_from(m, model_base(m), st, NULL, l, cp.h + (size_t)l * N * D, S, TL,
                                  NULL, NULL, &lg, &e), 0);
        char what[64];
        snprintf(what, sizeof what, "run_from(%d) logits bit-identical", l);
        CHECK(c, !memcmp(lg, ref, (size_t)N * V * sizeof *ref), what);
    }
    CI(c, fwd_run_from(m, model_base(m), st, NULL, L + 1, cp.h, S, TL, NULL, NULL, &lg, &e),
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
    float *w = tm_weights(m, model_base(m), (size_t)t->mi);
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
    free(w);
    vl_free(a);
    vl_free(b);
}

/* Hand-made bootstrap: the SE of the mean of {1, 2, 3, 4} is sqrt(Σ(x − x̄)²)/n = 0.559. */
static void test_bootstrap(chk *c)
{
    double x[4] = {1, 2, 3, 4};
    double a = sens_bootstrap_se(x, 4, 4000, 9, "t"), b = sens_bootstrap_se(x, 4, 4000, 9, "t");
    CHECK_NEAR(c, a, sqrt(5.0) / 4, 0, 0.05, "bootstrap SE of {1,2,3,4} ≈ 0.559");
    CHECK(c, a == b, "bootstrap SE reproducible with its seed");
    CHECK(c, a != sens_bootstrap_se(x, 4, 4000, 10, "t"), "another seed, another SE");
    CHECK(c, isnan(sens_bootstrap_se(x, 1, 100, 9, "t")), "one sequence: no SE (NaN)");
    double same[3] = {2, 2, 2};
    CHECK(c, sens_bootstrap_se(same, 3, 100, 9, "t") == 0, "constant sequences: SE 0");
    sens_params p = sens_defaults();
    CI(c, p.max_tokens, 0);
    CI(c, sens_seqs_used(&p, 16, 128), 16); /* 16 × 128: all 2048 tokens by default */
    p.max_tokens = 256;
    CI(c, sens_seqs_used(&p, 16, 128), 2);
    p.max_tokens = 100;
    CI(c, sens_seqs_used(&p, 16, 128), 1);
    CI(c, sens_defaults().draws, 2);

    /* the quadratic-regime flag from the stored ratio, hand-made */
    double a0[4] = {1, 1, 1, NAN}, a1[4] = {1.2, 1.3, 0.7, 1};
    sens_result r = {0};
    r.n_units = 4;
    r.alpha[0] = a0;
    r.alpha[1] = a1;
    CHECK(c, !sens_nonquadratic(&r, 0, 0) && sens_nonquadratic(&r, 0, 1) &&
             sens_nonquadratic(&r, 0, 2) && !sens_nonquadratic(&r, 0, 3),
          "ratio 1.2 quadratic, 1.3 and 0.7 not, NaN not flagged");
}

/* α is the mean over every sequence of the set: a 2-sequence subset gives another α, its
 * per-sequence KLDs are the full set's first two; K draws are averaged, the spread kept. */
static void test_sequences(chk *c, const model *m)
{
    enum { NS = 4 };
    int32_t ids[NS * TL];
    make_ids(ids, NS * TL, model_config(m)->vocab);
    vl_err e = {0};
    sens_result r = {0}, one = {0};
    const char *names[] = {"full", "half"};
    CI(c, sens_layout(&r, m, SENS_GROUP, 0, &e), 0);
    CI(c, sens_layout(&one, m, SENS_GROUP, 0, &e), 0);
    CI(c, sens_alloc_alpha(&r, 2, names, &e), 0);
    CI(c, sens_alloc_alpha(&one, 1, names, &e), 0);
    sens_set *full = NULL, *half = NULL;
    CI(c, sens_set_new(&full, m, ids, NS, TL, &e), 0);
    CI(c, sens_set_new(&half, m, ids, 2, TL, &e), 0);
    sens_params p = sens_defaults();
    const int u = 2; /* layer 0 v_proj */
    CI(c, sens_unit_alpha(&r, 0, u, m, full, &p, &e), 0);
    CI(c, sens_unit_alpha(&r, 1, u, m, half, &p, &e), 0);
    int U = r.n_units;
    double af = r.alpha[0][u], ah = r.alpha[0][U + u];
    CHECK(c, r.set_seqs[0] == NS && r.set_seqs[1] == 2 && r.set_tokens[0] == NS * TL &&
             r.set_tokens[1] == 2 * TL, "every sequence used: %d and %d sequences",
          r.set_seqs[0], r.set_seqs[1]);
    CHECK(c, fabs(af - ah) > 1e-6 * af, "α of 2 sequences (%.6g) differs from α of all %d (%.6g)",
          ah, NS, af);
    const double *sf = r.seq_kld[0] + (size_t)u * NS, *sh = r.seq_kld[1] + (size_t)u * 2;
    double mean = 0;
    for (int q = 0; q < NS; q++)
        mean += sf[q] / NS;
    CHECK_NEAR(c, af, mean / (p.eps[0] * p.eps[0]), 0, 1e-12, "α = mean of per-sequence KLD/ε²");
    CHECK(c, fabs(sh[0] - sf[0]) <= 1e-4 * sf[0] && fabs(sh[1] - sf[1]) <= 1e-4 * sf[1],
          "the subset's sequence KLDs are the full set's first two (%.6g %.6g vs %.6g %.6g)",
          sh[0], sh[1], sf[0], sf[1]);
    CHECK(c, r.alpha_se[0][u] > 0 && isfinite(r.alpha_se[0][u]) && r.alpha_se[0][u] < af,
          "α ± SE: %.4g ± %.3g", af, r.alpha_se[0][u]);
    const double *da = r.draw_alpha[0] + (size_t)u * 2;
    CHECK(c, r.n_draws == 2 && da[0] != da[1], "two noise draws, two α (%.6g %.6g)", da[0],
          da[1]);
    CHECK_NEAR(c, af, (da[0] + da[1]) / 2, 0, 1e-12, "α = mean over draws");
    CHECK_NEAR(c, r.alpha_draw_sd[0][u], fabs(da[0] - da[1]) / sqrt(2.0), 0, 1e-12,
               "draw sd = |α₀ − α₁|/√2");
    p.draws = 1;
    CI(c, sens_unit_alpha(&one, 0, u, m, full, &p, &e), 0);
    CHECK_NEAR(c, one.alpha[0][u], da[0], 0, 1e-12, "one draw = the first draw of two");
    CHECK(c, isnan(one.alpha_draw_sd[0][u]), "one draw: no draw spread");
    CI(c, sens_unit_alpha(&r, 1, u, m, half, &p, &e), VL_EARG); /* draws mixed within a result */
    /* one noise level given twice: level 1 is level 0's runs, copied (not rerun) */
    sens_result same = {0};
    CI(c, sens_layout(&same, m, SENS_GROUP, 0, &e), 0);
    CI(c, sens_alloc_alpha(&same, 1, names, &e), 0);
    sens_params p1 = p;
    p1.eps[1] = p1.eps[0];
    CI(c, sens_unit_alpha(&same, 0, u, m, full, &p1, &e), 0);
    CHECK(c, same.alpha[0][u] == one.alpha[0][u] && same.alpha[1][u] == one.alpha[0][u] &&
             same.alpha_se[1][u] == one.alpha_se[0][u] && same.kld[1][u] == one.kld[0][u] &&
             !memcmp(same.seq_kld[0] + ((size_t)U + u) * NS, one.seq_kld[0] + (size_t)u * NS,
                     NS * sizeof(double)) &&
             same.draw_alpha[1][u] == one.draw_alpha[0][u],
          "ε given once: both levels hold the level-0 numbers (α %.6g, %.6g)", same.alpha[0][u],
          same.alpha[1][u]);
    sens_result_free(&same);

    h5s_store *h;
    const char *path = "build/test_sens_seq.h5";
    sens_result b;
    CI(c, h5s_create(&h, path, &e), 0);
    CI(c, sens_write(&r, h, &e), 0);
    CI(c, h5s_commit(h, &e), 0);
    CI(c, h5s_open(&h, path, &e), 0);
    CI(c, sens_read(&b, h, &e), 0);
    h5s_close(h);
    CHECK(c, b.n_draws == 2 && b.n_boot == r.n_boot && b.set_seqs && b.set_seqs[0] == NS &&
             b.seq_kld && b.seq_kld[1] &&
             !memcmp(b.seq_kld[0], r.seq_kld[0], 2 * (size_t)U * NS * sizeof(double)) &&
             !memcmp(b.alpha_se[0], r.alpha_se[0], 2 * (size_t)U * sizeof(double)) &&
             !memcmp(b.draw_alpha[1], r.draw_alpha[1], 4 * (size_t)U * sizeof(double)),
          "SE, draws and per-sequence KLDs read back bit for bit");
    sens_result_free(&b);
    remove(path);
    sens_set_free(full);
    sens_set_free(half);
    sens_result_free(&r);
    sens_result_free(&one);
}

/* RD tables per set: each set's column is the tensor quantized with that set's own
 * statistics (RTN's importance here), equal to a direct fq_tensor + rd_measure with them; two
 * sets give two columns (before, every column was quantized with the first set's). */
static void test_rd_per_set(chk *c, const model *m)
{
    int32_t ids[2][S * TL];
    make_ids(ids[0], S * TL, model_config(m)->vocab);
    for (int i = 0; i < S * TL; i++)
        ids[1][i] = (ids[0][i] * 7 + 11) % model_config(m)->vocab;
    vl_err e = {0};
    spass_opts o = spass_opts_defaults();
    o.batch = S;
    o.max_len = TL;
    o.no_hessian = 1;
    spass *sp = NULL;
    stat_acc *acc[2] = {NULL, NULL};
    CI(c, spass_new(&sp, m, &o, &e), 0);
    for (int s = 0; sp && s < 2; s++) {
        CI(c, spass_acc_new(sp, S * TL, &acc[s], &e), 0);
        CI(c, spass_run(sp, acc[s], ids[s], S, TL, s ? "b" : "a", &e), 0);
    }
    spass_free(sp);
    sens_result r = {0};
    const char *names[] = {"a", "b"};
    sens_params p = sens_defaults();
    CI(c, sens_layout(&r, m, SENS_GROUP, 0, &e), 0);
    CI(c, sens_alloc_alpha(&r, 2, names, &e), 0);
    int rc = sens_rd(&r, m, "rtn:b=2:g=64", acc, &p, NULL, &e);
    CHECK(c, rc == 0, "sens_rd with two sets: %s", rc ? e.msg : "ok");
    int T = r.n_tensors, F = r.n_formats, ok = rc == 0, differ = 0;
    for (int ti = 0; ok && ti < T; ti += 37) { /* a spread of tensors, experts included */
        const sens_tensor *t = &r.t[ti];
        float *w = tm_weights(m, model_base(m), (size_t)t->mi);
        float *q = vl_malloc((size_t)t->n * sizeof *q);
        double *imp = vl_malloc((size_t)t->cols * sizeof *imp);
        for (int s = 0; s < 2; s++) {
            stat_slot slot;
            int ex;
            sens_tensor_slot(t, &slot, &ex);
            const stat_input *in = stat_input_get(acc[s], t->layer, slot, ex);
            stat_input_f64(in, NULL, imp, NULL, NULL);
            fq_stats fs = {imp, NULL, (double)in->rows_routed};
            rd_point pt;
            ok &= fq_tensor(q, w, t->rows, t->cols, &r.fmt[0], &fs, NULL, &p.fq, NULL, t->name,
                            &e) == 0 &&
                  rd_measure(&pt, w, q, t->rows, t->cols, &r.fmt[0], imp, NULL, &e) == 0;
            size_t ix = ((size_t)s * T + ti) * F;
            ok &= r.rel_w[ix] == pt.rel_w && r.rel_imp[ix] == pt.rel_imp;
        }
        differ += r.rel_w[(size_t)ti * F] != r.rel_w[((size_t)T + ti) * F];
        free(w);
        vl_free(q);
        vl_free(imp);
    }
    CHECK(c, ok, "every set's RD column = fq_tensor + rd_measure with that set's statistics");
    CHECK(c, differ >= 5, "the two sets' columns differ (%d of %d tensors checked)", differ,
          (T + 36) / 37);
    /* ρ of every tensor from the set's own router statistics */
    int rho_ok = rc == 0;
    double layer_sum = 0;
    for (int ti = 0; rho_ok && ti < T; ti++) {
        const sens_tensor *t = &r.t[ti];
        double rho = r.route_share[(size_t)T + ti], want = 1.0;
        if (t->expert >= 0) {
            const stat_router *rt = stat_router_get(acc[1], t->layer);
            want = fx_to_f64(&rt->sum_weight[t->expert]) / (double)rt->tokens;
            if (t->layer == 1 && t->proj == SENS_P_EXP_UP)
                layer_sum += rho;
        }
        rho_ok &= rho == want;
    }
    CHECK(c, rho_ok, "route_share = Σ selected routing weight / tokens (experts), 1 otherwise");
    CHECK(c, layer_sum > 0.3 && layer_sum <= 1 + 1e-9,
          "layer 1: Σ over experts of ρ = mean selected weight per token (%.4f)", layer_sum);
    sens_result_free(&r);
    stat_free(acc[0]);
    stat_free(acc[1]);
}

/* Routing-aware split of a group α among experts: a synthetic layer where the set routes 90%
 * of its tokens to expert A and 1% to expert B at the same mean weight 0.5; everything else
 * equal. The split follows the routing, 90 : 1, in both forms of the prediction (it was 1 : 1,
 * per routed token). */
static void test_route_split(chk *c)
{
    sens_tensor t[2] = {{0, "model.layers.0.mlp.experts.0.up_proj.weight", 0, 0, SENS_P_EXP_UP,
                         4, 4, 16, 0},
                        {1, "model.layers.0.mlp.experts.1.up_proj.weight", 0, 1, SENS_P_EXP_UP,
                         4, 4, 16, 0}};
    double a0[1] = {2.0}, rel[2] = {0.1, 0.1}, wn[2] = {3, 3}, oe[2] = {5, 5}, ne[2] = {7, 7};
    double rho[2] = {0.90 * 0.5, 0.01 * 0.5};
    sens_result r;
    memset(&r, 0, sizeof r);
    r.n_tensors = 2;
    r.t = t;
    r.n_units = r.n_sets = r.n_formats = 1;
    r.alpha[0] = a0;
    r.rel_w = r.rel_out = rel;
    r.w_norm2 = wn;
    r.out_energy = oe;
    r.noise_energy = ne;
    r.route_share = rho;
    for (int k = 0; k < 2; k++) {
        sens_err_kind kind = k ? SENS_E_OUT : SENS_E_REL;
        double da = sens_tensor_dist(&r, 0, 0, 0, kind), db = sens_tensor_dist(&r, 0, 1, 0, kind);
        CHECK(c, fabs(da / db - 90) <= 1e-9, "%s: expert with 90%% of the tokens takes 90× the "
              "share of the one with 1%% (%.12g)", k ? "output form" : "weight form", da / db);
    }
    CHECK_NEAR(c, sens_tensor_dist(&r, 0, 0, 0, SENS_E_REL) + sens_tensor_dist(&r, 0, 1, 0,
               SENS_E_REL), 2.0 * 0.1, 0, 1e-12, "the shares sum to the unit's α·e");
    r.route_share = NULL; /* without routing: per routed token, equal */
    CHECK_NEAR(c, sens_tensor_dist(&r, 0, 0, 0, SENS_E_OUT) / sens_tensor_dist(&r, 0, 1, 0,
               SENS_E_OUT), 1, 0, 1e-12, "without ρ the two experts weigh the same");
}

/* One name rule for the projection class (sens_proj_of_name): every architecture's spelling,
 * and the layout of the Mixtral fixture (w1/w3/w2 experts) holds its routed experts: 2 layers ×
 * (4 attention + 4 experts × 3) tensors, 2 × (4 + 3) group units. */
static void test_proj_names(chk *c)
{
    static const struct {
        const char *name;
        int proj, layer, expert;
    } k[] = {
        {"model.layers.3.self_attn.k_proj.weight", SENS_P_K, 3, -1},
        {"model.layers.0.self_attn.kv_a_proj_with_mqa.weight", SENS_P_KVA, 0, -1},
        {"model.layers.12.mlp.experts.7.up_proj.weight", SENS_P_EXP_UP, 12, 7},
        {"model.layers.1.block_sparse_moe.experts.2.w2.weight", SENS_P_EXP_DOWN, 1, 2},
        {"model.layers.4.mlp.shared_expert.gate_proj.weight", SENS_P_SH_GATE, 4, -1},
        {"model.layers.1.ffn.shared_experts.w3.weight", SENS_P_SH_UP, 1, -1},
        {"model.layers.0.mlp.down_proj.weight", SENS_P_MLP_DOWN, 0, -1},
        {"model.layers.2.attn.wo_b.weight", SENS_P_WO_B, 2, -1},
        {"model.layers.5.mlp.experts.*.down_proj.weight", SENS_P_EXP_DOWN, 5, -1},
        {"model.layers.3.mlp.shared_expert_gate.weight", -1, 0, 0},
        {"model.layers.3.mlp.gate.weight", -1, 0, 0},
        {"model.layers.2.attn.compressor.wkv.weight", -1, 0, 0},
        {"model.embed_tokens.weight", -1, 0, 0},
    };
    for (size_t i = 0; i < sizeof k / sizeof *k; i++) {
        int l = -9, e = -9, p = sens_proj_of_name(k[i].name, &l, &e);
        CHECK(c, p == k[i].proj && (p < 0 || (l == k[i].layer && e == k[i].expert)),
              "%s → class %d layer %d expert %d", k[i].name, p, l, e);
    }
    model *m = NULL;
    vl_err e;
    sens_result r = {0};
    if (CHECK(c, model_open(&m, "tests/fixtures/mixtral", &e) == 0, "mixtral fixture") &&
        CHECK(c, sens_layout(&r, m, SENS_GROUP, 0, &e) == 0, "mixtral layout")) {
        CI(c, r.n_tensors, 2 * (4 + 4 * 3));
        CI(c, r.n_units, 2 * (4 + 3));
    }
    sens_result_free(&r);
    model_close(m);
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
    test_bootstrap(&c);
    test_route_split(&c);
    test_proj_names(&c);
    test_sequences(&c, m);
    test_rd_per_set(&c, m);

    sens_result r = {0};
    CI(&c, sens_layout(&r, m, SENS_GROUP, 0, &e), 0);
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
