/*
 * Metrics for alerting, served by libmicrohttpd (http/promhttp.c) on a
 * loopback port when [daemon] metrics is set: /metrics in the Prometheus
 * text format, /healthz and /readyz.
 *
 * The HTTP thread never touches the daemon's state: the main loop
 * publishes a copy of the figures under a mutex after each turn and each
 * batch (metrics_update()), with the time of that turn, which is what
 * /healthz judges. The per-district figures (last report, metrics missing
 * for the current period) are kept here, in struct watch.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "version.h"
#include "indicatord.h"
#include "ledger.h"
#include "promhttp.h"
#include "xmalloc.h"

/* /healthz fails when the main loop has not turned for this long; it
 * turns at least once a second when healthy. */
#define HEALTH_STALL_MS 10000
/* The missing metrics are counted after each checkpoint, and at least
 * this often (the period changes at midnight on the first of a month). */
#define MISSING_EVERY_MS 60000

enum phase {
	PHASE_STARTING, /* the log is being replayed, sockets not all bound */
	PHASE_READY,
	PHASE_STOPPING,
};

struct metrics {
	struct promhttp *http;
	pthread_mutex_t lock;
	/* Under lock: */
	struct control_stats stats;
	int64_t tick_ms; /* monotonic time of the main loop's last turn */
	enum phase phase;
	bool replaying;
};

static struct metrics metrics = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
counter(FILE *f, const char *name, const char *help, uint64_t v)
{
	promhttp_family(f, name, "counter", help);
	promhttp_sample_u64(f, name, "", v);
}

static void
gauge(FILE *f, const char *name, const char *help, double v)
{
	promhttp_family(f, name, "gauge", help);
	promhttp_sample(f, name, "", v);
}

/* The per-district families. */
static void
render_districts(FILE *f, const struct watch *w)
{
	const char *last = "indicatord_last_report_timestamp_seconds";
	const char *missing = "indicatord_metrics_missing";
	char labels[128];

	promhttp_family(f, last, "gauge",
	    "Time of the district's last accepted report (Unix seconds; 0: "
	    "never).");
	for (size_t i = 0; i < w->n; i++) {
		promhttp_labels(labels, sizeof(labels), "district",
		    w->d[i].code, NULL, NULL);
		promhttp_sample(
		    f, last, labels, (double)(w->d[i].last_report_ms / 1000));
	}
	gauge(f, "indicatord_registry_metrics",
	    "Metrics in the registry: what each district reports per period.",
	    (double)w->nmetrics);
	promhttp_family(f, missing, "gauge",
	    "Registry metrics the district has no observation of for the "
	    "current period: the last completed month in the configured time "
	    "zone.");
	for (size_t i = 0; i < w->n; i++) {
		if (w->d[i].missing < 0)
			continue;
		promhttp_labels(labels, sizeof(labels), "district",
		    w->d[i].code, "period", w->period);
		promhttp_sample(f, missing, labels, w->d[i].missing);
	}
}

/* The exposition text of s. */
static void
render(const struct control_stats *s, bool ready, FILE *f)
{
	const struct counters *c = &s->count;
	const char *r = "indicatord_reports_total";
	const char *rej = "indicatord_rejections_total";
	const char *ret = "indicatord_retry_later_total";
	const char *h = "indicatord_commit_seconds";
	char labels[96];
	uint64_t cum = 0;

	promhttp_labels(
	    labels, sizeof(labels), "version", INDICATOR_VERSION, NULL, NULL);
	promhttp_family(f, "indicatord_build_info", "gauge",
	    "The daemon's version, in the label; always 1.");
	promhttp_sample(f, "indicatord_build_info", labels, 1);
	gauge(f, "indicatord_ready",
	    "1 when /readyz answers 200: store open, sockets bound, log "
	    "replayed, not stopping.",
	    ready ? 1 : 0);

	promhttp_family(f, r, "counter",
	    "Reports answered, by status (accepted: reports stored, a file's "
	    "parts with its last).");
	promhttp_sample_u64(f, r, "{status=\"accepted\"}", c->accepted);
	promhttp_sample_u64(f, r, "{status=\"duplicate\"}", c->duplicate);
	promhttp_sample_u64(f, r, "{status=\"rejected\"}", c->rejected);
	promhttp_sample_u64(f, r, "{status=\"retry_later\"}", c->retry);
	promhttp_family(f, rej, "counter",
	    "Reports rejected, by code: a report once for each distinct code "
	    "it carries.");
	for (size_t i = 0; i < VALIDATE_REJECT_CODES; i++) {
		promhttp_labels(labels, sizeof(labels), "code",
		    validate_reject_codes[i], NULL, NULL);
		promhttp_sample_u64(f, rej, labels, c->rejections[i]);
	}
	promhttp_family(f, ret, "counter", "RETRY_LATER answers, by code.");
	for (size_t i = 0; i < VALIDATE_RETRY_CODES; i++) {
		promhttp_labels(labels, sizeof(labels), "code",
		    validate_retry_codes[i], NULL, NULL);
		promhttp_sample_u64(f, ret, labels, c->retries[i]);
	}
	counter(f, "indicatord_malformed_total",
	    "Messages that were not one decodable AgentMessage.", c->malformed);
	counter(f, "indicatord_unauthorised_total",
	    "Reports refused as not_authorised.", c->unauthorised);
	counter(f, "indicatord_rate_limited_total",
	    "Reports answered RETRY_LATER for the per-agent rate limit.",
	    c->rate_limited);
	counter(f, "indicatord_answers_dropped_total",
	    "Acks not sent because the answers queued for peers were at "
	    "answers_mb (the agent resends and gets DUPLICATE).",
	    c->answers_dropped);
	counter(f, "indicatord_snapshots_refused_total",
	    "Snapshot requests not served because the answers queued for "
	    "peers were at answers_mb.",
	    c->snapshots_refused);
	gauge(f, "indicatord_answers_queued_bytes",
	    "Bytes of acks and snapshots queued for peers (answers_mb "
	    "bounds it).",
	    (double)budget_answers_queued());
	counter(f, "indicatord_heartbeats_total", "Heartbeats answered.",
	    c->heartbeats);
	counter(f, "indicatord_parts_staged_total",
	    "Parts of files answered STAGED.", c->staged);
	counter(f, "indicatord_files_stored_total",
	    "Files of several parts (or one part, with file fields) stored "
	    "whole.",
	    c->files_stored);
	counter(f, "indicatord_files_rejected_total", "Files refused whole.",
	    c->files_rejected);
	counter(f, "indicatord_files_abandoned_total",
	    "Files left incomplete and discarded: another report took their "
	    "next seq, or no part came for 7 days.",
	    c->files_abandoned);
	gauge(f, "indicatord_files_open",
	    "Files with parts staged, waiting for their last part.",
	    (double)c->files_open);
	counter(f, "indicatord_observations_total", "Observations stored.",
	    c->observations);
	counter(f, "indicatord_batches_total",
	    "Write transactions (group commits).", c->batches);
	counter(f, "indicatord_checkpoints_total",
	    "Checkpoints: latest values and aggregates written from memory.",
	    c->checkpoints);
	gauge(f, "indicatord_checkpoint_seconds_max",
	    "The longest checkpoint so far (written beside ingest, by "
	    "the checkpoint thread).",
	    c->checkpoint_max_s);
	counter(f, "indicatord_publications_dropped_total",
	    "Publications a subscriber's full queue (subscriber_mb) refused; "
	    "see the README, \"Budgets\".",
	    s->publications_dropped);
	counter(f, "indicatord_publications_unheard_total",
	    "Publications not sent because no subscription takes their "
	    "topic.",
	    s->publications_unheard);
	gauge(f, "indicatord_uptime_seconds",
	    "Seconds since the daemon started.", s->uptime_s);
	gauge(f, "indicatord_agents_connected",
	    "Connections on the ingest socket.", (double)s->agents_connected);
	gauge(f, "indicatord_subscribers", "Connections on the publish socket.",
	    (double)s->subscribers);

	gauge(f, "indicatord_store_map_bytes",
	    "Size of the LMDB map now (it grows up to map_max_mb).",
	    (double)s->map_bytes);
	gauge(f, "indicatord_store_map_max_bytes",
	    "The largest the map may grow (map_max_mb).",
	    (double)s->map_max_bytes);
	gauge(f, "indicatord_store_used_bytes", "Bytes of the LMDB map in use.",
	    (double)s->used_bytes);
	gauge(f, "indicatord_store_used_ratio",
	    "Bytes in use over map_max_mb: at 1 every report is answered "
	    "RETRY_LATER store_full.",
	    s->map_max_bytes > 0
		? (double)s->used_bytes / (double)s->map_max_bytes
		: 0);
	gauge(f, "indicatord_store_observations", "Latest observations stored.",
	    (double)s->observations);

	render_districts(f, &s->watch);

	promhttp_family(f, h, "histogram",
	    "Time of each batch's write transaction, commit included.");
	for (size_t i = 0; i <= CONTROL_BUCKETS; i++) {
		char le[32];

		cum += c->commit_hist[i];
		if (i < CONTROL_BUCKETS)
			snprintf(
			    le, sizeof(le), "{le=\"%g\"}", control_buckets[i]);
		else
			snprintf(le, sizeof(le), "{le=\"+Inf\"}");
		promhttp_sample_u64(
		    f, "indicatord_commit_seconds_bucket", le, cum);
	}
	promhttp_sample(
	    f, "indicatord_commit_seconds_sum", "", c->commit_sum_s);
	promhttp_sample_u64(
	    f, "indicatord_commit_seconds_count", "", c->commits);
}

/* promhttp_fn: on libmicrohttpd's thread. */
static unsigned
answer(const char *path, FILE *body, void *arg)
{
	struct control_stats *s;
	int64_t stalled;
	enum phase phase;
	bool replaying, ready;

	(void)arg;
	pthread_mutex_lock(&metrics.lock);
	stalled = mono_ms() - metrics.tick_ms;
	phase = metrics.phase;
	replaying = metrics.replaying;
	pthread_mutex_unlock(&metrics.lock);
	ready = phase == PHASE_READY && !replaying;

	if (strcmp(path, "/metrics") == 0) {
		s = xmalloc(sizeof(*s));
		pthread_mutex_lock(&metrics.lock);
		*s = metrics.stats;
		pthread_mutex_unlock(&metrics.lock);
		render(s, ready, body);
		free(s);
		return 200;
	}
	if (strcmp(path, "/healthz") == 0) {
		if (stalled <= HEALTH_STALL_MS) {
			fputs("ok\n", body);
			return 200;
		}
		fprintf(body, "the main loop has not turned for %.1f s\n",
		    (double)stalled / 1000.0);
		return 503;
	}
	if (strcmp(path, "/readyz") == 0) {
		if (ready) {
			fputs("ready\n", body);
			return 200;
		}
		fputs(replaying			? "replaying the log\n"
		      : phase == PHASE_STOPPING ? "stopping\n"
						: "starting\n",
		    body);
		return 503;
	}
	fputs("not found; the daemon serves /metrics, /healthz and /readyz\n",
	    body);
	return 404;
}

int
metrics_init(struct daemon *d)
{
	char err[256];

	if (d->cfg.metrics[0] == '\0')
		return 0;
	metrics_tick();
	metrics.http =
	    promhttp_start_limited(d->cfg.metrics, d->cfg.metrics_connections,
		d->cfg.metrics_timeout_s, answer, NULL, err, sizeof(err));
	if (metrics.http == NULL) {
		log_error("metrics: %s", err);
		return -1;
	}
	metrics_update(d);
	log_info(
	    "metrics: http://%s/metrics, /healthz, /readyz", d->cfg.metrics);
	return 0;
}

void
metrics_tick(void)
{
	pthread_mutex_lock(&metrics.lock);
	metrics.tick_ms = mono_ms();
	pthread_mutex_unlock(&metrics.lock);
}

void
metrics_set_ready(bool ready)
{
	pthread_mutex_lock(&metrics.lock);
	metrics.phase = ready			       ? PHASE_READY
			: metrics.phase == PHASE_READY ? PHASE_STOPPING
						       : metrics.phase;
	pthread_mutex_unlock(&metrics.lock);
}

void
metrics_set_replaying(bool replaying)
{
	pthread_mutex_lock(&metrics.lock);
	metrics.replaying = replaying;
	pthread_mutex_unlock(&metrics.lock);
}

int
metrics_watch_load(struct daemon *d)
{
	const struct registry *reg = &d->cfg.reg;
	struct watch *w = &d->watch;
	char name[sizeof(META_REPORT_MS) + IND_CODE_MAX];
	struct store_txn *t;
	int rc = 0;

	if ((t = store_txn_begin(d->store, false)) == NULL)
		return -1;
	memset(w, 0, sizeof(*w));
	w->nmetrics = reg->nmetrics;
	for (size_t i = 0; i < reg->ndistricts && rc == 0; i++) {
		struct watch_district *wd = &w->d[w->n++];
		uint64_t ms;

		strlcpy_ok(wd->code, reg->districts[i].code, sizeof(wd->code));
		snprintf(name, sizeof(name), META_REPORT_MS "%s", wd->code);
		if ((rc = store_meta_get(t, name, &ms)) == 0)
			wd->last_report_ms = (int64_t)ms;
		wd->missing = -1;
	}
	store_txn_abort(&t);
	if (rc != 0)
		log_error("metrics: cannot read the districts' last reports");
	return rc == 0 ? 0 : -1;
}

void
metrics_report_seen(struct daemon *d, const char *district, int64_t ms)
{
	struct watch *w = &d->watch;

	for (size_t i = 0; i < w->n; i++)
		if (strcmp(w->d[i].code, district) == 0) {
			w->d[i].last_report_ms = ms;
			return;
		}
}

/* The last completed month in the configured time zone (the process's
 * TZ, set at start): "2025-09" during October 2025. */
static void
current_period(char *buf, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;
	char p[32];
	int year, month;

	localtime_r(&now, &tm);
	year = tm.tm_year + 1900;
	month = tm.tm_mon; /* 0-11: the previous month, 1-12 */
	if (month == 0) {
		month = 12;
		year--;
	}
	snprintf(p, sizeof(p), "%04d-%02d", year, month);
	strlcpy_ok(buf, p, len);
}

/*
 * Counts, per district, the registry metrics with no observation for the
 * current period, as `indicatorctl expected` does: a metric is reported
 * when the district has one of it for exactly that period, in any
 * industry, which is when its district aggregate over all industries
 * exists. Read from the stored aggregates, so after a checkpoint.
 */
/* Checkpoints so far (0 before the ledger is open). */
static uint64_t
checkpoints(const struct daemon *d)
{
	struct ledger_stats ls;

	if (d->ledger == NULL)
		return 0;
	ledger_stats(d->ledger, &ls);
	return ls.checkpoints;
}

static void
watch_count(struct daemon *d)
{
	const struct registry *reg = &d->cfg.reg;
	struct watch *w = &d->watch;
	char topic[IND_TOPIC_MAX + 1];
	struct store_txn *t;

	current_period(w->period, sizeof(w->period));
	w->checkpoints = checkpoints(d);
	w->counted_ms = mono_ms();
	if ((t = store_txn_begin(d->store, false)) == NULL)
		return;
	for (size_t i = 0; i < w->n; i++) {
		int missing = 0;

		for (size_t m = 0; m < reg->nmetrics && missing >= 0; m++) {
			const void *buf;
			size_t len;
			int rc;

			snprintf(topic, sizeof(topic), "agg/%s/*/%s/%s",
			    reg->metrics[m].code, w->d[i].code, w->period);
			rc = store_agg_get(t, topic, &buf, &len);
			if (rc == STORE_NOTFOUND)
				missing++;
			else if (rc != 0)
				missing = -1;
		}
		w->d[i].missing = missing;
	}
	store_txn_abort(&t);
}

void
metrics_update(struct daemon *d)
{
	struct control_stats *s;
	int64_t now;

	if (metrics.http == NULL)
		return;
	now = mono_ms();
	if (d->watch.counted_ms == 0 ||
	    d->watch.checkpoints != checkpoints(d) ||
	    now - d->watch.counted_ms >= MISSING_EVERY_MS)
		watch_count(d);
	s = xmalloc(sizeof(*s));
	control_stats(d, s);
	pthread_mutex_lock(&metrics.lock);
	metrics.stats = *s;
	metrics.tick_ms = now;
	pthread_mutex_unlock(&metrics.lock);
	free(s);
}

void
metrics_destroy(void)
{
	promhttp_stop(&metrics.http);
}
