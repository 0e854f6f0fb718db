/* experiments/repdata.h — the evaluation data of every replicate of a run, and the report's
 * tables built on paired differences (private to experiments/, used by stage_report.c).
 *
 * rep_read gathers, from replicate 0's store (the stage's c->s) and the stores of replicates
 * 1 .. R−1 (expcfg.h exp_replicate_out), every row × domain: its mean KLD, same-top fraction
 * and bpw per replicate, and the per-sequence mean KLD (analysis/paired.h pr_seq_means of
 * /eval/<row>/<dom>/kld). Every replicate must hold the same rows, domains and sequence counts
 * (the eval domains are fixed across replicates); anything else is VL_ESHAPE naming the store.
 *
 * The tables (markdown on F):
 *   rep_table_paired   every comparison the report makes, as paired differences with their
 *                      95 % bootstrap interval over sequences (and replicates when R > 1):
 *                      each VBR row against each uniform row, and every two VBR rows of one
 *                      target (labelled calibration when their sets differ, granularity when
 *                      only the granularity does, allocation otherwise); n.s. marks an
 *                      interval that includes 0
 *   rep_table_verdict  one line per [claim.*] test and the claim's verdict (pr_decide,
 *                      pr_combine): supported / not supported / inconclusive
 * Bootstrap streams: rng_child_seed(experiment seed, "report.paired:A:B:D") per comparison, so
 * the same store gives the same tables.
 */
#ifndef VL_REPDATA_H
#define VL_REPDATA_H

#include "../analysis/paired.h"
#include "runctx.h"

typedef struct {
    int R, A, D;        /* replicates, rows, domains */
    char **rows, **cols; /* [A], [D] names (replicate 0's /eval/matrix order, ev_read_names) */
    int *n_seq;          /* [D] sequences per domain */
    double *cell;        /* [R × A × D] mean KLD */
    double *same;        /* [R × A × D] same-top fraction */
    double *bpw;         /* [R × A] exact stored bits per weight */
    double **seq;        /* [A × D] → [R × n_seq[d]] per-sequence mean KLD */
} rep_data;

int rep_read(run_ctx *c, rep_data *d, vl_err *err);
void rep_free(rep_data *d); /* zeroed or read; leaves it zeroed */

/* Row / domain index by name, or −1. */
int rep_row(const rep_data *d, const char *name);
int rep_col(const rep_data *d, const char *name);

/* The paired difference of rows a and b on domain dom (seeded as described above). */
int rep_paired(const run_ctx *c, const rep_data *d, int a, int b, int dom, pr_diff *out,
               vl_err *err);

/* Mean over replicates of v[r·stride + off] and its t half width (NaN for R = 1). */
void rep_mean_ci(const rep_data *d, const double *v, size_t stride, size_t off, double *mean,
                 double *half);

void rep_table_paired(FILE *f, const run_ctx *c, const rep_data *d);
void rep_table_verdict(FILE *f, const run_ctx *c, const rep_data *d);

#endif
