/* alloc/hadamard.c — seeded sign flips + block-wise normalized fast Walsh–Hadamard transform.
 *
 * Float rows go through a float64 scratch row so that rotating and unrotating a float32 matrix
 * loses only the final rounding to float32 (round trip error ~1e-7 relative).
 */
#include "hadamard.h"

#include "../core/err.h"
#include "../core/hash.h"

#include <math.h>

int had_sign(uint64_t seed, int j)
{
    /* SplitMix64 at position j of the stream seeded by seed: a stateless hash of (seed, j) */
    uint64_t h = hash_mix64(seed + 0x9e3779b97f4a7c15ULL * (uint64_t)j);
    return (h >> 63) ? -1 : 1;
}

/* In-place normalized FWHT of x[0..k), k a power of two: x ← H_k·x / √k. */
static void fwht(double *x, int k)
{
    for (int len = 1; len < k; len <<= 1)
        for (int i = 0; i < k; i += len << 1)
            for (int j = i; j < i + len; j++) {
                double a = x[j], b = x[j + len];
                x[j] = a + b;
                x[j + len] = a - b;
            }
    double s = 1.0 / sqrt((double)k);
    for (int i = 0; i < k; i++)
        x[i] *= s;
}

/* Largest power of two <= m (m >= 1). */
static int pow2_floor(int m)
{
    int k = 1;
    while (k <= m / 2)
        k <<= 1;
    return k;
}

/* Blocks of the binary expansion of n, largest first; H_k/√k is symmetric and orthonormal. */
static void blocks_fwht(double *x, int n)
{
    for (int off = 0; off < n;) {
        int k = pow2_floor(n - off);
        fwht(x + off, k);
        off += k;
    }
}

/* x ← R·x (dir > 0) or Rᵀ·x (dir < 0). R = B·S with B block-diagonal symmetric, S = diag(s). */
static void transform(double *x, int n, uint64_t seed, int dir)
{
    if (dir > 0) {
        for (int j = 0; j < n; j++)
            x[j] *= had_sign(seed, j);
        blocks_fwht(x, n);
    } else {
        blocks_fwht(x, n);
        for (int j = 0; j < n; j++)
            x[j] *= had_sign(seed, j);
    }
}

static int rows_f32(float *w, int rows, int n, uint64_t seed, int dir, vl_err *err)
{
    VL_ASSERT(rows >= 0 && n >= 1);
    double *buf = vl_malloc((size_t)n * sizeof *buf);
    if (!buf)
        return vl_errf(err, VL_ENOMEM, "hadamard: out of memory for a row of %d", n);
    for (int i = 0; i < rows; i++) {
        float *r = w + (size_t)i * n;
        for (int j = 0; j < n; j++)
            buf[j] = r[j];
        transform(buf, n, seed, dir);
        for (int j = 0; j < n; j++)
            r[j] = (float)buf[j];
    }
    vl_free(buf);
    return 0;
}

int had_rotate_rows(float *w, int rows, int n, uint64_t seed, vl_err *err)
{
    return rows_f32(w, rows, n, seed, 1, err);
}

int had_unrotate_rows(float *w, int rows, int n, uint64_t seed, vl_err *err)
{
    return rows_f32(w, rows, n, seed, -1, err);
}

void had_rotate_rows_f64(double *a, int rows, int n, uint64_t seed)
{
    VL_ASSERT(rows >= 0 && n >= 1);
    for (int i = 0; i < rows; i++)
        transform(a + (size_t)i * n, n, seed, 1);
}

void had_rotate_sym(double *h, int n, uint64_t seed)
{
    /* rows: A = H·Rᵀ; transpose: Aᵀ = R·H; rows again: R·H·Rᵀ (H symmetric). */
    had_rotate_rows_f64(h, n, n, seed);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double t = h[(size_t)i * n + j];
            h[(size_t)i * n + j] = h[(size_t)j * n + i];
            h[(size_t)j * n + i] = t;
        }
    had_rotate_rows_f64(h, n, n, seed);
    for (int i = 0; i < n; i++) /* symmetrize the last rounding */
        for (int j = i + 1; j < n; j++) {
            double m = 0.5 * (h[(size_t)i * n + j] + h[(size_t)j * n + i]);
            h[(size_t)i * n + j] = h[(size_t)j * n + i] = m;
        }
}

void had_rotate_diag(double *imp, int n)
{
    for (int off = 0; off < n;) {
        int k = pow2_floor(n - off);
        double s = 0.0;
        for (int j = off; j < off + k; j++)
            s += imp[j];
        for (int j = off; j < off + k; j++)
            imp[j] = s / k;
        off += k;
    }
}
