/* io/st_write.c — write a safetensors file atomically (PATH.tmp, then rename).
 *
 * Separate from st.c: reading is mmap and validation, writing is building a header and
 * streaming bytes. The layout matches what Hugging Face's writer produces: 8-byte LE header
 * length, JSON header padded with spaces to a multiple of 8 (so the data section is 8-aligned),
 * tensors back to back in the order given.
 */
#define _POSIX_C_SOURCE 200809L
#include "st.h"

#include <errno.h>
#include <stdint.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Check the caller's arguments and compute each tensor's byte size into nbytes[]. data NULL:
 * a streamed file, whose bytes come later. */
static int check_args(const char *path, size_t n, const char *const *names,
                      const st_dtype *dtypes, const int *ndims,
                      const int64_t (*shapes)[ST_MAX_DIMS], const void *const *data,
                      size_t *nbytes, vl_err *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!names[i] || !*names[i])
            return vl_errf(err, VL_EARG, "%s: tensor %zu has no name", path, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                return vl_errf(err, VL_EARG, "%s: tensor \"%s\": duplicate name", path,
                               names[i]);
        if ((unsigned)dtypes[i] >= ST_DTYPE_COUNT)
            return vl_errf(err, VL_EARG, "%s: tensor \"%s\": bad dtype %d", path, names[i],
                           (int)dtypes[i]);
        if (ndims[i] < 0 || ndims[i] > ST_MAX_DIMS)
            return vl_errf(err, VL_EARG, "%s: tensor \"%s\": ndim %d not in [0, %d]", path,
                           names[i], ndims[i], ST_MAX_DIMS);
        size_t numel = 1, es = st_dtype_size(dtypes[i]);
        for (int d = 0; d < ndims[i]; d++) {
            int64_t e = shapes[i][d];
            if (e < 0)
                return vl_errf(err, VL_EARG, "%s: tensor \"%s\": negative shape", path,
                               names[i]);
            if (e != 0 && numel > SIZE_MAX / (uint64_t)e)
                return vl_errf(err, VL_EARG, "%s: tensor \"%s\": shape overflows", path,
                               names[i]);
            numel *= (size_t)e;
        }
        if (numel > SIZE_MAX / es)
            return vl_errf(err, VL_EARG, "%s: tensor \"%s\": shape overflows", path, names[i]);
        nbytes[i] = numel * es;
        if (nbytes[i] && data && !data[i])
            return vl_errf(err, VL_EARG, "%s: tensor \"%s\": no data", path, names[i]);
    }
    return 0;
}

/* The header JSON text (caller frees with free(), jansson's allocator). */
static char *build_header(size_t n, const char *const *names, const st_dtype *dtypes,
                          const int *ndims, const int64_t (*shapes)[ST_MAX_DIMS],
                          const size_t *nbytes)
{
    json_t *root = json_object();
    int bad = !root;
    json_t *meta = json_object();
    bad |= !meta || json_object_set_new(root, "__metadata__", meta) != 0 ||
           json_object_set_new(meta, "format", json_string("pt")) != 0;
    size_t off = 0;
    for (size_t i = 0; !bad && i < n; i++) {
        json_t *e = json_object(), *shape = json_array(), *offs = json_array();
        bad |= !e || !shape || !offs;
        for (int d = 0; !bad && d < ndims[i]; d++)
            bad |= json_array_append_new(shape, json_integer((json_int_t)shapes[i][d])) != 0;
        bad |= json_array_append_new(offs, json_integer((json_int_t)off)) != 0;
        off += nbytes[i];
        bad |= json_array_append_new(offs, json_integer((json_int_t)off)) != 0;
        bad |= json_object_set_new(e, "dtype", json_string(st_dtype_name(dtypes[i]))) != 0;
        bad |= json_object_set_new(e, "shape", shape) != 0;
        bad |= json_object_set_new(e, "data_offsets", offs) != 0;
        bad |= json_object_set_new(root, names[i], e) != 0;
    }
    /* jansson keeps insertion order, so the header lists tensors in file order. */
    char *text = bad ? NULL : json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

uint16_t st_f32_to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it a NaN (quiet) */
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1); /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

static int write_all(FILE *fp, const char *tmp, const void *p, size_t len, vl_err *err)
{
    if (len && fwrite(p, 1, len, fp) != len)
        return vl_errf(err, VL_EIO, "%s: write: %s", tmp, strerror(errno));
    return 0;
}

struct st_writer {
    char *path, *tmp;
    FILE *fp;
    size_t n, cur;      /* tensors; the one being written */
    size_t *nbytes;     /* [n] */
    size_t done;        /* bytes of tensor cur written so far */
    char **names;       /* [n], for messages */
    int failed;
};

static void writer_free(st_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; w->names && i < w->n; i++)
        vl_free(w->names[i]);
    vl_free(w->names);
    vl_free(w->nbytes);
    vl_free(w->tmp);
    vl_free(w->path);
    vl_free(w);
}

void st_writer_abort(st_writer *w)
{
    if (!w)
        return;
    if (w->fp)
        fclose(w->fp);
    unlink(w->tmp);
    writer_free(w);
}

int st_writer_open(st_writer **out, const char *path, size_t n, const char *const *names,
                   const st_dtype *dtypes, const int *ndims,
                   const int64_t (*shapes)[ST_MAX_DIMS], vl_err *err)
{
    *out = NULL;
    st_writer *w = vl_calloc(1, sizeof *w);
    size_t plen = strlen(path);
    char *text = NULL;
    int rc = 0;
    if (!w || !(w->path = vl_strdup(path)) || !(w->tmp = vl_malloc(plen + 5)) ||
        !(w->nbytes = vl_calloc(n + 1, sizeof *w->nbytes)) ||
        !(w->names = vl_calloc(n + 1, sizeof *w->names))) {
        writer_free(w);
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
    }
    w->n = n;
    memcpy(w->tmp, path, plen);
    memcpy(w->tmp + plen, ".tmp", 5);
    for (size_t i = 0; i < n; i++)
        if (!(w->names[i] = vl_strdup(names[i] ? names[i] : ""))) {
            writer_free(w);
            return vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
        }
    if ((rc = check_args(path, n, names, dtypes, ndims, shapes, NULL, w->nbytes, err)) != 0) {
        writer_free(w);
        return rc;
    }
    if (!(text = build_header(n, names, dtypes, ndims, shapes, w->nbytes))) {
        writer_free(w);
        return vl_errf(err, VL_ENOMEM, "%s: cannot build the header", path);
    }
    size_t hlen = strlen(text), padded = (hlen + 7) / 8 * 8;
    uint8_t lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    if (!(w->fp = fopen(w->tmp, "wb"))) {
        rc = vl_errf(err, VL_EIO, "%s: %s", w->tmp, strerror(errno));
        free(text);
        writer_free(w);
        return rc;
    }
    static const char spaces[] = "       "; /* padding is at most 7 bytes */
    rc = write_all(w->fp, w->tmp, lenbuf, 8, err);
    if (rc == 0)
        rc = write_all(w->fp, w->tmp, text, hlen, err);
    if (rc == 0)
        rc = write_all(w->fp, w->tmp, spaces, padded - hlen, err);
    free(text);
    if (rc) {
        st_writer_abort(w);
        return rc;
    }
    while (w->cur < w->n && w->nbytes[w->cur] == 0)
        w->cur++;
    *out = w;
    return 0;
}

int st_writer_put(st_writer *w, const void *p, size_t len, vl_err *err)
{
    const uint8_t *b = p;
    if (w->failed)
        return vl_errf(err, VL_EARG, "%s: write after a failed write", w->path);
    while (len) {
        if (w->cur >= w->n) {
            w->failed = 1;
            return vl_errf(err, VL_EARG, "%s: %zu bytes beyond the last tensor", w->path, len);
        }
        size_t k = w->nbytes[w->cur] - w->done;
        k = k < len ? k : len;
        int rc = write_all(w->fp, w->tmp, b, k, err);
        if (rc) {
            w->failed = 1;
            return rc;
        }
        b += k;
        len -= k;
        w->done += k;
        while (w->cur < w->n && w->done == w->nbytes[w->cur]) {
            w->cur++;
            w->done = 0;
        }
    }
    return 0;
}

int st_writer_close(st_writer *w, vl_err *err)
{
    int rc = 0;
    if (w->failed)
        rc = vl_errf(err, VL_EARG, "%s: close after a failed write", w->path);
    else if (w->cur < w->n)
        rc = vl_errf(err, VL_EARG, "%s: tensor \"%s\" short of %zu bytes", w->path,
                     w->names[w->cur], w->nbytes[w->cur] - w->done);
    if (fclose(w->fp) != 0 && rc == 0)
        rc = vl_errf(err, VL_EIO, "%s: close: %s", w->tmp, strerror(errno));
    w->fp = NULL;
    if (rc == 0 && rename(w->tmp, w->path) != 0)
        rc = vl_errf(err, VL_EIO, "%s: rename to %s: %s", w->tmp, w->path, strerror(errno));
    if (rc)
        unlink(w->tmp);
    writer_free(w);
    return rc;
}

int st_write(const char *path, size_t n, const char *const *names, const st_dtype *dtypes,
             const int *ndims, const int64_t (*shapes)[ST_MAX_DIMS], const void *const *data,
             vl_err *err)
{
    size_t *nbytes = vl_malloc((n + 1) * sizeof *nbytes);
    if (!nbytes)
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
    st_writer *w = NULL;
    int rc = check_args(path, n, names, dtypes, ndims, shapes, data, nbytes, err);
    if (rc == 0)
        rc = st_writer_open(&w, path, n, names, dtypes, ndims, shapes, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = st_writer_put(w, data[i], nbytes[i], err);
    if (rc == 0)
        rc = st_writer_close(w, err);
    else
        st_writer_abort(w);
    vl_free(nbytes);
    return rc;
}
