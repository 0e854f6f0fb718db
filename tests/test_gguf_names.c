/* tests/test_gguf_names.c — io/gguf_names.h: HF → GGUF tensor names per architecture, checked
 * against the names llama.cpp's converter writes (convert_hf_to_gguf.py, gguf-py constants). */
#include "../io/gguf_names.h"
#include "check.h"

#include <string.h>

static void expect(chk *c, const char *arch, const char *hf, const char *want, int expert, const char *want2)
{
    ggn_target t;
    vl_err e = {0};
    int rc = ggn_map(arch, hf, &t, &e);
    CHECK(c, rc == 0 && !strcmp(t.name[0], want) && t.expert == expert &&
                 (want2 ? t.n == 2 && !strcmp(t.name[1], want2) : t.n == 1),
          "%s: %s -> %s%s%s (expert %d) [%s]", arch, hf, want, want2 ? " + " : "", want2 ? want2 : "", expert,
          rc ? e.msg : t.name[0]);
}

static void refuse(chk *c, const char *arch, const char *hf, int code)
{
    ggn_target t;
    vl_err e = {0};
    CHECK(c, ggn_map(arch, hf, &t, &e) == code, "%s: %s refused (%s)", arch, hf, e.msg);
}

int main(void)
{
    chk c;
    chk_init(&c, "test_gguf_names");
    const char *all[] = {"llama", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "mixtral", "deepseek_v3"};
    for (int i = 0; i < 7; i++) {
        expect(&c, all[i], "model.embed_tokens.weight", "token_embd.weight", -1, NULL);
        expect(&c, all[i], "lm_head.weight", "output.weight", -1, NULL);
        expect(&c, all[i], "model.norm.weight", "output_norm.weight", -1, NULL);
        expect(&c, all[i], "model.layers.7.input_layernorm.weight", "blk.7.attn_norm.weight", -1, NULL);
        expect(&c, all[i], "model.layers.7.post_attention_layernorm.weight", "blk.7.ffn_norm.weight", -1, NULL);
        expect(&c, all[i], "model.layers.12.self_attn.o_proj.weight", "blk.12.attn_output.weight", -1, NULL);
    }
    const char *kv[] = {"llama", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "mixtral"};
    for (int i = 0; i < 6; i++) {
        expect(&c, kv[i], "model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight", -1, NULL);
        expect(&c, kv[i], "model.layers.0.self_attn.k_proj.weight", "blk.0.attn_k.weight", -1, NULL);
        expect(&c, kv[i], "model.layers.0.self_attn.v_proj.bias", "blk.0.attn_v.bias", -1, NULL);
    }
    const char *dense[] = {"llama", "qwen2", "qwen3"};
    for (int i = 0; i < 3; i++) {
        expect(&c, dense[i], "model.layers.3.mlp.gate_proj.weight", "blk.3.ffn_gate.weight", -1, NULL);
        expect(&c, dense[i], "model.layers.3.mlp.up_proj.weight", "blk.3.ffn_up.weight", -1, NULL);
        expect(&c, dense[i], "model.layers.3.mlp.down_proj.weight", "blk.3.ffn_down.weight", -1, NULL);
        refuse(&c, dense[i], "model.layers.3.mlp.experts.0.down_proj.weight", VL_ENOTFOUND);
    }
    expect(&c, "qwen3", "model.layers.1.self_attn.q_norm.weight", "blk.1.attn_q_norm.weight", -1, NULL);
    expect(&c, "qwen3_moe", "model.layers.1.self_attn.k_norm.weight", "blk.1.attn_k_norm.weight", -1, NULL);
    refuse(&c, "llama", "model.layers.1.self_attn.q_norm.weight", VL_ENOTFOUND);
    /* qwen2_moe: experts, shared expert, its gate */
    expect(&c, "qwen2_moe", "model.layers.5.mlp.gate.weight", "blk.5.ffn_gate_inp.weight", -1, NULL);
    expect(&c, "qwen2_moe", "model.layers.5.mlp.experts.11.up_proj.weight", "blk.5.ffn_up_exps.weight", 11, NULL);
    expect(&c, "qwen2_moe", "model.layers.5.mlp.experts.0.gate_proj.weight", "blk.5.ffn_gate_exps.weight", 0, NULL);
    expect(&c, "qwen2_moe", "model.layers.5.mlp.shared_expert.down_proj.weight", "blk.5.ffn_down_shexp.weight", -1, NULL);
    expect(&c, "qwen2_moe", "model.layers.5.mlp.shared_expert_gate.weight", "blk.5.ffn_gate_inp_shexp.weight", -1, NULL);
    expect(&c, "qwen3_moe", "model.layers.2.mlp.experts.127.down_proj.weight", "blk.2.ffn_down_exps.weight", 127, NULL);
    refuse(&c, "qwen3_moe", "model.layers.2.mlp.shared_expert.down_proj.weight", VL_ENOTFOUND);
    /* mixtral */
    expect(&c, "mixtral", "model.layers.31.block_sparse_moe.gate.weight", "blk.31.ffn_gate_inp.weight", -1, NULL);
    expect(&c, "mixtral", "model.layers.31.block_sparse_moe.experts.7.w1.weight", "blk.31.ffn_gate_exps.weight", 7, NULL);
    expect(&c, "mixtral", "model.layers.31.block_sparse_moe.experts.7.w2.weight", "blk.31.ffn_down_exps.weight", 7, NULL);
    expect(&c, "mixtral", "model.layers.31.block_sparse_moe.experts.7.w3.weight", "blk.31.ffn_up_exps.weight", 7, NULL);
    /* DeepSeek V3 MLA */
    expect(&c, "deepseek_v3", "model.layers.4.self_attn.q_a_proj.weight", "blk.4.attn_q_a.weight", -1, NULL);
    expect(&c, "deepseek_v3", "model.layers.4.self_attn.q_a_layernorm.weight", "blk.4.attn_q_a_norm.weight", -1, NULL);
    expect(&c, "deepseek_v3", "model.layers.4.self_attn.q_b_proj.weight", "blk.4.attn_q_b.weight", -1, NULL);
    expect(&c, "deepseek_v3", "model.layers.4.self_attn.kv_a_proj_with_mqa.weight", "blk.4.attn_kv_a_mqa.weight", -1, NULL);
    expect(&c, "deepseek_v3", "model.layers.4.self_attn.kv_a_layernorm.weight", "blk.4.attn_kv_a_norm.weight", -1, NULL);
    expect(&c, "deepseek_v3", "model.layers.4.self_attn.kv_b_proj.weight", "blk.4.attn_k_b.weight", -1, "blk.4.attn_v_b.weight");
    expect(&c, "deepseek_v3", "model.layers.4.mlp.gate.e_score_correction_bias", "blk.4.exp_probs_b.bias", -1, NULL);
    expect(&c, "deepseek_v3", "model.layers.4.mlp.shared_experts.up_proj.weight", "blk.4.ffn_up_shexp.weight", -1, NULL);
    expect(&c, "deepseek_v3", "model.layers.4.mlp.experts.255.down_proj.weight", "blk.4.ffn_down_exps.weight", 255, NULL);
    expect(&c, "deepseek_v3", "model.layers.0.mlp.down_proj.weight", "blk.0.ffn_down.weight", -1, NULL);
    refuse(&c, "deepseek_v3", "model.layers.4.self_attn.k_proj.weight", VL_ENOTFOUND);
    refuse(&c, "gpt2", "model.embed_tokens.weight", VL_ECONFIG);
    refuse(&c, "llama", "model.layers.01.self_attn.q_proj.weight", VL_ENOTFOUND);
    refuse(&c, "llama", "model.layers.x.self_attn.q_proj.weight", VL_ENOTFOUND);
    refuse(&c, "qwen2_moe", "model.layers.1.mlp.experts.3.gate_proj.weightx", VL_ENOTFOUND);
    return chk_done(&c);
}
