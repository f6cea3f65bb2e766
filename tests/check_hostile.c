/*
 * check_hostile: the system under hostile input and broken disks (issue
 * 12), from outside, on the real binaries, as an attacker or a broken
 * machine would try it. One TCase per area:
 *
 *   strings  every string field with a NUL on the wire, or a control
 *            character, refused with its exact code (bad_agent_id for an
 *            agent_id, consuming no seq; bad_string elsewhere), nothing
 *            stored, the daemon's log one line per event;
 *   tools    strings a store holds from before they were refused reach no
 *            terminal raw: indicatorctl's tables and indicator-sub;
 *   stores   a stopped store truncated (0 bytes, its meta pages, half)
 *            refused by the daemon and by indicatorctl with a message and
 *            an exit status, never a signal; a restore from a backup
 *            accepted, an older data.mdb alone refused;
 *   agent    indicator-agent send killed (SIGKILL) during its enqueue 20
 *            times at random instants: each file all or nothing, no
 *            phantom pending report, and the next file goes through.
 *
 * The memory and crowd cases (issue 12, item 1) come as TCases of their
 * own with the same fixtures and helpers: hostile_up() and hostile_down()
 * for a daemon, raw_send() for hand-made frames, proc_kib() for a
 * process's VmRSS/VmHWM.
 *
 * Every test is bounded in time (each TCase's timeout, every wait has a
 * deadline) and in memory (the daemons here hold a few MiB; strings
 * asserts the daemon's peak under HOSTILE_RSS_MAX_KIB).
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"
#include "indicator.pb-c.h"
#include "pbwire.h"
#include "store.h"
#include "xmalloc.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define ACK_MS 10000
#define RUN_S 60
/* The bound issue 12 sets for the daemon's memory under attack. */
#define HOSTILE_RSS_MAX_KIB (256 * 1024)
#define EPOCH 4242
#define ACCEPTED INDICATOR__ACK_STATUS__ACCEPTED
#define REJECTED INDICATOR__ACK_STATUS__REJECTED

static struct daemon_proc dm;
static void *zctx;
static void *sock;
static char *work;

/* --- fixtures and helpers ------------------------------------------ */

static void
hostile_up(const char *extra)
{
	work = harness_tmpdir();
	harness_daemon_init(&dm, extra);
	harness_daemon_start(&dm);
	zctx = zmq_ctx_new();
	sock = harness_client_new(zctx, dm.ingest);
}

static void
setup_daemon(void)
{
	hostile_up(NULL);
}

/* A daemon prepared, not started: the test starts it, or not. */
static void
setup_idle(void)
{
	work = harness_tmpdir();
	harness_daemon_init(&dm, NULL);
	zctx = NULL;
	sock = NULL;
}

static void
hostile_down(void)
{
	if (sock != NULL)
		zmq_close(sock);
	sock = NULL;
	if (zctx != NULL)
		zmq_ctx_term(zctx);
	zctx = NULL;
	if (dm.pid > 0) {
		int status = harness_daemon_stop(&dm, SIGTERM);

		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "indicatord did not exit 0 on SIGTERM (status %d)", status);
	}
	harness_daemon_cleanup(&dm);
	if (work != NULL) {
		harness_rmtree(work);
		free(work);
		work = NULL;
	}
}

/* A line of /proc/PID/status ("VmRSS", "VmHWM"), in KiB; -1 if absent. */
static long
proc_kib(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t n = strlen(field);
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			kib = strtol(line + n + 1, NULL, 10);
	fclose(f);
	return kib;
}

/* Turns each '#' inside a string field into a NUL (pbwire_strings). */
static int
nul_in_string(const struct pbwire_path *path,
    const ProtobufCFieldDescriptor *field, const uint8_t *data, size_t len,
    void *arg)
{
	(void)path;
	(void)field;
	(void)arg;
	for (size_t i = 0; i < len; i++)
		if (data[i] == '#')
			((uint8_t *)data)[i] = '\0';
	return 0;
}

/*
 * Packs msg, turns every '#' in its strings into a NUL (the strings are
 * written with '#' where the NUL goes: protobuf-c cannot pack a NUL inside
 * a string; only string fields are touched, never a number's bytes), sends
 * it as one frame and returns the Ack (NULL when none came within ACK_MS).
 */
static Indicator__Ack *
raw_send(void *s, const Indicator__AgentMessage *msg)
{
	size_t len = indicator__agent_message__get_packed_size(msg);
	uint8_t *buf = xmalloc(len + 1);
	const void *frames[1] = { buf };
	size_t lens[1] = { len };

	indicator__agent_message__pack(msg, buf);
	ck_assert_int_eq(pbwire_strings(&indicator__agent_message__descriptor,
			     buf, len, nul_in_string, NULL),
	    0);
	harness_client_send(s, frames, lens, 1);
	free(buf);
	return harness_client_ack(s, ACK_MS);
}

/* One report of one observation, its strings as given. */
struct one {
	const char *agent_id;
	const char *district;
	uint64_t seq;
	const char *industry;
	const char *metric;
	const char *period;
	const char *unit;
	const char *note;
};

static Indicator__Ack *
send_one(const struct one *o)
{
	Indicator__AgentMessage msg = INDICATOR__AGENT_MESSAGE__INIT;
	Indicator__Report r = INDICATOR__REPORT__INIT;
	Indicator__Observation ob = INDICATOR__OBSERVATION__INIT;
	Indicator__Observation *obs[1] = { &ob };

	r.agent_id = (char *)o->agent_id;
	r.district = (char *)o->district;
	r.epoch = EPOCH;
	r.seq = o->seq;
	r.sent_at_ms = 1750000000000;
	ob.industry = (char *)o->industry;
	ob.metric = (char *)o->metric;
	ob.period = (char *)o->period;
	ob.value = 12.5;
	ob.unit = (char *)o->unit;
	ob.status = INDICATOR__OBS_STATUS__PROVISIONAL;
	ob.note = (char *)o->note;
	r.n_observations = 1;
	r.observations = obs;
	msg.body_case = INDICATOR__AGENT_MESSAGE__BODY_REPORT;
	msg.report = &r;
	return raw_send(sock, &msg);
}

/* A good report of agent_id at seq. */
static Indicator__Ack *
send_good(const char *agent_id, uint64_t seq)
{
	const struct one o = { agent_id, "320583", seq, "photonics",
		"output_value", "2024", "CNY_100M", "" };

	return send_one(&o);
}

/* indicatorctl's output for args on dm's store (a checkpoint first, as
 * indicatorctl asks a running daemon); exit 0 required. Caller frees. */
static char *
ctl(const char *const args[])
{
	return harness_ctl(dm.data_dir, args, RUN_S);
}

static size_t
stored_observations(void)
{
	const char *args[] = { "query", "--json", NULL };
	char *out = ctl(args);
	size_t n = harness_count_newlines(out);

	free(out);
	return n;
}

/*
 * Whether text holds something a terminal would act on: a C0 control but
 * newline, DEL, a C1 control (U+0080..U+009F), or a byte 0x80..0x9f that
 * is not part of a UTF-8 sequence (an 8-bit C1 to some terminals).
 */
static bool
has_raw_control(const char *text)
{
	const unsigned char *p = (const unsigned char *)text;

	while (*p != '\0') {
		size_t n = *p < 0x80	? 1
			   : *p >= 0xf0 ? 4
			   : *p >= 0xe0 ? 3
			   : *p >= 0xc0 ? 2
					: 0;

		if ((*p < 0x20 && *p != '\n') || *p == 0x7f)
			return true;
		if (n == 0)
			return *p <= 0x9f
				   ? true
				   : (p++, has_raw_control((const char *)p));
		if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			return true;
		for (size_t i = 1; i < n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return true; /* cut short: not UTF-8 */
		p += n;
	}
	return false;
}

/* --- strings -------------------------------------------------------- */

/*
 * Each string case: one report, '#' standing for a NUL on the wire. The
 * answer is REJECTED with code, in the Ack's code (report) or as the
 * observation's error (not report).
 */
static const struct string_case {
	const char *name;
	struct one o;
	const char *code;
	bool report;
} string_cases[] = {
	{ "industry cut at a NUL",
	    { "hostile-01", "320583", 1, "photonics#EVIL", "output_value",
		"2024", "CNY_100M", "" },
	    "bad_string", false },
	{ "metric cut at a NUL",
	    { "hostile-02", "320583", 1, "photonics", "output_value#x", "2024",
		"CNY_100M", "" },
	    "bad_string", false },
	{ "period cut at a NUL",
	    { "hostile-03", "320583", 1, "photonics", "output_value",
		"2021#-13", "CNY_100M", "" },
	    "bad_string", false },
	{ "unit cut at a NUL",
	    { "hostile-04", "320583", 1, "photonics", "output_value", "2024",
		"CNY_100M#", "" },
	    "bad_string", false },
	{ "district cut at a NUL",
	    { "hostile-05", "320505#zzz", 1, "photonics", "output_value",
		"2024", "CNY_100M", "" },
	    "bad_string", true },
	{ "note cut at a NUL",
	    { "hostile-06", "320583", 1, "photonics", "output_value", "2024",
		"CNY_100M", "kept#dropped" },
	    "bad_string", false },
	{ "agent_id cut at a NUL",
	    { "hostile-07#attacker", "320583", 1, "photonics", "output_value",
		"2024", "CNY_100M", "" },
	    "bad_agent_id", true },
	{ "agent_id with a newline",
	    { "evil\n<3>forged", "320583", 1, "photonics", "output_value",
		"2024", "CNY_100M", "" },
	    "bad_agent_id", true },
	{ "agent_id with an escape",
	    { "evil\033[2J", "320583", 1, "photonics", "output_value", "2024",
		"CNY_100M", "" },
	    "bad_agent_id", true },
	{ "agent_id with a C1 CSI",
	    { "evil\xc2\x9b"
	      "31m",
		"320583", 1, "photonics", "output_value", "2024", "CNY_100M",
		"" },
	    "bad_agent_id", true },
	{ "agent_id with DEL",
	    { "evil\x7f", "320583", 1, "photonics", "output_value", "2024",
		"CNY_100M", "" },
	    "bad_agent_id", true },
	{ "industry with a newline",
	    { "hostile-12", "320583", 1, "photonics\n<3>forged", "output_value",
		"2024", "CNY_100M", "" },
	    "bad_string", false },
	{ "district with a carriage return",
	    { "hostile-13", "320583\r", 1, "photonics", "output_value", "2024",
		"CNY_100M", "" },
	    "bad_string", true },
	{ "note with a newline",
	    { "hostile-14", "320583", 1, "photonics", "output_value", "2024",
		"CNY_100M", "line one\nline two" },
	    "bad_string", false },
	{ "note with an escape",
	    { "hostile-15", "320583", 1, "photonics", "output_value", "2024",
		"CNY_100M", "\033]0;owned\007" },
	    "bad_string", false },
	{ "unit with C1 NEL",
	    { "hostile-16", "320583", 1, "photonics", "output_value", "2024",
		"CNY_100M\xc2\x85", "" },
	    "bad_string", false },
};

START_TEST(string_refused)
{
	const struct string_case *c = &string_cases[_i];
	const char *agents[] = { "agents", "--json", NULL };
	Indicator__Ack *ack;
	char *out, *log;
	long hwm;

	ack = send_one(&c->o);
	ck_assert_msg(ack != NULL, "%s: no answer", c->name);
	ck_assert_msg(ack->status == INDICATOR__ACK_STATUS__REJECTED,
	    "%s: status %d", c->name, ack->status);
	if (c->report) {
		ck_assert_msg(strcmp(ack->code, c->code) == 0,
		    "%s: code '%s', want '%s' (%s)", c->name, ack->code,
		    c->code, ack->message);
	} else {
		ck_assert_msg(ack->n_errors == 1 &&
				  ack->errors[0]->index == 0 &&
				  strcmp(ack->errors[0]->code, c->code) == 0,
		    "%s: %zu errors, the first '%s', want '%s'", c->name,
		    ack->n_errors, ack->n_errors ? ack->errors[0]->code : "",
		    c->code);
	}
	indicator__ack__free_unpacked(ack, NULL);

	/* Nothing stored; an agent_id refused consumed no seq: no agent is
	 * known (a content refusal records its agent's seq). */
	harness_checkpoint(&dm);
	ck_assert_uint_eq(stored_observations(), 0);
	out = ctl(agents);
	if (strcmp(c->code, "bad_agent_id") == 0)
		ck_assert_msg(out[0] == '\0', "%s: agents: %s", c->name, out);
	else
		ck_assert_uint_eq(harness_count_newlines(out), 1);
	free(out);

	/* The log: one line per event, nothing raw from the wire. */
	log = harness_daemon_log(&dm);
	ck_assert_msg(
	    strstr(log, "\n<3>forged") == NULL && !has_raw_control(log),
	    "%s: the log carries the string raw: %s", c->name, log);
	free(log);
	hwm = proc_kib(dm.pid, "VmHWM");
	ck_assert_msg(hwm > 0 && hwm < HOSTILE_RSS_MAX_KIB,
	    "indicatord's VmHWM %ld KiB", hwm);
}
END_TEST

/*
 * The attack of issue 12: an agent_id "nulvictim\0attacker" went on with
 * nulvictim's sequence. Refused now, it consumes none of it: the victim's
 * next report is ACCEPTED, not DUPLICATE, and the store knows one agent.
 */
START_TEST(nul_agent_id_takes_no_seq)
{
	const char *agents[] = { "agents", "--json", NULL };
	char *out, value[64];

	harness_expect_ack(send_good("nulvictim", 1), ACCEPTED, NULL);
	harness_expect_ack(
	    send_good("nulvictim#attacker", 2), REJECTED, "bad_agent_id");
	harness_expect_ack(
	    send_good("#nulvictim", 2), REJECTED, "bad_agent_id");
	harness_expect_ack(send_good("nulvictim", 2), ACCEPTED, NULL);
	harness_expect_ack(send_good("nulvictim", 3), ACCEPTED, NULL);
	out = ctl(agents);
	ck_assert_uint_eq(harness_count_newlines(out), 1);
	ck_assert(harness_json_get(out, "agent_id", value, sizeof(value)));
	ck_assert_str_eq(value, "nulvictim");
	ck_assert(harness_json_get(out, "last_seq", value, sizeof(value)));
	ck_assert_str_eq(value, "3");
	ck_assert(harness_json_get(out, "rejected", value, sizeof(value)));
	ck_assert_str_eq(value, "0");
	free(out);
	harness_checkpoint(&dm);
	ck_assert_uint_eq(stored_observations(), 1);
}
END_TEST

/* A heartbeat's agent_id with a NUL: REJECTED bad_agent_id, where it
 * would have answered for the agent before the NUL. */
START_TEST(nul_heartbeat_refused)
{
	Indicator__AgentMessage msg = INDICATOR__AGENT_MESSAGE__INIT;
	Indicator__Heartbeat hb = INDICATOR__HEARTBEAT__INIT;
	Indicator__Ack *ack;

	harness_expect_ack(send_good("beater", 1), ACCEPTED, NULL);
	hb.agent_id = "beater#x";
	hb.epoch = EPOCH;
	msg.body_case = INDICATOR__AGENT_MESSAGE__BODY_HEARTBEAT;
	msg.heartbeat = &hb;
	ack = raw_send(sock, &msg);
	ck_assert_ptr_nonnull(ack);
	ck_assert_int_eq(ack->status, INDICATOR__ACK_STATUS__REJECTED);
	ck_assert_str_eq(ack->code, "bad_agent_id");
	ck_assert_uint_eq(ack->expected_seq, 0);
	indicator__ack__free_unpacked(ack, NULL);
}
END_TEST

/* A snapshot request whose prefix holds a NUL is answered as one that does
 * not decode (an empty Snapshot, seq 0), not with the shorter prefix's
 * aggregates. */
START_TEST(nul_snapshot_prefix)
{
	Indicator__SnapshotRequest req = INDICATOR__SNAPSHOT_REQUEST__INIT;
	Indicator__Snapshot *snap;
	void *s = zmq_socket(zctx, ZMQ_DEALER);
	uint8_t buf[64], reply[1 << 16];
	int linger = 0, n;
	zmq_pollitem_t item;

	harness_expect_ack(send_good("snapper", 1), ACCEPTED, NULL);
	harness_checkpoint(&dm);
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	ck_assert_int_eq(zmq_connect(s, dm.snapshot), 0);
	for (int nul = 0; nul < 2; nul++) {
		size_t len;

		/* "agg/" itself first: every aggregate; then "agg/" NUL "x",
		 * which protobuf-c decodes as "agg/". */
		req.prefix = nul ? "agg/#x" : "agg/";
		len = indicator__snapshot_request__pack(&req, buf);
		ck_assert_int_eq(
		    pbwire_strings(&indicator__snapshot_request__descriptor,
			buf, len, nul_in_string, NULL),
		    0);
		ck_assert_int_eq(zmq_send(s, buf, len, 0), (int)len);
		item = (zmq_pollitem_t){ s, 0, ZMQ_POLLIN, 0 };
		ck_assert_int_eq(zmq_poll(&item, 1, ACK_MS), 1);
		n = zmq_recv(s, reply, sizeof(reply), 0);
		ck_assert_int_ge(n, 0);
		ck_assert_int_lt(n, (int)sizeof(reply));
		snap = indicator__snapshot__unpack(NULL, (size_t)n, reply);
		ck_assert_ptr_nonnull(snap);
		if (nul) {
			ck_assert_uint_eq(snap->seq, 0);
			ck_assert_uint_eq(snap->n_aggregates, 0);
		} else {
			ck_assert_uint_gt(snap->n_aggregates, 0);
		}
		indicator__snapshot__free_unpacked(snap, NULL);
	}
	zmq_close(s);
}
END_TEST

/* --- tools ---------------------------------------------------------- */

#define EVIL_ID "evil\n<3>forged\033[2J\xc2\x9b"
#define EVIL_NOTE "note\033]0;owned\007\r\n<3>forged\xc2\x85"
#define EVIL_UNIT "CNY_100M\033[31m"

/*
 * A store holding what the daemon now refuses (as one written before
 * could): an agent_id, a note and an aggregate's unit with newlines,
 * escapes and C1 controls.
 */
static void
evil_store(void)
{
	struct store_opts so = { dm.data_dir, 0, 0, false, STORE_SYNC_FULL };
	Indicator__Aggregate a = INDICATOR__AGGREGATE__INIT;
	struct store_seq seq = { 1, 1750000000000, 1750000000000, 1, 0 };
	struct store_obs o;
	struct store_txn *t;
	struct store *s;
	uint8_t buf[512];
	char err[4096];
	size_t len;

	ck_assert_int_eq(mkdir(dm.data_dir, 0700), 0);
	s = store_open(&so, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	t = store_txn_begin(s, true);
	ck_assert_ptr_nonnull(t);
	memset(&o, 0, sizeof(o));
	strcpy(o.district, "320583");
	strcpy(o.industry, "photonics");
	strcpy(o.metric, "output_value");
	strcpy(o.period, "2024");
	o.value = 12.5;
	strcpy(o.unit, "CNY_100M");
	o.sent_value = 12.5;
	strcpy(o.sent_unit, "CNY_100M");
	o.status = 1;
	strcpy(o.note, EVIL_NOTE);
	strcpy(o.agent_id, EVIL_ID);
	o.epoch = EPOCH;
	o.seq = 1;
	o.sent_at_ms = o.stored_at_ms = 1750000000000;
	ck_assert_int_eq(store_obs_put(t, &o, NULL, NULL), 0);
	ck_assert_int_eq(store_seq_put(t, EVIL_ID, EPOCH, &seq), 0);
	/* A city aggregate the log does not lead to, so that no replay
	 * rewrites it. */
	a.metric = "core_products";
	a.industry = "quantum";
	a.scope = "city";
	a.period = "2023";
	a.value = 3;
	a.unit = EVIL_UNIT;
	a.districts_reporting = 1;
	a.districts_expected = 10;
	a.revision = 1;
	a.seq = 1;
	a.updated_at_ms = 1750000000000;
	len = indicator__aggregate__pack(&a, buf);
	ck_assert_int_eq(
	    store_agg_put(t, "agg/core_products/quantum/city/2023", buf, len),
	    0);
	/* The publish seq a snapshot carries (0 would serve nothing). */
	ck_assert_int_eq(store_meta_put(t, "pub_seq", 1), 0);
	ck_assert_int_eq(store_meta_put(t, "pub_seq_sent", 1), 0);
	ck_assert_int_eq(store_txn_commit(&t), 0);
	store_close(&s);
}

/* What an operator's terminal would receive: nothing raw. */
static void
assert_clean(const char *what, const char *out)
{
	ck_assert_msg(
	    !has_raw_control(out), "%s prints a control: %s", what, out);
	ck_assert_msg(strstr(out, "\n<3>forged") == NULL &&
			  strncmp(out, "<3>forged", 9) != 0,
	    "%s starts a line of its own: %s", what, out);
}

START_TEST(tools_escape_the_store)
{
	static const char *const cmds[][6] = {
		{ "agents", NULL },
		{ "agents", "--json", NULL },
		{ "query", NULL },
		{ "query", "--json", NULL },
		{ "history", "320583", "photonics", "output_value", "2024",
		    NULL },
		{ "aggregates", NULL },
		{ "aggregates", "--json", NULL },
		{ "export", "--format", "json", NULL },
	};
	const char *sub_json[] = { SUB_BIN, "-c", dm.conf, "--once", NULL };
	const char *sub_table[] = { SUB_BIN, "-c", dm.conf, "--once",
		"--progress", NULL };
	char *out, *err;

	evil_store();
	for (size_t i = 0; i < NELEM(cmds); i++) {
		ck_assert_int_eq(harness_ctl_run(NULL, dm.data_dir, cmds[i],
				     &out, &err, RUN_S),
		    0);
		assert_clean(cmds[i][0], out);
		/* The evil agent_id is there, shown, not hidden. */
		if (strcmp(cmds[i][0], "agents") == 0)
			ck_assert_ptr_nonnull(strstr(out, "evil"));
		free(out);
		free(err);
	}
	harness_daemon_start(&dm);
	ck_assert_int_eq(harness_run(sub_json, &out, &err, RUN_S), 0);
	assert_clean("indicator-sub", out);
	ck_assert_msg(strstr(out, "CNY_100M\\u001b[31m") != NULL,
	    "out: %s err: %s", out, err);
	free(out);
	free(err);
	ck_assert_int_eq(harness_run(sub_table, &out, &err, RUN_S), 0);
	assert_clean("indicator-sub --progress", out);
	free(out);
	free(err);
}
END_TEST

/* --- stores --------------------------------------------------------- */

/* Reports enough to fill a few dozen pages, then a clean stop. */
static void
fill_and_stop(void)
{
	static const char *const industries[] = { "materials", "photonics",
		"metaverse", "hydrogen", "digifin", "cellgene", "aerospace",
		"quantum" };

	for (int m = 1; m <= 12; m++)
		for (size_t i = 0; i < NELEM(industries); i++) {
			char period[16];
			const struct one o = { "filler", "320583",
				(uint64_t)((m - 1) * NELEM(industries) + i + 1),
				industries[i], "output_value", period,
				"CNY_100M", "" };

			snprintf(period, sizeof(period), "2024-%02d", m);
			harness_expect_ack(send_one(&o), ACCEPTED, NULL);
		}
	zmq_close(sock);
	sock = NULL;
	ck_assert_int_eq(harness_daemon_stop(&dm, SIGTERM), 0);
}

static const struct {
	const char *name;
	int pages; /* kept: -1 for half the file */
	const char *want;
} cuts[] = {
	{ "0 bytes", 0, "is empty, but" },
	{ "its meta pages only", 2, "is truncated" },
	{ "half", -1, "is truncated" },
};

/*
 * A stopped store truncated: the daemon refuses to start and indicatorctl
 * refuses to read it, each with a message naming the way out and exit
 * status 1; neither is killed by a signal (SIGBUS), and the file is left
 * as it was.
 */
START_TEST(truncated_store_refused)
{
	const char *start[] = { INDICATORD_BIN, "-c", dm.conf, NULL };
	static const char *const reads[][3] = {
		{ "verify", NULL },
		{ "query", NULL },
		{ "agents", "--json", NULL },
	};
	char file[700], *out, *err;
	long page = sysconf(_SC_PAGESIZE);
	struct stat st;
	off_t keep;
	int rc;

	fill_and_stop();
	snprintf(file, sizeof(file), "%s/data.mdb", dm.data_dir);
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert_int_gt(st.st_size, 4 * page);
	keep = cuts[_i].pages < 0 ? st.st_size / 2 / page * page
				  : cuts[_i].pages * page;
	ck_assert_int_eq(truncate(file, keep), 0);

	rc = harness_run(start, &out, &err, RUN_S);
	ck_assert_msg(rc == 1,
	    "%s: indicatord exited %d (a signal is 128+): %s", cuts[_i].name,
	    rc, err);
	ck_assert_msg(strstr(err, cuts[_i].want) != NULL &&
			  strstr(err, "Backup and restore") != NULL,
	    "%s: indicatord says: %s", cuts[_i].name, err);
	free(out);
	free(err);
	for (size_t i = 0; i < NELEM(reads); i++) {
		rc = harness_ctl_run(
		    NULL, dm.data_dir, reads[i], &out, &err, RUN_S);
		ck_assert_msg(rc == 1,
		    "%s: indicatorctl %s exited %d (a signal is 128+): %s",
		    cuts[_i].name, reads[i][0], rc, err);
		ck_assert_msg(strstr(err, cuts[_i].want) != NULL,
		    "%s: indicatorctl %s says: %s", cuts[_i].name, reads[i][0],
		    err);
		free(out);
		free(err);
	}
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert_int_eq(st.st_size, keep);
}
END_TEST

/* Copies file from to to. */
static void
copy_file(const char *from, const char *to)
{
	char buf[65536];
	ssize_t n;
	int in = open(from, O_RDONLY), out;

	ck_assert_msg(in != -1, "%s: %s", from, strerror(errno));
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_msg(out != -1, "%s: %s", to, strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0)
		ck_assert_int_eq(write(out, buf, (size_t)n), n);
	ck_assert_int_eq(n, 0);
	close(in);
	close(out);
}

/*
 * The restore of the README: a backup's data.mdb and store.id put in the
 * data directory of the stopped daemon start and serve the backup. Its
 * data.mdb alone, behind the store.id of a store that went further, is an
 * older copy: refused, with a message that says to copy store.id too.
 */
START_TEST(restore_from_backup)
{
	const char *start[] = { INDICATORD_BIN, "-c", dm.conf, NULL };
	char backup[700], args_dir[700], from[800], to[800], *out, *err;
	const char *bk[] = { "backup", args_dir, NULL };

	harness_expect_ack(send_good("restorer", 1), ACCEPTED, NULL);
	snprintf(backup, sizeof(backup), "%s/backup", work);
	snprintf(args_dir, sizeof(args_dir), "%s", backup);
	out = ctl(bk);
	free(out);
	fill_and_stop();

	snprintf(from, sizeof(from), "%s/data.mdb", backup);
	snprintf(to, sizeof(to), "%s/data.mdb", dm.data_dir);
	copy_file(from, to);
	snprintf(to, sizeof(to), "%s/lock.mdb", dm.data_dir);
	unlink(to);
	ck_assert_int_eq(harness_run(start, &out, &err, RUN_S), 1);
	ck_assert_msg(
	    strstr(err, "is older than the store last written here") != NULL &&
		strstr(err, "copy its store.id too") != NULL,
	    "%s", err);
	free(out);
	free(err);

	snprintf(from, sizeof(from), "%s/store.id", backup);
	snprintf(to, sizeof(to), "%s/store.id", dm.data_dir);
	copy_file(from, to);
	/* The whole directory (store format 3): the tables too. */
	snprintf(from, sizeof(from), "%s/tables/data.mdb", backup);
	snprintf(to, sizeof(to), "%s/tables/data.mdb", dm.data_dir);
	copy_file(from, to);
	snprintf(to, sizeof(to), "%s/tables/lock.mdb", dm.data_dir);
	unlink(to);
	harness_daemon_start(&dm);
	harness_checkpoint(&dm);
	ck_assert_uint_eq(stored_observations(), 1);
}
END_TEST

/* --- agent ---------------------------------------------------------- */

#define KILLS 20
#define KILL_ROWS 6000
#define KILL_NOTE                                                            \
	"a long note so that the file's reports take more than one of the "  \
	"outbox's transactions of about 1 MiB: the kills land between them " \
	"as well as in them and leave reports staged beyond next_seq"

/* A CSV of n different keys of district 320583 with long notes. */
static void
kill_csv(const char *path, size_t n, int year0)
{
	static const char *const industries[] = { "materials", "photonics",
		"metaverse", "hydrogen", "digifin", "cellgene", "aerospace",
		"quantum" };
	static const char *const metrics[] = { "output_value",
		"innovation_platforms", "chain_leaders", "pilot_parks",
		"core_products", "app_scenarios" };
	FILE *f = fopen(path, "w");
	size_t row = 0;

	ck_assert_ptr_nonnull(f);
	fprintf(f, "industry,metric,period,value,unit,note\n");
	for (int y = year0; row < n; y++)
		for (int mo = 1; mo <= 12 && row < n; mo++)
			for (size_t i = 0; i < NELEM(industries) && row < n;
			     i++)
				for (size_t m = 0;
				     m < NELEM(metrics) && row < n; m++, row++)
					fprintf(f, "%s,%s,%d-%02d,%zu,%s,%s\n",
					    industries[i], metrics[m], y, mo,
					    1 + row % 97,
					    m == 0 ? "CNY_100M" : "count",
					    KILL_NOTE);
	ck_assert_int_eq(fclose(f), 0);
}

static int
agent(const char *outbox, const char *conf, const char *cmd, const char *file,
    const char *timeout, char **out, char **err)
{
	const char *argv[] = { AGENT_BIN, "-c", conf, "--outbox", outbox,
		"--endpoint", dm.ingest, "--timeout", timeout, cmd, file,
		NULL };

	return harness_run(argv, out, err, RUN_S * 2);
}

/* The outbox's pending and dead counts, from `status` (read-only). */
static void
agent_status(const char *outbox, const char *conf, unsigned long *pending,
    unsigned long *dead)
{
	char *out, *err, *p;

	ck_assert_int_eq(
	    agent(outbox, conf, "status", NULL, "0", &out, &err), 0);
	ck_assert_msg((p = strstr(out, "pending: ")) != NULL, "%s", out);
	*pending = strtoul(p + 9, NULL, 10);
	ck_assert_msg((p = strstr(out, "dead: ")) != NULL, "%s", out);
	*dead = strtoul(p + 6, NULL, 10);
	free(out);
	free(err);
}

/*
 * indicator-agent send killed with SIGKILL during its enqueue, KILLS times
 * at random instants (the daemon away, so that nothing leaves the outbox):
 * after each kill the outbox holds whole files only (pending a multiple of
 * the file's reports: all or nothing), then another file goes through
 * with the daemon up, and status shows nothing pending. Before the fix, a
 * few kills wedged the outbox (MDB_KEYEXIST for every later file) with
 * thousands of phantom pending reports.
 */
START_TEST(agent_killed_during_enqueue)
{
	char outbox[700], calib[700], conf[700], big[700], small[700], log[700],
	    *out, *err, *text;
	/* -v: the debug line that says the file is in the outbox. */
	const char *argv[] = { AGENT_BIN, "-v", "-c", conf, "--outbox", outbox,
		"--endpoint", dm.ingest, "--timeout", "1", "send", big, NULL };
	unsigned long pending, dead, per_file = 0;
	int64_t t0, enqueue_ms;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	pid_t pid;
	int rc;

	fprintf(stderr, "check_hostile: agent kills, seed %u\n", seed);
	srand(seed);
	snprintf(conf, sizeof(conf), "%s/agent.conf", work);
	harness_write_file(conf, "[agent]\nid = killed-01\ndistrict = 320583\n"
				 "report_size = 1\n");
	snprintf(big, sizeof(big), "%s/big.csv", work);
	kill_csv(big, KILL_ROWS, 2016);
	snprintf(small, sizeof(small), "%s/small.csv", work);
	kill_csv(small, 10, 2025);
	snprintf(log, sizeof(log), "%s/agent.log", work);

	/* How long an enqueue of the file takes here, in an outbox of its
	 * own: until send says where its reports went. */
	snprintf(calib, sizeof(calib), "%s/calibration", work);
	snprintf(outbox, sizeof(outbox), "%s", calib);
	t0 = harness_now_ms();
	pid = harness_spawn(argv, log);
	harness_wait_log(log, " reports, seq ", 120000);
	enqueue_ms = harness_now_ms() - t0;
	rc = harness_wait(pid, RUN_S);
	ck_assert_msg(rc == 3, "calibration send exited %d", rc);
	agent_status(calib, conf, &per_file, &dead);
	ck_assert_uint_eq(per_file, KILL_ROWS);

	snprintf(outbox, sizeof(outbox), "%s/outbox", work);
	for (int k = 0; k < KILLS; k++) {
		/* Within the calibrated time, a little short of it: a later
		 * send is quicker (warm caches), and every file whole in the
		 * outbox is one more to send at the end. */
		long at = rand() % (enqueue_ms * 9 / 10 + 1);

		pid = harness_spawn(argv, log);
		harness_sleep_ms(at);
		kill(pid, SIGKILL);
		rc = harness_wait(pid, RUN_S);
		ck_assert_msg(rc == 128 + SIGKILL || rc == 3,
		    "kill %d at %ld ms: send exited %d", k, at, rc);
		if (access(outbox, F_OK) != 0)
			continue; /* killed before it made the outbox */
		agent_status(outbox, conf, &pending, &dead);
		ck_assert_msg(pending % per_file == 0,
		    "kill %d at %ld ms of %lld: %lu pending, not whole files "
		    "of %lu",
		    k, at, (long long)enqueue_ms, pending, per_file);
		ck_assert_uint_eq(dead, 0);
	}

	fprintf(stderr,
	    "check_hostile: %d kills within %lld ms of enqueue; %lu files "
	    "whole in the outbox\n",
	    KILLS, (long long)enqueue_ms, pending / per_file);

	/* The daemon comes: another file goes through, with whatever whole
	 * files the kills left, and nothing stays pending. */
	harness_daemon_start(&dm);
	rc = agent(outbox, conf, "send", small, "100", &out, &err);
	ck_assert_msg(rc == 0, "send after the kills exited %d: %s", rc, err);
	ck_assert_msg(strstr(err, "MDB_KEYEXIST") == NULL, "%s", err);
	free(out);
	free(err);
	agent_status(outbox, conf, &pending, &dead);
	ck_assert_uint_eq(pending, 0);
	ck_assert_uint_eq(dead, 0);
	/* No kill left the outbox failing its writes. */
	text = harness_read_file(log);
	ck_assert_msg(
	    text == NULL || strstr(text, "MDB_KEYEXIST") == NULL, "%s", text);
	free(text);
}
END_TEST

static Suite *
hostile_suite(void)
{
	Suite *s = suite_create("hostile");
	TCase *tc;

	tc = tcase_create("strings");
	tcase_add_checked_fixture(tc, setup_daemon, hostile_down);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, string_refused, 0, NELEM(string_cases));
	tcase_add_test(tc, nul_agent_id_takes_no_seq);
	tcase_add_test(tc, nul_heartbeat_refused);
	tcase_add_test(tc, nul_snapshot_prefix);
	suite_add_tcase(s, tc);

	tc = tcase_create("tools");
	tcase_add_checked_fixture(tc, setup_idle, hostile_down);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, tools_escape_the_store);
	suite_add_tcase(s, tc);

	tc = tcase_create("stores");
	tcase_add_checked_fixture(tc, setup_daemon, hostile_down);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, truncated_store_refused, 0, NELEM(cuts));
	tcase_add_test(tc, restore_from_backup);
	suite_add_tcase(s, tc);

	tc = tcase_create("agent");
	tcase_add_checked_fixture(tc, setup_idle, hostile_down);
	tcase_set_timeout(tc, 280);
	tcase_add_test(tc, agent_killed_during_enqueue);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(hostile_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
