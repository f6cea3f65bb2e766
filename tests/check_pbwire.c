/*
 * pbwire: single fields of packed messages read without unpacking them,
 * checked against what protobuf-c packed.
 */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "indicator.pb-c.h"
#include "pbpack.h"
#include "pbwire.h"
#include "store.pb-c.h"
#include "strlimits.h"

static size_t
pack_aggregate(uint8_t *buf, double value, uint64_t revision)
{
	Indicator__Aggregate a = INDICATOR__AGGREGATE__INIT;

	a.metric = "output_value";
	a.industry = "*";
	a.scope = "city";
	a.period = "2025";
	a.value = value;
	a.unit = "CNY_100M";
	a.districts_reporting = 7;
	a.districts_expected = 10;
	a.target = 5000;
	a.target_year = 2030;
	a.progress = value / 5000;
	a.revision = revision;
	a.seq = 123456789012345ULL;
	a.updated_at_ms = -5;
	return indicator__aggregate__pack(&a, buf);
}

START_TEST(aggregate_fields)
{
	uint8_t buf[512];
	size_t len = pack_aggregate(buf, 2245.36, 300);
	const uint8_t *p = buf;
	struct pbwire_field f;
	int seen = 0, rc;

	while ((rc = pbwire_next(&p, buf + len, &f)) == 1) {
		switch (f.number) {
		case 1:
			ck_assert_int_eq(f.type, 2);
			ck_assert_uint_eq(f.len, strlen("output_value"));
			ck_assert(memcmp(f.data, "output_value", f.len) == 0);
			break;
		case 5:
			ck_assert_int_eq(f.type, 1);
			ck_assert(pbwire_double(&f) == 2245.36);
			break;
		case 7:
			ck_assert_uint_eq(f.u, 7);
			break;
		case 10:
			ck_assert_uint_eq(f.u, 2030);
			break;
		case 12:
			ck_assert_uint_eq(f.u, 300);
			break;
		case 13:
			ck_assert_uint_eq(f.u, 123456789012345ULL);
			break;
		case 14: /* int64 -5: a ten-byte varint */
			ck_assert((int64_t)f.u == -5);
			break;
		}
		seen++;
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(seen, 14);
	ck_assert_ptr_eq(p, buf + len);
}
END_TEST

START_TEST(truncated_is_an_error)
{
	uint8_t buf[512];
	size_t len = pack_aggregate(buf, 1.5, 1);

	/* Every proper prefix that cuts a field fails; none reads past it. */
	for (size_t cut = 1; cut < len; cut++) {
		const uint8_t *p = buf;
		struct pbwire_field f;
		int rc;

		while ((rc = pbwire_next(&p, buf + cut, &f)) == 1)
			ck_assert(p <= buf + cut);
		ck_assert(rc == 0 || rc == -1);
	}
}
END_TEST

START_TEST(garbage)
{
	const uint8_t bad[][3] = {
		{ 0x00, 0x00, 0x00 }, /* field number 0 */
		{ 0x0b, 0x00, 0x00 }, /* wire type 3 (groups) */
		{ 0x12, 0x7f, 0x00 }, /* length past the end */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const uint8_t *p = bad[i];
		struct pbwire_field f;

		ck_assert_int_eq(pbwire_next(&p, bad[i] + 3, &f), -1);
	}
}
END_TEST

/* Deterministic pseudo-random numbers (xorshift64*): the same cases in
 * every run. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717u;
}

/* A number that is often 0, -0, small, negative or huge: the varint and
 * zero-omission edges. */
static uint64_t
rng_u64(void)
{
	switch (rng() % 6) {
	case 0:
		return 0;
	case 1:
		return rng() % 128;
	case 2:
		return (uint64_t) - (int64_t)(rng() % 1000 + 1);
	case 3:
		return UINT64_MAX;
	default:
		return rng() >> (rng() % 64);
	}
}

static double
rng_double(void)
{
	static const double edges[] = { 0.0, -0.0, 1e-300, -2245.36, 5000,
		1.0 / 3.0, INFINITY, -INFINITY };
	uint64_t bits;
	double d;

	if (rng() % 2)
		return edges[rng() % (sizeof(edges) / sizeof(edges[0]))];
	bits = rng();
	memcpy(&d, &bits, sizeof(d));
	return isnan(d) ? 7.5 : d;
}

/* A string of 0 to max bytes (UTF-8 among them), in buf. */
static char *
rng_string(char *buf, size_t max)
{
	static const char *const pieces[] = { "a", "Z", "_", "9",
		"\xe8\x8b\x8f", "\xe5\xb7\x9e", "-", "*" };
	size_t n = 0, want = rng() % 3 == 0 ? max : rng() % (max + 1);

	while (n < want) {
		const char *p = pieces[rng() % 8];
		size_t len = strlen(p);

		if (n + len > want)
			break;
		memcpy(buf + n, p, len);
		n += len;
	}
	buf[n] = '\0';
	return buf;
}

/* pbpack_aggregate() packs what protobuf-c packs, byte for byte, over
 * thousands of messages with every field at its edges. */
START_TEST(pack_aggregate_as_protobuf_c)
{
	char metric[IND_CODE_MAX + 1], industry[IND_CODE_MAX + 1];
	char scope[IND_CODE_MAX + 1], period[IND_PERIOD_MAX + 1];
	char unit[IND_UNIT_MAX + 1];
	uint8_t want[1024], got[PBPACK_AGGREGATE_MAX];

	for (int i = 0; i < 20000; i++) {
		Indicator__Aggregate a = INDICATOR__AGGREGATE__INIT;
		size_t wlen, glen;

		a.metric = rng_string(metric, IND_CODE_MAX);
		a.industry = rng_string(industry, IND_CODE_MAX);
		a.scope = rng_string(scope, IND_CODE_MAX);
		a.period = rng_string(period, IND_PERIOD_MAX);
		a.value = rng_double();
		a.unit = rng_string(unit, IND_UNIT_MAX);
		a.districts_reporting = (uint32_t)rng_u64();
		a.districts_expected = (uint32_t)rng_u64();
		a.target = rng_double();
		a.target_year = (uint32_t)rng_u64();
		a.progress = rng_double();
		a.revision = rng_u64();
		a.seq = rng_u64();
		a.updated_at_ms = (int64_t)rng_u64();
		wlen = indicator__aggregate__pack(&a, want);
		glen = pbpack_aggregate(&a, got);
		ck_assert_msg(glen == wlen && memcmp(got, want, wlen) == 0,
		    "case %d: %zu bytes packed, protobuf-c packs %zu", i, glen,
		    wlen);
	}
}
END_TEST

START_TEST(pack_observation_as_protobuf_c)
{
	char unit[IND_UNIT_MAX + 1], sent_unit[IND_UNIT_MAX + 1];
	char note[IND_NOTE_MAX + 1], agent[IND_AGENT_ID_MAX + 1];
	char district[IND_CODE_MAX + 1], industry[IND_CODE_MAX + 1];
	char metric[IND_CODE_MAX + 1], period[IND_PERIOD_MAX + 1];
	uint8_t want[2048], got[PBPACK_OBSERVATION_MAX];

	for (int i = 0; i < 20000; i++) {
		Indicator__Store__StoredObservation m =
		    INDICATOR__STORE__STORED_OBSERVATION__INIT;
		size_t wlen, glen;

		m.value = rng_double();
		m.unit = rng_string(unit, IND_UNIT_MAX);
		m.sent_value = rng_double();
		m.sent_unit = rng_string(sent_unit, IND_UNIT_MAX);
		m.status = (uint32_t)rng_u64();
		m.note = rng_string(note, IND_NOTE_MAX);
		m.agent_id = rng_string(agent, IND_AGENT_ID_MAX);
		m.epoch = rng_u64();
		m.seq = rng_u64();
		m.sent_at_ms = (int64_t)rng_u64();
		m.stored_at_ms = (int64_t)rng_u64();
		m.revision = (uint32_t)rng_u64();
		m.district = rng_string(district, IND_CODE_MAX);
		m.industry = rng_string(industry, IND_CODE_MAX);
		m.metric = rng_string(metric, IND_CODE_MAX);
		m.period = rng_string(period, IND_PERIOD_MAX);
		m.prev = rng_u64();
		m.batch = rng_u64();
		wlen = indicator__store__stored_observation__pack(&m, want);
		glen = pbpack_stored_observation(&m, got);
		ck_assert_msg(glen == wlen && memcmp(got, want, wlen) == 0,
		    "case %d: %zu bytes packed, protobuf-c packs %zu", i, glen,
		    wlen);
	}
}
END_TEST

/*
 * pbwire_strings() visits every string field of a Report and of each of
 * its observations, with the path of field numbers and occurrences.
 * Derived from the schema: every string field the descriptors declare is
 * set (through its offset) and must be visited with its value, so a string
 * field added to indicator.proto is covered with no change here.
 */
struct visit {
	char seen[64][64]; /* "n/i n/i ...=value" */
	size_t n;
};

static int
visit(const struct pbwire_path *path, const ProtobufCFieldDescriptor *field,
    const uint8_t *data, size_t len, void *arg)
{
	struct visit *v = arg;
	char *out = v->seen[v->n];
	size_t off = 0;

	(void)field;
	ck_assert_uint_lt(v->n, 64);
	for (size_t i = 0; i < path->depth; i++)
		off += (size_t)snprintf(out + off, 64 - off, "%s%u/%zu",
		    i ? " " : "", path->at[i].number, path->at[i].index);
	snprintf(out + off, 64 - off, "=%.*s", (int)len, (const char *)data);
	v->n++;
	return 0;
}

static bool
visited(const struct visit *v, const char *want)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->seen[i], want) == 0)
			return true;
	return false;
}

/* Sets every string field of msg (of type d) to "s<number>". */
static void
fill_strings(
    ProtobufCMessage *msg, const ProtobufCMessageDescriptor *d, char (*vals)[8])
{
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (f->type != PROTOBUF_C_TYPE_STRING ||
		    f->label == PROTOBUF_C_LABEL_REPEATED)
			continue;
		snprintf(vals[i], 8, "s%u", f->id);
		*(char **)((char *)msg + f->offset) = vals[i];
	}
}

START_TEST(strings_walk_the_schema)
{
	Indicator__AgentMessage am = INDICATOR__AGENT_MESSAGE__INIT;
	Indicator__Report r = INDICATOR__REPORT__INIT;
	Indicator__Observation o[2] = { INDICATOR__OBSERVATION__INIT,
		INDICATOR__OBSERVATION__INIT };
	Indicator__Observation *ptrs[2] = { &o[0], &o[1] };
	const ProtobufCMessageDescriptor *rd = &indicator__report__descriptor;
	const ProtobufCMessageDescriptor *od =
	    &indicator__observation__descriptor;
	char rvals[32][8], ovals[2][32][8], want[64];
	const ProtobufCFieldDescriptor *body, *obs;
	struct visit v = { .n = 0 };
	size_t len, nstrings = 0;
	uint8_t buf[1024];

	ck_assert_uint_le(rd->n_fields, 32);
	ck_assert_uint_le(od->n_fields, 32);
	fill_strings(&r.base, rd, rvals);
	fill_strings(&o[0].base, od, ovals[0]);
	fill_strings(&o[1].base, od, ovals[1]);
	r.n_observations = 2;
	r.observations = ptrs;
	am.body_case = INDICATOR__AGENT_MESSAGE__BODY_REPORT;
	am.report = &r;
	len = indicator__agent_message__get_packed_size(&am);
	ck_assert_uint_le(len, sizeof(buf));
	indicator__agent_message__pack(&am, buf);
	ck_assert_int_eq(pbwire_strings(&indicator__agent_message__descriptor,
			     buf, len, visit, &v),
	    0);
	body = protobuf_c_message_descriptor_get_field_by_name(
	    &indicator__agent_message__descriptor, "report");
	obs =
	    protobuf_c_message_descriptor_get_field_by_name(rd, "observations");
	for (unsigned i = 0; i < rd->n_fields; i++) {
		if (rd->fields[i].type != PROTOBUF_C_TYPE_STRING)
			continue;
		snprintf(want, sizeof(want), "%u/0 %u/0=s%u", body->id,
		    rd->fields[i].id, rd->fields[i].id);
		ck_assert_msg(visited(&v, want), "not visited: %s", want);
		nstrings++;
	}
	for (unsigned k = 0; k < 2; k++)
		for (unsigned i = 0; i < od->n_fields; i++) {
			if (od->fields[i].type != PROTOBUF_C_TYPE_STRING)
				continue;
			snprintf(want, sizeof(want), "%u/0 %u/%u %u/0=s%u",
			    body->id, obs->id, k, od->fields[i].id,
			    od->fields[i].id);
			ck_assert_msg(
			    visited(&v, want), "not visited: %s", want);
			nstrings++;
		}
	ck_assert_uint_eq(v.n, nstrings);
}
END_TEST

static int
stop(const struct pbwire_path *path, const ProtobufCFieldDescriptor *field,
    const uint8_t *data, size_t len, void *arg)
{
	(void)path;
	(void)field;
	(void)data;
	(void)len;
	(*(int *)arg)++;
	return 5;
}

/* A callback's nonzero value stops the walk and is returned; bytes that
 * are not a message are -1. */
START_TEST(strings_stop_and_garbage)
{
	Indicator__Heartbeat hb = INDICATOR__HEARTBEAT__INIT;
	Indicator__AgentMessage am = INDICATOR__AGENT_MESSAGE__INIT;
	static const uint8_t bad[] = { 0x0a, 0x05, 0x0a, 0x09, 'x' };
	struct visit v = { .n = 0 };
	uint8_t buf[64];
	size_t len;

	hb.agent_id = "kunshan-01";
	hb.epoch = 3;
	am.body_case = INDICATOR__AGENT_MESSAGE__BODY_HEARTBEAT;
	am.heartbeat = &hb;
	len = indicator__agent_message__pack(&am, buf);
	ck_assert_int_eq(pbwire_strings(&indicator__agent_message__descriptor,
			     buf, len, visit, &v),
	    0);
	ck_assert_uint_eq(v.n, 1);
	ck_assert_str_eq(v.seen[0], "2/0 1/0=kunshan-01");
	{
		Indicator__Report r = INDICATOR__REPORT__INIT;
		int calls = 0;

		r.agent_id = "a";
		r.district = "b";
		am.body_case = INDICATOR__AGENT_MESSAGE__BODY_REPORT;
		am.report = &r;
		len = indicator__agent_message__pack(&am, buf);
		ck_assert_int_eq(
		    pbwire_strings(&indicator__agent_message__descriptor, buf,
			len, stop, &calls),
		    5);
		ck_assert_int_eq(calls, 1);
	}
	ck_assert_int_eq(pbwire_strings(&indicator__agent_message__descriptor,
			     bad, sizeof(bad), visit, &v),
	    -1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("pbwire");
	TCase *tc = tcase_create("pbwire");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, aggregate_fields);
	tcase_add_test(tc, truncated_is_an_error);
	tcase_add_test(tc, garbage);
	tcase_add_test(tc, pack_aggregate_as_protobuf_c);
	tcase_add_test(tc, pack_observation_as_protobuf_c);
	tcase_add_test(tc, strings_walk_the_schema);
	tcase_add_test(tc, strings_stop_and_garbage);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
