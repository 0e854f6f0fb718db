/* tests/bench.c — `make bench`: the speed table. Timing lives here, never in tests. */
#include "../core/kern.h"
#include "../core/prog.h"

#include <stdio.h>
#include <stdlib.h>

/* Measured sgemm peak: the best of a few square-ish products of the forward's shapes. */
static double sgemm_gflops(int T, int K, int N, int reps)
{
    float *x = calloc((size_t)T * K, sizeof *x), *w = calloc((size_t)N * K, sizeof *w);
    float *y = calloc((size_t)T * N, sizeof *y);
    for (size_t i = 0; i < (size_t)T * K; i++) x[i] = (float)(i % 17) * 0.01f;
    for (size_t i = 0; i < (size_t)N * K; i++) w[i] = (float)(i % 13) * 0.01f;
    kern_matmul(y, x, w, T, K, N, 0);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = prog_now();
        kern_matmul(y, x, w, T, K, N, 0);
        double dt = prog_now() - t0;
        best = dt < best ? dt : best;
    }
    free(x); free(w); free(y);
    return 2.0 * T * K * N / best * 1e-9;
}

int main(void)
{
    printf("| what | value |\n|---|---|\n");
    printf("| kernel backend | %s |\n", kern_backend());
    double peak = sgemm_gflops(2048, 2048, 2048, 3);
    printf("| sgemm peak 2048³ (GFLOP/s) | %.1f |\n", peak);
    printf("| sgemm 2048×256×256 (GFLOP/s) | %.1f |\n", sgemm_gflops(2048, 256, 256, 20));
    return 0;
}
