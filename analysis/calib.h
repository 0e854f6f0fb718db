/* analysis/calib.h — calibration sets: a name, a source, a shape and a seed → token ids.
 *
 * A calibration set is n_seq sequences of seq_len int32 token ids, built deterministically from
 * its definition (the same definition, model and tokenizer give the same ids bit for bit).
 *
 * Spec grammar (the `vbrlab stats --set` argument):
 *   NAME=SOURCE[,seqs=N][,len=L][,seed=S][,skip=K]
 *   NAME    [A-Za-z0-9_.+-]{1,63} (calib_name_ok)
 *   SOURCE  PATH                 corpus file (io/corpus.h): documents shuffled by the seed,
 *                                tokenized, each followed by EOS, cut into sequences; with
 *                                skip=K the set is sequences K .. K+N−1 of that cut, so
 *                                `seqs=2` and `seqs=2,skip=2` are the two halves of `seqs=4`
 *           mix:A*w+B*w...       earlier sets of the same command, drawn in proportion to the
 *                                weights (counts by the largest-remainder rule; which sequences
 *                                of each part, and their order, follow the seed); all parts
 *                                must have this set's length; `A` alone means weight 1
 *           noise:uniform        uniformly random ids over the vocabulary, added/special tokens
 *                                and unused ids excluded
 *           noise:bytes          random valid UTF-8 text (code points drawn from a few Unicode
 *                                blocks: ASCII, Latin, Greek/Cyrillic, kana, CJK, emoji),
 *                                tokenized; each sequence is the first L tokens of its own text
 *           noise:shuffle:SET    all ids of set SET shuffled across all its positions (same
 *                                unigram counts, no syntax); default shape = SET's
 *           self[:T=X]           text sampled from the model at temperature 0 < X ≤ 100 (1 when
 *                                not given): each
 *                                sequence starts with EOS, then multinomial sampling from
 *                                softmax(logits/X), one stream per sequence (seeded)
 *           entropy:SET:BUCKET   BUCKET low|mid|high: SET's sequences ranked by the model's mean
 *                                next-token entropy (all positions), cut into terciles
 *                                [0,n/3), [n/3,2n/3), [2n/3,n) of the ranking (ties: lower
 *                                index first); the bucket's sequences in SET order. Its seqs
 *                                and len are the bucket's (seqs=/len= are errors).
 *   Defaults: seqs=64, len=256, seed=0, skip=0 (skip only for corpus files). A PATH may not
 *   contain a comma (commas separate the options). Blanks around mix parts and weights are
 *   allowed. The config's [calib.*]/[eval.*] `source` key is the
 *   same SOURCE grammar (calib_source_parse), its other keys the options.
 *
 * Cost of self:T: the forward has no KV cache, so each generated position re-runs the prefix:
 * Σ_t batch·t tokens, about n_seq·L²/2 token-forwards (64 × 256: 2.1 M, i.e. ~130 × the cost
 * of one pass over the set) — fine for the tiny embedded model, heavy for big ones.
 *
 * Errors are one line naming the spec or set: `set spec "x=noise:foo": unknown noise kind
 * "foo" (uniform, bytes, shuffle:SET)`, `set en: data/x.txt: No such file or directory`.
 * Thread-safety: a calib_book is used by one thread (it drives a tokenizer and a forward).
 */
#ifndef VL_CALIB_H
#define VL_CALIB_H

#include "../core/err.h"
#include "../io/tok.h"
#include "model.h"

#include <stdint.h>

#define CALIB_NAME_MAX 64
#define CALIB_SOURCE_MAX 1024
#define CALIB_MAX_PARTS 16
#define CALIB_DEFAULT_SEQS 64
#define CALIB_DEFAULT_LEN 256

typedef enum {
    CALIB_FILE, CALIB_MIX, CALIB_UNIFORM, CALIB_BYTES, CALIB_SHUFFLE, CALIB_SELF, CALIB_ENTROPY,
    CALIB_KIND_COUNT
} calib_kind;

/* Which options the spec gave explicitly (calib_spec.given). */
enum { CALIB_GIVEN_SEQS = 1, CALIB_GIVEN_LEN = 2, CALIB_GIVEN_SEED = 4, CALIB_GIVEN_SKIP = 8 };

/* A parsed set definition. Plain; filled by calib_spec_parse. */
typedef struct {
    char name[CALIB_NAME_MAX];
    char source[CALIB_SOURCE_MAX]; /* SOURCE as written (the file path for CALIB_FILE) */
    calib_kind kind;
    int n_parts;                   /* mix: parts; shuffle/entropy: 1 (the pool set) */
    char part[CALIB_MAX_PARTS][CALIB_NAME_MAX];
    double weight[CALIB_MAX_PARTS]; /* mix weights (> 0, finite) */
    int bucket;                    /* entropy: 0 low, 1 mid, 2 high */
    double temperature;            /* self: T > 0 */
    int n_seq, seq_len;            /* requested (defaults unless given) */
    int64_t skip;                  /* corpus: sequences skipped before the first one */
    uint64_t seed;
    unsigned given;                /* CALIB_GIVEN_* bits */
} calib_spec;

/* A view of n_seq sequences of token ids (a built set, a stored one). */
typedef struct {
    const char *name;     /* for messages */
    const int32_t *ids;   /* [n_seq × seq_len], borrowed */
    int n_seq, seq_len;
} calib_ids;

/* A built set. ids owned by the calib_book that built it. */
typedef struct {
    calib_spec spec;
    int n_seq, seq_len;            /* actual shape (entropy buckets, shuffle defaults) */
    int32_t *ids;                  /* [n_seq × seq_len], sequence-major */
} calib_set;

/* What a set is for. Every generated stream (noise, self, mix and shuffle draws) is keyed on
 * (role, set name, seed): a calibration set and an evaluation domain never draw the same
 * tokens by sharing a seed, and two sets of one role differ when their names do. */
typedef enum { CALIB_ROLE_CALIB, CALIB_ROLE_EVAL } calib_role;
const char *calib_role_name(calib_role r); /* "calib" | "eval"; static */

/* What building needs. model: for self: and entropy: (and the vocabulary size of
 * noise:uniform); tok: for files, noise:bytes and noise:uniform. Either may be NULL when no set
 * needs it (then such a set is VL_EARG). batch: sequences per forward (> 0). */
typedef struct {
    const model *m;
    tok_tokenizer *tok;
    int batch;
    calib_role role; /* keys the generated streams; zero = CALIB_ROLE_CALIB */
} calib_env;

typedef struct calib_book calib_book;

/* Parse TEXT into *out. VL_EARG with `set spec "TEXT": problem` on any error. Pure. */
int calib_spec_parse(const char *text, calib_spec *out, vl_err *err);

/* The SOURCE part alone (the config's `source` key): o->source = SOURCE as written, kind,
 * parts, weights, temperature, bucket; the shape, seed and name are left as they are. VL_EARG
 * with the bare problem ("mix needs at least two sets ...") on any error; the caller names the
 * spec or the config line. A PATH is not looked at (no file system). Pure. */
int calib_source_parse(const char *source, calib_spec *o, vl_err *err);

/* The canonical spelling of o's source into buf (cap bytes): mix parts with their weights in
 * the shortest exact spelling ("mix:en*0.5+zh*1"), self:T=X, noise:..., entropy:SET:BUCKET;
 * a file is `path` (NULL: o->source). 0, or −1 when it did not fit (truncated). */
int calib_source_text(const calib_spec *o, const char *path, char *buf, size_t cap);
const char *calib_bucket_name(int bucket); /* "low" "mid" "high"; static */

/* The one name rule of the tree, for calibration sets, evaluation domains, config sections and
 * allocations (HDF5 group names): [A-Za-z0-9._+-]+, shorter than CALIB_NAME_MAX, not "." or
 * "..". Inside a mix: source '+' separates the parts, so a set whose name holds '+' cannot be
 * a mix part. Pure. */
int calib_name_ok(const char *name);
const char *calib_kind_name(calib_kind k); /* "file", "mix", ...; static */

/* A new empty book. env is copied; its model and tokenizer must outlive the book. */
int calib_book_new(calib_book **out, const calib_env *env, vl_err *err);

/* Build the set SPEC (its references must name sets already in the book; the name must be
 * new) and append it. On error the book is unchanged and err is one line naming the set. */
int calib_book_add(calib_book *b, const calib_spec *spec, vl_err *err);

int calib_book_count(const calib_book *b);
/* Set i (i < count) or NULL; find: by name or NULL. Valid until calib_book_free. */
const calib_set *calib_book_set(const calib_book *b, int i);
const calib_set *calib_book_find(const calib_book *b, const char *name);

void calib_book_free(calib_book *b); /* NULL ok */

/* Views of every set of the book, in book order, into out[calib_book_count(b)]; valid while
 * the book lives. */
void calib_book_ids(const calib_book *b, calib_ids *out);

/* Mean next-token entropy (nats, softmax of the model's logits, all positions) of each of
 * n_seq sequences of ids, run `batch` sequences per forward: out[n_seq]. The sum over a
 * sequence is taken in position order, so the values do not depend on batch beyond what the
 * forward itself does. */
int calib_seq_entropy(const model *m, const int32_t *ids, int n_seq, int seq_len, int batch,
                      double *out, vl_err *err);

/* Largest-remainder apportionment: counts[i] = floor(total·w_i/Σw) plus one for the parts with
 * the largest remainders (ties: lower index) until Σcounts = total. Pure. */
void calib_apportion(const double *w, int n, int total, int *counts);

/* ---------------------------------------------------------------- leakage
 *
 * An evaluation domain overlaps a calibration set when some window of W consecutive tokens of
 * one of its sequences equals a window of a calibration sequence, W = min(CALIB_OVERLAP_WINDOW,
 * every sequence length involved); equal sequences are the extreme case. 64 tokens are a few
 * hundred characters of text: more than a shared phrase or a common license line, far less
 * than a document. The same window index serves the corpus check on code points
 * (tests/test_corpus.c). */
#define CALIB_OVERLAP_WINDOW 64

/* A found window: the indexed run's tag and index, the window's start in that run and in the
 * probe. */
typedef struct {
    int tag, run, pos, probe_pos;
} calib_match;

/* An index of every W-window of some runs of int32 symbols (token ids or code points). The
 * runs are borrowed and must outlive the index. */
typedef struct calib_windex calib_windex;
int calib_windex_new(calib_windex **out, int window, vl_err *err);
/* Index run v[0..n) under `tag` (runs are numbered 0, 1, ... in the order added). A run
 * shorter than the window adds nothing. */
int calib_windex_add(calib_windex *x, const int32_t *v, int n, int tag, vl_err *err);
/* 1 and *m when a window of v[0..n) equals an indexed window (the first in probe order,
 * confirmed symbol by symbol), else 0. Sorts the index on first use after an add. */
int calib_windex_find(calib_windex *x, const int32_t *v, int n, calib_match *m);
void calib_windex_free(calib_windex *x); /* NULL ok */

/* The window calib_overlap_check uses for these sets. */
int calib_overlap_window(const calib_ids *cal, int n_cal, const calib_ids *ev, int n_ev);

/* VL_EARG with "evaluation domain D overlaps calibration set S: sequence i, tokens a..b equal
 * sequence j, tokens c..d (W-token window)" when an ev sequence shares a window with a cal
 * sequence (the first such in domain, sequence, position order); 0 when none do. */
int calib_overlap_check(const calib_ids *cal, int n_cal, const calib_ids *ev, int n_ev,
                        vl_err *err);

#endif
