/* core/rng.c — seeded streams on GSL's MT19937 (the only file of core/ that includes gsl). */
#include "rng.h"

#include "hash.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <string.h>

struct rng {
    gsl_rng *g;
};

/* ---------------------------------------------------------------- seeds */

uint64_t rng_child_seed(uint64_t seed, const char *label)
{
    uint64_t h = hash_fnv1a64(HASH_FNV_OFFSET, label ? label : "", label ? strlen(label) : 0);
    return hash_mix64(hash_mix64(seed) ^ h);
}

/* ---------------------------------------------------------------- lifecycle */

int rng_new(rng **out, uint64_t seed, vl_err *err)
{
    *out = NULL;
    rng *r = vl_calloc(1, sizeof *r);
    if (!r)
        return vl_errf(err, VL_ENOMEM, "rng: out of memory");
    r->g = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r->g) {
        vl_free(r);
        return vl_errf(err, VL_ENOMEM, "rng: gsl_rng_alloc failed");
    }
    /* GSL replaces seed 0 by 4357; the mixed seed is never 0 so distinct seeds stay distinct
     * except for the 32-bit fold noted in the header. */
    unsigned long s = (unsigned long)(hash_mix64(seed) & 0xffffffffull);
    gsl_rng_set(r->g, s ? s : 1ul);
    *out = r;
    return 0;
}

int rng_new_child(rng **out, uint64_t seed, const char *label, vl_err *err)
{
    return rng_new(out, rng_child_seed(seed, label), err);
}

void rng_free(rng *r)
{
    if (!r)
        return;
    gsl_rng_free(r->g);
    vl_free(r);
}

/* ---------------------------------------------------------------- draws */

double rng_uniform(rng *r) { return gsl_rng_uniform(r->g); }

uint64_t rng_uniform_int(rng *r, uint64_t n)
{
    /* MT19937 yields 32 bits, so gsl_rng_uniform_int accepts n up to 2^32 */
    VL_ASSERT(n > 0 && n <= 0x100000000ull);
    return gsl_rng_uniform_int(r->g, (unsigned long)n);
}

double rng_gaussian(rng *r, double sigma) { return gsl_ran_gaussian_ziggurat(r->g, sigma); }

void rng_shuffle(rng *r, void *base, size_t n, size_t size)
{
    VL_ASSERT((uint64_t)n <= 0x100000000ull);
    if (n < 2)
        return;
    /* gsl_ran_shuffle is the Fisher–Yates (Knuth) shuffle drawing j uniform in [0, i] */
    gsl_ran_shuffle(r->g, base, n, size);
}
