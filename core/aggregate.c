/*
 * Aggregates, recomputed from the observations behind them. See
 * aggregate.h.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "aggregate.h"
#include "pbfields.h"
#include "pbwire.h"
#include "period.h"
#include "xmalloc.h"

static void
key_set(struct agg_key *k, const char *metric, const char *industry,
    const char *scope, const char *period)
{
	strlcpy_ok(k->metric, metric, sizeof(k->metric));
	strlcpy_ok(k->industry, industry, sizeof(k->industry));
	strlcpy_ok(k->scope, scope, sizeof(k->scope));
	strlcpy_ok(k->period, period, sizeof(k->period));
}

static bool
annual(const char *period, int *year)
{
	struct period p;

	if (!period_parse(period, &p) || p.kind != PERIOD_YEAR)
		return false;
	*year = p.year;
	return true;
}

size_t
agg_affected(const char *district, const char *industry, const char *metric,
    const char *period, struct agg_key *out)
{
	size_t n = 0;
	int year;

	key_set(&out[n++], metric, industry, district, period);
	key_set(&out[n++], metric, "*", district, period);
	key_set(&out[n++], metric, industry, "city", period);
	key_set(&out[n++], metric, "*", "city", period);
	if (strcmp(metric, AGG_CLUSTERS_SOURCE) == 0 && annual(period, &year))
		key_set(&out[n++], AGG_CLUSTERS_METRIC, "*", "city", period);
	return n;
}

int64_t
agg_units(double value)
{
	return llround(value * AGG_UNITS_PER);
}

double
agg_from_units(int64_t units)
{
	return (double)units / AGG_UNITS_PER;
}

bool
agg_is_clusters_source(const struct agg_key *key)
{
	int year;

	return strcmp(key->metric, AGG_CLUSTERS_SOURCE) == 0 &&
	       strcmp(key->industry, "*") == 0 &&
	       strcmp(key->scope, "city") == 0 && annual(key->period, &year);
}

int
agg_meta_get(
    const struct registry *reg, const struct agg_key *key, struct agg_meta *out)
{
	const struct reg_target *t;
	int year;

	memset(out, 0, sizeof(*out));
	out->clusters = strcmp(key->metric, AGG_CLUSTERS_METRIC) == 0;
	if (out->clusters) {
		strlcpy_ok(out->unit, "count", sizeof(out->unit));
	} else {
		const struct reg_metric *m = registry_metric(reg, key->metric);

		if (m == NULL)
			return -1;
		strlcpy_ok(out->unit, m->unit, sizeof(out->unit));
	}
	out->expected = out->clusters || strcmp(key->scope, "city") == 0
			    ? (uint32_t)reg->ndistricts
			    : 1;
	if (annual(key->period, &year) &&
	    (t = registry_target(
		 reg, key->metric, key->industry, key->scope, year)) != NULL) {
		out->has_target = true;
		out->target = t->value;
		out->target_year = (uint32_t)t->year;
	}
	return 0;
}

void
agg_finish_meta(const struct agg_meta *meta, int64_t units, uint32_t reporting,
    struct agg_value *out)
{
	memset(out, 0, sizeof(*out));
	/* clusters_100bn is a count of industries, not in units. */
	out->value = meta->clusters ? (double)units : agg_from_units(units);
	memcpy(out->unit, meta->unit, sizeof(out->unit));
	out->districts_reporting = reporting;
	out->districts_expected = meta->expected;
	if (meta->has_target) {
		out->target = meta->target;
		out->target_year = meta->target_year;
		out->progress = out->value / meta->target;
	}
}

int
agg_finish(const struct registry *reg, const struct agg_key *key, int64_t units,
    uint32_t reporting, struct agg_value *out)
{
	struct agg_meta meta;

	if (agg_meta_get(reg, key, &meta) == -1)
		return -1;
	agg_finish_meta(&meta, units, reporting, out);
	return 0;
}

/* The sum of metric over the key's districts and industries, in units;
 * *reporting counts the districts with at least one value behind it. */
static int
sum(const struct registry *reg, const struct agg_key *key, const char *metric,
    agg_lookup_fn lookup, void *arg, int64_t *total, uint32_t *reporting)
{
	bool city = strcmp(key->scope, "city") == 0;
	bool all = strcmp(key->industry, "*") == 0;
	size_t nd = city ? reg->ndistricts : 1;
	size_t ni = all ? reg->nindustries : 1;

	*total = 0;
	*reporting = 0;
	for (size_t d = 0; d < nd; d++) {
		const char *dc = city ? reg->districts[d].code : key->scope;
		bool any = false;

		for (size_t i = 0; i < ni; i++) {
			const char *ic =
			    all ? reg->industries[i].code : key->industry;
			double v;
			int rc = lookup(arg, dc, ic, metric, key->period, &v);

			if (rc < 0)
				return -1;
			if (rc == 1) {
				*total += agg_units(v);
				any = true;
			}
		}
		if (any)
			(*reporting)++;
	}
	return 0;
}

/* clusters_100bn for a year: the industries whose city output_value is at
 * least 1000. */
static int
clusters(const struct registry *reg, const struct agg_key *key,
    agg_lookup_fn lookup, void *arg, struct agg_value *out)
{
	struct agg_key k;
	uint32_t n = 0, reporting = 0, r;
	int64_t v;
	int year;

	if (!annual(key->period, &year) || strcmp(key->industry, "*") != 0 ||
	    strcmp(key->scope, "city") != 0)
		return -1;
	key_set(&k, AGG_CLUSTERS_SOURCE, "*", "city", key->period);
	if (sum(reg, &k, AGG_CLUSTERS_SOURCE, lookup, arg, &v, &reporting) ==
	    -1)
		return -1;
	if (reporting == 0)
		return 0;
	for (size_t i = 0; i < reg->nindustries; i++) {
		key_set(&k, AGG_CLUSTERS_SOURCE, reg->industries[i].code,
		    "city", key->period);
		if (sum(reg, &k, AGG_CLUSTERS_SOURCE, lookup, arg, &v, &r) ==
		    -1)
			return -1;
		if (r > 0 && agg_from_units(v) >= AGG_CLUSTERS_THRESHOLD)
			n++;
	}
	return agg_finish(reg, key, n, reporting, out) == 0 ? 1 : -1;
}

int
agg_compute(const struct registry *reg, const struct agg_key *key,
    agg_lookup_fn lookup, void *arg, struct agg_value *out)
{
	const struct reg_metric *m;
	uint32_t reporting;
	int64_t total;

	if (strcmp(key->metric, AGG_CLUSTERS_METRIC) == 0)
		return clusters(reg, key, lookup, arg, out);
	if ((m = registry_metric(reg, key->metric)) == NULL)
		return -1;
	if (sum(reg, key, m->code, lookup, arg, &total, &reporting) == -1)
		return -1;
	if (reporting == 0)
		return 0;
	return agg_finish(reg, key, total, reporting, out) == 0 ? 1 : -1;
}

bool
agg_value_equal(const struct agg_value *a, const struct agg_value *b)
{
	return memcmp(&a->value, &b->value, sizeof(a->value)) == 0 &&
	       strcmp(a->unit, b->unit) == 0 &&
	       a->districts_reporting == b->districts_reporting &&
	       a->districts_expected == b->districts_expected &&
	       memcmp(&a->target, &b->target, sizeof(a->target)) == 0 &&
	       a->target_year == b->target_year &&
	       memcmp(&a->progress, &b->progress, sizeof(a->progress)) == 0;
}

void
agg_topic(const struct agg_key *key, char *buf, size_t len)
{
	const char *parts[] = { "agg", key->metric, key->industry, key->scope,
		key->period };
	size_t off = 0;

	/* By hand: the daemon names every aggregate it publishes, and
	 * snprintf() was a tenth of its time. Truncates as snprintf would. */
	if (len == 0)
		return;
	for (size_t i = 0; i < 5; i++) {
		size_t n = strlen(parts[i]);

		if (i > 0 && off + 1 < len)
			buf[off++] = '/';
		if (n > len - 1 - off)
			n = len - 1 - off;
		memcpy(buf + off, parts[i], n);
		off += n;
	}
	buf[off] = '\0';
}

bool
agg_key_parse(const char *topic, struct agg_key *out)
{
	char buf[IND_TOPIC_MAX + 1], *part[5], *p;
	size_t n = 0;

	if (!strlcpy_ok(buf, topic, sizeof(buf)))
		return false;
	/* Split on every '/': empty segments are not a topic (strtok would
	 * skip them). */
	for (p = buf; n < 5; n++) {
		part[n] = p;
		if ((p = strchr(p, '/')) == NULL) {
			n++;
			break;
		}
		*p++ = '\0';
	}
	if (n != 5 || p != NULL || strcmp(part[0], "agg") != 0)
		return false;
	for (size_t i = 1; i < 5; i++)
		if (part[i][0] == '\0')
			return false;
	return strlcpy_ok(out->metric, part[1], sizeof(out->metric)) &&
	       strlcpy_ok(out->industry, part[2], sizeof(out->industry)) &&
	       strlcpy_ok(out->scope, part[3], sizeof(out->scope)) &&
	       strlcpy_ok(out->period, part[4], sizeof(out->period));
}

int
agg_decode(
    const uint8_t *p, size_t len, struct agg_value *v, uint64_t *revision)
{
	const uint8_t *end = p + len;
	struct pbwire_field f;
	int rc;

	memset(v, 0, sizeof(*v));
	*revision = 0;
	while ((rc = pbwire_next(&p, end, &f)) == 1) {
		switch (f.number) {
		case PBF_AGGREGATE_VALUE:
			v->value =
			    f.type == PBF_WIRE_DOUBLE ? pbwire_double(&f) : 0;
			break;
		case PBF_AGGREGATE_UNIT:
			if (f.type == PBF_WIRE_STRING &&
			    f.len < sizeof(v->unit)) {
				memcpy(v->unit, f.data, f.len);
				v->unit[f.len] = '\0';
			}
			break;
		case PBF_AGGREGATE_DISTRICTS_REPORTING:
			v->districts_reporting = (uint32_t)f.u;
			break;
		case PBF_AGGREGATE_DISTRICTS_EXPECTED:
			v->districts_expected = (uint32_t)f.u;
			break;
		case PBF_AGGREGATE_TARGET:
			v->target =
			    f.type == PBF_WIRE_DOUBLE ? pbwire_double(&f) : 0;
			break;
		case PBF_AGGREGATE_TARGET_YEAR:
			v->target_year = (uint32_t)f.u;
			break;
		case PBF_AGGREGATE_PROGRESS:
			v->progress =
			    f.type == PBF_WIRE_DOUBLE ? pbwire_double(&f) : 0;
			break;
		case PBF_AGGREGATE_REVISION:
			*revision = f.u;
			break;
		}
	}
	return rc == -1 ? -1 : 0;
}
