/* experiments/runctx.c — the helpers every stage calls down into: the model on first use,
 * the sets of one config family built in dependency order, the statistics of named sets, the
 * few-token policy and allocation result names.
 *
 * Sets are built by analysis/calib.h from calib_spec structs filled from the parsed config
 * (the same records `vbrlab stats --set` parses into).
 */
#define _POSIX_C_SOURCE 200809L
#include "runctx.h"

#include "../alloc/fq.h"
#include "../core/par.h"

#include <stdio.h>
#include <string.h>

int run_need_model(run_ctx *c, vl_err *err)
{
    int rc = 0;
    if (!c->m && (rc = model_open(&c->m, c->model_dir, err)))
        return rc;
    if (!c->tok && (rc = tok_open(c->model_dir, &c->tok, err)))
        return rc;
    return 0;
}

void run_journal_prefix(const exp_config *cfg, const char *stage, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s.%s.items", cfg->out, stage);
}

int run_journal_open(run_ctx *c, const char *stage, jr **out, vl_err *err)
{
    char prefix[4200];
    run_journal_prefix(c->cfg, stage, prefix, sizeof prefix);
    int rc = jr_open(out, prefix, c->stage_key ? c->stage_key : "", par_rank(), err);
    rc = par_agree(rc, err); /* every rank has read the journals before any appends */
    if (rc) {
        jr_close(*out);
        *out = NULL;
        return rc;
    }
    if (c->log && jr_found(*out))
        fprintf(c->log, "%s: %zu items from the journal\n", stage, jr_found(*out));
    return 0;
}

/* ---------------------------------------------------------------- set specs */

/* The calib_spec of an exp_set: the source as the one parser (calib_source_parse) left it in
 * the config, the shape and seed from the section's keys. spec.source is the text the store
 * records as the set's source: the resolved path of a file, the canonical spelling
 * (calib_source_text) of the other kinds. Entropy buckets take their shape from the pool set:
 * only the seed is given. Replicate k > 0 (expcfg.h): a corpus set takes the next disjoint slice
 * of the same cut (skip = k·seqs); every other draw, and a corpus set with reseed, its
 * replicate seed. */
static int set_spec(const exp_config *cfg, const exp_set *st, int is_eval, int reseed,
                    calib_spec *o, vl_err *err)
{
    *o = st->src;
    snprintf(o->name, sizeof o->name, "%s", st->name);
    if (calib_source_text(&st->src, st->resolved, o->source, sizeof o->source))
        return vl_errf(err, VL_ECONFIG, "%s: [%s.%s]: source too long", cfg->path,
                       is_eval ? "eval" : "calib", st->name);
    int rep = is_eval ? 0 : cfg->replicate;
    int slice = rep > 0 && o->kind == CALIB_FILE && !reseed;
    o->seed = rep > 0 && !slice ? exp_replicate_seed(cfg, st, rep) : exp_set_seed(cfg, st, is_eval);
    o->given = CALIB_GIVEN_SEED;
    o->n_seq = CALIB_DEFAULT_SEQS;
    o->seq_len = CALIB_DEFAULT_LEN;
    o->skip = 0;
    if (o->kind != CALIB_ENTROPY) {
        o->n_seq = st->seqs;
        o->seq_len = st->len;
        o->given |= CALIB_GIVEN_SEQS | CALIB_GIVEN_LEN;
    }
    if (slice) {
        o->skip = (int64_t)rep * st->seqs;
        o->given |= CALIB_GIVEN_SKIP;
    }
    return 0;
}

/* The sets a source names (mix parts, shuffle/entropy pool) are in the book. */
static int refs_ready(const calib_spec *src, const calib_book *b)
{
    for (int i = 0; i < src->n_parts; i++)
        if (!calib_book_find(b, src->part[i]))
            return 0;
    return 1;
}

static int add_set(run_ctx *c, calib_book *b, const exp_set *st, int is_eval, int reseed,
                   vl_err *err)
{
    calib_spec spec;
    int rc = set_spec(c->cfg, st, is_eval, reseed, &spec, err);
    if (!rc)
        rc = calib_book_add(b, &spec, err);
    return rc;
}

/* "NAME:how" appended to c->draws (what the stats stage records for a replicate). */
static void note_draw(run_ctx *c, const char *name, const char *how)
{
    size_t n = strlen(c->draws);
    snprintf(c->draws + n, sizeof c->draws - n, "%s%s:%s", n ? "," : "", name, how);
}

int run_build_sets(run_ctx *c, int is_eval, calib_book **out, vl_err *err)
{
    const exp_config *cfg = c->cfg;
    int n = is_eval ? cfg->n_eval : cfg->n_calib;
    const exp_set *sets = is_eval ? cfg->eval : cfg->calib;
    if (!is_eval)
        c->draws[0] = '\0';
    int rc = run_need_model(c, err);
    calib_env env = {c->m, c->tok, 8, is_eval ? CALIB_ROLE_EVAL : CALIB_ROLE_CALIB};
    calib_book *b = NULL;
    if (!rc)
        rc = calib_book_new(&b, &env, err);
    /* file order, but a set only after the sets it names (the config has no cycles) */
    for (int added = 0, pass = 0; !rc && added < n && pass <= n; pass++)
        for (int i = 0; !rc && i < n; i++) {
            if (calib_book_find(b, sets[i].name) || !refs_ready(&sets[i].src, b))
                continue;
            rc = add_set(c, b, &sets[i], is_eval, 0, err);
            /* a corpus too short for disjoint replicate slices: the replicate's own seed */
            if (rc == VL_ERANGE && !is_eval && cfg->replicate > 0 &&
                sets[i].src.kind == CALIB_FILE) {
                if (c->log)
                    fprintf(c->log, "replicate %d: set %s: %s; drawn with the replicate's own "
                            "seed instead (may share sequences with other replicates)\n",
                            cfg->replicate, sets[i].name, err->msg);
                rc = add_set(c, b, &sets[i], is_eval, 1, err);
                note_draw(c, sets[i].name, "reseeded");
            } else if (!rc && !is_eval && cfg->replicate > 0) {
                note_draw(c, sets[i].name,
                          sets[i].src.kind == CALIB_FILE ? "disjoint" : "reseeded");
            }
            added += !rc;
        }
    if (rc) {
        calib_book_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

/* ---------------------------------------------------------------- statistics */

void run_few_policy(const exp_config *cfg, int *policy, double *min_tokens)
{
    static const int map[EXP_STARVED_COUNT] = {
        [EXP_STARVED_UNIFORM] = FQ_FEW_UNIFORM,
        [EXP_STARVED_RTN] = FQ_FEW_RTN,
    };
    *policy = map[cfg->starved_policy];
    *min_tokens = cfg->min_tokens;
}

int run_menu_has_gptq(const exp_config *cfg, vl_err *err)
{
    qfmt_menu menu = {0};
    int rc = qfmt_menu_parse(&menu, cfg->formats, err);
    if (rc)
        return rc;
    int has = 0;
    for (int i = 0; i < menu.n; i++)
        has |= menu.v[i].method == QFMT_GPTQ;
    qfmt_menu_free(&menu);
    return has;
}

void run_alloc_result_name(const exp_alloc *a, double target, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s-%g", a->name, target);
}

void run_join_sets(const exp_slist *l, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (int s = 0, k = 0; s < l->n && k < (int)cap; s++)
        k += snprintf(buf + k, cap - (size_t)k, "%s%s", s ? "," : "", l->v[s]);
}

