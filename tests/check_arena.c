/*
 * The batch arena (daemon/arena.h): alignment, large allocations, reset
 * keeping one chunk, the trim after a large batch.
 */
#include <check.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

static const size_t sizes[] = { 1, 7, 16, 100, 4096, ARENA_CHUNK - 1,
	ARENA_CHUNK, 3 * ARENA_CHUNK };

START_TEST(test_alloc)
{
	struct arena *a = arena_new();
	size_t n = sizes[_i];
	unsigned char *p, *q;

	p = arena_alloc(a, n);
	q = arena_alloc(a, n);
	ck_assert_uint_eq((uintptr_t)p % alignof(max_align_t), 0);
	ck_assert_uint_eq((uintptr_t)q % alignof(max_align_t), 0);
	/* Usable, and apart. */
	memset(p, 0xaa, n);
	memset(q, 0x55, n);
	ck_assert_uint_eq(p[n - 1], 0xaa);
	ck_assert_uint_eq(q[0], 0x55);
	ck_assert_uint_ge(arena_held(a), 2 * n);
	arena_reset(a);
	ck_assert_uint_le(arena_held(a), ARENA_CHUNK);
	arena_destroy(&a);
	ck_assert_ptr_null(a);
	arena_destroy(&a);
	arena_destroy(NULL);
}
END_TEST

/* A batch larger than the trim threshold is given back at the reset; a
 * small one keeps its chunk and is not trimmed. */
START_TEST(test_trim)
{
	struct arena *a = arena_new();

	for (int i = 0; i < 1000; i++)
		arena_alloc(a, 100);
	arena_reset(a);
	ck_assert_uint_eq(arena_trims(a), 0);
	ck_assert_uint_eq(arena_held(a), ARENA_CHUNK);
	for (int i = 0; i < 20; i++)
		memset(arena_alloc(a, ARENA_CHUNK / 2), 1, ARENA_CHUNK / 2);
	ck_assert_uint_ge(arena_held(a), ARENA_TRIM_BYTES);
	arena_reset(a);
	ck_assert_uint_eq(arena_trims(a), 1);
	ck_assert_uint_eq(arena_held(a), ARENA_CHUNK);
	/* The kept chunk serves again from its start. */
	ck_assert_ptr_nonnull(arena_alloc(a, 10));
	ck_assert_uint_eq(arena_held(a), ARENA_CHUNK);
	arena_destroy(&a);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("arena");
	TCase *tc = tcase_create("arena");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(
	    tc, test_alloc, 0, (int)(sizeof(sizes) / sizeof(sizes[0])));
	tcase_add_test(tc, test_trim);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
