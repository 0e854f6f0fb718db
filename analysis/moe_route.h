/* analysis/moe_route.h — DeepSeek-V3 routing of one token (sigmoid scores, bias-corrected
 * group-limited top-k), as transformers' DeepseekV3TopkRouter computes it, in float32:
 *
 *   s_e = σ(logit_e)                     the scores; the weights come from these
 *   c_e = s_e + bias_e                   e_score_correction_bias: for the *selection* only
 *   group score = sum of the 2 largest c in each of n_group groups of E/n_group experts
 *   keep the topk_group best groups; c of the others set to 0 (not −∞, as transformers does)
 *   selected = the K largest c; weight_k = s_k (÷ (Σ s_k + 1e-20) if norm_topk_prob)
 *              × routed_scaling_factor
 *
 * Ties (equal group scores or masked scores) go to the lower index, as in fwd.c's softmax
 * router. Pure; thread-safe.
 */
#ifndef VL_MOE_ROUTE_H
#define VL_MOE_ROUTE_H

#include "../io/hfcfg.h"

/* logits [E], bias [E]; scratch [2·E] floats; writes sel[K] (expert ids, in selection order)
 * and w[K]; E, K, the groups and the scaling come from c (deepseek_v3 fields). */
void moe_route_dsv3(const hfc_config *c, const float *logits, const float *bias, float *scratch,
                    int *sel, float *w);

#endif
