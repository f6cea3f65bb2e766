/*
 * The latest value of each key the daemon has changed since its last
 * checkpoint (dirty), and of keys it has read or checkpointed since (a
 * cache, kept while it is small). The acknowledgement path appends observations
 * to the store's log and records here where each key's latest revision now is;
 * obs is brought up to date from this table at the checkpoint, in one write for
 * however many revisions a key took in between. Lookups fall through to
 * the store for keys not changed since.
 *
 * An open-addressing table of small entries; the keys themselves (the four
 * codes, NUL-separated, as in the store) live in one arena, so that a
 * checkpoint frees everything at once.
 */
#include <stdlib.h>
#include <string.h>

#include "indicatord.h"
#include "xmalloc.h"

struct latest_entry {
	uint32_t hash;
	uint32_t keylen; /* 0: empty slot */
	bool dirty; /* changed since the checkpoint */
	size_t keyoff; /* in the arena */
	struct store_ref ref;
};

struct latest {
	struct latest_entry *e;
	size_t n;
	size_t ndirty;
	size_t cap; /* a power of two */
	char *arena;
	size_t used;
	size_t size;
};

struct latest *
latest_new(void)
{
	struct latest *l = xcalloc(1, sizeof(*l));

	l->cap = 1024;
	l->e = xcalloc(l->cap, sizeof(*l->e));
	return l;
}

void
latest_destroy(struct latest **lp)
{
	struct latest *l;

	if (lp == NULL || (l = *lp) == NULL)
		return;
	free(l->e);
	free(l->arena);
	free(l);
	*lp = NULL;
}

/* The four codes as one key, each with its NUL; its length, or 0 when a
 * code does not fit (validation keeps them short, so never). */
static size_t
key_build(char *buf, size_t size, const char *district, const char *industry,
    const char *metric, const char *period)
{
	const char *parts[] = { district, industry, metric, period };
	size_t off = 0;

	for (size_t i = 0; i < 4; i++) {
		size_t n = strlen(parts[i]) + 1;

		if (off + n > size)
			return 0;
		memcpy(buf + off, parts[i], n);
		off += n;
	}
	return off;
}

static uint32_t
key_hash(const char *k, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)k[i]) * 16777619u;
	return h;
}

static size_t
slot_find(const struct latest *l, const struct latest_entry *e, size_t cap,
    const char *k, size_t len, uint32_t h)
{
	size_t i = h & (cap - 1);

	while (e[i].keylen != 0 &&
	       !(e[i].hash == h && e[i].keylen == len &&
		   memcmp(l->arena + e[i].keyoff, k, len) == 0))
		i = (i + 1) & (cap - 1);
	return i;
}

static void
table_grow(struct latest *l)
{
	size_t cap = l->cap * 2;
	struct latest_entry *e = xcalloc(cap, sizeof(*e));

	for (size_t i = 0; i < l->cap; i++)
		if (l->e[i].keylen != 0)
			e[slot_find(l, e, cap, l->arena + l->e[i].keyoff,
			    l->e[i].keylen, l->e[i].hash)] = l->e[i];
	free(l->e);
	l->e = e;
	l->cap = cap;
}

/* The slot of the key: its entry, or the empty slot where it goes. The
 * key is built into k (LATEST_KEY_MAX bytes); *len 0 when a code is too
 * long. */
static size_t
key_slot(const struct latest *l, char *k, size_t *len, uint32_t *h,
    const char *district, const char *industry, const char *metric,
    const char *period)
{
	*len = key_build(k, LATEST_KEY_MAX, district, industry, metric, period);
	if (*len == 0)
		return 0;
	*h = key_hash(k, *len);
	return slot_find(l, l->e, l->cap, k, *len, *h);
}

int
latest_get(struct latest *l, struct store_txn *t, const char *district,
    const char *industry, const char *metric, const char *period,
    struct store_ref *out)
{
	char k[LATEST_KEY_MAX];
	size_t len, i;
	uint32_t h;

	i = key_slot(l, k, &len, &h, district, industry, metric, period);
	if (len == 0)
		return -1;
	if (l->e[i].keylen != 0) {
		*out = l->e[i].ref;
		return 0;
	}
	return store_ref_get(t, district, industry, metric, period, out);
}

int
latest_set(struct latest *l, const char *district, const char *industry,
    const char *metric, const char *period, const struct store_ref *ref)
{
	char k[LATEST_KEY_MAX];
	size_t len, i;
	uint32_t h;

	i = key_slot(l, k, &len, &h, district, industry, metric, period);
	if (len == 0)
		return -1;
	if (l->e[i].keylen == 0) {
		if ((l->n + 1) * 2 > l->cap) {
			table_grow(l);
			i = slot_find(l, l->e, l->cap, k, len, h);
		}
		if (l->used + len > l->size) {
			l->size = l->size ? l->size * 2 : 64 * 1024;
			l->arena = xrealloc(l->arena, l->size);
		}
		memcpy(l->arena + l->used, k, len);
		l->e[i].hash = h;
		l->e[i].keylen = (uint32_t)len;
		l->e[i].keyoff = l->used;
		l->used += len;
		l->n++;
	}
	if (!l->e[i].dirty) {
		l->e[i].dirty = true;
		l->ndirty++;
	}
	l->e[i].ref = *ref;
	return 0;
}

size_t
latest_count(const struct latest *l)
{
	return l->ndirty;
}

size_t
latest_size(const struct latest *l)
{
	return l->n;
}

int
latest_flush(const struct latest *l, struct store_txn *t)
{
	int rc;

	for (size_t i = 0; i < l->cap; i++) {
		const char *d, *in, *m, *p;

		if (l->e[i].keylen == 0 || !l->e[i].dirty)
			continue;
		d = l->arena + l->e[i].keyoff;
		in = d + strlen(d) + 1;
		m = in + strlen(in) + 1;
		p = m + strlen(m) + 1;
		if ((rc = store_ref_put(t, d, in, m, p, &l->e[i].ref)) != 0)
			return rc;
	}
	return 0;
}

void
latest_checkpointed(struct latest *l, bool keep)
{
	if (!keep) {
		latest_clear(l);
		return;
	}
	for (size_t i = 0; i < l->cap && l->ndirty > 0; i++)
		if (l->e[i].dirty) {
			l->e[i].dirty = false;
			l->ndirty--;
		}
}

void
latest_clear(struct latest *l)
{
	l->ndirty = 0;
	if (l->n == 0)
		return;
	/* The table keeps its size: checkpoint_entries bounds it, and the
	 * next interval under the same load needs it again. */
	memset(l->e, 0, l->cap * sizeof(*l->e));
	l->n = 0;
	l->used = 0;
}
