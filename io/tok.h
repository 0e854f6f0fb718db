/* io/tok.h — byte-level BPE tokenizer read from a Hugging Face tokenizer.json.
 *
 * Produces exactly the ids of the Hugging Face `tokenizers` library (encode with
 * add_special_tokens=False, which for the supported post-processors is the same as True) for the
 * byte-level BPE family (GPT-2, Qwen2, Llama-3 style). The pipeline, in HF's order:
 *   1. added tokens with normalized=false are cut out of the raw text (leftmost, longest first;
 *      flags single_word, lstrip, rstrip honoured);
 *   2. each remaining piece is normalized (NFC or nothing);
 *   3. added tokens with normalized=true are cut out of the normalized pieces;
 *   4. pre-tokenizer: each Split regex (behaviour Isolated) in turn, then ByteLevel (GPT-2
 *      byte→unicode map; with use_regex=true it first splits with the GPT-2 pattern);
 *   5. BPE by merge rank on each pre-token.
 *
 * Supported tokenizer.json components (anything else is an error naming the component):
 *   model        BPE (vocab; merges as "a b" strings or ["a","b"] pairs; dropout null;
 *                no continuing_subword_prefix / end_of_word_suffix; byte_fallback false;
 *                ignore_merges true or false)
 *   normalizer   null, NFC, or a Sequence of those
 *   pre_tokenizer ByteLevel, or a Sequence of Split(Regex or String, Isolated, invert false)
 *                ending in one ByteLevel (add_prefix_space false)
 *   decoder      ByteLevel
 *   post_processor null, ByteLevel, or a TemplateProcessing that adds no special token
 *   truncation   null
 * Split regexes are compiled with PCRE2 (UTF, UCP; JIT when available). `\s`/`\S` are given
 * Oniguruma's meaning (HF's regex engine), which also counts U+0085 as white space.
 *
 * Not supported: WordPiece/Unigram models, byte_fallback (SentencePiece-style BPE), NFKC and
 * the other normalizers, post-processors that add BOS/EOS.
 *
 * Thread-safety: a tok_tokenizer holds a cache of recently seen words and scratch buffers, so
 * tok_encode mutates it: use one tokenizer per thread (tok_open it once per thread). All other
 * functions only read and may run concurrently with each other (not with tok_encode).
 */
#ifndef VL_TOK_H
#define VL_TOK_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"

typedef struct tok_tokenizer tok_tokenizer;

/* Open PATH: a tokenizer.json, or a model directory holding one. In a directory,
 * tokenizer_config.json (if present) names the eos token. On failure *out is NULL and err is
 * one line naming the file and the problem, e.g.
 * `m/tokenizer.json: pre_tokenizer type "Metaspace" not supported`. Free with tok_close. */
int tok_open(const char *path, tok_tokenizer **out, vl_err *err);

/* Free everything; NULL is a no-op. */
void tok_close(tok_tokenizer *t);

/* One more than the largest id (model vocab and added tokens). */
size_t tok_vocab_size(const tok_tokenizer *t);

/* The token string of ID as stored in tokenizer.json (byte-level alphabet, e.g. "Ġthe"), or NULL
 * when ID is unused or out of range. Valid until tok_close. */
const char *tok_id_to_token(const tok_tokenizer *t, int32_t id);

/* The id of token string S (model vocab or added token), or -1. */
int32_t tok_token_to_id(const tok_tokenizer *t, const char *s);

/* The end-of-sequence id: tokenizer_config.json's eos_token, else the only special added token,
 * else -1. */
int32_t tok_eos_id(const tok_tokenizer *t);

/* 1 if ID is one of the tokenizer's added tokens (tokenizer.json "added_tokens", special or
 * not: <|endoftext|> and the like), 0 otherwise (also for ids out of range). Added tokens are
 * cut out of text before BPE, so they never arise from ordinary text; synthetic calibration
 * noise excludes them. Read-only: safe alongside other readers, not alongside tok_encode. */
int tok_is_added(const tok_tokenizer *t, int32_t id);

/* Encode LEN bytes of TEXT (UTF-8; need not be NUL-terminated; may hold NUL bytes). On success
 * *ids is a vl_malloc'd array of *n ids (caller vl_free's it; NULL when *n == 0). Invalid UTF-8
 * is VL_EFORMAT "invalid UTF-8 at byte offset K" and nothing is returned. Not thread-safe on
 * the same tokenizer (see above). */
int tok_encode(tok_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n,
               vl_err *err);

/* Decode N ids to bytes as HF's ByteLevel decoder does before its lossy UTF-8 conversion: each
 * token's characters mapped back to bytes (a token with a character outside the byte alphabet,
 * e.g. most added tokens, is copied as is). *text is vl_malloc'd, NUL-terminated, *len bytes
 * long (not counting the NUL); it may be invalid UTF-8 if the ids cut a character. An unknown id
 * is VL_ERANGE. decode(encode(x)) == NFC(x) for text without added-token strings. */
int tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len,
               vl_err *err);

#endif
