/* cli/cmd_stats.c — `vbrlab stats`: calibration sets → activation, router and token statistics
 * in one HDF5 store; `vbrlab stats merge A.h5 B.h5 -o C.h5`: exact merge of two stores.
 *
 *   vbrlab stats [MODEL_DIR] --set NAME=SOURCE[,seqs=N][,len=L][,seed=S][,skip=K] ...
 *                [--hessian PATTERN | --no-hessian] [--route-all-experts] [--batch B]
 *                [--mem-cap BYTES | --pipeline P] -o OUT.h5
 *
 * --mem-cap BYTES runs the pass layer-major (analysis/spass.h): every batch through layer i
 * before layer i+1, each layer's weights converted once, the residual rows of the set in memory
 * up to BYTES (0: no cap) and in an unlinked temporary file beyond. The statistics are the
 * batch-major run's bit for bit.
 *
 * Sets are built in the order given (analysis/calib.h: a mix, shuffle or entropy set refers to
 * sets before it), then each is run through the statistics pass (analysis/spass.h) and written
 * (analysis/sfile.h; layout in docs/hdf5-schema.md, "vbrlab stats"). Only one set's
 * accumulators are in memory at a time. At the end a table on stdout compares the sets'
 * routing: per MoE layer, the total-variation distance ½ Σ_e |p_a(e) − p_b(e)| between the
 * distributions of top-k selections of each pair of sets (0 = same expert usage, 1 = disjoint).
 * --pipeline P (MPI build, under mpirun/srun): the layers split over pipelines of P ranks
 * (analysis/pipeline.h); the same store as one process.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include "../analysis/calib.h"
#include "../analysis/sfile.h"
#include "../analysis/spass.h"
#include "../core/num.h"
#include "../core/par.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SETS 64

typedef struct {
    const char *model_dir, *out;
    const char *specs[MAX_SETS];
    int n_specs;
    spass_opts so;
    char cmdline[8192];
} stats_args;

/* ---------------------------------------------------------------- arguments */

static void join_args(char *dst, size_t cap, int argc, char **argv)
{
    size_t n = (size_t)snprintf(dst, cap, "vbrlab");
    for (int i = 0; i < argc && n < cap; i++)
        n += (size_t)snprintf(dst + n, cap - n, " %s", argv[i]);
}

static int parse_args(int argc, char **argv, stats_args *a)
{
    memset(a, 0, sizeof *a);
    a->so = spass_opts_defaults();
    join_args(a->cmdline, sizeof a->cmdline, argc, argv);
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        int has = i + 1 < argc;
        if (cli_is_positional(o) && !a->model_dir && i == 1) {
            a->model_dir = o;
        } else if (!strcmp(o, "--set") && has) {
            if (a->n_specs == MAX_SETS)
                return cli_failf("stats", "more than %d --set options", MAX_SETS);
            a->specs[a->n_specs++] = argv[++i];
        } else if (!strcmp(o, "--hessian") && has) {
            a->so.hessian = argv[++i];
        } else if (!strcmp(o, "--no-hessian")) {
            a->so.no_hessian = 1;
        } else if (!strcmp(o, "--route-all-experts")) {
            a->so.route_all_experts = 1;
        } else if (!strcmp(o, "--batch") && has) {
            if (num_int(argv[++i], 1, 4096, &a->so.batch))
                return cli_failf("stats", "--batch \"%s\": expects an integer in [1, 4096]",
                                 argv[i]);
        } else if (!strcmp(o, "--mem-cap") && has) {
            if (num_i64(argv[++i], 0, INT64_MAX, &a->so.mem_cap))
                return cli_failf("stats", "--mem-cap \"%s\": expected bytes (0: no cap)",
                                 argv[i]);
            a->so.layer_major = 1;
        } else if (!strcmp(o, "--pipeline") && has) {
            if (num_int(argv[++i], 1, 1 << 20, &a->so.pipeline))
                return cli_failf("stats", "--pipeline \"%s\": expects a positive integer",
                                 argv[i]);
        } else if (!strcmp(o, "-o") && has) {
            a->out = argv[++i];
        } else {
            return cli_failf("stats", "unexpected argument \"%s\" (usage: vbrlab stats "
                             "[MODEL_DIR] --set NAME=SOURCE[,seqs=N][,len=L][,seed=S] ... "
                             "[--hessian PATTERN|--no-hessian] [--route-all-experts] "
                             "[--batch B] [--mem-cap BYTES|--pipeline P] -o OUT.h5)", o);
        }
    }
    if (a->so.hessian && a->so.no_hessian)
        return cli_failf("stats", "--hessian and --no-hessian exclude each other");
    if (!a->n_specs)
        return cli_failf("stats", "no --set given");
    if (!a->out)
        return cli_failf("stats", "no output file (-o OUT.h5)");
    if (!a->model_dir)
        a->model_dir = cli_default_model();
    return 0;
}

/* ---------------------------------------------------------------- routing table */

/* Top-k selection counts of every MoE layer of one set: [L × E] (0 rows for dense layers). */
static int64_t *routing_copy(const stat_acc *acc, int L, int E)
{
    int64_t *r = vl_calloc((size_t)L * (size_t)(E > 0 ? E : 1), sizeof *r);
    for (int l = 0; r && l < L; l++) {
        const stat_router *ro = stat_router_get(acc, l);
        if (ro)
            memcpy(r + (size_t)l * E, ro->routed, (size_t)E * sizeof *r);
    }
    return r;
}

static double tv_distance(const int64_t *a, const int64_t *b, int E)
{
    double sa = 0, sb = 0, d = 0;
    for (int e = 0; e < E; e++) {
        sa += (double)a[e];
        sb += (double)b[e];
    }
    if (sa == 0 || sb == 0)
        return 0.0 / 0.0;
    for (int e = 0; e < E; e++)
        d += fabs((double)a[e] / sa - (double)b[e] / sb);
    return 0.5 * d;
}

static void print_routing(const calib_book *book, int64_t *const *routed, const hfc_config *c)
{
    int n = calib_book_count(book), E = c->n_experts;
    if (E == 0 || n < 2)
        return;
    printf("expert usage: total-variation distance of top-%d routing per layer (0 same, 1 "
           "disjoint)\n%-24s", c->n_experts_per_tok, "sets");
    for (int l = 0; l < c->n_layers; l++)
        if (c->layer_is_moe[l])
            printf("  L%02d", l);
    printf("\n");
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            char pair[160];
            snprintf(pair, sizeof pair, "%s-%s", calib_book_set(book, i)->spec.name,
                     calib_book_set(book, j)->spec.name);
            printf("%-24s", pair);
            for (int l = 0; l < c->n_layers; l++)
                if (c->layer_is_moe[l])
                    printf(" %.3f", tv_distance(routed[i] + (size_t)l * E,
                                                routed[j] + (size_t)l * E, E));
            printf("\n");
        }
}

/* ---------------------------------------------------------------- the run */

static const char *base_name(const char *dir, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", dir);
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = '\0';
    char *s = strrchr(buf, '/');
    return s ? s + 1 : buf;
}

/* spass_run_book's per-set hook: keep set i's routing for the table. */
typedef struct {
    int64_t **routed;
    const hfc_config *cfg;
} routing_keep;

static int keep_routing(void *ctx, int i, const calib_set *cs, const stat_acc *acc, vl_err *err)
{
    routing_keep *k = ctx;
    if (!(k->routed[i] = routing_copy(acc, k->cfg->n_layers, k->cfg->n_experts)))
        return vl_errf(err, VL_ENOMEM, "set %s: out of memory", cs->spec.name);
    return 0;
}

static int stats_run(stats_args *a)
{
    vl_err err = {0};
    calib_spec specs[MAX_SETS];
    for (int i = 0; i < a->n_specs; i++)
        if (calib_spec_parse(a->specs[i], &specs[i], &err))
            return cli_fail("stats", &err);
    model *m = NULL;
    tok_tokenizer *tok = NULL;
    calib_book *book = NULL;
    h5s_store *s = NULL;
    int64_t *routed[MAX_SETS] = {0};
    char hash[SFILE_HASH_MAX], nbuf[1024];
    int rc = model_open(&m, a->model_dir, &err);
    if (rc == 0)
        rc = tok_open(a->model_dir, &tok, &err);
    if (rc == 0)
        rc = sfile_config_hash(a->model_dir, hash, &err);
    calib_env env = {m, tok, a->so.batch, CALIB_ROLE_CALIB};
    if (rc == 0)
        rc = calib_book_new(&book, &env, &err);
    for (int i = 0; rc == 0 && i < a->n_specs; i++)
        rc = calib_book_add(book, &specs[i], &err);
    if (rc == 0 && par_rank() == 0)
        rc = sfile_create(&s, a->out, base_name(a->model_dir, nbuf, sizeof nbuf), hash,
                          a->cmdline, &err);
    a->so.progress = 1;
    routing_keep keep = {routed, m ? model_config(m) : NULL};
    if (rc == 0)
        rc = spass_run_book(m, book, &a->so, s, keep_routing, &keep, &err);
    if (rc == 0 && s) {
        rc = h5s_commit(s, &err);
        s = NULL;
    }
    if (rc == 0 && par_rank() == 0)
        print_routing(book, routed, model_config(m));
    for (int i = 0; i < MAX_SETS; i++)
        vl_free(routed[i]);
    h5s_close(s);
    calib_book_free(book);
    tok_close(tok);
    model_close(m);
    return rc ? cli_fail("stats", &err) : 0;
}

static int stats_merge(int argc, char **argv)
{
    const char *in[2] = {NULL, NULL}, *out = NULL;
    int n_in = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc)
            out = argv[++i];
        else if (cli_is_positional(argv[i]) && n_in < 2)
            in[n_in++] = argv[i];
        else
            return cli_failf("stats", "merge: unexpected argument \"%s\" (usage: vbrlab stats "
                             "merge A.h5 B.h5 -o C.h5)", argv[i]);
    }
    if (n_in != 2 || !out)
        return cli_failf("stats", "merge: usage: vbrlab stats merge A.h5 B.h5 -o C.h5");
    char cmd[8192];
    join_args(cmd, sizeof cmd, argc, argv);
    vl_err err = {0};
    return sfile_merge(in[0], in[1], out, cmd, &err) ? cli_fail("stats", &err) : 0;
}

int cmd_stats(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "merge"))
        return stats_merge(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "compare"))
        return cmd_stats_compare(argc - 1, argv + 1); /* cli/cmd_export.c */
    stats_args a;
    if (parse_args(argc, argv, &a))
        return 1;
    return stats_run(&a);
}
