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
#include "i18n.h"
#include "intl.h"
#include "keys.h"
#include "log.h"
#include "version.h"
#include "xmalloc.h"

volatile sig_atomic_t agent_stop;

/* Options given on the command line, applied over the configuration. */
struct agent_opts {
	bool check; /* -n */
	bool help; /* -h: the usage, or the command's help */
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
	const char *encoding;
	const char *period;
	bool purge;
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
	OPT_ENCODING,
	OPT_PERIOD,
	OPT_PURGE,
	OPT_VERSION,
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
	{ "encoding", required_argument, NULL, OPT_ENCODING },
	{ "period", required_argument, NULL, OPT_PERIOD },
	{ "purge", no_argument, NULL, OPT_PURGE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "check", no_argument, NULL, 'n' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

/* The commands: what `indicator-agent help CMD` and `CMD --help` print. */
static const struct agent_cmd {
	const char *name;
	const char *args;
	const char *help;
} agent_cmds[] = {
	{ "send", "[FILE...]",
	    "Enqueues each CSV file into the outbox, all or nothing per file,\n"
	    "then sends until the outbox is empty (or --timeout passes). With\n"
	    "no file, sends what the outbox holds. Exit 0 when every report\n"
	    "was accepted or duplicate, 1 when a file was bad or a report\n"
	    "rejected, 2 for usage or configuration, 3 when --timeout passed\n"
	    "or a signal came with reports pending (they stay in the outbox).\n"
	    "Needs id and district." },
	{ "status", "",
	    "Prints the outbox, its epoch, the next sequence number, the\n"
	    "pending and dead reports, and why each dead one was rejected." },
	{ "check", "FILE...",
	    "Checks each CSV file as the daemon would, offline: the file's\n"
	    "encoding and columns, every row, then the daemon's own\n"
	    "validation (core/validate.c) of each report send would make,\n"
	    "with the registry of the agent's configuration and today's\n"
	    "date in its time zone. Prints each problem as\n"
	    "FILE:LINE:COLUMN: what is wrong; what to do. Exit 0 when every\n"
	    "file would be accepted whole, 1 otherwise. Needs district." },
	{ "template", "--period P [--encoding gb18030|utf-8-bom]",
	    "Writes on standard output a CSV file with one row per industry\n"
	    "and metric of the registry for period P (2025, 2025-09,\n"
	    "2025-Q3, or as clerks write them), its values empty, for a clerk\n"
	    "to fill in with Excel or WPS and drop back. UTF-8 with a byte\n"
	    "order mark (what Excel needs to read UTF-8) unless --encoding\n"
	    "gb18030." },
	{ "dead-letters", "[--purge]",
	    "Lists the reports the daemon rejected (the dead letters), each\n"
	    "problem as FILE:LINE:COLUMN as when it was rejected; with\n"
	    "--purge, removes them from the outbox (not while send or run\n"
	    "holds it)." },
	{ "run", "",
	    "The service: takes each *.csv file closed in or renamed into the\n"
	    "drop directory (--drop, drop_dir), enqueues it as send does and\n"
	    "moves it to done/ (a bad one to rejected/ with NAME.err), and\n"
	    "sends continuously until SIGTERM or SIGINT (exit 0; what is\n"
	    "pending stays in the outbox). Needs id and district; -n checks\n"
	    "what it needs without starting." },
	{ "help", "[COMMAND]", "Prints the usage, or the help of COMMAND." },
};

/* An option that mirrors a key of the [agent] section: its help line. */
static const struct agent_opthelp {
	const char *opt;
	const char *key;
	const char *text;
} agent_opthelp[] = {
	{ "-c, --config FILE", NULL,
	    "the [agent] file, then its conf.d/*.conf" },
	{ "    --id ID", "id", "this agent's id, 1 to 64 bytes" },
	{ "    --district CODE", "district", "the district reported for" },
	{ "    --endpoint EP", "endpoint", "tcp://HOST:PORT or ipc://PATH" },
	{ "    --outbox DIR", "outbox", "the durable outbox" },
	{ "    --window N", "window", "reports in flight" },
	{ "    --ack-timeout MS", "ack_timeout_ms",
	    "resend a report not acknowledged by then" },
	{ "    --timeout S", NULL, "send: give up after S seconds (0: never)" },
	{ "    --drop DIR", "drop_dir", "run: the drop directory" },
	{ "    --heartbeat MS", "heartbeat_ms", "run: a heartbeat when idle" },
	{ "    --encoding E", "encoding",
	    "the files' encoding: auto, utf-8, utf-16le, utf-16be, gb18030;\n"
	    "                         template: utf-8-bom or gb18030" },
	{ "    --period P", NULL, "template: the period" },
	{ "    --purge", NULL, "dead-letters: remove them" },
	{ "-v, --verbose", NULL, "debug lines, and the peak memory at exit" },
	{ "-n, --check", NULL,
	    "check the configuration as run needs it, then exit" },
	{ "-h, --help", NULL, "this, or with a command its help" },
	{ "    --version", NULL, "print the version and exit" },
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

/* One option's help line; the bounds and default of the key it mirrors
 * come from the configuration's table (agent_config_bounds()). */
static void
agent_opthelp_print(FILE *fp, const struct agent_opthelp *h)
{
	long long min, max;
	const char *def;

	if (h->key != NULL &&
	    agent_config_bounds(h->key, &min, &max, &def) == 0)
		fprintf(fp,
		    "  %-22s %s\n  %-22s (%s: %lld to %lld, default "
		    "%s)\n",
		    h->opt, h->text, "", h->key, min, max, def);
	else if (h->key != NULL)
		fprintf(fp, "  %-22s %s (%s)\n", h->opt, h->text, h->key);
	else
		fprintf(fp, "  %-22s %s\n", h->opt, h->text);
}

static void
agent_usage(FILE *fp)
{
	fprintf(fp, "usage: indicator-agent [OPTIONS] COMMAND [ARGS]\n"
		    "       indicator-agent [OPTIONS] -n\n"
		    "       indicator-agent --help | --version\n"
		    "commands:\n");
	for (size_t i = 0; i < sizeof(agent_cmds) / sizeof(agent_cmds[0]); i++)
		fprintf(fp, "  %s%s%s\n", agent_cmds[i].name,
		    agent_cmds[i].args[0] != '\0' ? " " : "",
		    agent_cmds[i].args);
	fprintf(fp, "options (they override the configuration file):\n");
	for (size_t i = 0; i < sizeof(agent_opthelp) / sizeof(agent_opthelp[0]);
	     i++)
		agent_opthelp_print(fp, &agent_opthelp[i]);
	fprintf(fp, "'indicator-agent help COMMAND' prints a command's "
		    "help.\n");
}

/* `help CMD` and `CMD --help`: 0, or 2 for an unknown command. */
static int
agent_help(const char *cmd)
{
	const struct agent_cmd *c = NULL;

	for (size_t i = 0; i < sizeof(agent_cmds) / sizeof(agent_cmds[0]); i++)
		if (strcmp(agent_cmds[i].name, cmd) == 0)
			c = &agent_cmds[i];
	if (c == NULL) {
		fprintf(stderr, "indicator-agent: unknown command '%s'\n", cmd);
		agent_usage(stderr);
		return AGENT_EXIT_USAGE;
	}
	printf("usage: indicator-agent [OPTIONS] %s%s%s\n\n%s\n", c->name,
	    c->args[0] != '\0' ? " " : "", c->args, c->help);
	if (strcmp(c->name, "help") != 0) {
		printf("\noptions:\n");
		for (size_t i = 0;
		     i < sizeof(agent_opthelp) / sizeof(agent_opthelp[0]); i++)
			agent_opthelp_print(stdout, &agent_opthelp[i]);
	}
	return AGENT_EXIT_OK;
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

/*
 * The configuration: defaults, then the file, then the options. Only
 * sending needs to know who we are.
 */
static int
agent_configure(struct agent *a, const struct agent_opts *o, bool identity,
    bool need_district)
{
	struct agent_config *c = &a->cfg;
	char err[512];

	/* Options that mirror keys: set as a line of the file would be,
	 * bounds and syntax from the one table in config.c. */
	const struct {
		const char *opt;
		const char *key;
		const char *val;
	} keys[] = {
		{ "--id", "id", o->id },
		{ "--district", "district", o->district },
		{ "--endpoint", "endpoint", o->endpoint },
		{ "--outbox", "outbox", o->outbox },
		{ "--drop", "drop_dir", o->drop },
		{ "--window", "window", o->window },
		{ "--ack-timeout", "ack_timeout_ms", o->ack_timeout },
		{ "--heartbeat", "heartbeat_ms", o->heartbeat },
		{ "--encoding", "encoding", o->encoding },
	};

	agent_config_defaults(c);
	if (o->conf != NULL &&
	    agent_config_load(c, o->conf, err, sizeof(err))) {
		log_error("agent: %s", err);
		return -1;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i].val != NULL &&
		    agent_config_set(c, keys[i].key, keys[i].val, keys[i].opt,
			err, sizeof(err)) == -1) {
			log_error("agent: %s", err);
			return -1;
		}
	if (o->timeout != NULL && agent_parse_uint("--timeout", o->timeout, 0,
				      31536000, &a->timeout_s))
		return -1;
	a->verbose = o->verbose;

	if (identity && c->id[0] == '\0') {
		log_error("agent: no agent id: give --id ID or "
			  "set id in the [agent] section of -c FILE");
		return -1;
	}
	if ((identity || need_district) && c->district[0] == '\0') {
		log_error("agent: no district: give --district CODE or set "
			  "district in the [agent] section of -c FILE");
		return -1;
	}
	if (c->outbox[0] == '\0') {
		log_error("agent: outbox must not be empty");
		return -1;
	}
	if (c->drop_dir[0] == '\0') {
		log_error("agent: drop_dir must not be empty");
		return -1;
	}
	return 0;
}

/*
 * What send and run check before they open the outbox, and all that -n
 * checks (so they cannot drift): the configuration with the identity
 * (agent_configure()), then with server_key set the CURVE keys: the
 * server's key, this side's key files, the secret one readable by its
 * owner only. 0, or -1 after saying why.
 */
static int
agent_check(struct agent *a, const struct agent_opts *o)
{
	const struct agent_config *c = &a->cfg;
	struct key_client k;
	char err[512];

	char why[256];

	if (agent_configure(a, o, true, true) == -1)
		return -1;
	/* check's today: a zone glibc would silently take for UTC. */
	if (config_check_zone(c->timezone, NULL, why, sizeof(why)) != NULL) {
		log_error("agent: timezone: %s", why);
		return -1;
	}
	if (c->server_key[0] == '\0') {
		if (c->public_key_file[0] != '\0' ||
		    c->secret_key_file[0] != '\0') {
			log_error(
			    "agent: public_key_file and secret_key_file "
			    "need server_key (the daemon's public key) to "
			    "turn CURVE on");
			return -1;
		}
		return 0;
	}
	if (keys_client_load(c->server_key, c->public_key_file,
		c->secret_key_file, &k, err, sizeof(err)) == -1) {
		log_error("agent: %s", err);
		return -1;
	}
	explicit_bzero(&k, sizeof(k));
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
    const void *ack, size_t ack_len, const void *src, size_t src_len, void *arg)
{
	struct agent_lines lines = { 0 };
	struct agent *a = arg;

	printf(_("dead report seq %llu:\n"), (unsigned long long)seq);
	agent_rejection(a, NULL, seq, report, report_len, ack, ack_len, src,
	    src_len, &lines, NULL, NULL);
	for (size_t i = 0; i < lines.n; i++)
		printf("  %s\n", lines.v[i]);
	agent_lines_free(&lines);
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
	if (outbox_dead_scan(a->ob, agent_status_dead, a) == -1)
		return AGENT_EXIT_FAIL;
	return fflush(stdout) == 0 ? AGENT_EXIT_OK : AGENT_EXIT_FAIL;
}

/* dead-letters [--purge]: what the daemon refused, then maybe gone. */
static int
agent_dead_letters(struct agent *a, bool purge)
{
	uint64_t pending, dead, next_seq, n;

	if (outbox_counts(a->ob, &pending, &dead, &next_seq) == -1 ||
	    outbox_dead_scan(a->ob, agent_status_dead, a) == -1)
		return AGENT_EXIT_FAIL;
	if (!purge) {
		printf(_("%llu dead letters in %s\n"), (unsigned long long)dead,
		    a->cfg.outbox);
		return fflush(stdout) == 0 ? AGENT_EXIT_OK : AGENT_EXIT_FAIL;
	}
	if (outbox_dead_purge(a->ob, &n) == -1)
		return AGENT_EXIT_FAIL;
	printf(_("%llu dead letters removed from %s\n"), (unsigned long long)n,
	    a->cfg.outbox);
	return fflush(stdout) == 0 ? AGENT_EXIT_OK : AGENT_EXIT_FAIL;
}

/* The line send ends with. */
static void
agent_summary(const struct agent *a)
{
	char line[512];

	snprintf(line, sizeof(line),
	    _("%lu reports (%lu observations) sent: %lu accepted, %lu "
	      "duplicate, %lu rejected"),
	    a->sent, a->observations, a->accepted, a->duplicate, a->rejected);
	log_info("agent: %s", line);
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
	agent_summary(a);
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
	if (agent_metrics_start(a) == -1)
		return AGENT_EXIT_FAIL;
	if ((d = agent_drop_open(a)) == NULL)
		goto metrics_stop;
	a->drop = d;
	if ((f = agent_flush_new(a)) == NULL)
		goto drop_close;
	log_info("agent: running: drop %s, outbox %s, daemon %s",
	    a->cfg.drop_dir, a->cfg.outbox, a->cfg.endpoint);
	if (agent_drop_orphans(d) == -1 || agent_drop_scan(d) == -1)
		goto flush_destroy;
	agent_flush_more(f);
	while (!agent_stop) {
		agent_metrics_update(a, true);
		if (agent_flush_step(f, agent_metrics_wait_ms(a),
			agent_drop_fd(d), &ready) == -1)
			goto flush_destroy;
		if (!ready || agent_stop)
			continue;
		if (agent_drop_events(d) == -1)
			goto flush_destroy;
		agent_flush_more(f);
	}
	rc = AGENT_EXIT_OK;
flush_destroy:
	agent_metrics_update(a, false);
	agent_flush_destroy(&f);
	if (outbox_counts(a->ob, &pending, &dead, &next_seq) == 0)
		log_info("agent: stopped: %" PRIu64
			 " reports left pending in the outbox",
		    pending);
drop_close:
	a->drop = NULL;
	agent_drop_close(&d);
metrics_stop:
	agent_metrics_stop();
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
	while ((ch = getopt_long(argc, argv, "c:hnv", agent_longopts, NULL)) !=
	       -1) {
		switch (ch) {
		case 'c':
			o->conf = optarg;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'n':
			o->check = true;
			break;
		case OPT_VERSION:
			printf("indicator-agent %s\n", INDICATOR_VERSION);
			exit(AGENT_EXIT_OK);
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
		case OPT_ENCODING:
			o->encoding = optarg;
			break;
		case OPT_PERIOD:
			o->period = optarg;
			break;
		case OPT_PURGE:
			o->purge = true;
			break;
		case 'h':
			o->help = true;
			break;
		default:
			return -1;
		}
	}
	return 0;
}

/* -n: the configuration as run needs it. */
static int
agent_check_only(struct agent *a, const struct agent_opts *o)
{
	const struct agent_config *c = &a->cfg;

	if (agent_check(a, o) == -1) {
		log_error("agent: configuration refused: run would not start "
			  "(see above)");
		return AGENT_EXIT_USAGE;
	}
	printf("indicator-agent: configuration OK: agent %s, district %s, "
	       "daemon %s (%s), outbox %s, drop %s\n",
	    c->id, c->district, c->endpoint,
	    c->server_key[0] != '\0' ? "CURVE" : "plaintext", c->outbox,
	    c->drop_dir);
	return AGENT_EXIT_OK;
}

int
main(int argc, char *argv[])
{
	static struct agent a;
	struct agent_opts o;
	const char *cmd;
	bool readonly;
	int rc;

	log_init("indicator-agent", LOG_STYLE_SERVICE);
	intl_init("indicator-agent");
	memset(&a, 0, sizeof(a));
	a.start_ms = agent_now_ms();
	if (agent_getopt(argc, argv, &o) == -1) {
		agent_usage(stderr);
		return AGENT_EXIT_USAGE;
	}
	/* --help, `CMD --help` and `help [CMD]`. */
	if (o.help && optind >= argc) {
		agent_usage(stdout);
		return AGENT_EXIT_OK;
	}
	if (o.help)
		return agent_help(argv[optind]);
	if (optind < argc && strcmp(argv[optind], "help") == 0) {
		if (optind + 1 == argc) {
			agent_usage(stdout);
			return AGENT_EXIT_OK;
		}
		if (optind + 2 != argc) {
			agent_usage(stderr);
			return AGENT_EXIT_USAGE;
		}
		return agent_help(argv[optind + 1]);
	}
	if (o.check) {
		if (optind != argc) {
			agent_usage(stderr);
			return AGENT_EXIT_USAGE;
		}
		return agent_check_only(&a, &o);
	}
	if (optind >= argc) {
		agent_usage(stderr);
		return AGENT_EXIT_USAGE;
	}
	cmd = argv[optind++];
	if (strcmp(cmd, "send") != 0 && strcmp(cmd, "check") != 0 &&
	    (strcmp(cmd, "status") != 0 || optind != argc) &&
	    (strcmp(cmd, "run") != 0 || optind != argc) &&
	    (strcmp(cmd, "template") != 0 || optind != argc) &&
	    (strcmp(cmd, "dead-letters") != 0 || optind != argc)) {
		agent_usage(stderr);
		return AGENT_EXIT_USAGE;
	}
	if ((o.period != NULL) != (strcmp(cmd, "template") == 0) ||
	    (o.purge && strcmp(cmd, "dead-letters") != 0) ||
	    (strcmp(cmd, "check") == 0 && optind == argc)) {
		agent_usage(stderr);
		return AGENT_EXIT_USAGE;
	}
	if (strcmp(cmd, "template") == 0) {
		const char *enc = o.encoding;

		/* Its --encoding is the template's own, not a key. */
		o.encoding = NULL;
		if (agent_configure(&a, &o, false, false) == -1)
			return AGENT_EXIT_USAGE;
		return agent_template(&a, o.period, enc);
	}
	if (strcmp(cmd, "check") == 0) {
		if (agent_configure(&a, &o, false, true) == -1)
			return AGENT_EXIT_USAGE;
		return agent_check_files(&a, argv + optind, argc - optind);
	}
	readonly = strcmp(cmd, "status") == 0 ||
		   (strcmp(cmd, "dead-letters") == 0 && !o.purge);
	if (strcmp(cmd, "status") == 0 || strcmp(cmd, "dead-letters") == 0
		? agent_configure(&a, &o, false, false) == -1
		: agent_check(&a, &o) == -1)
		return AGENT_EXIT_USAGE;
	log_set_format(a.cfg.log_format);
	log_set_level(a.verbose ? CONFIG_LOG_DEBUG : CONFIG_LOG_INFO);
	if (agent_signals(strcmp(cmd, "run") == 0) == -1 ||
	    agent_open_outbox(&a, readonly) == -1)
		return AGENT_EXIT_FAIL;

	if (strcmp(cmd, "status") == 0)
		rc = agent_status(&a);
	else if (strcmp(cmd, "dead-letters") == 0)
		rc = agent_dead_letters(&a, o.purge);
	else if (strcmp(cmd, "run") == 0)
		rc = agent_run(&a);
	else
		rc = agent_send(&a, argv + optind, argc - optind);
	outbox_close(&a.ob);
	agent_debug_peak(&a);
	return rc;
}
