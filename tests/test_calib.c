/* tests/test_calib.c — calibration sets (analysis/calib.h): spec parsing and its errors,
 * apportionment, determinism of every source, noise properties, mixes, entropy buckets,
 * self-generated text, unreadable and malformed corpus files.
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include "../analysis/calib.h"
#include "../io/tok.h"

#include <gsl/gsl_errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL "models/vbrlab-moe-tiny"
#define EN "data/corpus/en.calib.txt"
#define ZH "data/corpus/zh.calib.txt"

/* ---------------------------------------------------------------- helpers */

/* Build the sets SPECS (NULL-terminated) into a new book; NULL on error (err filled). */
static calib_book *build(const calib_env *env, const char *const *specs, vl_err *err)
{
    calib_book *b = NULL;
    if (calib_book_new(&b, env, err))
        return NULL;
    for (int i = 0; specs[i]; i++) {
        calib_spec sp;
        if (calib_spec_parse(specs[i], &sp, err) || calib_book_add(b, &sp, err)) {
            calib_book_free(b);
            return NULL;
        }
    }
    return b;
}

static int same_ids(const calib_set *a, const calib_set *b)
{
    return a && b && a->n_seq == b->n_seq && a->seq_len == b->seq_len &&
           !memcmp(a->ids, b->ids, (size_t)a->n_seq * a->seq_len * sizeof *a->ids);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Index of the row of `set` equal to row (ptr, L), or -1. */
static int find_row(const calib_set *set, const int32_t *row)
{
    for (int s = 0; s < set->n_seq; s++)
        if (!memcmp(set->ids + (size_t)s * set->seq_len, row, set->seq_len * sizeof *row))
            return s;
    return -1;
}

/* ---------------------------------------------------------------- parsing */

static void test_parse(chk *c)
{
    calib_spec s;
    vl_err e;
    CHECK_INT(c, calib_spec_parse("en=" EN ",seqs=4,len=32,seed=7,skip=2", &s, &e), 0,
              "parse file spec");
    CHECK(c, !strcmp(s.name, "en") && !strcmp(s.source, EN) && s.kind == CALIB_FILE &&
             s.n_seq == 4 && s.seq_len == 32 && s.seed == 7 && s.skip == 2,
          "file spec fields");
    CHECK_INT(c, calib_spec_parse("m=mix:en*0.75+zh*0.25+code", &s, &e), 0, "parse mix");
    CHECK(c, s.kind == CALIB_MIX && s.n_parts == 3 && !strcmp(s.part[1], "zh") &&
             s.weight[0] == 0.75 && s.weight[2] == 1.0 && s.n_seq == CALIB_DEFAULT_SEQS &&
             s.seq_len == CALIB_DEFAULT_LEN && s.seed == 0,
          "mix fields and defaults");
    CHECK_INT(c, calib_spec_parse("x=self:T=0.7", &s, &e), 0, "parse self");
    CHECK(c, s.kind == CALIB_SELF && s.temperature == 0.7, "self temperature");
    CHECK_INT(c, calib_spec_parse("h=entropy:en:high", &s, &e), 0, "parse entropy");
    CHECK(c, s.kind == CALIB_ENTROPY && s.bucket == 2 && !strcmp(s.part[0], "en"),
          "entropy fields");
    CHECK_INT(c, calib_spec_parse("s=noise:shuffle:en,seed=3", &s, &e), 0, "parse shuffle");
    CHECK(c, s.kind == CALIB_SHUFFLE && !strcmp(s.part[0], "en") && s.seed == 3,
          "shuffle fields");

    static const struct {
        const char *spec, *needle;
    } bad[] = {
        {"noequals", "NAME=SOURCE"},
        {"=x.txt", "bad set name"},
        {"a b=x.txt", "bad set name"},
        {"x=", "empty source"},
        {"x=noise:foo", "unknown noise kind \"foo\""},
        {"x=noise:shuffle:", "bad set name"},
        {"x=self:T=0", "temperature"},
        {"x=self:T=abc", "temperature"},
        {"x=entropy:en:top", "bucket \"top\""},
        {"x=entropy:en", "entropy:SET:low|mid|high"},
        {"x=entropy:en:low,seqs=4", "seqs and len come from the bucket"},
        {"x=mix:", "needs parts"},
        {"x=mix:a*-1", "not a positive number"},
        {"x=mix:a*0.5+a*0.5", "listed twice"},
        {"x=mix:a+", "empty part"},
        {"x=f.txt,seqs=0", "seqs=\"0\""},
        {"x=f.txt,seqs=abc", "seqs=\"abc\""},
        {"x=f.txt,len=1", "len=\"1\""},
        {"x=f.txt,foo=1", "unknown option \"foo\""},
        {"x=f.txt,seqs=1,seqs=2", "given twice"},
        {"x=f.txt,seqs", "not KEY=VALUE"},
        {"x=noise:uniform,skip=1", "skip= applies to corpus files only"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vl_err er = {0};
        int rc = calib_spec_parse(bad[i].spec, &s, &er);
        char head[300];
        snprintf(head, sizeof head, "set spec \"%s\": ", bad[i].spec);
        CHECK(c, rc == VL_EARG && !strncmp(er.msg, head, strlen(head)) &&
                 strstr(er.msg, bad[i].needle) && !strchr(er.msg, '\n'),
              "bad spec %s -> %s", bad[i].spec, er.msg);
    }
}

/* One name rule for sets, domains, sections and allocations (calib_name_ok). */
static void test_names(chk *c)
{
    CHECK(c, calib_name_ok("min+max_2.5") && calib_name_ok("en-2.5") && calib_name_ok("a.b"),
          "names with + - . _ are valid");
    CHECK(c, !calib_name_ok("") && !calib_name_ok(".") && !calib_name_ok("..") &&
                 !calib_name_ok("a/b") && !calib_name_ok("a b") && !calib_name_ok("a=b"),
          "empty, . .. and names with / space = are not");
    char longn[80];
    memset(longn, 'a', sizeof longn - 1);
    longn[CALIB_NAME_MAX] = '\0';
    CHECK(c, !calib_name_ok(longn), "a name of CALIB_NAME_MAX characters is too long");
    longn[CALIB_NAME_MAX - 1] = '\0';
    CHECK(c, calib_name_ok(longn), "one shorter is fine");
    calib_spec s;
    vl_err e = {0};
    CHECK_INT(c, calib_spec_parse("en+zh=noise:uniform", &s, &e), 0,
              "a set spec accepts the names the config accepts (+)");
    CHECK_STR(c, s.name, "en+zh", "its name");
}

static void test_apportion(chk *c)
{
    int n[3];
    double w1[2] = {0.5, 0.5};
    calib_apportion(w1, 2, 5, n);
    CHECK(c, n[0] == 3 && n[1] == 2, "apportion 5 by 1:1 -> 3 2 (got %d %d)", n[0], n[1]);
    double w2[3] = {0.7, 0.2, 0.1};
    calib_apportion(w2, 3, 9, n); /* 6.3 1.8 0.9: floors 6 1 0, remainders .3 .8 .9 */
    CHECK(c, n[0] == 6 && n[1] == 2 && n[2] == 1, "apportion 9 by .7/.2/.1 -> 6 2 1 (got %d %d %d)",
          n[0], n[1], n[2]);
    double w3[3] = {1, 1, 1};
    calib_apportion(w3, 3, 10, n);
    CHECK(c, n[0] == 4 && n[1] == 3 && n[2] == 3, "apportion 10 by thirds -> 4 3 3");
}

/* ---------------------------------------------------------------- text and noise */

static void test_sources(chk *c, tok_tokenizer *tok)
{
    calib_env env = {NULL, tok, 4};
    vl_err e = {0};
    const char *s1[] = {"en=" EN ",seqs=4,len=32,seed=1", "a=" EN ",seqs=2,len=32,seed=1",
                        "b=" EN ",seqs=2,len=32,seed=1,skip=2", "d=" EN ",seqs=4,len=32,seed=2",
                        "zh=" ZH ",seqs=8,len=32", "u=noise:uniform,seqs=8,len=64,seed=5",
                        "sh=noise:shuffle:en", "m=mix:en*0.75+zh*0.25,seqs=4,seed=9",
                        "by=noise:bytes,seqs=3,len=40", NULL};
    calib_book *x = build(&env, s1, &e), *y = x ? build(&env, s1, &e) : NULL;
    CHECK(c, x && y, "build text/noise sets (%s)", e.msg);
    if (!x || !y) {
        calib_book_free(x);
        return;
    }
    int all_same = 1;
    for (int i = 0; i < calib_book_count(x); i++)
        all_same &= same_ids(calib_book_set(x, i), calib_book_set(y, i));
    CHECK(c, all_same, "same definitions give the same ids (every source)");
    const calib_set *en = calib_book_find(x, "en"), *a = calib_book_find(x, "a"),
                    *b = calib_book_find(x, "b"), *d = calib_book_find(x, "d");
    CHECK(c, !same_ids(en, d), "a different seed gives different ids");
    CHECK(c, !memcmp(en->ids, a->ids, 64 * sizeof *en->ids) &&
             !memcmp(en->ids + 64, b->ids, 64 * sizeof *en->ids),
          "seqs=2 and seqs=2,skip=2 are the two halves of seqs=4");
    int ids_ok = 1;
    for (int i = 0; i < 128; i++)
        ids_ok &= en->ids[i] >= 0 && (size_t)en->ids[i] < tok_vocab_size(tok);
    CHECK(c, ids_ok, "corpus ids in [0, vocab)");

    const calib_set *u = calib_book_find(x, "u");
    int in_range = 1, special = 0, distinct = 0;
    int32_t sorted[512];
    for (int i = 0; i < 512; i++) {
        in_range &= u->ids[i] >= 0 && (size_t)u->ids[i] < tok_vocab_size(tok);
        special += tok_is_added(tok, u->ids[i]) || u->ids[i] == tok_eos_id(tok) ||
                   !tok_id_to_token(tok, u->ids[i]);
        sorted[i] = u->ids[i];
    }
    qsort(sorted, 512, sizeof *sorted, cmp_i32);
    for (int i = 0; i < 512; i++)
        distinct += i == 0 || sorted[i] != sorted[i - 1];
    CHECK(c, in_range, "noise:uniform ids in [0, vocab)");
    CHECK_INT(c, special, 0, "noise:uniform draws no added/EOS/unused id");
    CHECK(c, distinct > 490, "noise:uniform spreads over the vocabulary (%d distinct of 512)",
          distinct);
    CHECK(c, tok_is_added(tok, tok_eos_id(tok)) && !tok_is_added(tok, 100),
          "tok_is_added: EOS yes, an ordinary id no");

    const calib_set *sh = calib_book_find(x, "sh");
    int32_t p[128], q[128];
    memcpy(p, en->ids, sizeof p);
    memcpy(q, sh->ids, sizeof q);
    qsort(p, 128, sizeof *p, cmp_i32);
    qsort(q, 128, sizeof *q, cmp_i32);
    CHECK(c, sh->n_seq == 4 && sh->seq_len == 32 && !memcmp(p, q, sizeof p),
          "noise:shuffle keeps the shape and the multiset of tokens");
    CHECK(c, memcmp(sh->ids, en->ids, sizeof p), "noise:shuffle changes the order");

    const calib_set *m = calib_book_find(x, "m"), *zh = calib_book_find(x, "zh");
    int from_en = 0, from_zh = 0;
    for (int s = 0; s < m->n_seq; s++) {
        from_en += find_row(en, m->ids + s * 32) >= 0;
        from_zh += find_row(zh, m->ids + s * 32) >= 0;
    }
    CHECK(c, m->n_seq == 4 && m->seq_len == 32 && from_en == 3 && from_zh == 1,
          "mix en*0.75+zh*0.25 of 4: 3 en + 1 zh rows (got %d + %d)", from_en, from_zh);

    const calib_set *by = calib_book_find(x, "by");
    int by_ok = by->n_seq == 3 && by->seq_len == 40;
    for (int i = 0; i < 120; i++)
        by_ok &= by->ids[i] >= 0 && !tok_is_added(tok, by->ids[i]);
    CHECK(c, by_ok, "noise:bytes: 3 × 40 ordinary ids");
    char *txt = NULL;
    size_t tl = 0;
    CHECK(c, tok_decode(tok, by->ids, 20, &txt, &tl, &e) == 0 && tl >= 20,
          "noise:bytes decodes to text (%zu bytes)", tl);
    vl_free(txt);
    calib_book_free(x);
    calib_book_free(y);
}

static void test_build_errors(chk *c, tok_tokenizer *tok)
{
    calib_env env = {NULL, tok, 4};
    static const struct {
        const char *specs[3], *needle;
    } bad[] = {
        {{"x=/nonexistent/dir/x.txt", NULL}, "set x: /nonexistent/dir/x.txt: No such file"},
        {{"x=build/vbrlab_calib_bad_utf8.txt", NULL}, "invalid UTF-8"},
        {{"x=" EN ",seqs=100000,len=256", NULL}, "corpus has"},
        {{"x=mix:en*1", NULL}, "set x: refers to set en, not defined before it"},
        {{"en=" EN ",seqs=2,len=16", "m=mix:en,seqs=3"}, "mix needs 3 sequences of en"},
        {{"en=" EN ",seqs=2,len=16", "m=mix:en,len=8"}, "len=8 but its parts have length 16"},
        {{"en=" EN ",seqs=2,len=16", "en=noise:uniform"}, "set en: defined twice"},
        {{"en=" EN ",seqs=2,len=16", "s=noise:shuffle:en,seqs=3"}, "needs 3 × 16 tokens"},
        {{"x=self:T=1", NULL}, "set x: self needs the model"},
    };
    FILE *f = fopen("build/vbrlab_calib_bad_utf8.txt", "wb");
    if (f) {
        fputs("good text\n\x1e\nbad \xff\xfe bytes\n", f);
        fclose(f);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vl_err e = {0};
        calib_book *b = build(&env, bad[i].specs, &e);
        CHECK(c, !b && strstr(e.msg, bad[i].needle) && !strchr(e.msg, '\n'),
              "build error %zu: %s", i, e.msg);
        calib_book_free(b);
    }
    remove("build/vbrlab_calib_bad_utf8.txt");
}

/* ---------------------------------------------------------------- model-driven */

static double mean_of(const double *x, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += x[i];
    return s / n;
}

static void test_model_sources(chk *c, const model *m, tok_tokenizer *tok)
{
    calib_env env = {m, tok, 4};
    vl_err e = {0};
    const char *specs[] = {"pool=" EN ",seqs=9,len=24,seed=4", "lo=entropy:pool:low",
                           "mid=entropy:pool:mid", "hi=entropy:pool:high",
                           "s=self:T=1.0,seqs=3,len=8,seed=2", NULL};
    calib_book *b = build(&env, specs, &e);
    CHECK(c, b != NULL, "build entropy and self sets (%s)", e.msg);
    if (!b)
        return;
    const calib_set *pool = calib_book_find(b, "pool");
    const calib_set *bk[3] = {calib_book_find(b, "lo"), calib_book_find(b, "mid"),
                              calib_book_find(b, "hi")};
    double h[3][3], means[3];
    int used[9] = {0}, shapes = 1;
    for (int k = 0; k < 3; k++) {
        shapes &= bk[k]->n_seq == 3 && bk[k]->seq_len == 24;
        CHECK_INT(c, calib_seq_entropy(m, bk[k]->ids, 3, 24, 2, h[k], &e), 0, "bucket entropy");
        means[k] = mean_of(h[k], 3);
        for (int s = 0; s < 3; s++) {
            int r = find_row(pool, bk[k]->ids + s * 24);
            if (r >= 0)
                used[r]++;
        }
    }
    CHECK(c, shapes, "entropy buckets of a 9-sequence pool hold 3 each");
    CHECK(c, means[0] < means[1] && means[1] < means[2],
          "mean entropy low < mid < high (%.4f %.4f %.4f)", means[0], means[1], means[2]);
    double max_lo = h[0][0], min_mid = h[1][0], max_mid = h[1][0], min_hi = h[2][0];
    for (int s = 1; s < 3; s++) {
        max_lo = h[0][s] > max_lo ? h[0][s] : max_lo;
        min_mid = h[1][s] < min_mid ? h[1][s] : min_mid;
        max_mid = h[1][s] > max_mid ? h[1][s] : max_mid;
        min_hi = h[2][s] < min_hi ? h[2][s] : min_hi;
    }
    CHECK(c, max_lo <= min_mid && max_mid <= min_hi, "buckets do not overlap in entropy");
    int each_once = 1;
    for (int r = 0; r < 9; r++)
        each_once &= used[r] == 1;
    CHECK(c, each_once, "the three buckets together are the pool, each sequence once");

    const calib_set *s = calib_book_find(b, "s");
    int starts = 1;
    for (int q = 0; q < 3; q++)
        starts &= s->ids[q * 8] == tok_eos_id(tok);
    CHECK(c, starts, "self: every sequence starts with EOS");
    calib_env env1 = {m, tok, 1};
    const char *again[] = {"s=self:T=1.0,seqs=3,len=8,seed=2", NULL};
    const char *other[] = {"s=self:T=1.0,seqs=3,len=8,seed=3", NULL};
    calib_book *b1 = build(&env1, again, &e), *b2 = build(&env, other, &e);
    CHECK(c, b1 && same_ids(s, calib_book_find(b1, "s")),
          "self: same seed, batch 1 vs 4 -> same ids");
    CHECK(c, b2 && !same_ids(s, calib_book_find(b2, "s")), "self: another seed, other ids");
    calib_book_free(b1);
    calib_book_free(b2);
    calib_book_free(b);
}

int main(void)
{
    gsl_set_error_handler_off();
    chk c;
    chk_init(&c, "calib");
    test_parse(&c);
    test_names(&c);
    test_apportion(&c);
    tok_tokenizer *tok = NULL;
    model *m = NULL;
    vl_err e = {0};
    if (tok_open(MODEL, &tok, &e) || model_open(&m, MODEL, &e)) {
        CHECK(&c, 0, "open model and tokenizer: %s", e.msg);
    } else {
        test_sources(&c, tok);
        test_build_errors(&c, tok);
        test_model_sources(&c, m, tok);
    }
    model_close(m);
    tok_close(tok);
    return chk_done(&c);
}
