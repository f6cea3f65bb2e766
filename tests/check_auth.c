/*
 * Who may talk to the daemon (README, "Security"): CURVE with a ZAP handler
 * that admits only listed keys, each bound to one agent_id and district;
 * revocation on SIGHUP; secure defaults checked at start; the message size
 * limit and the per-agent rate limit; indicatorctl's key commands.
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
#include "xmalloc.h"

#define ACK_MS 10000
#define SILENCE_MS 1500 /* how long a refused client is watched */

#define ACCEPTED INDICATOR__ACK_STATUS__ACCEPTED
#define REJECTED INDICATOR__ACK_STATUS__REJECTED
#define RETRY_LATER INDICATOR__ACK_STATUS__RETRY_LATER

struct keypair {
	char pub[41];
	char sec[41];
};

static struct daemon_proc dm;
static void *zctx;
static char *keydir;
static char agents_path[600];
static struct keypair server, kunshan, sip, stranger;

static void
keypair_new(struct keypair *k)
{
	ck_assert(zmq_curve_keypair(k->pub, k->sec) == 0);
}

static void
write_mode(const char *path, const char *text, mode_t mode)
{
	harness_write_file(path, text);
	ck_assert(chmod(path, mode) == 0);
}

/* A daemon with CURVE on ingest; agents kunshan-01 (320583) and sip-01
 * (320576) authorised, the harness's probe too. */
static void
curve_up(const char *more)
{
	char path[600], text[1024], extra[2048];
	struct keypair probe;

	keydir = harness_tmpdir();
	keypair_new(&server);
	keypair_new(&kunshan);
	keypair_new(&sip);
	keypair_new(&stranger);
	keypair_new(&probe);
	snprintf(path, sizeof(path), "%s/server.key", keydir);
	snprintf(text, sizeof(text), "# server\n%s\n", server.sec);
	write_mode(path, text, 0600);
	snprintf(
	    agents_path, sizeof(agents_path), "%s/authorised_agents", keydir);
	snprintf(text, sizeof(text),
	    "# key agent district\n%s kunshan-01 320583\n%s sip-01 320576\n"
	    "%s harness 320505\n",
	    kunshan.pub, sip.pub, probe.pub);
	/* Never group- or world-writable, whatever the umask: the daemon
	 * refuses such a file. */
	write_mode(agents_path, text, 0644);
	snprintf(extra, sizeof(extra),
	    "curve = true\nsecret_key_file = %s\nauthorised_agents = %s\n%s",
	    path, agents_path, more ? more : "");
	harness_daemon_init(&dm, extra);
	memcpy(dm.curve_server, server.pub, 41);
	memcpy(dm.curve_public, probe.pub, 41);
	memcpy(dm.curve_secret, probe.sec, 41);
	harness_daemon_start(&dm);
	zctx = zmq_ctx_new();
}

static void
plain_up(const char *extra)
{
	keydir = NULL;
	harness_daemon_init(&dm, extra);
	harness_daemon_start(&dm);
	zctx = zmq_ctx_new();
}

static void
teardown(void)
{
	if (dm.pid > 0)
		ck_assert_int_eq(
		    WEXITSTATUS(harness_daemon_stop(&dm, SIGTERM)), 0);
	harness_daemon_cleanup(&dm);
	if (zctx != NULL)
		zmq_ctx_term(zctx);
	zctx = NULL;
	if (keydir != NULL) {
		harness_rmtree(keydir);
		free(keydir);
		keydir = NULL;
	}
}

static void *
client(const struct keypair *k)
{
	return harness_client_curve(
	    zctx, dm.ingest, server.pub, k->pub, k->sec);
}

/* Sends a one-observation report; returns the Ack or NULL (caller frees). */
static Indicator__Ack *
report(void *sock, const char *agent, const char *district, uint64_t seq,
    int timeout_ms)
{
	const struct harness_report spec = { agent, district, 42, seq,
		"photonics", 10 + (double)seq };

	return harness_report_one(sock, &spec, timeout_ms);
}

static int
stored(void)
{
	const char *argv[] = { INDICATORCTL_BIN, "-d", dm.data_dir, "query",
		"--json", NULL };
	char *out;
	int n;

	ck_assert_int_eq(harness_run(argv, &out, NULL, 20), 0);
	n = (int)harness_count_newlines(out);
	free(out);
	return n;
}

START_TEST(curve_authorised_agent_accepted)
{
	void *s = client(&kunshan);

	harness_expect_ack(
	    report(s, "kunshan-01", "320583", 1, ACK_MS), ACCEPTED, NULL);
	ck_assert_int_eq(stored(), 1);
	zmq_close(s);
}
END_TEST

START_TEST(curve_other_district_refused)
{
	void *s = client(&kunshan);

	harness_expect_ack(report(s, "kunshan-01", "320576", 1, ACK_MS),
	    REJECTED, "not_authorised");
	harness_expect_ack(report(s, "sip-01", "320576", 1, ACK_MS), REJECTED,
	    "not_authorised");
	ck_assert_int_eq(stored(), 0);
	ck_assert(harness_daemon_log_has(&dm, "not_authorised"));
	/* Refusals for the sender consume no seq. */
	harness_expect_ack(
	    report(s, "kunshan-01", "320583", 1, ACK_MS), ACCEPTED, NULL);
	ck_assert_int_eq(stored(), 1);
	zmq_close(s);
}
END_TEST

START_TEST(curve_unknown_key_refused)
{
	void *s = client(&stranger);
	Indicator__Ack *ack = report(s, "kunshan-01", "320583", 1, SILENCE_MS);

	ck_assert_msg(ack == NULL, "a stranger's report was answered");
	ck_assert_int_eq(stored(), 0);
	ck_assert(harness_daemon_log_has(&dm, "handshake refused"));
	zmq_close(s);
}
END_TEST

START_TEST(curve_plaintext_client_refused)
{
	void *s = harness_client_new(zctx, dm.ingest);
	Indicator__Ack *ack = report(s, "kunshan-01", "320583", 1, SILENCE_MS);

	ck_assert_msg(ack == NULL, "a plaintext report was answered");
	ck_assert_int_eq(stored(), 0);
	zmq_close(s);
}
END_TEST

START_TEST(curve_revoked_after_sighup)
{
	const char *argv[] = { INDICATORCTL_BIN, "revoke", "kunshan-01",
		"--file", agents_path, NULL };
	void *s = client(&kunshan), *t;
	char *out;

	harness_expect_ack(
	    report(s, "kunshan-01", "320583", 1, ACK_MS), ACCEPTED, NULL);
	ck_assert_int_eq(harness_run(argv, &out, NULL, 20), 0);
	ck_assert_ptr_nonnull(strstr(out, "revoked"));
	free(out);
	ck_assert(kill(dm.pid, SIGHUP) == 0);
	for (int i = 0;
	     i < 200 && !harness_daemon_log_has(&dm, "keys reloaded"); i++)
		usleep(20000);
	ck_assert(harness_daemon_log_has(&dm, "keys reloaded: 2 agent keys"));
	/* The open connection can no longer send... */
	harness_expect_ack(report(s, "kunshan-01", "320583", 2, ACK_MS),
	    REJECTED, "not_authorised");
	/* ...and a new one does not get through the handshake. */
	t = client(&kunshan);
	ck_assert_ptr_null(report(t, "kunshan-01", "320583", 2, SILENCE_MS));
	ck_assert_int_eq(stored(), 1);
	/* The other agents are untouched. */
	zmq_close(t);
	t = client(&sip);
	harness_expect_ack(
	    report(t, "sip-01", "320576", 1, ACK_MS), ACCEPTED, NULL);
	zmq_close(t);
	zmq_close(s);
}
END_TEST

START_TEST(curve_broken_keys_file_kept_on_reload)
{
	void *s = client(&kunshan);

	harness_write_file(agents_path, "this is not a key file\n");
	ck_assert(kill(dm.pid, SIGHUP) == 0);
	for (int i = 0;
	     i < 200 && !harness_daemon_log_has(&dm, "reload refused"); i++)
		usleep(20000);
	ck_assert(harness_daemon_log_has(&dm, "reload refused"));
	harness_expect_ack(
	    report(s, "kunshan-01", "320583", 1, ACK_MS), ACCEPTED, NULL);
	zmq_close(s);
}
END_TEST

/* The authorised-agents file made writable by others: a reload refuses it
 * and the old keys stay. */
START_TEST(curve_open_keys_file_refused_on_reload)
{
	void *s = client(&kunshan);

	ck_assert(chmod(agents_path, 0666) == 0);
	ck_assert(kill(dm.pid, SIGHUP) == 0);
	for (int i = 0;
	     i < 200 && !harness_daemon_log_has(&dm, "reload refused"); i++)
		usleep(20000);
	ck_assert(harness_daemon_log_has(&dm, "reload refused"));
	ck_assert(
	    harness_daemon_log_has(&dm, "is writable by group or others"));
	harness_expect_ack(
	    report(s, "kunshan-01", "320583", 1, ACK_MS), ACCEPTED, NULL);
	zmq_close(s);
}
END_TEST

/* Runs indicatord on dm's config, which must be refused; returns its
 * stderr. */
static char *
run_refused(void)
{
	const char *argv[] = { INDICATORD_BIN, "-c", dm.conf, NULL };
	char *err;

	ck_assert_int_eq(harness_run(argv, NULL, &err, 20), 1);
	return err;
}

static char *
refused_start(const char *extra)
{
	harness_daemon_init(&dm, extra);
	return run_refused();
}

START_TEST(plaintext_off_loopback_refused)
{
	char extra[256], *err;
	int port = harness_free_port();

	snprintf(extra, sizeof(extra), "ingest = tcp://0.0.0.0:%d\n", port);
	err = refused_start(extra);
	ck_assert_msg(strstr(err, "refusing to bind the ingest socket") != NULL,
	    "%s", err);
	free(err);
	harness_daemon_cleanup(&dm);
	snprintf(extra, sizeof(extra), "publish = tcp://0.0.0.0:%d\n", port);
	err = refused_start(extra);
	ck_assert_msg(strstr(err, "publish") != NULL, "%s", err);
	free(err);
}
END_TEST

START_TEST(plaintext_off_loopback_allowed_with_warning)
{
	char extra[256], *conf, *text;

	harness_daemon_init(&dm, NULL);
	/* The same port on every address: the harness still reaches it on
	 * loopback. */
	snprintf(extra, sizeof(extra),
	    "[daemon]\ningest = tcp://0.0.0.0:%s\nallow_insecure_remote = "
	    "true\n",
	    strrchr(dm.ingest, ':') + 1);
	conf = harness_read_file(dm.conf);
	text = xmalloc(strlen(conf) + strlen(extra) + 1);
	strcpy(text, conf);
	strcat(text, extra);
	harness_write_file(dm.conf, text);
	free(conf);
	free(text);
	harness_daemon_start(&dm);
	ck_assert(harness_daemon_log_has(&dm, "without CURVE"));
}
END_TEST

START_TEST(world_readable_secret_key_refused)
{
	char path[600], extra[2048], *err;
	struct keypair k;

	keydir = harness_tmpdir();
	keypair_new(&k);
	snprintf(path, sizeof(path), "%s/server.key", keydir);
	write_mode(path, k.sec, 0644);
	snprintf(agents_path, sizeof(agents_path), "%s/agents", keydir);
	harness_write_file(agents_path, "");
	snprintf(extra, sizeof(extra),
	    "curve = true\nsecret_key_file = %s\nauthorised_agents = %s\n",
	    path, agents_path);
	err = refused_start(extra);
	ck_assert_msg(
	    strstr(err, path) != NULL && strstr(err, "chmod 600") != NULL, "%s",
	    err);
	free(err);
}
END_TEST

START_TEST(open_data_dir_refused)
{
	char *err;

	harness_daemon_init(&dm, NULL);
	ck_assert(mkdir(dm.data_dir, 0755) == 0);
	ck_assert(chmod(dm.data_dir, 0755) == 0);
	err = run_refused();
	ck_assert_msg(strstr(err, "chmod 700") != NULL, "%s", err);
	free(err);
}
END_TEST

START_TEST(oversize_message_dropped)
{
	void *big = harness_client_new(zctx, dm.ingest);
	void *s = harness_client_new(zctx, dm.ingest);
	size_t n = 64 * 1024;
	char *junk = xmalloc(n);
	const void *frames[1] = { junk };
	size_t lens[1] = { n };
	Indicator__Ack *ack;

	memset(junk, 'x', n);
	harness_client_send(big, frames, lens, 1);
	ack = harness_client_ack(big, SILENCE_MS);
	ck_assert_msg(ack == NULL, "an over-size message was answered");
	harness_expect_ack(
	    report(s, "kunshan-01", "320583", 1, ACK_MS), ACCEPTED, NULL);
	free(junk);
	zmq_close(big);
	zmq_close(s);
}
END_TEST

START_TEST(flood_does_not_starve_others)
{
	void *flood = harness_client_new(zctx, dm.ingest);
	void *other = harness_client_new(zctx, dm.ingest);
	int limited = 0, accepted = 0;

	/* The flooding agent sends 200 reports without waiting. */
	for (uint64_t seq = 1; seq <= 200; seq++) {
		Indicator__AgentMessage msg = INDICATOR__AGENT_MESSAGE__INIT;
		Indicator__Report r = INDICATOR__REPORT__INIT;
		Indicator__Observation o = INDICATOR__OBSERVATION__INIT;
		Indicator__Observation *obs[1] = { &o };
		uint8_t buf[256];
		const void *frames[1] = { buf };
		size_t lens[1];

		o.industry = "photonics";
		o.metric = "output_value";
		o.period = "2024";
		o.value = (double)seq;
		o.unit = "CNY_100M";
		r.agent_id = "flood-01";
		r.district = "320505";
		r.epoch = 9;
		r.seq = seq;
		r.n_observations = 1;
		r.observations = obs;
		msg.body_case = INDICATOR__AGENT_MESSAGE__BODY_REPORT;
		msg.report = &r;
		lens[0] = indicator__agent_message__pack(&msg, buf);
		harness_client_send(flood, frames, lens, 1);
	}
	harness_expect_ack(
	    report(other, "kunshan-01", "320583", 1, ACK_MS), ACCEPTED, NULL);
	for (int i = 0; i < 200; i++) {
		Indicator__Ack *ack = harness_client_ack(flood, ACK_MS);

		ck_assert_ptr_nonnull(ack);
		if (ack->status == RETRY_LATER &&
		    strcmp(ack->code, "rate_limited") == 0)
			limited++;
		else if (ack->status == ACCEPTED)
			accepted++;
		indicator__ack__free_unpacked(ack, NULL);
	}
	printf(
	    "flood: %d accepted, %d rate_limited of 200\n", accepted, limited);
	ck_assert_int_gt(limited, 0);
	ck_assert_int_gt(accepted, 0);
	zmq_close(flood);
	zmq_close(other);
}
END_TEST

START_TEST(keygen_authorise_revoke)
{
	char base[600], path[640], *out, *err, *text;
	const char *keygen[] = { INDICATORCTL_BIN, "keygen", base, NULL };
	const char *auth[] = { INDICATORCTL_BIN, "authorise", path,
		"kunshan-01", "320583", "--file", agents_path, NULL };
	const char *bad[] = { INDICATORCTL_BIN, "authorise", path, "kunshan-01",
		"999999", "--file", agents_path, NULL };
	const char *revoke[] = { INDICATORCTL_BIN, "revoke", "kunshan-01",
		"--file", agents_path, NULL };
	struct stat st;

	keydir = harness_tmpdir();
	snprintf(base, sizeof(base), "%s/kunshan", keydir);
	snprintf(agents_path, sizeof(agents_path), "%s/agents", keydir);
	ck_assert_int_eq(harness_run(keygen, &out, NULL, 20), 0);
	free(out);
	snprintf(path, sizeof(path), "%s.key", base);
	ck_assert(stat(path, &st) == 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	/* Never overwrites a key. */
	ck_assert_int_ne(harness_run(keygen, NULL, &err, 20), 0);
	free(err);
	snprintf(path, sizeof(path), "%s.pub", base);
	ck_assert_int_eq(harness_run(auth, &out, NULL, 20), 0);
	free(out);
	/* Authorising the agent again replaces its binding. */
	ck_assert_int_eq(harness_run(auth, &out, NULL, 20), 0);
	ck_assert_ptr_nonnull(strstr(out, "replacing"));
	free(out);
	text = harness_read_file(agents_path);
	ck_assert_ptr_nonnull(strstr(text, "kunshan-01  320583"));
	/* One binding, not two. */
	ck_assert_ptr_null(
	    strstr(strstr(text, "kunshan-01") + 1, "kunshan-01"));
	free(text);
	ck_assert_int_eq(harness_run(bad, NULL, &err, 20), 1);
	free(err);
	ck_assert_int_eq(harness_run(revoke, &out, NULL, 20), 0);
	free(out);
	text = harness_read_file(agents_path);
	ck_assert_ptr_null(strstr(text, "kunshan-01"));
	free(text);
	ck_assert_int_eq(harness_run(revoke, NULL, &err, 20), 1);
	ck_assert_ptr_nonnull(strstr(err, "no binding"));
	free(err);
}
END_TEST

/* The feed under CURVE: a listed subscriber gets the snapshot, an unlisted
 * one gets nothing. */
START_TEST(feed_curve_subscribers)
{
	char path[600], spub[640], ssec[640], other[640], osec[640];
	char extra[2048];
	char text[256], *out, *err;
	struct keypair sub, stranger_sub;
	const char *ok[] = { SUB_BIN, "-c", dm.conf, "--once", "--server-key",
		server.pub, "--public-key", spub, "--secret-key", ssec, NULL };
	const char *bad[] = { SUB_BIN, "-c", dm.conf, "--once", "--server-key",
		server.pub, "--public-key", other, "--secret-key", osec, NULL };
	void *s;

	keydir = harness_tmpdir();
	keypair_new(&server);
	keypair_new(&sub);
	keypair_new(&stranger_sub);
	snprintf(path, sizeof(path), "%s/server.key", keydir);
	write_mode(path, server.sec, 0600);
	snprintf(spub, sizeof(spub), "%s/sub.pub", keydir);
	harness_write_file(spub, sub.pub);
	snprintf(ssec, sizeof(ssec), "%s/sub.key", keydir);
	write_mode(ssec, sub.sec, 0600);
	snprintf(other, sizeof(other), "%s/other.pub", keydir);
	harness_write_file(other, stranger_sub.pub);
	snprintf(osec, sizeof(osec), "%s/other.key", keydir);
	write_mode(osec, stranger_sub.sec, 0600);
	snprintf(agents_path, sizeof(agents_path), "%s/subscribers", keydir);
	snprintf(text, sizeof(text), "%s city-dashboard\n", sub.pub);
	write_mode(agents_path, text, 0644);
	snprintf(extra, sizeof(extra),
	    "feed_curve = true\nsecret_key_file = %s\nsubscriber_keys = %s\n",
	    path, agents_path);
	harness_daemon_init(&dm, extra);
	harness_daemon_start(&dm);
	zctx = zmq_ctx_new();
	s = harness_client_new(zctx, dm.ingest);
	harness_expect_ack(
	    report(s, "kunshan-01", "320583", 1, ACK_MS), ACCEPTED, NULL);
	zmq_close(s);
	ck_assert_int_eq(harness_run(ok, &out, NULL, 30), 0);
	ck_assert_msg(
	    strstr(out, "agg/output_value/photonics/city/2024") != NULL, "%s",
	    out);
	free(out);
	/* A key pair not in the list is refused at the handshake. */
	ck_assert_int_ne(harness_run(bad, &out, &err, 30), 0);
	ck_assert_ptr_null(strstr(out, "agg/"));
	free(out);
	free(err);
	ck_assert(harness_daemon_log_has(&dm, "handshake refused"));
}
END_TEST

/* The real agent with its key pair, as the README's Security section sets
 * it up: its own district goes through; another district is refused. */
START_TEST(curve_real_agent)
{
	char conf[700], pub[700], sec[700], spub[700], csv[700], outbox[700];
	char text[4096], *out, *err;
	const char *argv[] = { AGENT_BIN, "-c", conf, "--endpoint", dm.ingest,
		"--timeout", "30", "send", csv, NULL };

	snprintf(pub, sizeof(pub), "%s/kunshan.pub", keydir);
	snprintf(sec, sizeof(sec), "%s/kunshan.key", keydir);
	snprintf(spub, sizeof(spub), "%s/server.pub", keydir);
	snprintf(csv, sizeof(csv), "%s/k.csv", keydir);
	snprintf(outbox, sizeof(outbox), "%s/outbox", keydir);
	snprintf(conf, sizeof(conf), "%s/agent.conf", keydir);
	harness_write_file(pub, kunshan.pub);
	write_mode(sec, kunshan.sec, 0600);
	harness_write_file(spub, server.pub);
	harness_write_file(csv, "industry,metric,period,value,unit\n"
				"photonics,output_value,2024,12.5,CNY_100M\n");
	snprintf(text, sizeof(text),
	    "[agent]\nid = kunshan-01\ndistrict = 320583\noutbox = %s\n"
	    "server_key = %s\npublic_key_file = %s\nsecret_key_file = %s\n",
	    outbox, spub, pub, sec);
	harness_write_file(conf, text);
	ck_assert_int_eq(harness_run(argv, &out, &err, 60), 0);
	free(out);
	free(err);
	ck_assert_int_eq(stored(), 1);

	/* The same key reporting for Suzhou Industrial Park is refused. */
	snprintf(text, sizeof(text),
	    "[agent]\nid = kunshan-01\ndistrict = 320576\noutbox = %s\n"
	    "server_key = %s\npublic_key_file = %s\nsecret_key_file = %s\n",
	    outbox, spub, pub, sec);
	harness_write_file(conf, text);
	ck_assert_int_eq(harness_run(argv, &out, &err, 60), 1);
	ck_assert_msg(strstr(err, "not_authorised") != NULL, "%s", err);
	free(out);
	free(err);
	ck_assert_int_eq(stored(), 1);

	/* A secret key readable by others is refused by the agent too. */
	ck_assert(chmod(sec, 0644) == 0);
	ck_assert_int_ne(harness_run(argv, &out, &err, 60), 0);
	ck_assert_msg(strstr(err, "chmod 600") != NULL, "%s", err);
	free(out);
	free(err);
}
END_TEST

static void
curve_setup(void)
{
	curve_up(NULL);
}

static void
limits_setup(void)
{
	plain_up("[limits]\nmax_message_bytes = 4096\n"
		 "[daemon]\nrate_limit = 20\n");
}

static void
nothing(void)
{
	keydir = NULL;
	zctx = NULL;
	memset(&dm, 0, sizeof(dm));
}

static Suite *
auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *tc;

	tc = tcase_create("curve");
	tcase_add_checked_fixture(tc, curve_setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, curve_authorised_agent_accepted);
	tcase_add_test(tc, curve_other_district_refused);
	tcase_add_test(tc, curve_unknown_key_refused);
	tcase_add_test(tc, curve_plaintext_client_refused);
	tcase_add_test(tc, curve_revoked_after_sighup);
	tcase_add_test(tc, curve_broken_keys_file_kept_on_reload);
	tcase_add_test(tc, curve_open_keys_file_refused_on_reload);
	tcase_add_test(tc, curve_real_agent);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, limits_setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, oversize_message_dropped);
	tcase_add_test(tc, flood_does_not_starve_others);
	suite_add_tcase(s, tc);

	tc = tcase_create("defaults");
	tcase_add_checked_fixture(tc, nothing, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, plaintext_off_loopback_refused);
	tcase_add_test(tc, plaintext_off_loopback_allowed_with_warning);
	tcase_add_test(tc, world_readable_secret_key_refused);
	tcase_add_test(tc, open_data_dir_refused);
	tcase_add_test(tc, keygen_authorise_revoke);
	tcase_add_test(tc, feed_curve_subscribers);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(auth_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
