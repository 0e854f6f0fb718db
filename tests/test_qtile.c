/* tests/test_qtile.c — tiled fake-quantization of stored tensors (alloc/qbind.h tile_bytes):
 * every tile size gives the whole-tensor binding's weights bit for bit — tiles that do not
 * divide the row count, a tile below one row (clamped to one row), FP8 tensors (tiles rounded
 * to whole 128-row scale blocks), RTN with and without the Hadamard rotation, a ggml format,
 * the lazy (layer-major) provider — and the row-locality the tiling rests on, checked on
 * fq_tensor directly with per-column importance. */
#define _POSIX_C_SOURCE 200809L
#include "../alloc/fq.h"
#include "../alloc/qbind.h"
#include "../core/rng.h"
#include "../io/st.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL "models/vbrlab-moe-tiny"
#define FP8 "tests/fixtures/tiny-deepseek-v3"

/* Bytes of a tile holding n rows of C float32 columns. */
static size_t rows_bytes(int n, int C) { return (size_t)n * (size_t)C * sizeof(float); }

/* Uniform allocation of the first layer of M (every quantizable matrix there: the
 * test's run time stays small) in FORMAT, bound with tile_bytes TB (lazy or eager); NULL on
 * error. */
static qb_binding *bind_uniform(chk *c, const model *m, const char *format, size_t tb, int lazy)
{
    qb_alloc all, a;
    qb_alloc_init(&all);
    qb_alloc_init(&a);
    vl_err e = {0};
    qb_params p = qb_defaults();
    p.tile_bytes = tb;
    qb_binding *b = NULL;
    int rc = qb_alloc_uniform(&all, m, format, &e);
    for (int k = 0; !rc && k < all.n; k++)
        if (model_tensor_at(m, (size_t)model_tensor_find(m, all.v[k].item))->layer == 0)
            rc = qb_alloc_add(&a, all.v[k].item, format, &e);
    if (!rc)
        rc = (lazy ? qb_bind_lazy : qb_bind)(&b, m, &a, NULL, &p, format, &e);
    qb_alloc_deinit(&all);
    qb_alloc_deinit(&a);
    if (rc)
        CHECK(c, 0, "bind %s tile %zu: %s", format, tb, e.msg);
    return rc ? NULL : b;
}

/* Tensors whose quantized weights differ between bindings A and B (bit for bit; both
 * eager). -1 when a listed tensor has no data. */
static int count_diff(const model *m, const qb_binding *a, const qb_binding *b, int *listed)
{
    int diff = 0;
    *listed = 0;
    for (size_t i = 0; i < model_tensor_count(m); i++) {
        if (!qb_tensor_format(a, i))
            continue;
        (*listed)++;
        const float *x = *model_weights_slot(m, (model_weights *)qb_weights(a), i);
        const float *y = *model_weights_slot(m, (model_weights *)qb_weights(b), i);
        if (!x || !y)
            return -1;
        diff += memcmp(x, y, (size_t)model_tensor_at(m, i)->numel * sizeof *x) != 0;
    }
    return diff;
}

/* Tensors listed in A where tile_bytes TB cuts the rows into tiles whose size does not divide
 * the row count (the ragged last tile is exercised). */
static int ragged(const model *m, const qb_binding *a, size_t tb)
{
    int n = 0;
    for (size_t i = 0; i < model_tensor_count(m); i++) {
        int r = model_tensor_at(m, i)->rows, tr = qb_tile_rows(m, i, tb);
        n += qb_tensor_format(a, i) && tr < r && r % tr;
    }
    return n;
}

/* Every tile size against the untiled binding, for each format, on model DIR. */
static void tiles_vs_whole(chk *c, const char *dir, const char *const *formats, int nf,
                           const size_t *tiles, int nt)
{
    model *m = NULL;
    vl_err e = {0};
    if (!CHECK(c, model_open(&m, dir, &e) == 0, "%s: model_open %s", dir, e.msg))
        return;
    for (int f = 0; f < nf; f++) {
        qb_binding *ref = bind_uniform(c, m, formats[f], 0, 0);
        for (int k = 0; ref && k < nt; k++) {
            qb_binding *b = bind_uniform(c, m, formats[f], tiles[k], 0);
            if (!b)
                continue;
            int listed, d = count_diff(m, ref, b, &listed);
            CHECK(c, d == 0 && listed > 0,
                  "%s %s tile %zu B: %d of %d tensors bit-identical to untiled (%d ragged)", dir,
                  formats[f], tiles[k], listed - d, listed, ragged(m, b, tiles[k]));
            qb_free(b);
        }
        qb_free(ref);
    }
    model_close(m);
}

/* qb_tile_rows: the clamping and rounding rules on both models. */
static void tile_rows_rules(chk *c)
{
    model *m = NULL, *f8 = NULL;
    vl_err e = {0};
    if (!CHECK(c, model_open(&m, MODEL, &e) == 0 && model_open(&f8, FP8, &e) == 0,
               "open models: %s", e.msg)) {
        model_close(m);
        return;
    }
    long i = model_tensor_find(m, "model.layers.0.self_attn.q_proj.weight");
    const model_tensor *t = model_tensor_at(m, (size_t)i);
    int bad = 0;
    bad |= qb_tile_rows(m, (size_t)i, 0) != t->rows;               /* no tiling */
    bad |= qb_tile_rows(m, (size_t)i, 1) != 1;                     /* below a row: one row */
    bad |= qb_tile_rows(m, (size_t)i, rows_bytes(1, t->cols) - 1) != 1;
    bad |= qb_tile_rows(m, (size_t)i, rows_bytes(3, t->cols) + 7) != 3; /* whole rows only */
    bad |= qb_tile_rows(m, (size_t)i, rows_bytes(t->rows + 5, t->cols)) != t->rows;
    CHECK(c, i >= 0 && !bad, "BF16 q_proj %d × %d: tile rows 0→all, 1 B→1, row−1 B→1, 3 rows+7 "
          "B→3, beyond→all", t->rows, t->cols);
    long j = model_tensor_find(f8, "model.layers.0.self_attn.q_b_proj.weight");
    const model_tensor *u = model_tensor_at(f8, (size_t)j);
    int br = model_config(f8)->fp8_block[0];
    bad = u->stored_dtype != ST_F8_E4M3 || br != 128 || u->rows <= 2 * br;
    bad |= qb_tile_rows(f8, (size_t)j, 1) != br;                   /* at least one block */
    bad |= qb_tile_rows(f8, (size_t)j, rows_bytes(200, u->cols)) != br; /* down to blocks */
    bad |= qb_tile_rows(f8, (size_t)j, rows_bytes(2 * br, u->cols)) != 2 * br;
    CHECK(c, j >= 0 && !bad, "FP8 q_b_proj %d × %d (block %d): tile rows 1 B→%d, 200 rows→%d, "
          "2 blocks→%d", u->rows, u->cols, br, qb_tile_rows(f8, (size_t)j, 1),
          qb_tile_rows(f8, (size_t)j, rows_bytes(200, u->cols)),
          qb_tile_rows(f8, (size_t)j, rows_bytes(2 * br, u->cols)));
    CHECK(c, qb_defaults().tile_bytes == QB_TILE_BYTES && QB_TILE_BYTES > 0,
          "qb_defaults tiles (%zu B)", qb_defaults().tile_bytes);
    model_close(m);
    model_close(f8);
}

/* Lazy binding with one-row tiles: qb_provide's weights = the untiled eager binding's. */
static void lazy_tiles(chk *c)
{
    model *m = NULL;
    vl_err e = {0};
    if (!CHECK(c, model_open(&m, MODEL, &e) == 0, "open %s: %s", MODEL, e.msg))
        return;
    const char *fmts[] = {"rtn-b3-g32-asym", "rtn-b2-g64-sym-had"};
    for (int f = 0; f < 2; f++) {
        qb_binding *ref = bind_uniform(c, m, fmts[f], 0, 0);
        qb_binding *lz = bind_uniform(c, m, fmts[f], 1, 1);
        int n = 0, diff = 0, fail = 0;
        for (size_t i = 0; ref && lz && i < model_tensor_count(m); i++) {
            if (!qb_tensor_format(lz, i) || model_tensor_at(m, i)->layer < 0)
                continue;
            const float *d;
            float *own;
            if (qb_provide(lz, i, &d, &own, &e) || !own) {
                fail++;
                continue;
            }
            const float *x = *model_weights_slot(m, (model_weights *)qb_weights(ref), i);
            diff += memcmp(x, d, (size_t)model_tensor_at(m, i)->numel * sizeof *x) != 0;
            n++;
            vl_free(own);
        }
        CHECK(c, ref && lz && n > 0 && !diff && !fail,
              "lazy %s, one-row tiles: %d of %d provided tensors bit-identical to untiled "
              "eager (%d failed)", fmts[f], n - diff, n, fail);
        qb_free(ref);
        qb_free(lz);
    }
    model_close(m);
}

/* Row locality of fq_tensor (what makes tiles exact): a random 37 × 256 matrix with per-column
 * importance, quantized whole and in row blocks of 1, 5 and 16 rows, for RTN (clip search),
 * RTN with the Hadamard rotation and a ggml k-quant. */
static void row_local(chk *c)
{
    enum { R = 37, C = 256 };
    float *w = malloc(sizeof(float) * R * C), *o1 = malloc(sizeof(float) * R * C),
          *o2 = malloc(sizeof(float) * R * C);
    double imp[C];
    rng *r = NULL;
    vl_err re = {0};
    if (!CHECK(c, rng_new(&r, 15, &re) == 0 && w && o1 && o2, "rng_new: %s", re.msg)) {
        free(w), free(o1), free(o2);
        return;
    }
    for (int i = 0; i < R * C; i++)
        w[i] = (float)rng_gaussian(r, i % 11 == 0 ? 4.0 : 1.0);
    for (int j = 0; j < C; j++)
        imp[j] = 0.1 + rng_uniform(r) * (j % 7 == 0 ? 50.0 : 1.0);
    rng_free(r);
    fq_stats st = {imp, NULL, 100.0};
    fq_params p = fq_defaults();
    const char *fmts[] = {"rtn-b2-g32-asym", "rtn-b3-g64-sym-had", "ggml-q3_K"};
    const int blocks[] = {1, 5, 16};
    for (int f = 0; f < 3; f++) {
        qfmt q;
        vl_err e = {0};
        int rc = qfmt_parse(&q, fmts[f], &e);
        rc = rc ? rc : fq_tensor(o1, w, R, C, &q, &st, NULL, &p, NULL, "w", &e);
        int diff = 0;
        for (int k = 0; !rc && k < 3; k++) {
            memset(o2, 0, sizeof(float) * R * C);
            for (int r0 = 0; !rc && r0 < R; r0 += blocks[k]) {
                int n = R - r0 < blocks[k] ? R - r0 : blocks[k];
                rc = fq_tensor(o2 + r0 * C, w + r0 * C, n, C, &q, &st, NULL, &p, NULL, "w", &e);
            }
            diff += memcmp(o1, o2, sizeof(float) * R * C) != 0;
        }
        CHECK(c, !rc && !diff, "fq_tensor %s with importance, 37 rows in blocks of 1/5/16: "
              "bit-identical to whole (%s)", fmts[f], rc ? e.msg : "ok");
    }
    free(w);
    free(o1);
    free(o2);
}

int main(void)
{
    chk c;
    chk_init(&c, "qtile");
    tile_rows_rules(&c);
    row_local(&c);
    /* BF16 embedded model (256- and 768-column rows): 1 B (one row), 3 rows + 5 B (ragged),
     * 50 000 B (48 rows of 256 / 16 of 768) */
    const char *bf16_fmts[] = {"rtn-b4-g64-asym", "rtn-b2-g32-sym-had", "ggml-q4_K"};
    const size_t bf16_tiles[] = {1, 3 * 256 * 4 + 5, 50000};
    tiles_vs_whole(&c, MODEL, bf16_fmts, 3, bf16_tiles, 3);
    /* FP8 fixture (block 128 × 128): 1 B (one block of rows), 200 rows of 256 (→ 128),
     * 256 rows of 128 columns (two blocks, ragged on 384- and 160-row tensors) */
    const char *fp8_fmts[] = {"rtn-b3-g64-asym", "rtn-b4-g32-sym-had"};
    const size_t fp8_tiles[] = {1, 200 * 256 * 4, 256 * 128 * 4};
    tiles_vs_whole(&c, FP8, fp8_fmts, 2, fp8_tiles, 3);
    lazy_tiles(&c);
    return chk_done(&c);
}
