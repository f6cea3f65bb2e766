/*
 * Per-key token buckets. See ratelimit.h.
 *
 * An open-addressing table of buckets, each with its key (copied, compared
 * whole). A sweep rebuilds the table without the buckets that have
 * refilled: it runs when the table is half full, and the table doubles
 * only when the sweep freed less than half of it.
 */
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "ratelimit.h"
#include "xmalloc.h"

struct bucket {
	char *key; /* NULL: an empty slot */
	uint32_t hash;
	double tokens;
	int64_t at_ms;
};

struct ratelimit {
	struct bucket *b;
	size_t n;
	size_t cap; /* a power of two */
};

struct ratelimit *
ratelimit_new(void)
{
	struct ratelimit *r = xcalloc(1, sizeof(*r));

	r->cap = 64;
	r->b = xcalloc(r->cap, sizeof(*r->b));
	return r;
}

void
ratelimit_destroy(struct ratelimit **rp)
{
	struct ratelimit *r;

	if (rp == NULL || (r = *rp) == NULL)
		return;
	for (size_t i = 0; i < r->cap; i++)
		free(r->b[i].key);
	free(r->b);
	free(r);
	*rp = NULL;
}

static size_t
slot_find(const struct bucket *b, size_t cap, const char *key, uint32_t h)
{
	size_t i = h & (cap - 1);

	while (
	    b[i].key != NULL && !(b[i].hash == h && strcmp(b[i].key, key) == 0))
		i = (i + 1) & (cap - 1);
	return i;
}

/* Tokens in b at now_ms. */
static double
refill(const struct bucket *b, double rate, int64_t now_ms)
{
	double t = b->tokens;

	if (now_ms > b->at_ms)
		t += (double)(now_ms - b->at_ms) * rate / 1000.0;
	return t > rate ? rate : t;
}

/* Rebuilds the table at cap, without the buckets that are full again. */
static void
rebuild(struct ratelimit *r, size_t cap, double rate, int64_t now_ms)
{
	struct bucket *b = xcalloc(cap, sizeof(*b));

	r->n = 0;
	for (size_t i = 0; i < r->cap; i++) {
		if (r->b[i].key == NULL)
			continue;
		if (refill(&r->b[i], rate, now_ms) >= rate) {
			free(r->b[i].key);
			continue;
		}
		b[slot_find(b, cap, r->b[i].key, r->b[i].hash)] = r->b[i];
		r->n++;
	}
	free(r->b);
	r->b = b;
	r->cap = cap;
}

bool
ratelimit_take(
    struct ratelimit *r, const char *key, double rate, int64_t now_ms)
{
	uint32_t h;
	size_t i;
	struct bucket *b;

	if (rate <= 0)
		return true;
	h = hash_bytes(key, strlen(key));
	i = slot_find(r->b, r->cap, key, h);
	if (r->b[i].key == NULL) {
		if ((r->n + 1) * 2 > r->cap) {
			rebuild(r, r->cap, rate, now_ms);
			if ((r->n + 1) * 2 > r->cap)
				rebuild(r, r->cap * 2, rate, now_ms);
			i = slot_find(r->b, r->cap, key, h);
		}
		b = &r->b[i];
		b->key = xstrdup(key);
		b->hash = h;
		b->tokens = rate;
		b->at_ms = now_ms;
		r->n++;
	}
	b = &r->b[i];
	b->tokens = refill(b, rate, now_ms);
	if (now_ms > b->at_ms)
		b->at_ms = now_ms;
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

size_t
ratelimit_size(const struct ratelimit *r)
{
	return r->n;
}
