/* analysis/eval_row.c — the attribute set of /eval/<row>: one writer, one reader.
 *
 * Why one place: `vbrlab eval` and the runner's eval stage used to write different attributes
 * (source/format/calib vs kind/alloc/target_bpw) and the report and the plots read different
 * ones; now every row carries the same set and every reader goes through ev_read_row.
 */
#include "eval.h"

#include "../core/num.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int ev_write_row(h5s_store *s, const char *row, const ev_row_attrs *a, vl_err *err)
{
    char g[EV_NAME_MAX + 8];
    snprintf(g, sizeof g, "/eval/%s", row);
    const struct {
        const char *name, *value;
    } str[] = {{"kind", a->kind},   {"source", a->source}, {"format", a->format},
               {"alloc", a->alloc}, {"calib", a->calib},   {"stats_file", a->stats_file},
               {"solver", a->solver}};
    const struct {
        const char *name;
        double value;
    } num[] = {{"target_bpw", a->target_bpw}, {"n_tensors", a->n_tensors},
               {"n_weights", (double)a->n_weights}, {"bpw", a->bpw},
               {"bpw_model", a->bpw_model}, {"bpw_file", a->bpw_file},
               {"model_weights", (double)a->model_weights}};
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof str / sizeof *str; i++) {
        const char *v = str[i].value ? str[i].value : "";
        int optional = i >= 4; /* calib, stats_file: only for rows quantized with statistics;
                                  solver: only for stored allocations */
        if (!optional || *v)
            rc = h5s_attr_set(s, g, str[i].name, v, err);
    }
    for (size_t i = 0; !rc && i < sizeof num / sizeof *num; i++)
        rc = h5s_attr_set_f64(s, g, num[i].name, num[i].value, err);
    return rc;
}

void ev_row_attrs_free(ev_row_attrs *a)
{
    if (!a)
        return;
    const char *v[] = {a->kind,  a->source,     a->format, a->alloc,
                       a->calib, a->stats_file, a->solver};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        vl_free((char *)v[i]);
    memset(a, 0, sizeof *a);
}

/* An optional string attribute: its value, or "" when absent. */
static int get_str(h5s_store *s, const char *g, const char *name, const char **out, vl_err *err)
{
    char *v = NULL;
    int rc = h5s_attr_get(s, g, name, &v, err);
    if (rc == VL_ENOTFOUND)
        rc = (v = vl_strdup("")) ? 0 : vl_errf(err, VL_ENOMEM, "out of memory");
    *out = v;
    return rc;
}

int ev_read_row(h5s_store *s, const char *row, ev_row_attrs *a, vl_err *err)
{
    memset(a, 0, sizeof *a);
    char g[512];
    snprintf(g, sizeof g, "/eval/%s", row);
    if (h5s_attr_get_f64(s, g, "bpw", &a->bpw, NULL))
        return vl_errf(err, VL_ENOTFOUND, "%s: no attribute bpw on %s", h5s_path(s), g);
    if (!(a->bpw > 0 && a->bpw <= 64))
        return vl_errf(err, VL_ERANGE, "%s: %s@bpw = %g is out of range", h5s_path(s), g,
                       a->bpw);
    const char **str[] = {&a->source,     &a->format, &a->alloc, &a->calib,
                          &a->stats_file, &a->kind,   &a->solver};
    const char *names[] = {"source", "format", "alloc", "calib", "stats_file", "kind", "solver"};
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof str / sizeof *str; i++)
        rc = get_str(s, g, names[i], str[i], err);
    if (!rc && !*a->kind) {
        vl_free((char *)a->kind);
        a->kind = vl_strdup(!strcmp(a->source, "uniform") ? "uniform" : "vbr");
        if (!a->kind)
            rc = vl_errf(err, VL_ENOMEM, "out of memory");
    }
    static const char *const kinds[] = {"vbr", "uniform", "baseline-uniform", "baseline-rules",
                                        "baseline-random"}; /* experiments/stage_eval.c */
    int known = 0;
    for (size_t k = 0; !rc && k < sizeof kinds / sizeof *kinds; k++)
        known |= !strcmp(a->kind, kinds[k]);
    if (!rc && !known)
        rc = vl_errf(err, VL_EFORMAT, "%s: %s@kind is not vbr, uniform or baseline-METHOD",
                     h5s_path(s), g);
    if (!rc && *a->alloc && !calib_name_ok(a->alloc))
        rc = vl_errf(err, VL_EFORMAT, "%s: %s@alloc is not a name ([A-Za-z0-9._+-]+)",
                     h5s_path(s), g);
    for (const char *p = a->calib; !rc && *p;) { /* comma-joined set names */
        size_t n = strcspn(p, ",");
        char one[EV_NAME_MAX + 1];
        if (n >= sizeof one || (memcpy(one, p, n), one[n] = '\0', !calib_name_ok(one)))
            rc = vl_errf(err, VL_EFORMAT, "%s: %s@calib holds a set that is not a name "
                         "([A-Za-z0-9._+-]+)", h5s_path(s), g);
        p += n + (p[n] == ',');
    }
    double nt = 0, nw = 0;
    const struct {
        const char *name;
        double *v;
        double hi; /* whole numbers (counts) checked before they are converted */
    } num[] = {{"target_bpw", &a->target_bpw, 0}, {"n_tensors", &nt, 1 << 30},
               {"n_weights", &nw, 9007199254740992.0}};
    for (size_t i = 0; !rc && i < sizeof num / sizeof *num; i++) {
        int64_t w;
        if (h5s_attr_get_f64(s, g, num[i].name, num[i].v, NULL))
            *num[i].v = 0;
        else if (!num[i].hi && !(*num[i].v >= 0 && *num[i].v <= 64))
            rc = vl_errf(err, VL_ERANGE, "%s: %s@%s = %g is out of range [0, 64]", h5s_path(s),
                         g, num[i].name, *num[i].v);
        else if (num[i].hi && num_whole(*num[i].v, 0, (int64_t)num[i].hi, &w))
            rc = vl_errf(err, VL_ERANGE, "%s: %s@%s = %g is not a count", h5s_path(s), g,
                         num[i].name, *num[i].v);
    }
    a->n_tensors = rc ? 0 : (int)nt;
    a->n_weights = rc ? 0 : (int64_t)nw;
    double mw = 0;
    int64_t mwi = 0;
    if (h5s_attr_get_f64(s, g, "bpw_model", &a->bpw_model, NULL))
        a->bpw_model = NAN; /* a row written before whole-model bits were kept */
    if (h5s_attr_get_f64(s, g, "bpw_file", &a->bpw_file, NULL))
        a->bpw_file = NAN;
    for (int k = 0; !rc && k < 2; k++) {
        double v = k ? a->bpw_file : a->bpw_model;
        if (!isnan(v) && !(v > 0 && v <= 64))
            rc = vl_errf(err, VL_ERANGE, "%s: %s@%s = %g is out of range (0, 64]", h5s_path(s),
                         g, k ? "bpw_file" : "bpw_model", v);
    }
    if (!rc && !h5s_attr_get_f64(s, g, "model_weights", &mw, NULL)) {
        if (num_whole(mw, 0, (int64_t)1 << 53, &mwi))
            rc = vl_errf(err, VL_ERANGE, "%s: %s@model_weights = %g is not a count",
                         h5s_path(s), g, mw);
        a->model_weights = mwi;
    }
    if (rc)
        ev_row_attrs_free(a);
    return rc;
}
