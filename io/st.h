/* io/st.h — safetensors reader: one file or a sharded set, memory-mapped read-only.
 *
 * Format (https://huggingface.co/docs/safetensors): 8-byte little-endian header length N, then N
 * bytes of UTF-8 JSON {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [b, e]}, ...,
 * "__metadata__": {...}}, then the data section; offsets are relative to the data section.
 * A sharded model has model.safetensors.index.json whose "weight_map" maps names to shard files.
 *
 * Everything read from a file is validated before use: the header length fits the file, the
 * JSON is well-formed, offsets are ordered and inside the data section, e − b equals
 * numel × dtype size (overflow-checked), names are unique. Weights are checked for NaN/Inf when
 * converted. Errors name the file and the tensor.
 *
 * Tensors are views into the mapping: valid until st_set_close(). Not thread-safe to close while
 * in use; concurrent reads are fine.
 */
#ifndef VL_ST_H
#define VL_ST_H

#include "../core/err.h"

#include <stddef.h>
#include <stdint.h>

/* ST_F8_E4M3: OCP FP8 E4M3 ("e4m3fn", torch.float8_e4m3fn): 1 sign, 4 exponent (bias 7), 3
 * mantissa bits, no infinities, S.1111.111 is NaN, largest finite ±448. DeepSeek releases its
 * weights in it with one float32 scale per 128×128 block (st_fp8_dequant). */
typedef enum { ST_F32, ST_F16, ST_BF16, ST_F8_E4M3, ST_DTYPE_COUNT } st_dtype;

#define ST_MAX_DIMS 8

typedef struct {
    const char *name;           /* NUL-terminated, owned by the set */
    const char *file;           /* path of the file holding it, owned by the set */
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const void *data;           /* view into the read-only mapping; little-endian and possibly
                                   unaligned for the dtype: read through st_tensor_to_f32 or
                                   memcpy, never by casting to float * */
    size_t nbytes;
} st_tensor;

typedef struct st_set st_set;

/* Open PATH: a .safetensors file, or a directory holding model.safetensors.index.json (sharded)
 * or model.safetensors. On success *out owns the mappings; close with st_set_close. On failure
 * *out is NULL and err is one line naming the file (and tensor): VL_ETRUNC (file shorter than
 * its header says), VL_EFORMAT (bad JSON with line/column, overlaps, duplicate names),
 * VL_EDTYPE (dtype other than F32/F16/BF16/F8_E4M3), VL_ESHAPE (bad shape, size ≠ numel × dtype size),
 * VL_ENOTFOUND (missing file or shard, index names a tensor its shard lacks), VL_EIO.
 * Sharded: shard names must be plain file names beside the index, every index entry must be in
 * the shard it names, and names are unique across all shards. Tensors a shard holds beyond
 * the index are kept. Trailing bytes after the last tensor are allowed (the format does not
 * forbid them). */
int st_set_open(st_set **out, const char *path, vl_err *err);

size_t st_set_count(const st_set *s);
/* i < count. File order: shards in lexicographic file-name order (model-00001-of-N first),
 * within a file by data offset. Pointers stay valid until st_set_close. */
const st_tensor *st_set_at(const st_set *s, size_t i);
const st_tensor *st_set_find(const st_set *s, const char *name); /* NULL if absent */

/* Total bytes of tensor data in the set. */
size_t st_set_nbytes(const st_set *s);

const char *st_dtype_name(st_dtype t);  /* "F32", "F16", "BF16", "F8_E4M3" */
size_t st_dtype_size(st_dtype t);

/* NAME as spelled in a header ("BF16") → *out; VL_EDTYPE if not one of the supported four.
 * Fills no vl_err: the caller knows which file and tensor to name. */
int st_dtype_from_name(const char *name, st_dtype *out);

/* Exact widening of one element (every f16 and bf16 value is a float32, subnormals included);
 * NaN stays NaN (payload kept), ±Inf stays ±Inf. Pure; thread-safe. */
float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t h);
/* Exact too (every e4m3 value is a float32); S.1111.111 → NaN. */
float st_f8e4m3_to_f32(uint8_t b);
/* n little-endian bfloat16 at src → dst, st_bf16_to_f32 of each (io/st_conv.c, vectorised). */
void st_bf16_rows(const uint8_t *src, float *dst, size_t n);
/* 1 if every x[0..n) is finite (no NaN, no ±Inf). */
int st_all_finite(const float *x, size_t n);

/* Convert t to float32 into dst (t->numel floats, caller-owned). Fails with VL_ERANGE naming
 * the file, tensor and flat index if a value is NaN or Inf. An F8_E4M3 tensor gives its stored
 * values without any block scale (st_fp8_dequant applies them). */
int st_tensor_to_f32(const st_tensor *t, float *dst, vl_err *err);

/* st_tensor_to_f32 (same result, same errors) for any size: a tensor of more than
 * ST_LOAD_WHOLE_BYTES stored is read in chunks, each chunk's pages dropped from this process's
 * resident set after converting it (madvise MADV_DONTNEED on the read-only mapping; the pages
 * stay in the page cache and t stays readable: a later read faults them back in), so reading
 * it never holds it resident. A smaller one is converted whole and its pages left for the
 * caller to drop (st_set_drop, or st_set_drop_many once for a group of tensors: each madvise
 * costs a TLB shootdown on every core the process runs on). */
#define ST_LOAD_WHOLE_BYTES ((size_t)64 << 20)
int st_tensor_load(const st_tensor *t, float *dst, vl_err *err);

/* The same check without a destination: chunks converted on the stack, the pages of every
 * 2^22 elements read dropped (the caller drops the rest: st_set_drop). Validates a tensor at
 * open time without holding its float32 copy. */
int st_tensor_check(const st_tensor *t, vl_err *err);

/* Drop the mapped pages around t (a tensor of S) from the resident set: every page of the
 * 2 MiB-aligned address blocks t's bytes touch. A page fault maps the pages around it that the
 * page cache holds (fault-around, large folios; both stay inside the faulting address's 2 MiB
 * page-table block), so reading one tensor can map pieces of its neighbours: the blocks cover
 * them. */
void st_set_drop(const st_set *s, const st_tensor *t);
/* The same for TS[0..n) (NULL entries skipped) with one madvise per file: the span from the
 * first to the last of them in that file (a model stage's tensors are neighbours in it). */
void st_set_drop_many(const st_set *s, const st_tensor *const *ts, size_t n);

/* ---- FP8 block-scaled weights (io/st_fp8.c) ----
 * DeepSeek-V3's release layout (quantization_config {"quant_method": "fp8", "fmt": "e4m3",
 * "weight_block_size": [br, bc]}): a 2-D F8_E4M3 weight q [R × C] and its companion
 * "<name>_scale_inv" s [⌈R/br⌉ × ⌈C/bc⌉] (F32, or F16/BF16), W[r][c] = q[r][c] · s[r/br][c/bc]
 * (the name says "inverse" because the quantizer divided by it; the reader multiplies). Edge
 * blocks may be partial. Writes R·C floats to dst. Errors name the file and the tensor:
 * VL_EDTYPE (q not F8_E4M3, s not a float dtype), VL_ESHAPE (q not 2-D, s not the block grid),
 * VL_ERANGE (NaN in q, a non-finite or negative scale), VL_EARG (block size < 1). */
int st_fp8_dequant(const st_tensor *q, const st_tensor *scale_inv, int block_rows,
                   int block_cols, float *dst, vl_err *err);

/* st_fp8_dequant's checks (grid, scales finite and non-negative, no NaN code in q) with the
 * same errors, without writing the weights anywhere. */
int st_fp8_check(const st_tensor *q, const st_tensor *scale_inv, int block_rows,
                 int block_cols, vl_err *err);

/* "<weight name>_scale_inv" into buf (cap bytes): the companion name st_fp8_dequant expects.
 * VL_EARG if it does not fit. */
int st_fp8_scale_name(const char *weight, char *buf, size_t cap);

void st_set_close(st_set *s);  /* NULL is a no-op */

/* Writing (tests and fixtures): write tensors to PATH atomically (PATH.tmp, then rename).
 * names[i], dtype[i], shape[i][0..ndim[i]), data[i] (raw little-endian bytes in that dtype,
 * numel × dtype size of them; may be NULL when numel is 0). Tensors are laid out in the given
 * order, contiguously; the header is space-padded to a multiple of 8 bytes and carries
 * "__metadata__": {"format": "pt"} as Hugging Face writers do. Names must be unique and
 * non-empty: VL_EARG otherwise. On failure PATH is untouched and PATH.tmp removed. */
int st_write(const char *path, size_t n, const char *const *names, const st_dtype *dtypes,
             const int *ndims, const int64_t (*shapes)[ST_MAX_DIMS], const void *const *data,
             vl_err *err);

/* Streaming writer: the same file as st_write, with the data given piece by piece, so a tensor
 * never has to be in memory whole. st_writer_open writes the header of the N tensors (same
 * rules as st_write) to PATH.tmp; st_writer_put appends LEN bytes (they fill the tensors in the
 * given order, crossing tensor boundaries freely); st_writer_close checks that every tensor got
 * exactly its bytes and renames PATH.tmp to PATH. Any failure (including a short or long
 * stream: VL_EARG) removes PATH.tmp, and close/abort free W either way. st_writer_abort gives
 * up without renaming. */
typedef struct st_writer st_writer;
int st_writer_open(st_writer **out, const char *path, size_t n, const char *const *names,
                   const st_dtype *dtypes, const int *ndims,
                   const int64_t (*shapes)[ST_MAX_DIMS], vl_err *err);
int st_writer_put(st_writer *w, const void *p, size_t len, vl_err *err);
int st_writer_close(st_writer *w, vl_err *err);
void st_writer_abort(st_writer *w); /* NULL is a no-op */

/* Narrowing for writers: float32 → bf16 (round to nearest even; NaN stays NaN) and float32 →
 * e4m3 (round to nearest even; |x| beyond 448 saturates to ±448, NaN → S.1111.111; e4m3 has no
 * infinity). st_f8e4m3_to_f32(st_f32_to_f8e4m3(x)) is the e4m3 value nearest x. Pure. */
uint16_t st_f32_to_bf16(float x);
uint8_t st_f32_to_f8e4m3(float x);

#endif
