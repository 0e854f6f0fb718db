/* analysis/synth.c — random-weight checkpoints (synth.h): plan, shards, streamed values.
 *
 * The work list ("entries") is the loader's plan in its canonical order, each FP8 weight
 * followed by its block-scale companion (kept in the same shard, so a shard is complete on its
 * own). Shards are filled greedily in that order. Each entry's bytes are produced in chunks and
 * handed to io/st's streaming writer; an FP8 weight's tile scales, known only once its strip
 * is generated, are kept (⌈R/b⌉·⌈C/b⌉ floats) and written as the next entry.
 */
#define _POSIX_C_SOURCE 200809L
#include "synth.h"

#include "../core/rng.h"
#include "../core/vfile.h"
#include "model.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { CHUNK = 1 << 16, NAME_CAP = 160, TOK_MAX = 1 << 28 };

typedef enum { INIT_RANDOM, INIT_ONES, INIT_ZEROS, INIT_TID2EID } init_kind;

typedef struct {
    long t;            /* plan index */
    int is_scale;      /* the "_scale_inv" companion of plan tensor t */
    init_kind init;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t bytes;
    int shard;
    char name[NAME_CAP];
} entry;

typedef struct {
    const model *m;
    const synth_opts *o;
    const char *dir;   /* the temporary output directory */
    entry *e;
    size_t n;
    float *buf;        /* CHUNK floats, or one FP8 strip */
    uint8_t *bytes;    /* the encoded chunk */
    float *scales;     /* the pending FP8 tile scales */
    size_t scale_n;
} synth_ctx;

synth_opts synth_opts_defaults(void)
{
    return (synth_opts){ST_BF16, 0, (int64_t)5000000000LL, 128, NULL};
}

/* ---------------------------------------------------------------- the work list */

static int ends(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static init_kind init_of(const char *n)
{
    if (ends(n, "norm.weight") || ends(n, "_scale"))
        return INIT_ONES;
    if (ends(n, ".tid2eid"))
        return INIT_TID2EID;
    if (ends(n, ".bias") || ends(n, "e_score_correction_bias") || ends(n, "attn_sink") ||
        ends(n, "_base"))
        return INIT_ZEROS;
    return INIT_RANDOM;
}

/* The projections DeepSeek ships in FP8: 2-D weights of attention, MLPs and experts. */
static int fp8_linear(const model_tensor *t)
{
    return t->rows > 1 && ends(t->name, ".weight") && !ends(t->name, "norm.weight") &&
           (t->cls == MODEL_C_ATTN || t->cls == MODEL_C_MLP || t->cls == MODEL_C_EXPERT ||
            t->cls == MODEL_C_SHARED);
}

static st_dtype dtype_of(const model_tensor *t, init_kind k, st_dtype want)
{
    if (k == INIT_TID2EID || want == ST_F32)
        return ST_F32;
    if (want == ST_F8_E4M3 && fp8_linear(t))
        return ST_F8_E4M3;
    if (want == ST_F8_E4M3 && ends(t->name, "e_score_correction_bias"))
        return ST_F32; /* as in DeepSeek's release */
    return ST_BF16;
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

static size_t entry_bytes(const entry *e)
{
    size_t n = st_dtype_size(e->dtype);
    for (int d = 0; d < e->ndim; d++)
        n *= (size_t)e->shape[d];
    return n;
}

static int build_entries(synth_ctx *c, vl_err *err)
{
    size_t nt = model_tensor_count(c->m);
    if (!(c->e = vl_calloc(2 * nt + 1, sizeof *c->e)))
        return vl_errf(err, VL_ENOMEM, "synth: out of memory");
    for (size_t i = 0; i < nt; i++) {
        const model_tensor *t = model_tensor_at(c->m, i);
        entry *e = &c->e[c->n++];
        e->t = (long)i;
        e->init = init_of(t->name);
        e->dtype = dtype_of(t, e->init, c->o->dtype);
        if (strlen(t->name) >= NAME_CAP - 16)
            return vl_errf(err, VL_EARG, "synth: tensor name \"%s\" too long", t->name);
        snprintf(e->name, NAME_CAP, "%s", t->name);
        /* vectors are 1-D as Hugging Face stores them; a 1 × D weight (shared_expert_gate)
         * stays 2-D */
        int vec = t->rows == 1 && !(ends(t->name, ".weight") && !ends(t->name, "norm.weight"));
        e->ndim = vec ? 1 : 2;
        e->shape[0] = vec ? t->cols : t->rows;
        e->shape[1] = t->cols;
        e->bytes = entry_bytes(e);
        if (e->dtype != ST_F8_E4M3)
            continue;
        entry *s = &c->e[c->n++];
        *s = (entry){.t = (long)i, .is_scale = 1, .dtype = ST_F32, .ndim = 2};
        st_fp8_scale_name(t->name, s->name, NAME_CAP);
        s->shape[0] = ceil_div(t->rows, c->o->fp8_block);
        s->shape[1] = ceil_div(t->cols, c->o->fp8_block);
        s->bytes = entry_bytes(s);
    }
    return 0;
}

/* Greedy: a shard closes before it would exceed shard_bytes; a weight and its scales stay
 * together. Returns the shard count. */
static int assign_shards(synth_ctx *c)
{
    int shard = 0;
    size_t used = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->e[i].is_scale) {
            c->e[i].shard = shard;
            continue;
        }
        size_t b = c->e[i].bytes + (i + 1 < c->n && c->e[i + 1].is_scale ? c->e[i + 1].bytes : 0);
        if (used > 0 && used + b > (size_t)c->o->shard_bytes) {
            shard++;
            used = 0;
        }
        used += b;
        c->e[i].shard = shard;
    }
    return shard + 1;
}

/* ---------------------------------------------------------------- values */

static void put_le32(uint8_t *p, uint32_t u)
{
    for (int k = 0; k < 4; k++)
        p[k] = (uint8_t)(u >> (8 * k));
}

/* n floats of x in dtype dt (not FP8) into bytes. */
static size_t encode(const float *x, size_t n, st_dtype dt, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        if (dt == ST_F32) {
            uint32_t u;
            memcpy(&u, &x[i], 4);
            put_le32(out + 4 * i, u);
        } else {
            uint16_t h = st_f32_to_bf16(x[i]);
            out[2 * i] = (uint8_t)h;
            out[2 * i + 1] = (uint8_t)(h >> 8);
        }
    }
    return n * st_dtype_size(dt);
}

/* The next n values of tensor t's stream. */
static void draw(synth_ctx *c, rng *r, const model_tensor *t, init_kind k, int64_t first,
                 float *x, size_t n)
{
    double a = sqrt(3.0 / t->cols);
    int E = model_config(c->m)->n_experts, K = t->cols;
    for (size_t i = 0; i < n; i++) {
        switch (k) {
        case INIT_RANDOM: x[i] = (float)((2.0 * rng_uniform(r) - 1.0) * a); break;
        case INIT_ONES: x[i] = 1.0f; break;
        case INIT_ZEROS: x[i] = 0.0f; break;
        case INIT_TID2EID: /* chunks hold whole rows: one draw at each row's start */
            x[i] = (first + (int64_t)i) % K == 0 ? (float)rng_uniform_int(r, (uint64_t)E)
                                                 : (float)(((int)x[i - 1] + 1) % E);
            break;
        }
    }
}

static int put_plain(synth_ctx *c, st_writer *w, const entry *e, rng *r, vl_err *err)
{
    const model_tensor *t = model_tensor_at(c->m, (size_t)e->t);
    int64_t total = t->numel;
    int64_t chunk = CHUNK;
    if (e->init == INIT_TID2EID) /* whole rows per chunk: each row is drawn from its start */
        chunk = t->cols > CHUNK ? t->cols : CHUNK / t->cols * t->cols;
    for (int64_t off = 0; off < total; off += chunk) {
        size_t n = (size_t)(total - off < chunk ? total - off : chunk);
        draw(c, r, t, e->init, off, c->buf, n);
        int rc = st_writer_put(w, c->bytes, encode(c->buf, n, e->dtype, c->bytes), err);
        if (rc)
            return rc;
    }
    return 0;
}

/* An FP8 weight, one strip of b rows at a time: draw, tile maxima, scale, round. */
static int put_fp8(synth_ctx *c, st_writer *w, const entry *e, rng *r, vl_err *err)
{
    const model_tensor *t = model_tensor_at(c->m, (size_t)e->t);
    int b = c->o->fp8_block, R = t->rows, C = t->cols;
    int64_t tc = ceil_div(C, b);
    c->scale_n = (size_t)(ceil_div(R, b) * tc);
    vl_free(c->scales);
    if (!(c->scales = vl_malloc(c->scale_n * sizeof *c->scales)))
        return vl_errf(err, VL_ENOMEM, "synth: out of memory for the scales of \"%s\"", e->name);
    for (int r0 = 0; r0 < R; r0 += b) {
        int rows = R - r0 < b ? R - r0 : b;
        draw(c, r, t, INIT_RANDOM, 0, c->buf, (size_t)rows * C);
        for (int64_t j = 0; j < tc; j++) {
            int c0 = (int)(j * b), c1 = c0 + b < C ? c0 + b : C;
            double mx = 0;
            for (int i = 0; i < rows; i++)
                for (int k = c0; k < c1; k++)
                    mx = fmax(mx, fabs(c->buf[(size_t)i * C + k]));
            float s = mx > 0 ? (float)(mx / 448.0) : 1.0f;
            c->scales[(r0 / b) * tc + j] = s;
            for (int i = 0; i < rows; i++)
                for (int k = c0; k < c1; k++)
                    c->bytes[(size_t)i * C + k] = st_f32_to_f8e4m3(c->buf[(size_t)i * C + k] / s);
        }
        int rc = st_writer_put(w, c->bytes, (size_t)rows * C, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int put_scales(synth_ctx *c, st_writer *w, vl_err *err)
{
    size_t done = 0;
    while (done < c->scale_n) {
        size_t n = c->scale_n - done < CHUNK ? c->scale_n - done : CHUNK;
        int rc = st_writer_put(w, c->bytes, encode(c->scales + done, n, ST_F32, c->bytes), err);
        if (rc)
            return rc;
        done += n;
    }
    return 0;
}

static void shard_name(char *buf, size_t cap, int k, int n)
{
    snprintf(buf, cap, "model-%05d-of-%05d.safetensors", k + 1, n);
}

static int write_shard(synth_ctx *c, int k, int n_shards, size_t lo, size_t hi, vl_err *err)
{
    size_t n = hi - lo;
    const char **names = vl_calloc(n + 1, sizeof *names);
    st_dtype *dt = vl_calloc(n + 1, sizeof *dt);
    int *nd = vl_calloc(n + 1, sizeof *nd);
    int64_t(*sh)[ST_MAX_DIMS] = vl_calloc(n + 1, sizeof *sh);
    char file[64], path[4200];
    st_writer *w = NULL;
    rng *r = NULL;
    int rc = 0;
    if (!names || !dt || !nd || !sh)
        rc = vl_errf(err, VL_ENOMEM, "synth: out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        const entry *e = &c->e[lo + i];
        names[i] = e->name;
        dt[i] = e->dtype;
        nd[i] = e->ndim;
        memcpy(sh[i], e->shape, sizeof sh[i]);
    }
    shard_name(file, sizeof file, k, n_shards);
    snprintf(path, sizeof path, "%s/%s", c->dir, file);
    if (!rc)
        rc = st_writer_open(&w, path, n, names, dt, nd, (const int64_t(*)[ST_MAX_DIMS])sh, err);
    for (size_t i = lo; i < hi && !rc; i++) {
        const entry *e = &c->e[i];
        if (e->is_scale) {
            rc = put_scales(c, w, err);
            continue;
        }
        if (!(rc = rng_new(&r, rng_child_seed(c->o->seed, e->name), err)))
            rc = e->dtype == ST_F8_E4M3 ? put_fp8(c, w, e, r, err) : put_plain(c, w, e, r, err);
        rng_free(r);
        r = NULL;
    }
    if (w)
        rc = rc ? (st_writer_abort(w), rc) : st_writer_close(w, err);
    vl_free(names);
    vl_free(dt);
    vl_free(nd);
    vl_free(sh);
    return rc;
}

/* ---------------------------------------------------------------- the other files */

static int json_out(json_t *root, const char *dir, const char *file, vl_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (!root)
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
    int rc = json_dump_file(root, path, JSON_INDENT(2)) != 0
                 ? vl_errf(err, VL_EIO, "%s: cannot write", path)
                 : 0;
    json_decref(root);
    return rc;
}

static int write_index(synth_ctx *c, int n_shards, int64_t total, vl_err *err)
{
    json_t *root = json_object(), *meta = json_object(), *map = json_object();
    int bad = !root || !meta || !map;
    bad |= !bad && (json_object_set_new(root, "metadata", meta) ||
                    json_object_set_new(root, "weight_map", map));
    bad |= !bad && json_object_set_new(meta, "total_size", json_integer((json_int_t)total));
    char file[64];
    for (size_t i = 0; i < c->n && !bad; i++) {
        shard_name(file, sizeof file, c->e[i].shard, n_shards);
        bad |= json_object_set_new(map, c->e[i].name, json_string(file)) != 0;
    }
    if (bad) {
        json_decref(root);
        root = NULL;
    }
    return json_out(root, c->dir, "model.safetensors.index.json", err);
}

static int write_config(const char *config_path, synth_ctx *c, vl_err *err)
{
    json_error_t je;
    json_t *root = json_load_file(config_path, 0, &je);
    if (!root)
        return vl_errf(err, VL_EFORMAT, "%s: line %d column %d: %s", config_path, je.line,
                       je.column, je.text);
    int bad = 0;
    if (c->o->dtype == ST_F8_E4M3) {
        json_t *q = json_object(), *bs = json_array();
        bad = !q || !bs || json_object_set_new(q, "quant_method", json_string("fp8")) ||
              json_object_set_new(q, "fmt", json_string("e4m3")) ||
              json_object_set_new(q, "activation_scheme", json_string("dynamic")) ||
              json_array_append_new(bs, json_integer(c->o->fp8_block)) ||
              json_array_append_new(bs, json_integer(c->o->fp8_block)) ||
              json_object_set_new(q, "weight_block_size", bs) ||
              json_object_set_new(root, "quantization_config", q);
    } else {
        json_object_del(root, "quantization_config");
    }
    if (bad) {
        json_decref(root);
        root = NULL;
    }
    return json_out(root, c->dir, "config.json", err);
}

static int copy_file(const char *src, const char *dir, const char *file, vl_err *err)
{
    char *buf = NULL, path[4200];
    size_t len = 0;
    int rc = vf_slurp(src, TOK_MAX, &buf, &len, err);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len)
        rc = vl_errf(err, VL_EIO, "%s: %s", path, strerror(errno));
    if (f && fclose(f) != 0 && !rc)
        rc = vl_errf(err, VL_EIO, "%s: close: %s", path, strerror(errno));
    vl_free(buf);
    return rc;
}

static int copy_tokenizer(const char *tdir, const char *dir, vl_err *err)
{
    char src[4200];
    snprintf(src, sizeof src, "%s/tokenizer.json", tdir);
    int rc = copy_file(src, dir, "tokenizer.json", err);
    if (rc)
        return vl_errctx(err, rc, "synth --tokenizer needs DIR/tokenizer.json");
    snprintf(src, sizeof src, "%s/tokenizer_config.json", tdir);
    return access(src, F_OK) == 0 ? copy_file(src, dir, "tokenizer_config.json", err) : 0;
}

/* ---------------------------------------------------------------- the output directory */

/* Remove the flat temporary directory we made (only our files are in it). */
static void remove_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        char p[4400];
        while ((de = readdir(d)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(dir);
}

/* OUT must be absent or an empty directory (*empty_dir set). */
static int check_out(const char *out, int *empty_dir, vl_err *err)
{
    struct stat sb;
    *empty_dir = 0;
    if (stat(out, &sb) != 0)
        return errno == ENOENT ? 0 : vl_errf(err, VL_EIO, "%s: %s", out, strerror(errno));
    DIR *d = S_ISDIR(sb.st_mode) ? opendir(out) : NULL;
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    if (d)
        closedir(d);
    if (!d || n)
        return vl_errf(err, VL_EARG, "%s: already exists (synth writes a new directory)", out);
    *empty_dir = 1;
    return 0;
}

static int check_opts(const synth_opts *o, vl_err *err)
{
    if (o->dtype != ST_BF16 && o->dtype != ST_F32 && o->dtype != ST_F8_E4M3)
        return vl_errf(err, VL_EARG, "synth: dtype %s not supported (bf16, fp8, f32)",
                       st_dtype_name(o->dtype));
    if (o->shard_bytes < 1)
        return vl_errf(err, VL_EARG, "synth: shard size %lld must be positive",
                       (long long)o->shard_bytes);
    if (o->fp8_block < 1 || o->fp8_block > 4096)
        return vl_errf(err, VL_EARG, "synth: FP8 block %d not in [1, 4096]", o->fp8_block);
    return 0;
}

static int write_all(synth_ctx *c, const char *config_path, synth_report *rep, vl_err *err)
{
    int rc = build_entries(c, err);
    if (rc)
        return rc;
    int n_shards = assign_shards(c);
    size_t maxcols = 1, strip = CHUNK;
    int64_t total = 0;
    for (size_t i = 0; i < c->n; i++) {
        const model_tensor *t = model_tensor_at(c->m, (size_t)c->e[i].t);
        maxcols = (size_t)t->cols > maxcols ? (size_t)t->cols : maxcols;
        total += (int64_t)c->e[i].bytes;
        rep->params += c->e[i].is_scale ? 0 : t->numel;
    }
    if ((size_t)c->o->fp8_block * maxcols > strip)
        strip = (size_t)c->o->fp8_block * maxcols;
    if (!(c->buf = vl_malloc(strip * sizeof *c->buf)) ||
        !(c->bytes = vl_malloc(strip * sizeof(float))))
        return vl_errf(err, VL_ENOMEM, "synth: out of memory for a %zu-value strip", strip);
    for (size_t lo = 0; lo < c->n && !rc;) {
        size_t hi = lo;
        while (hi < c->n && c->e[hi].shard == c->e[lo].shard)
            hi++;
        rc = write_shard(c, c->e[lo].shard, n_shards, lo, hi, err);
        lo = hi;
    }
    if (!rc)
        rc = write_index(c, n_shards, total, err);
    if (!rc)
        rc = write_config(config_path, c, err);
    if (!rc && c->o->tokenizer)
        rc = copy_tokenizer(c->o->tokenizer, c->dir, err);
    rep->n_tensors = (int64_t)c->n;
    rep->n_shards = n_shards;
    rep->data_bytes = total;
    return rc;
}

int synth_write(const char *config_path, const char *out_dir, const synth_opts *o,
                synth_report *rep, vl_err *err)
{
    synth_report local = {0};
    rep = rep ? rep : &local;
    *rep = (synth_report){0};
    int empty_dir = 0, rc = check_opts(o, err);
    if (!rc)
        rc = check_out(out_dir, &empty_dir, err);
    model *m = NULL;
    if (!rc)
        rc = model_plan_open(&m, config_path, err);
    if (rc) {
        model_close(m);
        return rc;
    }
    size_t len = strlen(out_dir);
    char *tmp = vl_malloc(len + 16);
    if (!tmp) {
        model_close(m);
        return vl_errf(err, VL_ENOMEM, "synth: out of memory");
    }
    while (len > 1 && out_dir[len - 1] == '/') /* "out/" → sibling "out.synth-…" */
        len--;
    memcpy(tmp, out_dir, len);
    memcpy(tmp + len, ".synth-XXXXXX", 14);
    if (!mkdtemp(tmp)) {
        rc = vl_errf(err, VL_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        vl_free(tmp);
        model_close(m);
        return rc;
    }
    synth_ctx c = {.m = m, .o = o, .dir = tmp};
    rc = write_all(&c, config_path, rep, err);
    /* mkdtemp's 0700 is for the scratch phase; the result is an ordinary model directory */
    if (!rc && chmod(tmp, 0755) != 0)
        rc = vl_errf(err, VL_EIO, "%s: chmod: %s", tmp, strerror(errno));
    if (!rc && empty_dir && rmdir(out_dir) != 0)
        rc = vl_errf(err, VL_EIO, "%s: %s", out_dir, strerror(errno));
    if (!rc && rename(tmp, out_dir) != 0)
        rc = vl_errf(err, VL_EIO, "%s: rename to %s: %s", tmp, out_dir, strerror(errno));
    if (rc)
        remove_tmp(tmp);
    vl_free(c.e);
    vl_free(c.buf);
    vl_free(c.bytes);
    vl_free(c.scales);
    vl_free(tmp);
    model_close(m);
    return rc;
}
