/* analysis/mweights.c — one stage of float32 weights, converted on demand and freed after.
 *
 * The stage's tensors are found by scanning the model's tensor list for their layer (the
 * list is in canonical order but deepseek_v4's globals sit at both ends, so no range is
 * assumed); a scan is O(tensors), negligible beside the stage's conversions.
 */
#include "mweights.h"

#include "../core/kern.h"

#include <string.h>

struct mw_cache {
    const model *m;
    model_weights *view; /* NULL everywhere but the current stage's slots */
    size_t *held;        /* tensor indices whose view slot is set */
    float **own;         /* [n_held] a provider's arrays, freed with the stage (else NULL) */
    unsigned char *read; /* [n_held] 1: converted into the arena from the mapping (own[k] or
                          * read[k]: the slot is the cache's, not the caller's) */
    size_t *dropix;      /* scratch for drop_read */
    size_t n_held;
    float *arena;        /* the stage's stored tensors converted, packed; kept across stages */
    size_t arena_cap;    /* floats: grows to the largest stage, so after the first pass over
                          * the layers no stage allocates (and page-faults) memory anew */
    int stage, part;     /* the stage (and part, 0: whole) held (valid when held_ok) */
    int held_ok;
    size_t ex_held[3];   /* the routed expert held by mw_expert (its slots in view) */
    float *ex_own[3];
    int n_ex;
    float *ex_arena;     /* the expert's stored tensors converted; kept like arena */
    size_t ex_cap;
    size_t budget;       /* a layer at most this large (float32 bytes) is converted whole */
    int64_t *layer_bytes; /* [L] float32 bytes of each layer's tensors */
    float *tile;         /* [tile_rows × D] the head's tile (mw_head_logits), kept */
    mw_provider prov;    /* NULL: none */
    void *prov_user;
};

int mw_new(mw_cache **out, const model *m, vl_err *err)
{
    *out = NULL;
    size_t nt = model_tensor_count(m);
    int L = model_config(m)->n_layers;
    mw_cache *c = vl_calloc(1, sizeof *c);
    int rc = c ? model_weights_clone(&c->view, m, model_base(m), err)
               : vl_errf(err, VL_ENOMEM, "%s: out of memory", model_dir(m));
    if (!rc && (!(c->held = vl_malloc((nt + 1) * sizeof *c->held)) ||
                !(c->own = vl_calloc(nt + 1, sizeof *c->own)) ||
                !(c->read = vl_calloc(nt + 1, 1)) ||
                !(c->dropix = vl_malloc((nt + 1) * sizeof *c->dropix)) ||
                !(c->layer_bytes = vl_calloc((size_t)L + 1, sizeof *c->layer_bytes))))
        rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", model_dir(m));
    if (rc) {
        mw_free(c);
        return rc;
    }
    c->m = m;
    c->budget = MW_LAYER_BUDGET_DEFAULT;
    for (size_t i = 0; i < nt; i++) {
        const model_tensor *t = model_tensor_at(m, i);
        if (t->layer >= 0 && t->layer < L)
            c->layer_bytes[t->layer] += t->numel * (int64_t)sizeof(float);
    }
    *out = c;
    return 0;
}

void mw_set_provider(mw_cache *c, mw_provider fn, void *user)
{
    mw_release(c);
    c->prov = fn;
    c->prov_user = user;
}

/* Floats from one converted tensor to the next in an arena: 16 keeps each 64-byte aligned
 * relative to the arena. */
static size_t arena_span(int64_t numel)
{
    return ((size_t)numel + 15) / 16 * 16;
}

/* Grow *ARENA to at least N floats (its contents are not kept: nothing in it is in use). */
static int arena_reserve(float **arena, size_t *cap, size_t n, const model *m, vl_err *err)
{
    if (n <= *cap)
        return 0;
    vl_free(*arena);
    *cap = 0;
    if (!(*arena = vl_malloc(n * sizeof **arena)))
        return vl_errf(err, VL_ENOMEM, "%s: out of memory for %zu MB of float32 weights",
                       model_dir(m), n * sizeof **arena >> 20);
    *cap = n;
    return 0;
}

/* Tensor i of binding W as float32: W's data, the provider's (*own: what the cache frees),
 * or the stored tensor converted into DST (arena_span(numel) floats; *used 1 then), or into
 * a new array (*own) when DST is NULL. */
static int tensor_f32(mw_cache *c, const model_weights *w, size_t i, float *dst,
                      const float **d, float **own, int *used, vl_err *err)
{
    *own = NULL;
    *used = 0;
    const float *mine = *model_weights_slot(c->m, (model_weights *)w, i);
    if (mine) {
        *d = mine;
        return 0;
    }
    if (c->prov) {
        int rc = c->prov(c->prov_user, i, d, own, err);
        if (rc || *own)
            return rc;
    }
    if (!dst)
        return model_tensor_f32(c->m, w, i, d, own, err);
    *d = dst;
    *used = 1;
    return model_tensor_load_kept(c->m, i, dst, err); /* dropped with its stage (drop_read) */
}

/* Drop the mapped pages of the stored tensors just converted into an arena, IX[0..n) with
 * USED[k] set, in one model_tensor_drop (the stage's tensors are neighbours in the file). */
static void drop_read(mw_cache *c, size_t *ix, const unsigned char *used, size_t n)
{
    size_t k2 = 0;
    for (size_t k = 0; k < n; k++)
        if (used[k])
            c->dropix[k2++] = ix[k];
    model_tensor_drop(c->m, c->dropix, k2);
}

void mw_set_budget(mw_cache *c, size_t bytes)
{
    c->budget = bytes;
    mw_release(c);
}

static int is_routed_expert(const model_tensor *t)
{
    return t->cls == MODEL_C_EXPERT && t->expert >= 0;
}

/* Whether tensor I belongs to STAGE's PART (0: the whole stage): its layer, or for the head
 * the tensors outside layers except the embedding (read row by row) and the LM head's matrix
 * (read in tiles). Parts: attention (attention tensors and the norms) and the MLP (the rest
 * and the norms) without routed experts (mw_expert). */
static int in_stage(const model *m, size_t i, int stage, int part)
{
    const model_tensor *t = model_tensor_at(m, i);
    if (stage == MW_HEAD)
        return t->layer < 0 && t->cls != MODEL_C_EMBED && i != model_head_index(m);
    if (t->layer != stage)
        return 0;
    if (part == MW_PART_ATTN)
        return t->cls == MODEL_C_ATTN || t->cls == MODEL_C_NORM;
    if (part == MW_PART_MLP)
        return t->cls != MODEL_C_ATTN && !is_routed_expert(t);
    return 1;
}

static void release_expert(mw_cache *c)
{
    for (int k = 0; k < c->n_ex; k++) {
        vl_free(c->ex_own[k]);
        c->ex_own[k] = NULL;
        *model_weights_slot(c->m, c->view, c->ex_held[k]) = NULL;
    }
    c->n_ex = 0;
}

/* Forget the stage held; the arenas stay for the next one. */
static void drop_stage(mw_cache *c)
{
    release_expert(c);
    for (size_t k = 0; k < c->n_held; k++) {
        vl_free(c->own[k]);
        c->own[k] = NULL;
        c->read[k] = 0;
        *model_weights_slot(c->m, c->view, c->held[k]) = NULL;
    }
    c->n_held = 0;
    c->held_ok = 0;
}

void mw_release(mw_cache *c)
{
    drop_stage(c);
    vl_free(c->arena);
    vl_free(c->ex_arena);
    c->arena = c->ex_arena = NULL;
    c->arena_cap = c->ex_cap = 0;
}

/* Whether the stage held is STAGE/PART of binding W as it is now: each slot still W's
 * pointer, or NULL in W where the cache converted the stored tensor (the stored data never
 * change). */
static int still_valid(mw_cache *c, const model_weights *w, int stage, int part)
{
    if (!c->held_ok || c->stage != stage || c->part != part)
        return 0;
    for (size_t k = 0; k < c->n_held; k++) {
        const float *mine = *model_weights_slot(c->m, c->view, c->held[k]);
        const float *theirs = *model_weights_slot(c->m, (model_weights *)w, c->held[k]);
        if (theirs != (c->own[k] || c->read[k] ? NULL : mine))
            return 0;
    }
    return 1;
}

/* Sort tensor indices ix[0..n) by decreasing size, then increasing index (insertion sort: a
 * stage has tens of tensors, a few hundred with its experts). */
static void by_size(size_t *ix, size_t n, const model *m)
{
    for (size_t a = 1; a < n; a++) {
        size_t v = ix[a], b = a;
        int64_t nv = model_tensor_at(m, v)->numel;
        while (b > 0 && (model_tensor_at(m, ix[b - 1])->numel < nv ||
                         (model_tensor_at(m, ix[b - 1])->numel == nv && ix[b - 1] > v))) {
            ix[b] = ix[b - 1];
            b--;
        }
        ix[b] = v;
    }
}

static int convert(mw_cache *c, const model_weights *w, int stage, int part,
                   const model_weights **view, vl_err *err)
{
    if (still_valid(c, w, stage, part)) { /* a layer-major pass: the next batch, same layer */
        release_expert(c);
        *view = c->view;
        return 0;
    }
    drop_stage(c);
    const model *m = c->m;
    size_t n = 0, need = 0, at = 0;
    for (size_t i = 0; i < model_tensor_count(m); i++)
        if (in_stage(m, i, stage, part)) {
            c->held[n++] = i;
            need += arena_span(model_tensor_at(m, i)->numel);
        }
    /* with a provider (fake-quant) most slots are its arrays: an arena for the whole stage
     * would add a stage's worth of unused memory, so conversions get arrays of their own */
    int rc = c->prov ? 0 : arena_reserve(&c->arena, &c->arena_cap, need, m, err);
    /* largest first: a provider (fake-quant) holds a tensor's reference and its result at
     * once, so the peak is the largest tensor twice plus the ones before it — smallest when
     * those are the small ones */
    by_size(c->held, n, m);
    for (size_t k = 0; k < n && !rc; k++) {
        size_t i = c->held[k];
        const float *d;
        float *own;
        int used;
        rc = tensor_f32(c, w, i, c->prov ? NULL : c->arena + at, &d, &own, &used, err);
        if (rc)
            break;
        at += used ? arena_span(model_tensor_at(m, i)->numel) : 0;
        c->read[c->n_held] = (unsigned char)used;
        c->own[c->n_held++] = own;
        *model_weights_slot(m, c->view, i) = d;
    }
    drop_read(c, c->held, c->read, c->n_held);
    if (rc)
        drop_stage(c);
    c->stage = stage;
    c->part = part;
    c->held_ok = !rc;
    *view = rc ? NULL : c->view;
    return rc;
}

int mw_stage(mw_cache *c, const model_weights *w, int stage, const model_weights **view,
             vl_err *err)
{
    return convert(c, w, stage, 0, view, err);
}

/* A layer larger than the budget goes in parts, its routed experts one at a time. */
static int split(const mw_cache *c, int layer)
{
    return layer >= 0 && c->layer_bytes[layer] > (int64_t)c->budget;
}

int mw_part(mw_cache *c, const model_weights *w, int layer, int part,
            const model_weights **view, vl_err *err)
{
    return convert(c, w, layer, split(c, layer) ? part : 0, view, err);
}

int mw_experts_held(const mw_cache *c, int layer)
{
    return c->held_ok && c->stage == layer && c->part == 0;
}

int mw_expert(mw_cache *c, const model_weights *w, int layer, int e, const model_ffn **ffn,
              vl_err *err)
{
    *ffn = &c->view->layers[layer].experts[e];
    if (mw_experts_held(c, layer))
        return 0; /* converted with its layer */
    release_expert(c);
    const model *m = c->m;
    size_t need = 0, at = 0;
    for (size_t i = 0; i < model_tensor_count(m); i++) {
        const model_tensor *t = model_tensor_at(m, i);
        if (t->layer == layer && is_routed_expert(t) && t->expert == e)
            need += arena_span(t->numel);
    }
    unsigned char ex_read[3] = {0, 0, 0};
    int rc = c->prov ? 0 : arena_reserve(&c->ex_arena, &c->ex_cap, need, m, err);
    for (size_t i = 0; i < model_tensor_count(m) && !rc && c->n_ex < 3; i++) {
        const model_tensor *t = model_tensor_at(m, i);
        if (t->layer != layer || !is_routed_expert(t) || t->expert != e)
            continue;
        const float *d;
        float *own;
        int used;
        if ((rc = tensor_f32(c, w, i, c->prov ? NULL : c->ex_arena + at, &d, &own, &used,
                             err)))
            break;
        at += used ? arena_span(t->numel) : 0;
        ex_read[c->n_ex] = (unsigned char)used;
        c->ex_held[c->n_ex] = i;
        c->ex_own[c->n_ex++] = own;
        *model_weights_slot(m, c->view, i) = d;
    }
    drop_read(c, c->ex_held, ex_read, (size_t)c->n_ex);
    if (rc)
        release_expert(c);
    return rc;
}

int mw_head_logits(mw_cache *c, const model_weights *w, const float *x, int N, float *logits,
                   double *flops, vl_err *err)
{
    const model *m = c->m;
    size_t hi = model_head_index(m);
    const model_tensor *t = model_tensor_at(m, hi);
    int V = t->rows, D = t->cols;
    int64_t tr = (int64_t)(MW_HEAD_TILE_BYTES / ((size_t)D * sizeof(float))) / 128 * 128;
    if (tr < 128)
        tr = 128;
    if (tr > V)
        tr = V;
    const float *own = *model_weights_slot(m, (model_weights *)w, hi);
    if (!own && !c->tile && !(c->tile = vl_malloc((size_t)tr * D * sizeof *c->tile)))
        return vl_errf(err, VL_ENOMEM, "%s: out of memory for the head's tile", model_dir(m));
    for (int64_t v0 = 0; v0 < V; v0 += tr) {
        int n = (int)(V - v0 < tr ? V - v0 : tr);
        const float *h = own ? own + (size_t)v0 * D : c->tile;
        int rc = own ? 0 : model_tensor_rows(m, w, hi, v0, n, c->tile, err);
        if (rc)
            return rc;
        kern_matmul_st(logits + v0, V, x, D, h, D, N, D, n, 1.0f, 0);      /* [N × n] */
    }
    if (flops)
        *flops += 2.0 * N * D * V;
    return 0;
}

void mw_free(mw_cache *c)
{
    if (!c)
        return;
    vl_free(c->tile);
    vl_free(c->layer_bytes);
    if (c->m)
        mw_release(c);
    model_weights_free(c->view);
    vl_free(c->held);
    vl_free(c->own);
    vl_free(c->read);
    vl_free(c->dropix);
    vl_free(c);
}

/* ---------------------------------------------------------------- the whole model */

size_t mw_model_bytes(const model *m)
{
    size_t n = 0;
    for (size_t i = 0; i < model_tensor_count(m); i++)
        n += arena_span(model_tensor_at(m, i)->numel);
    return n * sizeof(float);
}

int mw_resident(const model *m, model_weights **out, float **arena, vl_err *err)
{
    *out = NULL;
    *arena = NULL;
    size_t nt = model_tensor_count(m), off = 0, done = 0;
    float *a = vl_malloc(mw_model_bytes(m) + 1);
    size_t *ix = vl_malloc((nt + 1) * sizeof *ix);
    model_weights *w = NULL;
    int rc = a && ix ? model_weights_clone(&w, m, model_base(m), err)
                     : vl_errf(err, VL_ENOMEM, "%s: out of memory for %zu MB of float32 weights",
                               model_dir(m), mw_model_bytes(m) >> 20);
    for (size_t i = 0; !rc && i < nt; i++) {
        ix[done++] = i; /* its pages are read now: dropped below, failed or not */
        rc = model_tensor_load_kept(m, i, a + off, err);
        *model_weights_slot(m, w, i) = a + off;
        off += arena_span(model_tensor_at(m, i)->numel);
    }
    if (ix)
        model_tensor_drop(m, ix, done); /* the float32 copy is what is kept */
    vl_free(ix);
    if (rc) {
        model_weights_free(w);
        vl_free(a);
        return rc;
    }
    *out = w;
    *arena = a;
    return 0;
}
