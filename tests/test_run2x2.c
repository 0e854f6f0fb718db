/* tests/test_run2x2.c — `vbrlab run` with the evidence features end to end on the embedded
 * model: the 2×2 design (allocation set × statistics set over {en, zh}) with 2 replicates.
 *
 * Checks, all read back from the stores: the four allocations and their /eval rows carry four
 * distinct (alloc_set, stats_set) pairs, and the row's statistics are stats_set's; allocations
 * from the same set are the same assignment while the statistics change the measured KLD;
 * replicate 1 lives in its own store, draws its corpus sets as disjoint slices (no sequence in
 * common with replicate 0) and records how; the report prints mean ± CI, the paired table and
 * the verdict; a second run is all cache hits and prints the same report.
 */
#define _POSIX_C_SOURCE 200809L
#include "../experiments/expcfg.h"
#include "../experiments/runner.h"
#include "../io/h5s.h"
#include "check.h"
#include "testio.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const cells[4][3] = {
    {"en_en", "en", "en"}, {"en_zh", "en", "zh"}, {"zh_en", "zh", "en"}, {"zh_zh", "zh", "zh"}};

static void write_config(const char *path, const char *out)
{
    FILE *f = fopen(path, "w");
    if (!f)
        exit(2);
    fprintf(f, "[experiment]\nname = t2x2\nseed = 3\nout = %s\nreplicates = 2\n"
            "[calib.en]\nsource = data/corpus/en.calib.txt\nseqs = 2\nlen = 32\n"
            "[calib.zh]\nsource = data/corpus/zh.calib.txt\nseqs = 2\nlen = 32\n"
            "[eval.zh]\nsource = data/corpus/zh.eval.txt\nseqs = 3\nlen = 32\n"
            "[quant]\nformats = rtn:b=2..3:g=64\n"
            "[sens]\neps = 0.01\ngranularity = group\ndraws = 1\n", out);
    for (int i = 0; i < 4; i++)
        fprintf(f, "[alloc.%s]\nalloc_set = %s\nstats_set = %s\ngranularity = group\n"
                "target_bpw = 2.5\n", cells[i][0], cells[i][1], cells[i][2]);
    fprintf(f, "[claim.alloc]\ntext = allocation from en hurts zh\n"
            "tests = en_zh-2.5 > zh_zh-2.5 @ zh\n"
            "[report]\ntables = kld_matrix\nplots = none\n");
    fclose(f);
}

/* One run of the config at PATH; REPLICATE −1: every replicate then the report, else only
 * replicate K's chain (`vbrlab run --replicate K`). */
static int run_rep(const char *path, int replicate, char *log, size_t cap, char **md,
                   vl_err *err)
{
    exp_config cfg;
    int rc = exp_config_parse(path, &cfg, err);
    if (rc)
        return rc;
    size_t mlen = 0;
    FILE *lf = fmemopen(log, cap, "w"), *mf = open_memstream(md, &mlen);
    run_opts o = run_opts_defaults();
    o.model_dir = "models/vbrlab-moe-tiny";
    o.log = lf;
    o.out = mf;
    o.replicate = replicate;
    rc = run_experiment(&cfg, &o, err);
    fclose(lf);
    fclose(mf);
    exp_config_free(&cfg);
    return rc;
}

static int run_cfg(const char *path, char *log, size_t cap, char **md, vl_err *err)
{
    return run_rep(path, -1, log, cap, md, err);
}

static int count_of(const char *log, const char *what)
{
    int n = 0;
    for (const char *p = log; (p = strstr(p, what)); p++)
        n++;
    return n;
}

/* Replicates run as separate processes (`--replicate K`, in either order) and a later plain
 * run: that run finds every replicate's stages cached and prints the report of the one-process
 * run (REF) byte for byte. */
static void check_separate(chk *c, const char *ref)
{
    char dir[] = "/tmp/vbrlab-run2x2r-XXXXXX", cfg[128], out[128], rep1[128];
    if (!mkdtemp(dir)) {
        CHECK(c, 0, "temp dir");
        return;
    }
    snprintf(cfg, sizeof cfg, "%s/t.ini", dir);
    snprintf(out, sizeof out, "%s/t.h5", dir);
    snprintf(rep1, sizeof rep1, "%s/t.rep1.h5", dir);
    write_config(cfg, out);
    static char log[16384];
    char *md = NULL;
    vl_err err = {0};
    int rc = run_rep(cfg, 1, log, sizeof log, &md, &err);
    CHECK(c, rc == 0, "--replicate 1 alone (%s)", rc ? err.msg : "ok");
    CHECK(c, access(rep1, F_OK) == 0 && access(out, F_OK) != 0,
          "--replicate 1 writes only replicate 1's store");
    CHECK(c, md && !md[0], "--replicate 1 prints no report");
    free(md);
    md = NULL;
    rc = run_rep(cfg, 0, log, sizeof log, &md, &err);
    CHECK(c, rc == 0 && count_of(log, ": done") > 0 && count_of(log, "rep1/") == 0,
          "--replicate 0 runs only replicate 0's chain (%s)", rc ? err.msg : "ok");
    free(md);
    md = NULL;
    rc = run_rep(cfg, 2, log, sizeof log, &md, &err);
    CHECK(c, rc == VL_EARG, "--replicate 2 of 2 replicates is refused");
    free(md);
    md = NULL;
    rc = run_cfg(cfg, log, sizeof log, &md, &err);
    int done = count_of(log, ": done");
    CHECK(c, rc == 0 && done == 1 && strstr(log, "report: done"),
          "plain run after the replicates: only the report is computed (%d done)", done);
    /* the first line names the config file, whose directory differs */
    const char *a = md ? strchr(md, '\n') : NULL, *b = ref ? strchr(ref, '\n') : NULL;
    CHECK(c, a && b && strlen(a) > 100 && !strcmp(a, b),
          "the report equals the one-process run's byte for byte after its title line");
    free(md);
    if (!c->fail) {
        char p[160];
        const char *names[] = {"t.ini", "t.h5", "t.md", "t.rep1.h5"};
        for (int i = 0; i < 4; i++) {
            snprintf(p, sizeof p, "%s/%s", dir, names[i]);
            unlink(p);
        }
        rmdir(dir);
    }
}

static char *attr(h5s_store *s, const char *g, const char *name)
{
    char *v = NULL;
    vl_err e = {0};
    if (h5s_attr_get(s, g, name, &v, &e))
        return NULL;
    return v;
}

static double kld_of(h5s_store *s, const char *row)
{
    char p[128];
    double *v = NULL, t = 0;
    int nd = 0;
    int64_t sh[H5S_MAX_DIMS];
    snprintf(p, sizeof p, "/eval/%s-2.5/zh/kld", row);
    vl_err e = {0};
    if (h5s_read(s, p, H5S_F64, (void **)&v, &nd, sh, &e))
        return -1;
    for (int64_t i = 0; i < sh[0] * sh[1]; i++)
        t += v[i];
    vl_free(v);
    return t;
}

static void check_cells(chk *c, h5s_store *s)
{
    char pairs[4][64];
    char *assign[4] = {0};
    double kld[4];
    for (int i = 0; i < 4; i++) {
        char g[64], e[64];
        snprintf(g, sizeof g, "/alloc/%s-2.5", cells[i][0]);
        snprintf(e, sizeof e, "/eval/%s-2.5", cells[i][0]);
        char *as = attr(s, g, "alloc_set"), *ss = attr(s, g, "stats_set"), *cal = attr(s, e, "calib"), *acal = attr(s, g, "calib");
        CHECK(c, as && ss && !strcmp(as, cells[i][1]) && !strcmp(ss, cells[i][2]),
              "%s: /alloc records alloc_set %s, stats_set %s", cells[i][0], cells[i][1],
              cells[i][2]);
        CHECK(c, cal && acal && !strcmp(cal, cells[i][2]) && !strcmp(acal, cells[i][2]),
              "%s: the row was quantized with stats_set's statistics", cells[i][0]);
        snprintf(pairs[i], sizeof pairs[i], "%s/%s", as ? as : "?", ss ? ss : "?");
        assign[i] = attr(s, g, "assignment");
        kld[i] = kld_of(s, cells[i][0]);
        vl_free(as), vl_free(ss), vl_free(cal), vl_free(acal);
    }
    int distinct = 1;
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            distinct &= strcmp(pairs[i], pairs[j]) != 0;
    CHECK(c, distinct, "four distinct allocation/statistics pairs");
    CHECK(c, assign[0] && assign[1] && !strcmp(assign[0], assign[1]) && assign[2] &&
                 assign[3] && !strcmp(assign[2], assign[3]),
          "the allocation depends on alloc_set only");
    CHECK(c, assign[0] && assign[2] && strcmp(assign[0], assign[2]),
          "en and zh sensitivities give different allocations");
    CHECK(c, kld[0] > 0 && kld[1] > 0 && kld[0] != kld[1] && kld[2] != kld[3],
          "the statistics change the measured KLD (%g vs %g, %g vs %g)", kld[0], kld[1], kld[2],
          kld[3]);
    for (int i = 0; i < 4; i++)
        vl_free(assign[i]);
}

/* No sequence of set NAME in store A equals one in store B. */
static int disjoint(h5s_store *a, h5s_store *b, const char *name)
{
    char p[64];
    snprintf(p, sizeof p, "/sets/%s/input_ids", name);
    int32_t *x = NULL, *y = NULL;
    int nd = 0;
    int64_t sa[H5S_MAX_DIMS], sb[H5S_MAX_DIMS];
    if (h5s_read(a, p, H5S_I32, (void **)&x, &nd, sa, NULL) ||
        h5s_read(b, p, H5S_I32, (void **)&y, &nd, sb, NULL) || sa[1] != sb[1]) {
        vl_free(x);
        return 0;
    }
    int ok = 1;
    for (int64_t i = 0; i < sa[0]; i++)
        for (int64_t j = 0; j < sb[0]; j++)
            ok &= memcmp(x + i * sa[1], y + j * sb[1], (size_t)sa[1] * sizeof *x) != 0;
    vl_free(x);
    vl_free(y);
    return ok;
}

int main(void)
{
    chk c;
    chk_init(&c, "run2x2");
    char dir[] = "/tmp/vbrlab-run2x2-XXXXXX", cfg[128], out[128], rep1[128];
    if (!mkdtemp(dir))
        return 2;
    snprintf(cfg, sizeof cfg, "%s/t.ini", dir);
    snprintf(out, sizeof out, "%s/t.h5", dir);
    snprintf(rep1, sizeof rep1, "%s/t.rep1.h5", dir);
    write_config(cfg, out);

    static char log[16384];
    char *md = NULL, *md2 = NULL;
    vl_err err = {0};
    int rc = run_cfg(cfg, log, sizeof log, &md, &err);
    CHECK(&c, rc == 0, "2×2 run with 2 replicates (%s)", rc ? err.msg : "ok");
    CHECK_HAS(&c, log, "rep1/eval: done", "replicate 1 ran its own chain");
    h5s_store *s0 = NULL, *s1 = NULL;
    CHECK(&c, !rc && !h5s_open(&s0, out, NULL) && !h5s_open(&s1, rep1, NULL),
          "both replicate stores exist");
    if (s0 && s1) {
        check_cells(&c, s0);
        check_cells(&c, s1);
        CHECK(&c, disjoint(s0, s1, "en") && disjoint(s0, s1, "zh"),
              "replicates draw disjoint corpus sequences");
        char *draws = attr(s1, "/sets", "replicate_draws");
        CHECK(&c, draws && !strcmp(draws, "en:disjoint,zh:disjoint"), "replicate 1 records its "
              "draws: %s", draws ? draws : "(none)");
        vl_free(draws);
        CHECK(&c, !h5s_exists(s1, "/stages/report") && h5s_exists(s0, "/stages/report"),
              "the report lives in OUT only");
        /* the evaluation domains are the same sequences in every replicate */
        int32_t *e0 = NULL, *e1 = NULL;
        int nd = 0;
        int64_t sh0[H5S_MAX_DIMS], sh1[H5S_MAX_DIMS];
        CHECK(&c, !h5s_read(s0, "/eval/domains/zh/ids", H5S_I32, (void **)&e0, &nd, sh0, NULL) &&
                      !h5s_read(s1, "/eval/domains/zh/ids", H5S_I32, (void **)&e1, &nd, sh1,
                                NULL) &&
                      sh0[0] == sh1[0] && !memcmp(e0, e1, (size_t)(sh0[0] * sh0[1]) * 4),
              "eval domains fixed across replicates");
        vl_free(e0);
        vl_free(e1);
    }
    h5s_close(s0);
    h5s_close(s1);
    CHECK_HAS(&c, md, "2 replicates", "report: replicate note");
    CHECK_HAS(&c, md, " ± ", "report: mean ± CI cells");
    CHECK_HAS(&c, md, "| calibration | en_en-2.5 (", "report: paired comparison");
    CHECK_HAS(&c, md, "| allocation from en hurts zh | `en_zh-2.5 > zh_zh-2.5 @ zh` |",
              "report: verdict line");

    rc = run_cfg(cfg, log, sizeof log, &md2, &err);
    CHECK(&c, rc == 0, "second run");
    int cached = count_of(log, ": cached"), done = count_of(log, ": done");
    CHECK(&c, cached == 2 * (1 + 1 + 4 + 1) + 1 && done == 0,
          "second run: every stage cached (%d cached, %d done)", cached, done);
    CHECK(&c, md && md2 && !strcmp(md, md2), "second run prints the same report");
    check_separate(&c, md);
    free(md);
    free(md2);
    if (!c.fail) {
        char p[160];
        const char *names[] = {"t.ini", "t.h5", "t.md", "t.rep1.h5"};
        for (int i = 0; i < 4; i++) {
            snprintf(p, sizeof p, "%s/%s", dir, names[i]);
            unlink(p);
        }
        rmdir(dir);
    }
    return chk_done(&c);
}
