/*
 * indicator-agent against the real daemon, as a district operator runs it:
 * CSV files in, every row stored exactly once, whatever stops on the way
 * (a bad line, a rejected report, a daemon that is down, killed or
 * restarted, a signal to the agent). Each test has its own daemon on free
 * ports and its own temporary directory for CSV files, outboxes and logs;
 * what is stored is read back with indicatorctl.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "csv.h"
#include "harness.h"
#include "xmalloc.h"

/* Seconds: an indicatorctl run; an agent run (its own --timeout is less,
 * so a stuck agent ends with its pending status first). */
#define CTL_TIMEOUT_S 30
#define RUN_TIMEOUT_S 90
#define AGENT_TIMEOUT "60"
/* Milliseconds: how long to wait for a line in a log, or for progress. */
#define POLL_TIMEOUT_MS 60000
/* A short ack timeout, so reports lost with a daemon are resent soon. */
#define ACK_TIMEOUT "300"
#define KIDS_MAX 16
#define ARGV_MAX 32
#define LINE_MAX_LEN 4096 /* a line of indicatorctl's JSON output */

/* The big file: every key of one district over 2015..2025. */
#define BIG_YEAR0 2015
#define BIG_YEARS 11
#define BIG_PERIODS (BIG_YEARS * (12 + 4 + 1))
#define BIG_REPORT_SIZE 10

struct agent_spec {
	const char *id;
	const char *district;
	char outbox[600];
	char conf[600]; /* -c FILE; "" for none */
	const char *ack_timeout; /* --ack-timeout; NULL for the default */
};

/* The agent's summary line: "N reports (M observations) sent: ...". */
struct summary {
	unsigned long reports;
	unsigned long observations;
	unsigned long accepted;
	unsigned long duplicate;
	unsigned long rejected;
};

/* One line of `indicatorctl agents --json`. */
struct agent_row {
	unsigned long long last_seq;
	unsigned long long accepted;
	unsigned long long rejected;
};

/* One line of `indicatorctl query --json`; key is
 * district/industry/metric/period. */
struct obs_row {
	char key[4 * (IND_CODE_MAX + 1)];
	double value;
	char unit[IND_UNIT_MAX + 1];
	unsigned long revision;
};

struct obs_set {
	struct obs_row *v;
	size_t n;
};

/* The data rows of a CSV file, read with the agent's own parser. */
struct csv_rows {
	struct csv_row *v;
	size_t n;
	size_t cap;
};

static const struct canon {
	const char *unit;
	const char *canonical;
	double divisor;
} canons[] = {
	{ "CNY_100M", "CNY_100M", 1 },
	{ "CNY_10K", "CNY_100M", 10000 },
	{ "CNY", "CNY_100M", 100000000 },
	{ "count", "count", 1 },
};

/* The agents of tools/demo.sh, one per district. */
static const struct district_agent {
	const char *district;
	const char *id;
} sample_agents[] = {
	{ "320505", "huqiu-01" },
	{ "320506", "wuzhong-01" },
	{ "320507", "xiangcheng-01" },
	{ "320508", "gusu-01" },
	{ "320509", "wujiang-01" },
	{ "320576", "sip-01" },
	{ "320581", "changshu-01" },
	{ "320582", "zhangjiagang-01" },
	{ "320583", "kunshan-01" },
	{ "320585", "taicang-01" },
};
#define NSAMPLE (sizeof(sample_agents) / sizeof(sample_agents[0]))

static const char *const industries[] = { "materials", "photonics", "metaverse",
	"hydrogen", "digifin", "cellgene", "aerospace", "quantum" };
#define NINDUSTRIES (sizeof(industries) / sizeof(industries[0]))
static const char *const metrics[] = { "output_value", "innovation_platforms",
	"chain_leaders", "pilot_parks", "core_products", "app_scenarios" };
#define NMETRICS (sizeof(metrics) / sizeof(metrics[0]))
#define BIG_KEYS (NINDUSTRIES * NMETRICS * BIG_PERIODS)

static struct daemon_proc dm;
static char *work;
/* Agents started in the background and not yet waited for: a failed test
 * kills them in the teardown. */
static pid_t kids[KIDS_MAX];

static void
work_path(char *buf, size_t len, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", work, name);

	ck_assert(n > 0 && (size_t)n < len);
}

static void
setup_dirs(void)
{
	memset(kids, 0, sizeof(kids));
	work = harness_tmpdir();
}

/* A daemon prepared but not started: an agent finds nobody listening. */
static void
setup_idle(void)
{
	setup_dirs();
	harness_daemon_init(&dm, NULL);
}

static void
setup(void)
{
	setup_idle();
	harness_daemon_start(&dm);
}

/* Small write transactions, so a stream of reports takes many commits. */
static void
setup_small_batches(void)
{
	setup_dirs();
	harness_daemon_init(&dm, "[daemon]\nbatch_max = 10\n");
	harness_daemon_start(&dm);
}

/* A daemon still running must stop cleanly on SIGTERM. */
static void
teardown(void)
{
	int status;

	for (size_t i = 0; i < KIDS_MAX; i++) {
		if (kids[i] <= 0)
			continue;
		kill(kids[i], SIGKILL);
		while (waitpid(kids[i], &status, 0) == -1 && errno == EINTR)
			;
		kids[i] = 0;
	}
	if (dm.pid > 0) {
		kill(dm.pid, SIGCONT);
		status = harness_daemon_stop(&dm, SIGTERM);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "indicatord did not exit 0 on SIGTERM (status %d)", status);
	}
	harness_daemon_cleanup(&dm);
	harness_rmtree(work);
	free(work);
	work = NULL;
}

static void
kid_add(pid_t pid)
{
	for (size_t i = 0; i < KIDS_MAX; i++) {
		if (kids[i] == 0) {
			kids[i] = pid;
			return;
		}
	}
	ck_abort_msg("check_agent: too many background agents");
}

static void
kid_forget(pid_t pid)
{
	for (size_t i = 0; i < KIDS_MAX; i++)
		if (kids[i] == pid)
			kids[i] = 0;
}

static void
agent_spec_init(struct agent_spec *ag, const char *id, const char *district,
    const char *outbox)
{
	memset(ag, 0, sizeof(*ag));
	ag->id = id;
	ag->district = district;
	work_path(ag->outbox, sizeof(ag->outbox), outbox);
}

/* The agent's argv for cmd and the NULL-terminated files (files may be
 * NULL). */
static void
agent_argv(const char *argv[ARGV_MAX], const struct agent_spec *ag,
    const char *cmd, const char *const files[])
{
	size_t n = 0;

	argv[n++] = AGENT_BIN;
	if (ag->conf[0] != '\0') {
		argv[n++] = "-c";
		argv[n++] = ag->conf;
	}
	argv[n++] = "--id";
	argv[n++] = ag->id;
	argv[n++] = "--district";
	argv[n++] = ag->district;
	argv[n++] = "--endpoint";
	argv[n++] = dm.ingest;
	argv[n++] = "--outbox";
	argv[n++] = ag->outbox;
	argv[n++] = "--timeout";
	argv[n++] = AGENT_TIMEOUT;
	if (ag->ack_timeout != NULL) {
		argv[n++] = "--ack-timeout";
		argv[n++] = ag->ack_timeout;
	}
	argv[n++] = cmd;
	for (size_t i = 0; files != NULL && files[i] != NULL; i++) {
		ck_assert_uint_lt(n, ARGV_MAX - 1);
		argv[n++] = files[i];
	}
	argv[n] = NULL;
}

/* Runs the agent to completion; returns its exit code. */
static int
agent_run(const struct agent_spec *ag, const char *cmd,
    const char *const files[], char **out, char **err)
{
	const char *argv[ARGV_MAX];

	agent_argv(argv, ag, cmd, files);
	return harness_run(argv, out, err, RUN_TIMEOUT_S);
}

static pid_t
agent_spawn(
    const struct agent_spec *ag, const char *const files[], const char *log)
{
	const char *argv[ARGV_MAX];
	pid_t pid;

	agent_argv(argv, ag, "send", files);
	pid = harness_spawn(argv, log);
	kid_add(pid);
	return pid;
}

static int
agent_wait(pid_t pid)
{
	int rc = harness_wait(pid, RUN_TIMEOUT_S);

	kid_forget(pid);
	return rc;
}

/* The last summary line in text; false when there is none. */
static bool
summary_parse(const char *text, struct summary *s)
{
	static const char head[] = "agent: ";
	bool found = false;

	for (const char *p = strstr(text, head); p != NULL;
	     p = strstr(p + 1, head)) {
		struct summary t;

		if (sscanf(p,
			"agent: %lu reports (%lu observations) "
			"sent: %lu accepted, %lu duplicate, %lu rejected",
			&t.reports, &t.observations, &t.accepted, &t.duplicate,
			&t.rejected) == 5) {
			*s = t;
			found = true;
		}
	}
	return found;
}

static struct summary
summary_of(const char *text)
{
	struct summary s;

	ck_assert_msg(summary_parse(text, &s), "no summary line in: %s", text);
	return s;
}

/* "name: N" in the output of `indicator-agent status`. */
static unsigned long
status_field(const char *out, const char *name)
{
	char pat[32];
	const char *p;

	snprintf(pat, sizeof(pat), "\n%s: ", name);
	p = strstr(out, pat);
	ck_assert_msg(p != NULL, "no '%s' in status: %s", name, out);
	return strtoul(p + strlen(pat), NULL, 10);
}

/* Runs `status`; returns its output (caller frees) and the counts. */
static char *
agent_status(
    const struct agent_spec *ag, unsigned long *pending, unsigned long *dead)
{
	char *out, *err;
	int rc;

	rc = agent_run(ag, "status", NULL, &out, &err);
	ck_assert_msg(rc == 0, "status exited %d: %s", rc, err);
	free(err);
	*pending = status_field(out, "pending");
	*dead = status_field(out, "dead");
	return out;
}

/* Fails unless the outbox of ag has nothing pending and nothing dead. */
static void
expect_outbox_empty(const struct agent_spec *ag)
{
	unsigned long pending, dead;
	char *out = agent_status(ag, &pending, &dead);

	ck_assert_msg(pending == 0 && dead == 0, "%s: %s", ag->id, out);
	free(out);
}

/*
 * Runs indicatorctl -d DATA with args (NULL-terminated) and returns its
 * standard output; fails the test unless it exits 0.
 */
static char *
ctl(const char *const args[])
{
	return harness_ctl(dm.data_dir, args, CTL_TIMEOUT_S);
}

/*
 * Copies the next line of text that is not blank into buf (without its
 * newline) and moves *p past it; false at the end of text. Working on a
 * copy keeps the string functions from scanning the rest of a large output
 * at each call.
 */
static bool
line_next(const char **p, char *buf, size_t len)
{
	for (;;) {
		const char *q = *p;
		size_t n = 0;

		if (*q == '\0')
			return false;
		while (q[n] != '\0' && q[n] != '\n')
			n++;
		*p = q[n] == '\n' ? q + n + 1 : q + n;
		if (strspn(q, " \t\r") >= n)
			continue;
		ck_assert_msg(n < len, "line too long: %.100s", q);
		memcpy(buf, q, n);
		buf[n] = '\0';
		return true;
	}
}

/* The line of `agents --json` for id; false when it is not listed. */
static bool
agents_find(const char *text, const char *id, struct agent_row *r)
{
	char line[LINE_MAX_LEN], v[96];

	while (line_next(&text, line, sizeof(line))) {
		if (!harness_json_get(line, "agent_id", v, sizeof(v)) ||
		    strcmp(v, id) != 0)
			continue;
		ck_assert(harness_json_get(line, "last_seq", v, sizeof(v)));
		r->last_seq = strtoull(v, NULL, 10);
		ck_assert(harness_json_get(line, "accepted", v, sizeof(v)));
		r->accepted = strtoull(v, NULL, 10);
		ck_assert(harness_json_get(line, "rejected", v, sizeof(v)));
		r->rejected = strtoull(v, NULL, 10);
		return true;
	}
	return false;
}

static char *
ctl_agents(void)
{
	static const char *const args[] = { "agents", "--json", NULL };

	return ctl(args);
}

/* The daemon's view of one agent; fails when it is not listed. */
static struct agent_row
agent_row_of(const char *id)
{
	struct agent_row r;
	char *out = ctl_agents();

	ck_assert_msg(
	    agents_find(out, id, &r), "%s not in agents: %s", id, out);
	free(out);
	return r;
}

static int
obs_row_cmp(const void *a, const void *b)
{
	return strcmp(
	    ((const struct obs_row *)a)->key, ((const struct obs_row *)b)->key);
}

/* Everything stored, from `indicatorctl query --json`, sorted by key. */
static void
obs_set_load(struct obs_set *s)
{
	static const char *const args[] = { "query", "--json", NULL };
	char *out = ctl(args);
	const char *text = out;
	size_t cap = harness_count_lines(out);
	char line[LINE_MAX_LEN], v[64];
	char d[IND_CODE_MAX + 1], i[IND_CODE_MAX + 1], m[IND_CODE_MAX + 1];
	char p[IND_PERIOD_MAX + 1];

	s->v = xcalloc(cap > 0 ? cap : 1, sizeof(*s->v));
	s->n = 0;
	while (line_next(&text, line, sizeof(line))) {
		struct obs_row *r = &s->v[s->n++];

		ck_assert_uint_le(s->n, cap);
		ck_assert_msg(
		    harness_json_get(line, "district", d, sizeof(d)) &&
			harness_json_get(line, "industry", i, sizeof(i)) &&
			harness_json_get(line, "metric", m, sizeof(m)) &&
			harness_json_get(line, "period", p, sizeof(p)) &&
			harness_json_get(
			    line, "unit", r->unit, sizeof(r->unit)) &&
			harness_json_get(line, "value", v, sizeof(v)),
		    "query line without its key or value: %s", line);
		snprintf(r->key, sizeof(r->key), "%s/%s/%s/%s", d, i, m, p);
		r->value = strtod(v, NULL);
		ck_assert_msg(harness_json_get(line, "revision", v, sizeof(v)),
		    "query line without a revision: %s", line);
		r->revision = strtoul(v, NULL, 10);
	}
	free(out);
	qsort(s->v, s->n, sizeof(*s->v), obs_row_cmp);
	for (size_t k = 1; k < s->n; k++)
		ck_assert_msg(strcmp(s->v[k - 1].key, s->v[k].key) != 0,
		    "query lists %s twice", s->v[k].key);
}

static void
obs_set_free(struct obs_set *s)
{
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static const struct obs_row *
obs_set_find(const struct obs_set *s, const char *key)
{
	struct obs_row k;

	ck_assert(strlcpy_ok(k.key, key, sizeof(k.key)));
	return bsearch(&k, s->v, s->n, sizeof(*s->v), obs_row_cmp);
}

/* How many stored keys have this revision. */
static size_t
obs_set_count_revision(const struct obs_set *s, unsigned long revision)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].revision == revision)
			n++;
	return n;
}

/* How many stored keys belong to district. */
static size_t
obs_set_count_district(const struct obs_set *s, const char *district)
{
	size_t n = 0, len = strlen(district);

	for (size_t i = 0; i < s->n; i++)
		if (strncmp(s->v[i].key, district, len) == 0 &&
		    s->v[i].key[len] == '/')
			n++;
	return n;
}

static int
rows_add(const struct csv_row *row, void *arg)
{
	struct csv_rows *r = arg;

	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 256;
		r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
	}
	r->v[r->n++] = *row;
	return 0;
}

/* Reads the rows of a CSV file that the test wrote or generated. */
static void
rows_read(const char *path, struct csv_rows *r)
{
	struct csv_parser *p = csv_new(rows_add, r);
	char *text = harness_read_file(path);

	ck_assert_msg(text != NULL, "%s does not exist", path);
	r->v = NULL;
	r->n = r->cap = 0;
	ck_assert_msg(
	    csv_feed(p, text, strlen(text)) == 0 && csv_finish(p) == 0,
	    "%s: line %u: %s", path, csv_error_line(p), csv_error(p));
	csv_destroy(&p);
	free(text);
}

static void
rows_free(struct csv_rows *r)
{
	free(r->v);
	r->v = NULL;
	r->n = r->cap = 0;
}

static void
row_key(char *buf, size_t len, const char *district, const struct csv_row *row)
{
	int n = snprintf(buf, len, "%s/%s/%s/%s", district, row->industry,
	    row->metric, row->period);

	ck_assert(n > 0 && (size_t)n < len);
}

/*
 * Fails unless every row is stored for district with its value converted
 * to the canonical unit (10000 CNY_10K = 1 CNY_100M) and the given
 * revision.
 */
static void
expect_rows_stored(const struct obs_set *s, const char *district,
    const struct csv_rows *rows, unsigned long revision)
{
	char key[sizeof(((struct obs_row *)NULL)->key)];

	for (size_t i = 0; i < rows->n; i++) {
		const struct csv_row *row = &rows->v[i];
		const struct canon *c = NULL;
		const struct obs_row *o;
		double want;

		for (size_t k = 0; k < sizeof(canons) / sizeof(canons[0]); k++)
			if (strcmp(canons[k].unit, row->unit) == 0)
				c = &canons[k];
		ck_assert_msg(
		    c != NULL, "line %u: unit %s", row->line, row->unit);
		row_key(key, sizeof(key), district, row);
		o = obs_set_find(s, key);
		ck_assert_msg(
		    o != NULL, "%s (line %u) is not stored", key, row->line);
		want = row->value / c->divisor;
		ck_assert_msg(
		    fabs(o->value - want) <= 1e-9 * fmax(1, fabs(want)),
		    "%s: stored %.17g, the file has %.17g %s = %.17g %s", key,
		    o->value, row->value, row->unit, want, c->canonical);
		ck_assert_msg(strcmp(o->unit, c->canonical) == 0,
		    "%s: stored in %s, want %s", key, o->unit, c->canonical);
		ck_assert_msg(o->revision == revision,
		    "%s: revision %lu, want %lu", key, o->revision, revision);
	}
}

/* The history of one key, from `indicatorctl history --json`; caller
 * frees. */
static char *
ctl_history(const char *district, const struct csv_row *row)
{
	const char *args[] = { "history", district, row->industry, row->metric,
		row->period, "--json", NULL };

	return ctl(args);
}

/* Fails unless log gets needle before pid exits or a minute passes. */
static void
wait_log(pid_t pid, const char *log, const char *needle)
{
	int64_t deadline = harness_now_ms() + POLL_TIMEOUT_MS;
	char *text;
	int status;

	for (;;) {
		text = harness_read_file(log);
		if (text != NULL && strstr(text, needle) != NULL)
			break;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			kid_forget(pid);
			ck_abort_msg("agent exited (status %d) before saying "
				     "'%s': %s",
			    status, needle, text != NULL ? text : "");
		}
		ck_assert_msg(harness_now_ms() < deadline, "no '%s' in %s: %s",
		    needle, log, text != NULL ? text : "");
		free(text);
		harness_sleep_ms(10);
	}
	free(text);
}

static void
write_agent_conf(struct agent_spec *ag, const char *name, const char *text)
{
	work_path(ag->conf, sizeof(ag->conf), name);
	harness_write_file(ag->conf, text);
}

/*
 * Writes a CSV of n different keys of one district (n <= BIG_KEYS): every
 * industry and metric over the months, quarters and years from 2015 to
 * 2025, output value in 万元.
 */
static void
big_csv_write(const char *path, size_t n)
{
	FILE *f = fopen(path, "w");
	size_t row = 0;

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_uint_le(n, BIG_KEYS);
	fprintf(f, "industry,metric,period,value,unit\n");
	for (int y = BIG_YEAR0; y < BIG_YEAR0 + BIG_YEARS && row < n; y++) {
		for (int p = 0; p < 17 && row < n; p++) {
			char period[IND_PERIOD_MAX + 1];

			if (p < 12)
				snprintf(period, sizeof(period), "%d-%02d", y,
				    p + 1);
			else if (p < 16)
				snprintf(period, sizeof(period), "%d-Q%d", y,
				    p - 11);
			else
				snprintf(period, sizeof(period), "%d", y);
			for (size_t i = 0; i < NINDUSTRIES && row < n; i++) {
				for (size_t m = 0; m < NMETRICS && row < n;
				     m++, row++) {
					bool money = m == 0;

					fprintf(f, "%s,%s,%s,%zu,%s\n",
					    industries[i], metrics[m], period,
					    money ? 1000 + row % 9000
						  : 1 + row % 97,
					    money ? "CNY_10K" : "count");
				}
			}
		}
	}
	ck_assert_msg(fclose(f) == 0, "%s: %s", path, strerror(errno));
	ck_assert_uint_eq(row, n);
}

/* Generates the sample data into work/sample. */
static void
sample_generate(void)
{
	char dir[700];
	const char *argv[] = { GEN_SAMPLE_BIN, dir, NULL };
	char *err;
	int rc;

	work_path(dir, sizeof(dir), "sample");
	rc = harness_run(argv, NULL, &err, RUN_TIMEOUT_S);
	ck_assert_msg(rc == 0, "gen-sample exited %d: %s", rc, err);
	free(err);
}

static void
sample_path(char *buf, size_t len, const char *district)
{
	char name[64];

	snprintf(name, sizeof(name), "sample/%s.csv", district);
	work_path(buf, len, name);
}

/*
 * The demo: ten agents, one per district, each with its own outbox, send
 * the sample data at the same time; every row is stored once, in canonical
 * units.
 */
START_TEST(test_sample_delivered)
{
	struct agent_spec ag[NSAMPLE];
	char csv[NSAMPLE][700], log[NSAMPLE][700], name[64], dir[700];
	pid_t pid[NSAMPLE];
	struct obs_set s;
	struct csv_rows rows;
	size_t total = 0, histories = 0;
	char *out, *text;

	sample_generate();
	work_path(dir, sizeof(dir), "outbox");
	ck_assert_msg(mkdir(dir, 0700) == 0, "%s: %s", dir, strerror(errno));
	for (size_t i = 0; i < NSAMPLE; i++) {
		const char *files[] = { csv[i], NULL };

		snprintf(
		    name, sizeof(name), "outbox/%s", sample_agents[i].district);
		agent_spec_init(&ag[i], sample_agents[i].id,
		    sample_agents[i].district, name);
		sample_path(csv[i], sizeof(csv[i]), sample_agents[i].district);
		snprintf(name, sizeof(name), "agent-%s.log",
		    sample_agents[i].district);
		work_path(log[i], sizeof(log[i]), name);
		pid[i] = agent_spawn(&ag[i], files, log[i]);
	}
	for (size_t i = 0; i < NSAMPLE; i++) {
		int rc = agent_wait(pid[i]);

		text = harness_read_file(log[i]);
		ck_assert_msg(rc == 0, "%s exited %d: %s", ag[i].id, rc, text);
		free(text);
	}

	obs_set_load(&s);
	out = ctl_agents();
	for (size_t i = 0; i < NSAMPLE; i++) {
		struct agent_row r;
		size_t reports;

		rows_read(csv[i], &rows);
		total += rows.n;
		expect_rows_stored(&s, ag[i].district, &rows, 1);
		ck_assert_uint_eq(
		    obs_set_count_district(&s, ag[i].district), rows.n);

		reports = (rows.n + 49) / 50; /* report_size 50 by default */
		ck_assert_msg(agents_find(out, ag[i].id, &r),
		    "%s not in agents: %s", ag[i].id, out);
		ck_assert_msg(r.last_seq == reports && r.rejected == 0,
		    "%s: last seq %llu, %llu rejected; want %zu, 0", ag[i].id,
		    r.last_seq, r.rejected, reports);

		/* A few histories: the first, a middle and the last row. */
		for (size_t k = 0; k < 3; k++) {
			const struct csv_row *row =
			    &rows.v[k * (rows.n - 1) / 2];
			char *h = ctl_history(ag[i].district, row);

			ck_assert_msg(harness_count_lines(h) == 1,
			    "%s/%s/%s/%s: history %s", ag[i].district,
			    row->industry, row->metric, row->period, h);
			free(h);
			histories++;
		}
		rows_free(&rows);
		expect_outbox_empty(&ag[i]);
	}
	ck_assert_uint_eq(total, 2720);
	ck_assert_uint_eq(s.n, 2720);
	ck_assert_uint_eq(obs_set_count_revision(&s, 1), s.n);
	ck_assert_msg(harness_count_lines(out) == NSAMPLE, "agents: %s", out);
	printf("check_agent: sample: %zu agents, %zu rows in the files, %zu "
	       "stored, %zu at revision 1, %zu histories of 1 revision\n",
	    harness_count_lines(out), total, s.n, obs_set_count_revision(&s, 1),
	    histories);
	free(out);
	obs_set_free(&s);
}
END_TEST

/*
 * Sending a file again is not a duplicate: the agent enqueues it as new
 * reports with new seqs, which the daemon ACCEPTS as a revision of every
 * key with the same value (history gets revision 2). DUPLICATE is only for
 * a report (agent, epoch, seq) the daemon already has.
 */
START_TEST(test_resend_is_revision)
{
	struct agent_spec ag;
	char csv[700];
	const char *files[] = { csv, NULL };
	struct csv_rows rows;
	struct summary sum;
	struct obs_set s;
	struct agent_row r;
	size_t reports;
	char *err, *h;
	int rc;

	sample_generate();
	sample_path(csv, sizeof(csv), "320507"); /* money in 万元 */
	agent_spec_init(&ag, "xiangcheng-01", "320507", "outbox");
	rows_read(csv, &rows);
	reports = (rows.n + 49) / 50;

	for (unsigned long pass = 1; pass <= 2; pass++) {
		rc = agent_run(&ag, "send", files, NULL, &err);
		ck_assert_msg(rc == 0, "send %lu exited %d: %s", pass, rc, err);
		sum = summary_of(err);
		ck_assert_msg(
		    sum.reports == reports && sum.accepted == reports &&
			sum.rejected == 0 && sum.observations == rows.n,
		    "send %lu: %s", pass, err);
		free(err);

		obs_set_load(&s);
		ck_assert_uint_eq(s.n, rows.n);
		expect_rows_stored(&s, "320507", &rows, pass);
		obs_set_free(&s);
	}
	r = agent_row_of("xiangcheng-01");
	ck_assert_uint_eq(r.last_seq, 2 * reports);
	h = ctl_history("320507", &rows.v[0]);
	ck_assert_msg(harness_count_lines(h) == 2, "history: %s", h);
	printf("check_agent: resend: %zu rows sent twice in %zu + %zu reports, "
	       "all at revision 2, last seq %llu, history of %zu revisions\n",
	    rows.n, reports, reports, r.last_seq, harness_count_lines(h));
	free(h);
	rows_free(&rows);
	expect_outbox_empty(&ag);
}
END_TEST

/* A bad line keeps its whole file out; a good file in the same command is
 * sent. */
START_TEST(test_bad_line)
{
	struct agent_spec ag;
	char bad[700], good[700];
	const char *files[] = { bad, good, NULL };
	struct obs_set s;
	struct csv_rows rows;
	char *err, want[800];
	int rc;

	work_path(bad, sizeof(bad), "bad.csv");
	work_path(good, sizeof(good), "good.csv");
	harness_write_file(bad, "industry,metric,period,value,unit\n"
				"photonics,output_value,2021,1.5,CNY_100M\n"
				"photonics,output_value,2022,2.5,CNY_100M\n"
				"photonics,output_value,2023,abc,CNY_100M\n"
				"photonics,output_value,2024,4.5,CNY_100M\n");
	harness_write_file(good,
	    "industry,metric,period,value,unit\n"
	    "materials,output_value,2021,10,CNY_100M\n"
	    "materials,chain_leaders,2021,2,count\n"
	    "materials,output_value,2022,120000,CNY_10K\n");
	agent_spec_init(&ag, "kunshan-01", "320583", "outbox");

	rc = agent_run(&ag, "send", files, NULL, &err);
	ck_assert_msg(rc == 1, "exited %d, want 1: %s", rc, err);
	snprintf(
	    want, sizeof(want), "%s:4:4: value 'abc' is not a number", bad);
	ck_assert_msg(strstr(err, want) != NULL, "no '%s' in: %s", want, err);
	free(err);

	obs_set_load(&s);
	ck_assert_uint_eq(obs_set_count_district(&s, "320583"), 3);
	ck_assert_uint_eq(s.n, 3);
	rows_read(good, &rows);
	expect_rows_stored(&s, "320583", &rows, 1);
	rows_free(&rows);
	for (size_t i = 0; i < s.n; i++)
		ck_assert_msg(strstr(s.v[i].key, "photonics") == NULL,
		    "%s from the bad file is stored", s.v[i].key);
	printf("check_agent: bad line: 0 of 4 rows of the bad file stored, %zu "
	       "of 3 of the good one\n",
	    s.n);
	obs_set_free(&s);
	expect_outbox_empty(&ag);
}
END_TEST

/*
 * A report with an unknown industry is REJECTED and kept as a dead letter,
 * and with it the whole file (docs/protocol.md, "File transactions"): the
 * report before it, staged at the daemon, is not stored either. A later
 * send does not try the dead one again.
 */
START_TEST(test_rejected_report)
{
	struct agent_spec ag;
	char csv[700];
	const char *files[] = { csv, NULL };
	unsigned long pending, dead;
	struct agent_row r;
	struct summary sum;
	struct obs_set s;
	char *err, *out, *log, want[1000];
	size_t rejections;
	int rc;

	work_path(csv, sizeof(csv), "kunshan.csv");
	/* Two rows a report: seq 1 is rows 1-2, seq 2 rows 3-4. */
	harness_write_file(csv, "industry,metric,period,value,unit\n"
				"photonics,output_value,2021,1.5,CNY_100M\n"
				"photonics,output_value,2022,2.5,CNY_100M\n"
				"nanotech,output_value,2024,3.5,CNY_100M\n"
				"photonics,output_value,2024,4.5,CNY_100M\n");
	agent_spec_init(&ag, "kunshan-01", "320583", "outbox");
	write_agent_conf(&ag, "agent.conf", "[agent]\nreport_size = 2\n");

	rc = agent_run(&ag, "send", files, NULL, &err);
	ck_assert_msg(rc == 1, "exited %d, want 1: %s", rc, err);
	snprintf(want, sizeof(want),
	    "%s:4:1: industry 'nanotech' is not in the daemon's registry; "
	    "write one of: materials (前沿新材料), ",
	    csv);
	ck_assert_msg(
	    strstr(err, want) != NULL &&
		strstr(err, "refused the file at part 2 of 2 (report seq 2, "
			    "lines 4 to 5): nothing of this file is "
			    "stored") != NULL,
	    "the rejection is not explained: %s", err);
	sum = summary_of(err);
	ck_assert_msg(
	    sum.reports == 2 && sum.accepted == 0 && sum.rejected == 2, "%s",
	    err);
	free(err);

	out = agent_status(&ag, &pending, &dead);
	ck_assert_msg(pending == 0 && dead == 1, "status: %s", out);
	ck_assert_msg(strstr(out, "dead report seq 2") != NULL &&
			  strstr(out, want) != NULL,
	    "status does not show the dead letter: %s", out);
	free(out);

	obs_set_load(&s);
	ck_assert_msg(
	    s.n == 0, "want nothing of the file stored, have %zu", s.n);
	obs_set_free(&s);
	r = agent_row_of("kunshan-01");
	ck_assert_uint_eq(r.last_seq, 2);
	ck_assert_uint_eq(r.rejected, 2);
	log = harness_daemon_log(&dm);
	rejections = harness_count_str(log, "rejected report");
	free(log);
	ck_assert_uint_eq(rejections, 1);

	/* Nothing pending: nothing is sent, the dead letter stays. */
	rc = agent_run(&ag, "send", NULL, NULL, &err);
	ck_assert_msg(rc == 0, "second send exited %d: %s", rc, err);
	sum = summary_of(err);
	ck_assert_msg(sum.reports == 0, "second send: %s", err);
	free(err);
	r = agent_row_of("kunshan-01");
	ck_assert_uint_eq(r.last_seq, 2);
	ck_assert_uint_eq(r.rejected, 2);
	log = harness_daemon_log(&dm);
	ck_assert_uint_eq(
	    harness_count_str(log, "rejected report"), rejections);
	free(log);
	obs_set_load(&s);
	ck_assert_uint_eq(s.n, 0);
	obs_set_free(&s);
	out = agent_status(&ag, &pending, &dead);
	ck_assert_msg(pending == 0 && dead == 1, "status: %s", out);
	free(out);
	printf("check_agent: rejected: a file of 2 reports refused whole at "
	       "its second (0 rows stored), 1 dead letter, daemon rejected "
	       "count %llu after a second send\n",
	    r.rejected);
}
END_TEST

/* An agent started before the daemon waits for it, then delivers. */
START_TEST(test_daemon_down_at_first)
{
	struct agent_spec ag;
	char csv[700], log[700];
	const char *files[] = { csv, NULL };
	struct csv_rows rows;
	struct obs_set s;
	struct summary sum;
	pid_t pid;
	char *text;
	int rc;

	work_path(csv, sizeof(csv), "big.csv");
	work_path(log, sizeof(log), "agent.log");
	big_csv_write(csv, 500);
	agent_spec_init(&ag, "kunshan-01", "320583", "outbox");
	ag.ack_timeout = ACK_TIMEOUT;

	pid = agent_spawn(&ag, files, log);
	wait_log(pid, log, "waiting for daemon");
	harness_daemon_start(&dm);
	rc = agent_wait(pid);
	text = harness_read_file(log);
	ck_assert_msg(rc == 0, "agent exited %d: %s", rc, text);
	sum = summary_of(text);
	free(text);

	rows_read(csv, &rows);
	obs_set_load(&s);
	ck_assert_uint_eq(s.n, rows.n);
	expect_rows_stored(&s, "320583", &rows, 1);
	ck_assert_uint_eq(agent_row_of("kunshan-01").last_seq, 10);
	printf("check_agent: daemon down at first: %zu rows, %lu reports "
	       "accepted, %lu duplicate, %zu stored at revision 1\n",
	    rows.n, sum.accepted, sum.duplicate, obs_set_count_revision(&s, 1));
	obs_set_free(&s);
	rows_free(&rows);
	expect_outbox_empty(&ag);
}
END_TEST

static const struct stop_case {
	const char *name;
	int sig;
} stop_cases[] = {
	{ "SIGTERM", SIGTERM },
	{ "SIGKILL", SIGKILL },
};
#define NSTOP (sizeof(stop_cases) / sizeof(stop_cases[0]))

/*
 * The daemon stops (cleanly or killed) while an agent streams a big file
 * and comes back on the same store and port: the agent resends what was
 * not acknowledged, and every row ends up stored exactly once. Acked
 * reports were committed: none is lost, none is stored twice.
 */
START_TEST(test_daemon_stopped_mid_stream)
{
	const struct stop_case *c = &stop_cases[_i];
	const size_t nrows = BIG_KEYS;
	const size_t reports = (nrows + BIG_REPORT_SIZE - 1) / BIG_REPORT_SIZE;
	struct agent_spec ag;
	char csv[700], log[700];
	const char *files[] = { csv, NULL };
	struct agent_row r = { 0, 0, 0 };
	struct csv_rows rows;
	struct obs_set s;
	struct summary sum;
	unsigned long long acked_at_stop;
	int64_t deadline = harness_now_ms() + POLL_TIMEOUT_MS;
	bool done_early = false;
	int status, rc = -1;
	char *text;
	pid_t pid;

	work_path(csv, sizeof(csv), "big.csv");
	work_path(log, sizeof(log), "agent.log");
	big_csv_write(csv, nrows);
	agent_spec_init(&ag, "kunshan-01", "320583", "outbox");
	ag.ack_timeout = ACK_TIMEOUT;
	write_agent_conf(
	    &ag, "agent.conf", "[agent]\nreport_size = 10\nwindow = 50\n");

	pid = agent_spawn(&ag, files, log);
	/* Stop the daemon once some reports are acknowledged. */
	for (;;) {
		char *out = ctl_agents();
		bool listed = agents_find(out, "kunshan-01", &r);

		free(out);
		if (listed && r.last_seq > 0)
			break;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			kid_forget(pid);
			rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
			done_early = true;
			break;
		}
		ck_assert_msg(harness_now_ms() < deadline,
		    "no report acknowledged within a minute");
		harness_sleep_ms(2);
	}
	status = harness_daemon_stop(&dm, c->sig);
	if (c->sig == SIGTERM)
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "indicatord did not exit 0 on SIGTERM (status %d)", status);
	else
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == c->sig,
		    "indicatord was not killed (status %d)", status);
	acked_at_stop = agent_row_of("kunshan-01").last_seq;

	harness_daemon_start(&dm);
	if (!done_early)
		rc = agent_wait(pid);
	text = harness_read_file(log);
	ck_assert_msg(rc == 0, "agent exited %d: %s", rc, text);
	sum = summary_of(text);
	free(text);

	rows_read(csv, &rows);
	obs_set_load(&s);
	ck_assert_uint_eq(s.n, nrows);
	expect_rows_stored(&s, "320583", &rows, 1);
	for (size_t k = 0; k < 3; k++) {
		char *h = ctl_history("320583", &rows.v[k * (rows.n - 1) / 2]);

		ck_assert_msg(harness_count_lines(h) == 1, "history: %s", h);
		free(h);
	}
	r = agent_row_of("kunshan-01");
	ck_assert_uint_eq(r.last_seq, reports);
	ck_assert_uint_eq(r.accepted, reports);
	ck_assert_uint_eq(r.rejected, 0);
	ck_assert_uint_eq(sum.accepted + sum.duplicate, reports);
	printf("check_agent: daemon %s mid-stream: %zu rows in %zu reports; "
	       "%llu committed when it stopped%s; agent: %lu accepted, %lu "
	       "duplicate; stored %zu rows, %zu at revision 1, last seq %llu\n",
	    c->name, nrows, reports, acked_at_stop,
	    done_early ? " (the agent had already finished: the stop "
			 "interrupted nothing)"
		       : "",
	    sum.accepted, sum.duplicate, s.n, obs_set_count_revision(&s, 1),
	    r.last_seq);
	obs_set_free(&s);
	rows_free(&rows);
	expect_outbox_empty(&ag);
}
END_TEST

/*
 * SIGTERM to an agent that waits for acks leaves its reports pending (exit
 * 3); a later send with no files delivers them, each key once. The daemon
 * is frozen (SIGSTOP) for the first send, so the agent is surely mid-flush;
 * the reports it had sent may still reach the daemon after it thaws, and
 * the second send gets DUPLICATE for those.
 */
START_TEST(test_agent_stopped_mid_flush)
{
	const size_t nrows = 1000;
	const size_t reports = (nrows + BIG_REPORT_SIZE - 1) / BIG_REPORT_SIZE;
	struct agent_spec ag;
	char csv[700], log[700];
	const char *files[] = { csv, NULL };
	unsigned long pending, dead;
	struct csv_rows rows;
	struct obs_set s;
	struct summary sum;
	char *text, *err;
	pid_t pid;
	int rc;

	work_path(csv, sizeof(csv), "big.csv");
	work_path(log, sizeof(log), "agent.log");
	big_csv_write(csv, nrows);
	agent_spec_init(&ag, "kunshan-01", "320583", "outbox");
	ag.ack_timeout = ACK_TIMEOUT;
	write_agent_conf(
	    &ag, "agent.conf", "[agent]\nreport_size = 10\nwindow = 50\n");

	ck_assert(kill(dm.pid, SIGSTOP) == 0);
	pid = agent_spawn(&ag, files, log);
	wait_log(pid, log, "waiting for daemon");
	ck_assert(kill(pid, SIGTERM) == 0);
	rc = agent_wait(pid);
	text = harness_read_file(log);
	ck_assert_msg(
	    rc == 3, "agent exited %d on SIGTERM, want 3: %s", rc, text);
	ck_assert_msg(strstr(text, "left pending") != NULL, "%s", text);
	free(text);
	text = agent_status(&ag, &pending, &dead);
	ck_assert_msg(pending == reports && dead == 0, "status: %s", text);
	free(text);
	ck_assert(kill(dm.pid, SIGCONT) == 0);

	rc = agent_run(&ag, "send", NULL, NULL, &err);
	ck_assert_msg(rc == 0, "second send exited %d: %s", rc, err);
	sum = summary_of(err);
	free(err);
	ck_assert_uint_eq(sum.reports, pending);
	ck_assert_uint_eq(sum.accepted + sum.duplicate, pending);

	rows_read(csv, &rows);
	obs_set_load(&s);
	ck_assert_uint_eq(s.n, nrows);
	expect_rows_stored(&s, "320583", &rows, 1);
	ck_assert_uint_eq(agent_row_of("kunshan-01").last_seq, reports);
	printf("check_agent: agent stopped mid-flush: %lu of %zu reports "
	       "pending after SIGTERM; second send: %lu accepted, %lu "
	       "duplicate; stored %zu rows, %zu at revision 1\n",
	    pending, reports, sum.accepted, sum.duplicate, s.n,
	    obs_set_count_revision(&s, 1));
	obs_set_free(&s);
	rows_free(&rows);
	expect_outbox_empty(&ag);
}
END_TEST

/* One outbox, one process: a second agent on it is refused and adds
 * nothing to it. */
START_TEST(test_outbox_in_use)
{
	struct agent_spec ag;
	char csv[700], log[700];
	const char *files[] = { csv, NULL };
	unsigned long pending, dead;
	char *err, *out;
	pid_t pid;
	int rc;

	work_path(csv, sizeof(csv), "big.csv");
	work_path(log, sizeof(log), "agent.log");
	big_csv_write(csv, 100);
	agent_spec_init(&ag, "kunshan-01", "320583", "outbox");
	ag.ack_timeout = ACK_TIMEOUT;

	/* No daemon: the first agent holds the outbox while it waits. */
	pid = agent_spawn(&ag, files, log);
	wait_log(pid, log, "waiting for daemon");
	rc = agent_run(&ag, "send", files, NULL, &err);
	ck_assert_msg(rc == 1, "second agent exited %d, want 1: %s", rc, err);
	ck_assert_msg(strstr(err, "in use") != NULL, "%s", err);
	free(err);
	ck_assert(kill(pid, SIGTERM) == 0);
	ck_assert_int_eq(agent_wait(pid), 3);

	out = agent_status(&ag, &pending, &dead);
	ck_assert_msg(pending == 2 && dead == 0, "status: %s", out);
	free(out);
	printf("check_agent: outbox in use: second agent refused, %lu "
	       "reports pending (the first agent's only)\n",
	    pending);
}
END_TEST

static const struct usage_case {
	const char *name;
	const char *args[6]; /* after the common options */
	const char *message;
} usage_cases[] = {
	{ "no id", { "--district", "320583", "send", "x.csv", NULL },
	    "no agent id" },
	{ "no district", { "--id", "kunshan-01", "send", "x.csv", NULL },
	    "no district" },
	{ "no command", { "--id", "kunshan-01", "--district", "320583", NULL },
	    "usage" },
	{ "unknown command",
	    { "--id", "kunshan-01", "--district", "320583", "push", NULL },
	    "usage" },
	{ "status with a file", { "status", "x.csv", NULL }, "usage" },
	{ "window 0", { "--window", "0", "--id", "kunshan-01", "send", NULL },
	    "--window" },
};
#define NUSAGE (sizeof(usage_cases) / sizeof(usage_cases[0]))

/* Usage errors exit 2 with a message, before touching the outbox. */
START_TEST(test_usage)
{
	const struct usage_case *c = &usage_cases[_i];
	const char *argv[ARGV_MAX];
	char outbox[700];
	char *err;
	size_t n = 0;
	int rc;

	work_path(outbox, sizeof(outbox), "outbox");
	argv[n++] = AGENT_BIN;
	argv[n++] = "--outbox";
	argv[n++] = outbox;
	argv[n++] = "--endpoint";
	argv[n++] = dm.ingest;
	argv[n++] = "--timeout";
	argv[n++] = "1";
	for (size_t i = 0; c->args[i] != NULL; i++)
		argv[n++] = c->args[i];
	argv[n] = NULL;

	rc = harness_run(argv, NULL, &err, RUN_TIMEOUT_S);
	ck_assert_msg(rc == 2, "%s: exited %d, want 2: %s", c->name, rc, err);
	ck_assert_msg(strstr(err, c->message) != NULL, "%s: no '%s' in: %s",
	    c->name, c->message, err);
	free(err);
	ck_assert_msg(
	    access(outbox, F_OK) == -1, "%s: the outbox was created", c->name);
}
END_TEST

static Suite *
agent_suite(void)
{
	Suite *s = suite_create("agent");
	TCase *tc;

	tc = tcase_create("delivery");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_sample_delivered);
	tcase_add_test(tc, test_resend_is_revision);
	tcase_add_test(tc, test_bad_line);
	tcase_add_test(tc, test_rejected_report);
	tcase_add_test(tc, test_agent_stopped_mid_flush);
	suite_add_tcase(s, tc);

	tc = tcase_create("restart");
	tcase_add_checked_fixture(tc, setup_small_batches, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_daemon_stopped_mid_stream, 0, NSTOP);
	suite_add_tcase(s, tc);

	tc = tcase_create("no daemon");
	tcase_add_checked_fixture(tc, setup_idle, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_daemon_down_at_first);
	tcase_add_test(tc, test_outbox_in_use);
	tcase_add_loop_test(tc, test_usage, 0, NUSAGE);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(agent_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
