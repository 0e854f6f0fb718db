/* cli/vbrlab.c — the one vbrlab binary: dispatch to subcommands, shared CLI helpers.
 *
 * The only place (with test mains) that calls exit(): main returns the subcommand's status.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <gsl/gsl_errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../core/kern.h"
#include "../core/par.h"

typedef struct {
    const char *name;
    cli_cmd_fn fn;
    const char *usage;
} cli_cmd;

static const cli_cmd cmds[] = {
    {"info", cmd_info, "info [MODEL_DIR]                       architecture, parameters by class, bits"},
    {"tokenize", cmd_tokenize, "tokenize [MODEL_DIR] [--decode] [--json] [--lines]   text on stdin -> ids"},
    {"forward", cmd_forward, "forward [MODEL_DIR] (--ids 1,2,3 | --ids-file FILE) --out OUT.h5 [--hidden] [--router] [--batch B] [--mem-cap BYTES] [--pipeline P]"},
    {"stats", cmd_stats, "stats [MODEL_DIR] --set NAME=SOURCE[,seqs=N][,len=L][,seed=S] ... [--hessian RE|--no-hessian] [--route-all-experts] [--batch B] [--pipeline P] -o OUT.h5 | stats merge A.h5 B.h5 -o C.h5"},
    {"sens", cmd_sens, "sens [MODEL_DIR] --stats stats.h5 [--set NAME ...] --formats SPEC [--granularity tensor|group] [--eps 0.01,0.03] [--seed S] [--tokens N] -o sens.h5"},
    {"alloc", cmd_alloc, "alloc (--sens sens.h5 (--set NAME | --sets A,B) [--granularity tensor|group] [--error out|rel] [-o alloc.h5 [--name NAME]] | --problem FILE [--set N]) --target-bpw B [--solver exact|lagrange|uniform|rules|random [--seed S]] [--objective sum|weighted|minimax|minimax-raw] [--weights w1,w2] [--export-regex]"},
    {"eval", cmd_eval, "eval [MODEL_DIR] (--alloc FILE[:NAME] | --alloc alloc.h5[:NAME] | --uniform FORMAT)... [--stats S.h5 --calib SET] --domain NAME=SOURCE[,seqs=N,len=L,seed=S]... [--batch N] [--pipeline P] -o eval.h5"},
    {"eval-experts", cmd_xeval, "eval-experts [MODEL_DIR] --stats S.h5 --sets A,B --count K [--format F] --domain NAME=SOURCE... [-o eval.h5]   KLD with only A's or only B's specific experts quantized"},
    {"plot", cmd_plot, "plot KIND RESULTS.h5 [--set S] [--diff A,B] [--layer L] [--proj P] [--term png|svg|pdf|qt|wxt|x11] [-o FILE] [--interactive] [--size WxH] [--stats S.h5] [--alloc A.h5]"},
    {"run", cmd_run, "run CONFIG.ini [--force] [--only STAGE] [--replicates R] [--pipeline P]   an experiment config: stats, sens, alloc, eval, report (, export) into one .h5"},
    {"export", cmd_export, "export imatrix [MODEL_DIR] --stats stats.h5 --set S[*w][,S2[*w]] -o imatrix.gguf | export llama.cpp [MODEL_DIR] --alloc alloc.h5:NAME [--stats stats.h5 --set S] -o DIR"},
    {"synth", cmd_synth, "synth CONFIG.json -o DIR [--dtype bf16|fp8|f32] [--seed S] [--shard-bytes N] [--fp8-block B] [--tokenizer TOKDIR]   a random-weight checkpoint"},
    {"ggml-check", cmd_ggml_check, "ggml-check GOLDENS.h5 [--type T] [--max-ratio 1.02]   llama.cpp block formats: bit-exact decode, quantizer error vs llama.cpp"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: vbrlab COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        fprintf(f, "  vbrlab %s\n", cmds[i].usage);
    fprintf(f, "\nWithout MODEL_DIR the embedded model is used (%s).\n", cli_default_model());
}

const char *cli_default_model(void)
{
    static char buf[4096]; /* written once per process, read-only after */
    const char *env = getenv("VBRLAB_MODEL");
    if (env && *env)
        return env;
    const char *rel = "models/vbrlab-moe-tiny";
    if (access(rel, R_OK) == 0)
        return rel;
    char exe[3000];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        const char *ups[] = {"/..", "/../.."};
        for (int i = 0; i < 2; i++) {
            snprintf(buf, sizeof buf, "%s%s/%s", exe, ups[i], rel);
            if (access(buf, R_OK) == 0)
                return buf;
        }
    }
    return rel;
}

int cli_fail(const char *cmd, const vl_err *err)
{
    fprintf(stderr, "vbrlab %s: %s\n", cmd, err && err->msg[0] ? err->msg : "failed");
    return 1;
}

int cli_failf(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vbrlab %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int cli_is_positional(const char *arg) { return arg && arg[0] != '-'; }

/* Under mpirun every rank runs the same subcommand (core/par.h): the stages split their work
 * items over the ranks and only rank 0 writes. Ranks sharing a node share its cores, so each
 * gets cores / local ranks kernel threads unless OPENBLAS_NUM_THREADS says otherwise. */
static int dispatch(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        if (par_rank() == 0)
            usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    /* the commands that share their work over ranks and write from rank 0 only; any other
     * would have every rank write the same file */
    static const char *const par_cmds[] = {"stats", "sens", "eval", "run", "forward"};
    int par_ok = !(argc > 2 && !strcmp(argv[1], "stats") && !strcmp(argv[2], "merge"));
    for (size_t i = 0, ok = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(argv[1], cmds[i].name))
            continue;
        for (size_t k = 0; k < sizeof par_cmds / sizeof *par_cmds; k++)
            ok |= !strcmp(argv[1], par_cmds[k]);
        if (par_size() > 1 && !(ok && par_ok))
            return cli_failf(argv[1], "runs on one process only, not on %d MPI ranks (the "
                             "ranks share `vbrlab stats`, `sens`, `eval`, `run` and "
                             "`forward`; "
                             "docs/scaling.md)",
                             par_size());
        return cmds[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "vbrlab: unknown command '%s' (try vbrlab --help)\n", argv[1]);
    return 2;
}

int main(int argc, char **argv)
{
    gsl_set_error_handler_off(); /* GSL reports through return codes, never aborts */
    vl_err err = {0};
    if (par_init(&argc, &argv, &err)) {
        fprintf(stderr, "vbrlab: %s\n", err.msg);
        return 1;
    }
    int local = par_local_size();
    if (local > 1 && !getenv("OPENBLAS_NUM_THREADS")) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        kern_set_threads(cores > local ? (int)(cores / local) : 1);
    }
    int rc = dispatch(argc, argv);
    par_finalize(rc); /* a failed rank ends the whole job: the others may wait on it */
    return rc;
}
