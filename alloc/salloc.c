/* alloc/salloc.c — the solver's problem from a sensitivity store, and the assignment text. */
#include "salloc.h"

#include "mbits.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int salloc_error_parse(const char *s, sens_err_kind *out, vl_err *err)
{
    if (!strcmp(s, "out"))
        *out = SENS_E_OUT;
    else if (!strcmp(s, "rel"))
        *out = SENS_E_REL;
    else
        return vl_errf(err, VL_EARG, "error kind \"%s\": expected out or rel", s);
    return 0;
}

const char *salloc_error_name(sens_err_kind k) { return k == SENS_E_REL ? "rel" : "out"; }

const char *salloc_status(const solve_result *res)
{
    if (!isfinite(res->lower_bound))
        return "baseline";
    if (res->node_limited)
        return "node-limit";
    return res->gap == 0 ? "optimal" : "gap";
}

void salloc_problem_free(salloc_problem *p)
{
    if (!p)
        return;
    solve_problem_free(p->prob);
    for (int t = 0; p->tensor_name && t < p->n_tensors; t++)
        vl_free(p->tensor_name[t]);
    for (int s = 0; p->set_name && s < p->n_sets; s++)
        vl_free(p->set_name[s]);
    vl_free(p->tensor_name);
    vl_free(p->tensor_item);
    vl_free(p->set_name);
    vl_free(p);
}

/* Store set indices of names[0..n): one-line errors listing the store's sets. */
static int resolve_sets(const sens_result *r, const char *const *names, int n, int *idx,
                        vl_err *err)
{
    if (n < 1)
        return vl_errf(err, VL_EARG, "sens: no calibration set given");
    for (int k = 0; k < n; k++) {
        idx[k] = -1;
        for (int s = 0; s < r->n_sets; s++)
            if (!strcmp(r->set_name[s], names[k]))
                idx[k] = s;
        if (idx[k] < 0) {
            char have[512] = "";
            size_t len = 0;
            for (int s = 0; s < r->n_sets && len < sizeof have; s++)
                len += (size_t)snprintf(have + len, sizeof have - len, "%s%s", s ? ", " : "",
                                        r->set_name[s]);
            return vl_errf(err, VL_ENOTFOUND, "sens: no set \"%s\" (sets: %s)", names[k],
                           have);
        }
        for (int j = 0; j < k; j++)
            if (idx[j] == idx[k])
                return vl_errf(err, VL_EARG, "sens: set \"%s\" given twice", names[k]);
    }
    return 0;
}

/* Items: one per tensor, or per group name; fills tensor_item and adds the items. */
static int make_items(salloc_problem *p, const sens_result *r, vl_err *err)
{
    int T = r->n_tensors;
    int64_t *n = vl_calloc((size_t)T, sizeof *n); /* weights per item (≤ T items) */
    if (!n)
        return vl_errf(err, VL_ENOMEM, "alloc: out of memory");
    int n_items = 0, rc = 0;
    char **iname = vl_calloc((size_t)T, sizeof *iname);
    if (!iname)
        rc = vl_errf(err, VL_ENOMEM, "alloc: out of memory");
    for (int t = 0; t < T && !rc; t++) {
        char gn[512];
        if (p->gran != SENS_TENSOR)
            sens_group_name(gn, sizeof gn, &r->t[t]);
        else
            snprintf(gn, sizeof gn, "%s", r->t[t].name);
        int it = -1;
        /* groups are few and tensors of a group are adjacent in model order: scan back */
        for (int k = n_items - 1; k >= 0 && it < 0; k--)
            if (!strcmp(iname[k], gn))
                it = k;
        if (it < 0) {
            if (!(iname[n_items] = vl_strdup(gn))) {
                rc = vl_errf(err, VL_ENOMEM, "alloc: out of memory");
                break;
            }
            it = n_items++;
        }
        p->tensor_item[t] = it;
        n[it] += r->t[t].n;
    }
    for (int k = 0; k < n_items && !rc; k++)
        rc = solve_problem_add_item(p->prob, iname[k], n[k], NULL, err);
    for (int k = 0; k < n_items; k++)
        vl_free(iname[k]);
    vl_free(iname);
    vl_free(n);
    return rc;
}

/* Options of every item: bpw and per-set distortion summed over its tensors. */
static int make_options(salloc_problem *p, const sens_result *r, const int *sidx, vl_err *err)
{
    int T = r->n_tensors, F = r->n_formats, S = p->n_sets, I = p->prob->n_items;
    double *bits = vl_calloc((size_t)I * F, sizeof *bits);
    double *dist = vl_calloc((size_t)I * F * S, sizeof *dist);
    int rc = bits && dist ? 0 : vl_errf(err, VL_ENOMEM, "alloc: out of memory");
    for (int t = 0; t < T && !rc; t++) {
        int it = p->tensor_item[t];
        for (int f = 0; f < F && !rc; f++) {
            double b = r->bpw[(size_t)t * F + f];
            if (!(b >= 0 && isfinite(b)))
                rc = vl_errf(err, VL_EFORMAT, "sens: tensor \"%s\" format %d: bad bpw %g",
                             r->t[t].name, f, b);
            bits[(size_t)it * F + f] += b * (double)r->t[t].n;
            for (int s = 0; s < S && !rc; s++) {
                double d = sens_tensor_dist(r, sidx[s], t, f, p->kind);
                char fn[QFMT_NAME_MAX];
                if (!(d >= 0 && isfinite(d)))
                    rc = vl_errf(err, VL_EFORMAT,
                                 "sens: set \"%s\" tensor \"%s\" format %s: predicted "
                                 "distortion %g (α not measured%s)",
                                 p->set_name[s], r->t[t].name, qfmt_name(&r->fmt[f], fn), d,
                                 p->kind == SENS_E_OUT ? " or no XᵀX for this set: try --error rel"
                                                       : "");
                else
                    dist[((size_t)it * F + f) * S + s] += d;
            }
        }
    }
    for (int it = 0; it < I && !rc; it++) {
        double n = (double)p->prob->items[it].n;
        for (int f = 0; f < F && !rc; f++) {
            char fn[QFMT_NAME_MAX];
            rc = solve_problem_add_option(p->prob, it, qfmt_name(&r->fmt[f], fn),
                                          bits[(size_t)it * F + f] / n,
                                          dist + ((size_t)it * F + f) * S, err);
        }
    }
    vl_free(bits);
    vl_free(dist);
    return rc;
}

int salloc_build(salloc_problem **out, const sens_result *r, const char *const *sets,
                 int n_sets, sens_gran gran, sens_err_kind kind, vl_err *err)
{
    *out = NULL;
    if (r->n_tensors < 1 || r->n_formats < 1)
        return vl_errf(err, VL_EFORMAT, "sens: the store has no rate-distortion table (no "
                                        "formats; run vbrlab sens with --formats)");
    int *sidx = vl_malloc((size_t)(n_sets > 0 ? n_sets : 1) * sizeof *sidx);
    salloc_problem *p = vl_calloc(1, sizeof *p);
    if (!sidx || !p) {
        vl_free(sidx);
        vl_free(p);
        return vl_errf(err, VL_ENOMEM, "alloc: out of memory");
    }
    p->gran = gran;
    p->kind = kind;
    p->rule = gran == SENS_GGUF ? MB_GGUF : MB_STORED;
    p->model_weights = r->model_weights;
    p->kept_bits = r->model_weights > 0 ? r->kept_bits[p->rule] : NAN;
    int rc = resolve_sets(r, sets, n_sets, sidx, err), outer = 0;
    for (int t = 0; t < r->n_tensors; t++)
        outer |= r->t[t].proj == SENS_P_EMBED;
    if (!rc && gran == SENS_GGUF && !outer)
        rc = vl_errf(err, VL_EARG, "alloc: granularity gguf needs the token embedding as a unit "
                                   "(vbrlab sens --granularity gguf or --embed-head)");
    if (!rc) {
        p->n_sets = n_sets;
        p->n_tensors = r->n_tensors;
        p->set_name = vl_calloc((size_t)n_sets, sizeof *p->set_name);
        p->tensor_name = vl_calloc((size_t)r->n_tensors, sizeof *p->tensor_name);
        p->tensor_item = vl_calloc((size_t)r->n_tensors, sizeof *p->tensor_item);
        if (!p->set_name || !p->tensor_name || !p->tensor_item)
            rc = vl_errf(err, VL_ENOMEM, "alloc: out of memory");
    }
    for (int s = 0; s < n_sets && !rc; s++)
        if (!(p->set_name[s] = vl_strdup(sets[s])))
            rc = vl_errf(err, VL_ENOMEM, "alloc: out of memory");
    for (int t = 0; t < r->n_tensors && !rc; t++)
        if (!(p->tensor_name[t] = vl_strdup(r->t[t].name)))
            rc = vl_errf(err, VL_ENOMEM, "alloc: out of memory");
    if (!rc)
        rc = solve_problem_new(n_sets, &p->prob, err);
    if (!rc)
        rc = make_items(p, r, err);
    if (!rc)
        rc = make_options(p, r, sidx, err);
    vl_free(sidx);
    if (rc) {
        salloc_problem_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int salloc_model_target(const salloc_problem *p, double model_bpw, double *body_bpw,
                        vl_err *err)
{
    int64_t n = solve_problem_weights(p->prob);
    if (!(p->model_weights > 0 && isfinite(p->kept_bits)))
        return vl_errf(err, VL_EFORMAT, "alloc: the sens store has no whole-model bit counts "
                                        "(written before they were kept): rerun vbrlab sens "
                                        "for --budget model");
    *body_bpw = (model_bpw * (double)p->model_weights - p->kept_bits) / (double)n;
    if (!(*body_bpw > 0))
        return vl_errf(err, VL_ERANGE, "alloc: a model budget of %g bpw leaves nothing for the "
                       "items: the kept tensors alone take %g bpw of the model", model_bpw,
                       p->kept_bits / (double)p->model_weights);
    return 0;
}

double salloc_model_bpw(const salloc_problem *p, double bits_used)
{
    return p->model_weights > 0 ? (bits_used + p->kept_bits) / (double)p->model_weights : NAN;
}

int salloc_assignment(const salloc_problem *p, const solve_result *res, char **text,
                      vl_err *err)
{
    *text = NULL;
    if (res->n_items != p->prob->n_items)
        return vl_errf(err, VL_EARG, "alloc: result has %d items, the problem %d",
                       res->n_items, p->prob->n_items);
    size_t cap = 1, len = 0;
    for (int t = 0; t < p->n_tensors; t++) {
        const solve_item *it = &p->prob->items[p->tensor_item[t]];
        cap += strlen(p->tensor_name[t]) + strlen(it->opt[res->choice[p->tensor_item[t]]].name) +
               2;
    }
    char *s = vl_malloc(cap);
    if (!s)
        return vl_errf(err, VL_ENOMEM, "alloc: out of memory");
    for (int t = 0; t < p->n_tensors; t++) {
        int i = p->tensor_item[t];
        len += (size_t)snprintf(s + len, cap - len, "%s\t%s\n", p->tensor_name[t],
                                p->prob->items[i].opt[res->choice[i]].name);
    }
    s[len] = '\0';
    *text = s;
    return 0;
}

void salloc_default_name(char *out, size_t cap, const char *const *sets, int n_sets,
                         solve_objective obj, double target_bpw)
{
    size_t len = 0;
    out[0] = '\0';
    if (n_sets > 1)
        len += (size_t)snprintf(out, cap, "%s-", solve_objective_name(obj));
    for (int s = 0; s < n_sets && len < cap; s++)
        len += (size_t)snprintf(out + len, cap - len, "%s-", sets[s]);
    if (len < cap)
        snprintf(out + len, cap - len, "%g", target_bpw);
}
