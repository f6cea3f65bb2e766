/*
 * Validation of reports: the rules of PROTOCOL.md, "Validation and error
 * codes". Pure: no I/O, no logging, no clock (the caller passes today).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "period.h"
#include "utf8.h"
#include "validate.h"
#include "xmalloc.h"

void
validation_init(struct validation *v)
{
	memset(v, 0, sizeof(*v));
}

void
validation_free(struct validation *v)
{
	free(v->errors);
	free(v->values);
	free(v->metrics);
	memset(v, 0, sizeof(*v));
}

static void obs_error(struct validation *, size_t, const char *, const char *,
    ...) __attribute__((format(printf, 4, 5)));
static void report_error(struct validation *, const char *, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
obs_error(
    struct validation *v, size_t index, const char *code, const char *fmt, ...)
{
	struct obs_error *e;
	va_list ap;

	if (v->nerrors == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 8;
		v->errors = xrealloc(v->errors, v->cap * sizeof(*v->errors));
	}
	e = &v->errors[v->nerrors++];
	e->index = (uint32_t)index;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

static void
report_error(struct validation *v, const char *code, const char *fmt, ...)
{
	va_list ap;

	if (v->code != NULL)
		return; /* the first report-level problem is the one given */
	v->code = code;
	va_start(ap, fmt);
	vsnprintf(v->message, sizeof(v->message), fmt, ap);
	va_end(ap);
}

const char *const validate_reject_codes[VALIDATE_REJECT_CODES] = {
	"malformed",
	"bad_agent_id",
	"bad_epoch",
	"bad_seq",
	"not_authorised",
	"unknown_district",
	"empty_report",
	"too_many_observations",
	"bad_string",
	"unknown_industry",
	"unknown_metric",
	"bad_period",
	"future_period",
	"too_early",
	"not_finite",
	"negative",
	"not_integer",
	"unknown_unit",
	"implausible",
	"duplicate_key",
	"bad_status",
};

const char *const validate_retry_codes[VALIDATE_RETRY_CODES] = {
	"out_of_order",
	"rate_limited",
	"store_full",
	"store_error",
};

int
validate_code_index(const char *const list[], size_t n, const char *code)
{
	if (code == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], code) == 0)
			return (int)i;
	return -1;
}

/* A string of at most max bytes of valid UTF-8. */
static bool
string_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	return n <= max && utf8_valid(s, n);
}

const char *
validate_sender(const struct config_limits *limits, const char *agent_id,
    uint64_t epoch, uint64_t seq, bool check_seq, char *msg, size_t msglen)
{
	size_t n = agent_id ? strlen(agent_id) : 0;

	if (n == 0) {
		snprintf(msg, msglen, "agent_id is empty");
		return "bad_agent_id";
	}
	if (n > limits->max_agent_id) {
		snprintf(msg, msglen,
		    "agent_id is %zu bytes, over the limit "
		    "of %u",
		    n, limits->max_agent_id);
		return "bad_agent_id";
	}
	if (!utf8_valid(agent_id, n)) {
		snprintf(msg, msglen, "agent_id is not valid UTF-8");
		return "bad_agent_id";
	}
	if (epoch == 0) {
		snprintf(msg, msglen, "epoch is 0");
		return "bad_epoch";
	}
	if (check_seq && seq == 0) {
		snprintf(msg, msglen, "seq is 0; sequences start at 1");
		return "bad_seq";
	}
	return NULL;
}

/* Checks a code field against the registry; returns true when it is known.
 * lookup_ok says whether the lookup succeeded (computed by the caller). */
static bool
check_code(struct validation *v, size_t i, const char *field, const char *value,
    bool known, const char *unknown_code)
{
	if (!string_ok(value, IND_CODE_MAX)) {
		obs_error(v, i, "bad_string",
		    "%s is not valid UTF-8 or longer than %d bytes", field,
		    IND_CODE_MAX);
		return false;
	}
	if (!known) {
		obs_error(v, i, unknown_code, "%s '%s' is not in the registry",
		    field, value);
		return false;
	}
	return true;
}

static void
check_period(const struct registry *reg, struct validation *v, size_t i,
    const char *s, const struct civil_date *today)
{
	struct period p;

	if (!string_ok(s, IND_PERIOD_MAX)) {
		obs_error(v, i, "bad_period",
		    "period is not YYYY, YYYY-Qn or YYYY-MM");
		return;
	}
	if (!period_parse(s, &p)) {
		obs_error(v, i, "bad_period",
		    "period '%s' is not YYYY, YYYY-Qn (n 1-4) or YYYY-MM "
		    "(01-12)",
		    s);
		return;
	}
	if (p.year < reg->first_year)
		obs_error(v, i, "too_early",
		    "period '%s' is before the registry's first year %d", s,
		    reg->first_year);
	else if (!period_started(&p, today->year, today->month))
		obs_error(v, i, "future_period",
		    "period '%s' has not started (today is %04d-%02d-%02d)", s,
		    today->year, today->month, today->day);
}

/* Checks the value and unit; sets *canonical when both are good. */
static bool
check_value(struct validation *v, size_t i, const Indicator__Observation *o,
    const struct reg_metric *m, double *canonical)
{
	const struct reg_unit *u = NULL;
	bool ok = true;
	double c;

	if (!string_ok(o->unit, IND_UNIT_MAX)) {
		obs_error(v, i, "bad_string",
		    "unit is not valid UTF-8 or longer than %d bytes",
		    IND_UNIT_MAX);
		ok = false;
	} else if (m != NULL &&
		   (u = registry_metric_unit(m, o->unit)) == NULL) {
		obs_error(v, i, "unknown_unit",
		    "unit '%s' is not accepted for %s (canonical unit %s)",
		    o->unit, m->code, m->unit);
		ok = false;
	}
	if (!isfinite(o->value)) {
		obs_error(v, i, "not_finite", "value is %s",
		    isnan(o->value) ? "NaN" : "infinite");
		return false;
	}
	if (o->value < 0) {
		obs_error(v, i, "negative", "value %g is below zero", o->value);
		return false;
	}
	if (u == NULL)
		return false;
	c = registry_unit_convert(u, o->value);
	if (m->integer && c != floor(c)) {
		obs_error(v, i, "not_integer",
		    "%s is a count; %g is not a whole number", m->code, c);
		ok = false;
	}
	if (c > m->max) {
		obs_error(v, i, "implausible",
		    "%g %s is above the plausible maximum %g %s for one "
		    "district",
		    c, m->unit, m->max, m->unit);
		ok = false;
	}
	*canonical = c;
	return ok;
}

static void
check_duplicate(struct validation *v, const Indicator__Report *r, size_t i)
{
	const Indicator__Observation *o = r->observations[i];

	for (size_t j = 0; j < i; j++) {
		const Indicator__Observation *p = r->observations[j];

		if (strcmp(o->period, p->period) != 0 ||
		    strcmp(o->metric, p->metric) != 0 ||
		    strcmp(o->industry, p->industry) != 0)
			continue;
		/* The message goes back in an Ack's proto3 string, which
		 * must be valid UTF-8: echo the key only when it is
		 * well-formed and short enough not to be cut mid-character
		 * (the other errors already say what is wrong with it). */
		if (string_ok(o->industry, IND_CODE_MAX) &&
		    string_ok(o->metric, IND_CODE_MAX) &&
		    string_ok(o->period, IND_PERIOD_MAX))
			obs_error(v, i, "duplicate_key",
			    "%s/%s/%s is also observation %zu", o->industry,
			    o->metric, o->period, j);
		else
			obs_error(v, i, "duplicate_key",
			    "same industry, metric and period as observation "
			    "%zu",
			    j);
		return;
	}
}

static void
check_observation(const struct registry *reg,
    const struct config_limits *limits, const Indicator__Report *r, size_t i,
    const struct civil_date *today, struct validation *v)
{
	const Indicator__Observation *o = r->observations[i];
	const struct reg_metric *m = NULL;
	size_t before = v->nerrors;
	double c = 0;

	check_code(v, i, "industry", o->industry,
	    registry_industry(reg, o->industry) != NULL, "unknown_industry");
	if (check_code(v, i, "metric", o->metric,
		registry_metric(reg, o->metric) != NULL, "unknown_metric"))
		m = registry_metric(reg, o->metric);
	check_period(reg, v, i, o->period, today);
	check_value(v, i, o, m, &c);
	if ((int)o->status < INDICATOR__OBS_STATUS__OBS_STATUS_UNSPECIFIED ||
	    (int)o->status > INDICATOR__OBS_STATUS__REVISED)
		obs_error(
		    v, i, "bad_status", "status %d is not 0-3", (int)o->status);
	if (!string_ok(o->note, limits->max_note))
		obs_error(v, i, "bad_string",
		    "note is not valid UTF-8 or longer than %u bytes",
		    limits->max_note);
	check_duplicate(v, r, i);
	if (v->nerrors == before) {
		v->values[i] = c;
		v->metrics[i] = m;
	}
}

int
validate_report(const struct registry *reg, const struct config_limits *limits,
    const Indicator__Report *r, const struct civil_date *today,
    struct validation *v)
{
	size_t n = r->n_observations;

	v->code = NULL;
	v->message[0] = '\0';
	v->nerrors = 0;
	if (!string_ok(r->district, IND_CODE_MAX))
		report_error(v, "bad_string",
		    "district is not valid UTF-8 or longer than %d bytes",
		    IND_CODE_MAX);
	else if (registry_district(reg, r->district) == NULL)
		report_error(v, "unknown_district",
		    "district '%s' is not in the registry", r->district);
	if (n == 0) {
		report_error(
		    v, "empty_report", "the report has no observations");
		return 1;
	}
	if (n > limits->max_observations) {
		report_error(v, "too_many_observations",
		    "%zu observations, over the limit of %u", n,
		    limits->max_observations);
		return 1;
	}
	if (n > v->nvalues_cap) {
		v->values = xrealloc(v->values, n * sizeof(*v->values));
		v->metrics = xrealloc(v->metrics, n * sizeof(*v->metrics));
		v->nvalues_cap = n;
	}
	for (size_t i = 0; i < n; i++)
		check_observation(reg, limits, r, i, today, v);
	return v->code != NULL || v->nerrors > 0;
}
