/* tests/bench_big.h — the `big` section of `make bench` (included by tests/bench.c only): peak
 * memory of `vbrlab stats` and `vbrlab eval` on a checkpoint larger than a toy, as a fraction of
 * its size (issue 15's goal: ≤ 0.35, i.e. memory bounded by a layer, not by the model).
 *
 * The checkpoint is made by `vbrlab synth` (analysis/synth.h) in a temporary directory under
 * /tmp, removed afterwards: a deepseek_v3 config with DeepSeek-V3's own widths (hidden 7168,
 * 128 heads of MLA with q_lora 1536 / kv_lora 512, dense MLP 18432, experts 2048 wide) but two
 * layers (one dense, one MoE with 8 routed experts top-2 + 1 shared expert) and the embedded
 * tokenizer's 16384-token vocabulary: 3.0 GB in bf16 at the default size (10 experts).
 * Opt-in: `build/release/tests/bench big` or VBRLAB_BENCH_BIG_MB=3000 make bench; the size
 * in MB scales it (routed experts added or removed, 88 MB each, at least 2: 2.3 GB).
 * Each command runs as a child process; its peak RSS comes from wait4's rusage (ru_maxrss),
 * its time from the wall clock (end to end: load, calibration cut, the pass, the store), so
 * tokens/s here includes loading the weights. On the 2-core dev VM shared with ~7 other jobs
 * the section took 15 minutes (synth 4 min, stats ~2 min, eval ~8 min: it quantizes every
 * projection) and needs 2 × (float32 model) ≈ 12 GB of free memory while the loader keeps
 * every weight as float32. wait4 needs _DEFAULT_SOURCE (bench.c).
 */
#ifndef VL_BENCH_BIG_H
#define VL_BENCH_BIG_H

#include "../core/prog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run argv with stdout/stderr into LOG; *rss_kib its peak RSS, *secs its wall time. Exit
 * status, −1 if it did not run or exit normally. */
static int big_child(char *const argv[], const char *log, long *rss_kib, double *secs)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    extern char **environ;
    pid_t pid;
    double t0 = prog_now();
    int ok = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) == 0;
    posix_spawn_file_actions_destroy(&fa);
    if (!ok)
        return -1;
    int ws = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &ws, 0, &ru) < 0)
        if (errno != EINTR)
            return -1;
    *secs = prog_now() - t0;
    *rss_kib = ru.ru_maxrss;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

/* Bytes of the *.safetensors files in DIR. */
static double big_ckpt_bytes(const char *dir) /* dir shorter than 4096 */
{
    DIR *d = opendir(dir);
    double n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        char p[8400];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (l > 12 && !strcmp(de->d_name + l - 12, ".safetensors") && stat(p, &sb) == 0)
            n += (double)sb.st_size;
    }
    if (d)
        closedir(d);
    return n;
}

static void big_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char p[8400];
        struct stat sb;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            big_rmdir(p);
        else
            unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static void bench_big(const char *bin)
{
    const char *env = getenv("VBRLAB_BENCH_BIG_MB");
    double mb = env && *env ? atof(env) : 3000;
    if (!(mb > 0)) {
        printf("| big checkpoint (RSS / size) | skipped: VBRLAB_BENCH_BIG_MB=0 |\n");
        return;
    }
    /* 2.8 GB at 8 routed experts, 88 MB per expert (3 × 7168 × 2048 bf16) */
    int experts = (int)((mb - 2100) / 88 + 0.5);
    experts = experts < 2 ? 2 : experts;
    char tmp[] = "/tmp/vbrlab-bench-big-XXXXXX";
    if (!mkdtemp(tmp)) {
        printf("| big checkpoint | skipped: cannot create a directory under /tmp |\n");
        return;
    }
    char cfg[4200], ck[4200], out[4200], log[4200], set[200];
    snprintf(cfg, sizeof cfg, "%s/config.json", tmp);
    snprintf(ck, sizeof ck, "%s/ckpt", tmp);
    snprintf(log, sizeof log, "%s/log.txt", tmp);
    FILE *f = fopen(cfg, "w");
    if (f) {
        fprintf(f, "{\"model_type\": \"deepseek_v3\", \"vocab_size\": 16384, \"hidden_size\": 7168,"
                   " \"intermediate_size\": 18432, \"moe_intermediate_size\": 2048, "
                   "\"num_hidden_layers\": 2, \"first_k_dense_replace\": 1, "
                   "\"num_attention_heads\": 128, \"num_key_value_heads\": 128, "
                   "\"q_lora_rank\": 1536, \"kv_lora_rank\": 512, \"qk_nope_head_dim\": 128, "
                   "\"qk_rope_head_dim\": 64, \"v_head_dim\": 128, \"n_routed_experts\": %d, "
                   "\"num_experts_per_tok\": 2, \"n_shared_experts\": 1, \"n_group\": 1, "
                   "\"topk_group\": 1, \"norm_topk_prob\": true, \"routed_scaling_factor\": 2.5,"
                   " \"rope_theta\": 10000.0, \"rms_norm_eps\": 1e-6, "
                   "\"max_position_embeddings\": 4096, \"tie_word_embeddings\": false, "
                   "\"hidden_act\": \"silu\", \"bos_token_id\": 0, \"eos_token_id\": 0}\n",
                experts);
        fclose(f);
    }
    double t_all = prog_now(), secs = 0;
    long rss = 0;
    char *syn[] = {(char *)bin, "synth", cfg, "-o", ck, "--tokenizer", "models/vbrlab-moe-tiny",
                   "--seed", "1", NULL};
    int st = big_child(syn, log, &rss, &secs);
    double size = big_ckpt_bytes(ck);
    if (st != 0 || size <= 0) {
        printf("| big checkpoint: vbrlab synth | failed (exit %d, log %s kept) |\n", st, log);
        return;
    }
    printf("| big checkpoint: deepseek_v3, DeepSeek-V3 widths, 2 layers, %d experts, bf16 "
           "(GB) | %.2f |\n", experts, size / 1e9);
    printf("| vbrlab synth: s, MB/s, peak RSS MiB | %.1f, %.0f, %.0f |\n", secs,
           size / 1e6 / secs, rss / 1024.0);
    const int S = 2, T = 64;
    snprintf(set, sizeof set, "en=data/corpus/en.calib.txt,seqs=%d,len=%d", S, T);
    snprintf(out, sizeof out, "%s/stats.h5", tmp);
    char *sta[] = {(char *)bin, "stats", ck, "--set", set, "--no-hessian", "-o", out, NULL};
    st = big_child(sta, log, &rss, &secs);
    if (st == 0)
        printf("| big: vbrlab stats %d×%d --no-hessian: peak RSS / checkpoint (goal ≤ 0.35), "
               "RSS MiB, tokens/s end to end | %.2f, %.0f, %.1f |\n", S, T,
               rss * 1024.0 / size, rss / 1024.0, S * T / secs);
    else
        printf("| big: vbrlab stats | failed (exit %d, peak RSS %.0f MiB) |\n", st, rss / 1024.0);
    snprintf(set, sizeof set, "en=data/corpus/en.eval.txt,seqs=%d,len=%d", S, T);
    snprintf(out, sizeof out, "%s/eval.h5", tmp);
    char *eva[] = {(char *)bin, "eval", ck, "--uniform", "rtn-b4-g64-asym", "--domain", set,
                   "-o", out, NULL};
    st = big_child(eva, log, &rss, &secs);
    if (st == 0)
        printf("| big: vbrlab eval (one uniform row, %d×%d): peak RSS / checkpoint (goal ≤ "
               "0.35), RSS MiB, tokens/s end to end | %.2f, %.0f, %.1f |\n", S, T,
               rss * 1024.0 / size, rss / 1024.0, S * T / secs);
    else
        printf("| big: vbrlab eval | failed (exit %d, peak RSS %.0f MiB) |\n", st, rss / 1024.0);
    printf("| big: section time (s) | %.0f |\n", prog_now() - t_all);
    big_rmdir(tmp);
}

#endif
