/* tests/test_gguf.c — io/gguf.h: the writer's bytes against a file assembled by hand from the
 * GGUF specification (ggml docs/gguf.md), reading that file back, a round trip with quantized
 * tensors, and corrupt/truncated input (every prefix of a valid file, and single-field
 * corruptions), each refused with a one-line error. */
#include "../alloc/ggml_fmt.h"
#include "../io/gguf.h"
#include "check.h"

#include <stdint.h>
#include <string.h>

typedef struct {
    uint8_t b[4096];
    size_t n;
} hand;

static void h_raw(hand *h, const void *p, size_t k) { memcpy(h->b + h->n, p, k), h->n += k; }
static void h_u32(hand *h, uint32_t v)
{
    for (int i = 0; i < 4; i++) h->b[h->n++] = (uint8_t)(v >> (8 * i));
}
static void h_u64(hand *h, uint64_t v)
{
    for (int i = 0; i < 8; i++) h->b[h->n++] = (uint8_t)(v >> (8 * i));
}
static void h_str(hand *h, const char *s) { h_u64(h, strlen(s)), h_raw(h, s, strlen(s)); }
static void h_pad(hand *h)
{
    while (h->n % 32) h->b[h->n++] = 0;
}

/* The spec's layout, field by field: what llama.cpp's imatrix writer produces for one entry. */
static void make_hand(hand *h)
{
    memset(h, 0, sizeof *h);
    h_raw(h, "GGUF", 4);
    h_u32(h, 3);                 /* version */
    h_u64(h, 2);                 /* tensors */
    h_u64(h, 4);                 /* kvs */
    h_str(h, "general.type"), h_u32(h, 8), h_str(h, "imatrix");
    h_str(h, "imatrix.datasets"), h_u32(h, 9), h_u32(h, 8), h_u64(h, 2), h_str(h, "en"), h_str(h, "zh");
    h_str(h, "imatrix.chunk_count"), h_u32(h, 4), h_u32(h, 5);
    h_str(h, "imatrix.chunk_size"), h_u32(h, 4), h_u32(h, 512);
    h_str(h, "blk.0.ffn_down_exps.weight.in_sum2"), h_u32(h, 2), h_u64(h, 3), h_u64(h, 2), h_u32(h, 0), h_u64(h, 0);
    h_str(h, "blk.0.ffn_down_exps.weight.counts"), h_u32(h, 2), h_u64(h, 1), h_u64(h, 2), h_u32(h, 0), h_u64(h, 32);
    h_pad(h);
    float s[6] = {1, 2, 3, 4, 5, 6}, cnt[2] = {10, 20};
    h_raw(h, s, sizeof s), h_pad(h);
    h_raw(h, cnt, sizeof cnt), h_pad(h);
}

static void test_layout(chk *c)
{
    hand h;
    make_hand(&h);
    gguf_writer *w = NULL;
    vl_err e = {0};
    const char *ds[] = {"en", "zh"};
    float s[6] = {1, 2, 3, 4, 5, 6}, cnt[2] = {10, 20};
    int64_t ne1[2] = {3, 2}, ne2[2] = {1, 2};
    int rc = gguf_writer_new(&w, &e) || gguf_w_str(w, "general.type", "imatrix", &e) ||
             gguf_w_str_arr(w, "imatrix.datasets", ds, 2, &e) ||
             gguf_w_u32(w, "imatrix.chunk_count", 5, &e) || gguf_w_u32(w, "imatrix.chunk_size", 512, &e) ||
             gguf_w_tensor(w, "blk.0.ffn_down_exps.weight.in_sum2", 0, 2, ne1, s, sizeof s, &e) ||
             gguf_w_tensor(w, "blk.0.ffn_down_exps.weight.counts", 0, 2, ne2, cnt, sizeof cnt, &e);
    uint8_t *buf = NULL;
    size_t n = 0;
    rc = rc || gguf_w_bytes(w, &buf, &n, &e);
    CHECK(c, !rc && n == h.n && !memcmp(buf, h.b, n), "writer bytes equal the hand-made spec file (%zu vs %zu bytes)", n, h.n);
    CHECK(c, gguf_w_u32(w, "imatrix.chunk_size", 1, &e) == VL_EARG, "duplicate key refused");
    CHECK(c, gguf_w_tensor(w, "x", 0, 1, ne1, s, 8, &e) == VL_ESHAPE, "tensor size mismatch refused");
    CHECK(c, gguf_w_tensor(w, "y", 12, 1, ne1, s, 12, &e) == VL_ESHAPE, "q4_K row of 3 refused");
    vl_free(buf);
    gguf_writer_free(w);

    gguf_file *f = NULL;
    e.msg[0] = 0;
    rc = gguf_parse(&f, h.b, h.n, "hand.gguf", &e);
    CHECK(c, rc == 0, "hand-made file parses (%s)", e.msg);
    if (rc) return;
    uint64_t cc = 0;
    const char *ty = NULL, *d1 = NULL;
    CHECK(c, gguf_version(f) == 3 && gguf_n_kv(f) == 4 && gguf_n_tensors(f) == 2 && gguf_alignment(f) == 32,
          "header: version, counts, default alignment");
    CHECK(c, !gguf_get_u64(f, "imatrix.chunk_count", &cc, &e) && cc == 5, "chunk_count = 5");
    CHECK(c, !gguf_get_str(f, "general.type", &ty, &e) && !strcmp(ty, "imatrix"), "general.type");
    CHECK(c, !gguf_get_arr_str(f, "imatrix.datasets", 1, &d1, &e) && !strcmp(d1, "zh"), "datasets[1]");
    CHECK(c, gguf_get_str(f, "imatrix.chunk_count", &ty, &e) == VL_EDTYPE, "wrong type refused: %s", e.msg);
    CHECK(c, gguf_get_u64(f, "nope", &cc, &e) == VL_ENOTFOUND, "missing key");
    const gguf_tensor *t = gguf_tensor_find(f, "blk.0.ffn_down_exps.weight.counts");
    CHECK(c, t && t->n_dims == 2 && t->ne[0] == 1 && t->ne[1] == 2 && t->nbytes == 8 && t->offset == 32 &&
                 !memcmp(t->data, cnt, 8), "counts tensor: shape, offset, data");
    gguf_close(f);
}

/* Every prefix of the file is refused, and so is each single corruption. */
static void test_corrupt(chk *c)
{
    hand h;
    make_hand(&h);
    vl_err e = {0};
    gguf_file *f = NULL;
    int bad = 0;
    size_t data_end = h.n - 24; /* the last tensor's padding is not needed by the reader */
    for (size_t k = 0; k < data_end; k++) {
        int rc = gguf_parse(&f, h.b, k, "cut.gguf", &e);
        bad += rc == 0 || f != NULL || !strstr(e.msg, "cut.gguf");
        gguf_close(f), f = NULL;
    }
    CHECK_INT(c, bad, 0, "every truncation refused with a message naming the file");
    struct { size_t at; uint8_t v; int code; const char *what; } cases[] = {
        {0, 'X', VL_EFORMAT, "bad magic"},
        {4, 4, VL_EFORMAT, "version 4"},
        {8, 0xff, VL_EFORMAT, "tensor count beyond the file"},
        {24 + 8 + 12, 13, VL_EFORMAT, "unknown value type"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hand g = h;
        g.b[cases[i].at] = cases[i].v;
        int rc = gguf_parse(&f, g.b, g.n, "bad.gguf", &e);
        CHECK(c, rc == cases[i].code && !f, "%s refused (%s)", cases[i].what, e.msg);
        gguf_close(f), f = NULL;
    }
    /* find the first tensor info to corrupt its fields */
    const char *nm = "blk.0.ffn_down_exps.weight.in_sum2";
    size_t ti = 0;
    for (size_t k = 0; k + strlen(nm) <= h.n; k++)
        if (!memcmp(h.b + k, nm, strlen(nm))) {
            ti = k + strlen(nm);
            break;
        }
    struct { size_t off; uint8_t v; int code; const char *what; } tc[] = {
        {0, 5, VL_EFORMAT, "n_dims 5"},
        {4, 0, VL_EFORMAT, "zero dimension"},
        {20, 99, VL_EDTYPE, "unknown ggml type"},
        {24, 8, VL_EFORMAT, "misaligned offset"},
        {24, 32, VL_EFORMAT, "overlapping tensors"},
        {20, 12, VL_ESHAPE, "q4_K with 3 columns"},
    };
    for (size_t i = 0; i < sizeof tc / sizeof tc[0]; i++) {
        hand g = h;
        g.b[ti + tc[i].off] = tc[i].v;
        int rc = gguf_parse(&f, g.b, g.n, "bad.gguf", &e);
        CHECK(c, rc == tc[i].code && !f, "%s refused (%s)", tc[i].what, e.msg);
        gguf_close(f), f = NULL;
    }
    /* duplicate key: rename chunk_size to chunk_count (same length+1: rebuild by hand) */
    hand g;
    memset(&g, 0, sizeof g);
    h_raw(&g, "GGUF", 4), h_u32(&g, 3), h_u64(&g, 0), h_u64(&g, 2);
    h_str(&g, "a"), h_u32(&g, 4), h_u32(&g, 1), h_str(&g, "a"), h_u32(&g, 4), h_u32(&g, 2);
    CHECK(c, gguf_parse(&f, g.b, g.n, "dup.gguf", &e) == VL_EFORMAT, "duplicate key refused (%s)", e.msg);
    memset(&g, 0, sizeof g);
    h_raw(&g, "GGUF", 4), h_u32(&g, 3), h_u64(&g, 0), h_u64(&g, 1);
    h_str(&g, "n"), h_u32(&g, 9), h_u32(&g, 9), h_u64(&g, 1), h_u32(&g, 4), h_u64(&g, 0);
    CHECK(c, gguf_parse(&f, g.b, g.n, "nest.gguf", &e) == VL_EFORMAT, "nested array refused (%s)", e.msg);
    memset(&g, 0, sizeof g);
    h_raw(&g, "GGUF", 4), h_u32(&g, 3), h_u64(&g, 0), h_u64(&g, 1);
    h_str(&g, "general.alignment"), h_u32(&g, 4), h_u32(&g, 12);
    CHECK(c, gguf_parse(&f, g.b, g.n, "al.gguf", &e) == VL_EFORMAT, "alignment 12 refused (%s)", e.msg);
    CHECK(c, gguf_open(&f, "tests/nonexistent.gguf", &e) == VL_ENOTFOUND, "missing file");
}

/* Quantized tensors survive a file round trip, decoding to the same floats. */
static void test_roundtrip(chk *c)
{
    float x[2 * 256], y[256];
    for (int i = 0; i < 512; i++) x[i] = 0.01f * (float)((i * 37) % 101 - 50);
    uint8_t q[2 * 84];
    vl_err e = {0};
    int rc = ggf_quantize_row(GGF_Q2_K, x, NULL, 256, q, &e) || ggf_quantize_row(GGF_Q2_K, x + 256, NULL, 256, q + 84, &e);
    gguf_writer *w = NULL;
    int64_t ne[2] = {256, 2};
    rc = rc || gguf_writer_new(&w, &e) || gguf_w_f32(w, "x.scale", 0.5f, &e) ||
         gguf_w_tensor(w, "blk.0.attn_q.weight", 10, 2, ne, q, sizeof q, &e) ||
         gguf_w_write(w, "build/test_gguf_rt.gguf", &e);
    gguf_writer_free(w);
    gguf_file *f = NULL;
    rc = rc || gguf_open(&f, "build/test_gguf_rt.gguf", &e);
    const gguf_tensor *t = f ? gguf_tensor_find(f, "blk.0.attn_q.weight") : NULL;
    double sc = 0;
    int same = t && t->nbytes == sizeof q && !memcmp(t->data, q, sizeof q) && !gguf_get_f64(f, "x.scale", &sc, &e) && sc == 0.5;
    if (same) {
        float z[256];
        ggf_decode_row(GGF_Q2_K, q + 84, 84, y, 256, &e);
        ggf_decode_row(GGF_Q2_K, t->data + 84, 84, z, 256, &e);
        same = !memcmp(y, z, sizeof y);
    }
    CHECK(c, !rc && same, "q2_K tensor round trip through a file (%s)", e.msg);
    gguf_close(f);
    remove("build/test_gguf_rt.gguf");
}

int main(void)
{
    chk c;
    chk_init(&c, "test_gguf");
    test_layout(&c);
    test_corrupt(&c);
    test_roundtrip(&c);
    return chk_done(&c);
}
