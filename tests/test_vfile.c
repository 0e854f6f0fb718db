/* tests/test_vfile.c — no reader waits on a FIFO, a directory or a device.
 *
 * Every file reader of the toolkit (safetensors shard and index, config.json, tokenizer.json,
 * tokenizer_config.json, corpus, experiment config, problem file, allocation text, GGUF, the model
 * identity hash, HDF5 stores) is given a FIFO that nobody writes to: each must fail at once with
 * one line naming the path and "not a regular file", never block. Also /dev/null (a character
 * device) and a directory. `vbrlab info` on a model whose shard is a FIFO, and `vbrlab run` on a
 * FIFO config, through the CLI. An alarm turns a hang into a failed test instead of a stuck
 * suite. vf_slurp itself: exact bytes back, NUL-terminated, the size limit. */
#define _POSIX_C_SOURCE 200809L
#include "../alloc/solve.h"
#include "../alloc/qbind.h"
#include "../analysis/sfile.h"
#include "../core/vfile.h"
#include "../experiments/expcfg.h"
#include "../io/corpus.h"
#include "../io/gguf.h"
#include "../io/h5s.h"
#include "../io/hfcfg.h"
#include "../io/st.h"
#include "../io/tok.h"
#include "check.h"
#include "testio.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "FAIL a reader blocked on a FIFO (alarm after 60 s)\n";
    if (write(1, msg, sizeof msg - 1) < 0)
        _exit(2);
    _exit(1);
}

/* One reader, called on a path; the code and message come back through err. */
typedef int (*reader_fn)(const char *path, vl_err *err);

static int r_st(const char *p, vl_err *e)
{
    st_set *s = NULL;
    int rc = st_set_open(&s, p, e);
    st_set_close(s);
    return rc;
}
static int r_hfc(const char *p, vl_err *e)
{
    hfc_config c;
    return hfc_load(&c, p, e);
}
static int r_tok(const char *p, vl_err *e)
{
    tok_tokenizer *t = NULL;
    int rc = tok_open(p, &t, e);
    tok_close(t);
    return rc;
}
static int r_corp(const char *p, vl_err *e)
{
    corp_corpus *c = NULL;
    int rc = corp_load(&c, p, e);
    corp_free(c);
    return rc;
}
static int r_ini(const char *p, vl_err *e)
{
    exp_config c;
    int rc = exp_config_parse(p, &c, e);
    if (!rc)
        exp_config_free(&c);
    return rc;
}
static int r_problem(const char *p, vl_err *e)
{
    solve_problem *s = NULL;
    int rc = solve_problem_read(p, &s, e);
    solve_problem_free(s);
    return rc;
}
static int r_alloc(const char *p, vl_err *e)
{
    qb_alloc a;
    qb_alloc_init(&a);
    int rc = qb_alloc_read_text(&a, p, e);
    qb_alloc_deinit(&a);
    return rc;
}
static int r_h5(const char *p, vl_err *e)
{
    h5s_store *s = NULL;
    int rc = h5s_open(&s, p, e);
    h5s_close(s);
    return rc;
}
static int r_gguf(const char *p, vl_err *e)
{
    gguf_file *f = NULL;
    int rc = gguf_open(&f, p, e);
    gguf_close(f);
    return rc;
}
static int r_slurp(const char *p, vl_err *e)
{
    char *b = NULL;
    int rc = vf_slurp(p, 1 << 20, &b, NULL, e);
    vl_free(b);
    return rc;
}

static const struct {
    const char *name;
    reader_fn fn;
    const char *file; /* the name the reader opens inside a model directory, or NULL */
} readers[] = {
    {"safetensors shard", r_st, NULL},  {"config.json", r_hfc, NULL},
    {"tokenizer.json", r_tok, NULL},    {"corpus", r_corp, NULL},
    {"experiment config", r_ini, NULL}, {"problem file", r_problem, NULL},
    {"allocation text", r_alloc, NULL}, {"HDF5 store", r_h5, NULL},
    {"GGUF file", r_gguf, NULL},        {"vf_slurp", r_slurp, NULL},
};
#define NREAD (int)(sizeof readers / sizeof *readers)

static void test_special_files(chk *c)
{
    char fifo[128], sub[128];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(sub, sizeof sub, "%s/subdir", dir);
    if (mkfifo(fifo, 0600) != 0 || mkdir(sub, 0700) != 0) {
        CHECK(c, 0, "mkfifo/mkdir in %s", dir);
        return;
    }
    const char *const paths[3] = {fifo, "/dev/null", sub};
    const char *const kinds[3] = {"a FIFO", "a character device", "a directory"};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < NREAD; i++) {
            vl_err e = {0, ""};
            alarm(60);
            int rc = readers[i].fn(paths[k], &e);
            alarm(0);
            /* a directory is a model directory to some readers: any clean error will do */
            int want_kind = k < 2 || readers[i].fn == r_ini || readers[i].fn == r_slurp;
            CHECK(c, rc < 0 && !strchr(e.msg, '\n') && strstr(e.msg, paths[k]) &&
                         (!want_kind || strstr(e.msg, kinds[k])),
                  "%s on %s: clean one-line error (%d: %s)", readers[i].name, kinds[k], rc,
                  e.msg);
        }
    /* a model directory whose files are FIFOs, one at a time */
    static const char *const files[] = {"config.json", "tokenizer.json", "tokenizer_config.json",
                                        "model.safetensors"};
    for (int f = 0; f < 4; f++) {
        char md[128], p[200];
        snprintf(md, sizeof md, "%s/model%d", dir, f);
        mkdir(md, 0700);
        for (int g = 0; g < 4; g++) {
            snprintf(p, sizeof p, "%s/%s", md, files[g]);
            if (g == f)
                mkfifo(p, 0600);
            else if (g == 1) { /* a real tokenizer.json, so tokenizer_config.json is reached */
                size_t n;
                char *b = tio_slurp("models/vbrlab-moe-tiny/tokenizer.json", &n);
                FILE *o = fopen(p, "wb");
                if (o && b)
                    fwrite(b, 1, n, o);
                if (o)
                    fclose(o);
                free(b);
            } else {
                FILE *o = fopen(p, "w");
                if (o) {
                    fputs(g == 3 ? "" : "{}", o);
                    fclose(o);
                }
            }
        }
        vl_err e = {0, ""};
        char hash[64];
        alarm(60);
        int rc = f == 0   ? sfile_config_hash(md, hash, &e)
                 : f == 3 ? r_st(md, &e)
                          : r_tok(md, &e);
        alarm(0);
        CHECK(c, rc < 0 && strstr(e.msg, files[f]) && strstr(e.msg, "a FIFO"),
              "model dir with %s a FIFO: clean error (%s)", files[f], e.msg);
    }
}

/* Through the CLI: `vbrlab info` on a model whose first shard is a FIFO; `vbrlab run FIFO`. */
static void test_cli(chk *c)
{
    const char *bin = getenv("VBRLAB_BIN");
    char md[128], src[300], dst[300], out[4096];
    snprintf(md, sizeof md, "%s/shardfifo", dir);
    mkdir(md, 0700);
    static const char *const copy[] = {"config.json", "tokenizer.json", "tokenizer_config.json",
                                       "model.safetensors.index.json"};
    for (int i = 0; i < 4; i++) {
        snprintf(src, sizeof src, "models/vbrlab-moe-tiny/%s", copy[i]);
        snprintf(dst, sizeof dst, "%s/%s", md, copy[i]);
        size_t n;
        char *b = tio_slurp(src, &n);
        FILE *o = fopen(dst, "wb");
        if (b && o)
            fwrite(b, 1, n, o);
        if (o)
            fclose(o);
        free(b);
    }
    for (int k = 1; k <= 5; k++) {
        snprintf(dst, sizeof dst, "%s/model-%05d-of-00005.safetensors", md, k);
        mkfifo(dst, 0600);
    }
    char *argv[] = {(char *)(bin ? bin : "build/vbrlab"), "info", md, NULL};
    alarm(60);
    int st = tio_runv(argv, out, sizeof out);
    alarm(0);
    int lines = 0;
    for (char *q = out; (q = strchr(q, '\n')); q++, lines++)
        *q = q[1] ? '|' : '\0'; /* one line expected; any other shows as | */
    CHECK(c, st != 0 && strstr(out, "not a regular file (a FIFO)") && lines == 1,
          "vbrlab info, shard a FIFO: one-line error, exit %d (%s)", st, out);
    char fifo[128];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    char *argv2[] = {(char *)(bin ? bin : "build/vbrlab"), "run", fifo, NULL};
    alarm(60);
    st = tio_runv(argv2, out, sizeof out);
    alarm(0);
    out[strcspn(out, "\n")] = '\0';
    CHECK(c, st != 0 && strstr(out, "not a regular file (a FIFO)"),
          "vbrlab run on a FIFO config: one-line error, exit %d (%s)", st, out);
}

static void test_slurp(chk *c)
{
    char p[128];
    snprintf(p, sizeof p, "%s/bytes", dir);
    unsigned char data[5000];
    for (int i = 0; i < 5000; i++)
        data[i] = (unsigned char)(i * 7 + 3);
    data[10] = 0;
    FILE *o = fopen(p, "wb");
    fwrite(data, 1, sizeof data, o);
    fclose(o);
    char *b = NULL;
    size_t n = 0;
    vl_err e = {0, ""};
    int rc = vf_slurp(p, 1 << 20, &b, &n, &e);
    CHECK(c, rc == 0 && n == sizeof data && !memcmp(b, data, n) && b[n] == 0,
          "vf_slurp: all 5000 bytes (a NUL among them), NUL-terminated");
    vl_free(b);
    CHECK_INT(c, vf_slurp(p, 4999, &b, &n, &e), VL_ERANGE, "vf_slurp: one byte over the limit");
    CHECK_HAS(c, e.msg, "4999-byte limit", "limit message");
    CHECK_INT(c, vf_slurp(p, 5000, &b, &n, &e), 0, "vf_slurp: exactly the limit");
    vl_free(b);
    snprintf(p, sizeof p, "%s/no-such-file", dir);
    CHECK_INT(c, vf_slurp(p, 10, &b, &n, &e), VL_ENOTFOUND, "vf_slurp: missing file");
}

int main(void)
{
    chk c;
    chk_init(&c, "test_vfile");
    signal(SIGALRM, on_alarm);
    if (tio_tmpdir(dir, sizeof dir, "test-vfile"))
        return 1;
    test_special_files(&c);
    test_cli(&c);
    test_slurp(&c);
    tio_rmtree(dir);
    return chk_done(&c);
}
