/* cli/cmd_alloc.c — `vbrlab alloc`: choose one option per item under a bits-per-weight budget.
 *
 *   vbrlab alloc --problem FILE --target-bpw B [--solver exact|lagrange|uniform|rules]
 *                [--objective sum|weighted|minimax] [--set N] [--weights w1,w2,...]
 *                [--node-limit N] [--rel-gap G] [--export-regex]
 *
 *   vbrlab alloc --sens sens.h5 (--set NAME | --sets A,B,...) --target-bpw B
 *                [--objective sum|weighted|minimax] [--weights w1,...] [--solver ...]
 *                [--granularity tensor|group|gguf] [--budget body|model] [--error out|rel]
 *                [--calib SET]
 *                [-o alloc.h5] [--name NAME] [--node-limit N] [--rel-gap G] [--export-regex]
 *
 * Prints the allocation table and totals (alloc/solve.h), or with --export-regex only the
 * REGEX=OPTION lines. With --sens the problem comes from a sensitivity store (alloc/salloc.h):
 * granularity defaults to the store's, the error to out; the objective to sum for one set;
 * several sets need weighted or minimax. -o adds the allocation as /alloc/NAME to alloc.h5
 * (created, or copied and replaced atomically); NAME defaults to salloc_default_name
 * ("en-2.5", "minimax-en-zh-2.5"). --budget model makes --target-bpw count every weight of the
 * model (the kept tensors at their kept precision, alloc/mbits.h) instead of the items'
 * weights; both bpw are printed and stored. --calib names the statistics set recorded for GPTQ when the
 * allocation is applied (default: the first set); the stats file is the store's stats_file.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../alloc/salloc.h"
#include "../alloc/solve.h"
#include "../analysis/eval.h"
#include "../core/num.h"
#include "../io/h5s.h"

#include <unistd.h>

#define CMD "alloc"

typedef struct {
    const char *problem, *sens, *set_name, *sets, *granularity, *out;
    const char *weights, *name, *error, *calib, *budget;
    int have_objective;
    solve_params par;
    int export_regex;
    int have_target;
} alloc_args;

static int parse_double(const char *opt, const char *s, double *out)
{
    if (num_f64(s, -DBL_MAX, DBL_MAX, out))
        return cli_failf(CMD, "%s: \"%s\" is not a number", opt, s);
    return 0;
}

static int parse_long(const char *opt, const char *s, long *out)
{
    if (num_long(s, 0, LONG_MAX, out))
        return cli_failf(CMD, "%s: \"%s\" is not a non-negative integer", opt, s);
    return 0;
}

/* "w1,w2,..." → exactly n numbers. */
static int parse_weights(const char *s, int n, double *w)
{
    int k = 0;
    const char *p = s;
    while (*p) {
        const char *end = p + strcspn(p, ",");
        double v;
        if (num_f64_n(p, (size_t)(end - p), -DBL_MAX, DBL_MAX, &v))
            return cli_failf(CMD, "--weights: cannot read \"%s\"", s);
        if (k == n)
            return cli_failf(CMD, "--weights: more than the problem's %d sets", n);
        w[k++] = v;
        p = *end ? end + 1 : end;
    }
    if (k != n)
        return cli_failf(CMD, "--weights: %d given, the problem has %d sets", k, n);
    return 0;
}

static int parse_args(int argc, char **argv, alloc_args *a)
{
    memset(a, 0, sizeof *a);
    a->par = solve_params_defaults();
    vl_err e = {0, ""};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = strcmp(o, "--export-regex") != 0;
        if (takes && !v)
            return cli_failf(CMD, "%s needs a value", o);
        long l;
        if (!strcmp(o, "--export-regex")) {
            a->export_regex = 1;
        } else if (!strcmp(o, "--problem")) {
            a->problem = v;
        } else if (!strcmp(o, "--sens")) {
            a->sens = v;
        } else if (!strcmp(o, "--sets")) {
            a->sets = v;
        } else if (!strcmp(o, "--granularity")) {
            a->granularity = v;
        } else if (!strcmp(o, "--budget")) {
            a->budget = v;
        } else if (!strcmp(o, "-o")) {
            a->out = v;
        } else if (!strcmp(o, "--name")) {
            a->name = v;
        } else if (!strcmp(o, "--error")) {
            a->error = v;
        } else if (!strcmp(o, "--calib")) {
            a->calib = v;
        } else if (!strcmp(o, "--weights")) {
            a->weights = v;
        } else if (!strcmp(o, "--target-bpw")) {
            if (parse_double(o, v, &a->par.target_bpw))
                return 1;
            a->have_target = 1;
        } else if (!strcmp(o, "--rel-gap")) {
            if (parse_double(o, v, &a->par.rel_gap))
                return 1;
        } else if (!strcmp(o, "--node-limit")) {
            if (parse_long(o, v, &a->par.node_limit))
                return 1;
        } else if (!strcmp(o, "--set")) {
            /* a number selects a column of a problem file; a name is for the sens path */
            if (!num_long(v, 0, (1 << 20) - 1, &l))
                a->par.set = (int)l;
            else
                a->set_name = v;
        } else if (!strcmp(o, "--solver")) {
            if (solve_method_parse(v, &a->par.method, &e))
                return cli_fail(CMD, &e);
        } else if (!strcmp(o, "--objective")) {
            if (solve_objective_parse(v, &a->par.objective, &e))
                return cli_fail(CMD, &e);
            a->have_objective = 1;
        } else {
            return cli_failf(CMD, "unknown argument \"%s\"", o);
        }
        i += takes;
    }
    if (a->sens && a->problem)
        return cli_failf(CMD, "--sens and --problem exclude each other");
    if (!a->sens && !a->problem)
        return cli_failf(CMD, "need --problem FILE or --sens sens.h5 (usage: vbrlab alloc "
                              "--sens sens.h5 --set NAME --target-bpw B [--sets A,B "
                              "--objective minimax] [-o alloc.h5])");
    if (a->problem && (a->set_name || a->sets || a->granularity || a->out || a->name ||
                       a->error || a->calib || a->budget))
        return cli_failf(CMD, "--set NAME, --sets, --granularity, --budget, --error, --calib, --name and "
                              "-o belong to the --sens path");
    if (a->sens && !a->set_name && !a->sets)
        return cli_failf(CMD, "--sens needs --set NAME or --sets A,B,...");
    if (a->set_name && a->sets)
        return cli_failf(CMD, "give --set NAME or --sets A,B,..., not both");
    if (!a->have_target)
        return cli_failf(CMD, "need --target-bpw B");
    return 0;
}

/* Split "a,b,c" into at most cap names (pointers into buf, a copy of s). */
static int split_sets(const char *s, char *buf, size_t bufcap, const char **v, int cap, int *nv)
{
    if (strlen(s) >= bufcap)
        return cli_failf(CMD, "--sets: too long");
    strcpy(buf, s);
    int n = 0;
    for (char *p = buf; p; ) {
        char *c = strchr(p, ',');
        if (c)
            *c = '\0';
        if (!*p)
            return cli_failf(CMD, "--sets \"%s\": empty set name", s);
        if (n == cap)
            return cli_failf(CMD, "--sets: at most %d sets", cap);
        v[n++] = p;
        p = c ? c + 1 : NULL;
    }
    *nv = n;
    return 0;
}

/* Weights for --objective weighted over n sets (*w owned by the caller). */
static int set_weights(alloc_args *a, int n, double **w)
{
    *w = NULL;
    if (a->weights) {
        *w = vl_malloc((size_t)n * sizeof **w);
        if (!*w || parse_weights(a->weights, n, *w))
            return 1;
        a->par.weights = *w;
    } else if (a->par.objective == SOLVE_OBJ_WEIGHTED) {
        return cli_failf(CMD, "--objective weighted needs --weights w1,...,w%d", n);
    }
    return 0;
}

static void print_result(const alloc_args *a, const solve_problem *p, const solve_result *r)
{
    if (a->export_regex)
        solve_result_export_regex(stdout, p, r);
    else
        solve_result_print(stdout, p, r);
}

static int run_problem(alloc_args *a)
{
    vl_err e = {0, ""};
    solve_problem *p = NULL;
    solve_result r;
    double *w = NULL;
    int status = 1;
    if (solve_problem_read(a->problem, &p, &e)) {
        cli_fail(CMD, &e);
        goto done;
    }
    if (set_weights(a, p->n_sets, &w))
        goto done;
    if (solve_run(p, &a->par, &r, &e)) {
        cli_fail(CMD, &e);
        goto done;
    }
    print_result(a, p, &r);
    solve_result_free(&r);
    status = 0;
done:
    vl_free(w);
    solve_problem_free(p);
    return status;
}

/* Add /alloc/NAME to a->out (copy-on-write when it exists). */
static int save(const alloc_args *a, const char *name, const salloc_problem *sp,
                const solve_result *r, const char *stats_file, double model_target, vl_err *e)
{
    h5s_store *st = NULL;
    int rc = access(a->out, F_OK) == 0 ? h5s_open_rw(&st, a->out, e)
                                       : h5s_create(&st, a->out, e);
    salloc_meta meta = {a->calib ? a->calib : sp->set_name[0], stats_file, a->sens,
                        isfinite(model_target), model_target};
    if (!rc)
        rc = salloc_write(st, name, sp, r, &a->par, &meta, e);
    if (!rc) {
        rc = h5s_commit(st, e);
        st = NULL;
    }
    h5s_close(st);
    return rc;
}

static int run_sens(alloc_args *a)
{
    vl_err e = {0, ""};
    char setbuf[1024];
    const char *sets[64];
    int n_sets = 1, status = 1;
    sets[0] = a->set_name;
    if (a->sets && split_sets(a->sets, setbuf, sizeof setbuf, sets, 64, &n_sets))
        return 1;
    if (!a->have_objective && n_sets > 1)
        return cli_failf(CMD, "%d sets: give --objective weighted or minimax", n_sets);
    if (a->par.objective == SOLVE_OBJ_SUM && n_sets > 1)
        return cli_failf(CMD, "--objective sum takes one set; %d given (use weighted or "
                              "minimax)", n_sets);
    sens_err_kind kind = SENS_E_OUT;
    if (a->error && salloc_error_parse(a->error, &kind, &e))
        return cli_fail(CMD, &e);
    h5s_store *st = NULL;
    sens_result sr;
    memset(&sr, 0, sizeof sr);
    salloc_problem *sp = NULL;
    char *stats_file = NULL;
    double *w = NULL;
    solve_result r;
    memset(&r, 0, sizeof r);
    int rc = h5s_open(&st, a->sens, &e);
    if (!rc && !h5s_exists(st, "/sens"))
        rc = vl_errf(&e, VL_EFORMAT, "%s: not a sensitivity store (no /sens group)", a->sens);
    if (!rc)
        rc = sens_read(&sr, st, &e);
    if (!rc && h5s_attr_get(st, "/sens", "stats_file", &stats_file, &e))
        stats_file = NULL; /* optional: then GPTQ needs --stats at eval time */
    sens_gran gran = sr.gran;
    if (!rc && a->granularity)
        rc = sens_gran_parse(a->granularity, &gran, &e);
    if (!rc)
        rc = salloc_build(&sp, &sr, sets, n_sets, gran, kind, &e);
    if (!rc && set_weights(a, n_sets, &w))
        goto done; /* reported */
    a->par.set = 0;
    double model_target = NAN; /* --budget model: the target over the whole model */
    if (!rc && a->budget && strcmp(a->budget, "body")) {
        if (strcmp(a->budget, "model"))
            rc = vl_errf(&e, VL_EARG, "--budget \"%s\": expected body or model", a->budget);
        model_target = a->par.target_bpw;
        if (!rc)
            rc = salloc_model_target(sp, model_target, &a->par.target_bpw, &e);
    }
    if (!rc)
        rc = solve_run(sp->prob, &a->par, &r, &e);
    if (!rc) {
        print_result(a, sp->prob, &r);
        if (!a->export_regex)
            printf("bpw: body %.4f over %lld weights; model %.4f over %lld weights (kept "
                   "tensors at %s precision)\n",
                   r.n_weights ? r.bits_used / (double)r.n_weights : 0.0,
                   (long long)r.n_weights, salloc_model_bpw(sp, r.bits_used),
                   (long long)sp->model_weights, sp->rule ? "gguf" : "stored");
        if (a->out) {
            char name[EV_NAME_MAX];
            if (a->name)
                snprintf(name, sizeof name, "%s", a->name);
            else
                salloc_default_name(name, sizeof name, sets, n_sets, a->par.objective,
                                    isfinite(model_target) ? model_target : a->par.target_bpw);
            rc = save(a, name, sp, &r, stats_file, model_target, &e);
            if (!rc)
                fprintf(stderr, "alloc: wrote %s:/alloc/%s\n", a->out, name);
        }
    }
    if (rc)
        cli_fail(CMD, &e);
    else
        status = 0;
done:
    solve_result_free(&r);
    vl_free(w);
    vl_free(stats_file);
    salloc_problem_free(sp);
    sens_result_free(&sr);
    h5s_close(st);
    return status;
}

int cmd_alloc(int argc, char **argv)
{
    alloc_args a;
    if (parse_args(argc, argv, &a))
        return 1;
    return a.sens ? run_sens(&a) : run_problem(&a);
}
