/*
 * The one hash function of the daemon's tables (the ledger's latest-value
 * and aggregate tables, the rate limiter): bytes in, 32 bits out, a word
 * at a time. Not for adversaries' keys alone: every table that uses it
 * compares whole keys, so a collision costs a probe, never a wrong answer.
 */
#ifndef INDICATORD_HASH_H
#define INDICATORD_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t
hash_bytes(const void *key, size_t len)
{
	const unsigned char *b = key;
	uint64_t h = 0x9e3779b97f4a7c15u ^ len, w;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&w, b + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdu;
		h ^= h >> 32;
	}
	for (; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3u;
	h ^= h >> 29;
	h *= 0xc4ceb9fe1a85ec53u;
	h ^= h >> 32;
	return (uint32_t)h;
}

#endif
