#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "envcheck.h"
#include "lmdbw.h"
#include "lockfile.h"
#include "log.h"
#include "outbox.h"
#include "xmalloc.h"

#define OUTBOX_MAP_START (16ULL << 20)
#define OUTBOX_MAP_MAX (64ULL << 30)

struct outbox {
	MDB_env *env;
	MDB_dbi meta;
	MDB_dbi pending;
	MDB_dbi dead;
	MDB_dbi marks;
	MDB_dbi sources;
	bool has_sources; /* false: a read-only outbox made before them */
	/* Read-only: a send was stopped before its first commit made the
	 * outbox's databases: it holds nothing (epoch 0, next seq 1). */
	bool empty;
	void *map_start; /* data.mdb's mapping, for outbox_unmap() */
	size_t map_len; /* 0: not known */
	int lockfd; /* -1 when read-only */
	uint64_t epoch;
	char *dir;
};

/*
 * One write transaction's work: returns 0, -1 (logged), or LMDBW_FULL to
 * have outbox_write() grow the map and run it again in a new transaction.
 */
typedef int (*outbox_txn_fn)(struct outbox *o, MDB_txn *txn, void *arg);

static int staged_txn(struct outbox *o, MDB_txn *txn, void *arg);

static int
outbox_fail(const char *what, int rc)
{
	log_error("outbox: %s: %s", what, mdb_strerror(rc));
	return -1;
}

static void
put_be64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = v & 0xff;
		v >>= 8;
	}
}

static uint64_t
get_be64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static int
meta_get(
    MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *out, bool *found)
{
	MDB_val k = { strlen(name), (void *)name };
	MDB_val v;
	int rc;

	rc = mdb_get(txn, dbi, &k, &v);
	if (rc == MDB_NOTFOUND) {
		*found = false;
		*out = 0;
		return 0;
	}
	if (rc != 0)
		return outbox_fail(name, rc);
	if (v.mv_size != 8) {
		log_error("outbox: corrupt meta value for %s", name);
		return -1;
	}
	*found = true;
	*out = get_be64(v.mv_data);
	return 0;
}

/* 0, LMDBW_FULL or -1. */
static int
meta_put(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t value)
{
	unsigned char buf[8];
	MDB_val k = { strlen(name), (void *)name };
	MDB_val v = { sizeof(buf), buf };
	int rc;

	put_be64(buf, value);
	rc = mdb_put(txn, dbi, &k, &v, 0);
	if (rc == MDB_MAP_FULL)
		return LMDBW_FULL;
	if (rc != 0)
		return outbox_fail(name, rc);
	return 0;
}

/* Doubles the map, up to OUTBOX_MAP_MAX: 0, LMDBW_FULL when it is there
 * already, or -1 (the lmdbw grow rule). */
static int
outbox_grow(void *arg)
{
	struct outbox *o = arg;
	MDB_envinfo info;
	uint64_t next;
	int rc;

	if ((rc = mdb_env_info(o->env, &info)) != 0)
		return outbox_fail("grow", rc);
	if (info.me_mapsize >= OUTBOX_MAP_MAX) {
		log_error("outbox: %s is full at its maximum size "
			  "(%llu bytes)",
		    o->dir, (unsigned long long)info.me_mapsize);
		return LMDBW_FULL;
	}
	next = info.me_mapsize * 2;
	if (next > OUTBOX_MAP_MAX)
		next = OUTBOX_MAP_MAX;
	/* The map may move: find it again before outbox_unmap(). */
	o->map_len = 0;
	if ((rc = mdb_env_set_mapsize(o->env, next)) != 0)
		return outbox_fail("grow", rc);
	return 0;
}

/* outbox_write()'s call. */
struct write_call {
	struct outbox *o;
	outbox_txn_fn fn;
	void *arg;
};

static int
write_fn(MDB_txn *txn, void *arg)
{
	struct write_call *c = arg;

	return c->fn(c->o, txn, c->arg);
}

/*
 * Runs fn in a durable write transaction, growing the map as needed
 * (lmdbw_write()). fn is run again after a full map, so it must keep
 * what it builds (as enqueue does) rather than build it twice. 0 or -1.
 */
static int
outbox_write(struct outbox *o, outbox_txn_fn fn, void *arg)
{
	struct write_call c = { o, fn, arg };

	if (lmdbw_write(
		o->env, 0, "outbox", write_fn, NULL, &c, outbox_grow, o) != 0)
		return -1;
	return 0;
}

/*
 * Begins a read transaction. A read-only outbox's map may have been grown by
 * the process that writes it: adopt the new size and begin again.
 */
static int
outbox_read_begin(struct outbox *o, MDB_txn **txn)
{
	int rc = mdb_txn_begin(o->env, NULL, MDB_RDONLY, txn);

	if (rc == MDB_MAP_RESIZED && (rc = mdb_env_set_mapsize(o->env, 0)) == 0)
		rc = mdb_txn_begin(o->env, NULL, MDB_RDONLY, txn);
	return rc;
}

static int
epoch_draw(uint64_t *epoch)
{
	ssize_t n;

	do {
		n = getrandom(epoch, sizeof(*epoch), 0);
		if (n == -1 && errno != EINTR) {
			log_error("outbox: getrandom: %s", strerror(errno));
			return -1;
		}
	} while (n != (ssize_t)sizeof(*epoch) || *epoch == 0);
	return 0;
}

static int
init_txn(struct outbox *o, MDB_txn *txn, void *arg)
{
	uint64_t next;
	bool found;
	int rc;

	(void)arg;
	if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &o->meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "pending", MDB_CREATE, &o->pending)) != 0 ||
	    (rc = mdb_dbi_open(txn, "dead", MDB_CREATE, &o->dead)) != 0 ||
	    (rc = mdb_dbi_open(txn, "marks", MDB_CREATE, &o->marks)) != 0 ||
	    (rc = mdb_dbi_open(txn, "sources", MDB_CREATE, &o->sources)) != 0) {
		if (rc == MDB_MAP_FULL)
			return LMDBW_FULL;
		return outbox_fail("open databases", rc);
	}
	o->has_sources = true;
	if (meta_get(txn, o->meta, "epoch", &o->epoch, &found) == -1)
		return -1;
	if (found && o->epoch != 0)
		return 0;
	if (epoch_draw(&o->epoch) == -1)
		return -1;
	if ((rc = meta_put(txn, o->meta, "epoch", o->epoch)) != 0)
		return rc;
	if (meta_get(txn, o->meta, "next_seq", &next, &found) == -1)
		return -1;
	if (!found)
		rc = meta_put(txn, o->meta, "next_seq", 1);
	return rc;
}

struct outbox *
outbox_open(const char *dir, char *err, size_t errlen)
{
	return outbox_open_map(dir, 0, err, errlen);
}

struct outbox *
outbox_open_map(const char *dir, uint64_t start, char *err, size_t errlen)
{
	struct outbox *o;
	MDB_envinfo info;
	char who[1100];
	int rc;

	bool exact = start != 0;

	if (start == 0)
		start = OUTBOX_MAP_START;
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(
		    err, errlen, "outbox: mkdir %s: %s", dir, strerror(errno));
		return NULL;
	}
	o = xcalloc(1, sizeof(*o));
	o->dir = xstrdup(dir);
	snprintf(who, sizeof(who), "outbox: %s", dir);
	o->lockfd = lockfile_take(dir, "lock", who, err, errlen);
	if (o->lockfd == -1)
		goto free_outbox;
	if ((rc = mdb_env_create(&o->env)) != 0) {
		snprintf(err, errlen, "outbox: create: %s", mdb_strerror(rc));
		goto lock_release;
	}
	if ((rc = mdb_env_set_maxdbs(o->env, 5)) != 0 ||
	    (rc = mdb_env_set_mapsize(o->env, start)) != 0 ||
	    (rc = mdb_env_open(o->env, dir, 0, 0600)) != 0) {
		envcheck_open_failed(dir, "outbox", rc, err, errlen);
		goto env_close;
	}
	/* Before any transaction reads a page. */
	if (envcheck_size(o->env, dir, "outbox", err, errlen) == -1)
		goto env_close;
	/* Keep a size an earlier run grew to, unless told a size (which
	 * LMDB raises to the pages in use). */
	if ((rc = mdb_env_set_mapsize(o->env, 0)) != 0 ||
	    (rc = mdb_env_info(o->env, &info)) != 0 ||
	    ((info.me_mapsize < start || exact) &&
		(rc = mdb_env_set_mapsize(o->env, start)) != 0)) {
		snprintf(
		    err, errlen, "outbox: map %s: %s", dir, mdb_strerror(rc));
		goto env_close;
	}
	if (outbox_write(o, init_txn, NULL) == -1 ||
	    outbox_write(o, staged_txn, NULL) == -1) {
		snprintf(err, errlen, "outbox: cannot initialize %s", dir);
		goto env_close;
	}
	return o;
env_close:
	mdb_env_close(o->env);
lock_release:
	close(o->lockfd);
free_outbox:
	free(o->dir);
	free(o);
	return NULL;
}

struct outbox *
outbox_open_readonly(const char *dir, char *err, size_t errlen)
{
	struct outbox *o;
	struct stat sb;
	char path[4096];
	MDB_txn *txn;
	bool found;
	int rc;

	/* Say that there is none rather than make one. */
	if ((size_t)snprintf(path, sizeof(path), "%s/data.mdb", dir) >=
	    sizeof(path)) {
		snprintf(err, errlen, "outbox: %s: path too long", dir);
		return NULL;
	}
	if (stat(path, &sb) == -1) {
		snprintf(err, errlen, "outbox: no outbox in %s: %s", dir,
		    strerror(errno));
		return NULL;
	}
	o = xcalloc(1, sizeof(*o));
	o->dir = xstrdup(dir);
	o->lockfd = -1;
	if ((rc = mdb_env_create(&o->env)) != 0) {
		snprintf(err, errlen, "outbox: create: %s", mdb_strerror(rc));
		goto free_outbox;
	}
	if ((rc = mdb_env_set_maxdbs(o->env, 5)) != 0 ||
	    (rc = mdb_env_open(o->env, dir, MDB_RDONLY, 0600)) != 0) {
		envcheck_open_failed(dir, "outbox", rc, err, errlen);
		goto env_close;
	}
	/* Before any transaction reads a page. */
	if (envcheck_size(o->env, dir, "outbox", err, errlen) == -1)
		goto env_close;
	if ((rc = outbox_read_begin(o, &txn)) != 0) {
		snprintf(
		    err, errlen, "outbox: read %s: %s", dir, mdb_strerror(rc));
		goto env_close;
	}
	/* A send killed before its first commit leaves an environment
	 * with no database at all: an outbox with nothing in it yet. */
	if (mdb_dbi_open(txn, "meta", 0, &o->meta) == MDB_NOTFOUND) {
		MDB_stat st;

		if (mdb_stat(txn, 0, &st) == 0 && st.ms_entries == 0) {
			mdb_txn_abort(txn);
			o->empty = true;
			return o;
		}
	}
	/* Handles opened in a read transaction outlive it once committed. */
	if ((rc = mdb_dbi_open(txn, "meta", 0, &o->meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "pending", 0, &o->pending)) != 0 ||
	    (rc = mdb_dbi_open(txn, "dead", 0, &o->dead)) != 0 ||
	    (rc = mdb_dbi_open(txn, "marks", 0, &o->marks)) != 0) {
		snprintf(err, errlen, "outbox: %s is not an outbox: %s", dir,
		    mdb_strerror(rc));
		goto txn_abort;
	}
	/* An outbox from before the sources has none until a writer opens
	 * it. */
	rc = mdb_dbi_open(txn, "sources", 0, &o->sources);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		snprintf(err, errlen, "outbox: %s: %s", dir, mdb_strerror(rc));
		goto txn_abort;
	}
	o->has_sources = rc == 0;
	if (meta_get(txn, o->meta, "epoch", &o->epoch, &found) == -1 ||
	    !found || o->epoch == 0) {
		snprintf(err, errlen, "outbox: %s has no epoch", dir);
		goto txn_abort;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		snprintf(
		    err, errlen, "outbox: read %s: %s", dir, mdb_strerror(rc));
		goto env_close;
	}
	return o;
txn_abort:
	mdb_txn_abort(txn);
env_close:
	mdb_env_close(o->env);
free_outbox:
	free(o->dir);
	free(o);
	return NULL;
}

void
outbox_close(struct outbox **o)
{
	if (o == NULL || *o == NULL)
		return;
	mdb_env_close((*o)->env);
	lockfile_release(&(*o)->lockfd);
	free((*o)->dir);
	free(*o);
	*o = NULL;
}

uint64_t
outbox_epoch(const struct outbox *o)
{
	return o->epoch;
}

struct enqueue {
	size_t n;
	outbox_build_fn build;
	void *arg;
	/* Built reports, kept so that a retry after growth builds none twice.
	 */
	void **bufs;
	size_t *lens;
	uint64_t first;
};

static int
enqueue_txn(struct outbox *o, MDB_txn *txn, void *arg)
{
	struct enqueue *e = arg;
	unsigned char kb[8];
	MDB_val k = { sizeof(kb), kb }, v;
	uint64_t next;
	bool found;
	size_t i;
	int rc;

	if (meta_get(txn, o->meta, "next_seq", &next, &found) == -1)
		return -1;
	if (!found || next == 0 || next > UINT64_MAX - e->n) {
		log_error("outbox: bad next_seq %llu in %s",
		    (unsigned long long)next, o->dir);
		return -1;
	}
	if (e->first != 0 && e->first != next) {
		log_error("outbox: next_seq moved during enqueue");
		return -1;
	}
	e->first = next;
	for (i = 0; i < e->n; i++) {
		if (e->bufs[i] == NULL &&
		    e->build(o->epoch, next + i, i, &e->bufs[i], &e->lens[i],
			e->arg) == -1) {
			log_error("outbox: building report %zu of %zu failed; "
				  "none enqueued",
			    i + 1, e->n);
			return -1;
		}
		put_be64(kb, next + i);
		v.mv_size = e->lens[i];
		v.mv_data = e->bufs[i];
		/* Seqs only rise, so each key goes at the end. */
		rc = mdb_put(txn, o->pending, &k, &v, MDB_APPEND);
		if (rc == MDB_MAP_FULL)
			return LMDBW_FULL;
		if (rc != 0)
			return outbox_fail("pending", rc);
	}
	return meta_put(txn, o->meta, "next_seq", next + e->n);
}

int
outbox_enqueue(struct outbox *o, size_t n, outbox_build_fn build, void *arg)
{
	struct enqueue e = { n, build, arg, NULL, NULL, 0 };
	size_t i;
	int rc;

	if (n == 0)
		return 0;
	e.bufs = xcalloc(n, sizeof(*e.bufs));
	e.lens = xcalloc(n, sizeof(*e.lens));
	rc = outbox_write(o, enqueue_txn, &e);
	for (i = 0; i < n; i++)
		free(e.bufs[i]);
	free(e.bufs);
	free(e.lens);
	return rc;
}

/* Finds where LMDB mapped data.mdb: the mapping of its device and inode
 * in /proc/self/maps. Leaves map_len 0 when not found. */
static void
outbox_map_find(struct outbox *o)
{
	unsigned long start, end, inode;
	unsigned dmaj, dmin;
	char line[4096];
	struct stat sb;
	FILE *fp;
	int fd;

	o->map_len = 0;
	if (mdb_env_get_fd(o->env, &fd) != 0 || fstat(fd, &sb) == -1 ||
	    (fp = fopen("/proc/self/maps", "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (sscanf(line, "%lx-%lx %*s %*s %x:%x %lu", &start, &end,
			&dmaj, &dmin, &inode) != 5 ||
		    inode != sb.st_ino || dmaj != major(sb.st_dev) ||
		    dmin != minor(sb.st_dev))
			continue;
		o->map_start = (void *)start;
		o->map_len = end - start;
		break;
	}
	fclose(fp);
}

/*
 * Drops this process's mappings of the map's pages. The page cache keeps
 * them and the next read faults them back in cheaply, but a backlog read
 * window after window no longer piles up in the agent's resident set.
 * Safe on a shared file mapping: no data is lost.
 */
static void
outbox_unmap(struct outbox *o)
{
	if (o->map_len == 0)
		outbox_map_find(o);
	if (o->map_len != 0)
		madvise(o->map_start, o->map_len, MADV_DONTNEED);
}

int
outbox_scan(struct outbox *o, uint64_t from, size_t max, outbox_pending_fn fn,
    void *arg)
{
	unsigned char kb[8];
	MDB_val k = { sizeof(kb), kb }, v;
	MDB_cursor *c;
	MDB_txn *txn;
	uint64_t next;
	size_t count = 0;
	bool found;
	int rc;

	if (o->empty)
		return 0;
	put_be64(kb, from);
	if ((rc = outbox_read_begin(o, &txn)) != 0)
		return outbox_fail("begin", rc);
	/* Beyond next_seq lie only a batch's reports not yet committed. */
	if (meta_get(txn, o->meta, "next_seq", &next, &found) == -1)
		goto txn_abort;
	if ((rc = mdb_cursor_open(txn, o->pending, &c)) != 0) {
		outbox_fail("pending", rc);
		goto txn_abort;
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint64_t seq;

		if (max != 0 && count == max)
			break;
		if (k.mv_size != 8) {
			log_error("outbox: corrupt pending key");
			rc = -1;
			goto cursor_close;
		}
		if ((seq = get_be64(k.mv_data)) >= next)
			break;
		count++;
		rc = fn(seq, v.mv_data, v.mv_size, arg);
		if (rc != 0)
			goto cursor_close;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	else if (rc != 0)
		rc = outbox_fail("pending", rc);
cursor_close:
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return rc;
txn_abort:
	mdb_txn_abort(txn);
	return -1;
}

struct remove {
	const uint64_t *seqs;
	size_t n;
};

static int
remove_txn(struct outbox *o, MDB_txn *txn, void *arg)
{
	struct remove *r = arg;
	unsigned char kb[8];
	MDB_val k = { sizeof(kb), kb };
	size_t i;
	int rc;

	for (i = 0; i < r->n; i++) {
		put_be64(kb, r->seqs[i]);
		rc = mdb_del(txn, o->pending, &k, NULL);
		if (rc == 0 || rc == MDB_NOTFOUND)
			rc = mdb_del(txn, o->sources, &k, NULL);
		if (rc == MDB_MAP_FULL)
			return LMDBW_FULL;
		if (rc != 0 && rc != MDB_NOTFOUND)
			return outbox_fail("remove", rc);
	}
	return 0;
}

int
outbox_remove(struct outbox *o, const uint64_t *seqs, size_t n)
{
	struct remove r = { seqs, n };

	if (n == 0)
		return 0;
	if (outbox_write(o, remove_txn, &r) == -1)
		return -1;
	outbox_unmap(o);
	return 0;
}

struct remove_range {
	uint64_t from;
	uint64_t to;
};

static int
remove_range_txn(struct outbox *o, MDB_txn *txn, void *arg)
{
	struct remove_range *r = arg;
	unsigned char kb[8];
	MDB_val k = { sizeof(kb), kb };
	int rc;

	for (uint64_t seq = r->from; seq <= r->to && seq != 0; seq++) {
		put_be64(kb, seq);
		rc = mdb_del(txn, o->pending, &k, NULL);
		if (rc == MDB_NOTFOUND)
			continue; /* a dead letter keeps its source */
		if (rc == 0)
			rc = mdb_del(txn, o->sources, &k, NULL);
		if (rc == MDB_MAP_FULL)
			return LMDBW_FULL;
		if (rc != 0 && rc != MDB_NOTFOUND)
			return outbox_fail("remove", rc);
	}
	return 0;
}

int
outbox_remove_pending(struct outbox *o, uint64_t from, uint64_t to)
{
	struct remove_range r = { from, to };

	if (from > to)
		return 0;
	if (outbox_write(o, remove_range_txn, &r) == -1)
		return -1;
	outbox_unmap(o);
	return 0;
}

struct kill {
	uint64_t seq;
	const void *ack;
	size_t ack_len;
};

static int
kill_txn(struct outbox *o, MDB_txn *txn, void *arg)
{
	struct kill *kl = arg;
	unsigned char kb[8];
	MDB_val k = { sizeof(kb), kb }, v, d;
	unsigned char *p;
	int rc;

	put_be64(kb, kl->seq);
	rc = mdb_get(txn, o->pending, &k, &v);
	if (rc == MDB_NOTFOUND) {
		log_error("outbox: kill: seq %llu is not pending",
		    (unsigned long long)kl->seq);
		return -1;
	}
	if (rc != 0)
		return outbox_fail("kill", rc);
	if (v.mv_size > UINT32_MAX) {
		log_error("outbox: kill: report too large");
		return -1;
	}
	/* Dead value: report length (4 bytes, big-endian), report, ack. */
	d.mv_size = 4 + v.mv_size + kl->ack_len;
	d.mv_data = p = xmalloc(d.mv_size);
	p[0] = v.mv_size >> 24;
	p[1] = v.mv_size >> 16 & 0xff;
	p[2] = v.mv_size >> 8 & 0xff;
	p[3] = v.mv_size & 0xff;
	memcpy(p + 4, v.mv_data, v.mv_size);
	if (kl->ack_len > 0)
		memcpy(p + 4 + v.mv_size, kl->ack, kl->ack_len);
	rc = mdb_put(txn, o->dead, &k, &d, 0);
	free(p);
	if (rc == 0)
		rc = mdb_del(txn, o->pending, &k, NULL);
	if (rc == MDB_MAP_FULL)
		return LMDBW_FULL;
	if (rc != 0)
		return outbox_fail("kill", rc);
	return 0;
}

int
outbox_kill(struct outbox *o, uint64_t seq, const void *ack, size_t ack_len)
{
	struct kill kl = { seq, ack, ack_len };

	return outbox_write(o, kill_txn, &kl);
}

int
outbox_dead_scan(struct outbox *o, outbox_dead_fn fn, void *arg)
{
	MDB_val k, v, src;
	MDB_cursor *c;
	MDB_txn *txn;
	int rc;

	if (o->empty)
		return 0;
	if ((rc = outbox_read_begin(o, &txn)) != 0)
		return outbox_fail("begin", rc);
	if ((rc = mdb_cursor_open(txn, o->dead, &c)) != 0) {
		outbox_fail("dead", rc);
		goto txn_abort;
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const unsigned char *p = v.mv_data;
		size_t rlen;

		if (k.mv_size != 8 || v.mv_size < 4)
			goto corrupt;
		rlen = (size_t)p[0] << 24 | (size_t)p[1] << 16 |
		       (size_t)p[2] << 8 | p[3];
		if (rlen > v.mv_size - 4)
			goto corrupt;
		src.mv_data = NULL;
		src.mv_size = 0;
		if (o->has_sources) {
			int src_rc = mdb_get(txn, o->sources, &k, &src);

			if (src_rc != 0 && src_rc != MDB_NOTFOUND) {
				rc = outbox_fail("sources", src_rc);
				goto cursor_close;
			}
		}
		rc = fn(get_be64(k.mv_data), p + 4, rlen, p + 4 + rlen,
		    v.mv_size - 4 - rlen, src.mv_data, src.mv_size, arg);
		if (rc != 0)
			goto cursor_close;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	else
		rc = outbox_fail("dead", rc);
cursor_close:
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return rc;
corrupt:
	log_error("outbox: corrupt dead record");
	rc = -1;
	goto cursor_close;
txn_abort:
	mdb_txn_abort(txn);
	return -1;
}

/* Counts the pending keys from seq `from` on: a batch's reports not yet
 * committed (another process may be writing them), or left by a crash. */
static int
staged_count(struct outbox *o, MDB_txn *txn, uint64_t from, uint64_t *n)
{
	unsigned char kb[8];
	MDB_val k = { sizeof(kb), kb }, v;
	MDB_cursor *c;
	int rc;

	*n = 0;
	if (from == 0)
		return 0;
	put_be64(kb, from);
	if ((rc = mdb_cursor_open(txn, o->pending, &c)) != 0)
		return outbox_fail("pending", rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
		(*n)++;
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return outbox_fail("pending", rc);
	return 0;
}

int
outbox_counts(
    struct outbox *o, uint64_t *pending, uint64_t *dead, uint64_t *next_seq)
{
	MDB_stat st;
	MDB_txn *txn;
	uint64_t staged;
	bool found;
	int rc;

	if (o->empty) {
		*pending = *dead = 0;
		*next_seq = 1;
		return 0;
	}
	if ((rc = outbox_read_begin(o, &txn)) != 0)
		return outbox_fail("begin", rc);
	if ((rc = mdb_stat(txn, o->pending, &st)) != 0) {
		outbox_fail("pending", rc);
		goto txn_abort;
	}
	*pending = st.ms_entries;
	if ((rc = mdb_stat(txn, o->dead, &st)) != 0) {
		outbox_fail("dead", rc);
		goto txn_abort;
	}
	*dead = st.ms_entries;
	if (meta_get(txn, o->meta, "next_seq", next_seq, &found) == -1 ||
	    staged_count(o, txn, *next_seq, &staged) == -1)
		goto txn_abort;
	*pending -= staged;
	mdb_txn_abort(txn);
	return 0;
txn_abort:
	mdb_txn_abort(txn);
	return -1;
}

struct outbox_batch {
	struct outbox *o;
	uint64_t first; /* next_seq when the batch began */
	size_t n; /* reports added */
	/* The open transaction's reports, written when it commits (and
	 * again after the map grew), and their sources (NULL: none). */
	void **bufs;
	size_t *lens;
	void **srcs;
	size_t *srclens;
	size_t nopen;
	size_t cap;
	size_t open_bytes;
	void *mark;
	size_t mark_len;
	bool failed;
};

/*
 * Deletes the keys of dbi (pending or sources) from seq on: a batch's
 * reports that were never committed. Each pass seeks from `from` again
 * with a key of its own: MDB_SET_RANGE points k into the map at the key it
 * found, and after the delete that memory holds whatever the page moved
 * there, a key before `from` (a committed report) or past the last one.
 * 0, LMDBW_FULL or -1.
 */
static int
staged_clear(struct outbox *o, MDB_txn *txn, MDB_dbi dbi, uint64_t from)
{
	unsigned char kb[8];
	MDB_val k, v;
	MDB_cursor *c;
	int rc;

	(void)o;
	if ((rc = mdb_cursor_open(txn, dbi, &c)) != 0)
		return outbox_fail("pending", rc);
	for (;;) {
		put_be64(kb, from);
		k.mv_size = sizeof(kb);
		k.mv_data = kb;
		if ((rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE)) != 0 ||
		    (rc = mdb_cursor_del(c, 0)) != 0)
			break;
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc == MDB_MAP_FULL)
		return LMDBW_FULL;
	return outbox_fail("clear", rc);
}

static int
staged_txn(struct outbox *o, MDB_txn *txn, void *arg)
{
	uint64_t next;
	bool found;
	int rc;

	(void)arg;
	if (meta_get(txn, o->meta, "next_seq", &next, &found) == -1)
		return -1;
	if (!found || next == 0)
		return 0;
	if ((rc = staged_clear(o, txn, o->pending, next)) != 0)
		return rc;
	return staged_clear(o, txn, o->sources, next);
}

static void
batch_free_open(struct outbox_batch *b)
{
	for (size_t i = 0; i < b->nopen; i++) {
		free(b->bufs[i]);
		free(b->srcs[i]);
	}
	b->nopen = 0;
	b->open_bytes = 0;
}

/* batch_flush()'s transaction. */
struct flush {
	struct outbox_batch *b;
	bool last;
};

/*
 * Writes the open transaction's reports and their sources and, when last,
 * next_seq past the batch and its mark. 0, LMDBW_FULL or -1.
 */
static int
flush_txn(struct outbox *o, MDB_txn *txn, void *arg)
{
	struct flush *f = arg;
	struct outbox_batch *b = f->b;
	unsigned char kb[8], vb[8];
	MDB_val k = { sizeof(kb), kb }, v;
	uint64_t seq = b->first + b->n - b->nopen;
	int rc;

	for (size_t i = 0; i < b->nopen; i++) {
		put_be64(kb, seq + i);
		v.mv_size = b->lens[i];
		v.mv_data = b->bufs[i];
		/* Seqs only rise, so each key goes at the end. */
		rc = mdb_put(txn, o->pending, &k, &v, MDB_APPEND);
		if (rc == 0 && b->srcs[i] != NULL) {
			v.mv_size = b->srclens[i];
			v.mv_data = b->srcs[i];
			rc = mdb_put(txn, o->sources, &k, &v, 0);
		}
		if (rc == MDB_MAP_FULL)
			return LMDBW_FULL;
		if (rc != 0)
			return outbox_fail("pending", rc);
	}
	if (!f->last)
		return 0;
	if ((rc = meta_put(txn, o->meta, "next_seq", b->first + b->n)) != 0 ||
	    b->mark == NULL)
		return rc;
	k.mv_size = b->mark_len;
	k.mv_data = b->mark;
	put_be64(vb, b->first);
	v.mv_size = sizeof(vb);
	v.mv_data = vb;
	rc = mdb_put(txn, o->marks, &k, &v, 0);
	if (rc == MDB_MAP_FULL)
		return LMDBW_FULL;
	if (rc != 0)
		return outbox_fail("marks", rc);
	return 0;
}

/* Commits the open transaction's reports (with next_seq and the mark when
 * last). 0 or -1. */
static int
batch_flush(struct outbox_batch *b, bool last)
{
	struct flush f = { b, last };

	if (outbox_write(b->o, flush_txn, &f) == -1)
		return -1;
	batch_free_open(b);
	return 0;
}

struct outbox_batch *
outbox_batch_begin(struct outbox *o)
{
	struct outbox_batch *b;
	MDB_txn *txn;
	bool found;
	int rc;

	/* What an aborted batch may have left. */
	if (outbox_write(o, staged_txn, NULL) == -1)
		return NULL;
	b = xcalloc(1, sizeof(*b));
	b->o = o;
	if ((rc = outbox_read_begin(o, &txn)) != 0) {
		outbox_fail("begin", rc);
		goto batch_free;
	}
	rc = meta_get(txn, o->meta, "next_seq", &b->first, &found);
	mdb_txn_abort(txn);
	if (rc == -1)
		goto batch_free;
	if (!found || b->first == 0) {
		log_error("outbox: bad next_seq %llu in %s",
		    (unsigned long long)b->first, o->dir);
		goto batch_free;
	}
	return b;
batch_free:
	free(b);
	return NULL;
}

int
outbox_batch_add(struct outbox_batch *b, outbox_build_fn build, void *arg)
{
	return outbox_batch_add_source(b, build, arg, NULL, 0);
}

int
outbox_batch_add_source(struct outbox_batch *b, outbox_build_fn build,
    void *arg, const void *src, size_t srclen)
{
	uint64_t seq = b->first + b->n;
	void *buf = NULL;
	size_t len = 0;

	if (b->failed) {
		log_error("outbox: add to a failed batch");
		return -1;
	}
	if (seq == UINT64_MAX) {
		log_error("outbox: seqs exhausted in %s", b->o->dir);
		goto fail;
	}
	if (build(b->o->epoch, seq, b->n, &buf, &len, arg) == -1) {
		log_error("outbox: building report %zu failed; none enqueued",
		    b->n + 1);
		goto fail;
	}
	if (b->nopen == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->bufs = xrealloc(b->bufs, b->cap * sizeof(*b->bufs));
		b->lens = xrealloc(b->lens, b->cap * sizeof(*b->lens));
		b->srcs = xrealloc(b->srcs, b->cap * sizeof(*b->srcs));
		b->srclens = xrealloc(b->srclens, b->cap * sizeof(*b->srclens));
	}
	b->bufs[b->nopen] = buf;
	b->srcs[b->nopen] = NULL;
	b->srclens[b->nopen] = srclen;
	if (src != NULL && srclen > 0) {
		b->srcs[b->nopen] = xmalloc(srclen);
		memcpy(b->srcs[b->nopen], src, srclen);
	}
	b->lens[b->nopen++] = len;
	b->open_bytes += len + srclen;
	b->n++;
	if (b->open_bytes < OUTBOX_BATCH_BYTES || batch_flush(b, false) == 0)
		return 0;
fail:
	b->failed = true;
	return -1;
}

int
outbox_batch_mark(struct outbox_batch *b, const void *key, size_t len)
{
	if (len == 0 || len > OUTBOX_MARK_MAX) {
		log_error("outbox: mark of %zu bytes", len);
		b->failed = true;
		return -1;
	}
	free(b->mark);
	b->mark = xmalloc(len);
	memcpy(b->mark, key, len);
	b->mark_len = len;
	return 0;
}

size_t
outbox_batch_count(const struct outbox_batch *b, uint64_t *first_seq)
{
	*first_seq = b->n > 0 ? b->first : 0;
	return b->n;
}

static void
batch_free(struct outbox_batch *b)
{
	batch_free_open(b);
	free(b->bufs);
	free(b->lens);
	free(b->srcs);
	free(b->srclens);
	free(b->mark);
	free(b);
}

int
outbox_batch_commit(struct outbox_batch **bp)
{
	struct outbox_batch *b = *bp;
	int rc = -1;

	*bp = NULL;
	if (b->failed)
		log_error("outbox: commit of a failed batch");
	else
		rc = batch_flush(b, true);
	if (rc == -1) {
		*bp = b;
		outbox_batch_abort(bp);
		return -1;
	}
	batch_free(b);
	return 0;
}

void
outbox_batch_abort(struct outbox_batch **bp)
{
	struct outbox_batch *b;

	if (bp == NULL || (b = *bp) == NULL)
		return;
	*bp = NULL;
	/* Earlier transactions of the batch wrote beyond next_seq. Should
	 * this fail, the next batch or open clears them. */
	if (b->n > b->nopen)
		outbox_write(b->o, staged_txn, NULL);
	batch_free(b);
}

int
outbox_marked(struct outbox *o, const void *key, size_t len, bool *found)
{
	MDB_val k = { len, (void *)key }, v;
	MDB_txn *txn;
	int rc;

	*found = false;
	if (len == 0 || len > OUTBOX_MARK_MAX || o->empty)
		return 0;
	if ((rc = outbox_read_begin(o, &txn)) != 0)
		return outbox_fail("begin", rc);
	rc = mdb_get(txn, o->marks, &k, &v);
	mdb_txn_abort(txn);
	if (rc == 0)
		*found = true;
	else if (rc != MDB_NOTFOUND)
		return outbox_fail("marks", rc);
	return 0;
}

struct unmark {
	const void *key;
	size_t len;
};

static int
unmark_txn(struct outbox *o, MDB_txn *txn, void *arg)
{
	struct unmark *u = arg;
	MDB_val k = { u->len, (void *)u->key };
	int rc;

	if (u->key == NULL)
		rc = mdb_drop(txn, o->marks, 0);
	else
		rc = mdb_del(txn, o->marks, &k, NULL);
	if (rc == MDB_MAP_FULL)
		return LMDBW_FULL;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return outbox_fail("unmark", rc);
	return 0;
}

int
outbox_unmark(struct outbox *o, const void *key, size_t len)
{
	struct unmark u = { key, len };

	if (key != NULL && (len == 0 || len > OUTBOX_MARK_MAX))
		return 0;
	return outbox_write(o, unmark_txn, &u);
}

int
outbox_source(struct outbox *o, uint64_t seq, void **buf, size_t *len)
{
	unsigned char kb[8];
	MDB_val k = { sizeof(kb), kb }, v;
	MDB_txn *txn;
	int rc;

	*buf = NULL;
	*len = 0;
	if (!o->has_sources || o->empty)
		return 1;
	put_be64(kb, seq);
	if ((rc = outbox_read_begin(o, &txn)) != 0)
		return outbox_fail("begin", rc);
	rc = mdb_get(txn, o->sources, &k, &v);
	if (rc == 0) {
		*buf = xmalloc(v.mv_size > 0 ? v.mv_size : 1);
		memcpy(*buf, v.mv_data, v.mv_size);
		*len = v.mv_size;
	}
	mdb_txn_abort(txn);
	if (rc == MDB_NOTFOUND)
		return 1;
	if (rc != 0)
		return outbox_fail("sources", rc);
	return 0;
}

static int
purge_txn(struct outbox *o, MDB_txn *txn, void *arg)
{
	uint64_t *n = arg;
	MDB_cursor *c;
	MDB_val k, v;
	MDB_stat st;
	int rc;

	if ((rc = mdb_stat(txn, o->dead, &st)) != 0)
		return outbox_fail("dead", rc);
	*n = st.ms_entries;
	if ((rc = mdb_cursor_open(txn, o->dead, &c)) != 0)
		return outbox_fail("dead", rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		int drc = mdb_del(txn, o->sources, &k, NULL);

		if (drc != 0 && drc != MDB_NOTFOUND) {
			rc = drc;
			break;
		}
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		rc = mdb_drop(txn, o->dead, 0);
	if (rc == MDB_MAP_FULL)
		return LMDBW_FULL;
	if (rc != 0)
		return outbox_fail("purge", rc);
	return 0;
}

int
outbox_dead_purge(struct outbox *o, uint64_t *n)
{
	*n = 0;
	if (o->lockfd == -1) {
		log_error("outbox: purge needs the outbox open for writing");
		return -1;
	}
	return outbox_write(o, purge_txn, n);
}
