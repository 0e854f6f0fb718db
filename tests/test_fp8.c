/* tests/test_fp8.c — FP8 e4m3 decoding and block-scaled dequantization (io/st, io/st_fp8).
 *
 * Decoding: all 256 codes against the OCP 8-bit floating point specification (E4M3, bias 7,
 * no infinities, S.1111.111 = NaN) computed here in double from the bit fields. Dequantization:
 * a 5×7 weight in 2×3 blocks (partial last block row and column) against q·s recomputed per
 * element; the DeepSeek-V3 fixture's tensors dequantized against the same brute force. Errors:
 * wrong grid, NaN code, negative scale, wrong dtype, a truncated FP8 shard.
 */
#define _POSIX_C_SOURCE 200809L
#include "../io/st.h"
#include "check.h"
#include "testio.h"

#include <math.h>
#include <stdint.h>
#include <unistd.h>

#define DSV3 "tests/fixtures/tiny-deepseek-v3"

/* The spec, from the bit fields: (−1)^S · 2^(E−7) · (1 + M/8), subnormal 2^(−6) · M/8. */
static double e4m3_oracle(unsigned b)
{
    unsigned s = b >> 7, e = (b >> 3) & 15, m = b & 7;
    if (e == 15 && m == 7)
        return NAN;
    double v = e == 0 ? pow(2, -6) * m / 8.0 : pow(2, (int)e - 7) * (1 + m / 8.0);
    return s ? -v : v;
}

static void test_decode(chk *c)
{
    int bad = 0, nans = 0;
    for (unsigned b = 0; b < 256; b++) {
        float got = st_f8e4m3_to_f32((uint8_t)b);
        double want = e4m3_oracle(b);
        if (isnan(want)) {
            nans++;
            bad += !isnan(got);
        } else {
            bad += got != (float)want || !signbit(got) != !signbit(want);
        }
    }
    CHECK_INT(c, bad, 0, "e4m3: all 256 codes decode exactly as the spec says");
    CHECK_INT(c, nans, 2, "e4m3: exactly two NaN codes (0x7f, 0xff)");
    CHECK(c, st_f8e4m3_to_f32(0x7e) == 448.0f, "0x7e = 448 (largest finite)");
    CHECK(c, st_f8e4m3_to_f32(0xfe) == -448.0f, "0xfe = -448");
    CHECK(c, st_f8e4m3_to_f32(0x78) == 256.0f, "0x78 = 256 (exponent 15 is finite)");
    CHECK(c, st_f8e4m3_to_f32(0x38) == 1.0f, "0x38 = 1");
    CHECK(c, st_f8e4m3_to_f32(0x01) == ldexpf(1, -9), "0x01 = 2^-9 (smallest subnormal)");
    CHECK(c, st_f8e4m3_to_f32(0x08) == ldexpf(1, -6), "0x08 = 2^-6 (smallest normal)");
    CHECK(c, st_f8e4m3_to_f32(0x80) == 0 && signbit(st_f8e4m3_to_f32(0x80)), "0x80 = -0");
    CHECK_STR(c, st_dtype_name(ST_F8_E4M3), "F8_E4M3", "dtype name");
    CHECK_INT(c, st_dtype_size(ST_F8_E4M3), 1, "F8_E4M3 size");
    st_dtype d;
    CHECK(c, st_dtype_from_name("F8_E4M3", &d) == 0 && d == ST_F8_E4M3, "F8_E4M3 parses");
    CHECK_INT(c, st_dtype_from_name("F8_E5M2", &d), VL_EDTYPE, "F8_E5M2 is not supported");
}

/* ------------------------------------------------------------------ dequantization */

enum { R = 5, C = 7, BR = 2, BC = 3, GR = 3, GC = 3 };

/* q: codes spread over the whole byte range (the two NaN codes replaced); s: a different
 * scale per block, each exactly representable in BF16 too. */
static void make_block(uint8_t *q, float *s)
{
    for (int i = 0; i < R * C; i++) {
        unsigned b = (unsigned)(i * 37 + 11) & 0xff;
        q[i] = (uint8_t)((b & 0x7f) == 0x7f ? b - 1 : b);
    }
    for (int i = 0; i < GR * GC; i++)
        s[i] = 0.5f + 0.25f * (float)i;
}

static int write_fp8(const char *path, const uint8_t *q, const float *s, int gr, int gc,
                     st_dtype sdt, vl_err *e)
{
    const char *names[] = {"w.weight", "w.weight_scale_inv"};
    st_dtype dt[] = {ST_F8_E4M3, sdt};
    int nd[] = {2, 2};
    int64_t sh[][ST_MAX_DIMS] = {{R, C}, {gr, gc}};
    const void *data[] = {q, s};
    return st_write(path, 2, names, dt, nd, sh, data, e);
}

/* Open PATH and dequantize w.weight with block BR×BC; returns the status, fills e. */
static int open_dequant(const char *path, float *out, vl_err *e)
{
    st_set *set = NULL;
    int rc = st_set_open(&set, path, e);
    if (rc == 0)
        rc = st_fp8_dequant(st_set_find(set, "w.weight"), st_set_find(set, "w.weight_scale_inv"),
                            BR, BC, out, e);
    st_set_close(set);
    return rc;
}

static void test_dequant(chk *c, const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/fp8.safetensors", dir);
    uint8_t q[R * C];
    float s[GR * GC], out[R * C];
    make_block(q, s);
    vl_err e = {0};
    CHECK_INT(c, write_fp8(path, q, s, GR, GC, ST_F32, &e), 0, "write a 5x7 FP8 weight");
    int rc = open_dequant(path, out, &e);
    CHECK(c, rc == 0, "dequantize 5x7 in 2x3 blocks%s%s", rc ? ": " : "", rc ? e.msg : "");
    int bad = 0;
    for (int r = 0; r < R; r++)
        for (int k = 0; k < C; k++) {
            double want = e4m3_oracle(q[r * C + k]) * s[(r / BR) * GC + k / BC];
            bad += out[r * C + k] != (float)want;
        }
    CHECK(c, rc == 0 && bad == 0, "every element = code × its block's scale (partial edge "
          "blocks included), %d wrong", bad);
    float ref[R * C];
    memcpy(ref, out, sizeof ref);

    /* a grid of the wrong shape: 2×3 blocks of a 5×7 weight need 3×3 scales, not 2×3 */
    CHECK_INT(c, write_fp8(path, q, s, 2, 3, ST_F32, &e), 0, "write a short scale grid");
    rc = open_dequant(path, out, &e);
    CHECK_INT(c, rc, VL_ESHAPE, "short scale grid rejected");
    CHECK_HAS(c, e.msg, "w.weight_scale_inv", "grid error names the scale tensor");
    CHECK_HAS(c, e.msg, "expected [3,3]", "grid error gives the expected grid");

    /* a NaN code in the weight */
    uint8_t qn[R * C];
    memcpy(qn, q, sizeof qn);
    qn[12] = 0x7f;
    CHECK_INT(c, write_fp8(path, qn, s, GR, GC, ST_F32, &e), 0, "write a NaN code");
    rc = open_dequant(path, out, &e);
    CHECK_INT(c, rc, VL_ERANGE, "NaN code rejected");
    CHECK_HAS(c, e.msg, "NaN at flat index 12", "NaN error gives the index");

    /* a negative scale */
    float sn[GR * GC];
    memcpy(sn, s, sizeof sn);
    sn[4] = -1;
    CHECK_INT(c, write_fp8(path, q, sn, GR, GC, ST_F32, &e), 0, "write a negative scale");
    rc = open_dequant(path, out, &e);
    CHECK_INT(c, rc, VL_ERANGE, "negative scale rejected");
    CHECK_HAS(c, e.msg, "negative scale", "negative scale message");

    /* scales in BF16 work too (exact: the test scales are bf16 values) */
    uint16_t sb[GR * GC];
    for (int i = 0; i < GR * GC; i++) {
        uint32_t u;
        memcpy(&u, &s[i], 4);
        sb[i] = (uint16_t)(u >> 16);
    }
    CHECK_INT(c, write_fp8(path, q, (const float *)(const void *)sb, GR, GC, ST_BF16, &e), 0,
              "write BF16 scales");
    float out2[R * C];
    rc = open_dequant(path, out2, &e);
    CHECK(c, rc == 0, "BF16 scales accepted");
    CHECK(c, rc == 0 && memcmp(ref, out2, sizeof ref) == 0, "BF16 scales give the same weight");

    /* st_fp8_dequant on a non-FP8 tensor, and a bad block size */
    st_set *set = NULL;
    rc = st_set_open(&set, path, &e);
    if (rc == 0) {
        const st_tensor *w = st_set_find(set, "w.weight"), *sc = st_set_find(set,
                                                                             "w.weight_scale_inv");
        CHECK_INT(c, st_fp8_dequant(sc, sc, BR, BC, out, &e), VL_EDTYPE, "BF16 'weight' refused");
        CHECK_HAS(c, e.msg, "expected F8_E4M3", "dtype message");
        CHECK_INT(c, st_fp8_dequant(w, sc, 0, BC, out, &e), VL_EARG, "block size 0 refused");
    }
    st_set_close(set);
    char nm[24];
    CHECK_INT(c, st_fp8_scale_name("a.weight", nm, sizeof nm), 0, "scale name fits");
    CHECK_STR(c, nm, "a.weight_scale_inv", "scale name");
    CHECK_INT(c, st_fp8_scale_name("abcdefghijklm.weight", nm, sizeof nm), VL_EARG,
              "scale name too long for the buffer");
    unlink(path);
}

/* Every FP8 tensor of the DeepSeek-V3 fixture: its scale grid fits 128×128 blocks and the
 * dequantized weight is code × block scale; the largest |code| of each block is near 448 (the
 * fixture's quantizer scaled each block's absmax to the top of the range). */
static void test_fixture(chk *c)
{
    st_set *set = NULL;
    vl_err e = {0};
    int rc = st_set_open(&set, DSV3 "/model.safetensors", &e);
    CHECK(c, rc == 0, "open the DeepSeek-V3 fixture%s%s", rc ? ": " : "", rc ? e.msg : "");
    if (rc)
        return;
    int n_fp8 = 0, bad = 0, fails = 0, partial = 0;
    for (size_t i = 0; i < st_set_count(set); i++) {
        const st_tensor *t = st_set_at(set, i);
        if (t->dtype != ST_F8_E4M3)
            continue;
        n_fp8++;
        char sn[256];
        st_fp8_scale_name(t->name, sn, sizeof sn);
        const st_tensor *s = st_set_find(set, sn);
        float *w = malloc(sizeof(float) * (size_t)t->numel);
        float *sv = s ? malloc(sizeof(float) * (size_t)s->numel) : NULL;
        if (!s || st_fp8_dequant(t, s, 128, 128, w, &e) || st_tensor_to_f32(s, sv, &e)) {
            fails++;
        } else {
            int64_t C2 = t->shape[1];
            partial += t->shape[0] % 128 != 0 || C2 % 128 != 0;
            for (int64_t k = 0; k < t->numel; k++) {
                int64_t r = k / C2, col = k % C2;
                float want = st_f8e4m3_to_f32(((const uint8_t *)t->data)[k]) *
                             sv[(r / 128) * s->shape[1] + col / 128];
                bad += w[k] != want;
            }
        }
        free(w);
        free(sv);
    }
    CHECK(c, n_fp8 > 0 && fails == 0, "fixture: %d FP8 tensors dequantize (%d failed: %s)",
          n_fp8, fails, fails ? e.msg : "-");
    CHECK_INT(c, bad, 0, "fixture: every element = code × block scale");
    CHECK(c, partial > 0, "fixture has partial edge blocks (%d tensors)", partial);
    st_set_close(set);
}

/* A shard cut inside the FP8 data: the open fails naming the file and the tensor. */
static void test_truncated(chk *c, const char *dir)
{
    size_t n = 0;
    char *bytes = tio_slurp(DSV3 "/model.safetensors", &n);
    CHECK(c, bytes && n > 4096, "read the fixture shard");
    if (!bytes)
        return;
    char path[512];
    snprintf(path, sizeof path, "%s/cut.safetensors", dir);
    FILE *f = fopen(path, "wb");
    size_t keep = n - 1000; /* the last tensors are FP8 (data ordered by offset) */
    fwrite(bytes, 1, keep, f);
    fclose(f);
    st_set *set = NULL;
    vl_err e = {0};
    int rc = st_set_open(&set, path, &e);
    CHECK_INT(c, rc, VL_ETRUNC, "truncated FP8 shard rejected");
    CHECK_HAS(c, e.msg, path, "error names the shard");
    CHECK_HAS(c, e.msg, "ends past the data section", "error says the data is cut");
    CHECK(c, strchr(e.msg, '\n') == NULL, "one line");
    st_set_close(set);
    unlink(path);
    free(bytes);
}

int main(void)
{
    chk c;
    chk_init(&c, "test_fp8");
    char dir[64];
    if (tio_tmpdir(dir, sizeof dir, "test-fp8"))
        return 2;
    test_decode(&c);
    test_dequant(&c, dir);
    test_fixture(&c);
    test_truncated(&c, dir);
    rmdir(dir);
    return chk_done(&c);
}
