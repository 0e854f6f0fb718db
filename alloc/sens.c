/* alloc/sens.c — noise-injection sensitivity: the reference cache of a set, KL against it, the
 * seeded noise and the α scan (alloc/sens.h; HIGGS arXiv:2411.17525 §3). */
#include "sens.h"

#include "../analysis/fwd.h"
#include "../core/par.h"
#include "../core/prog.h"
#include "../core/rng.h"

#include <math.h>
#include <string.h>

sens_params sens_defaults(void)
{
    sens_params p = {{0.01, 0.03}, 1, SENS_GROUP, 256, 0, fq_defaults(), 8, 3, {2, 3, 4}, 0, 0};
    p.fq.min_tokens = 16;
    p.fq.few = FQ_FEW_RTN;
    return p;
}

/* ---------------------------------------------------------------- the reference cache */

struct sens_set {
    const model *m;
    fwd_state *st;
    int n_seq, seq_len, N, L, D, V;
    float *layer_in;  /* [(L+1) × N × D] input of layer l (l = L: after the last layer); D is
                         the residual width (fwd_residual_width) */
    float *z;         /* [N × V] reference logits */
    float *p;         /* [N × V] reference probabilities */
    double *psum;     /* [N] Σ_v p_v (1 up to float rounding) */
};

/* Tap consumer: copy the residual stream after layer l into layer_in[l + 1]. */
static void capture_residual(void *user, const tap_event *ev)
{
    sens_set *s = user;
    float *dst = s->layer_in + (size_t)(ev->layer + 1) * s->N * s->D;
    for (int r = 0; r < ev->rows; r++)
        memcpy(dst + (size_t)r * s->D, ev->data + (size_t)r * ev->stride,
               (size_t)s->D * sizeof *dst);
}

int sens_set_new(sens_set **out, const model *m, const int32_t *ids, int n_seq, int seq_len,
                 vl_err *err)
{
    const hfc_config *c = model_config(m);
    *out = NULL;
    sens_set *s = vl_calloc(1, sizeof *s);
    if (!s)
        return vl_errf(err, VL_ENOMEM, "sens: out of memory");
    /* D is the residual row width: hc_mult·hidden for deepseek_v4's streams */
    *s = (sens_set){m, NULL, n_seq, seq_len, n_seq * seq_len, c->n_layers, fwd_residual_width(m),
                    c->vocab,
                    NULL, NULL, NULL, NULL};
    int rc = fwd_state_new(&s->st, m, n_seq, seq_len, err);
    if (rc) {
        vl_free(s);
        return rc;
    }
    size_t N = (size_t)s->N;
    s->layer_in = vl_malloc((size_t)(s->L + 1) * N * s->D * sizeof *s->layer_in);
    s->z = vl_malloc(N * s->V * sizeof *s->z);
    s->p = vl_malloc(N * s->V * sizeof *s->p);
    s->psum = vl_malloc(N * sizeof *s->psum);
    if (!s->layer_in || !s->z || !s->p || !s->psum) {
        sens_set_free(s);
        return vl_errf(err, VL_ENOMEM, "sens: out of memory for a set of %zu tokens", N);
    }
    const float *lg;
    tap_set taps = {capture_residual, s, TAP_BIT(TAP_RESIDUAL)};
    if ((rc = fwd_embed(m, model_base(m), ids, s->N, s->layer_in, err)) ||
        (rc = fwd_run(m, model_base(m), s->st, ids, n_seq, seq_len, NULL, &taps, &lg, err))) {
        sens_set_free(s);
        return rc;
    }
    memcpy(s->z, lg, N * s->V * sizeof *s->z);
    for (size_t t = 0; t < N; t++) { /* softmax in float64, p stored as float32 */
        const float *z = lg + t * s->V;
        float *p = s->p + t * s->V;
        double mx = z[0], se = 0, ps = 0;
        for (int v = 1; v < s->V; v++)
            mx = z[v] > mx ? z[v] : mx;
        for (int v = 0; v < s->V; v++)
            se += exp(z[v] - mx);
        double lse = mx + log(se);
        for (int v = 0; v < s->V; v++) {
            p[v] = (float)exp(z[v] - lse);
            ps += p[v];
        }
        s->psum[t] = ps;
    }
    *out = s;
    return 0;
}

int64_t sens_set_tokens(const sens_set *s) { return s->N; }

/* With δ = z' − z (perturbed minus reference logits) and p̂ = p/Σp:
 *   KL_t = Σ p̂ (log p − log q) = log Σ_v p̂_v e^{δ_v} − Σ p̂ δ = log1p(Σ p̂ expm1(δ)) − Σ p̂ δ.
 * This form is exactly 0 for identical logits and loses no digits to a large log-partition:
 * the terms are of the size of δ, so the KLD of a 1e-2 perturbation (~1e-6 nats) keeps its
 * precision, which a difference of two log-sum-exps in float would not (~1e-7 error). */
static double mean_kld(const sens_set *s, const float *lg)
{
    double tot = 0;
    for (int t = 0; t < s->N; t++) {
        const float *z = lg + (size_t)t * s->V, *z0 = s->z + (size_t)t * s->V;
        const float *p = s->p + (size_t)t * s->V;
        double a = 0, b = 0;
        for (int v = 0; v < s->V; v++) {
            float d = z[v] - z0[v];
            a += (double)p[v] * (fabsf(d) < 8.0f ? expm1f(d) : expm1((double)d));
            b += (double)p[v] * d;
        }
        double kl = log1p(a / s->psum[t]) - b / s->psum[t];
        tot += kl > 0 ? kl : 0; /* rounding can leave −1e-17 */
    }
    return tot / s->N;
}

int sens_set_kld(sens_set *s, const model_weights *w, int from, double *kld, vl_err *err)
{
    if (from < 0 || from > s->L)
        return vl_errf(err, VL_EARG, "sens: start layer %d outside [0, %d]", from, s->L);
    const float *lg;
    int rc = fwd_run_from(s->m, w, s->st, from, s->layer_in + (size_t)from * s->N * s->D,
                          s->n_seq, s->seq_len, NULL, NULL, &lg, err);
    if (rc)
        return rc;
    *kld = mean_kld(s, lg);
    return 0;
}

void sens_set_free(sens_set *s)
{
    if (!s)
        return;
    fwd_state_free(s->st);
    vl_free(s->layer_in);
    vl_free(s->z);
    vl_free(s->p);
    vl_free(s->psum);
    vl_free(s);
}

/* ---------------------------------------------------------------- noise and α */

int sens_noise(float *out, const float *w, const sens_tensor *t, double eps, uint64_t seed,
               vl_err *err)
{
    rng *r;
    int rc = rng_new_child(&r, seed, t->name, err);
    if (rc)
        return rc;
    double wn = 0, gn = 0;
    for (int64_t i = 0; i < t->n; i++) {
        double g = rng_gaussian(r, 1.0);
        out[i] = (float)g;
        gn += g * g;
        wn += (double)w[i] * w[i];
    }
    rng_free(r);
    double k = gn > 0 ? eps * sqrt(wn / gn) : 0;
    for (int64_t i = 0; i < t->n; i++)
        out[i] = (float)(w[i] + k * out[i]);
    return 0;
}

int sens_alloc_alpha(sens_result *r, int n_sets, const char *const *names, vl_err *err)
{
    size_t su = (size_t)n_sets * r->n_units;
    r->n_sets = n_sets;
    r->set_name = vl_calloc((size_t)n_sets, sizeof *r->set_name);
    r->set_tokens = vl_calloc((size_t)n_sets, sizeof *r->set_tokens);
    for (int k = 0; k < 2; k++) {
        r->kld[k] = vl_calloc(su, sizeof *r->kld[k]);
        r->alpha[k] = vl_calloc(su, sizeof *r->alpha[k]);
        if (!r->kld[k] || !r->alpha[k])
            return vl_errf(err, VL_ENOMEM, "sens: out of memory");
    }
    if (!r->set_name || !r->set_tokens)
        return vl_errf(err, VL_ENOMEM, "sens: out of memory");
    for (int s = 0; s < n_sets; s++)
        if (!(r->set_name[s] = vl_strdup(names[s])))
            return vl_errf(err, VL_ENOMEM, "sens: out of memory");
    for (size_t i = 0; i < su; i++)
        r->alpha[0][i] = r->alpha[1][i] = r->kld[0][i] = r->kld[1][i] = NAN;
    return 0;
}

/* Perturb every member of unit u at level eps in binding w (buffers from buf), measure, and
 * restore the slots. */
static int unit_kld(sens_result *r, int u, const model *m, model_weights *w, sens_set *s,
                    double eps, uint64_t seed, float *buf, double *kld, vl_err *err)
{
    int from = -1, rc = 0;
    size_t off = 0;
    for (int i = 0; i < r->n_tensors; i++) {
        const sens_tensor *t = &r->t[i];
        if (t->unit != u)
            continue;
        const float **slot = model_weights_slot(m, w, (size_t)t->mi);
        if ((rc = sens_noise(buf + off, *slot, t, eps, seed, err)))
            break;
        *slot = buf + off;
        off += (size_t)t->n;
        from = from < 0 || t->layer < from ? t->layer : from;
    }
    if (!rc)
        rc = sens_set_kld(s, w, from, kld, err);
    const model_weights *base = model_base(m); /* restore: the reference pointers */
    for (int i = 0; i < r->n_tensors; i++)
        if (r->t[i].unit == u)
            *model_weights_slot(m, w, (size_t)r->t[i].mi) =
                *model_weights_slot(m, (model_weights *)base, (size_t)r->t[i].mi);
    return rc;
}

/* Largest unit in weights (one noise buffer serves all). */
static size_t unit_weights_max(const sens_result *r)
{
    size_t mx = 0;
    for (int u = 0; u < r->n_units; u++) {
        size_t n = 0;
        for (int i = 0; i < r->n_tensors; i++)
            n += r->t[i].unit == u ? (size_t)r->t[i].n : 0;
        mx = n > mx ? n : mx;
    }
    return mx;
}

/* Mean KLD of unit u of set si at noise level eps[k], and its α = KLD/ε². */
static int unit_eps(sens_result *r, int si, int u, int k, const model *m, model_weights *w,
                    sens_set *s, const sens_params *p, float *buf, vl_err *err)
{
    double kl = 0;
    int rc = unit_kld(r, u, m, w, s, p->eps[k], p->seed, buf, &kl, err);
    size_t ix = (size_t)si * r->n_units + u;
    r->kld[k][ix] = kl;
    r->alpha[k][ix] = kl / (p->eps[k] * p->eps[k]);
    return rc;
}

int sens_unit_alpha(sens_result *r, int si, int u, const model *m, sens_set *s,
                    const sens_params *p, vl_err *err)
{
    model_weights *w = NULL;
    float *buf = vl_malloc(unit_weights_max(r) * sizeof *buf);
    int rc = buf ? model_weights_clone(&w, m, model_base(m), err)
                 : vl_errf(err, VL_ENOMEM, "sens: out of memory");
    for (int k = 0; !rc && k < 2; k++)
        rc = unit_eps(r, si, u, k, m, w, s, p, buf, err);
    r->set_tokens[si] = sens_set_tokens(s);
    r->eps[0] = p->eps[0];
    r->eps[1] = p->eps[1];
    r->seed = p->seed;
    model_weights_free(w);
    vl_free(buf);
    return rc;
}

int sens_alpha(sens_result *r, int si, const model *m, sens_set *s, const sens_params *p,
               vl_err *err)
{
    model_weights *w = NULL; /* one noise buffer, sized for the largest unit */
    float *buf = vl_malloc(unit_weights_max(r) * sizeof *buf);
    int rc = buf ? model_weights_clone(&w, m, model_base(m), err)
                 : vl_errf(err, VL_ENOMEM, "sens: out of memory");
    prog pg;
    char what[96];
    snprintf(what, sizeof what, "sens α %s", r->set_name[si]);
    prog_init(&pg, what, "runs", 2 * (int64_t)r->n_units);
    pg.enabled &= p->progress;
    pg.enabled &= par_rank() == 0;
    r->set_tokens[si] = sens_set_tokens(s);
    /* units round-robin over the ranks (core/par.h); a unit's α depends on nothing but the
     * unit, so the shared table is the one process's bits */
    int R = par_size();
    for (int u = par_rank(); !rc && u < r->n_units; u += R)
        for (int k = 0; !rc && k < 2; k++) {
            rc = unit_eps(r, si, u, k, m, w, s, p, buf, err);
            int64_t done = 2 * (int64_t)(u + R - 1) + k + 1; /* the job, seen from rank 0 */
            prog_update(&pg, done < 2 * (int64_t)r->n_units ? done : 2 * (int64_t)r->n_units);
        }
    prog_finish(&pg);
    size_t row = (size_t)si * r->n_units;
    for (int k = 0; k < 2; k++) {
        rc = par_share(r->kld[k] + row, r->n_units, sizeof(double), sizeof(double), rc, err);
        rc = par_share(r->alpha[k] + row, r->n_units, sizeof(double), sizeof(double), rc, err);
    }
    r->eps[0] = p->eps[0];
    r->eps[1] = p->eps[1];
    r->seed = p->seed;
    model_weights_free(w);
    vl_free(buf);
    return rc;
}
