/*
 * indicator-baseline: what the raw parts do on this machine, measured in
 * the same run as the daemon (../shared/BASELINES.md did it once, by hand).
 *
 *   indicator-baseline [--quick]      the raw parts, one line each, then
 *                                     the limit they compose for the
 *                                     workload
 *   indicator-baseline --fill DIR N   writes N observations into the store
 *                                     in DIR, to measure the daemon at a
 *                                     given store size
 *
 * The parts: (a) ZeroMQ DEALER->ROUTER round trips of 460-byte messages
 * with 1000 in flight over tcp loopback, plain and CURVE, server and
 * client threads in this process; (b) protobuf-c pack and unpack+free of an
 * AgentMessage carrying an 8-observation Report (about 460 bytes); (c) LMDB
 * durable batched append: 1000 records of 460 bytes per commit, ascending
 * keys with MDB_APPEND, full sync, in a temporary directory. The limit is
 * min(transport, unpack on one core, LMDB), as BASELINES.md composes it: one
 * report is one message, one unpack and one appended record.
 *
 * This file includes lmdb.h although store/ is otherwise the only code that
 * does: it measures LMDB itself, not the store.
 */
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
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
#include "store.h"
#include "xmalloc.h"

#define BASELINE_MSG_BYTES 460
#define BASELINE_WINDOW 1000
#define BASELINE_ACK_BYTES 8
#define BASELINE_OBS 8
#define BASELINE_LMDB_BATCH 1000
#define BASELINE_LMDB_KEY 40
#define BASELINE_FILL_BATCH 10000
#define BASELINE_FILL_LAST_YEAR 2019 /* the load generator uses 2020.. */

struct baseline_zmq {
	void *ctx;
	bool curve;
	unsigned long count;
	char endpoint[256];
	char server_public[41], server_secret[41];
	int rc;
};

static double
baseline_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
baseline_cpu(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) == -1)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Binds the ROUTER on a free loopback port; the thread then serves it. */
static void *
baseline_server_bind(struct baseline_zmq *z)
{
	void *sock = zmq_socket(z->ctx, ZMQ_ROUTER);
	int one = 1, hwm = BASELINE_WINDOW * 4, linger = 0;
	size_t len = sizeof(z->endpoint);

	if (sock == NULL)
		return NULL;
	zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	if (z->curve &&
	    (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) == -1 ||
		zmq_setsockopt(
		    sock, ZMQ_CURVE_SECRETKEY, z->server_secret, 40) == -1))
		goto sock_close;
	if (zmq_bind(sock, "tcp://127.0.0.1:*") == -1 ||
	    zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, z->endpoint, &len) == -1)
		goto sock_close;
	return sock;
sock_close:
	fprintf(stderr, "baseline: bind: %s\n", zmq_strerror(errno));
	zmq_close(sock);
	return NULL;
}

/* The server thread: the bound ROUTER, answering every message with an
 * 8-byte ack, count times. */
struct baseline_serve {
	struct baseline_zmq *z;
	void *sock;
};

static void *
baseline_serve_main(void *arg)
{
	struct baseline_serve *s = arg;
	uint8_t id[256], body[BASELINE_MSG_BYTES], ack[BASELINE_ACK_BYTES];
	unsigned long n;

	memset(ack, 'a', sizeof(ack));
	for (n = 0; n < s->z->count; n++) {
		int idlen;

		if ((idlen = zmq_recv(s->sock, id, sizeof(id), 0)) == -1 ||
		    zmq_recv(s->sock, body, sizeof(body), 0) == -1 ||
		    zmq_send(s->sock, id, (size_t)idlen, ZMQ_SNDMORE) == -1 ||
		    zmq_send(s->sock, ack, sizeof(ack), 0) == -1)
			break;
	}
	if (n < s->z->count) {
		fprintf(stderr, "baseline: server: %s\n", zmq_strerror(errno));
		s->z->rc = -1;
	}
	return NULL;
}

/* The DEALER: keeps BASELINE_WINDOW messages in flight until count are
 * answered. Returns the seconds it took from the first send, or -1. */
static double
baseline_client(struct baseline_zmq *z)
{
	void *sock = zmq_socket(z->ctx, ZMQ_DEALER);
	char pub[41], sec[41];
	uint8_t body[BASELINE_MSG_BYTES], ack[64];
	int hwm = BASELINE_WINDOW * 4, linger = 0;
	unsigned long sent = 0, answered = 0;
	double t0 = 0, secs = -1;

	memset(body, 'r', sizeof(body));
	zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	if (z->curve &&
	    (zmq_curve_keypair(pub, sec) == -1 ||
		zmq_setsockopt(
		    sock, ZMQ_CURVE_SERVERKEY, z->server_public, 40) == -1 ||
		zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, 40) == -1 ||
		zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, 40) == -1))
		goto sock_close;
	if (zmq_connect(sock, z->endpoint) == -1)
		goto sock_close;
	/* One round trip first, so the handshake is not in the figure. */
	if (zmq_send(sock, body, sizeof(body), 0) == -1 ||
	    zmq_recv(sock, ack, sizeof(ack), 0) == -1)
		goto sock_close;
	answered = sent = 1;
	t0 = baseline_now();
	while (answered < z->count) {
		while (sent < z->count && sent - answered < BASELINE_WINDOW) {
			if (zmq_send(sock, body, sizeof(body), 0) == -1)
				goto sock_close;
			sent++;
		}
		if (zmq_recv(sock, ack, sizeof(ack), 0) == -1)
			goto sock_close;
		answered++;
	}
	secs = baseline_now() - t0;
sock_close:
	if (secs < 0)
		fprintf(stderr, "baseline: client: %s\n", zmq_strerror(errno));
	zmq_close(sock);
	return secs;
}

/* (a) windowed round trip; returns msg/s, or 0 on failure. */
static double
baseline_zmq_run(bool curve, unsigned long count)
{
	struct baseline_zmq z;
	struct baseline_serve s;
	pthread_t thread;
	double secs, cpu0, cpu, rate = 0;

	memset(&z, 0, sizeof(z));
	z.curve = curve;
	z.count = count;
	if ((z.ctx = zmq_ctx_new()) == NULL)
		return 0;
	if (curve && zmq_curve_keypair(z.server_public, z.server_secret) == -1)
		goto ctx_term;
	s.z = &z;
	if ((s.sock = baseline_server_bind(&z)) == NULL)
		goto ctx_term;
	if ((errno = pthread_create(&thread, NULL, baseline_serve_main, &s)) !=
	    0) {
		fprintf(
		    stderr, "baseline: pthread_create: %s\n", strerror(errno));
		goto sock_close;
	}
	cpu0 = baseline_cpu();
	secs = baseline_client(&z);
	cpu = baseline_cpu() - cpu0;
	if (secs <= 0)
		/* The server thread waits for messages that will not come. */
		exit(1);
	pthread_join(thread, NULL);
	if (z.rc == 0) {
		rate = (double)(count - 1) / secs;
		printf("baseline zmq transport=%s window=%d size=%d msgs=%lu "
		       "secs=%.2f msg/s=%.0f cpu_us/msg=%.2f\n",
		    curve ? "curve" : "plain", BASELINE_WINDOW,
		    BASELINE_MSG_BYTES, count, secs, rate,
		    cpu * 1e6 / (double)count);
		fflush(stdout);
	}
sock_close:
	zmq_close(s.sock);
ctx_term:
	zmq_ctx_term(z.ctx);
	return rate;
}

/* (b) pack and unpack+free of an 8-observation report; returns unpacks
 * per second on one core. */
static double
baseline_pb_run(unsigned long count)
{
	static const char *const industries[] = { "materials", "photonics",
		"metaverse", "hydrogen", "digifin", "cellgene", "aerospace",
		"quantum" };
	Indicator__Observation obs[BASELINE_OBS], *obsp[BASELINE_OBS];
	char periods[BASELINE_OBS][16];
	Indicator__Report report = INDICATOR__REPORT__INIT;
	Indicator__AgentMessage msg = INDICATOR__AGENT_MESSAGE__INIT;
	uint8_t buf[4096];
	size_t len = 0;
	double t0, pack_s, unpack_s;
	unsigned long sum = 0;

	for (unsigned k = 0; k < BASELINE_OBS; k++) {
		indicator__observation__init(&obs[k]);
		snprintf(periods[k], sizeof(periods[k]), "2023-%02u", k + 1);
		obs[k].industry = (char *)industries[k];
		obs[k].metric = (char *)"output_value";
		obs[k].period = periods[k];
		obs[k].value = 1234.56 + k;
		obs[k].unit = (char *)"CNY_100M";
		obs[k].status = INDICATOR__OBS_STATUS__PROVISIONAL;
		obsp[k] = &obs[k];
	}
	report.agent_id = (char *)"load-000";
	report.district = (char *)"320505";
	report.epoch = 0x1234567890abcdefULL;
	report.seq = 123456;
	report.sent_at_ms = 1764000000000LL;
	report.n_observations = BASELINE_OBS;
	report.observations = obsp;
	msg.body_case = INDICATOR__AGENT_MESSAGE__BODY_REPORT;
	msg.report = &report;

	t0 = baseline_now();
	for (unsigned long i = 0; i < count; i++) {
		report.seq = i;
		len = indicator__agent_message__pack(&msg, buf);
		sum += buf[len - 1];
	}
	pack_s = baseline_now() - t0;
	t0 = baseline_now();
	for (unsigned long i = 0; i < count; i++) {
		Indicator__AgentMessage *m =
		    indicator__agent_message__unpack(NULL, len, buf);

		if (m == NULL) {
			fprintf(stderr, "baseline: unpack failed\n");
			return 0;
		}
		sum += m->report->n_observations;
		indicator__agent_message__free_unpacked(m, NULL);
	}
	unpack_s = baseline_now() - t0;
	printf("baseline protobuf obs=%d size=%zu count=%lu pack_us=%.2f "
	       "unpack_us=%.2f unpack/s=%.0f check=%lu\n",
	    BASELINE_OBS, len, count, pack_s * 1e6 / (double)count,
	    unpack_s * 1e6 / (double)count, (double)count / unpack_s, sum % 10);
	fflush(stdout);
	return (double)count / unpack_s;
}

/* Removes the temporary environment: LMDB's two files and the directory. */
static void
baseline_rm(const char *dir)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	unlink(path);
	rmdir(dir);
}

/* (c) durable batched append; returns records/s, or 0 on failure. */
static double
baseline_lmdb_run(unsigned commits)
{
	char dir[] = "/tmp/indicator-baseline-XXXXXX";
	char key[BASELINE_LMDB_KEY + 1];
	uint8_t val[BASELINE_MSG_BYTES];
	MDB_env *env = NULL;
	MDB_dbi dbi;
	MDB_txn *txn;
	uint64_t seq = 0;
	double t0, secs, rate = 0;
	int rc;

	memset(val, 'v', sizeof(val));
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "baseline: mkdtemp: %s\n", strerror(errno));
		return 0;
	}
	if ((rc = mdb_env_create(&env)) != 0 ||
	    (rc = mdb_env_set_mapsize(env, 1ULL << 30)) != 0 ||
	    (rc = mdb_env_open(env, dir, 0, 0600)) != 0 ||
	    (rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0 ||
	    (rc = mdb_txn_commit(txn)) != 0)
		goto env_close;
	t0 = baseline_now();
	for (unsigned c = 0; c < commits; c++) {
		if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0)
			goto env_close;
		for (unsigned i = 0; i < BASELINE_LMDB_BATCH; i++) {
			MDB_val k = { BASELINE_LMDB_KEY, key };
			MDB_val v = { sizeof(val), val };

			snprintf(
			    key, sizeof(key), "agent-0042/%029" PRIu64, ++seq);
			if ((rc = mdb_put(txn, dbi, &k, &v, MDB_APPEND)) != 0) {
				mdb_txn_abort(txn);
				goto env_close;
			}
		}
		if ((rc = mdb_txn_commit(txn)) != 0)
			goto env_close;
	}
	secs = baseline_now() - t0;
	rate = (double)seq / secs;
	printf("baseline lmdb sync=full batch=%d value=%d records=%" PRIu64
	       " secs=%.2f records/s=%.0f commit_ms=%.2f\n",
	    BASELINE_LMDB_BATCH, BASELINE_MSG_BYTES, seq, secs, rate,
	    secs * 1000 / commits);
	fflush(stdout);
env_close:
	if (rc != 0)
		fprintf(stderr, "baseline: lmdb: %s\n", mdb_strerror(rc));
	if (env != NULL)
		mdb_env_close(env);
	baseline_rm(dir);
	return rate;
}

static double
baseline_min(double a, double b)
{
	return a < b ? a : b;
}

static int
baseline_all(bool quick)
{
	unsigned long scale = quick ? 4 : 1;
	double plain, curve, unpack, lmdb;

	if ((plain = baseline_zmq_run(false, 600000 / scale)) == 0 ||
	    (curve = baseline_zmq_run(true, 200000 / scale)) == 0 ||
	    (unpack = baseline_pb_run(500000 / scale)) == 0 ||
	    (lmdb = baseline_lmdb_run((unsigned)(300 / scale))) == 0)
		return 1;
	printf("baseline limit plain=%.0f curve=%.0f (reports/s: min of "
	       "transport %.0f / %.0f, unpack on one core %.0f, lmdb append "
	       "%.0f)\n",
	    baseline_min(plain, baseline_min(unpack, lmdb)),
	    baseline_min(curve, baseline_min(unpack, lmdb)), plain, curve,
	    unpack, lmdb);
	return 0;
}

/* One transaction of baseline_fill(): observations from .. to - 1. */
struct fill {
	const struct registry *reg;
	struct store_obs o;
	unsigned long from, to, perperiod, nperiods;
};

static int
fill_fn(struct store_txn *t, void *arg)
{
	struct fill *f = arg;
	const struct registry *reg = f->reg;
	struct store_obs *o = &f->o;
	int rc;

	for (unsigned long i = f->from; i < f->to; i++) {
		unsigned long k = i % f->perperiod;
		unsigned long p = (i / f->perperiod) % f->nperiods;
		const struct reg_metric *m = &reg->metrics[k % reg->nmetrics];

		k /= reg->nmetrics;
		snprintf(o->district, sizeof(o->district), "%s",
		    reg->districts[k / reg->nindustries].code);
		snprintf(o->industry, sizeof(o->industry), "%s",
		    reg->industries[k % reg->nindustries].code);
		snprintf(o->metric, sizeof(o->metric), "%s", m->code);
		snprintf(o->period, sizeof(o->period), "%04lu-%02lu",
		    BASELINE_FILL_LAST_YEAR - p / 12, 12 - p % 12);
		snprintf(o->unit, sizeof(o->unit), "%s", m->unit);
		snprintf(o->sent_unit, sizeof(o->sent_unit), "%s", m->unit);
		o->value = o->sent_value = (double)(i % 100);
		o->seq = i + 1;
		o->sent_at_ms = o->stored_at_ms = 1764000000000LL;
		if ((rc = store_obs_put(t, o, NULL, NULL)) != 0)
			return rc;
	}
	return 0;
}

/*
 * Writes n observations into the store in dir, 10,000 per transaction
 * (store_write(): grown as needed), unsynced (one sync at the end). Keys
 * cover every district, industry and metric of the registry, month by
 * month backwards from 2019-12, so they never meet the load generator's
 * 2020..2024; past the months a year range can hold they wrap and add
 * revisions.
 */
static int
baseline_fill(const char *dir, unsigned long n)
{
	struct store_opts so = { .dir = dir, .sync = STORE_SYNC_NONE };
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	struct fill f;
	struct store *s = NULL;
	char err[512];
	double t0 = baseline_now();
	int rc = 1;

	if (config_load(cfg, NULL, err, sizeof(err)) == -1) {
		fprintf(stderr, "baseline: %s\n", err);
		goto cfg_free;
	}
	memset(&f, 0, sizeof(f));
	f.reg = &cfg->reg;
	f.perperiod = f.reg->ndistricts * f.reg->nindustries * f.reg->nmetrics;
	f.nperiods = 12 * 1000;
	if ((s = store_open(&so, err, sizeof(err))) == NULL) {
		fprintf(stderr, "baseline: %s\n", err);
		goto cfg_free;
	}
	snprintf(f.o.agent_id, sizeof(f.o.agent_id), "fill");
	f.o.epoch = 1;
	f.o.status = INDICATOR__OBS_STATUS__FINAL;
	for (f.from = 0; f.from < n; f.from = f.to) {
		f.to = f.from + BASELINE_FILL_BATCH;
		if (f.to > n)
			f.to = n;
		if (store_write(s, STORE_TXN_BOTH, fill_fn, NULL, &f) != 0) {
			rc = 1;
			goto store_close;
		}
	}
	rc = 0;
	printf("baseline fill observations=%lu secs=%.1f obs/s=%.0f\n", n,
	    baseline_now() - t0, (double)n / (baseline_now() - t0));
store_close:
	/* The commits were unsynced: flush them before the daemon opens
	 * the store. */
	store_close(&s);
	if (rc == 0)
		sync();
cfg_free:
	free(cfg);
	return rc;
}

int
main(int argc, char **argv)
{
	char *end;
	unsigned long n;

	if (argc == 1)
		return baseline_all(false);
	if (argc == 2 && strcmp(argv[1], "--quick") == 0)
		return baseline_all(true);
	if (argc == 4 && strcmp(argv[1], "--fill") == 0) {
		errno = 0;
		n = strtoul(argv[3], &end, 10);
		if (errno == 0 && end != argv[3] && *end == '\0' && n > 0)
			return baseline_fill(argv[2], n);
	}
	fprintf(stderr,
	    "usage: indicator-baseline [--quick]\n"
	    "       indicator-baseline --fill DATA_DIR OBSERVATIONS\n");
	return 2;
}
