#include <string.h>

#include "pbpack.h"
#include "strlimits.h"

enum { WIRE_VARINT = 0, WIRE_64 = 1, WIRE_BYTES = 2 };

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
	return put_raw_varint(put_tag(p, number, WIRE_VARINT), v);
}

static uint8_t *
put_double(uint8_t *p, unsigned number, double d)
{
	uint64_t bits;

	if (d == 0) /* 0 and -0: protobuf-c leaves both out */
		return p;
	p = put_tag(p, number, WIRE_64);
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
	p = put_raw_varint(put_tag(p, number, WIRE_BYTES), n);
	memcpy(p, s, n);
	return p + n;
}

size_t
pbpack_aggregate(const Indicator__Aggregate *a, uint8_t *buf)
{
	uint8_t *p = buf;

	p = put_string(p, 1, a->metric, IND_CODE_MAX);
	p = put_string(p, 2, a->industry, IND_CODE_MAX);
	p = put_string(p, 3, a->scope, IND_SCOPE_MAX);
	p = put_string(p, 4, a->period, IND_PERIOD_MAX);
	p = put_double(p, 5, a->value);
	p = put_string(p, 6, a->unit, IND_UNIT_MAX);
	p = put_varint(p, 7, a->districts_reporting);
	p = put_varint(p, 8, a->districts_expected);
	p = put_double(p, 9, a->target);
	p = put_varint(p, 10, a->target_year);
	p = put_double(p, 11, a->progress);
	p = put_varint(p, 12, a->revision);
	p = put_varint(p, 13, a->seq);
	p = put_varint(p, 14, (uint64_t)a->updated_at_ms);
	return (size_t)(p - buf);
}

size_t
pbpack_stored_observation(
    const Indicator__Store__StoredObservation *m, uint8_t *buf)
{
	uint8_t *p = buf;

	p = put_double(p, 1, m->value);
	p = put_string(p, 2, m->unit, IND_UNIT_MAX);
	p = put_double(p, 3, m->sent_value);
	p = put_string(p, 4, m->sent_unit, IND_UNIT_MAX);
	p = put_varint(p, 5, m->status);
	p = put_string(p, 6, m->note, IND_NOTE_MAX);
	p = put_string(p, 7, m->agent_id, IND_AGENT_ID_MAX);
	p = put_varint(p, 8, m->epoch);
	p = put_varint(p, 9, m->seq);
	p = put_varint(p, 10, (uint64_t)m->sent_at_ms);
	p = put_varint(p, 11, (uint64_t)m->stored_at_ms);
	p = put_varint(p, 12, m->revision);
	p = put_string(p, 13, m->district, IND_CODE_MAX);
	p = put_string(p, 14, m->industry, IND_CODE_MAX);
	p = put_string(p, 15, m->metric, IND_CODE_MAX);
	p = put_string(p, 16, m->period, IND_PERIOD_MAX);
	p = put_varint(p, 17, m->prev);
	p = put_varint(p, 18, m->batch);
	return (size_t)(p - buf);
}
