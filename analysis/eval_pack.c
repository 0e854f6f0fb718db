/* analysis/eval_pack.c — an ev_result as bytes and back: the journal payload of one
 * allocation × domain evaluation (alloc/qeval.h's per-item commit). The summary is not stored:
 * kld_summarize recomputes it from the tokens, the same bits as the run that made them.
 */
#include "eval.h"

#include <string.h>

#define EV_F64_ARRAYS 5 /* kld, dp, nll_ref, nll_q, entropy_ref */

size_t ev_result_bytes(int n_seq, int len)
{
    size_t n = (size_t)n_seq * (size_t)(len - 1);
    return n * (EV_F64_ARRAYS * sizeof(double) + 1);
}

void ev_result_pack(const ev_result *r, void *buf)
{
    size_t n = r->acc.n;
    const double *arr[EV_F64_ARRAYS] = {r->acc.kld, r->acc.dp, r->acc.nll_ref, r->acc.nll_q,
                                        r->entropy_ref};
    unsigned char *p = buf;
    for (int k = 0; k < EV_F64_ARRAYS; k++, p += n * sizeof(double))
        memcpy(p, arr[k], n * sizeof(double));
    memcpy(p, r->acc.same, n);
}

int ev_result_unpack(ev_result *r, int n_seq, int len, const void *buf, vl_err *err)
{
    ev_result_deinit(r);
    ev_result_init(r);
    size_t n = (size_t)n_seq * (size_t)(len - 1);
    r->n_seq = n_seq;
    r->len = len;
    double **arr[EV_F64_ARRAYS] = {&r->acc.kld, &r->acc.dp, &r->acc.nll_ref, &r->acc.nll_q,
                                   &r->entropy_ref};
    const unsigned char *p = buf;
    for (int k = 0; k < EV_F64_ARRAYS; k++, p += n * sizeof(double)) {
        if (!(*arr[k] = vl_malloc(n * sizeof(double) + 1)))
            return vl_errf(err, VL_ENOMEM, "eval: out of memory for %zu tokens", n);
        memcpy(*arr[k], p, n * sizeof(double));
    }
    if (!(r->acc.same = vl_malloc(n + 1)))
        return vl_errf(err, VL_ENOMEM, "eval: out of memory for %zu tokens", n);
    memcpy(r->acc.same, p, n);
    r->acc.n = r->acc.cap = n;
    return kld_summarize(&r->acc, &r->sum, err);
}
