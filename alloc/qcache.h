/* alloc/qcache.h — a run's cache of quantized tensors in ggml's packed layout, keyed by what
 * the quantizer reads: the type, the shape, the weights and the importance vector (hashed).
 *
 * Why: an experiment quantizes the same tensor in the same format with the same statistics
 * several times — the RD table of a set, the additivity check's copy of that set's quantized
 * model, and every allocation or uniform row of that set at evaluation. The ggml quantizers are
 * deterministic functions of (type, weights, importance), so a hit returns the very bytes a
 * recomputation would give: results never depend on the cache, only the time does.
 *
 * Keys hash the data itself (two independent 64-bit word hashes of the weights and of the
 * importance as the quantizer receives it), not names, so two callers that quantize the same
 * tensor with the same importance share an entry without knowing of each other. Entries are
 * never evicted: a put that would exceed the byte cap is dropped (the tensor is then simply
 * quantized again next time). Thread-safe (one mutex; the work happens outside it).
 */
#ifndef VL_QCACHE_H
#define VL_QCACHE_H

#include "../core/err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct qcache qcache;

typedef struct {
    uint64_t h[4]; /* weights (2 hashes), importance (2 hashes; fixed values for none) */
    int type, rows, cols;
} qcache_key;

typedef struct {
    int64_t hits, misses, entries;
    size_t bytes; /* packed bytes held */
} qcache_counts;

/* A cache of at most cap_bytes packed bytes. VL_ENOMEM. */
int qcache_new(qcache **out, size_t cap_bytes, vl_err *err);
void qcache_free(qcache *c);

/* Key of type t, w [rows × cols] float32 and imp [cols] (NULL = uniform). */
void qcache_key_make(qcache_key *k, int t, const float *w, int rows, int cols, const float *imp);

/* Copy the entry of k (n bytes) into dst and return 1; 0 when absent (a miss is counted). */
int qcache_get(qcache *c, const qcache_key *k, uint8_t *dst, size_t n);

/* Store n bytes under k (a copy). Dropped when the cap would be exceeded, memory is short or
 * k is already present. */
void qcache_put(qcache *c, const qcache_key *k, const uint8_t *src, size_t n);

void qcache_counts_get(qcache *c, qcache_counts *out);

#endif
