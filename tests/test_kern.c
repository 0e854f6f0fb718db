/* tests/test_kern.c — BLAS kernels against their naive reference twins. */
#include "../core/kern.h"
#include "../core/vexp.h"
#include "check.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

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

static float f_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* vexp against libm's double exp: every 97th float bit pattern of both signs (all exponents,
 * the domain edges, NaN and ±Inf) plus an even sweep of [VEXP_LO, VEXP_HI] in steps of 1e-4;
 * the largest relative error must stay within VEXP_MAX_REL, lanes equal vexp_f1, and
 * vexp_f8_nonpos gives vexp_f8's bits on every input ≤ 0. The same sweep goes through
 * kern_exp_shift (shift 0), i.e. through the clone the library picked on this CPU: the AVX2
 * clone contracts the polynomial to FMA (core/vexp.h), so its bound is asserted separately. */
static void test_vexp(chk *c)
{
    double worst = 0, worst_x = 0, worst_k = 0;
    long n = 0, bad_edge = 0, bad_lane = 0, bad_nonpos = 0, bad_kedge = 0;
    float xs[8];
    int k = 0;
    uint64_t span = 1ull << 32;
    for (uint64_t u = 0; u < span + 8ull * 1750000; u += u < span ? 97 : 1) {
        xs[k++] = u < span ? f_of((uint32_t)u)
                           : VEXP_LO + (float)((double)(u - span) * 1e-4);
        if (k < 8)
            continue;
        k = 0;
        vexp_f8_t v;
        memcpy(&v, xs, sizeof v);
        vexp_f8_t y = v, yn = v;
        vexp_f8(&y);
        vexp_f8_nonpos(&yn);
        float yk[8];
        memcpy(yk, xs, sizeof yk);
        kern_exp_shift(yk, 8, 0.0f);
        for (int i = 0; i < 8; i++) {
            float x = xs[i];
            float y1 = vexp_f1(x);
            float yi = y[i], yni = yn[i];
            if (memcmp(&y1, &yi, sizeof y1) && !(isnan(y1) && isnan(yi)))
                bad_lane++;
            if (x <= 0.0f && memcmp(&yni, &yi, sizeof yi))
                bad_nonpos++;
            if (isnan(x)) {
                bad_edge += !isnan(y[i]);
                bad_kedge += !isnan(yk[i]);
                continue;
            }
            if (x < VEXP_LO) {
                bad_edge += y[i] != 0.0f;
                bad_kedge += yk[i] != 0.0f;
                continue;
            }
            if (x > VEXP_HI) {
                bad_edge += y[i] != vexp_f1(VEXP_HI);
                bad_kedge += !(fabs((double)yk[i] - exp((double)VEXP_HI)) <=
                               VEXP_MAX_REL * exp((double)VEXP_HI));
                continue;
            }
            double e = exp((double)x), rel = fabs((double)y[i] - e) / e;
            n++;
            if (rel > worst) {
                worst = rel;
                worst_x = x;
            }
            worst_k = fmax(worst_k, fabs((double)yk[i] - e) / e);
        }
        if (u >= span && xs[7] > VEXP_HI)
            break;
    }
    CHECK(c, worst <= VEXP_MAX_REL, "vexp max relative error %.3g (at x = %.9g) ≤ %.3g over "
          "%ld inputs", worst, worst_x, VEXP_MAX_REL, n);
    CHECK(c, worst > 1e-9, "vexp error is measured (%.3g), not identically 0", worst);
    CHECK_INT(c, bad_edge, 0, "vexp: 0 below the domain, clamped above, NaN kept");
    CHECK_INT(c, bad_lane, 0, "vexp_f1 equals every lane of vexp_f8");
    CHECK_INT(c, bad_nonpos, 0, "vexp_f8_nonpos equals vexp_f8 on every input ≤ 0");
    CHECK(c, worst_k <= VEXP_MAX_REL, "kern_exp_shift (the clone in use) max relative error "
          "%.3g ≤ %.3g", worst_k, VEXP_MAX_REL);
    CHECK_INT(c, bad_kedge, 0, "kern_exp_shift: 0 below the domain, clamped above, NaN kept");
    CHECK(c, vexp_f1(0.0f) == 1.0f && vexp_f1(-INFINITY) == 0.0f, "vexp(0) = 1, vexp(−Inf) = 0");
}

/* kern_exp_shift and kern_silu_mul against their libm references on lengths with and
 * without a tail; results within a few VEXP_MAX_REL (silu: of the magnitude |x·b|). */
static void test_elementwise(chk *c)
{
    static const int lens[] = {1, 7, 8, 61, 1000};
    for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
        int n = lens[k];
        float *x = malloc(sizeof(float) * n), *xr = malloc(sizeof(float) * n);
        float *a = malloc(sizeof(float) * n), *ar = malloc(sizeof(float) * n);
        float *b = malloc(sizeof(float) * n);
        fill(x, (size_t)n, 31 + k);
        fill(b, (size_t)n, 37 + k);
        for (int i = 0; i < n; i++) {
            x[i] = xr[i] = 20.0f * x[i];
            a[i] = ar[i] = 30.0f * b[(i * 7) % n];
        }
        float s = kern_exp_shift(x, n, 3.5f), sr = kern_exp_shift_ref(xr, n, 3.5f);
        double bad = 0, bad_silu = 0;
        for (int i = 0; i < n; i++)
            bad = fmax(bad, fabs((double)x[i] - xr[i]) / xr[i]);
        kern_silu_mul(a, b, (size_t)n);
        kern_silu_mul_ref(ar, b, (size_t)n);
        for (int i = 0; i < n; i++)
            bad_silu = fmax(bad_silu, fabs((double)a[i] - ar[i]) /
                                          (fabs(30.0 * b[(i * 7) % n] * b[i]) + 1e-30));
        CHECK(c, bad <= 2 * VEXP_MAX_REL, "exp_shift n=%d: max rel %.3g", n, bad);
        CHECK(c, fabs((double)s - sr) <= 1e-6 * sr, "exp_shift n=%d: sum %.9g vs %.9g", n, s, sr);
        CHECK(c, bad_silu <= 4 * VEXP_MAX_REL, "silu_mul n=%d: max rel %.3g", n, bad_silu);
        free(x); free(xr); free(a); free(ar); free(b);
    }
}

int main(void)
{
    chk c;
    chk_init(&c, "test_kern");
    test_vexp(&c);
    test_elementwise(&c);
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
        /* the upper-triangle form overwrites the triangle (garbage before), leaves the strict
         * lower triangle alone, and equals half of the twice-accumulated full form */
        double *u = malloc(sizeof(double) * K * K), *ur = malloc(sizeof(double) * K * K);
        for (long i = 0; i < (long)K * K; i++)
            u[i] = ur[i] = -7.0;
        kern_xtx_upper(u, x, T, K);
        kern_xtx_upper_ref(ur, x, T, K);
        int lower_kept = 1, upper_ok = 1;
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++) {
                size_t k = (size_t)i * K + j;
                if (j < i)
                    lower_kept &= u[k] == -7.0 && ur[k] == -7.0;
                else
                    upper_ok &= fabs(u[k] - ur[k]) <= 1e-9 * (maxv + 1) &&
                                fabs(2 * ur[k] - gr[k]) <= 1e-9 * (maxv + 1);
            }
        CHECK(&c, upper_ok, "xtx_upper %dx%d = reference = XᵀX", T, K);
        CHECK(&c, lower_kept, "xtx_upper %dx%d leaves the lower triangle", T, K);
        free(u); free(ur);
        free(g); free(gr); free(x); free(w); free(y); free(yr);
    }
    /* strided products on views inside wider buffers (attention heads): fast vs reference,
     * and the padding between rows stays untouched */
    const int st_shapes[][3] = {{24, 64, 24}, {5, 16, 9}, {256, 64, 256}};
    for (size_t s = 0; s < sizeof st_shapes / sizeof st_shapes[0]; s++) {
        int T = st_shapes[s][0], K = st_shapes[s][1], N = st_shapes[s][2];
        int ldx = K + 3, ldw = K + 5, ldwn = N + 7, ldy = N + 2;
        float *x = malloc(sizeof(float) * T * ldx), *w = malloc(sizeof(float) * N * ldw);
        float *wn = malloc(sizeof(float) * K * ldwn);
        float *y = malloc(sizeof(float) * T * ldy), *yr = malloc(sizeof(float) * T * ldy);
        fill(x, (size_t)T * ldx, 11 + s);
        fill(w, (size_t)N * ldw, 12 + s);
        fill(wn, (size_t)K * ldwn, 13 + s);
        char name[64];
        for (int acc = 0; acc < 2; acc++) {
            fill(y, (size_t)T * ldy, 14);
            fill(yr, (size_t)T * ldy, 14);
            kern_matmul_st(y, ldy, x, ldx, w, ldw, T, K, N, 0.125f, acc);
            kern_matmul_st_ref(yr, ldy, x, ldx, w, ldw, T, K, N, 0.125f, acc);
            snprintf(name, sizeof name, "matmul_st %dx%dx%d acc %d", T, K, N, acc);
            CHECK_TENSOR(&c, y, yr, (long)T * ldy, 1e-5, 1e-4, name);
            fill(y, (size_t)T * ldy, 15);
            fill(yr, (size_t)T * ldy, 15);
            kern_matmul_nn_st(y, ldy, x, ldx, wn, ldwn, T, K, N, acc);
            kern_matmul_nn_st_ref(yr, ldy, x, ldx, wn, ldwn, T, K, N, acc);
            snprintf(name, sizeof name, "matmul_nn_st %dx%dx%d acc %d", T, K, N, acc);
            CHECK_TENSOR(&c, y, yr, (long)T * ldy, 1e-4, 1e-4, name);
        }
        /* the reference itself against a direct double sum at the last element (acc = 1:
         * the fill value is added) */
        size_t last = (size_t)(T - 1) * ldy + N - 1;
        double sref = val((uint32_t)(last + 15 * 1000003u));
        for (int k = 0; k < K; k++)
            sref += (double)x[(size_t)(T - 1) * ldx + k] * wn[(size_t)k * ldwn + N - 1];
        CHECK_NEAR(&c, yr[last], sref, 1e-4, 1e-4, "matmul_nn_st_ref last element");
        free(x); free(w); free(wn); free(y); free(yr);
    }
    return chk_done(&c);
}
