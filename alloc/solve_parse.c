/* alloc/solve_parse.c — the plain-text problem file (format in solve.h, solve_problem_read).
 *
 * Two passes over the file: the first finds the number of distortion columns (from the first
 * option line), so that declarations before it can be stored in a problem of the right shape;
 * the second builds the problem and validates each number before use.
 */
#define _POSIX_C_SOURCE 200809L
#include "solve.h"

#include "../core/num.h"
#include "../core/vfile.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 4096 /* item, n, name, bpw + up to 4092 calibration sets */

/* Split line in place on blanks, stopping at '#'. Returns the field count, or −1 when there
 * are more than MAX_FIELDS. */
static int split(char *line, char **f)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    int n = 0;
    for (char *s = strtok(line, " \t\r\n\v\f"); s; s = strtok(NULL, " \t\r\n\v\f")) {
        if (n == MAX_FIELDS)
            return -1;
        f[n++] = s;
    }
    return n;
}

/* Parse a finite number ≥ 0; what names the field for the message. */
static int parse_num(const char *path, int line, const char *what, const char *s, double *out,
                     vl_err *err)
{
    double v;
    if (num_f64(s, -DBL_MAX, DBL_MAX, &v))
        return vl_errf(err, VL_EFORMAT, "%s:%d: %s \"%s\" is not a finite number", path, line,
                       what, s);
    if (v < 0)
        return vl_errf(err, VL_ERANGE, "%s:%d: %s %s is negative", path, line, what, s);
    *out = v;
    return 0;
}

static int parse_count(const char *path, int line, const char *s, int64_t *out, vl_err *err)
{
    int64_t v;
    int rc = num_i64(s, INT64_MIN, INT64_MAX, &v);
    if (rc)
        return vl_errf(err, VL_EFORMAT, "%s:%d: n_weights \"%s\" is %s", path, line, s,
                       rc == VL_ERANGE ? "beyond 64 bits" : "not an integer");
    if (v <= 0)
        return vl_errf(err, VL_ERANGE, "%s:%d: n_weights %s must be positive", path, line, s);
    *out = v;
    return 0;
}

/* Find or declare the item on this line; checks that n_weights agrees. */
static int item_at(solve_problem *p, const char *path, int line, char **f, int **decl,
                   int *cap, int *out, vl_err *err)
{
    int64_t n = 0;
    int rc = parse_count(path, line, f[1], &n, err);
    if (rc)
        return rc;
    int i = solve_problem_find_item(p, f[0]);
    if (i >= 0) {
        if (p->items[i].n != n)
            return vl_errf(err, VL_EFORMAT,
                           "%s:%d: item \"%s\": n_weights %lld differs from %lld given before",
                           path, line, f[0], (long long)n, (long long)p->items[i].n);
        *out = i;
        return 0;
    }
    if ((rc = solve_problem_add_item(p, f[0], n, &i, err)))
        return vl_errctx(err, rc, "%s:%d", path, line);
    if (i >= *cap) {
        int nc = *cap ? 2 * *cap : 64;
        int *q = vl_realloc(*decl, (size_t)nc * sizeof *q);
        if (!q)
            return vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
        *decl = q;
        *cap = nc;
    }
    (*decl)[i] = line;
    *out = i;
    return 0;
}

/* The second pass: every line into p. decl[i] is the line that introduced item i. */
static int parse_lines(FILE *fp, const char *path, solve_problem *p, int *nlines, int **decl,
                       int *cap, char **f, double *dist, vl_err *err)
{
    char *buf = NULL;
    size_t bcap = 0;
    int line = 0, rc = 0;
    const int S = p->n_sets;
    ssize_t len;
    while (!rc && (len = getline(&buf, &bcap, fp)) >= 0) {
        line++;
        if (memchr(buf, '\0', (size_t)len)) { /* it would end the line early: "12\0x" as 12 */
            rc = vl_errf(err, VL_EFORMAT, "%s:%d: NUL byte in the line", path, line);
            break;
        }
        int nf = split(buf, f);
        if (nf == 0)
            continue;
        if (nf < 0 || (nf != 2 && nf < 5)) {
            rc = vl_errf(err, VL_EFORMAT,
                         "%s:%d: expected \"item n_weights option bits_per_weight distortion...\""
                         " or \"item n_weights\", got %d fields", path, line, nf);
            break;
        }
        if (nf != 2 && nf - 4 != S) {
            rc = vl_errf(err, VL_EFORMAT,
                         "%s:%d: %d distortion columns, the first option line had %d", path,
                         line, nf - 4, S);
            break;
        }
        int it = -1;
        if ((rc = item_at(p, path, line, f, decl, cap, &it, err)) || nf == 2)
            continue;
        double bpw;
        if ((rc = parse_num(path, line, "bits_per_weight", f[3], &bpw, err)))
            break;
        for (int s = 0; s < S && !rc; s++)
            rc = parse_num(path, line, "distortion", f[4 + s], &dist[s], err);
        if (rc)
            break;
        const solve_item *x = &p->items[it];
        for (int j = 0; j < x->n_opt && !rc; j++)
            if (!strcmp(x->opt[j].name, f[2]))
                rc = vl_errf(err, VL_EFORMAT, "%s:%d: item \"%s\": option \"%s\" given twice",
                             path, line, f[0], f[2]);
        if (!rc && (rc = solve_problem_add_option(p, it, f[2], bpw, dist, err)))
            vl_errctx(err, rc, "%s:%d", path, line);
    }
    free(buf); /* getline's buffer comes from malloc */
    *nlines = line;
    return rc;
}

/* The first pass: distortion columns of the first option line (0 when there is none). */
static int count_sets(FILE *fp, char **f)
{
    char *buf = NULL;
    size_t bcap = 0;
    int S = 0;
    while (getline(&buf, &bcap, fp) >= 0) {
        int nf = split(buf, f);
        if (nf >= 5) {
            S = nf - 4;
            break;
        }
    }
    free(buf);
    return S;
}

int solve_problem_read(const char *path, solve_problem **out, vl_err *err)
{
    *out = NULL;
    FILE *fp;
    int orc = vf_fopen(path, &fp, err); /* regular files only: a FIFO would block */
    if (orc)
        return orc;
    char **f = vl_malloc(MAX_FIELDS * sizeof *f);
    double *dist = vl_malloc(MAX_FIELDS * sizeof *dist);
    int *decl = NULL, cap = 0, nlines = 0, rc;
    solve_problem *p = NULL;
    if (!f || !dist) {
        rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    int S = count_sets(fp, f);
    rewind(fp);
    if ((rc = solve_problem_new(S > 0 ? S : 1, &p, err)))
        goto done;
    if ((rc = parse_lines(fp, path, p, &nlines, &decl, &cap, f, dist, err)))
        goto done;
    if (ferror(fp)) {
        rc = vl_errf(err, VL_EIO, "%s: read error", path);
        goto done;
    }
    if (S == 0 || p->n_items == 0) {
        rc = vl_errf(err, VL_EFORMAT, "%s:%d: empty problem: no option lines", path, nlines);
        goto done;
    }
    for (int i = 0; i < p->n_items; i++)
        if (p->items[i].n_opt == 0) {
            rc = vl_errf(err, VL_EFORMAT, "%s:%d: item \"%s\" has no options", path, decl[i],
                         p->items[i].name);
            goto done;
        }
done:
    fclose(fp);
    vl_free(f);
    vl_free(dist);
    vl_free(decl);
    if (rc)
        solve_problem_free(p);
    else
        *out = p;
    return rc;
}
