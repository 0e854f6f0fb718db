/* alloc/sens.c — noise-injection sensitivity: the reference cache of a set, KL against it per
 * sequence and the seeded noise (alloc/sens.h; HIGGS arXiv:2411.17525 §3). The α scan is in
 * sens_alpha.c. */
#include "sens.h"

#include "../analysis/fwd.h"
#include "../core/rng.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

sens_params sens_defaults(void)
{
    sens_params p = {{0.01, 0.03}, 1, SENS_GROUP, 0, fq_defaults(), 8, 3, {2, 3, 4}, 0, 0,
                     SENS_DEFAULT_DRAWS, SENS_DEFAULT_BOOT, NULL, NULL, 0};
    p.fq.min_tokens = 16;
    p.fq.few = FQ_FEW_RTN;
    return p;
}

int sens_seqs_used(const sens_params *p, int n_seq, int seq_len)
{
    if (p->max_tokens <= 0 || (int64_t)n_seq * seq_len <= p->max_tokens)
        return n_seq;
    return p->max_tokens / seq_len > 0 ? p->max_tokens / seq_len : 1;
}

/* ---------------------------------------------------------------- the reference cache */

/* Sequences per forward: the state's buffers (logits of chunk × len tokens among them) follow
 * the chunk, not the set; the set keeps only its layer inputs and reference distributions. */
#define SENS_CHUNK_TOKENS 1024

struct sens_set {
    const model *m;
    fwd_state *st;
    int n_seq, seq_len, N, L, D, V;
    int chunk;        /* sequences per forward */
    size_t row0;      /* first token row of the chunk the reference run is capturing */
    float *layer_in;  /* [(L+1) × N × D] input of layer l (l = L: after the last layer); D is
                         the residual width (fwd_residual_width) */
    float *z;         /* [N × V] reference logits */
    float *p;         /* [N × V] reference probabilities */
    double *psum;     /* [N] Σ_v p_v (1 up to float rounding) */
    int32_t *ids;     /* [N] the tokens (a perturbed embedding table is looked up again) */
    float *emb;       /* [chunk·seq_len × D] that lookup's rows */
};

/* Tap consumer: copy the residual stream after layer l into layer_in[l + 1]. */
static void capture_residual(void *user, const tap_event *ev)
{
    sens_set *s = user;
    float *dst = s->layer_in + ((size_t)(ev->layer + 1) * s->N + s->row0) * s->D;
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
    int chunk = SENS_CHUNK_TOKENS / seq_len;
    chunk = chunk < 1 ? 1 : chunk > n_seq ? n_seq : chunk;
    /* D is the residual row width: hc_mult·hidden for deepseek_v4's streams */
    *s = (sens_set){m,        NULL,  n_seq, seq_len, n_seq * seq_len, c->n_layers,
                    fwd_residual_width(m), c->vocab, chunk, 0, NULL, NULL, NULL, NULL,
                    NULL, NULL};
    int rc = fwd_state_new(&s->st, m, chunk, seq_len, err);
    if (rc) {
        vl_free(s);
        return rc;
    }
    size_t N = (size_t)s->N;
    s->layer_in = vl_malloc((size_t)(s->L + 1) * N * s->D * sizeof *s->layer_in);
    s->z = vl_malloc(N * s->V * sizeof *s->z);
    s->p = vl_malloc(N * s->V * sizeof *s->p);
    s->psum = vl_malloc(N * sizeof *s->psum);
    s->ids = vl_malloc(N * sizeof *s->ids);
    s->emb = vl_malloc((size_t)chunk * seq_len * s->D * sizeof *s->emb);
    if (!s->layer_in || !s->z || !s->p || !s->psum || !s->ids || !s->emb) {
        sens_set_free(s);
        return vl_errf(err, VL_ENOMEM, "sens: out of memory for a set of %zu tokens", N);
    }
    memcpy(s->ids, ids, N * sizeof *s->ids);
    tap_set taps = {capture_residual, s, TAP_BIT(TAP_RESIDUAL)};
    rc = fwd_embed(m, model_base(m), ids, s->N, s->layer_in, err);
    for (int s0 = 0; !rc && s0 < n_seq; s0 += chunk) {
        int nb = n_seq - s0 < chunk ? n_seq - s0 : chunk;
        const float *lg;
        s->row0 = (size_t)s0 * seq_len;
        rc = fwd_run(m, model_base(m), s->st, ids + s->row0, nb, seq_len, NULL, &taps, &lg,
                     err);
        if (!rc)
            memcpy(s->z + s->row0 * s->V, lg, (size_t)nb * seq_len * s->V * sizeof *s->z);
    }
    if (rc) {
        sens_set_free(s);
        return rc;
    }
    for (size_t t = 0; t < N; t++) { /* softmax in float64, p stored as float32 */
        const float *z = s->z + t * s->V;
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
static double token_kld(const sens_set *s, size_t t, const float *z)
{
    const float *z0 = s->z + t * s->V, *p = s->p + t * s->V;
    double a = 0, b = 0;
    for (int v = 0; v < s->V; v++) {
        float d = z[v] - z0[v];
        a += (double)p[v] * (fabsf(d) < 8.0f ? expm1f(d) : expm1((double)d));
        b += (double)p[v] * d;
    }
    double kl = log1p(a / s->psum[t]) - b / s->psum[t];
    return kl > 0 ? kl : 0; /* rounding can leave −1e-17 */
}

int sens_set_kld_seq(sens_set *s, const model_weights *w, int from, double *seq_kld,
                     vl_err *err)
{
    if (from < SENS_FROM_EMBED || from > s->L)
        return vl_errf(err, VL_EARG, "sens: start layer %d outside [%d, %d]", from,
                       SENS_FROM_EMBED, s->L);
    for (int s0 = 0; s0 < s->n_seq; s0 += s->chunk) {
        int nb = s->n_seq - s0 < s->chunk ? s->n_seq - s0 : s->chunk;
        size_t row0 = (size_t)s0 * s->seq_len;
        const float *lg, *in = s->layer_in + ((size_t)(from < 0 ? 0 : from) * s->N + row0) * s->D;
        int rc = 0;
        if (from == SENS_FROM_EMBED) {
            rc = fwd_embed(s->m, w, s->ids + row0, nb * s->seq_len, s->emb, err);
            in = s->emb;
        }
        if (!rc)
            rc = fwd_run_from(s->m, w, s->st, from < 0 ? 0 : from, in, nb, s->seq_len, NULL,
                              NULL, &lg, err);
        if (rc)
            return rc;
        for (int q = 0; q < nb; q++) {
            double tot = 0;
            for (int t = 0; t < s->seq_len; t++) {
                size_t r = (size_t)q * s->seq_len + t;
                tot += token_kld(s, row0 + r, lg + r * s->V);
            }
            seq_kld[s0 + q] = tot / s->seq_len;
        }
    }
    return 0;
}

int sens_set_kld(sens_set *s, const model_weights *w, int from, double *kld, vl_err *err)
{
    double *seq = vl_malloc((size_t)s->n_seq * sizeof *seq);
    if (!seq)
        return vl_errf(err, VL_ENOMEM, "sens: out of memory");
    int rc = sens_set_kld_seq(s, w, from, seq, err);
    double tot = 0;
    for (int q = 0; q < s->n_seq; q++)
        tot += seq[q];
    *kld = tot / s->n_seq; /* equal lengths: the token mean */
    vl_free(seq);
    return rc;
}

int sens_set_seqs(const sens_set *s) { return s->n_seq; }

void sens_set_free(sens_set *s)
{
    if (!s)
        return;
    fwd_state_free(s->st);
    vl_free(s->layer_in);
    vl_free(s->z);
    vl_free(s->p);
    vl_free(s->psum);
    vl_free(s->ids);
    vl_free(s->emb);
    vl_free(s);
}

/* ---------------------------------------------------------------- noise and α */

int sens_noise(float *out, const float *w, const sens_tensor *t, double eps, uint64_t seed,
               vl_err *err)
{
    return sens_noise_draw(out, w, t, eps, seed, 0, err);
}

int sens_noise_draw(float *out, const float *w, const sens_tensor *t, double eps, uint64_t seed,
                    int draw, vl_err *err)
{
    rng *r;
    char label[1024];
    if (draw == 0) /* draw 0 keeps the stream of the single-draw measurement */
        snprintf(label, sizeof label, "%s", t->name);
    else
        snprintf(label, sizeof label, "%s#%d", t->name, draw);
    int rc = rng_new_child(&r, seed, label, err);
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
