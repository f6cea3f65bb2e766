/*
 * indicatorctl status and reload: ask the running daemon over its local
 * control socket (ipc://DATA_DIR/control unless [daemon] control says
 * otherwise).
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "indicatorctl.h"
#include "xmalloc.h"

#define STATUS_WAIT_MS 5000
#define REPLY_MAX 4096
/* On a control endpoint that is not a socket file (tcp://), a daemon that
 * takes no connection this fast is taken for not running. */
#define CHECKPOINT_CONNECT_MS 300
#define CHECKPOINT_WAIT_MS 60000
/* A reload checkpoints first: as long as a checkpoint may take. */
#define RELOAD_WAIT_MS 60000

/* The number after "key": in a flat JSON object, or -1; a 64-bit
 * counter comes as a string of digits. */
static double
json_number(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	if ((p = strstr(json, pat)) == NULL)
		return -1;
	p += strlen(pat);
	if (*p == '"')
		p++;
	return strtod(p, NULL);
}

static void
print_status(const char *json)
{
	static const struct {
		const char *key;
		const char *label;
	} rows[] = {
		{ "uptime_s", "uptime (s)" },
		{ "accepted", "reports accepted" },
		{ "duplicate", "duplicates answered" },
		{ "rejected", "reports rejected" },
		{ "malformed", "  of them malformed" },
		{ "unauthorised", "  of them not authorised" },
		{ "retry_later", "retry-later answers" },
		{ "rate_limited", "  of them rate-limited" },
		{ "heartbeats", "heartbeats" },
		{ "observations_received", "observations stored" },
		{ "batches", "batches (group commits)" },
		{ "batch_reports_avg", "reports per batch (avg)" },
		{ "commit_ms_avg", "commit latency (avg ms)" },
		{ "commit_ms_max", "commit latency (max ms)" },
		{ "checkpoints", "checkpoints" },
		{ "checkpoint_ms_avg", "checkpoint time (avg ms)" },
		{ "checkpoint_ms_max", "checkpoint time (max ms)" },
		{ "agents_connected", "agents connected" },
		{ "subscribers", "subscribers connected" },
		{ "publications_dropped", "publications dropped" },
		{ "map_bytes", "store map (bytes)" },
		{ "used_bytes", "store used (bytes)" },
		{ "observations", "store: latest observations" },
		{ "revisions", "store: revisions" },
		{ "agents", "store: (agent, epoch) pairs" },
		{ "aggregates", "store: aggregates" },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		double v = json_number(json, rows[i].key);
		char num[OUT_NUM_MAX];

		out_num(v, num, sizeof(num));
		printf("%-28s %s\n", rows[i].label, num);
	}
}

/* The daemon's control endpoint for ctl's configuration and -d. */
static void
control_endpoint(const struct ctl *ctl, char *buf, size_t len)
{
	if (ctl->cfg->control[0] != '\0')
		snprintf(buf, len, "%s", ctl->cfg->control);
	else
		snprintf(buf, len, "ipc://%s/control",
		    ctl->dir != NULL ? ctl->dir : ctl->cfg->data_dir);
}

int
ctl_ask(struct ctl *ctl, const char *req, int connect_ms, int wait_ms,
    char *reply, size_t len, bool quiet)
{
	char endpoint[CONFIG_PATH_MAX + 16];
	void *zctx = NULL, *sock = NULL;
	int linger = 0, immediate = 1, rc = -1, n;
	zmq_pollitem_t item;

	control_endpoint(ctl, endpoint, sizeof(endpoint));
	if ((zctx = zmq_ctx_new()) == NULL ||
	    (sock = zmq_socket(zctx, ZMQ_DEALER)) == NULL)
		goto zmq_fail;
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	/* Nothing is queued for a daemon that is not there: POLLOUT comes
	 * only once a connection is made. */
	zmq_setsockopt(sock, ZMQ_IMMEDIATE, &immediate, sizeof(immediate));
	if (zmq_connect(sock, endpoint) == -1)
		goto zmq_fail;
	item = (zmq_pollitem_t){ sock, 0, ZMQ_POLLOUT, 0 };
	if (zmq_poll(&item, 1, connect_ms) != 1) {
		if (!quiet)
			fprintf(stderr,
			    "indicatorctl: no daemon answers at %s; is "
			    "indicatord running?\n",
			    endpoint);
		goto sock_close;
	}
	if (zmq_send(sock, req, strlen(req), 0) != (int)strlen(req))
		goto zmq_fail;
	item = (zmq_pollitem_t){ sock, 0, ZMQ_POLLIN, 0 };
	if (zmq_poll(&item, 1, wait_ms) != 1) {
		fprintf(stderr,
		    "indicatorctl: no answer from the daemon at %s within %d "
		    "s\n",
		    endpoint, wait_ms / 1000);
		goto sock_close;
	}
	if ((n = zmq_recv(sock, reply, len - 1, 0)) < 0)
		goto zmq_fail;
	reply[(size_t)n < len ? (size_t)n : len - 1] = '\0';
	rc = 0;
	goto sock_close;
zmq_fail:
	fprintf(
	    stderr, "indicatorctl: %s: %s\n", endpoint, zmq_strerror(errno));
sock_close:
	if (sock != NULL)
		zmq_close(sock);
	if (zctx != NULL)
		zmq_ctx_term(zctx);
	return rc;
}

/*
 * Whether a daemon listens on an ipc:// endpoint: 1 when a connect(2) to
 * its socket file is taken, which the kernel does at once however busy the
 * daemon is; 0 when there is no file or nobody listens on it (a stale file
 * after a crash: ECONNREFUSED at once); -1 for another transport, where
 * only a connection attempt with a time limit can tell.
 */
static int
control_listening(const char *endpoint)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path;
	int fd, rc;

	if (strncmp(endpoint, "ipc://", 6) != 0)
		return -1;
	path = endpoint + 6;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return rc == 0 ? 1 : 0;
}

void
ctl_checkpoint(struct ctl *ctl)
{
	char endpoint[CONFIG_PATH_MAX + 16], reply[256];
	int connect_ms = CHECKPOINT_CONNECT_MS;

	control_endpoint(ctl, endpoint, sizeof(endpoint));
	/* No daemon: do not wait for one. A daemon there may take its time
	 * to finish the connection on a loaded machine (a fixed 300 ms made
	 * indicatorctl read the tables without their checkpoint, and warn);
	 * it answers or the wait for the answer ends. */
	switch (control_listening(endpoint)) {
	case 0:
		return;
	case 1:
		connect_ms = CHECKPOINT_WAIT_MS;
		break;
	default:
		break;
	}
	if (ctl_ask(ctl, "checkpoint", connect_ms, CHECKPOINT_WAIT_MS, reply,
		sizeof(reply), true) == 0 &&
	    strstr(reply, "\"checkpoint\":true") == NULL)
		fprintf(stderr,
		    "indicatorctl: the daemon could not checkpoint (%s); "
		    "the latest reports may be missing below\n",
		    reply);
}

int
cmd_status(struct ctl *ctl, int argc, char *argv[])
{
	char err[512], *reply;
	int rc = 1;

	if (args_parse(ctl, argc, argv, NULL, NULL, 0) == -1)
		return usage();
	ctl->cfg = xcalloc(1, sizeof(*ctl->cfg));
	if (config_load(ctl->cfg, ctl->conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "indicatorctl: %s\n", err);
		return 1;
	}
	config_resolve_dir(ctl->cfg, getenv("STATE_DIRECTORY"));
	reply = xmalloc(REPLY_MAX);
	if (ctl_ask(ctl, "status", STATUS_WAIT_MS, STATUS_WAIT_MS, reply,
		REPLY_MAX, false) == 0) {
		if (ctl->json)
			printf("%s\n", reply);
		else
			print_status(reply);
		rc = 0;
	}
	free(reply);
	return rc;
}

/* The string after "key": in a flat JSON object, unescaped into buf;
 * false when there is none. */
static bool
json_string_get(const char *json, const char *key, char *buf, size_t len)
{
	char pat[64];
	const char *p;
	size_t o = 0;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	if (len == 0 || (p = strstr(json, pat)) == NULL)
		return false;
	for (p += strlen(pat); *p != '\0' && *p != '"' && o + 1 < len; p++) {
		if (*p == '\\' && p[1] == 'u' && strlen(p) >= 6) {
			char hex[5] = { p[2], p[3], p[4], p[5], '\0' };
			unsigned long c = strtoul(hex, NULL, 16);

			/* The daemon escapes only control characters. */
			buf[o++] = c < 0x80 ? (char)c : '?';
			p += 5;
		} else if (*p == '\\' && p[1] != '\0') {
			p++;
			buf[o++] = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
		} else {
			buf[o++] = *p;
		}
	}
	buf[o] = '\0';
	return true;
}

int
cmd_reload(struct ctl *ctl, int argc, char *argv[])
{
	char err[512], why[1024], *reply;
	bool unreadable = false;
	int rc = 1;

	if (args_parse(ctl, argc, argv, NULL, NULL, 0) == -1)
		return usage();
	ctl->cfg = xcalloc(1, sizeof(*ctl->cfg));
	/* A file that does not load is the daemon's to refuse: ask it all
	 * the same, at -d or $STATE_DIRECTORY (as under the unit), so that
	 * it logs why and the answer is its own. */
	if (config_load(ctl->cfg, ctl->conf, err, sizeof(err)) == -1) {
		const char *sd = getenv("STATE_DIRECTORY");

		unreadable = true;
		if ((ctl->dir == NULL && (sd == NULL || sd[0] == '\0')) ||
		    config_load(ctl->cfg, NULL, why, sizeof(why)) == -1) {
			fprintf(stderr,
			    "indicatorctl: %s\nindicatorctl: the daemon would "
			    "refuse it (-d DATADIR asks it anyway)\n",
			    err);
			return 1;
		}
	}
	config_resolve_dir(ctl->cfg, getenv("STATE_DIRECTORY"));
	reply = xmalloc(REPLY_MAX);
	if (ctl_ask(ctl, "reload", STATUS_WAIT_MS, RELOAD_WAIT_MS, reply,
		REPLY_MAX, false) == -1) {
		if (unreadable)
			fprintf(stderr, "indicatorctl: %s\n", err);
		goto reply_free;
	}
	if (ctl->json)
		printf("%s\n", reply);
	if (strstr(reply, "\"reload\":true") != NULL) {
		if (!ctl->json)
			printf("indicatorctl: configuration reloaded: %.0f "
			       "districts, %.0f industries, %.0f metrics, %.0f "
			       "targets\n",
			    json_number(reply, "districts"),
			    json_number(reply, "industries"),
			    json_number(reply, "metrics"),
			    json_number(reply, "targets"));
		rc = 0;
	} else if (json_string_get(reply, "error", why, sizeof(why))) {
		fprintf(stderr,
		    "indicatorctl: reload refused, the daemon keeps its "
		    "configuration: %s\n",
		    why);
	} else {
		fprintf(stderr, "indicatorctl: unexpected answer: %s\n", reply);
	}
reply_free:
	free(reply);
	return rc;
}
