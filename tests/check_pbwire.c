/*
 * pbwire: single fields of packed messages read without unpacking them,
 * checked against what protobuf-c packed.
 */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "indicator.pb-c.h"
#include "pbwire.h"

static size_t
pack_aggregate(uint8_t *buf, double value, uint64_t revision)
{
	Indicator__Aggregate a = INDICATOR__AGGREGATE__INIT;

	a.metric = "output_value";
	a.industry = "*";
	a.scope = "city";
	a.period = "2025";
	a.value = value;
	a.unit = "CNY_100M";
	a.districts_reporting = 7;
	a.districts_expected = 10;
	a.target = 5000;
	a.target_year = 2030;
	a.progress = value / 5000;
	a.revision = revision;
	a.seq = 123456789012345ULL;
	a.updated_at_ms = -5;
	return indicator__aggregate__pack(&a, buf);
}

START_TEST(aggregate_fields)
{
	uint8_t buf[512];
	size_t len = pack_aggregate(buf, 2245.36, 300);
	const uint8_t *p = buf;
	struct pbwire_field f;
	int seen = 0, rc;

	while ((rc = pbwire_next(&p, buf + len, &f)) == 1) {
		switch (f.number) {
		case 1:
			ck_assert_int_eq(f.type, 2);
			ck_assert_uint_eq(f.len, strlen("output_value"));
			ck_assert(memcmp(f.data, "output_value", f.len) == 0);
			break;
		case 5:
			ck_assert_int_eq(f.type, 1);
			ck_assert(pbwire_double(&f) == 2245.36);
			break;
		case 7:
			ck_assert_uint_eq(f.u, 7);
			break;
		case 10:
			ck_assert_uint_eq(f.u, 2030);
			break;
		case 12:
			ck_assert_uint_eq(f.u, 300);
			break;
		case 13:
			ck_assert_uint_eq(f.u, 123456789012345ULL);
			break;
		case 14: /* int64 -5: a ten-byte varint */
			ck_assert((int64_t)f.u == -5);
			break;
		}
		seen++;
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(seen, 14);
	ck_assert_ptr_eq(p, buf + len);
}
END_TEST

START_TEST(truncated_is_an_error)
{
	uint8_t buf[512];
	size_t len = pack_aggregate(buf, 1.5, 1);

	/* Every proper prefix that cuts a field fails; none reads past it. */
	for (size_t cut = 1; cut < len; cut++) {
		const uint8_t *p = buf;
		struct pbwire_field f;
		int rc;

		while ((rc = pbwire_next(&p, buf + cut, &f)) == 1)
			ck_assert(p <= buf + cut);
		ck_assert(rc == 0 || rc == -1);
	}
}
END_TEST

START_TEST(garbage)
{
	const uint8_t bad[][3] = {
		{ 0x00, 0x00, 0x00 }, /* field number 0 */
		{ 0x0b, 0x00, 0x00 }, /* wire type 3 (groups) */
		{ 0x12, 0x7f, 0x00 }, /* length past the end */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const uint8_t *p = bad[i];
		struct pbwire_field f;

		ck_assert_int_eq(pbwire_next(&p, bad[i] + 3, &f), -1);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("pbwire");
	TCase *tc = tcase_create("pbwire");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, aggregate_fields);
	tcase_add_test(tc, truncated_is_an_error);
	tcase_add_test(tc, garbage);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
