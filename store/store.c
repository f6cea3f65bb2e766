#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <xxhash.h>
#include <pthread.h>
#include <stdatomic.h>

#include "envcheck.h"
#include "lmdbw.h"
#include "log.h"
#include "pbfields.h"
#include "pbpack.h"
#include "pbwire.h"
#include "store.h"
#include "store.pb-c.h"
#include "xmalloc.h"

#define STORE_MAP_DEFAULT (64ULL << 20)
#define STORE_MAP_MAX_DEFAULT (16ULL << 30)
#define STORE_META_NAME_MAX 255
/* Four codes, each with its NUL. */
#define STORE_OBS_KEY_MAX (3 * (IND_CODE_MAX + 1) + IND_PERIOD_MAX + 1)
#define STORE_SEQ_KEY_MAX (IND_AGENT_ID_MAX + 1 + 8 + 8)
/* A StoredObservation packs to well under this. */
#define STORE_OBS_VAL_MAX PBPACK_OBSERVATION_MAX
#define STORE_BEGIN_TRIES 4

_Static_assert(STORE_FULL == LMDBW_FULL, "store functions' codes pass "
					 "through lmdbw_run()");
/* meta: the store's random id, also in store.id beside data.mdb. */
#define STORE_META_ID "store_id"
/* store.id is rewritten at most this often under load (each time an fsync
 * of a small file). */
#define STORE_ID_EVERY_MS 1000

/* DB_TMETA: the tables' meta (applied, pub_seq, registry_hash), in the
 * tables environment; the log's (everything else) is DB_META. */
enum store_db {
	DB_OBS,
	DB_LOG,
	DB_SEQ,
	DB_REJECT,
	DB_AGG,
	DB_META,
	DB_STAGE,
	DB_STAGED,
	DB_TMETA,
	DB_COUNT
};

static const char *const db_names[DB_COUNT] = {
	"obs",
	"log",
	"seq",
	"reject",
	"agg",
	"meta",
	"stage",
	"staged",
	"meta",
};

/* The two environments: the log's (data.mdb in the directory) and the
 * tables' (tables/data.mdb). */
enum store_env { ENV_LOG, ENV_TABLES };

/* The tables environment's directory, in the store's. */
#define STORE_TABLES_DIR "tables"

/* meta names that live with the tables. */
static const char *const tables_meta[] = { STORE_META_APPLIED, "pub_seq",
	"registry_hash" };

struct store {
	MDB_env *env; /* the log's */
	/* The tables' (format 3); NULL for a format 2 store opened
	 * read-only, whose tables are still in env. */
	MDB_env *tenv;
	char *tdir;
	/* Tables transactions hold it shared; growing the tables' map takes
	 * it alone (the checkpoint thread grows while the ingest thread
	 * may read). */
	pthread_rwlock_t tlock;
	unsigned char where[DB_COUNT]; /* each database's enum store_env */
	/* Format 4, per environment: every value ends with its checksum
	 * (val_seal()). False for an environment of an older format opened
	 * read-only, read as it is. */
	bool sums[2];
	MDB_dbi dbi[DB_COUNT];
	bool have[DB_COUNT];
	bool readonly;
	uint64_t map_max;
	char *dir;
	atomic_int ntxn; /* open transactions on env */
	atomic_int tntxn; /* on tenv */
	atomic_int last_full; /* the environment last found full */
	enum store_sync sync;
	/* The store's identity (envcheck.h): what store.id said at open, its
	 * id as data.mdb holds it (0: none), and when store.id was last
	 * written (monotonic ms; 0: never by this process). */
	struct envcheck_id ident;
	bool ident_found;
	uint64_t stored_id;
	int64_t ident_written_ms;
	bool ident_warned;
};

struct store_txn {
	struct store *s;
	MDB_txn *txn; /* in the log's environment; NULL: none */
	MDB_txn *ttxn; /* in the tables'; NULL: none (or no tenv) */
	bool write; /* txn writes */
	bool twrite; /* ttxn writes */
	bool full;
	int full_env; /* the environment that was full */
	/* The databases present when the transaction began. */
	bool have[DB_COUNT];
	uint64_t next_lsn; /* 0 until the log's end is read */
};

struct key {
	unsigned char b[STORE_OBS_KEY_MAX > STORE_SEQ_KEY_MAX
			    ? STORE_OBS_KEY_MAX
			    : STORE_SEQ_KEY_MAX];
	size_t len;
};

/*
 * Logs an LMDB failure. The same failure again (a full disk fails every
 * batch's commit, many a second) is logged at most once a second, with the
 * number of repeats left out since the last line.
 */
static int
store_fail(const char *what, int rc)
{
	/* Per thread: the ledger's checkpoint thread fails too. */
	static _Thread_local struct log_limit limit;
	static _Thread_local const char *last_what;
	static _Thread_local int last_rc;
	unsigned long suppressed = 0;

	if (what == last_what && rc == last_rc) {
		if (!log_limit_pass(&limit, 1, &suppressed))
			return -1;
	} else {
		if (limit.suppressed > 0)
			log_error("store: %s: %s (%lu times more)", last_what,
			    mdb_strerror(last_rc), limit.suppressed);
		limit.suppressed = 0;
		(void)log_limit_pass(&limit, 1, &suppressed);
		last_what = what;
		last_rc = rc;
	}
	if (suppressed > 0)
		log_error("store: %s: %s (and %lu times more since the last "
			  "line)",
		    what, mdb_strerror(rc), suppressed);
	else
		log_error("store: %s: %s", what, mdb_strerror(rc));
	return -1;
}

/* MDB_MAP_FULL marks the transaction so that a commit reports it too. */
static int
txn_fail_env(struct store_txn *t, int env, const char *what, int rc)
{
	if (rc == MDB_MAP_FULL) {
		t->full = true;
		t->full_env = env;
		t->s->last_full = env;
		return STORE_FULL;
	}
	return store_fail(what, rc);
}

#define txn_fail(t, db, what, rc) txn_fail_env(t, (t)->s->where[db], what, rc)

/* The transaction db is read and written in; NULL (logged) when this
 * transaction has none in db's environment. */
static MDB_txn *
txn_of(struct store_txn *t, enum store_db db)
{
	MDB_txn *x = t->s->where[db] == ENV_TABLES ? t->ttxn : t->txn;

	if (x == NULL)
		log_error("store: %s: not in this transaction", db_names[db]);
	return x;
}

static bool
txn_writes(const struct store_txn *t, enum store_db db)
{
	return t->s->where[db] == ENV_TABLES ? t->twrite : t->write;
}

static enum store_db
meta_db(const char *name)
{
	for (size_t i = 0; i < sizeof(tables_meta) / sizeof(tables_meta[0]);
	     i++)
		if (strcmp(name, tables_meta[i]) == 0)
			return DB_TMETA;
	return DB_META;
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

/*
 * Checksums (store format 4). Every value the store writes, in every
 * database of both environments, ends with 4 bytes: the low 32 bits of
 * the XXH3 hash (libxxhash) of its key and the value before them,
 * little-endian. A bit flipped in either, or a value moved to another key,
 * no longer matches. These helpers are the only code that knows the
 * layout: every put goes through val_seal(), every get and cursor step
 * through val_open().
 */
#define SUM_BYTES 4

static uint32_t
val_sum(const void *key, size_t klen, const void *val, size_t vlen)
{
	/* The key's hash seeds the value's: 26 ns for a 160-byte record
	 * here, where zlib's crc32 took 200. */
	XXH64_hash_t seed = XXH3_64bits(key, klen);

	return (uint32_t)XXH3_64bits_withSeed(val, vlen, seed);
}

/* Writes the checksum of key and the vlen bytes at val after them. */
static void
val_seal(const void *key, size_t klen, unsigned char *val, size_t vlen)
{
	uint32_t c = val_sum(key, klen, val, vlen);

	val[vlen] = c & 0xff;
	val[vlen + 1] = (c >> 8) & 0xff;
	val[vlen + 2] = (c >> 16) & 0xff;
	val[vlen + 3] = (c >> 24) & 0xff;
}

/* True when the value v (checksum included) matches its key k. */
static bool
val_intact(const MDB_val *k, const MDB_val *v)
{
	const unsigned char *p = v->mv_data;
	size_t n;
	uint32_t c;

	if (v->mv_size < SUM_BYTES)
		return false;
	n = v->mv_size - SUM_BYTES;
	c = (uint32_t)p[n] | (uint32_t)p[n + 1] << 8 |
	    (uint32_t)p[n + 2] << 16 | (uint32_t)p[n + 3] << 24;
	return val_sum(k->mv_data, k->mv_size, p, n) == c;
}

/* Whether db's environment carries checksums. */
static bool
db_sums(const struct store *s, enum store_db db)
{
	return s->sums[s->where[db]];
}

static void key_show(enum store_db db, const MDB_val *k, char *out, size_t len);

/* Checks v against k and takes the checksum off v. 0, or -1 (logged) for
 * a damaged record. */
static int
val_open(const struct store *s, enum store_db db, const MDB_val *k, MDB_val *v)
{
	char shown[160];

	if (!db_sums(s, db))
		return 0;
	if (!val_intact(k, v)) {
		key_show(db, k, shown, sizeof(shown));
		log_error("store: %s record %s fails its checksum: the store "
			  "is damaged (indicatorctl scrub lists every damaged "
			  "record; restore the last backup)",
		    db_names[db], shown);
		return -1;
	}
	v->mv_size -= SUM_BYTES;
	return 0;
}

static int
key_add_str(struct key *k, const char *what, const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max) {
		log_error("store: %s \"%.*s%s\": %s (1..%zu bytes)", what, 40,
		    s, n > 40 ? "..." : "", n == 0 ? "empty" : "too long", max);
		return -1;
	}
	if (k->len + n + 1 > sizeof(k->b))
		return -1;
	memcpy(k->b + k->len, s, n + 1);
	k->len += n + 1;
	return 0;
}

static void
key_add_be64(struct key *k, uint64_t v)
{
	put_be64(k->b + k->len, v);
	k->len += 8;
}

static int
key_obs(struct key *k, const char *district, const char *industry,
    const char *metric, const char *period)
{
	k->len = 0;
	if (key_add_str(k, "district", district, IND_CODE_MAX) == -1 ||
	    key_add_str(k, "industry", industry, IND_CODE_MAX) == -1 ||
	    key_add_str(k, "metric", metric, IND_CODE_MAX) == -1 ||
	    key_add_str(k, "period", period, IND_PERIOD_MAX) == -1)
		return -1;
	return 0;
}

static int
key_seq(struct key *k, const char *agent_id, uint64_t epoch)
{
	k->len = 0;
	if (key_add_str(k, "agent_id", agent_id, IND_AGENT_ID_MAX) == -1)
		return -1;
	key_add_be64(k, epoch);
	return 0;
}

/* Splits an obs or hist key into its four codes; rest gets what follows. */
static int
key_obs_split(
    const MDB_val *v, char *codes[4], const size_t sizes[4], size_t *rest)
{
	const char *p = v->mv_data;
	size_t left = v->mv_size;
	int i;

	for (i = 0; i < 4; i++) {
		const char *nul = memchr(p, '\0', left);
		size_t n;

		if (nul == NULL)
			goto corrupt;
		n = nul - p;
		if (n == 0 || n >= sizes[i])
			goto corrupt;
		memcpy(codes[i], p, n + 1);
		p += n + 1;
		left -= n + 1;
	}
	*rest = left;
	return 0;
corrupt:
	log_error("store: corrupt observation key");
	return -1;
}

static bool
mdb_has_prefix(const MDB_val *k, const void *prefix, size_t len)
{
	return k->mv_size >= len && memcmp(k->mv_data, prefix, len) == 0;
}

/* A record's key as a person reads it: log positions and seqs as numbers,
 * codes joined with '/', anything else not printable as \xNN. */
static void
key_show(enum store_db db, const MDB_val *k, char *out, size_t len)
{
	const unsigned char *p = k->mv_data;
	size_t n = k->mv_size, o = 0;

	out[0] = '\0';
	if (db == DB_LOG && n == 8) {
		snprintf(out, len, "%llu", (unsigned long long)get_be64(p));
		return;
	}
	/* seq and reject keys end with 8 or 16 bytes of numbers. */
	if (db == DB_SEQ || db == DB_REJECT) {
		size_t tail = db == DB_SEQ ? 8 : 16;

		if (n > tail) {
			size_t id = strnlen((const char *)p, n - tail);

			n -= tail;
			snprintf(out, len, "%.*s/%llu", id > 64 ? 64 : (int)id,
			    (const char *)p,
			    (unsigned long long)get_be64(p + n));
			o = strlen(out);
			if (db == DB_REJECT && o < len)
				snprintf(out + o, len - o, "/%llu",
				    (unsigned long long)get_be64(p + n + 8));
			return;
		}
	}
	for (size_t i = 0; i < n && o + 5 < len; i++) {
		if (p[i] == '\0')
			out[o++] = i + 1 < n ? '/' : '\0';
		else if (p[i] < 0x20 || p[i] >= 0x7f)
			o +=
			    (size_t)snprintf(out + o, len - o, "\\x%02x", p[i]);
		else
			out[o++] = (char)p[i];
	}
	out[o < len ? o : len - 1] = '\0';
}

static int
obs_encode(
    const struct store_obs *o, unsigned char *buf, size_t size, size_t *len)
{
	Indicator__Store__StoredObservation m =
	    INDICATOR__STORE__STORED_OBSERVATION__INIT;
	struct store_obs c = *o;

	/* Terminate every string so that a caller's bad fill cannot overrun. */
	c.unit[sizeof(c.unit) - 1] = '\0';
	c.sent_unit[sizeof(c.sent_unit) - 1] = '\0';
	c.note[sizeof(c.note) - 1] = '\0';
	c.agent_id[sizeof(c.agent_id) - 1] = '\0';
	m.value = c.value;
	m.unit = c.unit;
	m.sent_value = c.sent_value;
	m.sent_unit = c.sent_unit;
	m.status = (uint32_t)c.status;
	m.note = c.note;
	m.agent_id = c.agent_id;
	m.epoch = c.epoch;
	m.seq = c.seq;
	m.sent_at_ms = c.sent_at_ms;
	m.stored_at_ms = c.stored_at_ms;
	m.revision = c.revision;
	c.district[sizeof(c.district) - 1] = '\0';
	c.industry[sizeof(c.industry) - 1] = '\0';
	c.metric[sizeof(c.metric) - 1] = '\0';
	c.period[sizeof(c.period) - 1] = '\0';
	m.district = c.district;
	m.industry = c.industry;
	m.metric = c.metric;
	m.period = c.period;
	m.prev = c.prev;
	m.batch = c.batch;
	/* Every string is bounded by its array, so the record is too: packed
	 * by hand (pbpack.h) without sizing it first. */
	if (size < PBPACK_OBSERVATION_MAX) {
		log_error("store: observation buffer of %zu bytes", size);
		return -1;
	}
	*len = pbpack_stored_observation(&m, buf);
	return 0;
}

/* Fills o from a StoredObservation record of the log. */
static int
obs_decode(const MDB_val *v, struct store_obs *o)
{
	Indicator__Store__StoredObservation *m;
	int rc = -1;

	m = indicator__store__stored_observation__unpack(
	    NULL, v->mv_size, v->mv_data);
	if (m == NULL) {
		log_error("store: corrupt observation record");
		return -1;
	}
	if (!strlcpy_ok(o->unit, m->unit, sizeof(o->unit)) ||
	    !strlcpy_ok(o->sent_unit, m->sent_unit, sizeof(o->sent_unit)) ||
	    !strlcpy_ok(o->note, m->note, sizeof(o->note)) ||
	    !strlcpy_ok(o->agent_id, m->agent_id, sizeof(o->agent_id)) ||
	    !strlcpy_ok(o->district, m->district, sizeof(o->district)) ||
	    !strlcpy_ok(o->industry, m->industry, sizeof(o->industry)) ||
	    !strlcpy_ok(o->metric, m->metric, sizeof(o->metric)) ||
	    !strlcpy_ok(o->period, m->period, sizeof(o->period))) {
		log_error("store: observation record with an "
			  "over-long string");
		goto free_msg;
	}
	o->value = m->value;
	o->sent_value = m->sent_value;
	o->status = (int)m->status;
	o->epoch = m->epoch;
	o->seq = m->seq;
	o->sent_at_ms = m->sent_at_ms;
	o->stored_at_ms = m->stored_at_ms;
	o->revision = m->revision;
	o->prev = m->prev;
	o->batch = m->batch;
	rc = 0;
free_msg:
	indicator__store__stored_observation__free_unpacked(m, NULL);
	return rc;
}

/*
 * Format 1 kept every revision in a "hist" database keyed by key and
 * revision; format 2 keeps them in "log". A store of format 1 is refused
 * rather than half read. 0, or -1 with the reason in err.
 */
static int
format_check(struct store *s, char *err, size_t errlen)
{
	MDB_txn *txn;
	MDB_dbi dbi;
	int rc;

	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0) {
		snprintf(err, errlen, "store: begin: %s", mdb_strerror(rc));
		return -1;
	}
	rc = mdb_dbi_open(txn, "hist", 0, &dbi);
	mdb_txn_abort(txn);
	if (rc == 0) {
		snprintf(err, errlen,
		    "store: %s holds a store of format 1 (history in "
		    "\"hist\"), "
		    "which this version does not read; keep it with the "
		    "version that wrote it, or move it aside and start anew",
		    s->dir);
		return -1;
	}
	return 0;
}

/* Opens the databases of env (those s->where puts there). */
static int
dbs_open(struct store *s, int which, unsigned int flags)
{
	MDB_env *env = which == ENV_TABLES ? s->tenv : s->env;
	MDB_txn *txn;
	int i, rc;

	rc = mdb_txn_begin(env, NULL, s->readonly ? MDB_RDONLY : 0, &txn);
	if (rc != 0)
		return store_fail("begin", rc);
	for (i = 0; i < DB_COUNT; i++) {
		if (s->have[i] || s->where[i] != which)
			continue;
		/* Without a tables environment the log's meta is both. */
		if (i == DB_TMETA && env == s->env)
			continue;
		rc = mdb_dbi_open(txn, db_names[i], flags, &s->dbi[i]);
		if (rc == MDB_NOTFOUND && s->readonly)
			continue;
		if (rc != 0) {
			store_fail(db_names[i], rc);
			goto txn_abort;
		}
		s->have[i] = true;
	}
	/* Committing, even a read transaction, keeps the new handles. */
	rc = mdb_txn_commit(txn);
	if (rc != 0)
		return store_fail("open databases", rc);
	return 0;
txn_abort:
	mdb_txn_abort(txn);
	return -1;
}

static int
dbs_open_all(struct store *s, unsigned int flags)
{
	if (dbs_open(s, ENV_LOG, flags) == -1 ||
	    (s->tenv != NULL && dbs_open(s, ENV_TABLES, flags) == -1)) {
		memset(s->have, 0, sizeof(s->have));
		return -1;
	}
	if (s->tenv == NULL) {
		s->have[DB_TMETA] = s->have[DB_META];
		s->dbi[DB_TMETA] = s->dbi[DB_META];
	}
	return 0;
}

static bool
dir_exists(const char *dir)
{
	struct stat st;

	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Takes the larger of the size in the file's meta page and the asked size. */
static int
map_adopt(struct store *s, MDB_env *env, uint64_t want)
{
	MDB_envinfo info;
	int rc;

	rc = mdb_env_set_mapsize(env, 0);
	if (rc != 0)
		return rc;
	if (s->readonly)
		return 0;
	rc = mdb_env_info(env, &info);
	if (rc != 0)
		return rc;
	if (info.me_mapsize < want)
		rc = mdb_env_set_mapsize(env, want);
	return rc;
}

/* data.mdb always covers every page its meta page counts
 * (envcheck_file_fit()): a write commit is bracketed, the file extended to
 * the map's size before it and set to exactly the count after. A failure
 * is logged and otherwise ignored. */
static void
env_file_size(struct store *s, MDB_env *env, const char *dir, bool ahead)
{
	(void)s;
	if (envcheck_file_fit(env, ahead) == -1)
		log_error("store: size %s/data.mdb: %s", dir, strerror(errno));
}

/* The log's data.mdb (the tables' is bracketed the same way). */
static void
store_file_size(struct store *s, bool ahead)
{
	env_file_size(s, s->env, s->dir, ahead);
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Records the store's id, last durable transaction and file size in
 * store.id (envcheck.h): when force, or when STORE_ID_EVERY_MS have passed
 * since the last time and commits are durable (sync = full; with a weaker
 * sync only at open and close, after flushing, so that store.id never
 * names a transaction a crash could take back). A failure is logged once
 * and otherwise ignored: store.id guards the data, it is not the data.
 */
static void
store_ident_note(struct store *s, bool force)
{
	struct envcheck_id id;
	MDB_envinfo info;
	char err[4200];
	int64_t now;
	int rc;

	if (s->readonly || s->stored_id == 0)
		return;
	now = mono_ms();
	if (!force && (s->sync != STORE_SYNC_FULL ||
			  now - s->ident_written_ms < STORE_ID_EVERY_MS))
		return;
	s->ident_written_ms = now;
	if (s->sync != STORE_SYNC_FULL && (rc = mdb_env_sync(s->env, 1)) != 0) {
		snprintf(err, sizeof(err), "store: sync %s: %s", s->dir,
		    mdb_strerror(rc));
		goto warn;
	}
	id.id = s->stored_id;
	if ((rc = mdb_env_info(s->env, &info)) != 0) {
		snprintf(err, sizeof(err), "store: %s: %s", s->dir,
		    mdb_strerror(rc));
		goto warn;
	}
	id.txn = info.me_last_txnid;
	if (envcheck_file_size(s->env, &id.size) == -1) {
		snprintf(err, sizeof(err), "store: %s/data.mdb: %s", s->dir,
		    strerror(errno));
		goto warn;
	}
	if (envcheck_id_write(s->dir, &id, err, sizeof(err)) == 0) {
		s->ident_warned = false;
		return;
	}
warn:
	if (!s->ident_warned)
		log_warn("%s; the store's identity is not recorded, so an "
			 "emptied or older data.mdb would not be noticed",
		    err);
	s->ident_warned = true;
}

/* The id data.mdb holds in meta, 0 for none. 0 or -1. */
static int
store_ident_get(struct store *s, uint64_t *out)
{
	struct store_txn *t;
	int rc;

	*out = 0;
	if (!s->have[DB_META])
		return 0;
	if ((t = store_txn_begin(s, false)) == NULL)
		return -1;
	rc = store_meta_get(t, STORE_META_ID, out);
	store_txn_abort(&t);
	return rc == 0 ? 0 : -1;
}

static int
ident_put(struct store_txn *t, void *arg)
{
	return store_meta_put(t, STORE_META_ID, *(uint64_t *)arg);
}

/* Gives a store without an id one, in meta. 0 or -1. */
static int
store_ident_give(struct store *s)
{
	uint64_t id;

	if (envcheck_id_new(&id) == -1) {
		log_error("store: getrandom: %s", strerror(errno));
		return -1;
	}
	if (store_write(s, STORE_TXN_BOTH, ident_put, NULL, &id) != 0)
		return -1;
	s->stored_id = id;
	return 0;
}

/*
 * The open-time identity check (envcheck.h): data.mdb must be the store
 * store.id describes, at least as far on; a store opened for writing
 * without an id gets one, and store.id is written. 0, or -1 with the
 * reason in err.
 */
static int
store_ident_check(struct store *s, char *err, size_t errlen)
{
	MDB_envinfo info;
	uint64_t size;
	int rc;

	if (store_ident_get(s, &s->stored_id) == -1) {
		snprintf(err, errlen, "store: cannot read the store's id in %s",
		    s->dir);
		return -1;
	}
	if (s->ident_found) {
		if ((rc = mdb_env_info(s->env, &info)) != 0) {
			snprintf(err, errlen, "store: %s: %s", s->dir,
			    mdb_strerror(rc));
			return -1;
		}
		if (envcheck_file_size(s->env, &size) == -1) {
			snprintf(err, errlen, "store: %s/data.mdb: %s", s->dir,
			    strerror(errno));
			return -1;
		}
		if (envcheck_same(s->dir, &s->ident, s->stored_id,
			info.me_last_txnid, size, err, errlen) == -1)
			return -1;
	}
	if (s->readonly)
		return 0;
	if (s->stored_id == 0 && store_ident_give(s) == -1) {
		snprintf(err, errlen,
		    "store: cannot give the store in %s an id", s->dir);
		return -1;
	}
	store_ident_note(s, true);
	return 0;
}

/*
 * Where the tables are: in their own environment (format 3; always for a
 * store opened for writing), or, for a format 2 store opened read-only,
 * still in the log's. Creates s->tenv (not yet open) in the first case.
 */
static int txn_get(struct store_txn *t, enum store_db db, const void *key,
    size_t klen, MDB_val *v);
static int txn_put(struct store_txn *t, enum store_db db, const void *key,
    size_t klen, const void *val, size_t vlen);

static int
tables_where(struct store *s, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct stat st;
	int rc;

	s->where[DB_OBS] = s->where[DB_AGG] = s->where[DB_TMETA] = ENV_LOG;
	if (snprintf(path, sizeof(path), "%s/" STORE_TABLES_DIR "/data.mdb",
		s->dir) >= (int)sizeof(path)) {
		snprintf(err, errlen, "store: %s: path too long", s->dir);
		return -1;
	}
	if (s->readonly && stat(path, &st) == -1)
		return 0;
	s->tdir = xmalloc(strlen(s->dir) + sizeof(STORE_TABLES_DIR) + 1);
	sprintf(s->tdir, "%s/" STORE_TABLES_DIR, s->dir);
	if (!s->readonly && mkdir(s->tdir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "store: mkdir %s: %s", s->tdir,
		    strerror(errno));
		return -1;
	}
	if ((rc = mdb_env_create(&s->tenv)) != 0) {
		snprintf(err, errlen, "store: create: %s", mdb_strerror(rc));
		return -1;
	}
	mdb_env_set_userctx(s->tenv, s);
	s->where[DB_OBS] = s->where[DB_AGG] = s->where[DB_TMETA] = ENV_TABLES;
	return 0;
}

/* Opens the tables' environment, with the same checks as the log's. */
static int
tables_open(struct store *s, unsigned int flags, uint64_t map_size, char *err,
    size_t errlen)
{
	int dead, rc;

	/* Transactions of two threads: the ingest thread reads the tables
	 * while the checkpoint thread writes them. */
	if ((rc = mdb_env_set_maxdbs(s->tenv, 4)) != 0 ||
	    (!s->readonly &&
		(rc = mdb_env_set_mapsize(s->tenv, map_size)) != 0)) {
		snprintf(
		    err, errlen, "store: %s: %s", s->tdir, mdb_strerror(rc));
		return -1;
	}
	rc = mdb_env_open(s->tenv, s->tdir, flags | MDB_NOTLS, 0600);
	if (rc != 0) {
		envcheck_open_failed(s->tdir, "store", rc, err, errlen);
		return -1;
	}
	if (envcheck_size(s->tenv, s->tdir, "store", err, errlen) == -1)
		return -1;
	if ((rc = map_adopt(s, s->tenv, map_size)) != 0) {
		snprintf(err, errlen, "store: map %s: %s", s->tdir,
		    mdb_strerror(rc));
		return -1;
	}
	if (!s->readonly) {
		if ((rc = mdb_reader_check(s->tenv, &dead)) != 0) {
			snprintf(err, errlen, "store: reader check %s: %s",
			    s->tdir, mdb_strerror(rc));
			return -1;
		}
	}
	return 0;
}

/* Copies every entry of the log environment's database name into db of
 * t (the tables'). */
static int
copy_db(MDB_txn *from, const char *name, struct store_txn *t, enum store_db db)
{
	MDB_dbi dbi;
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_dbi_open(from, name, 0, &dbi)) == MDB_NOTFOUND)
		return 0;
	if (rc != 0 || (rc = mdb_cursor_open(from, dbi, &c)) != 0)
		return store_fail(name, rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		rc = mdb_put(t->ttxn, t->s->dbi[db], &k, &v, MDB_APPEND);
		if (rc != 0)
			break;
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		return 0;
	return txn_fail_env(t, ENV_TABLES, name, rc);
}

/* Format 2 to 3, the first step, in t (the tables'): obs, agg and the
 * tables' meta copied from the log's environment, unless a copy already
 * committed there. 0, STORE_FULL or -1. */
static int
tables_copy(struct store_txn *t, void *arg)
{
	struct store *s = arg;
	MDB_txn *from;
	uint64_t applied = 0, v;
	int rc;

	if ((rc = store_meta_get(t, STORE_META_APPLIED, &applied)) != 0 ||
	    applied != 0)
		return rc;
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &from)) != 0)
		return store_fail("upgrade", rc);
	rc = copy_db(from, "obs", t, DB_OBS);
	if (rc == 0)
		rc = copy_db(from, "agg", t, DB_AGG);
	for (size_t i = 0;
	     rc == 0 && i < sizeof(tables_meta) / sizeof(tables_meta[0]); i++) {
		MDB_dbi meta;
		MDB_val k = { strlen(tables_meta[i]), (void *)tables_meta[i] },
			val;

		if ((rc = mdb_dbi_open(from, "meta", 0, &meta)) != 0) {
			rc = store_fail("upgrade", rc);
			break;
		}
		if (mdb_get(from, meta, &k, &val) != 0 || val.mv_size != 8)
			continue;
		v = get_be64(val.mv_data);
		rc = store_meta_put(t, tables_meta[i], v);
	}
	mdb_txn_abort(from);
	return rc;
}

/*
 * Format 2 to 3: a store whose log environment still holds obs and agg
 * has them, with meta applied, pub_seq and registry_hash, copied into the
 * tables' environment (unless a copy already committed there: a crash
 * between the two steps), then dropped from the log's. 0, or -1 with the
 * reason in err.
 */
static int
tables_upgrade(struct store *s, char *err, size_t errlen)
{
	MDB_txn *from;
	MDB_dbi obs;
	int rc;

	if ((rc = mdb_txn_begin(s->env, NULL, 0, &from)) != 0)
		goto fail;
	if ((rc = mdb_dbi_open(from, "obs", 0, &obs)) == MDB_NOTFOUND) {
		mdb_txn_abort(from);
		return 0;
	}
	mdb_txn_abort(from);
	if (rc != 0)
		goto fail;
	rc = store_write(s, STORE_TXN_TABLES, tables_copy, NULL, s);
	if (rc != 0)
		goto fail_quiet;
	/* The copy is durable: the log's environment lets go of them. */
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &from)) != 0)
		goto fail;
	{
		MDB_dbi dbi;

		/* A failure leaves the log's copy in place (aborted): the
		 * next open finds it and, the copy in tables/ committed,
		 * only drops it again. */
		rc = 0;
		if (mdb_dbi_open(from, "obs", 0, &dbi) == 0)
			rc = mdb_drop(from, dbi, 1);
		if (rc == 0 && mdb_dbi_open(from, "agg", 0, &dbi) == 0)
			rc = mdb_drop(from, dbi, 1);
		if (rc == 0 && mdb_dbi_open(from, "meta", 0, &dbi) == 0)
			for (size_t i = 0;
			     rc == 0 &&
			     i < sizeof(tables_meta) / sizeof(tables_meta[0]);
			     i++) {
				MDB_val k = { strlen(tables_meta[i]),
					(void *)tables_meta[i] };

				rc = mdb_del(from, dbi, &k, NULL);
				if (rc == MDB_NOTFOUND)
					rc = 0;
			}
		if (rc != 0) {
			mdb_txn_abort(from);
			goto fail;
		}
	}
	if ((rc = mdb_txn_commit(from)) != 0)
		goto fail;
	log_info("store: %s upgraded to format 3: the tables (obs, agg) "
		 "are in %s",
	    s->dir, s->tdir);
	return 0;
fail:
	snprintf(err, errlen, "store: upgrading %s to format 3: %s", s->dir,
	    mdb_strerror(rc));
	return -1;
fail_quiet:
	snprintf(err, errlen,
	    "store: upgrading %s to format 3 failed (see "
	    "above)",
	    s->dir);
	return -1;
}

/*
 * The tables reflect no more of the log than it holds (an older data.mdb
 * put back under newer tables would leave obs naming records it lacks).
 * 0, or -1 with the reason in err.
 */
static int
tables_behind(struct store *s, char *err, size_t errlen)
{
	struct store_txn *t;
	uint64_t applied = 0, next = 1;
	int rc;

	if ((t = store_txn_begin(s, false)) == NULL) {
		snprintf(err, errlen, "store: cannot read %s", s->dir);
		return -1;
	}
	if ((rc = store_meta_get(t, STORE_META_APPLIED, &applied)) == 0)
		rc = store_log_next(t, &next);
	store_txn_abort(&t);
	if (rc != 0) {
		snprintf(err, errlen, "store: cannot read %s", s->dir);
		return -1;
	}
	if (applied >= next) {
		snprintf(err, errlen,
		    "store: the tables in %s reflect log position %llu, past "
		    "the end of the log (%llu): data.mdb is older than they "
		    "are; restore the whole directory (README, \"Backup and "
		    "restore\"), or remove %s and the daemon rebuilds the "
		    "tables from the log",
		    s->tdir, (unsigned long long)applied,
		    (unsigned long long)next - 1, s->tdir);
		return -1;
	}
	return 0;
}

/*
 * The tables belong to the log beside them: their meta store_id is the
 * log's (given at the first open for writing). Tables of another store are
 * refused, as data.mdb of another store is. 0, or -1 with the reason in
 * err.
 */
static int
tables_ident(struct store *s, char *err, size_t errlen)
{
	struct store_txn *t;
	MDB_val v;
	unsigned char buf[8];
	uint64_t id = 0;
	int rc;

	if (s->tenv == NULL || s->stored_id == 0)
		return 0;
	if ((t = store_txn_begin_kind(
		 s, s->readonly ? STORE_TXN_READ : STORE_TXN_TABLES)) == NULL) {
		snprintf(err, errlen, "store: cannot read %s", s->tdir);
		return -1;
	}
	rc = txn_get(t, DB_TMETA, STORE_META_ID, strlen(STORE_META_ID), &v);
	if (rc == 0 && v.mv_size == 8)
		id = get_be64(v.mv_data);
	if (id != 0 && id != s->stored_id) {
		store_txn_abort(&t);
		snprintf(err, errlen,
		    "store: %s holds the tables of another store (id %016llx, "
		    "not %016llx); remove it and the daemon rebuilds them "
		    "from the log",
		    s->tdir, (unsigned long long)id,
		    (unsigned long long)s->stored_id);
		return -1;
	}
	if (id != 0 || s->readonly) {
		store_txn_abort(&t);
		return tables_behind(s, err, errlen);
	}
	put_be64(buf, s->stored_id);
	if ((rc = txn_put(t, DB_TMETA, STORE_META_ID, strlen(STORE_META_ID),
		 buf, sizeof(buf))) == 0)
		rc = store_txn_commit(&t);
	else
		store_txn_abort(&t);
	if (rc != 0) {
		snprintf(err, errlen, "store: cannot write %s", s->tdir);
		return -1;
	}
	return 0;
}

/*
 * Format 4: checksums. meta "format" (the log's meta in the log's
 * environment, the tables' meta in the tables') says that environment's
 * records are sealed; stores of format 3 (two environments, no checksums)
 * and 2 (one environment, upgraded to 3 first) have none.
 */
#define STORE_META_FORMAT "format"
#define STORE_FORMAT 4

/* The format record of env (0: none). 0, or -1 (a damaged record,
 * logged; or a read failure). */
static int
env_format(struct store *s, int env, uint64_t *format)
{
	enum store_db db = env == ENV_TABLES ? DB_TMETA : DB_META;
	struct store_txn *t;
	MDB_val v;
	int rc;

	*format = 0;
	if (!s->have[db])
		return 0;
	if ((t = store_txn_begin(s, false)) == NULL)
		return -1;
	rc = txn_get(t, db, STORE_META_FORMAT, strlen(STORE_META_FORMAT), &v);
	if (rc == 0 && v.mv_size == 8)
		*format = get_be64(v.mv_data);
	else if (rc == 0)
		rc = -1;
	store_txn_abort(&t);
	return rc == STORE_NOTFOUND ? 0 : rc;
}

/* Reads each environment's format: sums[] set for those of format 4. A
 * newer format is refused. 0, or -1 with the reason in err. */
static int
format_settle(struct store *s, char *err, size_t errlen)
{
	for (int env = ENV_LOG; env <= ENV_TABLES; env++) {
		const char *dir = env == ENV_TABLES ? s->tdir : s->dir;
		uint64_t format;

		if (env == ENV_TABLES && s->tenv == NULL)
			break;
		s->sums[env] = true;
		if (env_format(s, env, &format) == -1) {
			snprintf(err, errlen,
			    "store: %s: its format record cannot be read (see "
			    "above): restore the last backup",
			    dir);
			return -1;
		}
		if (format > STORE_FORMAT) {
			snprintf(err, errlen,
			    "store: %s holds a store of format %llu, newer "
			    "than this version's %d",
			    dir, (unsigned long long)format, STORE_FORMAT);
			return -1;
		}
		s->sums[env] = format == STORE_FORMAT;
	}
	return 0;
}

/* Seals every record of db in t (format 3 to 4). 0, STORE_FULL or -1. */
static int
upgrade_db(struct store_txn *t, enum store_db db, unsigned char **buf,
    size_t *cap, uint64_t *records)
{
	unsigned char kb[512];
	MDB_cursor *c;
	MDB_val k, v, nk, nv;
	int rc;

	if ((rc = mdb_cursor_open(txn_of(t, db), t->s->dbi[db], &c)) != 0)
		return store_fail(db_names[db], rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size > sizeof(kb)) {
			rc = MDB_BAD_VALSIZE;
			break;
		}
		if (v.mv_size + SUM_BYTES > *cap) {
			*cap = v.mv_size + SUM_BYTES;
			*buf = xrealloc(*buf, *cap);
		}
		/* Copies: the put rewrites the page they point into. */
		memcpy(kb, k.mv_data, k.mv_size);
		memcpy(*buf, v.mv_data, v.mv_size);
		val_seal(kb, k.mv_size, *buf, v.mv_size);
		nk.mv_size = k.mv_size;
		nk.mv_data = kb;
		nv.mv_size = v.mv_size + SUM_BYTES;
		nv.mv_data = *buf;
		if ((rc = mdb_cursor_put(c, &nk, &nv, MDB_CURRENT)) != 0)
			break;
		(*records)++;
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		return 0;
	return txn_fail(t, db, db_names[db], rc);
}

/*
 * Upgrades env to format 4: every record of its databases sealed with its
 * checksum, and its meta "format", in one transaction of that environment
 * (all or nothing; the map grows as needed). Each environment is upgraded
 * on its own: a crash between the two leaves the other for the next open.
 * 0, or -1 with the reason in err.
 */
/* env_upgrade()'s write. */
struct upgrade {
	struct store *s;
	int env;
	unsigned char *buf; /* a sealed value, grown as needed */
	size_t cap;
	uint64_t records;
};

/* Seals every record of the environment in t and writes its format
 * record. 0, STORE_FULL or -1. */
static int
upgrade_fn(struct store_txn *t, void *arg)
{
	struct upgrade *u = arg;
	struct store *s = u->s;
	unsigned char fb[8];
	int rc = 0;

	u->records = 0;
	/* Read as they are, written sealed. */
	s->sums[u->env] = false;
	for (int i = 0; i < DB_COUNT && rc == 0; i++)
		if (t->have[i] && s->where[i] == u->env)
			rc = upgrade_db(
			    t, (enum store_db)i, &u->buf, &u->cap, &u->records);
	s->sums[u->env] = true;
	put_be64(fb, STORE_FORMAT);
	if (rc == 0)
		rc = txn_put(t, u->env == ENV_TABLES ? DB_TMETA : DB_META,
		    STORE_META_FORMAT, strlen(STORE_META_FORMAT), fb,
		    sizeof(fb));
	return rc;
}

/* The upgrade did not commit: the environment is still unsealed. */
static void
upgrade_undo(void *arg)
{
	struct upgrade *u = arg;

	u->s->sums[u->env] = false;
}

static int
env_upgrade(struct store *s, int env, char *err, size_t errlen)
{
	const char *dir = env == ENV_TABLES ? s->tdir : s->dir;
	struct upgrade u = { s, env, NULL, 0, 0 };
	uint64_t records;
	int rc;

	s->sums[env] = false;
	rc =
	    store_write(s, env == ENV_TABLES ? STORE_TXN_TABLES : STORE_TXN_LOG,
		upgrade_fn, upgrade_undo, &u);
	records = u.records;
	free(u.buf);
	if (rc != 0) {
		s->sums[env] = false;
		snprintf(err, errlen,
		    "store: cannot upgrade %s to format %d (checksums)%s; it "
		    "is unchanged",
		    dir, STORE_FORMAT,
		    rc == STORE_FULL ? ": the map is at map_max_mb" : "");
		return -1;
	}
	if (records > 0)
		log_info("store: %s upgraded to format %d: %llu records "
			 "sealed with their checksums",
		    dir, STORE_FORMAT, (unsigned long long)records);
	return 0;
}

struct open_damage {
	uint64_t n;
	char first[200];
};

static int
open_damage(const char *db, const char *key, const char *why, void *arg)
{
	struct open_damage *od = arg;

	if (od->n++ == 0)
		snprintf(
		    od->first, sizeof(od->first), "%s %s: %s", db, key, why);
	return 0;
}

/* At a writable open: store_scrub() of both environments but the log's
 * applied part. 0, or -1 with the reason in err. */
static int
store_open_check(struct store *s, char *err, size_t errlen)
{
	struct open_damage od = { 0 };
	struct store_txn *t;
	uint64_t records = 0;
	int rc;

	if (!store_checksummed(s))
		return 0;
	if ((t = store_txn_begin(s, false)) == NULL) {
		snprintf(err, errlen, "store: %s: cannot be read", s->dir);
		return -1;
	}
	rc = store_scrub(t, 0, open_damage, &od, &records);
	store_txn_abort(&t);
	if (rc == 0)
		return 0;
	if (rc == -1 && od.n == 0) {
		snprintf(err, errlen, "store: %s: cannot be read", s->dir);
		return -1;
	}
	snprintf(err, errlen,
	    "store: %s is damaged: %llu record%s fail%s its checksum (%s); "
	    "it is not served: `indicatorctl scrub` lists them, restore the "
	    "last backup (README, \"Backup and restore\")",
	    s->dir, (unsigned long long)od.n, od.n == 1 ? "" : "s",
	    od.n == 1 ? "s" : "", od.first);
	return -1;
}

struct store *
store_open(const struct store_opts *opts, char *err, size_t errlen)
{
	struct store *s;
	unsigned int flags = 0;
	uint64_t map_size;
	int dead, rc;

	s = xcalloc(1, sizeof(*s));
	pthread_rwlock_init(&s->tlock, NULL);
	s->readonly = opts->readonly;
	s->sync = opts->sync;
	s->dir = xstrdup(opts->dir);
	map_size = opts->map_size ? opts->map_size : STORE_MAP_DEFAULT;
	s->map_max = opts->map_max ? opts->map_max : STORE_MAP_MAX_DEFAULT;
	if (s->readonly) {
		if (!dir_exists(opts->dir)) {
			snprintf(
			    err, errlen, "store: no store at %s", opts->dir);
			goto free_store;
		}
		flags |= MDB_RDONLY;
	} else if (mkdir(opts->dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "store: mkdir %s: %s", opts->dir,
		    strerror(errno));
		goto free_store;
	}
	switch (opts->sync) {
	case STORE_SYNC_FULL:
		break;
	case STORE_SYNC_NOMETASYNC:
		flags |= MDB_NOMETASYNC;
		break;
	case STORE_SYNC_NONE:
		flags |= MDB_NOSYNC;
		break;
	}
	/* Before LMDB sees the directory: it would take an emptied data.mdb
	 * for a new store. */
	if (envcheck_id_read(s->dir, &s->ident, &s->ident_found, err, errlen) ==
		-1 ||
	    (s->ident_found &&
		envcheck_present(s->dir, &s->ident, err, errlen) == -1))
		goto free_store;
	rc = mdb_env_create(&s->env);
	if (rc != 0) {
		snprintf(err, errlen, "store: create: %s", mdb_strerror(rc));
		goto free_store;
	}
	/* cursor_next() finds the environment's format from its cursor. */
	mdb_env_set_userctx(s->env, s);
	/* One more than ours: format_check() looks for an old one. */
	if ((rc = mdb_env_set_maxdbs(s->env, DB_COUNT + 1)) != 0 ||
	    (!s->readonly &&
		(rc = mdb_env_set_mapsize(s->env, map_size)) != 0)) {
		snprintf(
		    err, errlen, "store: %s: %s", opts->dir, mdb_strerror(rc));
		goto env_close;
	}
	rc = mdb_env_open(s->env, opts->dir, flags, 0600);
	if (rc != 0) {
		if (s->readonly && rc == ENOENT)
			snprintf(
			    err, errlen, "store: no store at %s", opts->dir);
		else
			envcheck_open_failed(
			    opts->dir, "store", rc, err, errlen);
		goto env_close;
	}
	/* Before any transaction reads a page. */
	if (envcheck_size(s->env, opts->dir, "store", err, errlen) == -1)
		goto env_close;
	rc = map_adopt(s, s->env, map_size);
	if (rc != 0) {
		snprintf(err, errlen, "store: map %s: %s", opts->dir,
		    mdb_strerror(rc));
		goto env_close;
	}
	if (!s->readonly) {
		rc = mdb_reader_check(s->env, &dead);
		if (rc != 0) {
			snprintf(err, errlen, "store: reader check %s: %s",
			    opts->dir, mdb_strerror(rc));
			goto env_close;
		}
		if (dead > 0)
			log_warn("store: cleared %d stale reader slot%s in %s",
			    dead, dead == 1 ? "" : "s", opts->dir);
	}
	if (format_check(s, err, errlen) == -1)
		goto env_close;
	if (tables_where(s, err, errlen) == -1)
		goto env_close;
	if (s->tenv != NULL &&
	    tables_open(s, flags, map_size, err, errlen) == -1)
		goto env_close;
	if (dbs_open_all(s, s->readonly ? 0 : MDB_CREATE) == -1) {
		snprintf(err, errlen, "store: cannot open the databases in %s",
		    opts->dir);
		goto env_close;
	}
	/* A kill in a commit's bracket left a file longer than its
	 * count: exactly the count again, before store.id records it. */
	if (!s->readonly) {
		store_file_size(s, false);
		if (s->tenv != NULL)
			env_file_size(s, s->tenv, s->tdir, false);
	}
	/* Checksums: what each environment's format says (an older one read
	 * unchecked by a read-only open, upgraded by a writable one after
	 * the tables have their own environment: 2 to 3 to 4). */
	if (format_settle(s, err, errlen) == -1 ||
	    store_ident_check(s, err, errlen) == -1 ||
	    (!s->readonly && tables_upgrade(s, err, errlen) == -1))
		goto env_close;
	if (!s->readonly &&
	    ((!s->sums[ENV_LOG] &&
		 env_upgrade(s, ENV_LOG, err, errlen) == -1) ||
		(s->tenv != NULL && !s->sums[ENV_TABLES] &&
		    env_upgrade(s, ENV_TABLES, err, errlen) == -1)))
		goto env_close;
	if (tables_ident(s, err, errlen) == -1)
		goto env_close;
	/* The daemon serves no damaged store: what it reads at once (meta,
	 * tables, the log it is to replay) is checked whole first. */
	if (!s->readonly && store_open_check(s, err, errlen) == -1)
		goto env_close;
	return s;
env_close:
	if (s->tenv != NULL)
		mdb_env_close(s->tenv);
	mdb_env_close(s->env);
	pthread_rwlock_destroy(&s->tlock);
free_store:
	free(s->tdir);
	free(s->dir);
	free(s);
	return NULL;
}

void
store_close(struct store **s)
{
	if (s == NULL || *s == NULL)
		return;
	store_ident_note(*s, true);
	if ((*s)->tenv != NULL) {
		if ((*s)->sync != STORE_SYNC_FULL && !(*s)->readonly)
			mdb_env_sync((*s)->tenv, 1);
		mdb_env_close((*s)->tenv);
	}
	free((*s)->tdir);
	pthread_rwlock_destroy(&(*s)->tlock);
	mdb_env_close((*s)->env);
	free((*s)->dir);
	free(*s);
	*s = NULL;
}

/* Doubles env's map, up to map_max. No transaction may be open on it. */
static int
env_grow(struct store *s, MDB_env *env, const char *what)
{
	MDB_envinfo info;
	uint64_t cur, next;
	int rc;

	if ((rc = mdb_env_info(env, &info)) != 0)
		return store_fail("grow", rc);
	cur = info.me_mapsize;
	if (cur >= s->map_max) {
		log_error("store: map%s is at its maximum size (%llu bytes) in "
			  "%s",
		    what, (unsigned long long)cur, s->dir);
		return -1;
	}
	next = cur > s->map_max / 2 ? s->map_max : cur * 2;
	rc = mdb_env_set_mapsize(env, next);
	if (rc != 0)
		return store_fail("grow", rc);
	log_info("store: map%s grown to %llu bytes in %s", what,
	    (unsigned long long)next, s->dir);
	return 0;
}

int
store_grow(struct store *s)
{
	/* The environment that was full last (the log's by default). */
	if (s->last_full == ENV_TABLES && s->tenv != NULL) {
		s->last_full = ENV_LOG;
		return store_grow_tables(s);
	}
	if (s->ntxn > 0) {
		log_error("store: grow: a transaction is open");
		return -1;
	}
	return env_grow(s, s->env, "");
}

int
store_grow_tables(struct store *s)
{
	int rc;

	if (s->tenv == NULL)
		return store_grow(s);
	/* Alone: every tables transaction (of any thread) ends first. */
	pthread_rwlock_wrlock(&s->tlock);
	rc = env_grow(s, s->tenv, " of the tables");
	pthread_rwlock_unlock(&s->tlock);
	return rc;
}

uint64_t
store_map_size(const struct store *s)
{
	MDB_envinfo info;
	uint64_t size;

	if (mdb_env_info(s->env, &info) != 0)
		return 0;
	size = info.me_mapsize;
	return size;
}

/* The map's size and the bytes up to its highest page ever used. 0 or an
 * LMDB error. */
static int
env_usage(MDB_env *env, uint64_t *size, uint64_t *used)
{
	MDB_envinfo info;
	MDB_stat st;
	int rc;

	if ((rc = mdb_env_info(env, &info)) != 0 ||
	    (rc = mdb_env_stat(env, &st)) != 0)
		return rc;
	*size = info.me_mapsize;
	*used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
	return 0;
}

int
store_make_room(struct store *s)
{
	uint64_t size, used;

	if (env_usage(s->env, &size, &used) != 0)
		return -1;
	if (size >= s->map_max || used <= size / 4 * 3)
		return 0;
	if (s->ntxn > 0) {
		log_error("store: grow: a transaction is open");
		return -1;
	}
	return env_grow(s, s->env, "") == 0 ? 1 : -1;
}

uint64_t
store_room(const struct store *s)
{
	uint64_t size, used;

	if (env_usage(s->env, &size, &used) != 0)
		return 0;
	return used < s->map_max ? s->map_max - used : 0;
}

uint64_t
store_tables_room(struct store *s)
{
	uint64_t size, used;
	int rc;

	if (s->tenv == NULL)
		rc = env_usage(s->env, &size, &used);
	else {
		/* The checkpoint thread may be growing the tables' map:
		 * mdb_env_info() would read a meta page being unmapped. */
		pthread_rwlock_rdlock(&s->tlock);
		rc = env_usage(s->tenv, &size, &used);
		pthread_rwlock_unlock(&s->tlock);
	}
	if (rc != 0)
		return 0;
	return used < s->map_max ? s->map_max - used : 0;
}

/* Begins a transaction in env (write or read-only): *x. Adopts a map
 * another process grew when no transaction of ours is open on it. */
static int
env_begin(MDB_env *env, atomic_int *ntxn, bool write, MDB_txn **x)
{
	int i, rc;

	for (i = 0;; i++) {
		rc = mdb_txn_begin(env, NULL, write ? 0 : MDB_RDONLY, x);
		if (rc != MDB_MAP_RESIZED || i == STORE_BEGIN_TRIES)
			break;
		if (*ntxn > 0)
			break;
		rc = mdb_env_set_mapsize(env, 0);
		if (rc != 0)
			break;
	}
	if (rc != 0) {
		*x = NULL;
		store_fail("begin", rc);
		return -1;
	}
	return 0;
}

struct store_txn *
store_txn_begin_kind(struct store *s, enum store_txn_kind kind)
{
	struct store_txn *t;
	bool logw = kind == STORE_TXN_LOG || kind == STORE_TXN_BOTH;
	bool tabw = kind == STORE_TXN_TABLES || kind == STORE_TXN_BOTH;
	int i;

	if ((logw || tabw) && s->readonly) {
		log_error("store: write transaction on a read-only "
			  "store");
		return NULL;
	}
	for (i = 0; i < DB_COUNT; i++) {
		/* A writer may have created them since we looked. */
		if (!s->have[i]) {
			if (s->ntxn == 0 && s->tntxn == 0 &&
			    dbs_open_all(s, 0) == -1)
				return NULL;
			break;
		}
	}
	t = xcalloc(1, sizeof(*t));
	t->s = s;
	memcpy(t->have, s->have, sizeof(t->have));
	/* The tables first: a log read after them covers every position
	 * they claim (applied). */
	if (s->tenv != NULL) {
		pthread_rwlock_rdlock(&s->tlock);
		if (env_begin(s->tenv, &s->tntxn, tabw, &t->ttxn) == -1) {
			pthread_rwlock_unlock(&s->tlock);
			free(t);
			return NULL;
		}
		s->tntxn++;
		t->twrite = tabw;
	} else {
		t->twrite = logw || tabw;
	}
	if (kind != STORE_TXN_TABLES || s->tenv == NULL) {
		if (env_begin(s->env, &s->ntxn,
			logw || (tabw && s->tenv == NULL), &t->txn) == -1) {
			store_txn_abort(&t);
			return NULL;
		}
		s->ntxn++;
		t->write = logw || (tabw && s->tenv == NULL);
	}
	return t;
}

struct store_txn *
store_txn_begin(struct store *s, bool write)
{
	return store_txn_begin_kind(s, write ? STORE_TXN_BOTH : STORE_TXN_READ);
}

static void
txn_free(struct store_txn **t)
{
	struct store *s = (*t)->s;

	if ((*t)->txn != NULL)
		s->ntxn--;
	if ((*t)->ttxn != NULL) {
		s->tntxn--;
		pthread_rwlock_unlock(&s->tlock);
	}
	free(*t);
	*t = NULL;
}

/* Commits the log's part, then the tables': a crash between leaves the
 * tables behind the log, which a replay makes good. 0, STORE_FULL (with
 * the full environment in *env) or -1. */
static int
txn_commit_env(struct store_txn **t, int *env)
{
	struct store *s = (*t)->s;
	bool write = (*t)->write;
	int rc = 0;

	*env = (*t)->full_env;
	if ((*t)->full) {
		store_txn_abort(t);
		return STORE_FULL;
	}
	if ((*t)->txn != NULL) {
		if (write)
			store_file_size(s, true);
		rc = mdb_txn_commit((*t)->txn);
		(*t)->txn = NULL;
		s->ntxn--;
		if (write)
			store_file_size(s, false);
		if (rc == MDB_MAP_FULL) {
			*env = s->last_full = ENV_LOG;
			store_txn_abort(t);
			return STORE_FULL;
		}
		if (rc != 0) {
			store_txn_abort(t);
			return store_fail("commit", rc);
		}
	}
	if ((*t)->ttxn != NULL) {
		bool twrite = (*t)->twrite && s->tenv != NULL;

		if (twrite)
			env_file_size(s, s->tenv, s->tdir, true);
		rc = mdb_txn_commit((*t)->ttxn);
		if (twrite)
			env_file_size(s, s->tenv, s->tdir, false);
		(*t)->ttxn = NULL;
		s->tntxn--;
		pthread_rwlock_unlock(&s->tlock);
	}
	free(*t);
	*t = NULL;
	if (rc == MDB_MAP_FULL) {
		*env = s->last_full = ENV_TABLES;
		return STORE_FULL;
	}
	if (rc != 0)
		return store_fail("commit tables", rc);
	if (write)
		store_ident_note(s, false);
	return 0;
}

int
store_txn_commit(struct store_txn **t)
{
	int env;

	return txn_commit_env(t, &env);
}

void
store_txn_abort(struct store_txn **t)
{
	if (t == NULL || *t == NULL)
		return;
	if ((*t)->txn != NULL)
		mdb_txn_abort((*t)->txn);
	if ((*t)->ttxn != NULL)
		mdb_txn_abort((*t)->ttxn);
	txn_free(t);
}

/* store_write()'s call: the context of its lmdbw operations. env is the
 * environment found full (the log's unless the tables'). */
struct write_call {
	struct store *s;
	enum store_txn_kind kind;
	int env;
	int (*fn)(struct store_txn *t, void *arg);
	void *arg;
};

static int
write_begin(void *ctx, void **txn)
{
	struct write_call *c = ctx;
	struct store_txn *t;

	if ((t = store_txn_begin_kind(c->s, c->kind)) == NULL)
		return -1;
	*txn = t;
	return 0;
}

static int
write_commit(void *ctx, void *txn)
{
	struct write_call *c = ctx;
	struct store_txn *t = txn;

	return txn_commit_env(&t, &c->env);
}

static void
write_abort(void *ctx, void *txn)
{
	struct write_call *c = ctx;
	struct store_txn *t = txn;

	c->env = t->full_env;
	store_txn_abort(&t);
}

/* Grows the environment found full; any failure reads as at map_max. */
static int
write_grow(void *ctx)
{
	struct write_call *c = ctx;

	if ((c->env == ENV_TABLES ? store_grow_tables(c->s)
				  : store_grow(c->s)) == -1)
		return LMDBW_FULL;
	return 0;
}

static int
write_fn(void *txn, void *arg)
{
	struct write_call *c = arg;

	return c->fn(txn, c->arg);
}

int
store_write(struct store *s, enum store_txn_kind kind,
    int (*fn)(struct store_txn *t, void *arg), void (*undo)(void *arg),
    void *arg)
{
	static const struct lmdbw_ops ops = { write_begin, write_commit,
		write_abort, write_grow };
	struct write_call c = { s, kind, ENV_LOG, fn, arg };

	return lmdbw_run(&ops, &c, write_fn, &c, undo, arg);
}

static int
txn_get(struct store_txn *t, enum store_db db, const void *key, size_t klen,
    MDB_val *v)
{
	MDB_val k = { klen, (void *)key };
	int rc;

	MDB_txn *x;

	if (!t->have[db])
		return STORE_NOTFOUND;
	if ((x = txn_of(t, db)) == NULL)
		return -1;
	rc = mdb_get(x, t->s->dbi[db], &k, v);
	if (rc == MDB_NOTFOUND)
		return STORE_NOTFOUND;
	if (rc != 0)
		return store_fail(db_names[db], rc);
	return val_open(t->s, db, &k, v);
}

/* Puts val under key in db (flags: MDB_APPEND or 0), sealed with its
 * checksum when db's environment carries them. The value is copied and
 * sealed in a buffer first: val may point into the store's pages. */
static int
db_put(struct store_txn *t, enum store_db db, const void *key, size_t klen,
    const void *val, size_t vlen, unsigned int flags)
{
	unsigned char small[512], *buf = small;
	MDB_val k = { klen, (void *)key };
	MDB_val v = { vlen, (void *)val };
	int rc;

	if (!txn_writes(t, db)) {
		log_error("store: %s: put in a read transaction", db_names[db]);
		return -1;
	}
	if (t->full)
		return STORE_FULL;
	if (db_sums(t->s, db)) {
		if (vlen + SUM_BYTES > sizeof(small))
			buf = xmalloc(vlen + SUM_BYTES);
		if (vlen > 0)
			memcpy(buf, val, vlen);
		val_seal(key, klen, buf, vlen);
		v.mv_size = vlen + SUM_BYTES;
		v.mv_data = buf;
	}
	rc = mdb_put(txn_of(t, db), t->s->dbi[db], &k, &v, flags);
	if (buf != small)
		free(buf);
	if (rc != 0)
		return txn_fail(t, db, db_names[db], rc);
	return 0;
}

static int
txn_put(struct store_txn *t, enum store_db db, const void *key, size_t klen,
    const void *val, size_t vlen)
{
	return db_put(t, db, key, klen, val, vlen, 0);
}

/*
 * Opens a cursor on db at the first key >= prefix (the first key when plen
 * is 0). Returns 0 with *c open and k, v filled; STORE_NOTFOUND when there
 * is no such key or no such database (no cursor then); -1.
 */
static int
cursor_first(struct store_txn *t, enum store_db db, const void *prefix,
    size_t plen, MDB_cursor **c, MDB_val *k, MDB_val *v)
{
	int rc;

	MDB_txn *x;

	if (!t->have[db])
		return STORE_NOTFOUND;
	if ((x = txn_of(t, db)) == NULL)
		return -1;
	rc = mdb_cursor_open(x, t->s->dbi[db], c);
	if (rc != 0)
		return store_fail(db_names[db], rc);
	k->mv_size = plen;
	k->mv_data = (void *)prefix;
	rc = mdb_cursor_get(*c, k, v, plen > 0 ? MDB_SET_RANGE : MDB_FIRST);
	if (rc == 0 && val_open(t->s, db, k, v) == 0)
		return 0;
	if (rc == 0)
		rc = -1; /* damaged, logged */
	mdb_cursor_close(*c);
	*c = NULL;
	if (rc == MDB_NOTFOUND)
		return STORE_NOTFOUND;
	if (rc == -1)
		return -1;
	return store_fail(db_names[db], rc);
}

/* 0 with k, v at the next record; 1 at the end; -1. */
static int
cursor_next(MDB_cursor *c, enum store_db db, MDB_val *k, MDB_val *v)
{
	MDB_txn *txn = mdb_cursor_txn(c);
	const struct store *s = mdb_env_get_userctx(mdb_txn_env(txn));
	int rc;

	rc = mdb_cursor_get(c, k, v, MDB_NEXT);
	if (rc == MDB_NOTFOUND)
		return 1;
	if (rc != 0)
		return store_fail(db_names[db], rc);
	return val_open(s, db, k, v);
}

static int
seq_decode(const MDB_val *v, struct store_seq *out)
{
	Indicator__Store__SeqState *m;

	m = indicator__store__seq_state__unpack(NULL, v->mv_size, v->mv_data);
	if (m == NULL) {
		log_error("store: corrupt sequence record");
		return -1;
	}
	out->last_seq = m->last_seq;
	out->first_seen_ms = m->first_seen_ms;
	out->last_seen_ms = m->last_seen_ms;
	out->accepted = m->accepted;
	out->rejected = m->rejected;
	indicator__store__seq_state__free_unpacked(m, NULL);
	return 0;
}

int
store_seq_get(struct store_txn *t, const char *agent_id, uint64_t epoch,
    struct store_seq *out)
{
	struct key k;
	MDB_val v;
	int rc;

	if (key_seq(&k, agent_id, epoch) == -1)
		return -1;
	rc = txn_get(t, DB_SEQ, k.b, k.len, &v);
	if (rc != 0)
		return rc;
	return seq_decode(&v, out);
}

int
store_seq_put(struct store_txn *t, const char *agent_id, uint64_t epoch,
    const struct store_seq *st)
{
	Indicator__Store__SeqState m = INDICATOR__STORE__SEQ_STATE__INIT;
	unsigned char buf[64];
	struct key k;
	size_t len;

	if (key_seq(&k, agent_id, epoch) == -1)
		return -1;
	m.last_seq = st->last_seq;
	m.first_seen_ms = st->first_seen_ms;
	m.last_seen_ms = st->last_seen_ms;
	m.accepted = st->accepted;
	m.rejected = st->rejected;
	/* Five varints: at most 5 * 11 bytes. */
	len = indicator__store__seq_state__pack(&m, buf);
	return txn_put(t, DB_SEQ, k.b, k.len, buf, len);
}

int
store_seq_scan(struct store_txn *t,
    int (*fn)(const char *agent_id, uint64_t epoch, const struct store_seq *st,
	void *arg),
    void *arg)
{
	char agent_id[IND_AGENT_ID_MAX + 1];
	struct store_seq st;
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	rc = cursor_first(t, DB_SEQ, NULL, 0, &c, &k, &v);
	if (rc == STORE_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	do {
		const char *p = k.mv_data;
		size_t n = strnlen(p, k.mv_size);

		if (n == 0 || n > IND_AGENT_ID_MAX || k.mv_size != n + 1 + 8) {
			log_error("store: corrupt sequence key");
			rc = -1;
			break;
		}
		memcpy(agent_id, p, n + 1);
		if (seq_decode(&v, &st) == -1) {
			rc = -1;
			break;
		}
		rc = fn(agent_id, get_be64((const unsigned char *)p + n + 1),
		    &st, arg);
		if (rc != 0)
			break;
	} while ((rc = cursor_next(c, DB_SEQ, &k, &v)) == 0);
	mdb_cursor_close(c);
	return rc == 1 ? 0 : rc;
}

int
store_reject_put(struct store_txn *t, const char *agent_id, uint64_t epoch,
    uint64_t seq, const void *buf, size_t len)
{
	struct key k;

	if (key_seq(&k, agent_id, epoch) == -1)
		return -1;
	key_add_be64(&k, seq);
	return txn_put(t, DB_REJECT, k.b, k.len, buf, len);
}

int
store_reject_get(struct store_txn *t, const char *agent_id, uint64_t epoch,
    uint64_t seq, const void **buf, size_t *len)
{
	struct key k;
	MDB_val v;
	int rc;

	if (key_seq(&k, agent_id, epoch) == -1)
		return -1;
	key_add_be64(&k, seq);
	rc = txn_get(t, DB_REJECT, k.b, k.len, &v);
	if (rc != 0)
		return rc;
	*buf = v.mv_data;
	*len = v.mv_size;
	return 0;
}

/* An ObsRef record into out. -1 when it does not decode. */
int
store_ref_decode(const void *buf, size_t len, struct store_ref *out)
{
	const uint8_t *p = buf, *end = p + len;
	struct pbwire_field f;
	int rc;

	/* Read field by field (pbwire.h): the ingest path reads one for
	 * every observation, and three scalars need no allocation. */
	memset(out, 0, sizeof(*out));
	while ((rc = pbwire_next(&p, end, &f)) == 1) {
		if (f.number == PBF_OBS_REF_REVISION &&
		    f.type == PBF_WIRE_UINT32)
			out->revision = (uint32_t)f.u;
		else if (f.number == PBF_OBS_REF_VALUE &&
			 f.type == PBF_WIRE_DOUBLE)
			out->value = pbwire_double(&f);
		else if (f.number == PBF_OBS_REF_AT &&
			 f.type == PBF_WIRE_UINT64)
			out->lsn = f.u;
	}
	return rc == -1 || out->lsn == 0 ? -1 : 0;
}

static int
ref_decode(const MDB_val *v, struct store_ref *out)
{
	if (store_ref_decode(v->mv_data, v->mv_size, out) == -1) {
		log_error("store: corrupt obs record");
		return -1;
	}
	return 0;
}

int
store_ref_get(struct store_txn *t, const char *district, const char *industry,
    const char *metric, const char *period, struct store_ref *out)
{
	struct key k;
	MDB_val v;
	int rc;

	if (key_obs(&k, district, industry, metric, period) == -1)
		return -1;
	if ((rc = txn_get(t, DB_OBS, k.b, k.len, &v)) != 0)
		return rc;
	return ref_decode(&v, out);
}

int
store_ref_put(struct store_txn *t, const char *district, const char *industry,
    const char *metric, const char *period, const struct store_ref *ref)
{
	Indicator__Store__ObsRef m = INDICATOR__STORE__OBS_REF__INIT;
	unsigned char buf[32]; /* two varints and a double: at most 31 */
	struct key k;
	size_t len;

	if (key_obs(&k, district, industry, metric, period) == -1)
		return -1;
	m.revision = ref->revision;
	m.value = ref->value;
	m.at = ref->lsn;
	len = indicator__store__obs_ref__pack(&m, buf);
	return txn_put(t, DB_OBS, k.b, k.len, buf, len);
}

int
store_log_next(struct store_txn *t, uint64_t *lsn)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	if (t->next_lsn == 0) {
		if (!t->have[DB_LOG]) {
			t->next_lsn = 1;
		} else if ((rc = mdb_cursor_open(txn_of(t, DB_LOG),
				t->s->dbi[DB_LOG], &c)) != 0) {
			return store_fail("log", rc);
		} else {
			rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
			mdb_cursor_close(c);
			if (rc == MDB_NOTFOUND)
				t->next_lsn = 1;
			else if (rc != 0)
				return store_fail("log", rc);
			else if (k.mv_size != 8)
				return store_fail("log", MDB_CORRUPTED);
			else
				t->next_lsn = get_be64(k.mv_data) + 1;
		}
	}
	*lsn = t->next_lsn;
	return 0;
}

int
store_log_append(struct store_txn *t, struct store_obs *o)
{
	unsigned char key[8], val[STORE_OBS_VAL_MAX];
	size_t vlen;
	uint64_t lsn;
	int rc;

	if (!t->write) {
		log_error("store: log: append in a read transaction");
		return -1;
	}
	if (t->full)
		return STORE_FULL;
	if ((rc = store_log_next(t, &lsn)) != 0)
		return rc;
	if (obs_encode(o, val, sizeof(val), &vlen) == -1)
		return -1;
	put_be64(key, lsn);
	/* Positions only rise: LMDB fills each page in turn and leaves it. */
	rc = db_put(t, DB_LOG, key, sizeof(key), val, vlen, MDB_APPEND);
	if (rc != 0)
		return rc;
	o->lsn = lsn;
	t->next_lsn = lsn + 1;
	return 0;
}

int
store_log_get(struct store_txn *t, uint64_t lsn, struct store_obs *out)
{
	unsigned char key[8];
	MDB_val v;
	int rc;

	put_be64(key, lsn);
	if ((rc = txn_get(t, DB_LOG, key, sizeof(key), &v)) != 0)
		return rc;
	memset(out, 0, sizeof(*out));
	if (obs_decode(&v, out) == -1)
		return -1;
	out->lsn = lsn;
	return 0;
}

int
store_log_scan(struct store_txn *t, uint64_t from,
    int (*fn)(const struct store_obs *o, void *arg), void *arg)
{
	unsigned char key[8];
	struct store_obs o;
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	put_be64(key, from);
	rc = cursor_first(t, DB_LOG, key, sizeof(key), &c, &k, &v);
	if (rc == STORE_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	do {
		memset(&o, 0, sizeof(o));
		if (k.mv_size != 8 || obs_decode(&v, &o) == -1) {
			log_error("store: corrupt log record");
			rc = -1;
			break;
		}
		o.lsn = get_be64(k.mv_data);
		if ((rc = fn(&o, arg)) != 0)
			break;
	} while ((rc = cursor_next(c, DB_LOG, &k, &v)) == 0);
	mdb_cursor_close(c);
	return rc == 1 ? 0 : rc;
}

int
store_obs_put(struct store_txn *t, struct store_obs *o, struct store_obs *prev,
    bool *had_prev)
{
	struct store_ref ref;
	uint64_t applied, lsn;
	int rc;

	rc = store_ref_get(
	    t, o->district, o->industry, o->metric, o->period, &ref);
	if (rc == -1)
		return -1;
	if (had_prev != NULL)
		*had_prev = rc == 0;
	if (rc == STORE_NOTFOUND)
		memset(&ref, 0, sizeof(ref));
	else if (prev != NULL && (rc = store_log_get(t, ref.lsn, prev)) != 0)
		return rc == STORE_NOTFOUND ? -1 : rc;
	if (ref.revision == UINT32_MAX) {
		log_error("store: %s/%s/%s/%s: too many revisions", o->district,
		    o->industry, o->metric, o->period);
		return -1;
	}
	if ((rc = store_meta_get(t, STORE_META_APPLIED, &applied)) != 0 ||
	    (rc = store_log_next(t, &lsn)) != 0)
		return rc;
	o->revision = ref.revision + 1;
	o->prev = ref.lsn;
	o->batch = lsn;
	if ((rc = store_log_append(t, o)) != 0)
		return rc;
	ref.revision = o->revision;
	ref.value = o->value;
	ref.lsn = o->lsn;
	if ((rc = store_ref_put(
		 t, o->district, o->industry, o->metric, o->period, &ref)) != 0)
		return rc;
	/* Applied at once; nothing is left for a checkpoint to do, unless
	 * the log already had a tail the daemon has not applied. */
	if (applied + 1 == lsn)
		rc = store_meta_put(t, STORE_META_APPLIED, lsn);
	return rc;
}

int
store_obs_get(struct store_txn *t, const char *district, const char *industry,
    const char *metric, const char *period, struct store_obs *out)
{
	struct store_ref ref;
	int rc;

	rc = store_ref_get(t, district, industry, metric, period, &ref);
	if (rc != 0)
		return rc;
	if ((rc = store_log_get(t, ref.lsn, out)) == STORE_NOTFOUND) {
		log_error("store: obs names log record %llu, which is "
			  "missing",
		    (unsigned long long)ref.lsn);
		return -1;
	}
	return rc;
}

int
store_obs_value(struct store_txn *t, const char *district, const char *industry,
    const char *metric, const char *period, double *value)
{
	struct store_ref ref;
	int rc;

	rc = store_ref_get(t, district, industry, metric, period, &ref);
	if (rc == 0)
		*value = ref.value;
	return rc;
}

static bool
filter_set(const char *f)
{
	return f != NULL && f[0] != '\0';
}

static bool
filter_match(const char *f, const char *code)
{
	return !filter_set(f) || strcmp(f, code) == 0;
}

int
store_obs_scan(struct store_txn *t, const struct store_filter *f,
    int (*fn)(const struct store_obs *o, void *arg), void *arg)
{
	const struct store_filter none = { NULL, NULL, NULL, NULL };
	struct store_obs o;
	struct store_ref ref;
	struct key prefix = { .len = 0 };
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	if (f == NULL)
		f = &none;
	if (filter_set(f->district)) {
		if (key_add_str(
			&prefix, "district", f->district, IND_CODE_MAX) == -1)
			return -1;
		/* With the district known, a known industry narrows it too. */
		if (filter_set(f->industry) &&
		    key_add_str(
			&prefix, "industry", f->industry, IND_CODE_MAX) == -1)
			return -1;
	}
	rc = cursor_first(t, DB_OBS, prefix.b, prefix.len, &c, &k, &v);
	if (rc == STORE_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	do {
		char *codes[4] = { o.district, o.industry, o.metric, o.period };
		const size_t sizes[4] = { sizeof(o.district),
			sizeof(o.industry), sizeof(o.metric),
			sizeof(o.period) };
		size_t rest;

		if (!mdb_has_prefix(&k, prefix.b, prefix.len)) {
			rc = 1;
			break;
		}
		memset(&o, 0, sizeof(o));
		if (key_obs_split(&k, codes, sizes, &rest) == -1) {
			rc = -1;
			break;
		}
		if (!filter_match(f->industry, o.industry) ||
		    !filter_match(f->metric, o.metric) ||
		    !filter_match(f->period, o.period))
			continue;
		if (ref_decode(&v, &ref) == -1 ||
		    store_log_get(t, ref.lsn, &o) != 0) {
			log_error("store: %s/%s/%s/%s: its log record "
				  "%llu is missing or corrupt",
			    o.district, o.industry, o.metric, o.period,
			    (unsigned long long)ref.lsn);
			rc = -1;
			break;
		}
		rc = fn(&o, arg);
		if (rc != 0)
			break;
	} while ((rc = cursor_next(c, DB_OBS, &k, &v)) == 0);
	mdb_cursor_close(c);
	return rc == 1 ? 0 : rc;
}

int
store_hist_scan(struct store_txn *t, const char *district, const char *industry,
    const char *metric, const char *period,
    int (*fn)(const struct store_obs *o, void *arg), void *arg)
{
	struct store_obs *revs = NULL;
	struct store_ref ref;
	uint64_t lsn;
	size_t n = 0, cap = 0;
	int rc;

	rc = store_ref_get(t, district, industry, metric, period, &ref);
	if (rc == STORE_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	/* Newest to oldest along prev; each step goes back in the log, so a
	 * record that does not is corrupt (and cannot loop). */
	for (lsn = ref.lsn; lsn != 0;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			revs = xrealloc(revs, cap * sizeof(*revs));
		}
		if ((rc = store_log_get(t, lsn, &revs[n])) != 0 ||
		    revs[n].prev >= lsn ||
		    strcmp(revs[n].district, district) != 0 ||
		    strcmp(revs[n].industry, industry) != 0 ||
		    strcmp(revs[n].metric, metric) != 0 ||
		    strcmp(revs[n].period, period) != 0) {
			log_error("store: %s/%s/%s/%s: history broken at "
				  "log record %llu",
			    district, industry, metric, period,
			    (unsigned long long)lsn);
			free(revs);
			return -1;
		}
		lsn = revs[n++].prev;
	}
	rc = 0;
	while (n > 0 && rc == 0)
		rc = fn(&revs[--n], arg);
	free(revs);
	return rc;
}

static int
topic_check(const char *topic, bool empty_ok)
{
	size_t n = strlen(topic);

	if ((n == 0 && !empty_ok) || n > IND_TOPIC_MAX) {
		log_error("store: topic \"%.*s%s\": %s (1..%d bytes)", 40,
		    topic, n > 40 ? "..." : "", n == 0 ? "empty" : "too long",
		    IND_TOPIC_MAX);
		return -1;
	}
	return 0;
}

int
store_agg_put(
    struct store_txn *t, const char *topic, const void *buf, size_t len)
{
	if (topic_check(topic, false) == -1)
		return -1;
	return txn_put(t, DB_AGG, topic, strlen(topic), buf, len);
}

int
store_agg_del(struct store_txn *t, const char *topic)
{
	MDB_val k;
	int rc;

	if (topic_check(topic, false) == -1)
		return -1;
	if (!txn_writes(t, DB_AGG)) {
		log_error("store: agg: delete in a read transaction");
		return -1;
	}
	if (t->full)
		return STORE_FULL;
	if (!t->have[DB_AGG])
		return STORE_NOTFOUND;
	k.mv_size = strlen(topic);
	k.mv_data = (void *)topic;
	rc = mdb_del(txn_of(t, DB_AGG), t->s->dbi[DB_AGG], &k, NULL);
	if (rc == MDB_NOTFOUND)
		return STORE_NOTFOUND;
	if (rc != 0)
		return txn_fail(t, DB_AGG, "agg", rc);
	return 0;
}

int
store_agg_get(
    struct store_txn *t, const char *topic, const void **buf, size_t *len)
{
	MDB_val v;
	int rc;

	if (topic_check(topic, false) == -1)
		return -1;
	rc = txn_get(t, DB_AGG, topic, strlen(topic), &v);
	if (rc != 0)
		return rc;
	*buf = v.mv_data;
	*len = v.mv_size;
	return 0;
}

int
store_agg_scan(struct store_txn *t, const char *prefix,
    int (*fn)(const char *topic, const void *buf, size_t len, void *arg),
    void *arg)
{
	char topic[IND_TOPIC_MAX + 1];
	size_t plen;
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	if (prefix == NULL)
		prefix = "";
	if (topic_check(prefix, true) == -1)
		return -1;
	plen = strlen(prefix);
	rc = cursor_first(t, DB_AGG, prefix, plen, &c, &k, &v);
	if (rc == STORE_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	do {
		if (!mdb_has_prefix(&k, prefix, plen)) {
			rc = 1;
			break;
		}
		if (k.mv_size > IND_TOPIC_MAX) {
			log_error("store: corrupt aggregate key");
			rc = -1;
			break;
		}
		memcpy(topic, k.mv_data, k.mv_size);
		topic[k.mv_size] = '\0';
		rc = fn(topic, v.mv_data, v.mv_size, arg);
		if (rc != 0)
			break;
	} while ((rc = cursor_next(c, DB_AGG, &k, &v)) == 0);
	mdb_cursor_close(c);
	return rc == 1 ? 0 : rc;
}

static int
meta_name_check(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > STORE_META_NAME_MAX) {
		log_error("store: meta name of %zu bytes (1..%d)", n,
		    STORE_META_NAME_MAX);
		return -1;
	}
	return 0;
}

int
store_meta_get(struct store_txn *t, const char *name, uint64_t *out)
{
	MDB_val v;
	int rc;

	if (meta_name_check(name) == -1)
		return -1;
	rc = txn_get(t, meta_db(name), name, strlen(name), &v);
	if (rc == STORE_NOTFOUND) {
		*out = 0;
		return 0;
	}
	if (rc != 0)
		return rc;
	if (v.mv_size != 8) {
		log_error("store: corrupt meta value for %s", name);
		return -1;
	}
	*out = get_be64(v.mv_data);
	return 0;
}

int
store_meta_put(struct store_txn *t, const char *name, uint64_t value)
{
	unsigned char buf[8];

	if (meta_name_check(name) == -1)
		return -1;
	put_be64(buf, value);
	return txn_put(t, meta_db(name), name, strlen(name), buf, sizeof(buf));
}

/*
 * Files being staged (docs/protocol.md, "File transactions"): "stage"
 * holds one FileStage per (agent_id, epoch), keyed as seq is; "staged"
 * its parts, keyed by (agent_id, epoch, part).
 */

static int
stage_decode(const MDB_val *v, struct store_stage *out)
{
	Indicator__Store__FileStage *m;

	m = indicator__store__file_stage__unpack(NULL, v->mv_size, v->mv_data);
	if (m == NULL) {
		log_error("store: corrupt file stage record");
		return -1;
	}
	out->file_id = m->file_id;
	out->parts = m->parts;
	out->received = m->received;
	out->first_seq = m->first_seq;
	out->started_ms = m->started_ms;
	out->last_ms = m->last_ms;
	out->rejected = m->rejected;
	out->bytes = m->bytes;
	indicator__store__file_stage__free_unpacked(m, NULL);
	return 0;
}

int
store_stage_get(struct store_txn *t, const char *agent_id, uint64_t epoch,
    struct store_stage *out)
{
	struct key k;
	MDB_val v;
	int rc;

	if (key_seq(&k, agent_id, epoch) == -1)
		return -1;
	if ((rc = txn_get(t, DB_STAGE, k.b, k.len, &v)) != 0)
		return rc;
	return stage_decode(&v, out);
}

int
store_stage_put(struct store_txn *t, const char *agent_id, uint64_t epoch,
    const struct store_stage *st)
{
	Indicator__Store__FileStage m = INDICATOR__STORE__FILE_STAGE__INIT;
	unsigned char buf[96];
	struct key k;
	size_t len;

	if (key_seq(&k, agent_id, epoch) == -1)
		return -1;
	m.file_id = st->file_id;
	m.parts = st->parts;
	m.received = st->received;
	m.first_seq = st->first_seq;
	m.started_ms = st->started_ms;
	m.last_ms = st->last_ms;
	m.rejected = st->rejected;
	m.bytes = st->bytes;
	/* Eight varints: at most 8 * 11 bytes. */
	len = indicator__store__file_stage__pack(&m, buf);
	return txn_put(t, DB_STAGE, k.b, k.len, buf, len);
}

int
store_stage_del(struct store_txn *t, const char *agent_id, uint64_t epoch)
{
	MDB_cursor *c;
	MDB_val k, v;
	struct key kb;
	int rc;

	if (!t->write) {
		log_error("store: stage: delete in a read transaction");
		return -1;
	}
	if (key_seq(&kb, agent_id, epoch) == -1)
		return -1;
	if (t->have[DB_STAGE]) {
		k.mv_size = kb.len;
		k.mv_data = kb.b;
		rc =
		    mdb_del(txn_of(t, DB_STAGE), t->s->dbi[DB_STAGE], &k, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return txn_fail(t, DB_STAGE, "stage", rc);
	}
	/* Every part: the keys that start with (agent_id, epoch), each
	 * found afresh (a deleted cursor's position is LMDB's to define). */
	rc = cursor_first(t, DB_STAGED, kb.b, kb.len, &c, &k, &v);
	if (rc == STORE_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	while (mdb_has_prefix(&k, kb.b, kb.len)) {
		if ((rc = mdb_cursor_del(c, 0)) != 0) {
			rc = txn_fail(t, DB_STAGED, "staged", rc);
			break;
		}
		k.mv_size = kb.len;
		k.mv_data = kb.b;
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			break;
		}
		if (rc != 0) {
			rc = store_fail("staged", rc);
			break;
		}
	}
	mdb_cursor_close(c);
	return rc;
}

int
store_stage_scan(struct store_txn *t,
    int (*fn)(const char *agent_id, uint64_t epoch,
	const struct store_stage *st, void *arg),
    void *arg)
{
	char agent_id[IND_AGENT_ID_MAX + 1];
	struct store_stage st;
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	rc = cursor_first(t, DB_STAGE, NULL, 0, &c, &k, &v);
	if (rc == STORE_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	do {
		const char *p = k.mv_data;
		size_t n = strnlen(p, k.mv_size);

		if (n == 0 || n > IND_AGENT_ID_MAX || k.mv_size != n + 1 + 8) {
			log_error("store: corrupt file stage key");
			rc = -1;
			break;
		}
		memcpy(agent_id, p, n + 1);
		if (stage_decode(&v, &st) == -1) {
			rc = -1;
			break;
		}
		rc = fn(agent_id, get_be64((const unsigned char *)p + n + 1),
		    &st, arg);
		if (rc != 0)
			break;
	} while ((rc = cursor_next(c, DB_STAGE, &k, &v)) == 0);
	mdb_cursor_close(c);
	return rc == 1 ? 0 : rc;
}

int
store_staged_put(struct store_txn *t, const char *agent_id, uint64_t epoch,
    uint32_t part, const void *buf, size_t len)
{
	struct key k;

	if (key_seq(&k, agent_id, epoch) == -1)
		return -1;
	key_add_be64(&k, part);
	return txn_put(t, DB_STAGED, k.b, k.len, buf, len);
}

int
store_staged_get(struct store_txn *t, const char *agent_id, uint64_t epoch,
    uint32_t part, const void **buf, size_t *len)
{
	struct key k;
	MDB_val v;
	int rc;

	if (key_seq(&k, agent_id, epoch) == -1)
		return -1;
	key_add_be64(&k, part);
	if ((rc = txn_get(t, DB_STAGED, k.b, k.len, &v)) != 0)
		return rc;
	*buf = v.mv_data;
	*len = v.mv_size;
	return 0;
}

static int
db_entries(struct store_txn *t, enum store_db db, uint64_t *out)
{
	MDB_stat st;
	int rc;

	*out = 0;
	if (!t->have[db])
		return 0;
	rc = mdb_stat(txn_of(t, db), t->s->dbi[db], &st);
	if (rc != 0)
		return store_fail(db_names[db], rc);
	*out = st.ms_entries;
	return 0;
}

int
store_stat(struct store_txn *t, struct store_stat *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = env_usage(t->s->env, &out->map_size, &out->used_bytes)) != 0)
		return store_fail("stat", rc);
	if (db_entries(t, DB_OBS, &out->nobs) == -1 ||
	    db_entries(t, DB_LOG, &out->nhist) == -1 ||
	    db_entries(t, DB_SEQ, &out->nagents) == -1 ||
	    db_entries(t, DB_AGG, &out->naggs) == -1)
		return -1;
	return 0;
}

/*
 * store.id for a copy in dir of the store with id `id`: its own last
 * transaction and size, read from the copy (opened without a lock file,
 * read-only), so that a restore of the directory's contents is accepted.
 */
static int
backup_ident(const char *dir, uint64_t id)
{
	struct envcheck_id ident = { .id = id };
	MDB_envinfo info;
	char err[4200];
	MDB_env *env;
	int rc;

	if ((rc = mdb_env_create(&env)) != 0) {
		log_error("store: backup %s: %s", dir, mdb_strerror(rc));
		return -1;
	}
	if ((rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK, 0600)) != 0 ||
	    (rc = mdb_env_info(env, &info)) != 0) {
		log_error("store: backup %s: %s", dir, mdb_strerror(rc));
		goto env_close;
	}
	ident.txn = info.me_last_txnid;
	if (envcheck_file_size(env, &ident.size) == -1) {
		log_error(
		    "store: backup %s/data.mdb: %s", dir, strerror(errno));
		rc = -1;
		goto env_close;
	}
	if ((rc = envcheck_id_write(dir, &ident, err, sizeof(err))) == -1)
		log_error("%s", err);
env_close:
	mdb_env_close(env);
	return rc == 0 ? 0 : -1;
}

int
store_backup(struct store *s, const char *dir)
{
	uint64_t id = s->stored_id;
	char tdir[PATH_MAX];
	int rc;

	/* The tables first, then the log: the log's copy, taken after,
	 * holds every position the tables' copy claims (applied), so a
	 * restore replays from there. */
	if (s->tenv != NULL) {
		if (snprintf(tdir, sizeof(tdir), "%s/" STORE_TABLES_DIR, dir) >=
			(int)sizeof(tdir) ||
		    mkdir(tdir, 0700) == -1) {
			log_error(
			    "store: backup to %s: %s", tdir, strerror(errno));
			return -1;
		}
		pthread_rwlock_rdlock(&s->tlock); /* no grow meanwhile */
		rc = mdb_env_copy2(s->tenv, tdir, MDB_CP_COMPACT);
		pthread_rwlock_unlock(&s->tlock);
		if (rc != 0) {
			log_error(
			    "store: backup to %s: %s", tdir, mdb_strerror(rc));
			return -1;
		}
	}
	rc = mdb_env_copy2(s->env, dir, MDB_CP_COMPACT);
	if (rc != 0) {
		log_error("store: backup to %s: %s", dir, mdb_strerror(rc));
		return -1;
	}
	/* A store without an id yet (never opened by a daemon of this
	 * version) gets one at its first start, restored or not. */
	if (id == 0)
		(void)store_ident_get(s, &id);
	return id == 0 ? 0 : backup_ident(dir, id);
}

/* Scrubs db from the key start (NULL: its first); counts and reports. */
static int
scrub_db(struct store_txn *t, enum store_db db, const void *start, size_t slen,
    store_scrub_fn fn, void *arg, uint64_t *records, uint64_t *damaged)
{
	char shown[160];
	MDB_cursor *c;
	MDB_txn *x;
	MDB_val k, v;
	int rc, stop = 0;

	if (!t->have[db])
		return 0;
	if ((x = txn_of(t, db)) == NULL)
		return -1;
	if ((rc = mdb_cursor_open(x, t->s->dbi[db], &c)) != 0)
		return store_fail(db_names[db], rc);
	k.mv_size = slen;
	k.mv_data = (void *)start;
	rc = mdb_cursor_get(c, &k, &v, start ? MDB_SET_RANGE : MDB_FIRST);
	for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct store_obs o;
		MDB_val body = v;

		(*records)++;
		if (!val_intact(&k, &v)) {
			key_show(db, &k, shown, sizeof(shown));
			(*damaged)++;
			if ((stop = fn(db_names[db], shown,
				 "fails its checksum", arg)) != 0)
				break;
			continue;
		}
		body.mv_size -= SUM_BYTES;
		if (db == DB_LOG &&
		    (k.mv_size != 8 || obs_decode(&body, &o) == -1)) {
			key_show(db, &k, shown, sizeof(shown));
			(*damaged)++;
			if ((stop = fn(db_names[db], shown, "does not decode",
				 arg)) != 0)
				break;
		}
	}
	mdb_cursor_close(c);
	if (stop != 0)
		return stop;
	if (rc == MDB_NOTFOUND || rc == 0)
		return 0;
	/* The tree itself is damaged: LMDB cannot walk it to its end. */
	(*damaged)++;
	snprintf(shown, sizeof(shown), "(after %llu records)",
	    (unsigned long long)*records);
	fn(db_names[db], shown, mdb_strerror(rc), arg);
	return 0;
}

int
store_scrub(struct store_txn *t, uint64_t log_from, store_scrub_fn fn,
    void *arg, uint64_t *records)
{
	uint64_t damaged = 0, applied = 0;
	unsigned char key[8];
	enum store_db order[DB_COUNT];
	size_t n = 0;
	int rc = 0;

	/* Both metas first ("applied" is read from the tables'), the log
	 * last, every other database of both environments between. */
	order[n++] = DB_META;
	if (t->s->tenv != NULL)
		order[n++] = DB_TMETA;
	for (int i = 0; i < DB_COUNT; i++)
		if (i != DB_META && i != DB_TMETA && i != DB_LOG)
			order[n++] = (enum store_db)i;
	order[n++] = DB_LOG;
	*records = 0;
	if (!store_checksummed(t->s))
		return -1;
	for (size_t i = 0; i < n; i++) {
		enum store_db db = order[i];

		if (db == DB_LOG) {
			if (log_from == 0 && damaged == 0 &&
			    store_meta_get(t, STORE_META_APPLIED, &applied) ==
				0)
				log_from = applied + 1;
			if (log_from == 0)
				log_from = 1;
			put_be64(key, log_from);
			rc = scrub_db(t, db, key, sizeof(key), fn, arg, records,
			    &damaged);
		} else {
			rc = scrub_db(
			    t, db, NULL, 0, fn, arg, records, &damaged);
		}
		if (rc != 0)
			break;
	}
	if (rc == -1)
		return -1;
	return damaged > 0 ? (int)(damaged > INT_MAX ? INT_MAX : damaged) : 0;
}

bool
store_checksummed(const struct store *s)
{
	return s->sums[ENV_LOG] && (s->tenv == NULL || s->sums[ENV_TABLES]);
}
