/* experiments/stage_export.c — the export stage ([experiment] export = llama.cpp): every VBR
 * allocation NAME-BPW of the run store becomes a llama-quantize recipe directory
 * OUT-stem.export/NAME-BPW/ (alloc/gguf_export.h: tensor-types.txt, imatrix.gguf, quantize.sh,
 * README.md), recorded as /export/NAME-BPW (docs/hdf5-schema.md).
 *
 * It runs after the report and reads only what the alloc stages stored (the allocation, its
 * statistics in OUT for the imatrix), the same call `vbrlab export llama.cpp` makes, so a
 * recipe made here and one made by hand from OUT are the same files. Baseline allocations
 * (NAME-BPW.uniform, ...) are comparisons, not results, and are not exported. Like every
 * stage it is cached by its key (expkey.c: the export kind, the model, OUT and every alloc
 * key); `--only export` writes the directories again.
 */
#define _POSIX_C_SOURCE 200809L
#include "stage.h"

#include "../alloc/gguf_export.h"
#include "../alloc/gguf_recipe.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* OUT without its extension + ".export" (out/x.h5 → out/x.export). */
static int export_root(const char *out, char *buf, size_t cap, vl_err *err)
{
    const char *slash = strrchr(out, '/'), *dot = strrchr(out, '.');
    size_t stem = dot && (!slash || dot > slash + 1) ? (size_t)(dot - out) : strlen(out);
    int w = snprintf(buf, cap, "%.*s.export", (int)stem, out);
    if (w < 0 || (size_t)w >= cap)
        return vl_errf(err, VL_ECONFIG, "%s: export directory name too long", out);
    return 0;
}

/* /export/NAME: the bpw pair as a dataset, what was written as attributes. */
static int record(run_ctx *c, const char *name, const char *dir, const ggr_export_info *in,
                  vl_err *err)
{
    char g[400], d[420];
    snprintf(g, sizeof g, "/export/%s", name);
    snprintf(d, sizeof d, "%s/bpw", g);
    double bpw[2] = {in->bpw_file, in->bpw_body};
    int64_t two = 2;
    int rc = h5s_write(c->s, d, H5S_F64, bpw, 1, &two, "bit/weight",
                       "[whole GGUF file, body blk.*]: 8 x bytes / weights as llama.cpp counts "
                       "them (alloc/gguf_recipe.h)", err);
    if (!rc)
        rc = h5s_attr_set(c->s, g, "format", "llama.cpp", err);
    if (!rc)
        rc = h5s_attr_set(c->s, g, "dir", dir, err);
    if (!rc)
        rc = h5s_attr_set(c->s, g, "ftype", ggr_ftype_name(in->base), err);
    if (!rc)
        rc = h5s_attr_set(c->s, g, "imatrix", in->imatrix ? "imatrix.gguf" : "", err);
    if (!rc)
        rc = h5s_attr_set(c->s, g, "tensor_types", in->types, err);
    if (!rc)
        rc = h5s_attr_set(c->s, g, "quantize_sh", in->script, err);
    return rc;
}

int stage_export(run_ctx *c, vl_err *err)
{
    const exp_config *cfg = c->cfg;
    char root[4096], made_by[4200];
    int rc = export_root(cfg->out, root, sizeof root, err);
    if (!rc && mkdir(root, 0777) && errno != EEXIST)
        rc = vl_errf(err, VL_EIO, "%s: cannot create directory: %s", root, strerror(errno));
    snprintf(made_by, sizeof made_by, "vbrlab run %s (export stage)", cfg->path);
    for (int i = 0; !rc && i < cfg->n_alloc; i++) {
        const exp_alloc *a = &cfg->alloc[i];
        for (int k = 0; !rc && k < a->target_bpw.n; k++) {
            char name[256], dir[4400], source[4400];
            run_alloc_result_name(a, a->target_bpw.v[k], name, sizeof name);
            snprintf(dir, sizeof dir, "%s/%s", root, name);
            snprintf(source, sizeof source, "%s:%s", cfg->out, name);
            ggr_export_req q = {.model_dir = c->model_dir, .alloc = name, .source = source,
                                .made_by = made_by, .out_dir = dir, .embd_type = -1,
                                .output_type = -1};
            ggr_export_info in;
            rc = ggr_export(c->s, &q, &in, err);
            if (rc)
                vl_errctx(err, rc, "export %s", name);
            else
                rc = record(c, name, dir, &in, err);
            if (!rc && c->log)
                fprintf(c->log, "export %s: %s (%d tensors, %.4f bpw file, base %s)\n", name, dir,
                        in.n_tensors, in.bpw_file, ggr_ftype_name(in.base));
            ggr_export_info_free(&in);
        }
    }
    return rc;
}
