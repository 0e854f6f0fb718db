/* core/par_serial.c — core/par.h for the default build: one process, rank 0 of 1. Every
 * collective is the identity (the caller already holds every item and every term), so the
 * library runs exactly as it did before par existed. Replaced by par_mpi.c under MPI=1. */
#include "par.h"

#include <string.h>

int par_init(int *argc, char ***argv, vl_err *err) { return 0; }
void par_finalize(int status) {}

int par_rank(void) { return 0; }
int par_size(void) { return 1; }
int par_local_size(void) { return 1; }
int par_built(void) { return 0; }

/* one rank: its own status is the verdict, its own message already in err */
int par_agree(int local_rc, vl_err *err) { return local_rc; }

int par_sum_fx(fx_num *v, size_t n, int local_rc, vl_err *err) { return local_rc; }
int par_sum_i64(int64_t *v, size_t n, int local_rc, vl_err *err) { return local_rc; }
int par_max_f64(double *v, size_t n, int local_rc, vl_err *err) { return local_rc; }

int par_share(void *base, int64_t n, size_t bytes, size_t stride, int local_rc, vl_err *err)
{
    return local_rc;
}

int par_concat(const void *mine, void *all, const int64_t *len, int64_t n_items, size_t bytes,
               int local_rc, vl_err *err)
{
    if (local_rc)
        return local_rc;
    size_t tot = 0;
    for (int64_t i = 0; i < n_items; i++)
        tot += (size_t)len[i] * bytes;
    if (mine != all && tot)
        memmove(all, mine, tot);
    return 0;
}

struct par_queue {
    int64_t n, next;
};

int par_queue_new(par_queue **out, int64_t n, int local_rc, vl_err *err)
{
    *out = NULL;
    if (local_rc)
        return local_rc;
    if (!(*out = vl_calloc(1, sizeof **out)))
        return vl_errf(err, VL_ENOMEM, "out of memory");
    (*out)->n = n;
    return 0;
}

int par_queue_next(par_queue *q, int64_t *item, vl_err *err)
{
    *item = q->next < q->n ? q->next++ : -1;
    return 0;
}

void par_queue_free(par_queue *q) { vl_free(q); }

int par_owners(int *owner, int64_t n, int local_rc, vl_err *err) { return local_rc; }

int par_share_owned(void *base, int64_t n, size_t bytes, size_t stride, const int *owner,
                    int local_rc, vl_err *err)
{
    return local_rc;
}

int par_concat_owned(const void *mine, void *all, const int64_t *len, const int *owner,
                     int64_t n_items, size_t bytes, int local_rc, vl_err *err)
{
    return par_concat(mine, all, len, n_items, bytes, local_rc, err);
}

int par_send(int dest, const void *buf, size_t bytes, vl_err *err)
{
    return vl_errf(err, VL_EARG, "send to rank %d: the serial build has one rank", dest);
}

int par_recv(int src, void *buf, size_t bytes, vl_err *err)
{
    return vl_errf(err, VL_EARG, "receive from rank %d: the serial build has one rank", src);
}
