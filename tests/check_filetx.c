/*
 * File transactions (docs/protocol.md, "File transactions"): the reports
 * of one file are stored together or not at all, whatever the split. On
 * the wire with hand-made parts (STAGED, the last part's ACCEPTED, a bad
 * part refusing the whole file, a key twice across parts, an abandoned
 * file, version 1 reports unchanged); through the real agent (a file
 * whose 7th of 10 reports is bad, kill -9 of either side mid-file).
 */
#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"
#include "indicator.pb-c.h"
#include "store.h"
#include "xmalloc.h"

#define ACK_TIMEOUT_MS 10000
#define CTL_TIMEOUT_S 20
#define DISTRICT "320583"
#define AGENT "kunshan-01"

#define ACCEPTED INDICATOR__ACK_STATUS__ACCEPTED
#define DUPLICATE INDICATOR__ACK_STATUS__DUPLICATE
#define REJECTED INDICATOR__ACK_STATUS__REJECTED
#define STAGED INDICATOR__ACK_STATUS__STAGED

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *const industries[] = { "materials", "photonics", "metaverse",
	"hydrogen", "digifin", "cellgene", "aerospace", "quantum" };

static struct daemon_proc dm;
static int metrics_port; /* the daemon's /metrics */
static void *zctx;
static void *sock;
static uint64_t epoch;

static void
setup(void)
{
	char extra[64];

	metrics_port = harness_free_port();
	snprintf(
	    extra, sizeof(extra), "metrics = 127.0.0.1:%d\n", metrics_port);
	harness_daemon_init(&dm, extra);
	harness_daemon_start(&dm);
	zctx = zmq_ctx_new();
	ck_assert_ptr_nonnull(zctx);
	sock = harness_client_new(zctx, dm.ingest);
	epoch = (uint64_t)time(NULL) * 1000 + (uint64_t)getpid();
}

static void
teardown(void)
{
	int status;

	zmq_close(sock);
	zmq_ctx_term(zctx);
	status = harness_daemon_stop(&dm, SIGTERM);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "indicatord did not exit 0 on SIGTERM (status %d)", status);
	harness_daemon_cleanup(&dm);
}

/* Observation k of a file: a distinct key for each k below 96. */
static void
obs_key(Indicator__Observation *o, unsigned k, char *period, size_t len)
{
	indicator__observation__init(o);
	snprintf(
	    period, len, "2024-%02u", (unsigned)(k / NELEM(industries) + 1));
	o->industry = (char *)industries[k % NELEM(industries)];
	o->metric = "output_value";
	o->period = period;
	o->value = 1 + k;
	o->unit = "CNY_100M";
	o->status = INDICATOR__OBS_STATUS__PROVISIONAL;
}

/*
 * Sends part `part` of `parts` (0, 0: a version 1 report) at seq, with
 * observations first .. first + n - 1; observation bad (relative, or -1)
 * gets a negative value. Returns the Ack.
 */
static Indicator__Ack *
send_part(uint64_t seq, uint64_t file_id, uint32_t part, uint32_t parts,
    unsigned first, unsigned n, int bad)
{
	Indicator__Report r = INDICATOR__REPORT__INIT;
	Indicator__Observation obs[16], *ptrs[16];
	char periods[16][16];
	Indicator__Ack *ack;

	ck_assert_uint_le(n, 16);
	for (unsigned i = 0; i < n; i++) {
		obs_key(&obs[i], first + i, periods[i], sizeof(periods[i]));
		if ((int)i == bad)
			obs[i].value = -5;
		ptrs[i] = &obs[i];
	}
	r.agent_id = AGENT;
	r.district = DISTRICT;
	r.epoch = epoch;
	r.seq = seq;
	r.sent_at_ms = 1;
	r.n_observations = n;
	r.observations = ptrs;
	r.file_id = file_id;
	r.part = part;
	r.parts = parts;
	ack = harness_send_report(sock, &r, ACK_TIMEOUT_MS);
	ck_assert_msg(
	    ack != NULL, "no answer to seq %llu", (unsigned long long)seq);
	ck_assert_uint_eq(ack->seq, seq);
	return ack;
}

static void
expect(Indicator__Ack *ack, int status, const char *code)
{
	ck_assert_msg(ack->status == (Indicator__AckStatus)status,
	    "seq %llu: status %d, not %d (%s: %s)",
	    (unsigned long long)ack->seq, (int)ack->status, status, ack->code,
	    ack->message);
	if (code != NULL)
		ck_assert_str_eq(ack->code, code);
	indicator__ack__free_unpacked(ack, NULL);
}

/* The district's latest values in the store. */
static size_t
stored(void)
{
	const char *args[] = { "query", "--district", DISTRICT, "--json",
		NULL };
	char *out = harness_ctl(dm.data_dir, args, CTL_TIMEOUT_S);
	size_t n = harness_count_str(out, "\"district\":\"" DISTRICT "\"");

	free(out);
	return n;
}

/* A version 1 report (no file fields) is stored alone, as before. */
START_TEST(test_v1)
{
	expect(send_part(1, 0, 0, 0, 0, 3, -1), ACCEPTED, "");
	ck_assert_uint_eq(stored(), 3);
	expect(send_part(2, 0, 0, 0, 3, 3, 1), REJECTED, "");
	expect(send_part(1, 0, 0, 0, 0, 3, -1), DUPLICATE, "");
	ck_assert_uint_eq(stored(), 3);
}
END_TEST

/* Parts are STAGED, nothing stored until the last one, which stores
 * them all; resent parts are DUPLICATE. A one-part file is stored at
 * once. */
START_TEST(test_whole)
{
	expect(send_part(1, 77, 1, 3, 0, 4, -1), STAGED, "");
	expect(send_part(2, 77, 2, 3, 4, 4, -1), STAGED, "");
	ck_assert_uint_eq(stored(), 0);
	/* A restart in the middle: the staged parts are durable. */
	harness_daemon_stop(&dm, SIGKILL);
	harness_daemon_start(&dm);
	expect(send_part(2, 77, 2, 3, 4, 4, -1), DUPLICATE, "");
	ck_assert_uint_eq(stored(), 0);
	expect(send_part(3, 77, 3, 3, 8, 4, -1), ACCEPTED, "");
	ck_assert_uint_eq(stored(), 12);
	expect(send_part(3, 77, 3, 3, 8, 4, -1), DUPLICATE, "");
	expect(send_part(4, 78, 1, 1, 12, 2, -1), ACCEPTED, "");
	ck_assert_uint_eq(stored(), 14);
}
END_TEST

/* The 7th of 10 parts is invalid: it is REJECTED with its error, the
 * later ones with file_rejected, and nothing of the file is stored; a
 * resent last part gets the same answer. */
START_TEST(test_seventh_of_ten)
{
	Indicator__Ack *ack;

	for (uint32_t p = 1; p <= 6; p++)
		expect(send_part(p, 5, p, 10, (p - 1) * 3, 3, -1), STAGED, "");
	ack = send_part(7, 5, 7, 10, 18, 3, 2);
	ck_assert_int_eq(ack->status, REJECTED);
	ck_assert_uint_eq(ack->n_errors, 1);
	ck_assert_uint_eq(ack->errors[0]->index, 2);
	ck_assert_uint_eq(ack->errors[0]->part, 0);
	ck_assert_str_eq(ack->errors[0]->code, "negative");
	ck_assert_msg(strstr(ack->message, "nothing of the file is stored"),
	    "%s", ack->message);
	indicator__ack__free_unpacked(ack, NULL);
	for (uint32_t p = 8; p <= 10; p++)
		expect(send_part(p, 5, p, 10, (p - 1) * 3, 3, -1), REJECTED,
		    "file_rejected");
	expect(send_part(10, 5, 10, 10, 27, 3, -1), REJECTED, "file_rejected");
	expect(send_part(3, 5, 3, 10, 6, 3, -1), DUPLICATE, "");
	ck_assert_uint_eq(stored(), 0);
	/* The agent goes on with its next file. */
	expect(send_part(11, 0, 0, 0, 40, 2, -1), ACCEPTED, "");
	ck_assert_uint_eq(stored(), 2);
}
END_TEST

/* The daemon's count of reports rejected with code, from /metrics. */
static long
rejections(const char *code)
{
	char name[128], *page, *p;
	int status = 0;
	long n = -1;

	snprintf(name, sizeof(name),
	    "\nindicatord_rejections_total{code=\"%s\"} ", code);
	page = harness_http_get(metrics_port, "/metrics", &status);
	ck_assert_msg(
	    page != NULL && status == 200, "GET /metrics: %d", status);
	if ((p = strstr(page, name)) != NULL)
		n = strtol(p + strlen(name), NULL, 10);
	free(page);
	ck_assert_msg(n >= 0, "no %s", name + 1);
	return n;
}

/* One key in parts 2 and 4 of a file: the last part refuses the file and
 * names both observations, each by its part, and the refusal is counted
 * under duplicate_key, as a key twice in one report is. */
START_TEST(test_key_twice)
{
	Indicator__Ack *ack;
	bool two = false, four = false;

	expect(send_part(1, 9, 1, 4, 0, 3, -1), STAGED, "");
	expect(send_part(2, 9, 2, 4, 3, 3, -1), STAGED, "");
	expect(send_part(3, 9, 3, 4, 6, 3, -1), STAGED, "");
	/* Observation 1 of part 4 is observation 4 of the file: part 2's
	 * second. */
	ack = send_part(4, 9, 4, 4, 3, 3, -1);
	ck_assert_int_eq(ack->status, REJECTED);
	for (size_t i = 0; i < ack->n_errors; i++) {
		ck_assert_str_eq(ack->errors[i]->code, "duplicate_key");
		if (ack->errors[i]->part == 2)
			two = true;
		if (ack->errors[i]->part == 0)
			four = true;
	}
	ck_assert_msg(two && four, "%zu errors", ack->n_errors);
	ck_assert_uint_eq(ack->n_errors, 6);
	indicator__ack__free_unpacked(ack, NULL);
	ck_assert_uint_eq(stored(), 0);
	/* Counted before the answer is sent (ingest.c). */
	ck_assert_int_eq(rejections("duplicate_key"), 1);
}
END_TEST

/* A file left open ends when another report (another file's part 1, a
 * version 1 report) takes its next seq; a part
 * whose earlier parts the daemon does not hold, or with fields that make
 * no sense, refuses its file. */
START_TEST(test_abandoned_and_bad)
{
	char *log;

	expect(send_part(1, 3, 1, 3, 0, 3, -1), STAGED, "");
	expect(send_part(2, 3, 2, 3, 3, 3, -1), STAGED, "");
	/* The agent's outbox was edited: a new file at seq 3. */
	expect(send_part(3, 4, 1, 2, 20, 3, -1), STAGED, "");
	expect(send_part(4, 4, 2, 2, 23, 3, -1), ACCEPTED, "");
	ck_assert_uint_eq(stored(), 6);
	log = harness_daemon_log(&dm);
	ck_assert_msg(strstr(log, "abandoned after part 2 of 3"), "%s", log);
	free(log);
	expect(send_part(5, 3, 3, 3, 6, 3, -1), REJECTED, "file_unknown");
	expect(send_part(6, 8, 3, 2, 30, 3, -1), REJECTED, "bad_file");
	expect(send_part(7, 8, 1, 0, 30, 3, -1), REJECTED, "bad_file");
	expect(send_part(8, 0, 1, 2, 30, 3, -1), REJECTED, "bad_file");
	ck_assert_uint_eq(stored(), 6);
	/* A version 1 report in the middle of a file ends it too. */
	expect(send_part(9, 11, 1, 2, 40, 3, -1), STAGED, "");
	expect(send_part(10, 0, 0, 0, 43, 2, -1), ACCEPTED, "");
	expect(send_part(11, 11, 2, 2, 45, 3, -1), REJECTED, "file_unknown");
	ck_assert_uint_eq(stored(), 8);
}
END_TEST

/* Part 1 of 2 of file_id, observations 0-2, staged in the store of the
 * stopped daemon for (AGENT, ep) as the daemon stages it, its latest part
 * at last_ms. */
static void
stage_by_hand(
    struct store_txn *t, uint64_t ep, uint64_t file_id, int64_t last_ms)
{
	Indicator__Report r = INDICATOR__REPORT__INIT;
	Indicator__Observation obs[3], *ptrs[3];
	char periods[3][16];
	struct store_stage st = { 0 };
	struct store_seq seq = { 0 };
	uint8_t buf[2048];
	size_t len;

	for (unsigned i = 0; i < 3; i++) {
		obs_key(&obs[i], i, periods[i], sizeof(periods[i]));
		ptrs[i] = &obs[i];
	}
	r.agent_id = AGENT;
	r.district = DISTRICT;
	r.epoch = ep;
	r.seq = 1;
	r.sent_at_ms = 1;
	r.n_observations = 3;
	r.observations = ptrs;
	r.file_id = file_id;
	r.part = 1;
	r.parts = 2;
	len = indicator__report__pack(&r, buf);
	ck_assert_int_eq(store_staged_put(t, AGENT, ep, 1, buf, len), 0);
	st.file_id = file_id;
	st.parts = 2;
	st.received = 1;
	st.first_seq = 1;
	st.started_ms = last_ms;
	st.last_ms = last_ms;
	st.bytes = len;
	ck_assert_int_eq(store_stage_put(t, AGENT, ep, &st), 0);
	seq.last_seq = 1;
	seq.first_seen_ms = last_ms;
	seq.last_seen_ms = last_ms;
	ck_assert_int_eq(store_seq_put(t, AGENT, ep, &seq), 0);
}

/* A file whose latest part came more than 7 days ago is abandoned when
 * the daemon starts (its later part then file_unknown); a younger one
 * stays, and its last part stores it. */
START_TEST(test_expired)
{
	struct store_opts o = { dm.data_dir, 0, 0, false, STORE_SYNC_FULL };
	int64_t now = (int64_t)time(NULL) * 1000;
	struct store_txn *t;
	struct store *st;
	char err[512];
	char *log;

	harness_daemon_stop(&dm, SIGTERM);
	st = store_open(&o, err, sizeof(err));
	ck_assert_msg(st != NULL, "%s", err);
	ck_assert_ptr_nonnull(t = store_txn_begin(st, true));
	stage_by_hand(t, epoch, 21, now - 8LL * 24 * 3600 * 1000);
	stage_by_hand(t, epoch + 1, 22, now - 1LL * 24 * 3600 * 1000);
	ck_assert_int_eq(store_txn_commit(&t), 0);
	store_close(&st);
	harness_daemon_start(&dm);

	expect(send_part(2, 21, 2, 2, 3, 3, -1), REJECTED, "file_unknown");
	epoch++;
	expect(send_part(2, 22, 2, 2, 3, 3, -1), ACCEPTED, "");
	ck_assert_uint_eq(stored(), 6);
	log = harness_daemon_log(&dm);
	ck_assert_msg(harness_count_str(log, "file abandoned: no part for 7 "
					     "days") == 1,
	    "%s", log);
	free(log);
}
END_TEST

/* The agent: run on a drop directory in the daemon's directory, its
 * reports of report_size rows. */
struct agent_world {
	char conf[700];
	char outbox[700];
	char drop[700];
	char log[700];
	char sub[3][800]; /* sending, done, rejected */
	pid_t pid;
};

static void
agent_world_init(struct agent_world *w, unsigned report_size)
{
	char text[128];

	snprintf(w->conf, sizeof(w->conf), "%s/agent.conf", dm.dir);
	snprintf(w->outbox, sizeof(w->outbox), "%s/outbox", dm.dir);
	snprintf(w->drop, sizeof(w->drop), "%s/drop", dm.dir);
	snprintf(w->log, sizeof(w->log), "%s/agent.log", dm.dir);
	snprintf(w->sub[0], sizeof(w->sub[0]), "%s/sending", w->drop);
	snprintf(w->sub[1], sizeof(w->sub[1]), "%s/done", w->drop);
	snprintf(w->sub[2], sizeof(w->sub[2]), "%s/rejected", w->drop);
	snprintf(text, sizeof(text), "[agent]\nreport_size = %u\nwindow = 8\n",
	    report_size);
	harness_write_file(w->conf, text);
	ck_assert_int_eq(mkdir(w->drop, 0700), 0);
	w->pid = 0;
}

static void
agent_start(struct agent_world *w)
{
	const char *argv[] = { AGENT_BIN, "-v", "-c", w->conf, "--id", AGENT,
		"--district", DISTRICT, "--endpoint", dm.ingest, "--outbox",
		w->outbox, "--drop", w->drop, "--ack-timeout", "300", "run",
		NULL };

	w->pid = harness_spawn(argv, w->log);
}

static void
agent_kill(struct agent_world *w, int sig)
{
	if (w->pid == 0)
		return;
	kill(w->pid, sig);
	harness_wait(w->pid, 30);
	w->pid = 0;
}

static bool
exists(const char *dir, const char *name)
{
	char path[2100];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &sb) == 0;
}

static void
wait_exists(const char *dir, const char *name, int ms)
{
	int64_t end = harness_now_ms() + ms;

	while (!exists(dir, name)) {
		ck_assert_msg(harness_now_ms() < end, "no %s/%s", dir, name);
		harness_sleep_ms(20);
	}
}

/* Drops text as name: written under a hidden name, then renamed. */
static void
drop_file(const struct agent_world *w, const char *name, const char *text)
{
	char tmp[1400], path[1400];

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", w->drop, name);
	snprintf(path, sizeof(path), "%s/%s", w->drop, name);
	harness_write_file(tmp, text);
	ck_assert_int_eq(rename(tmp, path), 0);
}

/* The periods keys are made of: years, quarters, months of 2016-2024. */
static void
key_period(unsigned i, char *buf, size_t len)
{
	if (i < 9)
		snprintf(buf, len, "%u", 2016 + i);
	else if (i < 9 + 36)
		snprintf(
		    buf, len, "%u-Q%u", 2016 + (i - 9) / 4, (i - 9) % 4 + 1);
	else
		snprintf(buf, len, "%u-%02u", 2016 + (i - 45) / 12,
		    (i - 45) % 12 + 1);
}

#define KEYS (153 * NELEM(industries))

/* A CSV of rows for keys first .. first + n - 1; row bad (relative, or
 * -1) implausible. Caller frees. */
static char *
csv_of(unsigned first, unsigned n, int bad)
{
	size_t cap = 64 + (size_t)n * 80, off;
	char *text = xmalloc(cap), period[16];

	off =
	    (size_t)snprintf(text, cap, "industry,metric,period,value,unit\n");
	for (unsigned i = 0; i < n; i++) {
		unsigned k = first + i;

		ck_assert_uint_lt(k, KEYS);
		key_period(k / NELEM(industries), period, sizeof(period));
		off += (size_t)snprintf(text + off, cap - off,
		    "%s,output_value,%s,%s,CNY_100M\n",
		    industries[k % NELEM(industries)], period,
		    (int)i == bad ? "99999" : "1.5");
	}
	return text;
}

/*
 * A file of 10 reports whose 7th holds a value the daemon refuses (the
 * agent's parser cannot know a plausible maximum): nothing of it is
 * stored, it lands in rejected/ (never done/) with the bad row's
 * FILE:LINE:COLUMN, and the district is still missing for the period.
 */
START_TEST(test_agent_seventh_of_ten)
{
	struct agent_world w;
	const char *expected[] = { "expected", "2024", "--metric",
		"output_value", NULL };
	char *text, *err, path[900], *out, *line;
	int rc;

	agent_world_init(&w, 3);
	agent_start(&w);
	harness_wait_log(w.log, "running", 10000);
	/* Rows 0-29 at lines 2-31; the 7th report is rows 18-20, and row 19
	 * (line 21) is bad. The file starts with 2024's. */
	text = csv_of(8 * 8, 30, 19);
	drop_file(&w, "ten.csv", text);
	free(text);
	wait_exists(w.sub[2], "ten.csv.err", 20000);
	ck_assert(exists(w.sub[2], "ten.csv"));
	ck_assert(!exists(w.sub[1], "ten.csv"));
	ck_assert(!exists(w.sub[0], "ten.csv"));
	snprintf(path, sizeof(path), "%s/ten.csv.err", w.sub[2]);
	err = harness_read_file(path);
	ck_assert_msg(strstr(err, "ten.csv:21:4: ") != NULL, "%s", err);
	ck_assert_msg(
	    strstr(err, "refused the file at part 7 of 10") != NULL, "%s", err);
	ck_assert_uint_eq(stored(), 0);
	rc = harness_ctl_run(NULL, dm.data_dir, expected, &out, NULL, 20);
	ck_assert_int_eq(rc, 1);
	line = harness_line_with(out, DISTRICT);
	ck_assert_msg(
	    line != NULL && strstr(line, "output_value") != NULL, "%s", out);
	free(line);
	free(out);
	printf("check_filetx: agent: a file of 10 reports, the 7th bad: "
	       "nothing stored, in rejected/ with:\n%s",
	    err);
	free(err);
	agent_kill(&w, SIGTERM);
}
END_TEST

/* One file of the kill test: its keys and how many reports it makes. */
struct kfile {
	char name[32];
	unsigned first;
	unsigned rows;
};

#define KFILES 25
#define KILLS 24
#define KREPORT 2

/* Each file's rows stored: all or none, never some. Returns how many
 * files are stored whole. */
static unsigned
expect_whole(const struct kfile *files, size_t n, bool *twice)
{
	const char *args[] = { "query", "--district", DISTRICT, "--json",
		NULL };
	char *out = harness_ctl(dm.data_dir, args, CTL_TIMEOUT_S);
	unsigned whole = 0;

	*twice = harness_count_str(out, "\"revision\":1") !=
		 harness_count_str(out, "\"district\":\"" DISTRICT "\"");
	for (size_t f = 0; f < n; f++) {
		unsigned have = 0;

		for (unsigned i = 0; i < files[f].rows; i++) {
			unsigned k = files[f].first + i;
			char needle[128], period[16];

			key_period(
			    k / NELEM(industries), period, sizeof(period));
			snprintf(needle, sizeof(needle),
			    "\"industry\":\"%s\",\"metric\":\"output_value\","
			    "\"period\":\"%s\"",
			    industries[k % NELEM(industries)], period);
			if (strstr(out, needle) != NULL)
				have++;
		}
		ck_assert_msg(have == 0 || have == files[f].rows,
		    "%s: %u of its %u rows stored", files[f].name, have,
		    files[f].rows);
		whole += have == files[f].rows;
	}
	free(out);
	return whole;
}

/*
 * kill -9 of the daemon and of the agent at random moments while files of
 * 1 to 40 reports are in flight: after each of the daemon's restarts, and
 * at the end, every file is stored whole or not at all, and no row twice;
 * at the end every file is stored, and each is in done/.
 */
START_TEST(test_kill_nine)
{
	struct kfile files[KFILES];
	struct agent_world w;
	unsigned first = 0, kills_d = 0, kills_a = 0, dropped = 0, whole = 0;
	unsigned in_flight = 0;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	int64_t end;
	bool twice;
	char *text;

	fprintf(stderr, "check_filetx: kill -9 test, seed %u\n", seed);
	srand(seed);
	for (unsigned f = 0; f < KFILES; f++) {
		/* 1 to 40 reports, the first and the last of them. */
		unsigned reports = f == 0 ? 1 : f == 1 ? 40 : 1 + rand() % 40;

		snprintf(files[f].name, sizeof(files[f].name), "f%02u.csv", f);
		files[f].first = first;
		files[f].rows = reports * KREPORT - (reports > 1 ? f % 2 : 0);
		first += files[f].rows;
		if (first > KEYS) {
			files[f].rows -= first - KEYS;
			first = KEYS;
		}
	}
	agent_world_init(&w, KREPORT);
	agent_start(&w);
	harness_wait_log(w.log, "running", 10000);
	for (unsigned k = 0; k < KILLS; k++) {
		/* A few files at a time, so that some are being enqueued
		 * while others are in flight. */
		if (dropped < KFILES) {
			text = csv_of(
			    files[dropped].first, files[dropped].rows, -1);
			drop_file(&w, files[dropped].name, text);
			free(text);
			dropped++;
		}
		harness_sleep_ms(rand() % 200);
		for (unsigned f = 0; f < dropped; f++)
			in_flight += exists(w.sub[0], files[f].name);
		if (rand() % 2 == 0) {
			harness_daemon_stop(&dm, SIGKILL);
			kills_d++;
			harness_daemon_start(&dm);
			expect_whole(files, KFILES, &twice);
			ck_assert_msg(!twice, "a row stored twice");
		} else {
			agent_kill(&w, SIGKILL);
			kills_a++;
			agent_start(&w);
		}
	}
	while (dropped < KFILES) {
		text = csv_of(files[dropped].first, files[dropped].rows, -1);
		drop_file(&w, files[dropped].name, text);
		free(text);
		dropped++;
	}
	/* Then it all goes through. */
	end = harness_now_ms() + 60000;
	for (;;) {
		unsigned done = 0;

		for (unsigned f = 0; f < KFILES; f++)
			done += exists(w.sub[1], files[f].name);
		if (done == KFILES)
			break;
		ck_assert_msg(harness_now_ms() < end,
		    "%u of %u files in done/ after a minute", done, KFILES);
		harness_sleep_ms(100);
	}
	whole = expect_whole(files, KFILES, &twice);
	ck_assert_msg(!twice, "a row stored twice");
	ck_assert_uint_eq(whole, KFILES);
	ck_assert_uint_eq(stored(), first);
	agent_kill(&w, SIGTERM);
	printf("check_filetx: kill -9: %u files of 1 to 40 reports (%u rows), "
	       "%u kills of the daemon and %u of the agent, with %u files in "
	       "sending/ at the kills: after each restart every file whole "
	       "or absent; at the end all %u stored once, in done/\n",
	    KFILES, first, kills_d, kills_a, in_flight, whole);
}
END_TEST

/* Answers one message on the ROUTER rt: STAGED for the first part,
 * for the second a REJECTED whose duplicate_key errors name an
 * observation of each part. Returns the seq answered. */
static uint64_t
fake_answer(void *rt)
{
	Indicator__Ack ack = INDICATOR__ACK__INIT;
	Indicator__ObservationError e[2], *ep[2] = { &e[0], &e[1] };
	Indicator__AgentMessage *m;
	zmq_msg_t id, body;
	uint8_t out[1024];
	size_t len;
	uint64_t seq;

	zmq_msg_init(&id);
	zmq_msg_init(&body);
	ck_assert_int_ge(zmq_msg_recv(&id, rt, 0), 0);
	ck_assert_int_ge(zmq_msg_recv(&body, rt, 0), 0);
	m = indicator__agent_message__unpack(
	    NULL, zmq_msg_size(&body), zmq_msg_data(&body));
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(m->body_case, INDICATOR__AGENT_MESSAGE__BODY_REPORT);
	seq = m->report->seq;
	ck_assert_uint_eq(m->report->parts, 2);
	ck_assert_uint_eq(m->report->part, seq);
	ck_assert_uint_ne(m->report->file_id, 0);
	ack.seq = seq;
	ack.expected_seq = seq + 1;
	if (seq == 1) {
		ack.status = INDICATOR__ACK_STATUS__STAGED;
		ack.message = "part 1 of 2 staged";
	} else {
		indicator__observation_error__init(&e[0]);
		indicator__observation_error__init(&e[1]);
		e[0].part = 1;
		e[0].index = 1;
		e[0].code = "duplicate_key";
		e[0].message = "photonics/output_value/2024 is also part 2, "
			       "observation 0";
		e[1].part = 0;
		e[1].index = 0;
		e[1].code = "duplicate_key";
		e[1].message = "photonics/output_value/2024 is also part 1, "
			       "observation 1";
		ack.status = INDICATOR__ACK_STATUS__REJECTED;
		ack.message = "the file's 2 parts hold 2 errors";
		ack.n_errors = 2;
		ack.errors = ep;
	}
	len = indicator__ack__pack(&ack, out);
	ck_assert_int_ge(
	    zmq_send(rt, zmq_msg_data(&id), zmq_msg_size(&id), ZMQ_SNDMORE), 0);
	ck_assert_int_ge(zmq_send(rt, out, len, 0), 0);
	indicator__agent_message__free_unpacked(m, NULL);
	zmq_msg_close(&id);
	zmq_msg_close(&body);
	return seq;
}

/*
 * The agent tells a daemon's error in another part of the file at that
 * part's line: a daemon (played here) that finds one key in parts 1 and
 * 2 names both observations, and the agent names both lines, with the
 * file refused whole and send exiting 1. (The agent's own parser refuses
 * such a file before sending; another client's daemon-side rule is in
 * test_key_twice.)
 */
START_TEST(test_agent_other_part)
{
	char ep[64], csv[700], conf[700], outbox[700], *err = NULL;
	const char *argv[] = { AGENT_BIN, "-c", conf, "--id", AGENT,
		"--district", DISTRICT, "--endpoint", ep, "--outbox", outbox,
		"send", csv, NULL };
	void *rt = zmq_socket(zctx, ZMQ_ROUTER);
	char *log;
	pid_t pid;
	int rc;

	snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", harness_free_port());
	ck_assert_int_eq(zmq_bind(rt, ep), 0);
	snprintf(csv, sizeof(csv), "%s/two.csv", dm.dir);
	snprintf(conf, sizeof(conf), "%s/agent.conf", dm.dir);
	snprintf(outbox, sizeof(outbox), "%s/outbox", dm.dir);
	harness_write_file(conf, "[agent]\nreport_size = 2\n");
	harness_write_file(csv, "industry,metric,period,value,unit\n"
				"materials,output_value,2024,1,CNY_100M\n"
				"photonics,output_value,2024,2,CNY_100M\n"
				"photonics,output_value,2023,3,CNY_100M\n"
				"quantum,output_value,2024,4,CNY_100M\n");
	{
		char logpath[800];

		snprintf(logpath, sizeof(logpath), "%s/send.log", dm.dir);
		pid = harness_spawn(argv, logpath);
		ck_assert_uint_eq(fake_answer(rt), 1);
		ck_assert_uint_eq(fake_answer(rt), 2);
		rc = harness_wait(pid, 30);
		log = harness_read_file(logpath);
	}
	ck_assert_msg(rc == 1, "send exited %d: %s", rc, log);
	/* Part 1's second row is line 3; part 2's first, line 4. */
	ck_assert_msg(strstr(log, "two.csv:3:1: photonics/output_value/2024 "
				  "is twice in the file") != NULL,
	    "%s", log);
	/* (The played daemon calls them one key; the agent tells each
	 * observation as it sent it: the file itself holds no key twice,
	 * which the agent would have refused.) */
	ck_assert_msg(strstr(log, "two.csv:4:1: photonics/output_value/2023 "
				  "is twice in the file") != NULL,
	    "%s", log);
	ck_assert_msg(
	    strstr(log, "refused the file at part 2 of 2") != NULL, "%s", log);
	ck_assert_msg(
	    strstr(log, "0 accepted, 0 duplicate, 2 rejected") != NULL, "%s",
	    log);
	free(log);
	free(err);
	zmq_close(rt);
}
END_TEST

static Suite *
filetx_suite(void)
{
	Suite *s = suite_create("filetx");
	TCase *tc = tcase_create("wire");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_v1);
	tcase_add_test(tc, test_whole);
	tcase_add_test(tc, test_seventh_of_ten);
	tcase_add_test(tc, test_key_twice);
	tcase_add_test(tc, test_abandoned_and_bad);
	tcase_add_test(tc, test_expired);
	suite_add_tcase(s, tc);
	tc = tcase_create("agent");
	tcase_set_timeout(tc, 240);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_agent_seventh_of_ten);
	tcase_add_test(tc, test_kill_nine);
	tcase_add_test(tc, test_agent_other_part);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(filetx_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
