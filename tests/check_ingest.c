/*
 * The ingest socket of the real daemon, as an agent sees it (PROTOCOL.md):
 * every AgentMessage gets one Ack; reports are validated, stored exactly
 * once and acknowledged per (agent_id, epoch) sequence; what is stored is
 * read back with indicatorctl. Each test runs its own daemon on free ports
 * in a temporary directory.
 */
#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"
#include "indicator.pb-c.h"
#include "xmalloc.h"

#define ACK_TIMEOUT_MS 10000
#define CTL_TIMEOUT_S 20
#define OBS_MAX 16

#define ACCEPTED INDICATOR__ACK_STATUS__ACCEPTED
#define DUPLICATE INDICATOR__ACK_STATUS__DUPLICATE
#define REJECTED INDICATOR__ACK_STATUS__REJECTED
#define RETRY_LATER INDICATOR__ACK_STATUS__RETRY_LATER

/* Periods filled in at run time: the current and the next year in the
 * daemon's time zone. */
#define THIS_YEAR "+0y"
#define NEXT_YEAR "+1y"

struct obs_spec {
	const char *industry;
	const char *metric;
	const char *period;
	double value;
	const char *unit;
	const char *note; /* NULL: none */
};

static const struct obs_spec ov_2024 = { "photonics", "output_value", "2024",
	12.5, "CNY_100M", NULL };
static const struct obs_spec cl_2024 = { "materials", "chain_leaders", "2024",
	3, "count", NULL };

static struct daemon_proc dm;
static void *zctx;
static void *sock;

static const char *
status_name(int status)
{
	static const char *const names[] = { "UNSPECIFIED", "ACCEPTED",
		"DUPLICATE", "REJECTED", "RETRY_LATER" };

	if (status >= 0 && status <= 4)
		return names[status];
	return "?";
}

static void
daemon_up(const char *extra)
{
	harness_daemon_init(&dm, extra);
	harness_daemon_start(&dm);
	zctx = zmq_ctx_new();
	ck_assert_ptr_nonnull(zctx);
	sock = harness_client_new(zctx, dm.ingest);
}

static void
setup(void)
{
	daemon_up(NULL);
}

static void
setup_limits(void)
{
	daemon_up("[limits]\nmax_observations = 5\n");
}

/* Every test also checks that the daemon stops cleanly on SIGTERM, and
 * logs who sent it. */
static void
teardown(void)
{
	char want[64];
	int status;

	zmq_close(sock);
	zmq_ctx_term(zctx);
	status = harness_daemon_stop(&dm, SIGTERM);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "indicatord did not exit 0 on SIGTERM (status %d)", status);
	snprintf(want, sizeof(want), "indicatord: SIGTERM from pid %d (",
	    (int)getpid());
	ck_assert_msg(harness_daemon_log_has(&dm, want), "no '%s' in: %s", want,
	    harness_daemon_log(&dm));
	harness_daemon_cleanup(&dm);
}

/* The year now in Asia/Shanghai (UTC+8, no daylight saving time). */
static int
shanghai_year(void)
{
	time_t t = time(NULL) + 8 * 3600;
	struct tm tm;

	gmtime_r(&t, &tm);
	return tm.tm_year + 1900;
}

static Indicator__Ack *
must_ack(Indicator__Ack *ack, const char *what)
{
	char *log;

	if (ack != NULL)
		return ack;
	log = harness_daemon_log(&dm);
	fprintf(stderr, "check_ingest: no Ack for %s; daemon log:\n%s\n", what,
	    log);
	free(log);
	ck_abort_msg("no Ack (or an undecodable one) for %s", what);
	return NULL;
}

/*
 * Sends a report of n observations from (agent, district, epoch, seq) and
 * returns the daemon's Ack (never NULL).
 */
static Indicator__Ack *
send_report(const char *agent, const char *district, uint64_t epoch,
    uint64_t seq, const struct obs_spec *obs, size_t n)
{
	Indicator__Report r = INDICATOR__REPORT__INIT;
	Indicator__Observation o[OBS_MAX], *op[OBS_MAX];
	char periods[OBS_MAX][16];
	size_t i;

	ck_assert_uint_le(n, OBS_MAX);
	for (i = 0; i < n; i++) {
		indicator__observation__init(&o[i]);
		o[i].industry = (char *)obs[i].industry;
		o[i].metric = (char *)obs[i].metric;
		o[i].period = (char *)obs[i].period;
		if (strcmp(obs[i].period, THIS_YEAR) == 0 ||
		    strcmp(obs[i].period, NEXT_YEAR) == 0) {
			snprintf(periods[i], sizeof(periods[i]), "%d",
			    shanghai_year() + (obs[i].period[1] - '0'));
			o[i].period = periods[i];
		}
		o[i].value = obs[i].value;
		o[i].unit = (char *)obs[i].unit;
		o[i].status = INDICATOR__OBS_STATUS__PROVISIONAL;
		if (obs[i].note != NULL)
			o[i].note = (char *)obs[i].note;
		op[i] = &o[i];
	}
	r.agent_id = (char *)agent;
	r.district = (char *)district;
	r.epoch = epoch;
	r.seq = seq;
	r.sent_at_ms = (int64_t)time(NULL) * 1000;
	r.n_observations = n;
	r.observations = op;
	return must_ack(
	    harness_send_report(sock, &r, ACK_TIMEOUT_MS), "a report");
}

/* The usual sender: agent "t-01" of Kunshan, epoch 7. */
static Indicator__Ack *
send_t01(uint64_t seq, const struct obs_spec *obs, size_t n)
{
	return send_report("t-01", "320583", 7, seq, obs, n);
}

static Indicator__Ack *
send_heartbeat(const char *agent, uint64_t epoch)
{
	Indicator__AgentMessage m = INDICATOR__AGENT_MESSAGE__INIT;
	Indicator__Heartbeat h = INDICATOR__HEARTBEAT__INIT;
	uint8_t buf[256];
	const void *frames[1] = { buf };
	size_t lens[1];

	h.agent_id = (char *)agent;
	h.epoch = epoch;
	h.sent_at_ms = (int64_t)time(NULL) * 1000;
	m.body_case = INDICATOR__AGENT_MESSAGE__BODY_HEARTBEAT;
	m.heartbeat = &h;
	ck_assert_uint_le(
	    indicator__agent_message__get_packed_size(&m), sizeof(buf));
	lens[0] = indicator__agent_message__pack(&m, buf);
	harness_client_send(sock, frames, lens, 1);
	return must_ack(
	    harness_client_ack(sock, ACK_TIMEOUT_MS), "a heartbeat");
}

/* Checks status, seq and expected_seq of an Ack, then frees it. */
static void
expect_ack(Indicator__Ack *a, int status, uint64_t seq, uint64_t expected)
{
	ck_assert_msg((int)a->status == status,
	    "Ack status %s (code \"%s\", message \"%s\"), want %s",
	    status_name((int)a->status), a->code, a->message,
	    status_name(status));
	ck_assert_uint_eq(a->seq, seq);
	ck_assert_uint_eq(a->expected_seq, expected);
	indicator__ack__free_unpacked(a, NULL);
}

static bool
ack_has_error(const Indicator__Ack *a, uint32_t index, const char *code)
{
	size_t i;

	for (i = 0; i < a->n_errors; i++)
		if (a->errors[i]->index == index &&
		    strcmp(a->errors[i]->code, code) == 0)
			return true;
	return false;
}

static bool
ack_has_error_at(const Indicator__Ack *a, uint32_t index)
{
	size_t i;

	for (i = 0; i < a->n_errors; i++)
		if (a->errors[i]->index == index)
			return true;
	return false;
}

/* A one-line description of an Ack's errors, for failure messages. */
static void
ack_errors_str(const Indicator__Ack *a, char *buf, size_t len)
{
	size_t i, used = 0;
	int n;

	buf[0] = '\0';
	for (i = 0; i < a->n_errors && used < len; i++) {
		n = snprintf(buf + used, len - used, "[%u %s] ",
		    a->errors[i]->index, a->errors[i]->code);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/*
 * Runs indicatorctl -d DATA with args (NULL-terminated) and returns its
 * standard output; fails the test unless it exits 0.
 */
static char *
ctl(const char *const args[])
{
	return harness_ctl(dm.data_dir, args, CTL_TIMEOUT_S);
}

static char *
ctl_query(void)
{
	static const char *const args[] = { "query", "--json", NULL };

	return ctl(args);
}

/* The line of the JSON Lines output for a key; caller frees. NULL if
 * absent. */
static char *
find_obs(const char *text, const char *district, const char *industry,
    const char *metric, const char *period)
{
	char *copy = xstrdup(text), *line, *save = NULL, *found = NULL;
	char v[64];

	for (line = strtok_r(copy, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (harness_json_get(line, "district", v, sizeof(v)) &&
		    strcmp(v, district) == 0 &&
		    harness_json_get(line, "industry", v, sizeof(v)) &&
		    strcmp(v, industry) == 0 &&
		    harness_json_get(line, "metric", v, sizeof(v)) &&
		    strcmp(v, metric) == 0 &&
		    harness_json_get(line, "period", v, sizeof(v)) &&
		    strcmp(v, period) == 0) {
			found = xstrdup(line);
			break;
		}
	}
	free(copy);
	return found;
}

/* Asserts the stored value, unit and revision of one key of Kunshan. */
static void
expect_stored(const char *text, const char *industry, const char *metric,
    const char *period, double value, const char *unit, unsigned revision)
{
	char *line = find_obs(text, "320583", industry, metric, period);
	char v[64];

	ck_assert_msg(line != NULL, "%s/%s/%s not in indicatorctl query: %s",
	    industry, metric, period, text);
	ck_assert_msg(
	    harness_json_get(line, "value", v, sizeof(v)), "%s", line);
	ck_assert_msg(fabs(strtod(v, NULL) - value) < 1e-9,
	    "%s/%s/%s: value %s, want %g", industry, metric, period, v, value);
	ck_assert_msg(harness_json_get(line, "unit", v, sizeof(v)), "%s", line);
	ck_assert_str_eq(v, unit);
	ck_assert_msg(
	    harness_json_get(line, "revision", v, sizeof(v)), "%s", line);
	ck_assert_msg(strtoul(v, NULL, 10) == revision,
	    "%s/%s/%s: revision %s, want %u", industry, metric, period, v,
	    revision);
	free(line);
}

static void
expect_nothing_stored(void)
{
	char *out = ctl_query();

	ck_assert_msg(
	    harness_count_lines(out) == 0, "store should be empty: %s", out);
	free(out);
}

/* A valid report is ACCEPTED and both its values can be read back. */
START_TEST(test_valid_report)
{
	const struct obs_spec obs[] = { ov_2024, cl_2024 };
	char *out;

	expect_ack(send_t01(1, obs, 2), ACCEPTED, 1, 2);
	out = ctl_query();
	ck_assert_uint_eq(harness_count_lines(out), 2);
	expect_stored(
	    out, "photonics", "output_value", "2024", 12.5, "CNY_100M", 1);
	expect_stored(out, "materials", "chain_leaders", "2024", 3, "count", 1);
	free(out);
}
END_TEST

/* The same report twice is stored once: the second answer is DUPLICATE. */
START_TEST(test_duplicate)
{
	static const char *const hist[] = { "history", "320583", "photonics",
		"output_value", "2024", "--json", NULL };
	const struct obs_spec obs[] = { ov_2024, cl_2024 };
	char *out;

	expect_ack(send_t01(1, obs, 2), ACCEPTED, 1, 2);
	expect_ack(send_t01(1, obs, 2), DUPLICATE, 1, 2);
	out = ctl(hist);
	ck_assert_msg(harness_count_lines(out) == 1, "history: %s", out);
	free(out);
	out = ctl_query();
	expect_stored(
	    out, "photonics", "output_value", "2024", 12.5, "CNY_100M", 1);
	free(out);
}
END_TEST

/* A later report of the same key replaces the value; history keeps both. */
START_TEST(test_revision)
{
	static const char *const hist[] = { "history", "320583", "photonics",
		"output_value", "2024", "--json", NULL };
	struct obs_spec revised = ov_2024;
	char *out;

	revised.value = 13.25;
	expect_ack(send_t01(1, &ov_2024, 1), ACCEPTED, 1, 2);
	expect_ack(send_t01(2, &revised, 1), ACCEPTED, 2, 3);
	out = ctl_query();
	expect_stored(
	    out, "photonics", "output_value", "2024", 13.25, "CNY_100M", 2);
	free(out);
	out = ctl(hist);
	ck_assert_msg(harness_count_lines(out) == 2, "history: %s", out);
	free(out);
}
END_TEST

/* A gap in seq is refused with RETRY_LATER and the seq that is expected. */
START_TEST(test_out_of_order)
{
	const struct obs_spec later = { "photonics", "output_value", "2023", 9,
		"CNY_100M", NULL };
	char *out, *line;

	expect_ack(send_t01(1, &ov_2024, 1), ACCEPTED, 1, 2);
	expect_ack(send_t01(3, &later, 1), RETRY_LATER, 3, 2);
	out = ctl_query();
	line = find_obs(out, "320583", "photonics", "output_value", "2023");
	ck_assert_msg(line == NULL, "seq 3 was stored: %s", line);
	ck_assert_uint_eq(harness_count_lines(out), 1);
	free(out);
	expect_ack(send_t01(2, &cl_2024, 1), ACCEPTED, 2, 3);
	expect_ack(send_t01(3, &later, 1), ACCEPTED, 3, 4);
}
END_TEST

/*
 * One bad observation rejects the whole report; the rejection is kept, so a
 * resend gets the same answer, and it consumed the seq.
 */
START_TEST(test_reject_whole_report)
{
	const struct obs_spec obs[] = { ov_2024,
		{ "nanotech", "output_value", "2024", 1, "CNY_100M", NULL },
		cl_2024 };
	Indicator__Ack *a, *b;
	char errs[256];
	size_t i;

	a = send_t01(1, obs, 3);
	ack_errors_str(a, errs, sizeof(errs));
	ck_assert_msg(
	    a->status == REJECTED, "status %s", status_name((int)a->status));
	ck_assert_uint_eq(a->seq, 1);
	ck_assert_uint_eq(a->expected_seq, 2);
	ck_assert_msg(
	    ack_has_error(a, 1, "unknown_industry"), "errors: %s", errs);
	ck_assert_msg(!ack_has_error_at(a, 0) && !ack_has_error_at(a, 2),
	    "good observations listed as bad: %s", errs);
	expect_nothing_stored();

	b = send_t01(1, obs, 3);
	ck_assert_msg(b->status == REJECTED, "resend: status %s",
	    status_name((int)b->status));
	ck_assert_uint_eq(b->seq, 1);
	ck_assert_str_eq(b->code, a->code);
	ck_assert_uint_eq(b->n_errors, a->n_errors);
	for (i = 0; i < a->n_errors; i++) {
		ck_assert_uint_eq(b->errors[i]->index, a->errors[i]->index);
		ck_assert_str_eq(b->errors[i]->code, a->errors[i]->code);
	}
	indicator__ack__free_unpacked(a, NULL);
	indicator__ack__free_unpacked(b, NULL);
	expect_nothing_stored();

	expect_ack(send_t01(2, obs, 1), ACCEPTED, 2, 3);
}
END_TEST

/* Observations that break one rule each. Index 0 of every report is the
 * good cl_2024; the bad one follows (twice for duplicate_key). */
static const struct bad_case {
	const char *name;
	struct obs_spec obs;
	bool twice;
	const char *code;
} bad_cases[] = {
	{ "unknown industry",
	    { "nanotech", "output_value", "2024", 1, "CNY_100M", NULL }, false,
	    "unknown_industry" },
	{ "unknown metric",
	    { "photonics", "patents", "2024", 1, "count", NULL }, false,
	    "unknown_metric" },
	{ "month 13",
	    { "photonics", "output_value", "2025-13", 1, "CNY_100M", NULL },
	    false, "bad_period" },
	{ "quarter 5",
	    { "photonics", "output_value", "2025-Q5", 1, "CNY_100M", NULL },
	    false, "bad_period" },
	{ "two-digit year",
	    { "photonics", "output_value", "25", 1, "CNY_100M", NULL }, false,
	    "bad_period" },
	{ "one-digit month",
	    { "photonics", "output_value", "2025-1", 1, "CNY_100M", NULL },
	    false, "bad_period" },
	{ "next year",
	    { "photonics", "output_value", NEXT_YEAR, 1, "CNY_100M", NULL },
	    false, "future_period" },
	{ "before first year",
	    { "photonics", "output_value", "2014", 1, "CNY_100M", NULL }, false,
	    "too_early" },
	{ "NaN", { "photonics", "output_value", "2024", NAN, "CNY_100M", NULL },
	    false, "not_finite" },
	{ "infinity",
	    { "photonics", "output_value", "2024", INFINITY, "CNY_100M", NULL },
	    false, "not_finite" },
	{ "negative",
	    { "photonics", "output_value", "2024", -1, "CNY_100M", NULL },
	    false, "negative" },
	{ "fractional count",
	    { "photonics", "chain_leaders", "2024", 2.5, "count", NULL }, false,
	    "not_integer" },
	{ "money unit for a count",
	    { "photonics", "chain_leaders", "2024", 2, "CNY_100M", NULL },
	    false, "unknown_unit" },
	{ "USD", { "photonics", "output_value", "2024", 1, "USD", NULL }, false,
	    "unknown_unit" },
	{ "above the city's output",
	    { "photonics", "output_value", "2024", 50000, "CNY_100M", NULL },
	    false, "implausible" },
	{ "implausible after conversion",
	    { "photonics", "output_value", "2024", 5e8, "CNY_10K", NULL },
	    false, "implausible" },
	{ "same key twice",
	    { "photonics", "output_value", "2024", 1, "CNY_100M", NULL }, true,
	    "duplicate_key" },
	{ "note not UTF-8",
	    { "photonics", "output_value", "2024", 1, "CNY_100M", "\xff\xfe" },
	    false, "bad_string" },
	{ "note of 257 bytes",
	    { "photonics", "output_value", "2024", 1, "CNY_100M",
		"0123456789abcdef0123456789abcdef0123456789abcdef"
		"0123456789abcdef0123456789abcdef0123456789abcdef"
		"0123456789abcdef0123456789abcdef0123456789abcdef"
		"0123456789abcdef0123456789abcdef0123456789abcdef"
		"0123456789abcdef0123456789abcdef0123456789abcdef"
		"0123456789abcdef0" },
	    false, "bad_string" },
};

#define NBAD (sizeof(bad_cases) / sizeof(bad_cases[0]))

START_TEST(test_bad_observation)
{
	const struct bad_case *c = &bad_cases[_i];
	struct obs_spec obs[3];
	uint32_t bad = c->twice ? 2 : 1;
	Indicator__Ack *a;
	char errs[256];

	obs[0] = cl_2024;
	obs[1] = c->obs;
	obs[2] = c->obs;
	a = send_t01(1, obs, bad + 1);
	ack_errors_str(a, errs, sizeof(errs));
	ck_assert_msg(a->status == REJECTED, "%s: status %s", c->name,
	    status_name((int)a->status));
	ck_assert_uint_eq(a->seq, 1);
	ck_assert_uint_eq(a->expected_seq, 2);
	ck_assert_msg(ack_has_error(a, bad, c->code),
	    "%s: want [%u %s], got %s (code \"%s\")", c->name, bad, c->code,
	    errs, a->code);
	ck_assert_msg(!ack_has_error_at(a, 0),
	    "%s: the good observation is listed: %s", c->name, errs);
	indicator__ack__free_unpacked(a, NULL);
	expect_nothing_stored();
}
END_TEST

/* Observations at the edges of the rules, all accepted. */
static const struct good_case {
	const char *name;
	struct obs_spec obs;
} good_cases[] = {
	{ "first year",
	    { "photonics", "output_value", "2015", 1, "CNY_100M", NULL } },
	{ "current year",
	    { "photonics", "output_value", THIS_YEAR, 1, "CNY_100M", NULL } },
	{ "quarter",
	    { "photonics", "output_value", "2024-Q4", 1, "CNY_100M", NULL } },
	{ "month",
	    { "photonics", "output_value", "2024-12", 1, "CNY_100M", NULL } },
	{ "zero",
	    { "photonics", "output_value", "2024", 0, "CNY_100M", NULL } },
	{ "at the maximum",
	    { "photonics", "output_value", "2024", 40000, "CNY_100M", NULL } },
	{ "yuan", { "photonics", "output_value", "2024", 1e12, "CNY", NULL } },
	{ "UTF-8 note", { "photonics", "output_value", "2024", 1, "CNY_100M",
			    "昆山市 初步数据" } },
	{ "note of 256 bytes",
	    { "photonics", "output_value", "2024", 1, "CNY_100M",
		"0123456789abcdef0123456789abcdef0123456789abcdef"
		"0123456789abcdef0123456789abcdef0123456789abcdef"
		"0123456789abcdef0123456789abcdef0123456789abcdef"
		"0123456789abcdef0123456789abcdef0123456789abcdef"
		"0123456789abcdef0123456789abcdef0123456789abcdef"
		"0123456789abcdef" } },
};

#define NGOOD (sizeof(good_cases) / sizeof(good_cases[0]))

START_TEST(test_good_observation)
{
	const struct good_case *c = &good_cases[_i];
	Indicator__Ack *a;
	char errs[256];

	a = send_t01(1, &c->obs, 1);
	ack_errors_str(a, errs, sizeof(errs));
	ck_assert_msg(a->status == ACCEPTED, "%s: status %s, code \"%s\" %s",
	    c->name, status_name((int)a->status), a->code, errs);
	indicator__ack__free_unpacked(a, NULL);
}
END_TEST

/* Reports refused as a whole. The sender's problems consume no seq; the
 * content's do. */
static const struct report_case {
	const char *name;
	const char *agent;
	const char *district;
	uint64_t epoch;
	uint64_t seq;
	size_t nobs;
	const char *code;
	bool consumes;
} report_cases[] = {
	{ "unknown district", "t-01", "999999", 7, 1, 1, "unknown_district",
	    true },
	{ "city code as district", "t-01", "320500", 7, 1, 1,
	    "unknown_district", true },
	{ "no observations", "t-01", "320583", 7, 1, 0, "empty_report", true },
	{ "empty agent_id", "", "320583", 7, 1, 1, "bad_agent_id", false },
	{ "agent_id of 65 bytes",
	    "t-01"
	    "0123456789012345678901234567890123456789"
	    "012345678901234567890",
	    "320583", 7, 1, 1, "bad_agent_id", false },
	{ "agent_id not UTF-8", "t-\xff", "320583", 7, 1, 1, "bad_agent_id",
	    false },
	{ "epoch 0", "t-01", "320583", 0, 1, 1, "bad_epoch", false },
	{ "seq 0", "t-01", "320583", 7, 0, 1, "bad_seq", false },
};

#define NREPORT (sizeof(report_cases) / sizeof(report_cases[0]))

START_TEST(test_bad_report)
{
	const struct report_case *c = &report_cases[_i];
	Indicator__Ack *a;

	ck_assert_uint_eq(strlen(report_cases[4].agent), 65);
	a = send_report(
	    c->agent, c->district, c->epoch, c->seq, &ov_2024, c->nobs);
	ck_assert_msg(a->status == REJECTED, "%s: status %s", c->name,
	    status_name((int)a->status));
	ck_assert_msg(strcmp(a->code, c->code) == 0, "%s: code \"%s\", want %s",
	    c->name, a->code, c->code);
	ck_assert_uint_eq(a->seq, c->seq);
	if (c->consumes)
		ck_assert_uint_eq(a->expected_seq, 2);
	indicator__ack__free_unpacked(a, NULL);
	expect_nothing_stored();

	if (c->consumes)
		expect_ack(send_t01(2, &ov_2024, 1), ACCEPTED, 2, 3);
	else
		expect_ack(send_t01(1, &ov_2024, 1), ACCEPTED, 1, 2);
}
END_TEST

/* After an accepted report, a sender error still consumes nothing. */
START_TEST(test_seq0_after_accepted)
{
	Indicator__Ack *a;

	expect_ack(send_t01(1, &ov_2024, 1), ACCEPTED, 1, 2);
	a = send_t01(0, &cl_2024, 1);
	ck_assert_int_eq(a->status, REJECTED);
	ck_assert_str_eq(a->code, "bad_seq");
	indicator__ack__free_unpacked(a, NULL);
	expect_ack(send_t01(2, &cl_2024, 1), ACCEPTED, 2, 3);
}
END_TEST

/* [limits] max_observations = 5: five pass, six are refused. */
START_TEST(test_too_many_observations)
{
	struct obs_spec obs[6];
	static const char *const years[] = { "2019", "2020", "2021", "2022",
		"2023", "2024" };
	Indicator__Ack *a;
	size_t i;

	for (i = 0; i < 6; i++) {
		obs[i] = ov_2024;
		obs[i].period = years[i];
	}
	a = send_t01(1, obs, 6);
	ck_assert_msg(
	    a->status == REJECTED, "status %s", status_name((int)a->status));
	ck_assert_str_eq(a->code, "too_many_observations");
	ck_assert_uint_eq(a->expected_seq, 2);
	indicator__ack__free_unpacked(a, NULL);
	expect_nothing_stored();
	expect_ack(send_t01(2, obs, 5), ACCEPTED, 2, 3);
}
END_TEST

/* Accepted units convert to the canonical one: 120000 万元 = 12 亿元. */
START_TEST(test_unit_conversion)
{
	const struct obs_spec obs = { "photonics", "output_value", "2024",
		120000, "CNY_10K", NULL };
	char *out;

	expect_ack(send_t01(1, &obs, 1), ACCEPTED, 1, 2);
	out = ctl_query();
	expect_stored(
	    out, "photonics", "output_value", "2024", 12, "CNY_100M", 1);
	free(out);
}
END_TEST

/* Frames that are not one AgentMessage with a body. */
static const struct malformed_case {
	const char *name;
	const char *bytes; /* NULL: two frames, each a valid report */
	size_t len;
} malformed_cases[] = {
	{ "garbage", "\xff\xff\xff\x01garbage", 11 },
	{ "empty frame", "", 0 },
	{ "truncated", "\x0a\x20\x0a\x04t-01", 8 },
	{ "no body (only an unknown field)", "\x78\x01", 2 },
	{ "two frames", NULL, 0 },
};

#define NMALFORMED (sizeof(malformed_cases) / sizeof(malformed_cases[0]))

START_TEST(test_malformed)
{
	const struct malformed_case *c = &malformed_cases[_i];
	Indicator__AgentMessage m = INDICATOR__AGENT_MESSAGE__INIT;
	Indicator__Report r = INDICATOR__REPORT__INIT;
	Indicator__Observation o = INDICATOR__OBSERVATION__INIT, *op = &o;
	uint8_t buf[512];
	const void *frames[2];
	size_t lens[2];
	Indicator__Ack *a;

	if (c->bytes != NULL) {
		frames[0] = c->bytes;
		lens[0] = c->len;
		harness_client_send(sock, frames, lens, 1);
	} else {
		o.industry = (char *)ov_2024.industry;
		o.metric = (char *)ov_2024.metric;
		o.period = (char *)ov_2024.period;
		o.value = ov_2024.value;
		o.unit = (char *)ov_2024.unit;
		r.agent_id = "t-01";
		r.district = "320583";
		r.epoch = 7;
		r.seq = 1;
		r.n_observations = 1;
		r.observations = &op;
		m.body_case = INDICATOR__AGENT_MESSAGE__BODY_REPORT;
		m.report = &r;
		ck_assert_uint_le(
		    indicator__agent_message__get_packed_size(&m), sizeof(buf));
		frames[0] = frames[1] = buf;
		lens[0] = lens[1] = indicator__agent_message__pack(&m, buf);
		harness_client_send(sock, frames, lens, 2);
	}
	a = must_ack(harness_client_ack(sock, ACK_TIMEOUT_MS), c->name);
	ck_assert_msg(a->status == REJECTED, "%s: status %s", c->name,
	    status_name((int)a->status));
	ck_assert_str_eq(a->code, "malformed");
	ck_assert_uint_eq(a->seq, 0);
	ck_assert_msg(
	    a->message[0] != '\0', "%s: no message saying why", c->name);
	indicator__ack__free_unpacked(a, NULL);

	/* It changed nothing, and the daemon goes on serving: the next answer
	 * is for the next message (one Ack per message, not two). */
	expect_nothing_stored();
	expect_ack(send_t01(1, &ov_2024, 1), ACCEPTED, 1, 2);
}
END_TEST

/* A heartbeat tells the agent where the daemon stands. */
START_TEST(test_heartbeat)
{
	const struct obs_spec obs[] = { ov_2024 };

	expect_ack(send_heartbeat("t-01", 7), ACCEPTED, 0, 1);
	expect_ack(send_t01(1, obs, 1), ACCEPTED, 1, 2);
	expect_ack(send_t01(2, &cl_2024, 1), ACCEPTED, 2, 3);
	expect_ack(send_heartbeat("t-01", 7), ACCEPTED, 0, 3);
	expect_ack(send_heartbeat("t-01", 8), ACCEPTED, 0, 1);
	expect_ack(send_heartbeat("t-02", 7), ACCEPTED, 0, 1);
}
END_TEST

/* What was acknowledged survives a restart, and so do the sequences and
 * the rejections. */
START_TEST(test_restart)
{
	const struct obs_spec bad = { "nanotech", "output_value", "2024", 1,
		"CNY_100M", NULL };
	Indicator__Ack *a;
	int status;
	char *out;

	expect_ack(send_t01(1, &ov_2024, 1), ACCEPTED, 1, 2);
	expect_ack(send_t01(2, &cl_2024, 1), ACCEPTED, 2, 3);
	a = send_t01(3, &bad, 1);
	ck_assert_int_eq(a->status, REJECTED);
	indicator__ack__free_unpacked(a, NULL);

	zmq_close(sock);
	status = harness_daemon_stop(&dm, SIGTERM);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "indicatord did not exit 0 on SIGTERM (status %d)", status);
	harness_daemon_start(&dm);
	sock = harness_client_new(zctx, dm.ingest);

	out = ctl_query();
	ck_assert_uint_eq(harness_count_lines(out), 2);
	expect_stored(
	    out, "photonics", "output_value", "2024", 12.5, "CNY_100M", 1);
	expect_stored(out, "materials", "chain_leaders", "2024", 3, "count", 1);
	free(out);
	expect_ack(send_heartbeat("t-01", 7), ACCEPTED, 0, 4);
	expect_ack(send_t01(1, &ov_2024, 1), DUPLICATE, 1, 4);
	expect_ack(send_t01(2, &cl_2024, 1), DUPLICATE, 2, 4);
	a = send_t01(3, &bad, 1);
	ck_assert_msg(a->status == REJECTED, "rejected seq 3 after restart: %s",
	    status_name((int)a->status));
	ck_assert_msg(ack_has_error(a, 0, "unknown_industry"),
	    "the rejection's errors were not kept");
	indicator__ack__free_unpacked(a, NULL);
	expect_ack(send_t01(4, &ov_2024, 1), ACCEPTED, 4, 5);
}
END_TEST

/* A new epoch of the same agent is a new sequence from 1. */
START_TEST(test_new_epoch)
{
	struct obs_spec revised = ov_2024;
	char *out;

	revised.value = 20;
	expect_ack(send_t01(1, &ov_2024, 1), ACCEPTED, 1, 2);
	expect_ack(send_t01(2, &cl_2024, 1), ACCEPTED, 2, 3);
	expect_ack(send_report("t-01", "320583", 8, 3, &revised, 1),
	    RETRY_LATER, 3, 1);
	expect_ack(
	    send_report("t-01", "320583", 8, 1, &revised, 1), ACCEPTED, 1, 2);
	out = ctl_query();
	expect_stored(
	    out, "photonics", "output_value", "2024", 20, "CNY_100M", 2);
	free(out);
}
END_TEST

static Suite *
ingest_suite(void)
{
	Suite *s = suite_create("ingest");
	TCase *tc;

	tc = tcase_create("sequence");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_valid_report);
	tcase_add_test(tc, test_duplicate);
	tcase_add_test(tc, test_revision);
	tcase_add_test(tc, test_out_of_order);
	tcase_add_test(tc, test_heartbeat);
	tcase_add_test(tc, test_new_epoch);
	tcase_add_test(tc, test_restart);
	suite_add_tcase(s, tc);

	tc = tcase_create("validation");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_reject_whole_report);
	tcase_add_loop_test(tc, test_bad_observation, 0, NBAD);
	tcase_add_loop_test(tc, test_good_observation, 0, NGOOD);
	tcase_add_loop_test(tc, test_bad_report, 0, NREPORT);
	tcase_add_test(tc, test_seq0_after_accepted);
	tcase_add_test(tc, test_unit_conversion);
	tcase_add_loop_test(tc, test_malformed, 0, NMALFORMED);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, setup_limits, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_too_many_observations);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(ingest_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
