/* alloc/qeval.c — one row of the KLD matrix at a time, then the matrix (see qeval.h). */
#include "qeval.h"

#include "../core/prog.h"

#include <string.h>

struct qe_eval {
    const model *m;
    const calib_book *dom;
    int n_dom, n_rows;
    ev_runner *runner;
    int second_half;   /* qe_set_second_half */
    kld_summary *sums; /* [n_rows × n_dom] */
};

int qe_new(qe_eval **out, const model *m, const calib_book *domains, int batch, int n_rows,
           vl_err *err)
{
    qe_eval *q = vl_calloc(1, sizeof *q);
    if (!q)
        return vl_errf(err, VL_ENOMEM, "out of memory");
    q->m = m;
    q->dom = domains;
    q->n_dom = calib_book_count(domains);
    q->n_rows = n_rows;
    int max_len = 2;
    for (int d = 0; d < q->n_dom; d++)
        if (calib_book_set(domains, d)->seq_len > max_len)
            max_len = calib_book_set(domains, d)->seq_len;
    int rc = ev_runner_new(&q->runner, m, batch, max_len, err);
    q->sums = vl_calloc((size_t)n_rows * q->n_dom + 1, sizeof *q->sums);
    if (!rc && !q->sums)
        rc = vl_errf(err, VL_ENOMEM, "out of memory");
    if (rc) {
        qe_free(q);
        return rc;
    }
    *out = q;
    return 0;
}

void qe_set_second_half(qe_eval *q, int on)
{
    q->second_half = !!on;
    ev_runner_set_second_half(q->runner, on);
}

int qe_run_row(qe_eval *q, h5s_store *s, int r, const qe_row *row, int progress, vl_err *err)
{
    qb_binding *b = NULL;
    ev_result res;
    ev_result_init(&res);
    int rc = qb_bind(&b, q->m, row->alloc, row->stats, &row->qp, row->name, err);
    int64_t total = 0;
    for (int d = 0; d < q->n_dom; d++)
        total += (int64_t)calib_book_set(q->dom, d)->n_seq * calib_book_set(q->dom, d)->seq_len;
    prog pg;
    char label[EV_NAME_MAX + 8];
    snprintf(label, sizeof label, "eval %s", row->name);
    prog_init(&pg, label, "tok", total);
    for (int d = 0; !rc && d < q->n_dom; d++) {
        const calib_set *cs = calib_book_set(q->dom, d);
        rc = ev_run(q->runner, qb_weights(b), cs->ids, cs->n_seq, cs->seq_len, &res,
                    progress ? &pg : NULL, err);
        if (!rc && r == 0 && s)
            rc = ev_write_domain(s, cs, &res, err);
        if (!rc && s)
            rc = ev_write_result(s, row->name, cs->spec.name, &res, err);
        if (!rc)
            q->sums[(size_t)r * q->n_dom + d] = res.sum;
    }
    if (progress)
        prog_finish(&pg);
    if (!rc && s) {
        qb_info in = qb_get_info(b);
        ev_row_attrs a = row->attrs;
        a.n_tensors = in.n_tensors;
        a.n_weights = in.n_weights;
        a.bpw = in.bpw;
        rc = ev_write_row(s, row->name, &a, err);
    }
    if (rc)
        vl_errctx(err, rc, "row %s", row->name);
    ev_result_deinit(&res);
    qb_free(b);
    return rc;
}

int qe_finish(qe_eval *q, h5s_store *s, const char *const *row_names, FILE *f, vl_err *err)
{
    const char **dn = vl_calloc((size_t)q->n_dom + 1, sizeof *dn);
    if (!dn)
        return vl_errf(err, VL_ENOMEM, "out of memory");
    for (int d = 0; d < q->n_dom; d++)
        dn[d] = calib_book_set(q->dom, d)->spec.name;
    ev_matrix mx = {q->n_rows, q->n_dom, row_names, dn, q->sums, q->second_half};
    int rc = s ? ev_write_matrix(s, &mx, err) : 0;
    if (!rc && f)
        ev_print_matrix(f, &mx);
    vl_free(dn);
    return rc;
}

void qe_free(qe_eval *q)
{
    if (!q)
        return;
    ev_runner_free(q->runner);
    vl_free(q->sums);
    vl_free(q);
}
