/* core/err.c — error record helpers and the allocation hook. */
#include "err.h"

#include <stdarg.h>
#include <string.h>

/* Control characters in a message (a name or value echoed from a file) become \xNN, so every
 * message stays one line whatever the data held. */
static void one_line(char *msg)
{
    char out[VL_ERR_MSG];
    size_t j = 0;
    for (const char *p = msg; *p && j + 1 < sizeof out; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch < 0x20 || ch == 0x7f) {
            if (j + 5 >= sizeof out)
                break;
            j += (size_t)snprintf(out + j, sizeof out - j, "\\x%02x", ch);
        } else
            out[j++] = (char)ch;
    }
    out[j] = '\0';
    memcpy(msg, out, j + 1);
}

int vl_errf(vl_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        one_line(err->msg);
        err->code = code;
    }
    return code;
}

int vl_errctx(vl_err *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    char old[VL_ERR_MSG];
    memcpy(old, err->msg, sizeof old);
    old[VL_ERR_MSG - 1] = '\0';
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    size_t used = n < 0 ? 0 : (size_t)n < sizeof err->msg ? (size_t)n : sizeof err->msg - 1;
    size_t room = sizeof err->msg - used; /* >= 1 */
    size_t len = strlen(old);
    if (room > 2) { /* ": " + as much of the old message as fits */
        memcpy(err->msg + used, ": ", 2);
        used += 2;
        room -= 2;
        if (len > room - 1)
            len = room - 1;
        memcpy(err->msg + used, old, len);
        used += len;
    }
    err->msg[used] = '\0';
    one_line(err->msg);
    if (err->code == 0)
        err->code = code;
    return err->code;
}

const char *vl_strerror(int code)
{
    switch (code) {
    case VL_OK: return "success";
    case VL_EIO: return "input/output error";
    case VL_EFORMAT: return "malformed file";
    case VL_ETRUNC: return "truncated file";
    case VL_EDTYPE: return "unsupported element type";
    case VL_ESHAPE: return "wrong shape";
    case VL_ERANGE: return "value out of range";
    case VL_ECONFIG: return "bad configuration";
    case VL_ENOMEM: return "out of memory";
    case VL_EEXTERN: return "external library error";
    case VL_EARG: return "bad argument";
    case VL_ENOTFOUND: return "not found";
    default: return "unknown error";
    }
}

void *vl_malloc(size_t n) { return malloc(n ? n : 1); }
void *vl_calloc(size_t count, size_t size) { return calloc(count ? count : 1, size ? size : 1); }
void *vl_realloc(void *p, size_t n) { return realloc(p, n ? n : 1); }
void vl_free(void *p) { free(p); }

int vl_grow(void *pp, size_t n, size_t *cap, size_t size, size_t first)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? 2 * *cap : first;
    void *p;
    memcpy(&p, pp, sizeof p); /* pp is the address of an object pointer of any type */
    p = vl_realloc(p, nc * size);
    if (!p)
        return VL_ENOMEM;
    memcpy(pp, &p, sizeof p);
    *cap = nc;
    return 0;
}

char *vl_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = vl_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}
