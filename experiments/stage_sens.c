/* experiments/stage_sens.c — the sens stage: alloc/sens.h on the calibration sets of the
 * store → /sens through sens_run and sens_write (alloc/sens.h), the calls `vbrlab sens` makes.
 *
 * Config mapping: [sens] eps (the first two values; one value is used twice), seed,
 * granularity (the unit α is measured on: tensor or layer × projection group); [quant] formats,
 * percdamp, act_order, min_tokens and starved_policy feed the RD tables. Sets: every
 * [calib.*] set in config order; each set's RD tables are quantized with its own statistics
 * (alloc/sens.h), and every set carries the additivity check ([sens] add_draws draws per band,
 * on the set's held-out sequences). α uses every token of each set unless [sens] tokens caps it
 * (leading whole sequences), averaged over [sens] draws noise draws. Each unit's α of a set is
 * committed to the stage's journal when done (run_journal_open; alloc/sens.h), so a rerun after
 * an interruption does not measure it again.
 */
#define _POSIX_C_SOURCE 200809L
#include "stage.h"

#include "../alloc/sens.h"

#include <string.h>

static sens_params params_of(const exp_config *cfg, int progress, qcache *cache)
{
    sens_params p = sens_defaults();
    p.eps[0] = cfg->eps.v[0];
    p.eps[1] = cfg->eps.n > 1 ? cfg->eps.v[1] : cfg->eps.v[0];
    p.seed = exp_sens_seed(cfg);
    p.max_tokens = cfg->sens_tokens;
    p.draws = cfg->sens_draws;
    p.add_draws = cfg->sens_add_draws;
    p.gran = cfg->sens_granularity == EXP_GRAN_GROUP  ? SENS_GROUP
             : cfg->sens_granularity == EXP_GRAN_GGUF ? SENS_GGUF
                                                      : SENS_TENSOR;
    p.embed_head = cfg->sens_embed_head;
    int pol;
    run_few_policy(cfg, &pol, &p.fq.min_tokens);
    p.fq.few = (fq_policy)pol;
    p.fq.seed = exp_sens_seed(cfg);
    p.fq.gptq.percdamp = cfg->percdamp;
    p.fq.gptq.act_order = cfg->act_order;
    p.fq.cache = cache;
    p.progress = progress;
    return p;
}

int stage_sens(run_ctx *c, vl_err *err)
{
    const exp_config *cfg = c->cfg;
    sens_params p = params_of(cfg, c->progress, c->qcache);
    const char **names = vl_calloc((size_t)cfg->n_calib + 1, sizeof *names);
    if (!names)
        return vl_errf(err, VL_ENOMEM, "out of memory");
    for (int s = 0; s < cfg->n_calib; s++)
        names[s] = cfg->calib[s].name;
    sens_result r;
    memset(&r, 0, sizeof r);
    jr *j = NULL;
    int rc = run_need_model(c, err);
    rc = par_agree(rc, err); /* the journal is opened by every rank together */
    if (!rc)
        rc = run_journal_open(c, "sens", &j, err);
    p.journal = j;
    p.fault = c->fault;
    if (!rc)
        rc = sens_run(&r, c->m, c->s, names, cfg->n_calib, cfg->formats, &p, NULL, NULL, err);
    jr_close(j);
    if (!rc)
        rc = sens_write(&r, c->s, err);
    sens_result_free(&r);
    vl_free(names);
    return rc;
}
