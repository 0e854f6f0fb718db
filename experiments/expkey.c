/* experiments/expkey.c — the canonical text of a config, derived seeds and stage cache keys.
 *
 * One renderer serves both: it writes to a FILE (exp_config_render) or folds the same bytes into
 * an FNV-1a 64 hash (exp_stage_key), so the key of a stage is by construction the hash of text a
 * person can read. The canonical text lists named sections sorted by name and keys in table
 * order with every value explicit, so comments, blanks, key order and section order never
 * change a key. FNV-1a 64 and the derived seeds come from core/hash.h and core/rng.h.
 */
#include "expcfg_int.h"

#include "../core/hash.h"
#include "../core/num.h"
#include "../core/rng.h"

#include <stdio.h>

#include <inttypes.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* hashing and the sink                                                                      */
/* ---------------------------------------------------------------------------------------- */

/* 53 bits: seeds are stored as float64 attributes (exact up to 2^53), and a derived seed must
 * be storable like a configured one. */
static uint64_t derive_seed(uint64_t exp_seed, const char *prefix, const char *name)
{
    char label[256];
    snprintf(label, sizeof label, "%s%s", prefix, name); /* names are < CALIB_NAME_MAX */
    return rng_child_seed(exp_seed, label) >> 11;
}

uint64_t exp_set_seed(const exp_config *cfg, const exp_set *set, int is_eval)
{
    return set->has_seed ? set->seed : derive_seed(cfg->seed, is_eval ? "eval." : "calib.",
                                                   set->name);
}

uint64_t exp_replicate_seed(const exp_config *cfg, const exp_set *set, int k)
{
    uint64_t base = exp_set_seed(cfg, set, 0);
    if (k <= 0)
        return base;
    char label[32];
    snprintf(label, sizeof label, "replicate.%d", k);
    return rng_child_seed(base, label) >> 11;
}

int exp_replicate_out(const exp_config *cfg, int k, char *buf, size_t cap, vl_err *err)
{
    const char *out = cfg->out;
    const char *slash = strrchr(out, '/'), *dot = strrchr(out, '.');
    size_t stem = dot && (!slash || dot > slash + 1) ? (size_t)(dot - out) : strlen(out);
    int w = k <= 0 ? snprintf(buf, cap, "%s", out)
                   : snprintf(buf, cap, "%.*s.rep%d%s", (int)stem, out, k, out + stem);
    if (w < 0 || (size_t)w >= cap)
        return vl_errf(err, VL_ECONFIG, "%s: [experiment] out: path too long for replicate %d",
                       cfg->path, k);
    return 0;
}

uint64_t exp_sens_seed(const exp_config *cfg)
{
    return cfg->sens_has_seed ? cfg->sens_seed : derive_seed(cfg->seed, "sens", "");
}

typedef struct {
    FILE *f;     /* write here, or (NULL) hash into h */
    uint64_t h;
    int bad;     /* a write failed */
} sink;

static void put(sink *s, const char *str)
{
    size_t n = strlen(str);
    if (!s->f)
        s->h = hash_fnv1a64(s->h, str, n);
    else if (fwrite(str, 1, n, s->f) != n)
        s->bad = 1;
}

static void put_kv(sink *s, const char *key, const char *value)
{
    put(s, key);
    put(s, " = ");
    put(s, value);
    put(s, "\n");
}

static void put_header(sink *s, const char *kind, const char *name)
{
    put(s, "\n[");
    put(s, kind);
    if (name) {
        put(s, ".");
        put(s, name);
    }
    put(s, "]\n");
}

static void put_u64(sink *s, const char *key, uint64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%" PRIu64, v);
    put_kv(s, key, b);
}

static void put_int(sink *s, const char *key, int v)
{
    char b[32];
    snprintf(b, sizeof b, "%d", v);
    put_kv(s, key, b);
}

static void put_hex(sink *s, const char *key, uint64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%016" PRIx64, v);
    put_kv(s, key, b);
}

static void put_dlist(sink *s, const char *key, const exp_dlist *l)
{
    put(s, key);
    put(s, " = ");
    for (int i = 0; i < l->n; i++) {
        char b[32];
        num_fmt_f64(b, l->v[i]);
        put(s, i ? ", " : "");
        put(s, b);
    }
    put(s, "\n");
}

static void put_slist(sink *s, const char *key, const exp_slist *l)
{
    put(s, key);
    put(s, " = ");
    for (int i = 0; i < l->n; i++) {
        put(s, i ? ", " : "");
        put(s, l->v[i]);
    }
    put(s, "\n");
}

static void put_bits(sink *s, const char *key, unsigned bits, const char *const *names, int n)
{
    put(s, key);
    put(s, " = ");
    if (!bits)
        put(s, "none");
    for (int i = 0, first = 1; i < n; i++)
        if (bits >> i & 1) {
            put(s, first ? "" : ", ");
            put(s, names[i]);
            first = 0;
        }
    put(s, "\n");
}

/* ---------------------------------------------------------------------------------------- */
/* sections                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static void put_source(sink *s, const calib_spec *src)
{
    char b[CALIB_SOURCE_MAX + 2 * CALIB_MAX_PARTS * (CALIB_NAME_MAX + 32)];
    calib_source_text(src, NULL, b, sizeof b); /* a file: its path as written */
    put(s, "source = ");
    put(s, b);
    put(s, "\n");
}

static void put_set(sink *s, const exp_config *cfg, const exp_set *set, int is_eval)
{
    put_header(s, is_eval ? "eval" : "calib", set->name);
    put_source(s, &set->src);
    put_int(s, "seqs", set->seqs);
    put_int(s, "len", set->len);
    put_u64(s, "seed", exp_set_seed(cfg, set, is_eval));  /* effective, derived or not */
}

/* Index of the set whose name follows prev in byte order (prev NULL: the first), or −1.
 * Names are unique (duplicates are parse errors); n is small, so a selection scan will do. */
static int next_set(const exp_set *sets, int n, const char *prev)
{
    int best = -1;
    for (int i = 0; i < n; i++)
        if ((!prev || strcmp(sets[i].name, prev) > 0) &&
            (best < 0 || strcmp(sets[i].name, sets[best].name) < 0))
            best = i;
    return best;
}

static int next_alloc(const exp_alloc *a, int n, const char *prev)
{
    int best = -1;
    for (int i = 0; i < n; i++)
        if ((!prev || strcmp(a[i].name, prev) > 0) &&
            (best < 0 || strcmp(a[i].name, a[best].name) < 0))
            best = i;
    return best;
}

static void put_sets(sink *s, const exp_config *cfg, int is_eval)
{
    const exp_set *sets = is_eval ? cfg->eval : cfg->calib;
    int n = is_eval ? cfg->n_eval : cfg->n_calib;
    for (int i = next_set(sets, n, NULL); i >= 0; i = next_set(sets, n, sets[i].name))
        put_set(s, cfg, &sets[i], is_eval);
}

static void put_quant_sens(sink *s, const exp_config *cfg)
{
    char b[32];
    put_header(s, "quant", NULL);
    put_kv(s, "formats", cfg->formats);
    num_fmt_f64(b, cfg->percdamp);
    put_kv(s, "percdamp", b);
    put_kv(s, "act_order", cfg->act_order ? "true" : "false");
    put_kv(s, "starved_policy", exp_starved_names[cfg->starved_policy]);
    put_int(s, "min_tokens", cfg->min_tokens);
    put_header(s, "sens", NULL);
    put_kv(s, "method", exp_sens_method_names[cfg->sens_method]);
    put_dlist(s, "eps", &cfg->eps);
    put_kv(s, "granularity", exp_gran_names[cfg->sens_granularity]);
    put_u64(s, "seed", exp_sens_seed(cfg));
    put_int(s, "tokens", cfg->sens_tokens);
    put_int(s, "draws", cfg->sens_draws);
    put_int(s, "add_draws", cfg->sens_add_draws);
}

/* with_uniform: the baseline rows are evaluated, not solved, so the alloc key leaves them out */
static void put_alloc(sink *s, const exp_alloc *a, int with_uniform)
{
    put_header(s, "alloc", a->name);
    put_slist(s, "sets", &a->sets);
    put_kv(s, "objective", exp_objective_names[a->objective]);
    if (a->weights.n)
        put_dlist(s, "weights", &a->weights);
    put_kv(s, "solver", exp_solver_names[a->solver]);
    put_kv(s, "granularity", exp_gran_names[a->granularity]);
    put_dlist(s, "target_bpw", &a->target_bpw);
    if (with_uniform && a->uniform.n)
        put_slist(s, "uniform", &a->uniform);
    if (with_uniform && a->llama_mix.n)
        put_slist(s, "llama_mix", &a->llama_mix);
    if (a->stats_sets.n) /* the solver ignores it, but the stored allocation records it */
        put_slist(s, "stats_set", &a->stats_sets);
}

static int next_claim(const exp_claim *c, int n, const char *prev)
{
    int best = -1;
    for (int i = 0; i < n; i++)
        if ((!prev || strcmp(c[i].name, prev) > 0) &&
            (best < 0 || strcmp(c[i].name, c[best].name) < 0))
            best = i;
    return best;
}

/* [experiment] baselines and random_draws, only when baselines are asked for (so configs
 * without them keep their keys and rendering). */
static void put_baselines(sink *s, const exp_config *cfg)
{
    if (!cfg->baselines)
        return;
    put_bits(s, "baselines", cfg->baselines, exp_baseline_names, EXP_BASE_COUNT);
    put_int(s, "random_draws", cfg->random_draws);
}

static void put_report(sink *s, const exp_config *cfg)
{
    put_header(s, "report", NULL);
    put_bits(s, "tables", cfg->tables, exp_table_names, EXP_TABLE_COUNT);
    put_bits(s, "plots", cfg->plots, exp_plot_names, EXP_PLOT_COUNT);
    put_kv(s, "term", exp_term_names[cfg->term]);
    for (int i = next_claim(cfg->claim, cfg->n_claim, NULL); i >= 0;
         i = next_claim(cfg->claim, cfg->n_claim, cfg->claim[i].name)) {
        const exp_claim *cl = &cfg->claim[i];
        put_header(s, "claim", cl->name);
        put_kv(s, "text", cl->text);
        put(s, "tests = ");
        for (int t = 0; t < cl->n_tests; t++) {
            char b[512];
            exp_test_text(&cl->tests[t], b, sizeof b);
            put(s, t ? ", " : "");
            put(s, b);
        }
        put(s, "\n");
    }
}

/* ---------------------------------------------------------------------------------------- */
/* public                                                                                    */
/* ---------------------------------------------------------------------------------------- */

int exp_config_render(const exp_config *cfg, FILE *f, vl_err *err)
{
    sink s = {f, 0, 0};
    put(&s, "[experiment]\n");
    put_kv(&s, "name", cfg->name);
    put_kv(&s, "model", cfg->model);
    put_u64(&s, "seed", cfg->seed);
    put_kv(&s, "out", cfg->out);
    put_int(&s, "threads", cfg->threads);
    put_baselines(&s, cfg);
    if (cfg->score_second_half)
        put_kv(&s, "score_second_half", "true");
    put_int(&s, "replicates", cfg->replicates);
    if (cfg->mem_cap >= 0)
        put_u64(&s, "mem_cap", (uint64_t)cfg->mem_cap);
    if (cfg->export_kind != EXP_EXPORT_NONE) /* absent = none: older renderings unchanged */
        put_kv(&s, "export", exp_export_names[cfg->export_kind]);
    put_sets(&s, cfg, 0);
    put_sets(&s, cfg, 1);
    put_quant_sens(&s, cfg);
    for (int i = next_alloc(cfg->alloc, cfg->n_alloc, NULL); i >= 0;
         i = next_alloc(cfg->alloc, cfg->n_alloc, cfg->alloc[i].name))
        put_alloc(&s, &cfg->alloc[i], 1);
    put_report(&s, cfg);
    if (s.bad || ferror(f))
        return vl_errf(err, VL_EIO, "%s: writing the canonical config failed", cfg->path);
    return 0;
}

uint64_t exp_stage_key(const exp_config *cfg, exp_stage stage, int alloc_idx)
{
    sink s = {NULL, HASH_FNV_OFFSET, 0};
    switch (stage) {
    case EXP_STAGE_STATS:
        put(&s, "stage stats\n[experiment]\n");
        put_kv(&s, "model", cfg->model);
        put_u64(&s, "seed", cfg->seed);
        if (cfg->replicate > 0) /* replicate 0 keeps the unreplicated run's key */
            put_int(&s, "replicate", cfg->replicate);
        put_sets(&s, cfg, 0);
        break;
    case EXP_STAGE_SENS:
        put(&s, "stage sens\n");
        put_hex(&s, "stats", exp_stage_key(cfg, EXP_STAGE_STATS, 0));
        put_quant_sens(&s, cfg);
        break;
    case EXP_STAGE_ALLOC:
        VL_ASSERT(alloc_idx >= 0 && alloc_idx < cfg->n_alloc);
        put(&s, "stage alloc\n");
        put_hex(&s, "sens", exp_stage_key(cfg, EXP_STAGE_SENS, 0));
        put_alloc(&s, &cfg->alloc[alloc_idx], 0);
        put_baselines(&s, cfg); /* the alloc stage solves the baseline allocations too */
        break;
    case EXP_STAGE_EVAL:
        /* uniform baselines need the model, the calibration statistics and [quant] even when
         * there is no allocation, hence the sens key */
        put(&s, "stage eval\n");
        put_hex(&s, "sens", exp_stage_key(cfg, EXP_STAGE_SENS, 0));
        for (int i = next_alloc(cfg->alloc, cfg->n_alloc, NULL); i >= 0;
             i = next_alloc(cfg->alloc, cfg->n_alloc, cfg->alloc[i].name)) {
            put_header(&s, "alloc", cfg->alloc[i].name);
            put_hex(&s, "key", exp_stage_key(cfg, EXP_STAGE_ALLOC, i));
            put_slist(&s, "uniform", &cfg->alloc[i].uniform);
            if (cfg->alloc[i].uniform.n && cfg->alloc[i].uniform_outer)
                put_kv(&s, "uniform_outer", cfg->alloc[i].uniform_outer);
            if (cfg->alloc[i].llama_mix.n) /* absent otherwise: older keys unchanged */
                put_slist(&s, "llama_mix", &cfg->alloc[i].llama_mix);
        }
        put_sets(&s, cfg, 1);
        if (cfg->score_second_half)
            put_kv(&s, "score", "second_half");
        break;
    case EXP_STAGE_REPORT:
        put(&s, "stage report\n");
        put_hex(&s, "eval", exp_stage_key(cfg, EXP_STAGE_EVAL, 0));
        if (cfg->replicates > 1) { /* the report reads every replicate's eval */
            exp_config rep = *cfg;
            put_int(&s, "replicates", cfg->replicates);
            for (int k = 1; k < cfg->replicates; k++) {
                rep.replicate = k;
                put_hex(&s, "eval", exp_stage_key(&rep, EXP_STAGE_EVAL, 0));
            }
        }
        put_report(&s, cfg);
        break;
    case EXP_STAGE_EXPORT:
        /* the recipes read every allocation and, for the imatrix, the statistics (in the
         * alloc keys through sens); the model dir names the converter's input in the script */
        put(&s, "stage export\n");
        put_kv(&s, "export", exp_export_names[cfg->export_kind]);
        put_kv(&s, "model", cfg->model);
        put_kv(&s, "out", cfg->out);
        for (int i = next_alloc(cfg->alloc, cfg->n_alloc, NULL); i >= 0;
             i = next_alloc(cfg->alloc, cfg->n_alloc, cfg->alloc[i].name)) {
            put_header(&s, "alloc", cfg->alloc[i].name);
            put_hex(&s, "key", exp_stage_key(cfg, EXP_STAGE_ALLOC, i));
        }
        break;
    }
    return s.h;
}
