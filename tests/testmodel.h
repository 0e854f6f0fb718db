/* tests/testmodel.h — model-side helpers the forward tests share (header-only, test use only):
 * copying a tap event's rows, and rewriting a safetensors file with one tensor dropped or
 * reshaped (broken model directories for the error tests). */
#ifndef VL_TESTMODEL_H
#define VL_TESTMODEL_H

#include "../analysis/model.h"
#include "../analysis/tap.h"
#include "../io/st.h"

#include <stdlib.h>
#include <string.h>

/* Tensor i of binding W (model_base: the stored weights) as a malloc'd float32 copy the caller
 * frees; NULL on error. */
static inline float *tm_weights(const model *m, const model_weights *w, size_t i)
{
    const float *d;
    float *own;
    vl_err e;
    if (model_tensor_f32(m, w, i, &d, &own, &e))
        return NULL;
    size_t n = (size_t)model_tensor_at(m, i)->numel;
    float *c = malloc(n * sizeof *c + 1);
    if (c)
        memcpy(c, d, n * sizeof *c);
    vl_free(own);
    return c;
}

/* The event's rows × cols as a dense malloc'd copy (caller frees). */
static inline float *tm_dup_rows(const tap_event *ev)
{
    float *d = malloc(sizeof(float) * (size_t)ev->rows * ev->cols + 1);
    for (int r = 0; r < ev->rows; r++)
        memcpy(d + (size_t)r * ev->cols, ev->data + r * ev->stride, sizeof(float) * ev->cols);
    return d;
}

/* Write the tensors of SRC (a safetensors file or model directory) to the file DST, leaving
 * out tensor DROP and storing tensor RESHAPE as [1, numel] (either may be NULL). 0 on success. */
static inline int tm_rewrite(const char *src, const char *dst, const char *drop,
                             const char *reshape)
{
    st_set *set = NULL;
    vl_err e;
    if (st_set_open(&set, src, &e))
        return -1;
    size_t n = st_set_count(set), k = 0;
    const char **names = calloc(n, sizeof *names);
    st_dtype *dt = calloc(n, sizeof *dt);
    int *nd = calloc(n, sizeof *nd);
    int64_t(*sh)[ST_MAX_DIMS] = calloc(n, sizeof *sh);
    const void **data = calloc(n, sizeof *data);
    for (size_t i = 0; i < n; i++) {
        const st_tensor *t = st_set_at(set, i);
        if (drop && !strcmp(t->name, drop))
            continue;
        names[k] = t->name;
        dt[k] = t->dtype;
        nd[k] = t->ndim;
        memcpy(sh[k], t->shape, sizeof sh[k]);
        if (reshape && !strcmp(t->name, reshape)) {
            nd[k] = 2;
            sh[k][0] = 1;
            sh[k][1] = t->numel;
        }
        data[k++] = t->data;
    }
    int rc = st_write(dst, k, names, dt, nd, (const int64_t(*)[ST_MAX_DIMS])sh, data, &e);
    free(names);
    free(dt);
    free(nd);
    free(sh);
    free(data);
    st_set_close(set);
    return rc;
}

#endif
