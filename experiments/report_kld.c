/* experiments/report_kld.c — the report's llama-perplexity statistics and entropy slices: the
 * summaries of /eval/<row>/<dom> read back (ev_read_summary) into an ev_matrix and printed by
 * the same code as `vbrlab eval` (analysis/eval.h). */
#define _POSIX_C_SOURCE 200809L
#include "stage.h"

#include "../analysis/eval.h"

#include <string.h>

/* Split a '\n'-joined list in place; at most max entries. */
static int split_lines(char *buf, char **v, int max)
{
    int n = 0;
    for (char *p = buf, *next; p && *p && n < max; p = next) {
        next = strchr(p, '\n');
        if (next)
            *next++ = '\0';
        v[n++] = p;
    }
    return n;
}

void report_kld_tables(FILE *f, h5s_store *s, int llama, int entropy)
{
    enum { MAX_R = 256, MAX_D = 64 };
    char *rows_buf = NULL, *cols_buf = NULL, *scored = NULL;
    char *rows[MAX_R], *cols[MAX_D];
    kld_summary *sums = NULL;
    vl_err e = {0, ""};
    int rc = h5s_attr_get(s, "/eval/matrix", "rows", &rows_buf, &e);
    if (!rc)
        rc = h5s_attr_get(s, "/eval/matrix", "cols", &cols_buf, &e);
    int R = rc ? 0 : split_lines(rows_buf, rows, MAX_R);
    int D = rc ? 0 : split_lines(cols_buf, cols, MAX_D);
    if (!rc && (R < 1 || D < 1))
        rc = vl_errf(&e, VL_ESHAPE, "empty /eval/matrix");
    if (!rc && !(sums = vl_calloc((size_t)R * D, sizeof *sums)))
        rc = vl_errf(&e, VL_ENOMEM, "out of memory");
    for (int r = 0; !rc && r < R; r++)
        for (int d = 0; !rc && d < D; d++)
            rc = ev_read_summary(s, rows[r], cols[d], &sums[(size_t)r * D + d], &e);
    int second = !rc && !h5s_attr_get(s, "/eval/matrix", "scored", &scored, NULL) &&
                 !strcmp(scored, "second_half");
    if (rc) {
        fprintf(f, "\n### KLD statistics\n\nNot available: %s.\n", e.msg);
    } else {
        ev_matrix mx = {R, D, (const char *const *)rows, (const char *const *)cols, sums,
                        second};
        if (entropy) {
            fprintf(f, "\n### KLD by reference entropy (claim 3: high-entropy tokens)\n");
            ev_print_entropy(f, &mx);
        }
        if (llama) {
            fprintf(f, "\n### llama.cpp KLD statistics per domain\n");
            ev_print_llama(f, &mx);
        }
    }
    vl_free(sums);
    vl_free(rows_buf);
    vl_free(cols_buf);
    vl_free(scored);
}
