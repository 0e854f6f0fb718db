/* alloc/qfmt.h — quantization formats: names, menus (spec grammar) and exact bit accounting.
 *
 * A format is method × bits × group size × symmetry × rotation:
 *   method   rtn | gptq        (how the integers are chosen; the stored layout is the same)
 *   bits     1..8              (bits per weight integer)
 *   group    16, 20, 24, 32, 48, 64, 128 or 0 (0 = one group per row; qfmt_groups); groups
 *                              run along a row of W, i.e. along the input dimension of an HF
 *                              (out, in) weight. 16/20/24/48 exist for bit steps: with
 *                              32/64/128/row alone a uniform 2- or 3-bit format stores nothing
 *                              between 2.28 and 2.5 bpw nor between 2.56 (b2 g32 asym) and
 *                              3.06 (b3 row sym, 256 columns); b2 g48 gives 2.38/2.42 and
 *                              b2 g24/g20/g16 2.69–3.13, so the menu
 *                              "b=2,3:g=16,20,24,32,48,64,128,row:s=sym,asym" steps ≤ 0.15 bpw
 *                              over 2.0–3.0 (tests/test_qfmt.c checks it)
 *   sym      asymmetric: w ≈ s·(q − z), q, z ∈ [0, 2^b − 1] integers, s an fp16 scale;
 *            symmetric:  w ≈ d·q, q ∈ [−2^(b−1), 2^(b−1) − 1], d a signed fp16 scale
 *   rotation none | randomized Hadamard on the input dimension (alloc/hadamard.h); the seed
 *            comes from the run's config, so a rotation costs no stored bits.
 *
 * Bit accounting (exact; the allocation budget is counted in these bits). For a tensor of
 * R rows × C cols with group size g (g = C when per row), every row has G = ceil(C / g) groups
 * (the last one partial when g does not divide C) and every group stores
 *   - one fp16 scale: 16 bits,
 *   - asymmetric only: the integer zero point z at `bits` bits (the GPTQ/AutoGPTQ "qzeros"
 *     layout: the zero is an integer level in [0, 2^b − 1], so 0.0 is always representable),
 * so  total = R·C·b + R·G·(16 + (asym ? b : 0)),  bpw = total / (R·C).
 * Not counted: GPTQ's optional act-order permutation (see alloc/gptq.h, gptq_perm_bits).
 *
 * Canonical name: METHOD-bB-GROUP-SYM[-had] with GROUP gN or "row", SYM "sym" | "asym", e.g.
 * "rtn-b2-g64-asym", "gptq-b3-g128-sym-had", "rtn-b8-row-sym".
 *
 * Menu spec grammar (the --formats argument):
 *   spec    := clause (';' clause)*
 *   clause  := method (':' option)*  |  'hadamard'
 *   method  := 'rtn' | 'gptq'
 *   option  := 'b=' ilist            bits, required       e.g. b=2,3  b=1..8
 *            | 'g=' glist            group sizes           default g=64;
 *                                                          values 16|20|24|32|48|64|128|row
 *            | 's=' slist            symmetry              default s=asym; values asym|sym
 *            | 'r=' rlist            rotation              default r=none; values none|had
 *   ilist   := item (',' item)*,  item := INT | INT '..' INT  (ranges inclusive)
 * A clause 'hadamard' adds the Hadamard-rotated twin of every format of every method clause
 * (before or after it). The menu is every combination of each clause's values, in clause order,
 * then bits, group, symmetry, rotation; duplicates are dropped. Whitespace is not allowed.
 * Example: "rtn:b=1..8:g=64;gptq:b=2..4:g=64,128;hadamard" → 8 + 6 formats, each with and
 * without rotation, 28 in all. Errors name the spec and the offending token.
 *
 * llama.cpp formats (alloc/ggml_fmt.h): method ggml, named "ggml-TYPE" with TYPE llama.cpp's
 * type name (ggml-q4_K, ggml-iq2_xs, ggml-f16); a row of C weights takes ceil(C / block) blocks
 * of the type's byte size, so bits = R·ceil(C/block)·bytes·8, the count llama.cpp's file has
 * (a C that is not a multiple of the block is refused when quantizing). Menu clause:
 *   'ggml:' TYPE (',' TYPE)*     e.g. ggml:q2_K,q3_K,iq2_xs,iq2_s
 * The 'hadamard' clause does not apply to ggml formats (a GGUF file cannot store a rotation).
 *
 * Everything here is pure and thread-safe.
 */
#ifndef VL_QFMT_H
#define VL_QFMT_H

#include "../core/err.h"

#include <stdint.h>

typedef enum { QFMT_RTN, QFMT_GPTQ, QFMT_GGML } qfmt_method;
typedef enum { QFMT_ROT_NONE, QFMT_ROT_HAD } qfmt_rot;

typedef struct {
    qfmt_method method;
    int bits;      /* rtn/gptq: 1..8; QFMT_GGML: the llama.cpp block type (ggf_type of
                      alloc/ggml_fmt.h, read it with qfmt_ggml_type), group = 0, sym = 0,
                      rot = none */
    int group;     /* one of qfmt_groups (16 … 128), or 0 = one group per row */
    int sym;       /* 1 symmetric (scale only), 0 asymmetric (scale + integer zero) */
    qfmt_rot rot;  /* rotation of the input dimension before quantizing */
} qfmt;

/* The valid group sizes, 0 (per row) last. */
#define QFMT_N_GROUPS 8
extern const int qfmt_groups[QFMT_N_GROUPS];

#define QFMT_NAME_MAX 32 /* longest canonical name + NUL fits */

/* The ggf_type of a QFMT_GGML format (stored in bits). */
static inline int qfmt_ggml_type(const qfmt *f) { return f->bits; }

/* 0 if f is a valid format, else VL_ECONFIG with the offending field in err. */
int qfmt_check(const qfmt *f, vl_err *err);

/* Canonical name of f into buf (QFMT_NAME_MAX bytes); returns buf. f must be valid. */
char *qfmt_name(const qfmt *f, char buf[QFMT_NAME_MAX]);

/* Parse one format: a canonical name (exactly as qfmt_name writes it) or a menu spec of
 * exactly one format ("rtn:b=8:g=64", the grammar above). VL_ECONFIG naming the token. Every
 * place that asks for one format goes through here, so both spellings work everywhere. */
int qfmt_parse(qfmt *out, const char *name, vl_err *err);

/* Effective group length for a row of `cols` entries: group, or cols when per row. */
int64_t qfmt_group_len(const qfmt *f, int64_t cols);

/* Exact stored bits of an R × C tensor in format f (formula above). rows, cols >= 1. */
int64_t qfmt_bits(const qfmt *f, int64_t rows, int64_t cols);

/* qfmt_bits / (rows·cols). */
double qfmt_bpw(const qfmt *f, int64_t rows, int64_t cols);

/* A parsed menu: n formats in v (owned; free with qfmt_menu_free). */
typedef struct {
    int n;
    qfmt *v;
} qfmt_menu;

/* Parse a menu spec (grammar above) into *out. On error *out is empty and err says which
 * token is wrong (VL_ECONFIG) ; VL_ENOMEM if allocation fails. */
int qfmt_menu_parse(qfmt_menu *out, const char *spec, vl_err *err);

void qfmt_menu_free(qfmt_menu *m); /* frees m->v, leaves m empty; NULL is a no-op */

#endif
