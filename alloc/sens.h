/* alloc/sens.h — per-tensor sensitivity per calibration set, rate–distortion tables and the
 * additivity check: what the bit-allocation solver needs (alloc/solve.h).
 *
 * Tensors: every 2-D weight of a decoder layer that a quantizer would store (q/k/v/o_proj, each
 * routed expert's gate/up/down_proj, the shared expert's and a dense MLP's gate/up/down_proj).
 * Not here (kept at full precision): norms, biases, router, the 1×D shared_expert_gate, and
 * unless sens_params.embed_head (or granularity GGUF) the token embedding and LM head. Units of
 * sensitivity: each tensor (TENSOR granularity) or one group per layer × projection class
 * (GROUP: q, k, v, o; expert gate/up/down with all experts of the layer in one group; shared
 * gate/up/down; dense gate/up/down) — the granularity GGUF's per-tensor types can express;
 * GGUF adds the embedding and an untied head as units of their own (token_embd, output). The
 * embedding's noise goes into the lookup (the run starts at SENS_FROM_EMBED: the table is
 * looked up again), the head's into the final projection (the run starts at layer L); a tied
 * head is the embedding, so its unit perturbs both. They have no input statistics: the RD
 * table quantizes them with uniform importance and no XᵀX (as qb_bind applies them) and
 * measures them as under an isotropic input (rel_out = rel_imp = rel_w).
 *
 * Sensitivity by noise injection (HIGGS, Malinovskii et al. 2024, arXiv:2411.17525, §3 "linearity
 * theorem"; ExLlamaV3's per-tensor error measurement): every tensor W of the unit gets
 * ΔW = ε‖W‖_F · G/‖G‖_F, G standard Gaussian seeded by rng_child_seed(seed, tensor name) (the
 * same G for every ε, set and granularity), so each member's relative Frobenius error is
 * exactly ε. The model then runs from the unit's layer on, from the cached input of that layer
 * (analysis/fwd.h fwd_run_from), and KLD = mean over the set's tokens of KL(p_ref ‖ p_pert);
 * α = KLD/ε². One Gaussian direction is one sample of a random variable, so K draws (default
 * 2; draw d > 0 seeded by "NAME#d") are averaged and their spread (sample sd of the per-draw
 * α) kept. The KLD of every sequence is kept (mean over draws), and α's standard error is a
 * seeded bootstrap over sequences (tokens within a sequence are correlated): n_boot resamples
 * of the sequences with replacement, stream rng_child_seed(seed, "sens.bootstrap.SET"), the
 * same resamples for every unit of a set; SE = sd of the resampled α. α at two ε (default
 * 0.01, 0.03) and their ratio α(ε1)/α(ε0) are kept: the ratio is 1 where KLD is quadratic in
 * ΔW, the regime where the additive model can hold.
 *
 * Cost model (measured on the 2-core dev box, one set of N tokens, single-threaded OpenBLAS
 * about as fast as two threads for these shapes): a run from layer l costs about
 * N·[(L−l)·c_L + c_H], c_L ≈ 65 µs per token-layer (1.7 MFLOP), c_H ≈ 250 µs per token for the
 * LM head (8.4 MFLOP) plus the KL over V = 16384; units × |ε| × sets runs. GROUP on the
 * embedded model: 60 units × 2 ε × K draws × 4 sets = 960 runs (K = 2); TENSOR: 330 units ×
 * 2 ε × K per set. With N = 1024 that is ~0.5 s a run. α is measured on every token of the set
 * by default (sens_params.max_tokens = 0); max_tokens caps it (whole leading sequences) when
 * time matters more than the estimate. The forward runs SENS_CHUNK_TOKENS (1024) tokens at a
 * time; the set keeps its layer inputs ((L+1)·N·D floats) and the reference logits and
 * probabilities (2·N·V floats: 134 MB per 1024 tokens on the embedded model). Noise generation
 * (one Gaussian per weight) is negligible. The KL per token is vectorised (sens_token_kl, one
 * pass of float32 lanes; it was one libm expm1f per logit, ~20% of the stage). Threads: the
 * scan runs sens_params.threads units at once (default the kernels' count), each on its own
 * forward state with single-threaded BLAS, so a scan on T cores costs about 1/T of the wall
 * time at the same CPU time and the same numbers (docs/performance.md).
 * A perturbed routed expert changes only the tokens routed to it at its layer, but causal
 * attention spreads that to the rest of each touched sequence, and with 128-token sequences
 * nearly every sequence is touched, so no per-expert shortcut is taken.
 *
 * Rate–distortion, per calibration set: for every set s, tensor and format of a menu
 * (alloc/qfmt.h), fq_tensor with set s's own statistics (E[x²] = Σx²/rows and H = XᵀX per
 * input, per expert for routed experts; the few-token policy of fq_params, its use recorded
 * per entry), then rd_measure under the same statistics: rel_w, rel_imp and rel_out per set.
 * (Earlier versions quantized every column with the first set's statistics.)
 *
 * Predicted damage of a tensor in a format on set s (sens_tensor_dist; docs/sensitivity.md):
 *   SENS_E_REL  α_u · rel_w(s,t,f) · ρ_t(s)‖W_t‖² / Σ_{t'∈u} ρ_t'(s)‖W_t'‖²
 *   SENS_E_OUT  α_u · rel_out(s,t,f) · ρ_t(s)E_t(s) / Σ_{t'∈u} ρ_t'(s)N_t'(s)
 * u the unit holding t, E_t(s) = tr(W H Wᵀ)/rows the tensor's output energy per routed token,
 * N_t(s) = ‖W_t‖² tr(H_t)/(C_t·rows) the output energy of unit relative isotropic noise per
 * routed token, and ρ_t(s) the routing share: for a routed expert e, Σ over the set's tokens
 * of its selected routing weight / tokens (= fraction of tokens routed to e × their mean
 * routing weight, from the router statistics); 1 for every other tensor. An expert the set
 * routes 90% of its tokens to thus takes 90× the share of one it routes 1% to at the same
 * weight and error; without ρ the split was per routed token, so an expert seen 3 times
 * weighed like one seen 300 times. Summed over tensors these give the additive prediction
 * Σ_u α_u e_u (e_u pooled over the unit). At tensor granularity a unit is one tensor and ρ
 * cancels: α is measured per expert directly.
 *
 * Additivity check (sens_add.c; docs/sensitivity.md): can the additive prediction tell apart
 * assignments at the same bit budget? Bands: the menu's bit widths (qfmt bits; floor of the
 * bpw for ggml formats) in increasing order, one band per pair of adjacent widths (lo, hi), at
 * most SENS_MAX_BANDS; a menu of one width gives one band lo = hi. A draw of a band gives every
 * unit width hi with probability 1/2, else width lo (uniform among the menu's formats of that
 * width), so every band mixes two bit widths at about the same expected bpw and the
 * between-band spread never enters a correlation. add_draws draws per band (default 30),
 * seeded by "sens.additivity"; the same draws on every set. Held-out tokens: on each set of
 * n ≥ 2 sequences the last ceil(n/4) (sens_holdout) are held out; the prediction Σ_u α'_u e_u
 * takes α' from the per-sequence KLDs of the other sequences only (α itself, for the solver,
 * uses every sequence), and the measured KLD of a draw is the mean over the held-out
 * sequences (full forward of the fake-quantized model). The quantizer statistics (XᵀX,
 * routing shares) are the set's own, over all its tokens, as in allocation. Per set, band and
 * error form: Pearson, Spearman, the partial correlation controlling for the draw's bpw, the
 * ratio Σxy/Σx² (measured/predicted, slope through 0) and the least-squares slope, each with a
 * 95% percentile interval from a seeded bootstrap over draws (stream
 * "sens.additivity.boot.SET.BAND.FORM"). A band whose draws hold one distinct assignment has no
 * correlation; it is reported as such (n_distinct = 1).
 *
 * Ranks (core/par.h): the units of a set are handed out dynamically (par_queue: a rank that
 * finishes early takes the next unit), and the tables are shared by owner afterwards; each
 * unit's numbers depend on the unit only, so any number of ranks gives one process's bits.
 * With a journal (sens_params.journal, `vbrlab run`), each finished unit is committed to it as
 * soon as it is done, and a rerun takes it from there: item "sens/SET/UNIT" holding, per ε,
 * kld, α, SE, draw sd, the draws' α and the per-sequence KLD (float64), valid for the stage's
 * cache key, the number of draws and of sequences.
 *
 * Storage: sens_write / sens_read, docs/hdf5-schema.md section "vbrlab sens".
 * A sens_set serves concurrent runs on distinct workers (sens_set_workers); the scan's threads
 * are internal, and the other calls use one thread of their own. The model is only read.
 */
#ifndef VL_SENS_H
#define VL_SENS_H

#include "../analysis/model.h"
#include "../analysis/stats.h"
#include "../core/err.h"
#include "../core/rng.h"
#include "../core/par.h"
#include "../io/h5s.h"
#include "../io/journal.h"
#include "fq.h"
#include "qfmt.h"

#include <stdint.h>

/* GGUF: the units and items of GROUP plus the token embedding and the LM head, each one unit
 * (one GGUF tensor each: token_embd, output; a tied head is the embedding). */
typedef enum { SENS_TENSOR, SENS_GROUP, SENS_GGUF } sens_gran;

/* Projection classes (the group key within a layer). */
typedef enum {
    SENS_P_Q, SENS_P_K, SENS_P_V, SENS_P_O,
    SENS_P_EXP_GATE, SENS_P_EXP_UP, SENS_P_EXP_DOWN,
    SENS_P_SH_GATE, SENS_P_SH_UP, SENS_P_SH_DOWN,
    SENS_P_MLP_GATE, SENS_P_MLP_UP, SENS_P_MLP_DOWN,
    SENS_P_QA, SENS_P_QB, SENS_P_KVA, SENS_P_KVB, /* MLA (deepseek_v3) */
    /* deepseek_v4 attention (its experts use the EXP_/SH_ values: w1 gate, w3 up, w2 down) */
    SENS_P_WQ_A, SENS_P_WQ_B, SENS_P_WKV, SENS_P_WO_A, SENS_P_WO_B,
    /* the token embedding and the LM head (layout with embed_head or granularity gguf) */
    SENS_P_EMBED, SENS_P_HEAD,
    SENS_P_COUNT
} sens_proj;

typedef enum { SENS_E_REL, SENS_E_OUT } sens_err_kind;

#define SENS_DEFAULT_DRAWS 2   /* noise draws per unit and ε */
#define SENS_DEFAULT_BOOT 200  /* bootstrap resamples for α's SE */
#define SENS_MAX_DRAWS 64
#define SENS_MAX_THREADS 64    /* sens_params.threads */
#define SENS_LABEL_MAX 160     /* rng stream labels */

#define SENS_MAX_BANDS 8        /* additivity bands (adjacent bit-width pairs) */
#define SENS_DEFAULT_ADD_DRAWS 30 /* additivity draws per band */
#define SENS_MAX_ADD_DRAWS 10000

/* An additivity band: the two bit widths its draws mix (lo == hi: the menu has one). */
typedef struct {
    int lo, hi;
} sens_band;

/* Columns of an additivity band's statistics (sens_band_stats). */
enum {
    SENS_BS_N,          /* draws with a finite prediction and measurement */
    SENS_BS_DISTINCT,   /* distinct assignments among them */
    SENS_BS_PEARSON, SENS_BS_SPEARMAN,
    SENS_BS_PARTIAL,    /* Pearson partial correlation of measured and predicted given bpw */
    SENS_BS_RATIO, SENS_BS_RATIO_LO, SENS_BS_RATIO_HI, /* Σxy/Σx², 95% bootstrap interval */
    SENS_BS_SLOPE, SENS_BS_SLOPE_LO, SENS_BS_SLOPE_HI, /* least-squares slope, interval */
    SENS_BS_COUNT
};

/* One quantizable tensor. */
typedef struct {
    int mi;          /* index in model_tensor_at() */
    char *name;      /* Hugging Face name, owned */
    int layer, expert; /* expert −1 unless a routed expert */
    sens_proj proj;
    int rows, cols;
    int64_t n;       /* rows·cols */
    int unit;        /* index of its sensitivity unit */
} sens_tensor;

/* Start layer of a noise run for tensor t in a model of L layers: its layer; the embedding
 * SENS_FROM_EMBED (the lookup is redone with the perturbed table); the LM head L. */
#define SENS_FROM_EMBED (-1)
int sens_tensor_from(const sens_tensor *t, int n_layers);

typedef struct {
    double eps[2];        /* relative Frobenius noise levels (default 0.01, 0.03) */
    uint64_t seed;        /* noise seed (default 1) */
    sens_gran gran;       /* default SENS_GROUP */
    int max_tokens;       /* tokens per set for α and additivity (leading whole sequences,
                             at least one); 0 = all (default) */
    fq_params fq;         /* quantizer options and few-token policy (default fq_defaults()
                             with min_tokens 16 and policy rtn) */
    int add_draws;        /* additivity draws per band (default 30; 0 = no check) */
    int add_set;          /* set whose quantized tensors on_add sees (default 0) */
    int progress;         /* progress lines on stderr (tty only) */
    int draws;            /* noise draws per unit and ε, averaged (default 2; 1..64) */
    int boot;             /* bootstrap resamples for α's SE (default 200; < 2: no SE) */
    jr *journal;          /* per-item commit (io/journal.h): a unit of a set found there is
                             taken from it, a unit run is appended; NULL (default): none */
    par_fault *fault;     /* simulated crash for tests (core/par.h); NULL (default): none */
    int embed_head;       /* 1: the token embedding and the LM head are tensors (units) too;
                             always with gran SENS_GGUF (default 0) */
    int threads;          /* units scanned at once, each on its own thread with single-threaded
                             BLAS inside (the numbers do not depend on it); 0 (default): the
                             kernels' thread count (core/kern.h kern_threads) */
    int64_t keep_f32;     /* bytes: each set keeps the model in float32 for its runs when that
                             copy is at most this large (sens_set_keep_f32; default
                             SENS_KEEP_F32_DEFAULT, 1 GiB; 0: never) */
} sens_params;

#define SENS_KEEP_F32_DEFAULT ((int64_t)1 << 30)

sens_params sens_defaults(void);

/* Sequences of a set of n_seq × seq_len that α uses under p->max_tokens (whole leading
 * sequences, at least one). Pure. */
int sens_seqs_used(const sens_params *p, int n_seq, int seq_len);

/* Everything vbrlab sens measures; plain, owned by itself (sens_result_free). Index order:
 * [set][unit], [tensor][format], [set][tensor][format], row-major. */
typedef struct {
    sens_gran gran;
    int n_tensors;
    sens_tensor *t;         /* [T] */
    /* whole-model bits (alloc/mbits.h): every weight of the model, and the bits of the
       tensors outside t[] at their kept precision under MB_STORED and MB_GGUF (NaN: a store
       written before these were kept) */
    int64_t model_weights;
    double kept_bits[2];
    int n_units;
    char **unit_name;       /* [U] tensor name, or the group's name with the expert index
                               written "*" (model.layers.3.mlp.experts.*.down_proj.weight) */
    int n_sets;
    char **set_name;        /* [S] */
    int64_t *set_tokens;    /* [S] tokens α was measured on */
    int *set_seqs;          /* [S] sequences α was measured on (0: not measured) */
    double eps[2];
    uint64_t seed;
    double *kld[2];         /* [S × U] mean KLD at eps[k] (nats/token), mean over draws */
    double *alpha[2];       /* [S × U] kld/eps² */
    int n_draws, n_boot;    /* noise draws averaged; bootstrap resamples (0: not measured) */
    double *alpha_se[2];    /* [S × U] bootstrap SE of alpha over sequences (NaN: < 2) */
    double *draw_alpha[2];  /* [S × U × n_draws] alpha of each noise draw */
    double *alpha_draw_sd[2]; /* [S × U] sample sd of draw_alpha (NaN for one draw) */
    double **seq_kld;       /* [S] → [2 × U × set_seqs[s]] mean KLD of each sequence at
                               eps[k] (mean over draws); NULL where not measured */
    /* rate–distortion */
    int n_formats;
    qfmt *fmt;              /* [F] */
    char *spec;             /* the menu spec */
    char *few_policy;       /* fq policy name */
    double min_tokens;      /* its threshold */
    double *bpw;            /* [T × F] exact bits per weight */
    double *rel_w;          /* [S × T × F] all three: tensor t quantized in format f with set
                               s's own statistics, measured under set s's statistics */
    double *rel_imp;        /* [S × T × F] */
    double *rel_out;        /* [S × T × F] */
    unsigned char *few;     /* [S × T × F] 1 when the few-token policy applied */
    double *w_norm2;        /* [T] ‖W‖² */
    double *out_energy;     /* [S × T] tr(W H Wᵀ)/rows */
    double *noise_energy;   /* [S × T] ‖W‖²·tr(H)/(C·rows) */
    double *route_share;    /* [S × T] ρ: routed expert: Σ selected weight / tokens; else 1 */
    /* additivity (n_add = 0 when not run): A = n_bands × add_draws draws, shared by sets */
    int n_add, add_draws, n_bands;
    sens_band *band;        /* [B] */
    int *add_band;          /* [A] band of each draw */
    int *add_choice;        /* [A × U] format index per unit */
    double *add_bpw;        /* [A] achieved bpw over the tensors */
    double *add_measured;   /* [S × A] mean KLD on the set's held-out sequences (NaN: the set
                               was not checked) */
    double *add_pred[2];    /* [S × A] Σ α'·e with SENS_E_REL, SENS_E_OUT (α' from the other
                               sequences) */
    int *add_holdout;       /* [S × 2] first held-out sequence, count (0: not checked) */
    double *add_stats;      /* [S × B × 2 × SENS_BS_COUNT] per set, band, error form */
} sens_result;

/* The quantizable tensors of M (in model order) and their units under GRAN (with EMBED_HEAD or
 * gran SENS_GGUF also the token embedding and, untied, the LM head); fills r->gran, t,
 * n_tensors, unit_name, n_units, model_weights, kept_bits. */
int sens_layout(sens_result *r, const model *m, sens_gran gran, int embed_head, vl_err *err);

/* Group-granularity unit name of tensor t into out[cap]: its name with ".experts.N." written
 * ".experts.*." (a glob matching every expert of the layer's projection); other tensors keep
 * their own name. Pure. */
void sens_group_name(char *out, size_t cap, const sens_tensor *t);

/* Statistics input (slot, expert) that feeds tensor t (stats.h). */
void sens_tensor_slot(const sens_tensor *t, stat_slot *slot, int *expert);

/* A calibration set prepared for sensitivity runs: the reference forward, every layer's
 * input, the reference distributions. One run at a time per worker (sens_set_workers); the
 * model must outlive it. */
typedef struct sens_set sens_set;

/* Run the reference on ids [n_seq × seq_len] (all of them; the caller trims). Memory:
 * (L+1)·N·D + N·V floats. */
int sens_set_new(sens_set **out, const model *m, const int32_t *ids, int n_seq, int seq_len,
                 vl_err *err);
/* Mean KL(ref ‖ W) over the set's tokens (nats), running W from layer `from` (0..L) on the
 * cached input, or from SENS_FROM_EMBED: the embedding lookup redone with W's table (the
 * set keeps its ids). W must equal the reference binding in layers < from. */
int sens_set_kld(sens_set *s, const model_weights *w, int from, double *kld, vl_err *err);
/* The same per sequence: seq_kld[n_seq] = mean KL over each sequence's tokens. */
int sens_set_kld_seq(sens_set *s, const model_weights *w, int from, double *seq_kld,
                     vl_err *err);
/* Threads: a set has one worker (forward state and buffers) per concurrent run; worker 0 is
 * the one the calls above use. sens_set_workers grows the set to N workers; runs on distinct
 * workers may go on at the same time in different threads (the set's reference data is only
 * read), each worker serving one run at a time. */
int sens_set_workers(sens_set *s, int n, vl_err *err);
/* Every forward on a set runs with one-thread BLAS, the reference run's, so that a perturbed
 * run's logits differ from the reference's only by the perturbation: OpenBLAS's sgemm gives
 * other bits on 2 threads than on 1. sens_set_new and the calls above set it themselves; the
 * _on calls below run on the caller's setting, which must be sens_blas_single's (the scan's
 * and the additivity check's threads set it before starting). Returns the count to give
 * sens_blas_restore. */
int sens_blas_single(void);
void sens_blas_restore(int n);
/* sens_set_kld_seq on worker WORKER (< the workers made). */
int sens_set_kld_seq_on(sens_set *s, int worker, const model_weights *w, int from,
                        double *seq_kld, vl_err *err);
/* sens_set_kld_part on worker WORKER. */
int sens_set_kld_part_on(sens_set *s, int worker, const model_weights *w, int from, int q0,
                         int nq, double *kld, vl_err *err);
/* KL(p̂ ‖ softmax(z)) of one token (nats): z0 the reference logits, p the reference
 * probabilities (float32) with sum psum, p̂ = p/psum, z the perturbed logits, all [V]; exactly
 * 0 for z = z0 (sens_kld.c: float64 result, float32 lanes within blocks of 64 entries; relative
 * error ≲ 1e-6 whatever the size of z − z0). Pure. */
double sens_token_kl(const float *z0, const float *p, double psum, const float *z, int V);
/* Mean KL over sequences [q0, q0 + nq) only (the held-out part of a set). The forwards run the
 * reference run's chunks that hold them (SENS_CHUNK_TOKENS tokens each), so a small set runs
 * whole. */
int sens_set_kld_part(sens_set *s, const model_weights *w, int from, int q0, int nq,
                      double *kld, vl_err *err);
int64_t sens_set_tokens(const sens_set *s);
int sens_set_seqs(const sens_set *s);
/* Keep the whole model in float32 for the set's runs (analysis/mweights.h mw_resident) when
 * that copy takes at most MAX_BYTES: a perturbed run then converts nothing. Stored weights are
 * converted per run otherwise (every layer of the suffix and the LM head's tiles: with BF16
 * weights the conversion and its finiteness check were ~20 % of a scan's samples). The same
 * bits either way. Returns 1 if kept (or already), 0 if the copy would be larger, < 0 on
 * error. The copy lives until sens_set_free. */
int sens_set_keep_f32(sens_set *s, int64_t max_bytes, vl_err *err);
/* The binding the set's runs start from: the kept float32 copy, else model_base. A perturbed
 * binding is a clone of it (model_weights_clone) with the unit's slots redirected. */
const model_weights *sens_set_base(const sens_set *s);
void sens_set_free(sens_set *s); /* NULL ok */

/* α of every unit of r (layout done) on set index si (< r->n_sets, arrays allocated by
 * sens_alloc_alpha). */
int sens_alloc_alpha(sens_result *r, int n_sets, const char *const *names, vl_err *err);
int sens_alpha(sens_result *r, int si, const model *m, sens_set *s, const sens_params *p,
               vl_err *err);

/* The same for one unit u only (both ε). */
int sens_unit_alpha(sens_result *r, int si, int u, const model *m, sens_set *s,
                    const sens_params *p, vl_err *err);

/* The noisy copy of tensor t: out[rows × cols] = W + eps‖W‖ G/‖G‖ (G seeded by seed and t's
 * name; draw d > 0: by "NAME#d"). Deterministic. sens_noise is draw 0. */
int sens_noise(float *out, const float *w, const sens_tensor *t, double eps, uint64_t seed,
               vl_err *err);
int sens_noise_draw(float *out, const float *w, const sens_tensor *t, double eps, uint64_t seed,
                    int draw, vl_err *err);

/* fn(ctx, worker, i) for every i in [0, n) on up to nt threads (worker 0 is the caller; each
 * thread has its own worker index < nt), each item once, handed out in increasing order as
 * threads free up; once an item returns non-zero no further item is started. fn keeps its
 * results and errors per item or per worker. BLAS threads are the caller's to set. */
typedef int (*sens_item_fn)(void *ctx, int worker, int i);
void sens_par_items(int n, int nt, sens_item_fn fn, void *ctx);

/* Bootstrap standard error of the mean of x[0..n): sd of the means of n_boot resamples of n
 * with replacement, drawn from rng_child_seed(seed, label). NaN when n < 2 or n_boot < 2. */
double sens_bootstrap_se(const double *x, int n, int n_boot, uint64_t seed, const char *label);

/* RD tables for the menu `spec`, one per set: every tensor quantized in every format with set
 * s's own statistics stats[s] and measured under them (XᵀX required on every quantized input
 * of every set for GPTQ formats; rel_out is NaN where a set lacks it). The allocation for set
 * s is thereby optimised on the quantizer eval applies with s's statistics. If keep_q is not
 * NULL, *keep_q gets every tensor quantized with set p->add_set's statistics [T × F × n]
 * (float32, one allocation, vl_free). */
int sens_rd(sens_result *r, const model *m, const char *spec, stat_acc *const *stats,
            const sens_params *p, float **keep_q, vl_err *err);
/* The same a set at a time (what sens_run does: each set's tensors are quantized once, for
 * its RD rows and its additivity check alike): sens_rd_begin parses the menu and allocates
 * the tables (every entry NaN); sens_rd_set fills set si's rows from its statistics ACC, the
 * same numbers sens_rd gives, and with Q not NULL hands over every tensor quantized with them
 * (*q as sens_quantize_set's). */
int sens_rd_begin(sens_result *r, const char *spec, const sens_params *p, vl_err *err);
int sens_rd_set(sens_result *r, const model *m, stat_acc *acc, int si, const sens_params *p,
                float **q, vl_err *err);

/* Outside the quadratic regime: |α(ε1)/α(ε0) − 1| > SENS_QUAD_TOL for unit u on set si (the
 * additive prediction assumes KLD ∝ ε²; a ratio far from 1 means routing flips or higher
 * orders). 0 when inside or not measured. Pure. */
#define SENS_QUAD_TOL 0.25
int sens_nonquadratic(const sens_result *r, int si, int u);

/* 1 when α was measured at two distinct noise levels, so the quadratic-regime check means
 * something; with one level α(ε1)/α(ε0) is 1 by construction and reports must say "not
 * checked" rather than "inside". Pure. */
int sens_quad_checked(const sens_result *r);

/* ρ of tensor t on the set of ACC (formula above): Σ selected routing weight of its expert /
 * tokens of the set for a routed expert (0 when the set has no tokens; NaN without router
 * statistics), 1 for any other tensor. */
double sens_route_share(const stat_acc *acc, const sens_tensor *t);

/* Predicted damage of tensor ti in format fi on set si (formula above). NaN if unknown. */
double sens_tensor_dist(const sens_result *r, int si, int ti, int fi, sens_err_kind kind);

/* Offset of tensor ti's first format in the quantized-tensor layout [tensor][format][n]. */
size_t sens_q_offset(const sens_result *r, int ti);

/* Every tensor of r (RD done) quantized in every format with the statistics ACC of set si
 * (the layout of sens_rd's keep_q; *q vl_malloc'd). */
int sens_quantize_set(const sens_result *r, const model *m, const stat_acc *acc, int si,
                      const sens_params *p, float **q, vl_err *err);

/* Bind assignment `choice` (format index per unit) from q (sens_quantize_set's layout), run s
 * from layer 0: *measured = mean KLD; *bpw over the quantized tensors; pred[0], pred[1] = Σ over
 * tensors of sens_tensor_dist on set si (SENS_E_REL, SENS_E_OUT). */
int sens_assign_eval(const sens_result *r, const model *m, sens_set *s, const float *q,
                     int si, const int *choice, double *bpw, double *measured, double pred[2],
                     vl_err *err);

/* sens_tensor_dist with the unit's α given (a). */
double sens_tensor_dist_alpha(const sens_result *r, int si, int ti, int fi, sens_err_kind kind,
                              double a);

/* ---- additivity building blocks (sens_band.c; pure) ---- */

/* Bit width of format f (bpw: its bits per weight on some tensor): bits for rtn/gptq, floor(bpw)
 * for ggml. */
int sens_fmt_width(const qfmt *f, double bpw);
/* Bands of a menu of widths width[F] (formula above); returns the count (≤ max, ≥ 1 if F ≥ 1). */
int sens_bands(const int *width, int F, sens_band *out, int max);
/* One draw of band b for U units into choice[U] (formats of width[F]). */
void sens_band_draw(const sens_band *b, const int *width, int F, int U, rng *g, int *choice);
/* Held-out sequences of a set of n: count ceil(n/4) from *first = n − count; 0 when n < 2. */
int sens_holdout(int n_seq, int *first);
/* Pearson partial correlation of x and y given z over n points (NaN below 4 points or with no
 * spread in x or y; z without spread: the plain Pearson r). */
double sens_partial_corr(const double *x, const double *y, const double *z, int n);
/* Statistics of one band: x = pred[n], y = meas[n], z = bpw[n], assignments choice[n × U];
 * points with a non-finite x or y are left out. NaN correlations below 3 points or with a
 * single distinct assignment; intervals from n_boot resamples of the draws (stream
 * rng_child_seed(seed, label); NaN when n_boot < 2). */
int sens_band_stats(double out[SENS_BS_COUNT], const double *pred, const double *meas,
                    const double *bpw, const int *choice, int U, int n, int n_boot,
                    uint64_t seed, const char *label, vl_err *err);

/* The additivity check on set si (s prepared from that set's sequences, q its quantized
 * tensors; formula above). The draws are made on the first call (every set sees the same). */
int sens_additivity(sens_result *r, int si, const model *m, sens_set *s, const float *q,
                    const sens_params *p, vl_err *err);

/* Store: /sens in an open writable store; read back into a fresh result (names owned). */
int sens_write(const sens_result *r, h5s_store *st, vl_err *err);
int sens_read(sens_result *r, h5s_store *st, vl_err *err);

const char *sens_proj_name(sens_proj p); /* "q", "exp_gate", ...; static */
/* The projection class of an HF tensor name (the one rule, used by sens_layout and the plots):
 * a projection of decoder layer "layers.N" (attention q/k/v/o, MLA q_a/q_b/kv_a/kv_b,
 * deepseek_v4 wq_a/wq_b/wkv/wo_a/wo_b; gate/up/down — or w1/w3/w2 — of routed experts, the
 * shared expert or the dense MLP). Returns the sens_proj and sets *layer and *expert (the
 * number after "experts.", −1 for other tensors and for a group's "experts.*"), or −1 for
 * anything else (router, norms, embeddings, ...). Pure. */
int sens_proj_of_name(const char *name, int *layer, int *expert);
const char *sens_gran_name(sens_gran g); /* "tensor" | "group" */
int sens_gran_parse(const char *s, sens_gran *out, vl_err *err);

void sens_result_free(sens_result *r); /* frees the arrays, leaves r zeroed; NULL ok */

/* ---------------------------------------------------------------- the sens stage */

/* Called by sens_run on set p->add_set once its additivity check is done, with the prepared
 * set (every sequence) and that set's quantized tensors (both valid only during the call): `vbrlab sens` prints
 * the uniform baselines there. A non-zero return stops the run. */
typedef int (*sens_add_fn)(void *ctx, const sens_result *r, const model *m, sens_set *s,
                           const float *q, vl_err *err);

/* The sens stage, shared by `vbrlab sens` and the runner (sens_run.c): the ids (leading whole
 * sequences up to p->max_tokens, at least one) and statistics of sets NAMES[0..n) of the stats
 * store ST (/sets/<name>/input_ids, /stats/<name>), then sens_layout, sens_alloc_alpha,
 * sens_rd_begin on format menu SPEC, and per set sens_rd_set (its quantized tensors kept for
 * the check), sens_alpha and sens_additivity (held-out sequences of the set): the numbers of
 * sens_rd followed by sens_quantize_set, with one quantization a set instead of two.
 * r is filled for sens_write; on failure it is freed. */
int sens_run(sens_result *r, const model *m, h5s_store *st, const char *const *names, int n,
             const char *spec, const sens_params *p, sens_add_fn on_add, void *ctx,
             vl_err *err);

#endif
