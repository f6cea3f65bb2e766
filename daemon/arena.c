/*
 * The batch arena. See arena.h.
 */
#include <stdalign.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "arena.h"
#include "xmalloc.h"

struct arena_chunk {
	struct arena_chunk *next;
	size_t used;
	size_t size;
	max_align_t data[];
};

struct arena {
	struct arena_chunk *head; /* the chunk in use; older ones follow */
	size_t held; /* bytes of chunks */
	unsigned long trims;
};

struct arena *
arena_new(void)
{
	return xcalloc(1, sizeof(struct arena));
}

void
arena_destroy(struct arena **ap)
{
	struct arena *a;

	if (ap == NULL || (a = *ap) == NULL)
		return;
	while (a->head != NULL) {
		struct arena_chunk *next = a->head->next;

		free(a->head);
		a->head = next;
	}
	free(a);
	*ap = NULL;
}

void *
arena_alloc(struct arena *a, size_t size)
{
	struct arena_chunk *c = a->head;
	size_t need =
	    (size + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
	void *p;

	if (c == NULL || c->size - c->used < need) {
		size_t csize = need > ARENA_CHUNK ? need : ARENA_CHUNK;

		c = xmalloc(sizeof(*c) + csize);
		c->size = csize;
		c->used = 0;
		c->next = a->head;
		a->head = c;
		a->held += csize;
	}
	p = (char *)c->data + c->used;
	c->used += need;
	return p;
}

void
arena_reset(struct arena *a)
{
	struct arena_chunk *c = a->head, *keep = NULL;
	size_t before = a->held;

	while (c != NULL) {
		struct arena_chunk *next = c->next;

		if (keep == NULL && c->size == ARENA_CHUNK) {
			keep = c;
		} else {
			free(c);
		}
		c = next;
	}
	a->held = 0;
	if (keep != NULL) {
		keep->used = 0;
		keep->next = NULL;
		a->held = keep->size;
	}
	a->head = keep;
	/* Freed chunks of a large batch may sit in the C library's free
	 * lists (or above a raised mmap threshold): hand them back. */
	if (before - a->held >= ARENA_TRIM_BYTES) {
#ifdef __GLIBC__
		malloc_trim(0);
#endif
		a->trims++;
	}
}

size_t
arena_held(const struct arena *a)
{
	return a->held;
}

unsigned long
arena_trims(const struct arena *a)
{
	return a->trims;
}
