/* io/tok_int.h — private to the tokenizer module (tok.c, tok_enc.c, tok_bpe.c, tok_re.c).
 *
 * tok.c loads tokenizer.json into the struct below; tok_enc.c runs the encode pipeline
 * (UTF-8 check, added tokens, NFC, pre-token splits) and decode; tok_bpe.c merges one pre-token
 * by rank; tok_re.c is the only file that sees PCRE2.
 */
#ifndef VL_TOK_INT_H
#define VL_TOK_INT_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "tok.h"

/* ---- growable id vector ---------------------------------------------------------------- */

typedef struct {
    int32_t *v;
    size_t n, cap;
} tok_ids;

int tok_ids_push(tok_ids *a, int32_t id); /* 0 or VL_ENOMEM */

/* ---- string → id map (open addressing; keys borrowed from the tokenizer's storage) ------ */

typedef struct {
    const char **key;  /* [cap], NULL = empty */
    uint32_t *klen;    /* [cap] key lengths in bytes */
    int32_t *val;      /* [cap] */
    size_t cap, n;     /* cap is a power of two, n <= cap/2 */
} tok_strmap;

int tok_strmap_init(tok_strmap *m, size_t expect);
void tok_strmap_deinit(tok_strmap *m);
/* Insert or overwrite (key must outlive the map). Returns 0 or VL_ENOMEM. */
int tok_strmap_put(tok_strmap *m, const char *key, size_t len, int32_t val);
/* The value of key, or -1. */
int32_t tok_strmap_get(const tok_strmap *m, const char *key, size_t len);

/* ---- merge table: (left id, right id) → (rank, merged id) ------------------------------ */

typedef struct {
    uint64_t *key;   /* [cap] (left << 32 | right) + 1; 0 = empty */
    int32_t *rank;   /* [cap] */
    int32_t *merged; /* [cap] */
    size_t cap, n;
} tok_pairmap;

int tok_pairmap_init(tok_pairmap *m, size_t expect);
void tok_pairmap_deinit(tok_pairmap *m);
/* Insert or overwrite: a later duplicate merge replaces the earlier one, as in HF. */
int tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged);
/* 1 and *rank, *merged if the pair merges, else 0. */
int tok_pairmap_get(const tok_pairmap *m, int32_t a, int32_t b, int32_t *rank, int32_t *merged);

/* ---- BPE with a word cache (tok_bpe.c) ------------------------------------------------- */

/* Direct-mapped cache of recently seen pre-tokens: slot = hash(bytes) mod TOK_CACHE_SLOTS, a miss
 * overwrites the slot. Words longer than TOK_CACHE_KEY bytes are not cached. Fixed size and
 * content-addressed, so results never depend on what was cached. */
enum { TOK_CACHE_SLOTS = 8192, TOK_CACHE_KEY = 24 };

typedef struct {
    uint8_t *klen;   /* [SLOTS] key length, 0 = empty slot */
    uint8_t *nids;   /* [SLOTS] */
    uint8_t *keys;   /* [SLOTS * KEY] */
    int32_t *ids;    /* [SLOTS * KEY] (a word of k bytes has at most k tokens) */
} tok_cache;

/* Scratch for one word's merge (grown on demand, reused between words). */
typedef struct {
    int32_t *sym;     /* [cap] token id per symbol */
    int32_t *prev, *next; /* [cap] linked list over symbols; -1 = none */
    uint8_t *alive;   /* [cap] 0 once merged into its left neighbour */
    uint64_t *heap;   /* [hcap] (rank << 32 | pos), min-heap */
    size_t cap, hcap;
    char *mapped;     /* [mcap] byte-level string of the word (ignore_merges lookup) */
    size_t mcap;
} tok_bpe_scratch;

/* ---- pre-token regex (tok_re.c; wraps PCRE2) ------------------------------------------- */

typedef struct tok_re tok_re;

/* Compile PATTERN (from tokenizer.json; LITERAL: a Split "String" pattern). \s and \S are
 * rewritten to Oniguruma's white space (adds U+0085). On failure the message is the PCRE2 error
 * with its offset, without the file name. */
int tok_re_new(const char *pattern, int literal, tok_re **out, vl_err *err);
void tok_re_free(tok_re *re);
/* First match in s[0, len) at or after START: returns 1 and [*ms, *me), 0 if none, or a negative
 * VL_EEXTERN on a matching error (resource limits). s must be valid UTF-8. */
int tok_re_find(tok_re *re, const char *s, size_t len, size_t start, size_t *ms, size_t *me,
                vl_err *err);

/* ---- the tokenizer --------------------------------------------------------------------- */

typedef struct {
    char *content;   /* as in the file; for normalized tokens the match string is `match` */
    char *match;     /* string searched for (NFC of content when normalized and NFC is on) */
    size_t match_len;
    int32_t id;
    int single_word, lstrip, rstrip, normalized, special;
} tok_added;

struct tok_tokenizer {
    char *path;               /* tokenizer.json path, for messages */
    size_t n_ids;             /* max id + 1 (model vocab and added tokens) */
    size_t n_model;           /* entries in model.vocab (HF's model vocab size) */
    size_t n_model_ids;       /* largest model vocab id + 1: model_str entries owned */
    char **model_str;         /* [n_ids] model vocab string of each id (owned), NULL if none */
    const char **id_str;      /* [n_ids] what id_to_token gives: added content, else model_str */
    uint8_t *dec;             /* decoded bytes of every id, concatenated */
    size_t *dec_off;          /* [n_ids + 1] id i decodes to dec[dec_off[i], dec_off[i+1]) */
    tok_strmap vocab;         /* model vocab: token string → id */
    tok_strmap added_map;     /* added token content → id */
    int32_t byte_id[256];     /* id of the one-character token of each byte, -1 if absent */
    tok_pairmap merges;
    int ignore_merges;        /* a word already in the vocab is one token (Llama-3 style) */
    tok_added *added;         /* [n_added], sorted by match length, longest first */
    size_t n_added;
    uint8_t added_first[2][256]; /* [normalized][byte]: some added token starts with byte */
    size_t n_added_kind[2];      /* how many added tokens have normalized = 0 / 1 */
    int nfc;                  /* normalizer NFC */
    tok_re **splits;          /* [n_splits] applied in turn, behaviour Isolated */
    size_t n_splits;
    int32_t eos;
    /* mutable state used by tok_encode (hence one tokenizer per thread) */
    tok_cache cache;
    tok_bpe_scratch bpe;
    tok_ids out;
};

/* The GPT-2 byte → unicode code point map (bytes_to_unicode of GPT-2's encoder.py): printable
 * Latin-1 bytes map to themselves, the other 68 to 256, 257, ... in byte order. */
uint32_t tok_byte_to_cp(uint8_t b);

/* Encode one pre-token (raw bytes) and append its ids to out. */
int tok_bpe_word(tok_tokenizer *t, const uint8_t *w, size_t len, tok_ids *out, vl_err *err);
int tok_cache_init(tok_cache *c);
void tok_cache_deinit(tok_cache *c);
void tok_bpe_scratch_deinit(tok_bpe_scratch *s);

/* NFC of s[0, len) into a vl_malloc'd buffer (*out, *out_len). Returns 0 or an error. */
int tok_nfc(const char *s, size_t len, char **out, size_t *out_len, vl_err *err);

#endif
