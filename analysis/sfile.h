/* analysis/sfile.h — the `vbrlab stats` store: calibration sets, their statistics and per-token
 * values in one HDF5 file (io/h5s.h), and the exact merge of two such files.
 *
 * Layout (docs/hdf5-schema.md, section "vbrlab stats"):
 *   /                      attrs schema_version, creator (h5s), model, model_config_hash,
 *                          command
 *   /sets/<name>           attrs source, seqs, len, seed, skip
 *   /sets/<name>/input_ids int32 [seqs, len]
 *   /stats/<name>/...      stat_write (analysis/stats.h)
 *   /tokens/<name>/entropy, /tokens/<name>/logp   float64 [seqs, len]
 *
 * Merge: both files must come from the same model (equal model_config_hash). Sets present in
 * one file are copied; sets present in both must have the same source and len and are merged:
 * exact sums added (stat_merge), input_ids and per-token rows concatenated (A's rows first),
 * seqs added. The merged definition keeps A's seed and skip when B continues A's sequence range
 * (same seed, B.skip = A.skip + A.seqs: the merged set is then exactly the set `seqs=A+B` would
 * have built); otherwise seed and skip become "A+B" strings recording both parts.
 *
 * Writes are atomic (h5s_create/h5s_commit). Not thread-safe (HDF5).
 */
#ifndef VL_SFILE_H
#define VL_SFILE_H

#include "../core/err.h"
#include "../io/h5s.h"
#include "calib.h"
#include "stats.h"

#include <stdint.h>

#define SFILE_HASH_MAX 32

/* A set definition as stored. Strings are borrowed. */
typedef struct {
    const char *name, *source;
    const char *seed, *skip; /* decimal, or "a+b" after a merge */
    int n_seq, seq_len;
    const int32_t *ids;      /* [n_seq × seq_len] */
} sfile_set;

/* "fnv1a64:XXXXXXXXXXXXXXXX" of the bytes of DIR/config.json into out[SFILE_HASH_MAX]. */
int sfile_config_hash(const char *model_dir, char *out, vl_err *err);

/* Create PATH(.tmp) with the root attributes. model_name: e.g. the model directory's last
 * component. The caller writes sets and ends with h5s_commit (or h5s_close to discard). */
int sfile_create(h5s_store **out, const char *path, const char *model_name,
                 const char *config_hash, const char *command, vl_err *err);

/* Write one set: its definition and ids, stat_write of a under /stats/<name>, and a's token
 * arrays reshaped to [n_seq, seq_len] under /tokens/<name> (a must hold exactly n_seq·seq_len
 * tokens: VL_ESHAPE otherwise). */
int sfile_write_set(h5s_store *s, const sfile_set *set, const stat_acc *a, vl_err *err);

/* C = merge(A, B) as described above; written atomically to path_c with root attribute
 * command. Errors name the file and the set. */
int sfile_merge(const char *path_a, const char *path_b, const char *path_c,
                const char *command, vl_err *err);

/* The token ids of every set of a stats store (/sets/<name>/input_ids), in name order; none
 * when the store has no /sets. Names and ids owned by *out: free with sfile_ids_free. Errors
 * name the file and dataset (VL_ESHAPE for anything but a non-empty [seqs, len]). */
int sfile_read_ids(h5s_store *s, calib_ids **out, int *n, vl_err *err);
void sfile_ids_free(calib_ids *v, int n); /* NULL ok */

/* calib_overlap_check of the evaluation sets ev against every set of the stats store PATH;
 * the error is prefixed with PATH. */
int sfile_check_overlap(const char *path, const calib_ids *ev, int n_ev, vl_err *err);

#endif
