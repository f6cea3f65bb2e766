/*
 * The publish side: the PUB socket, on which each batch's publications
 * (the ledger's, ledger.h) go out once the batch has committed, and the
 * snapshot socket, for subscribers that join late (the clone pattern): the
 * stored aggregates with the publish seq they are consistent with.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "indicator.pb-c.h"
#include "indicatord.h"
#include "ledger.h"
#include "pbwire.h"
#include "validate.h"
#include "xmalloc.h"

/* Subscription prefixes followed here, at most: past it every
 * publication goes to ZeroMQ, which matches them itself. */
#define SUBS_MAX 64

/*
 * The subscriptions the XPUB socket hands up (ZeroMQ passes each prefix
 * up once however many subscribers hold it, and its unsubscription when
 * the last of them leaves or disconnects), so that a publication nobody
 * subscribed to is not made into ZeroMQ messages at all: with no
 * subscriber that was a sixth of the ingest thread's instructions.
 * ZeroMQ still does the delivery; this only skips what it would drop.
 */
struct sub_prefix {
	char *prefix;
	size_t len;
	uint64_t count;
};

struct publisher {
	uint64_t dropped; /* publications lost at the high-water mark */
	uint64_t unheard; /* not sent: no subscription takes them */
	struct log_limit refuse_limit; /* snapshots over answers_mb */
	struct sub_prefix subs[SUBS_MAX];
	size_t nsubs;
	uint64_t untracked; /* subscriptions past SUBS_MAX: send all */
};

struct publisher *
publisher_new(void)
{
	return xcalloc(1, sizeof(struct publisher));
}

void
publisher_destroy(struct publisher **pp)
{
	if (pp == NULL || *pp == NULL)
		return;
	for (size_t i = 0; i < (*pp)->nsubs; i++)
		free((*pp)->subs[i].prefix);
	free(*pp);
	*pp = NULL;
}

/* Sends one publication, topic and body. 0, or -1 with errno. */
static int
publish_one(void *sock, const struct ledger_pub *pp, int flags)
{
	if (zmq_send(sock, pp->topic, strlen(pp->topic), ZMQ_SNDMORE | flags) ==
	    -1)
		return -1;
	/* The topic went: the body follows it to the same pipes. */
	return zmq_send(sock, pp->buf, pp->len, flags) == -1 ? -1 : 0;
}

/* One subscription (on) or unsubscription of prefix, len bytes. */
static void
subs_change(struct publisher *p, const char *prefix, size_t len, bool on)
{
	size_t i;

	for (i = 0; i < p->nsubs; i++)
		if (p->subs[i].len == len &&
		    memcmp(p->subs[i].prefix, prefix, len) == 0)
			break;
	if (i == p->nsubs) {
		if (!on) {
			/* One of those past SUBS_MAX, or never seen. */
			if (p->untracked > 0)
				p->untracked--;
			return;
		}
		if (p->nsubs == SUBS_MAX) {
			p->untracked++;
			return;
		}
		p->subs[i].prefix = xmalloc(len + 1);
		memcpy(p->subs[i].prefix, prefix, len);
		p->subs[i].prefix[len] = '\0';
		p->subs[i].len = len;
		p->subs[i].count = 0;
		p->nsubs++;
	}
	if (on) {
		p->subs[i].count++;
		return;
	}
	if (--p->subs[i].count > 0)
		return;
	free(p->subs[i].prefix);
	p->subs[i] = p->subs[--p->nsubs];
}

void
publisher_subscriptions(struct daemon *d)
{
	zmq_msg_t m;

	zmq_msg_init(&m);
	while (zmq_msg_recv(&m, d->publish, ZMQ_DONTWAIT) >= 0) {
		const char *b = zmq_msg_data(&m);
		size_t len = zmq_msg_size(&m);

		/* 1 then the prefix: subscribe; 0: unsubscribe; anything
		 * else is not a subscription. */
		if (len > 0 && (b[0] == 1 || b[0] == 0))
			subs_change(d->pub, b + 1, len - 1, b[0] == 1);
	}
	zmq_msg_close(&m);
}

/* True when a subscription takes topic (or they are too many to tell). */
static bool
subs_match(const struct publisher *p, const char *topic, size_t len)
{
	if (p->untracked > 0)
		return true;
	for (size_t i = 0; i < p->nsubs; i++)
		if (p->subs[i].len <= len &&
		    memcmp(p->subs[i].prefix, topic, p->subs[i].len) == 0)
			return true;
	return false;
}

void
publisher_send(struct daemon *d, const struct ledger_pub *pubs, size_t n)
{
	struct publisher *p = d->pub;

	publisher_subscriptions(d);
	for (size_t i = 0; i < n; i++) {
		const struct ledger_pub *pp = &pubs[i];

		if (!subs_match(p, pp->topic, strlen(pp->topic))) {
			p->unheard++;
			continue;
		}

		/* XPUB_NODROP: a subscriber's full queue refuses the
		 * publication (EAGAIN, sent to nobody); counted, it goes
		 * again to those with room, the full one being left out:
		 * ingest never waits for a slow subscriber, and the others
		 * lose nothing for it. */
		if (publish_one(d->publish, pp, ZMQ_DONTWAIT) == 0)
			continue;
		if (errno == EAGAIN) {
			int nodrop = 0;

			p->dropped++;
			zmq_setsockopt(d->publish, ZMQ_XPUB_NODROP, &nodrop,
			    sizeof(nodrop));
			(void)publish_one(d->publish, pp, ZMQ_DONTWAIT);
			nodrop = 1;
			zmq_setsockopt(d->publish, ZMQ_XPUB_NODROP, &nodrop,
			    sizeof(nodrop));
		} else {
			p->dropped++;
		}
	}
}

uint64_t
publisher_dropped(const struct publisher *p)
{
	return p->dropped;
}

uint64_t
publisher_unheard(const struct publisher *p)
{
	return p->unheard;
}

/* The Snapshot answer, packed as it is built: the stored aggregates are
 * packed already and go in as they are, so that an answer takes its own
 * size in memory and no more. */
struct snap_ctx {
	uint8_t *buf;
	size_t len;
	size_t cap;
	size_t n;
};

static void
snap_put(struct snap_ctx *c, const void *data, size_t len)
{
	if (c->cap - c->len < len) {
		while (c->cap - c->len < len)
			c->cap = c->cap ? c->cap * 2 : 4096;
		c->buf = xrealloc(c->buf, c->cap);
	}
	memcpy(c->buf + c->len, data, len);
	c->len += len;
}

static void
snap_put_varint(struct snap_ctx *c, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;

	while (v >= 0x80) {
		b[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	b[n++] = (uint8_t)v;
	snap_put(c, b, n);
}

static int
snap_collect(const char *topic, const void *buf, size_t len, void *arg)
{
	struct snap_ctx *c = arg;
	const uint8_t *p = buf, *end = p + len;
	struct pbwire_field f;
	int rc;

	/* A record that is not a message is left out, as before. */
	while ((rc = pbwire_next(&p, end, &f)) == 1)
		;
	if (rc == -1) {
		log_error(
		    "snapshot: stored aggregate %s does not decode", topic);
		return 0;
	}
	snap_put_varint(c, (2 << 3) | 2); /* Snapshot.aggregates */
	snap_put_varint(c, len);
	snap_put(c, buf, len);
	c->n++;
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
	Indicator__SnapshotRequest *req;
	struct snap_ctx c = { 0 };
	struct store_txn *t = NULL;
	unsigned char id[256];
	size_t idlen;
	uint64_t seq = 0;
	unsigned long suppressed;
	int rc;

	rc = snapshot_recv(d->snapshot, id, &idlen, &req);
	if (rc == -1)
		return 0;
	/* A subscriber subscribes before it asks (the clone pattern): take
	 * its subscription in before the seq the answer carries, so that
	 * nothing after that seq is skipped as unheard. */
	publisher_subscriptions(d);
	/* The queries of the additions (query.c) share the socket. */
	if (rc == 1 && query_wanted(req)) {
		query_serve(d, id, idlen, req);
		indicator__snapshot_request__free_unpacked(req, NULL);
		return 1;
	}
	/* Answers queued for peers at answers_mb: this request is not
	 * served (its client asks again), nor read from the store. */
	if (!budget_answers_room(d->cfg.answer_bytes))
		goto refused;
	/* The snapshot is read from the store: bring it up to date with
	 * everything published (a failure leaves an older, consistent one). */
	if (rc == 1)
		ledger_checkpoint(d->ledger);
	/* One read transaction: the aggregates and seq agree. */
	if (rc == 1 && (t = store_txn_begin(d->store, false)) != NULL) {
		if (ledger_stored_seq(t, &seq) != 0)
			seq = 0;
		if (seq != 0) {
			/* Snapshot.seq first, the aggregates after it. */
			snap_put_varint(&c, 1 << 3);
			snap_put_varint(&c, seq);
			if (store_agg_scan(t, req->prefix, snap_collect, &c) !=
			    0) {
				log_error("snapshot: cannot read the store");
				seq = 0;
			}
		}
		store_txn_abort(&t);
	}
	if (seq == 0) /* nothing published: an empty snapshot */
		c.len = 0;
	if (req != NULL)
		indicator__snapshot_request__free_unpacked(req, NULL);
	rc = budget_answer(d->snapshot, id, idlen, c.buf ? c.buf : xmalloc(1),
	    c.len, d->cfg.answer_bytes);
	if (rc == -1)
		log_debug("snapshot: answer not sent: %s", zmq_strerror(errno));
	if (rc != 1)
		return 1;
	goto counted;
refused:
	if (req != NULL)
		indicator__snapshot_request__free_unpacked(req, NULL);
counted:
	d->count.snapshots_refused++;
	if (log_limit_pass(&d->pub->refuse_limit, 1, &suppressed))
		log_warn("snapshot: answers queued for peers are at answers_mb "
			 "(%llu MiB): request not served (%lu more since the "
			 "last line)",
		    (unsigned long long)(d->cfg.answer_bytes >> 20),
		    suppressed);
	return 1;
}
