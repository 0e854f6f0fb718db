/* tests/test_mpi.c — the MPI build (`make MPI=1`, core/par_mpi.c) driven through mpirun: R ranks
 * give the bits of one process, and a rank that dies ends the job with an error and no store.
 *
 *   stats  1, 2 and 3 ranks, and the serial binary: every dataset of the stores equal byte for
 *          byte (tests/h5cmp.h). 5 sequences in batches of 2 = 3 batches: 2 ranks split them
 *          unevenly (2 + 1), 3 ranks one each, so the exact integer reduction and the token
 *          arrays' batch order are both exercised. Two sets of different lengths, XᵀX on one
 *          layer's attention input.
 *   sens   2 ranks = 1 rank (units from the work queue, additivity draws round-robin, tables
 *          shared by owner).
 *   eval   2 ranks = 1 rank (sequence blocks from the work queue, per-token arrays
 *          concatenated by owner).
 *   refuse `vbrlab alloc` (not shared over ranks) on 2 ranks: an error before any work.
 *   run    tests/data/run-tiny.ini on one process, and on 2 ranks stopped after the sens
 *          commit then rerun (resume): the same store.
 *   items  tests/data/run-items.ini: rank 1 of a 2-rank run fails at its second work item
 *          (VBRLAB_FAIL_ITEM): one error naming rank 1; the 2-rank rerun takes the journaled
 *          items and ends with the one-process store.
 *   kill   rank 1 of a 2-rank stats job is killed (SIGKILL) as soon as it exists: mpirun exits
 *          non-zero naming the signal, and the output store a previous run committed is left
 *          byte for byte as it was (atomic temp + rename: the job never reaches its commit).
 *
 * Needs VBRLAB_MPI_BIN (the MPI binary; `make test` sets it and builds it when mpicc is there)
 * and mpirun in PATH; otherwise it prints why it skips. --oversubscribe: 3 ranks on 2 cores.
 */
#define _POSIX_C_SOURCE 200809L
#include "../core/num.h"
#include "check.h"
#include "h5cmp.h"
#include "mpirun.h"
#include "testio.h"

#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TDIR "build/tmp-mpi"
#define STATS_ARGS                                                                           \
    "stats --set en=data/corpus/en.calib.txt,seqs=5,len=24,seed=3 "                          \
    "--set zh=data/corpus/zh.calib.txt,seqs=3,len=16 --batch 2 --hessian layers\\.0\\.self_attn"

static void test_stats(chk *c)
{
    static char log[1 << 16];
    const char *out[4] = {TDIR "/stats_serial.h5", TDIR "/stats_r1.h5", TDIR "/stats_r2.h5",
                          TDIR "/stats_r3.h5"};
    for (int r = 0; r < 4; r++) {
        int st = run_ranks(r, STATS_ARGS, out[r], log, sizeof log);
        CHECK(c, st == 0, "stats on %d rank(s) exits 0 (got %d %.400s)", r, st, st ? log : "");
    }
    same_store(c, out[0], out[1], "stats: mpirun -n 1 = serial binary");
    same_store(c, out[1], out[2], "stats: 2 ranks = 1 rank");
    same_store(c, out[1], out[3], "stats: 3 ranks = 1 rank");
}

/* ARGS on 1 and on 2 ranks into OUT1, OUT2: both succeed and the stores are equal. */
static void two_equal_one(chk *c, const char *what, const char *args, const char *out1,
                          const char *out2)
{
    static char log[1 << 16];
    const char *out[2] = {out1, out2};
    for (int r = 0; r < 2; r++) {
        int st = run_ranks(r + 1, args, out[r], log, sizeof log);
        CHECK(c, st == 0, "%s on %d rank(s) exits 0 (got %d %.400s)", what, r + 1, st,
              st ? log : "");
    }
    char name[64];
    snprintf(name, sizeof name, "%s: 2 ranks = 1 rank", what);
    same_store(c, out1, out2, name);
}

static void test_sens(chk *c)
{
    two_equal_one(c, "sens",
                  "sens --stats " TDIR "/stats_serial.h5 --set en --formats rtn:b=2..3:g=64 "
                  "--tokens 48 --add-draws 2",
                  TDIR "/sens_r1.h5", TDIR "/sens_r2.h5");
}

static void test_eval(chk *c)
{
    two_equal_one(c, "eval",
                  "eval --uniform rtn-b2-g64-asym --uniform rtn-b4-g64-asym "
                  "--domain en=data/corpus/en.eval.txt,seqs=5,len=24 "
                  "--domain zh=data/corpus/zh.eval.txt,seqs=3,len=16 --batch 2",
                  TDIR "/eval_r1.h5", TDIR "/eval_r2.h5");
}

/* A /proc file (its size reads as 0, so read to EOF) into buf[cap]; bytes read. */
static size_t read_proc(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = 0, k;
    while (f && n < cap - 1 && (k = fread(buf + n, 1, cap - 1 - n, f)) > 0)
        n += k;
    if (f)
        fclose(f);
    buf[n] = '\0';
    return n;
}

/* The pid of the process whose environment says OMPI_COMM_WORLD_RANK=RANK and whose command
 * line holds MARK; 0 if none (yet). */
static pid_t find_rank(int rank, const char *mark)
{
    char want[64];
    snprintf(want, sizeof want, "OMPI_COMM_WORLD_RANK=%d", rank);
    DIR *d = opendir("/proc");
    pid_t found = 0;
    for (struct dirent *de; d && !found && (de = readdir(d));) {
        long pid;
        if (num_long(de->d_name, 1, LONG_MAX, &pid)) /* not a process directory */
            continue;
        static char buf[1 << 16];
        char p[64];
        snprintf(p, sizeof p, "/proc/%ld/cmdline", pid);
        size_t n = read_proc(p, buf, sizeof buf);
        int hit = 0;
        for (size_t i = 0; i < n && !hit; i += strlen(buf + i) + 1)
            hit = strstr(buf + i, mark) != NULL;
        if (!hit)
            continue;
        snprintf(p, sizeof p, "/proc/%ld/environ", pid);
        n = read_proc(p, buf, sizeof buf);
        for (size_t i = 0; i < n && !found; i += strlen(buf + i) + 1)
            found = strcmp(buf + i, want) == 0 ? (pid_t)pid : 0;
    }
    if (d)
        closedir(d);
    return found;
}

/* A command that does not share its work (here `alloc`) refuses more than one rank instead of
 * letting every rank write the same store. */
static void test_refuse(chk *c)
{
    static char log[1 << 16];
    int st = run_ranks(2, "alloc --sens " TDIR "/sens_r1.h5 --set en --target-bpw 2.5",
                       TDIR "/refused.h5", log, sizeof log);
    CHECK(c, st != 0 && strstr(log, "vbrlab alloc: runs on one process only, not on 2 MPI "
                                    "ranks"),
          "vbrlab alloc on 2 ranks is refused (exit %d: %.200s)", st, log);
}

/* tests/data/NAME.ini with its store in TDIR (OUT), written to TDIR/INI. */
static void config_in_tdir(const char *src_ini, const char *ini, const char *out)
{
    char path[256], store[256];
    snprintf(path, sizeof path, TDIR "/%s", ini);
    snprintf(store, sizeof store, TDIR "/%s", out);
    mpi_config(src_ini, path, store);
}

static void tiny_config(void) { config_in_tdir("tests/data/run-tiny.ini", "tiny.ini", "tiny.h5"); }

/* vbrlab run: one process, then 2 ranks stopped after the sens commit and rerun (resumes from
 * the committed stages): the store equals the one-process store. */
static void test_run(chk *c)
{
    static char log[1 << 16];
    tiny_config();
    char *av[] = {(char *)tio_bin(), "run",
                  TDIR "/tiny.ini", "--force", NULL};
    int st = tio_runv(av, log, sizeof log);
    CHECK(c, st == 0 && rename(TDIR "/tiny.h5", TDIR "/tiny_serial.h5") == 0,
          "run on one process (exit %d %.300s)", st, st ? log : "");
    char buf[256] = "run " TDIR "/tiny.ini --stop-after sens";
    char *mv[64];
    mpi_argv(mv, 64, buf, 2);
    st = tio_runv(mv, log, sizeof log);
    CHECK(c, st == 0 && strstr(log, "sens: done") && !strstr(log, "eval: done"),
          "2 ranks, stopped after sens (exit %d %.300s)", st, st ? log : "");
    snprintf(buf, sizeof buf, "run %s/tiny.ini", TDIR);
    mpi_argv(mv, 64, buf, 2);
    st = tio_runv(mv, log, sizeof log);
    CHECK(c, st == 0 && strstr(log, "stats: cached") && strstr(log, "sens: cached") &&
             strstr(log, "eval: done"),
          "2 ranks resume from the committed stages (exit %d %.300s)", st, log);
    same_store(c, TDIR "/tiny_serial.h5", TDIR "/tiny.h5", "run: 2 ranks (resumed) = 1 process");
}

/* Per-item commit under MPI: rank 1 of a 2-rank run fails at its second work item
 * (VBRLAB_FAIL_ITEM=1:1, as a rank dying there): the job stops with one error naming rank 1;
 * the rerun on 2 ranks takes the journaled items (both ranks' journals) and the store equals
 * the one-process store of the same config. */
static void test_item_fault(chk *c)
{
    static char log[1 << 16];
    config_in_tdir("tests/data/run-items.ini", "items.ini", "items.h5");
    char *av[] = {getenv("VBRLAB_BIN") ? getenv("VBRLAB_BIN") : "build/vbrlab", "run",
                  TDIR "/items.ini", "--force", NULL};
    int st = tio_runv(av, log, sizeof log);
    CHECK(c, st == 0 && rename(TDIR "/items.h5", TDIR "/items_serial.h5") == 0,
          "items: run on one process (exit %d %.300s)", st, st ? log : "");
    char buf[256] = "run " TDIR "/items.ini --force";
    char *mv[64];
    mpi_argv(mv, 64, buf, 2);
    setenv("VBRLAB_FAIL_ITEM", "1:1", 1);
    st = tio_runv(mv, log, sizeof log);
    unsetenv("VBRLAB_FAIL_ITEM");
    CHECK(c, st != 0 && strstr(log, "vbrlab run: sens: rank 1: simulated failure at work item 1"),
          "items: rank 1 failing stops the job with one error naming it (exit %d %.400s)", st,
          log);
    snprintf(buf, sizeof buf, "run %s/items.ini", TDIR);
    mpi_argv(mv, 64, buf, 2);
    st = tio_runv(mv, log, sizeof log);
    CHECK(c, st == 0 && strstr(log, "stats: cached") && strstr(log, "items from the journal") &&
             strstr(log, "eval: done"),
          "items: 2 ranks resume from the journals (exit %d %.400s)", st, log);
    same_store(c, TDIR "/items_serial.h5", TDIR "/items.h5",
               "items: 2 ranks (failed, resumed) = 1 process");
}

static void test_kill(chk *c)
{
    static char log[1 << 16];
    const char *out = TDIR "/killed.h5";
    const char *args = "stats --set en=data/corpus/en.calib.txt,seqs=64,len=64 --no-hessian";
    /* a committed store from a good run: the killed run must leave it alone */
    int st = run_ranks(1, "stats --set en=data/corpus/en.calib.txt,seqs=2,len=16 --no-hessian",
                       out, log, sizeof log);
    CHECK(c, st == 0, "first store written (%.300s)", st ? log : "");
    size_t n0 = 0;
    char *before = tio_slurp(out, &n0);

    char buf[2048];
    snprintf(buf, sizeof buf, "%s -o %s", args, out);
    char *av[64];
    mpi_argv(av, 64, buf, 2);
    FILE *lf = tmpfile();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fileno(lf), 1);
    posix_spawn_file_actions_adddup2(&fa, fileno(lf), 2);
    extern char **environ;
    pid_t job = 0;
    int spawned = posix_spawnp(&job, av[0], &fa, NULL, av, environ) == 0;
    posix_spawn_file_actions_destroy(&fa);
    CHECK(c, spawned, "mpirun started");
    pid_t victim = 0;
    for (int i = 0; spawned && !victim && i < 6000; i++) { /* up to 60 s */
        victim = find_rank(1, out);
        if (!victim) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    CHECK(c, victim > 0, "rank 1 found (pid %d)", (int)victim);
    if (victim > 0)
        kill(victim, SIGKILL);
    int ws = 0;
    while (spawned && waitpid(job, &ws, 0) < 0 && errno == EINTR)
        ;
    rewind(lf);
    size_t got = fread(log, 1, sizeof log - 1, lf);
    log[got] = '\0';
    fclose(lf);
    int code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    CHECK(c, code != 0, "the job fails when a rank dies (exit %d)", code);
    const char *said = strstr(log, "mpirun noticed");
    CHECK(c, strstr(log, "signal 9") || strstr(log, "Killed"),
          "the launcher names the dead rank's signal: %.200s", said ? said : log);
    size_t n1 = 0;
    char *after = tio_slurp(out, &n1);
    CHECK(c, before && after && n0 == n1 && memcmp(before, after, n0) == 0,
          "the committed store is unchanged (%zu -> %zu bytes)", n0, n1);
    free(before);
    free(after);
}

int main(void)
{
    chk c;
    chk_init(&c, "test_mpi");
    if (!mpi_ready("test_mpi"))
        return 0;
    mkdir("build", 0755);
    mkdir(TDIR, 0755);
    test_stats(&c);
    test_sens(&c);
    test_eval(&c);
    test_refuse(&c);
    test_run(&c);
    test_item_fault(&c);
    test_kill(&c);
    return chk_done(&c);
}
