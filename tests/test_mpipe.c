/* tests/test_mpipe.c — `--pipeline P` (analysis/pipeline.h) through mpirun: the layers split
 * over ranks give the bits of one process.
 *
 *   forward  logits of 2 ranks × --pipeline 2 = the serial binary's, same --batch, on the
 *            embedded model (6 layers: stages hold 0-2 and 3-5) and on the DeepSeek-V3 (3
 *            layers: 0 | 1-2, a dense and an MLA+MoE stage) and DeepSeek-V4 (4 layers: hc
 *            residual streams cross ranks) fixtures; 4 ranks × --pipeline 2 (two groups) and
 *            3 ranks × --pipeline 3 on the embedded model.
 *   stats    every dataset of the store equal (tests/h5cmp.h): two sets, XᵀX on a layer of
 *            each stage, 5 sequences in batches of 2 (3 batches: with 2 groups they split
 *            2 + 1, so the owners of the per-token arrays interleave); 2 ranks × P 2 and
 *            4 ranks × P 2 on the embedded model, 2 × 2 on both fixtures.
 *   eval     the KLD store equal: two rows × two domains on the embedded model, one row on each
 *            fixture (reference logits kept and reused across rows on every stage).
 *   errors   P not dividing the ranks, P above the layer count, --pipeline in the serial
 *            build: one-line errors, non-zero exit.
 *   run      `vbrlab run --pipeline 2 --only eval` on 2 ranks with stage 1 failing its first
 *            item (the stage drains its upstream: no rank hangs) and with stage 0 failing its
 *            first (the end marker stops stage 1): the job fails naming the failing rank;
 *            then the rerun on the pipeline gives the one-process store.
 *
 * Needs VBRLAB_MPI_BIN and mpirun (tests/mpirun.h); otherwise it skips.
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "h5cmp.h"
#include "mpirun.h"
#include "testio.h"

#include <sys/stat.h>

#define TDIR "build/tmp-mpipe"
#define V3 "tests/fixtures/tiny-deepseek-v3"
#define V4 "tests/fixtures/tiny-deepseek-v4"

static char log_[1 << 16];

static void ok_run(chk *c, int ranks, const char *args, const char *out, const char *what)
{
    int st = run_ranks(ranks, args, out, log_, sizeof log_);
    CHECK(c, st == 0, "%s on %d rank(s) exits 0 (got %d %.400s)", what, ranks, st,
          st ? log_ : "");
}

/* ARGS serially and on RANKS ranks with --pipeline P: equal stores. */
static void piped_equals_serial(chk *c, const char *what, const char *args, int ranks, int P)
{
    char serial[128], piped[128], pargs[1024], name[160];
    snprintf(serial, sizeof serial, TDIR "/%s_serial.h5", what);
    snprintf(piped, sizeof piped, TDIR "/%s_r%dp%d.h5", what, ranks, P);
    snprintf(pargs, sizeof pargs, "%s --pipeline %d", args, P);
    static char made[16][32]; /* the serial store is made once per `what` in this run */
    int have = 0, k = 0;
    for (; k < 16 && made[k][0]; k++)
        have |= !strcmp(made[k], what);
    if (!have) {
        ok_run(c, 0, args, serial, what);
        if (k < 16)
            snprintf(made[k], sizeof made[k], "%s", what);
    }
    ok_run(c, ranks, pargs, piped, what);
    snprintf(name, sizeof name, "%s: %d ranks, --pipeline %d = one process", what, ranks, P);
    same_store(c, serial, piped, name);
}

static void write_ids(void)
{
    FILE *f = fopen(TDIR "/ids.txt", "w");
    for (int s = 0; f && s < 5; s++) /* 5 sequences of 12 ids below every fixture's vocab */
        for (int t = 0; t < 12; t++)
            fprintf(f, "%d%c", (s * 97 + t * 31 + 5) % 1000, t == 11 ? '\n' : ' ');
    if (f)
        fclose(f);
}

static void test_forward(chk *c)
{
    write_ids();
    piped_equals_serial(c, "fwd_emb", "forward --ids-file " TDIR "/ids.txt --batch 2", 2, 2);
    piped_equals_serial(c, "fwd_emb", "forward --ids-file " TDIR "/ids.txt --batch 2", 4, 2);
    piped_equals_serial(c, "fwd_emb", "forward --ids-file " TDIR "/ids.txt --batch 2", 3, 3);
    piped_equals_serial(c, "fwd_v3", "forward " V3 " --ids-file " TDIR "/ids.txt --batch 2", 2,
                        2);
    piped_equals_serial(c, "fwd_v4", "forward " V4 " --ids-file " TDIR "/ids.txt --batch 2", 2,
                        2);
}

#define SETS                                                                                 \
    "--set en=data/corpus/en.calib.txt,seqs=5,len=24,seed=3 "                                \
    "--set zh=data/corpus/zh.calib.txt,seqs=3,len=16 --batch 2"

static void test_stats(chk *c)
{
    piped_equals_serial(c, "stats_emb", "stats " SETS " --hessian layers\\.[14]\\.self_attn", 2,
                        2);
    piped_equals_serial(c, "stats_emb", "stats " SETS " --hessian layers\\.[14]\\.self_attn", 4,
                        2);
    piped_equals_serial(c, "stats_v3",
                        "stats " V3 " --set en=data/corpus/en.calib.txt,seqs=5,len=16,seed=3 "
                        "--batch 2 --hessian layers\\.[02]\\.",
                        2, 2);
    piped_equals_serial(c, "stats_v4",
                        "stats " V4 " --set en=data/corpus/en.calib.txt,seqs=5,len=16,seed=3 "
                        "--batch 2 --no-hessian",
                        2, 2);
}

static void test_eval(chk *c)
{
    piped_equals_serial(c, "eval_emb",
                        "eval --uniform rtn-b2-g64-asym --uniform rtn-b4-g64-asym "
                        "--domain en=data/corpus/en.eval.txt,seqs=5,len=24 "
                        "--domain zh=data/corpus/zh.eval.txt,seqs=3,len=16 --batch 2",
                        2, 2);
    piped_equals_serial(c, "eval_v3",
                        "eval " V3 " --uniform rtn-b4-g32-asym "
                        "--domain en=data/corpus/en.eval.txt,seqs=5,len=16 --batch 2",
                        2, 2);
    piped_equals_serial(c, "eval_v4",
                        "eval " V4 " --uniform rtn-b4-g32-asym "
                        "--domain en=data/corpus/en.eval.txt,seqs=5,len=16 --batch 2",
                        2, 2);
}

static void expect_fail(chk *c, int ranks, const char *args, const char *msg)
{
    int st = run_ranks(ranks, args, TDIR "/never.h5", log_, sizeof log_);
    struct stat sb;
    CHECK(c, st != 0 && strstr(log_, msg) && stat(TDIR "/never.h5", &sb) != 0,
          "%s on %d rank(s) fails with \"%s\" and no store (exit %d: %.300s)", args, ranks, msg,
          st, log_);
}

static void test_errors(chk *c)
{
    const char *fw = "forward --ids-file " TDIR "/ids.txt --batch 2";
    char a[512];
    snprintf(a, sizeof a, "%s --pipeline 3", fw);
    expect_fail(c, 2, a, "--pipeline 3: does not divide the 2 MPI ranks");
    snprintf(a, sizeof a, "stats " V3 " --set en=data/corpus/en.calib.txt,seqs=2,len=16 "
                          "--no-hessian --pipeline 4");
    expect_fail(c, 4, a, "--pipeline 4: more stages than the model's 3 layers");
    snprintf(a, sizeof a, "%s --pipeline 2", fw);
    expect_fail(c, 0, a, "--pipeline 2: this vbrlab is the serial build (no MPI)");
    snprintf(a, sizeof a, "%s --pipeline 2 --hidden", fw);
    expect_fail(c, 2, a, "--hidden, --router and --mem-cap are not available");
}

static void tiny_config(void)
{
    mpi_config("tests/data/run-tiny.ini", TDIR "/tiny.ini", TDIR "/tiny.h5");
}

/* `vbrlab run ARGS` on 2 ranks with VBRLAB_FAIL_ITEM=FAULT (NULL: none); exit status. */
static int run_piped(const char *args, const char *fault)
{
    char buf[512];
    snprintf(buf, sizeof buf, "run " TDIR "/tiny.ini %s", args);
    char *av[64];
    mpi_argv(av, 64, buf, 2);
    if (fault)
        setenv("VBRLAB_FAIL_ITEM", fault, 1);
    else
        unsetenv("VBRLAB_FAIL_ITEM");
    int st = tio_runv(av, log_, sizeof log_);
    unsetenv("VBRLAB_FAIL_ITEM");
    return st;
}

static void test_run(chk *c)
{
    tiny_config();
    char *av[] = {(char *)tio_bin(), "run", TDIR "/tiny.ini", "--force", NULL};
    int st = tio_runv(av, log_, sizeof log_);
    char *serial = NULL;
    size_t n_serial = 0;
    CHECK(c, st == 0 && (serial = tio_slurp(TDIR "/tiny.h5", &n_serial)),
          "run on one process (exit %d %.300s)", st, st ? log_ : "");
    /* the serial store is kept as TDIR/tiny_serial.h5 for the comparison */
    FILE *f = fopen(TDIR "/tiny_serial.h5", "wb");
    if (f && serial)
        fwrite(serial, 1, n_serial, f);
    if (f)
        fclose(f);
    free(serial);
    st = run_piped("--only eval --pipeline 2", "1:0");
    CHECK(c, st != 0 && strstr(log_, "rank 1: simulated failure at work item 0"),
          "stage 1 failing its first eval item stops the job naming rank 1 (exit %d: %.400s)",
          st, log_);
    st = run_piped("--only eval --pipeline 2", "0:0");
    CHECK(c, st != 0 && strstr(log_, "simulated failure at work item 0"),
          "stage 0 failing its first eval item stops the job (exit %d: %.400s)", st, log_);
    st = run_piped("--only eval --pipeline 2", NULL);
    CHECK(c, st == 0 && strstr(log_, "eval: done"), "the eval stage on the pipeline (exit %d: "
          "%.400s)", st, log_);
    same_store(c, TDIR "/tiny_serial.h5", TDIR "/tiny.h5",
               "run: eval on 2 ranks × --pipeline 2 = one process");
}

int main(void)
{
    chk c;
    chk_init(&c, "test_mpipe");
    if (!mpi_ready("test_mpipe"))
        return 0;
    mkdir("build", 0755);
    mkdir(TDIR, 0755);
    test_forward(&c);
    test_stats(&c);
    test_eval(&c);
    test_errors(&c);
    test_run(&c);
    return chk_done(&c);
}
