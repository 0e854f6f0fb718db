/* alloc/gguf_recipe.c — allocation → llama-quantize recipe (alloc/gguf_recipe.h). */
#define _POSIX_C_SOURCE 200809L
#include "gguf_recipe.h"

#include "../io/hfcfg.h"
#include "../io/st.h"
#include "ggml_fmt.h"
#include "qfmt.h"

#include <stdlib.h>
#include <string.h>

void ggr_plan_free(ggr_plan *p)
{
    if (!p) return;
    vl_free(p->v);
    memset(p, 0, sizeof *p);
}

/* llama-quantize's ftype names and the type each gives every tensor it does not special-case
 * (llama.cpp src/llama-quant.cpp, llama_ftype_get_default_type; names from
 * tools/quantize/quantize.cpp, QUANT_OPTIONS). Not the obvious pairing: IQ2_S's default is
 * iq2_xs and IQ2_M's is iq2_s; IQ3_XS's is iq3_s. The first entry of a type is the name
 * ggr_ftype_name gives it. */
static const struct {
    const char *name;
    int type;
} FTYPES[] = {
    {"Q4_0", GGF_Q4_0},       {"Q4_1", GGF_Q4_1},       {"Q5_0", GGF_Q5_0},       {"Q5_1", GGF_Q5_1},
    {"Q8_0", GGF_Q8_0},       {"Q2_K", GGF_Q2_K},       {"Q2_K_S", GGF_Q2_K},     {"Q3_K_S", GGF_Q3_K},
    {"Q3_K_M", GGF_Q3_K},     {"Q3_K_L", GGF_Q3_K},     {"Q4_K_S", GGF_Q4_K},     {"Q4_K_M", GGF_Q4_K},
    {"Q5_K_S", GGF_Q5_K},     {"Q5_K_M", GGF_Q5_K},     {"Q6_K", GGF_Q6_K},       {"IQ2_XXS", GGF_IQ2_XXS},
    {"IQ2_XS", GGF_IQ2_XS},   {"IQ2_S", GGF_IQ2_XS},    {"IQ2_M", GGF_IQ2_S},     {"IQ3_XXS", GGF_IQ3_XXS},
    {"IQ3_S", GGF_IQ3_S},     {"IQ3_XS", GGF_IQ3_S},    {"IQ3_M", GGF_IQ3_S},     {"IQ1_S", GGF_IQ1_S},
    {"IQ1_M", GGF_IQ1_M},     {"IQ4_NL", GGF_IQ4_NL},   {"IQ4_XS", GGF_IQ4_XS},   {"F16", GGF_F16},
    {"BF16", GGF_BF16},       {"F32", GGF_F32},
};

const char *ggr_ftype_name(int t)
{
    for (size_t i = 0; i < sizeof FTYPES / sizeof FTYPES[0]; i++)
        if (FTYPES[i].type == t) return FTYPES[i].name;
    return "F32";
}

int ggr_ftype_default(const char *name)
{
    for (size_t i = 0; i < sizeof FTYPES / sizeof FTYPES[0]; i++)
        if (!strcmp(FTYPES[i].name, name)) return FTYPES[i].type;
    return -1;
}

int ggr_needs_imatrix(int t) { return t >= 0 && t < GGF_COUNT && ggf_get(t)->needs_imatrix; }

/* The assigned type of HF tensor hf, -1 when not listed; VL_E* on a bad line. */
static int lookup(const char *assignment, const char *hf, int *type, vl_err *err)
{
    size_t hl = strlen(hf);
    *type = -1;
    for (const char *p = assignment; *p;) {
        const char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p);
        const char *tab = memchr(p, '\t', (size_t)(end - p));
        if (tab && (size_t)(tab - p) == hl && !memcmp(p, hf, hl)) {
            char fmt[64];
            size_t fl = (size_t)(end - tab - 1);
            if (fl >= sizeof fmt) return vl_errf(err, VL_EFORMAT, "assignment: format of %s too long", hf);
            memcpy(fmt, tab + 1, fl), fmt[fl] = 0;
            qfmt f;
            int rc = qfmt_parse(&f, fmt, err);
            if (rc) return vl_errctx(err, rc, "assignment: %s", hf);
            if (f.method != QFMT_GGML)
                return vl_errf(err, VL_ECONFIG, "assignment: %s has %s, not a llama.cpp type (allocate with a "
                               "ggml: menu)", hf, fmt);
            *type = qfmt_ggml_type(&f);
            return 0;
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
}

static ggr_tensor *find_or_add(ggr_plan *p, const char *name, int *added, vl_err *err)
{
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->v[i].name, name)) {
            *added = 0;
            return &p->v[i];
        }
    ggr_tensor *nv = vl_realloc(p->v, (size_t)(p->n + 1) * sizeof *nv);
    if (!nv) {
        vl_errf(err, VL_ENOMEM, "out of memory");
        return NULL;
    }
    p->v = nv;
    memset(&nv[p->n], 0, sizeof *nv);
    snprintf(nv[p->n].name, GGN_NAME_MAX, "%s", name);
    nv[p->n].type = -1;
    *added = 1;
    return &nv[p->n++];
}

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

int ggr_plan_build(ggr_plan *out, const char *model_dir, const char *assignment, int embd_type,
                   int output_type, vl_err *err)
{
    memset(out, 0, sizeof *out);
    char cp[1024];
    snprintf(cp, sizeof cp, "%s/config.json", model_dir);
    hfc_config *cfg = vl_malloc(sizeof *cfg);
    st_set *st = NULL;
    if (!cfg) return vl_errf(err, VL_ENOMEM, "out of memory");
    int rc = hfc_load(cfg, cp, err);
    if (!rc) rc = st_set_open(&st, model_dir, err);
    if (!rc) snprintf(out->arch, sizeof out->arch, "%s", cfg->model_type);
    vl_free(cfg);
    for (size_t i = 0; !rc && i < (st ? st_set_count(st) : 0); i++) {
        const st_tensor *t = st_set_at(st, i);
        ggn_target g;
        if ((rc = ggn_map(out->arch, t->name, &g, err))) break;
        int64_t cols = t->shape[t->ndim - 1], rows = t->numel / cols;
        int type;
        if ((rc = lookup(assignment, t->name, &type, err))) break;
        for (int k = 0; k < g.n && !rc; k++) {
            int added;
            ggr_tensor *r = find_or_add(out, g.name[k], &added, err);
            if (!r) {
                rc = err ? err->code : VL_ENOMEM;
                break;
            }
            int quant = 1, want;
            if (t->ndim == 1 || rows == 1)
                want = GGF_F32, quant = 0;
            else if (has_suffix(g.name[k], "ffn_gate_inp.weight"))
                want = GGF_BF16, quant = 0;
            else if (!strcmp(g.name[k], "token_embd.weight") ||
                     !strcmp(g.name[k], "output.weight")) {
                /* an allocation item (granularity gguf) or the type given; both must agree */
                int given = !strcmp(g.name[k], "token_embd.weight") ? embd_type : output_type;
                if (type >= 0 && given >= 0 && given != type) {
                    rc = vl_errf(err, VL_ECONFIG, "%s: the allocation gives %s %s, the command "
                                 "line %s", t->name, g.name[k], ggf_get(type)->name,
                                 ggf_get(given)->name);
                    break;
                }
                want = type >= 0 ? type : given >= 0 ? given : GGF_BF16;
            } else
                want = type >= 0 ? type : GGF_BF16;
            if (!added && r->type != want) {
                rc = vl_errf(err, VL_ECONFIG, "%s: GGUF tensor %s gets %s and %s (the experts of a projection "
                             "share one type in GGUF: allocate at granularity group)", t->name, g.name[k],
                             ggf_get(r->type)->name, ggf_get(want)->name);
                break;
            }
            if (ggf_row_bytes(want, cols) < 0) {
                rc = vl_errf(err, VL_ESHAPE, "%s: %lld columns are not a multiple of %s's block", t->name,
                             (long long)cols, ggf_get(want)->name);
                break;
            }
            int64_t n = t->numel / g.n; /* kv_b_proj splits its weights between two tensors */
            r->type = want, r->quantized = quant, r->n += n;
            r->bytes += ggf_row_bytes(want, cols) * (rows / g.n);
            r->body = g.layer >= 0;
        }
    }
    /* every listed HF tensor must exist in the model */
    for (const char *p = assignment; !rc && *p;) {
        const char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p);
        const char *tab = memchr(p, '\t', (size_t)(end - p));
        if (tab) {
            char hf[256];
            size_t l = (size_t)(tab - p) < sizeof hf - 1 ? (size_t)(tab - p) : sizeof hf - 1;
            memcpy(hf, p, l), hf[l] = 0;
            if (!st_set_find(st, hf)) rc = vl_errf(err, VL_ENOTFOUND, "assignment: %s is not in %s", hf, model_dir);
        }
        p = nl ? nl + 1 : end;
    }
    st_set_close(st);
    if (rc) {
        ggr_plan_free(out);
        return rc;
    }
    for (int i = 0; i < out->n; i++) {
        const ggr_tensor *r = &out->v[i];
        out->params += r->n, out->bytes += r->bytes;
        if (r->body) out->body_params += r->n, out->body_bytes += r->bytes;
    }
    /* the base ftype: the first block-32 type no tensor uses. Every tensor then has its type
     * from an override (tensor-types.txt, --token-embedding-type, --output-tensor-type), and
     * llama-quantize logs "applying manual override" for each (it logs only when the override
     * differs from the default type, src/llama-quant.cpp llama_tensor_get_type); block 32
     * divides every row the converter lets through, and such an ftype asks for no imatrix. */
    static const int b32[] = {GGF_Q4_0, GGF_Q4_1, GGF_Q5_0, GGF_Q5_1, GGF_Q8_0, GGF_IQ4_NL};
    out->base = -1;
    for (size_t k = 0; k < sizeof b32 / sizeof b32[0] && out->base < 0; k++) {
        int used = 0;
        for (int i = 0; i < out->n && !used; i++) used = out->v[i].type == b32[k];
        if (!used) out->base = b32[k];
    }
    if (out->base < 0) {
        ggr_plan_free(out);
        return vl_errf(err, VL_ECONFIG, "%s: the allocation uses every block-32 type (q4_0, q4_1, q5_0, q5_1, "
                       "q8_0, iq4_nl); no base type would leave every tensor overridden", model_dir);
    }
    out->bpw_file = out->params ? 8.0 * (double)out->bytes / (double)out->params : 0;
    out->bpw_body = out->body_params ? 8.0 * (double)out->body_bytes / (double)out->body_params : 0;
    return 0;
}

void ggr_write_types(const ggr_plan *p, FILE *f)
{
    for (int i = 0; i < p->n; i++) {
        const ggr_tensor *r = &p->v[i];
        if (!r->quantized || !r->body) continue;
        fputc('^', f);
        for (const char *c = r->name; *c; c++) {
            if (*c == '.') fputc('\\', f);
            fputc(*c, f);
        }
        fprintf(f, "$=%s\n", ggf_get(r->type)->name);
    }
}
