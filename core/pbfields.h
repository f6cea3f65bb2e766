/*
 * The field numbers of the messages this project packs or reads by hand
 * (pbpack.c packs, pbwire.h readers in store.c and publish.c read), in one
 * table: the packers are generated from it, the readers name its
 * constants, and check_pbwire holds it to the protobuf-c descriptors (every
 * field of the .proto is a row, with its number, name and type, in number
 * order) and the packers to protobuf_c_message_pack() on messages whose
 * every field the descriptors declare is set. A field added to the .proto
 * fails check_pbwire until it is a row here.
 *
 * A row: X(NAME, name, number, kind, max): NAME for the constant
 * PBF_<MESSAGE>_<NAME>, name the member of the generated C struct, kind one
 * of STRING, DOUBLE, UINT32, UINT64, INT64 (the C type protoc-c gives it),
 * max the most bytes a STRING is packed with (longer ones are cut; bounds
 * from strlimits.h, which size every buffer), 0 for numbers.
 */
#ifndef INDICATOR_PBFIELDS_H
#define INDICATOR_PBFIELDS_H

#include <stddef.h>
#include <stdint.h>

#include "strlimits.h"

/* indicator.Aggregate (proto/indicator.proto): published and stored. */
#define PBF_AGGREGATE_FIELDS(X)                                   \
	X(METRIC, metric, 1, STRING, IND_CODE_MAX)                \
	X(INDUSTRY, industry, 2, STRING, IND_CODE_MAX)            \
	X(SCOPE, scope, 3, STRING, IND_SCOPE_MAX)                 \
	X(PERIOD, period, 4, STRING, IND_PERIOD_MAX)              \
	X(VALUE, value, 5, DOUBLE, 0)                             \
	X(UNIT, unit, 6, STRING, IND_UNIT_MAX)                    \
	X(DISTRICTS_REPORTING, districts_reporting, 7, UINT32, 0) \
	X(DISTRICTS_EXPECTED, districts_expected, 8, UINT32, 0)   \
	X(TARGET, target, 9, DOUBLE, 0)                           \
	X(TARGET_YEAR, target_year, 10, UINT32, 0)                \
	X(PROGRESS, progress, 11, DOUBLE, 0)                      \
	X(REVISION, revision, 12, UINT64, 0)                      \
	X(SEQ, seq, 13, UINT64, 0)                                \
	X(UPDATED_AT_MS, updated_at_ms, 14, INT64, 0)

/* indicator.store.StoredObservation (proto/store.proto): the log record. */
#define PBF_STORED_OBSERVATION_FIELDS(X)                   \
	X(VALUE, value, 1, DOUBLE, 0)                      \
	X(UNIT, unit, 2, STRING, IND_UNIT_MAX)             \
	X(SENT_VALUE, sent_value, 3, DOUBLE, 0)            \
	X(SENT_UNIT, sent_unit, 4, STRING, IND_UNIT_MAX)   \
	X(STATUS, status, 5, UINT32, 0)                    \
	X(NOTE, note, 6, STRING, IND_NOTE_MAX)             \
	X(AGENT_ID, agent_id, 7, STRING, IND_AGENT_ID_MAX) \
	X(EPOCH, epoch, 8, UINT64, 0)                      \
	X(SEQ, seq, 9, UINT64, 0)                          \
	X(SENT_AT_MS, sent_at_ms, 10, INT64, 0)            \
	X(STORED_AT_MS, stored_at_ms, 11, INT64, 0)        \
	X(REVISION, revision, 12, UINT32, 0)               \
	X(DISTRICT, district, 13, STRING, IND_CODE_MAX)    \
	X(INDUSTRY, industry, 14, STRING, IND_CODE_MAX)    \
	X(METRIC, metric, 15, STRING, IND_CODE_MAX)        \
	X(PERIOD, period, 16, STRING, IND_PERIOD_MAX)      \
	X(PREV, prev, 17, UINT64, 0)                       \
	X(BATCH, batch, 18, UINT64, 0)

/* indicator.store.ObsRef (proto/store.proto): packed by protobuf-c, read
 * by hand (store.c). */
#define PBF_OBS_REF_FIELDS(X)               \
	X(REVISION, revision, 1, UINT32, 0) \
	X(VALUE, value, 2, DOUBLE, 0)       \
	X(AT, at, 3, UINT64, 0)

/* The constants: PBF_AGGREGATE_VALUE is 5, and so on. */
#define PBF_ENUM_AGGREGATE(NAME, name, number, kind, max) \
	PBF_AGGREGATE_##NAME = number,
#define PBF_ENUM_STORED_OBSERVATION(NAME, name, number, kind, max) \
	PBF_STORED_OBSERVATION_##NAME = number,
#define PBF_ENUM_OBS_REF(NAME, name, number, kind, max) \
	PBF_OBS_REF_##NAME = number,
enum pbf_aggregate { PBF_AGGREGATE_FIELDS(PBF_ENUM_AGGREGATE) };
enum pbf_stored_observation {
	PBF_STORED_OBSERVATION_FIELDS(PBF_ENUM_STORED_OBSERVATION)
};
enum pbf_obs_ref { PBF_OBS_REF_FIELDS(PBF_ENUM_OBS_REF) };

/* Wire types (the low three bits of a tag). */
enum { PBF_WIRE_VARINT = 0, PBF_WIRE_64 = 1, PBF_WIRE_LEN = 2 };
#define PBF_WIRE_STRING PBF_WIRE_LEN
#define PBF_WIRE_DOUBLE PBF_WIRE_64
#define PBF_WIRE_UINT32 PBF_WIRE_VARINT
#define PBF_WIRE_UINT64 PBF_WIRE_VARINT
#define PBF_WIRE_INT64 PBF_WIRE_VARINT

/*
 * The most bytes one field packs to, as a constant expression: its tag
 * (number << 3 as a varint), then for a STRING its length as a varint and
 * max bytes, a double's 8 bytes, a uint32's varint of at most 5 bytes, a
 * 64-bit varint's 10 (a negative int64 is sign-extended to 64 bits).
 */
#define PBF_VARINT_SIZE(v)                   \
	((uint64_t)(v) < 1ULL << 7	 ? 1 \
	    : (uint64_t)(v) < 1ULL << 14 ? 2 \
	    : (uint64_t)(v) < 1ULL << 21 ? 3 \
	    : (uint64_t)(v) < 1ULL << 28 ? 4 \
					 : 5)
#define PBF_TAG_SIZE(number) PBF_VARINT_SIZE((uint64_t)(number) << 3)
#define PBF_MAX_STRING(max) (PBF_VARINT_SIZE(max) + (max))
#define PBF_MAX_DOUBLE(max) 8
#define PBF_MAX_UINT32(max) 5
#define PBF_MAX_UINT64(max) 10
#define PBF_MAX_INT64(max) 10
#define PBF_FIELD_MAX(NAME, name, number, kind, max) \
	+(PBF_TAG_SIZE(number) + PBF_MAX_##kind(max))

/* The most bytes each message packs to with the bounds above. */
#define PBF_AGGREGATE_PACKED_MAX (0 PBF_AGGREGATE_FIELDS(PBF_FIELD_MAX))
#define PBF_STORED_OBSERVATION_PACKED_MAX \
	(0 PBF_STORED_OBSERVATION_FIELDS(PBF_FIELD_MAX))
#define PBF_OBS_REF_PACKED_MAX (0 PBF_OBS_REF_FIELDS(PBF_FIELD_MAX))

/* The table as data, for the tests. */
enum pbf_kind {
	PBF_KIND_STRING,
	PBF_KIND_DOUBLE,
	PBF_KIND_UINT32,
	PBF_KIND_UINT64,
	PBF_KIND_INT64
};

struct pbf_field {
	const char *name;
	uint32_t number;
	enum pbf_kind kind;
	size_t max; /* STRING: the most bytes packed */
};

/* pbpack.c */

/* The rows of each table, in number order; n_* counts them. */
extern const struct pbf_field pbf_aggregate[];
extern const size_t n_pbf_aggregate;
extern const struct pbf_field pbf_stored_observation[];
extern const size_t n_pbf_stored_observation;
extern const struct pbf_field pbf_obs_ref[];
extern const size_t n_pbf_obs_ref;

#endif
