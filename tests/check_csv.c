/*
 * The CSV push parser: good files give exactly the rows a user wrote, bad
 * ones fail on the right line with a reason a person can act on, and the
 * result does not depend on how the input was cut into chunks.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

#define HDR "industry,metric,period,value,unit\n"
#define HDR7 "industry,metric,period,value,unit,status,note\n"
#define BOM "\xef\xbb\xbf"
#define MAX_ROWS 4

struct exp_row {
	unsigned line;
	const char *industry;
	const char *metric;
	const char *period;
	double value;
	const char *unit;
	int status;
	const char *note;
};

static const struct good_case {
	const char *name;
	const char *input;
	size_t nrows;
	struct exp_row rows[MAX_ROWS];
} good[] = {
	{ "plain",
	    HDR "photonics,output_value,2025,12.5,CNY_100M\n"
		"quantum,chain_leaders,2025-Q3,3,count\n",
	    2,
	    { { 2, "photonics", "output_value", "2025", 12.5, "CNY_100M", 0,
		  "" },
		{ 3, "quantum", "chain_leaders", "2025-Q3", 3, "count", 0,
		    "" } } },
	{ "quoted",
	    HDR7 "\"photonics\",output_value,2025-09,\"150\",CNY_10K,final,"
		 "\"a, b \"\"c\"\"\"\n"
		 "hydrogen,pilot_parks,2025,\"2\",count,\"\",\"\"\"\"\n",
	    2,
	    { { 2, "photonics", "output_value", "2025-09", 150, "CNY_10K", 2,
		  "a, b \"c\"" },
		{ 3, "hydrogen", "pilot_parks", "2025", 2, "count", 0,
		    "\"" } } },
	{ "crlf",
	    "industry,metric,period,value,unit\r\n"
	    "photonics,output_value,2025,1,CNY_100M\r\n"
	    "quantum,output_value,2024,2,CNY_100M\r\n",
	    2,
	    { { 2, "photonics", "output_value", "2025", 1, "CNY_100M", 0, "" },
		{ 3, "quantum", "output_value", "2024", 2, "CNY_100M", 0,
		    "" } } },
	{ "bom", BOM HDR "materials,output_value,2025,7,CNY_100M\n", 1,
	    { { 2, "materials", "output_value", "2025", 7, "CNY_100M", 0,
		"" } } },
	{ "reordered",
	    "note,unit,value,period,metric,industry,status\n"
	    "first,count,4,2025-Q1,core_products,cellgene,Provisional\n",
	    1,
	    { { 2, "cellgene", "core_products", "2025-Q1", 4, "count", 1,
		"first" } } },
	{ "header names any case, spaced",
	    " Industry , METRIC,Period,Value\t,unit,Status\n"
	    "digifin,app_scenarios,2025,9,count,REVISED\n",
	    1,
	    { { 2, "digifin", "app_scenarios", "2025", 9, "count", 3, "" } } },
	{ "codes and value trimmed, note kept",
	    HDR7 " photonics ,output_value, 2025 , 1e3 , CNY_100M , final ,"
		 "  two spaces \n",
	    1,
	    { { 2, "photonics", "output_value", "2025", 1000, "CNY_100M", 2,
		"  two spaces " } } },
	{ "multi-line quoted note",
	    HDR7 "metaverse,output_value,2025,3.25,CNY_100M,,\"line one\n"
		 "line two\r\nline three\"\n"
		 "aerospace,output_value,2025,-0.5,CNY_100M,,\n",
	    2,
	    { { 2, "metaverse", "output_value", "2025", 3.25, "CNY_100M", 0,
		  "line one\nline two\r\nline three" },
		{ 5, "aerospace", "output_value", "2025", -0.5, "CNY_100M", 0,
		    "" } } },
	{ "last line without newline",
	    HDR "photonics,output_value,2025,1,CNY_100M\n"
		"quantum,output_value,2025,2,CNY_100M",
	    2,
	    { { 2, "photonics", "output_value", "2025", 1, "CNY_100M", 0, "" },
		{ 3, "quantum", "output_value", "2025", 2, "CNY_100M", 0,
		    "" } } },
	{ "last quoted field without newline",
	    HDR7 "quantum,output_value,2025,2,CNY_100M,,\"end\"", 1,
	    { { 2, "quantum", "output_value", "2025", 2, "CNY_100M", 0,
		"end" } } },
	{ "header only", HDR, 0, { { 0 } } },
	{ "header only, no newline", "industry,metric,period,value,unit", 0,
	    { { 0 } } },
	{ "blank lines skipped",
	    "\n\r\n" HDR "\n  \nphotonics,output_value,2025,1,CNY_100M\n\n"
	    "quantum,output_value,2025,2,CNY_100M\n\n\n",
	    2,
	    { { 6, "photonics", "output_value", "2025", 1, "CNY_100M", 0, "" },
		{ 8, "quantum", "output_value", "2025", 2, "CNY_100M", 0,
		    "" } } },
	{ "UTF-8 note",
	    HDR7 "photonics,output_value,2025,1,CNY_100M,,昆山 光子\n", 1,
	    { { 2, "photonics", "output_value", "2025", 1, "CNY_100M", 0,
		"昆山 光子" } } },
	{ "fields at their limits",
	    HDR7 "abcdefghijklmnopqrstuvwxyz012345,m,2025-Q3,0,"
		 "abcdefghijklmnop,,"
		 "0123456789012345678901234567890123456789012345678901234567890"
		 "1234567890123456789012345678901234567890123456789012345678901"
		 "2345678901234567890123456789012345678901234567890123456789012"
		 "3456789012345678901234567890123456789012345678901234567890123"
		 "456789012345\n",
	    1,
	    { { 2, "abcdefghijklmnopqrstuvwxyz012345", "m", "2025-Q3", 0,
		"abcdefghijklmnop", 0,
		"0123456789012345678901234567890123456789012345678901234567890"
		"1234567890123456789012345678901234567890123456789012345678901"
		"2345678901234567890123456789012345678901234567890123456789012"
		"3456789012345678901234567890123456789012345678901234567890123"
		"456789012345" } } },
	{ "BOM-like bytes later are data",
	    HDR7 "photonics,output_value,2025,1,CNY_100M,," BOM "x\n", 1,
	    { { 2, "photonics", "output_value", "2025", 1, "CNY_100M", 0,
		BOM "x" } } },
};

static const struct bad_case {
	const char *name;
	const char *input;
	unsigned line;
	const char *msg;
} bad[] = {
	{ "empty file", "", 1, "no header row" },
	{ "blank lines only", "\n\r\n  \n", 1, "no header row" },
	{ "BOM only", BOM, 1, "no header row" },
	{ "unknown column", "industry,metric,period,value,unit,colour\n", 1,
	    "unknown column 'colour'" },
	{ "empty column name", "industry,metric,period,value,unit,\n", 1,
	    "unknown column ''" },
	{ "repeated column", "industry,metric,period,value,unit,Unit \n", 1,
	    "column 'unit' appears twice" },
	{ "missing column", "industry,metric,period,unit,note\n", 1,
	    "missing column 'value'" },
	{ "missing column, header last line", "metric,period,value,unit", 1,
	    "missing column 'industry'" },
	{ "BOM not at start", "industry," BOM "metric,period,value,unit\n", 1,
	    "unknown column" },
	{ "header after blank lines", "\n\nindustry,metric,period,value\n", 3,
	    "missing column 'unit'" },
	{ "header not UTF-8", "industry,metric,period,value,unit,\xff\n", 1,
	    "not valid UTF-8" },
	{ "too few fields",
	    HDR "photonics,output_value,2025,1,CNY_100M\n"
		"photonics,output_value,2025,1\n",
	    3, "expected 5 fields, found 4" },
	{ "too many fields", HDR "photonics,output_value,2025,1,CNY_100M,x\n",
	    2, "expected 5 fields, found 6" },
	{ "value not a number",
	    HDR "photonics,output_value,2025,abc,CNY_100M\n", 2,
	    "value 'abc' is not a number" },
	{ "value with trailing junk",
	    HDR "photonics,output_value,2025,12abc,CNY_100M\n", 2,
	    "value '12abc' is not a number" },
	{ "value with comma decimal",
	    HDR "photonics,output_value,2025,\"1,5\",CNY_100M\n", 2,
	    "value '1,5' is not a number" },
	{ "value empty", HDR "photonics,output_value,2025,,CNY_100M\n", 2,
	    "value is empty" },
	{ "value nan", HDR "photonics,output_value,2025,nan,CNY_100M\n", 2,
	    "value 'nan' is not a number" },
	{ "value inf", HDR "photonics,output_value,2025,-Infinity,CNY_100M\n",
	    2, "value '-Infinity' is not a number" },
	{ "value overflows", HDR "photonics,output_value,2025,1e999,CNY_100M\n",
	    2, "value '1e999' is not a number" },
	{ "industry empty", HDR "\"\",output_value,2025,1,CNY_100M\n", 2,
	    "industry is empty" },
	{ "metric spaces only", HDR "photonics,   ,2025,1,CNY_100M\n", 2,
	    "metric is empty" },
	{ "period empty", HDR "photonics,output_value,,1,CNY_100M\n", 2,
	    "period is empty" },
	{ "unit empty", HDR "photonics,output_value,2025,1,\n", 2,
	    "unit is empty" },
	{ "industry too long",
	    HDR "abcdefghijklmnopqrstuvwxyz0123456,output_value,2025,1,"
		"CNY_100M\n",
	    2, "industry is longer than 32 bytes" },
	{ "period too long", HDR "photonics,output_value,2025-Q3x,1,CNY_100M\n",
	    2, "period is longer than 7 bytes" },
	{ "unit too long",
	    HDR "photonics,output_value,2025,1,abcdefghijklmnopq\n", 2,
	    "unit is longer than 16 bytes" },
	{ "note too long",
	    HDR7 "photonics,output_value,2025,1,CNY_100M,,"
		 "0123456789012345678901234567890123456789012345678901234567890"
		 "1234567890123456789012345678901234567890123456789012345678901"
		 "2345678901234567890123456789012345678901234567890123456789012"
		 "3456789012345678901234567890123456789012345678901234567890123"
		 "4567890123456\n",
	    2, "note is longer than 256 bytes" },
	{ "bad status", HDR7 "photonics,output_value,2025,1,CNY_100M,draft,\n",
	    2, "status 'draft' is not provisional, final or revised" },
	{ "invalid UTF-8 note",
	    HDR7 "photonics,output_value,2025,1,CNY_100M,,a\xff"
		 "b\n",
	    2, "note is not valid UTF-8" },
	{ "overlong UTF-8 industry",
	    HDR "photo\xc0\xafnics,output_value,2025,1,CNY_100M\n", 2,
	    "industry is not valid UTF-8" },
	{ "truncated UTF-8 at end of field",
	    HDR "photonics,output_value,2025,1,CNY\xe6\x98\n", 2,
	    "unit is not valid UTF-8" },
	{ "unterminated quote",
	    HDR7 "photonics,output_value,2025,1,CNY_100M,,ok\n"
		 "photonics,output_value,2025,1,CNY_100M,,\"never closed\n"
		 "more\n\n",
	    3, "unterminated" },
	{ "unterminated quote after a multi-line field",
	    HDR7 "photonics,output_value,2025,1,CNY_100M,,\"a\nb\nc\"\n"
		 "photonics,output_value,2025,\"1\n",
	    5, "unterminated" },
	{ "quote inside unquoted field",
	    HDR "photonics,output_value,2025,1,CNY_\"100M\"\n", 2,
	    "quote inside an unquoted field" },
	{ "text after closing quote",
	    HDR "\"photonics\"x,output_value,2025,1,CNY_100M\n", 2,
	    "unexpected 'x' after a closing quote" },
	{ "line counts spans and blank lines",
	    "\r\n" HDR7 "\r\n"
	    "photonics,output_value,2025,1,CNY_100M,,\"a\r\nb\"\r\n"
	    "photonics,output_value,2025,x,CNY_100M,,\r\n",
	    6, "value 'x' is not a number" },
	{ "error in a multi-line row is on its first line",
	    HDR7 "photonics,output_value,2025,1,CNY_100M,\"\nfinal\n\",\n", 2,
	    "status '\\nfinal\\n' is not" },
	{ "long value shown cut, on a character boundary",
	    HDR "photonics,output_value,2025,"
		"12345678901234567890123456789012345678\xe5\x85\x83"
		"abc,CNY_100M\n",
	    2, "value '12345678901234567890123456789012345678...' is not" },
	{ "control characters shown escaped",
	    HDR "photonics,output_value,2025,\"1\x01\t\",CNY_100M\n", 2,
	    "value '1\\x01' is not a number" },
};

#define NGOOD (sizeof(good) / sizeof(good[0]))
#define NBAD (sizeof(bad) / sizeof(bad[0]))

struct result {
	int rc;
	unsigned line;
	char err[512];
	unsigned long count;
	size_t nrows;
	struct csv_row rows[MAX_ROWS];
	int stop_after; /* rows to accept before stopping; -1: never */
};

static int
collect(const struct csv_row *row, void *arg)
{
	struct result *r = arg;

	if (r->stop_after >= 0 && r->nrows == (size_t)r->stop_after)
		return -1;
	if (r->nrows < MAX_ROWS)
		r->rows[r->nrows] = *row;
	r->nrows++;
	return 0;
}

/* Parses len bytes of input fed in pieces of chunk bytes (0: all at once). */
static void
parse(const char *input, size_t len, size_t chunk, struct result *r)
{
	struct csv_parser *p;
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	r->stop_after = -1;
	p = csv_new(collect, r);
	if (chunk == 0)
		chunk = len;
	r->rc = 0;
	while (off < len && r->rc == 0) {
		size_t n = len - off < chunk ? len - off : chunk;

		r->rc = csv_feed(p, input + off, n);
		off += n;
	}
	if (r->rc == 0)
		r->rc = csv_finish(p);
	r->line = csv_error_line(p);
	snprintf(r->err, sizeof(r->err), "%s", csv_error(p));
	r->count = csv_rows(p);
	csv_destroy(&p);
	ck_assert_ptr_null(p);
}

static void
assert_row(const struct csv_row *got, const struct exp_row *want, size_t i)
{
	ck_assert_msg(got->line == want->line, "row %zu: line %u, want %u", i,
	    got->line, want->line);
	ck_assert_str_eq(got->industry, want->industry);
	ck_assert_str_eq(got->metric, want->metric);
	ck_assert_str_eq(got->period, want->period);
	ck_assert_msg(got->value == want->value, "row %zu: value %g, want %g",
	    i, got->value, want->value);
	ck_assert_str_eq(got->unit, want->unit);
	ck_assert_int_eq(got->status, want->status);
	ck_assert_str_eq(got->note, want->note);
}

static void
assert_same(const struct result *a, const struct result *b, const char *name,
    size_t chunk)
{
	ck_assert_msg(
	    a->rc == b->rc && a->line == b->line && strcmp(a->err, b->err) == 0,
	    "%s: chunk %zu gives rc %d line %u '%s', all at once rc %d "
	    "line %u '%s'",
	    name, chunk, b->rc, b->line, b->err, a->rc, a->line, a->err);
	ck_assert_uint_eq(a->nrows, b->nrows);
	ck_assert_uint_eq(a->count, b->count);
	for (size_t i = 0; i < a->nrows && i < MAX_ROWS; i++) {
		const struct csv_row *x = &a->rows[i], *y = &b->rows[i];

		ck_assert_uint_eq(x->line, y->line);
		ck_assert_str_eq(x->industry, y->industry);
		ck_assert_str_eq(x->metric, y->metric);
		ck_assert_str_eq(x->period, y->period);
		ck_assert(x->value == y->value);
		ck_assert_str_eq(x->unit, y->unit);
		ck_assert_int_eq(x->status, y->status);
		ck_assert_str_eq(x->note, y->note);
	}
}

START_TEST(test_good)
{
	const struct good_case *c = &good[_i];
	struct result r;

	parse(c->input, strlen(c->input), 0, &r);
	ck_assert_msg(
	    r.rc == 0, "%s: failed: line %u: %s", c->name, r.line, r.err);
	ck_assert_str_eq(r.err, "");
	ck_assert_uint_eq(r.line, 0);
	ck_assert_msg(r.nrows == c->nrows, "%s: %zu rows, want %zu", c->name,
	    r.nrows, c->nrows);
	ck_assert_uint_eq(r.count, c->nrows);
	for (size_t i = 0; i < c->nrows; i++)
		assert_row(&r.rows[i], &c->rows[i], i);
}
END_TEST

START_TEST(test_bad)
{
	const struct bad_case *c = &bad[_i];
	struct result r;

	parse(c->input, strlen(c->input), 0, &r);
	ck_assert_msg(r.rc == -1, "%s: accepted", c->name);
	ck_assert_msg(r.line == c->line, "%s: line %u, want %u (%s)", c->name,
	    r.line, c->line, r.err);
	ck_assert_msg(strstr(r.err, c->msg) != NULL,
	    "%s: error '%s' lacks '%s'", c->name, r.err, c->msg);
}
END_TEST

/* Every case, good and bad, gives the same result whatever the chunking. */
START_TEST(test_chunks)
{
	static const size_t chunks[] = { 1, 2, 3, 7 };
	const char *input, *name;
	struct result whole, part;

	if ((size_t)_i < NGOOD) {
		input = good[_i].input;
		name = good[_i].name;
	} else {
		input = bad[_i - NGOOD].input;
		name = bad[_i - NGOOD].name;
	}
	parse(input, strlen(input), 0, &whole);
	for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
		parse(input, strlen(input), chunks[k], &part);
		assert_same(&whole, &part, name, chunks[k]);
	}
}
END_TEST

START_TEST(test_stopped_by_caller)
{
	const char *in = HDR "photonics,output_value,2025,1,CNY_100M\n"
			     "quantum,output_value,2025,2,CNY_100M\n"
			     "hydrogen,output_value,2025,3,CNY_100M\n";
	struct result r;
	struct csv_parser *p;

	memset(&r, 0, sizeof(r));
	r.stop_after = 1;
	p = csv_new(collect, &r);
	ck_assert_int_eq(csv_feed(p, in, strlen(in)), -1);
	ck_assert_uint_eq(r.nrows, 1);
	ck_assert_uint_eq(csv_error_line(p), 3);
	ck_assert_str_eq(csv_error(p), "stopped by caller");
	csv_destroy(&p);
}
END_TEST

/* After the first bad line the parser stays failed with the same error. */
START_TEST(test_failure_sticks)
{
	const char *in = HDR "photonics,output_value,2025,zz,CNY_100M\n";
	const char *more = "quantum,output_value,2025,2,CNY_100M\n";
	struct result r;
	struct csv_parser *p;

	memset(&r, 0, sizeof(r));
	r.stop_after = -1;
	p = csv_new(collect, &r);
	ck_assert_int_eq(csv_feed(p, in, strlen(in)), -1);
	ck_assert_int_eq(csv_feed(p, more, strlen(more)), -1);
	ck_assert_int_eq(csv_finish(p), -1);
	ck_assert_uint_eq(csv_error_line(p), 2);
	ck_assert_str_eq(csv_error(p), "value 'zz' is not a number");
	ck_assert_uint_eq(r.nrows, 0);
	csv_destroy(&p);
	csv_destroy(&p);
	csv_destroy(NULL);
}
END_TEST

/*
 * A huge field fails as soon as it passes the buffer, before the input
 * ends: the parser does not hold it.
 */
START_TEST(test_huge_field)
{
	static const char *const pre[] = {
		HDR7 "photonics,output_value,2025,1,CNY_100M,,\"",
		HDR "photonics,output_value,2025,1",
		"industry,metric,period,value,unit,",
	};
	static const char *const msg[] = {
		"note is longer than 256 bytes",
		"value is longer than 4096 bytes",
		"column 6 of the header is longer than",
	};
	static const unsigned line[] = { 2, 2, 1 };
	size_t n = 64 * 1024;
	char *big = malloc(n);
	struct result r;
	struct csv_parser *p;
	int rc = 0;

	ck_assert_ptr_nonnull(big);
	memset(big, '1', n);
	for (size_t i = 0; i < sizeof(pre) / sizeof(pre[0]); i++) {
		memset(&r, 0, sizeof(r));
		r.stop_after = -1;
		p = csv_new(collect, &r);
		ck_assert_int_eq(csv_feed(p, pre[i], strlen(pre[i])), 0);
		for (int k = 0; k < 16 && (rc = csv_feed(p, big, n)) == 0; k++)
			;
		ck_assert_int_eq(rc, -1);
		ck_assert_uint_eq(csv_error_line(p), line[i]);
		ck_assert_msg(strstr(csv_error(p), msg[i]) != NULL,
		    "'%s' lacks '%s'", csv_error(p), msg[i]);
		csv_destroy(&p);
	}
	free(big);
}
END_TEST

/* Many rows stream through the callback one at a time. */
START_TEST(test_many_rows)
{
	const char *row = "photonics,output_value,2025,1.5,CNY_100M\r\n";
	struct result r;
	struct csv_parser *p;

	memset(&r, 0, sizeof(r));
	r.stop_after = -1;
	p = csv_new(collect, &r);
	ck_assert_int_eq(csv_feed(p, HDR, strlen(HDR)), 0);
	for (int i = 0; i < 100000; i++)
		ck_assert_int_eq(csv_feed(p, row, strlen(row)), 0);
	ck_assert_int_eq(csv_finish(p), 0);
	ck_assert_uint_eq(csv_rows(p), 100000);
	ck_assert_uint_eq(r.nrows, 100000);
	ck_assert_uint_eq(r.rows[MAX_ROWS - 1].line, 1 + MAX_ROWS);
	csv_destroy(&p);
}
END_TEST

static Suite *
csv_suite(void)
{
	Suite *s = suite_create("csv");
	TCase *tc = tcase_create("parse");

	tcase_add_loop_test(tc, test_good, 0, NGOOD);
	tcase_add_loop_test(tc, test_bad, 0, NBAD);
	tcase_add_loop_test(tc, test_chunks, 0, NGOOD + NBAD);
	tcase_add_test(tc, test_stopped_by_caller);
	tcase_add_test(tc, test_failure_sticks);
	tcase_add_test(tc, test_huge_field);
	tcase_add_test(tc, test_many_rows);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(csv_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
