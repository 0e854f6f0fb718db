/* analysis/calib_int.h — private helpers shared by calib.c and calib_gen.c. */
#ifndef VL_CALIB_INT_H
#define VL_CALIB_INT_H

#include "calib.h"

/* The label of one generated stream of set sp: "ROLE.NAME.KIND" (keyed on role and set name;
 * the seed is the spec's). buf holds CALIB_LABEL_MAX bytes. */
#define CALIB_LABEL_MAX (2 * CALIB_NAME_MAX + 32)
void calib_stream_label(const calib_env *env, const calib_spec *sp, const char *kind,
                        char *buf);

/* self:T — sp has its final shape; ids [n_seq × seq_len] is filled. */
int calib_build_self(const calib_env *env, const calib_spec *sp, int32_t *ids, vl_err *err);

/* entropy:SET:BUCKET — pool is SET, ent its mean entropy per sequence; sp->n_seq is the
 * bucket size. */
int calib_build_bucket(const calib_set *pool, const double *ent, const calib_spec *sp,
                       int32_t *ids, vl_err *err);

#endif
