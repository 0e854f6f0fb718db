/* alloc/qfmt.c — format names, the menu spec parser and bit accounting (see qfmt.h). */
#include "qfmt.h"

#include "../core/num.h"
#include "ggml_fmt.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- constants */

enum { SCALE_BITS = 16 }; /* fp16 scale per group */

const int qfmt_groups[QFMT_N_GROUPS] = {16, 20, 24, 32, 48, 64, 128, 0};

static int group_ok(int g)
{
    for (int i = 0; i < QFMT_N_GROUPS; i++)
        if (g == qfmt_groups[i])
            return 1;
    return 0;
}

static const char *const method_names[] = {[QFMT_RTN] = "rtn", [QFMT_GPTQ] = "gptq", [QFMT_GGML] = "ggml"};

/* ---------------------------------------------------------------- single formats */

int qfmt_check(const qfmt *f, vl_err *err)
{
    if (f->method == QFMT_GGML) {
        if (qfmt_ggml_type(f) < 0 || qfmt_ggml_type(f) >= GGF_COUNT)
            return vl_errf(err, VL_ECONFIG, "format: unknown ggml type %d", qfmt_ggml_type(f));
        if (f->group || f->sym || f->rot != QFMT_ROT_NONE)
            return vl_errf(err, VL_ECONFIG, "format ggml-%s: group/sym/rotation must be 0/none",
                           ggf_get((ggf_type)qfmt_ggml_type(f))->name);
        return 0;
    }
    if (f->method != QFMT_RTN && f->method != QFMT_GPTQ)
        return vl_errf(err, VL_ECONFIG, "format: unknown method %d", (int)f->method);
    if (f->bits < 1 || f->bits > 8)
        return vl_errf(err, VL_ECONFIG, "format: bits %d out of range 1..8", f->bits);
    if (!group_ok(f->group))
        return vl_errf(err, VL_ECONFIG,
                       "format: group size %d not one of 16, 20, 24, 32, 48, 64, 128, 0 (row)",
                       f->group);
    if (f->sym != 0 && f->sym != 1)
        return vl_errf(err, VL_ECONFIG, "format: sym flag %d not 0 or 1", f->sym);
    if (f->rot != QFMT_ROT_NONE && f->rot != QFMT_ROT_HAD)
        return vl_errf(err, VL_ECONFIG, "format: unknown rotation %d", (int)f->rot);
    return 0;
}

char *qfmt_name(const qfmt *f, char buf[QFMT_NAME_MAX])
{
    VL_ASSERT(qfmt_check(f, NULL) == 0);
    if (f->method == QFMT_GGML) {
        snprintf(buf, QFMT_NAME_MAX, "ggml-%s", ggf_get((ggf_type)qfmt_ggml_type(f))->name);
        return buf;
    }
    char g[8];
    if (f->group)
        snprintf(g, sizeof g, "g%d", f->group);
    else
        snprintf(g, sizeof g, "row");
    snprintf(buf, QFMT_NAME_MAX, "%s-b%d-%s-%s%s", method_names[f->method], f->bits, g,
             f->sym ? "sym" : "asym", f->rot == QFMT_ROT_HAD ? "-had" : "");
    return buf;
}

int qfmt_parse(qfmt *out, const char *name, vl_err *err)
{
    if (strchr(name, ':')) { /* a one-format menu spec: "rtn:b=8:g=64" */
        qfmt_menu m = {0, NULL};
        int rc = qfmt_menu_parse(&m, name, err);
        if (!rc && m.n != 1)
            rc = vl_errf(err, VL_ECONFIG, "format \"%s\": the menu spec names %d formats, one "
                         "is asked for", name, m.n);
        if (!rc)
            *out = m.v[0];
        qfmt_menu_free(&m);
        return rc;
    }
    /* Try every valid format and compare names: 2·8·8·2·2 = 512 candidates, cheap, and the
     * parser can never disagree with qfmt_name. */
    int gt = strncmp(name, "ggml-", 5) ? -1 : ggf_from_name(name + 5);
    if (gt >= 0) {
        qfmt f = {QFMT_GGML, gt, 0, 0, QFMT_ROT_NONE};
        *out = f;
        return 0;
    }
    for (int m = 0; m < 2; m++)
        for (int b = 1; b <= 8; b++)
            for (int gi = 0; gi < QFMT_N_GROUPS; gi++)
                for (int s = 0; s < 2; s++)
                    for (int r = 0; r < 2; r++) {
                        qfmt f = {(qfmt_method)m, b, qfmt_groups[gi], s, (qfmt_rot)r};
                        char buf[QFMT_NAME_MAX];
                        if (strcmp(qfmt_name(&f, buf), name) == 0) {
                            *out = f;
                            return 0;
                        }
                    }
    return vl_errf(err, VL_ECONFIG,
                   "format \"%s\": not a format name (expected e.g. rtn-b2-g64-asym, "
                   "gptq-b3-g128-sym-had, rtn-b4-row-asym, ggml-q4_K)",
                   name);
}

int64_t qfmt_group_len(const qfmt *f, int64_t cols)
{
    return f->group ? f->group : cols;
}

int64_t qfmt_bits(const qfmt *f, int64_t rows, int64_t cols)
{
    VL_ASSERT(rows >= 1 && cols >= 1);
    if (f->method == QFMT_GGML) {
        const ggf_info *in = ggf_get((ggf_type)qfmt_ggml_type(f));
        return rows * ((cols + in->block - 1) / in->block) * in->bytes * 8;
    }
    int64_t g = qfmt_group_len(f, cols);
    int64_t groups = (cols + g - 1) / g; /* the last group may be partial */
    int64_t per_group = SCALE_BITS + (f->sym ? 0 : f->bits);
    return rows * cols * f->bits + rows * groups * per_group;
}

double qfmt_bpw(const qfmt *f, int64_t rows, int64_t cols)
{
    return (double)qfmt_bits(f, rows, cols) / ((double)rows * (double)cols);
}

/* ---------------------------------------------------------------- menu spec parser */

enum { MAX_VALS = 16, TOK_MAX = 256 };

/* One clause's option values, as lists. */
typedef struct {
    int nb, bits[MAX_VALS];
    int ng, group[MAX_VALS];
    int ns, sym[MAX_VALS];
    int nr, rot[MAX_VALS];
} clause_vals;

/* Copy [s, e) into a NUL-terminated token buffer (truncated for error messages only). */
static const char *tok(char buf[TOK_MAX], const char *s, const char *e)
{
    size_t n = (size_t)(e - s);
    if (n >= TOK_MAX)
        n = TOK_MAX - 1;
    memcpy(buf, s, n);
    buf[n] = 0;
    return buf;
}

/* Strict decimal integer in [s, e); -1 when not a number (or too long). */
static int parse_uint(const char *s, const char *e)
{
    int64_t v;
    if (e - s > 4 || *s == '-' || num_i64_n(s, (size_t)(e - s), 0, 9999, &v))
        return -1;
    return (int)v;
}

static int add_val(int *n, int *v, int x)
{
    for (int i = 0; i < *n; i++)
        if (v[i] == x)
            return 0;
    if (*n >= MAX_VALS)
        return -1;
    v[(*n)++] = x;
    return 0;
}

/* One list item [s, e) of key k into cv; 0 or -1 (bad value). */
static int parse_item(clause_vals *cv, char k, const char *s, const char *e)
{
    if (k == 'b') {
        const char *dots = NULL;
        for (const char *p = s; p + 1 < e; p++)
            if (p[0] == '.' && p[1] == '.') {
                dots = p;
                break;
            }
        int lo = parse_uint(s, dots ? dots : e), hi = dots ? parse_uint(dots + 2, e) : lo;
        if (lo < 1 || lo > 8 || hi < 1 || hi > 8 || hi < lo)
            return -1;
        for (int b = lo; b <= hi; b++)
            if (add_val(&cv->nb, cv->bits, b))
                return -1;
        return 0;
    }
    size_t n = (size_t)(e - s);
    int x;
    if (k == 'g') {
        x = (n == 3 && !memcmp(s, "row", 3)) ? 0 : parse_uint(s, e);
        if (!group_ok(x))
            return -1;
        return add_val(&cv->ng, cv->group, x);
    }
    if (k == 's') {
        if (n == 3 && !memcmp(s, "sym", 3))
            x = 1;
        else if (n == 4 && !memcmp(s, "asym", 4))
            x = 0;
        else
            return -1;
        return add_val(&cv->ns, cv->sym, x);
    }
    if (n == 4 && !memcmp(s, "none", 4))
        x = QFMT_ROT_NONE;
    else if (n == 3 && !memcmp(s, "had", 3))
        x = QFMT_ROT_HAD;
    else
        return -1;
    return add_val(&cv->nr, cv->rot, x);
}

/* Parse option "k=list" in [s, e). */
static int parse_option(clause_vals *cv, const char *spec, const char *s, const char *e,
                        vl_err *err)
{
    char t[TOK_MAX];
    static const char keys[] = "bgsr";
    if (e - s < 3 || s[1] != '=' || !strchr(keys, s[0]))
        return vl_errf(err, VL_ECONFIG,
                       "format spec \"%s\": bad option \"%s\" (expected b=, g=, s= or r=)", spec,
                       tok(t, s, e));
    const char *p = s + 2;
    while (p <= e) {
        const char *q = p;
        while (q < e && *q != ',')
            q++;
        if (parse_item(cv, s[0], p, q))
            return vl_errf(err, VL_ECONFIG, "format spec \"%s\": bad value \"%s\" in \"%s\"%s",
                           spec, tok(t, p, q), tok((char[TOK_MAX]){0}, s, e),
                           s[0] == 'b'   ? " (bits 1..8, ranges a..b)"
                           : s[0] == 'g' ? " (group 16, 20, 24, 32, 48, 64, 128 or row)"
                           : s[0] == 's' ? " (asym or sym)"
                                         : " (none or had)");
        p = q + 1;
    }
    return 0;
}

static int push(qfmt_menu *out, int *cap, const qfmt *f)
{
    for (int i = 0; i < out->n; i++)
        if (!memcmp(&out->v[i], f, sizeof *f))
            return 0;
    if (out->n == *cap) {
        int nc = *cap ? 2 * *cap : 32;
        qfmt *nv = vl_realloc(out->v, (size_t)nc * sizeof *nv);
        if (!nv)
            return VL_ENOMEM;
        out->v = nv;
        *cap = nc;
    }
    out->v[out->n++] = *f;
    return 0;
}

/* Append every combination of cv for method m; duplicates dropped. */
static int emit(qfmt_menu *out, int *cap, qfmt_method m, const clause_vals *cv, int add_had)
{
    for (int bi = 0; bi < cv->nb; bi++)
        for (int gi = 0; gi < cv->ng; gi++)
            for (int si = 0; si < cv->ns; si++)
                for (int ri = 0; ri < cv->nr + add_had; ri++) {
                    qfmt f = {m, cv->bits[bi], cv->group[gi], cv->sym[si],
                              ri < cv->nr ? (qfmt_rot)cv->rot[ri] : QFMT_ROT_HAD};
                    if (push(out, cap, &f))
                        return VL_ENOMEM;
                }
    return 0;
}

/* Clause "ggml:TYPE,TYPE,…": m points at the ':' (or the clause end q). */
static int add_ggml(qfmt_menu *out, int *cap, const char *spec, const char *m, const char *q,
                    vl_err *err)
{
    char t[TOK_MAX];
    if (m >= q || m + 1 >= q)
        return vl_errf(err, VL_ECONFIG, "format spec \"%s\": clause ggml needs types, e.g. "
                       "ggml:q2_K,iq2_xs", spec);
    for (const char *s = m + 1; s <= q;) {
        const char *e = s;
        while (e < q && *e != ',')
            e++;
        int gt = ggf_from_name(tok(t, s, e));
        if (gt < 0)
            return vl_errf(err, VL_ECONFIG, "format spec \"%s\": \"%s\" is not a llama.cpp type "
                           "(q4_0 q4_1 q5_0 q5_1 q8_0 q2_K..q6_K iq4_nl iq4_xs iq3_s iq3_xxs "
                           "iq2_s iq2_xs iq2_xxs iq1_s iq1_m f16 bf16 f32)", spec, t);
        qfmt f = {QFMT_GGML, gt, 0, 0, QFMT_ROT_NONE};
        if (push(out, cap, &f))
            return vl_errf(err, VL_ENOMEM, "format spec \"%s\": out of memory", spec);
        s = e + 1;
    }
    return 0;
}

int qfmt_menu_parse(qfmt_menu *out, const char *spec, vl_err *err)
{
    out->n = 0;
    out->v = NULL;
    char t[TOK_MAX];
    size_t len = strlen(spec);
    const char *end = spec + len;
    if (len == 0)
        return vl_errf(err, VL_ECONFIG, "format spec is empty");

    /* Pass 1 finds the 'hadamard' clause (it applies to clauses before it, too). */
    int had = 0;
    for (const char *p = spec; p <= end;) {
        const char *q = p;
        while (q < end && *q != ';')
            q++;
        if (q - p == 8 && !memcmp(p, "hadamard", 8))
            had = 1;
        p = q + 1;
    }

    int cap = 0, rc = 0, nclauses = 0;
    for (const char *p = spec; p <= end && rc == 0;) {
        const char *q = p;
        while (q < end && *q != ';')
            q++;
        if (q - p == 8 && !memcmp(p, "hadamard", 8)) {
            p = q + 1;
            continue;
        }
        const char *m = p;
        while (m < q && *m != ':')
            m++;
        qfmt_method meth;
        if (m - p == 4 && !memcmp(p, "ggml", 4)) {
            rc = add_ggml(out, &cap, spec, m, q, err);
            nclauses++;
            p = q + 1;
            continue;
        }
        if (m - p == 3 && !memcmp(p, "rtn", 3))
            meth = QFMT_RTN;
        else if (m - p == 4 && !memcmp(p, "gptq", 4))
            meth = QFMT_GPTQ;
        else {
            rc = vl_errf(err, VL_ECONFIG,
                         "format spec \"%s\": unknown method \"%s\" (expected rtn, gptq, ggml "
                         "or hadamard)",
                         spec, tok(t, p, m));
            break;
        }
        clause_vals cv = {0};
        for (const char *o = m; o < q && rc == 0;) {
            const char *os = o + 1, *oe = os;
            while (oe < q && *oe != ':')
                oe++;
            rc = parse_option(&cv, spec, os, oe, err);
            o = oe;
        }
        if (rc)
            break;
        if (cv.nb == 0) {
            rc = vl_errf(err, VL_ECONFIG, "format spec \"%s\": clause \"%s\" has no b= (bits)",
                         spec, tok(t, p, q));
            break;
        }
        if (cv.ng == 0)
            cv.group[cv.ng++] = 64;
        if (cv.ns == 0)
            cv.sym[cv.ns++] = 0;
        if (cv.nr == 0)
            cv.rot[cv.nr++] = QFMT_ROT_NONE;
        rc = emit(out, &cap, meth, &cv, had);
        if (rc == VL_ENOMEM)
            rc = vl_errf(err, VL_ENOMEM, "format spec \"%s\": out of memory", spec);
        nclauses++;
        p = q + 1;
    }
    if (rc == 0 && nclauses == 0)
        rc = vl_errf(err, VL_ECONFIG, "format spec \"%s\": no rtn or gptq clause (nor ggml)", spec);
    if (rc)
        qfmt_menu_free(out);
    return rc;
}

void qfmt_menu_free(qfmt_menu *m)
{
    if (!m)
        return;
    vl_free(m->v);
    m->v = NULL;
    m->n = 0;
}
