/* analysis/imatrix.h — llama.cpp importance matrices (imatrix GGUF) from vbrlab statistics, and
 * back.
 *
 * llama.cpp's imatrix file (tools/imatrix, read by llama-quantize) is a GGUF with the keys
 * general.type = "imatrix", imatrix.datasets (string array), imatrix.chunk_count and
 * imatrix.chunk_size (u32), and per weight tensor NAME (its GGUF name, e.g.
 * blk.3.ffn_down_exps.weight) two F32 tensors: NAME.in_sum2 [n_in, n_mat] = Σ x² of the
 * tensor's input per input column, one row per expert (n_mat = 1 for non-expert tensors), and
 * NAME.counts [1, n_mat] = the rows (tokens) each sum is over. llama-quantize uses
 * in_sum2 / counts per expert (1 where counts is 0).
 *
 * vbrlab's statistics (analysis/stats.h, in a `vbrlab stats` file) keep per input group the exact
 * Σx² and the row count; every group names the HF weights that read it. A mix of sets is the
 * weighted sum of their sums and counts (weights 1: the union of the calibration data).
 * chunk_count = Σ sequences over the sets, chunk_size = Σ tokens / Σ sequences.
 *
 * Not thread-safe (HDF5).
 */
#ifndef VL_IMATRIX_H
#define VL_IMATRIX_H

#include "../core/err.h"
#include "../io/gguf_names.h"

#include <stdint.h>

typedef struct {
    char name[GGN_NAME_MAX]; /* GGUF weight name */
    int n_in, n_mat;
    double *sum2;            /* [n_mat × n_in] Σ x² */
    double *count;           /* [n_mat] rows */
} imx_entry;

typedef struct {
    int n;
    imx_entry *v;            /* sorted by name */
    int n_datasets;
    char **datasets;
    uint32_t chunk_count, chunk_size;
} imx_data;

/* Build from a stats file for the model in model_dir (config.json's model_type picks the name
 * map; only tensors present in the model's safetensors are kept). sets: "A[*w],B[*w],…" (w > 0,
 * default 1). Errors name the file, set and group. */
int imx_from_stats(imx_data *out, const char *stats_path, const char *model_dir, const char *sets,
                   vl_err *err);

/* Write as llama.cpp's imatrix GGUF (atomic). */
int imx_write(const imx_data *d, const char *path, vl_err *err);

/* Read an imatrix GGUF (ours or llama-imatrix's): every NAME.in_sum2 needs its NAME.counts of
 * matching n_mat, F32, and the three imatrix.* keys (VL_EFORMAT otherwise). */
int imx_read(imx_data *out, const char *path, vl_err *err);

const imx_entry *imx_find(const imx_data *d, const char *name); /* NULL if absent */

/* Mean x² of input column j for matrix m: sum2 / count, or 1 where count is 0 (llama-quantize's
 * rule for a matrix that saw no input). */
double imx_mean(const imx_entry *e, int m, int j);

void imx_free(imx_data *d); /* leaves *d empty; NULL ok */

#endif
