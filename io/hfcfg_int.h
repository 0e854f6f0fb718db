/* io/hfcfg_int.h — private cross-file helpers of the hfcfg module (hfcfg.c, hfcfg_dsv3.c).
 * Not part of the public API. */
#ifndef VL_HFCFG_INT_H
#define VL_HFCFG_INT_H

#include "hfcfg.h"

#include <jansson.h>

/* The file being read: its path (for messages), the parsed root object, the caller's error. */
typedef struct {
    const char *path;
    const json_t *root;
    vl_err *err;
} hfc_rd;

/* obj.key, or NULL when absent or JSON null (HF writes null for "use default"). */
const json_t *hfc_field(const json_t *obj, const char *key);
/* "PATH: missing field \"KEY\"" (VL_ECONFIG). */
int hfc_missing(const hfc_rd *r, const char *key);
/* Top-level integer in [lo, hi]; absent: error if required, else *out = def. */
int hfc_get_int(const hfc_rd *r, const char *key, int required, int def, long lo, long hi,
                int *out);
/* Top-level boolean; absent: *out = def. */
int hfc_get_bool(const hfc_rd *r, const char *key, int def, int *out);
/* Positive finite number obj.key (NAME spells it in messages); absent: *out = def. */
int hfc_get_pos_num(const hfc_rd *r, const json_t *obj, const char *key, const char *name,
                    double def, double *out);

/* The same, ≥ 0 allowed. */
int hfc_get_nonneg(const hfc_rd *r, const json_t *obj, const char *key, const char *name,
                   double def, double *out);

/* hfcfg_dsv3.c: the deepseek_v3 keys (after the common ones), and quantization_config. */
int hfc_read_dsv3(const hfc_rd *r, hfc_config *c);
int hfc_read_quant(const hfc_rd *r, hfc_config *c);
/* hfcfg_dsv3.c: the YaRN fields of rope dict D (named DNAME in messages); max_pos is
 * max_position_embeddings (0: absent). */
int hfc_read_yarn(const hfc_rd *r, const json_t *d, const char *dname, int max_pos,
                  hfc_yarn *y);
/* hfcfg_dsv4.c: the deepseek_v4 keys after the common attention fields (MoE, rope, mHC,
 * compressors, indexer); read instead of the generic MoE section. */
int hfc_dsv4_read(const hfc_rd *r, hfc_config *c);

#endif
