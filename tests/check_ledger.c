/*
 * The ledger in-process (daemon/ledger.h): random batches, random
 * checkpoints, simulated crashes (the ledger dropped without a checkpoint,
 * reopened: a replay), failed batches, registry changes, a tiny map that
 * grows and a map that fills, compared every time with a model of what was
 * committed and with the aggregates recomputed from the stored latest
 * values (as `indicatorctl verify` does). Publications must come with
 * consecutive seqs and each topic's revision one more than the last, and a
 * replay must give the stored aggregates the revisions and seqs they were
 * published with.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"
#include "config.h"
#include "harness.h"
#include "indicator.pb-c.h"
#include "ledger.h"
#include "log.h"
#include "store.h"
#include "xmalloc.h"

#define NI 3 /* industries used */
#define NM 3 /* metrics used (output_value first) */
#define NP 3 /* periods used */
#define TOPICS_MAX 8192

static const char *const periods[NP] = { "2024", "2025", "2025-03" };

/* The last publication of a topic. */
struct pubrec {
	char topic[IND_TOPIC_MAX + 1];
	uint64_t revision;
	uint64_t seq;
};

struct world {
	char *dir;
	struct store_opts so;
	struct store *s;
	struct config *cfg; /* the built-in configuration */
	struct registry reg; /* the registry in force (the ledger's) */
	struct ledger_opts lo;
	struct ledger *l;
	unsigned rnd;
	const char *ind[NI];
	const char *met[NM];
	/* The model: latest value and revision count per key. */
	double value[REG_DISTRICTS_MAX][NI][NM][NP];
	uint32_t rev[REG_DISTRICTS_MAX][NI][NM][NP];
	char dcode[REG_DISTRICTS_MAX][IND_CODE_MAX + 1];
	size_t nd; /* districts ever used (the built-in registry's) */
	bool active[REG_DISTRICTS_MAX]; /* in the registry in force */
	struct pubrec pubs[TOPICS_MAX];
	size_t npubs;
	uint64_t seq; /* the last seq published */
	size_t full; /* batches refused for a full map */
	size_t evictions; /* checkpoints that dropped the tables */
	bool unchecked; /* batches without ledger_full() first */
	size_t committed;
};

static unsigned
rnd(struct world *w, unsigned n)
{
	return (unsigned)rand_r(&w->rnd) % n;
}

static struct pubrec *
pub_find(struct world *w, const char *topic)
{
	for (size_t i = 0; i < w->npubs; i++)
		if (strcmp(w->pubs[i].topic, topic) == 0)
			return &w->pubs[i];
	return NULL;
}

/* Checks a batch's publications against the model and takes them in. */
static void
pubs_take(struct world *w, const struct ledger_pub *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		Indicator__Aggregate *a =
		    indicator__aggregate__unpack(NULL, p[i].len, p[i].buf);
		struct pubrec *r;

		ck_assert_ptr_nonnull(a);
		ck_assert_msg(a->seq == w->seq + 1, "%s: seq %llu after %llu",
		    p[i].topic, (unsigned long long)a->seq,
		    (unsigned long long)w->seq);
		w->seq = a->seq;
		if ((r = pub_find(w, p[i].topic)) == NULL) {
			ck_assert_uint_lt(w->npubs, TOPICS_MAX);
			r = &w->pubs[w->npubs++];
			strlcpy_ok(r->topic, p[i].topic, sizeof(r->topic));
		} else {
			ck_assert_msg(a->revision == r->revision + 1,
			    "%s: revision %llu after %llu", p[i].topic,
			    (unsigned long long)a->revision,
			    (unsigned long long)r->revision);
		}
		r->revision = a->revision;
		r->seq = a->seq;
		indicator__aggregate__free_unpacked(a, NULL);
	}
}

static void
ledger_up(struct world *w)
{
	w->lo.store = w->s;
	w->lo.reg = &w->reg;
	w->l = ledger_open(&w->lo);
	ck_assert_ptr_nonnull(w->l);
}

static void
world_open(struct world *w, unsigned seed, uint64_t map_size, uint64_t map_max,
    unsigned entries, bool threaded)
{
	char err[512];

	memset(w, 0, sizeof(*w));
	w->rnd = seed;
	w->cfg = xcalloc(1, sizeof(*w->cfg));
	ck_assert_int_eq(config_load(w->cfg, NULL, err, sizeof(err)), 0);
	w->reg = w->cfg->reg;
	ck_assert_uint_ge(w->reg.nindustries, NI);
	w->nd = w->reg.ndistricts;
	for (size_t d = 0; d < w->nd; d++) {
		strlcpy_ok(
		    w->dcode[d], w->reg.districts[d].code, sizeof(w->dcode[d]));
		w->active[d] = true;
	}
	for (size_t i = 0; i < NI; i++)
		w->ind[i] = w->reg.industries[i].code;
	w->met[0] = AGG_CLUSTERS_SOURCE;
	for (size_t m = 0, k = 1; k < NM; m++) {
		ck_assert_uint_lt(m, w->reg.nmetrics);
		if (strcmp(w->reg.metrics[m].code, AGG_CLUSTERS_SOURCE) != 0)
			w->met[k++] = w->reg.metrics[m].code;
	}
	ck_assert_ptr_nonnull(registry_metric(&w->reg, AGG_CLUSTERS_SOURCE));
	w->dir = harness_tmpdir();
	w->so.dir = w->dir;
	w->so.map_size = map_size;
	w->so.map_max = map_max;
	w->so.sync = STORE_SYNC_NONE; /* crashes here are simulated */
	w->s = store_open(&w->so, err, sizeof(err));
	ck_assert_msg(w->s != NULL, "%s", err);
	w->lo.checkpoint_ms = 3600000;
	w->lo.checkpoint_entries = entries;
	w->lo.checkpoint_idle_ms = 0;
	w->lo.threaded = threaded;
	ledger_up(w);
}

static void
world_close(struct world *w)
{
	ledger_close(&w->l);
	store_close(&w->s);
	harness_rmtree(w->dir);
	free(w->dir);
	free(w->cfg);
}

/* A value the metric allows, sometimes large enough for a cluster. */
static double
value_for(struct world *w, size_t m)
{
	const struct reg_metric *rm = registry_metric(&w->reg, w->met[m]);
	double max = rm->max < 2e6 ? rm->max : 2e6;
	double v = (double)rnd(w, 1000000) / 1e6 * max;

	if (rm->integer)
		v = (double)(long long)v;
	else
		v = (double)(long long)(v * 100) / 100;
	return v;
}

struct planned {
	size_t d, i, m, p;
	double v;
};

static int batch_fn(struct store_txn *t, void *arg);

struct batch {
	struct world *w;
	struct planned obs[32];
	size_t n;
	const struct ledger_pub *pubs;
	size_t npubs;
};

static int
batch_fn(struct store_txn *t, void *arg)
{
	struct batch *b = arg;
	struct world *w = b->w;
	int rc;

	if ((rc = ledger_batch_begin(w->l, t)) != 0)
		return rc;
	for (size_t k = 0; k < b->n; k++) {
		const struct planned *p = &b->obs[k];
		const struct reg_metric *rm =
		    registry_metric(&w->reg, w->met[p->m]);
		struct store_obs o;

		memset(&o, 0, sizeof(o));
		strlcpy_ok(o.district, w->dcode[p->d], sizeof(o.district));
		strlcpy_ok(o.industry, w->ind[p->i], sizeof(o.industry));
		strlcpy_ok(o.metric, w->met[p->m], sizeof(o.metric));
		strlcpy_ok(o.period, periods[p->p], sizeof(o.period));
		o.value = p->v;
		strlcpy_ok(o.unit, rm->unit, sizeof(o.unit));
		o.sent_value = p->v;
		strlcpy_ok(o.sent_unit, rm->unit, sizeof(o.sent_unit));
		strlcpy_ok(o.agent_id, "check", sizeof(o.agent_id));
		o.epoch = 1;
		o.seq = w->committed + 1;
		o.stored_at_ms = 1700000000000 + (int64_t)w->committed;
		if ((rc = ledger_observe(w->l, t, &o)) != 0)
			return rc;
	}
	return ledger_batch_end(w->l, t, 1700000000000 + (int64_t)w->committed,
	    &b->pubs, &b->npubs);
}

static void
batch_undo(void *arg)
{
	struct batch *b = arg;

	ck_assert_int_eq(ledger_batch_done(b->w->l, false), 0);
}

/* One random batch; fail: abort it instead of committing. */
static void
batch(struct world *w, bool fail)
{
	struct batch b = { .w = w };
	struct store_txn *t;
	int rc;

	b.n = 1 + rnd(w, 20);
	for (size_t k = 0; k < b.n; k++) {
		struct planned *p = &b.obs[k];

		do
			p->d = rnd(w, (unsigned)w->nd);
		while (!w->active[p->d]);
		p->i = rnd(w, NI);
		p->m = rnd(w, NM);
		p->p = rnd(w, NP);
		/* Sometimes the same value again: history, no aggregate. */
		if (w->rev[p->d][p->i][p->m][p->p] > 0 && rnd(w, 5) == 0)
			p->v = w->value[p->d][p->i][p->m][p->p];
		else
			p->v = value_for(w, p->m);
	}
	if (fail) {
		ck_assert_ptr_nonnull(
		    t = store_txn_begin_kind(w->s, STORE_TXN_LOG));
		rc = batch_fn(t, &b);
		store_txn_abort(&t);
		ck_assert_int_eq(ledger_batch_done(w->l, false), 0);
		return;
	}
	rc = !w->unchecked && ledger_full(w->l, b.n)
		 ? STORE_FULL
		 : store_write(w->s, STORE_TXN_LOG, batch_fn, batch_undo, &b);
	if (rc == STORE_FULL) {
		w->full++;
		return;
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(ledger_batch_done(w->l, true), 0);
	pubs_take(w, b.pubs, b.npubs);
	for (size_t k = 0; k < b.n; k++) {
		const struct planned *p = &b.obs[k];

		w->value[p->d][p->i][p->m][p->p] = p->v;
		w->rev[p->d][p->i][p->m][p->p]++;
	}
	w->committed++;
}

/* A crash: the ledger dropped without a checkpoint, then reopened (a
 * replay). The stored aggregates then carry the revisions and seqs they
 * were published with. */
static void
crash(struct world *w)
{
	struct store_txn *t;

	ledger_close(&w->l);
	ledger_up(w);
	ck_assert_ptr_nonnull(t = store_txn_begin(w->s, false));
	for (size_t i = 0; i < w->npubs; i++) {
		Indicator__Aggregate *a;
		const void *buf;
		size_t len;

		ck_assert_int_eq(
		    store_agg_get(t, w->pubs[i].topic, &buf, &len), 0);
		a = indicator__aggregate__unpack(NULL, len, buf);
		ck_assert_ptr_nonnull(a);
		ck_assert_msg(a->revision == w->pubs[i].revision &&
				  a->seq == w->pubs[i].seq,
		    "%s: replayed as revision %llu seq %llu, published %llu "
		    "%llu",
		    w->pubs[i].topic, (unsigned long long)a->revision,
		    (unsigned long long)a->seq,
		    (unsigned long long)w->pubs[i].revision,
		    (unsigned long long)w->pubs[i].seq);
		indicator__aggregate__free_unpacked(a, NULL);
	}
	store_txn_abort(&t);
}

/* The publication model from the store, after aggregates were removed. */
static void
pubs_resync(struct world *w)
{
	struct store_txn *t;
	size_t n = 0;

	ck_assert_ptr_nonnull(t = store_txn_begin(w->s, false));
	for (size_t i = 0; i < w->npubs; i++) {
		Indicator__Aggregate *a;
		const void *buf;
		size_t len;

		if (store_agg_get(t, w->pubs[i].topic, &buf, &len) != 0)
			continue;
		a = indicator__aggregate__unpack(NULL, len, buf);
		ck_assert_ptr_nonnull(a);
		w->pubs[i].revision = a->revision;
		w->pubs[i].seq = a->seq;
		w->pubs[n++] = w->pubs[i];
		indicator__aggregate__free_unpacked(a, NULL);
	}
	w->npubs = n;
	store_txn_abort(&t);
}

/* A reload: a target changed, a district removed or put back. */
static void
reload(struct world *w)
{
	const struct ledger_pub *p;
	size_t n;
	unsigned what = rnd(w, 3);

	if (what == 0 && w->reg.ntargets > 0) {
		w->reg.targets[rnd(w, (unsigned)w->reg.ntargets)].value += 1000;
	} else {
		/* The registry's districts: the active ones, in order. */
		size_t d = rnd(w, (unsigned)w->nd), k = 0;

		w->active[d] = !w->active[d];
		for (size_t i = 0; i < w->nd; i++)
			if (w->active[i])
				k++;
		if (k == 0)
			w->active[d] = true;
		k = 0;
		for (size_t i = 0; i < w->nd; i++)
			if (w->active[i])
				w->reg.districts[k++] =
				    w->cfg->reg.districts[i];
		w->reg.ndistricts = k;
	}
	ck_assert_int_eq(ledger_registry_set(w->l, &w->reg,
			     1700000000000 + (int64_t)w->committed, &p, &n),
	    0);
	pubs_take(w, p, n);
	pubs_resync(w);
}

/* An assertion for the hot loops: Check records the place of every
 * ck_assert() that passes (a write to its pipe each), this only fails. */
#define CHECK(c, ...)                              \
	do {                                       \
		if (!(c))                          \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

struct verify {
	struct store_txn *t;
	struct agg_key *keys;
	size_t n;
	size_t cap;
	char (*topics)[IND_TOPIC_MAX + 1]; /* of keys, sorted, distinct */
	size_t ntopics;
};

static int
verify_collect(const struct store_obs *o, void *arg)
{
	struct verify *v = arg;
	struct agg_key k[AGG_AFFECTED_MAX];
	size_t n =
	    agg_affected(o->district, o->industry, o->metric, o->period, k);

	for (size_t i = 0; i < n; i++) {
		if (v->n == v->cap) {
			v->cap = v->cap ? v->cap * 2 : 256;
			v->keys = xrealloc(v->keys, v->cap * sizeof(*v->keys));
		}
		v->keys[v->n++] = k[i];
	}
	return 0;
}

static int
verify_lookup(void *arg, const char *district, const char *industry,
    const char *metric, const char *period, double *value)
{
	int rc =
	    store_obs_value(arg, district, industry, metric, period, value);

	return rc == STORE_NOTFOUND ? 0 : rc == 0 ? 1 : -1;
}

static bool
bits_eq(double a, double b)
{
	return memcmp(&a, &b, sizeof(a)) == 0;
}

struct stored_check {
	struct verify *v;
	size_t n;
};

static int
topic_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int
stored_count(const char *topic, const void *buf, size_t len, void *arg)
{
	struct stored_check *c = arg;
	char want[IND_TOPIC_MAX + 1];

	(void)buf;
	(void)len;
	strlcpy_ok(want, topic, sizeof(want));
	CHECK(c->v->ntopics > 0 &&
		  bsearch(want, c->v->topics, c->v->ntopics,
		      sizeof(c->v->topics[0]), topic_cmp) != NULL,
	    "%s stored, no observation behind it", topic);
	c->n++;
	return 0;
}

/* Checkpoints, then compares the store with the model and every stored
 * aggregate with its recomputation. */
static void
verify(struct world *w)
{
	struct verify v = { 0 };
	struct store_filter any = { 0 };
	struct stored_check sc = { &v, 0 };
	struct ledger_stats st;

	/* Past checkpoint_entries a checkpoint drops the tables (bounding
	 * memory); under it they stay as a cache. */
	ledger_stats(w->l, &st);
	if (st.held >= w->lo.checkpoint_entries && st.dirty > 0)
		w->evictions++;
	ck_assert_int_eq(ledger_checkpoint(w->l), 0);
	ledger_stats(w->l, &st);
	ck_assert_uint_lt(st.held, w->lo.checkpoint_entries);
	ck_assert_ptr_nonnull(v.t = store_txn_begin(w->s, false));
	for (size_t d = 0; d < w->nd; d++)
		for (size_t i = 0; i < NI; i++)
			for (size_t m = 0; m < NM; m++)
				for (size_t p = 0; p < NP; p++) {
					struct store_ref ref;
					int rc = store_ref_get(v.t, w->dcode[d],
					    w->ind[i], w->met[m], periods[p],
					    &ref);

					if (w->rev[d][i][m][p] == 0) {
						CHECK(rc == STORE_NOTFOUND,
						    "%s/%s/%s/%s stored",
						    w->dcode[d], w->ind[i],
						    w->met[m], periods[p]);
						continue;
					}
					CHECK(rc == 0 &&
						  ref.revision ==
						      w->rev[d][i][m][p] &&
						  bits_eq(ref.value,
						      w->value[d][i][m][p]),
					    "%s/%s/%s/%s: rc %d revision %u "
					    "value %.17g, want revision %u "
					    "value %.17g",
					    w->dcode[d], w->ind[i], w->met[m],
					    periods[p], rc, ref.revision,
					    ref.value, w->rev[d][i][m][p],
					    w->value[d][i][m][p]);
				}
	ck_assert_int_eq(store_obs_scan(v.t, &any, verify_collect, &v), 0);
	v.topics = xmalloc((v.n ? v.n : 1) * sizeof(*v.topics));
	for (size_t i = 0; i < v.n; i++)
		agg_topic(&v.keys[i], v.topics[i], sizeof(v.topics[i]));
	qsort(v.topics, v.n, sizeof(*v.topics), topic_cmp);
	for (size_t i = 0; i < v.n; i++)
		if (v.ntopics == 0 ||
		    strcmp(v.topics[i], v.topics[v.ntopics - 1]) != 0)
			memmove(v.topics[v.ntopics++], v.topics[i],
			    sizeof(v.topics[i]));
	for (size_t i = 0; i < v.n; i++) {
		struct agg_value r;
		char topic[IND_TOPIC_MAX + 1];
		const void *buf;
		size_t len;
		Indicator__Aggregate *a;
		int rc =
		    agg_compute(&w->reg, &v.keys[i], verify_lookup, v.t, &r);
		int got;

		CHECK(rc >= 0, "recomputation failed");
		agg_topic(&v.keys[i], topic, sizeof(topic));
		got = store_agg_get(v.t, topic, &buf, &len);
		if (rc == 0) {
			CHECK(got == STORE_NOTFOUND,
			    "%s stored, nothing behind it", topic);
			continue;
		}
		CHECK(got == 0, "%s recomputed, not stored", topic);
		a = indicator__aggregate__unpack(NULL, len, buf);
		CHECK(a != NULL, "%s does not decode", topic);
		CHECK(bits_eq(a->value, r.value),
		    "%s: value %.17g stored, %.17g recomputed", topic, a->value,
		    r.value);
		CHECK(strcmp(a->unit, r.unit) == 0, "%s: unit %s, %s", topic,
		    a->unit, r.unit);
		CHECK(a->districts_reporting == r.districts_reporting &&
			  a->districts_expected == r.districts_expected,
		    "%s: %u of %u districts stored, %u of %u recomputed", topic,
		    a->districts_reporting, a->districts_expected,
		    r.districts_reporting, r.districts_expected);
		CHECK(bits_eq(a->target, r.target) &&
			  a->target_year == r.target_year &&
			  bits_eq(a->progress, r.progress),
		    "%s: target %g by %u (progress %.17g) stored, %g by %u "
		    "(%.17g) recomputed",
		    topic, a->target, a->target_year, a->progress, r.target,
		    r.target_year, r.progress);
		indicator__aggregate__free_unpacked(a, NULL);
	}
	ck_assert_int_eq(store_agg_scan(v.t, "", stored_count, &sc), 0);
	store_txn_abort(&v.t);
	free(v.topics);
	free(v.keys);
}

/* The random walk: batches, failed batches, checkpoints, crashes, clean
 * restarts, reloads; verified every few steps and at the end. */
static void
walk(struct world *w, unsigned steps, bool reloads)
{
	for (unsigned s = 0; s < steps; s++) {
		unsigned r = rnd(w, 100);

		if (r < 65)
			batch(w, false);
		else if (r < 70)
			batch(w, true);
		else if (r < 75)
			ck_assert_int_eq(ledger_checkpoint(w->l), 0);
		else if (r < 80) {
			/* The main loop's way: a job handed to the thread
			 * (threaded), taken in at a later turn. */
			ledger_checkpoint_start(w->l);
			ledger_checkpoint_due(w->l, false);
		} else if (r < 88)
			crash(w);
		else if (r < 92) {
			ck_assert_int_eq(ledger_checkpoint(w->l), 0);
			ledger_close(&w->l);
			ledger_up(w);
		} else if (r < 96 && reloads)
			reload(w);
		if (s % 16 == 15)
			verify(w);
	}
	verify(w);
}

START_TEST(test_random)
{
	struct world *w = xmalloc(sizeof(*w));

	world_open(w, 1000 + (unsigned)_i, 0, 0, 100000, _i % 2 == 1);
	walk(w, 400, true);
	ck_assert_uint_gt(w->committed, 100);
	world_close(w);
	free(w);
}
END_TEST

/* checkpoint_entries small: the tables are dropped after most
 * checkpoints and read back from the store. */
START_TEST(test_eviction)
{
	struct world *w = xmalloc(sizeof(*w));

	world_open(w, 2000 + (unsigned)_i, 0, 0, 40, _i % 2 == 1);
	walk(w, 300, true);
	ck_assert_uint_gt(w->evictions, 3);
	world_close(w);
	free(w);
}
END_TEST

/* A tiny map grows under the batches, through store_write(). */
START_TEST(test_growth)
{
	struct world *w = xmalloc(sizeof(*w));
	uint64_t before;

	world_open(
	    w, 3000 + (unsigned)_i, 64 * 1024, 64 << 20, 100000, _i % 2 == 1);
	before = store_map_size(w->s);
	walk(w, 300, false);
	ck_assert_uint_gt(store_map_size(w->s), before);
	world_close(w);
	free(w);
}
END_TEST

/* A map that fills: batches refused whole, checkpoints failing or carried
 * by the batches; then the operator raises map_max and everything that
 * was committed is there. */
START_TEST(test_full)
{
	struct world *w = xmalloc(sizeof(*w));
	struct ledger_stats st;
	char err[512];

	world_open(
	    w, 4000 + (unsigned)_i, 64 * 1024, 256 * 1024, 100000, _i % 2 == 1);
	/* Without the room check first: the tables fill under a
	 * checkpoint, which fails (and the log fills: batches refused). */
	w->unchecked = true;
	for (unsigned s = 0; s < 3000; s++) {
		batch(w, false);
		if (rnd(w, 4) == 0) {
			ledger_checkpoint(w->l);
		} else if (rnd(w, 3) == 0) {
			ledger_checkpoint_start(w->l);
			ledger_checkpoint_due(w->l, false);
		}
		ledger_stats(w->l, &st);
		if (st.checkpoints_failed > 0)
			break;
	}
	ck_assert_msg(st.checkpoints_failed > 0, "no checkpoint failed");
	/* With it: every report refused from now on. */
	w->unchecked = false;
	w->full = 0;
	for (unsigned s = 0; s < 20; s++)
		batch(w, false);
	ck_assert_uint_eq(w->full, 20);
	w->unchecked = false;
	/* Raised: a restart replays whatever the tables missed. */
	ledger_close(&w->l);
	store_close(&w->s);
	w->so.map_max = 64 << 20;
	ck_assert_ptr_nonnull(w->s = store_open(&w->so, err, sizeof(err)));
	ledger_up(w);
	verify(w);
	walk(w, 100, false);
	world_close(w);
	free(w);
}
END_TEST

/* A seq published but beyond what the replay reaches (meta pub_seq_sent
 * ahead): the ledger goes on above it, never giving a seq twice. */
START_TEST(test_seq_floor)
{
	struct world *w = xmalloc(sizeof(*w));
	struct store_txn *t;
	struct ledger_stats st;

	world_open(w, 5000, 0, 0, 100000, true);
	for (int i = 0; i < 10; i++)
		batch(w, false);
	ledger_close(&w->l);
	ck_assert_ptr_nonnull(t = store_txn_begin(w->s, true));
	ck_assert_int_eq(
	    store_meta_put(t, LEDGER_META_PUB_SEQ_SENT, w->seq + 100), 0);
	ck_assert_int_eq(store_txn_commit(&t), 0);
	ledger_up(w);
	ledger_stats(w->l, &st);
	ck_assert_uint_eq(st.seq, w->seq + 100);
	w->seq += 100;
	for (int i = 0; i < 10; i++)
		batch(w, false);
	verify(w);
	world_close(w);
	free(w);
}
END_TEST

/* A start with a changed registry (a district gone, a target changed):
 * the aggregates follow it at open, with revision + 1. */
START_TEST(test_registry_at_start)
{
	struct world *w = xmalloc(sizeof(*w));
	uint64_t rev_before = 0;
	struct store_txn *t;
	const void *buf;
	size_t len;
	Indicator__Aggregate *a;
	char topic[IND_TOPIC_MAX + 1];

	world_open(w, 6000, 0, 0, 100000, true);
	for (int i = 0; i < 60; i++)
		batch(w, false);
	verify(w);
	snprintf(
	    topic, sizeof(topic), "agg/%s/*/city/%s", w->met[0], periods[0]);
	ck_assert_ptr_nonnull(t = store_txn_begin(w->s, false));
	if (store_agg_get(t, topic, &buf, &len) == 0) {
		a = indicator__aggregate__unpack(NULL, len, buf);
		rev_before = a->revision;
		indicator__aggregate__free_unpacked(a, NULL);
	}
	store_txn_abort(&t);
	ck_assert_uint_gt(rev_before, 0);
	ck_assert_int_eq(ledger_checkpoint(w->l), 0);
	ledger_close(&w->l);
	/* The first district leaves the registry. */
	w->active[0] = false;
	memmove(&w->reg.districts[0], &w->reg.districts[1],
	    (w->reg.ndistricts - 1) * sizeof(w->reg.districts[0]));
	w->reg.ndistricts--;
	ledger_up(w);
	verify(w);
	ck_assert_ptr_nonnull(t = store_txn_begin(w->s, false));
	ck_assert_int_eq(store_agg_get(t, topic, &buf, &len), 0);
	a = indicator__aggregate__unpack(NULL, len, buf);
	ck_assert_uint_eq(a->revision, rev_before + 1);
	ck_assert_uint_eq(a->districts_expected, w->reg.ndistricts);
	indicator__aggregate__free_unpacked(a, NULL);
	store_txn_abort(&t);
	world_close(w);
	free(w);
}
END_TEST

static Suite *
ledger_suite(void)
{
	Suite *s = suite_create("ledger");
	TCase *tc = tcase_create("walk");

	tcase_set_timeout(tc, 120);
	/* Odd loops: the checkpoint thread. */
	tcase_add_loop_test(tc, test_random, 0, 6);
	tcase_add_loop_test(tc, test_eviction, 0, 4);
	tcase_add_loop_test(tc, test_growth, 0, 2);
	tcase_add_loop_test(tc, test_full, 0, 2);
	tcase_add_test(tc, test_seq_floor);
	tcase_add_test(tc, test_registry_at_start);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(ledger_suite());
	int failed;

	log_init("check_ledger", LOG_STYLE_SERVICE);
	log_set_level(CONFIG_LOG_WARNING);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
