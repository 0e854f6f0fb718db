/* alloc/xsel.c — routing shares, language-specific experts, their allocation (see xsel.h). */
#define _POSIX_C_SOURCE 200809L
#include "xsel.h"

#include "qfmt.h"

#include "../core/num.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int xs_shares(h5s_store *s, const char *set, int layer, double **share, int *E, vl_err *err)
{
    *share = NULL;
    *E = 0;
    char p[256];
    snprintf(p, sizeof p, "/stats/%s/layers/%02d/router/routed", set, layer);
    if (!h5s_exists(s, p))
        return vl_errf(err, VL_ENOTFOUND, "%s: no dataset %s (no router statistics)",
                       h5s_path(s), p);
    int64_t *cnt = NULL, sh[H5S_MAX_DIMS];
    int nd = 0;
    int rc = h5s_read(s, p, H5S_I64, (void **)&cnt, &nd, sh, err);
    if (!rc && (nd != 1 || sh[0] < 1 || sh[0] > 65536))
        rc = vl_errf(err, VL_ESHAPE, "%s: %s must be [E] with 1 ≤ E ≤ 65536", h5s_path(s), p);
    double tot = 0;
    for (int64_t e = 0; !rc && e < sh[0]; e++) {
        if (cnt[e] < 0)
            rc = vl_errf(err, VL_ERANGE, "%s: %s[%lld] = %lld is not a count", h5s_path(s), p,
                         (long long)e, (long long)cnt[e]);
        tot += (double)cnt[e];
    }
    if (!rc && !(*share = vl_malloc((size_t)sh[0] * sizeof **share)))
        rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", h5s_path(s));
    for (int64_t e = 0; !rc && e < sh[0]; e++)
        (*share)[e] = tot > 0 ? (double)cnt[e] / tot : 0.0;
    if (!rc)
        *E = (int)sh[0];
    vl_free(cnt);
    return rc;
}

void xs_pick(const double *a, const double *b, int E, int k, int *out)
{
    /* selection: k passes over E (a few dozen experts) */
    for (int i = 0; i < k; i++) {
        int best = -1;
        double br = 0;
        for (int e = 0; e < E; e++) {
            int taken = 0;
            for (int j = 0; j < i; j++)
                taken |= out[j] == e;
            double r = (b[e] + XS_EPS) / (a[e] + XS_EPS);
            if (!taken && (best < 0 || r > br)) {
                best = e;
                br = r;
            }
        }
        out[i] = best;
    }
}

int xs_alloc(qb_alloc *al, const model *m, const unsigned char *sel, int L, int E,
             const char *fmt, vl_err *err)
{
    int rc = 0, n = 0;
    for (size_t i = 0; !rc && i < model_tensor_count(m); i++) {
        const model_tensor *t = model_tensor_at(m, i);
        if (t->layer < 0 || t->layer >= L || t->expert < 0 || t->expert >= E ||
            !sel[(size_t)t->layer * E + t->expert])
            continue;
        rc = qb_alloc_add(al, t->name, fmt, err);
        n++;
    }
    if (!rc && n == 0)
        rc = vl_errf(err, VL_ENOTFOUND, "no routed-expert tensor selected");
    return rc;
}

/* The number right after the first KEY in [p, end), or −1. */
static int index_after(const char *p, const char *end, const char *key)
{
    size_t kl = strlen(key);
    for (const char *q = p; q + kl <= end; q++)
        if (!memcmp(q, key, kl)) {
            const char *rest;
            int64_t v;
            return num_digits(q + kl, &rest, 1 << 20, &v) || rest > end ? -1 : (int)v;
        }
    return -1;
}

int xs_expert_bits(const char *assignment, int L, int E, double *bits, vl_err *err)
{
    size_t n = (size_t)L * E;
    int *cnt = vl_calloc(n + 1, sizeof *cnt);
    if (!cnt)
        return vl_errf(err, VL_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        bits[i] = 0;
    int rc = 0, line = 0;
    for (const char *p = assignment; !rc && *p;) {
        const char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p);
        line++;
        const char *tab = memchr(p, '\t', (size_t)(end - p));
        if (end == p) {
            p = nl ? nl + 1 : end;
            continue;
        }
        int l = index_after(p, tab ? tab : end, "layers.");
        int e = index_after(p, tab ? tab : end, ".experts.");
        if (!tab)
            rc = vl_errf(err, VL_EFORMAT, "assignment line %d: no tab between tensor and format",
                         line);
        else if (l >= 0 && l < L && e >= 0 && e < E) {
            char f[64];
            size_t fl = (size_t)(end - tab - 1);
            qfmt q;
            vl_err fe = {0, ""};
            snprintf(f, sizeof f, "%.*s", (int)(fl < sizeof f ? fl : sizeof f - 1), tab + 1);
            if (qfmt_parse(&q, f, &fe))
                rc = vl_errf(err, VL_EFORMAT, "assignment line %d: %s", line, fe.msg);
            else {
                /* ggml block types: llama.cpp's bits per weight of a block-aligned row */
                bits[(size_t)l * E + e] += q.method == QFMT_GGML ? qfmt_bpw(&q, 1, 4096) : q.bits;
                cnt[(size_t)l * E + e]++;
            }
        }
        p = nl ? nl + 1 : end;
    }
    for (size_t i = 0; i < n; i++)
        bits[i] = cnt[i] ? bits[i] / cnt[i] : NAN;
    vl_free(cnt);
    return rc;
}
