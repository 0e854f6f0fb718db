/* experiments/stage_stats.c — the stats stage: [calib.*] sets → /sets, /stats, /tokens.
 *
 * Sets are built by run_build_sets (runctx.h) and go through spass_run_book
 * (analysis/spass.h), the same call `vbrlab stats` makes, so the layout is the same.
 * XᵀX is kept only when the format menu has a GPTQ format (GPTQ is its only reader here); it
 * is ~170 MB per set on the embedded model.
 */
#define _POSIX_C_SOURCE 200809L
#include "stage.h"

#include "../alloc/fq.h"
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
    int rc = run_build_sets(c, 0, &book, err);
    int gptq = rc ? 0 : menu_has_gptq(c->cfg, err);
    if (gptq < 0)
        rc = gptq;
    spass_opts so = spass_opts_defaults();
    so.no_hessian = !gptq;
    so.progress = c->progress;
    if (!rc)
        rc = spass_run_book(c->m, book, &so, c->s, NULL, NULL, err);
    calib_book_free(book);
    return rc;
}
