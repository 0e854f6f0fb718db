/* alloc/sens_alpha.c — the α scan: every unit of a set perturbed at both noise levels, K
 * noise draws each, KLD kept per sequence; α ± SE by a seeded bootstrap over sequences and the
 * spread over draws (alloc/sens.h). */
#include "sens.h"

#include "../core/kern.h"
#include "../core/par.h"
#include "../core/prog.h"
#include "../core/rng.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int sens_alloc_alpha(sens_result *r, int n_sets, const char *const *names, vl_err *err)
{
    size_t su = (size_t)n_sets * r->n_units;
    r->n_sets = n_sets;
    r->set_name = vl_calloc((size_t)n_sets, sizeof *r->set_name);
    r->set_tokens = vl_calloc((size_t)n_sets, sizeof *r->set_tokens);
    r->set_seqs = vl_calloc((size_t)n_sets, sizeof *r->set_seqs);
    r->seq_kld = vl_calloc((size_t)n_sets, sizeof *r->seq_kld);
    for (int k = 0; k < 2; k++) {
        r->kld[k] = vl_calloc(su, sizeof *r->kld[k]);
        r->alpha[k] = vl_calloc(su, sizeof *r->alpha[k]);
        r->alpha_se[k] = vl_calloc(su, sizeof *r->alpha_se[k]);
        r->alpha_draw_sd[k] = vl_calloc(su, sizeof *r->alpha_draw_sd[k]);
        if (!r->kld[k] || !r->alpha[k] || !r->alpha_se[k] || !r->alpha_draw_sd[k])
            return vl_errf(err, VL_ENOMEM, "sens: out of memory");
    }
    if (!r->set_name || !r->set_tokens || !r->set_seqs || !r->seq_kld)
        return vl_errf(err, VL_ENOMEM, "sens: out of memory");
    for (int s = 0; s < n_sets; s++)
        if (!(r->set_name[s] = vl_strdup(names[s])))
            return vl_errf(err, VL_ENOMEM, "sens: out of memory");
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < su; i++)
            r->alpha[k][i] = r->kld[k][i] = r->alpha_se[k][i] = r->alpha_draw_sd[k][i] = NAN;
    return 0;
}

/* Per-set and per-draw arrays for set si measured with p on s (first use allocates them). */
static int prepare_set(sens_result *r, int si, const sens_set *s, const sens_params *p,
                       vl_err *err)
{
    if (p->draws < 1 || p->draws > SENS_MAX_DRAWS)
        return vl_errf(err, VL_EARG, "sens: %d noise draws (1..%d)", p->draws, SENS_MAX_DRAWS);
    if (p->boot < 0)
        return vl_errf(err, VL_EARG, "sens: %d bootstrap resamples (≥ 0)", p->boot);
    if (r->n_draws && (r->n_draws != p->draws || r->n_boot != p->boot))
        return vl_errf(err, VL_EARG, "sens: set %s measured with %d draws and %d resamples, "
                       "the others with %d and %d", r->set_name[si], p->draws, p->boot,
                       r->n_draws, r->n_boot);
    size_t su = (size_t)r->n_sets * r->n_units;
    if (!r->n_draws) {
        r->n_draws = p->draws;
        r->n_boot = p->boot;
        for (int k = 0; k < 2; k++) {
            r->draw_alpha[k] = vl_malloc(su * (size_t)p->draws * sizeof *r->draw_alpha[k]);
            if (!r->draw_alpha[k])
                return vl_errf(err, VL_ENOMEM, "sens: out of memory");
            for (size_t i = 0; i < su * (size_t)p->draws; i++)
                r->draw_alpha[k][i] = NAN;
        }
    }
    int n = sens_set_seqs(s);
    if (r->seq_kld[si] && r->set_seqs[si] != n)
        return vl_errf(err, VL_EARG, "sens: set %s measured on %d and on %d sequences",
                       r->set_name[si], r->set_seqs[si], n);
    if (!r->seq_kld[si]) {
        size_t cnt = 2 * (size_t)r->n_units * n;
        if (!(r->seq_kld[si] = vl_malloc(cnt * sizeof *r->seq_kld[si])))
            return vl_errf(err, VL_ENOMEM, "sens: out of memory");
        for (size_t i = 0; i < cnt; i++)
            r->seq_kld[si][i] = NAN;
        r->set_seqs[si] = n;
    }
    r->set_tokens[si] = sens_set_tokens(s);
    r->eps[0] = p->eps[0];
    r->eps[1] = p->eps[1];
    r->seed = p->seed;
    return 0;
}

/* Perturb every member of unit u at level eps (noise draw `draw`) in binding w (buffers from
 * buf), measure per sequence into seq[n_seq], and restore the slots. */
static int unit_kld(sens_result *r, int u, const model *m, model_weights *w, sens_set *s,
                    int wi, double eps, uint64_t seed, int draw, float *buf, double *seq,
                    vl_err *err)
{
    int from = model_config(m)->n_layers, rc = 0;
    size_t off = 0;
    for (int i = 0; i < r->n_tensors; i++) {
        const sens_tensor *t = &r->t[i];
        if (t->unit != u)
            continue;
        const float *ref;
        float *own;
        if ((rc = model_tensor_f32(m, w, (size_t)t->mi, &ref, &own, err)))
            break;
        rc = sens_noise_draw(buf + off, ref, t, eps, seed, draw, err);
        vl_free(own);
        if (rc)
            break;
        *model_weights_slot(m, w, (size_t)t->mi) = buf + off;
        off += (size_t)t->n;
        int f0 = sens_tensor_from(t, model_config(m)->n_layers);
        from = f0 < from ? f0 : from;
    }
    if (!rc)
        rc = sens_set_kld_seq_on(s, wi, w, from, seq, err);
    const model_weights *base = sens_set_base(s); /* restore: the reference pointers */
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

double sens_bootstrap_se(const double *x, int n, int n_boot, uint64_t seed, const char *label)
{
    if (n < 2 || n_boot < 2)
        return NAN;
    rng *g = NULL;
    if (rng_new_child(&g, seed, label, NULL))
        return NAN;
    double sum = 0, sum2 = 0; /* of the resample means */
    for (int b = 0; b < n_boot; b++) {
        double m = 0;
        for (int i = 0; i < n; i++)
            m += x[rng_uniform_int(g, (uint64_t)n)];
        m /= n;
        sum += m;
        sum2 += m * m;
    }
    rng_free(g);
    double mean = sum / n_boot, var = (sum2 - n_boot * mean * mean) / (n_boot - 1);
    return sqrt(var > 0 ? var : 0);
}

/* Sample standard deviation of x[0..n) (NaN for n < 2). */
static double sample_sd(const double *x, int n)
{
    if (n < 2)
        return NAN;
    double m = 0, v = 0;
    for (int i = 0; i < n; i++)
        m += x[i];
    m /= n;
    for (int i = 0; i < n; i++)
        v += (x[i] - m) * (x[i] - m);
    return sqrt(v / (n - 1));
}

/* Unit u of set si at noise level eps[k]: K draws, per-sequence KLD averaged over draws,
 * α = mean/ε², its bootstrap SE over sequences and the draws' spread. seq: [n] scratch. */
static int unit_eps(sens_result *r, int si, int u, int k, const model *m, model_weights *w,
                    sens_set *s, int wi, const sens_params *p, float *buf, double *seq,
                    vl_err *err)
{
    int n = r->set_seqs[si], D = r->n_draws, rc = 0;
    double e2 = p->eps[k] * p->eps[k];
    double *acc = r->seq_kld[si] + ((size_t)k * r->n_units + u) * n;
    size_t ix = (size_t)si * r->n_units + u;
    double *da = r->draw_alpha[k] + ix * D;
    if (k == 1 && p->eps[1] == p->eps[0]) {
        /* One noise level given: level 1 would repeat level 0's runs exactly (same ε, same
         * seeded G), so copy them and halve the scan. */
        memcpy(acc, r->seq_kld[si] + (size_t)u * n, (size_t)n * sizeof *acc);
        memcpy(da, r->draw_alpha[0] + ix * D, (size_t)D * sizeof *da);
        r->kld[1][ix] = r->kld[0][ix];
        r->alpha[1][ix] = r->alpha[0][ix];
        r->alpha_se[1][ix] = r->alpha_se[0][ix];
        r->alpha_draw_sd[1][ix] = r->alpha_draw_sd[0][ix];
        return 0;
    }
    for (int q = 0; q < n; q++)
        acc[q] = 0;
    for (int d = 0; !rc && d < D; d++) {
        rc = unit_kld(r, u, m, w, s, wi, p->eps[k], p->seed, d, buf, seq, err);
        double mean = 0;
        for (int q = 0; !rc && q < n; q++) {
            acc[q] += seq[q] / D;
            mean += seq[q];
        }
        da[d] = mean / n / e2;
    }
    if (rc)
        return rc;
    double mean = 0;
    for (int q = 0; q < n; q++)
        mean += acc[q];
    mean /= n;
    r->kld[k][ix] = mean;
    r->alpha[k][ix] = mean / e2;
    char label[SENS_LABEL_MAX];
    snprintf(label, sizeof label, "sens.bootstrap.%s", r->set_name[si]);
    /* the same resamples for every unit and level of a set (same stream) */
    r->alpha_se[k][ix] = sens_bootstrap_se(acc, n, r->n_boot, p->seed, label) / e2;
    r->alpha_draw_sd[k][ix] = sample_sd(da, D);
    return 0;
}

/* The journal record of unit u of set si: name and payload layout (per ε k: kld, α, SE,
 * draw sd, the D draws' α, the n sequences' KLD). */
static size_t item_doubles(const sens_result *r, int si)
{
    return 2 * (4 + (size_t)r->n_draws + (size_t)r->set_seqs[si]);
}

static void item_name(const sens_result *r, int si, int u, const sens_params *p, char *buf,
                      size_t cap)
{
    snprintf(buf, cap, "sens/%s/%s/draws=%d/seqs=%d/eps=%.17g,%.17g/seed=%llu",
             r->set_name[si], r->unit_name[u], r->n_draws, r->set_seqs[si], p->eps[0],
             p->eps[1], (unsigned long long)p->seed);
}

/* Copy unit u's numbers between r and buf (to_buf 1: pack, 0: unpack). */
static void item_copy(sens_result *r, int si, int u, double *buf, int to_buf)
{
    size_t ix = (size_t)si * r->n_units + u, D = (size_t)r->n_draws, n = (size_t)r->set_seqs[si];
    for (int k = 0; k < 2; k++) {
        double *f[4] = {&r->kld[k][ix], &r->alpha[k][ix], &r->alpha_se[k][ix],
                        &r->alpha_draw_sd[k][ix]};
        double *runs[2] = {r->draw_alpha[k] + ix * D,
                           r->seq_kld[si] + ((size_t)k * r->n_units + u) * n};
        size_t lens[2] = {D, n};
        for (int i = 0; i < 4; i++, buf++) {
            if (to_buf)
                *buf = *f[i];
            else
                *f[i] = *buf;
        }
        for (int i = 0; i < 2; i++) {
            memcpy(to_buf ? buf : runs[i], to_buf ? runs[i] : buf, lens[i] * sizeof *buf);
            buf += lens[i];
        }
    }
}

/* ---------------------------------------------------------------- threads */

/* One thread of the scan: its worker of the set, binding, noise buffer and scratch. */
typedef struct scan_pool scan_pool;
typedef struct {
    int wi;
    model_weights *w;
    float *buf;
    double *seq;
    vl_err err;
} scan_thread;

/* A batch of units run by nt threads (sens_par_items): each takes the next unit of the batch
 * until none is left. Every unit writes only its own rows of r, so the numbers do not depend
 * on which thread ran it. */
struct scan_pool {
    sens_result *r;
    int si, nt;
    const model *m;
    sens_set *s;
    const sens_params *p;
    scan_thread *th;     /* [nt] */
    const int *units;    /* [n] the batch */
    int *rc;             /* [n] per unit: 0 done, else the error (in that thread's err) */
    int *by;             /* [n] the thread that ran it */
};

static int pool_item(void *ctx, int worker, int i)
{
    scan_pool *pl = ctx;
    scan_thread *t = &pl->th[worker];
    int rc = 0;
    for (int k = 0; !rc && k < 2; k++)
        rc = unit_eps(pl->r, pl->si, pl->units[i], k, pl->m, t->w, pl->s, t->wi, pl->p, t->buf,
                      t->seq, &t->err);
    pl->by[i] = t->wi;
    pl->rc[i] = rc;
    return rc;
}

/* pl->rc of a unit not started (after another failed); error codes are ≤ 0. */
enum { NOT_RUN = 1 };

/* Run units[0..n) on the pool's threads; per-unit results in pl->rc. */
static void pool_batch(scan_pool *pl, const int *units, int n)
{
    pl->units = units;
    for (int i = 0; i < n; i++)
        pl->rc[i] = NOT_RUN;
    sens_par_items(n, pl->nt, pool_item, pl);
}

static void pool_free(scan_pool *pl)
{
    for (int t = 0; pl->th && t < pl->nt; t++) {
        model_weights_free(pl->th[t].w);
        vl_free(pl->th[t].buf);
        vl_free(pl->th[t].seq);
    }
    vl_free(pl->th);
    vl_free(pl->rc);
    vl_free(pl->by);
}

/* nt threads for batches of up to cap units of set si (the set grows to nt workers). */
static int pool_new(scan_pool *pl, int nt, int cap, sens_result *r, int si, const model *m,
                    sens_set *s, const sens_params *p, vl_err *err)
{
    *pl = (scan_pool){r, si, nt, m, s, p, NULL, NULL, NULL, NULL};
    size_t wmax = unit_weights_max(r); /* one noise buffer a thread, sized for the largest unit */
    pl->th = vl_calloc((size_t)nt, sizeof *pl->th);
    pl->rc = vl_malloc(((size_t)cap + 1) * sizeof *pl->rc);
    pl->by = vl_malloc(((size_t)cap + 1) * sizeof *pl->by);
    int rc = pl->th && pl->rc && pl->by ? sens_set_workers(s, nt, err)
                                        : vl_errf(err, VL_ENOMEM, "sens: out of memory");
    for (int t = 0; !rc && t < nt; t++) {
        scan_thread *th = &pl->th[t];
        th->wi = t;
        th->buf = vl_malloc(wmax * sizeof *th->buf);
        th->seq = vl_malloc(((size_t)r->set_seqs[si] + 1) * sizeof *th->seq);
        rc = th->buf && th->seq ? model_weights_clone(&th->w, m, sens_set_base(s), err)
                                : vl_errf(err, VL_ENOMEM, "sens: out of memory");
    }
    return rc;
}

/* Threads for a scan of n units: p->threads, else the kernels' count; at most n. */
static int scan_threads(const sens_params *p, int64_t n)
{
    int nt = p->threads > 0 ? p->threads : kern_threads();
    nt = nt > SENS_MAX_THREADS ? SENS_MAX_THREADS : nt;
    return nt < 1 ? 1 : nt > n && n > 0 ? (int)n : nt;
}

/* Units [u0, u1) of set si (both levels), with progress when asked. Units in p->journal are
 * taken from it; the others are handed out over the ranks by a work queue in batches of up to
 * 2 per thread, run on the threads (scan_pool; BLAS single-threaded meanwhile, so the cores
 * are not oversubscribed and every run sums as the reference run did, sens_blas_single),
 * journaled as each batch is done (in queue order), then shared by owner. */
static int scan(sens_result *r, int si, int u0, int u1, const model *m, sens_set *s,
                const sens_params *p, vl_err *err)
{
    int rc = prepare_set(r, si, s, p, err);
    int64_t nu = u1 - u0, n_todo = 0;
    int *owner = vl_malloc(((size_t)nu + 1) * sizeof *owner);
    int *todo = vl_malloc(((size_t)nu + 1) * sizeof *todo);
    double *item = rc ? NULL : vl_malloc(item_doubles(r, si) * sizeof *item);
    char name[2 * SENS_LABEL_MAX + 160];
    if (!rc && !(owner && todo && item))
        rc = vl_errf(err, VL_ENOMEM, "sens: out of memory");
    for (int u = u0; !rc && u < u1; u++) {
        int got = 0;
        owner[u - u0] = -1; /* restored units are on every rank already */
        if (p->journal) {
            item_name(r, si, u, p, name, sizeof name);
            got = jr_get(p->journal, name, item, item_doubles(r, si) * sizeof *item, err);
            rc = got < 0 ? got : 0;
        }
        if (got == 1)
            item_copy(r, si, u, item, 0);
        else
            todo[n_todo++] = u;
    }
    int nt = scan_threads(p, n_todo), cap = 2 * nt;
    scan_pool pl;
    int prc = pool_new(&pl, nt, cap, r, si, m, s, p, rc ? NULL : err);
    rc = rc ? rc : prc;
    int batch[2 * SENS_MAX_THREADS];
    prog pg;
    char what[96];
    snprintf(what, sizeof what, "sens α %s", r->set_name[si]);
    int64_t per = (p->eps[1] == p->eps[0] ? 1 : 2) * (int64_t)(p->draws > 0 ? p->draws : 1);
    prog_init(&pg, what, "runs", per * nu);
    pg.enabled &= p->progress;
    pg.enabled &= par_rank() == 0;
    int blas = sens_blas_single(); /* the threads are the units', and the reference's BLAS */
    par_queue *q = NULL;
    rc = par_queue_new(&q, n_todo, rc, err);
    int done = 0;
    while (!rc && !done) {
        int nb = 0;
        int64_t it = -1, last = -1;
        while (nb < cap) { /* a batch from the queue; a simulated crash ends it before its unit */
            if ((rc = par_queue_next(q, &it, err)) || it < 0) {
                done = 1;
                break;
            }
            owner[todo[it] - u0] = par_rank();
            if ((rc = par_fault_hit(p->fault, err))) {
                done = 1;
                break;
            }
            batch[nb++] = todo[it];
            last = it;
        }
        int brc = 0;
        if (nb)
            pool_batch(&pl, batch, nb);
        for (int i = 0; !brc && i < nb && pl.rc[i] != NOT_RUN; i++) { /* journal in queue order */
            if (pl.rc[i]) {
                brc = pl.rc[i];
                if (err)
                    *err = pl.th[pl.by[i]].err;
            } else if (p->journal) {
                item_name(r, si, batch[i], p, name, sizeof name);
                item_copy(r, si, batch[i], item, 1);
                brc = jr_put(p->journal, name, item, item_doubles(r, si) * sizeof *item, err);
            }
        }
        if (brc && !rc) {
            rc = brc;
            done = 1;
        }
        /* seen from this rank: the items handed out so far, over all ranks */
        if (last >= 0)
            prog_update(&pg, per * (nu - n_todo + last + 1));
    }
    sens_blas_restore(blas);
    par_queue_free(q); /* collective: reached by every rank, failed or not */
    prog_finish(&pg);
    if (r->n_draws) { /* prepare_set succeeded (on every rank alike): share this set's rows */
        size_t row = (size_t)si * r->n_units + u0, D = (size_t)r->n_draws;
        size_t n = (size_t)r->set_seqs[si], d8 = sizeof(double);
        rc = par_owners(owner, nu, rc, err);
        for (int k = 0; k < 2; k++) {
            rc = par_share_owned(r->kld[k] + row, nu, d8, d8, owner, rc, err);
            rc = par_share_owned(r->alpha[k] + row, nu, d8, d8, owner, rc, err);
            rc = par_share_owned(r->alpha_se[k] + row, nu, d8, d8, owner, rc, err);
            rc = par_share_owned(r->alpha_draw_sd[k] + row, nu, d8, d8, owner, rc, err);
            rc = par_share_owned(r->draw_alpha[k] + row * D, nu, D * d8, D * d8, owner, rc, err);
            rc = par_share_owned(r->seq_kld[si] + ((size_t)k * r->n_units + u0) * n, nu, n * d8,
                                 n * d8, owner, rc, err);
        }
    }
    pool_free(&pl);
    vl_free(owner);
    vl_free(todo);
    vl_free(item);
    return rc;
}

int sens_nonquadratic(const sens_result *r, int si, int u)
{
    size_t i = (size_t)si * r->n_units + u;
    double ratio = r->alpha[1][i] / r->alpha[0][i];
    return isfinite(ratio) && fabs(ratio - 1) > SENS_QUAD_TOL;
}

int sens_quad_checked(const sens_result *r)
{
    return r->eps[1] != r->eps[0];
}

int sens_unit_alpha(sens_result *r, int si, int u, const model *m, sens_set *s,
                    const sens_params *p, vl_err *err)
{
    return scan(r, si, u, u + 1, m, s, p, err);
}

int sens_alpha(sens_result *r, int si, const model *m, sens_set *s, const sens_params *p,
               vl_err *err)
{
    return scan(r, si, 0, r->n_units, m, s, p, err);
}
