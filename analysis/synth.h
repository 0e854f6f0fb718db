/* analysis/synth.h — random-weight checkpoints of any supported architecture (`vbrlab synth`).
 *
 * synth_write reads a config.json, lists the tensors the architecture needs with the loader's
 * own plan (model_plan_open: the same names and shapes model_open expects), and writes a
 * checkpoint that model_open loads back: sharded safetensors (model-0000k-of-0000N), the
 * model.safetensors.index.json weight map, config.json (quantization_config set for FP8,
 * removed otherwise) and, when asked, a copy of a tokenizer.
 *
 * Streaming: one tensor at a time and, inside a tensor, one chunk (FP8: one strip of block
 * rows) at a time, so the memory used is a few MB whatever the model size: checkpoints larger
 * than RAM can be made.
 *
 * Values (chosen so a forward stays finite; nothing about them is meant to look trained):
 *   every weight matrix and embedding: uniform on [−a, a] with a = √3/√cols (standard
 *     deviation 1/√fan_in);
 *   RMSNorm weights ("…norm.weight") and hyper-connection scales ("…_scale"): 1;
 *   biases ("….bias", e_score_correction_bias), attention sinks, hyper-connection bases
 *     ("…_base"): 0;
 *   deepseek_v4 hash-routing tables (tid2eid [V × K]): row t = (s_t, s_t+1, …, s_t+K−1) mod E
 *     with s_t uniform in [0, E), K distinct experts per token, stored F32 (exact integers).
 * Each tensor's stream is seeded with rng_child_seed(seed, tensor name) (core/rng), so a
 * tensor's values depend on the seed and its name only, not on sharding or dtype.
 *
 * Dtypes: f32 (all F32), bf16 (all BF16 but tid2eid), fp8 (DeepSeek's release layout: every
 * 2-D projection of attention, dense MLP, routed and shared experts in F8_E4M3 with a float32
 * "<name>_scale_inv" per block × block tile (scale = max|w| / 448 of the tile, values rounded
 * to nearest even), everything else BF16, e_score_correction_bias F32;
 * quantization_config {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
 * "weight_block_size": [block, block]} in the written config.json).
 *
 * Atomic output: everything is written into a fresh sibling directory OUT.synth-XXXXXX which is
 * renamed to OUT at the end; on any failure it is removed, so OUT either does not exist or is
 * complete. OUT must not exist (an empty directory is accepted and replaced).
 *
 * Errors: a bad config is the loader's error (VL_ECONFIG naming the file and field), an
 * existing OUT VL_EARG, I/O VL_EIO naming the file. Thread-safe (no shared state).
 */
#ifndef VL_SYNTH_H
#define VL_SYNTH_H

#include "../core/err.h"
#include "../io/st.h"

#include <stdint.h>

typedef struct {
    st_dtype dtype;          /* ST_BF16 (default), ST_F8_E4M3 or ST_F32 */
    uint64_t seed;           /* default 0 */
    int64_t shard_bytes;     /* a shard closes before exceeding this (a larger tensor gets a
                                shard of its own); default 5·10⁹ as Hugging Face writers */
    int fp8_block;           /* FP8 tile side, default 128 */
    const char *tokenizer;   /* directory holding tokenizer.json (+ tokenizer_config.json when
                                present) to copy, or NULL */
} synth_opts;

typedef struct {
    int64_t n_tensors;       /* tensors written (block scales included) */
    int n_shards;
    int64_t data_bytes;      /* tensor bytes over all shards (the index's total_size) */
    int64_t params;          /* parameters (block scales excluded) */
} synth_report;

synth_opts synth_opts_defaults(void);

/* Write the checkpoint of CONFIG_PATH (a config.json) into OUT_DIR. rep may be NULL. */
int synth_write(const char *config_path, const char *out_dir, const synth_opts *o,
                synth_report *rep, vl_err *err);

#endif
