/* tests/test_xsel.c — language-specific experts (alloc/xsel.h) and `vbrlab eval-experts`:
 * the selection against a brute-force ranking, expert bits of a hand-made assignment, and on the
 * embedded model at small size: the selection read back equals the brute force over the stored
 * routing counts, the two rows quantize the same number of tensors and give different KLD. */
#define _POSIX_C_SOURCE 200809L
#include "../alloc/xsel.h"
#include "../io/h5s.h"
#include "check.h"
#include "testio.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 11;
}

/* Brute force: the k experts with the largest (b + ε)/(a + ε), ties to the lower index, in
 * rank order (rank = how many experts come before). */
static void bf_pick(const double *a, const double *b, int E, int k, int *out)
{
    for (int e = 0; e < E; e++) {
        double r = (b[e] + XS_EPS) / (a[e] + XS_EPS);
        int rank = 0;
        for (int f = 0; f < E; f++) {
            double rf = (b[f] + XS_EPS) / (a[f] + XS_EPS);
            rank += rf > r || (rf == r && f < e);
        }
        if (rank < k)
            out[rank] = e;
    }
}

static void test_pick(chk *c)
{
    uint64_t s = 11;
    int bad = 0;
    for (int t = 0; t < 200; t++) {
        int E = 2 + (int)(lcg(&s) % 30), k = (int)(lcg(&s) % (E + 1));
        double a[32], b[32];
        for (int e = 0; e < E; e++) { /* coarse values: ties and zero shares happen */
            a[e] = (double)(lcg(&s) % 4) / 8;
            b[e] = (double)(lcg(&s) % 4) / 8;
        }
        int got[32], want[32];
        xs_pick(a, b, E, k, got);
        bf_pick(a, b, E, k, want);
        bad += k && memcmp(got, want, (size_t)k * sizeof *got) != 0;
    }
    CHECK_INT(c, bad, 0, "xs_pick = brute-force ranking on 200 random cases with ties");
}

static void test_bits(chk *c)
{
    const char *text = "model.layers.0.mlp.experts.1.gate_proj.weight\trtn-b2-g64-asym\n"
                       "model.layers.0.mlp.experts.1.up_proj.weight\trtn-b3-g64-asym\n"
                       "model.layers.0.mlp.experts.1.down_proj.weight\tgptq-b4-g64-asym\n"
                       "model.layers.1.mlp.experts.0.down_proj.weight\trtn-b3-g64-asym\n"
                       "model.layers.1.mlp.shared_expert.down_proj.weight\trtn-b8-g64-asym\n"
                       "model.layers.1.self_attn.q_proj.weight\trtn-b8-g64-asym\n"
                       "model.layers.7.mlp.experts.0.down_proj.weight\trtn-b8-g64-asym\n";
    double bits[2 * 2];
    vl_err e = {0, ""};
    int rc = xs_expert_bits(text, 2, 2, bits, &e);
    CHECK(c, rc == 0 && bits[1] == 3.0 && bits[2] == 3.0 && isnan(bits[0]) && isnan(bits[3]),
          "expert bits: mean 3 for L0 e1, 3 for L1 e0, fp elsewhere; shared/attention/out of "
          "range skipped (%s)", e.msg);
    rc = xs_expert_bits("model.layers.0.mlp.experts.1.up_proj.weight rtn-b2-g64-asym\n", 2, 2,
                        bits, &e);
    CHECK(c, rc == VL_EFORMAT && strstr(e.msg, "line 1") && strstr(e.msg, "no tab"),
          "a line without a tab: VL_EFORMAT naming the line (%s)", e.msg);
    rc = xs_expert_bits("x\tfoo\nmodel.layers.0.mlp.experts.1.up_proj.weight\trtn-b9\n", 2, 2,
                        bits, &e);
    CHECK(c, rc == VL_EFORMAT && strstr(e.msg, "line 2"), "an unknown format: line 2 (%s)",
          e.msg);
}

/* Run "$VBRLAB_BIN ARGS" with stdout into OUT; returns the exit status; stderr into ERR. */
static int run_cli(const char *args, char *out, size_t cap, const char *errfile)
{
    const char *bin = getenv("VBRLAB_BIN");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s 2>%s", bin ? bin : "build/vbrlab", args, errfile);
    return tio_run(cmd, out, cap);
}

/* The brute-force selection of set pair (a, b) in layer l from the stored routing counts. */
static int stored_pick(h5s_store *s, const char *a, const char *b, int l, int k, int *out, int *E)
{
    double *sh[2] = {NULL, NULL};
    const char *set[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        char p[128];
        snprintf(p, sizeof p, "/stats/%s/layers/%02d/router/routed", set[i], l);
        int64_t *cnt = NULL, dims[H5S_MAX_DIMS];
        int nd = 0;
        vl_err e;
        if (h5s_read(s, p, H5S_I64, (void **)&cnt, &nd, dims, &e) || nd != 1)
            return -1;
        *E = (int)dims[0];
        sh[i] = malloc((size_t)*E * sizeof(double));
        double tot = 0;
        for (int x = 0; x < *E; x++)
            tot += (double)cnt[x];
        for (int x = 0; x < *E; x++)
            sh[i][x] = (double)cnt[x] / tot;
        vl_free(cnt);
    }
    bf_pick(sh[0], sh[1], *E, k, out);
    free(sh[0]);
    free(sh[1]);
    return 0;
}

static void test_cli(chk *c)
{
    char dir[64], args[2048], out[1 << 16], errf[128];
    if (tio_tmpdir(dir, sizeof dir, "test-xsel"))
        return;
    snprintf(errf, sizeof errf, "%s/err.txt", dir);
    snprintf(args, sizeof args, "stats --set en=data/corpus/en.calib.txt,seqs=2,len=32 "
                                "--set zh=data/corpus/zh.calib.txt,seqs=2,len=32 --no-hessian "
                                "-o %s/st.h5", dir);
    CHECK_INT(c, run_cli(args, out, sizeof out, errf), 0, "stats of en and zh");
    snprintf(args, sizeof args, "eval-experts --stats %s/st.h5 --sets en,zh --count 2 "
                                "--domain en=data/corpus/en.eval.txt,seqs=3,len=24 "
                                "--domain zh=data/corpus/zh.eval.txt,seqs=3,len=24 -o %s/x.h5",
             dir, dir);
    int rc = run_cli(args, out, sizeof out, errf);
    CHECK_INT(c, rc, 0, "eval-experts runs");
    CHECK(c, strstr(out, "zh-specific experts") && strstr(out, "Paired difference"),
          "prints the selection and the paired differences");
    h5s_store *st = NULL, *x = NULL;
    vl_err e = {0, ""};
    char p[256];
    snprintf(p, sizeof p, "%s/st.h5", dir);
    rc = h5s_open(&st, p, &e);
    snprintf(p, sizeof p, "%s/x.h5", dir);
    if (!rc)
        rc = h5s_open(&x, p, &e);
    CHECK(c, rc == 0, "stores open (%s)", e.msg);
    if (rc)
        goto done;
    /* the selection: brute force over the stored counts, rendered as the command writes it */
    for (int g = 0; g < 2; g++) {
        char want[1024] = "", *got = NULL;
        for (int l = 0; l < 6; l++) {
            int ord[64], E = 0;
            if (stored_pick(st, g ? "zh" : "en", g ? "en" : "zh", l, 2, ord, &E))
                continue;
            snprintf(want + strlen(want), sizeof want - strlen(want), "L%02d: %d,%d\n", l,
                     ord[0], ord[1]);
        }
        rc = h5s_attr_get(x, g ? "/eval/en-specific" : "/eval/zh-specific", "experts", &got, &e);
        CHECK(c, rc == 0 && got && !strcmp(got, want) && strlen(want) > 0,
              "%s-specific selection = brute force over the routing counts:\n%s", g ? "en" : "zh",
              want);
        vl_free(got);
    }
    double nt[2] = {0, 0};
    h5s_attr_get_f64(x, "/eval/zh-specific", "n_tensors", &nt[0], &e);
    h5s_attr_get_f64(x, "/eval/en-specific", "n_tensors", &nt[1], &e);
    CHECK(c, nt[0] == 6 * 2 * 3 && nt[1] == nt[0],
          "both rows quantize 2 experts × 3 projections in each of 6 layers (%g, %g)", nt[0],
          nt[1]);
    double *m = NULL;
    int nd = 0;
    int64_t sh[H5S_MAX_DIMS];
    rc = h5s_read(x, "/eval/matrix/mean_kld", H5S_F64, (void **)&m, &nd, sh, &e);
    CHECK(c, rc == 0 && nd == 2 && sh[0] == 2 && sh[1] == 2 && m[0] > 0 && m[1] > 0 &&
                 m[2] > 0 && m[3] > 0 && m[0] != m[2] && m[1] != m[3],
          "rows differ on each domain and every KLD > 0");
    if (!rc)
        printf("# mean KLD en/zh: zh-specific %.4g / %.4g, en-specific %.4g / %.4g\n", m[0], m[1],
               m[2], m[3]);
    vl_free(m);
    /* refusals */
    snprintf(args, sizeof args, "eval-experts --stats %s/st.h5 --sets en,zh --count 9 "
                                "--domain en=data/corpus/en.eval.txt,seqs=1,len=8", dir);
    rc = run_cli(args, out, sizeof out, errf);
    char *msg = tio_slurp(errf, NULL);
    CHECK(c, rc == 1 && msg && strstr(msg, "--count 9: at most 8"), "count over E/2 refused: %s",
          msg ? msg : "");
    vl_free(msg);
    snprintf(args, sizeof args, "eval-experts --stats %s/st.h5 --sets en,zh --count 2 --format "
                                "gptq-b2-g64-asym --domain en=data/corpus/en.eval.txt,seqs=1,len=8",
             dir);
    rc = run_cli(args, out, sizeof out, errf);
    msg = tio_slurp(errf, NULL);
    CHECK(c, rc == 1 && msg && strstr(msg, "calibration statistics") &&
                 strchr(msg, '\n') == msg + strlen(msg) - 1,
          "GPTQ refused (no statistics used): %s", msg ? msg : "");
    vl_free(msg);
done:
    h5s_close(st);
    h5s_close(x);
    if (tio_rmtree(dir) != 0)
        fprintf(stderr, "%s not removed\n", dir);
}

int main(void)
{
    chk c;
    chk_init(&c, "xsel");
    test_pick(&c);
    test_bits(&c);
    test_cli(&c);
    return chk_done(&c);
}
