/* core/fx.c — 192-bit fixed-point sums (see fx.h for the format and why).
 *
 * Conversion reads the IEEE-754 fields directly: v = ±m·2^(e−1075) with m < 2^53, so the
 * fixed-point integer is m·2^(e−1075+96), i.e. m shifted left by s = e − 979 (right by −s when
 * negative, dropping the bits below 2^-96 toward zero).
 */
#include "fx.h"

#include "err.h"
#include "vexp.h" /* VEXP_CLONES */

#include <math.h>
#include <stddef.h>
#include <string.h>

enum { FX_BITS = 64 * FX_LIMBS };

static int fx_negative(const fx_num *a) { return (int)(a->l[FX_LIMBS - 1] >> 63); }

/* r = a + b modulo 2^192; returns the signed-overflow flag. */
static int add_wrap(fx_num *r, const fx_num *a, const fx_num *b)
{
    uint64_t carry = 0;
    for (int i = 0; i < FX_LIMBS; i++) {
        uint64_t s = a->l[i] + b->l[i];
        uint64_t c1 = s < a->l[i];
        uint64_t t = s + carry;
        uint64_t c2 = t < s;
        r->l[i] = t;
        carry = c1 | c2;
    }
    int sa = fx_negative(a), sb = fx_negative(b), sr = fx_negative(r);
    return sa == sb && sr != sa;
}

static void negate(fx_num *a)
{
    uint64_t carry = 1;
    for (int i = 0; i < FX_LIMBS; i++) {
        uint64_t t = ~a->l[i] + carry;
        carry = carry && t == 0;
        a->l[i] = t;
    }
}

/* *a += the term whose two's-complement limbs are t (already complemented when negative) and
 * neg (1: the +1 of the negation); VL_ERANGE on signed overflow with *a unchanged. */
static inline int add_term(fx_num *a, uint64_t t0, uint64_t t1, uint64_t t2, uint64_t neg)
{
    uint64_t r0, r1, r2;
    uint64_t c0 = __builtin_add_overflow(a->l[0], t0, &r0);
    c0 += __builtin_add_overflow(r0, neg, &r0);
    uint64_t c1 = __builtin_add_overflow(a->l[1], t1, &r1);
    c1 += __builtin_add_overflow(r1, c0, &r1);
    r2 = a->l[2] + t2 + c1;
    /* signed overflow: both operands of one sign, the sum of the other (the term's sign is the
     * sign of v: a nonzero magnitude below 2^191) */
    uint64_t sa = a->l[2] >> 63, sr = r2 >> 63;
    if (sa == neg && sr != sa)
        return VL_ERANGE;
    a->l[0] = r0;
    a->l[1] = r1;
    a->l[2] = r2;
    return 0;
}

/* The hot path of every statistic (K(K+1)/2 terms per sequence and input for XᵀX): the term
 * m·2^s built in registers (fx_from_f64's rule), two's complement by mask, added with carries.
 * fx_from_f64 is this onto zero. */
static inline int add_f64_one(fx_num *a, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    int e = (int)((bits >> 52) & 0x7ff);
    uint64_t m = bits & ((1ull << 52) - 1);
    if (e == 0x7ff)
        return VL_ERANGE;
    if (e == 0)
        e = 1;
    else
        m |= 1ull << 52;
    int s = e - 1075 + FX_FRAC_BITS;
    if (s < 0) {
        if (s <= -53)
            return 0;
        m >>= -s;
        s = 0;
    }
    if (m == 0)
        return 0;
    if (63 - __builtin_clzll(m) + s >= FX_BITS - 1)
        return VL_ERANGE;
    int q = s >> 6, r = s & 63;
    uint64_t lo = m << r, hi = r ? m >> (64 - r) : 0;
    uint64_t t0 = q == 0 ? lo : 0, t1 = q == 0 ? hi : q == 1 ? lo : 0;
    uint64_t t2 = q == 1 ? hi : q == 2 ? lo : 0;
    uint64_t neg = bits >> 63, mask = 0 - neg; /* −t = ~t + 1 */
    return add_term(a, t0 ^ mask, t1 ^ mask, t2 ^ mask, neg);
}

int fx_add_f64(fx_num *a, double v) { return add_f64_one(a, v); }

int fx_from_f64(fx_num *out, double v)
{
    memset(out, 0, sizeof *out);
    return add_f64_one(out, v); /* 0 + term cannot overflow; refused: out stays 0 */
}

/* fx_add_f64_n builds the terms of four doubles at a time in 64-bit lanes (add_f64_one's
 * rule, branch-free: the variable shifts are AVX2's vpsllvq/vpsrlvq in the x86-64-v3 clone)
 * and adds them with carries in lanes, the totals' limbs transposed in and out of the
 * array-of-structs layout by shuffles. A group where a lane overflows is redone term by term,
 * so the first refused term is found in order. Shift counts stay below 64 (a count ≥ 64 is undefined
 * for vector shifts too). Lanes with a biased exponent ≥ 1118 (|v| ≥ 2^95: out of range or
 * NaN/Inf) send their group of four through add_f64_one, which refuses them in order. */
typedef uint64_t fx_u4 __attribute__((vector_size(32)));
_Static_assert(sizeof(fx_num) == 24, "fx_num is three limbs without padding");
typedef int64_t fx_i4 __attribute__((vector_size(32)));

#define FX_SPLAT(v) ((fx_u4){(v), (v), (v), (v)})
/* Lanes i0..i3 of the eight of a then b (GCC ≥ 12 and clang both have this builtin). */
#define FX_SHUF(a, b, i0, i1, i2, i3) __builtin_shufflevector(a, b, i0, i1, i2, i3)

VEXP_CLONES static size_t add_f64_n4(fx_num *a, const double *v, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        fx_u4 bits;
        memcpy(&bits, v + i, sizeof bits);
        fx_u4 e = (bits >> 52) & FX_SPLAT(0x7ff);
        fx_i4 big = (fx_i4)e >= (fx_i4)FX_SPLAT(1118); /* 52 + s ≥ 191 for a normal m */
        if (big[0] | big[1] | big[2] | big[3]) {
            for (int k = 0; k < 4; k++)
                if (add_f64_one(&a[i + k], v[i + k]))
                    return i + k;
            continue;
        }
        fx_u4 norm = (fx_u4)(e != FX_SPLAT(0)); /* all ones where normal */
        fx_u4 m = (bits & FX_SPLAT((1ull << 52) - 1)) | (norm & FX_SPLAT(1ull << 52));
        fx_i4 s = (fx_i4)(e | (~norm & FX_SPLAT(1))) - 979; /* e − 1075 + 96, subnormal e = 1 */
        fx_i4 sneg = s < 0;
        /* right shift by min(−s, 63) where s < 0 (m < 2^53: a count ≥ 53 leaves 0), else 0 */
        fx_i4 ns = -s, c = ns < 63;
        m >>= (fx_u4)(((c & ns) | (~c & 63)) & sneg);
        fx_u4 sp = (fx_u4)(s & ~sneg), q = sp >> 6, r = sp & FX_SPLAT(63);
        fx_u4 lo = m << r, hi = (m >> 1) >> (FX_SPLAT(63) - r); /* m >> (64 − r); 0 for r = 0 */
        fx_u4 q0 = (fx_u4)(q == FX_SPLAT(0)), q1 = (fx_u4)(q == FX_SPLAT(1));
        fx_u4 q2 = (fx_u4)(q == FX_SPLAT(2));
        fx_u4 neg = bits >> 63, mask = -neg;
        fx_u4 t0 = (q0 & lo) ^ mask, t1 = ((q0 & hi) | (q1 & lo)) ^ mask;
        fx_u4 t2 = ((q1 & hi) | (q2 & lo)) ^ mask;
        /* the four totals as limb vectors (fx_num is three limbs: 12 words in 3 vectors) */
        unsigned char *at = (unsigned char *)(a + i); /* four fx_num: 96 bytes, no padding */
        fx_u4 A, B, C;
        memcpy(&A, at, sizeof A);
        memcpy(&B, at + 32, sizeof B);
        memcpy(&C, at + 64, sizeof C);
        fx_u4 a0 = FX_SHUF(FX_SHUF(A, B, 0, 3, 6, 0), C, 0, 1, 2, 5);
        fx_u4 a1 = FX_SHUF(FX_SHUF(A, B, 1, 4, 7, 0), C, 0, 1, 2, 6);
        fx_u4 a2 = FX_SHUF(FX_SHUF(A, B, 2, 5, 0, 0), C, 0, 1, 4, 7);
        /* add_term lane-wise: at most one of the two adds into a limb can carry */
        fx_u4 r0 = a0 + t0, r0b = r0 + neg;
        fx_u4 c0 = (fx_u4)((r0 < a0) | (r0b < r0)) & FX_SPLAT(1);
        fx_u4 r1 = a1 + t1, r1b = r1 + c0;
        fx_u4 c1 = (fx_u4)((r1 < a1) | (r1b < r1)) & FX_SPLAT(1);
        fx_u4 r2 = a2 + t2 + c1;
        fx_u4 sa = a2 >> 63, ovf = (fx_u4)((sa == neg) & ((r2 >> 63) != sa));
        if (ovf[0] | ovf[1] | ovf[2] | ovf[3]) { /* refused in order by the scalar rule */
            for (int k = 0; k < 4; k++)
                if (add_term(&a[i + k], t0[k], t1[k], t2[k], neg[k]))
                    return i + k;
            continue;
        }
        A = FX_SHUF(FX_SHUF(r0b, r1b, 0, 4, 0, 1), r2, 0, 1, 4, 3);
        B = FX_SHUF(FX_SHUF(r1b, r2, 1, 5, 0, 2), r0b, 0, 1, 6, 3);
        C = FX_SHUF(FX_SHUF(r2, r0b, 2, 7, 0, 3), r1b, 0, 1, 7, 3);
        memcpy(at, &A, sizeof A);
        memcpy(at + 32, &B, sizeof B);
        memcpy(at + 64, &C, sizeof C);
    }
    for (; i < n; i++)
        if (add_f64_one(&a[i], v[i]))
            return i;
    return n;
}

size_t fx_add_f64_n(fx_num *a, const double *v, size_t n) { return add_f64_n4(a, v, n); }

int fx_add(fx_num *a, const fx_num *b)
{
    fx_num r;
    if (add_wrap(&r, a, b))
        return VL_ERANGE;
    *a = r;
    return 0;
}

double fx_to_f64(const fx_num *a)
{
    fx_num m = *a; /* magnitude, read as unsigned (covers −2^191 too) */
    int neg = fx_negative(a);
    if (neg)
        negate(&m);
    int hi = FX_LIMBS - 1;
    while (hi >= 0 && m.l[hi] == 0)
        hi--;
    if (hi < 0)
        return 0.0;
    int p = 64 * hi + 63 - __builtin_clzll(m.l[hi]); /* index of the top set bit */
    double v;
    if (p < 64) {
        v = (double)m.l[0]; /* one correctly rounded conversion */
    } else {
        /* a 64-bit window ending at bit p, with every lower bit ORed into a sticky bit: 64 >
         * 53 + 2, so rounding the window gives the correctly rounded value of the whole */
        int lo = p - 63, q = lo / 64, r = lo % 64;
        uint64_t w = m.l[q] >> r;
        if (r && q + 1 < FX_LIMBS)
            w |= m.l[q + 1] << (64 - r);
        uint64_t sticky = r ? (m.l[q] & ((1ull << r) - 1)) : 0;
        for (int i = 0; i < q; i++)
            sticky |= m.l[i];
        v = ldexp((double)(w | (sticky != 0)), lo);
    }
    v = ldexp(v, -FX_FRAC_BITS);
    return neg ? -v : v;
}
