/*
 * Aggregates after each batch: apply the batch's observations to the
 * aggregates they belong to, by difference, and publish, once the batch's
 * transaction has committed, each one whose content changed (revision + 1,
 * the next global publish seq). The aggregates changed since the last
 * checkpoint stay in memory and are written to the store's agg database
 * at the checkpoint, once however often they changed in between; the log
 * holds what is needed to redo them after a crash. Also the snapshot
 * socket, for subscribers that join late (the clone pattern).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "aggregate.h"
#include "indicator.pb-c.h"
#include "indicatord.h"
#include "pbpack.h"
#include "pbwire.h"
#include "validate.h"
#include "xmalloc.h"

/* meta: the seq the agg database is consistent with (written at each
 * checkpoint), and the highest seq ever published (with each batch). */
#define PUB_SEQ "pub_seq"
#define PUB_SEQ_SENT "pub_seq_sent"

/* One aggregate to publish: its topic and the packed Aggregate, which the
 * entry owns. */
struct pending_pub {
	char topic[IND_TOPIC_MAX + 1];
	const uint8_t *buf;
	size_t len;
};

struct slot {
	uint32_t idx; /* 0: empty, else the entry's index + 1 */
	uint32_t hash;
};

/* One aggregate changed since the checkpoint: its state as published. */
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
	/* For a district's value of an industry: the entries its changes
	 * also go to (its district total, the city's value of its industry,
	 * the city total), as index + 1 once looked up; 0 before. */
	uint32_t up[3];
};

struct publisher {
	/* The aggregates read or changed since the checkpoint, in the order
	 * first met, and an open-addressing index of them (0: an empty
	 * slot, else the entry's index + 1; with its hash, so that a probe
	 * reads an entry only when the hash matches). */
	struct entry *e;
	size_t n;
	size_t ecap;
	struct slot *slot;
	size_t cap; /* a power of two */
	size_t unflushed; /* entries to write at the checkpoint */
	/* Entries this batch changed. */
	size_t *touched;
	size_t ntouched;
	size_t touchedcap;
	uint64_t seq; /* the last publish seq given */
	/* Aggregates to publish after the commit, in seq order. */
	struct pending_pub *pubs;
	size_t npubs;
	size_t pubcap;
	uint64_t dropped; /* publications lost at the high-water mark */
};

struct publisher *
publisher_new(void)
{
	struct publisher *p = xcalloc(1, sizeof(*p));

	p->cap = 1024;
	p->slot = xcalloc(p->cap, sizeof(*p->slot));
	return p;
}

void
publisher_checkpointed(struct publisher *p, bool keep)
{
	if (!keep) {
		publisher_clear(p);
		return;
	}
	for (size_t i = 0; i < p->n && p->unflushed > 0; i++)
		if (p->e[i].unflushed) {
			p->e[i].unflushed = false;
			p->unflushed--;
		}
}

void
publisher_clear(struct publisher *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->e[i].packed);
	if (p->n > 0)
		memset(p->slot, 0, p->cap * sizeof(*p->slot));
	p->n = 0;
	p->unflushed = 0;
	p->ntouched = 0;
	p->npubs = 0;
}

void
publisher_destroy(struct publisher **pp)
{
	struct publisher *p;

	if (pp == NULL || (p = *pp) == NULL)
		return;
	publisher_clear(p);
	free(p->pubs);
	free(p->touched);
	free(p->slot);
	free(p->e);
	free(p);
	*pp = NULL;
}

void
publisher_reset(struct publisher *p)
{
	for (size_t i = 0; i < p->ntouched; i++)
		p->e[p->touched[i]].dirty = false;
	p->ntouched = 0;
	p->npubs = 0;
}

size_t
publisher_pending(const struct publisher *p)
{
	return p->unflushed;
}

size_t
publisher_entries(const struct publisher *p)
{
	return p->n;
}

/*
 * Keys in the table are zero-filled past each code (key_set()), so a key
 * is its bytes: hashed a word at a time and compared with one memcmp()
 * rather than four strcmp() calls, which were a tenth of the daemon's
 * time.
 */
static uint32_t
key_hash(const struct agg_key *k)
{
	const unsigned char *b = (const unsigned char *)k;
	uint64_t h = 0x9e3779b97f4a7c15u, w;
	size_t i;

	for (i = 0; i + 8 <= sizeof(*k); i += 8) {
		memcpy(&w, b + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdu;
		h ^= h >> 32;
	}
	for (; i < sizeof(*k); i++)
		h = (h ^ b[i]) * 0x100000001b3u;
	h ^= h >> 29;
	return (uint32_t)h;
}

static bool
key_equal(const struct agg_key *a, const struct agg_key *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/* Copies s into a zero-filled field of n bytes (n - 1 at most). */
static void
field_set(char *field, size_t n, const char *s)
{
	size_t len = strnlen(s, n - 1);

	memcpy(field, s, len);
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
slot_find(const struct publisher *p, const struct slot *slot, size_t cap,
    const struct agg_key *k, uint32_t h)
{
	size_t i = h & (cap - 1);

	while (slot[i].idx != 0 &&
	       !(slot[i].hash == h && key_equal(&p->e[slot[i].idx - 1].key, k)))
		i = (i + 1) & (cap - 1);
	return i;
}

/* Doubles the index; the entries stay where they are. */
static void
table_grow(struct publisher *p)
{
	size_t cap = p->cap * 2;
	struct slot *slot = xcalloc(cap, sizeof(*slot));

	for (size_t i = 0; i < p->n; i++) {
		size_t at = slot_find(p, slot, cap, &p->e[i].key, p->e[i].hash);

		slot[at].idx = (uint32_t)i + 1;
		slot[at].hash = p->e[i].hash;
	}
	free(p->slot);
	p->slot = slot;
	p->cap = cap;
}

/* Marks e changed by this batch. */
static void
entry_touch(struct publisher *p, struct entry *e)
{
	if (e->dirty)
		return;
	e->dirty = true;
	if (p->ntouched == p->touchedcap) {
		p->touchedcap = p->touchedcap ? p->touchedcap * 2 : 256;
		p->touched =
		    xrealloc(p->touched, p->touchedcap * sizeof(*p->touched));
	}
	p->touched[p->ntouched++] = (size_t)(e - p->e);
}

/*
 * The content, revision and districts_reporting of a packed Aggregate into
 * e, read field by field (pbwire.h): a batch reads every aggregate it
 * touches, and protobuf_c_message_unpack() would allocate each one's
 * strings. -1 when the bytes do not parse.
 */
static int
aggregate_decode(const uint8_t *p, size_t len, struct entry *e)
{
	const uint8_t *end = p + len;
	struct agg_value *v = &e->old;
	struct pbwire_field f;
	int rc;

	memset(v, 0, sizeof(*v));
	e->revision = 0;
	while ((rc = pbwire_next(&p, end, &f)) == 1) {
		switch (f.number) {
		case 5:
			v->value = f.type == 1 ? pbwire_double(&f) : 0;
			break;
		case 6:
			if (f.type == 2 && f.len < sizeof(v->unit)) {
				memcpy(v->unit, f.data, f.len);
				v->unit[f.len] = '\0';
			}
			break;
		case 7:
			v->districts_reporting = (uint32_t)f.u;
			break;
		case 8:
			v->districts_expected = (uint32_t)f.u;
			break;
		case 9:
			v->target = f.type == 1 ? pbwire_double(&f) : 0;
			break;
		case 10:
			v->target_year = (uint32_t)f.u;
			break;
		case 11:
			v->progress = f.type == 1 ? pbwire_double(&f) : 0;
			break;
		case 12:
			e->revision = f.u;
			break;
		}
	}
	e->reporting = v->districts_reporting;
	return rc;
}

/*
 * The batch's entry for key, read from the store the first time the batch
 * needs it. The pointer is valid until the next call. Sets *rc to 0, or to
 * STORE_FULL or -1 (and returns NULL) when the store fails.
 */
static struct entry *
entry_get(struct publisher *p, struct store_txn *t, const char *metric,
    const char *industry, const char *scope, const char *period, int *rc)
{
	struct agg_key k;
	struct entry *e;
	char topic[IND_TOPIC_MAX + 1];
	const void *buf;
	size_t len, i;
	uint32_t h;

	key_set(&k, metric, industry, scope, period);
	h = key_hash(&k);
	*rc = 0;
	i = slot_find(p, p->slot, p->cap, &k, h);
	if (p->slot[i].idx != 0)
		return &p->e[p->slot[i].idx - 1];
	if ((p->n + 1) * 2 > p->cap) {
		table_grow(p);
		i = slot_find(p, p->slot, p->cap, &k, h);
	}
	if (p->n == p->ecap) {
		p->ecap = p->ecap ? p->ecap * 2 : 1024;
		p->e = xrealloc(p->e, p->ecap * sizeof(*p->e));
	}
	p->slot[i].idx = (uint32_t)p->n + 1;
	p->slot[i].hash = h;
	e = &p->e[p->n];
	memset(e, 0, sizeof(*e));
	e->hash = h;
	e->key = k;
	p->n++;
	agg_topic(&k, topic, sizeof(topic));
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
		log_error("publish: stored aggregate %s does not decode; it is "
			  "rebuilt from this batch on",
		    topic);
		return e;
	}
	e->stored = true;
	e->units = strcmp(metric, AGG_CLUSTERS_METRIC) == 0
		       ? (int64_t)e->old.value
		       : agg_units(e->old.value);
	return e;
}

/* An aggregate exists once it is stored or the batch has created it. */
static bool
entry_exists(const struct entry *e)
{
	return e->stored || e->dirty;
}

/*
 * The entry k of the aggregates leaf's changes also go to (enum up), found
 * once and remembered in the leaf: each observation touches four
 * aggregates, and three of them are shared by many keys. leaf is an index:
 * entry_get() may move the entries.
 */
enum up { UP_DISTRICT_TOTAL, UP_CITY_INDUSTRY, UP_CITY_TOTAL };

static struct entry *
entry_up(
    struct publisher *p, struct store_txn *t, size_t leaf, enum up k, int *rc)
{
	struct agg_key key;
	struct entry *e;

	*rc = 0;
	if (p->e[leaf].up[k] != 0)
		return &p->e[p->e[leaf].up[k] - 1];
	key = p->e[leaf].key;
	e = entry_get(p, t, key.metric,
	    k == UP_CITY_INDUSTRY ? key.industry : "*",
	    k == UP_DISTRICT_TOTAL ? key.scope : "city", key.period, rc);
	if (e != NULL)
		p->e[leaf].up[k] = (uint32_t)(e - p->e) + 1;
	return e;
}

int
publisher_touch(struct daemon *d, struct store_txn *t,
    const struct store_obs *o, double prev, bool had_prev)
{
	struct publisher *p = d->pub;
	int64_t delta = agg_units(o->value) - (had_prev ? agg_units(prev) : 0);
	struct entry *e;
	bool district_new;
	size_t leaf;
	int rc;

	/* A value re-sent unchanged changes history, not the aggregates. */
	if (had_prev && delta == 0)
		return 0;
	/* The district's value of the industry. */
	if ((e = entry_get(p, t, o->metric, o->industry, o->district, o->period,
		 &rc)) == NULL)
		return rc;
	e->units += delta;
	e->reporting = 1;
	entry_touch(p, e);
	leaf = (size_t)(e - p->e);
	/* The district's total over industries. */
	if ((e = entry_up(p, t, leaf, UP_DISTRICT_TOTAL, &rc)) == NULL)
		return rc;
	district_new = !entry_exists(e);
	e->units += delta;
	e->reporting = 1;
	entry_touch(p, e);
	/* The city's value of the industry: one more district when the key
	 * is new. */
	if ((e = entry_up(p, t, leaf, UP_CITY_INDUSTRY, &rc)) == NULL)
		return rc;
	e->units += delta;
	e->reporting += had_prev ? 0 : 1;
	entry_touch(p, e);
	/* The city's total: one more district when this is the district's
	 * first figure of the metric and period. */
	if ((e = entry_up(p, t, leaf, UP_CITY_TOTAL, &rc)) == NULL)
		return rc;
	e->units += delta;
	e->reporting += district_new ? 1 : 0;
	entry_touch(p, e);
	if (agg_is_clusters_source(&e->key)) {
		if ((e = entry_get(p, t, AGG_CLUSTERS_METRIC, "*", "city",
			 o->period, &rc)) == NULL)
			return rc;
		entry_touch(p, e);
	}
	return 0;
}

/* clusters_100bn of a year from the city's output_value per industry (in
 * the batch or the store) and the districts behind the city total. */
static int
clusters_count(struct daemon *d, struct store_txn *t, const char *period,
    int64_t *count, uint32_t *reporting)
{
	const struct registry *reg = &d->cfg.reg;
	struct entry *e;
	int rc;

	*count = 0;
	*reporting = 0;
	for (size_t i = 0; i < reg->nindustries; i++) {
		if ((e = entry_get(d->pub, t, AGG_CLUSTERS_SOURCE,
			 reg->industries[i].code, "city", period, &rc)) == NULL)
			return rc;
		if (entry_exists(e) &&
		    agg_from_units(e->units) >= AGG_CLUSTERS_THRESHOLD)
			(*count)++;
	}
	if ((e = entry_get(d->pub, t, AGG_CLUSTERS_SOURCE, "*", "city", period,
		 &rc)) == NULL)
		return rc;
	*reporting = e->reporting;
	return 0;
}

/*
 * Recomputes the aggregate in slot (changed by the batch; for
 * clusters_100bn, units and reporting already recounted) and, when its
 * content changed, gives it revision + 1 and the next seq, packs it and
 * queues it for publication.
 */
static void
update_one(struct daemon *d, size_t slot, int64_t now)
{
	struct publisher *p = d->pub;
	Indicator__Aggregate a = INDICATOR__AGGREGATE__INIT;
	struct entry *e = &p->e[slot];
	struct agg_value v;
	struct pending_pub *pp;
	uint8_t buf[PBPACK_AGGREGATE_MAX];
	size_t len;

	e->dirty = false;
	if (agg_finish(&d->cfg.reg, &e->key, e->units, e->reporting, &v) ==
	    -1) {
		log_error("publish: %s is not in the registry; its aggregate "
			  "is not updated",
		    e->key.metric);
		return;
	}
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
	a.seq = ++p->seq;
	a.updated_at_ms = now;
	/* Packed by hand (pbpack.h), then kept in a buffer that only
	 * grows. */
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
		p->unflushed++;
	}
	if (p->npubs == p->pubcap) {
		p->pubcap = p->pubcap ? p->pubcap * 2 : 64;
		p->pubs = xrealloc(p->pubs, p->pubcap * sizeof(*p->pubs));
	}
	pp = &p->pubs[p->npubs++];
	agg_topic(&e->key, pp->topic, sizeof(pp->topic));
	pp->buf = e->packed;
	pp->len = e->packed_len;
}

int
publisher_update(struct daemon *d, struct store_txn *t, int64_t now)
{
	struct publisher *p = d->pub;
	struct agg_key *clusters = NULL;
	size_t nclusters = 0;
	int rc = 0;

	/* Sums first; clusters_100bn after, from the sums. entry_get() for
	 * clusters can move the table, so those keys are set aside. */
	for (size_t i = 0; i < p->ntouched; i++) {
		struct entry *e = &p->e[p->touched[i]];

		if (!e->dirty)
			continue;
		if (strcmp(e->key.metric, AGG_CLUSTERS_METRIC) == 0) {
			clusters = xrealloc(
			    clusters, (nclusters + 1) * sizeof(*clusters));
			clusters[nclusters++] = e->key;
			continue;
		}
		update_one(d, p->touched[i], now);
	}
	for (size_t i = 0; i < nclusters; i++) {
		struct entry *e;
		int64_t count = 0;
		uint32_t reporting = 0;

		if ((rc = clusters_count(
			 d, t, clusters[i].period, &count, &reporting)) != 0)
			break;
		if ((e = entry_get(p, t, clusters[i].metric,
			 clusters[i].industry, clusters[i].scope,
			 clusters[i].period, &rc)) == NULL)
			break;
		e->units = count;
		e->reporting = reporting;
		update_one(d, (size_t)(e - p->e), now);
	}
	free(clusters);
	p->ntouched = 0;
	return rc;
}

int
publisher_save_seq(struct daemon *d, struct store_txn *t)
{
	if (d->pub->npubs == 0)
		return 0;
	return store_meta_put(t, PUB_SEQ_SENT, d->pub->seq);
}

int
publisher_load(struct daemon *d, struct store_txn *t)
{
	return store_meta_get(t, PUB_SEQ, &d->pub->seq);
}

int
publisher_seq_floor(struct daemon *d, struct store_txn *t)
{
	uint64_t sent;
	int rc;

	if ((rc = store_meta_get(t, PUB_SEQ_SENT, &sent)) != 0)
		return rc;
	if (sent > d->pub->seq) {
		log_warn("publish: replay reached seq %llu, below the %llu "
			 "already published; going on from %llu",
		    (unsigned long long)d->pub->seq, (unsigned long long)sent,
		    (unsigned long long)sent);
		d->pub->seq = sent;
	}
	return 0;
}

int
publisher_flush(struct daemon *d, struct store_txn *t)
{
	struct publisher *p = d->pub;
	char topic[IND_TOPIC_MAX + 1];
	int rc;

	for (size_t i = 0; i < p->n; i++) {
		struct entry *e = &p->e[i];

		if (!e->unflushed)
			continue;
		agg_topic(&e->key, topic, sizeof(topic));
		if ((rc = store_agg_put(t, topic, e->packed, e->packed_len)) !=
		    0)
			return rc;
	}
	return store_meta_put(t, PUB_SEQ, p->seq);
}

void
publisher_send(struct daemon *d)
{
	struct publisher *p = d->pub;

	for (size_t i = 0; i < p->npubs; i++) {
		struct pending_pub *pp = &p->pubs[i];

		/* PUB drops at its high-water mark rather than block: ingest
		 * never waits for a slow subscriber. */
		if (zmq_send(d->publish, pp->topic, strlen(pp->topic),
			ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1 ||
		    zmq_send(d->publish, pp->buf, pp->len, ZMQ_DONTWAIT) == -1)
			p->dropped++;
	}
	p->npubs = 0;
}

uint64_t
publisher_dropped(const struct publisher *p)
{
	return p->dropped;
}

struct snap_ctx {
	Indicator__Aggregate **aggs;
	size_t n;
	size_t cap;
};

static int
snap_collect(const char *topic, const void *buf, size_t len, void *arg)
{
	struct snap_ctx *c = arg;
	Indicator__Aggregate *a = indicator__aggregate__unpack(NULL, len, buf);

	if (a == NULL) {
		log_error(
		    "snapshot: stored aggregate %s does not decode", topic);
		return 0;
	}
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 256;
		c->aggs = xrealloc(c->aggs, c->cap * sizeof(*c->aggs));
	}
	c->aggs[c->n++] = a;
	return 0;
}

/* Reads one request: 1 and its prefix (decoded; caller frees) when it is
 * one frame that decodes, 0 when it is not (answered with an empty
 * snapshot), -1 when nothing was waiting. */
static int
snapshot_recv(void *sock, unsigned char *id, size_t *idlen,
    Indicator__SnapshotRequest **req)
{
	zmq_msg_t part;
	size_t frames = 0;
	int more;
	size_t moresz = sizeof(more);

	*req = NULL;
	zmq_msg_init(&part);
	if (zmq_msg_recv(&part, sock, ZMQ_DONTWAIT) == -1) {
		zmq_msg_close(&part);
		return -1;
	}
	*idlen = zmq_msg_size(&part) < 256 ? zmq_msg_size(&part) : 255;
	memcpy(id, zmq_msg_data(&part), *idlen);
	while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &moresz) == 0 && more) {
		if (zmq_msg_recv(&part, sock, 0) == -1)
			break;
		/* A string cut at a NUL (a prefix, a query's code) would
		 * ask for something else than was sent. */
		if (++frames == 1 &&
		    validate_wire_exact(
			&indicator__snapshot_request__descriptor,
			zmq_msg_data(&part), zmq_msg_size(&part)))
			*req = indicator__snapshot_request__unpack(
			    NULL, zmq_msg_size(&part), zmq_msg_data(&part));
	}
	zmq_msg_close(&part);
	if (frames != 1 && *req != NULL) {
		indicator__snapshot_request__free_unpacked(*req, NULL);
		*req = NULL;
	}
	return *req != NULL;
}

int
snapshot_serve(struct daemon *d)
{
	Indicator__Snapshot snap = INDICATOR__SNAPSHOT__INIT;
	Indicator__SnapshotRequest *req;
	struct snap_ctx c = { 0 };
	struct store_txn *t = NULL;
	unsigned char id[256];
	size_t idlen, len;
	uint8_t *buf;
	int rc;

	rc = snapshot_recv(d->snapshot, id, &idlen, &req);
	if (rc == -1)
		return 0;
	/* The queries of the additions (query.c) share the socket. */
	if (rc == 1 && query_wanted(req)) {
		query_serve(d, id, idlen, req);
		indicator__snapshot_request__free_unpacked(req, NULL);
		return 1;
	}
	/* The snapshot is read from the store: bring it up to date with
	 * everything published (a failure leaves an older, consistent one). */
	if (rc == 1)
		ingest_checkpoint(d);
	/* One read transaction: the aggregates and seq agree. */
	if (rc == 1 && (t = store_txn_begin(d->store, false)) != NULL) {
		if (store_meta_get(t, PUB_SEQ, &snap.seq) != 0 ||
		    store_agg_scan(t, req->prefix, snap_collect, &c) != 0) {
			log_error("snapshot: cannot read the store");
			snap.seq = 0;
			c.n = 0;
		}
		store_txn_abort(&t);
	}
	snap.aggregates = c.aggs;
	snap.n_aggregates = snap.seq ? c.n : 0;
	len = indicator__snapshot__get_packed_size(&snap);
	buf = xmalloc(len);
	indicator__snapshot__pack(&snap, buf);
	if (zmq_send(d->snapshot, id, idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) ==
		-1 ||
	    zmq_send(d->snapshot, buf, len, ZMQ_DONTWAIT) == -1)
		log_debug("snapshot: answer not sent: %s", zmq_strerror(errno));
	free(buf);
	for (size_t i = 0; i < c.n; i++)
		indicator__aggregate__free_unpacked(c.aggs[i], NULL);
	free(c.aggs);
	if (req != NULL)
		indicator__snapshot_request__free_unpacked(req, NULL);
	return 1;
}
