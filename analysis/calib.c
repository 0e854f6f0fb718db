/* analysis/calib.c — the calibration-set book and the sources that need no forward pass:
 * corpus files, mixes, uniform ids, random UTF-8 text, shuffled sets. The model-driven sources
 * (self-generated text, entropy buckets) are in calib_gen.c.
 *
 * Every source draws from its own stream rng_child_seed(seed, "<source label>") so that the
 * ids depend only on the definition (core/rng.h).
 */
#include "calib.h"
#include "calib_int.h"

#include "../core/rng.h"
#include "../core/utf8.h"
#include "../io/corpus.h"
#include "../io/tok.h"

#include <string.h>

struct calib_book {
    calib_env env;
    calib_set *sets;      /* [n] */
    double **seq_entropy; /* [n] mean entropy per sequence, computed on first use; NULL */
    int n, cap;
};

/* Largest total a set may have (ids are int32 counts in several places). */
#define CALIB_MAX_TOKENS (1ll << 30)

/* ---------------------------------------------------------------- corpus files */

static int build_file(const calib_env *env, const calib_spec *sp, int32_t *ids, vl_err *err)
{
    if (!env->tok)
        return vl_errf(err, VL_EARG, "set %s: a corpus file needs a tokenizer", sp->name);
    int32_t eos = tok_eos_id(env->tok);
    if (eos < 0)
        return vl_errf(err, VL_ECONFIG, "set %s: the tokenizer has no EOS token", sp->name);
    int64_t total = (int64_t)sp->n_seq + sp->skip;
    if (total * sp->seq_len > CALIB_MAX_TOKENS)
        return vl_errf(err, VL_EARG, "set %s: skip + seqs = %lld sequences of %d is too many",
                       sp->name, (long long)total, sp->seq_len);
    corp_corpus *c = NULL;
    int rc = corp_load(&c, sp->source, err);
    if (rc)
        return vl_errctx(err, rc, "set %s", sp->name);
    corp_tokdoc *docs = vl_calloc((size_t)c->n_docs + 1, sizeof *docs);
    int32_t *all = vl_malloc((size_t)(total * sp->seq_len) * sizeof *all);
    if (!docs || !all)
        rc = vl_errf(err, VL_ENOMEM, "set %s: out of memory", sp->name);
    for (int d = 0; rc == 0 && d < c->n_docs; d++) {
        int32_t *t = NULL;
        size_t n = 0;
        rc = tok_encode(env->tok, c->docs[d].text, c->docs[d].len, &t, &n, err);
        if (rc) {
            vl_errctx(err, rc, "set %s: %s: document %d", sp->name, sp->source, d);
        } else if (n > INT32_MAX) {
            vl_free(t);
            rc = vl_errf(err, VL_ERANGE, "set %s: %s: document %d too long", sp->name,
                         sp->source, d);
        } else {
            docs[d].ids = t;
            docs[d].n = (int)n;
        }
    }
    if (rc == 0)
        rc = corp_cut(all, docs, c->n_docs, eos, sp->seed, (int)total, sp->seq_len, sp->name,
                      err);
    if (rc == 0)
        memcpy(ids, all + sp->skip * sp->seq_len,
               (size_t)sp->n_seq * (size_t)sp->seq_len * sizeof *ids);
    for (int d = 0; docs && d < c->n_docs; d++)
        vl_free((void *)docs[d].ids);
    vl_free(docs);
    vl_free(all);
    corp_free(c);
    return rc;
}

/* ---------------------------------------------------------------- mixes */

void calib_apportion(const double *w, int n, int total, int *counts)
{
    double sum = 0.0, rem[CALIB_MAX_PARTS];
    VL_ASSERT(n > 0 && n <= CALIB_MAX_PARTS);
    for (int i = 0; i < n; i++)
        sum += w[i];
    int given = 0;
    for (int i = 0; i < n; i++) {
        double q = (double)total * w[i] / sum;
        counts[i] = (int)q;
        rem[i] = q - counts[i];
        given += counts[i];
    }
    for (; given < total; given++) { /* at most n − 1 rounds */
        int best = 0;
        for (int i = 1; i < n; i++)
            if (rem[i] > rem[best])
                best = i;
        counts[best]++;
        rem[best] = -1.0;
    }
}

static int build_mix(const calib_set *const *parts, const calib_spec *sp, int32_t *ids,
                     vl_err *err)
{
    int counts[CALIB_MAX_PARTS], total = 0;
    calib_apportion(sp->weight, sp->n_parts, sp->n_seq, counts);
    for (int i = 0; i < sp->n_parts; i++) {
        if (counts[i] > parts[i]->n_seq)
            return vl_errf(err, VL_ERANGE, "set %s: mix needs %d sequences of %s, which has %d",
                           sp->name, counts[i], parts[i]->spec.name, parts[i]->n_seq);
        total += parts[i]->n_seq;
    }
    rng *r = NULL;
    int rc = rng_new_child(&r, sp->seed, "calib.mix", err);
    int *pick = vl_malloc((size_t)sp->n_seq * 2 * sizeof *pick); /* (part, sequence) pairs */
    int *idx = vl_malloc((size_t)total * sizeof *idx);
    if (rc == 0 && (!pick || !idx))
        rc = vl_errf(err, VL_ENOMEM, "set %s: out of memory", sp->name);
    for (int i = 0, k = 0; rc == 0 && i < sp->n_parts; i++) {
        /* a seeded sample without replacement: the first counts[i] of a shuffled index list */
        for (int s = 0; s < parts[i]->n_seq; s++)
            idx[s] = s;
        rng_shuffle(r, idx, (size_t)parts[i]->n_seq, sizeof *idx);
        for (int s = 0; s < counts[i]; s++, k++) {
            pick[2 * k] = i;
            pick[2 * k + 1] = idx[s];
        }
    }
    if (rc == 0) {
        rng_shuffle(r, pick, (size_t)sp->n_seq, 2 * sizeof *pick); /* interleave the parts */
        size_t L = (size_t)sp->seq_len;
        for (int k = 0; k < sp->n_seq; k++)
            memcpy(ids + k * L, parts[pick[2 * k]]->ids + (size_t)pick[2 * k + 1] * L,
                   L * sizeof *ids);
    }
    vl_free(pick);
    vl_free(idx);
    rng_free(r);
    return rc;
}

/* ---------------------------------------------------------------- noise */

static int build_uniform(const calib_env *env, const calib_spec *sp, int32_t *ids, vl_err *err)
{
    if (!env->tok)
        return vl_errf(err, VL_EARG, "set %s: noise:uniform needs a tokenizer", sp->name);
    size_t V = tok_vocab_size(env->tok);
    if (env->m && (size_t)model_config(env->m)->vocab < V)
        V = (size_t)model_config(env->m)->vocab;
    int32_t *ok = vl_malloc(V * sizeof *ok), n_ok = 0;
    if (!ok)
        return vl_errf(err, VL_ENOMEM, "set %s: out of memory", sp->name);
    for (int32_t id = 0; (size_t)id < V; id++)
        if (tok_id_to_token(env->tok, id) && !tok_is_added(env->tok, id) &&
            id != tok_eos_id(env->tok))
            ok[n_ok++] = id;
    rng *r = NULL;
    int rc = n_ok ? rng_new_child(&r, sp->seed, "calib.noise.uniform", err)
                  : vl_errf(err, VL_ECONFIG, "set %s: no ordinary token ids", sp->name);
    for (size_t i = 0; rc == 0 && i < (size_t)sp->n_seq * (size_t)sp->seq_len; i++)
        ids[i] = ok[rng_uniform_int(r, (uint64_t)n_ok)];
    rng_free(r);
    vl_free(ok);
    return rc;
}

/* Unicode blocks for random text: printable ASCII, Latin-1 letters + Latin Extended-A/B,
 * Greek, Cyrillic, kana, CJK unified ideographs, emoji (no surrogates, no combining marks). */
static const uint32_t byte_blocks[][2] = {
    {0x20, 0x7E},     {0xC0, 0x24F},    {0x391, 0x3C9},   {0x410, 0x44F},
    {0x3041, 0x30FF}, {0x4E00, 0x9FFF}, {0x1F300, 0x1F64F},
};

/* One sequence: random text of `ncp` code points, doubled until it gives L tokens. */
static int bytes_sequence(tok_tokenizer *tok, rng *r, int32_t *out, int L, const char *name,
                          vl_err *err)
{
    const size_t nb = sizeof byte_blocks / sizeof byte_blocks[0];
    for (size_t ncp = (size_t)L; ; ncp *= 2) {
        char *text = vl_malloc(4 * ncp);
        if (!text)
            return vl_errf(err, VL_ENOMEM, "set %s: out of memory", name);
        size_t len = 0;
        for (size_t i = 0; i < ncp; i++) {
            const uint32_t *b = byte_blocks[rng_uniform_int(r, nb)];
            len += (size_t)utf8_put(b[0] + (uint32_t)rng_uniform_int(r, b[1] - b[0] + 1),
                                    text + len);
        }
        int32_t *t = NULL;
        size_t n = 0;
        int rc = tok_encode(tok, text, len, &t, &n, err);
        vl_free(text);
        if (rc)
            return vl_errctx(err, rc, "set %s", name);
        if (n >= (size_t)L)
            memcpy(out, t, (size_t)L * sizeof *out);
        vl_free(t);
        if (n >= (size_t)L)
            return 0;
    }
}

static int build_bytes(const calib_env *env, const calib_spec *sp, int32_t *ids, vl_err *err)
{
    if (!env->tok)
        return vl_errf(err, VL_EARG, "set %s: noise:bytes needs a tokenizer", sp->name);
    rng *r = NULL;
    int rc = rng_new_child(&r, sp->seed, "calib.noise.bytes", err);
    for (int s = 0; rc == 0 && s < sp->n_seq; s++)
        rc = bytes_sequence(env->tok, r, ids + (size_t)s * sp->seq_len, sp->seq_len, sp->name,
                            err);
    rng_free(r);
    return rc;
}

static int build_shuffle(const calib_set *src, const calib_spec *sp, int32_t *ids, vl_err *err)
{
    size_t n = (size_t)src->n_seq * (size_t)src->seq_len;
    int32_t *all = vl_malloc(n * sizeof *all);
    if (!all)
        return vl_errf(err, VL_ENOMEM, "set %s: out of memory", sp->name);
    memcpy(all, src->ids, n * sizeof *all);
    rng *r = NULL;
    int rc = rng_new_child(&r, sp->seed, "calib.noise.shuffle", err);
    if (rc == 0) {
        rng_shuffle(r, all, n, sizeof *all);
        memcpy(ids, all, (size_t)sp->n_seq * (size_t)sp->seq_len * sizeof *ids);
    }
    rng_free(r);
    vl_free(all);
    return rc;
}

/* ---------------------------------------------------------------- the book */

int calib_book_new(calib_book **out, const calib_env *env, vl_err *err)
{
    *out = NULL;
    if (env->batch <= 0)
        return vl_errf(err, VL_EARG, "calib: batch %d (must be > 0)", env->batch);
    calib_book *b = vl_calloc(1, sizeof *b);
    if (!b)
        return vl_errf(err, VL_ENOMEM, "calib: out of memory");
    b->env = *env;
    *out = b;
    return 0;
}

int calib_book_count(const calib_book *b) { return b->n; }

const calib_set *calib_book_set(const calib_book *b, int i)
{
    return i >= 0 && i < b->n ? &b->sets[i] : NULL;
}

const calib_set *calib_book_find(const calib_book *b, const char *name)
{
    for (int i = 0; i < b->n; i++)
        if (!strcmp(b->sets[i].spec.name, name))
            return &b->sets[i];
    return NULL;
}

/* Mean entropy per sequence of set `src` (index into the book), computed once. */
static int pool_entropy(calib_book *b, const calib_set *src, const double **out, vl_err *err)
{
    int i = (int)(src - b->sets);
    if (!b->seq_entropy[i]) {
        double *e = vl_malloc((size_t)src->n_seq * sizeof *e);
        if (!e)
            return vl_errf(err, VL_ENOMEM, "calib: out of memory");
        int rc = calib_seq_entropy(b->env.m, src->ids, src->n_seq, src->seq_len, b->env.batch,
                                   e, err);
        if (rc) {
            vl_free(e);
            return rc;
        }
        b->seq_entropy[i] = e;
    }
    *out = b->seq_entropy[i];
    return 0;
}

/* Resolve references, fix the actual shape (sp is the book's copy, adjusted in place). */
static int resolve(calib_book *b, calib_spec *sp, const calib_set **refs, vl_err *err)
{
    if (calib_book_find(b, sp->name))
        return vl_errf(err, VL_EARG, "set %s: defined twice", sp->name);
    for (int i = 0; i < sp->n_parts; i++) {
        refs[i] = calib_book_find(b, sp->part[i]);
        if (!refs[i])
            return vl_errf(err, VL_EARG, "set %s: refers to set %s, not defined before it",
                           sp->name, sp->part[i]);
    }
    if ((sp->kind == CALIB_SELF || sp->kind == CALIB_ENTROPY) && !b->env.m)
        return vl_errf(err, VL_EARG, "set %s: %s needs the model", sp->name,
                       calib_kind_name(sp->kind));
    if (sp->kind == CALIB_MIX) {
        int L = refs[0]->seq_len;
        for (int i = 1; i < sp->n_parts; i++)
            if (refs[i]->seq_len != L)
                return vl_errf(err, VL_ESHAPE, "set %s: parts %s and %s differ in length "
                               "(%d vs %d)", sp->name, refs[0]->spec.name, refs[i]->spec.name,
                               L, refs[i]->seq_len);
        if ((sp->given & CALIB_GIVEN_LEN) && sp->seq_len != L)
            return vl_errf(err, VL_ESHAPE, "set %s: len=%d but its parts have length %d",
                           sp->name, sp->seq_len, L);
        sp->seq_len = L;
    } else if (sp->kind == CALIB_SHUFFLE) {
        const calib_set *s = refs[0];
        if (!(sp->given & CALIB_GIVEN_SEQS))
            sp->n_seq = s->n_seq;
        if (!(sp->given & CALIB_GIVEN_LEN))
            sp->seq_len = s->seq_len;
        if ((int64_t)sp->n_seq * sp->seq_len > (int64_t)s->n_seq * s->seq_len)
            return vl_errf(err, VL_ERANGE, "set %s: needs %d × %d tokens, set %s has %d × %d",
                           sp->name, sp->n_seq, sp->seq_len, s->spec.name, s->n_seq,
                           s->seq_len);
    } else if (sp->kind == CALIB_ENTROPY) {
        sp->seq_len = refs[0]->seq_len;
        int n = refs[0]->n_seq;
        sp->n_seq = n * (sp->bucket + 1) / 3 - n * sp->bucket / 3;
        if (sp->n_seq == 0)
            return vl_errf(err, VL_ERANGE, "set %s: pool %s has %d sequences; bucket is empty",
                           sp->name, refs[0]->spec.name, n);
    }
    if ((int64_t)sp->n_seq * sp->seq_len > CALIB_MAX_TOKENS)
        return vl_errf(err, VL_EARG, "set %s: %d × %d tokens is too many", sp->name, sp->n_seq,
                       sp->seq_len);
    return 0;
}

int calib_book_add(calib_book *b, const calib_spec *spec, vl_err *err)
{
    calib_spec sp = *spec;
    const calib_set *refs[CALIB_MAX_PARTS];
    int rc;
    if (b->n == b->cap) { /* grow first: refs point into b->sets */
        int cap = b->cap ? 2 * b->cap : 8;
        calib_set *s = vl_realloc(b->sets, (size_t)cap * sizeof *s);
        if (s)
            b->sets = s;
        double **e = s ? vl_realloc(b->seq_entropy, (size_t)cap * sizeof *e) : NULL;
        if (!e)
            return vl_errf(err, VL_ENOMEM, "calib: out of memory");
        b->seq_entropy = e;
        b->cap = cap;
    }
    if ((rc = resolve(b, &sp, refs, err)))
        return rc;
    int32_t *ids = vl_malloc((size_t)sp.n_seq * (size_t)sp.seq_len * sizeof *ids);
    if (!ids)
        return vl_errf(err, VL_ENOMEM, "set %s: out of memory", sp.name);
    const double *ent = NULL;
    switch (sp.kind) {
    case CALIB_FILE: rc = build_file(&b->env, &sp, ids, err); break;
    case CALIB_MIX: rc = build_mix(refs, &sp, ids, err); break;
    case CALIB_UNIFORM: rc = build_uniform(&b->env, &sp, ids, err); break;
    case CALIB_BYTES: rc = build_bytes(&b->env, &sp, ids, err); break;
    case CALIB_SHUFFLE: rc = build_shuffle(refs[0], &sp, ids, err); break;
    case CALIB_SELF: rc = calib_build_self(&b->env, &sp, ids, err); break;
    case CALIB_ENTROPY:
        rc = pool_entropy(b, refs[0], &ent, err);
        if (rc == 0)
            rc = calib_build_bucket(refs[0], ent, &sp, ids, err);
        break;
    default: VL_ASSERT(0);
    }
    if (rc) {
        vl_free(ids);
        return rc;
    }
    calib_set *s = &b->sets[b->n];
    s->spec = sp;
    s->n_seq = sp.n_seq;
    s->seq_len = sp.seq_len;
    s->ids = ids;
    b->seq_entropy[b->n++] = NULL;
    return 0;
}

void calib_book_free(calib_book *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->n; i++) {
        vl_free(b->sets[i].ids);
        vl_free(b->seq_entropy[i]);
    }
    vl_free(b->sets);
    vl_free(b->seq_entropy);
    vl_free(b);
}
