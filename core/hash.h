/* core/hash.h — the two small hashes of the tree, in one place: FNV-1a 64 (Fowler–Noll–Vo;
 * offset basis 0xcbf29ce484222325, prime 0x100000001b3) for bytes, and the SplitMix64
 * finaliser (Steele, Lea, Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014)
 * for 64-bit words. Used for seeds (core/rng), cache keys (experiments/expkey), file hashes
 * (analysis/sfile), Hadamard signs (alloc/hadamard) and the tokenizer's tables. Pure.
 */
#ifndef VL_HASH_H
#define VL_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV_OFFSET 0xcbf29ce484222325ULL

/* FNV-1a 64 of n bytes, continuing from h (start with HASH_FNV_OFFSET). */
uint64_t hash_fnv1a64(uint64_t h, const void *data, size_t n);

/* SplitMix64: z + 0x9e3779b97f4a7c15 through its finaliser; a bijection on 64 bits that
 * spreads every input bit over the output. */
uint64_t hash_mix64(uint64_t z);

#endif
