#include <math.h>
#include <stdio.h>
#include <string.h>

#include "aggregate.h"
#include "registry.h"

/* The derived metric: industries whose city output_value reaches 1000. */
#define DERIVED_CLUSTERS "clusters_100bn"

const struct reg_district *
registry_district(const struct registry *reg, const char *code)
{
	for (size_t i = 0; i < reg->ndistricts; i++)
		if (strcmp(reg->districts[i].code, code) == 0)
			return &reg->districts[i];
	return NULL;
}

const struct reg_industry *
registry_industry(const struct registry *reg, const char *code)
{
	for (size_t i = 0; i < reg->nindustries; i++)
		if (strcmp(reg->industries[i].code, code) == 0)
			return &reg->industries[i];
	return NULL;
}

const struct reg_metric *
registry_metric(const struct registry *reg, const char *code)
{
	for (size_t i = 0; i < reg->nmetrics; i++)
		if (strcmp(reg->metrics[i].code, code) == 0)
			return &reg->metrics[i];
	return NULL;
}

const struct reg_unit *
registry_metric_unit(const struct reg_metric *m, const char *unit)
{
	for (size_t i = 0; i < m->naccept; i++)
		if (strcmp(m->accept[i].code, unit) == 0)
			return &m->accept[i];
	return NULL;
}

const struct reg_target *
registry_target(const struct registry *reg, const char *metric,
    const char *industry, const char *scope, int year)
{
	const struct reg_target *best = NULL;

	for (size_t i = 0; i < reg->ntargets; i++) {
		const struct reg_target *t = &reg->targets[i];

		if (t->year < year || strcmp(t->metric, metric) != 0 ||
		    strcmp(t->industry, industry) != 0 ||
		    strcmp(t->scope, scope) != 0)
			continue;
		if (best == NULL || t->year < best->year)
			best = t;
	}
	return best;
}

static const char *
check_targets(const struct registry *reg, char *err, size_t errlen)
{
	for (size_t i = 0; i < reg->ntargets; i++) {
		const struct reg_target *t = &reg->targets[i];

		if (registry_metric(reg, t->metric) == NULL &&
		    strcmp(t->metric, DERIVED_CLUSTERS) != 0) {
			snprintf(err, errlen,
			    "target %s/%s/%s/%d: unknown metric", t->metric,
			    t->industry, t->scope, t->year);
			return err;
		}
		if (strcmp(t->industry, "*") != 0 &&
		    registry_industry(reg, t->industry) == NULL) {
			snprintf(err, errlen,
			    "target %s/%s/%s/%d: unknown industry", t->metric,
			    t->industry, t->scope, t->year);
			return err;
		}
		if (strcmp(t->scope, "city") != 0 &&
		    registry_district(reg, t->scope) == NULL) {
			snprintf(err, errlen,
			    "target %s/%s/%s/%d: scope is neither \"city\" nor "
			    "a district code",
			    t->metric, t->industry, t->scope, t->year);
			return err;
		}
		for (size_t j = 0; j < i; j++) {
			const struct reg_target *u = &reg->targets[j];

			if (strcmp(t->metric, u->metric) == 0 &&
			    strcmp(t->industry, u->industry) == 0 &&
			    strcmp(t->scope, u->scope) == 0 &&
			    t->year == u->year) {
				snprintf(err, errlen,
				    "target %s/%s/%s/%d: given twice",
				    t->metric, t->industry, t->scope, t->year);
				return err;
			}
		}
	}
	return NULL;
}

/* The first code listed twice among n rows of stride bytes, or NULL. The
 * code is the first member of each row. */
static const char *
duplicate_code(const void *rows, size_t n, size_t stride)
{
	const char *base = rows;

	for (size_t i = 1; i < n; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(base + i * stride, base + j * stride) == 0)
				return base + i * stride;
	return NULL;
}

const char *
registry_check(const struct registry *reg, char *err, size_t errlen)
{
	const char *dup;

	if (reg->ndistricts == 0) {
		snprintf(err, errlen, "registry: no [district CODE] section");
		return err;
	}
	if (reg->nindustries == 0) {
		snprintf(err, errlen, "registry: no [industry CODE] section");
		return err;
	}
	if (reg->nmetrics == 0) {
		snprintf(err, errlen, "registry: no [metric CODE] section");
		return err;
	}
	if ((dup = duplicate_code(reg->districts, reg->ndistricts,
		 sizeof(reg->districts[0]))) != NULL ||
	    (dup = duplicate_code(reg->industries, reg->nindustries,
		 sizeof(reg->industries[0]))) != NULL ||
	    (dup = duplicate_code(reg->metrics, reg->nmetrics,
		 sizeof(reg->metrics[0]))) != NULL) {
		snprintf(err, errlen, "registry: code %s is listed twice", dup);
		return err;
	}
	for (size_t i = 0; i < reg->nmetrics; i++) {
		const struct reg_metric *m = &reg->metrics[i];
		const struct reg_unit *u;

		if (m->unit[0] == '\0') {
			snprintf(err, errlen, "metric %s: no unit", m->code);
			return err;
		}
		u = registry_metric_unit(m, m->unit);
		if (u == NULL || u->factor != 1.0) {
			snprintf(err, errlen,
			    "metric %s: accept must list the unit %s with "
			    "factor 1",
			    m->code, m->unit);
			return err;
		}
		if (!(m->max > 0)) {
			snprintf(err, errlen, "metric %s: max must be above 0",
			    m->code);
			return err;
		}
		/* Aggregates sum whole units (aggregate.h): the largest city
		 * total must stay far inside a double's exact integers. */
		if (m->max * (double)reg->ndistricts *
			(double)reg->nindustries * AGG_UNITS_PER >=
		    0x1p51) {
			snprintf(err, errlen,
			    "metric %s: max %g is too large for exact sums "
			    "over "
			    "%zu districts and %zu industries",
			    m->code, m->max, reg->ndistricts, reg->nindustries);
			return err;
		}
	}
	return check_targets(reg, err, errlen);
}

double
registry_unit_convert(const struct reg_unit *u, double value)
{
	double inv, r;

	if (u->factor >= 1.0)
		return value * u->factor;
	/* 0.0001 has no exact binary form, 10000 has: divide when the factor
	 * is the inverse of an integer, so 120000 CNY_10K is exactly 12. */
	inv = 1.0 / u->factor;
	r = nearbyint(inv);
	if (r >= 1.0 && fabs(inv - r) <= 1e-9 * r)
		return value / r;
	return value * u->factor;
}
