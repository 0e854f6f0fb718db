/* alloc/ggml_fmt.c — fp16 conversion and row-level decode/quantize (the type table is
 * io/ggml_type.c). */
#include "ggml_fmt.h"

#include "ggml_int.h"

#include "../core/kern.h"

#include <math.h>

static const ggf_quant_fn QUANT[GGF_COUNT] = {
    [GGF_Q4_0] = ggf_q_q4_0,       [GGF_Q4_1] = ggf_q_q4_1,     [GGF_Q5_0] = ggf_q_q5_0,
    [GGF_Q5_1] = ggf_q_q5_1,       [GGF_Q8_0] = ggf_q_q8_0,     [GGF_Q2_K] = ggf_q_q2_K,
    [GGF_Q3_K] = ggf_q_q3_K,       [GGF_Q4_K] = ggf_q_q4_K,     [GGF_Q5_K] = ggf_q_q5_K,
    [GGF_Q6_K] = ggf_q_q6_K,       [GGF_IQ2_XXS] = ggf_q_iq2_xxs, [GGF_IQ2_XS] = ggf_q_iq2_xs,
    [GGF_IQ3_XXS] = ggf_q_iq3_xxs, [GGF_IQ1_S] = ggf_q_iq1_s,   [GGF_IQ4_NL] = ggf_q_iq4_nl,
    [GGF_IQ3_S] = ggf_q_iq3_s,     [GGF_IQ2_S] = ggf_q_iq2_s,   [GGF_IQ4_XS] = ggf_q_iq4_xs,
    [GGF_IQ1_M] = ggf_q_iq1_m,
};

/* ---------------------------------------------------------------- fp16 */

float ggf_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
    if (e == 0x1f) {
        u = sign | 0x7f800000u | (m << 13);
    } else if (e == 0) {
        float f = ldexpf((float)m, -24); /* subnormal: exact in float */
        return sign ? -f : f;
    } else {
        u = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t ggf_f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000, e = (u >> 23) & 0xff, m = u & 0x7fffff;
    if (e == 0xff) return (uint16_t)(sign | 0x7c00 | (m ? 0x200 : 0));
    int ex = (int)e - 127 + 15;
    if (ex >= 0x1f) return (uint16_t)(sign | 0x7c00);
    if (ex <= 0) {
        if (ex < -10) return (uint16_t)sign;
        m |= 0x800000;
        int shift = 14 - ex;
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((uint32_t)ex << 10) | (m >> 13), rem = m & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++; /* may carry into the exponent: ok */
    return (uint16_t)(sign | r);
}

/* ---------------------------------------------------------------- rows */

void ggf_scale_offsets(ggf_type t, int *n, int off[2])
{
    *n = 1;
    off[0] = 0;
    switch (t) {
    case GGF_Q4_1: case GGF_Q5_1: case GGF_Q4_K: case GGF_Q5_K:
        *n = 2; off[1] = 2; break;
    case GGF_Q2_K: *n = 2; off[0] = 80; off[1] = 82; break;
    case GGF_Q3_K: off[0] = 108; break;
    case GGF_Q6_K: off[0] = 208; break;
    case GGF_IQ1_M: case GGF_F32: case GGF_F16: case GGF_BF16: *n = 0; break;
    default: break;
    }
}

static int f16_bad(uint16_t h) { return (h & 0x7c00) == 0x7c00; }

int ggf_decode_row(ggf_type t, const uint8_t *src, size_t nbytes, float *dst, int64_t n,
                   vl_err *err)
{
    const ggf_info *in = ggf_get(t);
    int64_t rb = ggf_row_bytes(t, n);
    if (rb < 0)
        return vl_errf(err, VL_ESHAPE, "%s: row of %lld weights is not a multiple of %d", in->name,
                       (long long)n, in->block);
    if ((int64_t)nbytes < rb)
        return vl_errf(err, VL_ETRUNC, "%s: row needs %lld bytes, got %zu", in->name, (long long)rb,
                       nbytes);
    if ((int64_t)nbytes > rb)
        return vl_errf(err, VL_EFORMAT, "%s: row of %lld weights is %lld bytes, got %zu", in->name,
                       (long long)n, (long long)rb, nbytes);
    int ns, off[2];
    ggf_scale_offsets(t, &ns, off);
    for (int64_t i = 0; i < n / in->block; i++) {
        const uint8_t *b = src + i * in->bytes;
        int bad = t == GGF_IQ1_M && f16_bad(ggf_iq1m_scale_bits(b));
        for (int k = 0; k < ns; k++) bad |= f16_bad(ggf_rd16(b + off[k]));
        if (bad)
            return vl_errf(err, VL_EFORMAT, "%s: block %lld: scale is fp16 Inf or NaN (corrupt block)",
                           in->name, (long long)i);
        ggf_decode_block(t, b, dst + i * in->block);
    }
    return 0;
}

int ggf_quantize_row(ggf_type t, const float *x, const float *imp, int64_t n, uint8_t *dst,
                     vl_err *err)
{
    const ggf_info *in = ggf_get(t);
    if (ggf_row_bytes(t, n) < 0)
        return vl_errf(err, VL_ESHAPE, "%s: row of %lld weights is not a multiple of %d", in->name,
                       (long long)n, in->block);
    for (int64_t j = 0; j < n; j++)
        if (!isfinite(x[j]) || (imp && (!isfinite(imp[j]) || imp[j] < 0)))
            return vl_errf(err, VL_ERANGE, "%s: weight or importance %lld is not finite (or < 0)",
                           in->name, (long long)j);
    if (!QUANT[t]) {
        for (int64_t j = 0; j < n; j++) {
            if (t == GGF_F32) {
                uint32_t u;
                memcpy(&u, &x[j], 4);
                ggf_wr32(dst + 4 * j, u);
            } else if (t == GGF_F16) {
                ggf_wr16(dst + 2 * j, ggf_f32_to_f16(x[j]));
            } else { /* bf16, round to nearest even */
                uint32_t u;
                memcpy(&u, &x[j], 4);
                u += 0x7fff + ((u >> 16) & 1);
                ggf_wr16(dst + 2 * j, (uint16_t)(u >> 16));
            }
        }
        return 0;
    }
    float wbuf[256];
    for (int64_t i = 0; i < n / in->block; i++) {
        const float *xb = x + i * in->block;
        /* a block whose importance is all zero is weighted uniformly: its weights still matter */
        double s = 0;
        for (int j = 0; j < in->block; j++) s += imp ? imp[i * in->block + j] : 1.0;
        for (int j = 0; j < in->block; j++)
            wbuf[j] = (imp && s > 0) ? imp[i * in->block + j] : 1.0f;
        int rc = QUANT[t](xb, wbuf, dst + i * in->bytes);
        if (rc) return vl_errf(err, rc, "%s: out of memory quantizing block %lld", in->name, (long long)i);
    }
    return 0;
}

/* Rows [i0, i1) of a fake-quantization: quantize (unless the packed rows came from the cache)
 * and decode; a row's status in rc[row] (the first failing row is redone for its message). */
typedef struct {
    float *out;
    const float *w, *imp;
    uint8_t *q;
    int cols, quantize;
    int64_t rb;
    ggf_type t;
    int *rc;
} fq_job;

static void fq_rows(void *ctx, int i0, int i1)
{
    const fq_job *j = ctx;
    for (int r = i0; r < i1; r++) {
        uint8_t *qr = j->q + (size_t)r * (size_t)j->rb;
        int rc = j->quantize ? ggf_quantize_row(j->t, j->w + (size_t)r * j->cols, j->imp, j->cols, qr, NULL) : 0;
        if (!rc)
            rc = ggf_decode_row(j->t, qr, (size_t)j->rb, j->out + (size_t)r * j->cols, j->cols, NULL);
        j->rc[r] = rc;
    }
}

int ggf_fake_quant(float *out, const float *w, int rows, int cols, ggf_type t, const double *imp,
                   qcache *cache, const char *name, vl_err *err)
{
    int64_t rb = ggf_row_bytes(t, cols);
    if (rb < 0)
        return vl_errf(err, VL_ESHAPE, "tensor \"%s\": %d columns are not a multiple of %s's block of %d",
                       name, cols, ggf_get(t)->name, ggf_get(t)->block);
    double mx = 0;
    for (int j = 0; imp && j < cols; j++) {
        if (!isfinite(imp[j]) || imp[j] < 0)
            return vl_errf(err, VL_ERANGE, "tensor \"%s\": importance %d is not finite (or < 0)",
                           name, j);
        mx = imp[j] > mx ? imp[j] : mx;
    }
    size_t nq = (size_t)rows * (size_t)rb;
    uint8_t *q = vl_malloc(nq ? nq : 1);
    float *fi = imp && mx > 0 ? vl_malloc((size_t)cols * sizeof *fi) : NULL;
    int *rcs = vl_calloc((size_t)rows + 1, sizeof *rcs);
    if (!q || (imp && mx > 0 && !fi) || !rcs) {
        vl_free(q), vl_free(fi), vl_free(rcs);
        return vl_errf(err, VL_ENOMEM, "tensor \"%s\": out of memory", name);
    }
    for (int j = 0; fi && j < cols; j++) fi[j] = (float)(imp[j] / mx);
    qcache_key key;
    if (cache) qcache_key_make(&key, (int)t, w, rows, cols, fi);
    fq_job job = {out, w, fi, q, cols, !(cache && qcache_get(cache, &key, q, nq)), rb, t, rcs};
    /* at least ~64k weights a thread: a row of 2,048 takes 1–3 ms */
    kern_parallel_for(rows, cols >= 65536 ? 1 : 65536 / cols, fq_rows, &job);
    int rc = 0;
    for (int r = 0; r < rows && !rc; r++)
        if (rcs[r]) { /* the same call again, serially, for its message */
            const float *wr = w + (size_t)r * cols;
            uint8_t *qr = q + (size_t)r * (size_t)rb;
            rc = job.quantize ? ggf_quantize_row(t, wr, fi, cols, qr, err) : 0;
            if (!rc) rc = ggf_decode_row(t, qr, (size_t)rb, out + (size_t)r * cols, cols, err);
            if (!rc) rc = vl_errf(err, rcs[r], "row %d: error %d", r, rcs[r]);
            vl_errctx(err, rc, "tensor \"%s\" row %d", name, r);
        }
    if (!rc && cache && job.quantize) qcache_put(cache, &key, q, nq);
    vl_free(q), vl_free(fi), vl_free(rcs);
    return rc;
}
