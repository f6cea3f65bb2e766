#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "outbox.h"
#include "xmalloc.h"

static char *dir; /* the test's temporary directory */
static char *odir; /* dir/outbox, not there until opened */
static struct outbox *ob;

static struct outbox *
open_outbox(void)
{
	char err[512] = "";
	struct outbox *o;

	o = outbox_open(odir, err, sizeof(err));
	ck_assert_msg(o != NULL, "outbox_open %s: %s", odir, err);
	return o;
}

static void
setup(void)
{
	dir = harness_tmpdir();
	odir = xmalloc(strlen(dir) + 8);
	sprintf(odir, "%s/outbox", dir);
	ob = open_outbox();
}

static void
teardown(void)
{
	outbox_close(&ob);
	harness_rmtree(dir);
	free(odir);
	free(dir);
}

/*
 * The report body the tests build: "report <epoch> <seq> <i>" padded with
 * 'x' to pad bytes, so that a scan can check what it reads.
 */
struct build {
	uint64_t epoch;
	size_t fail_at; /* build fails for this i; SIZE_MAX: never */
	size_t pad;
	size_t calls;
	uint64_t first_seq; /* seq given for i == 0 */
	bool bad_order; /* seqs not first_seq + i */
	bool vary; /* pad changes with seq, from pad / 2 to pad * 3 / 2 */
};

static size_t
body_make(char *buf, size_t size, uint64_t epoch, uint64_t seq, size_t pad)
{
	size_t n;

	n = (size_t)snprintf(buf, size, "report %llu %llu",
	    (unsigned long long)epoch, (unsigned long long)seq);
	while (n < pad && n + 1 < size)
		buf[n++] = 'x';
	return n;
}

static int
build_report(
    uint64_t epoch, uint64_t seq, size_t i, void **buf, size_t *len, void *arg)
{
	struct build *b = arg;
	char tmp[1024];

	b->calls++;
	b->epoch = epoch;
	if (i == 0)
		b->first_seq = seq;
	else if (seq != b->first_seq + i)
		b->bad_order = true;
	if (i == b->fail_at)
		return -1;
	*len = body_make(tmp, sizeof(tmp), epoch, seq,
	    b->vary ? b->pad / 2 + (seq * 7919) % (b->pad + 1) : b->pad);
	*buf = xmalloc(*len);
	memcpy(*buf, tmp, *len);
	return 0;
}

/* Enqueues n; returns the first seq given. */
static uint64_t
enqueue(struct outbox *o, size_t n)
{
	struct build b = { 0, SIZE_MAX, 0, 0, 0, false, false };

	ck_assert_int_eq(outbox_enqueue(o, n, build_report, &b), 0);
	ck_assert_uint_eq(b.calls, n);
	ck_assert(!b.bad_order);
	ck_assert_uint_eq(b.epoch, outbox_epoch(o));
	return b.first_seq;
}

static void
assert_counts(
    struct outbox *o, uint64_t pending, uint64_t dead, uint64_t next_seq)
{
	uint64_t p = 99, d = 99, n = 99;

	ck_assert_int_eq(outbox_counts(o, &p, &d, &n), 0);
	ck_assert_uint_eq(p, pending);
	ck_assert_uint_eq(d, dead);
	ck_assert_uint_eq(n, next_seq);
}

struct seen {
	uint64_t seqs[64];
	size_t n;
	size_t total;
	size_t stop_after; /* 0: never */
	uint64_t epoch;
	bool bad_body;
};

static int
collect(uint64_t seq, const void *buf, size_t len, void *arg)
{
	struct seen *s = arg;
	char want[1024];
	size_t n;

	n = body_make(want, sizeof(want), s->epoch, seq, 0);
	if (len < n || memcmp(buf, want, n) != 0)
		s->bad_body = true;
	if (s->n < 64)
		s->seqs[s->n++] = seq;
	s->total++;
	if (s->stop_after != 0 && s->total == s->stop_after)
		return 7;
	return 0;
}

/* The pending seqs from, at most max, as "a b c". */
static const char *
scan_str(struct outbox *o, uint64_t from, size_t max)
{
	static char out[512];
	struct seen s = { .n = 0 };
	size_t i;

	s.epoch = outbox_epoch(o);
	ck_assert_int_eq(outbox_scan(o, from, max, collect, &s), 0);
	ck_assert(!s.bad_body);
	out[0] = '\0';
	for (i = 0; i < s.n; i++)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%llu",
		    i ? " " : "", (unsigned long long)s.seqs[i]);
	return out;
}

START_TEST(test_epoch)
{
	struct outbox *other;
	uint64_t epoch;
	char path[1100], err[256];

	epoch = outbox_epoch(ob);
	ck_assert_uint_ne(epoch, 0);
	outbox_close(&ob);
	ck_assert_ptr_null(ob);
	outbox_close(&ob);
	ob = open_outbox();
	ck_assert_uint_eq(outbox_epoch(ob), epoch);
	/* Another outbox draws its own. */
	snprintf(path, sizeof(path), "%s/other", dir);
	other = outbox_open(path, err, sizeof(err));
	ck_assert_msg(other != NULL, "%s", err);
	ck_assert_uint_ne(outbox_epoch(other), 0);
	ck_assert_uint_ne(outbox_epoch(other), epoch);
	outbox_close(&other);
	/* The directory was created private. */
	{
		struct stat sb;

		ck_assert_int_eq(stat(path, &sb), 0);
		ck_assert_int_eq(sb.st_mode & 0777, 0700);
	}
}
END_TEST

START_TEST(test_seqs)
{
	uint64_t all[5] = { 1, 2, 3, 4, 5 };

	assert_counts(ob, 0, 0, 1);
	ck_assert_uint_eq(enqueue(ob, 3), 1);
	assert_counts(ob, 3, 0, 4);
	ck_assert_str_eq(scan_str(ob, 0, 0), "1 2 3");
	ck_assert_int_eq(outbox_enqueue(ob, 0, build_report, NULL), 0);
	assert_counts(ob, 3, 0, 4);

	outbox_close(&ob);
	ob = open_outbox();
	ck_assert_str_eq(scan_str(ob, 0, 0), "1 2 3");
	ck_assert_uint_eq(enqueue(ob, 2), 4);
	ck_assert_str_eq(scan_str(ob, 0, 0), "1 2 3 4 5");

	/* Removing everything does not make a seq free again. */
	ck_assert_int_eq(outbox_remove(ob, all, 5), 0);
	assert_counts(ob, 0, 0, 6);
	outbox_close(&ob);
	ob = open_outbox();
	assert_counts(ob, 0, 0, 6);
	ck_assert_uint_eq(enqueue(ob, 1), 6);
	ck_assert_str_eq(scan_str(ob, 0, 0), "6");
}
END_TEST

static const struct {
	size_t n, fail_at;
} fail_cases[] = {
	{ 1, 0 },
	{ 5, 0 },
	{ 5, 2 },
	{ 5, 4 },
};

START_TEST(test_all_or_none)
{
	struct build b = { 0, fail_cases[_i].fail_at, 0, 0, 0, false, false };

	ck_assert_uint_eq(enqueue(ob, 2), 1);
	ck_assert_int_eq(
	    outbox_enqueue(ob, fail_cases[_i].n, build_report, &b), -1);
	ck_assert_uint_eq(b.calls, fail_cases[_i].fail_at + 1);
	ck_assert_uint_eq(b.first_seq, 3);
	assert_counts(ob, 2, 0, 3);
	ck_assert_str_eq(scan_str(ob, 0, 0), "1 2");
	/* The seqs the failed call was given are handed out again. */
	ck_assert_uint_eq(enqueue(ob, fail_cases[_i].n), 3);
	assert_counts(ob, 2 + fail_cases[_i].n, 0, 3 + fail_cases[_i].n);
}
END_TEST

static const struct {
	uint64_t from;
	size_t max;
	const char *want;
} scan_cases[] = {
	{ 0, 0, "1 3 5 6 7 8 9 10" },
	{ 1, 0, "1 3 5 6 7 8 9 10" },
	{ 2, 0, "3 5 6 7 8 9 10" },
	{ 4, 3, "5 6 7" },
	{ 0, 1, "1" },
	{ 9, 5, "9 10" },
	{ 10, 0, "10" },
	{ 11, 0, "" },
	{ UINT64_MAX, 0, "" },
};

START_TEST(test_scan)
{
	static const uint64_t gone[] = { 2, 4, 99 };

	ck_assert_uint_eq(enqueue(ob, 10), 1);
	ck_assert_int_eq(outbox_remove(ob, gone, 3), 0);
	assert_counts(ob, 8, 0, 11);
	ck_assert_str_eq(scan_str(ob, scan_cases[_i].from, scan_cases[_i].max),
	    scan_cases[_i].want);
}
END_TEST

START_TEST(test_scan_stop)
{
	struct seen s = { .n = 0, .stop_after = 3 };

	s.epoch = outbox_epoch(ob);
	enqueue(ob, 10);
	ck_assert_int_eq(outbox_scan(ob, 0, 0, collect, &s), 7);
	ck_assert_uint_eq(s.total, 3);
	ck_assert_uint_eq(s.seqs[2], 3);
}
END_TEST

struct dead_seen {
	uint64_t seqs[8];
	char reports[8][128];
	char acks[8][32];
	size_t ack_lens[8];
	size_t n;
};

static int
collect_dead(uint64_t seq, const void *report, size_t report_len,
    const void *ack, size_t ack_len, const void *src, size_t src_len, void *arg)
{
	struct dead_seen *d = arg;

	(void)src;
	(void)src_len;
	ck_assert_uint_lt(d->n, 8);
	ck_assert_uint_lt(report_len, sizeof(d->reports[0]));
	ck_assert_uint_le(ack_len, sizeof(d->acks[0]));
	d->seqs[d->n] = seq;
	memcpy(d->reports[d->n], report, report_len);
	d->reports[d->n][report_len] = '\0';
	memcpy(d->acks[d->n], ack, ack_len);
	d->ack_lens[d->n] = ack_len;
	d->n++;
	return 0;
}

START_TEST(test_kill)
{
	static const unsigned char ack[] = { 0x08, 0x03, 0x00, 0x1a, 0xff };
	struct dead_seen d = { .n = 0 };
	char want[128];
	uint64_t epoch = outbox_epoch(ob);

	enqueue(ob, 4);
	ck_assert_int_eq(outbox_kill(ob, 2, ack, sizeof(ack)), 0);
	ck_assert_int_eq(outbox_kill(ob, 4, NULL, 0), 0);
	assert_counts(ob, 2, 2, 5);
	ck_assert_str_eq(scan_str(ob, 0, 0), "1 3");
	/* Neither twice, nor one that never was. */
	ck_assert_int_eq(outbox_kill(ob, 2, ack, sizeof(ack)), -1);
	ck_assert_int_eq(outbox_kill(ob, 99, ack, sizeof(ack)), -1);
	assert_counts(ob, 2, 2, 5);

	outbox_close(&ob);
	ob = open_outbox();
	ck_assert_int_eq(outbox_dead_scan(ob, collect_dead, &d), 0);
	ck_assert_uint_eq(d.n, 2);
	ck_assert_uint_eq(d.seqs[0], 2);
	body_make(want, sizeof(want), epoch, 2, 0);
	ck_assert_str_eq(d.reports[0], want);
	ck_assert_uint_eq(d.ack_lens[0], sizeof(ack));
	ck_assert_mem_eq(d.acks[0], ack, sizeof(ack));
	ck_assert_uint_eq(d.seqs[1], 4);
	body_make(want, sizeof(want), epoch, 4, 0);
	ck_assert_str_eq(d.reports[1], want);
	ck_assert_uint_eq(d.ack_lens[1], 0);
	/* Removing a dead seq from pending is a no-op. */
	ck_assert_int_eq(outbox_remove(ob, (const uint64_t[]){ 2 }, 1), 0);
	assert_counts(ob, 2, 2, 5);
}
END_TEST

static void
assert_in_use(char *err)
{
	char pid[64];

	ck_assert_msg(strstr(err, "is in use by another process") != NULL,
	    "err: %s", err);
	ck_assert_msg(strstr(err, odir) != NULL, "err: %s", err);
	snprintf(pid, sizeof(pid), "(pid %ld)", (long)getpid());
	ck_assert_msg(strstr(err, pid) != NULL, "err: %s (want %s)", err, pid);
}

/* In a child: 0 when outbox_open() fails as "in use" naming ppid. */
static int
child_open(bool expect_busy)
{
	char err[512] = "", pid[64];
	struct outbox *o;

	o = outbox_open(odir, err, sizeof(err));
	if (!expect_busy) {
		outbox_close(&o);
		return o == NULL ? 0 : 1;
	}
	if (o != NULL)
		return 1;
	snprintf(pid, sizeof(pid), "(pid %ld)", (long)getppid());
	return strstr(err, "is in use by another process") != NULL &&
		       strstr(err, pid) != NULL
		   ? 0
		   : 1;
}

static void
assert_child_open(bool expect_busy)
{
	int status;
	pid_t pid;

	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0)
		_exit(child_open(expect_busy));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_msg(
	    WEXITSTATUS(status) == 0, "child open: busy %d", expect_busy);
}

START_TEST(test_lock)
{
	struct outbox *second;
	char err[512] = "";

	second = outbox_open(odir, err, sizeof(err));
	ck_assert_ptr_null(second);
	assert_in_use(err);
	assert_child_open(true);
	/* The holder is unharmed. */
	enqueue(ob, 1);
	assert_counts(ob, 1, 0, 2);

	outbox_close(&ob);
	assert_child_open(false);
	ob = open_outbox();
	assert_counts(ob, 1, 0, 2);
}
END_TEST

/* Adds n reports of pad bytes to a batch; returns what add returned. */
static int
batch_add_n(struct outbox_batch *bt, struct build *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = outbox_batch_add(bt, build_report, b);

		if (rc != 0)
			return rc;
	}
	return 0;
}

/*
 * In a child: reads the outbox read-only beside this process, which holds
 * its lock; expects the epoch and the committed reports only (pending 1
 * and 2, dead 3, next seq 4), and writes to fail. 0 when all is as
 * expected.
 */
static int
child_readonly(uint64_t epoch)
{
	struct build b = { 0, SIZE_MAX, 0, 0, 0, false, false };
	struct seen s = { .n = 0 };
	char err[512] = "";
	struct outbox *o;
	uint64_t p, d, n;
	int rc = 0;

	if ((o = outbox_open_readonly(odir, err, sizeof(err))) == NULL)
		return 10;
	s.epoch = epoch;
	if (outbox_epoch(o) != epoch)
		rc = 11;
	else if (outbox_counts(o, &p, &d, &n) == -1)
		rc = 12;
	else if (p != 2 || d != 1 || n != 4)
		rc = 13;
	else if (outbox_scan(o, 0, 0, collect, &s) != 0 || s.total != 2 ||
		 s.bad_body)
		rc = 14;
	else if (outbox_enqueue(o, 1, build_report, &b) != -1)
		rc = 15;
	outbox_close(&o);
	return rc;
}

static void
assert_child_readonly(void)
{
	uint64_t epoch = outbox_epoch(ob);
	int status;
	pid_t pid;

	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0)
		_exit(child_readonly(epoch));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_msg(
	    WEXITSTATUS(status) == 0, "reader: %d", WEXITSTATUS(status));
}

/*
 * A reader beside the writer (status while run runs): it needs no lock,
 * sees what is committed, not the transactions of a batch still being
 * written beyond next_seq, and cannot write. On a directory without an
 * outbox it fails and creates nothing.
 */
START_TEST(test_readonly)
{
	static const unsigned char ack[] = { 0x08, 0x03 };
	struct build b = { 0, SIZE_MAX, 1000, 0, 0, false, false };
	struct outbox_batch *bt;
	char err[512] = "", none[600];
	struct stat sb;

	enqueue(ob, 3);
	ck_assert_int_eq(outbox_kill(ob, 3, ack, sizeof(ack)), 0);
	assert_counts(ob, 2, 1, 4);
	assert_child_readonly();

	/* 3000 reports of 1000 bytes: some of the batch's transactions are
	 * committed, beyond next_seq. */
	bt = outbox_batch_begin(ob);
	ck_assert_ptr_nonnull(bt);
	ck_assert_int_eq(batch_add_n(bt, &b, 3000), 0);
	assert_child_readonly();
	outbox_batch_abort(&bt);
	assert_child_readonly();

	snprintf(none, sizeof(none), "%s/none", dir);
	ck_assert_ptr_null(outbox_open_readonly(none, err, sizeof(err)));
	ck_assert_msg(strstr(err, "no outbox in") != NULL, "%s", err);
	ck_assert_int_eq(stat(none, &sb), -1);
}
END_TEST

/*
 * A batch spanning many of its transactions (3 MiB of reports, written
 * OUTBOX_BATCH_BYTES at a time) and growing the map (40 MiB): all or
 * nothing, each report built once, in seq order.
 */
static const struct {
	size_t n, pad;
	bool commit;
} batch_cases[] = {
	{ 1, 0, true },
	{ 1, 0, false },
	{ 3000, 1000, true },
	{ 3000, 1000, false },
	{ 40000, 1000, true },
};

START_TEST(test_batch)
{
	struct build b = { 0, SIZE_MAX, batch_cases[_i].pad, 0, 0, false,
		false };
	struct seen s = { .n = 0 };
	size_t n = batch_cases[_i].n;
	struct outbox_batch *bt;
	uint64_t first = 99;

	ck_assert_uint_eq(enqueue(ob, 2), 1);
	ck_assert_ptr_nonnull(bt = outbox_batch_begin(ob));
	ck_assert_uint_eq(outbox_batch_count(bt, &first), 0);
	ck_assert_uint_eq(first, 0);
	ck_assert_int_eq(batch_add_n(bt, &b, n), 0);
	ck_assert_uint_eq(outbox_batch_count(bt, &first), n);
	ck_assert_uint_eq(first, 3);
	ck_assert_uint_eq(b.calls, n);
	ck_assert(!b.bad_order);
	ck_assert_uint_eq(b.first_seq, 3);
	if (batch_cases[_i].commit) {
		ck_assert_int_eq(outbox_batch_commit(&bt), 0);
		assert_counts(ob, 2 + n, 0, 3 + n);
	} else {
		outbox_batch_abort(&bt);
		assert_counts(ob, 2, 0, 3);
	}
	ck_assert_ptr_null(bt);

	outbox_close(&ob);
	ob = open_outbox();
	s.epoch = outbox_epoch(ob);
	ck_assert_int_eq(outbox_scan(ob, 0, 0, collect, &s), 0);
	ck_assert(!s.bad_body);
	ck_assert_uint_eq(s.total, batch_cases[_i].commit ? 2 + n : 2);
	/* After an abort the seqs are handed out again. */
	ck_assert_uint_eq(enqueue(ob, 1), batch_cases[_i].commit ? 3 + n : 3);
}
END_TEST

/* A build that fails: the batch can only go, and leaves nothing. */
START_TEST(test_batch_build_fails)
{
	struct build b = { 0, 2500, 1000, 0, 0, false, false };
	struct outbox_batch *bt;

	ck_assert_ptr_nonnull(bt = outbox_batch_begin(ob));
	ck_assert_int_eq(batch_add_n(bt, &b, 3000), -1);
	ck_assert_uint_eq(b.calls, 2501);
	ck_assert_int_eq(outbox_batch_add(bt, build_report, &b), -1);
	ck_assert_int_eq(outbox_batch_commit(&bt), -1);
	ck_assert_ptr_null(bt);
	assert_counts(ob, 0, 0, 1);
	ck_assert_str_eq(scan_str(ob, 0, 0), "");
	ck_assert_uint_eq(enqueue(ob, 1), 1);
}
END_TEST

/*
 * The process dies in the middle of a batch, after some of its
 * transactions: what they wrote is not pending, and is cleared at the next
 * open.
 */
START_TEST(test_batch_crash)
{
	pid_t pid;
	int status;

	outbox_close(&ob);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		struct build b = { 0, SIZE_MAX, 1000, 0, 0, false, false };
		struct outbox_batch *bt;
		char err[256];
		struct outbox *o = outbox_open(odir, err, sizeof(err));

		if (o == NULL || (bt = outbox_batch_begin(o)) == NULL ||
		    batch_add_n(bt, &b, 3000) != 0)
			_exit(1);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ob = open_outbox();
	assert_counts(ob, 0, 0, 1);
	ck_assert_str_eq(scan_str(ob, 0, 0), "");
	ck_assert_uint_eq(enqueue(ob, 2), 1);
	ck_assert_str_eq(scan_str(ob, 0, 0), "1 2");
}
END_TEST

/* Sources, as dead_scan hands them over. */
struct dead_src {
	uint64_t seqs[8];
	char srcs[8][32];
	size_t n;
};

static int
collect_dead_src(uint64_t seq, const void *report, size_t report_len,
    const void *ack, size_t ack_len, const void *src, size_t src_len, void *arg)
{
	struct dead_src *d = arg;

	(void)report;
	(void)report_len;
	(void)ack;
	(void)ack_len;
	ck_assert_uint_lt(d->n, 8);
	ck_assert_uint_lt(src_len, sizeof(d->srcs[0]));
	d->seqs[d->n] = seq;
	if (src != NULL)
		memcpy(d->srcs[d->n], src, src_len);
	d->srcs[d->n][src_len] = '\0';
	d->n++;
	return 0;
}

static void
expect_source(struct outbox *o, uint64_t seq, const char *want)
{
	void *buf = (void *)1;
	size_t len = 99;
	int rc = outbox_source(o, seq, &buf, &len);

	if (want == NULL) {
		ck_assert_int_eq(rc, 1);
		ck_assert_ptr_null(buf);
		return;
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(len, strlen(want));
	ck_assert(memcmp(buf, want, len) == 0);
	free(buf);
}

/*
 * A report's source is written with it, read back, kept with its dead
 * letter, removed with an acknowledged report and with a purged dead
 * letter; a batch that never committed leaves none, and a read-only
 * reader sees them.
 */
START_TEST(test_sources)
{
	struct build b = { 0, SIZE_MAX, 0, 0, 0, false, false };
	struct outbox_batch *bt;
	struct dead_src d = { .n = 0 };
	struct outbox *ro;
	uint64_t seq, n;
	char err[256];

	ck_assert_ptr_nonnull(bt = outbox_batch_begin(ob));
	ck_assert_int_eq(outbox_batch_add_source(bt, build_report, &b,
			     "a.csv 2-3", strlen("a.csv 2-3")),
	    0);
	ck_assert_int_eq(outbox_batch_add(bt, build_report, &b), 0);
	ck_assert_int_eq(outbox_batch_add_source(bt, build_report, &b,
			     "a.csv 6", strlen("a.csv 6")),
	    0);
	ck_assert_int_eq(outbox_batch_commit(&bt), 0);
	expect_source(ob, 1, "a.csv 2-3");
	expect_source(ob, 2, NULL);
	expect_source(ob, 3, "a.csv 6");

	/* Aborted: its sources are not kept, and the seq goes again. */
	ck_assert_ptr_nonnull(bt = outbox_batch_begin(ob));
	ck_assert_int_eq(outbox_batch_add_source(
			     bt, build_report, &b, "b.csv", strlen("b.csv")),
	    0);
	outbox_batch_abort(&bt);
	expect_source(ob, 4, NULL);

	ck_assert_ptr_nonnull(
	    ro = outbox_open_readonly(odir, err, sizeof(err)));
	expect_source(ro, 3, "a.csv 6");

	seq = 1;
	ck_assert_int_eq(outbox_remove(ob, &seq, 1), 0);
	expect_source(ob, 1, NULL);
	ck_assert_int_eq(outbox_kill(ob, 3, "ack", 3), 0);
	ck_assert_int_eq(outbox_dead_scan(ro, collect_dead_src, &d), 0);
	ck_assert_uint_eq(d.n, 1);
	ck_assert_uint_eq(d.seqs[0], 3);
	ck_assert_str_eq(d.srcs[0], "a.csv 6");

	ck_assert_int_eq(outbox_dead_purge(ro, &n), -1);
	ck_assert_int_eq(outbox_dead_purge(ob, &n), 0);
	ck_assert_uint_eq(n, 1);
	expect_source(ob, 3, NULL);
	assert_counts(ob, 1, 0, 4);
	ck_assert_int_eq(outbox_dead_purge(ob, &n), 0);
	ck_assert_uint_eq(n, 0);
	outbox_close(&ro);
}
END_TEST

/* Marks: visible once the batch that made them commits, not before, not
 * after an abort; forgotten one by one or all. */
START_TEST(test_marks)
{
	struct build b = { 0, SIZE_MAX, 0, 0, 0, false, false };
	static const char k1[] = "file a.csv", k2[] = "file b.csv";
	char big[OUTBOX_MARK_MAX + 1];
	struct outbox_batch *bt;
	bool found = true;

	ck_assert_int_eq(outbox_marked(ob, k1, strlen(k1), &found), 0);
	ck_assert(!found);

	ck_assert_ptr_nonnull(bt = outbox_batch_begin(ob));
	ck_assert_int_eq(batch_add_n(bt, &b, 1), 0);
	ck_assert_int_eq(outbox_batch_mark(bt, k1, strlen(k1)), 0);
	outbox_batch_abort(&bt);
	ck_assert_int_eq(outbox_marked(ob, k1, strlen(k1), &found), 0);
	ck_assert(!found);

	ck_assert_ptr_nonnull(bt = outbox_batch_begin(ob));
	ck_assert_int_eq(batch_add_n(bt, &b, 1), 0);
	ck_assert_int_eq(outbox_batch_mark(bt, k1, strlen(k1)), 0);
	ck_assert_int_eq(outbox_batch_commit(&bt), 0);
	ck_assert_ptr_nonnull(bt = outbox_batch_begin(ob));
	ck_assert_int_eq(outbox_batch_mark(bt, k2, strlen(k2)), 0);
	ck_assert_int_eq(outbox_batch_commit(&bt), 0);
	assert_counts(ob, 1, 0, 2);

	outbox_close(&ob);
	ob = open_outbox();
	ck_assert_int_eq(outbox_marked(ob, k1, strlen(k1), &found), 0);
	ck_assert(found);
	ck_assert_int_eq(outbox_marked(ob, k2, strlen(k2), &found), 0);
	ck_assert(found);
	ck_assert_int_eq(outbox_unmark(ob, k1, strlen(k1)), 0);
	ck_assert_int_eq(outbox_marked(ob, k1, strlen(k1), &found), 0);
	ck_assert(!found);
	ck_assert_int_eq(outbox_unmark(ob, k1, strlen(k1)), 0);
	ck_assert_int_eq(outbox_unmark(ob, NULL, 0), 0);
	ck_assert_int_eq(outbox_marked(ob, k2, strlen(k2), &found), 0);
	ck_assert(!found);

	/* A key too long is refused and spoils the batch. */
	memset(big, 'k', sizeof(big));
	ck_assert_ptr_nonnull(bt = outbox_batch_begin(ob));
	ck_assert_int_eq(outbox_batch_mark(bt, big, sizeof(big)), -1);
	ck_assert_int_eq(outbox_batch_commit(&bt), -1);
	assert_counts(ob, 1, 0, 2);
}
END_TEST

/*
 * Many staged reports, over many pages: the next open clears all of them,
 * not the few a cursor that strays into the map finds (staged_clear() once
 * repointed its key into the page it deleted from, and left thousands for
 * later enqueues to collide with: MDB_KEYEXIST for good). Several rounds,
 * since each crash lands on what the last open left.
 */
START_TEST(test_batch_crash_many)
{
	for (int round = 0; round < 3; round++) {
		uint64_t pending, dead, next;
		pid_t pid;
		int status;

		outbox_close(&ob);
		pid = fork();
		ck_assert_int_ne(pid, -1);
		if (pid == 0) {
			/* Reports of many sizes, as real ones are. */
			struct build b = { 0, SIZE_MAX, 200, 0, 0, false,
				true };
			struct outbox_batch *bt;
			char err[256];
			struct outbox *o = outbox_open(odir, err, sizeof(err));

			if (o == NULL || (bt = outbox_batch_begin(o)) == NULL ||
			    batch_add_n(bt, &b, 30000) != 0)
				_exit(1);
			_exit(0);
		}
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		ob = open_outbox();
		ck_assert_int_eq(outbox_counts(ob, &pending, &dead, &next), 0);
		ck_assert_uint_eq(pending, (uint64_t)round);
		ck_assert_uint_eq(next, (uint64_t)round + 1);
		ck_assert_uint_eq(enqueue(ob, 1), (uint64_t)round + 1);
	}
	ck_assert_str_eq(scan_str(ob, 0, 0), "1 2 3");
}
END_TEST

#define BIG_N 100000
#define BIG_PAD 256

START_TEST(test_big)
{
	struct build b = { 0, SIZE_MAX, BIG_PAD, 0, 0, false, false };
	struct seen s = { .n = 0 };
	char path[1100];
	struct stat sb;

	ck_assert_int_eq(outbox_enqueue(ob, BIG_N, build_report, &b), 0);
	/* Growing the map does not build a report twice. */
	ck_assert_uint_eq(b.calls, BIG_N);
	ck_assert(!b.bad_order);
	assert_counts(ob, BIG_N, 0, BIG_N + 1);
	/* The reports alone need more than the 16 MiB it started with. */
	snprintf(path, sizeof(path), "%s/data.mdb", odir);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_gt(sb.st_size, 16 << 20);

	outbox_close(&ob);
	ob = open_outbox();
	s.epoch = outbox_epoch(ob);
	ck_assert_int_eq(outbox_scan(ob, 0, 0, collect, &s), 0);
	ck_assert(!s.bad_body);
	ck_assert_uint_eq(s.total, BIG_N);
	ck_assert_str_eq(scan_str(ob, BIG_N - 1, 0), "99999 100000");
	ck_assert_uint_eq(enqueue(ob, 1), BIG_N + 1);
}
END_TEST

/*
 * Every write meets a full map somewhere: outboxes given the same reports
 * in a map of 2, 3, ... 48 pages, then reopened with the map as small as
 * their pages in use (outbox_open_map()) for one operation, which finds
 * the map full and must grow it and run again (lmdbw.h). Each outbox ends
 * as it would in a map that never filled, and opens again. (Counted once:
 * every operation below met a full map 37 to 82 times over the sizes.)
 */
enum grow_op {
	GROW_ENQUEUE,
	GROW_BATCH, /* with sources and a mark */
	GROW_REMOVE, /* acknowledged */
	GROW_REMOVE_PENDING,
	GROW_KILL,
	GROW_UNMARK,
	GROW_PURGE,
	GROW_OPS
};

#define GROW_N 120 /* reports before the operation */
#define GROW_PAD 300
#define GROW_PAGES_MAX 48 /* past what GROW_N reports take */
#define GROW_MARKS 12
#define GROW_SRC 600

static const char *const grow_names[GROW_OPS] = { "enqueue", "batch", "remove",
	"remove_pending", "kill", "unmark", "purge" };

/* A batch of n reports, each with a source, marked key. */
static void
grow_batch(struct outbox *o, size_t n, const char *key)
{
	struct build b = { 0, SIZE_MAX, GROW_PAD, 0, 0, false, false };
	struct outbox_batch *bt;
	char src[GROW_SRC], mark[OUTBOX_MARK_MAX];

	ck_assert_ptr_nonnull(bt = outbox_batch_begin(o));
	for (size_t i = 0; i < n; i++) {
		/* NUL-padded, so that the sources take pages of their own
		 * (a purge then has many to rewrite). */
		memset(src, 0, sizeof(src));
		snprintf(src, sizeof(src), "file %s line %zu", key, i);
		ck_assert_int_eq(outbox_batch_add_source(
				     bt, build_report, &b, src, sizeof(src)),
		    0);
	}
	/* Long keys, so that the marks take pages of their own. */
	memset(mark, 'm', sizeof(mark));
	memcpy(mark, key, strlen(key));
	ck_assert_int_eq(outbox_batch_mark(bt, mark, sizeof(mark)), 0);
	ck_assert_int_eq(outbox_batch_commit(&bt), 0);
}

static bool
grow_marked(struct outbox *o, const char *key)
{
	char mark[OUTBOX_MARK_MAX];
	bool found;

	memset(mark, 'm', sizeof(mark));
	memcpy(mark, key, strlen(key));
	ck_assert_int_eq(outbox_marked(o, mark, sizeof(mark), &found), 0);
	return found;
}

/* A source grow_batch() wrote. */
static void
grow_source(struct outbox *o, uint64_t seq, const char *want)
{
	void *buf = NULL;
	size_t len = 0;

	ck_assert_int_eq(outbox_source(o, seq, &buf, &len), 0);
	ck_assert_uint_eq(len, GROW_SRC);
	ck_assert_str_eq(buf, want);
	free(buf);
}

/* The reader's pipes: it says it holds its snapshot on ready, and lets
 * go when go closes. */
static int reader_ready[2], reader_go[2];

static int
reader_wait(uint64_t seq, const void *buf, size_t len, void *arg)
{
	char c = 'r';

	(void)seq;
	(void)buf;
	(void)len;
	(void)arg;
	if (write(reader_ready[1], &c, 1) != 1)
		return -1;
	while (read(reader_go[0], &c, 1) > 0)
		;
	return 0;
}

/* A process reading the outbox in dir read-only, in the middle of a scan
 * (a read transaction), until reader_release(). */
static pid_t
reader_hold(const char *odir_)
{
	pid_t pid;
	char c;

	ck_assert_int_eq(pipe(reader_ready), 0);
	ck_assert_int_eq(pipe(reader_go), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		char err[512];
		struct outbox *r;

		close(reader_ready[0]);
		close(reader_go[1]);
		r = outbox_open_readonly(odir_, err, sizeof(err));
		if (r == NULL || outbox_scan(r, 0, 1, reader_wait, NULL) != 0)
			_exit(1);
		outbox_close(&r);
		_exit(0);
	}
	close(reader_ready[1]);
	close(reader_go[0]);
	ck_assert_int_eq(read(reader_ready[0], &c, 1), 1);
	close(reader_ready[0]);
	return pid;
}

static void
reader_release(pid_t pid)
{
	int status;

	close(reader_go[1]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

START_TEST(test_grow_each)
{
	static const unsigned char ack[] = { 0x08, 0x03 };
	enum grow_op op = (enum grow_op)_i;
	uint64_t seqs[GROW_N];
	char err[512], key[16];

	outbox_close(&ob);
	for (uint64_t pages = 2; pages <= GROW_PAGES_MAX; pages++) {
		struct outbox *o;

		harness_rmtree(odir);
		o = outbox_open_map(odir, pages * 4096, err, sizeof(err));
		ck_assert_msg(o != NULL, "%s: %s", grow_names[op], err);
		if (op == GROW_UNMARK) {
			for (int i = 0; i < GROW_MARKS; i++) {
				snprintf(key, sizeof(key), "k%d", i);
				grow_batch(o, GROW_N / GROW_MARKS, key);
			}
		} else {
			grow_batch(o, GROW_N / 2, "setup");
			ck_assert_uint_eq(
			    enqueue(o, GROW_N / 2), GROW_N / 2 + 1);
		}
		if (op == GROW_PURGE)
			for (uint64_t seq = 1; seq <= GROW_N; seq += 2)
				ck_assert_int_eq(
				    outbox_kill(o, seq, ack, sizeof(ack)), 0);
		/* Again, with the map as small as the pages in use. */
		outbox_close(&o);
		o = outbox_open_map(odir, pages * 4096, err, sizeof(err));
		ck_assert_msg(o != NULL, "%s: %s", grow_names[op], err);
		switch (op) {
		case GROW_ENQUEUE:
			ck_assert_uint_eq(enqueue(o, GROW_N), GROW_N + 1);
			assert_counts(o, 2 * GROW_N, 0, 2 * GROW_N + 1);
			break;
		case GROW_BATCH:
			grow_batch(o, GROW_N, "op");
			assert_counts(o, 2 * GROW_N, 0, 2 * GROW_N + 1);
			ck_assert(grow_marked(o, "op"));
			grow_source(o, 2 * GROW_N, "file op line 119");
			break;
		case GROW_REMOVE:
			for (size_t i = 0; i < GROW_N; i++)
				seqs[i] = i + 1;
			ck_assert_int_eq(outbox_remove(o, seqs, GROW_N), 0);
			assert_counts(o, 0, 0, GROW_N + 1);
			expect_source(o, 1, NULL);
			break;
		case GROW_REMOVE_PENDING:
			ck_assert_int_eq(
			    outbox_remove_pending(o, 1, GROW_N), 0);
			assert_counts(o, 0, 0, GROW_N + 1);
			expect_source(o, 1, NULL);
			break;
		case GROW_KILL:
			for (uint64_t seq = 1; seq <= GROW_N; seq++)
				ck_assert_int_eq(
				    outbox_kill(o, seq, ack, sizeof(ack)), 0);
			assert_counts(o, 0, GROW_N, GROW_N + 1);
			grow_source(o, 1, "file setup line 0");
			break;
		case GROW_UNMARK: {
			/* Deletes take the pages earlier transactions freed:
			 * a reader holding them back leaves the unmarks none
			 * but those at the map's end. One key at a time,
			 * then all. */
			pid_t reader = reader_hold(odir);

			for (int i = 0; i < GROW_MARKS - 1; i++) {
				char mark[OUTBOX_MARK_MAX];

				snprintf(key, sizeof(key), "k%d", i);
				ck_assert(grow_marked(o, key));
				memset(mark, 'm', sizeof(mark));
				memcpy(mark, key, strlen(key));
				ck_assert_int_eq(
				    outbox_unmark(o, mark, sizeof(mark)), 0);
				ck_assert(!grow_marked(o, key));
			}
			ck_assert(grow_marked(o, "k11"));
			ck_assert_int_eq(outbox_unmark(o, NULL, 0), 0);
			for (int i = 0; i < GROW_MARKS; i++) {
				snprintf(key, sizeof(key), "k%d", i);
				ck_assert(!grow_marked(o, key));
			}
			reader_release(reader);
			break;
		}
		case GROW_PURGE: {
			uint64_t n = 0;

			ck_assert_int_eq(outbox_dead_purge(o, &n), 0);
			ck_assert_uint_eq(n, GROW_N / 2);
			assert_counts(o, GROW_N / 2, 0, GROW_N + 1);
			expect_source(o, 1, NULL);
			break;
		}
		case GROW_OPS:
			break;
		}
		/* And it opens again: data.mdb covers every page its meta
		 * page counts, its transactions' loose pages included
		 * (lmdbw_write()). */
		outbox_close(&o);
		o = outbox_open(odir, err, sizeof(err));
		ck_assert_msg(o != NULL, "%s, %llu pages: %s", grow_names[op],
		    (unsigned long long)pages, err);
		outbox_close(&o);
	}
}
END_TEST

/*
 * Acknowledged reports removed, then the agent restarts: the outbox opens.
 * A removal that merges pages frees its transaction's highest pages again
 * (LMDB's loose pages), counted by the meta page and never written; before
 * each commit was bracketed (envcheck_file_fit()) data.mdb was then shorter
 * than its count and the next open refused it, in these cases among others
 * (36 of 155 sizes tried, default map).
 */
static const struct {
	size_t n, pad;
} reopen_cases[] = {
	{ 179, 100 },
	{ 192, 800 },
	{ 257, 450 },
	{ 335, 1150 },
};

static int
build_padded(
    uint64_t epoch, uint64_t seq, size_t i, void **buf, size_t *len, void *arg)
{
	size_t pad = *(size_t *)arg;

	(void)epoch;
	(void)i;
	*buf = xmalloc(pad);
	memset(*buf, 'x', pad);
	snprintf(*buf, pad, "r%llu", (unsigned long long)seq);
	*len = pad;
	return 0;
}

START_TEST(test_reopen_after_acks)
{
	size_t n = reopen_cases[_i].n, pad = reopen_cases[_i].pad;
	uint64_t *seqs = xcalloc(n, sizeof(*seqs));
	struct outbox_batch *bt;

	ck_assert_ptr_nonnull(bt = outbox_batch_begin(ob));
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(outbox_batch_add_source(bt, build_padded, &pad,
				     "src-src-src-src", 15),
		    0);
	ck_assert_int_eq(outbox_batch_commit(&bt), 0);
	ck_assert_int_eq(outbox_enqueue(ob, n, build_padded, &pad), 0);
	/* Acknowledged in two halves. */
	for (size_t i = 0; i < n; i++)
		seqs[i] = 2 * i + 1;
	ck_assert_int_eq(outbox_remove(ob, seqs, n), 0);
	for (size_t i = 0; i < n; i++)
		seqs[i] = 2 * i + 2;
	ck_assert_int_eq(outbox_remove(ob, seqs, n), 0);
	outbox_close(&ob);
	ob = open_outbox();
	assert_counts(ob, 0, 0, 2 * n + 1);
	free(seqs);
}
END_TEST

static Suite *
outbox_suite(void)
{
	Suite *s = suite_create("outbox");
	TCase *tc;

	tc = tcase_create("outbox");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_epoch);
	tcase_add_test(tc, test_seqs);
	tcase_add_loop_test(tc, test_all_or_none, 0,
	    sizeof(fail_cases) / sizeof(fail_cases[0]));
	tcase_add_loop_test(
	    tc, test_scan, 0, sizeof(scan_cases) / sizeof(scan_cases[0]));
	tcase_add_test(tc, test_scan_stop);
	tcase_add_test(tc, test_kill);
	tcase_add_test(tc, test_lock);
	tcase_add_test(tc, test_batch_build_fails);
	tcase_add_test(tc, test_batch_crash);
	tcase_add_test(tc, test_batch_crash_many);
	tcase_add_test(tc, test_readonly);
	tcase_add_test(tc, test_marks);
	tcase_add_test(tc, test_sources);
	tcase_add_loop_test(tc, test_reopen_after_acks, 0,
	    sizeof(reopen_cases) / sizeof(reopen_cases[0]));
	suite_add_tcase(s, tc);

	tc = tcase_create("batch");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(
	    tc, test_batch, 0, sizeof(batch_cases) / sizeof(batch_cases[0]));
	suite_add_tcase(s, tc);

	tc = tcase_create("grow");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_grow_each, 0, GROW_OPS);
	suite_add_tcase(s, tc);

	tc = tcase_create("big");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_big);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	sr = srunner_create(outbox_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
