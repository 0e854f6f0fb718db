/* plots/pfig_explore.h — the interactive sensitivity map: every set's α, the difference to the
 * set it opened on and an allocation's bits in one gnuplot script, switched by keys (n/p set,
 * d difference, a bits) and a click printing the cell's numbers (pfig_explore.c says how).
 * Internal to plots/: pfig_draw calls it for sens-map on an interactive terminal or when the
 * request asks for it (pfig_req.explore, for tests on a file terminal). */
#ifndef VL_PFIG_EXPLORE_H
#define VL_PFIG_EXPLORE_H

#include "plotfig.h"

/* Draw the explorer of store s (holding /sens) opened on calibration set SET, with o; the
 * script is saved like any figure's when o->save_script. Errors: the store readers', gnuplot's. */
int pfig_explore(h5s_store *s, const pfig_req *req, const char *set, const gp_opts *o,
                 vl_err *err);

#endif
