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
#include "validate.h"
#include "xmalloc.h"

struct publisher {
	uint64_t dropped; /* publications lost at the high-water mark */
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

void
publisher_send(struct daemon *d, const struct ledger_pub *pubs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* PUB drops at its high-water mark rather than block: ingest
		 * never waits for a slow subscriber. */
		if (zmq_send(d->publish, pubs[i].topic, strlen(pubs[i].topic),
			ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1 ||
		    zmq_send(d->publish, pubs[i].buf, pubs[i].len,
			ZMQ_DONTWAIT) == -1)
			d->pub->dropped++;
	}
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
		ledger_checkpoint(d->ledger);
	/* One read transaction: the aggregates and seq agree. */
	if (rc == 1 && (t = store_txn_begin(d->store, false)) != NULL) {
		if (ledger_stored_seq(t, &snap.seq) != 0 ||
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
