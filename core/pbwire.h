/*
 * Reading single fields of a packed protobuf message without unpacking it.
 * protobuf-c has no partial decode: protobuf_c_message_unpack() allocates
 * every string and sub-message, which the daemon's hot path (reading a
 * stored value or aggregate per observation) cannot afford. This walks the
 * wire format (varint, 64-bit, length-delimited, 32-bit) and hands each
 * field to the caller; it never allocates.
 */
#ifndef INDICATOR_PBWIRE_H
#define INDICATOR_PBWIRE_H

#include <stddef.h>
#include <stdint.h>

struct pbwire_field {
	uint32_t number;
	int type; /* 0 varint, 1 64-bit, 2 length-delimited, 5 32-bit */
	uint64_t u; /* varint, or the raw 64/32 bits (little-endian) */
	const uint8_t *data; /* type 2: the bytes */
	size_t len; /* type 2: their number */
};

/* pbwire.c */

/* Reads the field at *p (before end) into f and advances *p. Returns 1 for
 * a field, 0 at the end, -1 when the bytes are not a message. */
int pbwire_next(const uint8_t **p, const uint8_t *end, struct pbwire_field *f);
/* The double a 64-bit field holds. */
double pbwire_double(const struct pbwire_field *f);

#endif
