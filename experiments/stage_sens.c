/* experiments/stage_sens.c — the sens stage: alloc/sens.h on the calibration sets of the
 * store → /sens in `vbrlab sens`'s layout (sens_write).
 *
 * Config mapping: [sens] eps (the first two values; one value is used twice), seed,
 * granularity (the unit α is measured on: tensor or layer × projection group); [quant] formats,
 * percdamp, act_order, min_tokens and starved_policy feed the RD tables. Sets: every
 * [calib.*] set in config order; the first quantizes (its XᵀX feeds GPTQ) and carries the
 * additivity check. α uses at most sens_defaults().max_tokens leading tokens per set.
 */
#define _POSIX_C_SOURCE 200809L
#include "stage.h"

#include "../alloc/sens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SENS_MAX_SETS 64

typedef struct {
    int n;
    int32_t *ids[SENS_MAX_SETS];
    int n_seq[SENS_MAX_SETS], seq_len[SENS_MAX_SETS];
    stat_acc *acc[SENS_MAX_SETS];
    const char *names[SENS_MAX_SETS];
} sens_inputs;

static void inputs_free(sens_inputs *in)
{
    for (int s = 0; s < in->n; s++) {
        vl_free(in->ids[s]);
        stat_free(in->acc[s]);
    }
}

/* Ids (trimmed to max_tokens whole sequences, at least one) and statistics of every set. */
static int load_inputs(run_ctx *c, const sens_params *p, sens_inputs *in, vl_err *err)
{
    const exp_config *cfg = c->cfg;
    if (cfg->n_calib > SENS_MAX_SETS)
        return vl_errf(err, VL_ECONFIG, "%s: more than %d calibration sets", cfg->path,
                       SENS_MAX_SETS);
    for (int s = 0; s < cfg->n_calib; s++) {
        const char *nm = cfg->calib[s].name;
        char path[256];
        int nd = 0;
        int64_t sh[H5S_MAX_DIMS];
        in->names[s] = nm;
        in->n = s + 1;
        snprintf(path, sizeof path, "/sets/%s/input_ids", nm);
        int rc = h5s_read(c->s, path, H5S_I32, (void **)&in->ids[s], &nd, sh, err);
        if (!rc && (nd != 2 || sh[0] < 1 || sh[1] < 2 || sh[0] * sh[1] > (1 << 24)))
            rc = vl_errf(err, VL_ESHAPE, "%s: %s: expected int32 [seqs, len]", h5s_path(c->s),
                         path);
        if (rc)
            return rc;
        in->n_seq[s] = (int)sh[0];
        in->seq_len[s] = (int)sh[1];
        if (p->max_tokens > 0 && sh[0] * sh[1] > p->max_tokens)
            in->n_seq[s] = p->max_tokens / in->seq_len[s] > 0 ? p->max_tokens / in->seq_len[s]
                                                               : 1;
        if ((rc = stat_read_sets(&in->acc[s], c->s, &in->names[s], 1, err)))
            return rc;
    }
    return 0;
}

static sens_params params_of(const exp_config *cfg, int progress)
{
    sens_params p = sens_defaults();
    p.eps[0] = cfg->eps.v[0];
    p.eps[1] = cfg->eps.n > 1 ? cfg->eps.v[1] : cfg->eps.v[0];
    p.seed = exp_sens_seed(cfg);
    p.gran = cfg->sens_granularity == EXP_GRAN_GROUP ? SENS_GROUP : SENS_TENSOR;
    int pol;
    run_few_policy(cfg, &pol, &p.fq.min_tokens);
    p.fq.few = (fq_policy)pol;
    p.fq.seed = exp_sens_seed(cfg);
    p.fq.gptq.percdamp = cfg->percdamp > 0 ? cfg->percdamp : p.fq.gptq.percdamp;
    p.fq.gptq.act_order = cfg->act_order;
    p.progress = progress;
    return p;
}

int stage_sens(run_ctx *c, vl_err *err)
{
    const exp_config *cfg = c->cfg;
    sens_params p = params_of(cfg, c->progress);
    sens_inputs in;
    memset(&in, 0, sizeof in);
    sens_result r;
    memset(&r, 0, sizeof r);
    sens_set *ss = NULL;
    float *q = NULL;
    int rc = run_need_model(c, err);
    if (!rc)
        rc = load_inputs(c, &p, &in, err);
    if (!rc)
        rc = sens_layout(&r, c->m, p.gran, err);
    if (!rc)
        rc = sens_alloc_alpha(&r, in.n, in.names, err);
    if (!rc)
        rc = sens_rd(&r, c->m, cfg->formats, in.acc, &p, &q, err);
    for (int s = 0; !rc && s < in.n; s++) {
        rc = sens_set_new(&ss, c->m, in.ids[s], in.n_seq[s], in.seq_len[s], err);
        if (!rc)
            rc = sens_alpha(&r, s, c->m, ss, &p, err);
        if (!rc && s == p.add_set)
            rc = sens_additivity(&r, c->m, ss, q, &p, err);
        sens_set_free(ss);
        ss = NULL;
    }
    if (!rc)
        rc = sens_write(&r, c->s, err);
    vl_free(q);
    sens_result_free(&r);
    inputs_free(&in);
    return rc;
}
