/* alloc/fq.h — fake-quantize one tensor under one format: rotation, method and the few-token
 * policy, in one call. This is what rate–distortion (alloc/rd.h), sensitivity and evaluation
 * use; the quantizers themselves live in alloc/quant.h (RTN) and alloc/gptq.h.
 *
 * Statistics of a tensor (per expert for MoE experts): imp = per-input E[x²] (or Σx², only
 * ratios matter), h = XᵀX (float64, cols × cols), tokens = how many calibration rows fed them.
 * Rotation (f->rot = had): W' = W·Rᵀ is quantized with H' = R·H·Rᵀ and importance diag(H') when
 * H is given, else the block mean of imp (alloc/hadamard.h); the result is rotated back, so out
 * approximates W in the original basis.
 *
 * Few-token policy: when tokens < min_tokens (an expert the set hardly routes to), one of
 *   uniform    importance uniform and no Hessian (GPTQ formats then run as RTN without H),
 *   rtn        GPTQ formats run as RTN with the given importance,
 *   route-all  the fallback statistics (e.g. the route-all ones) are used instead,
 * applies, and fq_info says so (for the output file). A GPTQ format without H (and no policy
 * supplying one) is VL_EARG.
 *
 * Reentrant; allocates scratch per call.
 */
#ifndef VL_FQ_H
#define VL_FQ_H

#include "../core/err.h"
#include "gptq.h"
#include "qcache.h"
#include "qfmt.h"
#include "quant.h"

#include <stdint.h>

typedef enum { FQ_FEW_UNIFORM, FQ_FEW_RTN, FQ_FEW_ROUTE_ALL, FQ_FEW_COUNT } fq_policy;

/* "uniform", "rtn", "route-all" (static strings); parse returns VL_ECONFIG naming the word. */
const char *fq_policy_name(fq_policy p);
int fq_policy_parse(fq_policy *out, const char *s, vl_err *err);

typedef struct {
    const double *imp; /* [cols] per-input importance (>= 0), NULL = uniform */
    const double *h;   /* [cols × cols] XᵀX, NULL = none (RTN only) */
    double tokens;     /* calibration rows behind imp and h */
} fq_stats;

typedef struct {
    quant_params rtn;  /* RTN clip search */
    gptq_params gptq;  /* GPTQ options */
    uint64_t seed;     /* Hadamard sign seed (from the run's config) */
    double min_tokens; /* below this many tokens the policy applies (default 0: never) */
    fq_policy few;     /* default FQ_FEW_RTN */
    qcache *cache;     /* ggml formats: packed tensors shared across calls (qcache.h); NULL */
} fq_params;

fq_params fq_defaults(void);

typedef struct {
    qfmt_method method; /* method that actually ran */
    int few_applied;    /* 1 if the few-token policy changed the statistics or method */
    gptq_info gptq;     /* filled when GPTQ ran */
} fq_info;

/* Fake-quantize W [rows × cols] under f into out [rows × cols] (must not alias w). st: the
 * tensor's statistics (NULL = none); fallback: statistics for the route-all policy (may be
 * NULL unless that policy applies); p NULL = fq_defaults(); info may be NULL; name labels
 * errors. Errors as quant_rtn / gptq_quantize, VL_EARG when GPTQ lacks H. */
int fq_tensor(float *out, const float *w, int rows, int cols, const qfmt *f, const fq_stats *st,
              const fq_stats *fallback, const fq_params *p, fq_info *info, const char *name,
              vl_err *err);

#endif
