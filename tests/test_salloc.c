/* tests/test_salloc.c — allocation from a sensitivity store (alloc/salloc.h) and alloc.h5 in
 * `vbrlab alloc --sens` and `vbrlab eval --alloc alloc.h5[:NAME]`.
 *
 * The sens store is synthetic (no forward runs): the embedded model's real tensor layout at
 * group granularity, three sets whose α favour different units (en: attention, zh: experts),
 * RTN b2..4 g64 with rel error 4^−b-like. Checks: items and options against brute-force sums
 * of sens_tensor_dist; budget respected; assignment = one line per tensor, groups expanded;
 * minimax never has a worse predicted max than either single-set allocation; write/read round
 * trip; the CLI writes, appends and replaces; eval gives the same KLD for alloc.h5:NAME as for
 * the same allocation as text; bad set names / missing files are one-line errors.
 */
#define _POSIX_C_SOURCE 200809L
#include "../alloc/salloc.h"
#include "check.h"
#include "testio.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DIR "build/tmp-salloc"
#define CI(c, got, want) CHECK_INT(c, got, want, #got)
#define CS(c, got, want) CHECK_STR(c, got, want, #got)
#define CH(c, got, want) CHECK_HAS(c, got, want, #got)

static const char *const set3[3] = {"en", "zh", "code"};

static int is_attn(sens_proj p) { return p <= SENS_P_O; }

/* A plausible synthetic store for m at group granularity; keep > 0: only the first keep
 * tensors (a cheap allocation to evaluate). */
static int make_sens(sens_result *r, const model *m, int keep, vl_err *e)
{
    memset(r, 0, sizeof *r);
    int rc = sens_layout(r, m, SENS_GROUP, 0, e);
    if (!rc && keep > 0 && keep < r->n_tensors) {
        int units = 0;
        for (int t = 0; t < r->n_tensors; t++) {
            if (t < keep && r->t[t].unit + 1 > units)
                units = r->t[t].unit + 1;
            if (t >= keep)
                vl_free(r->t[t].name);
        }
        for (int u = units; u < r->n_units; u++)
            vl_free(r->unit_name[u]);
        r->n_tensors = keep;
        r->n_units = units;
    }
    if (!rc)
        rc = sens_alloc_alpha(r, 3, set3, e);
    if (rc)
        return rc;
    int S = 3, U = r->n_units, T = r->n_tensors;
    r->eps[0] = 0.01;
    r->eps[1] = 0.03;
    r->seed = 1;
    for (int s = 0; s < S; s++)
        r->set_tokens[s] = 64;
    for (int u = 0; u < U; u++) {
        int t0 = 0;
        while (r->t[t0].unit != u)
            t0++;
        double lay = 1.0 + 0.1 * r->t[t0].layer + 0.01 * u;
        double a[3] = {is_attn(r->t[t0].proj) ? 4 : 1, is_attn(r->t[t0].proj) ? 1 : 4, 2};
        for (int s = 0; s < S; s++)
            for (int k = 0; k < 2; k++) {
                r->alpha[k][s * U + u] = a[s] * lay;
                r->kld[k][s * U + u] = a[s] * lay * r->eps[k] * r->eps[k];
            }
    }
    qfmt_menu menu;
    if ((rc = qfmt_menu_parse(&menu, "rtn:b=2..4:g=64", e)))
        return rc;
    int F = r->n_formats = menu.n;
    r->fmt = menu.v; /* owned by r now */
    r->spec = vl_strdup("rtn:b=2..4:g=64");
    r->few_policy = vl_strdup("rtn");
    r->min_tokens = 16;
    r->bpw = vl_calloc((size_t)T * F, sizeof(double));
    r->rel_w = vl_calloc((size_t)S * T * F, sizeof(double));
    r->rel_imp = vl_calloc((size_t)S * T * F, sizeof(double));
    r->rel_out = vl_calloc((size_t)S * T * F, sizeof(double));
    r->few = vl_calloc((size_t)S * T * F, 1);
    r->w_norm2 = vl_calloc((size_t)T, sizeof(double));
    r->out_energy = vl_calloc((size_t)S * T, sizeof(double));
    r->noise_energy = vl_calloc((size_t)S * T, sizeof(double));
    for (int t = 0; t < T; t++) {
        r->w_norm2[t] = 1.0 + t % 7;
        for (int f = 0; f < F; f++) {
            r->bpw[t * F + f] = qfmt_bpw(&r->fmt[f], r->t[t].rows, r->t[t].cols);
            double rw = 0.12 * pow(0.25, r->fmt[f].bits - 2) * (1 + 0.03 * (t % 5));
            for (int s = 0; s < S; s++) {
                r->rel_w[((size_t)s * T + t) * F + f] = rw;
                r->rel_out[((size_t)s * T + t) * F + f] = r->rel_imp[((size_t)s * T + t) * F + f] =
                    rw * (1 + 0.1 * s);
            }
        }
        for (int s = 0; s < S; s++)
            r->out_energy[s * T + t] = r->noise_energy[s * T + t] = 0.5 + (t + s) % 3;
    }
    return 0;
}

static int write_sens(const sens_result *r, const char *path, vl_err *e)
{
    h5s_store *st;
    int rc = h5s_create(&st, path, e);
    if (rc)
        return rc;
    if ((rc = sens_write(r, st, e))) {
        h5s_close(st);
        return rc;
    }
    return h5s_commit(st, e);
}

/* Σ_s-set distortion of choice (indices into p's options) on set column s. */
static double dist_of(const solve_problem *p, const int *choice, int s)
{
    double d = 0;
    for (int i = 0; i < p->n_items; i++)
        d += p->items[i].opt[choice[i]].dist[s];
    return d;
}

static void test_build(chk *c, const sens_result *r)
{
    vl_err e;
    salloc_problem *p = NULL;
    const char *en[1] = {"en"};
    CI(c, salloc_build(&p, r, en, 1, SENS_GROUP, SENS_E_OUT, &e), 0);
    if (!p)
        return;
    CI(c, p->prob->n_items, r->n_units);
    CI(c, p->prob->n_sets, 1);
    int ok_names = 1, ok_opts = 1;
    for (int i = 0; i < p->prob->n_items; i++) {
        ok_names &= !strcmp(p->prob->items[i].name, r->unit_name[i]);
        ok_opts &= p->prob->items[i].n_opt == r->n_formats;
    }
    CHECK(c, ok_names, "group items are the store's units, in order");
    CHECK(c, ok_opts, "every item has every format");
    /* brute force one expert group and check bpw and distortion */
    int item = -1;
    for (int i = 0; i < p->prob->n_items && item < 0; i++)
        if (strchr(p->prob->items[i].name, '*'))
            item = i;
    CHECK(c, item >= 0, "an expert group item exists");
    if (item >= 0)
        for (int f = 0; f < r->n_formats; f++) {
            double n = 0, bits = 0, d = 0;
            int members = 0;
            for (int t = 0; t < r->n_tensors; t++)
                if (p->tensor_item[t] == item) {
                    members++;
                    n += (double)r->t[t].n;
                    bits += r->bpw[t * r->n_formats + f] * (double)r->t[t].n;
                    d += sens_tensor_dist(r, 0, t, f, SENS_E_OUT);
                }
            const solve_option *o = &p->prob->items[item].opt[f];
            CHECK(c, members > 1, "group %d has %d tensors", item, members);
            CHECK_NEAR(c, (double)p->prob->items[item].n, n, 0, 0, "group n = Σ n");
            CHECK_NEAR(c, o->bpw, bits / n, 0, 1e-15, "group bpw exact");
            CHECK_NEAR(c, o->dist[0], d, 0, 1e-12, "group distortion = Σ tensor distortion");
            char fn[QFMT_NAME_MAX];
            CS(c, o->name, qfmt_name(&r->fmt[f], fn));
        }
    salloc_problem_free(p);
    CI(c, salloc_build(&p, r, en, 1, SENS_TENSOR, SENS_E_REL, &e), 0);
    if (p) {
        CI(c, p->prob->n_items, r->n_tensors);
        CHECK_NEAR(c, p->prob->items[3].opt[1].dist[0],
                   sens_tensor_dist(r, 0, 3, 1, SENS_E_REL), 0, 0, "tensor item = tensor dist");
    }
    salloc_problem_free(p);
    /* errors */
    const char *bad[2] = {"en", "xx"};
    CI(c, salloc_build(&p, r, bad, 2, SENS_GROUP, SENS_E_OUT, &e), VL_ENOTFOUND);
    CH(c, e.msg, "\"xx\" (sets: en, zh, code)");
    CHECK(c, !strchr(e.msg, '\n') && p == NULL, "unknown set: one line, no problem");
    const char *twice[2] = {"zh", "zh"};
    CI(c, salloc_build(&p, r, twice, 2, SENS_GROUP, SENS_E_OUT, &e), VL_EARG);
}

/* Solve, check budget and assignment text; returns the solved problem (caller frees). */
static salloc_problem *solve_sets(chk *c, const sens_result *r, const char *const *sets, int n,
                                  solve_objective obj, solve_result *res)
{
    vl_err e;
    salloc_problem *p = NULL;
    if (salloc_build(&p, r, sets, n, SENS_GROUP, SENS_E_OUT, &e)) {
        CHECK(c, 0, "build: %s", e.msg);
        return NULL;
    }
    solve_params par = solve_params_defaults();
    par.target_bpw = 2.5;
    par.objective = obj;
    int rc = solve_run(p->prob, &par, res, &e);
    CI(c, rc, 0);
    if (rc) {
        salloc_problem_free(p);
        return NULL;
    }
    CHECK(c, res->bits_used <= res->budget * (1 + 1e-12), "budget: %.0f ≤ %.0f",
          res->bits_used, res->budget);
    CHECK(c, res->bits_used > 0.95 * res->budget, "budget used: %.0f of %.0f", res->bits_used,
          res->budget);
    return p;
}

static void test_assignment(chk *c, const model *m, const sens_result *r)
{
    vl_err e;
    solve_result res;
    const char *en[1] = {"en"};
    salloc_problem *p = solve_sets(c, r, en, 1, SOLVE_OBJ_SUM, &res);
    if (!p)
        return;
    char *text = NULL;
    CI(c, salloc_assignment(p, &res, &text, &e), 0);
    qb_alloc a;
    qb_alloc_init(&a);
    CI(c, qb_alloc_parse_text(&a, text, "assignment", &e), 0);
    CI(c, a.n, r->n_tensors);
    int globs = 0, same = 1;
    for (int i = 0; i < a.n; i++) {
        globs += strpbrk(a.v[i].item, "*?[") != NULL;
        /* every tensor gets its group's chosen format */
        int it = p->tensor_item[i];
        char fn[QFMT_NAME_MAX];
        same &= !strcmp(qfmt_name(&a.v[i].fmt, fn), p->prob->items[it].opt[res.choice[it]].name);
    }
    CI(c, globs, 0);
    CHECK(c, same, "tensors carry their group's format");
    CI(c, qb_alloc_check(m, &a, 0, "assignment", &e), 0);
    /* exact bits of the expanded assignment = the solver's bits */
    double bits = 0;
    for (int i = 0; i < a.n; i++)
        bits += (double)qfmt_bits(&a.v[i].fmt, r->t[i].rows, r->t[i].cols);
    CHECK_NEAR(c, bits, res.bits_used, 0, 1e-12, "expanded bits = solver bits");
    qb_alloc_deinit(&a);
    vl_free(text);
    solve_result_free(&res);
    salloc_problem_free(p);
}

static void test_minimax(chk *c, const sens_result *r)
{
    const char *en[1] = {"en"}, *zh[1] = {"zh"}, *both[2] = {"en", "zh"};
    solve_result re, rz, rm;
    salloc_problem *pe = solve_sets(c, r, en, 1, SOLVE_OBJ_SUM, &re);
    salloc_problem *pz = solve_sets(c, r, zh, 1, SOLVE_OBJ_SUM, &rz);
    salloc_problem *pm = solve_sets(c, r, both, 2, SOLVE_OBJ_MINIMAX, &rm);
    if (pe && pz && pm) {
        const solve_problem *q = pm->prob; /* same items and options, two columns */
        double max_m = fmax(rm.dist_set[0], rm.dist_set[1]);
        double max_e = fmax(dist_of(q, re.choice, 0), dist_of(q, re.choice, 1));
        double max_z = fmax(dist_of(q, rz.choice, 0), dist_of(q, rz.choice, 1));
        CHECK(c, max_m <= max_e * (1 + 1e-12), "minimax max %.6g ≤ en's %.6g", max_m, max_e);
        CHECK(c, max_m <= max_z * (1 + 1e-12), "minimax max %.6g ≤ zh's %.6g", max_m, max_z);
        CHECK(c, max_m < fmax(max_e, max_z) * 0.999, "minimax strictly better than the worse");
        CHECK_NEAR(c, dist_of(q, re.choice, 0), re.dist_set[0], 0, 1e-12, "en column");
        CHECK(c, re.dist_set[0] <= dist_of(q, rz.choice, 0) * (1 + 1e-12),
              "en allocation best on en");
    }
    if (pe)
        solve_result_free(&re);
    if (pz)
        solve_result_free(&rz);
    if (pm)
        solve_result_free(&rm);
    salloc_problem_free(pe);
    salloc_problem_free(pz);
    salloc_problem_free(pm);
}

static void test_store(chk *c, const sens_result *r)
{
    vl_err e;
    solve_result res;
    const char *zh[1] = {"zh"};
    salloc_problem *p = solve_sets(c, r, zh, 1, SOLVE_OBJ_SUM, &res);
    if (!p)
        return;
    solve_params par = solve_params_defaults();
    par.target_bpw = 2.5;
    salloc_meta meta = {"zh", "stats.h5", "sens.h5", 0, 0};
    h5s_store *st = NULL;
    CI(c, h5s_create(&st, DIR "/lib.h5", &e), 0);
    CI(c, salloc_write(st, "zh-2.5", p, &res, &par, &meta, &e), 0);
    CI(c, salloc_write(st, "b", p, &res, &par, NULL, &e), 0);
    CI(c, salloc_write(st, "a/b", p, &res, &par, NULL, &e), VL_EARG);
    CI(c, h5s_commit(st, &e), 0);
    CI(c, h5s_open(&st, DIR "/lib.h5", &e), 0);
    char **names = NULL;
    int n = 0;
    CI(c, salloc_list(st, &names, &n, &e), 0);
    CI(c, n, 2);
    if (n == 2) {
        CS(c, names[0], "b");
        CS(c, names[1], "zh-2.5");
    }
    h5s_names_free(names, n);
    salloc_record rec;
    CI(c, salloc_read(st, "zh-2.5", &rec, &e), 0);
    char *text = NULL;
    salloc_assignment(p, &res, &text, &e);
    CHECK(c, text && !strcmp(rec.assignment, text), "stored assignment = salloc_assignment");
    CS(c, rec.calib, "zh");
    CS(c, rec.stats_file, "stats.h5");
    CS(c, rec.sets, "zh");
    CS(c, rec.objective, "sum");
    CHECK_NEAR(c, rec.target_bpw, 2.5, 0, 0, "target_bpw");
    salloc_record_free(&rec);
    double *pk = NULL;
    CI(c, h5s_read(st, "/alloc/zh-2.5/predicted_kld", H5S_F64, (void **)&pk, NULL, NULL, &e), 0);
    if (pk)
        CHECK_NEAR(c, pk[0], res.dist_set[0], 0, 0, "predicted_kld stored");
    vl_free(pk);
    CI(c, salloc_read(st, "nope", &rec, &e), VL_ENOTFOUND);
    CH(c, e.msg, "no allocation \"nope\" (has: b, zh-2.5)");
    qb_alloc a;
    qb_alloc_init(&a);
    CI(c, salloc_read_qb(st, "b", &a, NULL, &e), 0);
    CI(c, a.n, r->n_tensors);
    qb_alloc_deinit(&a);
    h5s_close(st);
    CI(c, salloc_is_hdf5(DIR "/lib.h5"), 1);
    CI(c, salloc_is_hdf5("tests/test_salloc.c"), 0);
    vl_free(text);
    solve_result_free(&res);
    salloc_problem_free(p);
}

static double attr_f(h5s_store *st, const char *g, const char *a)
{
    double v = NAN;
    vl_err e;
    h5s_attr_get_f64(st, g, a, &v, &e);
    return v;
}

static void test_cli(chk *c)
{
    char line[2048];
    const char *sens = "--sens " DIR "/sens.h5";
    char cmd[4096];
    remove(DIR "/alloc.h5");
    snprintf(cmd, sizeof cmd, "alloc %s --set en --target-bpw 2.5 -o " DIR "/alloc.h5", sens);
    CI(c, tio_cli(cmd, DIR "/table.txt", line, sizeof line), 0);
    snprintf(cmd, sizeof cmd,
             "alloc %s --sets en,zh --objective minimax --target-bpw 2.5 -o " DIR "/alloc.h5",
             sens);
    CI(c, tio_cli(cmd, NULL, line, sizeof line), 0);
    /* a third, then replaced: in a copy, so that eval below has two stored rows */
    snprintf(cmd, sizeof cmd, "cp " DIR "/alloc.h5 " DIR "/alloc3.h5");
    CI(c, system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "alloc %s --set zh --target-bpw 3 --solver lagrange --name tmp -o " DIR "/alloc3.h5",
             sens);
    CI(c, tio_cli(cmd, NULL, line, sizeof line), 0);
    snprintf(cmd, sizeof cmd, "alloc %s --set zh --target-bpw 2.75 --name tmp -o " DIR
             "/alloc3.h5", sens);
    CI(c, tio_cli(cmd, NULL, line, sizeof line), 0); /* replaces tmp */
    /* the table: one line per item, then totals */
    FILE *f = fopen(DIR "/table.txt", "r");
    int lines = 0, expert_lines = 0;
    char buf[1024];
    while (f && fgets(buf, sizeof buf, f)) {
        lines++;
        expert_lines += strstr(buf, ".experts.*.") != NULL;
    }
    if (f)
        fclose(f);
    CI(c, expert_lines, 18); /* 6 layers × gate/up/down */
    CHECK(c, lines > 60, "table has the 60 items and totals (%d lines)", lines);

    vl_err e;
    h5s_store *st = NULL;
    CI(c, h5s_open(&st, DIR "/alloc3.h5", &e), 0);
    char **names = NULL;
    int n = 0;
    CI(c, salloc_list(st, &names, &n, &e), 0);
    CI(c, n, 3);
    if (n == 3) {
        CS(c, names[0], "en-2.5");
        CS(c, names[1], "minimax-en-zh-2.5");
        CS(c, names[2], "tmp");
    }
    h5s_names_free(names, n);
    CHECK(c, attr_f(st, "/alloc/en-2.5", "bits_used") <= attr_f(st, "/alloc/en-2.5", "budget_bits"),
          "stored bits within budget");
    CHECK_NEAR(c, attr_f(st, "/alloc/tmp", "target_bpw"), 2.75, 0, 0, "tmp replaced");
    /* whole-model bits: body = bits over the items, model = plus the kept tensors (embedding,
       routers, norms, biases, gates at BF16 in this checkpoint) over every weight */
    double bu = attr_f(st, "/alloc/tmp", "bits_used"), kept = attr_f(st, "/alloc/tmp", "kept_bits");
    CHECK_NEAR(c, kept, 16.0 * (25460480 - 21233664), 0, 0, "kept bits: 16 per kept weight");
    CHECK_NEAR(c, attr_f(st, "/alloc/tmp", "bpw_model"), (bu + kept) / 25460480.0, 0, 1e-12,
               "bpw_model = (bits_used + kept_bits) / model weights");
    CHECK_NEAR(c, attr_f(st, "/alloc/tmp", "bpw_body"), bu / 21233664.0, 0, 1e-12, "bpw_body");
    h5s_close(st);
    st = NULL;
    /* a model budget: target_bpw counts every weight; the items get what the kept bits leave */
    snprintf(cmd, sizeof cmd, "alloc %s --set zh --target-bpw 5 --budget model --name mb -o " DIR
             "/alloc3.h5", sens);
    CI(c, tio_cli(cmd, NULL, line, sizeof line), 0);
    CI(c, h5s_open(&st, DIR "/alloc3.h5", &e), 0);
    double mbpw = attr_f(st, "/alloc/mb", "bpw_model");
    CHECK(c, mbpw <= 5.0 + 1e-12 && mbpw > 4.5, "model budget met: %g ≤ 5", mbpw);
    CHECK_NEAR(c, attr_f(st, "/alloc/mb", "target_bpw"), 5.0, 0, 0, "target_bpw: the model's");
    CHECK_NEAR(c, attr_f(st, "/alloc/mb", "body_target_bpw"),
               (5.0 * 25460480 - 16.0 * (25460480 - 21233664)) / 21233664.0, 0, 1e-12,
               "body target = (5·W − kept) / Σ n");
    CI(c, tio_cli("alloc --sens " DIR "/sens.h5 --set zh --target-bpw 2 --budget file", NULL,
                  line, sizeof line) != 0, 1);
    CH(c, line, "--budget \"file\": expected body or model");
    CI(c, tio_cli("alloc --sens " DIR "/sens.h5 --set zh --target-bpw 2.5 --name a/b -o " DIR
                  "/alloc3.h5", NULL, line, sizeof line) != 0, 1);
    CH(c, line, "allocation name \"a/b\"");
    salloc_record rec;
    if (!salloc_read(st, "minimax-en-zh-2.5", &rec, &e)) {
        CS(c, rec.sets, "en,zh");
        CS(c, rec.objective, "minimax");
        CS(c, rec.calib, "en");
        salloc_record_free(&rec);
    }
    h5s_close(st);

    /* errors: one line each */
    snprintf(cmd, sizeof cmd, "alloc %s --set xx --target-bpw 2.5", sens);
    CHECK(c, tio_cli(cmd, NULL, line, sizeof line) != 0, "bad set fails");
    CH(c, line, "no set \"xx\"");
    CHECK(c, !strstr(line, "lines on stderr"), "bad set: one line");
    snprintf(cmd, sizeof cmd, "alloc %s --sets en,yy --objective minimax --target-bpw 2.5", sens);
    CHECK(c, tio_cli(cmd, NULL, line, sizeof line) != 0, "bad --sets fails");
    CH(c, line, "no set \"yy\"");
    CHECK(c, tio_cli("alloc --sens " DIR "/missing.h5 --set en --target-bpw 2.5", NULL, line,
                     sizeof line) != 0,
          "missing sens fails");
    CH(c, line, DIR "/missing.h5");
    CHECK(c, !strstr(line, "lines on stderr"), "missing sens: one line");
    snprintf(cmd, sizeof cmd, "alloc %s --sets en,zh --target-bpw 2.5", sens);
    CHECK(c, tio_cli(cmd, NULL, line, sizeof line) != 0, "two sets without objective fails");
    CH(c, line, "minimax");
    snprintf(cmd, sizeof cmd, "alloc %s --set en --target-bpw 1", sens);
    CHECK(c, tio_cli(cmd, NULL, line, sizeof line) != 0, "infeasible budget fails");

    /* eval on allocations of the small store (4 tensors: quantizing is cheap): alloc.h5 alone
     * = every allocation, one row each; the stored en-2.5 gives the same KLD as its text */
    const char *small = "--sens " DIR "/small.h5 --target-bpw 2.5 -o " DIR "/small-alloc.h5";
    remove(DIR "/small-alloc.h5");
    snprintf(cmd, sizeof cmd, "alloc %s --set en", small);
    CI(c, tio_cli(cmd, NULL, line, sizeof line), 0);
    snprintf(cmd, sizeof cmd, "alloc %s --sets en,zh --objective minimax", small);
    CI(c, tio_cli(cmd, NULL, line, sizeof line), 0);
    if (!h5s_open(&st, DIR "/small-alloc.h5", &e)) {
        if (!salloc_read(st, "en-2.5", &rec, &e)) {
            FILE *t = fopen(DIR "/en.txt", "w");
            if (t) {
                fputs(rec.assignment, t);
                fclose(t);
            }
            salloc_record_free(&rec);
        }
        h5s_close(st);
    }
    const char *dom = "--domain d=data/corpus/en.eval.txt,seqs=2,len=24";
    snprintf(cmd, sizeof cmd,
             "eval --alloc " DIR "/small-alloc.h5 --alloc " DIR "/en.txt:entext %s -o " DIR
             "/eval.h5",
             dom);
    CI(c, tio_cli(cmd, NULL, line, sizeof line), 0);
    if (!h5s_open(&st, DIR "/eval.h5", &e)) {
        double a = attr_f(st, "/eval/en-2.5/d", "kld_mean");
        double b = attr_f(st, "/eval/entext/d", "kld_mean");
        double mm = attr_f(st, "/eval/minimax-en-zh-2.5/d", "kld_mean");
        CHECK(c, a > 0 && a == b, "eval KLD from alloc.h5 (%.9g) = from text (%.9g)", a, b);
        CHECK(c, mm > 0, "the other stored allocation evaluated (%.9g)", mm);
        char *src = NULL;
        if (!h5s_attr_get(st, "/eval/matrix", "rows", &src, &e))
            CS(c, src, "en-2.5\nminimax-en-zh-2.5\nentext");
        vl_free(src);
        src = NULL;
        if (!h5s_attr_get(st, "/eval/en-2.5", "source", &src, &e))
            CS(c, src, DIR "/small-alloc.h5");
        vl_free(src);
        /* the store has no stats_file: the row ran without statistics, so no calib attribute */
        CI(c, h5s_attr_get(st, "/eval/en-2.5", "calib", &src, &e), VL_ENOTFOUND);
        h5s_close(st);
    } else {
        CHECK(c, 0, "eval.h5: %s", e.msg);
    }
    snprintf(cmd, sizeof cmd, "eval --alloc " DIR "/alloc.h5:nope %s", dom);
    CHECK(c, tio_cli(cmd, NULL, line, sizeof line) != 0, "unknown stored allocation fails");
    CH(c, line, "no allocation \"nope\"");
}

int main(void)
{
    chk c;
    chk_init(&c, "salloc");
    mkdir("build", 0755);
    mkdir(DIR, 0755);
    vl_err e;
    model *m = NULL;
    if (model_open(&m, "models/vbrlab-moe-tiny", &e)) {
        CHECK(&c, 0, "model: %s", e.msg);
        return chk_done(&c);
    }
    sens_result r;
    sens_result small;
    int rc = make_sens(&small, m, 4, &e);
    if (!rc)
        rc = write_sens(&small, DIR "/small.h5", &e);
    CHECK(&c, rc == 0, "small synthetic sens: %s", rc ? e.msg : "ok");
    sens_result_free(&small);
    rc = make_sens(&r, m, 0, &e);
    CHECK(&c, rc == 0, "synthetic sens: %s", rc ? e.msg : "ok");
    if (!rc)
        rc = write_sens(&r, DIR "/sens.h5", &e);
    CHECK(&c, rc == 0, "write sens: %s", rc ? e.msg : "ok");
    if (!rc) {
        sens_result back;
        h5s_store *st = NULL;
        rc = h5s_open(&st, DIR "/sens.h5", &e);
        if (!rc)
            rc = sens_read(&back, st, &e);
        h5s_close(st);
        CHECK(&c, rc == 0, "read sens: %s", rc ? e.msg : "ok");
        if (!rc) {
            test_build(&c, &back);
            test_assignment(&c, m, &back);
            test_minimax(&c, &back);
            test_store(&c, &back);
            sens_result_free(&back);
        }
        test_cli(&c);
    }
    sens_result_free(&r);
    model_close(m);
    return chk_done(&c);
}
