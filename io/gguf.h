/* io/gguf.h — GGUF files (llama.cpp's model and imatrix container): a validating reader and an
 * in-memory writer.
 *
 * Layout (GGUF v3, little-endian; ggml docs/gguf.md, include/gguf.h):
 *   u32 magic "GGUF" (bytes 47 47 55 46), u32 version (3), u64 n_tensors, u64 n_kv,
 *   n_kv × { string key, u32 value type, value },
 *   n_tensors × { string name, u32 n_dims (1..4), u64 ne[n_dims], u32 ggml type, u64 offset },
 *   zero padding to ALIGNMENT, then the tensor data; each offset (relative to the data start)
 *   is a multiple of ALIGNMENT (the u32 key general.alignment, default 32, a multiple of 8).
 *   string = u64 length + bytes (no NUL); value types: u8 0, i8 1, u16 2, i16 3, u32 4, i32 5,
 *   f32 6, bool 7, string 8, array 9 (u32 element type, u64 count, elements), u64 10, i64 11,
 *   f64 12. ne[0] is the innermost (row) dimension.
 *
 * The reader loads the whole file and checks everything before returning: magic, version
 * (2 or 3), counts bounded by the file size, value types, string lengths, UTF-8-free key
 * uniqueness, tensor dims (≥ 1, product fits), known ggml types with ne[0] a multiple of the
 * block, aligned offsets, data inside the file and tensors not overlapping. Nested arrays are
 * refused (VL_EFORMAT, not silently skipped). Errors name the file and the field.
 *
 * The writer collects KVs and tensors (copied) and writes the file atomically (PATH.tmp, then
 * rename); it writes n_dims as ggml does (trailing dimensions of 1 dropped, at least 1).
 * Neither is thread-safe on one object; separate objects are independent.
 */
#ifndef VL_GGUF_H
#define VL_GGUF_H

#include "../core/err.h"

#include <stddef.h>
#include <stdint.h>

enum {
    GGUF_T_U8 = 0, GGUF_T_I8 = 1, GGUF_T_U16 = 2, GGUF_T_I16 = 3, GGUF_T_U32 = 4,
    GGUF_T_I32 = 5, GGUF_T_F32 = 6, GGUF_T_BOOL = 7, GGUF_T_STR = 8, GGUF_T_ARR = 9,
    GGUF_T_U64 = 10, GGUF_T_I64 = 11, GGUF_T_F64 = 12, GGUF_T_COUNT
};

#define GGUF_DEFAULT_ALIGN 32

/* ---------------------------------------------------------------- reader */

typedef struct gguf_file gguf_file;

typedef struct {
    const char *name;      /* NUL-terminated, owned by the file */
    int ggml_type;         /* ggml_type id (io/ggml_type.h ggf_from_id) */
    int n_dims;
    int64_t ne[4];         /* ne[0] innermost; unused dims are 1 */
    uint64_t offset;       /* relative to the data section */
    uint64_t nbytes;
    const uint8_t *data;   /* borrowed, valid until gguf_close */
} gguf_tensor;

/* Read and validate PATH. VL_ENOTFOUND/VL_EIO for the file, VL_EFORMAT/VL_ETRUNC/VL_EDTYPE for
 * its contents. *out is closed with gguf_close. gguf_parse does the same on a buffer (copied);
 * label names it in errors. */
int gguf_open(gguf_file **out, const char *path, vl_err *err);
int gguf_parse(gguf_file **out, const uint8_t *buf, size_t n, const char *label, vl_err *err);

uint32_t gguf_version(const gguf_file *f);
uint32_t gguf_alignment(const gguf_file *f);
int64_t gguf_n_kv(const gguf_file *f);
int64_t gguf_n_tensors(const gguf_file *f);

/* Index of key or -1; its key string, value type and (arrays) element type and count. */
int64_t gguf_find_kv(const gguf_file *f, const char *key);
const char *gguf_kv_key(const gguf_file *f, int64_t i);
int gguf_kv_type(const gguf_file *f, int64_t i);
int gguf_kv_arr_type(const gguf_file *f, int64_t i);
uint64_t gguf_kv_arr_n(const gguf_file *f, int64_t i);

/* Typed getters by key: VL_ENOTFOUND when absent, VL_EDTYPE when of another type (the message
 * names both). get_u64 accepts u8/u16/u32/u64 and non-negative i*; get_f64 accepts f32/f64.
 * Strings are borrowed until gguf_close. */
int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *v, vl_err *err);
int gguf_get_f64(const gguf_file *f, const char *key, double *v, vl_err *err);
int gguf_get_str(const gguf_file *f, const char *key, const char **v, vl_err *err);
/* Element j of a string array. */
int gguf_get_arr_str(const gguf_file *f, const char *key, uint64_t j, const char **v, vl_err *err);

/* Tensor i (0 ≤ i < n_tensors), or by name (NULL if absent). Borrowed. */
const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t i);
const gguf_tensor *gguf_tensor_find(const gguf_file *f, const char *name);

void gguf_close(gguf_file *f); /* NULL ok */

/* ---------------------------------------------------------------- writer */

typedef struct gguf_writer gguf_writer;

int gguf_writer_new(gguf_writer **out, vl_err *err);
/* KVs in call order; a repeated key is VL_EARG. */
int gguf_w_str(gguf_writer *w, const char *key, const char *v, vl_err *err);
int gguf_w_u32(gguf_writer *w, const char *key, uint32_t v, vl_err *err);
int gguf_w_f32(gguf_writer *w, const char *key, float v, vl_err *err);
int gguf_w_str_arr(gguf_writer *w, const char *key, const char *const *v, size_t n, vl_err *err);
/* A tensor of ggml type id with n_dims dims ne[] and nbytes of data (copied; nbytes must match
 * the type and shape: VL_ESHAPE). Tensors are written in call order; names must be unique. */
int gguf_w_tensor(gguf_writer *w, const char *name, int ggml_type, int n_dims, const int64_t *ne,
                  const void *data, size_t nbytes, vl_err *err);
/* Serialise into a vl_malloc'd buffer (*buf, *n), or write PATH atomically. */
int gguf_w_bytes(const gguf_writer *w, uint8_t **buf, size_t *n, vl_err *err);
int gguf_w_write(const gguf_writer *w, const char *path, vl_err *err);
void gguf_writer_free(gguf_writer *w); /* NULL ok */

#endif
