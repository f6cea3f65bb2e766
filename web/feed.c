/*
 * The daemon's feed, by the clone pattern (PROTOCOL.md, "Late joiners"):
 * subscribe to every topic, wait for the connection, take a snapshot,
 * then apply each update with a seq above it. A gap in seq means updates
 * were lost (the daemon's PUB drops at its high-water mark): take a new
 * snapshot. So does a connection that comes back after it went down (the
 * daemon restarted, or the network came back): what was published in
 * between never reached this SUB. While the daemon is away, the pages
 * show the last figures and say so.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "log.h"
#include "web.h"
#include "xmalloc.h"

#define MONITOR_EP "inproc://indicator-web-monitor"
#define SUB_RCVHWM 1000000 /* updates queued while a snapshot is taken */
#define SNAP_WAIT_MS 3000
#define RETRY_MS 1000 /* between snapshots while the daemon is away */
#define POLL_MS 500

struct feed {
	struct web *w;
	void *sub;
	void *mon; /* PAIR: the SUB socket's connection events */
	bool need_snapshot;
	bool was_down; /* the connection went down since the last snapshot */
	int64_t retry_at; /* monotonic ms of the next snapshot try */
	bool warned;
};

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
feed_curve_client(const struct web *w, void *sock)
{
	if (!w->curve)
		return;
	zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, w->keys.server, KEY_Z85_LEN);
	zmq_setsockopt(
	    sock, ZMQ_CURVE_PUBLICKEY, w->keys.public_key, KEY_Z85_LEN);
	zmq_setsockopt(
	    sock, ZMQ_CURVE_SECRETKEY, w->keys.secret_key, KEY_Z85_LEN);
}

/* One Snapshot of every aggregate, on a DEALER of its own (a late answer
 * to an earlier try cannot be taken for this one). NULL when none came in
 * SNAP_WAIT_MS. */
static Indicator__Snapshot *
snapshot_fetch(struct web *w)
{
	Indicator__SnapshotRequest req = INDICATOR__SNAPSHOT_REQUEST__INIT;
	Indicator__Snapshot *snap = NULL;
	uint8_t buf[8];
	size_t len;
	void *sock;
	int linger = 0;
	zmq_pollitem_t item;
	zmq_msg_t msg;
	int64_t deadline = mono_ms() + SNAP_WAIT_MS;

	req.prefix = (char *)"";
	len = indicator__snapshot_request__pack(&req, buf);
	if ((sock = zmq_socket(w->zctx, ZMQ_DEALER)) == NULL)
		return NULL;
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	feed_curve_client(w, sock);
	if (zmq_connect(sock, w->snapshot) == -1 ||
	    zmq_send(sock, buf, len, 0) != (int)len)
		goto sock_close;
	item.socket = sock;
	item.events = ZMQ_POLLIN;
	while (!web_quit && mono_ms() < deadline) {
		int rc = zmq_poll(&item, 1, (long)(deadline - mono_ms()));

		if (rc == -1 && errno != EINTR)
			goto sock_close;
		if (rc > 0)
			break;
	}
	if (!(item.revents & ZMQ_POLLIN))
		goto sock_close;
	zmq_msg_init(&msg);
	if (zmq_msg_recv(&msg, sock, 0) != -1 && !zmq_msg_more(&msg))
		snap = indicator__snapshot__unpack(
		    NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
	zmq_msg_close(&msg);
sock_close:
	zmq_close(sock);
	return snap;
}

static void
snapshot_take(struct feed *f)
{
	Indicator__Snapshot *snap = snapshot_fetch(f->w);

	if (snap == NULL) {
		if (!f->warned)
			log_warn("feed: no snapshot from %s: is "
				 "indicatord running? asking again every %d s",
			    f->w->snapshot, RETRY_MS / 1000);
		f->warned = true;
		f->retry_at = mono_ms() + RETRY_MS;
		return;
	}
	log_info("feed: snapshot of %zu aggregates at seq %" PRIu64,
	    snap->n_aggregates, snap->seq);
	state_snapshot(f->w->state, snap);
	indicator__snapshot__free_unpacked(snap, NULL);
	f->need_snapshot = false;
	f->was_down = false;
	f->warned = false;
}

/* Reads the monitor's events: a connection down, or up again. */
static void
monitor_drain(struct feed *f)
{
	zmq_msg_t msg;

	for (;;) {
		uint16_t event = 0;

		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, f->mon, ZMQ_DONTWAIT) == -1) {
			zmq_msg_close(&msg);
			return;
		}
		if (zmq_msg_size(&msg) >= 2)
			memcpy(&event, zmq_msg_data(&msg), 2);
		while (
		    zmq_msg_more(&msg) && zmq_msg_recv(&msg, f->mon, 0) != -1)
			continue;
		zmq_msg_close(&msg);
		if (event == ZMQ_EVENT_DISCONNECTED) {
			log_warn("feed: connection to %s lost; showing the "
				 "last figures",
			    f->w->publish);
			f->was_down = true;
			state_connected(f->w->state, false);
		} else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
			state_connected(f->w->state, true);
			/* Whatever was published while it was down is lost
			 * to this SUB: start again from a snapshot. */
			if (f->was_down)
				f->need_snapshot = true;
		}
	}
}

/* Applies one update; a gap in seq asks for a new snapshot. Takes a. */
static void
update_apply(struct feed *f, const char *topic, Indicator__Aggregate *a)
{
	struct state *s = f->w->state;
	uint64_t seq;

	state_lock(s);
	seq = s->seq;
	state_unlock(s);
	if (f->need_snapshot || a->seq <= seq) {
		indicator__aggregate__free_unpacked(a, NULL);
		return;
	}
	if (a->seq != seq + 1) {
		log_warn("feed: gap in seq (expected %" PRIu64 ", got %" PRIu64
			 "): taking a new snapshot",
		    seq + 1, a->seq);
		indicator__aggregate__free_unpacked(a, NULL);
		f->need_snapshot = true;
		return;
	}
	state_update(s, topic, a);
}

/* Every message waiting on the SUB socket. */
static void
sub_drain(struct feed *f)
{
	char topic[IND_TOPIC_MAX + 1];
	Indicator__Aggregate *a;
	zmq_msg_t msg;
	size_t frames;
	bool topic_ok;

	while (!web_quit) {
		frames = 0;
		topic_ok = false;
		a = NULL;
		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, f->sub, ZMQ_DONTWAIT) == -1) {
			zmq_msg_close(&msg);
			return;
		}
		do {
			if (++frames == 1 &&
			    zmq_msg_size(&msg) < sizeof(topic)) {
				memcpy(topic, zmq_msg_data(&msg),
				    zmq_msg_size(&msg));
				topic[zmq_msg_size(&msg)] = '\0';
				topic_ok = strlen(topic) == zmq_msg_size(&msg);
			} else if (frames == 2) {
				a = indicator__aggregate__unpack(NULL,
				    zmq_msg_size(&msg), zmq_msg_data(&msg));
			}
		} while (
		    zmq_msg_more(&msg) && zmq_msg_recv(&msg, f->sub, 0) != -1);
		zmq_msg_close(&msg);
		if (a == NULL || frames != 2 || !topic_ok) {
			if (a != NULL)
				indicator__aggregate__free_unpacked(a, NULL);
			continue;
		}
		update_apply(f, topic, a);
	}
}

/* The SUB socket, subscribed to everything, and its monitor. */
static int
sub_open(struct feed *f)
{
	struct web *w = f->w;
	int hwm = SUB_RCVHWM, linger = 0;

	if ((f->sub = zmq_socket(w->zctx, ZMQ_SUB)) == NULL)
		return -1;
	zmq_setsockopt(f->sub, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(f->sub, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	feed_curve_client(w, f->sub);
	if (zmq_setsockopt(f->sub, ZMQ_SUBSCRIBE, "", 0) == -1 ||
	    zmq_socket_monitor(f->sub, MONITOR_EP,
		ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED) == -1 ||
	    (f->mon = zmq_socket(w->zctx, ZMQ_PAIR)) == NULL ||
	    zmq_setsockopt(f->mon, ZMQ_LINGER, &linger, sizeof(linger)) == -1 ||
	    zmq_connect(f->mon, MONITOR_EP) == -1) {
		log_error("feed: SUB socket: %s", zmq_strerror(errno));
		return -1;
	}
	if (zmq_connect(f->sub, w->publish) == -1) {
		log_error("feed: cannot connect to %s: %s", w->publish,
		    zmq_strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Waits up to ms for the first handshake, so that the subscription has
 * reached the daemon before the first snapshot is asked for (an update
 * published in between would be lost unseen).
 */
static void
handshake_wait(struct feed *f, int ms)
{
	zmq_pollitem_t item = { f->mon, 0, ZMQ_POLLIN, 0 };
	int64_t deadline = mono_ms() + ms;
	struct state *s = f->w->state;
	bool up = false;

	while (!web_quit && !up && mono_ms() < deadline) {
		if (zmq_poll(&item, 1, (long)(deadline - mono_ms())) > 0)
			monitor_drain(f);
		state_lock(s);
		up = s->connected;
		state_unlock(s);
	}
}

int
feed_run(struct web *w)
{
	struct feed f = { .w = w, .need_snapshot = true };
	int rc = -1;

	if (sub_open(&f) == -1)
		goto sockets_close;
	handshake_wait(&f, SNAP_WAIT_MS);
	while (!web_quit) {
		zmq_pollitem_t items[] = {
			{ f.sub, 0, ZMQ_POLLIN, 0 },
			{ f.mon, 0, ZMQ_POLLIN, 0 },
		};
		long wait = POLL_MS;

		if (f.need_snapshot && mono_ms() >= f.retry_at) {
			snapshot_take(&f);
			continue;
		}
		if (f.need_snapshot)
			wait = (long)(f.retry_at - mono_ms());
		if (zmq_poll(items, 2, wait < 0 ? 0 : wait) == -1 &&
		    errno != EINTR) {
			log_error("feed: poll: %s", zmq_strerror(errno));
			goto sockets_close;
		}
		if (items[1].revents & ZMQ_POLLIN)
			monitor_drain(&f);
		if (items[0].revents & ZMQ_POLLIN)
			sub_drain(&f);
	}
	rc = 0;
sockets_close:
	if (f.sub != NULL)
		zmq_socket_monitor(f.sub, NULL, 0);
	if (f.mon != NULL)
		zmq_close(f.mon);
	if (f.sub != NULL)
		zmq_close(f.sub);
	return rc;
}
