/* cli/cmd_alloc.c — `vbrlab alloc`: choose one option per item under a bits-per-weight budget.
 *
 *   vbrlab alloc --problem FILE --target-bpw B [--solver exact|lagrange|uniform|rules]
 *                [--objective sum|weighted|minimax] [--set N] [--weights w1,w2,...]
 *                [--node-limit N] [--rel-gap G] [--export-regex]
 *
 * Prints the allocation table and totals (alloc/solve.h), or with --export-regex only the
 * REGEX=OPTION lines. The sensitivity-store path (--sens FILE --set NAME --sets A,B
 * --granularity tensor|group -o OUT.h5) is parsed but not supported yet.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../alloc/solve.h"

#define CMD "alloc"

typedef struct {
    const char *problem, *sens, *set_name, *sets, *granularity, *out;
    const char *weights;
    solve_params par;
    int export_regex;
    int have_target;
} alloc_args;

static int parse_double(const char *opt, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !isfinite(v))
        return cli_failf(CMD, "%s: \"%s\" is not a number", opt, s);
    *out = v;
    return 0;
}

static int parse_long(const char *opt, const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno == ERANGE || v < 0)
        return cli_failf(CMD, "%s: \"%s\" is not a non-negative integer", opt, s);
    *out = v;
    return 0;
}

/* "w1,w2,..." → exactly n numbers. */
static int parse_weights(const char *s, int n, double *w)
{
    int k = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno == ERANGE || !isfinite(v) || (*end && *end != ','))
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
        } else if (!strcmp(o, "-o")) {
            a->out = v;
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
            char *end;
            l = strtol(v, &end, 10);
            if (*v && !*end && l >= 0 && l < 1 << 20)
                a->par.set = (int)l;
            else
                a->set_name = v;
        } else if (!strcmp(o, "--solver")) {
            if (solve_method_parse(v, &a->par.method, &e))
                return cli_fail(CMD, &e);
        } else if (!strcmp(o, "--objective")) {
            if (solve_objective_parse(v, &a->par.objective, &e))
                return cli_fail(CMD, &e);
        } else {
            return cli_failf(CMD, "unknown argument \"%s\"", o);
        }
        i += takes;
    }
    if (a->sens)
        return cli_failf(CMD, "--sens %s: sensitivity stores are not yet supported; use "
                              "--problem FILE", a->sens);
    if (!a->problem)
        return cli_failf(CMD, "need --problem FILE (usage: vbrlab alloc --problem FILE "
                              "--target-bpw B [--solver ...] [--objective ...])");
    if (a->set_name || a->sets || a->granularity || a->out)
        return cli_failf(CMD, "--set NAME, --sets, --granularity and -o belong to the --sens "
                              "path, not yet supported");
    if (!a->have_target)
        return cli_failf(CMD, "need --target-bpw B");
    return 0;
}

int cmd_alloc(int argc, char **argv)
{
    alloc_args a;
    if (parse_args(argc, argv, &a))
        return 1;
    vl_err e = {0, ""};
    solve_problem *p = NULL;
    solve_result r;
    double *w = NULL;
    int status = 1;
    if (solve_problem_read(a.problem, &p, &e)) {
        cli_fail(CMD, &e);
        goto done;
    }
    if (a.weights) {
        w = vl_malloc((size_t)p->n_sets * sizeof *w);
        if (!w || parse_weights(a.weights, p->n_sets, w))
            goto done;
        a.par.weights = w;
    } else if (a.par.objective == SOLVE_OBJ_WEIGHTED) {
        cli_failf(CMD, "--objective weighted needs --weights w1,...,w%d", p->n_sets);
        goto done;
    }
    if (solve_run(p, &a.par, &r, &e)) {
        cli_fail(CMD, &e);
        goto done;
    }
    if (a.export_regex)
        solve_result_export_regex(stdout, p, &r);
    else
        solve_result_print(stdout, p, &r);
    solve_result_free(&r);
    status = 0;
done:
    vl_free(w);
    solve_problem_free(p);
    return status;
}
