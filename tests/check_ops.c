/*
 * The operator's commands on a real daemon: agents deliver data as they do
 * in production, then indicatorctl answers who has not reported (expected),
 * checks the stored aggregates against the observations (verify), and
 * takes a backup while reports are being ingested (backup), which opens,
 * verifies and serves a restored daemon.
 */
#include <check.h>
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

#include "harness.h"
#include "indicator.pb-c.h"
#include "store.h"
#include "xmalloc.h"

#define RUN_TIMEOUT 120
#define NDISTRICTS 10

static const char *const districts[NDISTRICTS] = { "320505", "320506", "320507",
	"320508", "320509", "320576", "320581", "320582", "320583", "320585" };

/* The big file: every industry, metric and period of 2021-2025. */
static const char *const industries[] = { "materials", "photonics", "metaverse",
	"hydrogen", "digifin", "cellgene", "aerospace", "quantum" };
static const struct {
	const char *code;
	const char *unit;
} metrics[] = {
	{ "output_value", "CNY_100M" },
	{ "innovation_platforms", "count" },
	{ "chain_leaders", "count" },
	{ "pilot_parks", "count" },
	{ "core_products", "count" },
	{ "app_scenarios", "count" },
};
#define NIND (sizeof(industries) / sizeof(industries[0]))
#define NMET (sizeof(metrics) / sizeof(metrics[0]))
#define NPERIODS (5 + 5 * 4 + 5 * 12)
#define BIG_FILES 6

/* Runs indicatorctl with the daemon's configuration, on dir (NULL: the
 * daemon's data_dir), with the NULL-terminated args. */
static int
ctl_run(const struct daemon_proc *dm, const char *dir, const char *const args[],
    char **out, char **err)
{
	return harness_ctl_run(dm->conf, dir, args, out, err, RUN_TIMEOUT);
}

/* Starts the agent of district in the background, sending files. */
static pid_t
agent_spawn(const struct daemon_proc *dm, const char *district,
    const char *const files[], size_t nfiles)
{
	char id[64], outbox[700], log[700];
	const char *argv[32];
	size_t n = 0;

	snprintf(id, sizeof(id), "agent-%s", district);
	snprintf(outbox, sizeof(outbox), "%s/outbox-%s", dm->dir, district);
	snprintf(log, sizeof(log), "%s/agent-%s.log", dm->dir, district);
	argv[n++] = AGENT_BIN;
	argv[n++] = "--id";
	argv[n++] = id;
	argv[n++] = "--district";
	argv[n++] = district;
	argv[n++] = "--endpoint";
	argv[n++] = dm->ingest;
	argv[n++] = "--outbox";
	argv[n++] = outbox;
	argv[n++] = "--timeout";
	argv[n++] = "100";
	argv[n++] = "send";
	for (size_t i = 0; i < nfiles && n < 31; i++)
		argv[n++] = files[i];
	argv[n] = NULL;
	return harness_spawn(argv, log);
}

static void
agent_wait(const struct daemon_proc *dm, const char *district, pid_t pid)
{
	char log[700], *text;
	int rc = harness_wait(pid, RUN_TIMEOUT);

	snprintf(log, sizeof(log), "%s/agent-%s.log", dm->dir, district);
	text = harness_read_file(log);
	ck_assert_msg(rc == 0, "agent of %s exited %d: %s", district, rc,
	    text != NULL ? text : "");
	free(text);
}

/* The sample data of districts[first..last), sent by one agent each, in
 * parallel as in the demo. */
static void
deliver_sample(
    const struct daemon_proc *dm, const char *sample, size_t first, size_t last)
{
	pid_t pid[NDISTRICTS];
	char file[NDISTRICTS][1024];

	for (size_t d = first; d < last; d++) {
		const char *files[1];

		snprintf(file[d], sizeof(file[d]), "%s/%s.csv", sample,
		    districts[d]);
		files[0] = file[d];
		pid[d] = agent_spawn(dm, districts[d], files, 1);
	}
	for (size_t d = first; d < last; d++)
		agent_wait(dm, districts[d], pid[d]);
}

static void
gen_sample(const char *dir)
{
	const char *argv[] = { GEN_SAMPLE_BIN, dir, NULL };
	char *out, *err;

	ck_assert_int_eq(harness_run(argv, &out, &err, RUN_TIMEOUT), 0);
	free(out);
	free(err);
}

/* verify on dir passes, and says how many aggregates it checked. */
static unsigned long
verify_ok(const struct daemon_proc *dm, const char *dir)
{
	const char *args[] = { "verify", NULL };
	char *out, *err;
	unsigned long n = 0;
	int rc;

	rc = ctl_run(dm, dir, args, &out, &err);
	ck_assert_msg(rc == 0, "verify exited %d: %s%s", rc, out, err);
	ck_assert_msg(
	    sscanf(out, "verify: %lu aggregates checked, 0 differences\n",
		&n) == 1,
	    "verify said: %s", out);
	ck_assert_uint_eq(harness_count_newlines(out), 1);
	free(out);
	free(err);
	return n;
}

/* Changes the stored value of topic in the store at dir, which no daemon
 * is running on. */
static void
corrupt_aggregate(const char *dir, const char *topic)
{
	struct store_opts so = { 0 };
	struct store *s;
	struct store_txn *t;
	Indicator__Aggregate *a;
	const void *buf;
	uint8_t packed[1024];
	char err[256];
	size_t len;

	so.dir = dir;
	s = store_open(&so, err, sizeof(err));
	ck_assert_msg(s != NULL, "store_open: %s", err);
	t = store_txn_begin(s, true);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(store_agg_get(t, topic, &buf, &len), 0);
	a = indicator__aggregate__unpack(NULL, len, buf);
	ck_assert_ptr_nonnull(a);
	a->value += 0.5;
	ck_assert_uint_le(
	    indicator__aggregate__get_packed_size(a), sizeof(packed));
	len = indicator__aggregate__pack(a, packed);
	indicator__aggregate__free_unpacked(a, NULL);
	ck_assert_int_eq(store_agg_put(t, topic, packed, len), 0);
	ck_assert_int_eq(store_txn_commit(&t), 0);
	store_close(&s);
}

/*
 * Seven districts deliver: expected names exactly the other three and
 * exits 1; the rest deliver: all complete, exit 0. verify agrees with the
 * daemon all along; an aggregate corrupted in a copy of the store is
 * named.
 */
START_TEST(test_expected_verify)
{
	struct daemon_proc dm;
	char sample[700], copy[700], *out, *err, *line;
	const char *expected[] = { "expected", "2025", NULL };
	const char *json[] = { "expected", "2025", "--json", NULL };
	const char *backup[] = { "backup", copy, NULL };
	const char *verify[] = { "verify", NULL };
	unsigned long checked;

	harness_daemon_init(&dm, NULL);
	harness_daemon_start(&dm);
	snprintf(sample, sizeof(sample), "%s/sample", dm.dir);
	snprintf(copy, sizeof(copy), "%s/copy", dm.dir);
	gen_sample(sample);
	deliver_sample(&dm, sample, 0, 7);

	ck_assert_int_eq(ctl_run(&dm, NULL, json, &out, &err), 1);
	ck_assert_str_eq(err, "");
	ck_assert_uint_eq(harness_count_newlines(out), NDISTRICTS);
	for (size_t d = 0; d < NDISTRICTS; d++) {
		char key[64];

		snprintf(
		    key, sizeof(key), "{\"district\":\"%s\"", districts[d]);
		line = harness_line_with(out, key);
		ck_assert_ptr_nonnull(line);
		if (d < 7)
			ck_assert_msg(
			    strstr(line, "\"missing\":[]") != NULL, "%s", line);
		else
			ck_assert_msg(
			    strstr(line, "\"missing\":[\"output_value\","
					 "\"innovation_platforms\","
					 "\"chain_leaders\",\"pilot_parks\","
					 "\"core_products\",\"app_scenarios\"],"
					 "\"reported\":[]}") != NULL,
			    "%s", line);
		free(line);
	}
	free(out);
	free(err);
	ck_assert_int_eq(ctl_run(&dm, NULL, expected, &out, &err), 1);
	ck_assert_ptr_nonnull(
	    strstr(out, "\n7 of 10 districts complete for 2025\n"));
	free(out);
	free(err);
	verify_ok(&dm, NULL);

	deliver_sample(&dm, sample, 7, NDISTRICTS);
	ck_assert_int_eq(ctl_run(&dm, NULL, expected, &out, &err), 0);
	ck_assert_ptr_nonnull(
	    strstr(out, "\n10 of 10 districts complete for 2025\n"));
	ck_assert_ptr_null(strstr(out, "output_value"));
	free(out);
	free(err);
	checked = verify_ok(&dm, NULL);
	/* Each of 8 industries, 6 metrics, 5 years and 4 quarters... at
	 * least the city-wide ones of every metric and year. */
	ck_assert_uint_ge(checked, 6 * 5 * (8 + 1));

	/* A copy, corrupted while no daemon runs, fails and names it. */
	ck_assert_int_eq(harness_daemon_stop(&dm, SIGTERM), 0);
	ck_assert_int_eq(ctl_run(&dm, NULL, backup, &out, &err), 0);
	free(out);
	free(err);
	corrupt_aggregate(copy, "agg/output_value/photonics/city/2024");
	ck_assert_int_eq(ctl_run(&dm, copy, verify, &out, &err), 1);
	line = harness_line_with(
	    out, "verify: agg/output_value/photonics/city/2024: ");
	ck_assert_msg(line != NULL, "%s", out);
	ck_assert_ptr_nonnull(strstr(line, ": value stored "));
	free(line);
	line = harness_line_with(out, " aggregates checked, ");
	ck_assert_ptr_nonnull(line);
	ck_assert_ptr_nonnull(strstr(line, ", 1 differences"));
	free(line);
	ck_assert_uint_eq(harness_count_newlines(out), 2);
	free(out);
	free(err);
	/* The original is untouched. */
	ck_assert_uint_eq(verify_ok(&dm, NULL), checked);
	harness_daemon_cleanup(&dm);
}
END_TEST

/* BIG_FILES files of every key of one district, each file new values. */
static void
write_big(const char *dir, char file[][700])
{
	size_t len = 64 + NIND * NMET * NPERIODS * 80;
	char *text = xmalloc(len);

	for (int f = 0; f < BIG_FILES; f++) {
		size_t n = 0;

		n += (size_t)snprintf(text + n, len - n,
		    "industry,metric,period,value,unit,status\n");
		for (size_t i = 0; i < NIND; i++)
			for (size_t m = 0; m < NMET; m++)
				for (int p = 0; p < NPERIODS; p++) {
					char period[16];
					int year = 2021 + p % 5, k = p / 5;

					if (k == 0)
						snprintf(period, sizeof(period),
						    "%d", year);
					else if (k <= 4)
						snprintf(period, sizeof(period),
						    "%d-Q%d", year, k);
					else
						snprintf(period, sizeof(period),
						    "%d-%02d", year, k - 4);
					n += (size_t)snprintf(text + n, len - n,
					    "%s,%s,%s,%d,%s,final\n",
					    industries[i], metrics[m].code,
					    period,
					    f + 1 +
						(int)((i + m + (size_t)p) % 7),
					    metrics[m].unit);
				}
		ck_assert_uint_lt(n, len);
		snprintf(file[f], 700, "%s/big-%d.csv", dir, f);
		harness_write_file(file[f], text);
	}
	free(text);
}

/* Observations in the history of the store at dir (read-only). */
static uint64_t
store_nhist(const char *dir)
{
	struct store_opts so = { 0 };
	struct store_stat st = { 0 };
	struct store *s;
	struct store_txn *t;
	char err[256];

	so.dir = dir;
	so.readonly = true;
	if ((s = store_open(&so, err, sizeof(err))) == NULL)
		return 0;
	t = store_txn_begin(s, false);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(store_stat(t, &st), 0);
	store_txn_abort(&t);
	store_close(&s);
	return st.nhist;
}

/*
 * Backups taken while an agent streams thousands of revisions are
 * consistent stores: each opens, verifies, answers queries, and a daemon
 * restored from one starts and serves it. Whether a given backup falls
 * mid-stream depends on the scheduler, so several are taken while the agent
 * runs; each must be consistent whenever it was taken.
 */
START_TEST(test_backup_live)
{
	struct daemon_proc dm;
	char file[BIG_FILES][700], copy[700], *out, *err;
	const char *files[BIG_FILES];
	const char *backup[] = { "backup", copy, NULL };
	const char *query[] = { "query", "--district", "320583", "--metric",
		"chain_leaders", "--period", "2025", "--industry", "quantum",
		"--json", NULL };
	const char *count[] = { "export", "--format", "json", NULL };
	unsigned long nobs = 0, naggs = 0, nagents = 0, checked = 0;
	long long bytes = 0;
	int status, nbackups = 0, rev;
	bool reaped = false;
	const char *r;
	pid_t pid;

	harness_daemon_init(&dm, NULL);
	harness_daemon_start(&dm);
	write_big(dm.dir, file);
	for (int f = 0; f < BIG_FILES; f++)
		files[f] = file[f];
	pid = agent_spawn(&dm, "320583", files, BIG_FILES);

	/* Once the first file is in, back up while the agent streams. */
	for (int i = 0;
	     i < 3000 && store_nhist(dm.data_dir) < NIND * NMET * NPERIODS; i++)
		harness_sleep_ms(10);
	do {
		snprintf(copy, sizeof(copy), "%s/backup-%d", dm.dir, nbackups);
		ck_assert_int_eq(ctl_run(&dm, NULL, backup, &out, &err), 0);
		ck_assert_str_eq(err, "");
		ck_assert_msg(sscanf(out,
				  "backup: %lu observations, %lu aggregates, "
				  "%lu agents, %lld bytes in ",
				  &nobs, &naggs, &nagents, &bytes) == 4,
		    "%s", out);
		ck_assert_uint_eq(nobs, NIND * NMET * NPERIODS);
		ck_assert_uint_gt(naggs, 0);
		ck_assert_uint_eq(nagents, 1);
		ck_assert_int_gt(bytes, 0);
		free(out);
		free(err);

		checked = verify_ok(&dm, copy);
		ck_assert_uint_eq(checked, naggs);
		ck_assert_int_eq(ctl_run(&dm, copy, query, &out, &err), 0);
		ck_assert_uint_eq(harness_count_newlines(out), 1);
		ck_assert_ptr_nonnull(strstr(out, "\"unit\":\"count\""));
		/* Some file's value of the key: revision 1 .. BIG_FILES. */
		ck_assert_ptr_nonnull(r = strstr(out, "\"revision\":"));
		rev = atoi(r + strlen("\"revision\":"));
		ck_assert_int_ge(rev, 1);
		ck_assert_int_le(rev, BIG_FILES);
		free(out);
		free(err);
		nbackups++;
		reaped = waitpid(pid, &status, WNOHANG) == pid;
	} while (nbackups < 3 && !reaped);

	if (reaped)
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "agent exit status %d", status);
	else
		agent_wait(&dm, "320583", pid);
	verify_ok(&dm, NULL);
	/* The last file's values: revision BIG_FILES of every key. */
	ck_assert_int_eq(ctl_run(&dm, NULL, query, &out, &err), 0);
	ck_assert_ptr_nonnull(strstr(out, "\"revision\":6}"));
	free(out);
	free(err);

	/* Restore: stop, replace the data directory, start. */
	ck_assert_int_eq(harness_daemon_stop(&dm, SIGTERM), 0);
	harness_rmtree(dm.data_dir);
	ck_assert_int_eq(rename(copy, dm.data_dir), 0);
	harness_daemon_start(&dm);
	ck_assert_int_eq(ctl_run(&dm, NULL, count, &out, &err), 0);
	ck_assert_uint_eq(harness_count_newlines(out), nobs);
	free(out);
	free(err);
	ck_assert_uint_eq(verify_ok(&dm, NULL), checked);
	harness_daemon_cleanup(&dm);
}
END_TEST

static Suite *
ops_suite(void)
{
	Suite *s = suite_create("ops");
	TCase *tc = tcase_create("ops");

	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_expected_verify);
	tcase_add_test(tc, test_backup_live);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(ops_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
