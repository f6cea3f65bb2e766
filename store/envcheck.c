/*
 * Checks of an LMDB environment's file before it is trusted (envcheck.h).
 */
#include <sys/random.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envcheck.h"

/* What every refusal ends with: where to go from here. */
#define RESTORE_HINT                                                   \
	"restore the last backup (stop the daemon, put the backup's "  \
	"data.mdb and store.id in %s, start it: README, \"Backup and " \
	"restore\"), or move %s aside to start an empty store on purpose"

/* The store.id line, and the longest one. */
#define ID_FORMAT                                                            \
	"indicatord-store 1 id=%016" PRIx64 " txn=%" PRIu64 " size=%" PRIu64 \
	"\n"
#define ID_LINE_MAX 128

int
envcheck_id_new(uint64_t *id)
{
	ssize_t n;

	do {
		n = getrandom(id, sizeof(*id), 0);
		if (n == -1 && errno != EINTR)
			return -1;
	} while (n != (ssize_t)sizeof(*id) || *id == 0);
	return 0;
}

int
envcheck_file_size(MDB_env *env, uint64_t *size)
{
	struct stat st;
	mdb_filehandle_t fd;
	int rc;

	if ((rc = mdb_env_get_fd(env, &fd)) != 0) {
		errno = rc;
		return -1;
	}
	if (fstat(fd, &st) == -1)
		return -1;
	*size = (uint64_t)st.st_size;
	return 0;
}

int
envcheck_file_fit(MDB_env *env, bool ahead)
{
	MDB_envinfo info;
	MDB_stat st;
	uint64_t size, want;
	mdb_filehandle_t fd;
	int rc;

	if ((rc = mdb_env_info(env, &info)) != 0 ||
	    (rc = mdb_env_stat(env, &st)) != 0 ||
	    (rc = mdb_env_get_fd(env, &fd)) != 0) {
		errno = rc;
		return -1;
	}
	if (envcheck_file_size(env, &size) == -1)
		return -1;
	want = ahead ? info.me_mapsize
		     : ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
	if (ahead ? size >= want : size == want)
		return 0;
	return ftruncate(fd, (off_t)want);
}

int
envcheck_size(
    MDB_env *env, const char *dir, const char *what, char *err, size_t errlen)
{
	MDB_envinfo info;
	MDB_stat st;
	uint64_t size, need;
	int rc;

	/* The meta page first, then the file: pages are written before the
	 * meta page that counts them, so a writer in another process can
	 * only have made the file longer since. */
	if ((rc = mdb_env_info(env, &info)) != 0 ||
	    (rc = mdb_env_stat(env, &st)) != 0) {
		snprintf(
		    err, errlen, "%s: %s: %s", what, dir, mdb_strerror(rc));
		return -1;
	}
	if (envcheck_file_size(env, &size) == -1) {
		snprintf(err, errlen, "%s: %s/data.mdb: %s", what, dir,
		    strerror(errno));
		return -1;
	}
	need = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
	if (size >= need)
		return 0;
	if (strcmp(what, "store") == 0)
		snprintf(err, errlen,
		    "%s: %s/data.mdb is truncated: %" PRIu64 " bytes, but its "
		    "meta page counts %" PRIu64 " pages of %u bytes (%" PRIu64
		    " bytes) in use; it is not read, since reading past its "
		    "end would crash; " RESTORE_HINT,
		    what, dir, size, (uint64_t)info.me_last_pgno + 1,
		    st.ms_psize, need, dir, dir);
	else
		snprintf(err, errlen,
		    "%s: %s/data.mdb is truncated: %" PRIu64 " bytes, but its "
		    "meta page counts %" PRIu64 " bytes in use; it is not "
		    "read, since reading past its end would crash; move %s "
		    "aside (its pending reports are lost: send their files "
		    "again) to start a new one",
		    what, dir, size, need, dir);
	return -1;
}

void
envcheck_open_failed(
    const char *dir, const char *what, int rc, char *err, size_t errlen)
{
	if (rc == MDB_INVALID && strcmp(what, "store") == 0)
		snprintf(err, errlen,
		    "%s: %s/data.mdb is damaged (%s: too short for its meta "
		    "pages, or not LMDB's); " RESTORE_HINT,
		    what, dir, mdb_strerror(rc), dir, dir);
	else if (rc == MDB_INVALID)
		snprintf(err, errlen,
		    "%s: %s/data.mdb is damaged (%s: too short for its meta "
		    "pages, or not LMDB's); move %s aside to start a new one",
		    what, dir, mdb_strerror(rc), dir);
	else
		snprintf(err, errlen, "%s: open %s: %s", what, dir,
		    mdb_strerror(rc));
}

int
envcheck_id_read(const char *dir, struct envcheck_id *out, bool *found,
    char *err, size_t errlen)
{
	char path[4096], line[ID_LINE_MAX + 1], check[ID_LINE_MAX + 1];
	ssize_t n;
	int fd;

	*found = false;
	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "%s/" ENVCHECK_ID_FILE, dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "store: %s: %s", path, strerror(errno));
		return -1;
	}
	n = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (n == -1) {
		snprintf(err, errlen, "store: %s: %s", path, strerror(errno));
		return -1;
	}
	line[n] = '\0';
	/* Exactly what envcheck_id_write() writes, or nothing. */
	if (sscanf(line,
		"indicatord-store 1 id=%16" SCNx64 " txn=%" SCNu64
		" size=%" SCNu64,
		&out->id, &out->txn, &out->size) != 3 ||
	    out->id == 0 ||
	    (size_t)snprintf(check, sizeof(check), ID_FORMAT, out->id, out->txn,
		out->size) != (size_t)n ||
	    strcmp(check, line) != 0) {
		snprintf(err, errlen,
		    "store: %s does not read as a store identity; it is "
		    "written whole or not at all, so something else changed "
		    "it: check %s/data.mdb with indicatorctl verify, then "
		    "remove %s to accept that data.mdb as the store",
		    path, dir, path);
		return -1;
	}
	*found = true;
	return 0;
}

int
envcheck_id_write(
    const char *dir, const struct envcheck_id *id, char *err, size_t errlen)
{
	char path[4096], tmp[4096], line[ID_LINE_MAX + 1];
	int fd, n;

	snprintf(path, sizeof(path), "%s/" ENVCHECK_ID_FILE, dir);
	snprintf(tmp, sizeof(tmp), "%s/." ENVCHECK_ID_FILE ".tmp", dir);
	n = snprintf(line, sizeof(line), ID_FORMAT, id->id, id->txn, id->size);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1)
		goto fail;
	if (write(fd, line, (size_t)n) != n || fsync(fd) == -1) {
		close(fd);
		unlink(tmp);
		goto fail;
	}
	if (close(fd) == -1 || rename(tmp, path) == -1) {
		unlink(tmp);
		goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "store: %s: %s", path, strerror(errno));
	return -1;
}

int
envcheck_present(
    const char *dir, const struct envcheck_id *id, char *err, size_t errlen)
{
	char path[4096];
	struct stat st;
	bool missing = false;

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (stat(path, &st) == 0) {
		if (st.st_size > 0)
			return 0;
	} else if (errno == ENOENT) {
		missing = true;
	} else {
		snprintf(err, errlen, "store: %s: %s", path, strerror(errno));
		return -1;
	}
	snprintf(err, errlen,
	    "store: %s is %s, but %s/" ENVCHECK_ID_FILE
	    " says store %016" PRIx64 " was here (%" PRIu64
	    " bytes at transaction %" PRIu64
	    "): it was truncated, deleted or replaced, and an empty store is "
	    "not served in its place; " RESTORE_HINT,
	    path, missing ? "missing" : "empty", dir, id->id, id->size, id->txn,
	    dir, dir);
	return -1;
}

int
envcheck_same(const char *dir, const struct envcheck_id *id, uint64_t stored_id,
    uint64_t txn, uint64_t size, char *err, size_t errlen)
{
	if (stored_id != id->id) {
		char theirs[32];

		if (stored_id == 0)
			snprintf(
			    theirs, sizeof(theirs), "a store without an id");
		else
			snprintf(theirs, sizeof(theirs), "store %016" PRIx64,
			    stored_id);
		snprintf(err, errlen,
		    "store: %s/data.mdb is %s, but %s/" ENVCHECK_ID_FILE
		    " says store %016" PRIx64 " was here: it is not this "
		    "directory's store; if it is the one you mean to serve "
		    "(a restore), copy its backup's store.id too, or remove "
		    "%s/" ENVCHECK_ID_FILE "; else " RESTORE_HINT,
		    dir, theirs, dir, id->id, dir, dir, dir);
		return -1;
	}
	if (txn < id->txn || size < id->size) {
		snprintf(err, errlen,
		    "store: %s/data.mdb is older than the store last written "
		    "here: transaction %" PRIu64 " and %" PRIu64
		    " bytes, where %s/" ENVCHECK_ID_FILE
		    " recorded transaction "
		    "%" PRIu64 " and %" PRIu64 " bytes; it was truncated or "
		    "replaced by an older copy; if that copy is a backup you "
		    "mean to restore, copy its store.id too; "
		    "else " RESTORE_HINT,
		    dir, txn, size, dir, id->txn, id->size, dir, dir);
		return -1;
	}
	return 0;
}
