/*
 * Aggregates after each batch: recompute the keys the batch's observations
 * touched, store those whose content changed (revision + 1, the next global
 * publish seq) in the batch's own write transaction, and publish them once
 * the transaction has committed. Also the snapshot socket, for subscribers
 * that join late (the clone pattern).
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
#include "xmalloc.h"

#define PUB_SEQ "pub_seq"

/* One aggregate to publish: topic and packed Aggregate. */
struct pending_pub {
	char topic[IND_TOPIC_MAX + 1];
	uint8_t *buf;
	size_t len;
};

struct publisher {
	/* Open-addressing set of the aggregate keys the batch touched. */
	struct agg_key *keys;
	uint32_t *hashes; /* 0: empty slot */
	size_t nkeys;
	size_t cap; /* a power of two */
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

	p->cap = 256;
	p->keys = xcalloc(p->cap, sizeof(*p->keys));
	p->hashes = xcalloc(p->cap, sizeof(*p->hashes));
	return p;
}

static void
pubs_clear(struct publisher *p)
{
	for (size_t i = 0; i < p->npubs; i++)
		free(p->pubs[i].buf);
	p->npubs = 0;
}

void
publisher_destroy(struct publisher **pp)
{
	struct publisher *p;

	if (pp == NULL || (p = *pp) == NULL)
		return;
	pubs_clear(p);
	free(p->pubs);
	free(p->keys);
	free(p->hashes);
	free(p);
	*pp = NULL;
}

void
publisher_reset(struct publisher *p)
{
	if (p->nkeys > 0)
		memset(p->hashes, 0, p->cap * sizeof(*p->hashes));
	p->nkeys = 0;
	pubs_clear(p);
}

static uint32_t
key_hash(const struct agg_key *k)
{
	const char *parts[] = { k->metric, k->industry, k->scope, k->period };
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < 4; i++) {
		for (const char *s = parts[i]; *s; s++)
			h = (h ^ (unsigned char)*s) * 16777619u;
		h = (h ^ '/') * 16777619u;
	}
	return h ? h : 1;
}

static bool
key_equal(const struct agg_key *a, const struct agg_key *b)
{
	return strcmp(a->metric, b->metric) == 0 &&
	       strcmp(a->industry, b->industry) == 0 &&
	       strcmp(a->scope, b->scope) == 0 &&
	       strcmp(a->period, b->period) == 0;
}

static void
set_insert(struct agg_key *keys, uint32_t *hashes, size_t cap,
    const struct agg_key *k, uint32_t h, size_t *n)
{
	size_t i = h & (cap - 1);

	while (hashes[i] != 0) {
		if (hashes[i] == h && key_equal(&keys[i], k))
			return;
		i = (i + 1) & (cap - 1);
	}
	hashes[i] = h;
	keys[i] = *k;
	(*n)++;
}

static void
set_grow(struct publisher *p)
{
	size_t cap = p->cap * 2, n = 0;
	struct agg_key *keys = xcalloc(cap, sizeof(*keys));
	uint32_t *hashes = xcalloc(cap, sizeof(*hashes));

	for (size_t i = 0; i < p->cap; i++)
		if (p->hashes[i] != 0)
			set_insert(
			    keys, hashes, cap, &p->keys[i], p->hashes[i], &n);
	free(p->keys);
	free(p->hashes);
	p->keys = keys;
	p->hashes = hashes;
	p->cap = cap;
}

void
publisher_touch(struct publisher *p, const char *district, const char *industry,
    const char *metric, const char *period)
{
	struct agg_key k[AGG_AFFECTED_MAX];
	size_t n = agg_affected(district, industry, metric, period, k);

	for (size_t i = 0; i < n; i++) {
		if ((p->nkeys + 1) * 2 > p->cap)
			set_grow(p);
		set_insert(p->keys, p->hashes, p->cap, &k[i], key_hash(&k[i]),
		    &p->nkeys);
	}
}

struct lookup_ctx {
	struct store_txn *t;
};

static int
lookup(void *arg, const char *district, const char *industry,
    const char *metric, const char *period, double *value)
{
	struct lookup_ctx *ctx = arg;
	struct store_obs o;
	int rc;

	rc = store_obs_get(ctx->t, district, industry, metric, period, &o);
	if (rc == STORE_NOTFOUND)
		return 0;
	if (rc != 0)
		return -1;
	*value = o.value;
	return 1;
}

static void
value_from_msg(const Indicator__Aggregate *a, struct agg_value *v)
{
	memset(v, 0, sizeof(*v));
	v->value = a->value;
	strlcpy_ok(v->unit, a->unit, sizeof(v->unit));
	v->districts_reporting = a->districts_reporting;
	v->districts_expected = a->districts_expected;
	v->target = a->target;
	v->target_year = a->target_year;
	v->progress = a->progress;
}

/* Recomputes one touched key; stores and queues it when it changed. */
static int
update_one(struct daemon *d, struct store_txn *t, const struct agg_key *k,
    uint64_t *seq, int64_t now)
{
	struct publisher *p = d->pub;
	struct lookup_ctx ctx = { t };
	Indicator__Aggregate a = INDICATOR__AGGREGATE__INIT, *old = NULL;
	struct agg_value v, ov;
	struct pending_pub *pp;
	const void *buf;
	size_t len;
	uint64_t revision = 1;
	int rc;

	rc = agg_compute(&d->cfg.reg, k, lookup, &ctx, &v);
	if (rc <= 0)
		return rc; /* nothing behind it, or an unknown metric (-1) */
	pp = NULL;
	if (p->npubs == p->pubcap) {
		p->pubcap = p->pubcap ? p->pubcap * 2 : 64;
		p->pubs = xrealloc(p->pubs, p->pubcap * sizeof(*p->pubs));
	}
	pp = &p->pubs[p->npubs];
	agg_topic(k, pp->topic, sizeof(pp->topic));
	rc = store_agg_get(t, pp->topic, &buf, &len);
	if (rc == 0) {
		old = indicator__aggregate__unpack(NULL, len, buf);
		if (old != NULL) {
			value_from_msg(old, &ov);
			revision = old->revision + 1;
			indicator__aggregate__free_unpacked(old, NULL);
			if (agg_value_equal(&v, &ov))
				return 0; /* unchanged: nothing to say */
		}
	} else if (rc != STORE_NOTFOUND) {
		return rc;
	}
	a.metric = (char *)k->metric;
	a.industry = (char *)k->industry;
	a.scope = (char *)k->scope;
	a.period = (char *)k->period;
	a.value = v.value;
	a.unit = v.unit;
	a.districts_reporting = v.districts_reporting;
	a.districts_expected = v.districts_expected;
	a.target = v.target;
	a.target_year = v.target_year;
	a.progress = v.progress;
	a.revision = revision;
	a.seq = ++*seq;
	a.updated_at_ms = now;
	pp->len = indicator__aggregate__get_packed_size(&a);
	pp->buf = xmalloc(pp->len);
	indicator__aggregate__pack(&a, pp->buf);
	p->npubs++;
	return store_agg_put(t, pp->topic, pp->buf, pp->len);
}

int
publisher_update(struct daemon *d, struct store_txn *t, int64_t now)
{
	struct publisher *p = d->pub;
	uint64_t seq;
	int rc;

	if (p->nkeys == 0)
		return 0;
	if ((rc = store_meta_get(t, PUB_SEQ, &seq)) != 0)
		return rc;
	for (size_t i = 0; i < p->cap; i++) {
		if (p->hashes[i] == 0)
			continue;
		rc = update_one(d, t, &p->keys[i], &seq, now);
		if (rc == -1) {
			char topic[IND_TOPIC_MAX + 1];

			agg_topic(&p->keys[i], topic, sizeof(topic));
			log_error("publish: cannot compute %s", topic);
		}
		if (rc != 0)
			return rc;
	}
	return store_meta_put(t, PUB_SEQ, seq);
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
	pubs_clear(p);
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
		if (++frames == 1)
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
