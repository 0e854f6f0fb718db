/* tests/plotfix.h — the synthetic stores the plot tests draw from (stats.h5 with routing
 * counts, sens.h5, eval.h5 with per-token KLD, alloc.h5): small, hand-made, every value known.
 * Header-only, test use (tests/test_plotcli.c). */
#ifndef VL_PLOTFIX_H
#define VL_PLOTFIX_H

#include "../alloc/sens.h"
#include "../io/h5s.h"
#include "sensfix.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define NL 3 /* layers; layer 1 is dense */
#define NE 4 /* experts */

/* ---------------------------------------------------------------- synthetic stores */

static const char *MEANING = "synthetic test value";

static int64_t routed_of(int set, int l, int e) { return 10 + 7 * e + 3 * l + set * (e == 1 ? 40 : 0); }

/* stats.h5: sets en, zh; layer 1 dense; omit_l2: en lacks layer 2's router/routed */
static void write_stats(const char *path, int omit_l2)
{
    h5s_store *s;
    vl_err e;
    if (h5s_create(&s, path, &e))
        return;
    const char *sets[2] = {"en", "zh"};
    for (int k = 0; k < 2; k++) {
        char p[128];
        uint8_t sparse[NL] = {1, 0, 1};
        int64_t sh = NL;
        snprintf(p, sizeof p, "/stats/%s/layer_sparse", sets[k]);
        h5s_write(s, p, H5S_U8, sparse, 1, &sh, "flag", MEANING, &e);
        for (int l = 0; l < NL; l++) {
            if (!sparse[l] || (omit_l2 && k == 0 && l == 2))
                continue;
            int64_t r[NE], tok = 0, ne = NE, one = 1;
            for (int x = 0; x < NE; x++)
                tok += r[x] = routed_of(k, l, x);
            snprintf(p, sizeof p, "/stats/%s/layers/%02d/router/routed", sets[k], l);
            h5s_write(s, p, H5S_I64, r, 1, &ne, "tokens", MEANING, &e);
            tok /= 2;
            snprintf(p, sizeof p, "/stats/%s/layers/%02d/router/tokens", sets[k], l);
            h5s_write(s, p, H5S_I64, &tok, 1, &one, "tokens", MEANING, &e);
        }
    }
    h5s_commit(s, &e);
}

static const char *const tproj[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                        "self_attn.o_proj", "mlp.shared_expert.gate_proj",
                                        "mlp.shared_expert.down_proj"};
static const char *const eproj[3] = {"gate_proj", "up_proj", "down_proj"};
#define NI (NL * (6 + NE * 3) + 1)

/* Item names (every layer MoE here, plus one router vector that is not drawn) and α. */
static void sens_items(char names[NI][96], double *alpha, int set)
{
    int n = 0;
    for (int l = 0; l < NL; l++) {
        for (int j = 0; j < 6; j++) {
            snprintf(names[n], 96, "model.layers.%d.%s.weight", l, tproj[j]);
            alpha[n++] = (1 + l) * pow(10, -3 + j * 0.5) * (set ? 2 : 1);
        }
        for (int x = 0; x < NE; x++)
            for (int j = 0; j < 3; j++) {
                snprintf(names[n], 96, "model.layers.%d.mlp.experts.%d.%s.weight", l, x, eproj[j]);
                alpha[n++] = 1e-4 * (1 + x + 4 * j) * (l + 1) * (set && x == 2 ? 10 : 1);
            }
    }
    snprintf(names[n], 96, "model.layers.0.mlp.gate.weight");
    alpha[n++] = 5;
}

/* A sens store in vbrlab sens's own layout (sens_write), tensor granularity, two sets: α from
 * sens_items (the router vector is not a quantizable tensor and stays out), RD with four
 * formats, the same per-set error for both sets. */
static void write_sens(const char *path)
{
    static char names[NI][96];
    static double a[2][NI], bpw[NI * 4], d[2 * NI * 4], ones[2 * NI];
    static double kl[2][2 * NI], al[2][2 * NI];
    static unsigned char few[2 * NI * 4];
    static sens_tensor t[NI];
    static char *tn[NI];
    sens_items(names, a[0], 0);
    sens_items(names, a[1], 1);
    const int T = NI - 1, F = 4;
    static const char *const fmts[4] = {"rtn-b2-g64-asym", "rtn-b3-g64-asym", "gptq-b2-g64-asym",
                                        "gptq-b3-g64-asym-had"};
    qfmt fq[4];
    for (int f = 0; f < F; f++)
        qfmt_parse(&fq[f], fmts[f], NULL);
    for (int i = 0; i < T; i++) {
        int l = 0, e = -1;
        const char *x = strstr(names[i], ".experts.");
        sscanf(names[i], "model.layers.%d.", &l);
        int64_t ex;
        if (x && !num_digits(x + 9, NULL, 1 << 20, &ex))
            e = (int)ex;
        t[i] = (sens_tensor){i, names[i], l, e, 0, 16, 16, 256, i};
        tn[i] = names[i];
        ones[i] = ones[T + i] = 1;
        for (int k = 0; k < 2; k++) {
            al[0][k * T + i] = al[1][k * T + i] = a[k][i];
            kl[0][k * T + i] = a[k][i] * 1e-4;
            kl[1][k * T + i] = a[k][i] * 9e-4;
        }
        for (int f = 0; f < F; f++) {
            bpw[i * F + f] = (f % 2 ? 3.5 : 2.5) + 0.01 * (i % 3);
            d[i * F + f] = d[(T + i) * F + f] =
                (f % 2 ? 0.05 : 0.2) * (f >= 2 ? 0.5 : 1) * (1 + 0.1 * (i % 5));
        }
    }
    sfx_in in = {T, t, tn, 256, {kl[0], kl[1]}, {al[0], al[1]}, F, fq,
                 "rtn:b=2..3:g=64;gptq:b=2..3:g=64", bpw, d, few, ones};
    sens_result r;
    char *sets[2];
    int64_t toks[2];
    sfx_result(&r, &in, sets, toks);
    h5s_store *s;
    vl_err e;
    if (h5s_create(&s, path, &e))
        return;
    if (sens_write(&r, s, &e))
        printf("FAIL write_sens: %s\n", e.msg);
    h5s_commit(s, &e);
}

#define NA 5
static const char *const rows[NA] = {"rtn-b2-g64-asym", "en-2.5", "zh-2.5", "en-3", "rtn-b3-g64-asym"};
static const double row_bpw[NA] = {2.5, 2.5, 2.5, 3.0, 3.5};
static const double kld[NA * 2] = {1.5, 2.5, 0.3, 0.9, 0.5, 0.35, 0.12, 0.4, 0.08, 0.11};

static void write_eval(const char *path)
{
    h5s_store *s;
    vl_err e;
    if (h5s_create(&s, path, &e))
        return;
    int64_t sh[2] = {NA, 2};
    h5s_write(s, "/eval/matrix/mean_kld", H5S_F64, kld, 2, sh, "nat", MEANING, &e);
    h5s_attr_set(s, "/eval/matrix", "rows", "rtn-b2-g64-asym\nen-2.5\nzh-2.5\nen-3\nrtn-b3-g64-asym", &e);
    h5s_attr_set(s, "/eval/matrix", "cols", "en\nzh", &e);
    /* per-token KLD [4 sequences, 2 tokens]: the cell's mean plus a per-sequence offset
     * summing to 0, so every row's difference to another is the same on every sequence
     * (significant) — except en-3 on en, whose offsets make its difference to the column's
     * best (rtn-b3) change sign between sequences (not significant) */
    static const double off[4] = {-0.01, 0.01, -0.02, 0.02}, wide[4] = {-0.1, 0.1, -0.12, 0.2};
    for (int r = 0; r < NA; r++) {
        char g[64], p[96];
        snprintf(g, sizeof g, "/eval/%s", rows[r]);
        for (int d = 0; d < 2; d++) {
            double tok[8];
            int64_t sh2[2] = {4, 2};
            for (int k = 0; k < 8; k++)
                tok[k] = kld[r * 2 + d] + (r == 3 && d == 0 ? wide : off)[k / 2];
            snprintf(p, sizeof p, "%s/%s/kld", g, d ? "zh" : "en");
            h5s_write(s, p, H5S_F64, tok, 2, sh2, "nat", MEANING, &e);
        }
        int uni = r == 0 || r == 4;
        h5s_attr_set(s, g, "source", uni ? "uniform" : "alloc.txt", &e);
        h5s_attr_set(s, g, "format", uni ? rows[r] : "mixed", &e);
        h5s_attr_set_f64(s, g, "bpw", row_bpw[r], &e);
        if (r == 2) /* zh-2.5 is a rules baseline */
            h5s_attr_set(s, g, "solver", "rules", &e);
    }
    const char *doms[2] = {"en", "zh"};
    for (int d = 0; d < 2; d++) {
        char p[64];
        /* 4 sequences of 3 tokens: the per-token KLD above is [seqs, len − 1] */
        int32_t ids[12] = {1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3};
        int64_t n43[2] = {4, 3};
        snprintf(p, sizeof p, "/eval/domains/%s/ids", doms[d]);
        h5s_write(s, p, H5S_I32, ids, 2, n43, "token id", MEANING, &e);
        p[strlen(p) - 4] = '\0';
        h5s_attr_set_f64(s, p, "seqs", 4, &e);
        h5s_attr_set_f64(s, p, "len", 3, &e);
    }
    h5s_commit(s, &e);
}

static void write_alloc(const char *path)
{
    h5s_store *s;
    vl_err e;
    if (h5s_create(&s, path, &e))
        return;
    char text[8192] = "";
    for (int l = 0; l < NL; l++) {
        char line[160];
        snprintf(line, sizeof line, "model.layers.%d.self_attn.q_proj.weight\trtn-b%d-g64-asym\n",
                 l, 2 + l);
        strcat(text, line);
        for (int x = 0; x < NE; x++) {
            snprintf(line, sizeof line, "model.layers.%d.mlp.experts.%d.down_proj.weight\t"
                                        "gptq-b%d-g64-asym\n", l, x, x % 2 ? 2 : 4);
            strcat(text, line);
        }
    }
    double pk = 0.1;
    int64_t n = 1;
    h5s_write(s, "/alloc/en-2.5/predicted_kld", H5S_F64, &pk, 1, &n, "nat", MEANING, &e);
    h5s_attr_set(s, "/alloc/en-2.5", "assignment", text, &e);
    h5s_attr_set_f64(s, "/alloc/en-2.5", "target_bpw", 2.5, &e);
    h5s_commit(s, &e);
}

#endif
