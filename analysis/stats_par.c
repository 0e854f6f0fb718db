/* analysis/stats_par.c — the statistics of a run shared over ranks (core/par.h): exact sums
 * as integers, counts as integers, maxima as maxima, per-token arrays concatenated in item
 * order. Every rank ends with the accumulator one process would have built over all items.
 */
#include "stats_int.h"

#include "../core/par.h"

#include <string.h>

static int reduce_input(stat_input *in, int rc, vl_err *err)
{
    size_t K = (size_t)in->cols;
    int64_t rows[2] = {in->rows, in->rows_routed};
    rc = par_sum_i64(rows, 2, rc, err);
    rc = par_sum_fx(in->sum_x, K, rc, err);
    rc = par_sum_fx(in->sum_x2, K, rc, err);
    rc = par_sum_fx(in->sum_x4, K, rc, err);
    rc = par_max_f64(in->absmax, K, rc, err);
    /* want_xtx gives every rank the same selection, so in->xtx is set on all or none */
    if (in->xtx)
        rc = par_sum_fx(in->xtx, (size_t)stat_xtx_packed(in->cols), rc, err);
    if (rc == 0) {
        in->rows = rows[0];
        in->rows_routed = rows[1];
    }
    return rc;
}

static int reduce_router(stat_router *r, int rc, vl_err *err)
{
    size_t E = (size_t)r->n_experts;
    rc = par_sum_i64(&r->tokens, 1, rc, err);
    rc = par_sum_i64(r->routed, E, rc, err);
    rc = par_sum_fx(r->sum_prob, E, rc, err);
    rc = par_sum_fx(r->sum_weight, E, rc, err);
    rc = par_sum_fx(&r->sum_entropy, 1, rc, err);
    return par_sum_i64(r->coselect, E * E, rc, err);
}

static int concat_tokens(stat_tokens *t, const int64_t *item_tokens, const int *owner,
                         int64_t n_items, int rc, vl_err *err)
{
    int64_t total = 0;
    for (int64_t i = 0; i < n_items; i++)
        total += item_tokens[i];
    if (rc == 0 && total > t->cap)
        rc = vl_errf(err, VL_EARG, "stats: %lld tokens over all ranks, room for %lld",
                     (long long)total, (long long)t->cap);
    double *buf = rc ? NULL : vl_malloc((size_t)(total ? total : 1) * sizeof *buf);
    if (rc == 0 && !buf)
        rc = vl_errf(err, VL_ENOMEM, "stats: out of memory for %lld tokens", (long long)total);
    double *arr[2] = {t->entropy, t->logprob};
    for (int k = 0; k < 2; k++) {
        rc = owner ? par_concat_owned(arr[k], buf, item_tokens, owner, n_items, sizeof *buf, rc,
                                      err)
                   : par_concat(arr[k], buf, item_tokens, n_items, sizeof *buf, rc, err);
        if (rc == 0)
            memcpy(arr[k], buf, (size_t)total * sizeof *buf);
    }
    vl_free(buf);
    if (rc == 0)
        t->n = total;
    return rc;
}

int stat_allreduce(stat_acc *a, const int64_t *item_tokens, const int *owner, int64_t n_items,
                   int local_rc, vl_err *err)
{
    int rc = local_rc;
    if (par_size() == 1)
        return rc;
    if (rc == 0 && a->failed)
        rc = vl_errf(err, a->err.code, "%s", a->err.msg);
    for (int l = 0; l < a->cfg.n_layers; l++) {
        for (int i = 0; i < a->per_layer; i++) {
            stat_input *in = &a->inputs[(size_t)l * a->per_layer + i];
            if (in->cols)
                rc = reduce_input(in, rc, err);
        }
        if (a->sparse[l])
            rc = reduce_router(&a->routers[l], rc, err);
    }
    if (a->cfg.token_stats)
        rc = concat_tokens(&a->tokens, item_tokens, owner, n_items, rc, err);
    return rc;
}
