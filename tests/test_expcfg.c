/* tests/test_expcfg.c — experiment configs: the shipped ablations parse, defaults and sources
 * come out as specified, every broken config gives its one-line "FILE:LINE: ..." error, derived
 * seeds are deterministic and distinct, and stage cache keys change exactly when the sections a
 * stage depends on change. Runs from the repository root (corpus paths are relative to it). */
#define _POSIX_C_SOURCE 200809L
#include "../core/hash.h"
#include "../experiments/expcfg.h"
#include "check.h"
#include "testio.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

static char g_dir[64];  /* the mkdtemp directory of this run */
static char g_written[160][256];  /* files written there (full paths), removed at the end */
static int g_nwritten;

static void track(const char *path)
{
    for (int i = 0; i < g_nwritten; i++)
        if (!strcmp(g_written[i], path))
            return;
    if (g_nwritten < 160)
        snprintf(g_written[g_nwritten++], sizeof g_written[0], "%s", path);
}

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
    track(path);
    return path;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* ---------------------------------------------------------------------------------------- */

static void test_shipped(chk *c)
{
    static const char *const files[] = {"experiments/demo.ini", "experiments/calib-language.ini",
                                        "experiments/entropy-split.ini",
                                        "experiments/starved-experts.ini",
                                        "experiments/granularity.ini",
                                        "experiments/gguf-2bit.ini"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        exp_config cfg;
        vl_err err = {0, ""};
        int rc = exp_config_parse(files[i], &cfg, &err);
        CHECK(c, rc == 0, "%s parses (%s)", files[i], rc ? err.msg : "ok");
        exp_config_free(&cfg);
    }

    exp_config d;
    vl_err err = {0, ""};
    if (!exp_config_parse("experiments/gguf-2bit.ini", &d, &err)) {
        const exp_alloc *a = &d.alloc[0];
        CHECK(c, d.sens_granularity == EXP_GRAN_GGUF && a->granularity == EXP_GRAN_GGUF &&
                 a->budget == EXP_BUDGET_MODEL && a->uniform_outer &&
                 !strcmp(a->uniform_outer, "ggml-q5_K") && a->target_bpw.n == 3 &&
                 a->target_bpw.v[1] == 2.85,
              "gguf-2bit.ini: granularity gguf, model budgets, uniform_outer q5_K");
        CHECK(c, a->llama_mix.n == 3 && !strcmp(a->llama_mix.v[0], "IQ2_XXS") &&
                 !strcmp(a->llama_mix.v[1], "IQ2_XS") && !strcmp(a->llama_mix.v[2], "IQ2_S") &&
                 d.alloc[1].llama_mix.n == 0,
              "gguf-2bit.ini: [alloc.en] llama_mix = IQ2_XXS, IQ2_XS, IQ2_S");
        exp_config_free(&d);
    }
    if (exp_config_parse("experiments/demo.ini", &d, &err)) {
        CHECK(c, 0, "demo.ini: %s", err.msg);
        return;
    }
    CHECK_STR(c, d.name, "demo", "demo name");
    CHECK_STR(c, d.model, "", "demo model is the embedded one");
    CHECK_INT(c, d.n_calib, 3, "demo calib sets");
    CHECK_INT(c, d.n_eval, 4, "demo eval sets");
    CHECK_INT(c, d.n_alloc, 3, "demo allocations");
    CHECK_INT(c, d.calib[1].seqs, 16, "demo calib zh seqs");
    CHECK_INT(c, d.calib[1].len, 64, "demo calib zh len");
    CHECK_INT(c, d.replicates, 3, "demo replicates");
    CHECK_INT(c, d.baselines, (1 << EXP_BASE_COUNT) - 1,
              "demo: uniform, rules and random baselines");
    CHECK_INT(c, d.calib[2].src.kind, CALIB_UNIFORM, "demo calib noise kind");
    CHECK_INT(c, d.eval[2].seqs, 16, "demo eval code seqs");
    CHECK_STR(c, d.eval[2].resolved, "data/corpus/code.eval.txt", "demo eval code path");
    int mm = exp_find_alloc(&d, "minimax");
    CHECK(c, mm >= 0 && d.alloc[mm].objective == EXP_OBJ_MINIMAX && d.alloc[mm].sets.n == 2,
          "demo minimax over two sets");
    CHECK(c, mm >= 0 && d.alloc[mm].target_bpw.n == 1 && d.alloc[mm].target_bpw.v[0] == 2.5,
          "demo minimax at 2.5 bpw");
    CHECK_INT(c, d.alloc[0].uniform.n, 2, "demo alloc en uniform baselines");
    CHECK_STR(c, d.alloc[0].uniform.v[1], "rtn-b3-g64-asym", "demo uniform name");
    CHECK_STR(c, d.formats, "rtn:b=2..4:g=64;rtn:b=2:g=32:s=sym", "demo formats stored as written");
    CHECK_INT(c, d.tables, ((1 << EXP_TABLE_COUNT) - 1) & ~(1 << EXP_TABLE_ADDITIVITY),
              "demo all tables but additivity (calib-2x2-rtn.ini has it)");
    CHECK_INT(c, d.plots, (1 << EXP_PLOT_COUNT) - 1, "demo all plots");
    exp_config_free(&d);
    CHECK(c, d.calib == NULL && d.n_calib == 0 && d.path == NULL, "free zeroes the config");
    exp_config_free(&d);  /* a zeroed config frees again harmlessly */
    exp_config_free(NULL);
}

/* ---------------------------------------------------------------------------------------- */

#define BASE                                                                                \
    "[experiment]\nname = t\nseed = 7\nout = out/t.h5\n"                                     \
    "\n[calib.en]\nsource = data/corpus/en.calib.txt\nseqs = 4\nlen = 16\n"                  \
    "\n[calib.zh]\nsource = data/corpus/zh.calib.txt\n"                                      \
    "\n[quant]\nformats = rtn:b=2..4:g=64\n"

static void test_defaults_and_sources(chk *c)
{
    const char *p = write_cfg("defaults.ini", BASE
                              "[calib.mx]\nsource = mix: en * 0.25 + zh\n"
                              "[calib.hot]\nsource = self:T=1.5\n"
                              "[calib.lo]\nsource = entropy:zh:low\n"
                              "[calib.sh]\nsource = noise:shuffle:en\n"
                              "[calib.by]\nsource = noise:bytes\n"
                              "[calib.s0]\nsource = self\n"
                              "[eval.en]\nsource = data/corpus/en.eval.txt\nseed = 0x10\n"
                              "[alloc.w]\nsets = en,zh\nobjective = weighted\n"
                              "weights = 1, 3\ntarget_bpw = 2, 2.5 ,3\n"
                              "[quant.x]\n");  /* an empty section is never seen by inih */
    exp_config g;
    vl_err err = {0, ""};
    int rc = exp_config_parse(p, &g, &err);
    CHECK(c, rc == 0, "defaults config parses (%s)", rc ? err.msg : "ok");
    if (rc)
        return;
    CHECK_INT(c, g.seed, 7, "experiment seed");
    CHECK_INT(c, g.threads, 0, "threads default");
    CHECK_STR(c, g.model, "", "model default");
    CHECK_INT(c, g.calib[1].seqs, 64, "calib seqs default");
    CHECK_INT(c, g.calib[1].len, 256, "calib len default");
    CHECK_INT(c, g.calib[0].seqs, 4, "calib seqs given");
    CHECK_INT(c, g.eval[0].seqs, 32, "eval seqs default");
    CHECK_INT(c, g.eval[0].len, 256, "eval len default");
    CHECK(c, g.eval[0].has_seed && g.eval[0].seed == 16, "hex seed 0x10");
    CHECK(c, g.eps.n == 2 && g.eps.v[0] == 0.01 && g.eps.v[1] == 0.03, "eps default");
    CHECK_NEAR(c, g.percdamp, 0.01, 0, 0, "percdamp default");
    CHECK_INT(c, g.act_order, 0, "act_order default");
    CHECK_INT(c, g.starved_policy, EXP_STARVED_UNIFORM, "starved_policy default");
    CHECK_INT(c, g.min_tokens, 16, "min_tokens default");
    CHECK_INT(c, g.sens_tokens, 0, "sens tokens default: every calibration token");
    CHECK_INT(c, g.sens_draws, 2, "sens draws default");
    CHECK_INT(c, g.sens_method, EXP_SENS_NOISE, "sens method default");
    CHECK_INT(c, g.sens_granularity, EXP_GRAN_TENSOR, "sens granularity default");
    CHECK_INT(c, g.term, EXP_TERM_PNG, "term default");
    const calib_spec *mx = &g.calib[exp_find_calib(&g, "mx")].src;
    CHECK(c, mx->kind == CALIB_MIX && mx->n_parts == 2 && !strcmp(mx->part[0], "en") &&
             !strcmp(mx->part[1], "zh") && mx->weight[0] == 0.25 && mx->weight[1] == 1.0,
          "mix: en*0.25 + zh (implicit weight 1)");
    const calib_spec *hot = &g.calib[exp_find_calib(&g, "hot")].src;
    CHECK(c, hot->kind == CALIB_SELF && hot->temperature == 1.5, "self:T=1.5");
    const calib_spec *s0 = &g.calib[exp_find_calib(&g, "s0")].src;
    CHECK(c, s0->kind == CALIB_SELF && s0->temperature == 1.0, "self alone is T=1");
    const calib_spec *lo = &g.calib[exp_find_calib(&g, "lo")].src;
    CHECK(c, lo->kind == CALIB_ENTROPY && lo->bucket == 0 && !strcmp(lo->part[0], "zh"),
          "entropy:zh:low");
    const calib_spec *sh = &g.calib[exp_find_calib(&g, "sh")].src;
    CHECK(c, sh->kind == CALIB_SHUFFLE && !strcmp(sh->part[0], "en"), "noise:shuffle:en");
    CHECK_INT(c, g.calib[exp_find_calib(&g, "by")].src.kind, CALIB_BYTES, "noise:bytes");
    const exp_alloc *w = &g.alloc[0];
    CHECK(c, w->objective == EXP_OBJ_WEIGHTED && w->weights.n == 2 && w->weights.v[1] == 3,
          "weighted objective with weights");
    CHECK(c, w->target_bpw.n == 3 && w->target_bpw.v[0] == 2 && w->target_bpw.v[1] == 2.5 &&
             w->target_bpw.v[2] == 3, "target_bpw sweep trimmed");
    CHECK_INT(c, w->solver, EXP_SOLVER_EXACT, "solver default");
    CHECK_INT(c, w->granularity, EXP_GRAN_TENSOR, "alloc granularity default");
    CHECK_INT(c, w->budget, EXP_BUDGET_BODY, "alloc budget default");
    CHECK(c, w->uniform_outer == NULL, "uniform_outer default: none");
    CHECK_INT(c, g.sens_embed_head, 0, "sens embed_head default");
    CHECK_INT(c, g.calib[0].line, 7, "line of the en source key");
    exp_config_free(&g);

    /* [experiment] baselines, random_draws; [sens] add_draws; objective minimax-raw */
    p = write_cfg("base.ini", "[experiment]\nname=b\nout=o.h5\nbaselines = rules, random\n"
                              "random_draws = 5\n[calib.en]\nsource = noise:bytes\n"
                              "[quant]\nformats=rtn:b=4:g=64\n[sens]\nadd_draws = 0\n"
                              "[alloc.m]\nsets = en\nobjective = minimax-raw\ntarget_bpw = 3\n");
    rc = exp_config_parse(p, &g, &err);
    CHECK(c, rc == 0, "baselines config parses (%s)", rc ? err.msg : "ok");
    if (!rc) {
        CHECK(c, g.baselines == (1u << EXP_BASE_RULES | 1u << EXP_BASE_RANDOM) &&
                     g.random_draws == 5 && g.sens_add_draws == 0 &&
                     g.alloc[0].objective == EXP_OBJ_MINIMAX_RAW,
              "baselines rules+random, 5 draws, add_draws 0, minimax-raw");
        exp_config_free(&g);
    }
    p = write_cfg("nobase.ini", "[experiment]\nname=b\nout=o.h5\n[calib.en]\nsource = "
                                "noise:bytes\n[quant]\nformats=rtn:b=4:g=64\n");
    rc = exp_config_parse(p, &g, &err);
    if (!rc) {
        CHECK(c, g.baselines == 0 && g.random_draws == 3 && g.sens_add_draws == 30,
              "defaults: no baselines, 3 random draws, 30 additivity draws");
        CHECK(c, g.mem_cap == -1, "mem_cap default: -1 (batch-major stages)");
        exp_config_free(&g);
    }

    /* the path rule: a relative path missing from the working directory is found beside the
     * config file */
    write_cfg("local.calib.txt", "hello\n");
    p = write_cfg("local.ini", "[experiment]\nname=l\nout=o.h5\n[calib.l]\nsource = "
                               "local.calib.txt\n[quant]\nformats=rtn:b=4:g=64\n");
    rc = exp_config_parse(p, &g, &err);
    char want[256];
    snprintf(want, sizeof want, "%s/local.calib.txt", g_dir);
    CHECK(c, rc == 0, "corpus beside the config (%s)", rc ? err.msg : "ok");
    if (!rc) {
        CHECK_STR(c, g.calib[0].resolved, want, "resolved beside the config");
        CHECK_STR(c, g.calib[0].src.source, "local.calib.txt", "path kept as written");
    }
    exp_config_free(&g);
}

/* ---------------------------------------------------------------------------------------- */

typedef struct {
    const char *what;
    int with_base;      /* 1: the text follows BASE */
    const char *text;
    int line;           /* line within text (1-based) of the error; 0: "FILE: " without a line */
    const char *frag;   /* part of the message */
} bad_case;

static const bad_case bad_cases[] = {
    {"bad baseline", 0, "[experiment]\nname = t\nout = o.h5\nbaselines = uniform, fancy\n", 4,
     "fancy"},
    {"random draws", 0, "[experiment]\nname = t\nout = o.h5\nrandom_draws = 0\n", 4,
     "random_draws"},
    {"add draws", 1, "[sens]\nadd_draws = -1\n", 2, "add_draws"},
    {"mem_cap", 0, "[experiment]\nname = t\nout = o.h5\nmem_cap = -5\n", 4, "mem_cap"},
    {"mem_cap too large", 0, "[experiment]\nname = t\nout = o.h5\nmem_cap = 18446744073709551615\n",
     4, "too large"},
    {"unknown key", 1, "[sens]\nmethd = noise\n", 2,
     "[sens] methd: unknown key (valid: method, eps, granularity, seed, tokens, draws, embed_head, "
     "add_draws)"},
    {"unknown section", 1, "[sensitivity]\neps = 0.1\n", 1,
     "[sensitivity]: unknown section (valid: experiment, calib.NAME"},
    {"unnamed calib", 1, "[calib]\nsource = noise:bytes\n", 1, "[calib]: unknown section"},
    {"named experiment", 1, "[experiment.x]\nname = y\n", 1, "[experiment.x]: unknown section"},
    {"bad section name", 1, "[calib.a/b]\nsource = noise:bytes\n", 1, "bad section name \"a/b\""},
    {"bad number", 1, "[sens]\neps = 0.01, abc\n", 2, "[sens] eps: \"abc\" is not a number"},
    {"trailing junk", 1, "[calib.x]\nsource = noise:bytes\nseqs = 12x\n", 3,
     "[calib.x] seqs: \"12x\" is not an integer"},
    {"seqs range", 1, "[calib.x]\nsource = noise:bytes\nseqs = 0\n", 3,
     "[calib.x] seqs: 0 not in [1, 10000000]"},
    {"len range", 1, "[eval.x]\nsource = noise:bytes\nlen = 1\n", 3, "[eval.x] len: 1 not in [2,"},
    {"eps range", 1, "[sens]\neps = 0.5, 1\n", 2, "[sens] eps: 1 not in (0, 1)"},
    {"target range", 1, "[alloc.a]\nsets = en\ntarget_bpw = 2, 33\n", 3,
     "[alloc.a] target_bpw: 33 not in (0, 32]"},
    {"target zero", 1, "[alloc.a]\nsets = en\ntarget_bpw = 0\n", 3, "0 not in (0, 32]"},
    {"negative seed", 1, "[sens]\nseed = -1\n", 2, "[sens] seed: \"-1\" is not an unsigned"},
    {"seed overflow", 0, "[experiment]\nname = t\nseed = 18446744073709551616\n", 3,
     "[experiment] seed: \"18446744073709551616\" does not fit in 64 bits"},
    {"nan", 1, "[sens]\neps = nan\n", 2, "\"nan\" is not a number"},
    {"bad bool", 1, "[report]\nterm = svg\n[sens]\ngranularity = expert\n", 4,
     "[sens] granularity: \"expert\" is not one of tensor|group"},
    {"bad enum", 1, "[report]\nterm = jpg\n", 2, "[report] term: \"jpg\" is not one of png|svg|pdf"},
    {"draws 0", 1, "[sens]\ndraws = 0\n", 2, "[sens] draws: 0 not in [1, 64]"},
    {"three eps", 1, "[sens]\neps = 0.01, 0.02, 0.03\n", 2,
     "[sens] eps: 3 values; give one or two noise levels"},
    {"percdamp 0", 0,
     "[experiment]\nname = t\nout = o.h5\n[quant]\nformats = rtn:b=2:g=64\npercdamp = 0\n", 6,
     "[quant] percdamp: 0 not in (0, 1]"},
    {"route_all refused", 0,
     "[experiment]\nname = t\nout = o.h5\n[quant]\nformats = rtn:b=2:g=64\n"
     "starved_policy = route_all\n", 6,
     "[quant] starved_policy: route_all is not implemented (the stats stage gathers no "
     "route-all statistics); use uniform or rtn"},
    {"bad table", 1, "[report]\ntables = kld_matrix, pie\n", 2, "\"pie\" is not one of kld_matrix"},
    {"empty list item", 1, "[sens]\neps = 0.01,,0.03\n", 2, "[sens] eps: empty item 2"},
    {"empty value", 0, "[experiment]\nname =\n", 2, "[experiment] name: empty value"},
    {"duplicate key", 1, "[sens]\neps = 0.1\n\neps = 0.2\n", 4,
     "[sens] eps: duplicate key (first on line"},
    {"continuation line", 1, "[sens]\neps = 0.1\n   0.2\n", 3, "duplicate key"},
    {"duplicate section", 1, "[calib.en]\nsource = noise:bytes\n", 1, "[calib.en]: duplicate section"},
    {"repeated header", 1, "[report]\nterm = png\n[report]\nterm = svg\n", 3,
     "[report]: duplicate section"},
    {"missing key", 1, "[calib.ru]\nseqs = 4\n", 0, "[calib.ru]: missing key \"source\""},
    {"missing out", 0, "[experiment]\nname = t\n[calib.a]\nsource = noise:bytes\n"
                       "[quant]\nformats = rtn:b=2:g=64\n", 0,
     "[experiment]: missing key \"out\""},
    {"missing target", 1, "[alloc.a]\nsets = en\n", 0, "[alloc.a]: missing key \"target_bpw\""},
    {"missing quant", 0, "[experiment]\nname = t\nout = o.h5\n[calib.a]\nsource = noise:bytes\n",
     0, "missing section [quant]"},
    {"no calib", 0, "[experiment]\nname = t\nout = o.h5\n[quant]\nformats = rtn:b=2:g=64\n", 0,
     "no [calib.NAME] section"},
    {"alloc dangling", 1, "[alloc.a]\nsets = en, fr\ntarget_bpw = 2.5\n", 2,
     "[alloc.a] sets: \"fr\" names no [calib.fr] section"},
    {"alloc set twice", 1, "[alloc.a]\nsets = en, en\n", 2, "set \"en\" listed twice"},
    {"mix dangling", 1, "\n[calib.m]\nsource = mix:en*0.5+ru*0.5\n", 3,
     "[calib.m] source: \"ru\" names no [calib.ru] section"},
    {"shuffle dangling", 1, "[eval.s]\nsource = noise:shuffle:en\n", 2,
     "[eval.s] source: \"en\" names no [eval.en] section"},
    {"entropy dangling", 1, "[calib.e]\nsource = entropy:xx:high\n", 2, "\"xx\" names no [calib.xx]"},
    {"mix cycle", 1, "[calib.a]\nsource = mix:en*1+b*1\n[calib.b]\nsource = mix:zh+a\n", 4,
     "[calib.b] source: reference cycle a -> b -> a"},
    {"self cycle", 1, "[calib.a]\nsource = entropy:a:low\n", 2, "reference cycle a -> a"},
    {"bad bucket", 1, "[calib.x]\nsource = entropy:en:huge\n", 2,
     "[calib.x] source: entropy bucket \"huge\" is not low, mid or high"},
    {"bad noise", 1, "[calib.x]\nsource = noise:pink\n", 2, "is not noise:uniform, noise:bytes"},
    {"typo kind", 1, "[calib.x]\nsource = noize:uniform\n", 2, "unknown source kind \"noize:\""},
    {"mix of one", 1, "[calib.x]\nsource = mix:en*1\n", 2, "mix needs at least two sets"},
    {"mix weight", 1, "[calib.x]\nsource = mix:en*0+zh*1\n", 2, "mix weight of item 1 must be > 0"},
    {"mix twice", 1, "[calib.x]\nsource = mix:en+en\n", 2, "mix names set \"en\" twice"},
    {"self temperature", 1, "[calib.x]\nsource = self:T=0\n", 2, "self temperature 0 not in"},
    {"self syntax", 1, "[calib.x]\nsource = self:1.0\n", 2, "expected self or self:T="},
    {"missing corpus", 1, "[eval.fr]\nsource = data/corpus/fr.eval.txt\n", 2,
     "[eval.fr] source: corpus file \"data/corpus/fr.eval.txt\" not found"},
    {"weights mismatch", 1, "[alloc.w]\nsets = en, zh\nobjective = weighted\nweights = 1, 2, 3\n"
                            "target_bpw = 2\n", 4, "[alloc.w] weights: 3 weights for 2 sets"},
    {"weights missing", 1, "[alloc.w]\nsets = en, zh\nobjective = weighted\ntarget_bpw = 2\n", 3,
     "objective weighted needs weights"},
    {"weights unused", 1, "[alloc.w]\nsets = en, zh\nweights = 1, 2\ntarget_bpw = 2\n", 3,
     "only used with objective = weighted"},
    {"weights zero", 1, "[alloc.w]\nsets = en\nobjective = weighted\nweights = 0\n", 4,
     "all weights are 0"},
    {"weights negative", 1, "[alloc.w]\nsets = en\nweights = -1\n", 3, "-1 not in [0,"},
    {"bad formats", 0, "[experiment]\nname = t\nout = o.h5\n[calib.a]\nsource = noise:bytes\n"
                       "[quant]\nformats = rtn:b=9:g=64\n", 7, "[quant] formats: "},
    {"bad budget", 1, "[alloc.a]\nsets = en\ntarget_bpw = 2\nbudget = file\n", 4,
     "[alloc.a] budget: "},
    {"gguf without embed", 1, "[alloc.a]\nsets = en\ntarget_bpw = 2\ngranularity = gguf\n", 4,
     "[alloc.a] granularity gguf: needs the token embedding and LM head as units"},
    {"outer without embed", 1, "[alloc.a]\nsets = en\ntarget_bpw = 2\nuniform = ggml-iq2_xs\n"
                               "uniform_outer = ggml-q5_K\n", 5,
     "[alloc.a] uniform_outer: needs the token embedding"},
    {"bad outer", 1, "[sens]\nembed_head = yes\n[alloc.a]\nsets = en\ntarget_bpw = 2\n"
                     "uniform_outer = q5\n", 6, "[alloc.a] uniform_outer: "},
    {"bad llama_mix", 1, "[sens]\ngranularity = gguf\n[alloc.a]\nsets = en\ntarget_bpw = 2\n"
                         "granularity = gguf\nllama_mix = IQ2_XS, IQ2_xs\n", 7,
     "[alloc.a] llama_mix: \"IQ2_xs\" is no supported llama.cpp ftype (known: IQ2_XXS"},
    {"llama_mix twice", 1, "[sens]\ngranularity = gguf\n[alloc.a]\nsets = en\ntarget_bpw = 2\n"
                           "granularity = gguf\nllama_mix = IQ2_S,IQ2_S\n", 7,
     "[alloc.a] llama_mix: \"IQ2_S\" is listed twice"},
    {"llama_mix granularity", 1, "[sens]\nembed_head = yes\n[alloc.a]\nsets = en\n"
                                 "target_bpw = 2\nllama_mix = IQ2_XS\n", 6,
     "[alloc.a] llama_mix: needs granularity = gguf"},
    {"bad uniform", 1, "[alloc.a]\nsets = en\ntarget_bpw = 2\nuniform = gptq-b2-g64-asym, q4_k\n", 4,
     "[alloc.a] uniform: "},
    {"syntax", 1, "[sens\neps = 0.1\n", 1, "syntax error"},
    {"no equals", 1, "[sens]\njust words\n", 2, "syntax error"},
    {"outside section", 0, "name = t\n[experiment]\n", 1, "key outside any section"},
    {"long line", 1, "; a comment\n[report]\nterm = "
                     "png                                                                    "
                     "                                                                       "
                     "                                                                 x\n", 3,
     "line longer than 199 characters"},
};

static void test_errors(chk *c)
{
    char text[4096];
    int base_lines = count_lines(BASE);
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *b = &bad_cases[i];
        snprintf(text, sizeof text, "%s%s", b->with_base ? BASE : "", b->text);
        char name[64];
        snprintf(name, sizeof name, "bad%02zu.ini", i);
        const char *p = write_cfg(name, text);
        char prefix[320];
        if (b->line)
            snprintf(prefix, sizeof prefix, "%s:%d: ", p,
                     b->line + (b->with_base ? base_lines : 0));
        else
            snprintf(prefix, sizeof prefix, "%s: ", p);
        exp_config g;
        vl_err err = {0, ""};
        int rc = exp_config_parse(p, &g, &err);
        CHECK(c, rc == VL_ECONFIG && err.code == VL_ECONFIG, "%s: rejected (rc %d)", b->what, rc);
        CHECK(c, !strncmp(err.msg, prefix, strlen(prefix)), "%s: \"%s\" starts with \"%s\"",
              b->what, err.msg, prefix);
        CHECK_HAS(c, err.msg, b->frag, b->what);
        CHECK(c, !strchr(err.msg, '\n'), "%s: one line", b->what);
        CHECK(c, g.path == NULL && g.n_calib == 0 && g.calib == NULL, "%s: cfg zeroed", b->what);
    }

    exp_config g;
    vl_err err = {0, ""};
    char p[256];
    snprintf(p, sizeof p, "%s/absent.ini", g_dir);
    int rc = exp_config_parse(p, &g, &err);
    CHECK_INT(c, rc, VL_ENOTFOUND, "absent config file: VL_ENOTFOUND");
    CHECK(c, strstr(err.msg, p) == err.msg && strstr(err.msg, "No such file"),
          "absent config names the file: %s", err.msg);
}

/* ---------------------------------------------------------------------------------------- */

static void test_seeds(chk *c)
{
    /* FNV-1a 64 reference vectors (Fowler–Noll–Vo test suite) */
    CHECK(c, hash_fnv1a64(HASH_FNV_OFFSET, "", 0) == 0xcbf29ce484222325ULL, "fnv1a64 \"\"");
    CHECK(c, hash_fnv1a64(HASH_FNV_OFFSET, "a", 1) == 0xaf63dc4c8601ec8cULL, "fnv1a64 \"a\"");
    CHECK(c, hash_fnv1a64(HASH_FNV_OFFSET, "foobar", 6) == 0x85944171f73967e8ULL,
          "fnv1a64 \"foobar\"");

    const char *t = "[experiment]\nname=s\nout=o.h5\nseed=%d\n"
                    "[calib.en]\nsource=noise:bytes\n[calib.zh]\nsource=noise:bytes\n"
                    "[calib.fixed]\nsource=noise:bytes\nseed=42\n"
                    "[eval.en]\nsource=noise:bytes\n[quant]\nformats=rtn:b=2:g=64\n";
    char text[512];
    exp_config a, b, d;
    vl_err err = {0, ""};
    snprintf(text, sizeof text, t, 5);
    int rc = exp_config_parse(write_cfg("seeds-a.ini", text), &a, &err);
    rc |= exp_config_parse(write_cfg("seeds-b.ini", text), &b, &err);
    snprintf(text, sizeof text, t, 6);
    rc |= exp_config_parse(write_cfg("seeds-d.ini", text), &d, &err);
    CHECK(c, rc == 0, "seed configs parse (%s)", rc ? err.msg : "ok");
    if (!rc) {
        uint64_t en = exp_set_seed(&a, &a.calib[0], 0), zh = exp_set_seed(&a, &a.calib[1], 0);
        CHECK(c, en == exp_set_seed(&b, &b.calib[0], 0), "derived seed deterministic");
        CHECK(c, en != zh, "derived seeds differ per set");
        CHECK(c, en != exp_set_seed(&a, &a.eval[0], 1), "calib.en and eval.en differ");
        CHECK(c, en != exp_set_seed(&d, &d.calib[0], 0), "derived seed follows experiment seed");
        CHECK(c, exp_set_seed(&a, &a.calib[2], 0) == 42, "explicit seed kept");
        CHECK(c, exp_sens_seed(&a) == exp_sens_seed(&b) && exp_sens_seed(&a) != exp_sens_seed(&d),
              "sens seed derived from the experiment seed");
        CHECK(c, !a.calib[0].has_seed && a.calib[2].has_seed, "has_seed records presence");
    }
    exp_config_free(&a);
    exp_config_free(&b);
    exp_config_free(&d);
}

/* ---------------------------------------------------------------------------------------- */

#define NSTAGE 5
typedef struct {
    uint64_t k[NSTAGE];  /* stats, sens, alloc.a, eval, report */
    int ok;
} keys;

static keys keys_of(chk *c, const char *name, const char *text)
{
    keys r = {{0}, 0};
    exp_config g;
    vl_err err = {0, ""};
    if (exp_config_parse(write_cfg(name, text), &g, &err)) {
        CHECK(c, 0, "%s parses: %s", name, err.msg);
        return r;
    }
    int a = exp_find_alloc(&g, "a");
    r.k[0] = exp_stage_key(&g, EXP_STAGE_STATS, 0);
    r.k[1] = exp_stage_key(&g, EXP_STAGE_SENS, 0);
    r.k[2] = exp_stage_key(&g, EXP_STAGE_ALLOC, a);
    r.k[3] = exp_stage_key(&g, EXP_STAGE_EVAL, 0);
    r.k[4] = exp_stage_key(&g, EXP_STAGE_REPORT, 0);
    r.ok = a >= 0;
    exp_config_free(&g);
    return r;
}

/* changed: bit s set when stage s's key must differ from the reference */
static void expect_keys(chk *c, const keys *ref, const keys *k, unsigned changed, const char *what)
{
    static const char *const names[NSTAGE] = {"stats", "sens", "alloc", "eval", "report"};
    for (int s = 0; s < NSTAGE; s++) {
        int differs = ref->k[s] != k->k[s];
        CHECK(c, ref->ok && k->ok && differs == (int)(changed >> s & 1), "%s: %s key %s", what,
              names[s], changed >> s & 1 ? "changes" : "unchanged");
    }
}

#define KEY_CFG(SEED, NAME, SEQS, DAMP, BPW, UNI, EVLEN, TERM)                                 \
    "[experiment]\nname = " NAME "\nseed = " SEED "\nout = out/k.h5\n"                          \
    "[calib.en]\nsource = data/corpus/en.calib.txt\nseqs = " SEQS "\n"                          \
    "[calib.zh]\nsource = data/corpus/zh.calib.txt\n"                                           \
    "[calib.mx]\nsource = mix:en*0.5+zh*0.5\n"                                                  \
    "[eval.en]\nsource = data/corpus/en.eval.txt\nlen = " EVLEN "\n"                            \
    "[quant]\nformats = rtn:b=2..4:g=64\npercdamp = " DAMP "\n"                                 \
    "[sens]\neps = 0.01, 0.03\n"                                                                \
    "[alloc.a]\nsets = en\ntarget_bpw = " BPW "\nuniform = " UNI "\n"                           \
    "[alloc.b]\nsets = en, zh\nobjective = minimax\ntarget_bpw = 2.5\n"                         \
    "[report]\nterm = " TERM "\n"

static void test_keys(chk *c)
{
    keys ref = keys_of(c, "k-ref.ini", KEY_CFG("1", "k", "8", "0.01", "2.5", "rtn-b2-g64-asym",
                                               "64", "png"));
    CHECK(c, ref.k[0] != ref.k[1] && ref.k[1] != ref.k[2] && ref.k[2] != ref.k[3],
          "stage keys are distinct");

    /* same content: comments, blanks, key order, section order, spacing, spelled-out defaults */
    keys same = keys_of(c, "k-same.ini",
                        "; a comment\n# another\n\n[calib.zh]\n  source=data/corpus/zh.calib.txt"
                        "   ; inline\nseqs = 64\n"
                        "[report]\nterm=png\n"
                        "[alloc.b]\ntarget_bpw=2.5\nobjective=minimax\nsets=en,zh\n"
                        "[alloc.a]\nuniform=rtn-b2-g64-asym\ntarget_bpw=2.50\nsets=en\n"
                        "[experiment]\nout = out/k.h5\nseed = 0x1\nname = k\n"
                        "[calib.mx]\nsource = mix:en * 0.5 + zh*0.50\n"
                        "[calib.en]\nseqs=8\nsource=data/corpus/en.calib.txt\n"
                        "[sens]\neps=0.01,0.03\nmethod=noise\n"
                        "[eval.en]\nlen=64\nsource=data/corpus/en.eval.txt\n"
                        "[quant]\npercdamp=1e-2\nformats=rtn:b=2..4:g=64\n");
    expect_keys(c, &ref, &same, 0, "comments/whitespace/order");

    keys k;
    k = keys_of(c, "k-name.ini", KEY_CFG("1", "other-name", "8", "0.01", "2.5", "rtn-b2-g64-asym",
                                         "64", "png"));
    expect_keys(c, &ref, &k, 0, "experiment name");
    k = keys_of(c, "k-bpw.ini", KEY_CFG("1", "k", "8", "0.01", "2.5, 3", "rtn-b2-g64-asym", "64",
                                        "png"));
    expect_keys(c, &ref, &k, 1u << 2 | 1u << 3 | 1u << 4, "target_bpw");
    k = keys_of(c, "k-uni.ini", KEY_CFG("1", "k", "8", "0.01", "2.5", "gptq-b2-g64-asym", "64",
                                        "png"));
    expect_keys(c, &ref, &k, 1u << 3 | 1u << 4, "uniform baselines");
    k = keys_of(c, "k-unimenu.ini", KEY_CFG("1", "k", "8", "0.01", "2.5", "rtn:b=2:g=64", "64",
                                            "png"));
    expect_keys(c, &ref, &k, 0, "a uniform baseline in menu spelling is the same format");
    k = keys_of(c, "k-eval.ini", KEY_CFG("1", "k", "8", "0.01", "2.5", "rtn-b2-g64-asym", "128",
                                         "png"));
    expect_keys(c, &ref, &k, 1u << 3 | 1u << 4, "eval len");
    k = keys_of(c, "k-term.ini", KEY_CFG("1", "k", "8", "0.01", "2.5", "rtn-b2-g64-asym", "64",
                                         "svg"));
    expect_keys(c, &ref, &k, 1u << 4, "report term");
    k = keys_of(c, "k-damp.ini", KEY_CFG("1", "k", "8", "0.02", "2.5", "rtn-b2-g64-asym", "64",
                                         "png"));
    expect_keys(c, &ref, &k, 0x1eu, "percdamp");
    k = keys_of(c, "k-seqs.ini", KEY_CFG("1", "k", "9", "0.01", "2.5", "rtn-b2-g64-asym", "64",
                                         "png"));
    expect_keys(c, &ref, &k, 0x1fu, "calib seqs");
    k = keys_of(c, "k-seed.ini", KEY_CFG("2", "k", "8", "0.01", "2.5", "rtn-b2-g64-asym", "64",
                                         "png"));
    expect_keys(c, &ref, &k, 0x1fu, "experiment seed");
    /* scoring the second half of each window changes what eval measures, not before it; the
     * default spelled out changes nothing (keys of configs without it are as before) */
    k = keys_of(c, "k-half.ini", KEY_CFG("1", "k\nscore_second_half = true", "8", "0.01", "2.5",
                                         "rtn-b2-g64-asym", "64", "png"));
    expect_keys(c, &ref, &k, 1u << 3 | 1u << 4, "score_second_half = true");
    k = keys_of(c, "k-full.ini", KEY_CFG("1", "k\nscore_second_half = no", "8", "0.01", "2.5",
                                         "rtn-b2-g64-asym", "64", "png"));
    expect_keys(c, &ref, &k, 0, "score_second_half = no (the default)");
    /* layer-major stages give the same bits: mem_cap never enters a key */
    k = keys_of(c, "k-memcap.ini", KEY_CFG("1", "k\nmem_cap = 1000000", "8", "0.01", "2.5",
                                           "rtn-b2-g64-asym", "64", "png"));
    expect_keys(c, &ref, &k, 0, "mem_cap = 1000000 (layer-major: same results)");
}

static void test_render_roundtrip(chk *c)
{
    exp_config a, b;
    vl_err err = {0, ""};
    if (exp_config_parse("experiments/calib-language.ini", &a, &err)) {
        CHECK(c, 0, "calib-language.ini: %s", err.msg);
        return;
    }
    char p1[256], p2[256];
    snprintf(p1, sizeof p1, "%s/render1.ini", g_dir);
    snprintf(p2, sizeof p2, "%s/render2.ini", g_dir);
    track(p1);
    track(p2);
    FILE *f = fopen(p1, "w");
    int rc = exp_config_render(&a, f, &err);
    fclose(f);
    CHECK_INT(c, rc, 0, "render");
    rc = exp_config_parse(p1, &b, &err);
    CHECK(c, rc == 0, "rendered config parses (%s)", rc ? err.msg : "ok");
    if (!rc) {
        f = fopen(p2, "w");
        exp_config_render(&b, f, &err);
        fclose(f);
        char t1[16384], t2[16384];
        FILE *f1 = fopen(p1, "r"), *f2 = fopen(p2, "r");
        size_t n1 = fread(t1, 1, sizeof t1 - 1, f1), n2 = fread(t2, 1, sizeof t2 - 1, f2);
        fclose(f1);
        fclose(f2);
        t1[n1] = t2[n2] = 0;
        CHECK(c, n1 > 500 && n1 == n2 && !memcmp(t1, t2, n1), "render∘parse∘render is stable "
              "(%zu bytes)", n1);
        CHECK(c, strstr(t1, "[calib.noise]\nsource = noise:uniform\nseqs = 16\nlen = 64\n"),
              "canonical noise set");
        CHECK(c, strstr(t1, "[sens]\nmethod = noise\neps = 0.01\ngranularity = group\n"
                            "seed = "), "canonical sens");
        CHECK(c, strstr(t1, "[alloc.code]\nsets = code\nobjective = sum\nsolver = exact\n"
                            "granularity = tensor\ntarget_bpw = 2.5\n\n[alloc.en]\n"),
              "canonical alloc, sorted by name");
        for (int s = EXP_STAGE_STATS; s <= EXP_STAGE_REPORT; s++) {
            if (s == EXP_STAGE_ALLOC)
                continue;
            CHECK(c, exp_stage_key(&a, (exp_stage)s, 0) == exp_stage_key(&b, (exp_stage)s, 0),
                  "stage %d key survives the round trip", s);
        }
        for (int i = 0; i < a.n_alloc; i++) {
            int j = exp_find_alloc(&b, a.alloc[i].name);
            CHECK(c, j >= 0 && exp_stage_key(&a, EXP_STAGE_ALLOC, i) ==
                                   exp_stage_key(&b, EXP_STAGE_ALLOC, j),
                  "alloc.%s key survives the round trip", a.alloc[i].name);
        }
        exp_config_free(&b);
    }
    exp_config_free(&a);
}

int main(void)
{
    chk c;
    chk_init(&c, "expcfg");
    if (tio_tmpdir(g_dir, sizeof g_dir, "expcfg"))
        return 2;
    test_shipped(&c);
    test_defaults_and_sources(&c);
    test_errors(&c);
    test_seeds(&c);
    test_keys(&c);
    test_render_roundtrip(&c);
    /* the files are left behind only when something failed, for inspection */
    if (!c.fail) {
        for (int i = 0; i < g_nwritten; i++)
            unlink(g_written[i]);
        rmdir(g_dir);
    }
    return chk_done(&c);
}
