/*
 * Metrics for alerting, on the real binaries: the daemon's page (every
 * rejection code, RETRY_LATER codes, each district's last report kept
 * across a restart, metrics missing for the current period, store use,
 * build info), /healthz and /readyz (503 while the log is replayed), the
 * message on a port clash, and the agent's endpoint (pending, dead
 * letters, last ack, daemon reachable, files taken and rejected). Both
 * pages must pass Prometheus's `promtool check metrics`, extracted by
 * tools/setup.sh: without it this suite fails.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"
#include "indicator.pb-c.h"
#include "store.h"
#include "xmalloc.h"

#define ACK_MS 10000
#define WAIT_MS 20000
#define RUN_TIMEOUT_S 60

static struct daemon_proc dm;
static void *zctx;
static pid_t agent_pid;
static char *agent_dir;

static void
teardown(void)
{
	if (agent_pid > 0) {
		kill(agent_pid, SIGTERM);
		harness_wait(agent_pid, RUN_TIMEOUT_S);
		agent_pid = 0;
	}
	if (agent_dir != NULL) {
		harness_rmtree(agent_dir);
		free(agent_dir);
		agent_dir = NULL;
	}
	if (dm.pid > 0)
		ck_assert_int_eq(
		    WEXITSTATUS(harness_daemon_stop(&dm, SIGTERM)), 0);
	harness_daemon_cleanup(&dm);
	if (zctx != NULL)
		zmq_ctx_term(zctx);
	zctx = NULL;
}

/* GET path, which must answer want; the body (caller frees). */
static char *
http_expect(int port, const char *path, int want)
{
	int status = 0;
	char *body = harness_http_get(port, path, &status);

	ck_assert_msg(body != NULL, "nothing listens on port %d", port);
	ck_assert_msg(status == want, "GET %s: %d, want %d: %s", path, status,
	    want, body);
	return body;
}

/* The value of the sample named exactly sample (name and labels), or NAN
 * when the page has none. */
static double
sample(const char *page, const char *sample_name)
{
	size_t n = strlen(sample_name);

	for (const char *p = page; p != NULL && *p != '\0';) {
		const char *nl = strchr(p, '\n');

		if (strncmp(p, sample_name, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = nl != NULL ? nl + 1 : NULL;
	}
	return NAN;
}

/* Waits until the page at port has sample == want. */
static char *
wait_sample(int port, const char *name, double want)
{
	int64_t end = harness_now_ms() + WAIT_MS;
	char *page = NULL;

	for (;;) {
		free(page);
		page = http_expect(port, "/metrics", 200);
		if (sample(page, name) == want)
			return page;
		if (harness_now_ms() > end)
			ck_abort_msg("%s is %g, want %g, after %d ms:\n%s",
			    name, sample(page, name), want, WAIT_MS, page);
		harness_sleep_ms(50);
	}
}

/* Runs promtool check metrics on page: it must pass. */
static void
promtool_check(const char *page)
{
	char *dir = harness_tmpdir(), path[600], cmd[1400], *out, *err;
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	struct stat st;
	int rc;

	ck_assert_msg(stat(PROMTOOL_BIN, &st) == 0 && (st.st_mode & 0111),
	    "promtool is missing at %s: tools/setup.sh extracts it from "
	    "Debian's prometheus package (make test runs it)",
	    PROMTOOL_BIN);
	snprintf(path, sizeof(path), "%s/page.txt", dir);
	harness_write_file(path, page);
	snprintf(cmd, sizeof(cmd), "exec '%s' check metrics <'%s'",
	    PROMTOOL_BIN, path);
	rc = harness_run(argv, &out, &err, RUN_TIMEOUT_S);
	ck_assert_msg(rc == 0, "promtool check metrics: exit %d: %s%s\n%s", rc,
	    out, err, page);
	free(out);
	free(err);
	harness_rmtree(dir);
	free(dir);
}

/* The last completed month in Asia/Shanghai, the default time zone: the
 * daemon's "current period". */
static void
current_period(char *buf, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;
	int year, month;

	setenv("TZ", "Asia/Shanghai", 1);
	tzset();
	localtime_r(&now, &tm);
	year = tm.tm_year + 1900;
	month = tm.tm_mon;
	if (month == 0) {
		month = 12;
		year--;
	}
	snprintf(buf, len, "%04d-%02d", year % 10000, month % 100);
}

/* One report of district 320583 with the observations (industry,
 * metric, period, value, unit each). */
static Indicator__Ack *
send_obs(void *s, uint64_t seq, size_t n, const char *const (*obs)[5])
{
	Indicator__Report r = INDICATOR__REPORT__INIT;
	Indicator__Observation o[4], *op[4];
	Indicator__Ack *ack;

	ck_assert(n <= 4);
	for (size_t i = 0; i < n; i++) {
		indicator__observation__init(&o[i]);
		o[i].industry = (char *)obs[i][0];
		o[i].metric = (char *)obs[i][1];
		o[i].period = (char *)obs[i][2];
		o[i].value = strtod(obs[i][3], NULL);
		o[i].unit = (char *)obs[i][4];
		o[i].status = INDICATOR__OBS_STATUS__PROVISIONAL;
		op[i] = &o[i];
	}
	r.agent_id = "met-01";
	r.district = "320583";
	r.epoch = 11;
	r.seq = seq;
	r.sent_at_ms = (int64_t)time(NULL) * 1000;
	r.n_observations = n;
	r.observations = op;
	ack = harness_send_report(s, &r, ACK_MS);
	ck_assert_msg(
	    ack != NULL, "no answer to seq %llu", (unsigned long long)seq);
	return ack;
}

static int
metrics_port(void)
{
	char extra[64];
	int port = harness_free_port();

	snprintf(extra, sizeof(extra), "metrics = 127.0.0.1:%d\n", port);
	harness_daemon_init(&dm, extra);
	return port;
}

static const char *const every_code[] = { "malformed", "bad_agent_id",
	"bad_epoch", "bad_seq", "not_authorised", "unknown_district",
	"empty_report", "too_many_observations", "bad_string",
	"unknown_industry", "unknown_metric", "bad_period", "future_period",
	"too_early", "not_finite", "negative", "not_integer", "unknown_unit",
	"implausible", "duplicate_key", "bad_status" };

/* What the page says about one district and the current period. */
static double
district_sample(
    const char *page, const char *name, const char *district, const char *p)
{
	char s[160];

	if (p != NULL)
		snprintf(s, sizeof(s), "%s{district=\"%s\",period=\"%s\"}",
		    name, district, p);
	else
		snprintf(s, sizeof(s), "%s{district=\"%s\"}", name, district);
	return sample(page, s);
}

START_TEST(daemon_page)
{
	char period[16], missing4[160], code[96], *page;
	const char *const good[2][5] = {
		{ "photonics", "output_value", period, "5", "CNY_100M" },
		{ "photonics", "chain_leaders", period, "2", "count" },
	};
	const char *const bad1[2][5] = {
		{ "nope", "output_value", "2024", "1", "CNY_100M" },
		{ "photonics", "output_value", "2023", "-1", "CNY_100M" },
	};
	const char *const bad2[2][5] = {
		{ "photonics", "output_value", "2022", "1e9", "CNY_100M" },
		{ "quantum", "output_value", "2022", "2e9", "CNY_100M" },
	};
	const void *frames[1] = { "\x01garbage" };
	const size_t lens[1] = { 8 };
	int64_t t0, t1;
	double last;
	int port = metrics_port();
	void *s;

	current_period(period, sizeof(period));
	harness_daemon_start(&dm);
	page = http_expect(port, "/metrics", 200);
	ck_assert(district_sample(page,
		      "indicatord_last_report_timestamp_"
		      "seconds",
		      "320583", NULL) == 0);
	ck_assert(district_sample(page, "indicatord_metrics_missing", "320505",
		      period) == 6);
	ck_assert(sample(page, "indicatord_registry_metrics") == 6);
	free(page);

	zctx = zmq_ctx_new();
	s = harness_client_new(zctx, dm.ingest);
	t0 = (int64_t)time(NULL);
	harness_expect_ack(
	    send_obs(s, 1, 2, good), INDICATOR__ACK_STATUS__ACCEPTED, NULL);
	t1 = (int64_t)time(NULL);
	harness_expect_ack(
	    send_obs(s, 2, 2, bad1), INDICATOR__ACK_STATUS__REJECTED, NULL);
	harness_expect_ack(
	    send_obs(s, 3, 2, bad2), INDICATOR__ACK_STATUS__REJECTED, NULL);
	/* The same seq again gets the same answer, counted once. */
	harness_expect_ack(
	    send_obs(s, 3, 2, bad2), INDICATOR__ACK_STATUS__REJECTED, NULL);
	harness_expect_ack(send_obs(s, 9, 2, good),
	    INDICATOR__ACK_STATUS__RETRY_LATER, "out_of_order");
	harness_client_send(s, frames, lens, 1);
	harness_expect_ack(harness_client_ack(s, ACK_MS),
	    INDICATOR__ACK_STATUS__REJECTED, "malformed");
	zmq_close(s);

	/* Missing metrics are counted from the stored aggregates, after a
	 * checkpoint. */
	harness_checkpoint(&dm);
	snprintf(missing4, sizeof(missing4),
	    "indicatord_metrics_missing{district=\"320583\",period=\"%s\"}",
	    period);
	page = wait_sample(port, missing4, 4);
	ck_assert(district_sample(page, "indicatord_metrics_missing", "320505",
		      period) == 6);
	for (size_t i = 0; i < sizeof(every_code) / sizeof(every_code[0]);
	     i++) {
		double want =
		    strcmp(every_code[i], "implausible") == 0 ||
			    strcmp(every_code[i], "unknown_industry") == 0 ||
			    strcmp(every_code[i], "negative") == 0 ||
			    strcmp(every_code[i], "malformed") == 0
			? 1
			: 0;

		snprintf(code, sizeof(code),
		    "indicatord_rejections_total{code=\"%s\"}", every_code[i]);
		ck_assert_msg(sample(page, code) == want, "%s is %g, want %g",
		    code, sample(page, code), want);
	}
	ck_assert(
	    sample(page,
		"indicatord_retry_later_total{code=\"out_of_order\"}") == 1);
	ck_assert(
	    sample(page, "indicatord_retry_later_total{code=\"store_full\"}") ==
	    0);
	ck_assert(
	    sample(page, "indicatord_reports_total{status=\"rejected\"}") == 4);
	last = district_sample(
	    page, "indicatord_last_report_timestamp_seconds", "320583", NULL);
	ck_assert_msg(last >= (double)t0 - 1 && last <= (double)t1 + 1,
	    "last report %g, sent between %lld and %lld", last, (long long)t0,
	    (long long)t1);
	ck_assert(
	    district_sample(page, "indicatord_last_report_timestamp_seconds",
		"320505", NULL) == 0);
	ck_assert(sample(page, "indicatord_store_used_ratio") > 0);
	ck_assert(sample(page, "indicatord_store_used_ratio") <= 1);
	ck_assert(sample(page, "indicatord_store_used_bytes") <=
		  sample(page, "indicatord_store_map_bytes"));
	ck_assert(sample(page, "indicatord_store_map_bytes") <=
		  sample(page, "indicatord_store_map_max_bytes"));
	ck_assert(sample(page, "indicatord_ready") == 1);
	ck_assert_msg(
	    strstr(page, "\nindicatord_build_info{version=\"") != NULL, "%s",
	    page);
	promtool_check(page);
	free(page);

	/* The last report time survives a restart (meta in the store). */
	ck_assert_int_eq(WEXITSTATUS(harness_daemon_stop(&dm, SIGTERM)), 0);
	harness_daemon_start(&dm);
	page = wait_sample(port, missing4, 4);
	ck_assert(
	    district_sample(page, "indicatord_last_report_timestamp_seconds",
		"320583", NULL) == last);
	ck_assert(
	    sample(page, "indicatord_rejections_total{code=\"implausible\"}") ==
	    0);
	free(page);
}
END_TEST

START_TEST(health_and_clash)
{
	const char *argv[] = { INDICATORD_BIN, "-c", dm.conf, NULL };
	struct sockaddr_in sa = { 0 };
	char want[128], *body, *err;
	int port, fd, one = 1;

	port = metrics_port();
	harness_daemon_start(&dm);
	body = http_expect(port, "/healthz", 200);
	ck_assert_str_eq(body, "ok\n");
	free(body);
	body = http_expect(port, "/readyz", 200);
	ck_assert_str_eq(body, "ready\n");
	free(body);
	free(http_expect(port, "/nope", 404));
	ck_assert_int_eq(WEXITSTATUS(harness_daemon_stop(&dm, SIGTERM)), 0);
	harness_daemon_cleanup(&dm);

	/* Someone else has the port: the start fails and says so. */
	port = metrics_port();
	fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	ck_assert(listen(fd, 1) == 0);
	ck_assert_int_eq(harness_run(argv, NULL, &err, RUN_TIMEOUT_S), 1);
	snprintf(want, sizeof(want),
	    "metrics: cannot listen on 127.0.0.1:%d: Address already in use",
	    port);
	ck_assert_msg(strstr(err, want) != NULL, "%s", err);
	free(err);
	close(fd);
}
END_TEST

/*
 * A log of n observations that no checkpoint applied, written straight
 * into the store: 10 districts x 8 industries x 6 metrics x 120 months,
 * revision after revision, so that the daemon replays them all at start.
 */
static void
store_unapplied(const char *dir, size_t n)
{
	static const char *const d[] = { "320505", "320506", "320507", "320508",
		"320509", "320576", "320581", "320582", "320583", "320585" };
	static const char *const ind[] = { "materials", "photonics",
		"metaverse", "hydrogen", "digifin", "cellgene", "aerospace",
		"quantum" };
	static const char *const met[] = { "innovation_platforms",
		"chain_leaders", "pilot_parks", "core_products",
		"app_scenarios" };
	const size_t keys = 10 * 8 * 5 * 120;
	struct store_opts so = { .dir = dir, .map_size = 512ULL << 20 };
	uint64_t *prev = xcalloc(keys, sizeof(*prev));
	struct store_txn *t = NULL;
	struct store *s;
	uint64_t batch = 0;
	char err[256];

	s = store_open(&so, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	for (size_t i = 0; i < n; i++) {
		size_t k = i % keys;
		struct store_obs o;

		if (i % 2000 == 0) {
			if (t != NULL)
				ck_assert_int_eq(store_txn_commit(&t), 0);
			t = store_txn_begin(s, true);
			ck_assert_int_eq(store_log_next(t, &batch), 0);
		}
		memset(&o, 0, sizeof(o));
		snprintf(o.district, sizeof(o.district), "%s", d[k % 10]);
		snprintf(o.industry, sizeof(o.industry), "%s", ind[k / 10 % 8]);
		snprintf(o.metric, sizeof(o.metric), "%s", met[k / 80 % 5]);
		snprintf(o.period, sizeof(o.period), "%04zu-%02zu",
		    2010 + k / 400 / 12 % 10, k / 400 % 12 + 1);
		o.value = (double)(i % 97);
		snprintf(o.unit, sizeof(o.unit), "count");
		o.sent_value = o.value;
		snprintf(o.sent_unit, sizeof(o.sent_unit), "count");
		snprintf(o.agent_id, sizeof(o.agent_id), "replay-01");
		o.epoch = 1;
		o.seq = i + 1;
		o.stored_at_ms = o.sent_at_ms = 1735787045000;
		o.revision = (uint32_t)(i / keys + 1);
		o.prev = prev[k];
		o.batch = batch;
		ck_assert_int_eq(store_log_append(t, &o), 0);
		prev[k] = o.lsn;
	}
	ck_assert_int_eq(store_txn_commit(&t), 0);
	store_close(&s);
	free(prev);
}

/*
 * /readyz answers 503 "replaying the log" while the daemon replays what
 * no checkpoint applied, and 200 only after; /healthz stays 200 through
 * it (the replay marks the loop alive). The first 200 must come after the
 * log says the replay is done. Whether a poll falls inside the replay (about
 * half a second here) is up to the scheduler, so that is counted and shown,
 * not asserted.
 */
START_TEST(ready_after_replay)
{
	const char *argv[] = { INDICATORD_BIN, "-c", dm.conf, NULL };
	char *body;
	size_t replaying = 0, answers = 0;
	int port = metrics_port(), status = 0;
	int64_t end;
	bool ready = false;

	mkdir(dm.data_dir, 0700);
	store_unapplied(dm.data_dir, 192000);
	dm.pid = harness_spawn(argv, dm.log);
	end = harness_now_ms() + 120000;
	while (!ready) {
		ck_assert_msg(harness_now_ms() < end, "never ready");
		body = harness_http_get(port, "/readyz", &status);
		if (body == NULL) { /* not listening yet */
			ck_assert_msg(!harness_daemon_log_has(&dm, "fatal"),
			    "the daemon did not start");
			harness_sleep_ms(2);
			continue;
		}
		answers++;
		if (status == 200) {
			ck_assert_str_eq(body, "ready\n");
			ck_assert_msg(harness_daemon_log_has(
					  &dm, "replayed 192000 logged"),
			    "ready before the replay was done");
			ready = true;
		} else {
			ck_assert_int_eq(status, 503);
			ck_assert_msg(
			    strcmp(body, "replaying the log\n") == 0 ||
				strcmp(body, "starting\n") == 0,
			    "%s", body);
			replaying += strcmp(body, "replaying the log\n") == 0;
			free(http_expect(port, "/healthz", 200));
		}
		free(body);
	}
	printf("ready_after_replay: %zu of %zu answers said replaying\n",
	    replaying, answers);
	/* Ready stays ready. */
	free(http_expect(port, "/readyz", 200));
}
END_TEST

/* The agent's page, from its configuration's metrics port. */
static int
agent_start(void)
{
	char conf[700], text[2048], log[700];
	const char *argv[] = { AGENT_BIN, "-c", conf, "run", NULL };
	int port = harness_free_port();
	char *body = NULL;
	int64_t end;
	int status;

	agent_dir = harness_tmpdir();
	snprintf(conf, sizeof(conf), "%s/agent.conf", agent_dir);
	snprintf(log, sizeof(log), "%s/agent.log", agent_dir);
	snprintf(text, sizeof(text),
	    "[agent]\nid = met-agent\ndistrict = 320583\nendpoint = %s\n"
	    "outbox = %s/outbox\ndrop_dir = %s/drop\nheartbeat_ms = 200\n"
	    "ack_timeout_ms = 500\nmetrics = 127.0.0.1:%d\n",
	    dm.ingest, agent_dir, agent_dir, port);
	harness_write_file(conf, text);
	agent_pid = harness_spawn(argv, log);
	end = harness_now_ms() + WAIT_MS;
	for (;;) {
		body = harness_http_get(port, "/readyz", &status);
		if (body != NULL && status == 200)
			break;
		free(body);
		ck_assert_msg(
		    harness_now_ms() < end, "the agent never got ready");
		harness_sleep_ms(20);
	}
	ck_assert_str_eq(body, "ready\n");
	free(body);
	return port;
}

/* Writes text as NAME in the agent's drop directory, by rename. */
static void
agent_drop(const char *name, const char *text)
{
	char tmp[800], path[800];

	snprintf(tmp, sizeof(tmp), "%s/drop/.%s.tmp", agent_dir, name);
	snprintf(path, sizeof(path), "%s/drop/%s", agent_dir, name);
	harness_write_file(tmp, text);
	ck_assert(rename(tmp, path) == 0);
}

START_TEST(agent_page)
{
	char *page;
	int port;

	harness_daemon_init(&dm, NULL);
	harness_daemon_start(&dm);
	port = agent_start();
	page = http_expect(port, "/healthz", 200);
	ck_assert_str_eq(page, "ok\n");
	free(page);
	page = wait_sample(port, "indicator_agent_daemon_reachable", 1);
	ck_assert(sample(page, "indicator_agent_files_taken_total") == 0);
	free(page);

	agent_drop("good.csv", "industry,metric,period,value,unit\n"
			       "photonics,output_value,2024,5,CNY_100M\n"
			       "quantum,output_value,2024,6,CNY_100M\n");
	agent_drop("bad.csv", "industry,metric\nphotonics\n");
	/* Parses, but the daemon refuses a period that has not started. */
	agent_drop("future.csv", "industry,metric,period,value,unit\n"
				 "photonics,output_value,2999,5,CNY_100M\n");
	page = wait_sample(port, "indicator_agent_dead_letters", 1);
	free(page);
	page = wait_sample(port, "indicator_agent_files_taken_total", 1);
	/* good.csv stored whole, in done/; bad.csv refused by the agent,
	 * future.csv by the daemon: both moved to rejected/ (future.csv
	 * from sending/, never done/). */
	ck_assert(sample(page, "indicator_agent_files_rejected_total") == 2);
	ck_assert(sample(page, "indicator_agent_reports_pending") == 0);
	ck_assert(sample(page, "indicator_agent_acks_total{status="
			       "\"accepted\"}") == 1);
	ck_assert(sample(page, "indicator_agent_acks_total{status="
			       "\"rejected\"}") == 1);
	ck_assert(sample(page, "indicator_agent_last_ack_timestamp_seconds") >
		  1700000000);
	ck_assert(sample(page, "indicator_agent_ready") == 1);
	ck_assert_msg(strstr(page, "\nindicator_agent_info{agent_id=\"met-"
				   "agent\",district=\"320583\"} 1\n") != NULL,
	    "%s", page);
	ck_assert_msg(
	    strstr(page, "\nindicator_agent_build_info{version=\"") != NULL,
	    "%s", page);
	promtool_check(page);
	free(page);

	/* The daemon goes away: the heartbeat's answer is overdue. */
	ck_assert_int_eq(WEXITSTATUS(harness_daemon_stop(&dm, SIGTERM)), 0);
	page = wait_sample(port, "indicator_agent_daemon_reachable", 0);
	free(page);
	ck_assert(kill(agent_pid, SIGTERM) == 0);
	ck_assert_int_eq(harness_wait(agent_pid, RUN_TIMEOUT_S), 0);
	agent_pid = 0;
}
END_TEST

static Suite *
metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, daemon_page);
	tcase_add_test(tc, health_and_clash);
	tcase_add_test(tc, ready_after_replay);
	tcase_add_test(tc, agent_page);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(metrics_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
