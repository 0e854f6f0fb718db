/* io/tok.c — tok_open: tokenizer.json → a validated tok_tokenizer (the one file using jansson),
 * plus the read-only queries and tok_close.
 *
 * Field meanings follow Hugging Face tokenizers' serialization (models/bpe/serialization.rs,
 * tokenizer/serialization.rs, added_vocabulary.rs). Every id read from the file is range-checked,
 * every merge must name vocab tokens whose concatenation is a vocab token (HF refuses such a file
 * too), and every byte that can occur in UTF-8 text must have its one-character token, so that
 * encoding can never meet an unknown symbol.
 */
#define _POSIX_C_SOURCE 200809L
#include "tok.h"
#include "tok_int.h"

#include "../core/utf8.h"
#include "../core/vfile.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>

#define TOK_MAX_FILE ((size_t)1 << 30) /* tokenizer.json bytes */
#define MAX_IDS (1 << 26) /* far above any real vocabulary; bounds allocations from the file */

/* The GPT-2 pattern ByteLevel(use_regex=true) splits with (HF pre_tokenizers/byte_level.rs). */
static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ======================================================================================== */
/* JSON helpers                                                                             */
/* ======================================================================================== */

/* A boolean field: absent or null → def; anything but a boolean → -1. */
static int jbool(const json_t *o, const char *key, int def)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return def;
    return json_is_boolean(v) ? json_is_true(v) : -1;
}

/* The "type" of a component, or NULL. */
static const char *jtype(const json_t *o)
{
    return json_string_value(json_object_get(o, "type"));
}

static int bad_type(vl_err *err, const tok_tokenizer *t, const char *what, const json_t *o)
{
    const char *ty = jtype(o);
    if (!ty)
        return vl_errf(err, VL_EFORMAT, "%s: %s has no \"type\"", t->path, what);
    return vl_errf(err, VL_ECONFIG, "%s: %s type \"%s\" not supported", t->path, what, ty);
}

/* ======================================================================================== */
/* Components                                                                               */
/* ======================================================================================== */

/* model.vocab → model_str[] and the vocab map; n_ids = largest id + 1 for now. */
static int load_vocab(tok_tokenizer *t, const json_t *vocab, vl_err *err)
{
    if (!json_is_object(vocab))
        return vl_errf(err, VL_EFORMAT, "%s: model.vocab is missing or not an object", t->path);
    const char *key;
    json_t *v;
    size_t max_id = 0;
    json_object_foreach((json_t *)vocab, key, v) {
        json_int_t id = json_integer_value(v);
        if (!json_is_integer(v) || id < 0 || id >= MAX_IDS)
            return vl_errf(err, VL_ERANGE, "%s: model.vocab[\"%s\"]: id is not an integer in "
                           "[0, %d)", t->path, key, MAX_IDS);
        if ((size_t)id > max_id)
            max_id = (size_t)id;
    }
    t->n_ids = json_object_size(vocab) ? max_id + 1 : 0;
    t->n_model = json_object_size(vocab);
    t->model_str = vl_calloc(t->n_ids + 1, sizeof *t->model_str);
    t->n_model_ids = t->model_str ? t->n_ids : 0;
    if (!t->model_str || tok_strmap_init(&t->vocab, t->n_model) < 0)
        return vl_errf(err, VL_ENOMEM, "out of memory (%zu ids)", t->n_ids);
    json_object_foreach((json_t *)vocab, key, v) {
        size_t id = (size_t)json_integer_value(v);
        if (t->model_str[id])
            return vl_errf(err, VL_EFORMAT, "%s: model.vocab: id %zu is given to both \"%s\" and "
                           "\"%s\"", t->path, id, t->model_str[id], key);
        if (!(t->model_str[id] = vl_strdup(key)) ||
            tok_strmap_put(&t->vocab, t->model_str[id], strlen(key), (int32_t)id) < 0)
            return vl_errf(err, VL_ENOMEM, "out of memory");
    }
    return 0;
}

/* The id HF gives an added token: AddedVocabulary::add_tokens ignores the file's id (it only
 * warns on a mismatch) and takes the content's existing id (added token, then model vocab), else
 * the next free one: max added id + 1, or the model vocab's entry count. */
static int32_t hf_added_id(const tok_tokenizer *t, const char *content, int32_t max_added)
{
    int32_t id = tok_strmap_get(&t->added_map, content, strlen(content));
    if (id < 0)
        id = tok_strmap_get(&t->vocab, content, strlen(content));
    if (id >= 0)
        return id;
    if (max_added < 0)
        return (int32_t)t->n_model;
    return ((size_t)max_added >= t->n_model || t->n_model == 0) ? max_added + 1
                                                                : (int32_t)t->n_model;
}

static int load_added(tok_tokenizer *t, const json_t *arr, vl_err *err)
{
    if (tok_strmap_init(&t->added_map, json_array_size(arr)) < 0)
        return vl_errf(err, VL_ENOMEM, "out of memory");
    if (!arr || json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return vl_errf(err, VL_EFORMAT, "%s: added_tokens is not an array", t->path);
    t->added = vl_calloc(json_array_size(arr) + 1, sizeof *t->added);
    if (!t->added)
        return vl_errf(err, VL_ENOMEM, "out of memory");
    int32_t max_added = -1;
    size_t i;
    json_t *a;
    json_array_foreach(arr, i, a) {
        json_t *jid = json_object_get(a, "id"), *jc = json_object_get(a, "content");
        json_int_t fid = json_integer_value(jid);
        if (!json_is_integer(jid) || fid < 0 || fid >= MAX_IDS || !json_is_string(jc))
            return vl_errf(err, VL_EFORMAT, "%s: added_tokens[%zu]: needs an integer id in "
                           "[0, %d) and a string content", t->path, i, MAX_IDS);
        tok_added x = {0};
        x.special = jbool(a, "special", 0);
        x.single_word = jbool(a, "single_word", 0);
        x.lstrip = jbool(a, "lstrip", 0);
        x.rstrip = jbool(a, "rstrip", 0);
        x.normalized = jbool(a, "normalized", 1);
        if (x.special < 0 || x.single_word < 0 || x.lstrip < 0 || x.rstrip < 0 ||
            x.normalized < 0)
            return vl_errf(err, VL_EFORMAT, "%s: added_tokens[%zu]: a flag is not a boolean",
                           t->path, i);
        size_t clen = json_string_length(jc);
        const char *c = json_string_value(jc);
        if (clen == 0)
            continue; /* HF ignores empty added tokens */
        if (memchr(c, 0, clen))
            return vl_errf(err, VL_EFORMAT, "%s: added_tokens[%zu]: content holds a NUL",
                           t->path, i);
        x.id = hf_added_id(t, c, max_added);
        if (x.id >= MAX_IDS)
            return vl_errf(err, VL_ERANGE, "%s: added_tokens[%zu]: too many ids", t->path, i);
        size_t k = 0; /* a repeated content updates the earlier entry's flags, as in HF */
        while (k < t->n_added && strcmp(t->added[k].content, c) != 0)
            k++;
        if (k == t->n_added) {
            if (!(x.content = vl_strdup(c)) ||
                tok_strmap_put(&t->added_map, x.content, clen, x.id) < 0) {
                vl_free(x.content);
                return vl_errf(err, VL_ENOMEM, "out of memory");
            }
            t->n_added++;
        } else
            x.content = t->added[k].content;
        t->added[k] = x;
        if (x.id > max_added)
            max_added = x.id;
        if ((size_t)x.id >= t->n_ids)
            t->n_ids = (size_t)x.id + 1;
    }
    return 0;
}

/* After the normalizer is known: the string each added token is searched as. */
static int prepare_added(tok_tokenizer *t, vl_err *err)
{
    for (size_t i = 0; i < t->n_added; i++) {
        tok_added *a = &t->added[i];
        int rc;
        if (a->normalized && t->nfc) {
            if ((rc = tok_nfc(a->content, strlen(a->content), &a->match, &a->match_len, err)))
                return vl_errctx(err, rc, "%s: added token \"%s\"", t->path, a->content);
        } else if (!(a->match = vl_strdup(a->content)))
            return vl_errf(err, VL_ENOMEM, "out of memory");
        a->match_len = strlen(a->match);
    }
    /* longest first (stable insertion sort: few tokens, ties keep file order) */
    for (size_t i = 1; i < t->n_added; i++) {
        tok_added x = t->added[i];
        size_t j = i;
        for (; j > 0 && t->added[j - 1].match_len < x.match_len; j--)
            t->added[j] = t->added[j - 1];
        t->added[j] = x;
    }
    for (size_t i = 0; i < t->n_added; i++) {
        const tok_added *a = &t->added[i];
        t->added_first[a->normalized][(uint8_t)a->match[0]] = 1;
        t->n_added_kind[a->normalized]++;
    }
    return 0;
}

static int load_merges(tok_tokenizer *t, const json_t *merges, vl_err *err)
{
    if (!json_is_array(merges))
        return vl_errf(err, VL_EFORMAT, "%s: model.merges is not an array", t->path);
    size_t n = json_array_size(merges);
    if (n >= INT32_MAX || tok_pairmap_init(&t->merges, n) < 0)
        return vl_errf(err, VL_ENOMEM, "out of memory (%zu merges)", n);
    char *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const json_t *m = json_array_get(merges, i);
        const char *a, *b;
        size_t la, lb;
        if (json_is_string(m)) { /* "a b": exactly one space, as HF requires */
            a = json_string_value(m);
            const char *sp = strchr(a, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                rc = vl_errf(err, VL_EFORMAT, "%s: model.merges[%zu] \"%s\" is not two tokens "
                             "separated by one space", t->path, i, a);
                break;
            }
            la = (size_t)(sp - a), b = sp + 1, lb = strlen(b);
        } else if (json_is_array(m) && json_array_size(m) == 2 &&
                   json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
            a = json_string_value(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
            la = strlen(a), lb = strlen(b);
        } else {
            rc = vl_errf(err, VL_EFORMAT, "%s: model.merges[%zu] is neither \"a b\" nor "
                         "[\"a\", \"b\"]", t->path, i);
            break;
        }
        if (la + lb + 1 > cap) {
            cap = 2 * (la + lb + 1);
            char *nb = vl_realloc(buf, cap);
            if (!nb) {
                rc = vl_errf(err, VL_ENOMEM, "out of memory");
                break;
            }
            buf = nb;
        }
        memcpy(buf, a, la);
        memcpy(buf + la, b, lb);
        int32_t ia = tok_strmap_get(&t->vocab, a, la), ib = tok_strmap_get(&t->vocab, b, lb);
        int32_t iab = tok_strmap_get(&t->vocab, buf, la + lb);
        if (ia < 0 || ib < 0 || iab < 0) {
            const char *what = ia < 0 ? a : ib < 0 ? b : buf;
            int wl = (int)(ia < 0 ? la : ib < 0 ? lb : la + lb);
            rc = vl_errf(err, VL_EFORMAT, "%s: model.merges[%zu]: token \"%.*s\" is not in the "
                         "vocab", t->path, i, wl, what);
            break;
        }
        if (tok_pairmap_put(&t->merges, ia, ib, (int32_t)i, iab) < 0)
            rc = vl_errf(err, VL_ENOMEM, "out of memory");
    }
    vl_free(buf);
    return rc;
}

static int load_model(tok_tokenizer *t, const json_t *model, vl_err *err)
{
    if (!json_is_object(model))
        return vl_errf(err, VL_EFORMAT, "%s: \"model\" is missing or not an object", t->path);
    const char *ty = jtype(model);
    if (!ty || strcmp(ty, "BPE") != 0)
        return bad_type(err, t, "model", model);
    const json_t *v;
    if ((v = json_object_get(model, "dropout")) && !json_is_null(v))
        return vl_errf(err, VL_ECONFIG, "%s: model.dropout not supported (must be null)", t->path);
    static const char *const empty_keys[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (size_t k = 0; k < 2; k++) {
        const char *s = json_string_value(v = json_object_get(model, empty_keys[k]));
        if (v && !json_is_null(v) && !(s && !*s))
            return vl_errf(err, VL_ECONFIG, "%s: model.%s not supported (must be null)", t->path,
                           empty_keys[k]);
    }
    int bf = jbool(model, "byte_fallback", 0), im = jbool(model, "ignore_merges", 0);
    if (bf != 0)
        return vl_errf(err, VL_ECONFIG, "%s: model.byte_fallback not supported (must be false)",
                       t->path);
    if (im < 0)
        return vl_errf(err, VL_EFORMAT, "%s: model.ignore_merges is not a boolean", t->path);
    t->ignore_merges = im;
    return 0;
}

static int load_normalizer(tok_tokenizer *t, const json_t *n, vl_err *err)
{
    if (!n || json_is_null(n))
        return 0;
    const char *ty = jtype(n);
    if (ty && strcmp(ty, "NFC") == 0) {
        t->nfc = 1;
        return 0;
    }
    if (ty && strcmp(ty, "Sequence") == 0) {
        const json_t *arr = json_object_get(n, "normalizers");
        size_t i;
        json_t *x;
        if (!json_is_array(arr))
            return vl_errf(err, VL_EFORMAT, "%s: normalizer Sequence has no \"normalizers\" "
                           "array", t->path);
        json_array_foreach(arr, i, x) {
            if (!jtype(x) || strcmp(jtype(x), "NFC") != 0)
                return bad_type(err, t, "normalizer", x);
            t->nfc = 1;
        }
        return 0;
    }
    return bad_type(err, t, "normalizer", n);
}

static int add_split(tok_tokenizer *t, const char *pattern, int literal, vl_err *err)
{
    tok_re **s = vl_realloc(t->splits, (t->n_splits + 1) * sizeof *s);
    if (!s)
        return vl_errf(err, VL_ENOMEM, "out of memory");
    t->splits = s;
    int rc = tok_re_new(pattern, literal, &t->splits[t->n_splits], err);
    if (rc < 0)
        return vl_errctx(err, rc, "%s: pre_tokenizer", t->path);
    t->n_splits++;
    return 0;
}

/* One ByteLevel: must be last; with use_regex it first splits with the GPT-2 pattern. */
static int load_bytelevel(tok_tokenizer *t, const json_t *p, int last, vl_err *err)
{
    if (!last)
        return vl_errf(err, VL_ECONFIG, "%s: pre_tokenizer: ByteLevel must be the last step",
                       t->path);
    int aps = jbool(p, "add_prefix_space", 0), ur = jbool(p, "use_regex", 1);
    if (aps != 0)
        return vl_errf(err, VL_ECONFIG, "%s: pre_tokenizer ByteLevel add_prefix_space not "
                       "supported (must be false)", t->path);
    if (ur < 0)
        return vl_errf(err, VL_EFORMAT, "%s: pre_tokenizer ByteLevel use_regex is not a boolean",
                       t->path);
    return ur ? add_split(t, GPT2_PATTERN, 0, err) : 0;
}

static int load_split(tok_tokenizer *t, const json_t *p, vl_err *err)
{
    const char *beh = json_string_value(json_object_get(p, "behavior"));
    if (!beh || strcmp(beh, "Isolated") != 0)
        return vl_errf(err, VL_ECONFIG, "%s: pre_tokenizer Split behavior \"%s\" not supported "
                       "(only Isolated)", t->path, beh ? beh : "(missing)");
    if (jbool(p, "invert", 0) != 0)
        return vl_errf(err, VL_ECONFIG, "%s: pre_tokenizer Split invert not supported (must be "
                       "false)", t->path);
    const json_t *pat = json_object_get(p, "pattern");
    const char *re = json_string_value(json_object_get(pat, "Regex"));
    const char *lit = json_string_value(json_object_get(pat, "String"));
    if (!re && !lit)
        return vl_errf(err, VL_EFORMAT, "%s: pre_tokenizer Split pattern is neither "
                       "{\"Regex\": ...} nor {\"String\": ...}", t->path);
    return add_split(t, re ? re : lit, !re, err);
}

static int load_pretok(tok_tokenizer *t, const json_t *p, vl_err *err)
{
    if (!p || json_is_null(p))
        return vl_errf(err, VL_ECONFIG, "%s: pre_tokenizer null not supported (byte-level BPE "
                       "needs ByteLevel)", t->path);
    const char *ty = jtype(p);
    if (ty && strcmp(ty, "ByteLevel") == 0)
        return load_bytelevel(t, p, 1, err);
    if (!ty || strcmp(ty, "Sequence") != 0)
        return bad_type(err, t, "pre_tokenizer", p);
    const json_t *arr = json_object_get(p, "pretokenizers");
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return vl_errf(err, VL_EFORMAT, "%s: pre_tokenizer Sequence has no \"pretokenizers\"",
                       t->path);
    size_t i, n = json_array_size(arr);
    json_t *x;
    json_array_foreach(arr, i, x) {
        const char *xt = jtype(x);
        int rc;
        if (xt && strcmp(xt, "Split") == 0)
            rc = load_split(t, x, err);
        else if (xt && strcmp(xt, "ByteLevel") == 0)
            rc = load_bytelevel(t, x, i + 1 == n, err);
        else
            rc = bad_type(err, t, "pre_tokenizer", x);
        if (rc < 0)
            return rc;
    }
    if (!jtype(json_array_get(arr, n - 1)) || strcmp(jtype(json_array_get(arr, n - 1)),
                                                     "ByteLevel") != 0)
        return vl_errf(err, VL_ECONFIG, "%s: pre_tokenizer Sequence must end with ByteLevel",
                       t->path);
    return 0;
}

static int load_post(tok_tokenizer *t, const json_t *root, vl_err *err)
{
    const json_t *d = json_object_get(root, "decoder");
    if (!d || !jtype(d) || strcmp(jtype(d), "ByteLevel") != 0)
        return d && !json_is_null(d) ? bad_type(err, t, "decoder", d)
                                     : vl_errf(err, VL_ECONFIG, "%s: decoder null not supported "
                                               "(needs ByteLevel)", t->path);
    const json_t *tr = json_object_get(root, "truncation");
    if (tr && !json_is_null(tr))
        return vl_errf(err, VL_ECONFIG, "%s: truncation not supported (must be null)", t->path);
    const json_t *pp = json_object_get(root, "post_processor");
    if (!pp || json_is_null(pp) || (jtype(pp) && strcmp(jtype(pp), "ByteLevel") == 0))
        return 0;
    if (!jtype(pp) || strcmp(jtype(pp), "TemplateProcessing") != 0)
        return bad_type(err, t, "post_processor", pp);
    /* accepted only when the single-sequence template is just the sequence itself */
    const json_t *single = json_object_get(pp, "single");
    size_t i;
    json_t *x;
    json_array_foreach(single, i, x) {
        if (!json_object_get(x, "Sequence"))
            return vl_errf(err, VL_ECONFIG, "%s: post_processor TemplateProcessing that adds "
                           "special tokens not supported", t->path);
    }
    return 0;
}

/* ======================================================================================== */
/* Tables built after parsing                                                               */
/* ======================================================================================== */

static int build_byte_ids(tok_tokenizer *t, vl_err *err)
{
    for (int b = 0; b < 256; b++) {
        char s[4];
        int n = utf8_put(tok_byte_to_cp((uint8_t)b), s);
        t->byte_id[b] = tok_strmap_get(&t->vocab, s, (size_t)n);
        /* bytes that never occur in valid UTF-8 (C0, C1, F5–FF) may be absent */
        int can_occur = b != 0xC0 && b != 0xC1 && b < 0xF5;
        if (t->byte_id[b] < 0 && can_occur)
            return vl_errf(err, VL_EFORMAT, "%s: model.vocab lacks the byte-level token \"%.*s\" "
                           "of byte 0x%02x", t->path, n, s, b);
    }
    return 0;
}

/* What each id decodes to: HF's ByteLevel decoder maps every character of the token back to
 * its byte, or keeps the token's own UTF-8 when some character is outside the byte alphabet. */
static int build_decode(tok_tokenizer *t, vl_err *err)
{
    int16_t cp_byte[324];
    for (int i = 0; i < 324; i++)
        cp_byte[i] = -1;
    for (int b = 0; b < 256; b++)
        cp_byte[tok_byte_to_cp((uint8_t)b)] = (int16_t)b;
    size_t total = 0;
    for (size_t i = 0; i < t->n_ids; i++)
        total += t->id_str[i] ? strlen(t->id_str[i]) : 0;
    t->dec = vl_malloc(total + 1);
    t->dec_off = vl_malloc((t->n_ids + 1) * sizeof *t->dec_off);
    if (!t->dec || !t->dec_off)
        return vl_errf(err, VL_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < t->n_ids; i++) {
        t->dec_off[i] = k;
        const uint8_t *s = (const uint8_t *)t->id_str[i];
        if (!s)
            continue;
        size_t len = strlen((const char *)s), j = 0, k0 = k;
        int mapped = 1;
        while (j < len && mapped) {
            uint32_t cp;
            j += (size_t)utf8_next(s + j, &cp);
            mapped = cp < 324 && cp_byte[cp] >= 0;
            if (mapped)
                t->dec[k++] = (uint8_t)cp_byte[cp];
        }
        if (!mapped) { /* some character outside the byte alphabet: the token's own bytes */
            memcpy(t->dec + k0, s, len);
            k = k0 + len;
        }
    }
    t->dec_off[t->n_ids] = k;
    return 0;
}

/* ======================================================================================== */
/* Open / close                                                                             */
/* ======================================================================================== */

/* id → string table once model and added ids are known (added tokens take precedence). */
static int build_tables(tok_tokenizer *t, vl_err *err)
{
    char **ms = vl_realloc(t->model_str, (t->n_ids + 1) * sizeof *ms);
    t->id_str = vl_calloc(t->n_ids + 1, sizeof *t->id_str);
    if (ms)
        t->model_str = ms;
    if (!ms || !t->id_str)
        return vl_errf(err, VL_ENOMEM, "out of memory (%zu ids)", t->n_ids);
    for (size_t i = 0; i < t->n_ids; i++) {
        if (i >= t->n_model_ids)
            t->model_str[i] = NULL;
        t->id_str[i] = t->model_str[i];
    }
    for (size_t i = 0; i < t->n_added; i++)
        t->id_str[t->added[i].id] = t->added[i].content;
    return 0;
}

/* eos: tokenizer_config.json's eos_token (string or {"content": ...}) when DIR has one, else the
 * only special added token, else -1. */
static int load_eos(tok_tokenizer *t, const char *dir, vl_err *err)
{
    t->eos = -1;
    for (size_t i = 0, n = 0; i < t->n_added; i++)
        if (t->added[i].special && ++n)
            t->eos = n == 1 ? t->added[i].id : -1;
    if (!dir)
        return 0;
    size_t len = strlen(dir) + 32;
    char *p = vl_malloc(len);
    if (!p)
        return vl_errf(err, VL_ENOMEM, "out of memory");
    snprintf(p, len, "%s/tokenizer_config.json", dir);
    struct stat st;
    if (stat(p, &st) != 0) {
        vl_free(p);
        return 0;
    }
    json_error_t je;
    char *text;
    size_t tlen;
    int rc = vf_slurp(p, TOK_MAX_FILE, &text, &tlen, err);
    json_t *cfg = rc ? NULL : json_loadb(text, tlen, 0, &je);
    if (!rc)
        vl_free(text);
    if (!rc && !cfg) {
        rc = vl_errf(err, VL_EFORMAT, "%s:%d:%d: %s", p, je.line, je.column, je.text);
    } else if (!rc) {
        const json_t *e = json_object_get(cfg, "eos_token");
        const char *s = json_is_object(e) ? json_string_value(json_object_get(e, "content"))
                                          : json_string_value(e);
        if (s) {
            t->eos = tok_token_to_id(t, s);
            if (t->eos < 0)
                rc = vl_errf(err, VL_EFORMAT, "%s: eos_token \"%s\" is not a token", p, s);
        }
    }
    json_decref(cfg);
    vl_free(p);
    return rc;
}

static int load_all(tok_tokenizer *t, const json_t *root, const char *dir, vl_err *err)
{
    int rc;
    if (!json_is_object(root))
        return vl_errf(err, VL_EFORMAT, "%s: top level is not a JSON object", t->path);
    const json_t *model = json_object_get(root, "model");
    if ((rc = load_model(t, model, err)) < 0 ||
        (rc = load_vocab(t, json_object_get(model, "vocab"), err)) < 0 ||
        (rc = load_added(t, json_object_get(root, "added_tokens"), err)) < 0 ||
        (rc = build_tables(t, err)) < 0 ||
        (rc = build_byte_ids(t, err)) < 0 ||
        (rc = load_merges(t, json_object_get(model, "merges"), err)) < 0 ||
        (rc = load_normalizer(t, json_object_get(root, "normalizer"), err)) < 0 ||
        (rc = prepare_added(t, err)) < 0 ||
        (rc = load_pretok(t, json_object_get(root, "pre_tokenizer"), err)) < 0 ||
        (rc = load_post(t, root, err)) < 0 || (rc = build_decode(t, err)) < 0 ||
        (rc = load_eos(t, dir, err)) < 0)
        return rc;
    if (tok_cache_init(&t->cache) < 0)
        return vl_errf(err, VL_ENOMEM, "out of memory");
    return 0;
}

int tok_open(const char *path, tok_tokenizer **out, vl_err *err)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return vl_errf(err, VL_EIO, "%s: %s", path, strerror(errno));
    int is_dir = S_ISDIR(st.st_mode);
    tok_tokenizer *t = vl_calloc(1, sizeof *t);
    size_t plen = strlen(path) + 32;
    if (!t || !(t->path = vl_malloc(plen))) {
        vl_free(t);
        return vl_errf(err, VL_ENOMEM, "out of memory");
    }
    snprintf(t->path, plen, is_dir ? "%s/tokenizer.json" : "%s", path);
    json_error_t je;
    char *text;
    size_t len;
    int rc = vf_slurp(t->path, TOK_MAX_FILE, &text, &len, err);
    /* JSON_ALLOW_NUL: "\u0000" in a string is data, not an error (checked where it matters) */
    json_t *root = rc ? NULL : json_loadb(text, len, JSON_ALLOW_NUL, &je);
    if (!rc)
        vl_free(text);
    if (!rc && !root)
        rc = vl_errf(err, VL_EFORMAT, "%s:%d:%d: bad JSON: %s", t->path, je.line, je.column,
                     je.text);
    else if (!rc)
        rc = load_all(t, root, is_dir ? path : NULL, err);
    json_decref(root);
    if (rc < 0) {
        tok_close(t);
        return rc;
    }
    *out = t;
    return 0;
}

void tok_close(tok_tokenizer *t)
{
    if (!t)
        return;
    for (size_t i = 0; t->model_str && i < t->n_model_ids; i++)
        vl_free(t->model_str[i]);
    vl_free(t->model_str);
    vl_free(t->id_str);
    vl_free(t->dec);
    vl_free(t->dec_off);
    tok_strmap_deinit(&t->vocab);
    tok_strmap_deinit(&t->added_map);
    tok_pairmap_deinit(&t->merges);
    for (size_t i = 0; i < t->n_added; i++) {
        vl_free(t->added[i].content);
        vl_free(t->added[i].match);
    }
    vl_free(t->added);
    for (size_t i = 0; i < t->n_splits; i++)
        tok_re_free(t->splits[i]);
    vl_free(t->splits);
    tok_cache_deinit(&t->cache);
    tok_bpe_scratch_deinit(&t->bpe);
    vl_free(t->out.v);
    vl_free(t->path);
    vl_free(t);
}

/* ======================================================================================== */
/* Queries                                                                                  */
/* ======================================================================================== */

size_t tok_vocab_size(const tok_tokenizer *t)
{
    return t->n_ids;
}

const char *tok_id_to_token(const tok_tokenizer *t, int32_t id)
{
    return id >= 0 && (size_t)id < t->n_ids ? t->id_str[id] : NULL;
}

int32_t tok_token_to_id(const tok_tokenizer *t, const char *s)
{
    int32_t id = tok_strmap_get(&t->added_map, s, strlen(s));
    return id >= 0 ? id : tok_strmap_get(&t->vocab, s, strlen(s));
}

int32_t tok_eos_id(const tok_tokenizer *t)
{
    return t->eos;
}

int tok_is_added(const tok_tokenizer *t, int32_t id)
{
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].id == id)
            return 1;
    return 0;
}
