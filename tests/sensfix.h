/* tests/sensfix.h — the synthetic /sens the fixtures write (explorefix.h, plotfix.h, the fuzz
 * targets' template): tensor granularity, one unit per tensor, two sets en and zh, ε 0.01 and
 * 0.03, seed 1, few-token policy rtn at 16 tokens. The caller owns every array and gives the
 * values that differ between fixtures. Header-only, test use only. */
#ifndef VL_TEST_SENSFIX_H
#define VL_TEST_SENSFIX_H

#include "../alloc/sens.h"

#include <string.h>

typedef struct {
    int n;                /* tensors = units */
    sens_tensor *t;       /* [n] */
    char **unit_name;     /* [n] */
    int64_t tokens;       /* α's tokens, each set */
    double *kld[2];       /* [2 × n] at ε 0.01, 0.03 */
    double *alpha[2];     /* [2 × n] */
    int n_formats;
    qfmt *fmt;            /* [F] */
    const char *spec;     /* the menu */
    double *bpw;          /* [n × F] */
    double *rel;          /* [2 × n × F]: rel_w = rel_imp = rel_out */
    unsigned char *few;   /* [2 × n × F] */
    double *ones;         /* [2 × n] ‖W‖², energies */
} sfx_in;

/* The sens_result of in into *r; set_name and set_tokens point into names/tok (kept by the
 * caller while r is used). */
static inline void sfx_result(sens_result *r, const sfx_in *in, char *names[2], int64_t tok[2])
{
    static char en[] = "en", zh[] = "zh";
    names[0] = en;
    names[1] = zh;
    tok[0] = tok[1] = in->tokens;
    memset(r, 0, sizeof *r);
    r->gran = SENS_TENSOR;
    r->n_tensors = r->n_units = in->n;
    r->t = in->t;
    r->unit_name = in->unit_name;
    r->n_sets = 2;
    r->set_name = names;
    r->set_tokens = tok;
    r->eps[0] = 0.01;
    r->eps[1] = 0.03;
    r->seed = 1;
    for (int k = 0; k < 2; k++) {
        r->kld[k] = in->kld[k];
        r->alpha[k] = in->alpha[k];
    }
    r->n_formats = in->n_formats;
    r->fmt = in->fmt;
    r->spec = (char *)in->spec;
    r->few_policy = "rtn";
    r->min_tokens = 16;
    r->bpw = in->bpw;
    r->rel_w = r->rel_imp = r->rel_out = in->rel;
    r->few = in->few;
    r->w_norm2 = in->ones;
    r->out_energy = r->noise_energy = in->ones;
}

#endif
