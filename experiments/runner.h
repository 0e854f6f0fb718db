/* experiments/runner.h — run one experiment config: stats → sens → alloc → eval → report
 * (→ export, when [experiment] export is not none: experiments/stage_export.c).
 *
 * Everything goes into the one HDF5 store named by [experiment] out, in the layouts the stage
 * modules write (docs/hdf5-schema.md): /sets, /stats, /tokens (statistics pass), /sens, /alloc
 * (alloc-h5 layout), /eval, /report, /export. What the runner adds:
 *   /                       attrs config (canonical rendering, exp_config_render), config_raw
 *                           (the file's bytes), config_path, vbrlab_version, experiment
 *   /stages/<stage>         one group per stage record: attrs key ("fnv1a64:%016x" of
 *                           exp_stage_key), status ("done"), vbrlab_version. Stages: stats,
 *                           sens, alloc.<NAME> (one per [alloc.NAME]), eval, report, export.
 * No timestamps are stored, so the same config gives byte-identical datasets.
 *
 * Caching: a stage whose record holds status done and the current key is skipped ("stats:
 * cached"). Keys depend only on the config sections a stage reads (expcfg.h), so changing a
 * target_bpw reruns only that alloc, eval and report.
 *
 * Atomicity and resume: each stage runs on a copy of the store (h5s_open_rw; the first stage
 * of a fresh run uses h5s_create) and is committed (renamed over OUT) when it succeeds, so OUT
 * always holds whole stages and an interrupted run resumes at the first stage not done. A
 * rerun of the stats stage starts a fresh file (nothing downstream of old statistics survives).
 *
 * Per-item commit: inside the sens and eval stages every finished work item (a unit's α of
 * a set; an allocation × domain evaluation) is appended to a journal beside OUT
 * (OUT.sens.items.r<RANK>, OUT.eval.items.r<RANK>; io/journal.h) under the stage's key, so a
 * rerun of an interrupted stage takes those items instead of recomputing them (the log says
 * how many: "sens: 12 items from the journal"). The store is still committed once per stage;
 * the journals are removed after that commit (and before a --force run).
 *
 * Reports: the markdown tables go to opts->out (stdout in the CLI) and to OUT with the
 * extension replaced by .md (atomic: .tmp then rename).
 *
 * Not thread-safe (HDF5, one forward at a time); threads live inside kern_.
 */
#ifndef VL_RUNNER_H
#define VL_RUNNER_H

#include "../core/err.h"
#include "../core/par.h"
#include "expcfg.h"

#include <stdio.h>

#define VBRLAB_VERSION "0.1.0"

typedef struct {
    int force;              /* 1: rerun every stage (fresh store) */
    int only;               /* −1: all stages; else the one exp_stage to (re)run; its inputs
                               must be cached */
    const char *only_alloc; /* with only = EXP_STAGE_ALLOC: that allocation (NULL: all) */
    int stop_after;         /* test hook: −1, or stop (successfully) after this exp_stage */
    const char *model_dir;  /* used when [experiment] model is empty (required then) */
    FILE *out;              /* tables; NULL = none */
    FILE *log;              /* one line per stage ("stats: cached"); NULL = none */
    int progress;           /* 1: progress lines on stderr (tty only) */
    int replicate;          /* −1: every replicate, then the report; else only replicate K's
                               chain (stats → eval, in its own store), no report: separate
                               processes (or machines) can each run one replicate, and a later
                               plain run finds them all cached and writes the report */
    par_fault *fault;       /* test hook (core/par.h): a rank fails its K-th sens/eval work
                               item; NULL = none */
    int pipeline;           /* stages of a pipeline over the ranks for the stats and eval
                               stages (analysis/pipeline.h); 0 or 1: none. Sens stays data
                               parallel over all ranks. Not part of the cache keys: the
                               results are the same bits */
} run_opts;

/* only −1, stop_after −1, everything else 0/NULL. */
run_opts run_opts_defaults(void);

/* Parse "stats", "sens", "alloc", "alloc.NAME", "eval", "report", "export" into *stage (and *alloc_name,
 * borrowed from text, NULL unless "alloc.NAME"). VL_EARG naming the word otherwise. */
int run_stage_parse(const char *text, int *stage, const char **alloc_name, vl_err *err);

/* Run the experiment CFG (parsed by exp_config_parse from cfg->path, which must still be
 * readable: its bytes are stored) as described above. Returns 0 or the first stage's error
 * (one line, prefixed with the stage name); the store then holds every stage committed before.
 */
int run_experiment(const exp_config *cfg, const run_opts *opts, vl_err *err);

#endif
