/* core/fx.h — exact fixed-point sums, so that statistics merge bit for bit.
 *
 * Float64 addition is not associative: adding the same numbers in another grouping (two runs
 * merged vs one run over both) changes the last bits. An fx_num is a 192-bit two's-complement
 * integer N in three 64-bit limbs (limb 0 least significant) standing for the value N·2^-96.
 * Integer addition is associative and commutative, so a total built by fx_add_f64/fx_add is the
 * same whatever the grouping and order of the terms, as long as each term is the same double.
 *
 * Range and resolution (chosen from the values vbrlab sums: activations of |x| ≲ 1e4 give x⁴
 * ≲ 1e16 per row, 1e9 rows give ≲ 1e25; the smallest partial sums that matter are ≳ 1e-20):
 *   |value| < 2^95 ≈ 3.96e28, resolution 2^-96 ≈ 1.26e-29.
 * A term is converted exactly when it is a multiple of 2^-96 (any double ≥ 2^-43 in magnitude
 * whose last mantissa bit is at or above 2^-96); smaller bits are truncated toward zero — a
 * deterministic function of the term, so exactness of merges is unaffected. A term or total
 * out of range, or a NaN/Inf term, is refused (VL_ERANGE) and the total left unchanged.
 *
 * Storage: the three limbs are written as int64 (same bits), least significant first
 * (docs/hdf5-schema.md, "stats"). Pure functions; thread-safe.
 */
#ifndef VL_FX_H
#define VL_FX_H

#include <stddef.h>
#include <stdint.h>

#define FX_LIMBS 3
#define FX_FRAC_BITS 96

typedef struct {
    uint64_t l[FX_LIMBS]; /* two's complement, l[0] least significant; value = N·2^-96 */
} fx_num;

/* *a += v (v converted as described above). 0, or VL_ERANGE (v not finite, or the sum out of
 * range) with *a unchanged. */
int fx_add_f64(fx_num *a, double v);

/* a[i] += v[i] for i = 0.. in order (each as fx_add_f64); stops at the first term that fails
 * (left unadded, like the rest) and returns its index; n when every term was added. */
size_t fx_add_f64_n(fx_num *a, const double *v, size_t n);

/* *a += b exactly. 0, or VL_ERANGE on overflow with *a unchanged. */
int fx_add(fx_num *a, const fx_num *b);

/* The value as the nearest double (correctly rounded, ties to even). */
double fx_to_f64(const fx_num *a);

/* Exact representation of a double (same conversion as fx_add_f64 into zero). */
int fx_from_f64(fx_num *out, double v);

#endif
