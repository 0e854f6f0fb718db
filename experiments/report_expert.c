/* experiments/report_expert.c — the report's expert-level view of claim (2): does an allocation
 * calibrated on one language starve the experts another language routes to?
 *
 * Sets A and B: `en` and `zh` when the run has both, else its first two calibration sets.
 * Per MoE layer, every routed expert with its routing share on A and on B (alloc/xsel.h), the
 * ratio B/A, and the bits each of the run's allocations gave it (mean integer bits of its
 * projections, alloc/xsel.h xs_expert_bits; "fp" when it stays full precision); experts in
 * order of decreasing B/A, so the B-specific ones lead each layer. Then the summary: per
 * allocation, the mean bits of the k = E/4 most B-specific and of the k most A-specific
 * experts of every layer, and their difference.
 */
#define _POSIX_C_SOURCE 200809L
#include "stage.h"

#include "../alloc/salloc.h"
#include "../alloc/xsel.h"

#include <math.h>
#include <string.h>

#define XR_MAX_ALLOC 16

typedef struct {
    int L, E;
    double *a, *b;       /* [L × E] shares, NaN rows for dense layers */
    int n_alloc;
    char **names;        /* allocations (salloc_list), first n_alloc shown */
    int n_names;
    double *bits;        /* [n_alloc × L × E] */
} xr_data;

static void xr_free(xr_data *x)
{
    vl_free(x->a);
    vl_free(x->b);
    vl_free(x->bits);
    h5s_names_free(x->names, x->n_names);
}

/* Sets A, B of the view (see the opening comment); 0 when the run has fewer than two. */
static int pick_sets(const exp_config *cfg, const char **A, const char **B)
{
    if (exp_find_calib(cfg, "en") >= 0 && exp_find_calib(cfg, "zh") >= 0) {
        *A = "en";
        *B = "zh";
        return 1;
    }
    if (cfg->n_calib < 2)
        return 0;
    *A = cfg->calib[0].name;
    *B = cfg->calib[1].name;
    return 1;
}

static int xr_read(h5s_store *s, const char *A, const char *B, int L, xr_data *x, vl_err *err)
{
    memset(x, 0, sizeof *x);
    x->L = L;
    int rc = 0;
    for (int l = 0; l < L && !rc; l++) {
        double *pa = NULL, *pb = NULL;
        int Ea = 0, Eb = 0;
        if (xs_shares(s, A, l, &pa, &Ea, NULL) || xs_shares(s, B, l, &pb, &Eb, NULL) ||
            Ea != Eb || (x->E && Ea != x->E)) {
            vl_free(pa);
            vl_free(pb);
            continue; /* dense layer */
        }
        if (!x->E) {
            x->E = Ea;
            x->a = vl_malloc((size_t)L * Ea * sizeof *x->a);
            x->b = vl_malloc((size_t)L * Ea * sizeof *x->b);
            if (!x->a || !x->b)
                rc = vl_errf(err, VL_ENOMEM, "out of memory");
            for (size_t i = 0; !rc && i < (size_t)L * Ea; i++)
                x->a[i] = x->b[i] = NAN;
        }
        if (!rc) {
            memcpy(x->a + (size_t)l * x->E, pa, (size_t)x->E * sizeof *pa);
            memcpy(x->b + (size_t)l * x->E, pb, (size_t)x->E * sizeof *pb);
        }
        vl_free(pa);
        vl_free(pb);
    }
    if (!rc && !x->E)
        return vl_errf(err, VL_ENOTFOUND, "no MoE layer with router statistics of both %s and %s",
                       A, B);
    if (!rc && salloc_list(s, &x->names, &x->n_names, NULL))
        x->n_names = 0; /* no allocation: shares only */
    x->n_alloc = x->n_names < XR_MAX_ALLOC ? x->n_names : XR_MAX_ALLOC;
    if (!rc && !(x->bits = vl_malloc(((size_t)x->n_alloc * L * x->E + 1) * sizeof *x->bits)))
        rc = vl_errf(err, VL_ENOMEM, "out of memory");
    for (int k = 0; !rc && k < x->n_alloc; k++) {
        salloc_record rec;
        if ((rc = salloc_read(s, x->names[k], &rec, err)))
            break;
        rc = xs_expert_bits(rec.assignment, L, x->E, x->bits + (size_t)k * L * x->E, err);
        salloc_record_free(&rec);
    }
    return rc;
}

void report_expert_bits(FILE *f, run_ctx *c)
{
    const char *A, *B;
    fprintf(f, "\n### Experts by language: routing share and bits (claim 2)\n\n");
    if (!pick_sets(c->cfg, &A, &B)) {
        fprintf(f, "Not available: the run has fewer than two calibration sets.\n");
        return;
    }
    xr_data x;
    vl_err e = {0, ""};
    int L = 0;
    char p[256];
    for (; L < 4096; L++) { /* layers: as many as the first set stores */
        snprintf(p, sizeof p, "/stats/%s/layers/%02d", A, L);
        if (!h5s_exists(c->s, p))
            break;
    }
    if (xr_read(c->s, A, B, L, &x, &e)) {
        fprintf(f, "Not available: %s.\n", e.msg);
        xr_free(&x);
        return;
    }
    int E = x.E, k = E / 4 > 0 ? E / 4 : 1;
    fprintf(f, "Share = the expert's part of its layer's routed token slots on a set; ratio = "
               "(share %s + 10⁻⁶) / (share %s + 10⁻⁶); bits = mean integer bits of the expert's "
               "projections in each allocation (fp: not quantized).\n\n| allocation | mean bits of "
               "the %d most %s-specific experts per layer | of the %d most %s-specific | "
               "difference |\n|---|---:|---:|---:|\n",
            B, A, k, B, k, A);
    int *ord = vl_malloc((size_t)E * sizeof *ord);
    for (int a = 0; ord && a < x.n_alloc; a++) {
        double sb = 0, sa = 0;
        int nb = 0, na = 0;
        for (int l = 0; l < L; l++) {
            if (isnan(x.a[(size_t)l * E]))
                continue;
            xs_pick(x.a + (size_t)l * E, x.b + (size_t)l * E, E, E, ord);
            for (int i = 0; i < k; i++) {
                double vb = x.bits[((size_t)a * L + l) * E + ord[i]];
                double va = x.bits[((size_t)a * L + l) * E + ord[E - 1 - i]];
                if (!isnan(vb))
                    sb += vb, nb++;
                if (!isnan(va))
                    sa += va, na++;
            }
        }
        double mb = nb ? sb / nb : NAN, ma = na ? sa / na : NAN;
        fprintf(f, "| %s | %.3f | %.3f | %+.3f |\n", x.names[a], mb, ma, mb - ma);
    }
    fprintf(f, "\n| layer | expert | share %s %% | share %s %% | ratio %s/%s |", A, B, B, A);
    for (int a = 0; a < x.n_alloc; a++)
        fprintf(f, " bits %s |", x.names[a]);
    fprintf(f, "\n|---|---|---:|---:|---:|");
    for (int a = 0; a < x.n_alloc; a++)
        fprintf(f, "---:|");
    fprintf(f, "\n");
    for (int l = 0; ord && l < L; l++) {
        if (isnan(x.a[(size_t)l * E]))
            continue;
        const double *pa = x.a + (size_t)l * E, *pb = x.b + (size_t)l * E;
        xs_pick(pa, pb, E, E, ord);
        for (int i = 0; i < E; i++) {
            int ex = ord[i];
            fprintf(f, "| L%02d | e%d | %.2f | %.2f | %.3g |", l, ex, 100 * pa[ex], 100 * pb[ex],
                    (pb[ex] + XS_EPS) / (pa[ex] + XS_EPS));
            for (int a = 0; a < x.n_alloc; a++) {
                double v = x.bits[((size_t)a * L + l) * E + ex];
                if (isnan(v))
                    fprintf(f, " fp |");
                else
                    fprintf(f, " %.3g |", v);
            }
            fprintf(f, "\n");
        }
    }
    if (x.n_names > x.n_alloc)
        fprintf(f, "\n(%d more allocations not shown.)\n", x.n_names - x.n_alloc);
    vl_free(ord);
    xr_free(&x);
}
