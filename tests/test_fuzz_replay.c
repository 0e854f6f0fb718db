/* tests/test_fuzz_replay.c — every fuzz seed and every saved fuzz finding, replayed through the
 * same entry functions the fuzzer calls (tests/fuzz/targets.c), in the ordinary build.
 *
 * For each target of tests/fuzz/targets.h: the seed inputs tests/fuzz/<target>/ (the project's
 * own valid files, small) and the findings tests/fuzz/regress/<target>/ (inputs that once
 * crashed, hung or broke the one-line-error contract). Each must run to the end with the
 * contract kept; under `make asan` also without a sanitizer report. Every target must have
 * seeds, so a target whose folder went missing fails here. A finding that hangs again would
 * stall this test: an alarm turns that into a failure. */
#define _POSIX_C_SOURCE 200809L
#include "fuzz/targets.c"

#include "check.h"
#include "testio.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "FAIL a fuzz input ran past 120 s (a hang came back)\n";
    if (write(1, msg, sizeof msg - 1) < 0)
        _exit(2);
    _exit(1);
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run target t on every file of folder dir; returns the number of files, −1 if no folder. */
static int replay(chk *c, const fz_target *t, const char *dir, int *broken)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char *names[4096];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 4096;)
        if (e->d_name[0] != '.' && strcmp(e->d_name, "README.md"))
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp); /* a stable order for the log */
    for (int i = 0; i < n; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        size_t len = 0;
        char *data = tio_slurp(p, &len);
        if (!data) {
            CHECK(c, 0, "%s: readable", p);
            continue;
        }
        alarm(120);
        int bad = t->run((const uint8_t *)data, len);
        alarm(0);
        if (bad) {
            CHECK(c, 0, "%s on %s: contract kept", t->name, p);
            (*broken)++;
        }
        free(data);
        free(names[i]);
    }
    return n;
}

int main(void)
{
    chk c;
    chk_init(&c, "test_fuzz_replay");
    signal(SIGALRM, on_alarm);
    for (int k = 0; k < fz_n_targets; k++) {
        const fz_target *t = &fz_targets[k];
        char dir[256];
        int broken = 0;
        snprintf(dir, sizeof dir, "tests/fuzz/%s", t->name);
        int seeds = replay(&c, t, dir, &broken);
        snprintf(dir, sizeof dir, "tests/fuzz/regress/%s", t->name);
        int found = replay(&c, t, dir, &broken);
        CHECK(&c, seeds > 0 && broken == 0, "%s (%s): %d seeds, %d saved findings, all kept "
              "the contract", t->name, t->what, seeds, found < 0 ? 0 : found);
    }
    fz_cleanup();
    return chk_done(&c);
}
