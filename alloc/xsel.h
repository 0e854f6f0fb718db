/* alloc/xsel.h — language-specific experts: routing shares per calibration set, the experts
 * one set routes to far more than another, and an allocation that quantizes only those.
 *
 * Share of expert e in MoE layer l on set S: routed_S[e] / Σ_e routed_S[e], from
 * /stats/<S>/layers/NN/router/routed (tokens whose top-k holds e; docs/hdf5-schema.md,
 * "vbrlab stats"), so Σ_e share = 1 per layer. The B-specific experts of a layer (B against A)
 * are the k with the largest ratio (share_B + XS_EPS) / (share_A + XS_EPS), ties to the lower
 * index; XS_EPS keeps an expert that A never routes to finite and ordered by its B share.
 *
 * Used by the report (experiments/report_expert.c: shares and bits per expert) and by
 * `vbrlab eval-experts` (quantize only the B-specific, or only the A-specific, experts).
 * Pure apart from reading the store; reentrant on distinct stores.
 */
#ifndef VL_XSEL_H
#define VL_XSEL_H

#include "../analysis/model.h"
#include "../core/err.h"
#include "../io/h5s.h"
#include "qbind.h"

#define XS_EPS 1e-6

/* Routing shares of set SET in layer L: *share vl_malloc'd [*E], summing to 1 (all 0 when the
 * set routed no token there). VL_ENOTFOUND when the store has no router counts for that layer
 * (a dense layer, or no such set); VL_ESHAPE / VL_ERANGE for a malformed dataset. */
int xs_shares(h5s_store *s, const char *set, int layer, double **share, int *E, vl_err *err);

/* The k experts (of E) with the largest (b + XS_EPS) / (a + XS_EPS), ties to the lower index,
 * in decreasing ratio into out[k]. 0 ≤ k ≤ E. Pure. */
void xs_pick(const double *a, const double *b, int E, int k, int *out);

/* Append to AL one item per tensor of the experts sel[l·E + e] != 0 (every projection of a
 * routed expert of layer l; model_tensor's layer and expert), in format FMT. Errors:
 * qb_alloc_add's; VL_ENOTFOUND when no tensor matched. */
int xs_alloc(qb_alloc *al, const model *m, const unsigned char *sel, int L, int E,
             const char *fmt, vl_err *err);

/* Bits per routed expert of an allocation's assignment text ("<hf tensor>\t<format>" lines,
 * alloc/salloc.h): bits[l·E + e] = mean integer bits (qfmt bits; for a ggml block type its
 * bits per weight) of the listed tensors of expert
 * e of layer l (names holding "layers.L." and ".experts.E."), NaN for an expert with none
 * listed (full precision). Lines of other tensors, and indices ≥ L or ≥ E, are skipped. Errors:
 * VL_EFORMAT naming the line for a line without a tab or with an unknown format. */
int xs_expert_bits(const char *assignment, int L, int E, double *bits, vl_err *err);

#endif
