/* core/num.h — the one checked number parser of the toolkit.
 *
 * Every number read from text (INI values, problem files, allocation and id files, CLI options,
 * quantizer and calibration specs, layer numbers inside tensor names) goes through here, so
 * "what is a number" has one answer:
 *   - the whole text is the number: no leading or trailing space, no empty text, nothing after;
 *   - integers are decimal digits with an optional '-' (signed kinds only), no '+', no base
 *     prefix except where asked (num_u64 with hex: "0x" + hex digits);
 *   - the value must lie in [lo, hi]; an integer too long for 64 bits is out of range, never
 *     wrapped; doubles must be finite (no "nan", "inf", nor a decimal that overflows or
 *     underflows to a denormal or zero);
 *   - the _n variants take a length and refuse a NUL byte inside it (a NUL would end a C string
 *     early and make "12\0garbage" read as 12).
 * Returns 0, VL_EFORMAT (not a number of that kind) or VL_ERANGE (a number out of range). No
 * message: the caller knows the file, line and field and says so. Sums and products of counts
 * go through num_add_i64 / num_mul_i64. Pure functions, thread-safe.
 */
#ifndef VL_NUM_H
#define VL_NUM_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>

int num_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
int num_int(const char *s, int lo, int hi, int *out);
int num_long(const char *s, long lo, long hi, long *out);
/* hex: also accept "0x"/"0X" followed by hex digits. */
int num_u64(const char *s, uint64_t hi, int hex, uint64_t *out);
int num_f64(const char *s, double lo, double hi, double *out);

/* The same on s[0..n): VL_EFORMAT when a NUL byte lies inside. */
int num_i64_n(const char *s, size_t n, int64_t lo, int64_t hi, int64_t *out);
int num_u64_n(const char *s, size_t n, uint64_t hi, int hex, uint64_t *out);
int num_f64_n(const char *s, size_t n, double lo, double hi, double *out);

/* Decimal digits at the start of s (at least one) into *out ≤ hi, *end (if not NULL) just
 * after them: for numbers embedded in text ("model.layers.12.mlp"). */
int num_digits(const char *s, const char **end, int64_t hi, int64_t *out);

/* A double that must hold a whole number in [lo, hi] (a count or seed stored as a double):
 * VL_ERANGE for NaN, ±Inf, a fraction or out of range, checked before the conversion (casting
 * such a double to an integer type is undefined behaviour). */
int num_whole(double d, int64_t lo, int64_t hi, int64_t *out);

/* *out = a + b, a · b; VL_ERANGE (and *out untouched) when the result overflows int64. */
int num_add_i64(int64_t a, int64_t b, int64_t *out);
int num_mul_i64(int64_t a, int64_t b, int64_t *out);

/* The shortest %.15g/%.16g/%.17g spelling of a finite double that reads back exactly (0.1,
 * not 0.10000000000000001): canonical texts and cache keys. */
void num_fmt_f64(char buf[32], double v);

/* "not a number" / "out of range" for a num_* code; "" for 0. */
const char *num_why(int rc);

#endif
