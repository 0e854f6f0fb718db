/* io/tok_enc.c — tok_encode and tok_decode: the pipeline of Hugging Face tokenizers'
 * Tokenizer::encode for byte-level BPE (tokenizer/mod.rs, added_vocabulary.rs, pattern.rs).
 *
 *   raw text ─ split on non-normalized added tokens ─► gaps ─ NFC ─ split on normalized added
 *   tokens ─► gaps ─ Split regex 1..k (Isolated: matches and the text between them are pieces,
 *   empty pieces dropped) ─► pre-tokens ─ BPE on the bytes ─► ids
 *
 * Added-token matching mirrors HF's AddedVocabulary::find_matches: leftmost-longest matches,
 * scanning resumes at the end of the match even when single_word discards it, lstrip takes the
 * white space before the match (not before the previous split), rstrip the white space after.
 * White space there is Rust's \s (Unicode White_Space), a word character Rust's \w.
 */
#include "tok_int.h"

#include "../core/utf8.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ======================================================================================== */
/* NFC                                                                                      */
/* ======================================================================================== */

int tok_nfc(const char *s, size_t len, char **out, size_t *out_len, vl_err *err)
{
    *out = NULL;
    *out_len = 0;
    if (len > (size_t)(SIZE_MAX / 8))
        return vl_errf(err, VL_ENOMEM, "text too long for NFC (%zu bytes)", len);
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &dst,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n < 0)
        return vl_errf(err, n == UTF8PROC_ERROR_NOMEM ? VL_ENOMEM : VL_EEXTERN,
                       "NFC normalization failed: %s", utf8proc_errmsg(n));
    /* copied so that every buffer of the module is released with vl_free */
    *out = vl_malloc((size_t)n + 1);
    if (!*out) {
        free(dst);
        return vl_errf(err, VL_ENOMEM, "out of memory");
    }
    memcpy(*out, dst, (size_t)n + 1);
    *out_len = (size_t)n;
    free(dst);
    return 0;
}

/* Code points below U+0300 are NFC-stable and nothing composes with them unless a combining
 * mark (U+0300 and up) follows, so such text is already NFC. */
static int needs_nfc(const uint8_t *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] >= 0xCC) /* lead bytes of U+0300 and above */
            return 1;
    return 0;
}

/* ======================================================================================== */
/* Added tokens                                                                             */
/* ======================================================================================== */

static int is_white_space(uint32_t c) /* Unicode White_Space, Rust's \s */
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

static int is_word_char(uint32_t c) /* Rust's \w: letters, marks, Nd, Nl, Pc */
{
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC:
        return 1;
    default:
        return c == 0x200C || c == 0x200D; /* Join_Control */
    }
}

/* Start of the code point that ends at s[end) (end > 0). */
static size_t prev_char(const uint8_t *s, size_t end)
{
    size_t i = end - 1;
    while (i > 0 && (s[i] & 0xC0) == 0x80)
        i--;
    return i;
}

/* Leftmost-longest added token of the given kind in s[from, len): t->added is sorted longest
 * first, so the first token matching at the leftmost position is the longest there. */
static const tok_added *find_added(const tok_tokenizer *t, int normalized, const char *s,
                                   size_t len, size_t from, size_t *ms)
{
    const uint8_t *first = t->added_first[normalized];
    for (size_t i = from; i < len; i++) {
        if (!first[(uint8_t)s[i]])
            continue;
        for (size_t k = 0; k < t->n_added; k++) {
            const tok_added *a = &t->added[k];
            if (a->normalized == normalized && a->match_len <= len - i &&
                s[i] == a->match[0] && memcmp(s + i, a->match, a->match_len) == 0) {
                *ms = i;
                return a;
            }
        }
    }
    return NULL;
}

typedef int (*gap_fn)(tok_tokenizer *t, const char *s, size_t len, vl_err *err);

static int split_added(tok_tokenizer *t, int normalized, const char *s, size_t len, gap_fn gap,
                       vl_err *err)
{
    if (t->n_added_kind[normalized] == 0)
        return gap(t, s, len, err);
    const uint8_t *u = (const uint8_t *)s;
    size_t done = 0, from = 0, ms;
    const tok_added *a;
    int rc;
    while (from < len && (a = find_added(t, normalized, s, len, from, &ms))) {
        size_t start = ms, stop = ms + a->match_len;
        uint32_t c;
        from = stop;
        if (a->single_word) {
            int word_before = start > 0 && (utf8_next(u + prev_char(u, start), &c), is_word_char(c));
            int word_after = stop < len && (utf8_next(u + stop, &c), is_word_char(c));
            if (word_before || word_after)
                continue;
        }
        if (a->lstrip)
            while (start > done && (utf8_next(u + prev_char(u, start), &c), is_white_space(c)))
                start = prev_char(u, start);
        if (a->rstrip)
            while (stop < len && is_white_space((utf8_next(u + stop, &c), c)))
                stop += (size_t)utf8_next(u + stop, &c);
        if (start < done) /* a previous rstrip ate into this match (HF would overlap) */
            start = done;
        if (start > done && (rc = gap(t, s + done, start - done, err)) < 0)
            return rc;
        if (tok_ids_push(&t->out, a->id) < 0)
            return vl_errf(err, VL_ENOMEM, "out of memory");
        done = stop;
    }
    return done < len ? gap(t, s + done, len - done, err) : 0;
}

/* ======================================================================================== */
/* Pre-tokenization                                                                         */
/* ======================================================================================== */

/* Split s with regex LEVEL (Isolated), recursing into the next level; past the last, BPE. */
static int pretok(tok_tokenizer *t, size_t level, const char *s, size_t len, vl_err *err)
{
    if (len == 0)
        return 0;
    if (level == t->n_splits)
        return tok_bpe_word(t, (const uint8_t *)s, len, &t->out, err);
    size_t pos = 0, done = 0, ms, me;
    int rc;
    while (pos < len && (rc = tok_re_find(t->splits[level], s, len, pos, &ms, &me, err)) != 0) {
        if (rc < 0)
            return rc;
        if (me == ms) { /* empty match: no piece; resume one character later, as Oniguruma */
            uint32_t c;
            pos = ms + (size_t)utf8_next((const uint8_t *)s + ms, &c);
            continue;
        }
        if (ms > done && (rc = pretok(t, level + 1, s + done, ms - done, err)) < 0)
            return rc;
        if ((rc = pretok(t, level + 1, s + ms, me - ms, err)) < 0)
            return rc;
        done = pos = me;
    }
    return done < len ? pretok(t, level + 1, s + done, len - done, err) : 0;
}

static int gap_pretok(tok_tokenizer *t, const char *s, size_t len, vl_err *err)
{
    return pretok(t, 0, s, len, err);
}

/* A gap between non-normalized added tokens: normalize, then cut normalized added tokens. */
static int gap_normalize(tok_tokenizer *t, const char *s, size_t len, vl_err *err)
{
    if (!t->nfc || !needs_nfc((const uint8_t *)s, len))
        return split_added(t, 1, s, len, gap_pretok, err);
    char *nf;
    size_t nlen;
    int rc = tok_nfc(s, len, &nf, &nlen, err);
    if (rc < 0)
        return rc;
    rc = split_added(t, 1, nf, nlen, gap_pretok, err);
    vl_free(nf);
    return rc;
}

/* ======================================================================================== */
/* Public                                                                                   */
/* ======================================================================================== */

int tok_encode(tok_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n,
               vl_err *err)
{
    *ids = NULL;
    *n = 0;
    size_t ok = utf8_valid_prefix((const uint8_t *)text, len);
    if (ok < len)
        return vl_errf(err, VL_EFORMAT, "invalid UTF-8 at byte offset %zu (byte 0x%02x)", ok,
                       (unsigned)(uint8_t)text[ok]);
    t->out.n = 0;
    int rc = split_added(t, 0, text, len, gap_normalize, err);
    if (rc < 0)
        return rc;
    if (t->out.n == 0)
        return 0;
    *ids = vl_malloc(t->out.n * sizeof **ids);
    if (!*ids)
        return vl_errf(err, VL_ENOMEM, "out of memory (%zu ids)", t->out.n);
    memcpy(*ids, t->out.v, t->out.n * sizeof **ids);
    *n = t->out.n;
    return 0;
}

int tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len,
               vl_err *err)
{
    *text = NULL;
    *len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || (size_t)id >= t->n_ids || !t->id_str[id])
            return vl_errf(err, VL_ERANGE, "token id %ld (position %zu) is not in the vocabulary "
                           "of %zu ids", (long)id, i, t->n_ids);
        total += t->dec_off[id + 1] - t->dec_off[id];
    }
    char *o = vl_malloc(total + 1);
    if (!o)
        return vl_errf(err, VL_ENOMEM, "out of memory (%zu bytes)", total);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t a = t->dec_off[ids[i]], b = t->dec_off[ids[i] + 1];
        memcpy(o + k, t->dec + a, b - a);
        k += b - a;
    }
    o[k] = 0;
    *text = o;
    *len = k;
    return 0;
}
