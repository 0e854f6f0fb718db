/* analysis/lfwd.c — layer-major forward: residual rows of the set in an acts store. */
#include "lfwd.h"

#include "acts.h"

int lfwd_run(const model *m, const model_weights *w, fwd_state *st, const int32_t *ids,
             int n_seq, int seq_len, const lfwd_params *p, lfwd_sink sink, void *user,
             int *spilled, vl_err *err)
{
    return lfwd_run_ext(m, w, st, ids, n_seq, seq_len, p, NULL, sink, user, spilled, err);
}

int lfwd_run_ext(const model *m, const model_weights *w, fwd_state *st, const int32_t *ids,
                 int n_seq, int seq_len, const lfwd_params *p, const lfwd_ext *hk,
                 lfwd_sink sink, void *user, int *spilled, vl_err *err)
{
    int L = model_config(m)->n_layers, B = p->batch, T = seq_len;
    size_t W = (size_t)fwd_residual_width(m);
    if (B <= 0 || n_seq <= 0 || T <= 0)
        return vl_errf(err, VL_EARG, "forward: %d sequences of %d tokens in batches of %d",
                       n_seq, T, B);
    acts *a = NULL;
    int rc = acts_new(&a, (int64_t)n_seq * T, (int)W, p->mem_cap, err);
    float *h = rc ? NULL : vl_malloc((size_t)B * T * W * sizeof *h);
    if (!rc && !h)
        rc = vl_errf(err, VL_ENOMEM, "forward: out of memory for a batch of residual rows");
    if (!rc && spilled)
        *spilled = acts_spilled(a);
    const tap_set *taps = hk ? hk->taps : NULL;
    /* stage −1 embeds; 0..L−1 run one layer; L runs the head and hands the logits on */
    for (int l = -1; l <= L && !rc; l++) {
        if (hk && hk->stage && (rc = hk->stage(hk->user, l, err)))
            break;
        for (int s0 = 0; s0 < n_seq && !rc; s0 += B) {
            int nb = n_seq - s0 < B ? n_seq - s0 : B;
            int64_t r0 = (int64_t)s0 * T, n = (int64_t)nb * T;
            const int32_t *bid = ids + r0;
            const float *lg;
            if (hk && hk->batch && (rc = hk->batch(hk->user, l, s0, nb, bid, err)))
                break;
            if (l < 0) {
                if (!(rc = fwd_embed(m, w, bid, (int)n, h, err)))
                    rc = acts_put(a, r0, n, h, err);
                continue;
            }
            if ((rc = acts_get(a, r0, n, h, err)))
                break;
            if (l < L) {
                rc = fwd_run_layers(m, w, st, bid, l, l + 1, h, nb, T, p->opts, taps, err);
                if (!rc)
                    rc = acts_put(a, r0, n, h, err);
                continue;
            }
            rc = fwd_run_from(m, w, st, bid, L, h, nb, T, p->opts, taps, &lg, err);
            if (!rc && sink)
                rc = sink(user, s0, nb, lg, err);
        }
    }
    vl_free(h);
    acts_free(a);
    return rc;
}
