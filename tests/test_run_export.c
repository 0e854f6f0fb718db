/* tests/test_run_export.c — the export stage of `vbrlab run` ([experiment] export = llama.cpp)
 * on tests/data/run-export.ini: the embedded model with a one-type menu (iq2_xs), so the
 * allocation is known — every decoder matrix iq2_xs, token_embd (tied) and routers bf16, norms,
 * biases and shared_expert_gate f32 — and every file's content can be written down here.
 *
 * Checks: tensor-types.txt holds exactly the 60 expected lines; quantize.sh is the exact script
 * (imatrix, the type file, the embedding type, base Q4_0 — the first block-32 type no tensor
 * uses — and no --pure); imatrix.gguf has an entry for every iq2_xs tensor; /export/en-3 holds
 * bpw recomputed from the tensor sizes with units/meaning and the file texts; a rerun is all
 * cached and leaves the store byte-identical; --only export redoes only the export; config
 * errors are one line naming FILE:LINE and the key and leave no store; a tensor llama-quantize
 * would refuse without an imatrix is refused before anything is written.
 */
#define _POSIX_C_SOURCE 200809L
#include "../alloc/gguf_export.h"
#include "../analysis/imatrix.h"
#include "../experiments/expcfg.h"
#include "../experiments/runner.h"
#include "../io/h5s.h"
#include "check.h"
#include "testio.h"
#include "testrun.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INI "tests/data/run-export.ini"
#define DIR "build/test-run-export"
#define OUT DIR "/export.h5"
#define REC DIR "/export.export/en-3"

/* The model's decoder matrices, per layer (config.json: hidden 256, 2 kv heads of 64, 16
 * experts of 256, a shared expert of 256). */
static const char *const MATS[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate_exps",
                                   "ffn_up_exps", "ffn_down_exps", "ffn_gate_shexp",
                                   "ffn_up_shexp", "ffn_down_shexp"};
#define LAYERS 6

static int run_lib(const char *path, int only, char *log, size_t cap, vl_err *err)
{
    run_opts o = run_opts_defaults();
    o.only = only;
    return trun(path, o, log, cap, err);
}

static char *attr(h5s_store *s, const char *obj, const char *name)
{
    char *v = NULL;
    vl_err e;
    return h5s_attr_get(s, obj, name, &v, &e) ? NULL : v;
}

static void check_types(chk *c)
{
    char *tt = tio_slurp(REC "/tensor-types.txt", NULL);
    int all = tt != NULL, lines = 0;
    size_t want_len = 0;
    for (int l = 0; l < LAYERS; l++)
        for (size_t m = 0; m < sizeof MATS / sizeof MATS[0]; m++) {
            char line[128];
            want_len += (size_t)snprintf(line, sizeof line, "^blk\\.%d\\.%s\\.weight$=iq2_xs\n", l, MATS[m]);
            all = all && strstr(tt, line);
        }
    for (const char *p = tt; p && (p = strchr(p, '\n')); p++)
        lines++;
    CHECK(c, all && lines == 60 && strlen(tt) == want_len,
          "tensor-types.txt: exactly the 60 lines ^blk\\.L\\.NAME\\.weight$=iq2_xs (%d lines)", lines);
    free(tt);
}

static void check_script(chk *c)
{
    char *sh = tio_slurp(REC "/quantize.sh", NULL);
    static const char want[] =
        "#!/bin/sh\n# Made by: vbrlab run " INI " (export stage)\n"
        "# Usage: quantize.sh MODEL-BF16.gguf OUT.gguf [THREADS]\n"
        "# MODEL-BF16.gguf: python convert_hf_to_gguf.py models/vbrlab-moe-tiny --outtype bf16 --outfile "
        "MODEL-BF16.gguf\n"
        "# Base type Q4_0: no tensor uses it, every tensor has its type from tensor-types.txt or the\n"
        "# embedding/output options (llama-quantize logs \"applying manual override\" for each).\n"
        "set -e\nDIR=$(dirname \"$0\")\n"
        "exec llama-quantize --imatrix \"$DIR/imatrix.gguf\" --tensor-type-file \"$DIR/tensor-types.txt\" "
        "--token-embedding-type bf16 \"$1\" \"$2\" Q4_0 ${3:+\"$3\"}\n";
    CHECK(c, sh && !strcmp(sh, want), "quantize.sh: the exact script (base Q4_0, imatrix, no --pure)\n%s", sh ? sh : "");
    struct stat st;
    CHECK(c, !stat(REC "/quantize.sh", &st) && (st.st_mode & 0111), "quantize.sh is executable");
    char *rd = tio_slurp(REC "/README.md", NULL);
    CHECK(c, rd && strstr(rd, "# llama.cpp recipe for allocation en-3\n") &&
                 strstr(rd, "2. `sh quantize.sh MODEL-BF16.gguf OUT.gguf [THREADS]`") &&
                 strstr(rd, "| whole file | 4.5898 | 25460480 |\n") && strstr(rd, "| iq2_xs | 60 | 21233664 |\n") &&
                 strstr(rd, "| en | "),
          "README: what to run, bpw, types, predicted KLD of en");
    free(sh), free(rd);
    imx_data d;
    vl_err e = {0};
    int rc = imx_read(&d, REC "/imatrix.gguf", &e), have = 0;
    for (int l = 0; !rc && l < LAYERS; l++)
        for (size_t m = 0; m < sizeof MATS / sizeof MATS[0]; m++) {
            char name[96];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, MATS[m]);
            const imx_entry *x = imx_find(&d, name);
            have += x && x->n_in == 256 && x->n_mat == (strstr(name, "_exps") ? 16 : 1);
        }
    CHECK(c, rc == 0 && have == 60, "imatrix.gguf: an entry of the right shape per iq2_xs tensor (%d; %s)", have, e.msg);
    if (!rc)
        imx_free(&d);
}

/* bpw recomputed from the weights per type: iq2_xs 74 bytes per 256, bf16 2, f32 4; the
 * body is blk.* (the routers 6 × 16 × 256 bf16; every f32 but the final norm). */
static void check_store(chk *c)
{
    const double iq = 21233664, bf = 4218880, f32 = 7936, router = LAYERS * 16 * 256, fnorm = 256;
    double file = 8 * (iq * 74 / 256 + bf * 2 + f32 * 4) / (iq + bf + f32);
    double body = 8 * (iq * 74 / 256 + router * 2 + (f32 - fnorm) * 4) / (iq + router + f32 - fnorm);
    h5s_store *s = NULL;
    vl_err e = {0};
    double *bpw = NULL;
    int64_t shape[H5S_MAX_DIMS] = {0};
    int rc = h5s_open(&s, OUT, &e);
    if (!rc)
        rc = h5s_read(s, "/export/en-3/bpw", H5S_F64, (void **)&bpw, NULL, shape, &e);
    CHECK(c, !rc && shape[0] == 2 && fabs(bpw[0] - file) < 1e-12 && fabs(bpw[1] - body) < 1e-12,
          "/export/en-3/bpw = [%.6f, %.6f] recomputed (%s)", file, body, e.msg);
    vl_free(bpw);
    char *u = rc ? NULL : attr(s, "/export/en-3/bpw", "units"), *m = rc ? NULL : attr(s, "/export/en-3/bpw", "meaning");
    CHECK(c, u && !strcmp(u, "bit/weight") && m && strstr(m, "whole GGUF file"), "bpw has units and meaning");
    vl_free(u), vl_free(m);
    char *ft = rc ? NULL : attr(s, "/export/en-3", "ftype"), *dir = rc ? NULL : attr(s, "/export/en-3", "dir");
    char *im = rc ? NULL : attr(s, "/export/en-3", "imatrix"), *tt = rc ? NULL : attr(s, "/export/en-3", "tensor_types");
    char *sh = rc ? NULL : attr(s, "/export/en-3", "quantize_sh"), *st = rc ? NULL : attr(s, "/stages/export", "status");
    char *ftt = tio_slurp(REC "/tensor-types.txt", NULL), *fsh = tio_slurp(REC "/quantize.sh", NULL);
    CHECK(c, ft && !strcmp(ft, "Q4_0") && dir && !strcmp(dir, REC) && im && !strcmp(im, "imatrix.gguf"),
          "/export/en-3 attrs: ftype Q4_0, dir, imatrix");
    CHECK(c, tt && ftt && !strcmp(tt, ftt) && sh && fsh && !strcmp(sh, fsh), "/export/en-3 holds the files' texts");
    CHECK(c, st && !strcmp(st, "done"), "/stages/export recorded");
    vl_free(ft), vl_free(dir), vl_free(im), vl_free(tt), vl_free(sh), vl_free(st);
    free(ftt), free(fsh);
    /* no statistics: iq2_xs would be refused by llama-quantize, so nothing is written */
    ggr_export_req q = {.model_dir = "models/vbrlab-moe-tiny", .alloc = "en-3", .out_dir = DIR "/nostats",
                        .stats = "", .sets = "", .embd_type = -1, .output_type = -1};
    int r2 = rc ? -1 : ggr_export(s, &q, NULL, &e);
    CHECK(c, r2 == VL_EARG && strstr(e.msg, "iq2_xs") && strstr(e.msg, "imatrix") && access(DIR "/nostats", F_OK) != 0,
          "no statistics for an iq2_xs recipe: refused, nothing written (%s)", e.msg);
    /* a newline in the model path or the config name (both land in quantize.sh's comments)
     * must not end the comment and run the rest as a command */
    char evil[512], cwd[4096];
    snprintf(evil, sizeof evil, DIR "/m\ntouch pwned");
    int ln = getcwd(cwd, sizeof cwd) ? 0 : -1;
    if (!ln) {
        char target[4200];
        snprintf(target, sizeof target, "%s/models/vbrlab-moe-tiny", cwd);
        unlink(evil);
        ln = symlink(target, evil);
    }
    ggr_export_req qe = {.model_dir = evil, .alloc = "en-3", .made_by = "vbrlab run x\nrm -rf y",
                         .out_dir = DIR "/evil", .embd_type = -1, .output_type = -1};
    ggr_export_info ie = {0};
    e = (vl_err){0};
    int r3 = rc || ln ? -1 : ggr_export(s, &qe, &ie, &e);
    char *esh = r3 ? NULL : tio_slurp(DIR "/evil/quantize.sh", NULL);
    CHECK(c, esh && strstr(esh, "# Made by: vbrlab run x?rm -rf y\n") &&
                 strstr(esh, "convert_hf_to_gguf.py " DIR "/m?touch pwned ") &&
                 !strstr(esh, "\nrm ") && !strstr(esh, "\ntouch ") && strstr(esh, "exec llama-quantize"),
          "control characters in the model path and the command stay inside quantize.sh's comments "
          "(%s)\n%s", e.msg, esh ? esh : "");
    free(esh);
    ggr_export_info_free(&ie);
    h5s_close(s);
}

static void check_errors(chk *c)
{
    /* an unknown key lists the section's keys: [experiment] has the most of any section */
    static const struct { const char *line, *want; } bad[] = {
        {"export = gguf", "export"}, {"export =", "empty value"}, {"export = llama.cpp, none", "export"},
        {"exports = llama.cpp", "exports"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[128], args[256], line[1024];
        snprintf(path, sizeof path, DIR "/bad%zu.ini", i);
        FILE *f = fopen(path, "w");
        if (f) {
            fprintf(f, "[experiment]\nname = bad\nout = " DIR "/bad.h5\n%s\n[calib.en]\n"
                       "source = data/corpus/en.calib.txt\n[quant]\nformats = ggml:iq2_xs\n", bad[i].line);
            fclose(f);
        }
        snprintf(args, sizeof args, "run %s", path);
        int st = tio_cli(args, NULL, line, sizeof line);
        char want[160];
        snprintf(want, sizeof want, "%s:4:", path);
        CHECK(c, st != 0 && strstr(line, want) && strstr(line, bad[i].want) && !strchr(line, '\n') &&
                     access(DIR "/bad.h5", F_OK) != 0,
              "'%s': one line naming %s and the problem, no store (%s)", bad[i].line, want, line);
    }
}

/* export is a stage of its own: the keys of the other stages ignore it, the rendering names it
 * only when it is not none (so configs without it keep their stored rendering). */
static void check_keys(chk *c)
{
    char *src = tio_slurp(INI, NULL), *at = src ? strstr(src, "export = llama.cpp") : NULL;
    FILE *f = fopen(DIR "/none.ini", "w");
    if (f && at) {
        fprintf(f, "%.*sexport = none%s", (int)(at - src), src, at + strlen("export = llama.cpp"));
        fclose(f);
    }
    free(src);
    exp_config a, b;
    vl_err e = {0};
    int rc = exp_config_parse(INI, &a, &e) || exp_config_parse(DIR "/none.ini", &b, &e), same = !rc;
    for (int st = EXP_STAGE_STATS; !rc && st <= EXP_STAGE_REPORT; st++)
        same = same && exp_stage_key(&a, (exp_stage)st, 0) == exp_stage_key(&b, (exp_stage)st, 0);
    CHECK(c, same && a.export_kind == EXP_EXPORT_LLAMACPP && b.export_kind == EXP_EXPORT_NONE,
          "stats..report keys do not depend on export (%s)", e.msg);
    char *ra = NULL, *rb = NULL;
    size_t la = 0, lb = 0;
    FILE *fa = open_memstream(&ra, &la), *fb = open_memstream(&rb, &lb);
    if (!rc) {
        exp_config_render(&a, fa, &e);
        exp_config_render(&b, fb, &e);
    }
    fclose(fa), fclose(fb);
    CHECK(c, !rc && strstr(ra, "\nexport = llama.cpp\n") && !strstr(rb, "\nexport ="),
          "rendering: export = llama.cpp named, none left out");
    free(ra), free(rb);
    if (!rc)
        exp_config_free(&a), exp_config_free(&b);
}

int main(void)
{
    chk c;
    chk_init(&c, "test_run_export");
    tio_rmtree(DIR);
    vl_err e = {0};
    static char log[16384];
    int rc = run_lib(INI, -1, log, sizeof log, &e);
    CHECK(&c, rc == 0 && strstr(log, "report: done") && strstr(log, "export: done"), "run with export (%s)\n%s",
          e.msg, log);
    check_types(&c);
    check_script(&c);
    check_store(&c);
    size_t n1 = 0, n2 = 0;
    char *before = tio_slurp(OUT, &n1);
    rc = run_lib(INI, -1, log, sizeof log, &e);
    char *after = tio_slurp(OUT, &n2);
    CHECK(&c, rc == 0 && strstr(log, "report: cached\n") && strstr(log, "export: cached\n") && !strstr(log, "done"),
          "rerun: every stage cached, export too\n%s", log);
    CHECK(&c, before && after && n1 == n2 && !memcmp(before, after, n1), "rerun leaves the store byte-identical");
    free(before), free(after);
    remove(REC "/quantize.sh");
    rc = run_lib(INI, EXP_STAGE_EXPORT, log, sizeof log, &e);
    CHECK(&c, rc == 0 && strstr(log, "export: done") && !strstr(log, "eval: done") && access(REC "/quantize.sh", F_OK) == 0,
          "--only export redoes the export alone (%s)\n%s", e.msg, log);
    int st = -1;
    const char *an = NULL;
    CHECK(&c, run_stage_parse("export", &st, &an, &e) == 0 && st == EXP_STAGE_EXPORT, "stage name export");
    check_errors(&c);
    check_keys(&c);
    return chk_done(&c);
}
