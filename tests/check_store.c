#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "outbox.h"
#include "store.h"
#include "xmalloc.h"

static char *dir; /* the test's temporary directory */
static char *sdir; /* dir/store */
static struct store *st;

static struct store *
open_store(const char *path, uint64_t map_size, uint64_t map_max, bool readonly)
{
	struct store_opts o = { path, map_size, map_max, readonly,
		STORE_SYNC_NONE };
	char err[256] = "";
	struct store *s;

	s = store_open(&o, err, sizeof(err));
	ck_assert_msg(s != NULL, "store_open %s: %s", path, err);
	return s;
}

static void
setup(void)
{
	dir = harness_tmpdir();
	sdir = xmalloc(strlen(dir) + 7);
	sprintf(sdir, "%s/store", dir);
	st = open_store(sdir, 0, 0, false);
}

static void
teardown(void)
{
	store_close(&st);
	harness_rmtree(dir);
	free(sdir);
	free(dir);
}

static void
obs_fill(struct store_obs *o, const char *d, const char *i, const char *m,
    const char *p, double value)
{
	memset(o, 0, sizeof(*o));
	strcpy(o->district, d);
	strcpy(o->industry, i);
	strcpy(o->metric, m);
	strcpy(o->period, p);
	o->value = value;
	strcpy(o->unit, "CNY_100M");
	o->sent_value = value * 10000;
	strcpy(o->sent_unit, "CNY_10K");
	o->status = 2;
	strcpy(o->note, "修正 after audit");
	strcpy(o->agent_id, "agent-3205");
	o->epoch = 0x0123456789abcdefULL;
	o->seq = 77;
	o->sent_at_ms = 1751234567890LL;
	o->stored_at_ms = 1751234567999LL;
}

static void
obs_assert_eq(const struct store_obs *a, const struct store_obs *b)
{
	ck_assert_str_eq(a->district, b->district);
	ck_assert_str_eq(a->industry, b->industry);
	ck_assert_str_eq(a->metric, b->metric);
	ck_assert_str_eq(a->period, b->period);
	ck_assert_double_eq(a->value, b->value);
	ck_assert_str_eq(a->unit, b->unit);
	ck_assert_double_eq(a->sent_value, b->sent_value);
	ck_assert_str_eq(a->sent_unit, b->sent_unit);
	ck_assert_int_eq(a->status, b->status);
	ck_assert_str_eq(a->note, b->note);
	ck_assert_str_eq(a->agent_id, b->agent_id);
	ck_assert_uint_eq(a->epoch, b->epoch);
	ck_assert_uint_eq(a->seq, b->seq);
	ck_assert_int_eq(a->sent_at_ms, b->sent_at_ms);
	ck_assert_int_eq(a->stored_at_ms, b->stored_at_ms);
	ck_assert_uint_eq(a->revision, b->revision);
}

/* Puts one observation in its own transaction; returns its revision. */
static uint32_t
put_one(struct store *s, struct store_obs *o)
{
	struct store_txn *t;

	t = store_txn_begin(s, true);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(store_obs_put(t, o, NULL, NULL), 0);
	ck_assert_int_eq(store_txn_commit(&t), 0);
	ck_assert_ptr_null(t);
	return o->revision;
}

START_TEST(test_obs_roundtrip)
{
	struct store_obs o, got, prev;
	struct store_txn *t;
	bool had = true;

	obs_fill(&o, "3205", "ind_ev", "output", "2025-Q3", 123.456789);
	o.status = 1;
	t = store_txn_begin(st, true);
	ck_assert_int_eq(store_obs_put(t, &o, &prev, &had), 0);
	ck_assert(!had);
	ck_assert_uint_eq(o.revision, 1);
	ck_assert_int_eq(store_txn_commit(&t), 0);

	t = store_txn_begin(st, false);
	ck_assert_ptr_nonnull(t);
	memset(&got, 0xff, sizeof(got));
	ck_assert_int_eq(
	    store_obs_get(t, "3205", "ind_ev", "output", "2025-Q3", &got), 0);
	obs_assert_eq(&got, &o);
	ck_assert_int_eq(
	    store_obs_get(t, "3205", "ind_ev", "output", "2025", &got),
	    STORE_NOTFOUND);
	ck_assert_int_eq(
	    store_obs_get(t, "3206", "ind_ev", "output", "2025-Q3", &got),
	    STORE_NOTFOUND);
	store_txn_abort(&t);
	ck_assert_ptr_null(t);
}
END_TEST

struct collect {
	struct store_obs o[16];
	size_t n;
	char keys[1024];
	int stop_after; /* 0: never */
};

static int
collect_obs(const struct store_obs *o, void *arg)
{
	struct collect *c = arg;

	ck_assert_uint_lt(c->n, 16);
	c->o[c->n++] = *o;
	if (c->keys[0] != '\0')
		strcat(c->keys, " ");
	snprintf(c->keys + strlen(c->keys), sizeof(c->keys) - strlen(c->keys),
	    "%s/%s/%s/%s", o->district, o->industry, o->metric, o->period);
	if (c->stop_after != 0 && (int)c->n == c->stop_after)
		return 42;
	return 0;
}

START_TEST(test_revisions)
{
	static const double values[] = { 10.5, 11.25, 9.75 };
	static const char *const agents[] = { "agent-a", "agent-b", "agent-c" };
	struct store_obs o, prev, got;
	struct store_txn *t;
	struct collect c = { .n = 0 };
	bool had;
	size_t i;

	for (i = 0; i < 3; i++) {
		obs_fill(&o, "3205", "ind_ev", "output", "2025", values[i]);
		strcpy(o.agent_id, agents[i]);
		o.seq = 100 + i;
		t = store_txn_begin(st, true);
		memset(&prev, 0, sizeof(prev));
		had = i == 0;
		ck_assert_int_eq(store_obs_put(t, &o, &prev, &had), 0);
		ck_assert_int_eq(store_txn_commit(&t), 0);
		ck_assert_uint_eq(o.revision, i + 1);
		ck_assert(had == (i > 0));
		if (i > 0) {
			ck_assert_uint_eq(prev.revision, i);
			ck_assert_double_eq(prev.value, values[i - 1]);
			ck_assert_str_eq(prev.agent_id, agents[i - 1]);
			ck_assert_uint_eq(prev.seq, 100 + i - 1);
		}
	}
	/* A different key starts at 1 again. */
	obs_fill(&o, "3205", "ind_ev", "output", "2024", 1);
	ck_assert_uint_eq(put_one(st, &o), 1);

	t = store_txn_begin(st, false);
	ck_assert_int_eq(
	    store_obs_get(t, "3205", "ind_ev", "output", "2025", &got), 0);
	ck_assert_uint_eq(got.revision, 3);
	ck_assert_double_eq(got.value, values[2]);
	ck_assert_int_eq(store_hist_scan(t, "3205", "ind_ev", "output", "2025",
			     collect_obs, &c),
	    0);
	store_txn_abort(&t);
	ck_assert_uint_eq(c.n, 3);
	for (i = 0; i < 3; i++) {
		ck_assert_uint_eq(c.o[i].revision, i + 1);
		ck_assert_double_eq(c.o[i].value, values[i]);
		ck_assert_str_eq(c.o[i].agent_id, agents[i]);
		ck_assert_uint_eq(c.o[i].seq, 100 + i);
		ck_assert_str_eq(c.o[i].period, "2025");
	}
}
END_TEST

static const char *const scan_data[][4] = {
	{ "3205", "A", "m1", "2025" },
	{ "3205", "A", "m2", "2025" },
	{ "3205", "B", "m1", "2024" },
	{ "320505", "A", "m1", "2025" },
	{ "320505", "B", "m1", "2025" },
	{ "3206", "A", "m1", "2025" },
	{ "3206", "B", "m2", "2024" },
};

static const struct {
	struct store_filter f;
	const char *want;
} scan_cases[] = {
	{ { NULL, NULL, NULL, NULL },
	    "3205/A/m1/2025 3205/A/m2/2025 3205/B/m1/2024 320505/A/m1/2025 "
	    "320505/B/m1/2025 3206/A/m1/2025 3206/B/m2/2024" },
	{ { "", "", "", "" },
	    "3205/A/m1/2025 3205/A/m2/2025 3205/B/m1/2024 320505/A/m1/2025 "
	    "320505/B/m1/2025 3206/A/m1/2025 3206/B/m2/2024" },
	{ { "3205", NULL, NULL, NULL },
	    "3205/A/m1/2025 3205/A/m2/2025 3205/B/m1/2024" },
	{ { "320505", NULL, NULL, NULL }, "320505/A/m1/2025 320505/B/m1/2025" },
	{ { "3206", NULL, NULL, NULL }, "3206/A/m1/2025 3206/B/m2/2024" },
	{ { "32", NULL, NULL, NULL }, "" },
	{ { "3207", NULL, NULL, NULL }, "" },
	{ { "3204", NULL, NULL, NULL }, "" },
	{ { NULL, "A", NULL, NULL },
	    "3205/A/m1/2025 3205/A/m2/2025 320505/A/m1/2025 3206/A/m1/2025" },
	{ { NULL, NULL, "m2", NULL }, "3205/A/m2/2025 3206/B/m2/2024" },
	{ { NULL, NULL, NULL, "2024" }, "3205/B/m1/2024 3206/B/m2/2024" },
	{ { "3205", "B", NULL, NULL }, "3205/B/m1/2024" },
	{ { "3205", "C", NULL, NULL }, "" },
	{ { "320505", NULL, "m1", "2025" },
	    "320505/A/m1/2025 320505/B/m1/2025" },
	{ { "3205", "A", "m2", "2025" }, "3205/A/m2/2025" },
	{ { "3205", "A", "m2", "2024" }, "" },
	{ { NULL, "B", "m1", NULL }, "3205/B/m1/2024 320505/B/m1/2025" },
};

static void
scan_load(void)
{
	struct store_obs o;
	struct store_txn *t;
	size_t i;

	t = store_txn_begin(st, true);
	/* Reverse order, so that key order is the store's doing. */
	for (i = sizeof(scan_data) / sizeof(scan_data[0]); i-- > 0;) {
		obs_fill(&o, scan_data[i][0], scan_data[i][1], scan_data[i][2],
		    scan_data[i][3], (double)i);
		ck_assert_int_eq(store_obs_put(t, &o, NULL, NULL), 0);
	}
	ck_assert_int_eq(store_txn_commit(&t), 0);
}

START_TEST(test_obs_scan)
{
	struct collect c = { .n = 0 };
	struct store_txn *t;
	size_t i;

	scan_load();
	t = store_txn_begin(st, false);
	ck_assert_int_eq(
	    store_obs_scan(t, &scan_cases[_i].f, collect_obs, &c), 0);
	store_txn_abort(&t);
	ck_assert_str_eq(c.keys, scan_cases[_i].want);
	/* Values come along with their keys. */
	for (i = 0; i < c.n; i++) {
		size_t j;

		for (j = 0; j < sizeof(scan_data) / sizeof(scan_data[0]); j++)
			if (strcmp(scan_data[j][0], c.o[i].district) == 0 &&
			    strcmp(scan_data[j][1], c.o[i].industry) == 0 &&
			    strcmp(scan_data[j][2], c.o[i].metric) == 0 &&
			    strcmp(scan_data[j][3], c.o[i].period) == 0)
				break;
		ck_assert_double_eq(c.o[i].value, (double)j);
		ck_assert_uint_eq(c.o[i].revision, 1);
	}
}
END_TEST

START_TEST(test_obs_scan_stop)
{
	struct store_filter f = { "3205", NULL, NULL, NULL };
	struct collect c = { .n = 0, .stop_after = 2 };
	struct store_txn *t;

	scan_load();
	t = store_txn_begin(st, false);
	ck_assert_int_eq(store_obs_scan(t, &f, collect_obs, &c), 42);
	ck_assert_uint_eq(c.n, 2);
	c.n = 0;
	c.keys[0] = '\0';
	c.stop_after = 1;
	ck_assert_int_eq(store_obs_scan(t, NULL, collect_obs, &c), 42);
	ck_assert_str_eq(c.keys, "3205/A/m1/2025");
	store_txn_abort(&t);
}
END_TEST

struct seq_seen {
	char keys[512];
	uint64_t accepted_sum;
};

static int
collect_seq(
    const char *agent_id, uint64_t epoch, const struct store_seq *s, void *arg)
{
	struct seq_seen *ss = arg;

	snprintf(ss->keys + strlen(ss->keys),
	    sizeof(ss->keys) - strlen(ss->keys), "%s%s:%llu",
	    ss->keys[0] ? " " : "", agent_id, (unsigned long long)epoch);
	ss->accepted_sum += s->accepted;
	return 0;
}

static int
collect_lsn(const struct store_obs *o, void *arg)
{
	char *buf = arg;

	snprintf(buf + strlen(buf), 256 - strlen(buf), "%s%llu:%s/%u",
	    buf[0] ? " " : "", (unsigned long long)o->lsn, o->period,
	    o->revision);
	return 0;
}

/* The daemon's path: records appended to the log at rising positions,
 * obs pointed at them apart, "applied" left to the checkpoint; reads,
 * history and scans follow obs and prev. */
START_TEST(test_log_ref)
{
	struct store_obs o, got;
	struct store_ref ref;
	struct store_txn *t;
	uint64_t next = 0, applied = 99;
	char seen[256] = "";
	double v = -1;

	t = store_txn_begin(st, true);
	ck_assert_int_eq(store_log_next(t, &next), 0);
	ck_assert_uint_eq(next, 1);
	obs_fill(&o, "3205", "ind_ev", "output", "2025", 0.0001);
	o.revision = 1;
	o.batch = 1;
	ck_assert_int_eq(store_log_append(t, &o), 0);
	ck_assert_uint_eq(o.lsn, 1);
	obs_fill(&o, "3205", "ind_ev", "output", "2024", 3);
	o.revision = 1;
	o.batch = 1;
	ck_assert_int_eq(store_log_append(t, &o), 0);
	ck_assert_uint_eq(o.lsn, 2);
	/* Revision 2 of 2025, worth 0: a zero is not on the wire at all
	 * (proto3), and must still read back. */
	obs_fill(&o, "3205", "ind_ev", "output", "2025", 0);
	o.revision = 2;
	o.prev = 1;
	o.batch = 1;
	ck_assert_int_eq(store_log_append(t, &o), 0);
	ck_assert_uint_eq(o.lsn, 3);
	ref.revision = 2;
	ref.value = 0;
	ref.lsn = 3;
	ck_assert_int_eq(
	    store_ref_put(t, "3205", "ind_ev", "output", "2025", &ref), 0);
	ck_assert_int_eq(store_txn_commit(&t), 0);

	t = store_txn_begin(st, false);
	/* Not checkpointed: 2024 is in the log only. */
	ck_assert_int_eq(store_meta_get(t, STORE_META_APPLIED, &applied), 0);
	ck_assert_uint_eq(applied, 0);
	ck_assert_int_eq(
	    store_obs_value(t, "3205", "ind_ev", "output", "2024", &v),
	    STORE_NOTFOUND);
	ck_assert_int_eq(
	    store_obs_value(t, "3205", "ind_ev", "output", "2025", &v), 0);
	ck_assert(v == 0);
	ck_assert_int_eq(
	    store_obs_get(t, "3205", "ind_ev", "output", "2025", &got), 0);
	ck_assert_uint_eq(got.revision, 2);
	ck_assert_uint_eq(got.lsn, 3);
	ck_assert_uint_eq(got.prev, 1);
	ck_assert_str_eq(got.agent_id, o.agent_id);
	ck_assert_int_eq(store_hist_scan(t, "3205", "ind_ev", "output", "2025",
			     collect_lsn, seen),
	    0);
	ck_assert_str_eq(seen, "1:2025/1 3:2025/2");
	seen[0] = '\0';
	ck_assert_int_eq(store_log_scan(t, 2, collect_lsn, seen), 0);
	ck_assert_str_eq(seen, "2:2024/1 3:2025/2");
	store_txn_abort(&t);

	/* A direct put behind an unapplied tail leaves "applied" alone: the
	 * daemon's replay still has the tail to do. */
	t = store_txn_begin(st, true);
	obs_fill(&o, "3206", "ind_ev", "output", "2025", 1);
	ck_assert_int_eq(store_obs_put(t, &o, NULL, NULL), 0);
	ck_assert_uint_eq(o.lsn, 4);
	ck_assert_int_eq(store_meta_get(t, STORE_META_APPLIED, &applied), 0);
	ck_assert_uint_eq(applied, 0);
	ck_assert_int_eq(store_meta_put(t, STORE_META_APPLIED, 4), 0);
	obs_fill(&o, "3206", "ind_ev", "output", "2025", 2);
	ck_assert_int_eq(store_obs_put(t, &o, &got, NULL), 0);
	ck_assert_uint_eq(o.revision, 2);
	ck_assert_uint_eq(o.prev, 4);
	ck_assert(got.value == 1);
	ck_assert_int_eq(store_meta_get(t, STORE_META_APPLIED, &applied), 0);
	ck_assert_uint_eq(applied, 5);
	ck_assert_int_eq(store_txn_commit(&t), 0);
}
END_TEST

/* Keys of the chain cases: the one scanned, and one apart by period. */
static const char *const chain_periods[] = { "2025", "2024" };

/*
 * Logs as store_log_append() writes them, with the prev links (and the
 * ObsRef of key 0) set by hand; store_hist_scan() of key 0 must walk a
 * sound chain oldest first and refuse (-1) a broken one rather than loop,
 * skip or mix in another key's records.
 */
static const struct {
	const char *what;
	struct {
		int key; /* index in chain_periods */
		uint64_t prev;
	} recs[4];
	size_t nrecs;
	uint64_t ref; /* key 0's ObsRef.lsn */
	int rc;
	const char *seen; /* collect_lsn() of a sound chain */
} chain_cases[] = {
	{ "sound", { { 0, 0 }, { 1, 0 }, { 0, 1 } }, 3, 3, 0,
	    "1:2025/1 3:2025/2" },
	{ "prev forward", { { 0, 0 }, { 0, 3 }, { 0, 2 } }, 3, 2, -1, NULL },
	{ "prev to itself", { { 0, 0 }, { 0, 2 } }, 2, 2, -1, NULL },
	{ "prev to another key", { { 1, 0 }, { 0, 1 } }, 2, 2, -1, NULL },
	{ "prev to another key, further back", { { 0, 0 }, { 1, 0 }, { 0, 2 } },
	    3, 3, -1, NULL },
	{ "ref to another key", { { 0, 0 }, { 1, 0 } }, 2, 2, -1, NULL },
	{ "ref past the log", { { 0, 0 } }, 1, 5, -1, NULL },
};

START_TEST(test_hist_chain)
{
	struct store_obs o;
	struct store_ref ref = { 0 };
	struct store_txn *t;
	uint32_t revs[2] = { 0, 0 };
	char seen[256] = "";
	int rc;

	t = store_txn_begin(st, true);
	ck_assert_ptr_nonnull(t);
	for (size_t i = 0; i < chain_cases[_i].nrecs; i++) {
		int key = chain_cases[_i].recs[i].key;

		obs_fill(&o, "3205", "ind_ev", "output", chain_periods[key],
		    (double)i);
		o.revision = ++revs[key];
		o.prev = chain_cases[_i].recs[i].prev;
		o.batch = 1;
		ck_assert_int_eq(store_log_append(t, &o), 0);
		ck_assert_uint_eq(o.lsn, i + 1);
	}
	ref.revision = revs[0] > 0 ? revs[0] : 1;
	ref.lsn = chain_cases[_i].ref;
	ck_assert_int_eq(
	    store_ref_put(t, "3205", "ind_ev", "output", "2025", &ref), 0);
	ck_assert_int_eq(store_txn_commit(&t), 0);

	t = store_txn_begin(st, false);
	ck_assert_ptr_nonnull(t);
	rc = store_hist_scan(
	    t, "3205", "ind_ev", "output", "2025", collect_lsn, seen);
	store_txn_abort(&t);
	ck_assert_msg(rc == chain_cases[_i].rc, "%s: store_hist_scan gave %d",
	    chain_cases[_i].what, rc);
	if (chain_cases[_i].seen != NULL)
		ck_assert_str_eq(seen, chain_cases[_i].seen);
}
END_TEST

START_TEST(test_seq)
{
	static const struct {
		const char *agent;
		uint64_t epoch;
	} keys[] = {
		{ "b", 1 },
		{ "a", 256 },
		{ "a", 2 },
		{ "ab", 1 },
		{ "a", UINT64_MAX },
	};
	struct store_seq s, got;
	struct seq_seen seen = { "", 0 };
	struct store_txn *t;
	size_t i;

	t = store_txn_begin(st, true);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		s.last_seq = 1000 + i;
		s.first_seen_ms = 17000000000LL + (int64_t)i;
		s.last_seen_ms = 18000000000LL + (int64_t)i;
		s.accepted = i + 1;
		s.rejected = 2 * i;
		ck_assert_int_eq(
		    store_seq_put(t, keys[i].agent, keys[i].epoch, &s), 0);
	}
	ck_assert_int_eq(store_txn_commit(&t), 0);

	t = store_txn_begin(st, true);
	/* An update replaces. */
	ck_assert_int_eq(store_seq_get(t, "b", 1, &got), 0);
	got.last_seq = 5555;
	ck_assert_int_eq(store_seq_put(t, "b", 1, &got), 0);
	ck_assert_int_eq(store_txn_commit(&t), 0);

	t = store_txn_begin(st, false);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		ck_assert_int_eq(
		    store_seq_get(t, keys[i].agent, keys[i].epoch, &got), 0);
		ck_assert_uint_eq(got.last_seq, i == 0 ? 5555 : 1000 + i);
		ck_assert_int_eq(got.first_seen_ms, 17000000000LL + (int64_t)i);
		ck_assert_int_eq(got.last_seen_ms, 18000000000LL + (int64_t)i);
		ck_assert_uint_eq(got.accepted, i + 1);
		ck_assert_uint_eq(got.rejected, 2 * i);
	}
	ck_assert_int_eq(store_seq_get(t, "a", 3, &got), STORE_NOTFOUND);
	ck_assert_int_eq(store_seq_get(t, "c", 1, &got), STORE_NOTFOUND);
	ck_assert_int_eq(store_seq_scan(t, collect_seq, &seen), 0);
	store_txn_abort(&t);
	ck_assert_str_eq(
	    seen.keys, "a:2 a:256 a:18446744073709551615 ab:1 b:1");
	ck_assert_uint_eq(seen.accepted_sum, 1 + 2 + 3 + 4 + 5);
}
END_TEST

START_TEST(test_reject)
{
	static const unsigned char ack1[] = { 0x08, 0x02, 0x12, 0x00, 0xff };
	static const unsigned char ack2[] = { 0x01 };
	const void *buf;
	size_t len;
	struct store_txn *t;

	t = store_txn_begin(st, true);
	ck_assert_int_eq(
	    store_reject_put(t, "agent", 7, 10, ack1, sizeof(ack1)), 0);
	ck_assert_int_eq(
	    store_reject_put(t, "agent", 7, 11, ack2, sizeof(ack2)), 0);
	ck_assert_int_eq(store_txn_commit(&t), 0);

	t = store_txn_begin(st, false);
	ck_assert_int_eq(store_reject_get(t, "agent", 7, 10, &buf, &len), 0);
	ck_assert_uint_eq(len, sizeof(ack1));
	ck_assert_mem_eq(buf, ack1, sizeof(ack1));
	ck_assert_int_eq(store_reject_get(t, "agent", 7, 11, &buf, &len), 0);
	ck_assert_uint_eq(len, sizeof(ack2));
	ck_assert_mem_eq(buf, ack2, sizeof(ack2));
	ck_assert_int_eq(
	    store_reject_get(t, "agent", 7, 12, &buf, &len), STORE_NOTFOUND);
	ck_assert_int_eq(
	    store_reject_get(t, "agent", 8, 10, &buf, &len), STORE_NOTFOUND);
	ck_assert_int_eq(
	    store_reject_get(t, "agent2", 7, 10, &buf, &len), STORE_NOTFOUND);
	store_txn_abort(&t);
}
END_TEST

static int
count_stage(const char *agent_id, uint64_t epoch,
    const struct store_stage *stage, void *arg)
{
	unsigned *n = arg;

	(void)agent_id;
	(void)epoch;
	(void)stage;
	(*n)++;
	return 0;
}

/* A file's stage record and parts: kept per (agent_id, epoch), read
 * back, and removed together without touching another's. */
START_TEST(test_stage)
{
	struct store_stage in = { 0xfeed, 3, 2, 41, 1000, 2000, 0, 77 }, out;
	struct store_txn *t;
	const void *buf;
	size_t len;
	unsigned n = 0;

	t = store_txn_begin(st, true);
	ck_assert_int_eq(store_stage_put(t, "a", 1, &in), 0);
	ck_assert_int_eq(store_stage_put(t, "a", 2, &in), 0);
	ck_assert_int_eq(store_staged_put(t, "a", 1, 1, "one", 3), 0);
	ck_assert_int_eq(store_staged_put(t, "a", 1, 2, "two", 3), 0);
	ck_assert_int_eq(store_staged_put(t, "a", 2, 1, "other", 5), 0);
	ck_assert_int_eq(store_txn_commit(&t), 0);

	t = store_txn_begin(st, true);
	ck_assert_int_eq(store_stage_get(t, "a", 1, &out), 0);
	ck_assert_uint_eq(out.file_id, 0xfeed);
	ck_assert_uint_eq(out.parts, 3);
	ck_assert_uint_eq(out.received, 2);
	ck_assert_uint_eq(out.first_seq, 41);
	ck_assert_int_eq(out.last_ms, 2000);
	ck_assert_uint_eq(out.bytes, 77);
	ck_assert_int_eq(store_staged_get(t, "a", 1, 2, &buf, &len), 0);
	ck_assert_uint_eq(len, 3);
	ck_assert_mem_eq(buf, "two", 3);
	ck_assert_int_eq(store_stage_scan(t, count_stage, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(store_stage_del(t, "a", 1), 0);
	ck_assert_int_eq(store_stage_del(t, "b", 1), 0);
	ck_assert_int_eq(store_txn_commit(&t), 0);

	t = store_txn_begin(st, false);
	ck_assert_int_eq(store_stage_get(t, "a", 1, &out), STORE_NOTFOUND);
	ck_assert_int_eq(
	    store_staged_get(t, "a", 1, 1, &buf, &len), STORE_NOTFOUND);
	ck_assert_int_eq(
	    store_staged_get(t, "a", 1, 2, &buf, &len), STORE_NOTFOUND);
	ck_assert_int_eq(store_stage_get(t, "a", 2, &out), 0);
	ck_assert_int_eq(store_staged_get(t, "a", 2, 1, &buf, &len), 0);
	ck_assert_mem_eq(buf, "other", 5);
	store_txn_abort(&t);
}
END_TEST

struct agg_seen {
	char topics[512];
	size_t total_len;
};

static int
collect_agg(const char *topic, const void *buf, size_t len, void *arg)
{
	struct agg_seen *a = arg;

	(void)buf;
	snprintf(a->topics + strlen(a->topics),
	    sizeof(a->topics) - strlen(a->topics), "%s%s",
	    a->topics[0] ? " " : "", topic);
	a->total_len += len;
	return 0;
}

static const char *const agg_topics[] = {
	"agg/output/all/city/2025",
	"agg/output/ind_ev/3205/2025",
	"agg/invest/all/city/2025",
	"agg/output/all/city/2025-Q1",
};

static const struct {
	const char *prefix;
	const char *want;
} agg_cases[] = {
	{ "", "agg/invest/all/city/2025 agg/output/all/city/2025 "
	      "agg/output/all/city/2025-Q1 agg/output/ind_ev/3205/2025" },
	{ NULL, "agg/invest/all/city/2025 agg/output/all/city/2025 "
		"agg/output/all/city/2025-Q1 agg/output/ind_ev/3205/2025" },
	{ "agg/output/", "agg/output/all/city/2025 agg/output/all/city/2025-Q1 "
			 "agg/output/ind_ev/3205/2025" },
	{ "agg/output/all/city/2025",
	    "agg/output/all/city/2025 agg/output/all/city/2025-Q1" },
	{ "agg/invest/", "agg/invest/all/city/2025" },
	{ "agg/zzz", "" },
	{ "agg/a", "" },
};

START_TEST(test_agg)
{
	struct agg_seen seen = { "", 0 };
	struct store_txn *t;
	const void *buf;
	size_t i, len;

	t = store_txn_begin(st, true);
	for (i = 0; i < sizeof(agg_topics) / sizeof(agg_topics[0]); i++)
		ck_assert_int_eq(store_agg_put(t, agg_topics[i], agg_topics[i],
				     strlen(agg_topics[i])),
		    0);
	ck_assert_int_eq(store_txn_commit(&t), 0);

	t = store_txn_begin(st, false);
	for (i = 0; i < sizeof(agg_topics) / sizeof(agg_topics[0]); i++) {
		ck_assert_int_eq(
		    store_agg_get(t, agg_topics[i], &buf, &len), 0);
		ck_assert_uint_eq(len, strlen(agg_topics[i]));
		ck_assert_mem_eq(buf, agg_topics[i], len);
	}
	ck_assert_int_eq(
	    store_agg_get(t, "agg/output/all/city/2024", &buf, &len),
	    STORE_NOTFOUND);
	ck_assert_int_eq(
	    store_agg_scan(t, agg_cases[_i].prefix, collect_agg, &seen), 0);
	store_txn_abort(&t);
	ck_assert_str_eq(seen.topics, agg_cases[_i].want);
}
END_TEST

START_TEST(test_meta)
{
	struct store_txn *t;
	uint64_t v = 99;

	t = store_txn_begin(st, false);
	ck_assert_int_eq(store_meta_get(t, "pub_seq", &v), 0);
	ck_assert_uint_eq(v, 0);
	store_txn_abort(&t);

	t = store_txn_begin(st, true);
	ck_assert_int_eq(store_meta_put(t, "pub_seq", 42), 0);
	ck_assert_int_eq(store_meta_put(t, "other", UINT64_MAX), 0);
	ck_assert_int_eq(store_txn_commit(&t), 0);

	t = store_txn_begin(st, false);
	ck_assert_int_eq(store_meta_get(t, "pub_seq", &v), 0);
	ck_assert_uint_eq(v, 42);
	ck_assert_int_eq(store_meta_get(t, "other", &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	store_txn_abort(&t);
}
END_TEST

/* One of everything, so that tests can check it all. */
static void
put_everything(struct store_txn *t)
{
	struct store_seq s = { 5, 1, 2, 3, 4 };
	struct store_obs o;

	obs_fill(&o, "3205", "ind_ev", "output", "2025", 1.5);
	ck_assert_int_eq(store_obs_put(t, &o, NULL, NULL), 0);
	ck_assert_int_eq(store_seq_put(t, "agent", 9, &s), 0);
	ck_assert_int_eq(store_reject_put(t, "agent", 9, 4, "ack", 3), 0);
	ck_assert_int_eq(store_agg_put(t, agg_topics[0], "agg", 3), 0);
	ck_assert_int_eq(store_meta_put(t, "pub_seq", 17), 0);
}

static void assert_everything_n(struct store *s, uint64_t nobs);

static void
assert_everything(struct store *s)
{
	assert_everything_n(s, 1);
}

/* The same with nobs observations in all (put_everything's and others of
 * district 3206). */
static void
assert_everything_n(struct store *s, uint64_t nobs)
{
	struct store_stat stat;
	struct store_txn *t;
	struct store_obs o;
	struct store_seq sq;
	struct collect c = { .n = 0 };
	const void *buf;
	size_t len;
	uint64_t v;

	t = store_txn_begin(s, false);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(
	    store_obs_get(t, "3205", "ind_ev", "output", "2025", &o), 0);
	ck_assert_double_eq(o.value, 1.5);
	ck_assert_int_eq(store_hist_scan(t, "3205", "ind_ev", "output", "2025",
			     collect_obs, &c),
	    0);
	ck_assert_uint_eq(c.n, 1);
	ck_assert_int_eq(store_seq_get(t, "agent", 9, &sq), 0);
	ck_assert_uint_eq(sq.last_seq, 5);
	ck_assert_int_eq(store_reject_get(t, "agent", 9, 4, &buf, &len), 0);
	ck_assert_uint_eq(len, 3);
	ck_assert_mem_eq(buf, "ack", 3);
	ck_assert_int_eq(store_agg_get(t, agg_topics[0], &buf, &len), 0);
	ck_assert_mem_eq(buf, "agg", 3);
	ck_assert_int_eq(store_meta_get(t, "pub_seq", &v), 0);
	ck_assert_uint_eq(v, 17);
	ck_assert_int_eq(store_stat(t, &stat), 0);
	ck_assert_uint_eq(stat.nobs, nobs);
	ck_assert_uint_eq(stat.nhist, nobs);
	ck_assert_uint_eq(stat.nagents, 1);
	ck_assert_uint_eq(stat.naggs, 1);
	ck_assert_uint_eq(stat.map_size, store_map_size(s));
	ck_assert_uint_gt(stat.used_bytes, 0);
	ck_assert_uint_le(stat.used_bytes, stat.map_size);
	store_txn_abort(&t);
}

START_TEST(test_abort)
{
	struct store_stat stat;
	struct store_txn *t;
	struct store_obs o;
	struct store_seq sq;
	const void *buf;
	size_t len;
	uint64_t v;

	t = store_txn_begin(st, true);
	put_everything(t);
	store_txn_abort(&t);
	ck_assert_ptr_null(t);
	store_txn_abort(&t);

	t = store_txn_begin(st, false);
	ck_assert_int_eq(
	    store_obs_get(t, "3205", "ind_ev", "output", "2025", &o),
	    STORE_NOTFOUND);
	ck_assert_int_eq(store_seq_get(t, "agent", 9, &sq), STORE_NOTFOUND);
	ck_assert_int_eq(
	    store_reject_get(t, "agent", 9, 4, &buf, &len), STORE_NOTFOUND);
	ck_assert_int_eq(
	    store_agg_get(t, agg_topics[0], &buf, &len), STORE_NOTFOUND);
	ck_assert_int_eq(store_meta_get(t, "pub_seq", &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(store_stat(t, &stat), 0);
	ck_assert_uint_eq(
	    stat.nobs + stat.nhist + stat.nagents + stat.naggs, 0);
	store_txn_abort(&t);

	/* And the store still takes writes. */
	t = store_txn_begin(st, true);
	put_everything(t);
	ck_assert_int_eq(store_txn_commit(&t), 0);
	assert_everything(st);
}
END_TEST

START_TEST(test_reopen)
{
	struct store_txn *t;

	t = store_txn_begin(st, true);
	put_everything(t);
	ck_assert_int_eq(store_txn_commit(&t), 0);
	store_close(&st);
	ck_assert_ptr_null(st);
	store_close(&st);

	st = open_store(sdir, 0, 0, false);
	assert_everything(st);
	store_close(&st);
	/* Read-only too. */
	st = open_store(sdir, 0, 0, true);
	assert_everything(st);
	ck_assert_ptr_null(store_txn_begin(st, true));
}
END_TEST

START_TEST(test_readonly_missing)
{
	struct store_opts o = { NULL, 0, 0, true, STORE_SYNC_FULL };
	char path[1100], err[256] = "";

	snprintf(path, sizeof(path), "%s/nothing", dir);
	o.dir = path;
	ck_assert_ptr_null(store_open(&o, err, sizeof(err)));
	ck_assert_msg(strstr(err, "no store at") != NULL, "err: %s", err);
	ck_assert_msg(strstr(err, path) != NULL, "err: %s", err);
	/* And it did not create it. */
	ck_assert_int_eq(access(path, F_OK), -1);
	/* An empty directory holds no store either. */
	ck_assert_int_eq(mkdir(path, 0700), 0);
	err[0] = '\0';
	ck_assert_ptr_null(store_open(&o, err, sizeof(err)));
	ck_assert_msg(strstr(err, "no store at") != NULL, "err: %s", err);
}
END_TEST

static void
pipe_send(int fd, char c)
{
	ck_assert_int_eq(write(fd, &c, 1), 1);
}

static char
pipe_recv(int fd)
{
	char c = 0;

	ck_assert_int_eq(read(fd, &c, 1), 1);
	return c;
}

/* The writer, in a child process, as the daemon would be. */
static void
writer_child(int to_parent, int from_parent)
{
	struct store_txn *t;
	struct store_obs o;
	int ok;

	st = open_store(sdir, 0, 0, false);
	obs_fill(&o, "3205", "ind_ev", "output", "2025", 1);
	put_one(st, &o);
	pipe_send(to_parent, '1');
	if (pipe_recv(from_parent) != 'w')
		_exit(2);
	obs_fill(&o, "3206", "ind_ev", "output", "2025", 2);
	t = store_txn_begin(st, true);
	ok = t != NULL && store_obs_put(t, &o, NULL, NULL) == 0 &&
	     store_obs_put(t, &o, NULL, NULL) == 0 && store_txn_commit(&t) == 0;
	pipe_send(to_parent, ok ? '2' : 'x');
	pipe_recv(from_parent);
	store_close(&st);
	_exit(ok ? 0 : 1);
}

START_TEST(test_readonly_concurrent)
{
	struct store_filter f = { NULL, NULL, NULL, NULL };
	struct collect c = { .n = 0 };
	struct store_txn *old, *t;
	struct store_stat stat;
	struct store_obs o;
	struct store *ro;
	int up[2], down[2], status;
	pid_t pid;

	ck_assert_int_eq(pipe(up), 0);
	ck_assert_int_eq(pipe(down), 0);
	/* An LMDB environment must not cross a fork. */
	store_close(&st);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0)
		writer_child(up[1], down[0]);
	ck_assert_int_eq(pipe_recv(up[0]), '1');

	ro = open_store(sdir, 0, 0, true);
	old = store_txn_begin(ro, false);
	ck_assert_ptr_nonnull(old);
	ck_assert_int_eq(
	    store_obs_get(old, "3205", "ind_ev", "output", "2025", &o), 0);
	ck_assert_int_eq(
	    store_obs_get(old, "3206", "ind_ev", "output", "2025", &o),
	    STORE_NOTFOUND);

	pipe_send(down[1], 'w');
	ck_assert_int_eq(pipe_recv(up[0]), '2');
	/* The old snapshot stays as it was. */
	ck_assert_int_eq(
	    store_obs_get(old, "3206", "ind_ev", "output", "2025", &o),
	    STORE_NOTFOUND);
	store_txn_abort(&old);
	t = store_txn_begin(ro, false);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(
	    store_obs_get(t, "3206", "ind_ev", "output", "2025", &o), 0);
	ck_assert_uint_eq(o.revision, 2);
	ck_assert_int_eq(store_obs_scan(t, &f, collect_obs, &c), 0);
	ck_assert_str_eq(c.keys, "3205/ind_ev/output/2025 "
				 "3206/ind_ev/output/2025");
	ck_assert_int_eq(store_stat(t, &stat), 0);
	ck_assert_uint_eq(stat.nobs, 2);
	ck_assert_uint_eq(stat.nhist, 3);
	store_txn_abort(&t);

	pipe_send(down[1], 'q');
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	store_close(&ro);
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
}
END_TEST

/* A store of its own: an existing one keeps the size it was made with. */
static void
small_dir(void)
{
	free(sdir);
	sdir = xmalloc(strlen(dir) + 7);
	sprintf(sdir, "%s/small", dir);
}

#define FULL_TOTAL 3000
#define FULL_BATCH 100

static void
full_batch(struct store_obs *o, size_t first)
{
	char d[32];
	size_t i;

	for (i = first; i < first + FULL_BATCH; i++) {
		snprintf(d, sizeof(d), "d%05zu", i);
		obs_fill(o, d, "ind_ev", "output", "2025", (double)i);
		o++;
	}
}

START_TEST(test_map_full)
{
	struct store_obs batch[FULL_BATCH], o;
	struct store_stat stat;
	struct store_txn *t;
	uint64_t size0;
	size_t first, i;
	int fulls = 0, rc;

	store_close(&st);
	small_dir();
	st = open_store(sdir, 64 << 10, 8 << 20, false);
	size0 = store_map_size(st);
	ck_assert_uint_eq(size0, 64 << 10);
	for (first = 0; first < FULL_TOTAL; first += FULL_BATCH) {
		full_batch(batch, first);
	redo:
		t = store_txn_begin(st, true);
		ck_assert_ptr_nonnull(t);
		rc = 0;
		for (i = 0; i < FULL_BATCH && rc == 0; i++)
			rc = store_obs_put(t, &batch[i], NULL, NULL);
		if (rc == 0)
			rc = store_txn_commit(&t);
		else
			store_txn_abort(&t);
		if (rc == STORE_FULL) {
			fulls++;
			ck_assert_int_eq(store_grow(st), 0);
			goto redo;
		}
		ck_assert_int_eq(rc, 0);
	}
	ck_assert_int_gt(fulls, 0);
	ck_assert_uint_gt(store_map_size(st), size0);
	ck_assert_uint_le(store_map_size(st), 8 << 20);

	/* Reopen with the small size: the grown size is kept. */
	size0 = store_map_size(st);
	store_close(&st);
	st = open_store(sdir, 64 << 10, 8 << 20, false);
	ck_assert_uint_ge(store_map_size(st), size0);
	obs_fill(&o, "d00000", "ind_ev", "output", "2025", 0.5);
	ck_assert_uint_eq(put_one(st, &o), 2);

	t = store_txn_begin(st, false);
	ck_assert_int_eq(store_stat(t, &stat), 0);
	ck_assert_uint_eq(stat.nobs, FULL_TOTAL);
	ck_assert_uint_eq(stat.nhist, FULL_TOTAL + 1);
	for (i = 1; i < FULL_TOTAL; i++) {
		char d[32];

		snprintf(d, sizeof(d), "d%05zu", i);
		ck_assert_int_eq(
		    store_obs_get(t, d, "ind_ev", "output", "2025", &o), 0);
		ck_assert_double_eq(o.value, (double)i);
		ck_assert_uint_eq(o.revision, 1);
	}
	store_txn_abort(&t);
}
END_TEST

/* A writer in a child grows the map past what a reader mapped. */
START_TEST(test_readonly_growth)
{
	struct store_obs batch[FULL_BATCH];
	struct store_stat stat;
	struct store_txn *t;
	struct store *ro;
	uint64_t size0;
	int status, rc;
	size_t first, i;
	pid_t pid;

	store_close(&st);
	small_dir();
	st = open_store(sdir, 64 << 10, 8 << 20, false);
	full_batch(batch, 0);
	t = store_txn_begin(st, true);
	ck_assert_int_eq(store_obs_put(t, &batch[0], NULL, NULL), 0);
	ck_assert_int_eq(store_txn_commit(&t), 0);
	store_close(&st);

	ro = open_store(sdir, 0, 0, true);
	size0 = store_map_size(ro);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		st = open_store(sdir, 64 << 10, 8 << 20, false);
		for (first = FULL_BATCH; first < FULL_TOTAL;) {
			full_batch(batch, first);
			t = store_txn_begin(st, true);
			rc = 0;
			for (i = 0; i < FULL_BATCH && rc == 0; i++)
				rc = store_obs_put(t, &batch[i], NULL, NULL);
			if (rc == 0)
				rc = store_txn_commit(&t);
			else
				store_txn_abort(&t);
			if (rc == STORE_FULL && store_grow(st) == 0)
				continue;
			if (rc != 0)
				_exit(1);
			first += FULL_BATCH;
		}
		store_close(&st);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);

	t = store_txn_begin(ro, false);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_gt(store_map_size(ro), size0);
	ck_assert_int_eq(store_stat(t, &stat), 0);
	/* d00000 from before the fork, then the child's. */
	ck_assert_uint_eq(stat.nobs, 1 + FULL_TOTAL - FULL_BATCH);
	ck_assert_int_eq(
	    store_obs_get(t, "d02999", "ind_ev", "output", "2025", &batch[0]),
	    0);
	ck_assert_double_eq(batch[0].value, 2999);
	store_txn_abort(&t);
	store_close(&ro);
}
END_TEST

/*
 * An LMDB environment without the store's databases (here an outbox's)
 * reads as an empty store.
 */
START_TEST(test_readonly_no_dbs)
{
	struct store_filter f = { "3205", NULL, NULL, NULL };
	struct collect c = { .n = 0 };
	struct seq_seen seen = { "", 0 };
	struct agg_seen aseen = { "", 0 };
	struct store_stat stat;
	struct store_txn *t;
	struct store_obs o;
	struct store_seq sq;
	struct outbox *ob;
	struct store *ro;
	char err[256];
	const void *buf;
	size_t len;

	small_dir();
	ob = outbox_open(sdir, err, sizeof(err));
	ck_assert_msg(ob != NULL, "%s", err);
	outbox_close(&ob);

	ro = open_store(sdir, 0, 0, true);
	t = store_txn_begin(ro, false);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(
	    store_obs_get(t, "3205", "ind_ev", "output", "2025", &o),
	    STORE_NOTFOUND);
	ck_assert_int_eq(store_obs_scan(t, NULL, collect_obs, &c), 0);
	ck_assert_int_eq(store_obs_scan(t, &f, collect_obs, &c), 0);
	ck_assert_int_eq(store_hist_scan(t, "3205", "ind_ev", "output", "2025",
			     collect_obs, &c),
	    0);
	ck_assert_uint_eq(c.n, 0);
	ck_assert_int_eq(store_seq_get(t, "a", 1, &sq), STORE_NOTFOUND);
	ck_assert_int_eq(store_seq_scan(t, collect_seq, &seen), 0);
	ck_assert_str_eq(seen.keys, "");
	ck_assert_int_eq(
	    store_reject_get(t, "a", 1, 1, &buf, &len), STORE_NOTFOUND);
	ck_assert_int_eq(
	    store_agg_get(t, agg_topics[0], &buf, &len), STORE_NOTFOUND);
	ck_assert_int_eq(store_agg_scan(t, "", collect_agg, &aseen), 0);
	ck_assert_str_eq(aseen.topics, "");
	ck_assert_int_eq(store_stat(t, &stat), 0);
	ck_assert_uint_eq(
	    stat.nobs + stat.nhist + stat.nagents + stat.naggs, 0);
	store_txn_abort(&t);
	store_close(&ro);
}
END_TEST

static const struct {
	uint64_t map_size, map_max;
	uint64_t sizes[4]; /* after each successful grow; 0 ends */
} grow_cases[] = {
	{ 64 << 10, 256 << 10, { 128 << 10, 256 << 10, 0 } },
	{ 64 << 10, 200 << 10, { 128 << 10, 200 << 10, 0 } },
	{ 64 << 10, 64 << 10, { 0 } },
	{ 64 << 10, 128 << 10, { 128 << 10, 0 } },
};

START_TEST(test_grow_cap)
{
	struct store_txn *t;
	size_t i;

	store_close(&st);
	small_dir();
	st = open_store(
	    sdir, grow_cases[_i].map_size, grow_cases[_i].map_max, false);
	for (i = 0; grow_cases[_i].sizes[i] != 0; i++) {
		ck_assert_int_eq(store_grow(st), 0);
		ck_assert_uint_eq(store_map_size(st), grow_cases[_i].sizes[i]);
	}
	ck_assert_int_eq(store_grow(st), -1);
	ck_assert_int_eq(store_grow(st), -1);
	ck_assert_uint_eq(store_map_size(st), grow_cases[_i].map_max);
	/* Still usable. */
	t = store_txn_begin(st, true);
	put_everything(t);
	ck_assert_int_eq(store_txn_commit(&t), 0);
	assert_everything(st);
}
END_TEST

START_TEST(test_grow_txn_open)
{
	struct store_txn *t;
	uint64_t size;

	size = store_map_size(st);
	t = store_txn_begin(st, false);
	ck_assert_int_eq(store_grow(st), -1);
	store_txn_abort(&t);
	ck_assert_uint_eq(store_map_size(st), size);
	ck_assert_int_eq(store_grow(st), 0);
	ck_assert_uint_eq(store_map_size(st), 2 * size);
}
END_TEST

START_TEST(test_backup)
{
	char bdir[1100];
	struct store_txn *t;
	struct store *b;

	t = store_txn_begin(st, true);
	put_everything(t);
	ck_assert_int_eq(store_txn_commit(&t), 0);

	snprintf(bdir, sizeof(bdir), "%s/backup", dir);
	ck_assert_int_eq(store_backup(st, bdir), -1);
	ck_assert_int_eq(mkdir(bdir, 0700), 0);
	ck_assert_int_eq(store_backup(st, bdir), 0);
	b = open_store(bdir, 0, 0, true);
	assert_everything(b);
	store_close(&b);
	/* The copy is a full store that takes writes. */
	b = open_store(bdir, 0, 0, false);
	assert_everything(b);
	store_close(&b);
	/* And the original goes on. */
	assert_everything(st);
}
END_TEST

/*
 * Rewrites an mdb_dump -a of a store of format 4 as one of format 3: each
 * value without its last 4 bytes (the checksum), meta "format" left out.
 */
static void
dump_strip_sums(const char *in, const char *out)
{
	static char line[1 << 16], key[1 << 12];
	FILE *f = fopen(in, "r"), *g = fopen(out, "w");
	bool data = false, meta = false, at_key = true;

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(g);
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t n = strlen(line);

		if (!data) {
			fputs(line, g);
			if (strncmp(line, "database=", 9) == 0)
				meta = strcmp(line + 9, "meta\n") == 0;
			if (strcmp(line, "HEADER=END\n") == 0) {
				data = true;
				at_key = true;
			}
			continue;
		}
		if (strcmp(line, "DATA=END\n") == 0) {
			fputs(line, g);
			data = false;
			continue;
		}
		if (at_key) {
			ck_assert_uint_lt(n, sizeof(key));
			memcpy(key, line, n + 1);
			at_key = false;
			continue;
		}
		at_key = true;
		if (meta && strcmp(key, " 666f726d6174\n") == 0) /* format */
			continue;
		ck_assert_uint_ge(n, 10);
		line[n - 9] = '\n';
		line[n - 8] = '\0';
		fputs(key, g);
		fputs(line, g);
	}
	fclose(f);
	ck_assert_int_eq(fclose(g), 0);
}

struct scrub_count {
	int damaged;
};

static int
scrub_seen(const char *db, const char *key, const char *why, void *arg)
{
	struct scrub_count *c = arg;

	(void)db;
	(void)key;
	(void)why;
	c->damaged++;
	return 0;
}

/*
 * A store of format 3 (two environments, no checksums; made from a
 * format 4 one with mdb_dump, the checksums cut, and mdb_load, both
 * environments): read as it is when opened read-only (store_checksummed()
 * false), upgraded at a writable open, one transaction per environment,
 * over 3000 log records and their pages: every record then sealed, scrub
 * finds nothing, the contents as they were.
 */
START_TEST(test_format3_upgrade)
{
	char odir[1100], dump[1100], dump2[1100], cmd[4000];
	struct scrub_count c = { 0 };
	struct store_txn *t;
	struct store_obs o;
	struct store *s;
	uint64_t records;

	t = store_txn_begin(st, true);
	put_everything(t);
	for (int i = 0; i < 3000; i++) {
		char ind[16];

		snprintf(ind, sizeof(ind), "ind%04d", i);
		obs_fill(&o, "3206", ind, "output", "2025", i + 0.5);
		ck_assert_int_eq(store_obs_put(t, &o, NULL, NULL), 0);
	}
	ck_assert_int_eq(store_txn_commit(&t), 0);
	ck_assert(store_checksummed(st));
	store_close(&st);

	snprintf(odir, sizeof(odir), "%s/old", dir);
	snprintf(dump, sizeof(dump), "%s/dump", dir);
	snprintf(dump2, sizeof(dump2), "%s/dump2", dir);
	ck_assert_int_eq(mkdir(odir, 0700), 0);
	/* Both environments: the log's and the tables'. */
	for (int e = 0; e < 2; e++) {
		const char *sub = e == 0 ? "" : "/tables";

		if (e == 1) {
			snprintf(cmd, sizeof(cmd), "%s/tables", odir);
			ck_assert_int_eq(mkdir(cmd, 0700), 0);
		}
		snprintf(cmd, sizeof(cmd), "mdb_dump -a '%s%s' > '%s'", sdir,
		    sub, dump);
		ck_assert_int_eq(system(cmd), 0);
		dump_strip_sums(dump, dump2);
		snprintf(cmd, sizeof(cmd),
		    "mdb_load -f '%s' '%s%s' 2>/dev/null", dump2, odir, sub);
		ck_assert_int_eq(system(cmd), 0);
	}

	s = open_store(odir, 0, 0, true);
	ck_assert(!store_checksummed(s));
	assert_everything_n(s, 3001);
	t = store_txn_begin(s, false);
	ck_assert_int_eq(store_scrub(t, 1, scrub_seen, &c, &records), -1);
	store_txn_abort(&t);
	store_close(&s);

	s = open_store(odir, 64 << 10, 0, false);
	ck_assert(store_checksummed(s));
	assert_everything_n(s, 3001);
	t = store_txn_begin(s, false);
	for (int i = 0; i < 3000; i += 299) {
		char ind[16];

		snprintf(ind, sizeof(ind), "ind%04d", i);
		ck_assert_int_eq(
		    store_obs_get(t, "3206", ind, "output", "2025", &o), 0);
		ck_assert_double_eq(o.value, i + 0.5);
	}
	ck_assert_int_eq(store_scrub(t, 1, scrub_seen, &c, &records), 0);
	ck_assert_int_eq(c.damaged, 0);
	ck_assert_uint_ge(records, 6000);
	store_txn_abort(&t);
	store_close(&s);
	/* Opened again: format 4 already, nothing to upgrade. */
	s = open_store(odir, 0, 0, false);
	ck_assert(store_checksummed(s));
	store_close(&s);
	st = open_store(sdir, 0, 0, false);
}
END_TEST

#define S33 "abcdefghijklmnopqrstuvwxyz0123456"
#define S32 "abcdefghijklmnopqrstuvwxyz012345"
#define S65 S33 S32

static const struct {
	const char *d, *i, *m, *p;
	int want; /* 0 when the codes are fine */
} long_cases[] = {
	{ S33, "i", "m", "2025", -1 },
	{ "d", S33, "m", "2025", -1 },
	{ "d", "i", S33, "2025", -1 },
	{ "d", "i", "m", "2025-Q12", -1 },
	{ "", "i", "m", "2025", -1 },
	{ S32, S32, S32, "2025-09", 0 },
};

START_TEST(test_long_codes)
{
	struct store_filter f = { S33, NULL, NULL, NULL };
	struct store_stat stat;
	struct store_seq sq = { 1, 0, 0, 0, 0 };
	struct collect c = { .n = 0 };
	struct store_txn *t;
	struct store_obs o, got;
	const void *buf;
	size_t len;
	int want = long_cases[_i].want;

	memset(&o, 0, sizeof(o));
	t = store_txn_begin(st, true);
	/* Codes too long for the struct can only be passed to the others. */
	if (strlen(long_cases[_i].d) < sizeof(o.district) &&
	    strlen(long_cases[_i].i) < sizeof(o.industry) &&
	    strlen(long_cases[_i].m) < sizeof(o.metric) &&
	    strlen(long_cases[_i].p) < sizeof(o.period)) {
		obs_fill(&o, long_cases[_i].d, long_cases[_i].i,
		    long_cases[_i].m, long_cases[_i].p, 3);
		ck_assert_int_eq(store_obs_put(t, &o, NULL, NULL), want);
	}
	ck_assert_int_eq(store_obs_get(t, long_cases[_i].d, long_cases[_i].i,
			     long_cases[_i].m, long_cases[_i].p, &got),
	    want);
	ck_assert_int_eq(
	    store_hist_scan(t, long_cases[_i].d, long_cases[_i].i,
		long_cases[_i].m, long_cases[_i].p, collect_obs, &c),
	    want);
	ck_assert_int_eq(store_obs_scan(t, &f, collect_obs, &c), -1);
	ck_assert_int_eq(store_seq_put(t, S65, 1, &sq), -1);
	ck_assert_int_eq(store_seq_get(t, S65, 1, &sq), -1);
	ck_assert_int_eq(store_reject_put(t, S65, 1, 1, "x", 1), -1);
	ck_assert_int_eq(store_reject_get(t, S65, 1, 1, &buf, &len), -1);
	ck_assert_int_eq(store_agg_put(t, S65 S65 S65, "x", 1), -1);
	ck_assert_int_eq(store_agg_get(t, S65 S65 S65, &buf, &len), -1);
	ck_assert_int_eq(store_txn_commit(&t), 0);

	t = store_txn_begin(st, false);
	ck_assert_int_eq(store_stat(t, &stat), 0);
	ck_assert_uint_eq(stat.nobs, want == 0 ? 1 : 0);
	ck_assert_uint_eq(stat.nagents + stat.naggs, 0);
	store_txn_abort(&t);
}
END_TEST

/* --- identity and size checks at open (envcheck.h) ------------------ */

/* Fills st with enough to span many pages, and closes it. */
static void
fill_pages(void)
{
	struct store_obs o;
	struct store_txn *t;
	char d[32];

	t = store_txn_begin(st, true);
	put_everything(t);
	for (int i = 0; i < 2000; i++) {
		snprintf(d, sizeof(d), "d%05d", i);
		obs_fill(&o, d, "ind_ev", "output", "2025", (double)i);
		ck_assert_int_eq(store_obs_put(t, &o, NULL, NULL), 0);
	}
	ck_assert_int_eq(store_txn_commit(&t), 0);
	store_close(&st);
}

static off_t
file_size(const char *path)
{
	struct stat sb;

	ck_assert_int_eq(stat(path, &sb), 0);
	return sb.st_size;
}

/* Copies file from to to (whole, binary). */
static void
copy_file(const char *from, const char *to)
{
	char buf[65536];
	ssize_t n;
	int in = open(from, O_RDONLY), out;

	ck_assert_int_ne(in, -1);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ne(out, -1);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		ck_assert_int_eq(write(out, buf, (size_t)n), n);
	ck_assert_int_eq(n, 0);
	close(in);
	close(out);
}

/* store_open() of path must fail, for writing and for reading, saying
 * want; the file data.mdb is left as it was. */
static void
assert_refused(const char *path, const char *want)
{
	char err[4096] = "", file[1100];
	off_t before;

	snprintf(file, sizeof(file), "%s/data.mdb", path);
	before = access(file, F_OK) == 0 ? file_size(file) : -1;
	for (int ro = 0; ro < 2; ro++) {
		struct store_opts o = { path, 0, 0, ro == 1, STORE_SYNC_FULL };
		struct store *s = store_open(&o, err, sizeof(err));

		ck_assert_msg(s == NULL, "%s: opened (%s)", path,
		    ro ? "read-only" : "for writing");
		ck_assert_msg(strstr(err, want) != NULL,
		    "'%s' does not say '%s'", err, want);
		ck_assert_msg(strstr(err, "Backup and restore") != NULL ||
				  strstr(err, "remove") != NULL,
		    "no way out in '%s'", err);
		ck_assert_int_eq(
		    access(file, F_OK) == 0 ? file_size(file) : -1, before);
	}
}

static const struct {
	const char *name;
	int cut; /* bytes kept: 0, 1 page, 2 pages (the meta pages), -2 half,
		    -1 all but the last page */
	const char *want;
} cuts[] = {
	{ "emptied", 0, "is empty, but" },
	{ "one page", 1, "is damaged" },
	{ "meta pages only", 2, "is truncated" },
	{ "half", -2, "is truncated" },
	{ "the last page gone", -1, "is truncated" },
};

/* A truncated data.mdb is refused with a message, for writing and for
 * reading; never a SIGBUS (which would fail this test as a signal). */
START_TEST(test_truncated_refused)
{
	char file[1100];
	long page = sysconf(_SC_PAGESIZE);
	off_t size, keep;

	fill_pages();
	snprintf(file, sizeof(file), "%s/data.mdb", sdir);
	size = file_size(file);
	ck_assert_int_gt(size, 8 * page);
	switch (cuts[_i].cut) {
	case -2:
		keep = size / 2 / page * page;
		break;
	case -1:
		keep = size - page;
		break;
	default:
		keep = cuts[_i].cut * page;
	}
	ck_assert_int_eq(truncate(file, keep), 0);
	assert_refused(sdir, cuts[_i].want);
}
END_TEST

/* Without store.id, the size check still refuses what is cut short; an
 * emptied file cannot be told from a new store then (README). */
START_TEST(test_truncated_without_id)
{
	char file[1100], id[1100];
	off_t size;

	fill_pages();
	snprintf(file, sizeof(file), "%s/data.mdb", sdir);
	snprintf(id, sizeof(id), "%s/store.id", sdir);
	ck_assert_int_eq(unlink(id), 0);
	size = file_size(file);
	ck_assert_int_eq(truncate(file, size / 2), 0);
	assert_refused(sdir, "is truncated");
}
END_TEST

/* A data.mdb older than the store last written here (an old copy put
 * back) is refused, unless its own store.id comes with it: a restore. */
START_TEST(test_older_copy)
{
	char bdir[1100], from[1200], to[1200];
	struct store_txn *t;

	snprintf(bdir, sizeof(bdir), "%s/backup", dir);
	ck_assert_int_eq(mkdir(bdir, 0700), 0);
	t = store_txn_begin(st, true);
	put_everything(t);
	ck_assert_int_eq(store_txn_commit(&t), 0);
	ck_assert_int_eq(store_backup(st, bdir), 0);
	fill_pages();

	snprintf(from, sizeof(from), "%s/data.mdb", bdir);
	snprintf(to, sizeof(to), "%s/data.mdb", sdir);
	copy_file(from, to);
	assert_refused(sdir, "is older than the store last written here");

	snprintf(from, sizeof(from), "%s/store.id", bdir);
	snprintf(to, sizeof(to), "%s/store.id", sdir);
	copy_file(from, to);
	/* Newer tables than the log: refused too. */
	assert_refused(sdir, "past the end of the log");
	/* The whole copy: the tables with it (store format 3). */
	snprintf(from, sizeof(from), "%s/tables/data.mdb", bdir);
	snprintf(to, sizeof(to), "%s/tables/data.mdb", sdir);
	copy_file(from, to);
	st = open_store(sdir, 0, 0, true);
	assert_everything(st);
	store_close(&st);
	st = open_store(sdir, 0, 0, false);
	assert_everything(st);
}
END_TEST

/* Another store's data.mdb is refused; removing store.id accepts it. */
START_TEST(test_other_store)
{
	char odir[1100], from[1200], to[1200];
	struct store_txn *t;
	struct store *other;

	snprintf(odir, sizeof(odir), "%s/other", dir);
	other = open_store(odir, 0, 0, false);
	t = store_txn_begin(other, true);
	put_everything(t);
	ck_assert_int_eq(store_txn_commit(&t), 0);
	store_close(&other);
	fill_pages();

	snprintf(from, sizeof(from), "%s/data.mdb", odir);
	snprintf(to, sizeof(to), "%s/data.mdb", sdir);
	copy_file(from, to);
	assert_refused(sdir, "it is not this directory's store");
	/* Its tables with it (store format 3); alone they are refused. */
	snprintf(from, sizeof(from), "%s/tables/data.mdb", odir);
	snprintf(to, sizeof(to), "%s/tables/data.mdb", sdir);
	copy_file(from, to);
	snprintf(to, sizeof(to), "%s/store.id", sdir);
	ck_assert_int_eq(unlink(to), 0);
	st = open_store(sdir, 0, 0, false);
	assert_everything(st);
}
END_TEST

/* data.mdb gone, or store.id that does not parse: refused. */
START_TEST(test_missing_or_bad_id)
{
	char file[1100], id[1100], moved[1200], *text;

	fill_pages();
	snprintf(file, sizeof(file), "%s/data.mdb", sdir);
	snprintf(id, sizeof(id), "%s/store.id", sdir);
	text = harness_read_file(id);
	ck_assert_ptr_nonnull(text);
	ck_assert_msg(
	    strncmp(text, "indicatord-store 1 id=", 22) == 0, "%s", text);
	snprintf(moved, sizeof(moved), "%s/data.mdb.moved", sdir);
	ck_assert_int_eq(rename(file, moved), 0);
	assert_refused(sdir, "is missing, but");
	ck_assert_int_eq(rename(moved, file), 0);
	harness_write_file(id, "indicatord-store 1 id=zz txn=1 size=2\n");
	assert_refused(sdir, "does not read as a store identity");
	free(text);
}
END_TEST

/* store.id follows the store: a commit, then a close, record its last
 * transaction and its size. */
START_TEST(test_id_follows)
{
	unsigned long long id1, id2, txn1, txn2, size1, size2;
	char path[1100], *text;

	snprintf(path, sizeof(path), "%s/store.id", sdir);
	text = harness_read_file(path);
	ck_assert_int_eq(
	    sscanf(text, "indicatord-store 1 id=%llx txn=%llu size=%llu", &id1,
		&txn1, &size1),
	    3);
	free(text);
	fill_pages();
	text = harness_read_file(path);
	ck_assert_int_eq(
	    sscanf(text, "indicatord-store 1 id=%llx txn=%llu size=%llu", &id2,
		&txn2, &size2),
	    3);
	free(text);
	ck_assert_uint_eq(id1, id2);
	ck_assert_uint_gt(txn2, txn1);
	ck_assert_uint_gt(size2, size1);
	st = open_store(sdir, 0, 0, false);
}
END_TEST

static Suite *
store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc;

	tc = tcase_create("records");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_obs_roundtrip);
	tcase_add_test(tc, test_revisions);
	tcase_add_loop_test(
	    tc, test_obs_scan, 0, sizeof(scan_cases) / sizeof(scan_cases[0]));
	tcase_add_test(tc, test_obs_scan_stop);
	tcase_add_test(tc, test_log_ref);
	tcase_add_loop_test(tc, test_hist_chain, 0,
	    sizeof(chain_cases) / sizeof(chain_cases[0]));
	tcase_add_test(tc, test_seq);
	tcase_add_test(tc, test_reject);
	tcase_add_test(tc, test_stage);
	tcase_add_loop_test(
	    tc, test_agg, 0, sizeof(agg_cases) / sizeof(agg_cases[0]));
	tcase_add_test(tc, test_meta);
	tcase_add_loop_test(
	    tc, test_long_codes, 0, sizeof(long_cases) / sizeof(long_cases[0]));
	suite_add_tcase(s, tc);

	tc = tcase_create("lifecycle");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_abort);
	tcase_add_test(tc, test_reopen);
	tcase_add_test(tc, test_readonly_missing);
	tcase_add_test(tc, test_readonly_concurrent);
	tcase_add_test(tc, test_backup);
	tcase_add_test(tc, test_format3_upgrade);
	suite_add_tcase(s, tc);

	tc = tcase_create("identity");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(
	    tc, test_truncated_refused, 0, sizeof(cuts) / sizeof(cuts[0]));
	tcase_add_test(tc, test_truncated_without_id);
	tcase_add_test(tc, test_older_copy);
	tcase_add_test(tc, test_other_store);
	tcase_add_test(tc, test_missing_or_bad_id);
	tcase_add_test(tc, test_id_follows);
	suite_add_tcase(s, tc);

	tc = tcase_create("map");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_map_full);
	tcase_add_test(tc, test_readonly_growth);
	tcase_add_test(tc, test_readonly_no_dbs);
	tcase_add_loop_test(
	    tc, test_grow_cap, 0, sizeof(grow_cases) / sizeof(grow_cases[0]));
	tcase_add_test(tc, test_grow_txn_open);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	sr = srunner_create(store_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
