/* cli/cmd_export.c — `vbrlab export imatrix` (llama.cpp's imatrix GGUF from vbrlab statistics)
 * and `vbrlab stats compare` (an imatrix GGUF, e.g. from llama-imatrix, against vbrlab's
 * statistics). See analysis/imatrix.h. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include "../alloc/ggml_fmt.h"
#include "../alloc/gguf_recipe.h"
#include "../alloc/salloc.h"
#include "../analysis/imatrix.h"
#include "../io/h5s.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *model, *stats, *sets, *out, *imatrix, *alloc, *embd, *output;
} exp_args;

/* Parse [MODEL_DIR] and --stats/--set/-o/--imatrix/--alloc; unknown options are errors. */
static int parse_args(const char *cmd, int argc, char **argv, exp_args *a)
{
    memset(a, 0, sizeof *a);
    a->model = cli_default_model();
    for (int i = 1; i < argc; i++) {
        const char **dst = !strcmp(argv[i], "--stats") ? &a->stats : !strcmp(argv[i], "--set") ? &a->sets
                         : !strcmp(argv[i], "-o") ? &a->out : !strcmp(argv[i], "--imatrix") ? &a->imatrix
                         : !strcmp(argv[i], "--alloc") ? &a->alloc
                         : !strcmp(argv[i], "--token-embedding-type") ? &a->embd
                         : !strcmp(argv[i], "--output-tensor-type") ? &a->output : NULL;
        if (dst && i + 1 < argc)
            *dst = argv[++i];
        else if (i == 1 && cli_is_positional(argv[i]))
            a->model = argv[i];
        else
            return cli_failf(cmd, "unexpected argument '%s'", argv[i]);
    }
    return 0;
}

static int export_imatrix(int argc, char **argv)
{
    exp_args a;
    if (parse_args("export imatrix", argc, argv, &a)) return 1;
    if (!a.stats || !a.sets || !a.out)
        return cli_failf("export imatrix", "usage: vbrlab export imatrix [MODEL_DIR] --stats stats.h5 "
                         "--set S[*w][,S2[*w]] -o imatrix.gguf");
    imx_data d;
    vl_err e = {0};
    if (imx_from_stats(&d, a.stats, a.model, a.sets, &e)) return cli_fail("export imatrix", &e);
    int rc = imx_write(&d, a.out, &e);
    if (!rc)
        printf("%s: %d weight tensors, %u chunks of %u tokens, datasets %s\n", a.out, d.n, d.chunk_count,
               d.chunk_size, a.sets);
    imx_free(&d);
    return rc ? cli_fail("export imatrix", &e) : 0;
}

/* Write text to DIR/NAME atomically (NAME.tmp, rename); mode 0755 for scripts. */
static int write_file(const char *dir, const char *name, const char *text, int exec, vl_err *err)
{
    char p[1100], t[1110];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    snprintf(t, sizeof t, "%s.tmp", p);
    FILE *f = fopen(t, "w");
    if (!f) return vl_errf(err, VL_EIO, "%s: %s", t, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    if (!bad && exec) bad = chmod(t, 0755) != 0;
    if (bad || rename(t, p)) {
        remove(t);
        return vl_errf(err, VL_EIO, "%s: write failed", p);
    }
    return 0;
}

/* Text built in memory (open_memstream is POSIX 2008). */
typedef struct {
    char *buf;
    size_t len;
    FILE *f;
} mtext;

static int mt_open(mtext *m) { m->buf = NULL, m->len = 0; return (m->f = open_memstream(&m->buf, &m->len)) ? 0 : VL_ENOMEM; }
static void mt_close(mtext *m) { if (m->f) fclose(m->f); m->f = NULL; }

static int type_arg(const char *s, const char *opt, int *t)
{
    *t = ggf_from_name(s);
    if (*t < 0) return cli_failf("export llama.cpp", "%s '%s': not a llama.cpp type name (q4_K, iq2_xs, bf16, ...)", opt, s);
    return 0;
}

static int export_llamacpp(int argc, char **argv)
{
    const char *cmd = "export llama.cpp";
    exp_args a;
    if (parse_args(cmd, argc, argv, &a)) return 1;
    if (!a.alloc || !a.out)
        return cli_failf(cmd, "usage: vbrlab export llama.cpp [MODEL_DIR] --alloc alloc.h5:NAME -o DIR [--stats stats.h5 "
                         "--set S] [--token-embedding-type T] [--output-tensor-type T]");
    int et = -1, ot = -1; /* none given: the allocation's, else bf16 (alloc/gguf_recipe.h) */
    if ((a.embd && type_arg(a.embd, "--token-embedding-type", &et)) || (a.output && type_arg(a.output, "--output-tensor-type", &ot)))
        return 1;
    char file[1024];
    snprintf(file, sizeof file, "%s", a.alloc);
    char *colon = strrchr(file, ':');
    if (!colon) return cli_failf(cmd, "--alloc '%s': expected alloc.h5:NAME", a.alloc);
    *colon = 0;
    const char *name = colon + 1;
    vl_err e = {0};
    h5s_store *s = NULL;
    salloc_record rec = {0};
    double *pk = NULL;
    int64_t npk[H5S_MAX_DIMS] = {0};
    ggr_plan plan = {0};
    imx_data im = {0};
    mtext t = {0}, sh = {0}, rd = {0};
    int rc = h5s_open(&s, file, &e);
    if (!rc) rc = salloc_read(s, name, &rec, &e);
    char dp[512];
    snprintf(dp, sizeof dp, "/alloc/%s/predicted_kld", name);
    if (!rc) rc = h5s_read(s, dp, H5S_F64, (void **)&pk, NULL, npk, &e);
    h5s_close(s);
    if (!rc) rc = ggr_plan_build(&plan, a.model, rec.assignment, et, ot, &e);
    const char *stats = a.stats ? a.stats : rec.stats_file, *set = a.sets ? a.sets : rec.calib;
    if (!rc && (!stats || !*stats || !set || !*set))
        rc = vl_errf(&e, VL_EARG, "%s: allocation %s names no statistics; give --stats and --set", file, name);
    if (!rc) rc = imx_from_stats(&im, stats, a.model, set, &e);
    for (int i = 0; !rc && i < plan.n; i++)
        if (plan.v[i].quantized && ggr_needs_imatrix(plan.v[i].type) && !imx_find(&im, plan.v[i].name))
            rc = vl_errf(&e, VL_ECONFIG, "%s gets %s, which llama-quantize refuses without an imatrix entry, and "
                         "the statistics have none for it", plan.v[i].name, ggf_get(plan.v[i].type)->name);
    if (!rc && mkdir(a.out, 0755) && errno != EEXIST) rc = vl_errf(&e, VL_EIO, "%s: %s", a.out, strerror(errno));
    char ip[1100];
    snprintf(ip, sizeof ip, "%s/imatrix.gguf", a.out);
    if (!rc) rc = imx_write(&im, ip, &e);
    if (!rc && (mt_open(&t) || mt_open(&sh) || mt_open(&rd))) rc = vl_errf(&e, VL_ENOMEM, "out of memory");
    if (!rc) {
        ggr_write_types(&plan, t.f);
        const ggr_tensor *emb = NULL, *out = NULL;
        for (int i = 0; i < plan.n; i++) {
            if (!strcmp(plan.v[i].name, "token_embd.weight")) emb = &plan.v[i];
            if (!strcmp(plan.v[i].name, "output.weight")) out = &plan.v[i];
        }
        fprintf(sh.f, "#!/bin/sh\n# Made by: vbrlab export llama.cpp %s --alloc %s -o %s\n", a.model, a.alloc, a.out);
        fprintf(sh.f, "# Usage: quantize.sh MODEL-BF16.gguf OUT.gguf [THREADS]\n"
                      "# MODEL-BF16.gguf: python convert_hf_to_gguf.py %s --outtype bf16 --outfile MODEL-BF16.gguf\n"
                      "set -e\nDIR=$(dirname \"$0\")\n", a.model);
        fprintf(sh.f, "exec llama-quantize --pure --imatrix \"$DIR/imatrix.gguf\" --tensor-type-file \"$DIR/tensor-types.txt\"");
        if (emb) fprintf(sh.f, " --token-embedding-type %s", ggf_get(emb->type)->name);
        if (out) fprintf(sh.f, " --output-tensor-type %s", ggf_get(out->type)->name);
        fprintf(sh.f, " \"$1\" \"$2\" %s ${3:+\"$3\"}\n", ggr_ftype_name(plan.base));
        fprintf(rd.f, "# llama.cpp recipe for allocation %s\n\nMade by `vbrlab export llama.cpp` from `%s` (model `%s`, "
                "architecture %s).\n\n", name, a.alloc, a.model, plan.arch);
        fprintf(rd.f, "| | bits per weight (as llama.cpp counts) | weights |\n|---|---|---|\n"
                "| whole file | %.4f | %lld |\n| body (blk.*) | %.4f | %lld |\n\n", plan.bpw_file,
                (long long)plan.params, plan.bpw_body, (long long)plan.body_params);
        fprintf(rd.f, "Allocation target %.4g bpw (%s), objective %s, solver %s, calibration `%s` from `%s`.\n\n",
                rec.target_bpw,
                rec.budget && !strcmp(rec.budget, "model") ? "over every weight of the model, kept tensors counted"
                                                           : "vbrlab's count over its quantized tensors",
                rec.objective ? rec.objective : "", rec.solver ? rec.solver : "", set, stats);
        fprintf(rd.f, "Predicted KLD per calibration domain (nat/token, vbrlab's additive prediction):\n\n| domain | KLD |\n|---|---|\n");
        char *sets = rec.sets ? vl_strdup(rec.sets) : NULL, *save = NULL;
        int k = 0;
        for (char *tok = sets ? strtok_r(sets, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save), k++)
            fprintf(rd.f, "| %s | %.5g |\n", tok, k < npk[0] ? pk[k] : NAN);
        vl_free(sets);
        fprintf(rd.f, "\nTypes (weights per type):\n\n| type | tensors | weights |\n|---|---|---|\n");
        for (int ty = 0; ty < GGF_COUNT; ty++) {
            int nt = 0;
            long long nw = 0;
            for (int i = 0; i < plan.n; i++)
                if (plan.v[i].type == ty) nt++, nw += plan.v[i].n;
            if (nt) fprintf(rd.f, "| %s | %d | %lld |\n", ggf_get(ty)->name, nt, nw);
        }
        fprintf(rd.f, "\nFiles: `tensor-types.txt` (one `^NAME$=TYPE` line per quantized blk tensor, for "
                "`--tensor-type-file`), `imatrix.gguf` (llama.cpp imatrix from vbrlab's statistics), `quantize.sh` "
                "(runs `llama-quantize --pure` with the overrides, base type %s, and the embedding/output types).\n"
                "Norms and biases stay F32, the router ffn_gate_inp stays in the input's BF16, as llama-quantize does.\n",
                ggr_ftype_name(plan.base));
        mt_close(&t), mt_close(&sh), mt_close(&rd);
        rc = write_file(a.out, "tensor-types.txt", t.buf, 0, &e);
        if (!rc) rc = write_file(a.out, "quantize.sh", sh.buf, 1, &e);
        if (!rc) rc = write_file(a.out, "README.md", rd.buf, 0, &e);
    }
    mt_close(&t), mt_close(&sh), mt_close(&rd);
    if (!rc)
        printf("%s: %d GGUF tensors, %.4f bpw file, %.4f bpw body, base %s\n", a.out, plan.n, plan.bpw_file,
               plan.bpw_body, ggr_ftype_name(plan.base));
    free(t.buf), free(sh.buf), free(rd.buf);
    vl_free(pk);
    salloc_record_free(&rec);
    ggr_plan_free(&plan);
    imx_free(&im);
    return rc ? cli_fail(cmd, &e) : 0;
}

int cmd_export(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "imatrix")) return export_imatrix(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "llama.cpp")) return export_llamacpp(argc - 1, argv + 1);
    return cli_failf("export", "usage: vbrlab export imatrix ... | vbrlab export llama.cpp ...");
}

/* Per tensor: cosine similarity and relative L2 difference of the mean-x² vectors (all matrices
 * with input in both, concatenated), theirs as reference. */
int cmd_stats_compare(int argc, char **argv)
{
    exp_args a;
    if (parse_args("stats compare", argc, argv, &a)) return 1;
    if (!a.stats || !a.sets || !a.imatrix)
        return cli_failf("stats compare", "usage: vbrlab stats compare [MODEL_DIR] --imatrix X.gguf "
                         "--stats stats.h5 --set S[*w][,…]");
    imx_data ours, theirs;
    vl_err e = {0};
    if (imx_read(&theirs, a.imatrix, &e)) return cli_fail("stats compare", &e);
    if (imx_from_stats(&ours, a.stats, a.model, a.sets, &e)) {
        imx_free(&theirs);
        return cli_fail("stats compare", &e);
    }
    printf("imatrix %s: %d tensors, %u chunks of %u; vbrlab %s [%s]: %d tensors\n", a.imatrix, theirs.n,
           theirs.chunk_count, theirs.chunk_size, a.stats, a.sets, ours.n);
    printf("%-36s %5s %10s %10s\n", "tensor", "mats", "cosine", "rel_l2");
    int only_theirs = 0, bad = 0;
    double worst = 1;
    for (int i = 0; i < theirs.n; i++) {
        const imx_entry *t = &theirs.v[i], *o = imx_find(&ours, t->name);
        if (!o) {
            only_theirs++;
            printf("%-36s only in %s\n", t->name, a.imatrix);
            continue;
        }
        if (o->n_in != t->n_in || o->n_mat != t->n_mat) {
            bad++;
            printf("%-36s shape [%d, %d] vs [%d, %d]\n", t->name, t->n_in, t->n_mat, o->n_in, o->n_mat);
            continue;
        }
        double dot = 0, nt = 0, no = 0, dd = 0;
        int used = 0;
        for (int m = 0; m < t->n_mat; m++) {
            if (!(t->count[m] > 0) || !(o->count[m] > 0)) continue;
            used++;
            for (int j = 0; j < t->n_in; j++) {
                double x = imx_mean(t, m, j), y = imx_mean(o, m, j);
                dot += x * y, nt += x * x, no += y * y, dd += (x - y) * (x - y);
            }
        }
        double cs = nt > 0 && no > 0 ? dot / sqrt(nt * no) : NAN, rl = nt > 0 ? sqrt(dd / nt) : NAN;
        if (cs < worst) worst = cs;
        printf("%-36s %5d %10.6f %10.3g\n", t->name, used, cs, rl);
    }
    int only_ours = 0;
    for (int i = 0; i < ours.n; i++)
        if (!imx_find(&theirs, ours.v[i].name)) only_ours++, printf("%-36s only in %s\n", ours.v[i].name, a.stats);
    printf("%d common, %d only in the imatrix, %d only in the statistics, %d shape mismatches; lowest cosine %.6f\n",
           theirs.n - only_theirs - bad, only_theirs, only_ours, bad, worst);
    imx_free(&ours), imx_free(&theirs);
    return bad ? 1 : 0;
}
