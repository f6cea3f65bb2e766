/*
 * An LD_PRELOAD library for the crash tests, to kill a process at an
 * instant no timing can hit. With INDICATOR_KILL_AT=mdb_drop in its
 * environment, a process that loads it kills itself (SIGKILL) as it first
 * calls mdb_drop(), before LMDB runs it; without, mdb_drop() is LMDB's.
 *
 * store.c calls mdb_drop() only in the second step of the format 2
 * upgrade (the tables dropped from the log's environment, once their copy
 * in tables/ committed): a kill there lands between its two commits.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

int
mdb_drop(MDB_txn *txn, MDB_dbi dbi, int del)
{
	static int (*real)(MDB_txn *, MDB_dbi, int);
	const char *at = getenv("INDICATOR_KILL_AT");

	if (at != NULL && strcmp(at, "mdb_drop") == 0)
		raise(SIGKILL);
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "mdb_drop");
	return real(txn, dbi, del);
}
