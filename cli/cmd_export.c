/* cli/cmd_export.c — `vbrlab export imatrix` (llama.cpp's imatrix GGUF from vbrlab statistics),
 * `vbrlab export llama.cpp` (argv → ggr_export, alloc/gguf_export.h) and `vbrlab stats compare` (an imatrix GGUF, e.g. from llama-imatrix, against vbrlab's
 * statistics). See analysis/imatrix.h. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include "../alloc/ggml_fmt.h"
#include "../alloc/gguf_recipe.h"
#include "../alloc/gguf_export.h"
#include "../analysis/imatrix.h"
#include "../io/h5s.h"

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

static int type_arg(const char *s, const char *opt, int *t)
{
    *t = ggf_from_name(s);
    if (*t < 0) return cli_failf("export llama.cpp", "%s '%s': not a llama.cpp type name (q4_K, iq2_xs, bf16, ...)", opt, s);
    return 0;
}

/* argv → ggr_export (alloc/gguf_export.h), which does the work. */
static int export_llamacpp(int argc, char **argv)
{
    const char *cmd = "export llama.cpp";
    exp_args a;
    if (parse_args(cmd, argc, argv, &a)) return 1;
    if (!a.alloc || !a.out)
        return cli_failf(cmd, "usage: vbrlab export llama.cpp [MODEL_DIR] --alloc alloc.h5:NAME -o DIR [--stats stats.h5 "
                         "--set S] [--token-embedding-type T] [--output-tensor-type T]");
    ggr_export_req q = {.model_dir = a.model, .source = a.alloc, .out_dir = a.out, .stats = a.stats, .sets = a.sets,
                        .embd_type = -1, .output_type = -1};
    if ((a.embd && type_arg(a.embd, "--token-embedding-type", &q.embd_type)) ||
        (a.output && type_arg(a.output, "--output-tensor-type", &q.output_type)))
        return 1;
    char file[1024], made_by[3000];
    snprintf(file, sizeof file, "%s", a.alloc);
    char *colon = strrchr(file, ':');
    if (!colon) return cli_failf(cmd, "--alloc '%s': expected alloc.h5:NAME", a.alloc);
    *colon = 0;
    q.alloc = colon + 1;
    snprintf(made_by, sizeof made_by, "vbrlab export llama.cpp %s --alloc %s -o %s", a.model, a.alloc, a.out);
    q.made_by = made_by;
    vl_err e = {0};
    h5s_store *s = NULL;
    ggr_export_info info = {0};
    int rc = h5s_open(&s, file, &e);
    if (!rc) rc = ggr_export(s, &q, &info, &e);
    h5s_close(s);
    if (!rc)
        printf("%s: %d GGUF tensors, %.4f bpw file, %.4f bpw body, base %s\n", a.out, info.n_tensors, info.bpw_file,
               info.bpw_body, ggr_ftype_name(info.base));
    ggr_export_info_free(&info);
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
