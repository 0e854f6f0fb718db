/* experiments/report_kld.c — the report's llama-perplexity statistics and entropy slices: the
 * summaries of /eval/<row>/<dom> read back (ev_read_summary) into an ev_matrix and printed by
 * the same code as `vbrlab eval` (analysis/eval.h). */
#define _POSIX_C_SOURCE 200809L
#include "stage.h"

#include "../analysis/eval.h"

#include <string.h>

void report_kld_tables(FILE *f, h5s_store *s, int llama, int entropy)
{
    char *scored = NULL, **rows = NULL, **cols = NULL;
    kld_summary *sums = NULL;
    vl_err e = {0, ""};
    int R = 0, D = 0;
    int rc = ev_read_names(s, &rows, &R, &cols, &D, &e);
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
    h5s_names_free(rows, R);
    h5s_names_free(cols, D);
    vl_free(scored);
}
