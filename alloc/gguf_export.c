/* alloc/gguf_export.c — allocation → llama.cpp recipe directory (alloc/gguf_export.h). */
#define _POSIX_C_SOURCE 200809L
#include "gguf_export.h"

#include "../analysis/imatrix.h"
#include "ggml_fmt.h"
#include "gguf_recipe.h"
#include "salloc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void ggr_export_info_free(ggr_export_info *i)
{
    if (!i) return;
    vl_free(i->types);
    vl_free(i->script);
    memset(i, 0, sizeof *i);
}

/* Write text to DIR/NAME through NAME.tmp and a rename, so a reader never sees half a file;
 * mode 0755 for the script. */
static int write_file(const char *dir, const char *name, const char *text, int exec, vl_err *err)
{
    char p[1100], t[1110];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    snprintf(t, sizeof t, "%s.tmp", p);
    FILE *f = fopen(t, "w");
    if (!f) return vl_errf(err, VL_EIO, "%s: %s", t, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    if (!bad && exec) bad = chmod(t, 0755) != 0;
    if (bad || rename(t, p)) {
        remove(t);
        return vl_errf(err, VL_EIO, "%s: write failed", p);
    }
    return 0;
}

/* Text built in memory (open_memstream is POSIX 2008); the buffer comes from malloc. */
typedef struct {
    char *buf;
    size_t len;
    FILE *f;
} mtext;

static void mt_close(mtext *m)
{
    if (m->f) fclose(m->f);
    m->f = NULL;
}

static char *dup_text(const mtext *m)
{
    char *d = vl_malloc(m->len + 1);
    if (d) memcpy(d, m->buf ? m->buf : "", m->len), d[m->len] = 0;
    return d;
}

static const ggr_tensor *find_tensor(const ggr_plan *p, const char *name)
{
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->v[i].name, name)) return &p->v[i];
    return NULL;
}

/* Text inside a shell comment: a control character (a newline in a path or a config name)
 * would end the comment and make the rest a command, so each is written as '?'. */
static void put_comment_text(FILE *f, const char *s)
{
    for (; *s; s++)
        fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

static void write_script(FILE *f, const ggr_export_req *q, const ggr_plan *p, int imatrix)
{
    const ggr_tensor *emb = find_tensor(p, "token_embd.weight"), *out = find_tensor(p, "output.weight");
    fprintf(f, "#!/bin/sh\n# Made by: ");
    put_comment_text(f, q->made_by ? q->made_by : "vbrlab");
    fprintf(f, "\n# Usage: quantize.sh MODEL-BF16.gguf OUT.gguf [THREADS]\n"
               "# MODEL-BF16.gguf: python convert_hf_to_gguf.py ");
    put_comment_text(f, q->model_dir);
    fprintf(f, " --outtype bf16 --outfile MODEL-BF16.gguf\n"
               "# Base type %s: no tensor uses it, every tensor has its type from tensor-types.txt or the\n"
               "# embedding/output options (llama-quantize logs \"applying manual override\" for each).\n"
               "set -e\nDIR=$(dirname \"$0\")\nexec llama-quantize",
            ggr_ftype_name(p->base));
    if (imatrix) fprintf(f, " --imatrix \"$DIR/imatrix.gguf\"");
    fprintf(f, " --tensor-type-file \"$DIR/tensor-types.txt\"");
    if (emb) fprintf(f, " --token-embedding-type %s", ggf_get(emb->type)->name);
    if (out) fprintf(f, " --output-tensor-type %s", ggf_get(out->type)->name);
    fprintf(f, " \"$1\" \"$2\" %s ${3:+\"$3\"}\n", ggr_ftype_name(p->base));
}

static void write_readme(FILE *f, const ggr_export_req *q, const ggr_plan *p, const salloc_record *rec,
                         const char *stats, const char *set, int imatrix)
{
    fprintf(f, "# llama.cpp recipe for allocation %s\n\nMade by vbrlab from `%s` (model `%s`, architecture %s).\n\n",
            q->alloc, q->source ? q->source : q->alloc, q->model_dir, p->arch);
    fprintf(f, "## What to run\n\n1. `python convert_hf_to_gguf.py %s --outtype bf16 --outfile MODEL-BF16.gguf` "
               "(llama.cpp's converter).\n2. `sh quantize.sh MODEL-BF16.gguf OUT.gguf [THREADS]` (llama-quantize "
               "on PATH).\n\n", q->model_dir);
    fprintf(f, "| | bits per weight (as llama.cpp counts) | weights |\n|---|---|---|\n"
               "| whole file | %.4f | %lld |\n| body (blk.*) | %.4f | %lld |\n\n",
            p->bpw_file, (long long)p->params, p->bpw_body, (long long)p->body_params);
    fprintf(f, "Allocation target %.4g bpw (%s), objective %s, solver %s, calibration `%s` from `%s`.\n\n",
            rec->target_bpw,
            rec->budget && !strcmp(rec->budget, "model") ? "over every weight of the model, kept tensors counted"
                                                         : "vbrlab's count over its quantized tensors",
            rec->objective ? rec->objective : "", rec->solver ? rec->solver : "", set ? set : "",
            stats ? stats : "");
    fprintf(f, "Predicted KLD per calibration domain (nat/token, vbrlab's additive prediction):\n\n"
               "| domain | KLD |\n|---|---|\n");
    char *sets = rec->sets ? vl_strdup(rec->sets) : NULL, *save = NULL;
    int k = 0;
    for (char *tok = sets ? strtok_r(sets, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save), k++)
        fprintf(f, "| %s | %.5g |\n", tok, k < rec->n_sets ? rec->predicted_kld[k] : NAN);
    vl_free(sets);
    fprintf(f, "\nTypes (weights per type):\n\n| type | tensors | weights |\n|---|---|---|\n");
    for (int ty = 0; ty < GGF_COUNT; ty++) {
        int nt = 0;
        long long nw = 0;
        for (int i = 0; i < p->n; i++)
            if (p->v[i].type == ty) nt++, nw += p->v[i].n;
        if (nt) fprintf(f, "| %s | %d | %lld |\n", ggf_get(ty)->name, nt, nw);
    }
    fprintf(f, "\nFiles: `tensor-types.txt` (one `^NAME$=TYPE` line per quantized blk tensor, for "
               "`--tensor-type-file`), %s`quantize.sh` (llama-quantize with the overrides, the embedding/output "
               "types and base type %s, which no tensor keeps).\nNorms and biases stay F32, the router "
               "ffn_gate_inp stays in the input's BF16, as llama-quantize does.\n",
            imatrix ? "`imatrix.gguf` (llama.cpp imatrix from vbrlab's statistics), " : "",
            ggr_ftype_name(p->base));
}

int ggr_export(h5s_store *s, const ggr_export_req *q, ggr_export_info *info, vl_err *err)
{
    salloc_record rec = {0};
    ggr_plan plan = {0};
    imx_data im = {0};
    mtext t = {0}, sh = {0}, rd = {0};
    if (info) memset(info, 0, sizeof *info);
    int rc = salloc_read(s, q->alloc, &rec, err);
    if (!rc) rc = ggr_plan_build(&plan, q->model_dir, rec.assignment, q->embd_type, q->output_type, err);
    const char *stats = q->stats ? q->stats : rec.stats_file, *set = q->sets ? q->sets : rec.calib;
    int have = stats && *stats && set && *set;
    if (!rc && have) rc = imx_from_stats(&im, stats, q->model_dir, set, err);
    /* llama-quantize refuses these types without an imatrix entry, except on token_embd and
     * output (src/llama-quant.cpp, tensor_requires_imatrix); the plan's body is the rest */
    for (int i = 0; !rc && i < plan.n; i++) {
        const ggr_tensor *r = &plan.v[i];
        if (!r->quantized || !r->body || !ggr_needs_imatrix(r->type)) continue;
        if (!have)
            rc = vl_errf(err, VL_EARG, "%s: allocation %s gives %s %s, which llama-quantize refuses without an "
                         "imatrix, and names no statistics; give the statistics and sets", q->source ? q->source : q->alloc,
                         q->alloc, r->name, ggf_get(r->type)->name);
        else if (!imx_find(&im, r->name))
            rc = vl_errf(err, VL_ECONFIG, "%s gets %s, which llama-quantize refuses without an imatrix entry, and "
                         "the statistics have none for it", r->name, ggf_get(r->type)->name);
    }
    if (!rc) {
        t.f = open_memstream(&t.buf, &t.len);
        sh.f = open_memstream(&sh.buf, &sh.len);
        rd.f = open_memstream(&rd.buf, &rd.len);
        if (!t.f || !sh.f || !rd.f) rc = vl_errf(err, VL_ENOMEM, "out of memory");
    }
    if (!rc) {
        ggr_write_types(&plan, t.f);
        write_script(sh.f, q, &plan, have);
        write_readme(rd.f, q, &plan, &rec, stats, set, have);
    }
    mt_close(&t), mt_close(&sh), mt_close(&rd);
    if (!rc && mkdir(q->out_dir, 0755) && errno != EEXIST) rc = vl_errf(err, VL_EIO, "%s: %s", q->out_dir, strerror(errno));
    char ip[1100];
    snprintf(ip, sizeof ip, "%s/imatrix.gguf", q->out_dir);
    if (!rc && have) rc = imx_write(&im, ip, err);
    else if (!rc && remove(ip) && errno != ENOENT) rc = vl_errf(err, VL_EIO, "%s: %s", ip, strerror(errno));
    if (!rc) rc = write_file(q->out_dir, "tensor-types.txt", t.buf, 0, err);
    if (!rc) rc = write_file(q->out_dir, "quantize.sh", sh.buf, 1, err);
    if (!rc) rc = write_file(q->out_dir, "README.md", rd.buf, 0, err);
    if (!rc && info) {
        info->n_tensors = plan.n, info->base = plan.base, info->imatrix = have;
        info->bpw_file = plan.bpw_file, info->bpw_body = plan.bpw_body;
        info->types = dup_text(&t), info->script = dup_text(&sh);
        if (!info->types || !info->script) rc = vl_errf(err, VL_ENOMEM, "out of memory");
    }
    free(t.buf), free(sh.buf), free(rd.buf);
    salloc_record_free(&rec);
    ggr_plan_free(&plan);
    imx_free(&im);
    if (rc && info) ggr_export_info_free(info);
    return rc;
}
