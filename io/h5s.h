/* io/h5s.h — the HDF5 results store: the only module that includes hdf5.h.
 *
 * A store is one HDF5 file. Writing is atomic: h5s_create writes PATH.tmp; h5s_commit closes
 * it and renames it to PATH; h5s_close without commit deletes the temporary file, so an
 * interrupted run never leaves a half-written result. h5s_open_rw on an existing store copies
 * it to PATH.tmp and works on the copy (same commit/close rule).
 *
 * Dataset paths are absolute ("/hidden_states/03"); intermediate groups are created as needed.
 * Every dataset written gets the attributes `units` and `meaning` (docs/hdf5-schema.md). The
 * root carries `schema_version`.
 *
 * Errors name the file and the dataset path. Not thread-safe (HDF5 serial build).
 */
#ifndef VL_H5S_H
#define VL_H5S_H

#include "../core/err.h"

#include <stdint.h>
#include <stdio.h>

#define H5S_MAX_DIMS 8
#define H5S_SCHEMA_VERSION 1

typedef struct h5s_store h5s_store;

typedef enum { H5S_F32, H5S_F64, H5S_I32, H5S_I64, H5S_U8, H5S_DTYPE_COUNT } h5s_dtype;

/* Open/create. On success *out is a store the caller ends with h5s_commit or h5s_close.
 * h5s_create: new file PATH.tmp (a stale one is truncated) with root attributes schema_version
 * and creator. h5s_open: read-only; a missing file is VL_ENOTFOUND, anything HDF5 rejects
 * (not HDF5, truncated) is VL_EFORMAT "PATH: not an HDF5 file or truncated". h5s_open_rw:
 * copies PATH to PATH.tmp and opens the copy read-write. */
int h5s_create(h5s_store **out, const char *path, vl_err *err);       /* new file (tmp) */
int h5s_open(h5s_store **out, const char *path, vl_err *err);         /* read-only */
int h5s_open_rw(h5s_store **out, const char *path, vl_err *err);      /* copy-on-write */
/* The same with another file as the starting point: SRC copied to PATH.tmp, which commit
 * renames to PATH (h5s_open_rw(P) is h5s_open_copy(P, P)). */
int h5s_open_copy(h5s_store **out, const char *src, const char *path, vl_err *err);

/* Queries. h5s_exists: 1 if the dataset or group exists, 0 if not. */
int h5s_exists(h5s_store *s, const char *path);
/* Shape of a dataset: *ndim and shape[0..ndim). */
int h5s_shape(h5s_store *s, const char *path, int *ndim, int64_t shape[H5S_MAX_DIMS],
              vl_err *err);
/* Names of the members of a group, sorted; *names is a vl_malloc'd array of vl_malloc'd strings
 * the caller frees with h5s_names_free. */
int h5s_list(h5s_store *s, const char *group, char ***names, int *count, vl_err *err);
void h5s_names_free(char **names, int count);

/* Write a whole dataset of ndim (0 = scalar .. H5S_MAX_DIMS) dimensions, stored little-endian,
 * contiguous. Replaces an existing dataset of that path (never a group: VL_EARG). units and
 * meaning must be non-empty (VL_EARG otherwise). Missing parent groups are created. VL_EARG on
 * a read-only store. */
int h5s_write(h5s_store *s, const char *path, h5s_dtype t, const void *data, int ndim,
              const int64_t *shape, const char *units, const char *meaning, vl_err *err);

/* Read a whole dataset converted to type t. *data is vl_malloc'd (caller frees); shape/ndim
 * are filled when not NULL. Fails with VL_ENOTFOUND if absent. */
int h5s_read(h5s_store *s, const char *path, h5s_dtype t, void **data, int *ndim,
             int64_t shape[H5S_MAX_DIMS], vl_err *err);

/* String attributes on a group or dataset ("/" for the root); set replaces. get: *value
 * vl_malloc'd; reads fixed- and variable-length strings; VL_ENOTFOUND if the object or the
 * attribute is absent, VL_EDTYPE if it is not one string. */
int h5s_attr_set(h5s_store *s, const char *path, const char *name, const char *value,
                 vl_err *err);
int h5s_attr_get(h5s_store *s, const char *path, const char *name, char **value, vl_err *err);
/* Numeric scalar attributes (float64). get also converts integer attributes
 * (schema_version reads as 1.0); VL_EDTYPE for a string. */
int h5s_attr_set_f64(h5s_store *s, const char *path, const char *name, double value,
                     vl_err *err);
int h5s_attr_get_f64(h5s_store *s, const char *path, const char *name, double *value,
                     vl_err *err);

/* Name lists as one string attribute, the names joined by '\n' (docs/hdf5-schema.md). set
 * writes names[0..n) (a name holding '\n' is VL_EARG); get reads them back as a vl_malloc'd
 * array of vl_malloc'd names (h5s_names_free): "" is no name, a trailing '\n' ends the last
 * one. Errors as h5s_attr_set/h5s_attr_get. */
int h5s_attr_set_names(h5s_store *s, const char *path, const char *name,
                       const char *const *names, int n, vl_err *err);
int h5s_attr_get_names(h5s_store *s, const char *path, const char *name, char ***names,
                       int *n, vl_err *err);

const char *h5s_path(const h5s_store *s);  /* final path, borrowed */

/* Deterministic text dump of the whole tree for text goldens: depth-first, members sorted by
 * name, one line per group ("GROUP /path") or dataset ("DATASET /path f32 [3,24,256]"), then
 * its attributes sorted by name, indented ("  @units str = \"nat\"", numbers with %.17g,
 * at most 8 values). No dataset values. Returns 0 or a VL_E* code (err filled). */
int h5s_dump(h5s_store *s, FILE *f, vl_err *err);

int h5s_commit(h5s_store *s, vl_err *err); /* flush, close, rename tmp → path; frees s */
void h5s_close(h5s_store *s);              /* read-only: close; writable: discard tmp. NULL ok */

#endif
