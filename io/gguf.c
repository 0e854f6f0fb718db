/* io/gguf.c — GGUF reader (validating) and writer. Format summary in io/gguf.h. */
#define _POSIX_C_SOURCE 200809L
#include "gguf.h"

#include "ggml_type.h"
#include "../core/num.h"
#include "../core/vfile.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* element sizes of the scalar value types (0: string/array) */
static const int TSIZE[GGUF_T_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

typedef struct {
    char *key;
    int type, arr_type;
    uint64_t n;         /* array count */
    uint64_t u;         /* scalar bits (little-endian value, zero-extended) */
    char *s;            /* string value */
    char **strs;        /* string array elements */
    const uint8_t *raw; /* numeric array elements (in the file buffer) */
} gkv;

struct gguf_file {
    char *label;
    uint8_t *buf;
    size_t n;
    uint32_t version, align;
    int64_t n_kv, n_t;
    gkv *kv;
    gguf_tensor *t;
};

/* ---------------------------------------------------------------- reader: cursor */

typedef struct {
    const uint8_t *p;
    size_t n, at;
    const char *label;
    vl_err *err;
} cur;

static int need(cur *c, uint64_t k, const char *what)
{
    if (k > c->n - c->at)
        return vl_errf(c->err, VL_ETRUNC, "%s: truncated at byte %zu reading %s", c->label, c->at, what);
    return 0;
}

static int rd_u32(cur *c, uint32_t *v, const char *what)
{
    if (need(c, 4, what)) return VL_ETRUNC;
    const uint8_t *p = c->p + c->at;
    *v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    c->at += 4;
    return 0;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static int rd_u64(cur *c, uint64_t *v, const char *what)
{
    if (need(c, 8, what)) return VL_ETRUNC;
    *v = le64(c->p + c->at);
    c->at += 8;
    return 0;
}

static int rd_str(cur *c, char **s, const char *what)
{
    uint64_t len;
    int rc = rd_u64(c, &len, what);
    if (rc) return rc;
    if (need(c, len, what)) return VL_ETRUNC;
    if (memchr(c->p + c->at, 0, (size_t)len))
        return vl_errf(c->err, VL_EFORMAT, "%s: %s at byte %zu contains a NUL byte", c->label, what, c->at);
    *s = vl_malloc((size_t)len + 1);
    if (!*s) return vl_errf(c->err, VL_ENOMEM, "%s: out of memory", c->label);
    memcpy(*s, c->p + c->at, (size_t)len);
    (*s)[len] = 0;
    c->at += (size_t)len;
    return 0;
}

static int rd_value(cur *c, gkv *kv)
{
    uint32_t t;
    int rc = rd_u32(c, &t, "value type");
    if (rc) return rc;
    if (t >= GGUF_T_COUNT)
        return vl_errf(c->err, VL_EFORMAT, "%s: key '%s': unknown value type %u", c->label, kv->key, t);
    kv->type = (int)t;
    if (t == GGUF_T_STR) return rd_str(c, &kv->s, "string value");
    if (t != GGUF_T_ARR) {
        if (need(c, (uint64_t)TSIZE[t], "value")) return VL_ETRUNC;
        for (int i = TSIZE[t] - 1; i >= 0; i--) kv->u = kv->u << 8 | c->p[c->at + i];
        c->at += (size_t)TSIZE[t];
        if (t == GGUF_T_BOOL && kv->u > 1)
            return vl_errf(c->err, VL_EFORMAT, "%s: key '%s': bool value %u", c->label, kv->key, (unsigned)kv->u);
        return 0;
    }
    uint32_t at;
    if ((rc = rd_u32(c, &at, "array type")) || (rc = rd_u64(c, &kv->n, "array count"))) return rc;
    if (at >= GGUF_T_COUNT || at == GGUF_T_ARR)
        return vl_errf(c->err, VL_EFORMAT, "%s: key '%s': array of %s not supported", c->label, kv->key,
                       at == GGUF_T_ARR ? "arrays" : "unknown type");
    kv->arr_type = (int)at;
    if (at != GGUF_T_STR) {
        if (kv->n > (c->n - c->at) / (uint64_t)TSIZE[at])
            return vl_errf(c->err, VL_ETRUNC, "%s: key '%s': array of %llu elements runs past the end",
                           c->label, kv->key, (unsigned long long)kv->n);
        kv->raw = c->p + c->at;
        c->at += (size_t)(kv->n * (uint64_t)TSIZE[at]);
        return 0;
    }
    if (kv->n > (c->n - c->at) / 8) /* every string takes at least its 8-byte length */
        return vl_errf(c->err, VL_ETRUNC, "%s: key '%s': array of %llu strings runs past the end",
                       c->label, kv->key, (unsigned long long)kv->n);
    kv->strs = vl_calloc((size_t)kv->n + 1, sizeof *kv->strs);
    if (!kv->strs) return vl_errf(c->err, VL_ENOMEM, "%s: out of memory", c->label);
    for (uint64_t j = 0; j < kv->n; j++)
        if ((rc = rd_str(c, &kv->strs[j], "array string"))) return rc;
    return 0;
}

static int parse_tensor(cur *c, gguf_tensor *t, char **name)
{
    uint32_t nd, ty;
    int rc = rd_str(c, name, "tensor name");
    if (!rc) /* owned by f from here (gguf_close frees it), also when a later field fails */
        t->name = *name;
    if (rc || (rc = rd_u32(c, &nd, "tensor n_dims"))) return rc;
    if (nd < 1 || nd > 4)
        return vl_errf(c->err, VL_EFORMAT, "%s: tensor '%s': n_dims %u not in 1..4", c->label, *name, nd);
    t->n_dims = (int)nd;
    uint64_t count = 1;
    for (int d = 0; d < 4; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t ne;
        if ((rc = rd_u64(c, &ne, "tensor dim"))) return rc;
        if (ne == 0 || ne > ((uint64_t)1 << 62) / count)
            return vl_errf(c->err, VL_EFORMAT, "%s: tensor '%s': dimension %u is %llu", c->label, *name, d,
                           (unsigned long long)ne);
        t->ne[d] = (int64_t)ne, count *= ne;
    }
    if ((rc = rd_u32(c, &ty, "tensor type")) || (rc = rd_u64(c, &t->offset, "tensor offset"))) return rc;
    int gt = ggf_from_id((int)ty);
    if (gt < 0)
        return vl_errf(c->err, VL_EDTYPE, "%s: tensor '%s': ggml type %u not supported", c->label, *name, ty);
    t->ggml_type = (int)ty;
    int64_t rb = ggf_row_bytes(gt, t->ne[0]);
    if (rb < 0)
        return vl_errf(c->err, VL_ESHAPE, "%s: tensor '%s': ne[0] = %lld is not a multiple of %s's block %d "
                       "(or too large)", c->label, *name, (long long)t->ne[0], ggf_get(gt)->name,
                       ggf_get(gt)->block);
    int64_t nb; /* rows × row bytes, checked: a wrapped size would pass the bounds check below */
    if (num_mul_i64(rb, (int64_t)(count / (uint64_t)t->ne[0]), &nb))
        return vl_errf(c->err, VL_ESHAPE, "%s: tensor '%s': size overflows", c->label, *name);
    t->nbytes = (uint64_t)nb;
    return 0;
}

static int tensor_cmp(const void *a, const void *b)
{
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int parse_all(gguf_file *f, vl_err *err)
{
    cur c = {f->buf, f->n, 0, f->label, err};
    uint32_t magic;
    uint64_t nt, nkv;
    int rc = rd_u32(&c, &magic, "magic");
    if (rc) return rc;
    if (magic != 0x46554747u) return vl_errf(err, VL_EFORMAT, "%s: not a GGUF file (bad magic)", f->label);
    if ((rc = rd_u32(&c, &f->version, "version"))) return rc;
    if (f->version != 2 && f->version != 3)
        return vl_errf(err, VL_EFORMAT, "%s: GGUF version %u not supported (2 or 3)", f->label, f->version);
    if ((rc = rd_u64(&c, &nt, "tensor count")) || (rc = rd_u64(&c, &nkv, "kv count"))) return rc;
    /* each KV takes ≥ 12 bytes, each tensor info ≥ 28: bounds the counts before allocating */
    if (nkv > f->n / 12 || nt > f->n / 28)
        return vl_errf(err, VL_EFORMAT, "%s: counts (%llu tensors, %llu keys) exceed the file size",
                       f->label, (unsigned long long)nt, (unsigned long long)nkv);
    f->kv = vl_calloc((size_t)nkv + 1, sizeof *f->kv);
    f->t = vl_calloc((size_t)nt + 1, sizeof *f->t);
    if (!f->kv || !f->t) return vl_errf(err, VL_ENOMEM, "%s: out of memory", f->label);
    f->align = GGUF_DEFAULT_ALIGN;
    for (uint64_t i = 0; i < nkv; i++) {
        gkv *kv = &f->kv[i];
        f->n_kv = (int64_t)i + 1;
        if ((rc = rd_str(&c, &kv->key, "key")) || (rc = rd_value(&c, kv))) return rc;
        for (uint64_t j = 0; j < i; j++)
            if (!strcmp(f->kv[j].key, kv->key))
                return vl_errf(err, VL_EFORMAT, "%s: duplicate key '%s'", f->label, kv->key);
        if (!strcmp(kv->key, "general.alignment")) {
            if (kv->type != GGUF_T_U32 || kv->u == 0 || kv->u % 8)
                return vl_errf(err, VL_EFORMAT, "%s: general.alignment must be a u32 multiple of 8", f->label);
            f->align = (uint32_t)kv->u;
        }
    }
    char **names = vl_calloc((size_t)nt + 1, sizeof *names);
    if (!names) return vl_errf(err, VL_ENOMEM, "%s: out of memory", f->label);
    for (uint64_t i = 0; i < nt && !rc; i++) {
        f->n_t = (int64_t)i + 1;
        rc = parse_tensor(&c, &f->t[i], &names[i]);
        for (uint64_t j = 0; j < i && !rc; j++)
            if (!strcmp(f->t[j].name, f->t[i].name))
                rc = vl_errf(err, VL_EFORMAT, "%s: duplicate tensor '%s'", f->label, f->t[i].name);
    }
    vl_free(names); /* the strings now belong to f->t[i].name */
    if (rc) return rc;
    size_t data = c.at + (f->align - c.at % f->align) % f->align;
    if (nt > 0 && data > f->n)
        return vl_errf(err, VL_ETRUNC, "%s: truncated before the tensor data", f->label);
    const gguf_tensor **ord = vl_malloc(((size_t)nt + 1) * sizeof *ord);
    if (!ord) return vl_errf(err, VL_ENOMEM, "%s: out of memory", f->label);
    for (uint64_t i = 0; i < nt; i++) {
        gguf_tensor *t = &f->t[i];
        ord[i] = t;
        if (t->offset % f->align)
            rc = vl_errf(err, VL_EFORMAT, "%s: tensor '%s': offset %llu not a multiple of %u", f->label,
                         t->name, (unsigned long long)t->offset, f->align);
        else if (t->offset > f->n - data || t->nbytes > f->n - data - t->offset)
            rc = vl_errf(err, VL_ETRUNC, "%s: tensor '%s': data (%llu bytes at %llu) past the end", f->label,
                         t->name, (unsigned long long)t->nbytes, (unsigned long long)t->offset);
        if (rc) break;
        t->data = f->buf + data + t->offset;
    }
    if (!rc && nt > 1) {
        qsort(ord, (size_t)nt, sizeof *ord, tensor_cmp);
        for (uint64_t i = 1; i < nt && !rc; i++)
            if (ord[i - 1]->offset + ord[i - 1]->nbytes > ord[i]->offset)
                rc = vl_errf(err, VL_EFORMAT, "%s: tensors '%s' and '%s' overlap", f->label, ord[i - 1]->name,
                             ord[i]->name);
    }
    vl_free(ord);
    return rc;
}

int gguf_parse(gguf_file **out, const uint8_t *buf, size_t n, const char *label, vl_err *err)
{
    *out = NULL;
    gguf_file *f = vl_calloc(1, sizeof *f);
    if (!f) return vl_errf(err, VL_ENOMEM, "%s: out of memory", label);
    f->label = vl_strdup(label);
    f->buf = vl_malloc(n ? n : 1);
    if (!f->label || !f->buf) {
        gguf_close(f);
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", label);
    }
    memcpy(f->buf, buf, n);
    f->n = n;
    int rc = parse_all(f, err);
    if (rc) {
        gguf_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

int gguf_open(gguf_file **out, const char *path, vl_err *err)
{
    *out = NULL;
    FILE *fp;
    int orc = vf_fopen(path, &fp, err); /* regular files only: a FIFO would block */
    if (orc)
        return orc;
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            uint8_t *nb = vl_realloc(buf, cap);
            if (!nb) {
                vl_free(buf), fclose(fp);
                return vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n, fp);
        n += k;
        if (k == 0) break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        vl_free(buf);
        return vl_errf(err, VL_EIO, "%s: read error", path);
    }
    int rc = gguf_parse(out, buf, n, path, err);
    vl_free(buf);
    return rc;
}

uint32_t gguf_version(const gguf_file *f) { return f->version; }
uint32_t gguf_alignment(const gguf_file *f) { return f->align; }
int64_t gguf_n_kv(const gguf_file *f) { return f->n_kv; }
int64_t gguf_n_tensors(const gguf_file *f) { return f->n_t; }

int64_t gguf_find_kv(const gguf_file *f, const char *key)
{
    for (int64_t i = 0; i < f->n_kv; i++)
        if (!strcmp(f->kv[i].key, key)) return i;
    return -1;
}

const char *gguf_kv_key(const gguf_file *f, int64_t i) { return f->kv[i].key; }
int gguf_kv_type(const gguf_file *f, int64_t i) { return f->kv[i].type; }
int gguf_kv_arr_type(const gguf_file *f, int64_t i) { return f->kv[i].arr_type; }
uint64_t gguf_kv_arr_n(const gguf_file *f, int64_t i) { return f->kv[i].n; }

static const gkv *kv_find(const gguf_file *f, const char *key, vl_err *err, int *rc)
{
    int64_t i = gguf_find_kv(f, key);
    *rc = 0;
    if (i < 0) {
        *rc = vl_errf(err, VL_ENOTFOUND, "%s: key '%s' not found", f->label, key);
        return NULL;
    }
    return &f->kv[i];
}

int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *v, vl_err *err)
{
    int rc;
    const gkv *kv = kv_find(f, key, err, &rc);
    if (!kv) return rc;
    int t = kv->type;
    int64_t sv = t == GGUF_T_I8 ? (int8_t)kv->u : t == GGUF_T_I16 ? (int16_t)kv->u
               : t == GGUF_T_I32 ? (int32_t)kv->u : (int64_t)kv->u;
    if (t == GGUF_T_U8 || t == GGUF_T_U16 || t == GGUF_T_U32 || t == GGUF_T_U64)
        *v = kv->u;
    else if ((t == GGUF_T_I8 || t == GGUF_T_I16 || t == GGUF_T_I32 || t == GGUF_T_I64) && sv >= 0)
        *v = (uint64_t)sv;
    else
        return vl_errf(err, VL_EDTYPE, "%s: key '%s' is not a non-negative integer (type %d)", f->label, key, t);
    return 0;
}

int gguf_get_f64(const gguf_file *f, const char *key, double *v, vl_err *err)
{
    int rc;
    const gkv *kv = kv_find(f, key, err, &rc);
    if (!kv) return rc;
    if (kv->type == GGUF_T_F32) {
        uint32_t u = (uint32_t)kv->u;
        float x;
        memcpy(&x, &u, 4);
        *v = x;
    } else if (kv->type == GGUF_T_F64) {
        memcpy(v, &kv->u, 8);
    } else {
        return vl_errf(err, VL_EDTYPE, "%s: key '%s' is not a float (type %d)", f->label, key, kv->type);
    }
    return 0;
}

int gguf_get_str(const gguf_file *f, const char *key, const char **v, vl_err *err)
{
    int rc;
    const gkv *kv = kv_find(f, key, err, &rc);
    if (!kv) return rc;
    if (kv->type != GGUF_T_STR)
        return vl_errf(err, VL_EDTYPE, "%s: key '%s' is not a string (type %d)", f->label, key, kv->type);
    *v = kv->s;
    return 0;
}

int gguf_get_arr_str(const gguf_file *f, const char *key, uint64_t j, const char **v, vl_err *err)
{
    int rc;
    const gkv *kv = kv_find(f, key, err, &rc);
    if (!kv) return rc;
    if (kv->type != GGUF_T_ARR || kv->arr_type != GGUF_T_STR)
        return vl_errf(err, VL_EDTYPE, "%s: key '%s' is not a string array", f->label, key);
    if (j >= kv->n)
        return vl_errf(err, VL_ERANGE, "%s: key '%s': element %llu of %llu", f->label, key,
                       (unsigned long long)j, (unsigned long long)kv->n);
    *v = kv->strs[j];
    return 0;
}

const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t i)
{
    return i >= 0 && i < f->n_t ? &f->t[i] : NULL;
}

const gguf_tensor *gguf_tensor_find(const gguf_file *f, const char *name)
{
    for (int64_t i = 0; i < f->n_t; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

void gguf_close(gguf_file *f)
{
    if (!f) return;
    for (int64_t i = 0; i < f->n_kv; i++) {
        vl_free(f->kv[i].key), vl_free(f->kv[i].s);
        if (f->kv[i].strs)
            for (uint64_t j = 0; j < f->kv[i].n; j++) vl_free(f->kv[i].strs[j]);
        vl_free(f->kv[i].strs);
    }
    for (int64_t i = 0; i < f->n_t; i++) vl_free((char *)f->t[i].name);
    vl_free(f->kv), vl_free(f->t), vl_free(f->buf), vl_free(f->label);
    vl_free(f);
}
