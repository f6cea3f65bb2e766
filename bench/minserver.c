/*
 * indicator-minserver: the minimal durable server, the limit indicatord is
 * measured against (issue 14, "Benchmarks"): a ZeroMQ ROUTER that takes
 * each report, appends it to LMDB as one record, commits every report
 * received meanwhile in one transaction (group commit) with a full fsync,
 * and only then acks each with ACCEPTED. No validation, no exactly-once
 * bookkeeping, no aggregates: what any durable ingest must at least do.
 * The load generator (indicator-loadgen) drives it exactly as it drives
 * indicatord.
 *
 *   indicator-minserver [--curve SECRET_KEY_FILE] ENDPOINT DIR
 *
 * DIR must exist (the LMDB environment is made in it). A heartbeat is
 * answered at once (seq 0). On SIGTERM or SIGINT it prints one line,
 *   minserver reports=N commits=N batch_avg=R commit_ms_avg=T
 *   commit_ms_max=T
 * and exits 0. Not a test; bench/run.sh runs it.
 *
 * This file includes lmdb.h although store/ is otherwise the only code that
 * does: it measures LMDB itself, not the store.
 */
#include <errno.h>
#include <lmdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "indicator.pb-c.h"
#include "keys.h"
#include "xmalloc.h"

#define MINSERVER_BATCH_MAX 4096 /* reports in one transaction at most */
#define MINSERVER_MAP (4ULL << 30)
#define MINSERVER_POLL_MS 100

static volatile sig_atomic_t minserver_stop;

static void
minserver_on_signal(int sig)
{
	(void)sig;
	minserver_stop = 1;
}

static double
minserver_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Answers one report or heartbeat: [identity][Ack]. */
static void
minserver_ack(void *sock, zmq_msg_t *identity, uint64_t seq)
{
	Indicator__Ack a = INDICATOR__ACK__INIT;
	uint8_t buf[64];
	size_t len;

	a.seq = seq;
	a.status = INDICATOR__ACK_STATUS__ACCEPTED;
	a.expected_seq = seq != 0 ? seq + 1 : 0;
	len = indicator__ack__pack(&a, buf);
	if (zmq_msg_send(identity, sock, ZMQ_SNDMORE) == -1 ||
	    zmq_send(sock, buf, len, 0) == -1)
		fprintf(stderr, "minserver: send: %s\n", zmq_strerror(errno));
}

static int
minserver_curve(void *sock, const char *file)
{
	char err[256], key[KEY_Z85_LEN + 1], *text;
	int one = 1;

	if ((text = keys_file_read(file, true, (uid_t)-1, err, sizeof(err))) ==
	    NULL) {
		fprintf(stderr, "minserver: %s\n", err);
		return -1;
	}
	if (keys_parse_key(text, key, err, sizeof(err)) == -1) {
		fprintf(stderr, "minserver: %s: %s\n", file, err);
		free(text);
		return -1;
	}
	free(text);
	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) == -1 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, key, KEY_Z85_LEN) == -1) {
		fprintf(stderr, "minserver: CURVE: %s\n", zmq_strerror(errno));
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *curve = NULL, *endpoint, *dir;
	zmq_msg_t *ids = xcalloc(MINSERVER_BATCH_MAX, sizeof(*ids));
	uint64_t *seqs = xcalloc(MINSERVER_BATCH_MAX, sizeof(*seqs));
	uint64_t lsn = 0, reports = 0, commits = 0;
	double commit_ms = 0, commit_max = 0;
	struct sigaction sa;
	MDB_env *env = NULL;
	MDB_dbi dbi;
	MDB_txn *txn;
	void *ctx, *sock;
	int rc, linger = 0, hwm = 100000;

	if (argc == 5 && strcmp(argv[1], "--curve") == 0) {
		curve = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: indicator-minserver [--curve "
				"SECRET_KEY_FILE] ENDPOINT DIR\n");
		return 2;
	}
	endpoint = argv[1];
	dir = argv[2];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = minserver_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	if ((rc = mdb_env_create(&env)) != 0 ||
	    (rc = mdb_env_set_mapsize(env, MINSERVER_MAP)) != 0 ||
	    (rc = mdb_env_open(env, dir, 0, 0600)) != 0 ||
	    (rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0 ||
	    (rc = mdb_txn_commit(txn)) != 0) {
		fprintf(stderr, "minserver: LMDB in %s: %s\n", dir,
		    mdb_strerror(rc));
		return 1;
	}
	ctx = zmq_ctx_new();
	sock = zmq_socket(ctx, ZMQ_ROUTER);
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	if ((curve != NULL && minserver_curve(sock, curve) == -1) ||
	    zmq_bind(sock, endpoint) == -1) {
		fprintf(stderr, "minserver: bind %s: %s\n", endpoint,
		    zmq_strerror(errno));
		return 1;
	}

	while (!minserver_stop) {
		zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
		size_t n = 0;
		double t0;

		if (zmq_poll(&item, 1, MINSERVER_POLL_MS) <= 0)
			continue;
		txn = NULL;
		/* Everything that arrived since the last commit: one
		 * transaction. */
		while (n < MINSERVER_BATCH_MAX) {
			Indicator__AgentMessage *m;
			zmq_msg_t body;

			zmq_msg_init(&ids[n]);
			if (zmq_msg_recv(&ids[n], sock, ZMQ_DONTWAIT) == -1) {
				zmq_msg_close(&ids[n]);
				break;
			}
			zmq_msg_init(&body);
			if (zmq_msg_recv(&body, sock, 0) == -1) {
				zmq_msg_close(&body);
				zmq_msg_close(&ids[n]);
				break;
			}
			m = indicator__agent_message__unpack(
			    NULL, zmq_msg_size(&body), zmq_msg_data(&body));
			if (m != NULL &&
			    m->body_case ==
				INDICATOR__AGENT_MESSAGE__BODY_REPORT) {
				uint8_t key[8];
				MDB_val k = { sizeof(key), key };
				MDB_val v = { zmq_msg_size(&body),
					zmq_msg_data(&body) };

				lsn++;
				for (int i = 0; i < 8; i++)
					key[i] = (uint8_t)(lsn >> (56 - 8 * i));
				if (txn == NULL && (rc = mdb_txn_begin(env,
							NULL, 0, &txn)) != 0) {
					fprintf(stderr, "minserver: %s\n",
					    mdb_strerror(rc));
					return 1;
				}
				if ((rc = mdb_put(
					 txn, dbi, &k, &v, MDB_APPEND)) != 0) {
					fprintf(stderr, "minserver: %s\n",
					    mdb_strerror(rc));
					return 1;
				}
				seqs[n++] = m->report->seq;
			} else {
				minserver_ack(sock, &ids[n], 0);
				zmq_msg_close(&ids[n]);
			}
			if (m != NULL)
				indicator__agent_message__free_unpacked(
				    m, NULL);
			zmq_msg_close(&body);
		}
		if (txn == NULL)
			continue;
		t0 = minserver_now_ms();
		if ((rc = mdb_txn_commit(txn)) != 0) { /* fsync */
			fprintf(stderr, "minserver: commit: %s\n",
			    mdb_strerror(rc));
			return 1;
		}
		t0 = minserver_now_ms() - t0;
		commit_ms += t0;
		if (t0 > commit_max)
			commit_max = t0;
		commits++;
		reports += n;
		for (size_t i = 0; i < n; i++) {
			minserver_ack(sock, &ids[i], seqs[i]);
			zmq_msg_close(&ids[i]);
		}
	}
	printf("minserver reports=%llu commits=%llu batch_avg=%.1f "
	       "commit_ms_avg=%.3f commit_ms_max=%.3f\n",
	    (unsigned long long)reports, (unsigned long long)commits,
	    commits ? (double)reports / (double)commits : 0,
	    commits ? commit_ms / (double)commits : 0, commit_max);
	zmq_close(sock);
	zmq_ctx_term(ctx);
	mdb_env_close(env);
	free(ids);
	free(seqs);
	return 0;
}
