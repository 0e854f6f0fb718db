/* core/par_mpi.c — core/par.h over Open MPI (built by `make MPI=1` with mpicc instead of
 * core/par_serial.c). The group is MPI_COMM_WORLD; errors are returned (MPI_ERRORS_RETURN), so
 * a failed collective becomes a vl_err instead of killing the process without a word. A rank
 * that dies is noticed by the launcher (mpirun/srun), which ends the job.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include "par.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* elements per reduction call: bounds the 256-bit scratch (2 MiB) and keeps counts in int */
#define PAR_CHUNK (1 << 16)

static int mpi_fail(vl_err *err, int mrc, const char *what)
{
    char s[MPI_MAX_ERROR_STRING];
    int n = 0;
    if (MPI_Error_string(mrc, s, &n) != MPI_SUCCESS)
        snprintf(s, sizeof s, "error code %d", mrc);
    return vl_errf(err, VL_EIO, "MPI %s: %s", what, s);
}

static int running(void)
{
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    return init && !fin;
}

int par_init(int *argc, char ***argv, vl_err *err)
{
    int prov = 0, mrc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &prov);
    if (mrc != MPI_SUCCESS)
        return vl_errf(err, VL_EIO, "MPI_Init_thread failed (code %d)", mrc);
    if ((mrc = MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN)) != MPI_SUCCESS)
        return mpi_fail(err, mrc, "errhandler");
    return 0;
}

void par_finalize(int status)
{
    if (!running())
        return;
    if (status && par_size() > 1) {
        /* The job's one error line was just written (by rank 0); mpirun forwards the ranks'
         * output asynchronously and MPI_Abort from any rank can end the job before it does —
         * on a loaded machine the line was lost (test_mpi's item-fault check). Flush and give
         * the forwarding a moment: this path runs only when the job is failing anyway. */
        fflush(NULL);
        struct timespec pause = {0, 300000000}; /* 0.3 s */
        nanosleep(&pause, NULL);
        MPI_Abort(MPI_COMM_WORLD, status); /* ends every rank; does not return */
    }
    MPI_Finalize();
}

int par_rank(void)
{
    int r = 0;
    if (running())
        MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int par_size(void)
{
    int n = 1;
    if (running())
        MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

int par_local_size(void)
{
    if (!running())
        return 1;
    MPI_Comm node;
    int n = 1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) !=
        MPI_SUCCESS)
        return 1;
    MPI_Comm_size(node, &n);
    MPI_Comm_free(&node);
    return n;
}

int par_built(void) { return 1; }

/* Set once the ranks have agreed on a failure: the group is then finished, and every later
 * collective fails at once without communicating, on every rank alike (the ranks agreed at the
 * same call), so ranks that return through different paths cannot wait on each other. It
 * mirrors MPI's own per-process state and is written once. */
static int group_failed;

int par_agree(int local_rc, vl_err *err)
{
    if (par_size() == 1)
        return local_rc;
    if (group_failed) {
        if (!local_rc)
            vl_errf(err, group_failed, "stopped: another rank failed earlier");
        return local_rc ? local_rc : group_failed;
    }
    int me = par_rank(), first = local_rc ? me : INT_MAX;
    int mrc = MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (mrc != MPI_SUCCESS)
        return mpi_fail(err, mrc, "agree");
    if (first == INT_MAX)
        return 0;
    struct {
        int code;
        char msg[VL_ERR_MSG];
    } e = {local_rc, ""};
    if (me == first && err)
        memcpy(e.msg, err->msg, sizeof e.msg);
    if ((mrc = MPI_Bcast(&e, (int)sizeof e, MPI_BYTE, first, MPI_COMM_WORLD)) != MPI_SUCCESS)
        return mpi_fail(err, mrc, "agree");
    e.msg[VL_ERR_MSG - 1] = '\0';
    if (me != first)
        vl_errf(err, e.code, "rank %d: %s", first, e.msg[0] ? e.msg : "failed");
    group_failed = e.code;
    return e.code;
}

/* ---------------------------------------------------------------- exact sums */

typedef struct {
    uint64_t l[FX_LIMBS + 1];
} wide_num;

/* inout += in, 256-bit two's complement (wrap-around: exact for any in-range total) */
static void wide_add(void *in, void *inout, int *len, MPI_Datatype *type)
{
    const wide_num *a = in;
    wide_num *b = inout;
    for (int k = 0; k < *len; k++) {
        uint64_t carry = 0;
        for (int i = 0; i <= FX_LIMBS; i++) {
            uint64_t s = a[k].l[i] + b[k].l[i];
            uint64_t c1 = s < a[k].l[i];
            uint64_t t = s + carry;
            carry = c1 | (t < s);
            b[k].l[i] = t;
        }
    }
}

int par_sum_fx(fx_num *v, size_t n, int local_rc, vl_err *err)
{
    int rc = par_agree(local_rc, err);
    if (rc || par_size() == 1 || n == 0)
        return rc;
    wide_num *w = vl_malloc((n < PAR_CHUNK ? n : PAR_CHUNK) * sizeof *w);
    int bad = !w;
    if ((rc = par_agree(bad ? vl_errf(err, VL_ENOMEM, "out of memory") : 0, err))) {
        vl_free(w);
        return rc;
    }
    MPI_Datatype t;
    MPI_Op op;
    MPI_Type_contiguous(FX_LIMBS + 1, MPI_UINT64_T, &t);
    MPI_Type_commit(&t);
    MPI_Op_create(wide_add, 1, &op);
    size_t out_of_range = 0;
    for (size_t i0 = 0; rc == 0 && i0 < n; i0 += PAR_CHUNK) {
        size_t m = n - i0 < PAR_CHUNK ? n - i0 : PAR_CHUNK;
        for (size_t k = 0; k < m; k++) { /* sign-extend one limb */
            memcpy(w[k].l, v[i0 + k].l, sizeof v->l);
            w[k].l[FX_LIMBS] = (v[i0 + k].l[FX_LIMBS - 1] >> 63) ? ~0ull : 0;
        }
        int mrc = MPI_Allreduce(MPI_IN_PLACE, w, (int)m, t, op, MPI_COMM_WORLD);
        if (mrc != MPI_SUCCESS) {
            rc = mpi_fail(err, mrc, "exact sum");
            break;
        }
        for (size_t k = 0; k < m; k++) { /* back to 192 bits: the top limb must be the sign */
            uint64_t sign = (w[k].l[FX_LIMBS - 1] >> 63) ? ~0ull : 0;
            out_of_range += w[k].l[FX_LIMBS] != sign;
            memcpy(v[i0 + k].l, w[k].l, sizeof v->l);
        }
    }
    MPI_Op_free(&op);
    MPI_Type_free(&t);
    vl_free(w);
    if (rc == 0 && out_of_range) /* same verdict on every rank: the totals are the same */
        rc = vl_errf(err, VL_ERANGE, "exact sum over %d ranks: %zu totals out of the fixed-point "
                     "range (|x| < 2^95)", par_size(), out_of_range);
    return rc;
}

/* v[0..n) reduced in place on every rank with a predefined type and op, in int-sized chunks. */
static int allreduce(void *v, size_t n, size_t elem, MPI_Datatype t, MPI_Op op, int local_rc,
                     vl_err *err)
{
    int rc = par_agree(local_rc, err);
    for (size_t i0 = 0; rc == 0 && par_size() > 1 && i0 < n; i0 += PAR_CHUNK) {
        int m = (int)(n - i0 < PAR_CHUNK ? n - i0 : PAR_CHUNK);
        int mrc = MPI_Allreduce(MPI_IN_PLACE, (char *)v + i0 * elem, m, t, op, MPI_COMM_WORLD);
        if (mrc != MPI_SUCCESS)
            rc = mpi_fail(err, mrc, "reduction");
    }
    return rc;
}

int par_sum_i64(int64_t *v, size_t n, int local_rc, vl_err *err)
{
    return allreduce(v, n, sizeof *v, MPI_INT64_T, MPI_SUM, local_rc, err);
}

int par_max_f64(double *v, size_t n, int local_rc, vl_err *err)
{
    return allreduce(v, n, sizeof *v, MPI_DOUBLE, MPI_MAX, local_rc, err);
}

/* ---------------------------------------------------------------- gathering items */

/* MPI_Allgatherv of per-rank byte counts cnt[R] from send into recv (displacements packed in
 * rank order); counts must fit an int. */
static int allgather_bytes(const void *send, void *recv, const size_t *cnt, vl_err *err)
{
    int R = par_size(), me = par_rank();
    int *c = vl_malloc(2 * (size_t)R * sizeof *c);
    if (!c)
        return vl_errf(err, VL_ENOMEM, "out of memory");
    int *d = c + R;
    size_t off = 0;
    for (int r = 0; r < R; r++) {
        c[r] = (int)cnt[r];
        d[r] = (int)off;
        off += cnt[r];
    }
    int rc = 0;
    if (off > INT_MAX)
        rc = vl_errf(err, VL_ERANGE, "gather of %zu bytes over %d ranks: more than 2 GiB in one "
                     "call", off, R);
    int mrc = rc ? MPI_SUCCESS
                 : MPI_Allgatherv(send, c[me], MPI_BYTE, recv, c, d, MPI_BYTE, MPI_COMM_WORLD);
    if (mrc != MPI_SUCCESS)
        rc = mpi_fail(err, mrc, "gather");
    vl_free(c);
    return rc;
}

/* Round-robin owners i mod R (NULL when out of memory). */
static int *round_robin(int64_t n)
{
    int *o = vl_malloc(((size_t)n + 1) * sizeof *o);
    for (int64_t i = 0; o && i < n; i++)
        o[i] = (int)(i % par_size());
    return o;
}

int par_share_owned(void *base, int64_t n, size_t bytes, size_t stride, const int *owner,
                    int local_rc, vl_err *err)
{
    int rc = par_agree(local_rc, err);
    int R = par_size(), me = par_rank();
    if (rc || R == 1 || n == 0)
        return rc;
    size_t *cnt = vl_calloc((size_t)R, sizeof *cnt), n_mine = 0;
    for (int64_t i = 0; i < n; i++)
        n_mine += owner[i] == me;
    unsigned char *send = vl_malloc((n_mine + 1) * bytes);
    unsigned char *recv = vl_malloc((size_t)n * bytes + 1);
    unsigned char *b = base;
    rc = par_agree(cnt && send && recv ? 0 : vl_errf(err, VL_ENOMEM, "out of memory"), err);
    if (rc == 0) {
        size_t k = 0;
        for (int64_t i = 0; i < n; i++) {
            if (owner[i] == me)
                memcpy(send + bytes * k++, b + (size_t)i * stride, bytes);
            if (owner[i] >= 0)
                cnt[owner[i]] += bytes;
        }
        rc = allgather_bytes(send, recv, cnt, err);
    }
    if (rc == 0) { /* rank r's block holds its items in increasing order */
        const unsigned char *p = recv;
        for (int r = 0; r < R; r++)
            for (int64_t i = 0; i < n; i++)
                if (owner[i] == r) {
                    memcpy(b + (size_t)i * stride, p, bytes);
                    p += bytes;
                }
    }
    vl_free(cnt);
    vl_free(send);
    vl_free(recv);
    return rc;
}

int par_share(void *base, int64_t n, size_t bytes, size_t stride, int local_rc, vl_err *err)
{
    int *o = round_robin(n);
    int rc = par_share_owned(base, n, bytes, stride, o,
                             o || local_rc ? local_rc : vl_errf(err, VL_ENOMEM, "out of memory"),
                             err);
    vl_free(o);
    return rc;
}

int par_concat_owned(const void *mine, void *all, const int64_t *len, const int *owner,
                     int64_t n_items, size_t bytes, int local_rc, vl_err *err)
{
    int rc = par_agree(local_rc, err);
    int R = par_size();
    if (rc)
        return rc;
    size_t tot = 0;
    for (int64_t i = 0; i < n_items; i++)
        tot += (size_t)len[i] * bytes;
    if (R == 1) {
        if (mine != all && tot)
            memmove(all, mine, tot);
        return 0;
    }
    size_t *cnt = vl_calloc((size_t)R, sizeof *cnt);
    unsigned char *recv = vl_malloc(tot ? tot : 1);
    rc = par_agree(cnt && recv ? 0 : vl_errf(err, VL_ENOMEM, "out of memory"), err);
    if (rc == 0) {
        for (int64_t i = 0; i < n_items; i++)
            if (owner[i] >= 0)
                cnt[owner[i]] += (size_t)len[i] * bytes;
        rc = allgather_bytes(mine, recv, cnt, err);
    }
    if (rc == 0) { /* walk each rank's block in its item order */
        size_t *at = vl_malloc((size_t)R * sizeof *at);
        if (!at)
            rc = vl_errf(err, VL_ENOMEM, "out of memory"); /* local only: collectives are done */
        size_t off = 0, out = 0;
        for (int r = 0; at && r < R; r++) {
            at[r] = off;
            off += cnt[r];
        }
        for (int64_t i = 0; at && i < n_items; i++) {
            size_t nb = (size_t)len[i] * bytes;
            if (owner[i] >= 0) {
                memcpy((unsigned char *)all + out, recv + at[owner[i]], nb);
                at[owner[i]] += nb;
            }
            out += nb;
        }
        vl_free(at);
    }
    vl_free(cnt);
    vl_free(recv);
    return rc;
}

int par_concat(const void *mine, void *all, const int64_t *len, int64_t n_items, size_t bytes,
               int local_rc, vl_err *err)
{
    int *o = round_robin(n_items);
    int rc = par_concat_owned(mine, all, len, o, n_items, bytes,
                              o || local_rc ? local_rc
                                            : vl_errf(err, VL_ENOMEM, "out of memory"),
                              err);
    vl_free(o);
    return rc;
}

int par_owners(int *owner, int64_t n, int local_rc, vl_err *err)
{
    return allreduce(owner, (size_t)n, sizeof *owner, MPI_INT, MPI_MAX, local_rc, err);
}

/* ---------------------------------------------------------------- the work queue */

struct par_queue {
    MPI_Win win;
    int64_t *counter; /* rank 0's window: the next item to hand out */
    int64_t n;
};

int par_queue_new(par_queue **out, int64_t n, int local_rc, vl_err *err)
{
    *out = NULL;
    par_queue *q = vl_calloc(1, sizeof *q);
    int rc = par_agree(local_rc ? local_rc : q ? 0 : vl_errf(err, VL_ENOMEM, "out of memory"),
                       err);
    if (rc) {
        vl_free(q);
        return rc;
    }
    q->n = n;
    MPI_Aint sz = par_rank() == 0 ? (MPI_Aint)sizeof(int64_t) : 0;
    int mrc = MPI_Win_allocate(sz, (int)sizeof(int64_t), MPI_INFO_NULL, MPI_COMM_WORLD,
                               &q->counter, &q->win);
    if (mrc != MPI_SUCCESS) { /* collective: every rank gets the failure */
        vl_free(q);
        return mpi_fail(err, mrc, "work queue window");
    }
    if (par_rank() == 0) { /* the window's own memory, written under its lock */
        MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, q->win);
        *q->counter = 0;
        MPI_Win_unlock(0, q->win);
    }
    if ((mrc = MPI_Barrier(MPI_COMM_WORLD)) != MPI_SUCCESS) {
        MPI_Win_free(&q->win);
        vl_free(q);
        return mpi_fail(err, mrc, "work queue");
    }
    *out = q;
    return 0;
}

int par_queue_next(par_queue *q, int64_t *item, vl_err *err)
{
    int64_t one = 1, got = 0;
    *item = -1;
    int mrc = MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, q->win);
    if (mrc == MPI_SUCCESS)
        mrc = MPI_Fetch_and_op(&one, &got, MPI_INT64_T, 0, 0, MPI_SUM, q->win);
    int urc = MPI_Win_unlock(0, q->win); /* completes the fetch */
    if (mrc != MPI_SUCCESS || urc != MPI_SUCCESS)
        return mpi_fail(err, mrc != MPI_SUCCESS ? mrc : urc, "work queue");
    *item = got < q->n ? got : -1;
    return 0;
}

void par_queue_free(par_queue *q)
{
    if (!q)
        return;
    MPI_Win_free(&q->win);
    vl_free(q);
}

/* ---------------------------------------------------------------- point to point */

#define PAR_P2P_CHUNK (1 << 30) /* bytes per message: MPI counts are int */
#define PAR_P2P_TAG 18

int par_send(int dest, const void *buf, size_t bytes, vl_err *err)
{
    const unsigned char *p = buf;
    do {
        int n = bytes > PAR_P2P_CHUNK ? PAR_P2P_CHUNK : (int)bytes;
        int mrc = MPI_Send(p, n, MPI_BYTE, dest, PAR_P2P_TAG, MPI_COMM_WORLD);
        if (mrc != MPI_SUCCESS)
            return mpi_fail(err, mrc, "send");
        p += n;
        bytes -= (size_t)n;
    } while (bytes > 0);
    return 0;
}

int par_recv(int src, void *buf, size_t bytes, vl_err *err)
{
    unsigned char *p = buf;
    do {
        int n = bytes > PAR_P2P_CHUNK ? PAR_P2P_CHUNK : (int)bytes;
        int mrc = MPI_Recv(p, n, MPI_BYTE, src, PAR_P2P_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (mrc != MPI_SUCCESS)
            return mpi_fail(err, mrc, "receive");
        p += n;
        bytes -= (size_t)n;
    } while (bytes > 0);
    return 0;
}
