/* analysis/model_dsv4.h — the tensors of a deepseek_v4 checkpoint and where they sit.
 *
 * Names as transformers 5.17 writes a DeepseekV4ForCausalLM checkpoint (DeepSeek's own
 * spelling, which its conversion mapping renames on load): model.embed_tokens, per layer
 * attn.{wq_a, q_norm, wq_b, wkv, norm, wo_a, wo_b, attn_sink}, attn.compressor.{ape, wkv,
 * wgate, norm} (CSA and HCA layers), attn.indexer.{compressor.{ape, wkv, wgate, norm}, wq_b,
 * weights_proj} (CSA layers), attn_norm, ffn_norm, ffn.gate.{weight, bias | tid2eid},
 * ffn.experts.E.{w1, w3, w2}, ffn.shared_experts.{w1, w3, w2}, hc_{attn,ffn}_{fn, base,
 * scale}; then model.hc_head.{hc_fn, hc_base, hc_scale}, model.norm, head.
 *
 * The model's tensor list holds them in this header's order: embed, then per layer the slots
 * below in enum order (absent ones skipped; V4_EXPERTS expands to w1, w3, w2 of each expert),
 * then the globals. A binding's ext[] array is indexed by that list (model.h).
 */
#ifndef VL_MODEL_DSV4_H
#define VL_MODEL_DSV4_H

#include "../io/hfcfg.h"

typedef enum {
    V4_ATTN_NORM, V4_WQ_A, V4_Q_NORM, V4_WQ_B, V4_WKV, V4_KV_NORM, V4_WO_A, V4_WO_B, V4_SINKS,
    V4_C_APE, V4_C_WKV, V4_C_WGATE, V4_C_NORM,                     /* CSA and HCA */
    V4_I_APE, V4_I_WKV, V4_I_WGATE, V4_I_NORM, V4_I_WQ_B, V4_I_WPROJ, /* CSA */
    V4_FFN_NORM, V4_GATE, V4_GATE_BIAS /* topk layers */, V4_TID2EID /* hash layers */,
    V4_EXPERTS, V4_SH_W1, V4_SH_W3, V4_SH_W2,
    V4_HC_ATTN_FN, V4_HC_ATTN_BASE, V4_HC_ATTN_SCALE, V4_HC_FFN_FN, V4_HC_FFN_BASE,
    V4_HC_FFN_SCALE,
    V4_SLOT_COUNT
} v4_slot;

typedef enum { V4_G_EMBED, V4_G_HC_FN, V4_G_HC_BASE, V4_G_HC_SCALE, V4_G_NORM, V4_G_HEAD,
               V4_G_COUNT } v4_global;

/* Tensor-list index of layer L's SLOT (for V4_EXPERTS: expert 0's w1; expert e's w1, w3, w2
 * follow at +3e, +3e+1, +3e+2), or −1 when the layer has no such tensor. Pure. */
long mdsv4_index(const hfc_config *c, int layer, v4_slot slot);
long mdsv4_global(const hfc_config *c, v4_global g);

#endif
