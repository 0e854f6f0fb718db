/* experiments/runner.c — the stage loop: cache keys, stage records, one commit per stage.
 *
 * Why one commit per stage: h5s_open_rw works on a copy that only replaces OUT at commit, so a
 * run killed inside a stage leaves OUT as it was after the last finished stage, with that
 * stage's record; the next run skips every recorded stage whose key still matches.
 */
#define _POSIX_C_SOURCE 200809L
#include "runner.h"

#include "stage.h"

#include "../core/kern.h"
#include "../core/par.h"
#include "../core/vfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- small helpers */

run_opts run_opts_defaults(void)
{
    run_opts o;
    memset(&o, 0, sizeof o);
    o.only = -1;
    o.stop_after = -1;
    o.replicate = -1;
    return o;
}

static const char *const stage_names[] = {"stats", "sens", "alloc", "eval", "report", "export"};

int run_stage_parse(const char *text, int *stage, const char **alloc_name, vl_err *err)
{
    *alloc_name = NULL;
    for (int i = 0; i < 6; i++)
        if (!strcmp(text, stage_names[i])) {
            *stage = i;
            return 0;
        }
    if (!strncmp(text, "alloc.", 6) && text[6]) {
        *stage = EXP_STAGE_ALLOC;
        *alloc_name = text + 6;
        return 0;
    }
    return vl_errf(err, VL_EARG, "unknown stage \"%s\" (stats, sens, alloc, alloc.NAME, eval, "
                   "report, export)", text);
}

/* The canonical rendering as a string. */
static int render_config(const exp_config *cfg, char **out, vl_err *err)
{
    size_t n = 0;
    FILE *f = open_memstream(out, &n);
    if (!f)
        return vl_errf(err, VL_ENOMEM, "%s: out of memory", cfg->path);
    int rc = exp_config_render(cfg, f, err);
    fclose(f);
    return rc;
}

/* mkdir of OUT's parent directory (one level; `out/demo.h5` is the common case). */
static int make_parent(const char *path, vl_err *err)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    if (mkdir(dir, 0777) && errno != EEXIST)
        return vl_errf(err, VL_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
    return 0;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---------------------------------------------------------------- stage records */

typedef struct {
    char name[96];      /* "stats", "alloc.en", ... */
    int stage;          /* exp_stage */
    int alloc_idx;      /* for alloc records */
    char key[40];       /* "fnv1a64:..." */
    int cached;         /* stored record matches */
} run_rec;

static void rec_key(const exp_config *cfg, run_rec *r)
{
    snprintf(r->key, sizeof r->key, "fnv1a64:%016llx",
             (unsigned long long)exp_stage_key(cfg, (exp_stage)r->stage, r->alloc_idx));
}

/* Which records of OUT match the current keys (a missing file: none). A file that exists but
 * is not a readable store (truncated, not HDF5) is an error rather than "nothing done": it may
 * be a result someone wants, and --force is how to overwrite it. */
static int read_records(const char *path, run_rec *recs, int n, vl_err *err)
{
    h5s_store *s = NULL;
    vl_err e = {0};
    if (access(path, F_OK) != 0)
        return 0;
    if (h5s_open(&s, path, &e))
        return vl_errf(err, VL_EFORMAT, "%s (--force to overwrite it)", e.msg);
    for (int i = 0; i < n; i++) {
        char g[160], *key = NULL, *status = NULL;
        snprintf(g, sizeof g, "/stages/%s", recs[i].name);
        if (h5s_exists(s, g) && !h5s_attr_get(s, g, "key", &key, &e) &&
            !h5s_attr_get(s, g, "status", &status, &e))
            recs[i].cached = !strcmp(key, recs[i].key) && !strcmp(status, "done");
        vl_free(key);
        vl_free(status);
    }
    h5s_close(s);
    return 0;
}

/* Root attributes and the stage record, written into every committed copy. */
static int write_marks(run_ctx *c, const run_rec *r, const char *canon, const char *raw,
                       vl_err *err)
{
    h5s_store *s = c->s;
    char g[160];
    snprintf(g, sizeof g, "/stages/%s", r->name);
    int rc = h5s_attr_set(s, "/", "config", canon, err);
    if (!rc)
        rc = h5s_attr_set(s, "/", "config_raw", raw, err);
    if (!rc)
        rc = h5s_attr_set(s, "/", "config_path", c->cfg->path, err);
    if (!rc)
        rc = h5s_attr_set(s, "/", "experiment", c->cfg->name, err);
    if (!rc)
        rc = h5s_attr_set(s, "/", "vbrlab_version", VBRLAB_VERSION, err);
    if (!rc && c->cfg->replicates > 1) /* which replicate's chain this store holds */
        rc = h5s_attr_set_f64(s, "/", "replicate", c->cfg->replicate, err);
    /* a group is made by writing a small dataset into it: h5s creates parents on write */
    int64_t one = 1;
    char dpath[200];
    snprintf(dpath, sizeof dpath, "%s/done", g);
    int32_t done = 1;
    if (!rc)
        rc = h5s_write(s, dpath, H5S_I32, &done, 1, &one, "flag",
                       "1: the stage finished and its groups are complete", err);
    if (!rc)
        rc = h5s_attr_set(s, g, "key", r->key, err);
    if (!rc)
        rc = h5s_attr_set(s, g, "status", "done", err);
    if (!rc)
        rc = h5s_attr_set(s, g, "vbrlab_version", VBRLAB_VERSION, err);
    return rc;
}

static int run_one(run_ctx *c, const run_rec *r, vl_err *err)
{
    switch (r->stage) {
    case EXP_STAGE_STATS: return stage_stats(c, err);
    case EXP_STAGE_SENS: return stage_sens(c, err);
    case EXP_STAGE_ALLOC: return stage_alloc(c, r->alloc_idx, err);
    case EXP_STAGE_EVAL: return stage_eval(c, err);
    case EXP_STAGE_EXPORT: return stage_export(c, err);
    default: return stage_report(c, err);
    }
}

/* ---------------------------------------------------------------- the run */

/* A cached report stage still shows its tables: they are stored as /report@markdown. */
static void print_stored_report(const char *path, FILE *out)
{
    h5s_store *s = NULL;
    char *md = NULL;
    vl_err e = {0};
    if (!h5s_open(&s, path, &e) && !h5s_attr_get(s, "/report", "markdown", &md, &e))
        fputs(md, out);
    vl_free(md);
    h5s_close(s);
}

/* The records of stages first .. last (exp_stage values) of CFG. */
static int build_records(const exp_config *cfg, int first, int last, run_rec **out, int *n_out,
                         vl_err *err)
{
    int n = 5 + cfg->n_alloc;
    run_rec *r = vl_calloc((size_t)n, sizeof *r);
    if (!r)
        return vl_errf(err, VL_ENOMEM, "out of memory");
    int k = 0;
    for (int st = first; st <= last; st++) {
        if (st == EXP_STAGE_EXPORT && cfg->export_kind == EXP_EXPORT_NONE)
            continue; /* no export: no record, the keys of a config without it unchanged */
        int reps = st == EXP_STAGE_ALLOC ? cfg->n_alloc : 1;
        for (int a = 0; a < reps; a++, k++) {
            r[k].stage = st;
            r[k].alloc_idx = a;
            if (st == EXP_STAGE_ALLOC)
                snprintf(r[k].name, sizeof r[k].name, "alloc.%s", cfg->alloc[a].name);
            else
                snprintf(r[k].name, sizeof r[k].name, "%s", stage_names[st]);
            rec_key(cfg, &r[k]);
        }
    }
    *out = r;
    *n_out = k;
    return 0;
}

/* Is record r asked for by --only? */
static int only_match(const run_opts *o, const run_rec *r, const exp_config *cfg)
{
    if (r->stage != o->only)
        return 0;
    return !o->only_alloc || !strcmp(o->only_alloc, cfg->alloc[r->alloc_idx].name);
}

/* Stages whose work is shared over MPI ranks (core/par.h); the others run on rank 0 alone. */
static int shared_stage(int stage)
{
    return stage == EXP_STAGE_STATS || stage == EXP_STAGE_SENS || stage == EXP_STAGE_EVAL;
}

/* Under MPI the ranks other than 0 run the shared stages with rank 0 on a throwaway copy of
 * OUT (PATH.rank<N>.tmp, never committed): they read the inputs of the stage from rank 0's last
 * commit and write nothing that stays. One rank: rank 0 alone, the plain loop. */
static int run_records(run_ctx *c, const run_opts *o, run_rec *recs, int n, const char *canon,
                       const char *raw, const char *tag, vl_err *err)
{
    const char *out = c->cfg->out;
    int rc = 0, ran_any = 0, me = par_rank();
    char scratch[4096];
    snprintf(scratch, sizeof scratch, "%s.rank%d", out, me);
    for (int i = 0; i < n && !rc; i++) {
        run_rec *r = &recs[i];
        int want = o->only < 0 ? (o->force || !r->cached) : only_match(o, r, c->cfg);
        if (o->only >= 0 && r->stage < o->only && !r->cached)
            return vl_errf(err, VL_ECONFIG, "--only %s: input stage %s is not done in %s (run "
                           "without --only first)", stage_names[o->only], r->name, out);
        if (!want) {
            if (o->log && (o->only < 0 || r->stage <= o->only))
                fprintf(o->log, "%s%s: cached\n", tag, r->name);
            continue;
        }
        /* a fresh file when nothing usable is there or the statistics are redone */
        /* (the report of replicates runs alone on replicate 0's finished store) */
        int fresh = access(out, F_OK) != 0 || r->stage == EXP_STAGE_STATS ||
                    (o->force && !ran_any &&
                     !(c->cfg->replicates > 1 && r->stage == EXP_STAGE_REPORT));
        double t0 = now_s();
        char jprefix[4200];
        int journaled = r->stage == EXP_STAGE_SENS || r->stage == EXP_STAGE_EVAL;
        run_journal_prefix(c->cfg, stage_names[r->stage], jprefix, sizeof jprefix);
        if (journaled && o->force && me == 0) /* a forced rerun recomputes every item */
            rc = jr_remove(jprefix, err);
        rc = par_agree(rc, err);
        c->stage_key = r->key;
        c->fault = o->fault;
        c->pipeline = o->pipeline;
        if (!rc && me == 0)
            rc = fresh ? h5s_create(&c->s, out, err) : h5s_open_rw(&c->s, out, err);
        else if (!rc && shared_stage(r->stage))
            rc = fresh ? h5s_create(&c->s, scratch, err) : h5s_open_copy(&c->s, out, scratch, err);
        if (!rc && c->s)
            rc = run_one(c, r, err);
        if (!rc && me == 0)
            rc = write_marks(c, r, canon, raw, err);
        if (!rc && me == 0) {
            rc = h5s_commit(c->s, err);
            c->s = NULL;
        }
        h5s_close(c->s); /* after a failure: discard the copy, OUT keeps the last commit */
        c->s = NULL;
        rc = par_agree(rc, err); /* the next stage reads what rank 0 committed */
        if (rc) {
            vl_errctx(err, rc, "%s%s", tag, r->name);
            break;
        }
        if (journaled && me == 0) /* the stage is in OUT: its items are no longer needed */
            rc = jr_remove(jprefix, err);
        rc = par_agree(rc, err);
        ran_any = 1;
        if (o->log)
            fprintf(o->log, "%s%s: done (%.1f s)\n", tag, r->name, now_s() - t0);
        if (o->log && c->qcache && (r->stage == EXP_STAGE_SENS || r->stage == EXP_STAGE_EVAL)) {
            qcache_counts qc;
            qcache_counts_get(c->qcache, &qc);
            fprintf(o->log, "%s%s: quantized-tensor cache %lld hits, %lld misses, %.1f MiB\n",
                    tag, r->name, (long long)qc.hits, (long long)qc.misses,
                    (double)qc.bytes / 1048576.0);
        }
        if (o->stop_after >= 0 && r->stage == o->stop_after &&
            (i + 1 == n || recs[i + 1].stage != r->stage))
            break;
    }
    return rc;
}

/* Replicates (expcfg.h): stats → sens → alloc → eval of replicate k on a shallow copy of the
 * config that stands for k, in k's own store, each stage cached there by its own key. */
static int run_replicates(run_ctx *c, const run_opts *opts, const char *canon, const char *raw,
                          vl_err *err)
{
    const exp_config *cfg = c->cfg;
    int rc = 0;
    for (int k = 0; k < cfg->replicates && !rc; k++) {
        if (opts->replicate >= 0 && k != opts->replicate)
            continue;
        char path[4096], tag[32];
        exp_config rep = *cfg;
        rep.replicate = k;
        qcache_free(c->qcache); /* another replicate: other statistics, nothing to share */
        c->qcache = NULL;
        rc = qcache_new(&c->qcache, RUN_QCACHE_BYTES, err);
        if (!rc)
            rc = exp_replicate_out(cfg, k, path, sizeof path, err);
        rep.out = path;
        snprintf(tag, sizeof tag, "rep%d/", k);
        run_rec *recs = NULL;
        int n = 0;
        if (!rc)
            rc = build_records(&rep, EXP_STAGE_STATS, EXP_STAGE_EVAL, &recs, &n, err);
        if (!rc && !opts->force)
            rc = read_records(path, recs, n, err);
        rc = par_agree(rc, err);
        c->cfg = &rep;
        if (!rc)
            rc = run_records(c, opts, recs, n, canon, raw, tag, err);
        c->cfg = cfg;
        vl_free(recs);
    }
    return rc;
}

int run_experiment(const exp_config *cfg, const run_opts *opts, vl_err *err)
{
    run_ctx c;
    memset(&c, 0, sizeof c);
    c.cfg = cfg;
    c.out = opts->out;
    c.log = opts->log;
    c.progress = opts->progress;
    c.model_dir = cfg->model && cfg->model[0] ? cfg->model : opts->model_dir;
    if (!c.model_dir)
        return vl_errf(err, VL_ECONFIG, "%s: [experiment] model is empty and no default model "
                       "was given", cfg->path);
    if (opts->only_alloc && exp_find_alloc(cfg, opts->only_alloc) < 0)
        return vl_errf(err, VL_EARG, "--only alloc.%s: %s has no [alloc.%s]", opts->only_alloc,
                       cfg->path, opts->only_alloc);
    if (cfg->threads > 0)
        kern_set_threads(cfg->threads); /* threads never change results (expcfg.h) */
    char *raw = NULL, *canon = NULL;
    run_rec *recs = NULL;
    int n = 0;
    int rc = vf_slurp(cfg->path, (size_t)1 << 24, &raw, NULL, err); /* the config's raw bytes */
    if (!rc)
        rc = qcache_new(&c.qcache, RUN_QCACHE_BYTES, err);
    if (!rc)
        rc = render_config(cfg, &canon, err);
    if (!rc && opts->replicate >= cfg->replicates)
        rc = vl_errf(err, VL_EARG, "--replicate %d: %s has %d replicate(s) (0..%d)",
                     opts->replicate, cfg->path, cfg->replicates, cfg->replicates - 1);
    if (!rc)
        rc = make_parent(cfg->out, err);
    if (!rc && cfg->replicates > 1)
        rc = run_replicates(&c, opts, canon, raw, err);
    /* R = 1: every stage in OUT; R > 1: the report stage in OUT (replicate 0's store) */
    int first = cfg->replicates > 1 ? EXP_STAGE_REPORT : EXP_STAGE_STATS;
    c.cfg = cfg;
    if (!rc)
        rc = build_records(cfg, first, EXP_STAGE_EXPORT, &recs, &n, err);
    if (!rc && !opts->force)
        rc = read_records(cfg->out, recs, n, err);
    rc = par_agree(rc, err); /* every rank reads the records before rank 0 writes */
    int skip = cfg->replicates > 1 && (opts->stop_after >= 0 || opts->replicate >= 0);
    if (!rc && !skip)
        rc = run_records(&c, opts, recs, n, canon, raw, "", err);
    int report = n - 1; /* the report record: the last, or the one before the export */
    while (report > 0 && recs[report].stage != EXP_STAGE_REPORT)
        report--;
    if (!rc && !skip && opts->out && opts->only < 0 && opts->stop_after < 0 &&
        recs[report].cached && !opts->force)
        print_stored_report(cfg->out, opts->out);
    vl_free(recs);
    free(canon); /* open_memstream's buffer comes from malloc */
    vl_free(raw);
    tok_close(c.tok);
    model_close(c.m);
    qcache_free(c.qcache);
    return rc;
}
