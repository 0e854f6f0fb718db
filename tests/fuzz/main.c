/* tests/fuzz/main.c — libFuzzer's entry for one target of targets.h, chosen at build time with
 * -DFZ_NAME='"st"' (Makefile: make fuzz). A broken parser contract aborts, so libFuzzer keeps
 * the input as a crash artifact like any sanitizer report. */
#include "targets.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const fz_target *t;
    if (!t && !(t = fz_find(FZ_NAME))) {
        fprintf(stderr, "no fuzz target %s\n", FZ_NAME);
        abort();
    }
    if (t->run(data, size))
        abort();
    return 0;
}
