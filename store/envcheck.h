/*
 * Checks of an LMDB environment's file before anything in it is trusted,
 * for the daemon's store and the agent's outbox: store/ only (it takes
 * LMDB's types).
 *
 * LMDB maps data.mdb and reads its pages in place. A file cut short
 * (a full disk, a bad copy, a truncate) still opens, and the first read of
 * a page past its end kills the process with SIGBUS; an empty one is taken
 * for a new environment. So:
 *
 *   - envcheck_size(), right after mdb_env_open() and before any
 *     transaction, compares the file's size with the pages its meta page
 *     says are in use, and refuses a file too short for them.
 *   - The store keeps its identity in a small file beside data.mdb,
 *     ENVCHECK_ID_FILE ("store.id": the store's random id, the last
 *     transaction and the file size recorded, one text line, replaced
 *     atomically and fsynced), read before data.mdb is opened: an empty or
 *     missing data.mdb where it says a store was, another store's, or an
 *     older one (fewer transactions, a smaller file) is refused rather than
 *     served.
 *
 * Each function returns 0, or -1 with a reason in err that names the file
 * and the way out (README, "Backup and restore").
 */
#ifndef INDICATOR_ENVCHECK_H
#define INDICATOR_ENVCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#define ENVCHECK_ID_FILE "store.id"

/* What store.id records. */
struct envcheck_id {
	uint64_t id; /* random, drawn when the store got its id; never 0 */
	uint64_t txn; /* the last transaction known durable when written */
	uint64_t size; /* data.mdb's size then, bytes */
};

/* envcheck.c */

/*
 * Refuses an environment whose data.mdb is shorter than the pages its meta
 * page says are in use (me_last_pgno + 1 pages of the environment's page
 * size): call after mdb_env_open() and before the first transaction. what
 * names the environment in err ("store", "outbox").
 */
int envcheck_size(
    MDB_env *env, const char *dir, const char *what, char *err, size_t errlen);

/* Why mdb_env_open() failed on dir's data.mdb, rc its error, in err:
 * MDB_INVALID (a file too short for its meta pages, or not LMDB's) named
 * as damage, with the way out. */
void envcheck_open_failed(
    const char *dir, const char *what, int rc, char *err, size_t errlen);

/*
 * Reads dir/store.id into *out; *found false (and 0 returned) when there is
 * none. A file that does not parse is refused: it is never written but
 * whole.
 */
int envcheck_id_read(const char *dir, struct envcheck_id *out, bool *found,
    char *err, size_t errlen);

/* Writes dir/store.id: a new file, fsynced, renamed over the old one. */
int envcheck_id_write(
    const char *dir, const struct envcheck_id *id, char *err, size_t errlen);

/*
 * Before mdb_env_open(), with what envcheck_id_read() found: refuses a
 * missing or empty dir/data.mdb where store.id says a store was (LMDB
 * would make a new, empty one in its place).
 */
int envcheck_present(
    const char *dir, const struct envcheck_id *id, char *err, size_t errlen);

/*
 * After the store is open: refuses it unless it is the store that store.id
 * describes (stored_id, 0 when the store has none) at least as far on
 * (its last transaction txn, its file size) as store.id recorded.
 */
int envcheck_same(const char *dir, const struct envcheck_id *id,
    uint64_t stored_id, uint64_t txn, uint64_t size, char *err, size_t errlen);

/* A new random store id (getrandom), never 0. 0 or -1 (errno). */
int envcheck_id_new(uint64_t *id);

/* data.mdb's size, from the environment's open file. 0 or -1 (errno). */
int envcheck_file_size(MDB_env *env, uint64_t *size);

/*
 * Keeps data.mdb covering every page its meta page counts, as
 * envcheck_size() requires at each open. LMDB counts the pages a
 * transaction freed again before it ended (its "loose" pages: a page
 * copied for a write, then emptied by a delete) without writing them;
 * when they are the highest, the file would end before the count, a state
 * LMDB never reads past but the check refuses. So a write commit is
 * bracketed: with ahead, before it, the file is extended (sparse) to the
 * map's size, when no count can pass it; after it, set to exactly the
 * count. A kill at any instant leaves a file at least as long as its
 * count. 0, or -1 (errno) for the caller to log.
 */
int envcheck_file_fit(MDB_env *env, bool ahead);

#endif
