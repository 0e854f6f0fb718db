/* experiments/expsrc.c — the config's calibration/evaluation set sources: the `source` key
 * through the one grammar (calib_source_parse, analysis/calib.h), corpus paths relative to the
 * config, and the reference/cycle check. The path rule is specified in expcfg.h. */
#define _POSIX_C_SOURCE 200809L
#include "expcfg_int.h"

#include "../core/num.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------------------------------- */
/* shared small helpers                                                                      */
/* ---------------------------------------------------------------------------------------- */

int exp_whyf(char *why, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, EXP_WHY, fmt, ap);
    va_end(ap);
    return code;
}

int exp_parse_double(const char *s, double *out, char *why)
{
    if (!*s)
        return exp_whyf(why, VL_ECONFIG, "empty number");
    int rc = num_f64(s, -DBL_MAX, DBL_MAX, out);
    if (rc == VL_EFORMAT)
        return exp_whyf(why, VL_ECONFIG, "\"%s\" is not a number", s);
    if (rc)
        return exp_whyf(why, VL_ECONFIG, "\"%s\" is out of range (not a finite double)", s);
    return 0;
}

void exp_slist_free(exp_slist *l)
{
    if (!l)
        return;
    for (int i = 0; i < l->n; i++)
        vl_free(l->v[i]);
    vl_free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Copy [b, e) trimmed of blanks into a new string. */
static char *dup_trim(const char *b, const char *e)
{
    while (b < e && (*b == ' ' || *b == '\t'))
        b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    char *s = vl_malloc((size_t)(e - b) + 1);
    if (s) {
        memcpy(s, b, (size_t)(e - b));
        s[e - b] = 0;
    }
    return s;
}

/* Split on sep into trimmed non-empty items. */
static int split(const char *value, char sep, exp_slist *out, char *why)
{
    int n = 1;
    for (const char *p = value; *p; p++)
        n += *p == sep;
    if (n > EXP_LIST_MAX)
        return exp_whyf(why, VL_ECONFIG, "more than %d items", EXP_LIST_MAX);
    out->n = 0;
    out->v = vl_calloc((size_t)n, sizeof *out->v);
    if (!out->v)
        return exp_whyf(why, VL_ENOMEM, "out of memory");
    const char *b = value;
    for (int i = 0; i < n; i++) {
        const char *e = strchr(b, sep);
        if (!e)
            e = b + strlen(b);
        char *item = dup_trim(b, e);
        if (!item) {
            exp_slist_free(out);
            return exp_whyf(why, VL_ENOMEM, "out of memory");
        }
        out->v[out->n++] = item;
        if (!*item) {
            exp_slist_free(out);
            return exp_whyf(why, VL_ECONFIG, "empty item %d in \"%s\"", i + 1, value);
        }
        b = e + 1;
    }
    return 0;
}

int exp_split_list(const char *value, exp_slist *out, char *why)
{
    return split(value, ',', out, why);
}

/* ---------------------------------------------------------------------------------------- */
/* the source key: the one grammar (analysis/calib_spec.c) plus the config's path rule        */
/* ---------------------------------------------------------------------------------------- */

static int is_regular_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The path rule: absolute as is; relative from the working directory, then from cfg_dir.
 * *out: the file found (vl_malloc'd). */
static int resolve_path(const char *text, const char *cfg_dir, char **out, char *why)
{
    /* "noize:uniform" is a typo, not a file name, unless such a file really exists */
    size_t k = strspn(text, "abcdefghijklmnopqrstuvwxyz");
    if (k > 0 && text[k] == ':' && !is_regular_file(text))
        return exp_whyf(why, VL_ECONFIG, "unknown source kind \"%.*s:\" (valid: a corpus "
                        "file path, mix:, noise:, self, entropy:)", (int)k, text);
    if (is_regular_file(text) || text[0] == '/' || !*cfg_dir) {
        if (!is_regular_file(text))
            return exp_whyf(why, VL_ECONFIG, "corpus file \"%s\" not found (or not a regular "
                            "file)", text);
        *out = vl_strdup(text);
    } else {
        size_t n = strlen(cfg_dir) + strlen(text) + 2;
        *out = vl_malloc(n);
        if (*out) {
            snprintf(*out, n, "%s/%s", cfg_dir, text);
            if (!is_regular_file(*out)) {
                int rc = exp_whyf(why, VL_ECONFIG, "corpus file \"%s\" not found (tried it "
                                  "from the working directory and as \"%s\")", text, *out);
                vl_free(*out);
                *out = NULL;
                return rc;
            }
        }
    }
    return *out ? 0 : exp_whyf(why, VL_ENOMEM, "out of memory");
}

int exp_source_parse(const char *text, const char *cfg_dir, exp_set *s, char *why)
{
    calib_spec o;
    memset(&o, 0, sizeof o);
    vl_err e = {0, ""};
    if (calib_source_parse(text, &o, &e))
        return exp_whyf(why, VL_ECONFIG, "%s", e.msg);
    /* a one-part mix is a copy of its part: in a config, a mistake */
    if (o.kind == CALIB_MIX && o.n_parts < 2)
        return exp_whyf(why, VL_ECONFIG, "mix needs at least two sets (mix:A*0.5+B*0.5)");
    char *resolved = NULL;
    if (o.kind == CALIB_FILE) {
        int rc = resolve_path(o.source, cfg_dir, &resolved, why);
        if (rc)
            return rc;
    }
    vl_free(s->resolved);
    s->resolved = resolved;
    s->src = o;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* references and cycles                                                                     */
/* ---------------------------------------------------------------------------------------- */

static int find_set(const exp_set *sets, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(sets[i].name, name))
            return i;
    return -1;
}

/* The names a source depends on, one at a time: k-th reference or NULL past the end. */
static const char *nth_ref(const calib_spec *s, int k)
{
    return k < s->n_parts ? s->part[k] : NULL; /* mix parts, the shuffle or entropy pool */
}

typedef struct {
    const char *path, *family;
    const exp_set *sets;
    int n;
    unsigned char *color;  /* 0 new, 1 on the DFS path, 2 done */
    int *stack, depth;
    vl_err *err;
} refwalk;

static int visit(refwalk *w, int i)
{
    w->color[i] = 1;
    w->stack[w->depth++] = i;
    const char *r;
    for (int k = 0; (r = nth_ref(&w->sets[i].src, k)); k++) {
        int j = find_set(w->sets, w->n, r);
        VL_ASSERT(j >= 0);  /* existence was checked before the walk */
        if (w->color[j] == 1) {
            char cyc[VL_ERR_MSG] = "";
            size_t len = 0;
            int from = w->depth - 1;
            while (w->stack[from] != j)
                from--;
            for (int d = from; d < w->depth && len < sizeof cyc; d++)
                len += (size_t)snprintf(cyc + len, sizeof cyc - len, "%s -> ",
                                        w->sets[w->stack[d]].name);
            return vl_errf(w->err, VL_ECONFIG, "%s:%d: [%s.%s] source: reference cycle %s%s",
                           w->path, w->sets[i].line, w->family, w->sets[i].name, cyc,
                           w->sets[j].name);
        }
        if (w->color[j] == 0) {
            int rc = visit(w, j);
            if (rc)
                return rc;
        }
    }
    w->color[i] = 2;
    w->depth--;
    return 0;
}

int exp_check_refs(const char *path, const char *family, const exp_set *sets, int n,
                   vl_err *err)
{
    for (int i = 0; i < n; i++) {
        const char *r;
        for (int k = 0; (r = nth_ref(&sets[i].src, k)); k++)
            if (find_set(sets, n, r) < 0)
                return vl_errf(err, VL_ECONFIG, "%s:%d: [%s.%s] source: \"%s\" names no "
                               "[%s.%s] section", path, sets[i].line, family, sets[i].name, r,
                               family, r);
    }
    if (n == 0)
        return 0;
    refwalk w = {path, family, sets, n, vl_calloc((size_t)n, 1),
                 vl_calloc((size_t)n, sizeof(int)), 0, err};
    int rc = 0;
    if (!w.color || !w.stack)
        rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
    for (int i = 0; !rc && i < n; i++)
        if (w.color[i] == 0)
            rc = visit(&w, i);
    vl_free(w.color);
    vl_free(w.stack);
    return rc;
}
