/*
 * A token bucket per key (an agent_id): rate tokens a second, at most one
 * second's worth (the burst). Keys are kept exactly: two agents never share
 * a bucket, however their ids hash (issue 12 found agents that shared a
 * slot going unlimited, each resetting the other's bucket).
 *
 * Memory is bounded by the agents active within the last second: a bucket
 * that has refilled to its burst is the same as a new one, so such buckets
 * are swept out before the table grows.
 *
 * Never fails (aborts on out of memory).
 */
#ifndef INDICATORD_RATELIMIT_H
#define INDICATORD_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ratelimit;

/* ratelimit.c */

/* An empty limiter; caller owns it (ratelimit_destroy()). */
struct ratelimit *ratelimit_new(void);
/* Accepts NULL and *r == NULL; sets *r to NULL. */
void ratelimit_destroy(struct ratelimit **r);
/*
 * Takes one token from key's bucket at now_ms (any monotonic or wall clock
 * in ms, the same on every call), refilled at rate tokens a second since
 * the key's last call. True when there was one: the report may go on.
 * rate 0 means no limit (always true, nothing kept). key is copied.
 */
bool ratelimit_take(
    struct ratelimit *r, const char *key, double rate, int64_t now_ms);
/* Buckets held. */
size_t ratelimit_size(const struct ratelimit *r);

#endif
