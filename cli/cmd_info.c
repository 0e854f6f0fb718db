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
            printf("; shared expert width %d, sigmoid gate\n", c->shared_intermediate);
        else
            printf("; no shared expert\n");
    }
    if (moe < c->n_layers)
        printf("dense MLP      width %d\n", c->intermediate);
    printf("embeddings     %s\n", c->tie_embeddings ? "tied with lm_head" : "separate lm_head");
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
    model_close(m);
    return 0;
}
