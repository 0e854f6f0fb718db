/* tests/test_imatrix.c — analysis/imatrix.h: llama.cpp imatrix GGUF from a hand-built stats file
 * for the qwen3-moe fixture (values recomputed by hand: weighted sums of two sets, experts in
 * their rows, dense-only names skipped), the GGUF layout llama-quantize reads (keys, tensor
 * names, shapes, F32 data), the read-back, and malformed imatrix files. */
#define _POSIX_C_SOURCE 200809L
#include "../alloc/ggml_fmt.h"
#include "../alloc/gguf_recipe.h"
#include "../analysis/imatrix.h"
#include "../io/gguf.h"
#include "../io/h5s.h"
#include "check.h"
#include "testio.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL "tests/fixtures/qwen3-moe"
#define STATS "build/test_imatrix_stats.h5"
#define OUT "build/test_imatrix.gguf"

static int put_group(h5s_store *s, const char *g, const char *weights, int n, double scale, double count, vl_err *e)
{
    double v[64];
    char p[256];
    for (int j = 0; j < n; j++) v[j] = scale * (j + 1);
    int64_t sh = n, one = 1;
    snprintf(p, sizeof p, "%s/sum_x2", g);
    int rc = h5s_write(s, p, H5S_F64, v, 1, &sh, "activation^2", "sum x^2", e);
    snprintf(p, sizeof p, "%s/count", g);
    int64_t c = (int64_t)count;
    if (!rc) rc = h5s_write(s, p, H5S_I64, &c, 1, &one, "rows", "rows", e);
    if (!rc) rc = h5s_attr_set(s, g, "weights", weights, e);
    return rc;
}

static int make_stats(vl_err *e)
{
    h5s_store *s = NULL;
    int rc = h5s_create(&s, STATS, e);
    const char *sets[2] = {"a", "b"};
    for (int k = 0; k < 2 && !rc; k++) {
        char g[128], p[256];
        snprintf(g, sizeof g, "/sets/%s", sets[k]);
        int32_t ids[16] = {0};
        int64_t sh[2] = {1, 16};
        snprintf(p, sizeof p, "%s/input_ids", g);
        rc = h5s_write(s, p, H5S_I32, ids, 2, sh, "token", "ids", e);
        if (!rc) rc = h5s_attr_set_f64(s, g, "seqs", k ? 1 : 2, e);
        if (!rc) rc = h5s_attr_set_f64(s, g, "len", k ? 16 : 8, e);
        if (!rc) rc = h5s_attr_set(s, g, "source", k ? "zh.txt" : "en.txt", e);
        snprintf(g, sizeof g, "/stats/%s/layers/00/attn_in", sets[k]);
        if (!rc) rc = put_group(s, g, "self_attn.q_proj self_attn.k_proj self_attn.v_proj", 64, k ? 10 : 1, k ? 16 : 16, e);
        snprintf(g, sizeof g, "/stats/%s/layers/00/mlp_in", sets[k]);
        if (!rc) rc = put_group(s, g, "mlp.gate mlp.gate_proj mlp.up_proj", 64, 1, 16, e);
        snprintf(g, sizeof g, "/stats/%s/layers/01/experts/003/down_in", sets[k]);
        if (!rc) rc = put_group(s, g, "mlp.experts.3.down_proj", 32, k ? 3 : 5, k ? 4 : 6, e);
        snprintf(g, sizeof g, "/stats/%s", sets[k]);
        if (!rc) rc = h5s_attr_set_f64(s, g, "n_experts", 8, e);
    }
    if (!rc) return h5s_commit(s, e);
    h5s_close(s);
    return rc;
}

static float f32_at(const gguf_tensor *t, int64_t i)
{
    float v;
    memcpy(&v, t->data + 4 * i, 4);
    return v;
}

/* The qwen3-moe fixture's allocation: layer-0 attention q4_0/q8_0, its MLP q4_0, layer-1 experts
 * (all 8 of a projection alike) iq4_nl/q4_0; layer-1 attention and shared parts unlisted (bf16). */
static char *assignment(const char *down_type_of_expert5)
{
    static char buf[8192];
    size_t n = 0;
    const char *l0[][2] = {{"self_attn.q_proj", "q4_0"}, {"self_attn.k_proj", "q8_0"}, {"self_attn.v_proj", "q8_0"},
                           {"self_attn.o_proj", "q4_0"}, {"mlp.gate_proj", "q4_0"}, {"mlp.up_proj", "q4_0"},
                           {"mlp.down_proj", "q4_0"}};
    for (int i = 0; i < 7; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "model.layers.0.%s.weight\tggml-%s\n", l0[i][0], l0[i][1]);
    for (int e = 0; e < 8; e++)
        n += (size_t)snprintf(buf + n, sizeof buf - n,
                              "model.layers.1.mlp.experts.%d.gate_proj.weight\tggml-q4_0\n"
                              "model.layers.1.mlp.experts.%d.down_proj.weight\tggml-%s\n",
                              e, e, e == 5 ? down_type_of_expert5 : "iq4_nl");
    return buf;
}

static void test_recipe(chk *c)
{
    /* llama.cpp src/llama-quant.cpp: llama_ftype_get_default_type, tensor_requires_imatrix */
    CHECK(c, ggr_ftype_default("IQ2_S") == GGF_IQ2_XS && ggr_ftype_default("IQ2_M") == GGF_IQ2_S &&
                 ggr_ftype_default("IQ3_XS") == GGF_IQ3_S && ggr_ftype_default("Q3_K_S") == GGF_Q3_K &&
                 ggr_ftype_default("Q4_K") == -1 && !strcmp(ggr_ftype_name(GGF_IQ2_S), "IQ2_M") &&
                 !strcmp(ggr_ftype_name(GGF_IQ2_XS), "IQ2_XS") && !strcmp(ggr_ftype_name(GGF_Q4_K), "Q4_K_S"),
          "ftype default types: IQ2_S → iq2_xs, IQ2_M → iq2_s, IQ3_XS → iq3_s");
    CHECK(c, ggr_needs_imatrix(GGF_IQ2_S) && ggr_needs_imatrix(GGF_IQ3_XXS) && ggr_needs_imatrix(GGF_IQ1_M) &&
                 !ggr_needs_imatrix(GGF_IQ3_S) && !ggr_needs_imatrix(GGF_Q2_K) && !ggr_needs_imatrix(GGF_IQ4_XS),
          "imatrix required for iq1_s/m, iq2_xxs/xs/s, iq3_xxs; not iq3_s, q2_K, iq4_xs");
    ggr_plan p;
    vl_err e = {0};
    int rc = ggr_plan_build(&p, MODEL, assignment("iq4_nl"), GGF_Q8_0, GGF_BF16, &e);
    CHECK(c, rc == 0, "plan (%s)", e.msg);
    if (rc) return;
    const ggr_tensor *dn = NULL, *emb = NULL, *out = NULL, *rt = NULL, *q1 = NULL, *nm = NULL;
    int64_t params = 0, bytes = 0;
    for (int i = 0; i < p.n; i++) {
        const ggr_tensor *t = &p.v[i];
        params += t->n, bytes += t->bytes;
        if (!strcmp(t->name, "blk.1.ffn_down_exps.weight")) dn = t;
        if (!strcmp(t->name, "token_embd.weight")) emb = t;
        if (!strcmp(t->name, "output.weight")) out = t;
        if (!strcmp(t->name, "blk.1.ffn_gate_inp.weight")) rt = t;
        if (!strcmp(t->name, "blk.1.attn_q.weight")) q1 = t;
        if (!strcmp(t->name, "blk.0.attn_norm.weight")) nm = t;
    }
    /* 8 experts × 64 rows × one 18-byte iq4_nl block of 32 */
    CHECK(c, dn && dn->type == GGF_IQ4_NL && dn->n == 8 * 64 * 32 && dn->bytes == 8 * 64 * 18 && dn->quantized && dn->body,
          "ffn_down_exps: one tensor of 8 experts, iq4_nl, 9216 bytes");
    CHECK(c, emb && emb->type == GGF_Q8_0 && emb->bytes == 512 * 2 * 34 && out && out->type == GGF_BF16 &&
                 out->bytes == 512 * 64 * 2 && !emb->body,
          "token_embd q8_0 (34816 bytes), output bf16");
    CHECK(c, rt && !rt->quantized && rt->type == GGF_BF16 && rt->bytes == 8 * 64 * 2, "router stays bf16, unquantized");
    CHECK(c, q1 && q1->quantized && q1->type == GGF_BF16, "an unlisted matrix stays bf16");
    CHECK(c, nm && nm->type == GGF_F32 && nm->bytes == 64 * 4 && !nm->quantized, "norms F32");
    CHECK(c, params == p.params && bytes == p.bytes && fabs(p.bpw_file - 8.0 * (double)bytes / (double)params) < 1e-12,
          "file bpw = 8·bytes/weights over all tensors (%.4f)", p.bpw_file);
    CHECK(c, p.base == GGF_Q4_1 && !strcmp(ggr_ftype_name(p.base), "Q4_1"),
          "base type: the first block-32 type no tensor uses (q4_0, q8_0, iq4_nl are used): %s", ggf_get(p.base)->name);
    char *txt = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&txt, &len);
    ggr_write_types(&p, f);
    fclose(f);
    CHECK(c, strstr(txt, "^blk\\.1\\.ffn_down_exps\\.weight$=iq4_nl\n") && strstr(txt, "^blk\\.0\\.attn_k\\.weight$=q8_0\n") &&
                 !strstr(txt, "token_embd") && !strstr(txt, "ffn_gate_inp") && !strchr(txt, '#'),
          "tensor-types lines: anchored, escaped, no comments, embd/router not listed");
    free(txt);
    ggr_plan_free(&p);
    CHECK(c, ggr_plan_build(&p, MODEL, assignment("q4_0"), GGF_Q8_0, GGF_BF16, &e) == VL_ECONFIG,
          "experts of one GGUF tensor with two types refused (%s)", e.msg);
    CHECK(c, ggr_plan_build(&p, MODEL, "model.layers.0.self_attn.q_proj.weight\trtn-b2-g64-asym\n", GGF_Q8_0, GGF_BF16, &e) == VL_ECONFIG,
          "a non-llama.cpp format refused (%s)", e.msg);
    CHECK(c, ggr_plan_build(&p, MODEL, "model.layers.0.self_attn.q_proj.weight\tggml-q4_K\n", GGF_Q8_0, GGF_BF16, &e) == VL_ESHAPE,
          "q4_K on 64 columns refused (%s)", e.msg);
    /* granularity gguf: token_embd and output are allocation items; their types come from the
       assignment (512 × 64: two q4_0 blocks of 18 bytes / two q8_0 blocks of 34 per row) */
    static const char outer[] = "model.embed_tokens.weight\tggml-q4_0\nlm_head.weight\tggml-q8_0\n";
    rc = ggr_plan_build(&p, MODEL, outer, -1, -1, &e);
    CHECK(c, rc == 0, "plan with token_embd/output items (%s)", e.msg);
    emb = out = NULL;
    for (int i = 0; !rc && i < p.n; i++) {
        if (!strcmp(p.v[i].name, "token_embd.weight")) emb = &p.v[i];
        if (!strcmp(p.v[i].name, "output.weight")) out = &p.v[i];
    }
    CHECK(c, emb && emb->type == GGF_Q4_0 && emb->bytes == 512 * 2 * 18 && out && out->type == GGF_Q8_0 &&
                 out->bytes == 512 * 2 * 34,
          "token_embd q4_0 and output q8_0 from the allocation");
    ggr_plan_free(&p);
    CHECK(c, ggr_plan_build(&p, MODEL, outer, GGF_Q4_0, GGF_Q8_0, &e) == 0, "the same types given agree (%s)", e.msg);
    ggr_plan_free(&p);
    CHECK(c, ggr_plan_build(&p, MODEL, outer, GGF_Q8_0, -1, &e) == VL_ECONFIG && strstr(e.msg, "token_embd"),
          "a given embedding type that differs from the allocation's refused (%s)", e.msg);
    rc = ggr_plan_build(&p, MODEL, assignment("iq4_nl"), -1, -1, &e);
    emb = NULL;
    for (int i = 0; !rc && i < p.n; i++)
        if (!strcmp(p.v[i].name, "token_embd.weight")) emb = &p.v[i];
    CHECK(c, emb && emb->type == GGF_BF16, "neither listed nor given: token_embd bf16");
    ggr_plan_free(&p);
}

/* vbrlab export llama.cpp on a hand-made alloc.h5 */
static void test_export_cli(chk *c)
{
    const char *bin = getenv("VBRLAB_BIN");
    if (!bin) {
        CHECK(c, 0, "VBRLAB_BIN is set");
        return;
    }
    vl_err e = {0};
    h5s_store *s = NULL;
    double pk[2] = {0.25, 0.5};
    int64_t n2 = 2;
    int rc = h5s_create(&s, "build/test_recipe_alloc.h5", &e) ||
             h5s_write(s, "/alloc/a1/predicted_kld", H5S_F64, pk, 1, &n2, "nat/token", "predicted", &e) ||
             h5s_attr_set(s, "/alloc/a1", "assignment", assignment("iq4_nl"), &e) ||
             h5s_attr_set(s, "/alloc/a1", "calib", "a", &e) || h5s_attr_set(s, "/alloc/a1", "stats_file", STATS, &e) ||
             h5s_attr_set(s, "/alloc/a1", "sets", "a,b", &e) || h5s_attr_set_f64(s, "/alloc/a1", "target_bpw", 4.5, &e) ||
             h5s_commit(s, &e);
    CHECK(c, rc == 0, "hand-made alloc.h5 (%s)", e.msg);
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd, "%s export llama.cpp %s --alloc build/test_recipe_alloc.h5:a1 --token-embedding-type q8_0 "
             "-o build/test_recipe 2>&1", bin, MODEL);
    rc = tio_run(cmd, out, sizeof out);
    CHECK(c, rc == 0, "export llama.cpp runs (%s)", out);
    size_t n = 0;
    char *sh = tio_slurp("build/test_recipe/quantize.sh", &n), *tt = tio_slurp("build/test_recipe/tensor-types.txt", &n);
    char *rd = tio_slurp("build/test_recipe/README.md", &n);
    CHECK(c, sh && strstr(sh, "exec llama-quantize --imatrix \"$DIR/imatrix.gguf\" --tensor-type-file \"$DIR/tensor-types.txt\" "
                              "--token-embedding-type q8_0 --output-tensor-type bf16 \"$1\" \"$2\" Q4_1 ${3:+\"$3\"}\n") &&
                 !strstr(sh, "--pure"),
          "quantize.sh: full llama-quantize command, base Q4_1, no --pure");
    CHECK(c, tt && strstr(tt, "^blk\\.1\\.ffn_gate_exps\\.weight$=q4_0"), "tensor-types.txt written");
    CHECK(c, rd && strstr(rd, "| a | 0.25 |") && strstr(rd, "| b | 0.5 |") && strstr(rd, "whole file"), "README: bpw and predicted KLD per domain");
    imx_data d;
    rc = imx_read(&d, "build/test_recipe/imatrix.gguf", &e);
    CHECK(c, rc == 0 && imx_find(&d, "blk.0.attn_q.weight"), "imatrix.gguf from the allocation's statistics (%s)", e.msg);
    if (!rc) imx_free(&d);
    free(sh), free(tt), free(rd);
    /* stats compare: the exported imatrix against the statistics it came from (set a) */
    snprintf(cmd, sizeof cmd, "%s stats compare %s --imatrix build/test_recipe/imatrix.gguf --stats %s --set a 2>&1", bin, MODEL, STATS);
    rc = tio_run(cmd, out, sizeof out);
    CHECK(c, rc == 0 && strstr(out, "blk.0.attn_q.weight                      1   1.000000") &&
                 strstr(out, "0 only in the imatrix, 0 only in the statistics, 0 shape mismatches; lowest cosine 1.000000"),
          "stats compare: identical statistics give cosine 1 (%s)", out);
    /* against set b: attn_q's mean x² is 10 times set a's in every column (same direction) */
    snprintf(cmd, sizeof cmd, "%s stats compare %s --imatrix build/test_recipe/imatrix.gguf --stats %s --set b 2>&1", bin, MODEL, STATS);
    rc = tio_run(cmd, out, sizeof out);
    CHECK(c, rc == 0 && strstr(out, "blk.0.attn_q.weight                      1   1.000000          9\n"),
          "stats compare: mean x² 10 times the imatrix's: cosine 1, rel L2 9 (%s)", out);
    snprintf(cmd, sizeof cmd, "%s export llama.cpp %s --alloc build/test_recipe_alloc.h5:nope -o build/test_recipe 2>&1", bin, MODEL);
    CHECK(c, tio_run(cmd, out, sizeof out) == 1 && strstr(out, "nope"), "missing allocation: one-line error (%s)", out);
    remove("build/test_recipe_alloc.h5");
}

int main(void)
{
    chk c;
    chk_init(&c, "test_imatrix");
    vl_err e = {0};
    CHECK(&c, make_stats(&e) == 0, "hand-built stats file (%s)", e.msg);
    imx_data d;
    int rc = imx_from_stats(&d, STATS, MODEL, "a*2,b", &e);
    CHECK(&c, rc == 0, "imx_from_stats (%s)", e.msg);
    if (rc) return chk_done(&c);
    /* q,k,v,gate_proj,up_proj of layer 0 (mlp.gate is not in the dense layer), down_exps of 1 */
    CHECK_INT(&c, d.n, 6, "entries");
    CHECK(&c, d.chunk_count == 3 && d.chunk_size == 11, "chunks: 2+1 sequences, (16+16)/3 tokens rounded");
    CHECK(&c, d.n_datasets == 2 && !strcmp(d.datasets[0], "a=en.txt") && !strcmp(d.datasets[1], "b=zh.txt"), "datasets");
    CHECK(&c, imx_write(&d, OUT, &e) == 0, "imx_write (%s)", e.msg);
    imx_free(&d);

    gguf_file *f = NULL;
    rc = gguf_open(&f, OUT, &e);
    CHECK(&c, rc == 0, "written file parses (%s)", e.msg);
    if (rc) return chk_done(&c);
    const char *ty = NULL, *ds = NULL;
    uint64_t cc = 0, cs = 0;
    CHECK(&c, !gguf_get_str(f, "general.type", &ty, &e) && !strcmp(ty, "imatrix") &&
                  !gguf_get_arr_str(f, "imatrix.datasets", 0, &ds, &e) && !gguf_get_u64(f, "imatrix.chunk_count", &cc, &e) &&
                  !gguf_get_u64(f, "imatrix.chunk_size", &cs, &e) && cc == 3 && cs == 11,
          "keys general.type, imatrix.datasets, imatrix.chunk_count (u32), imatrix.chunk_size (u32)");
    CHECK_INT(&c, gguf_n_tensors(f), 12, "two tensors per entry");
    const gguf_tensor *q = gguf_tensor_find(f, "blk.0.attn_q.weight.in_sum2");
    const gguf_tensor *qc = gguf_tensor_find(f, "blk.0.attn_q.weight.counts");
    /* a*2 + b: sum 2·(j+1) + 10·(j+1) = 12(j+1), count 2·16 + 16 = 48; dense n_mat = 1 → 1-D */
    CHECK(&c, q && qc && q->ggml_type == 0 && q->n_dims == 1 && q->ne[0] == 64 && f32_at(q, 9) == 120.0f &&
                  qc->n_dims == 1 && qc->ne[0] == 1 && f32_at(qc, 0) == 48.0f,
          "attn_q: in_sum2 [64] = 2·a + b, counts [1] = 48");
    const gguf_tensor *x = gguf_tensor_find(f, "blk.1.ffn_down_exps.weight.in_sum2");
    const gguf_tensor *xc = gguf_tensor_find(f, "blk.1.ffn_down_exps.weight.counts");
    int rows_ok = x && xc && x->n_dims == 2 && x->ne[0] == 32 && x->ne[1] == 8 && xc->n_dims == 2 &&
                  xc->ne[0] == 1 && xc->ne[1] == 8;
    for (int m = 0; rows_ok && m < 8; m++) {
        rows_ok &= f32_at(x, m * 32 + 4) == (m == 3 ? 13.0f * 5 : 0.0f);
        rows_ok &= f32_at(xc, m) == (m == 3 ? 16.0f : 0.0f);
    }
    CHECK(&c, rows_ok, "down_exps: [32, 8], expert 3's row = 2·5(j+1) + 3(j+1), counts [1, 8] = 2·6 + 4");
    CHECK(&c, !gguf_tensor_find(f, "blk.0.ffn_gate_inp.weight.in_sum2") &&
                  gguf_tensor_find(f, "blk.0.ffn_gate.weight.in_sum2"),
          "only tensors the model has (no router in the dense layer 0)");
    gguf_close(f);

    imx_data r;
    rc = imx_read(&r, OUT, &e);
    const imx_entry *re = rc ? NULL : imx_find(&r, "blk.1.ffn_down_exps.weight");
    CHECK(&c, re && re->n_in == 32 && re->n_mat == 8 && imx_mean(re, 3, 4) == 65.0 / 16 && imx_mean(re, 0, 0) == 1.0,
          "read back: mean = sum/count, 1 for an expert without input (%s)", e.msg);
    if (!rc) imx_free(&r);

    CHECK(&c, imx_from_stats(&d, STATS, MODEL, "a*0", &e) == VL_EARG, "weight 0 refused (%s)", e.msg);
    CHECK(&c, imx_from_stats(&d, STATS, MODEL, "nope", &e) == VL_ENOTFOUND, "missing set (%s)", e.msg);
    /* an in_sum2 without its counts */
    gguf_writer *w = NULL;
    float z[4] = {1, 2, 3, 4};
    int64_t ne[1] = {4};
    const char *dsv[1] = {"x"};
    rc = gguf_writer_new(&w, &e) || gguf_w_str_arr(w, "imatrix.datasets", dsv, 1, &e) ||
         gguf_w_u32(w, "imatrix.chunk_count", 1, &e) || gguf_w_u32(w, "imatrix.chunk_size", 1, &e) ||
         gguf_w_tensor(w, "t.in_sum2", 0, 1, ne, z, sizeof z, &e) || gguf_w_write(w, OUT, &e);
    gguf_writer_free(w);
    CHECK(&c, !rc && imx_read(&r, OUT, &e) == VL_EFORMAT, "in_sum2 without counts refused (%s)", e.msg);
    rc = gguf_writer_new(&w, &e) || gguf_w_tensor(w, "t.in_sum2", 0, 1, ne, z, sizeof z, &e) || gguf_w_write(w, OUT, &e);
    gguf_writer_free(w);
    CHECK(&c, !rc && imx_read(&r, OUT, &e) == VL_ENOTFOUND, "missing imatrix keys refused (%s)", e.msg);
    test_recipe(&c);
    test_export_cli(&c);
    remove(OUT), remove(STATS);
    return chk_done(&c);
}
