/* alloc/fq.c — one tensor, one format: policy, rotation, method dispatch (see fq.h). */
#include "fq.h"

#include "ggml_fmt.h"

#include "hadamard.h"

#include <string.h>

static const char *const policy_names[FQ_FEW_COUNT] = {
    [FQ_FEW_UNIFORM] = "uniform", [FQ_FEW_RTN] = "rtn", [FQ_FEW_ROUTE_ALL] = "route-all"};

const char *fq_policy_name(fq_policy p)
{
    VL_ASSERT(p >= 0 && p < FQ_FEW_COUNT);
    return policy_names[p];
}

int fq_policy_parse(fq_policy *out, const char *s, vl_err *err)
{
    for (int i = 0; i < FQ_FEW_COUNT; i++)
        if (strcmp(s, policy_names[i]) == 0) {
            *out = (fq_policy)i;
            return 0;
        }
    return vl_errf(err, VL_ECONFIG,
                   "few-token policy \"%s\": expected uniform, rtn or route-all", s);
}

fq_params fq_defaults(void)
{
    fq_params p = {quant_defaults(), gptq_defaults(), 0x5eed, 0.0, FQ_FEW_RTN, NULL};
    return p;
}

/* Statistics and method after the few-token policy. */
static int apply_policy(fq_stats *use, qfmt_method *method, int *applied, const fq_stats *st,
                        const fq_stats *fallback, const fq_params *p, const char *name,
                        vl_err *err)
{
    static const fq_stats none = {NULL, NULL, 0.0};
    *use = st ? *st : none;
    *applied = 0;
    if (use->tokens < p->min_tokens) {
        *applied = 1;
        if (p->few == FQ_FEW_UNIFORM) {
            use->imp = NULL;
            use->h = NULL;
        } else if (p->few == FQ_FEW_RTN) {
            if (*method != QFMT_GGML) /* a ggml format keeps its quantizer and importance */
                *method = QFMT_RTN;
        } else {
            if (!fallback)
                return vl_errf(err, VL_EARG,
                               "tensor \"%s\": %.0f tokens < %.0f and policy route-all, but no "
                               "route-all statistics given",
                               name, use->tokens, p->min_tokens);
            *use = *fallback;
        }
    }
    if (*method == QFMT_GPTQ && !use->h) {
        if (!*applied)
            return vl_errf(err, VL_EARG, "tensor \"%s\": GPTQ needs XᵀX statistics", name);
        *method = QFMT_RTN;
    }
    return 0;
}

int fq_tensor(float *out, const float *w, int rows, int cols, const qfmt *f, const fq_stats *st,
              const fq_stats *fallback, const fq_params *p, fq_info *info, const char *name,
              vl_err *err)
{
    int rc = quant_check_input(w, rows, cols, f, NULL, name, err);
    if (rc)
        return rc;
    fq_params def = fq_defaults();
    if (!p)
        p = &def;
    fq_stats use;
    qfmt_method method = f->method;
    int applied;
    rc = apply_policy(&use, &method, &applied, st, fallback, p, name, err);
    if (rc)
        return rc;

    const float *wq = w;
    const double *imp = use.imp, *h = use.h;
    float *wr = NULL;
    double *impr = NULL, *hr = NULL;
    if (f->rot == QFMT_ROT_HAD) {
        size_t kk = (size_t)cols * cols;
        wr = vl_malloc((size_t)rows * cols * sizeof *wr);
        impr = (imp || h) ? vl_malloc((size_t)cols * sizeof *impr) : NULL;
        hr = h ? vl_malloc(kk * sizeof *hr) : NULL;
        if (!wr || ((imp || h) && !impr) || (h && !hr)) {
            rc = vl_errf(err, VL_ENOMEM, "tensor \"%s\": out of memory for the rotation", name);
            goto done;
        }
        memcpy(wr, w, (size_t)rows * cols * sizeof *wr);
        if ((rc = had_rotate_rows(wr, rows, cols, p->seed, err)) != 0)
            goto done;
        if (h) {
            memcpy(hr, h, kk * sizeof *hr);
            had_rotate_sym(hr, cols, p->seed);
        }
        if (imp || h) {
            for (int j = 0; j < cols; j++)
                impr[j] = h ? hr[(size_t)j * cols + j] : imp[j];
            if (!h)
                had_rotate_diag(impr, cols);
        }
        wq = wr;
        imp = impr;
        h = hr;
    }

    fq_info fi = {method, applied, {0, 0, 0, 0}};
    if (method == QFMT_GPTQ)
        rc = gptq_quantize(out, wq, rows, cols, f, h, &p->gptq, &fi.gptq, name, err);
    else if (method == QFMT_GGML)
        rc = ggf_fake_quant(out, wq, rows, cols, (ggf_type)qfmt_ggml_type(f), imp, p->cache, name,
                            err);
    else
        rc = quant_rtn(out, wq, rows, cols, f, imp, &p->rtn, name, err);
    if (rc == 0 && f->rot == QFMT_ROT_HAD)
        rc = had_unrotate_rows(out, rows, cols, p->seed, err);
    if (rc == 0 && info)
        *info = fi;
done:
    vl_free(wr);
    vl_free(impr);
    vl_free(hr);
    return rc;
}
