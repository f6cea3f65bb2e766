/*
 * indicator-agent: command line, configuration, signals, the status
 * command and the service loop of run. The work is in agent_enqueue.c (CSV
 * and the drop directory into the outbox) and agent_flush.c (the outbox to
 * the daemon).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "log.h"
#include "xmalloc.h"

volatile sig_atomic_t agent_stop;

/* Options given on the command line, applied over the configuration. */
struct agent_opts {
	const char *conf;
	const char *id;
	const char *district;
	const char *endpoint;
	const char *outbox;
	const char *window;
	const char *ack_timeout;
	const char *timeout;
	const char *drop;
	const char *heartbeat;
	bool verbose;
};

enum {
	OPT_ID = 256,
	OPT_DISTRICT,
	OPT_ENDPOINT,
	OPT_OUTBOX,
	OPT_WINDOW,
	OPT_ACK_TIMEOUT,
	OPT_TIMEOUT,
	OPT_DROP,
	OPT_HEARTBEAT,
};

static const struct option agent_longopts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "id", required_argument, NULL, OPT_ID },
	{ "district", required_argument, NULL, OPT_DISTRICT },
	{ "endpoint", required_argument, NULL, OPT_ENDPOINT },
	{ "outbox", required_argument, NULL, OPT_OUTBOX },
	{ "window", required_argument, NULL, OPT_WINDOW },
	{ "ack-timeout", required_argument, NULL, OPT_ACK_TIMEOUT },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "drop", required_argument, NULL, OPT_DROP },
	{ "heartbeat", required_argument, NULL, OPT_HEARTBEAT },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

uint64_t
agent_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int64_t
agent_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
agent_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: indicator-agent [-v] [-c FILE] [--id ID] [--district CODE]"
	    " [--endpoint EP]\n"
	    "           [--outbox DIR] [--window N] [--ack-timeout MS]"
	    " [--timeout S]\n"
	    "           send [FILE...]\n"
	    "       indicator-agent [options] status\n"
	    "       indicator-agent [options] [--drop DIR] [--heartbeat MS]"
	    " run\n");
}

static void
agent_on_signal(int sig)
{
	(void)sig;
	agent_stop = 1;
}

/* run ignores SIGHUP: a service has nothing to reload, and must not die of
 * it. */
static int
agent_signals(bool service)
{
	struct sigaction sa, ign;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = agent_on_signal;
	sigemptyset(&sa.sa_mask);
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) == -1 ||
	    sigaction(SIGTERM, &sa, NULL) == -1 ||
	    (service && sigaction(SIGHUP, &ign, NULL) == -1)) {
		log_error("agent: sigaction: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* A whole decimal number in [min, max]. */
static int
agent_parse_uint(const char *opt, const char *s, unsigned long min,
    unsigned long max, unsigned *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v < min ||
	    v > max) {
		log_error("agent: %s: '%s' is not a number from %lu to "
			  "%lu",
		    opt, s, min, max);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

static int
agent_set_str(const char *opt, char *dst, size_t size, const char *val)
{
	if (!strlcpy_ok(dst, val, size)) {
		log_error("agent: %s: longer than %zu bytes", opt, size - 1);
		return -1;
	}
	return 0;
}

/*
 * The configuration: defaults, then the file, then the options. Only
 * sending needs to know who we are.
 */
static int
agent_configure(struct agent *a, const struct agent_opts *o, bool identity)
{
	struct agent_config *c = &a->cfg;
	char err[512];

	agent_config_defaults(c);
	if (o->conf != NULL &&
	    agent_config_load(c, o->conf, err, sizeof(err))) {
		log_error("agent: %s", err);
		return -1;
	}
	if ((o->id != NULL &&
		agent_set_str("--id", c->id, sizeof(c->id), o->id)) ||
	    (o->district != NULL && agent_set_str("--district", c->district,
					sizeof(c->district), o->district)) ||
	    (o->endpoint != NULL && agent_set_str("--endpoint", c->endpoint,
					sizeof(c->endpoint), o->endpoint)) ||
	    (o->outbox != NULL && agent_set_str("--outbox", c->outbox,
				      sizeof(c->outbox), o->outbox)) ||
	    (o->drop != NULL && agent_set_str("--drop", c->drop_dir,
				    sizeof(c->drop_dir), o->drop)))
		return -1;
	if ((o->window != NULL && agent_parse_uint("--window", o->window, 1,
				      10000, &c->window)) ||
	    (o->ack_timeout != NULL &&
		agent_parse_uint("--ack-timeout", o->ack_timeout, 1, 3600000,
		    &c->ack_timeout_ms)) ||
	    (o->timeout != NULL && agent_parse_uint("--timeout", o->timeout, 0,
				       31536000, &a->timeout_s)) ||
	    (o->heartbeat != NULL &&
		agent_parse_uint(
		    "--heartbeat", o->heartbeat, 0, 3600000, &c->heartbeat_ms)))
		return -1;
	a->verbose = o->verbose;

	if (identity && c->id[0] == '\0') {
		log_error("agent: no agent id: give --id ID or "
			  "set id in the [agent] section of -c FILE");
		return -1;
	}
	if (identity && c->district[0] == '\0') {
		log_error("agent: no district: give --district CODE or set "
			  "district in the [agent] section of -c FILE");
		return -1;
	}
	if (c->endpoint[0] == '\0' || c->outbox[0] == '\0') {
		log_error("agent: endpoint and outbox must not "
			  "be empty");
		return -1;
	}
	if (c->drop_dir[0] == '\0') {
		log_error("agent: drop_dir must not be empty");
		return -1;
	}
	return 0;
}

/* send and run write the outbox and hold its lock: one at a time. A
 * read-only command reads it beside them, taking no lock. */
static int
agent_open_outbox(struct agent *a, bool readonly)
{
	char err[512];

	if (readonly)
		a->ob = outbox_open_readonly(a->cfg.outbox, err, sizeof(err));
	else
		a->ob = outbox_open(a->cfg.outbox, err, sizeof(err));
	if (a->ob == NULL) {
		log_error("agent: %s", err);
		return -1;
	}
	return 0;
}

static int
agent_status_dead(uint64_t seq, const void *report, size_t report_len,
    const void *ack, size_t ack_len, void *arg)
{
	char head[64];

	(void)arg;
	snprintf(head, sizeof(head), "dead report seq %" PRIu64, seq);
	agent_print_rejection(stdout, head, report, report_len, ack, ack_len);
	return 0;
}

static int
agent_status(struct agent *a)
{
	uint64_t pending, dead, next_seq;

	if (outbox_counts(a->ob, &pending, &dead, &next_seq) == -1)
		return AGENT_EXIT_FAIL;
	printf("outbox: %s\n", a->cfg.outbox);
	printf("epoch: %" PRIu64 "\n", outbox_epoch(a->ob));
	printf("next seq: %" PRIu64 "\n", next_seq);
	printf("pending: %" PRIu64 "\n", pending);
	printf("dead: %" PRIu64 "\n", dead);
	if (outbox_dead_scan(a->ob, agent_status_dead, NULL) == -1)
		return AGENT_EXIT_FAIL;
	return fflush(stdout) == 0 ? AGENT_EXIT_OK : AGENT_EXIT_FAIL;
}

static int
agent_send(struct agent *a, char *const files[], int nfiles)
{
	int rc;

	for (int i = 0; i < nfiles && !agent_stop; i++)
		if (agent_enqueue_file(a, files[i]) == -1)
			a->failed = true;
	if (agent_stop)
		rc = AGENT_EXIT_PENDING;
	else
		rc = agent_flush(a);
	log_info("agent: %lu reports (%lu observations) sent: "
		 "%lu accepted, %lu duplicate, %lu rejected",
	    a->sent, a->observations, a->accepted, a->duplicate, a->rejected);
	if (rc != AGENT_EXIT_OK)
		return rc;
	return a->failed ? AGENT_EXIT_FAIL : AGENT_EXIT_OK;
}

/*
 * The service: takes files from the drop directory and flushes the outbox
 * continuously until SIGTERM or SIGINT. Reports not yet acknowledged stay
 * in the outbox for the next start.
 */
static int
agent_run(struct agent *a)
{
	struct agent_drop *d;
	struct agent_flush *f;
	uint64_t pending, dead, next_seq;
	bool ready;
	int rc = AGENT_EXIT_FAIL;

	a->service = true;
	if ((d = agent_drop_open(a)) == NULL)
		return AGENT_EXIT_FAIL;
	if ((f = agent_flush_new(a)) == NULL)
		goto drop_close;
	log_info("agent: running: drop %s, outbox %s, daemon %s",
	    a->cfg.drop_dir, a->cfg.outbox, a->cfg.endpoint);
	if (agent_drop_scan(d) == -1)
		goto flush_destroy;
	agent_flush_more(f);
	while (!agent_stop) {
		if (agent_flush_step(f, UINT64_MAX, agent_drop_fd(d), &ready) ==
		    -1)
			goto flush_destroy;
		if (!ready || agent_stop)
			continue;
		if (agent_drop_events(d) == -1)
			goto flush_destroy;
		agent_flush_more(f);
	}
	rc = AGENT_EXIT_OK;
flush_destroy:
	agent_flush_destroy(&f);
	if (outbox_counts(a->ob, &pending, &dead, &next_seq) == 0)
		log_info("agent: stopped: %" PRIu64
			 " reports left pending in the outbox",
		    pending);
drop_close:
	agent_drop_close(&d);
	return rc;
}

/* With -v: the peak resident set, to check that memory stays flat. */
static void
agent_debug_peak(const struct agent *a)
{
	char line[256];
	FILE *fp;

	if (!a->verbose || (fp = fopen("/proc/self/status", "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strncmp(line, "VmHWM:", 6) == 0)
			log_debug("agent: peak memory: %lu kB",
			    strtoul(line + 6, NULL, 10));
	fclose(fp);
}

static int
agent_getopt(int argc, char *argv[], struct agent_opts *o)
{
	int ch;

	memset(o, 0, sizeof(*o));
	while ((ch = getopt_long(argc, argv, "c:hv", agent_longopts, NULL)) !=
	       -1) {
		switch (ch) {
		case 'c':
			o->conf = optarg;
			break;
		case 'v':
			o->verbose = true;
			break;
		case OPT_ID:
			o->id = optarg;
			break;
		case OPT_DISTRICT:
			o->district = optarg;
			break;
		case OPT_ENDPOINT:
			o->endpoint = optarg;
			break;
		case OPT_OUTBOX:
			o->outbox = optarg;
			break;
		case OPT_WINDOW:
			o->window = optarg;
			break;
		case OPT_ACK_TIMEOUT:
			o->ack_timeout = optarg;
			break;
		case OPT_TIMEOUT:
			o->timeout = optarg;
			break;
		case OPT_DROP:
			o->drop = optarg;
			break;
		case OPT_HEARTBEAT:
			o->heartbeat = optarg;
			break;
		case 'h':
			agent_usage(stdout);
			exit(AGENT_EXIT_OK);
		default:
			return -1;
		}
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	struct agent a;
	struct agent_opts o;
	const char *cmd;
	int rc;

	log_init("indicator-agent", LOG_STYLE_SERVICE);
	memset(&a, 0, sizeof(a));
	a.start_ms = agent_now_ms();
	if (agent_getopt(argc, argv, &o) == -1 || optind >= argc) {
		agent_usage(stderr);
		return AGENT_EXIT_USAGE;
	}
	cmd = argv[optind++];
	if (strcmp(cmd, "send") != 0 &&
	    (strcmp(cmd, "status") != 0 || optind != argc) &&
	    (strcmp(cmd, "run") != 0 || optind != argc)) {
		agent_usage(stderr);
		return AGENT_EXIT_USAGE;
	}
	if (agent_configure(&a, &o, strcmp(cmd, "status") != 0) == -1)
		return AGENT_EXIT_USAGE;
	log_set_format(a.cfg.log_format);
	log_set_level(a.verbose ? CONFIG_LOG_DEBUG : CONFIG_LOG_INFO);
	if (agent_signals(strcmp(cmd, "run") == 0) == -1 ||
	    agent_open_outbox(&a, strcmp(cmd, "status") == 0) == -1)
		return AGENT_EXIT_FAIL;

	if (strcmp(cmd, "status") == 0)
		rc = agent_status(&a);
	else if (strcmp(cmd, "run") == 0)
		rc = agent_run(&a);
	else
		rc = agent_send(&a, argv + optind, argc - optind);
	outbox_close(&a.ob);
	agent_debug_peak(&a);
	return rc;
}
