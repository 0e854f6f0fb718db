/* io/journal.c — append-only item journals (journal.h). */
#define _POSIX_C_SOURCE 200809L
#include "journal.h"

#include "../core/hash.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JR_MAGIC 0x314a4c56u
#define JR_HEAD "vbrlab journal 1\n"
enum { JR_REC = 24, JR_NAME_MAX = 4096 };

typedef struct {
    char *name;
    int file;        /* index into files */
    long off;        /* payload offset */
    size_t len;
} jr_item;

struct jr {
    char *own;       /* PREFIX.r<RANK> */
    char *key;
    long own_end;    /* valid bytes of the own file found at open (0: start it anew) */
    FILE *out;       /* own file, opened on the first put */
    FILE **files;    /* read handles */
    char **paths;
    int n_files;
    jr_item *items;
    size_t n, cap;
};

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static void wr32(unsigned char *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

static void wr64(unsigned char *p, uint64_t v)
{
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

/* Directory and base name of PREFIX into dir[cap] and *base (inside prefix). */
static void split_prefix(const char *prefix, char *dir, size_t cap, const char **base)
{
    const char *slash = strrchr(prefix, '/');
    if (!slash) {
        snprintf(dir, cap, ".");
        *base = prefix;
    } else {
        snprintf(dir, cap, "%.*s", (int)(slash - prefix == 0 ? 1 : slash - prefix), prefix);
        *base = slash + 1;
    }
}

/* Is NAME "BASE.r<digits>"? */
static int is_journal(const char *name, const char *base)
{
    size_t b = strlen(base);
    if (strncmp(name, base, b) || strncmp(name + b, ".r", 2) || !name[b + 2])
        return 0;
    for (const char *p = name + b + 2; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}

static int add_item(jr *j, const char *name, size_t nl, int file, long off, size_t len)
{
    if (vl_grow(&j->items, j->n, &j->cap, sizeof *j->items, 64))
        return VL_ENOMEM;
    char *s = vl_malloc(nl + 1);
    if (!s)
        return VL_ENOMEM;
    memcpy(s, name, nl);
    s[nl] = '\0';
    j->items[j->n++] = (jr_item){s, file, off, len};
    return 0;
}

/* Index the valid records of file f (index fi); *end = bytes of its valid prefix (0 when the
 * header or key does not match). */
static int scan_file(jr *j, FILE *f, int fi, long *end, vl_err *err)
{
    size_t hl = strlen(JR_HEAD), kl = strlen(j->key);
    char *head = vl_malloc(hl + kl + 2);
    *end = 0;
    if (!head)
        return vl_errf(err, VL_ENOMEM, "out of memory");
    int ok = fread(head, 1, hl + kl + 1, f) == hl + kl + 1 && !memcmp(head, JR_HEAD, hl) &&
             !memcmp(head + hl, j->key, kl) && head[hl + kl] == '\n';
    vl_free(head);
    if (!ok)
        return 0;
    long pos = (long)(hl + kl + 1);
    unsigned char rec[JR_REC];
    char *name = vl_malloc(JR_NAME_MAX);
    unsigned char *buf = NULL;
    size_t bcap = 0;
    int rc = name ? 0 : vl_errf(err, VL_ENOMEM, "out of memory");
    while (!rc && fread(rec, 1, JR_REC, f) == JR_REC) {
        uint32_t nl = rd32(rec + 4);
        uint64_t len = rd64(rec + 8), h = rd64(rec + 16);
        if (rd32(rec) != JR_MAGIC || nl == 0 || nl >= JR_NAME_MAX || len > ((uint64_t)1 << 40))
            break;
        if (len > bcap) {
            unsigned char *nb = vl_realloc(buf, (size_t)len);
            if (!nb) {
                rc = vl_errf(err, VL_ENOMEM, "out of memory reading a journal");
                break;
            }
            buf = nb;
            bcap = (size_t)len;
        }
        if (fread(name, 1, nl, f) != nl || fread(buf, 1, (size_t)len, f) != len)
            break; /* an incomplete last record */
        if (hash_fnv1a64(hash_fnv1a64(HASH_FNV_OFFSET, name, nl), buf, (size_t)len) != h)
            break;
        if (add_item(j, name, nl, fi, pos + JR_REC + (long)nl, (size_t)len))
            rc = vl_errf(err, VL_ENOMEM, "out of memory reading a journal");
        pos += JR_REC + (long)nl + (long)len;
        *end = pos;
    }
    if (!rc && *end == 0)
        *end = (long)(hl + kl + 1);
    vl_free(name);
    vl_free(buf);
    return rc;
}

static int cmp_item(const void *a, const void *b)
{
    const jr_item *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    /* a name recorded twice (two ranks, or a rerun): the first file and record wins */
    return c ? c : x->file != y->file ? x->file - y->file : (x->off > y->off) - (x->off < y->off);
}

int jr_open(jr **out, const char *prefix, const char *key, int rank, vl_err *err)
{
    *out = NULL;
    jr *j = vl_calloc(1, sizeof *j);
    size_t pl = strlen(prefix);
    char dir[4096];
    const char *base;
    if (!j || !(j->key = vl_strdup(key)) || !(j->own = vl_malloc(pl + 24))) {
        jr_close(j);
        return vl_errf(err, VL_ENOMEM, "out of memory");
    }
    snprintf(j->own, pl + 24, "%s.r%d", prefix, rank);
    split_prefix(prefix, dir, sizeof dir, &base);
    const char *own_base = strrchr(j->own, '/') ? strrchr(j->own, '/') + 1 : j->own;
    DIR *d = opendir(dir);
    struct dirent *de;
    int rc = 0;
    while (!rc && d && (de = readdir(d))) {
        if (!is_journal(de->d_name, base))
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue; /* vanished or unreadable: nothing to take from it */
        FILE **nf = vl_realloc(j->files, (size_t)(j->n_files + 1) * sizeof *nf);
        char **np = vl_realloc(j->paths, (size_t)(j->n_files + 1) * sizeof *np);
        if (nf)
            j->files = nf;
        if (np)
            j->paths = np;
        if (!nf || !np || !(j->paths[j->n_files] = vl_strdup(path))) {
            fclose(f);
            rc = vl_errf(err, VL_ENOMEM, "out of memory");
            break;
        }
        j->files[j->n_files] = f;
        long end = 0;
        rc = scan_file(j, f, j->n_files, &end, err);
        if (!strcmp(de->d_name, own_base)) /* this rank's own file, appended to later */
            j->own_end = end;
        j->n_files++;
    }
    if (d)
        closedir(d);
    if (rc) {
        jr_close(j);
        return rc;
    }
    if (j->n)
        qsort(j->items, j->n, sizeof *j->items, cmp_item);
    *out = j;
    return 0;
}

size_t jr_found(const jr *j) { return j->n; }

/* The first record named NAME with len bytes, or NULL. */
static const jr_item *find(const jr *j, const char *name, size_t len)
{
    size_t lo = 0, hi = j->n;
    while (lo < hi) { /* the first record of that name */
        size_t mid = (lo + hi) / 2;
        if (strcmp(j->items[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == j->n || strcmp(j->items[lo].name, name) || j->items[lo].len != len)
        return NULL;
    return &j->items[lo];
}

int jr_has(const jr *j, const char *name, size_t len) { return find(j, name, len) != NULL; }

int jr_get(jr *j, const char *name, void *buf, size_t len, vl_err *err)
{
    const jr_item *it = find(j, name, len);
    if (!it)
        return 0;
    FILE *f = j->files[it->file];
    if (fseek(f, it->off, SEEK_SET) != 0 || fread(buf, 1, len, f) != len)
        return vl_errf(err, VL_EIO, "%s: cannot read item \"%s\"", j->paths[it->file], name);
    return 1;
}

/* The own file ready for appending: its valid prefix kept (a bad tail cut off), else anew. */
static int open_own(jr *j, vl_err *err)
{
    if (j->own_end > 0 && truncate(j->own, j->own_end) == 0 && (j->out = fopen(j->own, "ab")))
        return 0;
    if (!(j->out = fopen(j->own, "wb")))
        return vl_errf(err, VL_EIO, "%s: %s", j->own, strerror(errno));
    if (fputs(JR_HEAD, j->out) < 0 || fputs(j->key, j->out) < 0 || fputc('\n', j->out) < 0)
        return vl_errf(err, VL_EIO, "%s: write: %s", j->own, strerror(errno));
    return 0;
}

int jr_put(jr *j, const char *name, const void *data, size_t len, vl_err *err)
{
    size_t nl = strlen(name);
    if (nl == 0 || nl >= JR_NAME_MAX)
        return vl_errf(err, VL_EARG, "%s: item name of %zu bytes", j->own, nl);
    int rc = j->out ? 0 : open_own(j, err);
    if (rc)
        return rc;
    unsigned char *rec = vl_malloc(JR_REC + nl + len);
    if (!rec)
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", j->own);
    wr32(rec, JR_MAGIC);
    wr32(rec + 4, (uint32_t)nl);
    wr64(rec + 8, len);
    wr64(rec + 16, hash_fnv1a64(hash_fnv1a64(HASH_FNV_OFFSET, name, nl), data, len));
    memcpy(rec + JR_REC, name, nl);
    if (len)
        memcpy(rec + JR_REC + nl, data, len);
    if (fwrite(rec, 1, JR_REC + nl + len, j->out) != JR_REC + nl + len ||
        fflush(j->out) != 0 || fsync(fileno(j->out)) != 0)
        rc = vl_errf(err, VL_EIO, "%s: write: %s", j->own, strerror(errno));
    vl_free(rec);
    return rc;
}

void jr_close(jr *j)
{
    if (!j)
        return;
    if (j->out)
        fclose(j->out);
    for (int i = 0; i < j->n_files; i++) {
        fclose(j->files[i]);
        vl_free(j->paths[i]);
    }
    for (size_t i = 0; i < j->n; i++)
        vl_free(j->items[i].name);
    vl_free(j->items);
    vl_free(j->files);
    vl_free(j->paths);
    vl_free(j->own);
    vl_free(j->key);
    vl_free(j);
}

int jr_remove(const char *prefix, vl_err *err)
{
    char dir[4096], path[8192];
    const char *base;
    split_prefix(prefix, dir, sizeof dir, &base);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)))
        if (is_journal(de->d_name, base)) {
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            if (unlink(path) != 0 && errno != ENOENT && !rc)
                rc = vl_errf(err, VL_EIO, "%s: %s", path, strerror(errno));
        }
    closedir(d);
    return rc;
}
