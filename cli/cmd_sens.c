/* cli/cmd_sens.c — `vbrlab sens`: sensitivity α per unit per calibration set, RD tables over a
 * format menu and the additivity check, into sens.h5 (alloc/sens.h; docs/hdf5-schema.md).
 *
 *   vbrlab sens [MODEL_DIR] --stats stats.h5 [--set NAME ...] --formats SPEC
 *               [--granularity tensor|group] [--eps 0.01,0.03] [--seed S] [--tokens N]
 *               [--quant-set NAME] [--few rtn|uniform] [--min-tokens N]
 *               [--add-per-target N] [--add-set NAME] -o sens.h5
 *
 * Sets come from the stats store (`vbrlab stats`: /sets/<name>/input_ids, /stats/<name>);
 * without --set every set in it is used. --tokens caps the tokens per set used by the α runs
 * and the additivity check (whole leading sequences; default 256, 0 = all). Prints the α table
 * per unit and set, the uniform-format table (measured KLD of every format everywhere on the
 * additivity set) and the additivity correlations. Progress on stderr (tty only).
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include "../alloc/sens.h"
#include "../analysis/model.h"
#include "../core/num.h"
#include "../core/par.h"
#include "../io/h5s.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "sens"
#define MAX_SETS 32

typedef struct {
    const char *model_dir, *stats, *formats, *out, *quant_set, *add_set;
    const char *sets[MAX_SETS];
    int n_sets;
    sens_params p;
} sens_args;

static int num_arg(const char *o, const char *v, double lo, double hi, double *out)
{
    if (num_f64(v, lo, hi, out))
        return cli_failf(CMD, "%s: \"%s\" is not a number in [%g, %g]", o, v, lo, hi);
    return 0;
}

static int parse_eps(const char *v, double eps[2])
{
    size_t n = strcspn(v, ",");
    if (!v[n] || num_f64_n(v, n, -DBL_MAX, DBL_MAX, &eps[0]) ||
        num_f64(v + n + 1, -DBL_MAX, DBL_MAX, &eps[1]))
        return cli_failf(CMD, "--eps: \"%s\" is not two numbers E0,E1", v);
    if (!(eps[0] > 0 && eps[0] < 1 && eps[1] > 0 && eps[1] < 1))
        return cli_failf(CMD, "--eps: \"%s\": need two values in (0, 1)", v);
    return 0;
}

static int parse_args(int argc, char **argv, sens_args *a)
{
    memset(a, 0, sizeof *a);
    a->p = sens_defaults();
    a->p.progress = 1;
    vl_err e = {0, ""};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x;
        if (i == 1 && cli_is_positional(o)) {
            a->model_dir = o;
            continue;
        }
        if (!v)
            return cli_failf(CMD, "%s needs a value (or is unknown)", o);
        if (!strcmp(o, "--stats"))
            a->stats = v;
        else if (!strcmp(o, "--formats"))
            a->formats = v;
        else if (!strcmp(o, "-o"))
            a->out = v;
        else if (!strcmp(o, "--quant-set"))
            a->quant_set = v;
        else if (!strcmp(o, "--add-set"))
            a->add_set = v;
        else if (!strcmp(o, "--set")) {
            if (a->n_sets == MAX_SETS)
                return cli_failf(CMD, "more than %d --set options", MAX_SETS);
            a->sets[a->n_sets++] = v;
        } else if (!strcmp(o, "--granularity")) {
            if (sens_gran_parse(v, &a->p.gran, &e))
                return cli_fail(CMD, &e);
        } else if (!strcmp(o, "--few")) {
            if (fq_policy_parse(&a->p.fq.few, v, &e))
                return cli_fail(CMD, &e);
        } else if (!strcmp(o, "--eps")) {
            if (parse_eps(v, a->p.eps))
                return 1;
        } else if (!strcmp(o, "--seed")) {
            if (num_arg(o, v, 0, 9007199254740992.0, &x))
                return 1;
            a->p.seed = (uint64_t)x;
        } else if (!strcmp(o, "--tokens")) {
            if (num_arg(o, v, 0, 1 << 24, &x))
                return 1;
            a->p.max_tokens = (int)x;
        } else if (!strcmp(o, "--min-tokens")) {
            if (num_arg(o, v, 0, 1e15, &a->p.fq.min_tokens))
                return 1;
        } else if (!strcmp(o, "--add-per-target")) {
            if (num_arg(o, v, 0, 1000, &x))
                return 1;
            a->p.add_per_target = (int)x;
        } else
            return cli_failf(CMD, "unknown argument \"%s\"", o);
        i++;
    }
    if (!a->stats || !a->formats || !a->out)
        return cli_failf(CMD, "need --stats FILE, --formats SPEC and -o OUT.h5 (usage: vbrlab "
                              "sens [MODEL_DIR] --stats stats.h5 --formats SPEC -o sens.h5)");
    qfmt_menu menu;
    if (qfmt_menu_parse(&menu, a->formats, &e))
        return cli_fail(CMD, &e);
    qfmt_menu_free(&menu);
    return 0;
}

/* Index of NAME among the sets, or a one-line error listing them. */
static int set_index(const sens_args *a, const char *opt, const char *name, int *out)
{
    for (int s = 0; s < a->n_sets; s++)
        if (!strcmp(a->sets[s], name)) {
            *out = s;
            return 0;
        }
    return cli_failf(CMD, "%s %s: not among the sets used", opt, name);
}

/* Read the sets' ids (trimmed to max_tokens) and statistics from the stats store. */
static int load_sets(h5s_store *h, sens_args *a, int32_t **ids, int *n_seq, int *seq_len,
                     stat_acc **acc)
{
    vl_err e = {0, ""};
    char path[512];
    for (int s = 0; s < a->n_sets; s++) {
        snprintf(path, sizeof path, "/sets/%s/input_ids", a->sets[s]);
        if (strchr(a->sets[s], '/') || !h5s_exists(h, path))
            return cli_failf(CMD, "%s: no set \"%s\" (no %s)", a->stats, a->sets[s], path);
        int nd;
        int64_t sh[H5S_MAX_DIMS];
        if (h5s_read(h, path, H5S_I32, (void **)&ids[s], &nd, sh, &e))
            return cli_fail(CMD, &e);
        if (nd != 2 || sh[0] < 1 || sh[1] < 1 || sh[0] * sh[1] > (1 << 24))
            return cli_failf(CMD, "%s: %s: expected int32 [seqs, len]", a->stats, path);
        seq_len[s] = (int)sh[1];
        n_seq[s] = (int)sh[0];
        if (a->p.max_tokens > 0 && (int64_t)n_seq[s] * seq_len[s] > a->p.max_tokens)
            n_seq[s] = a->p.max_tokens / seq_len[s] > 0 ? a->p.max_tokens / seq_len[s] : 1;
        snprintf(path, sizeof path, "/stats/%s", a->sets[s]);
        if (stat_read(&acc[s], h, path, &e))
            return cli_fail(CMD, &e);
    }
    return 0;
}

static void print_alpha(const sens_result *r)
{
    printf("α = mean KLD / ε² (nats), ε = %g; ratio = α(%g)/α(%g)\n%-56s", r->eps[0], r->eps[1],
           r->eps[0], "unit");
    for (int s = 0; s < r->n_sets; s++)
        printf(" %11s %6s", r->set_name[s], "ratio");
    printf("\n");
    for (int u = 0; u < r->n_units; u++) {
        printf("%-56s", r->unit_name[u]);
        for (int s = 0; s < r->n_sets; s++) {
            size_t i = (size_t)s * r->n_units + u;
            printf(" %11.4g %6.3f", r->alpha[0][i], r->alpha[1][i] / r->alpha[0][i]);
        }
        printf("\n");
    }
}

static void print_additivity(const sens_result *r, const sens_params *p)
{
    if (!r->n_add)
        return;
    printf("\nadditivity on set %s (%d random assignments per target; prediction Σ α·e)\n",
           r->set_name[r->add_set], p->add_per_target);
    printf("%-10s %8s %12s %12s %12s\n", "target", "bpw", "measured", "pred(rel)", "pred(out)");
    for (int a = 0; a < r->n_add; a++)
        printf("%-10g %8.3f %12.5g %12.5g %12.5g\n", r->add_target[a], r->add_bpw[a],
               r->add_measured[a], r->add_pred[0][a], r->add_pred[1][a]);
    printf("%-10s %10s %10s %10s %10s\n", "band", "pearson_r", "spearman_r", "pearson_o",
           "spearman_o");
    for (int b = 0; b < r->n_bands; b++) {
        const double *c = r->corr + (size_t)b * 4;
        if (b < r->n_bands - 1)
            printf("%-10g", p->add_targets[b]);
        else
            printf("%-10s", "all");
        printf(" %10.4f %10.4f %10.4f %10.4f\n", c[0], c[1], c[2], c[3]);
    }
}

/* Every format everywhere: the bpw, measured and predicted KLD (the uniform baselines). */
static int print_uniform(const sens_result *r, const model *m, sens_set *s, const float *q)
{
    vl_err e = {0, ""};
    int *ch = vl_malloc((size_t)r->n_units * sizeof *ch);
    if (!ch)
        return cli_failf(CMD, "out of memory");
    printf("uniform formats on set %s\n%-24s %7s %12s %12s %12s\n", r->set_name[r->add_set],
           "format", "bpw", "measured", "pred(rel)", "pred(out)");
    for (int f = 0; f < r->n_formats; f++) {
        char nm[QFMT_NAME_MAX];
        double b, kl, pr[2];
        for (int u = 0; u < r->n_units; u++)
            ch[u] = f;
        if (sens_assign_eval(r, m, s, q, r->add_set, ch, &b, &kl, pr, &e)) {
            vl_free(ch);
            return cli_fail(CMD, &e);
        }
        printf("%-24s %7.4f %12.5g %12.5g %12.5g\n", qfmt_name(&r->fmt[f], nm), b, kl, pr[0],
               pr[1]);
    }
    printf("\n");
    vl_free(ch);
    return 0;
}

int cmd_sens(int argc, char **argv)
{
    sens_args a;
    if (parse_args(argc, argv, &a))
        return 1;
    vl_err e = {0, ""};
    model *m = NULL;
    h5s_store *h = NULL, *out = NULL;
    sens_result r = {0};
    sens_set *ss = NULL;
    float *q = NULL;
    int32_t *ids[MAX_SETS] = {0};
    int n_seq[MAX_SETS], seq_len[MAX_SETS], status = 1;
    stat_acc *acc[MAX_SETS] = {0};
    char **listed = NULL;
    int n_listed = 0;
    const char *dir = a.model_dir ? a.model_dir : cli_default_model();
    if (model_open(&m, dir, &e) || h5s_open(&h, a.stats, &e)) {
        cli_fail(CMD, &e);
        goto done;
    }
    if (!a.n_sets) { /* every set of the store */
        if (h5s_list(h, "/sets", &listed, &n_listed, &e)) {
            cli_fail(CMD, &e);
            goto done;
        }
        for (int i = 0; i < n_listed && a.n_sets < MAX_SETS; i++)
            a.sets[a.n_sets++] = listed[i];
        if (!a.n_sets) {
            cli_failf(CMD, "%s: holds no sets", a.stats);
            goto done;
        }
    }
    if ((a.quant_set && set_index(&a, "--quant-set", a.quant_set, &a.p.quant_set)) ||
        (a.add_set && set_index(&a, "--add-set", a.add_set, &a.p.add_set)) ||
        load_sets(h, &a, ids, n_seq, seq_len, acc))
        goto done;
    if (sens_layout(&r, m, a.p.gran, &e) ||
        sens_alloc_alpha(&r, a.n_sets, (const char *const *)a.sets, &e) ||
        sens_rd(&r, m, a.formats, acc, &a.p, &q, &e)) {
        cli_fail(CMD, &e);
        goto done;
    }
    for (int s = 0; s < a.n_sets; s++) {
        if (sens_set_new(&ss, m, ids[s], n_seq[s], seq_len[s], &e) ||
            sens_alpha(&r, s, m, ss, &a.p, &e) ||
            (s == a.p.add_set && sens_additivity(&r, m, ss, q, &a.p, &e))) {
            cli_fail(CMD, &e);
            goto done;
        }
        /* tables and the store are rank 0's (core/par.h); the other ranks only compute */
        if (s == a.p.add_set && par_rank() == 0 && print_uniform(&r, m, ss, q))
            goto done;
        sens_set_free(ss);
        ss = NULL;
    }
    if (par_rank() != 0) {
        status = 0;
        goto done;
    }
    print_alpha(&r);
    print_additivity(&r, &a.p);
    if (h5s_create(&out, a.out, &e) || sens_write(&r, out, &e) ||
        h5s_attr_set(out, "/sens", "model", dir, &e) ||
        h5s_attr_set(out, "/sens", "stats_file", a.stats, &e)) {
        cli_fail(CMD, &e);
        goto done;
    }
    h5s_store *done_store = out;
    out = NULL; /* h5s_commit frees it, success or not */
    if (h5s_commit(done_store, &e)) {
        cli_fail(CMD, &e);
        goto done;
    }
    status = 0;
done:
    h5s_close(out);
    sens_set_free(ss);
    vl_free(q);
    sens_result_free(&r);
    for (int s = 0; s < MAX_SETS; s++) {
        vl_free(ids[s]);
        stat_free(acc[s]);
    }
    h5s_names_free(listed, n_listed);
    h5s_close(h);
    model_close(m);
    return status;
}
