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
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Check the caller's arguments and compute each tensor's byte size into nbytes[]. */
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
        if (nbytes[i] && !data[i])
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

static int write_all(FILE *fp, const char *tmp, const void *p, size_t len, vl_err *err)
{
    if (len && fwrite(p, 1, len, fp) != len)
        return vl_errf(err, VL_EIO, "%s: write: %s", tmp, strerror(errno));
    return 0;
}

int st_write(const char *path, size_t n, const char *const *names, const st_dtype *dtypes,
             const int *ndims, const int64_t (*shapes)[ST_MAX_DIMS], const void *const *data,
             vl_err *err)
{
    size_t *nbytes = vl_malloc((n + 1) * sizeof *nbytes);
    size_t plen = strlen(path);
    char *tmp = vl_malloc(plen + 5);
    char *text = NULL;
    FILE *fp = NULL;
    int rc = 0;
    if (!nbytes || !tmp) {
        rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    if ((rc = check_args(path, n, names, dtypes, ndims, shapes, data, nbytes, err)) != 0)
        goto out;
    if (!(text = build_header(n, names, dtypes, ndims, shapes, nbytes))) {
        rc = vl_errf(err, VL_ENOMEM, "%s: cannot build the header", path);
        goto out;
    }
    size_t hlen = strlen(text), padded = (hlen + 7) / 8 * 8;
    uint8_t lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    if (!(fp = fopen(tmp, "wb"))) {
        rc = vl_errf(err, VL_EIO, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    static const char spaces[] = "       "; /* padding is at most 7 bytes */
    rc = write_all(fp, tmp, lenbuf, 8, err);
    if (rc == 0)
        rc = write_all(fp, tmp, text, hlen, err);
    if (rc == 0)
        rc = write_all(fp, tmp, spaces, padded - hlen, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = write_all(fp, tmp, data[i], nbytes[i], err);
    if (fclose(fp) != 0 && rc == 0)
        rc = vl_errf(err, VL_EIO, "%s: close: %s", tmp, strerror(errno));
    fp = NULL;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = vl_errf(err, VL_EIO, "%s: rename to %s: %s", tmp, path, strerror(errno));
    if (rc)
        unlink(tmp);
out:
    free(text);
    vl_free(tmp);
    vl_free(nbytes);
    return rc;
}
