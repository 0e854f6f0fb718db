/* io/tok_re.c — the pre-tokenizer's Split regex, the one file that includes pcre2.h.
 *
 * Hugging Face tokenizers runs Split patterns with Oniguruma. PCRE2 with UTF + UCP agrees on
 * \p{..} classes, (?i:) case folding, lookahead and leftmost-first alternation, but not on \s:
 * Oniguruma's Unicode \s is U+0009–U+000D, U+0085 and the Z categories, while PCRE2's also holds
 * U+180E and lacks U+0085 (both checked against the reference). So \s and \S are spelled out
 * before compiling: outside a class \s → [\x{9}-\x{D}\x{85}\p{Z}] and \S → its negation; inside
 * a class \s → \x{9}-\x{D}\x{85}\p{Z} (a \S inside a class is kept; no known tokenizer uses it).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tok_int.h"

#include <pcre2.h>
#include <string.h>

struct tok_re {
    pcre2_code *code;
    pcre2_match_data *md;
    int jit;  /* pcre2_jit_compile succeeded: use pcre2_jit_match */
};

#define ONIG_SPACE "\\x{9}-\\x{D}\\x{85}\\p{Z}"

/* Rewrite \s / \S as described above. Returns a vl_malloc'd string or NULL. */
static char *onig_space(const char *p)
{
    size_t n = strlen(p);
    char *o = vl_malloc(16 * n + 1); /* each 2-byte escape grows to at most 24 bytes */
    if (!o)
        return NULL;
    size_t k = 0;
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char d = p[i + 1];
            const char *rep = NULL;
            if (d == 's')
                rep = in_class ? ONIG_SPACE : "[" ONIG_SPACE "]";
            else if (d == 'S' && !in_class)
                rep = "[^" ONIG_SPACE "]";
            if (rep) {
                memcpy(o + k, rep, strlen(rep));
                k += strlen(rep);
            } else {
                o[k++] = c;
                o[k++] = d;
            }
            i++;
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = 1;
            o[k++] = c;
            /* a ']' right after '[' or '[^' is a literal, not the end of the class */
            if (i + 1 < n && p[i + 1] == '^')
                o[k++] = p[++i];
            if (i + 1 < n && p[i + 1] == ']')
                o[k++] = p[++i];
            continue;
        }
        if (c == ']' && in_class)
            in_class = 0;
        o[k++] = c;
    }
    o[k] = 0;
    return o;
}

int tok_re_new(const char *pattern, int literal, tok_re **out, vl_err *err)
{
    *out = NULL;
    tok_re *re = vl_calloc(1, sizeof *re);
    char *src = literal ? vl_strdup(pattern) : onig_space(pattern);
    if (!re || !src) {
        vl_free(re);
        vl_free(src);
        return vl_errf(err, VL_ENOMEM, "out of memory");
    }
    int ec;
    PCRE2_SIZE eo;
    uint32_t opts = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0);
    re->code = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED, opts, &ec, &eo, NULL);
    vl_free(src);
    if (!re->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        vl_free(re);
        return vl_errf(err, VL_ECONFIG, "regex does not compile: %s at offset %zu", (char *)msg,
                       (size_t)eo);
    }
    /* JIT is an optimisation only: without it (unsupported CPU or build) pcre2_match is used */
    re->jit = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;
    re->md = pcre2_match_data_create_from_pattern(re->code, NULL);
    if (!re->md) {
        tok_re_free(re);
        return vl_errf(err, VL_ENOMEM, "out of memory");
    }
    *out = re;
    return 0;
}

void tok_re_free(tok_re *re)
{
    if (!re)
        return;
    pcre2_match_data_free(re->md);
    pcre2_code_free(re->code);
    vl_free(re);
}

int tok_re_find(tok_re *re, const char *s, size_t len, size_t start, size_t *ms, size_t *me,
                vl_err *err)
{
    /* the caller validated the whole text once, so PCRE2's per-call UTF check is skipped */
    int rc = re->jit ? pcre2_jit_match(re->code, (PCRE2_SPTR)s, len, start, 0, re->md, NULL)
                     : pcre2_match(re->code, (PCRE2_SPTR)s, len, start, PCRE2_NO_UTF_CHECK,
                                   re->md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        return vl_errf(err, VL_EEXTERN, "pre-tokenizer regex failed: %s", (char *)msg);
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->md);
    *ms = ov[0];
    *me = ov[1];
    return 1;
}
