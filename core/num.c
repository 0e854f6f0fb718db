/* core/num.c — checked number parsing (see num.h). The only file that calls strtod. */
#include "num.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

/* Magnitude of a run of decimal digits; VL_ERANGE beyond UINT64_MAX. *len digits consumed. */
static int digits(const char *s, size_t *len, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            while (s[i] >= '0' && s[i] <= '9') /* consume the rest: a range, not a format, error */
                i++;
            *len = i;
            return VL_ERANGE;
        }
        v = v * 10 + d;
    }
    *len = i;
    *out = v;
    return i ? 0 : VL_EFORMAT;
}

int num_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    int neg = *s == '-';
    size_t n;
    uint64_t m = 0;
    int rc = digits(s + neg, &n, &m);
    if (rc == VL_EFORMAT || s[neg + n] != '\0')
        return VL_EFORMAT;
    if (rc)
        return rc;
    int64_t v;
    if (neg) {
        if (m > (uint64_t)INT64_MAX + 1)
            return VL_ERANGE;
        v = m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
    } else {
        if (m > (uint64_t)INT64_MAX)
            return VL_ERANGE;
        v = (int64_t)m;
    }
    if (v < lo || v > hi)
        return VL_ERANGE;
    *out = v;
    return 0;
}

int num_int(const char *s, int lo, int hi, int *out)
{
    int64_t v;
    int rc = num_i64(s, lo, hi, &v);
    if (!rc)
        *out = (int)v;
    return rc;
}

int num_long(const char *s, long lo, long hi, long *out)
{
    int64_t v;
    int rc = num_i64(s, lo, hi, &v);
    if (!rc)
        *out = (long)v;
    return rc;
}

int num_u64(const char *s, uint64_t hi, int hex, uint64_t *out)
{
    uint64_t v = 0;
    if (hex && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        const char *p = s + 2;
        int any = 0, over = 0;
        for (; *p; p++) {
            int d = *p >= '0' && *p <= '9'   ? *p - '0'
                    : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
                    : *p >= 'A' && *p <= 'F' ? *p - 'A' + 10
                                             : -1;
            if (d < 0)
                return VL_EFORMAT;
            over |= v >> 60 != 0;
            v = v << 4 | (uint64_t)d;
            any = 1;
        }
        if (!any)
            return VL_EFORMAT;
        if (over)
            return VL_ERANGE;
    } else {
        size_t n;
        int rc = digits(s, &n, &v);
        if (rc == VL_EFORMAT || s[n] != '\0')
            return VL_EFORMAT;
        if (rc)
            return rc;
    }
    if (v > hi)
        return VL_ERANGE;
    *out = v;
    return 0;
}

int num_f64(const char *s, double lo, double hi, double *out)
{
    /* strtod skips leading space and reads "nan"/"inf": refused here before it sees them */
    if (!*s || !(*s == '-' || *s == '+' || *s == '.' || (*s >= '0' && *s <= '9')))
        return VL_EFORMAT;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end)
        return VL_EFORMAT;
    if (errno == ERANGE || !isfinite(v) || !(v >= lo && v <= hi))
        return VL_ERANGE;
    *out = v;
    return 0;
}

/* s[0..n) as a C string in buf (or VL_EFORMAT for a NUL inside, VL_ERANGE when too long). */
static int bounded(const char *s, size_t n, char *buf, size_t size)
{
    if (memchr(s, '\0', n))
        return VL_EFORMAT;
    if (n >= size)
        return VL_ERANGE;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return 0;
}

int num_i64_n(const char *s, size_t n, int64_t lo, int64_t hi, int64_t *out)
{
    char buf[32];
    int rc = bounded(s, n, buf, sizeof buf);
    if (rc == VL_ERANGE) /* 32+ bytes: a number only if all digits, then too large */
        rc = s[0] == '-' || (s[0] >= '0' && s[0] <= '9') ? VL_ERANGE : VL_EFORMAT;
    return rc ? rc : num_i64(buf, lo, hi, out);
}

int num_u64_n(const char *s, size_t n, uint64_t hi, int hex, uint64_t *out)
{
    char buf[32];
    int rc = bounded(s, n, buf, sizeof buf);
    if (rc == VL_ERANGE)
        rc = s[0] >= '0' && s[0] <= '9' ? VL_ERANGE : VL_EFORMAT;
    return rc ? rc : num_u64(buf, hi, hex, out);
}

int num_f64_n(const char *s, size_t n, double lo, double hi, double *out)
{
    char buf[400]; /* longer decimal spellings of a double carry no more precision */
    int rc = bounded(s, n, buf, sizeof buf);
    if (rc == VL_ERANGE)
        rc = VL_EFORMAT;
    return rc ? rc : num_f64(buf, lo, hi, out);
}

int num_digits(const char *s, const char **end, int64_t hi, int64_t *out)
{
    size_t n;
    uint64_t v = 0;
    int rc = digits(s, &n, &v);
    if (!rc && v > (uint64_t)hi)
        rc = VL_ERANGE;
    if (end)
        *end = s + n;
    if (!rc)
        *out = (int64_t)v;
    return rc;
}

int num_whole(double d, int64_t lo, int64_t hi, int64_t *out)
{
    /* [−2^63, 2^63) is exactly representable at both ends; the cast is defined inside it */
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != floor(d))
        return VL_ERANGE;
    int64_t v = (int64_t)d;
    if (v < lo || v > hi)
        return VL_ERANGE;
    *out = v;
    return 0;
}

int num_add_i64(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return VL_ERANGE;
    *out = r;
    return 0;
}

int num_mul_i64(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return VL_ERANGE;
    *out = r;
    return 0;
}

const char *num_why(int rc)
{
    return rc == VL_ERANGE ? "out of range" : rc ? "not a number" : "";
}

void num_fmt_f64(char buf[32], double v)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, 32, "%.*g", prec, v);
        double back;
        if (!num_f64(buf, -DBL_MAX, DBL_MAX, &back) && back == v)
            return;
    }
}
