/* plots/pfig_report.c — the report folder: every standard figure whose data exist. */
#define _POSIX_C_SOURCE 200809L
#include "plotfig.h"

#include "plotsrc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *dir;
    const gp_opts *o;
    char **files;
    int n, cap;
} report;

/* Draw one figure into dir/<default name> with terminal t (png, or svg for the explorable
 * maps); a figure without data (VL_ENOTFOUND) is skipped. */
static int fig_as(report *rp, const char *path, const pfig_req *r, gp_term t, vl_err *err)
{
    char name[256], out[4096];
    pfig_default_out(r, t, name, sizeof name);
    snprintf(out, sizeof out, "%s/%s", rp->dir, name);
    gp_opts o = *rp->o;
    o.term = t;
    o.out = out;
    vl_err e = {0, ""};
    int rc = pfig_draw(path, r, &o, &e);
    if (rc == VL_ENOTFOUND)
        return 0;
    if (rc) {
        *err = e;
        return rc;
    }
    if (rp->n == rp->cap) {
        int cap = rp->cap ? 2 * rp->cap : 16;
        char **nf = vl_realloc(rp->files, (size_t)cap * sizeof *nf);
        if (!nf)
            return vl_errf(err, VL_ENOMEM, "report: out of memory");
        rp->files = nf;
        rp->cap = cap;
    }
    if (!(rp->files[rp->n] = vl_strdup(out)))
        return vl_errf(err, VL_ENOMEM, "report: out of memory");
    rp->n++;
    return 0;
}

static int fig(report *rp, const char *path, const pfig_req *r, vl_err *err)
{
    return fig_as(rp, path, r, GP_PNG, err);
}

/* Members of GROUP in the store at PATH; none when the file or the group is absent. */
static int members(const char *path, const char *group, char ***names, int *n, vl_err *err)
{
    *names = NULL;
    *n = 0;
    if (!path || access(path, R_OK) != 0)
        return 0;
    h5s_store *s;
    int rc = h5s_open(&s, path, err);
    if (rc)
        return rc;
    rc = psrc_members(s, group, names, n, err);
    h5s_close(s);
    return rc;
}

static const char *ref_of(const pfig_report_in *in, char **sets, int n)
{
    const char *want = in->ref_set ? in->ref_set : "en";
    for (int i = 0; i < n; i++)
        if (!strcmp(sets[i], want))
            return sets[i];
    return n ? sets[0] : NULL;
}

/* Per-set maps and each set's difference to the reference set. */
static int set_maps(report *rp, const char *path, const char *group, pfig_kind k,
                    const pfig_report_in *in, vl_err *err)
{
    char **sets;
    int n;
    int rc = members(path, group, &sets, &n, err);
    const char *ref = ref_of(in, sets, n);
    for (int i = 0; i < n && !rc; i++) {
        pfig_req r = pfig_req_default(k);
        r.set = sets[i];
        rc = fig(rp, path, &r, err);
        /* the sensitivity map also as SVG whose cells carry hover texts (share, bits) */
        if (!rc && k == PFIG_SENS_MAP) {
            r.stats = in->stats && access(in->stats, R_OK) == 0 ? in->stats : NULL;
            r.alloc = in->alloc && access(in->alloc, R_OK) == 0 ? in->alloc : NULL;
            rc = fig_as(rp, path, &r, GP_SVG, err);
        }
    }
    for (int i = 0; i < n && !rc; i++) {
        if (sets[i] == ref)
            continue;
        pfig_req r = pfig_req_default(k);
        r.diff_a = sets[i];
        r.diff_b = ref;
        rc = fig(rp, path, &r, err);
    }
    h5s_names_free(sets, n);
    return rc;
}

int pfig_report(const char *dir, const pfig_report_in *in, const gp_opts *o, char ***files,
                int *n_files, vl_err *err)
{
    *files = NULL;
    *n_files = 0;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return vl_errf(err, VL_EIO, "%s: %s", dir, strerror(errno));
    report rp = {dir, o, NULL, 0, 0};
    int rc = set_maps(&rp, in->sens, "/sens", PFIG_SENS_MAP, in, err);
    if (!rc)
        rc = set_maps(&rp, in->stats, "/stats", PFIG_EXPERT_USAGE, in, err);
    if (!rc && in->sens && access(in->sens, R_OK) == 0) {
        pfig_req r = pfig_req_default(PFIG_RD);
        rc = fig(&rp, in->sens, &r, err);
    }
    char **doms = NULL;
    int nd = 0;
    if (!rc && in->eval && access(in->eval, R_OK) == 0) {
        pfig_req r = pfig_req_default(PFIG_KLD_MATRIX);
        rc = fig(&rp, in->eval, &r, err);
        r.kind = PFIG_KLD_VS_BPW;
        if (!rc)
            rc = fig(&rp, in->eval, &r, err);
        if (!rc)
            rc = members(in->eval, "/eval/domains", &doms, &nd, err);
        for (int i = 0; i < nd && !rc; i++) {
            r.set = doms[i];
            rc = fig(&rp, in->eval, &r, err);
        }
    }
    h5s_names_free(doms, nd);
    char **al = NULL;
    int na = 0;
    if (!rc)
        rc = members(in->alloc, "/alloc", &al, &na, err);
    for (int i = 0; i < na && !rc; i++) {
        pfig_req r = pfig_req_default(PFIG_ALLOC_MAP);
        r.set = al[i];
        rc = fig(&rp, in->alloc, &r, err);
    }
    /* the bits of each set's specific experts against the reference set's */
    char **sets = NULL;
    int ns = 0;
    if (!rc && na)
        rc = members(in->stats, "/stats", &sets, &ns, err);
    const char *ref = ref_of(in, sets, ns);
    for (int i = 0; i < ns && !rc; i++) {
        if (sets[i] == ref)
            continue;
        pfig_req r = pfig_req_default(PFIG_EXPERT_BITS);
        r.diff_a = sets[i];
        r.diff_b = ref;
        r.alloc = in->alloc;
        rc = fig(&rp, in->stats, &r, err);
    }
    h5s_names_free(sets, ns);
    h5s_names_free(al, na);
    *files = rp.files;
    *n_files = rp.n;
    return rc;
}
