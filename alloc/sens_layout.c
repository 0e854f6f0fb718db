/* alloc/sens_layout.c — which tensors are quantized, their units, names, and freeing. */
#include "sens.h"

#include "mbits.h"

#include <stdio.h>
#include <string.h>

static const char *const proj_names[SENS_P_COUNT] = {
    [SENS_P_Q] = "q", [SENS_P_K] = "k", [SENS_P_V] = "v", [SENS_P_O] = "o",
    [SENS_P_EXP_GATE] = "exp_gate", [SENS_P_EXP_UP] = "exp_up", [SENS_P_EXP_DOWN] = "exp_down",
    [SENS_P_SH_GATE] = "shared_gate", [SENS_P_SH_UP] = "shared_up",
    [SENS_P_SH_DOWN] = "shared_down", [SENS_P_MLP_GATE] = "mlp_gate", [SENS_P_MLP_UP] = "mlp_up",
    [SENS_P_MLP_DOWN] = "mlp_down", [SENS_P_QA] = "q_a", [SENS_P_QB] = "q_b",
    [SENS_P_KVA] = "kv_a", [SENS_P_KVB] = "kv_b", [SENS_P_WQ_A] = "wq_a", [SENS_P_WQ_B] = "wq_b",
    [SENS_P_WKV] = "wkv", [SENS_P_WO_A] = "wo_a", [SENS_P_WO_B] = "wo_b",
    [SENS_P_EMBED] = "embed", [SENS_P_HEAD] = "lm_head"};

const char *sens_proj_name(sens_proj p) { return p < SENS_P_COUNT ? proj_names[p] : "?"; }

const char *sens_gran_name(sens_gran g)
{
    return g == SENS_TENSOR ? "tensor" : g == SENS_GGUF ? "gguf" : "group";
}

int sens_gran_parse(const char *s, sens_gran *out, vl_err *err)
{
    if (!strcmp(s, "tensor"))
        *out = SENS_TENSOR;
    else if (!strcmp(s, "group"))
        *out = SENS_GROUP;
    else if (!strcmp(s, "gguf"))
        *out = SENS_GGUF;
    else
        return vl_errf(err, VL_EARG, "granularity \"%s\": expected tensor, group or gguf", s);
    return 0;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* deepseek_v4 (analysis/model_dsv4.h names): attention wq_a/wq_b/wkv/wo_a/wo_b, routed and
 * shared experts' w1/w3/w2. Compressors, indexers, routers, hyper-connections, norms,
 * embeddings and the head stay at full precision. −1 for those. */
static int classify_v4(const model_tensor *mt)
{
    static const char *const attn[] = {".attn.wq_a.weight", ".attn.wq_b.weight",
                                       ".attn.wkv.weight", ".attn.wo_a.weight",
                                       ".attn.wo_b.weight"};
    static const char *const ffn[] = {".w1.weight", ".w3.weight", ".w2.weight"};
    for (int k = 0; k < 5; k++)
        if (mt->cls == MODEL_C_ATTN && ends_with(mt->name, attn[k]))
            return SENS_P_WQ_A + k;
    for (int k = 0; k < 3; k++)
        if (ends_with(mt->name, ffn[k]))
            return mt->cls == MODEL_C_EXPERT ? SENS_P_EXP_GATE + k
                   : mt->cls == MODEL_C_SHARED ? SENS_P_SH_GATE + k : -1;
    return -1;
}

int sens_tensor_from(const sens_tensor *t, int n_layers)
{
    if (t->proj == SENS_P_EMBED)
        return SENS_FROM_EMBED;
    return t->proj == SENS_P_HEAD ? n_layers : t->layer;
}

/* Projection of a quantizable tensor, or −1 for everything kept at full precision; the
 * embedding and the head only when OUTER. */
static int classify(const model_tensor *mt, int outer)
{
    if (mt->cls == MODEL_C_EMBED || mt->cls == MODEL_C_LM_HEAD)
        return outer && mt->rows >= 2 && mt->cols >= 2
                   ? (mt->cls == MODEL_C_EMBED ? SENS_P_EMBED : SENS_P_HEAD)
                   : -1;
    if (mt->layer >= 0 && mt->rows >= 2 && (strstr(mt->name, ".attn.") || strstr(mt->name, ".ffn.")))
        return classify_v4(mt);
    static const char *const suf[] = {"q_proj.weight", "k_proj.weight", "v_proj.weight",
                                      "o_proj.weight", "gate_proj.weight", "up_proj.weight",
                                      "down_proj.weight"};
    static const char *const mla[] = {"q_a_proj.weight", "q_b_proj.weight",
                                      "kv_a_proj_with_mqa.weight", "kv_b_proj.weight"};
    if (mt->layer < 0 || mt->rows < 2)
        return -1;
    for (int k = 0; k < 4; k++) /* MLA's projections (deepseek_v3) */
        if (mt->cls == MODEL_C_ATTN && ends_with(mt->name, mla[k]))
            return SENS_P_QA + k;
    for (int k = 0; k < 7; k++) {
        if (!ends_with(mt->name, suf[k]))
            continue;
        if (k < 4)
            return mt->cls == MODEL_C_ATTN ? SENS_P_Q + k : -1;
        int f = k - 4; /* gate, up, down */
        if (mt->cls == MODEL_C_EXPERT)
            return SENS_P_EXP_GATE + f;
        if (mt->cls == MODEL_C_SHARED)
            return SENS_P_SH_GATE + f;
        if (mt->cls == MODEL_C_MLP)
            return SENS_P_MLP_GATE + f;
    }
    return -1;
}

void sens_group_name(char *out, size_t cap, const sens_tensor *t)
{
    const char *p = t->expert >= 0 ? strstr(t->name, ".experts.") : NULL;
    if (!p) {
        snprintf(out, cap, "%s", t->name);
        return;
    }
    const char *rest = strchr(p + 9, '.');
    snprintf(out, cap, "%.*s.experts.*%s", (int)(p - t->name), t->name, rest ? rest : "");
}

int sens_layout(sens_result *r, const model *m, sens_gran gran, int embed_head, vl_err *err)
{
    size_t nm = model_tensor_count(m);
    r->gran = gran;
    r->t = vl_calloc(nm, sizeof *r->t);
    r->unit_name = vl_calloc(nm, sizeof *r->unit_name);
    unsigned char *inlay = vl_calloc(nm, 1); /* 1: a tensor of the layout */
    if (!r->t || !r->unit_name || !inlay) {
        vl_free(inlay);
        return vl_errf(err, VL_ENOMEM, "sens: out of memory");
    }
    r->model_weights = 0;
    for (size_t i = 0; i < nm; i++) {
        const model_tensor *mt = model_tensor_at(m, i);
        r->model_weights += mt->numel;
        int pj = classify(mt, embed_head || gran == SENS_GGUF);
        inlay[i] = pj >= 0;
        if (pj < 0)
            continue;
        sens_tensor *t = &r->t[r->n_tensors];
        *t = (sens_tensor){(int)i, vl_strdup(mt->name), mt->layer, mt->expert, (sens_proj)pj,
                           mt->rows, mt->cols, mt->numel, -1};
        if (!t->name) {
            vl_free(inlay);
            return vl_errf(err, VL_ENOMEM, "sens: out of memory");
        }
        r->n_tensors++;
        char gn[512];
        if (gran != SENS_TENSOR)
            sens_group_name(gn, sizeof gn, t);
        else
            snprintf(gn, sizeof gn, "%s", t->name);
        for (int u = 0; u < r->n_units && t->unit < 0; u++)
            if (!strcmp(r->unit_name[u], gn))
                t->unit = u;
        if (t->unit < 0) {
            if (!(r->unit_name[r->n_units] = vl_strdup(gn))) {
                vl_free(inlay);
                return vl_errf(err, VL_ENOMEM, "sens: out of memory");
            }
            t->unit = r->n_units++;
        }
    }
    for (int k = 0; k < 2; k++) /* MB_STORED, MB_GGUF */
        r->kept_bits[k] = mb_kept_bits(m, inlay, k ? MB_GGUF : MB_STORED);
    vl_free(inlay);
    if (!r->n_tensors)
        return vl_errf(err, VL_ECONFIG, "%s: no quantizable tensors", model_dir(m));
    return 0;
}

void sens_tensor_slot(const sens_tensor *t, stat_slot *slot, int *expert)
{
    static const stat_slot map[SENS_P_COUNT] = {
        [SENS_P_Q] = STAT_ATTN_IN, [SENS_P_K] = STAT_ATTN_IN, [SENS_P_V] = STAT_ATTN_IN,
        [SENS_P_O] = STAT_O_IN, [SENS_P_EXP_GATE] = STAT_EXPERT_IN,
        [SENS_P_EXP_UP] = STAT_EXPERT_IN, [SENS_P_EXP_DOWN] = STAT_EXPERT_DOWN,
        [SENS_P_SH_GATE] = STAT_MLP_IN, [SENS_P_SH_UP] = STAT_MLP_IN,
        [SENS_P_SH_DOWN] = STAT_SHARED_DOWN, [SENS_P_MLP_GATE] = STAT_MLP_IN,
        [SENS_P_MLP_UP] = STAT_MLP_IN, [SENS_P_MLP_DOWN] = STAT_MLP_DOWN,
        [SENS_P_QA] = STAT_ATTN_IN, [SENS_P_QB] = STAT_Q_B_IN, [SENS_P_KVA] = STAT_ATTN_IN,
        [SENS_P_KVB] = STAT_KV_B_IN, [SENS_P_WQ_A] = STAT_ATTN_IN, [SENS_P_WQ_B] = STAT_Q_B_IN,
        [SENS_P_WKV] = STAT_ATTN_IN, [SENS_P_WO_A] = STAT_O_IN, [SENS_P_WO_B] = STAT_O_LORA_IN};
    *slot = map[t->proj];
    *expert = t->expert >= 0 ? t->expert : 0;
}

static void free_names(char **v, int n)
{
    for (int i = 0; v && i < n; i++)
        vl_free(v[i]);
    vl_free(v);
}

void sens_result_free(sens_result *r)
{
    if (!r)
        return;
    for (int i = 0; r->t && i < r->n_tensors; i++)
        vl_free(r->t[i].name);
    vl_free(r->t);
    free_names(r->unit_name, r->n_units);
    free_names(r->set_name, r->n_sets);
    for (int s = 0; r->seq_kld && s < r->n_sets; s++)
        vl_free(r->seq_kld[s]);
    void *arrays[] = {r->set_tokens, r->set_seqs, r->seq_kld, r->alpha_se[0], r->alpha_se[1],
                      r->draw_alpha[0], r->draw_alpha[1], r->alpha_draw_sd[0],
                      r->alpha_draw_sd[1], r->kld[0], r->kld[1], r->alpha[0], r->alpha[1], r->fmt,
                      r->spec, r->few_policy, r->bpw, r->rel_w, r->rel_imp, r->rel_out, r->few,
                      r->w_norm2, r->out_energy, r->noise_energy, r->route_share,
                      r->add_target, r->add_bpw,
                      r->add_measured, r->add_pred[0], r->add_pred[1], r->add_choice, r->corr};
    for (size_t i = 0; i < sizeof arrays / sizeof *arrays; i++)
        vl_free(arrays[i]);
    memset(r, 0, sizeof *r);
}
