/*
 * The ingest path: ROUTER in, validate, one write transaction per batch
 * with the exactly-once sequence check, commit, then acks (PROTOCOL.md,
 * "Semantics").
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "filetx.h"
#include "indicatord.h"
#include "validate.h"
#include "xmalloc.h"

#define ID_MAX 256 /* ROUTER identities are at most 255 bytes */
#define REJECT_LOG_BURST 20 /* rejection lines a second, at most */
/* What a checkpoint may need per key held, generously: the entry, and the
 * copy of its page a write makes. */
#define CHECKPOINT_ENTRY_BYTES 512

enum outcome {
	OUT_NONE, /* decided in the transaction */
	OUT_PREPARED, /* decided before it: malformed, bad sender */
};

struct msg {
	unsigned char id[ID_MAX];
	size_t idlen;
	Indicator__AgentMessage *am; /* NULL when it did not decode */
	char user[64]; /* CURVE: the sender's key (User-Id) */
	enum outcome pre;
	const char *code; /* for a message refused before the txn */
	char why[VALIDATE_MSG_MAX];
	struct validation val;
	int invalid; /* validate_report() said no */
	/* The answer, packed. */
	uint8_t *ack;
	size_t acklen;
	size_t ackcap;
	int status;
	const char *ack_code; /* its code, for the counters; NULL: none */
	bool repeat; /* the earlier rejection of a resent seq, again */
	uint32_t reports; /* ACCEPTED: the reports stored (a file's parts) */
};

/*
 * The memory of a batch's decoded messages: protobuf-c's unpack allocates
 * every sub-message, string and array separately, and freeing them one by
 * one was a tenth of the daemon's time. Through this allocator they come
 * from large chunks, and the batch gives them all back at once. The first
 * chunk is kept from batch to batch.
 */
#define ARENA_CHUNK (1024 * 1024)

struct arena_chunk {
	struct arena_chunk *next;
	size_t used;
	size_t size;
	max_align_t data[];
};

struct arena {
	struct arena_chunk *head; /* the chunk in use; older ones follow */
};

static void *
arena_alloc(void *data, size_t size)
{
	struct arena *a = data;
	struct arena_chunk *c = a->head;
	size_t need =
	    (size + _Alignof(max_align_t) - 1) & ~(_Alignof(max_align_t) - 1);
	void *p;

	if (c == NULL || c->size - c->used < need) {
		size_t csize = need > ARENA_CHUNK ? need : ARENA_CHUNK;

		c = xmalloc(sizeof(*c) + csize);
		c->size = csize;
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	p = (char *)c->data + c->used;
	c->used += need;
	return p;
}

static void
arena_free(void *data, void *ptr)
{
	(void)data;
	(void)ptr; /* all at once, in arena_reset() */
}

/* Gives back everything allocated; keeps one chunk for the next batch. */
static void
arena_reset(struct arena *a)
{
	struct arena_chunk *c = a->head, *keep = NULL;

	while (c != NULL) {
		struct arena_chunk *next = c->next;

		if (keep == NULL && c->size == ARENA_CHUNK) {
			keep = c;
		} else {
			free(c);
		}
		c = next;
	}
	if (keep != NULL) {
		keep->used = 0;
		keep->next = NULL;
	}
	a->head = keep;
}

/* Per-agent token bucket for the rate limit. */
struct bucket {
	char agent_id[IND_AGENT_ID_MAX + 1];
	double tokens;
	int64_t at_ms;
};

#define BUCKETS 1024 /* a power of two; more agents share slots */

struct ingest {
	struct arena arena; /* the batch's decoded messages */
	ProtobufCAllocator alloc; /* from the arena */
	bool applied; /* the last batch carried its checkpoint */
	bool tight; /* a checkpoint failed for room: every batch carries it */
	struct bucket buckets[BUCKETS];
	struct msg *msgs;
	size_t n;
	size_t cap;
	struct log_limit reject_limit;
	bool full_logged;
	struct filetx_answer file; /* a part of a file's answer */
};

struct ingest *
ingest_new(void)
{
	struct ingest *ing = xcalloc(1, sizeof(struct ingest));

	ing->alloc.alloc = arena_alloc;
	ing->alloc.free = arena_free;
	ing->alloc.allocator_data = &ing->arena;
	return ing;
}

void
ingest_destroy(struct ingest **ingp)
{
	struct ingest *ing;

	if (ingp == NULL || (ing = *ingp) == NULL)
		return;
	for (size_t i = 0; i < ing->cap; i++) {
		validation_free(&ing->msgs[i].val);
		free(ing->msgs[i].ack);
	}
	free(ing->msgs);
	filetx_answer_free(&ing->file);
	arena_reset(&ing->arena);
	free(ing->arena.head);
	free(ing);
	*ingp = NULL;
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
today(struct civil_date *out)
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	out->year = tm.tm_year + 1900;
	out->month = tm.tm_mon + 1;
	out->day = tm.tm_mday;
}

/* Packs ack into m's buffer. */
static void
msg_set_ack(struct msg *m, const Indicator__Ack *ack)
{
	size_t len = indicator__ack__get_packed_size(ack);

	if (len > m->ackcap) {
		m->ack = xrealloc(m->ack, len);
		m->ackcap = len;
	}
	m->acklen = indicator__ack__pack(ack, m->ack);
	m->status = ack->status;
}

static void
msg_answer(struct msg *m, int status, uint64_t seq, uint64_t expected,
    const char *code, const char *message)
{
	Indicator__Ack ack = INDICATOR__ACK__INIT;

	ack.status = status;
	ack.seq = seq;
	ack.expected_seq = expected;
	ack.code = (char *)(code ? code : "");
	ack.message = (char *)(message ? message : "");
	msg_set_ack(m, &ack);
	m->ack_code = code;
}

/* The REJECTED answer for a report that failed validation, with every
 * error. */
static void
msg_reject(struct msg *m, uint64_t seq, uint64_t expected)
{
	const struct validation *v = &m->val;
	Indicator__Ack ack = INDICATOR__ACK__INIT;
	Indicator__ObservationError *errs, **ptrs;
	char summary[96];

	errs = xcalloc(v->nerrors, sizeof(*errs));
	ptrs = xcalloc(v->nerrors, sizeof(*ptrs));
	for (size_t i = 0; i < v->nerrors; i++) {
		indicator__observation_error__init(&errs[i]);
		errs[i].index = v->errors[i].index;
		errs[i].code = (char *)v->errors[i].code;
		errs[i].message = (char *)v->errors[i].message;
		ptrs[i] = &errs[i];
	}
	ack.status = INDICATOR__ACK_STATUS__REJECTED;
	ack.seq = seq;
	ack.expected_seq = expected;
	ack.code = (char *)(v->code ? v->code : "");
	if (v->code != NULL) {
		ack.message = (char *)v->message;
	} else {
		size_t bad = 0;

		/* errors are in observation order: count distinct indexes */
		for (size_t i = 0; i < v->nerrors; i++)
			if (i == 0 ||
			    v->errors[i].index != v->errors[i - 1].index)
				bad++;
		snprintf(summary, sizeof(summary),
		    "%zu of %zu observations invalid; nothing stored", bad,
		    m->am->report->n_observations);
		ack.message = summary;
	}
	ack.n_errors = v->nerrors;
	ack.errors = ptrs;
	msg_set_ack(m, &ack);
	free(ptrs);
	free(errs);
}

/* A part of a file: filetx.c's answer. */
static void
msg_file_answer(struct msg *m, uint64_t seq, const struct filetx_answer *ans)
{
	Indicator__Ack ack = INDICATOR__ACK__INIT;
	Indicator__ObservationError *errs, **ptrs;

	filetx_ack(ans, &ack, &errs, &ptrs);
	ack.seq = seq;
	ack.expected_seq = seq + 1;
	msg_set_ack(m, &ack);
	m->ack_code = ans->code;
	/* Counted and logged with the report's own errors. */
	if (ans->code != NULL) {
		m->val.code = ans->code;
		strlcpy_ok(
		    m->val.message, ans->message, sizeof(m->val.message));
	}
	free(ptrs);
	free(errs);
}

/* Receives one ROUTER message into m, decoded with alloc. 1 when one was
 * taken, 0 when none is waiting, -1 on a socket failure. */
static int
msg_recv(void *sock, struct msg *m, ProtobufCAllocator *alloc)
{
	zmq_msg_t part;
	size_t frames = 0;
	int more;
	size_t moresz = sizeof(more);

	zmq_msg_init(&part);
	if (zmq_msg_recv(&part, sock, ZMQ_DONTWAIT) == -1) {
		zmq_msg_close(&part);
		return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
	}
	m->idlen = zmq_msg_size(&part);
	if (m->idlen > sizeof(m->id))
		m->idlen = sizeof(m->id);
	memcpy(m->id, zmq_msg_data(&part), m->idlen);
	m->am = NULL;
	m->pre = OUT_NONE;
	m->code = NULL;
	m->why[0] = '\0';
	m->invalid = 0;
	m->ack_code = NULL;
	m->repeat = false;
	m->reports = 1;
	for (;;) {
		if (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &moresz) == -1 ||
		    !more)
			break;
		if (zmq_msg_recv(&part, sock, 0) == -1) {
			zmq_msg_close(&part);
			return -1;
		}
		if (++frames == 1) {
			const char *user = zmq_msg_gets(&part, "User-Id");

			m->am = indicator__agent_message__unpack(
			    alloc, zmq_msg_size(&part), zmq_msg_data(&part));
			/* The NULs the decoded strings no longer show. */
			if (m->am != NULL)
				validate_wire(&m->val, zmq_msg_data(&part),
				    zmq_msg_size(&part));
			strlcpy_ok(m->user, user ? user : "", sizeof(m->user));
		}
	}
	zmq_msg_close(&part);
	if (frames != 1) {
		snprintf(m->why, sizeof(m->why),
		    "expected exactly one frame, got %zu", frames);
		m->code = "malformed";
	} else if (m->am == NULL) {
		snprintf(m->why, sizeof(m->why),
		    "the frame does not decode as an AgentMessage");
		m->code = "malformed";
	} else if (m->am->body_case ==
		   INDICATOR__AGENT_MESSAGE__BODY__NOT_SET) {
		snprintf(m->why, sizeof(m->why),
		    "the AgentMessage has neither a report nor a heartbeat");
		m->code = "malformed";
	}
	return 1;
}

/*
 * The per-agent rate limit: a token bucket of rate_limit reports a second
 * (burst one second's worth), so one agent cannot take the disk from the
 * others. Agents hashed to the same slot share it, which only makes the
 * limit stricter for them. True when the report may go on.
 */
static bool
rate_take(struct daemon *d, const char *agent_id)
{
	struct bucket *b;
	uint32_t h = 2166136261u;
	double rate = d->cfg.rate_limit;
	int64_t now;

	if (d->cfg.rate_limit == 0)
		return true;
	for (const char *s = agent_id; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	b = &d->ing->buckets[h & (BUCKETS - 1)];
	now = wall_ms();
	if (strcmp(b->agent_id, agent_id) != 0) {
		strlcpy_ok(b->agent_id, agent_id, sizeof(b->agent_id));
		b->tokens = rate;
		b->at_ms = now;
	}
	b->tokens += (double)(now - b->at_ms) * rate / 1000.0;
	if (b->tokens > rate)
		b->tokens = rate;
	b->at_ms = now;
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

/* Decides what can be decided without the store: malformed messages, bad
 * senders; validates report content. */
static void
msg_prepare(struct daemon *d, struct msg *m, const struct civil_date *day)
{
	const struct config_limits *lim = &d->cfg.limits;
	Indicator__Report *r;
	Indicator__Heartbeat *hb;

	if (m->code != NULL) { /* malformed */
		msg_answer(
		    m, INDICATOR__ACK_STATUS__REJECTED, 0, 0, m->code, m->why);
		m->pre = OUT_PREPARED;
		d->count.malformed++;
		return;
	}
	if (m->am->body_case == INDICATOR__AGENT_MESSAGE__BODY_HEARTBEAT) {
		hb = m->am->heartbeat;
		m->code = validate_sender(lim, hb->agent_id, hb->epoch, 0,
		    false, &m->val, m->why, sizeof(m->why));
		if (m->code == NULL)
			m->code = auth_check_sender(d, m->user, hb->agent_id,
			    NULL, m->why, sizeof(m->why));
		if (m->code != NULL) {
			msg_answer(m, INDICATOR__ACK_STATUS__REJECTED, 0, 0,
			    m->code, m->why);
			m->pre = OUT_PREPARED;
		}
		return;
	}
	r = m->am->report;
	m->code = validate_sender(lim, r->agent_id, r->epoch, r->seq, true,
	    &m->val, m->why, sizeof(m->why));
	if (m->code == NULL)
		m->code = auth_check_sender(d, m->user, r->agent_id,
		    r->district, m->why, sizeof(m->why));
	if (m->code != NULL) {
		if (strcmp(m->code, "not_authorised") == 0)
			d->count.unauthorised++;
		msg_answer(m, INDICATOR__ACK_STATUS__REJECTED, r->seq, 0,
		    m->code, m->why);
		m->pre = OUT_PREPARED;
		return;
	}
	if (!rate_take(d, r->agent_id)) {
		snprintf(m->why, sizeof(m->why),
		    "over the limit of %u reports a second per agent",
		    d->cfg.rate_limit);
		msg_answer(m, INDICATOR__ACK_STATUS__RETRY_LATER, r->seq, 0,
		    "rate_limited", m->why);
		m->pre = OUT_PREPARED;
		d->count.rate_limited++;
		return;
	}
	m->invalid = validate_report(&d->cfg.reg, lim, r, day, &m->val);
}

static int
apply_heartbeat(struct store_txn *t, struct msg *m, int64_t now)
{
	Indicator__Heartbeat *hb = m->am->heartbeat;
	struct store_seq st;
	int rc;

	rc = store_seq_get(t, hb->agent_id, hb->epoch, &st);
	if (rc == STORE_NOTFOUND) {
		msg_answer(
		    m, INDICATOR__ACK_STATUS__ACCEPTED, 0, 1, NULL, NULL);
		return 0;
	}
	if (rc != 0)
		return rc;
	st.last_seen_ms = now;
	if ((rc = store_seq_put(t, hb->agent_id, hb->epoch, &st)) != 0)
		return rc;
	msg_answer(
	    m, INDICATOR__ACK_STATUS__ACCEPTED, 0, st.last_seq + 1, NULL, NULL);
	return 0;
}

/*
 * Takes o, logged at o->lsn, as its key's latest value: in the latest table
 * and, by the difference from prev (had_prev: the key had a value), in the
 * aggregates. The one path for live batches and replay.
 */
static int
take_latest(struct daemon *d, struct store_txn *t, const struct store_obs *o,
    const struct store_ref *prev, bool had_prev)
{
	const struct store_ref ref = { o->revision, o->value, o->lsn };

	if (latest_set(d->latest, o->district, o->industry, o->metric,
		o->period, &ref) == -1)
		return -1;
	return publisher_touch(d, t, o, prev->value, had_prev);
}

/* The key's latest revision as prev; had_prev false (prev zeroed) for a
 * new key. 0 or -1. */
static int
latest_prev(struct daemon *d, struct store_txn *t, const struct store_obs *o,
    struct store_ref *prev, bool *had_prev)
{
	int rc = latest_get(
	    d->latest, t, o->district, o->industry, o->metric, o->period, prev);

	*had_prev = rc == 0;
	if (rc == STORE_NOTFOUND) {
		memset(prev, 0, sizeof(*prev));
		return 0;
	}
	return rc;
}

int
ingest_apply_report(struct daemon *d, struct store_txn *t,
    const Indicator__Report *r, const struct validation *v, int64_t now,
    uint64_t batch)
{
	char name[sizeof(META_REPORT_MS) + IND_CODE_MAX];
	struct store_ref prev;
	struct store_obs o;
	bool had_prev;
	int rc;

	for (size_t i = 0; i < r->n_observations; i++) {
		const Indicator__Observation *src = r->observations[i];

		memset(&o, 0, sizeof(o));
		/* Lengths were checked by validation. */
		strlcpy_ok(o.district, r->district, sizeof(o.district));
		strlcpy_ok(o.industry, src->industry, sizeof(o.industry));
		strlcpy_ok(o.metric, src->metric, sizeof(o.metric));
		strlcpy_ok(o.period, src->period, sizeof(o.period));
		o.value = v->values[i];
		strlcpy_ok(o.unit, v->metrics[i]->unit, sizeof(o.unit));
		o.sent_value = src->value;
		strlcpy_ok(o.sent_unit, src->unit, sizeof(o.sent_unit));
		o.status = src->status;
		strlcpy_ok(o.note, src->note, sizeof(o.note));
		strlcpy_ok(o.agent_id, r->agent_id, sizeof(o.agent_id));
		o.epoch = r->epoch;
		o.seq = r->seq;
		o.sent_at_ms = r->sent_at_ms;
		o.stored_at_ms = now;
		if ((rc = latest_prev(d, t, &o, &prev, &had_prev)) != 0)
			return rc;
		if (prev.revision == UINT32_MAX) {
			log_error("ingest: %s/%s/%s/%s: too many revisions",
			    o.district, o.industry, o.metric, o.period);
			return -1;
		}
		o.revision = prev.revision + 1;
		o.prev = prev.lsn;
		o.batch = batch;
		if ((rc = store_log_append(t, &o)) != 0 ||
		    (rc = take_latest(d, t, &o, &prev, had_prev)) != 0)
			return rc;
	}
	d->count.observations += r->n_observations;
	/* The district's last report, for the metrics after a restart (the
	 * district is registered: at most its code's length). */
	snprintf(name, sizeof(name), META_REPORT_MS "%s", r->district);
	return store_meta_put(t, name, (uint64_t)now);
}

/* The exactly-once rule: seq == last + 1 is processed, seq <= last is a
 * duplicate (or the same rejection again), seq > last + 1 waits. */
static int
apply_report(struct daemon *d, struct store_txn *t, struct msg *m, int64_t now,
    uint64_t batch)
{
	Indicator__Report *r = m->am->report;
	struct filetx_answer *file = &d->ing->file;
	struct store_seq st;
	const void *buf;
	size_t len;
	char why[96];
	int rc;

	rc = store_seq_get(t, r->agent_id, r->epoch, &st);
	if (rc == STORE_NOTFOUND) {
		memset(&st, 0, sizeof(st));
		st.first_seen_ms = now;
	} else if (rc != 0) {
		return rc;
	}
	if (r->seq <= st.last_seq) {
		rc = store_reject_get(
		    t, r->agent_id, r->epoch, r->seq, &buf, &len);
		if (rc == 0) {
			if (len > m->ackcap) {
				m->ack = xrealloc(m->ack, len);
				m->ackcap = len;
			}
			memcpy(m->ack, buf, len);
			m->acklen = len;
			m->status = INDICATOR__ACK_STATUS__REJECTED;
			m->repeat = true;
			return 0;
		}
		if (rc != STORE_NOTFOUND)
			return rc;
		msg_answer(m, INDICATOR__ACK_STATUS__DUPLICATE, r->seq,
		    st.last_seq + 1, NULL, "already stored");
		return 0;
	}
	if (r->seq > st.last_seq + 1) {
		snprintf(why, sizeof(why), "expected seq %llu",
		    (unsigned long long)(st.last_seq + 1));
		msg_answer(m, INDICATOR__ACK_STATUS__RETRY_LATER, r->seq,
		    st.last_seq + 1, "out_of_order", why);
		return 0;
	}
	/* A part of a file is decided by filetx.c (and any report ends a
	 * file it is not the next part of). */
	if ((rc = filetx_take(
		 d, t, r, &m->val, m->invalid, now, batch, file)) != 0)
		return rc;
	if (file->status != 0) {
		msg_file_answer(m, r->seq, file);
		if (file->status == INDICATOR__ACK_STATUS__REJECTED) {
			rc = store_reject_put(t, r->agent_id, r->epoch, r->seq,
			    m->ack, m->acklen);
			st.rejected += file->reports;
		} else if (file->status == INDICATOR__ACK_STATUS__ACCEPTED) {
			st.accepted += file->reports;
			m->reports = file->reports;
		}
	} else if (m->invalid) {
		msg_reject(m, r->seq, r->seq + 1);
		rc = store_reject_put(
		    t, r->agent_id, r->epoch, r->seq, m->ack, m->acklen);
		st.rejected++;
	} else {
		rc = ingest_apply_report(d, t, r, &m->val, now, batch);
		msg_answer(m, INDICATOR__ACK_STATUS__ACCEPTED, r->seq,
		    r->seq + 1, NULL, NULL);
		st.accepted++;
	}
	if (rc != 0)
		return rc;
	st.last_seq = r->seq;
	st.last_seen_ms = now;
	return store_seq_put(t, r->agent_id, r->epoch, &st);
}

/* Keys held in memory: changed since the checkpoint, or cached. */
static size_t
held(const struct daemon *d)
{
	return latest_size(d->latest) + publisher_entries(d->pub);
}

/* After a checkpoint committed: what is held in memory is the store's.
 * It stays as a cache while it is under checkpoint_entries (the next
 * interval under the same load reads the same keys), else it goes, so that
 * the limit bounds memory. */
static void
checkpointed(struct daemon *d)
{
	bool keep = held(d) < d->cfg.checkpoint_entries;

	latest_checkpointed(d->latest, keep);
	publisher_checkpointed(d->pub, keep);
}

/* Writes what is held in memory, and "applied" = last, in t. */
static int
checkpoint_write(struct daemon *d, struct store_txn *t, uint64_t last)
{
	int rc;

	if ((rc = latest_flush(d->latest, t)) != 0 ||
	    (rc = publisher_flush(d, t)) != 0)
		return rc;
	return store_meta_put(t, STORE_META_APPLIED, last);
}

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Applies the batch in one write transaction and commits. 0, STORE_FULL or
 * -1; on failure the transaction is gone, the answers are void and the
 * in-memory state has been rebuilt from the store. */
static int
apply_batch(struct daemon *d, struct ingest *ing)
{
	struct store_txn *t;
	int64_t now = wall_ms();
	uint64_t batch;
	int rc = 0;

	publisher_reset(d->pub);
	if ((t = store_txn_begin(d->store, true)) == NULL)
		return -1;
	/* The batch's records are told apart by where the first one goes:
	 * a replay redoes each batch as one. */
	rc = store_log_next(t, &batch);
	for (size_t i = 0; i < ing->n && rc == 0; i++) {
		struct msg *m = &ing->msgs[i];

		if (m->pre == OUT_PREPARED)
			continue;
		if (m->am->body_case ==
		    INDICATOR__AGENT_MESSAGE__BODY_HEARTBEAT)
			rc = apply_heartbeat(t, m, now);
		else
			rc = apply_report(d, t, m, now, batch);
	}
	if (rc == 0)
		rc = publisher_update(d, t, now);
	if (rc == 0)
		rc = publisher_save_seq(d, t);
	/* With little room left, a checkpoint could fail for want of it
	 * after the acks went out, leaving acknowledged reports out of the
	 * tables: the batch then carries its own, and a batch that does not
	 * fit is refused whole. */
	ing->applied = rc == 0 && ingest_dirty(d) &&
		       (ing->tight || store_room(d->store) <
					  2 * CHECKPOINT_ENTRY_BYTES *
					      (latest_count(d->latest) +
						  publisher_pending(d->pub)));
	if (ing->applied) {
		uint64_t next;

		if ((rc = store_log_next(t, &next)) == 0)
			rc = checkpoint_write(d, t, next - 1);
	}
	if (rc != 0)
		store_txn_abort(&t);
	else
		rc = store_txn_commit(&t);
	/* The latest values and aggregates in memory took this batch in:
	 * without its commit they are wrong. Redo them from the log. */
	if (rc != 0 && ingest_recover(d) == -1)
		fatal("ingest: the store cannot be read back; stopping rather "
		      "than answer from a state it may not hold");
	return rc;
}

/* Replay: the batch being redone. */
struct replay {
	struct daemon *d;
	struct store_txn *t;
	uint64_t batch; /* 0 before the first record */
	int64_t at_ms; /* its stored_at_ms: the aggregates' updated_at_ms */
	uint64_t last; /* the last position replayed */
	uint64_t records;
	uint64_t batches;
};

/* The batch in hand is complete: its aggregates, as the live batch had
 * them (publications dropped: they went out before the crash). */
static int
replay_batch_end(struct replay *r)
{
	int rc;

	if (r->batch == 0)
		return 0;
	metrics_tick();
	rc = publisher_update(r->d, r->t, r->at_ms);
	publisher_reset(r->d->pub);
	r->batches++;
	return rc;
}

static int
replay_one(const struct store_obs *o, void *arg)
{
	struct replay *r = arg;
	struct store_ref prev;
	bool had_prev;
	int rc;

	if (o->batch != r->batch) {
		if ((rc = replay_batch_end(r)) != 0)
			return rc;
		r->batch = o->batch;
		r->at_ms = o->stored_at_ms;
	}
	if ((rc = latest_prev(r->d, r->t, o, &prev, &had_prev)) != 0)
		return rc;
	if (prev.lsn != o->prev || prev.revision + 1 != o->revision) {
		log_error("ingest: log record %llu (%s/%s/%s/%s revision %u) "
			  "does not follow revision %u at %llu",
		    (unsigned long long)o->lsn, o->district, o->industry,
		    o->metric, o->period, o->revision, prev.revision,
		    (unsigned long long)prev.lsn);
		return -1;
	}
	r->last = o->lsn;
	r->records++;
	return take_latest(r->d, r->t, o, &prev, had_prev);
}

int
ingest_recover(struct daemon *d)
{
	struct replay r = { .d = d };
	uint64_t applied = 0;
	int rc = -1;

	/* A read transaction: the replay writes nothing, so it works on a
	 * full store too; the checkpoint after it may wait for room. */
	latest_clear(d->latest);
	publisher_clear(d->pub);
	metrics_set_replaying(true);
	if ((r.t = store_txn_begin(d->store, false)) != NULL &&
	    (rc = store_meta_get(r.t, STORE_META_APPLIED, &applied)) == 0 &&
	    (rc = publisher_load(d, r.t)) == 0) {
		r.last = applied;
		if ((rc = store_log_scan(r.t, applied + 1, replay_one, &r)) ==
			0 &&
		    (rc = replay_batch_end(&r)) == 0)
			rc = publisher_seq_floor(d, r.t);
	}
	store_txn_abort(&r.t);
	metrics_set_replaying(false);
	if (rc != 0) {
		log_error("ingest: cannot replay the log from position %llu",
		    (unsigned long long)applied + 1);
		latest_clear(d->latest);
		publisher_clear(d->pub);
		return -1;
	}
	if (r.records > 0)
		log_info("ingest: replayed %llu logged observations in %llu "
			 "batches, log positions %llu to %llu",
		    (unsigned long long)r.records,
		    (unsigned long long)r.batches,
		    (unsigned long long)applied + 1,
		    (unsigned long long)r.last);
	ingest_checkpoint(d);
	return 0;
}

bool
ingest_dirty(const struct daemon *d)
{
	return latest_count(d->latest) > 0 || publisher_pending(d->pub) > 0;
}

int
ingest_checkpoint(struct daemon *d)
{
	struct store_txn *t;
	uint64_t next;
	double t0, took;
	int rc;

	d->checkpoint_ms = mono_ms();
	if (!ingest_dirty(d))
		return 0;
	t0 = mono_s();
	for (;;) {
		if ((t = store_txn_begin(d->store, true)) == NULL)
			return -1;
		if ((rc = store_log_next(t, &next)) == 0 &&
		    (rc = checkpoint_write(d, t, next - 1)) == 0)
			rc = store_txn_commit(&t);
		else
			store_txn_abort(&t);
		if (rc != STORE_FULL || store_grow(d->store) == -1)
			break;
	}
	if (rc != 0) {
		log_error("ingest: checkpoint failed%s; the log keeps every "
			  "report and the next checkpoint tries again",
		    rc == STORE_FULL ? " (store full): until one succeeds, "
				       "each batch carries its own"
				     : "");
		d->ing->tight = rc == STORE_FULL;
		return -1;
	}
	d->ing->tight = false;
	checkpointed(d);
	took = mono_s() - t0;
	d->count.checkpoints++;
	d->count.checkpoint_sum_s += took;
	if (took > d->count.checkpoint_max_s)
		d->count.checkpoint_max_s = took;
	return 0;
}

/* When the batch cannot be stored: every undecided message is told to come
 * back later. */
static void
answer_retry(struct ingest *ing, const char *code, const char *why)
{
	for (size_t i = 0; i < ing->n; i++) {
		struct msg *m = &ing->msgs[i];
		uint64_t seq = 0;

		if (m->pre == OUT_PREPARED)
			continue;
		if (m->am->body_case == INDICATOR__AGENT_MESSAGE__BODY_REPORT)
			seq = m->am->report->seq;
		msg_answer(
		    m, INDICATOR__ACK_STATUS__RETRY_LATER, seq, 0, code, why);
	}
}

static void
log_rejection(struct ingest *ing, const struct msg *m)
{
	const Indicator__Report *r = NULL;
	const struct validation *v = &m->val;
	unsigned long suppressed;
	char line[1024];
	size_t off = 0;

	if (!log_limit_pass(&ing->reject_limit, REJECT_LOG_BURST, &suppressed))
		return;
	if (suppressed > 0)
		log_warn("ingest: %lu rejection lines suppressed", suppressed);
	if (m->am != NULL &&
	    m->am->body_case == INDICATOR__AGENT_MESSAGE__BODY_REPORT)
		r = m->am->report;
	if (r == NULL) {
		log_warn("ingest: rejected message: %s: %s",
		    m->code ? m->code : "?", m->why);
		return;
	}
	off = (size_t)snprintf(line, sizeof(line),
	    "ingest: rejected report agent=%.64s epoch=%llu seq=%llu:",
	    r->agent_id, (unsigned long long)r->epoch,
	    (unsigned long long)r->seq);
	if (m->pre == OUT_PREPARED) {
		snprintf(
		    line + off, sizeof(line) - off, " %s: %s", m->code, m->why);
	} else {
		if (v->code != NULL && off < sizeof(line))
			off += (size_t)snprintf(line + off, sizeof(line) - off,
			    " %s: %s;", v->code, v->message);
		for (size_t i = 0; i < v->nerrors && off < sizeof(line); i++)
			off += (size_t)snprintf(line + off, sizeof(line) - off,
			    " obs %u: %s: %s;", v->errors[i].index,
			    v->errors[i].code, v->errors[i].message);
	}
	log_warn("%s", line);
}

/* Adds one to the count of code, once per report (seen: the codes this
 * report has counted). */
static void
count_code(struct counters *c, const char *code, bool *seen)
{
	int i = validate_code_index(
	    validate_reject_codes, VALIDATE_REJECT_CODES, code);

	if (i >= 0 && !seen[i]) {
		seen[i] = true;
		c->rejections[i]++;
	}
}

/* A new rejection, counted under each distinct code it carries. */
static void
count_rejection(struct counters *c, const struct msg *m)
{
	bool seen[VALIDATE_REJECT_CODES] = { false };
	const struct validation *v = &m->val;

	if (m->pre == OUT_PREPARED) {
		count_code(c, m->code, seen);
		return;
	}
	count_code(c, v->code, seen);
	for (size_t i = 0; i < v->nerrors; i++)
		count_code(c, v->errors[i].code, seen);
}

static void
send_acks(struct daemon *d, struct ingest *ing)
{
	int64_t now = wall_ms();
	int r;

	for (size_t i = 0; i < ing->n; i++) {
		struct msg *m = &ing->msgs[i];

		switch (m->status) {
		case INDICATOR__ACK_STATUS__ACCEPTED:
			if (m->am->body_case ==
			    INDICATOR__AGENT_MESSAGE__BODY_HEARTBEAT) {
				d->count.heartbeats++;
			} else {
				/* Reports stored: a file's parts with its
				 * last. */
				d->count.accepted += m->reports;
				metrics_report_seen(
				    d, m->am->report->district, now);
			}
			break;
		case INDICATOR__ACK_STATUS__DUPLICATE:
			d->count.duplicate++;
			break;
		case INDICATOR__ACK_STATUS__STAGED:
			d->count.staged++;
			break;
		case INDICATOR__ACK_STATUS__RETRY_LATER:
			d->count.retry++;
			r = validate_code_index(validate_retry_codes,
			    VALIDATE_RETRY_CODES, m->ack_code);
			if (r >= 0)
				d->count.retries[r]++;
			break;
		case INDICATOR__ACK_STATUS__REJECTED:
			d->count.rejected++;
			if (!m->repeat)
				count_rejection(&d->count, m);
			log_rejection(ing, m);
			break;
		}
	}
	/* The counters are final before anyone holds an answer: a client
	 * that reads the metrics right after its ack sees its report. */
	metrics_update(d);
	for (size_t i = 0; i < ing->n; i++) {
		struct msg *m = &ing->msgs[i];

		/* A peer gone or over its high-water mark loses its answer;
		 * it resends and gets DUPLICATE. Never block here. */
		if (zmq_send(d->ingest, m->id, m->idlen,
			ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1 ||
		    zmq_send(d->ingest, m->ack, m->acklen, ZMQ_DONTWAIT) == -1)
			log_debug(
			    "ingest: answer not sent: %s", zmq_strerror(errno));
	}
}

static void
release(struct ingest *ing)
{
	for (size_t i = 0; i < ing->n; i++)
		ing->msgs[i].am = NULL;
	arena_reset(&ing->arena);
	ing->n = 0;
}

int
ingest_batch(struct daemon *d)
{
	struct ingest *ing = d->ing;
	struct civil_date day;
	double t0;
	int rc;

	today(&day);
	while (ing->n < d->cfg.batch_max) {
		if (ing->n == ing->cap) {
			size_t old = ing->cap;

			ing->cap = ing->cap ? ing->cap * 2 : 64;
			ing->msgs =
			    xrealloc(ing->msgs, ing->cap * sizeof(*ing->msgs));
			memset(ing->msgs + old, 0,
			    (ing->cap - old) * sizeof(*ing->msgs));
		}
		rc = msg_recv(d->ingest, &ing->msgs[ing->n], &ing->alloc);
		if (rc == -1) {
			log_error("ingest: receive: %s", zmq_strerror(errno));
			release(ing);
			return -1;
		}
		if (rc == 0)
			break;
		msg_prepare(d, &ing->msgs[ing->n], &day);
		ing->n++;
	}
	if (ing->n == 0)
		return 0;
	/* A batch that fills the map is redone after the map grows, and its
	 * in-memory changes rebuilt from the log since the checkpoint: grow
	 * it before that happens. */
	if (store_make_room(d->store) == 1) {
		log_info("ingest: store map grown to %llu MiB ahead of need",
		    (unsigned long long)(store_map_size(d->store) >> 20));
		ing->full_logged = false;
	}
	t0 = mono_s();
	while ((rc = apply_batch(d, ing)) == STORE_FULL) {
		if (store_grow(d->store) == -1)
			break;
		log_info("ingest: store map grown to %llu MiB",
		    (unsigned long long)(store_map_size(d->store) >> 20));
		ing->full_logged = false;
	}
	if (rc == STORE_FULL) {
		if (!ing->full_logged)
			log_error("ingest: store is full at map_max_mb; "
				  "answering RETRY_LATER until it is raised");
		ing->full_logged = true;
		answer_retry(ing, "store_full",
		    "the store is full; the operator must raise map_max_mb");
	} else if (rc != 0) {
		answer_retry(ing, "store_error",
		    "the store failed; see the daemon's log");
	}
	control_commit_observe(d, mono_s() - t0, ing->n);
	d->count.batches++;
	send_acks(d, ing);
	if (rc == 0)
		publisher_send(d);
	else
		publisher_reset(d->pub);
	if (rc == 0 && ing->applied) {
		checkpointed(d);
		d->checkpoint_ms = mono_ms();
	}
	rc = (int)ing->n;
	release(ing);
	if (ingest_dirty(d) &&
	    (mono_ms() - d->checkpoint_ms >= (int64_t)d->cfg.checkpoint_ms ||
		held(d) >= d->cfg.checkpoint_entries))
		ingest_checkpoint(d);
	return rc;
}
