/* cli/cmd_eval.c — `vbrlab eval`: the KLD matrix, allocations × evaluation domains.
 *
 *   vbrlab eval [MODEL_DIR] (--alloc FILE[:NAME] | --uniform FORMAT)...
 *               [--stats stats.h5 --calib SET] --domain NAME=SOURCE[,seqs=N,len=L,seed=S]...
 *               [--seed S] [--batch N] [-o eval.h5]
 *
 * --alloc reads a plain-text allocation (analysis/qbind.h: `ITEM FORMAT` per line); the row is
 * named NAME, else the file's base name without extension. An HDF5 FILE (signature, or a .h5
 * name) is an alloc.h5 (alloc/salloc.h): FILE:NAME is its allocation /alloc/NAME, the row
 * named NAME; FILE alone is every allocation in it, one row each in name order. Such a row
 * quantizes with its own calibration statistics (attributes calib and stats_file) when it has
 * them; --stats/--calib serve the other rows. --uniform FORMAT quantizes every
 * matrix of the attention, experts, shared expert and MLP in FORMAT; the row is the format's
 * name. --stats/--calib give the calibration statistics (stat_read of /stats/SET): E[x²]
 * importance for every format and XᵀX for GPTQ. --seed seeds the Hadamard signs. --batch is
 * sequences per forward (memory: two logit buffers of batch × len × vocab floats).
 * The tables go to stdout, progress to stderr (tty only), the store to -o.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include "../alloc/salloc.h"
#include "../analysis/calib.h"
#include "../analysis/eval.h"
#include "../analysis/qbind.h"
#include "../analysis/stats.h"
#include "../core/par.h"
#include "../core/prog.h"
#include "../io/h5s.h"
#include "../io/tok.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
} eval_args;

static const char usage_line[] =
    "usage: vbrlab eval [MODEL_DIR] (--alloc FILE[:NAME] | --uniform FORMAT)... [--stats "
    "stats.h5 --calib SET] --domain NAME=SOURCE[,seqs=N,len=L,seed=S]... [--seed S] "
    "[--batch N] [-o eval.h5]";

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
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (i == 1 && cli_is_positional(s)) {
            a->dir = s;
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
            row_spec *r = &a->rows[a->n_rows++];
            r->file = NULL;
            r->format = v;
            r->h5 = 0;
            snprintf(r->name, sizeof r->name, "%s", v);
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
            char *end;
            a->seed = strtoull(v, &end, 10);
            if (!*v || *end)
                return cli_failf(CMD, "--seed '%s': expected a non-negative integer", v);
        } else if (!strcmp(s, "--batch")) {
            char *end;
            long b = strtol(v, &end, 10);
            if (!*v || *end || b < 1 || b > 1024)
                return cli_failf(CMD, "--batch '%s': expected 1..1024", v);
            a->batch = (int)b;
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
        if (!ev_name_ok(a->rows[r].name) || !strcmp(a->rows[r].name, "matrix") ||
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
    stat_acc *stats;
    calib_book *book;               /* the domains' ids */
    const calib_set *dom[MAX_DOMS]; /* owned by book */
    int n_dom, max_len;
    uint64_t seed; /* Hadamard sign seed */
    ev_runner *runner;
    h5s_store *store;
    kld_summary *sums; /* [n_rows × n_dom] */
    qb_alloc al[MAX_ROWS]; /* every row's allocation, read and checked before any work */
    char *calib[MAX_ROWS], *stats_file[MAX_ROWS]; /* a stored allocation's own statistics */
} eval_ctx;

static int load_stats(stat_acc **out, const char *path, const char *set, vl_err *err)
{
    h5s_store *s = NULL;
    int rc = h5s_open(&s, path, err);
    if (rc)
        return rc;
    char g[256];
    snprintf(g, sizeof g, "/stats/%s", set);
    if (!h5s_exists(s, g))
        rc = vl_errf(err, VL_ENOTFOUND, "%s: no calibration set \"%s\" (group %s)", path, set,
                     g);
    else
        rc = stat_read(out, s, g, err);
    h5s_close(s);
    return rc;
}

static int load_domains(eval_ctx *c, const eval_args *a, vl_err *err)
{
    calib_env env = {c->m, c->tok, a->batch};
    int rc = calib_book_new(&c->book, &env, err);
    for (int d = 0; d < a->n_dom && !rc; d++) {
        calib_spec sp;
        if ((rc = ev_domain_parse(a->dom_specs[d], &sp, err)) ||
            (rc = calib_book_add(c->book, &sp, err)))
            break;
        c->dom[d] = calib_book_find(c->book, sp.name);
        c->n_dom = d + 1;
        if (c->dom[d]->seq_len > c->max_len)
            c->max_len = c->dom[d]->seq_len;
    }
    return rc;
}

/* One row: bind the allocation, run every domain, store. */
static int eval_row(eval_ctx *c, const row_spec *r, int row, vl_err *err)
{
    qb_binding *b = NULL;
    ev_result res;
    ev_result_init(&res);
    qb_params qp = qb_defaults();
    qp.fq.seed = c->seed;
    if (par_rank() == 0)
        fprintf(stderr, "eval: quantizing %s\n", r->name);
    stat_acc *own = NULL; /* the allocation's own calibration statistics */
    int rc = 0;
    if (c->calib[row])
        rc = load_stats(&own, c->stats_file[row], c->calib[row], err);
    if (!rc)
        rc = qb_bind(&b, c->m, &c->al[row], own ? own : c->stats, &qp, r->name, err);
    stat_free(own);
    int64_t total = 0;
    for (int d = 0; d < c->n_dom; d++)
        total += (int64_t)c->dom[d]->n_seq * c->dom[d]->seq_len;
    prog pg;
    char label[EV_NAME_MAX + 8];
    snprintf(label, sizeof label, "eval %s", r->name);
    prog_init(&pg, label, "tok", total);
    for (int d = 0; d < c->n_dom && !rc; d++) {
        const calib_set *ds = c->dom[d];
        rc = ev_run(c->runner, qb_weights(b), ds->ids, ds->n_seq, ds->seq_len, &res, &pg, err);
        if (!rc && row == 0 && c->store)
            rc = ev_write_domain(c->store, ds, &res, err);
        if (!rc && c->store)
            rc = ev_write_result(c->store, r->name, ds->spec.name, &res, err);
        if (!rc)
            c->sums[(size_t)row * c->n_dom + d] = res.sum;
    }
    prog_finish(&pg);
    if (!rc && c->store) {
        char g[EV_NAME_MAX + 8];
        snprintf(g, sizeof g, "/eval/%s", r->name);
        qb_info in = qb_get_info(b);
        if (c->calib[row] &&
            (rc = h5s_attr_set(c->store, g, "calib", c->calib[row], err)) == 0)
            rc = h5s_attr_set(c->store, g, "stats_file", c->stats_file[row], err);
        if (!rc && !(rc = h5s_attr_set(c->store, g, "source", r->file ? r->file : "uniform", err)) &&
            !(rc = h5s_attr_set(c->store, g, "format", r->format ? r->format : "mixed", err)) &&
            !(rc = h5s_attr_set_f64(c->store, g, "n_tensors", in.n_tensors, err)) &&
            !(rc = h5s_attr_set_f64(c->store, g, "n_weights", (double)in.n_weights, err)))
            rc = h5s_attr_set_f64(c->store, g, "bpw", in.bpw, err);
    }
    ev_result_deinit(&res);
    qb_free(b);
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
    if (!rc && *rec.calib && *rec.stats_file) {
        c->calib[row] = rec.calib;
        c->stats_file[row] = rec.stats_file;
        rec.calib = rec.stats_file = NULL;
    }
    if (!rc)
        salloc_record_free(&rec);
    h5s_close(st);
    return rc;
}

static int run(const eval_args *a, vl_err *err)
{
    eval_ctx c;
    memset(&c, 0, sizeof c);
    c.seed = a->seed;
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
    if (!rc)
        rc = ev_runner_new(&c.runner, c.m, a->batch, c.max_len, err);
    c.sums = vl_calloc((size_t)a->n_rows * (c.n_dom ? c.n_dom : 1), sizeof *c.sums);
    if (!rc && !c.sums)
        rc = vl_errf(err, VL_ENOMEM, "out of memory");
    /* without -o the store is a temporary that h5s_close discards */
    char tmp[64];
    snprintf(tmp, sizeof tmp, "/tmp/vbrlab-eval-%ld.h5", (long)getpid());
    if (!rc && par_rank() == 0) /* the ranks share the work, rank 0 writes (core/par.h) */
        rc = h5s_create(&c.store, a->out ? a->out : tmp, err);
    for (int r = 0; r < a->n_rows && !rc; r++) {
        row_spec rs = a->rows[r];
        rc = eval_row(&c, &rs, r, err);
    }
    const char *an[MAX_ROWS], *dn[MAX_DOMS];
    for (int r = 0; r < a->n_rows; r++)
        an[r] = a->rows[r].name;
    for (int d = 0; d < c.n_dom; d++)
        dn[d] = c.dom[d]->spec.name;
    ev_matrix mx = {a->n_rows, c.n_dom, an, dn, c.sums};
    if (!rc && c.store)
        rc = ev_write_matrix(c.store, &mx, err);
    if (!rc && c.store) {
        ev_print_matrix(stdout, &mx);
        if (a->out) {
            rc = h5s_commit(c.store, err);
            c.store = NULL;
        }
    }
    h5s_close(c.store);
    vl_free(c.sums);
    ev_runner_free(c.runner);
    calib_book_free(c.book);
    for (int r = 0; r < a->n_rows; r++) {
        qb_alloc_deinit(&c.al[r]);
        vl_free(c.calib[r]);
        vl_free(c.stats_file[r]);
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
