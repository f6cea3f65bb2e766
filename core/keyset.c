/*
 * Open addressing, linear probing, both tables grown at half full: one of
 * interned strings (industry, metric and period share it), one of keys as
 * (string id, string id, string id, line).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyset.h"
#include "xmalloc.h"

struct key {
	uint32_t s[3]; /* string ids, from 1; 0 marks an empty slot */
	uint32_t line;
};

struct keyset {
	char **strs; /* id - 1 -> string */
	size_t nstrs;
	size_t strcap;
	uint32_t *strslots; /* ids; 0 empty */
	size_t nstrslots;
	struct key *keys;
	size_t nkeyslots;
	size_t nkeys;
};

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

static uint64_t
hash_key(const uint32_t s[3])
{
	uint64_t h = s[0] * 0x9e3779b97f4a7c15ULL;

	h = (h ^ s[1]) * 0xbf58476d1ce4e5b9ULL;
	h = (h ^ s[2]) * 0x94d049bb133111ebULL;
	return h ^ (h >> 31);
}

struct keyset *
keyset_new(void)
{
	struct keyset *k = xcalloc(1, sizeof(*k));

	k->nstrslots = 64;
	k->strslots = xcalloc(k->nstrslots, sizeof(*k->strslots));
	k->nkeyslots = 1024;
	k->keys = xcalloc(k->nkeyslots, sizeof(*k->keys));
	return k;
}

void
keyset_destroy(struct keyset **kp)
{
	struct keyset *k;

	if (kp == NULL || (k = *kp) == NULL)
		return;
	for (size_t i = 0; i < k->nstrs; i++)
		free(k->strs[i]);
	free(k->strs);
	free(k->strslots);
	free(k->keys);
	free(k);
	*kp = NULL;
}

static void
str_place(struct keyset *k, uint32_t id)
{
	size_t i = hash_str(k->strs[id - 1]) & (k->nstrslots - 1);

	while (k->strslots[i] != 0)
		i = (i + 1) & (k->nstrslots - 1);
	k->strslots[i] = id;
}

/* The id of s, added when new. */
static uint32_t
str_id(struct keyset *k, const char *s)
{
	size_t i = hash_str(s) & (k->nstrslots - 1);
	uint32_t id;

	for (; (id = k->strslots[i]) != 0; i = (i + 1) & (k->nstrslots - 1))
		if (strcmp(k->strs[id - 1], s) == 0)
			return id;
	if (k->nstrs == k->strcap) {
		k->strcap = k->strcap ? k->strcap * 2 : 64;
		k->strs = xrealloc(k->strs, k->strcap * sizeof(*k->strs));
	}
	k->strs[k->nstrs++] = xstrdup(s);
	id = (uint32_t)k->nstrs;
	if (k->nstrs * 2 > k->nstrslots) {
		free(k->strslots);
		k->nstrslots *= 2;
		k->strslots = xcalloc(k->nstrslots, sizeof(*k->strslots));
		for (uint32_t j = 1; j <= k->nstrs; j++)
			str_place(k, j);
	} else {
		k->strslots[i] = id;
	}
	return id;
}

static void
key_place(struct key *slots, size_t n, const struct key *key)
{
	size_t i = hash_key(key->s) & (n - 1);

	while (slots[i].s[0] != 0)
		i = (i + 1) & (n - 1);
	slots[i] = *key;
}

unsigned
keyset_add(struct keyset *k, const char *industry, const char *metric,
    const char *period, unsigned line)
{
	struct key key = { { str_id(k, industry), str_id(k, metric),
			       str_id(k, period) },
		line };
	size_t i = hash_key(key.s) & (k->nkeyslots - 1);

	for (; k->keys[i].s[0] != 0; i = (i + 1) & (k->nkeyslots - 1))
		if (memcmp(k->keys[i].s, key.s, sizeof(key.s)) == 0)
			return k->keys[i].line;
	k->keys[i] = key;
	if (++k->nkeys * 2 > k->nkeyslots) {
		size_t n = k->nkeyslots * 2;
		struct key *slots = xcalloc(n, sizeof(*slots));

		for (size_t j = 0; j < k->nkeyslots; j++)
			if (k->keys[j].s[0] != 0)
				key_place(slots, n, &k->keys[j]);
		free(k->keys);
		k->keys = slots;
		k->nkeyslots = n;
	}
	return 0;
}

size_t
keyset_count(const struct keyset *k)
{
	return k->nkeys;
}
