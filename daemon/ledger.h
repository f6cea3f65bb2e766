/*
 * The ledger: the daemon's derived state and its one way to change.
 *
 * THE INVARIANT
 *
 *   memory = the tables as of meta "applied" + a replay of the log after it
 *
 * The store's log (store.h) is the truth: every accepted observation is one
 * record, appended on the acknowledgement path in the batch's transaction,
 * which commits before any ack goes out. The tables the tools read, obs
 * (each key's latest revision) and agg (each aggregate as last published),
 * are derived from the log. They live in an LMDB environment of their own
 * and are written at a checkpoint, once per key however often it changed,
 * together with meta "applied" (the last log position they reflect) and
 * "pub_seq" (the publish seq agg is consistent with), in one transaction.
 * Between checkpoints the ledger holds in memory what changed since: the
 * latest-value table and the aggregate table (with each aggregate's
 * revision and packed bytes as published). So:
 *
 *   - a crash loses nothing: ledger_open() replays the log past "applied",
 *     batch by batch (a batch's records carry the position of its first),
 *     recomputing the aggregates, their revisions and their publish seqs
 *     exactly as they were first given (meta "pub_seq_sent", written with
 *     every batch, keeps a seq from ever being given twice: the seq floor);
 *   - a batch whose transaction fails leaves memory wrong: the ledger
 *     forgets it and replays (ledger_batch_done(false));
 *   - aggregates are kept by exact differences (aggregate.h's units), so
 *     the table equals a recomputation from the latest values bit for bit,
 *     which `indicatorctl verify` checks;
 *   - a checkpoint runs in the ledger's own thread (ledger_opts.threaded)
 *     from frozen copies of the changed entries, in the tables'
 *     environment, whose writer is not the log's: batches and acks never
 *     wait for it. Entries it carries stay held (clean) until it is taken
 *     in, so lookups never fall through to tables that lack them; a failed
 *     one makes them dirty again. A crash mid-checkpoint leaves the tables'
 *     previous transaction, "applied" with it: the replay starts there;
 *   - near the tables' map_max (or after a checkpoint failed for room)
 *     ledger_full() says so before a batch: its reports are refused (for
 *     good once the room is short at map_max, until a restart), so that
 *     nothing is acknowledged that cannot be applied. A store written by a
 * previous version (format 2, the tables in the log's environment) is upgraded
 * when it is opened (store.h).
 *
 * Checkpoint POLICY lives here too and is asked in one place, the daemon's
 * main loop (ledger_checkpoint_due(), then ledger_checkpoint_start(), like
 * Redis's serverCron): after checkpoint_idle_ms without input, every
 * checkpoint_ms under load, and once checkpoint_entries keys are held
 * (which bounds memory: after a checkpoint the tables stay as a read cache
 * while under that size, else what it wrote is dropped). Readers that need
 * the tables current (a snapshot, a query, the control socket's
 * "checkpoint", a reload, the shutdown) call ledger_checkpoint(), which
 * waits for the thread's job and writes the rest.
 *
 * A BACKUP (store_backup()) copies the tables first, then the log: the
 * log's copy covers every position the tables' copy claims.
 *
 * THE REGISTRY. Aggregates depend on the registry (which districts a city
 * sum covers, units, targets, districts_expected). The ledger records a
 * hash of what of it matters in meta "registry_hash"; when the registry
 * differs (a reload, or a start with a changed configuration),
 * ledger_registry_set() recomputes every aggregate from the latest values,
 * publishes those whose content changed with revision + 1, and deletes
 * those no observation leads to any more, so that `aggregates`, the feed,
 * `progress` and `verify` agree. A store that records no hash yet is taken
 * as made with the registry it is opened with.
 *
 * A BATCH. The caller (ingest.c) owns the write transaction; the ledger
 * writes into it:
 *
 *   ledger_batch_begin(l, t)          the batch's first log position
 *   ledger_observe(l, t, &obs) ...    log append + latest + aggregates
 *   ledger_batch_end(l, t, &pubs, &n) revisions, seqs, publications packed
 *   commit (store_txn_commit) or abort
 *   ledger_batch_done(l, committed)   forget or replay
 *
 * The publications stay valid until the next ledger_batch_begin(),
 * ledger_registry_set() or ledger_recover().
 *
 * No zmq and no struct daemon here: the ledger is driven in-process by
 * tests/check_ledger.c.
 */
#ifndef INDICATORD_LEDGER_H
#define INDICATORD_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"
#include "store.h"
#include "strlimits.h"

/* meta: the seq the agg table is consistent with (written at each
 * checkpoint), the highest seq ever published (with each batch), and the
 * hash of the registry the aggregates were made with. */
#define LEDGER_META_PUB_SEQ "pub_seq"
#define LEDGER_META_PUB_SEQ_SENT "pub_seq_sent"
#define LEDGER_META_REGISTRY "registry_hash"

struct ledger_opts {
	struct store *store; /* the caller's; outlives the ledger */
	/* The registry aggregates are made with: the caller's, read at each
	 * batch; change it only through ledger_registry_set(). */
	const struct registry *reg;
	uint64_t checkpoint_ms; /* under load, at most this apart */
	uint64_t checkpoint_entries; /* keys held that make one due */
	uint64_t checkpoint_idle_ms; /* idle this long: due; 0: never */
	/* Periodic checkpoints written by a thread of the ledger's, from
	 * frozen copies, so that batches (and acks) never wait for them;
	 * false: in the caller's thread. */
	bool threaded;
	/* Optional: called during a replay (e.g. to keep a watchdog fed),
	 * and around it with true then false. */
	void (*tick)(void);
	void (*replaying)(bool on);
};

/* One aggregate to publish: topic and packed Aggregate (the ledger's). */
struct ledger_pub {
	char topic[IND_TOPIC_MAX + 1];
	const uint8_t *buf;
	size_t len;
};

struct ledger_stats {
	uint64_t checkpoints; /* that wrote something */
	uint64_t checkpoints_failed;
	double checkpoint_sum_s;
	double checkpoint_max_s;
	uint64_t replays; /* ledger_recover() runs, the one at open included */
	uint64_t reconciled; /* registry changes applied */
	uint64_t seq; /* the last publish seq given */
	size_t dirty; /* keys and aggregates to write at the checkpoint */
	size_t held; /* keys and aggregates held in memory */
};

struct ledger;

/* ledger.c */

/*
 * Opens the ledger on an open store: replays the log past "applied",
 * checkpoints what it replayed, and applies a changed registry
 * (ledger_registry_set()). NULL when the log cannot be replayed (logged).
 * The caller owns the ledger; the store must stay open until
 * ledger_close().
 */
struct ledger *ledger_open(const struct ledger_opts *o);
/* Frees the ledger, WITHOUT a checkpoint (call ledger_checkpoint() first
 * for a clean stop; dropping it is what a crash does). Accepts NULL and
 * *l == NULL; sets *l to NULL. */
void ledger_close(struct ledger **l);

/* Starts a batch in the caller's write transaction t: forgets the last
 * batch's publications. 0, STORE_FULL or -1. */
int ledger_batch_begin(struct ledger *l, struct store_txn *t);
/*
 * Takes o as its key's new latest value: sets o->revision (previous + 1),
 * o->prev and o->batch, appends it to the log (setting o->lsn), and applies
 * the difference to its aggregates. The caller sets the rest, stored_at_ms
 * included. 0, STORE_FULL or -1 (then the batch must be aborted).
 */
int ledger_observe(struct ledger *l, struct store_txn *t, struct store_obs *o);
/*
 * Ends the batch in t: gives revision + 1 and the next publish seq to every
 * aggregate whose content changed (updated_at_ms = now_ms), records the
 * highest seq in meta, and writes the batch's own checkpoint when room is
 * short. *pubs and *npubs: what to publish once t has committed (NULL and 0
 * accepted when the caller does not want them). 0, STORE_FULL or -1.
 */
int ledger_batch_end(struct ledger *l, struct store_txn *t, int64_t now_ms,
    const struct ledger_pub **pubs, size_t *npubs);
/*
 * After the batch's transaction: committed, the batch's changes stand;
 * not committed, memory is rebuilt from
 * the store (ledger_recover()). 0, or -1 when that replay failed (logged):
 * the daemon must not answer from a state it cannot rebuild.
 */
int ledger_batch_done(struct ledger *l, bool committed);

/*
 * Before a batch of nobs observations: true when the tables could not take
 * them with the changes held (their map at map_max: a checkpoint failed for
 * room, or the room left is short), and the caller refuses the batch's
 * reports (RETRY_LATER, store_full) rather than acknowledge what it could
 * not apply. Near the limit it writes the held changes first (a
 * checkpoint in the caller's thread); after a failure it tries again at
 * most once a second.
 */
bool ledger_full(struct ledger *l, size_t nobs);
/* True when something waits for a checkpoint. */
bool ledger_dirty(const struct ledger *l);
/*
 * The checkpoint policy (see the top): true when a checkpoint is due now.
 * idle: the caller's wait for input timed out. Asked in one place; takes in
 * a finished threaded checkpoint (false while one is out).
 */
bool ledger_checkpoint_due(struct ledger *l, bool idle);
/* How long the caller may wait for input before the idle checkpoint is
 * due: max_ms, or checkpoint_idle_ms when something waits and that is
 * shorter. */
int ledger_wait_ms(const struct ledger *l, int max_ms);
/*
 * Writes what changed since the last checkpoint to obs and agg, with
 * "applied" and "pub_seq", in one transaction of the tables (growing their
 * map as needed), and waits for it (and for a threaded one out before it).
 * For readers that need the tables current. 0 (also when there was
 * nothing to write), or -1 (logged): what changed stays in memory for the
 * next attempt, and while the tables are full ledger_full() says so.
 */
int ledger_checkpoint(struct ledger *l);
/*
 * The main loop's checkpoint, once ledger_checkpoint_due() said so:
 * freezes copies of what changed (marking it clean) and hands them to the
 * checkpoint thread, which writes them while batches go on; the outcome is
 * taken in by a later ledger_checkpoint_due() (a failed job's entries are
 * dirty again). Does nothing while the previous job is out. Not threaded:
 * ledger_checkpoint(). True when a checkpoint was started (or done).
 */
bool ledger_checkpoint_start(struct ledger *l);
/*
 * Forgets every change not checkpointed and replays the log past
 * "applied", then checkpoints. At open and after a failed batch. 0 or -1
 * (logged; memory is then empty and the ledger must not be used for
 * batches).
 */
int ledger_recover(struct ledger *l);

/*
 * Switches to registry reg (which the caller keeps) and, when it differs
 * from the one the stored aggregates were made with, recomputes them all:
 * in one transaction (a checkpoint), each aggregate whose content changed
 * gets revision + 1 and the next publish seq, each one no observation
 * leads to any more is deleted, and the registry's hash is recorded.
 * *pubs, *npubs as for ledger_batch_end(). 0 (nothing to do included), or
 * -1 (logged; the registry is switched anyway and the next
 * ledger_registry_set() or start tries again).
 */
int ledger_registry_set(struct ledger *l, const struct registry *reg,
    int64_t now_ms, const struct ledger_pub **pubs, size_t *npubs);

/* The figures. */
void ledger_stats(const struct ledger *l, struct ledger_stats *out);
/* The publish seq the stored agg table is consistent with, read in t. */
int ledger_stored_seq(struct store_txn *t, uint64_t *seq);

#endif
