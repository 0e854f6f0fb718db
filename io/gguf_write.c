/* io/gguf_write.c — the GGUF writer (io/gguf.h): KVs and tensors collected in memory, then
 * serialised in one pass (header, KVs, tensor infos, padding, aligned data). */
#define _POSIX_C_SOURCE 200809L
#include "gguf.h"

#include "ggml_type.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    char *key;
    int type;        /* GGUF_T_STR, U32, F32 or ARR (of strings) */
    uint32_t u;      /* u32 / f32 bits */
    char **strs;     /* STR: strs[0]; ARR: n strings */
    size_t n;
} wkv;

typedef struct {
    char *name;
    int type, n_dims;
    int64_t ne[4];
    uint8_t *data;
    size_t nbytes;
} wten;

struct gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wten *t;
    size_t n_t, cap_t;
};

int gguf_writer_new(gguf_writer **out, vl_err *err)
{
    *out = vl_calloc(1, sizeof **out);
    return *out ? 0 : vl_errf(err, VL_ENOMEM, "gguf writer: out of memory");
}

void gguf_writer_free(gguf_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        for (size_t j = 0; j < w->kv[i].n; j++) vl_free(w->kv[i].strs[j]);
        vl_free(w->kv[i].strs), vl_free(w->kv[i].key);
    }
    for (size_t i = 0; i < w->n_t; i++) vl_free(w->t[i].name), vl_free(w->t[i].data);
    vl_free(w->kv), vl_free(w->t), vl_free(w);
}

static wkv *add_kv(gguf_writer *w, const char *key, int type, vl_err *err)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            vl_errf(err, VL_EARG, "gguf writer: duplicate key '%s'", key);
            return NULL;
        }
    if (vl_grow(&w->kv, w->n_kv, &w->cap_kv, sizeof *w->kv, 16)) {
        vl_errf(err, VL_ENOMEM, "gguf writer: out of memory");
        return NULL;
    }
    wkv *kv = &w->kv[w->n_kv];
    memset(kv, 0, sizeof *kv);
    kv->key = vl_strdup(key);
    if (!kv->key) {
        vl_errf(err, VL_ENOMEM, "gguf writer: out of memory");
        return NULL;
    }
    kv->type = type;
    w->n_kv++;
    return kv;
}

int gguf_w_str_arr(gguf_writer *w, const char *key, const char *const *v, size_t n, vl_err *err)
{
    wkv *kv = add_kv(w, key, GGUF_T_ARR, err);
    if (!kv) return err ? err->code : VL_EARG;
    kv->strs = vl_calloc(n + 1, sizeof *kv->strs);
    if (!kv->strs) return vl_errf(err, VL_ENOMEM, "gguf writer: out of memory");
    for (size_t j = 0; j < n; j++) {
        kv->strs[j] = vl_strdup(v[j]);
        kv->n = j + 1;
        if (!kv->strs[j]) return vl_errf(err, VL_ENOMEM, "gguf writer: out of memory");
    }
    return 0;
}

int gguf_w_str(gguf_writer *w, const char *key, const char *v, vl_err *err)
{
    int rc = gguf_w_str_arr(w, key, &v, 1, err);
    if (!rc) w->kv[w->n_kv - 1].type = GGUF_T_STR;
    return rc;
}

int gguf_w_u32(gguf_writer *w, const char *key, uint32_t v, vl_err *err)
{
    wkv *kv = add_kv(w, key, GGUF_T_U32, err);
    if (!kv) return err ? err->code : VL_EARG;
    kv->u = v;
    return 0;
}

int gguf_w_f32(gguf_writer *w, const char *key, float v, vl_err *err)
{
    wkv *kv = add_kv(w, key, GGUF_T_F32, err);
    if (!kv) return err ? err->code : VL_EARG;
    memcpy(&kv->u, &v, 4);
    return 0;
}

int gguf_w_tensor(gguf_writer *w, const char *name, int ggml_type, int n_dims, const int64_t *ne,
                  const void *data, size_t nbytes, vl_err *err)
{
    int gt = ggf_from_id(ggml_type);
    if (gt < 0) return vl_errf(err, VL_EDTYPE, "gguf writer: tensor '%s': ggml type %d", name, ggml_type);
    if (n_dims < 1 || n_dims > 4) return vl_errf(err, VL_ESHAPE, "gguf writer: tensor '%s': %d dims", name, n_dims);
    int64_t count = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] < 1) return vl_errf(err, VL_ESHAPE, "gguf writer: tensor '%s': dim %d is %lld", name, d, (long long)ne[d]);
        count *= ne[d];
    }
    int64_t rb = ggf_row_bytes(gt, ne[0]);
    if (rb < 0 || (size_t)(rb * (count / ne[0])) != nbytes)
        return vl_errf(err, VL_ESHAPE, "gguf writer: tensor '%s': %zu bytes do not fit %s of %lld weights", name,
                       nbytes, ggf_get(gt)->name, (long long)count);
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) return vl_errf(err, VL_EARG, "gguf writer: duplicate tensor '%s'", name);
    if (vl_grow(&w->t, w->n_t, &w->cap_t, sizeof *w->t, 16))
        return vl_errf(err, VL_ENOMEM, "gguf writer: out of memory");
    wten *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    t->name = vl_strdup(name);
    t->data = vl_malloc(nbytes ? nbytes : 1);
    if (!t->name || !t->data) {
        vl_free(t->name), vl_free(t->data);
        return vl_errf(err, VL_ENOMEM, "gguf writer: out of memory");
    }
    memcpy(t->data, data, nbytes);
    t->type = ggml_type, t->nbytes = nbytes;
    /* n_dims as ggml_n_dims: trailing 1s dropped, at least one */
    t->n_dims = 1;
    for (int d = 0; d < 4; d++) {
        t->ne[d] = d < n_dims ? ne[d] : 1;
        if (t->ne[d] > 1) t->n_dims = d + 1;
    }
    w->n_t++;
    return 0;
}

/* ---------------------------------------------------------------- serialisation */

typedef struct {
    uint8_t *p;
    size_t n;   /* bytes written (or counted when p is NULL) */
} sink;

static void put(sink *s, const void *v, size_t k)
{
    if (s->p) memcpy(s->p + s->n, v, k);
    s->n += k;
}

static void put_u32(sink *s, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(s, b, 4);
}

static void put_u64(sink *s, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    put(s, b, 8);
}

static void put_str(sink *s, const char *str)
{
    size_t k = strlen(str);
    put_u64(s, k);
    put(s, str, k);
}

static void pad(sink *s)
{
    static const uint8_t zero[GGUF_DEFAULT_ALIGN] = {0};
    put(s, zero, (GGUF_DEFAULT_ALIGN - s->n % GGUF_DEFAULT_ALIGN) % GGUF_DEFAULT_ALIGN);
}

static void emit(const gguf_writer *w, sink *s)
{
    put(s, "GGUF", 4);
    put_u32(s, 3);
    put_u64(s, w->n_t);
    put_u64(s, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *kv = &w->kv[i];
        put_str(s, kv->key);
        put_u32(s, (uint32_t)kv->type);
        if (kv->type == GGUF_T_STR) {
            put_str(s, kv->strs[0]);
        } else if (kv->type == GGUF_T_ARR) {
            put_u32(s, GGUF_T_STR);
            put_u64(s, kv->n);
            for (size_t j = 0; j < kv->n; j++) put_str(s, kv->strs[j]);
        } else {
            put_u32(s, kv->u);
        }
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wten *t = &w->t[i];
        put_str(s, t->name);
        put_u32(s, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) put_u64(s, (uint64_t)t->ne[d]);
        put_u32(s, (uint32_t)t->type);
        put_u64(s, off);
        off += t->nbytes + (GGUF_DEFAULT_ALIGN - t->nbytes % GGUF_DEFAULT_ALIGN) % GGUF_DEFAULT_ALIGN;
    }
    if (w->n_t) pad(s);
    for (size_t i = 0; i < w->n_t; i++) {
        put(s, w->t[i].data, w->t[i].nbytes);
        pad(s);
    }
}

int gguf_w_bytes(const gguf_writer *w, uint8_t **buf, size_t *n, vl_err *err)
{
    sink s = {NULL, 0};
    emit(w, &s);
    *buf = vl_malloc(s.n ? s.n : 1);
    if (!*buf) return vl_errf(err, VL_ENOMEM, "gguf writer: out of memory");
    *n = s.n;
    s.p = *buf, s.n = 0;
    emit(w, &s);
    return 0;
}

int gguf_w_write(const gguf_writer *w, const char *path, vl_err *err)
{
    uint8_t *buf;
    size_t n;
    int rc = gguf_w_bytes(w, &buf, &n, err);
    if (rc) return rc;
    size_t pl = strlen(path);
    char *tmp = vl_malloc(pl + 5);
    if (!tmp) {
        vl_free(buf);
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
    }
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        rc = vl_errf(err, VL_EIO, "%s: %s", tmp, strerror(errno));
    } else {
        int bad = fwrite(buf, 1, n, fp) != n;
        bad |= fclose(fp) != 0;
        if (bad)
            rc = vl_errf(err, VL_EIO, "%s: write failed", tmp);
        else if (rename(tmp, path) != 0)
            rc = vl_errf(err, VL_EIO, "%s: rename to %s: %s", tmp, path, strerror(errno));
        if (rc) remove(tmp);
    }
    vl_free(tmp), vl_free(buf);
    return rc;
}
