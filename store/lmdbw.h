/*
 * One LMDB write, grown as needed: the code base's one grow-and-retry
 * loop, shared by the daemon's store (store_write(), with its two
 * environments) and the agent's outbox (one environment).
 *
 * lmdbw_run() begins a write transaction, runs fn in it and commits. When
 * fn or the commit says the map is full (LMDBW_FULL), the transaction is
 * aborted, undo(undo_arg) (if not NULL) forgets what fn did outside LMDB, the
 * owner grows its map by its own rule, and fn runs again in a new
 * transaction. After any other failure of fn or the commit the
 * transaction is aborted, undo runs, and the write fails.
 *
 * Only store/ includes this header (it names LMDB's types).
 */
#ifndef INDICATOR_LMDBW_H
#define INDICATOR_LMDBW_H

#include <lmdb.h>

/* The map is full; equal to STORE_FULL, so that store functions' codes
 * pass through unchanged. */
#define LMDBW_FULL 2

/*
 * How an owner writes: its transactions and its map. ctx is the owner's.
 */
struct lmdbw_ops {
	/* Begins a write transaction: 0 with *txn set, or -1 (logged). */
	int (*begin)(void *ctx, void **txn);
	/* Commits txn and ends it in every case: 0, LMDBW_FULL or -1
	 * (logged). */
	int (*commit)(void *ctx, void *txn);
	/* Ends txn without committing. */
	void (*abort)(void *ctx, void *txn);
	/* Grows the map (the one found full): 0 when grown, LMDBW_FULL when
	 * it is at its maximum, -1 on failure (logged). */
	int (*grow)(void *ctx);
};

/* What runs in the transaction: 0, LMDBW_FULL or -1 (logged); it must
 * not end txn. */
typedef int (*lmdbw_fn)(void *txn, void *arg);

/* lmdbw.c */

/*
 * The loop. Returns 0 once a commit succeeded; LMDBW_FULL when the map
 * was full and grow said it is at its maximum; -1 after any other
 * failure (undo has run).
 */
int lmdbw_run(const struct lmdbw_ops *ops, void *ctx, lmdbw_fn fn, void *arg,
    void (*undo)(void *undo_arg), void *undo_arg);

/*
 * lmdbw_run() on one environment: mdb_txn_begin(env, NULL, flags),
 * mdb_txn_commit(), with fn given the MDB_txn *. grow(gctx) grows env's
 * map as lmdbw_ops.grow says. Each commit is bracketed by
 * envcheck_file_fit(), so that data.mdb always covers the pages its meta
 * page counts. LMDB failures are logged as "<who>: begin: ..." and
 * "<who>: commit: ...".
 */
int lmdbw_write(MDB_env *env, unsigned int flags, const char *who,
    int (*fn)(MDB_txn *txn, void *arg), void (*undo)(void *arg), void *arg,
    int (*grow)(void *gctx), void *gctx);

#endif
