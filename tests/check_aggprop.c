/*
 * A property of the real daemon: after every commit, the aggregates in the
 * store are exactly what the latest observations say (PROTOCOL.md,
 * "Aggregates"), however the observations arrived.
 *
 * Several agents send a few thousand random reports over a small key space
 * (revisions of the same keys again and again, unchanged re-sends, money in
 * three units, output values that take industries over 1000 亿元 and back,
 * invalid reports that must change nothing). After each answer the test
 * reads the store read-only, as indicatorctl does, and recomputes every
 * aggregate itself from a scan of the observations: nothing missing,
 * nothing extra, every field right, revisions and publish seqs as the
 * protocol says. The observations are also checked against the test's own
 * model of what was accepted.
 *
 * The seed is printed; AGGPROP_SEED=N replays a run.
 */
#include <check.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <zmq.h>

#include "harness.h"
#include "indicator.pb-c.h"
#include "store.h"
#include "xmalloc.h"

#define DEFAULT_SEED 20250901
#define REPORTS 2000
#define OBS_MAX 8
#define ACK_TIMEOUT_MS 10000
#define REL_TOL 1e-9
#define CITY_DISTRICTS 10 /* districts in the default registry */
#define THRESHOLD 1000.0 /* 亿元: a 千亿级 cluster */

/*
 * ck_assert() records every check it passes (a write to Check's pipe);
 * this is for the checks that run hundreds of thousands of times.
 */
#define REQUIRE(cond, ...)                         \
	do {                                       \
		if (!(cond))                       \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

/* The key space: small, so that keys are revised many times. */
#define NDIST 4
#define NIND 3
#define NMET 3
#define NPER 6
/* Aggregate indices beyond the observation codes. */
#define STAR NIND /* industry "*" */
#define CITY NDIST /* scope "city" */
#define CLUSTERS NMET /* metric clusters_100bn */
#define OUTPUT 0 /* metrics[OUTPUT] is output_value */

static const char *const districts[NDIST] = { "320505", "320506", "320508",
	"320583" };
static const char *const industries[NIND] = { "materials", "photonics",
	"quantum" };
static const struct metric_def {
	const char *code;
	const char *unit; /* canonical */
	bool money;
} metrics[NMET + 1] = {
	{ "output_value", "CNY_100M", true },
	{ "chain_leaders", "count", false },
	{ "core_products", "count", false },
	{ "clusters_100bn", "count", false },
};
/* Years and quarters, none in the future. */
static const struct period_def {
	const char *code;
	int year; /* 0 for a quarter */
} periods[NPER] = {
	{ "2023", 2023 },
	{ "2024", 2024 },
	{ "2025", 2025 },
	{ "2024-Q4", 0 },
	{ "2025-Q1", 0 },
	{ "2025-Q3", 0 },
};
/* The plan's targets (conf/indicatord.conf), all for industry "*", scope
 * city. */
static const struct target_def {
	int metric;
	int year;
	double value;
} targets[] = {
	{ OUTPUT, 2030, 5000 },
	{ OUTPUT, 2035, 10000 },
	{ 1, 2030, 20 },
	{ 2, 2030, 100 },
	{ CLUSTERS, 2035, 1 },
};

/* Money units and the number of them in one 亿元. */
static const struct money_unit {
	const char *code;
	double per_100m;
} money_units[] = {
	{ "CNY_100M", 1 },
	{ "CNY_10K", 1e4 },
	{ "CNY", 1e8 },
};

/* One aggregate, as expected or as last seen. */
struct agg {
	bool exists;
	double value;
	char unit[IND_UNIT_MAX + 1];
	uint32_t reporting;
	uint32_t expected;
	double target;
	uint32_t target_year;
	double progress;
	uint64_t revision; /* seen only */
	uint64_t seq; /* seen only */
	bool districts[NDIST]; /* expected only: who is behind it */
};

struct agent {
	char id[32];
	int district; /* -1: any of them, report by report */
	uint64_t epoch;
	uint64_t seq; /* the last one sent */
};

struct counts {
	unsigned long sent;
	unsigned long accepted;
	unsigned long rejected;
	unsigned long unchanged; /* accepted, every value a re-send */
	unsigned long checks;
	unsigned long aggs; /* stored aggregates compared */
	unsigned long revised; /* aggregates that changed at a commit */
	unsigned long clusters_changes;
};

struct state {
	uint64_t rng;
	struct daemon_proc dm;
	void *zctx;
	void *sock;
	struct store *store;
	struct agent agents[NDIST + 1];
	/* What the test believes is stored: canonical values. */
	bool have[NDIST][NIND][NMET][NPER];
	double model[NDIST][NIND][NMET][NPER];
	/* Indexed [metric][industry or STAR][district or CITY][period]. */
	struct agg expect[NMET + 1][NIND + 1][NDIST + 1][NPER];
	struct agg seen[NMET + 1][NIND + 1][NDIST + 1][NPER];
	struct agg last[NMET + 1][NIND + 1][NDIST + 1][NPER];
	uint64_t last_pub_seq;
	struct counts n;
};

static struct state *st;

/* splitmix64: the same sequence on every platform for a seed. */
static uint64_t
rnd(void)
{
	uint64_t z = (st->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned
rnd_below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

/* True with probability percent / 100. */
static bool
chance(unsigned percent)
{
	return rnd_below(100) < percent;
}

static int
index_of(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

static int
metric_index(const char *s)
{
	for (int m = 0; m <= NMET; m++)
		if (strcmp(metrics[m].code, s) == 0)
			return m;
	return -1;
}

static int
period_index(const char *s)
{
	for (int p = 0; p < NPER; p++)
		if (strcmp(periods[p].code, s) == 0)
			return p;
	return -1;
}

static bool
close_enough(double a, double b)
{
	return fabs(a - b) <= REL_TOL * fmax(fabs(a), fabs(b)) || a == b;
}

/* The nearest target at or after the period's year; NULL for none. */
static const struct target_def *
target_for(int m, int industry, int scope, int p)
{
	const struct target_def *best = NULL;

	if (industry != STAR || scope != CITY || periods[p].year == 0)
		return NULL;
	for (size_t k = 0; k < sizeof(targets) / sizeof(targets[0]); k++) {
		const struct target_def *t = &targets[k];

		if (t->metric != m || t->year < periods[p].year)
			continue;
		if (best == NULL || t->year < best->year)
			best = t;
	}
	return best;
}

static void
expect_add(struct agg *e, int d, double v)
{
	e->exists = true;
	e->value += v;
	e->districts[d] = true;
}

static int
expect_row(const struct store_obs *o, void *arg)
{
	int d = index_of(districts, NDIST, o->district);
	int i = index_of(industries, NIND, o->industry);
	int m = metric_index(o->metric);
	int p = period_index(o->period);
	unsigned long *nobs = arg;

	REQUIRE(d >= 0 && i >= 0 && m >= 0 && m < NMET && p >= 0,
	    "stored observation outside what was sent: %s/%s/%s/%s",
	    o->district, o->industry, o->metric, o->period);
	REQUIRE(st->have[d][i][m][p], "stored %s/%s/%s/%s was never accepted",
	    o->district, o->industry, o->metric, o->period);
	REQUIRE(close_enough(o->value, st->model[d][i][m][p]),
	    "stored %s/%s/%s/%s = %.17g, accepted %.17g", o->district,
	    o->industry, o->metric, o->period, o->value, st->model[d][i][m][p]);
	REQUIRE(strcmp(o->unit, metrics[m].unit) == 0, "%s/%s/%s/%s: unit %s",
	    o->district, o->industry, o->metric, o->period, o->unit);
	REQUIRE(o->revision >= 1, "%s/%s/%s/%s: revision 0", o->district,
	    o->industry, o->metric, o->period);
	/* District-major, as the scan comes: each industry's city sum is
	 * added up in the order the daemon adds it up too. */
	expect_add(&st->expect[m][i][d][p], d, o->value);
	expect_add(&st->expect[m][STAR][d][p], d, o->value);
	expect_add(&st->expect[m][i][CITY][p], d, o->value);
	expect_add(&st->expect[m][STAR][CITY][p], d, o->value);
	(*nobs)++;
	return 0;
}

static void
expect_finish(struct agg *e, int m, int i, int s, int p)
{
	const struct target_def *t;

	if (!e->exists)
		return;
	strlcpy_ok(e->unit, metrics[m].unit, sizeof(e->unit));
	e->reporting = 0;
	for (int d = 0; d < NDIST; d++)
		e->reporting += e->districts[d];
	e->expected = s == CITY ? CITY_DISTRICTS : 1;
	if ((t = target_for(m, i, s, p)) != NULL) {
		e->target = t->value;
		e->target_year = (uint32_t)t->year;
		e->progress = e->value / t->value;
	}
}

/*
 * Every aggregate the observations in the store imply. Values are
 * multiples of 0.25 亿元 that every unit converts exactly, so the sums
 * are exact in any order and the 1000 threshold is a clean cut.
 */
static void
expect_compute(struct store_txn *t)
{
	struct store_filter all = { 0 };
	unsigned long nobs = 0, nmodel = 0;

	memset(st->expect, 0, sizeof(st->expect));
	ck_assert_int_eq(store_obs_scan(t, &all, expect_row, &nobs), 0);
	for (int d = 0; d < NDIST; d++)
		for (int i = 0; i < NIND; i++)
			for (int m = 0; m < NMET; m++)
				for (int p = 0; p < NPER; p++)
					nmodel += st->have[d][i][m][p];
	REQUIRE(nobs == nmodel, "%lu observations stored, %lu accepted", nobs,
	    nmodel);

	for (int m = 0; m < NMET; m++)
		for (int i = 0; i <= NIND; i++)
			for (int s = 0; s <= NDIST; s++)
				for (int p = 0; p < NPER; p++)
					expect_finish(&st->expect[m][i][s][p],
					    m, i, s, p);
	for (int p = 0; p < NPER; p++) {
		const struct agg *total = &st->expect[OUTPUT][STAR][CITY][p];
		struct agg *c = &st->expect[CLUSTERS][STAR][CITY][p];

		if (periods[p].year == 0 || !total->exists)
			continue;
		c->exists = true;
		for (int i = 0; i < NIND; i++) {
			const struct agg *e = &st->expect[OUTPUT][i][CITY][p];

			if (e->exists && e->value >= THRESHOLD)
				c->value++;
		}
		memcpy(c->districts, total->districts, sizeof(c->districts));
		expect_finish(c, CLUSTERS, STAR, CITY, p);
	}
}

struct scan_ctx {
	uint64_t pub_seq;
	uint64_t *seqs;
	size_t nseqs;
};

static int
seen_row(const char *topic, const void *buf, size_t len, void *arg)
{
	struct scan_ctx *c = arg;
	Indicator__Aggregate *a = indicator__aggregate__unpack(NULL, len, buf);
	char want[IND_TOPIC_MAX + 1];
	int m, i, s, p;
	struct agg *g;

	REQUIRE(a != NULL, "stored aggregate %s does not decode", topic);
	snprintf(want, sizeof(want), "agg/%s/%s/%s/%s", a->metric, a->industry,
	    a->scope, a->period);
	REQUIRE(strcmp(topic, want) == 0, "aggregate %s stored under %s", want,
	    topic);
	m = metric_index(a->metric);
	i = strcmp(a->industry, "*") == 0
		? STAR
		: index_of(industries, NIND, a->industry);
	s = strcmp(a->scope, "city") == 0
		? CITY
		: index_of(districts, NDIST, a->scope);
	p = period_index(a->period);
	REQUIRE(m >= 0 && i >= 0 && s >= 0 && p >= 0,
	    "aggregate outside the key space: %s", topic);
	g = &st->seen[m][i][s][p];
	REQUIRE(!g->exists, "%s twice", topic);
	g->exists = true;
	g->value = a->value;
	REQUIRE(strlcpy_ok(g->unit, a->unit, sizeof(g->unit)),
	    "%s: unit too long", topic);
	g->reporting = a->districts_reporting;
	g->expected = a->districts_expected;
	g->target = a->target;
	g->target_year = a->target_year;
	g->progress = a->progress;
	g->revision = a->revision;
	g->seq = a->seq;
	REQUIRE(a->revision >= 1, "%s: revision 0", topic);
	REQUIRE(a->seq >= 1 && a->seq <= c->pub_seq,
	    "%s: seq %" PRIu64 " beyond pub_seq %" PRIu64, topic, a->seq,
	    c->pub_seq);
	REQUIRE(a->updated_at_ms > 0, "%s: no update time", topic);
	c->seqs = xrealloc(c->seqs, (c->nseqs + 1) * sizeof(*c->seqs));
	c->seqs[c->nseqs++] = a->seq;
	indicator__aggregate__free_unpacked(a, NULL);
	return 0;
}

static int
seq_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
topic_of(int m, int i, int s, int p, char *buf, size_t len)
{
	snprintf(buf, len, "agg/%s/%s/%s/%s", metrics[m].code,
	    i == STAR ? "*" : industries[i], s == CITY ? "city" : districts[s],
	    periods[p].code);
}

/* Same content: every field but revision, seq and time, bit for bit. */
static bool
content_equal(const struct agg *a, const struct agg *b)
{
	return memcmp(&a->value, &b->value, sizeof(a->value)) == 0 &&
	       strcmp(a->unit, b->unit) == 0 && a->reporting == b->reporting &&
	       a->expected == b->expected &&
	       memcmp(&a->target, &b->target, sizeof(a->target)) == 0 &&
	       a->target_year == b->target_year &&
	       memcmp(&a->progress, &b->progress, sizeof(a->progress)) == 0;
}

/* One stored aggregate against its recomputation and its previous
 * state; returns whether it changed at this commit. */
static bool
check_one(int m, int i, int s, int p, uint64_t pub_seq)
{
	const struct agg *e = &st->expect[m][i][s][p];
	const struct agg *g = &st->seen[m][i][s][p];
	const struct agg *l = &st->last[m][i][s][p];
	char topic[IND_TOPIC_MAX + 1];

	topic_of(m, i, s, p, topic, sizeof(topic));
	REQUIRE(e->exists || !g->exists,
	    "%s stored, but nothing is "
	    "behind it",
	    topic);
	REQUIRE(g->exists || !e->exists, "%s missing", topic);
	REQUIRE(g->exists || !l->exists, "%s disappeared", topic);
	if (!g->exists)
		return false;
	st->n.aggs++;
	REQUIRE(close_enough(g->value, e->value),
	    "%s: value %.17g, recomputed %.17g", topic, g->value, e->value);
	REQUIRE(strcmp(g->unit, e->unit) == 0, "%s: unit %s, want %s", topic,
	    g->unit, e->unit);
	REQUIRE(g->reporting == e->reporting,
	    "%s: districts_reporting %u, want %u", topic, g->reporting,
	    e->reporting);
	REQUIRE(g->expected == e->expected,
	    "%s: districts_expected %u, want %u", topic, g->expected,
	    e->expected);
	REQUIRE(g->target == e->target && g->target_year == e->target_year,
	    "%s: target %g (%u), want %g (%u)", topic, g->target,
	    g->target_year, e->target, e->target_year);
	/* progress is the stored value over the target, exactly. */
	REQUIRE(g->progress == (e->target > 0 ? g->value / e->target : 0),
	    "%s: progress %.17g for value %.17g, target %g", topic, g->progress,
	    g->value, g->target);

	if (l->exists && content_equal(g, l)) {
		REQUIRE(g->revision == l->revision && g->seq == l->seq,
		    "%s: unchanged, but revision %" PRIu64 " -> %" PRIu64
		    ", seq %" PRIu64 " -> %" PRIu64,
		    topic, l->revision, g->revision, l->seq, g->seq);
		return false;
	}
	REQUIRE(g->revision == (l->exists ? l->revision + 1 : 1),
	    "%s: changed, revision %" PRIu64 " -> %" PRIu64, topic,
	    l->exists ? l->revision : 0, g->revision);
	REQUIRE(g->seq > st->last_pub_seq && g->seq <= pub_seq,
	    "%s: changed with seq %" PRIu64 ", outside (%" PRIu64 ", %" PRIu64
	    "]",
	    topic, g->seq, st->last_pub_seq, pub_seq);
	if (m == CLUSTERS && l->exists && g->value != l->value)
		st->n.clusters_changes++;
	return true;
}

/*
 * Reads the store as it is after the commit just acknowledged and checks
 * every aggregate. Returns how many aggregates changed since the previous
 * check (the one before the previous report).
 */
static unsigned long
check_store(void)
{
	struct store_txn *t;
	struct scan_ctx c = { 0 };
	unsigned long changed = 0;

	/* One batch since the last check: a checkpoint now makes each of
	 * its changed aggregates one stored revision and one seq. */
	harness_checkpoint(&st->dm);
	t = store_txn_begin(st->store, false);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(store_meta_get(t, "pub_seq", &c.pub_seq), 0);
	ck_assert_uint_ge(c.pub_seq, st->last_pub_seq);
	expect_compute(t);
	memset(st->seen, 0, sizeof(st->seen));
	ck_assert_int_eq(store_agg_scan(t, "", seen_row, &c), 0);
	store_txn_abort(&t);

	if (c.nseqs > 1)
		qsort(c.seqs, c.nseqs, sizeof(*c.seqs), seq_cmp);
	for (size_t k = 1; k < c.nseqs; k++)
		REQUIRE(c.seqs[k] != c.seqs[k - 1],
		    "two aggregates with seq %" PRIu64, c.seqs[k]);
	free(c.seqs);

	for (int m = 0; m <= NMET; m++)
		for (int i = 0; i <= NIND; i++)
			for (int s = 0; s <= NDIST; s++)
				for (int p = 0; p < NPER; p++)
					changed +=
					    check_one(m, i, s, p, c.pub_seq);
	/* One seq per change, no gaps: a subscriber counting seqs would
	 * otherwise think it missed an update. */
	REQUIRE(changed == c.pub_seq - st->last_pub_seq,
	    "%lu aggregates changed, pub_seq went %" PRIu64 " -> %" PRIu64,
	    changed, st->last_pub_seq, c.pub_seq);
	memcpy(st->last, st->seen, sizeof(st->last));
	st->last_pub_seq = c.pub_seq;
	st->n.checks++;
	st->n.revised += changed;
	return changed;
}

/* A report's observations, with what the test knows about each. */
struct gen {
	Indicator__Report r;
	Indicator__Observation o[OBS_MAX + 1];
	Indicator__Observation *op[OBS_MAX + 1];
	int d;
	int key[OBS_MAX + 1][3]; /* industry, metric, period */
	double canon[OBS_MAX + 1];
	bool unchanged; /* every value equal to the stored one */
};

/* A value for metric m in canonical units: quarters of 亿元 up to 550, so
 * that three or four districts take an industry over 1000 and back; small
 * counts. */
static double
value_new(int m)
{
	if (metrics[m].money)
		return chance(5) ? 0 : rnd_below(2201) * 0.25;
	return rnd_below(41);
}

static void
obs_fill(struct gen *g, size_t j, int i, int m, int p, double canon)
{
	Indicator__Observation *o = &g->o[j];

	indicator__observation__init(o);
	o->industry = (char *)industries[i];
	o->metric = (char *)metrics[m].code;
	o->period = (char *)periods[p].code;
	o->status = (Indicator__ObsStatus)(1 + rnd_below(3));
	o->note = chance(10) ? "property test" : "";
	if (metrics[m].money) {
		const struct money_unit *u =
		    &money_units[chance(60) ? 0 : 1 + rnd_below(2)];

		o->unit = (char *)u->code;
		o->value = canon * u->per_100m;
	} else {
		o->unit = "count";
		o->value = canon;
	}
	g->key[j][0] = i;
	g->key[j][1] = m;
	g->key[j][2] = p;
	g->canon[j] = canon;
	g->op[j] = o;
}

static bool
key_used(const struct gen *g, size_t n, int i, int m, int p)
{
	for (size_t j = 0; j < n; j++)
		if (g->key[j][0] == i && g->key[j][1] == m && g->key[j][2] == p)
			return true;
	return false;
}

/* A valid report of 1-8 observations from agent a; one in twenty times
 * all of them re-send what is stored. */
static void
gen_valid(struct gen *g, struct agent *a)
{
	bool resend = chance(5);
	size_t n = 1 + rnd_below(OBS_MAX), tries = 0;

	memset(g, 0, sizeof(*g));
	g->d = a->district >= 0 ? a->district : (int)rnd_below(NDIST);
	g->unchanged = true;
	indicator__report__init(&g->r);
	for (size_t j = 0; j < n && tries < 1000; tries++) {
		int i = (int)rnd_below(NIND), m = (int)rnd_below(NMET);
		int p = (int)rnd_below(NPER);
		bool have = st->have[g->d][i][m][p];

		if (key_used(g, j, i, m, p) || (resend && !have))
			continue;
		if (have && (resend || chance(15))) {
			obs_fill(g, j, i, m, p, st->model[g->d][i][m][p]);
		} else {
			obs_fill(g, j, i, m, p, value_new(m));
			if (!have || g->canon[j] != st->model[g->d][i][m][p])
				g->unchanged = false;
		}
		j++;
		g->r.n_observations = j;
	}
	if (g->r.n_observations == 0) { /* nothing stored yet to re-send */
		obs_fill(g, 0, 0, OUTPUT, 2, value_new(OUTPUT));
		g->r.n_observations = 1;
		g->unchanged = false;
	}
	g->r.agent_id = a->id;
	g->r.district = (char *)districts[g->d];
	g->r.observations = g->op;
}

enum bad_kind {
	BAD_INDUSTRY,
	BAD_METRIC,
	BAD_NEGATIVE,
	BAD_FUTURE,
	BAD_PERIOD,
	BAD_UNIT,
	BAD_DUPLICATE,
	BAD_DISTRICT,
	BAD_NAN,
	BAD_FRACTION,
	BAD_IMPLAUSIBLE,
	BAD_KINDS
};

/* A valid report spoiled in one place: the daemon must refuse all of
 * it. */
static void
gen_invalid(struct gen *g, struct agent *a)
{
	size_t j;
	Indicator__Observation *o;

	gen_valid(g, a);
	j = rnd_below((unsigned)g->r.n_observations);
	o = &g->o[j];
	switch ((enum bad_kind)rnd_below(BAD_KINDS)) {
	case BAD_INDUSTRY:
		o->industry = "fintech";
		break;
	case BAD_METRIC:
		o->metric = "gdp";
		break;
	case BAD_NEGATIVE:
		o->value = -0.25;
		break;
	case BAD_FUTURE:
		o->period = "2099";
		break;
	case BAD_PERIOD:
		o->period = "2025-Q5";
		break;
	case BAD_UNIT:
		o->unit = "USD";
		break;
	case BAD_DUPLICATE:
		j = g->r.n_observations++;
		g->o[j] = g->o[0];
		g->o[j].value = g->o[0].value + 1;
		g->op[j] = &g->o[j];
		break;
	case BAD_DISTRICT:
		g->r.district = "999999";
		break;
	case BAD_NAN:
		o->value = NAN;
		break;
	case BAD_FRACTION:
		o->metric = (char *)metrics[1].code;
		o->unit = "count";
		o->value = 2.5;
		break;
	case BAD_IMPLAUSIBLE:
		o->metric = (char *)metrics[OUTPUT].code;
		o->unit = "CNY_100M";
		o->value = 50000;
		break;
	case BAD_KINDS:
		break;
	}
}

static const char *
ack_status_name(int status)
{
	static const char *const names[] = { "UNSPECIFIED", "ACCEPTED",
		"DUPLICATE", "REJECTED", "RETRY_LATER" };

	return status >= 0 && status <= 4 ? names[status] : "?";
}

/* Sends g from a and checks the answer. */
static void
send_one(struct gen *g, struct agent *a, bool valid)
{
	Indicator__Ack *ack;
	int want = valid ? INDICATOR__ACK_STATUS__ACCEPTED
			 : INDICATOR__ACK_STATUS__REJECTED;

	g->r.epoch = a->epoch;
	g->r.seq = ++a->seq;
	g->r.sent_at_ms = (int64_t)time(NULL) * 1000;
	ack = harness_send_report(st->sock, &g->r, ACK_TIMEOUT_MS);
	st->n.sent++;
	if (ack == NULL) {
		char *log = harness_daemon_log(&st->dm);

		fprintf(
		    stderr, "check_aggprop: no Ack; daemon log:\n%s\n", log);
		free(log);
		ck_abort_msg("no Ack for report %lu", st->n.sent);
	}
	ck_assert_msg((int)ack->status == want && ack->seq == g->r.seq,
	    "report %lu (%s seq %" PRIu64 ", %s): %s seq %" PRIu64
	    " code '%s' %s",
	    st->n.sent, a->id, g->r.seq, valid ? "valid" : "invalid",
	    ack_status_name(ack->status), ack->seq, ack->code, ack->message);
	if (!valid)
		ck_assert_msg(ack->n_errors > 0 || ack->code[0] != '\0',
		    "report %lu rejected without a reason", st->n.sent);
	indicator__ack__free_unpacked(ack, NULL);
}

static void
model_apply(const struct gen *g)
{
	for (size_t j = 0; j < g->r.n_observations; j++) {
		int i = g->key[j][0], m = g->key[j][1], p = g->key[j][2];

		st->have[g->d][i][m][p] = true;
		st->model[g->d][i][m][p] = g->canon[j];
	}
}

static uint64_t
seed_get(void)
{
	const char *s = getenv("AGGPROP_SEED");
	char *end;
	uint64_t seed;

	if (s == NULL || *s == '\0')
		return DEFAULT_SEED;
	seed = strtoull(s, &end, 0);
	ck_assert_msg(*end == '\0', "AGGPROP_SEED is not a number: %s", s);
	return seed;
}

static void
setup(void)
{
	struct store_opts so = { 0 };
	char err[256];

	st = xcalloc(1, sizeof(*st));
	harness_daemon_init(&st->dm, NULL);
	harness_daemon_start(&st->dm);
	st->zctx = zmq_ctx_new();
	ck_assert_ptr_nonnull(st->zctx);
	st->sock = harness_client_new(st->zctx, st->dm.ingest);
	so.dir = st->dm.data_dir;
	so.readonly = true;
	st->store = store_open(&so, err, sizeof(err));
	ck_assert_msg(st->store != NULL, "store_open: %s", err);
}

static void
teardown(void)
{
	int status;

	store_close(&st->store);
	zmq_close(st->sock);
	zmq_ctx_term(st->zctx);
	status = harness_daemon_stop(&st->dm, SIGTERM);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "indicatord did not exit 0 on SIGTERM (status %d)", status);
	harness_daemon_cleanup(&st->dm);
	free(st);
	st = NULL;
}

START_TEST(test_aggregates_follow_observations)
{
	uint64_t seed = seed_get();
	struct gen *g = xcalloc(1, sizeof(*g));
	size_t nagents = sizeof(st->agents) / sizeof(st->agents[0]);
	unsigned long epochs = 0;

	printf("check_aggprop: seed %" PRIu64 " (AGGPROP_SEED=%" PRIu64
	       " replays it)\n",
	    seed, seed);
	fflush(stdout);
	st->rng = seed;
	for (size_t k = 0; k < nagents; k++) {
		struct agent *a = &st->agents[k];

		snprintf(a->id, sizeof(a->id), "prop-%02zu", k);
		a->district = k < NDIST ? (int)k : -1;
		a->epoch = rnd() | 1;
	}
	check_store(); /* empty: nothing stored, nothing published */
	ck_assert_uint_eq(st->last_pub_seq, 0);

	for (unsigned long k = 0; k < REPORTS; k++) {
		struct agent *a = &st->agents[rnd_below((unsigned)nagents)];
		bool valid = !chance(8);
		uint64_t before = st->last_pub_seq;
		unsigned long changed;

		/* Now and then an agent loses its outbox: a new epoch. */
		if (chance(1)) {
			a->epoch = rnd() | 1;
			a->seq = 0;
			epochs++;
		}
		if (valid)
			gen_valid(g, a);
		else
			gen_invalid(g, a);
		send_one(g, a, valid);
		if (valid) {
			model_apply(g);
			st->n.accepted++;
			st->n.unchanged += g->unchanged;
		} else {
			st->n.rejected++;
		}
		changed = check_store();
		if (!valid || g->unchanged)
			ck_assert_msg(
			    changed == 0 && st->last_pub_seq == before,
			    "report %lu (%s) changed %lu aggregates",
			    st->n.sent, valid ? "unchanged values" : "rejected",
			    changed);
	}

	printf("check_aggprop: seed %" PRIu64 ": %lu reports sent, %lu "
	       "accepted (%lu re-sending stored values), %lu rejected, %lu "
	       "new epochs; %lu store checks, %lu aggregates checked, %lu "
	       "aggregate changes (%lu of clusters_100bn's value), pub_seq "
	       "%" PRIu64 "\n",
	    seed, st->n.sent, st->n.accepted, st->n.unchanged, st->n.rejected,
	    epochs, st->n.checks, st->n.aggs, st->n.revised,
	    st->n.clusters_changes, st->last_pub_seq);
	fflush(stdout);
	/* The run exercised what it is for. */
	ck_assert_uint_gt(st->n.rejected, 0);
	ck_assert_uint_gt(st->n.unchanged, 0);
	ck_assert_uint_gt(st->n.clusters_changes, 0);
	free(g);
}
END_TEST

static Suite *
aggprop_suite(void)
{
	Suite *s = suite_create("aggprop");
	TCase *tc = tcase_create("daemon");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_aggregates_follow_observations);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(aggprop_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
