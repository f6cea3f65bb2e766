/*
 * File transactions: a file's parts staged in the store until the last
 * one, then stored together or not at all (filetx.h, docs/protocol.md).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "filetx.h"
#include "xmalloc.h"

bool
filetx_is_part(const Indicator__Report *r)
{
	return r->file_id != 0 || r->part != 0 || r->parts != 0;
}

void
filetx_answer_free(struct filetx_answer *ans)
{
	free(ans->errors);
	memset(ans, 0, sizeof(*ans));
}

static void
answer_reset(struct filetx_answer *ans)
{
	ans->status = 0;
	ans->code = NULL;
	ans->message[0] = '\0';
	ans->nerrors = 0;
	ans->stored = false;
	ans->observations = 0;
	ans->reports = 1;
}

static void answer_error(struct filetx_answer *ans, uint32_t part,
    uint32_t index, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
answer_error(struct filetx_answer *ans, uint32_t part, uint32_t index,
    const char *code, const char *fmt, ...)
{
	struct filetx_error *e;
	va_list ap;

	if (ans->nerrors == ans->cap) {
		ans->cap = ans->cap ? ans->cap * 2 : 16;
		ans->errors =
		    xrealloc(ans->errors, ans->cap * sizeof(*ans->errors));
	}
	e = &ans->errors[ans->nerrors++];
	e->part = part;
	e->index = index;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

/* The validation's errors of one part into the answer. */
static void
answer_errors(
    struct filetx_answer *ans, const struct validation *v, uint32_t part)
{
	for (size_t i = 0; i < v->nerrors; i++)
		answer_error(ans, part, v->errors[i].index, v->errors[i].code,
		    "%s", v->errors[i].message);
}

/* REJECTED: code (NULL for errors of observations only), the message,
 * and the report's own errors when it is invalid. */
static void answer_reject(struct filetx_answer *ans, const struct validation *v,
    bool invalid, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
answer_reject(struct filetx_answer *ans, const struct validation *v,
    bool invalid, const char *code, const char *fmt, ...)
{
	va_list ap;

	ans->status = INDICATOR__ACK_STATUS__REJECTED;
	ans->code = code;
	va_start(ap, fmt);
	vsnprintf(ans->message, sizeof(ans->message), fmt, ap);
	va_end(ap);
	if (invalid) {
		/* A problem of the report as a whole wins the code. */
		if (code == NULL && v->code != NULL)
			ans->code = v->code;
		answer_errors(ans, v, 0);
	}
}

void
filetx_ack(const struct filetx_answer *ans, Indicator__Ack *ack,
    Indicator__ObservationError **errsp, Indicator__ObservationError ***ptrsp)
{
	Indicator__ObservationError *errs, **ptrs;

	errs = xcalloc(ans->nerrors + 1, sizeof(*errs));
	ptrs = xcalloc(ans->nerrors + 1, sizeof(*ptrs));
	for (size_t i = 0; i < ans->nerrors; i++) {
		indicator__observation_error__init(&errs[i]);
		errs[i].part = ans->errors[i].part;
		errs[i].index = ans->errors[i].index;
		errs[i].code = (char *)ans->errors[i].code;
		errs[i].message = (char *)ans->errors[i].message;
		ptrs[i] = &errs[i];
	}
	ack->status = ans->status;
	ack->code = (char *)(ans->code != NULL ? ans->code : "");
	ack->message = (char *)ans->message;
	ack->n_errors = ans->nerrors;
	ack->errors = ptrs;
	*errsp = errs;
	*ptrsp = ptrs;
}

/* NULL when the file fields make sense, else why not (bad_file). */
static const char *
fields_check(const Indicator__Report *r, char *why, size_t len)
{
	if (r->file_id == 0 || r->part == 0 || r->parts == 0) {
		snprintf(why, len,
		    "file_id, part and parts must be set together (file_id "
		    "not 0, part 1 to parts)");
		return why;
	}
	if (r->part > r->parts) {
		snprintf(why, len, "part %u of %u", r->part, r->parts);
		return why;
	}
	if (r->parts > FILETX_PARTS_MAX) {
		snprintf(why, len, "a file of %u parts, over the limit of %d",
		    r->parts, FILETX_PARTS_MAX);
		return why;
	}
	if (r->seq < r->part) {
		snprintf(why, len, "part %u cannot have seq %llu", r->part,
		    (unsigned long long)r->seq);
		return why;
	}
	return NULL;
}

/* Whether r is the next part of the open file st. */
static bool
is_next(const struct store_stage *st, const Indicator__Report *r)
{
	return r->file_id == st->file_id && r->parts == st->parts &&
	       r->part == st->received + 1 && r->part >= 2 &&
	       r->seq == st->first_seq + st->received;
}

/* Stages part r of the file st (updated and written). */
static int
stage_part(struct store_txn *t, const Indicator__Report *r,
    struct store_stage *st, int64_t now)
{
	size_t len = indicator__report__get_packed_size(r);
	uint8_t *buf = xmalloc(len > 0 ? len : 1);
	int rc;

	indicator__report__pack(r, buf);
	rc = store_staged_put(t, r->agent_id, r->epoch, r->part, buf, len);
	free(buf);
	if (rc != 0)
		return rc;
	st->received = r->part;
	st->last_ms = now;
	st->bytes += len;
	return store_stage_put(t, r->agent_id, r->epoch, st);
}

/* The file of (agent_id, epoch) is over: its stage and parts go. */
static int
stage_end(
    struct daemon *d, struct store_txn *t, const char *agent_id, uint64_t epoch)
{
	if (d->count.files_open > 0)
		d->count.files_open--;
	return store_stage_del(t, agent_id, epoch);
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

/* One observation of a whole file, for the duplicate check. */
struct key_ref {
	const Indicator__Observation *o;
	uint32_t part;
	uint32_t index;
};

static int
key_ref_cmp(const void *x, const void *y)
{
	const struct key_ref *a = x, *b = y;
	int c;

	if ((c = strcmp(a->o->industry, b->o->industry)) != 0 ||
	    (c = strcmp(a->o->metric, b->o->metric)) != 0 ||
	    (c = strcmp(a->o->period, b->o->period)) != 0)
		return c;
	if (a->part != b->part)
		return a->part < b->part ? -1 : 1;
	return a->index < b->index ? -1 : a->index > b->index;
}

/*
 * One (industry, metric, period) in two parts of the file: both
 * observations are named, each with the other's place. (Twice in one part
 * the validation of that part has said already.)
 */
static void
file_duplicates(struct filetx_answer *ans, Indicator__Report **parts,
    uint32_t n, uint32_t last)
{
	struct key_ref *refs;
	size_t total = 0, k = 0;

	for (uint32_t p = 0; p < n; p++)
		total += parts[p]->n_observations;
	refs = xcalloc(total + 1, sizeof(*refs));
	for (uint32_t p = 0; p < n; p++)
		for (size_t i = 0; i < parts[p]->n_observations; i++) {
			refs[k].o = parts[p]->observations[i];
			refs[k].part = p + 1;
			refs[k].index = (uint32_t)i;
			k++;
		}
	qsort(refs, total, sizeof(*refs), key_ref_cmp);
	for (size_t i = 1; i < total; i++) {
		const struct key_ref *a = &refs[i - 1], *b = &refs[i];

		if (strcmp(a->o->industry, b->o->industry) != 0 ||
		    strcmp(a->o->metric, b->o->metric) != 0 ||
		    strcmp(a->o->period, b->o->period) != 0 ||
		    a->part == b->part)
			continue;
		/* The strings passed validation: safe to echo. */
		answer_error(ans, a->part == last ? 0 : a->part, a->index,
		    "duplicate_key", "%s/%s/%s is also part %u, observation %u",
		    a->o->industry, a->o->metric, a->o->period, b->part,
		    b->index);
		answer_error(ans, b->part == last ? 0 : b->part, b->index,
		    "duplicate_key", "%s/%s/%s is also part %u, observation %u",
		    b->o->industry, b->o->metric, b->o->period, a->part,
		    a->index);
	}
	free(refs);
}

/*
 * The last part r of the file st, valid: every staged part is read back
 * and validated again (the registry and the date of now decide), the
 * whole file is checked for a key twice, and then every part is stored,
 * or none.
 */
static int
file_complete(struct daemon *d, struct store_txn *t, const Indicator__Report *r,
    struct validation *v, const struct store_stage *st, int64_t now,
    uint64_t batch, struct filetx_answer *ans)
{
	uint32_t n = st->parts, bad = 0;
	Indicator__Report **parts = xcalloc(n, sizeof(*parts));
	struct validation *vals = xcalloc(n, sizeof(*vals));
	struct civil_date day;
	uint64_t nobs = 0;
	int rc = 0;

	today(&day);
	for (uint32_t p = 1; p < n && rc == 0; p++) {
		const void *buf;
		size_t len;

		validation_init(&vals[p - 1]);
		rc = store_staged_get(t, r->agent_id, r->epoch, p, &buf, &len);
		if (rc == STORE_NOTFOUND) {
			log_error("filetx: agent %s epoch %llu: staged part %u "
				  "of %u is missing",
			    r->agent_id, (unsigned long long)r->epoch, p, n);
			rc = -1;
		}
		if (rc != 0)
			break;
		parts[p - 1] = indicator__report__unpack(NULL, len, buf);
		if (parts[p - 1] == NULL) {
			log_error("filetx: agent %s epoch %llu: staged part %u "
				  "does not decode",
			    r->agent_id, (unsigned long long)r->epoch, p);
			rc = -1;
			break;
		}
		if (validate_report(&d->cfg.reg, &d->cfg.limits, parts[p - 1],
			&day, &vals[p - 1]) != 0) {
			bad++;
			if (vals[p - 1].code != NULL && ans->code == NULL)
				ans->code = vals[p - 1].code;
			answer_errors(ans, &vals[p - 1], p);
		}
	}
	if (rc != 0)
		goto free_parts;
	parts[n - 1] = (Indicator__Report *)r;
	file_duplicates(ans, parts, n, n);
	if (ans->nerrors > 0 || bad > 0) {
		ans->status = INDICATOR__ACK_STATUS__REJECTED;
		snprintf(ans->message, sizeof(ans->message),
		    "the file's %u parts hold %zu errors; nothing of the file "
		    "is stored",
		    n, ans->nerrors);
		ans->reports = n;
		d->count.files_rejected++;
		rc = stage_end(d, t, r->agent_id, r->epoch);
		goto free_parts;
	}
	/* The staged parts go first (they are read): the pages the delete
	 * frees are then taken again by the log's new records rather than
	 * left unwritten at the end of the file (store.c). */
	rc = stage_end(d, t, r->agent_id, r->epoch);
	for (uint32_t p = 0; p < n && rc == 0; p++) {
		rc = ingest_apply_report(
		    d, t, parts[p], p + 1 < n ? &vals[p] : v, now, batch);
		nobs += parts[p]->n_observations;
	}
	if (rc == 0) {
		ans->status = INDICATOR__ACK_STATUS__ACCEPTED;
		ans->stored = true;
		ans->observations = nobs;
		ans->reports = n;
		snprintf(ans->message, sizeof(ans->message),
		    "file stored: %u parts, %llu observations", n,
		    (unsigned long long)nobs);
		d->count.files_stored++;
	}
free_parts:
	for (uint32_t p = 0; p + 1 < n; p++) {
		indicator__report__free_unpacked(parts[p], NULL);
		validation_free(&vals[p]);
	}
	free(vals);
	free(parts);
	return rc;
}

int
filetx_take(struct daemon *d, struct store_txn *t, const Indicator__Report *r,
    struct validation *v, bool invalid, int64_t now, uint64_t batch,
    struct filetx_answer *ans)
{
	struct store_stage st;
	char why[VALIDATE_MSG_MAX];
	bool open = false;
	int rc;

	answer_reset(ans);
	if (d->count.files_open > 0 || filetx_is_part(r)) {
		rc = store_stage_get(t, r->agent_id, r->epoch, &st);
		if (rc != 0 && rc != STORE_NOTFOUND)
			return rc;
		open = rc == 0;
	}
	if (open && !(filetx_is_part(r) && is_next(&st, r))) {
		/* Its next part would have needed this seq: it can never
		 * be whole. */
		log_warn("filetx: agent %s epoch %llu: file %016llx abandoned "
			 "after part %u of %u (seq %llu is not its next part)",
		    r->agent_id, (unsigned long long)r->epoch,
		    (unsigned long long)st.file_id, st.received, st.parts,
		    (unsigned long long)r->seq);
		if ((rc = stage_end(d, t, r->agent_id, r->epoch)) != 0)
			return rc;
		/* One refused already is counted as such. */
		if (st.rejected == 0)
			d->count.files_abandoned++;
		open = false;
	}
	if (!filetx_is_part(r))
		return 0;
	if (fields_check(r, why, sizeof(why)) != NULL) {
		answer_reject(ans, v, invalid, "bad_file", "%s", why);
		return 0;
	}
	if (r->part == 1) {
		memset(&st, 0, sizeof(st));
		st.file_id = r->file_id;
		st.parts = r->parts;
		st.first_seq = r->seq;
		st.started_ms = now;
		if (invalid) {
			answer_reject(ans, v, true, NULL,
			    "part 1 of %u is invalid; nothing of the file is "
			    "stored",
			    r->parts);
			d->count.files_rejected++;
			if (r->parts == 1)
				return 0;
			/* Remembered, so that its other parts are told. */
			st.received = 1;
			st.rejected = 1;
			st.last_ms = now;
			d->count.files_open++;
			return store_stage_put(t, r->agent_id, r->epoch, &st);
		}
		if (r->parts == 1) {
			if ((rc = ingest_apply_report(
				 d, t, r, v, now, batch)) != 0)
				return rc;
			ans->status = INDICATOR__ACK_STATUS__ACCEPTED;
			ans->stored = true;
			ans->observations = r->n_observations;
			snprintf(ans->message, sizeof(ans->message),
			    "file stored: 1 part, %zu observations",
			    r->n_observations);
			d->count.files_stored++;
			return 0;
		}
		d->count.files_open++;
		ans->status = INDICATOR__ACK_STATUS__STAGED;
		ans->reports = 0;
		snprintf(ans->message, sizeof(ans->message),
		    "part 1 of %u staged", r->parts);
		return stage_part(t, r, &st, now);
	}
	if (!open) {
		answer_reject(ans, v, invalid, "file_unknown",
		    "part %u of %u: the daemon holds no earlier part of this "
		    "file (never sent, or discarded); nothing of the file is "
		    "stored; send the whole file again",
		    r->part, r->parts);
		return 0;
	}
	if (st.rejected != 0) {
		answer_reject(ans, v, invalid, "file_rejected",
		    "part %u of %u: the file was refused at part %u; nothing "
		    "of it is stored",
		    r->part, r->parts, st.rejected);
		if (r->part == r->parts)
			return stage_end(d, t, r->agent_id, r->epoch);
		st.received = r->part;
		st.last_ms = now;
		return store_stage_put(t, r->agent_id, r->epoch, &st);
	}
	if (invalid) {
		answer_reject(ans, v, true, NULL,
		    "part %u of %u is invalid; nothing of the file is stored",
		    r->part, r->parts);
		ans->reports = 1 + st.received;
		d->count.files_rejected++;
		/* The staged parts go; the file stays known as refused. */
		if ((rc = stage_end(d, t, r->agent_id, r->epoch)) != 0 ||
		    r->part == r->parts)
			return rc;
		st.received = r->part;
		st.rejected = r->part;
		st.last_ms = now;
		st.bytes = 0;
		d->count.files_open++;
		return store_stage_put(t, r->agent_id, r->epoch, &st);
	}
	if (r->part < r->parts &&
	    st.bytes + indicator__report__get_packed_size(r) >
		FILETX_BYTES_MAX) {
		answer_reject(ans, v, false, "file_too_large",
		    "part %u of %u: the file's parts exceed %llu MiB; nothing "
		    "of it is stored; send it as smaller files",
		    r->part, r->parts,
		    (unsigned long long)(FILETX_BYTES_MAX >> 20));
		ans->reports = 1 + st.received;
		d->count.files_rejected++;
		if ((rc = stage_end(d, t, r->agent_id, r->epoch)) != 0)
			return rc;
		st.received = r->part;
		st.rejected = r->part;
		st.last_ms = now;
		st.bytes = 0;
		d->count.files_open++;
		return store_stage_put(t, r->agent_id, r->epoch, &st);
	}
	if (r->part < r->parts) {
		ans->status = INDICATOR__ACK_STATUS__STAGED;
		ans->reports = 0;
		snprintf(ans->message, sizeof(ans->message),
		    "part %u of %u staged", r->part, r->parts);
		return stage_part(t, r, &st, now);
	}
	return file_complete(d, t, r, v, &st, now, batch, ans);
}

/* filetx_expire()'s scan: the expired files, and how many are open. */
struct expiry {
	int64_t now;
	uint64_t open;
	struct {
		char agent_id[IND_AGENT_ID_MAX + 1];
		uint64_t epoch;
	} * old;
	size_t nold;
	size_t cap;
};

static int
expire_one(const char *agent_id, uint64_t epoch, const struct store_stage *st,
    void *arg)
{
	struct expiry *e = arg;

	if (e->now - st->last_ms <= FILETX_TTL_MS) {
		e->open++;
		return 0;
	}
	if (e->nold == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 16;
		e->old = xrealloc(e->old, e->cap * sizeof(*e->old));
	}
	strlcpy_ok(e->old[e->nold].agent_id, agent_id,
	    sizeof(e->old[e->nold].agent_id));
	e->old[e->nold].epoch = epoch;
	e->nold++;
	return 0;
}

int
filetx_expire(struct daemon *d)
{
	struct expiry e = { 0 };
	struct store_txn *t;
	struct timespec ts;
	int rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	e.now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if ((t = store_txn_begin(d->store, true)) == NULL)
		return -1;
	rc = store_stage_scan(t, expire_one, &e);
	for (size_t i = 0; i < e.nold && rc == 0; i++)
		rc = store_stage_del(t, e.old[i].agent_id, e.old[i].epoch);
	if (rc == 0 && e.nold == 0)
		store_txn_abort(&t);
	else if (rc == 0)
		rc = store_txn_commit(&t);
	else
		store_txn_abort(&t);
	if (rc != 0) {
		log_error("filetx: cannot expire the files left open");
		free(e.old);
		return -1;
	}
	for (size_t i = 0; i < e.nold; i++)
		log_warn("filetx: agent %s epoch %llu: file abandoned: no part "
			 "for %lld days",
		    e.old[i].agent_id, (unsigned long long)e.old[i].epoch,
		    FILETX_TTL_MS / (24LL * 3600 * 1000));
	d->count.files_abandoned += e.nold;
	d->count.files_open = e.open;
	free(e.old);
	return 0;
}
