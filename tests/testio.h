/* tests/testio.h — file and process helpers the tests share (header-only, test use only). */
#ifndef VL_TESTIO_H
#define VL_TESTIO_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

/* The whole file, NUL-terminated, malloc'd (caller frees); *len (if not NULL) its size.
 * NULL if it cannot be read. */
static inline char *tio_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = '\0';
        if (len)
            *len = (size_t)n;
    }
    return b;
}

/* Run CMD through the shell, capture up to cap−1 bytes of its stdout into out (NUL-terminated);
 * returns its exit status, −1 if it could not run or did not exit normally. */
static inline int tio_run(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
