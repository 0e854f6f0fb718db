/* plots/psrc_expert.c — the reader of the expert-bits figure (layout and rule in plotsrc.h). */
#define _POSIX_C_SOURCE 200809L
#include "plotsrc.h"
#include "psrc_int.h"

#include "../alloc/xsel.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Shares of A and B in every MoE layer both have router counts for: *a, *b [L × E] (NaN rows
 * for the other layers), *L layers, *E experts. */
static int read_shares(h5s_store *st, const char *A, const char *B, double **a, double **b,
                       int *L, int *E, vl_err *err)
{
    *a = *b = NULL;
    *L = *E = 0;
    char p[256];
    for (; *L < 4096; (*L)++) {
        snprintf(p, sizeof p, "/stats/%s/layers/%02d", A, *L);
        if (!h5s_exists(st, p))
            break;
    }
    int rc = 0, moe = 0;
    for (int l = 0; l < *L && !rc; l++) {
        double *pa = NULL, *pb = NULL;
        int Ea = 0, Eb = 0;
        int ra = xs_shares(st, A, l, &pa, &Ea, err);
        int rb = ra ? 0 : xs_shares(st, B, l, &pb, &Eb, err);
        if (ra == VL_ENOTFOUND || rb == VL_ENOTFOUND) {
            vl_free(pa);
            vl_free(pb);
            continue; /* a dense layer, or one of the sets lacks it */
        }
        rc = ra ? ra : rb;
        if (!rc && (Ea != Eb || (*E && Ea != *E)))
            rc = vl_errf(err, VL_ESHAPE, "%s: layer %d has %d experts on %s, %d on %s",
                         h5s_path(st), l, Ea, A, Eb, B);
        if (!rc && !*E) {
            *E = Ea;
            *a = vl_malloc((size_t)*L * Ea * sizeof **a);
            *b = vl_malloc((size_t)*L * Ea * sizeof **b);
            if (!*a || !*b)
                rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", h5s_path(st));
            for (size_t i = 0; !rc && i < (size_t)*L * Ea; i++)
                (*a)[i] = (*b)[i] = NAN;
        }
        if (!rc) {
            memcpy(*a + (size_t)l * *E, pa, (size_t)*E * sizeof *pa);
            memcpy(*b + (size_t)l * *E, pb, (size_t)*E * sizeof *pb);
            moe++;
        }
        vl_free(pa);
        vl_free(pb);
    }
    if (!rc && !moe)
        rc = vl_errf(err, VL_ENOTFOUND, "%s: no MoE layer with router statistics of both %s and "
                     "%s", h5s_path(st), A, B);
    return rc;
}

int psrc_expert_bits(h5s_store *st, h5s_store *al, const char *A, const char *B,
                     psrc_lines *out, vl_err *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->metric, sizeof out->metric, "expert_bits");
    double *a, *b, *bits = NULL;
    int L, E;
    int rc = read_shares(st, A, B, &a, &b, &L, &E, err);
    char **names = NULL;
    int n = 0;
    if (!rc)
        rc = psrc_members(al, "/alloc", &names, &n, err);
    if (!rc && n == 0)
        rc = vl_errf(err, VL_ENOTFOUND, "%s: no allocations (group /alloc)", h5s_path(al));
    int *ord = rc ? NULL : vl_malloc((size_t)E * sizeof *ord);
    if (!rc && (!ord || !(bits = vl_malloc((size_t)L * E * sizeof *bits))))
        rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", h5s_path(st));
    for (int k = 0; k < n && !rc; k++) {
        char g[512], *text = NULL;
        snprintf(g, sizeof g, "/alloc/%s", names[k]);
        if (h5s_attr_get(al, g, "assignment", &text, NULL)) {
            rc = vl_errf(err, VL_ENOTFOUND, "%s: no attribute assignment on %s", h5s_path(al), g);
            break;
        }
        rc = xs_expert_bits(text, L, E, bits, err);
        vl_free(text);
        if (rc) {
            vl_errctx(err, rc, "%s: %s", h5s_path(al), g);
            break;
        }
        int s = psrc_series_of(out, names[k], E, 0);
        if (s < 0) {
            rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", h5s_path(st));
            break;
        }
        psrc_series *t = &out->s[s];
        for (int x = 0; x < E; x++) {
            t->x[x] = x;
            t->y[x] = 0;
        }
        int *c = vl_calloc((size_t)E, sizeof *c);
        if (!c) {
            rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", h5s_path(st));
            break;
        }
        for (int l = 0; l < L; l++) {
            if (isnan(a[(size_t)l * E]))
                continue;
            /* ord: decreasing B/A; the most B-specific expert goes to the right end */
            xs_pick(a + (size_t)l * E, b + (size_t)l * E, E, E, ord);
            for (int i = 0; i < E; i++) {
                double v = bits[(size_t)l * E + ord[i]];
                if (!isnan(v)) {
                    t->y[E - 1 - i] += v;
                    c[E - 1 - i]++;
                }
            }
        }
        for (int x = 0; x < E; x++)
            t->y[x] = c[x] ? t->y[x] / c[x] : NAN;
        t->n = E;
        vl_free(c);
    }
    vl_free(ord);
    vl_free(bits);
    vl_free(a);
    vl_free(b);
    h5s_names_free(names, n);
    if (rc)
        psrc_lines_free(out);
    return rc;
}
