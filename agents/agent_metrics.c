/*
 * The agent's metrics endpoint (off by default; [agent] metrics =
 * 127.0.0.1:PORT), for run: the same HTTP server as the daemon's
 * (http/promhttp.c) on its own thread, reading a copy of the figures the
 * main loop hands it under a mutex on every turn.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "version.h"
#include "agent.h"
#include "log.h"
#include "promhttp.h"
#include "xmalloc.h"

/* /healthz fails when the loop has not turned for this long; with the
 * metrics on it turns at least every AGENT_METRICS_TICK_MS. */
#define AGENT_HEALTH_STALL_MS 10000
#define AGENT_METRICS_TICK_MS 1000

struct agent_figures {
	char id[IND_AGENT_ID_MAX + 1];
	char district[IND_CODE_MAX + 1];
	uint64_t pending;
	uint64_t dead;
	int64_t last_ack_wall_ms;
	bool reachable;
	unsigned long files_taken;
	unsigned long files_rejected;
	unsigned long sent;
	unsigned long accepted;
	unsigned long duplicate;
	unsigned long rejected;
};

static struct {
	struct promhttp *http;
	pthread_mutex_t lock;
	/* Under lock: */
	struct agent_figures fig;
	uint64_t tick_ms;
	bool ready;
	bool stopping;
} am = { .lock = PTHREAD_MUTEX_INITIALIZER };

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

static void
render(const struct agent_figures *g, bool ready, FILE *f)
{
	const char *acks = "indicator_agent_acks_total";
	char labels[160];

	promhttp_labels(
	    labels, sizeof(labels), "version", INDICATOR_VERSION, NULL, NULL);
	promhttp_family(f, "indicator_agent_build_info", "gauge",
	    "The agent's version, in the label; always 1.");
	promhttp_sample(f, "indicator_agent_build_info", labels, 1);
	promhttp_labels(
	    labels, sizeof(labels), "agent_id", g->id, "district", g->district);
	promhttp_family(f, "indicator_agent_info", "gauge",
	    "The agent's id and district, in the labels; always 1.");
	promhttp_sample(f, "indicator_agent_info", labels, 1);
	gauge(f, "indicator_agent_ready",
	    "1 while running: outbox open, drop directory watched.",
	    ready ? 1 : 0);
	gauge(f, "indicator_agent_reports_pending",
	    "Reports in the outbox not yet acknowledged.", (double)g->pending);
	gauge(f, "indicator_agent_dead_letters",
	    "Reports the daemon rejected, kept in the outbox's dead-letter "
	    "area.",
	    (double)g->dead);
	gauge(f, "indicator_agent_last_ack_timestamp_seconds",
	    "Time of the daemon's last answer (Unix seconds; 0: none since the "
	    "start).",
	    (double)(g->last_ack_wall_ms / 1000));
	gauge(f, "indicator_agent_daemon_reachable",
	    "1 once the daemon answered and no answer is overdue since "
	    "(ack_timeout_ms); 0 before the first answer and during an "
	    "outage.",
	    g->reachable ? 1 : 0);
	counter(f, "indicator_agent_files_taken_total",
	    "Files from the drop directory stored whole by the daemon and "
	    "moved to done/.",
	    g->files_taken);
	counter(f, "indicator_agent_files_rejected_total",
	    "Files from the drop directory moved to rejected/: refused by "
	    "the agent, or by the daemon (from sending/).",
	    g->files_rejected);
	counter(f, "indicator_agent_reports_sent_total",
	    "Reports sent, resends included.", g->sent);
	promhttp_family(f, acks, "counter", "Answers to reports, by status.");
	promhttp_sample_u64(f, acks, "{status=\"accepted\"}", g->accepted);
	promhttp_sample_u64(f, acks, "{status=\"duplicate\"}", g->duplicate);
	promhttp_sample_u64(f, acks, "{status=\"rejected\"}", g->rejected);
}

static uint64_t
mono_ms(void)
{
	return agent_now_ms();
}

/* promhttp_fn: on libmicrohttpd's thread. */
static unsigned
answer(const char *path, FILE *body, void *arg)
{
	struct agent_figures g;
	uint64_t stalled;
	bool ready, stopping;

	(void)arg;
	pthread_mutex_lock(&am.lock);
	g = am.fig;
	stalled = mono_ms() - am.tick_ms;
	ready = am.ready;
	stopping = am.stopping;
	pthread_mutex_unlock(&am.lock);
	if (strcmp(path, "/metrics") == 0) {
		render(&g, ready, body);
		return 200;
	}
	if (strcmp(path, "/healthz") == 0) {
		if (stalled <= AGENT_HEALTH_STALL_MS) {
			fputs("ok\n", body);
			return 200;
		}
		fprintf(body, "the agent's loop has not turned for %.1f s\n",
		    (double)stalled / 1000.0);
		return 503;
	}
	if (strcmp(path, "/readyz") == 0) {
		if (ready) {
			fputs("ready\n", body);
			return 200;
		}
		fputs(stopping ? "stopping\n" : "starting\n", body);
		return 503;
	}
	fputs("not found; the agent serves /metrics, /healthz and /readyz\n",
	    body);
	return 404;
}

int
agent_metrics_start(struct agent *a)
{
	char err[256];

	if (a->cfg.metrics[0] == '\0')
		return 0;
	pthread_mutex_lock(&am.lock);
	am.tick_ms = mono_ms();
	pthread_mutex_unlock(&am.lock);
	agent_metrics_update(a, false);
	am.http =
	    promhttp_start(a->cfg.metrics, answer, NULL, err, sizeof(err));
	if (am.http == NULL) {
		log_error("agent: metrics: %s", err);
		return -1;
	}
	log_info("agent: metrics: http://%s/metrics, /healthz, /readyz",
	    a->cfg.metrics);
	return 0;
}

uint64_t
agent_metrics_wait_ms(const struct agent *a)
{
	return a->cfg.metrics[0] != '\0' ? AGENT_METRICS_TICK_MS : UINT64_MAX;
}

void
agent_metrics_update(struct agent *a, bool ready)
{
	struct agent_figures g;
	uint64_t next_seq;

	if (a->cfg.metrics[0] == '\0')
		return;
	memset(&g, 0, sizeof(g));
	strlcpy_ok(g.id, a->cfg.id, sizeof(g.id));
	strlcpy_ok(g.district, a->cfg.district, sizeof(g.district));
	if (a->ob == NULL ||
	    outbox_counts(a->ob, &g.pending, &g.dead, &next_seq) != 0)
		g.pending = g.dead = 0;
	g.last_ack_wall_ms = a->last_ack_wall_ms;
	g.reachable = a->reachable;
	g.files_taken = a->files_taken;
	g.files_rejected = a->files_rejected;
	g.sent = a->sent;
	g.accepted = a->accepted;
	g.duplicate = a->duplicate;
	g.rejected = a->rejected;
	pthread_mutex_lock(&am.lock);
	am.fig = g;
	am.tick_ms = mono_ms();
	if (ready)
		am.ready = true;
	else if (am.ready) {
		am.ready = false;
		am.stopping = true;
	}
	pthread_mutex_unlock(&am.lock);
}

void
agent_metrics_stop(void)
{
	promhttp_stop(&am.http);
}
