/* tests/test_tok.c — io/tok: ids exact to the Hugging Face reference, round trips, errors.
 *
 * Goldens: models/vbrlab-moe-tiny/tokenizer_golden.json (shipped with the model) and
 * tests/golden/tok_reference.json (ids from HF tokenizers for generated tricky strings, on the
 * model's tokenizer, on a copy with the plain GPT-2 ByteLevel pre-tokenizer and on a copy with
 * extra added tokens using lstrip/rstrip/single_word/normalized). The BPE merge is also checked
 * against a brute-force rescan, and decode(encode(doc)) == NFC(doc) over every corpus document.
 */
#define _POSIX_C_SOURCE 200809L
#include "../io/tok.h"
#include "check.h"
#include "testio.h"

#include <jansson.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utf8proc.h>

#define MODEL "models/vbrlab-moe-tiny"
#define TOKJSON MODEL "/tokenizer.json"

static char tmpdir[64];

/* ---- helpers ------------------------------------------------------------------------- */


static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    VL_ASSERT(f);
    VL_ASSERT(fwrite(data, 1, len, f) == len);
    fclose(f);
}

/* Encode and compare with a JSON array of ids; returns 1 when equal. */
static int ids_equal(tok_tokenizer *t, const char *s, size_t len, const json_t *want)
{
    int32_t *ids;
    size_t n;
    vl_err e = {0, ""};
    if (tok_encode(t, s, len, &ids, &n, &e) < 0)
        return 0;
    int ok = n == json_array_size(want);
    for (size_t i = 0; ok && i < n; i++)
        ok = ids[i] == json_integer_value(json_array_get(want, i));
    vl_free(ids);
    return ok;
}

/* Every {"text", "ids"} case of ARR matches; one summary check line. */
static void check_cases(chk *c, tok_tokenizer *t, const json_t *arr, const char *name)
{
    size_t i, good = 0;
    json_t *x;
    json_array_foreach(arr, i, x) {
        const json_t *txt = json_object_get(x, "text");
        int ok = ids_equal(t, json_string_value(txt), json_string_length(txt),
                           json_object_get(x, "ids"));
        good += ok;
        if (!ok)
            CHECK(c, 0, "%s: case %zu \"%.60s\"", name, i, json_string_value(txt));
    }
    printf("%s: %zu of %zu cases match the reference\n", name, good, json_array_size(arr));
    CHECK(c, good == json_array_size(arr) && good > 0, "%s: all %zu cases", name, good);
}

/* Write ROOT to tmpdir/NAME and open it. */
static tok_tokenizer *open_variant(const json_t *root, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    VL_ASSERT(json_dump_file(root, path, 0) == 0);
    tok_tokenizer *t = NULL;
    vl_err e = {0, ""};
    if (tok_open(path, &t, &e) < 0)
        printf("open %s: %s\n", path, e.msg);
    return t;
}

/* ---- goldens ------------------------------------------------------------------------- */

static void test_goldens(chk *c, tok_tokenizer *t)
{
    json_error_t je;
    json_t *g = json_load_file(MODEL "/tokenizer_golden.json", JSON_ALLOW_NUL, &je);
    CHECK(c, g != NULL, "tokenizer_golden.json loads");
    if (g)
        check_cases(c, t, g, "tokenizer_golden.json");
    json_decref(g);

    json_t *r = json_load_file("tests/golden/tok_reference.json", JSON_ALLOW_NUL, &je);
    CHECK(c, r != NULL, "tok_reference.json loads");
    if (!r)
        return;
    check_cases(c, t, json_object_get(r, "base"), "reference: model tokenizer");

    json_t *root = json_load_file(TOKJSON, JSON_ALLOW_NUL, &je);
    VL_ASSERT(root);
    json_t *gpt2 = json_object_get(r, "gpt2_pre_tokenizer");
    json_object_set(root, "pre_tokenizer", json_object_get(gpt2, "pre_tokenizer"));
    /* the "a b" merge spelling, with the GPT-2 pre-tokenizer */
    json_t *merges = json_object_get(json_object_get(root, "model"), "merges"), *m;
    size_t i;
    json_array_foreach(merges, i, m) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s %s", json_string_value(json_array_get(m, 0)),
                 json_string_value(json_array_get(m, 1)));
        json_array_set_new(merges, i, json_string(buf));
    }
    tok_tokenizer *tg = open_variant(root, "gpt2.json");
    CHECK(c, tg != NULL, "GPT-2 ByteLevel variant with string merges opens");
    if (tg)
        check_cases(c, tg, json_object_get(gpt2, "cases"), "reference: ByteLevel(use_regex)");
    tok_close(tg);
    json_decref(root);

    root = json_load_file(TOKJSON, JSON_ALLOW_NUL, &je);
    json_t *add = json_object_get(r, "added_tokens");
    json_array_extend(json_object_get(root, "added_tokens"), json_object_get(add, "append"));
    tok_tokenizer *ta = open_variant(root, "added.json");
    CHECK(c, ta != NULL, "added-token variant opens");
    if (ta) {
        check_cases(c, ta, json_object_get(add, "cases"), "reference: added-token flags");
        CHECK_INT(c, tok_vocab_size(ta), 16384 + 5, "added variant: vocab size (HF ids)");
    }
    tok_close(ta);
    json_decref(root);
    json_decref(r);
}

/* ---- brute-force BPE ----------------------------------------------------------------- */

/* Merge by rescanning all adjacent pairs each step: lowest rank, leftmost on ties — the order
 * HF's heap produces. Only merges of lowercase ASCII letters matter for letter words; they are
 * kept sorted by "a b" for a binary search. */
typedef struct {
    char ab[64];
    int rank;
} merge_rec;

static int merge_cmp(const void *x, const void *y)
{
    return strcmp(((const merge_rec *)x)->ab, ((const merge_rec *)y)->ab);
}

/* dst = "a b"; 0 when it does not fit */
static int join(char *dst, size_t cap, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la + lb + 2 > cap)
        return 0;
    memcpy(dst, a, la);
    dst[la] = ' ';
    memcpy(dst + la + 1, b, lb + 1);
    return 1;
}

static int rank_of(const merge_rec *m, size_t n, const char *a, const char *b)
{
    merge_rec key;
    if (!join(key.ab, sizeof key.ab, a, b))
        return -1;
    const merge_rec *r = bsearch(&key, m, n, sizeof *m, merge_cmp);
    return r ? r->rank : -1;
}

static int lower_word(const char *s)
{
    for (; *s; s++)
        if (*s < 'a' || *s > 'z')
            return 0;
    return 1;
}

static void test_bpe_brute(chk *c, tok_tokenizer *t)
{
    json_error_t je;
    json_t *root = json_load_file(TOKJSON, 0, &je);
    json_t *merges = json_object_get(json_object_get(root, "model"), "merges");
    merge_rec *few = calloc(json_array_size(merges), sizeof *few);
    size_t i, nf = 0;
    json_t *m;
    json_array_foreach(merges, i, m) {
        const char *a = json_string_value(json_array_get(m, 0));
        const char *b = json_string_value(json_array_get(m, 1));
        if (lower_word(a) && lower_word(b) && join(few[nf].ab, sizeof few[nf].ab, a, b))
            few[nf++].rank = (int)i;
    }
    qsort(few, nf, sizeof *few, merge_cmp);
    CHECK(c, nf > 1000, "%zu letter merges for the brute force", nf);
    uint64_t s = 42;
    int bad = 0;
    for (int w = 0; w < 400; w++) {
        char word[40], sym[40][40];
        int n = 1 + (int)((s = s * 6364136223846793005ull + 1442695040888963407ull) >> 59) % 30;
        for (int k = 0; k < n; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            word[k] = "etaoinshrdlucmfwypvbgkjqxz"[(s >> 33) % (k % 3 ? 26 : 8)];
            sym[k][0] = word[k], sym[k][1] = 0;
        }
        word[n] = 0;
        int ns = n;
        for (;;) {
            int best = -1, at = -1;
            for (int k = 0; k + 1 < ns; k++) {
                int r = rank_of(few, nf, sym[k], sym[k + 1]);
                if (r >= 0 && (best < 0 || r < best))
                    best = r, at = k;
            }
            if (at < 0)
                break;
            size_t l0 = strlen(sym[at]), l1 = strlen(sym[at + 1]);
            memcpy(sym[at] + l0, sym[at + 1], l1 + 1);
            memmove(sym[at + 1], sym[at + 2], (size_t)(ns - at - 2) * sizeof sym[0]);
            ns--;
        }
        json_t *want = json_array();
        for (int k = 0; k < ns; k++)
            json_array_append_new(want, json_integer(tok_token_to_id(t, sym[k])));
        if (!ids_equal(t, word, (size_t)n, want) && bad++ < 5)
            CHECK(c, 0, "BPE vs brute force on \"%s\"", word);
        json_decref(want);
    }
    CHECK(c, bad == 0, "BPE equals brute-force rescan on 400 random words (%d differ)", bad);
    free(few);
    json_decref(root);
}

/* ---- round trip ---------------------------------------------------------------------- */

static int round_trip(tok_tokenizer *t, const char *s, size_t len)
{
    int32_t *ids;
    size_t n, dl;
    char *dec;
    vl_err e = {0, ""};
    if (tok_encode(t, s, len, &ids, &n, &e) < 0)
        return 0;
    int rc = tok_decode(t, ids, n, &dec, &dl, &e);
    vl_free(ids);
    if (rc < 0)
        return 0;
    utf8proc_uint8_t *nfc = NULL;
    utf8proc_ssize_t nl = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &nfc,
                                       UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    int ok = nl >= 0 && (size_t)nl == dl && memcmp(nfc, dec, dl) == 0;
    free(nfc);
    vl_free(dec);
    return ok;
}

static void test_corpus_round_trip(chk *c, tok_tokenizer *t)
{
    static const char *const files[] = {
        "data/corpus/en.calib.txt", "data/corpus/en.eval.txt", "data/corpus/zh.calib.txt",
        "data/corpus/zh.eval.txt", "data/corpus/zh-classical.calib.txt",
        "data/corpus/zh-classical.eval.txt", "data/corpus/en-literary.calib.txt",
        "data/corpus/en-literary.eval.txt", "data/corpus/code.calib.txt",
        "data/corpus/code.eval.txt"};
    size_t docs = 0, bad = 0, bytes = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t len;
        char *txt = tio_slurp(files[f], &len);
        CHECK(c, txt != NULL, "read %s", files[f]);
        if (!txt)
            continue;
        for (char *p = txt, *end = txt + len; p < end;) {
            char *sep = strstr(p, "\n\x1e\n");
            char *q = sep ? sep : end;
            if (!round_trip(t, p, (size_t)(q - p)) && bad++ < 3)
                CHECK(c, 0, "round trip: %s document %zu", files[f], docs);
            docs++;
            bytes += (size_t)(q - p);
            p = sep ? sep + 3 : end;
        }
        free(txt);
    }
    printf("round trip over %zu corpus documents (%zu bytes)\n", docs, bytes);
    CHECK(c, bad == 0 && docs > 100, "decode(encode(doc)) == NFC(doc) for all %zu documents", docs);
}

/* ---- edge cases ---------------------------------------------------------------------- */

static void test_edges(chk *c, tok_tokenizer *t)
{
    vl_err e = {0, ""};
    int32_t *ids = (int32_t *)&e;
    size_t n = 99;
    CHECK(c, tok_encode(t, "", 0, &ids, &n, &e) == 0 && n == 0 && ids == NULL, "empty input");

    CHECK_INT(c, tok_vocab_size(t), 16384, "vocab size");
    CHECK_INT(c, tok_eos_id(t), 0, "eos id from tokenizer_config.json");
    CHECK_STR(c, tok_id_to_token(t, 0), "<|endoftext|>", "id 0");
    CHECK(c, tok_id_to_token(t, 16384) == NULL && tok_id_to_token(t, -1) == NULL,
          "id_to_token out of range is NULL");
    CHECK_INT(c, tok_token_to_id(t, "<|endoftext|>"), 0, "token_to_id special");
    CHECK_INT(c, tok_token_to_id(t, "no such token"), -1, "token_to_id unknown");

    /* the special token splits the text first: ids are the pieces' ids around 0 */
    const char *a = "Hello world", *b = " and more\n";
    char mid[64];
    snprintf(mid, sizeof mid, "%s<|endoftext|>%s", a, b);
    int32_t *ia, *ib, *im;
    size_t na, nb, nm;
    tok_encode(t, a, strlen(a), &ia, &na, &e);
    tok_encode(t, b, strlen(b), &ib, &nb, &e);
    tok_encode(t, mid, strlen(mid), &im, &nm, &e);
    int ok = nm == na + 1 + nb && im[na] == 0 && !memcmp(im, ia, na * 4) &&
             !memcmp(im + na + 1, ib, nb * 4);
    CHECK(c, ok, "<|endoftext|> in the middle: %zu = %zu + 1 + %zu ids", nm, na, nb);
    vl_free(ia), vl_free(ib), vl_free(im);

    /* NFC before splitting: e + U+0301 encodes as é */
    const char *comp = "caf\xc3\xa9", *decomp = "cafe\xcc\x81";
    tok_encode(t, comp, strlen(comp), &ia, &na, &e);
    tok_encode(t, decomp, strlen(decomp), &ib, &nb, &e);
    CHECK(c, na == nb && !memcmp(ia, ib, na * 4), "combining acute: same ids as precomposed");
    vl_free(ia), vl_free(ib);

    static const char *const rt[] = {
        "   \t\t  \n\n   x  ", "a\r\nb\r\n\r\n", "\ttab\tsep\t", "emoji \xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd",
        "\xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3\xe3\x80\x80\xef\xbc\x91\xef\xbc\x92", /* ＡＢＣ　１２ */
        "A\xcc\x8a + \xe1\x84\x80\xe1\x85\xa1", /* A+ring, Hangul jamo: NFC composes */
        "x<|endoftext|><|endoftext|>y", "\x00nul\x00", "\xf4\x8f\xbf\xbf"};
    for (size_t i = 0; i < sizeof rt / sizeof rt[0]; i++)
        CHECK(c, round_trip(t, rt[i], i == 7 ? 5 : strlen(rt[i])), "round trip edge case %zu", i);

    struct { const char *s; size_t len, off; } bad[] = {
        {"ab\xff", 3, 2}, {"\xc3", 1, 0}, {"ok\xc0\xaf", 4, 2}, {"a\xed\xa0\x80", 4, 1},
        {"\xf4\x90\x80\x80", 4, 0}, {"abc\xe4\xb8", 5, 3}, {"x\x80", 2, 1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "invalid UTF-8 at byte offset %zu", bad[i].off);
        int rc = tok_encode(t, bad[i].s, bad[i].len, &ids, &n, &e);
        CHECK(c, rc == VL_EFORMAT && ids == NULL, "invalid UTF-8 case %zu rejected", i);
        CHECK_HAS(c, e.msg, want, "invalid UTF-8 message");
    }

    int32_t badid[] = {5, 16384};
    char *txt;
    size_t tl;
    CHECK(c, tok_decode(t, badid, 2, &txt, &tl, &e) == VL_ERANGE, "decode unknown id fails");
    CHECK_HAS(c, e.msg, "token id 16384", "decode error names the id");
    int32_t hello[] = {15314, 12, 4788, 1, 0};
    CHECK(c, tok_decode(t, hello, 5, &txt, &tl, &e) == 0, "decode");
    CHECK_STR(c, txt, "Hello, world!<|endoftext|>", "decode text");
    vl_free(txt);
}

/* ---- broken files -------------------------------------------------------------------- */

static void expect_open_error(chk *c, const char *name, const char *data, size_t len,
                              const char *want)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    write_file(path, data, len);
    tok_tokenizer *t = NULL;
    vl_err e = {0, ""};
    int rc = tok_open(path, &t, &e);
    CHECK(c, rc < 0 && t == NULL, "%s: open fails", name);
    CHECK_HAS(c, e.msg, want, name);
    CHECK(c, strstr(e.msg, path) && !strchr(e.msg, '\n'), "%s: one line naming the file", name);
    tok_close(t);
}

/* Replace the first occurrence of FROM in the real tokenizer.json, write it as NAME. */
static void expect_edit_error(chk *c, const char *src, size_t len, const char *name,
                              const char *from, const char *to, const char *want)
{
    const char *p = strstr(src, from);
    VL_ASSERT(p);
    size_t a = (size_t)(p - src), fl = strlen(from), tl = strlen(to);
    char *buf = malloc(len - fl + tl);
    memcpy(buf, src, a);
    memcpy(buf + a, to, tl);
    memcpy(buf + a + tl, p + fl, len - a - fl);
    expect_open_error(c, name, buf, len - fl + tl, want);
    free(buf);
}

static void test_errors(chk *c)
{
    size_t len;
    char *src = tio_slurp(TOKJSON, &len);
    VL_ASSERT(src);
    expect_edit_error(c, src, len, "merge.json", "[\n        \"\xc4\xa0\",\n        \"\xc4\xa0\"\n      ]",
                      "[\"\xc4\xa0\", \"zzqq\"]", "model.merges[0]: token \"zzqq\" is not in the vocab");
    expect_edit_error(c, src, len, "pretok.json", "\"type\": \"Sequence\",\n    \"pretokenizers\"",
                      "\"type\": \"Metaspace\",\n    \"pretokenizers\"",
                      "pre_tokenizer type \"Metaspace\" not supported");
    expect_edit_error(c, src, len, "norm.json", "\"type\": \"NFC\"", "\"type\": \"NFKC\"",
                      "normalizer type \"NFKC\" not supported");
    expect_edit_error(c, src, len, "model.json", "\"type\": \"BPE\"", "\"type\": \"WordPiece\"",
                      "model type \"WordPiece\" not supported");
    expect_edit_error(c, src, len, "behav.json", "\"Isolated\"", "\"Removed\"",
                      "Split behavior \"Removed\" not supported");
    expect_edit_error(c, src, len, "regex.json", "(?i:'s", "(?i:'s(",
                      "regex does not compile");
    expect_edit_error(c, src, len, "byte.json", "\"!\": 1,", "\"!!!\": 1,",
                      "lacks the byte-level token \"!\"");
    expect_edit_error(c, src, len, "id.json", "\"!\": 1,", "\"!\": -7,",
                      "model.vocab[\"!\"]: id is not an integer");
    expect_open_error(c, "bad.json", "{\"model\": [1, 2,, 3]}", 21, "bad JSON");
    expect_open_error(c, "truncated.json", src, len / 2, "bad JSON");
    expect_open_error(c, "truncated2.json", src, 100, "bad JSON");
    expect_open_error(c, "empty.json", "", 0, "bad JSON");
    expect_open_error(c, "array.json", "[]", 2, "not a JSON object");
    free(src);

    tok_tokenizer *t = NULL;
    vl_err e = {0, ""};
    CHECK(c, tok_open("/nonexistent/dir", &t, &e) == VL_EIO, "missing path");
    CHECK_HAS(c, e.msg, "/nonexistent/dir", "missing path message");
}

/* ---- CLI ----------------------------------------------------------------------------- */


static void test_cli(chk *c)
{
    const char *bin = getenv("VBRLAB_BIN");
    if (!bin) {
        printf("VBRLAB_BIN not set: CLI tests skipped\n");
        return;
    }
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd, "printf 'Hello, world!' | %s tokenize", bin);
    CHECK_INT(c, tio_run(cmd, out, sizeof out), 0, "cli tokenize exit");
    CHECK(c, strcmp(out, "15314 12 4788 1\n") == 0, "cli tokenize ids");
    snprintf(cmd, sizeof cmd, "printf 'Hello, world!\\n\\ntabs\\tand' | %s tokenize " MODEL
             " --lines --json", bin);
    tio_run(cmd, out, sizeof out);
    CHECK(c, strcmp(out, "[15314, 12, 4788, 1]\n[]\n[84, 4723, 198, 439]\n") == 0, "cli --lines --json");
    snprintf(cmd, sizeof cmd, "printf 'x<|endoftext|>caf\\303\\251\\n' | %s tokenize | %s "
             "tokenize --decode", bin, bin);
    tio_run(cmd, out, sizeof out);
    CHECK(c, strcmp(out, "x<|endoftext|>caf\xc3\xa9\n") == 0, "cli encode | decode");
    snprintf(cmd, sizeof cmd, "printf '[15314, 12]\\n4788 1' | %s tokenize --decode --lines", bin);
    tio_run(cmd, out, sizeof out);
    CHECK(c, strcmp(out, "Hello,\n world!\n") == 0, "cli --decode --lines");
    snprintf(cmd, sizeof cmd, "printf 'ok\\nab\\377' | %s tokenize --lines 2>&1", bin);
    CHECK(c, tio_run(cmd, out, sizeof out) != 0, "cli invalid UTF-8 exits non-zero");
    CHECK(c, strstr(out, "vbrlab tokenize: stdin line 2: invalid UTF-8 at byte offset 2") != NULL, "cli error");
    snprintf(cmd, sizeof cmd, "echo 1 99999 | %s tokenize --decode 2>&1", bin);
    CHECK(c, tio_run(cmd, out, sizeof out) != 0, "cli bad id exits non-zero");
    CHECK(c, strstr(out, "token id 99999") != NULL, "cli bad id error");
    snprintf(cmd, sizeof cmd, "echo x | %s tokenize %s 2>&1", bin, tmpdir);
    CHECK(c, tio_run(cmd, out, sizeof out) != 0 && strchr(out, '\n') == strrchr(out, '\n'),
          "cli missing tokenizer.json: one line");
}

int main(void)
{
    chk c;
    chk_init(&c, "test_tok");
    VL_ASSERT(tio_tmpdir(tmpdir, sizeof tmpdir, "tok") == 0);
    tok_tokenizer *t = NULL;
    vl_err e = {0, ""};
    int rc = tok_open(MODEL, &t, &e);
    CHECK(&c, rc == 0, "open %s: %s", MODEL, rc ? e.msg : "ok");
    if (t) {
        test_goldens(&c, t);
        test_edges(&c, t);
        test_bpe_brute(&c, t);
        test_corpus_round_trip(&c, t);
    }
    tok_close(t);
    test_errors(&c);
    test_cli(&c);
    if (tio_rmtree(tmpdir) != 0)
        printf("%s not removed\n", tmpdir);
    return chk_done(&c);
}
