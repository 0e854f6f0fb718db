/* analysis/calib_int.h — private helpers shared by calib.c and calib_gen.c. */
#ifndef VL_CALIB_INT_H
#define VL_CALIB_INT_H

#include "calib.h"

/* self:T — sp has its final shape; ids [n_seq × seq_len] is filled. */
int calib_build_self(const calib_env *env, const calib_spec *sp, int32_t *ids, vl_err *err);

/* entropy:SET:BUCKET — pool is SET, ent its mean entropy per sequence; sp->n_seq is the
 * bucket size. */
int calib_build_bucket(const calib_set *pool, const double *ent, const calib_spec *sp,
                       int32_t *ids, vl_err *err);

#endif
