/* tests/test_statscli.c — the statistics pass (analysis/spass.h), the store (analysis/sfile.h)
 * and `vbrlab stats` / `vbrlab stats merge` end to end.
 *
 * The merge invariant tested: the store over sequences [0,2) (`seqs=2`) merged with the store
 * over [2,4) (`seqs=2,skip=2`) of the same corpus, seed and length equals, dataset by dataset
 * and bit for bit (attributes included, except the root `command`), the store of one run over
 * [0,4) (`seqs=4`). This holds because the set cut does not depend on seqs/skip (calib.h), the
 * stats sum exactly per sequence (stats.h) and merge concatenates ids and tokens in order —
 * provided each sequence meets the same batch companions in both runs (--batch 2 here): the
 * routed experts' matrix products gather rows across a batch, and BLAS results for one row may
 * differ in the last bit with the number of rows, so the float32 activations of a sequence are
 * batch-invariant only up to rounding (with --batch 3 absmax differs in the last bit).
 * Layer-major (--mem-cap, in memory and spilled) gives the batch-major store bit for bit, on the
 * embedded model and on the DeepSeek-V3 and V4 fixtures.
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "testio.h"

#include <sys/stat.h>

#include "../analysis/calib.h"
#include "../analysis/sfile.h"
#include "../analysis/spass.h"
#include "../io/h5s.h"
#include "h5cmp.h"

#include <gsl/gsl_errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL "models/vbrlab-moe-tiny"
#define EN "data/corpus/en.calib.txt"

/* ---------------------------------------------------------------- a capturing tap */

/* Chains to the stats consumer and copies the rows of one (point, layer, expert). */
typedef struct {
    stat_acc *acc;
    tap_point point;
    int layer, expert;
    float *rows;  /* captured rows, [n × cols] */
    int n, cols, cap;
} capture;

static void capture_tap(void *user, const tap_event *ev)
{
    capture *cp = user;
    stat_tap(cp->acc, ev);
    if (ev->point != cp->point || ev->layer != cp->layer || ev->expert != cp->expert)
        return;
    cp->cols = ev->cols;
    for (int r = 0; r < ev->rows && cp->n < cp->cap; r++, cp->n++)
        memcpy(cp->rows + (size_t)cp->n * ev->cols, ev->data + (size_t)r * ev->stride,
               (size_t)ev->cols * sizeof *cp->rows);
}

/* ---------------------------------------------------------------- the pass */

static void test_pass(chk *c, const model *m, const calib_set *set)
{
    const hfc_config *cf = model_config(m);
    const int N = set->n_seq * set->seq_len, E = cf->n_experts, K = cf->n_experts_per_tok;
    vl_err e = {0};
    for (int route_all = 0; route_all < 2; route_all++) {
        spass_opts o = spass_opts_defaults();
        o.batch = 3; /* 4 sequences: batches of 3 and 1 */
        o.max_len = set->seq_len;
        o.hessian = "layers\\.1\\.mlp\\.experts\\.5\\.up_proj";
        o.route_all_experts = route_all;
        o.progress = 0;
        spass *p = NULL;
        stat_acc *a = NULL;
        if (spass_new(&p, m, &o, &e) || spass_acc_new(p, N, &a, &e)) {
            CHECK(c, 0, "spass setup: %s", e.msg);
            spass_free(p);
            return;
        }
        CHECK_INT(c, spass_xtx_inputs(p), 1, "--hessian selects exactly one input");
        capture cp = {a, TAP_EXPERT_IN, 1, 5, NULL, 0, 0, N};
        cp.rows = calloc((size_t)N * cf->hidden, sizeof *cp.rows);
        /* run through fwd with the capturing tap: same batches as spass_run */
        fwd_state *st = NULL;
        fwd_opts fo = fwd_opts_defaults();
        fo.route_all_experts = route_all;
        tap_set ts = {capture_tap, &cp, stat_taps(a).want};
        int rc = fwd_state_new(&st, m, 3, set->seq_len, &e);
        for (int s0 = 0; rc == 0 && s0 < set->n_seq; s0 += 3) {
            int nb = set->n_seq - s0 < 3 ? set->n_seq - s0 : 3;
            const float *lg;
            const int32_t *ids = set->ids + (size_t)s0 * set->seq_len;
            rc = stat_begin_batch(a, ids, nb, set->seq_len, &e);
            if (rc == 0)
                rc = fwd_run(m, model_base(m), st, ids, nb, set->seq_len, &fo, &ts, &lg, &e);
        }
        CHECK(c, rc == 0 && stat_status(a, &e) == 0, "pass runs (%s)", e.msg);
        int counts_ok = 1, rows_ok = 1;
        for (int l = 0; l < cf->n_layers; l++) {
            const stat_router *r = stat_router_get(a, l);
            int64_t sum = 0, rows = 0, routed = 0;
            for (int x = 0; r && x < E; x++) {
                sum += r->routed[x];
                rows += stat_input_get(a, l, STAT_EXPERT_IN, x)->rows;
                routed += stat_input_get(a, l, STAT_EXPERT_IN, x)->rows_routed;
            }
            counts_ok &= r && r->tokens == N && sum == (int64_t)N * K && routed == sum;
            rows_ok &= rows == (route_all ? (int64_t)N * E : (int64_t)N * K);
        }
        CHECK(c, counts_ok, "route-all %d: per-expert counts sum to tokens × top-k, every layer",
              route_all);
        CHECK(c, rows_ok, "route-all %d: expert input rows sum to tokens × %s", route_all,
              route_all ? "experts" : "top-k");
        /* brute force: Σx² and XᵀX of layer 1 expert 5's input from the captured rows */
        const stat_input *in = stat_input_get(a, 1, STAT_EXPERT_IN, 5);
        const int D = cf->hidden;
        double *s2 = calloc((size_t)D, sizeof *s2), *xtx = calloc((size_t)D * D, sizeof *xtx);
        double *g2 = calloc((size_t)D, sizeof *g2), *gx = calloc((size_t)D * D, sizeof *gx);
        for (int r = 0; r < cp.n; r++) {
            const float *x = cp.rows + (size_t)r * D;
            for (int i = 0; i < D; i++) {
                s2[i] += (double)x[i] * x[i];
                for (int j = 0; j < D; j++)
                    xtx[(size_t)i * D + j] += (double)x[i] * x[j];
            }
        }
        stat_input_f64(in, NULL, g2, NULL, gx);
        double e2 = 0, ex = 0, mx = 0;
        for (int i = 0; i < D; i++) {
            e2 = fmax(e2, fabs(g2[i] - s2[i]) / fmax(1e-30, fabs(s2[i])));
            for (int j = 0; j < D; j++) {
                ex = fmax(ex, fabs(gx[(size_t)i * D + j] - xtx[(size_t)i * D + j]));
                mx = fmax(mx, fabs(xtx[(size_t)i * D + j]));
            }
        }
        CHECK(c, cp.n == in->rows && cp.n > 0, "captured %d rows = stat rows %lld", cp.n,
              (long long)in->rows);
        CHECK(c, e2 < 1e-12, "Σx² matches brute force (max rel err %.3g)", e2);
        CHECK(c, in->xtx && ex <= 1e-12 * mx, "XᵀX matches brute force (max err %.3g of %.3g)",
              ex, mx);
        CHECK(c, stat_input_get(a, 1, STAT_EXPERT_IN, 4)->xtx == NULL &&
                 stat_input_get(a, 1, STAT_ATTN_IN, -1)->xtx == NULL,
              "unselected inputs have no XᵀX");
        free(s2); free(xtx); free(g2); free(gx); free(cp.rows);
        fwd_state_free(st);
        stat_free(a);
        spass_free(p);
    }
}

/* ---------------------------------------------------------------- stores */

static void test_cli(chk *c, const model *m, tok_tokenizer *tok)
{
    char err[2048], why[2048];
    /* --batch 2: A, B and A∪B put every sequence in the same batch (see the file comment) */
    const char *common = "--hessian 'layers\\.0\\.self_attn\\.(q|o)_proj' --batch 2";
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "stats --set en=" EN ",seqs=2,len=24,seed=3 %s -o build/tmp-statscli/vl_a.h5",
             common);
    CHECK_INT(c, tio_cli(cmd, NULL, err, sizeof err), 0, "vbrlab stats A");
    snprintf(cmd, sizeof cmd, "stats --set en=" EN ",seqs=2,len=24,seed=3,skip=2 --set "
             "u=noise:uniform,seqs=2,len=24 %s -o build/tmp-statscli/vl_b.h5", common);
    CHECK_INT(c, tio_cli(cmd, NULL, err, sizeof err), 0, "vbrlab stats B");
    snprintf(cmd, sizeof cmd, "stats --set en=" EN ",seqs=4,len=24,seed=3 %s -o build/tmp-statscli/vl_u.h5",
             common);
    CHECK_INT(c, tio_cli(cmd, NULL, err, sizeof err), 0, "vbrlab stats A∪B");
    CHECK_INT(c, tio_cli("stats merge build/tmp-statscli/vl_a.h5 build/tmp-statscli/vl_b.h5 -o build/tmp-statscli/vl_c.h5", NULL, err,
                         sizeof err), 0, "vbrlab stats merge");
    why[0] = '\0';
    CHECK(c, h5c_stores_equal("build/tmp-statscli/vl_c.h5", "build/tmp-statscli/vl_u.h5", "/en/", why, sizeof why),
          "merge(A, B) == run over A∪B, bit for bit: %s", why);
    /* layer-major (--mem-cap): the same batches layer by layer, residual rows in memory (0)
     * or in the spill file (1 byte): the same store bit for bit, XᵀX and tokens included */
    for (int cap = 0; cap < 2; cap++) {
        snprintf(cmd, sizeof cmd, "stats --set en=" EN ",seqs=4,len=24,seed=3 %s --mem-cap %d "
                 "-o build/tmp-statscli/vl_lm.h5", common, cap);
        CHECK(c, tio_cli(cmd, NULL, err, sizeof err) == 0, "vbrlab stats --mem-cap %d (%s)", cap,
              err);
        CHECK(c, h5c_stores_equal("build/tmp-statscli/vl_lm.h5", "build/tmp-statscli/vl_u.h5",
                                  NULL, why, sizeof why),
              "layer-major (--mem-cap %d) store == batch-major store, bit for bit: %s", cap, why);
    }
    CHECK(c, tio_cli("stats --set en=" EN ",seqs=2,len=24 --mem-cap 12x -o build/tmp-statscli/"
                     "x.h5", NULL, err, sizeof err) != 0 && strstr(err, "--mem-cap \"12x\""),
          "stats --mem-cap 12x: one-line error naming the value (%s)", err);
    CHECK(c, tio_cli("eval --uniform rtn-b4-g64-asym --domain u=noise:uniform,seqs=2,len=8 "
                     "--mem-cap -1 -o build/tmp-statscli/x.h5", NULL, err, sizeof err) != 0 &&
                 strstr(err, "--mem-cap '-1'"),
          "eval --mem-cap -1: one-line error naming the value (%s)", err);
    /* DeepSeek-V3 (FP8, MLA, group-limited sigmoid router) and V4 (hash-routed layers read each
     * batch's ids; hc_mult-wide residual rows), 5 sequences in batches of 2 */
    const char *fx[] = {"tests/fixtures/tiny-deepseek-v3", "tests/fixtures/tiny-deepseek-v4"};
    for (int k = 0; k < 2; k++) {
        const char *cap[] = {"", "--mem-cap 1"}, *o[] = {"vl_ds_b.h5", "vl_ds_l.h5"};
        for (int j = 0; j < 2; j++) {
            snprintf(cmd, sizeof cmd, "stats %s --set u=noise:uniform,seqs=5,len=12,seed=2 "
                     "--hessian 'layers\\.1\\.' --batch 2 %s -o build/tmp-statscli/%s", fx[k],
                     cap[j], o[j]);
            CHECK(c, tio_cli(cmd, NULL, err, sizeof err) == 0, "%s: vbrlab stats %s (%s)",
                  fx[k], cap[j], err);
        }
        CHECK(c, h5c_stores_equal("build/tmp-statscli/vl_ds_b.h5", "build/tmp-statscli/vl_ds_l.h5",
                                  NULL, why, sizeof why),
              "%s: layer-major store == batch-major store, bit for bit: %s", fx[k], why);
    }
    snprintf(cmd, sizeof cmd, "stats --set en=" EN ",seqs=2,len=24,seed=3 %s -o build/tmp-statscli/vl_a2.h5",
             common);
    CHECK_INT(c, tio_cli(cmd, NULL, err, sizeof err), 0, "vbrlab stats A again");
    CHECK(c, h5c_stores_equal("build/tmp-statscli/vl_a.h5", "build/tmp-statscli/vl_a2.h5", NULL, why, sizeof why),
          "same seed, same store (every dataset and attribute): %s", why);

    /* leakage: an eval domain equal to the calibration set is refused unless allowed */
    const char *ev = "eval --uniform rtn-b4-g64-asym --stats build/tmp-statscli/vl_a.h5 "
                     "--calib en --domain en=" EN ",seqs=2,len=24,seed=3";
    snprintf(cmd, sizeof cmd, "%s", ev);
    CHECK(c, tio_cli(cmd, NULL, err, sizeof err) != 0 &&
             strstr(err, "leakage (--allow-overlap evaluates anyway): "
                         "build/tmp-statscli/vl_a.h5: evaluation domain en overlaps "
                         "calibration set en: sequence 0, tokens 0..23 equal sequence 0"),
          "eval refuses a domain equal to a calibration set: %s", err);
    snprintf(cmd, sizeof cmd, "%s --allow-overlap -o build/tmp-statscli/ev.h5", ev);
    CHECK(c, tio_cli(cmd, NULL, err, sizeof err) == 0, "eval --allow-overlap runs it (%s)", err);
    {
        h5s_store *es = NULL;
        vl_err ee = {0};
        char *qs = NULL, *qf = NULL;
        int ok = h5s_open(&es, "build/tmp-statscli/ev.h5", &ee) == 0 &&
                 h5s_attr_get(es, "/eval/rtn-b4-g64-asym", "calib", &qs, &ee) == 0 &&
                 h5s_attr_get(es, "/eval/rtn-b4-g64-asym", "stats_file", &qf, &ee) == 0;
        CHECK(c, ok && !strcmp(qs, "en") && !strcmp(qf, "build/tmp-statscli/vl_a.h5"),
              "eval.h5 records whose statistics quantized the row (%s, %s)", qs ? qs : ee.msg,
              qf ? qf : "");
        vl_free(qs);
        vl_free(qf);
        h5s_close(es);
    }
    /* vbrlab sens: α on every token of the set by default, printed with its SE */
    {
        static char out[1 << 16];
        int st = tio_vbrlab("sens --stats build/tmp-statscli/vl_a.h5 --formats rtn:b=2:g=64 "
                            "--add-draws 0 -o build/tmp-statscli/sens.h5", out, sizeof out);
        CHECK(c, st == 0 && strstr(out, "set en: α measured on 48 tokens (2 sequences), 2 noise "
                                        "draws, SE by 200 bootstrap resamples over sequences") &&
                     strstr(out, "± SE"),
              "vbrlab sens uses all 2 × 24 tokens and prints α ± SE (status %d)", st);
    }
    snprintf(cmd, sizeof cmd, "%s,skip=2", ev);
    CHECK(c, tio_cli(cmd, NULL, err, sizeof err) == 0, "the next sequences of the file are fine (%s)",
          err);
    /* a format is asked for: its name and its one-format menu spelling are the same format */
    snprintf(cmd, sizeof cmd, "%s,skip=2 -o build/tmp-statscli/ev_name.h5", ev);
    CHECK_INT(c, tio_cli(cmd, NULL, err, sizeof err), 0, "eval --uniform rtn-b4-g64-asym");
    snprintf(cmd, sizeof cmd, "eval --uniform rtn:b=4:g=64 --stats build/tmp-statscli/vl_a.h5 "
                              "--calib en --domain en=" EN ",seqs=2,len=24,seed=3,skip=2 "
                              "-o build/tmp-statscli/ev_menu.h5");
    CHECK(c, tio_cli(cmd, NULL, err, sizeof err) == 0 &&
             h5c_stores_equal("build/tmp-statscli/ev_name.h5", "build/tmp-statscli/ev_menu.h5",
                              NULL, why, sizeof why),
          "eval --uniform rtn:b=4:g=64 writes the store rtn-b4-g64-asym writes (%s%s)", err, why);

    /* the store's content: ids equal the set built in-process, counts sum to tokens × top-k */
    h5s_store *s = NULL;
    vl_err e = {0};
    int32_t *ids = NULL;
    int64_t *routed = NULL, sh[H5S_MAX_DIMS];
    int nd = 0;
    calib_env env = {m, tok, 4, CALIB_ROLE_CALIB};
    calib_book *b = NULL;
    calib_spec sp;
    int ok = h5s_open(&s, "build/tmp-statscli/vl_c.h5", &e) == 0 &&
             h5s_read(s, "/sets/en/input_ids", H5S_I32, (void **)&ids, &nd, sh, &e) == 0 &&
             h5s_read(s, "/stats/en/layers/03/router/routed", H5S_I64, (void **)&routed, NULL,
                      NULL, &e) == 0 &&
             calib_book_new(&b, &env, &e) == 0 &&
             calib_spec_parse("en=" EN ",seqs=4,len=24,seed=3", &sp, &e) == 0 &&
             calib_book_add(b, &sp, &e) == 0;
    CHECK(c, ok, "read back the merged store (%s)", e.msg);
    if (ok) {
        CHECK(c, nd == 2 && sh[0] == 4 && sh[1] == 24 &&
                 !memcmp(ids, calib_book_set(b, 0)->ids, 96 * sizeof *ids),
              "stored input_ids = the set built in-process");
        int64_t sum = 0;
        for (int x = 0; x < model_config(m)->n_experts; x++)
            sum += routed[x];
        CHECK_INT(c, sum, 96 * model_config(m)->n_experts_per_tok,
                  "stored routed counts sum to tokens × top-k");
        char *seed = NULL;
        double seqs = 0;
        CHECK(c, h5s_attr_get(s, "/sets/en", "seed", &seed, &e) == 0 && !strcmp(seed, "3") &&
                 h5s_attr_get_f64(s, "/sets/en", "seqs", &seqs, &e) == 0 && seqs == 4,
              "merged definition: seqs 4, seed 3 (contiguous halves)");
        vl_free(seed);
        CHECK(c, h5s_exists(s, "/sets/u/input_ids") && h5s_exists(s, "/tokens/u/logp"),
              "a set of B only is copied");
    }
    CHECK(c, h5c_stores_equal("build/tmp-statscli/vl_c.h5", "build/tmp-statscli/vl_b.h5", "/u/", why, sizeof why),
          "copied set u equals B's: %s", why);
    calib_book_free(b);
    vl_free(ids);
    vl_free(routed);
    h5s_close(s);

    /* errors: one line, non-zero exit */
    static const struct { const char *args, *needle; } bad[] = {
        {"stats --set 'x=noise:foo' -o build/tmp-statscli/vl_x.h5", "vbrlab stats: set spec \"x=noise:foo\""},
        {"stats --set x=/nonexistent/c.txt -o build/tmp-statscli/vl_x.h5",
         "vbrlab stats: set x: /nonexistent/c.txt: No such file"},
        {"stats --set x=noise:uniform,seqs=1,len=8 --hessian '(' -o build/tmp-statscli/vl_x.h5",
         "--hessian \"(\""},
        {"stats --set x=noise:uniform,seqs=1,len=8", "no output file"},
        {"stats merge build/tmp-statscli/vl_a.h5 /nonexistent.h5 -o build/tmp-statscli/vl_x.h5", "/nonexistent.h5"},
        {"stats merge build/tmp-statscli/vl_a.h5 -o build/tmp-statscli/vl_x.h5", "usage"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st = tio_cli(bad[i].args, NULL, err, sizeof err);
        CHECK(c, st != 0 && strstr(err, bad[i].needle) && !strstr(err, "lines on stderr"),
              "error %zu: one line: %s", i, err);
    }
    FILE *f = fopen("build/tmp-statscli/vl_x.h5", "r");
    CHECK(c, f == NULL, "failed runs leave no output file");
    if (f)
        fclose(f);
    const char *tmp[] = {"build/tmp-statscli/vl_a.h5", "build/tmp-statscli/vl_b.h5", "build/tmp-statscli/vl_c.h5", "build/tmp-statscli/vl_u.h5",
                         "build/tmp-statscli/vl_a2.h5", "build/tmp-statscli/err.txt"};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++)
        remove(tmp[i]);
}

int main(void)
{
    gsl_set_error_handler_off();
    chk c;
    chk_init(&c, "statscli");
    /* scratch inside this checkout's build/ so parallel checkouts never share files */
    mkdir("build", 0755);
    mkdir("build/tmp-statscli", 0755);
    model *m = NULL;
    tok_tokenizer *tok = NULL;
    calib_book *b = NULL;
    vl_err e = {0};
    calib_spec sp;
    if (model_open(&m, MODEL, &e) || tok_open(MODEL, &tok, &e)) {
        CHECK(&c, 0, "open model: %s", e.msg);
    } else {
        calib_env env = {m, tok, 4, CALIB_ROLE_CALIB};
        if (calib_book_new(&b, &env, &e) ||
            calib_spec_parse("en=" EN ",seqs=4,len=32,seed=1", &sp, &e) ||
            calib_book_add(b, &sp, &e))
            CHECK(&c, 0, "build set: %s", e.msg);
        else
            test_pass(&c, m, calib_book_set(b, 0));
        test_cli(&c, m, tok);
    }
    calib_book_free(b);
    tok_close(tok);
    model_close(m);
    return chk_done(&c);
}
