/* plots/plot.h — the figure recipes vbrlab draws, on top of plots/gp.h.
 *
 * Two shapes cover every figure of the toolkit: a labelled heatmap (sensitivity maps layers ×
 * projections or layers × experts, expert usage, allocation maps, the KLD matrix with numbers in
 * its cells, difference maps with a diverging palette centred on 0) and labelled line series
 * (RD curves, KLD vs bpw with log y). Recipes take plain arrays; reading them from the HDF5
 * store is the caller's job (cli/cmd_plot.c), so recipes are testable without a store.
 * Every recipe saves its gnuplot script with the data beside the figure when o->save_script.
 * Empty (NaN) heatmap cells show as light grey, distinct from every palette colour.
 */
#ifndef VL_PLOT_H
#define VL_PLOT_H

#include "gp.h"

typedef struct {
    const char *title, *xlabel, *ylabel, *cblabel;
    int rows, cols;              /* matrix shape: rows drawn bottom-to-top as y, cols as x */
    const double *m;             /* rows × cols, row-major; NaN = empty cell */
    const char *const *row_labels; /* rows entries or NULL (then 0..rows-1) */
    const char *const *col_labels; /* cols entries or NULL */
    int log_scale;               /* colour by log10 (values ≤ 0 become empty) */
    int diverging;               /* blue–white–red, range symmetric around 0 */
    const char *cell_format;     /* printf format to print values in cells (e.g. "%.3f"), or NULL;
                                    white text on dark cells, black on light ones */
    int top_down;                /* 1: row 0 at the top (tables), 0: at the bottom (layers) */
    double cb_min, cb_max;       /* fixed colour range when cb_min < cb_max, else the data's */
    const char *const *tips;     /* rows × cols hover texts ('\n' between lines) or NULL; drawn
                                    as gnuplot hypertext labels on svg, qt and wxt (the others
                                    have none). In the SVG the text sits in a JavaScript string
                                    inside an attribute that gnuplot does not escape for ' " \,
                                    so those become ’ ” ∖ there */
    const unsigned char *marks;  /* rows × cols, 1: an open square drawn around the cell (e.g.
                                    "not significantly different from the column's best"), or
                                    NULL; the cells travel as data block $MARKS (x y) */
} plot_heatmap_spec;

typedef struct {
    const char *name;            /* legend entry */
    const double *x, *y;         /* n points */
    int n;
    const double *lo, *hi;       /* NULL, or an interval per point drawn as a y error bar in
                                    the series' colour (NaN: no bar at that point); the block
                                    $S<i> then has 4 columns x y lo hi */
    int dashed;                  /* 1: a dashed line (baselines), 0: solid */
} plot_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    int n_series;
    const plot_series *series;
    int log_x, log_y;
} plot_lines_spec;

int plot_heatmap(const gp_opts *o, const plot_heatmap_spec *s, vl_err *err);
int plot_lines(const gp_opts *o, const plot_lines_spec *s, vl_err *err);

#endif
