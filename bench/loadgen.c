/*
 * indicator-loadgen: N simulated district agents against one indicatord.
 *
 * Each agent is a thread with its own DEALER socket, agent_id, epoch and
 * (unless --no-outbox) its own durable outbox, used the way the real agent
 * uses it: reports are enqueued before they are sent, read back from the
 * outbox to be sent, and removed once ACCEPTED or DUPLICATE, one durable
 * transaction per round of acks. With --no-outbox the reports are built in
 * memory, to measure the daemon alone.
 *
 * Every agent keeps --window reports in flight; --rate paces the total
 * evenly over the agents. The ack latency of a report runs from its first
 * send to its final answer. One summary line goes to stdout at the end; the
 * exit status is nonzero when a report was rejected or left unacknowledged.
 *
 * With --curve SERVER_KEY every agent connects with CURVE, using the key
 * pair DIR/load-NNN.pub and .key of --keys-dir DIR. --write-keys DIR makes
 * those pairs for --agents agents, a server pair (server.key, server.pub)
 * and the daemon's authorised_agents file binding each load-NNN to the
 * district it reports for, then exits.
 */
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "config.h"
#include "indicator.pb-c.h"
#include "keys.h"
#include "outbox.h"
#include "xmalloc.h"

#define LOADGEN_HIST_SUB 64 /* latency buckets per power of two */
#define LOADGEN_HIST_N (LOADGEN_HIST_SUB * 40)
#define LOADGEN_ACK_TIMEOUT_NS (5 * 1000000000LL)
#define LOADGEN_BACKOFF_MIN_NS (100 * 1000000LL)
#define LOADGEN_BACKOFF_MAX_NS (5000 * 1000000LL)
#define LOADGEN_HELLO_MS 10000 /* how long to wait for the daemon */
#define LOADGEN_POLL_MAX_MS 100
#define LOADGEN_REJECT_SHOWN 5 /* rejections printed per agent */
#define LOADGEN_FIRST_YEAR 2020
#define LOADGEN_YEARS 5 /* 2020 .. 2024: 60 months and 5 years */

struct loadgen_opts {
	const char *endpoint;
	unsigned agents;
	unsigned reports; /* per agent */
	unsigned obs; /* per report */
	unsigned window;
	unsigned chunk; /* reports enqueued per outbox transaction */
	const char *outbox_dir; /* NULL: --no-outbox */
	double rate; /* total reports/s; 0: as fast as acks allow */
	unsigned districts;
	uint64_t seed;
	unsigned timeout_s;
	int io_threads;
	const char *curve; /* the server's public key (Z85 or a file) */
	const char *keys_dir; /* load-NNN.pub and .key for each agent */
	const char *write_keys; /* make keys there and exit */
};

/* Latency histogram: microseconds, about 1.5% resolution. */
struct loadgen_hist {
	uint64_t count[LOADGEN_HIST_N];
	uint64_t n;
	int64_t max_ns;
};

struct loadgen;

/* A report in flight. */
struct loadgen_flight {
	uint64_t seq;
	void *buf; /* packed AgentMessage */
	size_t len;
	int64_t first_ns; /* first send, for the latency */
	int64_t due_ns; /* resend then */
	int64_t backoff_ns;
	uint64_t send_no;
	bool done;
};

struct loadgen_agent {
	struct loadgen *lg;
	unsigned index;
	pthread_t thread;
	char id[IND_AGENT_ID_MAX + 1];
	const char *district;
	uint64_t epoch;
	uint64_t base_seq; /* seq of report 0 */
	struct outbox *ob;
	struct key_client keys; /* with --curve */
	void *sock;
	uint64_t rng;
	unsigned cursor; /* next observation key */

	unsigned enqueued; /* reports in the outbox (or built) so far */
	unsigned sent; /* reports sent at least once */
	unsigned answered; /* reports with a final answer */
	struct loadgen_flight *fl; /* in flight, in seq order */
	size_t nfl;
	size_t live;
	uint64_t *done; /* seqs to remove from the outbox this round */
	size_t ndone;
	uint64_t sends;
	unsigned long send_failures;

	struct loadgen_hist hist;
	unsigned long accepted, duplicate, rejected, retry, resent;
	bool failed; /* could not run, or the outbox failed */
};

struct loadgen {
	struct loadgen_opts opt;
	struct config cfg;
	void *zctx;
	pthread_barrier_t ready;
	int64_t t0_ns; /* set by agent 0 after the barrier */
	int64_t interval_ns; /* per agent, with --rate */
	unsigned nkeys; /* industries x metrics x periods */
	struct loadgen_agent *agents;
};

static int64_t
loadgen_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t
loadgen_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* splitmix64: small, seedable, good enough for test data. */
static uint64_t
loadgen_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static size_t
loadgen_hist_index(int64_t ns)
{
	uint64_t us = ns > 0 ? (uint64_t)ns / 1000 : 0;
	unsigned msb, shift;
	size_t i;

	if (us < 2 * LOADGEN_HIST_SUB)
		return (size_t)us;
	msb = 63 - (unsigned)__builtin_clzll(us);
	shift = msb - 6;
	i = (size_t)shift * LOADGEN_HIST_SUB + (size_t)(us >> shift);
	return i < LOADGEN_HIST_N ? i : LOADGEN_HIST_N - 1;
}

/* The middle of bucket i, in microseconds. */
static double
loadgen_hist_value(size_t i)
{
	unsigned shift;
	uint64_t lo;

	if (i < 2 * LOADGEN_HIST_SUB)
		return (double)i + 0.5;
	shift = (unsigned)(i / LOADGEN_HIST_SUB) - 1;
	lo = (uint64_t)(i - (size_t)shift * LOADGEN_HIST_SUB) << shift;
	return (double)lo + (double)(1ULL << shift) / 2;
}

static void
loadgen_hist_add(struct loadgen_hist *h, int64_t ns)
{
	h->count[loadgen_hist_index(ns)]++;
	h->n++;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

static void
loadgen_hist_merge(struct loadgen_hist *into, const struct loadgen_hist *h)
{
	for (size_t i = 0; i < LOADGEN_HIST_N; i++)
		into->count[i] += h->count[i];
	into->n += h->n;
	if (h->max_ns > into->max_ns)
		into->max_ns = h->max_ns;
}

/* The q-quantile in milliseconds; 0 for an empty histogram. */
static double
loadgen_hist_quantile(const struct loadgen_hist *h, double q)
{
	uint64_t want, seen = 0;
	size_t i;

	if (h->n == 0)
		return 0;
	want = (uint64_t)ceil(q * (double)h->n);
	if (want == 0)
		want = 1;
	for (i = 0; i < LOADGEN_HIST_N - 1; i++) {
		seen += h->count[i];
		if (seen >= want)
			break;
	}
	/* The middle of the last bucket can lie past the largest sample. */
	return fmin(loadgen_hist_value(i) / 1000, (double)h->max_ns / 1e6);
}

/*
 * The packed AgentMessage for report k of agent a: obs observations over
 * consecutive keys of (industry, metric, period), values valid for the
 * metric, canonical units. Caller frees *buf.
 */
static void
loadgen_build(struct loadgen_agent *a, uint64_t seq, void **buf, size_t *len)
{
	const struct loadgen *lg = a->lg;
	const struct registry *reg = &lg->cfg.reg;
	unsigned n = lg->opt.obs, nperiods = LOADGEN_YEARS * 13;
	Indicator__Observation *obs = xcalloc(n, sizeof(*obs));
	Indicator__Observation **obsp = xcalloc(n, sizeof(*obsp));
	char(*periods)[IND_PERIOD_MAX + 1] = xcalloc(n, sizeof(*periods));
	Indicator__Report report = INDICATOR__REPORT__INIT;
	Indicator__AgentMessage msg = INDICATOR__AGENT_MESSAGE__INIT;

	for (unsigned k = 0; k < n; k++) {
		unsigned key = (a->cursor + k) % lg->nkeys;
		unsigned p = key % nperiods, rest = key / nperiods;
		const struct reg_metric *m =
		    &reg->metrics[rest % reg->nmetrics];
		const struct reg_industry *ind =
		    &reg->industries[rest / reg->nmetrics];
		uint64_t r = loadgen_rand(&a->rng);

		indicator__observation__init(&obs[k]);
		/* Each year: its twelve months, then the year itself. */
		if (p % 13 == 12)
			snprintf(periods[k], sizeof(periods[k]), "%u",
			    LOADGEN_FIRST_YEAR + p / 13);
		else
			snprintf(periods[k], sizeof(periods[k]), "%u-%02u",
			    LOADGEN_FIRST_YEAR + p / 13, p % 13 + 1);
		obs[k].industry = (char *)ind->code;
		obs[k].metric = (char *)m->code;
		obs[k].period = periods[k];
		if (m->integer)
			obs[k].value = (double)(r % 200);
		else
			obs[k].value = (double)(r % 50000) / 100;
		if (obs[k].value > m->max)
			obs[k].value = m->max;
		obs[k].unit = (char *)m->unit;
		obs[k].status = INDICATOR__OBS_STATUS__PROVISIONAL;
		obsp[k] = &obs[k];
	}
	a->cursor = (a->cursor + n) % lg->nkeys;
	report.agent_id = a->id;
	report.district = (char *)a->district;
	report.epoch = a->epoch;
	report.seq = seq;
	report.sent_at_ms = loadgen_wall_ms();
	report.n_observations = n;
	report.observations = obsp;
	msg.body_case = INDICATOR__AGENT_MESSAGE__BODY_REPORT;
	msg.report = &report;

	*len = indicator__agent_message__get_packed_size(&msg);
	*buf = xmalloc(*len);
	indicator__agent_message__pack(&msg, *buf);
	free(periods);
	free(obsp);
	free(obs);
}

/* outbox_build_fn */
static int
loadgen_build_outbox(
    uint64_t epoch, uint64_t seq, size_t i, void **buf, size_t *len, void *arg)
{
	struct loadgen_agent *a = arg;

	(void)epoch;
	(void)i;
	loadgen_build(a, seq, buf, len);
	return 0;
}

static void
loadgen_send(struct loadgen_agent *a, struct loadgen_flight *f, int64_t now)
{
	/* Queue full or no peer: the ack timeout sends it again. Said once,
	 * so a daemon that went away does not flood the terminal. */
	if (zmq_send(a->sock, f->buf, f->len, ZMQ_DONTWAIT) == -1 &&
	    a->send_failures++ == 0)
		fprintf(stderr,
		    "loadgen: %s: send of seq %" PRIu64 ": %s (said once)\n",
		    a->id, f->seq, zmq_strerror(errno));
	f->send_no = ++a->sends;
	f->due_ns = now + LOADGEN_ACK_TIMEOUT_NS;
}

/* Takes a report into the window and sends it. */
static void
loadgen_flight_add(
    struct loadgen_agent *a, uint64_t seq, void *buf, size_t len, int64_t now)
{
	struct loadgen_flight *f = &a->fl[a->nfl++];

	memset(f, 0, sizeof(*f));
	f->seq = seq;
	f->buf = buf;
	f->len = len;
	f->first_ns = now;
	a->live++;
	a->sent++;
	loadgen_send(a, f, now);
}

/* outbox_pending_fn: the report as stored goes out, as in the agent. */
static int
loadgen_take_pending(uint64_t seq, const void *buf, size_t len, void *arg)
{
	struct loadgen_agent *a = arg;
	void *copy = xmalloc(len);

	memcpy(copy, buf, len);
	loadgen_flight_add(a, seq, copy, len, loadgen_now_ns());
	return 0;
}

static struct loadgen_flight *
loadgen_flight_find(struct loadgen_agent *a, uint64_t seq)
{
	size_t lo = 0, hi = a->nfl;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a->fl[mid].seq == seq)
			return a->fl[mid].done ? NULL : &a->fl[mid];
		if (a->fl[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* How many more reports the window and the pace allow now. */
static unsigned
loadgen_room(const struct loadgen_agent *a, int64_t now)
{
	const struct loadgen *lg = a->lg;
	unsigned room = lg->opt.window - (unsigned)a->live;
	unsigned left = lg->opt.reports - a->sent;

	if (left < room)
		room = left;
	if (lg->interval_ns > 0 && room > 0) {
		/* Agents are staggered across one interval. */
		int64_t off = lg->interval_ns * a->index / lg->opt.agents;
		int64_t t = now - lg->t0_ns - off;
		int64_t due = t < 0 ? 0 : t / lg->interval_ns + 1;

		if (due > lg->opt.reports)
			due = lg->opt.reports;
		room = due <= a->sent ? 0
		       : (unsigned)due - a->sent < room
			   ? (unsigned)due - a->sent
			   : room;
	}
	return room;
}

/* Tops the window up: from the outbox, enqueueing the next chunk first
 * when it holds nothing unsent; or built in memory. */
static int
loadgen_fill(struct loadgen_agent *a, int64_t now)
{
	const struct loadgen_opts *o = &a->lg->opt;
	unsigned room = loadgen_room(a, now);

	if (room == 0)
		return 0;
	if (a->ob == NULL) {
		for (unsigned i = 0; i < room; i++) {
			void *buf;
			size_t len;
			uint64_t seq = a->base_seq + a->sent;

			loadgen_build(a, seq, &buf, &len);
			a->enqueued++;
			loadgen_flight_add(a, seq, buf, len, loadgen_now_ns());
		}
		return 0;
	}
	if (a->enqueued == a->sent) {
		unsigned n = o->reports - a->enqueued;

		if (n > o->chunk)
			n = o->chunk;
		if (outbox_enqueue(a->ob, n, loadgen_build_outbox, a) == -1)
			return -1;
		a->enqueued += n;
	}
	if (room > a->enqueued - a->sent)
		room = a->enqueued - a->sent;
	return outbox_scan(
	    a->ob, a->base_seq + a->sent, room, loadgen_take_pending, a);
}

static void
loadgen_show_rejection(struct loadgen_agent *a, const Indicator__Ack *ack)
{
	if (a->rejected > LOADGEN_REJECT_SHOWN)
		return;
	fprintf(stderr, "loadgen: %s: seq %" PRIu64 " REJECTED: %s%s%s", a->id,
	    ack->seq, ack->code, ack->code[0] ? ": " : "", ack->message);
	if (ack->n_errors > 0)
		fprintf(stderr, " (obs %" PRIu32 ": %s: %s)",
		    ack->errors[0]->index, ack->errors[0]->code,
		    ack->errors[0]->message);
	fputc('\n', stderr);
}

static void
loadgen_retry(struct loadgen_agent *a, struct loadgen_flight *f,
    const Indicator__Ack *ack, int64_t now)
{
	struct loadgen_flight *lost;

	f->backoff_ns =
	    f->backoff_ns == 0 ? LOADGEN_BACKOFF_MIN_NS : f->backoff_ns * 2;
	if (f->backoff_ns > LOADGEN_BACKOFF_MAX_NS)
		f->backoff_ns = LOADGEN_BACKOFF_MAX_NS;
	f->due_ns = now + f->backoff_ns;
	/* An earlier report sent before this one was lost on the way. */
	if (ack->expected_seq != 0 && ack->expected_seq < f->seq &&
	    (lost = loadgen_flight_find(a, ack->expected_seq)) != NULL &&
	    lost->send_no < f->send_no) {
		loadgen_send(a, lost, now);
		a->resent++;
	}
}

static void
loadgen_ack(struct loadgen_agent *a, const void *data, size_t len)
{
	Indicator__Ack *ack;
	struct loadgen_flight *f;
	int64_t now = loadgen_now_ns();

	if ((ack = indicator__ack__unpack(NULL, len, data)) == NULL) {
		fprintf(
		    stderr, "loadgen: %s: a reply that is not an Ack\n", a->id);
		return;
	}
	if (ack->seq == 0 || (f = loadgen_flight_find(a, ack->seq)) == NULL)
		goto ack_free; /* a heartbeat's, or a late second answer */
	switch (ack->status) {
	case INDICATOR__ACK_STATUS__ACCEPTED:
		a->accepted++;
		a->done[a->ndone++] = f->seq;
		break;
	case INDICATOR__ACK_STATUS__DUPLICATE:
		a->duplicate++;
		a->done[a->ndone++] = f->seq;
		break;
	case INDICATOR__ACK_STATUS__REJECTED:
		a->rejected++;
		loadgen_show_rejection(a, ack);
		if (a->ob != NULL &&
		    outbox_kill(a->ob, f->seq, data, len) == -1)
			a->failed = true;
		break;
	case INDICATOR__ACK_STATUS__RETRY_LATER:
		a->retry++;
		loadgen_retry(a, f, ack, now);
		goto ack_free;
	default:
		goto ack_free;
	}
	loadgen_hist_add(&a->hist, now - f->first_ns);
	f->done = true;
	a->live--;
	a->answered++;
ack_free:
	indicator__ack__free_unpacked(ack, NULL);
}

/* Reads every reply waiting on the socket. */
static void
loadgen_recv(struct loadgen_agent *a)
{
	zmq_msg_t msg;

	for (;;) {
		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, a->sock, ZMQ_DONTWAIT) == -1) {
			zmq_msg_close(&msg);
			return;
		}
		loadgen_ack(a, zmq_msg_data(&msg), zmq_msg_size(&msg));
		zmq_msg_close(&msg);
	}
}

/* Removes this round's acknowledged reports from the outbox and the
 * window. */
static int
loadgen_commit(struct loadgen_agent *a)
{
	size_t j = 0;
	int rc = 0;

	if (a->ob != NULL && a->ndone > 0 &&
	    outbox_remove(a->ob, a->done, a->ndone) == -1)
		rc = -1;
	a->ndone = 0;
	for (size_t i = 0; i < a->nfl; i++) {
		if (a->fl[i].done) {
			free(a->fl[i].buf);
			continue;
		}
		a->fl[j++] = a->fl[i];
	}
	a->nfl = j;
	return rc;
}

/* Resends what is overdue; returns the milliseconds until the next timer
 * or paced send. */
static long
loadgen_timers(struct loadgen_agent *a, int64_t now)
{
	const struct loadgen *lg = a->lg;
	int64_t wait = LOADGEN_POLL_MAX_MS * 1000000LL;

	for (size_t i = 0; i < a->nfl; i++) {
		struct loadgen_flight *f = &a->fl[i];

		if (f->done)
			continue;
		if (f->due_ns <= now) {
			loadgen_send(a, f, now);
			a->resent++;
		}
		if (f->due_ns - now < wait)
			wait = f->due_ns - now;
	}
	if (lg->interval_ns > 0 && a->sent < lg->opt.reports &&
	    a->live < lg->opt.window) {
		int64_t off = lg->interval_ns * a->index / lg->opt.agents;
		int64_t next = lg->t0_ns + off + lg->interval_ns * a->sent;

		if (next - now < wait)
			wait = next - now;
	}
	if (wait <= 0)
		return 0;
	/* Round up, so a paced send is not missed by a hair. */
	return (long)((wait + 999999) / 1000000);
}

/* Sends a heartbeat and waits for its answer, so the measured run starts
 * with the connection up. */
static int
loadgen_hello(struct loadgen_agent *a)
{
	Indicator__Heartbeat hb = INDICATOR__HEARTBEAT__INIT;
	Indicator__AgentMessage msg = INDICATOR__AGENT_MESSAGE__INIT;
	zmq_pollitem_t item = { a->sock, 0, ZMQ_POLLIN, 0 };
	uint8_t buf[256];
	size_t len;
	zmq_msg_t reply;
	int rc;

	hb.agent_id = a->id;
	hb.epoch = a->epoch;
	hb.sent_at_ms = loadgen_wall_ms();
	msg.body_case = INDICATOR__AGENT_MESSAGE__BODY_HEARTBEAT;
	msg.heartbeat = &hb;
	len = indicator__agent_message__pack(&msg, buf);
	if (zmq_send(a->sock, buf, len, 0) == -1)
		return -1;
	do
		rc = zmq_poll(&item, 1, LOADGEN_HELLO_MS);
	while (rc == -1 && errno == EINTR);
	if (rc <= 0) {
		fprintf(stderr, "loadgen: %s: no answer from %s in %d ms\n",
		    a->id, a->lg->opt.endpoint, LOADGEN_HELLO_MS);
		return -1;
	}
	zmq_msg_init(&reply);
	rc = zmq_msg_recv(&reply, a->sock, 0);
	zmq_msg_close(&reply);
	return rc == -1 ? -1 : 0;
}

/* Opens the agent's outbox (or draws an epoch) and its socket. */
static int
loadgen_agent_open(struct loadgen_agent *a)
{
	const struct loadgen_opts *o = &a->lg->opt;
	int linger = 0;
	int hwm = o->window * 2 > 1000 ? (int)o->window * 2 : 1000;
	char dir[CONFIG_PATH_MAX], err[256];
	uint64_t pending, dead;

	if (o->outbox_dir != NULL) {
		snprintf(
		    dir, sizeof(dir), "%s/agent-%03u", o->outbox_dir, a->index);
		if ((a->ob = outbox_open(dir, err, sizeof(err))) == NULL) {
			fprintf(stderr, "loadgen: %s: %s\n", a->id, err);
			return -1;
		}
		if (outbox_counts(a->ob, &pending, &dead, &a->base_seq) == -1)
			return -1;
		if (pending > 0) {
			fprintf(stderr,
			    "loadgen: %s: %s holds %" PRIu64
			    " pending reports; use an empty directory\n",
			    a->id, dir, pending);
			return -1;
		}
		a->epoch = outbox_epoch(a->ob);
	} else {
		while (a->epoch == 0)
			if (getrandom(&a->epoch, sizeof(a->epoch), 0) !=
			    sizeof(a->epoch))
				a->epoch = loadgen_rand(&a->rng);
		a->base_seq = 1;
	}
	if ((a->sock = zmq_socket(a->lg->zctx, ZMQ_DEALER)) == NULL) {
		fprintf(stderr, "loadgen: %s: zmq_socket: %s\n", a->id,
		    zmq_strerror(errno));
		return -1;
	}
	zmq_setsockopt(a->sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(a->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(a->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	if (o->curve != NULL &&
	    (zmq_setsockopt(a->sock, ZMQ_CURVE_SERVERKEY, a->keys.server,
		 KEY_Z85_LEN) == -1 ||
		zmq_setsockopt(a->sock, ZMQ_CURVE_PUBLICKEY, a->keys.public_key,
		    KEY_Z85_LEN) == -1 ||
		zmq_setsockopt(a->sock, ZMQ_CURVE_SECRETKEY, a->keys.secret_key,
		    KEY_Z85_LEN) == -1)) {
		fprintf(stderr, "loadgen: %s: CURVE: %s\n", a->id,
		    zmq_strerror(errno));
		return -1;
	}
	if (zmq_connect(a->sock, o->endpoint) == -1) {
		fprintf(stderr, "loadgen: %s: %s\n", o->endpoint,
		    zmq_strerror(errno));
		return -1;
	}
	return loadgen_hello(a);
}

static void
loadgen_agent_run(struct loadgen_agent *a)
{
	const struct loadgen *lg = a->lg;
	zmq_pollitem_t item = { a->sock, 0, ZMQ_POLLIN, 0 };
	int64_t deadline =
	    lg->t0_ns + (int64_t)lg->opt.timeout_s * 1000000000LL;

	while (a->answered < lg->opt.reports) {
		int64_t now = loadgen_now_ns();
		long wait;

		if (now >= deadline) {
			fprintf(stderr,
			    "loadgen: %s: timeout with %u reports "
			    "unanswered\n",
			    a->id, lg->opt.reports - a->answered);
			return;
		}
		if (loadgen_fill(a, now) == -1) {
			a->failed = true;
			return;
		}
		wait = loadgen_timers(a, loadgen_now_ns());
		if (zmq_poll(&item, 1, wait) == -1 && errno != EINTR) {
			fprintf(stderr, "loadgen: %s: zmq_poll: %s\n", a->id,
			    zmq_strerror(errno));
			a->failed = true;
			return;
		}
		if (item.revents & ZMQ_POLLIN)
			loadgen_recv(a);
		if (loadgen_commit(a) == -1 || a->failed) {
			a->failed = true;
			return;
		}
	}
}

static void *
loadgen_agent_main(void *arg)
{
	struct loadgen_agent *a = arg;
	int rc;

	if (loadgen_agent_open(a) == -1)
		a->failed = true;
	rc = pthread_barrier_wait(&a->lg->ready);
	if (rc == PTHREAD_BARRIER_SERIAL_THREAD)
		a->lg->t0_ns = loadgen_now_ns();
	/* t0 is set by one thread; the second barrier publishes it. */
	pthread_barrier_wait(&a->lg->ready);
	if (!a->failed)
		loadgen_agent_run(a);
	loadgen_commit(a);
	return NULL;
}

/* VmHWM of this process in KiB, or 0. */
static unsigned long
loadgen_hwm_kib(void)
{
	FILE *fp = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long kib = 0;

	if (fp == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "VmHWM: %lu kB", &kib) == 1)
			break;
	fclose(fp);
	return kib;
}

/* Writes a new file (mode given) holding text; -1 with a message. */
static int
loadgen_write_file(const char *path, const char *text, mode_t mode)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	if (fd == -1 || write(fd, text, len) != (ssize_t)len) {
		fprintf(stderr, "loadgen: %s: %s\n", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	return close(fd);
}

/* Writes a key pair as DIR/NAME.pub and DIR/NAME.key; the public key
 * goes to pub. */
static int
loadgen_write_pair(const char *dir, const char *name, char *pub)
{
	char sec[KEY_Z85_LEN + 1], path[CONFIG_PATH_MAX], text[128];
	int rc;

	if (zmq_curve_keypair(pub, sec) == -1) {
		fprintf(stderr, "loadgen: zmq_curve_keypair: %s\n",
		    zmq_strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s.key", dir, name);
	snprintf(
	    text, sizeof(text), "# CURVE secret key of %s\n%s\n", name, sec);
	rc = loadgen_write_file(path, text, 0600);
	explicit_bzero(sec, sizeof(sec));
	explicit_bzero(text, sizeof(text));
	if (rc == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/%s.pub", dir, name);
	snprintf(
	    text, sizeof(text), "# CURVE public key of %s\n%s\n", name, pub);
	return loadgen_write_file(path, text, 0644);
}

/* --write-keys: a server pair, one pair per agent, and authorised_agents
 * binding each agent to the district it reports for. */
static int
loadgen_write_keys(const struct loadgen *lg)
{
	const struct loadgen_opts *o = &lg->opt;
	const struct registry *reg = &lg->cfg.reg;
	char pub[KEY_Z85_LEN + 1], name[IND_AGENT_ID_MAX + 1];
	char path[CONFIG_PATH_MAX];
	size_t cap = (size_t)o->agents * 128 + 128, len = 0;
	char *table = xmalloc(cap);
	int rc = -1;

	if (mkdir(o->write_keys, 0700) == -1 && errno != EEXIST) {
		fprintf(stderr, "loadgen: %s: %s\n", o->write_keys,
		    strerror(errno));
		goto table_free;
	}
	if (loadgen_write_pair(o->write_keys, "server", pub) == -1)
		goto table_free;
	len += (size_t)snprintf(table + len, cap - len,
	    "# indicator-loadgen --write-keys: agent key, agent_id, "
	    "district\n");
	for (unsigned i = 0; i < o->agents; i++) {
		snprintf(name, sizeof(name), "load-%03u", i);
		if (loadgen_write_pair(o->write_keys, name, pub) == -1)
			goto table_free;
		len += (size_t)snprintf(table + len, cap - len, "%s %s %s\n",
		    pub, name, reg->districts[i % o->districts].code);
	}
	snprintf(path, sizeof(path), "%s/authorised_agents", o->write_keys);
	rc = loadgen_write_file(path, table, 0644);
table_free:
	free(table);
	return rc;
}

/* --curve: every agent's keys, loaded before any thread starts. */
static int
loadgen_load_keys(struct loadgen *lg)
{
	const struct loadgen_opts *o = &lg->opt;
	char pubf[CONFIG_PATH_MAX], secf[CONFIG_PATH_MAX], err[512];

	for (unsigned i = 0; i < o->agents; i++) {
		struct loadgen_agent *a = &lg->agents[i];

		snprintf(pubf, sizeof(pubf), "%s/%s.pub", o->keys_dir, a->id);
		snprintf(secf, sizeof(secf), "%s/%s.key", o->keys_dir, a->id);
		if (keys_client_load(o->curve, pubf, secf, &a->keys, err,
			sizeof(err)) == -1) {
			fprintf(stderr, "loadgen: %s: %s\n", a->id, err);
			return -1;
		}
	}
	return 0;
}

static void
loadgen_usage(void)
{
	fprintf(stderr,
	    "usage: indicator-loadgen [--endpoint EP] [--agents N] "
	    "[--reports M] [--obs K]\n"
	    "           [--window W] [--outbox-dir DIR | --no-outbox] "
	    "[--chunk C] [--rate R]\n"
	    "           [--districts D] [--seed S] [--timeout SECONDS] "
	    "[--io-threads T]\n"
	    "           [--curve SERVER_KEY --keys-dir DIR] "
	    "[--write-keys DIR]\n"
	    "M is per agent; R is reports/s over all agents; C is reports "
	    "enqueued per\noutbox transaction (default: the window). "
	    "--write-keys makes the keys for --curve\nand the daemon's "
	    "authorised_agents, then exits.\n");
	exit(2);
}

static unsigned
loadgen_uint(const char *name, const char *s, unsigned lo, unsigned hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "loadgen: --%s: want %u..%u, got \"%s\"\n",
		    name, lo, hi, s);
		exit(2);
	}
	return (unsigned)v;
}

static void
loadgen_parse(struct loadgen_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "agents", required_argument, NULL, 'n' },
		{ "reports", required_argument, NULL, 'm' },
		{ "obs", required_argument, NULL, 'k' },
		{ "window", required_argument, NULL, 'w' },
		{ "outbox-dir", required_argument, NULL, 'o' },
		{ "no-outbox", no_argument, NULL, 'N' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "rate", required_argument, NULL, 'r' },
		{ "districts", required_argument, NULL, 'd' },
		{ "seed", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "io-threads", required_argument, NULL, 'i' },
		{ "curve", required_argument, NULL, 'C' },
		{ "keys-dir", required_argument, NULL, 'K' },
		{ "write-keys", required_argument, NULL, 'W' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool no_outbox = false;
	char *end;
	int ch;

	memset(o, 0, sizeof(*o));
	o->endpoint = "tcp://127.0.0.1:7401";
	o->agents = 10;
	o->reports = 10000;
	o->obs = 8;
	o->window = 100;
	o->seed = 1;
	o->timeout_s = 300;
	o->io_threads = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'e':
			o->endpoint = optarg;
			break;
		case 'n':
			o->agents = loadgen_uint("agents", optarg, 1, 1000);
			break;
		case 'm':
			o->reports =
			    loadgen_uint("reports", optarg, 1, 100000000);
			break;
		case 'k':
			o->obs = loadgen_uint("obs", optarg, 1, 1000);
			break;
		case 'w':
			o->window = loadgen_uint("window", optarg, 1, 100000);
			break;
		case 'o':
			o->outbox_dir = optarg;
			break;
		case 'N':
			no_outbox = true;
			break;
		case 'c':
			o->chunk = loadgen_uint("chunk", optarg, 1, 1000000);
			break;
		case 'r':
			o->rate = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || !(o->rate >= 0)) {
				fprintf(stderr, "loadgen: --rate: \"%s\"\n",
				    optarg);
				exit(2);
			}
			break;
		case 'd':
			o->districts =
			    loadgen_uint("districts", optarg, 1, 1000);
			break;
		case 's':
			o->seed = strtoull(optarg, &end, 10);
			if (end == optarg || *end != '\0')
				loadgen_usage();
			break;
		case 't':
			o->timeout_s =
			    loadgen_uint("timeout", optarg, 1, 86400);
			break;
		case 'i':
			o->io_threads =
			    (int)loadgen_uint("io-threads", optarg, 1, 64);
			break;
		case 'C':
			o->curve = optarg;
			break;
		case 'K':
			o->keys_dir = optarg;
			break;
		case 'W':
			o->write_keys = optarg;
			break;
		default:
			loadgen_usage();
		}
	}
	if (optind != argc)
		loadgen_usage();
	if (o->write_keys != NULL)
		return;
	if ((o->curve == NULL) != (o->keys_dir == NULL)) {
		fprintf(
		    stderr, "loadgen: --curve and --keys-dir go together\n");
		exit(2);
	}
	if (no_outbox == (o->outbox_dir != NULL)) {
		fprintf(stderr,
		    "loadgen: give exactly one of --outbox-dir DIR and "
		    "--no-outbox\n");
		exit(2);
	}
	if (o->chunk == 0)
		o->chunk = o->window;
}

/* Sums the agents, prints the summary line; returns the exit status. */
static int
loadgen_report(struct loadgen *lg, int64_t elapsed_ns)
{
	const struct loadgen_opts *o = &lg->opt;
	struct loadgen_hist *h = xcalloc(1, sizeof(*h));
	unsigned long accepted = 0, duplicate = 0, rejected = 0, retry = 0;
	unsigned long resent = 0, answered = 0;
	uint64_t total = (uint64_t)o->agents * o->reports;
	double secs = (double)elapsed_ns / 1e9;
	double hwm_mib = (double)loadgen_hwm_kib() / 1024;
	struct rusage ru;
	double cpu_s = 0;
	bool failed = false;

	for (unsigned i = 0; i < o->agents; i++) {
		struct loadgen_agent *a = &lg->agents[i];

		loadgen_hist_merge(h, &a->hist);
		accepted += a->accepted;
		duplicate += a->duplicate;
		rejected += a->rejected;
		retry += a->retry;
		resent += a->resent;
		answered += a->answered;
		failed |= a->failed;
	}
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cpu_s = (double)ru.ru_utime.tv_sec +
			(double)ru.ru_utime.tv_usec / 1e6 +
			(double)ru.ru_stime.tv_sec +
			(double)ru.ru_stime.tv_usec / 1e6;
	printf("loadgen agents=%u reports=%" PRIu64
	       " obs=%u window=%u outbox=%s rate=%.0f elapsed=%.2fs "
	       "reports/s=%.0f obs/s=%.0f ack_ms p50=%.1f p99=%.1f "
	       "max=%.1f agent_rss_mib=%.1f accepted=%lu duplicate=%lu "
	       "rejected=%lu retry=%lu resent=%lu unanswered=%" PRIu64
	       " loadgen_hwm_mib=%.1f loadgen_cpu_us=%.2f\n",
	    o->agents, total, o->obs, o->window,
	    o->outbox_dir != NULL ? "yes" : "no", o->rate, secs,
	    (double)answered / secs, (double)answered * o->obs / secs,
	    loadgen_hist_quantile(h, 0.50), loadgen_hist_quantile(h, 0.99),
	    (double)h->max_ns / 1e6, hwm_mib / o->agents, accepted, duplicate,
	    rejected, retry, resent, total - answered, hwm_mib,
	    answered ? cpu_s * 1e6 / (double)answered : 0);
	fflush(stdout);
	free(h);
	return (failed || rejected > 0 || answered < total) ? 1 : 0;
}

int
main(int argc, char **argv)
{
	struct loadgen *lg = xcalloc(1, sizeof(*lg));
	struct loadgen_opts *o = &lg->opt;
	const struct registry *reg;
	char err[512];
	int64_t end_ns;
	unsigned started = 0;
	int rc = 1;

	loadgen_parse(o, argc, argv);
	if (config_load(&lg->cfg, NULL, err, sizeof(err)) == -1) {
		fprintf(stderr, "loadgen: %s\n", err);
		goto lg_free;
	}
	reg = &lg->cfg.reg;
	if (o->districts == 0)
		o->districts = (unsigned)reg->ndistricts;
	if (o->districts > reg->ndistricts) {
		fprintf(stderr, "loadgen: --districts: the registry has %zu\n",
		    reg->ndistricts);
		goto lg_free;
	}
	lg->nkeys =
	    (unsigned)(reg->nindustries * reg->nmetrics) * LOADGEN_YEARS * 13;
	if (o->obs > lg->nkeys) {
		fprintf(stderr,
		    "loadgen: --obs: at most %u distinct keys per report\n",
		    lg->nkeys);
		goto lg_free;
	}
	if (o->write_keys != NULL) {
		rc = loadgen_write_keys(lg) == -1 ? 1 : 0;
		goto lg_free;
	}
	if (o->rate > 0)
		lg->interval_ns = (int64_t)(1e9 * o->agents / o->rate);
	if (o->outbox_dir != NULL && mkdir(o->outbox_dir, 0700) == -1 &&
	    errno != EEXIST) {
		fprintf(stderr, "loadgen: %s: %s\n", o->outbox_dir,
		    strerror(errno));
		goto lg_free;
	}
	if ((lg->zctx = zmq_ctx_new()) == NULL ||
	    zmq_ctx_set(lg->zctx, ZMQ_IO_THREADS, o->io_threads) == -1 ||
	    zmq_ctx_set(lg->zctx, ZMQ_MAX_SOCKETS, (int)o->agents + 16) == -1) {
		fprintf(stderr, "loadgen: zmq: %s\n", zmq_strerror(errno));
		goto zctx_term;
	}
	pthread_barrier_init(&lg->ready, NULL, o->agents);
	lg->agents = xcalloc(o->agents, sizeof(*lg->agents));
	for (unsigned i = 0; i < o->agents; i++) {
		struct loadgen_agent *a = &lg->agents[i];

		a->lg = lg;
		a->index = i;
		snprintf(a->id, sizeof(a->id), "load-%03u", i);
		a->district = reg->districts[i % o->districts].code;
		a->rng = o->seed * 0x100000001b3ULL + i;
		a->cursor = (unsigned)(loadgen_rand(&a->rng) % lg->nkeys);
		a->fl = xcalloc(o->window, sizeof(*a->fl));
		a->done = xcalloc(o->window, sizeof(*a->done));
	}
	if (o->curve != NULL && loadgen_load_keys(lg) == -1)
		exit(1);
	for (started = 0; started < o->agents; started++) {
		struct loadgen_agent *a = &lg->agents[started];

		if ((errno = pthread_create(
			 &a->thread, NULL, loadgen_agent_main, a)) != 0) {
			fprintf(stderr, "loadgen: pthread_create: %s\n",
			    strerror(errno));
			/* The barrier counts on every agent: cannot go on. */
			exit(1);
		}
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(lg->agents[i].thread, NULL);
	end_ns = loadgen_now_ns();
	rc = loadgen_report(lg, end_ns - lg->t0_ns);

	for (unsigned i = 0; i < o->agents; i++) {
		struct loadgen_agent *a = &lg->agents[i];

		if (a->sock != NULL)
			zmq_close(a->sock);
		outbox_close(&a->ob);
		for (size_t j = 0; j < a->nfl; j++)
			free(a->fl[j].buf);
		free(a->fl);
		free(a->done);
	}
	free(lg->agents);
	pthread_barrier_destroy(&lg->ready);
zctx_term:
	if (lg->zctx != NULL)
		zmq_ctx_term(lg->zctx);
lg_free:
	free(lg);
	return rc;
}
