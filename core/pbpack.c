#include <string.h>

#include "pbfields.h"
#include "pbpack.h"

/* The buffers the callers size from pbpack.h hold the most each message
 * packs to with the bounds of strlimits.h. */
_Static_assert(PBF_AGGREGATE_PACKED_MAX <= PBPACK_AGGREGATE_MAX,
    "PBPACK_AGGREGATE_MAX is smaller than an Aggregate can pack to");
_Static_assert(PBF_STORED_OBSERVATION_PACKED_MAX <= PBPACK_OBSERVATION_MAX,
    "PBPACK_OBSERVATION_MAX is smaller than a StoredObservation can pack to");

static uint8_t *
put_raw_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static uint8_t *
put_tag(uint8_t *p, unsigned number, unsigned wire)
{
	return put_raw_varint(p, (uint64_t)number << 3 | wire);
}

/* uint32, uint64 and int64 (a negative one as its 64-bit two's
 * complement, ten bytes, as protobuf-c does). */
static uint8_t *
put_varint(uint8_t *p, unsigned number, uint64_t v)
{
	if (v == 0)
		return p;
	return put_raw_varint(put_tag(p, number, PBF_WIRE_VARINT), v);
}

static uint8_t *
put_double(uint8_t *p, unsigned number, double d)
{
	uint64_t bits;

	if (d == 0) /* 0 and -0: protobuf-c leaves both out */
		return p;
	p = put_tag(p, number, PBF_WIRE_64);
	memcpy(&bits, &d, sizeof(bits));
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)(bits >> (8 * i));
	return p;
}

/* At most max bytes of s (the bound that sizes the buffers). */
static uint8_t *
put_string(uint8_t *p, unsigned number, const char *s, size_t max)
{
	size_t n;

	if (s == NULL || (n = strnlen(s, max)) == 0)
		return p;
	p = put_raw_varint(put_tag(p, number, PBF_WIRE_LEN), n);
	memcpy(p, s, n);
	return p + n;
}

/*
 * One row of pbfields.h packed: the member must have the C type the kind
 * says (a type changed in the .proto stops the build here), and protobuf-c
 * packs fields in number order, which the rows are in.
 */
#define CTYPE_STRING char *
#define CTYPE_DOUBLE double
#define CTYPE_UINT32 uint32_t
#define CTYPE_UINT64 uint64_t
#define CTYPE_INT64 int64_t
#define PUT_STRING(p, number, v, max) put_string(p, number, v, max)
#define PUT_DOUBLE(p, number, v, max) put_double(p, number, v)
#define PUT_UINT32(p, number, v, max) put_varint(p, number, v)
#define PUT_UINT64(p, number, v, max) put_varint(p, number, v)
#define PUT_INT64(p, number, v, max) put_varint(p, number, (uint64_t)(v))
#define PACK_ROW(NAME, name, number, kind, max)                          \
	_Static_assert(_Generic(m->name, CTYPE_##kind : 1, default : 0), \
	    #name " is not a " #kind);                                   \
	p = PUT_##kind(p, number, m->name, max);

size_t
pbpack_aggregate(const Indicator__Aggregate *m, uint8_t *buf)
{
	uint8_t *p = buf;

	PBF_AGGREGATE_FIELDS(PACK_ROW)
	return (size_t)(p - buf);
}

size_t
pbpack_stored_observation(
    const Indicator__Store__StoredObservation *m, uint8_t *buf)
{
	uint8_t *p = buf;

	PBF_STORED_OBSERVATION_FIELDS(PACK_ROW)
	return (size_t)(p - buf);
}

#define ROW(NAME, name, number, kind, max) \
	{ #name, number, PBF_KIND_##kind, max },

const struct pbf_field pbf_aggregate[] = { PBF_AGGREGATE_FIELDS(ROW) };
const size_t n_pbf_aggregate = sizeof(pbf_aggregate) / sizeof(pbf_aggregate[0]);
const struct pbf_field pbf_stored_observation[] = {
	PBF_STORED_OBSERVATION_FIELDS(ROW)
};
const size_t n_pbf_stored_observation =
    sizeof(pbf_stored_observation) / sizeof(pbf_stored_observation[0]);
const struct pbf_field pbf_obs_ref[] = { PBF_OBS_REF_FIELDS(ROW) };
const size_t n_pbf_obs_ref = sizeof(pbf_obs_ref) / sizeof(pbf_obs_ref[0]);
