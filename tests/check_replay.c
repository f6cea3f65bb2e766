/*
 * Recovery of the real daemon from its log (store/store.h, format 2). With
 * the idle and timed checkpoints turned off, the daemon is killed with
 * SIGKILL after it acknowledged reports that no checkpoint has written to
 * the tables; restarted on the same store, it replays the log and comes
 * back with every latest value, revision and history, and with every
 * aggregate, its revision and its publish seq exactly as published before
 * the kill, and seqs go on from there with no gap and no reuse. The same
 * across two crashes with a checkpoint in between; indicatorctl's warning
 * about a tail of the log not yet in the tables, read beside a dead
 * daemon's stale control socket; a store of format 1 refused.
 *
 * What was acknowledged is kept in a model (key -> values in the order
 * sent); what was published, by a subscriber that records each topic's
 * last Aggregate.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <lmdb.h>
#include <unistd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "harness.h"
#include "indicator.pb-c.h"
#include "store.h"
#include "xmalloc.h"

#define ACK_TIMEOUT_MS 30000
#define FEED_TIMEOUT_MS 30000
#define SNAP_TIMEOUT_MS 30000
/* A first sync report unseen for this long is sent again: the subscription
 * was not yet in. */
#define WARM_RESEND_MS 300
#define CTL_TIMEOUT_S 30 /* far below the 60 s a hung checkpoint waits */
#define ROWS_MAX 4
#define KEYS_MAX 32
#define REVS_MAX 64
#define YEAR "2025"

/* Nothing is checkpointed unless asked: no idle checkpoint, none by time
 * within a test, and far from checkpoint_entries. */
#define NO_CHECKPOINT \
	"[daemon]\ncheckpoint_idle_ms = 0\ncheckpoint_ms = 3600000\n"

/* The key that syncs the feed: each report of it changes the four
 * aggregates of sync_topics, and nothing else after its first (its period
 * is apart from the tests' data, and it stays far from a 千亿级 cluster).
 * Once all four carry its value, everything published before has been
 * received, and nothing of its batch is left behind. */
#define SYNC_AGENT "sync-01"
#define SYNC_DISTRICT "320585"
#define SYNC_INDUSTRY "aerospace"
#define SYNC_PERIOD "2024"

#define ACCEPTED INDICATOR__ACK_STATUS__ACCEPTED
#define DUPLICATE INDICATOR__ACK_STATUS__DUPLICATE

struct row {
	const char *industry; /* NULL ends the report's rows */
	const char *metric;
	double value;
	const char *unit;
	const char *period; /* NULL: YEAR */
};

/* One report of epoch 1. Values are multiples of 0.25: sums are exact. */
struct rpt {
	const char *agent;
	const char *district;
	uint64_t seq;
	struct row rows[ROWS_MAX];
};

/* What was acknowledged: each key's values in the order stored. */
struct key_model {
	char district[IND_CODE_MAX + 1];
	char industry[IND_CODE_MAX + 1];
	char metric[IND_CODE_MAX + 1];
	char period[IND_PERIOD_MAX + 1];
	double values[REVS_MAX];
	size_t n;
};

struct model {
	struct key_model keys[KEYS_MAX];
	size_t nkeys;
	size_t nobs; /* observations acknowledged: records in the log */
	uint64_t sync_seq; /* the last seq of SYNC_AGENT */
};

/* One aggregate, from the feed or a Snapshot. */
struct rec {
	char topic[IND_TOPIC_MAX + 1];
	char unit[IND_UNIT_MAX + 1];
	double value;
	double target;
	double progress;
	uint32_t reporting;
	uint32_t expected;
	uint32_t target_year;
	uint64_t revision;
	uint64_t seq;
	int64_t updated_at_ms;
};

struct recset {
	struct rec *v;
	size_t n;
	size_t cap;
};

/* A subscriber to every topic: each topic's last Aggregate. */
struct feed {
	void *sub;
	struct recset state;
	uint64_t first; /* the first seq received; 0: none yet */
	uint64_t last; /* the last seq received, or the one the next must
			  follow */
	size_t n; /* updates received on this socket */
};

static const char *const sync_topics[] = {
	"agg/output_value/aerospace/320585/2024",
	"agg/output_value/*/320585/2024",
	"agg/output_value/aerospace/city/2024",
	"agg/output_value/*/city/2024",
};

static struct daemon_proc dm;
static void *zctx;
static void *sock;
/* Closed by the teardown when a test fails with it open: a socket left
 * open would hang zmq_ctx_term() (with CK_FORK=no, under ASan). */
static struct feed feed;

static void recset_free(struct recset *s);

static void
setup(void)
{
	memset(&dm, 0, sizeof(dm));
	memset(&feed, 0, sizeof(feed));
	zctx = zmq_ctx_new();
	ck_assert_ptr_nonnull(zctx);
	sock = NULL;
}

/* A daemon still running at the end must stop cleanly on SIGTERM, after
 * whatever replay it did. */
static void
teardown(void)
{
	int status;

	if (sock != NULL)
		zmq_close(sock);
	sock = NULL;
	if (feed.sub != NULL)
		zmq_close(feed.sub);
	recset_free(&feed.state);
	if (dm.pid > 0) {
		status = harness_daemon_stop(&dm, SIGTERM);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "indicatord did not exit 0 on SIGTERM (status %d)", status);
	}
	if (dm.dir[0] != '\0')
		harness_daemon_cleanup(&dm);
	zmq_ctx_term(zctx);
	zctx = NULL;
}

static void
daemon_up(const char *extra)
{
	harness_daemon_init(&dm, extra);
	harness_daemon_start(&dm);
	sock = harness_client_new(zctx, dm.ingest);
}

/* SIGKILL: no checkpoint at shutdown, nothing but what was committed. */
static void
daemon_kill(void)
{
	int status;

	zmq_close(sock);
	sock = NULL;
	status = harness_daemon_stop(&dm, SIGKILL);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	    "indicatord was not killed by SIGKILL (status %d)", status);
}

static void
daemon_restart(void)
{
	harness_daemon_start(&dm);
	sock = harness_client_new(zctx, dm.ingest);
}

static size_t
rpt_rows(const struct rpt *r)
{
	size_t n = 0;

	while (n < ROWS_MAX && r->rows[n].industry != NULL)
		n++;
	return n;
}

/* Sends r without waiting for its Ack. */
static void
rpt_send(const struct rpt *r)
{
	Indicator__AgentMessage msg = INDICATOR__AGENT_MESSAGE__INIT;
	Indicator__Report rep = INDICATOR__REPORT__INIT;
	Indicator__Observation o[ROWS_MAX], *op[ROWS_MAX];
	const void *frames[1];
	size_t lens[1], n = rpt_rows(r), len;
	uint8_t *buf;

	for (size_t i = 0; i < n; i++) {
		indicator__observation__init(&o[i]);
		o[i].industry = (char *)r->rows[i].industry;
		o[i].metric = (char *)r->rows[i].metric;
		o[i].period =
		    (char *)(r->rows[i].period != NULL ? r->rows[i].period
						       : YEAR);
		o[i].value = r->rows[i].value;
		o[i].unit = (char *)r->rows[i].unit;
		o[i].status = INDICATOR__OBS_STATUS__PROVISIONAL;
		op[i] = &o[i];
	}
	rep.agent_id = (char *)r->agent;
	rep.district = (char *)r->district;
	rep.epoch = 1;
	rep.seq = r->seq;
	rep.sent_at_ms = (int64_t)time(NULL) * 1000;
	rep.n_observations = n;
	rep.observations = op;
	msg.body_case = INDICATOR__AGENT_MESSAGE__BODY_REPORT;
	msg.report = &rep;
	len = indicator__agent_message__get_packed_size(&msg);
	buf = xmalloc(len);
	indicator__agent_message__pack(&msg, buf);
	frames[0] = buf;
	lens[0] = len;
	harness_client_send(sock, frames, lens, 1);
	free(buf);
}

/* Waits for one Ack and fails the test unless it has the status. */
static void
ack_expect(int status)
{
	Indicator__Ack *ack = harness_client_ack(sock, ACK_TIMEOUT_MS);

	if (ack == NULL) {
		char *log = harness_daemon_log(&dm);

		ck_abort_msg("no Ack; daemon log: %s", log);
	}
	ck_assert_msg((int)ack->status == status,
	    "report seq %llu: status %d, want %d (%s: %s; %zu errors, "
	    "first \"%s\")",
	    (unsigned long long)ack->seq, (int)ack->status, status, ack->code,
	    ack->message, ack->n_errors,
	    ack->n_errors > 0 ? ack->errors[0]->code : "");
	indicator__ack__free_unpacked(ack, NULL);
}

static struct key_model *
model_key(struct model *m, const char *district, const struct row *row)
{
	const char *period = row->period != NULL ? row->period : YEAR;
	struct key_model *k;

	for (size_t i = 0; i < m->nkeys; i++) {
		k = &m->keys[i];
		if (strcmp(k->district, district) == 0 &&
		    strcmp(k->industry, row->industry) == 0 &&
		    strcmp(k->metric, row->metric) == 0 &&
		    strcmp(k->period, period) == 0)
			return k;
	}
	ck_assert_uint_lt(m->nkeys, KEYS_MAX);
	k = &m->keys[m->nkeys++];
	memset(k, 0, sizeof(*k));
	ck_assert(strlcpy_ok(k->district, district, sizeof(k->district)));
	ck_assert(strlcpy_ok(k->industry, row->industry, sizeof(k->industry)));
	ck_assert(strlcpy_ok(k->metric, row->metric, sizeof(k->metric)));
	ck_assert(strlcpy_ok(k->period, period, sizeof(k->period)));
	return k;
}

/* r was ACCEPTED: its rows are the latest values of their keys. */
static void
model_add(struct model *m, const struct rpt *r)
{
	for (size_t i = 0; i < rpt_rows(r); i++) {
		struct key_model *k = model_key(m, r->district, &r->rows[i]);

		ck_assert_uint_lt(k->n, REVS_MAX);
		k->values[k->n++] = r->rows[i].value;
		m->nobs++;
	}
}

/*
 * Sends the n reports at once, so that the daemon may take several in one
 * batch, then expects n Acks, all ACCEPTED.
 */
static void
send_batch(const struct rpt *r, size_t n, struct model *m)
{
	for (size_t i = 0; i < n; i++)
		rpt_send(&r[i]);
	for (size_t i = 0; i < n; i++)
		ack_expect(ACCEPTED);
	for (size_t i = 0; i < n; i++)
		model_add(m, &r[i]);
}

/* Sends the reports one at a time, each acknowledged before the next:
 * one batch each. */
static void
send_each(const struct rpt *r, size_t n, struct model *m)
{
	for (size_t i = 0; i < n; i++)
		send_batch(&r[i], 1, m);
}

static struct rec *
recset_find(const struct recset *s, const char *topic)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i].topic, topic) == 0)
			return &s->v[i];
	return NULL;
}

/* Replaces the record of r's topic, or adds it. */
static void
recset_put(struct recset *s, const struct rec *r)
{
	struct rec *old = recset_find(s, r->topic);

	if (old != NULL) {
		*old = *r;
		return;
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = *r;
}

static void
recset_free(struct recset *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static void
rec_from_agg(struct rec *r, const Indicator__Aggregate *a)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->topic, sizeof(r->topic), "agg/%s/%s/%s/%s", a->metric,
	    a->industry, a->scope, a->period);
	snprintf(r->unit, sizeof(r->unit), "%s", a->unit);
	r->value = a->value;
	r->target = a->target;
	r->progress = a->progress;
	r->reporting = a->districts_reporting;
	r->expected = a->districts_expected;
	r->target_year = a->target_year;
	r->revision = a->revision;
	r->seq = a->seq;
	r->updated_at_ms = a->updated_at_ms;
}

/*
 * Subscribes to every topic and waits until the connection's handshake is
 * done (the subscription goes out right behind it). The first update must
 * follow seq after (0: any).
 */
static void
feed_open(struct feed *f, uint64_t after)
{
	zmq_pollitem_t item;
	zmq_msg_t ev;
	char endpoint[64];
	uint16_t event = 0;
	int linger = 0, rc;
	void *mon;

	f->sub = zmq_socket(zctx, ZMQ_SUB);
	ck_assert_ptr_nonnull(f->sub);
	zmq_setsockopt(f->sub, ZMQ_LINGER, &linger, sizeof(linger));
	ck_assert_int_eq(zmq_setsockopt(f->sub, ZMQ_SUBSCRIBE, "", 0), 0);
	snprintf(endpoint, sizeof(endpoint), "inproc://replay-mon-%p", f->sub);
	ck_assert_int_eq(
	    zmq_socket_monitor(f->sub, endpoint, ZMQ_EVENT_HANDSHAKE_SUCCEEDED),
	    0);
	mon = zmq_socket(zctx, ZMQ_PAIR);
	ck_assert_ptr_nonnull(mon);
	zmq_setsockopt(mon, ZMQ_LINGER, &linger, sizeof(linger));
	ck_assert_int_eq(zmq_connect(mon, endpoint), 0);
	ck_assert_int_eq(zmq_connect(f->sub, dm.publish), 0);
	item = (zmq_pollitem_t){ mon, 0, ZMQ_POLLIN, 0 };
	do {
		rc = zmq_poll(&item, 1, FEED_TIMEOUT_MS);
	} while (rc == -1 && zmq_errno() == EINTR);
	/* Two frames: the event and its value, then the endpoint. */
	zmq_msg_init(&ev);
	if (rc == 1 && zmq_msg_recv(&ev, mon, 0) >= 6)
		memcpy(&event, zmq_msg_data(&ev), sizeof(event));
	zmq_msg_close(&ev);
	zmq_msg_init(&ev);
	if (event != 0)
		zmq_msg_recv(&ev, mon, 0);
	zmq_msg_close(&ev);
	/* Stopped before its socket closes: a monitor whose socket is gone
	 * blocks the context's I/O thread. */
	zmq_socket_monitor(f->sub, NULL, 0);
	zmq_close(mon);
	ck_assert_msg(event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED,
	    "no handshake with %s", dm.publish);
	f->first = 0;
	f->last = after;
	f->n = 0;
}

static void
feed_close(struct feed *f)
{
	zmq_close(f->sub);
	f->sub = NULL;
}

/*
 * Receives one update within timeout_ms into the feed's state; false on
 * timeout. Fails the test unless it is a topic and an Aggregate of that
 * topic, and its seq follows the last one: no gap, no reuse.
 */
static bool
feed_recv(struct feed *f, int timeout_ms, struct rec *out)
{
	zmq_pollitem_t item = { f->sub, 0, ZMQ_POLLIN, 0 };
	char topic[IND_TOPIC_MAX + 1];
	Indicator__Aggregate *a;
	zmq_msg_t msg;
	struct rec r;
	int rc, n;

	do {
		rc = zmq_poll(&item, 1, timeout_ms);
	} while (rc == -1 && zmq_errno() == EINTR);
	ck_assert_int_ne(rc, -1);
	if (rc == 0)
		return false;
	n = zmq_recv(f->sub, topic, sizeof(topic) - 1, 0);
	ck_assert_msg(n >= 0 && n < (int)sizeof(topic) - 1, "topic frame");
	topic[n] = '\0';
	ck_assert_msg(zmq_getsockopt(f->sub, ZMQ_RCVMORE, &rc,
			  &(size_t){ sizeof(rc) }) == 0 &&
			  rc == 1,
	    "update %s without its Aggregate", topic);
	zmq_msg_init(&msg);
	ck_assert(zmq_msg_recv(&msg, f->sub, 0) != -1);
	ck_assert_msg(!zmq_msg_more(&msg), "update %s of 3 frames", topic);
	a = indicator__aggregate__unpack(
	    NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
	zmq_msg_close(&msg);
	ck_assert_msg(a != NULL, "update %s does not decode", topic);
	rec_from_agg(&r, a);
	indicator__aggregate__free_unpacked(a, NULL);
	ck_assert_str_eq(r.topic, topic);
	if (f->last != 0)
		ck_assert_msg(r.seq == f->last + 1,
		    "update %s has seq %llu after %llu", topic,
		    (unsigned long long)r.seq, (unsigned long long)f->last);
	if (f->first == 0)
		f->first = r.seq;
	f->last = r.seq;
	f->n++;
	recset_put(&f->state, &r);
	if (out != NULL)
		*out = r;
	return true;
}

/* Sends the next report of the sync key and waits for its Ack. */
static double
sync_send(struct model *m)
{
	struct rpt r = { SYNC_AGENT, SYNC_DISTRICT, ++m->sync_seq,
		{ { SYNC_INDUSTRY, "output_value", (double)m->sync_seq,
		    "CNY_100M", SYNC_PERIOD } } };

	send_batch(&r, 1, m);
	return r.rows[0].value;
}

/* Whether the feed has every aggregate of the sync key at value. */
static bool
feed_synced(const struct feed *f, double value)
{
	for (size_t i = 0; i < sizeof(sync_topics) / sizeof(sync_topics[0]);
	     i++) {
		const struct rec *r = recset_find(&f->state, sync_topics[i]);

		if (r == NULL || r->value != value)
			return false;
	}
	return true;
}

/* Receives updates until the sync key's aggregates are at value. */
static void
feed_until_sync(struct feed *f, double value)
{
	int64_t deadline = harness_now_ms() + FEED_TIMEOUT_MS;

	while (!feed_synced(f, value)) {
		int64_t left = deadline - harness_now_ms();

		ck_assert_msg(left > 0 && feed_recv(f, (int)left, NULL),
		    "the sync key's aggregates never reached %g", value);
	}
}

/* Everything published so far has been received. */
static void
feed_sync(struct feed *f, struct model *m)
{
	feed_until_sync(f, sync_send(m));
}

/*
 * The first updates: sync reports until one's are all seen. A subscription
 * that is not yet in loses the updates of the first reports (or of the
 * start of one); once it is, none is lost.
 */
static void
feed_warm_up(struct feed *f, struct model *m)
{
	int64_t deadline = harness_now_ms() + FEED_TIMEOUT_MS;
	double value;

	do {
		ck_assert_msg(harness_now_ms() < deadline,
		    "the feed never received a sync report's updates");
		value = sync_send(m);
		while (!feed_synced(f, value) &&
		       feed_recv(f, WARM_RESEND_MS, NULL))
			;
	} while (!feed_synced(f, value));
}

/* Asks the snapshot socket for every aggregate. */
static void
snapshot_recs(struct recset *out, uint64_t *seq)
{
	Indicator__SnapshotRequest req = INDICATOR__SNAPSHOT_REQUEST__INIT;
	Indicator__Snapshot *snap;
	uint8_t buf[64];
	const void *frames[1] = { buf };
	size_t lens[1];
	zmq_pollitem_t item;
	zmq_msg_t msg;
	struct rec r;
	int rc;
	void *s = harness_client_new(zctx, dm.snapshot);

	req.prefix = "";
	lens[0] = indicator__snapshot_request__pack(&req, buf);
	harness_client_send(s, frames, lens, 1);
	item = (zmq_pollitem_t){ s, 0, ZMQ_POLLIN, 0 };
	rc = zmq_poll(&item, 1, SNAP_TIMEOUT_MS);
	zmq_msg_init(&msg);
	if (rc == 1)
		rc = zmq_msg_recv(&msg, s, 0) != -1 && !zmq_msg_more(&msg);
	snap = rc == 1 ? indicator__snapshot__unpack(
			     NULL, zmq_msg_size(&msg), zmq_msg_data(&msg))
		       : NULL;
	zmq_msg_close(&msg);
	zmq_close(s);
	ck_assert_msg(snap != NULL,
	    "no Snapshot of one frame that decodes from the snapshot socket");
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < snap->n_aggregates; i++) {
		rec_from_agg(&r, snap->aggregates[i]);
		ck_assert_msg(recset_find(out, r.topic) == NULL,
		    "%s twice in the Snapshot", r.topic);
		recset_put(out, &r);
	}
	*seq = snap->seq;
	indicator__snapshot__free_unpacked(snap, NULL);
}

static bool
rec_eq(const struct rec *a, const struct rec *b)
{
	return a->value == b->value && a->target == b->target &&
	       a->progress == b->progress && a->reporting == b->reporting &&
	       a->expected == b->expected && a->target_year == b->target_year &&
	       strcmp(a->unit, b->unit) == 0 && a->revision == b->revision &&
	       a->seq == b->seq && a->updated_at_ms == b->updated_at_ms;
}

static bool
topic_of_period(const char *topic, const char *period)
{
	const char *slash = strrchr(topic, '/');

	return slash != NULL && strcmp(slash + 1, period) == 0;
}

/*
 * The Snapshot holds what the feed received, aggregate for aggregate (all
 * fields, revision, seq and updated_at_ms too), and nothing else, but for
 * the sync key's period when the feed missed updates of its first sync
 * report (f->first > 1).
 */
static void
snapshot_expect_feed(
    const struct recset *snap, const struct feed *f, const char *what)
{
	for (size_t i = 0; i < f->state.n; i++) {
		const struct rec *w = &f->state.v[i];
		const struct rec *g = recset_find(snap, w->topic);

		ck_assert_msg(g != NULL, "%s: %s missing", what, w->topic);
		ck_assert_msg(rec_eq(g, w),
		    "%s: %s is %.17g %s (%u/%u, target %g by %u, progress "
		    "%.17g) revision %llu seq %llu at %lld; published %.17g "
		    "%s (%u/%u, target %g by %u, progress %.17g) revision "
		    "%llu seq %llu at %lld",
		    what, w->topic, g->value, g->unit, g->reporting,
		    g->expected, g->target, g->target_year, g->progress,
		    (unsigned long long)g->revision, (unsigned long long)g->seq,
		    (long long)g->updated_at_ms, w->value, w->unit,
		    w->reporting, w->expected, w->target, w->target_year,
		    w->progress, (unsigned long long)w->revision,
		    (unsigned long long)w->seq, (long long)w->updated_at_ms);
	}
	for (size_t i = 0; i < snap->n; i++) {
		const struct rec *g = &snap->v[i];

		if (f->first > 1 && topic_of_period(g->topic, SYNC_PERIOD))
			continue;
		ck_assert_msg(recset_find(&f->state, g->topic) != NULL,
		    "%s: %s (revision %llu seq %llu) was never published", what,
		    g->topic, (unsigned long long)g->revision,
		    (unsigned long long)g->seq);
	}
}

/*
 * Seqs without gap or reuse, from the aggregates alone: each publication
 * gave one topic revision + 1 and the next seq from 1, so the revisions add
 * up to the Snapshot's seq, no two aggregates share a seq, and the highest
 * is the Snapshot's.
 */
static void
snapshot_expect_seqs(const struct recset *snap, uint64_t seq)
{
	uint64_t sum = 0, max = 0;

	for (size_t i = 0; i < snap->n; i++) {
		const struct rec *r = &snap->v[i];

		ck_assert_msg(r->revision >= 1 && r->seq >= 1 && r->seq <= seq,
		    "%s: revision %llu seq %llu (Snapshot seq %llu)", r->topic,
		    (unsigned long long)r->revision, (unsigned long long)r->seq,
		    (unsigned long long)seq);
		for (size_t j = 0; j < i; j++)
			ck_assert_msg(snap->v[j].seq != r->seq,
			    "%s and %s both have seq %llu", snap->v[j].topic,
			    r->topic, (unsigned long long)r->seq);
		sum += r->revision;
		if (r->seq > max)
			max = r->seq;
	}
	ck_assert_msg(max == seq,
	    "the highest aggregate seq is %llu, the Snapshot's %llu",
	    (unsigned long long)max, (unsigned long long)seq);
	ck_assert_msg(sum == seq,
	    "the aggregates' revisions add up to %llu, the Snapshot's seq is "
	    "%llu",
	    (unsigned long long)sum, (unsigned long long)seq);
}

/* What the store holds, read beside the daemon (no checkpoint asked). */
struct store_state {
	uint64_t applied; /* meta "applied" */
	uint64_t last; /* the last log position */
	uint64_t pub_seq; /* meta "pub_seq" */
	struct store_stat stat;
};

static void
store_state_read(struct store_state *ss)
{
	struct store_opts opts = { 0 };
	struct store *s;
	struct store_txn *t;
	uint64_t next = 0;
	char err[512];

	memset(ss, 0, sizeof(*ss));
	opts.dir = dm.data_dir;
	opts.readonly = true;
	s = store_open(&opts, err, sizeof(err));
	ck_assert_msg(s != NULL, "store_open: %s", err);
	t = store_txn_begin(s, false);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(
	    store_meta_get(t, STORE_META_APPLIED, &ss->applied), 0);
	ck_assert_int_eq(store_meta_get(t, "pub_seq", &ss->pub_seq), 0);
	ck_assert_int_eq(store_log_next(t, &next), 0);
	ck_assert_uint_ge(next, 1);
	ss->last = next - 1;
	ck_assert_int_eq(store_stat(t, &ss->stat), 0);
	store_txn_abort(&t);
	store_close(&s);
}

/* Whether the daemon's log holds the replay of records first..last in
 * batches batches. */
static void
log_expect_replay(size_t first, size_t last, size_t batches)
{
	char what[160];

	snprintf(what, sizeof(what),
	    "replayed %zu logged observations in %zu batches, log positions "
	    "%zu to %zu",
	    last - first + 1, batches, first, last);
	if (!harness_daemon_log_has(&dm, what)) {
		char *log = harness_daemon_log(&dm);

		ck_abort_msg("no \"%s\" in the daemon's log: %s", what, log);
	}
}

/* Splits text into its lines (in place); returns how many. */
static size_t
lines_split(char *text, char **lines, size_t max)
{
	size_t n = 0;
	char *p = text, *nl;

	while (*p != '\0') {
		nl = strchr(p, '\n');
		if (nl != NULL)
			*nl = '\0';
		if (*p != '\0') {
			ck_assert_uint_lt(n, max);
			lines[n++] = p;
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return n;
}

static double
json_double(const char *line, const char *key)
{
	char buf[64], *end;
	double v;

	ck_assert_msg(harness_json_get(line, key, buf, sizeof(buf)),
	    "no %s in: %s", key, line);
	v = strtod(buf, &end);
	ck_assert_msg(
	    end != buf && *end == '\0', "%s is not a number in: %s", key, line);
	return v;
}

static uint64_t
json_u64(const char *line, const char *key)
{
	char buf[32], *end;
	uint64_t v;

	ck_assert_msg(harness_json_get(line, key, buf, sizeof(buf)),
	    "no %s in: %s", key, line);
	v = strtoull(buf, &end, 10);
	ck_assert_msg(end != buf && *end == '\0', "%s is not an integer in: %s",
	    key, line);
	return v;
}

static bool
json_is(const char *line, const char *key, const char *want)
{
	char buf[IND_CODE_MAX + 8];

	return harness_json_get(line, key, buf, sizeof(buf)) &&
	       strcmp(buf, want) == 0;
}

/* `indicatorctl query` shows each key of the model once, with its last
 * value and as many revisions as it was sent, and nothing else. */
static void
model_expect_query(const struct model *m)
{
	static const char *const args[] = { "query", "--json", NULL };
	char *out = harness_ctl(dm.data_dir, args, CTL_TIMEOUT_S);
	char *lines[KEYS_MAX * 2];
	size_t n = lines_split(out, lines, KEYS_MAX * 2);

	for (size_t i = 0; i < m->nkeys; i++) {
		const struct key_model *k = &m->keys[i];
		const char *line = NULL;

		for (size_t j = 0; j < n && line == NULL; j++)
			if (json_is(lines[j], "district", k->district) &&
			    json_is(lines[j], "industry", k->industry) &&
			    json_is(lines[j], "metric", k->metric) &&
			    json_is(lines[j], "period", k->period))
				line = lines[j];
		ck_assert_msg(line != NULL, "query: %s/%s/%s/%s missing",
		    k->district, k->industry, k->metric, k->period);
		ck_assert_msg(json_double(line, "value") == k->values[k->n - 1],
		    "query: %s/%s/%s/%s is %.17g, want %.17g", k->district,
		    k->industry, k->metric, k->period,
		    json_double(line, "value"), k->values[k->n - 1]);
		ck_assert_msg(json_u64(line, "revision") == k->n,
		    "query: %s/%s/%s/%s at revision %llu, want %zu",
		    k->district, k->industry, k->metric, k->period,
		    (unsigned long long)json_u64(line, "revision"), k->n);
	}
	ck_assert_msg(n == m->nkeys, "query: %zu rows, want %zu", n, m->nkeys);
	free(out);
}

/* `indicatorctl history` of each key shows each value sent, oldest first,
 * revisions 1, 2, ... */
static void
model_expect_history(const struct model *m)
{
	for (size_t i = 0; i < m->nkeys; i++) {
		const struct key_model *k = &m->keys[i];
		const char *const args[] = { "history", k->district,
			k->industry, k->metric, k->period, "--json", NULL };
		char *out = harness_ctl(dm.data_dir, args, CTL_TIMEOUT_S);
		char *lines[REVS_MAX + 1];
		size_t n = lines_split(out, lines, REVS_MAX + 1);

		ck_assert_msg(n == k->n,
		    "history %s/%s/%s/%s: %zu rows, want %zu", k->district,
		    k->industry, k->metric, k->period, n, k->n);
		for (size_t j = 0; j < n; j++) {
			ck_assert_msg(
			    json_u64(lines[j], "revision") == j + 1 &&
				json_double(lines[j], "value") == k->values[j],
			    "history %s/%s/%s/%s row %zu: %s, want revision "
			    "%zu value %.17g",
			    k->district, k->industry, k->metric, k->period, j,
			    lines[j], j + 1, k->values[j]);
		}
		free(out);
	}
}

/* `indicatorctl verify`: every stored aggregate is what the stored
 * observations add up to. */
static void
ctl_verify(void)
{
	static const char *const args[] = { "verify", NULL };
	char *out = harness_ctl(dm.data_dir, args, CTL_TIMEOUT_S);

	ck_assert_msg(strstr(out, " 0 differences") != NULL, "verify: %s", out);
	free(out);
}

/*
 * Kunshan, Huqiu and Wuzhong report; then Kunshan revises photonics and
 * Huqiu revises its photonics twice (revision 3), three reports sent at
 * once (the daemon may take them in one batch: the replay must redo its
 * batches as they were). The city's photonics ends at 1050.5, a 千亿级
 * cluster.
 */
static const struct rpt kill_first[] = {
	{ "ks-01", "320583", 1,
	    { { "photonics", "output_value", 600, "CNY_100M", NULL },
		{ "materials", "output_value", 150.5, "CNY_100M", NULL } } },
	{ "hq-01", "320505", 1,
	    { { "photonics", "output_value", 399.5, "CNY_100M", NULL },
		{ "materials", "chain_leaders", 3, "count", NULL } } },
	{ "wz-01", "320506", 1,
	    { { "hydrogen", "output_value", 80.25, "CNY_100M", NULL },
		{ "quantum", "output_value", 12, "CNY_100M", NULL } } },
};
static const struct rpt kill_second[] = {
	{ "ks-01", "320583", 2,
	    { { "photonics", "output_value", 650, "CNY_100M", NULL },
		{ "metaverse", "output_value", 20, "CNY_100M", NULL } } },
	{ "hq-01", "320505", 2,
	    { { "photonics", "output_value", 400, "CNY_100M", NULL } } },
	{ "hq-01", "320505", 3,
	    { { "photonics", "output_value", 400.5, "CNY_100M", NULL } } },
};
/* After the restart: a new key of Kunshan's. */
static const struct rpt kill_after = { "ks-01", "320583", 3,
	{ { "quantum", "output_value", 5, "CNY_100M", NULL } } };

/*
 * Killed after the acks, before any checkpoint: everything is in the log
 * and nothing in the tables. The restart replays it: latest values,
 * revisions, histories and every aggregate (value, revision, seq) as
 * before the kill; and the next update takes the next seq.
 */
START_TEST(test_kill_before_checkpoint)
{
	struct feed *f = &feed;
	struct model m = { 0 };
	struct store_state ss;
	struct recset snap;
	const struct rec *r;
	uint64_t high, seq;
	char what[64];

	daemon_up(NO_CHECKPOINT);
	feed_open(f, 0);
	feed_warm_up(f, &m);
	send_batch(kill_first, 3, &m);
	send_batch(kill_second, 3, &m);
	feed_sync(f, &m);
	high = f->last;
	feed_close(f);

	/* The scenario holds: acknowledged, logged, in no table. */
	store_state_read(&ss);
	ck_assert_uint_eq(ss.applied, 0);
	ck_assert_uint_eq(ss.stat.nhist, m.nobs);
	ck_assert_uint_eq(ss.last, m.nobs);
	ck_assert_uint_eq(ss.stat.nobs, 0);
	ck_assert_uint_eq(ss.stat.naggs, 0);

	daemon_kill();
	daemon_restart();
	/* The restart checkpointed what it replayed. */
	store_state_read(&ss);
	ck_assert_uint_eq(ss.applied, m.nobs);
	ck_assert_uint_eq(ss.stat.nobs, m.nkeys);

	model_expect_query(&m);
	model_expect_history(&m);
	snapshot_recs(&snap, &seq);
	ck_assert_msg(seq == high,
	    "Snapshot seq %llu after the replay, %llu published before",
	    (unsigned long long)seq, (unsigned long long)high);
	snapshot_expect_feed(&snap, f, "after the replay");
	snapshot_expect_seqs(&snap, seq);
	recset_free(&snap);
	ctl_verify();
	/* Checked last: the checks above tell what a replay that did not
	 * happen, or went wrong, left wrong. */
	snprintf(
	    what, sizeof(what), "replayed %zu logged observations", m.nobs);
	ck_assert_msg(harness_daemon_log_has(&dm, what),
	    "no \"%s\" in the daemon's log", what);

	/* seq goes on from the last one published before the kill: the
	 * feed fails the test on any other first seq, and on a gap. */
	feed_open(f, high);
	send_batch(&kill_after, 1, &m);
	feed_sync(f, &m);
	ck_assert_uint_eq(f->first, high + 1);
	r = recset_find(&f->state, "agg/output_value/quantum/320583/2025");
	ck_assert_msg(
	    r != NULL && r->seq > high && r->revision == 1 && r->value == 5,
	    "Kunshan's quantum was not published after the restart");
	snapshot_recs(&snap, &seq);
	ck_assert_uint_eq(seq, f->last);
	snapshot_expect_feed(&snap, f, "after the next report");
	snapshot_expect_seqs(&snap, seq);
	recset_free(&snap);
	model_expect_query(&m);
	ctl_verify();
	feed_close(f);
}
END_TEST

/* Three stages: A is checkpointed, B is not when the daemon is killed, C
 * is sent after the restart and not checkpointed when it is killed again.
 * Huqiu's reports carry two rows: three records, two batches in each of A
 * and B; C is four records in three batches. */
static const struct rpt stage_a[] = {
	{ "b-01", "320583", 1,
	    { { "photonics", "output_value", 100, "CNY_100M", NULL } } },
	{ "b-02", "320505", 1,
	    { { "photonics", "output_value", 200, "CNY_100M", NULL },
		{ "materials", "output_value", 50, "CNY_100M", NULL } } },
};
static const struct rpt stage_b[] = {
	{ "b-01", "320583", 2,
	    { { "photonics", "output_value", 110, "CNY_100M", NULL } } },
	{ "b-02", "320505", 2,
	    { { "photonics", "output_value", 210, "CNY_100M", NULL },
		{ "hydrogen", "output_value", 30, "CNY_100M", NULL } } },
};
static const struct rpt stage_c[] = {
	{ "b-01", "320583", 3,
	    { { "photonics", "output_value", 1120, "CNY_100M", NULL } } },
	{ "b-02", "320505", 3,
	    { { "hydrogen", "output_value", 35, "CNY_100M", NULL } } },
	{ "b-03", "320506", 1,
	    { { "quantum", "output_value", 7, "CNY_100M", NULL },
		{ "photonics", "output_value", 0.25, "CNY_100M", NULL } } },
};

/*
 * Killed after a partial checkpoint interval, twice: each restart replays
 * exactly the tail past "applied", in the batches it was stored in, and
 * checkpoints it; resent reports stay duplicates; at the end every value,
 * revision and history is right, the aggregates agree with the
 * observations and their seqs have no gap.
 */
START_TEST(test_kill_twice)
{
	struct model m = { 0 };
	struct store_state ss;
	struct recset snap;
	uint64_t seq;

	daemon_up(NO_CHECKPOINT);
	send_each(stage_a, 2, &m);
	harness_checkpoint(&dm);
	store_state_read(&ss);
	ck_assert_uint_eq(ss.applied, 3);
	send_each(stage_b, 2, &m);
	store_state_read(&ss);
	ck_assert_uint_eq(ss.applied, 3);
	ck_assert_uint_eq(ss.last, 6);

	daemon_kill();
	daemon_restart();
	store_state_read(&ss);
	ck_assert_uint_eq(ss.applied, 6);
	log_expect_replay(4, 6, 2);
	/* Acknowledged before the kill: a resend is a duplicate. */
	rpt_send(&stage_b[1]);
	ack_expect(DUPLICATE);
	send_each(stage_c, 3, &m);
	store_state_read(&ss);
	ck_assert_uint_eq(ss.applied, 6);

	daemon_kill();
	daemon_restart();
	store_state_read(&ss);
	ck_assert_uint_eq(ss.last, m.nobs);
	ck_assert_uint_eq(ss.stat.nhist, m.nobs);
	ck_assert_msg(ss.applied == ss.last,
	    "\"applied\" is %llu after the restart, the log ends at %llu",
	    (unsigned long long)ss.applied, (unsigned long long)ss.last);
	ck_assert_uint_eq(ss.stat.nobs, m.nkeys);

	model_expect_query(&m);
	model_expect_history(&m);
	ctl_verify();
	snapshot_recs(&snap, &seq);
	ck_assert_uint_gt(seq, 0);
	snapshot_expect_seqs(&snap, seq);
	store_state_read(&ss);
	ck_assert_uint_eq(ss.pub_seq, seq);
	recset_free(&snap);
	log_expect_replay(7, 10, 3);
}
END_TEST

static const struct rpt tail_reports[] = {
	{ "t-01", "320583", 1,
	    { { "photonics", "output_value", 10, "CNY_100M", NULL },
		{ "quantum", "output_value", 2.5, "CNY_100M", NULL } } },
	{ "t-01", "320583", 2,
	    { { "photonics", "output_value", 12, "CNY_100M", NULL } } },
};
/* Sent to the restarted daemon, and not checkpointed by it. */
static const struct rpt tail_more = { "t-01", "320583", 3,
	{ { "quantum", "output_value", 3, "CNY_100M", NULL } } };

/*
 * indicatorctl beside a daemon killed with acknowledged reports outside
 * the tables: it says so on stderr and exits 0, after passing over the
 * dead daemon's control socket (it must not wait the 60 s a live daemon's
 * checkpoint may take). Beside the restarted daemon, which it asks for a
 * checkpoint, it shows everything acknowledged, with no warning.
 */
START_TEST(test_ctl_warns_tail)
{
	static const char *const query[] = { "query", NULL };
	struct model m = { 0 };
	struct stat st;
	char control[700], count[64], *out, *err;
	int rc;

	daemon_up(NO_CHECKPOINT);
	send_each(tail_reports, 2, &m);
	daemon_kill();
	snprintf(control, sizeof(control), "%s/control", dm.data_dir);
	ck_assert_msg(stat(control, &st) == 0 && S_ISSOCK(st.st_mode),
	    "no stale control socket at %s", control);

	rc = harness_ctl_run(
	    NULL, dm.data_dir, query, &out, &err, CTL_TIMEOUT_S);
	ck_assert_msg(rc == 0, "indicatorctl query exited %d: %s", rc, err);
	ck_assert_msg(strstr(err, "not yet in the tables") != NULL,
	    "no warning about the log's tail: %s", err);
	snprintf(count, sizeof(count), "%zu acknowledged observations", m.nobs);
	ck_assert_msg(
	    strstr(err, count) != NULL, "want \"%s\": %s", count, err);
	ck_assert_msg(strstr(out, "(no observations)") != NULL,
	    "the tables were empty: %s", out);
	free(out);
	free(err);

	daemon_restart();
	send_batch(&tail_more, 1, &m);
	rc = harness_ctl_run(
	    NULL, dm.data_dir, query, &out, &err, CTL_TIMEOUT_S);
	ck_assert_msg(rc == 0, "indicatorctl query exited %d: %s", rc, err);
	ck_assert_msg(strstr(err, "not yet in the tables") == NULL,
	    "a warning beside a running daemon: %s", err);
	free(out);
	free(err);
	model_expect_query(&m);
}
END_TEST

/*
 * indicatorctl beside a running daemon that is slow to take the control
 * connection (stopped here for a second, as a loaded machine may keep it
 * for longer than the 300 ms indicatorctl once allowed): it waits, asks
 * for the checkpoint and shows everything acknowledged, with no warning,
 * instead of taking the daemon for gone and reading the tables without
 * their checkpoint.
 */
START_TEST(test_ctl_waits_for_busy_daemon)
{
	char log[700], *text;
	const char *argv[] = { INDICATORCTL_BIN, "-d", dm.data_dir, "query",
		NULL };
	struct model m = { 0 };
	pid_t pid;

	daemon_up(NO_CHECKPOINT);
	send_each(tail_reports, 2, &m);
	snprintf(log, sizeof(log), "%s/ctl.log", dm.dir);
	ck_assert_int_eq(kill(dm.pid, SIGSTOP), 0);
	pid = harness_spawn(argv, log);
	/* The daemon unresponsive for longer than the old limit: the
	 * condition under test, not a wait for an outcome. */
	harness_sleep_ms(1000);
	ck_assert_int_eq(kill(dm.pid, SIGCONT), 0);
	ck_assert_int_eq(harness_wait(pid, CTL_TIMEOUT_S), 0);
	text = harness_read_file(log);
	ck_assert_msg(strstr(text, "not yet in the tables") == NULL,
	    "a warning beside a running daemon: %s", text);
	free(text);
	model_expect_query(&m);
}
END_TEST

/* A store as format 1 left it: a "hist" database (and "obs"). */
static void
format1_make(const char *path)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { 4, "3205" }, v = { 2, "v1" };

	ck_assert_msg(mkdir(path, 0700) == 0 || errno == EEXIST, "mkdir %s: %s",
	    path, strerror(errno));
	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 8), 0);
	ck_assert_int_eq(mdb_env_open(env, path, 0, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "obs", MDB_CREATE, &dbi), 0);
	ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "hist", MDB_CREATE, &dbi), 0);
	ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* Whether the LMDB environment at path has the named database. */
static bool
lmdb_has(const char *path, const char *name)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	int rc;

	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 8), 0);
	ck_assert_int_eq(mdb_env_open(env, path, MDB_RDONLY, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	rc = mdb_dbi_open(txn, name, 0, &dbi);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	ck_assert_msg(
	    rc == 0 || rc == MDB_NOTFOUND, "%s: %s", name, mdb_strerror(rc));
	return rc == 0;
}

/*
 * A store of format 1 is refused, not half read: by store_open (read-write
 * and read-only), by the daemon (which exits non-zero saying so) and by
 * indicatorctl; and it is left as it was.
 */
START_TEST(test_format1_refused)
{
	static const char *const query[] = { "query", NULL };
	const char *argv[] = { INDICATORD_BIN, "-c", NULL, NULL };
	struct store_opts opts = { 0 };
	struct store *s;
	char err[512], *text;
	int rc;

	harness_daemon_init(&dm, NULL);
	format1_make(dm.data_dir);

	for (int ro = 0; ro <= 1; ro++) {
		err[0] = '\0';
		opts.dir = dm.data_dir;
		opts.readonly = ro;
		s = store_open(&opts, err, sizeof(err));
		ck_assert_msg(s == NULL,
		    "store_open (readonly %d) took a store "
		    "of format 1",
		    ro);
		ck_assert_msg(strstr(err, "format 1") != NULL,
		    "store_open (readonly %d): %s", ro, err);
	}

	argv[2] = dm.conf;
	rc = harness_run(argv, NULL, &text, CTL_TIMEOUT_S);
	ck_assert_msg(rc != 0, "indicatord started on a store of format 1");
	ck_assert_msg(strstr(text, "format 1") != NULL,
	    "indicatord exited %d without naming format 1: %s", rc, text);
	free(text);

	rc = harness_ctl_run(
	    NULL, dm.data_dir, query, NULL, &text, CTL_TIMEOUT_S);
	ck_assert_msg(rc != 0, "indicatorctl read a store of format 1");
	ck_assert_msg(strstr(text, "format 1") != NULL,
	    "indicatorctl exited %d without naming format 1: %s", rc, text);
	free(text);

	ck_assert(lmdb_has(dm.data_dir, "hist"));
	ck_assert_msg(!lmdb_has(dm.data_dir, "log"),
	    "a log was added to a store of format 1");
}
END_TEST

/*
 * A map that must grow under load grows ahead of need: no batch fills it,
 * so none is redone and nothing acknowledged since the checkpoint is
 * replayed (with checkpoints put off, a replay would be all of it). 150
 * reports of 96 observations need about 2 MiB: the 1 MiB map must grow.
 */
#define GROW_REPORTS 150
#define GROW_MONTHS 12

START_TEST(test_map_grows_without_replay)
{
	static const char *const inds[] = { "materials", "photonics",
		"metaverse", "hydrogen", "digifin", "cellgene", "aerospace",
		"quantum" };
	enum { NOBS = 8 * GROW_MONTHS };
	Indicator__Observation obs[NOBS], *ptrs[NOBS];
	char periods[NOBS][16];
	char *log;

	daemon_up("[daemon]\nmap_size_mb = 1\nmap_max_mb = 64\n"
		  "checkpoint_idle_ms = 0\ncheckpoint_ms = 3600000\n");
	for (uint64_t seq = 1; seq <= GROW_REPORTS; seq++) {
		Indicator__Report r = INDICATOR__REPORT__INIT;

		for (size_t i = 0; i < NOBS; i++) {
			indicator__observation__init(&obs[i]);
			/* A year of months per report, five years over and
			 * over: revisions as well as new keys. */
			snprintf(periods[i], sizeof(periods[i]), "%d-%02zu",
			    2020 + (int)(seq % 5), i % GROW_MONTHS + 1);
			obs[i].industry = (char *)inds[i / GROW_MONTHS];
			obs[i].metric = "output_value";
			obs[i].period = periods[i];
			obs[i].value = (double)(seq * 1000 + i) / 100.0;
			obs[i].unit = "CNY_100M";
			obs[i].status = INDICATOR__OBS_STATUS__PROVISIONAL;
			ptrs[i] = &obs[i];
		}
		r.agent_id = "grow-01";
		r.district = "320505";
		r.epoch = 1;
		r.seq = seq;
		r.sent_at_ms = harness_now_ms();
		r.n_observations = NOBS;
		r.observations = ptrs;
		harness_expect_ack(harness_send_report(sock, &r, 10000),
		    INDICATOR__ACK_STATUS__ACCEPTED, NULL);
	}
	log = harness_daemon_log(&dm);
	ck_assert_msg(
	    strstr(log, "grown to") != NULL, "the map never grew:\n%s", log);
	ck_assert_msg(strstr(log, "replayed") == NULL,
	    "a batch was redone and the log replayed:\n%s", log);
	free(log);
	/* And what was acknowledged is all there. */
	harness_checkpoint(&dm);
	ctl_verify();
}
END_TEST

/* Copies every entry of name in from into the same-named database of
 * to. */
static void
lmdb_copy(MDB_txn *from, MDB_txn *to, const char *name)
{
	MDB_dbi a, b;
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	ck_assert_int_eq(mdb_dbi_open(from, name, 0, &a), 0);
	ck_assert_int_eq(mdb_dbi_open(to, name, MDB_CREATE, &b), 0);
	ck_assert_int_eq(mdb_cursor_open(from, a, &c), 0);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
		ck_assert_int_eq(mdb_put(to, b, &k, &v, 0), 0);
	ck_assert_int_eq(rc, MDB_NOTFOUND);
	mdb_cursor_close(c);
}

/* Takes the checksums (format 4) off every record of the databases of
 * the environment in dir, and its meta "format": the store as format 3
 * wrote it. */
static void
unseal_env(const char *dir)
{
	static const char *const names[] = { "log", "seq", "reject", "meta",
		"stage", "staged", "obs", "agg" };
	MDB_env *env;
	MDB_txn *txn;

	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 16), 0);
	ck_assert_int_eq(mdb_env_open(env, dir, 0, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		MDB_dbi dbi;
		MDB_cursor *c;
		MDB_val k, v, nk, nv;
		unsigned char kb[512], *vb = NULL;
		int rc;

		if (mdb_dbi_open(txn, names[i], 0, &dbi) != 0)
			continue;
		if (strcmp(names[i], "meta") == 0) {
			MDB_val fk = { 6, "format" };

			mdb_del(txn, dbi, &fk, NULL);
		}
		ck_assert_int_eq(mdb_cursor_open(txn, dbi, &c), 0);
		for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			ck_assert_uint_ge(v.mv_size, 4);
			ck_assert_uint_le(k.mv_size, sizeof(kb));
			memcpy(kb, k.mv_data, k.mv_size);
			vb = realloc(vb, v.mv_size);
			memcpy(vb, v.mv_data, v.mv_size);
			nk.mv_size = k.mv_size;
			nk.mv_data = kb;
			nv.mv_size = v.mv_size - 4;
			nv.mv_data = vb;
			ck_assert_int_eq(
			    mdb_cursor_put(c, &nk, &nv, MDB_CURRENT), 0);
		}
		ck_assert_int_eq(rc, MDB_NOTFOUND);
		mdb_cursor_close(c);
		free(vb);
	}
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* Makes the store in dir what 0.2 wrote (format 2): no checksums, the
 * tables folded back into data.mdb (meta included), tables/ gone. */
static void
format2_make(const char *dir)
{
	char tdir[700], path[800];
	MDB_env *env, *tenv;
	MDB_txn *txn, *ttxn;

	snprintf(tdir, sizeof(tdir), "%s/tables", dir);
	unseal_env(dir);
	unseal_env(tdir);
	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 8), 0);
	ck_assert_int_eq(mdb_env_open(env, dir, 0, 0600), 0);
	ck_assert_int_eq(mdb_env_create(&tenv), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(tenv, 8), 0);
	ck_assert_int_eq(mdb_env_open(tenv, tdir, MDB_RDONLY, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(tenv, NULL, MDB_RDONLY, &ttxn), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	lmdb_copy(ttxn, txn, "obs");
	lmdb_copy(ttxn, txn, "agg");
	lmdb_copy(ttxn, txn, "meta");
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_txn_abort(ttxn);
	mdb_env_close(tenv);
	mdb_env_close(env);
	snprintf(path, sizeof(path), "%s/data.mdb", tdir);
	ck_assert_int_eq(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/lock.mdb", tdir);
	unlink(path);
	ck_assert_int_eq(rmdir(tdir), 0);
}

/*
 * A format 2 store in the test's data directory: two batches sent (into
 * m), their aggregates and publish seq kept in *before and *seq0, the
 * daemon stopped, the store rewritten as format 2 wrote it.
 */
static void
format2_store(struct model *m, struct recset *before, uint64_t *seq0)
{
	daemon_up(NULL);
	send_batch(kill_first, 3, m);
	send_batch(kill_second, 3, m);
	snapshot_recs(before, seq0);
	ck_assert_int_eq(harness_daemon_stop(&dm, SIGTERM), 0);
	zmq_close(sock);
	sock = NULL;
	format2_make(dm.data_dir);
}

/*
 * Starts the daemon on the format 2 store format2_store() made and checks
 * the upgrade (to 3, then 4: checksums): nothing replayed, the tables gone
 * from the log's environment, the aggregates and publish seq those of
 * before, the model's values and histories; frees before.
 */
static void
upgrade_expect(struct model *m, struct recset *before, uint64_t seq0)
{
	struct recset after;
	uint64_t seq1;

	daemon_restart();
	ck_assert(harness_daemon_log_has(&dm, "upgraded to format 3"));
	ck_assert(harness_daemon_log_has(&dm, "upgraded to format 4"));
	ck_assert(!harness_daemon_log_has(&dm, "replayed"));
	ck_assert(!lmdb_has(dm.data_dir, "obs"));
	ck_assert(!lmdb_has(dm.data_dir, "agg"));
	snapshot_recs(&after, &seq1);
	ck_assert_uint_eq(seq1, seq0);
	for (size_t i = 0; i < before->n; i++) {
		const struct rec *r = recset_find(&after, before->v[i].topic);

		ck_assert_msg(r != NULL && rec_eq(r, &before->v[i]),
		    "%s changed by the upgrade", before->v[i].topic);
	}
	ck_assert_uint_eq(after.n, before->n);
	model_expect_query(m);
	model_expect_history(m);
	recset_free(before);
	recset_free(&after);
}

/*
 * A store of format 2 (0.2: the tables in data.mdb) is read as it is by
 * indicatorctl, and upgraded by the daemon: the tables move to tables/,
 * nothing is replayed, values, revisions, aggregates and seqs are as they
 * were, and ingest goes on.
 */
START_TEST(test_format2_upgraded)
{
	struct model m = { 0 };
	struct recset before;
	struct store_state ss;
	uint64_t seq0;
	char path[800];

	format2_store(&m, &before, &seq0);
	ck_assert(lmdb_has(dm.data_dir, "obs"));

	/* Read-only, as it is. */
	store_state_read(&ss);
	ck_assert_uint_eq(ss.applied, m.nobs);
	ck_assert_uint_eq(ss.stat.nobs, m.nkeys);
	model_expect_query(&m);
	snprintf(path, sizeof(path), "%s/tables", dm.data_dir);
	ck_assert_int_eq(access(path, F_OK), -1);

	/* The daemon upgrades it. */
	upgrade_expect(&m, &before, seq0);
	send_batch(&kill_after, 1, &m);
	model_expect_query(&m);
	ctl_verify();
}
END_TEST

/*
 * The format 2 upgrade killed between its two commits: the tables copied
 * into tables/ and committed there, not yet dropped from data.mdb.
 * killshim.c (LD_PRELOAD) kills the daemon as it starts dropping them, an
 * instant no timing hits. The next start finishes the upgrade: the values,
 * revisions, aggregates, publish seq and seqs are those of the format 2
 * store, which an uninterrupted upgrade keeps (test_format2_upgraded);
 * nothing is replayed, and verify and scrub find nothing wrong.
 */
START_TEST(test_format2_upgrade_killed)
{
	const char *argv[] = { INDICATORD_BIN, "-c", dm.conf, NULL };
	static const char *const scrub[] = { "scrub", NULL };
	struct model m = { 0 };
	struct recset before;
	char path[800], asan[600], *err = NULL, *out;
	const char *old_asan = getenv("ASAN_OPTIONS");
	uint64_t seq0;
	int rc;

	format2_store(&m, &before, &seq0);

	/* Killed inside the upgrade. ASan's runtime wants to come first
	 * among the preloaded libraries; the shim goes before it. */
	snprintf(asan, sizeof(asan), "%s%sverify_asan_link_order=0",
	    old_asan != NULL ? old_asan : "", old_asan != NULL ? ":" : "");
	setenv("LD_PRELOAD", KILLSHIM_SO, 1);
	setenv("INDICATOR_KILL_AT", "mdb_drop", 1);
	setenv("ASAN_OPTIONS", asan, 1);
	rc = harness_run(argv, NULL, &err, CTL_TIMEOUT_S);
	unsetenv("LD_PRELOAD");
	unsetenv("INDICATOR_KILL_AT");
	if (old_asan != NULL)
		setenv("ASAN_OPTIONS", old_asan, 1);
	else
		unsetenv("ASAN_OPTIONS");
	ck_assert_msg(rc == 128 + SIGKILL, "indicatord exited %d: %s", rc, err);
	ck_assert_msg(strstr(err, "upgraded to format 3") == NULL, "%s", err);
	free(err);
	/* Between the two commits: the tables in both environments. */
	ck_assert(lmdb_has(dm.data_dir, "obs"));
	ck_assert(lmdb_has(dm.data_dir, "agg"));
	snprintf(path, sizeof(path), "%s/tables", dm.data_dir);
	ck_assert(lmdb_has(path, "obs"));
	ck_assert(lmdb_has(path, "agg"));

	upgrade_expect(&m, &before, seq0);
	ctl_verify();
	out = harness_ctl(dm.data_dir, scrub, CTL_TIMEOUT_S);
	ck_assert_msg(strstr(out, " 0 damaged") != NULL, "scrub: %s", out);
	free(out);
	/* And ingest goes on. */
	send_batch(&kill_after, 1, &m);
	model_expect_query(&m);
	ctl_verify();
}
END_TEST

#define MID_KILLS 10
#define MID_REPORTS 20

/*
 * Killed at any instant, a checkpoint in flight included: checkpoints are
 * due every millisecond and after a millisecond idle, so the checkpoint
 * thread is writing the tables (their own environment) while reports are
 * acknowledged; each kill lands a random few milliseconds after the last
 * ack. Every restart replays from the "applied" of the last tables
 * transaction that committed: every acknowledged value is there, with its
 * revisions, and the aggregates pass verify.
 */
START_TEST(test_kill_mid_checkpoint)
{
	static const char *const industries[] = { "photonics", "materials",
		"hydrogen", "quantum" };
	static const char *const districts[] = { "320583", "320505", "320506" };
	static const char *const agents[] = { "m-01", "m-02", "m-03" };
	struct model m = { 0 };
	struct rpt r[MID_REPORTS];
	uint64_t seq[3] = { 0, 0, 0 };
	unsigned rnd = 14;

	daemon_up("[daemon]\ncheckpoint_idle_ms = 1\ncheckpoint_ms = 1\n");
	for (int k = 0; k < MID_KILLS; k++) {
		for (size_t i = 0; i < MID_REPORTS; i++) {
			size_t a = (size_t)rand_r(&rnd) % 3;

			memset(&r[i], 0, sizeof(r[i]));
			r[i].agent = agents[a];
			r[i].district = districts[a];
			r[i].seq = ++seq[a];
			for (size_t j = 0; j < 2; j++) {
				r[i].rows[j].industry =
				    industries[(size_t)rand_r(&rnd) % 4];
				r[i].rows[j].metric = "output_value";
				r[i].rows[j].value =
				    (double)(rand_r(&rnd) % 4000) / 4;
				r[i].rows[j].unit = "CNY_100M";
			}
			/* One key twice in a report would be refused. */
			if (strcmp(r[i].rows[0].industry,
				r[i].rows[1].industry) == 0)
				r[i].rows[1].industry = NULL;
		}
		/* In small groups, so that batches and checkpoints
		 * interleave. */
		for (size_t i = 0; i < MID_REPORTS; i += 4)
			send_batch(&r[i], 4, &m);
		harness_sleep_ms(rand_r(&rnd) % 8);
		daemon_kill();
		daemon_restart();
		model_expect_query(&m);
	}
	model_expect_history(&m);
	ctl_verify();
}
END_TEST

static Suite *
replay_suite(void)
{
	Suite *s = suite_create("replay");
	TCase *tc;

	tc = tcase_create("crash");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_kill_before_checkpoint);
	tcase_add_test(tc, test_kill_twice);
	tcase_add_test(tc, test_ctl_warns_tail);
	tcase_add_test(tc, test_ctl_waits_for_busy_daemon);
	tcase_add_test(tc, test_map_grows_without_replay);
	tcase_add_test(tc, test_kill_mid_checkpoint);
	suite_add_tcase(s, tc);

	tc = tcase_create("format");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_format1_refused);
	tcase_add_test(tc, test_format2_upgraded);
	tcase_add_test(tc, test_format2_upgrade_killed);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(replay_suite());
	int failed;

	setvbuf(stdout, NULL, _IOLBF, 0);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
