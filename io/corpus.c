/* io/corpus.c — corpus reading (UTF-8 check by core/utf8, RS-line split) and the sequence cut. */
#include "corpus.h"

#include "../core/rng.h"
#include "../core/utf8.h"
#include "../core/vfile.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define CORP_MAX_FILE ((size_t)1 << 34) /* 16 GiB: far above any calibration corpus */

/* ---------------------------------------------------------------- splitting */

static int blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \t\n\v\f\r", p[i]) || p[i] == '\0')
            return 0;
    return 1;
}

/* Append document [b, e) of c->buf after stripping "\n" at both ends (see corpus.h). */
static void add_doc(corp_corpus *c, size_t b, size_t e)
{
    while (b < e && c->buf[b] == '\n')
        b++;
    while (e > b && c->buf[e - 1] == '\n')
        e--;
    if (e == b || blank(c->buf + b, e - b))
        return;
    c->docs[c->n_docs].text = c->buf + b;
    c->docs[c->n_docs].len = e - b;
    c->n_docs++;
}

/* c->buf holds the text; fill c->docs. A document starts after a separator line and ends at
 * the next separator line's start. */
static int split(corp_corpus *c, vl_err *err)
{
    size_t ok = utf8_valid_prefix((const uint8_t *)c->buf, c->size);
    if (ok < c->size)
        return vl_errf(err, VL_EFORMAT, "%s: byte offset %zu: invalid UTF-8", c->path, ok);
    /* at most (separators + 1) documents; count separators first so one allocation suffices */
    size_t max_docs = 1;
    for (size_t i = 0; i < c->size; i++)
        if (c->buf[i] == '\x1e')
            max_docs++;
    if (max_docs > (size_t)(1 << 30))
        return vl_errf(err, VL_ERANGE, "%s: too many documents", c->path);
    c->docs = vl_malloc(max_docs * sizeof *c->docs);
    if (!c->docs)
        return vl_errf(err, VL_ENOMEM, "%s: out of memory for %zu documents", c->path, max_docs);
    size_t doc_start = 0, line = 0;
    while (line < c->size) {
        const char *nl = memchr(c->buf + line, '\n', c->size - line);
        size_t line_end = nl ? (size_t)(nl - c->buf) : c->size; /* excludes the "\n" */
        if (line_end - line == 1 && c->buf[line] == '\x1e') {
            add_doc(c, doc_start, line);
            doc_start = nl ? line_end + 1 : c->size;
        }
        line = nl ? line_end + 1 : c->size;
    }
    add_doc(c, doc_start, c->size);
    return 0;
}

/* ---------------------------------------------------------------- lifecycle */

static corp_corpus *corp_alloc(const char *name)
{
    corp_corpus *c = vl_calloc(1, sizeof *c);
    if (c && !(c->path = vl_strdup(name))) {
        vl_free(c);
        c = NULL;
    }
    return c;
}

int corp_parse(corp_corpus **out, const char *name, const char *data, size_t len, vl_err *err)
{
    *out = NULL;
    corp_corpus *c = corp_alloc(name);
    if (!c || !(c->buf = vl_malloc(len ? len : 1))) {
        corp_free(c);
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", name);
    }
    if (len)
        memcpy(c->buf, data, len);
    c->size = len;
    int rc = split(c, err);
    if (rc) {
        corp_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int corp_load(corp_corpus **out, const char *path, vl_err *err)
{
    *out = NULL;
    corp_corpus *c = corp_alloc(path);
    if (!c)
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
    int rc = vf_slurp(path, CORP_MAX_FILE, &c->buf, &c->size, err);
    if (!rc)
        rc = split(c, err);
    if (rc) {
        corp_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void corp_free(corp_corpus *c)
{
    if (!c)
        return;
    vl_free(c->docs);
    vl_free(c->buf);
    vl_free(c->path);
    vl_free(c);
}

/* ---------------------------------------------------------------- sequences */

int corp_cut(int32_t *out, const corp_tokdoc *docs, int n_docs, int32_t eos_id, uint64_t seed,
             int n_seq, int len, const char *set_name, vl_err *err)
{
    if (n_seq <= 0 || len <= 0 || n_docs < 0)
        return vl_errf(err, VL_EARG, "set %s: need n_seq > 0 and len > 0 (got %d, %d)",
                       set_name, n_seq, len);
    long long need = (long long)n_seq * len, have = 0;
    for (int d = 0; d < n_docs; d++)
        have += (long long)(docs[d].n > 0 ? docs[d].n : 0) + 1; /* + EOS */
    if (have < need)
        return vl_errf(err, VL_ERANGE, "set %s: corpus has %lld tokens, needs %d × %d = %lld",
                       set_name, have, n_seq, len, need);
    int *order = vl_malloc((size_t)(n_docs ? n_docs : 1) * sizeof *order);
    rng *r = NULL;
    int rc = order ? rng_new_child(&r, seed, "corpus.shuffle", err)
                   : vl_errf(err, VL_ENOMEM, "set %s: out of memory", set_name);
    if (rc) {
        vl_free(order);
        return rc;
    }
    for (int d = 0; d < n_docs; d++)
        order[d] = d;
    rng_shuffle(r, order, (size_t)n_docs, sizeof *order);
    rng_free(r);
    long long pos = 0;
    for (int i = 0; i < n_docs && pos < need; i++) {
        const corp_tokdoc *d = &docs[order[i]];
        for (int t = 0; t < d->n && pos < need; t++)
            out[pos++] = d->ids[t];
        if (pos < need)
            out[pos++] = eos_id;
    }
    vl_free(order);
    VL_ASSERT(pos == need);
    return 0;
}
