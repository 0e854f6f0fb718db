/* core/kern.h — the shape-level numeric kernels every matmul in vbrlab goes through.
 *
 * Weights follow Hugging Face's nn.Linear layout: W is (out, in) row-major, and a linear layer
 * computes y = x · Wᵀ. kern.c is the only file that includes cblas.h or omp.h; the rest of the
 * toolkit stays readable and BLAS-free. Every fast kernel has a naive reference twin with the
 * same signature (tests compare the two; `make BLAS=ref` builds everything on the twins).
 *
 * Shapes come from our own code, so they are checked with VL_ASSERT, not returned as errors.
 * Thread-safety: the functions are reentrant; threads exist only inside a call.
 */
#ifndef VL_KERN_H
#define VL_KERN_H

#include <stddef.h>

/* y[T×N] = x[T×K] · W[N×K]ᵀ (+ y if accumulate). Row strides are the dense widths. */
void kern_matmul(float *y, const float *x, const float *w, int T, int K, int N, int accumulate);
void kern_matmul_ref(float *y, const float *x, const float *w, int T, int K, int N,
                     int accumulate);

/* Strided forms for views inside bigger buffers (attention heads, sequences of a batch):
 * kern_matmul_st:    y[T×N] = alpha · x[T×K] · W[N×K]ᵀ  (+ y if accumulate)
 * kern_matmul_nn_st: y[T×N] = x[T×K] · W[K×N]           (+ y if accumulate)
 * ldy/ldx/ldw are the row strides in floats (>= the row width). */
void kern_matmul_st(float *y, int ldy, const float *x, int ldx, const float *w, int ldw, int T,
                    int K, int N, float alpha, int accumulate);
void kern_matmul_st_ref(float *y, int ldy, const float *x, int ldx, const float *w, int ldw,
                        int T, int K, int N, float alpha, int accumulate);
void kern_matmul_nn_st(float *y, int ldy, const float *x, int ldx, const float *w, int ldw,
                       int T, int K, int N, int accumulate);
void kern_matmul_nn_st_ref(float *y, int ldy, const float *x, int ldx, const float *w, int ldw,
                           int T, int K, int N, int accumulate);

/* C[K×K] += Xᵀ X for X[T×K] in float64 (the Hessian proxy of GPTQ; symmetric, full matrix
 * written). X is float32, the accumulator float64 as DESIGN asks. */
void kern_xtx_acc(double *c, const float *x, int T, int K);
void kern_xtx_acc_ref(double *c, const float *x, int T, int K);

/* The upper triangle of C[K×K] (row i, columns i..K−1) = Xᵀ X for X[T×K], overwritten, in
 * float64 like kern_xtx_acc; the strict lower triangle is not touched (per-sequence partials
 * of the statistics, which read the upper triangle only). */
void kern_xtx_upper(double *c, const float *x, int T, int K);
void kern_xtx_upper_ref(double *c, const float *x, int T, int K);

/* C[M×N] = alpha·op(A)·B + beta·C in float64 (GPTQ's lazy block update, output errors).
 * op(A) = A with A [M×K] (trans_a 0) or Aᵀ with A [K×M] (trans_a 1); B is [K×N]. Leading
 * dimensions (row strides) lda, ldb, ldc let callers pass sub-blocks. */
void kern_dgemm(double *c, const double *a, const double *b, int M, int N, int K, int trans_a,
                int lda, int ldb, int ldc, double alpha, double beta);
void kern_dgemm_ref(double *c, const double *a, const double *b, int M, int N, int K,
                    int trans_a, int lda, int ldb, int ldc, double alpha, double beta);

/* Vectorised elementwise kernels (core/vexp.h's exp, relative error ≤ VEXP_MAX_REL; the
 * references use libm's expf):
 * kern_exp_shift: x[i] = exp(x[i] − shift) for i < n, returns the float32 sum of the results
 *                 (eight partial sums added in a fixed order: the same bits for the same input).
 * kern_silu_mul:  a[i] = silu(a[i]) · b[i], silu(x) = x / (1 + exp(−x)). */
float kern_exp_shift(float *x, int n, float shift);
float kern_exp_shift_ref(float *x, int n, float shift);
void kern_silu_mul(float *a, const float *b, size_t n);
void kern_silu_mul_ref(float *a, const float *b, size_t n);

/* Threads used inside kernels (BLAS and kern_parallel_for alike); n <= 0 means all cores. */
void kern_set_threads(int n);

/* Threads kernels use now (1 in the reference build). */
int kern_threads(void);

/* fn(ctx, i0, i1) over [0, n) split into contiguous ranges, one per thread (kern_threads(),
 * at most one per min_chunk items), the calling thread taking the first. Returns when every
 * range is done. fn must not call BLAS (its threads would oversubscribe the cores) and must
 * only write what its range owns; the result is then independent of the thread count. */
void kern_parallel_for(int n, int min_chunk, void (*fn)(void *ctx, int i0, int i1), void *ctx);

/* Coarse parallelism around BLAS: fn(ctx, part, n_parts) for every part in [0, n_parts) on
 * n_parts threads (the calling thread takes part 0), n_parts = min(kern_threads(), max_parts),
 * with BLAS on one thread meanwhile (restored after), so fn may call the kernels above and
 * the cores run one product each instead of splitting every small product between them. With
 * one part it is fn(ctx, 0, 1) on this thread with BLAS left as it is: callers keep their
 * serial order (and bits) on one thread. fn must only write what its part owns. */
/* The BLAS thread count is the library's (global): calls from several threads at once see
 * one thread while one of them runs (the serial path, correct, not parallel). */
void kern_parallel_blas(int max_parts, void (*fn)(void *ctx, int part, int n_parts), void *ctx);

/* Name of the backend in use ("openblas" or "reference"), static string. */
const char *kern_backend(void);

#endif
