/* tests/test_runner.c — `vbrlab run` end to end on tests/data/run-tiny.ini (embedded model,
 * one calibration set and one domain of 2 × 32 tokens, RTN 2..3 bits, group allocation at
 * 2.5 bpw).
 *
 * Checks: config errors through the CLI carry FILE:LINE and leave no store; --only on a store
 * without its inputs is refused; a run stopped after the stats stage (the runner's test hook,
 * a killed run's state) resumes with "stats: cached"; the finished store has every stage record
 * and the tables (stdout and OUT.md); a second run is all cache hits and leaves the file
 * byte-identical; a second fresh run into another file gives identical datasets (every dataset
 * compared byte for byte in its stored type); changing target_bpw reruns exactly alloc, eval
 * and report (stage keys of stats and sens unchanged, of alloc/eval/report changed); per-item
 * commit (tests/data/run-items.ini): sens and eval stages failing mid-way (run_opts.fault)
 * resume from their journals and end with the uninterrupted run's datasets.
 */
#define _POSIX_C_SOURCE 200809L
#include "../experiments/expcfg.h"
#include "../experiments/runner.h"
#include "../io/h5s.h"
#include "check.h"
#include "testio.h"
#include "testrun.h"

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TINY_INI "tests/data/run-tiny.ini"

static char dir[128];

/* ---------------------------------------------------------------- helpers */


/* SRC (an ini) with `out` replaced by DIR/OUT and target_bpw by TARGET, written to DIR/NAME. */
static void make_config_from(const char *src_ini, const char *name, const char *out,
                             const char *target, char *path, size_t cap)
{
    char *src = tio_slurp(src_ini, NULL);
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    for (char *line = src, *next; f && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (!strncmp(line, "out =", 5))
            fprintf(f, "out = %s/%s\n", dir, out);
        else if (!strncmp(line, "target_bpw =", 12))
            fprintf(f, "target_bpw = %s\n", target);
        else
            fprintf(f, "%s\n", line);
    }
    if (f)
        fclose(f);
    free(src);
}

static void make_config(const char *name, const char *out, const char *target, char *path,
                        size_t cap)
{
    make_config_from(TINY_INI, name, out, target, path, cap);
}

/* Run config PATH through the library with the log captured into log[cap]; FAULT (may be
 * NULL) the simulated crash, FORCE run_opts.force. */
static int run_cfg_fault(const char *path, par_fault *fault, int force, char *log, size_t cap,
                         vl_err *err)
{
    run_opts o = run_opts_defaults();
    o.fault = fault;
    o.force = force;
    return trun(path, o, log, cap, err);
}

/* Run config PATH through the library with the log captured into log[cap]. */
static int run_cfg(const char *path, int stop_after, char *log, size_t cap, vl_err *err)
{
    run_opts o = run_opts_defaults();
    o.stop_after = stop_after;
    return trun(path, o, log, cap, err);
}

static int run_cli(const char *args, char *out, size_t cap)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "run %s", args);
    return tio_vbrlab(cmd, out, cap);
}

static char *attr(const char *file, const char *obj, const char *name)
{
    h5s_store *s = NULL;
    char *v = NULL;
    vl_err e;
    if (!h5s_open(&s, file, &e))
        h5s_attr_get(s, obj, name, &v, &e);
    h5s_close(s);
    return v;
}

/* Every dataset of A equals B's (same list, shape, stored type, bytes); returns the count of
 * datasets compared, −1 on any difference (reported). */
static int same_datasets(chk *c, const char *a, const char *b)
{
    static const struct { const char *name; h5s_dtype t; size_t size; } types[] = {
        {"f32", H5S_F32, 4}, {"f64", H5S_F64, 8}, {"i32", H5S_I32, 4}, {"i64", H5S_I64, 8},
        {"u8", H5S_U8, 1}};
    h5s_store *sa = NULL, *sb = NULL;
    vl_err e;
    char *da = NULL, *db = NULL;
    size_t la = 0, lb = 0;
    FILE *fa = open_memstream(&da, &la), *fb = open_memstream(&db, &lb);
    int ok = !h5s_open(&sa, a, &e) && !h5s_open(&sb, b, &e) && !h5s_dump(sa, fa, &e) &&
             !h5s_dump(sb, fb, &e);
    fclose(fa);
    fclose(fb);
    int n = 0;
    for (char *line = ok ? da : NULL, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char path[512], ty[16];
        if (sscanf(line, "DATASET %511s %15s", path, ty) != 2)
            continue;
        size_t k = 0;
        while (k < 5 && strcmp(types[k].name, ty))
            k++;
        if (k == 5) {
            CHECK(c, 0, "%s: dataset type %s known to the test", path, ty);
            ok = 0;
            continue;
        }
        void *va = NULL, *vb = NULL;
        int na = 0, nb = 0;
        int64_t sha[H5S_MAX_DIMS], shb[H5S_MAX_DIMS];
        int ra = h5s_read(sa, path, types[k].t, &va, &na, sha, &e);
        int rb = h5s_read(sb, path, types[k].t, &vb, &nb, shb, &e);
        size_t cnt = 1;
        int same = !ra && !rb && na == nb;
        for (int d = 0; same && d < na; d++) {
            same = sha[d] == shb[d];
            cnt *= (size_t)sha[d];
        }
        same = same && !memcmp(va, vb, cnt * types[k].size);
        if (!same) {
            CHECK(c, 0, "dataset %s identical in %s and %s", path, a, b);
            ok = 0;
        }
        free(va);
        free(vb);
        n++;
    }
    /* the same set of datasets: dataset lines of the dumps agree */
    h5s_close(sa);
    h5s_close(sb);
    free(da);
    free(db);
    return ok ? n : -1;
}

/* The test's scratch directory (flat: files only). */
static void remove_dir(const char *d)
{
    DIR *dp = opendir(d);
    struct dirent *de;
    while (dp && (de = readdir(dp))) {
        char p[512];
        if (de->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", d, de->d_name);
        unlink(p);
    }
    if (dp)
        closedir(dp);
    rmdir(d);
}

/* ---------------------------------------------------------------- tests */

static void test_config_errors(chk *c)
{
    char path[256], buf[4096];
    snprintf(path, sizeof path, "%s/bad.ini", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "[experiment]\nname = bad\nout = %s/bad.h5\ncolour = blue\n", dir);
    fclose(f);
    int st = run_cli(path, buf, sizeof buf);
    CHECK(c, st != 0, "unknown key: exit status %d is non-zero", st);
    char want[300];
    snprintf(want, sizeof want, "vbrlab run: %s:4: [experiment] colour", path);
    CHECK_HAS(c, buf, want, "unknown key error with file:line");
    char h5[256];
    snprintf(h5, sizeof h5, "%s/bad.h5", dir);
    CHECK(c, access(h5, F_OK) != 0, "no store written for a bad config");

    st = run_cli("tests/data/no-such-config.ini", buf, sizeof buf);
    CHECK(c, st != 0 && strstr(buf, "no-such-config.ini"), "missing config named: %s", buf);

    /* --only eval needs stats, sens and alloc done */
    char cfgp[256], args[400];
    make_config("only.ini", "only.h5", "2.5", cfgp, sizeof cfgp);
    snprintf(args, sizeof args, "%s --only eval", cfgp);
    st = run_cli(args, buf, sizeof buf);
    CHECK(c, st != 0, "--only eval on an empty store fails");
    CHECK_HAS(c, buf, "--only eval: input stage stats is not done", "--only message");
    snprintf(args, sizeof args, "%s --only nonsense", cfgp);
    st = run_cli(args, buf, sizeof buf);
    CHECK_HAS(c, buf, "unknown stage \"nonsense\"", "bad stage name");
}

/* The attribute lines ("  @name type = value") of object OBJ in FILE's h5s_dump, into a
 * malloc'd string ("" when the object has none; NULL when the file cannot be read). */
static char *object_attrs(const char *file, const char *obj)
{
    h5s_store *s = NULL;
    vl_err e;
    char *dump = NULL, *out = NULL;
    size_t n = 0, m = 0;
    FILE *f = open_memstream(&dump, &n), *o = open_memstream(&out, &m);
    int ok = !h5s_open(&s, file, &e) && !h5s_dump(s, f, &e);
    h5s_close(s);
    fclose(f);
    char head[256];
    snprintf(head, sizeof head, "GROUP %s", obj);
    int in = 0;
    for (char *line = ok ? dump : NULL, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (!strncmp(line, "  @", 3)) {
            if (in)
                fprintf(o, "%s\n", line);
        } else {
            in = !strcmp(line, head);
        }
    }
    fclose(o);
    free(dump);
    if (!ok) {
        free(out);
        return NULL;
    }
    return out;
}

/* `vbrlab eval` on the run's stored allocation and the run's domain writes the same
 * /eval/<row> attribute set as the run's eval stage (one writer, alloc/qeval.h). */
static void test_eval_same_attrs(chk *c, const char *store)
{
    char out[256], cmd[2048], line[4096];
    snprintf(out, sizeof out, "%s/cli-eval.h5", dir);
    char *seed = attr(store, "/eval/domains/zh", "seed");
    snprintf(cmd, sizeof cmd,
             "eval models/vbrlab-moe-tiny --alloc %s:en-2.5 --domain "
             "zh=data/corpus/zh.eval.txt,seqs=2,len=32,seed=%s -o %s",
             store, seed ? seed : "0", out);
    free(seed);
    int rc = tio_vbrlab(cmd, line, sizeof line);
    CHECK(c, rc == 0, "vbrlab eval on the run's allocation: %s", line);
    char *run_attrs = object_attrs(store, "/eval/en-2.5");
    char *cli_attrs = object_attrs(out, "/eval/en-2.5");
    CHECK(c, run_attrs && strstr(run_attrs, "@kind") && strstr(run_attrs, "@source") &&
                 strstr(run_attrs, "@target_bpw") && strstr(run_attrs, "@calib") &&
                 strstr(run_attrs, "@n_weights"),
          "the run's /eval/en-2.5 has the full attribute set:\n%s", run_attrs ? run_attrs : "");
    CHECK_STR(c, cli_attrs, run_attrs, "vbrlab eval and vbrlab run: identical /eval/en-2.5 attributes");
    free(run_attrs);
    free(cli_attrs);
}

static void test_pipeline(chk *c)
{
    char cfg_a[256], cfg_b[256], cfg_t[256], a[256], b[256], md[256], log[8192];
    vl_err e = {0};
    make_config("a.ini", "a.h5", "2.5", cfg_a, sizeof cfg_a);
    make_config("b.ini", "b.h5", "2.5", cfg_b, sizeof cfg_b);
    make_config("t.ini", "a.h5", "2.75", cfg_t, sizeof cfg_t);
    snprintf(a, sizeof a, "%s/a.h5", dir);
    snprintf(b, sizeof b, "%s/b.h5", dir);
    snprintf(md, sizeof md, "%s/a.md", dir);

    /* a run killed after its stats stage: the store holds stats and nothing else */
    int rc = run_cfg(cfg_a, EXP_STAGE_STATS, log, sizeof log, &e);
    CHECK(c, rc == 0, "stats-only run: %s", rc ? e.msg : "ok");
    char *st = attr(a, "/stages/stats", "status"), *sens = attr(a, "/stages/sens", "status");
    CHECK_STR(c, st, "done", "stats record after the stats stage");
    CHECK(c, sens == NULL, "no sens record after a run stopped after stats");
    free(st);
    free(sens);

    /* resume */
    rc = run_cfg(cfg_a, -1, log, sizeof log, &e);
    CHECK(c, rc == 0, "resumed run: %s", rc ? e.msg : "ok");
    CHECK_HAS(c, log, "stats: cached", "resume skips stats");
    CHECK_HAS(c, log, "sens: done", "resume runs sens");
    CHECK_HAS(c, log, "report: done", "resume finishes");
    static const char *const recs[] = {"stats", "sens", "alloc.en", "eval", "report"};
    for (int i = 0; i < 5; i++) {
        char g[64];
        snprintf(g, sizeof g, "/stages/%s", recs[i]);
        char *k = attr(a, g, "key"), *s = attr(a, g, "status");
        CHECK(c, k && !strncmp(k, "fnv1a64:", 8) && strlen(k) == 24, "%s key %s", g,
              k ? k : "(none)");
        CHECK_STR(c, s, "done", g);
        free(k);
        free(s);
    }
    char *ver = attr(a, "/", "vbrlab_version"), *raw = attr(a, "/", "config_raw");
    char *canon = attr(a, "/", "config");
    char *file = tio_slurp(cfg_a, NULL);
    CHECK_STR(c, ver, VBRLAB_VERSION, "root vbrlab_version");
    CHECK_STR(c, raw, file, "root config_raw = the file's bytes");
    CHECK_HAS(c, canon, "[alloc.en]", "root config = canonical rendering");
    free(ver);
    free(raw);
    free(canon);
    free(file);

    /* the tables */
    char *tables = tio_slurp(md, NULL);
    CHECK_HAS(c, tables, "### KLD matrix at 2.5 bpw", "OUT.md KLD matrix");
    CHECK_HAS(c, tables, "| en-2.5 | optimal (gap 0) |",
              "OUT.md allocation row with its solver proof");
    /* the additivity check: band 2/3 of the 2..3-bit menu, add_draws = 6, sequence 1 of 2 held
     * out */
    CHECK_HAS(c, tables, "| en | seqs 1–1 of 2 | 2/3 | rel | 6 |", "OUT.md additivity band");
    CHECK_HAS(c, tables, "### VBR vs uniform", "OUT.md VBR vs uniform");
    CHECK_HAS(c, tables, "| L05 |", "OUT.md expert usage row of the last layer");
    CHECK_HAS(c, tables, "### Sensitivity α", "OUT.md sensitivity table");
    CHECK_HAS(c, tables, "Set en: 64 tokens (2 sequences);", "α on every calibration token");
    /* run-tiny.ini measures one ε: the ratio α(ε1)/α(ε0) would be 1 by construction, so the
     * report must say the check was not made rather than count 0 units outside */
    CHECK_HAS(c, tables, "quadratic regime not checked (one noise level)",
              "one ε: quadratic regime reported as not checked");
    CHECK(c, !strstr(tables, "units outside the quadratic regime"),
          "one ε: no count of units outside the quadratic regime");
    free(tables);
    h5s_store *s = NULL;
    double *kld = NULL, bpw = 0;
    int nd = 0;
    int64_t sh[H5S_MAX_DIMS];
    rc = h5s_open(&s, a, &e);
    if (!rc)
        rc = h5s_read(s, "/eval/matrix/mean_kld", H5S_F64, (void **)&kld, &nd, sh, &e);
    if (!rc)
        rc = h5s_attr_get_f64(s, "/alloc/en-2.5", "bpw", &bpw, &e);
    CHECK(c, rc == 0 && nd == 2 && sh[0] == 1 && sh[1] == 1, "KLD matrix 1 × 1: %s",
          rc ? e.msg : "ok");
    CHECK(c, kld && kld[0] > 0 && kld[0] < 10, "mean KLD %g in (0, 10) nats", kld ? kld[0] : -1);
    CHECK(c, bpw > 2.0 && bpw <= 2.5 + 1e-9, "allocation within budget: %.6f bpw", bpw);
    free(kld);
    h5s_close(s);

    /* second run: all cached, file untouched */
    size_t n0 = 0, n1 = 0;
    char *before = tio_slurp(a, &n0);
    rc = run_cfg(cfg_a, -1, log, sizeof log, &e);
    char *after = tio_slurp(a, &n1);
    CHECK(c, rc == 0 && !strstr(log, "done"), "second run is all cache hits: %s", log);
    CHECK_HAS(c, log, "report: cached", "second run: report cached");
    CHECK(c, before && after && n0 == n1 && !memcmp(before, after, n0),
          "second run leaves the file byte-identical");
    free(before);
    free(after);

    /* determinism: a fresh run into another file */
    rc = run_cfg(cfg_b, -1, log, sizeof log, &e);
    CHECK(c, rc == 0, "fresh run b: %s", rc ? e.msg : "ok");
    int nds = same_datasets(c, a, b);
    CHECK(c, nds > 20, "two fresh runs: %d datasets identical", nds);
    test_eval_same_attrs(c, b);

    /* a new target reruns alloc, eval and report only */
    char *k_stats = attr(a, "/stages/stats", "key"), *k_sens = attr(a, "/stages/sens", "key");
    char *k_alloc = attr(a, "/stages/alloc.en", "key"), *k_eval = attr(a, "/stages/eval", "key");
    rc = run_cfg(cfg_t, -1, log, sizeof log, &e);
    CHECK(c, rc == 0, "target 2.75 run: %s", rc ? e.msg : "ok");
    CHECK(c, strstr(log, "stats: cached") && strstr(log, "sens: cached") &&
                 strstr(log, "alloc.en: done") && strstr(log, "eval: done") &&
                 strstr(log, "report: done"),
          "target change: only alloc, eval, report rerun: %s", log);
    char *k2_stats = attr(a, "/stages/stats", "key"), *k2_sens = attr(a, "/stages/sens", "key");
    char *k2_alloc = attr(a, "/stages/alloc.en", "key"), *k2_eval = attr(a, "/stages/eval", "key");
    CHECK_STR(c, k2_stats, k_stats, "stats key unchanged");
    CHECK_STR(c, k2_sens, k_sens, "sens key unchanged");
    CHECK(c, k2_alloc && k_alloc && strcmp(k2_alloc, k_alloc), "alloc key changed");
    CHECK(c, k2_eval && k_eval && strcmp(k2_eval, k_eval), "eval key changed");
    free(k_stats), free(k_sens), free(k_alloc), free(k_eval);
    free(k2_stats), free(k2_sens), free(k2_alloc), free(k2_eval);
    double t = 0;
    s = NULL;
    rc = h5s_open(&s, a, &e);
    if (!rc)
        rc = h5s_attr_get_f64(s, "/alloc/en-2.75", "target_bpw", &t, &e);
    CHECK(c, rc == 0 && t == 2.75, "/alloc/en-2.75 written: %s", rc ? e.msg : "ok");
    h5s_close(s);
    tables = tio_slurp(md, NULL);
    CHECK_HAS(c, tables, "### KLD matrix at 2.75 bpw", "OUT.md updated to the new target");
    free(tables);
}

/* An [eval.*] domain equal to a [calib.*] set (same file, same seed) is refused by the eval
 * stage unless [experiment] allow_overlap = true. */
static void test_leakage(chk *c)
{
    char path[256], log[8192];
    for (int allow = 0; allow < 2; allow++) {
        snprintf(path, sizeof path, "%s/leak%d.ini", dir, allow);
        FILE *f = fopen(path, "w");
        if (!f)
            return;
        fprintf(f, "[experiment]\nname = leak\nseed = 7\nout = %s/leak%d.h5\n%s"
                "[calib.en]\nsource = data/corpus/en.calib.txt\nseqs = 2\nlen = 16\nseed = 5\n"
                "[eval.en]\nsource = data/corpus/en.calib.txt\nseqs = 2\nlen = 16\nseed = 5\n"
                "[quant]\nformats = rtn:b=2..3:g=64\n[sens]\neps = 0.01\ngranularity = group\n"
                "[alloc.en]\nsets = en\ngranularity = group\ntarget_bpw = 2.5\n"
                "[report]\ntables = kld_matrix\nplots = none\n",
                dir, allow, allow ? "allow_overlap = true\n" : "");
        fclose(f);
        vl_err e = {0};
        int rc = run_cfg(path, -1, log, sizeof log, &e);
        if (allow)
            CHECK(c, rc == 0, "allow_overlap = true evaluates the overlapping domain: %s",
                  rc ? e.msg : "ok");
        else
            CHECK(c, rc != 0 && strstr(e.msg, "leakage ([experiment] allow_overlap = true "
                                              "evaluates anyway): evaluation domain en "
                                              "overlaps calibration set en: sequence 0"),
                  "the eval stage refuses a domain equal to a calibration set: %s", e.msg);
    }
}

/* [experiment] baselines: beside en-2.5 the alloc stage stores the best uniform format at
 * or below the budget, the rules mix and two random draws, all within the budget and marked
 * baselines; the eval stage evaluates them and the report prints the random draws' mean. */
static void test_baselines(chk *c)
{
    char path[256], out[256], log[8192];
    snprintf(path, sizeof path, "%s/base.ini", dir);
    snprintf(out, sizeof out, "%s/base.h5", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f, "[experiment]\nname = base\nseed = 7\nout = %s\nbaselines = uniform, rules, random\n"
            "random_draws = 2\n"
            "[calib.en]\nsource = data/corpus/en.calib.txt\nseqs = 2\nlen = 16\n"
            "[eval.zh]\nsource = data/corpus/zh.eval.txt\nseqs = 2\nlen = 16\n"
            "[quant]\nformats = rtn:b=2..4:g=64\n[sens]\neps = 0.01\ngranularity = group\n"
            "add_draws = 0\n[alloc.en]\nsets = en\ngranularity = group\ntarget_bpw = 2.5\n"
            "[report]\ntables = kld_matrix\nplots = none\n", out);
    fclose(f);
    vl_err e = {0};
    int rc = run_cfg(path, -1, log, sizeof log, &e);
    CHECK(c, rc == 0, "run with baselines: %s", rc ? e.msg : "ok");
    if (rc)
        return;
    static const char *names[] = {"en-2.5.uniform", "en-2.5.rules", "en-2.5.random1",
                                  "en-2.5.random2"};
    static const char *solver[] = {"uniform", "rules", "random", "random"};
    h5s_store *s = NULL;
    int within = 1, marked = 0;
    char *as[4] = {0};
    if (h5s_open(&s, out, &e) == 0) {
        for (int k = 0; k < 4; k++) {
            char g[64], *st = NULL, *sv = NULL;
            double used = NAN, budget = NAN;
            snprintf(g, sizeof g, "/alloc/%s", names[k]);
            h5s_attr_get_f64(s, g, "bits_used", &used, &e);
            h5s_attr_get_f64(s, g, "budget_bits", &budget, &e);
            within &= used <= budget * (1 + 1e-12);
            h5s_attr_get(s, g, "status", &st, &e);
            h5s_attr_get(s, g, "solver", &sv, &e);
            h5s_attr_get(s, g, "assignment", &as[k], &e);
            marked += st && sv && !strcmp(st, "baseline") && !strcmp(sv, solver[k]);
            vl_free(st);
            vl_free(sv);
        }
        h5s_close(s);
    }
    CHECK(c, within, "every baseline within the 2.5 bpw budget");
    CHECK(c, marked == 4, "4 baselines stored with status baseline and their solver (%d)",
          marked);
    CHECK(c, as[2] && as[3] && strcmp(as[2], as[3]), "two random draws, two assignments");
    for (int k = 0; k < 4; k++)
        vl_free(as[k]);
    char *rows = attr(out, "/eval/matrix", "rows");
    CHECK(c, rows && strstr(rows, "en-2.5.rules") && strstr(rows, "en-2.5.random2"),
          "the eval rows hold the baselines");
    free(rows);
    char *md = attr(out, "/report", "markdown");
    CHECK(c, md && strstr(md, "| en-2.5.random (mean of 2) | baseline |") &&
             strstr(md, "| en-2.5.rules | baseline |"),
          "the report prints the baselines and the random mean");
    free(md);
}

/* Count the journal files OUT.STAGE.items.r* beside OUT in dir. */
static int journals(const char *out_base, const char *stage)
{
    char pre[256];
    snprintf(pre, sizeof pre, "%s.%s.items.r", out_base, stage);
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += !strncmp(de->d_name, pre, strlen(pre));
    if (d)
        closedir(d);
    return n;
}

/* Per-item commit: a sens stage that fails at its 4th unit leaves 3 units in its journal, and
 * the rerun takes them (log) and computes only the rest; an eval stage that fails in its
 * second row keeps the first row (its binding facts and its one domain) and the second's facts;
 * after the reruns the store equals an uninterrupted run's, dataset for dataset, and the
 * journals are gone. */
static void test_item_resume(chk *c)
{
    char ref_cfg[256], cfg[256], ref[256], out[256], log[16384];
    vl_err e = {0};
    make_config_from("tests/data/run-items.ini", "iref.ini", "iref.h5", "2.5", ref_cfg,
                     sizeof ref_cfg);
    make_config_from("tests/data/run-items.ini", "items.ini", "items.h5", "2.5", cfg, sizeof cfg);
    snprintf(ref, sizeof ref, "%s/iref.h5", dir);
    snprintf(out, sizeof out, "%s/items.h5", dir);
    int rc = run_cfg_fault(ref_cfg, NULL, 0, log, sizeof log, &e);
    CHECK(c, rc == 0, "items: uninterrupted run: %s", rc ? e.msg : "ok");
    int units = 0;
    h5s_store *s = NULL;
    int64_t sh[H5S_MAX_DIMS];
    int nd = 0;
    double *alpha = NULL;
    if (!h5s_open(&s, ref, &e) &&
        !h5s_read(s, "/sens/alpha/alpha0", H5S_F64, (void **)&alpha, &nd, sh, &e) && nd == 2)
        units = (int)sh[1];
    free(alpha);
    h5s_close(s);
    CHECK(c, units > 4, "items: %d sensitivity units", units);

    par_fault f = {0, 3, 0}; /* rank 0's 4th item: the sens stage stops with 3 units done */
    rc = run_cfg_fault(cfg, &f, 1, log, sizeof log, &e);
    CHECK(c, rc == VL_EIO && strstr(e.msg, "sens: simulated failure at work item 3"),
          "items: sens fails at its 4th unit (%s)", rc ? e.msg : "ok");
    CHECK_INT(c, journals("items.h5", "sens"), 1, "items: the sens journal is there");
    /* rerun: 3 units from the journal, units − 3 computed (items 0 .. units−4), then the eval
     * stage's batches: row 1's is item units−3, row 2's item units−2, where it fails */
    f = (par_fault){0, units - 2, 0};
    rc = run_cfg_fault(cfg, &f, 0, log, sizeof log, &e);
    CHECK(c, strstr(log, "sens: 3 items from the journal") && strstr(log, "sens: done"),
          "items: the rerun takes the 3 journaled units (%.300s)", log);
    CHECK(c, rc == VL_EIO && strstr(e.msg, "eval: row rtn-b2-g64-asym") &&
             strstr(e.msg, "simulated failure"),
          "items: eval fails in its second row (%s)", rc ? e.msg : "ok");
    CHECK_INT(c, journals("items.h5", "sens"), 0, "items: the sens journal removed after commit");
    rc = run_cfg_fault(cfg, NULL, 0, log, sizeof log, &e);
    CHECK(c, rc == 0 && strstr(log, "eval: 3 items from the journal") &&
             strstr(log, "sens: cached"),
          "items: the eval rerun takes row 1 and row 2's facts (%s; %.300s)", rc ? e.msg : "ok",
          log);
    CHECK_INT(c, journals("items.h5", "eval"), 0, "items: the eval journal removed after commit");
    int n = same_datasets(c, ref, out);
    CHECK(c, n > 20, "items: resumed store = uninterrupted store (%d datasets)", n);
}

int main(void)
{
    chk c;
    chk_init(&c, "runner");
    snprintf(dir, sizeof dir, "/tmp/vbrlab-run-%d", (int)getpid());
    mkdir(dir, 0777);
    test_config_errors(&c);
    test_pipeline(&c);
    test_leakage(&c);
    test_baselines(&c);
    test_item_resume(&c);
    remove_dir(dir);
    return chk_done(&c);
}
