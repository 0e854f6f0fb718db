/* analysis/fwd_dsv4.h — the deepseek_v4 forward (fwd.c dispatches here; use fwd.h).
 *
 * Not included by fwd.h's users: fwd.c calls in here (this header does not include fwd.h, so
 * the modules form no include circle).
 * DeepseekV4ForCausalLM as transformers 5.17 computes it for one prefill without a cache
 * (analysis/fwd_dsv4.c has the math). The residual is hc_mult streams: a layer's input and
 * output rows are Hc·D wide ([token][stream][D]), and fwd_embed repeats the embedding into
 * every stream. Hash-routed layers route by token id, so fwd_run_from reuses the ids of the
 * state's last fwd_run (same batch shape, else VL_EARG).
 */
#ifndef VL_FWD_DSV4_H
#define VL_FWD_DSV4_H

#include "../core/err.h"
#include "model.h"
#include "mweights.h"
#include "tap.h"

#include <stdint.h>

typedef struct fwd_v4 fwd_v4;

int fwd_v4_new(fwd_v4 **out, const model *m, int max_seq, int max_len, vl_err *err);
void fwd_v4_free(fwd_v4 *s);

/* ids: NULL to reuse the last run's (hs_in then holds layer FROM's input streams);
 * else the batch's ids, and hs_in NULL starts from the embeddings at layer 0. route_all:
 * fwd_opts.route_all_experts (fwd.h). MW: the caller's stage cache (each layer's float32
 * weights while it runs). */
int fwd_v4_run(fwd_v4 *s, mw_cache *mw, const model_weights *w, const int32_t *ids, int from,
               const float *hs_in, int n_seq, int seq_len, int route_all,
               const tap_set *taps, const float **logits, vl_err *err);

/* Layers [from, to) of the batch ids in place on hs [N × Hc·D] (fwd_run_layers). */
int fwd_v4_layers(fwd_v4 *s, mw_cache *mw, const model_weights *w, const int32_t *ids,
                  int from, int to, float *hs, int n_seq, int seq_len, int route_all,
                  const tap_set *taps, vl_err *err);

/* Layer 0's input streams of ids[0..n) into out [n × Hc·D]. */
int fwd_v4_embed(const model *m, const model_weights *w, const int32_t *ids, int n,
                 float *out, vl_err *err);

const float *fwd_v4_final_hidden(const fwd_v4 *s); /* [N × D], model.norm(hc_head(h)) */
double fwd_v4_flops(const fwd_v4 *s);

#endif
