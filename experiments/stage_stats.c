/* experiments/stage_stats.c — the stats stage: [calib.*] sets → /sets, /stats, /tokens.
 *
 * Sets are built by analysis/calib.h from spec strings made out of the config (the same
 * grammar as `vbrlab stats --set`), run through the statistics pass (analysis/spass.h) one set
 * at a time and written with sfile_write_set, i.e. exactly the layout `vbrlab stats` writes.
 * XᵀX is kept only when the format menu has a GPTQ format (GPTQ is its only reader here); it
 * is ~170 MB per set on the embedded model.
 */
#define _POSIX_C_SOURCE 200809L
#include "stage.h"

#include "../alloc/fq.h"
#include "../analysis/sfile.h"
#include "../analysis/spass.h"

#include <stdio.h>
#include <string.h>

static int menu_has_gptq(const exp_config *cfg, vl_err *err)
{
    qfmt_menu menu = {0};
    int rc = qfmt_menu_parse(&menu, cfg->formats, err);
    if (rc)
        return rc;
    int has = 0;
    for (int i = 0; i < menu.n; i++)
        has |= menu.v[i].method == QFMT_GPTQ;
    qfmt_menu_free(&menu);
    return has;
}

int stage_stats(run_ctx *c, vl_err *err)
{
    calib_book *book = NULL;
    spass *p = NULL;
    int rc = run_build_sets(c, 0, &book, err);
    int gptq = rc ? 0 : menu_has_gptq(c->cfg, err);
    if (gptq < 0)
        rc = gptq;
    spass_opts so = spass_opts_defaults();
    so.no_hessian = !gptq;
    so.progress = c->progress;
    so.max_len = 2;
    for (int i = 0; !rc && i < calib_book_count(book); i++)
        if (calib_book_set(book, i)->seq_len > so.max_len)
            so.max_len = calib_book_set(book, i)->seq_len;
    if (!rc)
        rc = spass_new(&p, c->m, &so, err);
    for (int i = 0; !rc && i < calib_book_count(book); i++) {
        const calib_set *cs = calib_book_set(book, i);
        stat_acc *acc = NULL;
        char seed[32], skip[32];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)cs->spec.seed);
        snprintf(skip, sizeof skip, "%lld", (long long)cs->spec.skip);
        sfile_set st = {cs->spec.name, cs->spec.source, seed, skip, cs->n_seq, cs->seq_len,
                        cs->ids};
        rc = spass_acc_new(p, (int64_t)cs->n_seq * cs->seq_len, &acc, err);
        if (!rc)
            rc = spass_run(p, acc, cs->ids, cs->n_seq, cs->seq_len, cs->spec.name, err);
        if (!rc)
            rc = sfile_write_set(c->s, &st, acc, err);
        stat_free(acc);
    }
    spass_free(p);
    calib_book_free(book);
    return rc;
}
