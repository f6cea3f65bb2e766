/*
 * The ledger: log append, the latest-value and aggregate tables, the
 * publish seq, checkpoints and their policy, replay, and the registry's
 * effect on the aggregates. The design and its invariant are at the top
 * of ledger.h.
 *
 * Two tables, both open addressing over hash.h's function, both written at
 * the checkpoint:
 *
 *   latest  (district, industry, metric, period) -> store_ref: the key's
 *           latest revision. Keys (the four codes, NUL-separated, as in the
 *           store) live in one buffer, so that dropping the table frees
 *           everything at once.
 *   aggs    agg_key -> the aggregate's sum in units, districts reporting,
 *           content, revision and packed bytes as last published. Keys are
 *           zero-filled past each code, so a key is its bytes: hashed and
 *           compared whole. Each district-industry leaf remembers the three
 *           aggregates above it (an observation touches four, and three are
 *           shared by many keys).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregate.h"
#include "hash.h"
#include "indicator.pb-c.h"
#include "ledger.h"
#include "log.h"
#include "pbfields.h"
#include "pbpack.h"
#include "pbwire.h"
#include "xmalloc.h"

/* While the tables are full, a checkpoint is tried again at most this
 * often (batches wait meanwhile). */
#define TIGHT_RETRY_MS 1000
/* While a checkpoint job is out, the main loop comes back this soon to
 * take it in. */
#define JOB_POLL_MS 5
/* Room for a latest key: four codes, each with its NUL. */
#define LATEST_KEY_MAX (3 * (IND_CODE_MAX + 1) + IND_PERIOD_MAX + 1)

/* ---- the latest-value table ---- */

struct latest_entry {
	uint32_t hash;
	uint32_t keylen; /* 0: empty slot */
	bool dirty; /* changed since the checkpoint */
	size_t keyoff; /* in keys */
	struct store_ref ref;
};

struct latest {
	struct latest_entry *e;
	size_t n;
	size_t ndirty;
	size_t cap; /* a power of two */
	char *keys;
	size_t used;
	size_t size;
};

/* ---- the aggregate table ---- */

struct slot {
	uint32_t idx; /* 0: empty, else the entry's index + 1 */
	uint32_t hash;
};

struct entry {
	uint32_t hash;
	struct agg_key key;
	bool stored; /* it exists (in the store or since): old and revision
			are set */
	bool dirty; /* changed by this batch: recompute and maybe publish */
	bool unflushed; /* published since the checkpoint: packed is new */
	int64_t units; /* the sum, in aggregate.h's units (a count for
			  clusters_100bn) */
	uint32_t reporting;
	struct agg_value old;
	uint64_t revision;
	uint8_t *packed; /* the last Aggregate published */
	size_t packed_len;
	size_t packed_cap;
	uint32_t up[3]; /* see entry_up() */
	char *topic; /* agg_topic() of key, made once */
	/* What the registry says of key (agg_meta_get()), as of the
	 * registry of generation meta_gen (0: not looked up yet). */
	struct agg_meta meta;
	uint64_t meta_gen;
};

struct aggs {
	struct entry *e; /* in the order first met */
	size_t n;
	size_t ecap;
	struct slot *slot;
	size_t cap; /* a power of two */
	size_t unflushed; /* entries to write at the checkpoint */
	size_t *touched; /* entries this batch changed */
	size_t ntouched;
	size_t touchedcap;
};

/* A checkpoint's frozen copies: the latest-value keys (the four codes,
 * NUL-separated) with their refs, the aggregates' keys with their packed
 * bytes, "applied" and "pub_seq". */
struct job {
	char *keys;
	size_t kused;
	size_t ksize;
	struct {
		size_t off;
		size_t len;
		struct store_ref ref;
	} * lat;
	size_t nlat;
	size_t latcap;
	struct {
		struct agg_key key;
		size_t off;
		size_t len;
	} * agg;
	size_t nagg;
	size_t aggcap;
	uint8_t *bytes;
	size_t bused;
	size_t bsize;
	uint64_t applied;
	uint64_t seq;
	int rc; /* store_write()'s */
	double took_s;
};

enum job_state {
	JOB_IDLE, /* none out */
	JOB_POSTED, /* the thread writes it */
	JOB_DONE, /* written (or failed): to collect */
};

/* Publications of the batch: topics and packed bytes copied, so that they
 * outlive a checkpoint that drops the tables. */
struct pubs {
	struct ledger_pub *p;
	size_t n;
	size_t cap;
	uint8_t *buf;
	size_t used;
	size_t size;
};

struct ledger {
	struct ledger_opts o;
	struct latest lt;
	struct aggs ag;
	struct pubs pub;
	uint64_t seq; /* the last publish seq given */
	uint64_t reg_gen; /* +1 whenever o.reg is set: entries' meta */
	uint64_t batch; /* the batch's first log position */
	uint64_t last_lsn; /* the last log position committed */
	uint64_t batch_last; /* the batch's last, once ended */
	bool tight; /* a checkpoint failed for room: batches wait */
	bool full; /* the tables' room is short at map_max: until restart */
	int64_t tight_ms; /* monotonic: when a checkpoint last tried */
	int64_t checkpoint_ms; /* monotonic: the last checkpoint */
	struct ledger_stats st;
	struct log_limit fail_limit; /* failed checkpoints' lines */
	/* The checkpoint thread (when threaded): state, quit under mu. */
	bool threaded;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	enum job_state state;
	bool quit;
	struct job job;
	bool job_out; /* posted, not yet collected (the main thread's) */
};

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- latest ---- */

/* The four codes as one key, each with its NUL; its length, or 0 when a
 * code does not fit (validation keeps them short, so never). */
static size_t
latest_key(char *buf, const char *district, const char *industry,
    const char *metric, const char *period)
{
	const char *parts[] = { district, industry, metric, period };
	size_t off = 0;

	for (size_t i = 0; i < 4; i++) {
		size_t n = strlen(parts[i]) + 1;

		if (off + n > LATEST_KEY_MAX)
			return 0;
		memcpy(buf + off, parts[i], n);
		off += n;
	}
	return off;
}

static size_t
latest_find(const struct latest *l, const struct latest_entry *e, size_t cap,
    const char *k, size_t len, uint32_t h)
{
	size_t i = h & (cap - 1);

	while (
	    e[i].keylen != 0 && !(e[i].hash == h && e[i].keylen == len &&
				    memcmp(l->keys + e[i].keyoff, k, len) == 0))
		i = (i + 1) & (cap - 1);
	return i;
}

static void
latest_grow(struct latest *l)
{
	size_t cap = l->cap * 2;
	struct latest_entry *e = xcalloc(cap, sizeof(*e));

	for (size_t i = 0; i < l->cap; i++)
		if (l->e[i].keylen != 0)
			e[latest_find(l, e, cap, l->keys + l->e[i].keyoff,
			    l->e[i].keylen, l->e[i].hash)] = l->e[i];
	free(l->e);
	l->e = e;
	l->cap = cap;
}

/* A key of the latest-value table and its slot, found once for both
 * latest_get() and latest_set() of an observation (nothing changes the
 * table between them). */
struct latest_pos {
	char k[LATEST_KEY_MAX];
	size_t len;
	uint32_t h;
	size_t i;
};

/* The key's latest revision: held, else the store's; *pos is set for
 * latest_set(). 0, STORE_NOTFOUND or -1. */
static int
latest_get(struct latest *l, struct store_txn *t, const struct store_obs *o,
    struct latest_pos *pos, struct store_ref *out)
{
	pos->len =
	    latest_key(pos->k, o->district, o->industry, o->metric, o->period);
	if (pos->len == 0)
		return -1;
	pos->h = hash_bytes(pos->k, pos->len);
	pos->i = latest_find(l, l->e, l->cap, pos->k, pos->len, pos->h);
	if (l->e[pos->i].keylen != 0) {
		*out = l->e[pos->i].ref;
		return 0;
	}
	return store_ref_get(
	    t, o->district, o->industry, o->metric, o->period, out);
}

/* Sets o (its key at *pos, from latest_get()) as its key's latest value. */
static int
latest_set(
    struct latest *l, const struct store_obs *o, const struct latest_pos *pos)
{
	const char *k = pos->k;
	size_t len = pos->len, i = pos->i;
	uint32_t h = pos->h;

	if (l->e[i].keylen == 0) {
		if ((l->n + 1) * 2 > l->cap) {
			latest_grow(l);
			i = latest_find(l, l->e, l->cap, k, len, h);
		}
		if (l->used + len > l->size) {
			l->size = l->size ? l->size * 2 : 64 * 1024;
			l->keys = xrealloc(l->keys, l->size);
		}
		memcpy(l->keys + l->used, k, len);
		l->e[i].hash = h;
		l->e[i].keylen = (uint32_t)len;
		l->e[i].keyoff = l->used;
		l->used += len;
		l->n++;
	}
	if (!l->e[i].dirty) {
		l->e[i].dirty = true;
		l->ndirty++;
	}
	l->e[i].ref.revision = o->revision;
	l->e[i].ref.value = o->value;
	l->e[i].ref.lsn = o->lsn;
	return 0;
}

static int
latest_flush(const struct latest *l, struct store_txn *t)
{
	int rc;

	for (size_t i = 0; i < l->cap && l->ndirty > 0; i++) {
		const char *d, *in, *m, *p;

		if (l->e[i].keylen == 0 || !l->e[i].dirty)
			continue;
		d = l->keys + l->e[i].keyoff;
		in = d + strlen(d) + 1;
		m = in + strlen(in) + 1;
		p = m + strlen(m) + 1;
		if ((rc = store_ref_put(t, d, in, m, p, &l->e[i].ref)) != 0)
			return rc;
	}
	return 0;
}

static void
latest_clear(struct latest *l)
{
	l->ndirty = 0;
	if (l->n == 0)
		return;
	/* The table keeps its size: checkpoint_entries bounds it, and the
	 * next interval under the same load needs it again. */
	memset(l->e, 0, l->cap * sizeof(*l->e));
	l->n = 0;
	l->used = 0;
}

static void
latest_clean(struct latest *l)
{
	for (size_t i = 0; i < l->cap && l->ndirty > 0; i++)
		if (l->e[i].dirty) {
			l->e[i].dirty = false;
			l->ndirty--;
		}
}

/* ---- aggregates ---- */

/* Copies s into a zero-filled field of n bytes (n - 1 at most). */
static void
field_set(char *field, size_t n, const char *s)
{
	memcpy(field, s, strnlen(s, n - 1));
}

static void
key_set(struct agg_key *k, const char *metric, const char *industry,
    const char *scope, const char *period)
{
	memset(k, 0, sizeof(*k));
	field_set(k->metric, sizeof(k->metric), metric);
	field_set(k->industry, sizeof(k->industry), industry);
	field_set(k->scope, sizeof(k->scope), scope);
	field_set(k->period, sizeof(k->period), period);
}

static size_t
aggs_find(const struct aggs *a, const struct slot *slot, size_t cap,
    const struct agg_key *k, uint32_t h)
{
	size_t i = h & (cap - 1);

	while (slot[i].idx != 0 &&
	       !(slot[i].hash == h &&
		   memcmp(&a->e[slot[i].idx - 1].key, k, sizeof(*k)) == 0))
		i = (i + 1) & (cap - 1);
	return i;
}

/* Doubles the index; the entries stay where they are. */
static void
aggs_grow(struct aggs *a)
{
	size_t cap = a->cap * 2;
	struct slot *slot = xcalloc(cap, sizeof(*slot));

	for (size_t i = 0; i < a->n; i++) {
		size_t at = aggs_find(a, slot, cap, &a->e[i].key, a->e[i].hash);

		slot[at].idx = (uint32_t)i + 1;
		slot[at].hash = a->e[i].hash;
	}
	free(a->slot);
	a->slot = slot;
	a->cap = cap;
}

static void
entry_free(struct entry *e)
{
	free(e->packed);
	free(e->topic);
}

static void
aggs_clear(struct aggs *a)
{
	for (size_t i = 0; i < a->n; i++)
		entry_free(&a->e[i]);
	if (a->n > 0)
		memset(a->slot, 0, a->cap * sizeof(*a->slot));
	a->n = 0;
	a->unflushed = 0;
	a->ntouched = 0;
}

static void
aggs_clean(struct aggs *a)
{
	for (size_t i = 0; i < a->n && a->unflushed > 0; i++)
		if (a->e[i].unflushed) {
			a->e[i].unflushed = false;
			a->unflushed--;
		}
}

/* Forgets which entries this batch changed. */
static void
aggs_untouch(struct aggs *a)
{
	for (size_t i = 0; i < a->ntouched; i++)
		a->e[a->touched[i]].dirty = false;
	a->ntouched = 0;
}

static void
entry_touch(struct aggs *a, struct entry *e)
{
	if (e->dirty)
		return;
	e->dirty = true;
	if (a->ntouched == a->touchedcap) {
		a->touchedcap = a->touchedcap ? a->touchedcap * 2 : 256;
		a->touched =
		    xrealloc(a->touched, a->touchedcap * sizeof(*a->touched));
	}
	a->touched[a->ntouched++] = (size_t)(e - a->e);
}

/* The content, revision and districts_reporting of a packed Aggregate
 * into e (agg_decode()). -1 when the bytes do not parse. */
static int
aggregate_decode(const uint8_t *p, size_t len, struct entry *e)
{
	int rc = agg_decode(p, len, &e->old, &e->revision);

	e->reporting = e->old.districts_reporting;
	return rc;
}

/*
 * The entry for k, read from the store the first time it is needed since
 * the table was dropped. The pointer is valid until the next call. Sets
 * *rc to 0, or to STORE_FULL or -1 (and returns NULL) when the store
 * fails.
 */
static struct entry *
entry_get(struct aggs *a, struct store_txn *t, const struct agg_key *k, int *rc)
{
	struct entry *e;
	char topic[IND_TOPIC_MAX + 1];
	const void *buf;
	size_t len, i;
	uint32_t h = hash_bytes(k, sizeof(*k));

	*rc = 0;
	i = aggs_find(a, a->slot, a->cap, k, h);
	if (a->slot[i].idx != 0)
		return &a->e[a->slot[i].idx - 1];
	if ((a->n + 1) * 2 > a->cap) {
		aggs_grow(a);
		i = aggs_find(a, a->slot, a->cap, k, h);
	}
	if (a->n == a->ecap) {
		a->ecap = a->ecap ? a->ecap * 2 : 1024;
		a->e = xrealloc(a->e, a->ecap * sizeof(*a->e));
	}
	a->slot[i].idx = (uint32_t)a->n + 1;
	a->slot[i].hash = h;
	e = &a->e[a->n];
	memset(e, 0, sizeof(*e));
	e->hash = h;
	e->key = *k;
	a->n++;
	agg_topic(k, topic, sizeof(topic));
	e->topic = xstrdup(topic);
	*rc = store_agg_get(t, topic, &buf, &len);
	if (*rc == STORE_NOTFOUND) {
		*rc = 0;
		return e;
	}
	if (*rc != 0)
		return NULL;
	if (aggregate_decode(buf, len, e) == -1) {
		e->reporting = 0;
		e->revision = 0;
		log_error("ledger: stored aggregate %s does not decode; it is "
			  "rebuilt from this batch on",
		    topic);
		return e;
	}
	e->stored = true;
	e->units = strcmp(k->metric, AGG_CLUSTERS_METRIC) == 0
		       ? (int64_t)e->old.value
		       : agg_units(e->old.value);
	return e;
}

static struct entry *
entry_named(struct aggs *a, struct store_txn *t, const char *metric,
    const char *industry, const char *scope, const char *period, int *rc)
{
	struct agg_key k;

	key_set(&k, metric, industry, scope, period);
	return entry_get(a, t, &k, rc);
}

/* An aggregate exists once it is stored or the batch has created it. */
static bool
entry_exists(const struct entry *e)
{
	return e->stored || e->dirty;
}

/*
 * The entry the aggregates leaf's changes also go to, found once and
 * remembered in the leaf. leaf is an index: entry_get() may move the
 * entries.
 */
enum up { UP_DISTRICT_TOTAL, UP_CITY_INDUSTRY, UP_CITY_TOTAL };

static struct entry *
entry_up(struct aggs *a, struct store_txn *t, size_t leaf, enum up k, int *rc)
{
	struct agg_key key;
	struct entry *e;

	*rc = 0;
	if (a->e[leaf].up[k] != 0)
		return &a->e[a->e[leaf].up[k] - 1];
	key = a->e[leaf].key;
	e = entry_named(a, t, key.metric,
	    k == UP_CITY_INDUSTRY ? key.industry : "*",
	    k == UP_DISTRICT_TOTAL ? key.scope : "city", key.period, rc);
	if (e != NULL)
		a->e[leaf].up[k] = (uint32_t)(e - a->e) + 1;
	return e;
}

/*
 * Applies o's difference from prev (had_prev: the key had a value) to
 * every aggregate it belongs to, and counts a new district or key in
 * districts_reporting. A value re-sent unchanged changes nothing.
 */
static int
aggs_apply(struct aggs *a, struct store_txn *t, const struct store_obs *o,
    double prev, bool had_prev)
{
	int64_t delta = agg_units(o->value) - (had_prev ? agg_units(prev) : 0);
	struct entry *e;
	bool district_new;
	size_t leaf;
	int rc;

	if (had_prev && delta == 0)
		return 0;
	/* The district's value of the industry. */
	if ((e = entry_named(a, t, o->metric, o->industry, o->district,
		 o->period, &rc)) == NULL)
		return rc;
	e->units += delta;
	e->reporting = 1;
	entry_touch(a, e);
	leaf = (size_t)(e - a->e);
	/* The district's total over industries. */
	if ((e = entry_up(a, t, leaf, UP_DISTRICT_TOTAL, &rc)) == NULL)
		return rc;
	district_new = !entry_exists(e);
	e->units += delta;
	e->reporting = 1;
	entry_touch(a, e);
	/* The city's value of the industry: one more district when the key
	 * is new. */
	if ((e = entry_up(a, t, leaf, UP_CITY_INDUSTRY, &rc)) == NULL)
		return rc;
	e->units += delta;
	e->reporting += had_prev ? 0 : 1;
	entry_touch(a, e);
	/* The city's total: one more district when this is the district's
	 * first figure of the metric and period. */
	if ((e = entry_up(a, t, leaf, UP_CITY_TOTAL, &rc)) == NULL)
		return rc;
	e->units += delta;
	e->reporting += district_new ? 1 : 0;
	entry_touch(a, e);
	if (agg_is_clusters_source(&e->key)) {
		if ((e = entry_named(a, t, AGG_CLUSTERS_METRIC, "*", "city",
			 o->period, &rc)) == NULL)
			return rc;
		entry_touch(a, e);
	}
	return 0;
}

/* clusters_100bn of a year from the city's output_value per industry and
 * the districts behind the city total. */
static int
clusters_count(struct ledger *l, struct store_txn *t, const char *period,
    int64_t *count, uint32_t *reporting)
{
	const struct registry *reg = l->o.reg;
	struct entry *e;
	int rc;

	*count = 0;
	*reporting = 0;
	for (size_t i = 0; i < reg->nindustries; i++) {
		if ((e = entry_named(&l->ag, t, AGG_CLUSTERS_SOURCE,
			 reg->industries[i].code, "city", period, &rc)) == NULL)
			return rc;
		if (entry_exists(e) &&
		    agg_from_units(e->units) >= AGG_CLUSTERS_THRESHOLD)
			(*count)++;
	}
	if ((e = entry_named(&l->ag, t, AGG_CLUSTERS_SOURCE, "*", "city",
		 period, &rc)) == NULL)
		return rc;
	*reporting = e->reporting;
	return 0;
}

/* Queues a publication, copying topic and bytes. */
static void
pubs_add(struct pubs *p, const char *topic, const uint8_t *buf, size_t len)
{
	struct ledger_pub *pp;

	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->p = xrealloc(p->p, p->cap * sizeof(*p->p));
	}
	if (p->used + len > p->size) {
		while (p->used + len > p->size)
			p->size = p->size ? p->size * 2 : 16 * 1024;
		p->buf = xrealloc(p->buf, p->size);
	}
	pp = &p->p[p->n++];
	strlcpy_ok(pp->topic, topic, sizeof(pp->topic));
	memcpy(p->buf + p->used, buf, len);
	pp->buf = NULL; /* set by pubs_fix(): buf may still move */
	pp->len = len;
	p->used += len;
}

/* Points each publication at its bytes, once none are added. */
static void
pubs_fix(struct pubs *p)
{
	size_t off = 0;

	for (size_t i = 0; i < p->n; i++) {
		p->p[i].buf = p->buf + off;
		off += p->p[i].len;
	}
}

static void
pubs_reset(struct pubs *p)
{
	p->n = 0;
	p->used = 0;
}

/*
 * Recomputes the aggregate at index i (changed by the batch; for
 * clusters_100bn, units and reporting already recounted) and, when its
 * content changed, gives it revision + 1 and the next seq, packs it and
 * queues it.
 */
static void
update_one(struct ledger *l, size_t i, int64_t now)
{
	Indicator__Aggregate a = INDICATOR__AGGREGATE__INIT;
	struct entry *e = &l->ag.e[i];
	struct agg_value v;
	uint8_t buf[PBPACK_AGGREGATE_MAX];
	size_t len;

	e->dirty = false;
	if (e->meta_gen != l->reg_gen) {
		if (agg_meta_get(l->o.reg, &e->key, &e->meta) == -1) {
			log_error("ledger: %s is not in the registry; its "
				  "aggregate is not updated",
			    e->key.metric);
			return;
		}
		e->meta_gen = l->reg_gen;
	}
	agg_finish_meta(&e->meta, e->units, e->reporting, &v);
	if (e->stored && agg_value_equal(&v, &e->old))
		return; /* unchanged: nothing to say */
	a.metric = e->key.metric;
	a.industry = e->key.industry;
	a.scope = e->key.scope;
	a.period = e->key.period;
	a.value = v.value;
	a.unit = v.unit;
	a.districts_reporting = v.districts_reporting;
	a.districts_expected = v.districts_expected;
	a.target = v.target;
	a.target_year = v.target_year;
	a.progress = v.progress;
	a.revision = e->stored ? e->revision + 1 : 1;
	a.seq = ++l->seq;
	a.updated_at_ms = now;
	len = pbpack_aggregate(&a, buf);
	if (len > e->packed_cap) {
		e->packed = xrealloc(e->packed, len);
		e->packed_cap = len;
	}
	memcpy(e->packed, buf, len);
	e->packed_len = len;
	e->old = v;
	e->stored = true;
	e->revision = a.revision;
	if (!e->unflushed) {
		e->unflushed = true;
		l->ag.unflushed++;
	}
	pubs_add(&l->pub, e->topic, buf, len);
}

/* Gives each aggregate the batch changed its new content (sums first,
 * clusters_100bn after, from the sums) and queues the publications. */
static int
aggs_update(struct ledger *l, struct store_txn *t, int64_t now)
{
	struct aggs *ag = &l->ag;
	struct agg_key *clusters = NULL;
	size_t nclusters = 0;
	int rc = 0;

	/* entry_get() for clusters can move the table: those keys are set
	 * aside. */
	for (size_t i = 0; i < ag->ntouched; i++) {
		struct entry *e = &ag->e[ag->touched[i]];

		if (!e->dirty)
			continue;
		if (strcmp(e->key.metric, AGG_CLUSTERS_METRIC) == 0) {
			clusters = xrealloc(
			    clusters, (nclusters + 1) * sizeof(*clusters));
			clusters[nclusters++] = e->key;
			continue;
		}
		update_one(l, ag->touched[i], now);
	}
	for (size_t i = 0; i < nclusters; i++) {
		struct entry *e;
		int64_t count = 0;
		uint32_t reporting = 0;

		if ((rc = clusters_count(
			 l, t, clusters[i].period, &count, &reporting)) != 0)
			break;
		if ((e = entry_get(ag, t, &clusters[i], &rc)) == NULL)
			break;
		e->units = count;
		e->reporting = reporting;
		update_one(l, (size_t)(e - ag->e), now);
	}
	free(clusters);
	aggs_untouch(ag);
	pubs_fix(&l->pub);
	return rc;
}

static int
aggs_flush(const struct aggs *a, struct store_txn *t)
{
	char topic[IND_TOPIC_MAX + 1];
	int rc;

	for (size_t i = 0; i < a->n; i++) {
		const struct entry *e = &a->e[i];

		if (!e->unflushed)
			continue;
		agg_topic(&e->key, topic, sizeof(topic));
		if ((rc = store_agg_put(t, topic, e->packed, e->packed_len)) !=
		    0)
			return rc;
	}
	return 0;
}

/* ---- the registry ---- */

static uint64_t
fnv(uint64_t h, const void *p, size_t len)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3u;
	return h;
}

static uint64_t
fnv_str(uint64_t h, const char *s)
{
	return fnv(h, s, strlen(s) + 1);
}

/* A hash of what of the registry the aggregates depend on: districts,
 * industries (their order is the order of summation), metrics and their
 * units, targets. Never 0. */
static uint64_t
registry_hash(const struct registry *reg)
{
	uint64_t h = 0xcbf29ce484222325u;

	for (size_t i = 0; i < reg->ndistricts; i++)
		h = fnv_str(h, reg->districts[i].code);
	h = fnv(h, "|", 1);
	for (size_t i = 0; i < reg->nindustries; i++)
		h = fnv_str(h, reg->industries[i].code);
	h = fnv(h, "|", 1);
	for (size_t i = 0; i < reg->nmetrics; i++) {
		h = fnv_str(h, reg->metrics[i].code);
		h = fnv_str(h, reg->metrics[i].unit);
	}
	h = fnv(h, "|", 1);
	for (size_t i = 0; i < reg->ntargets; i++) {
		const struct reg_target *tg = &reg->targets[i];

		h = fnv_str(h, tg->metric);
		h = fnv_str(h, tg->industry);
		h = fnv_str(h, tg->scope);
		h = fnv(h, &tg->year, sizeof(tg->year));
		h = fnv(h, &tg->value, sizeof(tg->value));
	}
	return h ? h : 1;
}

/* ---- checkpoints ---- */

static size_t
held(const struct ledger *l)
{
	return l->lt.n + l->ag.n;
}

bool
ledger_dirty(const struct ledger *l)
{
	return l->lt.ndirty > 0 || l->ag.unflushed > 0;
}

/* Writes what is held, "applied" (the last log position committed) and
 * "pub_seq" in t. */
static int
checkpoint_write(struct ledger *l, struct store_txn *t)
{
	int rc;

	if ((rc = latest_flush(&l->lt, t)) != 0 ||
	    (rc = aggs_flush(&l->ag, t)) != 0 ||
	    (rc = store_meta_put(t, LEDGER_META_PUB_SEQ, l->seq)) != 0)
		return rc;
	return store_meta_put(t, STORE_META_APPLIED, l->last_lsn);
}

/* After a checkpoint of everything held committed (a reconciliation):
 * what is held is the store's. It stays as a cache while under
 * checkpoint_entries (the next interval under the same load reads the same
 * keys), else it goes, so that the limit bounds memory. */
static void
checkpointed(struct ledger *l)
{
	if (held(l) < l->o.checkpoint_entries) {
		latest_clean(&l->lt);
		aggs_clean(&l->ag);
	} else {
		latest_clear(&l->lt);
		aggs_clear(&l->ag);
	}
	l->checkpoint_ms = mono_ms();
}

/*
 * Past checkpoint_entries, after a checkpoint committed: drops what the
 * store now holds (the clean entries) and keeps what changed since (the
 * dirty ones), rebuilding both tables.
 */
static void
evict_clean(struct ledger *l)
{
	struct latest *lt = &l->lt;
	struct aggs *ag = &l->ag;
	size_t n = 0;

	if (!ledger_dirty(l)) {
		latest_clear(lt);
		aggs_clear(ag);
		return;
	}
	/* latest: the dirty entries, keys and all, into a new table. */
	{
		struct latest nl = { 0 };

		nl.cap = lt->cap;
		nl.e = xcalloc(nl.cap, sizeof(*nl.e));
		nl.size = lt->size;
		nl.keys = xmalloc(nl.size);
		for (size_t i = 0; i < lt->cap; i++) {
			struct latest_entry e = lt->e[i];

			if (e.keylen == 0 || !e.dirty)
				continue;
			memcpy(
			    nl.keys + nl.used, lt->keys + e.keyoff, e.keylen);
			e.keyoff = nl.used;
			nl.used += e.keylen;
			nl.e[latest_find(&nl, nl.e, nl.cap, nl.keys + e.keyoff,
			    e.keylen, e.hash)] = e;
			nl.n++;
			nl.ndirty++;
		}
		free(lt->e);
		free(lt->keys);
		*lt = nl;
	}
	/* aggs: the unflushed entries, moved down; the links up are
	 * found again when next needed. */
	for (size_t i = 0; i < ag->n; i++) {
		if (!ag->e[i].unflushed) {
			entry_free(&ag->e[i]);
			continue;
		}
		ag->e[n] = ag->e[i];
		memset(ag->e[n].up, 0, sizeof(ag->e[n].up));
		n++;
	}
	ag->n = n;
	memset(ag->slot, 0, ag->cap * sizeof(*ag->slot));
	for (size_t i = 0; i < n; i++) {
		size_t at = aggs_find(
		    ag, ag->slot, ag->cap, &ag->e[i].key, ag->e[i].hash);

		ag->slot[at].idx = (uint32_t)i + 1;
		ag->slot[at].hash = ag->e[i].hash;
	}
}

/* ---- the checkpoint job: frozen copies for the checkpoint thread ---- */

static void
job_reset(struct job *j)
{
	j->kused = 0;
	j->nlat = 0;
	j->nagg = 0;
	j->bused = 0;
	j->rc = 0;
	j->took_s = 0;
}

static void
job_free(struct job *j)
{
	free(j->keys);
	free(j->lat);
	free(j->agg);
	free(j->bytes);
	memset(j, 0, sizeof(*j));
}

/* Copies everything that changed since the last checkpoint into the job
 * and marks it clean: the job owns it until it is collected. */
static void
job_freeze(struct ledger *l, struct job *j)
{
	struct latest *lt = &l->lt;
	struct aggs *ag = &l->ag;

	job_reset(j);
	for (size_t i = 0; i < lt->cap && lt->ndirty > 0; i++) {
		struct latest_entry *e = &lt->e[i];

		if (e->keylen == 0 || !e->dirty)
			continue;
		if (j->kused + e->keylen > j->ksize) {
			while (j->kused + e->keylen > j->ksize)
				j->ksize = j->ksize ? j->ksize * 2 : 64 * 1024;
			j->keys = xrealloc(j->keys, j->ksize);
		}
		if (j->nlat == j->latcap) {
			j->latcap = j->latcap ? j->latcap * 2 : 1024;
			j->lat = xrealloc(j->lat, j->latcap * sizeof(*j->lat));
		}
		memcpy(j->keys + j->kused, lt->keys + e->keyoff, e->keylen);
		j->lat[j->nlat].off = j->kused;
		j->lat[j->nlat].len = e->keylen;
		j->lat[j->nlat].ref = e->ref;
		j->nlat++;
		j->kused += e->keylen;
		e->dirty = false;
		lt->ndirty--;
	}
	for (size_t i = 0; i < ag->n && ag->unflushed > 0; i++) {
		struct entry *e = &ag->e[i];

		if (!e->unflushed)
			continue;
		if (j->bused + e->packed_len > j->bsize) {
			while (j->bused + e->packed_len > j->bsize)
				j->bsize = j->bsize ? j->bsize * 2 : 64 * 1024;
			j->bytes = xrealloc(j->bytes, j->bsize);
		}
		if (j->nagg == j->aggcap) {
			j->aggcap = j->aggcap ? j->aggcap * 2 : 1024;
			j->agg = xrealloc(j->agg, j->aggcap * sizeof(*j->agg));
		}
		j->agg[j->nagg].key = e->key;
		j->agg[j->nagg].off = j->bused;
		j->agg[j->nagg].len = e->packed_len;
		memcpy(j->bytes + j->bused, e->packed, e->packed_len);
		j->bused += e->packed_len;
		j->nagg++;
		e->unflushed = false;
		ag->unflushed--;
	}
	j->applied = l->last_lsn;
	j->seq = l->seq;
}

/* The job's write, in a tables transaction: obs, agg, pub_seq, applied.
 * Touches nothing of the ledger's (the checkpoint thread runs it). */
static int
job_fn(struct store_txn *t, void *arg)
{
	const struct job *j = arg;
	char topic[IND_TOPIC_MAX + 1];
	int rc;

	for (size_t i = 0; i < j->nlat; i++) {
		const char *d = j->keys + j->lat[i].off, *in, *m, *p;

		in = d + strlen(d) + 1;
		m = in + strlen(in) + 1;
		p = m + strlen(m) + 1;
		if ((rc = store_ref_put(t, d, in, m, p, &j->lat[i].ref)) != 0)
			return rc;
	}
	for (size_t i = 0; i < j->nagg; i++) {
		agg_topic(&j->agg[i].key, topic, sizeof(topic));
		if ((rc = store_agg_put(t, topic, j->bytes + j->agg[i].off,
			 j->agg[i].len)) != 0)
			return rc;
	}
	if ((rc = store_meta_put(t, LEDGER_META_PUB_SEQ, j->seq)) != 0)
		return rc;
	return store_meta_put(t, STORE_META_APPLIED, j->applied);
}

static void
job_run(struct store *s, struct job *j)
{
	double t0 = mono_s();

	j->rc = store_write(s, STORE_TXN_TABLES, job_fn, NULL, j);
	j->took_s = mono_s() - t0;
}

/* A job that failed: its entries are dirty again (unless they changed
 * since, and are already). They are all still held: nothing is evicted
 * while a job is out. */
static void
job_undo(struct ledger *l, const struct job *j)
{
	for (size_t i = 0; i < j->nlat; i++) {
		const char *k = j->keys + j->lat[i].off;
		size_t len = j->lat[i].len,
		       at = latest_find(&l->lt, l->lt.e, l->lt.cap, k, len,
			   hash_bytes(k, len));
		struct latest_entry *e = &l->lt.e[at];

		if (e->keylen != 0 && !e->dirty) {
			e->dirty = true;
			l->lt.ndirty++;
		}
	}
	for (size_t i = 0; i < j->nagg; i++) {
		const struct agg_key *k = &j->agg[i].key;
		size_t at = aggs_find(&l->ag, l->ag.slot, l->ag.cap, k,
		    hash_bytes(k, sizeof(*k)));
		struct entry *e;

		if (l->ag.slot[at].idx == 0)
			continue;
		e = &l->ag.e[l->ag.slot[at].idx - 1];
		if (!e->unflushed) {
			e->unflushed = true;
			l->ag.unflushed++;
		}
	}
}

/* What a finished job means for the ledger. 0 or -1. */
static int
job_done(struct ledger *l, const struct job *j)
{
	if (j->rc != 0) {
		unsigned long suppressed;
		char more[64] = "";

		job_undo(l, j);
		/* Once a second at most: a full disk fails them all. */
		if (log_limit_pass(&l->fail_limit, 1, &suppressed)) {
			if (suppressed > 0)
				snprintf(more, sizeof(more),
				    " (%lu more since the last line)",
				    suppressed);
			log_error("ledger: checkpoint failed%s; the log keeps "
				  "every report and the next checkpoint tries "
				  "again%s",
			    j->rc == STORE_FULL ? " (tables full at "
						  "map_max_mb): until one "
						  "succeeds, reports are "
						  "refused"
						: "",
			    more);
		}
		if (j->rc == STORE_FULL && !l->tight)
			l->tight_ms = mono_ms();
		l->tight = j->rc == STORE_FULL;
		l->st.checkpoints_failed++;
		return -1;
	}
	l->tight = false;
	l->st.checkpoints++;
	l->st.checkpoint_sum_s += j->took_s;
	if (j->took_s > l->st.checkpoint_max_s)
		l->st.checkpoint_max_s = j->took_s;
	if (held(l) >= l->o.checkpoint_entries)
		evict_clean(l);
	return 0;
}

static void *
job_thread(void *arg)
{
	struct ledger *l = arg;

	pthread_mutex_lock(&l->mu);
	for (;;) {
		while (l->state != JOB_POSTED && !l->quit)
			pthread_cond_wait(&l->cv, &l->mu);
		if (l->quit)
			break;
		pthread_mutex_unlock(&l->mu);
		job_run(l->o.store, &l->job);
		pthread_mutex_lock(&l->mu);
		l->state = JOB_DONE;
		pthread_cond_broadcast(&l->cv);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/*
 * Takes in the job out, if it is done (or, with wait, once it is). 1 when
 * a job was collected (its outcome in *rc), 0 when none was out, -1 when
 * one is still running (without wait).
 */
static int
job_collect(struct ledger *l, bool wait, int *rc)
{
	enum job_state st;

	if (!l->threaded)
		return 0;
	pthread_mutex_lock(&l->mu);
	while (wait && l->state == JOB_POSTED)
		pthread_cond_wait(&l->cv, &l->mu);
	st = l->state;
	if (st == JOB_DONE)
		l->state = JOB_IDLE;
	pthread_mutex_unlock(&l->mu);
	if (st != JOB_POSTED)
		l->job_out = false;
	if (st == JOB_POSTED)
		return -1;
	if (st == JOB_IDLE)
		return 0;
	*rc = job_done(l, &l->job);
	return 1;
}

int
ledger_checkpoint(struct ledger *l)
{
	int rc = 0;

	/* The one out first: this one follows it. */
	if (job_collect(l, true, &rc) == 1 && rc != 0 && !ledger_dirty(l))
		return -1;
	l->checkpoint_ms = mono_ms();
	if (!ledger_dirty(l))
		return 0;
	job_freeze(l, &l->job);
	job_run(l->o.store, &l->job);
	return job_done(l, &l->job);
}

bool
ledger_checkpoint_start(struct ledger *l)
{
	int rc;

	if (!l->threaded)
		return ledger_checkpoint(l) == 0;
	if (job_collect(l, false, &rc) == -1)
		return false; /* one is out: the next waits for it */
	l->checkpoint_ms = mono_ms();
	if (!ledger_dirty(l))
		return false;
	job_freeze(l, &l->job);
	pthread_mutex_lock(&l->mu);
	l->state = JOB_POSTED;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	l->job_out = true;
	return true;
}

/* What a checkpoint may need per entry, generously: the entry, and the
 * copy of its page a write makes. */
#define CHECKPOINT_ENTRY_BYTES 512
/* Entries an observation can change: its latest value and five
 * aggregates. */
#define ENTRIES_PER_OBS 6

bool
ledger_full(struct ledger *l, size_t nobs)
{
	uint64_t need;
	int64_t now;

	if (l->tight) {
		now = mono_ms();
		if (now - l->tight_ms < TIGHT_RETRY_MS)
			return true;
		l->tight_ms = now;
		if (ledger_checkpoint(l) != 0)
			return true;
	}
	/* Near the tables' map_max: what is held and what nobs more would
	 * add must fit, or the batch could be acknowledged and never
	 * applied. Held changes are written first (the batch waits: this
	 * is only ever near a full store). */
	need = 2 * CHECKPOINT_ENTRY_BYTES *
	       ((uint64_t)l->lt.ndirty + l->ag.unflushed +
		   (uint64_t)nobs * ENTRIES_PER_OBS);
	if (l->full || store_tables_room(l->o.store) >= need)
		return l->full;
	if (ledger_dirty(l) && ledger_checkpoint(l) != 0)
		return true;
	need = 2 * CHECKPOINT_ENTRY_BYTES * (uint64_t)nobs * ENTRIES_PER_OBS;
	/* At map_max for good: every report is refused from now on, as
	 * for a full log, until the operator raises it (a restart). */
	if (store_tables_room(l->o.store) < need) {
		log_error("ledger: the tables are full at map_max_mb");
		l->full = true;
	}
	return l->full;
}

bool
ledger_checkpoint_due(struct ledger *l, bool idle)
{
	int64_t now;
	int rc;

	/* A job done is taken in here, on the main loop's turn. */
	if (job_collect(l, false, &rc) == -1)
		return false;
	if (!ledger_dirty(l))
		return false;
	if (held(l) >= l->o.checkpoint_entries)
		return true;
	/* idle: the caller waited ledger_wait_ms() for input in vain. */
	if (idle && l->o.checkpoint_idle_ms > 0)
		return true;
	now = mono_ms();
	return now - l->checkpoint_ms >= (int64_t)l->o.checkpoint_ms;
}

int
ledger_wait_ms(const struct ledger *l, int max_ms)
{
	int wait = max_ms;

	if (l->o.checkpoint_idle_ms > 0 && ledger_dirty(l) &&
	    (int64_t)l->o.checkpoint_idle_ms < wait)
		wait = (int)l->o.checkpoint_idle_ms;
	/* A job out: back soon to take it in. */
	if (l->job_out && wait > JOB_POLL_MS)
		wait = JOB_POLL_MS;
	return wait;
}

/* ---- batches ---- */

int
ledger_batch_begin(struct ledger *l, struct store_txn *t)
{
	aggs_untouch(&l->ag);
	pubs_reset(&l->pub);
	/* The batch's records are told apart by where the first one goes:
	 * a replay redoes each batch as one. */
	return store_log_next(t, &l->batch);
}

/* The key's latest revision as prev; had_prev false (prev zeroed) for a
 * new key. */
static int
latest_prev(struct ledger *l, struct store_txn *t, const struct store_obs *o,
    struct latest_pos *pos, struct store_ref *prev, bool *had_prev)
{
	int rc = latest_get(&l->lt, t, o, pos, prev);

	*had_prev = rc == 0;
	if (rc == STORE_NOTFOUND) {
		memset(prev, 0, sizeof(*prev));
		return 0;
	}
	return rc;
}

/* Takes o, logged at o->lsn, as its key's latest value: the one path for
 * live batches and replay. */
static int
take_latest(struct ledger *l, struct store_txn *t, const struct store_obs *o,
    const struct latest_pos *pos, const struct store_ref *prev, bool had_prev)
{
	if (latest_set(&l->lt, o, pos) == -1)
		return -1;
	return aggs_apply(&l->ag, t, o, prev->value, had_prev);
}

int
ledger_observe(struct ledger *l, struct store_txn *t, struct store_obs *o)
{
	struct latest_pos pos;
	struct store_ref prev;
	bool had_prev;
	int rc;

	if ((rc = latest_prev(l, t, o, &pos, &prev, &had_prev)) != 0)
		return rc;
	if (prev.revision == UINT32_MAX) {
		log_error("ledger: %s/%s/%s/%s: too many revisions",
		    o->district, o->industry, o->metric, o->period);
		return -1;
	}
	o->revision = prev.revision + 1;
	o->prev = prev.lsn;
	o->batch = l->batch;
	if ((rc = store_log_append(t, o)) != 0)
		return rc;
	return take_latest(l, t, o, &pos, &prev, had_prev);
}

int
ledger_batch_end(struct ledger *l, struct store_txn *t, int64_t now_ms,
    const struct ledger_pub **pubs, size_t *npubs)
{
	uint64_t next;
	int rc;

	if ((rc = aggs_update(l, t, now_ms)) != 0)
		return rc;
	if (l->pub.n > 0 &&
	    (rc = store_meta_put(t, LEDGER_META_PUB_SEQ_SENT, l->seq)) != 0)
		return rc;
	if ((rc = store_log_next(t, &next)) != 0)
		return rc;
	l->batch_last = next - 1;
	if (pubs != NULL)
		*pubs = l->pub.p;
	if (npubs != NULL)
		*npubs = l->pub.n;
	return 0;
}

int
ledger_batch_done(struct ledger *l, bool committed)
{
	if (committed) {
		l->last_lsn = l->batch_last;
		return 0;
	}
	/* Memory took the batch in: without its commit it is wrong. */
	return ledger_recover(l);
}

/* ---- replay ---- */

struct replay {
	struct ledger *l;
	struct store_txn *t;
	uint64_t batch; /* 0 before the first record */
	int64_t at_ms; /* its stored_at_ms: the aggregates' updated_at_ms */
	uint64_t last; /* the last position replayed */
	uint64_t records;
	uint64_t batches;
};

/* The batch in hand is complete: its aggregates, as the live batch had
 * them (publications dropped: they went out before the crash). */
static int
replay_batch_end(struct replay *r)
{
	int rc;

	if (r->batch == 0)
		return 0;
	if (r->l->o.tick != NULL)
		r->l->o.tick();
	rc = aggs_update(r->l, r->t, r->at_ms);
	pubs_reset(&r->l->pub);
	r->batches++;
	return rc;
}

static int
replay_one(const struct store_obs *o, void *arg)
{
	struct replay *r = arg;
	struct latest_pos pos;
	struct store_ref prev;
	bool had_prev;
	int rc;

	if (o->batch != r->batch) {
		if ((rc = replay_batch_end(r)) != 0)
			return rc;
		r->batch = o->batch;
		r->at_ms = o->stored_at_ms;
	}
	if ((rc = latest_prev(r->l, r->t, o, &pos, &prev, &had_prev)) != 0)
		return rc;
	if (prev.lsn != o->prev || prev.revision + 1 != o->revision) {
		log_error("ledger: log record %llu (%s/%s/%s/%s revision %u) "
			  "does not follow revision %u at %llu",
		    (unsigned long long)o->lsn, o->district, o->industry,
		    o->metric, o->period, o->revision, prev.revision,
		    (unsigned long long)prev.lsn);
		return -1;
	}
	r->last = o->lsn;
	r->records++;
	return take_latest(r->l, r->t, o, &pos, &prev, had_prev);
}

/* Never gives a seq below one already published. */
static int
seq_floor(struct ledger *l, struct store_txn *t)
{
	uint64_t sent;
	int rc;

	if ((rc = store_meta_get(t, LEDGER_META_PUB_SEQ_SENT, &sent)) != 0)
		return rc;
	if (sent > l->seq) {
		log_warn("ledger: replay reached seq %llu, below the %llu "
			 "already published; going on from %llu",
		    (unsigned long long)l->seq, (unsigned long long)sent,
		    (unsigned long long)sent);
		l->seq = sent;
	}
	return 0;
}

int
ledger_recover(struct ledger *l)
{
	struct replay r = { .l = l };
	uint64_t applied = 0;
	int rc = -1;

	/* A job out is let finish (whatever it wrote is consistent: the
	 * replay starts from its "applied" if it committed). */
	if (l->threaded) {
		pthread_mutex_lock(&l->mu);
		while (l->state == JOB_POSTED)
			pthread_cond_wait(&l->cv, &l->mu);
		l->state = JOB_IDLE;
		pthread_mutex_unlock(&l->mu);
		l->job_out = false;
	}
	/* A read transaction: the replay writes nothing, so it works on a
	 * full store too; the checkpoint after it may wait for room. */
	latest_clear(&l->lt);
	aggs_clear(&l->ag);
	pubs_reset(&l->pub);
	l->st.replays++;
	if (l->o.replaying != NULL)
		l->o.replaying(true);
	if ((r.t = store_txn_begin(l->o.store, false)) != NULL &&
	    (rc = store_meta_get(r.t, STORE_META_APPLIED, &applied)) == 0 &&
	    (rc = store_meta_get(r.t, LEDGER_META_PUB_SEQ, &l->seq)) == 0) {
		r.last = applied;
		l->last_lsn = applied;
		if ((rc = store_log_scan(r.t, applied + 1, replay_one, &r)) ==
			0 &&
		    (rc = replay_batch_end(&r)) == 0)
			rc = seq_floor(l, r.t);
	}
	store_txn_abort(&r.t);
	if (l->o.replaying != NULL)
		l->o.replaying(false);
	if (rc == 0)
		l->last_lsn = r.last;
	if (rc != 0) {
		log_error("ledger: cannot replay the log from position %llu",
		    (unsigned long long)applied + 1);
		latest_clear(&l->lt);
		aggs_clear(&l->ag);
		return -1;
	}
	if (r.records > 0)
		log_info("ledger: replayed %llu logged observations in %llu "
			 "batches, log positions %llu to %llu",
		    (unsigned long long)r.records,
		    (unsigned long long)r.batches,
		    (unsigned long long)applied + 1,
		    (unsigned long long)r.last);
	ledger_checkpoint(l);
	return 0;
}

/* ---- the registry's effect: recompute everything ---- */

struct recon {
	struct ledger *l;
	struct store_txn *t;
	int64_t now;
	uint64_t seq0; /* l->seq before: restored by the undo */
	struct agg_key *keys; /* every aggregate an observation leads to */
	size_t nkeys;
	size_t cap;
	struct agg_key *gone; /* stored, led to by none */
	size_t ngone;
	size_t gonecap;
	size_t changed;
};

static int
recon_collect(const struct store_obs *o, void *arg)
{
	struct recon *c = arg;
	struct agg_key k[AGG_AFFECTED_MAX];
	size_t n =
	    agg_affected(o->district, o->industry, o->metric, o->period, k);

	for (size_t i = 0; i < n; i++) {
		if (c->nkeys == c->cap) {
			c->cap = c->cap ? c->cap * 2 : 1024;
			c->keys = xrealloc(c->keys, c->cap * sizeof(*c->keys));
		}
		key_set(&c->keys[c->nkeys++], k[i].metric, k[i].industry,
		    k[i].scope, k[i].period);
	}
	return 0;
}

static int
key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct agg_key));
}

static int
recon_lookup(void *arg, const char *district, const char *industry,
    const char *metric, const char *period, double *value)
{
	int rc =
	    store_obs_value(arg, district, industry, metric, period, value);

	if (rc == STORE_NOTFOUND)
		return 0;
	return rc == 0 ? 1 : -1;
}

static void
recon_gone(struct recon *c, const struct agg_key *k)
{
	if (c->ngone == c->gonecap) {
		c->gonecap = c->gonecap ? c->gonecap * 2 : 64;
		c->gone = xrealloc(c->gone, c->gonecap * sizeof(*c->gone));
	}
	c->gone[c->ngone++] = *k;
}

static int
recon_stored(const char *topic, const void *buf, size_t len, void *arg)
{
	struct recon *c = arg;
	struct agg_key parsed, k;

	(void)buf;
	(void)len;
	if (!agg_key_parse(topic, &parsed))
		return 0;
	key_set(
	    &k, parsed.metric, parsed.industry, parsed.scope, parsed.period);
	if (c->nkeys == 0 ||
	    bsearch(&k, c->keys, c->nkeys, sizeof(k), key_cmp) == NULL)
		recon_gone(c, &k);
	return 0;
}

static int
recon_fn(struct store_txn *t, void *arg)
{
	struct recon *c = arg;
	struct ledger *l = c->l;
	const struct registry *reg = l->o.reg;
	struct store_filter any = { 0 };
	char topic[IND_TOPIC_MAX + 1];
	size_t n = 0;
	int rc;

	/* From the tables as stored (a checkpoint came first). */
	latest_clear(&l->lt);
	aggs_clear(&l->ag);
	pubs_reset(&l->pub);
	c->nkeys = 0;
	c->ngone = 0;
	c->changed = 0;
	if ((rc = store_obs_scan(t, &any, recon_collect, c)) != 0)
		return rc;
	if (c->nkeys > 0) {
		qsort(c->keys, c->nkeys, sizeof(*c->keys), key_cmp);
		for (size_t i = 1; i < c->nkeys; i++)
			if (key_cmp(&c->keys[i], &c->keys[n]) != 0)
				c->keys[++n] = c->keys[i];
		c->nkeys = n + 1;
	}
	for (size_t i = 0; i < c->nkeys; i++) {
		const struct agg_key *k = &c->keys[i];
		struct agg_value v;
		struct entry *e;
		bool exists;

		if (strcmp(k->metric, AGG_CLUSTERS_METRIC) != 0 &&
		    registry_metric(reg, k->metric) == NULL)
			continue; /* a metric gone from the registry: kept */
		if ((rc = agg_compute(reg, k, recon_lookup, t, &v)) == -1)
			return -1;
		exists = rc == 1;
		if ((e = entry_get(&l->ag, t, k, &rc)) == NULL)
			return rc;
		if (exists) {
			e->units = strcmp(k->metric, AGG_CLUSTERS_METRIC) == 0
				       ? (int64_t)v.value
				       : agg_units(v.value);
			e->reporting = v.districts_reporting;
			entry_touch(&l->ag, e);
		} else if (e->stored) {
			recon_gone(c, k);
			e->stored = false;
			e->units = 0;
			e->reporting = 0;
		}
	}
	if ((rc = store_agg_scan(t, "", recon_stored, c)) != 0)
		return rc;
	for (size_t i = 0; i < c->ngone; i++) {
		agg_topic(&c->gone[i], topic, sizeof(topic));
		if ((rc = store_agg_del(t, topic)) != 0 && rc != STORE_NOTFOUND)
			return rc;
	}
	if ((rc = aggs_update(l, t, c->now)) != 0)
		return rc;
	c->changed = l->pub.n;
	if ((l->pub.n > 0 && (rc = store_meta_put(
				  t, LEDGER_META_PUB_SEQ_SENT, l->seq)) != 0) ||
	    (rc = checkpoint_write(l, t)) != 0)
		return rc;
	return store_meta_put(t, LEDGER_META_REGISTRY, registry_hash(reg));
}

static void
recon_undo(void *arg)
{
	struct recon *c = arg;

	latest_clear(&c->l->lt);
	aggs_clear(&c->l->ag);
	pubs_reset(&c->l->pub);
	c->l->seq = c->seq0;
}

static int
hash_fn(struct store_txn *t, void *arg)
{
	return store_meta_put(t, LEDGER_META_REGISTRY, *(uint64_t *)arg);
}

/*
 * Whether the stored aggregates were made with reg. A store that records
 * no registry (made before the ledger kept one, or by hand) is taken to be
 * made with it: reg's hash is recorded, and the next change is seen.
 */
static int
registry_same(struct ledger *l, const struct registry *reg, bool *same)
{
	struct store_txn *t;
	uint64_t h = 0, want = registry_hash(reg);
	int rc;

	if ((t = store_txn_begin(l->o.store, false)) == NULL)
		return -1;
	rc = store_meta_get(t, LEDGER_META_REGISTRY, &h);
	store_txn_abort(&t);
	*same = h == want || h == 0;
	if (rc == 0 && h == 0)
		rc = store_write(
		    l->o.store, STORE_TXN_TABLES, hash_fn, NULL, &want);
	return rc;
}

int
ledger_registry_set(struct ledger *l, const struct registry *reg,
    int64_t now_ms, const struct ledger_pub **pubs, size_t *npubs)
{
	struct recon c = { .l = l, .now = now_ms };
	bool same;
	int rc;

	if (pubs != NULL)
		*pubs = NULL;
	if (npubs != NULL)
		*npubs = 0;
	/* What memory holds was made with the old registry: stored first. */
	if (ledger_checkpoint(l) == -1) {
		l->o.reg = reg;
		l->reg_gen++;
		return -1;
	}
	l->o.reg = reg;
	l->reg_gen++;
	if (registry_same(l, reg, &same) != 0)
		return -1;
	if (same)
		return 0;
	c.seq0 = l->seq;
	pubs_reset(&l->pub);
	rc = store_write(l->o.store, STORE_TXN_BOTH, recon_fn, recon_undo, &c);
	free(c.keys);
	free(c.gone);
	if (rc != 0) {
		log_error("ledger: the aggregates could not be recomputed for "
			  "the new registry; the next reload or start tries "
			  "again");
		return -1;
	}
	checkpointed(l);
	l->st.reconciled++;
	log_info("ledger: registry changed: %zu aggregates recomputed, %zu "
		 "republished, %zu removed",
	    c.nkeys, c.changed, c.ngone);
	if (pubs != NULL)
		*pubs = l->pub.p;
	if (npubs != NULL)
		*npubs = l->pub.n;
	return 0;
}

/* ---- open, close ---- */

struct ledger *
ledger_open(const struct ledger_opts *o)
{
	struct ledger *l = xcalloc(1, sizeof(*l));

	l->o = *o;
	l->reg_gen = 1;
	l->lt.cap = 1024;
	l->lt.e = xcalloc(l->lt.cap, sizeof(*l->lt.e));
	l->ag.cap = 1024;
	l->ag.slot = xcalloc(l->ag.cap, sizeof(*l->ag.slot));
	l->checkpoint_ms = mono_ms();
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	if (o->threaded && pthread_create(&l->thread, NULL, job_thread, l) == 0)
		l->threaded = true;
	else if (o->threaded)
		log_warn("ledger: no checkpoint thread; checkpoints run in the "
			 "ingest thread");
	if (ledger_recover(l) == -1 ||
	    ledger_registry_set(l, o->reg, wall_ms(), NULL, NULL) == -1) {
		ledger_close(&l);
		return NULL;
	}
	/* Nothing was published at open: the recomputed aggregates are in
	 * the store for the snapshot. */
	pubs_reset(&l->pub);
	return l;
}

void
ledger_close(struct ledger **lp)
{
	struct ledger *l;

	if (lp == NULL || (l = *lp) == NULL)
		return;
	/* A job out finishes (the store stays open until after). */
	if (l->threaded) {
		pthread_mutex_lock(&l->mu);
		while (l->state == JOB_POSTED)
			pthread_cond_wait(&l->cv, &l->mu);
		l->quit = true;
		pthread_cond_broadcast(&l->cv);
		pthread_mutex_unlock(&l->mu);
		pthread_join(l->thread, NULL);
	}
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	job_free(&l->job);
	free(l->lt.e);
	free(l->lt.keys);
	aggs_clear(&l->ag);
	free(l->ag.e);
	free(l->ag.slot);
	free(l->ag.touched);
	free(l->pub.p);
	free(l->pub.buf);
	free(l);
	*lp = NULL;
}

void
ledger_stats(const struct ledger *l, struct ledger_stats *out)
{
	*out = l->st;
	out->seq = l->seq;
	out->dirty = l->lt.ndirty + l->ag.unflushed;
	out->held = held(l);
}

int
ledger_stored_seq(struct store_txn *t, uint64_t *seq)
{
	return store_meta_get(t, LEDGER_META_PUB_SEQ, seq);
}
