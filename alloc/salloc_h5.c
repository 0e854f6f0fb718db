/* alloc/salloc_h5.c — allocations in alloc.h5 (/alloc/<NAME>), written and read back. */
#include "salloc.h"

#include "../analysis/eval.h"
#include "../core/vfile.h"
#include "mbits.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Comma- or newline-joined copy of v[0..n); vl_malloc'd or NULL. */
static char *join(char *const *v, int n, const char *sep)
{
    size_t cap = 1;
    for (int i = 0; i < n; i++)
        cap += strlen(v[i]) + strlen(sep);
    char *s = vl_malloc(cap);
    if (!s)
        return NULL;
    size_t len = 0;
    s[0] = '\0';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s%s", i ? sep : "", v[i]);
    return s;
}

int salloc_write(h5s_store *st, const char *name, const salloc_problem *p,
                 const solve_result *res, const solve_params *par, const salloc_meta *meta,
                 vl_err *err)
{
    if (!calib_name_ok(name))
        return vl_errf(err, VL_EARG, "%s: allocation name \"%s\" must be [A-Za-z0-9._+-]+",
                       h5s_path(st), name);
    const solve_problem *pr = p->prob;
    char g[EV_NAME_MAX + 16], d[EV_NAME_MAX + 32];
    snprintf(g, sizeof g, "/alloc/%s", name);
    char *text = NULL, *sets = join(p->set_name, p->n_sets, ",");
    char **inames = vl_malloc((size_t)pr->n_items * sizeof *inames);
    double *ibpw = vl_malloc((size_t)pr->n_items * sizeof *ibpw);
    char *items = NULL;
    int rc = 0;
    if (!sets || !inames || !ibpw) {
        rc = vl_errf(err, VL_ENOMEM, "alloc: out of memory");
        goto done;
    }
    for (int i = 0; i < pr->n_items; i++) {
        inames[i] = pr->items[i].name;
        ibpw[i] = pr->items[i].opt[res->choice[i]].bpw;
    }
    if (!(items = join(inames, pr->n_items, "\n"))) {
        rc = vl_errf(err, VL_ENOMEM, "alloc: out of memory");
        goto done;
    }
    if ((rc = salloc_assignment(p, res, &text, err)))
        goto done;
    int64_t ns = p->n_sets, ni = pr->n_items;
    snprintf(d, sizeof d, "%s/predicted_kld", g);
    if ((rc = h5s_write(st, d, H5S_F64, res->dist_set, 1, &ns, "nat/token",
                        "predicted mean KLD per set (order of attribute sets): sum over "
                        "tensors of alpha(eps0) x error share (alloc/salloc.h)",
                        err)))
        goto done;
    snprintf(d, sizeof d, "%s/item_bpw", g);
    if ((rc = h5s_write(st, d, H5S_F64, ibpw, 1, &ni, "bit/weight",
                        "bits per weight of each item's chosen format (order of attribute "
                        "items)",
                        err)))
        goto done;
    const char *sattr[][2] = {
        {"assignment", text},
        {"calib", meta && meta->calib ? meta->calib : ""},
        {"stats_file", meta && meta->stats_file ? meta->stats_file : ""},
        {"sens_file", meta && meta->sens_file ? meta->sens_file : ""},
        {"objective", solve_objective_name(par->objective)},
        {"solver", solve_method_name(par->method)},
        {"granularity", sens_gran_name(p->gran)},
        {"error", salloc_error_name(p->kind)},
        {"sets", sets},
        /* the RD column of set s was quantized with set s's own statistics (sens_rd) */
        {"rd_stats", sets},
        {"status", salloc_status(res)},
        {"items", items},
        {"budget", meta && meta->budget_model ? "model" : "body"},
        {"kept_rule", mb_rule_name((mb_rule)p->rule)}};
    for (size_t k = 0; k < sizeof sattr / sizeof *sattr && !rc; k++)
        rc = h5s_attr_set(st, g, sattr[k][0], sattr[k][1], err);
    const struct {
        const char *n;
        double v;
    } fattr[] = {{"target_bpw", meta && meta->budget_model ? meta->model_target
                                                           : par->target_bpw},
                 {"body_target_bpw", par->target_bpw},
                 {"bpw_body", res->n_weights ? res->bits_used / (double)res->n_weights : 0.0},
                 {"bpw_model", salloc_model_bpw(p, res->bits_used)},
                 {"model_weights", (double)p->model_weights},
                 {"kept_bits", p->kept_bits},
                 {"bits_used", res->bits_used},
                 {"budget_bits", res->budget},    {"gap", res->gap},
                 {"lower_bound", res->lower_bound}, {"objective_value", res->objective},
                 {"node_limited", res->node_limited},
                 /* the real bits per weight reached, scales and zeros counted */
                 {"bpw", res->n_weights ? res->bits_used / (double)res->n_weights : 0.0}};
    for (size_t k = 0; k < sizeof fattr / sizeof *fattr && !rc; k++)
        rc = h5s_attr_set_f64(st, g, fattr[k].n, fattr[k].v, err);
done:
    vl_free(text);
    vl_free(sets);
    vl_free(items);
    vl_free(inames);
    vl_free(ibpw);
    return rc;
}

int salloc_list(h5s_store *st, char ***names, int *count, vl_err *err)
{
    *names = NULL;
    *count = 0;
    if (!h5s_exists(st, "/alloc"))
        return vl_errf(err, VL_ENOTFOUND, "%s: no allocations (group /alloc)", h5s_path(st));
    int rc = h5s_list(st, "/alloc", names, count, err);
    if (!rc && *count == 0) {
        h5s_names_free(*names, 0);
        *names = NULL;
        rc = vl_errf(err, VL_ENOTFOUND, "%s: no allocations (group /alloc)", h5s_path(st));
    }
    return rc;
}

void salloc_record_free(salloc_record *r)
{
    if (!r)
        return;
    char *v[] = {r->name, r->assignment, r->calib, r->stats_file, r->sets, r->objective,
                 r->solver, r->budget};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        vl_free(v[i]);
    memset(r, 0, sizeof *r);
}

/* Optional string attribute: absent reads as "". */
static int opt_attr(h5s_store *st, const char *g, const char *a, char **out, vl_err *err)
{
    int rc = h5s_attr_get(st, g, a, out, err);
    if (rc == VL_ENOTFOUND) {
        *out = vl_strdup("");
        rc = *out ? 0 : vl_errf(err, VL_ENOMEM, "alloc: out of memory");
    }
    return rc;
}

int salloc_read(h5s_store *st, const char *name, salloc_record *out, vl_err *err)
{
    memset(out, 0, sizeof *out);
    char g[EV_NAME_MAX + 16];
    if (!calib_name_ok(name))
        return vl_errf(err, VL_EARG, "%s: allocation name \"%s\" must be [A-Za-z0-9._+-]+",
                       h5s_path(st), name);
    snprintf(g, sizeof g, "/alloc/%s", name);
    if (!h5s_exists(st, g)) {
        char **names = NULL;
        int n = 0;
        char have[512] = "(none)";
        if (h5s_exists(st, "/alloc") && !h5s_list(st, "/alloc", &names, &n, err) && n > 0) {
            size_t len = 0;
            for (int i = 0; i < n && len < sizeof have; i++)
                len += (size_t)snprintf(have + len, sizeof have - len, "%s%s", i ? ", " : "",
                                        names[i]);
        }
        h5s_names_free(names, n);
        return vl_errf(err, VL_ENOTFOUND, "%s: no allocation \"%s\" (has: %s)", h5s_path(st),
                       name, have);
    }
    int rc = (out->name = vl_strdup(name)) ? 0 : vl_errf(err, VL_ENOMEM, "out of memory");
    if (!rc)
        rc = h5s_attr_get(st, g, "assignment", &out->assignment, err);
    if (!rc && !*out->assignment)
        rc = vl_errf(err, VL_EFORMAT, "%s: %s: empty assignment", h5s_path(st), g);
    struct {
        const char *a;
        char **v;
    } o[] = {{"calib", &out->calib},         {"stats_file", &out->stats_file},
             {"sets", &out->sets},           {"objective", &out->objective},
             {"solver", &out->solver},       {"budget", &out->budget}};
    for (size_t k = 0; k < sizeof o / sizeof *o && !rc; k++)
        rc = opt_attr(st, g, o[k].a, o[k].v, err);
    out->target_bpw = NAN;
    if (!rc && h5s_attr_get_f64(st, g, "target_bpw", &out->target_bpw, err) == VL_EDTYPE)
        rc = vl_errf(err, VL_EFORMAT, "%s: %s: target_bpw is not a number", h5s_path(st), g);
    if (rc)
        salloc_record_free(out);
    return rc;
}

int salloc_read_qb(h5s_store *st, const char *name, qb_alloc *a, salloc_record *rec,
                   vl_err *err)
{
    salloc_record r;
    int rc = salloc_read(st, name, &r, err);
    if (rc)
        return rc;
    char label[4200];
    snprintf(label, sizeof label, "%s:/alloc/%s", h5s_path(st), name);
    rc = qb_alloc_parse_text(a, r.assignment, label, err);
    if (!rc && rec)
        *rec = r;
    else
        salloc_record_free(&r);
    return rc;
}

int salloc_is_hdf5(const char *path)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    FILE *f;
    if (!vf_fopen(path, &f, NULL)) {
        unsigned char b[8];
        size_t n = fread(b, 1, sizeof b, f);
        fclose(f);
        return n == sizeof b && !memcmp(b, sig, sizeof b);
    }
    size_t len = strlen(path);
    return (len > 3 && !strcmp(path + len - 3, ".h5")) ||
           (len > 5 && !strcmp(path + len - 5, ".hdf5"));
}
