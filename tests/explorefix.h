/* tests/explorefix.h — the small store the explorer tests draw (test_explore.c, test_xvfb.c):
 * sens_write with two sets (en, zh), four tensors in a 2 × 2 map (layers 0-1 × q_proj,
 * experts.down_proj), two formats, and one allocation en-2.5 (3 bits on layer 0 q_proj, 2 on
 * layer 1 experts.0.down_proj). Header-only, test use only. */
#ifndef VL_TEST_EXPLOREFIX_H
#define VL_TEST_EXPLOREFIX_H

#include "../alloc/sens.h"
#include "../io/h5s.h"
#include "sensfix.h"

#include <stdio.h>
#include <string.h>

#define T 4
static const char *const tname[T] = {
    "model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.experts.0.down_proj.weight",
    "model.layers.1.self_attn.q_proj.weight", "model.layers.1.mlp.experts.0.down_proj.weight"};
/* α per set (rows) and tensor; one unit per tensor */
static const double alpha[2][T] = {{1.0, 2.0, 4.0, 8.0}, {3.0, 0.5, 4.0, 80.0}};
static const double bpw[T * 2] = {2.5, 3.5, 2.5, 3.5, 2.5, 3.5, 2.5, 3.5};

static inline int write_store(const char *path)
{
    sens_tensor t[T];
    char *un[T];
    double a0[2 * T], k0[2 * T], k1[2 * T], relw[2 * T * 2], ones[2 * T];
    unsigned char few[2 * T * 2] = {0};
    for (int i = 0; i < T; i++) {
        t[i] = (sens_tensor){i, (char *)tname[i], i / 2, i % 2 ? 0 : -1,
                             i % 2 ? SENS_P_EXP_DOWN : SENS_P_Q, 4, 16, 64, i};
        un[i] = (char *)tname[i];
    }
    for (int k = 0; k < 2 * T; k++) {
        a0[k] = alpha[k / T][k % T];
        k0[k] = a0[k] * 1e-4;
        k1[k] = a0[k] * 9e-4;
        ones[k] = 1;
    }
    for (int k = 0; k < 2 * T * 2; k++) /* [S, T, F]: 0.2 for 2 bits, 0.05 for 3, ×(set + 1) */
        relw[k] = (k % 2 ? 0.05 : 0.2) * (1 + k / (T * 2));
    qfmt fq[2];
    qfmt_parse(&fq[0], "rtn-b2-g64-asym", NULL);
    qfmt_parse(&fq[1], "rtn-b3-g64-asym", NULL);
    sfx_in in = {T,  t,  un, 64, {k0, k1}, {a0, a0}, 2, fq, "rtn:b=2..3:g=64", (double *)bpw,
                 relw, few, ones};
    sens_result r;
    char *sn[2];
    int64_t tok[2];
    sfx_result(&r, &in, sn, tok);
    h5s_store *s;
    vl_err e = {0, ""};
    double pk = 0.1;
    int64_t one = 1;
    int rc = h5s_create(&s, path, &e) || sens_write(&r, s, &e) ||
             h5s_write(s, "/alloc/en-2.5/predicted_kld", H5S_F64, &pk, 1, &one, "nat/token",
                       "predicted", &e) ||
             h5s_attr_set(s, "/alloc/en-2.5", "assignment",
                          "model.layers.0.self_attn.q_proj.weight\trtn-b3-g64-asym\n"
                          "model.layers.1.mlp.experts.0.down_proj.weight\trtn-b2-g64-asym\n",
                          &e) ||
             h5s_attr_set_f64(s, "/alloc/en-2.5", "target_bpw", 2.5, &e) || h5s_commit(s, &e);
    if (rc)
        printf("write_store: %s\n", e.msg);
    return rc;
}

#endif
