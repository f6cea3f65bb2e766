/*
 * Operating the running daemon: indicatorctl status over the control
 * socket while agents stream, the Prometheus metrics endpoint, and reload,
 * on SIGHUP and with indicatorctl reload (a changed registry takes effect on
 * the open connection; a broken file is refused, the daemon keeps serving,
 * and indicatorctl reload says why and exits 1).
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"
#include "indicator.pb-c.h"
#include "xmalloc.h"

#define ACK_MS 10000
#define LOG_WAIT_MS 10000

static struct daemon_proc dm;
static void *zctx;

static void
teardown(void)
{
	if (dm.pid > 0)
		ck_assert_int_eq(
		    WEXITSTATUS(harness_daemon_stop(&dm, SIGTERM)), 0);
	harness_daemon_cleanup(&dm);
	if (zctx != NULL)
		zmq_ctx_term(zctx);
	zctx = NULL;
}

static double
json_number(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	ck_assert_msg(p != NULL, "no %s in %s", key, json);
	p += strlen(pat);
	/* 64-bit counters are strings of digits. */
	if (*p == '"')
		p++;
	return strtod(p, NULL);
}

static char *
status_json(void)
{
	const char *argv[] = { INDICATORCTL_BIN, "-c", dm.conf, "status",
		"--json", NULL };
	char *out;

	ck_assert_int_eq(harness_run(argv, &out, NULL, 20), 0);
	return out;
}

/* A CSV of n rows over distinct keys. */
static void
write_csv(const char *path, int n)
{
	static const char *const ind[] = { "materials", "photonics",
		"metaverse", "hydrogen", "digifin", "cellgene", "aerospace",
		"quantum" };
	size_t cap = 64 + (size_t)n * 64, off;
	char *text = xmalloc(cap);

	off =
	    (size_t)snprintf(text, cap, "industry,metric,period,value,unit\n");
	for (int i = 0; i < n; i++)
		off += (size_t)snprintf(text + off, cap - off,
		    "%s,output_value,%d-%02d,%d.5,CNY_100M\n", ind[i % 8],
		    2015 + (i / 8) / 12, (i / 8) % 12 + 1, i % 97);
	harness_write_file(path, text);
	free(text);
}

START_TEST(status_while_agents_stream)
{
	char csv[700], outbox[700], agentconf[700], log[700];
	const char *argv[] = { AGENT_BIN, "-c", agentconf, "--id", "status-01",
		"--district", "320583", "--endpoint", dm.ingest, "--outbox",
		outbox, "--timeout", "120", "send", csv, NULL };
	char *json;
	int polls_while_running = 0, rc;
	double accepted = 0;
	pid_t pid;

	harness_daemon_init(&dm, NULL);
	harness_daemon_start(&dm);
	snprintf(csv, sizeof(csv), "%s/big.csv", dm.dir);
	snprintf(outbox, sizeof(outbox), "%s/outbox", dm.dir);
	snprintf(agentconf, sizeof(agentconf), "%s/agent.conf", dm.dir);
	/* Small reports, a small window: the stream lasts a while. */
	harness_write_file(agentconf, "[agent]\nreport_size = 1\nwindow = 2\n");
	write_csv(csv, 1000); /* 8 industries x 125 months from 2015-01 */
	snprintf(log, sizeof(log), "%s/agent.log", dm.dir);
	pid = harness_spawn(argv, log);
	for (;;) {
		int st;
		bool running = waitpid(pid, &st, WNOHANG) == 0;

		json = status_json();
		accepted = json_number(json, "accepted");
		free(json);
		if (!running) {
			ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			    "agent failed");
			break;
		}
		polls_while_running++;
		usleep(20000);
	}
	printf("status: %d answers while the agent streamed\n",
	    polls_while_running);
	ck_assert_int_gt(polls_while_running, 0);
	/* The store's figures are its tables': up to date after a
	 * checkpoint, which is counted and timed. */
	harness_checkpoint(&dm);
	json = status_json();
	ck_assert_msg(json_number(json, "checkpoints") >= 1, "%s", json);
	ck_assert(json_number(json, "checkpoint_ms_max") > 0);
	ck_assert(json_number(json, "checkpoint_ms_avg") > 0);
	ck_assert_msg(json_number(json, "accepted") == 1000, "%s", json);
	ck_assert(json_number(json, "observations") == 1000);
	ck_assert(json_number(json, "agents") == 1);
	ck_assert(json_number(json, "batches") >= 1);
	ck_assert(json_number(json, "commit_ms_avg") > 0);
	ck_assert(json_number(json, "aggregates") > 0);
	free(json);
	(void)accepted;
	(void)rc;
}
END_TEST

START_TEST(status_without_daemon)
{
	const char *argv[] = { INDICATORCTL_BIN, "-c", dm.conf, "status",
		NULL };
	char *err;

	harness_daemon_init(&dm, NULL);
	ck_assert_int_eq(harness_run(argv, NULL, &err, 20), 1);
	ck_assert_msg(strstr(err, "is indicatord running?") != NULL, "%s", err);
	free(err);
}
END_TEST

/* GET path from 127.0.0.1:port; the whole response. */
static char *
http_get(int port, const char *path)
{
	struct sockaddr_in sa = { 0 };
	char req[256], *buf = xmalloc(65536);
	size_t off = 0;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert(fd != -1);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
	    path);
	ck_assert(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
	while ((n = read(fd, buf + off, 65535 - off)) > 0)
		off += (size_t)n;
	buf[off] = '\0';
	close(fd);
	return buf;
}

/* Checks the exposition format line by line; returns the value of the
 * sample named exactly `want` (name and labels), or -1. */
static double
check_exposition(const char *body, const char *want)
{
	char *copy = xstrdup(body), *save = NULL, typed[64][96];
	size_t ntyped = 0;
	double found = -1;

	for (char *line = strtok_r(copy, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char name[96], kind[32], *sp, *end;
		bool ok = false;

		if (strncmp(line, "# HELP ", 7) == 0)
			continue;
		if (sscanf(line, "# TYPE %95s %31s", name, kind) == 2) {
			ck_assert_msg(strcmp(kind, "counter") == 0 ||
					  strcmp(kind, "gauge") == 0 ||
					  strcmp(kind, "histogram") == 0,
			    "bad TYPE line: %s", line);
			ck_assert(ntyped < 64);
			strcpy(typed[ntyped++], name);
			continue;
		}
		ck_assert_msg(line[0] != '#', "bad comment: %s", line);
		sp = strrchr(line, ' ');
		ck_assert_msg(sp != NULL, "no value: %s", line);
		strtod(sp + 1, &end);
		ck_assert_msg(*end == '\0', "bad value: %s", line);
		/* Every sample belongs to a family declared before it. */
		for (size_t i = 0; i < ntyped; i++)
			if (strncmp(line, typed[i], strlen(typed[i])) == 0)
				ok = true;
		ck_assert_msg(ok, "sample before its TYPE: %s", line);
		if ((size_t)(sp - line) == strlen(want) &&
		    strncmp(line, want, strlen(want)) == 0)
			found = strtod(sp + 1, NULL);
	}
	free(copy);
	return found;
}

static Indicator__Ack *
send_one(void *s, const char *industry, uint64_t seq)
{
	const struct harness_report spec = { "ctl-01", "320583", 3, seq,
		industry, 5 };

	return harness_report_one(s, &spec, ACK_MS);
}

START_TEST(metrics_exposition)
{
	int port = harness_free_port();
	char extra[128], *resp, *body;
	void *s;
	uint64_t seq;

	snprintf(extra, sizeof(extra), "metrics = 127.0.0.1:%d\n", port);
	harness_daemon_init(&dm, extra);
	harness_daemon_start(&dm);
	zctx = zmq_ctx_new();
	s = harness_client_new(zctx, dm.ingest);
	for (seq = 1; seq <= 5; seq++)
		harness_expect_ack(send_one(s, "photonics", seq),
		    INDICATOR__ACK_STATUS__ACCEPTED, NULL);
	harness_expect_ack(
	    send_one(s, "nope", seq), INDICATOR__ACK_STATUS__REJECTED, NULL);
	zmq_close(s);
	resp = http_get(port, "/metrics");
	ck_assert_msg(strncmp(resp, "HTTP/1.0 200", 12) == 0 ||
			  strncmp(resp, "HTTP/1.1 200", 12) == 0,
	    "%s", resp);
	ck_assert_ptr_nonnull(strstr(resp, "text/plain; version=0.0.4"));
	body = strstr(resp, "\r\n\r\n");
	ck_assert_ptr_nonnull(body);
	body += 4;
	ck_assert(check_exposition(body,
		      "indicatord_reports_total{status=\"accepted\"}") == 5);
	ck_assert(check_exposition(body,
		      "indicatord_reports_total{status=\"rejected\"}") == 1);
	ck_assert(check_exposition(body, "indicatord_commit_seconds_count") ==
		  check_exposition(
		      body, "indicatord_commit_seconds_bucket{le=\"+Inf\"}"));
	ck_assert(
	    check_exposition(body, "indicatord_commit_seconds_count") >= 1);
	free(resp);
	resp = http_get(port, "/other");
	ck_assert_ptr_nonnull(strstr(resp, " 404 "));
	free(resp);
}
END_TEST

START_TEST(metrics_off_loopback_refused)
{
	const char *argv[] = { INDICATORD_BIN, "-c", dm.conf, NULL };
	char *err;

	harness_daemon_init(&dm, "metrics = 0.0.0.0:9464\n");
	ck_assert_int_eq(harness_run(argv, NULL, &err, 20), 1);
	ck_assert_msg(strstr(err, "loopback") != NULL, "%s", err);
	free(err);
}
END_TEST

static void
conf_append(const char *more)
{
	char *conf = harness_read_file(dm.conf);
	char *text = xmalloc(strlen(conf) + strlen(more) + 1);

	strcpy(text, conf);
	strcat(text, more);
	harness_write_file(dm.conf, text);
	free(conf);
	free(text);
}

START_TEST(reload_registry_keeps_connection)
{
	void *s;
	char *conf;

	harness_daemon_init(&dm, NULL);
	harness_daemon_start(&dm);
	zctx = zmq_ctx_new();
	s = harness_client_new(zctx, dm.ingest);
	harness_expect_ack(
	    send_one(s, "robotics", 1), INDICATOR__ACK_STATUS__REJECTED, NULL);
	conf_append("[industry robotics]\nname = 机器人\n");
	ck_assert(kill(dm.pid, SIGHUP) == 0);
	harness_wait_log(dm.log,
	    "configuration reloaded: 10 districts, 9 industries", LOG_WAIT_MS);
	/* The same connection: the new industry is known. */
	harness_expect_ack(
	    send_one(s, "robotics", 2), INDICATOR__ACK_STATUS__ACCEPTED, NULL);
	/* A broken file is refused; the daemon keeps the old one and
	 * serves. */
	conf = harness_read_file(dm.conf);
	harness_write_file(dm.conf, "[daemon\nthis is not ini\n");
	ck_assert(kill(dm.pid, SIGHUP) == 0);
	harness_wait_log(dm.log, "reload refused", LOG_WAIT_MS);
	harness_expect_ack(
	    send_one(s, "robotics", 3), INDICATOR__ACK_STATUS__ACCEPTED, NULL);
	harness_write_file(dm.conf, conf);
	free(conf);
	zmq_close(s);
}
END_TEST

/* indicatorctl [-d DIR] reload: its exit code, stdout and stderr. */
static int
ctl_reload(const char *data_dir, bool json, char **out, char **err)
{
	const char *args[] = { "reload", json ? "--json" : NULL, NULL };

	return harness_ctl_run(dm.conf, data_dir, args, out, err, 90);
}

START_TEST(reload_command_reports_outcome)
{
	char *conf, *out, *err;
	void *s;

	harness_daemon_init(&dm, NULL);
	harness_daemon_start(&dm);
	zctx = zmq_ctx_new();
	s = harness_client_new(zctx, dm.ingest);
	harness_expect_ack(
	    send_one(s, "robotics", 1), INDICATOR__ACK_STATUS__REJECTED, NULL);

	/* Taken: exit 0, the new registry's size, in effect at once. */
	conf_append("[industry robotics]\nname = 机器人\n");
	ck_assert_int_eq(ctl_reload(NULL, false, &out, &err), 0);
	ck_assert_msg(strstr(out, "configuration reloaded: 10 districts, 9 "
				  "industries") != NULL,
	    "%s", out);
	free(out);
	free(err);
	harness_expect_ack(
	    send_one(s, "robotics", 2), INDICATOR__ACK_STATUS__ACCEPTED, NULL);
	ck_assert(harness_daemon_log_has(&dm, "configuration reloaded"));

	/* Refused: exit 1 with the daemon's reason; the old file serves. */
	conf = harness_read_file(dm.conf);
	conf_append("[industry quantum]\nno_such_key = 1\n");
	ck_assert_int_eq(ctl_reload(NULL, false, &out, &err), 1);
	ck_assert_msg(strstr(err, "no_such_key") != NULL &&
			  strstr(err, "the daemon would refuse it") != NULL,
	    "%s", err);
	free(out);
	free(err);
	/* Asked all the same, at its data directory (the unit's
	 * ExecReload= has $STATE_DIRECTORY): the daemon's answer. */
	ck_assert_int_eq(ctl_reload(dm.data_dir, false, &out, &err), 1);
	ck_assert_msg(strstr(err, "reload refused") != NULL &&
			  strstr(err, "no_such_key") != NULL,
	    "%s", err);
	ck_assert_str_eq(out, "");
	free(out);
	free(err);
	harness_wait_log(dm.log, "reload refused", LOG_WAIT_MS);
	harness_expect_ack(
	    send_one(s, "robotics", 3), INDICATOR__ACK_STATUS__ACCEPTED, NULL);

	/* Not even INI: the same. */
	harness_write_file(dm.conf, "[daemon\nthis is not ini\n");
	ck_assert_int_eq(ctl_reload(dm.data_dir, true, &out, &err), 1);
	ck_assert_msg(strstr(out, "\"reload\":false") != NULL, "%s", out);
	ck_assert_msg(strstr(err, "reload refused, the daemon keeps its "
				  "configuration") != NULL,
	    "%s", err);
	free(out);
	free(err);
	harness_expect_ack(
	    send_one(s, "robotics", 4), INDICATOR__ACK_STATUS__ACCEPTED, NULL);

	/* Mended: taken again, and SIGHUP still works as before. */
	harness_write_file(dm.conf, conf);
	free(conf);
	ck_assert_int_eq(ctl_reload(NULL, true, &out, &err), 0);
	ck_assert_msg(strstr(out, "\"reload\":true") != NULL, "%s", out);
	free(out);
	free(err);
	zmq_close(s);
}
END_TEST

START_TEST(reload_command_without_daemon)
{
	char *out, *err;

	harness_daemon_init(&dm, NULL);
	ck_assert_int_eq(ctl_reload(NULL, false, &out, &err), 1);
	ck_assert_msg(strstr(err, "is indicatord running?") != NULL, "%s", err);
	free(out);
	free(err);
}
END_TEST

static Suite *
control_suite(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("control");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, status_while_agents_stream);
	tcase_add_test(tc, status_without_daemon);
	tcase_add_test(tc, metrics_exposition);
	tcase_add_test(tc, metrics_off_loopback_refused);
	tcase_add_test(tc, reload_registry_keeps_connection);
	tcase_add_test(tc, reload_command_reports_outcome);
	tcase_add_test(tc, reload_command_without_daemon);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(control_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
