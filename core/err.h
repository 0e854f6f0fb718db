/* core/err.h — status codes and the caller-owned error record.
 *
 * Every library function returns an int status: 0 on success, a negative VL_E* code on failure.
 * The function that detects a problem fills the caller's vl_err once, with the file and the
 * specifics ("models/x/model.safetensors: tensor \"a.b\": dtype I8 not supported"); callers pass
 * it up unchanged. There is no global error state, so this is thread-safe by construction.
 *
 * Messages are one line by construction: vl_errf and vl_errctx write any control character of
 * the formatted text (a name echoed from a file) as \xNN.
 *
 * VL_ASSERT is for our own invariants (shapes we computed), never for data read from a file.
 */
#ifndef VL_ERR_H
#define VL_ERR_H

#include <stdio.h>
#include <stdlib.h>

enum {
    VL_OK = 0,
    VL_EIO = -1,      /* open/read/write/rename failed */
    VL_EFORMAT = -2,  /* malformed file contents */
    VL_ETRUNC = -3,   /* file shorter than its own header says */
    VL_EDTYPE = -4,   /* unsupported or wrong element type */
    VL_ESHAPE = -5,   /* wrong or inconsistent shape */
    VL_ERANGE = -6,   /* value out of range, NaN or Inf */
    VL_ECONFIG = -7,  /* bad or unsupported configuration */
    VL_ENOMEM = -8,   /* allocation failed */
    VL_EEXTERN = -9,  /* a third-party library reported an error */
    VL_EARG = -10,    /* bad argument from the caller or the command line */
    VL_ENOTFOUND = -11 /* a named item (tensor, dataset, file) does not exist */
};

#define VL_ERR_MSG 1024

typedef struct {
    int code;              /* last VL_E* code, 0 if none */
    char msg[VL_ERR_MSG];  /* one line, no trailing newline */
} vl_err;

/* Fill err (if not NULL) with code and a printf-style message; returns code, so a failure
 * report is one line: `return vl_errf(err, VL_EIO, "%s: %s", path, strerror(errno));` */
int vl_errf(vl_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing message: "ctx: old message". Keeps the code. Returns err->code
 * (or code when err is NULL). */
int vl_errctx(vl_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One-line meaning of a code; static string. */
const char *vl_strerror(int code);

/* Allocation goes through these so that later a test can fail the Nth allocation. They return
 * NULL on failure like malloc; vl_free(NULL) is a no-op. */
void *vl_malloc(size_t n);
void *vl_calloc(size_t count, size_t size);
void *vl_realloc(void *p, size_t n);
void vl_free(void *p);
char *vl_strdup(const char *s);
/* Room for element N of a growing array *PP (a T ** passed as void *) of *CAP elements of SIZE
 * bytes: when N == *CAP, *CAP doubles (FIRST when 0) and the array is vl_realloc'd. Returns 0,
 * or VL_ENOMEM with *PP and *CAP unchanged. */
int vl_grow(void *pp, size_t n, size_t *cap, size_t size, size_t first);

/* Always on; prints file:line and aborts. Only for invariants of our own code. */
#define VL_ASSERT(cond)                                                                  \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: internal error: assertion failed: %s\n", __FILE__,   \
                    __LINE__, #cond);                                                    \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#endif
