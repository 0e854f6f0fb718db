/* io/corpus.h — corpus files and the deterministic cut of token streams into sequences.
 *
 * Format (data/corpus/MANIFEST.md): UTF-8 text; documents are separated by a line holding only
 * the byte 0x1e (RS). A separator line is exactly "\x1e" between line breaks "\n" (or the start
 * or end of the file); a line "\x1e\r" or any other line containing RS is ordinary text. Each
 * document is the text between separators with its leading and trailing "\n" bytes removed
 * (the training script's `d.strip("\n")`, models/vbrlab-moe-tiny/train.py); everything else,
 * "\r\n" pairs included, is kept byte for byte. A missing final newline is fine. Documents that
 * hold only ASCII white space are skipped (train.py's `if d.strip()`).
 *
 * The whole file must be valid UTF-8 (no overlong forms, no surrogates, nothing above
 * U+10FFFF); the first bad byte is reported as "<file>: byte offset N: invalid UTF-8", N the
 * offset of the first byte of the bad sequence (a sequence cut short by the end of the file
 * counts as bad at its lead byte).
 *
 * Tokenization is not done here: corp_cut takes documents already tokenized, so this module
 * does not depend on io/tok.
 *
 * Thread-safety: a corp_corpus is immutable after corp_load; share it freely for reading.
 */
#ifndef VL_CORPUS_H
#define VL_CORPUS_H

#include "../core/err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *text; /* borrowed from the corp_corpus buffer; NOT NUL-terminated */
    size_t len;       /* bytes */
} corp_doc;

typedef struct {
    char *path;     /* file name as given (for messages); owned */
    char *buf;      /* the whole file; owned */
    size_t size;    /* bytes in buf */
    corp_doc *docs; /* [n_docs] views into buf, file order; owned array */
    int n_docs;
} corp_corpus;

/* Read and split a corpus file. *out is owned by the caller (corp_free). Errors: VL_ENOTFOUND
 * (no such file), VL_EIO ("<file>: <strerror>", "not a regular file (a FIFO)"), VL_EFORMAT
 * (invalid UTF-8 with byte offset), VL_ENOMEM. A file with no non-empty document is valid and
 * gives n_docs = 0. */
int corp_load(corp_corpus **out, const char *path, vl_err *err);

/* The same from memory: data[0..len) is copied; `name` stands for the file in messages. */
int corp_parse(corp_corpus **out, const char *name, const char *data, size_t len, vl_err *err);

void corp_free(corp_corpus *c); /* NULL ok */

/* ---------------------------------------------------------------- sequences */

typedef struct {
    const int32_t *ids; /* token ids of one document; borrowed */
    int n;              /* count (0 allowed: the document contributes only its EOS) */
} corp_tokdoc;

/* Cut tokenized documents into n_seq sequences of len tokens, deterministically:
 *   1. the document order is shuffled (Fisher–Yates) with the stream
 *      rng_child_seed(seed, "corpus.shuffle");
 *   2. the documents are concatenated in that order, each followed by eos_id (as in train.py);
 *   3. sequence i is tokens [i·len, (i+1)·len) of that stream; the tail is unused.
 * When the stream is shorter than n_seq·len the result is an error, never a wrap-around:
 * "set <set_name>: corpus has N tokens, needs n_seq × len = M" (VL_ERANGE). out holds
 * n_seq·len ids (caller-allocated). n_seq, len > 0 (else VL_EARG). Pure apart from out. */
int corp_cut(int32_t *out, const corp_tokdoc *docs, int n_docs, int32_t eos_id, uint64_t seed,
             int n_seq, int len, const char *set_name, vl_err *err);

#endif
