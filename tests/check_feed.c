/*
 * The live feed of the real daemon, as a subscriber sees it (PROTOCOL.md,
 * "Aggregates", "Topics", "Late joiners"): indicator-sub and the Python
 * example receive every update in seq order and end equal to a snapshot;
 * the aggregates hold the hand-computed figures; a revision publishes
 * exactly the keys it changed; seq keeps rising across a restart; a bad
 * SnapshotRequest gets an empty Snapshot; a subscriber that misses updates
 * notices the gap and catches up. Each test runs its own daemon on free
 * ports in a temporary directory.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <zmq.h>

#include "harness.h"
#include "indicator.pb-c.h"
#include "store.h"
#include "xmalloc.h"

#define ACK_TIMEOUT_MS 10000
#define SNAP_TIMEOUT_MS 10000
#define READY_TIMEOUT_MS 30000
#define RUN_TIMEOUT_S 90
#define OBS_MAX 64
#define ARGS_MAX 24
#define YEAR "2025"
#define LOG_TAIL 1500 /* bytes of a log in a failure message */

struct obs_spec {
	const char *industry;
	const char *metric;
	double value;
	const char *unit;
};

/* One aggregate as the tests compare them: from a JSON line, a Snapshot or
 * the store. */
struct rec {
	char topic[IND_TOPIC_MAX + 1];
	char source[16];
	char unit[IND_UNIT_MAX + 1];
	double value;
	double target;
	double progress;
	uint64_t reporting;
	uint64_t expected;
	uint64_t target_year;
	uint64_t revision;
	uint64_t seq;
};

struct recset {
	struct rec *v;
	size_t n;
	size_t cap;
};

/* What a subscriber's log says: the updates it applied, in order, and its
 * state at the end (each snapshot line starts it afresh). */
struct feed {
	struct recset updates;
	struct recset state;
	unsigned snapshots;
	unsigned gaps;
};

static struct daemon_proc dm;
static void *zctx;
static void *sock;

/* Kunshan's first report: 7 aggregates (district photonics, materials
 * and *, city photonics, materials and *, clusters). */
static const struct obs_spec r_kunshan[] = {
	{ "photonics", "output_value", 600, "CNY_100M" },
	{ "materials", "output_value", 150.5, "CNY_100M" },
};
/* Huqiu's: 5 for output_value (district photonics and *, city photonics
 * and *, clusters: the city's photonics reaches 1000) and 4 for
 * chain_leaders (district materials and *, city materials and *). */
static const struct obs_spec r_huqiu[] = {
	{ "photonics", "output_value", 400, "CNY_100M" },
	{ "materials", "chain_leaders", 3, "count" },
};

static void
setup_extra(const char *extra)
{
	harness_daemon_init(&dm, extra);
	harness_daemon_start(&dm);
	zctx = zmq_ctx_new();
	ck_assert_ptr_nonnull(zctx);
	sock = harness_client_new(zctx, dm.ingest);
}

static void
setup(void)
{
	setup_extra(NULL);
}

/* A PUB socket that keeps one message: it drops the rest of a burst. */
static void
setup_tiny_hwm(void)
{
	setup_extra("[daemon]\npub_hwm = 1\n");
}

/* Every test also checks that the daemon stops cleanly on SIGTERM. */
static void
teardown(void)
{
	int status;

	zmq_close(sock);
	zmq_ctx_term(zctx);
	status = harness_daemon_stop(&dm, SIGTERM);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "indicatord did not exit 0 on SIGTERM (status %d)", status);
	harness_daemon_cleanup(&dm);
}

/* Sends a report of year-YEAR observations and asserts it was ACCEPTED. */
static void
report(const char *agent, const char *district, uint64_t seq,
    const struct obs_spec *obs, size_t n)
{
	Indicator__Report r = INDICATOR__REPORT__INIT;
	Indicator__Observation o[OBS_MAX], *op[OBS_MAX];
	Indicator__Ack *ack;
	char *log;

	ck_assert_uint_le(n, OBS_MAX);
	for (size_t i = 0; i < n; i++) {
		indicator__observation__init(&o[i]);
		o[i].industry = (char *)obs[i].industry;
		o[i].metric = (char *)obs[i].metric;
		o[i].period = (char *)YEAR;
		o[i].value = obs[i].value;
		o[i].unit = (char *)obs[i].unit;
		o[i].status = INDICATOR__OBS_STATUS__PROVISIONAL;
		op[i] = &o[i];
	}
	r.agent_id = (char *)agent;
	r.district = (char *)district;
	r.epoch = 1;
	r.seq = seq;
	r.sent_at_ms = (int64_t)time(NULL) * 1000;
	r.n_observations = n;
	r.observations = op;
	ack = harness_send_report(sock, &r, ACK_TIMEOUT_MS);
	if (ack == NULL) {
		log = harness_daemon_log(&dm);
		ck_abort_msg("no Ack for %s seq %llu; daemon log: %s", agent,
		    (unsigned long long)seq, log);
	}
	ck_assert_msg(ack->status == INDICATOR__ACK_STATUS__ACCEPTED,
	    "report %s seq %llu: status %d code \"%s\" (%zu errors, first "
	    "\"%s\")",
	    agent, (unsigned long long)seq, (int)ack->status, ack->code,
	    ack->n_errors, ack->n_errors ? ack->errors[0]->code : "");
	indicator__ack__free_unpacked(ack, NULL);
}

static void
report_kunshan(uint64_t seq, const char *industry, double value)
{
	const struct obs_spec o = { industry, "output_value", value,
		"CNY_100M" };

	report("ks-01", "320583", seq, &o, 1);
}

static void
recset_free(struct recset *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static struct rec *
recset_find(const struct recset *s, const char *topic)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i].topic, topic) == 0)
			return &s->v[i];
	return NULL;
}

static void
recset_append(struct recset *s, const struct rec *r)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = *r;
}

/* Replaces the record of r's topic, or adds it. */
static void
recset_put(struct recset *s, const struct rec *r)
{
	struct rec *old = recset_find(s, r->topic);

	if (old != NULL)
		*old = *r;
	else
		recset_append(s, r);
}

static void
rec_from_agg(struct rec *r, const char *source, const Indicator__Aggregate *a)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->topic, sizeof(r->topic), "agg/%s/%s/%s/%s", a->metric,
	    a->industry, a->scope, a->period);
	snprintf(r->source, sizeof(r->source), "%s", source);
	snprintf(r->unit, sizeof(r->unit), "%s", a->unit);
	r->value = a->value;
	r->target = a->target;
	r->progress = a->progress;
	r->reporting = a->districts_reporting;
	r->expected = a->districts_expected;
	r->target_year = a->target_year;
	r->revision = a->revision;
	r->seq = a->seq;
}

/* The text after "key": in a flat JSON object (either spacing), or NULL. */
static const char *
json_at(const char *line, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	if ((p = strstr(line, pat)) == NULL)
		return NULL;
	p += strlen(pat);
	return p + strspn(p, " ");
}

static void
json_str(const char *line, const char *key, char *buf, size_t len)
{
	const char *p = json_at(line, key);
	size_t n;

	ck_assert_msg(p != NULL && *p == '"', "no string %s in: %s", key, line);
	n = strcspn(p + 1, "\"");
	ck_assert_msg(n < len, "%s too long in: %s", key, line);
	memcpy(buf, p + 1, n);
	buf[n] = '\0';
}

static double
json_num(const char *line, const char *key)
{
	const char *p = json_at(line, key);
	char *end;
	double v;

	ck_assert_msg(p != NULL, "no %s in: %s", key, line);
	v = strtod(p, &end);
	ck_assert_msg(end != p, "%s is not a number in: %s", key, line);
	return v;
}

static uint64_t
json_u64(const char *line, const char *key)
{
	const char *p = json_at(line, key);
	char *end;
	uint64_t v;

	ck_assert_msg(p != NULL, "no %s in: %s", key, line);
	v = strtoull(p, &end, 10);
	ck_assert_msg(
	    end != p && *end != '.', "%s is not an integer in: %s", key, line);
	return v;
}

/* A 64-bit integer, written as a JSON string of digits. */
static uint64_t
json_u64str(const char *line, const char *key)
{
	const char *p = json_at(line, key);
	char *end;
	uint64_t v;

	ck_assert_msg(
	    p != NULL && *p == '"', "%s is not a string in: %s", key, line);
	v = strtoull(p + 1, &end, 10);
	ck_assert_msg(end != p + 1 && *end == '"',
	    "%s is not a string of digits in: %s", key, line);
	return v;
}

/* True when key's value is null. */
static bool
json_null(const char *line, const char *key)
{
	const char *p = json_at(line, key);

	ck_assert_msg(p != NULL, "no %s in: %s", key, line);
	return strncmp(p, "null", 4) == 0;
}

static void
rec_parse(const char *line, struct rec *r)
{
	char metric[IND_CODE_MAX + 1], industry[IND_CODE_MAX + 1],
	    scope[IND_CODE_MAX + 1], period[IND_PERIOD_MAX + 1],
	    topic[IND_TOPIC_MAX + 1];

	memset(r, 0, sizeof(*r));
	json_str(line, "source", r->source, sizeof(r->source));
	json_str(line, "topic", r->topic, sizeof(r->topic));
	json_str(line, "unit", r->unit, sizeof(r->unit));
	json_str(line, "metric", metric, sizeof(metric));
	json_str(line, "industry", industry, sizeof(industry));
	json_str(line, "scope", scope, sizeof(scope));
	json_str(line, "period", period, sizeof(period));
	snprintf(topic, sizeof(topic), "agg/%s/%s/%s/%s", metric, industry,
	    scope, period);
	ck_assert_msg(strcmp(topic, r->topic) == 0,
	    "topic and fields disagree: %s", line);
	r->value = json_num(line, "value");
	/* No target: all three null (the Aggregate's zeros), never 0. */
	if (json_null(line, "target_year")) {
		ck_assert_msg(
		    json_null(line, "target") && json_null(line, "progress"),
		    "a null target_year with a target or progress: %s", line);
	} else {
		r->target = json_num(line, "target");
		r->progress = json_num(line, "progress");
		r->target_year = json_u64(line, "target_year");
		ck_assert_msg(r->target_year != 0, "target_year 0: %s", line);
	}
	r->reporting = json_u64(line, "districts_reporting");
	r->expected = json_u64(line, "districts_expected");
	r->revision = json_u64str(line, "revision");
	r->seq = json_u64str(line, "seq");
	(void)json_u64str(line, "updated_at_ms");
}

/* Parses a subscriber's log (stdout and stderr together), complete lines
 * only. */
static void
feed_parse(const char *text, struct feed *f)
{
	char *copy = xstrdup(text), *line, *nl;
	struct rec r;

	memset(f, 0, sizeof(*f));
	for (line = copy; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		*nl = '\0';
		if (strstr(line, ": snapshot of ") != NULL) {
			f->state.n = 0;
			f->snapshots++;
		} else if (strstr(line, ": gap in seq (expected ") != NULL) {
			f->gaps++;
		} else if (line[0] == '{') {
			rec_parse(line, &r);
			if (strcmp(r.source, "update") == 0)
				recset_append(&f->updates, &r);
			else
				ck_assert_str_eq(r.source, "snapshot");
			recset_put(&f->state, &r);
		}
	}
	free(copy);
}

static void
feed_free(struct feed *f)
{
	recset_free(&f->updates);
	recset_free(&f->state);
}

static void
feed_read(const char *log, struct feed *f)
{
	char *text = harness_read_file(log);

	ck_assert_msg(text != NULL, "no log %s", log);
	feed_parse(text, f);
	free(text);
}

/* Asks the daemon's snapshot socket for prefix; caller frees. */
static Indicator__Snapshot *
snapshot_get(const char *prefix)
{
	Indicator__SnapshotRequest req = INDICATOR__SNAPSHOT_REQUEST__INIT;
	Indicator__Snapshot *snap;
	uint8_t buf[256];
	const void *frames[1] = { buf };
	size_t lens[1];
	zmq_pollitem_t item;
	zmq_msg_t msg;
	void *s = harness_client_new(zctx, dm.snapshot);

	req.prefix = (char *)prefix;
	ck_assert_uint_le(
	    indicator__snapshot_request__get_packed_size(&req), sizeof(buf));
	lens[0] = indicator__snapshot_request__pack(&req, buf);
	harness_client_send(s, frames, lens, 1);
	item = (zmq_pollitem_t){ s, 0, ZMQ_POLLIN, 0 };
	ck_assert_msg(zmq_poll(&item, 1, SNAP_TIMEOUT_MS) == 1,
	    "no answer from the snapshot socket");
	zmq_msg_init(&msg);
	ck_assert(zmq_msg_recv(&msg, s, 0) != -1);
	ck_assert_msg(!zmq_msg_more(&msg), "a Snapshot of more than one frame");
	snap = indicator__snapshot__unpack(
	    NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
	zmq_msg_close(&msg);
	zmq_close(s);
	ck_assert_msg(snap != NULL, "the Snapshot does not decode");
	return snap;
}

static void
snapshot_recs(const char *prefix, struct recset *out, uint64_t *seq)
{
	Indicator__Snapshot *snap = snapshot_get(prefix);
	struct rec r;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < snap->n_aggregates; i++) {
		rec_from_agg(&r, "snapshot", snap->aggregates[i]);
		recset_append(out, &r);
	}
	if (seq != NULL)
		*seq = snap->seq;
	indicator__snapshot__free_unpacked(snap, NULL);
}

static uint64_t
snapshot_seq(void)
{
	Indicator__Snapshot *snap = snapshot_get("");
	uint64_t seq = snap->seq;

	indicator__snapshot__free_unpacked(snap, NULL);
	return seq;
}

static int
store_collect(const char *topic, const void *buf, size_t len, void *arg)
{
	Indicator__Aggregate *a = indicator__aggregate__unpack(NULL, len, buf);
	struct rec r;

	ck_assert_msg(a != NULL, "stored aggregate %s does not decode", topic);
	rec_from_agg(&r, "store", a);
	ck_assert_str_eq(r.topic, topic);
	recset_append(arg, &r);
	indicator__aggregate__free_unpacked(a, NULL);
	return 0;
}

/* The aggregates under prefix as stored, read beside the running daemon. */
static void
store_recs(const char *prefix, struct recset *out)
{
	struct store_opts opts = { 0 };
	struct store *st;
	struct store_txn *t;
	char err[256];

	memset(out, 0, sizeof(*out));
	if (dm.pid != 0)
		harness_checkpoint(&dm);
	opts.dir = dm.data_dir;
	opts.readonly = true;
	st = store_open(&opts, err, sizeof(err));
	ck_assert_msg(st != NULL, "store_open: %s", err);
	t = store_txn_begin(st, false);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(store_agg_scan(t, prefix, store_collect, out), 0);
	store_txn_abort(&t);
	store_close(&st);
}

/* Asserts that two sets of aggregates hold the same topics with the same
 * content, revision and seq. */
static void
recs_expect_equal(
    const struct recset *got, const struct recset *want, const char *what)
{
	for (size_t i = 0; i < want->n; i++) {
		const struct rec *w = &want->v[i];
		const struct rec *g = recset_find(got, w->topic);

		ck_assert_msg(g != NULL, "%s: %s missing", what, w->topic);
		ck_assert_msg(g->value == w->value && g->target == w->target &&
				  g->progress == w->progress &&
				  g->reporting == w->reporting &&
				  g->expected == w->expected &&
				  g->target_year == w->target_year &&
				  strcmp(g->unit, w->unit) == 0,
		    "%s: %s has value %.17g %s (%llu/%llu, target %g by %llu, "
		    "progress %.17g), want %.17g %s (%llu/%llu, target %g by "
		    "%llu, progress %.17g)",
		    what, w->topic, g->value, g->unit,
		    (unsigned long long)g->reporting,
		    (unsigned long long)g->expected, g->target,
		    (unsigned long long)g->target_year, g->progress, w->value,
		    w->unit, (unsigned long long)w->reporting,
		    (unsigned long long)w->expected, w->target,
		    (unsigned long long)w->target_year, w->progress);
		ck_assert_msg(g->revision == w->revision && g->seq == w->seq,
		    "%s: %s has revision %llu seq %llu, want %llu and %llu",
		    what, w->topic, (unsigned long long)g->revision,
		    (unsigned long long)g->seq, (unsigned long long)w->revision,
		    (unsigned long long)w->seq);
	}
	ck_assert_msg(got->n == want->n, "%s: %zu aggregates, want %zu", what,
	    got->n, want->n);
}

/* Asserts the updates have seq first, first + 1, ... with no gap. */
static void
updates_expect_consecutive(const struct recset *u, uint64_t first)
{
	for (size_t i = 0; i < u->n; i++)
		ck_assert_msg(u->v[i].seq == first + i,
		    "update %zu (%s) has seq %llu, want %llu", i, u->v[i].topic,
		    (unsigned long long)u->v[i].seq,
		    (unsigned long long)(first + i));
}

/* The log of a subscriber in the daemon's directory. */
static void
sub_log_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s.log", dm.dir, name);
}

/* The end of a log, short enough for a Check message. */
static const char *
log_tail(const char *text)
{
	size_t len;

	if (text == NULL)
		return "(no log)";
	len = strlen(text);
	return len > LOG_TAIL ? text + len - LOG_TAIL : text;
}

/*
 * Starts indicator-sub with the daemon's config and args (NULL-ended),
 * logging to log, and waits until it has its first snapshot.
 */
static pid_t
sub_start(const char *log, const char *const args[])
{
	const char *argv[ARGS_MAX];
	size_t n = 0;
	pid_t pid;

	argv[n++] = SUB_BIN;
	argv[n++] = "-c";
	argv[n++] = dm.conf;
	for (size_t i = 0; args[i] != NULL; i++) {
		ck_assert_uint_lt(n, ARGS_MAX - 1);
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	pid = harness_spawn(argv, log);
	harness_wait_log(log, "indicator-sub: snapshot of ", READY_TIMEOUT_MS);
	return pid;
}

static void
sub_expect_exit0(pid_t pid, const char *log)
{
	int rc = harness_wait(pid, RUN_TIMEOUT_S);
	char *text;

	if (rc == 0)
		return;
	text = harness_read_file(log);
	ck_abort_msg("subscriber exited %d: %s", rc, log_tail(text));
}

/* Runs indicator-sub --once with args against the daemon; returns its
 * stdout (caller frees). */
static char *
sub_once(const char *const args[])
{
	const char *argv[ARGS_MAX];
	char *out, *err;
	size_t n = 0;
	int rc;

	argv[n++] = SUB_BIN;
	argv[n++] = "--publish";
	argv[n++] = dm.publish;
	argv[n++] = "--snapshot";
	argv[n++] = dm.snapshot;
	argv[n++] = "--once";
	for (size_t i = 0; args[i] != NULL; i++) {
		ck_assert_uint_lt(n, ARGS_MAX - 1);
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	rc = harness_run(argv, &out, &err, RUN_TIMEOUT_S);
	ck_assert_msg(rc == 0, "indicator-sub --once exited %d: %s", rc, err);
	free(err);
	return out;
}

/*
 * A subscriber started before any report receives every update, in seq
 * order with no gap, and ends with what a snapshot says.
 */
START_TEST(test_live_updates)
{
	static const char *const args[] = { "--json", "--count", "16",
		"--timeout", "60", NULL };
	struct recset snap;
	struct feed f;
	char log[700];
	uint64_t seq;
	pid_t pid;

	sub_log_path(log, sizeof(log), "sub");
	pid = sub_start(log, args);
	report("ks-01", "320583", 1, r_kunshan, 2);
	report("hq-01", "320505", 1, r_huqiu, 2);
	sub_expect_exit0(pid, log);

	snapshot_recs("", &snap, &seq);
	ck_assert_uint_eq(seq, 16);
	feed_read(log, &f);
	ck_assert_uint_eq(f.snapshots, 1);
	ck_assert_uint_eq(f.updates.n, 16);
	updates_expect_consecutive(&f.updates, 1);
	recs_expect_equal(&f.state, &snap, "subscriber vs snapshot");
	feed_free(&f);
	recset_free(&snap);
}
END_TEST

/* The live tables: what each shows once Kunshan has reported. */
static const struct {
	const char *mode;
	const char *title;
	const char *row;
} live_tables[] = {
	{ "--table", "City figures", "750.50" },
	{ "--progress", "City progress toward the plan's targets", "15.0%" },
};

/*
 * The tables follow the updates: printed after the snapshot and again
 * after changes, one after the other when stdout is not a terminal.
 */
START_TEST(test_live_tables)
{
	const char *const args[] = { live_tables[_i].mode, "--count", "7",
		"--timeout", "60", NULL };
	char log[700], *text, *first, *last, *p;
	pid_t pid;

	sub_log_path(log, sizeof(log), "sub");
	pid = sub_start(log, args);
	report("ks-01", "320583", 1, r_kunshan, 2);
	sub_expect_exit0(pid, log);
	text = harness_read_file(log);
	ck_assert_msg(strstr(text, "\033[") == NULL,
	    "%s: screen control sent to a file: %s", live_tables[_i].mode,
	    log_tail(text));
	/* The first table is of the empty snapshot. */
	first = strstr(text, live_tables[_i].title);
	last = first;
	while (last != NULL && (p = strstr(last + 1, live_tables[_i].title)))
		last = p;
	ck_assert_msg(first != NULL && last != first &&
			  strstr(last, live_tables[_i].row) != NULL,
	    "%s: want a table after the updates showing \"%s\": %s",
	    live_tables[_i].mode, live_tables[_i].row, log_tail(text));
	free(text);
}
END_TEST

/* An expected aggregate, checked after a given stage of reports. */
struct agg_case {
	int stage;
	const char *topic;
	double value;
	const char *unit;
	unsigned reporting;
	unsigned expected;
	double target;
	unsigned target_year;
	double progress;
	uint64_t revision;
};

/*
 * Stage 0: Kunshan photonics 600, materials 150.5. Stage 1: Huqiu
 * photonics 399.5, materials 49.5, chain_leaders materials 3. Stage 2:
 * Huqiu revises photonics to 400: the city's photonics is then exactly
 * 1000, a 千亿级 cluster.
 */
static const struct agg_case agg_cases[] = {
	{ 0, "agg/output_value/photonics/city/2025", 600, "CNY_100M", 1, 10, 0,
	    0, 0, 1 },
	{ 0, "agg/output_value/*/city/2025", 750.5, "CNY_100M", 1, 10, 5000,
	    2030, 750.5 / 5000, 1 },
	{ 0, "agg/output_value/*/320583/2025", 750.5, "CNY_100M", 1, 1, 0, 0, 0,
	    1 },
	{ 0, "agg/clusters_100bn/*/city/2025", 0, "count", 1, 10, 1, 2035, 0,
	    1 },
	{ 1, "agg/output_value/photonics/city/2025", 999.5, "CNY_100M", 2, 10,
	    0, 0, 0, 2 },
	{ 1, "agg/output_value/materials/city/2025", 200, "CNY_100M", 2, 10, 0,
	    0, 0, 2 },
	{ 1, "agg/output_value/*/city/2025", 1199.5, "CNY_100M", 2, 10, 5000,
	    2030, 1199.5 / 5000, 2 },
	{ 1, "agg/output_value/*/320583/2025", 750.5, "CNY_100M", 1, 1, 0, 0, 0,
	    1 },
	{ 1, "agg/output_value/*/320505/2025", 449, "CNY_100M", 1, 1, 0, 0, 0,
	    1 },
	{ 1, "agg/output_value/photonics/320505/2025", 399.5, "CNY_100M", 1, 1,
	    0, 0, 0, 1 },
	{ 1, "agg/chain_leaders/*/city/2025", 3, "count", 1, 10, 20, 2030,
	    3.0 / 20, 1 },
	{ 1, "agg/chain_leaders/materials/320505/2025", 3, "count", 1, 1, 0, 0,
	    0, 1 },
	/* 999.5 < 1000: still none, but a second district reports. */
	{ 1, "agg/clusters_100bn/*/city/2025", 0, "count", 2, 10, 1, 2035, 0,
	    2 },
	{ 2, "agg/output_value/photonics/city/2025", 1000, "CNY_100M", 2, 10, 0,
	    0, 0, 3 },
	{ 2, "agg/output_value/*/city/2025", 1200, "CNY_100M", 2, 10, 5000,
	    2030, 1200.0 / 5000, 3 },
	{ 2, "agg/output_value/*/320505/2025", 449.5, "CNY_100M", 1, 1, 0, 0, 0,
	    2 },
	{ 2, "agg/clusters_100bn/*/city/2025", 1, "count", 2, 10, 1, 2035, 1,
	    3 },
	{ 2, "agg/output_value/materials/city/2025", 200, "CNY_100M", 2, 10, 0,
	    0, 0, 2 },
};

static void
agg_cases_check(int stage)
{
	struct recset snap;

	snapshot_recs("", &snap, NULL);
	for (size_t i = 0; i < sizeof(agg_cases) / sizeof(agg_cases[0]); i++) {
		const struct agg_case *c = &agg_cases[i];
		const struct rec *r;

		if (c->stage != stage)
			continue;
		r = recset_find(&snap, c->topic);
		ck_assert_msg(r != NULL, "stage %d: no %s", stage, c->topic);
		ck_assert_msg(r->value == c->value,
		    "stage %d: %s = %.17g, want %.17g", stage, c->topic,
		    r->value, c->value);
		ck_assert_str_eq(r->unit, c->unit);
		ck_assert_msg(
		    r->reporting == c->reporting && r->expected == c->expected,
		    "stage %d: %s reported by %llu/%llu, want %u/%u", stage,
		    c->topic, (unsigned long long)r->reporting,
		    (unsigned long long)r->expected, c->reporting, c->expected);
		ck_assert_msg(r->target == c->target &&
				  r->target_year == c->target_year &&
				  r->progress == c->progress,
		    "stage %d: %s target %g by %llu progress %.17g, want %g "
		    "by %u progress %.17g",
		    stage, c->topic, r->target,
		    (unsigned long long)r->target_year, r->progress, c->target,
		    c->target_year, c->progress);
		ck_assert_msg(r->revision == c->revision,
		    "stage %d: %s revision %llu, want %llu", stage, c->topic,
		    (unsigned long long)r->revision,
		    (unsigned long long)c->revision);
	}
	recset_free(&snap);
}

/* The aggregates hold the figures computed by hand; the tables show them. */
START_TEST(test_hand_computed)
{
	static const struct obs_spec huqiu[] = {
		{ "photonics", "output_value", 399.5, "CNY_100M" },
		{ "materials", "output_value", 49.5, "CNY_100M" },
		{ "materials", "chain_leaders", 3, "count" },
	};
	static const struct obs_spec revise[] = {
		{ "photonics", "output_value", 400, "CNY_100M" },
	};
	static const char *const progress[] = { "--progress", NULL };
	static const char *const table[] = { "--table", NULL };
	char *out;

	report("ks-01", "320583", 1, r_kunshan, 2);
	agg_cases_check(0);
	report("hq-01", "320505", 1, huqiu, 3);
	agg_cases_check(1);
	report("hq-01", "320505", 2, revise, 1);
	agg_cases_check(2);

	out = sub_once(progress);
	ck_assert_msg(strstr(out, "City progress toward the plan's targets") &&
			  strstr(out, "24.0%") && strstr(out, "2/10") &&
			  strstr(out, "5000") && strstr(out, "2030") &&
			  strstr(out, "clusters_100bn"),
	    "progress table: %s", out);
	free(out);
	out = sub_once(table);
	ck_assert_msg(strstr(out, "all industries") &&
			  strstr(out, "photonics") && strstr(out, "1000") &&
			  strstr(out, "1200"),
	    "city table: %s", out);
	free(out);
}
END_TEST

/* A late joiner's snapshot equals the stored aggregates, whole or under a
 * prefix. */
START_TEST(test_late_joiner)
{
	static const char *const all[] = { "--json", NULL };
	static const char *const some[] = { "agg/output_value/*/city/",
		"agg/chain_leaders/", NULL };
	struct recset stored, part;
	struct feed f;
	char *out;

	report("ks-01", "320583", 1, r_kunshan, 2);
	report("hq-01", "320505", 1, r_huqiu, 2);
	report_kunshan(2, "photonics", 650);

	out = sub_once(all);
	feed_parse(out, &f);
	free(out);
	store_recs("", &stored);
	ck_assert_uint_eq(f.updates.n, 0);
	ck_assert_uint_gt(stored.n, 0);
	recs_expect_equal(&f.state, &stored, "--once vs store");
	feed_free(&f);
	recset_free(&stored);

	out = sub_once(some);
	feed_parse(out, &f);
	free(out);
	store_recs("agg/output_value/*/city/", &stored);
	store_recs("agg/chain_leaders/", &part);
	for (size_t i = 0; i < part.n; i++)
		recset_append(&stored, &part.v[i]);
	ck_assert_uint_eq(stored.n, 1 + 4);
	recs_expect_equal(&f.state, &stored, "--once PREFIX... vs store");
	feed_free(&f);
	recset_free(&stored);
	recset_free(&part);
}
END_TEST

/* publications_unheard of indicatorctl status --json. */
static unsigned long long
unheard(void)
{
	static const char *const args[] = { "status", "--json", NULL };
	char *out = NULL, buf[32];
	int rc = harness_ctl_run(dm.conf, dm.data_dir, args, &out, NULL, 30);

	ck_assert_msg(rc == 0, "status exited %d", rc);
	ck_assert_msg(
	    harness_json_get(out, "publications_unheard", buf, sizeof(buf)),
	    "no publications_unheard in %s", out);
	free(out);
	return strtoull(buf, NULL, 10);
}

/*
 * The daemon sends only what some subscription takes (publications no
 * one subscribed to are counted as unheard): with nobody subscribed,
 * nothing goes out; each subscriber still gets every update under its
 * prefix, also after another subscriber of the same prefix has left; a
 * subscriber to everything sees no gap; each ends equal to the snapshot
 * of its prefix.
 */
START_TEST(test_subscriptions_followed)
{
	static const char *const leaders[] = { "--json", "--count", "8",
		"--timeout", "60", "agg/chain_leaders/", NULL };
	static const char *const leaders_short[] = { "--json", "--count", "4",
		"--timeout", "60", "agg/chain_leaders/", NULL };
	static const char *const all[] = { "--json", "--count", "13",
		"--timeout", "60", NULL };
	static const struct obs_spec more_leaders[] = {
		{ "materials", "chain_leaders", 5, "count" },
	};
	char log_a[700], log_b[700], log_c[700];
	struct recset snap;
	struct feed f;
	uint64_t seq;
	pid_t a, b, c;

	/* Nobody listens: Kunshan's 7 aggregates are not sent. */
	report("ks-01", "320583", 1, r_kunshan, 2);
	ck_assert_uint_eq(unheard(), 7);

	sub_log_path(log_a, sizeof(log_a), "sub-a");
	sub_log_path(log_b, sizeof(log_b), "sub-b");
	sub_log_path(log_c, sizeof(log_c), "sub-c");
	a = sub_start(log_a, leaders);
	c = sub_start(log_c, leaders_short);
	b = sub_start(log_b, all);
	/* Huqiu: 5 output_value and 4 chain_leaders aggregates. */
	report("hq-01", "320505", 1, r_huqiu, 2);
	sub_expect_exit0(c, log_c);
	/* C has left; A holds the same prefix and still gets these 4. */
	report("hq-01", "320505", 2, more_leaders, 1);
	sub_expect_exit0(a, log_a);
	sub_expect_exit0(b, log_b);
	ck_assert_uint_eq(unheard(), 7);

	feed_read(log_a, &f);
	ck_assert_uint_eq(f.updates.n, 8);
	for (size_t i = 0; i < f.updates.n; i++)
		ck_assert_msg(strncmp(f.updates.v[i].topic,
				  "agg/chain_leaders/", 18) == 0,
		    "A got %s", f.updates.v[i].topic);
	snapshot_recs("agg/chain_leaders/", &snap, &seq);
	recs_expect_equal(&f.state, &snap, "A vs snapshot");
	feed_free(&f);
	recset_free(&snap);

	feed_read(log_b, &f);
	ck_assert_uint_eq(f.updates.n, 13);
	updates_expect_consecutive(&f.updates, 8);
	snapshot_recs("", &snap, &seq);
	ck_assert_uint_eq(seq, 7 + 13);
	recs_expect_equal(&f.state, &snap, "B vs snapshot");
	feed_free(&f);
	recset_free(&snap);
}
END_TEST

/*
 * Asserts that updates [from, from + n) are exactly the topics in want (any
 * order), each with its revision one above the one known before (1 for a
 * new key); updates known.
 */
static void
batch_expect(const struct recset *updates, size_t from,
    const char *const want[], size_t n, struct recset *known)
{
	ck_assert_uint_ge(updates->n, from + n);
	for (size_t i = 0; i < n; i++) {
		const struct rec *u = &updates->v[from + i];
		struct rec *k = recset_find(known, u->topic);
		bool listed = false;

		for (size_t j = 0; j < n; j++)
			listed = listed || strcmp(want[j], u->topic) == 0;
		ck_assert_msg(listed, "update %zu: %s was not expected",
		    from + i, u->topic);
		ck_assert_msg(u->revision == (k != NULL ? k->revision + 1 : 1),
		    "update %zu: %s revision %llu after %llu", from + i,
		    u->topic, (unsigned long long)u->revision,
		    (unsigned long long)(k != NULL ? k->revision : 0));
		recset_put(known, u);
	}
}

/*
 * A revision publishes exactly the aggregates it changes, each with
 * revision + 1 (clusters only when it changes); a value re-sent unchanged
 * publishes nothing.
 */
START_TEST(test_revision)
{
	static const char *const args[] = { "--count", "13", "--timeout", "60",
		NULL };
	static const char *const photonics[] = {
		"agg/output_value/photonics/320583/2025",
		"agg/output_value/*/320583/2025",
		"agg/output_value/photonics/city/2025",
		"agg/output_value/*/city/2025",
		"agg/clusters_100bn/*/city/2025",
	};
	static const char *const materials[] = {
		"agg/output_value/materials/320505/2025",
		"agg/output_value/*/320505/2025",
		"agg/output_value/materials/city/2025",
		"agg/output_value/*/city/2025",
	};
	const struct obs_spec hq_photonics = { "photonics", "output_value", 300,
		"CNY_100M" };
	const struct obs_spec hq_materials = { "materials", "output_value", 10,
		"CNY_100M" };
	struct recset known, snap;
	struct feed f;
	char log[700];
	uint64_t seq, before;
	pid_t pid;

	report_kunshan(1, "photonics", 600);
	report_kunshan(2, "materials", 100);
	report("hq-01", "320505", 1, &hq_photonics, 1);
	snapshot_recs("", &known, &before);

	sub_log_path(log, sizeof(log), "sub");
	pid = sub_start(log, args);
	report_kunshan(3, "photonics", 650); /* city 950: 4 changes */
	report_kunshan(4, "photonics", 700); /* city 1000: and clusters */
	seq = snapshot_seq();
	ck_assert_uint_eq(seq, before + 9);
	report_kunshan(5, "photonics", 700); /* unchanged */
	ck_assert_uint_eq(snapshot_seq(), seq);
	/* A new key; clusters stays 1. */
	report("hq-01", "320505", 2, &hq_materials, 1);
	sub_expect_exit0(pid, log);

	feed_read(log, &f);
	ck_assert_uint_eq(f.updates.n, 13);
	updates_expect_consecutive(&f.updates, before + 1);
	batch_expect(&f.updates, 0, photonics, 4, &known);
	batch_expect(&f.updates, 4, photonics, 5, &known);
	batch_expect(&f.updates, 9, materials, 4, &known);
	snapshot_recs("", &snap, &seq);
	ck_assert_uint_eq(seq, before + 13);
	recs_expect_equal(&f.state, &snap, "subscriber vs snapshot");
	recs_expect_equal(&known, &snap,
	    "updates applied to the first "
	    "snapshot vs snapshot");
	feed_free(&f);
	recset_free(&known);
	recset_free(&snap);
}
END_TEST

/* Replaces the first from in the daemon's configuration file with to. */
static void
conf_replace(const char *from, const char *to)
{
	char *conf = harness_read_file(dm.conf);
	char *at = strstr(conf, from);
	char *text;

	ck_assert_msg(at != NULL, "%s not in the configuration", from);
	text = xmalloc(strlen(conf) + strlen(to) + 1);
	memcpy(text, conf, (size_t)(at - conf));
	strcpy(text + (at - conf), to);
	strcat(text, at + strlen(from));
	harness_write_file(dm.conf, text);
	free(conf);
	free(text);
}

/* SIGHUP, and waits for the daemon to have applied the registry (the
 * n-th "registry changed" line). */
static void
reload_wait(size_t n)
{
	int64_t deadline = harness_now_ms() + 20000;
	char *log;

	ck_assert(kill(dm.pid, SIGHUP) == 0);
	for (;;) {
		log = harness_daemon_log(&dm);
		if (harness_count_str(log, "ledger: registry changed") >= n)
			break;
		ck_assert_msg(harness_now_ms() < deadline,
		    "no registry change applied: %s", log_tail(log));
		free(log);
		harness_sleep_ms(50);
	}
	free(log);
}

/* indicatorctl verify with the daemon's configuration exits 0. */
static void
verify_passes(void)
{
	static const char *const args[] = { "verify", NULL };
	char *out = NULL, *err = NULL;
	int rc = harness_ctl_run(dm.conf, dm.data_dir, args, &out, &err, 30);

	ck_assert_msg(rc == 0, "verify exited %d: %s%s", rc, out ? out : "",
	    err ? err : "");
	free(out);
	free(err);
}

/*
 * Aggregates follow the registry (issue 14): a reload that adds a target
 * republishes the city total with it (revision + 1), one that removes a
 * district drops it from the city's sums; verify passes after each, and a
 * subscriber's state equals the snapshot.
 */
START_TEST(test_reload_follows_registry)
{
	static const char *const args[] = { "--count", "4", "--timeout", "60",
		NULL };
	const struct obs_spec hq = { "photonics", "output_value", 300,
		"CNY_100M" };
	struct recset before, snap;
	struct rec *r, *was;
	struct feed f;
	char log[700];
	uint64_t seq;
	pid_t pid;

	report_kunshan(1, "photonics", 600);
	report("hq-01", "320505", 1, &hq, 1);
	snapshot_recs("", &before, &seq);
	was = recset_find(&before, "agg/output_value/*/city/" YEAR);
	ck_assert_ptr_nonnull(was);
	ck_assert_msg(was->value == 900 && was->target == 5000, "%g %g",
	    was->value, was->target);
	verify_passes();

	sub_log_path(log, sizeof(log), "sub");
	pid = sub_start(log, args);
	/* A target for the year: only the city total changes. */
	conf_replace("output_value/*/city/2030 = 5000\n",
	    "output_value/*/city/2030 = 5000\noutput_value/*/city/" YEAR
	    " = 3000\n");
	reload_wait(1);
	verify_passes();
	/* A district gone: the city's figures without it (value,
	 * reporting, expected), and clusters_100bn's expected. */
	conf_replace("[district 320505]\nname = 虎丘区 (苏州高新区)\n", "");
	reload_wait(2);
	verify_passes();
	sub_expect_exit0(pid, log);

	feed_read(log, &f);
	ck_assert_uint_eq(f.updates.n, 4);
	updates_expect_consecutive(&f.updates, seq + 1);
	ck_assert_str_eq(f.updates.v[0].topic, "agg/output_value/*/city/" YEAR);
	ck_assert(f.updates.v[0].target == 3000 &&
		  f.updates.v[0].revision == was->revision + 1);
	r = recset_find(&f.state, "agg/output_value/*/city/" YEAR);
	ck_assert_ptr_nonnull(r);
	ck_assert_msg(r->value == 600 && r->reporting == 1 &&
			  r->expected == 9 && r->target == 3000 &&
			  r->revision == was->revision + 2,
	    "city total %g (%llu of %llu) revision %llu", r->value,
	    (unsigned long long)r->reporting, (unsigned long long)r->expected,
	    (unsigned long long)r->revision);
	r = recset_find(&f.state, "agg/output_value/photonics/city/" YEAR);
	ck_assert(r != NULL && r->value == 600 && r->expected == 9);
	snapshot_recs("", &snap, &seq);
	ck_assert_uint_eq(seq, f.updates.v[3].seq);
	recs_expect_equal(&f.state, &snap, "subscriber vs snapshot");
	feed_free(&f);
	recset_free(&before);
	recset_free(&snap);
}
END_TEST

/* seq goes on rising across a restart of the daemon on the same store. */
START_TEST(test_restart_seq)
{
	static const char *const args[] = { "--count", "4", "--timeout", "60",
		NULL };
	struct feed f;
	char log[700];
	uint64_t before;
	int status;
	pid_t pid;

	report("ks-01", "320583", 1, r_kunshan, 2);
	before = snapshot_seq();
	ck_assert_uint_eq(before, 7);
	status = harness_daemon_stop(&dm, SIGTERM);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "indicatord did not exit 0 on SIGTERM (status %d)", status);
	harness_daemon_start(&dm);
	ck_assert_uint_eq(snapshot_seq(), before);

	sub_log_path(log, sizeof(log), "sub");
	pid = sub_start(log, args);
	report_kunshan(2, "photonics", 650);
	sub_expect_exit0(pid, log);
	feed_read(log, &f);
	ck_assert_uint_eq(f.updates.n, 4);
	updates_expect_consecutive(&f.updates, before + 1);
	ck_assert_uint_eq(snapshot_seq(), before + 4);
	feed_free(&f);
}
END_TEST

/* Requests that are not one SnapshotRequest frame. */
static const struct {
	const char *what;
	const char *frames[2];
	size_t lens[2];
	size_t nframes;
} bad_requests[] = {
	{ "a truncated string",
	    { "\x0a\x05"
	      "ab" },
	    { 4 }, 1 },
	{ "wire type 7", { "\x0f\x01" }, { 2 }, 1 },
	{ "two frames", { "", "" }, { 0, 0 }, 2 },
};

/* A malformed SnapshotRequest gets an empty Snapshot with seq 0. */
START_TEST(test_bad_snapshot_request)
{
	Indicator__Snapshot *snap;
	const void *frames[2];
	zmq_pollitem_t item;
	zmq_msg_t msg;
	void *s;

	report("ks-01", "320583", 1, r_kunshan, 2);
	snap = snapshot_get("");
	ck_assert_uint_eq(snap->seq, 7);
	ck_assert_uint_eq(snap->n_aggregates, 7);
	indicator__snapshot__free_unpacked(snap, NULL);

	s = harness_client_new(zctx, dm.snapshot);
	frames[0] = bad_requests[_i].frames[0];
	frames[1] = bad_requests[_i].frames[1];
	harness_client_send(
	    s, frames, bad_requests[_i].lens, bad_requests[_i].nframes);
	item = (zmq_pollitem_t){ s, 0, ZMQ_POLLIN, 0 };
	ck_assert_msg(zmq_poll(&item, 1, SNAP_TIMEOUT_MS) == 1, "%s: no answer",
	    bad_requests[_i].what);
	zmq_msg_init(&msg);
	ck_assert(zmq_msg_recv(&msg, s, 0) != -1);
	ck_assert_msg(!zmq_msg_more(&msg), "%s: answer of more than a frame",
	    bad_requests[_i].what);
	snap = indicator__snapshot__unpack(
	    NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
	zmq_msg_close(&msg);
	zmq_close(s);
	ck_assert_msg(
	    snap != NULL, "%s: answer does not decode", bad_requests[_i].what);
	ck_assert_msg(snap->seq == 0 && snap->n_aggregates == 0,
	    "%s: Snapshot seq %llu with %zu aggregates, want an empty one",
	    bad_requests[_i].what, (unsigned long long)snap->seq,
	    snap->n_aggregates);
	indicator__snapshot__free_unpacked(snap, NULL);
}
END_TEST

/* The Python example receives and decodes the updates. */
START_TEST(test_python_sub)
{
	static const char *const probe[] = { "/usr/bin/python3", "-c",
		"import zmq, google.protobuf", NULL };
	const char *argv[] = { "/usr/bin/python3",
		SOURCE_DIR "/examples/python_sub.py", "--publish", dm.publish,
		"--snapshot", dm.snapshot, "--count", "7", "--timeout", "60",
		NULL };
	struct recset snap;
	struct feed f;
	char log[700], *err = NULL;
	uint64_t seq;
	pid_t pid;

	if (harness_run(probe, NULL, &err, RUN_TIMEOUT_S) != 0) {
		fprintf(stderr,
		    "check_feed: SKIPPED test_python_sub: /usr/bin/python3 "
		    "cannot import zmq and google.protobuf (apt-get install "
		    "python3-zmq python3-protobuf): %s\n",
		    err);
		free(err);
		return;
	}
	free(err);
	sub_log_path(log, sizeof(log), "python");
	pid = harness_spawn(argv, log);
	harness_wait_log(log, "python_sub: snapshot of ", READY_TIMEOUT_MS);
	report("ks-01", "320583", 1, r_kunshan, 2);
	sub_expect_exit0(pid, log);

	feed_read(log, &f);
	ck_assert_uint_eq(f.updates.n, 7);
	updates_expect_consecutive(&f.updates, 1);
	snapshot_recs("", &snap, &seq);
	ck_assert_uint_eq(seq, 7);
	recs_expect_equal(&f.state, &snap, "python subscriber vs snapshot");
	feed_free(&f);
	recset_free(&snap);
}
END_TEST

/* A report of every metric for every industry: 48 observations. */
static size_t
big_report(struct obs_spec *obs, double base)
{
	static const char *const industries[] = { "materials", "photonics",
		"metaverse", "hydrogen", "digifin", "cellgene", "aerospace",
		"quantum" };
	static const char *const counts[] = { "innovation_platforms",
		"chain_leaders", "pilot_parks", "core_products",
		"app_scenarios" };
	size_t n = 0;

	for (size_t i = 0; i < 8; i++) {
		obs[n++] = (struct obs_spec){ industries[i], "output_value",
			base + (double)i, "CNY_100M" };
		for (size_t m = 0; m < 5; m++)
			obs[n++] = (struct obs_spec){ industries[i], counts[m],
				base + (double)(i * 5 + m), "count" };
	}
	return n;
}

/* True when the log shows a line with exactly this seq. */
static bool
feed_has_seq(const char *log, uint64_t seq)
{
	struct feed f;
	bool found = false;

	feed_read(log, &f);
	for (size_t i = 0; i < f.state.n && !found; i++)
		found = f.state.v[i].seq == seq;
	feed_free(&f);
	return found;
}

/*
 * With a PUB high-water mark of 1 the daemon drops most of a burst; the
 * subscriber sees the gap in seq, says so, takes a new snapshot and ends
 * equal to the store.
 */
START_TEST(test_gap)
{
	static const char *const args[] = { "--timeout", "120", NULL };
	struct obs_spec obs[OBS_MAX];
	struct recset stored;
	struct feed f;
	char log[700], *text;
	size_t n;
	uint64_t seq;
	bool caught_up = false;
	pid_t pid;

	sub_log_path(log, sizeof(log), "sub");
	pid = sub_start(log, args);
	n = big_report(obs, 1);
	report("ks-01", "320583", 1, obs, n);
	n = big_report(obs, 2);
	report("hq-01", "320505", 1, obs, n);
	/* The last updates of a burst may be lost with no later one to show
	 * the gap: small reports until the subscriber has the latest seq. */
	for (uint64_t i = 2; i < 40 && !caught_up; i++) {
		report_kunshan(i, "photonics", 100 + (double)i);
		seq = snapshot_seq();
		for (int wait = 0; wait < 50 && !caught_up; wait++) {
			caught_up = feed_has_seq(log, seq);
			if (!caught_up)
				harness_sleep_ms(20);
		}
	}
	text = harness_read_file(log);
	ck_assert_msg(
	    caught_up, "the subscriber never caught up: %s", log_tail(text));
	ck_assert_msg(kill(pid, SIGTERM) == 0, "kill: %s", strerror(errno));
	sub_expect_exit0(pid, log);

	feed_read(log, &f);
	ck_assert_msg(f.gaps > 0 && f.snapshots == f.gaps + 1,
	    "%u gaps, %u snapshots: %s", f.gaps, f.snapshots, log_tail(text));
	store_recs("", &stored);
	recs_expect_equal(&f.state, &stored, "subscriber after gaps vs store");
	feed_free(&f);
	recset_free(&stored);
	free(text);
}
END_TEST

static Suite *
feed_suite(void)
{
	Suite *s = suite_create("feed");
	TCase *tc = tcase_create("feed");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_live_updates);
	tcase_add_loop_test(tc, test_live_tables, 0,
	    (int)(sizeof(live_tables) / sizeof(live_tables[0])));
	tcase_add_test(tc, test_hand_computed);
	tcase_add_test(tc, test_late_joiner);
	tcase_add_test(tc, test_subscriptions_followed);
	tcase_add_test(tc, test_revision);
	tcase_add_test(tc, test_restart_seq);
	tcase_add_test(tc, test_reload_follows_registry);
	tcase_add_loop_test(tc, test_bad_snapshot_request, 0,
	    (int)(sizeof(bad_requests) / sizeof(bad_requests[0])));
	tcase_add_test(tc, test_python_sub);
	suite_add_tcase(s, tc);

	tc = tcase_create("gap");
	tcase_add_checked_fixture(tc, setup_tiny_hwm, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_gap);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(feed_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
