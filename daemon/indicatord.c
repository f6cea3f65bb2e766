/*
 * indicatord: the central daemon. Takes district reports on a ROUTER
 * socket, validates them against the registry, stores each exactly once in
 * LMDB and only then acknowledges it.
 */
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "filetx.h"
#include "indicatord.h"
#include "lockfile.h"
#include "version.h"
#include "xmalloc.h"

volatile sig_atomic_t daemon_quit;
static volatile sig_atomic_t daemon_reload;
/* Self-pipe: a signal that lands between zmq_poll()'s checks would not
 * interrupt it, so the handler also makes the pipe readable. */
static int signal_pipe[2] = { -1, -1 };
/* The data directory's lock, held for the process's life. */
static int datadir_lock_fd = -1;
/* The signal that stops the daemon and the PID that sent it (si_pid), for
 * the log: a stop is then never unexplained. */
static volatile sig_atomic_t quit_signal;
static volatile sig_atomic_t quit_sender;

static void
on_signal(int sig, siginfo_t *si, void *ctx)
{
	int saved = errno;
	char c = 0;

	(void)ctx;
	if (sig == SIGHUP) {
		daemon_reload = 1;
	} else {
		daemon_quit = 1;
		quit_signal = sig;
		quit_sender = si != NULL ? si->si_pid : 0;
	}
	if (write(signal_pipe[1], &c, 1) == -1) {
		/* full pipe: a wake-up is already pending */
	}
	errno = saved;
}

static void
signals_init(void)
{
	struct sigaction sa;

	if (pipe(signal_pipe) == -1)
		fatal("indicatord: pipe: %s", strerror(errno));
	for (int i = 0; i < 2; i++)
		fcntl(signal_pipe[i], F_SETFL,
		    fcntl(signal_pipe[i], F_GETFL) | O_NONBLOCK);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: zmq_poll() must return EINTR so the loop sees the
	 * flag at once. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Says which signal stopped the daemon and who sent it, with the
 * sender's command name while it still runs. */
static void
quit_log(void)
{
	char path[64], comm[64] = "";
	FILE *f;

	if (quit_signal == 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)quit_sender);
	if (quit_sender > 0 && (f = fopen(path, "r")) != NULL) {
		if (fgets(comm, sizeof(comm), f) == NULL)
			comm[0] = '\0';
		comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	log_info("indicatord: %s from pid %d%s%s%s",
	    quit_signal == SIGTERM ? "SIGTERM" : "SIGINT", (int)quit_sender,
	    comm[0] ? " (" : "", comm, comm[0] ? ")" : "");
}

static const char usage_text[] =
    "usage: indicatord [-n] [-c FILE] [-d DATADIR]\n"
    "       indicatord --help | --version\n"
    "  -c, --config FILE    configuration file (default: the built-in "
    "one);\n"
    "                       its drop-ins, conf.d/*.conf next to it, are "
    "read too\n"
    "  -d, --data-dir DIR   store directory (overrides data_dir)\n"
    "  -n, --check          check everything a start checks, then exit\n"
    "  -h, --help           print this and exit\n"
    "      --version        print the version and exit\n";

static void
usage(FILE *fp, int status)
{
	fputs(usage_text, fp);
	exit(status);
}

/* The time zone decides which periods have started. glibc takes an unknown
 * zone for UTC without a word: daemon_check() insists on a zone file. */
static void
timezone_init(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

/*
 * One daemon per data directory: a second one (even on other ports) would
 * take over the control socket and write the store behind the first one's
 * in-memory tables. The lock is taken before any socket or the store is
 * touched, so a daemon refused changes nothing.
 */
static void
datadir_lock(const char *dir)
{
	char who[CONFIG_PATH_MAX + 32], err[CONFIG_PATH_MAX + 128];

	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		fatal("indicatord: not started: mkdir %s: %s", dir,
		    strerror(errno));
	snprintf(who, sizeof(who), "data directory %s", dir);
	datadir_lock_fd =
	    lockfile_take(dir, "indicatord.lock", who, err, sizeof(err));
	if (datadir_lock_fd == -1)
		fatal("indicatord: not started: %s", err);
}

/*
 * Everything a start checks before it opens the store or binds a socket:
 * one function for -n and for the start, so that they cannot drift. The
 * syntax of the file and its drop-ins, the endpoints and the metrics
 * address were checked by config_load(); here the time zone, the secure
 * defaults, the secret key and the key tables (auth_check()), and the
 * warnings a start gives. Logs every problem; -1 if there was any.
 */
static int
daemon_check(struct daemon *d)
{
	char why[512];
	int rc = 0;

	if (config_check_zone(
		d->cfg.timezone, getenv("TZDIR"), why, sizeof(why)) != NULL) {
		log_error("indicatord: timezone: %s", why);
		rc = -1;
	}
	if (auth_check(d) == -1)
		rc = -1;
	if (d->cfg.sync != CONFIG_SYNC_FULL)
		log_warn("indicatord: sync is not full: an ACCEPTED report "
			 "can be lost if the machine crashes");
	return rc;
}

/* -n: what was read, and whether it passed daemon_check(). */
static int
check_only(struct daemon *d, const char *path)
{
	char **dropins = NULL, err[512];
	size_t n = 0;
	int rc;

	rc = daemon_check(d);
	auth_destroy(d);
	if (rc == -1) {
		fprintf(stderr, "indicatord: configuration refused: a start "
				"would fail (see above)\n");
		return 1;
	}
	if (path != NULL &&
	    config_dropins(path, &dropins, &n, err, sizeof(err)) == -1) {
		fprintf(stderr, "indicatord: %s\n", err);
		return 1;
	}
	printf("indicatord: configuration OK: %s", path ? path : "built-in");
	for (size_t i = 0; i < n; i++)
		printf("%s%s", i == 0 ? ", then " : ", ", dropins[i]);
	printf("; registry %s: %zu districts, %zu industries, %zu metrics, "
	       "%zu targets\n",
	    d->cfg.registry_builtin ? "built-in" : "from the files",
	    d->cfg.reg.ndistricts, d->cfg.reg.nindustries, d->cfg.reg.nmetrics,
	    d->cfg.reg.ntargets);
	config_dropins_free(dropins, n);
	return 0;
}

/*
 * Every connection is a descriptor: with the soft limit of 1024 a crowd of
 * idle connections left no room to accept an agent's, and ZeroMQ's accept
 * loop spun on EMFILE. The soft limit goes up to DESCRIPTORS_MAX, or the
 * hard limit when lower (the unit sets LimitNOFILE to the same): an idle
 * connection costs 3.3 KiB here, so the crowd that fills them stays in the
 * memory budget; idle peers are closed after handshake_ms.
 */
#define DESCRIPTORS_MAX 16384

static void
descriptors_raise(void)
{
	struct rlimit rl;
	rlim_t want;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	want = rl.rlim_max < DESCRIPTORS_MAX ? rl.rlim_max : DESCRIPTORS_MAX;
	if (rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("indicatord: cannot raise the descriptor limit: %s",
		    strerror(errno));
}

static void *
socket_bind(struct daemon *d, int type, const char *endpoint, const char *what)
{
	void *s = zmq_socket(d->zctx, type);
	int linger = 2000, handshake = (int)d->cfg.handshake_ms;

	if (s == NULL)
		fatal("indicatord: %s socket: %s", what, zmq_strerror(errno));
	/* Let the last acks of a clean shutdown reach their agents. */
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	/* A peer that connects and says nothing (or never completes
	 * CURVE) is closed: a crowd of them cannot hold the descriptors. */
	zmq_setsockopt(s, ZMQ_HANDSHAKE_IVL, &handshake, sizeof(handshake));
	if (type == ZMQ_ROUTER) {
		int64_t max = d->cfg.limits.max_message_bytes;

		zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof(max));
	}
	if (type == ZMQ_ROUTER && strcmp(what, "ingest") == 0) {
		/* A connection's queue of messages not yet taken, in
		 * messages of the largest size: past it ZeroMQ stops reading
		 * that connection, and nothing is lost. */
		uint64_t n =
		    d->cfg.conn_queue_bytes / d->cfg.limits.max_message_bytes;
		int hwm = n < 16 ? 16 : n > 100000 ? 100000 : (int)n;

		zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	} else if (type == ZMQ_ROUTER) {
		/* Snapshot answers queued for a peer that does not read
		 * them; past it they are dropped. */
		int hwm = (int)d->cfg.snapshot_queue;

		zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	} else if (type == ZMQ_XPUB) {
		/* Per subscriber, in publications of at most
		 * PUBLISH_MSG_BYTES each in memory. */
		uint64_t n = d->cfg.subscriber_bytes / PUBLISH_MSG_BYTES;
		int hwm = n < d->cfg.pub_hwm ? (int)n : (int)d->cfg.pub_hwm;
		int on = 1;

		zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
		/* A full queue refuses instead of dropping in silence: the
		 * refusals are counted (publish.c). */
		zmq_setsockopt(s, ZMQ_XPUB_NODROP, &on, sizeof(on));
	}
	auth_server_socket(d, s, strcmp(what, "ingest") != 0);
	if (zmq_bind(s, endpoint) == -1)
		fatal("indicatord: cannot bind %s socket to %s: %s", what,
		    endpoint, zmq_strerror(errno));
	return s;
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
indicatord_reload(struct daemon *d, char *why, size_t len)
{
	struct config *next = xmalloc(sizeof(*next));
	const struct ledger_pub *pubs;
	size_t npubs;
	char err[512];
	int rc = -1;

	notify_reloading();
	/* The aggregates held in memory were made with the old registry:
	 * store them before it changes. */
	ledger_checkpoint(d->ledger);
	if (config_load(next, d->conf_path, err, sizeof(err)) == -1) {
		snprintf(why, len, "%s", err);
		log_error("indicatord: reload refused, old configuration "
			  "kept: %s",
		    why);
		goto next_free;
	}
	config_resolve_dir(next, getenv("STATE_DIRECTORY"));
	if (auth_reload(d, next, err, sizeof(err)) == -1) {
		snprintf(why, len, "%s", err);
		log_error("indicatord: reload refused, old configuration and "
			  "keys kept: %s",
		    why);
		goto next_free;
	}
	if (strcmp(next->ingest, d->cfg.ingest) != 0 ||
	    strcmp(next->publish, d->cfg.publish) != 0 ||
	    strcmp(next->snapshot, d->cfg.snapshot) != 0 ||
	    strcmp(next->data_dir, d->cfg.data_dir) != 0)
		log_warn("indicatord: endpoints and data_dir change only on "
			 "restart");
	d->cfg.reg = next->reg;
	d->cfg.limits = next->limits;
	d->cfg.batch_max = next->batch_max;
	d->cfg.log_level = next->log_level;
	d->cfg.log_format = next->log_format;
	log_set_level(next->log_level);
	log_set_format(next->log_format);
	log_info("indicatord: configuration reloaded: %zu districts, %zu "
		 "industries, %zu metrics, %zu targets",
	    d->cfg.reg.ndistricts, d->cfg.reg.nindustries, d->cfg.reg.nmetrics,
	    d->cfg.reg.ntargets);
	/* The aggregates follow the registry: recomputed where it changed
	 * them, and published. */
	if (ledger_registry_set(
		d->ledger, &d->cfg.reg, wall_ms(), &pubs, &npubs) == 0)
		publisher_send(d, pubs, npubs);
	/* The districts the metrics follow may have changed. */
	metrics_watch_load(d);
	rc = 0;
next_free:
	free(next);
	/* Ready again whatever the outcome: refused, the old configuration
	 * serves on. */
	notify_ready();
	return rc;
}

static void
run(struct daemon *d)
{
	zmq_pollitem_t items[] = {
		{ d->ingest, 0, ZMQ_POLLIN, 0 },
		{ d->snapshot, 0, ZMQ_POLLIN, 0 },
		{ NULL, signal_pipe[0], ZMQ_POLLIN, 0 },
		{ auth_zap_socket(d), 0, ZMQ_POLLIN, 0 },
		{ NULL, 0, 0, 0 }, /* control socket and monitors */
		{ NULL, 0, 0, 0 },
		{ NULL, 0, 0, 0 },
	};
	int nitems = auth_zap_socket(d) != NULL ? 4 : 3, nbase;

	/* The ZAP slot stays at index 3 whether used or not. */
	nbase = 4;
	control_poll_items(d, items, &nbase);
	if (nitems == 3) {
		/* No ZAP: move the control items down one slot. */
		memmove(&items[3], &items[4],
		    sizeof(items[0]) * (size_t)(nbase - 4));
		nbase--;
	}
	char drain[64];
	int wait_ms = notify_wait_ms(1000), n;
	struct timespec ts;
	int64_t expire_at = 0, mono;

	while (!daemon_quit) {
		notify_watchdog();
		notify_status(d);
		/* Files left open too long (filetx.h), hourly. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		mono = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		if (mono >= expire_at) {
			filetx_expire(d);
			expire_at = mono + FILETX_EXPIRE_EVERY_MS;
		}
		if (daemon_reload) {
			char why[512];

			daemon_reload = 0;
			indicatord_reload(d, why, sizeof(why));
		}
		/* While changes wait for a checkpoint, wake soon: once the
		 * agents go quiet the tables catch up with the log. */
		n = zmq_poll(items, nbase, ledger_wait_ms(d->ledger, wait_ms));
		if (n == -1) {
			if (errno == EINTR)
				continue;
			fatal("indicatord: poll: %s", zmq_strerror(errno));
		}
		if (items[2].revents & ZMQ_POLLIN)
			while (read(signal_pipe[0], drain, sizeof(drain)) > 0)
				continue;
		/* Handshakes first: an agent waiting for one sends nothing. */
		if (nitems == 4 && (items[3].revents & ZMQ_POLLIN))
			while (auth_zap_serve(d) == 0 &&
			       (zmq_poll(&items[3], 1, 0) == 1))
				continue;
		if (items[0].revents & ZMQ_POLLIN) {
			if (ingest_batch(d) == -1)
				fatal("indicatord: ingest socket failed");
		}
		for (int i = nitems; i < nbase; i++)
			if (items[i].revents & ZMQ_POLLIN) {
				while (control_serve(d) == 1)
					continue;
				break;
			}
		metrics_update(d);
		/* A few snapshots per turn, so a crowd of late joiners
		 * cannot hold up ingest. */
		for (int i = 0; i < 8 && (items[1].revents & ZMQ_POLLIN); i++)
			if (snapshot_serve(d) == 0)
				break;
		/* The one place periodic checkpoints are decided. */
		if (ledger_checkpoint_due(d->ledger, n == 0))
			ledger_checkpoint_start(d->ledger);
	}
}

int
main(int argc, char *argv[])
{
	enum { OPT_VERSION = 256 };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "check", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon *d;
	struct store_opts so = { 0 };
	struct ledger_opts lo = { 0 };
	const char *path = NULL, *dir = NULL;
	bool check = false;
	char err[512];
	int ch, rc;

	log_init("indicatord", LOG_STYLE_SERVICE);
	/* First: a stop asked for while the daemon starts ends it cleanly,
	 * once started, rather than killing it half-way. */
	signals_init();
	while ((ch = getopt_long(argc, argv, "c:d:nh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'n':
			check = true;
			break;
		case 'h':
			usage(stdout, 0);
			break;
		case OPT_VERSION:
			printf("indicatord %s\n", INDICATOR_VERSION);
			return 0;
		default:
			usage(stderr, 2);
		}
	}
	if (optind != argc)
		usage(stderr, 2);
	d = xcalloc(1, sizeof(*d));
	if (config_load(&d->cfg, path, err, sizeof(err)) == -1)
		fatal("indicatord: %s", err);
	d->conf_path = path;
	if (dir != NULL && config_set(&d->cfg, "daemon", "data_dir", dir, "-d",
			       err, sizeof(err)) == -1)
		fatal("indicatord: %s", err);
	config_resolve_dir(&d->cfg, getenv("STATE_DIRECTORY"));
	if (check) {
		rc = check_only(d, path);
		free(d);
		return rc;
	}
	log_set_level(d->cfg.log_level);
	log_set_format(d->cfg.log_format);
	if (daemon_check(d) == -1)
		fatal("indicatord: not started (see above)");
	datadir_lock(d->cfg.data_dir);
	notify_init();
	timezone_init(d->cfg.timezone);

	descriptors_raise();
	if ((d->zctx = zmq_ctx_new()) == NULL)
		fatal("indicatord: zmq context: %s", zmq_strerror(errno));
	if (auth_start(d) == -1)
		fatal("indicatord: not started (see above)");

	so.dir = d->cfg.data_dir;
	so.map_size = d->cfg.map_size;
	so.map_max = d->cfg.map_max;
	so.sync = (enum store_sync)d->cfg.sync;
	if ((d->store = store_open(&so, err, sizeof(err))) == NULL)
		fatal("indicatord: %s", err);

	d->ingest = socket_bind(d, ZMQ_ROUTER, d->cfg.ingest, "ingest");
	d->publish = socket_bind(d, ZMQ_XPUB, d->cfg.publish, "publish");
	d->snapshot = socket_bind(d, ZMQ_ROUTER, d->cfg.snapshot, "snapshot");
	d->ing = ingest_new();
	d->pub = publisher_new();
	/* The metrics answer from here on: /readyz says 503 during the
	 * replay, and a port clash stops the start before it. */
	if (metrics_watch_load(d) == -1 || metrics_init(d) == -1)
		fatal("indicatord: not started (see above)");
	/* Whatever was acknowledged but not checkpointed before a crash is
	 * replayed, and a changed registry applied to the aggregates. */
	lo.store = d->store;
	lo.reg = &d->cfg.reg;
	lo.checkpoint_ms = d->cfg.checkpoint_ms;
	lo.checkpoint_entries = d->cfg.checkpoint_entries;
	lo.checkpoint_idle_ms = d->cfg.checkpoint_idle_ms;
	lo.threaded = true;
	lo.tick = metrics_tick;
	lo.replaying = metrics_set_replaying;
	if ((d->ledger = ledger_open(&lo)) == NULL)
		fatal("indicatord: not started: the store's log cannot be "
		      "replayed (see above)");
	if (control_init(d) == -1)
		fatal("indicatord: not started (see above)");
	log_info("indicatord: ready: ingest %s, publish %s, snapshot %s, "
		 "store %s",
	    d->cfg.ingest, d->cfg.publish, d->cfg.snapshot, d->cfg.data_dir);
	notify_ready();
	metrics_set_ready(true);

	run(d);
	quit_log();
	metrics_set_ready(false);
	notify_stopping();
	ledger_checkpoint(d->ledger);

	log_info("indicatord: stopping: %llu accepted, %llu duplicate, %llu "
		 "rejected (%llu malformed), %llu retry-later, %llu batches",
	    (unsigned long long)d->count.accepted,
	    (unsigned long long)d->count.duplicate,
	    (unsigned long long)d->count.rejected,
	    (unsigned long long)d->count.malformed,
	    (unsigned long long)d->count.retry,
	    (unsigned long long)d->count.batches);
	if (publisher_dropped(d->pub) > 0)
		log_warn("indicatord: %llu publications dropped at the PUB "
			 "high-water mark",
		    (unsigned long long)publisher_dropped(d->pub));
	ingest_destroy(&d->ing);
	publisher_destroy(&d->pub);
	ledger_close(&d->ledger);
	/* The monitors watch the ingest and publish sockets: stop them
	 * before those sockets close. */
	metrics_destroy();
	control_destroy(d);
	zmq_close(d->ingest);
	zmq_close(d->publish);
	zmq_close(d->snapshot);
	auth_destroy(d);
	zmq_ctx_term(d->zctx);
	store_close(&d->store);
	lockfile_release(&datadir_lock_fd);
	free(d);
	return 0;
}
