/* cli/cmd_synth.c — `vbrlab synth`: a random-weight checkpoint of a config (analysis/synth.h).
 *
 *   vbrlab synth CONFIG.json -o DIR [--dtype bf16|fp8|f32] [--seed S] [--shard-bytes N]
 *                [--fp8-block B] [--tokenizer TOKDIR]
 *
 * DIR must not exist (or be empty); it appears complete or not at all. The stores of
 * `vbrlab stats`/`eval` on it need a tokenizer whose ids fit the config's vocab_size: give
 * --tokenizer (a directory with tokenizer.json), e.g. models/vbrlab-moe-tiny for a config
 * with vocab_size ≥ 16384.
 */
#include "cli.h"

#include "../analysis/synth.h"
#include "../core/num.h"

#include <stdio.h>
#include <string.h>

#define CMD "synth"

static const char usage_line[] =
    "usage: vbrlab synth CONFIG.json -o DIR [--dtype bf16|fp8|f32] [--seed S] "
    "[--shard-bytes N] [--fp8-block B] [--tokenizer TOKDIR]";

int cmd_synth(int argc, char **argv)
{
    synth_opts o = synth_opts_defaults();
    const char *cfg = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_positional(s) && !cfg) {
            cfg = s;
            continue;
        }
        if (!v || cli_is_positional(s))
            return cli_failf(CMD, "unexpected argument '%s' (%s)", s, usage_line);
        i++;
        if (!strcmp(s, "-o")) {
            out = v;
        } else if (!strcmp(s, "--dtype")) {
            if (!strcmp(v, "bf16"))
                o.dtype = ST_BF16;
            else if (!strcmp(v, "fp8"))
                o.dtype = ST_F8_E4M3;
            else if (!strcmp(v, "f32"))
                o.dtype = ST_F32;
            else
                return cli_failf(CMD, "--dtype '%s': expected bf16, fp8 or f32", v);
        } else if (!strcmp(s, "--seed")) {
            if (num_u64(v, UINT64_MAX, 0, &o.seed))
                return cli_failf(CMD, "--seed '%s': expected an integer in [0, 2^64)", v);
        } else if (!strcmp(s, "--shard-bytes")) {
            if (num_i64(v, 1, INT64_MAX, &o.shard_bytes))
                return cli_failf(CMD, "--shard-bytes '%s': expected a positive integer", v);
        } else if (!strcmp(s, "--fp8-block")) {
            if (num_int(v, 1, 4096, &o.fp8_block))
                return cli_failf(CMD, "--fp8-block '%s': expected an integer in [1, 4096]", v);
        } else if (!strcmp(s, "--tokenizer")) {
            o.tokenizer = v;
        } else {
            return cli_failf(CMD, "unexpected argument '%s' (%s)", s, usage_line);
        }
    }
    if (!cfg || !out)
        return cli_failf(CMD, "give CONFIG.json and -o DIR (%s)", usage_line);
    vl_err err = {0};
    synth_report r;
    if (synth_write(cfg, out, &o, &r, &err))
        return cli_fail(CMD, &err);
    printf("%s: %lld tensors (%lld parameters), %d shard(s), %lld bytes of tensor data, %s\n",
           out, (long long)r.n_tensors, (long long)r.params, r.n_shards,
           (long long)r.data_bytes, o.dtype == ST_F8_E4M3 ? "fp8 e4m3 + bf16" : st_dtype_name(o.dtype));
    return 0;
}
