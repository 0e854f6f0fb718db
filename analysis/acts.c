/* analysis/acts.c — a row store in memory or in an unlinked temporary file. */
#define _POSIX_C_SOURCE 200809L
#include "acts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct acts {
    int64_t rows;
    int width;
    float *mem; /* rows × width, or NULL when spilled */
    int fd;     /* the temporary file, −1 in memory */
    char dir[512];
};

int acts_new(acts **out, int64_t rows, int width, int64_t cap_bytes, vl_err *err)
{
    *out = NULL;
    if (rows < 0 || width <= 0 || cap_bytes < 0 || rows > INT64_MAX / 4 / width)
        return vl_errf(err, VL_EARG, "activations: %lld rows × %d out of range",
                       (long long)rows, width);
    acts *a = vl_calloc(1, sizeof *a);
    if (!a)
        return vl_errf(err, VL_ENOMEM, "activations: out of memory");
    a->rows = rows;
    a->width = width;
    a->fd = -1;
    int64_t bytes = rows * width * (int64_t)sizeof(float);
    if (cap_bytes == 0 || bytes <= cap_bytes) {
        if (!(a->mem = vl_malloc((size_t)bytes + 1))) {
            vl_free(a);
            return vl_errf(err, VL_ENOMEM, "activations: out of memory for %lld MiB (set a "
                           "memory cap to spill them to a file)", (long long)(bytes >> 20));
        }
        *out = a;
        return 0;
    }
    const char *t = getenv("TMPDIR");
    snprintf(a->dir, sizeof a->dir, "%s", t && *t ? t : "/tmp");
    char path[600];
    snprintf(path, sizeof path, "%s/vbrlab-acts-XXXXXX", a->dir);
    if ((a->fd = mkstemp(path)) < 0) {
        int e = errno;
        vl_free(a);
        return vl_errf(err, VL_EIO, "%s: cannot create a temporary file for activations: %s",
                       path, strerror(e));
    }
    unlink(path); /* gone from the directory now; the space is freed when fd closes */
    *out = a;
    return 0;
}

static int range_ok(const acts *a, int64_t row0, int64_t n, vl_err *err)
{
    if (row0 < 0 || n < 0 || row0 > a->rows - n)
        return vl_errf(err, VL_EARG, "activations: rows [%lld, %lld) outside [0, %lld)",
                       (long long)row0, (long long)(row0 + n), (long long)a->rows);
    return 0;
}

/* pread/pwrite of every byte (they may move fewer). */
static int io_all(const acts *a, int wr, void *buf, size_t n, off_t off, vl_err *err)
{
    char *p = buf;
    while (n > 0) {
        ssize_t k = wr ? pwrite(a->fd, p, n, off) : pread(a->fd, p, n, off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return vl_errf(err, VL_EIO, "%s: temporary activation file: %s %s", a->dir,
                           wr ? "write" : "read", k < 0 ? strerror(errno) : "short");
        p += k;
        n -= (size_t)k;
        off += k;
    }
    return 0;
}

int acts_put(acts *a, int64_t row0, int64_t n, const float *src, vl_err *err)
{
    int rc = range_ok(a, row0, n, err);
    size_t off = (size_t)row0 * (size_t)a->width, cnt = (size_t)n * (size_t)a->width;
    if (rc || !cnt)
        return rc;
    if (a->mem) {
        memcpy(a->mem + off, src, cnt * sizeof *src);
        return 0;
    }
    return io_all(a, 1, (void *)src, cnt * sizeof *src, (off_t)(off * sizeof *src), err);
}

int acts_get(const acts *a, int64_t row0, int64_t n, float *dst, vl_err *err)
{
    int rc = range_ok(a, row0, n, err);
    size_t off = (size_t)row0 * (size_t)a->width, cnt = (size_t)n * (size_t)a->width;
    if (rc || !cnt)
        return rc;
    if (a->mem) {
        memcpy(dst, a->mem + off, cnt * sizeof *dst);
        return 0;
    }
    return io_all(a, 0, dst, cnt * sizeof *dst, (off_t)(off * sizeof *dst), err);
}

int acts_spilled(const acts *a) { return a->fd >= 0; }

void acts_free(acts *a)
{
    if (!a)
        return;
    if (a->fd >= 0)
        close(a->fd);
    vl_free(a->mem);
    vl_free(a);
}
