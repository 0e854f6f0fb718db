/* io/h5s_attr.c — attributes of the store: string and float64 scalars on groups and datasets
 * (h5s.h), and the helpers h5s.c and h5s_dump.c share for them (h5s_int.h).
 */
#include "h5s_int.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* Attributes (shared by the public setters, h5s_create and h5s_dump)                       */

/* Write attribute name on obj (replacing one of that name) from a scalar of memory type mt. */
int h5s_i_attr_put(h5s_store *s, hid_t obj, const char *opath, const char *name, hid_t ft,
                    hid_t mt, const void *val, vl_err *err)
{
    int rc = 0;
    hid_t space = H5I_INVALID_HID, a = H5I_INVALID_HID;
    htri_t has = H5Aexists(obj, name);
    if (has < 0 || (has > 0 && H5Adelete(obj, name) < 0)) {
        rc = h5s_i_fail(s->path, opath, err, VL_EEXTERN, "cannot replace attribute \"%s\"", name);
        goto out;
    }
    if ((space = H5Screate(H5S_SCALAR)) < 0 ||
        (a = H5Acreate2(obj, name, ft, space, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(a, mt, val) < 0)
        rc = h5s_i_fail(s->path, opath, err, VL_EEXTERN, "cannot write attribute \"%s\"", name);
out:
    h5s_i_close(a);
    h5s_i_close(space);
    return rc;
}

int h5s_i_attr_put_str(h5s_store *s, hid_t obj, const char *opath, const char *name,
                        const char *value, vl_err *err)
{
    /* Fixed-length UTF-8, NUL included: no global heap, so nothing depends on heap layout. */
    hid_t st = H5Tcopy(H5T_C_S1);
    if (st < 0 || H5Tset_size(st, strlen(value) + 1) < 0 ||
        H5Tset_strpad(st, H5T_STR_NULLTERM) < 0 || H5Tset_cset(st, H5T_CSET_UTF8) < 0) {
        int rc = h5s_i_fail(s->path, opath, err, VL_EEXTERN, "cannot make string type");
        h5s_i_close(st);
        return rc;
    }
    int rc = h5s_i_attr_put(s, obj, opath, name, st, st, value, err);
    h5s_i_close(st);
    return rc;
}

/* Read a string attribute already opened as a (fixed or variable length, one element). */
int h5s_i_attr_read_str(h5s_store *s, hid_t a, const char *opath, const char *name,
                         char **value, vl_err *err)
{
    int rc = 0;
    char *buf = NULL;
    hid_t ft = H5Aget_type(a), space = H5Aget_space(a), mt = H5I_INVALID_HID;
    if (ft < 0 || space < 0) {
        rc = h5s_i_fail(s->path, opath, err, VL_EEXTERN, "attribute \"%s\": cannot read type",
                        name);
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
        rc = h5s_i_fail(s->path, opath, err, VL_EEXTERN, "attribute \"%s\": bad string type", name);
        goto out;
    }
    if (var) {
        char *p = NULL;
        if (H5Aread(a, mt, &p) < 0) {
            rc = h5s_i_fail(s->path, opath, err, VL_EFORMAT, "cannot read attribute \"%s\"", name);
            goto out;
        }
        buf = vl_strdup(p ? p : "");
        H5free_memory(p);
    } else {
        buf = vl_calloc(sz + 1, 1);
        if (buf && H5Aread(a, mt, buf) < 0) {
            rc = h5s_i_fail(s->path, opath, err, VL_EFORMAT, "cannot read attribute \"%s\"", name);
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
    h5s_i_close(mt);
    h5s_i_close(space);
    h5s_i_close(ft);
    return rc;
}

/* Open the object at path (group or dataset); VL_ENOTFOUND if absent. */
int h5s_i_open_obj(h5s_store *s, const char *path, hid_t *obj, vl_err *err)
{
    *obj = H5I_INVALID_HID;
    int rc = h5s_i_check_path(s, path, err);
    if (rc)
        return rc;
    int ex = h5s_i_path_exists(s->file, path);
    if (ex < 0)
        return h5s_i_fail(s->path, path, err, VL_EFORMAT, "cannot look up");
    if (!ex)
        return vl_errf(err, VL_ENOTFOUND, "%s: %s: no such group or dataset", s->path, path);
    if ((*obj = H5Oopen(s->file, path, H5P_DEFAULT)) < 0)
        return h5s_i_fail(s->path, path, err, VL_EFORMAT, "cannot open object");
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
    int rc = h5s_i_open_obj(s, path, obj, err);
    if (rc)
        return rc;
    htri_t has = H5Aexists(*obj, name);
    if (has < 0)
        return h5s_i_fail(s->path, path, err, VL_EFORMAT, "cannot look up attribute \"%s\"", name);
    if (!has)
        return vl_errf(err, VL_ENOTFOUND, "%s: %s: no attribute \"%s\"", s->path, path, name);
    if ((*a = H5Aopen(*obj, name, H5P_DEFAULT)) < 0)
        return h5s_i_fail(s->path, path, err, VL_EFORMAT, "cannot open attribute \"%s\"", name);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Attributes (public)                                                                       */

int h5s_attr_set(h5s_store *s, const char *path, const char *name, const char *value,
                 vl_err *err)
{
    int rc = h5s_i_check_writable(s, path, err);
    if (rc)
        return rc;
    if (!name || !*name || !value)
        return vl_errf(err, VL_EARG, "%s: %s: attribute name and value required", s->path,
                       path);
    hid_t obj;
    if (!(rc = h5s_i_open_obj(s, path, &obj, err)))
        rc = h5s_i_attr_put_str(s, obj, path, name, value, err);
    h5s_i_close(obj);
    return rc;
}

int h5s_attr_get(h5s_store *s, const char *path, const char *name, char **value, vl_err *err)
{
    *value = NULL;
    hid_t obj, a;
    int rc = open_attr(s, path, name, &obj, &a, err);
    if (!rc)
        rc = h5s_i_attr_read_str(s, a, path, name, value, err);
    h5s_i_close(a);
    h5s_i_close(obj);
    return rc;
}

int h5s_attr_set_f64(h5s_store *s, const char *path, const char *name, double value,
                     vl_err *err)
{
    int rc = h5s_i_check_writable(s, path, err);
    if (rc)
        return rc;
    if (!name || !*name)
        return vl_errf(err, VL_EARG, "%s: %s: empty attribute name", s->path, path);
    hid_t obj;
    if (!(rc = h5s_i_open_obj(s, path, &obj, err)))
        rc = h5s_i_attr_put(s, obj, path, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value, err);
    h5s_i_close(obj);
    return rc;
}

int h5s_attr_get_f64(h5s_store *s, const char *path, const char *name, double *value,
                     vl_err *err)
{
    hid_t obj, a, ft = H5I_INVALID_HID, space = H5I_INVALID_HID;
    int rc = open_attr(s, path, name, &obj, &a, err);
    if (!rc && ((ft = H5Aget_type(a)) < 0 || (space = H5Aget_space(a)) < 0))
        rc = h5s_i_fail(s->path, path, err, VL_EFORMAT, "attribute \"%s\": cannot read type", name);
    /* Integers convert too, so schema_version reads as 1.0. */
    if (!rc && ((H5Tget_class(ft) != H5T_FLOAT && H5Tget_class(ft) != H5T_INTEGER) ||
                H5Sget_simple_extent_npoints(space) != 1))
        rc = vl_errf(err, VL_EDTYPE, "%s: %s: attribute \"%s\" is not a single number",
                     s->path, path, name);
    if (!rc && H5Aread(a, H5T_NATIVE_DOUBLE, value) < 0)
        rc = h5s_i_fail(s->path, path, err, VL_EFORMAT, "cannot read attribute \"%s\"", name);
    h5s_i_close(space);
    h5s_i_close(ft);
    h5s_i_close(a);
    h5s_i_close(obj);
    return rc;
}


/* ---------------------------------------------------------------------------------------- */
/* Name lists: one string attribute, the names joined by '\n'                               */

int h5s_attr_set_names(h5s_store *s, const char *path, const char *name,
                       const char *const *names, int n, vl_err *err)
{
    size_t len = 1;
    for (int i = 0; i < n; i++) {
        if (strchr(names[i], '\n'))
            return vl_errf(err, VL_EARG, "%s: %s: attribute \"%s\": name %d holds a newline",
                           s->path, path, name, i);
        len += strlen(names[i]) + 1;
    }
    char *v = vl_malloc(len), *p = v;
    if (!v)
        return vl_errf(err, VL_ENOMEM, "%s: %s: out of memory", s->path, path);
    for (int i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (i)
            *p++ = '\n';
        memcpy(p, names[i], l);
        p += l;
    }
    *p = '\0';
    int rc = h5s_attr_set(s, path, name, v, err);
    vl_free(v);
    return rc;
}

int h5s_attr_get_names(h5s_store *s, const char *path, const char *name, char ***names,
                       int *n, vl_err *err)
{
    *names = NULL;
    *n = 0;
    char *v = NULL;
    int rc = h5s_attr_get(s, path, name, &v, err);
    if (rc)
        return rc;
    size_t cap = 1;
    for (const char *p = v; *p; p++)
        cap += *p == '\n';
    char **out = vl_calloc(cap, sizeof *out);
    int k = 0;
    for (const char *p = v; out && *p;) {
        size_t len = strcspn(p, "\n");
        if (!(out[k] = vl_malloc(len + 1))) {
            h5s_names_free(out, k);
            out = NULL;
            break;
        }
        memcpy(out[k], p, len);
        out[k++][len] = '\0';
        p += len + (p[len] == '\n');
    }
    vl_free(v);
    if (!out)
        return vl_errf(err, VL_ENOMEM, "%s: %s: out of memory reading attribute \"%s\"",
                       s->path, path, name);
    *names = out;
    *n = k;
    return 0;
}
