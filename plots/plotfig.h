/* plots/plotfig.h — the named figures of `vbrlab plot` and the report folder.
 *
 * A figure is a kind (what to draw) plus its selectors (set, difference A − B, layer,
 * projection). pfig_draw reads the data through plots/plotsrc.h and draws them with a recipe of
 * plots/plot.h, adding the titles, axis labels and units a reader needs without the code.
 * pfig_report draws the standard set of figures of an experiment into a folder, skipping those
 * whose stores or datasets are absent.
 *
 * Kinds and the store they read:
 *   sens-map      sens.h5   α heatmap (log colour), layers × projection, or layers × experts
 *                           with a projection; with diff: log10 α(A) − log10 α(B), diverging
 *   expert-usage  stats.h5  % of routed token slots per expert per layer; diff: A − B in points
 *   rd            sens.h5   distortion vs bpw per method, log y (projection/layer selectable)
 *   kld-matrix    eval.h5   mean KLD, allocation × domain, numbers in cells, log colour; a red
 *                           square on each column's best cell and on the cells whose paired
 *                           difference to it is not significant (psrc_kld_marks)
 *   kld-vs-bpw    eval.h5   mean KLD vs bpw, log y: each calibration's VBR allocations as a
 *                           solid curve with 95 % bootstrap bars over sequences, the uniform,
 *                           rules and random baselines as dashed labelled series
 *                           (psrc_kld_vs_bpw; set = evaluation domain; none: mean over domains)
 *   alloc-map     alloc.h5  weight bits chosen per tensor (set = allocation name)
 *   expert-bits   stats.h5  bits each allocation (of --alloc, else the same store) gave an
 *                           expert vs its rank by routing-share ratio B/A (--diff B,A; default
 *                           zh,en), mean over MoE layers (psrc_expert_bits)
 * Not thread-safe (h5s, one gnuplot per figure).
 */
#ifndef VL_PLOTFIG_H
#define VL_PLOTFIG_H

#include "../io/h5s.h"
#include "gp.h"

#include <stddef.h>

typedef enum {
    PFIG_SENS_MAP,
    PFIG_EXPERT_USAGE,
    PFIG_RD,
    PFIG_KLD_MATRIX,
    PFIG_KLD_VS_BPW,
    PFIG_ALLOC_MAP,
    PFIG_EXPERT_BITS,
    PFIG_COUNT
} pfig_kind;

/* "sens-map" … → kind; VL_EARG naming the value and listing the kinds otherwise. */
int pfig_kind_parse(const char *s, pfig_kind *out, vl_err *err);
const char *pfig_kind_name(pfig_kind k);

typedef struct {
    pfig_kind kind;
    const char *set;            /* set / domain / allocation name; NULL: the only one */
    const char *diff_a, *diff_b; /* both set: difference A − B (sens-map, expert-usage) */
    int layer;                  /* ≥ 0: that layer only; −1 all */
    int proj;                   /* psrc column (psrc_proj_parse) or −1 */
    const char *stats, *alloc;  /* stores the hover texts of map cells also read (/stats for
                                   the routing share, /alloc for the bits); NULL: the figure's
                                   own store. Hover texts (plots/pfig_tips.h) are drawn on svg,
                                   qt and wxt for sens-map, expert-usage and alloc-map */
    int explore;                /* sens-map without diff: draw the explorer (plots/
                                   pfig_explore.h: keys n/p/d/a, click prints a cell's numbers)
                                   also on a file terminal; on qt, wxt and x11 it always is */
} pfig_req;

pfig_req pfig_req_default(pfig_kind k); /* set/diff/stats/alloc NULL, layer −1, proj −1 */

/* Parse "A,B" into two vl_malloc'd names (caller frees both); VL_EARG quoting the value
 * when there is not exactly one comma or a name is empty or the two are equal. */
int pfig_diff_parse(const char *s, char **a, char **b, vl_err *err);

/* Default output file name "KIND[-SET | -A-minus-B][-PROJ][-layerL].EXT" into buf. Set names
 * keep [A-Za-z0-9._+-]; other characters become '_'. */
void pfig_default_out(const pfig_req *r, gp_term t, char *buf, size_t size);

/* Draw figure r from the store at path into o (o->out the file for file terminals). Errors:
 * the store's (missing file), psrc_*'s (missing dataset, one line naming both), gnuplot's;
 * no output file is left after an error. */
int pfig_draw(const char *path, const pfig_req *r, const gp_opts *o, vl_err *err);

/* Stores of an experiment; any may be NULL (its figures are skipped). */
typedef struct {
    const char *stats, *sens, *eval, *alloc;
    const char *ref_set; /* reference of the difference maps (e.g. "en"); NULL: "en" if
                            present, else the first set */
} pfig_report_in;

/* Draw the report into DIR (created if absent): sens-map-<set> (also as sens-map-<set>.svg with
 * hover texts, whatever o->term), sens-map-<set>-minus-<ref>,
 * expert-usage-<set>, expert-usage-<set>-minus-<ref>, kld-matrix, kld-vs-bpw (mean over
 * domains) and kld-vs-bpw-<domain>, rd, alloc-map-<name>, expert-bits-<set>-minus-<ref>; PNG with o's size and script saving.
 * Figures whose store is missing or lacks the group or dataset are skipped; any other error
 * stops the report. *files (vl_malloc'd array of vl_malloc'd paths, free with h5s_names_free)
 * lists the files written, also on error. */
int pfig_report(const char *dir, const pfig_report_in *in, const gp_opts *o, char ***files,
                int *n_files, vl_err *err);

#endif
