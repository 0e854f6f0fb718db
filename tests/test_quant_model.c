/* tests/test_quant_model.c — GPTQ against RTN on real tensors of the embedded model.
 *
 * The Hessian proxy comes from synthetic correlated inputs (tests/qtest.h), not from the
 * forward pass: this checks the quantizers on real weight distributions; the per-set H of real
 * activations is the sensitivity stage's business.
 */
#include "../alloc/fq.h"
#include "../alloc/rd.h"
#include "../io/st.h"
#include "check.h"
#include "qtest.h"

static const char *const tensors[] = {
    "model.layers.2.mlp.experts.5.up_proj.weight",
    "model.layers.4.mlp.experts.11.down_proj.weight",
    "model.layers.1.self_attn.q_proj.weight",
};

static double out_err(const float *w, int rows, int cols, const qfmt *f, const fq_stats *st)
{
    rd_point pt;
    vl_err e;
    if (rd_eval(&pt, NULL, w, rows, cols, f, st, NULL, NULL, NULL, "w", &e)) {
        printf("  rd_eval: %s\n", e.msg);
        return NAN;
    }
    return pt.rel_out;
}

int main(void)
{
    chk c;
    chk_init(&c, "test_quant_model");
    st_set *s = NULL;
    vl_err e = {0, ""};
    int rc = st_set_open(&s, "models/vbrlab-moe-tiny", &e);
    CHECK(&c, rc == 0, "open embedded model: %s", e.msg);
    if (rc)
        return chk_done(&c);
    qt_rng r = {2024};
    for (size_t i = 0; i < sizeof tensors / sizeof *tensors; i++) {
        const st_tensor *t = st_set_find(s, tensors[i]);
        CHECK(&c, t && t->ndim == 2, "tensor %s present, 2-D", tensors[i]);
        if (!t || t->ndim != 2)
            continue;
        int rows = (int)t->shape[0], cols = (int)t->shape[1];
        float *w = malloc((size_t)t->numel * sizeof *w);
        if (st_tensor_to_f32(t, w, &e)) {
            CHECK(&c, 0, "convert %s: %s", tensors[i], e.msg);
            free(w);
            continue;
        }
        double *h = qt_hessian(&r, 512, cols);
        double *imp = malloc((size_t)cols * sizeof *imp);
        for (int j = 0; j < cols; j++)
            imp[j] = h[(size_t)j * cols + j];
        fq_stats st = {NULL, h, 512}, st_imp = {imp, h, 512};
        for (int b = 2; b <= 4; b++) {
            qfmt fr = {QFMT_RTN, b, 64, 0, QFMT_ROT_NONE}, fg = fr;
            fg.method = QFMT_GPTQ;
            double er = out_err(w, rows, cols, &fr, &st);
            double eri = out_err(w, rows, cols, &fr, &st_imp);
            double eg = out_err(w, rows, cols, &fg, &st);
            CHECK(&c, eg <= er && eg <= eri,
                  "%s %dx%d b%d g64 asym: GPTQ %.4g <= RTN %.4g, RTN+imatrix %.4g", tensors[i],
                  rows, cols, b, eg, er, eri);
        }
        free(imp);
        free(h);
        free(w);
    }
    st_set_close(s);
    return chk_done(&c);
}
