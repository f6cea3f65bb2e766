/*
 * One process per data directory and per outbox, on the real binaries: a
 * second daemon on a data directory in use (even with other ports) exits 1
 * at once naming the PID that holds it, binds nothing, and the first goes
 * on unharmed; the same for a second agent on an outbox; status reads a
 * running agent's outbox; a lock left by a killed process blocks nothing.
 * Every wait is for an outcome, with a generous limit.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"
#include "xmalloc.h"

#define DISTRICT "320583"
#define RUN_TIMEOUT 60
#define WAIT_MS 60000

/* Sends report seq of agent lock-01 and expects status. */
static void
report(const struct daemon_proc *dm, uint64_t seq, double value, int status)
{
	struct harness_report r = { "lock-01", DISTRICT, 7, seq, "materials",
		value };
	void *zctx = zmq_ctx_new(), *sock;

	sock = harness_client_new(zctx, dm->ingest);
	harness_expect_ack(harness_report_one(sock, &r, WAIT_MS), status, NULL);
	zmq_close(sock);
	zmq_ctx_term(zctx);
}

/* The PID recorded in DIR/NAME. */
static long
lock_pid(const char *dir, const char *name)
{
	char path[700], *text;
	long pid;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	text = harness_read_file(path);
	ck_assert_msg(text != NULL, "no lock file %s", path);
	pid = strtol(text, NULL, 10);
	free(text);
	return pid;
}

/* Whether a TCP port of 127.0.0.1 can be bound: nobody listens there. */
static bool
port_free(const char *endpoint)
{
	struct sockaddr_in sa;
	const char *colon = strrchr(endpoint, ':');
	int fd, one = 1;
	bool ok;

	ck_assert_ptr_nonnull(colon);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ne(fd, -1);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* The agents' table row of lock-01 as indicatorctl prints it. */
static char *
agents_line(const struct daemon_proc *dm)
{
	const char *args[] = { "agents", NULL };
	char *out = harness_ctl(dm->data_dir, args, RUN_TIMEOUT), *line;

	line = harness_line_with(out, "lock-01");
	ck_assert_msg(line != NULL, "no lock-01 in: %s", out);
	free(out);
	return line;
}

/*
 * A second daemon on the first one's data directory, with ports of its
 * own: refused at once with status 1, naming the first one's PID, before
 * it binds anything; the first still answers reports and its control
 * socket, and its store holds what it held.
 */
START_TEST(test_second_daemon)
{
	struct daemon_proc a, b;
	char extra[700], want[128], *err = NULL, *out = NULL, *line, *after;
	const char *status[] = { "status", NULL };
	int rc;

	harness_daemon_init(&a, NULL);
	harness_daemon_start(&a);
	report(&a, 1, 10, INDICATOR__ACK_STATUS__ACCEPTED);
	ck_assert_int_eq(lock_pid(a.data_dir, "indicatord.lock"), a.pid);
	line = agents_line(&a);

	snprintf(extra, sizeof(extra), "data_dir = %s\n", a.data_dir);
	harness_daemon_init(&b, extra);
	{
		const char *argv[] = { INDICATORD_BIN, "-c", b.conf, NULL };

		rc = harness_run(argv, &out, &err, RUN_TIMEOUT);
	}
	ck_assert_msg(rc == 1, "second daemon exited %d: %s", rc, err);
	snprintf(want, sizeof(want), "is in use by another process (pid %ld)",
	    (long)a.pid);
	ck_assert_msg(strstr(err, want) != NULL, "want '%s' in: %s", want, err);
	ck_assert_msg(strstr(err, a.data_dir) != NULL, "%s", err);
	ck_assert_msg(strstr(err, "ready") == NULL, "%s", err);
	/* It bound none of its sockets. */
	ck_assert(port_free(b.ingest));
	ck_assert(port_free(b.publish));
	ck_assert(port_free(b.snapshot));
	free(err);
	free(out);

	/* The first is unharmed: its lock, its store, its control socket,
	 * its ingest. */
	ck_assert_int_eq(lock_pid(a.data_dir, "indicatord.lock"), a.pid);
	after = agents_line(&a);
	ck_assert_str_eq(after, line);
	free(after);
	rc = harness_ctl_run(a.conf, NULL, status, &out, &err, RUN_TIMEOUT);
	ck_assert_msg(rc == 0, "status of the first daemon: %d: %s", rc, err);
	ck_assert_msg(strstr(out, "uptime") != NULL, "%s", out);
	free(out);
	free(err);
	report(&a, 2, 20, INDICATOR__ACK_STATUS__ACCEPTED);
	ck_assert_int_eq(harness_daemon_stop(&a, SIGTERM), 0);
	ck_assert(!harness_daemon_log_has(&a, "error"));
	free(line);
	harness_daemon_cleanup(&b);
	harness_daemon_cleanup(&a);
}
END_TEST

/* A daemon killed with SIGKILL leaves its lock file: the next start on
 * the directory is not blocked by it, and nothing acknowledged is lost. */
START_TEST(test_daemon_stale_lock)
{
	struct daemon_proc a;
	long killed;

	harness_daemon_init(&a, NULL);
	harness_daemon_start(&a);
	report(&a, 1, 10, INDICATOR__ACK_STATUS__ACCEPTED);
	killed = a.pid;
	harness_daemon_stop(&a, SIGKILL);
	ck_assert_int_eq(lock_pid(a.data_dir, "indicatord.lock"), killed);

	harness_daemon_start(&a);
	ck_assert_int_eq(lock_pid(a.data_dir, "indicatord.lock"), a.pid);
	report(&a, 1, 10, INDICATOR__ACK_STATUS__DUPLICATE);
	report(&a, 2, 20, INDICATOR__ACK_STATUS__ACCEPTED);
	ck_assert_int_eq(harness_daemon_stop(&a, SIGTERM), 0);
	harness_daemon_cleanup(&a);
}
END_TEST

/* An agent's world: its directory, outbox, drop directory and log. */
struct agent_world {
	char *dir;
	char outbox[600];
	char drop[600];
	char log[600];
	char endpoint[64];
	pid_t pid;
};

static void
world_init(struct agent_world *w)
{
	w->dir = harness_tmpdir();
	snprintf(w->outbox, sizeof(w->outbox), "%s/outbox", w->dir);
	snprintf(w->drop, sizeof(w->drop), "%s/drop", w->dir);
	snprintf(w->log, sizeof(w->log), "%s/run.log", w->dir);
	/* No daemon there: what is enqueued stays pending. */
	snprintf(w->endpoint, sizeof(w->endpoint), "tcp://127.0.0.1:%d",
	    harness_free_port());
	w->pid = 0;
}

static void
world_cleanup(struct agent_world *w)
{
	if (w->pid > 0) {
		kill(w->pid, SIGKILL);
		harness_wait(w->pid, RUN_TIMEOUT);
	}
	harness_rmtree(w->dir);
	free(w->dir);
}

static void
run_start(struct agent_world *w)
{
	const char *argv[] = { AGENT_BIN, "--id", "lock-01", "--district",
		DISTRICT, "--endpoint", w->endpoint, "--outbox", w->outbox,
		"--drop", w->drop, "--ack-timeout", "200", "run", NULL };

	w->pid = harness_spawn(argv, w->log);
}

/* Runs the agent with args after the common options: exit code, output. */
static int
agent(const struct agent_world *w, const char *cmd, const char *file,
    char **out, char **err)
{
	const char *argv[] = { AGENT_BIN, "--id", "lock-01", "--district",
		DISTRICT, "--endpoint", w->endpoint, "--outbox", w->outbox,
		"--timeout", "1", cmd, file, NULL };

	return harness_run(argv, out, err, RUN_TIMEOUT);
}

static void
csv_write(const char *path)
{
	harness_write_file(path, "industry,metric,period,value,unit\n"
				 "materials,output_value,2024,1.5,CNY_100M\n"
				 "photonics,output_value,2024,2.5,CNY_100M\n");
}

/*
 * While `run` holds the outbox: a `send` on it is refused with status 1
 * naming run's PID and adds nothing; `status` reads it (read-only) and
 * sees what run enqueued. After kill -9 of run, its lock blocks nothing.
 */
START_TEST(test_agent_lock)
{
	struct agent_world w;
	char csv[700], tmp[700], want[128], *out, *err;
	long killed;
	int rc;

	world_init(&w);
	run_start(&w);
	harness_wait_log(w.log, "running", WAIT_MS);
	snprintf(tmp, sizeof(tmp), "%s/.a.csv.tmp", w.drop);
	snprintf(csv, sizeof(csv), "%s/a.csv", w.drop);
	csv_write(tmp);
	ck_assert_int_eq(rename(tmp, csv), 0);
	/* No daemon: enqueued, the file waits in sending/. */
	harness_wait_log(w.log, "moved to sending/a.csv", WAIT_MS);
	ck_assert_int_eq(lock_pid(w.outbox, "lock"), w.pid);

	snprintf(csv, sizeof(csv), "%s/b.csv", w.dir);
	csv_write(csv);
	rc = agent(&w, "send", csv, &out, &err);
	ck_assert_msg(rc == 1, "second agent exited %d: %s", rc, err);
	snprintf(want, sizeof(want), "is in use by another process (pid %ld)",
	    (long)w.pid);
	ck_assert_msg(strstr(err, want) != NULL, "want '%s' in: %s", want, err);
	free(out);
	free(err);

	/* status reads beside run, twice, and changes nothing. */
	for (int i = 0; i < 2; i++) {
		rc = agent(&w, "status", NULL, &out, &err);
		ck_assert_msg(rc == 0, "status exited %d: %s", rc, err);
		ck_assert_msg(strstr(out, "next seq: 2\n") != NULL &&
				  strstr(out, "pending: 1\n") != NULL &&
				  strstr(out, "dead: 0\n") != NULL,
		    "%s", out);
		free(out);
		free(err);
	}
	ck_assert_int_eq(lock_pid(w.outbox, "lock"), w.pid);

	/* kill -9: the lock goes with the process; a new run starts. */
	killed = w.pid;
	ck_assert_int_eq(kill(w.pid, SIGKILL), 0);
	ck_assert_int_eq(harness_wait(w.pid, RUN_TIMEOUT), 128 + SIGKILL);
	w.pid = 0;
	ck_assert_int_eq(lock_pid(w.outbox, "lock"), killed);
	harness_write_file(w.log, "");
	run_start(&w);
	harness_wait_log(w.log, "running", WAIT_MS);
	ck_assert_int_eq(lock_pid(w.outbox, "lock"), w.pid);
	rc = agent(&w, "status", NULL, &out, &err);
	ck_assert_msg(
	    rc == 0 && strstr(out, "pending: 1\n") != NULL, "%s%s", out, err);
	free(out);
	free(err);
	ck_assert_int_eq(kill(w.pid, SIGTERM), 0);
	ck_assert_int_eq(harness_wait(w.pid, RUN_TIMEOUT), 0);
	w.pid = 0;

	/* Nobody holds it now: send takes it. */
	rc = agent(&w, "send", csv, &out, &err);
	ck_assert_msg(rc == 3, "send exited %d: %s", rc, err);
	free(out);
	free(err);
	rc = agent(&w, "status", NULL, &out, &err);
	ck_assert_msg(
	    rc == 0 && strstr(out, "pending: 2\n") != NULL, "%s%s", out, err);
	free(out);
	free(err);
	world_cleanup(&w);
}
END_TEST

/* status on a directory with no outbox says so and creates nothing. */
START_TEST(test_status_no_outbox)
{
	struct agent_world w;
	struct stat sb;
	char *out, *err;
	int rc;

	world_init(&w);
	rc = agent(&w, "status", NULL, &out, &err);
	ck_assert_msg(rc == 1, "status exited %d: %s", rc, err);
	ck_assert_msg(strstr(err, "no outbox in") != NULL, "%s", err);
	ck_assert_int_eq(stat(w.outbox, &sb), -1);
	free(out);
	free(err);
	world_cleanup(&w);
}
END_TEST

static Suite *
lock_suite(void)
{
	Suite *s = suite_create("lock");
	TCase *tc;

	tc = tcase_create("daemon");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_second_daemon);
	tcase_add_test(tc, test_daemon_stale_lock);
	suite_add_tcase(s, tc);

	tc = tcase_create("agent");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_agent_lock);
	tcase_add_test(tc, test_status_no_outbox);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	sr = srunner_create(lock_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
