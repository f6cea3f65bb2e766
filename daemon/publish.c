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

struct publisher {
	uint64_t dropped; /* publications lost at the high-water mark */
	struct log_limit refuse_limit; /* snapshots over answers_mb */
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

void
publisher_send(struct daemon *d, const struct ledger_pub *pubs, size_t n)
{
	struct publisher *p = d->pub;
	char sub[256];

	/* The subscriptions XPUB hands up: taken into account by ZeroMQ
	 * already, read here so that they do not queue. */
	while (zmq_recv(d->publish, sub, sizeof(sub), ZMQ_DONTWAIT) >= 0)
		;
	for (size_t i = 0; i < n; i++) {
		const struct ledger_pub *pp = &pubs[i];

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
