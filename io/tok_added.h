/* io/tok_added.h — which ids are added tokens (an addition to io/tok.h, kept in its own file
 * by the calibration-set work; it belongs in tok.h and can move there unchanged).
 *
 * Added tokens (tokenizer.json "added_tokens": <|endoftext|> and the like) are cut out of text
 * before BPE, so they never arise from ordinary text; synthetic calibration noise excludes
 * them. Read-only on the tokenizer: safe alongside other readers, not alongside tok_encode.
 */
#ifndef VL_TOK_ADDED_H
#define VL_TOK_ADDED_H

#include "tok.h"

/* 1 if ID is one of the tokenizer's added tokens (special or not), 0 otherwise (also for ids
 * out of range). */
int tok_is_added(const tok_tokenizer *t, int32_t id);

#endif
