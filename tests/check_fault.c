/*
 * Faults on the real binaries: the daemon killed with SIGKILL again and
 * again while ten agents stream, an agent killed in the middle of a flush,
 * agents started before the daemon, a store at its map limit, and a
 * subscriber that never reads. Whatever fails, a district's figures reach
 * the store exactly once (PROTOCOL.md, "Semantics"): every row sent is
 * stored once with one revision and its CSV value, in the report it was
 * sent in, each agent's last seq is its number of reports, and every
 * aggregate is what the stored observations add up to.
 *
 * Every row of every test has its own (district, industry, metric, period)
 * key, so a report stored twice shows as revision 2. Values are multiples
 * of 0.25, so sums are exact in any order.
 *
 * The moments of the kills come from a seeded PRNG; the seed is printed
 * and FAULT_SEED=N replays the schedule (not the races it meets).
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"
#include "indicator.pb-c.h"
#include "store.h"
#include "xmalloc.h"

#define ACCEPTED INDICATOR__ACK_STATUS__ACCEPTED
#define RETRY_LATER INDICATOR__ACK_STATUS__RETRY_LATER

/* The registry of conf/indicatord.conf. */
#define NDIST 10
#define NIND 8
#define NMET 6
#define FIRST_YEAR 2015
#define NMONTHS 132 /* 2015-01 .. 2025-12 */
#define NQUARTERS 44
#define NYEARS 11
#define NPER (NMONTHS + NQUARTERS + NYEARS)
#define YEAR0 (NMONTHS + NQUARTERS) /* index of the first annual period */
#define NKEYS (NIND * NMET * NPER) /* keys of one district */
#define OUTPUT 0 /* metrics[OUTPUT] is output_value */
#define STAR NIND /* industry "*" */
#define CITY NDIST /* scope "city" */
#define THRESHOLD 1000.0 /* 亿元: clusters_100bn counts industries above */
#define REL_TOL 1e-9

#define REPORT_SIZE 10
#define WINDOW "20"
#define AGENT_TIMEOUT "120" /* --timeout of the agents, seconds */
#define WAIT_S 180 /* for an agent to end: past its own --timeout */
#define CTL_TIMEOUT_S 120
#define ACK_TIMEOUT_MS 30000
#define FEEDERS_MAX 256
#define KILLS 20
#define AGENT_KILLS 3
#define AGENT_KILL_JITTER_MS 8
#define HISTORY_SAMPLES 8

#ifdef __SANITIZE_ADDRESS__
#define ROWS_FIRST 1000 /* per agent, first round of the kill test */
#define ROWS_MORE 300 /* per agent, later rounds */
#define ROWS_AGENT 4000
#define ROWS_LATE 500
#define SUB_REPORTS 200
#define RSS_MAX_MIB 400 /* ASan's shadow and quarantine */
#else
#define ROWS_FIRST 2000
#define ROWS_MORE 500
#define ROWS_AGENT 4000
#define ROWS_LATE 1000
#define SUB_REPORTS 300
#define RSS_MAX_MIB 200
#endif
#define LATE_AGENTS 3
#define FILL_OBS 50 /* observations per report while filling the map */
#define FULL_ROWS 1000 /* the agent that meets the full store */
#define FULL_TIMEOUT_S "3"
#define SUB_OBS 5
#define SUB_BURST 10 /* seqs per feeder in flight */

/*
 * ck_assert() records every check it passes (a write to Check's pipe);
 * this is for the checks that run tens of thousands of times.
 */
#define REQUIRE(cond, ...)                         \
	do {                                       \
		if (!(cond))                       \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

static const char *const districts[NDIST] = { "320505", "320506", "320507",
	"320508", "320509", "320576", "320581", "320582", "320583", "320585" };
static const char *const industries[NIND] = { "materials", "photonics",
	"metaverse", "hydrogen", "digifin", "cellgene", "aerospace",
	"quantum" };
static const char *const metrics[NMET] = { "output_value",
	"innovation_platforms", "chain_leaders", "pilot_parks", "core_products",
	"app_scenarios" };

/* One sender of rows: an indicator-agent, or the test's own client. */
struct feeder {
	char id[48];
	int district;
	size_t first_key; /* its rows are keys first_key.. of the district */
	size_t nrows;
	size_t report_size; /* rows per report */
	bool raw; /* sent with the harness client, not by an agent */
	uint64_t epoch; /* raw: chosen here; agent: read from the store */
	char csv[600];
	char outbox[600];
	char log[600];
	pid_t pid; /* running agent, or 0 */

	/* What the last verify() found. */
	bool seen;
	uint64_t last_seq;
	/* An agent's file whose parts the daemon holds, none stored yet
	 * (docs/protocol.md, "File transactions"): its seqs up to last_seq
	 * are used up, their rows not stored. */
	bool staged;
	uint32_t *per_seq; /* observations stored, by seq - 1 */
	int64_t *stored_at; /* by seq - 1 */
};

/* A recomputed aggregate. */
struct expect {
	double value;
	uint16_t districts; /* bit per district behind it */
	bool exists;
	bool seen;
};

struct fault {
	char dir[512]; /* the test's temporary directory */
	char agent_conf[600];
	struct daemon_proc dm;
	void *zctx;
	uint64_t rng;
	size_t next_key[NDIST];
	int16_t owner[NDIST][NKEYS]; /* feeder index; -1: never sent */
	struct feeder fe[FEEDERS_MAX];
	size_t nfe;
	struct expect *agg; /* see agg_at() */
	struct expect clusters[NYEARS];
};

/* What one verify() counted. */
struct tally {
	unsigned long nobs;
	unsigned long naggs;
	unsigned long reports;
};

static struct fault *F;

/* splitmix64: the same sequence on every platform for a seed. */
static uint64_t
rnd(void)
{
	uint64_t z = (F->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned
rnd_below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

static void
period_text(int p, char *buf, size_t len)
{
	if (p < NMONTHS)
		snprintf(
		    buf, len, "%04d-%02d", FIRST_YEAR + p / 12, p % 12 + 1);
	else if (p < YEAR0)
		snprintf(buf, len, "%04d-Q%d", FIRST_YEAR + (p - NMONTHS) / 4,
		    (p - NMONTHS) % 4 + 1);
	else
		snprintf(buf, len, "%04d", FIRST_YEAR + p - YEAR0);
}

static int
period_index(const char *s)
{
	int y, n;
	char c;

	if (strlen(s) == 4 && sscanf(s, "%4d%c", &y, &c) == 1 &&
	    y >= FIRST_YEAR && y < FIRST_YEAR + NYEARS)
		return YEAR0 + y - FIRST_YEAR;
	if (strlen(s) != 7)
		return -1;
	if (sscanf(s, "%4d-Q%1d%c", &y, &n, &c) == 2) {
		if (y < FIRST_YEAR || y >= FIRST_YEAR + NYEARS || n < 1 ||
		    n > 4)
			return -1;
		return NMONTHS + (y - FIRST_YEAR) * 4 + n - 1;
	}
	if (sscanf(s, "%4d-%2d%c", &y, &n, &c) == 2) {
		if (y < FIRST_YEAR || y >= FIRST_YEAR + NYEARS || n < 1 ||
		    n > 12)
			return -1;
		return (y - FIRST_YEAR) * 12 + n - 1;
	}
	return -1;
}

/* Key k of a district: period-major, then industry, then metric. */
static void
key_split(size_t k, int *ind, int *met, int *per)
{
	*per = (int)(k / (NIND * NMET));
	*ind = (int)(k % (NIND * NMET) / NMET);
	*met = (int)(k % NMET);
}

static int
key_of(const char *industry, const char *metric, const char *period)
{
	int i = name_index(industries, NIND, industry);
	int m = name_index(metrics, NMET, metric);
	int p = period_index(period);

	if (i < 0 || m < 0 || p < 0)
		return -1;
	return (p * NIND + i) * NMET + m;
}

/* The value of key k in district d, in the metric's canonical unit: money
 * in quarters of 亿元 up to 500, whole counts. */
static double
key_value(int d, size_t k)
{
	int i, m, p;

	key_split(k, &i, &m, &p);
	if (m == OUTPUT)
		return (double)(((unsigned)d * 7919u + k * 104729u) % 2000) *
		       0.25;
	return (double)(((unsigned)d * 31u + k * 17u) % 50);
}

static const char *
key_unit(int m)
{
	return m == OUTPUT ? "CNY_100M" : "count";
}

static size_t
agg_at(int m, int i, int s, int p)
{
	return (((size_t)m * (NIND + 1) + (size_t)i) * (NDIST + 1) +
		   (size_t)s) *
		   NPER +
	       (size_t)p;
}

static size_t
feeder_reports(const struct feeder *fe)
{
	return (fe->nrows + fe->report_size - 1) / fe->report_size;
}

static size_t
report_rows(const struct feeder *fe, uint64_t seq)
{
	size_t first = (size_t)(seq - 1) * fe->report_size;

	return fe->nrows - first < fe->report_size ? fe->nrows - first
						   : fe->report_size;
}

/* Writes the feeder's CSV: its rows in key order. */
static void
feeder_csv(const struct feeder *fe)
{
	FILE *f = fopen(fe->csv, "w");
	char period[16];
	int i, m, p;

	ck_assert_msg(f != NULL, "fopen %s: %s", fe->csv, strerror(errno));
	fputs("industry,metric,period,value,unit\n", f);
	for (size_t r = 0; r < fe->nrows; r++) {
		size_t k = fe->first_key + r;

		key_split(k, &i, &m, &p);
		period_text(p, period, sizeof(period));
		fprintf(f, "%s,%s,%s,%.2f,%s\n", industries[i], metrics[m],
		    period, key_value(fe->district, k), key_unit(m));
	}
	ck_assert_msg(fclose(f) == 0, "write %s: %s", fe->csv, strerror(errno));
}

/* True when every district has nrows keys that no feeder has had. */
static bool
keys_left(size_t nrows)
{
	for (int d = 0; d < NDIST; d++)
		if (F->next_key[d] + nrows > NKEYS)
			return false;
	return true;
}

/*
 * A new feeder of nrows rows of district d: the next keys of the district
 * that no feeder has had. raw_size 0 makes an agent (REPORT_SIZE rows a
 * report, from its agent.conf), with its CSV file written; otherwise the
 * test sends the rows itself, raw_size a report.
 */
static struct feeder *
feeder_new(int d, size_t nrows, size_t raw_size)
{
	bool raw = raw_size > 0;
	struct feeder *fe;
	size_t idx = F->nfe;
	char id[sizeof(fe->id)];
	char dir[sizeof(F->dir)];

	ck_assert_msg(idx < FEEDERS_MAX, "more than %d feeders", FEEDERS_MAX);
	ck_assert_msg(F->next_key[d] + nrows <= NKEYS,
	    "district %s: its %d keys are used up", districts[d], NKEYS);
	fe = &F->fe[F->nfe++];
	memset(fe, 0, sizeof(*fe));
	snprintf(id, sizeof(id), "fault%03zu-%s", idx, districts[d]);
	memcpy(fe->id, id, sizeof(fe->id));
	fe->district = d;
	fe->first_key = F->next_key[d];
	fe->nrows = nrows;
	fe->raw = raw;
	fe->report_size = raw ? raw_size : REPORT_SIZE;
	fe->epoch = raw ? 1000 + idx : 0;
	for (size_t r = 0; r < nrows; r++)
		F->owner[d][fe->first_key + r] = (int16_t)idx;
	F->next_key[d] += nrows;
	/* From copies of id and dir: GCC at -O2 takes F->dir and fe->id for
	 * an overlap with fe->csv (-Wrestrict). */
	memcpy(dir, F->dir, sizeof(dir));
	snprintf(fe->csv, sizeof(fe->csv), "%s/%s.csv", dir, id);
	snprintf(fe->outbox, sizeof(fe->outbox), "%s/%s.outbox", dir, id);
	snprintf(fe->log, sizeof(fe->log), "%s/%s.log", dir, id);
	if (!raw)
		feeder_csv(fe);
	return fe;
}

/* The tail of a file, for a failure message. */
static void
print_tail(const char *what, const char *path)
{
	char *s = harness_read_file(path);
	size_t len;

	if (s == NULL)
		return;
	len = strlen(s);
	fprintf(stderr, "check_fault: %s (%s):\n%s\n", what, path,
	    len > 4000 ? s + len - 4000 : s);
	free(s);
}

/* Starts `indicator-agent send` for fe, with its CSV or with none (it then
 * flushes its outbox). */
static void
agent_spawn(struct feeder *fe, bool with_file, const char *timeout_s)
{
	const char *argv[24];
	size_t n = 0;

	argv[n++] = AGENT_BIN;
	argv[n++] = "-c";
	argv[n++] = F->agent_conf;
	argv[n++] = "--id";
	argv[n++] = fe->id;
	argv[n++] = "--district";
	argv[n++] = districts[fe->district];
	argv[n++] = "--endpoint";
	argv[n++] = F->dm.ingest;
	argv[n++] = "--outbox";
	argv[n++] = fe->outbox;
	argv[n++] = "--window";
	argv[n++] = WINDOW;
	argv[n++] = "--timeout";
	argv[n++] = timeout_s;
	argv[n++] = "send";
	if (with_file)
		argv[n++] = fe->csv;
	argv[n] = NULL;
	fe->pid = harness_spawn(argv, fe->log);
}

/* The agent's exit code (or 128 + signal) when it has ended, else -1. */
static int
agent_poll(struct feeder *fe)
{
	int status;
	pid_t r;

	do {
		r = waitpid(fe->pid, &status, WNOHANG);
	} while (r == -1 && errno == EINTR);
	ck_assert_msg(r != -1, "waitpid %d: %s", (int)fe->pid, strerror(errno));
	if (r == 0)
		return -1;
	fe->pid = 0;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

static void
agent_expect(const struct feeder *fe, int code, int want)
{
	if (code == want)
		return;
	print_tail("agent log", fe->log);
	print_tail("indicatord log", F->dm.log);
	ck_abort_msg("agent %s exited %d, want %d", fe->id, code, want);
}

/* Waits for a running agent; it must exit 0: everything acknowledged. */
static void
agent_finish(struct feeder *fe)
{
	int code;

	if (fe->pid == 0)
		return;
	code = harness_wait(fe->pid, WAIT_S);
	fe->pid = 0;
	agent_expect(fe, code, 0);
}

/* Sums the agent's summary lines (one per run) into accepted and
 * duplicate. */
static void
agent_tally(
    const struct feeder *fe, unsigned long *accepted, unsigned long *duplicate)
{
	char *log = harness_read_file(fe->log);
	const char *p = log;
	unsigned long sent, obs, acc, dup, rej;

	while (p != NULL && (p = strstr(p, "agent: ")) != NULL) {
		if (sscanf(p,
			"agent: %lu reports (%lu observations) "
			"sent: %lu accepted, %lu duplicate, %lu rejected",
			&sent, &obs, &acc, &dup, &rej) == 5) {
			*accepted += acc;
			*duplicate += dup;
		}
		p++;
	}
	free(log);
}

/* `indicator-agent status`: the reports still pending in the outbox. */
static unsigned long
agent_pending(const struct feeder *fe)
{
	const char *argv[] = { AGENT_BIN, "-c", F->agent_conf, "--outbox",
		fe->outbox, "status", NULL };
	char *out = NULL, *err = NULL;
	const char *p;
	unsigned long n;
	int code;

	code = harness_run(argv, &out, &err, CTL_TIMEOUT_S);
	ck_assert_msg(
	    code == 0, "indicator-agent status exited %d: %s", code, err);
	p = strstr(out, "pending: ");
	ck_assert_msg(p != NULL && sscanf(p, "pending: %lu", &n) == 1,
	    "indicator-agent status: no pending count in: %s", out);
	free(out);
	free(err);
	return n;
}

/* Packs and sends report seq of a raw feeder; does not wait for the Ack. */
static void
raw_send(void *sock, const struct feeder *fe, uint64_t seq)
{
	size_t first = (size_t)(seq - 1) * fe->report_size;
	size_t n = report_rows(fe, seq);
	Indicator__Observation *o = xcalloc(n, sizeof(*o));
	Indicator__Observation **op = xcalloc(n, sizeof(*op));
	char(*period)[16] = xcalloc(n, sizeof(*period));
	Indicator__Report r = INDICATOR__REPORT__INIT;
	Indicator__AgentMessage msg = INDICATOR__AGENT_MESSAGE__INIT;
	const void *frames[1];
	size_t lens[1];
	uint8_t *buf;
	int i, m, p;

	for (size_t j = 0; j < n; j++) {
		size_t k = fe->first_key + first + j;

		key_split(k, &i, &m, &p);
		period_text(p, period[j], sizeof(period[j]));
		indicator__observation__init(&o[j]);
		o[j].industry = (char *)industries[i];
		o[j].metric = (char *)metrics[m];
		o[j].period = period[j];
		o[j].value = key_value(fe->district, k);
		o[j].unit = (char *)key_unit(m);
		o[j].status = INDICATOR__OBS_STATUS__FINAL;
		op[j] = &o[j];
	}
	r.agent_id = (char *)fe->id;
	r.district = (char *)districts[fe->district];
	r.epoch = fe->epoch;
	r.seq = seq;
	r.sent_at_ms = wall_ms();
	r.n_observations = n;
	r.observations = op;
	msg.body_case = INDICATOR__AGENT_MESSAGE__BODY_REPORT;
	msg.report = &r;
	lens[0] = indicator__agent_message__get_packed_size(&msg);
	buf = xmalloc(lens[0]);
	indicator__agent_message__pack(&msg, buf);
	frames[0] = buf;
	harness_client_send(sock, frames, lens, 1);
	free(buf);
	free(period);
	free(op);
	free(o);
}

/* The next Ack on sock; aborts with the daemon's log when none comes. */
static Indicator__Ack *
raw_ack(void *sock)
{
	Indicator__Ack *ack = harness_client_ack(sock, ACK_TIMEOUT_MS);

	if (ack == NULL) {
		print_tail("indicatord log", F->dm.log);
		ck_abort_msg("no Ack within %d ms", ACK_TIMEOUT_MS);
	}
	return ack;
}

/* Sends reports from..to of a raw feeder one by one; each must be
 * ACCEPTED. */
static void
raw_deliver(void *sock, const struct feeder *fe, uint64_t from, uint64_t to)
{
	Indicator__Ack *ack;

	for (uint64_t seq = from; seq <= to; seq++) {
		raw_send(sock, fe, seq);
		ack = raw_ack(sock);
		REQUIRE(ack->status == ACCEPTED && ack->seq == seq,
		    "%s seq %" PRIu64 ": status %d for seq %" PRIu64
		    " (%s: %s)",
		    fe->id, seq, (int)ack->status, ack->seq, ack->code,
		    ack->message);
		indicator__ack__free_unpacked(ack, NULL);
	}
}

static struct feeder *
feeder_by_id(const char *id)
{
	for (size_t i = 0; i < F->nfe; i++)
		if (strcmp(F->fe[i].id, id) == 0)
			return &F->fe[i];
	return NULL;
}

static struct store *
store_ro(void)
{
	struct store_opts so = { 0 };
	struct store *s;
	char err[512];

	if (F->dm.pid != 0)
		harness_checkpoint(&F->dm);
	so.dir = F->dm.data_dir;
	so.readonly = true;
	s = store_open(&so, err, sizeof(err));
	ck_assert_msg(s != NULL, "store_open %s: %s", F->dm.data_dir, err);
	return s;
}

static int
verify_seq(
    const char *agent_id, uint64_t epoch, const struct store_seq *st, void *arg)
{
	struct feeder *fe = feeder_by_id(agent_id);

	(void)arg;
	REQUIRE(
	    fe != NULL, "the store knows agent %s, which never sent", agent_id);
	REQUIRE(!fe->seen, "agent %s has two epochs in the store", agent_id);
	REQUIRE(!fe->raw || epoch == fe->epoch,
	    "%s: epoch %" PRIu64 ", sent %" PRIu64, agent_id, epoch, fe->epoch);
	fe->seen = true;
	fe->epoch = epoch;
	fe->last_seq = st->last_seq;
	/* An agent's one file: all its parts stored, or staged. */
	fe->staged = !fe->raw && st->accepted == 0 && st->last_seq > 0;
	REQUIRE(st->rejected == 0, "%s: %" PRIu64 " reports rejected", agent_id,
	    st->rejected);
	REQUIRE(st->accepted == st->last_seq || fe->staged,
	    "%s: %" PRIu64 " accepted, last seq %" PRIu64, agent_id,
	    st->accepted, st->last_seq);
	return 0;
}

static void
expect_add(int m, int i, int s, int p, int d, double v)
{
	struct expect *e = &F->agg[agg_at(m, i, s, p)];

	e->exists = true;
	e->value += v;
	e->districts |= (uint16_t)(1u << d);
}

static int
verify_obs(const struct store_obs *o, void *arg)
{
	struct tally *t = arg;
	int d = name_index(districts, NDIST, o->district);
	int k = key_of(o->industry, o->metric, o->period);
	struct feeder *fe;
	uint64_t seq;
	double want;
	int i, m, p;

	REQUIRE(d >= 0 && k >= 0, "stored %s/%s/%s/%s: not a key of the test",
	    o->district, o->industry, o->metric, o->period);
	REQUIRE(F->owner[d][k] >= 0, "stored %s/%s/%s/%s: never sent",
	    o->district, o->industry, o->metric, o->period);
	fe = &F->fe[F->owner[d][k]];
	seq = ((size_t)k - fe->first_key) / fe->report_size + 1;
	REQUIRE(o->revision == 1,
	    "%s/%s/%s/%s: revision %u: a report was stored more than once",
	    o->district, o->industry, o->metric, o->period, o->revision);
	REQUIRE(strcmp(o->agent_id, fe->id) == 0 && o->epoch == fe->epoch &&
		    o->seq == seq,
	    "%s/%s/%s/%s: stored from %s epoch %" PRIu64 " seq %" PRIu64
	    ", sent by %s epoch %" PRIu64 " in seq %" PRIu64,
	    o->district, o->industry, o->metric, o->period, o->agent_id,
	    o->epoch, o->seq, fe->id, fe->epoch, seq);
	key_split((size_t)k, &i, &m, &p);
	want = key_value(d, (size_t)k);
	REQUIRE(o->value == want && o->sent_value == want &&
		    strcmp(o->unit, key_unit(m)) == 0,
	    "%s/%s/%s/%s: stored %.17g %s (sent %.17g), the CSV says %.2f",
	    o->district, o->industry, o->metric, o->period, o->value, o->unit,
	    o->sent_value, want);
	/* One report, one transaction: one store time for all its rows. */
	REQUIRE(fe->per_seq[seq - 1] == 0 ||
		    fe->stored_at[seq - 1] == o->stored_at_ms,
	    "%s seq %" PRIu64 ": stored at two times", fe->id, seq);
	fe->per_seq[seq - 1]++;
	fe->stored_at[seq - 1] = o->stored_at_ms;
	expect_add(m, i, d, p, d, want);
	expect_add(m, STAR, d, p, d, want);
	expect_add(m, i, CITY, p, d, want);
	expect_add(m, STAR, CITY, p, d, want);
	t->nobs++;
	return 0;
}

static bool
close_enough(double a, double b)
{
	return a == b || fabs(a - b) <= REL_TOL * fmax(fabs(a), fabs(b));
}

static int
verify_agg(const char *topic, const void *buf, size_t len, void *arg)
{
	struct tally *t = arg;
	Indicator__Aggregate *a = indicator__aggregate__unpack(NULL, len, buf);
	struct expect *e;
	int m, i, s, p;
	unsigned reporting;

	REQUIRE(a != NULL, "aggregate %s does not decode", topic);
	i = strcmp(a->industry, "*") == 0
		? STAR
		: name_index(industries, NIND, a->industry);
	s = strcmp(a->scope, "city") == 0
		? CITY
		: name_index(districts, NDIST, a->scope);
	p = period_index(a->period);
	if (strcmp(a->metric, "clusters_100bn") == 0) {
		REQUIRE(i == STAR && s == CITY && p >= YEAR0,
		    "aggregate %s: clusters_100bn only for */city/year", topic);
		e = &F->clusters[p - YEAR0];
	} else {
		m = name_index(metrics, NMET, a->metric);
		REQUIRE(m >= 0 && i >= 0 && s >= 0 && p >= 0,
		    "aggregate %s outside the registry", topic);
		e = &F->agg[agg_at(m, i, s, p)];
	}
	REQUIRE(e->exists,
	    "aggregate %s stored, but no observation is behind it", topic);
	REQUIRE(!e->seen, "aggregate %s twice", topic);
	e->seen = true;
	REQUIRE(close_enough(a->value, e->value),
	    "%s: %.17g, the observations add up to %.17g", topic, a->value,
	    e->value);
	reporting = (unsigned)__builtin_popcount(e->districts);
	REQUIRE(a->districts_reporting == reporting,
	    "%s: districts_reporting %u, the observations say %u", topic,
	    a->districts_reporting, reporting);
	indicator__aggregate__free_unpacked(a, NULL);
	t->naggs++;
	return 0;
}

/* clusters_100bn of each year that has an annual output_value. */
static void
expect_clusters(void)
{
	for (int y = 0; y < NYEARS; y++) {
		const struct expect *total =
		    &F->agg[agg_at(OUTPUT, STAR, CITY, YEAR0 + y)];
		struct expect *c = &F->clusters[y];

		if (!total->exists)
			continue;
		c->exists = true;
		c->districts = total->districts;
		for (int i = 0; i < NIND; i++) {
			const struct expect *e =
			    &F->agg[agg_at(OUTPUT, i, CITY, YEAR0 + y)];

			if (e->exists && e->value >= THRESHOLD)
				c->value++;
		}
	}
}

static unsigned long
expect_count(void)
{
	size_t n = agg_at(NMET, 0, 0, 0);
	unsigned long count = 0;

	for (size_t j = 0; j < n; j++)
		count += F->agg[j].exists;
	for (int y = 0; y < NYEARS; y++)
		count += F->clusters[y].exists;
	return count;
}

/* Runs indicatorctl on the daemon's store; it must exit 0. Caller frees
 * the output. */
static char *
ctl(const char *cmd, const char *a1, const char *a2, const char *a3,
    const char *a4)
{
	const char *argv[12] = { INDICATORCTL_BIN, "-c", F->dm.conf, "-d",
		F->dm.data_dir, cmd, NULL };
	size_t n = 6;
	char *out = NULL, *err = NULL;
	int code;

	if (a1 != NULL) {
		argv[n++] = a1;
		argv[n++] = a2;
		argv[n++] = a3;
		argv[n++] = a4;
	}
	argv[n++] = "--json";
	argv[n] = NULL;
	code = harness_run(argv, &out, &err, CTL_TIMEOUT_S);
	ck_assert_msg(
	    code == 0, "indicatorctl %s exited %d: %s", cmd, code, err);
	free(err);
	return out;
}

/* What an operator sees: indicatorctl query, agents and history. */
static void
verify_ctl(const struct tally *t)
{
	char *out, *line, *p;
	size_t nagents = 0, nseen = 0, samples = 0;
	char period[16];

	out = ctl("query", NULL, NULL, NULL, NULL);
	ck_assert_msg(harness_count_newlines(out) == t->nobs,
	    "indicatorctl query: %zu observations, the store has %lu",
	    harness_count_newlines(out), t->nobs);
	free(out);

	out = ctl("agents", NULL, NULL, NULL, NULL);
	for (line = out; (p = strchr(line, '\n')) != NULL; line = p + 1) {
		char id[64];
		unsigned long long last;
		const char *q = strstr(line, "\"agent_id\":\"");
		const char *r = strstr(line, "\"last_seq\":");
		struct feeder *fe;

		*p = '\0';
		ck_assert_msg(
		    q != NULL && r != NULL &&
			sscanf(q, "\"agent_id\":\"%63[^\"]\"", id) == 1 &&
			sscanf(r, "\"last_seq\":\"%llu\"", &last) == 1,
		    "indicatorctl agents: cannot read %s", line);
		fe = feeder_by_id(id);
		ck_assert_msg(
		    fe != NULL && fe->seen, "indicatorctl agents shows %s", id);
		ck_assert_msg(last == fe->last_seq,
		    "indicatorctl agents: %s last_seq %llu, the store says "
		    "%" PRIu64,
		    id, last, fe->last_seq);
		nagents++;
	}
	free(out);
	for (size_t i = 0; i < F->nfe; i++)
		nseen += F->fe[i].seen;
	ck_assert_uint_eq(nagents, nseen);

	/* A few stored keys: each has exactly one revision in history. */
	for (size_t j = 0; j < F->nfe && samples < HISTORY_SAMPLES; j++) {
		const struct feeder *fe = &F->fe[(j * 7 + 3) % F->nfe];
		size_t row;
		int i, m, pi;

		if (fe->last_seq == 0 || fe->staged)
			continue;
		row = ((size_t)j * 104729u) %
		      ((size_t)(fe->last_seq - 1) * fe->report_size +
			  report_rows(fe, fe->last_seq));
		key_split(fe->first_key + row, &i, &m, &pi);
		period_text(pi, period, sizeof(period));
		out = ctl("history", districts[fe->district], industries[i],
		    metrics[m], period);
		ck_assert_msg(harness_count_newlines(out) == 1 &&
				  strstr(out, "\"revision\":1}") != NULL,
		    "indicatorctl history %s %s %s %s: %s",
		    districts[fe->district], industries[i], metrics[m], period,
		    out);
		free(out);
		samples++;
	}
}

/*
 * Reads the store and checks it against what the feeders sent. complete:
 * every feeder's every report is stored; otherwise each feeder may have
 * stored its reports up to some seq (and not one observation beyond).
 * Either way: each stored report whole, every row once with its value,
 * revision 1 throughout, reports stored in seq order, aggregates what the
 * observations add up to, and indicatorctl showing the same.
 */
static struct tally
verify(bool complete)
{
	struct store *s = store_ro();
	struct store_txn *t;
	struct store_filter all = { 0 };
	struct store_stat stat;
	struct tally n = { 0 };
	unsigned long want_obs = 0;

	memset(F->agg, 0, agg_at(NMET, 0, 0, 0) * sizeof(*F->agg));
	memset(F->clusters, 0, sizeof(F->clusters));
	for (size_t i = 0; i < F->nfe; i++) {
		struct feeder *fe = &F->fe[i];
		size_t nrep = feeder_reports(fe);

		fe->seen = false;
		fe->staged = false;
		fe->last_seq = 0;
		free(fe->per_seq);
		free(fe->stored_at);
		fe->per_seq = xcalloc(nrep, sizeof(*fe->per_seq));
		fe->stored_at = xcalloc(nrep, sizeof(*fe->stored_at));
	}
	t = store_txn_begin(s, false);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(store_seq_scan(t, verify_seq, NULL), 0);
	ck_assert_int_eq(store_obs_scan(t, &all, verify_obs, &n), 0);
	expect_clusters();
	ck_assert_int_eq(store_agg_scan(t, "", verify_agg, &n), 0);
	ck_assert_int_eq(store_stat(t, &stat), 0);
	store_txn_abort(&t);
	store_close(&s);

	ck_assert_msg(n.naggs == expect_count(),
	    "%lu aggregates stored, the observations make %lu", n.naggs,
	    expect_count());
	ck_assert_msg(stat.nobs == n.nobs && stat.nhist == n.nobs,
	    "%" PRIu64 " observations and %" PRIu64 " history entries for %lu "
	    "rows: something stored twice",
	    stat.nobs, stat.nhist, n.nobs);
	for (size_t i = 0; i < F->nfe; i++) {
		struct feeder *fe = &F->fe[i];
		size_t nrep = feeder_reports(fe);

		ck_assert_msg(fe->last_seq <= nrep,
		    "%s: last seq %" PRIu64 " of %zu reports", fe->id,
		    fe->last_seq, nrep);
		ck_assert_msg(!complete || fe->last_seq == nrep,
		    "%s: last seq %" PRIu64 ", it sent %zu reports", fe->id,
		    fe->last_seq, nrep);
		for (size_t q = 1; q <= nrep; q++) {
			size_t want = q <= fe->last_seq && !fe->staged
					  ? report_rows(fe, q)
					  : 0;

			REQUIRE(fe->per_seq[q - 1] == want,
			    "%s seq %zu: %u of its %zu observations stored, "
			    "last seq %" PRIu64,
			    fe->id, q, fe->per_seq[q - 1], report_rows(fe, q),
			    fe->last_seq);
			want_obs += want;
			REQUIRE(
			    q < 2 || q > fe->last_seq ||
				fe->stored_at[q - 1] >= fe->stored_at[q - 2],
			    "%s seq %zu stored before seq %zu", fe->id, q,
			    q - 1);
		}
		n.reports += fe->staged ? 0 : fe->last_seq;
	}
	ck_assert_uint_eq(n.nobs, want_obs);
	verify_ctl(&n);
	return n;
}

static unsigned long
rows_sent(void)
{
	unsigned long n = 0;

	for (size_t i = 0; i < F->nfe; i++)
		n += F->fe[i].nrows;
	return n;
}

static void
daemon_up(const char *extra)
{
	harness_daemon_init(&F->dm, extra);
	harness_daemon_start(&F->dm);
}

static void
setup(void)
{
	const char *seed = getenv("FAULT_SEED");
	char *dir;

	F = xcalloc(1, sizeof(*F));
	dir = harness_tmpdir();
	ck_assert(strlcpy_ok(F->dir, dir, sizeof(F->dir)));
	free(dir);
	memset(F->owner, 0xff, sizeof(F->owner));
	F->agg = xcalloc(agg_at(NMET, 0, 0, 0), sizeof(*F->agg));
	F->rng = seed != NULL && seed[0] != '\0'
		     ? strtoull(seed, NULL, 10)
		     : (uint64_t)wall_ms() ^ ((uint64_t)getpid() << 32);
	snprintf(F->agent_conf, sizeof(F->agent_conf), "%s/agent.conf", F->dir);
	harness_write_file(
	    F->agent_conf, "[agent]\nreport_size = 10\nack_timeout_ms = 300\n");
	F->zctx = zmq_ctx_new();
	ck_assert_ptr_nonnull(F->zctx);
}

static void
teardown(void)
{
	for (size_t i = 0; i < F->nfe; i++) {
		struct feeder *fe = &F->fe[i];

		if (fe->pid > 0) {
			kill(fe->pid, SIGKILL);
			waitpid(fe->pid, NULL, 0);
		}
		free(fe->per_seq);
		free(fe->stored_at);
	}
	if (F->dm.dir[0] != '\0')
		harness_daemon_cleanup(&F->dm);
	zmq_ctx_term(F->zctx);
	harness_rmtree(F->dir);
	free(F->agg);
	free(F);
	F = NULL;
}

/* The daemon stops with SIGTERM: exit 0, whatever it went through. */
static void
daemon_stop_clean(void)
{
	int status = harness_daemon_stop(&F->dm, SIGTERM);

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		print_tail("indicatord log", F->dm.log);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "indicatord did not exit 0 on SIGTERM (status %d)", status);
}

/*
 * Ten agents stream while the daemon is killed with SIGKILL at random
 * moments and restarted on the same store and ports, KILLS times. Agents
 * that finish before the kills are done are followed by a new round of
 * agents with new rows.
 */
START_TEST(test_daemon_killed)
{
	unsigned long accepted = 0, duplicate = 0;
	unsigned kills = 0, rounds = 0;
	size_t first = 0;
	struct tally n;
	uint64_t seed = F->rng;

	printf("check_fault: daemon kills: FAULT_SEED=%" PRIu64 "\n", seed);
	daemon_up(NULL);
	while (kills < KILLS) {
		bool running = false;
		int status;

		for (size_t i = first; i < F->nfe; i++) {
			struct feeder *fe = &F->fe[i];
			int code;

			if (fe->pid > 0 && (code = agent_poll(fe)) != -1)
				agent_expect(fe, code, 0);
			running |= fe->pid > 0;
		}
		/* A new round while the districts have unused keys; once
		 * they are used up (a fast daemon finishes rounds quickly),
		 * the remaining kills meet an idle daemon, its restart and
		 * its replay. */
		if (!running &&
		    keys_left(rounds == 0 ? ROWS_FIRST : ROWS_MORE)) {
			first = F->nfe;
			for (int d = 0; d < NDIST; d++)
				agent_spawn(
				    feeder_new(d,
					rounds == 0 ? ROWS_FIRST : ROWS_MORE,
					0),
				    true, AGENT_TIMEOUT);
			rounds++;
		}
		harness_sleep_ms(50 + (long)rnd_below(251));
		status = harness_daemon_stop(&F->dm, SIGKILL);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
			print_tail("indicatord log", F->dm.log);
		ck_assert_msg(
		    WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		    "indicatord ended by itself before kill %u (status %d)",
		    kills + 1, status);
		kills++;
		harness_daemon_start(&F->dm);
	}
	for (size_t i = first; i < F->nfe; i++)
		agent_finish(&F->fe[i]);
	for (size_t i = 0; i < F->nfe; i++) {
		ck_assert_msg(agent_pending(&F->fe[i]) == 0,
		    "%s: reports pending after exit 0", F->fe[i].id);
		agent_tally(&F->fe[i], &accepted, &duplicate);
	}

	n = verify(true);
	ck_assert_uint_eq(n.nobs, rows_sent());
	printf("check_fault: daemon kills: %u kills, %u rounds of %d agents, "
	       "%lu reports sent, %lu rows stored once, %lu aggregates "
	       "checked; agents saw %lu ACCEPTED and %lu DUPLICATE (resent "
	       "after a lost ack)\n",
	    kills, rounds, NDIST, n.reports, n.nobs, n.naggs, accepted,
	    duplicate);
	/* Each report ends its agent's run as one ACCEPTED or one DUPLICATE
	 * (the daemon stored it, the kill took the ACCEPTED away). */
	ck_assert_uint_eq(accepted + duplicate, n.reports);
	daemon_stop_clean();
}
END_TEST

struct last_ctx {
	const char *id;
	uint64_t last;
};

static int
last_row(
    const char *agent_id, uint64_t epoch, const struct store_seq *st, void *arg)
{
	struct last_ctx *c = arg;

	(void)epoch;
	if (strcmp(agent_id, c->id) == 0)
		c->last = st->last_seq;
	return 0;
}

/* last_seq of the feeder in the store, 0 before its first report. */
static uint64_t
store_last_seq(const struct feeder *fe)
{
	struct store *s = store_ro();
	struct store_txn *t = store_txn_begin(s, false);
	struct last_ctx c = { fe->id, 0 };

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(store_seq_scan(t, last_row, &c), 0);
	store_txn_abort(&t);
	store_close(&s);
	return c.last;
}

/*
 * An agent killed with SIGKILL after the daemon acknowledged some of its
 * reports and before all of them; restarted with `send` and no files, it
 * flushes its outbox. Killed again, up to AGENT_KILLS times.
 */
START_TEST(test_agent_killed)
{
	struct feeder *fe;
	unsigned long accepted = 0, duplicate = 0, pending;
	unsigned mid = 0;
	uint64_t last = 0, at_kill = 0;
	struct tally n;
	int code = -1;

	printf("check_fault: agent kills: FAULT_SEED=%" PRIu64 "\n", F->rng);
	daemon_up(NULL);
	fe = feeder_new(0, ROWS_AGENT, 0);
	agent_spawn(fe, true, AGENT_TIMEOUT);
	for (int k = 0; k < AGENT_KILLS; k++) {
		/* Wait for more acknowledged reports than at the last kill. */
		while ((code = agent_poll(fe)) == -1 &&
		       (at_kill = store_last_seq(fe)) <= last)
			harness_sleep_ms(1);
		if (code != -1) {
			agent_expect(fe, code, 0);
			break;
		}
		/* Sometimes before it has the new acks, sometimes after. */
		harness_sleep_ms((long)rnd_below(AGENT_KILL_JITTER_MS));
		kill(fe->pid, SIGKILL);
		code = harness_wait(fe->pid, WAIT_S);
		fe->pid = 0;
		if (code == 0) /* it ended before the signal landed */
			break;
		agent_expect(fe, code, 128 + SIGKILL);
		pending = agent_pending(fe);
		last = store_last_seq(fe);
		printf("check_fault: agent kill %d: the daemon had seq %" PRIu64
		       " just before the kill, %" PRIu64 " after; %lu of %zu "
		       "reports pending in the outbox\n",
		    k + 1, at_kill, last, pending, feeder_reports(fe));
		mid += pending > 0;
		agent_spawn(fe, false, AGENT_TIMEOUT);
		code = -1;
		if (pending == 0)
			break;
	}
	ck_assert_msg(mid > 0,
	    "the agent finished its %zu reports before it could be killed",
	    feeder_reports(fe));
	agent_finish(fe);
	ck_assert_uint_eq(agent_pending(fe), 0);
	agent_tally(fe, &accepted, &duplicate);

	n = verify(true);
	ck_assert_uint_eq(n.nobs, rows_sent());
	printf("check_fault: agent kills: killed %u times mid-flush, %lu "
	       "reports, %lu rows stored once; %lu ACCEPTED, %lu DUPLICATE\n",
	    mid, n.reports, n.nobs, accepted, duplicate);
	daemon_stop_clean();
}
END_TEST

/* Agents started while the daemon is down wait for it, then deliver
 * everything in order. */
START_TEST(test_daemon_late)
{
	struct feeder *fe[LATE_AGENTS];
	unsigned long accepted = 0, duplicate = 0;
	struct tally n;

	harness_daemon_init(&F->dm, NULL);
	for (int i = 0; i < LATE_AGENTS; i++) {
		fe[i] = feeder_new(i, ROWS_LATE, 0);
		agent_spawn(fe[i], true, AGENT_TIMEOUT);
	}
	/* Each says it is waiting: it has sent and had no answer. */
	for (int i = 0; i < LATE_AGENTS; i++) {
		for (;;) {
			char *log = harness_read_file(fe[i]->log);
			bool waiting =
			    log != NULL &&
			    strstr(log, "waiting for daemon") != NULL;

			free(log);
			if (waiting)
				break;
			agent_expect(fe[i], agent_poll(fe[i]), -1);
			harness_sleep_ms(20);
		}
	}
	harness_daemon_start(&F->dm);
	for (int i = 0; i < LATE_AGENTS; i++) {
		agent_finish(fe[i]);
		agent_tally(fe[i], &accepted, &duplicate);
	}

	n = verify(true);
	ck_assert_uint_eq(n.nobs, rows_sent());
	printf("check_fault: daemon late: %d agents waited, %lu reports, %lu "
	       "rows stored once in order; %lu ACCEPTED, %lu DUPLICATE\n",
	    LATE_AGENTS, n.reports, n.nobs, accepted, duplicate);
	daemon_stop_clean();
}
END_TEST

/*
 * A store at map_max_mb: reports get RETRY_LATER store_full, nothing is
 * half stored, the daemon goes on answering and the store stays readable.
 * With the limit raised and the daemon restarted, what was pending is
 * delivered, nothing twice.
 */
START_TEST(test_map_full)
{
	struct feeder *raw, *agent;
	Indicator__AgentMessage msg = INDICATOR__AGENT_MESSAGE__INIT;
	Indicator__Heartbeat hb = INDICATOR__HEARTBEAT__INIT;
	Indicator__Ack *ack;
	uint64_t refused = 0, agent_last;
	unsigned long pending, accepted = 0, duplicate = 0;
	uint8_t hbuf[128];
	const void *frames[1] = { hbuf };
	size_t lens[1];
	struct tally n;
	char *log;
	void *sock;
	int code;

	daemon_up("[daemon]\nmap_size_mb = 1\nmap_max_mb = 1\n");
	sock = harness_client_new(F->zctx, F->dm.ingest);

	/* Fill the map with big reports until one does not fit. */
	raw = feeder_new(0, NKEYS, FILL_OBS);
	for (uint64_t seq = 1; seq <= (NKEYS + FILL_OBS - 1) / FILL_OBS;
	     seq++) {
		raw_send(sock, raw, seq);
		ack = raw_ack(sock);
		if (ack->status == RETRY_LATER) {
			ck_assert_str_eq(ack->code, "store_full");
			ck_assert_uint_eq(ack->seq, seq);
			refused = seq;
			indicator__ack__free_unpacked(ack, NULL);
			break;
		}
		ck_assert_msg(ack->status == ACCEPTED,
		    "filling seq %" PRIu64 ": status %d (%s)", seq,
		    (int)ack->status, ack->code);
		indicator__ack__free_unpacked(ack, NULL);
	}
	ck_assert_msg(refused > 0, "%d observations fit in a 1 MiB map", NKEYS);

	/* An agent meets the full store: it gives up at its timeout with
	 * its reports pending. */
	agent = feeder_new(1, FULL_ROWS, 0);
	agent_spawn(agent, true, FULL_TIMEOUT_S);
	code = harness_wait(agent->pid, WAIT_S);
	agent->pid = 0;
	agent_expect(agent, code, 3);
	pending = agent_pending(agent);

	/* The daemon is alive and answers. */
	ck_assert_int_eq(waitpid(F->dm.pid, NULL, WNOHANG), 0);
	hb.agent_id = "fault-probe";
	hb.epoch = 1;
	msg.body_case = INDICATOR__AGENT_MESSAGE__BODY_HEARTBEAT;
	msg.heartbeat = &hb;
	lens[0] = indicator__agent_message__pack(&msg, hbuf);
	harness_client_send(sock, frames, lens, 1);
	ack = raw_ack(sock);
	ck_assert_int_eq(ack->status, ACCEPTED);
	indicator__ack__free_unpacked(ack, NULL);
	/* The refused report is still refused, never half stored; or, once
	 * the agent's parts were staged (commits that let LMDB reuse the
	 * pages earlier ones freed), stored whole. */
	raw_send(sock, raw, refused);
	ack = raw_ack(sock);
	if (ack->status == ACCEPTED) {
		refused++;
	} else {
		ck_assert_int_eq(ack->status, RETRY_LATER);
		ck_assert_str_eq(ack->code, "store_full");
	}
	indicator__ack__free_unpacked(ack, NULL);
	log = harness_daemon_log(&F->dm);
	ck_assert_msg(strstr(log, "store is full") != NULL,
	    "the daemon's log does not say the store is full:\n%s", log);
	free(log);

	/* Only whole reports in the store. */
	n = verify(false);
	agent_last = agent->last_seq;
	ck_assert_uint_eq(raw->last_seq, refused - 1);
	ck_assert_msg(
	    pending > 0 && pending >= feeder_reports(agent) - agent_last,
	    "%lu pending, %zu reports, %" PRIu64 " stored", pending,
	    feeder_reports(agent), agent_last);
	printf("check_fault: map full: %lu rows stored in 1 MiB before "
	       "store_full; the agent stored %" PRIu64 " of %zu reports and "
	       "kept %lu pending\n",
	    n.nobs, agent_last, feeder_reports(agent), pending);

	/* Raise the limit; what was pending goes through, once. */
	zmq_close(sock);
	daemon_stop_clean();
	log = harness_read_file(F->dm.conf);
	ck_assert_ptr_nonnull(log);
	log = xrealloc(log, strlen(log) + 64);
	strcat(log, "[daemon]\nmap_max_mb = 64\n");
	harness_write_file(F->dm.conf, log);
	free(log);
	harness_daemon_start(&F->dm);
	sock = harness_client_new(F->zctx, F->dm.ingest);
	raw_deliver(sock, raw, raw->last_seq + 1, feeder_reports(raw));
	zmq_close(sock);
	agent_spawn(agent, false, AGENT_TIMEOUT);
	agent_finish(agent);
	ck_assert_uint_eq(agent_pending(agent), 0);
	agent_tally(agent, &accepted, &duplicate);

	n = verify(true);
	ck_assert_uint_eq(n.nobs, rows_sent());
	printf("check_fault: map full: after raising map_max_mb, %lu reports "
	       "and %lu rows stored once; the agent's runs saw %lu ACCEPTED, "
	       "%lu DUPLICATE\n",
	    n.reports, n.nobs, accepted, duplicate);
	daemon_stop_clean();
}
END_TEST

/* The daemon's resident set, from /proc. */
static unsigned long
daemon_rss_kib(void)
{
	char path[64], *status, *p;
	unsigned long kib = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)F->dm.pid);
	status = harness_read_file(path);
	ck_assert_ptr_nonnull(status);
	p = strstr(status, "VmRSS:");
	ck_assert_msg(p != NULL && sscanf(p, "VmRSS: %lu", &kib) == 1,
	    "no VmRSS in %s", path);
	free(status);
	return kib;
}

/*
 * A subscriber that never reads does not hold ingest up: with a small
 * pub_hwm every report is ACCEPTED and the daemon's memory stays bounded
 * while updates it cannot deliver pile up.
 */
START_TEST(test_slow_subscriber)
{
	struct feeder *fe[NDIST];
	unsigned long rss, rss_max = 0, acks = 0;
	zmq_pollitem_t item;
	uint64_t pub_seq = 0;
	struct store *s;
	struct store_txn *t;
	struct tally n;
	int hwm = 100, rc;
	void *sub, *sock;

	daemon_up("[daemon]\npub_hwm = 100\n");
	sub = zmq_socket(F->zctx, ZMQ_SUB);
	ck_assert_ptr_nonnull(sub);
	ck_assert_int_eq(zmq_setsockopt(sub, ZMQ_RCVHWM, &hwm, sizeof(hwm)), 0);
	ck_assert_int_eq(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0), 0);
	ck_assert_int_eq(zmq_connect(sub, F->dm.publish), 0);
	sock = harness_client_new(F->zctx, F->dm.ingest);

	for (int d = 0; d < NDIST; d++)
		fe[d] = feeder_new(d, SUB_REPORTS * SUB_OBS, SUB_OBS);
	for (uint64_t seq = 1; seq <= SUB_REPORTS; seq += SUB_BURST) {
		for (uint64_t q = seq; q < seq + SUB_BURST && q <= SUB_REPORTS;
		     q++)
			for (int d = 0; d < NDIST; d++)
				raw_send(sock, fe[d], q);
		for (uint64_t q = seq; q < seq + SUB_BURST && q <= SUB_REPORTS;
		     q++)
			for (int d = 0; d < NDIST; d++) {
				Indicator__Ack *ack = raw_ack(sock);

				REQUIRE(ack->status == ACCEPTED,
				    "report %lu: status %d (%s: %s)", acks + 1,
				    (int)ack->status, ack->code, ack->message);
				indicator__ack__free_unpacked(ack, NULL);
				acks++;
			}
		rss = daemon_rss_kib();
		if (rss > rss_max)
			rss_max = rss;
	}
	ck_assert_uint_eq(acks, (unsigned long)SUB_REPORTS * NDIST);

	/* The subscriber was connected and was sent updates it never read. */
	item.socket = sub;
	item.fd = 0;
	item.events = ZMQ_POLLIN;
	item.revents = 0;
	do {
		rc = zmq_poll(&item, 1, ACK_TIMEOUT_MS);
	} while (rc == -1 && zmq_errno() == EINTR);
	ck_assert_msg(rc == 1, "the subscriber was sent nothing");

	s = store_ro();
	t = store_txn_begin(s, false);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(store_meta_get(t, "pub_seq", &pub_seq), 0);
	store_txn_abort(&t);
	store_close(&s);
	zmq_close(sock);

	n = verify(true);
	ck_assert_uint_eq(n.nobs, rows_sent());
	printf("check_fault: slow subscriber: %lu reports ACCEPTED, %" PRIu64
	       " updates published past a subscriber that reads none "
	       "(pub_hwm 100), daemon RSS at most %lu KiB\n",
	    acks, pub_seq, rss_max);
	ck_assert_msg(pub_seq > 10 * (uint64_t)hwm,
	    "only %" PRIu64 " updates published", pub_seq);
	ck_assert_msg(rss_max < (unsigned long)RSS_MAX_MIB * 1024,
	    "indicatord grew to %lu KiB with a subscriber that never reads",
	    rss_max);
	daemon_stop_clean();
	zmq_close(sub);
}
END_TEST

static Suite *
fault_suite(void)
{
	Suite *s = suite_create("fault");
	TCase *tc;

	tc = tcase_create("kill");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 280);
	tcase_add_test(tc, test_daemon_killed);
	tcase_add_test(tc, test_agent_killed);
	suite_add_tcase(s, tc);

	tc = tcase_create("down");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 280);
	tcase_add_test(tc, test_daemon_late);
	tcase_add_test(tc, test_map_full);
	tcase_add_test(tc, test_slow_subscriber);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(fault_suite());
	int failed;

	setvbuf(stdout, NULL, _IOLBF, 0);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
