/* experiments/stage_eval.c — the eval stage: every allocation result and every uniform
 * baseline, fake-quantized (alloc/qbind.h), against the reference on every [eval.*] domain
 * (analysis/eval.h) → /eval in `vbrlab eval`'s layout, plus the runner's row attributes.
 *
 * Rows, in order: for each [alloc.NAME] its targets ("NAME-BPW", the assignment stored in
 * /alloc/NAME-BPW), then the uniform baselines of each allocation's `uniform` list (row name =
 * the format; a format listed by two allocations is evaluated once, with the first's
 * calibration). The quantizers of a row use the statistics of its allocation's sets (merged
 * exactly when several): importance for every format, XᵀX for GPTQ.
 * Extra attributes on /eval/<row>: kind ("vbr" | "uniform"), alloc, target_bpw (vbr rows).
 * Evaluation sets are built by analysis/calib.h like calibration sets, so every source kind
 * (noise, self, entropy buckets) can be an evaluation domain.
 */
#define _POSIX_C_SOURCE 200809L
#include "stage.h"

#include "../alloc/fq.h"
#include "../analysis/eval.h"
#include "../alloc/qbind.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char name[EV_NAME_MAX];
    int alloc;              /* index of the allocation whose statistics it uses */
    double target;          /* vbr rows; 0 for uniform rows */
    const char *format;     /* uniform rows: the format; NULL for vbr rows */
} ev_row;

typedef struct {
    run_ctx *c;
    calib_book *book;       /* evaluation sets */
    ev_runner *runner;
    kld_summary *sums;      /* [rows × domains] */
    int n_dom;
} ev_ctx;

/* The rows of the config (see the opening comment). *rows owned by the caller. */
static int list_rows(const exp_config *cfg, ev_row **rows, int *n, vl_err *err)
{
    int cap = 0;
    for (int a = 0; a < cfg->n_alloc; a++)
        cap += cfg->alloc[a].target_bpw.n + cfg->alloc[a].uniform.n;
    ev_row *r = vl_calloc((size_t)cap + 1, sizeof *r);
    if (!r)
        return vl_errf(err, VL_ENOMEM, "out of memory");
    int k = 0;
    for (int a = 0; a < cfg->n_alloc; a++)
        for (int t = 0; t < cfg->alloc[a].target_bpw.n; t++, k++) {
            run_alloc_result_name(&cfg->alloc[a], cfg->alloc[a].target_bpw.v[t], r[k].name,
                                  sizeof r[k].name);
            r[k].alloc = a;
            r[k].target = cfg->alloc[a].target_bpw.v[t];
        }
    for (int a = 0; a < cfg->n_alloc; a++)
        for (int u = 0; u < cfg->alloc[a].uniform.n; u++) {
            const char *f = cfg->alloc[a].uniform.v[u];
            int dup = 0;
            for (int q = 0; q < k; q++)
                dup |= !strcmp(r[q].name, f);
            if (dup)
                continue;
            snprintf(r[k].name, sizeof r[k].name, "%s", f);
            r[k].alloc = a;
            r[k].format = f;
            k++;
        }
    *rows = r;
    *n = k;
    return 0;
}

/* The assignment text of /alloc/NAME ("tensor\tformat\n" lines) into a. */
static int read_assignment(h5s_store *s, const char *name, qb_alloc *a, vl_err *err)
{
    char g[128], *text = NULL;
    snprintf(g, sizeof g, "/alloc/%s", name);
    int rc = h5s_attr_get(s, g, "assignment", &text, err);
    for (char *line = text, *next; !rc && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *tab = strchr(line, '\t');
        if (!tab) {
            rc = vl_errf(err, VL_EFORMAT, "%s: %s@assignment: line without a tab",
                         h5s_path(s), g);
            break;
        }
        *tab = '\0';
        rc = qb_alloc_add(a, line, tab + 1, err);
    }
    vl_free(text);
    return rc;
}

static int eval_row(ev_ctx *x, const ev_row *row, int r, const stat_acc *stats, vl_err *err)
{
    run_ctx *c = x->c;
    qb_alloc al;
    qb_alloc_init(&al);
    qb_binding *b = NULL;
    ev_result res;
    ev_result_init(&res);
    int rc = row->format ? qb_alloc_uniform(&al, c->m, row->format, err)
                         : read_assignment(c->s, row->name, &al, err);
    qb_params qp = qb_defaults();
    int pol;
    run_few_policy(c->cfg, &pol, &qp.fq.min_tokens);
    qp.fq.few = (fq_policy)pol;
    qp.fq.seed = exp_sens_seed(c->cfg);
    qp.fq.gptq.percdamp = c->cfg->percdamp;
    qp.fq.gptq.act_order = c->cfg->act_order;
    if (!rc)
        rc = qb_bind(&b, c->m, &al, stats, &qp, row->name, err);
    for (int d = 0; !rc && d < x->n_dom; d++) {
        const calib_set *cs = calib_book_set(x->book, d);
        rc = ev_run(x->runner, qb_weights(b), cs->ids, cs->n_seq, cs->seq_len, &res, NULL, err);
        if (!rc && r == 0)
            rc = ev_write_domain(c->s, cs, &res, err);
        if (!rc)
            rc = ev_write_result(c->s, row->name, cs->spec.name, &res, err);
        if (!rc)
            x->sums[(size_t)r * x->n_dom + d] = res.sum;
    }
    char g[EV_NAME_MAX + 8];
    snprintf(g, sizeof g, "/eval/%s", row->name);
    qb_info in = b ? qb_get_info(b) : (qb_info){0};
    if (!rc)
        rc = h5s_attr_set(c->s, g, "kind", row->format ? "uniform" : "vbr", err);
    if (!rc)
        rc = h5s_attr_set(c->s, g, "alloc", c->cfg->alloc[row->alloc].name, err);
    if (!rc)
        rc = h5s_attr_set_f64(c->s, g, "bpw", in.bpw, err);
    if (!rc)
        rc = h5s_attr_set_f64(c->s, g, "target_bpw", row->target, err);
    if (rc)
        vl_errctx(err, rc, "row %s", row->name);
    ev_result_deinit(&res);
    qb_free(b);
    qb_alloc_deinit(&al);
    return rc;
}

int stage_eval(run_ctx *c, vl_err *err)
{
    const exp_config *cfg = c->cfg;
    ev_ctx x;
    memset(&x, 0, sizeof x);
    x.c = c;
    ev_row *rows = NULL;
    int n_rows = 0, max_len = 2;
    int rc = list_rows(cfg, &rows, &n_rows, err);
    if (!rc)
        rc = run_build_sets(c, 1, &x.book, err);
    if (!rc) {
        x.n_dom = calib_book_count(x.book);
        for (int d = 0; d < x.n_dom; d++)
            if (calib_book_set(x.book, d)->seq_len > max_len)
                max_len = calib_book_set(x.book, d)->seq_len;
        rc = ev_runner_new(&x.runner, c->m, 4, max_len, err);
    }
    x.sums = rc ? NULL : vl_calloc((size_t)n_rows * x.n_dom + 1, sizeof *x.sums);
    if (!rc && !x.sums)
        rc = vl_errf(err, VL_ENOMEM, "out of memory");
    /* rows of one allocation are adjacent in the vbr part; statistics are read once per
       allocation there, and again for a uniform row of another allocation */
    stat_acc *stats = NULL;
    int stats_of = -1;
    for (int r = 0; !rc && r < n_rows; r++) {
        if (rows[r].alloc != stats_of) {
            const exp_alloc *a = &cfg->alloc[rows[r].alloc];
            stat_free(stats);
            stats = NULL;
            rc = run_read_stats(c, (const char *const *)a->sets.v, a->sets.n, &stats, err);
            stats_of = rows[r].alloc;
        }
        if (!rc) {
            if (c->log)
                fprintf(c->log, "eval: %s\n", rows[r].name);
            rc = eval_row(&x, &rows[r], r, stats, err);
        }
    }
    stat_free(stats);
    const char **an = vl_calloc((size_t)n_rows + 1, sizeof *an);
    const char **dn = vl_calloc((size_t)x.n_dom + 1, sizeof *dn);
    if (!rc && (!an || !dn))
        rc = vl_errf(err, VL_ENOMEM, "out of memory");
    for (int r = 0; !rc && r < n_rows; r++)
        an[r] = rows[r].name;
    for (int d = 0; !rc && d < x.n_dom; d++)
        dn[d] = calib_book_set(x.book, d)->spec.name;
    ev_matrix mx = {n_rows, x.n_dom, an, dn, x.sums};
    if (!rc)
        rc = ev_write_matrix(c->s, &mx, err);
    vl_free(an);
    vl_free(dn);
    vl_free(x.sums);
    vl_free(rows);
    ev_runner_free(x.runner);
    calib_book_free(x.book);
    return rc;
}
