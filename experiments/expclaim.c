/* experiments/expclaim.c — [claim.NAME] sections: the tests grammar, the checks against the
 * rows and domains of the config, the canonical spelling (expcfg.h, expcfg_int.h).
 *
 * A test is five whitespace-separated words "A OP B @ D"; OP is ">", "<" or "~M" with M a
 * relative margin in (0, 10]. Rows are checked after the whole file is read, because the
 * [alloc.*] sections that make them may come later in the file.
 */
#define _POSIX_C_SOURCE 200809L
#include "expcfg_int.h"

#include "../core/num.h"

#include <stdio.h>
#include <string.h>

static void test_free(exp_test *t)
{
    vl_free(t->a);
    vl_free(t->b);
    vl_free(t->domain);
    memset(t, 0, sizeof *t);
}

void exp_claim_free(exp_claim *cl)
{
    vl_free(cl->name);
    vl_free(cl->text);
    for (int i = 0; i < cl->n_tests; i++)
        test_free(&cl->tests[i]);
    vl_free(cl->tests);
    memset(cl, 0, sizeof *cl);
}

/* One test from its text. */
static int parse_test(const char *text, exp_test *t, char *why)
{
    char buf[512], *w[6], *save = NULL;
    int n = 0;
    if (strlen(text) >= sizeof buf)
        return exp_whyf(why, VL_ECONFIG, "test \"%.40s...\" is too long", text);
    strcpy(buf, text);
    for (char *p = strtok_r(buf, " \t", &save); p && n < 6; p = strtok_r(NULL, " \t", &save))
        w[n++] = p;
    if (n != 5 || strcmp(w[3], "@"))
        return exp_whyf(why, VL_ECONFIG, "test \"%s\": want \"A > B @ DOMAIN\", \"A < B @ "
                        "DOMAIN\" or \"A ~M B @ DOMAIN\"", text);
    memset(t, 0, sizeof *t);
    if (!strcmp(w[1], ">")) {
        t->op = EXP_CMP_GREATER;
    } else if (!strcmp(w[1], "<")) {
        t->op = EXP_CMP_LESS;
    } else if (w[1][0] == '~' && !num_f64(w[1] + 1, 0, 10, &t->margin) && t->margin > 0) {
        t->op = EXP_CMP_WITHIN;
    } else {
        return exp_whyf(why, VL_ECONFIG, "test \"%s\": \"%s\" is not >, < or ~M with 0 < M ≤ "
                        "10", text, w[1]);
    }
    t->a = vl_strdup(w[0]);
    t->b = vl_strdup(w[2]);
    t->domain = vl_strdup(w[4]);
    if (!t->a || !t->b || !t->domain) {
        test_free(t);
        return exp_whyf(why, VL_ENOMEM, "out of memory");
    }
    return 0;
}

int exp_claim_key(exp_claim *cl, int is_tests, const char *v, int line, char *why)
{
    if (!*v)
        return exp_whyf(why, VL_ECONFIG, "empty value");
    if (!is_tests)
        return exp_set_str(&cl->text, v, why);
    exp_slist items = {0, NULL};
    int rc = exp_split_list(v, &items, why);
    exp_test *t = rc ? NULL : vl_calloc((size_t)items.n, sizeof *t);
    if (!rc && !t)
        rc = exp_whyf(why, VL_ENOMEM, "out of memory");
    int n = 0;
    for (; !rc && n < items.n; n++)
        if ((rc = parse_test(items.v[n], &t[n], why)))
            break;
    exp_slist_free(&items);
    if (rc) {
        for (int i = 0; i < n; i++)
            test_free(&t[i]);
        vl_free(t);
        return rc;
    }
    cl->tests = t;
    cl->n_tests = n;
    cl->line = line;
    return 0;
}

/* Is NAME a row the eval stage makes (an allocation result NAME-BPW, a uniform format, named
 * FORMAT+OUTER when its allocation has a uniform_outer, or a llama.cpp mix llama-FTYPE, as
 * experiments/stage_eval.c names them)? */
static int row_exists(const exp_config *cfg, const char *name)
{
    char buf[256];
    for (int a = 0; a < cfg->n_alloc; a++) {
        const exp_alloc *al = &cfg->alloc[a];
        for (int t = 0; t < al->target_bpw.n; t++) {
            snprintf(buf, sizeof buf, "%s-%g", al->name, al->target_bpw.v[t]);
            if (!strcmp(buf, name))
                return 1;
        }
        for (int u = 0; u < al->uniform.n; u++) { /* "FORMAT+OUTER" with uniform_outer */
            if (al->uniform_outer)
                snprintf(buf, sizeof buf, "%s+%s", al->uniform.v[u], al->uniform_outer);
            else
                snprintf(buf, sizeof buf, "%s", al->uniform.v[u]);
            if (!strcmp(buf, name))
                return 1;
        }
        for (int u = 0; u < al->llama_mix.n; u++) {
            snprintf(buf, sizeof buf, "llama-%s", al->llama_mix.v[u]);
            if (!strcmp(buf, name))
                return 1;
        }
    }
    return 0;
}

int exp_check_claim(const char *path, const exp_config *cfg, const exp_claim *cl, vl_err *err)
{
    for (int i = 0; i < cl->n_tests; i++) {
        const exp_test *t = &cl->tests[i];
        const char *bad = !row_exists(cfg, t->a) ? t->a : !row_exists(cfg, t->b) ? t->b : NULL;
        if (bad)
            return vl_errf(err, VL_ECONFIG, "%s:%d: [claim.%s] tests: \"%s\" is no row of the "
                           "config (NAME-BPW of an [alloc.NAME] target, or a uniform format, "
                           "FORMAT+OUTER with uniform_outer, or llama-FTYPE of a "
                           "llama_mix)",
                           path, cl->line, cl->name, bad);
        if (exp_find_eval(cfg, t->domain) < 0)
            return vl_errf(err, VL_ECONFIG, "%s:%d: [claim.%s] tests: \"%s\" names no "
                           "[eval.%s] section", path, cl->line, cl->name, t->domain, t->domain);
        if (!strcmp(t->a, t->b))
            return vl_errf(err, VL_ECONFIG, "%s:%d: [claim.%s] tests: a row against itself "
                           "(%s)", path, cl->line, cl->name, t->a);
    }
    return 0;
}

void exp_test_text(const exp_test *t, char *buf, size_t cap)
{
    char op[40];
    if (t->op == EXP_CMP_WITHIN) {
        char m[32];
        num_fmt_f64(m, t->margin);
        snprintf(op, sizeof op, "~%s", m);
    } else {
        snprintf(op, sizeof op, "%s", t->op == EXP_CMP_GREATER ? ">" : "<");
    }
    snprintf(buf, cap, "%s %s %s @ %s", t->a, op, t->b, t->domain);
}
