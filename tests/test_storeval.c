/* tests/test_storeval.c — every command that reads a stored object refuses a store that
 * contradicts itself (issue #19, deliverable 2).
 *
 * One valid store is made by a small run (tests/data/run-tiny.ini: sensitivities, an
 * allocation and an evaluation in one file). For each stored object — sensitivities (/sens),
 * the allocation (/alloc/en-2.5), the evaluation (/eval) — corrupted copies are generated
 * programmatically: a shape that contradicts the attributes describing it, a negative count,
 * a NaN or infinity where the schema promises a finite number, an out-of-range seed (or, for
 * the allocation, which stores none, an out-of-range target), a name outside the name rule, a
 * missing dataset, and a truncated file. Each copy is then read by every command that reads
 * that object; each must exit non-zero with one line naming the file and the problem.
 * The valid store itself passes every reader (the validators refuse nothing a run writes).
 */
#define _XOPEN_SOURCE 700
#include "../io/h5s.h"
#include "check.h"
#include "testio.h"

#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[128], base[256], bad[256], cfg_base[256], cfg_bad[256];
static const char *bin;

/* run-tiny.ini with `out` = OUT, written to PATH. */
static void make_config(const char *path, const char *out)
{
    char *src = tio_slurp("tests/data/run-tiny.ini", NULL);
    FILE *f = fopen(path, "w");
    for (char *line = src, *next; f && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (!strncmp(line, "out =", 5))
            fprintf(f, "out = %s\n", out);
        else
            fprintf(f, "%s\n", line);
    }
    if (f)
        fclose(f);
    free(src);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int copy_file(const char *src, const char *dst)
{
    size_t n;
    char *b = tio_slurp(src, &n);
    FILE *f = b ? fopen(dst, "wb") : NULL;
    int ok = f && fwrite(b, 1, n, f) == n;
    if (f)
        ok &= fclose(f) == 0;
    free(b);
    return ok ? 0 : -1;
}

/* ---------------------------------------------------------------- corruptions */

typedef enum { C_VALUE, C_RESHAPE, C_ATTR_F, C_ATTR_S, C_DELETE, C_TRUNC } ckind;

typedef struct {
    const char *what;  /* the problem, for the check's name */
    ckind k;
    const char *path;  /* dataset, or the object of an attribute */
    h5s_dtype t;       /* stored type of a dataset */
    const char *attr;  /* attribute name */
    double v;          /* the value written (C_VALUE: at index idx; C_ATTR_F) */
    int idx;
    const char *s;     /* C_ATTR_S: the string written */
    const char *want;  /* a piece of the expected message (the problem named) */
} corruption;

/* Write DATA (count values as doubles) back as type t with shape sh. */
static int put(h5s_store *s, const char *path, h5s_dtype t, const double *x, int nd,
               const int64_t *sh, vl_err *e)
{
    int64_t n = 1;
    for (int k = 0; k < nd; k++)
        n *= sh[k];
    size_t es = t == H5S_U8 ? 1 : t == H5S_F32 || t == H5S_I32 ? 4 : 8;
    void *buf = calloc((size_t)(n ? n : 1), es);
    for (int64_t i = 0; i < n; i++)
        switch (t) {
        case H5S_F32: ((float *)buf)[i] = (float)x[i]; break;
        case H5S_F64: ((double *)buf)[i] = x[i]; break;
        case H5S_I32: ((int32_t *)buf)[i] = (int32_t)x[i]; break;
        case H5S_I64: ((int64_t *)buf)[i] = (int64_t)x[i]; break;
        default: ((uint8_t *)buf)[i] = (uint8_t)x[i]; break;
        }
    int rc = h5s_write(s, path, t, buf, nd, sh, "1", "corrupted by tests/test_storeval.c", e);
    free(buf);
    return rc;
}

/* Make BAD from BASE with corruption C applied. */
static int corrupt(const corruption *c)
{
    unlink(bad);
    if (copy_file(base, bad))
        return -1;
    if (c->k == C_TRUNC) {
        struct stat st;
        return stat(bad, &st) || truncate(bad, st.st_size / 2) ? -1 : 0;
    }
    if (c->k == C_DELETE) { /* h5s has no delete: the test edits the file with libhdf5 itself */
        hid_t f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
        int rc = f < 0 || H5Ldelete(f, c->path, H5P_DEFAULT) < 0 ? -1 : 0;
        if (f >= 0)
            H5Fclose(f);
        return rc;
    }
    h5s_store *s;
    vl_err e = {0, ""};
    if (h5s_open_rw(&s, bad, &e))
        return -1;
    int rc = 0;
    if (c->k == C_ATTR_F)
        rc = h5s_attr_set_f64(s, c->path, c->attr, c->v, &e);
    else if (c->k == C_ATTR_S)
        rc = h5s_attr_set(s, c->path, c->attr, c->s, &e);
    else {
        double *x = NULL;
        int nd;
        int64_t sh[H5S_MAX_DIMS];
        rc = h5s_read(s, c->path, H5S_F64, (void **)&x, &nd, sh, &e);
        if (!rc && c->k == C_VALUE) {
            x[c->idx] = c->v;
            rc = put(s, c->path, c->t, x, nd, sh, &e);
        } else if (!rc) { /* one more entry along the last axis (padded by repeating) */
            int64_t n = 1, inner = sh[nd - 1];
            for (int k = 0; k < nd; k++)
                n *= sh[k];
            double *y = calloc((size_t)(n / inner * (inner + 1)), sizeof *y);
            for (int64_t o = 0; o < n / inner; o++)
                for (int64_t i = 0; i <= inner; i++)
                    y[o * (inner + 1) + i] = x[o * inner + (i < inner ? i : inner - 1)];
            sh[nd - 1]++;
            rc = put(s, c->path, c->t, y, nd, sh, &e);
            free(y);
        }
        vl_free(x);
    }
    if (rc) {
        printf("corrupt %s: %s\n", c->what, e.msg);
        h5s_close(s);
        return -1;
    }
    return h5s_commit(s, &e) ? -1 : 0;
}

/* ---------------------------------------------------------------- the readers */

/* A command line with BAD for the store and CFG for the run config; NULL-terminated words. */
typedef struct {
    const char *name;
    const char *argv[16];
} command;

static const command sens_cmds[] = {
    {"alloc --sens", {"alloc", "--sens", "@", "--set", "en", "--target-bpw", "2.5", "--error",
                      "rel", NULL}},
    {"plot sens-map", {"plot", "sens-map", "@", "--set", "en", "-o", "#fig.png", NULL}},
    {"plot rd", {"plot", "rd", "@", "-o", "#fig.png", NULL}},
    {"run (report)", {"run", "%", "--only", "report", NULL}},
};
static const command alloc_cmds[] = {
    {"eval --alloc", {"eval", "--alloc", "@:en-2.5", "--domain",
                      "zh=data/corpus/zh.eval.txt,seqs=1,len=8", "-o", "#ev.h5", NULL}},
    {"plot alloc-map", {"plot", "alloc-map", "@", "--set", "en-2.5", "-o", "#fig.png", NULL}},
    {"run (report)", {"run", "%", "--only", "report", NULL}},
};
static const command eval_cmds[] = {
    {"plot kld-matrix", {"plot", "kld-matrix", "@", "-o", "#fig.png", NULL}},
    {"plot kld-vs-bpw", {"plot", "kld-vs-bpw", "@", "-o", "#fig.png", NULL}},
    {"run (report)", {"run", "%", "--only", "report", NULL}},
};

/* Run command C on STORE (its config CFG); output into out. '@' → store, '%' → cfg, '#x' →
 * DIR/x. */
static int run_cmd(const command *c, const char *store, const char *cfg, char *out, size_t cap)
{
    char words[16][512];
    char *argv[18];
    int n = 0;
    argv[n++] = (char *)bin;
    for (int i = 0; c->argv[i]; i++) {
        const char *w = c->argv[i];
        if (w[0] == '@')
            snprintf(words[i], sizeof words[i], "%s%s", store, w + 1);
        else if (w[0] == '%')
            snprintf(words[i], sizeof words[i], "%s", cfg);
        else if (w[0] == '#')
            snprintf(words[i], sizeof words[i], "%s/%s", dir, w + 1);
        else
            snprintf(words[i], sizeof words[i], "%s", w);
        argv[n++] = words[i];
    }
    argv[n] = NULL;
    return tio_runv(argv, out, cap);
}

/* The last line of out (the error; the runner logs its cached stages first). */
static const char *last_line(char *out)
{
    size_t n = strlen(out);
    while (n && out[n - 1] == '\n')
        out[--n] = '\0';
    char *p = strrchr(out, '\n');
    return p ? p + 1 : out;
}

static void check_object(chk *c, const char *object, const corruption *cs, int ncs,
                         const command *cmds, int ncmd)
{
    char out[16384];
    for (int i = 0; i < ncs; i++) {
        if (corrupt(&cs[i])) {
            CHECK(c, 0, "%s: corrupted copy made (%s)", object, cs[i].what);
            continue;
        }
        for (int k = 0; k < ncmd; k++) {
            char fig[300];
            snprintf(fig, sizeof fig, "%s/fig.png", dir);
            unlink(fig);
            int st = run_cmd(&cmds[k], bad, cfg_bad, out, sizeof out);
            int is_run = !strcmp(cmds[k].argv[0], "run");
            /* a plain command prints exactly one line; the runner logs cached stages first */
            int one = is_run || !strchr(out, '\n') || strchr(out, '\n') == out + strlen(out) - 1;
            const char *line = last_line(out);
            CHECK(c, st != 0 && st != -1 && one && strstr(line, bad) && strstr(line, cs[i].want) &&
                         access(fig, F_OK) != 0,
                  "%s, %s: vbrlab %s exits %d with one line naming the file and \"%s\" (%s)",
                  object, cs[i].what, cmds[k].name, st, cs[i].want, line);
        }
    }
}

int main(void)
{
    chk c;
    chk_init(&c, "storeval");
    bin = getenv("VBRLAB_BIN") ? getenv("VBRLAB_BIN") : "build/vbrlab";
    if (tio_tmpdir(dir, sizeof dir, "test-storeval"))
        return 1;
    snprintf(base, sizeof base, "%s/base.h5", dir);
    snprintf(bad, sizeof bad, "%s/bad.h5", dir);
    snprintf(cfg_base, sizeof cfg_base, "%s/base.ini", dir);
    snprintf(cfg_bad, sizeof cfg_bad, "%s/bad.ini", dir);
    make_config(cfg_base, base);
    make_config(cfg_bad, bad);

    char out[16384];
    char *argv[] = {(char *)bin, "run", cfg_base, NULL};
    int st = tio_runv(argv, out, sizeof out);
    CHECK(&c, st == 0, "the small run makes a valid store (%s)", st ? last_line(out) : "ok");
    if (st)
        return chk_done(&c);

    /* the valid store passes every reader */
    const struct {
        const command *cmds;
        int n;
    } all[] = {{sens_cmds, 4}, {alloc_cmds, 3}, {eval_cmds, 3}};
    if (copy_file(base, bad) == 0)
        for (int o = 0; o < 3; o++)
            for (int k = 0; k < all[o].n; k++) {
                st = run_cmd(&all[o].cmds[k], bad, cfg_bad, out, sizeof out);
                CHECK(&c, st == 0, "valid store: vbrlab %s succeeds (%s)", all[o].cmds[k].name,
                      st ? last_line(out) : "ok");
            }

    static const corruption sens[] = {
        {"alpha0 one unit longer than unit_names", C_RESHAPE, "/sens/alpha/alpha0", H5S_F64,
         NULL, 0, 0, NULL, "/sens/alpha/alpha0 has shape"},
        {"rel_w one format longer than format_names", C_RESHAPE, "/sens/rd/rel_w", H5S_F64, NULL,
         0, 0, NULL, "/sens/rd/rel_w has shape"},
        {"negative token count", C_VALUE, "/sens/set_tokens", H5S_I64, NULL, -5, 0, NULL,
         "negative count"},
        {"NaN bits per weight", C_VALUE, "/sens/rd/bpw", H5S_F64, NULL, NAN, 3, NULL,
         "/sens/rd/bpw[3] = nan"},
        {"infinite KLD", C_VALUE, "/sens/alpha/kld0", H5S_F64, NULL, INFINITY, 1, NULL,
         "/sens/alpha/kld0[1] = inf"},
        {"negative seed", C_ATTR_F, "/sens", 0, "seed", -1, 0, NULL, "@seed"},
        {"seed above 2^53", C_ATTR_F, "/sens", 0, "seed", 1e300, 0, NULL, "@seed"},
        {"set name outside the name rule", C_ATTR_S, "/sens", 0, "set_names", 0, 0, "e n",
         "set_names"},
        {"missing dataset", C_DELETE, "/sens/alpha/kld1", 0, NULL, 0, 0, NULL,
         "missing dataset /sens/alpha/kld1"},
        {"truncated file", C_TRUNC, NULL, 0, NULL, 0, 0, NULL, "truncated"},
    };
    check_object(&c, "sens", sens, (int)(sizeof sens / sizeof *sens), sens_cmds, 4);

    static const corruption alloc[] = {
        {"predicted_kld longer than sets", C_RESHAPE, "/alloc/en-2.5/predicted_kld", H5S_F64,
         NULL, 0, 0, NULL, "predicted_kld has 1 dimension(s) [2]"},
        {"item_bpw longer than items", C_RESHAPE, "/alloc/en-2.5/item_bpw", H5S_F64, NULL, 0, 0,
         NULL, "item_bpw has"},
        {"negative bit count", C_ATTR_F, "/alloc/en-2.5", 0, "bits_used", -1, 0, NULL,
         "@bits_used = -1"},
        {"NaN predicted KLD", C_VALUE, "/alloc/en-2.5/predicted_kld", H5S_F64, NULL, NAN, 0,
         NULL, "predicted_kld[0] = nan"},
        {"target out of range", C_ATTR_F, "/alloc/en-2.5", 0, "target_bpw", 1e9, 0, NULL,
         "@target_bpw = 1e+09"},
        {"set name outside the name rule", C_ATTR_S, "/alloc/en-2.5", 0, "sets", 0, 0, "e n",
         "@sets"},
        {"unknown objective", C_ATTR_S, "/alloc/en-2.5", 0, "objective", 0, 0, "most",
         "@objective"},
        {"missing dataset", C_DELETE, "/alloc/en-2.5/predicted_kld", 0, NULL, 0, 0, NULL,
         "missing dataset /alloc/en-2.5/predicted_kld"},
        {"truncated file", C_TRUNC, NULL, 0, NULL, 0, 0, NULL, "truncated"},
    };
    check_object(&c, "alloc", alloc, (int)(sizeof alloc / sizeof *alloc), alloc_cmds, 3);

    static const corruption eval[] = {
        {"mean_kld one domain wider than cols", C_RESHAPE, "/eval/matrix/mean_kld", H5S_F64,
         NULL, 0, 0, NULL, "/eval/matrix/mean_kld is not ["},
        {"per-token KLD longer than the domain", C_RESHAPE, "/eval/en-2.5/zh/kld", H5S_F64, NULL,
         0, 0, NULL, "/eval/en-2.5/zh/kld is not ["},
        {"negative token count", C_ATTR_F, "/eval/en-2.5/zh", 0, "n_tokens", -3, 0, NULL,
         "@n_tokens = -3"},
        {"negative sequence count", C_ATTR_F, "/eval/domains/zh", 0, "seqs", -1, 0, NULL,
         "@seqs = -1"},
        {"NaN per-token KLD", C_VALUE, "/eval/en-2.5/zh/kld", H5S_F64, NULL, NAN, 2, NULL,
         "/eval/en-2.5/zh/kld[2] = nan"},
        {"same-top fraction above 1", C_VALUE, "/eval/matrix/same_top", H5S_F64, NULL, 1.5, 0,
         NULL, "same_top[0, 0] = 1.5"},
        {"seed out of range", C_ATTR_S, "/eval/domains/zh", 0, "seed", 0, 0,
         "18446744073709551616", "@seed"},
        {"row name outside the name rule", C_ATTR_S, "/eval/matrix", 0, "rows", 0, 0,
         "en 2.5", "@rows"},
        {"missing dataset", C_DELETE, "/eval/matrix/mean_kld", 0, NULL, 0, 0, NULL,
         "/eval/matrix/mean_kld"},
        {"truncated file", C_TRUNC, NULL, 0, NULL, 0, 0, NULL, "truncated"},
    };
    check_object(&c, "eval", eval, (int)(sizeof eval / sizeof *eval), eval_cmds, 3);

    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    return chk_done(&c);
}
