/* alloc/quant.c — group quantizer and RTN with the importance-weighted clip search.
 *
 * Grid and search are specified in quant.h. fp16 rounding is done in software on the bit
 * pattern (IEEE 754 binary16, round to nearest even) so it does not depend on compiler support
 * for _Float16.
 */
#include "quant.h"

#include "../core/kern.h"
#include "../core/vexp.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------------------- fp16 */

float quant_f16_round(float x)
{
    if (!isfinite(x) || x == 0.0f)
        return x;
    float a = fabsf(x);
    if (a >= 65520.0f) /* halfway between 65504 and 65536 rounds up to Inf (RNE on even) */
        return copysignf(INFINITY, x);
    int e;
    frexpf(a, &e); /* a = m·2^e, m in [0.5, 1) */
    /* fp16 has 11 significant bits for normals (e − 1 >= −14); subnormals have a fixed quantum
     * 2^−24. The spacing (ulp) of a is 2^(e − 11) or 2^−24, whichever is larger. */
    int ulp_exp = e - 11 < -24 ? -24 : e - 11;
    float scaled = ldexpf(a, -ulp_exp); /* exact: a power-of-two scaling */
    float r = rintf(scaled);            /* default rounding mode: to nearest even */
    return copysignf(ldexpf(r, ulp_exp), x);
}

/* ---------------------------------------------------------------- group grid */

quant_params quant_defaults(void)
{
    quant_params p = {20, 0.5};
    return p;
}

static float round_half_up(float v) { return floorf(v + 0.5f); }

/* fp16 scale, kept away from 0 and ±Inf (see quant.h). */
static float f16_scale(float s)
{
    static const float tiny = 5.9604644775390625e-8f; /* 2^-24 */
    float h = quant_f16_round(s);
    if (fabsf(h) < tiny)
        h = copysignf(tiny, s);
    if (fabsf(h) > 65504.0f)
        h = copysignf(65504.0f, s);
    return h;
}

/* What the grid of a group depends on: its entry of largest magnitude (the first such, sign
 * kept; symmetric) or its range including 0 (asymmetric). The clip search reuses it for
 * every clip ratio. */
typedef struct {
    float m, lo, hi;
} grp_range;

static grp_range range_of(const float *x, int n, int sym)
{
    grp_range g = {0.0f, 0.0f, 0.0f};
    if (sym) {
        for (int j = 0; j < n; j++)
            if (fabsf(x[j]) > fabsf(g.m))
                g.m = x[j];
        return g;
    }
    for (int j = 0; j < n; j++) {
        g.lo = x[j] < g.lo ? x[j] : g.lo;
        g.hi = x[j] > g.hi ? x[j] : g.hi;
    }
    return g;
}

/* The grid of a group of range rg at clip ratio r (quant_grp_at). */
static quant_grp grp_at_range(grp_range rg, int bits, int sym, double r)
{
    quant_grp g = {1.0f, 0};
    if (sym) {
        float m = rg.m;
        if (m != 0.0f)
            g.scale = f16_scale((float)(-r * m) / (float)(1 << (bits - 1)));
        return g;
    }
    float lo = rg.lo, hi = rg.hi;
    if (hi == lo)
        return g;
    int maxq = (1 << bits) - 1;
    float rlo = (float)(r * lo), rhi = (float)(r * hi);
    g.scale = f16_scale((rhi - rlo) / (float)maxq);
    float z = round_half_up(-rlo / g.scale);
    g.zero = z < 0 ? 0 : z > maxq ? maxq : (int)z;
    return g;
}

quant_grp quant_grp_at(const float *x, int n, int bits, int sym, double r)
{
    return grp_at_range(range_of(x, n, sym), bits, sym, r);
}

float quant_grp_fake(const quant_grp *g, float x, int bits, int sym)
{
    float q = round_half_up(x / g->scale);
    if (sym) {
        float qmin = -(float)(1 << (bits - 1)), qmax = (float)((1 << (bits - 1)) - 1);
        q = q < qmin ? qmin : q > qmax ? qmax : q;
        return g->scale * q;
    }
    float maxq = (float)((1 << bits) - 1);
    q += (float)g->zero;
    q = q < 0.0f ? 0.0f : q > maxq ? maxq : q;
    return g->scale * (q - (float)g->zero);
}

/* The clip search's errors: e[k] = Σ_j imp_j·(x_j − fake_k(x_j))² for the grids g[0..ng),
 * each summed over j in order, as one grid's loop would. The grids sit in vector lanes (8 a
 * vector, up to CLIP_CHUNK), and each lane does quant_grp_fake's float operations and its own
 * float64 sum, so each e[k] has the bits of the one-grid loop (a chain of dependent adds, which
 * is what made that loop slow). floorf is built from a truncating conversion (exact below 2²⁴;
 * larger quotients clamp to the grid's ends either way). */
enum { CLIP_CHUNK = 32 };
typedef double quant_d8 __attribute__((vector_size(64)));

VEXP_CLONES static void grp_errs(const quant_grp *g, int ng, const float *x, const double *imp,
                                 int n, int bits, int sym, double *e)
{
    enum { NV = CLIP_CHUNK / 8 };
    vexp_f8_t sc[NV], zf[NV];
    quant_d8 acc[NV];
    int nv = (ng + 7) / 8;
    for (int v = 0; v < nv; v++) {
        for (int l = 0; l < 8; l++) {
            int k = v * 8 + l < ng ? v * 8 + l : ng - 1; /* spare lanes repeat the last grid */
            sc[v][l] = g[k].scale;
            zf[v][l] = sym ? 0.0f : (float)g[k].zero;
        }
        acc[v] = (quant_d8){0, 0, 0, 0, 0, 0, 0, 0};
    }
    const float lo = sym ? -(float)(1 << (bits - 1)) : 0.0f;
    const float hi = sym ? (float)((1 << (bits - 1)) - 1) : (float)((1 << bits) - 1);
    const vexp_f8_t vlo = VEXP_SPLAT(lo), vhi = VEXP_SPLAT(hi), half = VEXP_SPLAT(0.5f);
    const vexp_f8_t big = VEXP_SPLAT(16777216.0f), nbig = VEXP_SPLAT(-16777216.0f);
    for (int j = 0; j < n; j++) {
        const vexp_f8_t xs = VEXP_SPLAT(x[j]);
        const double xj = x[j], w = imp ? imp[j] : 1.0;
        const quant_d8 xd = {xj, xj, xj, xj, xj, xj, xj, xj}, wd = {w, w, w, w, w, w, w, w};
        for (int v = 0; v < nv; v++) {
            vexp_f8_t t = xs / sc[v] + half; /* round_half_up: floorf(x/scale + 0.5f) */
            t = VEXP_SELECT(t > big, big, t);
            t = VEXP_SELECT(t < nbig, nbig, t);
            vexp_f8_t tr = __builtin_convertvector(__builtin_convertvector(t, vexp_i8_t),
                                                   vexp_f8_t);
            vexp_f8_t q = tr + __builtin_convertvector(t < tr, vexp_f8_t) + zf[v];
            q = VEXP_SELECT(q < vlo, vlo, q);
            q = VEXP_SELECT(q > vhi, vhi, q);
            vexp_f8_t fake = sc[v] * (q - zf[v]);
            quant_d8 d = xd - __builtin_convertvector(fake, quant_d8);
            acc[v] += wd * d * d;
        }
    }
    for (int k = 0; k < ng; k++)
        e[k] = acc[k / 8][k % 8];
}

quant_grp quant_grp_fit(const float *x, const double *imp, int n, int bits, int sym,
                        const quant_params *p)
{
    grp_range rg = range_of(x, n, sym);
    quant_grp best = grp_at_range(rg, bits, sym, 1.0);
    if (p->clip_steps <= 1)
        return best;
    /* ratio 0 is 1.0 (the plain grid); a later ratio replaces the best only when strictly
       better, and the search stops at an exact fit (error 0) */
    quant_grp g[CLIP_CHUNK];
    double e[CLIP_CHUNK], best_e = -1.0;
    for (int i0 = 0; i0 < p->clip_steps && best_e != 0.0; i0 += CLIP_CHUNK) {
        int ng = p->clip_steps - i0 < CLIP_CHUNK ? p->clip_steps - i0 : CLIP_CHUNK;
        for (int k = 0; k < ng; k++) {
            int i = i0 + k;
            double r = 1.0 - (1.0 - p->clip_min) * i / (p->clip_steps - 1);
            g[k] = i ? grp_at_range(rg, bits, sym, r) : best;
        }
        grp_errs(g, ng, x, imp, n, bits, sym, e);
        for (int k = 0; k < ng && best_e != 0.0; k++)
            if (best_e < 0.0 || e[k] < best_e) {
                best_e = e[k];
                best = g[k];
            }
    }
    return best;
}

/* ---------------------------------------------------------------- RTN */

int quant_check_input(const float *w, int rows, int cols, const qfmt *f, const double *imp,
                      const char *name, vl_err *err)
{
    int rc = qfmt_check(f, err);
    if (rc)
        return vl_errctx(err, rc, "tensor \"%s\"", name);
    if (rows < 1 || cols < 1)
        return vl_errf(err, VL_EARG, "tensor \"%s\": bad shape %d x %d", name, rows, cols);
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        if (!isfinite(w[i]))
            return vl_errf(err, VL_ERANGE, "tensor \"%s\": weight [%zu, %zu] is %g", name,
                           i / (size_t)cols, i % (size_t)cols, (double)w[i]);
    if (imp)
        for (int j = 0; j < cols; j++)
            if (!isfinite(imp[j]) || imp[j] < 0.0)
                return vl_errf(err, VL_ERANGE, "tensor \"%s\": importance of input %d is %g",
                               name, j, imp[j]);
    return 0;
}

/* Rows [i0, i1) of an RTN tensor (quant_rtn, checked inputs). */
typedef struct {
    float *out;
    const float *w;
    int cols, g;
    const qfmt *f;
    const double *imp;
    const quant_params *p;
} rtn_job;

static void rtn_rows(void *ctx, int i0, int i1)
{
    const rtn_job *j = ctx;
    int cols = j->cols, g = j->g, bits = j->f->bits, sym = j->f->sym;
    for (int i = i0; i < i1; i++) {
        const float *wr = j->w + (size_t)i * cols;
        float *orow = j->out + (size_t)i * cols;
        for (int c0 = 0; c0 < cols; c0 += g) {
            int n = cols - c0 < g ? cols - c0 : g;
            quant_grp qg = quant_grp_fit(wr + c0, j->imp ? j->imp + c0 : NULL, n, bits, sym, j->p);
            for (int k = 0; k < n; k++)
                orow[c0 + k] = quant_grp_fake(&qg, wr[c0 + k], bits, sym);
        }
    }
}

int quant_rtn(float *out, const float *w, int rows, int cols, const qfmt *f, const double *imp,
              const quant_params *p, const char *name, vl_err *err)
{
    int rc = quant_check_input(w, rows, cols, f, imp, name, err);
    if (rc)
        return rc;
    quant_params def = quant_defaults();
    if (!p)
        p = &def;
    if (p->clip_steps < 1 || !(p->clip_min > 0.0 && p->clip_min <= 1.0))
        return vl_errf(err, VL_EARG, "tensor \"%s\": bad clip search %d steps down to %g", name,
                       p->clip_steps, p->clip_min);
    rtn_job job = {out, w, cols, (int)qfmt_group_len(f, cols), f, imp, p};
    /* rows on kern_parallel_for's threads, at least 8k weights a thread (the clip search
       takes ~0.5 ms for them, a thread's start ~0.03 ms); each row is quantized alone, so the
       bits do not depend on the split */
    kern_parallel_for(rows, cols >= 8192 ? 1 : 8192 / cols, rtn_rows, &job);
    return 0;
}
