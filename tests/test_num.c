/* tests/test_num.c — one checked number parser, and every reader of numbers uses it.
 *
 * core/num against tables of edge cases (64-bit limits and one past them, signs, spaces, bases,
 * NaN/Inf/overflow/underflow spellings, a NUL byte at every position of a buffer, whole doubles
 * at the int64 limits, checked sums and products). Then the same hostile numbers generated into
 * every reader that takes numbers from a file or the command line — problem files (n_weights,
 * bits per weight, distortion), experiment configs (every numeric key of run-tiny.ini), the CLI
 * options of plot, stats, eval, sens, alloc and forward, forward's id file — each must give one
 * clean error line naming where, never a shorter or wrapped number. And the undefined-behaviour
 * cases of the audit: an unknown name in a config's name list (shift by an unset count), item
 * counts summing past int64, a layer number past int in a tensor name (rules solver), a
 * sensitivity store whose seed attribute is NaN, negative, fractional or above 2^53 (double →
 * uint64). Under
 * `make asan` (UBSan with float-cast-overflow) any of these that still executed UB would abort. */
#define _POSIX_C_SOURCE 200809L
#include "../alloc/sens.h"
#include "../alloc/solve.h"
#include "../core/num.h"
#include "../experiments/expcfg.h"
#include "../io/h5s.h"
#include "check.h"
#include "testio.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

/* ---------------------------------------------------------------- core/num */

static void test_ints(chk *c)
{
    static const struct {
        const char *s;
        int rc;
        int64_t v;
    } t[] = {
        {"0", 0, 0},
        {"-0", 0, 0},
        {"007", 0, 7},
        {"9223372036854775807", 0, INT64_MAX},
        {"9223372036854775808", VL_ERANGE, 0},
        {"-9223372036854775808", 0, INT64_MIN},
        {"-9223372036854775809", VL_ERANGE, 0},
        {"18446744073709551616", VL_ERANGE, 0},
        {"99999999999999999999999999999999999999", VL_ERANGE, 0},
        {"", VL_EFORMAT, 0},
        {"-", VL_EFORMAT, 0},
        {"+1", VL_EFORMAT, 0},
        {" 1", VL_EFORMAT, 0},
        {"1 ", VL_EFORMAT, 0},
        {"1x", VL_EFORMAT, 0},
        {"0x10", VL_EFORMAT, 0},
        {"1e3", VL_EFORMAT, 0},
        {"1.0", VL_EFORMAT, 0},
        {"--1", VL_EFORMAT, 0},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        int64_t v = 12345;
        int rc = num_i64(t[i].s, INT64_MIN, INT64_MAX, &v);
        if (rc != t[i].rc || (!rc && v != t[i].v) || (rc && v != 12345)) {
            CHECK(c, 0, "num_i64(\"%s\") = %d (%lld), want %d", t[i].s, rc, (long long)v,
                  t[i].rc);
            bad++;
        }
    }
    CHECK(c, !bad, "num_i64: %zu edge cases (limits ±1, signs, spaces, bases, junk)",
          sizeof t / sizeof *t);
    int v;
    CHECK_INT(c, num_int("2147483647", INT_MIN, INT_MAX, &v), 0, "num_int INT_MAX");
    CHECK_INT(c, num_int("2147483648", INT_MIN, INT_MAX, &v), VL_ERANGE, "num_int INT_MAX+1");
    CHECK_INT(c, num_int("5", 6, 9, &v), VL_ERANGE, "num_int below lo");
    uint64_t u;
    CHECK(c, num_u64("18446744073709551615", UINT64_MAX, 0, &u) == 0 && u == UINT64_MAX,
          "num_u64 UINT64_MAX");
    CHECK_INT(c, num_u64("18446744073709551616", UINT64_MAX, 0, &u), VL_ERANGE, "u64 + 1");
    CHECK_INT(c, num_u64("-1", UINT64_MAX, 0, &u), VL_EFORMAT, "num_u64 refuses -1 (no wrap)");
    CHECK(c, num_u64("0xffffffffffffffff", UINT64_MAX, 1, &u) == 0 && u == UINT64_MAX,
          "num_u64 hex max");
    CHECK_INT(c, num_u64("0x10000000000000000", UINT64_MAX, 1, &u), VL_ERANGE, "hex overflow");
    CHECK_INT(c, num_u64("0x", UINT64_MAX, 1, &u), VL_EFORMAT, "bare 0x");
    CHECK_INT(c, num_u64("0x10", UINT64_MAX, 0, &u), VL_EFORMAT, "hex when not asked");
    const char *rest;
    int64_t l;
    CHECK(c, num_digits("12.mlp", &rest, 100, &l) == 0 && l == 12 && !strcmp(rest, ".mlp"),
          "num_digits: 12 then .mlp");
    CHECK_INT(c, num_digits("99999999999999999999999.x", &rest, INT64_MAX, &l), VL_ERANGE,
              "num_digits overflow");
    CHECK_INT(c, num_digits("x", &rest, 9, &l), VL_EFORMAT, "num_digits needs a digit");
    int64_t s;
    CHECK_INT(c, num_add_i64(INT64_MAX, 1, &s), VL_ERANGE, "add overflow");
    CHECK_INT(c, num_add_i64(INT64_MIN, -1, &s), VL_ERANGE, "add underflow");
    CHECK(c, num_add_i64(INT64_MAX, -1, &s) == 0 && s == INT64_MAX - 1, "add in range");
    CHECK_INT(c, num_mul_i64(INT64_MAX / 2 + 1, 2, &s), VL_ERANGE, "mul overflow");
    CHECK_INT(c, num_mul_i64(INT64_MIN, -1, &s), VL_ERANGE, "mul INT64_MIN·−1");
    CHECK(c, num_mul_i64(-4, 5, &s) == 0 && s == -20, "mul in range");
}

static void test_doubles(chk *c)
{
    static const struct {
        const char *s;
        int rc;
        double v;
    } t[] = {
        {"1.5", 0, 1.5},        {"-2e-3", 0, -2e-3},     {"1e308", 0, 1e308},
        {".5", 0, 0.5},         {"1e309", VL_ERANGE, 0}, {"-1e309", VL_ERANGE, 0},
        {"1e-320", VL_ERANGE, 0}, {"nan", VL_EFORMAT, 0}, {"NaN", VL_EFORMAT, 0},
        {"inf", VL_EFORMAT, 0}, {"-inf", VL_ERANGE, 0},  {"infinity", VL_EFORMAT, 0},
        {"", VL_EFORMAT, 0},    {" 1", VL_EFORMAT, 0},   {"1 ", VL_EFORMAT, 0},
        {"1.5x", VL_EFORMAT, 0}, {"1,5", VL_EFORMAT, 0}, {"e5", VL_EFORMAT, 0},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        double v = 7;
        int rc = num_f64(t[i].s, -DBL_MAX, DBL_MAX, &v);
        /* "-inf" starts like a number: a range error or a format error are both refusals */
        int ok = t[i].rc ? rc != 0 && v == 7 : rc == 0 && v == t[i].v;
        if (!ok) {
            CHECK(c, 0, "num_f64(\"%s\") = %d (%g)", t[i].s, rc, v);
            bad++;
        }
    }
    CHECK(c, !bad, "num_f64: %zu edge cases (overflow, underflow, NaN/Inf spellings, junk)",
          sizeof t / sizeof *t);
    double v;
    CHECK_INT(c, num_f64("0.5", 1, 2, &v), VL_ERANGE, "num_f64 below lo");
    /* num_whole: a double that must be a whole number in range, checked before any cast */
    static const double whole_bad[] = {NAN, INFINITY, -INFINITY, 0.5, -1, 9223372036854775808.0,
                                       1e300, -9223372036854777856.0};
    int wb = 0;
    int64_t w;
    for (size_t i = 0; i < sizeof whole_bad / sizeof *whole_bad; i++)
        wb += num_whole(whole_bad[i], 0, INT64_MAX, &w) != VL_ERANGE;
    CHECK(c, !wb, "num_whole refuses NaN, ±Inf, 0.5, −1, 2^63, 1e300 (for [0, INT64_MAX])");
    CHECK(c, num_whole(-9223372036854775808.0, INT64_MIN, 0, &w) == 0 && w == INT64_MIN,
          "num_whole −2^63 exactly");
    CHECK(c, num_whole(9007199254740992.0, 0, INT64_MAX, &w) == 0 && w == 9007199254740992,
          "num_whole 2^53");
}

/* A NUL byte at every position inside a buffer is refused by every _n parser. */
static void test_nul(chk *c)
{
    const char *txt[] = {"123456", "-98765", "1.25e3", "184467"};
    int bad = 0, n = 0;
    for (int k = 0; k < 4; k++) {
        size_t len = strlen(txt[k]);
        for (size_t p = 0; p < len; p++) {
            char b[16];
            memcpy(b, txt[k], len);
            b[p] = '\0';
            int64_t i;
            uint64_t u;
            double d;
            bad += num_i64_n(b, len, INT64_MIN, INT64_MAX, &i) != VL_EFORMAT;
            bad += num_u64_n(b, len, UINT64_MAX, 0, &u) != VL_EFORMAT;
            bad += num_f64_n(b, len, -DBL_MAX, DBL_MAX, &d) != VL_EFORMAT;
            n += 3;
        }
    }
    CHECK(c, !bad, "a NUL at any position: %d parses, all refused (%d accepted)", n, bad);
    int64_t i;
    CHECK(c, num_i64_n("42junk", 2, 0, 100, &i) == 0 && i == 42, "num_i64_n reads only n bytes");
    char longdigits[64];
    memset(longdigits, '9', sizeof longdigits);
    CHECK_INT(c, num_i64_n(longdigits, sizeof longdigits, 0, INT64_MAX, &i), VL_ERANGE,
              "64 digits: out of range, not truncated");
}

/* ---------------------------------------------------------------- problem files */

static int write_file(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    fwrite(text, 1, n, f);
    return fclose(f);
}

static const char *const bad_ints[] = {"99999999999999999999", "-1", "0", "12x", "1e3",
                                       "0x10", "nan", "1.5"};
static const char *const bad_floats[] = {"1e999", "nan", "inf", "-1", "1.5x", "0x", "--1"};

/* a problem file with field k (1 n_weights, 3 bpw, 4 distortion) of line 2 replaced by v
 * (nul: with a NUL byte spliced into the middle of the original value instead) */
static int problem_with(int k, const char *v, int nul, vl_err *e)
{
    const char *f[3][5] = {{"a", "100", "q2", "2.5", "0.5"},
                           {"a", "100", "q4", "4.25", "0.125"},
                           {"b", "50", "q2", "2.5", "0.25"}};
    char text[512];
    size_t n = 0;
    for (int l = 0; l < 3; l++)
        for (int j = 0; j < 5; j++) {
            const char *x = l == 1 && j == k && !nul ? v : f[l][j];
            size_t xl = strlen(x);
            if (l == 1 && j == k && nul) { /* "4\0.25": the NUL inside the number */
                text[n++] = x[0];
                text[n++] = '\0';
                memcpy(text + n, x + 1, xl - 1);
                n += xl - 1;
            } else {
                memcpy(text + n, x, xl);
                n += xl;
            }
            text[n++] = j == 4 ? '\n' : ' ';
        }
    char path[128];
    snprintf(path, sizeof path, "%s/problem.txt", dir);
    write_file(path, text, n);
    solve_problem *p = NULL;
    int rc = solve_problem_read(path, &p, e);
    solve_problem_free(p);
    return rc;
}

static void test_problem_files(chk *c)
{
    vl_err e = {0, ""};
    CHECK_INT(c, problem_with(-1, NULL, 0, &e), 0, "the base problem file reads");
    int fields[3] = {1, 3, 4};
    for (int k = 0; k < 3; k++) {
        int isint = fields[k] == 1;
        const char *const *vals = isint ? bad_ints : bad_floats;
        int nv = isint ? 8 : 7;
        for (int i = 0; i < nv; i++) {
            int rc = problem_with(fields[k], vals[i], 0, &e);
            CHECK(c, rc < 0 && strstr(e.msg, "problem.txt:2:") && !strchr(e.msg, '\n'),
                  "problem field %d = \"%s\": one-line error at line 2 (%s)", fields[k], vals[i],
                  e.msg);
        }
        int rc = problem_with(fields[k], "", 1, &e);
        CHECK(c, rc == VL_EFORMAT && strstr(e.msg, "problem.txt:2: NUL byte"),
              "problem field %d with a NUL inside: refused (%s)", fields[k], e.msg);
    }
    /* n_weights summing past 2^53 (and so never past int64) */
    char path[128];
    snprintf(path, sizeof path, "%s/sum.txt", dir);
    const char *big = "a 4611686018427387904 q2 2 0.5\nb 4611686018427387904 q2 2 0.5\n";
    write_file(path, big, strlen(big));
    solve_problem *p = NULL;
    int rc = solve_problem_read(path, &p, &e);
    CHECK(c, rc == VL_ERANGE && strstr(e.msg, "2^53"), "counts summing past 2^53: %s", e.msg);
    solve_problem_free(p);
    const char *ok = "a 4503599627370496 q2 2 0.5\nb 4503599627370496 q2 2 0.5\n";
    write_file(path, ok, strlen(ok));
    rc = solve_problem_read(path, &p, &e);
    CHECK(c, rc == 0 && p && solve_problem_weights(p) == (int64_t)1 << 53,
          "counts summing to exactly 2^53 are fine");
    solve_problem_free(p);
}

/* the rules solver reads layer numbers out of item names: one past int must not wrap */
static void test_layer_names(chk *c)
{
    const char *names[] = {"model.layers.99999999999999999999.mlp.down_proj.weight",
                           "model.layers.2147483647.mlp.down_proj.weight",
                           "blk.4294967296.ffn_down"};
    for (int k = 0; k < 3; k++) {
        solve_problem *p = NULL;
        vl_err e = {0, ""};
        solve_problem_new(1, &p, &e);
        int it;
        double d0 = 1, d1 = 0.5;
        solve_problem_add_item(p, "model.layers.0.mlp.down_proj.weight", 64, &it, &e);
        solve_problem_add_option(p, it, "q2", 2, &d0, &e);
        solve_problem_add_option(p, it, "q4", 4, &d1, &e);
        solve_problem_add_item(p, names[k], 64, &it, &e);
        solve_problem_add_option(p, it, "q2", 2, &d0, &e);
        solve_problem_add_option(p, it, "q4", 4, &d1, &e);
        solve_params par = solve_params_defaults();
        par.method = SOLVE_RULES;
        par.target_bpw = 3;
        solve_result r;
        memset(&r, 0, sizeof r);
        int rc = solve_run(p, &par, &r, &e);
        CHECK(c, rc == VL_ERANGE && strstr(e.msg, "layer number"),
              "rules solver, item %s: refused (%d: %s)", names[k], rc, e.msg);
        solve_result_free(&r);
        solve_problem_free(p);
    }
}

/* ---------------------------------------------------------------- configs */

/* run-tiny.ini with the value of the KEY line (first one) replaced by V (NUL: spliced in). */
static int config_with(const char *key, const char *v, int nul, vl_err *e, int *line)
{
    char *src = tio_slurp("tests/data/run-tiny.ini", NULL);
    char path[128], text[8192];
    snprintf(path, sizeof path, "%s/c.ini", dir);
    size_t n = 0;
    int done = 0, ln = 0;
    for (char *l = src, *next; l && *l; l = next) {
        next = strchr(l, '\n');
        if (next)
            *next++ = '\0';
        ln++;
        size_t kl = strlen(key);
        if (!done && !strncmp(l, key, kl) && l[kl] == ' ' && l[kl + 1] == '=') {
            done = 1;
            *line = ln;
            if (nul) {
                const char *val = l + kl + 3; /* "key = 12" → "key = 1\02" */
                n += (size_t)snprintf(text + n, sizeof text - n, "%s = %c", key, val[0]);
                text[n++] = '\0';
                n += (size_t)snprintf(text + n, sizeof text - n, "%s\n", val + 1);
            } else
                n += (size_t)snprintf(text + n, sizeof text - n, "%s = %s\n", key, v);
        } else
            n += (size_t)snprintf(text + n, sizeof text - n, "%s\n", l);
    }
    free(src);
    write_file(path, text, n);
    exp_config cfg;
    int rc = exp_config_parse(path, &cfg, e);
    if (!rc)
        exp_config_free(&cfg);
    return rc;
}

static void test_configs(chk *c)
{
    static const struct {
        const char *key;
        int isint;
    } keys[] = {{"seed", 1}, {"seqs", 1}, {"len", 1}, {"eps", 0}, {"target_bpw", 0}};
    vl_err e = {0, ""};
    int line = 0;
    CHECK_INT(c, config_with("nokey", NULL, 0, &e, &line), 0, "run-tiny.ini parses");
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        const char *const *vals = keys[k].isint ? bad_ints : bad_floats;
        int nv = keys[k].isint ? 8 : 7;
        char where[64];
        for (int i = 0; i < nv; i++) {
            if (!strcmp(keys[k].key, "seed") && (!strcmp(vals[i], "0") || !strcmp(vals[i], "0x10")))
                continue; /* valid seeds */
            int rc = config_with(keys[k].key, vals[i], 0, &e, &line);
            snprintf(where, sizeof where, "c.ini:%d:", line);
            CHECK(c, rc == VL_ECONFIG && strstr(e.msg, where) && !strchr(e.msg, '\n'),
                  "config %s = %s: one-line error at %s (%s)", keys[k].key, vals[i], where,
                  e.msg);
        }
        int rc = config_with(keys[k].key, NULL, 1, &e, &line);
        snprintf(where, sizeof where, "c.ini:%d: NUL byte", line);
        CHECK(c, rc == VL_ECONFIG && strstr(e.msg, where), "config %s with a NUL inside: %s",
              keys[k].key, e.msg);
    }
    /* an unknown name in a name list: an error, and no shift by an unset count */
    int rc = config_with("plots", "kld_matrix, no_such_plot", 0, &e, &line);
    CHECK(c, rc == VL_ECONFIG && strstr(e.msg, "no_such_plot"), "unknown plot name: %s", e.msg);
    rc = config_with("tables", "no_such_table", 0, &e, &line);
    CHECK(c, rc == VL_ECONFIG && strstr(e.msg, "no_such_table"), "unknown table name: %s",
          e.msg);
}

/* ---------------------------------------------------------------- the CLI */

static void test_cli(chk *c)
{
    char *b = (char *)tio_bin();
    char ids[128];
    snprintf(ids, sizeof ids, "%s/ids.txt", dir);
    write_file(ids, "1 2\0 3\n", 7);
    char *cases[][12] = {
        {b, "plot", "kld-matrix", "x.h5", "--layer", "99999999999999999999", NULL},
        {b, "plot", "kld-matrix", "x.h5", "--layer", "-1", NULL},
        {b, "plot", "kld-matrix", "x.h5", "--size", "100x99999999999999999999", NULL},
        {b, "plot", "kld-matrix", "x.h5", "--size", "100x100junk", NULL},
        {b, "plot", "kld-matrix", "x.h5", "--size", " 100x100", NULL},
        {b, "stats", "--batch", "99999999999999999999", NULL},
        {b, "stats", "--batch", "8x", NULL},
        {b, "eval", "--seed", "-1", NULL},
        {b, "eval", "--seed", "18446744073709551616", NULL},
        {b, "eval", "--batch", "1e3", NULL},
        {b, "sens", "--eps", "0.01,nan", NULL},
        {b, "sens", "--eps", "0.01,1e999", NULL},
        {b, "sens", "--eps", "0.01", NULL},
        {b, "sens", "--seed", "1.5", NULL},
        {b, "sens", "--seed", "9007199254740993", NULL},
        {b, "alloc", "--node-limit", "99999999999999999999", NULL},
        {b, "alloc", "--node-limit", "-5", NULL},
        {b, "forward", "--ids", "1,99999999999999999999", "--out", "x.h5", NULL},
        {b, "forward", "--ids", "1,2x", "--out", "x.h5", NULL},
        {b, "forward", "--ids-file", ids, "--out", "x.h5", NULL},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char out[4096];
        int st = tio_runv(cases[k], out, sizeof out);
        size_t n = strlen(out);
        int one = n > 0 && out[n - 1] == '\n' && strchr(out, '\n') == out + n - 1;
        if (n && out[n - 1] == '\n')
            out[n - 1] = '\0';
        CHECK(c, st != 0 && st != -1 && one, "vbrlab %s %s %s: exit %d, one line (%s)",
              cases[k][1], cases[k][2], cases[k][3], st, out);
    }
}

/* ---------------------------------------------------------------- stores */

/* A one-tensor α-only sensitivity store, then its seed attribute overwritten with v. */
static int sens_seed(double v, vl_err *e)
{
    char path[128];
    snprintf(path, sizeof path, "%s/sens.h5", dir);
    sens_tensor t = {0, "model.layers.0.self_attn.q_proj.weight", 0, -1, SENS_P_Q, 4, 4, 16, 0};
    char *un[1] = {t.name}, *sn[1] = {"en"};
    int64_t tok[1] = {64};
    double k0[1] = {1e-4}, k1[1] = {9e-4}, a0[1] = {1}, a1[1] = {1};
    sens_result r;
    memset(&r, 0, sizeof r);
    r.gran = SENS_TENSOR;
    r.n_tensors = r.n_units = r.n_sets = 1;
    r.t = &t;
    r.unit_name = un;
    r.set_name = sn;
    r.set_tokens = tok;
    r.eps[0] = 0.01;
    r.eps[1] = 0.03;
    r.seed = 7;
    r.kld[0] = k0;
    r.kld[1] = k1;
    r.alpha[0] = a0;
    r.alpha[1] = a1;
    h5s_store *s;
    int rc = h5s_create(&s, path, e);
    if (!rc && (rc = sens_write(&r, s, e)) == 0)
        rc = h5s_attr_set_f64(s, "/sens", "seed", v, e);
    if (!rc)
        rc = h5s_commit(s, e);
    else
        h5s_close(s);
    if (rc)
        return 1000 + rc;
    rc = h5s_open(&s, path, e);
    sens_result b;
    if (!rc) {
        rc = sens_read(&b, s, e);
        if (!rc) {
            rc = b.seed == 7 ? 0 : -999;
            sens_result_free(&b);
        }
        h5s_close(s);
    }
    return rc;
}

static void test_stores(chk *c)
{
    vl_err e = {0, ""};
    CHECK_INT(c, sens_seed(7, &e), 0, "sens store with seed 7 reads back");
    static const double bad[] = {NAN, -1, 1e300, INFINITY, 0.5, 9007199254740994.0};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = sens_seed(bad[i], &e);
        CHECK(c, rc == VL_EFORMAT && strstr(e.msg, "seed"), "sens store with seed %g: %s", bad[i],
              e.msg);
    }
    sens_result r;
    memset(&r, 0, sizeof r);
    r.seed = ((uint64_t)1 << 53) + 1;
    h5s_store *s;
    char path[128];
    snprintf(path, sizeof path, "%s/sens2.h5", dir);
    h5s_create(&s, path, &e);
    CHECK_INT(c, sens_write(&r, s, &e), VL_ERANGE, "sens_write refuses a seed it cannot store");
    h5s_close(s);
}

int main(void)
{
    chk c;
    chk_init(&c, "test_num");
    if (tio_tmpdir(dir, sizeof dir, "test-num"))
        return 1;
    test_ints(&c);
    test_doubles(&c);
    test_nul(&c);
    test_problem_files(&c);
    test_layer_names(&c);
    test_configs(&c);
    test_cli(&c);
    test_stores(&c);
    tio_rmtree(dir);
    return chk_done(&c);
}
