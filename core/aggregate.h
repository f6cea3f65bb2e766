/*
 * Aggregation: city and district figures computed from the latest
 * observations (docs/protocol.md, "The live feed"). Pure: the observations
 * are read through a lookup callback, so the module does no I/O and tests
 * drive it with a table in memory.
 *
 * For each (metric, period):
 *   scope <district>, industry I   that district's latest value of I
 *   scope <district>, industry *   the sum over industries in the district
 *   scope city, industry I         the sum over districts
 *   scope city, industry *         the sum over districts and industries
 * and, for each year with an annual output_value, clusters_100bn (industry
 * *, scope city): the number of industries whose city output_value is
 * >= 1000 (亿元).
 *
 * Aggregates are recomputed from the observations behind them, never
 * adjusted by differences, so a revision replaces the old value exactly and
 * nothing is ever added twice; summation runs in registry order, so the
 * same observations always give the same bits.
 */
#ifndef INDICATOR_AGGREGATE_H
#define INDICATOR_AGGREGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"
#include "strlimits.h"

#define AGG_CLUSTERS_METRIC "clusters_100bn"
#define AGG_CLUSTERS_THRESHOLD 1000.0 /* 亿元: a 千亿级 cluster */
#define AGG_CLUSTERS_SOURCE "output_value"
#define AGG_AFFECTED_MAX 5

struct agg_key {
	char metric[IND_CODE_MAX + 1];
	char industry[IND_CODE_MAX + 1]; /* code or "*" */
	char scope[IND_SCOPE_MAX + 1]; /* "city" or a district code */
	char period[IND_PERIOD_MAX + 1];
};

/* The content of an aggregate, without revision, seq and time. */
struct agg_value {
	double value;
	char unit[IND_UNIT_MAX + 1];
	uint32_t districts_reporting;
	uint32_t districts_expected;
	double target; /* 0 where none applies */
	uint32_t target_year;
	double progress; /* value / target; 0 where no target applies */
};

/*
 * Sums are exact: every value counts as a whole number of millionths of
 * its canonical unit (1e-6 亿元 is 100 CNY), so addition is associative,
 * an aggregate kept up to date by differences equals its recomputation
 * bit for bit, and the order of summation does not matter. registry_check
 * bounds each metric's max so that no sum can reach 2^51 units.
 */
#define AGG_UNITS_PER 1e6

/* value in units (rounded to the nearest), and back. */
int64_t agg_units(double value);
double agg_from_units(int64_t units);

/*
 * Looks up the latest canonical value of (district, industry, metric,
 * period). Returns 1 and sets *value when there is one, 0 when there is
 * none, -1 on failure (which the aggregation passes up).
 */
typedef int (*agg_lookup_fn)(void *arg, const char *district,
    const char *industry, const char *metric, const char *period,
    double *value);

/* aggregate.c */

/*
 * The aggregate keys a change of observation (district, industry, metric,
 * period) can alter, written to out (room for AGG_AFFECTED_MAX). Returns
 * their number.
 */
size_t agg_affected(const char *district, const char *industry,
    const char *metric, const char *period, struct agg_key *out);

/*
 * Computes the aggregate key from the observations. Returns 1 with *out
 * filled, 0 when no observation is behind it (the aggregate does not
 * exist), -1 when lookup failed or the key names an unknown metric.
 */
int agg_compute(const struct registry *reg, const struct agg_key *key,
    agg_lookup_fn lookup, void *arg, struct agg_value *out);

/*
 * Fills *out for key from its sum in units and the number of districts
 * reporting: value, unit, districts_expected, target, target_year and
 * progress, exactly as agg_compute() would. -1 for an unknown metric.
 */
int agg_finish(const struct registry *reg, const struct agg_key *key,
    int64_t units, uint32_t reporting, struct agg_value *out);

/*
 * What agg_finish() reads of the registry for a key, looked up once
 * (agg_meta_get(): -1 for an unknown metric) and applied to a sum by
 * agg_finish_meta(), which agg_finish() is made of: a caller that keeps
 * the meta gives exactly agg_finish()'s result, as long as the registry
 * it came from is the one in use (the meta points nowhere into it).
 */
struct agg_meta {
	bool clusters; /* clusters_100bn: a count, not in units */
	char unit[IND_UNIT_MAX + 1];
	uint32_t expected; /* districts_expected */
	bool has_target;
	double target;
	uint32_t target_year;
};

int agg_meta_get(const struct registry *reg, const struct agg_key *key,
    struct agg_meta *out);
void agg_finish_meta(const struct agg_meta *meta, int64_t units,
    uint32_t reporting, struct agg_value *out);

/* True for the industry-"*", city-scope, annual output_value key that
 * clusters_100bn of the same year is derived from. */
bool agg_is_clusters_source(const struct agg_key *key);

/* True when the two contents are the same (every field, bit for bit). */
bool agg_value_equal(const struct agg_value *a, const struct agg_value *b);

/*
 * The content and revision of a packed Aggregate (a stored one), read
 * field by field (pbwire.h, numbers from pbfields.h) without allocating:
 * the ledger reads every aggregate it touches first this way. 0, or -1
 * when the bytes do not parse (*v and *revision then hold what did).
 */
int agg_decode(
    const uint8_t *p, size_t len, struct agg_value *v, uint64_t *revision);

/* "agg/<metric>/<industry>/<scope>/<period>" into buf (IND_TOPIC_MAX + 1
 * bytes). */
void agg_topic(const struct agg_key *key, char *buf, size_t len);
/* Parses a topic back; false when it is not one. */
bool agg_key_parse(const char *topic, struct agg_key *out);

#endif
