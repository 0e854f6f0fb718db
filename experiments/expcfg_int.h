/* experiments/expcfg_int.h — private helpers shared by expcfg.c (INI handler, validation),
 * expval.c (key values), expsrc.c (the source key through analysis/calib_spec.c's one grammar,
 * corpus paths, set references) and expkey.c (rendering, keys).
 *
 * Value parsers write their problem (without the "FILE:LINE: [section] key: " prefix, which the
 * caller adds) into a `why` buffer of EXP_WHY bytes and return VL_ECONFIG, or VL_ENOMEM.
 */
#ifndef VL_EXPCFG_INT_H
#define VL_EXPCFG_INT_H

#include "../analysis/calib.h"
#include "expcfg.h"

#include <stddef.h>
#include <stdint.h>

#define EXP_WHY 512
#define EXP_LIST_MAX 1024  /* items in one list value: far above any real sweep */

/* snprintf into why (EXP_WHY bytes); returns code. */
int exp_whyf(char *why, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Whole-string numbers: no sign games, no trailing text, finite, no overflow. */
int exp_parse_double(const char *s, double *out, char *why);

/* Key values (expval.c). Integers: whole string, in [lo, hi]; numbers: finite, in (lo, hi) or
 * [lo, hi] by the open flags; dlist: a comma list of such numbers; enum: one of names[0..n)
 * (*out its index); bool: false|true|0|1|no|yes; bits: a comma list of names into a bit set
 * ("none": empty); names: distinct set names (calib_name_ok). set_str replaces *dst by a copy. */
int exp_parse_u64(const char *s, uint64_t *out, char *why);
int exp_parse_int(const char *s, long lo, long hi, int *out, char *why);
int exp_parse_num(const char *s, double lo, int lo_open, double hi, int hi_open, double *out,
                  char *why);
int exp_parse_dlist(const char *s, double lo, int lo_open, double hi, int hi_open,
                    exp_dlist *out, char *why);
int exp_parse_enum(const char *s, const char *const *names, int n, int *out, char *why);
int exp_parse_bool(const char *s, int *out, char *why);
int exp_parse_bits(const char *s, const char *const *names, int n, unsigned *out, char *why);
int exp_parse_names(const char *s, exp_slist *out, char *why);
/* llama.cpp ftype names (alloc/llmix.h), case-sensitive and distinct, into *out. */
int exp_parse_ftypes(const char *s, exp_slist *out, char *why);
int exp_set_str(char **dst, const char *v, char *why);

/* Split a comma-separated value into trimmed, non-empty items (1 ≤ n ≤ EXP_LIST_MAX). On
 * failure *out is left empty. */
int exp_split_list(const char *value, exp_slist *out, char *why);
void exp_slist_free(exp_slist *l);

/* The `source` key of set s (grammar in expcfg.h, parser calib_source_parse). cfg_dir is the
 * config file's directory ("" for the working directory). Corpus files must exist. On failure
 * s is unchanged. */
int exp_source_parse(const char *text, const char *cfg_dir, exp_set *s, char *why);

/* Check the references of one family of sets (family "calib" or "eval"): every name exists in
 * the same family and there is no cycle. Fills err with "PATH:LINE: [family.NAME] source: ...". */
int exp_check_refs(const char *path, const char *family, const exp_set *sets, int n,
                   vl_err *err);

/* Claims (expclaim.c). exp_claim_key: the `text` key (is_tests 0) or the `tests` key
 * (is_tests 1, line = its line) of [claim.NAME]. exp_check_claim: after the whole file, every
 * test names rows of the config and an [eval.*] domain ("PATH:LINE: [claim.NAME] tests: ..."). */
int exp_claim_key(exp_claim *cl, int is_tests, const char *v, int line, char *why);
int exp_check_claim(const char *path, const exp_config *cfg, const exp_claim *cl, vl_err *err);
void exp_claim_free(exp_claim *cl);

#endif
