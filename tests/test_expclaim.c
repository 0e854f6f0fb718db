/* tests/test_expclaim.c — the evidence keys of experiment configs: [experiment] replicates
 * (replicate stores, seeds, cache keys per replicate), [alloc.*] alloc_set / stats_set (the 2×2
 * design: which keys they enter), [claim.*] (the tests grammar, checks, canonical spelling),
 * and the shipped seed-claims / calib-2x2 configs. Runs from the repository root. */
#define _POSIX_C_SOURCE 200809L
#include "../experiments/expcfg.h"
#include "check.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

static char g_dir[64];

static const char *write_cfg(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
    return path;
}

#define HEAD "[experiment]\nname = t\nseed = 7\nout = out/t.h5\n"
#define SETS                                                                                \
    "[calib.en]\nsource = data/corpus/en.calib.txt\nseqs = 4\nlen = 16\n"                    \
    "[calib.zh]\nsource = data/corpus/zh.calib.txt\nseqs = 4\nlen = 16\n"                    \
    "[calib.noise]\nsource = noise:uniform\nseqs = 4\nlen = 16\n"                            \
    "[eval.en]\nsource = data/corpus/en.eval.txt\n"                                          \
    "[quant]\nformats = rtn:b=2..4:g=64\n"                                                   \
    "[alloc.a]\nsets = en\ntarget_bpw = 2.5, 3\nuniform = rtn-b2-g64-asym\n"

static int parse(const char *name, const char *text, exp_config *g, vl_err *err)
{
    return exp_config_parse(write_cfg(name, text), g, err);
}

static void test_replicates(chk *c)
{
    exp_config g1, g2;
    vl_err err = {0, ""};
    int rc = parse("r1.ini", HEAD SETS, &g1, &err);
    CHECK(c, rc == 0, "no replicates key parses (%s)", err.msg);
    rc = parse("r2.ini", HEAD "replicates = 3\n" SETS, &g2, &err);
    CHECK(c, rc == 0, "replicates = 3 parses (%s)", err.msg);
    if (rc)
        return;
    CHECK_INT(c, g1.replicates, 1, "default replicates");
    CHECK_INT(c, g2.replicates, 3, "replicates");
    CHECK_INT(c, g2.replicate, 0, "a parsed config stands for replicate 0");

    char buf[64];
    CHECK(c, !exp_replicate_out(&g2, 0, buf, sizeof buf, NULL) && !strcmp(buf, "out/t.h5"),
          "replicate 0's store is OUT");
    CHECK(c, !exp_replicate_out(&g2, 2, buf, sizeof buf, NULL) && !strcmp(buf, "out/t.rep2.h5"),
          "replicate 2's store: %s", buf);
    CHECK_INT(c, exp_replicate_out(&g2, 2, buf, 8, NULL), VL_ECONFIG, "too long a path");

    /* replicate 0 keeps the unreplicated keys of stats..eval; the report reads every replicate */
    for (int s = EXP_STAGE_STATS; s <= EXP_STAGE_EVAL; s++)
        CHECK(c, exp_stage_key(&g1, (exp_stage)s, 0) == exp_stage_key(&g2, (exp_stage)s, 0),
              "stage %d: replicate 0 key = unreplicated key", s);
    CHECK(c, exp_stage_key(&g1, EXP_STAGE_REPORT, 0) != exp_stage_key(&g2, EXP_STAGE_REPORT, 0),
          "the report key holds the replicates");
    exp_config r1 = g2, r2 = g2;
    r1.replicate = 1;
    r2.replicate = 2;
    for (int s = EXP_STAGE_STATS; s <= EXP_STAGE_EVAL; s++)
        CHECK(c, exp_stage_key(&r1, (exp_stage)s, 0) != exp_stage_key(&g2, (exp_stage)s, 0) &&
                     exp_stage_key(&r1, (exp_stage)s, 0) != exp_stage_key(&r2, (exp_stage)s, 0),
              "stage %d: every replicate its own key", s);
    /* growing R does not touch the replicates already there */
    exp_config g5 = g2;
    g5.replicates = 5;
    g5.replicate = 1;
    CHECK(c, exp_stage_key(&g5, EXP_STAGE_EVAL, 0) == exp_stage_key(&r1, EXP_STAGE_EVAL, 0),
          "replicate 1's eval key does not depend on R");

    /* seeds: replicate 0 is the set's seed, the others distinct */
    uint64_t s0 = exp_replicate_seed(&g2, &g2.calib[2], 0),
             s1 = exp_replicate_seed(&g2, &g2.calib[2], 1),
             s2 = exp_replicate_seed(&g2, &g2.calib[2], 2);
    CHECK(c, s0 == exp_set_seed(&g2, &g2.calib[2], 0) && s1 != s0 && s2 != s1 && s2 != s0,
          "replicate seeds");
    CHECK(c, s1 < (1ull << 53), "replicate seeds are storable as float64");
    exp_config_free(&g1);
    exp_config_free(&g2);

    rc = parse("r0.ini", HEAD "replicates = 0\n" SETS, &g1, &err);
    CHECK(c, rc == VL_ECONFIG && strstr(err.msg, ":5: [experiment] replicates: 0 not in [1, "),
          "replicates = 0 refused: %s", err.msg);
}

static void test_sets(chk *c)
{
    exp_config g, h;
    vl_err err = {0, ""};
    int rc = parse("s0.ini", HEAD SETS "[alloc.x]\nsets = en\ntarget_bpw = 2.5\n", &g, &err);
    CHECK(c, rc == 0, "reference parses (%s)", err.msg);
    rc = parse("s1.ini", HEAD SETS "[alloc.x]\nalloc_set = en\nstats_set = zh\ntarget_bpw = 2.5\n",
               &h, &err);
    CHECK(c, rc == 0, "alloc_set / stats_set parse (%s)", err.msg);
    if (rc)
        return;
    int x = exp_find_alloc(&h, "x");
    CHECK(c, h.alloc[x].sets.n == 1 && !strcmp(h.alloc[x].sets.v[0], "en"),
          "alloc_set is the allocation's sets");
    CHECK(c, exp_alloc_stats(&h.alloc[x])->n == 1 &&
                 !strcmp(exp_alloc_stats(&h.alloc[x])->v[0], "zh"), "stats_set");
    CHECK(c, exp_alloc_stats(&g.alloc[x]) == &g.alloc[x].sets, "no stats_set: the sets");
    /* the stored allocation records its statistics set (its `calib`), so the alloc key holds
     * stats_set; the sens key does not */
    CHECK(c, exp_stage_key(&g, EXP_STAGE_SENS, 0) == exp_stage_key(&h, EXP_STAGE_SENS, 0),
          "stats_set: sens key unchanged");
    CHECK(c, exp_stage_key(&g, EXP_STAGE_ALLOC, x) != exp_stage_key(&h, EXP_STAGE_ALLOC, x),
          "stats_set: alloc key changes");
    CHECK(c, exp_stage_key(&g, EXP_STAGE_EVAL, 0) != exp_stage_key(&h, EXP_STAGE_EVAL, 0),
          "stats_set: eval key changes");
    exp_config_free(&g);
    exp_config_free(&h);

    rc = parse("s2.ini", HEAD SETS "[alloc.x]\nsets = en\nalloc_set = zh\ntarget_bpw = 2.5\n", &g,
               &err);
    CHECK(c, rc == VL_ECONFIG && strstr(err.msg, "sets and alloc_set name the same thing"),
          "sets and alloc_set both: %s", err.msg);
    rc = parse("s3.ini", HEAD SETS "[alloc.x]\nsets = en\nstats_set = fr\ntarget_bpw = 2.5\n", &g,
               &err);
    CHECK(c, rc == VL_ECONFIG && strstr(err.msg, "stats_set: \"fr\" names no [calib.fr]"),
          "unknown stats_set: %s", err.msg);
    rc = parse("s4.ini", HEAD SETS "[alloc.x]\ntarget_bpw = 2.5\n", &g, &err);
    CHECK(c, rc == VL_ECONFIG && strstr(err.msg, "[alloc.x]: missing key \"sets\""),
          "no sets: %s", err.msg);
}

static void test_claims(chk *c)
{
    exp_config g;
    vl_err err = {0, ""};
    int rc = parse("c0.ini", HEAD SETS "[claim.one]\ntext = uniform is worse\ntests = "
                   "rtn-b2-g64-asym > a-2.5 @ en,  a-3 ~0.25 a-2.5 @ en , a-3 < a-2.5 @ en\n",
                   &g, &err);
    CHECK(c, rc == 0, "a claim parses (%s)", err.msg);
    if (!rc) {
        CHECK_INT(c, g.n_claim, 1, "one claim");
        CHECK_INT(c, g.claim[0].n_tests, 3, "three tests");
        const exp_test *t = g.claim[0].tests;
        CHECK(c, t[0].op == EXP_CMP_GREATER && !strcmp(t[0].a, "rtn-b2-g64-asym") &&
                     !strcmp(t[0].b, "a-2.5") && !strcmp(t[0].domain, "en"), "test 1");
        CHECK(c, t[1].op == EXP_CMP_WITHIN && t[1].margin == 0.25, "test 2: within 0.25");
        CHECK(c, t[2].op == EXP_CMP_LESS, "test 3: less");
        char b[128];
        exp_test_text(&t[1], b, sizeof b);
        CHECK_STR(c, b, "a-3 ~0.25 a-2.5 @ en", "canonical spelling");
        uint64_t k = exp_stage_key(&g, EXP_STAGE_REPORT, 0), e = exp_stage_key(&g,
                                                                             EXP_STAGE_EVAL, 0);
        exp_config_free(&g);
        rc = parse("c1.ini", HEAD SETS "[claim.one]\ntext = uniform is worse\ntests = "
                   "rtn-b2-g64-asym > a-2.5 @ en\n", &g, &err);
        CHECK(c, !rc && exp_stage_key(&g, EXP_STAGE_REPORT, 0) != k &&
                     exp_stage_key(&g, EXP_STAGE_EVAL, 0) == e,
              "claims enter the report key only");
        exp_config_free(&g);
    }
    static const struct {
        const char *tests, *frag;
    } bad[] = {
        {"a-2.5 >> a-3 @ en", "\">>\" is not >, < or ~M"},
        {"a-2.5 ~0 a-3 @ en", "\"~0\" is not >, < or ~M"},
        {"a-2.5 > a-3 en", "want \"A > B @ DOMAIN\""},
        {"a-2.5 > a-3 @ en extra", "want \"A > B @ DOMAIN\""},
        {"a-2.4 > a-3 @ en", "\"a-2.4\" is no row of the config"},
        {"a-2.5 > a-3 @ zh", "\"zh\" names no [eval.zh] section"},
        {"a-3 > a-3 @ en", "a row against itself"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[2048];
        snprintf(text, sizeof text, HEAD SETS "[claim.x]\ntext = t\ntests = %s\n", bad[i].tests);
        rc = parse("cbad.ini", text, &g, &err);
        CHECK(c, rc == VL_ECONFIG && strstr(err.msg, bad[i].frag) &&
                     strstr(err.msg, "[claim.x] tests"), "bad test \"%s\": %s", bad[i].tests,
              err.msg);
    }
    /* with uniform_outer the uniform row is FORMAT+OUTER (stage_eval's name), not FORMAT */
    static const char outer[] =
        HEAD "[calib.en]\nsource = data/corpus/en.calib.txt\nseqs = 4\nlen = 16\n"
             "[eval.en]\nsource = data/corpus/en.eval.txt\n[quant]\nformats = rtn:b=2..4:g=64\n"
             "[sens]\nembed_head = true\n[alloc.a]\nsets = en\ntarget_bpw = 2.5\n"
             "uniform = rtn-b2-g64-asym\nuniform_outer = rtn-b4-g64-asym\n"
             "[claim.x]\ntext = t\ntests = %s > a-2.5 @ en\n";
    char text[2048];
    snprintf(text, sizeof text, outer, "rtn-b2-g64-asym+rtn-b4-g64-asym");
    rc = parse("couter.ini", text, &g, &err);
    CHECK(c, rc == 0, "uniform_outer: the row FORMAT+OUTER is a row (%s)", err.msg);
    if (!rc)
        exp_config_free(&g);
    snprintf(text, sizeof text, outer, "rtn-b2-g64-asym");
    rc = parse("couter.ini", text, &g, &err);
    CHECK(c, rc == VL_ECONFIG && strstr(err.msg, "\"rtn-b2-g64-asym\" is no row"),
          "uniform_outer: the bare format is no row: %s", err.msg);
    /* a llama_mix row is llama-FTYPE (stage_eval's name); an ftype not listed is no row */
    static const char mix[] =
        HEAD "[calib.en]\nsource = data/corpus/en.calib.txt\nseqs = 4\nlen = 16\n"
             "[eval.en]\nsource = data/corpus/en.eval.txt\n[quant]\nformats = ggml:iq2_xs\n"
             "[sens]\ngranularity = gguf\n[alloc.a]\nsets = en\ntarget_bpw = 2.5\n"
             "granularity = gguf\nllama_mix = IQ2_S, IQ2_XS\n"
             "[claim.x]\ntext = t\ntests = %s > a-2.5 @ en\n";
    snprintf(text, sizeof text, mix, "llama-IQ2_S");
    rc = parse("cmix.ini", text, &g, &err);
    CHECK(c, rc == 0, "llama_mix: the row llama-IQ2_S is a row (%s)", err.msg);
    if (!rc)
        exp_config_free(&g);
    snprintf(text, sizeof text, mix, "llama-IQ2_M");
    rc = parse("cmix.ini", text, &g, &err);
    CHECK(c, rc == VL_ECONFIG && strstr(err.msg, "\"llama-IQ2_M\" is no row") &&
                 strstr(err.msg, "llama-FTYPE"),
          "llama_mix: an ftype not listed is no row: %s", err.msg);
    rc = parse("cmiss.ini", HEAD SETS "[claim.x]\ntext = t\n", &g, &err);
    CHECK(c, rc == VL_ECONFIG && strstr(err.msg, "[claim.x]: missing key \"tests\""),
          "claim without tests: %s", err.msg);
}

static void test_shipped(chk *c)
{
    exp_config g;
    vl_err err = {0, ""};
    int rc = exp_config_parse("experiments/seed-claims.ini", &g, &err);
    CHECK(c, rc == 0, "seed-claims.ini parses (%s)", err.msg);
    if (!rc) {
        CHECK(c, g.replicates >= 5, "seed-claims: R = %d ≥ 5", g.replicates);
        CHECK_INT(c, g.n_claim, 9, "seed-claims: three claims at three budgets");
        exp_config_free(&g);
    }
    static const char *const twobytwo[] = {"experiments/calib-2x2.ini",
                                           "experiments/calib-2x2-rtn.ini"};
    for (int f = 0; f < 2; f++) {
        rc = exp_config_parse(twobytwo[f], &g, &err);
        CHECK(c, rc == 0, "%s parses (%s)", twobytwo[f], err.msg);
        if (rc)
            continue;
        /* the four cells: allocation set × statistics set over {en, zh} */
        int cells = 0;
        for (int a = 0; a < g.n_alloc; a++) {
            const exp_slist *st = exp_alloc_stats(&g.alloc[a]);
            for (int i = 0; i < 4; i++)
                cells |= (g.alloc[a].sets.n == 1 && st->n == 1 &&
                          !strcmp(g.alloc[a].sets.v[0], i & 1 ? "zh" : "en") &&
                          !strcmp(st->v[0], i & 2 ? "zh" : "en")) << i;
        }
        CHECK_INT(c, cells, 15, "2×2: every allocation × statistics cell present");
        exp_config_free(&g);
    }
}

int main(void)
{
    chk c;
    chk_init(&c, "expclaim");
    snprintf(g_dir, sizeof g_dir, "/tmp/vbrlab-expclaim-XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_replicates(&c);
    test_sets(&c);
    test_claims(&c);
    test_shipped(&c);
    if (!c.fail) {
        static const char *const names[] = {"r1.ini", "r2.ini", "r0.ini", "s0.ini", "s1.ini",
                                            "s2.ini", "s3.ini", "s4.ini", "c0.ini", "c1.ini",
                                            "cbad.ini", "cmiss.ini", "couter.ini"};
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
            char p[256];
            snprintf(p, sizeof p, "%s/%s", g_dir, names[i]);
            unlink(p);
        }
        rmdir(g_dir);
    }
    return chk_done(&c);
}
