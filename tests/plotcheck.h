/* tests/plotcheck.h — what the plot tests share: a PNG's size from its IHDR chunk, the numbers
 * of a data block in a saved gnuplot script, and a file-exists check. Header-only, test use. */
#ifndef VL_PLOTCHECK_H
#define VL_PLOTCHECK_H

#include "../core/num.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Width and height of a PNG file; returns 0 if the file is not a PNG. */
static int png_size(const char *path, uint32_t *w, uint32_t *h)
{
    unsigned char b[24];
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n < 24 || memcmp(b, sig, 8) || memcmp(b + 12, "IHDR", 4))
        return 0;
    *w = (uint32_t)b[16] << 24 | (uint32_t)b[17] << 16 | (uint32_t)b[18] << 8 | b[19];
    *h = (uint32_t)b[20] << 24 | (uint32_t)b[21] << 16 | (uint32_t)b[22] << 8 | b[23];
    return 1;
}

/* The numbers of data block $name in a saved script ("NaN" read as NaN). */
static int read_block(const char *script, const char *name, double *out, int max)
{
    FILE *f = fopen(script, "r");
    if (!f)
        return -1;
    char line[8192], head[64];
    snprintf(head, sizeof head, "$%s << EOD", name);
    int n = 0, in = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!in) {
            in = !strcmp(line, head);
            continue;
        }
        if (!strcmp(line, "EOD"))
            break;
        for (const char *p = line;;) {
            p += strspn(p, " ");
            size_t k = strcspn(p, " ");
            double v;
            if (k == 3 && !strncmp(p, "NaN", 3))
                v = NAN;
            else if (!k || num_f64_n(p, k, -DBL_MAX, DBL_MAX, &v))
                break;
            if (n < max)
                out[n] = v;
            n++;
            p += k;
        }
    }
    fclose(f);
    return n;
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* The whole file as a NUL-terminated vl_malloc'd string (NULL if unreadable); *len its size. */
static inline char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = vl_malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n - 1, f);
        if (n + 1 < cap)
            break;
        char *nb = vl_realloc(b, cap *= 2);
        if (!nb)
            vl_free(b);
        b = nb;
    }
    fclose(f);
    if (b)
        b[n] = '\0';
    if (len)
        *len = n;
    return b;
}

/* 1 if the file holds needle, 0 if not or unreadable. */
static inline int file_has(const char *path, const char *needle)
{
    char *b = slurp(path, NULL);
    int r = b && strstr(b, needle);
    vl_free(b);
    return r;
}

/* 1 if every byte of the file is ASCII (< 0x80), 0 if not or unreadable. */
static inline int file_ascii(const char *path)
{
    size_t n;
    char *b = slurp(path, &n);
    int r = b != NULL;
    for (size_t i = 0; r && i < n; i++)
        r = (unsigned char)b[i] < 0x80;
    vl_free(b);
    return r;
}

#endif
