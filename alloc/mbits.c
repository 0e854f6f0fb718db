/* alloc/mbits.c — whole-model bit counts (alloc/mbits.h). */
#include "mbits.h"

#include "../io/st.h"

double mb_kept_bpw(const model_tensor *t, mb_rule rule)
{
    if (rule == MB_GGUF)
        return t->rows <= 1 ? 32.0 : 16.0;
    return 8.0 * (double)st_dtype_size((st_dtype)t->stored_dtype);
}

const char *mb_rule_name(mb_rule r) { return r == MB_GGUF ? "gguf" : "stored"; }

mb_count mb_count_model(const model *m, const qfmt *(*fmt)(const void *ctx, size_t i),
                        const void *ctx, mb_rule rule)
{
    mb_count c = {0, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < model_tensor_count(m); i++) {
        const model_tensor *t = model_tensor_at(m, i);
        const qfmt *f = fmt ? fmt(ctx, i) : NULL;
        c.model_weights += t->numel;
        if (f) {
            double b = (double)qfmt_bits(f, t->rows, t->cols);
            c.body_weights += t->numel;
            c.body_bits += b;
            c.model_bits += b;
        } else {
            c.model_bits += (double)t->numel * mb_kept_bpw(t, rule);
        }
    }
    c.bpw_body = c.body_weights ? c.body_bits / (double)c.body_weights : 0;
    c.bpw_model = c.model_weights ? c.model_bits / (double)c.model_weights : 0;
    return c;
}

double mb_kept_bits(const model *m, const unsigned char *skip, mb_rule rule)
{
    double b = 0;
    for (size_t i = 0; i < model_tensor_count(m); i++)
        if (!skip || !skip[i])
            b += (double)model_tensor_at(m, i)->numel * mb_kept_bpw(model_tensor_at(m, i), rule);
    return b;
}
