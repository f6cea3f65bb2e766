/*
 * Validation: a good report passes with its values in canonical units, and
 * every rule of PROTOCOL.md ("Validation and error codes") refuses what it
 * should, with the stable code, on the right observation, all problems
 * listed. Reports are built by hand from the protoc-c structs; the registry
 * is the built-in default; today is 2026-11-26.
 */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "pbwire.h"
#include "utf8.h"
#include "validate.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define S8 "abcdefgh"
#define S64 S8 S8 S8 S8 S8 S8 S8 S8
#define S256 S64 S64 S64 S64

static struct config cfg;
static const struct civil_date today = { 2026, 11, 26 };

/* One observation as a test writes it. */
struct obs {
	const char *industry;
	const char *metric;
	const char *period;
	double value;
	const char *unit;
	int status;
	const char *note;
};

#define GOOD_OBS                                                             \
	{                                                                    \
		"photonics", "output_value", "2026", 12.5, "CNY_100M", 1, "" \
	}

/* A report and the storage behind it; free with report_free(). */
struct report {
	Indicator__Report r;
	Indicator__Observation *obs;
	Indicator__Observation **ptrs;
};

static void
report_init(
    struct report *rep, const char *district, const struct obs *o, size_t n)
{
	Indicator__Report r = INDICATOR__REPORT__INIT;

	rep->r = r;
	rep->r.agent_id = (char *)"kunshan-01";
	rep->r.district = (char *)district;
	rep->r.epoch = 42;
	rep->r.seq = 1;
	rep->r.sent_at_ms = 1795000000000;
	rep->obs = calloc(n ? n : 1, sizeof(*rep->obs));
	rep->ptrs = calloc(n ? n : 1, sizeof(*rep->ptrs));
	ck_assert_ptr_nonnull(rep->obs);
	ck_assert_ptr_nonnull(rep->ptrs);
	for (size_t i = 0; i < n; i++) {
		Indicator__Observation init = INDICATOR__OBSERVATION__INIT;

		rep->obs[i] = init;
		rep->obs[i].industry = (char *)o[i].industry;
		rep->obs[i].metric = (char *)o[i].metric;
		rep->obs[i].period = (char *)o[i].period;
		rep->obs[i].value = o[i].value;
		rep->obs[i].unit = (char *)o[i].unit;
		rep->obs[i].status = (Indicator__ObsStatus)o[i].status;
		rep->obs[i].note = (char *)o[i].note;
		rep->ptrs[i] = &rep->obs[i];
	}
	rep->r.n_observations = n;
	rep->r.observations = rep->ptrs;
}

static void
report_free(struct report *rep)
{
	free(rep->obs);
	free(rep->ptrs);
	rep->obs = NULL;
	rep->ptrs = NULL;
}

static void
setup(void)
{
	char err[256];

	ck_assert_msg(
	    config_load(&cfg, NULL, err, sizeof(err)) == 0, "%s", err);
}

/* Lists v's observation errors, for failure messages. */
static const char *
describe(const struct validation *v)
{
	static char buf[2048];
	size_t off = 0;

	buf[0] = '\0';
	if (v->code != NULL)
		off += (size_t)snprintf(
		    buf, sizeof(buf), "report %s (%s); ", v->code, v->message);
	for (size_t i = 0; i < v->nerrors && off < sizeof(buf); i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off,
		    "[%u] %s (%s); ", v->errors[i].index, v->errors[i].code,
		    v->errors[i].message);
	return buf;
}

/* Every code the rules give is among the codes the metrics count. */
static void
assert_listed(const char *code)
{
	ck_assert_msg(validate_code_index(validate_reject_codes,
			  VALIDATE_REJECT_CODES, code) >= 0,
	    "code %s is not in validate_reject_codes", code);
}

/* True when v lists code for observation index. */
static bool
has_error(const struct validation *v, uint32_t index, const char *code)
{
	for (size_t i = 0; i < v->nerrors; i++)
		if (v->errors[i].index == index &&
		    strcmp(v->errors[i].code, code) == 0)
			return true;
	return false;
}

/* --- a good report --------------------------------------------------- */

START_TEST(valid_report)
{
	static const struct obs o[] = {
		{ "photonics", "output_value", "2026", 12.5, "CNY_100M", 1,
		    "" },
		{ "quantum", "output_value", "2026", 120000, "CNY_10K", 2,
		    "初步统计" },
		{ "hydrogen", "output_value", "2026-Q3", 5e9, "CNY", 3, "" },
		{ "materials", "innovation_platforms", "2026-10", 3, "count", 0,
		    "" },
		{ "photonics", "output_value", "2026-Q4", 0, "CNY_10K", 1, "" },
	};
	static const double want[] = { 12.5, 12, 50, 3, 0 };
	struct validation v;
	struct report rep;

	validation_init(&v);
	report_init(&rep, "320583", o, NELEM(o));
	ck_assert_msg(
	    validate_report(&cfg.reg, &cfg.limits, &rep.r, &today, &v) == 0,
	    "%s", describe(&v));
	ck_assert_ptr_null(v.code);
	ck_assert_uint_eq(v.nerrors, 0);
	for (size_t i = 0; i < NELEM(o); i++) {
		ck_assert_msg(
		    v.values[i] == want[i], "value %zu: %.17g", i, v.values[i]);
		ck_assert_ptr_eq(
		    v.metrics[i], registry_metric(&cfg.reg, o[i].metric));
	}
	report_free(&rep);
	validation_free(&v);
	ck_assert_ptr_null(v.errors);
	ck_assert_ptr_null(v.values);
}
END_TEST

/* A report as large as the limit passes (and the value arrays grow). */
START_TEST(report_at_limit)
{
	static const char *const ind[] = { "materials", "photonics",
		"metaverse", "hydrogen", "digifin", "cellgene", "aerospace",
		"quantum" };
	size_t n = cfg.limits.max_observations;
	struct obs *o = calloc(n, sizeof(*o));
	char(*periods)[16] = calloc(n, sizeof(*periods));
	struct validation v;
	struct report rep;

	ck_assert_ptr_nonnull(o);
	ck_assert_ptr_nonnull(periods);
	for (size_t i = 0; i < n; i++) {
		size_t month = i / NELEM(ind); /* 0: 2015-01 */

		snprintf(periods[i], sizeof(periods[i]), "%04zu-%02zu",
		    2015 + month / 12, month % 12 + 1);
		o[i].industry = ind[i % NELEM(ind)];
		o[i].metric = "output_value";
		o[i].period = periods[i];
		o[i].value = (double)i;
		o[i].unit = "CNY_10K";
		o[i].note = "";
	}
	validation_init(&v);
	report_init(&rep, "320576", o, n);
	ck_assert_msg(
	    validate_report(&cfg.reg, &cfg.limits, &rep.r, &today, &v) == 0,
	    "%s", describe(&v));
	ck_assert_msg(v.values[n - 1] == (double)(n - 1) / 10000, "%.17g",
	    v.values[n - 1]);
	report_free(&rep);
	validation_free(&v);
	free(periods);
	free(o);
}
END_TEST

/* --- validate_sender ------------------------------------------------- */

static const struct {
	const char *name;
	const char *agent_id;
	uint64_t epoch;
	uint64_t seq;
	bool check_seq;
	unsigned max_agent_id; /* 0: the default limit */
	const char *code; /* NULL: accepted */
} senders[] = {
	{ "plain", "kunshan-01", 1, 1, true, 0, NULL },
	{ "UTF-8 name", "昆山-01", 7, 9, true, 0, NULL },
	{ "empty agent_id", "", 1, 1, true, 0, "bad_agent_id" },
	{ "64 bytes", S64, 1, 1, true, 0, NULL },
	{ "65 bytes", S64 "x", 1, 1, true, 0, "bad_agent_id" },
	{ "over a lower limit", "kunshan-01", 1, 1, true, 8, "bad_agent_id" },
	{ "at a lower limit", "kunshan1", 1, 1, true, 8, NULL },
	{ "invalid UTF-8", "kunshan\xff", 1, 1, true, 0, "bad_agent_id" },
	{ "truncated UTF-8", "昆\xe5\xb1", 1, 1, true, 0, "bad_agent_id" },
	{ "overlong UTF-8",
	    "a\xc0\xaf"
	    "b",
	    1, 1, true, 0, "bad_agent_id" },
	{ "newline", "evil\n<3>forged", 1, 1, true, 0, "bad_agent_id" },
	{ "escape", "kunshan-01\x1b[2J", 1, 1, true, 0, "bad_agent_id" },
	{ "tab", "kunshan\t01", 1, 1, true, 0, "bad_agent_id" },
	{ "DEL", "kunshan\x7f", 1, 1, true, 0, "bad_agent_id" },
	{ "C1 CSI",
	    "kunshan\xc2\x9b"
	    "31m",
	    1, 1, true, 0, "bad_agent_id" },
	{ "U+00A0 is not a control",
	    "kunshan\xc2\xa0"
	    "01",
	    1, 1, true, 0, NULL },
	{ "epoch 0", "kunshan-01", 0, 1, true, 0, "bad_epoch" },
	{ "epoch max", "kunshan-01", UINT64_MAX, 1, true, 0, NULL },
	{ "seq 0", "kunshan-01", 1, 0, true, 0, "bad_seq" },
	{ "seq 0 in a heartbeat", "kunshan-01", 1, 0, false, 0, NULL },
	{ "epoch 0 in a heartbeat", "kunshan-01", 0, 0, false, 0, "bad_epoch" },
	{ "agent_id comes first", "", 0, 0, true, 0, "bad_agent_id" },
	{ "epoch before seq", "kunshan-01", 0, 0, true, 0, "bad_epoch" },
};

START_TEST(sender)
{
	struct config_limits limits = cfg.limits;
	char msg[VALIDATE_MSG_MAX] = "";
	const char *code;

	if (senders[_i].max_agent_id != 0)
		limits.max_agent_id = senders[_i].max_agent_id;
	code = validate_sender(&limits, senders[_i].agent_id, senders[_i].epoch,
	    senders[_i].seq, senders[_i].check_seq, NULL, msg, sizeof(msg));
	if (senders[_i].code == NULL) {
		ck_assert_msg(code == NULL, "%s: refused with %s (%s)",
		    senders[_i].name, code, msg);
		return;
	}
	ck_assert_msg(code != NULL && strcmp(code, senders[_i].code) == 0,
	    "%s: got %s, want %s", senders[_i].name, code ? code : "NULL",
	    senders[_i].code);
	assert_listed(code);
	ck_assert_msg(msg[0] != '\0', "%s: no message", senders[_i].name);
}
END_TEST

/* --- one observation, one rule --------------------------------------- */

static const struct {
	const char *name;
	struct obs o;
	const char *code; /* NULL: valid */
} single[] = {
	{ "baseline", GOOD_OBS, NULL },
	{ "CNY_10K",
	    { "photonics", "output_value", "2026", 1, "CNY_10K", 1, "" },
	    NULL },
	{ "status unspecified",
	    { "photonics", "output_value", "2026", 1, "CNY_100M", 0, "" },
	    NULL },
	{ "status revised",
	    { "photonics", "output_value", "2026", 1, "CNY_100M", 3, "" },
	    NULL },

	{ "unknown industry",
	    { "robotics", "output_value", "2026", 1, "CNY_100M", 1, "" },
	    "unknown_industry" },
	{ "industry case",
	    { "Photonics", "output_value", "2026", 1, "CNY_100M", 1, "" },
	    "unknown_industry" },
	{ "empty industry",
	    { "", "output_value", "2026", 1, "CNY_100M", 1, "" },
	    "unknown_industry" },
	{ "industry '*'", { "*", "output_value", "2026", 1, "CNY_100M", 1, "" },
	    "unknown_industry" },
	{ "unknown metric",
	    { "photonics", "gdp", "2026", 1, "CNY_100M", 1, "" },
	    "unknown_metric" },
	{ "derived metric",
	    { "photonics", "clusters_100bn", "2026", 1, "count", 1, "" },
	    "unknown_metric" },
	{ "empty metric", { "photonics", "", "2026", 1, "CNY_100M", 1, "" },
	    "unknown_metric" },

	{ "period 25",
	    { "photonics", "output_value", "25", 1, "CNY_100M", 1, "" },
	    "bad_period" },
	{ "period Q0",
	    { "photonics", "output_value", "2026-Q0", 1, "CNY_100M", 1, "" },
	    "bad_period" },
	{ "period Q5",
	    { "photonics", "output_value", "2026-Q5", 1, "CNY_100M", 1, "" },
	    "bad_period" },
	{ "period q3",
	    { "photonics", "output_value", "2026-q3", 1, "CNY_100M", 1, "" },
	    "bad_period" },
	{ "period month 00",
	    { "photonics", "output_value", "2026-00", 1, "CNY_100M", 1, "" },
	    "bad_period" },
	{ "period month 13",
	    { "photonics", "output_value", "2026-13", 1, "CNY_100M", 1, "" },
	    "bad_period" },
	{ "period one-digit month",
	    { "photonics", "output_value", "2026-1", 1, "CNY_100M", 1, "" },
	    "bad_period" },
	{ "period with a space",
	    { "photonics", "output_value", " 2026", 1, "CNY_100M", 1, "" },
	    "bad_period" },
	{ "period with a trailing space",
	    { "photonics", "output_value", "2026 ", 1, "CNY_100M", 1, "" },
	    "bad_period" },
	{ "period date",
	    { "photonics", "output_value", "2026-09-01", 1, "CNY_100M", 1, "" },
	    "bad_period" },
	{ "period empty",
	    { "photonics", "output_value", "", 1, "CNY_100M", 1, "" },
	    "bad_period" },
	{ "period invalid UTF-8",
	    { "photonics", "output_value", "2026\xff", 1, "CNY_100M", 1, "" },
	    "bad_period" },

	{ "next year",
	    { "photonics", "output_value", "2027", 1, "CNY_100M", 1, "" },
	    "future_period" },
	{ "next month",
	    { "photonics", "output_value", "2026-12", 1, "CNY_100M", 1, "" },
	    "future_period" },
	{ "next year's first quarter",
	    { "photonics", "output_value", "2027-Q1", 1, "CNY_100M", 1, "" },
	    "future_period" },
	{ "current quarter",
	    { "photonics", "output_value", "2026-Q4", 1, "CNY_100M", 1, "" },
	    NULL },
	{ "current month",
	    { "photonics", "output_value", "2026-11", 1, "CNY_100M", 1, "" },
	    NULL },

	{ "2014", { "photonics", "output_value", "2014", 1, "CNY_100M", 1, "" },
	    "too_early" },
	{ "2014-12",
	    { "photonics", "output_value", "2014-12", 1, "CNY_100M", 1, "" },
	    "too_early" },
	{ "2014-Q4",
	    { "photonics", "output_value", "2014-Q4", 1, "CNY_100M", 1, "" },
	    "too_early" },
	{ "2015", { "photonics", "output_value", "2015", 1, "CNY_100M", 1, "" },
	    NULL },
	{ "2015-01",
	    { "photonics", "output_value", "2015-01", 1, "CNY_100M", 1, "" },
	    NULL },

	{ "NaN",
	    { "photonics", "output_value", "2026", NAN, "CNY_100M", 1, "" },
	    "not_finite" },
	{ "+inf",
	    { "photonics", "output_value", "2026", INFINITY, "CNY_100M", 1,
		"" },
	    "not_finite" },
	{ "-inf",
	    { "photonics", "output_value", "2026", -INFINITY, "CNY_100M", 1,
		"" },
	    "not_finite" },
	{ "negative",
	    { "photonics", "output_value", "2026", -0.5, "CNY_100M", 1, "" },
	    "negative" },
	{ "negative count",
	    { "photonics", "chain_leaders", "2026", -1, "count", 1, "" },
	    "negative" },
	{ "zero", { "photonics", "output_value", "2026", 0, "CNY_100M", 1, "" },
	    NULL },

	{ "fractional count",
	    { "photonics", "innovation_platforms", "2026", 2.5, "count", 1,
		"" },
	    "not_integer" },
	{ "small fraction",
	    { "photonics", "pilot_parks", "2026", 0.001, "count", 1, "" },
	    "not_integer" },
	{ "whole count",
	    { "photonics", "innovation_platforms", "2026", 3, "count", 1, "" },
	    NULL },
	{ "fractional money",
	    { "photonics", "output_value", "2026", 0.001, "CNY_100M", 1, "" },
	    NULL },

	{ "money unit for a count",
	    { "photonics", "innovation_platforms", "2026", 3, "CNY_100M", 1,
		"" },
	    "unknown_unit" },
	{ "count unit for money",
	    { "photonics", "output_value", "2026", 3, "count", 1, "" },
	    "unknown_unit" },
	{ "USD", { "photonics", "output_value", "2026", 3, "USD", 1, "" },
	    "unknown_unit" },
	{ "empty unit", { "photonics", "output_value", "2026", 3, "", 1, "" },
	    "unknown_unit" },
	{ "unit case",
	    { "photonics", "output_value", "2026", 3, "cny_100m", 1, "" },
	    "unknown_unit" },

	{ "above max",
	    { "photonics", "output_value", "2026", 40000.01, "CNY_100M", 1,
		"" },
	    "implausible" },
	{ "at max",
	    { "photonics", "output_value", "2026", 40000, "CNY_100M", 1, "" },
	    NULL },
	{ "above max in CNY_10K",
	    { "photonics", "output_value", "2026", 400000001, "CNY_10K", 1,
		"" },
	    "implausible" },
	{ "at max in CNY_10K",
	    { "photonics", "output_value", "2026", 400000000, "CNY_10K", 1,
		"" },
	    NULL },
	{ "at max in CNY",
	    { "photonics", "output_value", "2026", 4e12, "CNY", 1, "" }, NULL },
	{ "above max in CNY",
	    { "photonics", "output_value", "2026", 4.00000001e12, "CNY", 1,
		"" },
	    "implausible" },
	{ "huge",
	    { "photonics", "output_value", "2026", 1e308, "CNY_100M", 1, "" },
	    "implausible" },
	{ "count above max",
	    { "photonics", "core_products", "2026", 100001, "count", 1, "" },
	    "implausible" },

	{ "note not UTF-8",
	    { "photonics", "output_value", "2026", 1, "CNY_100M", 1, "\xff" },
	    "bad_string" },
	{ "note overlong",
	    { "photonics", "output_value", "2026", 1, "CNY_100M", 1,
		"\xc0\xaf" },
	    "bad_string" },
	{ "note surrogate",
	    { "photonics", "output_value", "2026", 1, "CNY_100M", 1,
		"\xed\xa0\x80" },
	    "bad_string" },
	{ "note above U+10FFFF",
	    { "photonics", "output_value", "2026", 1, "CNY_100M", 1,
		"\xf4\x90\x80\x80" },
	    "bad_string" },
	{ "note truncated",
	    { "photonics", "output_value", "2026", 1, "CNY_100M", 1,
		"进展\xe9\xa1" },
	    "bad_string" },
	{ "note lone continuation",
	    { "photonics", "output_value", "2026", 1, "CNY_100M", 1, "a\x80" },
	    "bad_string" },
	{ "note max_note + 1 bytes",
	    { "photonics", "output_value", "2026", 1, "CNY_100M", 1, S256 "x" },
	    "bad_string" },
	{ "note max_note bytes",
	    { "photonics", "output_value", "2026", 1, "CNY_100M", 1, S256 },
	    NULL },
	{ "note in Chinese and emoji",
	    { "photonics", "output_value", "2026", 1, "CNY_100M", 1,
		"进展顺利 \xf0\x9f\x98\x80" },
	    NULL },
	{ "industry not UTF-8",
	    { "photon\xe9", "output_value", "2026", 1, "CNY_100M", 1, "" },
	    "bad_string" },
	{ "industry too long",
	    { S8 S8 S8 S8 "x", "output_value", "2026", 1, "CNY_100M", 1, "" },
	    "bad_string" },
	{ "metric not UTF-8",
	    { "photonics", "output\xff", "2026", 1, "CNY_100M", 1, "" },
	    "bad_string" },
	{ "unit not UTF-8",
	    { "photonics", "output_value", "2026", 1, "CNY\xff", 1, "" },
	    "bad_string" },

	{ "industry with a newline",
	    { "photonics\n", "output_value", "2026", 1, "CNY_100M", 1, "" },
	    "bad_string" },
	{ "metric with an escape",
	    { "photonics", "\x1b[2Joutput_value", "2026", 1, "CNY_100M", 1,
		"" },
	    "bad_string" },
	{ "period with a newline",
	    { "photonics", "output_value", "2026\n", 1, "CNY_100M", 1, "" },
	    "bad_string" },
	{ "unit with C1 NEL",
	    { "photonics", "output_value", "2026", 1, "CNY_100M\xc2\x85", 1,
		"" },
	    "bad_string" },
	{ "note with a tab",
	    { "photonics", "output_value", "2026", 1, "CNY_100M", 1,
		"first\tsecond" },
	    NULL },
	{ "note with a newline",
	    { "photonics", "output_value", "2026", 1, "CNY_100M", 1,
		"first\nsecond" },
	    "bad_string" },
	{ "note with a carriage return",
	    { "photonics", "output_value", "2026", 1, "CNY_100M", 1, "a\rb" },
	    "bad_string" },
	{ "note with an escape",
	    { "photonics", "output_value", "2026", 1, "CNY_100M", 1,
		"\x1b]0;pwned\x07" },
	    "bad_string" },
	{ "note with DEL",
	    { "photonics", "output_value", "2026", 1, "CNY_100M", 1, "a\x7f" },
	    "bad_string" },
	{ "note with C1 CSI",
	    { "photonics", "output_value", "2026", 1, "CNY_100M", 1,
		"a\xc2\x9b"
		"2J" },
	    "bad_string" },
	{ "note with U+00A0",
	    { "photonics", "output_value", "2026", 1, "CNY_100M", 1,
		"a\xc2\xa0"
		"b" },
	    NULL },

	{ "status 7",
	    { "photonics", "output_value", "2026", 1, "CNY_100M", 7, "" },
	    "bad_status" },
	{ "status 4",
	    { "photonics", "output_value", "2026", 1, "CNY_100M", 4, "" },
	    "bad_status" },
	{ "status -1",
	    { "photonics", "output_value", "2026", 1, "CNY_100M", -1, "" },
	    "bad_status" },
};

START_TEST(single_observation)
{
	struct validation v;
	struct report rep;
	int rc;

	validation_init(&v);
	report_init(&rep, "320583", &single[_i].o, 1);
	rc = validate_report(&cfg.reg, &cfg.limits, &rep.r, &today, &v);
	ck_assert_msg(v.code == NULL, "%s: %s", single[_i].name, describe(&v));
	if (single[_i].code == NULL) {
		ck_assert_msg(rc == 0 && v.nerrors == 0, "%s: refused: %s",
		    single[_i].name, describe(&v));
	} else {
		ck_assert_msg(rc == 1, "%s: accepted", single[_i].name);
		ck_assert_msg(
		    v.nerrors == 1 && v.errors[0].index == 0 &&
			strcmp(v.errors[0].code, single[_i].code) == 0,
		    "%s: want only [0] %s, got %s", single[_i].name,
		    single[_i].code, describe(&v));
		ck_assert_msg(v.errors[0].message[0] != '\0', "%s: no message",
		    single[_i].name);
		assert_listed(v.errors[0].code);
	}
	report_free(&rep);
	validation_free(&v);
}
END_TEST

/* --- several problems ------------------------------------------------ */

static const struct {
	const char *name;
	struct obs o;
	const char *codes[8]; /* all of them, any order */
} multi[] = {
	{ "unknown industry and negative",
	    { "robotics", "output_value", "2026", -1, "CNY_100M", 1, "" },
	    { "unknown_industry", "negative" } },
	{ "future, too big, wrong status",
	    { "photonics", "output_value", "2027", 50000, "CNY_100M", 5, "" },
	    { "future_period", "implausible", "bad_status" } },
	{ "fractional count out of bounds",
	    { "quantum", "core_products", "2014", 100000.5, "count", 1, "" },
	    { "too_early", "not_integer", "implausible" } },
	{ "unit and note",
	    { "quantum", "output_value", "2026", 1, "USD", 1, "\xff" },
	    { "unknown_unit", "bad_string" } },
	{ "everything", { "\xff", "gdp", "2030-Q9", NAN, "USD", 9, S256 "x" },
	    { "bad_string", "unknown_metric", "bad_period", "not_finite",
		"bad_status", "bad_string" } },
};

START_TEST(several_problems)
{
	struct validation v;
	struct report rep;
	size_t want = 0;
	bool used[16] = { false };

	while (want < NELEM(multi[_i].codes) && multi[_i].codes[want])
		want++;
	validation_init(&v);
	report_init(&rep, "320583", &multi[_i].o, 1);
	ck_assert_int_eq(
	    validate_report(&cfg.reg, &cfg.limits, &rep.r, &today, &v), 1);
	ck_assert_ptr_null(v.code);
	ck_assert_msg(v.nerrors == want, "%s: want %zu errors, got %s",
	    multi[_i].name, want, describe(&v));
	for (size_t k = 0; k < want; k++) {
		bool found = false;

		for (size_t i = 0; i < v.nerrors && !found; i++) {
			if (used[i] || v.errors[i].index != 0 ||
			    strcmp(v.errors[i].code, multi[_i].codes[k]) != 0)
				continue;
			used[i] = found = true;
		}
		ck_assert_msg(found, "%s: %s missing from %s", multi[_i].name,
		    multi[_i].codes[k], describe(&v));
	}
	for (size_t i = 0; i < v.nerrors; i++)
		assert_listed(v.errors[i].code);
	report_free(&rep);
	validation_free(&v);
}
END_TEST

/* Errors carry the index of their own observation. */
START_TEST(errors_point_at_their_observation)
{
	static const struct obs o[] = {
		GOOD_OBS,
		{ "robotics", "output_value", "2026", -1, "CNY_100M", 1, "" },
		{ "quantum", "chain_leaders", "2026-Q3", 4, "count", 2, "" },
		{ "quantum", "output_value", "2026-12", 1, "CNY_100M", 1, "" },
	};
	struct validation v;
	struct report rep;

	validation_init(&v);
	report_init(&rep, "320583", o, NELEM(o));
	ck_assert_int_eq(
	    validate_report(&cfg.reg, &cfg.limits, &rep.r, &today, &v), 1);
	ck_assert_msg(v.nerrors == 3, "%s", describe(&v));
	ck_assert(has_error(&v, 1, "unknown_industry"));
	ck_assert(has_error(&v, 1, "negative"));
	ck_assert(has_error(&v, 3, "future_period"));
	for (size_t i = 0; i < v.nerrors; i++)
		ck_assert_msg(v.errors[i].index == 1 || v.errors[i].index == 3,
		    "%s", describe(&v));
	report_free(&rep);
	validation_free(&v);
}
END_TEST

START_TEST(duplicate_key_flags_later)
{
	static const struct obs o[] = {
		{ "photonics", "output_value", "2026", 1, "CNY_100M", 1, "" },
		{ "photonics", "output_value", "2026-Q1", 1, "CNY_100M", 1,
		    "" },
		{ "quantum", "output_value", "2026", 1, "CNY_100M", 1, "" },
		{ "photonics", "chain_leaders", "2026", 1, "count", 1, "" },
		/* same key as 0, in another unit and status */
		{ "photonics", "output_value", "2026", 10000, "CNY_10K", 3,
		    "revised" },
		{ "photonics", "output_value", "2026", 2, "CNY_100M", 1, "" },
	};
	struct validation v;
	struct report rep;

	validation_init(&v);
	report_init(&rep, "320583", o, NELEM(o));
	ck_assert_int_eq(
	    validate_report(&cfg.reg, &cfg.limits, &rep.r, &today, &v), 1);
	ck_assert_msg(v.nerrors == 2 && has_error(&v, 4, "duplicate_key") &&
			  has_error(&v, 5, "duplicate_key"),
	    "%s", describe(&v));
	ck_assert_msg(strstr(v.errors[0].message, "2026") != NULL, "%s",
	    v.errors[0].message);
	report_free(&rep);
	validation_free(&v);
}
END_TEST

/* A duplicate of a bad observation is still a duplicate. */
START_TEST(duplicate_of_bad_observation)
{
	static const struct obs o[] = {
		{ "photonics", "output_value", "2026", -1, "CNY_100M", 1, "" },
		{ "photonics", "output_value", "2026", 1, "CNY_100M", 1, "" },
	};
	struct validation v;
	struct report rep;

	validation_init(&v);
	report_init(&rep, "320583", o, NELEM(o));
	ck_assert_int_eq(
	    validate_report(&cfg.reg, &cfg.limits, &rep.r, &today, &v), 1);
	ck_assert_msg(v.nerrors == 2 && has_error(&v, 0, "negative") &&
			  has_error(&v, 1, "duplicate_key"),
	    "%s", describe(&v));
	report_free(&rep);
	validation_free(&v);
}
END_TEST

/* Every message of v is valid UTF-8: it goes into an Ack's proto3 string,
 * which clients refuse to decode otherwise. */
static bool
messages_utf8(const struct validation *v)
{
	if (!utf8_valid(v->message, strlen(v->message)))
		return false;
	for (size_t i = 0; i < v->nerrors; i++)
		if (!utf8_valid(
			v->errors[i].message, strlen(v->errors[i].message)))
			return false;
	return true;
}

#define KUN "\xe6\x98\x86" /* 昆, three bytes */
#define KUN10 KUN KUN KUN KUN KUN KUN KUN KUN KUN KUN

/* Duplicates of keys that cannot be echoed as they are. */
static const struct {
	const char *name;
	const char *industry;
	const char *period;
} dup_keys[] = {
	{ "invalid byte", "\xff", "2026" },
	{ "cut character", "\xe6\x98", "2026" },
	{ "long UTF-8 industry", KUN10 KUN10 KUN10 KUN10 KUN10 KUN10 KUN10,
	    "2026" },
	{ "invalid period", "photonics", "20\xc3" },
};

START_TEST(duplicate_key_message_is_utf8)
{
	const struct obs o[] = {
		{ dup_keys[_i].industry, "output_value", dup_keys[_i].period, 1,
		    "CNY_100M", 1, "" },
		{ dup_keys[_i].industry, "output_value", dup_keys[_i].period, 1,
		    "CNY_100M", 1, "" },
	};
	struct validation v;
	struct report rep;

	validation_init(&v);
	report_init(&rep, "320583", o, NELEM(o));
	ck_assert_int_eq(
	    validate_report(&cfg.reg, &cfg.limits, &rep.r, &today, &v), 1);
	ck_assert_msg(has_error(&v, 1, "duplicate_key"), "%s: %s",
	    dup_keys[_i].name, describe(&v));
	ck_assert_msg(
	    messages_utf8(&v), "%s: a message is not UTF-8", dup_keys[_i].name);
	report_free(&rep);
	validation_free(&v);
}
END_TEST

/* The input fuzz_ingest found: a packed AgentMessage whose report holds
 * two observations with industry "\xff"; the duplicate_key message echoed
 * the byte into the Ack. */
static const uint8_t fuzz_dup_ff[] = { 0x0a, 0x67, 0x0a, 0x01, 0x61, 0x12, 0x06,
	0x33, 0x32, 0x30, 0x35, 0x38, 0x33, 0x18, 0x01, 0x20, 0x01, 0x32, 0x2a,
	0x0a, 0x01, 0xff, 0x12, 0x0c, 0x6f, 0x75, 0x74, 0x70, 0x75, 0x74, 0x5f,
	0x76, 0x61, 0x6c, 0x75, 0x65, 0x1a, 0x04, 0x32, 0x30, 0x32, 0x35, 0x21,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x3f, 0x2a, 0x08, 0x43, 0x4e,
	0x59, 0x5f, 0x31, 0x30, 0x30, 0x4d, 0x32, 0x2a, 0x0a, 0x01, 0xff, 0x12,
	0x0c, 0x6f, 0x75, 0x74, 0x70, 0x75, 0x74, 0x5f, 0x76, 0x61, 0x6c, 0x75,
	0x65, 0x1a, 0x04, 0x32, 0x30, 0x32, 0x35, 0x21, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0xf0, 0x3f, 0x2a, 0x08, 0x43, 0x4e, 0x59, 0x5f, 0x31, 0x30,
	0x30, 0x4d };

START_TEST(fuzz_duplicate_invalid_utf8)
{
	Indicator__AgentMessage *am;
	struct validation v;

	am = indicator__agent_message__unpack(
	    NULL, sizeof(fuzz_dup_ff), fuzz_dup_ff);
	ck_assert_ptr_nonnull(am);
	ck_assert_int_eq(am->body_case, INDICATOR__AGENT_MESSAGE__BODY_REPORT);
	validation_init(&v);
	ck_assert_int_eq(
	    validate_report(&cfg.reg, &cfg.limits, am->report, &today, &v), 1);
	ck_assert_msg(
	    has_error(&v, 0, "bad_string") && has_error(&v, 1, "duplicate_key"),
	    "%s", describe(&v));
	ck_assert_msg(messages_utf8(&v), "a message is not UTF-8");
	validation_free(&v);
	indicator__agent_message__free_unpacked(am, NULL);
}
END_TEST

/* --- report-level ---------------------------------------------------- */

static const struct {
	const char *name;
	const char *district;
	size_t nobs; /* of GOOD_OBS-like distinct observations */
	unsigned max_observations; /* 0: the default limit */
	const char *code; /* NULL: valid */
} reports[] = {
	{ "good", "320583", 1, 0, NULL },
	{ "Suzhou Industrial Park", "320576", 1, 0, NULL },
	{ "SIP's pre-2023 code", "320571", 1, 0, "unknown_district" },
	{ "the city", "320500", 1, 0, "unknown_district" },
	{ "empty district", "", 1, 0, "unknown_district" },
	{ "district with a space", "320583 ", 1, 0, "unknown_district" },
	{ "district not UTF-8", "3205\xff", 1, 0, "bad_string" },
	{ "district too long", S8 S8 S8 S8 "x", 1, 0, "bad_string" },
	{ "district with a newline", "320583\n", 1, 0, "bad_string" },
	{ "district with an escape",
	    "\x1b"
	    "320583",
	    1, 0, "bad_string" },
	{ "no observations", "320583", 0, 0, "empty_report" },
	{ "at a lower limit", "320583", 3, 3, NULL },
	{ "over a lower limit", "320583", 4, 3, "too_many_observations" },
	{ "over the default limit", "320583", 1001, 0,
	    "too_many_observations" },
};

START_TEST(report_level)
{
	struct config_limits limits = cfg.limits;
	struct obs *o = calloc(reports[_i].nobs + 1, sizeof(*o));
	char(*periods)[16] = calloc(reports[_i].nobs + 1, sizeof(*periods));
	struct validation v;
	struct report rep;
	int rc;

	ck_assert_ptr_nonnull(o);
	ck_assert_ptr_nonnull(periods);
	if (reports[_i].max_observations != 0)
		limits.max_observations = reports[_i].max_observations;
	for (size_t i = 0; i < reports[_i].nobs; i++) {
		snprintf(periods[i], sizeof(periods[i]), "%04zu-%02zu",
		    2015 + i / 12 % 11, i % 12 + 1);
		o[i].industry = i < 132 ? "photonics" : "quantum";
		o[i].metric = i < 264 ? "output_value" : "chain_leaders";
		o[i].period = periods[i];
		o[i].value = 1;
		o[i].unit = i < 264 ? "CNY_100M" : "count";
		o[i].status = 1;
		o[i].note = "";
	}
	validation_init(&v);
	report_init(&rep, reports[_i].district, o, reports[_i].nobs);
	rc = validate_report(&cfg.reg, &limits, &rep.r, &today, &v);
	if (reports[_i].code == NULL) {
		ck_assert_msg(rc == 0 && v.code == NULL && v.nerrors == 0,
		    "%s: %s", reports[_i].name, describe(&v));
	} else {
		ck_assert_msg(rc == 1 && v.code != NULL &&
				  strcmp(v.code, reports[_i].code) == 0,
		    "%s: want %s, got %s", reports[_i].name, reports[_i].code,
		    describe(&v));
		ck_assert_msg(
		    v.message[0] != '\0', "%s: no message", reports[_i].name);
		assert_listed(v.code);
	}
	report_free(&rep);
	validation_free(&v);
	free(periods);
	free(o);
}
END_TEST

/* The district is wrong, and the observations' own problems are still
 * listed: the agent fixes everything in one go. */
START_TEST(unknown_district_lists_observation_errors)
{
	static const struct obs o[] = {
		GOOD_OBS,
		{ "photonics", "output_value", "2031", 1, "CNY_100M", 1, "" },
		{ "quantum", "chain_leaders", "2026", 1.5, "count", 1, "" },
	};
	struct validation v;
	struct report rep;

	validation_init(&v);
	report_init(&rep, "999999", o, NELEM(o));
	ck_assert_int_eq(
	    validate_report(&cfg.reg, &cfg.limits, &rep.r, &today, &v), 1);
	ck_assert_ptr_nonnull(v.code);
	ck_assert_str_eq(v.code, "unknown_district");
	ck_assert_msg(strstr(v.message, "999999") != NULL, "%s", v.message);
	ck_assert_msg(v.nerrors == 2 && has_error(&v, 1, "future_period") &&
			  has_error(&v, 2, "not_integer"),
	    "%s", describe(&v));
	report_free(&rep);
	validation_free(&v);
}
END_TEST

/* --- reuse ----------------------------------------------------------- */

START_TEST(validation_reused)
{
	static const struct obs bad[] = {
		{ "robotics", "output_value", "2026", -1, "CNY_100M", 1, "" },
		{ "photonics", "output_value", "2026", 1, "USD", 1, "" },
	};
	static const struct obs good1[] = { GOOD_OBS };
	static const struct obs good3[] = {
		{ "photonics", "output_value", "2026", 120000, "CNY_10K", 1,
		    "" },
		{ "quantum", "output_value", "2026", 7, "CNY_100M", 1, "" },
		{ "quantum", "app_scenarios", "2026", 9, "count", 1, "" },
	};
	struct validation v;
	struct report rep;

	validation_init(&v);

	report_init(&rep, "000000", bad, NELEM(bad));
	ck_assert_int_eq(
	    validate_report(&cfg.reg, &cfg.limits, &rep.r, &today, &v), 1);
	ck_assert_str_eq(v.code, "unknown_district");
	ck_assert_uint_eq(v.nerrors, 3);
	report_free(&rep);

	report_init(&rep, "320583", good1, NELEM(good1));
	ck_assert_msg(
	    validate_report(&cfg.reg, &cfg.limits, &rep.r, &today, &v) == 0,
	    "%s", describe(&v));
	ck_assert_ptr_null(v.code);
	ck_assert_str_eq(v.message, "");
	ck_assert_uint_eq(v.nerrors, 0);
	ck_assert_double_eq(v.values[0], 12.5);
	report_free(&rep);

	report_init(&rep, "320583", NULL, 0);
	ck_assert_int_eq(
	    validate_report(&cfg.reg, &cfg.limits, &rep.r, &today, &v), 1);
	ck_assert_str_eq(v.code, "empty_report");
	ck_assert_uint_eq(v.nerrors, 0);
	report_free(&rep);

	report_init(&rep, "320583", good3, NELEM(good3));
	ck_assert_msg(
	    validate_report(&cfg.reg, &cfg.limits, &rep.r, &today, &v) == 0,
	    "%s", describe(&v));
	ck_assert_ptr_null(v.code);
	ck_assert_double_eq(v.values[0], 12);
	ck_assert_double_eq(v.values[1], 7);
	ck_assert_double_eq(v.values[2], 9);
	ck_assert_ptr_eq(
	    v.metrics[2], registry_metric(&cfg.reg, "app_scenarios"));
	report_free(&rep);

	report_init(&rep, "320583", bad, NELEM(bad));
	ck_assert_int_eq(
	    validate_report(&cfg.reg, &cfg.limits, &rep.r, &today, &v), 1);
	ck_assert_ptr_null(v.code);
	ck_assert_msg(v.nerrors == 3 && has_error(&v, 0, "unknown_industry") &&
			  has_error(&v, 0, "negative") &&
			  has_error(&v, 1, "unknown_unit"),
	    "%s", describe(&v));
	report_free(&rep);

	validation_free(&v);
	/* Freed twice is harmless: validation_free() leaves it empty. */
	validation_free(&v);
}
END_TEST

/* A different first year and a different today move the boundaries. */
START_TEST(boundaries_follow_registry_and_date)
{
	static const struct {
		const char *period;
		const char *code;
	} cases[] = {
		{ "2019", "too_early" },
		{ "2019-Q4", "too_early" },
		{ "2020", NULL },
		{ "2021", NULL },
		{ "2021-Q1", NULL },
		{ "2021-01", NULL },
		{ "2021-02", "future_period" },
		{ "2021-Q2", "future_period" },
		{ "2022", "future_period" },
	};
	static struct registry reg;
	const struct civil_date newyear = { 2021, 1, 1 };

	reg = cfg.reg;
	reg.first_year = 2020;
	for (size_t i = 0; i < NELEM(cases); i++) {
		struct obs o = { "photonics", "output_value", cases[i].period,
			1, "CNY_100M", 1, "" };
		struct validation v;
		struct report rep;
		int rc;

		validation_init(&v);
		report_init(&rep, "320583", &o, 1);
		rc = validate_report(&reg, &cfg.limits, &rep.r, &newyear, &v);
		if (cases[i].code == NULL)
			ck_assert_msg(
			    rc == 0, "%s: %s", cases[i].period, describe(&v));
		else
			ck_assert_msg(
			    rc == 1 && v.nerrors == 1 &&
				strcmp(v.errors[0].code, cases[i].code) == 0,
			    "%s: want %s, got %s", cases[i].period,
			    cases[i].code, describe(&v));
		report_free(&rep);
		validation_free(&v);
	}
}
END_TEST

/* --- NUL bytes on the wire (validate_wire) ------------------------- */

/*
 * A message is built with '#' where the NUL goes, packed, and the '#'
 * replaced by a NUL in the packed bytes: protobuf-c then decodes the
 * string cut at the NUL, as it does for an attacker's.
 */
static int
nul_in_string(const struct pbwire_path *path,
    const ProtobufCFieldDescriptor *field, const uint8_t *data, size_t len,
    void *arg)
{
	(void)path;
	(void)field;
	(void)arg;
	for (size_t i = 0; i < len; i++)
		if (data[i] == '#')
			((uint8_t *)data)[i] = '\0';
	return 0;
}

/* Only inside strings: a number's bytes may be '#' (0x23) too. */
static uint8_t *
pack_with_nul(const Indicator__AgentMessage *am, size_t *len)
{
	uint8_t *buf;

	*len = indicator__agent_message__get_packed_size(am);
	buf = malloc(*len);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(indicator__agent_message__pack(am, buf), *len);
	ck_assert_int_eq(pbwire_strings(&indicator__agent_message__descriptor,
			     buf, *len, nul_in_string, NULL),
	    0);
	return buf;
}

static const struct {
	const char *name;
	const char *agent_id;
	const char *district;
	struct obs o[2];
	size_t nobs;
	const char *sender_code; /* validate_sender()'s; NULL: passes */
	const char *report_code; /* v.code; NULL: none */
	int obs_index; /* of the one bad_string error; -1: none */
} wire_cases[] = {
	{ "clean", "kunshan-01", "320583", { GOOD_OBS }, 1, NULL, NULL, -1 },
	{ "agent_id", "nulvictim#attacker", "320583", { GOOD_OBS }, 1,
	    "bad_agent_id", NULL, -1 },
	{ "agent_id starting with NUL", "#kunshan-01", "320583", { GOOD_OBS },
	    1, "bad_agent_id", NULL, -1 },
	{ "district", "kunshan-01", "320505#zzz", { GOOD_OBS }, 1, NULL,
	    "bad_string", -1 },
	{ "industry", "kunshan-01", "320583",
	    { { "photonics#EVIL", "output_value", "2026", 1, "CNY_100M", 1,
		"" } },
	    1, NULL, NULL, 0 },
	{ "metric", "kunshan-01", "320583",
	    { { "photonics", "output_value#x", "2026", 1, "CNY_100M", 1, "" } },
	    1, NULL, NULL, 0 },
	{ "period", "kunshan-01", "320583",
	    { { "photonics", "output_value", "2021#-13", 1, "CNY_100M", 1,
		"" } },
	    1, NULL, NULL, 0 },
	{ "unit", "kunshan-01", "320583",
	    { { "photonics", "output_value", "2026", 1, "CNY_100M#", 1, "" } },
	    1, NULL, NULL, 0 },
	{ "note", "kunshan-01", "320583",
	    { { "photonics", "output_value", "2026", 1, "CNY_100M", 1,
		"kept#cut" } },
	    1, NULL, NULL, 0 },
	{ "second observation's industry", "kunshan-01", "320583",
	    { GOOD_OBS,
		{ "quantum#", "output_value", "2026", 1, "CNY_100M", 1, "" } },
	    2, NULL, NULL, 1 },
};

START_TEST(wire_nul)
{
	Indicator__AgentMessage am = INDICATOR__AGENT_MESSAGE__INIT;
	Indicator__AgentMessage *back;
	char msg[VALIDATE_MSG_MAX] = "";
	struct validation v;
	struct report rep;
	const char *code;
	uint8_t *buf;
	size_t len;
	int rc;

	report_init(&rep, wire_cases[_i].district, wire_cases[_i].o,
	    wire_cases[_i].nobs);
	rep.r.agent_id = (char *)wire_cases[_i].agent_id;
	am.body_case = INDICATOR__AGENT_MESSAGE__BODY_REPORT;
	am.report = &rep.r;
	buf = pack_with_nul(&am, &len);
	back = indicator__agent_message__unpack(NULL, len, buf);
	ck_assert_ptr_nonnull(back);
	validation_init(&v);
	validate_wire(&v, buf, len);
	code = validate_sender(&cfg.limits, back->report->agent_id,
	    back->report->epoch, back->report->seq, true, &v, msg, sizeof(msg));
	if (wire_cases[_i].sender_code != NULL) {
		ck_assert_msg(code != NULL &&
				  strcmp(code, wire_cases[_i].sender_code) == 0,
		    "%s: sender %s, want %s", wire_cases[_i].name,
		    code ? code : "NULL", wire_cases[_i].sender_code);
		ck_assert_msg(strstr(msg, "NUL") != NULL, "%s: message %s",
		    wire_cases[_i].name, msg);
		goto done;
	}
	ck_assert_msg(
	    code == NULL, "%s: sender refused: %s", wire_cases[_i].name, msg);
	rc = validate_report(&cfg.reg, &cfg.limits, back->report, &today, &v);
	if (wire_cases[_i].report_code == NULL &&
	    wire_cases[_i].obs_index < 0) {
		ck_assert_msg(
		    rc == 0, "%s: %s", wire_cases[_i].name, describe(&v));
		goto done;
	}
	ck_assert_msg(rc == 1, "%s: accepted", wire_cases[_i].name);
	if (wire_cases[_i].report_code != NULL)
		ck_assert_msg(
		    v.code != NULL &&
			strcmp(v.code, wire_cases[_i].report_code) == 0 &&
			strstr(v.message, "NUL") != NULL,
		    "%s: %s", wire_cases[_i].name, describe(&v));
	if (wire_cases[_i].obs_index >= 0) {
		ck_assert_msg(v.nerrors == 1 &&
				  v.errors[0].index ==
				      (uint32_t)wire_cases[_i].obs_index &&
				  strcmp(v.errors[0].code, "bad_string") == 0 &&
				  strstr(v.errors[0].message, "NUL") != NULL,
		    "%s: %s", wire_cases[_i].name, describe(&v));
	}
	/* Consumed by validate_report(): the next report starts clean. */
	ck_assert(!v.nul_district && !v.nul_other && v.nnul_obs == 0);
done:
	validation_free(&v);
	indicator__agent_message__free_unpacked(back, NULL);
	free(buf);
	report_free(&rep);
}
END_TEST

/* A heartbeat's agent_id with a NUL is the sender's problem too. */
START_TEST(wire_nul_heartbeat)
{
	Indicator__AgentMessage am = INDICATOR__AGENT_MESSAGE__INIT;
	Indicator__Heartbeat hb = INDICATOR__HEARTBEAT__INIT;
	Indicator__AgentMessage *back;
	char msg[VALIDATE_MSG_MAX] = "";
	struct validation v;
	uint8_t *buf;
	size_t len;

	hb.agent_id = (char *)"kunshan-01#other";
	hb.epoch = 7;
	am.body_case = INDICATOR__AGENT_MESSAGE__BODY_HEARTBEAT;
	am.heartbeat = &hb;
	buf = pack_with_nul(&am, &len);
	back = indicator__agent_message__unpack(NULL, len, buf);
	ck_assert_ptr_nonnull(back);
	ck_assert_str_eq(back->heartbeat->agent_id, "kunshan-01");
	validation_init(&v);
	validate_wire(&v, buf, len);
	ck_assert_str_eq(validate_sender(&cfg.limits, back->heartbeat->agent_id,
			     7, 0, false, &v, msg, sizeof(msg)),
	    "bad_agent_id");
	validation_free(&v);
	indicator__agent_message__free_unpacked(back, NULL);
	free(buf);
}
END_TEST

/*
 * The body twice: protobuf-c keeps the second Report, and the first one's
 * district held a NUL. Nothing the decoded message shows is wrong, and it
 * is refused all the same: any string from the wire with a NUL is.
 */
START_TEST(wire_nul_in_a_body_not_kept)
{
	Indicator__AgentMessage am = INDICATOR__AGENT_MESSAGE__INIT;
	Indicator__AgentMessage *back;
	static const struct obs good = GOOD_OBS;
	char msg[VALIDATE_MSG_MAX] = "";
	struct report first, second;
	uint8_t *b1, *b2, *both;
	size_t l1, l2;
	struct validation v;

	report_init(&first, "320583#x", &good, 1);
	report_init(&second, "320583", &good, 1);
	am.body_case = INDICATOR__AGENT_MESSAGE__BODY_REPORT;
	am.report = &first.r;
	b1 = pack_with_nul(&am, &l1);
	am.report = &second.r;
	b2 = pack_with_nul(&am, &l2);
	both = malloc(l1 + l2);
	ck_assert_ptr_nonnull(both);
	memcpy(both, b1, l1);
	memcpy(both + l1, b2, l2);
	back = indicator__agent_message__unpack(NULL, l1 + l2, both);
	ck_assert_ptr_nonnull(back);
	ck_assert_str_eq(back->report->district, "320583");
	validation_init(&v);
	validate_wire(&v, both, l1 + l2);
	ck_assert_str_eq(validate_sender(&cfg.limits, back->report->agent_id,
			     back->report->epoch, back->report->seq, true, &v,
			     msg, sizeof(msg)),
	    "bad_string");
	validation_free(&v);
	indicator__agent_message__free_unpacked(back, NULL);
	free(both);
	free(b1);
	free(b2);
	report_free(&first);
	report_free(&second);
}
END_TEST

static Suite *
validate_suite(void)
{
	Suite *s = suite_create("validate");
	TCase *tc;

	tc = tcase_create("valid");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, valid_report);
	tcase_add_test(tc, report_at_limit);
	suite_add_tcase(s, tc);

	tc = tcase_create("sender");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_loop_test(tc, sender, 0, NELEM(senders));
	suite_add_tcase(s, tc);

	tc = tcase_create("observation");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_loop_test(tc, single_observation, 0, NELEM(single));
	tcase_add_loop_test(tc, several_problems, 0, NELEM(multi));
	tcase_add_test(tc, errors_point_at_their_observation);
	tcase_add_test(tc, duplicate_key_flags_later);
	tcase_add_test(tc, duplicate_of_bad_observation);
	tcase_add_loop_test(
	    tc, duplicate_key_message_is_utf8, 0, NELEM(dup_keys));
	tcase_add_test(tc, fuzz_duplicate_invalid_utf8);
	tcase_add_test(tc, boundaries_follow_registry_and_date);
	suite_add_tcase(s, tc);

	tc = tcase_create("report");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_loop_test(tc, report_level, 0, NELEM(reports));
	tcase_add_test(tc, unknown_district_lists_observation_errors);
	tcase_add_test(tc, validation_reused);
	suite_add_tcase(s, tc);

	tc = tcase_create("wire");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_loop_test(tc, wire_nul, 0, NELEM(wire_cases));
	tcase_add_test(tc, wire_nul_heartbeat);
	tcase_add_test(tc, wire_nul_in_a_body_not_kept);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(validate_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
