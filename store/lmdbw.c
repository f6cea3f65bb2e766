#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <lmdb.h>

#include "envcheck.h"
#include "lmdbw.h"
#include "log.h"

int
lmdbw_run(const struct lmdbw_ops *ops, void *ctx, lmdbw_fn fn, void *arg,
    void (*undo)(void *undo_arg), void *undo_arg)
{
	void *txn;
	int rc;

	for (;;) {
		if (ops->begin(ctx, &txn) == -1) {
			rc = -1;
		} else if ((rc = fn(txn, arg)) != 0) {
			ops->abort(ctx, txn);
		} else {
			rc = ops->commit(ctx, txn);
		}
		if (rc == 0)
			return 0;
		if (undo != NULL)
			undo(undo_arg);
		if (rc != LMDBW_FULL)
			return -1;
		if ((rc = ops->grow(ctx)) != 0)
			return rc == LMDBW_FULL ? LMDBW_FULL : -1;
	}
}

/* lmdbw_write()'s call, the context of its operations. */
struct env_write {
	MDB_env *env;
	unsigned int flags;
	const char *who;
	int (*fn)(MDB_txn *txn, void *arg);
	void *arg;
	int (*grow)(void *gctx);
	void *gctx;
};

static int
env_begin(void *ctx, void **txn)
{
	struct env_write *w = ctx;
	MDB_txn *x;
	int rc;

	if ((rc = mdb_txn_begin(w->env, NULL, w->flags, &x)) != 0) {
		log_error("%s: begin: %s", w->who, mdb_strerror(rc));
		return -1;
	}
	*txn = x;
	return 0;
}

static int
env_commit(void *ctx, void *txn)
{
	struct env_write *w = ctx;
	int rc;

	/* The file covers its count (envcheck.h); a failure leaves the
	 * next open to refuse it, so it is logged. */
	if (envcheck_file_fit(w->env, true) == -1)
		log_error("%s: size data.mdb: %s", w->who, strerror(errno));
	rc = mdb_txn_commit(txn);
	if (envcheck_file_fit(w->env, false) == -1)
		log_error("%s: size data.mdb: %s", w->who, strerror(errno));

	if (rc == MDB_MAP_FULL)
		return LMDBW_FULL;
	if (rc != 0) {
		log_error("%s: commit: %s", w->who, mdb_strerror(rc));
		return -1;
	}
	return 0;
}

static void
env_abort(void *ctx, void *txn)
{
	(void)ctx;
	mdb_txn_abort(txn);
}

static int
env_grow(void *ctx)
{
	struct env_write *w = ctx;

	return w->grow(w->gctx);
}

static int
env_fn(void *txn, void *arg)
{
	struct env_write *w = arg;

	return w->fn(txn, w->arg);
}

int
lmdbw_write(MDB_env *env, unsigned int flags, const char *who,
    int (*fn)(MDB_txn *txn, void *arg), void (*undo)(void *arg), void *arg,
    int (*grow)(void *gctx), void *gctx)
{
	static const struct lmdbw_ops ops = { env_begin, env_commit, env_abort,
		env_grow };
	struct env_write w = { env, flags, who, fn, arg, grow, gctx };

	return lmdbw_run(&ops, &w, env_fn, &w, undo, arg);
}
