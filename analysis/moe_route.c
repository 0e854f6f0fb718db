/* analysis/moe_route.c — DeepSeek-V3's sigmoid, group-limited, bias-corrected router
 * (moe_route.h has the math; transformers' DeepseekV3TopkRouter is the reference). */
#include "moe_route.h"

#include <math.h>

/* Index of the largest v[i] over i < n with !skip[i]; ties to the lower index. */
static int argmax_free(const float *v, const unsigned char *skip, int n)
{
    int best = -1;
    for (int i = 0; i < n; i++)
        if (!skip[i] && (best < 0 || v[i] > v[best]))
            best = i;
    return best;
}

void moe_route_dsv3(const hfc_config *c, const float *logits, const float *bias, float *scratch,
                    int *sel, float *w)
{
    enum { MAXG = 4096 };
    int E = c->n_experts, K = c->n_experts_per_tok, G = c->ds.n_group, per = E / G;
    float *s = scratch, *choice = scratch + E;
    unsigned char taken[MAXG] = {0}, keep[MAXG] = {0};
    float gscore[MAXG];
    for (int e = 0; e < E; e++) {
        s[e] = 1.0f / (1.0f + expf(-logits[e]));
        choice[e] = s[e] + bias[e];
    }
    for (int g = 0; g < G; g++) { /* top-2 sum of each group */
        const float *cg = choice + (size_t)g * per;
        int a = 0;
        for (int i = 1; i < per; i++)
            a = cg[i] > cg[a] ? i : a;
        int b = a == 0 ? 1 : 0;
        for (int i = 0; i < per; i++)
            b = i != a && cg[i] > cg[b] ? i : b;
        gscore[g] = cg[a] + cg[b];
    }
    for (int j = 0; j < c->ds.topk_group; j++) {
        int g = argmax_free(gscore, taken, G);
        taken[g] = 1;
        keep[g] = 1;
    }
    for (int e = 0; e < E; e++) {
        if (!keep[e / per])
            choice[e] = 0.0f;
        taken[e] = 0;
    }
    float sum = 0;
    for (int j = 0; j < K; j++) {
        sel[j] = argmax_free(choice, taken, E);
        taken[sel[j]] = 1;
        w[j] = s[sel[j]];
        sum += w[j];
    }
    float scale = (float)c->ds.routed_scaling;
    for (int j = 0; j < K; j++)
        w[j] = (c->norm_topk_prob ? w[j] / (sum + 1e-20f) : w[j]) * scale;
}
