/*
 * The outbox to the daemon: a DEALER socket keeps up to `window` reports in
 * flight, in seq order, and each Ack decides a report's fate: removed
 * (ACCEPTED, DUPLICATE), moved to dead (REJECTED), or sent again later
 * (RETRY_LATER, or no answer within ack_timeout_ms). Resending is always
 * safe: the daemon answers a report it already has with DUPLICATE.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "agent.h"
#include "log.h"
#include "keys.h"
#include "indicator.pb-c.h"
#include "store.pb-c.h"
#include "xmalloc.h"

#define AGENT_BACKOFF_MIN_MS 100
#define AGENT_BACKOFF_MAX_MS 5000
/* Service mode: the resend timeout doubles up to this while no ack comes. */
#define AGENT_RESEND_MAX_MS 30000
/* Service mode: libzmq's reconnection interval, doubling up to the max. */
#define AGENT_RECONNECT_IVL_MS 100
#define AGENT_RECONNECT_MAX_MS 5000
/* The longest sleep, so a signal that hit another thread is seen soon. */
#define AGENT_POLL_MAX_MS 500

struct agent_flight {
	uint64_t seq;
	void *buf; /* the packed AgentMessage, as stored */
	size_t len;
	uint64_t due_ms; /* when to send it again */
	unsigned backoff_ms; /* RETRY_LATER backoff; 0 before the first */
	uint64_t send_no; /* f->sends when it was last sent */
	bool done; /* acknowledged; dropped at the end of the round */
	uint32_t part; /* a part of a file: part of parts; 0 0: alone */
	uint32_t parts;
};

struct agent_flush {
	struct agent *a;
	void *zctx;
	void *sock;

	/* In flight, in seq order. */
	struct agent_flight *fl;
	size_t nfl;
	size_t live; /* entries of fl not done */
	uint64_t next_from; /* the lowest seq not yet taken from the outbox */
	bool exhausted; /* the outbox has nothing pending past fl */
	uint64_t sends;

	/* Seqs acknowledged this round, removed from the outbox together. */
	uint64_t *done;
	size_t ndone;

	uint64_t last_ack_ms;
	uint64_t await_ms; /* when the flusher began to wait for an answer */
	bool waiting_said; /* the outage was logged */
	bool error; /* the outbox failed */

	/* Service mode. */
	void *mon; /* socket monitor: reconnections */
	unsigned resend_ms; /* the current resend timeout */
	uint64_t hb_due_ms; /* the next heartbeat */
	bool hb_out; /* a heartbeat not answered yet */
	uint64_t rand; /* xorshift state, for jitter */
};

/* ms give or take 20%, so that agents an outage stopped together do not
 * all come back at the same instant. */
static uint64_t
agent_jitter(struct agent_flush *f, unsigned ms)
{
	f->rand ^= f->rand << 13;
	f->rand ^= f->rand >> 7;
	f->rand ^= f->rand << 17;
	return (uint64_t)ms * (80 + f->rand % 41) / 100;
}

/* The wait for an answer to something sent now. */
static uint64_t
agent_flush_timeout(struct agent_flush *f)
{
	if (!f->a->service)
		return f->a->cfg.ack_timeout_ms;
	return agent_jitter(f, f->resend_ms);
}

/* Notes that an answer is now awaited, if none was. */
static void
agent_flush_await(struct agent_flush *f, uint64_t now)
{
	if (f->live == 0 && !f->hb_out)
		f->await_ms = now;
}

static void
agent_flight_send(struct agent_flush *f, struct agent_flight *fl, uint64_t now)
{
	if (zmq_send(f->sock, fl->buf, fl->len, ZMQ_DONTWAIT) == -1)
		/* Queue full or interrupted: the ack timeout resends it. */
		log_debug("agent: send of seq %" PRIu64 " failed: %s", fl->seq,
		    zmq_strerror(errno));
	fl->send_no = ++f->sends;
	fl->due_ms = now + agent_flush_timeout(f);
}

static struct agent_flight *
agent_flight_find(struct agent_flush *f, uint64_t seq)
{
	size_t lo = 0, hi = f->nfl;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->fl[mid].seq == seq)
			return f->fl[mid].done ? NULL : &f->fl[mid];
		if (f->fl[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Takes a pending report from the outbox and sends it (outbox_pending_fn). */
static int
agent_flight_add(uint64_t seq, const void *buf, size_t len, void *arg)
{
	struct agent_flush *f = arg;
	struct agent_flight *fl = &f->fl[f->nfl++];
	Indicator__AgentMessage *msg;

	memset(fl, 0, sizeof(*fl));
	fl->seq = seq;
	fl->len = len;
	fl->buf = xmalloc(len);
	memcpy(fl->buf, buf, len);
	agent_flush_await(f, agent_now_ms());
	f->live++;
	f->next_from = seq + 1;

	f->a->sent++;
	msg = indicator__agent_message__unpack(NULL, len, buf);
	if (msg != NULL &&
	    msg->body_case == INDICATOR__AGENT_MESSAGE__BODY_REPORT) {
		f->a->observations += msg->report->n_observations;
		if (msg->report->parts > 1 && msg->report->part >= 1 &&
		    msg->report->part <= msg->report->parts &&
		    msg->report->part <= seq) {
			fl->part = msg->report->part;
			fl->parts = msg->report->parts;
		}
	} else
		log_debug(
		    "agent: pending seq %" PRIu64 " does not decode", seq);
	indicator__agent_message__free_unpacked(msg, NULL);

	agent_flight_send(f, fl, agent_now_ms());
	return 0;
}

/* Tops the window up from the outbox. */
static int
agent_flush_fill(struct agent_flush *f)
{
	size_t room = f->a->cfg.window - f->live;
	size_t before = f->nfl;

	if (f->exhausted || room == 0)
		return 0;
	if (outbox_scan(f->a->ob, f->next_from, room, agent_flight_add, f) ==
	    -1)
		return -1;
	if (f->nfl - before < room)
		f->exhausted = true;
	return 0;
}

/* Drops the acknowledged flights and removes them from the outbox. */
static int
agent_flush_commit(struct agent_flush *f)
{
	size_t j = 0;
	int rc = 0;

	if (f->ndone > 0 && outbox_remove(f->a->ob, f->done, f->ndone) == -1)
		rc = -1;
	f->ndone = 0;
	for (size_t i = 0; i < f->nfl; i++) {
		if (f->fl[i].done) {
			free(f->fl[i].buf);
			continue;
		}
		f->fl[j++] = f->fl[i];
	}
	f->nfl = j;
	return rc;
}

/* Whether fl is a part of a file other than its last. */
static bool
agent_flight_held(const struct agent_flight *fl)
{
	return fl->parts > 1 && fl->part < fl->parts;
}

/*
 * The last part of fl's file was answered (fl is it): the earlier parts,
 * kept pending while the daemon held them (so that their sources could
 * place its errors), go, with any still in flight. Before the last part
 * leaves the outbox: a crash in between resends the last part, whose
 * answer is the same again.
 */
static void
agent_flush_file_end(
    struct agent_flush *f, const struct agent_flight *fl, bool stored)
{
	uint64_t first = fl->seq - fl->part + 1;

	if (fl->parts <= 1)
		return;
	if (outbox_remove_pending(f->a->ob, first, fl->seq - 1) == -1)
		f->error = true;
	for (size_t i = 0; i < f->nfl; i++) {
		struct agent_flight *o = &f->fl[i];

		/* Its answer lost: stored or refused with the file. */
		if (o->seq >= first && o->seq < fl->seq && !o->done) {
			o->done = true;
			f->live--;
			if (stored)
				f->a->accepted++;
			else
				f->a->rejected++;
		}
	}
}

/* The file of report seq (its last part, or a report alone) is stored:
 * a file of the drop directory moves to done/. */
static void
agent_flush_stored(struct agent_flush *f, uint64_t seq)
{
	Indicator__Store__ReportSource *src;
	void *buf = NULL;
	size_t len = 0;

	if (f->a->drop == NULL || outbox_source(f->a->ob, seq, &buf, &len) != 0)
		return;
	src = indicator__store__report_source__unpack(NULL, len, buf);
	free(buf);
	if (src == NULL)
		return;
	if (src->mark[0] != '\0')
		agent_drop_stored(f->a->drop, src->file, src->mark);
	indicator__store__report_source__free_unpacked(src, NULL);
}

static void
agent_flush_rejected(struct agent_flush *f, struct agent_flight *fl,
    const void *ack, size_t ack_len, bool quiet)
{
	struct agent_lines lines = { 0 };
	char *file = NULL, *mark = NULL;
	void *src = NULL;
	size_t src_len = 0;

	/* Told and moved first, while every part's source is here: a crash
	 * before the kill resends, and the same answer comes again. */
	if (outbox_source(f->a->ob, fl->seq, &src, &src_len) == -1)
		f->error = true;
	agent_rejection(f->a, f->a->ob, fl->seq, fl->buf, fl->len, ack, ack_len,
	    src, src_len, &lines, &file, &mark);
	free(src);
	/* The later parts of a file refused earlier add nothing the clerk
	 * needs: the log's debug lines only. */
	for (size_t i = 0; i < lines.n; i++)
		if (quiet)
			log_debug("agent: %s", lines.v[i]);
		else
			log_error("agent: %s", lines.v[i]);
	/* A file of the drop directory goes to rejected/ with the reasons,
	 * as one the parser refused does. */
	if (f->a->drop != NULL && file != NULL && mark != NULL &&
	    mark[0] != '\0' && !quiet)
		agent_drop_rejected(f->a->drop, file, mark, &lines);
	agent_lines_free(&lines);
	free(file);
	free(mark);
	if (fl->parts > 1 && fl->part == fl->parts)
		agent_flush_file_end(f, fl, false);
	if (outbox_kill(f->a->ob, fl->seq, ack, ack_len) == -1)
		f->error = true;
	/* The parts the daemon held for the file are refused with it. */
	f->a->rejected += 1 + f->a->staged;
	f->a->staged = 0;
	f->a->failed = true;
}

static void
agent_flush_retry(struct agent_flush *f, struct agent_flight *fl,
    const Indicator__Ack *ack, uint64_t now)
{
	struct agent_flight *lost;

	fl->backoff_ms =
	    fl->backoff_ms == 0 ? AGENT_BACKOFF_MIN_MS : fl->backoff_ms * 2;
	if (fl->backoff_ms > AGENT_BACKOFF_MAX_MS)
		fl->backoff_ms = AGENT_BACKOFF_MAX_MS;
	fl->due_ms = now + fl->backoff_ms;
	log_debug("agent: seq %" PRIu64 ": retry later (expected %" PRIu64
		  "), in %u ms",
	    fl->seq, ack->expected_seq, fl->backoff_ms);

	/*
	 * The daemon waits for an earlier report: if we sent that one before
	 * this one, it was lost on the way (DEALER keeps order), so send it
	 * again now rather than at its ack timeout. One resend covers every
	 * later report that gets the same answer.
	 */
	if (ack->expected_seq != 0 && ack->expected_seq < fl->seq &&
	    (lost = agent_flight_find(f, ack->expected_seq)) != NULL &&
	    lost->send_no < fl->send_no) {
		log_debug("agent: resending seq %" PRIu64 ", lost", lost->seq);
		agent_flight_send(f, lost, now);
	}
}

static void
agent_flush_ack(struct agent_flush *f, const void *data, size_t len)
{
	Indicator__Ack *ack;
	struct agent_flight *fl;
	uint64_t now = agent_now_ms();

	if ((ack = indicator__ack__unpack(NULL, len, data)) == NULL) {
		log_debug(
		    "agent: ignored a frame of %zu bytes: not an Ack", len);
		return;
	}
	f->last_ack_ms = now;
	f->a->last_ack_wall_ms = agent_wall_ms();
	f->a->reachable = true;
	if (f->a->service) {
		f->resend_ms = f->a->cfg.ack_timeout_ms;
		if (f->waiting_said)
			log_info("agent: daemon back");
		f->waiting_said = false;
	}
	if (ack->seq == 0) {
		/* A heartbeat's answer: where the daemon stands. */
		f->hb_out = false;
		log_debug("agent: heartbeat: status %d, the daemon expects seq "
			  "%" PRIu64,
		    (int)ack->status, ack->expected_seq);
		goto ack_free;
	}
	if ((fl = agent_flight_find(f, ack->seq)) == NULL) {
		log_debug("agent: ignored an ack for seq %" PRIu64
			  " (status %d): not in flight",
		    ack->seq, (int)ack->status);
		goto ack_free;
	}
	switch (ack->status) {
	case INDICATOR__ACK_STATUS__STAGED:
	case INDICATOR__ACK_STATUS__ACCEPTED:
	case INDICATOR__ACK_STATUS__DUPLICATE:
		if (agent_flight_held(fl)) {
			/* Held by the daemon until the file's last part;
			 * pending here until then. */
			if (ack->status == INDICATOR__ACK_STATUS__DUPLICATE)
				f->a->duplicate++;
			else
				f->a->staged++;
			break;
		}
		if (ack->status == INDICATOR__ACK_STATUS__STAGED) {
			log_debug("agent: ignored STAGED for seq %" PRIu64
				  ": not a held part of a file",
			    ack->seq);
			goto ack_free;
		}
		/* A report alone, or a file's last part: the file is
		 * stored whole. */
		if (ack->status == INDICATOR__ACK_STATUS__ACCEPTED) {
			f->a->accepted += 1 + f->a->staged;
		} else {
			/* The parts staged in this run were stored with it. */
			f->a->accepted += f->a->staged;
			f->a->duplicate++;
		}
		f->a->staged = 0;
		agent_flush_stored(f, fl->seq);
		agent_flush_file_end(f, fl, true);
		f->done[f->ndone++] = fl->seq;
		break;
	case INDICATOR__ACK_STATUS__REJECTED:
		agent_flush_rejected(f, fl, data, len,
		    fl->parts > 1 && ack->n_errors == 0 &&
			strcmp(ack->code, "file_rejected") == 0);
		break;
	case INDICATOR__ACK_STATUS__RETRY_LATER:
		agent_flush_retry(f, fl, ack, now);
		goto ack_free;
	default:
		log_debug("agent: ignored an ack for seq %" PRIu64
			  " with status %d",
		    ack->seq, (int)ack->status);
		goto ack_free;
	}
	fl->done = true;
	f->live--;
ack_free:
	indicator__ack__free_unpacked(ack, NULL);
}

/* Reads every frame waiting on the socket. */
static void
agent_flush_recv(struct agent_flush *f)
{
	zmq_msg_t msg;

	for (;;) {
		bool more;

		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, f->sock, ZMQ_DONTWAIT) == -1) {
			zmq_msg_close(&msg);
			return;
		}
		more = zmq_msg_more(&msg);
		if (!more) {
			agent_flush_ack(
			    f, zmq_msg_data(&msg), zmq_msg_size(&msg));
		} else {
			log_debug("agent: ignored a multi-frame message");
			while (more) {
				zmq_msg_close(&msg);
				zmq_msg_init(&msg);
				if (zmq_msg_recv(&msg, f->sock, 0) == -1)
					break;
				more = zmq_msg_more(&msg);
			}
		}
		zmq_msg_close(&msg);
	}
}

/* Service mode: no answer came in time, so wait twice as long next time. */
static void
agent_flush_backoff(struct agent_flush *f)
{
	if (f->resend_ms >= AGENT_RESEND_MAX_MS)
		return;
	f->resend_ms = f->resend_ms * 2 < AGENT_RESEND_MAX_MS
			   ? f->resend_ms * 2
			   : AGENT_RESEND_MAX_MS;
	log_debug("agent: no answer: resend timeout now %u ms", f->resend_ms);
}

static void
agent_flush_heartbeat(struct agent_flush *f, uint64_t now)
{
	Indicator__AgentMessage msg = INDICATOR__AGENT_MESSAGE__INIT;
	Indicator__Heartbeat hb = INDICATOR__HEARTBEAT__INIT;
	uint8_t buf[128 + IND_AGENT_ID_MAX];
	size_t len;

	hb.agent_id = f->a->cfg.id;
	hb.epoch = outbox_epoch(f->a->ob);
	hb.sent_at_ms = agent_wall_ms();
	msg.body_case = INDICATOR__AGENT_MESSAGE__BODY_HEARTBEAT;
	msg.heartbeat = &hb;
	len = indicator__agent_message__pack(&msg, buf);
	if (zmq_send(f->sock, buf, len, ZMQ_DONTWAIT) == -1)
		log_debug(
		    "agent: heartbeat send failed: %s", zmq_strerror(errno));
	else
		log_debug("agent: heartbeat sent");
	f->hb_due_ms = now + f->a->cfg.heartbeat_ms;
	if (f->hb_out) {
		/* The last one is unanswered: back off as for reports, so
		 * that an outage does not pile heartbeats up in the queue. */
		agent_flush_backoff(f);
		if (f->resend_ms > f->a->cfg.heartbeat_ms)
			f->hb_due_ms = now + agent_jitter(f, f->resend_ms);
	}
	agent_flush_await(f, now);
	f->hb_out = true;
}

/* Logs once that no answer came for ack_timeout_ms; returns how long until
 * that would be. */
static uint64_t
agent_flush_outage(struct agent_flush *f, uint64_t now, uint64_t wait)
{
	uint64_t since, quiet, pending = 0, dead, next_seq;

	if (f->waiting_said || (f->live == 0 && !f->hb_out))
		return wait;
	since = f->last_ack_ms > f->await_ms ? f->last_ack_ms : f->await_ms;
	quiet = now - since;
	if (quiet < f->a->cfg.ack_timeout_ms)
		return f->a->cfg.ack_timeout_ms - quiet < wait
			   ? f->a->cfg.ack_timeout_ms - quiet
			   : wait;
	if (!f->a->service) {
		log_warn("agent: waiting for daemon at %s", f->a->cfg.endpoint);
	} else {
		outbox_counts(f->a->ob, &pending, &dead, &next_seq);
		log_warn("agent: daemon unreachable at %s, %" PRIu64 " pending",
		    f->a->cfg.endpoint, pending);
	}
	f->waiting_said = true;
	f->a->reachable = false;
	return wait;
}

/* Resends what is due and sends a heartbeat when one is; returns how long
 * until the next timer. */
static uint64_t
agent_flush_timers(struct agent_flush *f, uint64_t now)
{
	uint64_t wait = AGENT_POLL_MAX_MS;
	bool expired = false;

	for (size_t i = 0; i < f->nfl; i++) {
		struct agent_flight *fl = &f->fl[i];

		if (fl->done)
			continue;
		if (fl->due_ms <= now) {
			log_debug("agent: resending seq %" PRIu64, fl->seq);
			agent_flight_send(f, fl, now);
			expired = true;
		}
		if (fl->due_ms - now < wait)
			wait = fl->due_ms - now;
	}
	/* One doubling per round however many timed out together. */
	if (expired && f->a->service)
		agent_flush_backoff(f);
	if (f->a->service && f->a->cfg.heartbeat_ms != 0 && f->live == 0 &&
	    f->exhausted) {
		if (f->hb_due_ms <= now)
			agent_flush_heartbeat(f, now);
		if (f->hb_due_ms - now < wait)
			wait = f->hb_due_ms - now;
	} else if (f->live > 0) {
		/* Busy: the next heartbeat is due heartbeat_ms after it. */
		f->hb_due_ms = now + f->a->cfg.heartbeat_ms;
	}
	return agent_flush_outage(f, now, wait);
}

/* Service mode: a monitor on the DEALER, to hear of reconnections. */
static int
agent_flush_monitor(struct agent_flush *f)
{
	char ep[64];

	snprintf(ep, sizeof(ep), "inproc://agent-monitor-%p", (void *)f);
	if (zmq_socket_monitor(f->sock, ep,
		ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) == -1 ||
	    (f->mon = zmq_socket(f->zctx, ZMQ_PAIR)) == NULL ||
	    zmq_connect(f->mon, ep) == -1) {
		log_error("agent: zmq monitor: %s", zmq_strerror(errno));
		return -1;
	}
	return 0;
}

/* With server_key set: a CURVE client with this agent's key pair. The
 * daemon binds the key to one agent_id and district (README, Security). */
static int
agent_flush_curve(struct agent_flush *f)
{
	const struct agent_config *c = &f->a->cfg;
	struct key_client k;
	char err[512];

	if (keys_client_load(c->server_key, c->public_key_file,
		c->secret_key_file, &k, err, sizeof(err)) == -1) {
		log_error("agent: %s", err);
		return -1;
	}
	zmq_setsockopt(f->sock, ZMQ_CURVE_SERVERKEY, k.server, KEY_Z85_LEN);
	zmq_setsockopt(f->sock, ZMQ_CURVE_PUBLICKEY, k.public_key, KEY_Z85_LEN);
	zmq_setsockopt(f->sock, ZMQ_CURVE_SECRETKEY, k.secret_key, KEY_Z85_LEN);
	explicit_bzero(&k, sizeof(k));
	return 0;
}

static int
agent_flush_connect(struct agent_flush *f)
{
	const struct agent_config *c = &f->a->cfg;
	int linger = 0, immediate = 0;
	int ivl = AGENT_RECONNECT_IVL_MS, ivl_max = AGENT_RECONNECT_MAX_MS;
	int hwm = c->window * 2 > 1000 ? (int)c->window * 2 : 1000;
	sigset_t block, old;

	/* libzmq's threads inherit this mask, so signals reach main. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	f->zctx = zmq_ctx_new();
	if (f->zctx != NULL)
		f->sock = zmq_socket(f->zctx, ZMQ_DEALER);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (f->sock == NULL) {
		log_error("agent: zmq: %s", zmq_strerror(errno));
		return -1;
	}
	zmq_setsockopt(f->sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(f->sock, ZMQ_IMMEDIATE, &immediate, sizeof(immediate));
	zmq_setsockopt(f->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(f->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	if (f->a->service) {
		/* libzmq waits ivl, then twice as long each time, up to
		 * ivl_max, with its own jitter. */
		zmq_setsockopt(f->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl));
		zmq_setsockopt(
		    f->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof(ivl_max));
		if (agent_flush_monitor(f) == -1)
			return -1;
	}
	if (c->server_key[0] != '\0' && agent_flush_curve(f) == -1)
		return -1;
	if (zmq_connect(f->sock, c->endpoint) == -1) {
		log_error("agent: %s: %s", c->endpoint, zmq_strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Reads the monitor's events. On a connection, what is in flight may have
 * been lost with the old one: resend it within ack_timeout_ms rather than
 * at its backed-off time.
 */
static void
agent_flush_events(struct agent_flush *f, uint64_t now)
{
	zmq_msg_t msg;

	for (;;) {
		uint16_t event = 0;

		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, f->mon, ZMQ_DONTWAIT) == -1) {
			zmq_msg_close(&msg);
			return;
		}
		if (zmq_msg_size(&msg) >= sizeof(event))
			memcpy(&event, zmq_msg_data(&msg), sizeof(event));
		while (zmq_msg_more(&msg) &&
		       zmq_msg_recv(&msg, f->mon, ZMQ_DONTWAIT) != -1)
			;
		zmq_msg_close(&msg);
		if (event == ZMQ_EVENT_DISCONNECTED) {
			log_debug(
			    "agent: disconnected from %s", f->a->cfg.endpoint);
			continue;
		}
		if (event != ZMQ_EVENT_CONNECTED)
			continue;
		log_debug("agent: connected to %s", f->a->cfg.endpoint);
		f->resend_ms = f->a->cfg.ack_timeout_ms;
		for (size_t i = 0; i < f->nfl; i++)
			if (!f->fl[i].done &&
			    f->fl[i].due_ms > now + f->resend_ms)
				f->fl[i].due_ms = now + f->resend_ms;
		if (f->hb_out && f->hb_due_ms > now + f->resend_ms)
			f->hb_due_ms = now + f->resend_ms;
	}
}

static void
agent_flush_pending_note(struct agent_flush *f, const char *why)
{
	uint64_t pending = 0, dead, next_seq;

	if (outbox_counts(f->a->ob, &pending, &dead, &next_seq) == 0)
		log_warn("agent: %s: %" PRIu64
			 " reports left pending in the outbox",
		    why, pending);
}

struct agent_flush *
agent_flush_new(struct agent *a)
{
	struct agent_flush *f = xcalloc(1, sizeof(*f));

	f->a = a;
	f->fl = xcalloc(a->cfg.window, sizeof(*f->fl));
	f->done = xcalloc(a->cfg.window, sizeof(*f->done));
	f->last_ack_ms = agent_now_ms();
	f->resend_ms = a->cfg.ack_timeout_ms;
	f->hb_due_ms = f->last_ack_ms;
	f->rand = (uint64_t)agent_wall_ms() ^ (uint64_t)getpid() << 32;
	if (f->rand == 0)
		f->rand = 1;
	if (agent_flush_connect(f) == -1) {
		agent_flush_destroy(&f);
		return NULL;
	}
	return f;
}

void
agent_flush_destroy(struct agent_flush **fp)
{
	struct agent_flush *f;

	if (fp == NULL || (f = *fp) == NULL)
		return;
	if (f->ndone > 0)
		agent_flush_commit(f);
	if (f->mon != NULL)
		zmq_close(f->mon);
	if (f->sock != NULL)
		zmq_close(f->sock);
	if (f->zctx != NULL)
		zmq_ctx_term(f->zctx);
	for (size_t i = 0; i < f->nfl; i++)
		free(f->fl[i].buf);
	free(f->fl);
	free(f->done);
	free(f);
	*fp = NULL;
}

void
agent_flush_more(struct agent_flush *f)
{
	f->exhausted = false;
}

bool
agent_flush_idle(const struct agent_flush *f)
{
	return f->exhausted && f->live == 0;
}

int
agent_flush_step(
    struct agent_flush *f, uint64_t max_wait_ms, int fd, bool *fd_ready)
{
	zmq_pollitem_t items[3] = {
		{ f->sock, 0, ZMQ_POLLIN, 0 },
		{ NULL, fd, ZMQ_POLLIN, 0 },
		{ f->mon, 0, ZMQ_POLLIN, 0 },
	};
	int nitems = 1, fd_item = -1, mon_item = -1;
	uint64_t now, wait;

	if (fd_ready != NULL)
		*fd_ready = false;
	if (fd != -1)
		fd_item = nitems++;
	if (f->mon != NULL) {
		items[nitems] = items[2];
		mon_item = nitems++;
	}
	if (agent_flush_fill(f) == -1)
		return -1;
	now = agent_now_ms();
	wait = agent_flush_timers(f, now);
	if (max_wait_ms < wait)
		wait = max_wait_ms;
	if (zmq_poll(items, nitems, (long)wait) == -1) {
		if (errno == EINTR)
			return 0;
		log_error("agent: zmq_poll: %s", zmq_strerror(errno));
		return -1;
	}
	if (mon_item != -1 && (items[mon_item].revents & ZMQ_POLLIN))
		agent_flush_events(f, agent_now_ms());
	if (items[0].revents & ZMQ_POLLIN)
		agent_flush_recv(f);
	if (fd_item != -1 && fd_ready != NULL)
		*fd_ready = (items[fd_item].revents & ZMQ_POLLIN) != 0;
	if (agent_flush_commit(f) == -1 || f->error)
		return -1;
	return 0;
}

int
agent_flush(struct agent *a)
{
	struct agent_flush *f;
	uint64_t deadline = 0, now, wait;
	int rc;

	if (a->timeout_s != 0)
		deadline = a->start_ms + (uint64_t)a->timeout_s * 1000;
	if ((f = agent_flush_new(a)) == NULL)
		return AGENT_EXIT_FAIL;
	for (;;) {
		if (agent_stop) {
			agent_flush_pending_note(f, "stopped");
			rc = AGENT_EXIT_PENDING;
			break;
		}
		if (agent_flush_fill(f) == -1) {
			rc = AGENT_EXIT_FAIL;
			break;
		}
		if (agent_flush_idle(f)) {
			rc = AGENT_EXIT_OK;
			break;
		}
		now = agent_now_ms();
		if (deadline != 0 && now >= deadline) {
			agent_flush_pending_note(f, "timeout");
			rc = AGENT_EXIT_PENDING;
			break;
		}
		wait = deadline != 0 ? deadline - now : AGENT_POLL_MAX_MS;
		if (agent_flush_step(f, wait, -1, NULL) == -1) {
			rc = AGENT_EXIT_FAIL;
			break;
		}
	}
	if (f->ndone > 0 && agent_flush_commit(f) == -1)
		rc = AGENT_EXIT_FAIL;
	agent_flush_destroy(&f);
	return rc;
}
