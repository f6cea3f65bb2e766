/*
 * The wire contract (PROTOCOL.md): every field of every message has the
 * number and type the contract fixes, so clients written in other languages
 * read our bytes. The expected bytes below are built by hand from the
 * contract, one tag ((field << 3) | wire type) at a time, and compared with
 * what the generated code packs.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "indicator.pb-c.h"
#include "pbgen.h"
#include "store.pb-c.h"
#include "xmalloc.h"

/* Wire types. */
#define VARINT 0
#define I64 1
#define LEN 2
#define TAG(field, wt) (uint8_t)(((field) << 3) | (wt))

/* Little-endian bytes of the doubles used below. */
#define D12_5 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x29, 0x40
#define D5000 0x00, 0x00, 0x00, 0x00, 0x00, 0x88, 0xb3, 0x40
#define D0_5 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x3f
/* Varints: 300, and -1 as int64 (ten bytes; sint64 would give 0x01). */
#define V300 0xac, 0x02
#define VMINUS1 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01

static void
fill_observation(Indicator__Observation *o)
{
	indicator__observation__init(o);
	o->industry = "ph";
	o->metric = "ov";
	o->period = "2024";
	o->value = 12.5;
	o->unit = "u";
	o->status = INDICATOR__OBS_STATUS__REVISED;
	o->note = "n";
}

/* clang-format off */
static const uint8_t observation_bytes[] = {
	TAG(1, LEN), 2, 'p', 'h',
	TAG(2, LEN), 2, 'o', 'v',
	TAG(3, LEN), 4, '2', '0', '2', '4',
	TAG(4, I64), D12_5,
	TAG(5, LEN), 1, 'u',
	TAG(6, VARINT), 3,
	TAG(7, LEN), 1, 'n',
};
/* clang-format on */

static size_t
pack_observation(uint8_t **out)
{
	Indicator__Observation o;

	fill_observation(&o);
	*out = xmalloc(indicator__observation__get_packed_size(&o));
	return indicator__observation__pack(&o, *out);
}

/* clang-format off */
static const uint8_t report_bytes[] = {
	TAG(1, LEN), 1, 'a',
	TAG(2, LEN), 6, '3', '2', '0', '5', '8', '3',
	TAG(3, VARINT), V300,
	TAG(4, VARINT), 1,
	TAG(5, VARINT), VMINUS1,
	TAG(6, LEN), 3, TAG(1, LEN), 1, 'x',
	TAG(6, LEN), 3, TAG(1, LEN), 1, 'y',
};
/* clang-format on */

static size_t
pack_report(uint8_t **out)
{
	Indicator__Report r = INDICATOR__REPORT__INIT;
	Indicator__Observation o[2], *op[2] = { &o[0], &o[1] };

	indicator__observation__init(&o[0]);
	indicator__observation__init(&o[1]);
	o[0].industry = "x";
	o[1].industry = "y";
	r.agent_id = "a";
	r.district = "320583";
	r.epoch = 300;
	r.seq = 1;
	r.sent_at_ms = -1;
	r.n_observations = 2;
	r.observations = op;
	*out = xmalloc(indicator__report__get_packed_size(&r));
	return indicator__report__pack(&r, *out);
}

/* clang-format off */
static const uint8_t heartbeat_bytes[] = {
	TAG(1, LEN), 1, 'h',
	TAG(2, VARINT), V300,
	TAG(3, VARINT), VMINUS1,
};
/* clang-format on */

static size_t
pack_heartbeat(uint8_t **out)
{
	Indicator__Heartbeat h = INDICATOR__HEARTBEAT__INIT;

	h.agent_id = "h";
	h.epoch = 300;
	h.sent_at_ms = -1;
	*out = xmalloc(indicator__heartbeat__get_packed_size(&h));
	return indicator__heartbeat__pack(&h, *out);
}

/* clang-format off */
static const uint8_t agent_report_bytes[] = {
	TAG(1, LEN), 5, TAG(1, LEN), 1, 'a', TAG(4, VARINT), 9,
};
/* clang-format on */

static size_t
pack_agent_report(uint8_t **out)
{
	Indicator__AgentMessage m = INDICATOR__AGENT_MESSAGE__INIT;
	Indicator__Report r = INDICATOR__REPORT__INIT;

	r.agent_id = "a";
	r.seq = 9;
	m.body_case = INDICATOR__AGENT_MESSAGE__BODY_REPORT;
	m.report = &r;
	*out = xmalloc(indicator__agent_message__get_packed_size(&m));
	return indicator__agent_message__pack(&m, *out);
}

/* clang-format off */
static const uint8_t agent_heartbeat_bytes[] = {
	TAG(2, LEN), 5, TAG(1, LEN), 1, 'h', TAG(2, VARINT), 5,
};
/* clang-format on */

static size_t
pack_agent_heartbeat(uint8_t **out)
{
	Indicator__AgentMessage m = INDICATOR__AGENT_MESSAGE__INIT;
	Indicator__Heartbeat h = INDICATOR__HEARTBEAT__INIT;

	h.agent_id = "h";
	h.epoch = 5;
	m.body_case = INDICATOR__AGENT_MESSAGE__BODY_HEARTBEAT;
	m.heartbeat = &h;
	*out = xmalloc(indicator__agent_message__get_packed_size(&m));
	return indicator__agent_message__pack(&m, *out);
}

/* An arm set to an empty message is still sent: the body is present. */
/* clang-format off */
static const uint8_t agent_empty_heartbeat_bytes[] = {
	TAG(2, LEN), 0,
};
/* clang-format on */

static size_t
pack_agent_empty_heartbeat(uint8_t **out)
{
	Indicator__AgentMessage m = INDICATOR__AGENT_MESSAGE__INIT;
	Indicator__Heartbeat h = INDICATOR__HEARTBEAT__INIT;

	m.body_case = INDICATOR__AGENT_MESSAGE__BODY_HEARTBEAT;
	m.heartbeat = &h;
	*out = xmalloc(indicator__agent_message__get_packed_size(&m));
	return indicator__agent_message__pack(&m, *out);
}

/* clang-format off */
static const uint8_t obs_error_bytes[] = {
	TAG(1, VARINT), 0xff, 0xff, 0xff, 0xff, 0x0f, /* uint32, not int32 */
	TAG(2, LEN), 10, 'b', 'a', 'd', '_', 'p', 'e', 'r', 'i', 'o', 'd',
	TAG(3, LEN), 1, 'm',
};
/* clang-format on */

static size_t
pack_obs_error(uint8_t **out)
{
	Indicator__ObservationError e = INDICATOR__OBSERVATION_ERROR__INIT;

	e.index = UINT32_MAX;
	e.code = "bad_period";
	e.message = "m";
	*out = xmalloc(indicator__observation_error__get_packed_size(&e));
	return indicator__observation_error__pack(&e, *out);
}

/* clang-format off */
static const uint8_t ack_bytes[] = {
	TAG(1, VARINT), 7,
	TAG(2, VARINT), 4,
	TAG(3, LEN), 8, TAG(1, VARINT), 2, TAG(2, LEN), 1, 'c',
	    TAG(3, LEN), 1, 'm',
	TAG(4, LEN), 1, 'M',
	TAG(5, VARINT), V300,
	TAG(6, LEN), 1, 'k',
};
/* clang-format on */

static size_t
pack_ack(uint8_t **out)
{
	Indicator__Ack a = INDICATOR__ACK__INIT;
	Indicator__ObservationError e = INDICATOR__OBSERVATION_ERROR__INIT;
	Indicator__ObservationError *ep = &e;

	e.index = 2;
	e.code = "c";
	e.message = "m";
	a.seq = 7;
	a.status = INDICATOR__ACK_STATUS__RETRY_LATER;
	a.n_errors = 1;
	a.errors = &ep;
	a.message = "M";
	a.expected_seq = 300;
	a.code = "k";
	*out = xmalloc(indicator__ack__get_packed_size(&a));
	return indicator__ack__pack(&a, *out);
}

/* clang-format off */
static const uint8_t aggregate_bytes[] = {
	TAG(1, LEN), 1, 'm',
	TAG(2, LEN), 1, '*',
	TAG(3, LEN), 4, 'c', 'i', 't', 'y',
	TAG(4, LEN), 4, '2', '0', '3', '0',
	TAG(5, I64), D12_5,
	TAG(6, LEN), 1, 'u',
	TAG(7, VARINT), 3,
	TAG(8, VARINT), 10,
	TAG(9, I64), D5000,
	TAG(10, VARINT), 0xee, 0x0f, /* 2030 */
	TAG(11, I64), D0_5,
	TAG(12, VARINT), 2,
	TAG(13, VARINT), V300,
	TAG(14, VARINT), VMINUS1,
};
/* clang-format on */

static size_t
pack_aggregate(uint8_t **out)
{
	Indicator__Aggregate g = INDICATOR__AGGREGATE__INIT;

	g.metric = "m";
	g.industry = "*";
	g.scope = "city";
	g.period = "2030";
	g.value = 12.5;
	g.unit = "u";
	g.districts_reporting = 3;
	g.districts_expected = 10;
	g.target = 5000;
	g.target_year = 2030;
	g.progress = 0.5;
	g.revision = 2;
	g.seq = 300;
	g.updated_at_ms = -1;
	*out = xmalloc(indicator__aggregate__get_packed_size(&g));
	return indicator__aggregate__pack(&g, *out);
}

/* clang-format off */
static const uint8_t snapshot_request_bytes[] = {
	TAG(1, LEN), 4, 'a', 'g', 'g', '/',
};
/* clang-format on */

static size_t
pack_snapshot_request(uint8_t **out)
{
	Indicator__SnapshotRequest q = INDICATOR__SNAPSHOT_REQUEST__INIT;

	q.prefix = "agg/";
	*out = xmalloc(indicator__snapshot_request__get_packed_size(&q));
	return indicator__snapshot_request__pack(&q, *out);
}

/* clang-format off */
static const uint8_t snapshot_bytes[] = {
	TAG(1, VARINT), V300,
	TAG(2, LEN), 3, TAG(1, LEN), 1, 'a',
	TAG(2, LEN), 3, TAG(1, LEN), 1, 'b',
};
/* clang-format on */

static size_t
pack_snapshot(uint8_t **out)
{
	Indicator__Snapshot s = INDICATOR__SNAPSHOT__INIT;
	Indicator__Aggregate g[2], *gp[2] = { &g[0], &g[1] };

	indicator__aggregate__init(&g[0]);
	indicator__aggregate__init(&g[1]);
	g[0].metric = "a";
	g[1].metric = "b";
	s.seq = 300;
	s.n_aggregates = 2;
	s.aggregates = gp;
	*out = xmalloc(indicator__snapshot__get_packed_size(&s));
	return indicator__snapshot__pack(&s, *out);
}

/* proto3: fields at their defaults are not sent at all. */
static size_t
pack_default_observation(uint8_t **out)
{
	Indicator__Observation o = INDICATOR__OBSERVATION__INIT;

	*out = xmalloc(1);
	return indicator__observation__pack(&o, *out);
}

static const struct wire_case {
	const char *name;
	const ProtobufCMessageDescriptor *desc;
	size_t (*pack)(uint8_t **out);
	const uint8_t *expected;
	size_t len;
} wire_cases[] = {
	{ "Observation", &indicator__observation__descriptor, pack_observation,
	    observation_bytes, sizeof(observation_bytes) },
	{ "Report", &indicator__report__descriptor, pack_report, report_bytes,
	    sizeof(report_bytes) },
	{ "Heartbeat", &indicator__heartbeat__descriptor, pack_heartbeat,
	    heartbeat_bytes, sizeof(heartbeat_bytes) },
	{ "AgentMessage.report", &indicator__agent_message__descriptor,
	    pack_agent_report, agent_report_bytes, sizeof(agent_report_bytes) },
	{ "AgentMessage.heartbeat", &indicator__agent_message__descriptor,
	    pack_agent_heartbeat, agent_heartbeat_bytes,
	    sizeof(agent_heartbeat_bytes) },
	{ "AgentMessage.heartbeat empty", &indicator__agent_message__descriptor,
	    pack_agent_empty_heartbeat, agent_empty_heartbeat_bytes,
	    sizeof(agent_empty_heartbeat_bytes) },
	{ "ObservationError", &indicator__observation_error__descriptor,
	    pack_obs_error, obs_error_bytes, sizeof(obs_error_bytes) },
	{ "Ack", &indicator__ack__descriptor, pack_ack, ack_bytes,
	    sizeof(ack_bytes) },
	{ "Aggregate", &indicator__aggregate__descriptor, pack_aggregate,
	    aggregate_bytes, sizeof(aggregate_bytes) },
	{ "SnapshotRequest", &indicator__snapshot_request__descriptor,
	    pack_snapshot_request, snapshot_request_bytes,
	    sizeof(snapshot_request_bytes) },
	{ "Snapshot", &indicator__snapshot__descriptor, pack_snapshot,
	    snapshot_bytes, sizeof(snapshot_bytes) },
	{ "Observation defaults", &indicator__observation__descriptor,
	    pack_default_observation, NULL, 0 },
};

#define NWIRE (sizeof(wire_cases) / sizeof(wire_cases[0]))

static char *
hex(const uint8_t *p, size_t len)
{
	char *s = xmalloc(len * 3 + 1);
	size_t i;

	s[0] = '\0';
	for (i = 0; i < len; i++)
		snprintf(s + i * 3, 4, "%02x ", p[i]);
	return s;
}

static void
assert_bytes(const char *name, const uint8_t *got, size_t gotlen,
    const uint8_t *want, size_t wantlen)
{
	char *g, *w;

	if (gotlen == wantlen &&
	    (wantlen == 0 || memcmp(got, want, wantlen) == 0))
		return;
	g = hex(got, gotlen);
	w = hex(want, wantlen);
	fprintf(stderr, "%s:\n  got  %s\n  want %s\n", name, g, w);
	free(g);
	free(w);
	ck_abort_msg(
	    "%s: packed bytes differ from the contract (see stderr)", name);
}

/* The generated code packs exactly the bytes the contract describes. */
START_TEST(test_wire_pack)
{
	const struct wire_case *c = &wire_cases[_i];
	uint8_t *buf;
	size_t len;

	len = c->pack(&buf);
	assert_bytes(c->name, buf, len, c->expected, c->len);
	free(buf);
}
END_TEST

/* Bytes from another implementation decode, and pack back identically. */
START_TEST(test_wire_roundtrip)
{
	const struct wire_case *c = &wire_cases[_i];
	ProtobufCMessage *m;
	uint8_t *buf;
	size_t len;

	m = protobuf_c_message_unpack(c->desc, NULL, c->len,
	    c->len > 0 ? c->expected : (const uint8_t *)"");
	ck_assert_msg(
	    m != NULL, "%s: the contract's bytes do not decode", c->name);
	buf = xmalloc(protobuf_c_message_get_packed_size(m) + 1);
	len = protobuf_c_message_pack(m, buf);
	assert_bytes(c->name, buf, len, c->expected, c->len);
	free(buf);
	protobuf_c_message_free_unpacked(m, NULL);
}
END_TEST

/* Every field of the contract: message, name, number, type, repeated. */
static const struct field_case {
	const ProtobufCMessageDescriptor *desc;
	const char *name;
	unsigned id;
	ProtobufCType type;
	bool repeated;
} field_cases[] = {
	{ &indicator__observation__descriptor, "industry", 1,
	    PROTOBUF_C_TYPE_STRING, false },
	{ &indicator__observation__descriptor, "metric", 2,
	    PROTOBUF_C_TYPE_STRING, false },
	{ &indicator__observation__descriptor, "period", 3,
	    PROTOBUF_C_TYPE_STRING, false },
	{ &indicator__observation__descriptor, "value", 4,
	    PROTOBUF_C_TYPE_DOUBLE, false },
	{ &indicator__observation__descriptor, "unit", 5,
	    PROTOBUF_C_TYPE_STRING, false },
	{ &indicator__observation__descriptor, "status", 6,
	    PROTOBUF_C_TYPE_ENUM, false },
	{ &indicator__observation__descriptor, "note", 7,
	    PROTOBUF_C_TYPE_STRING, false },
	{ &indicator__report__descriptor, "agent_id", 1, PROTOBUF_C_TYPE_STRING,
	    false },
	{ &indicator__report__descriptor, "district", 2, PROTOBUF_C_TYPE_STRING,
	    false },
	{ &indicator__report__descriptor, "epoch", 3, PROTOBUF_C_TYPE_UINT64,
	    false },
	{ &indicator__report__descriptor, "seq", 4, PROTOBUF_C_TYPE_UINT64,
	    false },
	{ &indicator__report__descriptor, "sent_at_ms", 5,
	    PROTOBUF_C_TYPE_INT64, false },
	{ &indicator__report__descriptor, "observations", 6,
	    PROTOBUF_C_TYPE_MESSAGE, true },
	/* Additions: file transactions. */
	{ &indicator__report__descriptor, "file_id", 7, PROTOBUF_C_TYPE_UINT64,
	    false },
	{ &indicator__report__descriptor, "part", 8, PROTOBUF_C_TYPE_UINT32,
	    false },
	{ &indicator__report__descriptor, "parts", 9, PROTOBUF_C_TYPE_UINT32,
	    false },
	{ &indicator__heartbeat__descriptor, "agent_id", 1,
	    PROTOBUF_C_TYPE_STRING, false },
	{ &indicator__heartbeat__descriptor, "epoch", 2, PROTOBUF_C_TYPE_UINT64,
	    false },
	{ &indicator__heartbeat__descriptor, "sent_at_ms", 3,
	    PROTOBUF_C_TYPE_INT64, false },
	{ &indicator__agent_message__descriptor, "report", 1,
	    PROTOBUF_C_TYPE_MESSAGE, false },
	{ &indicator__agent_message__descriptor, "heartbeat", 2,
	    PROTOBUF_C_TYPE_MESSAGE, false },
	{ &indicator__observation_error__descriptor, "index", 1,
	    PROTOBUF_C_TYPE_UINT32, false },
	{ &indicator__observation_error__descriptor, "code", 2,
	    PROTOBUF_C_TYPE_STRING, false },
	{ &indicator__observation_error__descriptor, "message", 3,
	    PROTOBUF_C_TYPE_STRING, false },
	{ &indicator__observation_error__descriptor, "part", 4,
	    PROTOBUF_C_TYPE_UINT32, false },
	{ &indicator__ack__descriptor, "seq", 1, PROTOBUF_C_TYPE_UINT64,
	    false },
	{ &indicator__ack__descriptor, "status", 2, PROTOBUF_C_TYPE_ENUM,
	    false },
	{ &indicator__ack__descriptor, "errors", 3, PROTOBUF_C_TYPE_MESSAGE,
	    true },
	{ &indicator__ack__descriptor, "message", 4, PROTOBUF_C_TYPE_STRING,
	    false },
	{ &indicator__ack__descriptor, "expected_seq", 5,
	    PROTOBUF_C_TYPE_UINT64, false },
	{ &indicator__ack__descriptor, "code", 6, PROTOBUF_C_TYPE_STRING,
	    false },
	{ &indicator__aggregate__descriptor, "metric", 1,
	    PROTOBUF_C_TYPE_STRING, false },
	{ &indicator__aggregate__descriptor, "industry", 2,
	    PROTOBUF_C_TYPE_STRING, false },
	{ &indicator__aggregate__descriptor, "scope", 3, PROTOBUF_C_TYPE_STRING,
	    false },
	{ &indicator__aggregate__descriptor, "period", 4,
	    PROTOBUF_C_TYPE_STRING, false },
	{ &indicator__aggregate__descriptor, "value", 5, PROTOBUF_C_TYPE_DOUBLE,
	    false },
	{ &indicator__aggregate__descriptor, "unit", 6, PROTOBUF_C_TYPE_STRING,
	    false },
	{ &indicator__aggregate__descriptor, "districts_reporting", 7,
	    PROTOBUF_C_TYPE_UINT32, false },
	{ &indicator__aggregate__descriptor, "districts_expected", 8,
	    PROTOBUF_C_TYPE_UINT32, false },
	{ &indicator__aggregate__descriptor, "target", 9,
	    PROTOBUF_C_TYPE_DOUBLE, false },
	{ &indicator__aggregate__descriptor, "target_year", 10,
	    PROTOBUF_C_TYPE_UINT32, false },
	{ &indicator__aggregate__descriptor, "progress", 11,
	    PROTOBUF_C_TYPE_DOUBLE, false },
	{ &indicator__aggregate__descriptor, "revision", 12,
	    PROTOBUF_C_TYPE_UINT64, false },
	{ &indicator__aggregate__descriptor, "seq", 13, PROTOBUF_C_TYPE_UINT64,
	    false },
	{ &indicator__aggregate__descriptor, "updated_at_ms", 14,
	    PROTOBUF_C_TYPE_INT64, false },
	{ &indicator__snapshot_request__descriptor, "prefix", 1,
	    PROTOBUF_C_TYPE_STRING, false },
	{ &indicator__snapshot__descriptor, "seq", 1, PROTOBUF_C_TYPE_UINT64,
	    false },
	{ &indicator__snapshot__descriptor, "aggregates", 2,
	    PROTOBUF_C_TYPE_MESSAGE, true },
	/* Additions: the queries of the snapshot socket. */
	{ &indicator__snapshot_request__descriptor, "history", 2,
	    PROTOBUF_C_TYPE_MESSAGE, false },
	{ &indicator__snapshot_request__descriptor, "expected", 3,
	    PROTOBUF_C_TYPE_MESSAGE, false },
	{ &indicator__snapshot_request__descriptor, "agents", 4,
	    PROTOBUF_C_TYPE_MESSAGE, false },
	{ &indicator__snapshot__descriptor, "query", 3, PROTOBUF_C_TYPE_ENUM,
	    false },
	{ &indicator__snapshot__descriptor, "error", 4, PROTOBUF_C_TYPE_STRING,
	    false },
	{ &indicator__snapshot__descriptor, "history", 5,
	    PROTOBUF_C_TYPE_MESSAGE, true },
	{ &indicator__snapshot__descriptor, "expected", 6,
	    PROTOBUF_C_TYPE_MESSAGE, true },
	{ &indicator__snapshot__descriptor, "agents", 7,
	    PROTOBUF_C_TYPE_MESSAGE, true },
	{ &indicator__snapshot__descriptor, "truncated", 8,
	    PROTOBUF_C_TYPE_BOOL, false },
	{ &indicator__history_query__descriptor, "district", 1,
	    PROTOBUF_C_TYPE_STRING, false },
	{ &indicator__history_query__descriptor, "industry", 2,
	    PROTOBUF_C_TYPE_STRING, false },
	{ &indicator__history_query__descriptor, "metric", 3,
	    PROTOBUF_C_TYPE_STRING, false },
	{ &indicator__history_query__descriptor, "period", 4,
	    PROTOBUF_C_TYPE_STRING, false },
	{ &indicator__expected_query__descriptor, "period", 1,
	    PROTOBUF_C_TYPE_STRING, false },
	{ &indicator__revision__descriptor, "revision", 1,
	    PROTOBUF_C_TYPE_UINT32, false },
	{ &indicator__revision__descriptor, "value", 2, PROTOBUF_C_TYPE_DOUBLE,
	    false },
	{ &indicator__revision__descriptor, "unit", 3, PROTOBUF_C_TYPE_STRING,
	    false },
	{ &indicator__revision__descriptor, "sent_value", 4,
	    PROTOBUF_C_TYPE_DOUBLE, false },
	{ &indicator__revision__descriptor, "sent_unit", 5,
	    PROTOBUF_C_TYPE_STRING, false },
	{ &indicator__revision__descriptor, "status", 6, PROTOBUF_C_TYPE_ENUM,
	    false },
	{ &indicator__revision__descriptor, "note", 7, PROTOBUF_C_TYPE_STRING,
	    false },
	{ &indicator__revision__descriptor, "agent_id", 8,
	    PROTOBUF_C_TYPE_STRING, false },
	{ &indicator__revision__descriptor, "epoch", 9, PROTOBUF_C_TYPE_UINT64,
	    false },
	{ &indicator__revision__descriptor, "seq", 10, PROTOBUF_C_TYPE_UINT64,
	    false },
	{ &indicator__revision__descriptor, "sent_at_ms", 11,
	    PROTOBUF_C_TYPE_INT64, false },
	{ &indicator__revision__descriptor, "stored_at_ms", 12,
	    PROTOBUF_C_TYPE_INT64, false },
	{ &indicator__district_reporting__descriptor, "district", 1,
	    PROTOBUF_C_TYPE_STRING, false },
	{ &indicator__district_reporting__descriptor, "reported", 2,
	    PROTOBUF_C_TYPE_STRING, true },
	{ &indicator__district_reporting__descriptor, "missing", 3,
	    PROTOBUF_C_TYPE_STRING, true },
	{ &indicator__agent_state__descriptor, "agent_id", 1,
	    PROTOBUF_C_TYPE_STRING, false },
	{ &indicator__agent_state__descriptor, "epoch", 2,
	    PROTOBUF_C_TYPE_UINT64, false },
	{ &indicator__agent_state__descriptor, "last_seq", 3,
	    PROTOBUF_C_TYPE_UINT64, false },
	{ &indicator__agent_state__descriptor, "accepted", 4,
	    PROTOBUF_C_TYPE_UINT64, false },
	{ &indicator__agent_state__descriptor, "rejected", 5,
	    PROTOBUF_C_TYPE_UINT64, false },
	{ &indicator__agent_state__descriptor, "first_seen_ms", 6,
	    PROTOBUF_C_TYPE_INT64, false },
	{ &indicator__agent_state__descriptor, "last_seen_ms", 7,
	    PROTOBUF_C_TYPE_INT64, false },
};

#define NFIELD (sizeof(field_cases) / sizeof(field_cases[0]))

/* Descriptors name the fields as the contract does (JSON and other
 * languages' bindings use the names). */
START_TEST(test_field)
{
	const struct field_case *c = &field_cases[_i];
	const ProtobufCFieldDescriptor *f;

	f = protobuf_c_message_descriptor_get_field_by_name(c->desc, c->name);
	ck_assert_msg(f != NULL, "%s has no field %s", c->desc->name, c->name);
	ck_assert_msg(f->id == c->id, "%s.%s is field %u, contract says %u",
	    c->desc->name, c->name, f->id, c->id);
	ck_assert_msg(f->type == c->type, "%s.%s has type %d, want %d",
	    c->desc->name, c->name, (int)f->type, (int)c->type);
	ck_assert_msg((f->label == PROTOBUF_C_LABEL_REPEATED) == c->repeated,
	    "%s.%s: repeated should be %d", c->desc->name, c->name,
	    (int)c->repeated);
}
END_TEST

/*
 * Full names as the contract spells them (package indicator), and
 * AgentMessage's two arms in one oneof, so at most one is ever sent.
 */
START_TEST(test_message_names)
{
	static const struct {
		const ProtobufCMessageDescriptor *desc;
		const char *name;
	} names[] = {
		{ &indicator__observation__descriptor,
		    "indicator.Observation" },
		{ &indicator__report__descriptor, "indicator.Report" },
		{ &indicator__heartbeat__descriptor, "indicator.Heartbeat" },
		{ &indicator__agent_message__descriptor,
		    "indicator.AgentMessage" },
		{ &indicator__observation_error__descriptor,
		    "indicator.ObservationError" },
		{ &indicator__ack__descriptor, "indicator.Ack" },
		{ &indicator__aggregate__descriptor, "indicator.Aggregate" },
		{ &indicator__snapshot_request__descriptor,
		    "indicator.SnapshotRequest" },
		{ &indicator__snapshot__descriptor, "indicator.Snapshot" },
	};
	const ProtobufCFieldDescriptor *rep, *hb;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		ck_assert_str_eq(names[i].desc->name, names[i].name);
	ck_assert_str_eq(
	    indicator__obs_status__descriptor.name, "indicator.ObsStatus");
	ck_assert_str_eq(
	    indicator__ack_status__descriptor.name, "indicator.AckStatus");

	rep = protobuf_c_message_descriptor_get_field(
	    &indicator__agent_message__descriptor, 1);
	hb = protobuf_c_message_descriptor_get_field(
	    &indicator__agent_message__descriptor, 2);
	ck_assert_ptr_nonnull(rep);
	ck_assert_ptr_nonnull(hb);
	ck_assert(rep->flags & PROTOBUF_C_FIELD_FLAG_ONEOF);
	ck_assert(hb->flags & PROTOBUF_C_FIELD_FLAG_ONEOF);
	ck_assert_uint_eq(rep->quantifier_offset, hb->quantifier_offset);
}
END_TEST

static bool
listed(const ProtobufCMessageDescriptor *d)
{
	for (size_t i = 0; i < pbgen_nmessages; i++)
		if (pbgen_messages[i] == d)
			return true;
	return false;
}

/*
 * The table above is the whole contract: every field the descriptors of
 * indicator.proto declare is a row, and every message a field carries is
 * listed. A field added to the .proto fails here until the contract table
 * (and docs/protocol.md) has it.
 */
START_TEST(test_contract_complete)
{
	const ProtobufCMessageDescriptor *d = pbgen_messages[_i];

	ck_assert_str_eq(d->package_name, "indicator");
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		bool found = false;

		for (size_t k = 0; k < NFIELD && !found; k++)
			found = field_cases[k].desc == d &&
				strcmp(field_cases[k].name, f->name) == 0;
		ck_assert_msg(found,
		    "%s.%s (field %u) is not in the contract's table "
		    "(field_cases, docs/protocol.md)",
		    d->name, f->name, f->id);
		if (f->type == PROTOBUF_C_TYPE_MESSAGE)
			ck_assert_msg(listed(f->descriptor),
			    "%s.%s carries %s, which pbgen_messages[] does not "
			    "list",
			    d->name, f->name,
			    ((const ProtobufCMessageDescriptor *)f->descriptor)
				->name);
	}
}
END_TEST

/*
 * Random messages with every field the descriptor declares set (any type,
 * repeated, oneof, nested) pack to get_packed_size() bytes, unpack to the
 * same values and pack back to the same bytes.
 */
START_TEST(test_random_roundtrip)
{
	const ProtobufCMessageDescriptor *d = pbgen_messages[_i];
	struct pbgen *g = pbgen_new(0xc0ffee00u + (uint64_t)_i);
	char why[256];

	for (int i = 0; i < 2000; i++) {
		ProtobufCMessage *m = pbgen_message(g, d, NULL, NULL), *u;
		size_t len = protobuf_c_message_get_packed_size(m);
		uint8_t *buf = xmalloc(len + 1), *again;

		ck_assert_uint_eq(protobuf_c_message_pack(m, buf), len);
		u = protobuf_c_message_unpack(d, NULL, len, buf);
		ck_assert_msg(
		    u != NULL, "%s case %d does not unpack", d->name, i);
		ck_assert_msg(pbgen_equal(m, u, why, sizeof(why)),
		    "%s case %d: %s differs after a round trip", d->name, i,
		    why);
		again = xmalloc(len + 1);
		ck_assert_uint_eq(protobuf_c_message_pack(u, again), len);
		ck_assert(memcmp(buf, again, len) == 0);
		free(again);
		free(buf);
		protobuf_c_message_free_unpacked(u, NULL);
		if (i % 200 == 199)
			pbgen_reset(g);
	}
	pbgen_destroy(&g);
}
END_TEST

static const struct enum_case {
	const ProtobufCEnumDescriptor *desc;
	const char *name;
	int value;
	int generated; /* the C constant */
} enum_cases[] = {
	{ &indicator__obs_status__descriptor, "OBS_STATUS_UNSPECIFIED", 0,
	    INDICATOR__OBS_STATUS__OBS_STATUS_UNSPECIFIED },
	{ &indicator__obs_status__descriptor, "PROVISIONAL", 1,
	    INDICATOR__OBS_STATUS__PROVISIONAL },
	{ &indicator__obs_status__descriptor, "FINAL", 2,
	    INDICATOR__OBS_STATUS__FINAL },
	{ &indicator__obs_status__descriptor, "REVISED", 3,
	    INDICATOR__OBS_STATUS__REVISED },
	{ &indicator__ack_status__descriptor, "ACK_STATUS_UNSPECIFIED", 0,
	    INDICATOR__ACK_STATUS__ACK_STATUS_UNSPECIFIED },
	{ &indicator__ack_status__descriptor, "ACCEPTED", 1,
	    INDICATOR__ACK_STATUS__ACCEPTED },
	{ &indicator__ack_status__descriptor, "DUPLICATE", 2,
	    INDICATOR__ACK_STATUS__DUPLICATE },
	{ &indicator__ack_status__descriptor, "REJECTED", 3,
	    INDICATOR__ACK_STATUS__REJECTED },
	{ &indicator__ack_status__descriptor, "RETRY_LATER", 4,
	    INDICATOR__ACK_STATUS__RETRY_LATER },
	{ &indicator__ack_status__descriptor, "STAGED", 5,
	    INDICATOR__ACK_STATUS__STAGED },
	{ &indicator__query_kind__descriptor, "QUERY_NONE", 0,
	    INDICATOR__QUERY_KIND__QUERY_NONE },
	{ &indicator__query_kind__descriptor, "QUERY_HISTORY", 1,
	    INDICATOR__QUERY_KIND__QUERY_HISTORY },
	{ &indicator__query_kind__descriptor, "QUERY_EXPECTED", 2,
	    INDICATOR__QUERY_KIND__QUERY_EXPECTED },
	{ &indicator__query_kind__descriptor, "QUERY_AGENTS", 3,
	    INDICATOR__QUERY_KIND__QUERY_AGENTS },
};

#define NENUM (sizeof(enum_cases) / sizeof(enum_cases[0]))

/* Every value the enums of the contract declare is in the table above: a
 * value added to the .proto fails here until the contract has it. */
START_TEST(test_enums_complete)
{
	static const ProtobufCEnumDescriptor *const enums[] = {
		&indicator__obs_status__descriptor,
		&indicator__ack_status__descriptor,
		&indicator__query_kind__descriptor,
	};

	for (size_t e = 0; e < sizeof(enums) / sizeof(enums[0]); e++)
		for (unsigned i = 0; i < enums[e]->n_values; i++) {
			bool found = false;

			for (size_t k = 0; k < NENUM && !found; k++)
				found = enum_cases[k].desc == enums[e] &&
					strcmp(enum_cases[k].name,
					    enums[e]->values[i].name) == 0;
			ck_assert_msg(found,
			    "%s.%s is not in the contract's table "
			    "(enum_cases, docs/protocol.md)",
			    enums[e]->name, enums[e]->values[i].name);
		}
}
END_TEST

/* Enum values by name, as constants, and on the wire. */
START_TEST(test_enum)
{
	const struct enum_case *c = &enum_cases[_i];
	const ProtobufCEnumValue *v;
	uint8_t buf[8];
	size_t len;

	v = protobuf_c_enum_descriptor_get_value_by_name(c->desc, c->name);
	ck_assert_msg(v != NULL, "%s has no value %s", c->desc->name, c->name);
	ck_assert_int_eq(v->value, c->value);
	ck_assert_int_eq(c->generated, c->value);

	if (c->desc == &indicator__obs_status__descriptor) {
		Indicator__Observation o = INDICATOR__OBSERVATION__INIT;

		o.status = (Indicator__ObsStatus)c->value;
		len = indicator__observation__pack(&o, buf);
		if (c->value == 0) {
			ck_assert_uint_eq(len, 0);
		} else {
			ck_assert_uint_eq(len, 2);
			ck_assert_uint_eq(buf[0], TAG(6, VARINT));
			ck_assert_uint_eq(buf[1], (unsigned)c->value);
		}
	} else {
		Indicator__Ack a = INDICATOR__ACK__INIT;

		a.status = (Indicator__AckStatus)c->value;
		len = indicator__ack__pack(&a, buf);
		if (c->value == 0) {
			ck_assert_uint_eq(len, 0);
		} else {
			ck_assert_uint_eq(len, 2);
			ck_assert_uint_eq(buf[0], TAG(2, VARINT));
			ck_assert_uint_eq(buf[1], (unsigned)c->value);
		}
	}
}
END_TEST

/* A realistic report survives pack and unpack field for field. */
START_TEST(test_report_roundtrip)
{
	Indicator__AgentMessage m = INDICATOR__AGENT_MESSAGE__INIT, *got;
	Indicator__Report r = INDICATOR__REPORT__INIT;
	Indicator__Observation o[2], *op[2] = { &o[0], &o[1] };
	const Indicator__Report *gr;
	uint8_t *buf;
	size_t len;

	fill_observation(&o[0]);
	indicator__observation__init(&o[1]);
	o[1].industry = "materials";
	o[1].metric = "chain_leaders";
	o[1].period = "2024-Q3";
	o[1].value = 3;
	o[1].unit = "count";
	o[1].status = INDICATOR__OBS_STATUS__PROVISIONAL;
	o[1].note = "昆山 pilot";
	r.agent_id = "kunshan-01";
	r.district = "320583";
	r.epoch = UINT64_MAX;
	r.seq = 1ULL << 40;
	r.sent_at_ms = 1732600000123LL;
	r.n_observations = 2;
	r.observations = op;
	m.body_case = INDICATOR__AGENT_MESSAGE__BODY_REPORT;
	m.report = &r;

	len = indicator__agent_message__get_packed_size(&m);
	buf = xmalloc(len);
	ck_assert_uint_eq(indicator__agent_message__pack(&m, buf), len);
	got = indicator__agent_message__unpack(NULL, len, buf);
	free(buf);
	ck_assert_ptr_nonnull(got);
	ck_assert_int_eq(got->body_case, INDICATOR__AGENT_MESSAGE__BODY_REPORT);
	gr = got->report;
	ck_assert_str_eq(gr->agent_id, "kunshan-01");
	ck_assert_str_eq(gr->district, "320583");
	ck_assert_uint_eq(gr->epoch, UINT64_MAX);
	ck_assert_uint_eq(gr->seq, 1ULL << 40);
	ck_assert_int_eq(gr->sent_at_ms, 1732600000123LL);
	ck_assert_uint_eq(gr->n_observations, 2);
	ck_assert_str_eq(gr->observations[0]->industry, "ph");
	ck_assert_str_eq(gr->observations[0]->metric, "ov");
	ck_assert_str_eq(gr->observations[0]->period, "2024");
	ck_assert_double_eq(gr->observations[0]->value, 12.5);
	ck_assert_str_eq(gr->observations[0]->unit, "u");
	ck_assert_int_eq(
	    gr->observations[0]->status, INDICATOR__OBS_STATUS__REVISED);
	ck_assert_str_eq(gr->observations[0]->note, "n");
	ck_assert_str_eq(gr->observations[1]->industry, "materials");
	ck_assert_str_eq(gr->observations[1]->metric, "chain_leaders");
	ck_assert_str_eq(gr->observations[1]->period, "2024-Q3");
	ck_assert_double_eq(gr->observations[1]->value, 3);
	ck_assert_str_eq(gr->observations[1]->unit, "count");
	ck_assert_int_eq(
	    gr->observations[1]->status, INDICATOR__OBS_STATUS__PROVISIONAL);
	ck_assert_str_eq(gr->observations[1]->note, "昆山 pilot");
	indicator__agent_message__free_unpacked(got, NULL);
}
END_TEST

/* An Ack as the daemon sends it decodes with its errors in order. */
START_TEST(test_ack_roundtrip)
{
	Indicator__Ack a = INDICATOR__ACK__INIT, *got;
	Indicator__ObservationError e[2], *ep[2] = { &e[0], &e[1] };
	uint8_t *buf;
	size_t len;

	indicator__observation_error__init(&e[0]);
	indicator__observation_error__init(&e[1]);
	e[0].index = 0;
	e[0].code = "unknown_industry";
	e[0].message = "industry \"x\" is not registered";
	e[1].index = 4;
	e[1].code = "bad_period";
	e[1].message = "period \"2025-13\"";
	a.seq = 12;
	a.status = INDICATOR__ACK_STATUS__REJECTED;
	a.n_errors = 2;
	a.errors = ep;
	a.expected_seq = 13;
	len = indicator__ack__get_packed_size(&a);
	buf = xmalloc(len);
	indicator__ack__pack(&a, buf);
	got = indicator__ack__unpack(NULL, len, buf);
	free(buf);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(got->seq, 12);
	ck_assert_int_eq(got->status, INDICATOR__ACK_STATUS__REJECTED);
	ck_assert_uint_eq(got->expected_seq, 13);
	ck_assert_str_eq(got->code, "");
	ck_assert_str_eq(got->message, "");
	ck_assert_uint_eq(got->n_errors, 2);
	ck_assert_uint_eq(got->errors[0]->index, 0);
	ck_assert_str_eq(got->errors[0]->code, "unknown_industry");
	ck_assert_uint_eq(got->errors[1]->index, 4);
	ck_assert_str_eq(got->errors[1]->code, "bad_period");
	ck_assert_str_eq(got->errors[1]->message, "period \"2025-13\"");
	indicator__ack__free_unpacked(got, NULL);
}
END_TEST

/* Bytes that are not a message do not decode (the daemon's "malformed"). */
START_TEST(test_garbage_does_not_decode)
{
	static const uint8_t truncated[] = { TAG(1, LEN), 5, 0x0a, 0x01 };
	static const uint8_t bad_wiretype[] = { TAG(1, 7), 0x00 };
	Indicator__AgentMessage *m;

	m = indicator__agent_message__unpack(
	    NULL, sizeof(truncated), truncated);
	ck_assert_ptr_null(m);
	m = indicator__agent_message__unpack(
	    NULL, sizeof(bad_wiretype), bad_wiretype);
	ck_assert_ptr_null(m);
	/* Empty bytes decode to an AgentMessage with no body. */
	m = indicator__agent_message__unpack(NULL, 0, (const uint8_t *)"");
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(m->body_case, INDICATOR__AGENT_MESSAGE__BODY__NOT_SET);
	indicator__agent_message__free_unpacked(m, NULL);
}
END_TEST

/* Returns true when protoc is on PATH. */
static bool
have_protoc(void)
{
	const char *path = getenv("PATH");
	char *dup, *dir, *save = NULL, file[4096];
	bool found = false;

	if (path == NULL)
		return false;
	dup = xstrdup(path);
	for (dir = strtok_r(dup, ":", &save); dir != NULL && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(file, sizeof(file), "%s/protoc", dir);
		found = access(file, X_OK) == 0;
	}
	free(dup);
	return found;
}

/*
 * An independent decoder (protoc --decode_raw) sees fields 1..6 in a packed
 * Report. Optional: skipped when protoc is not installed.
 */
START_TEST(test_protoc_decode_raw)
{
	char in[] = "/tmp/check_proto_in_XXXXXX";
	char out[] = "/tmp/check_proto_out_XXXXXX";
	char cmd[256], text[4096];
	Indicator__Report r = INDICATOR__REPORT__INIT;
	Indicator__Observation o, *op = &o;
	uint8_t buf[256];
	size_t len, n;
	int ifd, ofd, status;
	FILE *fp;

	if (!have_protoc()) {
		fprintf(stderr, "check_proto: protoc not on PATH, "
				"decode_raw check skipped\n");
		return;
	}
	fill_observation(&o);
	o.industry = "photonics";
	o.metric = "output_value";
	r.agent_id = "kunshan-01";
	r.district = "320583";
	r.epoch = 7;
	r.seq = 1;
	r.sent_at_ms = 1732600000123LL;
	r.n_observations = 1;
	r.observations = &op;
	len = indicator__report__get_packed_size(&r);
	ck_assert_uint_le(len, sizeof(buf));
	indicator__report__pack(&r, buf);

	ifd = mkstemp(in);
	ofd = mkstemp(out);
	ck_assert(ifd != -1 && ofd != -1);
	ck_assert(write(ifd, buf, len) == (ssize_t)len);
	close(ifd);
	close(ofd);
	snprintf(
	    cmd, sizeof(cmd), "protoc --decode_raw < %s > %s 2>&1", in, out);
	status = system(cmd);
	fp = fopen(out, "r");
	ck_assert_ptr_nonnull(fp);
	n = fread(text, 1, sizeof(text) - 1, fp);
	text[n] = '\0';
	fclose(fp);
	unlink(in);
	unlink(out);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "protoc --decode_raw failed: %s", text);
	ck_assert_msg(strstr(text, "1: \"kunshan-01\"") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "2: \"320583\"") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "3: 7\n") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "4: 1\n") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "5: 1732600000123\n") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "6 {") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "  1: \"photonics\"") != NULL, "%s", text);
	ck_assert_msg(
	    strstr(text, "  2: \"output_value\"") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "  3: \"2024\"") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "  6: 3\n") != NULL, "%s", text);
	/* value 12.5 as a fixed64 (wire type 1): 0x4029000000000000. */
	ck_assert_msg(
	    strstr(text, "  4: 0x4029000000000000") != NULL, "%s", text);
}
END_TEST

static Suite *
proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc;

	tc = tcase_create("wire");
	tcase_add_loop_test(tc, test_wire_pack, 0, NWIRE);
	tcase_add_loop_test(tc, test_wire_roundtrip, 0, NWIRE);
	suite_add_tcase(s, tc);

	tc = tcase_create("schema");
	tcase_add_loop_test(tc, test_field, 0, NFIELD);
	tcase_add_test(tc, test_message_names);
	tcase_add_loop_test(
	    tc, test_contract_complete, 0, (int)pbgen_ncontract);
	tcase_add_loop_test(tc, test_enum, 0, NENUM);
	tcase_add_test(tc, test_enums_complete);
	suite_add_tcase(s, tc);

	tc = tcase_create("roundtrip");
	tcase_add_test(tc, test_report_roundtrip);
	tcase_add_test(tc, test_ack_roundtrip);
	tcase_add_loop_test(tc, test_random_roundtrip, 0, (int)pbgen_nmessages);
	tcase_add_test(tc, test_garbage_does_not_decode);
	tcase_add_test(tc, test_protoc_decode_raw);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(proto_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
