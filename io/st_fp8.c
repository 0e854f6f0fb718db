/* io/st_fp8.c — FP8 e4m3 weights with per-block scales → float32.
 *
 * Layout as DeepSeek released V3 (and as transformers' FP8 integration reads it): the weight
 * q [R × C] in F8_E4M3 and "<name>_scale_inv" s [⌈R/br⌉ × ⌈C/bc⌉] in float32; block (i, j)
 * covers rows i·br .. min((i+1)·br, R) and columns j·bc .. min((j+1)·bc, C), so the last block
 * row/column may be partial. Dequantization is one float32 product per element, q · s, which
 * is what the reference (float32 q times float32 s) computes, so the result is bit-exact.
 */
#include "st.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int st_fp8_scale_name(const char *weight, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s_scale_inv", weight);
    return n < 0 || (size_t)n >= cap ? VL_EARG : 0;
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* The block grid s must have, checked before any value is read. */
static int check_grid(const st_tensor *q, const st_tensor *s, int br, int bc, vl_err *err)
{
    if (br < 1 || bc < 1)
        return vl_errf(err, VL_EARG, "%s: tensor \"%s\": FP8 block size %d×%d must be positive",
                       q->file, q->name, br, bc);
    if (q->dtype != ST_F8_E4M3)
        return vl_errf(err, VL_EDTYPE, "%s: tensor \"%s\": dtype %s, expected F8_E4M3", q->file,
                       q->name, st_dtype_name(q->dtype));
    if (q->ndim != 2)
        return vl_errf(err, VL_ESHAPE, "%s: tensor \"%s\": FP8 block scales need a 2-D weight, "
                       "it has %d dimensions", q->file, q->name, q->ndim);
    if (s->dtype == ST_F8_E4M3)
        return vl_errf(err, VL_EDTYPE, "%s: tensor \"%s\": scales must be F32, F16 or BF16, "
                       "not F8_E4M3", s->file, s->name);
    int64_t gr = ceil_div(q->shape[0], br), gc = ceil_div(q->shape[1], bc);
    int shape_ok = s->ndim == 2 && s->shape[0] == gr && s->shape[1] == gc;
    if (!shape_ok)
        return vl_errf(err, VL_ESHAPE, "%s: tensor \"%s\": %d-D scale grid, expected [%lld,%lld] "
                       "for weight [%lld,%lld] in %d×%d blocks", s->file, s->name, s->ndim,
                       (long long)gr, (long long)gc, (long long)q->shape[0],
                       (long long)q->shape[1], br, bc);
    return 0;
}

/* The grid checked and the scales as float32 (finite, non-negative) into *out (caller frees). */
static int load_scales(const st_tensor *q, const st_tensor *scale_inv, int block_rows,
                       int block_cols, float **out, vl_err *err)
{
    *out = NULL;
    int rc = check_grid(q, scale_inv, block_rows, block_cols, err);
    if (rc)
        return rc;
    size_t ns = (size_t)scale_inv->numel;
    float *s = vl_malloc((ns ? ns : 1) * sizeof *s);
    if (!s)
        return vl_errf(err, VL_ENOMEM, "%s: tensor \"%s\": out of memory", scale_inv->file,
                       scale_inv->name);
    if ((rc = st_tensor_to_f32(scale_inv, s, err)))
        goto out;
    for (size_t i = 0; i < ns; i++)
        if (s[i] < 0) {
            rc = vl_errf(err, VL_ERANGE, "%s: tensor \"%s\": negative scale %g at flat index %zu",
                         scale_inv->file, scale_inv->name, s[i], i);
            goto out;
        }
out:
    if (rc)
        vl_free(s);
    else
        *out = s;
    return rc;
}

int st_fp8_check(const st_tensor *q, const st_tensor *scale_inv, int block_rows,
                 int block_cols, vl_err *err)
{
    float *s;
    int rc = load_scales(q, scale_inv, block_rows, block_cols, &s, err);
    if (!rc)
        rc = st_tensor_check(q, err);
    vl_free(s);
    return rc;
}

int st_fp8_dequant(const st_tensor *q, const st_tensor *scale_inv, int block_rows,
                   int block_cols, float *dst, vl_err *err)
{
    float *s;
    int rc = load_scales(q, scale_inv, block_rows, block_cols, &s, err);
    if (rc)
        return rc;
    /* stored values first (rejects NaN codes with their index), then the scales in place */
    if ((rc = st_tensor_to_f32(q, dst, err)))
        goto out;
    int64_t R = q->shape[0], C = q->shape[1], gc = scale_inv->shape[1];
    for (int64_t r = 0; r < R; r++) {
        const float *srow = s + (size_t)(r / block_rows) * (size_t)gc;
        float *d = dst + (size_t)r * (size_t)C;
        for (int64_t c0 = 0; c0 < C; c0 += block_cols) { /* one scale a block: no division a weight */
            int64_t c1 = c0 + block_cols < C ? c0 + block_cols : C;
            float sc = srow[c0 / block_cols];
            for (int64_t c = c0; c < c1; c++)
                d[c] *= sc;
        }
    }
out:
    vl_free(s);
    return rc;
}

/* e4m3: bias 7, 3 mantissa bits; normals 2^−6 .. 448, subnormals k·2^−9 (k = 1..7). */
uint8_t st_f32_to_f8e4m3(float x)
{
    if (isnan(x))
        return 0x7f;
    uint8_t sign = signbit(x) ? 0x80 : 0;
    double a = fabs((double)x);
    if (a >= 448.0)
        return sign | 0x7e;
    if (a < 0.015625) /* below 2^−6: subnormal grid, rint rounds half to even; 8 is 2^−6 */
        return sign | (uint8_t)rint(a * 512.0);
    int e;
    double m = frexp(a, &e); /* a = m·2^e, m in [0.5, 1): exponent e−1, mantissa 2m − 1 */
    int q = (int)rint((2.0 * m - 1.0) * 8.0), be = e - 1 + 7;
    if (q == 8) {
        q = 0;
        be++;
    }
    if (be > 15 || (be == 15 && q == 7)) /* 0x7f is NaN: beyond 448 saturates */
        return sign | 0x7e;
    return sign | (uint8_t)(be << 3 | q);
}
