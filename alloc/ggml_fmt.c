/* alloc/ggml_fmt.c — the ggml type table, fp16 conversion and row-level decode/quantize. */
#include "ggml_fmt.h"

#include "ggml_int.h"

#include <math.h>

/* ggml_id, block and bytes per block from ggml-common.h's static_asserts (sizeof block_*). */
static const ggf_info INFO[GGF_COUNT] = {
    [GGF_Q4_0] = {"q4_0", 2, 32, 18, 0},           [GGF_Q4_1] = {"q4_1", 3, 32, 20, 0},
    [GGF_Q5_0] = {"q5_0", 6, 32, 22, 0},           [GGF_Q5_1] = {"q5_1", 7, 32, 24, 0},
    [GGF_Q8_0] = {"q8_0", 8, 32, 34, 0},           [GGF_Q2_K] = {"q2_K", 10, 256, 84, 0},
    [GGF_Q3_K] = {"q3_K", 11, 256, 110, 0},        [GGF_Q4_K] = {"q4_K", 12, 256, 144, 0},
    [GGF_Q5_K] = {"q5_K", 13, 256, 176, 0},        [GGF_Q6_K] = {"q6_K", 14, 256, 210, 0},
    [GGF_IQ2_XXS] = {"iq2_xxs", 16, 256, 66, 1},   [GGF_IQ2_XS] = {"iq2_xs", 17, 256, 74, 1},
    [GGF_IQ3_XXS] = {"iq3_xxs", 18, 256, 98, 0},   [GGF_IQ1_S] = {"iq1_s", 19, 256, 50, 1},
    [GGF_IQ4_NL] = {"iq4_nl", 20, 32, 18, 0},      [GGF_IQ3_S] = {"iq3_s", 21, 256, 110, 0},
    [GGF_IQ2_S] = {"iq2_s", 22, 256, 82, 0},       [GGF_IQ4_XS] = {"iq4_xs", 23, 256, 136, 0},
    [GGF_IQ1_M] = {"iq1_m", 29, 256, 56, 1},       [GGF_F32] = {"f32", 0, 1, 4, 0},
    [GGF_F16] = {"f16", 1, 1, 2, 0},               [GGF_BF16] = {"bf16", 30, 1, 2, 0},
};

static const ggf_quant_fn QUANT[GGF_COUNT] = {
    [GGF_Q4_0] = ggf_q_q4_0,       [GGF_Q4_1] = ggf_q_q4_1,     [GGF_Q5_0] = ggf_q_q5_0,
    [GGF_Q5_1] = ggf_q_q5_1,       [GGF_Q8_0] = ggf_q_q8_0,     [GGF_Q2_K] = ggf_q_q2_K,
    [GGF_Q3_K] = ggf_q_q3_K,       [GGF_Q4_K] = ggf_q_q4_K,     [GGF_Q5_K] = ggf_q_q5_K,
    [GGF_Q6_K] = ggf_q_q6_K,       [GGF_IQ2_XXS] = ggf_q_iq2_xxs, [GGF_IQ2_XS] = ggf_q_iq2_xs,
    [GGF_IQ3_XXS] = ggf_q_iq3_xxs, [GGF_IQ1_S] = ggf_q_iq1_s,   [GGF_IQ4_NL] = ggf_q_iq4_nl,
    [GGF_IQ3_S] = ggf_q_iq3_s,     [GGF_IQ2_S] = ggf_q_iq2_s,   [GGF_IQ4_XS] = ggf_q_iq4_xs,
    [GGF_IQ1_M] = ggf_q_iq1_m,
};

const ggf_info *ggf_get(ggf_type t) { return &INFO[t]; }

int ggf_from_name(const char *name)
{
    for (int t = 0; t < GGF_COUNT; t++)
        if (!strcmp(INFO[t].name, name)) return t;
    return -1;
}

int ggf_from_id(int ggml_id)
{
    for (int t = 0; t < GGF_COUNT; t++)
        if (INFO[t].ggml_id == ggml_id) return t;
    return -1;
}

int64_t ggf_row_bytes(ggf_type t, int64_t n)
{
    if (n <= 0 || n % INFO[t].block) return -1;
    return n / INFO[t].block * INFO[t].bytes;
}

double ggf_bpw(ggf_type t) { return 8.0 * INFO[t].bytes / INFO[t].block; }

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
    const ggf_info *in = &INFO[t];
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
    const ggf_info *in = &INFO[t];
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
