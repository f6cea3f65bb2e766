/*
 * indicatord under a service manager: the real daemon started as systemd
 * starts a Type=notify service, with $NOTIFY_SOCKET naming a datagram socket
 * the test listens on (and $WATCHDOG_USEC for the watchdog). Checks what
 * systemd relies on: READY=1 only once the store is open and every socket
 * bound, STATUS= with the counters, RELOADING=1 then READY=1 around SIGHUP
 * and around indicatorctl reload, the unit's ExecReload= (also when the new
 * file is refused), WATCHDOG=1 often enough, STOPPING=1 on SIGTERM.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"
#include "indicator.pb-c.h"

#define ACK_TIMEOUT_MS 10000
#define START_TIMEOUT_MS 20000
#define MSG_MAX 4096
#define LOG_MAX 64

#define ACCEPTED INDICATOR__ACK_STATUS__ACCEPTED
#define DUPLICATE INDICATOR__ACK_STATUS__DUPLICATE
#define REJECTED INDICATOR__ACK_STATUS__REJECTED

static struct daemon_proc dm;
static pid_t pid;
static int nfd = -1; /* our end of $NOTIFY_SOCKET */
static char nsock[600];
/* What the daemon sent so far, for failure messages. */
static char transcript[LOG_MAX][160];
static size_t ntranscript;

static void
transcript_dump(void)
{
	char *log = harness_daemon_log(&dm);

	fprintf(stderr, "check_service: notifications so far:\n");
	for (size_t i = 0; i < ntranscript; i++)
		fprintf(stderr, "  %s\n", transcript[i]);
	fprintf(stderr, "check_service: daemon log:\n%s\n", log);
	free(log);
}

/* The next notification within timeout_ms into msg; false on timeout. */
static bool
notify_recv(char *msg, size_t len, int timeout_ms)
{
	struct pollfd p = { .fd = nfd, .events = POLLIN };
	int64_t deadline = harness_now_ms() + timeout_ms;
	ssize_t n;

	for (;;) {
		int left = (int)(deadline - harness_now_ms());

		if (left < 0)
			return false;
		if (poll(&p, 1, left) == 1)
			break;
	}
	n = recv(nfd, msg, len - 1, 0);
	ck_assert_msg(n >= 0, "recv: %s", strerror(errno));
	msg[n] = '\0';
	if (ntranscript < LOG_MAX)
		snprintf(transcript[ntranscript++], sizeof(transcript[0]), "%s",
		    msg);
	return true;
}

/* Reads notifications until one starts with prefix; fails the test after
 * timeout_ms. The others (watchdog pings, statuses) are skipped. */
static void
notify_expect(const char *prefix, char *msg, size_t len, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;

	for (;;) {
		int left = (int)(deadline - harness_now_ms());

		if (left < 0 || !notify_recv(msg, len, left)) {
			transcript_dump();
			ck_abort_msg("no \"%s\" notification within %d ms",
			    prefix, timeout_ms);
		}
		if (strncmp(msg, prefix, strlen(prefix)) == 0)
			return;
	}
}

/* Starts the daemon as systemd would, with watchdog_us 0 for no
 * watchdog. */
static void
daemon_spawn(uint64_t watchdog_us)
{
	const char *argv[] = { INDICATORD_BIN, "-c", dm.conf, NULL };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char usec[32];

	harness_daemon_init(&dm, NULL);
	snprintf(nsock, sizeof(nsock), "%s/notify", dm.dir);
	ck_assert_uint_lt(strlen(nsock), sizeof(sa.sun_path));
	strcpy(sa.sun_path, nsock);
	nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ne(nfd, -1);
	ck_assert_msg(bind(nfd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
	    "bind %s: %s", nsock, strerror(errno));
	ntranscript = 0;

	setenv("NOTIFY_SOCKET", nsock, 1);
	if (watchdog_us > 0) {
		snprintf(usec, sizeof(usec), "%llu",
		    (unsigned long long)watchdog_us);
		setenv("WATCHDOG_USEC", usec, 1);
	}
	pid = harness_spawn(argv, dm.log);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
}

static void
setup(void)
{
	daemon_spawn(0);
}

static void
setup_watchdog(void)
{
	daemon_spawn(2000000);
}

/* Every test ends with SIGTERM: STOPPING=1, then exit 0. */
static void
teardown(void)
{
	char msg[MSG_MAX];
	int rc;

	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	notify_expect("STOPPING=1", msg, sizeof(msg), START_TIMEOUT_MS);
	rc = harness_wait(pid, 20);
	ck_assert_msg(rc == 0, "indicatord exited %d on SIGTERM", rc);
	close(nfd);
	nfd = -1;
	harness_daemon_cleanup(&dm);
}

/* True when something listens on the TCP port of "tcp://127.0.0.1:N":
 * binding it ourselves fails with EADDRINUSE. */
static bool
port_taken(const char *endpoint)
{
	const char *colon = strrchr(endpoint, ':');
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd, rc, err;

	ck_assert_ptr_nonnull(colon);
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ne(fd, -1);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	err = errno;
	close(fd);
	return rc == -1 && err == EADDRINUSE;
}

static Indicator__Ack *
send_report(void *sock, const char *district, uint64_t seq)
{
	const struct harness_report spec = { "svc-01", district, 42, seq,
		"photonics", 12.5 };
	Indicator__Ack *ack;

	ack = harness_report_one(sock, &spec, ACK_TIMEOUT_MS);
	if (ack == NULL)
		transcript_dump();
	ck_assert_msg(
	    ack != NULL, "no Ack for seq %llu", (unsigned long long)seq);
	return ack;
}

static void
send_expect(void *sock, const char *district, uint64_t seq, int status)
{
	Indicator__Ack *ack = send_report(sock, district, seq);

	ck_assert_int_eq(ack->status, status);
	indicator__ack__free_unpacked(ack, NULL);
}

START_TEST(test_ready_after_bind)
{
	char msg[MSG_MAX], path[700];
	struct stat st;

	notify_expect("READY=1", msg, sizeof(msg), START_TIMEOUT_MS);
	/* What READY promises, checked the moment it arrives. */
	snprintf(path, sizeof(path), "%s/data.mdb", dm.data_dir);
	ck_assert_msg(stat(path, &st) == 0, "READY=1 before %s exists", path);
	ck_assert_msg(port_taken(dm.ingest), "READY=1 before ingest bound");
	ck_assert_msg(port_taken(dm.publish), "READY=1 before publish bound");
	ck_assert_msg(port_taken(dm.snapshot), "READY=1 before snapshot bound");
	notify_expect("STATUS=", msg, sizeof(msg), 5000);
	ck_assert_str_eq(
	    msg, "STATUS=accepted 0, rejected 0, duplicate 0, agents seen 0");
}
END_TEST

/* STATUS= follows the counters from the loop, within its 5 s period. */
START_TEST(test_status_counts)
{
	char msg[MSG_MAX];
	void *zctx, *sock;
	int64_t deadline;

	notify_expect("READY=1", msg, sizeof(msg), START_TIMEOUT_MS);
	zctx = zmq_ctx_new();
	sock = harness_client_new(zctx, dm.ingest);
	send_expect(sock, "320583", 1, ACCEPTED);
	send_expect(sock, "999999", 2, REJECTED); /* unknown_district */
	send_expect(sock, "320583", 1, DUPLICATE);
	zmq_close(sock);
	zmq_ctx_term(zctx);

	deadline = harness_now_ms() + 8000;
	for (;;) {
		notify_expect("STATUS=", msg, sizeof(msg),
		    (int)(deadline - harness_now_ms()));
		if (strcmp(msg, "STATUS=accepted 1, rejected 1, duplicate 1, "
				"agents seen 1") == 0)
			break;
		ck_assert_msg(
		    harness_now_ms() < deadline, "last status: %s", msg);
	}
}
END_TEST

/* SIGHUP: RELOADING=1 (with MONOTONIC_USEC), then READY=1 and a fresh
 * STATUS=; the same when the new file is refused, or systemd would wait in
 * "reloading" until its timeout. */
START_TEST(test_reload)
{
	char msg[MSG_MAX];
	void *zctx, *sock;

	notify_expect("READY=1", msg, sizeof(msg), START_TIMEOUT_MS);
	zctx = zmq_ctx_new();
	sock = harness_client_new(zctx, dm.ingest);
	send_expect(sock, "320583", 1, ACCEPTED);

	ck_assert_int_eq(kill(pid, SIGHUP), 0);
	notify_expect("RELOADING=1", msg, sizeof(msg), 5000);
	ck_assert_msg(strstr(msg, "\nMONOTONIC_USEC=") != NULL,
	    "no MONOTONIC_USEC in: %s", msg);
	notify_expect("READY=1", msg, sizeof(msg), 5000);
	notify_expect("STATUS=", msg, sizeof(msg), 3000);
	ck_assert_str_eq(
	    msg, "STATUS=accepted 1, rejected 0, duplicate 0, agents seen 1");

	harness_write_file(dm.conf, "[daemon]\nno_such_key = 1\n");
	ck_assert_int_eq(kill(pid, SIGHUP), 0);
	notify_expect("RELOADING=1", msg, sizeof(msg), 5000);
	notify_expect("READY=1", msg, sizeof(msg), 5000);
	/* The old configuration stays, and with it the service. */
	send_expect(sock, "320583", 2, ACCEPTED);
	zmq_close(sock);
	zmq_ctx_term(zctx);
}
END_TEST

/* indicatorctl reload, the unit's ExecReload=: the same notifications as
 * SIGHUP, and an exit status that says whether the file was taken. */
START_TEST(test_reload_command)
{
	const char *args[] = { "reload", NULL };
	char msg[MSG_MAX], *out, *err;
	void *zctx, *sock;

	notify_expect("READY=1", msg, sizeof(msg), START_TIMEOUT_MS);
	ck_assert_int_eq(
	    harness_ctl_run(dm.conf, NULL, args, &out, &err, 90), 0);
	free(out);
	free(err);
	notify_expect("RELOADING=1", msg, sizeof(msg), 5000);
	notify_expect("READY=1", msg, sizeof(msg), 5000);

	harness_write_file(dm.conf, "[daemon]\nno_such_key = 1\n");
	ck_assert_int_eq(
	    harness_ctl_run(dm.conf, dm.data_dir, args, &out, &err, 90), 1);
	ck_assert_msg(strstr(err, "no_such_key") != NULL, "%s", err);
	free(out);
	free(err);
	notify_expect("RELOADING=1", msg, sizeof(msg), 5000);
	notify_expect("READY=1", msg, sizeof(msg), 5000);
	zctx = zmq_ctx_new();
	sock = harness_client_new(zctx, dm.ingest);
	send_expect(sock, "320583", 1, ACCEPTED);
	zmq_close(sock);
	zmq_ctx_term(zctx);
}
END_TEST

/* WatchdogSec=2: a ping about every second (half the interval), and never
 * a gap as long as the interval itself, which systemd would punish. */
START_TEST(test_watchdog)
{
	char msg[MSG_MAX];
	int64_t last, gap, max_gap = 0, end;
	int pings = 0;

	notify_expect("READY=1", msg, sizeof(msg), START_TIMEOUT_MS);
	notify_expect("WATCHDOG=1", msg, sizeof(msg), 2000);
	last = harness_now_ms();
	end = last + 4500;
	while (harness_now_ms() < end) {
		notify_expect("WATCHDOG=1", msg, sizeof(msg), 2000);
		gap = harness_now_ms() - last;
		last = harness_now_ms();
		if (gap > max_gap)
			max_gap = gap;
		pings++;
	}
	ck_assert_int_ge(pings, 3);
	ck_assert_msg(max_gap < 2000, "%d pings, longest gap %lld ms", pings,
	    (long long)max_gap);
}
END_TEST

/* Without $WATCHDOG_USEC the daemon sends no pings. */
START_TEST(test_no_watchdog)
{
	char msg[MSG_MAX];
	int64_t end;

	notify_expect("READY=1", msg, sizeof(msg), START_TIMEOUT_MS);
	end = harness_now_ms() + 2500;
	while (notify_recv(msg, sizeof(msg), (int)(end - harness_now_ms())))
		ck_assert_msg(strncmp(msg, "WATCHDOG=", 9) != 0,
		    "unexpected ping: %s", msg);
}
END_TEST

static Suite *
service_suite(void)
{
	Suite *s = suite_create("service");
	TCase *tc = tcase_create("notify");
	TCase *wd = tcase_create("watchdog");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_ready_after_bind);
	tcase_add_test(tc, test_status_counts);
	tcase_add_test(tc, test_reload);
	tcase_add_test(tc, test_reload_command);
	tcase_add_test(tc, test_no_watchdog);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(wd, setup_watchdog, teardown);
	tcase_set_timeout(wd, 60);
	tcase_add_test(wd, test_watchdog);
	suite_add_tcase(s, wd);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(service_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
