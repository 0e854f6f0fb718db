/* core/vfile.h — opening input files: regular files only, checked before any blocking read.
 *
 * A FIFO, a terminal or a device given where a file is expected would make a plain open() or
 * read() wait forever (a FIFO with no writer blocks open itself). Every reader of the toolkit
 * opens its inputs here: open with O_NONBLOCK (returns at once whatever the file is), fstat,
 * refuse anything that is not a regular file with one line naming the path, and only then clear
 * O_NONBLOCK and read. Libraries that open files by name themselves (HDF5) get the same check
 * through vf_check first.
 *
 * Errors: VL_ENOTFOUND when the path does not exist, VL_EIO for every other failure (including
 * "not a regular file (a FIFO)"); messages are "PATH: problem". Thread-safe (no shared state).
 */
#ifndef VL_VFILE_H
#define VL_VFILE_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Open a regular file read-only (close-on-exec); *fd the descriptor (caller closes), *size
 * (if not NULL) its size in bytes at open time. */
int vf_open(const char *path, int *fd, int64_t *size, vl_err *err);

/* The same as a stdio stream ("rb"); caller fcloses. */
int vf_fopen(const char *path, FILE **f, vl_err *err);

/* 0 if path is a regular file (opened without blocking, then closed). */
int vf_check(const char *path, vl_err *err);

/* The whole regular file into a vl_malloc'd NUL-terminated buffer (caller frees); *len (if not
 * NULL) its length without the NUL. Files over max bytes are refused (VL_ERANGE). */
int vf_slurp(const char *path, size_t max, char **buf, size_t *len, vl_err *err);

#endif
