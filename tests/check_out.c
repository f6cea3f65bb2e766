/*
 * The tools' output layer (tools/out.c): tables aligned in display columns
 * with Chinese names, JSON escaping of hostile strings, numbers that read
 * back exactly, local times in the configured zone.
 */
#define _XOPEN_SOURCE 700 /* wcswidth() */
#include <check.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "out.h"

/* The display width of the first n bytes of s by the C library (wcswidth
 * in C.UTF-8): an oracle independent of out_width(). */
static int
libc_width(const char *s, size_t n)
{
	char *copy = strndup(s, n);
	wchar_t wbuf[512];
	size_t len = mbstowcs(wbuf, copy, 512);
	int w;

	ck_assert_msg(len != (size_t)-1, "not UTF-8 for mbstowcs: %s", copy);
	w = wcswidth(wbuf, len);
	ck_assert_msg(w >= 0, "wcswidth: unprintable in %s", copy);
	free(copy);
	return w;
}

/* The registry's names (conf/indicatord.conf) and some wider ones. */
static const char *const names[][2] = {
	{ "320505", "虎丘区 (苏州高新区)" },
	{ "320506", "吴中区" },
	{ "320576", "苏州工业园区" },
	{ "320581", "常熟市" },
	{ "photonics", "光子芯片与光器件" },
	{ "cellgene", "细胞和基因诊疗" },
	{ "ascii", "Taicang" },
	{ "mixed", "Kunshan 昆山市 ＡＢＣ" },
};
#define NNAMES (sizeof(names) / sizeof(names[0]))

/*
 * Each cell of every row starts at the same display column as the header's
 * cell above it, measured by the C library; right-aligned cells also end
 * at the same column.
 */
START_TEST(test_table_cjk_alignment)
{
	static const char *const head[] = { "code", "name", "value", "note" };
	char *buf = NULL, values[NNAMES][32];
	size_t len = 0, nlines = 0;
	int start[4] = { -1, -1, -1, -1 }, end2 = -1;
	struct out_table *t = out_table_new(4);
	FILE *f = open_memstream(&buf, &len);
	char *text, *line, *save = NULL;

	ck_assert_ptr_nonnull(setlocale(LC_CTYPE, "C.UTF-8"));
	t->right[2] = true;
	out_table_add(t, head, true);
	for (size_t i = 0; i < NNAMES; i++) {
		const char *cells[4];

		snprintf(values[i], sizeof(values[i]), "%zu.5", i * 1234);
		cells[0] = names[i][0];
		cells[1] = names[i][1];
		cells[2] = values[i];
		cells[3] = i % 2 ? "数据" : "x";
		out_table_add(t, cells, false);
	}
	ck_assert_uint_eq(out_table_rows(t), NNAMES);
	out_table_print(t, f);
	fclose(f);
	text = buf;
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save), nlines++) {
		const char *cells[4], *p = line;

		if (nlines == 1) { /* the rule under the header */
			ck_assert_uint_eq(strspn(line, "- "), strlen(line));
			continue;
		}
		if (nlines == 0) {
			for (size_t c = 0; c < 4; c++)
				cells[c] = head[c];
		} else {
			size_t i = nlines - 2;

			cells[0] = names[i][0];
			cells[1] = names[i][1];
			cells[2] = values[i];
			cells[3] = i % 2 ? "数据" : "x";
		}
		for (size_t c = 0; c < 4; c++) {
			const char *at = strstr(p, cells[c]);
			int col;

			ck_assert_msg(
			    at != NULL, "no '%s' in '%s'", cells[c], line);
			col = libc_width(line, (size_t)(at - line));
			if (c == 2) {
				int e = col +
					libc_width(cells[c], strlen(cells[c]));

				if (end2 == -1)
					end2 = e;
				ck_assert_msg(e == end2,
				    "'%s' ends at column %d, not %d: '%s'",
				    cells[c], e, end2, line);
			} else {
				if (start[c] == -1)
					start[c] = col;
				ck_assert_msg(col == start[c],
				    "'%s' starts at column %d, not %d: '%s'",
				    cells[c], col, start[c], line);
			}
			p = at + strlen(cells[c]);
		}
		ck_assert_msg(line[strlen(line) - 1] != ' ',
		    "trailing blank: '%s'", line);
	}
	ck_assert_uint_eq(nlines, NNAMES + 2);
	free(text);
	out_table_destroy(&t);
	ck_assert_ptr_null(t);
	out_table_destroy(&t);
}
END_TEST

/* out_width() agrees with the C library on the registry's names. */
START_TEST(test_width_matches_libc)
{
	ck_assert_ptr_nonnull(setlocale(LC_CTYPE, "C.UTF-8"));
	for (size_t i = 0; i < NNAMES; i++)
		ck_assert_int_eq((int)out_width(names[i][1]),
		    libc_width(names[i][1], strlen(names[i][1])));
	ck_assert_uint_eq(out_width(""), 0);
	ck_assert_uint_eq(out_width("e\xcc\x81"), 1); /* e + combining acute */
	ck_assert_uint_eq(out_width("\xff\xfe"), 2); /* not UTF-8: a column a
							byte */
}
END_TEST

/* A control character cannot break a table or reach the terminal. */
START_TEST(test_table_controls)
{
	static const char *const row[] = { "a\nb\033[2J", "c\td" };
	char *buf = NULL;
	size_t len = 0;
	struct out_table *t = out_table_new(2);
	FILE *f = open_memstream(&buf, &len);

	out_table_add(t, row, false);
	out_table_print(t, f);
	out_table_finish(t, f, "(none)");
	fclose(f);
	ck_assert_str_eq(buf, "a?b?[2J  c?d\na?b?[2J  c?d\n");
	free(buf);
	out_table_destroy(&t);

	/* C1 (the 8-bit CSI U+009B), the line separators and bytes that
	 * are not UTF-8 too; a Chinese name stays as it is. */
	t = out_table_new(2);
	buf = NULL;
	f = open_memstream(&buf, &len);
	out_table_add(t,
	    (const char *const[]){ "x\xc2\x9b"
				   "2Jy",
		"\xe2\x80\xa8z\xff" },
	    false);
	out_table_add(
	    t, (const char *const[]){ "昆山市", "\xc2\xa0ok" }, false);
	out_table_print(t, f);
	fclose(f);
	ck_assert_str_eq(buf, "x?2Jy   ?z?\n昆山市  \xc2\xa0ok\n");
	free(buf);
	out_table_destroy(&t);

	/* A line outside a table, the same way. */
	buf = NULL;
	f = open_memstream(&buf, &len);
	out_line(f, "verify: %s: %s", "agg/x\n<3>forged", "\033[2J\xc2\x85");
	fclose(f);
	ck_assert_str_eq(buf, "verify: agg/x?<3>forged: ?[2J?\n");
	free(buf);

	t = out_table_new(1);
	buf = NULL;
	f = open_memstream(&buf, &len);
	out_table_add(t, (const char *const[]){ "head" }, true);
	out_table_finish(t, f, "(none)");
	fclose(f);
	ck_assert_str_eq(buf, "(none)\n");
	free(buf);
	out_table_destroy(&t);
}
END_TEST

static const struct json_case {
	const char *in;
	const char *out;
} json_cases[] = {
	{ "", "\"\"" },
	{ "plain text", "\"plain text\"" },
	{ "say \"hi\"", "\"say \\\"hi\\\"\"" },
	{ "back\\slash", "\"back\\\\slash\"" },
	{ "/", "\"/\"" },
	{ "\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"" },
	{ "\x01\x1f", "\"\\u0001\\u001f\"" },
	{ "\x7f", "\"\\u007f\"" },
	{ "\033[2Jclear", "\"\\u001b[2Jclear\"" },
	{ "苏州工业园区", "\"苏州工业园区\"" },
	{ "\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"" }, /* U+1F600 */
	{ "\xe2\x80\xa8\xe2\x80\xa9", "\"\\u2028\\u2029\"" },
	{ "\xc2\x80\xc2\x9b\xc2\x9f\xc2\xa0",
	    "\"\\u0080\\u009b\\u009f\xc2\xa0\"" },
	{ "\xff", "\"\\ufffd\"" },
	{ "a\xe6\x98", "\"a\\ufffd\\ufffd\"" }, /* cut short at the end */
	{ "\xe6\x98z", "\"\\ufffd\\ufffdz\"" }, /* cut short in the middle */
	{ "\xc0\xaf", "\"\\ufffd\\ufffd\"" }, /* overlong '/' */
	{ "\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"" }, /* overlong */
	{ "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"" }, /* surrogate */
	{ "\xf4\x90\x80\x80",
	    "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" }, /* above U+10FFFF */
	{ "\x80", "\"\\ufffd\"" }, /* a lone continuation byte */
	{ "\xc3\xa9\xc3", "\"\xc3\xa9\\ufffd\"" },
};

START_TEST(test_json_escape)
{
	const struct json_case *c = &json_cases[_i];
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	out_json_string(f, c->in);
	fclose(f);
	ck_assert_msg(strcmp(buf, c->out) == 0, "case %d: got %s, want %s", _i,
	    buf, c->out);
	free(buf);
}
END_TEST

/* 64-bit integers are strings, 32-bit ones and doubles numbers; a missing
 * target is null. */
START_TEST(test_json_members)
{
	Indicator__Aggregate a = INDICATOR__AGGREGATE__INIT;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	bool first = true;

	fputc('{', f);
	out_json_u64(f, &first, "epoch", UINT64_MAX);
	out_json_i64(f, &first, "ms", -5);
	out_json_u32(f, &first, "year", 2030);
	out_json_count(f, &first, "checked", 7);
	out_json_double(f, &first, "v", 0.1);
	out_json_double(f, &first, "nan", NAN);
	out_json_bool(f, &first, "b", true);
	out_json_null(f, &first, "n");
	fputs("}\n", f);
	a.metric = "output_value";
	a.industry = "*";
	a.scope = "320583";
	a.period = "2025";
	a.value = 12.5;
	a.unit = "CNY_100M";
	a.districts_reporting = 1;
	a.districts_expected = 1;
	a.revision = 9007199254740993ULL; /* 2^53 + 1 */
	a.seq = 3;
	a.updated_at_ms = 1735787045000;
	out_json_aggregate(f, "update", "agg/output_value/*/320583/2025", &a);
	a.target = 5000;
	a.target_year = 2030;
	a.progress = 0.0025;
	out_json_aggregate(f, NULL, "agg/output_value/*/320583/2025", &a);
	fclose(f);
	ck_assert_str_eq(buf,
	    "{\"epoch\":\"18446744073709551615\",\"ms\":\"-5\",\"year\":2030,"
	    "\"checked\":7,\"v\":0.1,\"nan\":null,\"b\":true,\"n\":null}\n"
	    "{\"source\":\"update\",\"topic\":\"agg/output_value/*/320583/"
	    "2025\",\"metric\":\"output_value\",\"industry\":\"*\","
	    "\"scope\":\"320583\",\"period\":\"2025\",\"value\":12.5,"
	    "\"unit\":\"CNY_100M\",\"districts_reporting\":1,"
	    "\"districts_expected\":1,\"target\":null,\"target_year\":null,"
	    "\"progress\":null,\"revision\":\"9007199254740993\","
	    "\"seq\":\"3\",\"updated_at_ms\":\"1735787045000\"}\n"
	    "{\"topic\":\"agg/output_value/*/320583/2025\","
	    "\"metric\":\"output_value\",\"industry\":\"*\","
	    "\"scope\":\"320583\",\"period\":\"2025\",\"value\":12.5,"
	    "\"unit\":\"CNY_100M\",\"districts_reporting\":1,"
	    "\"districts_expected\":1,\"target\":5000,\"target_year\":2030,"
	    "\"progress\":0.0025,\"revision\":\"9007199254740993\","
	    "\"seq\":\"3\",\"updated_at_ms\":\"1735787045000\"}\n");
	free(buf);
}
END_TEST

/* What XML (xlsx) cannot carry becomes U+FFFD; the rest is kept. */
START_TEST(test_xml_clean)
{
	static const char *const cases[][2] = {
		{ "", "" },
		{ "昆山市 tab\tline\n", "昆山市 tab\tline\n" },
		{ "cr\r", "cr\xef\xbf\xbd" },
		{ "\x01\x1f", "\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\xff", "\xef\xbf\xbd" },
		{ "\xef\xbf\xbe", "\xef\xbf\xbd" }, /* U+FFFE */
		{ "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *c = out_xml_clean(cases[i][0]);

		ck_assert_msg(
		    strcmp(c, cases[i][1]) == 0, "case %zu: %s", i, c);
		free(c);
	}
}
END_TEST

static const struct num_case {
	double v;
	const char *out;
} num_cases[] = {
	{ 0, "0" },
	{ -0.0, "-0" },
	{ 1, "1" },
	{ 5000, "5000" },
	{ 2245.36, "2245.36" },
	{ 0.1, "0.1" },
	{ 0.1 + 0.2, "0.30000000000000004" },
	{ 1000.3000000000001, "1000.3000000000001" },
	{ 1.0 / 3, "0.3333333333333333" },
	{ 123456789012, "123456789012" },
	{ 9007199254740993.0, "9007199254740992" },
	{ 1e20, "100000000000000000000" },
	{ 1e21, "1e+21" },
	{ 1.5e21, "1.5e+21" },
	{ 1e-7, "0.0000001" },
	{ 1.5e-8, "1.5e-8" },
	{ -2.5e-8, "-2.5e-8" },
	{ 5e-324, "5e-324" },
	{ DBL_MAX, "1.7976931348623157e+308" },
	{ -12.34, "-12.34" },
	{ 0.0001, "0.0001" },
};

START_TEST(test_num_cases)
{
	const struct num_case *c = &num_cases[_i];
	char buf[OUT_NUM_MAX];

	out_num(c->v, buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, c->out) == 0, "case %d: got %s, want %s", _i,
	    buf, c->out);
	ck_assert(
	    memcmp(&(double){ strtod(buf, NULL) }, &c->v, sizeof(double)) == 0);
}
END_TEST

/* The number of significant digits out_num() wrote (leading and trailing
 * zeros are places, not digits). */
static int
sig_digits(const char *s)
{
	char d[OUT_NUM_MAX];
	int n = 0;

	for (; *s != '\0' && *s != 'e'; s++)
		if (*s >= '0' && *s <= '9' && (n > 0 || *s != '0'))
			d[n++] = *s;
	while (n > 1 && d[n - 1] == '0')
		n--;
	return n;
}

/*
 * 100,000 doubles from random bits (a fixed seed): each reads back
 * bit for bit, and no representation with fewer significant digits does.
 */
START_TEST(test_num_roundtrip)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	char buf[OUT_NUM_MAX], e[OUT_NUM_MAX];

	for (int i = 0; i < 100000; i++) {
		double v, back;
		int digits;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(&v, &x, sizeof(v));
		if (!isfinite(v))
			continue;
		out_num(v, buf, sizeof(buf));
		back = strtod(buf, NULL);
		ck_assert_msg(memcmp(&back, &v, sizeof(v)) == 0,
		    "%a written %s reads back %a", v, buf, back);
		digits = sig_digits(buf);
		if (digits > 1) {
			snprintf(e, sizeof(e), "%.*e", digits - 2, v);
			ck_assert_msg(strtod(e, NULL) != v,
			    "%s is not the shortest: %s reads back", buf, e);
		}
	}
	out_num(NAN, buf, sizeof(buf));
	ck_assert_str_eq(buf, "");
	out_num(-INFINITY, buf, sizeof(buf));
	ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(test_fixed_and_value)
{
	char buf[OUT_NUM_MAX];

	out_fixed(2245.356, 2, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2245.36");
	out_fixed(-0.001, 2, buf, sizeof(buf));
	ck_assert_str_eq(buf, "0.00");
	out_fixed(NAN, 2, buf, sizeof(buf));
	ck_assert_str_eq(buf, "?");
	out_value(12.34, buf, sizeof(buf));
	ck_assert_str_eq(buf, "12.34");
	out_value(10000, buf, sizeof(buf));
	ck_assert_str_eq(buf, "10000");
	out_value(0.00001, buf, sizeof(buf));
	ck_assert_str_eq(buf, "0");
	out_value(-0.00001, buf, sizeof(buf));
	ck_assert_str_eq(buf, "0");
}
END_TEST

/* Times in the configured zone, with its offset; an unknown zone is UTC. */
START_TEST(test_time_zone)
{
	char buf[OUT_TIME_MAX];
	struct tm tm;

	ck_assert_int_eq(out_tz_set("Asia/Shanghai"), 0);
	out_time(1735787045000, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2025-01-02T11:04:05+08:00");
	ck_assert(out_localtime(1735787045999, &tm));
	ck_assert_int_eq(tm.tm_hour, 11);
	out_time(0, buf, sizeof(buf));
	ck_assert_str_eq(buf, "-");
	ck_assert(!out_localtime(0, &tm));
	ck_assert_int_eq(out_tz_set("America/New_York"), 0);
	out_time(1735787045000, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2025-01-01T22:04:05-05:00");
	ck_assert_int_eq(out_tz_set("Mars/Olympus"), -1);
	out_time(1735787045000, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2025-01-02T03:04:05+00:00");
	ck_assert_int_eq(out_tz_set("../../etc/passwd"), -1);
}
END_TEST

static Suite *
out_suite(void)
{
	Suite *s = suite_create("out");
	TCase *tc = tcase_create("out");

	tcase_add_test(tc, test_table_cjk_alignment);
	tcase_add_test(tc, test_width_matches_libc);
	tcase_add_test(tc, test_table_controls);
	tcase_add_loop_test(tc, test_json_escape, 0,
	    sizeof(json_cases) / sizeof(json_cases[0]));
	tcase_add_test(tc, test_json_members);
	tcase_add_test(tc, test_xml_clean);
	tcase_add_loop_test(
	    tc, test_num_cases, 0, sizeof(num_cases) / sizeof(num_cases[0]));
	tcase_add_test(tc, test_num_roundtrip);
	tcase_add_test(tc, test_fixed_and_value);
	tcase_add_test(tc, test_time_zone);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(out_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
