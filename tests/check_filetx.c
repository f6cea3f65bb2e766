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

static const char *const industries[] = { "materials", "photonics",
	"metaverse", "hydrogen", "digifin", "cellgene", "aerospace",
	"quantum" };

static struct daemon_proc dm;
static void *zctx;
static void *sock;
static uint64_t epoch;

static void
setup(void)
{
	harness_daemon_init(&dm, NULL);
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
	snprintf(period, len, "2024-%02u", (unsigned)(k / NELEM(industries) + 1));
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
	ck_assert_msg(ack != NULL, "no answer to seq %llu",
	    (unsigned long long)seq);
	ck_assert_uint_eq(ack->seq, seq);
	return ack;
}

static void
expect(Indicator__Ack *ack, int status, const char *code)
{
	ck_assert_msg(ack->status == (Indicator__AckStatus)status,
	    "seq %llu: status %d, not %d (%s: %s)",
	    (unsigned long long)ack->seq, (int)ack->status, status,
	    ack->code, ack->message);
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

/* One key in parts 2 and 4 of a file: the last part refuses the file and
 * names both observations, each by its part. */
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
}
END_TEST

/* A file left open ends when another report takes its next seq; a part
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
