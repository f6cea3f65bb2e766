/*
 * indicator-web: a read-only dashboard of the plan's progress, in a
 * browser. A subscriber of the daemon's feed like any other (feed.c): it
 * keeps the aggregates in memory and serves the pages, their JSON and CSV
 * and the live updates over HTTP (http.c) on loopback, for a proxy with
 * TLS and a login in front of it.
 *
 * Exit codes: 0 after SIGTERM or SIGINT, 1 when it cannot start (bad
 * configuration or keys, the address taken or off loopback), 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "log.h"
#include "version.h"
#include "web.h"
#include "xmalloc.h"

#define LISTEN_DEFAULT "127.0.0.1:7480"
#define STALE_DEFAULT_S 86400
#define CHARTJS_DEFAULT "/usr/share/javascript/chart.js/chart.min.js"
#define CHARTJS_MAX (8 << 20)
#define BANNER_MAX 512 /* bytes of --banner */

volatile int web_quit;

static const char usage_text[] =
    "usage: indicator-web [-c CONFIG] [--listen HOST:PORT] [--publish EP]\n"
    "                     [--snapshot EP] [--stale-after SECONDS]\n"
    "                     [--chartjs FILE] [--allow-remote] [--banner TEXT]\n"
    "                     [--server-key KEY|FILE --public-key FILE "
    "--secret-key FILE]\n"
    "  -c CONFIG        the daemon's configuration (registry, endpoints);\n"
    "                   default: the built-in one\n"
    "  --listen         where to serve HTTP (default " LISTEN_DEFAULT ")\n"
    "  --publish, --snapshot   the daemon's feed endpoints (default: "
    "CONFIG's)\n"
    "  --stale-after S  an agent not seen for S seconds is marked stale\n"
    "                   (default 86400)\n"
    "  --chartjs FILE   Chart.js (default " CHARTJS_DEFAULT ")\n"
    "  --allow-remote   serve on an address that is not loopback\n"
    "  --banner TEXT    a line every page shows above its figures, e.g.\n"
    "                   that they are synthetic (at most 512 bytes)\n"
    "  --server-key, --public-key, --secret-key   CURVE (feed_curve): the\n"
    "                   daemon's public key and this subscriber's key "
    "files\n"
    "  -h, --help       this text; --version: the version\n";

int64_t
web_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
on_signal(int sig)
{
	(void)sig;
	web_quit = 1;
}

static void
signals_set(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: zmq_poll() must return EINTR so the loop sees the
	 * flag at once. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Chart.js, read once: the pages draw their charts with it. Missing, the
 * pages show their tables without charts. */
static void
chartjs_load(struct web *w)
{
	FILE *f = fopen(w->chartjs_path, "rb");
	size_t n;

	if (f == NULL) {
		log_warn("web: %s: %s; the pages have no charts "
			 "(apt-get install libjs-chart.js)",
		    w->chartjs_path, strerror(errno));
		return;
	}
	w->chartjs = xmalloc(CHARTJS_MAX);
	n = fread(w->chartjs, 1, CHARTJS_MAX, f);
	fclose(f);
	if (n == 0 || n == CHARTJS_MAX) {
		log_warn("web: %s: empty or too large", w->chartjs_path);
		free(w->chartjs);
		w->chartjs = NULL;
		return;
	}
	w->chartjs_len = n;
}

struct args {
	const char *conf;
	const char *server_key;
	const char *public_key;
	const char *secret_key;
};

/* 0, or -1 after a message. */
static int
options_parse(int argc, char *argv[], struct web *w, struct args *a)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "publish", required_argument, NULL, 'P' },
		{ "snapshot", required_argument, NULL, 'S' },
		{ "stale-after", required_argument, NULL, 's' },
		{ "chartjs", required_argument, NULL, 'j' },
		{ "allow-remote", no_argument, NULL, 'r' },
		{ "banner", required_argument, NULL, 'b' },
		{ "server-key", required_argument, NULL, 'K' },
		{ "public-key", required_argument, NULL, 'U' },
		{ "secret-key", required_argument, NULL, 'X' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long v;
	char *end;
	int ch;

	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			a->conf = optarg;
			break;
		case 'l':
			if (!strlcpy_ok(w->listen, optarg, sizeof(w->listen))) {
				fprintf(stderr,
				    "indicator-web: --listen too long\n");
				return -1;
			}
			break;
		case 'P':
			w->publish = optarg;
			break;
		case 'S':
			w->snapshot = optarg;
			break;
		case 's':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || v == 0 ||
			    v > 100000000 || optarg[0] == '-') {
				fprintf(stderr,
				    "indicator-web: --stale-after wants "
				    "seconds above 0, not '%s'\n",
				    optarg);
				return -1;
			}
			w->stale_after_s = (unsigned)v;
			break;
		case 'j':
			w->chartjs_path = optarg;
			break;
		case 'r':
			w->allow_remote = true;
			break;
		case 'b':
			if (optarg[0] == '\0' || strlen(optarg) > BANNER_MAX) {
				fprintf(stderr,
				    "indicator-web: --banner wants 1 to %d "
				    "bytes of text\n",
				    BANNER_MAX);
				return -1;
			}
			w->banner = optarg;
			break;
		case 'K':
			a->server_key = optarg;
			break;
		case 'U':
			a->public_key = optarg;
			break;
		case 'X':
			a->secret_key = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		case 'V':
			printf("indicator-web %s\n", INDICATOR_VERSION);
			exit(0);
		default:
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "indicator-web: unexpected argument '%s'\n",
		    argv[optind]);
		return -1;
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	struct web *w = xcalloc(1, sizeof(*w));
	struct args a = { 0 };
	char err[512];
	int rc = 1;

	log_init("indicator-web", LOG_STYLE_SERVICE);
	strlcpy_ok(w->listen, LISTEN_DEFAULT, sizeof(w->listen));
	w->stale_after_s = STALE_DEFAULT_S;
	w->chartjs_path = CHARTJS_DEFAULT;
	pthread_mutex_init(&w->ask_lock, NULL);
	if (options_parse(argc, argv, w, &a) == -1) {
		fputs(usage_text, stderr);
		free(w);
		return 2;
	}
	if (config_load(&w->cfg, a.conf, err, sizeof(err)) == -1) {
		log_error("web: %s", err);
		goto web_free;
	}
	log_set_level(w->cfg.log_level);
	log_set_format(w->cfg.log_format);
	if (w->publish == NULL)
		w->publish = w->cfg.publish;
	if (w->snapshot == NULL)
		w->snapshot = w->cfg.snapshot;
	if (a.server_key != NULL) {
		if (keys_client_load(a.server_key,
			a.public_key ? a.public_key : "",
			a.secret_key ? a.secret_key : "", &w->keys, err,
			sizeof(err)) == -1) {
			log_error("web: %s", err);
			goto web_free;
		}
		w->curve = true;
	}
	chartjs_load(w);
	signals_set();
	if ((w->zctx = zmq_ctx_new()) == NULL) {
		log_error("web: zmq_ctx_new: %s", zmq_strerror(errno));
		goto web_free;
	}
	w->state = state_new(&w->cfg.reg);
	if (http_start(w) == -1)
		goto state_destroy;
	log_info("web: serving http://%s/ (feed %s, snapshot %s)", w->listen,
	    w->publish, w->snapshot);
	rc = feed_run(w) == 0 ? 0 : 1;
	http_stop();
	log_info("web: stopped");
state_destroy:
	state_destroy(&w->state);
	zmq_ctx_term(w->zctx);
web_free:
	free(w->chartjs);
	pthread_mutex_destroy(&w->ask_lock);
	free(w);
	return rc;
}
