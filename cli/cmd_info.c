/* cli/cmd_info.c — `vbrlab info [MODEL_DIR]`: architecture, parameters by class, stored bits.
 *
 * The output is deterministic (the same model directory argument gives the same bytes), so it
 * can serve as a text golden.
 */
#include "cli.h"

#include "../analysis/model.h"
#include "../io/st.h"

#include <stdio.h>
#include <string.h>

/* deepseek_v3: MLA sizes, RoPE scaling, routing, what is quantizable, MTP layers. */
static void print_dsv3(const hfc_config *c)
{
    const hfc_dsv3 *d = &c->ds;
    if (d->q_lora_rank > 0)
        printf("MLA            q_a_proj %d → q_a_layernorm → q_b_proj; ", d->q_lora_rank);
    else
        printf("MLA            q_proj; ");
    printf("kv_a_proj_with_mqa %d+%d → kv_a_layernorm → kv_b_proj\n", d->kv_lora_rank,
           d->qk_rope_dim);
    printf("               head dims nope %d + rope %d, v %d; RoPE %s", d->qk_nope_dim,
           d->qk_rope_dim, d->v_head_dim, d->rope_interleave ? "interleaved" : "half-split");
    if (d->yarn.on)
        printf(", YaRN factor %g (original %d positions), attention factor %g", d->yarn.factor,
               d->yarn.orig_max_pos, d->yarn.attn_factor);
    printf("; softmax scale %.6g\n", d->softmax_scale);
    printf("routing        sigmoid + e_score_correction_bias (selection only), top-%d of %d "
           "groups, scaling %g; %d shared expert(s), ungated\n", d->topk_group, d->n_group,
           d->routed_scaling, d->n_shared);
    printf("quantizable    q_a_proj q_b_proj kv_a_proj_with_mqa kv_b_proj o_proj, routed experts, "
           "shared experts, dense MLP (not: embeddings, lm_head, routers, norms)\n");
    if (d->n_mtp_layers > 0)
        printf("note           %d multi-token-prediction layer(s) (num_nextn_predict_layers) not "
               "run: the causal LM ignores them\n", d->n_mtp_layers);
}

/* deepseek_v4: attention kinds per layer, mHC, routing, what is quantizable. */
static void print_dsv4(const hfc_config *c)
{
    const hfc_dsv4 *v = &c->v4;
    static const char *const kind[] = {"sliding", "CSA", "HCA"};
    printf("attn kinds    ");
    for (int l = 0; l < c->n_layers; l++)
        printf("%s%s%s", l ? ", " : " ", kind[v->att_kind[l]], v->hash_moe[l] ? "+hash" : "");
    printf(" (window %d; CSA rate %d, indexer top-%d of %d heads × %d; HCA rate %d)\n",
           v->sliding_window, v->rate_csa, v->index_topk, v->index_heads, v->index_head_dim,
           v->rate_hca);
    printf("projections    wq_a %d → q_norm → wq_b; shared KV wkv %d; wo_a %d groups × %d → wo_b; "
           "per-head sinks\n", v->q_lora_rank, c->head_dim, v->o_groups, v->o_lora_rank);
    printf("rope           trailing %d / %d dims interleaved, main θ %g (sliding), compress θ %g\n",
           v->rope_dim_main, v->rope_dim_compress, v->theta_main, v->theta_compress);
    printf("mHC            %d streams, Sinkhorn %d iterations, eps %g\n", v->hc_mult,
           v->hc_sinkhorn_iters, v->hc_eps);
    printf("routing        %s + selection bias (hash layers: tid2eid), scaling %g, SwiGLU "
           "limit %g\n", v->scoring == HFC_SCORE_SQRTSOFTPLUS ? "sqrtsoftplus"
                         : v->scoring == HFC_SCORE_SIGMOID ? "sigmoid" : "softmax",
           v->routed_scaling, v->swiglu_limit);
    printf("quantizable    wq_a wq_b wkv wo_a wo_b, routed experts, shared experts (not: "
           "embeddings, head, norms, routers, compressors/indexers, hyper-connections, sinks)\n");
}

static void print_arch(const hfc_config *c)
{
    int moe = 0;
    for (int l = 0; l < c->n_layers; l++)
        moe += c->layer_is_moe[l] != 0;
    printf("architecture   %s\n", c->model_type);
    printf("layers         %d (%d MoE, %d dense MLP)\n", c->n_layers, moe, c->n_layers - moe);
    printf("hidden         %d, vocab %d, rms eps %g\n", c->hidden, c->vocab, c->rms_eps);
    printf("attention      %d query heads, %d KV heads, head_dim %d, RoPE theta %g%s%s\n",
           c->n_heads, c->n_kv_heads, c->head_dim, c->rope_theta,
           c->qkv_bias ? ", qkv bias" : "", c->qk_norm ? ", q/k norm" : "");
    if (moe) {
        printf("experts        %d routed, top-%d, width %d%s", c->n_experts,
               c->n_experts_per_tok, c->moe_intermediate,
               c->norm_topk_prob || c->arch == HFC_MIXTRAL ? ", top-k renormalised" : "");
        if (c->shared_intermediate > 0)
            printf("; shared expert width %d, %s\n", c->shared_intermediate,
                   c->arch == HFC_DEEPSEEK_V3 || c->arch == HFC_DEEPSEEK_V4 ? "no gate"
                                                                             : "sigmoid gate");
        else
            printf("; no shared expert\n");
    }
    if (moe < c->n_layers)
        printf("dense MLP      width %d\n", c->intermediate);
    printf("embeddings     %s\n", c->tie_embeddings ? "tied with lm_head" : "separate lm_head");
    if (c->arch == HFC_DEEPSEEK_V3)
        print_dsv3(c);
    if (c->arch == HFC_DEEPSEEK_V4)
        print_dsv4(c);
}

/* deepseek_v3/v4: the quantizable matrices grouped by class and projection name. */
static void print_quantizable(const model *m)
{
    enum { MAXK = 32 };
    char key[MAXK][64];
    long long cnt[MAXK] = {0}, par[MAXK] = {0};
    int nk = 0;
    for (size_t i = 0; i < model_tensor_count(m); i++) {
        const model_tensor *t = model_tensor_at(m, i);
        int q = t->cls == MODEL_C_ATTN || t->cls == MODEL_C_EXPERT || t->cls == MODEL_C_SHARED ||
                t->cls == MODEL_C_MLP;
        const char *end = strrchr(t->name, '.'), *beg = end;
        if (!q || t->rows < 2 || !end)
            continue;
        while (beg > t->name && beg[-1] != '.')
            beg--;
        char k[64];
        snprintf(k, sizeof k, "%s %.*s", model_class_name(t->cls), (int)(end - beg), beg);
        int j = 0;
        while (j < nk && strcmp(key[j], k))
            j++;
        if (j == nk && nk < MAXK)
            snprintf(key[nk++], sizeof key[0], "%s", k);
        if (j < nk) {
            cnt[j]++;
            par[j] += t->numel;
        }
    }
    printf("\nquantizable tensors by projection (tensors, parameters)\n");
    for (int j = 0; j < nk; j++)
        printf("  %-34s %4lld %12lld\n", key[j], cnt[j], par[j]);
}

int cmd_info(int argc, char **argv)
{
    const char *dir = cli_default_model();
    for (int i = 1; i < argc; i++) {
        if (cli_is_positional(argv[i]) && i == 1)
            dir = argv[i];
        else
            return cli_failf("info", "unexpected argument '%s' (usage: vbrlab info "
                             "[MODEL_DIR])", argv[i]);
    }
    model *m = NULL;
    vl_err e = {0};
    if (model_open(&m, dir, &e))
        return cli_fail("info", &e);
    model_info in;
    model_get_info(m, &in);
    printf("model          %s\n", dir);
    print_arch(model_config(m));
    printf("\nparameters by class\n");
    for (int k = 0; k < MODEL_C_COUNT; k++)
        if (k < MODEL_C_HC || in.params[k]) /* deepseek_v4's own classes only where present */
            printf("  %-16s %12lld  %6.2f%%\n", model_class_name((model_class)k),
               (long long)in.params[k],
               in.params_total ? 100.0 * (double)in.params[k] / (double)in.params_total : 0.0);
    printf("  %-16s %12lld\n", "total", (long long)in.params_total);
    if (model_config(m)->arch == HFC_DEEPSEEK_V3 || model_config(m)->arch == HFC_DEEPSEEK_V4)
        print_quantizable(m);
    /* stored dtypes of the used tensors, in st_dtype order */
    int used[ST_DTYPE_COUNT] = {0};
    for (size_t i = 0; i < model_tensor_count(m); i++) {
        int d = model_tensor_at(m, i)->stored_dtype;
        if (d >= 0 && d < ST_DTYPE_COUNT)
            used[d] = 1;
    }
    printf("\nstored         ");
    for (int d = 0, first = 1; d < ST_DTYPE_COUNT; d++)
        if (used[d]) {
            printf("%s%s", first ? "" : "+", st_dtype_name((st_dtype)d));
            first = 0;
        }
    printf(", %lld bytes of tensor data, %.2f bits per weight\n", (long long)in.stored_bytes,
           in.bits_per_weight);
    printf("tensors        %d used, %d unused in the files (%lld bytes in all)\n", in.n_tensors,
           in.n_unused, (long long)in.file_bytes);
    if (in.n_fp8 > 0)
        printf("fp8            %d tensors F8_E4M3 with %d×%d block scales (weight_scale_inv), "
               "dequantized to float32: the reference the quantizers start from\n", in.n_fp8,
               model_config(m)->fp8_block[0], model_config(m)->fp8_block[1]);
    model_close(m);
    return 0;
}
