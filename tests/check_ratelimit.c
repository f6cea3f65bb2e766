/*
 * The per-agent token bucket (daemon/ratelimit.h): the burst, the refill,
 * keys kept exactly (many agents, none sharing a bucket, as issue 12 found
 * the hashed slots did), and the sweep that bounds memory.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "ratelimit.h"

/* rate a second: a burst of rate, then nothing until time passes. */
static const struct {
	double rate;
	int64_t wait_ms; /* after the burst */
	int more; /* then allowed */
} cases[] = {
	{ 1, 0, 0 },
	{ 10, 0, 0 },
	{ 10, 100, 1 },
	{ 10, 1000, 10 },
	{ 10, 60000, 10 }, /* never more than the burst */
	{ 1000, 5, 5 },
};

START_TEST(test_bucket)
{
	struct ratelimit *r = ratelimit_new();
	int64_t t = 1000000;
	int n = 0;

	while (ratelimit_take(r, "agent", cases[_i].rate, t))
		n++;
	ck_assert_int_eq(n, (int)cases[_i].rate);
	t += cases[_i].wait_ms;
	n = 0;
	while (ratelimit_take(r, "agent", cases[_i].rate, t))
		n++;
	ck_assert_int_eq(n, cases[_i].more);
	ratelimit_destroy(&r);
	ck_assert_ptr_null(r);
}
END_TEST

/* Thousands of agents at once, each with its own bucket: every one gets
 * exactly its burst, whatever their ids hash to. */
START_TEST(test_exact)
{
	struct ratelimit *r = ratelimit_new();
	char id[32];
	int64_t t = 5000;
	int n = 0;

	for (int round = 0; round < 3; round++)
		for (int a = 0; a < 5000; a++) {
			snprintf(id, sizeof(id), "agent-%d", a);
			n += ratelimit_take(r, id, 2, t);
		}
	/* A burst of 2 each: the third round is refused for all. */
	ck_assert_int_eq(n, 2 * 5000);
	ck_assert_uint_eq(ratelimit_size(r), 5000);
	/* Rate 0: no limit, nothing kept. */
	ck_assert(ratelimit_take(r, "agent-1", 0, t));
	ratelimit_destroy(&r);
}
END_TEST

/* Buckets refilled to their burst are swept: agents that come and go do
 * not grow the table without bound. */
START_TEST(test_sweep)
{
	struct ratelimit *r = ratelimit_new();
	char id[32];
	int64_t t = 0;

	for (int a = 0; a < 100000; a++) {
		snprintf(id, sizeof(id), "a%d", a);
		t += 10; /* 100 new agents a second, each idle after */
		ck_assert(ratelimit_take(r, id, 5, t));
	}
	/* Active within the last second: about 100 (5 tokens a second
	 * refill one taken in 200 ms). */
	ck_assert_uint_lt(ratelimit_size(r), 1000);
	ratelimit_destroy(&r);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("ratelimit");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(
	    tc, test_bucket, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, test_exact);
	tcase_add_test(tc, test_sweep);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
