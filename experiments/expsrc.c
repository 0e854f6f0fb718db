/* experiments/expsrc.c — calibration/evaluation set sources: the grammar of
 * `vbrlab stats --set NAME=SOURCE`, corpus path resolution and the reference/cycle check.
 * The grammar and the path rule are specified in expcfg.h. */
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

void exp_fmt_double(char buf[32], double v)
{
    /* shortest exact spelling keeps the canonical text readable (0.1, not 0.10000000000000001) */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, 32, "%.*g", prec, v);
        double back;
        if (!num_f64(buf, -DBL_MAX, DBL_MAX, &back) && back == v)
            return;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* the grammar                                                                               */
/* ---------------------------------------------------------------------------------------- */

void exp_source_free(exp_source *src)
{
    if (!src)
        return;
    vl_free(src->path);
    vl_free(src->resolved);
    vl_free(src->ref);
    exp_slist_free(&src->mix);
    vl_free(src->mix_w);
    memset(src, 0, sizeof *src);
}

static int is_regular_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The path rule: absolute as is; relative from the working directory, then from cfg_dir. */
static int parse_path(const char *text, const char *cfg_dir, exp_source *src, char *why)
{
    src->kind = EXP_SRC_FILE;
    src->path = vl_strdup(text);
    if (!src->path)
        return exp_whyf(why, VL_ENOMEM, "out of memory");
    if (is_regular_file(text) || text[0] == '/' || !*cfg_dir) {
        if (!is_regular_file(text))
            return exp_whyf(why, VL_ECONFIG, "corpus file \"%s\" not found (or not a regular "
                            "file)", text);
        src->resolved = vl_strdup(text);
    } else {
        size_t n = strlen(cfg_dir) + strlen(text) + 2;
        src->resolved = vl_malloc(n);
        if (src->resolved) {
            snprintf(src->resolved, n, "%s/%s", cfg_dir, text);
            if (!is_regular_file(src->resolved))
                return exp_whyf(why, VL_ECONFIG, "corpus file \"%s\" not found (tried it from "
                                "the working directory and as \"%s\")", text, src->resolved);
        }
    }
    if (!src->resolved)
        return exp_whyf(why, VL_ENOMEM, "out of memory");
    return 0;
}

static int parse_mix(const char *body, exp_source *src, char *why)
{
    src->kind = EXP_SRC_MIX;
    int rc = split(body, '+', &src->mix, why);
    if (rc)
        return rc;
    if (src->mix.n < 2)
        return exp_whyf(why, VL_ECONFIG, "mix needs at least two sets (mix:A*0.5+B*0.5)");
    src->mix_w = vl_calloc((size_t)src->mix.n, sizeof *src->mix_w);
    if (!src->mix_w)
        return exp_whyf(why, VL_ENOMEM, "out of memory");
    for (int i = 0; i < src->mix.n; i++) {
        char *item = src->mix.v[i], *star = strchr(item, '*');
        src->mix_w[i] = 1.0;
        if (star) {
            *star = 0;  /* the item keeps only the name */
            char *w = dup_trim(star + 1, star + 1 + strlen(star + 1));
            if (!w)
                return exp_whyf(why, VL_ENOMEM, "out of memory");
            char sub[EXP_WHY];
            rc = exp_parse_double(w, &src->mix_w[i], sub);
            vl_free(w);
            if (rc)
                return exp_whyf(why, rc, "mix weight of item %d: %s", i + 1, sub);
            if (!(src->mix_w[i] > 0))
                return exp_whyf(why, VL_ECONFIG, "mix weight of item %d must be > 0", i + 1);
            for (char *e = star; e > item && (e[-1] == ' ' || e[-1] == '\t'); e--)
                e[-1] = 0;
        }
        if (!calib_name_ok(item))
            return exp_whyf(why, VL_ECONFIG, "mix item %d: bad set name \"%s\" (want "
                            "[A-Za-z0-9_.+-]+)", i + 1, item);
        for (int j = 0; j < i; j++)
            if (!strcmp(src->mix.v[j], item))
                return exp_whyf(why, VL_ECONFIG, "mix names set \"%s\" twice", item);
    }
    return 0;
}

static int set_ref(exp_source *src, const char *name, char *why)
{
    if (!calib_name_ok(name))
        return exp_whyf(why, VL_ECONFIG, "bad set name \"%s\" (want [A-Za-z0-9_.+-]+)", name);
    src->ref = vl_strdup(name);
    return src->ref ? 0 : exp_whyf(why, VL_ENOMEM, "out of memory");
}

static int parse_entropy(const char *body, exp_source *src, char *why)
{
    src->kind = EXP_SRC_ENTROPY;
    const char *colon = strrchr(body, ':');
    if (!colon)
        return exp_whyf(why, VL_ECONFIG, "expected entropy:SET:low|mid|high");
    int b;
    for (b = 0; b < EXP_BUCKET_COUNT; b++)
        if (!strcmp(colon + 1, exp_bucket_names[b]))
            break;
    if (b == EXP_BUCKET_COUNT)
        return exp_whyf(why, VL_ECONFIG, "entropy bucket \"%s\" is not low, mid or high",
                        colon + 1);
    src->bucket = (exp_bucket)b;
    char name[EXP_WHY];
    snprintf(name, sizeof name, "%.*s", (int)(colon - body), body);
    return set_ref(src, name, why);
}

static int parse_self(const char *body, exp_source *src, char *why)
{
    src->kind = EXP_SRC_SELF;
    src->temperature = 1.0;
    if (!body)
        return 0;
    if (strncmp(body, "T=", 2))
        return exp_whyf(why, VL_ECONFIG, "expected self or self:T=TEMPERATURE");
    char sub[EXP_WHY];
    int rc = exp_parse_double(body + 2, &src->temperature, sub);
    if (rc)
        return exp_whyf(why, rc, "self temperature: %s", sub);
    if (!(src->temperature > 0 && src->temperature <= 100))
        return exp_whyf(why, VL_ECONFIG, "self temperature %s not in (0, 100]", body + 2);
    return 0;
}

int exp_source_parse(const char *text, const char *cfg_dir, exp_source *src, char *why)
{
    int rc;
    memset(src, 0, sizeof *src);
    if (!*text)
        rc = exp_whyf(why, VL_ECONFIG, "empty source");
    else if (!strncmp(text, "mix:", 4))
        rc = parse_mix(text + 4, src, why);
    else if (!strcmp(text, "noise:uniform"))
        src->kind = EXP_SRC_NOISE_UNIFORM, rc = 0;
    else if (!strcmp(text, "noise:bytes"))
        src->kind = EXP_SRC_NOISE_BYTES, rc = 0;
    else if (!strncmp(text, "noise:shuffle:", 14))
        src->kind = EXP_SRC_NOISE_SHUFFLE, rc = set_ref(src, text + 14, why);
    else if (!strncmp(text, "noise:", 6))
        rc = exp_whyf(why, VL_ECONFIG, "noise source \"%s\" is not noise:uniform, noise:bytes "
                      "or noise:shuffle:SET", text);
    else if (!strcmp(text, "self") || !strncmp(text, "self:", 5))
        rc = parse_self(text[4] ? text + 5 : NULL, src, why);
    else if (!strncmp(text, "entropy:", 8))
        rc = parse_entropy(text + 8, src, why);
    else {
        /* "noize:uniform" is a typo, not a file name, unless such a file really exists */
        size_t k = strspn(text, "abcdefghijklmnopqrstuvwxyz");
        if (k > 0 && text[k] == ':' && !is_regular_file(text))
            rc = exp_whyf(why, VL_ECONFIG, "unknown source kind \"%.*s:\" (valid: a corpus "
                          "file path, mix:, noise:, self, entropy:)", (int)k, text);
        else
            rc = parse_path(text, cfg_dir, src, why);
    }
    if (rc)
        exp_source_free(src);
    return rc;
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
static const char *nth_ref(const exp_source *s, int k)
{
    if (s->kind == EXP_SRC_MIX)
        return k < s->mix.n ? s->mix.v[k] : NULL;
    if (s->kind == EXP_SRC_NOISE_SHUFFLE || s->kind == EXP_SRC_ENTROPY)
        return k == 0 ? s->ref : NULL;
    return NULL;
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
