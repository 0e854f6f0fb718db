/* tests/test_llmix.c — alloc/llmix.h: llama.cpp's IQ2 ftype mixes as allocations.
 *
 * On the embedded model (qwen2_moe, 6 layers, 16 experts, tied embeddings, hidden 256; 12
 * ffn_down tensors, but llama.cpp's n_ffn_down is the layer count: 6/8 = 0 are bumped), on the
 * deepseek_v3 fixture (8 routed experts: attn_output q5_K; untied; 64-column expert
 * down_proj: the shape fallback) and the mixtral fixture (48-column down_proj: no type of the
 * chain fits, an error); plus the rules on synthetic facts (attn_k with 8 experts, n_gqa).
 * The whole-file bpw of each mix on the embedded model (alloc/mbits.h rule gguf) is checked
 * against hand-computed values (below); experiments/gguf-2bit.ini's comment gave 2.68 / 2.85 /
 * 2.98 for llama.cpp's IQ2_XXS / IQ2_XS / IQ2_S files, which these rules do not reproduce.
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include "../alloc/llmix.h"
#include "../alloc/mbits.h"
#include "../io/ggml_type.h"

#include <stdio.h>
#include <string.h>

#define TINY "models/vbrlab-moe-tiny"
#define DSV3 "tests/fixtures/tiny-deepseek-v3"
#define MIXTRAL "tests/fixtures/mixtral"

/* The format name item NAME has in A, "" when it is not listed. */
static const char *fmt_of(const qb_alloc *a, const char *name)
{
    static char buf[QFMT_NAME_MAX];
    for (int i = 0; i < a->n; i++)
        if (!strcmp(a->v[i].item, name))
            return qfmt_name(&a->v[i].fmt, buf);
    return "";
}

static void expect(chk *c, const qb_alloc *a, const char *mix, const char *name,
                   const char *want)
{
    const char *got = fmt_of(a, name);
    CHECK(c, !strcmp(got, want), "%s: %s is %s (want %s)", mix, name, got, want);
}

typedef struct {
    const model *m;
    const qb_alloc *a;
} fctx;

static const qfmt *alloc_fmt(const void *ctx, size_t i)
{
    const fctx *f = ctx;
    const char *n = model_tensor_at(f->m, i)->name;
    for (int k = 0; k < f->a->n; k++)
        if (!strcmp(f->a->v[k].item, n))
            return &f->a->v[k].fmt;
    return NULL;
}

static double file_bpw(const model *m, const qb_alloc *a)
{
    fctx f = {m, a};
    return mb_count_model(m, alloc_fmt, &f, MB_GGUF).bpw_model;
}

static void test_tiny(chk *c, const model *m)
{
    static const char *const mixes[] = {"IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M"};
    /* bits: body 21,233,664 weights = attn_v 196,608 (q4_K 4.5) + attn_output 393,216 (iq3_s
     * 3.4375 for IQ2_S/IQ2_M, else the default) + 20,643,840 at the default (iq2_xxs 2.0625,
     * iq2_xs 2.3125, iq2_s 2.5625); kept 23,715,840 bits: token_embd 4,194,304 q5_K (5.5),
     * routers 24,576 BF16, 1-row tensors 7,936 F32; over 25,460,480 weights:
     * IQ2_XXS 67,989,504 (2.6704), IQ2_XS 73,248,768 (2.8770), IQ2_S 73,691,136 (2.8943),
     * IQ2_M 78,852,096 (3.0970). */
    static const double want_bpw[] = {67989504.0 / 25460480, 73248768.0 / 25460480,
                                      73691136.0 / 25460480, 78852096.0 / 25460480};
    char n[128];
    for (int k = 0; k < 4; k++) {
        qb_alloc a;
        qb_alloc_init(&a);
        vl_err e = {0, ""};
        int rc = llmix_alloc(&a, m, mixes[k], &e);
        CHECK(c, rc == 0, "%s on the embedded model (%s)", mixes[k], e.msg);
        /* 6 × (q k v o + 16×3 experts + 3 shared) + token_embd */
        CHECK_INT(c, a.n, 6 * (4 + 48 + 3) + 1, "items");
        double bpw = file_bpw(m, &a);
        printf("  %s: file bpw %.4f\n", mixes[k], bpw);
        CHECK_NEAR(c, bpw, want_bpw[k], 1e-9, 0, mixes[k]);
        const char *def = k == 0 ? "ggml-iq2_xxs" : k == 3 ? "ggml-iq2_s" : "ggml-iq2_xs";
        expect(c, &a, mixes[k], "model.embed_tokens.weight", "ggml-q5_K");
        for (int l = 0; l < 6; l++) {
            snprintf(n, sizeof n, "model.layers.%d.self_attn.v_proj.weight", l);
            expect(c, &a, mixes[k], n, "ggml-q4_K");
            snprintf(n, sizeof n, "model.layers.%d.self_attn.k_proj.weight", l);
            expect(c, &a, mixes[k], n, def);
            snprintf(n, sizeof n, "model.layers.%d.self_attn.q_proj.weight", l);
            expect(c, &a, mixes[k], n, def);
            snprintf(n, sizeof n, "model.layers.%d.self_attn.o_proj.weight", l);
            expect(c, &a, mixes[k], n, k >= 2 ? "ggml-iq3_s" : def);
            for (int x = 0; x < 16; x += 15) {
                snprintf(n, sizeof n, "model.layers.%d.mlp.experts.%d.down_proj.weight", l, x);
                expect(c, &a, mixes[k], n, def); /* 6 layers: 6/8 = 0 bumped */
                snprintf(n, sizeof n, "model.layers.%d.mlp.experts.%d.gate_proj.weight", l, x);
                expect(c, &a, mixes[k], n, def);
                snprintf(n, sizeof n, "model.layers.%d.mlp.experts.%d.up_proj.weight", l, x);
                expect(c, &a, mixes[k], n, def);
            }
            snprintf(n, sizeof n, "model.layers.%d.mlp.shared_expert.down_proj.weight", l);
            expect(c, &a, mixes[k], n, def);
            snprintf(n, sizeof n, "model.layers.%d.mlp.shared_expert.up_proj.weight", l);
            expect(c, &a, mixes[k], n, def);
            /* routers, norms, biases, shared_expert_gate: no items */
            snprintf(n, sizeof n, "model.layers.%d.mlp.gate.weight", l);
            expect(c, &a, mixes[k], n, "");
            snprintf(n, sizeof n, "model.layers.%d.mlp.shared_expert_gate.weight", l);
            expect(c, &a, mixes[k], n, "");
            snprintf(n, sizeof n, "model.layers.%d.self_attn.v_proj.bias", l);
            expect(c, &a, mixes[k], n, "");
        }
        qb_alloc_deinit(&a);
    }
}

static void test_dsv3(chk *c)
{
    model *m = NULL;
    vl_err e = {0, ""};
    if (model_open(&m, DSV3, &e)) {
        CHECK(c, 0, "open %s: %s", DSV3, e.msg);
        return;
    }
    qb_alloc a;
    qb_alloc_init(&a);
    int rc = llmix_alloc(&a, m, "IQ2_XS", &e);
    CHECK(c, rc == 0, "IQ2_XS on deepseek_v3 (%s)", e.msg);
    const char *x = "IQ2_XS dsv3";
    expect(c, &a, x, "model.embed_tokens.weight", "ggml-q2_K");  /* untied */
    expect(c, &a, x, "lm_head.weight", "ggml-q5_K");             /* output */
    expect(c, &a, x, "model.layers.0.self_attn.o_proj.weight", "ggml-q5_K"); /* 8 experts */
    expect(c, &a, x, "model.layers.2.self_attn.o_proj.weight", "ggml-q5_K");
    expect(c, &a, x, "model.layers.0.self_attn.q_a_proj.weight", "ggml-iq2_xs");
    /* 128 columns (q_lora_rank, kv_lora_rank): iq2_xs → iq4_nl */
    expect(c, &a, x, "model.layers.0.self_attn.q_b_proj.weight", "ggml-iq4_nl");
    expect(c, &a, x, "model.layers.0.self_attn.kv_b_proj.weight", "ggml-iq4_nl");
    /* 5 ffn_down tensors: 5/8 = 0 bumped; 512 columns fit, 64 fall back */
    expect(c, &a, x, "model.layers.0.mlp.down_proj.weight", "ggml-iq2_xs");
    expect(c, &a, x, "model.layers.1.mlp.experts.3.down_proj.weight", "ggml-iq4_nl");
    expect(c, &a, x, "model.layers.1.mlp.shared_experts.down_proj.weight", "ggml-iq4_nl");
    expect(c, &a, x, "model.layers.1.mlp.experts.3.up_proj.weight", "ggml-iq2_xs");
    printf("  IQ2_XS on deepseek_v3: file bpw %.9f\n", file_bpw(m, &a));
    qb_alloc_deinit(&a);
    qb_alloc_init(&a);
    rc = llmix_alloc(&a, m, "IQ2_S", &e); /* untied token_embd of IQ2_S: iq3_s */
    CHECK(c, rc == 0 && !strcmp(fmt_of(&a, "model.embed_tokens.weight"), "ggml-iq3_s"),
          "IQ2_S dsv3 token_embd iq3_s (%s)", e.msg);
    qb_alloc_deinit(&a);
    model_close(m);
}

static void test_errors(chk *c, const model *tiny)
{
    qb_alloc a;
    qb_alloc_init(&a);
    vl_err e = {0, ""};
    int rc = llmix_alloc(&a, tiny, "IQ2_xs", &e); /* case-sensitive */
    CHECK(c, rc == VL_ECONFIG && strstr(e.msg, "IQ2_xs") && strstr(e.msg, "IQ2_XXS"),
          "unknown ftype refused: %s", e.msg);
    CHECK(c, !llmix_known("Q4_K_M") && llmix_known("IQ2_M"), "llmix_known");
    model *m = NULL;
    if (model_open(&m, MIXTRAL, &e)) {
        CHECK(c, 0, "open %s: %s", MIXTRAL, e.msg);
    } else {
        rc = llmix_alloc(&a, m, "IQ2_XS", &e); /* 48-column down_proj: not even 32 */
        CHECK(c, rc == VL_ESHAPE && strstr(e.msg, "48 columns"), "mixtral down_proj: %s",
              e.msg);
        model_close(m);
    }
    if (model_open(&m, "tests/fixtures/tiny-deepseek-v4", &e)) { /* no GGUF name map */
        CHECK(c, 0, "open tiny-deepseek-v4: %s", e.msg);
    } else {
        rc = llmix_alloc(&a, m, "IQ2_XS", &e);
        CHECK(c, rc == VL_ECONFIG && strstr(e.msg, "llama_mix IQ2_XS") &&
                     strstr(e.msg, "no GGUF name map"), "deepseek_v4 refused: %s", e.msg);
        model_close(m);
    }
    qb_alloc_deinit(&a);
}

static void test_rules(chk *c)
{
    llmix_model mm = {8, 1, 0, 40};
    int t = -1;
    vl_err e = {0, ""};
#define TY(ft, tn, cols, i, want)                                                            \
    do {                                                                                       \
        int rc_ = llmix_type(ft, tn, cols, i, &mm, &t, &e);                                     \
        CHECK(c, rc_ == 0 && t == (want), "%s %s cols %d i %d: %s (want %s) %s", ft, tn,       \
              cols, i, rc_ ? "error" : ggf_get((ggf_type)t)->name,                             \
              ggf_get((ggf_type)(want))->name, e.msg);                                         \
    } while (0)
    TY("IQ2_XXS", "blk.3.attn_k.weight", 4096, 0, GGF_Q4_K);       /* n_expert == 8 */
    TY("IQ2_XXS", "blk.3.attn_k.weight", 4160, 0, GGF_Q5_0);       /* 4160 % 256 ≠ 0 */
    TY("IQ2_XXS", "blk.3.attn_output.weight", 4096, 0, GGF_Q5_K);
    TY("IQ2_XXS", "blk.3.attn_output.weight", 4160, 0, GGF_Q5_1);
    TY("IQ2_M", "blk.3.attn_q.weight", 4096, 0, GGF_IQ2_S);
    TY("IQ2_XS", "blk.3.ffn_down.weight", 4096, 4, GGF_Q2_K);      /* 4 < 40/8 */
    TY("IQ2_XS", "blk.3.ffn_down.weight", 4096, 5, GGF_IQ2_XS);
    TY("IQ2_XS", "blk.3.ffn_down.weight", 4160, 4, GGF_Q4_0);
    TY("IQ2_M", "blk.3.ffn_down_shexp.weight", 4096, 4, GGF_IQ3_S);
    TY("IQ2_M", "blk.3.ffn_down_shexp.weight", 4160, 4, GGF_IQ4_NL);
    TY("IQ2_XS", "token_embd.weight", 4096, 0, GGF_Q2_K);          /* untied */
    TY("IQ2_XS", "output.weight", 4096, 0, GGF_Q5_K);
    TY("IQ2_XS", "output.weight", 4160, 0, GGF_Q8_0);              /* not a multiple of 256 */
    TY("IQ2_XS", "token_embd.weight", 4160, 0, GGF_Q4_0);          /* q2_K → q4_0 */
    mm = (llmix_model){0, 2, 1, 40};                                /* dense, n_gqa 2, tied */
    TY("IQ2_XS", "token_embd.weight", 4096, 0, GGF_Q5_K);
    TY("IQ2_XS", "token_embd.weight", 4160, 0, GGF_Q8_0);
    TY("IQ2_XS", "blk.0.attn_v.weight", 4096, 0, GGF_Q2_K);
    TY("IQ2_S", "blk.0.attn_v.weight", 4096, 0, GGF_IQ3_S);
    TY("IQ2_S", "blk.0.attn_qkv.weight", 4096, 0, GGF_IQ3_S);
    TY("IQ2_S", "blk.0.attn_k.weight", 4096, 0, GGF_IQ2_XS);
    TY("IQ2_XXS", "blk.0.attn_output.weight", 4096, 0, GGF_IQ2_XXS);
    mm.n_gqa = 4;
    TY("IQ2_S", "blk.0.attn_v.weight", 4096, 0, GGF_Q4_K);
    TY("IQ2_S", "blk.0.attn_kv_b.weight", 4096, 0, GGF_Q4_K);
    int rc = llmix_type("IQ2_S", "blk.0.attn_q.weight", 48, 0, &mm, &t, &e);
    CHECK(c, rc == VL_ESHAPE, "48 columns: no type fits (%s)", e.msg);
#undef TY
}

int main(void)
{
    chk c;
    chk_init(&c, "test_llmix");
    model *m = NULL;
    vl_err e = {0, ""};
    if (model_open(&m, TINY, &e)) {
        CHECK(&c, 0, "open %s: %s", TINY, e.msg);
        return chk_done(&c);
    }
    test_tiny(&c, m);
    test_errors(&c, m);
    model_close(m);
    test_dsv3(&c);
    test_rules(&c);
    return chk_done(&c);
}
