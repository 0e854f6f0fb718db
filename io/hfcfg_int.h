/* io/hfcfg_int.h — hfcfg.c's field readers for the per-family readers beside it
 * (io/hfcfg_dsv4.c). Same rules and messages as hfcfg.c: absent or null fields take the
 * default, wrong types and out-of-range values are VL_ECONFIG errors naming PATH and the key.
 */
#ifndef VL_HFCFG_INT_H
#define VL_HFCFG_INT_H

#include "hfcfg.h"

#include <jansson.h>

const json_t *hfc_field(const json_t *obj, const char *key); /* NULL if absent or null */
int hfc_get_int(const json_t *root, const char *path, const char *key, int required, int def,
                long lo, long hi, int *out, vl_err *err);
int hfc_get_bool(const json_t *root, const char *path, const char *key, int def, int *out,
                 vl_err *err);
int hfc_get_pos_num(const json_t *obj, const char *path, const char *key, const char *name,
                    double def, double *out, vl_err *err);

/* deepseek_v4: everything after the common attention fields (MoE, rope, mHC, compressors). */
int hfc_dsv4_read(const json_t *root, const char *path, hfc_config *c, vl_err *err);

#endif
