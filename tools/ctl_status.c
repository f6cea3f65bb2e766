/*
 * indicatorctl status: asks the running daemon over its local control
 * socket (ipc://DATA_DIR/control unless [daemon] control says otherwise).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "indicatorctl.h"
#include "xmalloc.h"

#define STATUS_WAIT_MS 5000
#define REPLY_MAX 4096

/* The number after "key": in a flat JSON object, or -1. */
static double
json_number(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	if ((p = strstr(json, pat)) == NULL)
		return -1;
	return strtod(p + strlen(pat), NULL);
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
		char num[NUM_MAX];

		num_format(v, num, sizeof(num));
		printf("%-28s %s\n", rows[i].label, num);
	}
}

int
cmd_status(struct ctl *ctl, int argc, char *argv[])
{
	struct config *cfg;
	char err[512], endpoint[CONFIG_PATH_MAX + 16], *reply = NULL;
	void *zctx = NULL, *sock = NULL;
	int linger = 0, rc = 1, n;
	zmq_pollitem_t item;

	if (args_parse(ctl, argc, argv, NULL, NULL, 0) == -1)
		return usage();
	cfg = ctl->cfg = xcalloc(1, sizeof(*ctl->cfg));
	if (config_load(cfg, ctl->conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "indicatorctl: %s\n", err);
		return 1;
	}
	config_resolve_dir(cfg, getenv("STATE_DIRECTORY"));
	if (cfg->control[0] != '\0')
		snprintf(endpoint, sizeof(endpoint), "%s", cfg->control);
	else
		snprintf(endpoint, sizeof(endpoint), "ipc://%s/control",
		    ctl->dir != NULL ? ctl->dir : cfg->data_dir);
	if ((zctx = zmq_ctx_new()) == NULL ||
	    (sock = zmq_socket(zctx, ZMQ_DEALER)) == NULL)
		goto zmq_fail;
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	if (zmq_connect(sock, endpoint) == -1 ||
	    zmq_send(sock, "status", 6, 0) != 6)
		goto zmq_fail;
	item = (zmq_pollitem_t){ sock, 0, ZMQ_POLLIN, 0 };
	if (zmq_poll(&item, 1, STATUS_WAIT_MS) != 1) {
		fprintf(stderr,
		    "indicatorctl: no answer from the daemon at %s within %d "
		    "s; is indicatord running?\n",
		    endpoint, STATUS_WAIT_MS / 1000);
		goto sock_close;
	}
	reply = xmalloc(REPLY_MAX);
	if ((n = zmq_recv(sock, reply, REPLY_MAX - 1, 0)) < 0)
		goto zmq_fail;
	reply[n < REPLY_MAX ? n : REPLY_MAX - 1] = '\0';
	if (ctl->json)
		printf("%s\n", reply);
	else
		print_status(reply);
	rc = 0;
	goto sock_close;
zmq_fail:
	fprintf(
	    stderr, "indicatorctl: %s: %s\n", endpoint, zmq_strerror(errno));
sock_close:
	free(reply);
	if (sock != NULL)
		zmq_close(sock);
	if (zctx != NULL)
		zmq_ctx_term(zctx);
	return rc;
}
