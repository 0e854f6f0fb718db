/* io/gguf_names.c — the HF → GGUF tensor name table (see io/gguf_names.h for the sources). */
#include "gguf_names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    A_LLAMA = 1 << 0, A_QWEN2 = 1 << 1, A_QWEN2_MOE = 1 << 2, A_QWEN3 = 1 << 3,
    A_QWEN3_MOE = 1 << 4, A_MIXTRAL = 1 << 5, A_DEEPSEEK = 1 << 6,
    A_ALL = (1 << 7) - 1,
    A_DENSE_MLP = A_LLAMA | A_QWEN2 | A_QWEN2_MOE | A_QWEN3 | A_QWEN3_MOE | A_DEEPSEEK,
    A_MLP_MOE = A_QWEN2_MOE | A_QWEN3_MOE | A_DEEPSEEK,
};

static const struct {
    const char *name;
    int bit;
} ARCHS[] = {{"llama", A_LLAMA},         {"qwen2", A_QWEN2},     {"qwen2_moe", A_QWEN2_MOE},
             {"qwen3", A_QWEN3},         {"qwen3_moe", A_QWEN3_MOE}, {"mixtral", A_MIXTRAL},
             {"deepseek_v2", A_DEEPSEEK}, {"deepseek_v3", A_DEEPSEEK}};

/* Per-layer rules: HF suffix after "model.layers.N." → GGUF suffix after "blk.N.". */
static const struct {
    const char *hf, *gguf;
    int archs;
} LAYER[] = {
    {"input_layernorm.weight", "attn_norm.weight", A_ALL},
    {"post_attention_layernorm.weight", "ffn_norm.weight", A_ALL},
    {"self_attn.q_proj.weight", "attn_q.weight", A_ALL},
    {"self_attn.q_proj.bias", "attn_q.bias", A_ALL},
    {"self_attn.k_proj.weight", "attn_k.weight", A_ALL & ~A_DEEPSEEK},
    {"self_attn.k_proj.bias", "attn_k.bias", A_ALL & ~A_DEEPSEEK},
    {"self_attn.v_proj.weight", "attn_v.weight", A_ALL & ~A_DEEPSEEK},
    {"self_attn.v_proj.bias", "attn_v.bias", A_ALL & ~A_DEEPSEEK},
    {"self_attn.o_proj.weight", "attn_output.weight", A_ALL},
    {"self_attn.o_proj.bias", "attn_output.bias", A_ALL},
    {"self_attn.q_norm.weight", "attn_q_norm.weight", A_QWEN3 | A_QWEN3_MOE},
    {"self_attn.k_norm.weight", "attn_k_norm.weight", A_QWEN3 | A_QWEN3_MOE},
    {"self_attn.q_a_proj.weight", "attn_q_a.weight", A_DEEPSEEK},
    {"self_attn.q_a_layernorm.weight", "attn_q_a_norm.weight", A_DEEPSEEK},
    {"self_attn.q_b_proj.weight", "attn_q_b.weight", A_DEEPSEEK},
    {"self_attn.kv_a_proj_with_mqa.weight", "attn_kv_a_mqa.weight", A_DEEPSEEK},
    {"self_attn.kv_a_layernorm.weight", "attn_kv_a_norm.weight", A_DEEPSEEK},
    {"self_attn.kv_b_proj.weight", "attn_k_b.weight", A_DEEPSEEK}, /* + attn_v_b, see ggn_map */
    {"mlp.gate_proj.weight", "ffn_gate.weight", A_DENSE_MLP},
    {"mlp.up_proj.weight", "ffn_up.weight", A_DENSE_MLP},
    {"mlp.down_proj.weight", "ffn_down.weight", A_DENSE_MLP},
    {"mlp.gate.weight", "ffn_gate_inp.weight", A_MLP_MOE},
    {"mlp.gate.e_score_correction_bias", "exp_probs_b.bias", A_DEEPSEEK},
    {"mlp.shared_expert.gate_proj.weight", "ffn_gate_shexp.weight", A_QWEN2_MOE},
    {"mlp.shared_expert.up_proj.weight", "ffn_up_shexp.weight", A_QWEN2_MOE},
    {"mlp.shared_expert.down_proj.weight", "ffn_down_shexp.weight", A_QWEN2_MOE},
    {"mlp.shared_expert_gate.weight", "ffn_gate_inp_shexp.weight", A_QWEN2_MOE},
    {"mlp.shared_experts.gate_proj.weight", "ffn_gate_shexp.weight", A_DEEPSEEK},
    {"mlp.shared_experts.up_proj.weight", "ffn_up_shexp.weight", A_DEEPSEEK},
    {"mlp.shared_experts.down_proj.weight", "ffn_down_shexp.weight", A_DEEPSEEK},
    {"block_sparse_moe.gate.weight", "ffn_gate_inp.weight", A_MIXTRAL},
};

/* Routed experts: PREFIX.E.SUFFIX → merged tensor. */
static const struct {
    const char *prefix, *suffix, *gguf;
    int archs;
} EXPERT[] = {
    {"mlp.experts.", ".gate_proj.weight", "ffn_gate_exps.weight", A_MLP_MOE},
    {"mlp.experts.", ".up_proj.weight", "ffn_up_exps.weight", A_MLP_MOE},
    {"mlp.experts.", ".down_proj.weight", "ffn_down_exps.weight", A_MLP_MOE},
    {"block_sparse_moe.experts.", ".w1.weight", "ffn_gate_exps.weight", A_MIXTRAL},
    {"block_sparse_moe.experts.", ".w3.weight", "ffn_up_exps.weight", A_MIXTRAL},
    {"block_sparse_moe.experts.", ".w2.weight", "ffn_down_exps.weight", A_MIXTRAL},
};

static int arch_bit(const char *arch)
{
    for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++)
        if (!strcmp(ARCHS[i].name, arch)) return ARCHS[i].bit;
    return 0;
}

int ggn_arch_supported(const char *arch) { return arch_bit(arch) != 0; }

/* Parse a non-negative decimal prefix of s (no sign, no leading zeros except "0") into *v; returns
 * the characters used, 0 if none. */
static int parse_index(const char *s, int *v)
{
    int n = 0;
    long x = 0;
    while (s[n] >= '0' && s[n] <= '9' && n < 7) x = x * 10 + (s[n] - '0'), n++;
    if (n == 0 || (n > 1 && s[0] == '0') || (s[n] >= '0' && s[n] <= '9')) return 0;
    *v = (int)x;
    return n;
}

int ggn_map(const char *arch, const char *hf, ggn_target *out, vl_err *err)
{
    int ab = arch_bit(arch);
    memset(out, 0, sizeof *out);
    out->expert = -1, out->layer = -1, out->n = 1;
    if (!ab) return vl_errf(err, VL_ECONFIG, "architecture '%s' has no GGUF name map", arch);
    static const char *const GLOBAL[][2] = {{"model.embed_tokens.weight", "token_embd.weight"},
                                            {"model.norm.weight", "output_norm.weight"},
                                            {"lm_head.weight", "output.weight"}};
    for (size_t i = 0; i < 3; i++)
        if (!strcmp(hf, GLOBAL[i][0])) {
            snprintf(out->name[0], GGN_NAME_MAX, "%s", GLOBAL[i][1]);
            return 0;
        }
    const char *pre = "model.layers.";
    size_t pl = strlen(pre);
    int layer, k;
    if (strncmp(hf, pre, pl) || !(k = parse_index(hf + pl, &layer)) || hf[pl + (size_t)k] != '.')
        return vl_errf(err, VL_ENOTFOUND, "%s: no GGUF name for '%s'", arch, hf);
    const char *rest = hf + pl + (size_t)k + 1;
    out->layer = layer;
    for (size_t i = 0; i < sizeof LAYER / sizeof LAYER[0]; i++)
        if ((LAYER[i].archs & ab) && !strcmp(rest, LAYER[i].hf)) {
            snprintf(out->name[0], GGN_NAME_MAX, "blk.%d.%s", layer, LAYER[i].gguf);
            if (!strcmp(rest, "self_attn.kv_b_proj.weight")) {
                out->n = 2;
                snprintf(out->name[1], GGN_NAME_MAX, "blk.%d.attn_v_b.weight", layer);
            }
            return 0;
        }
    for (size_t i = 0; i < sizeof EXPERT / sizeof EXPERT[0]; i++) {
        size_t ppl = strlen(EXPERT[i].prefix);
        int e, ke;
        if (!(EXPERT[i].archs & ab) || strncmp(rest, EXPERT[i].prefix, ppl)) continue;
        if (!(ke = parse_index(rest + ppl, &e)) || strcmp(rest + ppl + ke, EXPERT[i].suffix)) continue;
        snprintf(out->name[0], GGN_NAME_MAX, "blk.%d.%s", layer, EXPERT[i].gguf);
        out->expert = e;
        return 0;
    }
    return vl_errf(err, VL_ENOTFOUND, "%s: no GGUF name for '%s'", arch, hf);
}
