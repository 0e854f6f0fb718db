/* tests/test_synth.c — `vbrlab synth` checkpoints (analysis/synth.h) and their writers.
 *
 * Every family's tiny config (the fixtures' configs, the embedded qwen2_moe and a qwen2 dense
 * one written here) is synthesized in bf16, fp8 and f32, loaded back by model_open and run
 * through the forward: finite logits. The values are checked against the contract: norms 1,
 * biases 0, random weights inside ±√3/√cols with a standard deviation near 1/√cols, the FP8
 * and bf16 tensors within their rounding of the f32 tensor of the same seed (each tensor's
 * stream depends only on seed and name), tid2eid rows K distinct experts. Same seed → the same
 * bytes; another seed → other bytes; a bad config, an existing output and a failure after the
 * shards were written (missing tokenizer) leave no output and no temporary directory. The
 * e4m3 encoder is checked exhaustively against the decoder; the streaming writer's short and
 * long streams are errors that leave no file.
 */
#define _POSIX_C_SOURCE 200809L
#include "../analysis/fwd.h"
#include "../analysis/model.h"
#include "../analysis/synth.h"
#include "../core/rng.h"
#include "check.h"
#include "testio.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_tmp[256];

static void rm_flat(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            struct stat sb;
            if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
                rm_flat(p);
            else
                unlink(p);
        }
    closedir(d);
    rmdir(dir);
}

/* Entries of g_tmp whose name starts with prefix. */
static int count_prefix(const char *prefix)
{
    DIR *d = opendir(g_tmp);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += !strncmp(e->d_name, prefix, strlen(prefix));
    if (d)
        closedir(d);
    return n;
}

static int files_equal(const char *a, const char *b)
{
    size_t la = 0, lb = 0;
    char *x = tio_slurp(a, &la), *y = tio_slurp(b, &lb);
    int eq = x && y && la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return eq;
}

static int synth(const char *cfg, const char *out, st_dtype dt, uint64_t seed, int64_t shard,
                 const char *tok, synth_report *r, vl_err *e)
{
    synth_opts o = synth_opts_defaults();
    o.dtype = dt;
    o.seed = seed;
    o.shard_bytes = shard;
    o.tokenizer = tok;
    return synth_write(cfg, out, &o, r, e);
}

/* Load DIR and run 2 sequences of 5 tokens: every logit finite. */
static void check_forward(chk *c, const char *dir, const char *label)
{
    model *m = NULL;
    vl_err e = {0};
    int rc = model_open(&m, dir, &e);
    CHECK(c, rc == 0, "%s: loads back%s%s", label, rc ? ": " : "", rc ? e.msg : "");
    if (rc)
        return;
    const hfc_config *cf = model_config(m);
    int32_t ids[10];
    for (int i = 0; i < 10; i++)
        ids[i] = (int32_t)((i * 97 + 3) % cf->vocab);
    fwd_state *st = NULL;
    const float *lg = NULL;
    rc = fwd_state_new(&st, m, 2, 5, &e);
    if (rc == 0)
        rc = fwd_run(m, model_base(m), st, ids, 2, 5, NULL, NULL, &lg, &e);
    CHECK(c, rc == 0, "%s: forward%s%s", label, rc ? ": " : "", rc ? e.msg : "");
    int finite = rc == 0;
    double ss = 0;
    for (size_t i = 0; finite && i < (size_t)10 * cf->vocab; i++) {
        finite &= isfinite(lg[i]);
        ss += (double)lg[i] * lg[i];
    }
    CHECK(c, finite && ss > 0, "%s: logits finite and not all zero", label);
    fwd_state_free(st);
    model_close(m);
}

/* The values of the f32 checkpoint F32 against the contract, and the bf16 / fp8 checkpoints of
 * the same seed against it. */
static void check_values(chk *c, const char *f32, const char *bf16, const char *fp8,
                         const char *label)
{
    model *a = NULL, *b = NULL, *q = NULL;
    vl_err e = {0};
    if (model_open(&a, f32, &e) || model_open(&b, bf16, &e) || model_open(&q, fp8, &e)) {
        CHECK(c, 0, "%s: open for values: %s", label, e.msg);
        model_close(a);
        model_close(b);
        return;
    }
    int bad_norm = 0, bad_bias = 0, bad_range = 0, bad_bf = 0, bad_q = 0, n_fp8 = 0;
    int bad_std = 0, bad_tid = 0;
    model_weights *wa = (model_weights *)model_base(a), *wb = (model_weights *)model_base(b),
                  *wq = (model_weights *)model_base(q);
    int E = model_config(a)->n_experts;
    for (size_t i = 0; i < model_tensor_count(a); i++) {
        const model_tensor *t = model_tensor_at(a, i);
        const float *x = *model_weights_slot(a, wa, i), *y = *model_weights_slot(b, wb, i),
                    *z = *model_weights_slot(q, wq, i);
        size_t nl = strlen(t->name);
        int norm = nl > 11 && !strcmp(t->name + nl - 11, "norm.weight");
        int bias = nl > 5 && !strcmp(t->name + nl - 5, ".bias");
        int tid = nl > 8 && !strcmp(t->name + nl - 8, ".tid2eid");
        int one = norm || (nl > 6 && !strcmp(t->name + nl - 6, "_scale"));
        int is8 = model_tensor_at(q, i)->stored_dtype == ST_F8_E4M3;
        n_fp8 += is8;
        double a_lim = sqrt(3.0 / t->cols), ss = 0;
        for (int64_t k = 0; k < t->numel; k++) {
            ss += (double)x[k] * x[k];
            bad_norm += norm && x[k] != 1.0f;
            bad_bias += bias && x[k] != 0.0f;
            bad_range += !one && !tid && fabs(x[k]) > a_lim * (1 + 1e-6);
            bad_bf += fabs(y[k] - x[k]) > fabs(x[k]) / 256 + 1e-30;
            /* e4m3: 3 mantissa bits (half step 2^-4 relative), subnormal step 2^-9 · scale,
             * scale ≤ a_lim / 448 */
            bad_q += is8 && fabs(z[k] - x[k]) > fabs(x[k]) / 16 + a_lim / 448 / 1024 * 1.01;
        }
        if (tid)
            for (int64_t r = 0; r < t->rows; r++)
                for (int k = 0; k < t->cols; k++) {
                    float v = x[r * t->cols + k];
                    bad_tid += !(v >= 0 && v < E && v == floorf(v));
                    for (int j = 0; j < k; j++)
                        bad_tid += x[r * t->cols + j] == v;
                }
        double sd = sqrt(ss / (double)t->numel), want = 1 / sqrt((double)t->cols);
        if (!norm && !bias && !tid && t->numel >= 4096 && strstr(t->name, ".weight"))
            bad_std += fabs(sd - want) > 0.05 * want;
    }
    CHECK(c, bad_norm == 0 && bad_bias == 0, "%s: norms 1, biases 0 (%d, %d off)", label,
          bad_norm, bad_bias);
    CHECK(c, bad_range == 0, "%s: every value within ±sqrt(3/cols) (%d outside)", label,
          bad_range);
    CHECK(c, bad_std == 0, "%s: random weights have sd 1/sqrt(cols) ±5%% (%d tensors off)",
          label, bad_std);
    CHECK(c, bad_bf == 0, "%s: bf16 = f32 rounded (%d off)", label, bad_bf);
    CHECK(c, n_fp8 > 0 && bad_q == 0, "%s: %d fp8 tensors = f32 within e4m3 rounding (%d off)",
          label, n_fp8, bad_q);
    CHECK(c, bad_tid == 0, "%s: tid2eid rows are distinct expert ids (%d off)", label, bad_tid);
    model_close(a);
    model_close(b);
    model_close(q);
}

static const char *const families[][2] = {
    {"tests/fixtures/llama-dense/config.json", "llama"},
    {"tests/fixtures/qwen3-dense/config.json", "qwen3"},
    {"QWEN2", "qwen2"},
    {"models/vbrlab-moe-tiny/config.json", "qwen2_moe"},
    {"tests/fixtures/qwen3-moe/config.json", "qwen3_moe"},
    {"tests/fixtures/mixtral/config.json", "mixtral"},
    {"tests/fixtures/tiny-deepseek-v3/config.json", "deepseek_v3"},
    {"tests/fixtures/tiny-deepseek-v4/config.json", "deepseek_v4"},
};

static void test_families(chk *c)
{
    char qwen2[300];
    snprintf(qwen2, sizeof qwen2, "%s/qwen2.json", g_tmp);
    FILE *f = fopen(qwen2, "w");
    fputs("{\"model_type\": \"qwen2\", \"vocab_size\": 512, \"hidden_size\": 64, "
          "\"intermediate_size\": 96, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
          "\"num_key_value_heads\": 2, \"rope_theta\": 10000.0, \"rms_norm_eps\": 1e-6, "
          "\"tie_word_embeddings\": false, \"hidden_act\": \"silu\"}\n", f);
    fclose(f);
    static const st_dtype dts[3] = {ST_F32, ST_BF16, ST_F8_E4M3};
    static const char *const dn[3] = {"f32", "bf16", "fp8"};
    for (size_t k = 0; k < sizeof families / sizeof *families; k++) {
        const char *cfg = strcmp(families[k][0], "QWEN2") ? families[k][0] : qwen2;
        char out[3][400], label[80];
        for (int d = 0; d < 3; d++) {
            snprintf(out[d], sizeof out[d], "%s/%s-%s", g_tmp, families[k][1], dn[d]);
            snprintf(label, sizeof label, "%s %s", families[k][1], dn[d]);
            vl_err e = {0};
            synth_report r;
            /* small shards: several files, weights and their scales kept together */
            int rc = synth(cfg, out[d], dts[d], 11, 100000, NULL, &r, &e);
            CHECK(c, rc == 0 && r.n_shards > 1, "%s: synth (%d shards)%s%s", label, r.n_shards,
                  rc ? ": " : "", rc ? e.msg : "");
            if (rc == 0 && d > 0)
                check_forward(c, out[d], label);
        }
        check_values(c, out[0], out[1], out[2], families[k][1]);
    }
}

/* Same seed, same bytes; another seed, other bytes; FP8 scales share their weight's shard. */
static void test_determinism(chk *c)
{
    const char *cfg = "tests/fixtures/tiny-deepseek-v3/config.json";
    char a[300], b[300], d[300], pa[400], pb[400];
    snprintf(a, sizeof a, "%s/det-a", g_tmp);
    snprintf(b, sizeof b, "%s/det-b", g_tmp);
    snprintf(d, sizeof d, "%s/det-d", g_tmp);
    vl_err e = {0};
    synth_report r;
    int rc = synth(cfg, a, ST_F8_E4M3, 5, 1000000, NULL, &r, &e) ||
             synth(cfg, b, ST_F8_E4M3, 5, 1000000, NULL, &r, &e) ||
             synth(cfg, d, ST_F8_E4M3, 6, 1000000, NULL, &r, &e);
    CHECK(c, rc == 0, "determinism: three synths%s%s", rc ? ": " : "", rc ? e.msg : "");
    int same = 1, diff = 0;
    static const char *const fixed[] = {"config.json", "model.safetensors.index.json"};
    for (int k = 0; k < 2; k++) {
        snprintf(pa, sizeof pa, "%s/%s", a, fixed[k]);
        snprintf(pb, sizeof pb, "%s/%s", b, fixed[k]);
        same &= files_equal(pa, pb);
    }
    for (int s = 1; s <= r.n_shards; s++) {
        char name[64], pd[400];
        snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s, r.n_shards);
        snprintf(pa, sizeof pa, "%s/%s", a, name);
        snprintf(pb, sizeof pb, "%s/%s", b, name);
        snprintf(pd, sizeof pd, "%s/%s", d, name);
        same &= files_equal(pa, pb);
        diff += !files_equal(pa, pd);
    }
    CHECK(c, r.n_shards >= 3 && same, "same seed: identical bytes in all %d shards", r.n_shards);
    CHECK_INT(c, diff, r.n_shards, "another seed: every shard differs");
    /* every "_scale_inv" sits in the shard of its weight */
    snprintf(pa, sizeof pa, "%s/model.safetensors.index.json", a);
    char *idx = tio_slurp(pa, NULL);
    int apart = 0, pairs = 0;
    for (char *p = idx ? strstr(idx, "_scale_inv\"") : NULL; p; p = strstr(p + 1, "_scale_inv\"")) {
        char *q = p;
        while (q > idx && *q != '"')
            q--;
        char wname[200], want[240], *loc;
        snprintf(wname, sizeof wname, "%.*s\"", (int)(p - q), q);
        const char *sfile = strstr(p, "\"model-"), *wfile;
        loc = strstr(idx, wname);
        wfile = loc ? strstr(loc, "\"model-") : NULL;
        snprintf(want, sizeof want, "%.30s", sfile ? sfile : "");
        apart += !wfile || strncmp(wfile, want, 30);
        pairs++;
    }
    free(idx);
    CHECK(c, pairs > 10 && apart == 0, "fp8: %d weight/scale pairs, %d in different shards",
          pairs, apart);
}

/* Failures leave neither the output nor a temporary directory behind. */
static void test_failures(chk *c)
{
    char bad[300], out[300], exists[300], path[400];
    snprintf(bad, sizeof bad, "%s/bad.json", g_tmp);
    snprintf(out, sizeof out, "%s/fail-out", g_tmp);
    FILE *f = fopen(bad, "w");
    fputs("{\"model_type\": \"llama\", \"vocab_size\": 64, \"hidden_size\": 32}\n", f);
    fclose(f);
    vl_err e = {0};
    int rc = synth(bad, out, ST_BF16, 1, 1 << 20, NULL, NULL, &e);
    CHECK(c, rc == VL_ECONFIG, "bad config: VL_ECONFIG (%d)", rc);
    CHECK_HAS(c, e.msg, "bad.json", "bad config: message names the file");
    CHECK(c, access(out, F_OK) != 0, "bad config: no output directory");
    rc = synth("tests/fixtures/mixtral/config.json", out, ST_BF16, 1, 1 << 20, g_tmp, NULL, &e);
    CHECK(c, rc == VL_ENOTFOUND, "missing tokenizer.json at the end: error (%d: %s)", rc, e.msg);
    CHECK(c, access(out, F_OK) != 0, "failure after the shards: no output directory");
    CHECK_INT(c, count_prefix("fail-out.synth-"), 0, "failure: no temporary directory left");
    snprintf(exists, sizeof exists, "%s/exists", g_tmp);
    mkdir(exists, 0755);
    snprintf(path, sizeof path, "%s/keep", exists);
    fclose(fopen(path, "w"));
    rc = synth("tests/fixtures/mixtral/config.json", exists, ST_BF16, 1, 1 << 20, NULL, NULL, &e);
    CHECK(c, rc == VL_EARG && access(path, F_OK) == 0,
          "non-empty output directory: refused, its file kept (%d)", rc);
    unlink(path);
    rc = synth("tests/fixtures/mixtral/config.json", exists, ST_BF16, 1, 1 << 20,
               "models/vbrlab-moe-tiny", NULL, &e);
    snprintf(path, sizeof path, "%s/tokenizer.json", exists);
    CHECK(c, rc == 0 && files_equal(path, "models/vbrlab-moe-tiny/tokenizer.json"),
          "empty output directory: replaced, tokenizer copied%s%s", rc ? ": " : "",
          rc ? e.msg : "");
    /* the CLI: one line, exit 1 */
    const char *bin = getenv("VBRLAB_BIN") ? getenv("VBRLAB_BIN") : "build/vbrlab";
    char cmd[1200], got[2048];
    snprintf(cmd, sizeof cmd, "%s synth %s -o %s/cli-out 2>&1", bin, bad, g_tmp);
    rc = tio_run(cmd, got, sizeof got);
    int one_line = strchr(got, '\n') == got + strlen(got) - 1;
    got[strcspn(got, "\n")] = '\0';
    CHECK(c, rc == 1 && !strncmp(got, "vbrlab synth: ", 14) && one_line,
          "CLI bad config: exit 1, one line (%d: %s)", rc, got);
    snprintf(cmd, sizeof cmd, "%s synth tests/fixtures/mixtral/config.json -o %s/cli-out "
             "--dtype fp4 2>&1", bin, g_tmp);
    rc = tio_run(cmd, got, sizeof got);
    got[strcspn(got, "\n")] = '\0';
    CHECK(c, rc == 1 && strstr(got, "--dtype 'fp4'"), "CLI bad dtype refused (%d: %s)", rc, got);
}

/* Every e4m3 code decodes and re-encodes to itself; random floats go to the nearest code. */
static void test_e4m3(chk *c)
{
    int bad = 0;
    for (int b = 0; b < 256; b++) {
        if ((b & 0x7f) == 0x7f)
            continue;
        bad += st_f32_to_f8e4m3(st_f8e4m3_to_f32((uint8_t)b)) != b;
    }
    CHECK_INT(c, bad, 0, "e4m3: 254 codes round-trip");
    rng *r = NULL;
    vl_err e = {0};
    rng_new(&r, 9, &e);
    int far = 0, ties = 0;
    for (int i = 0; i < 20000; i++) {
        double m = rng_uniform(r) * 2 - 1;
        float x = (float)(m * ldexp(1.0, (int)rng_uniform_int(r, 22) - 12));
        float y = st_f8e4m3_to_f32(st_f32_to_f8e4m3(x));
        double best = INFINITY;
        for (int b = 0; b < 256; b++)
            if ((b & 0x7f) != 0x7f)
                best = fmin(best, fabs(st_f8e4m3_to_f32((uint8_t)b) - (double)x));
        double d = fabs(y - (double)x);
        far += fabs(x) <= 448 ? d > best : y != copysignf(448.0f, x);
        ties += d == best && fabs(x) <= 448;
    }
    rng_free(r);
    CHECK(c, far == 0 && ties > 10000, "e4m3: 20000 random floats to the nearest code, 448 "
          "saturation (%d off)", far);
    CHECK_INT(c, st_f32_to_f8e4m3(0.0048828125f), 0x02, "e4m3: 2.5·2^-9 ties to even (2·2^-9)");
    CHECK_INT(c, st_f32_to_f8e4m3(-1.0625f), 0xb8, "e4m3: -1.0625 ties to even (-1)");
    CHECK_INT(c, st_f32_to_bf16(1.00390625f), 0x3f80, "bf16: 1+2^-8 ties to even (1)");
    CHECK_INT(c, st_f32_to_bf16(1.01171875f), 0x3f82, "bf16: 1+3·2^-8 ties to even");
}

/* The streaming writer: too few or too many bytes are errors and leave no file. */
static void test_writer(chk *c)
{
    char path[300], tmp[320];
    snprintf(path, sizeof path, "%s/w.safetensors", g_tmp);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    const char *names[2] = {"a", "b"};
    st_dtype dt[2] = {ST_F32, ST_BF16};
    int nd[2] = {1, 2};
    int64_t sh[2][ST_MAX_DIMS] = {{3}, {2, 2}};
    uint8_t bytes[64] = {0};
    st_writer *w = NULL;
    vl_err e = {0};
    int rc = st_writer_open(&w, path, 2, names, dt, nd, (const int64_t(*)[ST_MAX_DIMS])sh, &e);
    if (rc == 0)
        rc = st_writer_put(w, bytes, 19, &e);
    if (rc == 0)
        rc = st_writer_close(w, &e);
    CHECK(c, rc == VL_EARG && strstr(e.msg, "\"b\" short of 1"), "writer: short stream (%s)",
          e.msg);
    CHECK(c, access(path, F_OK) != 0 && access(tmp, F_OK) != 0, "writer: short leaves no file");
    rc = st_writer_open(&w, path, 2, names, dt, nd, (const int64_t(*)[ST_MAX_DIMS])sh, &e);
    int rc2 = rc ? rc : st_writer_put(w, bytes, 21, &e);
    if (w && rc == 0)
        st_writer_abort(w);
    CHECK(c, rc2 == VL_EARG && access(tmp, F_OK) != 0, "writer: long stream refused (%s)",
          e.msg);
    for (int i = 0; i < 20; i++)
        bytes[i] = (uint8_t)(i * 11);
    rc = st_writer_open(&w, path, 2, names, dt, nd, (const int64_t(*)[ST_MAX_DIMS])sh, &e);
    for (int i = 0; rc == 0 && i < 20; i += 7) /* pieces across the tensor boundary */
        rc = st_writer_put(w, bytes + i, i + 7 <= 20 ? 7 : 20 - (size_t)i, &e);
    if (rc == 0)
        rc = st_writer_close(w, &e);
    st_set *s = NULL;
    if (rc == 0)
        rc = st_set_open(&s, path, &e);
    const st_tensor *tb = s ? st_set_find(s, "b") : NULL;
    CHECK(c, rc == 0 && tb && !memcmp(tb->data, bytes + 12, 8),
          "writer: pieces across tensors read back%s%s", rc ? ": " : "", rc ? e.msg : "");
    st_set_close(s);
}

int main(void)
{
    chk c;
    chk_init(&c, "synth");
    snprintf(g_tmp, sizeof g_tmp, "/tmp/vbrlab-synth-XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 2;
    }
    test_e4m3(&c);
    test_writer(&c);
    test_families(&c);
    test_determinism(&c);
    test_failures(&c);
    rm_flat(g_tmp);
    return chk_done(&c);
}
