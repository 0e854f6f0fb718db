/* alloc/hadamard.h — randomized Hadamard rotation of the input dimension (incoherence processing).
 *
 * R = diag-block(H_k / √k) · diag(s): seeded random signs s_j ∈ {±1} on the n inputs, then a
 * normalized Walsh–Hadamard transform (Sylvester order) on consecutive blocks. When n is a power
 * of two there is one block; otherwise n is split by its binary expansion, largest block first
 * (768 = 512 + 256, 1000 = 512 + 256 + 128 + 64 + 32 + 8), so most of the inputs mix in a large
 * block and R stays exactly orthonormal (a block of size 1 is just a sign flip). The signs are a
 * hash of (seed, j) (splitmix64), so R depends on nothing but (n, seed). Cost O(n log n) per row.
 *
 * How it is used (QuIP#, arXiv:2402.04396; QuaRot): for y = x·Wᵀ, W' = W·Rᵀ and x' = x·Rᵀ leave
 * y unchanged; W' is quantized (its outliers are spread over the block), then W ≈ Ŵ'·R. The
 * Hessian proxy transforms as H' = R·H·Rᵀ, and a diagonal importance imp as diag(R·diag(imp)·Rᵀ)
 * = the mean of imp over each block (the squared entries of R are 1/k inside a block).
 *
 * All functions are pure and reentrant; rows are row-major with stride n.
 */
#ifndef VL_HADAMARD_H
#define VL_HADAMARD_H

#include "../core/err.h"

#include <stdint.h>

/* Each row x (length n) of w [rows × n] becomes R·x, i.e. w ← w·Rᵀ. 0, or VL_ENOMEM (the
 * float64 scratch row) with w unchanged. */
int had_rotate_rows(float *w, int rows, int n, uint64_t seed, vl_err *err);

/* Inverse: each row x becomes Rᵀ·x, i.e. w ← w·R. Undoes had_rotate_rows. */
int had_unrotate_rows(float *w, int rows, int n, uint64_t seed, vl_err *err);

/* Float64 twin of had_rotate_rows (for Hessians). */
void had_rotate_rows_f64(double *a, int rows, int n, uint64_t seed);

/* h [n × n] symmetric ← R·h·Rᵀ (stays symmetric). */
void had_rotate_sym(double *h, int n, uint64_t seed);

/* imp [n] ← diag(R·diag(imp)·Rᵀ): each block's entries replaced by the block mean. */
void had_rotate_diag(double *imp, int n);

/* Sign s_j (±1) of input j for this seed. */
int had_sign(uint64_t seed, int j);

#endif
