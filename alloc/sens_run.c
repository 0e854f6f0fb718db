/* alloc/sens_run.c — the sens stage as one call (sens.h, sens_run): what `vbrlab sens` and
 * the runner's sens stage both do between opening their inputs and writing /sens.
 */
#include "sens.h"

#include <stdio.h>
#include <string.h>

/* Set NAME's ids [*n_seq × *len] from /sets/NAME/input_ids, trimmed to p->max_tokens whole
 * sequences (at least one; 0: every sequence, sens_seqs_used). */
static int read_ids(h5s_store *st, const char *name, const sens_params *p, int32_t **ids,
                    int *n_seq, int *len, vl_err *err)
{
    char path[512];
    snprintf(path, sizeof path, "/sets/%s/input_ids", name);
    if (strchr(name, '/') || !h5s_exists(st, path))
        return vl_errf(err, VL_ENOTFOUND, "%s: no set \"%s\" (no %s)", h5s_path(st), name,
                       path);
    int nd = 0;
    int64_t sh[H5S_MAX_DIMS];
    int rc = h5s_read(st, path, H5S_I32, (void **)ids, &nd, sh, err);
    if (!rc && (nd != 2 || sh[0] < 1 || sh[1] < 1 || sh[0] * sh[1] > (1 << 24)))
        rc = vl_errf(err, VL_ESHAPE, "%s: %s: expected int32 [seqs, len]", h5s_path(st), path);
    if (rc)
        return rc;
    *n_seq = (int)sh[0];
    *len = (int)sh[1];
    *n_seq = sens_seqs_used(p, *n_seq, *len);
    return 0;
}

int sens_run(sens_result *r, const model *m, h5s_store *st, const char *const *names, int n,
             const char *spec, const sens_params *p, sens_add_fn on_add, void *ctx,
             vl_err *err)
{
    memset(r, 0, sizeof *r);
    int32_t **ids = vl_calloc((size_t)n + 1, sizeof *ids);
    int *n_seq = vl_calloc((size_t)n + 1, sizeof *n_seq);
    int *len = vl_calloc((size_t)n + 1, sizeof *len);
    stat_acc **acc = vl_calloc((size_t)n + 1, sizeof *acc);
    sens_set *ss = NULL;
    float *q = NULL;
    int rc = ids && n_seq && len && acc ? 0 : vl_errf(err, VL_ENOMEM, "out of memory");
    for (int s = 0; !rc && s < n; s++) {
        rc = read_ids(st, names[s], p, &ids[s], &n_seq[s], &len[s], err);
        if (!rc)
            rc = stat_read_sets(&acc[s], st, &names[s], 1, err);
    }
    if (!rc)
        rc = sens_layout(r, m, p->gran, p->embed_head, err);
    if (!rc)
        rc = sens_alloc_alpha(r, n, names, err);
    if (!rc && (p->add_set < 0 || p->add_set >= n))
        rc = vl_errf(err, VL_EARG, "sens: set index %d outside [0, %d)", p->add_set, n);
    if (!rc)
        rc = sens_rd_begin(r, spec, p, err);
    for (int s = 0; !rc && s < n; s++) {
        int need_q = p->add_draws > 0 || (s == p->add_set && on_add);
        /* this set's RD rows and its quantized tensors (its quantizer, as its allocation
           will be applied) from one quantization */
        rc = sens_rd_set(r, m, acc[s], s, p, need_q ? &q : NULL, err);
        if (!rc)
            rc = sens_set_new(&ss, m, ids[s], n_seq[s], len[s], err);
        if (!rc && (rc = sens_set_keep_f32(ss, p->keep_f32, err)) > 0)
            rc = 0; /* kept; 0: too large, converted per run; < 0: the error */
        if (!rc)
            rc = sens_alpha(r, s, m, ss, p, err);
        if (!rc)
            rc = sens_additivity(r, s, m, ss, q, p, err);
        if (!rc && s == p->add_set && on_add)
            rc = on_add(ctx, r, m, ss, q, err);
        sens_set_free(ss);
        ss = NULL;
        vl_free(q);
        q = NULL;
    }
    vl_free(q);
    for (int s = 0; s < n; s++) {
        vl_free(ids ? ids[s] : NULL);
        stat_free(acc ? acc[s] : NULL);
    }
    vl_free(ids);
    vl_free(n_seq);
    vl_free(len);
    vl_free(acc);
    if (rc)
        sens_result_free(r);
    return rc;
}
