/* core/rng.h — seeded random streams (a thin owner of a GSL generator).
 *
 * Every random choice in vbrlab takes an explicit seed, so the same configuration gives the same
 * result bit for bit (DESIGN). An rng is one independent stream: GSL's MT19937 seeded from a
 * 64-bit seed. Stages that need their own stream derive a child seed from (parent seed, label)
 * with rng_child_seed, so adding a stage never shifts the numbers another stage draws.
 *
 * Seeding: MT19937 takes a 32-bit seed, so the 64-bit seed is folded through the SplitMix64
 * finaliser to 32 bits. Two different seeds therefore give the same stream with probability
 * 2^-32 (per pair); vbrlab uses a handful of streams per run, so this is accepted.
 *
 * What this is not: a cryptographic generator; no global state (each rng owns its generator).
 * Thread-safety: an rng is used by one thread at a time; distinct rngs are independent.
 */
#ifndef VL_RNG_H
#define VL_RNG_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rng rng;

/* New stream from seed. *out owned by the caller (rng_free). VL_ENOMEM on failure. */
int rng_new(rng **out, uint64_t seed, vl_err *err);

/* New stream seeded with rng_child_seed(seed, label). */
int rng_new_child(rng **out, uint64_t seed, const char *label, vl_err *err);

/* Deterministic child seed of (seed, label): FNV-1a of the label bytes mixed with the seed
 * through SplitMix64. Different labels (or seeds) give unrelated seeds. Pure function. */
uint64_t rng_child_seed(uint64_t seed, const char *label);

/* Uniform double in [0, 1). */
double rng_uniform(rng *r);

/* Uniform integer in [0, n); requires 0 < n <= 2^32 (asserted: n comes from our own code). */
uint64_t rng_uniform_int(rng *r, uint64_t n);

/* Gaussian with mean 0 and standard deviation sigma (ziggurat method). */
double rng_gaussian(rng *r, double sigma);

/* Shuffle n elements of `size` bytes at base in place (Fisher–Yates, uniform over all
 * permutations); n <= 2^32. */
void rng_shuffle(rng *r, void *base, size_t n, size_t size);

/* Free the stream; NULL is a no-op. */
void rng_free(rng *r);

#endif
