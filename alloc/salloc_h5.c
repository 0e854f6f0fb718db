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

/* The float64 dataset G/NAME of shape [n] (the writing side of vec below). */
static int put_vec(h5s_store *st, const char *g, const char *name, const double *v, int64_t n,
                   const char *unit, const char *doc, vl_err *err)
{
    char d[EV_NAME_MAX + 32];
    snprintf(d, sizeof d, "%s/%s", g, name);
    return h5s_write(st, d, H5S_F64, v, 1, &n, unit, doc, err);
}

int salloc_write(h5s_store *st, const char *name, const salloc_problem *p,
                 const solve_result *res, const solve_params *par, const salloc_meta *meta,
                 vl_err *err)
{
    if (!calib_name_ok(name))
        return vl_errf(err, VL_EARG, "%s: allocation name \"%s\" must be [A-Za-z0-9._+-]+",
                       h5s_path(st), name);
    const solve_problem *pr = p->prob;
    char g[EV_NAME_MAX + 16];
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
    if ((rc = put_vec(st, g, "predicted_kld", res->dist_set, ns, "nat/token",
                      "predicted mean KLD per set (order of attribute sets): sum over "
                      "tensors of alpha(eps0) x error share (alloc/salloc.h)",
                      err)))
        goto done;
    if ((rc = put_vec(st, g, "item_bpw", ibpw, ni, "bit/weight",
                      "bits per weight of each item's chosen format (order of attribute "
                      "items)",
                      err)))
        goto done;
    /* MINIMAX: the objective is max_s D_s / set_optimum[s] */
    if (res->set_opt &&
        (rc = put_vec(st, g, "set_optimum", res->set_opt, ns, "nat/token",
                      "each set's own optimum D_s* at the same budget (sum objective on "
                      "that set alone); minimax minimised max_s predicted_kld/D_s*",
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
    if (!rc && par->method == SOLVE_RANDOM) { /* decimal text: a double loses bits past 2^53 */
        char sd[32];
        snprintf(sd, sizeof sd, "%llu", (unsigned long long)par->seed);
        rc = h5s_attr_set(st, g, "seed", sd, err);
    }
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
                 r->solver, r->status, r->budget};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        vl_free(v[i]);
    vl_free(r->predicted_kld);
    vl_free(r->item_bpw);
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

/* Split a SEP-joined list into its count; every member must follow the name rule
 * (calib_name_ok). "" is no member. Returns the count, or -1 with the error set. */
static int check_list(h5s_store *st, const char *g, const char *attr, const char *v, char sep,
                      vl_err *err)
{
    if (!*v)
        return 0;
    int n = 0;
    for (const char *p = v;; n++) {
        const char *e = strchr(p, sep);
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char one[EV_NAME_MAX + 1];
        if (len >= sizeof one || (memcpy(one, p, len), one[len] = '\0', !calib_name_ok(one)))
            return vl_errf(err, VL_EFORMAT, "%s: %s@%s: member %d is not a name "
                           "([A-Za-z0-9._+-]+)", h5s_path(st), g, attr, n + 1), -1;
        if (!e)
            return n + 1;
        p = e + 1;
    }
}

/* A float64 attribute that must be present and satisfy lo <= v <= hi (NaN never does). */
static int num_attr(h5s_store *st, const char *g, const char *a, double lo, double hi,
                    double *out, vl_err *err)
{
    int rc = h5s_attr_get_f64(st, g, a, out, err);
    if (rc == VL_ENOTFOUND)
        return vl_errf(err, VL_EFORMAT, "%s: %s: missing attribute %s", h5s_path(st), g, a);
    if (rc)
        return vl_errf(err, VL_EFORMAT, "%s: %s@%s is not a number", h5s_path(st), g, a);
    if (!(*out >= lo && *out <= hi))
        return vl_errf(err, VL_ERANGE, "%s: %s@%s = %g is out of range [%g, %g]", h5s_path(st),
                       g, a, *out, lo, hi);
    return 0;
}

/* A float64 dataset G/NAME of shape [n], every value finite in [lo, hi]. */
static int vec(h5s_store *st, const char *g, const char *name, int64_t n, double lo, double hi,
               double **out, vl_err *err)
{
    char d[EV_NAME_MAX + 32];
    snprintf(d, sizeof d, "%s/%s", g, name);
    if (!h5s_exists(st, d))
        return vl_errf(err, VL_ENOTFOUND, "%s: missing dataset %s", h5s_path(st), d);
    int nd;
    int64_t sh[H5S_MAX_DIMS];
    int rc = h5s_read(st, d, H5S_F64, (void **)out, &nd, sh, err);
    if (!rc && (nd != 1 || sh[0] != n))
        rc = vl_errf(err, VL_ESHAPE, "%s: %s has %d dimension(s) [%lld], its attributes name %lld "
                     "entries", h5s_path(st), d, nd, nd ? (long long)sh[0] : 0LL, (long long)n);
    for (int64_t i = 0; !rc && i < n; i++)
        if (!((*out)[i] >= lo && (*out)[i] <= hi))
            rc = vl_errf(err, VL_ERANGE, "%s: %s[%lld] = %g is out of range [%g, %g]",
                         h5s_path(st), d, (long long)i, (*out)[i], lo, hi);
    return rc;
}

/* The string attributes that name a choice: each must be one the writer can write. */
static int check_choices(h5s_store *st, const char *g, vl_err *err)
{
    static const char *const ok[][8] = {
        {"objective", "sum", "weighted", "minimax", "minimax-raw", NULL},
        {"solver", "exact", "lagrange", "uniform", "rules", "random", NULL},
        {"granularity", "tensor", "group", "gguf", NULL},
        {"error", "out", "rel", NULL},
        {"status", "optimal", "node-limit", "gap", "baseline", NULL},
        {"budget", "body", "model", NULL}};
    int rc = 0;
    for (size_t k = 0; !rc && k < sizeof ok / sizeof *ok; k++) {
        char *v = NULL;
        if (h5s_attr_get(st, g, ok[k][0], &v, NULL)) /* absent in older files: nothing to check */
            continue;
        int hit = 0;
        for (int j = 1; ok[k][j] && !hit; j++)
            hit = !strcmp(v, ok[k][j]);
        if (!hit)
            rc = vl_errf(err, VL_EFORMAT, "%s: %s@%s is not one of the known values (%s, %s, ...)",
                         h5s_path(st), g, ok[k][0], ok[k][1], ok[k][2]);
        vl_free(v);
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
    if (!rc) { /* every line a tensor and a format the quantizers know */
        qb_alloc a;
        qb_alloc_init(&a);
        char label[EV_NAME_MAX + 4200];
        snprintf(label, sizeof label, "%s:%s@assignment", h5s_path(st), g);
        rc = qb_alloc_parse_text(&a, out->assignment, label, err);
        qb_alloc_deinit(&a);
    }
    struct {
        const char *a;
        char **v;
    } o[] = {{"calib", &out->calib},         {"stats_file", &out->stats_file},
             {"sets", &out->sets},           {"objective", &out->objective},
             {"solver", &out->solver},       {"status", &out->status},
             {"budget", &out->budget}};
    for (size_t k = 0; k < sizeof o / sizeof *o && !rc; k++)
        rc = opt_attr(st, g, o[k].a, o[k].v, err);
    if (!rc)
        rc = check_choices(st, g, err);
    int n_sets = rc ? 0 : check_list(st, g, "sets", out->sets, ',', err);
    rc = rc ? rc : n_sets < 0 ? VL_EFORMAT : 0;
    if (!rc && check_list(st, g, "calib", out->calib, ',', err) < 0)
        rc = VL_EFORMAT;
    if (!rc)
        rc = num_attr(st, g, "target_bpw", 1e-9, 64, &out->target_bpw, err);
    /* predicted_kld [S] over the sets (absent "sets" in older files: one column) */
    out->n_sets = n_sets ? n_sets : 1;
    if (!rc)
        rc = vec(st, g, "predicted_kld", out->n_sets, 0, INFINITY, &out->predicted_kld, err);
    for (int i = 0; !rc && i < out->n_sets; i++)
        if (!isfinite(out->predicted_kld[i]))
            rc = vl_errf(err, VL_ERANGE, "%s: %s/predicted_kld[%d] is not finite", h5s_path(st),
                         g, i);
    char *items = NULL;
    if (!rc && !h5s_attr_get(st, g, "items", &items, NULL)) { /* items with their bpw */
        out->n_items = 1;
        for (const char *p = items; *p; p++)
            out->n_items += *p == '\n';
        if (!*items)
            rc = vl_errf(err, VL_EFORMAT, "%s: %s@items is empty", h5s_path(st), g);
    }
    vl_free(items);
    if (!rc) {
        char d[EV_NAME_MAX + 32];
        snprintf(d, sizeof d, "%s/item_bpw", g);
        if (out->n_items || h5s_exists(st, d))
            rc = out->n_items ? vec(st, g, "item_bpw", out->n_items, 1e-9, 64, &out->item_bpw, err)
                              : vl_errf(err, VL_EFORMAT, "%s: %s has item_bpw but no items "
                                        "attribute", h5s_path(st), g);
    }
    static const struct {
        const char *a;
        double lo, hi;
    } nums[] = {{"bits_used", 0, 1e300}, {"budget_bits", 0, 1e300}, {"bpw", 0, 64},
                {"node_limited", 0, 1},  {"objective_value", 0, 1e300},
                {"gap", -1e300, INFINITY}, {"lower_bound", -INFINITY, 1e300}};
    for (size_t k = 0; !rc && k < sizeof nums / sizeof *nums; k++) {
        double v = 0;
        if (h5s_attr_get_f64(st, g, nums[k].a, &v, NULL) != VL_ENOTFOUND) /* absent: older */
            rc = num_attr(st, g, nums[k].a, nums[k].lo, nums[k].hi, &v, err);
        if (!rc && !strcmp(nums[k].a, "gap"))
            out->gap = v;
        if (!rc && !strcmp(nums[k].a, "objective_value"))
            out->objective_value = v;
    }
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
