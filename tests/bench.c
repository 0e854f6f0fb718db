/* tests/bench.c — `make bench`: the speed table. Timing lives here, never in tests. */
#include "../alloc/gptq.h"
#include "../alloc/quant.h"
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

/* GPTQ seconds per tensor by shape (b3 g64 asym, synthetic H) and RTN throughput. */
static void bench_quant(void)
{
    static const int shapes[][2] = {{256, 256}, {256, 768}, {768, 256}};
    qfmt f = {QFMT_GPTQ, 3, 64, 0, QFMT_ROT_NONE};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int rows = shapes[s][0], cols = shapes[s][1];
        float *w = malloc((size_t)rows * cols * sizeof *w), *o = malloc((size_t)rows * cols * 4);
        double *h = calloc((size_t)cols * cols, sizeof *h);
        for (size_t i = 0; i < (size_t)rows * cols; i++)
            w[i] = (float)((int)(i * 2654435761u % 1000) - 500) * 1e-4f;
        for (int i = 0; i < cols; i++)
            for (int j = 0; j < cols; j++)
                h[(size_t)i * cols + j] = (i == j ? 2.0 : 0.0) + 1.0 / (1 + abs(i - j));
        vl_err e;
        double t0 = prog_now();
        int rc = gptq_quantize(o, w, rows, cols, &f, h, NULL, NULL, "bench", &e);
        double dt = prog_now() - t0;
        if (rc)
            printf("| GPTQ b3 g64 %d×%d | error: %s |\n", rows, cols, e.msg);
        else
            printf("| GPTQ b3 g64 %d×%d (s/tensor) | %.4f |\n", rows, cols, dt);
        if (s == 1) {
            f.method = QFMT_RTN;
            t0 = prog_now();
            for (int r = 0; r < 5; r++)
                quant_rtn(o, w, rows, cols, &f, NULL, NULL, "bench", &e);
            dt = (prog_now() - t0) / 5;
            printf("| RTN b3 g64 clip search (Mweights/s) | %.1f |\n", rows * cols / dt * 1e-6);
            f.method = QFMT_GPTQ;
        }
        free(w);
        free(o);
        free(h);
    }
}

int main(void)
{
    printf("| what | value |\n|---|---|\n");
    printf("| kernel backend | %s |\n", kern_backend());
    double peak = sgemm_gflops(2048, 2048, 2048, 3);
    printf("| sgemm peak 2048³ (GFLOP/s) | %.1f |\n", peak);
    printf("| sgemm 2048×256×256 (GFLOP/s) | %.1f |\n", sgemm_gflops(2048, 256, 256, 20));
    bench_quant();
    return 0;
}
