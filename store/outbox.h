/*
 * The agent's durable outbox: one LMDB environment in a directory, with
 * named databases
 *
 *   meta    "epoch" -> u64, "next_seq" -> u64 (8 bytes, big-endian)
 *   pending seq (8 bytes, big-endian) -> packed Report
 *   dead    seq -> packed Report and the packed Ack that rejected it
 *   marks   caller's key -> first seq of the batch that recorded it
 *   sources seq -> the caller's record of where a pending or dead report
 *           came from (the agent's ReportSource: file, lines), written
 *           with the report and removed with it or with its dead letter
 *
 * A report is written here before it is first sent and removed only when
 * the daemon answers ACCEPTED or DUPLICATE; a REJECTED one moves to dead
 * and is never resent. The epoch is drawn at random (getrandom) when the
 * outbox is created and never changes; next_seq only rises, so a seq is
 * never reused. Every write is a durable transaction.
 *
 * One writer at a time: outbox_open() takes an exclusive flock on the file
 * "lock" in the directory (lockfile.h), held until outbox_close(), and
 * fails naming the holder's PID when another process holds it. Readers
 * need no lock: outbox_open_readonly() reads an outbox beside the process
 * that writes it (LMDB's readers do not block its writer).
 *
 * Functions return 0 on success and -1 on failure (logged through log.h
 * with the "outbox:" prefix) unless said otherwise.
 */
#ifndef INDICATOR_OUTBOX_H
#define INDICATOR_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest key outbox_batch_mark() takes, in bytes. */
#define OUTBOX_MARK_MAX 480

struct outbox;
struct outbox_batch;

/*
 * Builds the packed report for the i-th of the reports being enqueued, now
 * that its seq is known. Sets *buf to a malloc'd buffer (the outbox frees
 * it) and *len. Returns 0, or -1 to abort the whole enqueue.
 */
typedef int (*outbox_build_fn)(
    uint64_t epoch, uint64_t seq, size_t i, void **buf, size_t *len, void *arg);

/* Called for each pending or dead report; return 0 to go on, nonzero to stop
 * (returned by the scan). buf and ack are valid only during the call. */
typedef int (*outbox_pending_fn)(
    uint64_t seq, const void *buf, size_t len, void *arg);
/* For a dead report, src is its source record (src_len bytes; NULL when
 * it has none), read in the same transaction: a callback may not begin
 * another (LMDB allows one per thread). */
typedef int (*outbox_dead_fn)(uint64_t seq, const void *report,
    size_t report_len, const void *ack, size_t ack_len, const void *src,
    size_t src_len, void *arg);

/* outbox.c */

/* Opens or creates (mode 0700) the outbox in dir and takes its lock. NULL
 * with a reason in err on failure, including "outbox: DIR is in use by
 * another process (pid N)". */
struct outbox *outbox_open(const char *dir, char *err, size_t errlen);
/* outbox_open() with the map at map_start bytes, which LMDB raises to the
 * pages in use (0: outbox_open()'s rule, 16 MiB or the size an earlier
 * run grew it to): a small map_start makes the next write meet a full
 * map (the tests'). */
struct outbox *outbox_open_map(
    const char *dir, uint64_t map_start, char *err, size_t errlen);
/*
 * Opens an existing outbox for reading only, without its lock, so that
 * status can be read while an agent runs on it. It creates nothing: NULL
 * with a reason in err when dir holds no outbox. Only outbox_epoch(),
 * outbox_counts(), outbox_scan(), outbox_dead_scan() and outbox_marked()
 * may be used on it; the others fail.
 */
struct outbox *outbox_open_readonly(const char *dir, char *err, size_t errlen);
/* Accepts NULL and *o == NULL; sets *o to NULL; releases the lock. */
void outbox_close(struct outbox **o);

uint64_t outbox_epoch(const struct outbox *o);

/* Enqueues n reports in one durable transaction: all or none. Their seqs are
 * next_seq .. next_seq + n - 1. */
int outbox_enqueue(
    struct outbox *o, size_t n, outbox_build_fn build, void *arg);

/* Calls fn for pending reports with seq >= from, in seq order, at most max
 * of them (0: no limit). */
int outbox_scan(struct outbox *o, uint64_t from, size_t max,
    outbox_pending_fn fn, void *arg);

/* Removes acknowledged reports (absent seqs are ignored), one transaction. */
int outbox_remove(struct outbox *o, const uint64_t *seqs, size_t n);

/* Removes the reports from .. to that are pending, with their sources;
 * dead letters in the range stay, with theirs. One transaction. */
int outbox_remove_pending(struct outbox *o, uint64_t from, uint64_t to);

/* Moves a pending report to dead with the Ack that rejected it. */
int outbox_kill(
    struct outbox *o, uint64_t seq, const void *ack, size_t ack_len);

int outbox_dead_scan(struct outbox *o, outbox_dead_fn fn, void *arg);

/* Counts and the next seq to be assigned. pending counts only committed
 * reports (those below next_seq), not a batch being written. */
int outbox_counts(
    struct outbox *o, uint64_t *pending, uint64_t *dead, uint64_t *next_seq);

/*
 * An incremental enqueue, for input too big to build whole in memory: the
 * caller builds one report at a time and the outbox writes them as they
 * come, in transactions of about OUTBOX_BATCH_BYTES, beyond next_seq where
 * nothing looks (scans stop at next_seq). The last transaction moves
 * next_seq past them all and records the mark, so the batch is all or
 * none: until outbox_batch_commit() returns 0 no report of it is pending,
 * and what a crash leaves beyond next_seq is cleared at the next open.
 * Memory stays flat: the outbox holds at most one transaction's reports,
 * written when that transaction commits (lmdbw.h: a full map grows and
 * the transaction runs again without building anything twice).
 *
 * While a batch is open, make no other outbox call than outbox_batch_*()
 * on that outbox (the batch's seqs are past next_seq until it commits).
 * One batch at a time per outbox.
 */
#define OUTBOX_BATCH_BYTES (1 << 20)

/* A new batch; caller owns it until _commit() or _abort(). NULL on failure
 * (logged). The seqs it gives start at next_seq. */
struct outbox_batch *outbox_batch_begin(struct outbox *o);

/* Builds the next report (i counts the batch's reports from 0; each is
 * built once) and keeps it for its transaction, written once about
 * OUTBOX_BATCH_BYTES are kept. 0, or -1 when build or the store failed
 * (logged): the batch can then only be aborted. */
int outbox_batch_add(struct outbox_batch *b, outbox_build_fn build, void *arg);
/* The same, with the report's source record (srclen bytes at src,
 * copied; NULL for none), written in the same transaction as the report
 * and read back with outbox_source(). */
int outbox_batch_add_source(struct outbox_batch *b, outbox_build_fn build,
    void *arg, const void *src, size_t srclen);

/* Records key (1 to OUTBOX_MARK_MAX bytes), to be written in the commit's
 * transaction, so that once committed outbox_marked() finds it: a caller's
 * way to know that some input was enqueued, in step with its reports. A
 * later call replaces the key. 0 or -1. */
int outbox_batch_mark(struct outbox_batch *b, const void *key, size_t len);

/* Reports added so far, and the seq of the first (0 before any). */
size_t outbox_batch_count(const struct outbox_batch *b, uint64_t *first_seq);

/* Makes the batch's reports pending and its mark visible, durably. 0 or -1
 * (logged; nothing of the batch is pending then). Frees the batch and sets
 * *b to NULL in every case. */
int outbox_batch_commit(struct outbox_batch **b);

/* Drops the batch and what it wrote; accepts NULL and *b == NULL. */
void outbox_batch_abort(struct outbox_batch **b);

/*
 * The source record of report seq, pending or dead: 0 with *buf a new
 * copy (caller frees) of *len bytes; 1 when it has none (then *buf is
 * NULL); -1 on failure (logged). Works on a read-only outbox.
 */
int outbox_source(struct outbox *o, uint64_t seq, void **buf, size_t *len);

/* Removes every dead letter and its source, one transaction; *n: how
 * many. Not on a read-only outbox. */
int outbox_dead_purge(struct outbox *o, uint64_t *n);

/* Sets *found to whether a committed batch marked key. */
int outbox_marked(struct outbox *o, const void *key, size_t len, bool *found);

/* Forgets key (absent: not an error), or every mark when key is NULL. */
int outbox_unmark(struct outbox *o, const void *key, size_t len);

#endif
