/* analysis/model_int.h — model.c's planning hooks for the per-family files beside it
 * (analysis/model_dsv4.c). Not part of the public model API.
 */
#ifndef VL_MODEL_INT_H
#define VL_MODEL_INT_H

#include "model.h"

/* Append tensor NAME (printf format) to M's plan; its binding slot is ext[index] (model.h). */
int model_plan_ext(model *m, model_class cls, int layer, int expert, int rows, int cols,
                   vl_err *err, const char *fmt, ...) __attribute__((format(printf, 8, 9)));

/* deepseek_v4: plan every tensor in model_dsv4.h's order. */
int mdsv4_plan(model *m, const hfc_config *c, vl_err *err);

#endif
