/* tests/h5cmp.h — compare two vbrlab stores through the library (header-only, test use only):
 * the same objects, types, shapes and attributes (h5s_dump, root `command` excepted) and every
 * dataset equal byte for byte. Needs _POSIX_C_SOURCE 200809L (open_memstream, strtok_r). */
#ifndef VL_H5CMP_H
#define VL_H5CMP_H

#include "../core/err.h"
#include "../io/h5s.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The dump lines of the objects whose path contains ONLY (NULL: all), with their attribute
 * lines, minus the root `command` attribute. Returns a malloc'd string. */
static inline char *h5c_filter_dump(char *txt, const char *only)
{
    char *out = NULL, *save = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    int keep = 0;
    for (char *l = strtok_r(txt, "\n", &save); f && l; l = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(l, "GROUP ", 6) || !strncmp(l, "DATASET ", 8))
            keep = !only || strstr(l, only);
        if (keep && !strstr(l, "@command"))
            fprintf(f, "%s\n", l);
    }
    if (f)
        fclose(f);
    return out;
}

/* The objects of both files whose path contains ONLY (NULL: all): dumps (structure, types,
 * shapes, attributes) equal except the root `command`, and every dataset equal byte for byte. */
static inline int h5c_stores_equal(const char *pa, const char *pb, const char *only, char *why,
                                   size_t n)
{
    h5s_store *s[2] = {NULL, NULL};
    char *txt[2] = {NULL, NULL}, *flt[2] = {NULL, NULL};
    size_t len[2];
    vl_err e = {0};
    int ok = 1, datasets = 0;
    for (int k = 0; k < 2 && ok; k++) {
        FILE *f = open_memstream(&txt[k], &len[k]);
        ok = f && h5s_open(&s[k], k ? pb : pa, &e) == 0 && h5s_dump(s[k], f, &e) == 0;
        if (f)
            fclose(f);
        if (ok)
            flt[k] = h5c_filter_dump(txt[k], only);
    }
    if (!ok)
        snprintf(why, n, "open/dump: %.900s", e.msg);
    else if (strcmp(flt[0], flt[1])) {
        snprintf(why, n, "dumps differ");
        ok = 0;
    }
    char *save = NULL;
    for (char *l = ok ? strtok_r(flt[0], "\n", &save) : NULL; ok && l;
         l = strtok_r(NULL, "\n", &save)) {
        char path[512], type[8];
        if (sscanf(l, "DATASET %511s %7s", path, type) != 2)
            continue;
        static const struct { const char *n; h5s_dtype t; size_t sz; } ty[] = {
            {"f32", H5S_F32, 4}, {"f64", H5S_F64, 8}, {"i32", H5S_I32, 4},
            {"i64", H5S_I64, 8}, {"u8", H5S_U8, 1}};
        int found = 0;
        for (size_t t = 0; t < 5 && ok; t++) {
            if (strcmp(type, ty[t].n))
                continue;
            found = 1;
            void *da = NULL, *db = NULL;
            int nd = 0;
            int64_t sh[H5S_MAX_DIMS];
            size_t cnt = 1;
            ok = h5s_read(s[0], path, ty[t].t, &da, &nd, sh, &e) == 0 &&
                 h5s_read(s[1], path, ty[t].t, &db, NULL, NULL, &e) == 0;
            for (int d = 0; ok && d < nd; d++)
                cnt *= (size_t)sh[d];
            if (!ok)
                snprintf(why, n, "read %.200s: %.700s", path, e.msg);
            else if (memcmp(da, db, cnt * ty[t].sz)) {
                snprintf(why, n, "dataset %s differs", path);
                ok = 0;
            }
            datasets++;
            vl_free(da);
            vl_free(db);
        }
        if (!found) {
            snprintf(why, n, "dataset %s: unknown type %s", path, type);
            ok = 0;
        }
    }
    if (ok && datasets == 0) {
        snprintf(why, n, "no datasets compared");
        ok = 0;
    }
    if (ok)
        snprintf(why, n, "%d datasets equal", datasets);
    for (int k = 0; k < 2; k++) {
        free(txt[k]);
        free(flt[k]);
        h5s_close(s[k]);
    }
    return ok;
}

#endif
