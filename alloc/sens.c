/* alloc/sens.c — noise-injection sensitivity: the reference cache of a set, KL against it per
 * sequence and the seeded noise (alloc/sens.h; HIGGS arXiv:2411.17525 §3). The α scan is in
 * sens_alpha.c. */
#include "sens.h"

#include "../analysis/fwd.h"
#include "../analysis/mweights.h"
#include "../core/kern.h"
#include "../core/rng.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

sens_params sens_defaults(void)
{
    sens_params p = {{0.01, 0.03}, 1, SENS_GROUP, 0, fq_defaults(), SENS_DEFAULT_ADD_DRAWS, 0,
                     0, SENS_DEFAULT_DRAWS, SENS_DEFAULT_BOOT, NULL, NULL, 0, 0,
                     SENS_KEEP_F32_DEFAULT};
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

/* Every forward on a set (the reference run and each perturbed run) goes through one-thread
 * BLAS. OpenBLAS's sgemm does not give the same bits on 1 and on 2 threads, and a perturbed
 * run is compared with the reference logits bit for bit (equal weights must give KL 0; a
 * noise run's KL is ~1e-5, so float32 differences of the logits between the two paths moved α
 * by up to 4e-4 relative when the scan's threads set BLAS to one thread and the reference had
 * run on two). The scan's and the additivity check's threads set it for their runs
 * (sens_alpha.c, sens_add.c); these set it around the calls made on the caller's thread.
 * Returns the thread count to restore. */
int sens_blas_single(void)
{
    int n = kern_threads();
    if (n != 1)
        kern_set_threads(1);
    return n;
}

void sens_blas_restore(int n)
{
    if (n != 1)
        kern_set_threads(n);
}

/* Sequences per forward: the state's buffers (logits of chunk × len tokens among them) follow
 * the chunk, not the set; the set keeps only its layer inputs and reference distributions. */
#define SENS_CHUNK_TOKENS 1024

/* What one thread of runs owns: a forward state and the rows of a redone embedding lookup. */
typedef struct {
    fwd_state *st;
    float *emb;       /* [chunk·seq_len × D] */
} sens_worker;

struct sens_set {
    const model *m;
    fwd_state *st;    /* wk[0].st: the reference run's state */
    int n_seq, seq_len, N, L, D, V;
    int chunk;        /* sequences per forward */
    size_t row0;      /* first token row of the chunk the reference run is capturing */
    float *layer_in;  /* [(L+1) × N × D] input of layer l (l = L: after the last layer); D is
                         the residual width (fwd_residual_width) */
    float *z;         /* [N × V] reference logits */
    float *p;         /* [N × V] reference probabilities */
    double *psum;     /* [N] Σ_v p_v (1 up to float rounding) */
    int32_t *ids;     /* [N] the tokens (a perturbed embedding table is looked up again) */
    int n_workers;    /* 1 + the extra threads' (sens_set_workers) */
    sens_worker *wk;  /* [n_workers] */
    model_weights *kept; /* the model in float32 (sens_set_keep_f32), else NULL */
    float *kept_data;    /* its arena */
};

static int worker_new(sens_set *s, sens_worker *k, vl_err *err)
{
    int rc = fwd_state_new(&k->st, s->m, s->chunk, s->seq_len, err);
    if (rc)
        return rc;
    k->emb = vl_malloc((size_t)s->chunk * s->seq_len * s->D * sizeof *k->emb);
    return k->emb ? 0 : vl_errf(err, VL_ENOMEM, "sens: out of memory");
}

int sens_set_workers(sens_set *s, int n, vl_err *err)
{
    if (n <= s->n_workers)
        return 0;
    sens_worker *wk = vl_realloc(s->wk, (size_t)n * sizeof *wk);
    if (!wk)
        return vl_errf(err, VL_ENOMEM, "sens: out of memory");
    s->wk = wk;
    for (; s->n_workers < n; s->n_workers++) {
        sens_worker *k = &wk[s->n_workers];
        *k = (sens_worker){NULL, NULL};
        int rc = worker_new(s, k, err);
        if (rc) {
            fwd_state_free(k->st);
            vl_free(k->emb);
            return rc;
        }
    }
    return 0;
}

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
                    NULL, 0, NULL, NULL, NULL};
    int rc = sens_set_workers(s, 1, err);
    if (rc) {
        sens_set_free(s);
        return rc;
    }
    s->st = s->wk[0].st;
    size_t N = (size_t)s->N;
    s->layer_in = vl_malloc((size_t)(s->L + 1) * N * s->D * sizeof *s->layer_in);
    s->z = vl_malloc(N * s->V * sizeof *s->z);
    s->p = vl_malloc(N * s->V * sizeof *s->p);
    s->psum = vl_malloc(N * sizeof *s->psum);
    s->ids = vl_malloc(N * sizeof *s->ids);
    if (!s->layer_in || !s->z || !s->p || !s->psum || !s->ids) {
        sens_set_free(s);
        return vl_errf(err, VL_ENOMEM, "sens: out of memory for a set of %zu tokens", N);
    }
    memcpy(s->ids, ids, N * sizeof *s->ids);
    tap_set taps = {capture_residual, s, TAP_BIT(TAP_RESIDUAL)};
    int blas = sens_blas_single();
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
    sens_blas_restore(blas);
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

/* KL of token t of the set against logits z (sens_kld.c). */
static double token_kld(const sens_set *s, size_t t, const float *z)
{
    return sens_token_kl(s->z + t * s->V, s->p + t * s->V, s->psum[t], z, s->V);
}

/* Sequences [q0, q1) from layer `from`: seq_kld[q − q0] = mean KL over sequence q's tokens.
 * The forwards run whole chunks of the reference run's grid (chunk multiples from 0), the
 * batches the reference captured: deepseek_v4's hash routing resumes only such a batch. */
static int kld_range(sens_set *s, int wi, const model_weights *w, int from, int q0, int q1,
                     double *seq_kld, vl_err *err)
{
    if (wi < 0 || wi >= s->n_workers)
        return vl_errf(err, VL_EARG, "sens: worker %d outside [0, %d)", wi, s->n_workers);
    sens_worker *k = &s->wk[wi];
    if (from < SENS_FROM_EMBED || from > s->L)
        return vl_errf(err, VL_EARG, "sens: start layer %d outside [%d, %d]", from,
                       SENS_FROM_EMBED, s->L);
    if (q0 < 0 || q1 > s->n_seq || q0 >= q1)
        return vl_errf(err, VL_EARG, "sens: sequences [%d, %d) outside [0, %d)", q0, q1,
                       s->n_seq);
    for (int s0 = q0 / s->chunk * s->chunk; s0 < q1; s0 += s->chunk) {
        int nb = s->n_seq - s0 < s->chunk ? s->n_seq - s0 : s->chunk;
        size_t row0 = (size_t)s0 * s->seq_len;
        const float *lg, *in = s->layer_in + ((size_t)(from < 0 ? 0 : from) * s->N + row0) * s->D;
        int rc = 0;
        if (from == SENS_FROM_EMBED) {
            rc = fwd_embed(s->m, w, s->ids + row0, nb * s->seq_len, k->emb, err);
            in = k->emb;
        }
        if (!rc)
            rc = fwd_run_from(s->m, w, k->st, s->ids + row0, from < 0 ? 0 : from, in, nb,
                              s->seq_len, NULL, NULL, &lg, err);
        if (rc)
            return rc;
        for (int q = 0; q < nb; q++) {
            if (s0 + q < q0 || s0 + q >= q1)
                continue;
            double tot = 0;
            for (int t = 0; t < s->seq_len; t++) {
                size_t r = (size_t)q * s->seq_len + t;
                tot += token_kld(s, row0 + r, lg + r * s->V);
            }
            seq_kld[s0 - q0 + q] = tot / s->seq_len;
        }
    }
    return 0;
}

int sens_set_kld_seq(sens_set *s, const model_weights *w, int from, double *seq_kld,
                     vl_err *err)
{
    int blas = sens_blas_single();
    int rc = kld_range(s, 0, w, from, 0, s->n_seq, seq_kld, err);
    sens_blas_restore(blas);
    return rc;
}

int sens_set_kld_seq_on(sens_set *s, int worker, const model_weights *w, int from,
                        double *seq_kld, vl_err *err)
{
    return kld_range(s, worker, w, from, 0, s->n_seq, seq_kld, err);
}

int sens_set_kld_part(sens_set *s, const model_weights *w, int from, int q0, int nq,
                      double *kld, vl_err *err)
{
    int blas = sens_blas_single();
    int rc = sens_set_kld_part_on(s, 0, w, from, q0, nq, kld, err);
    sens_blas_restore(blas);
    return rc;
}

int sens_set_kld_part_on(sens_set *s, int worker, const model_weights *w, int from, int q0,
                         int nq, double *kld, vl_err *err)
{
    double *seq = vl_malloc(((size_t)(nq > 0 ? nq : 0) + 1) * sizeof *seq);
    if (!seq)
        return vl_errf(err, VL_ENOMEM, "sens: out of memory");
    int rc = kld_range(s, worker, w, from, q0, q0 + nq, seq, err);
    double tot = 0;
    for (int q = 0; !rc && q < nq; q++)
        tot += seq[q];
    *kld = rc ? NAN : tot / nq; /* equal lengths: the token mean */
    vl_free(seq);
    return rc;
}

int sens_set_kld(sens_set *s, const model_weights *w, int from, double *kld, vl_err *err)
{
    return sens_set_kld_part(s, w, from, 0, s->n_seq, kld, err);
}

int sens_set_seqs(const sens_set *s) { return s->n_seq; }

int sens_set_keep_f32(sens_set *s, int64_t max_bytes, vl_err *err)
{
    if (s->kept)
        return 1;
    if (max_bytes <= 0 || mw_model_bytes(s->m) > (uint64_t)max_bytes)
        return 0;
    int rc = mw_resident(s->m, &s->kept, &s->kept_data, err);
    return rc ? rc : 1;
}

const model_weights *sens_set_base(const sens_set *s)
{
    return s->kept ? s->kept : model_base(s->m);
}

void sens_set_free(sens_set *s)
{
    if (!s)
        return;
    for (int k = 0; k < s->n_workers; k++) {
        fwd_state_free(s->wk[k].st);
        vl_free(s->wk[k].emb);
    }
    vl_free(s->wk);
    model_weights_free(s->kept);
    vl_free(s->kept_data);
    vl_free(s->layer_in);
    vl_free(s->z);
    vl_free(s->p);
    vl_free(s->psum);
    vl_free(s->ids);
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
