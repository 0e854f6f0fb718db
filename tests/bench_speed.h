/* tests/bench_speed.h — the one-thread CPU-time measurements behind issue 16's goal rows
 * (included by tests/bench.c only): on the shared 2-core machine wall time counts other jobs'
 * turns and two threads are time-sliced, so the goals are judged on the process CPU time of
 * one-thread runs, every ratio taken within one run. */
#ifndef VL_BENCH_SPEED_H
#define VL_BENCH_SPEED_H

#include "../analysis/fwd.h"
#include "../analysis/kld.h"
#include "../analysis/model.h"
#include "../analysis/spass.h"
#include "../core/kern.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Process CPU seconds (all threads): on a shared machine the wall clock also counts other
 * processes' turns; the CPU time of a one-thread run is the work itself. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Measured sgemm peak: the best of a few square-ish products of the forward's shapes. */
static double sgemm_gflops_clock(int T, int K, int N, int reps, double (*clock)(void))
{
    float *x = calloc((size_t)T * K, sizeof *x), *w = calloc((size_t)N * K, sizeof *w);
    float *y = calloc((size_t)T * N, sizeof *y);
    for (size_t i = 0; i < (size_t)T * K; i++) x[i] = (float)(i % 17) * 0.01f;
    for (size_t i = 0; i < (size_t)N * K; i++) w[i] = (float)(i % 13) * 0.01f;
    kern_matmul(y, x, w, T, K, N, 0);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = clock();
        kern_matmul(y, x, w, T, K, N, 0);
        double dt = clock() - t0;
        best = dt < best ? dt : best;
    }
    free(x); free(w); free(y);
    return 2.0 * T * K * N / best * 1e-9;
}

/* n pseudo-random token ids below vocab from seed (the LCG every bench section uses). */
static void bench_ids(int32_t *ids, int n, uint32_t seed, int vocab)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        ids[i] = (int32_t)((seed >> 8) % (uint32_t)vocab);
    }
}

/* Best of 6 forward runs after a warm-up, timed by CLOCK, into *best; the forward's error
 * (runs of 0.1-0.5 s: on this VM one in a few is 10 % slower, so 3 were not enough). */
static int fwd_best(const model *m, fwd_state *st, const int32_t *ids, int S, int T,
                    double (*clock)(void), double *best, vl_err *e)
{
    const float *lg;
    *best = 1e30;
    for (int r = 0; r < 7; r++) {
        double c0 = clock();
        int rc = fwd_run(m, model_base(m), st, ids, S, T, NULL, NULL, &lg, e);
        if (rc)
            return rc;
        double dc = clock() - c0;
        if (r > 0 && dc < *best)
            *best = dc;
    }
    return 0;
}

/* The forward's share of the sgemm peak measured as the goal is judged here: one
 * thread, CPU time (on a machine shared with other jobs wall time counts their turns, and two
 * threads are time-sliced), peak = best one-thread sgemm probe in CPU time, forward = best of
 * 6 runs after a warm-up of S × T pseudo-random tokens of the model in DIR; the forward's
 * GFLOP/s are its own count of 2·m·n·k over the products it did. Returns the share (0 on
 * failure). */
static double forward_share_1t(const char *dir, int S, int T, double peak1)
{
    model *m = NULL;
    fwd_state *st = NULL;
    vl_err e;
    int32_t *ids = malloc((size_t)S * T * sizeof *ids);
    double share = 0;
    kern_set_threads(1);
    if (!ids || model_open(&m, dir, &e) || fwd_state_new(&st, m, S, T, &e)) {
        printf("| forward %s | failed: %s |\n", dir, ids ? e.msg : "out of memory");
        goto done;
    }
    bench_ids(ids, S * T, 12345, model_config(m)->vocab);
    double best;
    if (fwd_best(m, st, ids, S, T, cpu_now, &best, &e)) {
        printf("| forward %s | failed: %s |\n", dir, e.msg);
        goto done;
    }
    double gf = fwd_last_flops(st) / best * 1e-9;
    share = gf / peak1;
    printf("| forward %d×%d, %s, 1 thread (CPU s, tokens/s, GFLOP/run, GFLOP/s, share of the "
           "1-thread peak) | %.3f, %.0f, %.2f, %.1f, %.0f%% |\n", S, T, dir, best, S * T / best,
           fwd_last_flops(st) * 1e-9, gf, 100 * share);
done:
    kern_set_threads(0);
    fwd_state_free(st);
    model_close(m);
    free(ids);
    return share;
}

/* The KLD/statistics step alone (analysis/kld.h kld_token_eval: KLD, entropy, NLLs, Δp, top-1
 * of one token from two logit rows) over 1,024 tokens of a 16,384-entry vocabulary, rows
 * streamed from memory (2 × 64 MiB, as eval's batches are): CPU seconds per 1k tokens on this
 * thread, best of 5. This is the goal's figure; eval's split below is wall time with threads. */
static double bench_kld(void)
{
    enum { N = 1024, V = 16384 };
    size_t n = (size_t)N * V;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    if (!a || !b) {
        printf("| KLD step | failed: out of memory |\n");
        free(a);
        free(b);
        return 0;
    }
    uint32_t x = 4242;
    for (size_t i = 0; i < n; i++) { /* a long low tail and a few large logits, q near p */
        x = x * 1664525u + 1013904223u;
        float u = (float)(x >> 8) / 16777216.0f;
        a[i] = 16.0f * u * u * u * u - 4.0f;
        x = x * 1664525u + 1013904223u;
        b[i] = a[i] + 0.1f * ((float)(x >> 8) / 16777216.0f - 0.5f);
    }
    double best = 1e30, chk = 0;
    for (int r = 0; r < 5; r++) {
        double c0 = cpu_now();
        for (int t = 0; t < N; t++) {
            kld_token k = kld_token_eval(a + (size_t)t * V, b + (size_t)t * V, V, t);
            chk += k.kld;
        }
        double dc = cpu_now() - c0;
        best = dc < best ? dc : best;
    }
    double s1k = best * 1e3 / N;
    printf("| KLD step, %d tokens × %d vocabulary, 1 thread (CPU s per 1k tokens; mean KLD "
           "%.4g) | %.4f |\n", N, V, chk / (5.0 * N), s1k);
    free(a);
    free(b);
    return s1k;
}

/* A statistics pass for S sequences of T tokens (no progress lines); NULL after printing the
 * error row. */
static spass *bench_spass_new(const model *m, int S, int T, int no_hessian)
{
    spass_opts o = spass_opts_defaults();
    o.batch = S;
    o.max_len = T;
    o.no_hessian = no_hessian;
    o.progress = 0;
    spass *p = NULL;
    vl_err e;
    if (spass_new(&p, m, &o, &e))
        printf("| stats pass | failed: %s |\n", e.msg);
    return p;
}

/* CPU seconds of one statistics pass over S × T ids (spass_run) into an accumulator of room
 * for 2·S·T tokens on one thread: with warm = 1 the same batch is run once before into the
 * same accumulator and the second run is timed (the steady state of a set of many batches:
 * the accumulator's pages — 170 MB of exact XᵀX sums for the embedded model — are touched
 * once per set, not per batch); warm = 0 times a fresh accumulator's first batch. Best of 3. */
static double stats_cpu_1t(const model *m, const int32_t *ids, int S, int T, int xtx, int warm)
{
    spass *p = bench_spass_new(m, S, T, !xtx);
    vl_err e;
    double best = 1e30;
    if (!p)
        return 0;
    for (int r = 0; r < 3; r++) {
        stat_acc *a = NULL;
        if (spass_acc_new(p, 2 * (int64_t)S * T, &a, &e))
            break;
        int rc = warm ? spass_run(p, a, ids, S, T, "bench", &e) : 0;
        double c0 = cpu_now();
        rc = rc ? rc : spass_run(p, a, ids, S, T, "bench", &e);
        double dc = cpu_now() - c0;
        stat_free(a);
        if (rc) {
            printf("| stats pass | failed: %s |\n", e.msg);
            best = 0;
            break;
        }
        best = dc < best ? dc : best;
    }
    spass_free(p);
    return best;
}

/* The statistics goals on one thread in CPU time: the plain forward, then the stats pass
 * without and with XᵀX on every weight input, steady state (and the first batch of a fresh
 * accumulator beside it), 8 × 256 pseudo-random tokens of the embedded model. Ratios to the
 * forward's time into st_ratio and xtx_ratio (0 on failure). */
static void stats_ratios_1t(double *st_ratio, double *xtx_ratio)
{
    enum { S = 8, T = 256 };
    model *m = NULL;
    fwd_state *st = NULL;
    vl_err e;
    static int32_t ids[S * T];
    *st_ratio = *xtx_ratio = 0;
    kern_set_threads(1);
    if (model_open(&m, "models/vbrlab-moe-tiny", &e) || fwd_state_new(&st, m, S, T, &e)) {
        printf("| stats 1 thread | failed: %s |\n", e.msg);
        goto done;
    }
    bench_ids(ids, S * T, 777, model_config(m)->vocab);
    double tf;
    if (fwd_best(m, st, ids, S, T, cpu_now, &tf, &e)) {
        printf("| stats 1 thread | failed: %s |\n", e.msg);
        goto done;
    }
    double sn = stats_cpu_1t(m, ids, S, T, 0, 1), sx = stats_cpu_1t(m, ids, S, T, 1, 1);
    double sn0 = stats_cpu_1t(m, ids, S, T, 0, 0), sx0 = stats_cpu_1t(m, ids, S, T, 1, 0);
    printf("| 1 thread, CPU s: forward / stats no XᵀX / stats XᵀX (%d×%d, steady state) | %.3f / "
           "%.3f (%.2f×) / %.3f (%.2f×) |\n", S, T, tf, sn, sn / tf, sx, sx / tf);
    printf("| 1 thread, CPU s: stats no XᵀX / XᵀX, first batch of a fresh accumulator | %.3f "
           "(%.2f×) / %.3f (%.2f×) |\n", sn0, sn0 / tf, sx0, sx0 / tf);
    if (sn > 0 && sx > 0) {
        *st_ratio = sn / tf;
        *xtx_ratio = sx / tf;
    }
done:
    kern_set_threads(0);
    fwd_state_free(st);
    model_close(m);
}

#endif
