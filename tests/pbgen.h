/*
 * Random protobuf-c messages driven by the descriptors, for the suites that
 * hold hand-written code to the schema (check_pbwire, check_proto): every
 * field a descriptor declares is set, whatever its type and label, so a
 * field added to the .proto is set too and whatever drops it shows.
 * Deterministic: the same seed gives the same messages.
 */
#ifndef INDICATOR_TESTS_PBGEN_H
#define INDICATOR_TESTS_PBGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

struct pbgen;

/* The most bytes a string field f may get (0: the default, 12). */
typedef size_t (*pbgen_bound_fn)(const ProtobufCFieldDescriptor *f, void *arg);

/* pbgen.c */

/* Every message type of proto/indicator.proto (the first pbgen_ncontract)
 * and proto/store.proto. check_proto fails when a contract message carries
 * one this list lacks. */
extern const ProtobufCMessageDescriptor *const pbgen_messages[];
extern const size_t pbgen_nmessages;
extern const size_t pbgen_ncontract;

/* A generator seeded with seed; caller owns it (pbgen_destroy). */
struct pbgen *pbgen_new(uint64_t seed);
/* Frees g and every message it made; accepts NULL, sets *g to NULL. */
void pbgen_destroy(struct pbgen **g);
/* Frees every message g made so far (their pointers go stale). */
void pbgen_reset(struct pbgen *g);

/* Numbers often at their edges: 0, small, negative, the maximum. */
uint64_t pbgen_u64(struct pbgen *g);
/* A double among 0, -0, tiny, huge, infinities and random bits; never NaN. */
double pbgen_double(struct pbgen *g);

/*
 * A message of type d with every field set to a random value (a third of
 * the strings at their bound exactly; repeated fields 0 to 3 elements;
 * sub-messages 3 levels deep, then absent; the last member of a oneof set
 * wins). bound may be NULL. Owned by g until pbgen_reset/pbgen_destroy.
 */
ProtobufCMessage *pbgen_message(struct pbgen *g,
    const ProtobufCMessageDescriptor *d, pbgen_bound_fn bound, void *arg);

/*
 * Whether a and b (of one type) hold the same values, field by field as the
 * descriptor lists them (doubles by ==, so -0 equals 0 as the wire has it).
 * On a difference, names the field in why (why_size bytes).
 */
bool pbgen_equal(const ProtobufCMessage *a, const ProtobufCMessage *b,
    char *why, size_t why_size);

#endif
