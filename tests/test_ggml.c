/* tests/test_ggml.c — ggml block formats (alloc/ggml_fmt.h): bit-exact decode of every type on
 * llama.cpp's goldens (tests/fixtures/ggml/ggml_goldens.h5, made by make_goldens.c/pack.py),
 * block sizes and bpw from ggml-common.h, fp16 conversion over all 65536 halves, short and
 * corrupt block input, and the quantizers' importance-weighted error against llama.cpp's. */
#include "../alloc/ggml_check.h"
#include "../alloc/fq.h"
#include "../alloc/ggml_fmt.h"
#include "../alloc/qfmt.h"
#include "../io/h5s.h"
#include "check.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define GOLDENS "tests/fixtures/ggml/ggml_goldens.h5"

static void test_table(chk *c)
{
    /* bpw as llama.cpp reports them (ggml_type_size·8/blck_size) */
    static const struct { const char *n; int id; double bpw; } want[] = {
        {"q4_0", 2, 4.5},     {"q4_1", 3, 5.0},      {"q5_0", 6, 5.5},     {"q5_1", 7, 6.0},
        {"q8_0", 8, 8.5},     {"q2_K", 10, 2.625},   {"q3_K", 11, 3.4375}, {"q4_K", 12, 4.5},
        {"q5_K", 13, 5.5},    {"q6_K", 14, 6.5625},  {"iq2_xxs", 16, 2.0625},
        {"iq2_xs", 17, 2.3125}, {"iq3_xxs", 18, 3.0625}, {"iq1_s", 19, 1.5625},
        {"iq4_nl", 20, 4.5},  {"iq3_s", 21, 3.4375}, {"iq2_s", 22, 2.5625}, {"iq4_xs", 23, 4.25},
        {"iq1_m", 29, 1.75},  {"f16", 1, 16},        {"bf16", 30, 16},     {"f32", 0, 32}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int t = ggf_from_name(want[i].n);
        CHECK(c, t >= 0 && ggf_get(t)->ggml_id == want[i].id && ggf_bpw(t) == want[i].bpw &&
                     ggf_from_id(want[i].id) == t,
              "type %s: id %d, bpw %g", want[i].n, want[i].id, want[i].bpw);
    }
    CHECK(c, ggf_from_name("Q4_K") < 0 && ggf_from_name("q4") < 0, "unknown names rejected");
    CHECK_INT(c, ggf_row_bytes(GGF_Q4_K, 512), 288, "q4_K row of 512");
    CHECK_INT(c, ggf_row_bytes(GGF_Q4_K, 100), -1, "q4_K row of 100");
}

static void test_f16(chk *c)
{
    int bad = 0;
    for (int h = 0; h < 65536; h++) {
        float f = ggf_f16_to_f32((uint16_t)h);
        if (isnan(f)) {
            bad += (h & 0x7c00) != 0x7c00 || !(h & 0x3ff);
            continue;
        }
        bad += ggf_f32_to_f16(f) != h;
        /* the midpoint to the next half rounds to the even one */
        float g = ggf_f16_to_f32((uint16_t)(h + 1));
        if ((h & 0x7fff) < 0x7bff && !(h & 0x8000)) {
            double mid = ((double)f + g) / 2;
            uint16_t r = ggf_f32_to_f16((float)mid);
            bad += r != ((h & 1) ? h + 1 : h);
        }
    }
    CHECK_INT(c, bad, 0, "fp16 round trip and ties-to-even over all halves");
    CHECK_INT(c, ggf_f32_to_f16(1e6f), 0x7c00, "overflow to +Inf");
    CHECK_INT(c, ggf_f32_to_f16(1e-9f), 0, "underflow to +0");
}

/* Every type in the goldens decodes bit for bit (imatrix_q vs imatrix_deq), per type. */
static void test_decode_goldens(chk *c)
{
    for (int t = 0; t < GGF_F32; t++) {
        ggf_check_result r;
        vl_err e = {0};
        /* ratio bound huge: this test is about decoding only */
        int rc = ggf_check_goldens(GOLDENS, ggf_get(t)->name, 1e300, NULL, &r, &e);
        CHECK(c, rc == 0 && r.n_lines == 2 && r.n_decode_bad == 0,
              "goldens decode %s: %d cases, %d mismatches (%s)", ggf_get(t)->name, r.n_lines,
              r.n_decode_bad, e.msg);
    }
}

static void test_bad_input(chk *c)
{
    h5s_store *s = NULL;
    vl_err e = {0};
    uint8_t *q = NULL;
    int nd;
    int64_t sh[H5S_MAX_DIMS];
    CHECK(c, h5s_open(&s, GOLDENS, &e) == 0, "open goldens");
    if (!s) return;
    for (int t = 0; t < GGF_F32; t++) {
        char p[128];
        snprintf(p, sizeof p, "/synthetic/%s/imatrix_q", ggf_get(t)->name);
        if (h5s_read(s, p, H5S_U8, (void **)&q, &nd, sh, &e)) {
            CHECK(c, 0, "read %s", p);
            continue;
        }
        float y[512];
        size_t rb = (size_t)sh[1];
        int ok = ggf_decode_row(t, q, rb, y, 512, &e) == 0;
        int sh_short = ggf_decode_row(t, q, rb - 1, y, 512, &e) == VL_ETRUNC;
        int sh_long = ggf_decode_row(t, q, rb + 1, y, 512, &e) == VL_EFORMAT;
        int sh_n = ggf_decode_row(t, q, rb, y, 500, &e) == VL_ESHAPE;
        /* corrupt: the fp16 scale of the second block set to NaN (iq1_m: its scattered scale) */
        int bs = ggf_get(t)->bytes, nsc = 0;
        if (t == GGF_IQ1_M) {
            for (int k = 0; k < 4; k++) q[bs + 48 + 2 * k + 1] |= 0xf0;
        } else {
            int offs[] = {t == GGF_Q2_K ? 80 : t == GGF_Q3_K ? 108 : t == GGF_Q6_K ? 208 : 0};
            q[bs + offs[0]] = 0x01, q[bs + offs[0] + 1] = 0x7e;
        }
        nsc = ggf_decode_row(t, q, rb, y, 512, &e);
        int corrupt = nsc == VL_EFORMAT && strstr(e.msg, "block 1") != NULL;
        CHECK(c, ok && sh_short && sh_long && sh_n && corrupt,
              "%s: short/long/bad-length/corrupt rows rejected (%s)", ggf_get(t)->name, e.msg);
        vl_free(q);
        q = NULL;
    }
    h5s_close(s);
}

/* Zero rows decode to zeros, a constant row is reproduced closely, NULL importance works, and
 * non-finite input is refused. */
static void test_quant_edges(chk *c)
{
    float x[512], y[512], imp[512];
    uint8_t q[512 * 5];
    for (int t = 0; t < GGF_COUNT; t++) {
        vl_err e = {0};
        int64_t rb = ggf_row_bytes(t, 512);
        memset(x, 0, sizeof x);
        int rc = ggf_quantize_row(t, x, NULL, 512, q, &e) || ggf_decode_row(t, q, (size_t)rb, y, 512, &e);
        int zero = 1;
        for (int i = 0; i < 512; i++) zero &= y[i] == 0;
        /* a smooth row: error well below the row's energy */
        double en = 0, er = 0;
        for (int i = 0; i < 512; i++) x[i] = 0.05f * sinf(0.37f * (float)i) + 0.01f, imp[i] = 1.0f + (float)(i % 7);
        rc |= ggf_quantize_row(t, x, imp, 512, q, &e) || ggf_decode_row(t, q, (size_t)rb, y, 512, &e);
        for (int i = 0; i < 512; i++) en += (double)imp[i] * x[i] * x[i], er += (double)imp[i] * (x[i] - y[i]) * (x[i] - y[i]);
        x[17] = NAN;
        int nan = ggf_quantize_row(t, x, imp, 512, q, &e) == VL_ERANGE;
        x[17] = 0;
        imp[3] = -1;
        int negimp = ggf_quantize_row(t, x, imp, 512, q, &e) == VL_ERANGE;
        CHECK(c, !rc && zero && er < 0.25 * en && nan && negimp,
              "%s: zero row, smooth row (rel. error %.3g), NaN and negative importance refused",
              ggf_get(t)->name, er / en);
    }
}

static void test_quant_goldens(chk *c)
{
    ggf_check_result r;
    vl_err e = {0};
    int rc = ggf_check_goldens(GOLDENS, NULL, 1.02, stdout, &r, &e);
    CHECK(c, rc == 0 && r.n_lines == 38 && r.n_decode_bad == 0,
          "ggml-check: %d lines, %d decode mismatches (%s)", r.n_lines, r.n_decode_bad, e.msg);
    CHECK(c, r.n_ratio_bad == 0, "every type within 1.02x of llama.cpp's weighted error "
          "(%d above, worst %.4f)", r.n_ratio_bad, r.worst_ratio);
}

/* ggml formats inside vbrlab's format machinery: names, menu clause, bits, fake quantization. */
static void test_qfmt_ggml(chk *c)
{
    qfmt_menu m;
    vl_err e = {0};
    int rc = qfmt_menu_parse(&m, "ggml:q2_K,iq2_xs,q2_K;rtn:b=2;hadamard", &e);
    char n0[QFMT_NAME_MAX], n1[QFMT_NAME_MAX];
    CHECK(c, rc == 0 && m.n == 4 && !strcmp(qfmt_name(&m.v[0], n0), "ggml-q2_K") &&
                 !strcmp(qfmt_name(&m.v[1], n1), "ggml-iq2_xs") && m.v[2].method == QFMT_RTN &&
                 m.v[3].rot == QFMT_ROT_HAD,
          "menu: 2 ggml formats (duplicate dropped, no Hadamard twin) + rtn-b2 and its twin (%d, %s)", m.n, e.msg);
    qfmt f;
    CHECK(c, rc == 0 && qfmt_parse(&f, "ggml-iq2_xs", &e) == 0 && !memcmp(&f, &m.v[1], sizeof f),
          "ggml-iq2_xs parses to the menu's format");
    /* bits as llama.cpp counts them: 10 rows × 2 blocks × 74 bytes */
    CHECK_INT(c, qfmt_bits(&m.v[1], 10, 512), 10 * 2 * 74 * 8, "iq2_xs bits of 10 x 512");
    CHECK(c, fabs(qfmt_bpw(&m.v[0], 4, 256) - 2.625) < 1e-12, "q2_K bpw 2.625");
    qfmt_menu_free(&m);
    CHECK(c, qfmt_menu_parse(&m, "ggml:q2_K,q9_K", &e) == VL_ECONFIG && strstr(e.msg, "q9_K"), "unknown type refused: %s", e.msg);
    CHECK(c, qfmt_menu_parse(&m, "ggml", &e) == VL_ECONFIG, "ggml clause without types refused: %s", e.msg);
    /* fq_tensor = row-wise quantize + decode with the importance */
    float w[4 * 256], out[4 * 256], ref[256];
    double imp[256];
    for (int i = 0; i < 4 * 256; i++) w[i] = 0.02f * sinf(0.11f * (float)i * (float)(i % 13));
    for (int j = 0; j < 256; j++) imp[j] = 0.5 + (j % 5);
    qfmt_parse(&f, "ggml-q3_K", &e);
    fq_stats st = {imp, NULL, 100};
    rc = fq_tensor(out, w, 4, 256, &f, &st, NULL, NULL, NULL, "t", &e);
    float fi[256];
    uint8_t q[110];
    for (int j = 0; j < 256; j++) fi[j] = (float)imp[j];
    ggf_quantize_row(GGF_Q3_K, w + 512, fi, 256, q, &e);
    ggf_decode_row(GGF_Q3_K, q, 110, ref, 256, &e);
    CHECK(c, rc == 0 && !memcmp(out + 512, ref, sizeof ref), "fq_tensor ggml-q3_K row = quantize+decode (%s)", e.msg);
    CHECK(c, fq_tensor(out, w, 8, 128, &f, &st, NULL, NULL, NULL, "t", &e) == VL_ESHAPE, "128 columns refused for q3_K: %s", e.msg);
}

int main(void)
{
    chk c;
    chk_init(&c, "test_ggml");
    test_table(&c);
    test_f16(&c);
    test_decode_goldens(&c);
    test_bad_input(&c);
    test_quant_edges(&c);
    test_qfmt_ggml(&c);
    test_quant_goldens(&c);
    return chk_done(&c);
}
