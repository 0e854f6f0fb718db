/* core/fx.c — 192-bit fixed-point sums (see fx.h for the format and why).
 *
 * Conversion reads the IEEE-754 fields directly: v = ±m·2^(e−1075) with m < 2^53, so the
 * fixed-point integer is m·2^(e−1075+96), i.e. m shifted left by s = e − 979 (right by −s when
 * negative, dropping the bits below 2^-96 toward zero).
 */
#include "fx.h"

#include "err.h"

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
    t0 ^= mask;
    t1 ^= mask;
    t2 ^= mask;
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

int fx_add_f64(fx_num *a, double v) { return add_f64_one(a, v); }

int fx_from_f64(fx_num *out, double v)
{
    memset(out, 0, sizeof *out);
    return add_f64_one(out, v); /* 0 + term cannot overflow; refused: out stays 0 */
}

size_t fx_add_f64_n(fx_num *a, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (add_f64_one(&a[i], v[i]))
            return i;
    return n;
}

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
