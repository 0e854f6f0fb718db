/* tests/mpirun.h — running the MPI binary (VBRLAB_MPI_BIN) under mpirun from a test, shared by
 * tests/test_mpi.c and tests/test_mpipe.c. Header-only (static functions): each test binary
 * includes it once. mpi_ready() finds the binary and mpirun or says why the test skips. */
#ifndef VL_TEST_MPIRUN_H
#define VL_TEST_MPIRUN_H

#include "check.h"
#include "h5cmp.h"
#include "testio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *mpi_bin; /* set by mpi_ready */

/* argv for "mpirun ... -n R MPI_BIN ARGS" (ARGS split at spaces into buf). */
static int mpi_argv(char **av, int cap, char *buf, int ranks)
{
    static char n[16];
    snprintf(n, sizeof n, "%d", ranks);
    /* root in CI containers; --oversubscribe: more ranks than the 2 cores; no cross-memory
     * attach for shared-memory transfers (containers often forbid ptrace, which it needs) */
    const char *pre[] = {"mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
                         "--mca", "btl_vader_single_copy_mechanism", "none",
                         /* a rank waiting in a receive yields its core instead of spinning:
                          * more ranks than cores here (a pipeline stage waits on the other) */
                         "--mca", "mpi_yield_when_idle", "1", "-n", n, mpi_bin};
    int k = 0;
    for (size_t i = 0; i < sizeof pre / sizeof *pre; i++)
        av[k++] = (char *)pre[i];
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w && k < cap - 1;
         w = strtok_r(NULL, " ", &save))
        av[k++] = w;
    av[k] = NULL;
    return k;
}

/* Run ARGS (with "-o OUT" appended) on R ranks; 0 = serial binary (VBRLAB_BIN). Exit status. */
static int run_ranks(int ranks, const char *args, const char *out, char *log, size_t cap)
{
    char buf[2048];
    snprintf(buf, sizeof buf, "%s -o %s", args, out);
    char *av[64];
    if (ranks == 0) {
        int k = 0;
        av[k++] = (char *)tio_bin();
        for (char *save = NULL, *w = strtok_r(buf, " ", &save); w && k < 63;
             w = strtok_r(NULL, " ", &save))
            av[k++] = w;
        av[k] = NULL;
    } else {
        mpi_argv(av, 64, buf, ranks);
    }
    return tio_runv(av, log, cap);
}

static void same_store(chk *c, const char *a, const char *b, const char *what)
{
    char why[1024];
    int ok = h5c_stores_equal(a, b, NULL, why, sizeof why);
    CHECK(c, ok, "%s: %s", what, why);
}

/* SRC_INI (a tests/data config) copied to INI with its `out =` line set to OUT. */
static void mpi_config(const char *src_ini, const char *ini, const char *out)
{
    char *src = tio_slurp(src_ini, NULL);
    FILE *f = fopen(ini, "w");
    for (char *line = src, *next; f && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (strncmp(line, "out =", 5))
            fprintf(f, "%s\n", line);
        else
            fprintf(f, "out = %s\n", out);
    }
    if (f)
        fclose(f);
    free(src);
}

/* 1 when VBRLAB_MPI_BIN is built and mpirun runs; else 0 with the reason printed as a skip
 * ("NAME: skipped: ...", "NAME: 0 passed, 0 failed"). */
static int mpi_ready(const char *name)
{
    mpi_bin = getenv("VBRLAB_MPI_BIN");
    char why[256] = "";
    char probe[4096];
    char *av[] = {"mpirun", "--version", NULL};
    if (!mpi_bin || !*mpi_bin)
        snprintf(why, sizeof why, "VBRLAB_MPI_BIN not set (make test sets it when mpicc exists)");
    else if (access(mpi_bin, X_OK) != 0)
        snprintf(why, sizeof why, "%s not built (make MPI=1)", mpi_bin);
    else if (tio_runv(av, probe, sizeof probe) != 0)
        snprintf(why, sizeof why, "mpirun not found (apt-get install openmpi-bin)");
    if (!*why) {
        /* Every process these tests compare (the serial reference and each rank) runs its
         * BLAS on one thread: OpenBLAS's multi-threaded sgemm splits a product by thread count
         * and, on some kernels (0.3.21's Haswell path, taken on AVX-512 AMD CPUs), sums in a
         * split-dependent order, so 2 ranks sharing 2 cores and one process on 2 threads
         * differ in the last bits. Rank-count invariance is what these tests check; it holds
         * for equal BLAS threads per process (docs/scaling.md). */
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        return 1;
    }
    printf("%s: skipped: %s\n", name, why);
    printf("%s: 0 passed, 0 failed\n", name);
    return 0;
}

#endif
