/* experiments/expcfg.c — the INI handler: sections, a table of known keys per section kind,
 * value parsing with range checks, then whole-file validation (required keys, references).
 *
 * Line numbers: Debian's libinih calls the handler without a line number. We feed ini_parse_stream
 * through our own line reader, so the handler knows the line it is called for and the first
 * problem (ours, or inih's syntax error, whichever comes first) is reported with its line. The
 * handler records the first problem and returns 0; later lines are ignored.
 */
#define _POSIX_C_SOURCE 200809L
#include "expcfg_int.h"

#include "../alloc/qfmt.h"
#include "../alloc/sens.h"
#include "../core/vfile.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* spellings and key tables                                                                  */
/* ---------------------------------------------------------------------------------------- */

const char *const exp_starved_names[EXP_STARVED_COUNT] = {"uniform", "rtn"};
const char *const exp_gran_names[EXP_GRAN_COUNT] = {"tensor", "group", "gguf"};
const char *const exp_budget_names[EXP_BUDGET_COUNT] = {"body", "model"};
const char *const exp_sens_method_names[EXP_SENS_COUNT] = {"noise"};
const char *const exp_baseline_names[EXP_BASE_COUNT] = {"uniform", "rules", "random"};
const char *const exp_objective_names[EXP_OBJ_COUNT] = {"sum", "weighted", "minimax",
                                                        "minimax-raw"};
const char *const exp_solver_names[EXP_SOLVER_COUNT] = {"exact", "lagrange", "uniform", "rules"};
const char *const exp_term_names[EXP_TERM_COUNT] = {"png", "svg", "pdf"};
const char *const exp_export_names[EXP_EXPORT_COUNT] = {"none", "llama.cpp"};
const char *const exp_table_names[EXP_TABLE_COUNT] = {"kld_matrix", "vbr_vs_uniform",
                                                      "expert_usage", "additivity",
                                                      "sensitivity", "llama_stats",
                                                      "kld_entropy", "expert_bits"};
const char *const exp_plot_names[EXP_PLOT_COUNT] = {"sens_map", "sens_diff", "expert_usage",
                                                    "rd", "kld_matrix", "kld_vs_bpw",
                                                    "alloc_map"};

typedef enum { SEC_EXPERIMENT, SEC_CALIB, SEC_EVAL, SEC_QUANT, SEC_SENS, SEC_ALLOC, SEC_REPORT,
               SEC_CLAIM, SEC_COUNT } sec_kind;
enum { KX_NAME, KX_MODEL, KX_SEED, KX_OUT, KX_THREADS, KX_ALLOW_OVERLAP, KX_BASELINES,
       KX_RANDOM_DRAWS, KX_SECOND_HALF, KX_REPLICATES, KX_MEM_CAP, KX_EXPORT };
enum { KS_SOURCE, KS_SEQS, KS_LEN, KS_SEED };
enum { KQ_FORMATS, KQ_PERCDAMP, KQ_ACT_ORDER, KQ_STARVED, KQ_MIN_TOKENS };
enum { KN_METHOD, KN_EPS, KN_GRAN, KN_SEED, KN_TOKENS, KN_DRAWS, KN_EMBED_HEAD, KN_ADD_DRAWS };
enum { KA_SETS, KA_OBJECTIVE, KA_WEIGHTS, KA_SOLVER, KA_GRAN, KA_TARGET, KA_UNIFORM, KA_BUDGET,
       KA_UNIFORM_OUTER, KA_ALLOC_SET, KA_STATS_SET, KA_LLAMA_MIX };
enum { KR_TABLES, KR_PLOTS, KR_TERM };
enum { KC_TEXT, KC_TESTS };

#define KEYS_MAX 13 /* the most keys of a section ([experiment]: 12) + the NULL */
static const struct {
    const char *name;  /* section name, or prefix of "prefix.NAME" */
    int named;
    const char *keys[KEYS_MAX];  /* NULL-terminated, index = K*_ enum */
    unsigned required;           /* bit k: key k must be present */
} sec_info[SEC_COUNT] = {
    [SEC_EXPERIMENT] = {"experiment", 0, {"name", "model", "seed", "out", "threads",
                        "allow_overlap", "baselines", "random_draws", "score_second_half",
                        "replicates", "mem_cap", "export"},
                        1u << KX_NAME | 1u << KX_OUT},
    [SEC_CALIB] = {"calib", 1, {"source", "seqs", "len", "seed"}, 1u << KS_SOURCE},
    [SEC_EVAL] = {"eval", 1, {"source", "seqs", "len", "seed"}, 1u << KS_SOURCE},
    [SEC_QUANT] = {"quant", 0, {"formats", "percdamp", "act_order", "starved_policy",
                                "min_tokens"}, 1u << KQ_FORMATS},
    [SEC_SENS] = {"sens", 0, {"method", "eps", "granularity", "seed", "tokens", "draws",
                                "embed_head", "add_draws"}, 0},
    [SEC_ALLOC] = {"alloc", 1, {"sets", "objective", "weights", "solver", "granularity",
                                "target_bpw", "uniform", "budget", "uniform_outer",
                                "alloc_set", "stats_set", "llama_mix"},
                   1u << KA_TARGET}, /* sets or alloc_set: check_alloc */
    [SEC_REPORT] = {"report", 0, {"tables", "plots", "term"}, 0},
    [SEC_CLAIM] = {"claim", 1, {"text", "tests"}, 1u << KC_TEXT | 1u << KC_TESTS},
};

/* ---------------------------------------------------------------------------------------- */
/* parser state                                                                              */
/* ---------------------------------------------------------------------------------------- */

/* Which keys a section gave and on which lines (for the checks after the whole file). */
typedef struct {
    unsigned given;
    int line[KEYS_MAX];
} secrec;

typedef struct {
    exp_config *cfg;
    const char *dir;           /* config file's directory, "" for the working directory */
    FILE *f;
    int line;                  /* line the reader last returned */
    int too_long;              /* line `line` exceeded inih's buffer */
    int nul;                   /* line `line` holds a NUL byte */
    int header;                /* a [section] line was read since the last handler call */
    int header_line;           /* line of the last [section] line */
    /* current section */
    char *cur;                 /* section string as inih gave it */
    sec_kind kind;
    int idx;                   /* index into calib/eval/alloc for named kinds */
    secrec fixed[SEC_COUNT];   /* records of the unnamed sections */
    int fixed_seen[SEC_COUNT];
    secrec *rec[SEC_COUNT];    /* records of named sections, parallel to the cfg arrays */
    /* first problem */
    int err_code, err_line;
    char msg[VL_ERR_MSG];
} ctx;

static char *reader(char *str, int num, void *stream)
{
    ctx *c = stream;
    long at = ftell(c->f);
    if (c->too_long || c->nul || !fgets(str, num, c->f))
        return NULL;
    c->line++;
    /* fgets stops at the newline, not at a NUL: more bytes consumed than the string holds means
     * a NUL inside, which would cut the value short ("seqs = 2\0 9" read as 2) */
    long now = ftell(c->f);
    if (at >= 0 && now >= 0 && (size_t)(now - at) != strlen(str)) {
        c->nul = 1;
        return NULL;
    }
    /* inih calls us back only for keys; a header seen here makes a repeated [x] visible */
    const char *p = str + (c->line == 1 && !strncmp(str, "\xEF\xBB\xBF", 3) ? 3 : 0);
    p += strspn(p, " \t");
    if (*p == '[' && strchr(p, ']')) {  /* inih's test for a header; "[x" is its syntax error */
        c->header = 1;
        c->header_line = c->line;
    }
    size_t n = strlen(str);
    /* inih (without realloc) would read the rest of a long line as a new line; refuse it */
    if (n == (size_t)num - 1 && str[n - 1] != '\n' && !feof(c->f)) {
        int ch = fgetc(c->f);
        if (ch != EOF && ch != '\n') {
            c->too_long = 1;
            return NULL;
        }
    }
    return str;
}

static int vfail(ctx *c, int line, int code, const char *fmt, va_list ap)
{
    if (!c->err_code) {
        vsnprintf(c->msg, sizeof c->msg, fmt, ap);
        c->err_code = code;
        c->err_line = line;
    }
    return 0;
}

/* Record the first problem, on the current line; returns 0 (inih's "error"). */
static int fail(ctx *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(ctx *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(c, c->line, code, fmt, ap);
    va_end(ap);
    return 0;
}

/* The same, on the line of the section header (a problem of the section, not of a key). */
static int fail_hdr(ctx *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_hdr(ctx *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(c, c->header_line ? c->header_line : c->line, code, fmt, ap);
    va_end(ap);
    return 0;
}

static secrec *cur_rec(ctx *c)
{
    return sec_info[c->kind].named ? &c->rec[c->kind][c->idx] : &c->fixed[c->kind];
}

/* ---------------------------------------------------------------------------------------- */
/* one key of each section kind                                                              */
/* ---------------------------------------------------------------------------------------- */

static int key_experiment(ctx *c, int k, const char *v, char *why)
{
    exp_config *g = c->cfg;
    if (k != KX_MODEL && !*v)
        return exp_whyf(why, VL_ECONFIG, "empty value");
    switch (k) {
    case KX_NAME: return exp_set_str(&g->name, v, why);
    case KX_MODEL: return exp_set_str(&g->model, v, why);
    case KX_SEED: return exp_parse_u64(v, &g->seed, why);
    case KX_OUT: return exp_set_str(&g->out, v, why);
    case KX_THREADS: return exp_parse_int(v, 0, 4096, &g->threads, why);
    case KX_BASELINES:
        return exp_parse_bits(v, exp_baseline_names, EXP_BASE_COUNT, &g->baselines, why);
    case KX_RANDOM_DRAWS:
        return exp_parse_int(v, 1, EXP_MAX_RANDOM_DRAWS, &g->random_draws, why);
    case KX_SECOND_HALF: return exp_parse_bool(v, &g->score_second_half, why);
    case KX_REPLICATES: return exp_parse_int(v, 1, EXP_MAX_REPLICATES, &g->replicates, why);
    case KX_EXPORT: {
        int e = 0, rc = exp_parse_enum(v, exp_export_names, EXP_EXPORT_COUNT, &e, why);
        if (!rc)
            g->export_kind = (exp_export)e;
        return rc;
    }
    case KX_MEM_CAP: {
        uint64_t b;
        int rc = exp_parse_u64(v, &b, why);
        if (!rc && b > (uint64_t)INT64_MAX)
            rc = exp_whyf(why, VL_ECONFIG, "\"%s\" bytes is too large", v);
        if (!rc)
            g->mem_cap = (int64_t)b;
        return rc;
    }
    default: return exp_parse_bool(v, &g->allow_overlap, why);
    }
}

static int key_set(ctx *c, exp_set *s, int k, const char *v, char *why)
{
    switch (k) {
    case KS_SOURCE: {
        int rc = exp_source_parse(v, c->dir, s, why);
        if (!rc)
            s->line = c->line;
        return rc;
    }
    case KS_SEQS: return exp_parse_int(v, 1, 10000000, &s->seqs, why);
    case KS_LEN: return exp_parse_int(v, 2, 1 << 20, &s->len, why);
    default: s->has_seed = 1; return exp_parse_u64(v, &s->seed, why);
    }
}

static int key_quant(ctx *c, int k, const char *v, char *why)
{
    exp_config *g = c->cfg;
    int e, rc;
    switch (k) {
    case KQ_FORMATS: {
        /* validated by the menu parser the sens stage will use; stored as written */
        qfmt_menu m = {0, NULL};
        vl_err qe = {0, ""};
        rc = qfmt_menu_parse(&m, v, &qe);
        qfmt_menu_free(&m);
        return rc ? exp_whyf(why, rc, "%s", qe.msg) : exp_set_str(&g->formats, v, why);
    }
    case KQ_PERCDAMP: return exp_parse_num(v, 0, 1, 1, 0, &g->percdamp, why);
    case KQ_ACT_ORDER: return exp_parse_bool(v, &g->act_order, why);
    case KQ_STARVED:
        if (!strcmp(v, "route_all")) /* running another policy under its name: substitution */
            return exp_whyf(why, VL_ECONFIG, "route_all is not implemented (the stats stage "
                            "gathers no route-all statistics); use uniform or rtn");
        rc = exp_parse_enum(v, exp_starved_names, EXP_STARVED_COUNT, &e, why);
        g->starved_policy = (exp_starved)e;
        return rc;
    default: return exp_parse_int(v, 0, 1 << 30, &g->min_tokens, why);
    }
}

static int key_sens(ctx *c, int k, const char *v, char *why)
{
    exp_config *g = c->cfg;
    int e, rc;
    switch (k) {
    case KN_METHOD:
        rc = exp_parse_enum(v, exp_sens_method_names, EXP_SENS_COUNT, &e, why);
        g->sens_method = (exp_sens_method)e;
        return rc;
    case KN_EPS: /* sens measures at ε₁ and ε₂; a third value would be ignored */
        rc = exp_parse_dlist(v, 0, 1, 1, 1, &g->eps, why);
        return rc || g->eps.n <= 2 ? rc : exp_whyf(why, VL_ECONFIG, "%d values; give one or two "
                                                   "noise levels", g->eps.n);
    case KN_GRAN:
        rc = exp_parse_enum(v, exp_gran_names, EXP_GRAN_COUNT, &e, why);
        g->sens_granularity = (exp_gran)e;
        return rc;
    case KN_SEED: g->sens_has_seed = 1; return exp_parse_u64(v, &g->sens_seed, why);
    case KN_TOKENS: return exp_parse_int(v, 0, 1 << 30, &g->sens_tokens, why);
    case KN_ADD_DRAWS: return exp_parse_int(v, 0, SENS_MAX_ADD_DRAWS, &g->sens_add_draws, why);
    case KN_EMBED_HEAD: return exp_parse_bool(v, &g->sens_embed_head, why);
    default: return exp_parse_int(v, 1, SENS_MAX_DRAWS, &g->sens_draws, why);
    }
}

static int key_alloc(ctx *c, exp_alloc *a, int k, const char *v, char *why)
{
    int e, rc;
    switch (k) {
    case KA_SETS:
    case KA_ALLOC_SET:
        if (a->sets.n)
            return exp_whyf(why, VL_ECONFIG, "sets and alloc_set name the same thing; give one");
        a->line = c->line;
        return exp_parse_names(v, &a->sets, why);
    case KA_STATS_SET: return exp_parse_names(v, &a->stats_sets, why);
    case KA_LLAMA_MIX: return exp_parse_ftypes(v, &a->llama_mix, why);
    case KA_OBJECTIVE:
        rc = exp_parse_enum(v, exp_objective_names, EXP_OBJ_COUNT, &e, why);
        a->objective = (exp_objective)e;
        return rc;
    case KA_WEIGHTS:
        rc = exp_parse_dlist(v, 0, 0, 1e300, 0, &a->weights, why);
        for (int i = 0; !rc && i < a->weights.n && a->weights.v[i] == 0; i++)
            if (i == a->weights.n - 1)
                rc = exp_whyf(why, VL_ECONFIG, "all weights are 0");
        return rc;
    case KA_SOLVER:
        rc = exp_parse_enum(v, exp_solver_names, EXP_SOLVER_COUNT, &e, why);
        a->solver = (exp_solver)e;
        return rc;
    case KA_GRAN:
        rc = exp_parse_enum(v, exp_gran_names, EXP_GRAN_COUNT, &e, why);
        a->granularity = (exp_gran)e;
        return rc;
    case KA_TARGET: return exp_parse_dlist(v, 0, 1, 32, 0, &a->target_bpw, why);
    case KA_BUDGET:
        rc = exp_parse_enum(v, exp_budget_names, EXP_BUDGET_COUNT, &e, why);
        a->budget = (exp_budget)e;
        return rc;
    case KA_UNIFORM_OUTER: {
        qfmt f;
        vl_err qe = {0, ""};
        char name[QFMT_NAME_MAX];
        if (qfmt_parse(&f, v, &qe))
            return exp_whyf(why, VL_ECONFIG, "%s", qe.msg);
        vl_free(a->uniform_outer);
        return (a->uniform_outer = vl_strdup(qfmt_name(&f, name))) ? 0 : VL_ENOMEM;
    }
    default: { /* KA_UNIFORM */
        exp_slist l = {0, NULL};
        rc = exp_split_list(v, &l, why);
        for (int i = 0; !rc && i < l.n; i++) {
            qfmt f;
            vl_err qe = {0, ""};
            char name[QFMT_NAME_MAX], *canon = NULL;
            if (qfmt_parse(&f, l.v[i], &qe))
                rc = exp_whyf(why, VL_ECONFIG, "%s", qe.msg);
            else if (!(canon = vl_strdup(qfmt_name(&f, name))))
                rc = VL_ENOMEM;
            else { /* a menu spelling is kept as the format's name: rows are named by it */
                vl_free(l.v[i]);
                l.v[i] = canon;
            }
        }
        if (rc)
            exp_slist_free(&l);
        if (!rc) {
            exp_slist_free(&a->uniform);
            a->uniform = l;
        }
        return rc;
    }
    }
}

static int key_report(ctx *c, int k, const char *v, char *why)
{
    exp_config *g = c->cfg;
    int e, rc;
    switch (k) {
    case KR_TABLES: return exp_parse_bits(v, exp_table_names, EXP_TABLE_COUNT, &g->tables, why);
    case KR_PLOTS: return exp_parse_bits(v, exp_plot_names, EXP_PLOT_COUNT, &g->plots, why);
    default:
        rc = exp_parse_enum(v, exp_term_names, EXP_TERM_COUNT, &e, why);
        g->term = (exp_term)e;
        return rc;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* sections                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static void set_defaults(exp_set *s, int is_eval)
{
    s->seqs = is_eval ? 32 : 64;
    s->len = 256;
}

/* Append a zeroed element to *arr (n elements of size sz) and to the parallel record array. */
static int grow(void **arr, int n, size_t sz, secrec **rec)
{
    char *a = vl_realloc(*arr, (size_t)(n + 1) * sz);
    if (!a)
        return VL_ENOMEM;
    *arr = a;
    memset(a + (size_t)n * sz, 0, sz);
    secrec *r = vl_realloc(*rec, (size_t)(n + 1) * sizeof *r);
    if (!r)
        return VL_ENOMEM;
    *rec = r;
    memset(&r[n], 0, sizeof *r);
    return 0;
}

static int named_find(const exp_config *g, sec_kind kind, const char *name)
{
    return kind == SEC_CALIB ? exp_find_calib(g, name)
           : kind == SEC_EVAL ? exp_find_eval(g, name)
           : kind == SEC_CLAIM ? exp_find_claim(g, name) : exp_find_alloc(g, name);
}

/* A new run of keys under a section header: resolve its kind, refuse duplicates, add it. */
static int enter_section(ctx *c, const char *section)
{
    exp_config *g = c->cfg;
    if (!*section)
        return fail(c, VL_ECONFIG, "key outside any section (start with [experiment])");
    char *cur = vl_strdup(section);
    if (!cur)
        return fail(c, VL_ENOMEM, "out of memory");
    vl_free(c->cur);
    c->cur = cur;
    const char *dot = strchr(section, '.');
    size_t plen = dot ? (size_t)(dot - section) : strlen(section);
    int kind;
    for (kind = 0; kind < SEC_COUNT; kind++)
        if (strlen(sec_info[kind].name) == plen && !strncmp(section, sec_info[kind].name, plen))
            break;
    if (kind == SEC_COUNT || sec_info[kind].named != (dot != NULL))
        return fail_hdr(c, VL_ECONFIG, "[%s]: unknown section (valid: experiment, calib.NAME, "
                    "eval.NAME, quant, sens, alloc.NAME, report, claim.NAME)", section);
    c->kind = (sec_kind)kind;
    if (!sec_info[kind].named) {
        if (c->fixed_seen[kind])
            return fail_hdr(c, VL_ECONFIG, "[%s]: duplicate section", section);
        c->fixed_seen[kind] = 1;
        c->fixed[kind].given = 0;
        return 1;
    }
    const char *name = dot + 1;
    if (!calib_name_ok(name))
        return fail_hdr(c, VL_ECONFIG, "[%s]: bad section name \"%s\" (want [A-Za-z0-9_.+-]+)",
                    section, name);
    if (named_find(g, c->kind, name) >= 0)
        return fail_hdr(c, VL_ECONFIG, "[%s]: duplicate section", section);
    char *nm = vl_strdup(name);
    int rc = nm ? 0 : VL_ENOMEM;
    if (!rc && kind == SEC_ALLOC) {
        rc = grow((void **)&g->alloc, g->n_alloc, sizeof *g->alloc, &c->rec[kind]);
        if (!rc) {
            c->idx = g->n_alloc++;
            g->alloc[c->idx].name = nm;
        }
    } else if (!rc && kind == SEC_CLAIM) {
        rc = grow((void **)&g->claim, g->n_claim, sizeof *g->claim, &c->rec[kind]);
        if (!rc) {
            c->idx = g->n_claim++;
            g->claim[c->idx].name = nm;
        }
    } else if (!rc) {
        int is_eval = kind == SEC_EVAL;
        exp_set **arr = is_eval ? &g->eval : &g->calib;
        int *n = is_eval ? &g->n_eval : &g->n_calib;
        rc = grow((void **)arr, *n, sizeof **arr, &c->rec[kind]);
        if (!rc) {
            c->idx = (*n)++;
            (*arr)[c->idx].name = nm;
            set_defaults(&(*arr)[c->idx], is_eval);
        }
    }
    if (rc) {
        vl_free(nm);
        return fail(c, VL_ENOMEM, "out of memory");
    }
    return 1;
}

/* The first control character of s (0 if none). */
static int ctrl_in(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return (unsigned char)*s;
    return 0;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    ctx *c = user;
    if (c->err_code)
        return 1;  /* the first problem is the one reported */
    int fresh = c->header || !c->cur || strcmp(c->cur, section);
    c->header = 0;
    if (fresh && !enter_section(c, section))
        return 0;
    const char *const *keys = sec_info[c->kind].keys;
    int k;
    for (k = 0; keys[k]; k++)
        if (!strcmp(keys[k], name))
            break;
    if (!keys[k]) {
        char list[256] = "";
        for (int i = 0; keys[i]; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                     keys[i]);
        return fail(c, VL_ECONFIG, "[%s] %s: unknown key (valid: %s)", section, name, list);
    }
    secrec *r = cur_rec(c);
    if (r->given & (1u << k))
        return fail(c, VL_ECONFIG, "[%s] %s: duplicate key (first on line %d)", section, name,
                    r->line[k]);
    r->given |= 1u << k;
    r->line[k] = c->line;
    /* no value needs one, and text (an `out` path, a name) may travel on to gnuplot */
    int cc = ctrl_in(value);
    if (cc)
        return fail(c, VL_ECONFIG, "[%s] %s: value holds control character 0x%02x; refused",
                    section, name, cc);
    char why[EXP_WHY];
    int rc;
    switch (c->kind) {
    case SEC_EXPERIMENT: rc = key_experiment(c, k, value, why); break;
    case SEC_CALIB: rc = key_set(c, &c->cfg->calib[c->idx], k, value, why); break;
    case SEC_EVAL: rc = key_set(c, &c->cfg->eval[c->idx], k, value, why); break;
    case SEC_QUANT: rc = key_quant(c, k, value, why); break;
    case SEC_SENS: rc = key_sens(c, k, value, why); break;
    case SEC_ALLOC: rc = key_alloc(c, &c->cfg->alloc[c->idx], k, value, why); break;
    case SEC_REPORT: rc = key_report(c, k, value, why); break;
    default: rc = exp_claim_key(&c->cfg->claim[c->idx], k == KC_TESTS, value, c->line, why);
        break;
    }
    return rc ? fail(c, rc, "[%s] %s: %s", section, name, why) : 1;
}

/* ---------------------------------------------------------------------------------------- */
/* whole-file checks                                                                         */
/* ---------------------------------------------------------------------------------------- */

static int check_required(const char *path, const char *section, sec_kind kind,
                          const secrec *r, vl_err *err)
{
    for (int k = 0; sec_info[kind].keys[k]; k++)
        if ((sec_info[kind].required >> k & 1) && !(r->given >> k & 1))
            return vl_errf(err, VL_ECONFIG, "%s: [%s]: missing key \"%s\"", path, section,
                           sec_info[kind].keys[k]);
    return 0;
}

static int check_alloc(const char *path, const exp_config *g, const exp_alloc *a,
                       const secrec *r, vl_err *err)
{
    if (!a->sets.n)
        return vl_errf(err, VL_ECONFIG, "%s: [alloc.%s]: missing key \"sets\" (or alloc_set)",
                       path, a->name);
    for (int i = 0; i < a->sets.n; i++)
        if (exp_find_calib(g, a->sets.v[i]) < 0)
            return vl_errf(err, VL_ECONFIG, "%s:%d: [alloc.%s] sets: \"%s\" names no "
                           "[calib.%s] section", path, a->line, a->name, a->sets.v[i],
                           a->sets.v[i]);
    for (int i = 0; i < a->stats_sets.n; i++)
        if (exp_find_calib(g, a->stats_sets.v[i]) < 0)
            return vl_errf(err, VL_ECONFIG, "%s:%d: [alloc.%s] stats_set: \"%s\" names no "
                           "[calib.%s] section", path, r->line[KA_STATS_SET], a->name,
                           a->stats_sets.v[i], a->stats_sets.v[i]);
    if (a->objective == EXP_OBJ_WEIGHTED && !(r->given >> KA_WEIGHTS & 1))
        return vl_errf(err, VL_ECONFIG, "%s:%d: [alloc.%s] weights: objective weighted needs "
                       "weights (one per set)", path, r->line[KA_OBJECTIVE], a->name);
    if (a->objective != EXP_OBJ_WEIGHTED && a->weights.n)
        return vl_errf(err, VL_ECONFIG, "%s:%d: [alloc.%s] weights: only used with objective "
                       "= weighted", path, r->line[KA_WEIGHTS], a->name);
    if (a->weights.n && a->weights.n != a->sets.n)
        return vl_errf(err, VL_ECONFIG, "%s:%d: [alloc.%s] weights: %d weights for %d sets",
                       path, r->line[KA_WEIGHTS], a->name, a->weights.n, a->sets.n);
    if (a->llama_mix.n && a->granularity != EXP_GRAN_GGUF)
        return vl_errf(err, VL_ECONFIG, "%s:%d: [alloc.%s] llama_mix: needs granularity = gguf "
                       "(llama.cpp's mixes are per GGUF tensor; this allocation is %s)", path,
                       r->line[KA_LLAMA_MIX], a->name, exp_gran_names[a->granularity]);
    int outer = g->sens_embed_head || g->sens_granularity == EXP_GRAN_GGUF;
    if (!outer && (a->granularity == EXP_GRAN_GGUF || a->uniform_outer))
        return vl_errf(err, VL_ECONFIG, "%s:%d: [alloc.%s] %s: needs the token embedding and "
                       "LM head as units ([sens] granularity = gguf or embed_head = true)",
                       path, a->granularity == EXP_GRAN_GGUF ? r->line[KA_GRAN]
                                                             : r->line[KA_UNIFORM_OUTER],
                       a->name, a->granularity == EXP_GRAN_GGUF ? "granularity gguf"
                                                                : "uniform_outer");
    return 0;
}

static int check_all(ctx *c, const char *path, vl_err *err)
{
    exp_config *g = c->cfg;
    static const sec_kind must[] = {SEC_EXPERIMENT, SEC_QUANT};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
        if (!c->fixed_seen[must[i]])
            return vl_errf(err, VL_ECONFIG, "%s: missing section [%s]", path,
                           sec_info[must[i]].name);
    for (int kind = 0; kind < SEC_COUNT; kind++) {
        int rc = sec_info[kind].named ? 0
                 : check_required(path, sec_info[kind].name, (sec_kind)kind, &c->fixed[kind],
                                  err);
        if (rc)
            return rc;
    }
    if (g->n_calib == 0)
        return vl_errf(err, VL_ECONFIG, "%s: no [calib.NAME] section (at least one "
                       "calibration set is needed)", path);
    char sec[VL_ERR_MSG];
    for (int i = 0; i < g->n_calib + g->n_eval; i++) {
        int ev = i >= g->n_calib, j = ev ? i - g->n_calib : i;
        snprintf(sec, sizeof sec, "%s.%s", ev ? "eval" : "calib", ev ? g->eval[j].name
                                                                     : g->calib[j].name);
        int rc = check_required(path, sec, ev ? SEC_EVAL : SEC_CALIB,
                                &c->rec[ev ? SEC_EVAL : SEC_CALIB][j], err);
        if (rc)
            return rc;
    }
    for (int i = 0; i < g->n_alloc; i++) {
        snprintf(sec, sizeof sec, "alloc.%s", g->alloc[i].name);
        int rc = check_required(path, sec, SEC_ALLOC, &c->rec[SEC_ALLOC][i], err);
        if (!rc)
            rc = check_alloc(path, g, &g->alloc[i], &c->rec[SEC_ALLOC][i], err);
        if (rc)
            return rc;
    }
    for (int i = 0; i < g->n_claim; i++) {
        snprintf(sec, sizeof sec, "claim.%s", g->claim[i].name);
        int rc = check_required(path, sec, SEC_CLAIM, &c->rec[SEC_CLAIM][i], err);
        if (!rc)
            rc = exp_check_claim(path, g, &g->claim[i], err);
        if (rc)
            return rc;
    }
    int rc = exp_check_refs(path, "calib", g->calib, g->n_calib, err);
    return rc ? rc : exp_check_refs(path, "eval", g->eval, g->n_eval, err);
}

/* ---------------------------------------------------------------------------------------- */
/* public                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static int defaults(exp_config *g, const char *path)
{
    memset(g, 0, sizeof *g);
    g->path = vl_strdup(path);
    g->model = vl_strdup("");
    g->eps.v = vl_calloc(2, sizeof(double));
    if (!g->path || !g->model || !g->eps.v)
        return VL_ENOMEM;
    g->eps.n = 2;
    g->eps.v[0] = 0.01;
    g->eps.v[1] = 0.03;
    g->percdamp = 0.01;
    g->replicates = 1;
    g->mem_cap = -1;
    g->starved_policy = EXP_STARVED_UNIFORM;
    g->min_tokens = 16;
    g->sens_draws = SENS_DEFAULT_DRAWS;
    g->sens_add_draws = SENS_DEFAULT_ADD_DRAWS;
    g->random_draws = 3;
    g->tables = (1u << EXP_TABLE_COUNT) - 1;
    g->plots = (1u << EXP_PLOT_COUNT) - 1;
    return 0;
}

int exp_config_parse(const char *path, exp_config *cfg, vl_err *err)
{
    ctx c;
    memset(&c, 0, sizeof c);
    c.cfg = cfg;
    if (defaults(cfg, path)) {
        exp_config_free(cfg);
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
    }
    int orc = vf_fopen(path, &c.f, err); /* regular files only: a FIFO would block */
    if (orc) {
        exp_config_free(cfg);
        return orc;
    }
    const char *slash = strrchr(path, '/');
    char *dir = vl_strdup(path);
    int rc = 0;
    if (!dir) {
        rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
    } else {
        dir[slash ? (size_t)(slash - path) : 0] = 0;
        if (slash == path)
            strcpy(dir, "/");
        c.dir = dir;
        int bad = ini_parse_stream(reader, &c, handler, &c);
        if (c.nul && (!c.err_code || c.line < c.err_line))
            rc = vl_errf(err, VL_ECONFIG, "%s:%d: NUL byte in the line", path, c.line);
        else if (c.too_long && (!c.err_code || c.line < c.err_line))
            rc = vl_errf(err, VL_ECONFIG, "%s:%d: line longer than %d characters", path, c.line,
                         INI_MAX_LINE - 1);
        else if (bad > 0 && (!c.err_code || bad < c.err_line))
            rc = vl_errf(err, VL_ECONFIG, "%s:%d: syntax error (want [section], key = value or "
                         "a ; comment)", path, bad);
        else if (c.err_code)
            rc = vl_errf(err, c.err_code, "%s:%d: %s", path, c.err_line, c.msg);
        else if (bad < 0)
            rc = vl_errf(err, VL_ENOMEM, "%s: ini parser out of memory", path);
        else if (ferror(c.f))
            rc = vl_errf(err, VL_EIO, "%s: read error", path);
        else
            rc = check_all(&c, path, err);
    }
    fclose(c.f);
    vl_free(dir);
    vl_free(c.cur);
    for (int k = 0; k < SEC_COUNT; k++)
        vl_free(c.rec[k]);
    if (rc)
        exp_config_free(cfg);
    return rc;
}

static void set_free(exp_set *s)
{
    vl_free(s->name);
    vl_free(s->resolved);
}

void exp_config_free(exp_config *cfg)
{
    if (!cfg)
        return;
    vl_free(cfg->path);
    vl_free(cfg->name);
    vl_free(cfg->model);
    vl_free(cfg->out);
    for (int i = 0; i < cfg->n_calib; i++)
        set_free(&cfg->calib[i]);
    for (int i = 0; i < cfg->n_eval; i++)
        set_free(&cfg->eval[i]);
    for (int i = 0; i < cfg->n_alloc; i++) {
        exp_alloc *a = &cfg->alloc[i];
        vl_free(a->name);
        exp_slist_free(&a->sets);
        vl_free(a->weights.v);
        vl_free(a->target_bpw.v);
        exp_slist_free(&a->uniform);
        exp_slist_free(&a->stats_sets);
        exp_slist_free(&a->llama_mix);
        vl_free(a->uniform_outer);
    }
    for (int i = 0; i < cfg->n_claim; i++)
        exp_claim_free(&cfg->claim[i]);
    vl_free(cfg->claim);
    vl_free(cfg->calib);
    vl_free(cfg->eval);
    vl_free(cfg->alloc);
    vl_free(cfg->formats);
    vl_free(cfg->eps.v);
    memset(cfg, 0, sizeof *cfg);
}

static int find_set(const exp_set *s, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s[i].name, name))
            return i;
    return -1;
}

int exp_find_calib(const exp_config *cfg, const char *name)
{
    return find_set(cfg->calib, cfg->n_calib, name);
}

int exp_find_eval(const exp_config *cfg, const char *name)
{
    return find_set(cfg->eval, cfg->n_eval, name);
}

const exp_slist *exp_alloc_stats(const exp_alloc *a)
{
    return a->stats_sets.n ? &a->stats_sets : &a->sets;
}

int exp_find_alloc(const exp_config *cfg, const char *name)
{
    for (int i = 0; i < cfg->n_alloc; i++)
        if (!strcmp(cfg->alloc[i].name, name))
            return i;
    return -1;
}

int exp_find_claim(const exp_config *cfg, const char *name)
{
    for (int i = 0; i < cfg->n_claim; i++)
        if (!strcmp(cfg->claim[i].name, name))
            return i;
    return -1;
}
