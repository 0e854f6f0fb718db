/* io/h5s.c — the HDF5 results store (contract in io/h5s.h, layout in docs/hdf5-schema.md).
 *
 * The only file in vbrlab that includes hdf5.h. HDF5's own error printing is switched off;
 * every negative return becomes one vl_err line "FILE: /dataset/path: what failed (HDF5: the
 * innermost message of HDF5's error stack)". Cleanup closes run inside H5E_BEGIN_TRY so a
 * failing close on an error path stays silent.
 *
 * Determinism: object modification times are not tracked (files, groups, datasets), the format
 * is pinned to the HDF5 1.8 file format (H5Pset_libver_bounds), data is stored contiguous and
 * uncompressed, and groups are created by us with the same creation properties, so the same
 * sequence of writes gives a byte-identical file (tests/test_h5s.c checks it).
 */
#define _POSIX_C_SOURCE 200809L
#include "h5s.h"

#include "../core/vfile.h"

#include <hdf5.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------- */
/* Constants and types                                                                       */

#define PATH_MAX_LEN 1024  /* longest dataset/group path we accept */
#define DUMP_MAX_DEPTH 64  /* group nesting guard: hard links can form cycles in a bad file */
#define DUMP_MAX_VALUES 8  /* numeric attribute values printed per attribute */

struct h5s_store {
    hid_t file;
    char *path;   /* final path (what errors name) */
    char *tmp;    /* PATH.tmp while writable, NULL when read-only */
};

typedef struct {
    const char *name;  /* short name used by h5s_dump */
    size_t size;       /* bytes per element in memory */
} dtype_info;

static const dtype_info DTYPES[] = {
    [H5S_F32] = {"f32", 4}, [H5S_F64] = {"f64", 8}, [H5S_I32] = {"i32", 4},
    [H5S_I64] = {"i64", 8}, [H5S_U8] = {"u8", 1},
};
_Static_assert(sizeof DTYPES / sizeof DTYPES[0] == H5S_DTYPE_COUNT, "one row per h5s_dtype");

/* HDF5's predefined type ids are run-time values (H5open()), so they cannot sit in the table. */
static hid_t mem_type(h5s_dtype t)
{
    switch (t) {
    case H5S_F32: return H5T_NATIVE_FLOAT;
    case H5S_F64: return H5T_NATIVE_DOUBLE;
    case H5S_I32: return H5T_NATIVE_INT32;
    case H5S_I64: return H5T_NATIVE_INT64;
    case H5S_U8: return H5T_NATIVE_UINT8;
    default: return H5I_INVALID_HID;
    }
}

/* Little-endian file types: the file looks the same whatever machine wrote it. */
static hid_t file_type(h5s_dtype t)
{
    switch (t) {
    case H5S_F32: return H5T_IEEE_F32LE;
    case H5S_F64: return H5T_IEEE_F64LE;
    case H5S_I32: return H5T_STD_I32LE;
    case H5S_I64: return H5T_STD_I64LE;
    case H5S_U8: return H5T_STD_U8LE;
    default: return H5I_INVALID_HID;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Errors                                                                                    */

static herr_t innermost_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    char *buf = data;
    if (n == 0 && e->desc) {
        snprintf(buf, 256, "%s", e->desc);
        for (char *p = buf; *p; p++)
            if (*p == '\n' || *p == '\r' || *p == '\t')
                *p = ' ';
    }
    return 0;
}

/* "FILE: OBJ: message (HDF5: detail)". Call right after the failing HDF5 call: the next API
 * call clears HDF5's error stack. obj may be NULL. Returns code. */
static int fail(const char *file, const char *obj, vl_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail(const char *file, const char *obj, vl_err *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    char what[512], detail[256] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_cb, detail);
    if (detail[0])
        return vl_errf(err, code, "%s: %s%s%s (HDF5: %s)", file, obj ? obj : "", obj ? ": " : "",
                       what, detail);
    return vl_errf(err, code, "%s: %s%s%s", file, obj ? obj : "", obj ? ": " : "", what);
}

static void close_id(hid_t id)
{
    if (id < 0)
        return;
    H5E_BEGIN_TRY
    {
        switch (H5Iget_type(id)) {
        case H5I_FILE: H5Fclose(id); break;
        case H5I_GROUP: H5Gclose(id); break;
        case H5I_DATASET: H5Dclose(id); break;
        case H5I_DATASPACE: H5Sclose(id); break;
        case H5I_DATATYPE: H5Tclose(id); break;
        case H5I_ATTR: H5Aclose(id); break;
        case H5I_GENPROP_LST: H5Pclose(id); break;
        default: break;
        }
    }
    H5E_END_TRY;
}

/* ---------------------------------------------------------------------------------------- */
/* Paths and store setup                                                                     */

/* Absolute, no empty components, no trailing slash (except "/" itself). */
static int check_path(const h5s_store *s, const char *path, vl_err *err)
{
    size_t n = path ? strlen(path) : 0;
    if (!path || path[0] != '/' || n > PATH_MAX_LEN || strstr(path, "//") ||
        (n > 1 && path[n - 1] == '/'))
        return vl_errf(err, VL_EARG, "%s: \"%s\": not an absolute HDF5 path", s->path,
                       path ? path : "(null)");
    return 0;
}

/* 1 if every link along path exists and the last one resolves to an object, 0 if not, -1 if
 * HDF5 failed (corrupt metadata; the error stays on HDF5's stack for fail()). Walks the
 * prefixes because H5Lexists fails (rather than saying no) when a parent group is missing. */
static int path_exists(hid_t file, const char *path)
{
    if (strcmp(path, "/") == 0)
        return 1;
    char buf[PATH_MAX_LEN + 1];
    snprintf(buf, sizeof buf, "%s", path);
    int ok = 1;
    H5E_BEGIN_TRY
    {
        for (char *p = buf + 1; ok > 0; p++) {
            if (*p != '/' && *p != '\0')
                continue;
            char c = *p;
            *p = '\0';
            htri_t r = H5Lexists(file, buf, H5P_DEFAULT);
            if (r > 0)
                r = H5Oexists_by_name(file, buf, H5P_DEFAULT);
            ok = r < 0 ? -1 : r > 0;
            *p = c;
            if (c == '\0')
                break;
        }
    }
    H5E_END_TRY;
    return ok;
}

static char *tmp_name(const char *path)
{
    size_t n = strlen(path);
    char *t = vl_malloc(n + 5);
    if (t) {
        memcpy(t, path, n);
        memcpy(t + n, ".tmp", 5);
    }
    return t;
}

static void store_free(h5s_store *s)
{
    if (!s)
        return;
    vl_free(s->path);
    vl_free(s->tmp);
    vl_free(s);
}

static int store_new(h5s_store **out, const char *path, int writable, vl_err *err)
{
    *out = NULL;
    if (!path || !*path)
        return vl_errf(err, VL_EARG, "h5s: empty store path");
    /* HDF5 reports through our vl_err, never on stderr. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    h5s_store *s = vl_calloc(1, sizeof *s);
    if (!s)
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
    s->file = H5I_INVALID_HID;
    s->path = vl_strdup(path);
    s->tmp = writable ? tmp_name(path) : NULL;
    if (!s->path || (writable && !s->tmp)) {
        store_free(s);
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
    }
    *out = s;
    return 0;
}

/* Same file-access properties for every open: 1.8 format (readable by any HDF5 >= 1.8 and
 * stable across library versions), and a strong close so H5Fclose really releases the file
 * before commit renames it. */
static hid_t make_fapl(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0)
        return fapl;
    if (H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) < 0 ||
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        close_id(fapl);
        return H5I_INVALID_HID;
    }
    return fapl;
}

/* Object-creation properties without timestamps (for groups, datasets and the file's root). */
static hid_t make_ocpl(hid_t cls)
{
    hid_t p = H5Pcreate(cls);
    if (p >= 0 && H5Pset_obj_track_times(p, 0) < 0) {
        close_id(p);
        return H5I_INVALID_HID;
    }
    return p;
}

static int copy_file(const char *src, const char *dst, vl_err *err)
{
    FILE *in;
    int orc = vf_fopen(src, &in, err); /* regular files only: a FIFO would block */
    if (orc)
        return orc;
    FILE *out = fopen(dst, "wb");
    if (!out) {
        int e = errno;
        fclose(in);
        return vl_errf(err, VL_EIO, "%s: %s", dst, strerror(e));
    }
    char buf[1 << 16];
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) {
            rc = vl_errf(err, VL_EIO, "%s: write failed: %s", dst, strerror(errno));
            break;
        }
    if (!rc && ferror(in))
        rc = vl_errf(err, VL_EIO, "%s: read failed", src);
    fclose(in);
    if (fclose(out) != 0 && !rc)
        rc = vl_errf(err, VL_EIO, "%s: write failed: %s", dst, strerror(errno));
    if (rc)
        unlink(dst);
    return rc;
}

/* Open an existing HDF5 file; anything HDF5 does not accept is one "not an HDF5 file" line. */
static int open_existing(h5s_store *s, const char *fname, unsigned flags, vl_err *err)
{
    vl_err e = {0, ""};
    if (vf_check(fname, &e)) { /* regular files only, checked without blocking on a FIFO */
        size_t k = strlen(fname) + 2; /* the message says "FNAME: why"; name the store */
        return vl_errf(err, e.code, "%s: %s", s->path, strlen(e.msg) > k ? e.msg + k : e.msg);
    }
    htri_t ok;
    H5E_BEGIN_TRY
    {
#if H5_VERSION_GE(1, 12, 0)
        ok = H5Fis_accessible(fname, H5P_DEFAULT);
#else
        ok = H5Fis_hdf5(fname);
#endif
    }
    H5E_END_TRY;
    hid_t fapl = ok > 0 ? make_fapl() : H5I_INVALID_HID;
    if (fapl >= 0) {
        s->file = H5Fopen(fname, flags, fapl);
        close_id(fapl);
    }
    if (s->file < 0)
        return vl_errf(err, VL_EFORMAT, "%s: not an HDF5 file or truncated", s->path);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Attributes (shared by the public setters, h5s_create and h5s_dump)                       */

/* Write attribute name on obj (replacing one of that name) from a scalar of memory type mt. */
static int attr_put(h5s_store *s, hid_t obj, const char *opath, const char *name, hid_t ft,
                    hid_t mt, const void *val, vl_err *err)
{
    int rc = 0;
    hid_t space = H5I_INVALID_HID, a = H5I_INVALID_HID;
    htri_t has = H5Aexists(obj, name);
    if (has < 0 || (has > 0 && H5Adelete(obj, name) < 0)) {
        rc = fail(s->path, opath, err, VL_EEXTERN, "cannot replace attribute \"%s\"", name);
        goto out;
    }
    if ((space = H5Screate(H5S_SCALAR)) < 0 ||
        (a = H5Acreate2(obj, name, ft, space, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(a, mt, val) < 0)
        rc = fail(s->path, opath, err, VL_EEXTERN, "cannot write attribute \"%s\"", name);
out:
    close_id(a);
    close_id(space);
    return rc;
}

static int attr_put_str(h5s_store *s, hid_t obj, const char *opath, const char *name,
                        const char *value, vl_err *err)
{
    /* Fixed-length UTF-8, NUL included: no global heap, so nothing depends on heap layout. */
    hid_t st = H5Tcopy(H5T_C_S1);
    if (st < 0 || H5Tset_size(st, strlen(value) + 1) < 0 ||
        H5Tset_strpad(st, H5T_STR_NULLTERM) < 0 || H5Tset_cset(st, H5T_CSET_UTF8) < 0) {
        int rc = fail(s->path, opath, err, VL_EEXTERN, "cannot make string type");
        close_id(st);
        return rc;
    }
    int rc = attr_put(s, obj, opath, name, st, st, value, err);
    close_id(st);
    return rc;
}

/* Read a string attribute already opened as a (fixed or variable length, one element). */
static int attr_read_str(h5s_store *s, hid_t a, const char *opath, const char *name,
                         char **value, vl_err *err)
{
    int rc = 0;
    char *buf = NULL;
    hid_t ft = H5Aget_type(a), space = H5Aget_space(a), mt = H5I_INVALID_HID;
    if (ft < 0 || space < 0) {
        rc = fail(s->path, opath, err, VL_EEXTERN, "attribute \"%s\": cannot read type", name);
        goto out;
    }
    if (H5Tget_class(ft) != H5T_STRING || H5Sget_simple_extent_npoints(space) != 1) {
        rc = vl_errf(err, VL_EDTYPE, "%s: %s: attribute \"%s\" is not a single string",
                     s->path, opath, name);
        goto out;
    }
    htri_t var = H5Tis_variable_str(ft);
    size_t sz = H5Tget_size(ft);
    mt = H5Tcopy(H5T_C_S1);
    if (var < 0 || sz == 0 || mt < 0 || H5Tset_size(mt, var ? H5T_VARIABLE : sz) < 0 ||
        H5Tset_cset(mt, H5Tget_cset(ft)) < 0) {
        rc = fail(s->path, opath, err, VL_EEXTERN, "attribute \"%s\": bad string type", name);
        goto out;
    }
    if (var) {
        char *p = NULL;
        if (H5Aread(a, mt, &p) < 0) {
            rc = fail(s->path, opath, err, VL_EFORMAT, "cannot read attribute \"%s\"", name);
            goto out;
        }
        buf = vl_strdup(p ? p : "");
        H5free_memory(p);
    } else {
        buf = vl_calloc(sz + 1, 1);
        if (buf && H5Aread(a, mt, buf) < 0) {
            rc = fail(s->path, opath, err, VL_EFORMAT, "cannot read attribute \"%s\"", name);
            goto out;
        }
    }
    if (!buf)
        rc = vl_errf(err, VL_ENOMEM, "%s: %s: out of memory", s->path, opath);
out:
    if (rc) {
        vl_free(buf);
        buf = NULL;
    }
    *value = buf;
    close_id(mt);
    close_id(space);
    close_id(ft);
    return rc;
}

/* Open the object at path (group or dataset); VL_ENOTFOUND if absent. */
static int open_obj(h5s_store *s, const char *path, hid_t *obj, vl_err *err)
{
    *obj = H5I_INVALID_HID;
    int rc = check_path(s, path, err);
    if (rc)
        return rc;
    int ex = path_exists(s->file, path);
    if (ex < 0)
        return fail(s->path, path, err, VL_EFORMAT, "cannot look up");
    if (!ex)
        return vl_errf(err, VL_ENOTFOUND, "%s: %s: no such group or dataset", s->path, path);
    if ((*obj = H5Oopen(s->file, path, H5P_DEFAULT)) < 0)
        return fail(s->path, path, err, VL_EFORMAT, "cannot open object");
    return 0;
}

/* Open attribute name on the object at path; VL_ENOTFOUND when the object or it is absent. */
static int open_attr(h5s_store *s, const char *path, const char *name, hid_t *obj, hid_t *a,
                     vl_err *err)
{
    *a = H5I_INVALID_HID;
    if (!name || !*name)
        return vl_errf(err, VL_EARG, "%s: %s: empty attribute name", s->path,
                       path ? path : "(null)");
    int rc = open_obj(s, path, obj, err);
    if (rc)
        return rc;
    htri_t has = H5Aexists(*obj, name);
    if (has < 0)
        return fail(s->path, path, err, VL_EFORMAT, "cannot look up attribute \"%s\"", name);
    if (!has)
        return vl_errf(err, VL_ENOTFOUND, "%s: %s: no attribute \"%s\"", s->path, path, name);
    if ((*a = H5Aopen(*obj, name, H5P_DEFAULT)) < 0)
        return fail(s->path, path, err, VL_EFORMAT, "cannot open attribute \"%s\"", name);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Open and create                                                                           */

int h5s_create(h5s_store **out, const char *path, vl_err *err)
{
    h5s_store *s;
    int rc = store_new(&s, path, 1, err);
    if (rc)
        return rc;
    hid_t fapl = make_fapl(), fcpl = make_ocpl(H5P_FILE_CREATE);
    if (fapl < 0 || fcpl < 0)
        rc = fail(path, NULL, err, VL_EEXTERN, "cannot set up file properties");
    /* H5F_ACC_TRUNC also replaces a stale PATH.tmp left by a killed run. */
    if (!rc && (s->file = H5Fcreate(s->tmp, H5F_ACC_TRUNC, fcpl, fapl)) < 0)
        rc = fail(s->tmp, NULL, err, VL_EIO, "cannot create");
    close_id(fapl);
    close_id(fcpl);
    if (!rc) {
        int ver = H5S_SCHEMA_VERSION;
        rc = attr_put(s, s->file, "/", "schema_version", H5T_STD_I32LE, H5T_NATIVE_INT, &ver,
                      err);
    }
    if (!rc)
        rc = attr_put_str(s, s->file, "/", "creator", "vbrlab", err);
    if (rc) {
        h5s_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

int h5s_open(h5s_store **out, const char *path, vl_err *err)
{
    h5s_store *s;
    int rc = store_new(&s, path, 0, err);
    if (!rc && (rc = open_existing(s, path, H5F_ACC_RDONLY, err)) != 0)
        h5s_close(s);
    if (!rc)
        *out = s;
    return rc;
}

int h5s_open_copy(h5s_store **out, const char *src, const char *path, vl_err *err)
{
    h5s_store *s;
    int rc = store_new(&s, path, 1, err);
    if (rc)
        return rc;
    /* Work on a copy so the original stays intact until commit renames over it. */
    if ((rc = copy_file(src, s->tmp, err)) != 0) {
        store_free(s);
        return rc;
    }
    if ((rc = open_existing(s, s->tmp, H5F_ACC_RDWR, err)) != 0) {
        h5s_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

int h5s_open_rw(h5s_store **out, const char *path, vl_err *err)
{
    return h5s_open_copy(out, path, path, err);
}

/* ---------------------------------------------------------------------------------------- */
/* Queries                                                                                   */

int h5s_exists(h5s_store *s, const char *path)
{
    if (!s || check_path(s, path, NULL))
        return 0;
    return path_exists(s->file, path) > 0;
}

/* Open a dataset with its dataspace; VL_ENOTFOUND if absent, VL_EFORMAT if not a dataset. */
static int open_dset(h5s_store *s, const char *path, hid_t *d, hid_t *space, int *ndim,
                     hsize_t dims[H5S_MAX_DIMS], vl_err *err)
{
    *d = *space = H5I_INVALID_HID;
    int rc = open_obj(s, path, d, err);
    if (rc)
        return rc;
    if (H5Iget_type(*d) != H5I_DATASET)
        return vl_errf(err, VL_EFORMAT, "%s: %s: is not a dataset", s->path, path);
    if ((*space = H5Dget_space(*d)) < 0)
        return fail(s->path, path, err, VL_EFORMAT, "cannot read dataspace");
    int n = H5Sget_simple_extent_ndims(*space);
    if (n < 0 || n > H5S_MAX_DIMS)
        return fail(s->path, path, err, VL_EFORMAT, "rank %d not supported (max %d)", n,
                    H5S_MAX_DIMS);
    if (H5Sget_simple_extent_dims(*space, dims, NULL) < 0)
        return fail(s->path, path, err, VL_EFORMAT, "cannot read dimensions");
    for (int i = 0; i < n; i++)
        if (dims[i] > (hsize_t)INT64_MAX)
            return vl_errf(err, VL_EFORMAT, "%s: %s: dimension %d too large", s->path, path, i);
    *ndim = n;
    return 0;
}

int h5s_shape(h5s_store *s, const char *path, int *ndim, int64_t shape[H5S_MAX_DIMS],
              vl_err *err)
{
    hid_t d, space;
    hsize_t dims[H5S_MAX_DIMS];
    int n = 0, rc = open_dset(s, path, &d, &space, &n, dims, err);
    if (!rc) {
        *ndim = n;
        for (int i = 0; i < n; i++)
            shape[i] = (int64_t)dims[i];
    }
    close_id(space);
    close_id(d);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void h5s_names_free(char **names, int count)
{
    if (!names)
        return;
    for (int i = 0; i < count; i++)
        vl_free(names[i]);
    vl_free(names);
}

int h5s_list(h5s_store *s, const char *group, char ***names, int *count, vl_err *err)
{
    *names = NULL;
    *count = 0;
    hid_t g;
    int rc = open_obj(s, group, &g, err);
    H5G_info_t info;
    char **v = NULL;
    hsize_t n = 0;
    if (!rc && H5Iget_type(g) != H5I_GROUP)
        rc = vl_errf(err, VL_EARG, "%s: %s: is not a group", s->path, group);
    if (!rc && H5Gget_info(g, &info) < 0)
        rc = fail(s->path, group, err, VL_EFORMAT, "cannot read group info");
    if (!rc && info.nlinks > (hsize_t)INT32_MAX)
        rc = vl_errf(err, VL_EFORMAT, "%s: %s: too many members", s->path, group);
    if (!rc && !(v = vl_calloc(info.nlinks, sizeof *v)))
        rc = vl_errf(err, VL_ENOMEM, "%s: %s: out of memory", s->path, group);
    for (; !rc && n < info.nlinks; n++) {
        ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, n, NULL, 0,
                                         H5P_DEFAULT);
        if (len < 0) {
            rc = fail(s->path, group, err, VL_EFORMAT, "cannot read member %llu name",
                      (unsigned long long)n);
            break;
        }
        if (!(v[n] = vl_malloc((size_t)len + 1))) {
            rc = vl_errf(err, VL_ENOMEM, "%s: %s: out of memory", s->path, group);
            break;
        }
        if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, n, v[n], (size_t)len + 1,
                               H5P_DEFAULT) < 0) {
            rc = fail(s->path, group, err, VL_EFORMAT, "cannot read member %llu name",
                      (unsigned long long)n);
            n++;
            break;
        }
    }
    close_id(g);
    if (rc) {
        h5s_names_free(v, (int)n);
        return rc;
    }
    /* HDF5's name index order depends on the group's storage form; ours is strcmp order. */
    if (n > 1)
        qsort(v, (size_t)n, sizeof *v, cmp_str);
    *names = v;
    *count = (int)n;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Datasets                                                                                  */

static int check_writable(h5s_store *s, const char *path, vl_err *err)
{
    if (!s->tmp)
        return vl_errf(err, VL_EARG, "%s: %s: store is open read-only", s->path, path);
    return check_path(s, path, err);
}

/* Create the missing groups above path (without timestamps, unlike what
 * H5Pset_create_intermediate_group would create) and check the existing ones are groups. */
static int make_parents(h5s_store *s, const char *path, vl_err *err)
{
    char buf[PATH_MAX_LEN + 1];
    snprintf(buf, sizeof buf, "%s", path);
    int rc = 0;
    hid_t gcpl = make_ocpl(H5P_GROUP_CREATE);
    if (gcpl < 0)
        return fail(s->path, path, err, VL_EEXTERN, "cannot set up group properties");
    for (char *p = strchr(buf + 1, '/'); p && !rc; p = strchr(p + 1, '/')) {
        *p = '\0';
        hid_t g = H5I_INVALID_HID;
        int ex = path_exists(s->file, buf);
        if (ex < 0) {
            rc = fail(s->path, buf, err, VL_EFORMAT, "cannot look up");
        } else if (ex) {
            if ((g = H5Oopen(s->file, buf, H5P_DEFAULT)) < 0)
                rc = fail(s->path, buf, err, VL_EFORMAT, "cannot open");
            else if (H5Iget_type(g) != H5I_GROUP)
                rc = vl_errf(err, VL_EARG, "%s: %s: exists and is not a group (writing %s)",
                             s->path, buf, path);
        } else if ((g = H5Gcreate2(s->file, buf, H5P_DEFAULT, gcpl, H5P_DEFAULT)) < 0) {
            rc = fail(s->path, buf, err, VL_EEXTERN, "cannot create group");
        }
        close_id(g);
        *p = '/';
    }
    close_id(gcpl);
    return rc;
}

int h5s_write(h5s_store *s, const char *path, h5s_dtype t, const void *data, int ndim,
              const int64_t *shape, const char *units, const char *meaning, vl_err *err)
{
    int rc = check_writable(s, path, err);
    if (rc)
        return rc;
    if (strcmp(path, "/") == 0)
        return vl_errf(err, VL_EARG, "%s: /: cannot write a dataset at the root", s->path);
    if ((int)t < 0 || t >= H5S_DTYPE_COUNT)
        return vl_errf(err, VL_EDTYPE, "%s: %s: unknown dtype %d", s->path, path, (int)t);
    if (ndim < 0 || ndim > H5S_MAX_DIMS || (ndim > 0 && !shape))
        return vl_errf(err, VL_ESHAPE, "%s: %s: rank %d not supported", s->path, path, ndim);
    if (!units || !*units || !meaning || !*meaning)
        return vl_errf(err, VL_EARG, "%s: %s: units and meaning are required", s->path, path);
    hsize_t dims[H5S_MAX_DIMS];
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && numel > (uint64_t)INT64_MAX / (uint64_t)shape[i]))
            return vl_errf(err, VL_ESHAPE, "%s: %s: bad dimension %d: %lld", s->path, path, i,
                           (long long)shape[i]);
        dims[i] = (hsize_t)shape[i];
        numel *= (uint64_t)shape[i];
    }
    if (numel > 0 && !data)
        return vl_errf(err, VL_EARG, "%s: %s: no data", s->path, path);
    if ((rc = make_parents(s, path, err)) != 0)
        return rc;
    int ex = path_exists(s->file, path);
    if (ex > 0) { /* replace a dataset, never a group with everything below it */
        hid_t o = H5Oopen(s->file, path, H5P_DEFAULT);
        int is_dset = o >= 0 && H5Iget_type(o) == H5I_DATASET;
        close_id(o);
        if (!is_dset)
            return vl_errf(err, VL_EARG, "%s: %s: exists and is not a dataset", s->path, path);
    }
    if (ex < 0 || (ex > 0 && H5Ldelete(s->file, path, H5P_DEFAULT) < 0))
        return fail(s->path, path, err, VL_EEXTERN, "cannot replace existing dataset");

    hid_t space = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t dcpl = make_ocpl(H5P_DATASET_CREATE), d = H5I_INVALID_HID;
    if (space < 0 || dcpl < 0 || H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0 ||
        (d = H5Dcreate2(s->file, path, file_type(t), space, H5P_DEFAULT, dcpl, H5P_DEFAULT)) <
            0)
        rc = fail(s->path, path, err, VL_EEXTERN, "cannot create dataset");
    else if (numel > 0 && H5Dwrite(d, mem_type(t), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        rc = fail(s->path, path, err, VL_EEXTERN, "cannot write dataset");
    if (!rc)
        rc = attr_put_str(s, d, path, "units", units, err);
    if (!rc)
        rc = attr_put_str(s, d, path, "meaning", meaning, err);
    close_id(d);
    close_id(dcpl);
    close_id(space);
    return rc;
}

/* Bytes a dataset may need in memory, checked against what the file stores, so that a
 * corrupt shape cannot make us allocate terabytes. */
static int check_storage(h5s_store *s, const char *path, hid_t d, uint64_t numel, vl_err *err)
{
    hid_t ft = H5Dget_type(d), dcpl = H5Dget_create_plist(d);
    int rc = 0;
    size_t fsz = ft >= 0 ? H5Tget_size(ft) : 0;
    H5D_layout_t lay = dcpl >= 0 ? H5Pget_layout(dcpl) : H5D_LAYOUT_ERROR;
    if (fsz == 0 || lay == H5D_LAYOUT_ERROR) {
        rc = fail(s->path, path, err, VL_EFORMAT, "cannot read type or layout");
    } else {
        uint64_t need = numel > UINT64_MAX / fsz ? UINT64_MAX : numel * fsz;
        hsize_t have = H5Dget_storage_size(d);
        int exact = lay == H5D_CONTIGUOUS || lay == H5D_COMPACT;
        /* Chunked data may be compressed; deflate cannot exceed ~1032:1. */
        if (exact ? need != have : need / 1100 > have)
            rc = vl_errf(err, VL_EFORMAT,
                         "%s: %s: stored size %llu bytes does not fit shape (%llu bytes)",
                         s->path, path, (unsigned long long)have, (unsigned long long)need);
    }
    close_id(dcpl);
    close_id(ft);
    return rc;
}

int h5s_read(h5s_store *s, const char *path, h5s_dtype t, void **data, int *ndim,
             int64_t shape[H5S_MAX_DIMS], vl_err *err)
{
    *data = NULL;
    if ((int)t < 0 || t >= H5S_DTYPE_COUNT)
        return vl_errf(err, VL_EDTYPE, "%s: %s: unknown dtype %d", s->path, path, (int)t);
    hid_t d, space, ft = H5I_INVALID_HID;
    hsize_t dims[H5S_MAX_DIMS];
    int n = 0, rc = open_dset(s, path, &d, &space, &n, dims, err);
    uint64_t numel = 1;
    void *buf = NULL;
    for (int i = 0; !rc && i < n; i++)
        numel = dims[i] && numel > UINT64_MAX / dims[i] ? UINT64_MAX : numel * dims[i];
    if (!rc && (ft = H5Dget_type(d)) < 0)
        rc = fail(s->path, path, err, VL_EFORMAT, "cannot read type");
    if (!rc && H5Tget_class(ft) != H5T_INTEGER && H5Tget_class(ft) != H5T_FLOAT)
        rc = vl_errf(err, VL_EDTYPE, "%s: %s: not a numeric dataset", s->path, path);
    if (!rc)
        rc = check_storage(s, path, d, numel, err);
    if (!rc && (numel > SIZE_MAX / DTYPES[t].size ||
                !(buf = vl_malloc((size_t)numel * DTYPES[t].size))))
        rc = vl_errf(err, VL_ENOMEM, "%s: %s: out of memory", s->path, path);
    if (!rc && numel > 0 && H5Dread(d, mem_type(t), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        rc = fail(s->path, path, err, VL_EFORMAT, "cannot read data");
    close_id(ft);
    close_id(space);
    close_id(d);
    if (rc) {
        vl_free(buf);
        return rc;
    }
    *data = buf;
    if (ndim)
        *ndim = n;
    if (shape)
        for (int i = 0; i < n; i++)
            shape[i] = (int64_t)dims[i];
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Attributes (public)                                                                       */

int h5s_attr_set(h5s_store *s, const char *path, const char *name, const char *value,
                 vl_err *err)
{
    int rc = check_writable(s, path, err);
    if (rc)
        return rc;
    if (!name || !*name || !value)
        return vl_errf(err, VL_EARG, "%s: %s: attribute name and value required", s->path,
                       path);
    hid_t obj;
    if (!(rc = open_obj(s, path, &obj, err)))
        rc = attr_put_str(s, obj, path, name, value, err);
    close_id(obj);
    return rc;
}

int h5s_attr_get(h5s_store *s, const char *path, const char *name, char **value, vl_err *err)
{
    *value = NULL;
    hid_t obj, a;
    int rc = open_attr(s, path, name, &obj, &a, err);
    if (!rc)
        rc = attr_read_str(s, a, path, name, value, err);
    close_id(a);
    close_id(obj);
    return rc;
}

int h5s_attr_set_f64(h5s_store *s, const char *path, const char *name, double value,
                     vl_err *err)
{
    int rc = check_writable(s, path, err);
    if (rc)
        return rc;
    if (!name || !*name)
        return vl_errf(err, VL_EARG, "%s: %s: empty attribute name", s->path, path);
    hid_t obj;
    if (!(rc = open_obj(s, path, &obj, err)))
        rc = attr_put(s, obj, path, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value, err);
    close_id(obj);
    return rc;
}

int h5s_attr_get_f64(h5s_store *s, const char *path, const char *name, double *value,
                     vl_err *err)
{
    hid_t obj, a, ft = H5I_INVALID_HID, space = H5I_INVALID_HID;
    int rc = open_attr(s, path, name, &obj, &a, err);
    if (!rc && ((ft = H5Aget_type(a)) < 0 || (space = H5Aget_space(a)) < 0))
        rc = fail(s->path, path, err, VL_EFORMAT, "attribute \"%s\": cannot read type", name);
    /* Integers convert too, so schema_version reads as 1.0. */
    if (!rc && ((H5Tget_class(ft) != H5T_FLOAT && H5Tget_class(ft) != H5T_INTEGER) ||
                H5Sget_simple_extent_npoints(space) != 1))
        rc = vl_errf(err, VL_EDTYPE, "%s: %s: attribute \"%s\" is not a single number",
                     s->path, path, name);
    if (!rc && H5Aread(a, H5T_NATIVE_DOUBLE, value) < 0)
        rc = fail(s->path, path, err, VL_EFORMAT, "cannot read attribute \"%s\"", name);
    close_id(space);
    close_id(ft);
    close_id(a);
    close_id(obj);
    return rc;
}

const char *h5s_path(const h5s_store *s) { return s->path; }

/* ---------------------------------------------------------------------------------------- */
/* Dump                                                                                      */

/* Type as a short stable name: f32, i64, u8, str, vstr, ... ("?" for anything else). */
static void type_name(hid_t ft, char *buf, size_t n)
{
    H5T_class_t cls = H5Tget_class(ft);
    size_t bits = H5Tget_size(ft) * 8;
    const char *be = H5Tget_order(ft) == H5T_ORDER_BE ? "be" : "";
    if (cls == H5T_FLOAT)
        snprintf(buf, n, "f%zu%s", bits, be);
    else if (cls == H5T_INTEGER)
        snprintf(buf, n, "%c%zu%s", H5Tget_sign(ft) == H5T_SGN_NONE ? 'u' : 'i', bits, be);
    else if (cls == H5T_STRING)
        snprintf(buf, n, "%s", H5Tis_variable_str(ft) > 0 ? "vstr" : "str");
    else
        snprintf(buf, n, "?");
}

static void print_shape(FILE *f, hid_t space)
{
    hsize_t dims[32];
    int n = H5Sget_simple_extent_ndims(space);
    if (n < 0 || n > 32 || H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
        fputs(" [?]", f);
        return;
    }
    fputc(' ', f);
    fputc('[', f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%llu", i ? "," : "", (unsigned long long)dims[i]);
    fputc(']', f);
}

/* Strings are printed with C escapes for anything outside printable ASCII except UTF-8. */
static void print_quoted(FILE *f, const char *v)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void print_numbers(FILE *f, hid_t a, H5T_class_t cls, hssize_t npts)
{
    double dv[DUMP_MAX_VALUES];
    long long iv[DUMP_MAX_VALUES];
    int ok = npts >= 1 && npts <= DUMP_MAX_VALUES &&
             H5Aread(a, cls == H5T_FLOAT ? H5T_NATIVE_DOUBLE : H5T_NATIVE_LLONG,
                     cls == H5T_FLOAT ? (void *)dv : (void *)iv) >= 0;
    if (!ok) {
        fputs(" = ...", f);
        return;
    }
    fputs(" =", f);
    for (hssize_t i = 0; i < npts; i++)
        if (cls == H5T_FLOAT)
            fprintf(f, " %.17g", dv[i]);
        else
            fprintf(f, " %lld", iv[i]);
}

typedef struct {
    char **v;
    int n, cap, oom;
} name_list;

static herr_t attr_name_cb(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
    name_list *l = data;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        char **v = vl_realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) {
            l->oom = 1;
            return -1;
        }
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = vl_strdup(name))) {
        l->oom = 1;
        return -1;
    }
    l->n++;
    return 0;
}

static int dump_attrs(h5s_store *s, hid_t obj, const char *opath, FILE *f, vl_err *err)
{
    name_list l = {NULL, 0, 0, 0};
    hsize_t idx = 0;
    int rc = 0;
    if (H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, attr_name_cb, &l) < 0)
        rc = l.oom ? vl_errf(err, VL_ENOMEM, "%s: %s: out of memory", s->path, opath)
                   : fail(s->path, opath, err, VL_EFORMAT, "cannot list attributes");
    if (l.n > 1)
        qsort(l.v, (size_t)l.n, sizeof *l.v, cmp_str);
    for (int i = 0; !rc && i < l.n; i++) {
        hid_t a = H5Aopen(obj, l.v[i], H5P_DEFAULT), ft = H5I_INVALID_HID;
        hid_t space = H5I_INVALID_HID;
        if (a < 0 || (ft = H5Aget_type(a)) < 0 || (space = H5Aget_space(a)) < 0) {
            rc = fail(s->path, opath, err, VL_EFORMAT, "cannot open attribute \"%s\"", l.v[i]);
        } else {
            char tn[32];
            type_name(ft, tn, sizeof tn);
            H5T_class_t cls = H5Tget_class(ft);
            hssize_t npts = H5Sget_simple_extent_npoints(space);
            fprintf(f, "  @%s %s", l.v[i], tn);
            if (H5Sget_simple_extent_type(space) != H5S_SCALAR)
                print_shape(f, space);
            if (cls == H5T_STRING && npts == 1) {
                char *v = NULL;
                if (!(rc = attr_read_str(s, a, opath, l.v[i], &v, err))) {
                    fputs(" = ", f);
                    print_quoted(f, v);
                }
                vl_free(v);
            } else if (cls == H5T_FLOAT || cls == H5T_INTEGER) {
                print_numbers(f, a, cls, npts);
            }
            fputc('\n', f);
        }
        close_id(space);
        close_id(ft);
        close_id(a);
    }
    h5s_names_free(l.v, l.n);
    return rc;
}

static int dump_obj(h5s_store *s, const char *path, FILE *f, int depth, vl_err *err)
{
    if (depth > DUMP_MAX_DEPTH)
        return vl_errf(err, VL_EFORMAT, "%s: %s: groups nested too deep", s->path, path);
    hid_t obj, ft = H5I_INVALID_HID, space = H5I_INVALID_HID;
    int rc = open_obj(s, path, &obj, err);
    if (rc) {
        close_id(obj);
        return rc;
    }
    H5I_type_t kind = H5Iget_type(obj);
    if (kind == H5I_DATASET) {
        char tn[32];
        if ((ft = H5Dget_type(obj)) < 0 || (space = H5Dget_space(obj)) < 0) {
            rc = fail(s->path, path, err, VL_EFORMAT, "cannot read type or dataspace");
        } else {
            type_name(ft, tn, sizeof tn);
            fprintf(f, "DATASET %s %s", path, tn);
            print_shape(f, space);
            fputc('\n', f);
        }
    } else {
        fprintf(f, "%s %s\n", kind == H5I_GROUP ? "GROUP" : "OBJECT", path);
    }
    if (!rc)
        rc = dump_attrs(s, obj, path, f, err);
    close_id(space);
    close_id(ft);
    close_id(obj);
    if (rc || kind != H5I_GROUP)
        return rc;

    char **names;
    int n;
    if ((rc = h5s_list(s, path, &names, &n, err)) != 0)
        return rc;
    for (int i = 0; !rc && i < n; i++) {
        char child[PATH_MAX_LEN + 1];
        int len = snprintf(child, sizeof child, "%s/%s", strcmp(path, "/") ? path : "",
                           names[i]);
        if (len < 0 || (size_t)len >= sizeof child)
            rc = vl_errf(err, VL_EFORMAT, "%s: %s: member path too long", s->path, path);
        else
            rc = dump_obj(s, child, f, depth + 1, err);
    }
    h5s_names_free(names, n);
    return rc;
}

int h5s_dump(h5s_store *s, FILE *f, vl_err *err)
{
    int rc = dump_obj(s, "/", f, 0, err);
    if (!rc && ferror(f))
        rc = vl_errf(err, VL_EIO, "%s: dump: write failed", s->path);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Commit and close                                                                          */

/* fsync so that after rename the new name never points at data still in the page cache
 * only (a crash then could leave PATH holding a partial file). */
static int sync_file(const char *name, vl_err *err)
{
    FILE *fp = fopen(name, "rb+");
    if (!fp)
        return vl_errf(err, VL_EIO, "%s: %s", name, strerror(errno));
    int rc = fsync(fileno(fp)) != 0 ? vl_errf(err, VL_EIO, "%s: fsync: %s", name,
                                               strerror(errno))
                                     : 0;
    fclose(fp);
    return rc;
}

int h5s_commit(h5s_store *s, vl_err *err)
{
    if (!s)
        return vl_errf(err, VL_EARG, "h5s_commit: no store");
    if (!s->tmp) {
        int rc = vl_errf(err, VL_EARG, "%s: commit on a read-only store", s->path);
        h5s_close(s);
        return rc;
    }
    int rc = 0;
    if (H5Fclose(s->file) < 0)
        rc = fail(s->path, NULL, err, VL_EIO, "cannot close %s", s->tmp);
    s->file = H5I_INVALID_HID;
    if (!rc)
        rc = sync_file(s->tmp, err);
    if (!rc && rename(s->tmp, s->path) != 0)
        rc = vl_errf(err, VL_EIO, "%s: cannot rename %s: %s", s->path, s->tmp, strerror(errno));
    if (rc)
        unlink(s->tmp);
    store_free(s);
    return rc;
}

void h5s_close(h5s_store *s)
{
    if (!s)
        return;
    close_id(s->file);
    if (s->tmp)
        unlink(s->tmp); /* never committed: drop the partial result */
    store_free(s);
}
