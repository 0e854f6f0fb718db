/* alloc/qbind.c — allocations (item → format) and the fake-quantized weights binding.
 *
 * The binding is model_base's pointers with the listed tensors' slots redirected to buffers
 * this module owns; the forward code is untouched (DESIGN: a weight binding, not a second
 * forward). Statistics come from a stat_acc: importance = Σx²/rows (E[x²], only ratios matter
 * to the quantizers) and H = XᵀX of the tensor's input, float64.
 */
#define _POSIX_C_SOURCE 200809L
#include "qbind.h"

#include "../core/rng.h"
#include "../core/vfile.h"
#include "../io/st.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

struct qb_binding {
    const model *m;
    model_weights *w;   /* the clone the forward reads */
    float **buf;        /* [n_tensors] owned quantized data, NULL = full precision (or, lazy,
                           quantized on demand) */
    qfmt *fmt;          /* [n_tensors] format of each quantized tensor */
    unsigned char *listed;  /* [n_tensors] 1: the allocation quantizes it */
    qb_info info;
    /* qb_bind_lazy: what qb_provide needs */
    int lazy;
    unsigned char *counted; /* [n_tensors] quantized once already (n_gptq / n_few counted) */
    const stat_acc *stats;
    qb_params p;
    char *name;
    double *imp, *h;        /* scratch [maxcols], [maxcols²] (h NULL without GPTQ) */
};

/* ---------------------------------------------------------------- allocations */

void qb_alloc_init(qb_alloc *a) { memset(a, 0, sizeof *a); }

void qb_alloc_deinit(qb_alloc *a)
{
    if (!a)
        return;
    for (int i = 0; i < a->n; i++)
        vl_free(a->v[i].item);
    vl_free(a->v);
    memset(a, 0, sizeof *a);
}

int qb_alloc_add(qb_alloc *a, const char *item, const char *format, vl_err *err)
{
    if (!item || !*item)
        return vl_errf(err, VL_EARG, "allocation: empty item name");
    qfmt f;
    if (qfmt_parse(&f, format, err))
        return vl_errctx(err, VL_ECONFIG, "item \"%s\"", item);
    if (a->n == a->cap) {
        int cap = a->cap ? 2 * a->cap : 64;
        qb_item *v = vl_realloc(a->v, (size_t)cap * sizeof *v);
        if (!v)
            return vl_errf(err, VL_ENOMEM, "allocation: out of memory");
        a->v = v;
        a->cap = cap;
    }
    char *s = vl_strdup(item);
    if (!s)
        return vl_errf(err, VL_ENOMEM, "allocation: out of memory");
    a->v[a->n].item = s;
    a->v[a->n].fmt = f;
    a->n++;
    return 0;
}

int qb_is_body(const model_tensor *t)
{
    if (t->rows < 2 || t->cols < 2)
        return 0;
    return t->cls == MODEL_C_ATTN || t->cls == MODEL_C_EXPERT || t->cls == MODEL_C_SHARED ||
           t->cls == MODEL_C_MLP;
}

int qb_is_outer(const model_tensor *t)
{
    return (t->cls == MODEL_C_EMBED || t->cls == MODEL_C_LM_HEAD) && t->rows >= 2 &&
           t->cols >= 2;
}

/* Every tensor of m that `pick` accepts, in format FORMAT (its canonical name). */
static int add_all(qb_alloc *a, const model *m, const char *format,
                   int (*pick)(const model_tensor *), vl_err *err)
{
    qfmt f;
    char name[QFMT_NAME_MAX];
    if (qfmt_parse(&f, format, err))
        return err ? err->code : VL_ECONFIG;
    for (size_t i = 0; i < model_tensor_count(m); i++) {
        const model_tensor *t = model_tensor_at(m, i);
        if (pick(t)) {
            int rc = qb_alloc_add(a, t->name, qfmt_name(&f, name), err);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int qb_alloc_uniform(qb_alloc *a, const model *m, const char *format, vl_err *err)
{
    return add_all(a, m, format, qb_is_body, err);
}

int qb_alloc_outer(qb_alloc *a, const model *m, const char *format, vl_err *err)
{
    return add_all(a, m, format, qb_is_outer, err);
}

int qb_alloc_parse_text(qb_alloc *a, const char *text, const char *label, vl_err *err)
{
    int lineno = 0, rc = 0, n0 = a->n;
    const char *p = text;
    while (!rc && *p) {
        lineno++;
        size_t len = strcspn(p, "\n");
        char line[4096];
        if (len >= sizeof line)
            return vl_errf(err, VL_EFORMAT, "%s:%d: line longer than %zu bytes", label, lineno,
                           sizeof line - 1);
        memcpy(line, p, len);
        line[len] = '\0';
        p += len + (p[len] == '\n');
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *save = NULL;
        char *item = strtok_r(line, " \t\r", &save);
        if (!item)
            continue;
        char *format = strtok_r(NULL, " \t\r", &save);
        if (!format)
            return vl_errf(err, VL_EFORMAT, "%s:%d: item \"%s\" has no format", label, lineno,
                           item);
        if ((rc = qb_alloc_add(a, item, format, err)) != 0)
            vl_errctx(err, rc, "%s:%d", label, lineno);
    }
    if (!rc && a->n == n0)
        rc = vl_errf(err, VL_EFORMAT, "%s: no allocation lines", label);
    return rc;
}

int qb_alloc_read_text(qb_alloc *a, const char *path, vl_err *err)
{
    FILE *fp;
    int orc = vf_fopen(path, &fp, err); /* regular files only: a FIFO would block */
    if (orc)
        return orc;
    size_t cap = 1 << 16, n = 0;
    char *buf = vl_malloc(cap);
    int rc = buf ? 0 : vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
    while (!rc) {
        if (n + 1 == cap) {
            char *nb = vl_realloc(buf, cap * 2);
            if (!nb) {
                rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, fp);
        n += got;
        if (got == 0)
            break;
    }
    if (!rc && ferror(fp))
        rc = vl_errf(err, VL_EIO, "%s: read error", path);
    fclose(fp);
    if (!rc && memchr(buf, '\0', n))
        rc = vl_errf(err, VL_EFORMAT, "%s: not a text file (NUL byte)", path);
    if (!rc) {
        buf[n] = '\0';
        rc = qb_alloc_parse_text(a, buf, path, err);
    }
    vl_free(buf);
    return rc;
}

/* ---------------------------------------------------------------- statistics lookup */

int qb_tensor_input(const model_tensor *t, int *layer, stat_slot *slot, int *expert)
{
    if (t->layer < 0)
        return VL_ENOTFOUND;
    char prefix[64];
    int np = snprintf(prefix, sizeof prefix, "model.layers.%d.", t->layer);
    size_t len = strlen(t->name);
    static const char suffix[] = ".weight";
    if (strncmp(t->name, prefix, (size_t)np) || len < (size_t)np + sizeof suffix - 1 ||
        strcmp(t->name + len - (sizeof suffix - 1), suffix))
        return VL_ENOTFOUND;
    const char *rest = t->name + np;
    size_t rest_len = len - (size_t)np - (sizeof suffix - 1);
    /* stat_slot_weights lists the readers of each input, expert index as %d */
    for (int s = 0; s < STAT_SLOT_COUNT; s++) {
        const char *p = stat_slot_weights((stat_slot)s);
        while (*p) {
            size_t wl = strcspn(p, " ");
            char word[96], name[96];
            if (wl < sizeof word) {
                memcpy(word, p, wl);
                word[wl] = '\0';
                const char *pct = strstr(word, "%d");
                if (pct) {
                    if (t->expert < 0)
                        goto next;
                    snprintf(name, sizeof name, "%.*s%d%s", (int)(pct - word), word, t->expert,
                             pct + 2);
                } else {
                    if (t->expert >= 0)
                        goto next;
                    memcpy(name, word, wl + 1);
                }
                if (strlen(name) == rest_len && !strncmp(name, rest, rest_len)) {
                    *layer = t->layer;
                    *slot = (stat_slot)s;
                    *expert = pct ? t->expert : 0;
                    return 0;
                }
            }
        next:
            p += wl;
            while (*p == ' ')
                p++;
        }
    }
    return VL_ENOTFOUND;
}

/* ---------------------------------------------------------------- binding */

qb_params qb_defaults(void)
{
    qb_params p;
    p.fq = fq_defaults();
    /* an expert the calibration set never routed to has no statistics at all: RTN, not a
     * GPTQ on an all-zero H */
    p.fq.min_tokens = 1.0;
    p.tile_bytes = QB_TILE_BYTES;
    return p;
}

static int has_glob(const char *s) { return strpbrk(s, "*?[") != NULL; }

/* owner[i] = index of the item listing tensor i, −1 if none. */
static int match_items(int *owner, const model *m, const qb_alloc *a, const char *name,
                       vl_err *err)
{
    size_t nt = model_tensor_count(m);
    for (size_t i = 0; i < nt; i++)
        owner[i] = -1;
    for (int k = 0; k < a->n; k++) {
        const char *item = a->v[k].item;
        int hits = 0;
        for (size_t i = 0; i < nt; i++) {
            const model_tensor *t = model_tensor_at(m, i);
            if (has_glob(item) ? fnmatch(item, t->name, 0) != 0 : strcmp(item, t->name) != 0)
                continue;
            if (owner[i] >= 0)
                return vl_errf(err, VL_EARG,
                               "allocation %s: tensor \"%s\" listed twice (items \"%s\" and "
                               "\"%s\")",
                               name, t->name, a->v[owner[i]].item, item);
            if (t->rows < 2 || t->cols < 2)
                return vl_errf(err, VL_EARG,
                               "allocation %s: tensor \"%s\" is a %d × %d vector, not a "
                               "quantizable matrix",
                               name, t->name, t->rows, t->cols);
            owner[i] = k;
            hits++;
        }
        if (!hits)
            return vl_errf(err, VL_ENOTFOUND, "allocation %s: no tensor \"%s\" in %s", name,
                           item, model_dir(m));
    }
    return 0;
}

int qb_alloc_check(const model *m, const qb_alloc *a, int have_stats, const char *name,
                   vl_err *err)
{
    int *owner = vl_malloc(model_tensor_count(m) * sizeof *owner);
    if (!owner)
        return vl_errf(err, VL_ENOMEM, "allocation %s: out of memory", name);
    int rc = match_items(owner, m, a, name, err);
    vl_free(owner);
    for (int k = 0; k < a->n && !rc && !have_stats; k++)
        if (a->v[k].fmt.method == QFMT_GPTQ)
            rc = vl_errf(err, VL_EARG,
                         "allocation %s: item \"%s\" is GPTQ, which needs calibration "
                         "statistics with XᵀX (--stats/--calib)",
                         name, a->v[k].item);
    return rc;
}

static int check_stats(const model *m, const stat_acc *s, const char *name, vl_err *err)
{
    const hfc_config *c = model_config(m);
    const stat_config *sc = stat_cfg(s);
    if (sc->n_layers != c->n_layers || sc->hidden != c->hidden ||
        sc->n_experts != c->n_experts)
        return vl_errf(err, VL_ESHAPE,
                       "allocation %s: statistics are for %d layers, hidden %d, %d experts; "
                       "model %s has %d, %d, %d",
                       name, sc->n_layers, sc->hidden, sc->n_experts, model_dir(m), c->n_layers,
                       c->hidden, c->n_experts);
    return 0;
}

static int quantize_into(qb_binding *b, size_t i, float *out, const qfmt *f,
                         const stat_acc *stats, const qb_params *p, double *imp, double *h,
                         const char *name, vl_err *err);

/* Fake-quantize tensor i into b->buf[i]. imp/h: scratch [cols], [cols²] (h NULL if none). */
static int quantize_one(qb_binding *b, size_t i, const qfmt *f, const stat_acc *stats,
                        const qb_params *p, double *imp, double *h, const char *name,
                        vl_err *err)
{
    const model_tensor *t = model_tensor_at(b->m, i);
    size_t numel = (size_t)t->rows * (size_t)t->cols;
    float *out = vl_malloc(numel * sizeof *out);
    if (!out)
        return vl_errf(err, VL_ENOMEM, "allocation %s: out of memory for \"%s\"", name,
                       t->name);
    b->buf[i] = out;
    return quantize_into(b, i, out, f, stats, p, imp, h, name, err);
}

int qb_tile_rows(const model *m, size_t i, size_t tile_bytes)
{
    const model_tensor *t = model_tensor_at(m, i);
    size_t row = (size_t)t->cols * sizeof(float);
    if (tile_bytes == 0 || tile_bytes / row >= (size_t)t->rows)
        return t->rows;
    size_t n = tile_bytes / row;
    n = n ? n : 1; /* a tile below one row: one row */
    int br = model_config(m)->fp8_block[0];
    if (t->stored_dtype == ST_F8_E4M3 && br > 0)
        n = n < (size_t)br ? (size_t)br : n / (size_t)br * (size_t)br;
    return n >= (size_t)t->rows ? t->rows : (int)n;
}

/* fq_tensor of tensor i of binding b->w into out (whole tensor or tiles of rows, qbind.h). */
static int fq_rows(qb_binding *b, size_t i, float *out, const qfmt *f, const fq_stats *stp,
                   const fq_params *fp, size_t tile_bytes, fq_info *fi, vl_err *err)
{
    const model_tensor *t = model_tensor_at(b->m, i);
    int tr = qb_tile_rows(b->m, i, tile_bytes);
    const float *w;
    float *own;
    int rc;
    /* a float32 slot or a tensor that fits one tile needs no tiles; GPTQ is not row-local */
    if (*model_weights_slot(b->m, b->w, i) || tr >= t->rows || f->method == QFMT_GPTQ) {
        if ((rc = model_tensor_f32(b->m, b->w, i, &w, &own, err)) != 0)
            return rc;
        rc = fq_tensor(out, w, t->rows, t->cols, f, stp, NULL, fp, fi, t->name, err);
        vl_free(own);
        return rc;
    }
    size_t C = (size_t)t->cols;
    float *tile = vl_malloc((size_t)tr * C * sizeof *tile);
    if (!tile)
        return vl_errf(err, VL_ENOMEM, "tensor \"%s\": out of memory for a tile of %d rows",
                       t->name, tr);
    rc = 0;
    for (int r0 = 0; r0 < t->rows && !rc; r0 += tr) {
        int n = t->rows - r0 < tr ? t->rows - r0 : tr;
        rc = model_tensor_rows(b->m, b->w, i, r0, n, tile, err);
        if (!rc)
            rc = fq_tensor(out + (size_t)r0 * C, tile, n, t->cols, f, stp, NULL, fp, fi,
                           t->name, err);
        if (rc)
            vl_errctx(err, rc, "rows %d..%d", r0, r0 + n);
    }
    vl_free(tile);
    return rc;
}

/* fq_tensor of tensor i (its stored or bound weights) into out under format f with its
 * statistics. */
static int fake_quant(qb_binding *b, size_t i, float *out, const qfmt *f,
                      const stat_acc *stats, const qb_params *p, double *imp, double *h,
                      const char *name, fq_info *fi, vl_err *err)
{
    const model_tensor *t = model_tensor_at(b->m, i);

    fq_stats st = {NULL, NULL, 0.0}, *stp = NULL;
    int layer, expert;
    stat_slot sl;
    if (stats && qb_tensor_input(t, &layer, &sl, &expert) == 0) {
        const stat_input *in = stat_input_get(stats, layer, sl, expert);
        if (in && in->cols != t->cols)
            return vl_errf(err, VL_ESHAPE,
                           "allocation %s: statistics of \"%s\" have %d columns, the tensor %d",
                           name, t->name, in->cols, t->cols);
        if (in) {
            stat_input_f64(in, NULL, imp, NULL, in->xtx && h ? h : NULL);
            if (in->rows > 0) {
                for (int c = 0; c < t->cols; c++)
                    imp[c] /= (double)in->rows;
                st.imp = imp;
            }
            st.h = in->xtx && h ? h : NULL;
            st.tokens = (double)in->rows;
            stp = &st;
        }
    }
    if (f->method == QFMT_GPTQ && !(stp && stp->h))
        return vl_errf(err, VL_EARG,
                       "allocation %s: tensor \"%s\" format gptq needs the calibration set's "
                       "XᵀX (statistics with XᵀX for this input)",
                       name, t->name);
    fq_params fp = p->fq;
    fp.seed = rng_child_seed(p->fq.seed, t->name);
    int rc = fq_rows(b, i, out, f, stp, &fp, p->tile_bytes, fi, err);
    return rc ? vl_errctx(err, rc, "allocation %s", name) : 0;
}

/* Tensor i listed in format f: counted in the binding's facts. */
static void count_listed(qb_binding *b, size_t i, const qfmt *f)
{
    const model_tensor *t = model_tensor_at(b->m, i);
    b->fmt[i] = *f;
    b->listed[i] = 1;
    b->info.n_tensors++;
    b->info.n_weights += (int64_t)t->rows * t->cols;
    b->info.bits += qfmt_bits(f, t->rows, t->cols);
}

static int quantize_into(qb_binding *b, size_t i, float *out, const qfmt *f,
                         const stat_acc *stats, const qb_params *p, double *imp, double *h,
                         const char *name, vl_err *err)
{
    fq_info fi;
    int rc = fake_quant(b, i, out, f, stats, p, imp, h, name, &fi, err);
    if (rc)
        return rc;
    *model_weights_slot(b->m, b->w, i) = out;
    count_listed(b, i, f);
    b->counted[i] = 1;
    b->info.n_gptq += fi.method == QFMT_GPTQ;
    b->info.n_few += fi.few_applied;
    return 0;
}

static int bind(qb_binding **out, const model *m, const qb_alloc *a, const stat_acc *stats,
                const qb_params *p, const char *name, int lazy, vl_err *err)
{
    *out = NULL;
    qb_params def = qb_defaults();
    if (!p)
        p = &def;
    if (!name)
        name = "?";
    if (stats) {
        int rc = check_stats(m, stats, name, err);
        if (rc)
            return rc;
    }
    size_t nt = model_tensor_count(m);
    qb_binding *b = vl_calloc(1, sizeof *b);
    int *owner = vl_malloc(nt * sizeof *owner);
    int maxcols = 0, need_h = 0;
    for (int k = 0; k < a->n; k++)
        need_h |= a->v[k].fmt.method == QFMT_GPTQ;
    for (size_t i = 0; i < nt; i++)
        if (model_tensor_at(m, i)->cols > maxcols)
            maxcols = model_tensor_at(m, i)->cols;
    double *imp = vl_malloc((size_t)maxcols * sizeof *imp);
    double *h = need_h && stats ? vl_malloc((size_t)maxcols * maxcols * sizeof *h) : NULL;
    int rc = 0;
    if (!b || !owner || !imp || (need_h && stats && !h)) {
        rc = vl_errf(err, VL_ENOMEM, "allocation %s: out of memory", name);
        goto done;
    }
    b->m = m;
    b->buf = vl_calloc(nt, sizeof *b->buf);
    b->fmt = vl_calloc(nt, sizeof *b->fmt);
    b->listed = vl_calloc(nt, 1);
    b->counted = vl_calloc(nt, 1);
    if (!b->buf || !b->fmt || !b->listed || !b->counted) {
        rc = vl_errf(err, VL_ENOMEM, "allocation %s: out of memory", name);
        goto done;
    }
    if ((rc = model_weights_clone(&b->w, m, model_base(m), err)) != 0)
        goto done;
    if ((rc = match_items(owner, m, a, name, err)) != 0)
        goto done;
    /* lazy: a layer's tensors are quantized by qb_provide when the forward reaches the layer;
     * the embedding and head (read outside any layer) are quantized now */
    for (size_t i = 0; i < nt && !rc; i++) {
        if (owner[i] < 0)
            continue;
        if (lazy && model_tensor_at(m, i)->layer >= 0)
            count_listed(b, i, &a->v[owner[i]].fmt);
        else
            rc = quantize_one(b, i, &a->v[owner[i]].fmt, stats, p, imp, h, name, err);
    }
    if (b->info.n_weights > 0)
        b->info.bpw = (double)b->info.bits / (double)b->info.n_weights;
    if (!rc && lazy) {
        b->lazy = 1;
        b->stats = stats;
        b->p = *p;
        b->imp = imp;
        b->h = h;
        imp = h = NULL;
        if (!(b->name = vl_malloc(strlen(name) + 1)))
            rc = vl_errf(err, VL_ENOMEM, "allocation %s: out of memory", name);
        else
            memcpy(b->name, name, strlen(name) + 1);
    }
done:
    vl_free(owner);
    vl_free(imp);
    vl_free(h);
    if (rc) {
        qb_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

int qb_bind(qb_binding **out, const model *m, const qb_alloc *a, const stat_acc *stats,
            const qb_params *p, const char *name, vl_err *err)
{
    return bind(out, m, a, stats, p, name, 0, err);
}

int qb_bind_lazy(qb_binding **out, const model *m, const qb_alloc *a, const stat_acc *stats,
                 const qb_params *p, const char *name, vl_err *err)
{
    return bind(out, m, a, stats, p, name, 1, err);
}

int qb_provide(void *user, size_t i, const float **data, float **owned, vl_err *err)
{
    qb_binding *b = user;
    *data = NULL;
    *owned = NULL;
    if (!b->lazy || !b->listed[i] || b->buf[i])
        return 0; /* not listed, or quantized at bind time (in the binding already) */
    const model_tensor *t = model_tensor_at(b->m, i);
    float *out = vl_malloc((size_t)t->numel * sizeof *out + 1);
    if (!out)
        return vl_errf(err, VL_ENOMEM, "allocation %s: out of memory for \"%s\"", b->name,
                       t->name);
    fq_info fi;
    int rc = fake_quant(b, i, out, &b->fmt[i], b->stats, &b->p, b->imp, b->h, b->name, &fi,
                        err);
    if (rc) {
        vl_free(out);
        return rc;
    }
    if (!b->counted[i]) {
        b->counted[i] = 1;
        b->info.n_gptq += fi.method == QFMT_GPTQ;
        b->info.n_few += fi.few_applied;
    }
    *data = *owned = out;
    return 0;
}

const model_weights *qb_weights(const qb_binding *b) { return b->w; }

qb_info qb_get_info(const qb_binding *b) { return b->info; }

const qfmt *qb_tensor_format(const qb_binding *b, size_t i)
{
    if (i >= model_tensor_count(b->m) || !b->listed[i])
        return NULL;
    return &b->fmt[i];
}

void qb_free(qb_binding *b)
{
    if (!b)
        return;
    if (b->buf)
        for (size_t i = 0; i < model_tensor_count(b->m); i++)
            vl_free(b->buf[i]);
    vl_free(b->buf);
    vl_free(b->fmt);
    vl_free(b->listed);
    vl_free(b->counted);
    vl_free(b->name);
    vl_free(b->imp);
    vl_free(b->h);
    model_weights_free(b->w);
    vl_free(b);
}
