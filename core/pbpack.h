/*
 * Packing the two messages the daemon packs for every observation and every
 * published aggregate, by hand: protobuf_c_message_pack() is driven by the
 * message descriptor, field by field, and was a tenth of the daemon's time.
 * The output is byte for byte what protobuf-c packs (fields in number order,
 * proto3 zero values left out), which check_pbwire holds them to. Both are
 * generated from the rows of pbfields.h, which check_pbwire holds to the
 * descriptors: a field added to the .proto fails it until it is a row.
 */
#ifndef INDICATOR_PBPACK_H
#define INDICATOR_PBPACK_H

#include <stddef.h>
#include <stdint.h>

#include "indicator.pb-c.h"
#include "store.pb-c.h"

/* Room every Aggregate fits, its five strings at most IND_CODE_MAX or
 * IND_UNIT_MAX bytes (longer ones are cut to that): pbpack.c asserts at
 * compile time that PBF_AGGREGATE_PACKED_MAX (pbfields.h) fits. */
#define PBPACK_AGGREGATE_MAX 256
/* Room every StoredObservation fits, its strings within strlimits.h (cut
 * to them): asserted against PBF_STORED_OBSERVATION_PACKED_MAX. */
#define PBPACK_OBSERVATION_MAX 1024

/* pbpack.c */

/* Packs a into buf (PBPACK_AGGREGATE_MAX bytes); returns the length. */
size_t pbpack_aggregate(const Indicator__Aggregate *a, uint8_t *buf);
/* Packs m into buf (PBPACK_OBSERVATION_MAX bytes); returns the length. */
size_t pbpack_stored_observation(
    const Indicator__Store__StoredObservation *m, uint8_t *buf);

#endif
