/* alloc/qcache.c — the quantized-tensor cache (qcache.h): a chained hash table under a mutex. */
#include "qcache.h"

#include "../core/hash.h"

#include <pthread.h>
#include <string.h>

enum { QC_BUCKETS = 4096 };

typedef struct qc_entry {
    qcache_key k;
    size_t n;
    uint8_t *data;
    struct qc_entry *next;
} qc_entry;

struct qcache {
    pthread_mutex_t mu;
    size_t cap, bytes;
    int64_t hits, misses, entries;
    qc_entry *b[QC_BUCKETS];
};

int qcache_new(qcache **out, size_t cap_bytes, vl_err *err)
{
    qcache *c = vl_calloc(1, sizeof *c);
    if (!c || pthread_mutex_init(&c->mu, NULL)) {
        vl_free(c);
        return vl_errf(err, VL_ENOMEM, "quantized-tensor cache: out of memory");
    }
    c->cap = cap_bytes;
    *out = c;
    return 0;
}

void qcache_free(qcache *c)
{
    if (!c) return;
    for (int i = 0; i < QC_BUCKETS; i++)
        for (qc_entry *e = c->b[i], *nx; e; e = nx) {
            nx = e->next;
            vl_free(e->data);
            vl_free(e);
        }
    pthread_mutex_destroy(&c->mu);
    vl_free(c);
}

/* Two word hashes of n bytes (SplitMix64 over 8-byte words, the tail zero-padded, the length
 * mixed in), seeded differently. */
static void hash2(const void *p, size_t n, uint64_t seed, uint64_t out[2])
{
    const uint8_t *b = p;
    uint64_t h0 = hash_mix64(seed ^ n), h1 = hash_mix64(~seed ^ (n * 0x9e3779b97f4a7c15ULL));
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, b + i, 8);
        h0 = hash_mix64(h0 ^ v);
        h1 = hash_mix64(h1 + v * 0xff51afd7ed558ccdULL);
    }
    if (i < n) {
        uint64_t v = 0;
        memcpy(&v, b + i, n - i);
        h0 = hash_mix64(h0 ^ v);
        h1 = hash_mix64(h1 + v * 0xff51afd7ed558ccdULL);
    }
    out[0] = h0, out[1] = h1;
}

void qcache_key_make(qcache_key *k, int t, const float *w, int rows, int cols, const float *imp)
{
    memset(k, 0, sizeof *k);
    k->type = t, k->rows = rows, k->cols = cols;
    hash2(w, (size_t)rows * (size_t)cols * sizeof *w, 0x71636163686577ULL, k->h);
    if (imp)
        hash2(imp, (size_t)cols * sizeof *imp, 0x71636163686569ULL, k->h + 2);
    else
        k->h[2] = k->h[3] = 0x756e69666f726dULL; /* "uniform" */
}

static int key_eq(const qcache_key *a, const qcache_key *b)
{
    return a->type == b->type && a->rows == b->rows && a->cols == b->cols &&
           !memcmp(a->h, b->h, sizeof a->h);
}

static qc_entry *find(qcache *c, const qcache_key *k)
{
    for (qc_entry *e = c->b[k->h[0] % QC_BUCKETS]; e; e = e->next)
        if (key_eq(&e->k, k)) return e;
    return NULL;
}

int qcache_get(qcache *c, const qcache_key *k, uint8_t *dst, size_t n)
{
    pthread_mutex_lock(&c->mu);
    qc_entry *e = find(c, k);
    int hit = e && e->n == n;
    if (hit)
        memcpy(dst, e->data, n), c->hits++;
    else
        c->misses++;
    pthread_mutex_unlock(&c->mu);
    return hit;
}

void qcache_put(qcache *c, const qcache_key *k, const uint8_t *src, size_t n)
{
    pthread_mutex_lock(&c->mu);
    if (!find(c, k) && c->bytes + n <= c->cap) {
        qc_entry *e = vl_malloc(sizeof *e);
        uint8_t *d = vl_malloc(n ? n : 1);
        if (e && d) {
            memcpy(d, src, n);
            e->k = *k, e->n = n, e->data = d;
            e->next = c->b[k->h[0] % QC_BUCKETS];
            c->b[k->h[0] % QC_BUCKETS] = e;
            c->bytes += n, c->entries++;
        } else {
            vl_free(e), vl_free(d);
        }
    }
    pthread_mutex_unlock(&c->mu);
}

void qcache_counts_get(qcache *c, qcache_counts *out)
{
    pthread_mutex_lock(&c->mu);
    out->hits = c->hits, out->misses = c->misses, out->entries = c->entries;
    out->bytes = c->bytes;
    pthread_mutex_unlock(&c->mu);
}
