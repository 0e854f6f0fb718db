/* experiments/stage_stats.c — the stats stage: [calib.*] sets → /sets, /stats, /tokens.
 *
 * Sets are built by run_build_sets (runctx.h) and go through spass_run_book
 * (analysis/spass.h), the same call `vbrlab stats` makes, so the layout is the same.
 * XᵀX is kept only when the format menu has a GPTQ format (GPTQ is its only reader here); it
 * is ~170 MB per set on the embedded model. A replicate k > 0 (expcfg.h) records k and how each
 * set was drawn as attributes of /sets.
 */
#define _POSIX_C_SOURCE 200809L
#include "stage.h"

#include "../alloc/fq.h"
#include "../analysis/spass.h"

#include <stdio.h>
#include <string.h>


int stage_stats(run_ctx *c, vl_err *err)
{
    calib_book *book = NULL;
    int rc = run_build_sets(c, 0, &book, err);
    int gptq = rc ? 0 : run_menu_has_gptq(c->cfg, err);
    if (gptq < 0)
        rc = gptq;
    spass_opts so = spass_opts_defaults();
    so.no_hessian = !gptq;
    so.progress = c->progress;
    so.layer_major = c->cfg->mem_cap >= 0;
    so.mem_cap = so.layer_major ? c->cfg->mem_cap : 0;
    so.pipeline = c->pipeline;
    if (!rc)
        rc = spass_run_book(c->m, book, &so, c->s, NULL, NULL, err);
    if (!rc && c->cfg->replicate > 0) /* which draw this store holds (expcfg.h) */
        rc = h5s_attr_set_f64(c->s, "/sets", "replicate", c->cfg->replicate, err);
    if (!rc && c->cfg->replicate > 0)
        rc = h5s_attr_set(c->s, "/sets", "replicate_draws", c->draws, err);
    calib_book_free(book);
    return rc;
}
