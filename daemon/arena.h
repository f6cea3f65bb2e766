/*
 * A region allocator for memory that dies all at once: the decoded
 * messages of one ingest batch. protobuf-c's unpack allocates every
 * sub-message, string and array separately, and freeing them one by one was
 * a tenth of the daemon's time; from an arena they come out of large chunks
 * and the batch gives them all back with arena_reset().
 *
 * arena_reset() keeps one standard chunk for the next batch and frees the
 * rest; after a batch that took more than ARENA_TRIM_BYTES it also asks
 * the C library to give free memory back to the system (malloc_trim), so a
 * burst of large messages does not leave the daemon's resident size high.
 *
 * Allocation never fails (aborts on out of memory, like xmalloc()).
 */
#ifndef INDICATORD_ARENA_H
#define INDICATORD_ARENA_H

#include <stddef.h>

#define ARENA_CHUNK (1024 * 1024)
#define ARENA_TRIM_BYTES (8 * ARENA_CHUNK)

struct arena;

/* arena.c */

/* A new, empty arena; caller owns it (arena_destroy()). */
struct arena *arena_new(void);
/* Frees the arena and everything allocated from it; accepts NULL and
 * *a == NULL; sets *a to NULL. */
void arena_destroy(struct arena **a);
/* size bytes aligned for any type, valid until the next arena_reset(). */
void *arena_alloc(struct arena *a, size_t size);
/* Gives back everything allocated (see above). */
void arena_reset(struct arena *a);
/* Bytes of chunks the arena holds (allocated to it from the C library). */
size_t arena_held(const struct arena *a);
/* Times arena_reset() trimmed. */
unsigned long arena_trims(const struct arena *a);

#endif
