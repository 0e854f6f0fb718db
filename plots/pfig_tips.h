/* plots/pfig_tips.h — the hover text of each cell of a map figure (internal to plots/).
 *
 * For the cells of a sensitivity, expert-usage or allocation map, one text per cell saying
 * what the cell is and what the stores know about it:
 *   layer 3, experts.down_proj, expert 5        (the unit: layer, projection, expert)
 *   α (KLD/ε²): en 1.23e-03, zh 4.56e-03        (per sensitivity set of /sens; none for
 *                                                expert-usage cells, which are no tensor)
 *   routed share: en 12.5 %, zh 3.1 %           (per statistics set, for per-expert cells)
 *   bits: en-2.5 3, zh-2.5 2                    (integer bits each allocation of /alloc gave)
 * A line is left out when its store lacks the data (no /sens, a group map without per-expert
 * usage, no /alloc). The store does not hold a standard error of α, so none is shown.
 * Cells are matched across stores by their row and column labels, never by position. */
#ifndef VL_PFIG_TIPS_H
#define VL_PFIG_TIPS_H

#include "plotfig.h"
#include "plotsrc.h"

/* tips[rows*cols] (vl_malloc'd strings, lines separated by '\n'; free with
 * h5s_names_free(tips, rows*cols)) for grid g of figure r drawn from store s. stats and alloc:
 * the stores holding /stats and /alloc (may be s; NULL: s). Missing data are no error; an out of
 * memory or a corrupt dataset is. */
int pfig_tips(h5s_store *s, h5s_store *stats, h5s_store *alloc, const pfig_req *r,
              const psrc_grid *g, char ***tips, vl_err *err);

#endif
