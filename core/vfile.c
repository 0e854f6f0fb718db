/* core/vfile.c — open inputs without blocking on FIFOs and devices; regular files only. */
#define _POSIX_C_SOURCE 200809L
#include "vfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t m)
{
    return S_ISDIR(m)    ? "a directory"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
                         : "not a plain file";
}

int vf_open(const char *path, int *fd, int64_t *size, vl_err *err)
{
    *fd = -1;
    int d;
    do /* O_NONBLOCK: a FIFO without a writer opens at once instead of waiting */
        d = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    while (d < 0 && errno == EINTR);
    if (d < 0)
        return vl_errf(err, errno == ENOENT ? VL_ENOTFOUND : VL_EIO, "%s: %s", path,
                       strerror(errno));
    struct stat sb;
    if (fstat(d, &sb) != 0) {
        int e = errno;
        close(d);
        return vl_errf(err, VL_EIO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(d);
        return vl_errf(err, VL_EIO, "%s: not a regular file (%s)", path, kind_of(sb.st_mode));
    }
    int fl = fcntl(d, F_GETFL);
    if (fl < 0 || fcntl(d, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(d);
        return vl_errf(err, VL_EIO, "%s: %s", path, strerror(e));
    }
    *fd = d;
    if (size)
        *size = (int64_t)sb.st_size;
    return 0;
}

int vf_fopen(const char *path, FILE **f, vl_err *err)
{
    *f = NULL;
    int fd;
    int rc = vf_open(path, &fd, NULL, err);
    if (rc)
        return rc;
    if (!(*f = fdopen(fd, "rb"))) {
        int e = errno;
        close(fd);
        return vl_errf(err, VL_EIO, "%s: %s", path, strerror(e));
    }
    return 0;
}

int vf_check(const char *path, vl_err *err)
{
    int fd;
    int rc = vf_open(path, &fd, NULL, err);
    if (!rc)
        close(fd);
    return rc;
}

int vf_slurp(const char *path, size_t max, char **buf, size_t *len, vl_err *err)
{
    *buf = NULL;
    if (len)
        *len = 0;
    int fd;
    int64_t size;
    int rc = vf_open(path, &fd, &size, err);
    if (rc)
        return rc;
    if (size < 0 || (uint64_t)size > max) {
        close(fd);
        return vl_errf(err, VL_ERANGE, "%s: %lld bytes, over the %zu-byte limit", path,
                       (long long)size, max);
    }
    /* read to EOF rather than trusting the size: a file may change under us; never past max */
    size_t cap = (size_t)size + 1, n = 0;
    if (cap < 4097 && max >= 4096) /* st_size 0 says little for some files */
        cap = 4097;
    char *b = vl_malloc(cap);
    while (b) {
        ssize_t k = read(fd, b + n, cap - 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = vl_errf(err, VL_EIO, "%s: read failed: %s", path, strerror(errno));
            break;
        }
        if (k == 0)
            break;
        n += (size_t)k;
        if (n == cap - 1) {
            if (cap - 1 >= max) { /* grew past the limit while we read */
                char c;
                if (read(fd, &c, 1) == 1)
                    rc = vl_errf(err, VL_ERANGE, "%s: over the %zu-byte limit", path, max);
                break;
            }
            size_t nc = cap - 1 > max / 2 ? max + 1 : 2 * cap;
            char *nb = vl_realloc(b, nc);
            if (!nb) {
                vl_free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap = nc;
        }
    }
    close(fd);
    if (!b)
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
    if (rc) {
        vl_free(b);
        return rc;
    }
    b[n] = '\0';
    *buf = b;
    if (len)
        *len = n;
    return 0;
}
