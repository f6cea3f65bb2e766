/*
 * indicator-web against a real daemon, as a browser and a spreadsheet see
 * it: the JSON of every page equals the daemon's snapshot (and, for the
 * history and the reporting page, what was sent); a district's hostile
 * note comes back as the same text, with no markup character left in the
 * bytes; the CSV has its BOM and quotes and defuses formulas; a report
 * sent reaches an open live stream; the daemon's queries refuse what they
 * should; the security headers are on every answer; the dashboard takes a
 * new snapshot when the daemon comes back after a restart; it refuses to
 * serve off loopback. Each test runs its own daemon and dashboard on free
 * ports in a temporary directory.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"
#include "indicator.pb-c.h"
#include "xmalloc.h"

#define ACK_TIMEOUT_MS 10000
#define WAIT_MS 15000
#define HTTP_TIMEOUT_MS 10000
#define RUN_TIMEOUT_S 30

/* A note no page may ever take for markup. */
#define HOSTILE                                                      \
	"<script>alert(\"x\")</script><img src=x onerror=alert(1)> " \
	"& \\ 'q' , =1+1"

static struct daemon_proc dm;
static void *zctx;
static void *sock;
static pid_t web_pid;
static int web_port;
static char web_log[700];
static unsigned web_starts;
static char *keydir; /* the CURVE test's keys */

struct obs {
	const char *industry;
	const char *metric;
	const char *period;
	double value;
	const char *unit;
	const char *note;
};

/* Sends one report of n observations; fails unless ACCEPTED. */
static void
send_obs(const char *agent, const char *district, uint64_t seq,
    const struct obs *o, size_t n)
{
	Indicator__Report r = INDICATOR__REPORT__INIT;
	Indicator__Observation ob[8], *obp[8];

	ck_assert(n <= 8);
	for (size_t i = 0; i < n; i++) {
		indicator__observation__init(&ob[i]);
		ob[i].industry = (char *)o[i].industry;
		ob[i].metric = (char *)o[i].metric;
		ob[i].period = (char *)o[i].period;
		ob[i].value = o[i].value;
		ob[i].unit = (char *)o[i].unit;
		ob[i].status = INDICATOR__OBS_STATUS__PROVISIONAL;
		ob[i].note = (char *)(o[i].note ? o[i].note : "");
		obp[i] = &ob[i];
	}
	r.agent_id = (char *)agent;
	r.district = (char *)district;
	r.epoch = 77;
	r.seq = seq;
	r.sent_at_ms = 1700000000000;
	r.n_observations = n;
	r.observations = obp;
	harness_expect_ack(harness_send_report(sock, &r, ACK_TIMEOUT_MS),
	    INDICATOR__ACK_STATUS__ACCEPTED, NULL);
}

/* The data every test starts from: Kunshan and the Industrial Park,
 * 2023 and 2024, one hostile note. */
static void
send_base(void)
{
	const struct obs ks1[] = {
		{ "photonics", "output_value", "2023", 100, "CNY_100M", NULL },
		{ "photonics", "output_value", "2024", 120.5, "CNY_100M",
		    HOSTILE },
		{ "materials", "output_value", "2024", 802500, "CNY_10K",
		    NULL },
		{ "photonics", "innovation_platforms", "2024", 3, "count",
		    NULL },
	};
	const struct obs sip1[] = {
		{ "photonics", "output_value", "2023", 150, "CNY_100M", NULL },
		{ "photonics", "output_value", "2024", 200, "CNY_100M", NULL },
	};
	const struct obs ks2[] = {
		/* A revision, by the same agent. */
		{ "photonics", "output_value", "2024", 121.25, "CNY_100M",
		    "=SUM(A1) revised" },
	};

	send_obs("ks-01", "320583", 1, ks1, 4);
	send_obs("sip-01", "320576", 1, sip1, 2);
	send_obs("ks-01", "320583", 2, ks2, 1);
}

static void
web_start(const char *const extra[])
{
	const char *argv[16];
	size_t n = 0;
	char listen[64];

	web_port = harness_free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", web_port);
	/* A log per start: the wait below must see this one's line. */
	snprintf(
	    web_log, sizeof(web_log), "%s/web-%u.log", dm.dir, ++web_starts);
	argv[n++] = WEB_BIN;
	argv[n++] = "-c";
	argv[n++] = dm.conf;
	argv[n++] = "--listen";
	argv[n++] = listen;
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	web_pid = harness_spawn(argv, web_log);
	harness_wait_log(web_log, "feed: snapshot of ", WAIT_MS);
}

static void
web_stop(void)
{
	if (web_pid > 0) {
		kill(web_pid, SIGTERM);
		ck_assert_int_eq(harness_wait(web_pid, RUN_TIMEOUT_S), 0);
		web_pid = 0;
	}
}

static void
setup(void)
{
	harness_daemon_init(&dm, NULL);
	harness_daemon_start(&dm);
	zctx = zmq_ctx_new();
	sock = harness_client_new(zctx, dm.ingest);
	send_base();
	web_start(NULL);
}

static void
teardown(void)
{
	/* A clean stop, exit 0: under ASan a leak would make it 23. */
	web_stop();
	zmq_close(sock);
	zmq_ctx_term(zctx);
	harness_daemon_cleanup(&dm);
	if (keydir != NULL) {
		harness_rmtree(keydir);
		free(keydir);
		keydir = NULL;
	}
}

/* An HTTP answer: status, the headers as sent, the body. */
struct http {
	int status;
	char *head;
	char *body;
	size_t len;
};

static void
http_free(struct http *h)
{
	free(h->head);
	free(h->body);
	memset(h, 0, sizeof(*h));
}

/* The value of a header (case-insensitive name), or NULL; caller frees. */
static char *
http_header(const struct http *h, const char *name)
{
	size_t len = strlen(name);

	for (const char *p = h->head; p != NULL && *p != '\0';) {
		const char *eol = strstr(p, "\r\n");

		if (eol == NULL)
			break;
		if (strncasecmp(p, name, len) == 0 && p[len] == ':') {
			const char *v = p + len + 1;

			while (*v == ' ')
				v++;
			return strndup(v, (size_t)(eol - v));
		}
		p = eol + 2;
	}
	return NULL;
}

/* One request on a new connection, read to its close. */
static struct http
http_do(const char *method, const char *path, const char *host)
{
	struct sockaddr_in sa = { 0 };
	struct http h = { 0 };
	char req[1024], buf[65536], *all = NULL, *sep;
	size_t n = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int64_t deadline = harness_now_ms() + HTTP_TIMEOUT_MS;

	ck_assert(fd != -1);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)web_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
	    "connect to indicator-web: %s", strerror(errno));
	snprintf(req, sizeof(req),
	    "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", method,
	    path, host);
	ck_assert(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		int64_t left = deadline - harness_now_ms();
		ssize_t r;

		ck_assert_msg(left > 0, "no complete answer to %s in %d ms",
		    path, HTTP_TIMEOUT_MS);
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		if ((r = read(fd, buf, sizeof(buf))) <= 0)
			break;
		all = xrealloc(all, n + (size_t)r + 1);
		memcpy(all + n, buf, (size_t)r);
		n += (size_t)r;
		all[n] = '\0';
	}
	close(fd);
	ck_assert_msg(all != NULL, "empty answer to %s", path);
	ck_assert(sscanf(all, "HTTP/1.1 %d", &h.status) == 1);
	sep = strstr(all, "\r\n\r\n");
	ck_assert(sep != NULL);
	h.head = strndup(all, (size_t)(sep - all) + 2);
	h.len = n - (size_t)(sep + 4 - all);
	h.body = xmalloc(h.len + 1);
	memcpy(h.body, sep + 4, h.len);
	h.body[h.len] = '\0';
	free(all);
	return h;
}

static struct http
http_get(const char *path)
{
	char host[64];

	snprintf(host, sizeof(host), "127.0.0.1:%d", web_port);
	return http_do("GET", path, host);
}

/* GET path: 200 and its JSON (caller json_decref()s). */
static json_t *
get_json(const char *path)
{
	struct http h = http_get(path);
	json_error_t err;
	json_t *j;

	ck_assert_msg(h.status == 200, "GET %s: %d %s", path, h.status, h.body);
	j = json_loads(h.body, 0, &err);
	ck_assert_msg(
	    j != NULL, "GET %s: not JSON (%s): %s", path, err.text, h.body);
	http_free(&h);
	return j;
}

/* The daemon's snapshot of everything (caller frees). */
static Indicator__Snapshot *
snapshot_get(void)
{
	Indicator__SnapshotRequest req = INDICATOR__SNAPSHOT_REQUEST__INIT;
	Indicator__Snapshot *s;
	uint8_t buf[16];
	size_t len;
	void *d = harness_client_new(zctx, dm.snapshot);
	zmq_msg_t msg;
	zmq_pollitem_t item = { d, 0, ZMQ_POLLIN, 0 };

	req.prefix = (char *)"";
	len = indicator__snapshot_request__pack(&req, buf);
	ck_assert(zmq_send(d, buf, len, 0) == (int)len);
	ck_assert_msg(zmq_poll(&item, 1, WAIT_MS) == 1, "no snapshot");
	zmq_msg_init(&msg);
	ck_assert(zmq_msg_recv(&msg, d, 0) != -1);
	s = indicator__snapshot__unpack(
	    NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
	zmq_msg_close(&msg);
	zmq_close(d);
	ck_assert(s != NULL);
	return s;
}

static const Indicator__Aggregate *
snap_find(const Indicator__Snapshot *s, const char *metric,
    const char *industry, const char *scope, const char *period)
{
	for (size_t i = 0; i < s->n_aggregates; i++) {
		const Indicator__Aggregate *a = s->aggregates[i];

		if (strcmp(a->metric, metric) == 0 &&
		    strcmp(a->industry, industry) == 0 &&
		    strcmp(a->scope, scope) == 0 &&
		    strcmp(a->period, period) == 0)
			return a;
	}
	return NULL;
}

/* A JSON number (or null) equal to the aggregate's value (or absent). */
static void
expect_value(const json_t *v, const Indicator__Aggregate *a, const char *what)
{
	if (a == NULL) {
		ck_assert_msg(json_is_null(v), "%s: want null", what);
		return;
	}
	ck_assert_msg(json_is_number(v), "%s: not a number", what);
	ck_assert_msg(json_number_value(v) == a->value,
	    "%s: page has %.17g, snapshot %.17g", what, json_number_value(v),
	    a->value);
}

/*
 * A 64-bit integer as the dashboard writes it, as indicatorctl does
 * (protobuf's canonical JSON): a string of decimal digits, never a
 * number.
 */
static uint64_t
json_u64(const json_t *v, const char *what)
{
	const char *s = json_string_value(v);
	unsigned long long n;
	char *end;

	ck_assert_msg(s != NULL, "%s: not a string of digits", what);
	ck_assert_msg(s[0] >= '0' && s[0] <= '9', "%s: '%s'", what, s);
	errno = 0;
	n = strtoull(s, &end, 10);
	ck_assert_msg(errno == 0 && *end == '\0', "%s: '%s'", what, s);
	return n;
}

/* Waits until GET path's JSON holds want at the member path (a.b),
 * polling: the dashboard follows the feed, a moment behind the ack. */
static json_t *
wait_json(const char *path, bool (*ok)(const json_t *, void *), void *arg)
{
	int64_t deadline = harness_now_ms() + WAIT_MS;

	for (;;) {
		json_t *j = get_json(path);

		if (ok(j, arg))
			return j;
		json_decref(j);
		ck_assert_msg(harness_now_ms() < deadline,
		    "GET %s: not as expected within %d ms", path, WAIT_MS);
		harness_sleep_ms(50);
	}
}

static bool
seq_at_least(const json_t *j, void *arg)
{
	return json_u64(json_object_get(j, "seq"), "status seq") >=
	       *(uint64_t *)arg;
}

/* Waits until the dashboard has applied everything the daemon
 * published. */
static void
web_catch_up(void)
{
	Indicator__Snapshot *s;
	uint64_t seq;

	harness_checkpoint(&dm);
	s = snapshot_get();
	seq = s->seq;
	indicator__snapshot__free_unpacked(s, NULL);
	json_decref(wait_json("/api/status", seq_at_least, &seq));
}

START_TEST(test_plan_equals_snapshot)
{
	Indicator__Snapshot *s;
	json_t *j, *row;
	size_t i;
	bool seen_output = false, seen_clusters = false;

	web_catch_up();
	s = snapshot_get();
	j = get_json("/api/plan");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "year")), 2024);
	json_array_foreach(json_object_get(j, "rows"), i, row)
	{
		const char *m =
		    json_string_value(json_object_get(row, "metric"));
		const Indicator__Aggregate *a =
		    snap_find(s, m, "*", "city", "2024");

		expect_value(json_object_get(row, "value"), a, m);
		if (a == NULL)
			continue;
		ck_assert_double_eq(
		    json_number_value(json_object_get(row, "target")),
		    a->target);
		ck_assert_double_eq(
		    json_number_value(json_object_get(row, "progress")),
		    a->progress);
		ck_assert_int_eq(json_integer_value(json_object_get(
				     row, "districts_reporting")),
		    a->districts_reporting);
		ck_assert_int_eq(json_integer_value(json_object_get(
				     row, "districts_expected")),
		    a->districts_expected);
		ck_assert_int_eq(
		    json_integer_value(json_object_get(row, "target_year")),
		    a->target_year);
		/* 64-bit integers are strings, as in indicatorctl's JSON. */
		ck_assert_uint_eq(
		    json_u64(json_object_get(row, "revision"), "revision"),
		    a->revision);
		ck_assert_uint_eq(
		    json_u64(
			json_object_get(row, "updated_at_ms"), "updated_at_ms"),
		    (uint64_t)a->updated_at_ms);
		/* Two of ten districts: incomplete, and marked so. */
		ck_assert(json_is_false(json_object_get(row, "complete")));
		seen_output = seen_output || strcmp(m, "output_value") == 0;
		seen_clusters =
		    seen_clusters || strcmp(m, "clusters_100bn") == 0;
	}
	ck_assert(seen_output && seen_clusters);
	/* 120.5 revised to 121.25, 80.25 from 802500 万元, and 200. */
	row = json_array_get(json_object_get(j, "rows"), 0);
	ck_assert_double_eq(
	    json_number_value(json_object_get(row, "value")), 401.5);
	json_decref(j);
	indicator__snapshot__free_unpacked(s, NULL);
}
END_TEST

START_TEST(test_matrix_equals_snapshot)
{
	static const char *const districts[] = { "320505", "320506", "320507",
		"320508", "320509", "320576", "320581", "320582", "320583",
		"320585" };
	Indicator__Snapshot *s;
	json_t *j, *row, *totals;
	size_t i;

	web_catch_up();
	s = snapshot_get();
	j = get_json("/api/matrix?metric=output_value&period=2024");
	ck_assert_str_eq(
	    json_string_value(json_object_get(j, "period")), "2024");
	json_array_foreach(json_object_get(j, "rows"), i, row)
	{
		const char *ind =
		    json_string_value(json_object_get(row, "industry"));
		json_t *vals = json_object_get(row, "values");

		ck_assert_int_eq(json_array_size(vals), 10);
		for (size_t d = 0; d < 10; d++)
			expect_value(json_array_get(vals, d),
			    snap_find(
				s, "output_value", ind, districts[d], "2024"),
			    ind);
		expect_value(json_object_get(row, "total"),
		    snap_find(s, "output_value", ind, "city", "2024"), ind);
	}
	totals = json_object_get(j, "totals");
	for (size_t d = 0; d < 10; d++)
		expect_value(
		    json_array_get(json_object_get(totals, "values"), d),
		    snap_find(s, "output_value", "*", districts[d], "2024"),
		    districts[d]);
	expect_value(json_object_get(totals, "total"),
	    snap_find(s, "output_value", "*", "city", "2024"), "city");
	ck_assert_int_eq(
	    json_integer_value(json_object_get(totals, "districts_reporting")),
	    2);
	json_decref(j);
	/* An unknown metric or a bad period is refused. */
	{
		struct http h = http_get("/api/matrix?metric=nope");

		ck_assert_int_eq(h.status, 400);
		http_free(&h);
		h = http_get("/api/matrix?period=2024-13");
		ck_assert_int_eq(h.status, 400);
		http_free(&h);
	}
	indicator__snapshot__free_unpacked(s, NULL);
}
END_TEST

START_TEST(test_path)
{
	Indicator__Snapshot *s;
	json_t *j, *years, *path, *p, *req;
	double v0, vl;
	size_t i;

	web_catch_up();
	s = snapshot_get();
	j = get_json("/api/path");
	years = json_object_get(j, "years");
	ck_assert_int_eq(json_array_size(years), 2);
	json_array_foreach(years, i, p)
	{
		char year[8];

		snprintf(year, sizeof(year), "%d",
		    (int)json_integer_value(json_object_get(p, "year")));
		expect_value(json_object_get(p, "value"),
		    snap_find(s, "output_value", "*", "city", year), year);
		expect_value(json_object_get(
				 json_object_get(p, "industries"), "photonics"),
		    snap_find(s, "output_value", "photonics", "city", year),
		    year);
	}
	v0 = snap_find(s, "output_value", "*", "city", "2023")->value;
	vl = snap_find(s, "output_value", "*", "city", "2024")->value;
	ck_assert_int_eq(json_integer_value(json_object_get(
			     json_object_get(j, "baseline"), "year")),
	    2023);
	/* Both paths run from the baseline through 5000 in 2030 to 10000
	 * in 2035. */
	path = json_object_get(j, "path");
	ck_assert_int_eq(json_array_size(path), 2035 - 2023 + 1);
	json_array_foreach(path, i, p)
	{
		int y = (int)json_integer_value(json_object_get(p, "year"));
		double st = json_number_value(json_object_get(p, "straight"));
		double gr = json_number_value(json_object_get(p, "growth"));

		if (y == 2023) {
			ck_assert_double_eq_tol(st, v0, 1e-9);
			ck_assert_double_eq_tol(gr, v0, 1e-9);
		} else if (y == 2030) {
			ck_assert_double_eq_tol(st, 5000, 1e-9);
			ck_assert_double_eq_tol(gr, 5000, 1e-9);
		} else if (y == 2035) {
			ck_assert_double_eq_tol(st, 10000, 1e-9);
			ck_assert_double_eq_tol(gr, 10000, 1e-6);
		} else if (y == 2026) {
			ck_assert_double_eq_tol(
			    st, v0 + (5000 - v0) * 3 / 7, 1e-9);
			ck_assert_double_eq_tol(
			    gr, v0 * pow(5000 / v0, 3.0 / 7), 1e-9);
		}
	}
	/* From the latest year on: the growth each year needs. */
	req = json_array_get(json_object_get(j, "required"), 0);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(req, "year")), 2030);
	ck_assert_double_eq_tol(json_number_value(json_object_get(req, "rate")),
	    pow(5000 / vl, 1.0 / 6) - 1, 1e-12);
	json_decref(j);
	indicator__snapshot__free_unpacked(s, NULL);
}
END_TEST

static bool
has_revisions(const json_t *j, void *arg)
{
	return json_array_size(json_object_get(j, "revisions")) ==
	       *(size_t *)arg;
}

START_TEST(test_history_hostile_note)
{
	const char *path = "/api/history?district=320583&industry=photonics"
			   "&metric=output_value&period=2024";
	size_t two = 2;
	json_t *j, *r;
	struct http h;

	j = wait_json(path, has_revisions, &two);
	r = json_array_get(json_object_get(j, "revisions"), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(r, "revision")), 1);
	ck_assert_double_eq(
	    json_number_value(json_object_get(r, "value")), 120.5);
	ck_assert_str_eq(
	    json_string_value(json_object_get(r, "note")), HOSTILE);
	ck_assert_str_eq(
	    json_string_value(json_object_get(r, "agent_id")), "ks-01");
	ck_assert_str_eq(json_string_value(json_object_get(r, "epoch")), "77");
	ck_assert_str_eq(
	    json_string_value(json_object_get(r, "status")), "provisional");
	ck_assert_uint_eq(json_u64(json_object_get(r, "seq"), "seq"), 1);
	ck_assert_uint_eq(
	    json_u64(json_object_get(r, "sent_at_ms"), "sent_at_ms"),
	    1700000000000);
	ck_assert_uint_gt(
	    json_u64(json_object_get(r, "stored_at_ms"), "stored_at_ms"),
	    1700000000000);
	r = json_array_get(json_object_get(j, "revisions"), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(r, "revision")), 2);
	ck_assert_double_eq(
	    json_number_value(json_object_get(r, "value")), 121.25);
	ck_assert_double_eq(
	    json_number_value(json_object_get(j, "value")), 121.25);
	json_decref(j);
	/* In the bytes: no markup character at all. */
	h = http_get(path);
	ck_assert_ptr_null(strpbrk(h.body, "<>&"));
	ck_assert_ptr_nonnull(strstr(h.body, "\\u003cscript\\u003e"));
	http_free(&h);
	/* A key with nothing stored has an empty history; a bad one is
	 * refused by the daemon. */
	j = get_json("/api/history?district=320505&industry=quantum"
		     "&metric=output_value&period=2024");
	ck_assert_int_eq(json_array_size(json_object_get(j, "revisions")), 0);
	json_decref(j);
	h = http_get("/api/history?district=320583&industry=photonics"
		     "&metric=output_value&period=2024-Q5");
	ck_assert_int_eq(h.status, 400);
	ck_assert_ptr_nonnull(strstr(h.body, "bad_period"));
	http_free(&h);
	h = http_get("/api/history?district=320583");
	ck_assert_int_eq(h.status, 400);
	http_free(&h);
}
END_TEST

START_TEST(test_csv)
{
	const char *path = "/api/history?district=320583&industry=photonics"
			   "&metric=output_value&period=2024&format=csv";
	size_t two = 2;
	struct http h;
	char *v;

	json_decref(wait_json("/api/history?district=320583&industry="
			      "photonics&metric=output_value&period=2024",
	    has_revisions, &two));
	h = http_get(path);
	ck_assert_int_eq(h.status, 200);
	v = http_header(&h, "Content-Type");
	ck_assert_str_eq(v, "text/csv; charset=utf-8");
	free(v);
	v = http_header(&h, "Content-Disposition");
	ck_assert_ptr_nonnull(strstr(v, "attachment"));
	free(v);
	/* BOM, header, CRLF. */
	ck_assert(memcmp(h.body, "\xef\xbb\xbfrevision,value,unit,", 21) == 0);
	ck_assert_ptr_nonnull(strstr(h.body, "\r\n1,120.5,CNY_100M,"));
	/* Quotes doubled, the cell quoted for its comma; a formula made
	 * inert. */
	ck_assert_ptr_nonnull(
	    strstr(h.body, ",\"<script>alert(\"\"x\"\")</script><img src=x "
			   "onerror=alert(1)> & \\ 'q' , =1+1\","));
	ck_assert_ptr_nonnull(strstr(h.body, ",\"'=SUM(A1) revised\","));
	ck_assert_ptr_null(strstr(h.body, ",=SUM"));
	http_free(&h);
	/* The matrix names the districts in Chinese. */
	h = http_get("/api/matrix?period=2024&format=csv");
	ck_assert_int_eq(h.status, 200);
	ck_assert_ptr_nonnull(strstr(h.body, "昆山市 (320583)"));
	ck_assert_ptr_nonnull(
	    strstr(h.body, "\r\nphotonics,光子芯片与光器件,"));
	http_free(&h);
	h = http_get("/api/plan?format=csv");
	ck_assert_int_eq(h.status, 200);
	ck_assert_ptr_nonnull(strstr(h.body, "\r\noutput_value,2024,401.5,"));
	http_free(&h);
}
END_TEST

START_TEST(test_expected_and_agents)
{
	Indicator__Report r = INDICATOR__REPORT__INIT;
	Indicator__Observation ob = INDICATOR__OBSERVATION__INIT, *obp = &ob;
	json_t *j, *row;
	size_t i, reported = 0;

	/* A rejected report counts against its agent. */
	ob.industry = (char *)"photonics";
	ob.metric = (char *)"output_value";
	ob.period = (char *)"2024";
	ob.value = -1;
	ob.unit = (char *)"CNY_100M";
	r.agent_id = (char *)"sip-01";
	r.district = (char *)"320576";
	r.epoch = 77;
	r.seq = 2;
	r.n_observations = 1;
	r.observations = &obp;
	harness_expect_ack(harness_send_report(sock, &r, ACK_TIMEOUT_MS),
	    INDICATOR__ACK_STATUS__REJECTED, NULL);

	j = get_json("/api/expected?period=2024");
	ck_assert_str_eq(
	    json_string_value(json_object_get(j, "period")), "2024");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "total")), 10);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "complete")), 0);
	json_array_foreach(json_object_get(j, "districts"), i, row)
	{
		const char *d =
		    json_string_value(json_object_get(row, "district"));
		json_t *rep = json_object_get(row, "reported");

		if (strcmp(d, "320583") == 0) {
			ck_assert_int_eq(json_array_size(rep), 2);
			ck_assert_str_eq(
			    json_string_value(json_array_get(rep, 0)),
			    "output_value");
			ck_assert_str_eq(
			    json_string_value(json_array_get(rep, 1)),
			    "innovation_platforms");
			ck_assert_str_eq(
			    json_string_value(json_object_get(row, "name")),
			    "昆山市");
		} else if (strcmp(d, "320576") == 0) {
			ck_assert_int_eq(json_array_size(rep), 1);
		} else {
			ck_assert_int_eq(json_array_size(rep), 0);
		}
		reported += json_array_size(rep);
		ck_assert_int_eq(
		    json_array_size(rep) +
			json_array_size(json_object_get(row, "missing")),
		    6);
	}
	ck_assert_int_eq(reported, 3);
	json_decref(j);

	j = get_json("/api/agents");
	ck_assert_int_eq(json_array_size(json_object_get(j, "agents")), 2);
	json_array_foreach(json_object_get(j, "agents"), i, row)
	{
		const char *a =
		    json_string_value(json_object_get(row, "agent_id"));

		ck_assert_uint_eq(
		    json_u64(json_object_get(row, "rejected"), "rejected"),
		    strcmp(a, "sip-01") == 0 ? 1 : 0);
		ck_assert_uint_eq(
		    json_u64(json_object_get(row, "accepted"), "accepted"),
		    strcmp(a, "sip-01") == 0 ? 1 : 2);
		ck_assert_uint_eq(
		    json_u64(json_object_get(row, "last_seq"), "last_seq"), 2);
		ck_assert_str_eq(
		    json_string_value(json_object_get(row, "epoch")), "77");
		ck_assert(json_is_false(json_object_get(row, "stale")));
		ck_assert_uint_gt(json_u64(json_object_get(row, "last_seen_ms"),
				      "last_seen_ms"),
		    0);
	}
	json_decref(j);
	{
		struct http h = http_get("/api/expected?period=2024-13");

		ck_assert_int_eq(h.status, 400);
		http_free(&h);
	}
}
END_TEST

/* With --stale-after 1, an agent not seen for over a second is stale. */
START_TEST(test_agents_stale)
{
	const char *const extra[] = { "--stale-after", "1", NULL };
	json_t *j, *row;
	size_t i;

	web_stop();
	web_start(extra);
	harness_sleep_ms(1100);
	j = get_json("/api/agents");
	json_array_foreach(json_object_get(j, "agents"), i, row)
	    ck_assert(json_is_true(json_object_get(row, "stale")));
	json_decref(j);
}
END_TEST

/* A live stream as read so far; expectations are met in order. */
struct stream {
	int fd;
	char buf[1 << 16];
	size_t n;
	size_t from; /* past the last expectation met */
};

/* Reads the stream until want shows up after the last one, or fails
 * after timeout_ms. */
static void
stream_expect(struct stream *st, const char *want, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	char *hit;

	while ((hit = strstr(st->buf + st->from, want)) == NULL) {
		struct pollfd p = { st->fd, POLLIN, 0 };
		int64_t left = deadline - harness_now_ms();
		ssize_t r;

		ck_assert_msg(left > 0,
		    "no '%s' on the live stream in %d ms: %s", want, timeout_ms,
		    st->buf + st->from);
		ck_assert_msg(st->n + 1 < sizeof(st->buf), "stream too long");
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		r = read(st->fd, st->buf + st->n, sizeof(st->buf) - 1 - st->n);
		ck_assert_msg(r > 0, "live stream closed");
		st->n += (size_t)r;
		st->buf[st->n] = '\0';
	}
	st->from = (size_t)(hit - st->buf) + strlen(want);
}

START_TEST(test_live_stream)
{
	const struct obs o[] = {
		{ "quantum", "output_value", "2024", 7.5, "CNY_100M", NULL },
	};
	struct sockaddr_in sa = { 0 };
	struct stream *st = xcalloc(1, sizeof(*st));
	char req[256];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t mark;

	web_catch_up();
	st->fd = fd;
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)web_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	snprintf(req, sizeof(req),
	    "GET /events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", web_port);
	ck_assert(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
	stream_expect(st, "text/event-stream", WAIT_MS);
	stream_expect(st, "event: hello", WAIT_MS);
	stream_expect(
	    st, "data: {\"live\":true,\"connected\":true,\"seq\":\"", WAIT_MS);
	mark = st->from;
	/* The bound for the page is 2 s; the stream has it sooner. */
	send_obs("ks-01", "320583", 3, o, 1);
	/* The aggregate as indicator-sub --json writes it: a district's
	 * figure has no target (null, never 0), revision and seq are
	 * strings. */
	stream_expect(st,
	    "event: agg\ndata: "
	    "{\"topic\":\"agg/output_value/quantum/320583/2024\","
	    "\"metric\":\"output_value\",\"industry\":\"quantum\","
	    "\"scope\":\"320583\",\"period\":\"2024\",\"value\":7.5,"
	    "\"unit\":\"CNY_100M\",\"districts_reporting\":1,"
	    "\"districts_expected\":1,\"target\":null,\"target_year\":null,"
	    "\"progress\":null,\"revision\":\"1\",\"seq\":\"",
	    2000);
	/* The city's figure, of the same commit, carries its target. */
	st->from = mark;
	stream_expect(
	    st, "{\"topic\":\"agg/output_value/*/city/2024\",", WAIT_MS);
	stream_expect(st, "\"target\":5000,\"target_year\":2030,", WAIT_MS);
	close(fd);
	free(st);
}
END_TEST

START_TEST(test_headers)
{
	static const char *const paths[] = { "/", "/plan", "/app.js",
		"/api/plan", "/api/registry", "/nope" };
	struct http h;
	char host[64], *v;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		h = http_get(paths[i]);
		ck_assert_int_eq(
		    h.status, strcmp(paths[i], "/nope") ? 200 : 404);
		v = http_header(&h, "Content-Security-Policy");
		ck_assert_ptr_nonnull(v);
		ck_assert_ptr_nonnull(strstr(v, "script-src 'self'"));
		ck_assert_ptr_nonnull(strstr(v, "frame-ancestors 'none'"));
		ck_assert_ptr_null(strstr(v, "unsafe-inline"));
		free(v);
		v = http_header(&h, "X-Content-Type-Options");
		ck_assert_str_eq(v, "nosniff");
		free(v);
		v = http_header(&h, "X-Frame-Options");
		ck_assert_str_eq(v, "DENY");
		free(v);
		http_free(&h);
	}
	/* The pages carry no inline script or style. */
	h = http_get("/");
	ck_assert_ptr_nonnull(strstr(h.body, "<script src=\"/app.js\""));
	ck_assert_ptr_null(strstr(h.body, "<script>"));
	ck_assert_ptr_null(strstr(h.body, "style="));
	http_free(&h);
	/* Read only. */
	snprintf(host, sizeof(host), "127.0.0.1:%d", web_port);
	h = http_do("POST", "/api/plan", host);
	ck_assert_int_eq(h.status, 405);
	http_free(&h);
	/* A name that is not this server's (DNS rebinding). */
	h = http_do("GET", "/api/plan", "attacker.example:80");
	ck_assert_int_eq(h.status, 421);
	http_free(&h);
	snprintf(host, sizeof(host), "localhost:%d", web_port);
	h = http_do("GET", "/api/plan", host);
	ck_assert_int_eq(h.status, 200);
	http_free(&h);
}
END_TEST

static bool
value_is(const json_t *j, void *arg)
{
	json_t *row = json_array_get(json_object_get(j, "rows"), 0);

	return json_is_number(json_object_get(row, "value")) &&
	       json_number_value(json_object_get(row, "value")) ==
		   *(double *)arg;
}

static bool
snapshots_at_least(const json_t *j, void *arg)
{
	return json_u64(json_object_get(j, "snapshots"), "snapshots") >=
		   *(uint64_t *)arg &&
	       json_is_true(json_object_get(j, "live"));
}

/* The daemon stops and starts again: the dashboard says it lost the
 * feed, takes a new snapshot when it is back, and follows on. */
START_TEST(test_daemon_restart)
{
	const struct obs o[] = {
		{ "hydrogen", "output_value", "2024", 10, "CNY_100M", NULL },
	};
	uint64_t two = 2;
	double want = 411.5;
	json_t *j;

	web_catch_up();
	zmq_close(sock);
	ck_assert_int_eq(WEXITSTATUS(harness_daemon_stop(&dm, SIGTERM)), 0);
	harness_wait_log(web_log, "feed: connection to ", WAIT_MS);
	j = get_json("/api/status");
	ck_assert(json_is_false(json_object_get(j, "live")));
	json_decref(j);
	harness_daemon_start(&dm);
	sock = harness_client_new(zctx, dm.ingest);
	json_decref(wait_json("/api/status", snapshots_at_least, &two));
	send_obs("ks-01", "320583", 3, o, 1);
	json_decref(wait_json("/api/plan", value_is, &want));
}
END_TEST

/* --banner: every page's line (the demo's "synthetic data"), a string
 * like any other: the same text back, no markup character in the bytes;
 * none without it; an empty or over-long one refused. */
START_TEST(test_banner)
{
	const char *banner = "演示：合成数据 <b>not statistics</b> & \"x\"";
	const char *const extra[] = { "--banner", banner, NULL };
	char *big = xmalloc(514), *err = NULL;
	const char *empty[] = { WEB_BIN, "--banner", "", NULL };
	const char *toolong[] = { WEB_BIN, "--banner", big, NULL };
	struct http h;
	json_t *j;

	j = get_json("/api/registry");
	ck_assert(json_is_null(json_object_get(j, "banner")));
	json_decref(j);
	web_stop();
	web_start(extra);
	j = get_json("/api/registry");
	ck_assert_str_eq(
	    json_string_value(json_object_get(j, "banner")), banner);
	json_decref(j);
	h = http_get("/api/registry");
	ck_assert_ptr_null(strpbrk(h.body, "<>&"));
	http_free(&h);

	ck_assert_int_eq(harness_run(empty, NULL, &err, RUN_TIMEOUT_S), 2);
	ck_assert_ptr_nonnull(strstr(err, "--banner wants 1 to 512 bytes"));
	free(err);
	memset(big, 'x', 513);
	big[513] = '\0';
	ck_assert_int_eq(harness_run(toolong, NULL, &err, RUN_TIMEOUT_S), 2);
	ck_assert_ptr_nonnull(strstr(err, "--banner wants 1 to 512 bytes"));
	free(err);
	free(big);
}
END_TEST

START_TEST(test_remote_refused)
{
	const char *argv[] = { WEB_BIN, "-c", dm.conf, "--listen", "0.0.0.0:1",
		NULL };
	char *err = NULL;

	ck_assert_int_eq(harness_run(argv, NULL, &err, RUN_TIMEOUT_S), 1);
	ck_assert_ptr_nonnull(strstr(err, "not a loopback address"));
	free(err);
}
END_TEST

/* The queries of the snapshot socket, straight: more than one at once
 * is refused; agents answered. */
START_TEST(test_daemon_queries)
{
	Indicator__SnapshotRequest req = INDICATOR__SNAPSHOT_REQUEST__INIT;
	Indicator__ExpectedQuery eq = INDICATOR__EXPECTED_QUERY__INIT;
	Indicator__AgentsQuery aq = INDICATOR__AGENTS_QUERY__INIT;
	Indicator__Snapshot *s;
	uint8_t buf[64];
	size_t len;
	void *d = harness_client_new(zctx, dm.snapshot);
	zmq_pollitem_t item = { d, 0, ZMQ_POLLIN, 0 };
	zmq_msg_t msg;

	for (int round = 0; round < 2; round++) {
		eq.period = (char *)"2024";
		req.expected = &eq;
		req.agents = round == 0 ? &aq : NULL;
		len = indicator__snapshot_request__pack(&req, buf);
		ck_assert(zmq_send(d, buf, len, 0) == (int)len);
		ck_assert(zmq_poll(&item, 1, WAIT_MS) == 1);
		zmq_msg_init(&msg);
		ck_assert(zmq_msg_recv(&msg, d, 0) != -1);
		s = indicator__snapshot__unpack(
		    NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
		zmq_msg_close(&msg);
		ck_assert_ptr_nonnull(s);
		ck_assert_int_eq(s->n_aggregates, 0);
		if (round == 0) {
			ck_assert_str_eq(s->error, "bad_query");
			ck_assert_int_eq(s->n_expected, 0);
		} else {
			ck_assert_str_eq(s->error, "");
			ck_assert_int_eq(
			    s->query, INDICATOR__QUERY_KIND__QUERY_EXPECTED);
			ck_assert_int_eq(s->n_expected, 10);
		}
		indicator__snapshot__free_unpacked(s, NULL);
	}
	zmq_close(d);
}
END_TEST

/* With feed_curve: the dashboard as a listed subscriber, by its own key
 * pair; the feed and the queries both go through. */
static void
setup_curve(void)
{
	char server_pub[41], server_sec[41], pub[41], sec[41];
	char path[700], text[256], extra[2048];
	const char *argv[8];
	static char spub[41], wpub[700], wsec[700];
	const struct obs o[] = {
		{ "photonics", "output_value", "2024", 42, "CNY_100M", NULL },
	};

	ck_assert(zmq_curve_keypair(server_pub, server_sec) == 0);
	ck_assert(zmq_curve_keypair(pub, sec) == 0);
	{
		char *dir = keydir = harness_tmpdir();

		snprintf(path, sizeof(path), "%s/server.key", dir);
		harness_write_file(path, server_sec);
		ck_assert(chmod(path, 0600) == 0);
		snprintf(wpub, sizeof(wpub), "%s/web.pub", dir);
		harness_write_file(wpub, pub);
		snprintf(wsec, sizeof(wsec), "%s/web.key", dir);
		harness_write_file(wsec, sec);
		ck_assert(chmod(wsec, 0600) == 0);
		snprintf(text, sizeof(text), "%s city-dashboard\n", pub);
		snprintf(extra, sizeof(extra),
		    "feed_curve = true\nsecret_key_file = %s\n"
		    "subscriber_keys = %s/subscribers\n",
		    path, dir);
		snprintf(path, sizeof(path), "%s/subscribers", dir);
		harness_write_file(path, text);
	}
	harness_daemon_init(&dm, extra);
	harness_daemon_start(&dm);
	zctx = zmq_ctx_new();
	sock = harness_client_new(zctx, dm.ingest);
	send_obs("ks-01", "320583", 1, o, 1);
	strlcpy_ok(spub, server_pub, sizeof(spub));
	argv[0] = "--server-key";
	argv[1] = spub;
	argv[2] = "--public-key";
	argv[3] = wpub;
	argv[4] = "--secret-key";
	argv[5] = wsec;
	argv[6] = NULL;
	web_start(argv);
}

START_TEST(test_feed_curve)
{
	json_t *j = get_json("/api/plan"), *row;
	size_t i;

	row = json_array_get(json_object_get(j, "rows"), 0);
	ck_assert_double_eq(
	    json_number_value(json_object_get(row, "value")), 42);
	json_decref(j);
	j = get_json("/api/agents");
	ck_assert_int_eq(json_array_size(json_object_get(j, "agents")), 1);
	json_decref(j);
	j = get_json("/api/expected?period=2024");
	json_array_foreach(json_object_get(j, "districts"), i, row)
	    ck_assert_int_eq(json_array_size(json_object_get(row, "reported")),
		strcmp(json_string_value(json_object_get(row, "district")),
		    "320583") == 0
		    ? 1
		    : 0);
	json_decref(j);
}
END_TEST

/*
 * A registry whose only city target of pilot_parks is for 2023, so that
 * its 2024 figure has no target; and a figure, 12.34, that "%.17g" would
 * write 12.339999999999999.
 */
static void
setup_notarget(void)
{
	const char *from = "pilot_parks/*/city/2030 = 10";
	const struct obs o[] = {
		{ "photonics", "pilot_parks", "2024", 3, "count", NULL },
		{ "quantum", "output_value", "2024", 12.34, "CNY_100M", NULL },
	};
	char *conf, *at;

	harness_daemon_init(&dm, NULL);
	conf = harness_read_file(dm.conf);
	ck_assert_ptr_nonnull(at = strstr(conf, from));
	memcpy(at, "pilot_parks/*/city/2023 = 10", strlen(from));
	harness_write_file(dm.conf, conf);
	free(conf);
	harness_daemon_start(&dm);
	zctx = zmq_ctx_new();
	sock = harness_client_new(zctx, dm.ingest);
	send_obs("ks-01", "320583", 1, o, 2);
	web_start(NULL);
}

/* Where no target applies, the JSON says null and the CSV leaves the
 * cells empty, as indicatorctl's export does; numbers are the shortest
 * decimal that reads back. */
START_TEST(test_no_target)
{
	json_t *j, *row = NULL, *v;
	struct http h;
	size_t i;

	web_catch_up();
	j = get_json("/api/plan");
	json_array_foreach(json_object_get(j, "rows"), i, v)
	{
		if (strcmp(json_string_value(json_object_get(v, "metric")),
			"pilot_parks") == 0)
			row = v;
	}
	ck_assert_ptr_nonnull(row);
	ck_assert_double_eq(
	    json_number_value(json_object_get(row, "value")), 3);
	ck_assert(json_is_null(json_object_get(row, "target")));
	ck_assert(json_is_null(json_object_get(row, "target_year")));
	ck_assert(json_is_null(json_object_get(row, "progress")));
	/* The plan's target of the metric, for the page's list. */
	v = json_array_get(json_object_get(row, "targets"), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(v, "year")), 2023);
	json_decref(j);

	h = http_get("/api/plan?format=csv");
	ck_assert_int_eq(h.status, 200);
	ck_assert_msg(
	    strstr(h.body, "\r\npilot_parks,2024,3,count,,,,1,10,no\r\n") !=
		NULL,
	    "%s", h.body);
	ck_assert_msg(
	    strstr(h.body, "\r\noutput_value,2024,12.34,CNY_100M,5000,2030,") !=
		NULL,
	    "%s", h.body);
	http_free(&h);

	h = http_get("/api/matrix?metric=output_value&period=2024");
	ck_assert_int_eq(h.status, 200);
	ck_assert_msg(strstr(h.body, ",12.34,") != NULL, "%s", h.body);
	ck_assert_msg(strstr(h.body, "12.339") == NULL, "%s", h.body);
	http_free(&h);
}
END_TEST

static Suite *
web_suite(void)
{
	Suite *s = suite_create("web");
	TCase *tc = tcase_create("web");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_plan_equals_snapshot);
	tcase_add_test(tc, test_matrix_equals_snapshot);
	tcase_add_test(tc, test_path);
	tcase_add_test(tc, test_history_hostile_note);
	tcase_add_test(tc, test_csv);
	tcase_add_test(tc, test_expected_and_agents);
	tcase_add_test(tc, test_agents_stale);
	tcase_add_test(tc, test_live_stream);
	tcase_add_test(tc, test_headers);
	tcase_add_test(tc, test_daemon_restart);
	tcase_add_test(tc, test_banner);
	tcase_add_test(tc, test_remote_refused);
	tcase_add_test(tc, test_daemon_queries);
	suite_add_tcase(s, tc);
	tc = tcase_create("curve");
	tcase_add_checked_fixture(tc, setup_curve, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_feed_curve);
	suite_add_tcase(s, tc);
	tc = tcase_create("notarget");
	tcase_add_checked_fixture(tc, setup_notarget, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_no_target);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(web_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
