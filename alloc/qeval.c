/* alloc/qeval.c — one row of the KLD matrix at a time, then the matrix (see qeval.h). */
#include "qeval.h"

#include "../core/prog.h"
#include "mbits.h"

#include <math.h>

#include <string.h>

struct qe_eval {
    const model *m;
    const calib_book *dom;
    int n_dom, n_rows;
    ev_runner *runner;
    int second_half;   /* qe_set_second_half */
    kld_summary *sums; /* [n_rows × n_dom] */
    jr *journal;       /* NULL: none */
    int layer_major;   /* qe_set_layer_major: lazy bindings, layer-major runs */
};

void qe_set_journal(qe_eval *q, jr *j, par_fault *fault)
{
    q->journal = j;
    ev_runner_set_fault(q->runner, fault);
}

static void item_name(char *buf, size_t cap, const char *row, const calib_set *cs)
{
    if (cs)
        snprintf(buf, cap, "eval/%s/%s/seqs=%d/len=%d", row, cs->spec.name, cs->n_seq,
                 cs->seq_len);
    else
        snprintf(buf, cap, "eval/%s/@info", row);
}

/* The binding facts of a row as the journal keeps them. */
typedef struct {
    int64_t n_tensors, n_weights;
    double bpw;
    double bpw_model, bpw_file; /* whole-model bits (model_bits) */
    int64_t model_weights;
} qe_info;

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

void qe_set_layer_major(qe_eval *q, int on, int64_t mem_cap)
{
    q->layer_major = !!on;
    ev_runner_set_layer_major(q->runner, on, mem_cap);
}

void qe_set_second_half(qe_eval *q, int on)
{
    q->second_half = !!on;
    ev_runner_set_second_half(q->runner, on);
}

int qe_set_pipeline(qe_eval *q, int stages, vl_err *err)
{
    return ev_runner_set_pipeline(q->runner, stages, err);
}

/* Domain d of row r: from the journal when it is there, else run (and journaled by rank 0). */
static int run_domain(qe_eval *q, const qb_binding *b, const qe_row *row, int d, ev_result *res,
                      prog *pg, vl_err *err)
{
    const calib_set *cs = calib_book_set(q->dom, d);
    char name[3 * EV_NAME_MAX + 64];
    item_name(name, sizeof name, row->name, cs);
    int first = ev_first_scored(cs->seq_len, q->second_half);
    size_t bytes = ev_result_bytes(cs->n_seq, cs->seq_len, first);
    if (q->journal && jr_has(q->journal, name, bytes)) {
        void *buf = vl_malloc(bytes + 1);
        int rc = buf ? jr_get(q->journal, name, buf, bytes, err)
                     : vl_errf(err, VL_ENOMEM, "eval: out of memory");
        if (rc == 1)
            rc = ev_result_unpack(res, cs->n_seq, cs->seq_len, first, buf, err);
        vl_free(buf);
        if (pg)
            prog_update(pg, pg->done + (int64_t)cs->n_seq * cs->seq_len);
        return rc;
    }
    int rc = ev_run_ext(q->runner, qb_weights(b), q->layer_major ? qb_provide : NULL, (void *)b,
                        cs->ids, cs->n_seq, cs->seq_len, res, pg, err);
    if (!rc && q->journal && par_rank() == 0) {
        void *buf = vl_malloc(bytes + 1);
        if (!buf)
            return vl_errf(err, VL_ENOMEM, "eval: out of memory");
        ev_result_pack(res, buf);
        rc = jr_put(q->journal, name, buf, bytes, err);
        vl_free(buf);
    }
    return rc;
}

static const qfmt *bound_format(const void *b, size_t i)
{
    return qb_tensor_format((const qb_binding *)b, i);
}

/* Whole-model bits of binding b (alloc/mbits.h): a->bpw_model under MB_STORED; a->bpw_file
 * under MB_GGUF when every quantized tensor has a ggml type (a file llama.cpp could hold),
 * else NaN. */
static void model_bits(const model *m, const qb_binding *b, ev_row_attrs *a)
{
    mb_count st = mb_count_model(m, bound_format, b, MB_STORED);
    mb_count gg = mb_count_model(m, bound_format, b, MB_GGUF);
    int ggml = 1;
    for (size_t i = 0; i < model_tensor_count(m); i++) {
        const qfmt *f = qb_tensor_format(b, i);
        ggml &= !f || f->method == QFMT_GGML;
    }
    a->bpw_model = st.bpw_model;
    a->bpw_file = ggml ? gg.bpw_model : NAN;
    a->model_weights = st.model_weights;
}

int qe_run_row(qe_eval *q, h5s_store *s, int r, const qe_row *row, int progress, vl_err *err)
{
    qb_binding *b = NULL;
    ev_result res;
    ev_result_init(&res);
    char name[3 * EV_NAME_MAX + 64];
    qe_info info;
    memset(&info, 0, sizeof info);
    item_name(name, sizeof name, row->name, NULL);
    int rc = 0, bind = !q->journal || !jr_has(q->journal, name, sizeof info);
    for (int d = 0; !bind && d < q->n_dom; d++) {
        const calib_set *cs = calib_book_set(q->dom, d);
        char dn[sizeof name];
        item_name(dn, sizeof dn, row->name, cs);
        bind = !jr_has(q->journal, dn, ev_result_bytes(cs->n_seq, cs->seq_len,
                                                        ev_first_scored(cs->seq_len,
                                                                        q->second_half)));
    }
    if (bind) { /* every rank decides alike: they read the same journals */
        rc = (q->layer_major ? qb_bind_lazy : qb_bind)(&b, q->m, row->alloc, row->stats,
                                                        &row->qp, row->name, err);
        if (!rc) {
            qb_info in = qb_get_info(b);
            info.n_tensors = in.n_tensors;
            info.n_weights = in.n_weights;
            info.bpw = in.bpw;
            ev_row_attrs w;
            model_bits(q->m, b, &w);
            info.bpw_model = w.bpw_model;
            info.bpw_file = w.bpw_file;
            info.model_weights = w.model_weights;
        }
        if (!rc && q->journal && par_rank() == 0)
            rc = jr_put(q->journal, name, &info, sizeof info, err);
    } else {
        rc = jr_get(q->journal, name, &info, sizeof info, err) == 1 ? 0 : VL_EIO;
    }
    int64_t total = 0;
    for (int d = 0; d < q->n_dom; d++)
        total += (int64_t)calib_book_set(q->dom, d)->n_seq * calib_book_set(q->dom, d)->seq_len;
    prog pg;
    char label[EV_NAME_MAX + 8];
    snprintf(label, sizeof label, "eval %s", row->name);
    prog_init(&pg, label, "tok", total);
    for (int d = 0; !rc && d < q->n_dom; d++) {
        const calib_set *cs = calib_book_set(q->dom, d);
        rc = run_domain(q, b, row, d, &res, progress ? &pg : NULL, err);
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
        ev_row_attrs a = row->attrs;
        a.n_tensors = (int)info.n_tensors;
        a.n_weights = info.n_weights;
        a.bpw = info.bpw;
        a.bpw_model = info.bpw_model;
        a.bpw_file = info.bpw_file;
        a.model_weights = info.model_weights;
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
