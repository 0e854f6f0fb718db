/* tests/test_qcache.c — the quantized-tensor cache (alloc/qcache.h) and ggf_fake_quant around
 * it: a hit gives the bytes a recomputation gives, keys follow the data (weights, importance,
 * type, shape), the byte cap drops puts, and fake quantization is independent of the cache, of
 * the thread count and of the importance's scale (it reaches the quantizer as imp / max imp). */
#include "../alloc/ggml_fmt.h"
#include "../alloc/qcache.h"
#include "../core/kern.h"
#include "../core/rng.h"
#include "check.h"

#include <math.h>
#include <string.h>

static void fill(float *w, int n, uint64_t seed)
{
    rng *r = NULL;
    if (rng_new(&r, seed, NULL)) return;
    for (int i = 0; i < n; i++) w[i] = (float)rng_gaussian(r, 0.02);
    rng_free(r);
}

static void test_cache(chk *c)
{
    enum { R = 4, C = 256 };
    static float w[R * C], imp[C];
    fill(w, R * C, 1);
    for (int j = 0; j < C; j++) imp[j] = 1.0f + (float)(j % 7);
    qcache *q = NULL;
    CHECK(c, qcache_new(&q, 1000, NULL) == 0, "new");
    if (!q) return;
    qcache_key k, k2;
    qcache_key_make(&k, GGF_Q4_K, w, R, C, imp);
    uint8_t a[600], b[600];
    for (int i = 0; i < 600; i++) a[i] = (uint8_t)(i * 7);
    CHECK(c, !qcache_get(q, &k, b, 600), "empty cache: a miss");
    qcache_put(q, &k, a, 600);
    memset(b, 0, sizeof b);
    CHECK(c, qcache_get(q, &k, b, 600) && !memcmp(a, b, 600), "a hit gives the stored bytes");
    CHECK(c, !qcache_get(q, &k, b, 599), "another length is a miss");
    qcache_key_make(&k2, GGF_Q4_K, w, R, C, imp);
    CHECK(c, !memcmp(&k, &k2, sizeof k), "the same data makes the same key");
    w[77] = nextafterf(w[77], 1.0f);
    qcache_key_make(&k2, GGF_Q4_K, w, R, C, imp);
    CHECK(c, !qcache_get(q, &k2, b, 600), "one weight one ulp away: another key");
    w[77] = nextafterf(w[77], -1.0f);
    imp[3] *= 2;
    qcache_key_make(&k2, GGF_Q4_K, w, R, C, imp);
    CHECK(c, !qcache_get(q, &k2, b, 600), "another importance: another key");
    imp[3] /= 2;
    qcache_key_make(&k2, GGF_Q4_K, w, R, C, NULL);
    CHECK(c, !qcache_get(q, &k2, b, 600), "uniform importance: another key");
    qcache_key_make(&k2, GGF_Q5_K, w, R, C, imp);
    CHECK(c, !qcache_get(q, &k2, b, 600), "another type: another key");
    qcache_key_make(&k2, GGF_Q4_K, w, 2 * R, C / 2, imp);
    CHECK(c, !qcache_get(q, &k2, b, 600), "another shape of the same bytes: another key");
    qcache_put(q, &k2, a, 401); /* 600 + 401 > 1000 */
    CHECK(c, !qcache_get(q, &k2, b, 401), "a put past the byte cap is dropped");
    qcache_counts n;
    qcache_counts_get(q, &n);
    CHECK(c, n.hits == 1 && n.misses == 8 && n.entries == 1 && n.bytes == 600,
          "counts: %lld hits, %lld misses, %lld entries, %zu bytes", (long long)n.hits,
          (long long)n.misses, (long long)n.entries, n.bytes);
    qcache_free(q);
}

static void test_fake_quant(chk *c)
{
    enum { R = 24, C = 512 };
    static float w[R * C], o1[R * C], o2[R * C], o3[R * C];
    static double imp[C], imp4[C];
    fill(w, R * C, 2);
    for (int j = 0; j < C; j++) imp[j] = 0.5 + (double)((j * 37) % 11), imp4[j] = 4 * imp[j];
    static const ggf_type types[] = {GGF_IQ2_XS, GGF_IQ3_XXS, GGF_Q2_K, GGF_IQ1_S};
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        ggf_type t = types[ti];
        const char *nm = ggf_get(t)->name;
        qcache *q = NULL;
        vl_err err = {0, ""};
        if (qcache_new(&q, (size_t)1 << 24, &err)) return;
        int saved = kern_threads();
        kern_set_threads(1);
        int rc = ggf_fake_quant(o1, w, R, C, t, imp, NULL, "w", &err);
        kern_set_threads(2);
        rc |= ggf_fake_quant(o2, w, R, C, t, imp, q, "w", &err);
        CHECK(c, rc == 0 && !memcmp(o1, o2, sizeof o1), "%s: 1 thread, no cache = 2 threads "
              "with a cache (%s)", nm, err.msg);
        rc = ggf_fake_quant(o3, w, R, C, t, imp4, q, "w", &err);
        qcache_counts n;
        qcache_counts_get(q, &n);
        CHECK(c, rc == 0 && !memcmp(o1, o3, sizeof o1) && n.hits == 1 && n.misses == 1,
              "%s: 4 × the importance is the same quantizer input: a hit, the same floats "
              "(%lld hits)", nm, (long long)n.hits);
        double e = 0, e0 = 0;
        for (int i = 0; i < R * C; i++)
            e += (double)(o1[i] - w[i]) * (o1[i] - w[i]), e0 += (double)w[i] * w[i];
        CHECK(c, e > 0 && e < 0.5 * e0, "%s: a quantization (relative error %.3f)", nm, e / e0);
        kern_set_threads(saved);
        qcache_free(q);
    }
    vl_err err = {0, ""};
    imp[5] = NAN;
    int rc = ggf_fake_quant(o1, w, R, C, GGF_Q4_K, imp, NULL, "blk.0.x", &err);
    CHECK(c, rc == VL_ERANGE && strstr(err.msg, "blk.0.x") && strstr(err.msg, "importance 5"),
          "a NaN importance is refused: %s", err.msg);
    imp[5] = -1;
    rc = ggf_fake_quant(o1, w, R, C, GGF_Q4_K, imp, NULL, "blk.0.x", &err);
    CHECK(c, rc == VL_ERANGE, "a negative importance is refused: %s", err.msg);
    imp[5] = 1;
    w[3 * C + 9] = INFINITY;
    rc = ggf_fake_quant(o1, w, R, C, GGF_Q4_K, imp, NULL, "blk.0.x", &err);
    CHECK(c, rc == VL_ERANGE && strstr(err.msg, "blk.0.x") && strstr(err.msg, "row 3"),
          "an infinite weight is refused with the tensor named: %s", err.msg);
    rc = ggf_fake_quant(o1, w, R, 100, GGF_Q4_K, imp, NULL, "blk.0.x", &err);
    CHECK(c, rc == VL_ESHAPE, "100 columns are no q4_K row: %s", err.msg);
}

int main(void)
{
    chk c;
    chk_init(&c, "qcache");
    test_cache(&c);
    test_fake_quant(&c);
    return chk_done(&c);
}
