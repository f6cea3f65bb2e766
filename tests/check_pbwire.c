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
#include "pbfields.h"
#include "pbgen.h"
#include "store.pb-c.h"
#include "strlimits.h"
#include "xmalloc.h"

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
	size_t seen = 0;
	int rc;

	while ((rc = pbwire_next(&p, buf + len, &f)) == 1) {
		switch (f.number) {
		case PBF_AGGREGATE_METRIC:
			ck_assert_int_eq(f.type, PBF_WIRE_STRING);
			ck_assert_uint_eq(f.len, strlen("output_value"));
			ck_assert(memcmp(f.data, "output_value", f.len) == 0);
			break;
		case PBF_AGGREGATE_VALUE:
			ck_assert_int_eq(f.type, PBF_WIRE_DOUBLE);
			ck_assert(pbwire_double(&f) == 2245.36);
			break;
		case PBF_AGGREGATE_DISTRICTS_REPORTING:
			ck_assert_uint_eq(f.u, 7);
			break;
		case PBF_AGGREGATE_TARGET_YEAR:
			ck_assert_uint_eq(f.u, 2030);
			break;
		case PBF_AGGREGATE_REVISION:
			ck_assert_uint_eq(f.u, 300);
			break;
		case PBF_AGGREGATE_SEQ:
			ck_assert_uint_eq(f.u, 123456789012345ULL);
			break;
		case PBF_AGGREGATE_UPDATED_AT_MS: /* int64 -5: ten bytes */
			ck_assert((int64_t)f.u == -5);
			break;
		}
		seen++;
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(seen, 14); /* the fields set above */
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

/* One message packed by hand (pbpack.h, pbfields.h). */
struct packer {
	const char *name;
	const ProtobufCMessageDescriptor *desc;
	const struct pbf_field *rows;
	const size_t *nrows;
	size_t (*pack)(const ProtobufCMessage *m, uint8_t *buf);
	size_t room; /* the caller's buffer: PBPACK_*_MAX */
	size_t packed_max; /* PBF_*_PACKED_MAX */
};

static size_t
pack_aggregate_msg(const ProtobufCMessage *m, uint8_t *buf)
{
	return pbpack_aggregate((const Indicator__Aggregate *)m, buf);
}

static size_t
pack_observation_msg(const ProtobufCMessage *m, uint8_t *buf)
{
	return pbpack_stored_observation(
	    (const Indicator__Store__StoredObservation *)m, buf);
}

static const struct packer packers[] = {
	{ "Aggregate", &indicator__aggregate__descriptor, pbf_aggregate,
	    &n_pbf_aggregate, pack_aggregate_msg, PBPACK_AGGREGATE_MAX,
	    PBF_AGGREGATE_PACKED_MAX },
	{ "StoredObservation",
	    &indicator__store__stored_observation__descriptor,
	    pbf_stored_observation, &n_pbf_stored_observation,
	    pack_observation_msg, PBPACK_OBSERVATION_MAX,
	    PBF_STORED_OBSERVATION_PACKED_MAX },
	{ "ObsRef", &indicator__store__obs_ref__descriptor, pbf_obs_ref,
	    &n_pbf_obs_ref, NULL, 0, PBF_OBS_REF_PACKED_MAX },
};

#define NPACKERS (sizeof(packers) / sizeof(packers[0]))

static const struct pbf_field *
row_of(const struct packer *pk, uint32_t number)
{
	for (size_t i = 0; i < *pk->nrows; i++)
		if (pk->rows[i].number == number)
			return &pk->rows[i];
	return NULL;
}

static bool
kind_is(enum pbf_kind kind, ProtobufCType type)
{
	switch (kind) {
	case PBF_KIND_STRING:
		return type == PROTOBUF_C_TYPE_STRING;
	case PBF_KIND_DOUBLE:
		return type == PROTOBUF_C_TYPE_DOUBLE;
	case PBF_KIND_UINT32:
		return type == PROTOBUF_C_TYPE_UINT32;
	case PBF_KIND_UINT64:
		return type == PROTOBUF_C_TYPE_UINT64;
	case PBF_KIND_INT64:
		return type == PROTOBUF_C_TYPE_INT64;
	}
	return false;
}

/*
 * The table of pbfields.h is the schema: one row for each field the
 * descriptor declares, with its number, name and type, singular, in number
 * order (protobuf-c's packing order), strings with a bound. A field added
 * to the .proto fails here until it is a row (and so packed and read).
 */
START_TEST(table_is_the_schema)
{
	const struct packer *pk = &packers[_i];
	const ProtobufCMessageDescriptor *d = pk->desc;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const struct pbf_field *r = row_of(pk, f->id);

		ck_assert_msg(r != NULL,
		    "%s.%s (field %u) is not in pbfields.h: the hand "
		    "packers and readers drop it",
		    d->name, f->name, f->id);
		ck_assert_msg(strcmp(r->name, f->name) == 0,
		    "%s field %u is %s, pbfields.h says %s", d->name, f->id,
		    f->name, r->name);
		ck_assert_msg(kind_is(r->kind, f->type) &&
				  f->label == PROTOBUF_C_LABEL_NONE,
		    "%s.%s: pbfields.h has another type", d->name, f->name);
		ck_assert_msg(r->kind != PBF_KIND_STRING || r->max > 0,
		    "%s.%s: a string without a bound", d->name, f->name);
	}
	ck_assert_uint_eq(*pk->nrows, d->n_fields);
	for (size_t i = 1; i < *pk->nrows; i++)
		ck_assert_uint_lt(pk->rows[i - 1].number, pk->rows[i].number);
}
END_TEST

/* A string field's bound from pbfields.h; a field it lacks gets pbgen's
 * default. */
static size_t
row_bound(const ProtobufCFieldDescriptor *f, void *arg)
{
	const struct pbf_field *r = row_of(arg, f->id);

	return r != NULL ? r->max : 0;
}

/*
 * The hand packers pack what protobuf-c packs, byte for byte, over
 * thousands of messages whose every field (every field the descriptor
 * declares, whatever its type) is set, at its edges often, strings up to
 * their bound; and never more than the bound the buffers are sized from.
 */
START_TEST(pack_as_protobuf_c)
{
	const struct packer *pk = &packers[_i];
	struct pbgen *g = pbgen_new(0x5eed0000u + (uint64_t)_i);
	uint8_t *want, *got;
	size_t cap = 4096;

	if (pk->pack == NULL) {
		pbgen_destroy(&g);
		return; /* read by hand, packed by protobuf-c */
	}
	want = xmalloc(cap);
	got = xmalloc(cap);
	for (int i = 0; i < 20000; i++) {
		ProtobufCMessage *m = pbgen_message(
		    g, pk->desc, row_bound, (void *)(uintptr_t)pk);
		size_t wlen, glen;

		wlen = protobuf_c_message_get_packed_size(m);
		ck_assert_uint_le(wlen, cap);
		protobuf_c_message_pack(m, want);
		glen = pk->pack(m, got);
		ck_assert_msg(glen == wlen && memcmp(got, want, wlen) == 0,
		    "%s case %d: %zu bytes packed by hand, protobuf-c packs "
		    "%zu: a field the descriptor declares is not packed the "
		    "same (pbfields.h)",
		    pk->name, i, glen, wlen);
		ck_assert_uint_le(glen, pk->packed_max);
		if (i % 1000 == 999)
			pbgen_reset(g);
	}
	free(want);
	free(got);
	pbgen_destroy(&g);
}
END_TEST

/*
 * The compile-time bound PBF_*_PACKED_MAX is exact: every field at its
 * largest (strings at their bound, varints all ten or five bytes) packs
 * to it, by hand and by protobuf-c, and it fits the buffer.
 */
START_TEST(packed_max_is_exact)
{
	const struct packer *pk = &packers[_i];
	const ProtobufCMessageDescriptor *d = pk->desc;
	ProtobufCMessage *m = xcalloc(1, d->sizeof_message);
	char *strings[32];
	size_t nstrings = 0, len;
	uint8_t *buf;

	protobuf_c_message_init(d, m);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const struct pbf_field *r = row_of(pk, f->id);
		char *at = (char *)m + f->offset;

		ck_assert_ptr_nonnull(r);
		switch (r->kind) {
		case PBF_KIND_STRING:
			ck_assert_uint_lt(nstrings, 32);
			strings[nstrings] = xmalloc(r->max + 1);
			memset(strings[nstrings], 'x', r->max);
			strings[nstrings][r->max] = '\0';
			memcpy(at, &strings[nstrings++], sizeof(char *));
			break;
		case PBF_KIND_DOUBLE: {
			double v = -1.5;

			memcpy(at, &v, sizeof(v));
			break;
		}
		case PBF_KIND_UINT32: {
			uint32_t v = UINT32_MAX;

			memcpy(at, &v, sizeof(v));
			break;
		}
		case PBF_KIND_UINT64:
		case PBF_KIND_INT64: {
			uint64_t v = UINT64_MAX; /* int64 -1: ten bytes */

			memcpy(at, &v, sizeof(v));
			break;
		}
		}
	}
	len = protobuf_c_message_get_packed_size(m);
	ck_assert_uint_eq(len, pk->packed_max);
	if (pk->pack != NULL) {
		ck_assert_uint_le(pk->packed_max, pk->room);
		buf = xmalloc(pk->room);
		ck_assert_uint_eq(pk->pack(m, buf), len);
		free(buf);
	}
	while (nstrings > 0)
		free(strings[--nstrings]);
	free(m);
}
END_TEST

/* The wire type protobuf-c packs a field of f's type with. */
static int
wire_type(const ProtobufCFieldDescriptor *f)
{
	if (f->label == PROTOBUF_C_LABEL_REPEATED &&
	    (f->flags & PROTOBUF_C_FIELD_FLAG_PACKED))
		return PBF_WIRE_LEN;
	switch (f->type) {
	case PROTOBUF_C_TYPE_DOUBLE:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return PBF_WIRE_64;
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return 5;
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_BYTES:
	case PROTOBUF_C_TYPE_MESSAGE:
		return PBF_WIRE_LEN;
	default:
		return PBF_WIRE_VARINT;
	}
}

/*
 * pbwire_next() reads every message of both .proto files, with every
 * field the descriptors declare set to random values (any type, repeated,
 * oneof, nested), to its end: each field a number the descriptor declares,
 * with the wire type protobuf-c packs it with, length-delimited bytes
 * within the message.
 */
START_TEST(next_reads_every_message)
{
	const ProtobufCMessageDescriptor *d = pbgen_messages[_i];
	struct pbgen *g = pbgen_new(0xabcd0000u + (uint64_t)_i);

	for (int i = 0; i < 2000; i++) {
		ProtobufCMessage *m = pbgen_message(g, d, NULL, NULL);
		size_t len = protobuf_c_message_get_packed_size(m);
		uint8_t *buf = xmalloc(len + 1);
		const uint8_t *p = buf;
		struct pbwire_field f;
		int rc;

		protobuf_c_message_pack(m, buf);
		while ((rc = pbwire_next(&p, buf + len, &f)) == 1) {
			const ProtobufCFieldDescriptor *fd =
			    protobuf_c_message_descriptor_get_field(
				d, f.number);

			ck_assert_msg(fd != NULL, "%s case %d: field %u",
			    d->name, i, f.number);
			ck_assert_msg(f.type == wire_type(fd),
			    "%s.%s case %d: wire type %d", d->name, fd->name, i,
			    f.type);
			if (f.type == PBF_WIRE_LEN)
				ck_assert(f.data >= buf &&
					  f.data + f.len <= buf + len);
		}
		ck_assert_int_eq(rc, 0);
		ck_assert_ptr_eq(p, buf + len);
		free(buf);
		if (i % 200 == 199)
			pbgen_reset(g);
	}
	pbgen_destroy(&g);
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
	tcase_add_loop_test(tc, table_is_the_schema, 0, NPACKERS);
	tcase_add_loop_test(tc, pack_as_protobuf_c, 0, NPACKERS);
	tcase_add_loop_test(tc, packed_max_is_exact, 0, NPACKERS);
	tcase_add_loop_test(
	    tc, next_reads_every_message, 0, (int)pbgen_nmessages);
	tcase_add_test(tc, strings_walk_the_schema);
	tcase_add_test(tc, strings_stop_and_garbage);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
