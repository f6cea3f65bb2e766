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

#include "arena.h"
#include "filetx.h"
#include "indicatord.h"
#include "ledger.h"
#include "pbwire.h"
#include "ratelimit.h"
#include "validate.h"
#include "xmalloc.h"

#define ID_MAX 256 /* ROUTER identities are at most 255 bytes */
#define REJECT_LOG_BURST 20 /* rejection lines a second, at most */

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
	/* A file's errors' codes, bit i for validate_reject_codes[i]: the
	 * whole file's (a key in two parts), counted with the report's. */
	uint32_t file_codes;
	uint32_t reports; /* ACCEPTED: the reports stored (a file's parts) */
	size_t bytes; /* the message's size on the wire */
	/* Observations counted on the wire and not decoded: more than
	 * max_observations (0: decoded as they came). */
	size_t counted;
	uint64_t wire_seq; /* a report's seq, read before decoding */
};

/* The decoded messages come from the batch's arena (arena.h). */
static void *
alloc_arena(void *data, size_t size)
{
	return arena_alloc(data, size);
}

static void
free_arena(void *data, void *ptr)
{
	(void)data;
	(void)ptr; /* all at once, in arena_reset() */
}

struct ingest {
	struct arena *arena; /* the batch's decoded messages */
	ProtobufCAllocator alloc; /* from the arena */
	struct ratelimit *rate; /* rate_limit per agent */
	struct msg *msgs;
	size_t n;
	size_t cap;
	struct log_limit reject_limit;
	bool full_logged;
	struct filetx_answer file; /* a part of a file's answer */
	uint64_t batch_bytes; /* bytes of the messages this batch took */
	struct log_limit drop_limit;
};

struct ingest *
ingest_new(void)
{
	struct ingest *ing = xcalloc(1, sizeof(struct ingest));

	ing->arena = arena_new();
	ing->rate = ratelimit_new();
	ing->alloc.alloc = alloc_arena;
	ing->alloc.free = free_arena;
	ing->alloc.allocator_data = ing->arena;
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
	arena_destroy(&ing->arena);
	ratelimit_destroy(&ing->rate);
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
msg_reject(struct msg *m, uint64_t seq, uint64_t expected, size_t max_errors)
{
	const struct validation *v = &m->val;
	Indicator__Ack ack = INDICATOR__ACK__INIT;
	Indicator__ObservationError *errs, **ptrs;
	size_t nerr = v->nerrors < max_errors ? v->nerrors : max_errors;
	char summary[160];
	int off;

	errs = xcalloc(nerr ? nerr : 1, sizeof(*errs));
	ptrs = xcalloc(nerr ? nerr : 1, sizeof(*ptrs));
	for (size_t i = 0; i < nerr; i++) {
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
		off = snprintf(summary, sizeof(summary),
		    "%zu of %zu observations invalid; nothing stored", bad,
		    m->am->report->n_observations);
		if (nerr < v->nerrors && off > 0 &&
		    (size_t)off < sizeof(summary))
			snprintf(summary + off, sizeof(summary) - (size_t)off,
			    "; the first %zu of %zu errors listed", nerr,
			    v->nerrors);
		ack.message = summary;
	}
	ack.n_errors = nerr;
	ack.errors = ptrs;
	msg_set_ack(m, &ack);
	free(ptrs);
	free(errs);
}

/* A part of a file: filetx.c's answer, its errors cut at max_errors as a
 * report's are. */
static void
msg_file_answer(struct msg *m, uint64_t seq, const struct filetx_answer *ans,
    size_t max_errors)
{
	Indicator__Ack ack = INDICATOR__ACK__INIT;
	Indicator__ObservationError *errs, **ptrs;
	char message[VALIDATE_MSG_MAX + 64];

	filetx_ack(ans, &ack, &errs, &ptrs);
	ack.seq = seq;
	ack.expected_seq = seq + 1;
	if (ack.n_errors > max_errors) {
		snprintf(message, sizeof(message),
		    "%s; the first %zu of %zu errors listed", ack.message,
		    max_errors, ack.n_errors);
		ack.message = message;
		ack.n_errors = max_errors;
	}
	msg_set_ack(m, &ack);
	m->ack_code = ans->code;
	for (size_t i = 0; i < ans->nerrors; i++) {
		int c = validate_code_index(validate_reject_codes,
		    VALIDATE_REJECT_CODES, ans->errors[i].code);

		if (c >= 0)
			m->file_codes |= UINT32_C(1) << c;
	}
	/* Counted and logged with the report's own errors. */
	if (ans->code != NULL) {
		m->val.code = ans->code;
		strlcpy_ok(
		    m->val.message, ans->message, sizeof(m->val.message));
	}
	free(ptrs);
	free(errs);
}

/* Errors listed in a packed Ack (field 3), counted on the wire. */
static size_t
ack_errors_counted(const uint8_t *buf, size_t len)
{
	const uint8_t *p = buf, *end = buf + len;
	struct pbwire_field f;
	size_t n = 0;

	while (pbwire_next(&p, end, &f) == 1)
		if (f.number == 3 && f.type == 2)
			n++;
	return n;
}

/*
 * The stored answer to a resent seq, as m's answer: as it was, or, when it
 * lists more than max_errors errors (stored before the bound, or with a
 * larger one), the first max_errors of them and a message that counts the
 * rest, so that a small request never gets a large answer.
 */
static void
msg_reject_again(struct msg *m, const void *buf, size_t len, size_t max_errors)
{
	Indicator__Ack *ack = NULL;
	size_t n = ack_errors_counted(buf, len);

	m->status = INDICATOR__ACK_STATUS__REJECTED;
	m->repeat = true;
	if (n > max_errors)
		ack = indicator__ack__unpack(NULL, len, buf);
	if (ack != NULL) {
		char *old = ack->message, *msg;
		size_t keep = ack->n_errors;
		size_t mlen = strlen(old ? old : "") + 64;

		msg = xmalloc(mlen);
		snprintf(msg, mlen, "%s; the first %zu of %zu errors listed",
		    old ? old : "", max_errors, n);
		ack->message = msg;
		ack->n_errors = max_errors;
		msg_set_ack(m, ack);
		ack->n_errors = keep;
		ack->message = old;
		free(msg);
		indicator__ack__free_unpacked(ack, NULL);
		return;
	}
	if (len > m->ackcap) {
		m->ack = xrealloc(m->ack, len);
		m->ackcap = len;
	}
	memcpy(m->ack, buf, len);
	m->acklen = len;
}

/* Fields one observation may carry before a message counts as inflated:
 * its seven and room for additions. */
#define WIRE_FIELDS_PER_OBS 16

/*
 * Reads a packed AgentMessage's report without decoding it: the
 * observations it carries (every occurrence of the body counted, as
 * protobuf merges them), its seq, and its fields: those of the message
 * and the report (*fields) and those inside the observations
 * (*obs_fields): protobuf-c keeps each field it does not know, 2 bytes on
 * the wire and some 50 in memory, so these counts bound what decoding
 * costs. *nul: some length-delimited field of a body (report or
 * heartbeat) or of an observation holds a NUL byte, or a body does not
 * walk: then validate_wire() must say which string it is; without one the
 * decoded strings are what was sent, and that walk is saved (it was a
 * seventh of the ingest thread's instructions). 0, or -1 when the bytes
 * are not a message.
 */
static int
wire_report(const uint8_t *buf, size_t len, size_t *nobs, uint64_t *seq,
    size_t *fields, size_t *obs_fields, bool *nul)
{
	const uint8_t *p = buf, *end = buf + len;
	struct pbwire_field f, g, h;
	int rc;

	*nobs = 0;
	*seq = 0;
	*fields = 0;
	*obs_fields = 0;
	*nul = false;
	while ((rc = pbwire_next(&p, end, &f)) == 1) {
		const uint8_t *q, *qend;
		bool report = f.number == 1; /* else the heartbeat */

		(*fields)++;
		if ((f.number != 1 && f.number != 2) || f.type != 2)
			continue;
		q = f.data;
		qend = f.data + f.len;
		while ((rc = pbwire_next(&q, qend, &g)) == 1) {
			if (report && g.number == 6 && g.type == 2) {
				const uint8_t *o = g.data, *oend = o + g.len;
				int orc;

				(*nobs)++;
				while ((orc = pbwire_next(&o, oend, &h)) == 1) {
					(*obs_fields)++;
					if (h.type == 2 &&
					    memchr(h.data, '\0', h.len) != NULL)
						*nul = true;
				}
				if (orc == -1)
					*nul = true;
				continue;
			}
			if (g.type == 2 && memchr(g.data, '\0', g.len) != NULL)
				*nul = true;
			if (!report)
				continue;
			(*fields)++;
			if (g.number == 4 && g.type == 0)
				*seq = g.u;
		}
		if (rc == -1 && report)
			return -1;
		if (rc == -1)
			*nul = true;
	}
	return rc == -1 ? -1 : 0;
}

static size_t
put_varint(uint8_t *out, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

/*
 * Copies the packed AgentMessage (len bytes at buf, a message as
 * wire_report() found) into out, of at least len bytes, without the
 * observations of its report; returns the copy's length, never more than
 * len (a shorter body only shortens its length's varint).
 */
static size_t
wire_strip_observations(const uint8_t *buf, size_t len, uint8_t *out)
{
	const uint8_t *p = buf, *end = buf + len, *at = buf;
	struct pbwire_field f, g;
	size_t o = 0;

	while (pbwire_next(&p, end, &f) == 1) {
		const uint8_t *q = f.data, *qend = f.data + f.len, *qat = q;
		size_t keep = 0;

		if (f.number != 1 || f.type != 2) {
			memcpy(out + o, at, (size_t)(p - at));
			o += (size_t)(p - at);
			at = p;
			continue;
		}
		while (pbwire_next(&q, qend, &g) == 1) {
			if (!(g.number == 6 && g.type == 2))
				keep += (size_t)(q - qat);
			qat = q;
		}
		out[o++] = 0x0a; /* field 1, length-delimited */
		o += put_varint(out + o, keep);
		q = f.data;
		qat = q;
		while (pbwire_next(&q, qend, &g) == 1) {
			if (!(g.number == 6 && g.type == 2)) {
				memcpy(out + o, qat, (size_t)(q - qat));
				o += (size_t)(q - qat);
			}
			qat = q;
		}
		at = p;
	}
	return o;
}

/* Bytes the batch already took from the connection of id. */
static uint64_t
conn_bytes(const struct ingest *ing, const unsigned char *id, size_t idlen)
{
	uint64_t n = 0;

	for (size_t i = 0; i < ing->n; i++)
		if (ing->msgs[i].idlen == idlen &&
		    memcmp(ing->msgs[i].id, id, idlen) == 0)
			n += ing->msgs[i].bytes;
	return n;
}

/*
 * Decodes the frame (len bytes at data) into m->am with alloc, within the
 * budgets: a connection past its share of the batch gets RETRY_LATER
 * (busy) undecoded; a report with more observations than the limit on the
 * wire is decoded without them (m->counted), so that it costs no more than
 * its size.
 */
static void
msg_decode(struct daemon *d, struct msg *m, const uint8_t *data, size_t len,
    ProtobufCAllocator *alloc)
{
	struct ingest *ing = d->ing;
	size_t nobs = 0, fields = 0, obs_fields = 0, most;
	uint64_t seq = 0;
	bool nul;

	m->bytes = len;
	if (wire_report(data, len, &nobs, &seq, &fields, &obs_fields, &nul) ==
	    -1)
		return; /* malformed */
	m->wire_seq = seq;
	/* A message inflated with fields nobody reads (kept by protobuf-c,
	 * 25 times their size) is refused undecoded. Past max_observations
	 * the observations are not decoded: their fields do not count. */
	most = 64;
	if (nobs <= d->cfg.limits.max_observations) {
		fields += obs_fields;
		most += (size_t)WIRE_FIELDS_PER_OBS * nobs;
	}
	if (fields > most) {
		m->code = "malformed";
		snprintf(m->why, sizeof(m->why),
		    "the message holds %zu fields, more than %zu: not decoded",
		    fields, most);
		return;
	}
	if (ing->batch_bytes + len > d->cfg.conn_batch_bytes &&
	    conn_bytes(ing, m->id, m->idlen) + len > d->cfg.conn_batch_bytes &&
	    conn_bytes(ing, m->id, m->idlen) > 0) {
		m->code = "busy";
		snprintf(m->why, sizeof(m->why),
		    "this connection sent more than %llu MiB in one batch; "
		    "send again later",
		    (unsigned long long)(d->cfg.conn_batch_bytes >> 20));
		return;
	}
	if (nobs > d->cfg.limits.max_observations) {
		uint8_t *copy = alloc->alloc(alloc->allocator_data, len);

		len = wire_strip_observations(data, len, copy);
		data = copy;
		m->counted = nobs;
	}
	m->am = indicator__agent_message__unpack(alloc, len, data);
	/* The NULs the decoded strings no longer show. */
	if (m->am != NULL && nul)
		validate_wire(&m->val, data, len);
	else if (m->am != NULL)
		validate_wire_none(&m->val);
}

/* Receives one ROUTER message into m, decoded with alloc. 1 when one was
 * taken, 0 when none is waiting, -1 on a socket failure. */
static int
msg_recv(struct daemon *d, struct msg *m, ProtobufCAllocator *alloc)
{
	void *sock = d->ingest;
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
	m->file_codes = 0;
	m->reports = 1;
	m->bytes = 0;
	m->counted = 0;
	m->wire_seq = 0;
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

			msg_decode(d, m, zmq_msg_data(&part),
			    zmq_msg_size(&part), alloc);
			strlcpy_ok(m->user, user ? user : "", sizeof(m->user));
		} else {
			m->bytes += zmq_msg_size(&part);
		}
	}
	zmq_msg_close(&part);
	if (m->code != NULL) {
		/* busy: decided */
	} else if (frames != 1) {
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
 * The per-agent rate limit (ratelimit.h): rate_limit reports a second,
 * burst one second's worth, so one agent cannot take the disk from the
 * others. True when the report may go on.
 */
static bool
rate_take(struct daemon *d, const char *agent_id)
{
	return ratelimit_take(
	    d->ing->rate, agent_id, (double)d->cfg.rate_limit, wall_ms());
}

/* Decides what can be decided without the store: malformed messages, bad
 * senders; validates report content. */
static void
msg_prepare(struct daemon *d, struct msg *m, const struct civil_date *day)
{
	const struct config_limits *lim = &d->cfg.limits;
	Indicator__Report *r;
	Indicator__Heartbeat *hb;

	if (m->code != NULL && strcmp(m->code, "busy") == 0) {
		msg_answer(m, INDICATOR__ACK_STATUS__RETRY_LATER, m->wire_seq,
		    0, m->code, m->why);
		m->pre = OUT_PREPARED;
		return;
	}
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
	m->invalid = validate_report_counted(
	    &d->cfg.reg, lim, r, m->counted, day, &m->val);
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

/* The report's observations into the ledger: log, latest, aggregates. */
int
ingest_apply_report(struct daemon *d, struct store_txn *t,
    const Indicator__Report *r, const struct validation *v, int64_t now,
    uint64_t batch)
{
	char name[sizeof(META_REPORT_MS) + IND_CODE_MAX];
	struct store_obs o;
	int rc;

	(void)batch; /* the ledger numbers the batch (ledger_batch_begin()) */
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
		if ((rc = ledger_observe(d->ledger, t, &o)) != 0)
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
apply_report(struct daemon *d, struct store_txn *t, struct msg *m, int64_t now)
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
			msg_reject_again(
			    m, buf, len, d->cfg.limits.max_ack_errors);
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
	if ((rc = filetx_take(d, t, r, &m->val, m->invalid, now, 0, file)) != 0)
		return rc;
	if (file->status != 0) {
		msg_file_answer(m, r->seq, file, d->cfg.limits.max_ack_errors);
		if (file->status == INDICATOR__ACK_STATUS__REJECTED) {
			rc = store_reject_put(t, r->agent_id, r->epoch, r->seq,
			    m->ack, m->acklen);
			st.rejected += file->reports;
		} else if (file->status == INDICATOR__ACK_STATUS__ACCEPTED) {
			st.accepted += file->reports;
			m->reports = file->reports;
		}
	} else if (m->invalid) {
		msg_reject(m, r->seq, r->seq + 1, d->cfg.limits.max_ack_errors);
		rc = store_reject_put(
		    t, r->agent_id, r->epoch, r->seq, m->ack, m->acklen);
		st.rejected++;
	} else {
		rc = ingest_apply_report(d, t, r, &m->val, now, 0);
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

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One attempt at the batch's write transaction (store_write()). */
struct attempt {
	struct daemon *d;
	struct ingest *ing;
	int64_t now;
	const struct ledger_pub *pubs; /* to publish after the commit */
	size_t npubs;
	bool failed; /* the ledger could not be rebuilt after an attempt */
};

static int
apply_fn(struct store_txn *t, void *arg)
{
	struct attempt *a = arg;
	struct ingest *ing = a->ing;
	int rc;

	rc = ledger_batch_begin(a->d->ledger, t);
	for (size_t i = 0; i < ing->n && rc == 0; i++) {
		struct msg *m = &ing->msgs[i];

		if (m->pre == OUT_PREPARED)
			continue;
		if (m->am->body_case ==
		    INDICATOR__AGENT_MESSAGE__BODY_HEARTBEAT)
			rc = apply_heartbeat(t, m, a->now);
		else
			rc = apply_report(a->d, t, m, a->now);
	}
	if (rc == 0)
		rc = ledger_batch_end(
		    a->d->ledger, t, a->now, &a->pubs, &a->npubs);
	return rc;
}

/* The attempt failed: the ledger took the batch in and must forget it. */
static void
apply_undo(void *arg)
{
	struct attempt *a = arg;

	a->npubs = 0;
	if (ledger_batch_done(a->d->ledger, false) == -1)
		a->failed = true;
}

/* The observations the batch's undecided reports carry. */
static size_t
batch_observations(const struct ingest *ing)
{
	size_t n = 0;

	for (size_t i = 0; i < ing->n; i++) {
		const struct msg *m = &ing->msgs[i];

		if (m->pre != OUT_PREPARED &&
		    m->am->body_case == INDICATOR__AGENT_MESSAGE__BODY_REPORT)
			n += m->am->report->n_observations;
	}
	return n;
}

/* Every report of the batch not yet decided is told to come back when
 * the store has room. */
static void
refuse_reports(struct ingest *ing)
{
	for (size_t i = 0; i < ing->n; i++) {
		struct msg *m = &ing->msgs[i];

		if (m->pre == OUT_PREPARED ||
		    m->am->body_case != INDICATOR__AGENT_MESSAGE__BODY_REPORT)
			continue;
		msg_answer(m, INDICATOR__ACK_STATUS__RETRY_LATER,
		    m->am->report->seq, 0, "store_full",
		    "the store is full; the operator must raise map_max_mb");
		m->pre = OUT_PREPARED;
	}
	if (!ing->full_logged)
		log_error("ingest: store is full at map_max_mb (the tables); "
			  "answering RETRY_LATER until it is raised");
	ing->full_logged = true;
}

/* Applies the batch in one write transaction (grown and redone while the
 * map fills) and commits. 0, STORE_FULL or -1; on failure the answers are
 * void and the ledger has been rebuilt from the store. */
static int
apply_batch(struct daemon *d, struct ingest *ing, struct attempt *a)
{
	size_t before = (size_t)store_map_size(d->store);
	int rc;

	a->d = d;
	a->ing = ing;
	a->now = wall_ms();
	a->npubs = 0;
	/* The tables full: no report is acknowledged that cannot be
	 * applied (heartbeats go on). */
	if (ledger_full(d->ledger, batch_observations(ing)))
		refuse_reports(ing);
	rc = store_write(d->store, STORE_TXN_LOG, apply_fn, apply_undo, a);
	if (a->failed)
		fatal("ingest: the store cannot be read back; stopping rather "
		      "than answer from a state it may not hold");
	if (rc == 0)
		ledger_batch_done(d->ledger, true);
	if ((size_t)store_map_size(d->store) != before) {
		log_info("ingest: store map grown to %llu MiB",
		    (unsigned long long)(store_map_size(d->store) >> 20));
		ing->full_logged = false;
	}
	return rc;
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

_Static_assert(VALIDATE_REJECT_CODES <= 32, "struct msg's file_codes");

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
	for (int i = 0; i < VALIDATE_REJECT_CODES; i++)
		if (m->file_codes & UINT32_C(1) << i)
			count_code(c, validate_reject_codes[i], seen);
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
		void *copy = xmalloc(m->acklen ? m->acklen : 1);
		unsigned long suppressed;

		/* A peer gone or over its high-water mark loses its answer;
		 * it resends and gets DUPLICATE. Never block here. So does
		 * one past answers_mb: peers that do not read their answers
		 * cannot take the daemon's memory. */
		memcpy(copy, m->ack, m->acklen);
		r = budget_answer(d->ingest, m->id, m->idlen, copy, m->acklen,
		    d->cfg.answer_bytes);
		if (r == 1) {
			d->count.answers_dropped++;
			if (log_limit_pass(&ing->drop_limit, 1, &suppressed))
				log_warn("ingest: answers queued for peers "
					 "are at answers_mb (%llu MiB); "
					 "answers dropped (%lu more since the "
					 "last line)",
				    (unsigned long long)(d->cfg.answer_bytes >>
							 20),
				    suppressed);
		} else if (r == -1) {
			log_debug(
			    "ingest: answer not sent: %s", zmq_strerror(errno));
		}
	}
}

static void
release(struct ingest *ing)
{
	for (size_t i = 0; i < ing->n; i++)
		ing->msgs[i].am = NULL;
	arena_reset(ing->arena);
	ing->n = 0;
}

int
ingest_batch(struct daemon *d)
{
	struct ingest *ing = d->ing;
	struct attempt a = { 0 };
	struct civil_date day;
	double t0;
	int rc;

	today(&day);
	ing->batch_bytes = 0;
	/* Past batch_bytes the batch ends: what waits stays in ZeroMQ's
	 * queues, each bounded by connection_queue_mb. */
	while (ing->n < d->cfg.batch_max &&
	       ing->batch_bytes < d->cfg.batch_bytes) {
		if (ing->n == ing->cap) {
			size_t old = ing->cap;

			ing->cap = ing->cap ? ing->cap * 2 : 64;
			ing->msgs =
			    xrealloc(ing->msgs, ing->cap * sizeof(*ing->msgs));
			memset(ing->msgs + old, 0,
			    (ing->cap - old) * sizeof(*ing->msgs));
		}
		rc = msg_recv(d, &ing->msgs[ing->n], &ing->alloc);
		if (rc == -1) {
			log_error("ingest: receive: %s", zmq_strerror(errno));
			release(ing);
			return -1;
		}
		if (rc == 0)
			break;
		msg_prepare(d, &ing->msgs[ing->n], &day);
		ing->batch_bytes += ing->msgs[ing->n].bytes;
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
	rc = apply_batch(d, ing, &a);
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
		publisher_send(d, a.pubs, a.npubs);
	rc = (int)ing->n;
	release(ing);
	return rc;
}
