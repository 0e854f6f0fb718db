/* analysis/imatrix.c — imatrix GGUF from/to vbrlab statistics (analysis/imatrix.h). */
#define _POSIX_C_SOURCE 200809L
#include "imatrix.h"

#include "../core/num.h"
#include "../io/gguf.h"
#include "../io/h5s.h"
#include "../io/hfcfg.h"
#include "../io/st.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void imx_free(imx_data *d)
{
    if (!d) return;
    for (int i = 0; i < d->n; i++) vl_free(d->v[i].sum2), vl_free(d->v[i].count);
    for (int i = 0; i < d->n_datasets; i++) vl_free(d->datasets[i]);
    vl_free(d->v), vl_free(d->datasets);
    memset(d, 0, sizeof *d);
}

const imx_entry *imx_find(const imx_data *d, const char *name)
{
    for (int i = 0; i < d->n; i++)
        if (!strcmp(d->v[i].name, name)) return &d->v[i];
    return NULL;
}

double imx_mean(const imx_entry *e, int m, int j)
{
    return e->count[m] > 0 ? e->sum2[(int64_t)m * e->n_in + j] / e->count[m] : 1.0;
}

/* Entry named name with n_in × n_mat, created zeroed if absent; NULL on a shape clash
 * (err filled) or out of memory. */
static imx_entry *entry_get(imx_data *d, const char *name, int n_in, int n_mat, vl_err *err)
{
    for (int i = 0; i < d->n; i++)
        if (!strcmp(d->v[i].name, name)) {
            if (d->v[i].n_in != n_in || d->v[i].n_mat != n_mat) {
                vl_errf(err, VL_ESHAPE, "imatrix entry %s: [%d, %d] vs [%d, %d]", name, n_in, n_mat,
                        d->v[i].n_in, d->v[i].n_mat);
                return NULL;
            }
            return &d->v[i];
        }
    imx_entry *nv = vl_realloc(d->v, (size_t)(d->n + 1) * sizeof *nv);
    if (!nv) {
        vl_errf(err, VL_ENOMEM, "out of memory");
        return NULL;
    }
    d->v = nv;
    imx_entry *e = &d->v[d->n];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->n_in = n_in, e->n_mat = n_mat;
    e->sum2 = vl_calloc((size_t)n_in * (size_t)n_mat, sizeof *e->sum2);
    e->count = vl_calloc((size_t)n_mat, sizeof *e->count);
    if (!e->sum2 || !e->count) {
        vl_free(e->sum2), vl_free(e->count);
        vl_errf(err, VL_ENOMEM, "out of memory");
        return NULL;
    }
    d->n++;
    return e;
}

static int add_dataset(imx_data *d, const char *s, vl_err *err)
{
    char **nd = vl_realloc(d->datasets, (size_t)(d->n_datasets + 1) * sizeof *nd);
    if (!nd) return vl_errf(err, VL_ENOMEM, "out of memory");
    d->datasets = nd;
    if (!(nd[d->n_datasets] = vl_strdup(s))) return vl_errf(err, VL_ENOMEM, "out of memory");
    d->n_datasets++;
    return 0;
}

typedef struct {
    h5s_store *s;
    const st_set *st;
    const char *arch, *path;
    int n_experts;
    double w;
    imx_data *d;
} build_ctx;

/* One input group at path: its weights attribute names the HF tensors (relative to
 * model.layers.L.) reading it. */
static int add_group(build_ctx *b, int layer, const char *gpath, vl_err *err)
{
    char *ws = NULL, p[256];
    double *s2 = NULL, *cnt = NULL;
    int nd, rc = h5s_attr_get(b->s, gpath, "weights", &ws, err);
    int64_t sh[H5S_MAX_DIMS];
    snprintf(p, sizeof p, "%s/sum_x2", gpath);
    if (!rc) rc = h5s_read(b->s, p, H5S_F64, (void **)&s2, &nd, sh, err);
    if (!rc && nd != 1) rc = vl_errf(err, VL_ESHAPE, "%s: %s: not 1-D", b->path, p);
    snprintf(p, sizeof p, "%s/count", gpath);
    if (!rc) rc = h5s_read(b->s, p, H5S_F64, (void **)&cnt, NULL, NULL, err);
    char *save = NULL;
    for (char *tok = rc ? NULL : strtok_r(ws, " ", &save); tok && !rc; tok = strtok_r(NULL, " ", &save)) {
        char hf[256];
        snprintf(hf, sizeof hf, "model.layers.%d.%s.weight", layer, tok);
        if (!st_set_find(b->st, hf)) continue; /* e.g. dense names listed for a MoE layer */
        ggn_target t;
        if ((rc = ggn_map(b->arch, hf, &t, err))) break;
        if (t.n != 1) {
            rc = vl_errf(err, VL_ECONFIG, "%s: %s feeds %d GGUF tensors with other inputs; no imatrix for it",
                         b->path, hf, t.n);
            break;
        }
        int nm = t.expert >= 0 ? b->n_experts : 1, slot = t.expert >= 0 ? t.expert : 0;
        if (slot >= nm) {
            rc = vl_errf(err, VL_ERANGE, "%s: %s: expert %d of %d", b->path, hf, slot, nm);
            break;
        }
        imx_entry *e = entry_get(b->d, t.name[0], (int)sh[0], nm, err);
        if (!e) {
            rc = err ? err->code : VL_ENOMEM;
            break;
        }
        for (int64_t j = 0; j < sh[0]; j++) e->sum2[(int64_t)slot * sh[0] + j] += b->w * s2[j];
        e->count[slot] += b->w * cnt[0];
    }
    vl_free(ws), vl_free(s2), vl_free(cnt);
    if (rc && err && !strstr(err->msg, gpath)) vl_errctx(err, rc, "%s: %s", b->path, gpath);
    return rc;
}

static int add_set(build_ctx *b, const char *set, double *seqs, double *tokens, vl_err *err)
{
    char g[256], **lay = NULL;
    int nl = 0;
    double ne = 0, sq = 0, len = 0;
    snprintf(g, sizeof g, "/stats/%s", set);
    if (!h5s_exists(b->s, g)) return vl_errf(err, VL_ENOTFOUND, "%s: no statistics for set '%s'", b->path, set);
    int rc = h5s_attr_get_f64(b->s, g, "n_experts", &ne, err);
    b->n_experts = (int)ne;
    snprintf(g, sizeof g, "/sets/%s", set);
    if (!rc) rc = h5s_attr_get_f64(b->s, g, "seqs", &sq, err);
    if (!rc) rc = h5s_attr_get_f64(b->s, g, "len", &len, err);
    char *src = NULL;
    if (!rc) rc = h5s_attr_get(b->s, g, "source", &src, err);
    if (!rc) {
        char ds[512];
        snprintf(ds, sizeof ds, "%s=%s", set, src);
        rc = add_dataset(b->d, ds, err);
    }
    vl_free(src);
    *seqs += sq, *tokens += sq * len;
    snprintf(g, sizeof g, "/stats/%s/layers", set);
    if (!rc) rc = h5s_list(b->s, g, &lay, &nl, err);
    for (int i = 0; i < nl && !rc; i++) {
        int layer;
        if (num_int(lay[i], 0, 1 << 20, &layer)) { /* group names are layer numbers */
            rc = vl_errf(err, VL_EFORMAT, "%s: %s/%s is not a layer number", h5s_path(b->s), g,
                         lay[i]);
            break;
        }
        char lg[300], **mem = NULL;
        int nm = 0;
        snprintf(lg, sizeof lg, "%s/%s", g, lay[i]);
        rc = h5s_list(b->s, lg, &mem, &nm, err);
        for (int k = 0; k < nm && !rc; k++) {
            char mg[360];
            snprintf(mg, sizeof mg, "%s/%s", lg, mem[k]);
            if (!strcmp(mem[k], "router")) continue;
            if (strcmp(mem[k], "experts")) {
                rc = add_group(b, layer, mg, err);
                continue;
            }
            char **ex = NULL;
            int nx = 0;
            rc = h5s_list(b->s, mg, &ex, &nx, err);
            for (int x = 0; x < nx && !rc; x++) {
                char eg[420];
                static const char *const SUB[2] = {"in", "down_in"};
                for (int k2 = 0; k2 < 2 && !rc; k2++) {
                    snprintf(eg, sizeof eg, "%s/%s/%s", mg, ex[x], SUB[k2]);
                    if (h5s_exists(b->s, eg)) rc = add_group(b, layer, eg, err);
                }
            }
            h5s_names_free(ex, nx);
        }
        h5s_names_free(mem, nm);
    }
    h5s_names_free(lay, nl);
    return rc;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const imx_entry *)a)->name, ((const imx_entry *)b)->name);
}

int imx_from_stats(imx_data *out, const char *stats_path, const char *model_dir, const char *sets,
                   vl_err *err)
{
    memset(out, 0, sizeof *out);
    char cfgp[1024];
    snprintf(cfgp, sizeof cfgp, "%s/config.json", model_dir);
    hfc_config *cfg = vl_malloc(sizeof *cfg);
    if (!cfg) return vl_errf(err, VL_ENOMEM, "out of memory");
    st_set *st = NULL;
    h5s_store *s = NULL;
    int rc = hfc_load(cfg, cfgp, err);
    if (!rc) rc = st_set_open(&st, model_dir, err);
    if (!rc) rc = h5s_open(&s, stats_path, err);
    char *spec = rc ? NULL : vl_strdup(sets);
    if (!rc && !spec) rc = vl_errf(err, VL_ENOMEM, "out of memory");
    build_ctx b = {s, st, rc ? "" : cfg->model_type, stats_path, 0, 1.0, out};
    double seqs = 0, tokens = 0;
    char *save = NULL;
    for (char *tok = rc ? NULL : strtok_r(spec, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        char *star = strchr(tok, '*');
        b.w = 1.0;
        if (star) {
            *star = 0;
            if (num_f64(star + 1, 0, DBL_MAX, &b.w) || !(b.w > 0))
                rc = vl_errf(err, VL_EARG, "--set '%s': weight '%s' is not a positive number", sets, star + 1);
        }
        if (!rc && !*tok) rc = vl_errf(err, VL_EARG, "--set '%s': empty set name", sets);
        if (!rc) rc = add_set(&b, tok, &seqs, &tokens, err);
    }
    if (!rc && out->n == 0) rc = vl_errf(err, VL_ENOTFOUND, "%s: no weight inputs found for '%s'", stats_path, sets);
    if (!rc) {
        qsort(out->v, (size_t)out->n, sizeof *out->v, entry_cmp);
        out->chunk_count = (uint32_t)seqs;
        out->chunk_size = seqs > 0 ? (uint32_t)llround(tokens / seqs) : 0;
    }
    vl_free(spec), vl_free(cfg);
    st_set_close(st);
    h5s_close(s);
    if (rc) imx_free(out);
    return rc;
}

int imx_write(const imx_data *d, const char *path, vl_err *err)
{
    gguf_writer *w = NULL;
    int rc = gguf_writer_new(&w, err);
    if (!rc) rc = gguf_w_str(w, "general.type", "imatrix", err);
    if (!rc) rc = gguf_w_str_arr(w, "imatrix.datasets", (const char *const *)d->datasets, (size_t)d->n_datasets, err);
    if (!rc) rc = gguf_w_u32(w, "imatrix.chunk_count", d->chunk_count, err);
    if (!rc) rc = gguf_w_u32(w, "imatrix.chunk_size", d->chunk_size, err);
    for (int i = 0; i < d->n && !rc; i++) {
        const imx_entry *e = &d->v[i];
        size_t n = (size_t)e->n_in * (size_t)e->n_mat;
        float *s = vl_malloc(n * sizeof *s), *c = vl_malloc((size_t)e->n_mat * sizeof *c);
        if (!s || !c) rc = vl_errf(err, VL_ENOMEM, "out of memory");
        for (size_t j = 0; !rc && j < n; j++) s[j] = (float)e->sum2[j];
        for (int m = 0; !rc && m < e->n_mat; m++) c[m] = (float)e->count[m];
        char nm[GGN_NAME_MAX + 16];
        int64_t ne_s[2] = {e->n_in, e->n_mat}, ne_c[2] = {1, e->n_mat};
        snprintf(nm, sizeof nm, "%s.in_sum2", e->name);
        if (!rc) rc = gguf_w_tensor(w, nm, 0, 2, ne_s, s, n * sizeof *s, err);
        snprintf(nm, sizeof nm, "%s.counts", e->name);
        if (!rc) rc = gguf_w_tensor(w, nm, 0, 2, ne_c, c, (size_t)e->n_mat * sizeof *c, err);
        vl_free(s), vl_free(c);
    }
    if (!rc) rc = gguf_w_write(w, path, err);
    gguf_writer_free(w);
    return rc;
}

static int has_suffix(const char *s, const char *suf, size_t *stem)
{
    size_t n = strlen(s), k = strlen(suf);
    if (n <= k || strcmp(s + n - k, suf)) return 0;
    *stem = n - k;
    return 1;
}

int imx_read(imx_data *out, const char *path, vl_err *err)
{
    memset(out, 0, sizeof *out);
    gguf_file *f = NULL;
    int rc = gguf_open(&f, path, err);
    if (rc) return rc;
    uint64_t cc = 0, cs = 0;
    rc = gguf_get_u64(f, "imatrix.chunk_count", &cc, err);
    if (!rc) rc = gguf_get_u64(f, "imatrix.chunk_size", &cs, err);
    int64_t di = rc ? -1 : gguf_find_kv(f, "imatrix.datasets");
    if (!rc && di < 0) rc = vl_errf(err, VL_EFORMAT, "%s: key imatrix.datasets missing", path);
    for (uint64_t j = 0; !rc && j < gguf_kv_arr_n(f, di); j++) {
        const char *s;
        rc = gguf_get_arr_str(f, "imatrix.datasets", j, &s, err);
        if (!rc) rc = add_dataset(out, s, err);
    }
    out->chunk_count = (uint32_t)cc, out->chunk_size = (uint32_t)cs;
    for (int64_t i = 0; !rc && i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        size_t stem;
        if (!has_suffix(t->name, ".in_sum2", &stem)) continue;
        char base[GGN_NAME_MAX], cn[GGN_NAME_MAX + 16];
        if (stem >= sizeof base) {
            rc = vl_errf(err, VL_EFORMAT, "%s: tensor name '%s' too long", path, t->name);
            break;
        }
        memcpy(base, t->name, stem), base[stem] = 0;
        snprintf(cn, sizeof cn, "%s.counts", base);
        const gguf_tensor *c = gguf_tensor_find(f, cn);
        if (!c) {
            rc = vl_errf(err, VL_EFORMAT, "%s: %s has no %s", path, t->name, cn);
            break;
        }
        if (t->ggml_type != 0 || c->ggml_type != 0 || t->ne[2] != 1 || t->ne[3] != 1 ||
            c->ne[0] != 1 || c->ne[1] != t->ne[1] || c->ne[2] != 1 || t->ne[0] > INT32_MAX || t->ne[1] > INT32_MAX) {
            rc = vl_errf(err, VL_EFORMAT, "%s: %s / %s: not F32 [n_in, n_mat] / [1, n_mat]", path, t->name, cn);
            break;
        }
        imx_entry *e = entry_get(out, base, (int)t->ne[0], (int)t->ne[1], err);
        if (!e) {
            rc = err ? err->code : VL_ENOMEM;
            break;
        }
        for (int64_t j = 0; j < t->ne[0] * t->ne[1]; j++) {
            float v;
            memcpy(&v, t->data + 4 * j, 4);
            e->sum2[j] = v;
        }
        for (int64_t m = 0; m < t->ne[1]; m++) {
            float v;
            memcpy(&v, c->data + 4 * m, 4);
            e->count[m] = v;
        }
    }
    if (!rc) qsort(out->v, (size_t)out->n, sizeof *out->v, entry_cmp);
    gguf_close(f);
    if (rc) imx_free(out);
    return rc;
}
