/*
 * indicator-sub: a live view of the daemon's aggregates, by the clone
 * pattern (docs/protocol.md, "The live feed"): subscribe first, then take a
 * snapshot per prefix, apply it, then apply every update newer than the
 * snapshot that covers its topic. Subscribed to everything, a gap in seq
 * means updates were lost (the daemon's PUB drops at its high-water mark
 * rather than wait): a new snapshot then replaces the local state.
 *
 * Output: one JSON object per line (default), a table of the city figures,
 * or a table of the progress toward the plan's targets.
 *
 * Exit codes: 0 success (also on SIGINT or SIGTERM, once --count updates
 * were applied, or when --timeout passed), 1 failure (bad configuration,
 * no snapshot, socket error), 2 usage error, 3 --timeout passed before
 * --count updates were applied.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "aggregate.h"
#include "config.h"
#include "indicator.pb-c.h"
#include "period.h"
#include "keys.h"
#include "out.h"
#include "version.h"
#include "xmalloc.h"

#define EXIT_USAGE 2
#define EXIT_SHORT 3 /* --timeout passed before --count updates */
#define SNAP_TRIES 3
#define SNAP_WAIT_MS 2000 /* per try */
#define CONNECT_WAIT_MS 5000
#define SUB_RCVHWM 1000000 /* updates queued while a snapshot is taken */
#define REDRAW_QUIET_MS 50
#define MONITOR_EP "inproc://indicator-sub-monitor"
#define CITY "city"
#define ALL "*"

enum mode {
	MODE_JSON,
	MODE_TABLE,
	MODE_PROGRESS,
};

struct entry {
	char topic[IND_TOPIC_MAX + 1];
	Indicator__Aggregate *agg; /* owned */
};

/* topic -> latest Aggregate, sorted by topic. */
struct aggmap {
	struct entry *v;
	size_t n;
	size_t cap;
};

struct options {
	const char *conf;
	const char *publish;
	const char *snapshot;
	enum mode mode;
	bool once;
	uint64_t count; /* 0: no limit */
	double timeout_s; /* 0: none */
	const char *server_key; /* CURVE: Z85 key or key file; NULL: plain */
	const char *public_key; /* key files of this subscriber */
	const char *secret_key;
};

struct sub {
	const struct options *opt;
	const struct registry *reg;
	const char *publish;
	const char *snapshot;
	char **prefixes; /* never empty; {""} for everything */
	uint64_t *snap_seq; /* per prefix: seq of its latest snapshot */
	size_t nprefixes;
	bool all; /* subscribed to everything: a gap can be seen */
	bool tty;
	void *zctx;
	void *sock; /* SUB */
	struct aggmap map;
	uint64_t last_seq; /* when all: seq of the latest update applied */
	uint64_t applied; /* updates applied */
	bool changed; /* since the last table */
	bool curve;
	struct key_client keys;
	unsigned tables; /* tables printed */
};

static volatile sig_atomic_t quit;

static const char usage_text[] =
    "usage: indicator-sub [-c CONFIG] [--publish EP] [--snapshot EP]\n"
    "                     [--json | --table | --progress] [--once]\n"
    "                     [--count N] [--timeout S] [PREFIX...]\n"
    "       indicator-sub --help | --version\n"
    "  -c, --config FILE   the daemon's configuration, then its "
    "conf.d/*.conf\n"
    "  --publish EP, --snapshot EP\n"
    "           the daemon's sockets (tcp://HOST:PORT or ipc://PATH)\n"
    "  PREFIX   topic prefix, e.g. agg/output_value/ (none: everything)\n"
    "  --json   one JSON object per aggregate (default)\n"
    "  --table  the city figures of the latest year, redrawn on change\n"
    "  --progress  city progress toward the plan's targets\n"
    "  --once   print the snapshot and exit\n"
    "  --count N   exit 0 after N updates\n"
    "  --timeout S exit after S seconds (3 if --count was not reached)\n"
    "  --server-key KEY|FILE --public-key FILE --secret-key FILE\n"
    "           CURVE: the daemon's public key and this subscriber's "
    "key files\n"
    "  -h, --help  print this and exit\n"
    "  --version   print the version and exit\n";

static void
on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t
aggmap_search(const struct aggmap *m, const char *topic, bool *found)
{
	size_t lo = 0, hi = m->n;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->v[mid].topic, topic);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Keeps a as the latest aggregate of topic unless the map holds a newer one
 * (a higher seq). Takes ownership of a either way.
 */
static void
aggmap_put(struct aggmap *m, const char *topic, Indicator__Aggregate *a)
{
	bool found;
	size_t i = aggmap_search(m, topic, &found);

	if (found) {
		if (m->v[i].agg->seq > a->seq) {
			indicator__aggregate__free_unpacked(a, NULL);
			return;
		}
		indicator__aggregate__free_unpacked(m->v[i].agg, NULL);
		m->v[i].agg = a;
		return;
	}
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 256;
		m->v = xrealloc(m->v, m->cap * sizeof(*m->v));
	}
	memmove(&m->v[i + 1], &m->v[i], (m->n - i) * sizeof(*m->v));
	strlcpy_ok(m->v[i].topic, topic, sizeof(m->v[i].topic));
	m->v[i].agg = a;
	m->n++;
}

static void
aggmap_clear(struct aggmap *m)
{
	for (size_t i = 0; i < m->n; i++)
		indicator__aggregate__free_unpacked(m->v[i].agg, NULL);
	m->n = 0;
}

static void
aggmap_free(struct aggmap *m)
{
	aggmap_clear(m);
	free(m->v);
	m->v = NULL;
	m->cap = 0;
}

static bool
is_annual(const char *period, int *year)
{
	struct period p;

	if (!period_parse(period, &p) || p.kind != PERIOD_YEAR)
		return false;
	*year = p.year;
	return true;
}

/* Where code stands in the registry's order (unknown codes last). */
static size_t
metric_rank(const struct registry *reg, const char *code)
{
	for (size_t i = 0; i < reg->nmetrics; i++)
		if (strcmp(reg->metrics[i].code, code) == 0)
			return i;
	return strcmp(code, AGG_CLUSTERS_METRIC) == 0 ? REG_METRICS_MAX
						      : REG_METRICS_MAX + 1;
}

static size_t
industry_rank(const struct registry *reg, const char *code)
{
	for (size_t i = 0; i < reg->nindustries; i++)
		if (strcmp(reg->industries[i].code, code) == 0)
			return i;
	return strcmp(code, ALL) == 0 ? REG_INDUSTRIES_MAX + 1
				      : REG_INDUSTRIES_MAX;
}

/* Adds code to a list of distinct codes kept in rank order. */
static void
codes_add(const char **codes, size_t *n, size_t max, const char *code,
    const struct registry *reg,
    size_t (*rank)(const struct registry *, const char *))
{
	size_t i, r = rank(reg, code);

	for (i = 0; i < *n; i++) {
		if (strcmp(codes[i], code) == 0)
			return;
	}
	if (*n == max)
		return;
	for (i = *n; i > 0; i--) {
		size_t ri = rank(reg, codes[i - 1]);

		if (ri < r || (ri == r && strcmp(codes[i - 1], code) < 0))
			break;
		codes[i] = codes[i - 1];
	}
	codes[i] = code;
	(*n)++;
}

/* The city aggregate of (metric, industry, period), or NULL. */
static const Indicator__Aggregate *
city_find(const struct aggmap *m, const char *metric, const char *industry,
    const char *period)
{
	char topic[IND_TOPIC_MAX + 1];
	bool found;
	size_t i;

	snprintf(topic, sizeof(topic), "agg/%s/%s/" CITY "/%s", metric,
	    industry, period);
	i = aggmap_search(m, topic, &found);
	return found ? m->v[i].agg : NULL;
}

/* A figure for a table: decimals fixed per metric, so that a column's
 * digits line up (none for counts, two for amounts). */
static void
figure(const struct registry *reg, const char *metric, double v, char *buf,
    size_t len)
{
	const struct reg_metric *m = registry_metric(reg, metric);

	if (m != NULL)
		out_fixed(v, m->integer ? 0 : 2, buf, len);
	else if (strcmp(metric, AGG_CLUSTERS_METRIC) == 0)
		out_fixed(v, 0, buf, len);
	else
		out_value(v, buf, len);
}

/* The city figures of the latest year seen: industries by metrics. */
static void
city_table(const struct sub *s, FILE *f)
{
	const char *metrics[REG_METRICS_MAX + 2],
	    *industries[REG_INDUSTRIES_MAX + 2], *cells[REG_METRICS_MAX + 3];
	char period[IND_PERIOD_MAX + 1], num[REG_METRICS_MAX + 2][OUT_NUM_MAX],
	    unit[REG_METRICS_MAX + 2][IND_UNIT_MAX + 3],
	    label[IND_NAME_MAX + IND_CODE_MAX + 4];
	size_t nm = 0, ni = 0;
	int year, latest = 0;
	struct out_table *t;

	for (size_t i = 0; i < s->map.n; i++) {
		const Indicator__Aggregate *a = s->map.v[i].agg;

		if (strcmp(a->scope, CITY) == 0 &&
		    is_annual(a->period, &year) && year > latest)
			latest = year;
	}
	if (latest == 0) {
		fprintf(f, "City figures: no annual figures yet\n");
		return;
	}
	snprintf(period, sizeof(period), "%d", latest);
	for (size_t i = 0; i < s->map.n; i++) {
		const Indicator__Aggregate *a = s->map.v[i].agg;

		if (strcmp(a->scope, CITY) != 0 ||
		    strcmp(a->period, period) != 0)
			continue;
		codes_add(metrics, &nm, REG_METRICS_MAX + 2, a->metric, s->reg,
		    metric_rank);
		codes_add(industries, &ni, REG_INDUSTRIES_MAX + 2, a->industry,
		    s->reg, industry_rank);
	}
	t = out_table_new(nm + 1);
	cells[0] = "industry";
	for (size_t m = 0; m < nm; m++) {
		cells[m + 1] = metrics[m];
		t->right[m + 1] = true;
	}
	out_table_add(t, cells, true);
	cells[0] = "";
	for (size_t m = 0; m < nm; m++) {
		const Indicator__Aggregate *a = NULL;

		for (size_t i = 0; i < ni && a == NULL; i++)
			a = city_find(
			    &s->map, metrics[m], industries[i], period);
		snprintf(
		    unit[m], sizeof(unit[m]), "(%s)", a != NULL ? a->unit : "");
		cells[m + 1] = a != NULL ? unit[m] : "";
	}
	out_table_add(t, cells, true);
	for (size_t i = 0; i < ni; i++) {
		const struct reg_industry *in =
		    registry_industry(s->reg, industries[i]);

		if (strcmp(industries[i], ALL) == 0)
			snprintf(label, sizeof(label), "all industries");
		else if (in != NULL)
			snprintf(label, sizeof(label), "%s (%s)", in->name,
			    in->code);
		else
			snprintf(label, sizeof(label), "%s", industries[i]);
		cells[0] = label;
		for (size_t m = 0; m < nm; m++) {
			const Indicator__Aggregate *a = city_find(
			    &s->map, metrics[m], industries[i], period);

			if (a != NULL)
				figure(s->reg, metrics[m], a->value, num[m],
				    sizeof(num[m]));
			cells[m + 1] = a != NULL ? num[m] : "-";
		}
		out_table_add(t, cells, false);
	}
	out_line(f, "City figures, %s", period);
	fputc('\n', f);
	out_table_print(t, f);
	out_table_destroy(&t);
}

/* True when the metric's city total is measured against a target. */
static bool
has_city_target(const struct sub *s, const char *metric)
{
	if (strcmp(metric, AGG_CLUSTERS_METRIC) == 0)
		return true;
	for (size_t i = 0; i < s->reg->ntargets; i++) {
		const struct reg_target *t = &s->reg->targets[i];

		if (strcmp(t->metric, metric) == 0 &&
		    strcmp(t->industry, ALL) == 0 &&
		    strcmp(t->scope, CITY) == 0)
			return true;
	}
	return false;
}

/* One row of the progress table. */
static void
progress_row(
    const struct sub *s, struct out_table *t, const Indicator__Aggregate *a)
{
	char value[OUT_NUM_MAX], target[OUT_NUM_MAX], year[16],
	    pct[OUT_NUM_MAX], districts[32];
	const char *cells[8];

	figure(s->reg, a->metric, a->value, value, sizeof(value));
	if (a->target_year != 0) {
		out_value(a->target, target, sizeof(target));
		snprintf(year, sizeof(year), "%" PRIu32, a->target_year);
		snprintf(pct, sizeof(pct), "%.1f%%", a->progress * 100);
	} else {
		snprintf(target, sizeof(target), "-");
		snprintf(year, sizeof(year), "-");
		snprintf(pct, sizeof(pct), "-");
	}
	snprintf(districts, sizeof(districts), "%" PRIu32 "/%" PRIu32,
	    a->districts_reporting, a->districts_expected);
	cells[0] = a->metric;
	cells[1] = a->period;
	cells[2] = value;
	cells[3] = a->unit;
	cells[4] = target;
	cells[5] = year;
	cells[6] = pct;
	cells[7] = districts;
	out_table_add(t, cells, false);
}

/* Per metric with a city target, per annual period: how far along. */
static void
progress_table(const struct sub *s, FILE *f)
{
	static const char *const head[] = { "metric", "period", "value", "unit",
		"target", "by", "progress", "districts" };
	const char *metrics[REG_METRICS_MAX + 2];
	size_t nm = 0;
	struct out_table *t = out_table_new(8);
	int year;

	for (size_t i = 0; i < s->map.n; i++) {
		const Indicator__Aggregate *a = s->map.v[i].agg;

		if (strcmp(a->scope, CITY) == 0 &&
		    strcmp(a->industry, ALL) == 0 &&
		    is_annual(a->period, &year) &&
		    (a->target_year != 0 || has_city_target(s, a->metric)))
			codes_add(metrics, &nm, REG_METRICS_MAX + 2, a->metric,
			    s->reg, metric_rank);
	}
	out_table_add(t, head, true);
	for (size_t c = 2; c < 8; c++)
		t->right[c] = c != 3;
	/* The map is in topic order, so each metric's periods ascend. */
	for (size_t m = 0; m < nm; m++) {
		for (size_t i = 0; i < s->map.n; i++) {
			const Indicator__Aggregate *a = s->map.v[i].agg;

			if (strcmp(a->metric, metrics[m]) == 0 &&
			    strcmp(a->scope, CITY) == 0 &&
			    strcmp(a->industry, ALL) == 0 &&
			    is_annual(a->period, &year))
				progress_row(s, t, a);
		}
	}
	fprintf(f, "City progress toward the plan's targets\n\n");
	if (nm == 0)
		fprintf(f, "(no annual city figures yet)\n");
	else
		out_table_print(t, f);
	out_table_destroy(&t);
}

/* Redraws the table of the chosen mode: in place on a terminal, else one
 * after the other. */
static void
table_show(struct sub *s)
{
	if (s->tty)
		fputs("\033[H\033[2J", stdout);
	else if (s->tables > 0)
		fputc('\n', stdout);
	if (s->opt->mode == MODE_TABLE)
		city_table(s, stdout);
	else
		progress_table(s, stdout);
	fflush(stdout);
	s->tables++;
	s->changed = false;
}

/*
 * Waits up to SNAP_WAIT_MS for the one-frame answer to a SnapshotRequest.
 * Returns it decoded (caller frees), or NULL on timeout, on a signal, or on
 * an answer that is not one frame or does not decode.
 */
static Indicator__Snapshot *
snapshot_wait(void *sock)
{
	zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
	int64_t deadline = now_ms() + SNAP_WAIT_MS;
	Indicator__Snapshot *snap = NULL;
	size_t frames = 0;
	zmq_msg_t msg;
	int rc;

	for (;;) {
		int64_t wait = deadline - now_ms();

		if (quit || wait <= 0)
			return NULL;
		rc = zmq_poll(&item, 1, (long)wait);
		if (rc == -1 && errno != EINTR) {
			fprintf(stderr, "indicator-sub: poll: %s\n",
			    zmq_strerror(errno));
			return NULL;
		}
		if (rc > 0)
			break;
	}
	zmq_msg_init(&msg);
	do {
		if (zmq_msg_recv(&msg, sock, 0) == -1)
			break;
		if (++frames == 1)
			snap = indicator__snapshot__unpack(
			    NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
	} while (zmq_msg_more(&msg));
	zmq_msg_close(&msg);
	if (snap == NULL || frames != 1) {
		fprintf(stderr, "indicator-sub: the snapshot answer is not one "
				"Snapshot frame\n");
		if (snap != NULL)
			indicator__snapshot__free_unpacked(snap, NULL);
		return NULL;
	}
	return snap;
}

/*
 * Asks for the aggregates under prefix, on a new DEALER for each try (the
 * lazy pirate pattern), so that a late answer to one try cannot be taken
 * for the answer to the next. Returns the snapshot (caller frees), or NULL
 * after SNAP_TRIES tries or on a signal.
 */
/* With --server-key: makes sock a CURVE client. */
static void
curve_client(const struct sub *s, void *sock)
{
	if (!s->curve)
		return;
	zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, s->keys.server, KEY_Z85_LEN);
	zmq_setsockopt(
	    sock, ZMQ_CURVE_PUBLICKEY, s->keys.public_key, KEY_Z85_LEN);
	zmq_setsockopt(
	    sock, ZMQ_CURVE_SECRETKEY, s->keys.secret_key, KEY_Z85_LEN);
}

static Indicator__Snapshot *
snapshot_fetch(struct sub *s, const char *prefix)
{
	Indicator__SnapshotRequest req = INDICATOR__SNAPSHOT_REQUEST__INIT;
	Indicator__Snapshot *snap = NULL;
	size_t len;
	uint8_t *buf;
	int linger = 0;

	req.prefix = (char *)prefix;
	len = indicator__snapshot_request__get_packed_size(&req);
	buf = xmalloc(len > 0 ? len : 1);
	indicator__snapshot_request__pack(&req, buf);
	for (int try = 1; try <= SNAP_TRIES && snap == NULL && !quit; try++) {
		void *sock = zmq_socket(s->zctx, ZMQ_DEALER);

		if (sock == NULL) {
			fprintf(stderr, "indicator-sub: socket: %s\n",
			    zmq_strerror(errno));
			break;
		}
		zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
		curve_client(s, sock);
		if (zmq_connect(sock, s->snapshot) == -1) {
			fprintf(stderr,
			    "indicator-sub: cannot connect to %s: %s\n",
			    s->snapshot, zmq_strerror(errno));
			zmq_close(sock);
			break;
		}
		if (zmq_send(sock, buf, len, 0) == (int)len)
			snap = snapshot_wait(sock);
		zmq_close(sock);
		if (snap == NULL && !quit && try < SNAP_TRIES)
			fprintf(stderr,
			    "indicator-sub: no snapshot from %s yet, "
			    "asking again\n",
			    s->snapshot);
	}
	free(buf);
	if (snap == NULL && !quit)
		fprintf(stderr,
		    "indicator-sub: no snapshot from %s after %d tries of "
		    "%d s: is indicatord running?\n",
		    s->snapshot, SNAP_TRIES, SNAP_WAIT_MS / 1000);
	return snap;
}

/* Moves the snapshot's aggregates into the map, printing them as JSON in
 * that mode. */
static void
snapshot_apply(struct sub *s, Indicator__Snapshot *snap)
{
	char topic[IND_TOPIC_MAX + 1];

	for (size_t i = 0; i < snap->n_aggregates; i++) {
		Indicator__Aggregate *a = snap->aggregates[i];
		int n = snprintf(topic, sizeof(topic), "agg/%s/%s/%s/%s",
		    a->metric, a->industry, a->scope, a->period);

		if (n < 0 || (size_t)n >= sizeof(topic)) {
			fprintf(stderr,
			    "indicator-sub: snapshot aggregate with an "
			    "over-long topic skipped\n");
			indicator__aggregate__free_unpacked(a, NULL);
			continue;
		}
		if (s->opt->mode == MODE_JSON)
			out_json_aggregate(stdout, "snapshot", topic, a);
		aggmap_put(&s->map, topic, a);
	}
	/* The aggregates now belong to the map. */
	snap->n_aggregates = 0;
}

/*
 * Takes a snapshot of every prefix into an empty map: at the start, and
 * again after a gap. Returns 0, or -1 when a snapshot could not be had.
 */
static int
snapshots_take(struct sub *s)
{
	aggmap_clear(&s->map);
	for (size_t i = 0; i < s->nprefixes; i++) {
		Indicator__Snapshot *snap = snapshot_fetch(s, s->prefixes[i]);

		if (snap == NULL)
			return -1;
		if (!s->opt->once)
			fprintf(stderr,
			    "indicator-sub: snapshot of %zu aggregates "
			    "under \"%s\" at seq %" PRIu64 "\n",
			    snap->n_aggregates, s->prefixes[i], snap->seq);
		s->snap_seq[i] = snap->seq;
		if (s->all)
			s->last_seq = snap->seq;
		snapshot_apply(s, snap);
		indicator__snapshot__free_unpacked(snap, NULL);
	}
	s->changed = true;
	return 0;
}

/* Waits for the monitor's one event (a handshake); false on timeout or a
 * signal. */
static bool
handshake_wait(void *mon)
{
	zmq_pollitem_t item = { mon, 0, ZMQ_POLLIN, 0 };
	int64_t deadline = now_ms() + CONNECT_WAIT_MS;

	while (!quit && now_ms() < deadline) {
		int n = zmq_poll(&item, 1, (long)(deadline - now_ms()));

		if (n == -1 && errno != EINTR)
			return false;
		if (n > 0)
			return true;
	}
	return false;
}

/*
 * Connects the SUB socket and waits until it has made its handshake with
 * the publisher, so that its subscriptions reach the daemon before the
 * snapshot is asked for (on a connection made after them): an update
 * published after the snapshot but before the subscription took hold would
 * be lost unseen. Without a handshake in time it warns and goes on (the SUB
 * keeps trying in the background). Returns 0, or -1 when the endpoint is
 * refused.
 */
static int
sub_connect(struct sub *s)
{
	void *mon = NULL;
	bool watching;
	int rc = -1;

	watching = zmq_socket_monitor(
		       s->sock, MONITOR_EP, ZMQ_EVENT_HANDSHAKE_SUCCEEDED) == 0;
	if (watching && ((mon = zmq_socket(s->zctx, ZMQ_PAIR)) == NULL ||
			    zmq_connect(mon, MONITOR_EP) == -1))
		watching = false;
	if (zmq_connect(s->sock, s->publish) == -1) {
		fprintf(stderr, "indicator-sub: cannot connect to %s: %s\n",
		    s->publish, zmq_strerror(errno));
		goto monitor_stop;
	}
	rc = 0;
	if (watching && !handshake_wait(mon) && !quit)
		fprintf(stderr,
		    "indicator-sub: no connection to %s yet; going on\n",
		    s->publish);
monitor_stop:
	zmq_socket_monitor(s->sock, NULL, 0);
	if (mon != NULL)
		zmq_close(mon);
	return rc;
}

/* The SUB socket, subscribed to every prefix and connected. */
static int
sub_open(struct sub *s)
{
	int hwm = SUB_RCVHWM, linger = 0;

	s->sock = zmq_socket(s->zctx, ZMQ_SUB);
	if (s->sock == NULL) {
		fprintf(
		    stderr, "indicator-sub: socket: %s\n", zmq_strerror(errno));
		return -1;
	}
	zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	curve_client(s, s->sock);
	for (size_t i = 0; i < s->nprefixes; i++)
		if (zmq_setsockopt(s->sock, ZMQ_SUBSCRIBE, s->prefixes[i],
			strlen(s->prefixes[i])) == -1) {
			fprintf(stderr, "indicator-sub: subscribe: %s\n",
			    zmq_strerror(errno));
			return -1;
		}
	return sub_connect(s);
}

/*
 * Applies one update, unless the snapshot that covers its topic already
 * holds it. On a gap (subscribed to everything), takes a new snapshot
 * instead. Takes ownership of a. Returns 0, or -1 when the new snapshot
 * could not be had.
 */
static int
update_apply(struct sub *s, const char *topic, Indicator__Aggregate *a)
{
	uint64_t covered = 0;
	bool mine = false;

	for (size_t i = 0; i < s->nprefixes; i++) {
		if (strncmp(topic, s->prefixes[i], strlen(s->prefixes[i])) != 0)
			continue;
		mine = true;
		if (s->snap_seq[i] > covered)
			covered = s->snap_seq[i];
	}
	if (!mine || a->seq <= covered) {
		indicator__aggregate__free_unpacked(a, NULL);
		return 0;
	}
	if (s->all && a->seq != s->last_seq + 1) {
		fprintf(stderr,
		    "indicator-sub: gap in seq (expected %" PRIu64
		    ", got %" PRIu64 "): taking a new snapshot\n",
		    s->last_seq + 1, a->seq);
		indicator__aggregate__free_unpacked(a, NULL);
		return snapshots_take(s);
	}
	s->last_seq = a->seq;
	if (s->opt->mode == MODE_JSON)
		out_json_aggregate(stdout, "update", topic, a);
	aggmap_put(&s->map, topic, a);
	s->applied++;
	s->changed = true;
	return 0;
}

/*
 * Handles every message waiting on the SUB socket, stopping once --count
 * updates were applied. Returns 0, or -1 on failure.
 */
static int
sub_drain(struct sub *s)
{
	char topic[IND_TOPIC_MAX + 1];
	Indicator__Aggregate *a;
	zmq_msg_t msg;
	size_t frames;
	bool topic_ok;

	while (!quit && (s->opt->count == 0 || s->applied < s->opt->count)) {
		frames = 0;
		topic_ok = false;
		a = NULL;
		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, s->sock, ZMQ_DONTWAIT) == -1) {
			zmq_msg_close(&msg);
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			fprintf(stderr, "indicator-sub: receive: %s\n",
			    zmq_strerror(errno));
			return -1;
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
		    zmq_msg_more(&msg) && zmq_msg_recv(&msg, s->sock, 0) != -1);
		zmq_msg_close(&msg);
		if (a == NULL || frames != 2 || !topic_ok) {
			fprintf(stderr,
			    "indicator-sub: an update that is not a topic "
			    "and an Aggregate skipped\n");
			if (a != NULL)
				indicator__aggregate__free_unpacked(a, NULL);
			continue;
		}
		if (update_apply(s, topic, a) == -1)
			return -1;
	}
	return 0;
}

/*
 * Follows the updates until a signal, --count or --timeout. A table is
 * redrawn once the updates have paused for REDRAW_QUIET_MS, so that the
 * aggregates of one commit, published together, make one table. Returns
 * the exit code.
 */
static int
sub_run(struct sub *s)
{
	zmq_pollitem_t item = { s->sock, 0, ZMQ_POLLIN, 0 };
	bool tables = s->opt->mode != MODE_JSON, timed_out = false;
	int64_t deadline = -1;

	if (s->opt->timeout_s > 0)
		deadline = now_ms() + (int64_t)(s->opt->timeout_s * 1000);
	while (!quit && (s->opt->count == 0 || s->applied < s->opt->count)) {
		long wait = -1;
		int rc;

		if (deadline >= 0 &&
		    (wait = (long)(deadline - now_ms())) <= 0) {
			timed_out = true;
			break;
		}
		if (tables && s->changed &&
		    (wait < 0 || wait > REDRAW_QUIET_MS))
			wait = REDRAW_QUIET_MS;
		rc = zmq_poll(&item, 1, wait);
		if (rc == -1 && errno != EINTR) {
			fprintf(stderr, "indicator-sub: poll: %s\n",
			    zmq_strerror(errno));
			return 1;
		}
		if (rc == 0 && tables && s->changed)
			table_show(s);
		if (rc > 0 && sub_drain(s) == -1)
			return 1;
	}
	if (tables && s->changed)
		table_show(s);
	if (timed_out && s->opt->count > 0 && s->applied < s->opt->count) {
		fprintf(stderr,
		    "indicator-sub: %g s passed with %" PRIu64 " of %" PRIu64
		    " updates\n",
		    s->opt->timeout_s, s->applied, s->opt->count);
		return EXIT_SHORT;
	}
	return 0;
}

static int
usage(void)
{
	fputs(usage_text, stderr);
	return EXIT_USAGE;
}

/* Parses the options; returns 0, or -1 after a message. */
static int
options_parse(int argc, char *argv[], struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "publish", required_argument, NULL, 'P' },
		{ "snapshot", required_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },
		{ "table", no_argument, NULL, 't' },
		{ "progress", no_argument, NULL, 'p' },
		{ "once", no_argument, NULL, 'o' },
		{ "count", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "server-key", required_argument, NULL, 'K' },
		{ "public-key", required_argument, NULL, 'U' },
		{ "secret-key", required_argument, NULL, 'X' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned modes = 0;
	char *end;
	int ch;

	memset(o, 0, sizeof(*o));
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->conf = optarg;
			break;
		case 'P':
			o->publish = optarg;
			break;
		case 'S':
			o->snapshot = optarg;
			break;
		case 'j':
		case 't':
		case 'p':
			o->mode = ch == 'j'   ? MODE_JSON
				  : ch == 't' ? MODE_TABLE
					      : MODE_PROGRESS;
			modes++;
			break;
		case 'o':
			o->once = true;
			break;
		case 'n':
			errno = 0;
			o->count = strtoull(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || o->count == 0 ||
			    optarg[0] == '-') {
				fprintf(stderr,
				    "indicator-sub: --count wants a number "
				    "above 0, not '%s'\n",
				    optarg);
				return -1;
			}
			break;
		case 'T':
			o->timeout_s = strtod(optarg, &end);
			if (*end != '\0' || !(o->timeout_s > 0) ||
			    o->timeout_s > 1e9) {
				fprintf(stderr,
				    "indicator-sub: --timeout wants seconds "
				    "above 0, not '%s'\n",
				    optarg);
				return -1;
			}
			break;
		case 'K':
			o->server_key = optarg;
			break;
		case 'U':
			o->public_key = optarg;
			break;
		case 'X':
			o->secret_key = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		case 'V':
			printf("indicator-sub %s\n", INDICATOR_VERSION);
			exit(0);
		default:
			return -1;
		}
	}
	if (modes > 1) {
		fprintf(stderr, "indicator-sub: choose one of --json, --table "
				"and --progress\n");
		return -1;
	}
	return 0;
}

/* The prefixes from the command line; none, or "" among them, means
 * everything. */
static void
prefixes_set(struct sub *s, int argc, char *argv[])
{
	static char everything[] = "";

	s->all = argc == 0;
	for (int i = 0; i < argc; i++)
		if (argv[i][0] == '\0')
			s->all = true;
	if (s->all) {
		s->prefixes = xcalloc(1, sizeof(*s->prefixes));
		s->prefixes[0] = everything;
		s->nprefixes = 1;
	} else {
		s->prefixes = xcalloc((size_t)argc, sizeof(*s->prefixes));
		for (int i = 0; i < argc; i++)
			s->prefixes[i] = argv[i];
		s->nprefixes = (size_t)argc;
	}
	s->snap_seq = xcalloc(s->nprefixes, sizeof(*s->snap_seq));
}

static void
signals_set(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: zmq_poll() must return EINTR so the loop sees the
	 * flag. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* Snapshot, then (unless --once) the updates. Returns the exit code. */
static int
sub_main(struct sub *s)
{
	if (!s->opt->once && sub_open(s) == -1)
		return 1;
	if (snapshots_take(s) == -1)
		return quit ? 0 : 1;
	if (s->opt->mode != MODE_JSON)
		table_show(s);
	if (s->opt->once)
		return 0;
	return sub_run(s);
}

int
main(int argc, char *argv[])
{
	struct options opt;
	struct sub s = { 0 };
	struct config *cfg;
	char err[512];
	int rc;

	if (options_parse(argc, argv, &opt) == -1)
		return usage();
	cfg = xmalloc(sizeof(*cfg));
	if (config_load(cfg, opt.conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "indicator-sub: %s\n", err);
		free(cfg);
		return 1;
	}
	/* The endpoints given on the command line are checked as the keys
	 * they stand for. */
	if ((opt.publish != NULL &&
		config_set(cfg, "daemon", "publish", opt.publish, "--publish",
		    err, sizeof(err)) == -1) ||
	    (opt.snapshot != NULL &&
		config_set(cfg, "daemon", "snapshot", opt.snapshot,
		    "--snapshot", err, sizeof(err)) == -1)) {
		fprintf(stderr, "indicator-sub: %s\n", err);
		free(cfg);
		return EXIT_USAGE;
	}
	s.opt = &opt;
	s.reg = &cfg->reg;
	s.publish = cfg->publish;
	s.snapshot = cfg->snapshot;
	if (opt.server_key != NULL) {
		if (keys_client_load(opt.server_key,
			opt.public_key ? opt.public_key : "",
			opt.secret_key ? opt.secret_key : "", &s.keys, err,
			sizeof(err)) == -1) {
			fprintf(stderr, "indicator-sub: %s\n", err);
			free(cfg);
			return 1;
		}
		s.curve = true;
	}
	prefixes_set(&s, argc - optind, argv + optind);
	signals_set();
	setvbuf(stdout, NULL, _IOLBF, 0);
	s.tty = isatty(STDOUT_FILENO);
	s.zctx = zmq_ctx_new();
	if (s.zctx == NULL) {
		fprintf(stderr, "indicator-sub: zmq_ctx_new: %s\n",
		    zmq_strerror(errno));
		rc = 1;
	} else {
		rc = sub_main(&s);
	}
	if (s.sock != NULL)
		zmq_close(s.sock);
	if (s.zctx != NULL)
		zmq_ctx_term(s.zctx);
	aggmap_free(&s.map);
	free(s.prefixes);
	free(s.snap_seq);
	free(cfg);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "indicator-sub: write error: %s\n",
		    strerror(errno));
		return 1;
	}
	return rc;
}
