/* analysis/calib_spec.c — the one source grammar: calibration-set specs of the CLI
 * (`NAME=SOURCE,...`) and the SOURCE of the config's [calib.*]/[eval.*] sections (grammar in
 * calib.h). */
#include "calib.h"

#include "../core/num.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

static const char *const kind_names[CALIB_KIND_COUNT] = {
    [CALIB_FILE] = "file",       [CALIB_MIX] = "mix",         [CALIB_UNIFORM] = "noise:uniform",
    [CALIB_BYTES] = "noise:bytes", [CALIB_SHUFFLE] = "noise:shuffle", [CALIB_SELF] = "self",
    [CALIB_ENTROPY] = "entropy",
};

const char *calib_kind_name(calib_kind k)
{
    return k >= 0 && k < CALIB_KIND_COUNT ? kind_names[k] : "?";
}

static int valid_name(const char *s, size_t n)
{
    if (n == 0 || n >= CALIB_NAME_MAX || (s[0] == '.' && (n == 1 || (n == 2 && s[1] == '.'))))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '+' || c == '-'))
            return 0;
    }
    return 1;
}

int calib_name_ok(const char *name) { return valid_name(name, strlen(name)); }

/* Copy a set name [s, s+n) into dst; 0 or -1 if not a valid name. */
static int take_name(char *dst, const char *s, size_t n)
{
    if (!valid_name(s, n))
        return -1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

/* Whole string [s, s+n) as a non-negative integer ≤ max. */
static int parse_uint(const char *s, size_t n, unsigned long long max, unsigned long long *v)
{
    uint64_t x;
    if (num_u64_n(s, n, max, 0, &x))
        return -1;
    *v = x;
    return 0;
}

static int parse_pos_double(const char *s, size_t n, double *v)
{
    double x;
    if (num_f64_n(s, n, 0, DBL_MAX, &x) || !(x > 0))
        return -1;
    *v = x;
    return 0;
}

/* ---------------------------------------------------------------- sources */

static int src_err(vl_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int src_err(vl_err *err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vl_errf(err, VL_EARG, "%s", msg);
}

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* [*b, *e) without the blanks at either end. */
static void trim(const char **b, const char **e)
{
    while (*b < *e && is_blank(**b))
        (*b)++;
    while (*e > *b && is_blank((*e)[-1]))
        (*e)--;
}

/* mix:A*w+B*w...: blanks around parts, names and weights are allowed (a name holds none). */
static int parse_mix(calib_spec *o, const char *p, vl_err *err)
{
    const char *end = p + strlen(p);
    trim(&p, &end);
    if (p == end)
        return src_err(err, "mix: needs parts, e.g. mix:en*0.5+zh*0.5");
    for (int i = 0;; i++) {
        const char *e = memchr(p, '+', (size_t)(end - p));
        const char *pe = e ? e : end, *ab = p, *ae = pe;
        trim(&ab, &ae);
        if (ab == ae)
            return src_err(err, "mix: empty part %d", i + 1);
        const char *star = memchr(p, '*', (size_t)(pe - p)), *nb = p, *ne = star ? star : pe;
        trim(&nb, &ne);
        if (i == CALIB_MAX_PARTS)
            return src_err(err, "mix: more than %d parts", CALIB_MAX_PARTS);
        if (take_name(o->part[i], nb, (size_t)(ne - nb)))
            return src_err(err, "mix: bad set name \"%.*s\" in part %d (want [A-Za-z0-9_.+-]+)",
                           (int)(ne - nb), nb, i + 1);
        o->weight[i] = 1.0;
        if (star) {
            const char *wb = star + 1, *we = pe;
            trim(&wb, &we);
            if (parse_pos_double(wb, (size_t)(we - wb), &o->weight[i]))
                return src_err(err, "mix weight of item %d must be > 0 (\"%.*s\" is not a "
                               "positive number)", i + 1, (int)(we - wb), wb);
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(o->part[j], o->part[i]))
                return src_err(err, "mix names set \"%s\" twice (a set listed twice: give it "
                               "one part with the sum of the weights)", o->part[i]);
        o->n_parts = i + 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

static int parse_ref(calib_spec *o, const char *s, size_t n, const char *what, vl_err *err)
{
    o->n_parts = 1;
    if (take_name(o->part[0], s, n))
        return src_err(err, "%s: bad set name \"%.*s\" (want [A-Za-z0-9_.+-]+)", what, (int)n,
                       s);
    return 0;
}

static const char *const bucket_names[3] = {"low", "mid", "high"};

const char *calib_bucket_name(int b) { return b >= 0 && b < 3 ? bucket_names[b] : "?"; }

int calib_source_parse(const char *s, calib_spec *o, vl_err *err)
{
    o->kind = CALIB_FILE;
    o->n_parts = 0;
    o->temperature = 0;
    o->bucket = 0;
    size_t n = strlen(s);
    if (n == 0)
        return src_err(err, "empty source");
    if (n >= CALIB_SOURCE_MAX)
        return src_err(err, "source longer than %d bytes", CALIB_SOURCE_MAX - 1);
    memmove(o->source, s, n + 1);
    s = o->source;
    if (!strncmp(s, "mix:", 4)) {
        o->kind = CALIB_MIX;
        return parse_mix(o, s + 4, err);
    }
    if (!strncmp(s, "noise:", 6)) {
        const char *k = s + 6;
        if (!strcmp(k, "uniform"))
            o->kind = CALIB_UNIFORM;
        else if (!strcmp(k, "bytes"))
            o->kind = CALIB_BYTES;
        else if (!strncmp(k, "shuffle:", 8)) {
            o->kind = CALIB_SHUFFLE;
            return parse_ref(o, k + 8, strlen(k + 8), "noise:shuffle", err);
        } else
            return src_err(err, "unknown noise kind \"%s\": \"%s\" is not noise:uniform, "
                           "noise:bytes or noise:shuffle:SET", k, s);
        return 0;
    }
    if (!strcmp(s, "self") || !strncmp(s, "self:", 5)) {
        o->kind = CALIB_SELF;
        o->temperature = 1.0;
        if (!s[4])
            return 0;
        const char *t = s + 7;
        if (strncmp(s + 5, "T=", 2))
            return src_err(err, "expected self or self:T=TEMPERATURE");
        if (num_f64(t, -DBL_MAX, DBL_MAX, &o->temperature))
            return src_err(err, "self temperature: \"%s\" is not a number", t);
        if (!(o->temperature > 0 && o->temperature <= 100))
            return src_err(err, "self temperature %s not in (0, 100]", t);
        return 0;
    }
    if (!strncmp(s, "entropy:", 8)) {
        o->kind = CALIB_ENTROPY;
        const char *set = s + 8, *colon = strchr(set, ':');
        if (!colon)
            return src_err(err, "expected entropy:SET:low|mid|high");
        int rc = parse_ref(o, set, (size_t)(colon - set), "entropy", err);
        if (rc)
            return rc;
        o->bucket = -1;
        for (int i = 0; i < 3; i++)
            if (!strcmp(colon + 1, bucket_names[i]))
                o->bucket = i;
        if (o->bucket < 0)
            return src_err(err, "entropy bucket \"%s\" is not low, mid or high", colon + 1);
        return 0;
    }
    return 0;
}

static void put_text(char *buf, size_t cap, size_t *n, const char *s)
{
    if (*n < cap)
        *n += (size_t)snprintf(buf + *n, cap - *n, "%s", s);
}

int calib_source_text(const calib_spec *o, const char *path, char *buf, size_t cap)
{
    size_t n = 0;
    char w[32];
    buf[0] = '\0';
    switch (o->kind) {
    case CALIB_MIX:
        put_text(buf, cap, &n, "mix:");
        for (int i = 0; i < o->n_parts; i++) {
            num_fmt_f64(w, o->weight[i]);
            put_text(buf, cap, &n, i ? "+" : "");
            put_text(buf, cap, &n, o->part[i]);
            put_text(buf, cap, &n, "*");
            put_text(buf, cap, &n, w);
        }
        break;
    case CALIB_SHUFFLE:
        put_text(buf, cap, &n, "noise:shuffle:");
        put_text(buf, cap, &n, o->part[0]);
        break;
    case CALIB_SELF:
        num_fmt_f64(w, o->temperature);
        put_text(buf, cap, &n, "self:T=");
        put_text(buf, cap, &n, w);
        break;
    case CALIB_ENTROPY:
        put_text(buf, cap, &n, "entropy:");
        put_text(buf, cap, &n, o->part[0]);
        put_text(buf, cap, &n, ":");
        put_text(buf, cap, &n, calib_bucket_name(o->bucket));
        break;
    case CALIB_FILE: put_text(buf, cap, &n, path ? path : o->source); break;
    default: put_text(buf, cap, &n, calib_kind_name(o->kind)); break;
    }
    return n < cap ? 0 : -1;
}

/* ---------------------------------------------------------------- options */

static int spec_err(vl_err *err, const char *text, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int spec_err(vl_err *err, const char *text, const char *fmt, ...)
{
    char msg[VL_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vl_errf(err, VL_EARG, "set spec \"%.200s\": %s", text, msg);
}

/* Every parse error: one line naming the spec (TEXT in scope). */
#define SPEC_ERR(...) spec_err(err, text, __VA_ARGS__)

static int parse_option(calib_spec *o, const char *p, size_t n, const char *text, vl_err *err)
{
    const char *eq = memchr(p, '=', n);
    if (!eq)
        return SPEC_ERR("option \"%.*s\" is not KEY=VALUE", (int)n, p);
    size_t kn = (size_t)(eq - p), vn = n - kn - 1;
    unsigned long long v;
    static const struct {
        const char *key;
        unsigned bit;
        unsigned long long min, max;
    } opts[] = {
        {"seqs", CALIB_GIVEN_SEQS, 1, 1u << 24},
        {"len", CALIB_GIVEN_LEN, 2, 1u << 20},
        {"seed", CALIB_GIVEN_SEED, 0, UINT64_MAX},
        {"skip", CALIB_GIVEN_SKIP, 0, 1u << 30},
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        if (strlen(opts[i].key) != kn || strncmp(p, opts[i].key, kn))
            continue;
        if (o->given & opts[i].bit)
            return SPEC_ERR("option %s given twice", opts[i].key);
        if (parse_uint(eq + 1, vn, opts[i].max, &v) || v < opts[i].min)
            return SPEC_ERR("%s=\"%.*s\": expects an integer in [%llu, %llu]", opts[i].key,
                            (int)vn, eq + 1, opts[i].min, opts[i].max);
        o->given |= opts[i].bit;
        if (opts[i].bit == CALIB_GIVEN_SEQS)
            o->n_seq = (int)v;
        else if (opts[i].bit == CALIB_GIVEN_LEN)
            o->seq_len = (int)v;
        else if (opts[i].bit == CALIB_GIVEN_SEED)
            o->seed = v;
        else
            o->skip = (int64_t)v;
        return 0;
    }
    return SPEC_ERR("unknown option \"%.*s\" (seqs, len, seed, skip)", (int)kn, p);
}

int calib_spec_parse(const char *text, calib_spec *out, vl_err *err)
{
    calib_spec o;
    memset(&o, 0, sizeof o);
    o.n_seq = CALIB_DEFAULT_SEQS;
    o.seq_len = CALIB_DEFAULT_LEN;
    for (const char *p = text; *p; p++) /* never echoed: messages stay one line */
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return vl_errf(err, VL_EARG, "set spec: control character 0x%02x at byte %d; refused",
                           (unsigned char)*p, (int)(p - text));
    const char *eq = strchr(text, '=');
    if (!eq)
        return SPEC_ERR("expects NAME=SOURCE[,seqs=N][,len=L][,seed=S]");
    if (take_name(o.name, text, (size_t)(eq - text)))
        return SPEC_ERR("bad set name \"%.*s\" (1-%d of A-Z a-z 0-9 _ . + -)", (int)(eq - text),
                        text, CALIB_NAME_MAX - 1);
    const char *src = eq + 1;
    size_t sn = strcspn(src, ",");
    if (sn >= CALIB_SOURCE_MAX)
        return SPEC_ERR("source longer than %d bytes", CALIB_SOURCE_MAX - 1);
    char stext[CALIB_SOURCE_MAX];
    memcpy(stext, src, sn);
    stext[sn] = '\0';
    vl_err sub = {0, ""};
    int rc = calib_source_parse(stext, &o, &sub);
    if (rc)
        return SPEC_ERR("%s", sub.msg);
    for (const char *p = src + sn; *p == ',';) {
        p++;
        size_t n = strcspn(p, ",");
        if ((rc = parse_option(&o, p, n, text, err)))
            return rc;
        p += n;
    }
    if (o.kind == CALIB_ENTROPY && (o.given & (CALIB_GIVEN_SEQS | CALIB_GIVEN_LEN)))
        return SPEC_ERR("entropy: seqs and len come from the bucket; do not give them");
    if (o.kind != CALIB_FILE && (o.given & CALIB_GIVEN_SKIP))
        return SPEC_ERR("skip= applies to corpus files only");
    *out = o;
    return 0;
}
