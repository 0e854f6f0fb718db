/* analysis/pipeline.c — layer ranges over ranks, residual rows passed stage to stage.
 *
 * Messages between neighbouring stages (core/par.h point to point, in order): a header of
 * four int64 {kind, item, bytes, tag}, then for PL_ROWS `bytes` of residual rows. PL_ITEM carries a
 * work-queue item down the pipeline (pl_next); PL_END ends the pass (pl_finish), normally or
 * after a failure.
 */
#include "pipeline.h"

#include <string.h>

enum { PL_END = 0, PL_ROWS = 1, PL_ITEM = 2 };

struct pl_pipe {
    const model *m;
    int P, D, stage, group, rank;
    int l0, l1, L;    /* this stage's layers [l0, l1) of L */
    size_t width;     /* floats per residual row */
    int64_t max_rows;
    float *h;         /* [max_rows × width] the batch's rows (P > 1) */
    int ended;        /* the upstream's PL_END of this pass has been received */
};

int pl_new(pl_pipe **out, const model *m, int P, int64_t max_rows, vl_err *err)
{
    *out = NULL;
    int R = par_size(), L = model_config(m)->n_layers;
    if (P < 1)
        return vl_errf(err, VL_EARG, "--pipeline %d: expected a positive number of stages", P);
    if (P > 1 && !par_built())
        return vl_errf(err, VL_EARG, "--pipeline %d: this vbrlab is the serial build (no MPI); "
                       "build it with `make MPI=1` and start it with mpirun or srun", P);
    if (R % P)
        return vl_errf(err, VL_EARG, "--pipeline %d: does not divide the %d MPI ranks (ranks = "
                       "stages × data-parallel groups)", P, R);
    if (P > L)
        return vl_errf(err, VL_EARG, "--pipeline %d: more stages than the model's %d layers", P,
                       L);
    pl_pipe *p = vl_calloc(1, sizeof *p);
    if (!p)
        return vl_errf(err, VL_ENOMEM, "pipeline: out of memory");
    p->m = m;
    p->P = P;
    p->D = R / P;
    p->rank = par_rank();
    p->stage = p->rank % P;
    p->group = p->rank / P;
    p->L = L;
    p->l0 = (int)((int64_t)p->stage * L / P);
    p->l1 = (int)((int64_t)(p->stage + 1) * L / P);
    p->width = (size_t)fwd_residual_width(m);
    p->max_rows = max_rows;
    if (P > 1 && !(p->h = vl_malloc((size_t)(max_rows > 0 ? max_rows : 1) * p->width *
                                    sizeof *p->h))) {
        vl_free(p);
        return vl_errf(err, VL_ENOMEM, "pipeline: out of memory for %lld residual rows",
                       (long long)max_rows);
    }
    *out = p;
    return 0;
}

void pl_free(pl_pipe *p)
{
    if (!p)
        return;
    vl_free(p->h);
    vl_free(p);
}

int pl_stages(const pl_pipe *p) { return p->P; }
int pl_groups(const pl_pipe *p) { return p->D; }
int pl_stage(const pl_pipe *p) { return p->stage; }
int pl_is_last(const pl_pipe *p) { return p->stage == p->P - 1; }

void pl_layers(const pl_pipe *p, int *from, int *to)
{
    *from = p->l0;
    *to = p->l1;
}

int pl_mine(const pl_pipe *p, int64_t item) { return (int)(item % p->D) == p->group; }

int pl_owner(const pl_pipe *p, int64_t item) { return (int)(item % p->D) * p->P + p->P - 1; }

enum { PL_HDR = 4 }; /* int64 per header */

static int send_hdr(const pl_pipe *p, int kind, int64_t item, int64_t bytes, int tag,
                    vl_err *err)
{
    int64_t h[PL_HDR] = {kind, item, bytes, tag};
    return par_send(p->rank + 1, h, sizeof h, err);
}

/* The upstream's next header; PL_END marks the pass ended. */
static int recv_hdr(pl_pipe *p, int64_t h[PL_HDR], vl_err *err)
{
    int rc = par_recv(p->rank - 1, h, PL_HDR * sizeof *h, err);
    if (!rc && h[0] == PL_END)
        p->ended = 1;
    if (!rc && (h[0] < PL_END || h[0] > PL_ITEM || h[2] < 0))
        rc = vl_errf(err, VL_EIO, "pipeline: stage %d sent a bad header (kind %lld)",
                     p->stage - 1, (long long)h[0]);
    return rc;
}

int pl_next(pl_pipe *p, par_queue *q, int64_t *item, vl_err *err)
{
    *item = -1;
    if (p->P == 1 || p->stage == 0) {
        int rc = par_queue_next(q, item, err);
        if (!rc && p->P > 1 && *item >= 0)
            rc = send_hdr(p, PL_ITEM, *item, 0, 0, err);
        return rc;
    }
    if (p->ended)
        return 0;
    int64_t h[PL_HDR];
    int rc = recv_hdr(p, h, err);
    if (rc || h[0] == PL_END)
        return rc;
    if (h[0] != PL_ITEM)
        return vl_errf(err, VL_EIO, "pipeline: stage %d sent rows where an item was due",
                       p->stage - 1);
    *item = h[1];
    return pl_is_last(p) ? 0 : send_hdr(p, PL_ITEM, *item, 0, 0, err);
}

int pl_forward(pl_pipe *p, const model_weights *w, fwd_state *st, const int32_t *ids, int n_seq,
               int seq_len, int64_t item, int tag, const fwd_opts *opts, const tap_set *taps,
               const float **logits, vl_err *err)
{
    *logits = NULL;
    if (p->P == 1)
        return fwd_run(p->m, w, st, ids, n_seq, seq_len, opts, taps, logits, err);
    int64_t rows = (int64_t)n_seq * seq_len;
    int64_t bytes = rows * (int64_t)p->width * (int64_t)sizeof *p->h;
    if (rows > p->max_rows || rows <= 0)
        return vl_errf(err, VL_EARG, "pipeline: a batch of %lld rows (room for %lld)",
                       (long long)rows, (long long)p->max_rows);
    int rc = 0;
    if (p->stage == 0) {
        rc = fwd_embed(p->m, w, ids, (int)rows, p->h, err);
    } else {
        int64_t h[PL_HDR];
        if (p->ended)
            return vl_errf(err, VL_EIO, "pipeline: stage %d stopped before item %lld",
                           p->stage - 1, (long long)item);
        if ((rc = recv_hdr(p, h, err)))
            return rc;
        if (h[0] == PL_END)
            return vl_errf(err, VL_EIO, "pipeline: stage %d stopped before item %lld",
                           p->stage - 1, (long long)item);
        if (h[0] != PL_ROWS || h[1] != item || h[2] != bytes || h[3] != tag)
            return vl_errf(err, VL_EIO, "pipeline: stage %d sent item %lld/%lld (%lld bytes), "
                           "expected item %lld/%d (%lld bytes)", p->stage - 1, (long long)h[1],
                           (long long)h[3], (long long)h[2], (long long)item, tag,
                           (long long)bytes);
        rc = par_recv(p->rank - 1, p->h, (size_t)bytes, err);
    }
    if (!rc)
        rc = fwd_run_layers(p->m, w, st, ids, p->l0, p->l1, p->h, n_seq, seq_len, opts, taps,
                            err);
    if (!rc && !pl_is_last(p)) {
        rc = send_hdr(p, PL_ROWS, item, bytes, tag, err);
        if (!rc)
            rc = par_send(p->rank + 1, p->h, (size_t)bytes, err);
    } else if (!rc) {
        rc = fwd_run_from(p->m, w, st, ids, p->L, p->h, n_seq, seq_len, opts, taps, logits, err);
    }
    return rc;
}

int pl_finish(pl_pipe *p, int local_rc, vl_err *err)
{
    if (p->P == 1)
        return local_rc;
    vl_err scratch = {0};
    vl_err *e = local_rc ? &scratch : err; /* keep the first error's message */
    int rc = 0;
    /* drain: a stage that stopped early must still take what its upstream sends */
    while (!rc && p->stage > 0 && !p->ended) {
        int64_t h[PL_HDR];
        if ((rc = recv_hdr(p, h, e)) || h[0] != PL_ROWS)
            continue;
        if (h[2] > p->max_rows * (int64_t)p->width * (int64_t)sizeof *p->h)
            rc = vl_errf(e, VL_EIO, "pipeline: stage %d sent %lld bytes of rows", p->stage - 1,
                         (long long)h[2]);
        else
            rc = par_recv(p->rank - 1, p->h, (size_t)h[2], e);
    }
    if (!rc && !pl_is_last(p))
        rc = send_hdr(p, PL_END, -1, 0, 0, e);
    p->ended = 0;
    return local_rc ? local_rc : rc;
}
