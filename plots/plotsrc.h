/* plots/plotsrc.h — read exactly what one figure needs from a results store.
 *
 * Each psrc_* reader takes an open h5s_store and returns plain arrays with their labels (a
 * psrc_grid for heatmaps, a psrc_lines for line plots), so the recipes of plots/plot.h never
 * see HDF5 and tests can compare a figure's data block with the stored values. Nothing is
 * drawn here; titles and units are the figure layer's (plots/plotfig.h).
 *
 * Layouts read (docs/hdf5-schema.md; /work/notes/alloc-h5.md for alloc):
 *   expert usage  stats.h5  /stats/<set>/layer_sparse u8 [L],
 *                           /stats/<set>/layers/NN/router/routed i64 [E] (MoE layers only)
 *   α map         sens.h5   /sens/<set>/alpha f64 [n_items], string attribute `items` on the
 *                           dataset or on /sens/<set> (HF tensor names, one per line)
 *   RD curves     sens.h5   /rd/bpw and /rd/rel_out | rel_imp | rel_w (the first present)
 *                           f64 [n_items, n_formats]; attributes `items`, `formats` on /rd
 *   KLD matrix    eval.h5   /eval/matrix/mean_kld f64 [n_alloc, n_dom]; attributes `rows`,
 *                           `cols` on /eval/matrix (names, one per line)
 *   KLD vs bpw    eval.h5   the matrix above and, per row, attributes `bpw` (f64), `source`
 *                           ("uniform" or a file), `format` and optionally `calib`, `solver` on
 *                           /eval/<row> (else /alloc/<alloc>@solver of the same store); the
 *                           per-token /eval/<row>/<dom>/kld [seqs, n] for the intervals
 *   KLD marks     eval.h5   the matrix and the per-token /eval/<row>/<dom>/kld
 *   expert bits   stats.h5  /stats/<set>/layers/NN/router/routed of two sets, and alloc.h5's
 *                           /alloc/<name>@assignment
 *   alloc map     alloc.h5  string attribute `assignment` on /alloc/<name>
 *                           ("<hf tensor>\t<qfmt name>" lines)
 * The sens layout above is provisional (the sens stage is not on main yet); it is read only
 * here, so adapting to the final one touches this module alone.
 *
 * Tensor names map to heatmap cells by psrc_tensor_cell: the layer from "layers.N.", the expert
 * from "experts.E.", and a projection column (q_proj … o_proj, experts.gate_proj …,
 * shared.gate_proj …, mlp.gate_proj …). Router and shared-expert-gate vectors are not drawn.
 *
 * Errors are one line naming the file and the missing or bad dataset/attribute; every number
 * read is validated (finite, in range) before use. Readers allocate their outputs (free with
 * psrc_grid_free / psrc_lines_free, also after an error). Reentrant on distinct stores.
 */
#ifndef VL_PLOTSRC_H
#define VL_PLOTSRC_H

#include "../core/err.h"
#include "../io/h5s.h"

/* A labelled matrix: rows × cols row-major, NaN = no value. All owned. */
typedef struct {
    int rows, cols;
    double *m;
    char **row_labels; /* [rows] */
    char **col_labels; /* [cols] */
} psrc_grid;

/* Line series: n points each, x ascending. All owned. */
typedef struct {
    char *name;
    int n;
    double *x, *y;
    double *lo, *hi; /* NULL, or a confidence interval per point (NaN where none) */
    int baseline;    /* 1: a baseline series (uniform formats, rules, random), drawn dashed */
} psrc_series;

typedef struct {
    int n_series;
    psrc_series *s;
    char metric[32]; /* what y is (e.g. "rel_out"), for the axis label */
} psrc_lines;

void psrc_grid_free(psrc_grid *g);   /* frees the members, zeroes *g; NULL ok */
void psrc_lines_free(psrc_lines *l); /* same */

/* Map an HF tensor name to a heatmap cell. Returns 1 and fills layer, expert (−1 for a
 * non-expert tensor or a group over experts) and col (index into psrc_proj_names) when the name
 * is a projection of a decoder layer; 0 otherwise. Pure. */
int psrc_tensor_cell(const char *name, int *layer, int *expert, int *col);
/* Column labels, PSRC_N_PROJ of them, in drawing order. */
#define PSRC_N_PROJ 17 /* the last 4: MLA's q_a, q_b, kv_a, kv_b (deepseek_v3) */
extern const char *const psrc_proj_names[PSRC_N_PROJ];
/* The column of a --proj argument: a full label ("experts.down_proj") or a short one
 * ("down_proj", "down", "q"); experts first. −1 if unknown. */
int psrc_proj_parse(const char *s);

/* Share of the layer's routed token slots per expert, in percent (rows: layers, NaN for dense
 * layers; cols: experts). Rows sum to 100. */
int psrc_expert_usage(h5s_store *s, const char *set, psrc_grid *out, vl_err *err);

/* α per cell. proj < 0: layers × projection columns present, per-expert α summed over the
 * experts of a cell (the additive model's α of the group); proj ≥ 0: layers × experts of
 * that column (VL_ENOTFOUND if the store has no per-expert α for it). */
int psrc_sens_map(h5s_store *s, const char *set, int proj, psrc_grid *out, vl_err *err);

/* Chosen bits (the format's integer bits) per cell of allocation NAME; mean over the experts
 * of a cell when proj < 0. */
int psrc_alloc_map(h5s_store *s, const char *name, int proj, psrc_grid *out, vl_err *err);

/* The KLD matrix: rows allocations, cols evaluation domains. */
int psrc_kld_matrix(h5s_store *s, psrc_grid *out, vl_err *err);

/* Mean KLD against bpw. Series: each calibration's VBR allocations as one curve
 * ("VBR, calibrated on SETS": rows grouped by their `calib` attribute, else the row name
 * without its last "-suffix"); baselines as their own dashed series: uniform rows, one per
 * method ("uniform rtn", "uniform gptq"), and rows whose allocation's solver is a baseline
 * ("best uniform ≤ budget", "rules baseline", "random baseline", each ", SETS statistics"
 * when the row has a calib). domain: a column of the matrix, or NULL for the mean over all
 * domains. Intervals: the 95 % percentile bootstrap over sequences (analysis/paired.h,
 * PSRC_BOOT resamples, seed PSRC_BOOT_SEED) of the row's mean KLD from its per-token KLD —
 * over domains, sequence s of every domain resampled together, which needs the same number
 * of sequences in each (else, or without per-token data, NaN: no bar). */
int psrc_kld_vs_bpw(h5s_store *s, const char *domain, psrc_lines *out, vl_err *err);

#define PSRC_BOOT 2000
#define PSRC_BOOT_SEED 0x6b6c64u /* fixed: a figure is a pure function of its store */

/* Marks of the KLD matrix (rows × cols, vl_malloc'd into *marks): 1 for each cell whose
 * paired difference to its column's best row (lowest mean KLD) is not significant — the 95 %
 * bootstrap interval over the domain's sequences (pr_paired, PSRC_BOOT, PSRC_BOOT_SEED) of
 * the per-sequence mean KLD difference includes 0 — and for the best cell itself; 0 elsewhere
 * and for cells without per-token data or with a sequence count unlike the best's. *marks is
 * NULL (and 0 returned) when no cell of the store has per-token data. */
int psrc_kld_marks(h5s_store *s, const psrc_grid *g, unsigned char **marks, vl_err *err);

/* Bits per expert against its routing-share rank: for every MoE layer with router counts of
 * both sets A and B in ST (alloc/xsel.h), the experts in order of increasing
 * (share_B + ε)/(share_A + ε) (rank 0 = the most A-specific, E − 1 = the most B-specific;
 * xs_pick's order reversed); per allocation of AL (/alloc/<name>@assignment, one series each,
 * named by the allocation) y at rank x = the mean over MoE layers of the bits of the expert at
 * that rank (mean integer bits of its listed projections, xs_expert_bits; NaN when no layer
 * lists one). VL_ENOTFOUND without router counts of both sets or without allocations. */
int psrc_expert_bits(h5s_store *st, h5s_store *al, const char *A, const char *B,
                     psrc_lines *out, vl_err *err);

/* Distortion against bpw for the tensors of column proj (or all when proj < 0) and layer
 * (or all when layer < 0): one series per method (rtn, gptq, with "+had" for rotated formats);
 * each point is one format, (mean bpw, mean distortion) over the selected tensors. */
int psrc_rd(h5s_store *s, int proj, int layer, psrc_lines *out, vl_err *err);

/* Names of the members of GROUP ("/stats", "/alloc", …; for "/sens" its set names) as a
 * NULL-safe list: 0 and *n = 0 when the group is absent. Free with h5s_names_free. */
int psrc_members(h5s_store *s, const char *group, char ***names, int *n, vl_err *err);

#endif
