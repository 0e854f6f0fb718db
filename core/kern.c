/* core/kern.c — BLAS-backed kernels and their naive reference twins.
 *
 * Built with -DVL_NO_BLAS (make BLAS=ref) the fast entry points fall back to the references.
 * Float64 accumulation in kern_xtx_acc: float32 rows are widened per block and fed to dsyrk,
 * so the sums are exact products of float32 inputs accumulated in float64.
 */
#define _POSIX_C_SOURCE 200809L
#include "kern.h"

#include "err.h"
#include "vexp.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef VL_NO_BLAS
#include <cblas.h>
#endif

/* ---------------------------------------------------------------- references */

void kern_matmul_ref(float *y, const float *x, const float *w, int T, int K, int N,
                     int accumulate)
{
    VL_ASSERT(T >= 0 && K > 0 && N > 0);
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * K;
        for (int n = 0; n < N; n++) {
            const float *wr = w + (size_t)n * K;
            float s = 0.0f;
            for (int k = 0; k < K; k++)
                s += xr[k] * wr[k];
            float *o = y + (size_t)t * N + n;
            *o = accumulate ? *o + s : s;
        }
    }
}

void kern_matmul_st_ref(float *y, int ldy, const float *x, int ldx, const float *w, int ldw,
                        int T, int K, int N, float alpha, int accumulate)
{
    VL_ASSERT(T >= 0 && K > 0 && N > 0 && ldy >= N && ldx >= K && ldw >= K);
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * ldx;
        for (int n = 0; n < N; n++) {
            const float *wr = w + (size_t)n * ldw;
            float s = 0.0f;
            for (int k = 0; k < K; k++)
                s += xr[k] * wr[k];
            float *o = y + (size_t)t * ldy + n;
            *o = accumulate ? *o + alpha * s : alpha * s;
        }
    }
}

void kern_matmul_nn_st_ref(float *y, int ldy, const float *x, int ldx, const float *w, int ldw,
                           int T, int K, int N, int accumulate)
{
    VL_ASSERT(T >= 0 && K > 0 && N > 0 && ldy >= N && ldx >= K && ldw >= N);
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * ldx;
        for (int n = 0; n < N; n++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++)
                s += xr[k] * w[(size_t)k * ldw + n];
            float *o = y + (size_t)t * ldy + n;
            *o = accumulate ? *o + s : s;
        }
    }
}

void kern_xtx_acc_ref(double *c, const float *x, int T, int K)
{
    VL_ASSERT(T >= 0 && K > 0);
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * K;
        for (int i = 0; i < K; i++) {
            double xi = xr[i];
            double *ci = c + (size_t)i * K;
            for (int j = 0; j < K; j++)
                ci[j] += xi * (double)xr[j];
        }
    }
}

void kern_xtx_upper_ref(double *c, const float *x, int T, int K)
{
    VL_ASSERT(T >= 0 && K > 0);
    for (int i = 0; i < K; i++)
        memset(c + (size_t)i * K + i, 0, (size_t)(K - i) * sizeof *c);
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * K;
        for (int i = 0; i < K; i++) {
            double xi = xr[i];
            double *ci = c + (size_t)i * K;
            for (int j = i; j < K; j++)
                ci[j] += xi * (double)xr[j];
        }
    }
}

void kern_dgemm_ref(double *c, const double *a, const double *b, int M, int N, int K,
                    int trans_a, int lda, int ldb, int ldc, double alpha, double beta)
{
    VL_ASSERT(M >= 0 && N >= 0 && K >= 0);
    for (int i = 0; i < M; i++) {
        double *ci = c + (size_t)i * ldc;
        for (int j = 0; j < N; j++)
            ci[j] = beta == 0.0 ? 0.0 : beta * ci[j]; /* beta 0 ignores NaN in C, as BLAS */
        for (int k = 0; k < K; k++) {
            double aik = trans_a ? a[(size_t)k * lda + i] : a[(size_t)i * lda + k];
            const double *bk = b + (size_t)k * ldb;
            for (int j = 0; j < N; j++)
                ci[j] += alpha * aik * bk[j];
        }
    }
}

/* ---------------------------------------------------------------- elementwise */

float kern_exp_shift_ref(float *x, int n, float shift)
{
    float sum = 0.0f;
    for (int i = 0; i < n; i++)
        sum += (x[i] = expf(x[i] - shift));
    return sum;
}

void kern_silu_mul_ref(float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        a[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
}

/* Both build on any backend (no BLAS); VEXP_CLONES_FMA adds an AVX2+FMA build picked at load time. */
VEXP_CLONES_FMA float kern_exp_shift(float *x, int n, float shift)
{
    vexp_f8_t acc = VEXP_SPLAT(0.0f);
    const vexp_f8_t sh = VEXP_SPLAT(shift);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        vexp_f8_t v;
        memcpy(&v, x + i, sizeof v);
        v -= sh;
        vexp_f8(&v);
        memcpy(x + i, &v, sizeof v);
        acc += v;
    }
    float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++)
        sum += (x[i] = vexp_f1(x[i] - shift));
    return sum;
}

VEXP_CLONES_FMA void kern_silu_mul(float *a, const float *b, size_t n)
{
    const vexp_f8_t one = VEXP_SPLAT(1.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        vexp_f8_t x, y, e;
        memcpy(&x, a + i, sizeof x);
        memcpy(&y, b + i, sizeof y);
        e = -x;
        vexp_f8(&e);
        x = x / (one + e) * y;
        memcpy(a + i, &x, sizeof x);
    }
    for (; i < n; i++)
        a[i] = a[i] / (1.0f + vexp_f1(-a[i])) * b[i];
}

/* ---------------------------------------------------------------- threads */

typedef struct {
    void (*fn)(void *, int, int);
    void *ctx;
    int i0, i1;
} pf_range;

static void *pf_run(void *arg)
{
    pf_range *r = arg;
    r->fn(r->ctx, r->i0, r->i1);
    return NULL;
}

enum { PF_MAX = 64 };

/* fn over [0, n) in nt contiguous ranges (1 < nt <= PF_MAX), the caller taking the first. */
static void pf_ranges(int n, int nt, void (*fn)(void *ctx, int i0, int i1), void *ctx)
{
    pf_range r[PF_MAX];
    pthread_t th[PF_MAX];
    int started[PF_MAX] = {0};
    for (int t = 0; t < nt; t++)
        r[t] = (pf_range){fn, ctx, (int)((long long)n * t / nt), (int)((long long)n * (t + 1) / nt)};
    for (int t = 1; t < nt; t++)
        started[t] = pthread_create(&th[t], NULL, pf_run, &r[t]) == 0;
    fn(ctx, r[0].i0, r[0].i1);
    for (int t = 1; t < nt; t++) {
        if (started[t])
            pthread_join(th[t], NULL);
        else /* no thread to be had: this one does the range */
            fn(ctx, r[t].i0, r[t].i1);
    }
}

void kern_parallel_for(int n, int min_chunk, void (*fn)(void *ctx, int i0, int i1), void *ctx)
{
    if (n <= 0)
        return;
    int nt = kern_threads();
    if (min_chunk < 1)
        min_chunk = 1;
    if (nt > n / min_chunk)
        nt = n / min_chunk;
    if (nt > PF_MAX)
        nt = PF_MAX;
    if (nt <= 1) {
        fn(ctx, 0, n);
        return;
    }
    pf_ranges(n, nt, fn, ctx);
}

typedef struct {
    void (*fn)(void *, int, int);
    void *ctx;
    int n_parts;
} pb_job;

static void pb_range(void *ctx, int i0, int i1)
{
    const pb_job *j = ctx;
    for (int p = i0; p < i1; p++)
        j->fn(j->ctx, p, j->n_parts);
}

void kern_parallel_blas(int max_parts, void (*fn)(void *ctx, int part, int n_parts), void *ctx)
{
    int blas = kern_threads(), nt = blas < max_parts ? blas : max_parts;
    nt = nt < PF_MAX ? nt : PF_MAX;
    if (nt <= 1) {
        fn(ctx, 0, 1);
        return;
    }
    kern_set_threads(1);
    pb_job j = {fn, ctx, nt};
    pf_ranges(nt, nt, pb_range, &j);
    kern_set_threads(blas);
}

/* ---------------------------------------------------------------- fast paths */

#ifdef VL_NO_BLAS

void kern_matmul(float *y, const float *x, const float *w, int T, int K, int N, int accumulate)
{
    kern_matmul_ref(y, x, w, T, K, N, accumulate);
}

void kern_matmul_st(float *y, int ldy, const float *x, int ldx, const float *w, int ldw, int T,
                    int K, int N, float alpha, int accumulate)
{
    kern_matmul_st_ref(y, ldy, x, ldx, w, ldw, T, K, N, alpha, accumulate);
}

void kern_matmul_nn_st(float *y, int ldy, const float *x, int ldx, const float *w, int ldw,
                       int T, int K, int N, int accumulate)
{
    kern_matmul_nn_st_ref(y, ldy, x, ldx, w, ldw, T, K, N, accumulate);
}

void kern_xtx_acc(double *c, const float *x, int T, int K) { kern_xtx_acc_ref(c, x, T, K); }

void kern_xtx_upper(double *c, const float *x, int T, int K) { kern_xtx_upper_ref(c, x, T, K); }

void kern_dgemm(double *c, const double *a, const double *b, int M, int N, int K, int trans_a,
                int lda, int ldb, int ldc, double alpha, double beta)
{
    kern_dgemm_ref(c, a, b, M, N, K, trans_a, lda, ldb, ldc, alpha, beta);
}

void kern_set_threads(int n) { (void)n; }

int kern_threads(void) { return 1; }

const char *kern_backend(void) { return "reference"; }

#else

/* openblas_set_num_threads is an OpenBLAS extension, declared here so cblas.h from another
 * vendor still compiles. */
void openblas_set_num_threads(int num_threads);

void kern_matmul(float *y, const float *x, const float *w, int T, int K, int N, int accumulate)
{
    VL_ASSERT(T >= 0 && K > 0 && N > 0);
    if (T == 0)
        return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, N, K, 1.0f, x, K, w, K,
                accumulate ? 1.0f : 0.0f, y, N);
}

void kern_matmul_st(float *y, int ldy, const float *x, int ldx, const float *w, int ldw, int T,
                    int K, int N, float alpha, int accumulate)
{
    VL_ASSERT(T >= 0 && K > 0 && N > 0 && ldy >= N && ldx >= K && ldw >= K);
    if (T == 0)
        return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, N, K, alpha, x, ldx, w, ldw,
                accumulate ? 1.0f : 0.0f, y, ldy);
}

void kern_matmul_nn_st(float *y, int ldy, const float *x, int ldx, const float *w, int ldw,
                       int T, int K, int N, int accumulate)
{
    VL_ASSERT(T >= 0 && K > 0 && N > 0 && ldy >= N && ldx >= K && ldw >= N);
    if (T == 0)
        return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, N, K, 1.0f, x, ldx, w, ldw,
                accumulate ? 1.0f : 0.0f, y, ldy);
}

enum { XTX_BLOCK = 256 }; /* rows widened to float64 per dsyrk call */

/* Upper triangle of C (+)= XᵀX: rows widened to float64 in blocks, one dsyrk per block (the
 * first overwrites unless accumulating). Returns 0, or −1 without memory for the widening
 * buffer (C untouched; the caller takes the reference, which needs none). */
static int xtx_upper_blas(double *c, const float *x, int T, int K, int accumulate)
{
    double *buf = malloc((size_t)XTX_BLOCK * K * sizeof *buf);
    if (!buf)
        return -1;
    for (int t0 = 0; t0 < T; t0 += XTX_BLOCK) {
        int nb = T - t0 < XTX_BLOCK ? T - t0 : XTX_BLOCK;
        for (size_t i = 0; i < (size_t)nb * K; i++)
            buf[i] = x[(size_t)t0 * K + i];
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, K, nb, 1.0, buf, K,
                    accumulate || t0 > 0 ? 1.0 : 0.0, c, K);
    }
    free(buf);
    return 0;
}

void kern_xtx_acc(double *c, const float *x, int T, int K)
{
    VL_ASSERT(T >= 0 && K > 0);
    if (T == 0)
        return;
    if (xtx_upper_blas(c, x, T, K, 1)) {
        kern_xtx_acc_ref(c, x, T, K);
        return;
    }
    for (int i = 0; i < K; i++) /* mirror the upper triangle */
        for (int j = 0; j < i; j++)
            c[(size_t)i * K + j] = c[(size_t)j * K + i];
}

void kern_xtx_upper(double *c, const float *x, int T, int K)
{
    VL_ASSERT(T >= 0 && K > 0);
    if (T == 0 || xtx_upper_blas(c, x, T, K, 0))
        kern_xtx_upper_ref(c, x, T, K);
}

void kern_dgemm(double *c, const double *a, const double *b, int M, int N, int K, int trans_a,
                int lda, int ldb, int ldc, double alpha, double beta)
{
    VL_ASSERT(M >= 0 && N >= 0 && K >= 0);
    if (M == 0 || N == 0)
        return;
    cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, CblasNoTrans, M, N, K, alpha,
                a, lda, b, ldb, beta, c, ldc);
}

void kern_set_threads(int n)
{
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    openblas_set_num_threads(n);
}

int openblas_get_num_threads(void);

int kern_threads(void) { return openblas_get_num_threads(); }

const char *kern_backend(void) { return "openblas"; }

#endif
