/* alloc/ggml_check.h — verify ggml_fmt against goldens made by llama.cpp itself.
 *
 * The goldens file (tests/fixtures/ggml/ggml_goldens.h5; made by make_goldens.c + pack.py
 * beside it) has one group per case (/L00.q_proj, /synthetic, ...) with datasets `weights`
 * [rows, cols] f32 and `importance` [cols] f32, and one subgroup per type name (/CASE/q4_K)
 * holding `imatrix_q` [rows, row_bytes] u8 (llama.cpp's quantization with the importance),
 * `imatrix_deq` [rows, cols] f32 (llama.cpp's decode of it), optionally `plain_q` (without
 * importance), and attributes sq_err, wsq_err (and sq_err_plain for plain_q): llama.cpp's
 * squared and importance-weighted squared errors Σ_j imp_j·(w − ŵ)², summed in double.
 *
 * For every case and type: decode imatrix_q and compare with imatrix_deq bit for bit; decode
 * plain_q and recompute its squared error against sq_err_plain (relative 1e-6: llama.cpp's sum
 * of the same floats printed with 9 digits); quantize the weights with our quantizer and the
 * importance, and compare our weighted error with wsq_err.
 */
#ifndef VL_GGML_CHECK_H
#define VL_GGML_CHECK_H

#include "../core/err.h"

#include <stdio.h>

typedef struct {
    int n_lines;      /* (case, type) pairs checked */
    int n_decode_bad; /* pairs whose decode differs from llama.cpp's */
    int n_ratio_bad;  /* pairs with our weighted error > max_ratio × llama.cpp's */
    double worst_ratio;
} ggf_check_result;

/* Check every case and type of the goldens at path; one line per pair on out (NULL: silent):
 * "CASE TYPE bpw B  wsq ours/llama.cpp A / L = R  (unweighted U)  decode ok|MISMATCH (k of n
 * values)"; U = our plain squared error / llama.cpp's (information: the bound is on R).
 * only_type: a type name to restrict to, or NULL for all. Returns 0 when the file was read
 * (the verdict is in *res), or a VL_E* code for an unreadable or malformed goldens file. */
int ggf_check_goldens(const char *path, const char *only_type, double max_ratio, FILE *out,
                      ggf_check_result *res, vl_err *err);

#endif
