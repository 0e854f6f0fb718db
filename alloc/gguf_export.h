/* alloc/gguf_export.h — one stored allocation → a llama.cpp recipe directory.
 *
 * The one implementation behind `vbrlab export llama.cpp` (cli/cmd_export.c parses argv and
 * calls it) and the experiment runner's export stage (experiments/stage_export.c). It reads
 * /alloc/NAME of an open store (alloc/salloc.h), builds the GGUF plan (alloc/gguf_recipe.h)
 * and writes into DIR:
 *   tensor-types.txt  one `^NAME$=TYPE` line per quantized blk tensor (--tensor-type-file);
 *   imatrix.gguf      llama.cpp's imatrix from vbrlab's statistics (analysis/imatrix.h), when
 *                     the statistics are known (given, or recorded by the allocation);
 *   quantize.sh       the llama-quantize command line (no --pure: every tensor has an explicit
 *                     type, the base ftype is one no tensor uses; alloc/gguf_recipe.h);
 *   README.md         what to run, bpw of the file and the body, predicted KLD per domain.
 * Each file is written as NAME.tmp and renamed. Refused before anything is written: a tensor
 * whose type llama-quantize refuses without an imatrix entry when there is no imatrix or it
 * has no entry for that tensor (VL_ECONFIG), and every error of ggr_plan_build / salloc_read.
 */
#ifndef VL_GGUF_EXPORT_H
#define VL_GGUF_EXPORT_H

#include "../core/err.h"
#include "../io/h5s.h"

#include <stdint.h>

typedef struct {
    const char *model_dir;     /* the model the allocation is of */
    const char *alloc;         /* NAME of /alloc/NAME in the store */
    const char *source;        /* how the store is named to the reader, e.g. "out/x.h5:NAME" */
    const char *made_by;       /* the command shown in quantize.sh's first comment */
    const char *out_dir;       /* made when absent (one level) */
    const char *stats, *sets;  /* NULL: the allocation's stats_file / calib */
    int embd_type, output_type; /* ggf_type for token_embd / output, −1: none given */
} ggr_export_req;

typedef struct {
    int n_tensors;             /* GGUF tensors of the plan */
    int base;                  /* ggf_type whose ftype is llama-quantize's type argument */
    int imatrix;               /* 1: imatrix.gguf written and passed with --imatrix */
    double bpw_file, bpw_body; /* as llama.cpp counts them (alloc/gguf_recipe.h) */
    char *types;               /* tensor-types.txt's text (vl_malloc; ggr_export_info_free) */
    char *script;              /* quantize.sh's text */
} ggr_export_info;

/* Export /alloc/q->alloc of s into q->out_dir. info (may be NULL) gets what was written. */
int ggr_export(h5s_store *s, const ggr_export_req *q, ggr_export_info *info, vl_err *err);

void ggr_export_info_free(ggr_export_info *i); /* leaves *i zeroed; NULL ok */

#endif
