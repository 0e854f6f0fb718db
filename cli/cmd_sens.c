/* cli/cmd_sens.c — `vbrlab sens`: sensitivity α per unit per calibration set, RD tables over a
 * format menu and the additivity check, into sens.h5 (alloc/sens.h; docs/hdf5-schema.md).
 *
 *   vbrlab sens [MODEL_DIR] --stats stats.h5 [--set NAME ...] --formats SPEC
 *               [--granularity tensor|group|gguf] [--embed-head] [--eps 0.01,0.03]
 *               [--seed S] [--tokens N]
 *               [--draws K] [--few rtn|uniform] [--min-tokens N]
 *               [--add-draws N] [--add-set NAME] -o sens.h5
 *
 * Sets come from the stats store (`vbrlab stats`: /sets/<name>/input_ids, /stats/<name>);
 * without --set every set in it is used. α is measured on every token of each set; --tokens
 * caps the tokens per set used by the α runs and the additivity check (whole leading
 * sequences; 0 = all, the default). --draws K averages K noise draws per unit and ε (default
 * 2). --embed-head makes the token embedding and the (untied) LM head units too, measured like
 * the others (noise in the embedding table is looked up again; noise in the head goes into
 * the final projection); granularity gguf is group plus those two units. --add-draws N:
 * additivity draws per band (default 30, 0 = no check; bands and held-out split in
 * alloc/sens.h). Prints the tokens each set's α used, the α table per unit and set (α ±
 * bootstrap SE over sequences, the ε ratio with units outside the quadratic regime marked "!",
 * the spread over draws), the uniform-format table (measured KLD of every format everywhere on
 * set --add-set, default the first) and the additivity statistics per set and band. Progress
 * on stderr (tty only).
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
    const char *model_dir, *stats, *formats, *out, *add_set;
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
        if (!strcmp(o, "--embed-head")) { /* a flag: no value */
            a->p.embed_head = 1;
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
            uint64_t sd; /* stored as a float64 attribute: exact up to 2^53 */
            if (num_u64(v, (uint64_t)1 << 53, 0, &sd))
                return cli_failf(CMD, "--seed: \"%s\" is not an integer in [0, 2^53]", v);
            a->p.seed = sd;
        } else if (!strcmp(o, "--tokens")) {
            if (num_arg(o, v, 0, 1 << 24, &x))
                return 1;
            a->p.max_tokens = (int)x;
        } else if (!strcmp(o, "--draws")) {
            if (num_arg(o, v, 1, SENS_MAX_DRAWS, &x))
                return 1;
            a->p.draws = (int)x;
        } else if (!strcmp(o, "--min-tokens")) {
            if (num_arg(o, v, 0, 1e15, &a->p.fq.min_tokens))
                return 1;
        } else if (!strcmp(o, "--add-draws")) {
            if (num_arg(o, v, 0, SENS_MAX_ADD_DRAWS, &x))
                return 1;
            if (x != floor(x))
                return cli_failf(CMD, "%s: \"%s\" is not a whole number", o, v);
            a->p.add_draws = (int)x;
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

static void print_alpha(const sens_result *r)
{
    for (int s = 0; s < r->n_sets; s++)
        printf("set %s: α measured on %lld tokens (%d sequences), %d noise draws, SE by %d "
               "bootstrap resamples over sequences\n", r->set_name[s],
               (long long)r->set_tokens[s], r->set_seqs[s], r->n_draws, r->n_boot);
    int quad = sens_quad_checked(r);
    printf("α = mean KLD / ε² (nats), ε = %g, ± bootstrap SE; ", r->eps[0]);
    if (quad)
        printf("ratio = α(%g)/α(%g), ! = outside the quadratic regime (|ratio − 1| > %g); ",
               r->eps[1], r->eps[0], SENS_QUAD_TOL);
    else
        printf("one noise level: the quadratic regime is not checked (ratio –); ");
    printf("draw sd = sd of α over noise draws\n%-56s", "unit");
    for (int s = 0; s < r->n_sets; s++)
        printf(" %11s %11s %7s %10s", r->set_name[s], "± SE", "ratio", "draw sd");
    printf("\n");
    for (int u = 0; u < r->n_units; u++) {
        printf("%-56s", r->unit_name[u]);
        for (int s = 0; s < r->n_sets; s++) {
            size_t i = (size_t)s * r->n_units + u;
            printf(" %11.4g %11.4g", r->alpha[0][i], r->alpha_se[0][i]);
            if (quad)
                printf(" %6.3f%c", r->alpha[1][i] / r->alpha[0][i],
                       sens_nonquadratic(r, s, u) ? '!' : ' ');
            else
                printf(" %7s", "–");
            printf(" %10.4g", r->alpha_draw_sd[0][i]);
        }
        printf("\n");
    }
}

static void print_additivity(const sens_result *r)
{
    if (!r->n_add)
        return;
    static const char *form[2] = {"rel", "out"};
    printf("\nadditivity: %d draws per band (each unit the band's upper width with probability "
           "1/2), measured on each set's held-out sequences, prediction Σ α'·e with α' from the "
           "other sequences\n", r->add_draws);
    for (int s = 0; s < r->n_sets; s++) {
        const int *ho = r->add_holdout + 2 * s;
        if (!ho[1]) {
            printf("set %s: not checked (fewer than 2 sequences)\n", r->set_name[s]);
            continue;
        }
        printf("set %s: held-out sequences %d..%d of %d\n%-8s %-4s %5s %8s %8s %8s %8s "
               "%22s %22s\n", r->set_name[s], ho[0], ho[0] + ho[1] - 1, ho[0] + ho[1], "band",
               "form", "draws", "distinct", "pearson", "spearman", "partial",
               "ratio [95% CI]", "slope [95% CI]");
        for (int b = 0; b < r->n_bands; b++)
            for (int k = 0; k < 2; k++) {
                const double *c =
                    r->add_stats + (((size_t)s * r->n_bands + b) * 2 + k) * SENS_BS_COUNT;
                char bn[32];
                snprintf(bn, sizeof bn, "%d/%d", r->band[b].lo, r->band[b].hi);
                printf("%-8s %-4s %5.0f %8.0f", bn, form[k], c[SENS_BS_N], c[SENS_BS_DISTINCT]);
                if (c[SENS_BS_DISTINCT] == 1) {
                    printf("  one distinct assignment: no correlation\n");
                    continue;
                }
                printf(" %8.4f %8.4f %8.4f %8.4g [%5.3g,%5.3g] %8.4g [%5.3g,%5.3g]\n",
                       c[SENS_BS_PEARSON], c[SENS_BS_SPEARMAN], c[SENS_BS_PARTIAL],
                       c[SENS_BS_RATIO], c[SENS_BS_RATIO_LO], c[SENS_BS_RATIO_HI],
                       c[SENS_BS_SLOPE], c[SENS_BS_SLOPE_LO], c[SENS_BS_SLOPE_HI]);
            }
    }
}

/* Every format everywhere: the bpw, measured and predicted KLD (the uniform baselines). */
static int print_uniform(void *ctx, const sens_result *r, const model *m, sens_set *s,
                         const float *q, vl_err *e)
{
    int si = *(const int *)ctx, *ch = vl_malloc((size_t)r->n_units * sizeof *ch);
    if (!ch)
        return vl_errf(e, VL_ENOMEM, "out of memory");
    printf("uniform formats on set %s\n%-24s %7s %12s %12s %12s\n", r->set_name[si],
           "format", "bpw", "measured", "pred(rel)", "pred(out)");
    for (int f = 0; f < r->n_formats; f++) {
        char nm[QFMT_NAME_MAX];
        double b, kl, pr[2];
        for (int u = 0; u < r->n_units; u++)
            ch[u] = f;
        int rc = sens_assign_eval(r, m, s, q, si, ch, &b, &kl, pr, e);
        if (rc) {
            vl_free(ch);
            return rc;
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
    int status = 1;
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
    if (a.add_set && set_index(&a, "--add-set", a.add_set, &a.p.add_set))
        goto done;
    if (sens_run(&r, m, h, a.sets, a.n_sets, a.formats, &a.p,
                 par_rank() == 0 ? print_uniform : NULL, &a.p.add_set, &e)) {
        cli_fail(CMD, &e);
        goto done;
    }
    if (par_rank() != 0) { /* tables and the store are rank 0's (core/par.h) */
        status = 0;
        goto done;
    }
    print_alpha(&r);
    print_additivity(&r);
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
    sens_result_free(&r);
    h5s_names_free(listed, n_listed);
    h5s_close(h);
    model_close(m);
    return status;
}
