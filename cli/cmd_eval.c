/* cli/cmd_eval.c — `vbrlab eval`: the KLD matrix, allocations × evaluation domains.
 *
 *   vbrlab eval [MODEL_DIR] (--alloc FILE[:NAME] | --uniform FORMAT)...
 *               [--stats stats.h5 --calib SET] --domain NAME=SOURCE[,seqs=N,len=L,seed=S]...
 *               [--seed S] [--batch N] [--mem-cap BYTES | --pipeline P] [--allow-overlap]
 *               [--score-second-half] [-o eval.h5]
 *
 * --alloc reads a plain-text allocation (alloc/qbind.h: `ITEM FORMAT` per line); the row is
 * named NAME, else the file's base name without extension. An HDF5 FILE (signature, or a .h5
 * name) is an alloc.h5 (alloc/salloc.h): FILE:NAME is its allocation /alloc/NAME, the row
 * named NAME; FILE alone is every allocation in it, one row each in name order. Such a row
 * quantizes with its own calibration statistics (attributes calib and stats_file) when it has
 * them; --stats/--calib serve the other rows. --uniform FORMAT quantizes every
 * matrix of the attention, experts, shared expert and MLP in FORMAT; the row is the format's
 * name. --stats/--calib give the calibration statistics (stat_read of /stats/SET): E[x²]
 * importance for every format and XᵀX for GPTQ. --seed seeds the Hadamard signs. --batch is
 * sequences per forward (memory: two logit buffers of batch × len × vocab floats).
 * --mem-cap BYTES evaluates layer-major (alloc/qeval.h qe_set_layer_major): each layer's
 * listed tensors fake-quantized when the forward reaches it and freed after, one logits
 * buffer, the reference logits of a domain in memory up to BYTES (0: no cap) and in a
 * temporary file beyond; the same numbers bit for bit.
 * Leakage: every domain is checked against the calibration sets of every statistics file the
 * run reads (--stats and the alloc.h5 rows' own stats_file): a domain sharing a window of
 * tokens with one of them (analysis/calib.h, calib_overlap_check) is an error unless
 * --allow-overlap is given.
 * --score-second-half scores only positions len/2 .. len − 2 of each window, as
 * llama-perplexity does (analysis/eval.h), so the statistics compare with llama.cpp's.
 * --pipeline P (MPI build, under mpirun/srun): the layers split over pipelines of P ranks
 * (analysis/pipeline.h); the same store as one process.
 * The tables go to stdout, progress to stderr (tty only), the store to -o.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include "../alloc/qeval.h"
#include "../alloc/salloc.h"
#include "../analysis/calib.h"
#include "../analysis/eval.h"
#include "../analysis/sfile.h"
#include "../analysis/stats.h"
#include "../core/num.h"
#include "../core/par.h"
#include "../io/h5s.h"
#include "../io/tok.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "eval"
#define MAX_ROWS 64
#define MAX_DOMS 32

typedef struct {
    const char *file;      /* allocation file, NULL for uniform */
    const char *format;    /* uniform format */
    int h5;                /* file is an alloc.h5; name is the allocation */
    char name[EV_NAME_MAX];
} row_spec;

typedef struct {
    const char *dir, *out, *stats_path, *calib;
    row_spec rows[MAX_ROWS];
    int n_rows;
    const char *dom_specs[MAX_DOMS];
    int n_dom;
    uint64_t seed;
    int batch;
    int allow_overlap;
    int second_half;
    int64_t mem_cap; /* −1: batch-major */
    int pipeline;
} eval_args;

static const char usage_line[] =
    "usage: vbrlab eval [MODEL_DIR] (--alloc FILE[:NAME] | --uniform FORMAT)... [--stats "
    "stats.h5 --calib SET] --domain NAME=SOURCE[,seqs=N,len=L,seed=S]... [--seed S] "
    "[--batch N] [--mem-cap BYTES | --pipeline P] [--allow-overlap] [--score-second-half] "
    "[-o eval.h5]";

/* Rows of "--alloc FILE[:NAME]": one named NAME, else the base name without its extension;
 * for an alloc.h5 without NAME one per stored allocation. *n rows used of rows[0..cap). */
static int alloc_rows(row_spec *rows, int cap, int *n, const char *arg)
{
    if (*n == cap)
        return cli_failf(CMD, "at most %d allocations", MAX_ROWS);
    row_spec *r = &rows[*n];
    const char *colon = strrchr(arg, ':');
    static char files[MAX_ROWS][4096]; /* per-process argument copies; main is single-threaded */
    static int used;
    if (used >= MAX_ROWS)
        return cli_failf(CMD, "at most %d allocations", MAX_ROWS);
    char *file = files[used++];
    snprintf(file, sizeof files[0], "%s", arg);
    const char *name;
    if (colon) {
        file[colon - arg] = '\0';
        name = colon + 1;
        snprintf(r->name, sizeof r->name, "%s", name);
    } else {
        const char *base = strrchr(file, '/');
        base = base ? base + 1 : file;
        snprintf(r->name, sizeof r->name, "%s", base);
        char *dot = strrchr(r->name, '.');
        if (dot && dot != r->name)
            *dot = '\0';
    }
    r->file = file;
    r->format = NULL;
    r->h5 = salloc_is_hdf5(file);
    (*n)++;
    if (!r->h5 || colon)
        return 0;
    /* every allocation of the store */
    (*n)--;
    h5s_store *st = NULL;
    char **names = NULL;
    int count = 0;
    vl_err e = {0, ""};
    int rc = h5s_open(&st, file, &e);
    if (!rc)
        rc = salloc_list(st, &names, &count, &e);
    h5s_close(st);
    if (rc)
        return cli_fail(CMD, &e);
    for (int i = 0; i < count && !rc; i++) {
        if (*n == cap) {
            rc = cli_failf(CMD, "at most %d allocations", MAX_ROWS);
            break;
        }
        row_spec *q = &rows[(*n)++];
        q->file = file;
        q->format = NULL;
        q->h5 = 1;
        snprintf(q->name, sizeof q->name, "%s", names[i]);
    }
    h5s_names_free(names, count);
    return rc;
}

static int parse_args(eval_args *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->dir = cli_default_model();
    a->seed = 0x5eed;
    a->batch = 4;
    a->mem_cap = -1;
    a->pipeline = 1;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (i == 1 && cli_is_positional(s)) {
            a->dir = s;
            continue;
        }
        if (!strcmp(s, "--allow-overlap")) {
            a->allow_overlap = 1;
            continue;
        }
        if (!strcmp(s, "--score-second-half")) {
            a->second_half = 1;
            continue;
        }
        if (!v)
            return cli_failf(CMD, "unexpected argument '%s' (%s)", s, usage_line);
        if (!strcmp(s, "--uniform") && a->n_rows == MAX_ROWS)
            return cli_failf(CMD, "at most %d allocations", MAX_ROWS);
        if (!strcmp(s, "--alloc")) {
            if (alloc_rows(a->rows, MAX_ROWS, &a->n_rows, v))
                return 1;
        } else if (!strcmp(s, "--uniform")) {
            /* a format name or a one-format menu spec; the row is named by the format's name */
            qfmt f;
            vl_err e = {0, ""};
            if (qfmt_parse(&f, v, &e))
                return cli_failf(CMD, "--uniform: %s", e.msg);
            row_spec *r = &a->rows[a->n_rows++];
            r->file = NULL;
            r->h5 = 0;
            qfmt_name(&f, r->name);
            r->format = r->name;
        } else if (!strcmp(s, "--domain")) {
            if (a->n_dom == MAX_DOMS)
                return cli_failf(CMD, "at most %d domains", MAX_DOMS);
            a->dom_specs[a->n_dom++] = v;
        } else if (!strcmp(s, "--stats")) {
            a->stats_path = v;
        } else if (!strcmp(s, "--calib")) {
            a->calib = v;
        } else if (!strcmp(s, "-o") || !strcmp(s, "--out")) {
            a->out = v;
        } else if (!strcmp(s, "--seed")) {
            uint64_t sd;
            if (num_u64(v, UINT64_MAX, 0, &sd))
                return cli_failf(CMD, "--seed '%s': expected an integer in [0, 2^64)", v);
            a->seed = sd;
        } else if (!strcmp(s, "--batch")) {
            if (num_int(v, 1, 1024, &a->batch))
                return cli_failf(CMD, "--batch '%s': expected 1..1024", v);
        } else if (!strcmp(s, "--mem-cap")) {
            if (num_i64(v, 0, INT64_MAX, &a->mem_cap))
                return cli_failf(CMD, "--mem-cap '%s': expected bytes (0: no cap)", v);
        } else if (!strcmp(s, "--pipeline")) {
            if (num_int(v, 1, 1 << 20, &a->pipeline))
                return cli_failf(CMD, "--pipeline '%s': expected a positive integer", v);
        } else {
            return cli_failf(CMD, "unexpected argument '%s' (%s)", s, usage_line);
        }
        i++;
    }
    if (a->n_rows == 0)
        return cli_failf(CMD, "give at least one --alloc or --uniform (%s)", usage_line);
    if (a->n_dom == 0)
        return cli_failf(CMD, "give at least one --domain (%s)", usage_line);
    if (!a->stats_path != !a->calib)
        return cli_failf(CMD, "--stats and --calib go together");
    for (int r = 0; r < a->n_rows; r++) {
        if (!calib_name_ok(a->rows[r].name) || !strcmp(a->rows[r].name, "matrix") ||
            !strcmp(a->rows[r].name, "domains"))
            return cli_failf(CMD,
                             "allocation name \"%s\" must be [A-Za-z0-9._+-]+ and not "
                             "\"matrix\" or \"domains\" (name it with FILE:NAME)",
                             a->rows[r].name);
        for (int q = 0; q < r; q++)
            if (!strcmp(a->rows[q].name, a->rows[r].name))
                return cli_failf(CMD, "allocation name \"%s\" given twice", a->rows[r].name);
    }
    return 0;
}

typedef struct {
    model *m;
    tok_tokenizer *tok;
    stat_acc *stats;        /* --stats/--calib, for rows without their own */
    calib_book *book;       /* the domains' ids */
    qb_alloc al[MAX_ROWS];  /* every row's allocation, read and checked before any work */
    char *calib[MAX_ROWS], *stats_file[MAX_ROWS]; /* a stored allocation's own statistics */
    char *solver[MAX_ROWS];                       /* a stored allocation's solver */
    double target[MAX_ROWS];                      /* a stored allocation's target bpw */
} eval_ctx;

/* The statistics of SET in the stats.h5 at PATH. */
static int load_stats(stat_acc **out, const char *path, const char *set, vl_err *err)
{
    h5s_store *s = NULL;
    int rc = h5s_open(&s, path, err);
    if (!rc)
        rc = stat_read_sets(out, s, &set, 1, err);
    h5s_close(s);
    return rc;
}

static int load_domains(eval_ctx *c, const eval_args *a, vl_err *err)
{
    calib_env env = {c->m, c->tok, a->batch, CALIB_ROLE_EVAL};
    return ev_domain_book(&c->book, &env, a->dom_specs, a->n_dom, err);
}

/* Refuse domains that share tokens with a calibration set of a statistics file in use. */
static int check_leakage(const eval_ctx *c, const eval_args *a, vl_err *err)
{
    calib_ids ev[MAX_DOMS];
    int n_ev = calib_book_count(c->book);
    calib_book_ids(c->book, ev);
    int rc = 0;
    if (a->stats_path)
        rc = sfile_check_overlap(a->stats_path, ev, n_ev, err);
    for (int r = 0; !rc && r < a->n_rows; r++) {
        int seen = !c->stats_file[r] ||
                   (a->stats_path && !strcmp(a->stats_path, c->stats_file[r]));
        for (int q = 0; !seen && q < r; q++)
            seen = c->stats_file[q] && !strcmp(c->stats_file[q], c->stats_file[r]);
        if (!seen)
            rc = sfile_check_overlap(c->stats_file[r], ev, n_ev, err);
    }
    if (rc == VL_EARG)
        vl_errctx(err, rc, "leakage (--allow-overlap evaluates anyway)");
    return rc;
}

/* One row: its statistics (its own, else --stats), provenance, then the library's row. */
static int eval_row(eval_ctx *c, const eval_args *a, qe_eval *q, h5s_store *store, int row,
                    vl_err *err)
{
    const row_spec *r = &a->rows[row];
    if (par_rank() == 0)
        fprintf(stderr, "eval: quantizing %s\n", r->name);
    stat_acc *own = NULL; /* the allocation's own calibration statistics */
    int rc = 0;
    if (c->calib[row])
        rc = load_stats(&own, c->stats_file[row], c->calib[row], err);
    qe_row qr = {r->name, &c->al[row], own ? own : c->stats, qb_defaults(), {0}};
    qr.qp.fq.seed = a->seed;
    qr.attrs.kind = r->format ? "uniform" : "vbr";
    qr.attrs.source = r->file ? r->file : "uniform";
    qr.attrs.format = r->format ? r->format : "mixed";
    qr.attrs.alloc = r->h5 ? r->name : "";
    qr.attrs.target_bpw = c->target[row];
    qr.attrs.solver = c->solver[row] ? c->solver[row] : "";
    qr.attrs.calib = own ? c->calib[row] : c->stats ? a->calib : "";
    qr.attrs.stats_file = own ? c->stats_file[row] : c->stats ? a->stats_path : "";
    if (!rc)
        rc = qe_run_row(q, store, row, &qr, 1, err);
    stat_free(own);
    return rc;
}

/* Allocation of an alloc.h5 row, and its own statistics when it names both set and file. */
static int read_stored(eval_ctx *c, int row, const row_spec *rs, vl_err *err)
{
    h5s_store *st = NULL;
    salloc_record rec;
    int rc = h5s_open(&st, rs->file, err);
    if (rc)
        return rc;
    rc = salloc_read_qb(st, rs->name, &c->al[row], &rec, err);
    if (!rc) {
        c->target[row] = rec.target_bpw;
        c->solver[row] = rec.solver;
        rec.solver = NULL;
        if (*rec.calib && *rec.stats_file) {
            c->calib[row] = rec.calib;
            c->stats_file[row] = rec.stats_file;
            rec.calib = rec.stats_file = NULL;
        }
        salloc_record_free(&rec);
    }
    h5s_close(st);
    return rc;
}

static int print_bits(h5s_store *store, const char *const *names, int n, vl_err *err)
{
    printf("\n| row | bpw body | bpw model | bpw file |\n|---|---:|---:|---:|\n");
    for (int r = 0; r < n; r++) {
        ev_row_attrs at;
        int rc = ev_read_row(store, names[r], &at, err);
        if (rc)
            return rc;
        printf("| %s | %.4f | %.4f |", names[r], at.bpw, at.bpw_model);
        if (isfinite(at.bpw_file))
            printf(" %.4f |\n", at.bpw_file);
        else
            printf(" – |\n");
        ev_row_attrs_free(&at);
    }
    return 0;
}

static int run(const eval_args *a, vl_err *err)
{
    eval_ctx c;
    memset(&c, 0, sizeof c);
    qe_eval *q = NULL;
    h5s_store *store = NULL;
    int rc = model_open(&c.m, a->dir, err);
    if (!rc)
        rc = tok_open(a->dir, &c.tok, err);
    for (int r = 0; r < a->n_rows && !rc; r++) {
        const row_spec *rs = &a->rows[r];
        rc = rs->h5     ? read_stored(&c, r, rs, err)
             : rs->file ? qb_alloc_read_text(&c.al[r], rs->file, err)
                        : qb_alloc_uniform(&c.al[r], c.m, rs->format, err);
        if (!rc)
            rc = qb_alloc_check(c.m, &c.al[r], a->stats_path || c.calib[r], rs->name, err);
    }
    if (!rc && a->stats_path)
        rc = load_stats(&c.stats, a->stats_path, a->calib, err);
    if (!rc)
        rc = load_domains(&c, a, err);
    if (!rc && !a->allow_overlap)
        rc = check_leakage(&c, a, err);
    if (!rc)
        rc = qe_new(&q, c.m, c.book, a->batch, a->n_rows, err);
    if (!rc) {
        qe_set_second_half(q, a->second_half);
        qe_set_layer_major(q, a->mem_cap >= 0, a->mem_cap >= 0 ? a->mem_cap : 0);
    }
    if (!rc)
        rc = qe_set_pipeline(q, a->pipeline, err);
    if (!rc)
        rc = cli_store_begin(&store, a->out, CMD, err);
    for (int r = 0; r < a->n_rows && !rc; r++)
        rc = eval_row(&c, a, q, store, r, err);
    const char *an[MAX_ROWS];
    for (int r = 0; r < a->n_rows; r++)
        an[r] = a->rows[r].name;
    if (!rc)
        rc = qe_finish(q, store, an, par_rank() == 0 ? stdout : NULL, err);
    if (!rc && store) /* the bits of each row: body, whole model, GGUF file (alloc/mbits.h) */
        rc = print_bits(store, an, a->n_rows, err);
    rc = cli_store_end(store, a->out, rc, err);
    qe_free(q);
    calib_book_free(c.book);
    for (int r = 0; r < a->n_rows; r++) {
        qb_alloc_deinit(&c.al[r]);
        vl_free(c.calib[r]);
        vl_free(c.stats_file[r]);
        vl_free(c.solver[r]);
    }
    stat_free(c.stats);
    tok_close(c.tok);
    model_close(c.m);
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    eval_args a;
    if (parse_args(&a, argc, argv))
        return 1;
    vl_err e = {0};
    if (run(&a, &e))
        return cli_fail(CMD, &e);
    return 0;
}
