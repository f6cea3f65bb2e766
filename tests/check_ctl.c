/*
 * indicatorctl and indicator-gen-sample, run as the real binaries. The store
 * is filled directly with store_* functions in a temporary directory (no
 * daemon; aggregates packed as the daemon packs them), then read by
 * indicatorctl as an operator would.
 */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "csv.h"
#include "harness.h"
#include "store.h"
#include "xmalloc.h"

#define RUN_TIMEOUT 60
/* 2025-01-02T03:04:05Z */
#define T0 1735787045000LL

static const char *const sample_districts[] = { "320505", "320506", "320507",
	"320508", "320509", "320576", "320581", "320582", "320583", "320585" };
#define NSAMPLE (sizeof(sample_districts) / sizeof(sample_districts[0]))

static struct store_obs
obs_make(const char *district, const char *industry, const char *metric,
    const char *period, double value, const char *unit, int status,
    const char *note)
{
	struct store_obs o;

	memset(&o, 0, sizeof(o));
	strlcpy_ok(o.district, district, sizeof(o.district));
	strlcpy_ok(o.industry, industry, sizeof(o.industry));
	strlcpy_ok(o.metric, metric, sizeof(o.metric));
	strlcpy_ok(o.period, period, sizeof(o.period));
	o.value = o.sent_value = value;
	strlcpy_ok(o.unit, unit, sizeof(o.unit));
	strlcpy_ok(o.sent_unit, unit, sizeof(o.sent_unit));
	o.status = status;
	strlcpy_ok(o.note, note, sizeof(o.note));
	strlcpy_ok(o.agent_id, "agent-1", sizeof(o.agent_id));
	o.epoch = 7;
	o.seq = 1;
	o.sent_at_ms = T0 - 1000;
	o.stored_at_ms = T0;
	return o;
}

static struct store *
store_rw(const char *dir)
{
	struct store_opts so = { 0 };
	struct store *s;
	char err[256];

	so.dir = dir;
	s = store_open(&so, err, sizeof(err));
	ck_assert_msg(s != NULL, "store_open: %s", err);
	return s;
}

/* Stores the n observations in one write transaction. */
static void
store_fill(const char *dir, struct store_obs *o, size_t n)
{
	struct store *s = store_rw(dir);
	struct store_txn *t = store_txn_begin(s, true);

	ck_assert_ptr_nonnull(t);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(store_obs_put(t, &o[i], NULL, NULL), 0);
	ck_assert_int_eq(store_txn_commit(&t), 0);
	store_close(&s);
}

/* Runs indicatorctl -d dir with up to 8 more arguments (NULL-terminated
 * list in args); returns the exit code. */
static int
ctl_run(const char *dir, const char *const args[], char **out, char **err)
{
	const char *argv[16];
	size_t n = 0;

	argv[n++] = INDICATORCTL_BIN;
	if (dir != NULL) {
		argv[n++] = "-d";
		argv[n++] = dir;
	}
	for (size_t i = 0; args[i] != NULL && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	return harness_run(argv, out, err, RUN_TIMEOUT);
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static bool
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

START_TEST(test_no_store)
{
	char *tmp = harness_tmpdir(), *out, *err, missing[600], want[700];
	const char *args[] = { "query", NULL };

	snprintf(missing, sizeof(missing), "%s/nothing", tmp);
	snprintf(want, sizeof(want), "indicatorctl: no store at %s\n", missing);
	ck_assert_int_eq(ctl_run(missing, args, &out, &err), 1);
	ck_assert_str_eq(err, want);
	ck_assert_str_eq(out, "");
	free(out);
	free(err);

	/* A directory that holds no store is no store either. */
	snprintf(want, sizeof(want), "indicatorctl: no store at %s\n", tmp);
	ck_assert_int_eq(ctl_run(tmp, args, &out, &err), 1);
	ck_assert_str_eq(err, want);
	free(out);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

static const struct usage_case {
	const char *args[6];
} usage_cases[] = {
	{ { NULL } },
	{ { "frobnicate", NULL } },
	{ { "query", "--bogus", NULL } },
	{ { "query", "--district", NULL } },
	{ { "query", "extra", NULL } },
	{ { "history", "320583", "materials", "output_value", NULL } },
	{ { "history", "a", "b", "c", "d", "e" } },
	{ { "agents", "--period", "2025", NULL } },
	{ { "city", "--period", "2025-13", NULL } },
	{ { "-x", "query", NULL } },
	{ { "aggregates", "--period", "2025", NULL } },
	{ { "aggregates", "--prefix", NULL } },
	{ { "aggregates", "agg/", NULL } },
	{ { "progress", "--prefix", "agg/", NULL } },
	{ { "progress", "2025", NULL } },
};

/* Usage errors exit 2 before any store is looked for. */
START_TEST(test_usage)
{
	const struct usage_case *c = &usage_cases[_i];
	const char *args[8] = { NULL };
	char *out, *err;

	for (size_t i = 0; i < 6 && c->args[i] != NULL; i++)
		args[i] = c->args[i];
	ck_assert_int_eq(ctl_run("/nonexistent/store", args, &out, &err), 2);
	ck_assert_msg(
	    strstr(err, "usage: indicatorctl") != NULL, "no usage in: %s", err);
	ck_assert_str_eq(out, "");
	free(out);
	free(err);
}
END_TEST

START_TEST(test_empty_store)
{
	char *tmp = harness_tmpdir(), *out, *err;
	struct store *s = store_rw(tmp);
	const char *table[] = { "query", NULL };
	const char *json[] = { "query", "--json", NULL };
	const char *city[] = { "city", NULL };
	const char *agents[] = { "agents", NULL };

	store_close(&s);
	ck_assert_int_eq(ctl_run(tmp, table, &out, &err), 0);
	ck_assert_str_eq(out, "(no observations)\n");
	free(out);
	free(err);
	ck_assert_int_eq(ctl_run(tmp, json, &out, &err), 0);
	ck_assert_str_eq(out, "");
	free(out);
	free(err);
	ck_assert_int_eq(ctl_run(tmp, city, &out, &err), 0);
	ck_assert_str_eq(out, "(no observations)\n");
	free(out);
	free(err);
	ck_assert_int_eq(ctl_run(tmp, agents, &out, &err), 0);
	ck_assert_str_eq(out, "(no agents)\n");
	free(out);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

/* One line of JSON per observation, every field, strings escaped. */
START_TEST(test_query_json)
{
	char *tmp = harness_tmpdir(), *out, *err;
	struct store_obs o = obs_make("320583", "photonics", "output_value",
	    "2025", 12.34, "CNY_100M", 3,
	    "say \"hi\"\n\ttab\x01 back\\slash \xe6\x98\x86 \xff");
	const char *args[] = { "query", "--json", NULL };

	o.sent_value = 123400;
	strlcpy_ok(o.sent_unit, "CNY_10K", sizeof(o.sent_unit));
	o.epoch = UINT64_MAX;
	store_fill(tmp, &o, 1);
	ck_assert_int_eq(ctl_run(tmp, args, &out, &err), 0);
	ck_assert_str_eq(out,
	    "{\"district\":\"320583\",\"industry\":\"photonics\","
	    "\"metric\":\"output_value\",\"period\":\"2025\","
	    "\"value\":12.34,\"unit\":\"CNY_100M\",\"sent_value\":123400,"
	    "\"sent_unit\":\"CNY_10K\",\"status\":\"revised\","
	    "\"note\":\"say \\\"hi\\\"\\n\\ttab\\u0001 back\\\\slash "
	    "\xe6\x98\x86 \\ufffd\","
	    "\"agent_id\":\"agent-1\",\"epoch\":18446744073709551615,"
	    "\"seq\":1,\"sent_at_ms\":1735787044000,"
	    "\"stored_at_ms\":1735787045000,\"revision\":1}\n");
	ck_assert_str_eq(err, "");
	free(out);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

static const struct filter_case {
	const char *args[6];
	size_t nlines;
	const char *each; /* every line contains this */
} filter_cases[] = {
	{ { "query", "--json", NULL }, 5, "\"metric\":" },
	{ { "query", "--json", "--district", "320583", NULL }, 3,
	    "\"district\":\"320583\"" },
	{ { "query", "--json", "--district=320505", NULL }, 2,
	    "\"district\":\"320505\"" },
	{ { "query", "--industry", "quantum", "--json", NULL }, 1,
	    "\"industry\":\"quantum\"" },
	{ { "query", "--json", "--metric", "chain_leaders", NULL }, 2,
	    "\"metric\":\"chain_leaders\"" },
	{ { "query", "--json", "--period", "2024", "--district", "320583" }, 1,
	    "\"period\":\"2024\"" },
	{ { "query", "--json", "--district", "320508", NULL }, 0, "" },
};

START_TEST(test_query_filter)
{
	const struct filter_case *c = &filter_cases[_i];
	char *tmp = harness_tmpdir(), *out, *err;
	struct store_obs o[] = {
		obs_make("320583", "photonics", "output_value", "2025", 1,
		    "CNY_100M", 2, ""),
		obs_make("320583", "photonics", "output_value", "2024", 1,
		    "CNY_100M", 2, ""),
		obs_make("320583", "quantum", "chain_leaders", "2025", 1,
		    "count", 2, ""),
		obs_make("320505", "materials", "chain_leaders", "2025", 1,
		    "count", 2, ""),
		obs_make("320505", "materials", "output_value", "2025", 1,
		    "CNY_100M", 2, ""),
	};
	const char *args[8] = { NULL };
	char *line;

	for (size_t i = 0; i < 6 && c->args[i] != NULL; i++)
		args[i] = c->args[i];
	store_fill(tmp, o, sizeof(o) / sizeof(o[0]));
	ck_assert_int_eq(ctl_run(tmp, args, &out, &err), 0);
	ck_assert_uint_eq(count_lines(out), c->nlines);
	for (line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n"))
		ck_assert_msg(strstr(line, c->each) != NULL, "%s lacks %s",
		    line, c->each);
	free(out);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

START_TEST(test_query_table)
{
	char *tmp = harness_tmpdir(), *out, *err;
	struct store_obs o[] = {
		obs_make("320583", "photonics", "output_value", "2025", 12.34,
		    "CNY_100M", 2, ""),
		obs_make("320508", "quantum", "core_products", "2025", 3,
		    "count", 1, ""),
	};
	const char *args[] = { "query", NULL };
	const char *l1, *l2, *l3;

	store_fill(tmp, o, 2);
	setenv("TZ", "UTC", 1);
	ck_assert_int_eq(ctl_run(tmp, args, &out, &err), 0);
	/* Header, rule, two rows in key order (320508 before 320583). */
	ck_assert_uint_eq(count_lines(out), 4);
	ck_assert_ptr_nonnull(strstr(out, "district"));
	ck_assert_ptr_nonnull(strstr(out, "stored at"));
	l1 = strstr(out, "320508 姑苏区");
	l2 = strstr(out, "320583 昆山市");
	ck_assert_ptr_nonnull(l1);
	ck_assert_ptr_nonnull(l2);
	ck_assert(l1 < l2);
	ck_assert_ptr_nonnull(strstr(l2, "12.34"));
	ck_assert_ptr_nonnull(strstr(l2, "final"));
	ck_assert_ptr_nonnull(strstr(l1, "provisional"));
	ck_assert_ptr_nonnull(strstr(l2, "agent-1"));
	ck_assert_ptr_nonnull(strstr(l2, "2025-01-02T03:04:05+00:00"));
	/* Aligned: both rows end at the same display column, and so does the
	 * header (the names are two-column characters of equal count). */
	l3 = strchr(l1, '\n');
	ck_assert_int_eq(l3 - l1, strchr(l2, '\n') - l2);
	free(out);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

START_TEST(test_history)
{
	char *tmp = harness_tmpdir(), *out, *err, *p;
	struct store_obs o[3];
	const char *json[] = { "history", "320582", "hydrogen", "output_value",
		"2025", "--json", NULL };
	const char *table[] = { "history", "320582", "hydrogen", "output_value",
		"2025", NULL };
	const char *none[] = { "history", "320582", "hydrogen", "output_value",
		"2023", NULL };

	for (int i = 0; i < 3; i++) {
		o[i] = obs_make("320582", "hydrogen", "output_value", "2025",
		    10 + i, "CNY_100M", i == 0 ? 1 : 3, "");
		o[i].sent_value = (10 + i) * 10000;
		strlcpy_ok(o[i].sent_unit, "CNY_10K", sizeof(o[i].sent_unit));
		o[i].seq = (uint64_t)(i + 1);
	}
	store_fill(tmp, o, 3);
	ck_assert_int_eq(ctl_run(tmp, json, &out, &err), 0);
	ck_assert_uint_eq(count_lines(out), 3);
	/* Oldest first, revisions 1, 2, 3 with their own values. */
	p = strstr(out, "\"value\":10,");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(strstr(p, "\"revision\":1}"));
	p = strstr(p, "\"value\":11,");
	ck_assert_ptr_nonnull(p);
	p = strstr(p, "\"value\":12,");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(strstr(p, "\"revision\":3}"));
	free(out);
	free(err);

	ck_assert_int_eq(ctl_run(tmp, table, &out, &err), 0);
	ck_assert_uint_eq(count_lines(out), 5);
	ck_assert_ptr_nonnull(strstr(out, "120000 CNY_10K"));
	ck_assert_ptr_nonnull(strstr(out, "revised"));
	free(out);
	free(err);

	ck_assert_int_eq(ctl_run(tmp, none, &out, &err), 0);
	ck_assert_str_eq(out, "(no observations)\n");
	free(out);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

START_TEST(test_agents)
{
	char *tmp = harness_tmpdir(), *out, *err;
	struct store *s = store_rw(tmp);
	struct store_txn *t = store_txn_begin(s, true);
	struct store_seq a = { 42, T0, T0 + 954000, 40, 2 };
	struct store_seq b = { 1, T0, T0, 1, 0 };
	const char *json[] = { "agents", "--json", NULL };
	const char *table[] = { "agents", NULL };

	ck_assert_int_eq(store_seq_put(t, "kunshan-01", UINT64_MAX, &a), 0);
	ck_assert_int_eq(store_seq_put(t, "gusu\"01", 5, &b), 0);
	ck_assert_int_eq(store_txn_commit(&t), 0);
	store_close(&s);

	ck_assert_int_eq(ctl_run(tmp, json, &out, &err), 0);
	ck_assert_str_eq(out,
	    "{\"agent_id\":\"gusu\\\"01\",\"epoch\":5,\"last_seq\":1,"
	    "\"accepted\":1,\"rejected\":0,\"first_seen_ms\":1735787045000,"
	    "\"last_seen_ms\":1735787045000}\n"
	    "{\"agent_id\":\"kunshan-01\",\"epoch\":18446744073709551615,"
	    "\"last_seq\":42,\"accepted\":40,\"rejected\":2,"
	    "\"first_seen_ms\":1735787045000,"
	    "\"last_seen_ms\":1735787999000}\n");
	free(out);
	free(err);

	setenv("TZ", "UTC", 1);
	ck_assert_int_eq(ctl_run(tmp, table, &out, &err), 0);
	ck_assert_uint_eq(count_lines(out), 4);
	ck_assert_ptr_nonnull(strstr(out, "kunshan-01"));
	ck_assert_ptr_nonnull(strstr(out, "2025-01-02T03:19:59+00:00"));
	free(out);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

/* The number after key in s, or NAN. */
static double
json_number_after(const char *s, const char *key)
{
	const char *p = strstr(s, key);

	return p != NULL ? strtod(p + strlen(key), NULL) : NAN;
}

/* A line of out containing needle; caller frees. */
static char *
line_with(const char *out, const char *needle)
{
	const char *p = strstr(out, needle), *b, *e;
	char *line;

	ck_assert_msg(p != NULL, "no line with %s", needle);
	for (b = p; b > out && b[-1] != '\n'; b--)
		;
	e = strchr(p, '\n');
	line = xmalloc((size_t)(e - b) + 1);
	memcpy(line, b, (size_t)(e - b));
	line[e - b] = '\0';
	return line;
}

START_TEST(test_city_small)
{
	char *tmp = harness_tmpdir(), *out, *err, *line;
	struct store_obs o[] = {
		obs_make("320583", "materials", "output_value", "2024", 100,
		    "CNY_100M", 2, ""),
		obs_make("320508", "materials", "output_value", "2024", 0.5,
		    "CNY_100M", 2, ""),
		obs_make("320508", "materials", "pilot_parks", "2024", 2,
		    "count", 2, ""),
		obs_make("320583", "quantum", "output_value", "2024", 1.25,
		    "CNY_100M", 2, ""),
		obs_make("320505", "quantum", "output_value", "2023", 1000,
		    "CNY_100M", 2, ""),
		/* Not annual: never the default period. */
		obs_make("320505", "quantum", "output_value", "2025-Q1", 7,
		    "CNY_100M", 2, ""),
		/* No longer in the registry: not summed. */
		obs_make("999999", "materials", "output_value", "2024", 5000,
		    "CNY_100M", 2, ""),
	};
	const char *table[] = { "city", NULL };
	const char *json[] = { "city", "--json", NULL };
	const char *y2023[] = { "city", "--period", "2023", NULL };

	store_fill(tmp, o, sizeof(o) / sizeof(o[0]));
	ck_assert_int_eq(ctl_run(tmp, table, &out, &err), 0);
	ck_assert_msg(
	    starts_with(out, "City of Suzhou, future industries, 2024\n"
			     "industry "),
	    "%s", out);
	ck_assert_ptr_null(strstr(out, "synthetic"));
	ck_assert_ptr_nonnull(strstr(out, "(CNY_100M)"));
	line = line_with(out, "(materials)");
	ck_assert_ptr_nonnull(strstr(line, " 100.50 "));
	ck_assert_ptr_nonnull(strstr(line, " 2 "));
	ck_assert_ptr_nonnull(strstr(line, "2/10"));
	free(line);
	line = line_with(out, "(hydrogen)");
	ck_assert_ptr_nonnull(strstr(line, " - "));
	ck_assert_ptr_nonnull(strstr(line, "0/10"));
	free(line);
	line = line_with(out, "all industries");
	ck_assert_ptr_nonnull(strstr(line, " 101.75 "));
	ck_assert_ptr_nonnull(strstr(line, "2/10"));
	free(line);
	free(out);
	free(err);

	ck_assert_int_eq(ctl_run(tmp, json, &out, &err), 0);
	/* Eight industries and the total. */
	ck_assert_uint_eq(count_lines(out), 9);
	line = line_with(out, "\"industry\":\"*\"");
	ck_assert_double_eq_tol(
	    json_number_after(line, "\"output_value\":{\"value\":"), 101.75,
	    1e-9);
	ck_assert_ptr_nonnull(strstr(line, "\"districts_reporting\":2,"));
	ck_assert_ptr_nonnull(strstr(line, "\"districts_expected\":10,"));
	ck_assert_ptr_nonnull(
	    strstr(line, "\"chain_leaders\":{\"value\":null,"));
	free(line);
	free(out);
	free(err);

	ck_assert_int_eq(ctl_run(tmp, y2023, &out, &err), 0);
	ck_assert_ptr_nonnull(
	    strstr(out, "City of Suzhou, future industries, 2023\n"));
	line = line_with(out, "all industries");
	ck_assert_ptr_nonnull(strstr(line, " 1000.00 "));
	ck_assert_ptr_nonnull(strstr(line, "1/10"));
	free(line);
	free(out);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

/* One stored aggregate, as the daemon would pack it. */
struct agg_spec {
	const char *metric;
	const char *industry;
	const char *scope;
	const char *period;
	double value;
	const char *unit;
	uint32_t reporting;
	uint32_t expected;
	double target;
	uint32_t target_year;
	uint64_t revision;
	uint64_t seq;
};

/* Stores the aggregates (packed, under their topics) in one write
 * transaction, with pub_seq the largest seq. */
static void
store_aggs(const char *dir, const struct agg_spec *a, size_t n)
{
	struct store *s = store_rw(dir);
	struct store_txn *t = store_txn_begin(s, true);
	uint64_t pub_seq = 0;

	ck_assert_ptr_nonnull(t);
	for (size_t i = 0; i < n; i++) {
		Indicator__Aggregate m = INDICATOR__AGGREGATE__INIT;
		char topic[IND_TOPIC_MAX + 1];
		uint8_t buf[512];
		size_t len;

		m.metric = (char *)a[i].metric;
		m.industry = (char *)a[i].industry;
		m.scope = (char *)a[i].scope;
		m.period = (char *)a[i].period;
		m.value = a[i].value;
		m.unit = (char *)a[i].unit;
		m.districts_reporting = a[i].reporting;
		m.districts_expected = a[i].expected;
		m.target = a[i].target;
		m.target_year = a[i].target_year;
		m.progress = a[i].target > 0 ? a[i].value / a[i].target : 0;
		m.revision = a[i].revision;
		m.seq = a[i].seq;
		m.updated_at_ms = T0 + (int64_t)a[i].seq * 1000;
		ck_assert_uint_le(
		    indicator__aggregate__get_packed_size(&m), sizeof(buf));
		len = indicator__aggregate__pack(&m, buf);
		snprintf(topic, sizeof(topic), "agg/%s/%s/%s/%s", m.metric,
		    m.industry, m.scope, m.period);
		ck_assert_int_eq(store_agg_put(t, topic, buf, len), 0);
		if (m.seq > pub_seq)
			pub_seq = m.seq;
	}
	ck_assert_int_eq(store_meta_put(t, "pub_seq", pub_seq), 0);
	ck_assert_int_eq(store_txn_commit(&t), 0);
	store_close(&s);
}

static const struct agg_spec some_aggs[] = {
	{ "output_value", "*", "city", "2025", 2400.5, "CNY_100M", 10, 10, 5000,
	    2030, 3, 41 },
	{ "output_value", "materials", "320583", "2025-Q3", 12.34, "CNY_100M",
	    1, 1, 0, 0, 1, 7 },
	{ "clusters_100bn", "*", "city", "2025", 0, "count", 10, 10, 1, 2035, 1,
	    40 },
	{ "chain_leaders", "*", "city", "2024", 12, "count", 7, 10, 20, 2030, 2,
	    12 },
};
#define NSOME (sizeof(some_aggs) / sizeof(some_aggs[0]))

/* Every aggregate, in topic order, one aligned row each. */
START_TEST(test_aggregates_table)
{
	char *tmp = harness_tmpdir(), *out, *err;
	const char *args[] = { "aggregates", NULL };

	store_aggs(tmp, some_aggs, NSOME);
	setenv("TZ", "UTC", 1);
	ck_assert_int_eq(ctl_run(tmp, args, &out, &err), 0);
	ck_assert_str_eq(out,
	    "topic                                       value  unit      "
	    "reporting  target  target year  progress  rev  seq  updated at\n"
	    "-----------------------------------------  ------  --------  "
	    "---------  ------  -----------  --------  ---  ---  "
	    "-------------------------\n"
	    "agg/chain_leaders/*/city/2024                  12  count     "
	    "     7/10      20         2030     60.0%    2   12  "
	    "2025-01-02T03:04:17+00:00\n"
	    "agg/clusters_100bn/*/city/2025                  0  count     "
	    "    10/10       1         2035      0.0%    1   40  "
	    "2025-01-02T03:04:45+00:00\n"
	    "agg/output_value/*/city/2025               2400.5  CNY_100M  "
	    "    10/10    5000         2030     48.0%    3   41  "
	    "2025-01-02T03:04:46+00:00\n"
	    "agg/output_value/materials/320583/2025-Q3   12.34  CNY_100M  "
	    "      1/1       -            -         -    1    7  "
	    "2025-01-02T03:04:12+00:00\n");
	ck_assert_str_eq(err, "");
	free(out);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

START_TEST(test_aggregates_json)
{
	char *tmp = harness_tmpdir(), *out, *err, *line;
	const char *all[] = { "aggregates", "--json", NULL };
	const char *prefix[] = { "aggregates", "--json", "--prefix",
		"agg/output_value/", NULL };
	const char *none[] = { "aggregates", "--prefix=agg/pilot_parks/",
		NULL };
	const char *none_json[] = { "aggregates", "--prefix=agg/pilot_parks/",
		"--json", NULL };

	store_aggs(tmp, some_aggs, NSOME);
	ck_assert_int_eq(ctl_run(tmp, all, &out, &err), 0);
	ck_assert_uint_eq(count_lines(out), NSOME);
	ck_assert_msg(starts_with(out, "{\"topic\":\"agg/chain_leaders/*/city/"
				       "2024\","),
	    "%s", out);
	line = line_with(out, "\"topic\":\"agg/output_value/*/city/2025\"");
	ck_assert_str_eq(line,
	    "{\"topic\":\"agg/output_value/*/city/2025\","
	    "\"metric\":\"output_value\",\"industry\":\"*\","
	    "\"scope\":\"city\",\"period\":\"2025\",\"value\":2400.5,"
	    "\"unit\":\"CNY_100M\",\"districts_reporting\":10,"
	    "\"districts_expected\":10,\"target\":5000,\"target_year\":2030,"
	    "\"progress\":0.4801,\"revision\":3,\"seq\":41,"
	    "\"updated_at_ms\":1735787086000}");
	free(line);
	line = line_with(out, "\"scope\":\"320583\"");
	ck_assert_ptr_nonnull(strstr(line, "\"period\":\"2025-Q3\""));
	ck_assert_ptr_nonnull(strstr(line, "\"value\":12.34,"));
	ck_assert_ptr_nonnull(strstr(line, "\"districts_reporting\":1,"));
	ck_assert_ptr_nonnull(strstr(line,
	    "\"target\":0,\"target_year\":0,\"progress\":0,\"revision\":1,"
	    "\"seq\":7,"));
	free(line);
	free(out);
	free(err);

	/* Only the topics under the prefix. */
	ck_assert_int_eq(ctl_run(tmp, prefix, &out, &err), 0);
	ck_assert_uint_eq(count_lines(out), 2);
	ck_assert_ptr_null(strstr(out, "chain_leaders"));
	ck_assert_ptr_null(strstr(out, "clusters_100bn"));
	free(out);
	free(err);

	ck_assert_int_eq(ctl_run(tmp, none, &out, &err), 0);
	ck_assert_str_eq(out, "(no aggregates)\n");
	free(out);
	free(err);
	ck_assert_int_eq(ctl_run(tmp, none_json, &out, &err), 0);
	ck_assert_str_eq(out, "");
	free(out);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

/* A stored aggregate that does not decode is named, the others are still
 * listed, and the exit code says something was wrong. */
START_TEST(test_aggregates_bad)
{
	char *tmp = harness_tmpdir(), *out, *err;
	const char *args[] = { "aggregates", "--json", NULL };
	const char *progress[] = { "progress", "--json", NULL };
	struct store *s;
	struct store_txn *t;

	store_aggs(tmp, some_aggs, NSOME);
	s = store_rw(tmp);
	t = store_txn_begin(s, true);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(
	    store_agg_put(t, "agg/output_value/*/city/2023", "\xff\xff", 2), 0);
	ck_assert_int_eq(store_txn_commit(&t), 0);
	store_close(&s);

	ck_assert_int_eq(ctl_run(tmp, args, &out, &err), 1);
	ck_assert_uint_eq(count_lines(out), NSOME);
	ck_assert_str_eq(err, "indicatorctl: aggregates: stored aggregate "
			      "agg/output_value/*/city/2023 does not decode\n");
	free(out);
	free(err);
	ck_assert_int_eq(ctl_run(tmp, progress, &out, &err), 1);
	ck_assert_ptr_nonnull(strstr(out, "\"value\":2400.5,"));
	ck_assert_str_eq(err, "indicatorctl: progress: stored aggregate "
			      "agg/output_value/*/city/2023 does not decode\n");
	free(out);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

/* The plan's view: the latest annual city-wide figure of each metric with
 * a target, against each target year. */
static const struct agg_spec plan_aggs[] = {
	{ "output_value", "*", "city", "2024", 1800, "CNY_100M", 9, 10, 5000,
	    2030, 1, 5 },
	{ "output_value", "*", "city", "2025", 2400.5, "CNY_100M", 10, 10, 5000,
	    2030, 2, 30 },
	/* Not annual, not all industries, not city-wide: never shown. */
	{ "output_value", "*", "city", "2025-Q3", 700, "CNY_100M", 10, 10, 0, 0,
	    1, 31 },
	{ "output_value", "materials", "city", "2026", 900, "CNY_100M", 3, 10,
	    0, 0, 1, 32 },
	{ "output_value", "*", "320583", "2026", 400, "CNY_100M", 1, 1, 0, 0, 1,
	    33 },
	{ "chain_leaders", "*", "city", "2024", 12, "count", 7, 10, 20, 2030, 1,
	    6 },
	{ "clusters_100bn", "*", "city", "2024", 0, "count", 9, 10, 1, 2035, 1,
	    7 },
	{ "clusters_100bn", "*", "city", "2025", 1, "count", 10, 10, 1, 2035, 2,
	    34 },
};
#define NPLAN (sizeof(plan_aggs) / sizeof(plan_aggs[0]))

START_TEST(test_progress_table)
{
	char *tmp = harness_tmpdir(), *out, *err;
	const char *args[] = { "progress", NULL };

	store_aggs(tmp, plan_aggs, NPLAN);
	ck_assert_int_eq(ctl_run(tmp, args, &out, &err), 0);
	ck_assert_str_eq(out,
	    "City progress toward the plan's targets (2025 figures)\n"
	    "metric                year   value  unit      districts  "
	    "target 2030  progress 2030  target 2035  progress 2035  name\n"
	    "--------------------  ----  ------  --------  ---------  "
	    "-----------  -------------  -----------  -------------  "
	    "----------------------------------------\n"
	    "output_value          2025  2400.5  CNY_100M      10/10  "
	    "       5000          48.0%        10000          24.0%  "
	    "总产值 (output value)\n"
	    "innovation_platforms     -       -  -                 -  "
	    "         10              -            -              -  "
	    "创新平台 (innovation platforms)\n"
	    "chain_leaders         2024      12  count          7/10  "
	    "         20          60.0%            -              -  "
	    "链主企业 (chain-leader enterprises)\n"
	    "pilot_parks              -       -  -                 -  "
	    "         10              -            -              -  "
	    "先导园区 (pilot parks)\n"
	    "core_products            -       -  -                 -  "
	    "        100              -            -              -  "
	    "核心产品 (core products)\n"
	    "app_scenarios            -       -  -                 -  "
	    "        100              -            -              -  "
	    "应用场景 (application scenarios)\n"
	    "clusters_100bn        2025       1  count         10/10  "
	    "          -              -            1         100.0%  "
	    "千亿级创新集群 (industries >= 1000 亿元)\n");
	ck_assert_str_eq(err, "");
	free(out);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

START_TEST(test_progress_json)
{
	char *tmp = harness_tmpdir(), *out, *err, *line;
	const char *args[] = { "progress", "--json", NULL };

	store_aggs(tmp, plan_aggs, NPLAN);
	ck_assert_int_eq(ctl_run(tmp, args, &out, &err), 0);
	/* Six metrics with a city-wide target, and clusters_100bn. */
	ck_assert_uint_eq(count_lines(out), 7);
	ck_assert_msg(
	    starts_with(out, "{\"metric\":\"output_value\","), "%s", out);
	line = line_with(out, "\"metric\":\"output_value\"");
	ck_assert_str_eq(line,
	    "{\"metric\":\"output_value\",\"period\":\"2025\","
	    "\"value\":2400.5,\"unit\":\"CNY_100M\","
	    "\"districts_reporting\":10,\"districts_expected\":10,"
	    "\"targets\":[{\"year\":2030,\"target\":5000,\"progress\":0.4801},"
	    "{\"year\":2035,\"target\":10000,\"progress\":0.24005}],"
	    "\"synthetic\":false}");
	free(line);
	line = line_with(out, "\"metric\":\"pilot_parks\"");
	ck_assert_str_eq(line,
	    "{\"metric\":\"pilot_parks\",\"period\":null,\"value\":null,"
	    "\"unit\":null,\"districts_reporting\":0,"
	    "\"districts_expected\":10,"
	    "\"targets\":[{\"year\":2030,\"target\":10,\"progress\":null}],"
	    "\"synthetic\":false}");
	free(line);
	line = line_with(out, "\"metric\":\"chain_leaders\"");
	ck_assert_ptr_nonnull(
	    strstr(line, "\"period\":\"2024\",\"value\":12,"));
	ck_assert_ptr_nonnull(strstr(line, "\"districts_reporting\":7,"));
	ck_assert_ptr_nonnull(
	    strstr(line, "[{\"year\":2030,\"target\":20,\"progress\":0.6}]"));
	free(line);
	line = line_with(out, "\"metric\":\"clusters_100bn\"");
	ck_assert_ptr_nonnull(strstr(line, "\"period\":\"2025\",\"value\":1,"));
	ck_assert_ptr_nonnull(
	    strstr(line, "[{\"year\":2035,\"target\":1,\"progress\":1}]"));
	free(line);
	free(out);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

/* Synthetic observations say so; other target years in the configuration
 * get their own columns, in order; targets of one district do not. */
START_TEST(test_progress_synthetic_and_years)
{
	char *tmp = harness_tmpdir(), *out, *err, *line, conf[600], *text;
	struct store_obs o = obs_make("320583", "materials", "output_value",
	    "2025", 100, "CNY_100M", 2, "synthetic sample data");
	const char *table[] = { "-c", conf, "progress", NULL };
	const char *json[] = { "-c", conf, "progress", "--json", NULL };
	const char *empty[] = { "progress", NULL };
	size_t len;

	store_fill(tmp, &o, 1);
	ck_assert_int_eq(ctl_run(tmp, empty, &out, &err), 0);
	ck_assert_str_eq(out, "(no annual city aggregates)\n");
	free(out);
	free(err);

	store_aggs(tmp, plan_aggs, NPLAN);
	snprintf(conf, sizeof(conf), "%s/indicatord.conf", tmp);
	len = strlen(config_default_text) + 256;
	text = xmalloc(len);
	snprintf(text, len,
	    "%s\n[target]\noutput_value/*/city/2028 = 4000\n"
	    "output_value/*/320583/2027 = 900\n",
	    config_default_text);
	harness_write_file(conf, text);
	free(text);

	ck_assert_int_eq(ctl_run(tmp, table, &out, &err), 0);
	ck_assert_msg(
	    starts_with(out, "City progress toward the plan's targets (2025 "
			     "figures)\n(synthetic sample data)\nmetric "),
	    "%s", out);
	ck_assert_ptr_null(strstr(out, "2027"));
	line = line_with(out, "metric ");
	ck_assert_ptr_nonnull(strstr(line,
	    "  target 2028  progress 2028  target 2030  progress 2030  "
	    "target 2035  progress 2035  "));
	free(line);
	line = line_with(out, "output_value");
	ck_assert_ptr_nonnull(strstr(line,
	    "   4000          60.0%         5000          48.0%        10000 "
	    "         24.0%  "));
	free(line);
	line = line_with(out, "chain_leaders");
	ck_assert_ptr_nonnull(strstr(line,
	    "      -              -           20          60.0%            - "
	    "             -  "));
	free(line);
	free(out);
	free(err);

	ck_assert_int_eq(ctl_run(tmp, json, &out, &err), 0);
	line = line_with(out, "\"metric\":\"output_value\"");
	ck_assert_ptr_nonnull(strstr(line,
	    "\"targets\":[{\"year\":2028,\"target\":4000,\"progress\":"
	    "0.600125},{\"year\":2030,"));
	ck_assert_ptr_nonnull(strstr(line, "\"synthetic\":true}"));
	free(line);
	free(out);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

/* Runs gen-sample into dir; returns its stderr. */
static char *
gen_sample(const char *dir)
{
	const char *argv[] = { GEN_SAMPLE_BIN, dir, NULL };
	char *out, *err;

	ck_assert_int_eq(harness_run(argv, &out, &err, RUN_TIMEOUT), 0);
	ck_assert_str_eq(out, "");
	free(out);
	return err;
}

START_TEST(test_sample_deterministic)
{
	char *tmp = harness_tmpdir(), *err, a[600], b[600], want[700];

	snprintf(a, sizeof(a), "%s/a", tmp);
	snprintf(b, sizeof(b), "%s/b", tmp);
	err = gen_sample(a);
	snprintf(want, sizeof(want),
	    "indicator-gen-sample: wrote 10 files (2720 rows) of synthetic "
	    "data to %s\n",
	    a);
	ck_assert_str_eq(err, want);
	free(err);
	free(gen_sample(b));
	for (size_t d = 0; d < NSAMPLE; d++) {
		char pa[700], pb[700], *fa, *fb;

		snprintf(pa, sizeof(pa), "%s/%s.csv", a, sample_districts[d]);
		snprintf(pb, sizeof(pb), "%s/%s.csv", b, sample_districts[d]);
		fa = harness_read_file(pa);
		fb = harness_read_file(pb);
		ck_assert_ptr_nonnull(fa);
		ck_assert_ptr_nonnull(fb);
		ck_assert_str_eq(fa, fb);
		free(fa);
		free(fb);
	}
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

/* What the sample holds, summed city-wide, canonical units. */
struct sample_sums {
	const struct registry *reg;
	double output[5][REG_INDUSTRIES_MAX]; /* by year 2021.. */
	double year_total[5];
	double quarter_total;
	double stocks[REG_METRICS_MAX][5];
	unsigned long rows;
	unsigned long bad_note;
	unsigned long bad_status;
	struct store_txn *txn; /* when set, rows are stored too */
	const char *district;
};

static int
sample_row(const struct csv_row *r, void *arg)
{
	struct sample_sums *s = arg;
	const struct reg_metric *m = registry_metric(s->reg, r->metric);
	const struct reg_industry *ind = registry_industry(s->reg, r->industry);
	const struct reg_unit *u;
	int year = atoi(r->period);
	bool quarter = strchr(r->period, 'Q') != NULL;
	double v;

	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(ind);
	ck_assert_int_ge(year, 2021);
	ck_assert_int_le(year, 2025);
	u = registry_metric_unit(m, r->unit);
	ck_assert_msg(u != NULL, "unit %s for %s", r->unit, r->metric);
	v = r->value * u->factor;
	s->rows++;
	s->bad_note += strcmp(r->note, "synthetic sample data") != 0;
	s->bad_status += r->status != (year == 2025 ? 1 : 2);
	if (strcmp(r->metric, "output_value") == 0) {
		if (quarter)
			s->quarter_total += v;
		else {
			s->output[year - 2021][ind - s->reg->industries] += v;
			s->year_total[year - 2021] += v;
		}
	} else {
		ck_assert_double_eq(r->value, floor(r->value));
		s->stocks[m - s->reg->metrics][year - 2021] += v;
	}
	if (s->txn != NULL) {
		struct store_obs o = obs_make(s->district, r->industry,
		    r->metric, r->period, v, m->unit, r->status, r->note);

		o.sent_value = r->value;
		strlcpy_ok(o.sent_unit, r->unit, sizeof(o.sent_unit));
		ck_assert_int_eq(store_obs_put(s->txn, &o, NULL, NULL), 0);
	}
	return 0;
}

/* Parses every sample file with the agent's CSV parser. */
static void
sample_read(const char *dir, struct sample_sums *s)
{
	for (size_t d = 0; d < NSAMPLE; d++) {
		char path[700], *text;
		struct csv_parser *p = csv_new(sample_row, s);

		snprintf(
		    path, sizeof(path), "%s/%s.csv", dir, sample_districts[d]);
		text = harness_read_file(path);
		ck_assert_ptr_nonnull(text);
		ck_assert_msg(starts_with(text,
				  "industry,metric,period,value,unit,status,"
				  "note\n"),
		    "header of %s", path);
		s->district = sample_districts[d];
		ck_assert_int_eq(csv_feed(p, text, strlen(text)), 0);
		ck_assert_msg(csv_finish(p) == 0, "%s:%u: %s", path,
		    csv_error_line(p), csv_error(p));
		ck_assert_uint_eq(csv_rows(p), 8 * (5 * 6 + 4));
		csv_destroy(&p);
		free(text);
	}
}

START_TEST(test_sample_plausible)
{
	char *tmp = harness_tmpdir(), dir[600];
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	struct sample_sums *s = xcalloc(1, sizeof(*s));
	static const struct {
		const char *metric;
		double target;
	} stock[] = { { "innovation_platforms", 10 }, { "chain_leaders", 20 },
		{ "pilot_parks", 10 }, { "core_products", 100 },
		{ "app_scenarios", 100 } };
	char err[256];
	const struct reg_industry *mat;

	ck_assert_int_eq(config_load(cfg, NULL, err, sizeof(err)), 0);
	s->reg = &cfg->reg;
	snprintf(dir, sizeof(dir), "%s/sample", tmp);
	free(gen_sample(dir));
	sample_read(dir, s);
	ck_assert_uint_eq(s->rows, 2720);
	ck_assert_uint_eq(s->bad_note, 0);
	ck_assert_uint_eq(s->bad_status, 0);

	ck_assert_double_ge(s->year_total[0], 1000);
	ck_assert_double_le(s->year_total[0], 1250);
	ck_assert_double_ge(s->year_total[4], 2200);
	ck_assert_double_le(s->year_total[4], 2600);
	for (int y = 1; y < 5; y++)
		ck_assert_double_gt(s->year_total[y], s->year_total[y - 1]);
	ck_assert_double_eq_tol(
	    s->quarter_total, s->year_total[4], 0.03 * s->year_total[4]);
	for (int y = 0; y < 5; y++)
		for (size_t i = 0; i < cfg->reg.nindustries; i++)
			ck_assert_double_lt(s->output[y][i], 1000);
	mat = registry_industry(&cfg->reg, "materials");
	ck_assert_double_ge(s->output[4][mat - cfg->reg.industries], 800);

	for (size_t k = 0; k < sizeof(stock) / sizeof(stock[0]); k++) {
		const struct reg_metric *m =
		    registry_metric(&cfg->reg, stock[k].metric);
		size_t mi = (size_t)(m - cfg->reg.metrics);

		ck_assert_double_gt(s->stocks[mi][4], 0);
		ck_assert_double_lt(s->stocks[mi][4], stock[k].target);
		for (int y = 1; y < 5; y++)
			ck_assert_double_ge(
			    s->stocks[mi][y], s->stocks[mi][y - 1]);
	}
	free(s);
	free(cfg);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

/* The sample, stored as the daemon would store it, read back by city. */
START_TEST(test_city_sample)
{
	char *tmp = harness_tmpdir(), dir[600], data[600], *out, *err, *line;
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	struct sample_sums *s = xcalloc(1, sizeof(*s));
	const char *table[] = { "city", NULL };
	const char *json[] = { "city", "--json", NULL };
	struct store *st;
	char msg[256];

	ck_assert_int_eq(config_load(cfg, NULL, msg, sizeof(msg)), 0);
	s->reg = &cfg->reg;
	snprintf(dir, sizeof(dir), "%s/sample", tmp);
	snprintf(data, sizeof(data), "%s/data", tmp);
	free(gen_sample(dir));
	st = store_rw(data);
	s->txn = store_txn_begin(st, true);
	sample_read(dir, s);
	ck_assert_int_eq(store_txn_commit(&s->txn), 0);
	store_close(&st);

	ck_assert_int_eq(ctl_run(data, table, &out, &err), 0);
	ck_assert_msg(
	    starts_with(out, "City of Suzhou, future industries, 2025\n"
			     "(synthetic sample data)\n"),
	    "%s", out);
	line = line_with(out, "all industries");
	ck_assert_ptr_nonnull(strstr(line, "10/10"));
	free(line);
	free(out);
	free(err);

	ck_assert_int_eq(ctl_run(data, json, &out, &err), 0);
	for (size_t i = 0; i < cfg->reg.nindustries; i++) {
		char key[64];

		snprintf(key, sizeof(key), "\"industry\":\"%s\"",
		    cfg->reg.industries[i].code);
		line = line_with(out, key);
		ck_assert_double_eq_tol(
		    json_number_after(line, "\"output_value\":{\"value\":"),
		    s->output[4][i], 1e-6);
		ck_assert_ptr_nonnull(strstr(line, "\"synthetic\":true"));
		free(line);
	}
	line = line_with(out, "\"industry\":\"*\"");
	ck_assert_double_eq_tol(
	    json_number_after(line, "\"output_value\":{\"value\":"),
	    s->year_total[4], 1e-6);
	free(line);
	free(out);
	free(err);
	free(s);
	free(cfg);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

static Suite *
ctl_suite(void)
{
	Suite *s = suite_create("ctl");
	TCase *tc = tcase_create("indicatorctl");
	TCase *gen = tcase_create("gen-sample");

	tcase_add_test(tc, test_no_store);
	tcase_add_loop_test(
	    tc, test_usage, 0, sizeof(usage_cases) / sizeof(usage_cases[0]));
	tcase_add_test(tc, test_empty_store);
	tcase_add_test(tc, test_query_json);
	tcase_add_loop_test(tc, test_query_filter, 0,
	    sizeof(filter_cases) / sizeof(filter_cases[0]));
	tcase_add_test(tc, test_query_table);
	tcase_add_test(tc, test_history);
	tcase_add_test(tc, test_agents);
	tcase_add_test(tc, test_city_small);
	tcase_add_test(tc, test_city_sample);
	tcase_add_test(tc, test_aggregates_table);
	tcase_add_test(tc, test_aggregates_json);
	tcase_add_test(tc, test_aggregates_bad);
	tcase_add_test(tc, test_progress_table);
	tcase_add_test(tc, test_progress_json);
	tcase_add_test(tc, test_progress_synthetic_and_years);
	suite_add_tcase(s, tc);
	tcase_add_test(gen, test_sample_deterministic);
	tcase_add_test(gen, test_sample_plausible);
	suite_add_tcase(s, gen);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(ctl_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
