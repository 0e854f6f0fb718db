/* analysis/mweights.h — a model's float32 weights one stage at a time.
 *
 * The weights stay in their stored dtype in the mapped safetensors files (analysis/model.h);
 * this is the one place the forward turns them into float32. A *stage* is a decoder layer
 * (0..L−1) or the head (MW_HEAD: final norm, LM head — the embedding when tied —, deepseek_v4's
 * hyper head). mw_stage gives a binding whose slots of that stage hold float32 data: the
 * caller's binding's own pointer where it has one (a fake-quant tensor), else a conversion of
 * the stored tensor that the cache owns until the next mw_stage or mw_release. Slots of other
 * stages are NULL in the returned binding. Peak memory: one stage's float32 weights per cache.
 *
 * The embedding is not a stage: its rows are read one token at a time (model_embed_rows). Nor
 * is the LM head's matrix (lm_head, or the embedding when tied): mw_head_logits multiplies by
 * it in tiles of vocabulary rows, so no float32 copy of the whole vocabulary is made.
 *
 * A cache serves one caller at a time (each forward state owns one); many caches may share a
 * model. */
#ifndef VL_MWEIGHTS_H
#define VL_MWEIGHTS_H

#include "../core/err.h"
#include "model.h"

typedef struct mw_cache mw_cache;

enum { MW_HEAD = -1 };

int mw_new(mw_cache **out, const model *m, vl_err *err);

/* Make STAGE (0..L−1 or MW_HEAD) of binding W readable through *view (owned by the cache,
 * valid until the next mw_stage/mw_release/mw_free). When the cache already holds that stage
 * of W with every slot unchanged (the same pointers, NULL where it converted) it is reused:
 * a layer-major pass converts each layer once, not once per batch. Otherwise the stage held
 * is released first. Errors as model_tensor_load (the stage is then released). */
int mw_stage(mw_cache *c, const model_weights *w, int stage, const model_weights **view,
             vl_err *err);

/* A provider of float32 tensors other than the stored ones (alloc/qbind.h qb_provide: a lazy
 * fake-quant binding): for tensor i whose binding slot is NULL it either sets *data = *owned
 * to a new array the cache frees after the stage, or leaves both NULL (the stored tensor is
 * converted). Setting one (or NULL) releases what the cache holds. */
typedef int (*mw_provider)(void *user, size_t i, const float **data, float **owned,
                           vl_err *err);
void mw_set_provider(mw_cache *c, mw_provider fn, void *user);

/* Large layers (analysis/fwd.c): a layer whose float32 tensors exceed the cache's budget is
 * converted in parts instead — its attention (MW_PART_ATTN: attention tensors and norms), then
 * its MLP (MW_PART_MLP: router, shared expert or dense MLP, norms) — and its routed experts one
 * at a time (mw_expert), so memory holds the larger part plus one expert, not the layer (a
 * DeepSeek-V3 MoE layer is 45 GB as float32, one expert 176 MB). A layer within the budget is
 * converted whole and kept across batches as mw_stage does. The same values either way. */
enum { MW_PART_ATTN = 1, MW_PART_MLP = 2 };
#define MW_LAYER_BUDGET_DEFAULT ((size_t)256 << 20)
void mw_set_budget(mw_cache *c, size_t bytes); /* releases what is held */

/* PART (MW_PART_ATTN or MW_PART_MLP) of LAYER of binding W through *view (the whole layer
 * when within the budget); valid until the next call on the cache. Errors as mw_stage. */
int mw_part(mw_cache *c, const model_weights *w, int layer, int part,
            const model_weights **view, vl_err *err);

/* Whether LAYER's routed experts are all held now (the layer converted whole by mw_part:
 * within the budget), so that mw_expert of each returns at once and their views stay valid
 * together. */
int mw_experts_held(const mw_cache *c, int layer);

/* Routed expert E of LAYER (after mw_part of that layer's MLP): *ffn points at its gate, up
 * and down as float32, valid until the next mw_expert/mw_part/mw_stage/mw_release. */
int mw_expert(mw_cache *c, const model_weights *w, int layer, int e, const model_ffn **ffn,
              vl_err *err);

/* logits [N × V] (row stride V) = x [N × D] · Hᵀ for the head matrix H of binding W
 * (model_head_index): tiles of MW_HEAD_TILE_BYTES of float32 vocabulary rows (a multiple of
 * 128 rows, FP8's block), each converted (model_tensor_rows, or W's own data) and multiplied
 * in turn into its columns of the logits. *flops (may be NULL) grows by 2·N·D·V. */
#define MW_HEAD_TILE_BYTES ((size_t)4 << 20)
int mw_head_logits(mw_cache *c, const model_weights *w, const float *x, int N, float *logits,
                   double *flops, vl_err *err);

/* The whole model in float32, for passes that run the same weights hundreds of times (the
 * sensitivity scan's perturbed suffix forwards): *out is a clone of model_base whose every
 * slot points into *arena, one allocation holding all tensors converted once. mw_stage and
 * mw_head_logits read a binding's own data, so a forward on *out converts nothing, and gives
 * the same bits as on model_base (the same float32 values, the head in the same tiles). The
 * caller frees both (model_weights_free, vl_free) and decides whether the copy fits:
 * mw_model_bytes is its size. Errors as model_tensor_load (nothing is returned then). */
size_t mw_model_bytes(const model *m);
int mw_resident(const model *m, model_weights **out, float **arena, vl_err *err);

/* Free the stage's float32 conversions now (the view's slots become NULL). */
void mw_release(mw_cache *c);

void mw_free(mw_cache *c); /* NULL is a no-op */

#endif
