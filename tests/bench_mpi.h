/* tests/bench_mpi.h — the `mpi` section of `make bench` (included by tests/bench.c only):
 * `vbrlab stats` on the embedded model through mpirun with 1 and 2 ranks (the MPI binary of
 * `make MPI=1`, named by VBRLAB_MPI_BIN; `make bench` builds it when mpicc is there).
 *
 * Measured end to end (mpirun start, model load, calibration cut, the pass, the exact reduction,
 * the store), as a user runs it. A run on one 128-token sequence gives the fixed cost, so the
 * table also shows the pass alone: tokens / (t − t_fixed). On one node the ranks share its
 * cores (each rank gets cores / ranks kernel threads, cli/vbrlab.c), so the speedup here is
 * what splitting the batches buys over threading inside each matrix product.
 */
#ifndef VL_BENCH_MPI_H
#define VL_BENCH_MPI_H

#include "../core/prog.h"
#include "testio.h"

#include <sys/stat.h>

/* Wall seconds of `mpirun -n R BIN stats ...seqs=S...` (negative when it failed). */
static double mpi_stats_seconds(const char *bin, int ranks, int seqs)
{
    char n[16], set[160];
    snprintf(n, sizeof n, "%d", ranks);
    snprintf(set, sizeof set, "en=data/corpus/en.calib.txt,seqs=%d,len=128", seqs);
    char *av[] = {"mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
                  "--mca", "btl_vader_single_copy_mechanism", "none", "-n", n, (char *)bin,
                  "stats", "--set", set, "--no-hessian", "--batch", "8", "-o",
                  "build/tmp-bench/mpi_stats.h5", NULL};
    static char log[1 << 16];
    double t0 = prog_now();
    int st = tio_runv(av, log, sizeof log);
    double dt = prog_now() - t0;
    if (st != 0)
        fprintf(stderr, "bench mpi: %d ranks failed: %.500s\n", ranks, log);
    return st == 0 ? dt : -1;
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
        printf("| stats over MPI ranks | skipped: %s |\n", why);
        return;
    }
    mkdir("build", 0755);
    mkdir("build/tmp-bench", 0755);
    const int S = 48, T = 128;
    double fixed = mpi_stats_seconds(bin, 1, 1), t[3] = {0, 0, 0};
    for (int r = 1; r <= 2; r++) {
        t[r] = mpi_stats_seconds(bin, r, S);
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
}

#endif
