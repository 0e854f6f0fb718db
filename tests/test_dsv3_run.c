/* tests/test_dsv3_run.c — the CLI end to end on the DeepSeek-V3 fixture (FP8 weights, MLA,
 * sigmoid group-limited routing): `vbrlab info` lists the quantizable projections, and
 * `vbrlab run tests/data/run-dsv3.ini` completes stats, sens, alloc, eval and report.
 *
 * Checks on the store: the MLA inputs (q_b_in, kv_b_in) have statistics of the LoRA widths; the
 * router statistics of each MoE layer count N·K routed tokens; every MLA projection is a
 * sensitivity unit; the 2.5-bpw allocation's KLD is below uniform 2-bit RTN's (more bits where
 * they matter must not lose to fewer bits everywhere on the set it was calibrated on).
 * The same run with `mem_cap = 1` ([experiment]: stats and eval layer-major, activations and
 * reference logits spilled to a file, lazy fake-quant bindings) gives the same /stats and /eval
 * bit for bit.
 */
#define _POSIX_C_SOURCE 200809L
#include "../io/h5s.h"
#include "check.h"
#include "h5cmp.h"
#include "testio.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIX "tests/fixtures/tiny-deepseek-v3"

static void test_info(chk *c)
{
    static char out[16384];
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s info %s 2>&1", tio_bin(), FIX);
    int rc = tio_run(cmd, out, sizeof out);
    CHECK_INT(c, rc, 0, "vbrlab info on the fixture");
    static const char *const want[] = {
        "architecture   deepseek_v3",
        "attention q_a_proj                    3        98304",
        "attention kv_b_proj                   3       196608",
        "routed experts gate_proj             16       262144",
        "shared experts down_proj              2        32768",
        "72 tensors F8_E4M3 with 128×128 block scales", /* the FP8 source is the reference */
        "1 multi-token-prediction layer(s)",
        "0 unused",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK(c, strstr(out, want[i]) != NULL, "info says: %s", want[i]);
}

static double read_scalar_sum(h5s_store *s, const char *path, int64_t *n)
{
    int64_t *v = NULL;
    int nd = 0;
    int64_t sh[H5S_MAX_DIMS];
    vl_err e;
    double sum = -1;
    *n = 0;
    if (h5s_read(s, path, H5S_I64, (void **)&v, &nd, sh, &e) == 0) {
        *n = nd ? sh[0] : 1;
        sum = 0;
        for (int64_t i = 0; i < *n; i++)
            sum += (double)v[i];
    }
    free(v);
    return sum;
}

/* Copy tests/data/NAME into DIR with `out` pointing at STORE; the ini's path into ini. */
static void copy_ini(const char *name, const char *dir, const char *store, char *ini, size_t cap)
{
    char src_path[256];
    snprintf(src_path, sizeof src_path, "tests/data/%s", name);
    snprintf(ini, cap, "%s/%s", dir, name);
    char *src = tio_slurp(src_path, NULL);
    FILE *f = fopen(ini, "w");
    for (char *line = src, *next; f && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (!strncmp(line, "out =", 5))
            fprintf(f, "out = %s\n", store);
        else
            fprintf(f, "%s\n", line);
    }
    if (f)
        fclose(f);
    free(src);
}

static double attr_num(h5s_store *s, const char *g, const char *a)
{
    double v = NAN;
    vl_err e;
    h5s_attr_get_f64(s, g, a, &v, &e);
    return v;
}

/* Granularity gguf on an untied model: the embedding and the head are units and items, a model
 * budget is met in whole-model bits, and the uniform row with uniform_outer quantizes them. */
static void test_run_gguf(chk *c, const char *dir)
{
    char ini[512], store[256], cmd[1024];
    snprintf(store, sizeof store, "%s/dsv3g.h5", dir);
    copy_ini("run-dsv3-gguf.ini", dir, store, ini, sizeof ini);
    static char out[65536];
    snprintf(cmd, sizeof cmd, "%s run %s 2>&1", tio_bin(), ini);
    int rc = tio_run(cmd, out, sizeof out);
    CHECK_INT(c, rc, 0, "vbrlab run, granularity gguf");
    if (rc)
        printf("%s\n", out);
    h5s_store *s = NULL;
    vl_err e;
    if (h5s_open(&s, store, &e)) {
        CHECK(c, 0, "open the store: %s", e.msg);
        return;
    }
    char *units = NULL;
    h5s_attr_get(s, "/sens", "unit_names", &units, &e);
    CHECK(c, units && strstr(units, "model.embed_tokens.weight\n") && strstr(units, "lm_head.weight"),
          "embedding and head are sensitivity units");
    free(units);
    double mw = attr_num(s, "/alloc/en-3.5", "model_weights"), bm = attr_num(s, "/alloc/en-3.5", "bpw_model");
    CHECK(c, mw == 2570768 && bm <= 3.5 + 1e-12 && bm > 3.3, "model budget 3.5 met over all %g weights (%g)",
          mw, bm);
    char *as = NULL;
    h5s_attr_get(s, "/alloc/en-3.5", "assignment", &as, &e);
    CHECK(c, as && strstr(as, "model.embed_tokens.weight\trtn-") && strstr(as, "lm_head.weight\trtn-"),
          "the allocation assigns the embedding and the head");
    free(as);
    const char *row = "/eval/rtn-b2-g64-asym+rtn-b4-g64-asym";
    /* body matrices plus embedding and head (262,144 each) */
    double nw = attr_num(s, row, "n_weights"), bits = attr_num(s, row, "bpw") * nw;
    CHECK(c, nw == 2039808.0 + 2 * 262144 && isfinite(bits), "uniform row quantizes body + embedding + head "
          "(%g weights)", nw);
    /* llama.cpp's IQ2_XS mix (alloc/llmix.h): the same matrices, every one in a ggml type, so
     * the row has a file size (3.508442613 bpw, as tests/test_llmix.c counts the same
     * assignment); kind uniform, source llama.cpp */
    row = "/eval/llama-IQ2_XS";
    nw = attr_num(s, row, "n_weights");
    double bf = attr_num(s, row, "bpw_file");
    char *src = NULL, *kind = NULL;
    h5s_attr_get(s, row, "source", &src, &e);
    h5s_attr_get(s, row, "kind", &kind, &e);
    CHECK(c, nw == 2039808.0 + 2 * 262144 && fabs(bf - 3.508442613) < 1e-8 && src &&
                 !strcmp(src, "llama.cpp") && kind && !strcmp(kind, "uniform"),
          "llama-IQ2_XS row: %g weights, file %g bpw, source %s, kind %s", nw, bf,
          src ? src : "?", kind ? kind : "?");
    free(src);
    free(kind);
    h5s_close(s);
    /* the eval stage alone, every stage before it cached: a new process that has not loaded
     * the model when the llama_mix rows are checked (it crashed on a NULL model once) */
    snprintf(cmd, sizeof cmd, "%s run %s --only eval 2>&1", tio_bin(), ini);
    rc = tio_run(cmd, out, sizeof out);
    CHECK(c, rc == 0 && strstr(out, "eval: done"),
          "--only eval with the earlier stages cached evaluates the llama_mix row (exit %d: "
          "%.300s)", rc, out);
    unlink(store);
    unlink(ini);
    snprintf(cmd, sizeof cmd, "%s/dsv3g.md", dir);
    unlink(cmd);
}

/* tests/data/run-dsv3.ini as INI with `out` = STORE and EXTRA lines after it. */
static void write_ini(const char *ini, const char *store, const char *extra)
{
    char *src = tio_slurp("tests/data/run-dsv3.ini", NULL);
    FILE *f = fopen(ini, "w");
    for (char *line = src, *next; f && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (!strncmp(line, "out =", 5))
            fprintf(f, "out = %s\n%s", store, extra);
        else
            fprintf(f, "%s\n", line);
    }
    if (f)
        fclose(f);
    free(src);
}

/* The run again layer-major (mem_cap = 1) into the same path (the rows' attributes name it),
 * the batch-major store moved aside: the same statistics and evaluation bits. */
static void test_run_layer_major(chk *c, const char *dir, const char *store)
{
    char ini[256], bm[300], cmd[1024], why[2048];
    static char out[65536];
    snprintf(ini, sizeof ini, "%s/run-dsv3-lm.ini", dir);
    snprintf(bm, sizeof bm, "%s.batch-major", store);
    write_ini(ini, store, "mem_cap = 1\n");
    int rc = rename(store, bm);
    snprintf(cmd, sizeof cmd, "%s run %s 2>&1", tio_bin(), ini);
    rc = rc ? rc : tio_run(cmd, out, sizeof out);
    CHECK(c, rc == 0, "vbrlab run with mem_cap = 1%s%s", rc ? ": " : "", rc ? out : "");
    why[0] = '\0';
    CHECK(c, rc == 0 && h5c_stores_equal(bm, store, "/stats/", why, sizeof why),
          "layer-major /stats = batch-major /stats bit for bit: %s", why);
    why[0] = '\0';
    CHECK(c, rc == 0 && h5c_stores_equal(bm, store, "/eval/", why, sizeof why),
          "layer-major /eval = batch-major /eval bit for bit: %s", why);
    unlink(bm);
    unlink(ini);
}

static void test_run(chk *c, const char *dir)
{
    char ini[256], store[256], cmd[1024];
    snprintf(ini, sizeof ini, "%s/run-dsv3.ini", dir);
    snprintf(store, sizeof store, "%s/dsv3.h5", dir);
    write_ini(ini, store, "");
    static char out[65536];
    snprintf(cmd, sizeof cmd, "%s run %s 2>&1", tio_bin(), ini);
    int rc = tio_run(cmd, out, sizeof out);
    CHECK_INT(c, rc, 0, "vbrlab run on the DeepSeek-V3 fixture");
    const char *stages[] = {"stats: done", "sens: done", "alloc.en: done", "eval: done",
                            "report: done"};
    for (int i = 0; i < 5; i++)
        CHECK(c, strstr(out, stages[i]) != NULL, "stage completes: %s", stages[i]);
    if (rc)
        printf("%s\n", out);
    h5s_store *s = NULL;
    vl_err e;
    if (h5s_open(&s, store, &e)) {
        CHECK(c, 0, "open the store: %s", e.msg);
        return;
    }
    int64_t n = 0;
    for (int l = 1; l <= 2; l++) {
        char p[128];
        snprintf(p, sizeof p, "/stats/en/layers/%02d/router/routed", l);
        double routed = read_scalar_sum(s, p, &n);
        CHECK(c, routed == 2 * 32 * 2 && n == 8, "layer %d: router statistics count N·K = 128 "
              "routed tokens over 8 experts (%g)", l, routed);
        snprintf(p, sizeof p, "/stats/en/layers/%02d/q_b_in/count", l);
        CHECK(c, read_scalar_sum(s, p, &n) == 64, "layer %d: q_b_proj input statistics (64 rows)",
              l);
        snprintf(p, sizeof p, "/stats/en/layers/%02d/kv_b_in/sum_x", l);
        double *v = NULL;
        int nd = 0;
        int64_t sh[H5S_MAX_DIMS];
        rc = h5s_read(s, p, H5S_F64, (void **)&v, &nd, sh, &e);
        CHECK(c, rc == 0 && nd == 1 && sh[0] == 128, "layer %d: kv_b_proj input is 128 wide", l);
        free(v);
        snprintf(p, sizeof p, "/stats/en/layers/%02d/experts/003/in/count", l);
        CHECK(c, h5s_exists(s, p), "layer %d: per-expert statistics", l);
    }
    double *kld = NULL;
    int nd = 0;
    int64_t sh[H5S_MAX_DIMS];
    rc = h5s_read(s, "/eval/matrix/mean_kld", H5S_F64, (void **)&kld, &nd, sh, &e);
    CHECK(c, rc == 0 && nd == 2 && sh[0] == 2 && sh[1] == 1, "KLD matrix: 2 allocations × 1 "
          "domain");
    if (rc == 0 && sh[0] == 2)
        CHECK(c, kld[0] > 0 && kld[0] < kld[1], "VBR 2.5 bpw KLD %.4g < uniform 2-bit KLD %.4g",
              kld[0], kld[1]);
    free(kld);
    /* every MLA projection of every layer was measured: 3 tensors each of q_a, q_b, kv_a, kv_b */
    int32_t *proj = NULL;
    char *names = NULL;
    rc = h5s_read(s, "/sens/tensors/proj", H5S_I32, (void **)&proj, &nd, sh, &e);
    if (rc == 0)
        rc = h5s_attr_get(s, "/sens/tensors/proj", "proj_names", &names, &e);
    const char *mla[] = {"q_a", "q_b", "kv_a", "kv_b"};
    for (int k = 0; rc == 0 && k < 4; k++) {
        int idx = -1, i = 0, count = 0;
        for (const char *p = names; p && *p; i++) { /* one per line, in index order */
            size_t w = strcspn(p, "\n");
            if (w == strlen(mla[k]) && !strncmp(p, mla[k], w))
                idx = i;
            p += w;
            p += strspn(p, "\n");
        }
        for (int64_t t = 0; t < sh[0]; t++)
            count += proj[t] == idx;
        CHECK(c, idx >= 0 && count == 3, "sensitivity: %s_proj of all 3 layers measured (%d)",
              mla[k], count);
    }
    free(proj);
    free(names);
    h5s_close(s);
    /* the sensitivity map draws the MLA projections as their own columns */
    char png[300], gp[310];
    snprintf(png, sizeof png, "%s/sens.png", dir);
    snprintf(gp, sizeof gp, "%s.gp", png);
    snprintf(cmd, sizeof cmd, "%s plot sens-map %s --set en -o %s 2>&1", tio_bin(), store, png);
    rc = tio_run(cmd, out, sizeof out);
    char *script = tio_slurp(gp, NULL);
    CHECK(c, rc == 0 && script && strstr(script, "q_a_proj") && strstr(script, "kv_b_proj") &&
              strstr(script, "shared.gate_proj"),
          "sens-map has q_a_proj, kv_b_proj and shared-expert columns");
    free(script);
    unlink(png);
    unlink(gp);
    test_run_layer_major(c, dir, store);
    unlink(store);
    unlink(ini);
    snprintf(cmd, sizeof cmd, "%s/dsv3.md", dir); /* the report's tables beside the store */
    unlink(cmd);
}

int main(void)
{
    chk c;
    chk_init(&c, "test_dsv3_run");
    char dir[64];
    if (tio_tmpdir(dir, sizeof dir, "test-dsv3-run"))
        return 2;
    test_info(&c);
    test_run(&c, dir);
    test_run_gguf(&c, dir);
    rmdir(dir);
    return chk_done(&c);
}
