/* tests/test_corpus.c — io/corpus: splitting, UTF-8 errors, files, and the sequence cut. */
#include "../core/utf8.h"
#include "../io/corpus.h"
#include "check.h"

#include <gsl/gsl_errno.h>

static corp_corpus *parse(const char *s, size_t n, vl_err *err)
{
    corp_corpus *c = NULL;
    corp_parse(&c, "t.txt", s, n, err);
    return c;
}

static int doc_is(const corp_corpus *c, int i, const char *want)
{
    return c && i < c->n_docs && c->docs[i].len == strlen(want) &&
           !memcmp(c->docs[i].text, want, c->docs[i].len);
}

static void test_split(chk *c)
{
    vl_err err = {0};
    const char s1[] = "one\ntwo\n\x1e\nthree\n\x1e\n\n\x1e\n  \n\x1e\nfour";
    corp_corpus *k = parse(s1, sizeof s1 - 1, &err);
    CHECK(c, k && k->n_docs == 3, "3 documents (empty and blank skipped)");
    CHECK(c, doc_is(k, 0, "one\ntwo") && doc_is(k, 1, "three") && doc_is(k, 2, "four"),
          "document texts, missing final newline ok");
    corp_free(k);
    const char s2[] = "\x1e\na\r\nb\r\n\x1e\r\nc\x1e d\n\x1e";
    k = parse(s2, sizeof s2 - 1, &err);
    CHECK(c, k && k->n_docs == 1 && doc_is(k, 0, "a\r\nb\r\n\x1e\r\nc\x1e d"),
          "CRLF kept, RS inside a line or before CR is text, separators at both ends");
    corp_free(k);
    k = parse("", 0, &err);
    CHECK(c, k && k->n_docs == 0, "empty file: no documents");
    corp_free(k);
    const char s3[] = "\xe4\xb8\xad\xe6\x96\x87\n\x1e\n\xf0\x9f\x98\x80";
    k = parse(s3, sizeof s3 - 1, &err);
    CHECK(c, k && k->n_docs == 2 && doc_is(k, 0, "\xe4\xb8\xad\xe6\x96\x87"), "CJK and emoji");
    corp_free(k);
}

static void test_utf8(chk *c)
{
    struct {
        const char *s;
        long long off;
        const char *what;
    } cases[] = {
        {"abc\xff", 3, "0xff"},
        {"ab\xc0\xaf", 2, "overlong 2-byte"},
        {"a\xe0\x80\xaf", 1, "overlong 3-byte"},
        {"\xed\xa0\x80", 0, "surrogate"},
        {"xy\xf4\x90\x80\x80", 2, "above U+10FFFF"},
        {"ok\xe4\xb8", 2, "truncated 3-byte at EOF"},
        {"ok\xf0\x9f\x98", 2, "truncated 4-byte at EOF"},
        {"a\x80", 1, "lone continuation"},
        {"\xe4\xb8z", 0, "bad continuation"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        vl_err err = {0};
        corp_corpus *k = parse(cases[i].s, strlen(cases[i].s), &err);
        char want[64];
        snprintf(want, sizeof want, "t.txt: byte offset %lld: invalid UTF-8", cases[i].off);
        CHECK(c, !k && err.code == VL_EFORMAT && !strcmp(err.msg, want), "%s: \"%s\"",
              cases[i].what, err.msg);
    }
    CHECK_INT(c, (long long)utf8_valid_prefix((const uint8_t *)"\xc2\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf", 9), 9,
              "edge code points valid");
}

static void test_files(chk *c)
{
    vl_err err = {0};
    corp_corpus *k = NULL;
    CHECK_INT(c, corp_load(&k, "tests/no-such-corpus.txt", &err), VL_ENOTFOUND, "missing file");
    CHECK_STR(c, err.msg, "tests/no-such-corpus.txt: No such file or directory", "message");
    CHECK_INT(c, corp_load(&k, "tests", &err), VL_EIO, "directory refused");
    CHECK(c, strchr(err.msg, '\n') == NULL && strstr(err.msg, "tests"), "one line: %s", err.msg);
    CHECK_INT(c, corp_load(&k, "data/corpus/en.calib.txt", &err), 0, "en.calib.txt loads");
    CHECK_INT(c, k ? k->n_docs : -1, 196, "en.calib.txt: 195 separators, 196 documents");
    int bad = 0;
    for (int i = 0; k && i < k->n_docs; i++)
        bad += k->docs[i].len == 0 || k->docs[i].text[0] == '\n' ||
               k->docs[i].text[k->docs[i].len - 1] == '\n';
    CHECK_INT(c, bad, 0, "no document empty or starting/ending with a newline");
    corp_free(k);
}

static void test_cut(chk *c)
{
    int32_t d0[] = {1, 2, 3}, d1[] = {4, 5}, d2[] = {6, 7, 8, 9}, d3[] = {10};
    corp_tokdoc docs[] = {{d0, 3}, {d1, 2}, {d2, 4}, {d3, 1}, {NULL, 0}};
    int32_t a[12], b[12], o[12];
    vl_err err = {0};
    CHECK_INT(c, corp_cut(a, docs, 5, 0, 42, 3, 4, "en", &err), 0, "cut 3 × 4");
    CHECK_INT(c, corp_cut(b, docs, 5, 0, 42, 3, 4, "en", &err), 0, "cut again");
    CHECK(c, !memcmp(a, b, sizeof a), "same seed, same sequences");
    int found = 0;
    for (uint64_t s = 1; s < 20 && !found; s++) {
        corp_cut(o, docs, 5, 0, s + 42, 3, 4, "en", &err);
        found = memcmp(a, o, sizeof a) != 0;
    }
    CHECK(c, found, "another seed gives another order");
    /* the stream is a permutation of the documents, each followed by EOS */
    int eos = 0, sum = 0;
    for (int i = 0; i < 12; i++) {
        eos += a[i] == 0;
        sum += a[i];
    }
    CHECK(c, eos >= 2 && sum > 0, "EOS separators present (%d)", eos);
    int32_t full[15];
    CHECK_INT(c, corp_cut(full, docs, 5, 0, 42, 1, 15, "en", &err), 0, "all 15 tokens");
    CHECK(c, !memcmp(full, a, sizeof a), "sequences are consecutive slices of one stream");
    int tot = 0;
    for (int i = 0; i < 15; i++)
        tot += full[i];
    CHECK_INT(c, tot, 55, "every document token used exactly once");
    CHECK_INT(c, corp_cut(full, docs, 5, 0, 42, 2, 8, "zh", &err), VL_ERANGE, "16 > 15 refused");
    CHECK_STR(c, err.msg, "set zh: corpus has 15 tokens, needs 2 × 8 = 16", "message");
    CHECK_INT(c, corp_cut(full, docs, 5, 0, 42, 0, 8, "zh", &err), VL_EARG, "n_seq 0 refused");
}

int main(void)
{
    gsl_set_error_handler_off();
    chk c;
    chk_init(&c, "corpus");
    test_split(&c);
    test_utf8(&c);
    test_files(&c);
    test_cut(&c);
    return chk_done(&c);
}
