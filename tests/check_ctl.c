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
#include <sys/stat.h>

#include "aggregate.h"
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
	return harness_ctl_run(NULL, dir, args, out, err, RUN_TIMEOUT);
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
	{ { "expected", NULL } },
	{ { "expected", "2025-13", NULL } },
	{ { "expected", "25", "--json", NULL } },
	{ { "expected", "2025", "--metric", NULL } },
	{ { "expected", "2025", "2024", NULL } },
	{ { "export", "bogus", NULL } },
	{ { "export", "--prefix", "agg/", NULL } },
	{ { "export", "observations", "--format", "xml", NULL } },
	{ { "export", "--format", "agent", NULL } },
	{ { "export", "aggregates", "--format", "agent", "--district", "1" } },
	{ { "backup", NULL } },
	{ { "backup", "a", "b", NULL } },
	{ { "verify", "extra", NULL } },
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
	    "\"agent_id\":\"agent-1\",\"epoch\":\"18446744073709551615\","
	    "\"seq\":\"1\",\"sent_at_ms\":\"1735787044000\","
	    "\"stored_at_ms\":\"1735787045000\",\"revision\":1}\n");
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
	ck_assert_uint_eq(harness_count_newlines(out), c->nlines);
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
	ck_assert_int_eq(ctl_run(tmp, args, &out, &err), 0);
	/* Header, rule, two rows in key order (320508 before 320583). */
	ck_assert_uint_eq(harness_count_newlines(out), 4);
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
	ck_assert_ptr_nonnull(strstr(l2, "2025-01-02T11:04:05+08:00"));
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
	ck_assert_uint_eq(harness_count_newlines(out), 3);
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
	ck_assert_uint_eq(harness_count_newlines(out), 5);
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
	    "{\"agent_id\":\"gusu\\\"01\",\"epoch\":\"5\",\"last_seq\":\"1\","
	    "\"accepted\":\"1\",\"rejected\":\"0\","
	    "\"first_seen_ms\":\"1735787045000\","
	    "\"last_seen_ms\":\"1735787045000\"}\n"
	    "{\"agent_id\":\"kunshan-01\","
	    "\"epoch\":\"18446744073709551615\","
	    "\"last_seq\":\"42\",\"accepted\":\"40\",\"rejected\":\"2\","
	    "\"first_seen_ms\":\"1735787045000\","
	    "\"last_seen_ms\":\"1735787999000\"}\n");
	free(out);
	free(err);

	ck_assert_int_eq(ctl_run(tmp, table, &out, &err), 0);
	ck_assert_uint_eq(harness_count_newlines(out), 4);
	ck_assert_ptr_nonnull(strstr(out, "kunshan-01"));
	ck_assert_ptr_nonnull(strstr(out, "2025-01-02T11:19:59+08:00"));
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
	char *line = harness_line_with(out, needle);

	ck_assert_msg(line != NULL, "no line with %s", needle);
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
	ck_assert_uint_eq(harness_count_newlines(out), 9);
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
	ck_assert_int_eq(ctl_run(tmp, args, &out, &err), 0);
	ck_assert_str_eq(out,
	    "topic                                       value  unit      "
	    "reporting  target  target year  progress  rev  seq  updated at\n"
	    "-----------------------------------------  ------  --------  "
	    "---------  ------  -----------  --------  ---  ---  "
	    "-------------------------\n"
	    "agg/chain_leaders/*/city/2024                  12  count     "
	    "     7/10      20         2030     60.0%    2   12  "
	    "2025-01-02T11:04:17+08:00\n"
	    "agg/clusters_100bn/*/city/2025                  0  count     "
	    "    10/10       1         2035      0.0%    1   40  "
	    "2025-01-02T11:04:45+08:00\n"
	    "agg/output_value/*/city/2025               2400.5  CNY_100M  "
	    "    10/10    5000         2030     48.0%    3   41  "
	    "2025-01-02T11:04:46+08:00\n"
	    "agg/output_value/materials/320583/2025-Q3   12.34  CNY_100M  "
	    "      1/1       -            -         -    1    7  "
	    "2025-01-02T11:04:12+08:00\n");
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
	ck_assert_uint_eq(harness_count_newlines(out), NSOME);
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
	    "\"progress\":0.4801,\"revision\":\"3\",\"seq\":\"41\","
	    "\"updated_at_ms\":\"1735787086000\"}");
	free(line);
	line = line_with(out, "\"scope\":\"320583\"");
	ck_assert_ptr_nonnull(strstr(line, "\"period\":\"2025-Q3\""));
	ck_assert_ptr_nonnull(strstr(line, "\"value\":12.34,"));
	ck_assert_ptr_nonnull(strstr(line, "\"districts_reporting\":1,"));
	ck_assert_ptr_nonnull(strstr(line,
	    "\"target\":null,\"target_year\":null,\"progress\":null,"
	    "\"revision\":\"1\",\"seq\":\"7\","));
	free(line);
	free(out);
	free(err);

	/* Only the topics under the prefix. */
	ck_assert_int_eq(ctl_run(tmp, prefix, &out, &err), 0);
	ck_assert_uint_eq(harness_count_newlines(out), 2);
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
	ck_assert_uint_eq(harness_count_newlines(out), NSOME);
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
	ck_assert_uint_eq(harness_count_newlines(out), 7);
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

/* Every registry metric of every district for period, in canonical units,
 * except the (district, metric) pairs in skip ("DISTRICT/METRIC"). */
static void
store_expected(const char *dir, const char *period, const char *const skip[])
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	struct store *s;
	struct store_txn *t;
	char err[256], pair[80];

	ck_assert_int_eq(config_load(cfg, NULL, err, sizeof(err)), 0);
	s = store_rw(dir);
	t = store_txn_begin(s, true);
	ck_assert_ptr_nonnull(t);
	for (size_t d = 0; d < cfg->reg.ndistricts; d++)
		for (size_t m = 0; m < cfg->reg.nmetrics; m++) {
			const struct reg_metric *rm = &cfg->reg.metrics[m];
			struct store_obs o;
			bool skipped = false;

			snprintf(pair, sizeof(pair), "%s/%s",
			    cfg->reg.districts[d].code, rm->code);
			for (size_t k = 0; skip[k] != NULL; k++)
				skipped |= strcmp(skip[k], pair) == 0;
			if (skipped)
				continue;
			/* Any industry counts. */
			o = obs_make(cfg->reg.districts[d].code,
			    m % 2 ? "quantum" : "materials", rm->code, period,
			    1, rm->unit, 2, "");
			ck_assert_int_eq(store_obs_put(t, &o, NULL, NULL), 0);
		}
	ck_assert_int_eq(store_txn_commit(&t), 0);
	store_close(&s);
	free(cfg);
}

static const char *const expected_skip[] = { "320583/chain_leaders",
	"320583/pilot_parks", "320508/output_value",
	"320508/innovation_platforms", "320508/chain_leaders",
	"320508/pilot_parks", "320508/core_products", "320508/app_scenarios",
	NULL };

static const struct expected_case {
	const char *args[6];
	int status;
	const char *lines[4]; /* each a whole line of the output */
	size_t nlines;
} expected_cases[] = {
	{ { "expected", "2025", NULL }, 1,
	    { "320508    姑苏区               output_value "
	      "innovation_platforms chain_leaders pilot_parks core_products "
	      "app_scenarios",
		"320583    昆山市               chain_leaders pilot_parks",
		"320505    虎丘区 (苏州高新区)  complete",
		"8 of 10 districts complete for 2025" },
	    13 },
	{ { "expected", "2025", "--metric", "chain_leaders", NULL }, 1,
	    { "320508    姑苏区               chain_leaders",
		"320583    昆山市               chain_leaders",
		"8 of 10 districts complete for 2025" },
	    13 },
	{ { "expected", "2025", "--metric=core_products", NULL }, 1,
	    { "320583    昆山市               complete",
		"320508    姑苏区               core_products",
		"9 of 10 districts complete for 2025" },
	    13 },
	/* The period is exact: the year does not cover its quarters. */
	{ { "expected", "2025-Q1", NULL }, 1,
	    { "0 of 10 districts complete for 2025-Q1" }, 13 },
	{ { "expected", "2024", NULL }, 0,
	    { "10 of 10 districts complete for 2024",
		"320508    姑苏区               complete" },
	    13 },
	{ { "expected", "2025", "--json", NULL }, 1,
	    { "{\"district\":\"320583\",\"name\":\"昆山市\","
	      "\"period\":\"2025\",\"missing\":[\"chain_leaders\","
	      "\"pilot_parks\"],\"reported\":[\"output_value\","
	      "\"innovation_platforms\",\"core_products\","
	      "\"app_scenarios\"]}",
		"{\"district\":\"320508\",\"name\":\"姑苏区\","
		"\"period\":\"2025\",\"missing\":[\"output_value\","
		"\"innovation_platforms\",\"chain_leaders\",\"pilot_parks\","
		"\"core_products\",\"app_scenarios\"],\"reported\":[]}",
		"{\"district\":\"320576\",\"name\":\"苏州工业园区\","
		"\"period\":\"2025\",\"missing\":[],\"reported\":["
		"\"output_value\",\"innovation_platforms\",\"chain_leaders\","
		"\"pilot_parks\",\"core_products\",\"app_scenarios\"]}" },
	    10 },
	{ { "expected", "2024", "--json", "--metric", "pilot_parks", NULL }, 0,
	    { "{\"district\":\"320505\",\"name\":\"虎丘区 (苏州高新区)\","
	      "\"period\":\"2024\",\"missing\":[],"
	      "\"reported\":[\"pilot_parks\"]}" },
	    10 },
};

/* Who has not reported: 320583 two metrics, 320508 nothing for 2025;
 * everybody everything for 2024. */
START_TEST(test_expected)
{
	const struct expected_case *c = &expected_cases[_i];
	char *tmp = harness_tmpdir(), *out, *err, *line;
	const char *const none[] = { NULL };
	const char *args[8] = { NULL };

	for (size_t i = 0; i < 6 && c->args[i] != NULL; i++)
		args[i] = c->args[i];
	store_expected(tmp, "2025", expected_skip);
	store_expected(tmp, "2024", none);
	ck_assert_int_eq(ctl_run(tmp, args, &out, &err), c->status);
	ck_assert_str_eq(err, "");
	ck_assert_uint_eq(harness_count_newlines(out), c->nlines);
	for (size_t i = 0; i < 4 && c->lines[i] != NULL; i++) {
		line = line_with(out, c->lines[i]);
		ck_assert_str_eq(line, c->lines[i]);
		free(line);
	}
	free(out);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

START_TEST(test_expected_table)
{
	char *tmp = harness_tmpdir(), *out, *err;
	const char *args[] = { "expected", "2025", "--metric", "pilot_parks",
		NULL };
	const char *bad[] = { "expected", "2025", "--metric", "clusters_100bn",
		NULL };

	store_expected(tmp, "2025", expected_skip);
	ck_assert_int_eq(ctl_run(tmp, args, &out, &err), 1);
	ck_assert_str_eq(out, "district  name                 missing\n"
			      "--------  -------------------  -----------\n"
			      "320505    虎丘区 (苏州高新区)  complete\n"
			      "320506    吴中区               complete\n"
			      "320507    相城区               complete\n"
			      "320508    姑苏区               pilot_parks\n"
			      "320509    吴江区               complete\n"
			      "320576    苏州工业园区         complete\n"
			      "320581    常熟市               complete\n"
			      "320582    张家港市             complete\n"
			      "320583    昆山市               pilot_parks\n"
			      "320585    太仓市               complete\n"
			      "8 of 10 districts complete for 2025\n");
	free(out);
	free(err);
	/* A metric that districts do not report is a usage error. */
	ck_assert_int_eq(ctl_run(tmp, bad, &out, &err), 2);
	ck_assert_ptr_nonnull(strstr(
	    err, "indicatorctl: expected: unknown metric 'clusters_100bn'\n"));
	free(out);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

/*
 * Splits the RFC 4180 record at *p into at most max fields (copies the
 * caller frees) and moves *p past it. Returns the number of fields, 0 at
 * the end of the text.
 */
static size_t
rfc4180_record(const char **p, char *field[], size_t max)
{
	const char *s = *p;
	size_t n = 0;

	if (*s == '\0')
		return 0;
	for (;;) {
		char *buf = xmalloc(strlen(s) + 1);
		size_t len = 0;

		if (*s == '"') {
			for (s++; *s != '\0'; s++) {
				if (*s == '"' && s[1] == '"')
					s++;
				else if (*s == '"')
					break;
				buf[len++] = *s;
			}
			ck_assert_int_eq(*s, '"');
			s++;
		} else {
			while (*s != '\0' && *s != ',' && *s != '\n')
				buf[len++] = *s++;
		}
		buf[len] = '\0';
		ck_assert_uint_lt(n, max);
		field[n++] = buf;
		if (*s != ',')
			break;
		s++;
	}
	ck_assert_int_eq(*s, '\n');
	*p = s + 1;
	return n;
}

/* What the agent's parser made of the exported rows. */
struct reread {
	struct store_obs want[4];
	size_t n;
};

static int
reread_row(const struct csv_row *r, void *arg)
{
	struct reread *rr = arg;
	const struct store_obs *o;

	ck_assert_uint_lt(rr->n, 4);
	o = &rr->want[rr->n++];
	ck_assert_str_eq(r->industry, o->industry);
	ck_assert_str_eq(r->metric, o->metric);
	ck_assert_str_eq(r->period, o->period);
	ck_assert_msg(memcmp(&r->value, &o->value, sizeof(double)) == 0,
	    "value %.17g, stored %.17g", r->value, o->value);
	ck_assert_str_eq(r->unit, o->unit);
	ck_assert_int_eq(r->status, o->status);
	ck_assert_str_eq(r->note, o->note);
	return 0;
}

static void
reread_csv(const char *text, struct reread *rr)
{
	struct csv_parser *p = csv_new(reread_row, rr);

	ck_assert_int_eq(csv_feed(p, text, strlen(text)), 0);
	ck_assert_msg(
	    csv_finish(p) == 0, "line %u: %s", csv_error_line(p), csv_error(p));
	csv_destroy(&p);
}

/* Key order: 320505 before 320583, chain_leaders before output_value. */
static void
export_obs(struct store_obs o[3])
{
	o[0] = obs_make("320583", "photonics", "output_value", "2025", 12.34,
	    "CNY_100M", 3, "say \"hi\", then\tbye,");
	o[0].sent_value = 123400;
	strlcpy_ok(o[0].sent_unit, "CNY_10K", sizeof(o[0].sent_unit));
	o[1] = obs_make(
	    "320505", "materials", "chain_leaders", "2024", 3, "count", 0, "");
	o[1].epoch = UINT64_MAX;
	o[2] = obs_make("320505", "materials", "output_value", "2025",
	    0.1 + 0.2, "CNY_100M", 1, "  spaces kept ");
}

START_TEST(test_export_csv)
{
	char *tmp = harness_tmpdir(), *out, *err, *field[20], *agent;
	const char *csv[] = { "export", NULL };
	const char *one[] = { "export", "observations", "--district", "320505",
		"--format", "agent", NULL };
	struct store_obs o[3];
	struct reread rr;
	const char *p;
	size_t n, len = 0;

	memset(&rr, 0, sizeof(rr));
	export_obs(o);
	store_fill(tmp, o, 3);
	ck_assert_int_eq(ctl_run(tmp, csv, &out, &err), 0);
	ck_assert_str_eq(err, "");
	ck_assert_str_eq(out,
	    "district,industry,metric,period,value,unit,sent_value,sent_unit,"
	    "status,note,agent_id,epoch,seq,sent_at_ms,stored_at_ms,revision\n"
	    "320505,materials,chain_leaders,2024,3,count,3,count,,,agent-1,"
	    "18446744073709551615,1,1735787044000,1735787045000,1\n"
	    "320505,materials,output_value,2025,0.30000000000000004,CNY_100M,"
	    "0.30000000000000004,CNY_100M,provisional,  spaces kept ,agent-1,"
	    "7,1,1735787044000,1735787045000,1\n"
	    "320583,photonics,output_value,2025,12.34,CNY_100M,123400,CNY_10K,"
	    "revised,\"say \"\"hi\"\", then\tbye,\",agent-1,7,1,"
	    "1735787044000,1735787045000,1\n");

	/* The agent's columns of the export, fed to the agent's own CSV
	 * parser, give back the stored rows bit for bit. */
	agent = xmalloc(strlen(out) * 2 + 64);
	p = out;
	while ((n = rfc4180_record(&p, field, 20)) > 0) {
		static const int cols[] = { 1, 2, 3, 4, 5, 8, 9 };

		ck_assert_uint_eq(n, 16);
		for (size_t c = 0; c < 7; c++) {
			const char *f = field[cols[c]];

			agent[len++] = '"';
			for (; *f != '\0'; f++) {
				if (*f == '"')
					agent[len++] = '"';
				agent[len++] = *f;
			}
			agent[len++] = '"';
			agent[len++] = c == 6 ? '\n' : ',';
		}
		for (size_t i = 0; i < n; i++)
			free(field[i]);
	}
	agent[len] = '\0';
	rr.want[0] = o[1];
	rr.want[1] = o[2];
	rr.want[2] = o[0];
	reread_csv(agent, &rr);
	ck_assert_uint_eq(rr.n, 3);
	free(agent);
	free(out);
	free(err);

	/* --format agent: one district's export is the agent's input. */
	ck_assert_int_eq(ctl_run(tmp, one, &out, &err), 0);
	ck_assert_str_eq(out,
	    "industry,metric,period,value,unit,status,note\n"
	    "materials,chain_leaders,2024,3,count,,\n"
	    "materials,output_value,2025,0.30000000000000004,CNY_100M,"
	    "provisional,  spaces kept \n");
	rr.n = 0;
	rr.want[0] = o[1];
	rr.want[1] = o[2];
	reread_csv(out, &rr);
	ck_assert_uint_eq(rr.n, 2);
	free(out);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

static const struct export_filter_case {
	const char *args[8];
	size_t nlines; /* with the header */
	const char *each;
} export_filter_cases[] = {
	{ { "export", "--district", "320583", NULL }, 2, "320583," },
	{ { "export", "observations", "--metric=output_value", NULL }, 3,
	    ",output_value," },
	{ { "export", "--period", "2024", "--industry", "materials", NULL }, 2,
	    ",2024," },
	{ { "export", "--district", "320508", NULL }, 1, "" },
	{ { "export", "aggregates", NULL }, 1 + NSOME, "agg/" },
	{ { "export", "aggregates", "--prefix", "agg/output_value/", NULL }, 3,
	    "agg/output_value/" },
	{ { "export", "aggregates", "--district", "city", "--period", "2025",
	      NULL },
	    3, "/city/2025," },
	{ { "export", "aggregates", "--metric", "output_value", "--industry",
	      "materials", NULL },
	    2, "agg/output_value/materials/320583/2025-Q3," },
};

START_TEST(test_export_filter)
{
	const struct export_filter_case *c = &export_filter_cases[_i];
	char *tmp = harness_tmpdir(), *out, *err, *line, *save = NULL;
	const char *args[10] = { NULL };
	struct store_obs o[3];

	for (size_t i = 0; i < 8 && c->args[i] != NULL; i++)
		args[i] = c->args[i];
	export_obs(o);
	store_fill(tmp, o, 3);
	store_aggs(tmp, some_aggs, NSOME);
	ck_assert_int_eq(ctl_run(tmp, args, &out, &err), 0);
	ck_assert_str_eq(err, "");
	/* The note of 320583 spans lines: count records, not lines. */
	if (strstr(out, "\"say") == NULL)
		ck_assert_uint_eq(harness_count_newlines(out), c->nlines);
	line = strtok_r(out, "\n", &save);
	ck_assert_ptr_nonnull(line);
	ck_assert(
	    starts_with(line, "district,") || starts_with(line, "topic,"));
	while ((line = strtok_r(NULL, "\n", &save)) != NULL)
		if (starts_with(line, "3205"))
			ck_assert_msg(strstr(line, c->each) != NULL,
			    "%s lacks %s", line, c->each);
		else if (starts_with(line, "agg/"))
			ck_assert_msg(strstr(line, c->each) != NULL,
			    "%s lacks %s", line, c->each);
	free(out);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

/* JSON Lines are the lines query and aggregates print; CSV numbers read
 * back exactly. */
START_TEST(test_export_json)
{
	char *tmp = harness_tmpdir(), *out, *err, *want;
	const char *obs[] = { "export", "--format", "json", NULL };
	const char *query[] = { "query", "--json", NULL };
	const char *aggs[] = { "export", "aggregates", "--json", NULL };
	const char *aggregates[] = { "aggregates", "--json", NULL };
	const char *csv[] = { "export", "aggregates", "--format=csv", NULL };
	struct store_obs o[3];

	export_obs(o);
	store_fill(tmp, o, 3);
	store_aggs(tmp, some_aggs, NSOME);
	ck_assert_int_eq(ctl_run(tmp, query, &want, &err), 0);
	free(err);
	ck_assert_int_eq(ctl_run(tmp, obs, &out, &err), 0);
	ck_assert_uint_eq(harness_count_newlines(out), 3);
	ck_assert_str_eq(out, want);
	free(out);
	free(err);
	free(want);

	ck_assert_int_eq(ctl_run(tmp, aggregates, &want, &err), 0);
	free(err);
	ck_assert_int_eq(ctl_run(tmp, aggs, &out, &err), 0);
	ck_assert_uint_eq(harness_count_newlines(out), NSOME);
	ck_assert_str_eq(out, want);
	free(out);
	free(err);
	free(want);

	ck_assert_int_eq(ctl_run(tmp, csv, &out, &err), 0);
	ck_assert_str_eq(out,
	    "topic,metric,industry,scope,period,value,unit,"
	    "districts_reporting,districts_expected,target,target_year,"
	    "progress,revision,seq,updated_at_ms\n"
	    "agg/chain_leaders/*/city/2024,chain_leaders,*,city,2024,12,count,"
	    "7,10,20,2030,0.6,2,12,1735787057000\n"
	    "agg/clusters_100bn/*/city/2025,clusters_100bn,*,city,2025,0,count,"
	    "10,10,1,2035,0,1,40,1735787085000\n"
	    "agg/output_value/*/city/2025,output_value,*,city,2025,2400.5,"
	    "CNY_100M,10,10,5000,2030,0.4801,3,41,1735787086000\n"
	    "agg/output_value/materials/320583/2025-Q3,output_value,materials,"
	    "320583,2025-Q3,12.34,CNY_100M,1,1,,,,1,7,1735787052000\n");
	free(out);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

struct lookup_txn {
	struct store_txn *t;
};

static int
lookup_store(void *arg, const char *district, const char *industry,
    const char *metric, const char *period, double *value)
{
	struct lookup_txn *l = arg;
	struct store_obs o;
	int rc = store_obs_get(l->t, district, industry, metric, period, &o);

	if (rc == STORE_NOTFOUND)
		return 0;
	ck_assert_int_eq(rc, 0);
	*value = o.value;
	return 1;
}

/* Stores the observations and, as the daemon would, every aggregate they
 * lead to. Returns the number of aggregates. */
static size_t
store_consistent(const char *dir, struct store_obs *o, size_t n)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	struct store *s;
	struct lookup_txn l;
	size_t naggs = 0;
	char err[256];

	ck_assert_int_eq(config_load(cfg, NULL, err, sizeof(err)), 0);
	store_fill(dir, o, n);
	s = store_rw(dir);
	l.t = store_txn_begin(s, true);
	for (size_t i = 0; i < n; i++) {
		struct agg_key k[AGG_AFFECTED_MAX];
		size_t nk = agg_affected(
		    o[i].district, o[i].industry, o[i].metric, o[i].period, k);

		for (size_t j = 0; j < nk; j++) {
			Indicator__Aggregate a = INDICATOR__AGGREGATE__INIT;
			char topic[IND_TOPIC_MAX + 1];
			const void *old;
			struct agg_value v;
			uint8_t buf[512];
			size_t len;

			agg_topic(&k[j], topic, sizeof(topic));
			if (store_agg_get(l.t, topic, &old, &len) == 0)
				continue;
			ck_assert_int_eq(
			    agg_compute(&cfg->reg, &k[j], lookup_store, &l, &v),
			    1);
			a.metric = k[j].metric;
			a.industry = k[j].industry;
			a.scope = k[j].scope;
			a.period = k[j].period;
			a.value = v.value;
			a.unit = v.unit;
			a.districts_reporting = v.districts_reporting;
			a.districts_expected = v.districts_expected;
			a.target = v.target;
			a.target_year = v.target_year;
			a.progress = v.progress;
			a.revision = 1;
			a.seq = ++naggs;
			len = indicator__aggregate__pack(&a, buf);
			ck_assert_int_eq(
			    store_agg_put(l.t, topic, buf, len), 0);
		}
	}
	ck_assert_int_eq(store_txn_commit(&l.t), 0);
	store_close(&s);
	free(cfg);
	return naggs;
}

/* Replaces the stored aggregate's value (and, when reporting is nonzero,
 * districts_reporting). */
static void
agg_tamper(const char *dir, const char *topic, double value, uint32_t reporting)
{
	struct store *s = store_rw(dir);
	struct store_txn *t = store_txn_begin(s, true);
	Indicator__Aggregate *a;
	const void *old;
	uint8_t buf[512];
	size_t len;

	ck_assert_int_eq(store_agg_get(t, topic, &old, &len), 0);
	a = indicator__aggregate__unpack(NULL, len, old);
	ck_assert_ptr_nonnull(a);
	a->value = value;
	if (reporting != 0)
		a->districts_reporting = reporting;
	len = indicator__aggregate__pack(a, buf);
	indicator__aggregate__free_unpacked(a, NULL);
	ck_assert_int_eq(store_agg_put(t, topic, buf, len), 0);
	ck_assert_int_eq(store_txn_commit(&t), 0);
	store_close(&s);
}

/* Reads an xlsx file back with openpyxl (tests/xlsx_dump.py); caller
 * frees. Fails the test when it does not open. */
static char *
xlsx_dump(const char *path)
{
	const char *argv[] = { "/usr/bin/python3",
		SOURCE_DIR "/tests/xlsx_dump.py", path, NULL };
	char *out, *err;
	int rc = harness_run(argv, &out, &err, RUN_TIMEOUT);

	ck_assert_msg(rc == 0,
	    "xlsx_dump.py %s: exit %d: %s (tools/setup.sh installs "
	    "python3-openpyxl)",
	    path, rc, err);
	free(err);
	return out;
}

/*
 * export --format xlsx: a workbook that opens, with the registry's Chinese
 * names beside the codes, numbers as numbers, 64-bit identifiers as text,
 * local times (Asia/Shanghai, the default zone) as date-times, and empty
 * cells where no target applies.
 */
START_TEST(test_export_xlsx)
{
	char *tmp = harness_tmpdir(), *out, *err, path[700], aggs_path[700];
	const char *obs[] = { "export", "--format", "xlsx", "-o", path, NULL };
	const char *aggs[] = { "export", "aggregates", "--format=xlsx",
		"--output", aggs_path, NULL };
	const char *to_tty[] = { "export", "--format", "xlsx", NULL };
	const char *bad_bom[] = { "export", "--format", "xlsx", "--bom", "-o",
		path, NULL };
	struct store_obs o[3];

	snprintf(path, sizeof(path), "%s/obs.xlsx", tmp);
	snprintf(aggs_path, sizeof(aggs_path), "%s/aggs.xlsx", tmp);
	export_obs(o);
	o[2].value = o[2].sent_value = 0.25;
	store_fill(tmp, o, 3);
	store_aggs(tmp, some_aggs, NSOME);
	ck_assert_int_eq(ctl_run(tmp, obs, &out, &err), 0);
	ck_assert_str_eq(out, "");
	ck_assert_str_eq(err, "");
	free(out);
	free(err);
	out = xlsx_dump(path);
	ck_assert_str_eq(out,
	    "observations\n"
	    "[\"district\", \"district_name\", \"industry\", "
	    "\"industry_name\", \"metric\", \"metric_name\", \"period\", "
	    "\"value\", \"unit\", \"sent_value\", \"sent_unit\", \"status\", "
	    "\"note\", \"agent_id\", \"epoch\", \"seq\", \"sent_at\", "
	    "\"stored_at\", \"revision\"]\n"
	    "[\"320505\", \"虎丘区 (苏州高新区)\", \"materials\", "
	    "\"前沿新材料\", \"chain_leaders\", "
	    "\"链主企业 (chain-leader enterprises)\", \"2024\", 3, \"count\", "
	    "3, \"count\", null, null, \"agent-1\", "
	    "\"18446744073709551615\", \"1\", \"2025-01-02T11:04:04\", "
	    "\"2025-01-02T11:04:05\", 1]\n"
	    "[\"320505\", \"虎丘区 (苏州高新区)\", \"materials\", "
	    "\"前沿新材料\", \"output_value\", \"总产值 (output value)\", "
	    "\"2025\", 0.25, \"CNY_100M\", 0.25, \"CNY_100M\", "
	    "\"provisional\", \"  spaces kept \", \"agent-1\", \"7\", \"1\", "
	    "\"2025-01-02T11:04:04\", \"2025-01-02T11:04:05\", 1]\n"
	    "[\"320583\", \"昆山市\", \"photonics\", \"光子芯片与光器件\", "
	    "\"output_value\", \"总产值 (output value)\", \"2025\", 12.34, "
	    "\"CNY_100M\", 123400, \"CNY_10K\", \"revised\", "
	    "\"say \\\"hi\\\", then\\tbye,\", \"agent-1\", \"7\", "
	    "\"1\", \"2025-01-02T11:04:04\", \"2025-01-02T11:04:05\", 1]\n"
	    "[\"General\", \"General\", \"General\", \"General\", "
	    "\"General\", \"General\", \"General\", \"General\", "
	    "\"General\", \"General\", \"General\", \"General\", "
	    "\"General\", \"General\", \"General\", \"General\", "
	    "\"yyyy-mm-dd hh:mm:ss\", \"yyyy-mm-dd hh:mm:ss\", "
	    "\"General\"]\n"
	    "freeze A2 filter A1:S4\n");
	free(out);

	ck_assert_int_eq(ctl_run(tmp, aggs, &out, &err), 0);
	ck_assert_str_eq(err, "");
	free(out);
	free(err);
	out = xlsx_dump(aggs_path);
	ck_assert_msg(
	    starts_with(out, "aggregates\n"
			     "[\"topic\", \"metric\", \"metric_name\", "
			     "\"industry\", \"industry_name\", \"scope\", "
			     "\"scope_name\", \"period\", \"value\", \"unit\", "
			     "\"districts_reporting\", \"districts_expected\", "
			     "\"target\", \"target_year\", \"progress\", "
			     "\"revision\", \"seq\", \"updated_at\"]\n"
			     "[\"agg/chain_leaders/*/city/2024\", "
			     "\"chain_leaders\", "
			     "\"链主企业 (chain-leader enterprises)\", \"*\", "
			     "\"全部\", \"city\", \"全市\", \"2024\", 12, "
			     "\"count\", 7, 10, 20, 2030, 0.6, \"2\", \"12\", "
			     "\"2025-01-02T11:04:17\"]\n"),
	    "%s", out);
	ck_assert_msg(
	    strstr(out, "[\"agg/clusters_100bn/*/city/2025\", "
			"\"clusters_100bn\", \"千亿级创新集群\", ") != NULL,
	    "%s", out);
	ck_assert_msg(
	    strstr(out,
		"[\"agg/output_value/materials/320583/2025-Q3\", "
		"\"output_value\", \"总产值 (output value)\", \"materials\", "
		"\"前沿新材料\", \"320583\", \"昆山市\", \"2025-Q3\", 12.34, "
		"\"CNY_100M\", 1, 1, null, null, null, \"1\", \"7\", "
		"\"2025-01-02T11:04:12\"]\n") != NULL,
	    "%s", out);
	ck_assert_msg(strstr(out, "\"0.0%\", \"General\", \"General\", "
				  "\"yyyy-mm-dd hh:mm:ss\"]\n") != NULL,
	    "%s", out);
	free(out);

	/* Never to a terminal; no BOM in a workbook. */
	ck_assert_int_eq(ctl_run(tmp, to_tty, &out, &err), 2);
	ck_assert_ptr_nonnull(strstr(err, "--format xlsx needs -o FILE"));
	free(out);
	free(err);
	ck_assert_int_eq(ctl_run(tmp, bad_bom, &out, &err), 2);
	free(out);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

/* --bom puts the UTF-8 byte order mark first, for Excel; -o writes the
 * same bytes to a file. */
START_TEST(test_export_bom)
{
	char *tmp = harness_tmpdir(), *plain, *bom, *err, *file, path[700];
	const char *csv[] = { "export", NULL };
	const char *with_bom[] = { "export", "--bom", NULL };
	const char *to_file[] = { "export", "--bom", "-o", path, NULL };
	const char *json_bom[] = { "export", "--format", "json", "--bom",
		NULL };
	struct store_obs o[3];

	snprintf(path, sizeof(path), "%s/out.csv", tmp);
	export_obs(o);
	store_fill(tmp, o, 3);
	ck_assert_int_eq(ctl_run(tmp, csv, &plain, &err), 0);
	free(err);
	ck_assert_int_eq(ctl_run(tmp, with_bom, &bom, &err), 0);
	free(err);
	ck_assert(starts_with(bom, "\xef\xbb\xbf"));
	ck_assert(!starts_with(plain, "\xef\xbb\xbf"));
	ck_assert_str_eq(bom + 3, plain);
	free(bom);
	ck_assert_int_eq(ctl_run(tmp, to_file, &bom, &err), 0);
	ck_assert_str_eq(bom, "");
	free(bom);
	free(err);
	file = harness_read_file(path);
	ck_assert_ptr_nonnull(file);
	ck_assert(starts_with(file, "\xef\xbb\xbf"));
	ck_assert_str_eq(file + 3, plain);
	free(file);
	free(plain);
	ck_assert_int_eq(ctl_run(tmp, json_bom, &plain, &err), 2);
	ck_assert_ptr_nonnull(strstr(err, "--bom is for csv and agent"));
	free(plain);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

START_TEST(test_verify)
{
	char *tmp = harness_tmpdir(), *out, *err, want[128];
	struct store_obs o[] = {
		obs_make("320583", "photonics", "output_value", "2025", 600,
		    "CNY_100M", 2, ""),
		obs_make("320505", "photonics", "output_value", "2025", 400.1,
		    "CNY_100M", 2, ""),
		obs_make("320505", "materials", "output_value", "2025", 0.2,
		    "CNY_100M", 2, ""),
		obs_make("320505", "materials", "chain_leaders", "2024", 3,
		    "count", 2, ""),
		obs_make("320508", "quantum", "output_value", "2025-Q2", 0.1,
		    "CNY_100M", 2, ""),
	};
	const char *args[] = { "verify", NULL };
	const char *json[] = { "verify", "--json", NULL };
	size_t naggs;

	naggs = store_consistent(tmp, o, sizeof(o) / sizeof(o[0]));
	/* 5, then 2 and 2 new ones of 320505, then 4 and 4. */
	ck_assert_uint_eq(naggs, 17);
	ck_assert_int_eq(ctl_run(tmp, args, &out, &err), 0);
	snprintf(want, sizeof(want),
	    "verify: %zu aggregates checked, 0 differences\n", naggs);
	ck_assert_str_eq(out, want);
	ck_assert_str_eq(err, "");
	free(out);
	free(err);

	/* 0.2 + 400.1 + 600, in registry order, is 1000.3; in another
	 * order it is one bit more. */
	agg_tamper(tmp, "agg/output_value/*/city/2025", 600 + 400.1 + 0.2, 0);
	agg_tamper(tmp, "agg/chain_leaders/*/320505/2024", 3, 4);
	ck_assert_int_eq(ctl_run(tmp, args, &out, &err), 1);
	snprintf(want, sizeof(want),
	    "verify: %zu aggregates checked, 2 differences\n", naggs);
	ck_assert_ptr_nonnull(
	    strstr(out, "verify: agg/output_value/*/city/2025: value stored "
			"1000.3000000000001, recomputed 1000.3\n"));
	ck_assert_ptr_nonnull(
	    strstr(out, "verify: agg/chain_leaders/*/320505/2024: "
			"districts_reporting stored 4, recomputed 1\n"));
	ck_assert_ptr_nonnull(strstr(out, want));
	ck_assert_uint_eq(harness_count_newlines(out), 3);
	free(out);
	free(err);

	/* An aggregate that no observation supports. */
	store_aggs(tmp, some_aggs + 1, 1);
	ck_assert_int_eq(ctl_run(tmp, json, &out, &err), 1);
	ck_assert_ptr_nonnull(strstr(out,
	    "{\"topic\":\"agg/output_value/*/city/2025\","
	    "\"problem\":\"differs\",\"field\":\"value\","
	    "\"stored\":1000.3000000000001,\"recomputed\":1000.3}\n"));
	ck_assert_ptr_nonnull(strstr(out,
	    "{\"topic\":\"agg/output_value/materials/320583/2025-Q3\","
	    "\"problem\":\"unsupported\","
	    "\"detail\":\"12.34 stored, no observation behind it\"}\n"));
	snprintf(want, sizeof(want), "{\"checked\":%zu,\"differences\":3}\n",
	    naggs + 1);
	ck_assert_ptr_nonnull(strstr(out, want));
	free(out);
	free(err);
	harness_rmtree(tmp);
	free(tmp);
}
END_TEST

START_TEST(test_backup)
{
	char *tmp = harness_tmpdir(), *out, *err, data[600], copy[700],
	     want[800], file[720];
	struct store_obs o[3];
	const char *args[] = { "backup", copy, NULL };
	const char *query[] = { "query", "--json", NULL };
	char *orig;
	struct stat st;

	snprintf(data, sizeof(data), "%s/data", tmp);
	snprintf(copy, sizeof(copy), "%s/copy", tmp);
	export_obs(o);
	store_fill(data, o, 3);
	store_aggs(data, some_aggs, NSOME);
	ck_assert_int_eq(ctl_run(data, query, &orig, &err), 0);
	free(err);

	ck_assert_int_eq(ctl_run(data, args, &out, &err), 0);
	ck_assert_str_eq(err, "");
	snprintf(file, sizeof(file), "%s/data.mdb", copy);
	ck_assert_int_eq(stat(file, &st), 0);
	snprintf(want, sizeof(want),
	    "backup: 3 observations, %zu aggregates, 0 agents, %lld bytes in "
	    "%s\n",
	    NSOME, (long long)st.st_size, copy);
	ck_assert_str_eq(out, want);
	ck_assert_int_eq(stat(copy, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	free(out);
	free(err);
	ck_assert_int_eq(ctl_run(copy, query, &out, &err), 0);
	ck_assert_str_eq(out, orig);
	free(out);
	free(err);

	/* Never over something. */
	ck_assert_int_eq(ctl_run(data, args, &out, &err), 1);
	snprintf(want, sizeof(want),
	    "indicatorctl: backup: %s is not empty; give a new or empty "
	    "directory\n",
	    copy);
	ck_assert_str_eq(err, want);
	ck_assert_str_eq(out, "");
	free(out);
	free(err);
	snprintf(copy, sizeof(copy), "%s/data.mdb", data);
	ck_assert_int_eq(ctl_run(data, args, &out, &err), 1);
	snprintf(want, sizeof(want),
	    "indicatorctl: backup: %s is not a directory\n", copy);
	ck_assert_str_eq(err, want);
	free(out);
	free(err);
	/* An empty directory is fine. */
	snprintf(copy, sizeof(copy), "%s/empty", tmp);
	ck_assert_int_eq(mkdir(copy, 0755), 0);
	ck_assert_int_eq(ctl_run(data, args, &out, &err), 0);
	ck_assert(starts_with(out, "backup: 3 observations, "));
	free(out);
	free(err);
	free(orig);
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
	tcase_add_loop_test(tc, test_expected, 0,
	    sizeof(expected_cases) / sizeof(expected_cases[0]));
	tcase_add_test(tc, test_expected_table);
	tcase_add_test(tc, test_export_csv);
	tcase_add_loop_test(tc, test_export_filter, 0,
	    sizeof(export_filter_cases) / sizeof(export_filter_cases[0]));
	tcase_add_test(tc, test_export_json);
	tcase_add_test(tc, test_export_xlsx);
	tcase_add_test(tc, test_export_bom);
	tcase_add_test(tc, test_verify);
	tcase_add_test(tc, test_backup);
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
