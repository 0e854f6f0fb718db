/* tests/qtest.h — small deterministic generators shared by the quantizer tests (header-only).
 *
 * A xorshift64* stream, Gaussian samples (Box–Muller), random weight matrices and a
 * "real-looking" Hessian proxy H = XᵀX of correlated inputs: X = Z·A with Z Gaussian and A a
 * random mixing matrix with a few strong channels, so H has a wide spectrum and off-diagonal
 * mass, like activation statistics of a transformer layer.
 */
#ifndef VL_QTEST_H
#define VL_QTEST_H

#include "../core/kern.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    uint64_t s;
} qt_rng;

static inline uint64_t qt_next(qt_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [0, 1). */
static inline double qt_unif(qt_rng *r) { return (double)(qt_next(r) >> 11) * 0x1.0p-53; }

static inline double qt_gauss(qt_rng *r)
{
    double u = qt_unif(r), v = qt_unif(r);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

/* Uniform integer in [lo, hi]. */
static inline int qt_int(qt_rng *r, int lo, int hi)
{
    return lo + (int)(qt_next(r) % (uint64_t)(hi - lo + 1));
}

/* rows × cols Gaussian matrix times sd (caller frees). */
static inline float *qt_matrix(qt_rng *r, int rows, int cols, double sd)
{
    float *w = malloc((size_t)rows * cols * sizeof *w);
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        w[i] = (float)(sd * qt_gauss(r));
    return w;
}

/* H = XᵀX [k × k] float64 of T correlated inputs (caller frees). */
static inline double *qt_hessian(qt_rng *r, int T, int k)
{
    float *a = malloc((size_t)k * k * sizeof *a), *z = qt_matrix(r, T, k, 1.0);
    float *x = malloc((size_t)T * k * sizeof *x);
    for (int i = 0; i < k; i++) /* mixing: identity-ish plus dense correlations */
        for (int j = 0; j < k; j++)
            a[(size_t)i * k + j] = (float)((i == j ? 1.0 : 0.0) + 0.3 * qt_gauss(r) / sqrt(k));
    for (int j = 0; j < k; j++) /* a few strong channels, as in real activations */
        if (j % 17 == 3)
            for (int i = 0; i < k; i++)
                a[(size_t)i * k + j] *= 8.0f;
    kern_matmul(x, z, a, T, k, k, 0); /* x = z · aᵀ */
    double *h = calloc((size_t)k * k, sizeof *h);
    kern_xtx_acc(h, x, T, k);
    free(a);
    free(z);
    free(x);
    return h;
}

#endif
