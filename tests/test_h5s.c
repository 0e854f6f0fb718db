/* tests/test_h5s.c — the HDF5 results store: round trips of every dtype and rank, attributes,
 * queries, replacement, atomic commit/close, reading golden.h5, error paths on missing
 * datasets and corrupt files (random bytes, empty, a truncation sweep), byte-identical output
 * for identical writes, and the text dump. Files live in a mkdtemp directory under /tmp. */
#define _POSIX_C_SOURCE 200809L
#include "../io/h5s.h"
#include "check.h"
#include "testio.h"

#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GOLDEN "models/vbrlab-moe-tiny/golden.h5"

/* HDF5 1.10.8 leaks one internal block (56 or 424 bytes) each time it rejects a group's object
 * header with a bad checksum, which the bit-flip test provokes on purpose (checked: each leak
 * comes from one failing H5Lexists inside libhdf5, after which we hold no id). Read only by
 * LeakSanitizer; our own allocations are still checked. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libhdf5_serial.so\n"; }

static char g_dir[64];

static const char *tpath(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", g_dir, name);
    return buf;
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Whole file into memory (test helper; aborts the check on failure by returning NULL). */

static void spit(const char *p, const unsigned char *b, size_t n)
{
    FILE *f = fopen(p, "wb");
    if (f) {
        if (n)
            fwrite(b, 1, n, f);
        fclose(f);
    }
}

static int one_line(const char *msg) { return msg[0] && !strchr(msg, '\n'); }

/* Fill n elements of type t with values that exercise the type's range. */
static void fill(h5s_dtype t, void *data, size_t n, int seed)
{
    for (size_t i = 0; i < n; i++) {
        int64_t k = (int64_t)(i * 2654435761u + (unsigned)seed * 40503u) % 100003 - 50001;
        switch (t) {
        case H5S_F32: {
            static const float sp[] = {0.0f, -0.0f, 1e-45f, 3.4028235e38f, -INFINITY, 1.5f};
            ((float *)data)[i] = i < 6 ? sp[i] : (float)k * 0.37f;
            break;
        }
        case H5S_F64: {
            static const double sp[] = {0.0, -0.0, 4.9e-324, 1.7976931348623157e308, INFINITY};
            ((double *)data)[i] = i < 5 ? sp[i] : (double)k * 1.000000001e-3;
            break;
        }
        case H5S_I32: ((int32_t *)data)[i] = i == 0 ? INT32_MIN : i == 1 ? INT32_MAX : (int32_t)k;
            break;
        case H5S_I64: ((int64_t *)data)[i] = i == 0 ? INT64_MIN : i == 1 ? INT64_MAX : k * 1048576;
            break;
        case H5S_U8: ((uint8_t *)data)[i] = (uint8_t)(k & 0xff); break;
        default: break;
        }
    }
}

static const size_t ESZ[H5S_DTYPE_COUNT] = {4, 8, 4, 8, 1};

static void test_roundtrip(chk *c)
{
    static const int64_t shapes[4][4] = {{7}, {3, 5}, {2, 3, 4}, {2, 1, 3, 2}};
    char p[256];
    tpath(p, sizeof p, "rt.h5");
    vl_err e = {0, ""};
    h5s_store *s = NULL;
    int rc = h5s_create(&s, p, &e);
    CHECK_INT(c, rc, 0, "create");
    if (rc)
        return;
    void *ref[H5S_DTYPE_COUNT][4];
    size_t cnt[4];
    for (int t = 0; t < H5S_DTYPE_COUNT; t++)
        for (int d = 0; d < 4; d++) {
            size_t n = 1;
            for (int i = 0; i <= d; i++)
                n *= (size_t)shapes[d][i];
            cnt[d] = n;
            ref[t][d] = malloc(n * ESZ[t]);
            fill((h5s_dtype)t, ref[t][d], n, t * 10 + d);
            char ds[64];
            snprintf(ds, sizeof ds, "/rt/t%d/d%d", t, d + 1);
            rc = h5s_write(s, ds, (h5s_dtype)t, ref[t][d], d + 1, shapes[d], "1", "test data",
                           &e);
            if (rc)
                CHECK(c, 0, "write %s: %s", ds, e.msg);
        }
    rc = h5s_commit(s, &e);
    CHECK(c, rc == 0, "commit: %s", rc ? e.msg : "ok");
    CHECK(c, !file_exists(strcat(strcpy((char[300]){0}, p), ".tmp")), "no tmp after commit");

    rc = h5s_open(&s, p, &e);
    CHECK(c, rc == 0, "reopen: %s", rc ? e.msg : "ok");
    if (rc)
        return;
    for (int t = 0; t < H5S_DTYPE_COUNT; t++)
        for (int d = 0; d < 4; d++) {
            char ds[64];
            snprintf(ds, sizeof ds, "/rt/t%d/d%d", t, d + 1);
            void *got = NULL;
            int nd = -1;
            int64_t sh[H5S_MAX_DIMS] = {0};
            rc = h5s_read(s, ds, (h5s_dtype)t, &got, &nd, sh, &e);
            int ok = rc == 0 && nd == d + 1 && memcmp(sh, shapes[d], (size_t)nd * 8) == 0 &&
                     memcmp(got, ref[t][d], cnt[d] * ESZ[t]) == 0;
            CHECK(c, ok, "round trip dtype %d rank %d exact%s%s", t, d + 1, rc ? ": " : "",
                  rc ? e.msg : "");
            free(got);
        }
    /* conversion on read: i32 → f64 and f32 → f64 are exact */
    double *dv = NULL;
    rc = h5s_read(s, "/rt/t2/d1", H5S_F64, (void **)&dv, NULL, NULL, &e);
    CHECK(c, rc == 0 && dv[0] == (double)INT32_MIN && dv[3] == (double)((int32_t *)ref[2][0])[3],
          "i32 read as f64");
    free(dv);
    rc = h5s_read(s, "/rt/t0/d2", H5S_F64, (void **)&dv, NULL, NULL, &e);
    CHECK(c, rc == 0 && dv[5] == (double)((float *)ref[0][1])[5] && dv[4] == -INFINITY,
          "f32 read as f64");
    free(dv);
    /* units and meaning came along */
    char *u = NULL, *m = NULL;
    h5s_attr_get(s, "/rt/t1/d3", "units", &u, &e);
    h5s_attr_get(s, "/rt/t1/d3", "meaning", &m, &e);
    CHECK_STR(c, u, "1", "units attribute");
    CHECK_STR(c, m, "test data", "meaning attribute");
    free(u);
    free(m);
    /* writing to a read-only store is refused */
    int32_t one = 1;
    int64_t sh1 = 1;
    rc = h5s_write(s, "/x", H5S_I32, &one, 1, &sh1, "1", "x", &e);
    CHECK(c, rc == VL_EARG && strstr(e.msg, "read-only"), "write on read-only: %s", e.msg);
    h5s_close(s);
    for (int t = 0; t < H5S_DTYPE_COUNT; t++)
        for (int d = 0; d < 4; d++)
            free(ref[t][d]);
    CHECK(c, file_exists(p), "read-only close keeps the file");
}

static void test_attrs_queries(chk *c)
{
    char p[256];
    tpath(p, sizeof p, "attr.h5");
    vl_err e = {0, ""};
    h5s_store *s = NULL;
    if (h5s_create(&s, p, &e)) {
        CHECK(c, 0, "create: %s", e.msg);
        return;
    }
    int64_t sh[2] = {2, 2};
    double v[4] = {1, 2, 3, 4};
    const char *names[] = {"c2", "b", "c10", "a"};
    for (int i = 0; i < 4; i++) {
        char ds[32];
        snprintf(ds, sizeof ds, "/g/%s", names[i]);
        h5s_write(s, ds, H5S_F64, v, 2, sh, "nat", "a number", &e);
    }
    CHECK_INT(c, h5s_attr_set(s, "/", "model", "vbrlab-moe-tiny ünïcode", &e), 0, "set root attr");
    CHECK_INT(c, h5s_attr_set(s, "/g", "note", "", &e), 0, "set empty string attr");
    CHECK_INT(c, h5s_attr_set_f64(s, "/g/a", "scale", -0.1, &e), 0, "set f64 attr");
    CHECK_INT(c, h5s_attr_set_f64(s, "/g/a", "scale", 1e-300, &e), 0, "replace f64 attr");
    CHECK_INT(c, h5s_attr_set(s, "/nope", "x", "y", &e), VL_ENOTFOUND, "attr on missing object");
    /* units/meaning required */
    CHECK_INT(c, h5s_write(s, "/g/z", H5S_F64, v, 2, sh, NULL, "m", &e), VL_EARG, "NULL units");
    CHECK_INT(c, h5s_write(s, "/g/z", H5S_F64, v, 2, sh, "u", "", &e), VL_EARG, "empty meaning");
    CHECK_INT(c, h5s_exists(s, "/g/z"), 0, "refused write created nothing");
    /* a dataset is not a group */
    CHECK(c, h5s_write(s, "/g/a/x", H5S_F64, v, 2, sh, "u", "m", &e) < 0 &&
                 strstr(e.msg, "/g/a"), "dataset under a dataset refused: %s", e.msg);
    CHECK_INT(c, h5s_write(s, "/g", H5S_F64, v, 2, sh, "u", "m", &e), VL_EARG,
              "a group is never replaced by a dataset");
    /* replace: different dtype, shape, values */
    int64_t sh3[1] = {3};
    int32_t iv[3] = {7, 8, 9};
    CHECK_INT(c, h5s_write(s, "/g/b", H5S_I32, iv, 1, sh3, "count", "replaced", &e), 0,
              "replace dataset");
    double pi = 3.141592653589793;
    CHECK_INT(c, h5s_write(s, "/scalar", H5S_F64, &pi, 0, NULL, "1", "pi", &e), 0,
              "write scalar");
    CHECK_INT(c, h5s_commit(s, &e), 0, "commit");

    if (h5s_open(&s, p, &e)) {
        CHECK(c, 0, "open: %s", e.msg);
        return;
    }
    char *str = NULL;
    double d = 0;
    h5s_attr_get(s, "/", "model", &str, &e);
    CHECK_STR(c, str, "vbrlab-moe-tiny ünïcode", "string attr round trip");
    free(str);
    h5s_attr_get(s, "/g", "note", &str, &e);
    CHECK_STR(c, str, "", "empty string attr");
    free(str);
    h5s_attr_get(s, "/", "creator", &str, &e);
    CHECK_STR(c, str, "vbrlab", "creator");
    free(str);
    CHECK(c, h5s_attr_get_f64(s, "/", "schema_version", &d, &e) == 0 && d == H5S_SCHEMA_VERSION,
          "schema_version = %g", d);
    CHECK(c, h5s_attr_get_f64(s, "/g/a", "scale", &d, &e) == 0 && d == 1e-300,
          "f64 attr round trip %.17g", d);
    CHECK_INT(c, h5s_attr_get(s, "/g/a", "missing", &str, &e), VL_ENOTFOUND, "missing attr");
    CHECK_HAS(c, e.msg, "missing", "missing attr message");
    CHECK_INT(c, h5s_attr_get_f64(s, "/g/a", "units", &d, &e), VL_EDTYPE, "string as f64");
    CHECK_INT(c, h5s_exists(s, "/g/a"), 1, "exists dataset");
    CHECK_INT(c, h5s_exists(s, "/g"), 1, "exists group");
    CHECK_INT(c, h5s_exists(s, "/"), 1, "exists root");
    CHECK_INT(c, h5s_exists(s, "/g/q"), 0, "absent dataset");
    CHECK_INT(c, h5s_exists(s, "/x/y/z"), 0, "absent parents");
    CHECK_INT(c, h5s_exists(s, "g"), 0, "relative path");
    int nd = 0;
    int64_t shp[H5S_MAX_DIMS];
    CHECK(c, h5s_shape(s, "/g/c2", &nd, shp, &e) == 0 && nd == 2 && shp[0] == 2 && shp[1] == 2,
          "shape /g/c2");
    CHECK(c, h5s_shape(s, "/g/b", &nd, shp, &e) == 0 && nd == 1 && shp[0] == 3,
          "shape after replace");
    CHECK_INT(c, h5s_shape(s, "/g", &nd, shp, &e), VL_EFORMAT, "shape of a group");
    double *sc = NULL;
    CHECK(c, h5s_read(s, "/scalar", H5S_F64, (void **)&sc, &nd, shp, &e) == 0 && nd == 0 &&
                 *sc == 3.141592653589793, "scalar round trip");
    free(sc);
    int32_t *got = NULL;
    CHECK(c, h5s_read(s, "/g/b", H5S_I32, (void **)&got, NULL, NULL, &e) == 0 && got[2] == 9,
          "replaced values");
    free(got);
    h5s_attr_get(s, "/g/b", "meaning", &str, &e);
    CHECK_STR(c, str, "replaced", "replaced meaning");
    free(str);
    char **ls = NULL;
    int n = 0;
    CHECK_INT(c, h5s_list(s, "/g", &ls, &n, &e), 0, "list /g");
    CHECK(c, n == 4 && !strcmp(ls[0], "a") && !strcmp(ls[1], "b") && !strcmp(ls[2], "c10") &&
                 !strcmp(ls[3], "c2"), "list sorted (%d members)", n);
    h5s_names_free(ls, n);
    CHECK(c, h5s_list(s, "/", &ls, &n, &e) == 0 && n == 2 && !strcmp(ls[0], "g") &&
                 !strcmp(ls[1], "scalar"), "list /");
    h5s_names_free(ls, n);
    CHECK_INT(c, h5s_list(s, "/zz", &ls, &n, &e), VL_ENOTFOUND, "list missing group");
    CHECK_INT(c, h5s_list(s, "/g/a", &ls, &n, &e), VL_EARG, "list a dataset");

    /* dump: exact text */
    char dp[256];
    FILE *f = fopen(tpath(dp, sizeof dp, "dump.txt"), "w");
    CHECK_INT(c, h5s_dump(s, f, &e), 0, "dump");
    fclose(f);
    size_t dn = 0;
    char *txt = tio_slurp(dp, &dn);
    static const char want[] =
        "GROUP /\n"
        "  @creator str = \"vbrlab\"\n"
        "  @model str = \"vbrlab-moe-tiny ünïcode\"\n"
        "  @schema_version i32 = 1\n"
        "GROUP /g\n"
        "  @note str = \"\"\n"
        "DATASET /g/a f64 [2,2]\n"
        "  @meaning str = \"a number\"\n"
        "  @scale f64 = 1e-300\n"
        "  @units str = \"nat\"\n"
        "DATASET /g/b i32 [3]\n"
        "  @meaning str = \"replaced\"\n"
        "  @units str = \"count\"\n"
        "DATASET /g/c10 f64 [2,2]\n"
        "  @meaning str = \"a number\"\n"
        "  @units str = \"nat\"\n"
        "DATASET /g/c2 f64 [2,2]\n"
        "  @meaning str = \"a number\"\n"
        "  @units str = \"nat\"\n"
        "DATASET /scalar f64 []\n"
        "  @meaning str = \"pi\"\n"
        "  @units str = \"1\"\n";
    CHECK(c, txt && dn == strlen(want) && !memcmp(txt, want, dn), "dump text:\n%.*s",
          (int)dn, txt ? txt : "");
    free(txt);
    h5s_close(s);
}

/* Name lists: joined by '\n' in one string attribute; read back exactly, "" as no name, a
 * trailing newline (a hand-written list) ending the last name, a name with '\n' refused. */
static void test_names(chk *c)
{
    char p[256];
    tpath(p, sizeof p, "names.h5");
    vl_err e = {0, ""};
    h5s_store *s = NULL;
    if (h5s_create(&s, p, &e)) {
        CHECK(c, 0, "create: %s", e.msg);
        return;
    }
    const char *v[] = {"blk.0.ffn_up", "", "zh+en", "ünï"};
    char **got = NULL, *raw = NULL;
    int n = -1;
    CHECK_INT(c, h5s_attr_set_names(s, "/", "four", v, 4, &e), 0, "set 4 names");
    CHECK_INT(c, h5s_attr_get(s, "/", "four", &raw, &e), 0, "read as one string");
    CHECK_STR(c, raw, "blk.0.ffn_up\n\nzh+en\nünï", "joined by newlines");
    vl_free(raw);
    CHECK_INT(c, h5s_attr_get_names(s, "/", "four", &got, &n, &e), 0, "get 4 names");
    CHECK(c, n == 4 && !strcmp(got[0], v[0]) && !strcmp(got[1], "") && !strcmp(got[2], v[2]) &&
                 !strcmp(got[3], v[3]),
          "the 4 names back (%d)", n);
    h5s_names_free(got, n);
    CHECK_INT(c, h5s_attr_set_names(s, "/", "none", v, 0, &e), 0, "set 0 names");
    CHECK(c, h5s_attr_get_names(s, "/", "none", &got, &n, &e) == 0 && n == 0, "0 names back");
    h5s_names_free(got, n);
    CHECK_INT(c, h5s_attr_set(s, "/", "trail", "a\nb\n", &e), 0, "a hand-written list");
    CHECK(c, h5s_attr_get_names(s, "/", "trail", &got, &n, &e) == 0 && n == 2 &&
                 !strcmp(got[1], "b"),
          "a trailing newline ends the last name (%d)", n);
    h5s_names_free(got, n);
    const char *bad[] = {"a", "b\nc"};
    CHECK_INT(c, h5s_attr_set_names(s, "/", "bad", bad, 2, &e), VL_EARG, "newline in a name");
    CHECK_HAS(c, e.msg, "name 1 holds a newline", "the message names it");
    CHECK_INT(c, h5s_attr_get_names(s, "/", "absent", &got, &n, &e), VL_ENOTFOUND, "absent");
    CHECK(c, got == NULL && n == 0, "absent: no list");
    h5s_close(s);
}

static void test_atomic(chk *c)
{
    char p[256], t[300];
    tpath(p, sizeof p, "atom.h5");
    snprintf(t, sizeof t, "%s.tmp", p);
    vl_err e = {0, ""};
    h5s_store *s = NULL;
    int64_t sh = 4;
    float v[4] = {1, 2, 3, 4};
    /* stale tmp from a "killed" run is truncated, and close without commit drops everything */
    spit(t, (const unsigned char *)"junk", 4);
    CHECK_INT(c, h5s_create(&s, p, &e), 0, "create over stale tmp");
    CHECK(c, file_exists(t) && !file_exists(p), "writing goes to PATH.tmp");
    h5s_write(s, "/v", H5S_F32, v, 1, &sh, "1", "v", &e);
    h5s_close(s);
    CHECK(c, !file_exists(p) && !file_exists(t), "close without commit leaves nothing");

    CHECK_INT(c, h5s_create(&s, p, &e), 0, "create");
    h5s_write(s, "/v", H5S_F32, v, 1, &sh, "1", "v", &e);
    CHECK_STR(c, h5s_path(s), p, "h5s_path is the final path");
    CHECK_INT(c, h5s_commit(s, &e), 0, "commit");
    CHECK(c, file_exists(p) && !file_exists(t), "commit gives PATH and no tmp");

    size_t n0 = 0, n1 = 0;
    unsigned char *orig = (unsigned char *)tio_slurp(p, &n0);
    CHECK_INT(c, h5s_open_rw(&s, p, &e), 0, "open_rw");
    CHECK(c, file_exists(t), "open_rw works on PATH.tmp");
    float w[4] = {9, 9, 9, 9};
    h5s_write(s, "/v", H5S_F32, w, 1, &sh, "1", "changed", &e);
    h5s_write(s, "/new/x", H5S_F32, w, 1, &sh, "1", "new", &e);
    CHECK_INT(c, h5s_exists(s, "/new/x"), 1, "open_rw sees its write");
    h5s_close(s);
    unsigned char *after = (unsigned char *)tio_slurp(p, &n1);
    CHECK(c, orig && after && n0 == n1 && !memcmp(orig, after, n0) && !file_exists(t),
          "open_rw + close leaves the original bytes and no tmp");
    free(after);

    CHECK_INT(c, h5s_open_rw(&s, p, &e), 0, "open_rw again");
    h5s_write(s, "/new/x", H5S_F32, w, 1, &sh, "1", "new", &e);
    CHECK_INT(c, h5s_commit(s, &e), 0, "commit open_rw");
    CHECK(c, h5s_open(&s, p, &e) == 0 && h5s_exists(s, "/new/x") && h5s_exists(s, "/v"),
          "open_rw commit keeps old and adds new");
    h5s_close(s);
    free(orig);
    unlink(p);
}

static void test_golden(chk *c)
{
    vl_err e = {0, ""};
    h5s_store *s = NULL;
    int rc = h5s_open(&s, GOLDEN, &e);
    CHECK(c, rc == 0, "open golden.h5%s%s", rc ? ": " : "", rc ? e.msg : "");
    if (rc)
        return;
    int nd = 0;
    int64_t sh[H5S_MAX_DIMS];
    int32_t *ids = NULL;
    rc = h5s_read(s, "/input_ids", H5S_I32, (void **)&ids, &nd, sh, &e);
    CHECK(c, rc == 0 && nd == 2 && sh[0] == 3 && sh[1] == 24, "input_ids [3,24]");
    int in_range = rc == 0;
    for (int i = 0; in_range && i < 72; i++)
        in_range = ids[i] >= 0 && ids[i] < 16384;
    CHECK(c, in_range, "input_ids in [0,16384)");
    free(ids);
    float *lg = NULL;
    rc = h5s_read(s, "/logits", H5S_F32, (void **)&lg, &nd, sh, &e);
    CHECK(c, rc == 0 && nd == 3 && sh[0] == 3 && sh[1] == 24 && sh[2] == 16384,
          "logits [3,24,16384]");
    int fin = rc == 0;
    double amax = 0;
    for (long i = 0; fin && i < 3L * 24 * 16384; i++) {
        fin = isfinite(lg[i]);
        amax = fabs(lg[i]) > amax ? fabs(lg[i]) : amax;
    }
    CHECK(c, fin && amax > 1 && amax < 1e4, "logits finite, max |x| %g", amax);
    free(lg);
    char **ls = NULL;
    int n = 0;
    CHECK(c, h5s_list(s, "/hidden_states", &ls, &n, &e) == 0 && n == 7 && !strcmp(ls[0], "00") &&
                 !strcmp(ls[6], "06"), "hidden_states 00..06");
    h5s_names_free(ls, n);
    for (int l = 0; l <= 6; l++) {
        char ds[64];
        snprintf(ds, sizeof ds, "/hidden_states/%02d", l);
        rc = h5s_shape(s, ds, &nd, sh, &e);
        CHECK(c, rc == 0 && nd == 3 && sh[0] == 3 && sh[1] == 24 && sh[2] == 256, "%s [3,24,256]",
              ds);
    }
    for (int l = 0; l <= 5; l++) {
        char ds[64];
        snprintf(ds, sizeof ds, "/router_logits/%02d", l);
        float *r = NULL;
        rc = h5s_read(s, ds, H5S_F32, (void **)&r, &nd, sh, &e);
        int ok = rc == 0 && nd == 2 && sh[0] == 72 && sh[1] == 16;
        for (int i = 0; ok && i < 72 * 16; i++)
            ok = isfinite(r[i]);
        CHECK(c, ok, "%s [72,16] finite", ds);
        free(r);
    }
    /* reading a string dataset as numbers is a typed error, not garbage */
    void *junk = NULL;
    CHECK_INT(c, h5s_read(s, "/domains", H5S_F32, &junk, NULL, NULL, &e), VL_EDTYPE,
              "string dataset as f32");
    /* missing dataset */
    rc = h5s_read(s, "/hidden_states/07", H5S_F32, &junk, NULL, NULL, &e);
    CHECK_INT(c, rc, VL_ENOTFOUND, "missing dataset");
    CHECK(c, strstr(e.msg, GOLDEN) && strstr(e.msg, "/hidden_states/07") && one_line(e.msg),
          "missing dataset message: %s", e.msg);
    CHECK_INT(c, h5s_shape(s, "/nope", &nd, sh, &e), VL_ENOTFOUND, "missing shape");
    /* dump handles foreign files (variable-length strings) */
    char dp[256];
    FILE *f = fopen(tpath(dp, sizeof dp, "gdump.txt"), "w");
    CHECK_INT(c, h5s_dump(s, f, &e), 0, "dump golden.h5");
    fclose(f);
    size_t dn = 0;
    char *txt = tio_slurp(dp, &dn);
    txt = realloc(txt, dn + 1);
    txt[dn] = 0;
    CHECK(c, strstr(txt, "\nDATASET /logits f32 [3,24,16384]\n"), "dump golden logits line");
    CHECK(c, strstr(txt, "\nDATASET /domains vstr [3]\n"), "dump golden strings line");
    CHECK(c, strstr(txt, "\n  @note vstr = \"reference: transformers"), "dump golden note");
    CHECK(c, strstr(txt, "\nDATASET /router_logits/05 f32 [72,16]\n"), "dump golden router");
    free(txt);
    unlink(dp);
    h5s_close(s);
}

/* Open and read everything; 0 if all went through, else the first error code. */
static int try_all(const char *p, vl_err *e)
{
    h5s_store *s = NULL;
    int rc = h5s_open(&s, p, e);
    if (rc)
        return rc;
    const char *ds[] = {"/a", "/grp/b", "/grp/c"};
    for (int i = 0; !rc && i < 3; i++) {
        void *d = NULL;
        rc = h5s_read(s, ds[i], H5S_F64, &d, NULL, NULL, e);
        free(d);
    }
    char *str = NULL;
    if (!rc)
        rc = h5s_attr_get(s, "/grp/b", "units", &str, e);
    free(str);
    FILE *devnull = fopen("/dev/null", "w");
    if (!rc)
        rc = h5s_dump(s, devnull, e);
    fclose(devnull);
    h5s_close(s);
    return rc;
}

static void test_corrupt(chk *c)
{
    char p[256], q[256];
    tpath(p, sizeof p, "small.h5");
    tpath(q, sizeof q, "bad.h5");
    vl_err e = {0, ""};
    h5s_store *s = NULL;
    double a[6] = {1, 2, 3, 4, 5, 6};
    int64_t sh[2] = {2, 3};
    h5s_create(&s, p, &e);
    h5s_write(s, "/a", H5S_F64, a, 2, sh, "1", "a", &e);
    h5s_write(s, "/grp/b", H5S_F64, a, 1, sh + 1, "1", "b", &e);
    h5s_write(s, "/grp/c", H5S_F64, a, 2, sh, "1", "c", &e);
    CHECK_INT(c, h5s_commit(s, &e), 0, "small store");
    CHECK_INT(c, try_all(p, &e), 0, "small store reads back");

    size_t n = 0;
    unsigned char *b = (unsigned char *)tio_slurp(p, &n);
    unsigned char rnd[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof rnd; i++) {
        x = x * 1664525u + 1013904223u;
        rnd[i] = (unsigned char)(x >> 24);
    }
    spit(q, rnd, sizeof rnd);
    int rc = h5s_open(&s, q, &e);
    CHECK(c, rc == VL_EFORMAT && strstr(e.msg, q) && strstr(e.msg, "not an HDF5 file") &&
                 one_line(e.msg), "random bytes: %s", e.msg);
    spit(q, rnd, 0);
    rc = h5s_open(&s, q, &e);
    CHECK(c, rc == VL_EFORMAT && strstr(e.msg, "not an HDF5 file or truncated"), "empty: %s",
          e.msg);
    rc = h5s_open_rw(&s, q, &e);
    char t[300];
    snprintf(t, sizeof t, "%s.tmp", q);
    CHECK(c, rc == VL_EFORMAT && !file_exists(t), "open_rw on empty file fails, no tmp");
    rc = h5s_open(&s, "/nonexistent/x.h5", &e);
    CHECK(c, rc == VL_ENOTFOUND && strstr(e.msg, "/nonexistent/x.h5"), "missing file: %s", e.msg);

    /* truncation sweep: every prefix in steps of 97 bytes plus the last 16 lengths */
    int rejected = 0, total = 0, bad_msg = 0;
    c->quiet = 1;
    for (size_t len = 0; b && len < n; len = len + 97 < n - 16 ? len + 97 : (len < n - 16 ? n - 16 : len + 1)) {
        spit(q, b, len);
        vl_err ee = {0, ""};
        rc = try_all(q, &ee);
        total++;
        if (rc < 0) {
            rejected++;
            if (!one_line(ee.msg) || !strstr(ee.msg, q))
                bad_msg++;
        }
    }
    c->quiet = 0;
    CHECK(c, total > 16 && rejected == total, "truncation sweep: %d of %d prefixes rejected (file %zu bytes)",
          rejected, total, n);
    CHECK_INT(c, bad_msg, 0, "truncation errors are one line naming the file");
    /* flipped bytes in the middle: must not crash; errors are one line */
    int flips = 0, flip_bad = 0;
    for (size_t i = 0; b && i < n; i += 13) {
        unsigned char save = b[i];
        b[i] ^= 0x5a;
        spit(q, b, n);
        b[i] = save;
        vl_err ee = {0, ""};
        if (try_all(q, &ee) < 0) {
            flips++;
            flip_bad += !one_line(ee.msg);
        }
    }
    CHECK(c, flip_bad == 0, "bit flips: %d rejected, all with one-line errors", flips);
    free(b);
    unlink(p);
    unlink(q);
}

static void write_fixed(const char *p)
{
    vl_err e;
    h5s_store *s = NULL;
    if (h5s_create(&s, p, &e))
        return;
    float v[24];
    for (int i = 0; i < 24; i++)
        v[i] = (float)i * 0.5f;
    int64_t sh[3] = {2, 3, 4};
    h5s_write(s, "/hidden_states/00", H5S_F32, v, 3, sh, "1", "h", &e);
    h5s_write(s, "/stats/sum", H5S_F64, (double[]){1, 2}, 1, (int64_t[]){2}, "1", "s", &e);
    h5s_write(s, "/hidden_states/00", H5S_F32, v, 2, sh + 1, "1", "replaced", &e);
    h5s_attr_set(s, "/stats", "calib", "en", &e);
    h5s_attr_set_f64(s, "/stats/sum", "seed", 42, &e);
    h5s_commit(s, &e);
}

static void test_determinism(chk *c)
{
    char p1[256], p2[256];
    tpath(p1, sizeof p1, "det1.h5");
    tpath(p2, sizeof p2, "det2.h5");
    write_fixed(p1);
    sleep(1); /* a timestamp anywhere in the file would now differ */
    write_fixed(p2);
    size_t n1 = 0, n2 = 0;
    unsigned char *a = (unsigned char *)tio_slurp(p1, &n1), *b = (unsigned char *)tio_slurp(p2, &n2);
    CHECK(c, a && b && n1 == n2 && n1 > 0 && !memcmp(a, b, n1),
          "identical writes give identical files (%zu and %zu bytes)", n1, n2);
    free(a);
    free(b);
    unlink(p1);
    unlink(p2);
}

int main(void)
{
    chk c;
    chk_init(&c, "test_h5s");
    if (tio_tmpdir(g_dir, sizeof g_dir, "h5s")) {
        CHECK(&c, 0, "mkdtemp");
        return chk_done(&c);
    }
    test_roundtrip(&c);
    test_attrs_queries(&c);
    test_names(&c);
    test_atomic(&c);
    test_golden(&c);
    test_corrupt(&c);
    test_determinism(&c);
    char p[256];
    unlink(tpath(p, sizeof p, "rt.h5"));
    unlink(tpath(p, sizeof p, "attr.h5"));
    unlink(tpath(p, sizeof p, "dump.txt"));
    CHECK(&c, rmdir(g_dir) == 0, "temporary directory empty at the end");
    return chk_done(&c);
}
