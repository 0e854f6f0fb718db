/* io/journal.h — per-item commit: finished work items of an interrupted stage survive.
 *
 * A stage of `vbrlab run` commits its store once, at its end (experiments/runner.c). Its work
 * items (a sensitivity unit of a set, an allocation × domain evaluation) are worth keeping
 * before that: each finished item is appended to a journal, and a rerun of the stage takes the
 * items it finds there instead of computing them again. The store itself is still written
 * once, atomically; the journals are removed after that commit.
 *
 * Files: PREFIX.r<RANK> (one per MPI rank, each appended by its own rank only; a rerun with
 * any number of ranks reads all of them). A file starts with the line "vbrlab journal 1" and a
 * line holding KEY (the stage's cache key: a file written under another configuration is
 * ignored, and its own rank starts it anew). Records follow:
 *   u32 magic 0x314a4c56 ("VLJ1"), u32 item-name length, u64 payload length,
 *   u64 FNV-1a 64 of name and payload, the name, the payload (all little-endian).
 * A record is written with one write, flushed and fsync'ed before jr_put returns: a crash
 * leaves at most one incomplete record at the end, which fails its length or hash check and
 * is ignored (and cut off when its rank appends again). Reading stops at the first bad record
 * of a file.
 *
 * Payloads are the item's result bytes as the caller lays them out; a record whose length is
 * not what the caller expects counts as absent (jr_get). Not thread-safe; one jr per stage and
 * rank. All ranks must open before any rank appends (the caller agrees after jr_open).
 */
#ifndef VL_JOURNAL_H
#define VL_JOURNAL_H

#include "../core/err.h"

#include <stddef.h>

typedef struct jr jr;

/* Read every PREFIX.r* journal whose key is KEY, and prepare PREFIX.r<RANK> for appending
 * (created on the first jr_put). VL_EIO naming the file on a read error. */
int jr_open(jr **out, const char *prefix, const char *key, int rank, vl_err *err);

/* Item NAME's payload into buf (exactly len bytes): 1 if found with that length, 0 if not,
 * a negative VL_E* code on a read error. */
int jr_get(jr *j, const char *name, void *buf, size_t len, vl_err *err);

/* 1 if item NAME is there with exactly len bytes of payload, else 0. */
int jr_has(const jr *j, const char *name, size_t len);

/* Append item NAME (durably: flushed and fsync'ed). VL_EIO naming the file. */
int jr_put(jr *j, const char *name, const void *data, size_t len, vl_err *err);

/* Records found by jr_open (over all files). */
size_t jr_found(const jr *j);

void jr_close(jr *j); /* NULL ok */

/* Remove every PREFIX.r* file (after the stage's commit, or to start afresh). */
int jr_remove(const char *prefix, vl_err *err);

#endif
