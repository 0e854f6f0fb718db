/* core/par.h — data parallelism across processes: rank, size, exact reductions, work items.
 *
 * One interface, two implementations chosen by the build: core/par_serial.c (the default build,
 * no MPI needed: one process, rank 0 of 1, every collective a no-op) and core/par_mpi.c
 * (`make MPI=1`, Open MPI through mpicc: the ranks of MPI_COMM_WORLD). Library code calls these
 * functions unconditionally and never sees MPI, so there is no #ifdef outside this module.
 *
 * The group is the process's own (MPI_COMM_WORLD, which MPI keeps per process); par keeps only
 * a failed-group flag beside it (below). Until par_init, and in the serial build, rank is 0 and
 * size is 1.
 *
 * Work distribution: static round-robin, or dynamic. Round-robin: item i (a batch of
 * sequences) belongs to rank i mod size (par_mine). Dynamic (par_queue; sensitivity units,
 * evaluation sequence blocks): rank 0 holds a counter and hands out the next item to whichever
 * rank asks, so a rank that finishes early takes more. Either way every rank computes the same
 * item list, runs the items it owns, and a collective call brings the results together in item
 * order (par_owners tells every rank who ran what), so the result does not depend on the
 * number of ranks or on who ran which item: R ranks give the bits of one.
 *
 * Collectives: every rank must call the same collectives in the same order with the same sizes
 * (they are MPI collectives). The `local_rc` argument carries the caller's status into the
 * call: the ranks first agree on it, and if any rank failed, every rank returns that rank's
 * error (the first failing rank's message, prefixed "rank N: ") instead of hanging in a
 * collective the failed rank never reaches. After such a failure every later collective fails
 * at once on every rank, without communicating (the group is finished; the CLI then ends the
 * job). MPI errors come back as VL_EIO ("MPI ...: ...").
 *
 * Exact sums: fx_num totals (core/fx.h) are reduced as 256-bit integers (the 192-bit value
 * sign-extended by one limb, so R < 2^63 in-range terms cannot wrap), then narrowed back with a
 * range check (VL_ERANGE when the total leaves fx range). Integer addition is associative and
 * commutative, so the reduction order of the MPI library cannot change a bit.
 */
#ifndef VL_PAR_H
#define VL_PAR_H

#include "err.h"
#include "fx.h"

#include <stddef.h>
#include <stdint.h>

/* Start the parallel runtime (MPI_Init_thread with MPI_THREAD_FUNNELED, errors returned, not
 * fatal). Serial build: nothing. Call once from main before anything else. */
int par_init(int *argc, char ***argv, vl_err *err);
/* End it. status 0: an orderly finalize; non-zero with size > 1: abort every rank with that
 * exit status (a rank that failed alone must not leave the others waiting in a collective). */
void par_finalize(int status);

int par_rank(void);       /* this process's rank, 0 .. size−1 */
int par_size(void);       /* number of ranks */
int par_local_size(void); /* ranks on this node (shares its cores) */
int par_built(void);      /* 1 in the MPI build */

/* Is item i this rank's (i mod size == rank)? */
static inline int par_mine(int64_t i) { return (int)(i % par_size()) == par_rank(); }

/* Agree on a status: 0 when local_rc is 0 on every rank, else the error of the lowest failing
 * rank on every rank (err filled with its message, "rank N: " in front when N is not us). */
int par_agree(int local_rc, vl_err *err);

/* v[0..n) := Σ over ranks, exactly, on every rank. */
int par_sum_fx(fx_num *v, size_t n, int local_rc, vl_err *err);
/* v[0..n) := Σ over ranks (int64, exact) on every rank. */
int par_sum_i64(int64_t *v, size_t n, int local_rc, vl_err *err);
/* v[0..n) := max over ranks on every rank. */
int par_max_f64(double *v, size_t n, int local_rc, vl_err *err);

/* Round-robin items of a strided array: base holds n items, item i at base + i·stride, each
 * `bytes` long (bytes ≤ stride). Rank i mod size has filled item i; afterwards every rank holds
 * every item (the owner's bytes). */
int par_share(void *base, int64_t n, size_t bytes, size_t stride, int local_rc, vl_err *err);

/* Concatenation in item order of variable-length runs. Items 0..n_items−1 are owned round-
 * robin; item i has len[i] elements of `bytes` each (len known to every rank). On entry `mine`
 * holds this rank's items back to back in increasing item order; on return `all` (room for
 * Σ len elements) holds every item in item order, on every rank. */
int par_concat(const void *mine, void *all, const int64_t *len, int64_t n_items, size_t bytes,
               int local_rc, vl_err *err);

/* ---- dynamic scheduling ----
 * A work queue over items 0 .. n−1 (n known to every rank): par_queue_next gives this rank the
 * lowest item nobody has taken yet (rank 0's counter, advanced by an atomic fetch-and-add that
 * the asking rank performs: MPI one-sided, passive target, so rank 0 need not be idle to
 * serve), or −1 when all are taken. The items a rank gets increase, so its results can be
 * kept back to back in item order (par_concat_owned). Serial build: 0, 1, .., n−1.
 * par_queue_new and par_queue_free are collectives (every rank, same order); between them a
 * rank may stop asking at any time (after a failure: the others take the rest), but must still
 * reach par_queue_free before any other collective. */
typedef struct par_queue par_queue;
int par_queue_new(par_queue **out, int64_t n, int local_rc, vl_err *err);
int par_queue_next(par_queue *q, int64_t *item, vl_err *err);
void par_queue_free(par_queue *q); /* NULL: no-op (then on every rank) */

/* owner[0..n): on entry this rank's items hold par_rank(), every other entry −1; on return the
 * rank that ran each item, on every rank (−1: nobody, e.g. an item every rank restored). */
int par_owners(int *owner, int64_t n, int local_rc, vl_err *err);
/* par_share / par_concat with explicit owners (owner[] the same on every rank, as par_owners
 * leaves it); items owned by −1 are left as they are (par_share_owned) or must be empty
 * (par_concat_owned: len 0). */
int par_share_owned(void *base, int64_t n, size_t bytes, size_t stride, const int *owner,
                    int local_rc, vl_err *err);
int par_concat_owned(const void *mine, void *all, const int64_t *len, const int *owner,
                     int64_t n_items, size_t bytes, int local_rc, vl_err *err);

/* ---- point to point (the pipeline, analysis/pipeline.h) ----
 * Send `bytes` from buf to rank dest / receive exactly `bytes` from rank src into buf, in
 * order (MPI preserves the order of messages between two ranks). Blocking; large transfers go
 * in pieces of 1 GiB. Not collectives: only the two ranks take part. Serial build: VL_EARG
 * (there is no other rank). */
int par_send(int dest, const void *buf, size_t bytes, vl_err *err);
int par_recv(int src, void *buf, size_t bytes, vl_err *err);

/* A simulated crash for the fault tests: rank `rank` fails its item number `item` (counted
 * over the items it runs, from 0, across every call that is given the same record) with VL_EIO
 * "simulated failure". rank < 0: never. The CLI fills it from VBRLAB_FAIL_ITEM=RANK:ITEM. */
typedef struct {
    int rank;
    int64_t item;
    int64_t seen; /* items this rank has started */
} par_fault;

static inline int par_fault_hit(par_fault *f, vl_err *err)
{
    if (!f || f->rank != par_rank() || f->seen++ != f->item)
        return 0;
    return vl_errf(err, VL_EIO, "simulated failure at work item %lld (VBRLAB_FAIL_ITEM)",
                   (long long)f->item);
}

#endif
