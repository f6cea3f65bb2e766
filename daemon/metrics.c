/*
 * Metrics for monitoring in the Prometheus text exposition format, served
 * by libmicrohttpd on a loopback HTTP port when [daemon] metrics is set.
 *
 * libmicrohttpd answers from its own thread; the main loop publishes a
 * copy of the counters under a mutex after each turn, so the handler never
 * touches the daemon's state.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "indicatord.h"
#include "xmalloc.h"

#define PAGE_MAX 8192

struct metrics {
	struct MHD_Daemon *mhd;
	pthread_mutex_t lock;
	struct control_stats stats; /* under lock */
};

static struct metrics metrics = { .lock = PTHREAD_MUTEX_INITIALIZER };

static size_t
counter(char *buf, size_t off, const char *name, const char *help,
    const char *labels, uint64_t v, bool first)
{
	if (off >= PAGE_MAX)
		return off;
	if (first)
		off += (size_t)snprintf(buf + off, PAGE_MAX - off,
		    "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	if (off < PAGE_MAX)
		off += (size_t)snprintf(buf + off, PAGE_MAX - off,
		    "%s%s %llu\n", name, labels, (unsigned long long)v);
	return off;
}

static size_t
gauge(char *buf, size_t off, const char *name, const char *help, double v)
{
	if (off < PAGE_MAX)
		off += (size_t)snprintf(buf + off, PAGE_MAX - off,
		    "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help,
		    name, name, v);
	return off;
}

/* The exposition text of s into buf (PAGE_MAX bytes); its length. */
static size_t
render(const struct control_stats *s, char *buf)
{
	const struct counters *c = &s->count;
	const char *r = "indicatord_reports_total";
	const char *rh = "Reports answered, by status.";
	size_t off = 0;
	uint64_t cum = 0;

	off = counter(
	    buf, off, r, rh, "{status=\"accepted\"}", c->accepted, true);
	off = counter(
	    buf, off, r, rh, "{status=\"duplicate\"}", c->duplicate, false);
	off = counter(
	    buf, off, r, rh, "{status=\"rejected\"}", c->rejected, false);
	off = counter(
	    buf, off, r, rh, "{status=\"retry_later\"}", c->retry, false);
	off = counter(buf, off, "indicatord_malformed_total",
	    "Messages that were not one decodable AgentMessage.", "",
	    c->malformed, true);
	off = counter(buf, off, "indicatord_unauthorised_total",
	    "Reports refused as not_authorised.", "", c->unauthorised, true);
	off = counter(buf, off, "indicatord_rate_limited_total",
	    "Reports answered RETRY_LATER for the per-agent rate limit.", "",
	    c->rate_limited, true);
	off = counter(buf, off, "indicatord_heartbeats_total",
	    "Heartbeats answered.", "", c->heartbeats, true);
	off = counter(buf, off, "indicatord_observations_total",
	    "Observations stored.", "", c->observations, true);
	off = counter(buf, off, "indicatord_batches_total",
	    "Write transactions (group commits).", "", c->batches, true);
	off = counter(buf, off, "indicatord_checkpoints_total",
	    "Checkpoints: latest values and aggregates written from memory.",
	    "", c->checkpoints, true);
	off = gauge(buf, off, "indicatord_checkpoint_seconds_max",
	    "The longest checkpoint so far (ingest waits for it).",
	    c->checkpoint_max_s);
	off = counter(buf, off, "indicatord_publications_dropped_total",
	    "Aggregate updates dropped at the PUB high-water mark.", "",
	    s->publications_dropped, true);
	off = gauge(buf, off, "indicatord_uptime_seconds",
	    "Seconds since the daemon started.", s->uptime_s);
	off = gauge(buf, off, "indicatord_agents_connected",
	    "Connections on the ingest socket.", (double)s->agents_connected);
	off = gauge(buf, off, "indicatord_subscribers",
	    "Connections on the publish socket.", (double)s->subscribers);
	off = gauge(buf, off, "indicatord_store_map_bytes",
	    "Size of the LMDB map.", (double)s->map_bytes);
	off = gauge(buf, off, "indicatord_store_used_bytes",
	    "Bytes of the LMDB map in use.", (double)s->used_bytes);
	off = gauge(buf, off, "indicatord_store_observations",
	    "Latest observations stored.", (double)s->observations);
	if (off < PAGE_MAX)
		off += (size_t)snprintf(buf + off, PAGE_MAX - off,
		    "# HELP indicatord_commit_seconds Time of each batch's "
		    "write transaction, commit included.\n"
		    "# TYPE indicatord_commit_seconds histogram\n");
	for (size_t i = 0; i <= CONTROL_BUCKETS && off < PAGE_MAX; i++) {
		char le[32];

		cum += c->commit_hist[i];
		if (i < CONTROL_BUCKETS)
			snprintf(le, sizeof(le), "%g", control_buckets[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		off += (size_t)snprintf(buf + off, PAGE_MAX - off,
		    "indicatord_commit_seconds_bucket{le=\"%s\"} %llu\n", le,
		    (unsigned long long)cum);
	}
	if (off < PAGE_MAX)
		off += (size_t)snprintf(buf + off, PAGE_MAX - off,
		    "indicatord_commit_seconds_sum %.9f\n"
		    "indicatord_commit_seconds_count %llu\n",
		    c->commit_sum_s, (unsigned long long)c->commits);
	return off < PAGE_MAX ? off : PAGE_MAX - 1;
}

static enum MHD_Result
answer(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_len, void **state)
{
	struct MHD_Response *resp;
	struct control_stats s;
	enum MHD_Result ret;
	unsigned status = MHD_HTTP_OK;
	char *page = xmalloc(PAGE_MAX);
	size_t len;

	(void)cls, (void)version, (void)upload, (void)upload_len, (void)state;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		len = (size_t)snprintf(page, PAGE_MAX, "GET /metrics only\n");
	} else if (strcmp(url, "/metrics") != 0) {
		status = MHD_HTTP_NOT_FOUND;
		len = (size_t)snprintf(
		    page, PAGE_MAX, "not found; the metrics are at /metrics\n");
	} else {
		pthread_mutex_lock(&metrics.lock);
		s = metrics.stats;
		pthread_mutex_unlock(&metrics.lock);
		len = render(&s, page);
	}
	resp =
	    MHD_create_response_from_buffer(len, page, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(
	    resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* "127.0.0.1:9464" into a loopback address: config_check_listen(), the
 * check config_load() made. */
static bool
parse_listen(const char *s, struct sockaddr_in *sa)
{
	uint32_t addr;
	uint16_t port;
	char why[256];

	if (config_check_listen(s, &addr, &port, why, sizeof(why)) != NULL)
		return false;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(port);
	sa->sin_addr.s_addr = htonl(addr);
	return true;
}

int
metrics_init(struct daemon *d)
{
	struct sockaddr_in sa;

	if (d->cfg.metrics[0] == '\0')
		return 0;
	if (!parse_listen(d->cfg.metrics, &sa)) {
		log_error("metrics: '%s' is not a loopback HOST:PORT (e.g. "
			  "127.0.0.1:9464); the metrics are for a local "
			  "scraper",
		    d->cfg.metrics);
		return -1;
	}
	metrics.mhd = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
	    answer, NULL, MHD_OPTION_SOCK_ADDR, &sa,
	    MHD_OPTION_CONNECTION_LIMIT, 16U, MHD_OPTION_CONNECTION_TIMEOUT,
	    10U, MHD_OPTION_END);
	if (metrics.mhd == NULL) {
		log_error("metrics: cannot listen on %s", d->cfg.metrics);
		return -1;
	}
	metrics_update(d);
	log_info("metrics: http://%s/metrics", d->cfg.metrics);
	return 0;
}

void
metrics_update(struct daemon *d)
{
	struct control_stats s;

	if (metrics.mhd == NULL)
		return;
	control_stats(d, &s);
	pthread_mutex_lock(&metrics.lock);
	metrics.stats = s;
	pthread_mutex_unlock(&metrics.lock);
}

void
metrics_destroy(void)
{
	if (metrics.mhd != NULL)
		MHD_stop_daemon(metrics.mhd);
	metrics.mhd = NULL;
}
