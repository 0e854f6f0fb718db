/* tests/test_st.c — safetensors reader and writer.
 *
 * The embedded model (sharded, bf16), exhaustive f16/bf16 conversion against a formula oracle,
 * st_write round trips, a table of corrupt files built here (expected code and message in the
 * table), shard-index errors, and a truncation sweep over every prefix of a valid file.
 * Fixtures go to a mkdtemp directory under /tmp that is removed at the end.
 */
#define _POSIX_C_SOURCE 200809L
#include "../io/st.h"
#include "check.h"
#include "testio.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODEL "models/vbrlab-moe-tiny"

/* ------------------------------------------------------------------ fixture helpers */

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
        fprintf(stderr, "cannot write fixture %s\n", path);
        exit(2);
    }
}


/* A raw safetensors file: 8-byte LE header length hlen (may lie), header text, dlen data bytes
 * (a fixed pattern). */
static void write_raw(const char *path, uint64_t hlen, const char *hdr, size_t dlen)
{
    size_t tl = strlen(hdr);
    unsigned char *b = calloc(8 + tl + dlen + 1, 1);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(b + 8, hdr, tl);
    for (size_t i = 0; i < dlen; i++)
        b[8 + tl + i] = (unsigned char)(i * 7 + 1) & 0x3f; /* small positive floats/halves */
    write_bytes(path, b, 8 + tl + dlen);
    free(b);
}

/* ------------------------------------------------------------------ oracles */

/* binary16 value from its fields: (-1)^s · 2^(e−15) · (1 + m/1024), subnormal m · 2^-24. */
static double f16_oracle(unsigned h)
{
    unsigned s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 31 ? (m ? NAN : INFINITY) : e == 0 ? ldexp(m, -24) : ldexp(1024 + m, (int)e - 25);
    return s ? -v : v;
}

/* bfloat16: (-1)^s · 2^(e−127) · (1 + m/128), subnormal m · 2^-133. */
static double bf16_oracle(unsigned h)
{
    unsigned s = h >> 15, e = (h >> 7) & 255, m = h & 127;
    double v = e == 255 ? (m ? NAN : INFINITY) : e == 0 ? ldexp(m, -133) : ldexp(128 + m, (int)e - 134);
    return s ? -v : v;
}

static int same_value(float got, double want)
{
    if (isnan(want))
        return isnan(got);
    return got == (float)want && !signbit(got) == !signbit(want);
}

static void test_converters(chk *c)
{
    long bad16 = 0, badbf = 0;
    for (unsigned h = 0; h < 65536; h++) {
        bad16 += !same_value(st_f16_to_f32((uint16_t)h), f16_oracle(h));
        badbf += !same_value(st_bf16_to_f32((uint16_t)h), bf16_oracle(h));
    }
    CHECK_INT(c, bad16, 0, "f16: all 65536 values exact");
    CHECK_INT(c, badbf, 0, "bf16: all 65536 values exact");
    CHECK(c, st_f16_to_f32(0x0001) == ldexpf(1, -24), "f16 smallest subnormal = 2^-24");
    CHECK(c, st_f16_to_f32(0x7bff) == 65504.0f, "f16 max = 65504");
    CHECK(c, st_bf16_to_f32(0x3f80) == 1.0f, "bf16 0x3f80 = 1");
    CHECK_STR(c, st_dtype_name(ST_BF16), "BF16", "dtype name");
    CHECK_INT(c, st_dtype_size(ST_F32), 4, "F32 size");
    CHECK_INT(c, st_dtype_size(ST_F16), 2, "F16 size");
    CHECK_INT(c, st_dtype_size(ST_F8_E4M3), 1, "F8_E4M3 size");
    /* e4m3fn by hand: 0x38 = 2^0, 0x7e = 1.75·2^8 (the largest), 0x01 = 2^-9 (smallest
     * subnormal), 0x0f = 1.875·2^-6, 0xb8 = -1, 0x7f/0xff NaN */
    CHECK(c, st_f8e4m3_to_f32(0x38) == 1.0f && st_f8e4m3_to_f32(0x7e) == 448.0f &&
             st_f8e4m3_to_f32(0x01) == ldexpf(1.0f, -9) &&
             st_f8e4m3_to_f32(0x0f) == 1.875f * ldexpf(1.0f, -6) &&
             st_f8e4m3_to_f32(0xb8) == -1.0f && isnan(st_f8e4m3_to_f32(0x7f)) &&
             isnan(st_f8e4m3_to_f32(0xff)), "F8_E4M3 decoding");
}

/* ------------------------------------------------------------------ embedded model */

static void test_model(chk *c)
{
    st_set *s = NULL;
    vl_err err = {0};
    int rc = st_set_open(&s, MODEL, &err);
    CHECK_INT(c, rc, 0, "open embedded model");
    if (rc) {
        printf("  %s\n", err.msg);
        return;
    }
    /* 2 + 6 layers × (16 experts × 3 + router + 3 shared + shared gate + 2 norms + 4 attn
     * weights + 3 biases) */
    CHECK_INT(c, st_set_count(s), 2 + 6 * 62, "tensor count");
    int64_t numel = 0;
    int all_bf16 = 1, found_all = 1, ordered = 1, finite = 1;
    for (size_t i = 0; i < st_set_count(s); i++) {
        const st_tensor *t = st_set_at(s, i);
        numel += t->numel;
        all_bf16 &= t->dtype == ST_BF16;
        found_all &= st_set_find(s, t->name) == t;
        if (i > 0 && st_set_at(s, i - 1)->file == t->file)
            ordered &= (const char *)st_set_at(s, i - 1)->data < (const char *)t->data;
        if (i > 0 && st_set_at(s, i - 1)->file != t->file)
            ordered &= strcmp(st_set_at(s, i - 1)->file, t->file) < 0;
        float *buf = malloc((size_t)t->numel * sizeof *buf);
        finite &= st_tensor_to_f32(t, buf, &err) == 0;
        free(buf);
    }
    CHECK_INT(c, numel, 25460480, "total parameters (MODEL_CARD)");
    CHECK_INT(c, st_set_nbytes(s), 50920960, "total bytes");
    CHECK(c, all_bf16, "every tensor is BF16");
    CHECK(c, found_all, "st_set_find finds every tensor by name");
    CHECK(c, ordered, "file order: shards sorted, data offsets increasing");
    CHECK(c, finite, "every weight finite");
    CHECK(c, st_set_find(s, "model.embed_tokens") == NULL, "absent name → NULL");

    const st_tensor *e = st_set_find(s, "model.embed_tokens.weight");
    CHECK(c, e != NULL, "embed_tokens found");
    if (e) {
        CHECK_INT(c, e->ndim, 2, "embed ndim");
        CHECK_INT(c, e->shape[0], 16384, "embed rows");
        CHECK_INT(c, e->shape[1], 256, "embed cols");
        CHECK_HAS(c, e->file, "model-00001-of-00005.safetensors", "embed shard");
        float *f = malloc(16384 * 256 * sizeof *f);
        CHECK_INT(c, st_tensor_to_f32(e, f, &err), 0, "embed to f32");
        long idx[] = {0, 1, 255, 256, 12345, 16384L * 256 - 1};
        int exact = 1;
        for (size_t k = 0; k < sizeof idx / sizeof idx[0]; k++) {
            const unsigned char *b = (const unsigned char *)e->data + 2 * idx[k];
            unsigned h = b[0] | (unsigned)b[1] << 8;
            exact &= same_value(f[idx[k]], bf16_oracle(h));
        }
        CHECK(c, exact, "embed spot checks: bf16 bits → float exactly");
        double ss = 0;
        for (long i = 0; i < 16384L * 256; i++)
            ss += (double)f[i] * f[i];
        CHECK(c, ss > 0, "embed is not all zero (sum sq %g)", ss);
        free(f);
    }
    st_set_close(s);
}

/* ------------------------------------------------------------------ round trip */

static void test_roundtrip(chk *c, const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    float f32[6] = {1.5f, -2.25f, 0.0f, 3e-38f, 65504.0f, -1e30f};
    uint16_t f16[4] = {0x3c00, 0xc000, 0x0001, 0x7bff};  /* 1, -2, 2^-24, 65504 */
    uint16_t bf16[3] = {0x3f80, 0xbf00, 0x0001};         /* 1, -0.5, 2^-133 */
    float want_f16[4] = {1, -2, ldexpf(1, -24), 65504};
    float want_bf16[3] = {1, -0.5f, ldexpf(1, -133)};
    const char *names[] = {"w.f32", "w.f16", "w.bf16", "empty", "scalar"};
    st_dtype dt[] = {ST_F32, ST_F16, ST_BF16, ST_F32, ST_F32};
    int nd[] = {2, 1, 3, 2, 0};
    int64_t shapes[][ST_MAX_DIMS] = {{2, 3}, {4}, {1, 3, 1}, {0, 5}, {0}};
    float scalar = 42.0f;
    const void *data[] = {f32, f16, bf16, NULL, &scalar};
    vl_err err = {0};
    CHECK_INT(c, st_write(path, 5, names, dt, nd, shapes, data, &err), 0, "st_write");
    CHECK(c, access(path, F_OK) == 0, "written file exists");
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(c, access(tmp, F_OK) != 0, "no .tmp left behind");

    size_t n = 0;
    unsigned char *raw = (unsigned char *)tio_slurp(path, &n);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | raw[i];
    CHECK_INT(c, (8 + hl) % 8, 0, "data section 8-aligned");
    CHECK_INT(c, n, 8 + hl + sizeof f32 + sizeof f16 + sizeof bf16 + sizeof scalar, "file size");
    free(raw);

    st_set *s = NULL;
    int rc = st_set_open(&s, path, &err);
    CHECK_INT(c, rc, 0, "reopen");
    if (rc) {
        printf("  %s\n", err.msg);
        return;
    }
    CHECK_INT(c, st_set_count(s), 5, "count");
    CHECK_STR(c, st_set_at(s, 0)->name, "w.f32", "file order keeps the written order");
    const st_tensor *t = st_set_find(s, "w.f32");
    float got[6];
    CHECK(c, t && t->dtype == ST_F32 && t->ndim == 2 && t->shape[1] == 3 && t->numel == 6,
          "f32 meta");
    CHECK(c, t && memcmp(t->data, f32, sizeof f32) == 0, "f32 bytes");
    CHECK(c, t && st_tensor_to_f32(t, got, &err) == 0 && memcmp(got, f32, sizeof f32) == 0,
          "f32 values");
    t = st_set_find(s, "w.f16");
    CHECK(c, t && t->dtype == ST_F16 && t->numel == 4 && t->nbytes == 8, "f16 meta");
    CHECK(c, t && st_tensor_to_f32(t, got, &err) == 0 && memcmp(got, want_f16, sizeof want_f16) == 0,
          "f16 values");
    t = st_set_find(s, "w.bf16");
    CHECK(c, t && t->dtype == ST_BF16 && t->ndim == 3 && t->numel == 3, "bf16 meta");
    CHECK(c, t && st_tensor_to_f32(t, got, &err) == 0 &&
                 memcmp(got, want_bf16, sizeof want_bf16) == 0,
          "bf16 values");
    t = st_set_find(s, "empty");
    CHECK(c, t && t->numel == 0 && t->nbytes == 0 && st_tensor_to_f32(t, got, &err) == 0,
          "empty tensor");
    t = st_set_find(s, "scalar");
    CHECK(c, t && t->ndim == 0 && t->numel == 1 && st_tensor_to_f32(t, got, &err) == 0 &&
                 got[0] == 42.0f,
          "0-dim scalar");
    st_set_close(s);
    st_set_close(NULL);

    /* A directory holding only model.safetensors opens as a one-file set. */
    char sub[512], single[600];
    snprintf(sub, sizeof sub, "%s/single", dir);
    mkdir(sub, 0700);
    snprintf(single, sizeof single, "%s/model.safetensors", sub);
    CHECK_INT(c, st_write(single, 1, names, dt, nd, shapes, data, &err), 0, "write single");
    rc = st_set_open(&s, sub, &err);
    CHECK(c, rc == 0 && st_set_count(s) == 1 && st_set_find(s, "w.f32"), "dir with model.safetensors");
    st_set_close(s);

    /* Writer argument checks. */
    const char *dup[] = {"a", "a"};
    rc = st_write(path, 2, dup, dt, nd, shapes, data, &err);
    CHECK_INT(c, rc, VL_EARG, "st_write duplicate names");
    CHECK_HAS(c, err.msg, "duplicate name", "st_write duplicate message");
}

/* ------------------------------------------------------------------ corrupt files */

typedef struct {
    const char *label;
    const char *header;   /* JSON text */
    int64_t hlen;         /* header length written; -1 = strlen(header) */
    size_t dlen;          /* data bytes after the header */
    int code;
    const char *msg;      /* expected substring (the file name is checked separately) */
} corrupt_case;

static const corrupt_case k_corrupt[] = {
    {"header length past file", "{}", 1000, 0, VL_ETRUNC, "header length 1000 exceeds the file"},
    {"header length 2^64-1", "{}", INT64_MIN, 0, VL_ETRUNC, "exceeds the file"},
    {"bad JSON", "{\"a\": {\"dtype\": \"F32\",}}", -1, 0, VL_EFORMAT, "header JSON: line 1 column"},
    {"header not an object", "[1, 2]", -1, 0, VL_EFORMAT, "header JSON is not an object"},
    {"entry not an object", "{\"a\": 3}", -1, 0, VL_EFORMAT, "tensor \"a\": entry is not an object"},
    {"invalid UTF-8 name", "{\"\xff\": {}}", -1, 0, VL_EFORMAT, "header JSON: line 1"},
    {"missing dtype", "{\"a\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", -1, 8, VL_EFORMAT,
     "tensor \"a\": missing \"dtype\""},
    {"dtype I8", "{\"a\": {\"dtype\": \"I8\", \"shape\": [2], \"data_offsets\": [0, 2]}}", -1, 2,
     VL_EDTYPE, "tensor \"a\": dtype I8 not supported"},
    {"dtype F64", "{\"w\": {\"dtype\": \"F64\", \"shape\": [1], \"data_offsets\": [0, 8]}}", -1, 8,
     VL_EDTYPE, "tensor \"w\": dtype F64 not supported"},
    {"dtype F8_E5M2", "{\"q\": {\"dtype\": \"F8_E5M2\", \"shape\": [1], \"data_offsets\": [0, 1]}}",
     -1, 1, VL_EDTYPE, "tensor \"q\": dtype F8_E5M2 not supported"},
    {"missing shape", "{\"a\": {\"dtype\": \"F32\", \"data_offsets\": [0, 8]}}", -1, 8, VL_EFORMAT,
     "tensor \"a\": missing \"shape\""},
    {"negative shape", "{\"a\": {\"dtype\": \"F32\", \"shape\": [2, -3], \"data_offsets\": [0, 8]}}",
     -1, 8, VL_ESHAPE, "tensor \"a\": shape[1] = -3 is negative"},
    {"fractional shape", "{\"a\": {\"dtype\": \"F32\", \"shape\": [2.5], \"data_offsets\": [0, 8]}}",
     -1, 8, VL_ESHAPE, "shape[0] is not an integer"},
    {"9 dimensions",
     "{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", -1, 4,
     VL_ESHAPE, "9 dimensions, at most 8"},
    {"shape product overflow",
     "{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 8]}}",
     -1, 8, VL_ESHAPE, "tensor \"a\": shape product overflows"},
    {"bytes overflow",
     "{\"a\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904], \"data_offsets\": [0, 8]}}", -1, 8,
     VL_ESHAPE, "shape product overflows"},
    {"missing data_offsets", "{\"a\": {\"dtype\": \"F32\", \"shape\": [2]}}", -1, 8, VL_EFORMAT,
     "missing \"data_offsets\""},
    {"one offset", "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0]}}", -1, 8,
     VL_EFORMAT, "two non-negative integers"},
    {"negative offset", "{\"a\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [-4, 0]}}", -1,
     8, VL_EFORMAT, "two non-negative integers"},
    {"begin > end", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}", -1, 8,
     VL_EFORMAT, "tensor \"a\": data_offsets [8, 4]: begin > end"},
    {"end past data", "{\"a\": {\"dtype\": \"F32\", \"shape\": [250], \"data_offsets\": [0, 1000]}}",
     -1, 16, VL_ETRUNC, "tensor \"a\": data range [0, 1000) ends past the data section (16 bytes)"},
    {"size != numel x dtype", "{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}",
     -1, 16, VL_ESHAPE, "tensor \"a\": data range is 8 bytes, shape × F32 needs 12"},
    {"overlap",
     "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
     " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
     -1, 16, VL_EFORMAT, "tensor \"b\": data range [4, 12) overlaps tensor \"a\""},
    {"overlap, reverse header order",
     "{\"b\": {\"dtype\": \"BF16\", \"shape\": [4], \"data_offsets\": [8, 16]},"
     " \"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 12]}}",
     -1, 16, VL_EFORMAT, "tensor \"b\": data range [8, 16) overlaps tensor \"a\""},
    {"duplicate name",
     "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
     " \"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}",
     -1, 16, VL_EFORMAT, "duplicate tensor name"},
};

static void test_corrupt(chk *c, const char *dir)
{
    char path[512];
    vl_err err;
    for (size_t i = 0; i < sizeof k_corrupt / sizeof k_corrupt[0]; i++) {
        const corrupt_case *k = &k_corrupt[i];
        snprintf(path, sizeof path, "%s/bad%02zu.safetensors", dir, i);
        uint64_t hl = k->hlen == INT64_MIN ? UINT64_MAX
                      : k->hlen < 0        ? strlen(k->header)
                                           : (uint64_t)k->hlen;
        write_raw(path, hl, k->header, k->dlen);
        st_set *s = NULL;
        err = (vl_err){0};
        int rc = st_set_open(&s, path, &err);
        CHECK_INT(c, rc, k->code, k->label);
        CHECK(c, s == NULL, "%s: no set on failure", k->label);
        CHECK_HAS(c, err.msg, path, k->label);
        CHECK_HAS(c, err.msg, k->msg, k->label);
        st_set_close(s);
    }

    /* Shorter than the length field itself. */
    snprintf(path, sizeof path, "%s/short.safetensors", dir);
    write_bytes(path, "\x02\0\0\0\0", 5);
    st_set *s = NULL;
    CHECK_INT(c, st_set_open(&s, path, &err), VL_ETRUNC, "5-byte file");
    CHECK_HAS(c, err.msg, "5 bytes, shorter than the 8-byte header length", "5-byte file msg");

    /* A header length that fits the file but is beyond the sanity limit: a sparse 160 MB file. */
    snprintf(path, sizeof path, "%s/huge.safetensors", dir);
    write_raw(path, 150u << 20, "{}", 0);
    CHECK(c, truncate(path, 160 << 20) == 0, "make sparse file");
    CHECK_INT(c, st_set_open(&s, path, &err), VL_EFORMAT, "header length over the limit");
    CHECK_HAS(c, err.msg, "header length 157286400 exceeds the 104857600-byte limit", "limit msg");
    unlink(path);

    CHECK_INT(c, st_set_open(&s, "/nonexistent/x.safetensors", &err), VL_ENOTFOUND, "no file");
    CHECK_HAS(c, err.msg, "/nonexistent/x.safetensors", "no file msg");
    CHECK_INT(c, st_set_open(&s, dir, &err), VL_ENOTFOUND, "dir without model files");
    CHECK_HAS(c, err.msg, "no model.safetensors.index.json or model.safetensors", "empty dir msg");
}

/* NaN/Inf are found at conversion, with file, tensor and flat index. */
static void test_nonfinite(chk *c, const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/nan.safetensors", dir);
    float f32[8] = {0, 1, 2, 3, 4, NAN, 6, 7};
    uint16_t bf16[4] = {0x3f80, 0x3f80, 0xff80, 0}; /* -Inf at 2 */
    uint16_t f16[3] = {0x3c00, 0x7e00, 0};          /* NaN at 1 */
    uint16_t f16inf[2] = {0x7c00, 0};               /* +Inf at 0 */
    const char *names[] = {"w.nan", "w.inf", "h.nan", "h.inf"};
    st_dtype dt[] = {ST_F32, ST_BF16, ST_F16, ST_F16};
    int nd[] = {2, 1, 1, 1};
    int64_t shapes[][ST_MAX_DIMS] = {{2, 4}, {4}, {3}, {2}};
    const void *data[] = {f32, bf16, f16, f16inf};
    vl_err err = {0};
    CHECK_INT(c, st_write(path, 4, names, dt, nd, shapes, data, &err), 0, "write nan file");
    st_set *s = NULL;
    CHECK_INT(c, st_set_open(&s, path, &err), 0, "NaN weights still open (checked at to_f32)");
    if (!s)
        return;
    static const struct {
        const char *name, *msg;
    } want[] = {{"w.nan", "tensor \"w.nan\": NaN at flat index 5"},
                {"w.inf", "tensor \"w.inf\": Inf at flat index 2"},
                {"h.nan", "tensor \"h.nan\": NaN at flat index 1"},
                {"h.inf", "tensor \"h.inf\": Inf at flat index 0"}};
    float buf[8];
    for (size_t i = 0; i < 4; i++) {
        err = (vl_err){0};
        CHECK_INT(c, st_tensor_to_f32(st_set_find(s, want[i].name), buf, &err), VL_ERANGE,
                  want[i].name);
        CHECK_HAS(c, err.msg, path, want[i].name);
        CHECK_HAS(c, err.msg, want[i].msg, want[i].name);
    }
    st_set_close(s);
}

/* ------------------------------------------------------------------ shards */

static void write_two_shards(chk *c, const char *sd)
{
    char p[600];
    float a[2] = {1, 2}, b[3] = {3, 4, 5}, x[1] = {6};
    const char *n1[] = {"b", "a"}, *n2[] = {"x"};
    st_dtype dt[] = {ST_F32, ST_F32};
    int nd[] = {1, 1};
    int64_t sh1[][ST_MAX_DIMS] = {{3}, {2}}, sh2[][ST_MAX_DIMS] = {{1}};
    const void *d1[] = {b, a}, *d2[] = {x};
    vl_err err;
    snprintf(p, sizeof p, "%s/s-1.safetensors", sd);
    CHECK_INT(c, st_write(p, 2, n1, dt, nd, sh1, d1, &err), 0, "write shard 1");
    snprintf(p, sizeof p, "%s/s-2.safetensors", sd);
    CHECK_INT(c, st_write(p, 1, n2, dt, nd, sh2, d2, &err), 0, "write shard 2");
}

typedef struct {
    const char *label;
    const char *index;
    int code;
    const char *msg;     /* expected substring besides the index path */
    const char *file;    /* another file the message must name, or NULL */
} shard_case;

static const shard_case k_shard[] = {
    {"missing shard",
     "{\"weight_map\": {\"a\": \"s-1.safetensors\", \"b\": \"s-1.safetensors\","
     " \"x\": \"s-2.safetensors\", \"y\": \"s-3.safetensors\"}}",
     VL_ENOTFOUND, "shard listed in the index does not exist", "s-3.safetensors"},
    {"tensor absent from its shard",
     "{\"weight_map\": {\"a\": \"s-1.safetensors\", \"zz\": \"s-2.safetensors\"}}", VL_ENOTFOUND,
     "tensor \"zz\": listed in", "s-2.safetensors"},
    {"tensor in another shard",
     "{\"weight_map\": {\"a\": \"s-2.safetensors\", \"x\": \"s-1.safetensors\"}}", VL_ENOTFOUND,
     "tensor \"a\": listed in", "found in"},
    {"bad index JSON", "{\"weight_map\": {\"a\": \"s-1.safetensors\"\n \"x\": 1}}", VL_EFORMAT,
     "index JSON: line 2 column", NULL},
    {"no weight_map", "{\"metadata\": {}}", VL_EFORMAT, "missing or empty \"weight_map\"", NULL},
    {"shard with a path", "{\"weight_map\": {\"a\": \"../s-1.safetensors\"}}", VL_EFORMAT,
     "tensor \"a\": shard must be a file name", NULL},
};

static void test_shards(chk *c, const char *dir)
{
    char sd[512], ip[600];
    snprintf(sd, sizeof sd, "%s/sharded", dir);
    mkdir(sd, 0700);
    write_two_shards(c, sd);
    snprintf(ip, sizeof ip, "%s/model.safetensors.index.json", sd);
    const char *good = "{\"metadata\": {\"total_size\": 24}, \"weight_map\": {\"a\": \"s-1.safetensors\","
                       " \"b\": \"s-1.safetensors\", \"x\": \"s-2.safetensors\"}}";
    write_bytes(ip, good, strlen(good));
    st_set *s = NULL;
    vl_err err = {0};
    int rc = st_set_open(&s, sd, &err);
    CHECK_INT(c, rc, 0, "sharded open");
    if (rc == 0) {
        CHECK_INT(c, st_set_count(s), 3, "sharded count");
        CHECK_STR(c, st_set_at(s, 0)->name, "b", "order: shard 1 by offset");
        CHECK_STR(c, st_set_at(s, 1)->name, "a", "order: shard 1 second");
        CHECK_STR(c, st_set_at(s, 2)->name, "x", "order: shard 2");
        CHECK_HAS(c, st_set_find(s, "x")->file, "s-2.safetensors", "x's file");
        CHECK_INT(c, st_set_nbytes(s), 24, "sharded bytes");
        float v[3];
        CHECK(c, st_tensor_to_f32(st_set_find(s, "b"), v, &err) == 0 && v[2] == 5.0f, "b values");
    }
    st_set_close(s);

    for (size_t i = 0; i < sizeof k_shard / sizeof k_shard[0]; i++) {
        const shard_case *k = &k_shard[i];
        write_bytes(ip, k->index, strlen(k->index));
        s = NULL;
        err = (vl_err){0};
        CHECK_INT(c, st_set_open(&s, sd, &err), k->code, k->label);
        CHECK(c, s == NULL, "%s: no set", k->label);
        CHECK_HAS(c, err.msg, ip, k->label);
        CHECK_HAS(c, err.msg, k->msg, k->label);
        if (k->file)
            CHECK_HAS(c, err.msg, k->file, k->label);
    }

    /* The same name in two shards. */
    char p[600];
    float a[2] = {7, 8};
    const char *n[] = {"a"};
    st_dtype dt[] = {ST_F32};
    int nd[] = {1};
    int64_t sh[][ST_MAX_DIMS] = {{2}};
    const void *d[] = {a};
    snprintf(p, sizeof p, "%s/s-2.safetensors", sd);
    CHECK_INT(c, st_write(p, 1, n, dt, nd, sh, d, &err), 0, "rewrite shard 2 with \"a\"");
    write_bytes(ip, good, strlen(good));
    CHECK_INT(c, st_set_open(&s, sd, &err), VL_EFORMAT, "name in two shards");
    CHECK_HAS(c, err.msg, "tensor \"a\": duplicate name, also in", "two shards msg");
    CHECK_HAS(c, err.msg, "s-1.safetensors", "two shards names shard 1");
}

/* ------------------------------------------------------------------ truncation sweep */

/* Every proper prefix of a file st_write made must be rejected: st_write leaves no slack, so
 * a prefix either cuts the length field, the header, or the last tensor's data. */
static void test_truncation(chk *c, const char *dir)
{
    char full[512], cut[512];
    snprintf(full, sizeof full, "%s/full.safetensors", dir);
    snprintf(cut, sizeof cut, "%s/cut.safetensors", dir);
    float a[3] = {1, 2, 3};
    uint16_t b[2] = {0x3f80, 0x4000};
    const char *names[] = {"a", "b"};
    st_dtype dt[] = {ST_F32, ST_BF16};
    int nd[] = {1, 2};
    int64_t shapes[][ST_MAX_DIMS] = {{3}, {1, 2}};
    const void *data[] = {a, b};
    vl_err err;
    CHECK_INT(c, st_write(full, 2, names, dt, nd, shapes, data, &err), 0, "write sweep file");
    size_t n = 0;
    unsigned char *bytes = (unsigned char *)tio_slurp(full, &n);
    long accepted = 0, no_msg = 0, bad_code = 0;
    for (size_t len = 0; len < n; len++) {
        write_bytes(cut, bytes, len);
        st_set *s = NULL;
        err = (vl_err){0};
        int rc = st_set_open(&s, cut, &err);
        accepted += rc == 0;
        no_msg += rc != 0 && strstr(err.msg, cut) == NULL;
        bad_code += rc != 0 && rc != VL_ETRUNC && rc != VL_EFORMAT;
        st_set_close(s);
    }
    CHECK(c, n > 100, "sweep file is %zu bytes", n);
    CHECK_INT(c, accepted, 0, "every proper prefix rejected");
    CHECK_INT(c, no_msg, 0, "every rejection names the file");
    CHECK_INT(c, bad_code, 0, "every rejection is VL_ETRUNC or VL_EFORMAT");
    write_bytes(cut, bytes, n);
    st_set *s = NULL;
    CHECK_INT(c, st_set_open(&s, cut, &err), 0, "the whole file opens");
    st_set_close(s);
    free(bytes);
}

int main(void)
{
    chk c;
    chk_init(&c, "test_st");
    char dir[64];
    if (tio_tmpdir(dir, sizeof dir, "test-st"))
        return 2;
    test_converters(&c);
    test_model(&c);
    test_roundtrip(&c, dir);
    test_corrupt(&c, dir);
    test_nonfinite(&c, dir);
    test_shards(&c, dir);
    test_truncation(&c, dir);
    if (tio_rmtree(dir) == 0)
        CHECK(&c, access(dir, F_OK) != 0, "fixture directory removed");
    return chk_done(&c);
}
