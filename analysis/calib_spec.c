/* analysis/calib_spec.c — parsing of calibration-set specs (grammar in calib.h). */
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

static int spec_err(vl_err *err, const char *text, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int spec_err(vl_err *err, const char *text, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vl_errf(err, VL_EARG, "set spec \"%.200s\": %s", text, msg);
}

/* Every parse error: one line naming the spec (TEXT in scope). */
#define SPEC_ERR(...) spec_err(err, text, __VA_ARGS__)

static int parse_mix(calib_spec *o, const char *p, const char *text, vl_err *err)
{
    if (!*p)
        return SPEC_ERR("mix: needs parts, e.g. mix:en*0.5+zh*0.5");
    while (*p) {
        if (o->n_parts == CALIB_MAX_PARTS)
            return SPEC_ERR("mix: more than %d parts", CALIB_MAX_PARTS);
        size_t n = strcspn(p, "+");
        const char *star = memchr(p, '*', n);
        size_t nn = star ? (size_t)(star - p) : n;
        int i = o->n_parts;
        if (take_name(o->part[i], p, nn))
            return SPEC_ERR("mix: bad set name \"%.*s\"", (int)nn, p);
        o->weight[i] = 1.0;
        if (star && parse_pos_double(star + 1, n - nn - 1, &o->weight[i]))
            return SPEC_ERR("mix: weight of %s is \"%.*s\", not a positive number", o->part[i],
                            (int)(n - nn - 1), star + 1);
        for (int j = 0; j < i; j++)
            if (!strcmp(o->part[j], o->part[i]))
                return SPEC_ERR("mix: set %s listed twice", o->part[i]);
        o->n_parts++;
        p += n;
        if (*p == '+' && !*++p)
            return SPEC_ERR("mix: empty part after '+'");
    }
    return 0;
}

static int parse_source(calib_spec *o, const char *text, vl_err *err)
{
    const char *s = o->source;
    if (!strncmp(s, "mix:", 4)) {
        o->kind = CALIB_MIX;
        return parse_mix(o, s + 4, text, err);
    }
    if (!strncmp(s, "noise:", 6)) {
        const char *k = s + 6;
        if (!strcmp(k, "uniform")) {
            o->kind = CALIB_UNIFORM;
        } else if (!strcmp(k, "bytes")) {
            o->kind = CALIB_BYTES;
        } else if (!strncmp(k, "shuffle:", 8)) {
            o->kind = CALIB_SHUFFLE;
            o->n_parts = 1;
            if (take_name(o->part[0], k + 8, strlen(k + 8)))
                return SPEC_ERR("noise:shuffle: bad set name \"%s\"", k + 8);
        } else {
            return SPEC_ERR("unknown noise kind \"%s\" (uniform, bytes, shuffle:SET)", k);
        }
        return 0;
    }
    if (!strncmp(s, "self:", 5)) {
        o->kind = CALIB_SELF;
        if (strncmp(s + 5, "T=", 2) || parse_pos_double(s + 7, strlen(s + 7), &o->temperature))
            return SPEC_ERR("self: expects self:T=X with a temperature X > 0");
        return 0;
    }
    if (!strncmp(s, "entropy:", 8)) {
        o->kind = CALIB_ENTROPY;
        o->n_parts = 1;
        const char *set = s + 8, *colon = strchr(set, ':');
        if (!colon || take_name(o->part[0], set, (size_t)(colon - set)))
            return SPEC_ERR("entropy: expects entropy:SET:low|mid|high");
        static const char *const buckets[3] = {"low", "mid", "high"};
        o->bucket = -1;
        for (int i = 0; i < 3; i++)
            if (!strcmp(colon + 1, buckets[i]))
                o->bucket = i;
        if (o->bucket < 0)
            return SPEC_ERR("entropy: bucket \"%s\" is not low, mid or high", colon + 1);
        return 0;
    }
    o->kind = CALIB_FILE;
    return 0;
}

/* ---------------------------------------------------------------- options */

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
        return SPEC_ERR("bad set name \"%.*s\" (1-%d of A-Z a-z 0-9 _ . -)", (int)(eq - text),
                        text, CALIB_NAME_MAX - 1);
    const char *src = eq + 1;
    size_t sn = strcspn(src, ",");
    if (sn == 0)
        return SPEC_ERR("empty source");
    if (sn >= CALIB_SOURCE_MAX)
        return SPEC_ERR("source longer than %d bytes", CALIB_SOURCE_MAX - 1);
    memcpy(o.source, src, sn);
    o.source[sn] = '\0';
    int rc = parse_source(&o, text, err);
    if (rc)
        return rc;
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
