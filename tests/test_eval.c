/* tests/test_eval.c — applying an allocation (alloc/qbind) and the KLD evaluation
 * (analysis/eval) on the embedded model: self-KLD exactly 0, 8-bit vs 2-bit RTN, determinism,
 * pointer identity of unlisted tensors, GPTQ from real statistics, storage, error messages. */
#define _POSIX_C_SOURCE 200809L
#include "../analysis/calib.h"
#include "../analysis/eval.h"
#include "../alloc/qbind.h"
#include "../analysis/spass.h"
#include "check.h"
#include "testmodel.h"

#include <gsl/gsl_errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MODEL "models/vbrlab-moe-tiny"

/* A small en corpus: the first documents of en.eval.txt (up to ~40 kB, whole documents), so
 * tokenizing stays fast under ASan. Returns the path (static) or NULL. */
static const char *small_corpus(void)
{
    static char path[64];
    FILE *in = fopen("data/corpus/en.eval.txt", "rb");
    if (!in)
        return NULL;
    snprintf(path, sizeof path, "/tmp/vbrlab-test-eval-%ld.txt", (long)getpid());
    FILE *out = fopen(path, "wb");
    char line[8192];
    size_t bytes = 0;
    while (out && fgets(line, sizeof line, in)) {
        if (!strcmp(line, "\x1e\n") && bytes > 40000)
            break;
        fputs(line, out);
        bytes += strlen(line);
    }
    fclose(in);
    if (!out || fclose(out))
        return NULL;
    return path;
}

typedef struct {
    model *m;
    tok_tokenizer *tok;
    calib_book *book;
    const calib_set *en;
    ev_runner *run;
} fix;

static double run_alloc(chk *c, fix *f, const qb_alloc *al, const stat_acc *st, ev_result *res,
                        qb_binding **keep, const char *label)
{
    vl_err e = {0};
    qb_binding *b = NULL;
    /* plain min/max grids (no clip search): 20× faster binding, which keeps this test a few
     * seconds under ASan; the clip search has its own tests (test_quant) */
    qb_params p = qb_defaults();
    p.fq.rtn.clip_steps = 1;
    int rc = qb_bind(&b, f->m, al, st, &p, label, &e);
    CHECK(c, rc == 0, "%s: qb_bind: %s", label, e.msg);
    if (rc)
        return NAN;
    rc = ev_run(f->run, qb_weights(b), f->en->ids, f->en->n_seq, f->en->seq_len, res, NULL, &e);
    CHECK(c, rc == 0, "%s: ev_run: %s", label, e.msg);
    if (keep)
        *keep = b;
    else
        qb_free(b);
    return rc ? NAN : res->sum.kld_mean;
}

static void test_self(chk *c, fix *f)
{
    qb_alloc empty;
    qb_alloc_init(&empty);
    ev_result r;
    ev_result_init(&r);
    qb_binding *b = NULL;
    run_alloc(c, f, &empty, NULL, &r, &b, "self");
    size_t n = (size_t)f->en->n_seq * (f->en->seq_len - 1);
    CHECK_INT(c, (long)r.acc.n, (long)n, "self: tokens = seqs × (len − 1)");
    size_t nonzero = 0, notsame = 0;
    for (size_t i = 0; i < r.acc.n; i++) {
        nonzero += r.acc.kld[i] != 0.0 || r.acc.dp[i] != 0.0 || r.acc.nll_q[i] != r.acc.nll_ref[i];
        notsame += !r.acc.same[i];
    }
    CHECK_INT(c, (long)nonzero, 0, "self: tokens with KLD, Δp or Δnll != 0");
    CHECK_INT(c, (long)notsame, 0, "self: tokens with a different top-1");
    CHECK(c, r.sum.kld_mean == 0.0 && r.sum.kld_max == 0.0, "self: mean %g max %g == 0",
          r.sum.kld_mean, r.sum.kld_max);
    CHECK(c, r.sum.same_top == 1.0, "self: same top %g == 1", r.sum.same_top);
    CHECK(c, r.sum.ppl_q == r.sum.ppl_ref && r.sum.ln_ppl_ratio == 0.0,
          "self: PPL ratio exactly 1 (%.17g / %.17g)", r.sum.ppl_q, r.sum.ppl_ref);
    CHECK(c, r.sum.ppl_ref > 1.0 && r.sum.ppl_ref < 16384.0, "self: PPL ref %g in (1, V)",
          r.sum.ppl_ref);
    /* an empty allocation binds every tensor to the base weights */
    model_weights *base = (model_weights *)model_base(f->m);
    model_weights *w = (model_weights *)qb_weights(b);
    size_t same = 0, nt = model_tensor_count(f->m);
    for (size_t i = 0; i < nt; i++)
        same += *model_weights_slot(f->m, w, i) == *model_weights_slot(f->m, base, i);
    CHECK_INT(c, (long)same, (long)nt, "self: every slot pointer-identical to the base");
    CHECK_INT(c, qb_get_info(b).n_tensors, 0, "self: nothing quantized");
    qb_free(b);
    ev_result_deinit(&r);
}

static void test_uniform(chk *c, fix *f)
{
    vl_err e = {0};
    qb_alloc a8, a2;
    qb_alloc_init(&a8);
    qb_alloc_init(&a2);
    CHECK(c, qb_alloc_uniform(&a8, f->m, "rtn-b8-g64-asym", &e) == 0, "uniform 8: %s", e.msg);
    CHECK(c, qb_alloc_uniform(&a2, f->m, "rtn-b2-g64-asym", &e) == 0, "uniform 2: %s", e.msg);
    /* 6 layers × (4 attention + 16 experts × 3 + 3 shared) matrices */
    CHECK_INT(c, a8.n, 6 * (4 + 16 * 3 + 3), "uniform: quantizable matrices");

    ev_result r8, r2, r2b;
    ev_result_init(&r8);
    ev_result_init(&r2);
    ev_result_init(&r2b);
    qb_binding *b2 = NULL;
    double k8 = run_alloc(c, f, &a8, NULL, &r8, NULL, "rtn-b8");
    double k2 = run_alloc(c, f, &a2, NULL, &r2, &b2, "rtn-b2");
    printf("# mean KLD: 8-bit %.3g, 2-bit %.3g (ratio %.0f); same top %.1f%% / %.1f%%\n", k8, k2,
           k2 / k8, 100 * r8.sum.same_top, 100 * r2.sum.same_top);
    CHECK(c, k8 > 0.0 && k8 < 1e-3, "8-bit mean KLD %g in (0, 1e-3)", k8);
    CHECK(c, k2 >= 100.0 * k8, "2-bit mean KLD %g >= 100 × 8-bit %g", k2, k8);
    CHECK(c, r2.sum.ppl_q > r2.sum.ppl_ref, "2-bit PPL %g > reference %g", r2.sum.ppl_q,
          r2.sum.ppl_ref);
    CHECK(c, r8.sum.ppl_ref == r2.sum.ppl_ref, "the reference does not depend on the binding");
    CHECK(c, r2.sum.kld_median <= r2.sum.kld_p90 && r2.sum.kld_p90 <= r2.sum.kld_p99 &&
                 r2.sum.kld_p99 <= r2.sum.kld_max,
          "percentiles ordered");

    /* determinism: a second binding of the same allocation gives identical tokens */
    run_alloc(c, f, &a2, NULL, &r2b, NULL, "rtn-b2 again");
    int ident = r2.acc.n == r2b.acc.n &&
                !memcmp(r2.acc.kld, r2b.acc.kld, r2.acc.n * sizeof(double)) &&
                !memcmp(r2.acc.dp, r2b.acc.dp, r2.acc.n * sizeof(double)) &&
                !memcmp(r2.acc.same, r2b.acc.same, r2.acc.n) &&
                !memcmp(r2.entropy_ref, r2b.entropy_ref, r2.acc.n * sizeof(double));
    CHECK(c, ident, "same allocation twice: identical per-token arrays");

    /* the kept reference (runs after the first on these ids reuse it) gives the bits of a
     * reference recomputed by a runner that keeps nothing */
    ev_runner *fresh = NULL;
    ev_result r2c;
    ev_result_init(&r2c);
    vl_err fe = {0};
    int frc = ev_runner_new(&fresh, f->m, 2, 64, &fe);
    if (!frc) {
        ev_runner_set_ref_budget(fresh, 0);
        frc = ev_run(fresh, qb_weights(b2), f->en->ids, f->en->n_seq, f->en->seq_len, &r2c,
                     NULL, &fe);
    }
    CHECK(c, frc == 0, "recomputing runner: %s", fe.msg);
    ident = !frc && r2.acc.n == r2c.acc.n &&
            !memcmp(r2b.acc.kld, r2c.acc.kld, r2.acc.n * sizeof(double)) &&
            !memcmp(r2b.acc.nll_ref, r2c.acc.nll_ref, r2.acc.n * sizeof(double)) &&
            !memcmp(r2b.entropy_ref, r2c.entropy_ref, r2.acc.n * sizeof(double));
    CHECK(c, ident, "kept reference = recomputed reference, bit for bit");
    ev_result_deinit(&r2c);
    ev_runner_free(fresh);

    /* the binding changed exactly the listed tensors */
    model_weights *base = (model_weights *)model_base(f->m);
    model_weights *w = (model_weights *)qb_weights(b2);
    size_t bad = 0, listed = 0;
    for (size_t i = 0; i < model_tensor_count(f->m); i++) {
        const model_tensor *t = model_tensor_at(f->m, i);
        const float *q = *model_weights_slot(f->m, w, i), *o = *model_weights_slot(f->m, base, i);
        const qfmt *fmt = qb_tensor_format(b2, i);
        int in_alloc = 0;
        for (int k = 0; k < a2.n; k++)
            in_alloc |= !strcmp(a2.v[k].item, t->name);
        listed += in_alloc;
        if (in_alloc != (q != o) || in_alloc != (fmt != NULL)) {
            bad++;
        } else if (in_alloc) { /* 2 bits must change the values (o: the stored weights) */
            float *ref = tm_weights(f->m, base, i);
            bad += !ref || !memcmp(q, ref, (size_t)t->numel * sizeof *q);
            free(ref);
        }
    }
    CHECK_INT(c, (long)listed, a2.n, "listed tensors");
    CHECK_INT(c, (long)bad, 0, "tensors whose binding does not match the allocation");
    qb_info in = qb_get_info(b2);
    CHECK_INT(c, in.n_tensors, a2.n, "info: tensors quantized");
    /* rtn-b2-g64-asym: 2 + (16 + 2)/64 bits per weight */
    CHECK_NEAR(c, in.bpw, 2.0 + 18.0 / 64.0, 0, 1e-12, "info: bpw");

    /* storage: per-token arrays and the matrix */
    h5s_store *s = NULL;
    char path[64];
    snprintf(path, sizeof path, "/tmp/vbrlab-test-eval-%ld.h5", (long)getpid());
    int rc = h5s_create(&s, path, &e);
    if (!rc)
        rc = ev_write_domain(s, f->en, &r2, &e);
    if (!rc)
        rc = ev_write_result(s, "rtn-b2", "en", &r2, &e);
    const char *an[] = {"rtn-b8", "rtn-b2"}, *dn[] = {"en"};
    kld_summary sums[2] = {r8.sum, r2.sum};
    ev_matrix mx = {2, 1, an, dn, sums, 0};
    if (!rc)
        rc = ev_write_matrix(s, &mx, &e);
    CHECK(c, rc == 0, "write: %s", e.msg);
    double *kld = NULL, *mean = NULL, attr = 0;
    int nd = 0;
    int64_t sh[H5S_MAX_DIMS];
    if (!rc) {
        rc = h5s_read(s, "/eval/rtn-b2/en/kld", H5S_F64, (void **)&kld, &nd, sh, &e);
        CHECK(c, rc == 0 && nd == 2 && sh[0] == f->en->n_seq && sh[1] == f->en->seq_len - 1 &&
                     !memcmp(kld, r2.acc.kld, r2.acc.n * sizeof *kld),
              "read back per-token KLD [seqs, len-1]");
        rc = h5s_read(s, "/eval/matrix/mean_kld", H5S_F64, (void **)&mean, &nd, sh, &e);
        CHECK(c, rc == 0 && nd == 2 && sh[0] == 2 && sh[1] == 1 && mean[0] == k8 &&
                     mean[1] == k2,
              "matrix mean_kld [2, 1] = row values");
        rc = h5s_attr_get_f64(s, "/eval/rtn-b2/en", "kld_mean", &attr, &e);
        CHECK(c, rc == 0 && attr == k2, "summary attribute kld_mean");
        char *rows = NULL;
        rc = h5s_attr_get(s, "/eval/matrix", "rows", &rows, &e);
        CHECK(c, rc == 0 && rows && !strcmp(rows, "rtn-b8\nrtn-b2"), "matrix rows attribute");
        vl_free(rows);
    }
    vl_free(kld);
    vl_free(mean);
    h5s_close(s); /* discards the temporary */

    qb_free(b2);
    ev_result_deinit(&r8);
    ev_result_deinit(&r2);
    ev_result_deinit(&r2b);
    qb_alloc_deinit(&a8);
    qb_alloc_deinit(&a2);
}

/* GPTQ on layer 0's attention with the XᵀX of a small calibration set run through the model. */
static void test_gptq(chk *c, fix *f)
{
    vl_err e = {0};
    spass_opts o = spass_opts_defaults();
    o.batch = 2;
    o.max_len = 64;
    o.hessian = "model\\.layers\\.0\\.self_attn";
    spass *sp = NULL;
    stat_acc *st = NULL;
    calib_spec cs;
    int rc = calib_spec_parse("cal=data/corpus/zh-classical.calib.txt,seqs=2,len=64", &cs, &e);
    if (!rc)
        rc = calib_book_add(f->book, &cs, &e);
    const calib_set *cal = calib_book_find(f->book, "cal");
    if (!rc)
        rc = spass_new(&sp, f->m, &o, &e);
    if (!rc)
        rc = spass_acc_new(sp, 128, &st, &e);
    if (!rc)
        rc = spass_run(sp, st, cal->ids, cal->n_seq, cal->seq_len, "cal", &e);
    CHECK(c, rc == 0, "statistics pass: %s", e.msg);
    if (rc)
        goto done;
    qb_alloc a;
    qb_alloc_init(&a);
    rc = qb_alloc_add(&a, "model.layers.0.self_attn.*_proj.weight", "gptq-b3-g64-asym", &e);
    CHECK(c, rc == 0, "glob item: %s", e.msg);
    ev_result r;
    ev_result_init(&r);
    qb_binding *b = NULL;
    double k = run_alloc(c, f, &a, st, &r, &b, "gptq");
    if (b) {
        qb_info in = qb_get_info(b);
        CHECK_INT(c, in.n_tensors, 4, "gptq: q, k, v, o of layer 0");
        CHECK_INT(c, in.n_gptq, 4, "gptq: GPTQ ran on all four");
        CHECK(c, k > 0 && isfinite(k), "gptq: mean KLD %g finite and > 0", k);
    }
    qb_free(b);
    /* without XᵀX for the input GPTQ is refused, naming the tensor */
    qb_alloc_deinit(&a);
    qb_alloc_add(&a, "model.layers.1.self_attn.o_proj.weight", "gptq-b3-g64-asym", &e);
    rc = qb_bind(&b, f->m, &a, st, NULL, "g1", &e);
    CHECK(c, rc == VL_EARG, "gptq without XᵀX: VL_EARG (%d)", rc);
    CHECK_HAS(c, e.msg, "model.layers.1.self_attn.o_proj.weight", "gptq without XᵀX: message");
    qb_free(b);
    qb_alloc_deinit(&a);
    ev_result_deinit(&r);
done:
    stat_free(st);
    spass_free(sp);
}

/* Scoring the second half of each window (llama-perplexity's rule: positions len/2 .. len−2,
 * len − 1 − len/2 tokens per window): the scored tokens are exactly the full run's tokens at
 * those positions, bit for bit, for an even and an odd window; the store holds them as
 * [seqs, len − 1 − len/2] with first_position; the summary attributes read back. */
static void test_second_half(chk *c, fix *f)
{
    vl_err e = {0};
    qb_alloc a2;
    qb_alloc_init(&a2);
    CHECK(c, qb_alloc_uniform(&a2, f->m, "rtn-b2-g64-asym", &e) == 0, "uniform 2: %s", e.msg);
    qb_binding *b = NULL;
    qb_params p = qb_defaults();
    p.fq.rtn.clip_steps = 1;
    int rc = qb_bind(&b, f->m, &a2, NULL, &p, "half", &e);
    CHECK(c, rc == 0, "bind: %s", e.msg);
    int n_seq = f->en->n_seq;
    for (int pass = 0; !rc && pass < 2; pass++) {
        int len = pass ? 7 : f->en->seq_len; /* 64 (even) and 7 (odd) */
        int32_t *ids = vl_malloc((size_t)n_seq * len * sizeof *ids);
        for (int s = 0; ids && s < n_seq; s++)
            memcpy(ids + (size_t)s * len, f->en->ids + (size_t)s * f->en->seq_len,
                   (size_t)len * sizeof *ids);
        ev_result all, half;
        ev_result_init(&all);
        ev_result_init(&half);
        ev_runner_set_second_half(f->run, 0);
        rc = ev_run(f->run, qb_weights(b), ids, n_seq, len, &all, NULL, &e);
        ev_runner_set_second_half(f->run, 1);
        if (!rc)
            rc = ev_run(f->run, qb_weights(b), ids, n_seq, len, &half, NULL, &e);
        ev_runner_set_second_half(f->run, 0);
        CHECK(c, rc == 0, "len %d: runs: %s", len, e.msg);
        int first = len / 2, m = len - 1 - len / 2; /* llama: first = n_ctx/2, n_ctx−1−first */
        CHECK(c, half.first == first, "len %d: first scored position %d", len, half.first);
        CHECK(c, half.acc.n == (size_t)n_seq * m, "len %d: %zu tokens scored", len, half.acc.n);
        size_t bad = 0;
        for (int s = 0; !rc && s < n_seq; s++)
            for (int t = 0; t < m; t++) {
                size_t i = (size_t)s * m + t, j = (size_t)s * (len - 1) + first + t;
                bad += half.acc.kld[i] != all.acc.kld[j] || half.acc.dp[i] != all.acc.dp[j] ||
                       half.acc.nll_q[i] != all.acc.nll_q[j] ||
                       half.entropy_ref[i] != all.entropy_ref[j];
            }
        CHECK(c, bad == 0, "len %d: scored tokens = the full run's positions %d..%d", len,
              first, len - 2);
        double mean = 0;
        for (size_t i = 0; i < half.acc.n; i++)
            mean += half.acc.kld[i];
        CHECK(c, fabs(half.sum.kld_mean - mean / (double)half.acc.n) <= 1e-12 * mean,
              "len %d: summary over the scored tokens only", len);
        if (pass == 0 && !rc) {
            h5s_store *st = NULL;
            char path[64];
            snprintf(path, sizeof path, "/tmp/vbrlab-test-eval-half-%ld.h5", (long)getpid());
            rc = h5s_create(&st, path, &e);
            if (!rc)
                rc = ev_write_result(st, "half", "en", &half, &e);
            double *kld = NULL, fp = 0;
            int nd = 0;
            int64_t sh[H5S_MAX_DIMS];
            if (!rc)
                rc = h5s_read(st, "/eval/half/en/kld", H5S_F64, (void **)&kld, &nd, sh, &e);
            if (!rc)
                rc = h5s_attr_get_f64(st, "/eval/half/en", "first_position", &fp, &e);
            CHECK(c, rc == 0 && nd == 2 && sh[0] == n_seq && sh[1] == m && fp == first &&
                         !memcmp(kld, half.acc.kld, half.acc.n * sizeof *kld),
                  "stored [seqs, len-1-len/2] with first_position: %s", e.msg);
            kld_summary back;
            if (!rc)
                rc = ev_read_summary(st, "half", "en", &back, &e);
            CHECK(c, rc == 0 && !memcmp(&back, &half.sum, sizeof back),
                  "ev_read_summary returns the written summary bit for bit: %s", e.msg);
            vl_free(kld);
            h5s_close(st);
        }
        ev_result_deinit(&all);
        ev_result_deinit(&half);
        vl_free(ids);
    }
    /* a 2-token window has no second-half token */
    ev_result r;
    ev_result_init(&r);
    ev_runner_set_second_half(f->run, 1);
    rc = ev_run(f->run, qb_weights(b), f->en->ids, 1, 2, &r, NULL, &e);
    ev_runner_set_second_half(f->run, 0);
    CHECK(c, rc == VL_EARG, "second half of a 2-token window: VL_EARG (%d)", rc);
    CHECK_HAS(c, e.msg, "len ≥ 3", "second half of a 2-token window: message");
    ev_result_deinit(&r);
    qb_free(b);
    qb_alloc_deinit(&a2);
}

static void test_input_map(chk *c, fix *f)
{
    static const struct {
        const char *name;
        int layer, slot, expert;
    } cases[] = {
        {"model.layers.0.self_attn.q_proj.weight", 0, STAT_ATTN_IN, 0},
        {"model.layers.2.self_attn.o_proj.weight", 2, STAT_O_IN, 0},
        {"model.layers.3.mlp.experts.7.up_proj.weight", 3, STAT_EXPERT_IN, 7},
        {"model.layers.5.mlp.experts.15.down_proj.weight", 5, STAT_EXPERT_DOWN, 15},
        {"model.layers.1.mlp.shared_expert.down_proj.weight", 1, STAT_SHARED_DOWN, 0},
        {"model.layers.1.mlp.shared_expert.gate_proj.weight", 1, STAT_MLP_IN, 0},
        {"model.layers.4.mlp.gate.weight", 4, STAT_MLP_IN, 0},
        {"model.embed_tokens.weight", -1, -1, -1},
        {"model.layers.0.input_layernorm.weight", -1, -1, -1},
        {"model.layers.0.self_attn.q_proj.bias", -1, -1, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        long ti = model_tensor_find(f->m, cases[i].name);
        CHECK(c, ti >= 0, "tensor %s exists", cases[i].name);
        if (ti < 0)
            continue;
        int layer = -1, expert = -1;
        stat_slot slot = STAT_SLOT_COUNT;
        int rc = qb_tensor_input(model_tensor_at(f->m, (size_t)ti), &layer, &slot, &expert);
        if (cases[i].layer < 0)
            CHECK(c, rc == VL_ENOTFOUND, "%s: no statistics input", cases[i].name);
        else
            CHECK(c, rc == 0 && layer == cases[i].layer && (int)slot == cases[i].slot &&
                         expert == cases[i].expert,
                  "%s → layer %d slot %d expert %d (got %d %d %d)", cases[i].name,
                  cases[i].layer, cases[i].slot, cases[i].expert, layer, (int)slot, expert);
    }
}

static void test_errors(chk *c, fix *f)
{
    vl_err e = {0};
    qb_alloc a;
    qb_alloc_init(&a);
    int rc = qb_alloc_add(&a, "model.layers.0.self_attn.q_proj.weight", "rtn-b9-g64-asym", &e);
    CHECK(c, rc == VL_ECONFIG && !strchr(e.msg, '\n'), "bad format: VL_ECONFIG, one line");
    CHECK_HAS(c, e.msg, "model.layers.0.self_attn.q_proj.weight", "bad format names the item");

    qb_alloc_add(&a, "model.layers.0.self_attn.q_proj.wieght", "rtn-b4-g64-asym", &e);
    qb_binding *b = NULL;
    rc = qb_bind(&b, f->m, &a, NULL, NULL, "typo", &e);
    CHECK(c, rc == VL_ENOTFOUND && b == NULL, "unknown tensor: VL_ENOTFOUND");
    CHECK_HAS(c, e.msg, "allocation typo: no tensor \"model.layers.0.self_attn.q_proj.wieght\"",
              "unknown tensor message");
    qb_alloc_deinit(&a);

    qb_alloc_add(&a, "model.layers.0.mlp.experts.*.up_proj.weight", "rtn-b4-g64-asym", &e);
    qb_alloc_add(&a, "model.layers.0.mlp.experts.3.up_proj.weight", "rtn-b3-g64-asym", &e);
    rc = qb_alloc_check(f->m, &a, 0, "dup", &e);
    CHECK(c, rc == VL_EARG, "tensor in two items: VL_EARG");
    CHECK_HAS(c, e.msg, "listed twice", "tensor in two items message");
    qb_alloc_deinit(&a);

    qb_alloc_add(&a, "model.norm.weight", "rtn-b4-g64-asym", &e);
    rc = qb_alloc_check(f->m, &a, 0, "vec", &e);
    CHECK(c, rc == VL_EARG, "vector item: VL_EARG");
    CHECK_HAS(c, e.msg, "not a quantizable matrix", "vector item message");
    qb_alloc_deinit(&a);

    qb_alloc_add(&a, "model.layers.0.self_attn.q_proj.weight", "gptq-b4-g64-asym", &e);
    rc = qb_alloc_check(f->m, &a, 0, "g", &e);
    CHECK(c, rc == VL_EARG, "GPTQ without statistics: VL_EARG");
    CHECK_HAS(c, e.msg, "needs calibration statistics", "GPTQ without statistics message");
    qb_alloc_deinit(&a);

    /* text allocation files */
    char path[64];
    snprintf(path, sizeof path, "/tmp/vbrlab-test-alloc-%ld.txt", (long)getpid());
    FILE *fp = fopen(path, "w");
    fputs("# comment\n\nmodel.layers.0.self_attn.q_proj.weight rtn-b4-g64-asym 4.3 0.1\n"
          "model.layers.0.self_attn.k_proj.weight rtn-b4-g64-asm\n",
          fp);
    fclose(fp);
    rc = qb_alloc_read_text(&a, path, &e);
    CHECK(c, rc == VL_ECONFIG, "text alloc bad format: VL_ECONFIG (%d)", rc);
    char want[96];
    snprintf(want, sizeof want, "%s:4: item", path);
    CHECK_HAS(c, e.msg, want, "text alloc error names FILE:LINE");
    CHECK(c, a.n == 1 && !strcmp(a.v[0].item, "model.layers.0.self_attn.q_proj.weight") &&
                 a.v[0].fmt.bits == 4,
          "text alloc: the good line was read (extra fields ignored)");
    qb_alloc_deinit(&a);
    fp = fopen(path, "w");
    fputs("model.layers.0.self_attn.q_proj.weight\n", fp);
    fclose(fp);
    rc = qb_alloc_read_text(&a, path, &e);
    CHECK(c, rc == VL_EFORMAT, "text alloc line without format: VL_EFORMAT");
    CHECK_HAS(c, e.msg, "has no format", "text alloc missing format message");
    qb_alloc_deinit(&a);
    remove(path);
    rc = qb_alloc_read_text(&a, path, &e);
    CHECK(c, rc == VL_ENOTFOUND, "missing text alloc: VL_ENOTFOUND");

    /* domain specs */
    calib_spec sp;
    rc = ev_domain_parse("en=data/corpus/en.eval.txt", &sp, &e);
    CHECK(c, rc == 0 && sp.n_seq == EV_DEFAULT_SEQS && sp.seq_len == EV_DEFAULT_LEN,
          "domain defaults %d × %d", sp.n_seq, sp.seq_len);
    rc = ev_domain_parse("en=data/corpus/en.eval.txt,seqs=3,len=17,seed=9", &sp, &e);
    CHECK(c, rc == 0 && sp.n_seq == 3 && sp.seq_len == 17 && sp.seed == 9, "domain options");
    rc = ev_domain_parse("en=data/x.txt,lenn=3", &sp, &e);
    CHECK(c, rc == VL_EARG && !strchr(e.msg, '\n'), "bad domain option: VL_EARG one line");
    CHECK(c, calib_name_ok("rtn-b2-g64-asym") && calib_name_ok("min+max_2.5") && !calib_name_ok("a/b") &&
                 !calib_name_ok("") && !calib_name_ok(".."),
          "calib_name_ok");
}

/* Layer-major evaluation (ev_runner_set_layer_major, qb_bind_lazy + qb_provide) against the
 * batch-major one on model M: 3 sequences of 24 tokens in batches of 2, the reference kept in
 * memory and in the spill file (1-byte cap), twice on one runner (the second reuses the kept
 * reference): every per-token array equal bit for bit, the binding facts equal. */
static void layer_major_on(chk *c, model *m, const char *label)
{
    enum { S = 3, T = 24 };
    int V = model_config(m)->vocab;
    int32_t ids[S * T];
    for (int i = 0; i < S * T; i++)
        ids[i] = (int32_t)((i * 7919 + 13) % V);
    vl_err e = {0};
    qb_alloc al;
    qb_alloc_init(&al);
    qb_params p = qb_defaults();
    p.fq.rtn.clip_steps = 1;
    qb_binding *be = NULL, *bl = NULL;
    ev_runner *rb = NULL, *rl = NULL;
    ev_result a, b;
    ev_result_init(&a);
    ev_result_init(&b);
    int rc = qb_alloc_uniform(&al, m, "rtn-b3-g32-asym", &e) ||
             qb_bind(&be, m, &al, NULL, &p, "eager", &e) ||
             qb_bind_lazy(&bl, m, &al, NULL, &p, "lazy", &e) ||
             ev_runner_new(&rb, m, 2, T, &e) || ev_runner_new(&rl, m, 2, T, &e) ||
             ev_run(rb, qb_weights(be), ids, S, T, &a, NULL, &e);
    CHECK(c, rc == 0, "%s: setup: %s", label, rc ? e.msg : "");
    qb_info ie = rc ? (qb_info){0} : qb_get_info(be), il = rc ? (qb_info){0} : qb_get_info(bl);
    CHECK(c, rc == 0 && ie.n_tensors == il.n_tensors && ie.bits == il.bits && ie.bpw == il.bpw,
          "%s: lazy binding: the same facts (%d tensors, %.4f bpw)", label, il.n_tensors,
          il.bpw);
    for (int k = 0; !rc && k < 3; k++) {
        ev_runner_set_layer_major(rl, 1, k == 1 ? 1 : 0);
        if (k == 1) { /* a fresh runner: the reference made again, spilled this time */
            ev_runner_free(rl);
            rl = NULL;
            if ((rc = ev_runner_new(&rl, m, 2, T, &e)))
                break;
            ev_runner_set_layer_major(rl, 1, 1);
        }
        rc = ev_run_ext(rl, qb_weights(bl), qb_provide, bl, ids, S, T, &b, NULL, &e);
        size_t n = a.acc.n;
        CHECK(c, rc == 0 && b.acc.n == n && !memcmp(a.acc.kld, b.acc.kld, n * 8) &&
                     !memcmp(a.acc.dp, b.acc.dp, n * 8) &&
                     !memcmp(a.acc.nll_q, b.acc.nll_q, n * 8) &&
                     !memcmp(a.acc.nll_ref, b.acc.nll_ref, n * 8) &&
                     !memcmp(a.acc.same, b.acc.same, n) &&
                     !memcmp(a.entropy_ref, b.entropy_ref, n * 8) && a.sum.kld_mean > 0 &&
                     a.sum.kld_mean == b.sum.kld_mean,
              "%s: layer-major (%s) = batch-major bit for bit (%zu tokens, mean KLD %.4g)%s%s",
              label, k == 0 ? "reference in memory" : k == 1 ? "reference spilled" :
                                                                "reference reused",
              n, a.sum.kld_mean, rc ? ": " : "", rc ? e.msg : "");
    }
    ev_result_deinit(&a);
    ev_result_deinit(&b);
    ev_runner_free(rb);
    ev_runner_free(rl);
    qb_free(be);
    qb_free(bl);
    qb_alloc_deinit(&al);
}

static void test_layer_major(chk *c, fix *f)
{
    layer_major_on(c, f->m, "embedded model");
    model *m = NULL;
    vl_err e;
    if (model_open(&m, "tests/fixtures/tiny-deepseek-v3", &e)) {
        CHECK(c, 0, "tiny-deepseek-v3: %s", e.msg);
        return;
    }
    layer_major_on(c, m, "tiny-deepseek-v3");
    model_close(m);
}

int main(void)
{
    gsl_set_error_handler_off();
    chk c;
    chk_init(&c, "eval");
    fix f;
    memset(&f, 0, sizeof f);
    vl_err e = {0};
    const char *corpus = small_corpus();
    CHECK(&c, corpus != NULL, "small corpus written");
    char spec[128];
    snprintf(spec, sizeof spec, "en=%s,seqs=2,len=64,seed=3", corpus ? corpus : "?");
    calib_spec cs;
    int rc = model_open(&f.m, MODEL, &e);
    if (!rc)
        rc = tok_open(MODEL, &f.tok, &e);
    calib_env env = {f.m, f.tok, 2, CALIB_ROLE_EVAL};
    if (!rc)
        rc = calib_book_new(&f.book, &env, &e);
    if (!rc)
        rc = ev_domain_parse(spec, &cs, &e);
    if (!rc)
        rc = calib_book_add(f.book, &cs, &e);
    if (!rc)
        rc = ev_runner_new(&f.run, f.m, 2, 64, &e);
    CHECK(&c, rc == 0, "setup: %s", e.msg);
    if (!rc) {
        f.en = calib_book_find(f.book, "en");
        test_self(&c, &f);
        test_uniform(&c, &f);
        test_gptq(&c, &f);
        test_second_half(&c, &f);
        test_input_map(&c, &f);
        test_errors(&c, &f);
        test_layer_major(&c, &f);
    }
    if (corpus)
        remove(corpus);
    ev_runner_free(f.run);
    calib_book_free(f.book);
    tok_close(f.tok);
    model_close(f.m);
    return chk_done(&c);
}
