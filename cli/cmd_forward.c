/* cli/cmd_forward.c — `vbrlab forward [MODEL_DIR] (--ids 1,2,3 | --ids-file FILE) --out OUT.h5
 *                     [--hidden] [--router] [--batch B] [--mem-cap BYTES] [--pipeline P]`
 * (-o OUT.h5 is the same as --out)
 *
 * Runs the model on token id sequences and writes OUT.h5 atomically (io/h5s: temp + rename):
 *   /input_ids          int32   [n_seq, n_tok]
 *   /logits             float32 [n_seq, n_tok, vocab]
 *   /hidden_states/NN   float32 [n_seq, n_tok, D]   (--hidden) numbered as golden.h5: 00 the
 *                       embeddings, 01..L-1 outputs of layers 0..L-2, L the final RMSNorm
 *                       applied to layer L-1's output; deepseek_v4's 00..L-1 are its hc_mult
 *                       residual streams, float32 [n_seq, n_tok, hc_mult, D], as golden.h5
 *   /router_logits/NN   float32 [n_seq·n_tok, E]    (--router) MoE layers only, NN = layer
 * FILE holds one sequence per line, ids separated by spaces; blank lines are skipped. All lines
 * must have the same length (one batch, no padding): a ragged file is an error naming the line.
 * Every id is checked against the vocabulary before the forward runs.
 * --batch B / --mem-cap BYTES run layer-major (analysis/lfwd.h): batches of B sequences (default
 * all), every batch through layer i before layer i+1, the residual rows of all sequences kept in
 * memory up to BYTES (0: no cap) and in an unlinked temporary file beyond; same logits as the
 * one-batch run when B covers all sequences. Not combined with --hidden/--router (an error).
 * On more than one MPI rank (the MPI build under mpirun/srun) the batches of B sequences are
 * shared over the ranks, and --pipeline P splits the layers over pipelines of P ranks
 * (analysis/pipeline.h): the logits are gathered in batch order and rank 0 writes them, the
 * same bits as one process with the same --batch. --pipeline without the MPI build is an
 * error; on ranks, --hidden, --router and --mem-cap are errors.
 */
#include "cli.h"

#include "../analysis/fwd.h"
#include "../analysis/lfwd.h"
#include "../analysis/model.h"
#include "../analysis/pipeline.h"
#include "../core/num.h"
#include "../core/par.h"
#include "../core/vfile.h"
#include "../io/h5s.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- id parsing */

typedef struct {
    int32_t *ids;
    int n, cap;     /* ids so far */
    int n_seq, len; /* sequences and their common length */
} id_list;

/* Append the ids of one text (separators: SEP characters); a new sequence. WHERE names the
 * source for errors ("--ids", "FILE:LINE"). Returns 0, or fills err. */
static int parse_seq(id_list *L, const char *text, const char *sep, const char *where, int vocab,
                     vl_err *err)
{
    int start = L->n;
    const char *p = text;
    for (;;) {
        while (*p && strchr(sep, *p))
            p++;
        if (!*p || *p == '\n')
            break;
        const char *end = p;
        while (*end && !strchr(sep, *end) && *end != '\n')
            end++;
        int64_t v;
        int rc = num_i64_n(p, (size_t)(end - p), INT64_MIN, INT64_MAX, &v);
        if (rc == VL_EFORMAT)
            return vl_errf(err, VL_EARG, "%s: bad token id near \"%.20s\"", where, p);
        if (rc || v < 0 || v >= vocab)
            return vl_errf(err, VL_ERANGE, "%s: token id %.*s outside the vocabulary [0, %d)",
                           where, (int)(end - p < 40 ? end - p : 40), p, vocab);
        if (L->n == L->cap) {
            int cap = L->cap ? 2 * L->cap : 1024;
            int32_t *ids = vl_realloc(L->ids, (size_t)cap * sizeof *ids);
            if (!ids)
                return vl_errf(err, VL_ENOMEM, "%s: out of memory", where);
            L->ids = ids;
            L->cap = cap;
        }
        L->ids[L->n++] = (int32_t)v;
        p = end;
    }
    int len = L->n - start;
    if (len == 0)
        return 0; /* blank line */
    if (L->n_seq && len != L->len)
        return vl_errf(err, VL_ESHAPE, "%s: %d ids, but earlier sequences have %d (all "
                       "sequences must have the same length)", where, len, L->len);
    L->len = len;
    L->n_seq++;
    return 0;
}

static int read_ids_file(id_list *L, const char *path, int vocab, vl_err *err)
{
    FILE *f;
    int orc = vf_fopen(path, &f, err); /* regular files only: a FIFO would block */
    if (orc)
        return orc;
    char *line = NULL;
    size_t cap = 0;
    int rc = 0, lineno = 0;
    for (;;) {
        /* getline is POSIX; a fixed chunked reader keeps this C11: grow until the line fits */
        size_t n = 0;
        int c;
        while ((c = fgetc(f)) != EOF && c != '\n') {
            if (n + 2 > cap) {
                size_t nc = cap ? 2 * cap : 4096;
                char *nl = vl_realloc(line, nc);
                if (!nl) {
                    rc = vl_errf(err, VL_ENOMEM, "%s: out of memory", path);
                    break;
                }
                line = nl;
                cap = nc;
            }
            line[n++] = (char)c;
        }
        if (rc || (c == EOF && n == 0))
            break;
        line[n] = '\0';
        lineno++;
        if (strlen(line) != n) { /* a NUL would end the line early: "12\0 34" read as 12 */
            rc = vl_errf(err, VL_EFORMAT, "%s:%d: NUL byte in the line", path, lineno);
            break;
        }
        char where[4200];
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        if ((rc = parse_seq(L, line, " \t\r", where, vocab, err)))
            break;
        if (c == EOF)
            break;
    }
    if (!rc && ferror(f))
        rc = vl_errf(err, VL_EIO, "%s: read error", path);
    fclose(f);
    vl_free(line);
    if (!rc && L->n_seq == 0)
        rc = vl_errf(err, VL_EARG, "%s: no token ids", path);
    return rc;
}

/* ---------------------------------------------------------------- capture taps */

typedef struct {
    const hfc_config *c;
    float **resid;  /* [L] N × D copies, NULL if not wanted */
    float **router; /* [L] N × E copies */
} capture;

static void on_event(void *user, const tap_event *ev)
{
    capture *cp = user;
    float **dst = ev->point == TAP_RESIDUAL ? cp->resid : cp->router;
    if (!dst || ev->layer < 0 || ev->layer >= cp->c->n_layers || !dst[ev->layer])
        return;
    for (int r = 0; r < ev->rows; r++)
        memcpy(dst[ev->layer] + (size_t)r * ev->cols, ev->data + (size_t)r * ev->stride,
               (size_t)ev->cols * sizeof(float));
}

/* ---------------------------------------------------------------- output */

static int write_out(h5s_store *o, const model *m, const fwd_state *st, const id_list *L,
                     const float *logits, const capture *cp, vl_err *err)
{
    const hfc_config *c = model_config(m);
    int64_t S = L->n_seq, T = L->len, N = S * T, D = c->hidden;
    int64_t sh3[3] = {S, T, c->vocab}, sh2[2] = {S, T};
    int rc = h5s_write(o, "/input_ids", H5S_I32, L->ids, 2, sh2, "token id",
                       "input token ids [sequence, position]", err);
    if (!rc)
        rc = h5s_write(o, "/logits", H5S_F32, logits, 3, sh3, "logit",
                       "LM head output before softmax [sequence, position, vocab]", err);
    if (!rc)
        rc = h5s_attr_set(o, "/", "model", model_dir(m), err);
    if (!rc)
        rc = h5s_attr_set(o, "/", "model_type", c->model_type, err);
    sh3[2] = D;
    /* deepseek_v4's residual is hc_mult streams: [sequence, position, stream, hidden] */
    int64_t W = fwd_residual_width(m), sh4[4] = {S, T, W / D, D};
    for (int l = 0; cp->resid && !rc && l <= c->n_layers; l++) {
        char path[64], meaning[128];
        const float *h = l == 0 ? cp->resid[c->n_layers] /* the embeddings, see below */
                         : l < c->n_layers ? cp->resid[l - 1] : fwd_final_hidden(st);
        snprintf(path, sizeof path, "/hidden_states/%02d", l);
        if (l == 0)
            snprintf(meaning, sizeof meaning, "token embeddings [sequence, position, hidden]");
        else if (l < c->n_layers)
            snprintf(meaning, sizeof meaning, "output of decoder layer %d [sequence, position, "
                     "hidden]", l - 1);
        else
            snprintf(meaning, sizeof meaning, "final RMSNorm of decoder layer %d's output "
                     "[sequence, position, hidden]", l - 1);
        int streams = W != D && l < c->n_layers;
        rc = h5s_write(o, path, H5S_F32, h, streams ? 4 : 3, streams ? sh4 : sh3, "activation",
                       meaning, err);
    }
    int64_t shr[2] = {N, c->n_experts};
    for (int l = 0; cp->router && !rc && l < c->n_layers; l++) {
        char path[64];
        snprintf(path, sizeof path, "/router_logits/%02d", l);
        if (c->layer_is_moe[l])
            rc = h5s_write(o, path, H5S_F32, cp->router[l], 2, shr, "logit",
                           "router logits before softmax [sequence*position, expert]", err);
    }
    return rc;
}

/* ---------------------------------------------------------------- the command */

static float **alloc_layers(int n, size_t floats)
{
    float **a = vl_calloc((size_t)n, sizeof *a);
    for (int i = 0; a && i < n; i++)
        if (!(a[i] = vl_malloc(floats * sizeof(float))))
            return a; /* caller frees; the NULL is caught below */
    return a;
}

static void free_layers(float **a, int n)
{
    for (int i = 0; a && i < n; i++)
        vl_free(a[i]);
    vl_free(a);
}

/* lfwd's sink: each batch's logits into the output array. */
typedef struct {
    float *logits;
    size_t row; /* floats per sequence */
} lsink;

static int to_logits(void *user, int seq0, int n, const float *lg, vl_err *err)
{
    (void)err;
    lsink *k = user;
    memcpy(k->logits + (size_t)seq0 * k->row, lg, (size_t)n * k->row * sizeof *lg);
    return 0;
}

/* The layer-major run: logits of all sequences into a new array (*out, caller frees). */
static int run_layered(const model *m, const id_list *L, int batch, int64_t cap, float **out,
                       vl_err *e)
{
    int B = batch > 0 && batch < L->n_seq ? batch : L->n_seq;
    size_t row = (size_t)L->len * (size_t)model_config(m)->vocab;
    lsink k = {vl_malloc((size_t)L->n_seq * row * sizeof(float) + 1), row};
    fwd_state *st = NULL;
    int rc = k.logits ? fwd_state_new(&st, m, B, L->len, e)
                      : vl_errf(e, VL_ENOMEM, "forward: out of memory for the logits");
    lfwd_params p = {B, cap, NULL};
    if (!rc)
        rc = lfwd_run(m, model_base(m), st, L->ids, L->n_seq, L->len, &p, to_logits, &k, NULL,
                      e);
    fwd_state_free(st);
    if (rc)
        vl_free(k.logits);
    else
        *out = k.logits;
    return rc;
}

/* The run over ranks: batches of B sequences through pipelines of P stages, each batch's
 * logits kept by the last stage of its group, then gathered in batch order on every rank
 * (*out, caller frees). */
static int run_ranks(const model *m, const id_list *L, int batch, int P, int local_rc,
                     float **out, vl_err *e)
{
    if (local_rc) /* the others learn it at the gather */
        return par_concat_owned(NULL, NULL, NULL, NULL, 0, 1, local_rc, e);
    int B = batch > 0 && batch < L->n_seq ? batch : L->n_seq, T = L->len;
    int n_batch = (L->n_seq + B - 1) / B;
    size_t row = (size_t)T * (size_t)model_config(m)->vocab; /* floats per sequence */
    pl_pipe *pl = NULL;
    fwd_state *st = NULL;
    int64_t *len = vl_malloc((size_t)n_batch * sizeof *len);
    int *owner = vl_malloc((size_t)n_batch * sizeof *owner);
    float *mine = vl_malloc((size_t)L->n_seq * row * sizeof(float) + 1);
    float *all = vl_malloc((size_t)L->n_seq * row * sizeof(float) + 1);
    int rc = len && owner && mine && all ? 0 : vl_errf(e, VL_ENOMEM, "forward: out of memory");
    if (!rc)
        rc = pl_new(&pl, m, P, (int64_t)B * T, e);
    if (!rc)
        rc = fwd_state_new(&st, m, B, T, e);
    size_t at = 0; /* floats of mine filled */
    for (int b = 0; b < n_batch; b++) {
        int s0 = b * B, nb = L->n_seq - s0 < B ? L->n_seq - s0 : B;
        if (len)
            len[b] = (int64_t)nb * (int64_t)row;
        if (owner)
            owner[b] = pl ? pl_owner(pl, b) : -1;
        if (rc || !pl_mine(pl, b))
            continue;
        const float *lg;
        rc = pl_forward(pl, model_base(m), st, L->ids + (size_t)s0 * T, nb, T, b, 0, NULL,
                        NULL, &lg, e);
        if (!rc && lg) {
            memcpy(mine + at, lg, (size_t)nb * row * sizeof *lg);
            at += (size_t)nb * row;
        }
    }
    if (pl)
        rc = pl_finish(pl, rc, e);
    rc = par_concat_owned(mine, all, len, owner, n_batch, sizeof(float), rc, e);
    fwd_state_free(st);
    pl_free(pl);
    vl_free(len);
    vl_free(owner);
    vl_free(mine);
    if (rc)
        vl_free(all);
    else
        *out = all;
    return rc;
}

static int run(const char *dir, const char *ids_arg, const char *ids_file, const char *out,
               int hidden, int router, int batch, int64_t cap, int P, vl_err *e)
{
    model *m = NULL;
    fwd_state *st = NULL;
    h5s_store *o = NULL;
    id_list L = {0};
    int rc = model_open(&m, dir, e);
    const hfc_config *c = rc ? NULL : model_config(m);
    if (!rc)
        rc = ids_arg ? parse_seq(&L, ids_arg, ",", "--ids", c->vocab, e)
                     : read_ids_file(&L, ids_file, c->vocab, e);
    if (!rc && L.n_seq == 0)
        rc = vl_errf(e, VL_EARG, "--ids: no token ids");
    float *lay = NULL; /* the layer-major run's or the ranks' logits */
    int ranks = P > 1 || par_size() > 1, layered = !ranks && (batch > 0 || cap >= 0);
    if (ranks) /* collective: every rank enters, failed or not */
        rc = run_ranks(m, &L, batch, P, rc, &lay, e);
    else if (!rc && layered)
        rc = run_layered(m, &L, batch, cap > 0 ? cap : 0, &lay, e);
    if (!rc && !layered && !ranks)
        rc = fwd_state_new(&st, m, L.n_seq, L.len, e);
    size_t N = (size_t)L.n_seq * L.len, W = rc ? 0 : (size_t)fwd_residual_width(m);
    /* resid[L] holds the embeddings (hidden_states/00); resid[0..L-1] the layer outputs */
    capture cp = {c, hidden && !rc ? alloc_layers(c->n_layers + 1, N * W) : NULL,
                  router && !rc ? alloc_layers(c->n_layers, N * c->n_experts) : NULL};
    for (int l = 0; !rc && hidden && l <= c->n_layers; l++)
        if (!cp.resid || !cp.resid[l])
            rc = vl_errf(e, VL_ENOMEM, "%s: out of memory for hidden states", out);
    for (int l = 0; !rc && router && l < c->n_layers; l++)
        if (!cp.router || !cp.router[l])
            rc = vl_errf(e, VL_ENOMEM, "%s: out of memory for router logits", out);
    if (!rc && hidden)
        rc = fwd_embed(m, model_base(m), L.ids, (int)N, cp.resid[c->n_layers], e);
    tap_set ts = {on_event, &cp, (hidden ? TAP_BIT(TAP_RESIDUAL) : 0) |
                                     (router ? TAP_BIT(TAP_ROUTER_LOGITS) : 0)};
    const float *logits = lay;
    if (!rc && !layered && !ranks)
        rc = fwd_run(m, model_base(m), st, L.ids, L.n_seq, L.len, NULL, &ts, &logits, e);
    if (!rc && par_rank() != 0) /* the ranks shared the work; rank 0 writes */
        goto done;
    if (!rc)
        rc = h5s_create(&o, out, e);
    if (!rc)
        rc = write_out(o, m, st, &L, logits, &cp, e);
    if (!rc) {
        rc = h5s_commit(o, e);
        o = NULL;
    }
done:
    h5s_close(o); /* after a failure: discards the temporary file */
    if (c) {
        free_layers(cp.resid, c->n_layers + 1);
        free_layers(cp.router, c->n_layers);
    }
    vl_free(L.ids);
    vl_free(lay);
    fwd_state_free(st);
    model_close(m);
    return rc;
}

int cmd_forward(int argc, char **argv)
{
    const char *dir = cli_default_model(), *ids = NULL, *file = NULL, *out = NULL;
    int hidden = 0, router = 0, batch = 0, P = 1;
    int64_t cap = -1; /* −1: not given */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i == 1 && cli_is_positional(a))
            dir = a;
        else if (!strcmp(a, "--ids") && i + 1 < argc)
            ids = argv[++i];
        else if (!strcmp(a, "--ids-file") && i + 1 < argc)
            file = argv[++i];
        else if ((!strcmp(a, "--out") || !strcmp(a, "-o")) && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(a, "--hidden"))
            hidden = 1;
        else if (!strcmp(a, "--router"))
            router = 1;
        else if (!strcmp(a, "--batch") && i + 1 < argc) {
            if (num_int(argv[++i], 1, 1 << 24, &batch))
                return cli_failf("forward", "--batch '%s': expected a positive integer",
                                 argv[i]);
        } else if (!strcmp(a, "--pipeline") && i + 1 < argc) {
            if (num_int(argv[++i], 1, 1 << 20, &P))
                return cli_failf("forward", "--pipeline '%s': expected a positive integer",
                                 argv[i]);
        } else if (!strcmp(a, "--mem-cap") && i + 1 < argc) {
            if (num_i64(argv[++i], 0, INT64_MAX, &cap))
                return cli_failf("forward", "--mem-cap '%s': expected bytes (0: no cap)",
                                 argv[i]);
        } else
            return cli_failf("forward", "unexpected argument '%s' (usage: vbrlab forward "
                             "[MODEL_DIR] (--ids 1,2,3 | --ids-file FILE) --out OUT.h5 "
                             "[--hidden] [--router] [--batch B] [--mem-cap BYTES] "
                             "[--pipeline P])", a);
    }
    if (!ids == !file)
        return cli_failf("forward", "give exactly one of --ids and --ids-file");
    if (!out)
        return cli_failf("forward", "--out OUT.h5 is required");
    if ((P > 1 || par_size() > 1) && (hidden || router || cap >= 0))
        return cli_failf("forward", "on MPI ranks or with --pipeline, --hidden, --router and "
                         "--mem-cap are not available (one process writes them)");
    if ((batch > 0 || cap >= 0) && (hidden || router))
        return cli_failf("forward", "--batch/--mem-cap (layer-major) do not write --hidden or "
                         "--router");
    vl_err e = {0};
    if (run(dir, ids, file, out, hidden, router, batch, cap, P, &e))
        return cli_fail("forward", &e);
    return 0;
}
