/* alloc/gptq.c — GPTQ with lazy block updates (see gptq.h for the algorithm and its sources).
 *
 * Layout: the working weights are kept transposed, wt [cols × rows] float64, so that "column i
 * of W" is a contiguous row and every update is an axpy or one dgemm.
 */
#include "gptq.h"

#include "../core/kern.h"

#include <lapacke.h>
#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

gptq_params gptq_defaults(void)
{
    gptq_params p = {0.01, 128, 0, 3, quant_defaults()};
    return p;
}

int64_t gptq_perm_bits(int64_t cols)
{
    int64_t b = 0;
    while (((int64_t)1 << b) < cols)
        b++;
    return cols * b;
}

/* Working buffers, freed together. */
typedef struct {
    int *perm;       /* [cols] processing order → original column */
    double *hp;      /* [cols × cols] permuted H with dead diagonals set to 1 */
    double *u;       /* [cols × cols] upper Cholesky factor of (hp + λI)⁻¹ */
    double *wt;      /* [cols × rows] working weights, transposed and permuted */
    double *err1;    /* [block × rows] scaled errors of the current block */
    float *qt;       /* [cols × rows] dequantized result, transposed and permuted */
    float *gx;       /* [group] one row's group values for the fit */
    double *gimp;    /* [group] their importances */
    quant_grp *grp;  /* [rows] current group parameters per row */
} work;

static void work_free(work *k)
{
    vl_free(k->perm);
    vl_free(k->hp);
    vl_free(k->u);
    vl_free(k->wt);
    vl_free(k->err1);
    vl_free(k->qt);
    vl_free(k->gx);
    vl_free(k->gimp);
    vl_free(k->grp);
}

static int work_alloc(work *k, int rows, int cols, int block, int glen)
{
    size_t kk = (size_t)cols * cols, kr = (size_t)cols * rows;
    k->perm = vl_malloc((size_t)cols * sizeof *k->perm);
    k->hp = vl_malloc(kk * sizeof *k->hp);
    k->u = vl_malloc(kk * sizeof *k->u);
    k->wt = vl_malloc(kr * sizeof *k->wt);
    k->err1 = vl_malloc((size_t)block * rows * sizeof *k->err1);
    k->qt = vl_malloc(kr * sizeof *k->qt);
    k->gx = vl_malloc((size_t)glen * sizeof *k->gx);
    k->gimp = vl_malloc((size_t)glen * sizeof *k->gimp);
    k->grp = vl_malloc((size_t)rows * sizeof *k->grp);
    return k->perm && k->hp && k->u && k->wt && k->err1 && k->qt && k->gx && k->gimp && k->grp
               ? 0
               : VL_ENOMEM;
}

/* Order of processing: identity, or descending diag(H) (ties by index, so deterministic). */
static void make_perm(int *perm, const double *h, int cols, int act_order)
{
    for (int i = 0; i < cols; i++)
        perm[i] = i;
    if (!act_order)
        return;
    for (int i = 1; i < cols; i++) { /* insertion sort: cols is at most a few thousand */
        int p = perm[i], j = i - 1;
        double d = h[(size_t)p * cols + p];
        while (j >= 0 && h[(size_t)perm[j] * cols + perm[j]] < d) {
            perm[j + 1] = perm[j];
            j--;
        }
        perm[j + 1] = p;
    }
}

/* u ← upper Cholesky factor of (hp + λI)⁻¹; returns LAPACK info (0 ok, > 0 not PD). */
static int chol_inv_upper(double *u, const double *hp, int n, double lambda)
{
    memcpy(u, hp, (size_t)n * n * sizeof *u);
    for (int i = 0; i < n; i++)
        u[(size_t)i * n + i] += lambda;
    lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', n, u, n);
    if (info == 0)
        info = LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'U', n, u, n);
    if (info == 0)
        info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', n, u, n);
    if (info != 0)
        return info < 0 ? -1 : (int)info;
    for (int i = 0; i < n; i++) /* the strict lower triangle still holds H; clear it */
        for (int j = 0; j < i; j++)
            u[(size_t)i * n + j] = 0.0;
    return 0;
}

/* Fit every row's parameters for the group of processing columns [c0, c1). */
static void fit_groups(work *k, int rows, int cols, int c0, int c1, const qfmt *f,
                       const quant_params *clip)
{
    int n = c1 - c0;
    for (int j = 0; j < n; j++)
        k->gimp[j] = k->hp[(size_t)(c0 + j) * cols + (c0 + j)];
    for (int r = 0; r < rows; r++) {
        for (int j = 0; j < n; j++)
            k->gx[j] = (float)k->wt[(size_t)(c0 + j) * rows + r];
        k->grp[r] = quant_grp_fit(k->gx, k->gimp, n, f->bits, f->sym, clip);
    }
}

/* ---------------------------------------------------------------- GPTQ */

int gptq_quantize(float *out, const float *w, int rows, int cols, const qfmt *f, const double *h,
                  const gptq_params *p, gptq_info *info, const char *name, vl_err *err)
{
    int rc = quant_check_input(w, rows, cols, f, NULL, name, err);
    if (rc)
        return rc;
    gptq_params def = gptq_defaults();
    if (!p)
        p = &def;
    if (!(p->percdamp > 0.0) || p->block < 1 || p->max_retries < 0 || p->clip.clip_steps < 1 ||
        !(p->clip.clip_min > 0.0 && p->clip.clip_min <= 1.0))
        return vl_errf(err, VL_EARG, "tensor \"%s\": bad GPTQ parameters", name);
    for (size_t i = 0; i < (size_t)cols * cols; i++)
        if (!isfinite(h[i]))
            return vl_errf(err, VL_ERANGE, "tensor \"%s\": Hessian entry [%zu, %zu] is %g", name,
                           i / (size_t)cols, i % (size_t)cols, h[i]);
    for (int j = 0; j < cols; j++)
        if (h[(size_t)j * cols + j] < 0.0)
            return vl_errf(err, VL_ERANGE, "tensor \"%s\": Hessian diagonal [%d] is %g < 0",
                           name, j, h[(size_t)j * cols + j]);

    int glen = (int)qfmt_group_len(f, cols);
    int block = p->block < cols ? p->block : cols;
    work k = {0};
    if (work_alloc(&k, rows, cols, block, glen)) {
        work_free(&k);
        return vl_errf(err, VL_ENOMEM, "tensor \"%s\": out of memory for GPTQ (%d x %d)", name,
                       rows, cols);
    }

    /* Permuted Hessian, dead inputs, permuted transposed weights. */
    make_perm(k.perm, h, cols, p->act_order);
    int dead = 0;
    double mean_diag = 0.0;
    for (int i = 0; i < cols; i++) {
        int pi = k.perm[i];
        for (int j = 0; j < cols; j++)
            k.hp[(size_t)i * cols + j] = h[(size_t)pi * cols + k.perm[j]];
        int is_dead = h[(size_t)pi * cols + pi] == 0.0;
        if (is_dead) {
            k.hp[(size_t)i * cols + i] = 1.0;
            dead++;
        }
        mean_diag += k.hp[(size_t)i * cols + i];
        for (int r = 0; r < rows; r++)
            k.wt[(size_t)i * rows + r] = is_dead ? 0.0 : (double)w[(size_t)r * cols + pi];
    }
    mean_diag /= cols;

    /* Damped inverse Cholesky, with retries. */
    double percdamp = p->percdamp;
    int tries = 0, info_lapack;
    while ((info_lapack = chol_inv_upper(k.u, k.hp, cols, percdamp * mean_diag)) != 0 &&
           tries < p->max_retries) {
        tries++;
        percdamp *= 10.0;
    }
    if (info_lapack != 0) {
        work_free(&k);
        return vl_errf(err, VL_EEXTERN,
                       "tensor \"%s\": GPTQ Hessian not positive definite with damping %g x mean "
                       "diagonal (LAPACKE dpotrf/dpotri info %d)",
                       name, percdamp, info_lapack);
    }

    /* Column sweep in blocks; errors of a block reach later blocks in one dgemm. */
    for (int i1 = 0; i1 < cols; i1 += block) {
        int i2 = cols - i1 < block ? cols : i1 + block;
        for (int i = i1; i < i2; i++) {
            if (i % glen == 0)
                fit_groups(&k, rows, cols, i, i + glen < cols ? i + glen : cols, f, &p->clip);
            const double *ui = k.u + (size_t)i * cols;
            double *wi = k.wt + (size_t)i * rows, *ei = k.err1 + (size_t)(i - i1) * rows;
            float *qi = k.qt + (size_t)i * rows;
            for (int r = 0; r < rows; r++) {
                qi[r] = quant_grp_fake(&k.grp[r], (float)wi[r], f->bits, f->sym);
                ei[r] = (wi[r] - (double)qi[r]) / ui[i];
            }
            for (int j = i + 1; j < i2; j++) {
                double *wj = k.wt + (size_t)j * rows, uij = ui[j];
                for (int r = 0; r < rows; r++)
                    wj[r] -= uij * ei[r];
            }
        }
        if (i2 < cols) /* wt[i2:, :] −= U[i1:i2, i2:]ᵀ · err1 */
            kern_dgemm(k.wt + (size_t)i2 * rows, k.u + (size_t)i1 * cols + i2, k.err1,
                       cols - i2, rows, i2 - i1, 1, cols, rows, rows, -1.0, 1.0);
    }

    for (int i = 0; i < cols; i++) /* unpermute, untranspose */
        for (int r = 0; r < rows; r++)
            out[(size_t)r * cols + k.perm[i]] = k.qt[(size_t)i * rows + r];
    if (info) {
        info->percdamp = percdamp;
        info->lambda = percdamp * mean_diag;
        info->retries = tries;
        info->dead = dead;
    }
    work_free(&k);
    return 0;
}
