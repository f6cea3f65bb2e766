/*
 * Questions to the daemon that the aggregates do not answer (the queries
 * of the snapshot socket, daemon/query.c): each on a DEALER of its own,
 * from the HTTP thread that needs the answer, with a bounded wait. A few
 * at a time: a page reloaded in a loop cannot queue work on the daemon.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "web.h"
#include "xmalloc.h"

#define ASK_MAX 4 /* questions in flight */

static Indicator__QueryKind
kind_of(const Indicator__SnapshotRequest *req)
{
	if (req->history != NULL)
		return INDICATOR__QUERY_KIND__QUERY_HISTORY;
	if (req->expected != NULL)
		return INDICATOR__QUERY_KIND__QUERY_EXPECTED;
	return INDICATOR__QUERY_KIND__QUERY_AGENTS;
}

/* The answer on sock within timeout_ms, or NULL. */
static Indicator__Snapshot *
answer_wait(void *sock, int timeout_ms)
{
	zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
	Indicator__Snapshot *snap = NULL;
	struct timespec ts;
	int64_t now, deadline;
	zmq_msg_t msg;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	deadline = now + timeout_ms;
	while (now < deadline) {
		int rc = zmq_poll(&item, 1, (long)(deadline - now));

		if (rc == -1 && errno != EINTR)
			return NULL;
		if (rc > 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	}
	if (!(item.revents & ZMQ_POLLIN))
		return NULL;
	zmq_msg_init(&msg);
	if (zmq_msg_recv(&msg, sock, 0) != -1 && !zmq_msg_more(&msg))
		snap = indicator__snapshot__unpack(
		    NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
	zmq_msg_close(&msg);
	return snap;
}

Indicator__Snapshot *
ask_daemon(struct web *w, const Indicator__SnapshotRequest *req, int timeout_ms,
    const char **why)
{
	Indicator__Snapshot *snap = NULL;
	uint8_t *buf;
	size_t len;
	void *sock = NULL;
	int linger = 0;

	pthread_mutex_lock(&w->ask_lock);
	if (w->asking >= ASK_MAX) {
		pthread_mutex_unlock(&w->ask_lock);
		*why = "busy";
		return NULL;
	}
	w->asking++;
	pthread_mutex_unlock(&w->ask_lock);

	*why = "daemon_unreachable";
	len = indicator__snapshot_request__get_packed_size(req);
	buf = xmalloc(len > 0 ? len : 1);
	indicator__snapshot_request__pack(req, buf);
	if ((sock = zmq_socket(w->zctx, ZMQ_DEALER)) == NULL)
		goto buf_free;
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	feed_curve_client(w, sock);
	if (zmq_connect(sock, w->snapshot) == -1 ||
	    zmq_send(sock, buf, len, 0) != (int)len)
		goto sock_close;
	if ((snap = answer_wait(sock, timeout_ms)) == NULL)
		goto sock_close;
	if (snap->query != kind_of(req)) {
		/* A daemon from before the queries answers a snapshot. */
		*why = snap->query == INDICATOR__QUERY_KIND__QUERY_NONE
			   ? "daemon_too_old"
			   : "bad_answer";
		indicator__snapshot__free_unpacked(snap, NULL);
		snap = NULL;
	}
sock_close:
	zmq_close(sock);
buf_free:
	free(buf);
	pthread_mutex_lock(&w->ask_lock);
	w->asking--;
	pthread_mutex_unlock(&w->ask_lock);
	return snap;
}
