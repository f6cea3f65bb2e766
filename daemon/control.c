/*
 * The operator's view of the running daemon: a local control socket that
 * answers "status" with a JSON object (indicatorctl status), the counters
 * and the commit-latency histogram, and the connection counts taken from
 * socket monitors on the ingest and publish sockets. "checkpoint" brings the
 * store's tables up to date with every acknowledged report before it
 * answers, so that a reader (indicatorctl) sees them all. "reload" reloads
 * the configuration as SIGHUP does and answers with the outcome, so that
 * `indicatorctl reload` (the unit's ExecReload=) can fail when the new file
 * is refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "indicatord.h"
#include "ledger.h"
#include "xmalloc.h"

#define MON_INGEST "inproc://indicatord-monitor-ingest"
#define MON_PUBLISH "inproc://indicatord-monitor-publish"

/* Upper bounds of the commit-latency buckets, seconds (Prometheus "le"). */
const double control_buckets[CONTROL_BUCKETS] = { 0.0005, 0.001, 0.002, 0.005,
	0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5 };

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
control_commit_observe(struct daemon *d, double seconds, size_t reports)
{
	struct counters *c = &d->count;
	size_t i;

	for (i = 0; i < CONTROL_BUCKETS; i++)
		if (seconds <= control_buckets[i])
			break;
	c->commit_hist[i]++; /* i == CONTROL_BUCKETS: +Inf */
	c->commit_sum_s += seconds;
	if (seconds > c->commit_max_s)
		c->commit_max_s = seconds;
	c->commits++;
	c->batch_reports += reports;
}

/* A monitor on sock, read through a PAIR connected to endpoint. */
static void *
monitor_new(struct daemon *d, void *sock, const char *endpoint)
{
	void *pair;

	if (zmq_socket_monitor(sock, endpoint,
		ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) == -1)
		return NULL;
	if ((pair = zmq_socket(d->zctx, ZMQ_PAIR)) == NULL)
		return NULL;
	if (zmq_connect(pair, endpoint) == -1) {
		zmq_close(pair);
		return NULL;
	}
	return pair;
}

int
control_init(struct daemon *d)
{
	struct control *c = &d->ctl;
	int linger = 0;

	c->started_ms = mono_ms();
	if (d->cfg.control[0] == '\0')
		snprintf(c->endpoint, sizeof(c->endpoint), "ipc://%s/control",
		    d->cfg.data_dir);
	else
		snprintf(
		    c->endpoint, sizeof(c->endpoint), "%s", d->cfg.control);
	if ((c->sock = zmq_socket(d->zctx, ZMQ_ROUTER)) == NULL)
		return -1;
	zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof(linger));
	if (zmq_bind(c->sock, c->endpoint) == -1) {
		log_error("control: cannot bind %s: %s", c->endpoint,
		    zmq_strerror(errno));
		return -1;
	}
	/* Connection counts are a nicety: without monitors they stay 0. */
	c->mon_ingest = monitor_new(d, d->ingest, MON_INGEST);
	c->mon_publish = monitor_new(d, d->publish, MON_PUBLISH);
	return 0;
}

void
control_destroy(struct daemon *d)
{
	struct control *c = &d->ctl;

	if (c->mon_ingest != NULL) {
		zmq_socket_monitor(d->ingest, NULL, 0);
		zmq_close(c->mon_ingest);
	}
	if (c->mon_publish != NULL) {
		zmq_socket_monitor(d->publish, NULL, 0);
		zmq_close(c->mon_publish);
	}
	if (c->sock != NULL)
		zmq_close(c->sock);
	memset(c, 0, sizeof(*c));
}

/* Reads every waiting event of one monitor into its connection count. */
static void
monitor_drain(void *mon, int64_t *connected)
{
	zmq_msg_t m;
	int more;
	size_t moresz = sizeof(more);

	if (mon == NULL)
		return;
	for (;;) {
		uint16_t event;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, mon, ZMQ_DONTWAIT) == -1) {
			zmq_msg_close(&m);
			return;
		}
		if (zmq_msg_size(&m) >= 2) {
			memcpy(&event, zmq_msg_data(&m), sizeof(event));
			if (event == ZMQ_EVENT_ACCEPTED)
				(*connected)++;
			else if (event == ZMQ_EVENT_DISCONNECTED &&
				 *connected > 0)
				(*connected)--;
		}
		while (zmq_getsockopt(mon, ZMQ_RCVMORE, &more, &moresz) == 0 &&
		       more) {
			zmq_msg_close(&m);
			zmq_msg_init(&m);
			zmq_msg_recv(&m, mon, 0);
		}
		zmq_msg_close(&m);
	}
}

void
control_poll_items(struct daemon *d, zmq_pollitem_t *items, int *n)
{
	void *socks[] = { d->ctl.sock, d->ctl.mon_ingest, d->ctl.mon_publish };

	for (size_t i = 0; i < 3; i++) {
		if (socks[i] == NULL)
			continue;
		items[*n].socket = socks[i];
		items[*n].fd = 0;
		items[*n].events = ZMQ_POLLIN;
		items[*n].revents = 0;
		(*n)++;
	}
}

void
control_stats(struct daemon *d, struct control_stats *out)
{
	struct store_stat st;
	struct store_txn *t;

	monitor_drain(d->ctl.mon_ingest, &d->ctl.agents_connected);
	monitor_drain(d->ctl.mon_publish, &d->ctl.subscribers);
	memset(out, 0, sizeof(*out));
	out->count = d->count;
	/* The checkpoints are the ledger's (NULL during its replay). */
	if (d->ledger != NULL) {
		struct ledger_stats ls;

		ledger_stats(d->ledger, &ls);
		out->count.checkpoints = ls.checkpoints;
		out->count.checkpoint_sum_s = ls.checkpoint_sum_s;
		out->count.checkpoint_max_s = ls.checkpoint_max_s;
	}
	/* Before control_init() (the metrics during the replay): 0. */
	out->uptime_s = d->ctl.started_ms == 0
			    ? 0
			    : (double)(mono_ms() - d->ctl.started_ms) / 1000.0;
	out->agents_connected = d->ctl.agents_connected;
	out->subscribers = d->ctl.subscribers;
	out->publications_dropped = publisher_dropped(d->pub);
	out->publications_unheard = publisher_unheard(d->pub);
	out->map_max_bytes = d->cfg.map_max;
	out->watch = d->watch;
	if ((t = store_txn_begin(d->store, false)) != NULL) {
		if (store_stat(t, &st) == 0) {
			out->map_bytes = st.map_size;
			out->used_bytes = st.used_bytes;
			out->observations = st.nobs;
			out->revisions = st.nhist;
			out->agents_known = st.nagents;
			out->aggregates = st.naggs;
		}
		store_txn_abort(&t);
	}
}

/* s as a JSON string, quotes included, into buf (truncated to len). */
static void
json_quote(const char *s, char *buf, size_t len)
{
	size_t o = 0;

	if (len < 3)
		return;
	buf[o++] = '"';
	for (; *s != '\0' && o + 7 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)snprintf(buf + o, len - o, "\\u%04x", c);
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
}

/* Reloads the configuration; the outcome as one JSON object. */
static int
reload_json(struct daemon *d, char *buf, size_t len)
{
	char why[512], quoted[1200];

	if (indicatord_reload(d, why, sizeof(why)) == -1) {
		json_quote(why, quoted, sizeof(quoted));
		return snprintf(
		    buf, len, "{\"reload\":false,\"error\":%s}", quoted);
	}
	return snprintf(buf, len,
	    "{\"reload\":true,\"districts\":%zu,\"industries\":%zu,"
	    "\"metrics\":%zu,\"targets\":%zu}",
	    d->cfg.reg.ndistricts, d->cfg.reg.nindustries, d->cfg.reg.nmetrics,
	    d->cfg.reg.ntargets);
}

/* The status as one JSON object. */
static int
status_json(const struct control_stats *s, char *buf, size_t len)
{
	const struct counters *c = &s->count;

	return snprintf(buf, len,
	    "{\"uptime_s\":%.3f,\"accepted\":\"%llu\",\"duplicate\":\"%llu\","
	    "\"rejected\":\"%llu\",\"malformed\":\"%llu\",\"retry_later\":\"%"
	    "llu\","
	    "\"unauthorised\":\"%llu\",\"rate_limited\":\"%llu\","
	    "\"heartbeats\":\"%llu\",\"observations_received\":\"%llu\","
	    "\"batches\":\"%llu\",\"batch_reports_avg\":%.1f,"
	    "\"commit_ms_avg\":%.3f,\"commit_ms_max\":%.3f,"
	    "\"checkpoints\":\"%llu\","
	    "\"checkpoint_ms_avg\":%.3f,\"checkpoint_ms_max\":%.3f,"
	    "\"agents_connected\":\"%lld\","
	    "\"subscribers\":\"%lld\",\"publications_dropped\":\"%llu\","
	    "\"publications_unheard\":\"%llu\","
	    "\"answers_dropped\":\"%llu\",\"snapshots_refused\":\"%llu\","
	    "\"answers_queued_bytes\":\"%llu\","
	    "\"store\":{\"map_bytes\":\"%llu\",\"used_bytes\":\"%llu\","
	    "\"observations\":\"%llu\",\"revisions\":\"%llu\",\"agents\":\"%"
	    "llu\","
	    "\"aggregates\":\"%llu\"}}",
	    s->uptime_s, (unsigned long long)c->accepted,
	    (unsigned long long)c->duplicate, (unsigned long long)c->rejected,
	    (unsigned long long)c->malformed, (unsigned long long)c->retry,
	    (unsigned long long)c->unauthorised,
	    (unsigned long long)c->rate_limited,
	    (unsigned long long)c->heartbeats,
	    (unsigned long long)c->observations, (unsigned long long)c->batches,
	    c->commits ? (double)c->batch_reports / (double)c->commits : 0.0,
	    c->commits ? c->commit_sum_s * 1000.0 / (double)c->commits : 0.0,
	    c->commit_max_s * 1000.0, (unsigned long long)c->checkpoints,
	    c->checkpoints
		? c->checkpoint_sum_s * 1000.0 / (double)c->checkpoints
		: 0.0,
	    c->checkpoint_max_s * 1000.0, (long long)s->agents_connected,
	    (long long)s->subscribers,
	    (unsigned long long)s->publications_dropped,
	    (unsigned long long)s->publications_unheard,
	    (unsigned long long)c->answers_dropped,
	    (unsigned long long)c->snapshots_refused,
	    (unsigned long long)budget_answers_queued(),
	    (unsigned long long)s->map_bytes, (unsigned long long)s->used_bytes,
	    (unsigned long long)s->observations,
	    (unsigned long long)s->revisions,
	    (unsigned long long)s->agents_known,
	    (unsigned long long)s->aggregates);
}

int
control_serve(struct daemon *d)
{
	struct control_stats st;
	unsigned char id[256], req[64];
	char reply[2048];
	int idlen, n, more;
	size_t moresz = sizeof(more);

	control_stats(d, &st); /* also drains the monitors */
	if ((idlen = zmq_recv(d->ctl.sock, id, sizeof(id), ZMQ_DONTWAIT)) == -1)
		return 0;
	n = zmq_recv(d->ctl.sock, req, sizeof(req) - 1, 0);
	while (zmq_getsockopt(d->ctl.sock, ZMQ_RCVMORE, &more, &moresz) == 0 &&
	       more)
		zmq_recv(d->ctl.sock, NULL, 0, 0);
	if (idlen > (int)sizeof(id))
		idlen = sizeof(id);
	if (n >= 0 && n < (int)sizeof(req) && (size_t)n == strlen("status") &&
	    memcmp(req, "status", 6) == 0)
		n = status_json(&st, reply, sizeof(reply));
	else if (n == (int)strlen("checkpoint") &&
		 memcmp(req, "checkpoint", (size_t)n) == 0)
		n = snprintf(reply, sizeof(reply), "{\"checkpoint\":%s}",
		    ledger_checkpoint(d->ledger) == 0 ? "true" : "false");
	else if (n == (int)strlen("reload") &&
		 memcmp(req, "reload", (size_t)n) == 0)
		n = reload_json(d, reply, sizeof(reply));
	else
		n = snprintf(reply, sizeof(reply),
		    "{\"error\":\"unknown request; they are \\\"status\\\", "
		    "\\\"checkpoint\\\" and \\\"reload\\\"\"}");
	if (n < 0)
		n = 0;
	else if ((size_t)n >= sizeof(reply))
		n = (int)sizeof(reply) - 1;
	zmq_send(d->ctl.sock, id, (size_t)idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT);
	zmq_send(d->ctl.sock, reply, (size_t)n, ZMQ_DONTWAIT);
	return 1;
}
