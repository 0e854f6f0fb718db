/* tests/test_qfmt.c — format names, bit accounting and the menu spec parser. */
#include "../alloc/qfmt.h"
#include "check.h"

#include <string.h>

/* Brute-force bit count: walk every weight, add the group's parameters at each group start. */
static long long brute_bits(const qfmt *f, int rows, int cols)
{
    int g = f->group ? f->group : cols;
    long long bits = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            bits += f->bits;
            if (c % g == 0)
                bits += 16 + (f->sym ? 0 : f->bits);
        }
    return bits;
}

static void test_names(chk *c)
{
    int ok = 1, n = 0;
    for (int m = 0; m < 2; m++)
        for (int b = 1; b <= 8; b++)
            for (int gi = 0; gi < QFMT_N_GROUPS; gi++)
                for (int s = 0; s < 2; s++)
                    for (int r = 0; r < 2; r++) {
                        qfmt f = {(qfmt_method)m, b, qfmt_groups[gi], s, (qfmt_rot)r}, g;
                        char buf[QFMT_NAME_MAX];
                        vl_err e;
                        if (qfmt_parse(&g, qfmt_name(&f, buf), &e) || memcmp(&f, &g, sizeof f))
                            ok = 0;
                        n++;
                    }
    CHECK(c, ok && n == 512, "name → parse round trip for all %d formats", n);
    char buf[QFMT_NAME_MAX];
    qfmt f = {QFMT_GPTQ, 3, 128, 1, QFMT_ROT_HAD};
    CHECK_STR(c, qfmt_name(&f, buf), "gptq-b3-g128-sym-had", "name gptq b3 g128 sym had");
    qfmt f2 = {QFMT_RTN, 2, 64, 0, QFMT_ROT_NONE};
    CHECK_STR(c, qfmt_name(&f2, buf), "rtn-b2-g64-asym", "name rtn b2 g64 asym");
    qfmt f3 = {QFMT_RTN, 8, 0, 1, QFMT_ROT_NONE};
    CHECK_STR(c, qfmt_name(&f3, buf), "rtn-b8-row-sym", "name per-row");
    static const char *const bad[] = {"rtn-b9-g64-asym", "rtn-b2-g40-asym", "rtn-b2-g64",
                                      "rtn-b2-g64-asym-", "RTN-b2-g64-asym", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        vl_err e = {0, ""};
        qfmt g;
        int rc = qfmt_parse(&g, bad[i], &e);
        CHECK(c, rc == VL_ECONFIG && strstr(e.msg, "not a format name"),
              "bad name \"%s\" rejected: %s", bad[i], e.msg);
    }
    /* one format, two spellings: the name and a one-format menu spec */
    qfmt g8, n8;
    vl_err e8 = {0, ""};
    CHECK(c, qfmt_parse(&g8, "rtn:b=8:g=64", &e8) == 0, "menu spelling parses: %s", e8.msg);
    CHECK(c, !qfmt_parse(&n8, "rtn-b8-g64-asym", &e8) && !memcmp(&g8, &n8, sizeof g8),
          "rtn:b=8:g=64 is rtn-b8-g64-asym");
    CHECK_STR(c, qfmt_name(&g8, buf), "rtn-b8-g64-asym", "its canonical name");
    CHECK(c, qfmt_parse(&g8, "rtn:b=2..3:g=64", &e8) == VL_ECONFIG &&
                 strstr(e8.msg, "names 2 formats"),
          "a menu of two formats is refused where one is asked for: %s", e8.msg);
    CHECK_INT(c, qfmt_parse(&g8, "rtn:b=9", &e8), VL_ECONFIG, "a bad menu spec is refused");
    qfmt inv = {QFMT_RTN, 0, 64, 0, QFMT_ROT_NONE};
    vl_err e;
    CHECK(c, qfmt_check(&inv, &e) == VL_ECONFIG && strstr(e.msg, "bits 0"), "bits 0 invalid");
}

static void test_bits(chk *c)
{
    /* Hand-computed goldens. */
    qfmt a = {QFMT_RTN, 2, 64, 0, QFMT_ROT_NONE}; /* 2 + 18/64 */
    CHECK_INT(c, qfmt_bits(&a, 256, 256), 65536LL * 2 + 256 * 4 * 18, "b2 g64 asym 256x256");
    CHECK_NEAR(c, qfmt_bpw(&a, 256, 256), 2.28125, 0, 0, "bpw b2 g64 asym");
    qfmt b = {QFMT_GPTQ, 4, 128, 1, QFMT_ROT_HAD}; /* 4 + 16/128 */
    CHECK_INT(c, qfmt_bits(&b, 256, 768), 811008, "b4 g128 sym 256x768");
    CHECK_NEAR(c, qfmt_bpw(&b, 256, 768), 4.125, 0, 0, "bpw b4 g128 sym");
    qfmt d = {QFMT_RTN, 3, 64, 0, QFMT_ROT_NONE}; /* 100 cols = 64 + partial 36 */
    CHECK_INT(c, qfmt_bits(&d, 10, 100), 3000 + 10 * 2 * 19, "b3 g64 asym 10x100 partial");
    qfmt e = {QFMT_RTN, 8, 0, 1, QFMT_ROT_NONE};
    CHECK_INT(c, qfmt_bits(&e, 3, 5), 15 * 8 + 3 * 16, "b8 row sym 3x5");
    qfmt g = {QFMT_RTN, 1, 32, 0, QFMT_ROT_NONE};
    CHECK_INT(c, qfmt_bits(&g, 1, 33), 33 + 2 * 17, "b1 g32 asym 1x33");
    qfmt h = {QFMT_RTN, 2, 0, 0, QFMT_ROT_NONE}; /* per row, 256 cols: 2 + 18/256 */
    CHECK_NEAR(c, qfmt_bpw(&h, 256, 256), 2.0703125, 0, 0, "bpw b2 row asym");
    qfmt k = {QFMT_RTN, 2, 24, 1, QFMT_ROT_NONE}; /* 256 cols = 10 × 24 + 16: 11 groups */
    CHECK_NEAR(c, qfmt_bpw(&k, 128, 256), 2 + 11 * 16 / 256.0, 0, 0, "bpw b2 g24 sym");
    qfmt l = {QFMT_RTN, 2, 20, 0, QFMT_ROT_NONE}; /* 13 groups of 16 + 2 bits */
    CHECK_NEAR(c, qfmt_bpw(&l, 256, 256), 2 + 13 * 18 / 256.0, 0, 0, "bpw b2 g20 asym");

    /* Every format on a few shapes against the brute-force count. */
    static const int shapes[][2] = {{256, 256}, {256, 768}, {768, 256}, {7, 100}, {3, 31}};
    int ok = 1, n = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
        for (int bits = 1; bits <= 8; bits++)
            for (int gi = 0; gi < QFMT_N_GROUPS; gi++)
                for (int s = 0; s < 2; s++)
                    for (int r = 0; r < 2; r++) {
                        qfmt f = {QFMT_RTN, bits, qfmt_groups[gi], s, (qfmt_rot)r};
                        int R = shapes[si][0], C = shapes[si][1];
                        long long want = brute_bits(&f, R, C);
                        if (qfmt_bits(&f, R, C) != want ||
                            qfmt_bpw(&f, R, C) != (double)want / ((double)R * C)) {
                            char buf[QFMT_NAME_MAX];
                            printf("  mismatch %s %dx%d\n", qfmt_name(&f, buf), R, C);
                            ok = 0;
                        }
                        f.method = QFMT_GPTQ;
                        ok &= qfmt_bits(&f, R, C) == want;
                        n++;
                    }
    CHECK(c, ok, "bit count of %d format × shape cases equals the brute-force count", n);
}

/* Largest gap between consecutive stored rates of the menu's formats on a `cols`-column
 * tensor, over the rates in [lo, hi + step]; also the lowest rate ≥ lo. A budget B in
 * [lowest, hi] then has a uniform format within `gap` below it. */
static double menu_gap(const char *spec, int cols, double lo, double hi, double step,
                       double *lowest)
{
    qfmt_menu m;
    vl_err e = {0, ""};
    if (qfmt_menu_parse(&m, spec, &e))
        return 99;
    double r[512];
    int n = 0;
    for (int i = 0; i < m.n && n < 512; i++) {
        double b = qfmt_bpw(&m.v[i], 64, cols);
        if (b >= lo && b <= hi + step)
            r[n++] = b;
    }
    qfmt_menu_free(&m);
    for (int i = 1; i < n; i++) /* insertion sort: n is small */
        for (int j = i; j > 0 && r[j] < r[j - 1]; j--) {
            double t = r[j];
            r[j] = r[j - 1];
            r[j - 1] = t;
        }
    double gap = n ? 0 : 99;
    for (int i = 1; i < n; i++)
        gap = r[i] - r[i - 1] > gap ? r[i] - r[i - 1] : gap;
    if (n && r[n - 1] < hi - step)
        gap = 99; /* the top of the range is not reached */
    *lowest = n ? r[0] : 99;
    return gap;
}

/* Issue 14.3: a menu of uniform 2/3-bit formats steps ≤ 0.15 bpw over 2.0–3.0 bpw, on the
 * embedded model's 256-column tensors and on a 4096-column one; with the groups 32/64/128/row
 * alone the b2 g32 asym → b3 row step is 0.5 bpw (and b2 g64 asym → b2 g32 sym 0.22). */
static void test_menu_steps(chk *c)
{
    const char *fine = "rtn:b=2,3:g=16,20,24,32,48,64,128,row:s=sym,asym";
    const char *coarse = "rtn:b=2,3:g=32,64,128,row:s=sym,asym";
    static const int cols[] = {256, 4096};
    for (int i = 0; i < 2; i++) {
        double low, gap = menu_gap(fine, cols[i], 2.0, 3.0, 0.15, &low);
        CHECK(c, gap <= 0.15 && low <= 2.0 + 0.15,
              "%d cols: 2.0–3.0 bpw in steps ≤ 0.15 (largest %.4f, lowest %.4f)", cols[i], gap,
              low);
        gap = menu_gap(coarse, cols[i], 2.0, 3.0, 0.15, &low);
        CHECK(c, gap > 0.4, "%d cols: without g16/20/24/48 the largest step is %.4f", cols[i], gap);
    }
}

static void test_menu(chk *c)
{
    qfmt_menu m;
    vl_err e = {0, ""};
    int rc = qfmt_menu_parse(&m, "rtn:b=1..8:g=64;gptq:b=2..4:g=64,128;hadamard", &e);
    CHECK(c, rc == 0, "issue example parses: %s", e.msg);
    CHECK_INT(c, m.n, 28, "issue example has (8 + 6) x 2 formats");
    char buf[QFMT_NAME_MAX];
    if (m.n == 28) {
        CHECK_STR(c, qfmt_name(&m.v[0], buf), "rtn-b1-g64-asym", "menu[0]");
        CHECK_STR(c, qfmt_name(&m.v[1], buf), "rtn-b1-g64-asym-had", "menu[1]");
        CHECK_STR(c, qfmt_name(&m.v[16], buf), "gptq-b2-g64-asym", "menu[16]");
        CHECK_STR(c, qfmt_name(&m.v[27], buf), "gptq-b4-g128-asym-had", "menu[27]");
    }
    qfmt_menu_free(&m);

    rc = qfmt_menu_parse(&m, "hadamard;rtn:b=2,2:g=row:s=sym,asym:r=none,had", &e);
    CHECK(c, rc == 0 && m.n == 4, "hadamard first, duplicates dropped: n=%d", m.n);
    if (rc == 0 && m.n == 4)
        CHECK_STR(c, qfmt_name(&m.v[3], buf), "rtn-b2-row-asym-had", "menu[3]");
    qfmt_menu_free(&m);

    static const struct {
        const char *spec, *want;
    } bad[] = {
        {"rtn:b=9", "bad value \"9\" in \"b=9\""},
        {"rtq:b=2", "unknown method \"rtq\""},
        {"rtn:g=64", "has no b="},
        {"rtn:b=2:g=40", "bad value \"40\""},
        {"rtn:b=2:g=8", "bad value \"8\""},
        {"rtn:b=2:x=1", "bad option \"x=1\""},
        {"rtn:b=3..2", "bad value \"3..2\""},
        {"rtn:b=2:s=signed", "bad value \"signed\""},
        {"rtn:b=2:r=hadamard", "bad value \"hadamard\""},
        {"rtn:b=2;", "unknown method \"\""},
        {"rtn:b=2,", "bad value \"\""},
        {"", "format spec is empty"},
        {"hadamard", "no rtn or gptq clause"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        e.msg[0] = 0;
        rc = qfmt_menu_parse(&m, bad[i].spec, &e);
        CHECK(c, rc == VL_ECONFIG && m.n == 0 && m.v == NULL, "spec \"%s\" rejected",
              bad[i].spec);
        CHECK_HAS(c, e.msg, bad[i].want, "error message");
    }
}

int main(void)
{
    chk c;
    chk_init(&c, "test_qfmt");
    test_names(&c);
    test_bits(&c);
    test_menu(&c);
    test_menu_steps(&c);
    return chk_done(&c);
}
