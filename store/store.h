/*
 * The daemon's store: a directory of named LMDB databases
 *
 *   log    log position (8 bytes big-endian, from 1) -> StoredObservation:
 *          every accepted observation, appended (MDB_APPEND) in the order it
 *          was processed; the history
 *   obs    (district, industry, metric, period) -> ObsRef: the key's latest
 *          revision, its value and its record's log position
 *   seq    (agent_id, epoch) -> SeqState
 *   reject (agent_id, epoch, seq) -> the packed Ack that rejected it
 *   agg    topic "agg/<metric>/<industry>/<scope>/<period>" -> packed Aggregate
 *   meta   name -> value (counters such as the publish seq)
 *   stage  (agent_id, epoch) -> FileStage: the file whose parts are being
 *          staged (docs/protocol.md, "File transactions"); at most one
 *   staged (agent_id, epoch, part) -> that part's packed Report
 *
 * The log is the truth; obs and agg are derived from it (the daemon's
 * ledger, daemon/ledger.h, states the invariant and keeps it). Each record
 * names its key's previous revision (prev), so a key's history is a walk
 * back from its ObsRef, with no per-revision index to keep.
 *
 * Two LMDB environments (store format 3): the log's (data.mdb in the
 * directory: log, seq, reject, meta) and the tables' (tables/data.mdb:
 * obs, agg, and meta applied, pub_seq, registry_hash), so that each has
 * its own writer: the daemon appends to the log while a thread writes the
 * tables (store_txn_begin_kind()). Callers name databases, never
 * environments: store_meta_get()/put() find a name where it lives. A
 * format 2 store (everything in data.mdb) is upgraded at an open for
 * writing, and read as it is by an open read-only.
 *
 * This is the only code that includes lmdb.h; no MDB_val leaves it. obs keys
 * are the four codes, each followed by a NUL, in that order, so that the
 * tools' scans are range scans; seq keys are agent_id, NUL, epoch as 8
 * big-endian bytes; reject keys add the seq as 8 big-endian bytes.
 *
 * A store opened read-only can be read while another process writes it.
 * The map grows on MDB_MAP_FULL (store_txn_commit() and the put functions
 * return STORE_FULL): store_write() aborts, grows the full environment's
 * map and redoes the transaction, through lmdbw.h's loop, the one the
 * agent's outbox uses too.
 *
 * Return codes: 0 success, STORE_NOTFOUND for a get that finds nothing,
 * STORE_FULL when the map is full, -1 for any other failure (logged through
 * log.h with the "store:" prefix and the LMDB message).
 */
#ifndef INDICATOR_STORE_H
#define INDICATOR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strlimits.h"

#define STORE_NOTFOUND 1
#define STORE_FULL 2

/* meta: the last log position that obs and agg reflect. */
#define STORE_META_APPLIED "applied"

enum store_sync {
	STORE_SYNC_FULL, /* durable at commit */
	STORE_SYNC_NOMETASYNC, /* MDB_NOMETASYNC */
	STORE_SYNC_NONE, /* MDB_NOSYNC */
};

struct store_opts {
	const char *dir; /* created (mode 0700) if missing, unless read-only */
	uint64_t map_size; /* initial map size, bytes; 0: 64 MiB */
	uint64_t map_max; /* store_grow() never goes past it; 0: 16 GiB */
	bool readonly;
	enum store_sync sync;
};

/* One stored value of (district, industry, metric, period). */
struct store_obs {
	char district[IND_CODE_MAX + 1];
	char industry[IND_CODE_MAX + 1];
	char metric[IND_CODE_MAX + 1];
	char period[IND_PERIOD_MAX + 1];
	double value; /* canonical unit */
	char unit[IND_UNIT_MAX + 1];
	double sent_value; /* as sent */
	char sent_unit[IND_UNIT_MAX + 1];
	int status; /* Indicator__ObsStatus */
	char note[IND_NOTE_MAX + 1];
	char agent_id[IND_AGENT_ID_MAX + 1];
	uint64_t epoch;
	uint64_t seq;
	int64_t sent_at_ms;
	int64_t stored_at_ms;
	uint32_t revision; /* set by store_obs_put() */
	uint64_t lsn; /* its log position (set by the store) */
	uint64_t prev; /* the previous revision's log position; 0: none */
	uint64_t batch; /* see StoredObservation.batch */
};

/* What obs holds for a key: its latest revision. */
struct store_ref {
	uint32_t revision;
	double value; /* canonical unit */
	uint64_t lsn; /* the record in the log */
};

/* A packed latest-value record (ObsRef) into *out, field by field
 * (pbwire.h): 0, or -1 when it does not parse or names no log record. */
int store_ref_decode(const void *buf, size_t len, struct store_ref *out);

struct store_seq {
	uint64_t last_seq;
	int64_t first_seen_ms;
	int64_t last_seen_ms;
	uint64_t accepted;
	uint64_t rejected;
};

/* A file being staged for one (agent_id, epoch): FileStage. */
struct store_stage {
	uint64_t file_id;
	uint32_t parts;
	uint32_t received; /* parts taken, 1 .. parts - 1 */
	uint64_t first_seq; /* part 1's seq */
	int64_t started_ms;
	int64_t last_ms; /* when the latest part came */
	uint32_t rejected; /* the part that refused the file; 0: none */
	uint64_t bytes; /* the staged parts' size */
};

/* Filter for store_obs_scan(): NULL or "" fields match anything. */
struct store_filter {
	const char *district;
	const char *industry;
	const char *metric;
	const char *period;
};

struct store_stat {
	uint64_t map_size; /* current map size, bytes */
	uint64_t used_bytes; /* pages in use * page size */
	uint64_t nobs; /* entries in obs */
	uint64_t nhist; /* records in the log: every revision stored */
	uint64_t nagents; /* entries in seq */
	uint64_t naggs; /* entries in agg */
};

struct store;
struct store_txn;

/* store.c */

/*
 * Opens (creating if needed, unless read-only) the store. Returns NULL and
 * writes a reason to err on failure. Caller owns the store.
 *
 * Before anything in data.mdb is read, it is checked (envcheck.h): a file
 * shorter than the pages its meta page counts, which LMDB would map and
 * die on with SIGBUS at the first read past its end, is refused; so is a
 * missing or empty data.mdb, another store's, or an older one, where the
 * store.id beside it says a store was. A store opened for writing without
 * an id is given one (meta "store_id"), and store.id is written then, at
 * most once a second after a commit (sync = full) and at store_close().
 */
struct store *store_open(
    const struct store_opts *opts, char *err, size_t errlen);
/* Closes the store; accepts NULL and *s == NULL; sets *s to NULL. Any open
 * transaction must have ended. */
void store_close(struct store **s);

/* Double the log's map size, up to map_max. Returns 0, or -1 when already
 * at map_max (or on failure). No transaction may be open on the log. */
int store_grow(struct store *s);
/* The same for the tables' map; waits until no tables transaction (of any
 * thread) is open, so the caller must hold none. */
int store_grow_tables(struct store *s);
uint64_t store_map_size(const struct store *s);
/* Grows the map ahead of need: when more than three quarters of it is in
 * use and it is below map_max. No transaction may be open. 1 when it grew,
 * 0 when it had no need to, -1 when growing failed. */
int store_make_room(struct store *s);
/* Bytes the store can still take: up to map_max, counting every page up
 * to the highest ever used as taken (free pages below it are not known
 * here), so never more than there is. */
uint64_t store_room(const struct store *s);
/* The same for the tables' environment. */
uint64_t store_tables_room(struct store *s);

/*
 * What a transaction may write. The tables (obs, agg, and meta applied,
 * pub_seq, registry_hash) live in their own environment, so that the
 * daemon's checkpoint thread writes them while the ingest thread appends
 * to the log: each environment has its own single writer.
 */
enum store_txn_kind {
	STORE_TXN_READ, /* reads everything */
	STORE_TXN_LOG, /* writes the log, seq, reject and the log's meta;
			  reads the tables */
	STORE_TXN_TABLES, /* writes the tables; the log is not in it */
	STORE_TXN_BOTH, /* writes everything; commits the log first */
};

/* Begins a transaction of kind. Every kind reads a consistent state: the
 * tables are read as of a commit no later than the log (they are begun
 * first). NULL on failure. Only one writer of each environment at a time
 * (others wait). */
struct store_txn *store_txn_begin_kind(
    struct store *s, enum store_txn_kind kind);
/* store_txn_begin_kind(): STORE_TXN_BOTH when write, else
 * STORE_TXN_READ. */
struct store_txn *store_txn_begin(struct store *s, bool write);
/* Commits (durably for a write transaction, per the sync option); always
 * frees the transaction and sets *t to NULL. 0, STORE_FULL or -1. */
int store_txn_commit(struct store_txn **t);
/* Aborts; accepts NULL; sets *t to NULL. */
void store_txn_abort(struct store_txn **t);

/*
 * One write, grown as needed: begins a transaction of kind, runs fn(t, arg)
 * in it and commits. When fn or the commit says STORE_FULL, the
 * transaction is aborted, undo(arg) is called (if not NULL) to forget what
 * fn did outside the store, the map grows (store_grow()) and fn runs again
 * in a new transaction; undo also runs after any other failure. fn returns
 * 0, STORE_FULL or -1, and must not end t. Returns 0, STORE_FULL when the
 * map is at map_max, or -1.
 */
int store_write(struct store *s, enum store_txn_kind kind,
    int (*fn)(struct store_txn *t, void *arg), void (*undo)(void *arg),
    void *arg);

/* Sequence state of (agent_id, epoch): 0 and *out filled, STORE_NOTFOUND,
 * or -1. */
int store_seq_get(struct store_txn *t, const char *agent_id, uint64_t epoch,
    struct store_seq *out);
int store_seq_put(struct store_txn *t, const char *agent_id, uint64_t epoch,
    const struct store_seq *st);
/* Calls fn for each (agent_id, epoch) in key order; fn returns 0 to go on,
 * nonzero to stop (which store_seq_scan() then returns). */
int store_seq_scan(struct store_txn *t,
    int (*fn)(const char *agent_id, uint64_t epoch, const struct store_seq *st,
	void *arg),
    void *arg);

/* The answer given to a rejected report, kept so that a resend gets the
 * same answer. get: *buf points into the store, valid until the transaction
 * ends; do not free. */
int store_reject_put(struct store_txn *t, const char *agent_id, uint64_t epoch,
    uint64_t seq, const void *buf, size_t len);
int store_reject_get(struct store_txn *t, const char *agent_id, uint64_t epoch,
    uint64_t seq, const void **buf, size_t *len);

/*
 * Stores o as the latest value of its key at once: appends it to the log
 * with revision = previous revision + 1 (1 for a new key), which it writes
 * back to o->revision (and o->lsn, o->prev), and points obs at it. When the
 * key had a value, it is copied to *prev (if prev is not NULL) and
 * *had_prev set to true. Aggregates are not touched: this is for tools and
 * tests; the daemon appends with store_log_append() and checkpoints.
 */
int store_obs_put(struct store_txn *t, struct store_obs *o,
    struct store_obs *prev, bool *had_prev);
/* The latest value of the key: 0, STORE_NOTFOUND or -1. */
int store_obs_get(struct store_txn *t, const char *district,
    const char *industry, const char *metric, const char *period,
    struct store_obs *out);
/* Only the canonical value of the key's latest observation (cheap: no log
 * read). 0, STORE_NOTFOUND or -1. */
int store_obs_value(struct store_txn *t, const char *district,
    const char *industry, const char *metric, const char *period,
    double *value);

/* The key's ObsRef: 0, STORE_NOTFOUND or -1. */
int store_ref_get(struct store_txn *t, const char *district,
    const char *industry, const char *metric, const char *period,
    struct store_ref *out);
int store_ref_put(struct store_txn *t, const char *district,
    const char *industry, const char *metric, const char *period,
    const struct store_ref *ref);

/* The log position the next append takes (1 in an empty log). */
int store_log_next(struct store_txn *t, uint64_t *lsn);
/* Appends o (its key, value, revision, prev and batch as set by the
 * caller) at the next position, which it writes to o->lsn. Leaves obs as
 * it is. */
int store_log_append(struct store_txn *t, struct store_obs *o);
/* The record at lsn: 0, STORE_NOTFOUND or -1. */
int store_log_get(struct store_txn *t, uint64_t lsn, struct store_obs *out);
/* Calls fn for each record from position from on, in log order; fn returns
 * 0 to go on, nonzero to stop (returned). */
int store_log_scan(struct store_txn *t, uint64_t from,
    int (*fn)(const struct store_obs *o, void *arg), void *arg);

/* Calls fn for each latest value matching f, in key order (district,
 * industry, metric, period). A district filter makes it a range scan. fn
 * returns 0 to go on, nonzero to stop (returned). */
int store_obs_scan(struct store_txn *t, const struct store_filter *f,
    int (*fn)(const struct store_obs *o, void *arg), void *arg);
/* Calls fn for every revision of one key, oldest first. */
int store_hist_scan(struct store_txn *t, const char *district,
    const char *industry, const char *metric, const char *period,
    int (*fn)(const struct store_obs *o, void *arg), void *arg);

/* Aggregates, as opaque packed bytes keyed by topic. get: *buf valid until
 * the transaction ends. scan: topics starting with prefix ("" for all), in
 * topic order. */
int store_agg_put(
    struct store_txn *t, const char *topic, const void *buf, size_t len);
int store_agg_get(
    struct store_txn *t, const char *topic, const void **buf, size_t *len);
/* Removes topic's aggregate: 0, STORE_NOTFOUND, STORE_FULL or -1. */
int store_agg_del(struct store_txn *t, const char *topic);
int store_agg_scan(struct store_txn *t, const char *prefix,
    int (*fn)(const char *topic, const void *buf, size_t len, void *arg),
    void *arg);

/* Named 64-bit counters (e.g. "pub_seq"); get gives 0 for an absent name. */
int store_meta_get(struct store_txn *t, const char *name, uint64_t *out);
int store_meta_put(struct store_txn *t, const char *name, uint64_t value);

/*
 * Files being staged. get: 0 with *out filled, STORE_NOTFOUND or -1. del
 * removes the stage record and every staged part of (agent_id, epoch)
 * (none: not an error). scan: each stage record in key order; fn returns
 * 0 to go on, nonzero to stop (returned). staged_get: *buf points into the
 * store, valid until the transaction ends; do not free.
 */
int store_stage_get(struct store_txn *t, const char *agent_id, uint64_t epoch,
    struct store_stage *out);
int store_stage_put(struct store_txn *t, const char *agent_id, uint64_t epoch,
    const struct store_stage *st);
int store_stage_del(struct store_txn *t, const char *agent_id, uint64_t epoch);
int store_stage_scan(struct store_txn *t,
    int (*fn)(const char *agent_id, uint64_t epoch,
	const struct store_stage *st, void *arg),
    void *arg);
int store_staged_put(struct store_txn *t, const char *agent_id, uint64_t epoch,
    uint32_t part, const void *buf, size_t len);
int store_staged_get(struct store_txn *t, const char *agent_id, uint64_t epoch,
    uint32_t part, const void **buf, size_t *len);

/*
 * Every record the store writes, in both environments, ends with a
 * checksum of its key and value (format 4: XXH3, libxxhash), checked at
 * every read: a damaged record reads as -1, logged with its database and
 * key. A store of format 3 (or 2, upgraded to 3 first) is upgraded (every
 * record sealed, one transaction per environment) when it is opened for
 * writing; opened read-only it is read unchecked, and store_checksummed()
 * says so. A store opened for writing is refused when any record but the
 * log's applied part fails (store_scrub() with log_from 0).
 */
bool store_checksummed(const struct store *s);

/* Called for each damaged record: its database's name, its key as a
 * person reads it, and why. Nonzero stops the scrub. */
typedef int (*store_scrub_fn)(
    const char *db, const char *key, const char *why, void *arg);
/*
 * Reads every record of every database of both environments in t and
 * checks its checksum (and that a log record decodes): the log from
 * position log_from on (0: from meta "applied" + 1, 1: all of it). A
 * database whose pages LMDB cannot walk to their end counts as one damaged
 * record, its key "(after N records)", why LMDB's message. *records counts
 * the records read. Returns the number of damaged records (0: none), -1
 * when the store has no checksums (an older format read-only) or could
 * not be read.
 */
int store_scrub(struct store_txn *t, uint64_t log_from, store_scrub_fn fn,
    void *arg, uint64_t *records);

/* Sizes and counts, from a read transaction. */
int store_stat(struct store_txn *t, struct store_stat *out);

/* Copies the store to dir (which must exist and be empty), compacted,
 * consistent, while writers go on (mdb_env_copy2 with MDB_CP_COMPACT), and
 * writes the copy's own store.id beside it (the store's id, the copy's
 * last transaction and size), so that the directory's contents restore
 * as they are. */
int store_backup(struct store *s, const char *dir);

#endif
