/* plots/psrc_int.h — helpers shared by the store readers of plots/ (plotsrc.c, psrc_kld.c);
 * private to plots/. */
#ifndef VL_PSRC_INT_H
#define VL_PSRC_INT_H

#include "plotsrc.h"

#include <stdint.h>

/* Read a float64 dataset of ndim dimensions; a missing one is "FILE: no dataset PATH (WHY)". */
int psrc_read_f64(h5s_store *s, const char *path, int ndim, int64_t shape[H5S_MAX_DIMS],
                  double **data, const char *why, vl_err *err);

/* A string attribute split into lines (empty trailing line dropped); absent: VL_ENOTFOUND. */
int psrc_read_lines(h5s_store *s, const char *obj, const char *attr, char ***lines, int *n,
                    vl_err *err);

/* Index of series NAME in l, appended when new with room for cap points (and lo/hi arrays
 * when with_ci); −1 on out of memory. */
int psrc_series_of(psrc_lines *l, const char *name, int cap, int with_ci);

/* Sort every series by x, lo/hi along (insertion sort: a few points each). */
void psrc_sort_series(psrc_lines *l);

#endif
