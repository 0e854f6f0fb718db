/* alloc/qbind.h — apply a bit allocation: a weights binding with every listed tensor
 * fake-quantized (quantize, dequantize to float32) under its format, for the same forward.
 *
 * An allocation (qb_alloc) is an ordered list of items, each an item name and a format
 * (alloc/qfmt.h). An item names one Hugging Face tensor, or several through the glob
 * characters '*' and '?' (fnmatch, e.g. "model.layers.3.mlp.experts.*.down_proj.weight" for a
 * group item of the solver's group granularity). Every item must match at least one tensor of
 * the model and every tensor at most one item; tensors no item lists stay full precision
 * (the model's float32 weights, pointer-identical to model_base). Only matrices (rows ≥ 2 and
 * cols ≥ 2) can be quantized; an item naming a vector (norm, bias, the 1 × D shared-expert gate)
 * is an error.
 *
 * qb_bind clones model_base (model_weights_clone) and points each listed tensor's slot
 * (model_weights_slot) at a buffer owned by the binding that holds fq_tensor's output. With
 * statistics (a stat_acc, analysis/stats.h: e.g. stat_read of "/stats/<set>" of a stats.h5)
 * every tensor gets the importance E[x²] of its input and, when stored, the input's XᵀX (per
 * expert for routed experts); without statistics importance is uniform and there is no H, so
 * RTN formats run plain and a GPTQ format is an error naming the tensor. The Hadamard signs of
 * a tensor come from rng_child_seed(params.fq.seed, tensor name): deterministic and different
 * per tensor. The same model, allocation, statistics and params give bit-identical weights.
 *
 * Plain-text allocation files (qb_alloc_read_text): one item per line, `ITEM FORMAT`, further
 * blank-separated fields ignored (so the solver's per-item table lines `item option bpw dist`
 * can be read when the options are format names); '#' starts a comment; blank lines skipped.
 *
 * Thread-safety: a qb_binding is read-only after qb_bind and may be shared by forward states.
 * It borrows the model, which must outlive it.
 */
#ifndef VL_QBIND_H
#define VL_QBIND_H

#include "../analysis/model.h"
#include "../analysis/stats.h"
#include "../core/err.h"
#include "fq.h"
#include "qfmt.h"

#include <stdint.h>

/* ---------------------------------------------------------------- allocations */

typedef struct {
    char *item; /* tensor name or glob pattern; owned */
    qfmt fmt;   /* its format */
} qb_item;

typedef struct {
    int n, cap;
    qb_item *v; /* [n], owned */
} qb_alloc;

void qb_alloc_init(qb_alloc *a);   /* empty */
void qb_alloc_deinit(qb_alloc *a); /* frees everything, leaves a empty; NULL ok */

/* Append item → format (format by canonical name, e.g. "rtn-b2-g64-asym"). Errors: VL_ECONFIG
 * for a bad format name ("item \"x\": ..."), VL_EARG for an empty item, VL_ENOMEM. */
int qb_alloc_add(qb_alloc *a, const char *item, const char *format, vl_err *err);

/* Whether T is a body matrix a bit allocation spends bits on (attention, routed experts,
 * shared experts, dense MLP; rows, cols ≥ 2), and whether it is the token embedding or the LM
 * head (rows, cols ≥ 2). */
int qb_is_body(const model_tensor *t);
int qb_is_outer(const model_tensor *t);

/* Every quantizable matrix of the model (attention, routed experts, shared experts, dense MLP;
 * rows, cols ≥ 2 — not the router, norms, biases, embeddings) in format `format`. */
int qb_alloc_uniform(qb_alloc *a, const model *m, const char *format, vl_err *err);

/* The token embedding and, untied, the LM head in format `format` (a tied head is the
 * embedding: quantizing that quantizes both, as llama.cpp's token_embd does). */
int qb_alloc_outer(qb_alloc *a, const model *m, const char *format, vl_err *err);

/* Append the items of a plain-text allocation file (format above). Errors "FILE:LINE: ...". */
int qb_alloc_read_text(qb_alloc *a, const char *path, vl_err *err);
/* The same for text already in memory (NUL-terminated); LABEL names it in errors
 * ("LABEL:LINE: ..."), e.g. "alloc.h5:/alloc/en-2.5". */
int qb_alloc_parse_text(qb_alloc *a, const char *text, const char *label, vl_err *err);

/* Check allocation A against model M without quantizing anything: every item matches a
 * tensor, no tensor is matched twice, no item names a vector, and (when HAVE_STATS is 0) no
 * item is GPTQ. The errors qb_bind would give for these, cheaply and up front. */
int qb_alloc_check(const model *m, const qb_alloc *a, int have_stats, const char *name,
                   vl_err *err);

/* ---------------------------------------------------------------- the binding */

/* Tiling (tile_bytes): a tensor stored in the checkpoint (a mapped BF16/FP8/F32 file, not a
 * float32 binding slot) is converted and fake-quantized in tiles of whole rows, about
 * tile_bytes of float32 each, instead of through one float32 copy of the whole tensor: the
 * binding's memory is then its output plus one tile (issue 15: a 7168 × 16384 o_proj is 470 MB
 * as float32). RTN and ggml formats (with or without the Hadamard rotation) are row-local —
 * each row's groups, blocks, clip search and rotation read only that row and the per-column
 * statistics — so the tiled result is bit-identical to the whole-tensor one. GPTQ always runs
 * on the whole tensor (its Hessian is cols × cols anyway, and gptq_info is per tensor). A tile
 * smaller than one row is clamped to one row (a row is the quantizers' unit); for an FP8
 * tensor the tile is rounded to whole weight_block_size row blocks (at least one block), since
 * a scale block cannot be cut. 0 = no tiling. */
typedef struct {
    fq_params fq;      /* quantizer options; fq.seed seeds the Hadamard signs (per tensor, above) */
    size_t tile_bytes; /* float32 bytes of a tile of rows; 0 = whole tensors */
} qb_params;

/* fq_defaults(), min_tokens 1, tile_bytes QB_TILE_BYTES. */
qb_params qb_defaults(void);
#define QB_TILE_BYTES ((size_t)16 << 20)

/* Rows per tile of tensor i of M under TILE_BYTES (the rule above; rows of the tensor when
 * tile_bytes is 0 or covers it). Pure; exposed for tests. */
int qb_tile_rows(const model *m, size_t i, size_t tile_bytes);

typedef struct {
    int n_tensors;      /* tensors fake-quantized */
    int64_t n_weights;  /* their weights */
    int64_t bits;       /* their exact stored bits (qfmt_bits) */
    double bpw;         /* bits / n_weights (0 when nothing is listed) */
    int n_gptq;         /* tensors GPTQ actually ran on */
    int n_few;          /* tensors where the few-token policy applied */
} qb_info;

typedef struct qb_binding qb_binding;

/* Fake-quantize every tensor of allocation A into a new binding of model M. STATS may be NULL
 * (see above); P NULL = qb_defaults(). NAME labels errors ("allocation NAME: ..."). Errors:
 * VL_ENOTFOUND for an item matching no tensor, VL_EARG for a tensor matched twice, a vector
 * item, or GPTQ without XᵀX; VL_ESHAPE when the statistics do not fit the model; quantizer
 * errors as fq_tensor. *out owned by the caller (qb_free). */
int qb_bind(qb_binding **out, const model *m, const qb_alloc *a, const stat_acc *stats,
            const qb_params *p, const char *name, vl_err *err);

/* The same binding built lazily, for a layer-major evaluation (analysis/eval.h): only the
 * tensors outside layers (embedding, head) are quantized now; a layer's listed tensors are
 * quantized when the forward converts that layer, through qb_provide (fwd_set_provider), into
 * buffers the forward owns and frees after the layer — memory holds one layer's quantized
 * weights, not the model's. Each tensor's values are qb_bind's bit for bit (quantization is
 * per tensor and deterministic). qb_get_info's n_tensors, n_weights, bits and bpw are known at
 * once; n_gptq and n_few count the tensors quantized so far. Not thread-safe (one forward). */
int qb_bind_lazy(qb_binding **out, const model *m, const qb_alloc *a, const stat_acc *stats,
                 const qb_params *p, const char *name, vl_err *err);

/* analysis/mweights.h's provider over a binding (USER = the qb_binding): tensor i of a lazy
 * binding that the allocation lists and bind time did not quantize → *data = *owned = a new
 * fake-quantized float32 array (the caller frees it); any other → *data = *owned = NULL (the
 * caller reads the binding or the stored tensor). Errors as qb_bind's quantizer errors. */
int qb_provide(void *user, size_t i, const float **data, float **owned, vl_err *err);

/* The binding for fwd_run; valid until qb_free. */
const model_weights *qb_weights(const qb_binding *b);
/* What was quantized. */
qb_info qb_get_info(const qb_binding *b);
/* Format of tensor i (model_tensor_at order), or NULL when it is full precision. */
const qfmt *qb_tensor_format(const qb_binding *b, size_t i);

void qb_free(qb_binding *b); /* NULL is a no-op */

/* The statistics input that feeds tensor T (its layer, slot and expert per stat_slot_weights);
 * 0 and the triple, or VL_ENOTFOUND when no input matches (embeddings, norms, biases). Pure. */
int qb_tensor_input(const model_tensor *t, int *layer, stat_slot *slot, int *expert);

#endif
