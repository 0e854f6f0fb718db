/* analysis/mweights.c — one stage of float32 weights, converted on demand and freed after.
 *
 * The stage's tensors are found by scanning the model's tensor list for their layer (the
 * list is in canonical order but deepseek_v4's globals sit at both ends, so no range is
 * assumed); a scan is O(tensors), negligible beside the stage's conversions.
 */
#include "mweights.h"

#include <string.h>

struct mw_cache {
    const model *m;
    model_weights *view; /* NULL everywhere but the current stage's slots */
    size_t *held;        /* tensor indices whose view slot is set */
    float **own;         /* [n_held] conversions owned (NULL: borrowed from the caller) */
    size_t n_held;
    int stage;           /* the stage held (valid when held_ok) */
    int held_ok;
};

int mw_new(mw_cache **out, const model *m, vl_err *err)
{
    *out = NULL;
    size_t nt = model_tensor_count(m);
    mw_cache *c = vl_calloc(1, sizeof *c);
    int rc = c ? model_weights_clone(&c->view, m, model_base(m), err)
               : vl_errf(err, VL_ENOMEM, "%s: out of memory", model_dir(m));
    if (!rc && (!(c->held = vl_malloc((nt + 1) * sizeof *c->held)) ||
                !(c->own = vl_calloc(nt + 1, sizeof *c->own))))
        rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", model_dir(m));
    if (rc) {
        mw_free(c);
        return rc;
    }
    c->m = m;
    *out = c;
    return 0;
}

/* Whether tensor T belongs to STAGE: its layer, or for the head the tensors outside layers
 * except an untied model's embedding (read row by row, never whole). */
static int in_stage(const model *m, const model_tensor *t, int stage)
{
    if (stage != MW_HEAD)
        return t->layer == stage;
    return t->layer < 0 && !(t->cls == MODEL_C_EMBED && !model_config(m)->tie_embeddings);
}

void mw_release(mw_cache *c)
{
    for (size_t k = 0; k < c->n_held; k++) {
        vl_free(c->own[k]);
        c->own[k] = NULL;
        *model_weights_slot(c->m, c->view, c->held[k]) = NULL;
    }
    c->n_held = 0;
    c->held_ok = 0;
}

/* Whether the stage held is STAGE of binding W as it is now: each slot still W's pointer, or
 * NULL in W where the cache converted the stored tensor (the stored data never change). */
static int still_valid(mw_cache *c, const model_weights *w, int stage)
{
    if (!c->held_ok || c->stage != stage)
        return 0;
    for (size_t k = 0; k < c->n_held; k++) {
        const float *mine = *model_weights_slot(c->m, c->view, c->held[k]);
        const float *theirs = *model_weights_slot(c->m, (model_weights *)w, c->held[k]);
        if (theirs != (c->own[k] ? NULL : mine))
            return 0;
    }
    return 1;
}

int mw_stage(mw_cache *c, const model_weights *w, int stage, const model_weights **view,
             vl_err *err)
{
    if (still_valid(c, w, stage)) { /* a layer-major pass: the next batch, same layer */
        *view = c->view;
        return 0;
    }
    mw_release(c);
    const model *m = c->m;
    int rc = 0;
    for (size_t i = 0; i < model_tensor_count(m) && !rc; i++) {
        if (!in_stage(m, model_tensor_at(m, i), stage))
            continue;
        const float *d;
        float *own;
        rc = model_tensor_f32(m, w, i, &d, &own, err);
        if (rc)
            break;
        c->held[c->n_held] = i;
        c->own[c->n_held++] = own;
        *model_weights_slot(m, c->view, i) = d;
    }
    if (rc)
        mw_release(c);
    c->stage = stage;
    c->held_ok = !rc;
    *view = rc ? NULL : c->view;
    return rc;
}

void mw_free(mw_cache *c)
{
    if (!c)
        return;
    if (c->m)
        mw_release(c);
    model_weights_free(c->view);
    vl_free(c->held);
    vl_free(c->own);
    vl_free(c);
}
