/* tests/testmodel.h — model-side helpers the forward tests share (header-only, test use only):
 * copying a tap event's rows, checking the router's selection against the expert events, and
 * rewriting a safetensors file with one tensor dropped or
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

/* The forward's routing as its taps show it: each TAP_ROUTER_LOGITS event's selection (tap.h:
 * sel, sel_w, k) is kept until the next one, and every TAP_EXPERT_IN row is checked against it:
 * a row with weight > 0 must be a token the router chose the expert for, with the weight it
 * chose (summed over repeated choices: hash layers), a row with weight 0 (route-all) one it
 * did not choose the expert for. */
typedef struct {
    int *sel;
    float *w;
    int n, k;      /* the kept selection: n rows × k */
    long selected; /* Σ rows·k over router events */
    long hits;     /* selections met by an expert row */
    long bad;      /* malformed selections and expert rows that disagree */
} tm_route;

static inline void tm_route_event(tm_route *r, const tap_event *ev)
{
    if (ev->point == TAP_ROUTER_LOGITS) {
        size_t n = (size_t)ev->rows * (ev->k > 0 ? ev->k : 0);
        free(r->sel);
        free(r->w);
        r->sel = malloc(n * sizeof *r->sel + 1);
        r->w = malloc(n * sizeof *r->w + 1);
        r->n = ev->rows;
        r->k = ev->k;
        if (!ev->sel || !ev->sel_w || ev->k <= 0 || ev->k > ev->cols) {
            r->bad++;
            r->n = 0;
            return;
        }
        memcpy(r->sel, ev->sel, n * sizeof *r->sel);
        memcpy(r->w, ev->sel_w, n * sizeof *r->w);
        r->selected += (long)n;
        for (size_t i = 0; i < n; i++)
            r->bad += r->sel[i] < 0 || r->sel[i] >= ev->cols;
        return;
    }
    if (ev->point != TAP_EXPERT_IN)
        return;
    for (int i = 0; i < ev->rows; i++) {
        int t = ev->row_token ? ev->row_token[i] : i, m = 0;
        float w = 0.0f;
        if (t < 0 || t >= r->n) {
            r->bad++;
            continue;
        }
        for (int j = 0; j < r->k; j++)
            if (r->sel[(size_t)t * r->k + j] == ev->expert) {
                w += r->w[(size_t)t * r->k + j];
                m++;
            }
        r->hits += m;
        r->bad += ev->row_weight[i] > 0 ? m == 0 || w != ev->row_weight[i] : m != 0;
    }
}

static inline void tm_route_free(tm_route *r)
{
    free(r->sel);
    free(r->w);
    memset(r, 0, sizeof *r);
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
