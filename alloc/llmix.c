/* alloc/llmix.c — llama.cpp's IQ2 ftype mixes as allocations (rules: alloc/llmix.h), written
 * here from those rules; no llama.cpp code is copied. */
#define _POSIX_C_SOURCE 200809L
#include "llmix.h"

#include "../io/ggml_type.h"
#include "../io/gguf_names.h"

#include <stdio.h>
#include <string.h>

/* The supported ftypes: name, default type, and the "bumped" type of the IQ2_S/IQ2_M pair
 * (iq3_s) or the IQ2_XXS/IQ2_XS pair (q2_K) for token_embd, attn_v, ffn_down, attn_output. */
static const struct {
    const char *name;
    int def;
    int hi; /* 1: IQ2_S / IQ2_M (iq3_s bumps); 0: IQ2_XXS / IQ2_XS (q2_K bumps) */
} MIXES[] = {{"IQ2_XXS", GGF_IQ2_XXS, 0},
             {"IQ2_XS", GGF_IQ2_XS, 0},
             {"IQ2_S", GGF_IQ2_XS, 1},
             {"IQ2_M", GGF_IQ2_S, 1}};

static int find_mix(const char *ftype)
{
    for (size_t i = 0; ftype && i < sizeof MIXES / sizeof MIXES[0]; i++)
        if (!strcmp(MIXES[i].name, ftype))
            return (int)i;
    return -1;
}

int llmix_known(const char *ftype) { return find_mix(ftype) >= 0; }

const char *llmix_known_list(void) { return "IQ2_XXS, IQ2_XS, IQ2_S, IQ2_M"; }

static int contains(const char *s, const char *part) { return strstr(s, part) != NULL; }

/* The type when the row length does not fit the block (llama.cpp's fallback chain). */
static int fallback(int t)
{
    switch (t) {
    case GGF_IQ1_S: case GGF_IQ1_M: case GGF_IQ2_XXS: case GGF_IQ2_XS: case GGF_IQ2_S:
    case GGF_IQ3_XXS: case GGF_IQ3_S: case GGF_IQ4_XS:
        return GGF_IQ4_NL;
    case GGF_Q2_K: case GGF_Q3_K: return GGF_Q4_0;
    case GGF_Q4_K: return GGF_Q5_0;
    case GGF_Q5_K: return GGF_Q5_1;
    case GGF_Q6_K: return GGF_Q8_0;
    default: return t;
    }
}

int llmix_type(const char *ftype, const char *gguf, int cols, int i_ffn_down,
               const llmix_model *mm, int *type, vl_err *err)
{
    int k = find_mix(ftype);
    if (k < 0)
        return vl_errf(err, VL_ECONFIG, "llama_mix: unknown ftype \"%s\" (known: %s)",
                       ftype ? ftype : "", llmix_known_list());
    int hi = MIXES[k].hi, bump = hi ? GGF_IQ3_S : GGF_Q2_K, t = MIXES[k].def;
    if (!strcmp(gguf, "output.weight") || (!strcmp(gguf, "token_embd.weight") && mm->tied))
        t = cols % ggf_get((ggf_type)t)->block ? GGF_Q8_0 : GGF_Q5_K;
    else if (!strcmp(gguf, "token_embd.weight"))
        t = bump;
    else if (contains(gguf, "attn_v.weight") || contains(gguf, "attn_qkv.weight") ||
             contains(gguf, "attn_kv_b.weight"))
        t = mm->n_gqa >= 4 || mm->n_expert >= 4 ? GGF_Q4_K : bump;
    else if (contains(gguf, "attn_k.weight"))
        t = mm->n_expert == 8 ? GGF_Q4_K : t;
    else if (contains(gguf, "ffn_down"))
        t = i_ffn_down < mm->n_ffn_down / 8 ? bump : t;
    else if (contains(gguf, "attn_output.weight"))
        t = mm->n_expert == 8 ? GGF_Q5_K : hi ? GGF_IQ3_S : t;
    if (ggf_row_bytes((ggf_type)t, cols) < 0)
        t = fallback(t);
    if (ggf_row_bytes((ggf_type)t, cols) < 0)
        return vl_errf(err, VL_ESHAPE, "llama_mix %s: %s: %d columns fit no type of %s's "
                       "fallback chain (llama.cpp would write F16; not modelled)", ftype, gguf,
                       cols, ggf_get((ggf_type)MIXES[k].def)->name);
    *type = t;
    return 0;
}

/* Slot of an ffn_down GGUF tensor in a layer (llama-quantize's order: by name within a layer,
 * so dense / exps before shexp). */
static int down_slot(const char *gguf) { return contains(gguf, "ffn_down_shexp") ? 1 : 0; }

int llmix_alloc(qb_alloc *a, const model *m, const char *ftype, vl_err *err)
{
    if (!llmix_known(ftype))
        return vl_errf(err, VL_ECONFIG, "llama_mix: unknown ftype \"%s\" (known: %s)",
                       ftype ? ftype : "", llmix_known_list());
    const hfc_config *cfg = model_config(m);
    llmix_model mm = {cfg->n_experts, cfg->n_kv_heads > 0 ? cfg->n_heads / cfg->n_kv_heads : 1,
                      1, 0};
    int nl = cfg->n_layers, rc = 0;
    mm.n_ffn_down = nl; /* llama.cpp sets n_ffn_down to the layer count, not a tensor count */
    unsigned char *has = vl_calloc((size_t)nl * 2 + 1, 1); /* [layer][slot]: an ffn_down */
    if (!has)
        return vl_errf(err, VL_ENOMEM, "out of memory");
    size_t nt = model_tensor_count(m);
    for (size_t i = 0; !rc && i < nt; i++) { /* tied?, and which ffn_down tensors exist */
        const model_tensor *t = model_tensor_at(m, i);
        mm.tied &= t->cls != MODEL_C_LM_HEAD;
        ggn_target g;
        if (!qb_is_body(t) && !qb_is_outer(t)) /* what llama-quantize quantizes */
            continue;
        if ((rc = ggn_map(cfg->model_type, t->name, &g, err)))
            vl_errctx(err, rc, "llama_mix %s", ftype);
        for (int k = 0; !rc && k < g.n; k++)
            if (contains(g.name[k], "ffn_down") && g.layer >= 0 && g.layer < nl)
                has[g.layer * 2 + down_slot(g.name[k])] = 1;
    }
    for (size_t i = 0; !rc && i < nt; i++) {
        const model_tensor *t = model_tensor_at(m, i);
        ggn_target g;
        if (!qb_is_body(t) && !qb_is_outer(t)) /* what llama-quantize quantizes */
            continue;
        if ((rc = ggn_map(cfg->model_type, t->name, &g, err))) {
            vl_errctx(err, rc, "llama_mix %s", ftype);
            break;
        }
        int type = -1;
        for (int k = 0; !rc && k < g.n; k++) {
            int idx = 0, tk;
            if (contains(g.name[k], "ffn_down") && g.layer >= 0)
                for (int s = 0; s < g.layer * 2 + down_slot(g.name[k]); s++)
                    idx += has[s];
            rc = llmix_type(ftype, g.name[k], t->cols, idx, &mm, &tk, err);
            if (!rc && type >= 0 && tk != type) /* kv_b_proj: one HF tensor, two GGUF ones */
                rc = vl_errf(err, VL_ECONFIG, "llama_mix %s: %s feeds %s and %s with different "
                             "types (%s, %s)", ftype, t->name, g.name[0], g.name[1],
                             ggf_get((ggf_type)type)->name, ggf_get((ggf_type)tk)->name);
            type = tk;
        }
        char fmt[48];
        if (!rc) {
            snprintf(fmt, sizeof fmt, "ggml-%s", ggf_get((ggf_type)type)->name);
            rc = qb_alloc_add(a, t->name, fmt, err);
        }
    }
    vl_free(has);
    return rc;
}
