/* io/st_conv.c — the conversions every converted tensor goes through, vectorised
 * (io/st.h st_bf16_rows, st_all_finite): the forward converts the LM head's tiles on every
 * run (analysis/mweights.c), where the scalar loops were ~6 % of a forward's samples.
 */
#include "st.h"

#include "../core/vexp.h" /* VEXP_CLONES */

#include <math.h>
#include <string.h>

/* Eight bfloat16 a step where the host is little-endian like the file (each one is the top
 * half of its float32: a widening and a shift, the same bits as st_bf16_to_f32). */
typedef uint16_t st_u16x8 __attribute__((vector_size(16)));
typedef uint32_t st_u32x8 __attribute__((vector_size(32)));

VEXP_CLONES void st_bf16_rows(const uint8_t *src, float *dst, size_t n)
{
    size_t i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; i + 8 <= n; i += 8) {
        st_u16x8 h;
        memcpy(&h, src + 2 * i, sizeof h);
        st_u32x8 u = __builtin_convertvector(h, st_u32x8) << 16;
        memcpy(dst + i, &u, sizeof u);
    }
#endif
    for (; i < n; i++)
        dst[i] = st_bf16_to_f32((uint16_t)(src[2 * i] | (src[2 * i + 1] << 8)));
}

/* Whether x[0..n) are all finite: exponent bits not all ones, eight floats a step, without
 * a branch per value (the scalar isfinite loop cost as much as the conversion before it). */
VEXP_CLONES int st_all_finite(const float *x, size_t n)
{
    const st_u32x8 ex = {0x7f800000u, 0x7f800000u, 0x7f800000u, 0x7f800000u,
                         0x7f800000u, 0x7f800000u, 0x7f800000u, 0x7f800000u};
    st_u32x8 bad = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        st_u32x8 u;
        memcpy(&u, x + i, sizeof u);
        bad |= (st_u32x8)((u & ex) == ex);
    }
    int any = 0;
    for (int k = 0; k < 8; k++)
        any |= bad[k] != 0;
    for (; i < n; i++)
        any |= !isfinite(x[i]);
    return !any;
}
