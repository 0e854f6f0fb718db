/* analysis/calib_gen.c — calibration sources that run the model: self-generated text and
 * entropy buckets, and the per-sequence mean entropy they rank by.
 */
#define _POSIX_C_SOURCE 200809L
#include "calib_int.h"

#include "../core/rng.h"
#include "fwd.h"
#include "stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- entropy */

int calib_seq_entropy(const model *m, const int32_t *ids, int n_seq, int seq_len, int batch,
                      double *out, vl_err *err)
{
    const int V = model_config(m)->vocab;
    int B = batch < n_seq ? batch : n_seq;
    fwd_state *st = NULL;
    int rc = fwd_state_new(&st, m, B, seq_len, err);
    for (int s0 = 0; rc == 0 && s0 < n_seq; s0 += B) {
        int nb = n_seq - s0 < B ? n_seq - s0 : B;
        const float *lg;
        rc = fwd_run(m, model_base(m), st, ids + (size_t)s0 * seq_len, nb, seq_len, NULL, NULL,
                     &lg, err);
        for (int s = 0; rc == 0 && s < nb; s++) {
            double sum = 0.0;
            for (int t = 0; t < seq_len; t++) {
                size_t row = (size_t)s * seq_len + t;
                sum += stat_entropy(lg + row * V, V, -1, NULL);
            }
            out[s0 + s] = sum / seq_len;
        }
    }
    fwd_state_free(st);
    return rc;
}

typedef struct {
    double h;
    int i;
} ranked;

static int by_entropy(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static int by_index(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    return (x->i > y->i) - (x->i < y->i);
}

int calib_build_bucket(const calib_set *pool, const double *ent, const calib_spec *sp,
                       int32_t *ids, vl_err *err)
{
    int n = pool->n_seq;
    ranked *r = vl_malloc((size_t)n * sizeof *r);
    if (!r)
        return vl_errf(err, VL_ENOMEM, "set %s: out of memory", sp->name);
    for (int i = 0; i < n; i++) {
        if (!isfinite(ent[i])) {
            vl_free(r);
            return vl_errf(err, VL_ERANGE, "set %s: entropy of sequence %d of %s is not finite",
                           sp->name, i, pool->spec.name);
        }
        r[i].h = ent[i];
        r[i].i = i;
    }
    qsort(r, (size_t)n, sizeof *r, by_entropy);
    int lo = n * sp->bucket / 3, hi = n * (sp->bucket + 1) / 3;
    VL_ASSERT(hi - lo == sp->n_seq);
    qsort(r + lo, (size_t)(hi - lo), sizeof *r, by_index); /* keep the pool's order */
    size_t L = (size_t)pool->seq_len;
    for (int k = lo; k < hi; k++)
        memcpy(ids + (size_t)(k - lo) * L, pool->ids + (size_t)r[k].i * L, L * sizeof *ids);
    vl_free(r);
    return 0;
}

/* ---------------------------------------------------------------- self-generated text */

/* Draw from softmax(logits/T) (float64, max subtracted) with one uniform number. */
static int32_t sample_row(const float *lg, int V, double T, double *p, rng *r)
{
    float mx = lg[0];
    for (int v = 1; v < V; v++)
        mx = lg[v] > mx ? lg[v] : mx;
    double sum = 0.0;
    for (int v = 0; v < V; v++)
        sum += p[v] = exp(((double)lg[v] - mx) / T);
    double u = rng_uniform(r) * sum, c = 0.0;
    for (int v = 0; v < V; v++) {
        c += p[v];
        if (u < c)
            return v;
    }
    return V - 1; /* u rounded up to the last partial sum */
}

int calib_build_self(const calib_env *env, const calib_spec *sp, int32_t *ids, vl_err *err)
{
    const model *m = env->m;
    const int V = model_config(m)->vocab, L = sp->seq_len;
    int32_t eos = env->tok ? tok_eos_id(env->tok) : model_config(m)->eos_id;
    if (eos < 0 || eos >= V)
        return vl_errf(err, VL_ECONFIG, "set %s: self: no EOS token to start from", sp->name);
    int B = env->batch < sp->n_seq ? env->batch : sp->n_seq;
    fwd_state *st = NULL;
    rng **rs = vl_calloc((size_t)B, sizeof *rs);
    double *p = vl_malloc((size_t)V * sizeof *p);
    int32_t *pre = vl_malloc((size_t)B * L * sizeof *pre); /* the prefixes, [nb × t] */
    int rc = rs && p && pre ? fwd_state_new(&st, m, B, L, err)
                            : vl_errf(err, VL_ENOMEM, "set %s: out of memory", sp->name);
    for (int s0 = 0; rc == 0 && s0 < sp->n_seq; s0 += B) {
        int nb = sp->n_seq - s0 < B ? sp->n_seq - s0 : B;
        /* one stream per sequence: the ids do not depend on the batch size */
        for (int s = 0; rc == 0 && s < nb; s++) {
            char kind[32], label[CALIB_LABEL_MAX];
            snprintf(kind, sizeof kind, "self.%d", s0 + s);
            calib_stream_label(env, sp, kind, label);
            rng_free(rs[s]);
            rs[s] = NULL;
            rc = rng_new_child(&rs[s], sp->seed, label, err);
            ids[(size_t)(s0 + s) * L] = eos;
        }
        for (int t = 1; rc == 0 && t < L; t++) {
            for (int s = 0; s < nb; s++)
                memcpy(pre + (size_t)s * t, ids + (size_t)(s0 + s) * L, (size_t)t * sizeof *pre);
            const float *lg;
            rc = fwd_run(m, model_base(m), st, pre, nb, t, NULL, NULL, &lg, err);
            for (int s = 0; rc == 0 && s < nb; s++)
                ids[(size_t)(s0 + s) * L + t] =
                    sample_row(lg + ((size_t)s * t + t - 1) * V, V, sp->temperature, p, rs[s]);
        }
    }
    for (int s = 0; rs && s < B; s++)
        rng_free(rs[s]);
    vl_free(rs);
    vl_free(p);
    vl_free(pre);
    fwd_state_free(st);
    return rc;
}
