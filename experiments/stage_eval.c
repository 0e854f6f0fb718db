/* experiments/stage_eval.c — the eval stage: every allocation result and every uniform
 * baseline on every [eval.*] domain, through alloc/qeval.h (the same calls `vbrlab eval`
 * makes, so /eval and its /eval/<row> attribute set are the same).
 *
 * Rows, in order: for each [alloc.NAME] its targets ("NAME-BPW", the assignment stored in
 * /alloc/NAME-BPW), each followed by its [experiment] baselines (NAME-BPW.uniform, .rules,
 * .random1..R, stored by the alloc stage; kind "baseline-uniform|rules|random"), then the
 * uniform baselines of each allocation's `uniform` list (row name =
 * the format, "FORMAT+OUTER" when the allocation's uniform_outer quantizes the token embedding
 * and LM head too; a row listed by two allocations is evaluated once, with the first's
 * calibration), then each allocation's `llama_mix` rows "llama-FTYPE": llama-quantize's
 * per-tensor types for that ftype (alloc/llmix.h), evaluated like a uniform row (kind
 * "uniform", source "llama.cpp", format "llama-FTYPE"; deduplicated the same way). The
 * quantizers of a row use the statistics of its allocation's sets (merged
 * exactly when several): importance for every format, XᵀX for GPTQ. Evaluation sets are
 * built by analysis/calib.h like calibration sets, so every source kind (noise, self, entropy
 * buckets) can be an evaluation domain. A domain that shares a token window with a
 * calibration set is refused unless [experiment] allow_overlap is true. Each allocation ×
 * domain is committed to the stage's journal when done (alloc/qeval.h), so a rerun after an
 * interruption does not evaluate it again.
 */
#define _POSIX_C_SOURCE 200809L
#include "stage.h"

#include "../alloc/fq.h"
#include "../alloc/llmix.h"
#include "../alloc/qeval.h"
#include "../alloc/salloc.h"
#include "../analysis/sfile.h"
#include "../core/par.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char name[EV_NAME_MAX];
    int alloc;              /* index of the allocation whose statistics it uses */
    double target;          /* vbr and baseline rows; 0 for uniform rows */
    const char *format;     /* uniform rows: the format; NULL for vbr rows */
    const char *kind;       /* "vbr", "uniform", or a baseline's "baseline-METHOD" */
    const char *outer;      /* uniform rows: the embedding / LM head format, NULL: kept */
    const char *mix;        /* llama.cpp mix rows: the ftype ("IQ2_XS"); NULL otherwise */
} ev_row;

static const char *baseline_kind(int method)
{
    return method == SOLVE_UNIFORM ? "baseline-uniform"
           : method == SOLVE_RULES ? "baseline-rules"
                                   : "baseline-random";
}

/* 1 when one of the first k rows is named nm (a baseline listed by two allocations). */
static int has_row(const ev_row *r, int k, const char *nm)
{
    for (int q = 0; q < k; q++)
        if (!strcmp(r[q].name, nm))
            return 1;
    return 0;
}

/* The rows of the config (see the opening comment). *rows owned by the caller. */
static int list_rows(const exp_config *cfg, ev_row **rows, int *n, vl_err *err)
{
    int cap = 0;
    for (int a = 0; a < cfg->n_alloc; a++)
        cap += cfg->alloc[a].target_bpw.n * (1 + SALLOC_MAX_BASELINES) + cfg->alloc[a].uniform.n +
               cfg->alloc[a].llama_mix.n;
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
            r[k].kind = "vbr";
            salloc_baseline bl[SALLOC_MAX_BASELINES]; /* its baselines follow it */
            int nb = salloc_baselines(cfg->baselines, cfg->random_draws, cfg->seed, r[k].name,
                                      bl);
            for (int b = 0; b < nb; b++) {
                k++;
                snprintf(r[k].name, sizeof r[k].name, "%.*s", (int)sizeof r[k].name - 1,
                         bl[b].name);
                r[k].alloc = a;
                r[k].target = r[k - 1 - b].target;
                r[k].kind = baseline_kind(bl[b].method);
            }
        }
    for (int a = 0; a < cfg->n_alloc; a++)
        for (int u = 0; u < cfg->alloc[a].uniform.n; u++) {
            const char *f = cfg->alloc[a].uniform.v[u], *o = cfg->alloc[a].uniform_outer;
            char nm[EV_NAME_MAX];
            if (o) /* the body's format, then the embedding/head's: "ggml-iq2_xs+ggml-q5_K" */
                snprintf(nm, sizeof nm, "%s+%s", f, o);
            else
                snprintf(nm, sizeof nm, "%s", f);
            if (has_row(r, k, nm))
                continue;
            snprintf(r[k].name, sizeof r[k].name, "%s", nm);
            r[k].alloc = a;
            r[k].format = f;
            r[k].outer = o;
            r[k].kind = "uniform";
            k++;
        }
    for (int a = 0; a < cfg->n_alloc; a++)
        for (int u = 0; u < cfg->alloc[a].llama_mix.n; u++) {
            char nm[EV_NAME_MAX];
            snprintf(nm, sizeof nm, "llama-%s", cfg->alloc[a].llama_mix.v[u]);
            if (has_row(r, k, nm))
                continue;
            snprintf(r[k].name, sizeof r[k].name, "%s", nm);
            r[k].alloc = a;
            r[k].mix = cfg->alloc[a].llama_mix.v[u];
            r[k].kind = "uniform";
            k++;
        }
    *rows = r;
    *n = k;
    return 0;
}

/* Row r of the config: its allocation, quantizer options and provenance, then the library's
 * row (alloc/qeval.h). */
static int eval_row(run_ctx *c, qe_eval *q, const ev_row *row, int r, const stat_acc *stats,
                    const char *calib, vl_err *err)
{
    const exp_config *cfg = c->cfg;
    qb_alloc al;
    qb_alloc_init(&al);
    int rc = 0, base = row->format || row->mix; /* a baseline row: no stored allocation */
    if (row->mix) {
        rc = llmix_alloc(&al, c->m, row->mix, err);
    } else if (row->format) {
        rc = qb_alloc_uniform(&al, c->m, row->format, err);
        if (!rc && row->outer)
            rc = qb_alloc_outer(&al, c->m, row->outer, err);
    } else {
        rc = salloc_read_qb(c->s, row->name, &al, NULL, err);
    }
    qe_row qr = {row->name, &al, stats, qb_defaults(), {0}};
    int pol;
    run_few_policy(cfg, &pol, &qr.qp.fq.min_tokens);
    qr.qp.fq.few = (fq_policy)pol;
    qr.qp.fq.seed = exp_sens_seed(cfg);
    qr.qp.fq.cache = c->qcache;
    qr.qp.fq.gptq.percdamp = cfg->percdamp;
    qr.qp.fq.gptq.act_order = cfg->act_order;
    qr.attrs.kind = row->kind;
    qr.attrs.source = row->mix ? "llama.cpp" : row->format ? "uniform" : cfg->out;
    qr.attrs.format = row->mix ? row->name : row->format ? row->format : "mixed";
    qr.attrs.alloc = base ? "" : row->name; /* the stored /alloc/<row> */
    qr.attrs.target_bpw = row->target;
    qr.attrs.solver = base ? "" : exp_solver_names[cfg->alloc[row->alloc].solver];
    qr.attrs.calib = calib;
    qr.attrs.stats_file = cfg->out;
    if (!rc)
        rc = qe_run_row(q, c->s, r, &qr, c->progress, err);
    else
        vl_errctx(err, rc, "row %s", row->name);
    qb_alloc_deinit(&al);
    return rc;
}

/* Refuse [eval.*] domains sharing a token window with a [calib.*] set (their ids as the
 * stats stage stored them in /sets). */
static int check_leakage(run_ctx *c, const calib_book *book, vl_err *err)
{
    int n_ev = calib_book_count(book), n_cal = 0;
    calib_ids *ev = vl_calloc((size_t)n_ev + 1, sizeof *ev), *cal = NULL;
    if (!ev)
        return vl_errf(err, VL_ENOMEM, "out of memory");
    calib_book_ids(book, ev);
    int rc = sfile_read_ids(c->s, &cal, &n_cal, err);
    if (!rc && (rc = calib_overlap_check(cal, n_cal, ev, n_ev, err)))
        vl_errctx(err, rc, "%s: leakage ([experiment] allow_overlap = true evaluates anyway)",
                  c->cfg->path);
    sfile_ids_free(cal, n_cal);
    vl_free(ev);
    return rc;
}

int stage_eval(run_ctx *c, vl_err *err)
{
    const exp_config *cfg = c->cfg;
    calib_book *book = NULL;
    qe_eval *q = NULL;
    ev_row *rows = NULL;
    int n_rows = 0;
    int rc = list_rows(cfg, &rows, &n_rows, err);
    for (int r = 0; !rc && r < n_rows; r++) /* a mix the model cannot take fails up front */
        if (rows[r].mix && !(rc = run_need_model(c, err))) { /* cached stages: not loaded yet */
            qb_alloc al;
            qb_alloc_init(&al);
            if ((rc = llmix_alloc(&al, c->m, rows[r].mix, err)))
                vl_errctx(err, rc, "%s: [alloc.%s] llama_mix", cfg->path,
                          cfg->alloc[rows[r].alloc].name);
            qb_alloc_deinit(&al);
        }
    if (!rc)
        rc = run_build_sets(c, 1, &book, err);
    if (!rc && !cfg->allow_overlap)
        rc = check_leakage(c, book, err);
    if (!rc)
        rc = qe_new(&q, c->m, book, 4, n_rows, err);
    if (!rc) {
        qe_set_second_half(q, cfg->score_second_half);
        qe_set_layer_major(q, cfg->mem_cap >= 0, cfg->mem_cap >= 0 ? cfg->mem_cap : 0);
    }
    if (!rc)
        rc = qe_set_pipeline(q, c->pipeline > 1 ? c->pipeline : 1, err);
    jr *j = NULL;
    rc = par_agree(rc, err); /* the journal is opened by every rank together */
    if (!rc)
        rc = run_journal_open(c, "eval", &j, err);
    if (!rc)
        qe_set_journal(q, j, c->fault);
    /* rows of one allocation are adjacent in the vbr part; statistics are read once per
       allocation there, and again for a uniform row of another allocation */
    stat_acc *stats = NULL;
    int stats_of = -1;
    char calib[1024] = "";
    for (int r = 0; !rc && r < n_rows; r++) {
        if (rows[r].alloc != stats_of) {
            const exp_alloc *a = &cfg->alloc[rows[r].alloc];
            stat_free(stats);
            stats = NULL;
            const exp_slist *ss = exp_alloc_stats(a); /* stats_set, else its sets */
            rc = stat_read_sets(&stats, c->s, (const char *const *)ss->v, ss->n, err);
            stats_of = rows[r].alloc;
            run_join_sets(ss, calib, sizeof calib);
        }
        if (!rc) {
            if (c->log)
                fprintf(c->log, "eval: %s\n", rows[r].name);
            rc = eval_row(c, q, &rows[r], r, stats, calib, err);
        }
    }
    stat_free(stats);
    const char **an = vl_calloc((size_t)n_rows + 1, sizeof *an);
    if (!rc && !an)
        rc = vl_errf(err, VL_ENOMEM, "out of memory");
    for (int r = 0; !rc && r < n_rows; r++)
        an[r] = rows[r].name;
    if (!rc)
        rc = qe_finish(q, c->s, an, NULL, err);
    vl_free(an);
    vl_free(rows);
    qe_free(q);
    jr_close(j);
    calib_book_free(book);
    return rc;
}
