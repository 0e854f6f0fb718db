/* tests/test_fx.c — core/fx, the exact fixed-point sums under the statistics: exact
 * cancellation, range refusals, and fx_add_f64 / the four-lane fx_add_f64_n against the two-step
 * definition fx_from_f64 + fx_add, bit for bit. (Moved out of test_stats.c.) */
#include "../core/err.h"
#include "../core/fx.h"
#include "check.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static void test_fx(chk *c)
{
    fx_num a = {{0}}, b = {{0}};
    CHECK_INT(c, fx_add_f64(&a, 0.1) | fx_add_f64(&a, 0.2) | fx_add_f64(&a, -0.3), 0, "fx adds");
    /* the exact sum of the three doubles is 2^-55; float64 arithmetic gives 2^-54 */
    CHECK(c, fx_to_f64(&a) == ldexp(1.0, -55) && (0.1 + 0.2) - 0.3 == ldexp(1.0, -54),
          "fx: 0.1 + 0.2 − 0.3 is the exact 2^-55, got %.17g", fx_to_f64(&a));
    double v[] = {1e20, 1.0, -1e20, 3.5e-20, -7.25, 1e-30};
    fx_num f = {{0}}, g = {{0}};
    for (int i = 0; i < 6; i++)
        fx_add_f64(&f, v[i]);
    for (int i = 5; i >= 0; i--)
        fx_add_f64(&g, v[i]);
    CHECK(c, !memcmp(&f, &g, sizeof f), "fx: order does not matter");
    CHECK_NEAR(c, fx_to_f64(&f), 1.0 + 3.5e-20 - 7.25, 1e-30, 0, "fx: 1e20 cancels exactly");
    CHECK_INT(c, fx_add_f64(&b, 4e28), VL_ERANGE, "fx: 4e28 out of range");
    CHECK_INT(c, fx_add_f64(&b, INFINITY), VL_ERANGE, "fx: Inf refused");
    fx_add_f64(&b, 3e28);
    fx_num b2 = b;
    CHECK_INT(c, fx_add(&b, &b2), VL_ERANGE, "fx: overflow of a sum refused");
    CHECK(c, fx_to_f64(&b) == 3e28, "fx: overflowing add leaves the total unchanged");
    fx_num z = {{0}};
    fx_add_f64(&z, -2.0);
    CHECK(c, fx_to_f64(&z) == -2.0, "fx: negative round trip");

    /* fx_add_f64 (register fast path) and fx_add_f64_n against the two-step definition
     * fx_from_f64 + fx_add: doubles of every sign and binary exponent from 2^-1074 to 2^100
     * (truncated, exact, refused), onto running totals of both signs */
    uint64_t st = 99;
    fx_num x = {{0}}, y = {{0}}, xs[64] = {{{0}}};
    double vs[64];
    int diff = 0, nv = 0;
    for (int i = 0; i < 20000; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t bits = (st >> 12) | ((uint64_t)((st >> 3) % 1175) << 52) | (st << 63);
        double d;
        memcpy(&d, &bits, sizeof d);
        fx_num t, y0 = y;
        int r1 = fx_add_f64(&x, d);
        int r2 = fx_from_f64(&t, d);
        if (!r2)
            r2 = fx_add(&y, &t);
        diff += r1 != r2 || memcmp(&x, &y, sizeof x) || (r2 && memcmp(&y, &y0, sizeof y));
        /* the conversion alone: a term of 2^-43 or more comes back exactly */
        if (fabs(d) >= ldexp(1.0, -43) && fx_from_f64(&t, d) == 0)
            diff += fx_to_f64(&t) != d;
        nv += r1 == 0;
        if (i < 64)
            vs[i] = d;
    }
    CHECK(c, diff == 0, "fx_add_f64 = fx_from_f64 + fx_add on 20000 doubles (%d added, %d differ)",
          nv, diff);
    CHECK(c, nv > 10000 && nv < 20000, "the sweep has both added and refused terms (%d)", nv);
    fx_num ys[64] = {{{0}}};
    size_t stop = fx_add_f64_n(xs, vs, 64), want = 64;
    for (size_t i = 0; i < 64; i++)
        if (fx_add_f64(&ys[i], vs[i]) && want == 64)
            want = i;
    CHECK_INT(c, (long)stop, (long)want, "fx_add_f64_n stops at the first refused term");
    CHECK(c, !memcmp(xs, ys, stop * sizeof *xs), "fx_add_f64_n adds like fx_add_f64");

    /* the four-lane fx_add_f64_n (core/fx.c) against fx_add_f64 term by term: doubles of both
     * signs and every exponent up to 2^94 (±0, subnormals, truncated, exact) onto totals of
     * both signs near the limb boundaries, lengths with and without a tail, and refusals (out
     * of range, NaN) at every lane position */
    enum { NF = 4099 };
    static fx_num fa[NF], fb[NF];
    static double fv[NF];
    for (int pass = 0; pass < 8; pass++) {
        for (int i = 0; i < NF; i++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            uint64_t e = (st >> 3) % 1118, bits = (st >> 12) | (e << 52) | (st << 63);
            if (i % 97 == 5)
                bits &= 1ull << 63; /* ±0 */
            memcpy(&fv[i], &bits, sizeof fv[i]);
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            fa[i].l[0] = st;
            fa[i].l[1] = i % 3 ? ~0ull - (st >> 60) : st >> 7;
            fa[i].l[2] = (st >> 40) & 1 ? ~0ull : 0; /* small totals of both signs */
            fb[i] = fa[i];
        }
        size_t n = NF - (size_t)pass;
        if (pass >= 3 && pass < 6) /* a refusal at lane pass − 3 of the group at 2000 */
            fv[2000 + pass - 3] = pass == 4 ? NAN : -5e28;
        if (pass >= 6) { /* a total at the top of the range and a term in range: overflow */
            size_t k = 2100 + (size_t)pass - 6;
            fa[k].l[0] = fa[k].l[1] = pass == 6 ? ~0ull : 0;
            fa[k].l[2] = pass == 6 ? ~0ull >> 1 : 1ull << 63; /* +max, or −2^191 */
            fb[k] = fa[k];
            fv[k] = pass == 6 ? 1.0 : -1.0;
        }
        size_t got = fx_add_f64_n(fa, fv, n), ref = n;
        for (size_t i = 0; i < n; i++)
            if (fx_add_f64(&fb[i], fv[i])) {
                ref = i;
                break;
            }
        CHECK(c, got == ref, "four-lane fx_add_f64_n pass %d: stops at %zu, fx_add_f64 at %zu",
              pass, got, ref);
        CHECK(c, !memcmp(fa, fb, sizeof fa), "four-lane fx_add_f64_n pass %d: same totals, "
              "bit for bit (%zu terms)", pass, n);
    }
}

int main(void)
{
    chk c;
    chk_init(&c, "fx");
    test_fx(&c);
    return chk_done(&c);
}
