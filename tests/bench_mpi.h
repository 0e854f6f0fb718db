/* tests/bench_mpi.h — the `mpi` section of `make bench` (included by tests/bench.c only):
 * `vbrlab stats`, `sens` and `eval` on the embedded model through mpirun with 1 and 2 ranks,
 * and stats and eval on a 2-stage pipeline (--pipeline 2), with the MPI binary of `make MPI=1`
 * (named by VBRLAB_MPI_BIN; `make bench` builds it when mpicc is there).
 *
 * Measured end to end (mpirun start, model load, the work, the exact reduction or gather, the
 * store), as a user runs it. For stats a run on one 128-token sequence gives the fixed cost, so
 * the table also shows the pass alone: tokens / (t − t_fixed). On one node the ranks share its
 * cores (each rank gets cores / ranks kernel threads, cli/vbrlab.c), so the speedup here is
 * what splitting the work buys over threading inside each matrix product. A pipeline on one
 * node is not meant to be faster (its stages wait on each other; it exists for models larger
 * than a node): its rows show what passing the rows between ranks costs.
 *
 * Rates: stats and eval count the tokens of the set or domains (eval: × allocations); sens
 * counts the tokens of its perturbed forwards, units × ε values × noise draws × tokens (units
 * and draws read from its output).
 */
#ifndef VL_BENCH_MPI_H
#define VL_BENCH_MPI_H

#include "../core/prog.h"
#include "testio.h"

#include <sys/stat.h>

#define BM_DIR "build/tmp-bench"

static char bm_log[1 << 17];

/* Wall seconds of `mpirun -n R BIN ARGS` (ARGS split at spaces; negative when it failed). */
static double mpi_seconds(const char *bin, int ranks, const char *args)
{
    char n[16], buf[1024];
    snprintf(n, sizeof n, "%d", ranks);
    snprintf(buf, sizeof buf, "%s", args);
    char *av[64] = {"mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
                    "--mca", "btl_vader_single_copy_mechanism", "none",
                    "--mca", "mpi_yield_when_idle", "1", "-n", n, (char *)bin};
    int k = 14;
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w && k < 63;
         w = strtok_r(NULL, " ", &save))
        av[k++] = w;
    av[k] = NULL;
    double t0 = prog_now();
    int st = tio_runv(av, bm_log, sizeof bm_log);
    double dt = prog_now() - t0;
    if (st != 0)
        fprintf(stderr, "bench mpi: %d ranks failed: %.500s\n", ranks, bm_log);
    return st == 0 ? dt : -1;
}

/* Tokens of sens's perturbed forwards from its output: units (table rows) × 2 ε × draws ×
 * tokens ("set en: α measured on N tokens (..), D noise draws"); 0 when not found. */
static double sens_scan_tokens(const char *log)
{
    const char *p = strstr(log, "α measured on ");
    long tok = 0, draws = 0;
    if (!p || sscanf(p + strlen("α measured on "), "%ld", &tok) != 1)
        return 0;
    const char *d = strstr(p, "sequences), ");
    if (!d || sscanf(d + strlen("sequences), "), "%ld", &draws) != 1)
        return 0;
    long units = 0;
    for (const char *q = log; (q = strstr(q, "\nmodel.")); q++)
        units++;
    return (double)units * 2 * (double)draws * (double)tok;
}

static void bench_row(const char *what, int ranks, const char *how, double tokens, double t)
{
    printf("| %s over MPI, %d rank(s)%s: tokens/s end to end | %.0f |\n", what, ranks, how,
           tokens / t);
}

static void bench_mpi(void)
{
    const char *bin = getenv("VBRLAB_MPI_BIN");
    char probe[4096];
    char *av[] = {"mpirun", "--version", NULL};
    const char *why = !bin || !*bin                    ? "VBRLAB_MPI_BIN not set"
                      : access(bin, X_OK) != 0         ? "MPI binary not built (make MPI=1)"
                      : tio_runv(av, probe, sizeof probe) ? "mpirun not found (openmpi-bin)"
                                                          : NULL;
    if (why) {
        printf("| stats/sens/eval over MPI ranks | skipped: %s |\n", why);
        return;
    }
    mkdir("build", 0755);
    mkdir(BM_DIR, 0755);
    const int S = 48, T = 128, ES = 16;
    char stats[256], eval[512], sens[512];
#define BM_STATS(seqs)                                                                       \
    snprintf(stats, sizeof stats, "stats --set en=data/corpus/en.calib.txt,seqs=%d,len=%d "   \
             "--no-hessian --batch 8 -o " BM_DIR "/mpi_stats.h5", seqs, T)
    BM_STATS(1);
    double fixed = mpi_seconds(bin, 1, stats), t[3] = {0, 0, 0}, tp;
    BM_STATS(S);
    for (int r = 1; r <= 2; r++) {
        t[r] = mpi_seconds(bin, r, stats);
        if (t[r] < 0 || fixed < 0) {
            printf("| stats over MPI, %d rank(s) | failed (see stderr) |\n", r);
            return;
        }
        double pass = t[r] - fixed > 1e-3 ? t[r] - fixed : 1e-3;
        printf("| stats --no-hessian %d×%d over MPI, %d rank(s): tokens/s end to end (pass "
               "alone) | %.0f (%.0f) |\n",
               S, T, r, S * T / t[r], S * T / pass);
    }
    printf("| stats over MPI, 1 → 2 ranks: speedup end to end (pass alone) | %.2f× (%.2f×) |\n",
           t[1] / t[2], (t[1] - fixed) / (t[2] - fixed > 1e-3 ? t[2] - fixed : 1e-3));
    printf("| stats over MPI: fixed cost of one run (start, load, store) (s) | %.2f |\n", fixed);
    snprintf(probe, sizeof probe, "%s --pipeline 2", stats);
    if ((tp = mpi_seconds(bin, 2, probe)) > 0)
        bench_row("stats", 2, " --pipeline 2", S * T, tp);
    /* the 48-sequence store above is sens's input */
    snprintf(sens, sizeof sens, "sens --stats " BM_DIR "/mpi_stats.h5 --set en --formats "
             "rtn:b=2..3:g=64 --tokens %d --add-draws 0 -o " BM_DIR "/mpi_sens.h5", T);
    double ts[3] = {0, 0, 0}, tok = 0;
    for (int r = 1; r <= 2; r++) {
        if ((ts[r] = mpi_seconds(bin, r, sens)) < 0) {
            printf("| sens over MPI, %d rank(s) | failed (see stderr) |\n", r);
            return;
        }
        tok = sens_scan_tokens(bm_log);
        bench_row("sens (perturbed forwards)", r, "", tok, ts[r]);
    }
    printf("| sens over MPI, 1 → 2 ranks: speedup end to end | %.2f× |\n", ts[1] / ts[2]);
    snprintf(eval, sizeof eval, "eval --uniform rtn-b2-g64-asym --uniform rtn-b4-g64-asym "
             "--domain en=data/corpus/en.eval.txt,seqs=%d,len=%d --batch 4 -o "
             BM_DIR "/mpi_eval.h5", ES, T);
    double te[3] = {0, 0, 0};
    for (int r = 1; r <= 2; r++) {
        if ((te[r] = mpi_seconds(bin, r, eval)) < 0) {
            printf("| eval over MPI, %d rank(s) | failed (see stderr) |\n", r);
            return;
        }
        bench_row("eval (2 allocations)", r, "", 2.0 * ES * T, te[r]);
    }
    printf("| eval over MPI, 1 → 2 ranks: speedup end to end | %.2f× |\n", te[1] / te[2]);
    snprintf(probe, sizeof probe, "%s --pipeline 2", eval);
    if ((tp = mpi_seconds(bin, 2, probe)) > 0)
        bench_row("eval (2 allocations)", 2, " --pipeline 2", 2.0 * ES * T, tp);
#undef BM_STATS
}

#endif
