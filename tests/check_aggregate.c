/*
 * Aggregation (core/aggregate.c) on the default registry, driven through
 * its lookup callback by tables of observations in memory: district and
 * city sums, reporting counts, the plan's targets, clusters_100bn, the keys
 * a change touches, topics, and failures passed up.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"
#include "config.h"
#include "xmalloc.h"

/* One latest observation: (district, industry, metric, period) = value. */
struct obs_row {
	const char *district;
	const char *industry;
	const char *metric;
	const char *period;
	double value;
};

/* The lookup's view: a table of rows, and whether to fail. */
struct table {
	const struct obs_row *rows;
	size_t nrows;
	bool fail;
	size_t calls;
};

static struct config cfg;

static void
setup(void)
{
	char err[512];

	ck_assert_msg(config_load(&cfg, NULL, err, sizeof(err)) == 0,
	    "default configuration: %s", err);
}

static int
lookup(void *arg, const char *district, const char *industry,
    const char *metric, const char *period, double *value)
{
	struct table *t = arg;

	t->calls++;
	if (t->fail)
		return -1;
	for (size_t i = 0; i < t->nrows; i++) {
		const struct obs_row *r = &t->rows[i];

		if (strcmp(r->district, district) == 0 &&
		    strcmp(r->industry, industry) == 0 &&
		    strcmp(r->metric, metric) == 0 &&
		    strcmp(r->period, period) == 0) {
			*value = r->value;
			return 1;
		}
	}
	return 0;
}

static struct agg_key
key_make(const char *metric, const char *industry, const char *scope,
    const char *period)
{
	struct agg_key k;

	memset(&k, 0, sizeof(k));
	ck_assert(strlcpy_ok(k.metric, metric, sizeof(k.metric)));
	ck_assert(strlcpy_ok(k.industry, industry, sizeof(k.industry)));
	ck_assert(strlcpy_ok(k.scope, scope, sizeof(k.scope)));
	ck_assert(strlcpy_ok(k.period, period, sizeof(k.period)));
	return k;
}

/* Output values (亿元) and counts, in halves and whole numbers so that every
 * sum below is exact in binary. */
static const struct obs_row base_rows[] = {
	{ "320583", "materials", "output_value", "2025", 100 },
	{ "320583", "photonics", "output_value", "2025", 250.5 },
	{ "320505", "materials", "output_value", "2025", 40 },
	{ "320508", "quantum", "output_value", "2025", 9.5 },
	{ "320583", "materials", "output_value", "2025-Q1", 20 },
	{ "320505", "materials", "output_value", "2025-Q1", 5 },
	{ "320583", "materials", "output_value", "2025-01", 7 },
	{ "320583", "materials", "output_value", "2024", 80 },
	{ "320583", "materials", "output_value", "2030", 3000 },
	{ "320505", "photonics", "output_value", "2030", 1000 },
	{ "320583", "materials", "output_value", "2031", 2500 },
	{ "320583", "materials", "output_value", "2036", 12000 },
	{ "320583", "materials", "chain_leaders", "2025", 3 },
	{ "320506", "hydrogen", "chain_leaders", "2025", 4 },
	{ "320583", "materials", "chain_leaders", "2025-Q2", 2 },
	{ "320583", "materials", "chain_leaders", "2025-06", 1 },
	/* Not of any key below: must not leak into them. */
	{ "320583", "materials", "pilot_parks", "2025", 99 },
	{ "320583", "materials", "output_value", "2026", 55 },
};

/* No industry reaches 1000 亿元 in 2025, materials comes closest. */
static const struct obs_row below_rows[] = {
	{ "320583", "materials", "output_value", "2025", 600 },
	{ "320505", "materials", "output_value", "2025", 399.5 },
	{ "320583", "photonics", "output_value", "2025", 999.5 },
	{ "320508", "quantum", "output_value", "2025", 10 },
};

/* materials reaches exactly 1000 over two districts, though no district
 * does alone; photonics stays just below. */
static const struct obs_row exact_rows[] = {
	{ "320583", "materials", "output_value", "2025", 600 },
	{ "320505", "materials", "output_value", "2025", 400 },
	{ "320583", "photonics", "output_value", "2025", 999.75 },
	{ "320583", "materials", "output_value", "2031", 600 },
	{ "320505", "materials", "output_value", "2031", 400 },
	{ "320506", "quantum", "output_value", "2031", 1500 },
};

/* Output value only by quarter, and annual figures of another metric:
 * no annual output_value, so no clusters_100bn. */
static const struct obs_row no_annual_rows[] = {
	{ "320583", "materials", "output_value", "2025-Q1", 1200 },
	{ "320583", "materials", "output_value", "2025-03", 1200 },
	{ "320583", "materials", "chain_leaders", "2025", 5 },
};

#define ROWS(a) a, sizeof(a) / sizeof(a[0])

static const struct compute_case {
	const char *name;
	const struct obs_row *rows;
	size_t nrows;
	const char *key[4]; /* metric, industry, scope, period */
	int rc;
	double value;
	const char *unit;
	unsigned reporting;
	unsigned expected;
	double target;
	unsigned target_year;
	double progress;
} compute_cases[] = {
	{ "district value", ROWS(base_rows),
	    { "output_value", "materials", "320583", "2025" }, 1, 100,
	    "CNY_100M", 1, 1, 0, 0, 0 },
	{ "district all industries", ROWS(base_rows),
	    { "output_value", "*", "320583", "2025" }, 1, 350.5, "CNY_100M", 1,
	    1, 0, 0, 0 },
	{ "district of one other industry", ROWS(base_rows),
	    { "output_value", "photonics", "320505", "2030" }, 1, 1000,
	    "CNY_100M", 1, 1, 0, 0, 0 },
	{ "city per industry", ROWS(base_rows),
	    { "output_value", "materials", "city", "2025" }, 1, 140, "CNY_100M",
	    2, 10, 0, 0, 0 },
	{ "city total, 2030 target", ROWS(base_rows),
	    { "output_value", "*", "city", "2025" }, 1, 400, "CNY_100M", 3, 10,
	    5000, 2030, 0.08 },
	{ "city total 2024", ROWS(base_rows),
	    { "output_value", "*", "city", "2024" }, 1, 80, "CNY_100M", 1, 10,
	    5000, 2030, 0.016 },
	{ "city total in the target year", ROWS(base_rows),
	    { "output_value", "*", "city", "2030" }, 1, 4000, "CNY_100M", 2, 10,
	    5000, 2030, 0.8 },
	{ "city total after 2030: the 2035 target", ROWS(base_rows),
	    { "output_value", "*", "city", "2031" }, 1, 2500, "CNY_100M", 1, 10,
	    10000, 2035, 0.25 },
	{ "city total after 2035: no target", ROWS(base_rows),
	    { "output_value", "*", "city", "2036" }, 1, 12000, "CNY_100M", 1,
	    10, 0, 0, 0 },
	{ "quarter: summed per quarter, no target", ROWS(base_rows),
	    { "output_value", "*", "city", "2025-Q1" }, 1, 25, "CNY_100M", 2,
	    10, 0, 0, 0 },
	{ "quarter of one district", ROWS(base_rows),
	    { "output_value", "materials", "320583", "2025-Q1" }, 1, 20,
	    "CNY_100M", 1, 1, 0, 0, 0 },
	{ "month: summed per month, no target", ROWS(base_rows),
	    { "output_value", "*", "city", "2025-01" }, 1, 7, "CNY_100M", 1, 10,
	    0, 0, 0 },
	{ "stock, city total, 2030 target", ROWS(base_rows),
	    { "chain_leaders", "*", "city", "2025" }, 1, 7, "count", 2, 10, 20,
	    2030, 0.35 },
	{ "stock by quarter", ROWS(base_rows),
	    { "chain_leaders", "materials", "city", "2025-Q2" }, 1, 2, "count",
	    1, 10, 0, 0, 0 },
	{ "stock by month", ROWS(base_rows),
	    { "chain_leaders", "*", "320583", "2025-06" }, 1, 1, "count", 1, 1,
	    0, 0, 0 },
	{ "stock per industry: no target configured", ROWS(base_rows),
	    { "chain_leaders", "hydrogen", "city", "2025" }, 1, 4, "count", 1,
	    10, 0, 0, 0 },
	{ "nothing for the industry", ROWS(base_rows),
	    { "output_value", "hydrogen", "city", "2025" }, 0, 0, NULL, 0, 0, 0,
	    0, 0 },
	{ "nothing for the district", ROWS(base_rows),
	    { "output_value", "*", "320509", "2025" }, 0, 0, NULL, 0, 0, 0, 0,
	    0 },
	{ "nothing for the year", ROWS(base_rows),
	    { "output_value", "*", "city", "2023" }, 0, 0, NULL, 0, 0, 0, 0,
	    0 },
	{ "nothing for the quarter", ROWS(base_rows),
	    { "output_value", "*", "city", "2025-Q2" }, 0, 0, NULL, 0, 0, 0, 0,
	    0 },
	{ "nothing for the metric", ROWS(base_rows),
	    { "core_products", "*", "city", "2025" }, 0, 0, NULL, 0, 0, 0, 0,
	    0 },
	{ "clusters: none reaches 1000", ROWS(below_rows),
	    { "clusters_100bn", "*", "city", "2025" }, 1, 0, "count", 3, 10, 1,
	    2035, 0 },
	{ "clusters: exactly 1000 over two districts", ROWS(exact_rows),
	    { "clusters_100bn", "*", "city", "2025" }, 1, 1, "count", 2, 10, 1,
	    2035, 1 },
	{ "clusters: two industries", ROWS(exact_rows),
	    { "clusters_100bn", "*", "city", "2031" }, 1, 2, "count", 3, 10, 1,
	    2035, 2 },
	{ "clusters: small figures", ROWS(base_rows),
	    { "clusters_100bn", "*", "city", "2025" }, 1, 0, "count", 3, 10, 1,
	    2035, 0 },
	{ "clusters after 2035: no target", ROWS(base_rows),
	    { "clusters_100bn", "*", "city", "2036" }, 1, 1, "count", 1, 10, 0,
	    0, 0 },
	{ "clusters: no annual output_value for the year", ROWS(base_rows),
	    { "clusters_100bn", "*", "city", "2023" }, 0, 0, NULL, 0, 0, 0, 0,
	    0 },
	{ "clusters: quarters and other metrics do not count",
	    ROWS(no_annual_rows), { "clusters_100bn", "*", "city", "2025" }, 0,
	    0, NULL, 0, 0, 0, 0, 0 },
};

START_TEST(test_compute)
{
	const struct compute_case *c = &compute_cases[_i];
	struct table t = { c->rows, c->nrows, false, 0 };
	struct agg_key k = key_make(c->key[0], c->key[1], c->key[2], c->key[3]);
	struct agg_value v;
	int rc;

	rc = agg_compute(&cfg.reg, &k, lookup, &t, &v);
	ck_assert_msg(rc == c->rc, "%s: rc %d, want %d", c->name, rc, c->rc);
	if (rc != 1)
		return;
	/* Every sum is exact, and value / target is rounded once: the
	 * doubles must be equal, not just close. */
	ck_assert_msg(v.value == c->value, "%s: value %.17g, want %.17g",
	    c->name, v.value, c->value);
	ck_assert_msg(
	    strcmp(v.unit, c->unit) == 0, "%s: unit %s", c->name, v.unit);
	ck_assert_msg(v.districts_reporting == c->reporting,
	    "%s: reporting %u, want %u", c->name, v.districts_reporting,
	    c->reporting);
	ck_assert_msg(v.districts_expected == c->expected,
	    "%s: expected %u, want %u", c->name, v.districts_expected,
	    c->expected);
	ck_assert_msg(v.target == c->target && v.target_year == c->target_year,
	    "%s: target %g/%u, want %g/%u", c->name, v.target, v.target_year,
	    c->target, c->target_year);
	ck_assert_msg(v.progress == c->progress,
	    "%s: progress %.17g, want %.17g", c->name, v.progress, c->progress);
}
END_TEST

/* Recomputing from the same observations gives the same bits, and a
 * revision replaces the old value rather than adding to it. */
START_TEST(test_recompute)
{
	struct obs_row rows[] = {
		{ "320583", "materials", "output_value", "2025", 0.1 },
		{ "320505", "materials", "output_value", "2025", 0.2 },
		{ "320508", "photonics", "output_value", "2025", 0.3 },
	};
	struct table t = { rows, 3, false, 0 };
	struct agg_key k = key_make("output_value", "*", "city", "2025");
	struct agg_value a, b;

	ck_assert_int_eq(agg_compute(&cfg.reg, &k, lookup, &t, &a), 1);
	ck_assert_int_eq(agg_compute(&cfg.reg, &k, lookup, &t, &b), 1);
	ck_assert(agg_value_equal(&a, &b));
	rows[1].value = 5;
	ck_assert_int_eq(agg_compute(&cfg.reg, &k, lookup, &t, &b), 1);
	ck_assert(!agg_value_equal(&a, &b));
	ck_assert_double_eq_tol(b.value, 5.4, 1e-12);
	rows[1].value = 0.2;
	ck_assert_int_eq(agg_compute(&cfg.reg, &k, lookup, &t, &b), 1);
	ck_assert(agg_value_equal(&a, &b));
}
END_TEST

START_TEST(test_lookup_fails)
{
	static const char *const keys[][4] = {
		{ "output_value", "materials", "320583", "2025" },
		{ "output_value", "*", "city", "2025" },
		{ "chain_leaders", "*", "320583", "2025-Q1" },
		{ "clusters_100bn", "*", "city", "2025" },
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		struct table t = { ROWS(base_rows), true, 0 };
		struct agg_key k =
		    key_make(keys[i][0], keys[i][1], keys[i][2], keys[i][3]);
		struct agg_value v;

		ck_assert_int_eq(agg_compute(&cfg.reg, &k, lookup, &t, &v), -1);
		ck_assert_uint_gt(t.calls, 0);
	}
}
END_TEST

START_TEST(test_unknown_metric)
{
	struct table t = { ROWS(base_rows), false, 0 };
	struct agg_key k = key_make("gdp", "*", "city", "2025");
	struct agg_value v;

	ck_assert_int_eq(agg_compute(&cfg.reg, &k, lookup, &t, &v), -1);
}
END_TEST

static const struct affected_case {
	const char *obs[4]; /* district, industry, metric, period */
	size_t n;
	const char *topics[AGG_AFFECTED_MAX];
} affected_cases[] = {
	{ { "320583", "materials", "output_value", "2025" }, 5,
	    { "agg/output_value/materials/320583/2025",
		"agg/output_value/*/320583/2025",
		"agg/output_value/materials/city/2025",
		"agg/output_value/*/city/2025",
		"agg/clusters_100bn/*/city/2025" } },
	{ { "320505", "photonics", "output_value", "2025-Q3" }, 4,
	    { "agg/output_value/photonics/320505/2025-Q3",
		"agg/output_value/*/320505/2025-Q3",
		"agg/output_value/photonics/city/2025-Q3",
		"agg/output_value/*/city/2025-Q3" } },
	{ { "320505", "photonics", "output_value", "2025-07" }, 4,
	    { "agg/output_value/photonics/320505/2025-07",
		"agg/output_value/*/320505/2025-07",
		"agg/output_value/photonics/city/2025-07",
		"agg/output_value/*/city/2025-07" } },
	{ { "320508", "quantum", "chain_leaders", "2024" }, 4,
	    { "agg/chain_leaders/quantum/320508/2024",
		"agg/chain_leaders/*/320508/2024",
		"agg/chain_leaders/quantum/city/2024",
		"agg/chain_leaders/*/city/2024" } },
};

START_TEST(test_affected)
{
	const struct affected_case *c = &affected_cases[_i];
	struct agg_key out[AGG_AFFECTED_MAX];
	char topic[IND_TOPIC_MAX + 1];
	size_t n;

	n = agg_affected(c->obs[0], c->obs[1], c->obs[2], c->obs[3], out);
	ck_assert_uint_eq(n, c->n);
	for (size_t i = 0; i < n; i++) {
		agg_topic(&out[i], topic, sizeof(topic));
		ck_assert_str_eq(topic, c->topics[i]);
	}
}
END_TEST

static const char *const good_topics[] = {
	"agg/output_value/*/city/2025",
	"agg/output_value/photonics/320583/2025-Q3",
	"agg/chain_leaders/*/320505/2024-11",
	"agg/clusters_100bn/*/city/2035",
	/* Longest fields. */
	"agg/abcdefghijklmnopqrstuvwxyz012345/abcdefghijklmnopqrstuvwxyz012345/"
	"abcdefghijklmnopqrstuvwxyz012345/2025-Q3",
};

START_TEST(test_topic_round_trip)
{
	struct agg_key k, k2;
	char topic[IND_TOPIC_MAX + 1];

	memset(&k, 0, sizeof(k));
	memset(&k2, 0, sizeof(k2));
	ck_assert(agg_key_parse(good_topics[_i], &k));
	agg_topic(&k, topic, sizeof(topic));
	ck_assert_str_eq(topic, good_topics[_i]);
	ck_assert(agg_key_parse(topic, &k2));
	ck_assert_mem_eq(&k, &k2, sizeof(k));
}
END_TEST

START_TEST(test_topic_fields)
{
	struct agg_key k = key_make("output_value", "*", "city", "2025-Q3");
	struct agg_key p;
	char topic[IND_TOPIC_MAX + 1];

	agg_topic(&k, topic, sizeof(topic));
	ck_assert_str_eq(topic, "agg/output_value/*/city/2025-Q3");
	memset(&p, 0, sizeof(p));
	ck_assert(agg_key_parse(topic, &p));
	ck_assert_str_eq(p.metric, "output_value");
	ck_assert_str_eq(p.industry, "*");
	ck_assert_str_eq(p.scope, "city");
	ck_assert_str_eq(p.period, "2025-Q3");
}
END_TEST

static const char *const bad_topics[] = {
	"",
	"agg",
	"agg/",
	"agg/output_value/*/city",
	"agg/output_value/*/city/2025/extra",
	"obs/output_value/*/city/2025",
	"AGG/output_value/*/city/2025",
	"aggregate/output_value/*/city/2025",
	/* A field over its limit: metric of 33 bytes, period of 8. */
	"agg/abcdefghijklmnopqrstuvwxyz0123456/*/city/2025",
	"agg/output_value/*/city/2025-Q10",
	/* Empty segments. */
	"agg/output_value/*//city/2025",
	"/agg/output_value/*/city/2025",
	"agg/output_value/*/city/2025/",
	"agg//*/city/2025",
	/* Longer than any topic can be. */
	"agg/output_value/*/city/2025xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
};

START_TEST(test_topic_bad)
{
	struct agg_key k;

	ck_assert_msg(!agg_key_parse(bad_topics[_i], &k), "accepted '%s'",
	    bad_topics[_i]);
}
END_TEST

START_TEST(test_value_equal)
{
	struct agg_value a, b;

	memset(&a, 0, sizeof(a));
	a.value = 400;
	strlcpy_ok(a.unit, "CNY_100M", sizeof(a.unit));
	a.districts_reporting = 3;
	a.districts_expected = 10;
	a.target = 5000;
	a.target_year = 2030;
	a.progress = 0.08;

	b = a;
	ck_assert(agg_value_equal(&a, &b));
	ck_assert(agg_value_equal(&b, &a));
	for (int field = 0; field < 8; field++) {
		b = a;
		switch (field) {
		case 0:
			b.value = 400.00000000000006;
			break;
		case 1:
			strlcpy_ok(b.unit, "CNY_10K", sizeof(b.unit));
			break;
		case 2:
			b.districts_reporting = 4;
			break;
		case 3:
			b.districts_expected = 1;
			break;
		case 4:
			b.target = 10000;
			break;
		case 5:
			b.target_year = 2035;
			break;
		case 6:
			b.progress = 0.04;
			break;
		case 7:
			/* Bit for bit: -0 is not 0. */
			a.value = 0;
			b.value = -0.0;
			break;
		}
		ck_assert_msg(!agg_value_equal(&a, &b), "field %d", field);
		ck_assert_msg(!agg_value_equal(&b, &a), "field %d", field);
	}
}
END_TEST

static Suite *
aggregate_suite(void)
{
	Suite *s = suite_create("aggregate");
	TCase *tc = tcase_create("compute");
	TCase *keys = tcase_create("keys");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_loop_test(tc, test_compute, 0,
	    sizeof(compute_cases) / sizeof(compute_cases[0]));
	tcase_add_test(tc, test_recompute);
	tcase_add_test(tc, test_lookup_fails);
	tcase_add_test(tc, test_unknown_metric);
	suite_add_tcase(s, tc);

	tcase_add_loop_test(keys, test_affected, 0,
	    sizeof(affected_cases) / sizeof(affected_cases[0]));
	tcase_add_loop_test(keys, test_topic_round_trip, 0,
	    sizeof(good_topics) / sizeof(good_topics[0]));
	tcase_add_test(keys, test_topic_fields);
	tcase_add_loop_test(keys, test_topic_bad, 0,
	    sizeof(bad_topics) / sizeof(bad_topics[0]));
	tcase_add_test(keys, test_value_equal);
	suite_add_tcase(s, keys);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(aggregate_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
