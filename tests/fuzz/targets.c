/* tests/fuzz/targets.c — the fuzz targets (see targets.h). */
#define _POSIX_C_SOURCE 200809L
#include "targets.h"

#include "../../alloc/salloc.h"
#include "../../alloc/sens.h"
#include "../../alloc/solve.h"
#include "../../analysis/calib.h"
#include "../../analysis/eval.h"
#include "../../experiments/expcfg.h"
#include "../../io/corpus.h"
#include "../../io/gguf.h"
#include "../../io/h5s.h"
#include "../sensfix.h"
#include "../../io/hfcfg.h"
#include "../../io/st.h"
#include "../../io/tok.h"
#include "../../plots/plotsrc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- shared */

static char fz_dir_buf[64]; /* test-side state: one private directory per process */

static const char *fz_dir(void)
{
    if (!fz_dir_buf[0]) {
        snprintf(fz_dir_buf, sizeof fz_dir_buf, "/tmp/vbrlab-fuzz-XXXXXX");
        if (!mkdtemp(fz_dir_buf)) {
            perror("mkdtemp");
            abort();
        }
    }
    return fz_dir_buf;
}

void fz_cleanup(void)
{
    if (fz_dir_buf[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir_buf);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", fz_dir_buf);
        fz_dir_buf[0] = '\0';
    }
}

/* DIR/name, in a static buffer per call site slot. */
static const char *fz_path(const char *name)
{
    static char buf[4][256];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, sizeof buf[0], "%s/%s", fz_dir(), name);
    return b;
}

static void fz_write(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

/* The parser contract: 0, or a VL_E* code with a non-empty one-line message. */
static int contract(int rc, const vl_err *e, const char *who)
{
    if (getenv("FZ_VERBOSE")) /* what each reader said, when looking at seeds by hand */
        fprintf(stderr, "  %s: %d %s\n", who, rc, rc ? e->msg : "ok");
    if (rc == 0)
        return 0;
    int ok = rc < 0 && rc >= VL_ENOTFOUND && e->msg[0] && !strchr(e->msg, '\n') &&
             !strchr(e->msg, '\r');
    if (!ok)
        fprintf(stderr, "%s: contract broken: rc %d, message \"%s\"\n", who, rc, e->msg);
    return !ok;
}

/* ---------------------------------------------------------------- safetensors */

static int fz_st(const uint8_t *data, size_t size)
{
    const char *p = fz_path("x.safetensors");
    fz_write(p, data, size);
    st_set *s = NULL;
    vl_err e = {0, ""};
    int rc = st_set_open(&s, p, &e);
    int bad = contract(rc, &e, "st_set_open");
    if (!rc) {
        /* touch every byte the index claims: a view past the mapping is a crash here */
        unsigned acc = 0;
        for (size_t i = 0; i < st_set_count(s); i++) {
            const st_tensor *t = st_set_at(s, i);
            const unsigned char *b = t->data;
            for (size_t k = 0; k < t->nbytes; k++)
                acc += b[k];
            if (st_set_find(s, t->name) != t)
                bad = 1;
        }
        if (acc == 0xdeadbeef)
            fprintf(stderr, "(unlikely checksum)\n");
    }
    st_set_close(s);
    return bad;
}

/* A one-tensor shard: tensor NAME, F32 [2]. */
static void write_shard(const char *path, const char *name)
{
    char hdr[128];
    int n = snprintf(hdr, sizeof hdr, "{\"%s\":{\"dtype\":\"F32\",\"shape\":[2],"
                                      "\"data_offsets\":[0,8]}}", name);
    while (n % 8)
        hdr[n++] = ' ';
    uint8_t buf[200];
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, hdr, (size_t)n);
    memset(buf + 8 + n, 0, 8);
    fz_write(path, buf, (size_t)n + 16);
}

static int fz_st_index(const uint8_t *data, size_t size)
{
    static int init;
    char d[256];
    snprintf(d, sizeof d, "%s", fz_path("idx"));
    if (!init) {
        mkdir(d, 0700);
        write_shard(fz_path("idx/a.safetensors"), "model.a.weight");
        write_shard(fz_path("idx/b.safetensors"), "model.b.weight");
        init = 1;
    }
    fz_write(fz_path("idx/model.safetensors.index.json"), data, size);
    st_set *s = NULL;
    vl_err e = {0, ""};
    int rc = st_set_open(&s, d, &e);
    int bad = contract(rc, &e, "st_set_open(index)");
    st_set_close(s);
    return bad;
}

static int fz_gguf(const uint8_t *data, size_t size)
{
    gguf_file *f = NULL;
    vl_err e = {0, ""};
    int rc = gguf_parse(&f, data, size, "fuzz.gguf", &e);
    int bad = contract(rc, &e, "gguf_parse");
    for (int64_t i = 0; !rc && i < gguf_n_kv(f); i++) { /* every value through its getter */
        const char *key = gguf_kv_key(f, i), *sv;
        uint64_t u;
        double d;
        vl_err ge = {0, ""};
        int t = gguf_kv_type(f, i);
        int grc = t == GGUF_T_STR ? gguf_get_str(f, key, &sv, &ge)
                  : t == GGUF_T_F32 || t == GGUF_T_F64 ? gguf_get_f64(f, key, &d, &ge)
                  : t == GGUF_T_ARR && gguf_kv_arr_type(f, i) == GGUF_T_STR && gguf_kv_arr_n(f, i)
                      ? gguf_get_arr_str(f, key, gguf_kv_arr_n(f, i) - 1, &sv, &ge)
                      : gguf_get_u64(f, key, &u, &ge);
        bad |= contract(grc, &ge, "gguf_get");
    }
    unsigned acc = 0;
    for (int64_t i = 0; !rc && i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        for (uint64_t k = 0; k < t->nbytes; k++)
            acc += t->data[k];
        if (gguf_tensor_find(f, t->name) != t)
            bad = 1;
    }
    if (acc == 0xdeadbeef)
        fprintf(stderr, "(unlikely checksum)\n");
    gguf_close(f);
    return bad;
}

/* ---------------------------------------------------------------- JSON configs */

static int fz_hfcfg(const uint8_t *data, size_t size)
{
    const char *p = fz_path("config.json");
    fz_write(p, data, size);
    hfc_config c;
    vl_err e = {0, ""};
    return contract(hfc_load(&c, p, &e), &e, "hfc_load");
}

static int fz_tok(const uint8_t *data, size_t size)
{
    const char *p = fz_path("tokenizer.json");
    fz_write(p, data, size);
    tok_tokenizer *t = NULL;
    vl_err e = {0, ""};
    int rc = tok_open(p, &t, &e);
    int bad = contract(rc, &e, "tok_open");
    if (!rc) {
        /* a loaded tokenizer must encode and decode without crashing */
        static const char text[] = "Hello wörld, 123 ünïcode — 漢字 's 't\n\n  tabs\tend";
        int32_t *ids = NULL;
        size_t n = 0;
        rc = tok_encode(t, text, sizeof text - 1, &ids, &n, &e);
        bad |= contract(rc, &e, "tok_encode");
        if (!rc) {
            char *out = NULL;
            size_t len = 0;
            rc = tok_decode(t, ids, n, &out, &len, &e);
            bad |= contract(rc, &e, "tok_decode");
            vl_free(out);
        }
        vl_free(ids);
    }
    tok_close(t);
    return bad;
}

/* ---------------------------------------------------------------- text formats */

static int fz_ini(const uint8_t *data, size_t size)
{
    const char *p = fz_path("x.ini");
    fz_write(p, data, size);
    exp_config c;
    vl_err e = {0, ""};
    int rc = exp_config_parse(p, &c, &e);
    if (!rc)
        exp_config_free(&c);
    return contract(rc, &e, "exp_config_parse");
}

static int fz_problem(const uint8_t *data, size_t size)
{
    const char *p = fz_path("problem.txt");
    fz_write(p, data, size);
    solve_problem *pr = NULL;
    vl_err e = {0, ""};
    int rc = solve_problem_read(p, &pr, &e);
    int bad = contract(rc, &e, "solve_problem_read");
    int opts = 0;
    for (int i = 0; !rc && i < pr->n_items; i++)
        opts += pr->items[i].n_opt;
    /* small problems also go through every solver (bounded work per input) */
    if (!rc && pr->n_items <= 24 && opts <= 96) {
        static const solve_method m[] = {SOLVE_EXACT, SOLVE_LAGRANGE, SOLVE_UNIFORM, SOLVE_RULES,
                                         SOLVE_RANDOM};
        static const double target[] = {0.5, 3, 1e9};
        for (int k = 0; k < 5; k++)
            for (int t = 0; t < 3; t++)
                for (int obj = 0; obj <= SOLVE_OBJ_MINIMAX_RAW; obj++) {
                    solve_params par = solve_params_defaults();
                    par.method = m[k];
                    par.target_bpw = target[t];
                    par.node_limit = 2000;
                    par.mw_iters = 20;
                    par.objective = (solve_objective)obj;
                    double w[64];
                    for (int s = 0; s < 64; s++)
                        w[s] = 1.0 + s;
                    par.weights = pr->n_sets <= 64 ? w : NULL;
                    if (obj == SOLVE_OBJ_WEIGHTED && !par.weights)
                        continue;
                    solve_result r;
                    memset(&r, 0, sizeof r);
                    vl_err se = {0, ""};
                    int src = solve_run(pr, &par, &r, &se);
                    bad |= contract(src, &se, solve_method_name(m[k]));
                    if (!src && r.bits_used > r.budget * (1 + 1e-9) + 1e-6) {
                        fprintf(stderr, "%s: over budget %g > %g\n", solve_method_name(m[k]),
                                r.bits_used, r.budget);
                        bad = 1;
                    }
                    solve_result_free(&r);
                }
    }
    solve_problem_free(pr);
    return bad;
}

static int fz_corpus(const uint8_t *data, size_t size)
{
    corp_corpus *c = NULL;
    vl_err e = {0, ""};
    int rc = corp_parse(&c, "fuzz.txt", (const char *)data, size, &e);
    int bad = contract(rc, &e, "corp_parse");
    for (int i = 0; !rc && i < c->n_docs; i++) /* documents are views inside the buffer */
        if (c->docs[i].text < c->buf || c->docs[i].text + c->docs[i].len > c->buf + c->size)
            bad = 1;
    corp_free(c);
    return bad;
}

static int fz_spec(const uint8_t *data, size_t size)
{
    char text[1024];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, n);
    text[n] = '\0'; /* a C string, as a command-line argument is */
    calib_spec s;
    vl_err e = {0, ""};
    return contract(calib_spec_parse(text, &s, &e), &e, "calib_spec_parse");
}

/* ---------------------------------------------------------------- result stores */

/* The template: a small store holding every stored object the plotting and allocation readers
 * take (sensitivities with RD, an allocation, an evaluation matrix, expert usage). A fuzz input
 * is a list of edits to it (values, shapes, numeric and string attributes); the edited store is
 * read by every reader, which must refuse what contradicts itself with one line. */
typedef struct {
    char path[160];
    h5s_dtype t;
    int is_attr, is_str; /* attributes: path is the object, name the attribute */
    char name[64];
} fz_obj;

static fz_obj objs[256];
static int n_objs;

static void template_sens(h5s_store *s)
{
    static const char *names[3] = {"model.layers.0.self_attn.q_proj.weight",
                                   "model.layers.0.mlp.experts.0.down_proj.weight",
                                   "model.layers.1.mlp.experts.1.down_proj.weight"};
    sens_tensor t[3];
    char *un[3];
    for (int i = 0; i < 3; i++) {
        t[i] = (sens_tensor){i, (char *)names[i], i == 2, i ? (i == 2) : -1,
                             i ? SENS_P_EXP_DOWN : SENS_P_Q, 4, 16, 64, i};
        un[i] = (char *)names[i];
    }
    double k0[6] = {1e-4, 2e-4, 3e-4, 1e-4, 1e-4, 5e-4}, k1[6], a0[6], a1[6];
    for (int i = 0; i < 6; i++) {
        k1[i] = 9 * k0[i];
        a0[i] = a1[i] = k0[i] / 1e-4;
    }
    qfmt fq[2];
    qfmt_parse(&fq[0], "rtn-b2-g64-asym", NULL);
    qfmt_parse(&fq[1], "rtn-b3-g64-asym", NULL);
    double bpw[6], d[6], d2[12], ones[6];
    unsigned char few[12] = {0}; /* [S,T,F] like rel_w */
    for (int i = 0; i < 6; i++) {
        bpw[i] = i % 2 ? 3.5 : 2.5;
        d[i] = i % 2 ? 0.05 : 0.2;
        ones[i] = 1;
    }
    for (int i = 0; i < 12; i++)
        d2[i] = d[i % 6];
    /* rel [S,T,F]: each set's own statistics */
    sfx_in in = {3, t, un, 64, {k0, k1}, {a0, a1}, 2, fq, "rtn:b=2..3:g=64", bpw, d2, few, ones};
    sens_result r;
    char *sn[2];
    int64_t tok[2];
    sfx_result(&r, &in, sn, tok);
    vl_err e = {0, ""};
    if (sens_write(&r, s, &e)) {
        fprintf(stderr, "template sens: %s\n", e.msg);
        abort();
    }
}

static void template_rest(h5s_store *s)
{
    vl_err e = {0, ""};
    const char *M = "fuzz template";
    int64_t one = 1, two = 2, sh[2] = {2, 2};
    uint8_t sparse[2] = {1, 1};
    int64_t routed[2] = {30, 10}, tok = 20;
    int rc = h5s_write(s, "/stats/en/layer_sparse", H5S_U8, sparse, 1, &two, "flag", M, &e);
    for (int l = 0; l < 2 && !rc; l++) {
        char p[96];
        snprintf(p, sizeof p, "/stats/en/layers/%02d/router/routed", l);
        rc = h5s_write(s, p, H5S_I64, routed, 1, &two, "tokens", M, &e);
        snprintf(p, sizeof p, "/stats/en/layers/%02d/router/tokens", l);
        rc = rc ? rc : h5s_write(s, p, H5S_I64, &tok, 1, &one, "tokens", M, &e);
    }
    double pk = 0.1, kl[4] = {0.5, 0.25, 0.125, 0.0625};
    rc = rc ? rc : h5s_write(s, "/alloc/a/predicted_kld", H5S_F64, &pk, 1, &one, "nat", M, &e);
    rc = rc ? rc : h5s_attr_set(s, "/alloc/a", "assignment",
                               "model.layers.0.self_attn.q_proj.weight\trtn-b2-g64-asym\n"
                               "model.layers.0.mlp.experts.0.down_proj.weight\trtn-b3-g64-asym\n",
                               &e);
    rc = rc ? rc : h5s_attr_set_f64(s, "/alloc/a", "target_bpw", 2.5, &e);
    rc = rc ? rc : h5s_write(s, "/eval/matrix/mean_kld", H5S_F64, kl, 2, sh, "nat", M, &e);
    rc = rc ? rc : h5s_attr_set(s, "/eval/matrix", "rows", "a\nrtn-b3-g64-asym", &e);
    rc = rc ? rc : h5s_attr_set(s, "/eval/matrix", "cols", "en\nzh", &e);
    int64_t sh11[2] = {1, 1}, sh12[2] = {1, 2}; /* a domain of 1 sequence of 2 tokens */
    rc = rc ? rc : h5s_write(s, "/eval/a/en/kld", H5S_F64, kl, 2, sh11, "nat", M, &e);
    rc = rc ? rc : h5s_attr_set(s, "/eval/a", "source", "alloc.txt", &e);
    rc = rc ? rc : h5s_attr_set(s, "/eval/a", "calib", "en", &e);
    rc = rc ? rc : h5s_attr_set_f64(s, "/eval/a", "bpw", 2.5, &e);
    rc = rc ? rc : h5s_write(s, "/eval/rtn-b3-g64-asym/en/kld", H5S_F64, kl, 2, sh11, "nat", M, &e);
    rc = rc ? rc : h5s_attr_set(s, "/eval/rtn-b3-g64-asym", "source", "uniform", &e);
    rc = rc ? rc : h5s_attr_set(s, "/eval/rtn-b3-g64-asym", "format", "rtn-b3-g64-asym", &e);
    rc = rc ? rc : h5s_attr_set_f64(s, "/eval/rtn-b3-g64-asym", "bpw", 3.5, &e);
    int32_t ids[2] = {1, 2};
    rc = rc ? rc : h5s_write(s, "/eval/domains/en/ids", H5S_I32, ids, 2, sh12, "token id", M, &e);
    rc = rc ? rc : h5s_write(s, "/eval/domains/zh/ids", H5S_I32, ids, 2, sh12, "token id", M, &e);
    for (int d = 0; d < 2 && !rc; d++) {
        const char *g = d ? "/eval/domains/zh" : "/eval/domains/en";
        rc = h5s_attr_set_f64(s, g, "seqs", 1, &e);
        rc = rc ? rc : h5s_attr_set_f64(s, g, "len", 2, &e);
        rc = rc ? rc : h5s_attr_set(s, g, "seed", "7", &e);
    }
    if (rc) {
        fprintf(stderr, "template: %s\n", e.msg);
        abort();
    }
}

/* The objects of the template from its dump: datasets (with type) and attributes. */
static void list_objects(const char *path)
{
    h5s_store *s;
    vl_err e = {0, ""};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (h5s_open(&s, path, &e) || h5s_dump(s, f, &e)) {
        fprintf(stderr, "template dump: %s\n", e.msg);
        abort();
    }
    fclose(f);
    h5s_close(s);
    static const char *const tn[H5S_DTYPE_COUNT] = {"f32", "f64", "i32", "i64", "u8"};
    char obj[160] = "/";
    for (char *l = text, *next; l && *l && n_objs < 256; l = next) {
        next = strchr(l, '\n');
        if (next)
            *next++ = '\0';
        char p[160], ty[16], an[64];
        if (sscanf(l, "GROUP %159s", p) == 1)
            snprintf(obj, sizeof obj, "%s", p);
        else if (sscanf(l, "DATASET %159s %15s", p, ty) == 2) {
            snprintf(obj, sizeof obj, "%s", p);
            for (int t = 0; t < H5S_DTYPE_COUNT; t++)
                if (!strcmp(ty, tn[t])) {
                    fz_obj *o = &objs[n_objs++];
                    memset(o, 0, sizeof *o);
                    snprintf(o->path, sizeof o->path, "%s", p);
                    o->t = (h5s_dtype)t;
                }
        } else if (sscanf(l, " @%63s %15s", an, ty) == 2 && strcmp(an, "units") &&
                   strcmp(an, "meaning")) {
            fz_obj *o = &objs[n_objs++];
            memset(o, 0, sizeof *o);
            snprintf(o->path, sizeof o->path, "%s", obj);
            snprintf(o->name, sizeof o->name, "%s", an);
            o->is_attr = 1;
            o->is_str = !strcmp(ty, "str");
        }
    }
    free(text);
}

static const char *template_path(void)
{
    static char path[256];
    if (!path[0]) {
        snprintf(path, sizeof path, "%s", fz_path("template.h5"));
        h5s_store *s;
        vl_err e = {0, ""};
        if (h5s_create(&s, path, &e)) {
            fprintf(stderr, "template: %s\n", e.msg);
            abort();
        }
        template_sens(s);
        template_rest(s);
        if (h5s_commit(s, &e)) {
            fprintf(stderr, "template commit: %s\n", e.msg);
            abort();
        }
        list_objects(path);
    }
    return path;
}

static double get_f64(const uint8_t *b)
{
    double d;
    memcpy(&d, b, 8);
    return d;
}

/* Apply one edit record at data[*at]; returns 0, or 1 when the input is used up. */
static int apply_edit(h5s_store *s, const uint8_t *data, size_t size, size_t *at)
{
    if (*at + 2 > size || !n_objs)
        return 1;
    int op = data[*at] & 3;
    const fz_obj *o = &objs[data[*at + 1] % n_objs];
    *at += 2;
    vl_err e = {0, ""};
    if (o->is_attr && o->is_str) {
        if (*at >= size)
            return 1;
        size_t n = data[(*at)++];
        char v[256];
        n = n < size - *at ? n : size - *at;
        memcpy(v, data + *at, n);
        v[n] = '\0';
        *at += n;
        h5s_attr_set(s, o->path, o->name, v, &e);
        return 0;
    }
    if (*at + 8 > size)
        return 1;
    double d = get_f64(data + *at);
    int64_t iv;
    memcpy(&iv, data + *at, 8);
    *at += 8;
    if (o->is_attr) {
        h5s_attr_set_f64(s, o->path, o->name, op == 1 ? (double)(iv % 100000) : d, &e);
        return 0;
    }
    void *v = NULL;
    int nd;
    int64_t sh[H5S_MAX_DIMS];
    if (h5s_read(s, o->path, H5S_F64, &v, &nd, sh, &e))
        return 0;
    int64_t cnt = 1;
    for (int k = 0; k < nd; k++)
        cnt *= sh[k];
    double *x = v;
    if (op == 2) { /* reshape: a 1-D dataset of (iv mod 9) values, the old ones repeated */
        int64_t n = (int64_t)((uint64_t)iv % 9);
        double *y = vl_calloc((size_t)(n ? n : 1), sizeof *y);
        for (int64_t i = 0; i < n && cnt; i++)
            y[i] = x[i % cnt];
        vl_free(v);
        x = y;
        v = y;
        nd = 1;
        sh[0] = n;
        cnt = n;
    } else if (cnt) { /* one value: raw double bits, or a small integer for integer types */
        int64_t i = (int64_t)((uint64_t)iv % (uint64_t)cnt);
        x[i] = o->t == H5S_F32 || o->t == H5S_F64 ? d : (double)(iv >> 40);
    }
    /* back in the stored type (through a converted buffer; NaN/huge only in float types) */
    size_t es = o->t == H5S_U8 ? 1 : o->t == H5S_F32 || o->t == H5S_I32 ? 4 : 8;
    void *buf = vl_calloc((size_t)(cnt ? cnt : 1), es);
    for (int64_t i = 0; i < cnt; i++) {
        double y = x[i];
        switch (o->t) {
        case H5S_F32: ((float *)buf)[i] = (float)(y > 3e38 ? 3e38 : y < -3e38 ? -3e38 : y); break;
        case H5S_F64: ((double *)buf)[i] = y; break;
        case H5S_I32: ((int32_t *)buf)[i] = y >= -2e9 && y <= 2e9 ? (int32_t)y : -1; break;
        case H5S_I64: ((int64_t *)buf)[i] = y >= -9e18 && y <= 9e18 ? (int64_t)y : -1; break;
        default: ((uint8_t *)buf)[i] = y >= 0 && y <= 255 ? (uint8_t)y : 255; break;
        }
    }
    h5s_write(s, o->path, o->t, buf, nd, sh, "fuzz", "fuzzed value", &e);
    vl_free(buf);
    vl_free(v);
    return 0;
}

static int copy_file(const char *src, const char *dst)
{
    FILE *a = fopen(src, "rb"), *b = fopen(dst, "wb");
    char buf[1 << 14];
    size_t n;
    int ok = a && b;
    while (ok && (n = fread(buf, 1, sizeof buf, a)) > 0)
        ok = fwrite(buf, 1, n, b) == n;
    if (a)
        fclose(a);
    if (b && fclose(b) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

static int fz_store(const uint8_t *data, size_t size)
{
    const char *tpl = template_path(), *work = fz_path("work.h5");
    if (copy_file(tpl, work))
        abort();
    h5s_store *s;
    vl_err e = {0, ""};
    if (h5s_open_rw(&s, work, &e))
        abort();
    size_t at = 0;
    for (int k = 0; k < 8 && !apply_edit(s, data, size, &at); k++)
        ;
    if (h5s_commit(s, &e)) {
        fprintf(stderr, "commit: %s\n", e.msg);
        abort();
    }
    if (h5s_open(&s, work, &e))
        abort();
    int bad = 0, pristine = at == 0; /* no edit: the template must pass every reader */
    sens_result r;
    e = (vl_err){0, ""};
    int rc = sens_read(&r, s, &e);
    bad |= contract(rc, &e, "sens_read") || (pristine && rc);
    if (!rc)
        sens_result_free(&r);
    psrc_grid g;
    psrc_lines l;
    const char *sets[2] = {"en", "zh"};
    for (int k = 0; k < 2; k++) {
        e = (vl_err){0, ""};
        rc = psrc_sens_map(s, sets[k], k ? psrc_proj_parse("down") : -1, &g, &e);
        bad |= contract(rc, &e, "psrc_sens_map");
        if (!rc)
            psrc_grid_free(&g);
    }
    e = (vl_err){0, ""};
    rc = psrc_rd(s, -1, -1, &l, &e);
    bad |= contract(rc, &e, "psrc_rd");
    if (!rc)
        psrc_lines_free(&l);
    e = (vl_err){0, ""};
    rc = psrc_expert_usage(s, "en", &g, &e);
    bad |= contract(rc, &e, "psrc_expert_usage");
    if (!rc)
        psrc_grid_free(&g);
    e = (vl_err){0, ""};
    ev_store ev;
    rc = ev_read_store(s, &ev, &e);
    bad |= contract(rc, &e, "ev_read_store") || (pristine && rc);
    if (!rc)
        ev_store_free(&ev);
    e = (vl_err){0, ""};
    rc = psrc_kld_matrix(s, &g, &e);
    bad |= contract(rc, &e, "psrc_kld_matrix");
    if (!rc)
        psrc_grid_free(&g);
    for (int k = 0; k < 2; k++) {
        e = (vl_err){0, ""};
        rc = psrc_kld_vs_bpw(s, k ? "zh" : NULL, &l, &e);
        bad |= contract(rc, &e, "psrc_kld_vs_bpw");
        if (!rc)
            psrc_lines_free(&l);
    }
    e = (vl_err){0, ""};
    rc = psrc_alloc_map(s, "a", -1, &g, &e);
    bad |= contract(rc, &e, "psrc_alloc_map");
    if (!rc)
        psrc_grid_free(&g);
    char **names = NULL;
    int n = 0;
    e = (vl_err){0, ""};
    rc = salloc_list(s, &names, &n, &e);
    bad |= contract(rc, &e, "salloc_list");
    for (int i = 0; !rc && i < n; i++) {
        salloc_record rec;
        vl_err re = {0, ""};
        int r2 = salloc_read(s, names[i], &rec, &re);
        bad |= contract(r2, &re, "salloc_read") || (pristine && r2);
        if (!r2)
            salloc_record_free(&rec);
    }
    h5s_names_free(names, n);
    h5s_close(s);
    return bad;
}

/* ---------------------------------------------------------------- the table */

const fz_target fz_targets[] = {
    {"st", fz_st, "safetensors file: header JSON, offsets, dtypes, shapes"},
    {"st_index", fz_st_index, "model.safetensors.index.json beside two small shards"},
    {"gguf", fz_gguf, "GGUF file (header, KVs, tensor infos, data), every value read back"},
    {"hfcfg", fz_hfcfg, "config.json"},
    {"tok", fz_tok, "tokenizer.json, then encode/decode of a fixed text"},
    {"ini", fz_ini, "experiment config (INI)"},
    {"problem", fz_problem, "allocation problem file, small ones through every solver"},
    {"corpus", fz_corpus, "\\x1e-separated corpus"},
    {"spec", fz_spec, "NAME=SOURCE[,opts] set spec of the CLI and configs"},
    {"store", fz_store, "edits of a results store read by sens/alloc/eval/plot readers"},
};
const int fz_n_targets = (int)(sizeof fz_targets / sizeof *fz_targets);

const fz_target *fz_find(const char *name)
{
    for (int i = 0; i < fz_n_targets; i++)
        if (!strcmp(fz_targets[i].name, name))
            return &fz_targets[i];
    return NULL;
}
