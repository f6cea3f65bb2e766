/*
 * indicator-agent run, the service form, on the real daemon: files dropped
 * in the drop directory are delivered and moved to done/ (through
 * sending/, until the daemon has stored them whole), bad ones to
 * rejected/ with the reason; delivery survives the daemon being away and
 * the agent being stopped; heartbeats keep the agent seen. And send of a
 * big file keeps the agent's memory small. Nothing here passes or fails on
 * timing: every wait is for an outcome, with a generous limit.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "outbox.h"
#include "xmalloc.h"

#define DISTRICT "320583"
#define RUN_TIMEOUT 60
/* The longest wait for an outcome. */
#define WAIT_MS 60000

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static const char *const industries[] = { "materials", "photonics", "metaverse",
	"hydrogen", "digifin", "cellgene", "aerospace", "quantum" };

/* One test's world: a daemon (maybe not started), a drop directory, an
 * outbox, and the agent's log. */
struct world {
	struct daemon_proc d;
	char drop[700];
	char outbox[700];
	char log[700];
	char id[32];
	pid_t agent;
};

static void
world_init_with(struct world *w, const char *id, const char *conf)
{
	memset(w, 0, sizeof(*w));
	harness_daemon_init(&w->d, conf);
	snprintf(w->drop, sizeof(w->drop), "%s/drop", w->d.dir);
	snprintf(w->outbox, sizeof(w->outbox), "%s/outbox", w->d.dir);
	snprintf(w->log, sizeof(w->log), "%s/agent.log", w->d.dir);
	snprintf(w->id, sizeof(w->id), "%s", id);
	ck_assert_int_eq(mkdir(w->drop, 0700), 0);
}

static void
world_init(struct world *w, const char *id)
{
	world_init_with(w, id, NULL);
}

/* Starts `indicator-agent ... run` with the extra options (NULL-ended). */
static void
agent_run(struct world *w, const char *const extra[])
{
	const char *argv[32];
	size_t n = 0;

	argv[n++] = AGENT_BIN;
	argv[n++] = "-v";
	argv[n++] = "--id";
	argv[n++] = w->id;
	argv[n++] = "--district";
	argv[n++] = DISTRICT;
	argv[n++] = "--endpoint";
	argv[n++] = w->d.ingest;
	argv[n++] = "--outbox";
	argv[n++] = w->outbox;
	argv[n++] = "--drop";
	argv[n++] = w->drop;
	argv[n++] = "--ack-timeout";
	argv[n++] = "500";
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
		argv[n++] = extra[i];
	argv[n++] = "run";
	argv[n] = NULL;
	w->agent = harness_spawn(argv, w->log);
}

/* Stops the agent with sig; returns its exit code. */
static int
agent_stop(struct world *w, int sig)
{
	int rc;

	ck_assert_int_eq(kill(w->agent, sig), 0);
	rc = harness_wait(w->agent, RUN_TIMEOUT);
	w->agent = 0;
	return rc;
}

static void
world_cleanup(struct world *w)
{
	if (w->agent != 0)
		agent_stop(w, SIGKILL);
	harness_daemon_cleanup(&w->d);
}

static char *
agent_log(const struct world *w)
{
	char *text = harness_read_file(w->log);

	return text != NULL ? text : xstrdup("");
}

/* Waits until the agent's log holds needle `times` times. */
static void
wait_log(const struct world *w, const char *needle, size_t times)
{
	int64_t end = harness_now_ms() + WAIT_MS;
	char *text;

	for (;;) {
		text = agent_log(w);
		if (harness_count_str(text, needle) >= times)
			break;
		if (harness_now_ms() > end)
			ck_abort_msg(
			    "no '%s' in the agent's log:\n%s", needle, text);
		free(text);
		harness_sleep_ms(50);
	}
	free(text);
}

static bool
file_exists(const char *dir, const char *name)
{
	char path[1400];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &sb) == 0;
}

static void
wait_file(const char *dir, const char *name)
{
	int64_t end = harness_now_ms() + WAIT_MS;

	while (!file_exists(dir, name)) {
		ck_assert_msg(harness_now_ms() < end, "no %s/%s", dir, name);
		harness_sleep_ms(50);
	}
}

/* Entries of dir, not counting . and .. */
static size_t
dir_count(const char *dir)
{
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/*
 * CSV text of rows first..first+n-1: each row a distinct (industry,
 * metric, period), so that the store ends with one observation per row
 * and a file never holds one key twice (the agent refuses that). Periods
 * go back from 2025 (the year, its quarters, its months, then 2024...):
 * the first 8976 rows stay within the registry's first year 2015, 100,000
 * rows need first_year 1903.
 */
static char *
csv_text(size_t first, size_t n)
{
	static const char *const metrics[] = { "output_value",
		"innovation_platforms", "chain_leaders", "pilot_parks",
		"core_products", "app_scenarios" };
	size_t cap = 64 + n * 80, len;
	char *s = xmalloc(cap);

	len = (size_t)snprintf(s, cap, "industry,metric,period,value,unit\n");
	for (size_t j = first; j < first + n; j++) {
		size_t k = j / 8, p = k / 6, year = 2025 - p / 17, sub = p % 17;
		char period[16];

		if (sub == 0)
			snprintf(period, sizeof(period), "%zu", year);
		else if (sub <= 4)
			snprintf(period, sizeof(period), "%zu-Q%zu", year, sub);
		else
			snprintf(
			    period, sizeof(period), "%zu-%02zu", year, sub - 4);
		if (k % 6 == 0)
			len += (size_t)snprintf(s + len, cap - len,
			    "%s,output_value,%s,%zu.5,CNY_100M\n",
			    industries[j % 8], period, j % 1000);
		else
			len += (size_t)snprintf(s + len, cap - len,
			    "%s,%s,%s,%zu,count\n", industries[j % 8],
			    metrics[k % 6], period, j % 1000);
	}
	return s;
}

/* Writes a file as a well-behaved writer does: a hidden name, then a
 * rename into the drop directory. */
static void
drop_renamed(const struct world *w, const char *name, const char *text)
{
	char tmp[1400], path[1400];

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", w->drop, name);
	snprintf(path, sizeof(path), "%s/%s", w->drop, name);
	harness_write_file(tmp, text);
	ck_assert_int_eq(rename(tmp, path), 0);
}

/* Runs indicatorctl on the daemon's store; returns stdout (caller frees). */
static char *
ctl(const struct world *w, const char *cmd)
{
	const char *argv[] = { INDICATORCTL_BIN, "-d", w->d.data_dir, cmd,
		"--json", NULL };
	char *out = NULL, *err = NULL;
	int rc;

	rc = harness_run(argv, &out, &err, RUN_TIMEOUT);
	ck_assert_msg(rc == 0, "indicatorctl %s: %d: %s", cmd, rc, err);
	free(err);
	return out;
}

/* The agent's row of `indicatorctl agents --json`: a 64-bit field (a
 * string of digits). */
static bool
agent_field(const struct world *w, const char *field, uint64_t *val)
{
	char *out = ctl(w, "agents"), pat[64];
	const char *row, *p;
	bool found = false;

	snprintf(pat, sizeof(pat), "\"agent_id\":\"%s\"", w->id);
	row = strstr(out, pat);
	snprintf(pat, sizeof(pat), "\"%s\":", field);
	if (row != NULL && (p = strstr(row, pat)) != NULL &&
	    (strchr(row, '\n') == NULL || p < strchr(row, '\n'))) {
		p += strlen(pat);
		*val = strtoull(p + (*p == '"'), NULL, 10);
		found = true;
	}
	free(out);
	return found;
}

/* Waits until the daemon has last_seq == seq from this agent. */
static void
wait_last_seq(const struct world *w, uint64_t seq)
{
	int64_t end = harness_now_ms() + WAIT_MS;
	uint64_t last = 0;

	for (;;) {
		if (agent_field(w, "last_seq", &last) && last >= seq)
			break;
		if (harness_now_ms() > end) {
			char *text = agent_log(w);

			ck_abort_msg("last_seq %" PRIu64 ", want %" PRIu64
				     "; agent log:\n%s",
			    last, seq, text);
		}
		harness_sleep_ms(100);
	}
	ck_assert_uint_eq(last, seq);
}

static size_t
stored_rows(const struct world *w)
{
	char *out = ctl(w, "query");
	size_t n = harness_count_str(out, "\"district\":\"" DISTRICT "\"");

	free(out);
	return n;
}

/* Both the well-behaved writer (rename in) and the slow one that writes
 * the file in place in two pieces: neither is read half. */
START_TEST(test_rename_and_slow_writer)
{
	struct world w;
	char *text = csv_text(0, 120), *slow = csv_text(120, 200);
	char path[1400], done[800], rejected[800];
	size_t half = strlen(slow) / 2;
	int fd;

	world_init(&w, "run-rename");
	harness_daemon_start(&w.d);
	agent_run(&w, NULL);
	wait_log(&w, "running", 1);

	drop_renamed(&w, "a.csv", text);
	snprintf(done, sizeof(done), "%s/done", w.drop);
	wait_file(done, "a.csv");

	snprintf(path, sizeof(path), "%s/slow.csv", w.drop);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, slow, half), (ssize_t)half);
	harness_sleep_ms(200);
	ck_assert_int_eq(write(fd, slow + half, strlen(slow) - half),
	    (ssize_t)(strlen(slow) - half));
	ck_assert_int_eq(close(fd), 0);
	wait_file(done, "slow.csv");

	/* 120 rows are 3 reports, 200 rows 4. */
	wait_last_seq(&w, 7);
	ck_assert_uint_eq(stored_rows(&w), 320);
	snprintf(rejected, sizeof(rejected), "%s/rejected", w.drop);
	ck_assert_uint_eq(dir_count(rejected), 0);
	ck_assert_int_eq(agent_stop(&w, SIGTERM), 0);
	world_cleanup(&w);
	free(text);
	free(slow);
}
END_TEST

/* A bad file goes to rejected/ with the line; a second file of a name
 * already in done/ gets a suffix; other names are left alone. */
START_TEST(test_rejected_and_clash)
{
	struct world w;
	char *good = csv_text(0, 10), *err, dir[800], ignored[900];

	world_init(&w, "run-reject");
	harness_daemon_start(&w.d);
	agent_run(&w, NULL);
	wait_log(&w, "running", 1);

	drop_renamed(&w, "bad.csv",
	    "industry,metric,period,value,unit\n"
	    "materials,output_value,2020,1.5,CNY_100M\n"
	    "materials,output_value,2021,lots,CNY_100M\n");
	snprintf(dir, sizeof(dir), "%s/rejected", w.drop);
	wait_file(dir, "bad.csv.err");
	ck_assert(file_exists(dir, "bad.csv"));
	snprintf(ignored, sizeof(ignored), "%s/bad.csv.err", dir);
	err = harness_read_file(ignored);
	ck_assert_msg(
	    strstr(err, "bad.csv:3:4: value 'lots' is not a number") != NULL,
	    "%s", err);
	free(err);

	drop_renamed(&w, "x.csv", good);
	drop_renamed(&w, "notes.txt", "not for the agent\n");
	snprintf(dir, sizeof(dir), "%s/done", w.drop);
	wait_file(dir, "x.csv");
	drop_renamed(&w, "x.csv", good);
	wait_file(dir, "x.csv.1");
	wait_last_seq(&w, 2);
	ck_assert(file_exists(w.drop, "notes.txt"));
	ck_assert_int_eq(agent_stop(&w, SIGTERM), 0);
	world_cleanup(&w);
	free(good);
}
END_TEST

/* Files there before the agent starts are taken, in name order. */
START_TEST(test_present_at_start)
{
	struct world w;
	char *a = csv_text(0, 60), *b = csv_text(60, 40), path[800];
	char *text;

	world_init(&w, "run-present");
	drop_renamed(&w, "2-second.csv", b);
	drop_renamed(&w, "1-first.csv", a);
	drop_renamed(&w, ".hidden.csv", a);
	harness_daemon_start(&w.d);
	agent_run(&w, NULL);
	snprintf(path, sizeof(path), "%s/done", w.drop);
	wait_file(path, "2-second.csv");
	wait_last_seq(&w, 3);
	ck_assert(file_exists(path, "1-first.csv"));
	ck_assert(file_exists(w.drop, ".hidden.csv"));
	ck_assert_uint_eq(stored_rows(&w), 100);
	text = agent_log(&w);
	ck_assert_msg(strstr(text, "1-first.csv: 60 observations in 2 "
				   "reports, seq 1-2") != NULL &&
			  strstr(text, "2-second.csv: 40 observations in 1 "
				       "reports, seq 3-3") != NULL,
	    "%s", text);
	free(text);
	ck_assert_int_eq(agent_stop(&w, SIGTERM), 0);
	world_cleanup(&w);
	free(a);
	free(b);
}
END_TEST

/* The daemon is away when the files come: the agent says so, and when the
 * daemon starts everything is delivered, in seq order. */
START_TEST(test_daemon_late)
{
	struct world w;
	char *a = csv_text(0, 150), *b = csv_text(150, 75);
	uint64_t accepted = 0;

	world_init(&w, "run-late");
	agent_run(&w, NULL);
	wait_log(&w, "running", 1);
	drop_renamed(&w, "a.csv", a);
	drop_renamed(&w, "b.csv", b);
	wait_log(&w, "daemon unreachable", 1);

	harness_daemon_start(&w.d);
	/* The daemon stores seq n only after n - 1: last_seq 5 is all. */
	wait_last_seq(&w, 5);
	ck_assert(agent_field(&w, "accepted", &accepted));
	ck_assert_uint_eq(accepted, 5);
	ck_assert_uint_eq(stored_rows(&w), 225);
	wait_log(&w, "daemon back", 1);
	ck_assert_int_eq(agent_stop(&w, SIGTERM), 0);
	world_cleanup(&w);
	free(a);
	free(b);
}
END_TEST

/* SIGTERM leaves what is pending in the outbox and exits 0; SIGHUP does
 * not stop the agent; the next run delivers. */
START_TEST(test_stop_and_restart)
{
	struct world w;
	char *a = csv_text(0, 100), *text, *out = NULL;
	const char *status[] = { AGENT_BIN, "--outbox", w.outbox, "status",
		NULL };

	world_init(&w, "run-restart");
	agent_run(&w, NULL);
	drop_renamed(&w, "a.csv", a);
	/* No daemon: enqueued, the file waits in sending/. */
	wait_log(&w, "moved to sending/a.csv", 1);
	ck_assert_int_eq(kill(w.agent, SIGHUP), 0);
	ck_assert_int_eq(agent_stop(&w, SIGTERM), 0);
	text = agent_log(&w);
	ck_assert_msg(strstr(text, "stopped: 2 reports left pending") != NULL,
	    "%s", text);
	free(text);
	ck_assert_int_eq(harness_run(status, &out, NULL, RUN_TIMEOUT), 0);
	ck_assert_msg(strstr(out, "pending: 2\n") != NULL, "%s", out);
	free(out);

	harness_daemon_start(&w.d);
	agent_run(&w, NULL);
	wait_last_seq(&w, 2);
	ck_assert_uint_eq(stored_rows(&w), 100);
	ck_assert_int_eq(agent_stop(&w, SIGINT), 0);
	world_cleanup(&w);
	free(a);
}
END_TEST

/*
 * The outbox replaced (removed by an operator) while a file waited in
 * sending/: nothing of the file is pending any more, so at the next start
 * the file goes back into the drop directory and is sent again, whole,
 * under the new epoch, and ends in done/.
 */
START_TEST(test_outbox_replaced)
{
	struct world w;
	char *a = csv_text(0, 100), *text;
	char dir[800];

	world_init(&w, "run-replaced");
	agent_run(&w, NULL);
	drop_renamed(&w, "a.csv", a);
	wait_log(&w, "moved to sending/a.csv", 1);
	ck_assert_int_eq(agent_stop(&w, SIGTERM), 0);
	harness_rmtree(w.outbox);

	harness_daemon_start(&w.d);
	agent_run(&w, NULL);
	snprintf(dir, sizeof(dir), "%s/done", w.drop);
	wait_file(dir, "a.csv");
	ck_assert_int_eq(agent_stop(&w, SIGTERM), 0);
	text = agent_log(&w);
	ck_assert_msg(strstr(text, "sending/a.csv: the outbox holds no report "
				   "of it") != NULL,
	    "%s", text);
	ck_assert_msg(strstr(text, "stored whole; moved to done/a.csv") != NULL,
	    "%s", text);
	free(text);
	ck_assert_uint_eq(stored_rows(&w), 100);
	snprintf(dir, sizeof(dir), "%s/sending/a.csv", w.drop);
	ck_assert_int_eq(access(dir, F_OK), -1);
	world_cleanup(&w);
	free(a);
}
END_TEST

/* Built as outbox_batch_add() wants: a report the test does not send. */
static int
build_junk(
    uint64_t epoch, uint64_t seq, size_t i, void **buf, size_t *len, void *arg)
{
	(void)epoch;
	(void)seq;
	(void)i;
	(void)arg;
	*len = 4;
	*buf = xstrdup("junk");
	return 0;
}

/*
 * The agent stopped after enqueueing a file and before moving it: the
 * outbox holds the file's mark. At the next start the file is moved to
 * sending/ (to wait for the daemon's answer) and not enqueued again. The
 * mark is written here as the agent writes it ("file NAME size S mtime
 * SEC.NSEC ino I dev D").
 */
START_TEST(test_enqueued_not_moved)
{
	struct world w;
	char *a = csv_text(0, 10), *text, key[OUTBOX_MARK_MAX], err[256];
	char path[1400], done[800];
	struct outbox_batch *b;
	struct outbox *ob;
	struct stat sb;
	uint64_t pending, dead, next;
	int len;

	world_init(&w, "run-marked");
	drop_renamed(&w, "a.csv", a);
	snprintf(path, sizeof(path), "%s/a.csv", w.drop);
	ck_assert_int_eq(stat(path, &sb), 0);
	len = snprintf(key, sizeof(key),
	    "file a.csv size %jd mtime %jd.%09ld ino %ju dev %ju",
	    (intmax_t)sb.st_size, (intmax_t)sb.st_mtim.tv_sec,
	    sb.st_mtim.tv_nsec, (uintmax_t)sb.st_ino, (uintmax_t)sb.st_dev);
	ob = outbox_open(w.outbox, err, sizeof(err));
	ck_assert_msg(ob != NULL, "%s", err);
	ck_assert_ptr_nonnull(b = outbox_batch_begin(ob));
	ck_assert_int_eq(outbox_batch_add(b, build_junk, NULL), 0);
	ck_assert_int_eq(outbox_batch_mark(b, key, (size_t)len), 0);
	ck_assert_int_eq(outbox_batch_commit(&b), 0);
	outbox_close(&ob);

	/* No daemon: what is pending stays so. */
	agent_run(&w, NULL);
	snprintf(done, sizeof(done), "%s/sending", w.drop);
	wait_file(done, "a.csv");
	ck_assert_int_eq(agent_stop(&w, SIGTERM), 0);
	text = agent_log(&w);
	ck_assert_msg(strstr(text, "a.csv: enqueued before a restart") != NULL,
	    "%s", text);
	free(text);
	ob = outbox_open(w.outbox, err, sizeof(err));
	ck_assert_msg(ob != NULL, "%s", err);
	ck_assert_int_eq(outbox_counts(ob, &pending, &dead, &next), 0);
	ck_assert_uint_eq(pending, 1);
	ck_assert_uint_eq(next, 2);
	outbox_close(&ob);
	world_cleanup(&w);
	free(a);
}
END_TEST

/* Idle with --heartbeat, the agent stays seen: last_seen moves on. */
START_TEST(test_heartbeat)
{
	const char *const hb[] = { "--heartbeat", "100", NULL };
	struct world w;
	char *a = csv_text(0, 10), *text;
	uint64_t first = 0, later = 0;
	int64_t end;

	world_init(&w, "run-heartbeat");
	harness_daemon_start(&w.d);
	agent_run(&w, hb);
	drop_renamed(&w, "a.csv", a);
	wait_last_seq(&w, 1);
	ck_assert(agent_field(&w, "last_seen_ms", &first));
	end = harness_now_ms() + WAIT_MS;
	do {
		ck_assert_msg(harness_now_ms() < end,
		    "last_seen_ms stays %" PRIu64, first);
		harness_sleep_ms(200);
		ck_assert(agent_field(&w, "last_seen_ms", &later));
	} while (later <= first);
	text = agent_log(&w);
	ck_assert_msg(
	    strstr(text, "the daemon expects seq 2") != NULL, "%s", text);
	free(text);
	ck_assert_int_eq(agent_stop(&w, SIGTERM), 0);
	world_cleanup(&w);
	free(a);
}
END_TEST

/*
 * send of a big file: the agent's peak resident set (VmHWM, printed with
 * -v) stays small. The bound: about 6 MiB of shared libraries, a CSV read
 * buffer, one report's rows, about OUTBOX_BATCH_BYTES of reports and as
 * much of LMDB's dirty pages, and the window in flight; the file's
 * reports (8 MiB here) must not all be in memory at once: 24 MiB catches
 * that whatever the allocator does. Under ASan memory means nothing (its
 * shadow and quarantine), so the file is smaller and only delivery counts.
 */
#if SANITIZED
#define BIG_ROWS 20000
#else
#define BIG_ROWS 100000
#endif
#define BIG_BOUND_KB (24 * 1024)

START_TEST(test_big_send_memory)
{
	struct world w;
	char *text = csv_text(0, BIG_ROWS), *out = NULL, *err = NULL;
	char path[1400], want[128];
	const char *argv[] = { AGENT_BIN, "-v", "--id", "run-big", "--district",
		DISTRICT, "--endpoint", w.d.ingest, "--outbox", w.outbox,
		"send", path, NULL };
	const char *p;
	unsigned long kb;
	int rc;

	world_init_with(&w, "run-big", "[registry]\nfirst_year = 1900\n");
	snprintf(path, sizeof(path), "%s/big.csv", w.d.dir);
	harness_write_file(path, text);
	free(text);
	harness_daemon_start(&w.d);
	rc = harness_run(argv, &out, &err, 300);
	ck_assert_msg(rc == 0, "send: %d: %s", rc, err);
	snprintf(want, sizeof(want),
	    "%d reports (%d observations) sent: %d accepted, 0 duplicate, 0 "
	    "rejected",
	    BIG_ROWS / 50, BIG_ROWS, BIG_ROWS / 50);
	ck_assert_msg(strstr(err, want) != NULL, "no '%s' in: %s", want, err);
	wait_last_seq(&w, BIG_ROWS / 50);
	p = strstr(err, "peak memory: ");
	ck_assert_msg(p != NULL, "%s", err);
	kb = strtoul(p + strlen("peak memory: "), NULL, 10);
	fprintf(stderr, "check_agentrun: send of %d rows: peak %lu kB\n",
	    BIG_ROWS, kb);
	if (!SANITIZED)
		ck_assert_msg(kb < BIG_BOUND_KB, "peak %lu kB, bound %d kB", kb,
		    BIG_BOUND_KB);
	free(out);
	free(err);
	world_cleanup(&w);
}
END_TEST

static Suite *
agentrun_suite(void)
{
	Suite *s = suite_create("agentrun");
	TCase *tc;

	tc = tcase_create("run");
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_rename_and_slow_writer);
	tcase_add_test(tc, test_rejected_and_clash);
	tcase_add_test(tc, test_present_at_start);
	tcase_add_test(tc, test_daemon_late);
	tcase_add_test(tc, test_stop_and_restart);
	tcase_add_test(tc, test_outbox_replaced);
	tcase_add_test(tc, test_enqueued_not_moved);
	tcase_add_test(tc, test_heartbeat);
	suite_add_tcase(s, tc);

	tc = tcase_create("memory");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_big_send_memory);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	sr = srunner_create(agentrun_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
