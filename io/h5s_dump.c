/* io/h5s_dump.c — h5s_dump: the deterministic text dump of a store (text goldens, tests). */
#include "h5s_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DUMP_MAX_DEPTH 64  /* group nesting guard: hard links can form cycles in a bad file */
#define DUMP_MAX_VALUES 8  /* numeric attribute values printed per attribute */

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
                   : h5s_i_fail(s->path, opath, err, VL_EFORMAT, "cannot list attributes");
    if (l.n > 1)
        qsort(l.v, (size_t)l.n, sizeof *l.v, h5s_i_cmp_str);
    for (int i = 0; !rc && i < l.n; i++) {
        hid_t a = H5Aopen(obj, l.v[i], H5P_DEFAULT), ft = H5I_INVALID_HID;
        hid_t space = H5I_INVALID_HID;
        if (a < 0 || (ft = H5Aget_type(a)) < 0 || (space = H5Aget_space(a)) < 0) {
            rc = h5s_i_fail(s->path, opath, err, VL_EFORMAT, "cannot open attribute \"%s\"",
                            l.v[i]);
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
                if (!(rc = h5s_i_attr_read_str(s, a, opath, l.v[i], &v, err))) {
                    fputs(" = ", f);
                    print_quoted(f, v);
                }
                vl_free(v);
            } else if (cls == H5T_FLOAT || cls == H5T_INTEGER) {
                print_numbers(f, a, cls, npts);
            }
            fputc('\n', f);
        }
        h5s_i_close(space);
        h5s_i_close(ft);
        h5s_i_close(a);
    }
    h5s_names_free(l.v, l.n);
    return rc;
}

static int dump_obj(h5s_store *s, const char *path, FILE *f, int depth, vl_err *err)
{
    if (depth > DUMP_MAX_DEPTH)
        return vl_errf(err, VL_EFORMAT, "%s: %s: groups nested too deep", s->path, path);
    hid_t obj, ft = H5I_INVALID_HID, space = H5I_INVALID_HID;
    int rc = h5s_i_open_obj(s, path, &obj, err);
    if (rc) {
        h5s_i_close(obj);
        return rc;
    }
    H5I_type_t kind = H5Iget_type(obj);
    if (kind == H5I_DATASET) {
        char tn[32];
        if ((ft = H5Dget_type(obj)) < 0 || (space = H5Dget_space(obj)) < 0) {
            rc = h5s_i_fail(s->path, path, err, VL_EFORMAT, "cannot read type or dataspace");
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
    h5s_i_close(space);
    h5s_i_close(ft);
    h5s_i_close(obj);
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

