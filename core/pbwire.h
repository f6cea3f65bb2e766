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

#include <protobuf-c/protobuf-c.h>

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

/* How deep pbwire_strings() follows sub-messages. */
#define PBWIRE_DEPTH_MAX 8

/*
 * Where a field sits in a packed message: at[0] is a field of the message
 * itself, at[1] a field of the sub-message at[0] holds, and so on. index
 * counts the occurrences of that field number within its parent occurrence
 * from 0 (for a repeated field, the element's position).
 */
struct pbwire_path {
	size_t depth;
	struct {
		uint32_t number;
		size_t index;
	} at[PBWIRE_DEPTH_MAX];
};

/* Called for each occurrence of a string field; nonzero stops the walk. */
typedef int (*pbwire_string_fn)(const struct pbwire_path *path,
    const ProtobufCFieldDescriptor *field, const uint8_t *data, size_t len,
    void *arg);

/*
 * Walks the packed message (len bytes at buf, of type desc) and every
 * sub-message it holds, to PBWIRE_DEPTH_MAX levels, and calls fn for every
 * occurrence of a field the schema declares a string, with its bytes as
 * they are on the wire (protobuf-c's unpacked strings end at the first
 * NUL, so only these show what was sent). Driven by the descriptors: a
 * string field added to the schema is walked with no change here. Fields
 * the schema does not know, and known fields of another wire type, are
 * skipped. Returns 0 when the walk ended, fn's nonzero value when it
 * stopped it, -1 when the bytes are not a message.
 */
int pbwire_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
    size_t len, pbwire_string_fn fn, void *arg);

#endif
