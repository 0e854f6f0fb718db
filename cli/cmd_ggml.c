/* cli/cmd_ggml.c — `vbrlab ggml-check GOLDENS.h5 [--type T] [--max-ratio R]`: decode every
 * block stored by llama.cpp and compare bit for bit, quantize every case with its importance and
 * compare the weighted error with llama.cpp's (alloc/ggml_check.h). Exit 1 on any mismatch or
 * on a ratio above R (default 1.02). */
#include "cli.h"

#include "../alloc/ggml_check.h"
#include "../core/num.h"
#include "../core/num.h"

#include <float.h>

#include <stdio.h>
#include <string.h>

int cmd_ggml_check(int argc, char **argv)
{
    const char *path = NULL, *only = NULL;
    double maxr = 1.02;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(argv[i], "--max-ratio") && i + 1 < argc) {
            if (num_f64(argv[++i], 0, DBL_MAX, &maxr) || !(maxr > 0))
                return cli_failf("ggml-check", "bad --max-ratio '%s'", argv[i]);
        } else if (cli_is_positional(argv[i]) && !path) {
            path = argv[i];
        } else {
            return cli_failf("ggml-check", "unexpected argument '%s' (usage: vbrlab ggml-check "
                             "GOLDENS.h5 [--type T] [--max-ratio R])", argv[i]);
        }
    }
    if (!path) return cli_failf("ggml-check", "missing GOLDENS.h5");
    ggf_check_result r;
    vl_err e = {0};
    if (ggf_check_goldens(path, only, maxr, stdout, &r, &e)) return cli_fail("ggml-check", &e);
    printf("%d checked, %d decode mismatches, %d above %.4g (worst ratio %.4f)\n", r.n_lines,
           r.n_decode_bad, r.n_ratio_bad, maxr, r.worst_ratio);
    if (r.n_lines == 0) return cli_failf("ggml-check", "%s: nothing matched", path);
    return r.n_decode_bad || r.n_ratio_bad ? 1 : 0;
}
