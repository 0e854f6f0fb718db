/* tests/fuzz/targets.h — the fuzz targets: one entry function per parser of the toolkit.
 *
 * Each entry takes arbitrary bytes, hands them to one parser the way a file or argument would
 * reach it, and checks the contract every parser promises: success, or a negative VL_E* code
 * with a non-empty one-line message. A crash, a sanitizer report or a hang is the fuzzer's
 * finding; a broken contract makes the entry return 1 (tests/fuzz/main.c turns that into an
 * abort libFuzzer records; tests/test_fuzz_replay.c into a failed check).
 *
 * The same entries run in two builds: under clang's libFuzzer (`make fuzz`, one binary per
 * target, build/fuzz/) and, for every seed and every saved finding, in the ordinary gcc test
 * suite (`make test`, tests/test_fuzz_replay.c), which needs no clang.
 *
 * Entries write files they need under a private temporary directory made on first use (fz_dir)
 * and are meant for one thread.
 */
#ifndef VL_FUZZ_TARGETS_H
#define VL_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

typedef int (*fz_entry)(const uint8_t *data, size_t size);

typedef struct {
    const char *name; /* also the seed folder tests/fuzz/<name>/ and tests/fuzz/regress/<name>/ */
    fz_entry run;
    const char *what;
} fz_target;

extern const fz_target fz_targets[];
extern const int fz_n_targets;

/* The target called name, or NULL. */
const fz_target *fz_find(const char *name);

/* Remove the private directory (end of a replay). */
void fz_cleanup(void);

#endif
