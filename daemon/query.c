/*
 * Queries on the snapshot socket (additions to the wire contract): the
 * history of one observation key, which districts have reported which
 * metrics for a period, and the agents' sequence state. They answer what
 * the aggregates do not carry, for readers that cannot open the store (the
 * dashboard runs as another user; the store's directory is 0700). Each
 * answer is read from the store in one read transaction after a
 * checkpoint, as a snapshot is, and is bounded in size.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "indicatord.h"
#include "ledger.h"
#include "period.h"
#include "xmalloc.h"

/* Bounds on one answer: a key's latest revisions, the first agents. */
#define QUERY_HISTORY_MAX 1000
#define QUERY_AGENTS_MAX 10000

struct history_ctx {
	Indicator__Revision *rev; /* ring of QUERY_HISTORY_MAX */
	char (*note)[IND_NOTE_MAX + 1];
	char (*text)[3][IND_AGENT_ID_MAX + 1]; /* unit, sent_unit, agent */
	size_t n; /* revisions seen */
};

struct agents_ctx {
	Indicator__AgentState *st;
	char (*id)[IND_AGENT_ID_MAX + 1];
	size_t n;
	bool truncated;
};

bool
query_wanted(const Indicator__SnapshotRequest *req)
{
	return req->history != NULL || req->expected != NULL ||
	       req->agents != NULL;
}

/* A code a query may name: not empty, within the limit. */
static bool
code_ok(const char *s)
{
	return s != NULL && s[0] != '\0' && strlen(s) <= IND_CODE_MAX;
}

static int
history_row(const struct store_obs *o, void *arg)
{
	struct history_ctx *h = arg;
	size_t i = h->n++ % QUERY_HISTORY_MAX;
	Indicator__Revision *r = &h->rev[i];

	indicator__revision__init(r);
	r->revision = o->revision;
	r->value = o->value;
	r->sent_value = o->sent_value;
	r->status = (Indicator__ObsStatus)o->status;
	r->epoch = o->epoch;
	r->seq = o->seq;
	r->sent_at_ms = o->sent_at_ms;
	r->stored_at_ms = o->stored_at_ms;
	strlcpy_ok(h->note[i], o->note, sizeof(h->note[i]));
	strlcpy_ok(h->text[i][0], o->unit, sizeof(h->text[i][0]));
	strlcpy_ok(h->text[i][1], o->sent_unit, sizeof(h->text[i][1]));
	strlcpy_ok(h->text[i][2], o->agent_id, sizeof(h->text[i][2]));
	r->note = h->note[i];
	r->unit = h->text[i][0];
	r->sent_unit = h->text[i][1];
	r->agent_id = h->text[i][2];
	return 0;
}

/* The key's revisions, oldest first, the latest QUERY_HISTORY_MAX kept. */
static const char *
query_history(struct store_txn *t, const Indicator__HistoryQuery *q,
    Indicator__Snapshot *snap, struct history_ctx *h,
    Indicator__Revision ***out)
{
	struct period p;
	size_t n, first;

	if (!code_ok(q->district) || !code_ok(q->industry) ||
	    !code_ok(q->metric))
		return "bad_query";
	if (!period_parse(q->period, &p))
		return "bad_period";
	h->rev = xcalloc(QUERY_HISTORY_MAX, sizeof(*h->rev));
	h->note = xcalloc(QUERY_HISTORY_MAX, sizeof(*h->note));
	h->text = xcalloc(QUERY_HISTORY_MAX, sizeof(*h->text));
	if (store_hist_scan(t, q->district, q->industry, q->metric, q->period,
		history_row, h) != 0)
		return "store_error";
	n = h->n < QUERY_HISTORY_MAX ? h->n : QUERY_HISTORY_MAX;
	first = h->n < QUERY_HISTORY_MAX ? 0 : h->n % QUERY_HISTORY_MAX;
	*out = xcalloc(n + 1, sizeof(**out));
	for (size_t i = 0; i < n; i++)
		(*out)[i] = &h->rev[(first + i) % QUERY_HISTORY_MAX];
	snap->history = *out;
	snap->n_history = n;
	snap->truncated = h->n > QUERY_HISTORY_MAX;
	return NULL;
}

/*
 * Per district of the registry, the metrics it has an observation of for
 * exactly the period (in any of the registry's industries), and those it
 * has not: a point lookup per (district, industry, metric), so its cost
 * is the registry's size, not the store's.
 */
static const char *
query_expected(struct daemon *d, struct store_txn *t,
    const Indicator__ExpectedQuery *q, Indicator__Snapshot *snap)
{
	const struct registry *reg = &d->cfg.reg;
	Indicator__DistrictReporting **rows;
	struct store_ref ref;
	struct period p;
	int rc;

	if (!period_parse(q->period, &p))
		return "bad_period";
	rows = xcalloc(reg->ndistricts + 1, sizeof(*rows));
	snap->expected = rows;
	for (size_t di = 0; di < reg->ndistricts; di++) {
		Indicator__DistrictReporting *r = xmalloc(sizeof(*r));

		indicator__district_reporting__init(r);
		r->district = (char *)reg->districts[di].code;
		r->reported = xcalloc(reg->nmetrics + 1, sizeof(char *));
		r->missing = xcalloc(reg->nmetrics + 1, sizeof(char *));
		rows[snap->n_expected++] = r;
		for (size_t m = 0; m < reg->nmetrics; m++) {
			bool seen = false;

			for (size_t i = 0; i < reg->nindustries && !seen; i++) {
				rc = store_ref_get(t, reg->districts[di].code,
				    reg->industries[i].code,
				    reg->metrics[m].code, q->period, &ref);
				if (rc != 0 && rc != STORE_NOTFOUND)
					return "store_error";
				seen = rc == 0;
			}
			if (seen)
				r->reported[r->n_reported++] =
				    (char *)reg->metrics[m].code;
			else
				r->missing[r->n_missing++] =
				    (char *)reg->metrics[m].code;
		}
	}
	return NULL;
}

static void
expected_free(Indicator__Snapshot *snap)
{
	for (size_t i = 0; i < snap->n_expected; i++) {
		free(snap->expected[i]->reported);
		free(snap->expected[i]->missing);
		free(snap->expected[i]);
	}
	free(snap->expected);
}

static int
agents_row(
    const char *agent_id, uint64_t epoch, const struct store_seq *st, void *arg)
{
	struct agents_ctx *a = arg;
	Indicator__AgentState *s;

	if (a->n == QUERY_AGENTS_MAX) {
		a->truncated = true;
		return 1;
	}
	s = &a->st[a->n];
	indicator__agent_state__init(s);
	strlcpy_ok(a->id[a->n], agent_id, sizeof(a->id[a->n]));
	s->agent_id = a->id[a->n];
	s->epoch = epoch;
	s->last_seq = st->last_seq;
	s->accepted = st->accepted;
	s->rejected = st->rejected;
	s->first_seen_ms = st->first_seen_ms;
	s->last_seen_ms = st->last_seen_ms;
	a->n++;
	return 0;
}

static const char *
query_agents(struct store_txn *t, Indicator__Snapshot *snap,
    struct agents_ctx *a, Indicator__AgentState ***out)
{
	int rc;

	a->st = xcalloc(QUERY_AGENTS_MAX, sizeof(*a->st));
	a->id = xcalloc(QUERY_AGENTS_MAX, sizeof(*a->id));
	rc = store_seq_scan(t, agents_row, a);
	if (rc != 0 && !(rc == 1 && a->truncated))
		return "store_error";
	*out = xcalloc(a->n + 1, sizeof(**out));
	for (size_t i = 0; i < a->n; i++)
		(*out)[i] = &a->st[i];
	snap->agents = *out;
	snap->n_agents = a->n;
	snap->truncated = a->truncated;
	return NULL;
}

void
query_serve(struct daemon *d, const unsigned char *id, size_t idlen,
    const Indicator__SnapshotRequest *req)
{
	Indicator__Snapshot snap = INDICATOR__SNAPSHOT__INIT;
	struct history_ctx h = { 0 };
	struct agents_ctx a = { 0 };
	Indicator__Revision **revs = NULL;
	Indicator__AgentState **agents = NULL;
	struct store_txn *t = NULL;
	const char *error = NULL;
	unsigned kinds;
	size_t len;
	uint8_t *buf;

	kinds = (req->history != NULL) + (req->expected != NULL) +
		(req->agents != NULL);
	snap.query = req->history != NULL ? INDICATOR__QUERY_KIND__QUERY_HISTORY
		     : req->expected != NULL
			 ? INDICATOR__QUERY_KIND__QUERY_EXPECTED
			 : INDICATOR__QUERY_KIND__QUERY_AGENTS;
	if (kinds != 1)
		error = "bad_query";
	/* Read after a checkpoint, as a snapshot is: the tables then hold
	 * every acknowledged report. */
	if (error == NULL) {
		ledger_checkpoint(d->ledger);
		if ((t = store_txn_begin(d->store, false)) == NULL)
			error = "store_error";
	}
	if (error == NULL && req->history != NULL)
		error = query_history(t, req->history, &snap, &h, &revs);
	else if (error == NULL && req->expected != NULL)
		error = query_expected(d, t, req->expected, &snap);
	else if (error == NULL)
		error = query_agents(t, &snap, &a, &agents);
	store_txn_abort(&t);
	if (error != NULL) {
		/* A refused query carries its reason and nothing else. */
		expected_free(&snap);
		snap.expected = NULL;
		snap.n_expected = snap.n_history = snap.n_agents = 0;
		snap.truncated = false;
		snap.error = (char *)error;
		log_debug("query: refused: %s", error);
	}
	len = indicator__snapshot__get_packed_size(&snap);
	buf = xmalloc(len > 0 ? len : 1);
	indicator__snapshot__pack(&snap, buf);
	if (zmq_send(d->snapshot, id, idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) ==
		-1 ||
	    zmq_send(d->snapshot, buf, len, ZMQ_DONTWAIT) == -1)
		log_debug("query: answer not sent: %s", zmq_strerror(errno));
	free(buf);
	if (error == NULL)
		expected_free(&snap);
	free(revs);
	free(h.rev);
	free(h.note);
	free(h.text);
	free(agents);
	free(a.st);
	free(a.id);
}
