/*
 * Validation of reports: the rules of docs/protocol.md, "Error codes".
 * Pure: no I/O, no logging, no clock (the caller passes today).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbwire.h"
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
	free(v->nul_obs);
	memset(v, 0, sizeof(*v));
}

void
validate_wire_none(struct validation *v)
{
	v->nul_agent_id = false;
	v->nul_district = false;
	v->nul_other = false;
	v->nnul_obs = 0;
}

/* The field numbers validate_wire() places, read from the schema. */
struct wire_walk {
	struct validation *v;
	uint32_t report; /* AgentMessage.report */
	uint32_t heartbeat; /* AgentMessage.heartbeat */
	uint32_t agent_id; /* Report.agent_id and Heartbeat.agent_id */
	uint32_t district; /* Report.district */
	uint32_t observations; /* Report.observations */
	uint32_t body; /* the body the decoded message keeps: its number */
	size_t body_index; /* and its occurrence */
};

static uint32_t
field_number(const ProtobufCMessageDescriptor *d, const char *name)
{
	const ProtobufCFieldDescriptor *f;

	f = protobuf_c_message_descriptor_get_field_by_name(d, name);
	return f != NULL ? f->id : 0;
}

static int
wire_string(const struct pbwire_path *path,
    const ProtobufCFieldDescriptor *field, const uint8_t *data, size_t len,
    void *arg)
{
	struct wire_walk *w = arg;
	struct validation *v = w->v;
	bool kept;

	(void)field;
	if (memchr(data, '\0', len) == NULL)
		return 0;
	/* An agent_id in any body, kept or not: refused as the sender's. */
	if (path->depth == 2 && path->at[1].number == w->agent_id &&
	    (path->at[0].number == w->report ||
		path->at[0].number == w->heartbeat)) {
		v->nul_agent_id = true;
		return 0;
	}
	/* protobuf-c keeps the last occurrence of a oneof's body. */
	kept = path->at[0].number == w->body &&
	       path->at[0].index == w->body_index && w->body == w->report;
	if (kept && path->depth == 2 && path->at[1].number == w->district) {
		v->nul_district = true;
	} else if (kept && path->depth == 3 &&
		   path->at[1].number == w->observations &&
		   path->at[1].index <= UINT32_MAX) {
		if (v->nnul_obs == v->nul_obs_cap) {
			v->nul_obs_cap =
			    v->nul_obs_cap ? v->nul_obs_cap * 2 : 8;
			v->nul_obs = xrealloc(
			    v->nul_obs, v->nul_obs_cap * sizeof(*v->nul_obs));
		}
		v->nul_obs[v->nnul_obs].index = (uint32_t)path->at[1].index;
		v->nul_obs[v->nnul_obs++].field = path->at[2].number;
	} else {
		v->nul_other = true;
	}
	return 0;
}

void
validate_wire(struct validation *v, const uint8_t *buf, size_t len)
{
	const ProtobufCMessageDescriptor *am =
	    &indicator__agent_message__descriptor;
	struct wire_walk w = { .v = v };
	const uint8_t *p = buf, *end = buf + len;
	struct pbwire_field f;
	size_t seen[2] = { 0, 0 };
	int rc;

	validate_wire_none(v);
	w.report = field_number(am, "report");
	w.heartbeat = field_number(am, "heartbeat");
	w.agent_id = field_number(&indicator__report__descriptor, "agent_id");
	w.district = field_number(&indicator__report__descriptor, "district");
	w.observations =
	    field_number(&indicator__report__descriptor, "observations");
	/* Which occurrence of which body the decoded message keeps: the
	 * last one on the wire. */
	while ((rc = pbwire_next(&p, end, &f)) == 1) {
		if (f.type != 2 ||
		    (f.number != w.report && f.number != w.heartbeat))
			continue;
		w.body = f.number;
		w.body_index = seen[f.number == w.heartbeat]++;
	}
	if (rc == -1 || pbwire_strings(am, buf, len, wire_string, &w) == -1)
		v->nul_other = true; /* what protobuf-c read, this cannot */
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
	"bad_file",
	"file_rejected",
	"file_unknown",
	"file_too_large",
};

const char *const validate_retry_codes[VALIDATE_RETRY_CODES] = {
	"out_of_order",
	"rate_limited",
	"store_full",
	"store_error",
	"busy",
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

static int
has_nul(const struct pbwire_path *path, const ProtobufCFieldDescriptor *field,
    const uint8_t *data, size_t len, void *arg)
{
	(void)path;
	(void)field;
	(void)arg;
	return memchr(data, '\0', len) != NULL;
}

bool
validate_wire_exact(
    const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len)
{
	return pbwire_strings(desc, buf, len, has_nul, NULL) == 0;
}

/* A string of at most max bytes of valid UTF-8 without control
 * characters: one that may be echoed in a message. */
static bool
string_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	return n <= max && utf8_valid(s, n) && utf8_control(s, n, false) == -1;
}

/*
 * Whether string s of the field named field can be taken: no NUL on the
 * wire (nul), valid UTF-8 of at most max bytes, no control character (a
 * tab only when tab_ok). NULL, or why not in why.
 */
static const char *
string_why(const char *field, const char *s, size_t max, bool nul, bool tab_ok,
    char *why, size_t len)
{
	size_t n = strlen(s);
	long c;

	if (nul)
		snprintf(why, len, "%s holds a NUL byte", field);
	else if (n > max)
		snprintf(why, len, "%s is %zu bytes, over the limit of %zu",
		    field, n, max);
	else if (!utf8_valid(s, n))
		snprintf(why, len, "%s is not valid UTF-8", field);
	else if ((c = utf8_control(s, n, tab_ok)) != -1)
		snprintf(why, len, "%s holds a control character (U+%04lX)",
		    field, (unsigned long)c);
	else
		return NULL;
	return why;
}

const char *
validate_sender(const struct config_limits *limits, const char *agent_id,
    uint64_t epoch, uint64_t seq, bool check_seq, const struct validation *wire,
    char *msg, size_t msglen)
{
	size_t n = agent_id ? strlen(agent_id) : 0;

	if (n == 0 && !(wire && wire->nul_agent_id)) {
		snprintf(msg, msglen, "agent_id is empty");
		return "bad_agent_id";
	}
	if (string_why("agent_id", agent_id, limits->max_agent_id,
		wire && wire->nul_agent_id, false, msg, msglen) != NULL)
		return "bad_agent_id";
	if (wire && wire->nul_other) {
		snprintf(msg, msglen,
		    "a string field the message repeats holds a NUL byte");
		return "bad_string";
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
    bool nul, bool known, const char *unknown_code)
{
	char why[VALIDATE_MSG_MAX];

	if (string_why(field, value, IND_CODE_MAX, nul, false, why,
		sizeof(why)) != NULL) {
		obs_error(v, i, "bad_string", "%s", why);
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
    const char *s, bool nul, const struct civil_date *today)
{
	struct period p;

	if (nul || utf8_control(s, strlen(s), false) != -1) {
		obs_error(v, i, "bad_string",
		    nul ? "period holds a NUL byte"
			: "period holds a control character");
		return;
	}
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
    bool nul, const struct reg_metric *m, double *canonical)
{
	const struct reg_unit *u = NULL;
	char why[VALIDATE_MSG_MAX];
	bool ok = true;
	double c;

	if (string_why("unit", o->unit, IND_UNIT_MAX, nul, false, why,
		sizeof(why)) != NULL) {
		obs_error(v, i, "bad_string", "%s", why);
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

/* The fields of observation i that held a NUL on the wire, as a bit per
 * field number; *k walks v->nul_obs, which is in observation order. */
static uint32_t
nul_fields(struct validation *v, size_t *k, size_t i)
{
	uint32_t bits = 0;

	while (*k < v->nnul_obs && v->nul_obs[*k].index == i) {
		if (v->nul_obs[*k].field < 32)
			bits |= (uint32_t)1 << v->nul_obs[*k].field;
		(*k)++;
	}
	return bits;
}

/* Whether the wire held a NUL in o's field of that name. */
static bool
nul_in(uint32_t bits, const char *name)
{
	const ProtobufCFieldDescriptor *f;

	if (bits == 0)
		return false;
	f = protobuf_c_message_descriptor_get_field_by_name(
	    &indicator__observation__descriptor, name);
	return f != NULL && f->id < 32 && (bits & ((uint32_t)1 << f->id));
}

static void
check_observation(const struct registry *reg,
    const struct config_limits *limits, const Indicator__Report *r, size_t i,
    uint32_t nul, const struct civil_date *today, struct validation *v)
{
	const Indicator__Observation *o = r->observations[i];
	const struct reg_metric *m = NULL;
	char why[VALIDATE_MSG_MAX];
	size_t before = v->nerrors;
	double c = 0;

	check_code(v, i, "industry", o->industry, nul_in(nul, "industry"),
	    registry_industry(reg, o->industry) != NULL, "unknown_industry");
	if (check_code(v, i, "metric", o->metric, nul_in(nul, "metric"),
		registry_metric(reg, o->metric) != NULL, "unknown_metric"))
		m = registry_metric(reg, o->metric);
	check_period(reg, v, i, o->period, nul_in(nul, "period"), today);
	check_value(v, i, o, nul_in(nul, "unit"), m, &c);
	if ((int)o->status < INDICATOR__OBS_STATUS__OBS_STATUS_UNSPECIFIED ||
	    (int)o->status > INDICATOR__OBS_STATUS__REVISED)
		obs_error(
		    v, i, "bad_status", "status %d is not 0-3", (int)o->status);
	/* A note is free text: a tab may stay, as in the agent's CSV. */
	if (string_why("note", o->note, limits->max_note, nul_in(nul, "note"),
		true, why, sizeof(why)) != NULL)
		obs_error(v, i, "bad_string", "%s", why);
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
	return validate_report_counted(reg, limits, r, 0, today, v);
}

int
validate_report_counted(const struct registry *reg,
    const struct config_limits *limits, const Indicator__Report *r,
    size_t counted, const struct civil_date *today, struct validation *v)
{
	size_t n = counted > r->n_observations ? counted : r->n_observations;
	size_t k = 0;
	char why[VALIDATE_MSG_MAX];

	v->code = NULL;
	v->message[0] = '\0';
	v->nerrors = 0;
	if (string_why("district", r->district, IND_CODE_MAX, v->nul_district,
		false, why, sizeof(why)) != NULL)
		report_error(v, "bad_string", "%s", why);
	else if (registry_district(reg, r->district) == NULL)
		report_error(v, "unknown_district",
		    "district '%s' is not in the registry", r->district);
	if (v->nul_other)
		report_error(v, "bad_string",
		    "a string field the message repeats holds a NUL byte");
	if (n == 0) {
		report_error(
		    v, "empty_report", "the report has no observations");
		goto wire_clear;
	}
	if (n > limits->max_observations) {
		report_error(v, "too_many_observations",
		    "%zu observations, over the limit of %u", n,
		    limits->max_observations);
		goto wire_clear;
	}
	n = r->n_observations; /* counted is at most the limit: not cut */
	if (n > v->nvalues_cap) {
		v->values = xrealloc(v->values, n * sizeof(*v->values));
		v->metrics = xrealloc(v->metrics, n * sizeof(*v->metrics));
		v->nvalues_cap = n;
	}
	for (size_t i = 0; i < n; i++)
		check_observation(
		    reg, limits, r, i, nul_fields(v, &k, i), today, v);
	/* A NUL placed past the observations the message kept. */
	if (k < v->nnul_obs)
		report_error(v, "bad_string",
		    "a string field the message repeats holds a NUL byte");
wire_clear:
	validate_wire_none(v);
	return v->code != NULL || v->nerrors > 0;
}
