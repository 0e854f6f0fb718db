/* analysis/sfile.c — the `vbrlab stats` store: write sets, read them back, merge two files.
 * Layout and merge rules in sfile.h and docs/hdf5-schema.md ("vbrlab stats").
 */
#define _POSIX_C_SOURCE 200809L
#include "sfile.h"

#include "../core/hash.h"

#include "../core/num.h"
#include "../core/vfile.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest set a store may hold (the same limit calib.c builds with). */
#define SFILE_MAX_TOKENS (1ll << 30)

/* ---------------------------------------------------------------- identity */

int sfile_config_hash(const char *model_dir, char *out, vl_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", model_dir);
    FILE *f;
    int orc = vf_fopen(path, &f, err); /* regular files only: a FIFO would block */
    if (orc)
        return orc;
    uint64_t h = HASH_FNV_OFFSET;
    int c;
    while ((c = getc(f)) != EOF) {
        unsigned char b = (unsigned char)c;
        h = hash_fnv1a64(h, &b, 1);
    }
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return vl_errf(err, VL_EIO, "%s: read error", path);
    snprintf(out, SFILE_HASH_MAX, "fnv1a64:%016" PRIx64, h);
    return 0;
}

int sfile_create(h5s_store **out, const char *path, const char *model_name,
                 const char *config_hash, const char *command, vl_err *err)
{
    h5s_store *s = NULL;
    int rc = h5s_create(&s, path, err);
    if (rc == 0)
        rc = h5s_attr_set(s, "/", "model", model_name, err);
    if (rc == 0)
        rc = h5s_attr_set(s, "/", "model_config_hash", config_hash, err);
    if (rc == 0)
        rc = h5s_attr_set(s, "/", "command", command, err);
    if (rc) {
        h5s_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* ---------------------------------------------------------------- writing */

int sfile_write_set(h5s_store *s, const sfile_set *set, const stat_acc *a, vl_err *err)
{
    const stat_tokens *tk = stat_tokens_get(a);
    int64_t n = (int64_t)set->n_seq * set->seq_len;
    if (tk->n != n)
        return vl_errf(err, VL_ESHAPE, "%s: set %s: %lld per-token values for %d × %d tokens",
                       h5s_path(s), set->name, (long long)tk->n, set->n_seq, set->seq_len);
    char g[256], p[320];
    int64_t shape[2] = {set->n_seq, set->seq_len};
    snprintf(g, sizeof g, "/sets/%s", set->name);
    snprintf(p, sizeof p, "%s/input_ids", g);
    int rc = h5s_write(s, p, H5S_I32, set->ids, 2, shape, "token id",
                       "calibration sequences fed to the model, one row per sequence", err);
    if (rc == 0)
        rc = h5s_attr_set(s, g, "source", set->source, err);
    if (rc == 0)
        rc = h5s_attr_set_f64(s, g, "seqs", set->n_seq, err);
    if (rc == 0)
        rc = h5s_attr_set_f64(s, g, "len", set->seq_len, err);
    if (rc == 0)
        rc = h5s_attr_set(s, g, "seed", set->seed, err);
    if (rc == 0)
        rc = h5s_attr_set(s, g, "skip", set->skip, err);
    snprintf(g, sizeof g, "/stats/%s", set->name);
    if (rc == 0)
        rc = stat_write(a, s, g, err);
    snprintf(p, sizeof p, "/tokens/%s/entropy", set->name);
    if (rc == 0)
        rc = h5s_write(s, p, H5S_F64, tk->entropy, 2, shape, "nat",
                       "entropy of the model's next-token distribution at each position", err);
    snprintf(p, sizeof p, "/tokens/%s/logp", set->name);
    if (rc == 0)
        rc = h5s_write(s, p, H5S_F64, tk->logprob, 2, shape, "nat",
                       "log-probability the model gives the actual next token; NaN at each "
                       "sequence's last position (no next token)", err);
    return rc;
}

/* ---------------------------------------------------------------- reading */

typedef struct {
    char *source, *seed, *skip; /* owned */
    int n_seq, seq_len;
    int32_t *ids;               /* owned, [n_seq × seq_len] */
    stat_acc *acc;              /* owned */
} loaded;

static void loaded_free(loaded *l)
{
    vl_free(l->source);
    vl_free(l->seed);
    vl_free(l->skip);
    vl_free(l->ids);
    stat_free(l->acc);
    memset(l, 0, sizeof *l);
}

static int get_count(h5s_store *s, const char *g, const char *name, int *out, vl_err *err)
{
    double v;
    int rc = h5s_attr_get_f64(s, g, name, &v, err);
    if (rc)
        return rc;
    int64_t w;
    if (num_whole(v, 1, SFILE_MAX_TOKENS, &w))
        return vl_errf(err, VL_EFORMAT, "%s: %s: attribute %s = %g is not a positive count",
                       h5s_path(s), g, name, v);
    *out = (int)w;
    return 0;
}

static int load_set(h5s_store *s, const char *name, loaded *o, vl_err *err)
{
    char g[256], p[320];
    snprintf(g, sizeof g, "/sets/%s", name);
    memset(o, 0, sizeof *o);
    int ndim = 0, rc;
    int64_t shape[H5S_MAX_DIMS];
    if ((rc = h5s_attr_get(s, g, "source", &o->source, err)) ||
        (rc = h5s_attr_get(s, g, "seed", &o->seed, err)) ||
        (rc = h5s_attr_get(s, g, "skip", &o->skip, err)) ||
        (rc = get_count(s, g, "seqs", &o->n_seq, err)) ||
        (rc = get_count(s, g, "len", &o->seq_len, err)))
        goto fail;
    snprintf(p, sizeof p, "%s/input_ids", g);
    if ((rc = h5s_read(s, p, H5S_I32, (void **)&o->ids, &ndim, shape, err)))
        goto fail;
    if (ndim != 2 || shape[0] != o->n_seq || shape[1] != o->seq_len) {
        rc = vl_errf(err, VL_ESHAPE, "%s: %s: shape does not match seqs = %d, len = %d",
                     h5s_path(s), p, o->n_seq, o->seq_len);
        goto fail;
    }
    snprintf(p, sizeof p, "/stats/%s", name);
    if ((rc = stat_read(&o->acc, s, p, err)))
        goto fail;
    return 0;
fail:
    loaded_free(o);
    return rc;
}

/* ---------------------------------------------------------------- merging */

static int plain_int(const char *s, int64_t *v) { return !num_i64(s, INT64_MIN, INT64_MAX, v); }

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *r = vl_malloc(n);
    if (r)
        snprintf(r, n, "%s+%s", a, b);
    return r;
}

/* a := a ∪ b (b's rows after a's). */
static int merge_into(loaded *a, const loaded *b, const char *name, const char *pb, vl_err *err)
{
    if (strcmp(a->source, b->source) || a->seq_len != b->seq_len)
        return vl_errf(err, VL_EARG, "%s: set %s: source \"%s\" len %d differs from the other "
                       "file's \"%s\" len %d", pb, name, b->source, b->seq_len, a->source,
                       a->seq_len);
    if ((int64_t)a->n_seq + b->n_seq > SFILE_MAX_TOKENS / a->seq_len)
        return vl_errf(err, VL_ERANGE, "%s: set %s: merged set too large", pb, name);
    int rc = stat_merge(a->acc, b->acc, err);
    if (rc)
        return vl_errctx(err, rc, "%s: set %s", pb, name);
    size_t na = (size_t)a->n_seq * a->seq_len, nb = (size_t)b->n_seq * b->seq_len;
    int32_t *ids = vl_realloc(a->ids, (na + nb) * sizeof *ids);
    if (!ids)
        return vl_errf(err, VL_ENOMEM, "set %s: out of memory", name);
    memcpy(ids + na, b->ids, nb * sizeof *ids);
    a->ids = ids;
    int64_t ka, kb, end;
    int contiguous = !strcmp(a->seed, b->seed) && plain_int(a->skip, &ka) &&
                     plain_int(b->skip, &kb) && !num_add_i64(ka, a->n_seq, &end) && kb == end;
    a->n_seq += b->n_seq;
    if (!contiguous) {
        char *seed = join(a->seed, b->seed), *skip = join(a->skip, b->skip);
        if (!seed || !skip) {
            vl_free(seed);
            vl_free(skip);
            return vl_errf(err, VL_ENOMEM, "set %s: out of memory", name);
        }
        vl_free(a->seed);
        vl_free(a->skip);
        a->seed = seed;
        a->skip = skip;
    }
    return 0;
}

static int write_loaded(h5s_store *c, const char *name, const loaded *l, vl_err *err)
{
    sfile_set st = {name, l->source, l->seed, l->skip, l->n_seq, l->seq_len, l->ids};
    return sfile_write_set(c, &st, l->acc, err);
}

static int has_name(char **names, int n, const char *x)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], x))
            return 1;
    return 0;
}

/* Every set of A (merged with B's set of that name) then B's own sets, into C. */
static int merge_sets(h5s_store *a, h5s_store *b, h5s_store *c, vl_err *err)
{
    char **na = NULL, **nb = NULL;
    int ca = 0, cb = 0;
    int rc = h5s_list(a, "/sets", &na, &ca, err);
    if (rc == 0)
        rc = h5s_list(b, "/sets", &nb, &cb, err);
    for (int i = 0; rc == 0 && i < ca + cb; i++) {
        const char *name = i < ca ? na[i] : nb[i - ca];
        if (i >= ca && has_name(na, ca, name))
            continue; /* merged already */
        loaded x, y;
        rc = load_set(i < ca ? a : b, name, &x, err);
        if (rc == 0 && i < ca && has_name(nb, cb, name)) {
            rc = load_set(b, name, &y, err);
            if (rc == 0) {
                rc = merge_into(&x, &y, name, h5s_path(b), err);
                loaded_free(&y);
            }
        }
        if (rc == 0) {
            rc = write_loaded(c, name, &x, err);
            loaded_free(&x);
        }
    }
    h5s_names_free(na, ca);
    h5s_names_free(nb, cb);
    return rc;
}

int sfile_merge(const char *path_a, const char *path_b, const char *path_c,
                const char *command, vl_err *err)
{
    h5s_store *a = NULL, *b = NULL, *c = NULL;
    char *model = NULL, *ha = NULL, *hb = NULL;
    int rc = h5s_open(&a, path_a, err);
    if (rc == 0)
        rc = h5s_open(&b, path_b, err);
    if (rc == 0)
        rc = h5s_attr_get(a, "/", "model", &model, err);
    if (rc == 0)
        rc = h5s_attr_get(a, "/", "model_config_hash", &ha, err);
    if (rc == 0)
        rc = h5s_attr_get(b, "/", "model_config_hash", &hb, err);
    if (rc == 0 && strcmp(ha, hb))
        rc = vl_errf(err, VL_EARG, "%s and %s come from different models (config hash %s vs "
                     "%s)", path_a, path_b, ha, hb);
    if (rc == 0)
        rc = sfile_create(&c, path_c, model, ha, command, err);
    if (rc == 0)
        rc = merge_sets(a, b, c, err);
    if (rc == 0) {
        rc = h5s_commit(c, err);
        c = NULL;
    }
    h5s_close(c);
    h5s_close(a);
    h5s_close(b);
    vl_free(model);
    vl_free(ha);
    vl_free(hb);
    return rc;
}
