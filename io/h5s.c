/* io/h5s.c — the HDF5 results store (contract in io/h5s.h, layout in docs/hdf5-schema.md).
 *
 * With h5s_attr.c and h5s_dump.c (h5s_int.h) the only files that include hdf5.h. HDF5's own
 * error printing is switched off;
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
#include "h5s_int.h"

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
int h5s_i_fail(const char *file, const char *obj, vl_err *err, int code, const char *fmt, ...)
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

void h5s_i_close(hid_t id)
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
int h5s_i_check_path(const h5s_store *s, const char *path, vl_err *err)
{
    size_t n = path ? strlen(path) : 0;
    if (!path || path[0] != '/' || n > PATH_MAX_LEN || strstr(path, "//") ||
        (n > 1 && path[n - 1] == '/'))
        return vl_errf(err, VL_EARG, "%s: \"%s\": not an absolute HDF5 path", s->path,
                       path ? path : "(null)");
    return 0;
}

/* 1 if every link along path exists and the last one resolves to an object, 0 if not, -1 if
 * HDF5 failed (corrupt metadata; the error stays on HDF5's stack for h5s_i_fail()). Walks the
 * prefixes because H5Lexists fails (rather than saying no) when a parent group is missing. */
int h5s_i_path_exists(hid_t file, const char *path)
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
        h5s_i_close(fapl);
        return H5I_INVALID_HID;
    }
    return fapl;
}

/* Object-creation properties without timestamps (for groups, datasets and the file's root). */
static hid_t make_ocpl(hid_t cls)
{
    hid_t p = H5Pcreate(cls);
    if (p >= 0 && H5Pset_obj_track_times(p, 0) < 0) {
        h5s_i_close(p);
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
        h5s_i_close(fapl);
    }
    if (s->file < 0)
        return vl_errf(err, VL_EFORMAT, "%s: not an HDF5 file or truncated", s->path);
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
        rc = h5s_i_fail(path, NULL, err, VL_EEXTERN, "cannot set up file properties");
    /* H5F_ACC_TRUNC also replaces a stale PATH.tmp left by a killed run. */
    if (!rc && (s->file = H5Fcreate(s->tmp, H5F_ACC_TRUNC, fcpl, fapl)) < 0)
        rc = h5s_i_fail(s->tmp, NULL, err, VL_EIO, "cannot create");
    h5s_i_close(fapl);
    h5s_i_close(fcpl);
    if (!rc) {
        int ver = H5S_SCHEMA_VERSION;
        rc = h5s_i_attr_put(s, s->file, "/", "schema_version", H5T_STD_I32LE, H5T_NATIVE_INT, &ver,
                      err);
    }
    if (!rc)
        rc = h5s_i_attr_put_str(s, s->file, "/", "creator", "vbrlab", err);
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
    if (!s || h5s_i_check_path(s, path, NULL))
        return 0;
    return h5s_i_path_exists(s->file, path) > 0;
}

/* Open a dataset with its dataspace; VL_ENOTFOUND if absent, VL_EFORMAT if not a dataset. */
static int open_dset(h5s_store *s, const char *path, hid_t *d, hid_t *space, int *ndim,
                     hsize_t dims[H5S_MAX_DIMS], vl_err *err)
{
    *d = *space = H5I_INVALID_HID;
    int rc = h5s_i_open_obj(s, path, d, err);
    if (rc)
        return rc;
    if (H5Iget_type(*d) != H5I_DATASET)
        return vl_errf(err, VL_EFORMAT, "%s: %s: is not a dataset", s->path, path);
    if ((*space = H5Dget_space(*d)) < 0)
        return h5s_i_fail(s->path, path, err, VL_EFORMAT, "cannot read dataspace");
    int n = H5Sget_simple_extent_ndims(*space);
    if (n < 0 || n > H5S_MAX_DIMS)
        return h5s_i_fail(s->path, path, err, VL_EFORMAT, "rank %d not supported (max %d)", n,
                    H5S_MAX_DIMS);
    if (H5Sget_simple_extent_dims(*space, dims, NULL) < 0)
        return h5s_i_fail(s->path, path, err, VL_EFORMAT, "cannot read dimensions");
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
    h5s_i_close(space);
    h5s_i_close(d);
    return rc;
}

int h5s_i_cmp_str(const void *a, const void *b)
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
    int rc = h5s_i_open_obj(s, group, &g, err);
    H5G_info_t info;
    char **v = NULL;
    hsize_t n = 0;
    if (!rc && H5Iget_type(g) != H5I_GROUP)
        rc = vl_errf(err, VL_EARG, "%s: %s: is not a group", s->path, group);
    if (!rc && H5Gget_info(g, &info) < 0)
        rc = h5s_i_fail(s->path, group, err, VL_EFORMAT, "cannot read group info");
    if (!rc && info.nlinks > (hsize_t)INT32_MAX)
        rc = vl_errf(err, VL_EFORMAT, "%s: %s: too many members", s->path, group);
    if (!rc && !(v = vl_calloc(info.nlinks, sizeof *v)))
        rc = vl_errf(err, VL_ENOMEM, "%s: %s: out of memory", s->path, group);
    for (; !rc && n < info.nlinks; n++) {
        ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, n, NULL, 0,
                                         H5P_DEFAULT);
        if (len < 0) {
            rc = h5s_i_fail(s->path, group, err, VL_EFORMAT, "cannot read member %llu name",
                      (unsigned long long)n);
            break;
        }
        if (!(v[n] = vl_malloc((size_t)len + 1))) {
            rc = vl_errf(err, VL_ENOMEM, "%s: %s: out of memory", s->path, group);
            break;
        }
        if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, n, v[n], (size_t)len + 1,
                               H5P_DEFAULT) < 0) {
            rc = h5s_i_fail(s->path, group, err, VL_EFORMAT, "cannot read member %llu name",
                      (unsigned long long)n);
            n++;
            break;
        }
    }
    h5s_i_close(g);
    if (rc) {
        h5s_names_free(v, (int)n);
        return rc;
    }
    /* HDF5's name index order depends on the group's storage form; ours is strcmp order. */
    if (n > 1)
        qsort(v, (size_t)n, sizeof *v, h5s_i_cmp_str);
    *names = v;
    *count = (int)n;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Datasets                                                                                  */

int h5s_i_check_writable(h5s_store *s, const char *path, vl_err *err)
{
    if (!s->tmp)
        return vl_errf(err, VL_EARG, "%s: %s: store is open read-only", s->path, path);
    return h5s_i_check_path(s, path, err);
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
        return h5s_i_fail(s->path, path, err, VL_EEXTERN, "cannot set up group properties");
    for (char *p = strchr(buf + 1, '/'); p && !rc; p = strchr(p + 1, '/')) {
        *p = '\0';
        hid_t g = H5I_INVALID_HID;
        int ex = h5s_i_path_exists(s->file, buf);
        if (ex < 0) {
            rc = h5s_i_fail(s->path, buf, err, VL_EFORMAT, "cannot look up");
        } else if (ex) {
            if ((g = H5Oopen(s->file, buf, H5P_DEFAULT)) < 0)
                rc = h5s_i_fail(s->path, buf, err, VL_EFORMAT, "cannot open");
            else if (H5Iget_type(g) != H5I_GROUP)
                rc = vl_errf(err, VL_EARG, "%s: %s: exists and is not a group (writing %s)",
                             s->path, buf, path);
        } else if ((g = H5Gcreate2(s->file, buf, H5P_DEFAULT, gcpl, H5P_DEFAULT)) < 0) {
            rc = h5s_i_fail(s->path, buf, err, VL_EEXTERN, "cannot create group");
        }
        h5s_i_close(g);
        *p = '/';
    }
    h5s_i_close(gcpl);
    return rc;
}

int h5s_write(h5s_store *s, const char *path, h5s_dtype t, const void *data, int ndim,
              const int64_t *shape, const char *units, const char *meaning, vl_err *err)
{
    int rc = h5s_i_check_writable(s, path, err);
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
    int ex = h5s_i_path_exists(s->file, path);
    if (ex > 0) { /* replace a dataset, never a group with everything below it */
        hid_t o = H5Oopen(s->file, path, H5P_DEFAULT);
        int is_dset = o >= 0 && H5Iget_type(o) == H5I_DATASET;
        h5s_i_close(o);
        if (!is_dset)
            return vl_errf(err, VL_EARG, "%s: %s: exists and is not a dataset", s->path, path);
    }
    if (ex < 0 || (ex > 0 && H5Ldelete(s->file, path, H5P_DEFAULT) < 0))
        return h5s_i_fail(s->path, path, err, VL_EEXTERN, "cannot replace existing dataset");

    hid_t space = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t dcpl = make_ocpl(H5P_DATASET_CREATE), d = H5I_INVALID_HID;
    if (space < 0 || dcpl < 0 || H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0 ||
        (d = H5Dcreate2(s->file, path, file_type(t), space, H5P_DEFAULT, dcpl, H5P_DEFAULT)) <
            0)
        rc = h5s_i_fail(s->path, path, err, VL_EEXTERN, "cannot create dataset");
    else if (numel > 0 && H5Dwrite(d, mem_type(t), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        rc = h5s_i_fail(s->path, path, err, VL_EEXTERN, "cannot write dataset");
    if (!rc)
        rc = h5s_i_attr_put_str(s, d, path, "units", units, err);
    if (!rc)
        rc = h5s_i_attr_put_str(s, d, path, "meaning", meaning, err);
    h5s_i_close(d);
    h5s_i_close(dcpl);
    h5s_i_close(space);
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
        rc = h5s_i_fail(s->path, path, err, VL_EFORMAT, "cannot read type or layout");
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
    h5s_i_close(dcpl);
    h5s_i_close(ft);
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
        rc = h5s_i_fail(s->path, path, err, VL_EFORMAT, "cannot read type");
    if (!rc && H5Tget_class(ft) != H5T_INTEGER && H5Tget_class(ft) != H5T_FLOAT)
        rc = vl_errf(err, VL_EDTYPE, "%s: %s: not a numeric dataset", s->path, path);
    if (!rc)
        rc = check_storage(s, path, d, numel, err);
    if (!rc && (numel > SIZE_MAX / DTYPES[t].size ||
                !(buf = vl_malloc((size_t)numel * DTYPES[t].size))))
        rc = vl_errf(err, VL_ENOMEM, "%s: %s: out of memory", s->path, path);
    if (!rc && numel > 0 && H5Dread(d, mem_type(t), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        rc = h5s_i_fail(s->path, path, err, VL_EFORMAT, "cannot read data");
    h5s_i_close(ft);
    h5s_i_close(space);
    h5s_i_close(d);
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

const char *h5s_path(const h5s_store *s) { return s->path; }

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
        rc = h5s_i_fail(s->path, NULL, err, VL_EIO, "cannot close %s", s->tmp);
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
    h5s_i_close(s->file);
    if (s->tmp)
        unlink(s->tmp); /* never committed: drop the partial result */
    store_free(s);
}
