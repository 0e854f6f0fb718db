/* io/st.c — safetensors reader: header validation, shard sets, dtype conversion.
 *
 * Format reference: https://huggingface.co/docs/safetensors (8-byte LE header length N, N bytes
 * of JSON, data section). IEEE 754-2008 binary16 and the bfloat16 truncation of binary32 give the
 * conversions. The only file that includes jansson for reading weights.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* madvise(MADV_DONTNEED): posix_madvise's DONTNEED is a no-op on Linux */
#include "st.h"

#include "../core/vfile.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A header larger than this is not a weights file; refuse before handing it to the parser. */
#define ST_MAX_HEADER ((uint64_t)100 * 1024 * 1024)
#define ST_MAX_INDEX ((size_t)256 * 1024 * 1024) /* model.safetensors.index.json */

#define ST_INDEX_NAME "model.safetensors.index.json"
#define ST_SINGLE_NAME "model.safetensors"

/* ------------------------------------------------------------------ dtype traits */

static inline uint16_t rd_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static inline uint32_t rd_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float st_bf16_to_f32(uint16_t h)
{
    /* bfloat16 is the top half of a binary32: same sign, 8-bit exponent and bias 127. */
    return bits_f32((uint32_t)h << 16);
}

float st_f16_to_f32(uint16_t h)
{
    /* binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. */
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) /* Inf (man 0) or NaN; keep the payload in the top mantissa bits */
        return bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0)
            return bits_f32(sign); /* ±0 */
        /* Subnormal man·2^-24: normalise so the leading 1 reaches bit 10; every f16 subnormal
         * is a normal binary32. */
        uint32_t e32 = 127 - 15 + 1;
        while (!(man & 0x400)) {
            man <<= 1;
            e32--;
        }
        return bits_f32(sign | (e32 << 23) | ((man & 0x3ff) << 13));
    }
    return bits_f32(sign | ((exp - 15 + 127) << 23) | (man << 13));
}

float st_f8e4m3_to_f32(uint8_t b)
{
    /* e4m3fn: exponent bias 7; exponent 0 is subnormal (m·2^-9); 0x7f/0xff are NaN and there
     * is no infinity, so exponent 15 with mantissa < 7 is an ordinary number (up to 448). */
    unsigned exp = (b >> 3) & 0xf, man = b & 7;
    uint32_t sign = (uint32_t)(b & 0x80) << 24;
    if (exp == 0xf && man == 7)
        return bits_f32(sign | 0x7fc00000u);
    if (exp == 0) { /* man·2^-9, exact; −0 for 0x80 */
        float mag = (float)man * 0x1p-9f;
        return b & 0x80 ? -mag : mag;
    }
    /* (1 + man/8)·2^(exp−7) written as float32 fields (no ldexpf: this runs on every weight of
     * an FP8 layer at every forward) */
    return bits_f32(sign | (exp + 120u) << 23 | (uint32_t)man << 20);
}

static void f32_row(const uint8_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = bits_f32(rd_u32(src + 4 * i));
}

static void f16_row(const uint8_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = st_f16_to_f32(rd_u16(src + 2 * i));
}

static void f8e4m3_row(const uint8_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = st_f8e4m3_to_f32(src[i]);
}

typedef struct {
    const char *name; /* as spelled in the header's "dtype" */
    size_t size;      /* bytes per element */
    void (*to_f32)(const uint8_t *src, float *dst, size_t n);
} st_dtype_traits;

static const st_dtype_traits k_dtype[] = {
    [ST_F32] = {"F32", 4, f32_row},
    [ST_F16] = {"F16", 2, f16_row},
    [ST_BF16] = {"BF16", 2, st_bf16_rows},
    [ST_F8_E4M3] = {"F8_E4M3", 1, f8e4m3_row},
};
static_assert(sizeof k_dtype / sizeof k_dtype[0] == ST_DTYPE_COUNT, "one traits row per dtype");

/* ------------------------------------------------------------------ private types */

typedef struct {
    char *path;        /* as opened (dir/shard for a set) */
    void *map;         /* PROT_READ, MAP_PRIVATE mapping of the whole file */
    size_t size;       /* file size in bytes */
} st_file;

struct st_set {
    st_file *files;
    size_t nfiles;
    st_tensor *t;      /* shard order, then data offset order within a shard */
    size_t n, cap;
    const st_tensor **by_name; /* n pointers into t sorted by name, for st_set_find */
    size_t nbytes;
};

/* ------------------------------------------------------------------ header parsing */

/* 0 if j is a JSON integer in [0, INT64_MAX]; writes it to *v. */
static int json_nonneg(const json_t *j, int64_t *v)
{
    if (!json_is_integer(j) || json_integer_value(j) < 0)
        return -1;
    *v = (int64_t)json_integer_value(j);
    return 0;
}

static int parse_dtype(const char *file, const char *name, const json_t *j, st_dtype *out,
                       vl_err *err)
{
    if (!j)
        return vl_errf(err, VL_EFORMAT, "%s: tensor \"%s\": missing \"dtype\"", file, name);
    if (!json_is_string(j))
        return vl_errf(err, VL_EFORMAT, "%s: tensor \"%s\": \"dtype\" is not a string", file,
                       name);
    const char *s = json_string_value(j);
    if (st_dtype_from_name(s, out) == 0)
        return 0;
    return vl_errf(err, VL_EDTYPE, "%s: tensor \"%s\": dtype %.32s not supported (F32, F16, BF16, F8_E4M3)",
                   file, name, s);
}

static int parse_shape(const char *file, const char *name, const json_t *j, st_tensor *t,
                       vl_err *err)
{
    if (!j)
        return vl_errf(err, VL_EFORMAT, "%s: tensor \"%s\": missing \"shape\"", file, name);
    if (!json_is_array(j))
        return vl_errf(err, VL_EFORMAT, "%s: tensor \"%s\": \"shape\" is not an array", file,
                       name);
    size_t nd = json_array_size(j);
    if (nd > ST_MAX_DIMS)
        return vl_errf(err, VL_ESHAPE, "%s: tensor \"%s\": %zu dimensions, at most %d supported",
                       file, name, nd, ST_MAX_DIMS);
    t->ndim = (int)nd;
    t->numel = 1;
    for (size_t i = 0; i < nd; i++) {
        const json_t *d = json_array_get(j, i);
        if (!json_is_integer(d))
            return vl_errf(err, VL_ESHAPE, "%s: tensor \"%s\": shape[%zu] is not an integer",
                           file, name, i);
        if (json_nonneg(d, &t->shape[i]) != 0)
            return vl_errf(err, VL_ESHAPE, "%s: tensor \"%s\": shape[%zu] = %lld is negative",
                           file, name, i, (long long)json_integer_value(d));
        if (t->shape[i] != 0 && t->numel > INT64_MAX / t->shape[i])
            return vl_errf(err, VL_ESHAPE, "%s: tensor \"%s\": shape product overflows", file,
                           name);
        t->numel *= t->shape[i];
    }
    size_t es = k_dtype[t->dtype].size;
    if ((uint64_t)t->numel > SIZE_MAX / es)
        return vl_errf(err, VL_ESHAPE, "%s: tensor \"%s\": shape product overflows", file, name);
    t->nbytes = (size_t)t->numel * es;
    return 0;
}

/* Validate the data range of t (shape/dtype already parsed); offsets are into the data
 * section of size dsize. On success *begin is the data-section offset. */
static int parse_offsets(const char *file, const char *name, const json_t *j, uint64_t dsize,
                         st_tensor *t, uint64_t *begin, vl_err *err)
{
    int64_t b, e;
    if (!j)
        return vl_errf(err, VL_EFORMAT, "%s: tensor \"%s\": missing \"data_offsets\"", file,
                       name);
    if (!json_is_array(j) || json_array_size(j) != 2 ||
        json_nonneg(json_array_get(j, 0), &b) != 0 || json_nonneg(json_array_get(j, 1), &e) != 0)
        return vl_errf(err, VL_EFORMAT,
                       "%s: tensor \"%s\": \"data_offsets\" is not two non-negative integers",
                       file, name);
    if (b > e)
        return vl_errf(err, VL_EFORMAT, "%s: tensor \"%s\": data_offsets [%lld, %lld]: begin > end",
                       file, name, (long long)b, (long long)e);
    if ((uint64_t)e > dsize)
        return vl_errf(err, VL_ETRUNC,
                       "%s: tensor \"%s\": data range [%lld, %lld) ends past the data section "
                       "(%llu bytes)",
                       file, name, (long long)b, (long long)e, (unsigned long long)dsize);
    if ((uint64_t)(e - b) != (uint64_t)t->nbytes)
        return vl_errf(err, VL_ESHAPE,
                       "%s: tensor \"%s\": data range is %lld bytes, shape × %s needs %zu", file,
                       name, (long long)(e - b), k_dtype[t->dtype].name, t->nbytes);
    *begin = (uint64_t)b;
    return 0;
}

/* One header entry → t (name and file filled by the caller). */
static int parse_entry(const char *file, const char *name, const json_t *v, uint64_t dsize,
                       st_tensor *t, uint64_t *begin, vl_err *err)
{
    if (!json_is_object(v))
        return vl_errf(err, VL_EFORMAT, "%s: tensor \"%s\": entry is not an object", file, name);
    int rc = parse_dtype(file, name, json_object_get(v, "dtype"), &t->dtype, err);
    if (rc == 0)
        rc = parse_shape(file, name, json_object_get(v, "shape"), t, err);
    if (rc == 0)
        rc = parse_offsets(file, name, json_object_get(v, "data_offsets"), dsize, t, begin, err);
    return rc;
}

/* Turn a jansson load failure into one line with its line and column. A duplicate key in the
 * header is a duplicated tensor name; jansson's text ends in near '"<key>"'. */
static int json_fail(const char *file, const char *what, const json_error_t *je, vl_err *err)
{
    if (json_error_code(je) == json_error_cannot_open_file)
        return vl_errf(err, VL_EIO, "%s: %s", file, je->text);
    if (json_error_code(je) == json_error_duplicate_key)
        return vl_errf(err, VL_EFORMAT, "%s: duplicate tensor name in %s (line %d column %d): %s",
                       file, what, je->line, je->column, je->text);
    return vl_errf(err, VL_EFORMAT, "%s: %s: line %d column %d: %s", file, what, je->line,
                   je->column, je->text);
}

/* ------------------------------------------------------------------ set building */

static int set_push(st_set *s, vl_err *err)
{
    if (vl_grow(&s->t, s->n, &s->cap, sizeof *s->t, 64))
        return vl_errf(err, VL_ENOMEM, "out of memory for the tensor index");
    return 0;
}

/* Sort key for a file's tensors: data offset (kept beside the index while loading). */
typedef struct {
    uint64_t b, e;
    size_t idx; /* into set->t */
} st_range;

static int range_cmp(const void *pa, const void *pb)
{
    const st_range *a = pa, *b = pb;
    if (a->b != b->b)
        return a->b < b->b ? -1 : 1;
    if (a->e != b->e)
        return a->e < b->e ? -1 : 1;
    return 0;
}

/* Reorder s->t[first..) by data offset and reject overlapping ranges. Empty tensors occupy
 * nothing, so they overlap nothing. */
static int order_and_check(st_set *s, size_t first, st_range *r, size_t nr, const char *file,
                           vl_err *err)
{
    qsort(r, nr, sizeof *r, range_cmp);
    uint64_t end = 0;
    size_t prev = SIZE_MAX;
    for (size_t i = 0; i < nr; i++) {
        if (r[i].b == r[i].e)
            continue;
        if (prev != SIZE_MAX && r[i].b < end)
            return vl_errf(err, VL_EFORMAT,
                           "%s: tensor \"%s\": data range [%llu, %llu) overlaps tensor \"%s\"",
                           file, s->t[r[i].idx].name, (unsigned long long)r[i].b,
                           (unsigned long long)r[i].e, s->t[prev].name);
        end = r[i].e;
        prev = r[i].idx;
    }
    st_tensor *tmp = vl_malloc(nr * sizeof *tmp);
    if (!tmp)
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", file);
    for (size_t i = 0; i < nr; i++)
        tmp[i] = s->t[r[i].idx];
    memcpy(s->t + first, tmp, nr * sizeof *tmp);
    vl_free(tmp);
    return 0;
}

/* The little-endian header length of the first 8 bytes, checked against the file size. */
static int header_len(const char *path, const uint8_t *p, uint64_t size, uint64_t *hlen,
                      vl_err *err)
{
    *hlen = 0;
    for (int i = 7; i >= 0; i--)
        *hlen = (*hlen << 8) | p[i];
    if (*hlen > size - 8)
        return vl_errf(err, VL_ETRUNC, "%s: header length %llu exceeds the file (%llu bytes)",
                       path, (unsigned long long)*hlen, (unsigned long long)size);
    if (*hlen > ST_MAX_HEADER)
        return vl_errf(err, VL_EFORMAT, "%s: header length %llu exceeds the %llu-byte limit",
                       path, (unsigned long long)*hlen, (unsigned long long)ST_MAX_HEADER);
    return 0;
}

/* Parse the header of the mapped file f and append its tensors to s. */
static int parse_header(st_set *s, const st_file *f, vl_err *err)
{
    const uint8_t *p = f->map;
    uint64_t hlen;
    int hrc = header_len(f->path, p, f->size, &hlen, err);
    if (hrc)
        return hrc;
    uint64_t dsize = f->size - 8 - hlen;
    const uint8_t *data = p + 8 + hlen;

    /* jansson checks UTF-8 and rejects \u0000 (no JSON_ALLOW_NUL), so names are valid
     * NUL-terminated UTF-8; JSON_REJECT_DUPLICATES makes repeated names an error instead of
     * "last one wins". */
    json_error_t je;
    json_t *root = json_loadb((const char *)p + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return json_fail(f->path, "header JSON", &je, err);
    int rc = 0;
    st_range *r = NULL;
    size_t first = s->n, nr = 0;
    if (!json_is_object(root)) {
        rc = vl_errf(err, VL_EFORMAT, "%s: header JSON is not an object", f->path);
        goto out;
    }
    r = vl_malloc((json_object_size(root) + 1) * sizeof *r);
    if (!r) {
        rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", f->path);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0)
            continue;
        if ((rc = set_push(s, err)) != 0)
            goto out;
        st_tensor *t = &s->t[s->n];
        memset(t, 0, sizeof *t);
        uint64_t b = 0;
        if ((rc = parse_entry(f->path, key, v, dsize, t, &b, err)) != 0)
            goto out;
        if (!(t->name = vl_strdup(key))) {
            rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", f->path);
            goto out;
        }
        t->file = f->path;
        t->data = data + b;
        r[nr++] = (st_range){b, b + t->nbytes, s->n};
        s->n++;
        s->nbytes += t->nbytes;
    }
    rc = order_and_check(s, first, r, nr, f->path, err);
out:
    vl_free(r);
    json_decref(root);
    return rc;
}

/* Map PATH into s->files[s->nfiles] and parse it. ENOENT is VL_ENOTFOUND. */
static int open_file(st_set *s, const char *path, vl_err *err)
{
    st_file *f = &s->files[s->nfiles];
    memset(f, 0, sizeof *f);
    if (!(f->path = vl_strdup(path)))
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
    s->nfiles++; /* from here st_set_close releases it */
    int fd;
    int64_t size;
    int rc = vf_open(path, &fd, &size, err); /* a FIFO or device is refused, never waited on */
    if (rc)
        return rc;
    if (size < 8) {
        close(fd);
        return vl_errf(err, VL_ETRUNC, "%s: %lld bytes, shorter than the 8-byte header length",
                       path, (long long)size);
    }
    /* the header length against the file before anything is mapped */
    uint8_t h8[8];
    uint64_t hlen;
    if (pread(fd, h8, 8, 0) != 8)
        rc = vl_errf(err, VL_EIO, "%s: cannot read the header length", path);
    else
        rc = header_len(path, h8, (uint64_t)size, &hlen, err);
    if (rc) {
        close(fd);
        return rc;
    }
    void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the file */
    if (m == MAP_FAILED)
        return vl_errf(err, VL_EIO, "%s: mmap: %s", path, strerror(e));
    f->map = m;
    f->size = (size_t)size;
    return parse_header(s, f, err);
}

static char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = vl_malloc(a + b + 2);
    if (p) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
    }
    return p;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int tensor_name_cmp(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    return strcmp(x->name, y->name);
}

/* Build the name index once every tensor is in (s->t no longer moves); names must be unique
 * across the whole set, so a tensor stored in two shards is an error. */
static int build_name_index(st_set *s, vl_err *err)
{
    if (!(s->by_name = vl_malloc((s->n + 1) * sizeof *s->by_name)))
        return vl_errf(err, VL_ENOMEM, "out of memory for the tensor index");
    for (size_t i = 0; i < s->n; i++)
        s->by_name[i] = &s->t[i];
    qsort(s->by_name, s->n, sizeof *s->by_name, tensor_name_cmp);
    for (size_t i = 1; i < s->n; i++)
        if (strcmp(s->by_name[i - 1]->name, s->by_name[i]->name) == 0)
            return vl_errf(err, VL_EFORMAT, "%s: tensor \"%s\": duplicate name, also in %s",
                           s->by_name[i]->file, s->by_name[i]->name, s->by_name[i - 1]->file);
    return 0;
}

/* The index's weight_map as (unique, sorted) shard file names; borrowed from root. */
static int index_shards(const json_t *wm, const char *ipath, const char ***out, size_t *nout,
                        vl_err *err)
{
    size_t ns = 0;
    const char **sh = vl_malloc((json_object_size(wm) + 1) * sizeof *sh);
    if (!sh)
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", ipath);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)wm, key, v) {
        const char *f = json_string_value(v);
        /* Shards live beside the index; a path would let an index reach outside the model. */
        if (!f || !*f || strchr(f, '/')) {
            vl_free(sh);
            return vl_errf(err, VL_EFORMAT,
                           "%s: tensor \"%s\": shard must be a file name in the same directory",
                           ipath, key);
        }
        sh[ns++] = f;
    }
    qsort(sh, ns, sizeof *sh, str_cmp); /* model-00001-of-N first */
    size_t nu = 0;
    for (size_t i = 0; i < ns; i++)
        if (nu == 0 || strcmp(sh[nu - 1], sh[i]) != 0)
            sh[nu++] = sh[i];
    *out = sh;
    *nout = nu;
    return 0;
}

/* Every name in the index must be in the shard the index names. */
static int check_index(const st_set *s, const json_t *wm, const char *dir, const char *ipath,
                       vl_err *err)
{
    const char *key;
    json_t *v;
    size_t dl = strlen(dir);
    json_object_foreach((json_t *)wm, key, v) {
        const char *shard = json_string_value(v);
        const st_tensor *t = st_set_find(s, key);
        int same = t && strncmp(t->file, dir, dl) == 0 && t->file[dl] == '/' &&
                   strcmp(t->file + dl + 1, shard) == 0;
        if (!same)
            return vl_errf(err, VL_ENOTFOUND, "%s/%s: tensor \"%s\": listed in %s but absent%s%s",
                           dir, shard, key, ipath, t ? ", found in " : "", t ? t->file : "");
    }
    return 0;
}

/* Open every shard named in the index at IPATH (inside DIR), then check the index against
 * what the shards hold. */
static int open_sharded(st_set *s, const char *dir, const char *ipath, vl_err *err)
{
    json_error_t je;
    char *text;
    size_t len;
    int rc = vf_slurp(ipath, ST_MAX_INDEX, &text, &len, err);
    if (rc)
        return rc;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    vl_free(text);
    if (!root)
        return json_fail(ipath, "index JSON", &je, err);
    const char **shards = NULL;
    size_t nu = 0;
    const json_t *wm = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
    if (!json_is_object(wm) || json_object_size(wm) == 0)
        rc = vl_errf(err, VL_EFORMAT, "%s: missing or empty \"weight_map\" object", ipath);
    if (rc == 0)
        rc = index_shards(wm, ipath, &shards, &nu, err);
    if (rc == 0 && !(s->files = vl_calloc(nu, sizeof *s->files)))
        rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", ipath);
    for (size_t i = 0; rc == 0 && i < nu; i++) {
        char *p = path_join(dir, shards[i]);
        if (!p) {
            rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", ipath);
            break;
        }
        rc = open_file(s, p, err);
        vl_free(p);
        if (rc == VL_ENOTFOUND)
            rc = vl_errctx(err, rc, "%s: shard listed in the index does not exist", ipath);
    }
    if (rc == 0)
        rc = build_name_index(s, err);
    if (rc == 0)
        rc = check_index(s, wm, dir, ipath, err);
    vl_free(shards);
    json_decref(root);
    return rc;
}

static int open_single(st_set *s, const char *path, vl_err *err)
{
    if (!(s->files = vl_calloc(1, sizeof *s->files)))
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
    int rc = open_file(s, path, err);
    return rc ? rc : build_name_index(s, err);
}

/* Present and not a directory: a FIFO or device of that name is then refused by open_file
 * with its kind, instead of being passed over as absent. */
static int is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && !S_ISDIR(sb.st_mode);
}

/* ------------------------------------------------------------------ public: open, queries */

int st_set_open(st_set **out, const char *path, vl_err *err)
{
    *out = NULL;
    st_set *s = vl_calloc(1, sizeof *s);
    if (!s)
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
    struct stat sb;
    int rc;
    if (stat(path, &sb) != 0) {
        rc = vl_errf(err, errno == ENOENT ? VL_ENOTFOUND : VL_EIO, "%s: %s", path,
                     strerror(errno));
    } else if (S_ISDIR(sb.st_mode)) {
        char *ip = path_join(path, ST_INDEX_NAME), *sp = path_join(path, ST_SINGLE_NAME);
        if (!ip || !sp)
            rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
        else if (is_file(ip))
            rc = open_sharded(s, path, ip, err);
        else if (is_file(sp))
            rc = open_single(s, sp, err);
        else
            rc = vl_errf(err, VL_ENOTFOUND, "%s: no %s or %s in this directory", path,
                         ST_INDEX_NAME, ST_SINGLE_NAME);
        vl_free(ip);
        vl_free(sp);
    } else
        rc = open_single(s, path, err);
    if (rc) {
        st_set_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

size_t st_set_count(const st_set *s) { return s->n; }

const st_tensor *st_set_at(const st_set *s, size_t i)
{
    VL_ASSERT(i < s->n);
    return &s->t[i];
}

const st_tensor *st_set_find(const st_set *s, const char *name)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, s->by_name[mid]->name);
        if (c == 0)
            return s->by_name[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

size_t st_set_nbytes(const st_set *s) { return s->nbytes; }

const char *st_dtype_name(st_dtype t)
{
    return (unsigned)t < ST_DTYPE_COUNT ? k_dtype[t].name : "?";
}

size_t st_dtype_size(st_dtype t) { return (unsigned)t < ST_DTYPE_COUNT ? k_dtype[t].size : 0; }

int st_dtype_from_name(const char *name, st_dtype *out)
{
    for (int d = 0; d < ST_DTYPE_COUNT; d++)
        if (strcmp(name, k_dtype[d].name) == 0) {
            *out = (st_dtype)d;
            return 0;
        }
    return VL_EDTYPE;
}

/* ------------------------------------------------------------------ public: conversion */

/* The first non-finite value of dst[0..n) (flat index base + i) as VL_ERANGE. */
static int finite_or_err(const st_tensor *t, const float *dst, size_t n, size_t base,
                         vl_err *err)
{
    if (st_all_finite(dst, n)) /* the fast check first: the scan below finds the index */
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(dst[i]))
            return vl_errf(err, VL_ERANGE, "%s: tensor \"%s\": %s at flat index %zu", t->file,
                           t->name, isnan(dst[i]) ? "NaN" : "Inf", base + i);
    return 0;
}

int st_tensor_to_f32(const st_tensor *t, float *dst, vl_err *err)
{
    VL_ASSERT((unsigned)t->dtype < ST_DTYPE_COUNT);
    size_t n = (size_t)t->numel;
    k_dtype[t->dtype].to_f32(t->data, dst, n);
    return finite_or_err(t, dst, n, 0, err);
}

/* Whole pages around bytes [off, off + n) of t's data leave the resident set: the mapping
 * starts on a page and ends on one (mmap maps whole pages), so the rounded range stays inside
 * it; a neighbour's page dropped with it is refaulted from the page cache on its next read
 * (the mapping is never written). */
static void drop_bytes(const st_tensor *t, size_t off, size_t n)
{
    if (!n)
        return;
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)t->data + off) & ~(pg - 1);
    uintptr_t b = ((uintptr_t)t->data + off + n + pg - 1) & ~(pg - 1);
    madvise((void *)a, b - a, MADV_DONTNEED); /* advice: a failure only costs memory */
}

/* Pages a read of t can have mapped: fault-around and large folios map only pages of the
 * same page-table page (2 MiB of address space on x86-64 and arm64 with 4 KiB pages) as the
 * faulting address, so the 2 MiB-aligned blocks that t's bytes touch hold them all. Dropping
 * those blocks, not the whole file, keeps each drop proportional to what was read: a
 * per-batch forward that converts every tensor of a 51 MB model spent most of its system time
 * in whole-file madvise calls (and their TLB shootdowns once a second thread or rank ran). */
#define ST_DROP_ALIGN ((uintptr_t)2 << 20)

static void drop_span(const st_file *f, uintptr_t a, uintptr_t b)
{
    uintptr_t lo = (uintptr_t)f->map, hi = lo + f->size;
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    a &= ~(ST_DROP_ALIGN - 1);
    b = (b + ST_DROP_ALIGN - 1) & ~(ST_DROP_ALIGN - 1);
    a = a < lo ? lo : a;
    b = b > hi ? hi : b;
    b = (b + pg - 1) & ~(pg - 1); /* the mapping ends on a page */
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED); /* advice: a failure only costs memory */
}

void st_set_drop(const st_set *s, const st_tensor *t)
{
    st_set_drop_many(s, &t, 1);
}

void st_set_drop_many(const st_set *s, const st_tensor *const *ts, size_t n)
{
    for (size_t i = 0; i < s->nfiles; i++) {
        const st_file *f = &s->files[i];
        uintptr_t a = UINTPTR_MAX, b = 0;
        for (size_t k = 0; f->map && k < n; k++) {
            if (!ts[k] || ts[k]->file != f->path) /* the set's own string */
                continue;
            uintptr_t ta = (uintptr_t)ts[k]->data, tb = ta + ts[k]->nbytes;
            a = ta < a ? ta : a;
            b = tb > b ? tb : b;
        }
        if (b > a)
            drop_span(f, a, b);
    }
}

/* Elements [i, i + k) of t into dst (checked: finite), their pages then dropped. */
static int load_range(const st_tensor *t, size_t i, size_t k, float *dst, vl_err *err)
{
    size_t es = k_dtype[t->dtype].size;
    k_dtype[t->dtype].to_f32((const uint8_t *)t->data + i * es, dst, k);
    drop_bytes(t, i * es, k * es);
    return finite_or_err(t, dst, k, i, err);
}

int st_tensor_check(const st_tensor *t, vl_err *err)
{
    VL_ASSERT((unsigned)t->dtype < ST_DTYPE_COUNT);
    enum { CHUNK = 8192 }; /* a stack buffer: the check costs no heap however large t is */
    enum { DROP = 1 << 22 }; /* elements between two drops (a multiple of CHUNK) */
    float buf[CHUNK];
    size_t n = (size_t)t->numel, es = k_dtype[t->dtype].size;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i += CHUNK) {
        size_t k = n - i < CHUNK ? n - i : CHUNK;
        k_dtype[t->dtype].to_f32((const uint8_t *)t->data + i * es, buf, k);
        rc = finite_or_err(t, buf, k, i, err);
        if ((i + k) % DROP == 0 && i + k < n) /* the caller drops the rest (st_set_drop) */
            drop_bytes(t, (i + k - DROP) * es, (size_t)DROP * es);
    }
    return rc;
}

int st_tensor_load(const st_tensor *t, float *dst, vl_err *err)
{
    VL_ASSERT((unsigned)t->dtype < ST_DTYPE_COUNT);
    if (t->nbytes <= ST_LOAD_WHOLE_BYTES)
        return st_tensor_to_f32(t, dst, err); /* the caller drops (st_set_drop*) */
    enum { CHUNK = 1 << 22 }; /* elements converted between two drops */
    size_t n = (size_t)t->numel;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i += CHUNK)
        rc = load_range(t, i, n - i < CHUNK ? n - i : CHUNK, dst + i, err);
    return rc;
}

void st_set_close(st_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        vl_free((char *)s->t[i].name);
    for (size_t i = 0; i < s->nfiles; i++) {
        if (s->files[i].map)
            munmap(s->files[i].map, s->files[i].size);
        vl_free(s->files[i].path);
    }
    vl_free(s->files);
    vl_free(s->t);
    vl_free(s->by_name);
    vl_free(s);
}
