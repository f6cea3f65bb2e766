/*
 * The district clerk's side, end to end with the real agent and daemon:
 * the files Excel and WPS write (UTF-8 with and without BOM, UTF-16 LE/BE
 * with BOM, GB18030 made here with iconv), with Chinese headers and names,
 * 1,234.5, Excel's empty rows and columns and every period form, stored
 * exactly as their UTF-8 original says; a key twice in one file refused
 * with both lines; the daemon's rejections told as FILE:LINE:COLUMN, in
 * Chinese under LANG=zh_CN.UTF-8 (the catalogue of the build, the locale
 * made with localedef into a temporary directory); a drop file whole in
 * done/ or, bad, in rejected/ with its .err; check, template and
 * dead-letters.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <iconv.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define RUN_TIMEOUT_S 90
#define WAIT_MS 60000
#define DISTRICT "320583"
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static struct daemon_proc dm;
static char *work;
/* The zh_CN.UTF-8 locale, built once for the suite: LOCPATH. */
static char *locpath;
static pid_t runner; /* an agent run in the background, or 0 */

/*
 * What a clerk's spreadsheet holds, as Excel writes it: an empty row
 * before the header, an empty column after it, Chinese headers and names,
 * codes in another case, numbers with thousands separators, every period
 * form, statuses, notes in Chinese (one with characters outside the BMP,
 * four bytes in GB18030), and empty rows between.
 */
static const char clerk_text[] =
    ",,,,,,,\r\n"
    "行业,指标,报告期,数值,单位,状态,备注,\r\n"
    "前沿新材料,总产值,2024年,\"1,234.5\",亿元,初步,昆山市 “光子” 备注,\r\n"
    "光子芯片与光器件,产值,2024年第三季度,\"12,345\",万元,正式,,\r\n"
    ",,,,,,,\r\n"
    "元宇宙,链主企业,2024-Q2,3,家,,,\r\n"
    "氢能,先导园区,2024/9,2,个,,,\r\n"
    "数字金融,创新平台,2024年3季度,1,项,修订,,\r\n"
    "细胞和基因诊疗,核心产品,2024年9月,7,个,,,\r\n"
    "空天开发,应用场景,2024-08,5,个,,,\r\n"
    "量子技术,总产值,2023,0.5,亿元,,𠀀 €,\r\n"
    " Materials ,OUTPUT_VALUE, 2022 ,\"1,000\",cny_10k,final,,\r\n"
    ",,,,,,,\r\n";

/* What the daemon must hold for it: the UTF-8 original, canonical. */
static const struct stored {
	const char *key; /* industry/metric/period */
	double value;
	const char *unit;
	double sent_value;
	const char *sent_unit;
	const char *status;
	const char *note;
} clerk_stored[] = {
	{ "materials/output_value/2024", 1234.5, "CNY_100M", 1234.5, "CNY_100M",
	    "provisional", "昆山市 “光子” 备注" },
	{ "photonics/output_value/2024-Q3", 12345.0 / 10000.0, "CNY_100M",
	    12345, "CNY_10K", "final", "" },
	{ "metaverse/chain_leaders/2024-Q2", 3, "count", 3, "count",
	    "unspecified", "" },
	{ "hydrogen/pilot_parks/2024-09", 2, "count", 2, "count", "unspecified",
	    "" },
	{ "digifin/innovation_platforms/2024-Q3", 1, "count", 1, "count",
	    "revised", "" },
	{ "cellgene/core_products/2024-09", 7, "count", 7, "count",
	    "unspecified", "" },
	{ "aerospace/app_scenarios/2024-08", 5, "count", 5, "count",
	    "unspecified", "" },
	{ "quantum/output_value/2023", 0.5, "CNY_100M", 0.5, "CNY_100M",
	    "unspecified", "𠀀 €" },
	{ "materials/output_value/2022", 1000.0 / 10000.0, "CNY_100M", 1000,
	    "CNY_10K", "final", "" },
};

/* The encodings a clerk's file comes in. */
static const struct {
	const char *name;
	const char *iconv;
	const char *bom;
	size_t bom_len;
} encodings[] = {
	{ "utf-8", "UTF-8", "", 0 },
	{ "utf-8-bom", "UTF-8", "\xef\xbb\xbf", 3 },
	{ "utf-16le", "UTF-16LE", "\xff\xfe", 2 },
	{ "utf-16be", "UTF-16BE", "\xfe\xff", 2 },
	{ "gb18030", "GB18030", "", 0 },
};

static void
work_path(char *buf, size_t len, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", work, name);

	ck_assert(n > 0 && (size_t)n < len);
}

/* text (UTF-8) written to path in encoding `to`, after bom. */
static void
write_encoded(const char *path, const char *to, const char *bom, size_t bom_len,
    const char *text)
{
	iconv_t cd = iconv_open(to, "UTF-8");
	size_t inleft = strlen(text), cap = inleft * 4 + 16, oleft = cap;
	char *buf = malloc(cap), *in = (char *)text, *o = buf;
	FILE *f;

	ck_assert_ptr_nonnull(buf);
	ck_assert_msg(cd != (iconv_t)-1, "iconv_open %s", to);
	ck_assert_msg(iconv(cd, &in, &inleft, &o, &oleft) != (size_t)-1,
	    "iconv to %s: %s", to, strerror(errno));
	iconv_close(cd);
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(bom, 1, bom_len, f), bom_len);
	ck_assert_uint_eq(
	    fwrite(buf, 1, (size_t)(o - buf), f), (size_t)(o - buf));
	ck_assert_int_eq(fclose(f), 0);
	free(buf);
}

/* A copy of text with the first `from` replaced by `to`. */
static char *
replace(const char *text, const char *from, const char *to)
{
	const char *p = strstr(text, from);
	size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
	char *s = malloc(n);

	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(s);
	snprintf(s, n, "%.*s%s%s", (int)(p - text), text, to, p + strlen(from));
	return s;
}

/* A copy of text with every `from` replaced by `to`. */
static char *
replace_all(const char *text, const char *from, const char *to)
{
	size_t nf = strlen(from), nt = strlen(to), n = 0;
	const char *p;
	char *s, *o;

	for (p = text; (p = strstr(p, from)) != NULL; p += nf)
		n++;
	s = malloc(strlen(text) + n * nt + 1);
	ck_assert_ptr_nonnull(s);
	for (o = s, p = text;;) {
		const char *q = strstr(p, from);

		if (q == NULL) {
			strcpy(o, p);
			break;
		}
		memcpy(o, p, (size_t)(q - p));
		o += q - p;
		memcpy(o, to, nt);
		o += nt;
		p = q + nf;
	}
	return s;
}

/* The zh_CN.UTF-8 locale, made with localedef in a directory of its own
 * (the host's locales are not touched). */
static void
suite_setup(void)
{
	char *dir = harness_tmpdir(), out[700];
	const char *argv[] = { "/usr/bin/localedef", "-i", "zh_CN", "-f",
		"UTF-8", out, NULL };
	char *err = NULL;
	int rc;

	snprintf(out, sizeof(out), "%s/zh_CN.UTF-8", dir);
	rc = harness_run(argv, NULL, &err, 120);
	/* localedef exits 1 for warnings with the locale written. */
	ck_assert_msg(rc == 0 || rc == 1, "localedef: %d: %s", rc, err);
	free(err);
	/* glibc 2.36's setlocale() loses the argz list it makes of LOCPATH:
	 * under LeakSanitizer (make test-asan) every program run with it
	 * would exit 1. Not the project's leak: suppressed. */
	snprintf(out, sizeof(out), "%s/lsan.supp", dir);
	harness_write_file(out, "leak:__argz_add_sep\n");
	locpath = dir;
}

static void
suite_teardown(void)
{
	if (locpath != NULL)
		harness_rmtree(locpath);
	free(locpath);
	locpath = NULL;
}

/* The agent's messages in Chinese, or in English (the source). */
static void
chinese(bool on)
{
	char supp[700];

	if (on) {
		snprintf(
		    supp, sizeof(supp), "suppressions=%s/lsan.supp", locpath);
		setenv("LOCPATH", locpath, 1);
		setenv("LANG", "zh_CN.UTF-8", 1);
		setenv("INDICATOR_LOCALEDIR", LOCALE_DIR, 1);
		setenv("LSAN_OPTIONS", supp, 1);
	} else {
		unsetenv("LOCPATH");
		setenv("LANG", "C", 1);
		unsetenv("INDICATOR_LOCALEDIR");
		unsetenv("LSAN_OPTIONS");
	}
	unsetenv("LC_ALL");
	unsetenv("LC_MESSAGES");
	unsetenv("LANGUAGE");
}

static void
setup(void)
{
	chinese(false);
	runner = 0;
	work = harness_tmpdir();
	harness_daemon_init(&dm, NULL);
	harness_daemon_start(&dm);
}

static void
teardown(void)
{
	int status;

	chinese(false);
	if (runner > 0) {
		kill(runner, SIGKILL);
		while (waitpid(runner, &status, 0) == -1 && errno == EINTR)
			;
		runner = 0;
	}
	if (dm.pid > 0) {
		status = harness_daemon_stop(&dm, SIGTERM);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "indicatord did not exit 0 on SIGTERM (status %d)", status);
	}
	harness_daemon_cleanup(&dm);
	harness_rmtree(work);
	free(work);
	work = NULL;
}

/* indicator-agent with the test's identity, daemon and outbox, then
 * args (NULL-ended); its exit code. */
static int
agent(const char *conf, const char *const args[], char **out, char **err)
{
	const char *argv[40];
	char outbox[700];
	size_t n = 0;

	work_path(outbox, sizeof(outbox), "outbox");
	argv[n++] = AGENT_BIN;
	if (conf != NULL) {
		argv[n++] = "-c";
		argv[n++] = conf;
	}
	argv[n++] = "--id";
	argv[n++] = "kunshan-01";
	argv[n++] = "--district";
	argv[n++] = DISTRICT;
	argv[n++] = "--endpoint";
	argv[n++] = dm.ingest;
	argv[n++] = "--outbox";
	argv[n++] = outbox;
	argv[n++] = "--timeout";
	argv[n++] = "60";
	for (size_t i = 0; args[i] != NULL; i++) {
		ck_assert_uint_lt(n, NELEM(argv) - 1);
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	return harness_run(argv, out, err, RUN_TIMEOUT_S);
}

/* One line of `indicatorctl query --json`. */
struct row {
	char key[200];
	char value[64], unit[32], sent_value[64], sent_unit[32];
	char status[32], note[600];
};

/* Every observation of the district, as indicatorctl reads them. */
static size_t
query(struct row *rows, size_t max)
{
	const char *args[] = { "query", "--district", DISTRICT, "--json",
		NULL };
	char *out = harness_ctl(dm.data_dir, args, 30), *line = out;
	size_t n = 0;

	harness_checkpoint(&dm);
	free(out);
	out = harness_ctl(dm.data_dir, args, 30);
	for (line = out; line != NULL && *line != '\0';) {
		char *nl = strchr(line, '\n'), ind[64], met[64], per[16];
		struct row *r = &rows[n];

		if (nl != NULL)
			*nl = '\0';
		if (*line != '\0') {
			ck_assert_uint_lt(n, max);
			ck_assert(harness_json_get(line, "industry", ind, 64));
			ck_assert(harness_json_get(line, "metric", met, 64));
			ck_assert(harness_json_get(line, "period", per, 16));
			snprintf(
			    r->key, sizeof(r->key), "%s/%s/%s", ind, met, per);
			ck_assert(harness_json_get(
			    line, "value", r->value, sizeof(r->value)));
			ck_assert(harness_json_get(
			    line, "unit", r->unit, sizeof(r->unit)));
			ck_assert(harness_json_get(line, "sent_value",
			    r->sent_value, sizeof(r->sent_value)));
			ck_assert(harness_json_get(line, "sent_unit",
			    r->sent_unit, sizeof(r->sent_unit)));
			ck_assert(harness_json_get(
			    line, "status", r->status, sizeof(r->status)));
			ck_assert(harness_json_get(
			    line, "note", r->note, sizeof(r->note)));
			n++;
		}
		line = nl != NULL ? nl + 1 : NULL;
	}
	free(out);
	return n;
}

/* The store holds exactly clerk_stored, each value equal to the UTF-8
 * original (the notes byte for byte). */
static void
expect_clerk_stored(void)
{
	struct row rows[32];
	size_t n = query(rows, NELEM(rows));

	ck_assert_msg(n == NELEM(clerk_stored), "%zu observations stored", n);
	for (size_t i = 0; i < NELEM(clerk_stored); i++) {
		const struct stored *w = &clerk_stored[i];
		const struct row *r = NULL;

		for (size_t j = 0; j < n; j++)
			if (strcmp(rows[j].key, w->key) == 0)
				r = &rows[j];
		ck_assert_msg(r != NULL, "%s is not stored", w->key);
		ck_assert_msg(strtod(r->value, NULL) == w->value,
		    "%s: value %s", w->key, r->value);
		ck_assert_str_eq(r->unit, w->unit);
		ck_assert_msg(strtod(r->sent_value, NULL) == w->sent_value,
		    "%s: sent value %s", w->key, r->sent_value);
		ck_assert_str_eq(r->sent_unit, w->sent_unit);
		ck_assert_str_eq(r->status, w->status);
		ck_assert_str_eq(r->note, w->note);
	}
}

/* Every encoding: sent whole, stored as the UTF-8 original says. */
START_TEST(test_encodings)
{
	char path[700], *out, *err;
	const char *args[] = { "send", path, NULL };
	int rc;

	work_path(path, sizeof(path), "kunshan.csv");
	write_encoded(path, encodings[_i].iconv, encodings[_i].bom,
	    encodings[_i].bom_len, clerk_text);
	rc = agent(NULL, args, &out, &err);
	ck_assert_msg(
	    rc == 0, "%s: send exited %d: %s", encodings[_i].name, rc, err);
	ck_assert_msg(strstr(err, "1 reports (9 observations) sent: 1 "
				  "accepted") != NULL,
	    "%s: %s", encodings[_i].name, err);
	free(out);
	free(err);
	expect_clerk_stored();
	printf("check_clerk: %s: 9 rows stored as the UTF-8 original\n",
	    encodings[_i].name);
}
END_TEST

/* A key twice in one file, in two reports: refused, both lines named,
 * nothing sent. */
START_TEST(test_key_twice)
{
	char path[700], conf[700], *out, *err;
	const char *args[] = { "send", path, NULL };
	struct row rows[4];

	work_path(path, sizeof(path), "twice.csv");
	work_path(conf, sizeof(conf), "agent.conf");
	harness_write_file(conf, "[agent]\nreport_size = 1\n");
	harness_write_file(path, "industry,metric,period,value,unit\n"
				 "materials,output_value,2024-09,1,CNY_100M\n"
				 "quantum,output_value,2024-09,2,CNY_100M\n"
				 "前沿新材料,总产值,2024年9月,3,亿元\n");
	ck_assert_int_eq(agent(conf, args, &out, &err), 1);
	ck_assert_msg(strstr(err, "twice.csv:4:1: "
				  "materials/output_value/2024-09 is also on "
				  "line 2; keep one of the two lines") != NULL,
	    "%s", err);
	ck_assert_msg(
	    strstr(err, "0 reports (0 observations) sent") != NULL, "%s", err);
	free(out);
	free(err);
	ck_assert_uint_eq(query(rows, NELEM(rows)), 0);
}
END_TEST

/* check says what the daemon would say, offline, at each line and
 * column; a file it passes is accepted whole. */
START_TEST(test_check)
{
	char good[700], bad[700], *out, *err;
	const char *args_good[] = { "check", good, NULL };
	const char *args_bad[] = { "check", bad, NULL };
	const char *args_send[] = { "send", good, NULL };
	static const char *const want[] = {
		"bad.csv:3:4: chain_leaders (链主企业) is a count, and 1.5 "
		"count (个) is not a whole number",
		"bad.csv:4:5: unit 'CNY_10K' is not one that pilot_parks "
		"(先导园区) takes; write one of: count (个)",
		"bad.csv:5:3: period 2999 has not begun yet",
		"bad.csv:6:4: value 99999 CNY_100M (亿元) is more than one "
		"district can have of output_value (总产值) (at most 40000 "
		"CNY_100M (亿元))",
		"bad.csv:7:1: industry 'nanotech' is not in the daemon's "
		"registry; write one of: materials (前沿新材料)",
		"bad.csv:8:3: period 2014 is before 2015",
		"bad.csv:9:4: value -1 is below zero",
		"bad.csv: problems found: 7;",
	};

	work_path(good, sizeof(good), "good.csv");
	work_path(bad, sizeof(bad), "bad.csv");
	write_encoded(good, "GB18030", "", 0, clerk_text);
	harness_write_file(bad, "行业,指标,报告期,数值,单位\n"
				"前沿新材料,总产值,2024,1,亿元\n"
				"量子技术,链主企业,2024,1.5,个\n"
				"氢能,先导园区,2024,2,万元\n"
				"氢能,总产值,2999,2,亿元\n"
				"元宇宙,总产值,2024,99999,亿元\n"
				"nanotech,总产值,2024,1,亿元\n"
				"空天开发,总产值,2014,1,亿元\n"
				"数字金融,总产值,2024,-1,亿元\n");
	ck_assert_int_eq(agent(NULL, args_good, &out, &err), 0);
	ck_assert_msg(strstr(out, "good.csv: 9 rows in 1 reports: the daemon "
				  "would accept them all") != NULL,
	    "%s", out);
	free(out);
	free(err);
	ck_assert_int_eq(agent(NULL, args_bad, &out, &err), 1);
	for (size_t i = 0; i < NELEM(want); i++)
		ck_assert_msg(strstr(out, want[i]) != NULL, "no '%s' in:\n%s",
		    want[i], out);
	ck_assert_uint_eq(harness_count_lines(out), NELEM(want));
	free(out);
	free(err);
	/* check opened no outbox and sent nothing; send takes what it
	 * passed. */
	ck_assert_int_eq(agent(NULL, args_send, &out, &err), 0);
	free(out);
	free(err);
	expect_clerk_stored();
}
END_TEST

/* A template, filled in as a clerk would, goes in whole: one row per
 * industry and metric, in UTF-8 with a BOM or in GB18030. */
START_TEST(test_template)
{
	static const char *const encs[] = { "utf-8-bom", "gb18030" };
	const char *args[] = { "template", "--period", "2024-Q3", "--encoding",
		encs[_i], NULL };
	char path[700], *out, *err, *filled, *p;
	const char *send[] = { "send", path, NULL };
	struct row rows[64];
	size_t n, len;

	iconv_t cd;

	ck_assert_int_eq(agent(NULL, args, &out, &err), 0);
	free(err);
	/* The bytes as Excel opens them: the BOM, or GB18030. */
	len = strlen(out);
	if (_i == 0) {
		ck_assert(strncmp(out, "\xef\xbb\xbf", 3) == 0);
		filled = strdup(out + 3);
	} else {
		char *in = out, *o;
		size_t inleft = len, oleft = len * 2 + 1;

		ck_assert(strncmp(out, "\xef\xbb\xbf", 3) != 0);
		filled = calloc(1, oleft + 1);
		o = filled;
		cd = iconv_open("UTF-8", "GB18030");
		ck_assert(iconv(cd, &in, &inleft, &o, &oleft) != (size_t)-1);
		iconv_close(cd);
	}
	ck_assert_msg(strncmp(filled,
			  "行业,指标,报告期,数值,单位,状态,备注\r\n"
			  "前沿新材料,总产值,2024年第三季度,,亿元,,\r\n",
			  strlen("行业,指标,报告期,数值,单位,状态,备注\r\n"
				 "前沿新材料,总产值,2024年第三季度,,亿元,,"
				 "\r\n")) == 0,
	    "%s", filled);
	ck_assert_uint_eq(harness_count_lines(filled), 1 + 8 * 6);
	/* The clerk writes 7 in every value cell. */
	p = replace_all(filled, "季度,,", "季度,7,");
	free(filled);
	filled = p;
	free(out);
	work_path(path, sizeof(path), "filled.csv");
	write_encoded(path, _i == 0 ? "UTF-8" : "GB18030",
	    _i == 0 ? "\xef\xbb\xbf" : "", _i == 0 ? 3 : 0, filled);
	free(filled);
	ck_assert_int_eq(agent(NULL, send, &out, &err), 0);
	ck_assert_msg(strstr(err, "(48 observations) sent") != NULL, "%s", err);
	free(out);
	free(err);
	n = query(rows, NELEM(rows));
	ck_assert_uint_eq(n, 48);
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(
		    strstr(rows[i].key, "/2024-Q3") != NULL, "%s", rows[i].key);
		ck_assert_str_eq(rows[i].sent_value, "7");
	}
}
END_TEST

/* The daemon's rejection, told at the file's line and column, in
 * Chinese; kept as a dead letter that dead-letters shows and purges. */
START_TEST(test_dead_letters)
{
	char path[700], *out, *err;
	const char *send[] = { "send", path, NULL };
	const char *list[] = { "dead-letters", NULL };
	const char *purge[] = { "dead-letters", "--purge", NULL };
	int rc;
	const char *want =
	    "nano.csv:3:1: 行业“nanotech”不在守护进程的登记表中；"
	    "请填写以下之一：materials (前沿新材料)";

	work_path(path, sizeof(path), "nano.csv");
	write_encoded(path, "GB18030", "", 0,
	    "行业,指标,报告期,数值,单位\r\n"
	    "前沿新材料,总产值,2024,1,亿元\r\n"
	    "nanotech,总产值,2024,1,亿元\r\n");
	chinese(true);
	ck_assert_int_eq(agent(NULL, send, &out, &err), 1);
	ck_assert_msg(strstr(err, want) != NULL, "%s", err);
	ck_assert_msg(
	    strstr(err, "守护进程拒收报告 seq 1（第 2 至 3 行）") != NULL, "%s",
	    err);
	ck_assert_msg(strstr(err, "已发送 1 份报告（2 条数据）：接受 0，重复 "
				  "0，拒收 1") != NULL,
	    "%s", err);
	free(out);
	free(err);
	rc = agent(NULL, list, &out, &err);
	ck_assert_msg(rc == 0, "dead-letters: %d: %s", rc, err);
	ck_assert_msg(strstr(out, "被拒收的报告 seq 1：") != NULL &&
			  strstr(out, want) != NULL &&
			  strstr(out, "中有 1 份被拒收的报告") != NULL,
	    "%s", out);
	free(out);
	free(err);
	ck_assert_int_eq(agent(NULL, purge, &out, &err), 0);
	ck_assert_msg(strstr(out, "删除 1 份被拒收的报告") != NULL, "%s", out);
	free(out);
	free(err);
	chinese(false);
	ck_assert_int_eq(agent(NULL, list, &out, &err), 0);
	ck_assert_msg(strstr(out, "0 dead letters in") != NULL, "%s", out);
	free(out);
	free(err);
}
END_TEST

/* indicatorctl's table headers follow the locale; JSON does not. */
START_TEST(test_ctl_chinese)
{
	const char *args[] = { "agents", NULL };
	char path[700], *out, *err;
	const char *send[] = { "send", path, NULL };

	work_path(path, sizeof(path), "k.csv");
	write_encoded(path, "UTF-8", "", 0, clerk_text);
	ck_assert_int_eq(agent(NULL, send, &out, &err), 0);
	free(out);
	free(err);
	chinese(true);
	out = harness_ctl(dm.data_dir, args, 30);
	ck_assert_msg(strstr(out, "代理") != NULL &&
			  strstr(out, "最后序号") != NULL &&
			  strstr(out, "kunshan-01") != NULL,
	    "%s", out);
	free(out);
}
END_TEST

static bool
exists(const char *dir, const char *name)
{
	char path[1400];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &sb) == 0;
}

static void
wait_exists(const char *dir, const char *name)
{
	int64_t end = harness_now_ms() + WAIT_MS;

	while (!exists(dir, name)) {
		ck_assert_msg(harness_now_ms() < end, "no %s/%s", dir, name);
		harness_sleep_ms(50);
	}
}

/* Drops text as name: written under a hidden name, then renamed. */
static void
drop(const char *dropdir, const char *name, const char *text)
{
	char tmp[1400], path[1400];

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dropdir, name);
	snprintf(path, sizeof(path), "%s/%s", dropdir, name);
	write_encoded(tmp, "GB18030", "", 0, text);
	ck_assert_int_eq(rename(tmp, path), 0);
}

/*
 * The drop directory under a Chinese locale, with GBK files cut into
 * reports of two rows (five reports each): a good one is stored whole and
 * goes to done/; the same file with one value a clerk mistyped goes to
 * rejected/ with FILE:LINE:COLUMN in Chinese, nothing of it stored; the
 * same with a changed value in its first report and a value the daemon
 * refuses in its fourth goes from sending/ to rejected/ (never done/)
 * with the daemon's reason at its line and column, and nothing of it is
 * stored: not even the first report, which the daemon had staged
 * (docs/protocol.md, "File transactions").
 */
START_TEST(test_drop_gbk)
{
	char dropdir[700], outbox[700], log[700], done[800], rej[800];
	char errpath[900], conf[700], *text, *bad, *late, *changed;
	const char *argv[] = { AGENT_BIN, "-c", conf, "--id", "kunshan-01",
		"--district", DISTRICT, "--endpoint", dm.ingest, "--outbox",
		outbox, "--drop", dropdir, "run", NULL };

	work_path(dropdir, sizeof(dropdir), "drop");
	work_path(outbox, sizeof(outbox), "outbox");
	work_path(log, sizeof(log), "agent.log");
	work_path(conf, sizeof(conf), "drop-agent.conf");
	harness_write_file(conf, "[agent]\nreport_size = 2\n");
	snprintf(done, sizeof(done), "%s/done", dropdir);
	snprintf(rej, sizeof(rej), "%s/rejected", dropdir);
	ck_assert_int_eq(mkdir(dropdir, 0700), 0);
	chinese(true);
	runner = harness_spawn(argv, log);
	chinese(false);
	harness_wait_log(log, "running", WAIT_MS);

	drop(dropdir, "kunshan-2024.csv", clerk_text);
	wait_exists(done, "kunshan-2024.csv");
	expect_clerk_stored();

	/* A mistyped value: refused by the agent, in Chinese. */
	bad = replace(clerk_text, "\"12,345\"", "12.3.5");
	drop(dropdir, "typo.csv", bad);
	wait_exists(rej, "typo.csv.err");
	ck_assert(exists(rej, "typo.csv"));
	snprintf(errpath, sizeof(errpath), "%s/typo.csv.err", rej);
	text = harness_read_file(errpath);
	ck_assert_msg(
	    strstr(text, "typo.csv:4:4: 数值“12.3.5”不是数字；") != NULL, "%s",
	    text);
	ck_assert_msg(strstr(text, "typo.csv：已拒收") != NULL, "%s", text);
	free(text);
	free(bad);
	expect_clerk_stored();

	/* A value the daemon refuses in the 4th report, a changed one in
	 * the 1st: the file goes from sending/ to rejected/, and nothing of
	 * it is stored. */
	changed = replace(clerk_text, "\"12,345\"", "\"12,346\"");
	late = replace(changed, ",0.5,", ",99999,");
	drop(dropdir, "late.csv", late);
	wait_exists(rej, "late.csv.err");
	ck_assert(exists(rej, "late.csv"));
	ck_assert(!exists(done, "late.csv"));
	snprintf(errpath, sizeof(errpath), "%s/late.csv.err", rej);
	text = harness_read_file(errpath);
	ck_assert_msg(strstr(text, "late.csv:11:4: 数值 99999 CNY_100M (亿元) "
				   "超过一个区县 output_value (总产值) "
				   "可能达到的上限") != NULL,
	    "%s", text);
	ck_assert_msg(
	    strstr(text, "late.csv：守护进程在第 4 部分（共 5 "
			 "部分，报告 seq 9，第 10 至 11 "
			 "行）拒收了该文件：该文件的数据均未入库") != NULL,
	    "%s", text);
	free(text);
	free(late);
	free(changed);
	expect_clerk_stored();
	printf("check_clerk: drop: a GBK file of 5 reports stored whole, a "
	       "mistyped one and one the daemon refused at its 4th report in "
	       "rejected/ with Chinese reasons, nothing of either stored\n");
}
END_TEST

static Suite *
clerk_suite(void)
{
	Suite *s = suite_create("clerk");
	TCase *tc = tcase_create("clerk");

	tcase_set_timeout(tc, 240);
	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_encodings, 0, NELEM(encodings));
	tcase_add_test(tc, test_key_twice);
	tcase_add_test(tc, test_check);
	tcase_add_loop_test(tc, test_template, 0, 2);
	tcase_add_test(tc, test_dead_letters);
	tcase_add_test(tc, test_ctl_chinese);
	tcase_add_test(tc, test_drop_gbk);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(clerk_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
