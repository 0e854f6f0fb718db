/* core/utf8.h — UTF-8: one validator (RFC 3629 well-formedness, as Rust's str), one decoder
 * and one encoder, for the corpus reader, the tokenizer and the calibration text generators.
 * Pure functions, no state.
 */
#ifndef VL_UTF8_H
#define VL_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 prefix of s[0, len) (== len when all valid: no overlongs,
 * surrogates, code points above U+10FFFF or sequences cut short by the end). */
size_t utf8_valid_prefix(const uint8_t *s, size_t len);

/* Decode one code point at s (valid UTF-8 assumed); returns its byte length (1..4). */
int utf8_next(const uint8_t *s, uint32_t *cp);

/* Encode cp (≤ U+10FFFF, not a surrogate) into buf (4 bytes room); returns the length. */
int utf8_put(uint32_t cp, char *buf);

#endif
