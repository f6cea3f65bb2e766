/*
 * The log module (log/log.h): escaping, sd-daemon priorities when stderr is
 * the journal (a $JOURNAL_STREAM naming the file stderr is redirected to),
 * timestamps and level words otherwise, JSON lines checked with a JSON
 * parser (jansson), the level filter, the rate limiter. Then the real
 * daemon: its warnings reach a journal stream as <4>, and a hostile agent
 * id cannot forge a line in any format.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"
#include "log.h"
#include "xmalloc.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define WAIT_MS 60000

/* An ISO 8601 local time with milliseconds and the offset. */
#define TIME_RE                                                            \
	"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}" \
	"[+-][0-9]{2}:[0-9]{2}"

/* A hostile agent id: a newline and a priority prefix to forge a line of
 * its own, a quote and a backslash for JSON, a terminal escape. */
#define EVIL_ID "evil\n<3>forged: \"q\" \\ \x1b[2J"
/* How it reads in a line once escaped. */
#define EVIL_ID_ESCAPED "evil\\n<3>forged: \"q\" \\\\ \\x1b[2J"

/*
 * stderr redirected to a file for one test. With journal, $JOURNAL_STREAM
 * names that file, as systemd names its stream socket; without, it names
 * another file (or is unset), so the log must not take stderr for the
 * journal.
 */
struct capture {
	char *dir;
	char path[600];
	int saved;
};

static void
capture_start(struct capture *c, bool journal, bool env_set)
{
	struct stat sb;
	char val[64];
	int fd;

	c->dir = harness_tmpdir();
	snprintf(c->path, sizeof(c->path), "%s/stderr", c->dir);
	fd = open(c->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_msg(fd != -1, "open %s: %s", c->path, strerror(errno));
	fflush(stderr);
	c->saved = dup(STDERR_FILENO);
	ck_assert_int_ne(c->saved, -1);
	ck_assert_int_ne(dup2(fd, STDERR_FILENO), -1);
	close(fd);
	/* The other file: the directory itself. */
	ck_assert_int_eq(stat(journal ? c->path : c->dir, &sb), 0);
	snprintf(val, sizeof(val), "%llu:%llu", (unsigned long long)sb.st_dev,
	    (unsigned long long)sb.st_ino);
	if (env_set)
		setenv("JOURNAL_STREAM", val, 1);
	else
		unsetenv("JOURNAL_STREAM");
}

/* Restores stderr; returns what was written (caller frees). */
static char *
capture_end(struct capture *c)
{
	char *text;

	ck_assert_int_ne(dup2(c->saved, STDERR_FILENO), -1);
	close(c->saved);
	unsetenv("JOURNAL_STREAM");
	text = harness_read_file(c->path);
	ck_assert_ptr_nonnull(text);
	harness_rmtree(c->dir);
	free(c->dir);
	return text;
}

static bool
matches(const char *text, const char *re)
{
	regex_t r;
	int rc;

	ck_assert_int_eq(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
	rc = regexec(&r, text, 0, NULL, 0);
	regfree(&r);
	return rc == 0;
}

/* Every line of text matches re (anchored by the caller). */
static void
assert_each_line(const char *text, const char *re)
{
	char *copy = xstrdup(text), *save = NULL;

	for (char *line = strtok_r(copy, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save))
		ck_assert_msg(
		    matches(line, re), "line '%s' does not match %s", line, re);
	free(copy);
}

/* Sets TZ (NULL: unset) and returns the old value (caller frees). */
static char *
tz_set(const char *tz)
{
	const char *old = getenv("TZ");
	char *saved = old != NULL ? xstrdup(old) : NULL;

	if (tz != NULL)
		setenv("TZ", tz, 1);
	else
		unsetenv("TZ");
	tzset();
	return saved;
}

static void
tz_restore(char *saved)
{
	free(tz_set(saved));
	free(saved);
}

/* log_init() with the level and format a test wants. */
static void
log_setup(
    enum log_style style, enum config_log level, enum config_log_format format)
{
	log_init("check_log", style);
	log_set_level(level);
	log_set_format(format);
}

static const struct escape_case {
	const char *name;
	const char *in;
	size_t len;
	const char *out;
} escape_cases[] = {
	{ "plain", "ingest: ok", 10, "ingest: ok" },
	{ "newline", "a\nb", 3, "a\\nb" },
	{ "cr tab", "\r\t", 2, "\\r\\t" },
	{ "escape sequence", "\x1b[31mred", 8, "\\x1b[31mred" },
	{ "del", "\x7f", 1, "\\x7f" },
	{ "backslash", "back\\slash", 10, "back\\\\slash" },
	{ "nul inside", "nul\0after", 9, "nul\\x00after" },
	{ "chinese", "苏州工业园区", 18, "苏州工业园区" },
	{ "nbsp is printable", "\xc2\xa0", 2, "\xc2\xa0" },
	{ "c1 next line", "a\xc2\x85z", 4, "a\\xc2\\x85z" },
	{ "c1 csi", "\xc2\x9b", 2, "\\xc2\\x9b" },
	{ "line separator", "\xe2\x80\xa8", 3, "\\xe2\\x80\\xa8" },
	{ "paragraph separator", "\xe2\x80\xa9", 3, "\\xe2\\x80\\xa9" },
	{ "bad byte", "\xff", 1, "\\xff" },
	{ "truncated sequence", "\xe8\x8b", 2, "\\xe8\\x8b" },
	{ "truncated then ascii", "\xe8\x8bz", 3, "\\xe8\\x8bz" },
	{ "overlong slash", "\xc0\xaf", 2, "\\xc0\\xaf" },
	{ "surrogate", "\xed\xa0\x80", 3, "\\xed\\xa0\\x80" },
	{ "above U+10FFFF", "\xf4\x90\x80\x80", 4, "\\xf4\\x90\\x80\\x80" },
	{ "good then bad", "苏\xff", 4, "苏\\xff" },
	{ "four-byte", "\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80" },
};

START_TEST(test_escape)
{
	const struct escape_case *c = &escape_cases[_i];
	char out[256];
	size_t n, used;

	used = log_escape(out, sizeof(out), c->in, c->len, &n);
	ck_assert_msg(strcmp(out, c->out) == 0, "%s: got '%s', want '%s'",
	    c->name, out, c->out);
	ck_assert_uint_eq(used, c->len);
	ck_assert_uint_eq(n, strlen(c->out));
}
END_TEST

/* A short buffer holds whole characters and whole escapes only. */
START_TEST(test_escape_short)
{
	static const struct {
		const char *in;
		size_t size;
		const char *out;
		size_t used;
	} cases[] = {
		{ "abc\n", 5, "abc", 3 },
		{ "abc\n", 6, "abc\\n", 4 },
		{ "ab\x1b", 6, "ab", 2 },
		{ "ab\x1b", 7, "ab\\x1b", 3 },
		{ "a苏", 4, "a", 1 },
		{ "a苏", 5, "a苏", 4 },
		{ "x", 1, "", 0 },
	};
	char out[16];
	size_t n;

	for (size_t i = 0; i < NELEM(cases); i++) {
		memset(out, '#', sizeof(out));
		ck_assert_uint_eq(log_escape(out, cases[i].size, cases[i].in,
				      strlen(cases[i].in), &n),
		    cases[i].used);
		ck_assert_str_eq(out, cases[i].out);
		ck_assert_uint_eq(n, strlen(cases[i].out));
	}
	ck_assert_uint_eq(log_escape(out, 0, "x", 1, &n), 0);
	ck_assert_uint_eq(n, 0);
}
END_TEST

/* On the journal: the sd-daemon(3) prefix, no time, no level word. */
START_TEST(test_journal_priorities)
{
	struct capture c;
	char *text;

	capture_start(&c, true, true);
	log_setup(LOG_STYLE_SERVICE, CONFIG_LOG_DEBUG, CONFIG_LOG_PLAIN);
	ck_assert(log_journal());
	log_error("store: e %d", 3);
	log_warn("ingest: w");
	log_info("indicatord: i");
	log_debug("agent: d");
	text = capture_end(&c);
	ck_assert_str_eq(text, "<3>store: e 3\n<4>ingest: w\n"
			       "<6>indicatord: i\n<7>agent: d\n");
	free(text);
}
END_TEST

/* The level filter: a message above it is not written, anywhere. */
START_TEST(test_level_filter)
{
	static const struct {
		enum config_log level;
		const char *want;
	} cases[] = {
		{ CONFIG_LOG_ERROR, "<3>store: e\n" },
		{ CONFIG_LOG_WARNING, "<3>store: e\n<4>ingest: w\n" },
		{ CONFIG_LOG_INFO, "<3>store: e\n<4>ingest: w\n<6>x: i\n" },
	};
	struct capture c;
	char *text;

	for (size_t i = 0; i < NELEM(cases); i++) {
		capture_start(&c, true, true);
		log_setup(LOG_STYLE_SERVICE, cases[i].level, CONFIG_LOG_PLAIN);
		ck_assert(!log_enabled(cases[i].level + 1));
		ck_assert(log_enabled(cases[i].level));
		log_error("store: e");
		log_warn("ingest: w");
		log_info("x: i");
		log_debug("x: d");
		text = capture_end(&c);
		ck_assert_str_eq(text, cases[i].want);
		free(text);
	}
}
END_TEST

/* fatal(): priority 2, whatever the level, and exit status 1. */
START_TEST(test_fatal)
{
	struct capture c;
	char *text;
	int status;
	pid_t pid;

	capture_start(&c, true, true);
	log_setup(LOG_STYLE_SERVICE, CONFIG_LOG_ERROR, CONFIG_LOG_PLAIN);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0)
		fatal("indicatord: cannot go on: %s", "reason");
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	text = capture_end(&c);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	ck_assert_str_eq(text, "<2>indicatord: cannot go on: reason\n");
	free(text);
}
END_TEST

/*
 * Off the journal (JOURNAL_STREAM naming another file, or unset): each
 * line starts with the local time and the level word; times follow TZ.
 */
START_TEST(test_plain_times)
{
	static const struct {
		const char *tz;
		const char *offset;
		bool env_set;
	} cases[] = {
		{ "Asia/Shanghai", "\\+08:00", true },
		{ "UTC", "\\+00:00", false },
		{ "America/Sao_Paulo", "-03:00", true },
	};
	struct capture c;
	char re[512], *text, *tz;

	for (size_t i = 0; i < NELEM(cases); i++) {
		tz = tz_set(cases[i].tz);
		capture_start(&c, false, cases[i].env_set);
		log_setup(
		    LOG_STYLE_SERVICE, CONFIG_LOG_DEBUG, CONFIG_LOG_PLAIN);
		ck_assert(!log_journal());
		log_error("store: e");
		log_warn("ingest: w");
		log_info("indicatord: i");
		log_debug("agent: d");
		text = capture_end(&c);
		tz_restore(tz);
		ck_assert_uint_eq(harness_count_newlines(text), 4);
		snprintf(re, sizeof(re),
		    "^[0-9T:.-]{23}%s error store: e\n"
		    "[0-9T:.-]{23}%s warning ingest: w\n"
		    "[0-9T:.-]{23}%s info indicatord: i\n"
		    "[0-9T:.-]{23}%s debug agent: d\n$",
		    cases[i].offset, cases[i].offset, cases[i].offset,
		    cases[i].offset);
		ck_assert_msg(matches(text, re), "%s: %s", cases[i].tz, text);
		assert_each_line(text, "^" TIME_RE " [a-z]+ [a-z]+: [a-z]$");
		free(text);
	}
}
END_TEST

/* A $JOURNAL_STREAM that does not parse is not the journal. */
START_TEST(test_journal_stream_garbage)
{
	static const char *const values[] = { "", "abc", "1", "1:", ":2",
		"1:2x", "-1:2" };
	struct capture c;
	char *text;

	for (size_t i = 0; i < NELEM(values); i++) {
		capture_start(&c, false, false);
		setenv("JOURNAL_STREAM", values[i], 1);
		log_setup(LOG_STYLE_TOOL, CONFIG_LOG_INFO, CONFIG_LOG_PLAIN);
		ck_assert_msg(!log_journal(), "'%s'", values[i]);
		log_warn("x: w");
		text = capture_end(&c);
		ck_assert_str_eq(text, "x: w\n");
		free(text);
	}
}
END_TEST

/* A tool's lines: "module: message", with the prefix on the journal. */
START_TEST(test_tool_style)
{
	struct capture c;
	char *text;

	capture_start(&c, false, true);
	log_setup(LOG_STYLE_TOOL, CONFIG_LOG_INFO, CONFIG_LOG_PLAIN);
	log_error("indicatorctl: no store at %s", "/x");
	log_info("store: %s", "a\nb");
	text = capture_end(&c);
	ck_assert_str_eq(text, "indicatorctl: no store at /x\nstore: a\\nb\n");
	free(text);

	capture_start(&c, true, true);
	log_setup(LOG_STYLE_TOOL, CONFIG_LOG_INFO, CONFIG_LOG_PLAIN);
	log_error("indicatorctl: no store");
	text = capture_end(&c);
	ck_assert_str_eq(text, "<3>indicatorctl: no store\n");
	free(text);
}
END_TEST

/* One JSON line as a JSON parser reads it: exactly time, level, module
 * and message, all strings. Returns the object (caller decrefs). */
static json_t *
json_line(const char *line)
{
	json_error_t jerr;
	json_t *o, *v;
	const char *key;

	o = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
	ck_assert_msg(o != NULL, "'%s' is not JSON: %s", line, jerr.text);
	ck_assert(json_is_object(o));
	ck_assert_uint_eq(json_object_size(o), 4);
	json_object_foreach(o, key, v)
	{
		ck_assert_msg(strcmp(key, "time") == 0 ||
				  strcmp(key, "level") == 0 ||
				  strcmp(key, "module") == 0 ||
				  strcmp(key, "message") == 0,
		    "unexpected key %s", key);
		ck_assert(json_is_string(v));
	}
	ck_assert_msg(matches(json_string_value(json_object_get(o, "time")),
			  "^" TIME_RE "$"),
	    "time in %s", line);
	return o;
}

static void
assert_json(
    json_t *o, const char *level, const char *module, const char *message)
{
	ck_assert_str_eq(json_string_value(json_object_get(o, "level")), level);
	ck_assert_str_eq(
	    json_string_value(json_object_get(o, "module")), module);
	ck_assert_str_eq(
	    json_string_value(json_object_get(o, "message")), message);
}

START_TEST(test_json)
{
	struct capture c;
	char *text, *copy, *save = NULL, *line;
	json_t *o;

	capture_start(&c, false, true);
	log_setup(LOG_STYLE_SERVICE, CONFIG_LOG_INFO, CONFIG_LOG_JSON);
	log_warn("ingest: rejected report agent=%s", EVIL_ID);
	log_info("no module here");
	log_error("store: 苏州 %s", "map\xff");
	log_debug("agent: not written");
	text = capture_end(&c);
	ck_assert_uint_eq(harness_count_newlines(text), 3);

	copy = xstrdup(text);
	line = strtok_r(copy, "\n", &save);
	o = json_line(line);
	assert_json(
	    o, "warning", "ingest", "rejected report agent=" EVIL_ID_ESCAPED);
	json_decref(o);
	o = json_line(strtok_r(NULL, "\n", &save));
	assert_json(o, "info", "check_log", "no module here");
	json_decref(o);
	o = json_line(strtok_r(NULL, "\n", &save));
	assert_json(o, "error", "store", "苏州 map\\xff");
	json_decref(o);
	free(copy);
	free(text);

	/* On the journal: the prefix, then the object. */
	capture_start(&c, true, true);
	log_setup(LOG_STYLE_SERVICE, CONFIG_LOG_INFO, CONFIG_LOG_JSON);
	log_warn("ingest: w");
	text = capture_end(&c);
	ck_assert_msg(strncmp(text, "<4>{", 4) == 0, "%s", text);
	text[strlen(text) - 1] = '\0';
	o = json_line(text + 3);
	assert_json(o, "warning", "ingest", "w");
	json_decref(o);
	free(text);
}
END_TEST

/* Whatever the message, one call is one line, and a long one is cut with
 * "..." rather than split. */
START_TEST(test_one_line)
{
	char *big = xmalloc(10001), *text;
	struct capture c;

	memset(big, 'z', 10000);
	big[10000] = '\0';
	for (size_t i = 0; i < 10000; i += 100)
		big[i] = '\n';
	capture_start(&c, false, true);
	log_setup(LOG_STYLE_TOOL, CONFIG_LOG_INFO, CONFIG_LOG_PLAIN);
	log_info("x: %s", big);
	log_info("x: a\n\n\r\nb");
	log_set_format(CONFIG_LOG_JSON);
	log_info("x: %s", big);
	text = capture_end(&c);
	ck_assert_uint_eq(harness_count_newlines(text), 3);
	ck_assert_msg(
	    strstr(text, "...\nx: a\\n\\n\\r\\nb\n{") != NULL, "%.80s", text);
	ck_assert_msg(strstr(text, "...\"}\n") != NULL, "no cut JSON line");
	ck_assert_uint_lt(strlen(text), 3 * 2 * LOG_MESSAGE_MAX);
	free(text);
	free(big);
}
END_TEST

/* Logging never changes errno, so a caller can log before using it. */
START_TEST(test_errno_kept)
{
	struct capture c;

	capture_start(&c, false, true);
	log_setup(LOG_STYLE_SERVICE, CONFIG_LOG_INFO, CONFIG_LOG_JSON);
	errno = ENOSPC;
	log_info("x: i");
	ck_assert_int_eq(errno, ENOSPC);
	log_debug("x: filtered");
	ck_assert_int_eq(errno, ENOSPC);
	free(capture_end(&c));
}
END_TEST

/* The rate limiter: burst lines a second, then a count of the others,
 * reported with the next line that passes. */
START_TEST(test_limit)
{
	struct log_limit l = { 0, 0, 0 };
	unsigned long suppressed = 99;

	for (int i = 0; i < 3; i++) {
		ck_assert(log_limit_pass(&l, 3, &suppressed));
		ck_assert_uint_eq(suppressed, 0);
	}
	ck_assert(!log_limit_pass(&l, 3, &suppressed));
	ck_assert(!log_limit_pass(&l, 3, &suppressed));
	/* A second later (moved back rather than waited for). */
	l.window_ms -= 1000;
	ck_assert(log_limit_pass(&l, 3, &suppressed));
	ck_assert_uint_eq(suppressed, 2);
	ck_assert(log_limit_pass(&l, 3, &suppressed));
	ck_assert_uint_eq(suppressed, 0);
}
END_TEST

/* A report from EVIL_ID for a district the registry lacks: rejected,
 * and logged. */
static void
send_evil(const struct daemon_proc *dm)
{
	struct harness_report r = { EVIL_ID, "999999", 1, 1, "materials", 1 };
	void *zctx = zmq_ctx_new(), *sock;

	sock = harness_client_new(zctx, dm->ingest);
	harness_expect_ack(harness_report_one(sock, &r, WAIT_MS),
	    INDICATOR__ACK_STATUS__REJECTED, NULL);
	zmq_close(sock);
	zmq_ctx_term(zctx);
	harness_wait_log(dm->log, "rejected report", WAIT_MS);
}

/*
 * The real daemon with its stderr on a "journal": $JOURNAL_STREAM names
 * its log file, as systemd names the stream it connects StandardError= to.
 * Its warnings are <4> (journalctl -p warning shows them), every line has
 * a priority and no time, and the hostile id stays inside its line.
 */
START_TEST(test_daemon_journal)
{
	struct daemon_proc dm;
	struct stat sb;
	char val[64], *log;

	harness_daemon_init(&dm, "sync = nometasync\n");
	harness_write_file(dm.log, "");
	ck_assert_int_eq(stat(dm.log, &sb), 0);
	snprintf(val, sizeof(val), "%llu:%llu", (unsigned long long)sb.st_dev,
	    (unsigned long long)sb.st_ino);
	setenv("JOURNAL_STREAM", val, 1);
	harness_daemon_start(&dm);
	unsetenv("JOURNAL_STREAM");
	send_evil(&dm);
	ck_assert_int_eq(harness_daemon_stop(&dm, SIGTERM), 0);

	log = harness_daemon_log(&dm);
	assert_each_line(log, "^<[2-7]>[a-z]+: ");
	ck_assert_msg(
	    matches(log, "(^|\n)<4>indicatord: sync is not full"), "%s", log);
	ck_assert_msg(matches(log, "(^|\n)<6>indicatord: ready: "), "%s", log);
	ck_assert_msg(
	    strstr(log, "\n<4>ingest: rejected report agent=" EVIL_ID_ESCAPED
			" epoch=1 seq=1: ") != NULL,
	    "%s", log);
	ck_assert_msg(!matches(log, "(^|\n)<3>forged"), "forged: %s", log);
	ck_assert_msg(strchr(log, '\x1b') == NULL, "raw escape: %s", log);
	free(log);
	harness_daemon_cleanup(&dm);
}
END_TEST

/* Off the journal: the time and level word on every line. */
START_TEST(test_daemon_plain)
{
	struct daemon_proc dm;
	char *log;

	unsetenv("JOURNAL_STREAM");
	harness_daemon_init(&dm, NULL);
	harness_daemon_start(&dm);
	send_evil(&dm);
	ck_assert_int_eq(harness_daemon_stop(&dm, SIGTERM), 0);

	log = harness_daemon_log(&dm);
	assert_each_line(
	    log, "^" TIME_RE " (error|warning|info|debug) [a-z]+: ");
	ck_assert_msg(
	    matches(log, "(^|\n)" TIME_RE " info indicatord: ready: "), "%s",
	    log);
	ck_assert_msg(
	    matches(log, "\n" TIME_RE " warning ingest: rejected report "
			 "agent=evil\\\\n<3>forged"),
	    "%s", log);
	ck_assert_msg(strchr(log, '\x1b') == NULL, "raw escape: %s", log);
	free(log);
	harness_daemon_cleanup(&dm);
}
END_TEST

/* log_format = json: every line of the daemon's log is a JSON object. */
START_TEST(test_daemon_json)
{
	struct daemon_proc dm;
	char *log, *save = NULL;
	bool ready = false, rejected = false;
	json_t *o;

	unsetenv("JOURNAL_STREAM");
	harness_daemon_init(&dm, "log_format = json\n");
	harness_daemon_start(&dm);
	send_evil(&dm);
	ck_assert_int_eq(harness_daemon_stop(&dm, SIGTERM), 0);

	log = harness_daemon_log(&dm);
	for (char *line = strtok_r(log, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		const char *msg, *mod;

		o = json_line(line);
		msg = json_string_value(json_object_get(o, "message"));
		mod = json_string_value(json_object_get(o, "module"));
		if (strcmp(mod, "indicatord") == 0 &&
		    strncmp(msg, "ready: ", 7) == 0)
			ready = true;
		if (strcmp(mod, "ingest") == 0 &&
		    strncmp(msg,
			"rejected report agent=" EVIL_ID_ESCAPED " epoch=1",
			strlen("rejected report agent=" EVIL_ID_ESCAPED
			       " epoch=1")) == 0) {
			ck_assert_str_eq(
			    json_string_value(json_object_get(o, "level")),
			    "warning");
			rejected = true;
		}
		json_decref(o);
	}
	ck_assert(ready && rejected);
	free(log);
	harness_daemon_cleanup(&dm);
}
END_TEST

static Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc;

	tc = tcase_create("module");
	tcase_add_loop_test(tc, test_escape, 0, NELEM(escape_cases));
	tcase_add_test(tc, test_escape_short);
	tcase_add_test(tc, test_journal_priorities);
	tcase_add_test(tc, test_level_filter);
	tcase_add_test(tc, test_fatal);
	tcase_add_test(tc, test_plain_times);
	tcase_add_test(tc, test_journal_stream_garbage);
	tcase_add_test(tc, test_tool_style);
	tcase_add_test(tc, test_json);
	tcase_add_test(tc, test_one_line);
	tcase_add_test(tc, test_errno_kept);
	tcase_add_test(tc, test_limit);
	suite_add_tcase(s, tc);

	tc = tcase_create("daemon");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_daemon_journal);
	tcase_add_test(tc, test_daemon_plain);
	tcase_add_test(tc, test_daemon_json);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	sr = srunner_create(log_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
