/* tests/test_kern.c — BLAS kernels against their naive reference twins. */
#include "../core/kern.h"
#include "check.h"

#include <stdint.h>

/* Deterministic values in [-1, 1) from an integer (no rng needed for a kernel test). */
static float val(uint32_t i)
{
    i = i * 2654435761u + 12345u;
    i ^= i >> 13;
    i *= 2246822519u;
    i ^= i >> 16;
    return (float)((double)(i & 0xffffff) / 8388608.0 - 1.0);
}

static void fill(float *a, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        a[i] = val((uint32_t)(i + seed * 1000003u));
}

int main(void)
{
    chk c;
    chk_init(&c, "test_kern");
    const int shapes[][3] = {{1, 256, 256}, {7, 64, 48}, {33, 256, 768}, {128, 256, 16}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int T = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
        float *x = malloc(sizeof(float) * T * K), *w = malloc(sizeof(float) * N * K);
        float *y = malloc(sizeof(float) * T * N), *yr = malloc(sizeof(float) * T * N);
        fill(x, (size_t)T * K, 1 + s);
        fill(w, (size_t)N * K, 2 + s);
        kern_matmul(y, x, w, T, K, N, 0);
        kern_matmul_ref(yr, x, w, T, K, N, 0);
        char name[64];
        snprintf(name, sizeof name, "matmul %dx%dx%d", T, K, N);
        CHECK_TENSOR(&c, y, yr, (long)T * N, 1e-4, 1e-4, name);
        /* accumulate adds onto what is there */
        kern_matmul(y, x, w, T, K, N, 1);
        for (long i = 0; i < (long)T * N; i++)
            yr[i] *= 2.0f;
        snprintf(name, sizeof name, "matmul acc %dx%dx%d", T, K, N);
        CHECK_TENSOR(&c, y, yr, (long)T * N, 2e-4, 1e-4, name);

        /* XᵀX in float64: fast vs reference, twice (accumulation) */
        double *g = calloc((size_t)K * K, sizeof *g), *gr = calloc((size_t)K * K, sizeof *gr);
        kern_xtx_acc(g, x, T, K);
        kern_xtx_acc(g, x, T, K);
        kern_xtx_acc_ref(gr, x, T, K);
        kern_xtx_acc_ref(gr, x, T, K);
        double maxd = 0, maxv = 0;
        int sym = 1;
        for (long i = 0; i < (long)K * K; i++) {
            double d = fabs(g[i] - gr[i]);
            maxd = d > maxd ? d : maxd;
            maxv = fabs(gr[i]) > maxv ? fabs(gr[i]) : maxv;
        }
        for (int i = 0; i < K; i++)
            for (int j = 0; j < i; j++)
                sym &= g[(size_t)i * K + j] == g[(size_t)j * K + i];
        CHECK(&c, maxd <= 1e-9 * (maxv + 1), "xtx %dx%d: max|d| %.3g of %.3g", T, K, maxd, maxv);
        CHECK(&c, sym, "xtx %dx%d symmetric", T, K);
        free(g); free(gr); free(x); free(w); free(y); free(yr);
    }
    return chk_done(&c);
}
