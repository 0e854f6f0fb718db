/* io/h5s_int.h — private to the store module (h5s.c: the store; h5s_dump.c: the text dump
 * for goldens and tests; h5s_attr.c: attributes). The only files that include hdf5.h.
 */
#ifndef VL_H5S_INT_H
#define VL_H5S_INT_H

#include "../core/err.h"
#include "h5s.h"

#include <hdf5.h>

#define PATH_MAX_LEN 1024  /* longest dataset/group path we accept */

struct h5s_store {
    hid_t file;
    char *path;   /* final path (what errors name) */
    char *tmp;    /* PATH.tmp while writable, NULL when read-only */
};


/* "FILE: OBJ: message (HDF5: detail)". Call right after the failing HDF5 call: the next API
 * call clears HDF5's error stack. obj may be NULL. Returns code. */
int h5s_i_fail(const char *file, const char *obj, vl_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Close any HDF5 id quietly (negative: no-op). */
void h5s_i_close(hid_t id);
/* Open the group or dataset at PATH (*obj negative on failure). */
int h5s_i_open_obj(h5s_store *s, const char *path, hid_t *obj, vl_err *err);
/* Write attribute NAME on OBJ (replacing one of that name) from a scalar of memory type MT
 * stored as FT; a string attribute as fixed-length UTF-8. */
int h5s_i_attr_put(h5s_store *s, hid_t obj, const char *opath, const char *name, hid_t ft,
                   hid_t mt, const void *value, vl_err *err);
int h5s_i_attr_put_str(h5s_store *s, hid_t obj, const char *opath, const char *name,
                       const char *value, vl_err *err);
/* Read string attribute A (fixed or variable length) of object OPATH into *value. */
int h5s_i_attr_read_str(h5s_store *s, hid_t a, const char *opath, const char *name,
                        char **value, vl_err *err);
/* 0 if PATH is absolute without empty components or a trailing slash, else VL_EARG. */
int h5s_i_check_path(const h5s_store *s, const char *path, vl_err *err);
/* 1 if every link along PATH exists and resolves to an object, 0 if not, −1 on an HDF5
 * failure. */
int h5s_i_path_exists(hid_t file, const char *path);
/* 0 if S was opened writable, else VL_EARG naming PATH. */
int h5s_i_check_writable(h5s_store *s, const char *path, vl_err *err);
/* qsort comparator of char * (names in byte order). */
int h5s_i_cmp_str(const void *a, const void *b);

#endif
