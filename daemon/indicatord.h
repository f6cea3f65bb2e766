/*
 * indicatord's private header: the daemon's state and, grouped by file, the
 * functions each file offers the others.
 */
#ifndef INDICATORD_H
#define INDICATORD_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <zmq.h>

#include "config.h"
#include "indicator.pb-c.h"
#include "ledger.h"
#include "log.h"
#include "store.h"
#include "validate.h"

#define CONTROL_BUCKETS 12

struct counters {
	uint64_t accepted;
	uint64_t duplicate;
	uint64_t rejected;
	uint64_t retry;
	uint64_t malformed;
	uint64_t heartbeats;
	uint64_t batches;
	uint64_t observations;
	uint64_t unauthorised; /* not_authorised answers */
	uint64_t rate_limited; /* RETRY_LATER for the per-agent limit */
	/* Budgets (README, "Budgets"): answers not sent for answers_mb,
	 * snapshot requests not served for it. */
	uint64_t answers_dropped;
	uint64_t snapshots_refused;
	/* Write transactions: a latency histogram (control.c's buckets, the
	 * last one +Inf), their total time and the reports they carried. */
	uint64_t commit_hist[CONTROL_BUCKETS + 1];
	double commit_sum_s;
	double commit_max_s; /* the longest: the longest an ack waited */
	uint64_t commits;
	uint64_t batch_reports;
	/* Checkpoints that wrote something: how many, their total and
	 * longest time (the ledger's, copied by control_stats()). */
	uint64_t checkpoints;
	double checkpoint_sum_s;
	double checkpoint_max_s;
	/* Answers by code: each rejected report once for each distinct code
	 * it carries (a resent seq answered with its earlier rejection is
	 * not counted again), each RETRY_LATER once. */
	uint64_t rejections[VALIDATE_REJECT_CODES];
	uint64_t retries[VALIDATE_RETRY_CODES];
	/* File transactions (filetx.c): parts answered STAGED; files stored
	 * whole, refused, abandoned (never completed: superseded or
	 * expired); and, a gauge, files open now. */
	uint64_t staged;
	uint64_t files_stored;
	uint64_t files_rejected;
	uint64_t files_abandoned;
	uint64_t files_open;
};

/* meta: "report_ms/DISTRICT", the time of the district's last accepted
 * report (ms since the epoch), written in the batch that accepted it. */
#define META_REPORT_MS "report_ms/"

/* What the metrics tell about each district of the registry (metrics.c). */
struct watch_district {
	char code[IND_CODE_MAX + 1];
	int64_t last_report_ms; /* 0: never */
	int missing; /* metrics not reported for the period; -1: unknown */
};

struct watch {
	struct watch_district d[REG_DISTRICTS_MAX];
	size_t n;
	size_t nmetrics; /* metrics in the registry */
	/* The current period: the last completed month in the configured
	 * time zone ("2025-09" from 1 October on). */
	char period[IND_PERIOD_MAX + 1];
	uint64_t checkpoints; /* count.checkpoints when missing was counted */
	int64_t counted_ms; /* and when (monotonic) */
};

/* control.c's state. */
struct control {
	char endpoint[CONFIG_PATH_MAX + 16];
	void *sock; /* ROUTER: "status" in, JSON out */
	void *mon_ingest; /* PAIR: monitor events of the ingest socket */
	void *mon_publish; /* PAIR: of the publish socket */
	int64_t agents_connected;
	int64_t subscribers;
	int64_t started_ms;
};

/* What status and the metrics show: a copy, safe to hand to a thread. */
struct control_stats {
	struct counters count;
	double uptime_s;
	int64_t agents_connected;
	int64_t subscribers;
	uint64_t publications_dropped;
	uint64_t publications_unheard;
	uint64_t map_bytes;
	uint64_t used_bytes;
	uint64_t observations;
	uint64_t revisions;
	uint64_t agents_known;
	uint64_t aggregates;
	uint64_t map_max_bytes;
	struct watch watch;
};

struct daemon {
	struct config cfg;
	const char *conf_path; /* -c, or NULL: the built-in configuration */
	struct store *store;
	void *zctx;
	void *ingest; /* ROUTER: AgentMessage in, Ack out */
	void *publish; /* PUB: aggregates */
	void *snapshot; /* ROUTER: SnapshotRequest in, Snapshot out */
	struct counters count;
	struct ingest *ing; /* ingest.c's state */
	struct publisher *pub; /* publish.c's state */
	struct auth *auth; /* auth.c's state */
	struct control ctl; /* control.c's state */
	struct ledger *ledger; /* ledger.h: log, tables, checkpoints */
	struct watch watch; /* metrics.c: districts */
};

/* indicatord.c */
extern volatile sig_atomic_t daemon_quit;
/*
 * Reloads the configuration file the daemon started with, for SIGHUP and
 * the control socket's "reload": RELOADING=1 to systemd, a checkpoint (the
 * aggregates in memory were made with the old registry), then the new
 * registry, limits, batch size, log level and key tables take effect, the
 * aggregates follow the new registry (ledger_registry_set(): recomputed,
 * the changed ones published with revision + 1), and READY=1 whatever the
 * outcome. 0, or -1 when the file or its key tables
 * are refused: the old configuration stays, and the reason (logged) is in
 * why (len bytes). Endpoints and data_dir change only on restart.
 */
int indicatord_reload(struct daemon *d, char *why, size_t len);

/* auth.c */

/* True for endpoints no other machine can reach (loopback, ipc, inproc). */
bool auth_endpoint_local(const char *endpoint);
/*
 * Checks the secure defaults (no plaintext socket off loopback unless
 * allow_insecure_remote; a data directory and secret key readable by their
 * owner only) and loads the secret key and the key tables into d->auth
 * (allocated here; auth_destroy() frees it). Part of daemon_check(), for
 * -n as for a start. Logs every problem; -1 if there was any: the daemon
 * must not start.
 */
int auth_check(struct daemon *d);
/* After auth_check(): starts the ZAP handler, before any socket binds.
 * Needs d->zctx. -1 after logging why. */
int auth_start(struct daemon *d);
void auth_destroy(struct daemon *d);
/* A reload: re-reads the key tables next names; -1 keeps the old ones, with
 * the reason in why (len bytes), not logged. */
int auth_reload(
    struct daemon *d, const struct config *next, char *why, size_t len);
/* Makes sock a CURVE server in the ingest or feed domain, when configured. */
void auth_server_socket(struct daemon *d, void *sock, bool feed);
/* The ZAP handler's socket, or NULL without CURVE. */
void *auth_zap_socket(const struct daemon *d);
/* Answers one ZAP request. */
int auth_zap_serve(struct daemon *d);
/*
 * With CURVE on the ingest socket: checks that the key that sent a message
 * (its User-Id) is still authorised and bound to agent_id and district
 * (NULL for a heartbeat). NULL when it may, or "not_authorised" with the
 * reason in why.
 */
const char *auth_check_sender(const struct daemon *d, const char *user_id,
    const char *agent_id, const char *district, char *why, size_t len);

/* budget.c */

/*
 * Sends [id][buf] on the ROUTER sock, without blocking, with buf (len
 * bytes, from malloc) handed over: it is freed here whatever happens, by
 * ZeroMQ once the answer is written or dropped. While answers queued for
 * peers would pass limit bytes with this one, it is not sent: 1. 0 when
 * sent, -1 when ZeroMQ refused it (errno).
 */
int budget_answer(void *sock, const void *id, size_t idlen, void *buf,
    size_t len, uint64_t limit);
/* Bytes of answers queued now; true while under limit. */
uint64_t budget_answers_queued(void);
bool budget_answers_room(uint64_t limit);

/* control.c */

/* Upper bounds of the commit-latency histogram's buckets, seconds. */
extern const double control_buckets[CONTROL_BUCKETS];
/* Binds the control socket (ipc://DATA_DIR/control unless [daemon]
 * control names another endpoint) and starts the socket monitors. -1 after
 * logging why. */
int control_init(struct daemon *d);
void control_destroy(struct daemon *d);
/* Adds the control socket and the monitors to a poll set. */
void control_poll_items(struct daemon *d, zmq_pollitem_t *items, int *n);
/* Answers one waiting request (and reads the monitors' events); 1 when a
 * request was answered. */
int control_serve(struct daemon *d);
/* Counts one batch's write transaction. */
void control_commit_observe(struct daemon *d, double seconds, size_t reports);
/* The current figures. */
void control_stats(struct daemon *d, struct control_stats *out);

/* metrics.c */

/*
 * Serves, when [daemon] metrics is set (loopback only), /metrics in the
 * Prometheus text format, /healthz (200 while the main loop turns) and
 * /readyz (200 once the store is open, the sockets bound and the log
 * replayed, until the shutdown begins; 503 otherwise). Call once the store
 * is open and the sockets are bound, before the replay. -1 after logging
 * why (e.g. "metrics: cannot listen on 127.0.0.1:9464: Address already in
 * use"): the daemon must not start.
 */
int metrics_init(struct daemon *d);
/* Hands the current figures to the HTTP thread (and counts the missing
 * metrics again after a checkpoint, or once a minute); marks the main
 * loop alive. Every turn of the loop and after each batch. */
void metrics_update(struct daemon *d);
/* Marks the main loop alive (during a long replay). */
void metrics_tick(void);
/* Readiness: set once ready, cleared when the shutdown begins; replaying
 * while the log is replayed. */
void metrics_set_ready(bool ready);
void metrics_set_replaying(bool replaying);
/* (Re)reads the districts from the registry, each with its last report
 * time from meta: at start and after a reload. 0 or -1 (logged). */
int metrics_watch_load(struct daemon *d);
/* A report of district was accepted at ms: in memory, after the commit. */
void metrics_report_seen(struct daemon *d, const char *district, int64_t ms);
void metrics_destroy(void);

/* ingest.c */

/* Ingest state; ingest_new() never fails (aborts on out of memory). */
struct ingest *ingest_new(void);
void ingest_destroy(struct ingest **ing);
/*
 * Takes every message waiting on the ingest socket (up to batch_max),
 * decodes and validates them, applies the valid ones in one write
 * transaction with the exactly-once sequence check, commits, and only then
 * sends each message its Ack. Returns the number of messages handled, or -1
 * when the socket failed.
 */
int ingest_batch(struct daemon *d);

/*
 * In the batch's write transaction t: logs every observation of the valid
 * report r (v: its validation, with the canonical values) as its key's
 * latest revision, with r's seq, into the ledger (ledger.h), and notes the
 * district's last report. For a report accepted alone and for each part
 * of a file (filetx.c). batch is unused: the ledger numbers the batch.
 * 0, STORE_FULL or -1.
 */
int ingest_apply_report(struct daemon *d, struct store_txn *t,
    const Indicator__Report *r, const struct validation *v, int64_t now,
    uint64_t batch);

/* publish.c */

/* What one publication queued for a subscriber takes in memory, at most:
 * the topic and Aggregate frames and ZeroMQ's message headers. The
 * subscriber_mb budget is turned into a high-water mark with it. */
#define PUBLISH_MSG_BYTES 512

/* The PUB socket's state; never NULL (aborts on out of memory). */
struct publisher *publisher_new(void);
void publisher_destroy(struct publisher **p);
/* After a batch committed: publishes pubs (the ledger's, ledger.h) on the
 * PUB socket, never blocking (counted as dropped at the high-water mark). */
void publisher_send(struct daemon *d, const struct ledger_pub *pubs, size_t n);
uint64_t publisher_dropped(const struct publisher *p);
/* Publications not sent because no subscription takes them. */
uint64_t publisher_unheard(const struct publisher *p);
/* Takes in the subscriptions and unsubscriptions XPUB handed up: a
 * publication no subscription takes is not sent (publisher_send()). */
void publisher_subscriptions(struct daemon *d);
/* Answers one waiting SnapshotRequest, if any: a Snapshot of the stored
 * aggregates under the prefix with the publish seq they are consistent
 * with (after a checkpoint). Returns 1 when a request was handled, 0 when
 * none was waiting. */
int snapshot_serve(struct daemon *d);

/* query.c: queries on the snapshot socket (history of a key, expected
 * reports for a period, agents), additions to the wire contract. */

/* True when req carries a query rather than asking for aggregates. */
bool query_wanted(const Indicator__SnapshotRequest *req);
/*
 * Answers the query in req to the peer id (idlen bytes) on the snapshot
 * socket, after a checkpoint, from one read transaction: a Snapshot with
 * query set and its answer, bounded in size, or with error set to a stable
 * code when the query is refused (bad_query, bad_period, store_error).
 * Never blocks: an answer the socket cannot take now is dropped (the
 * client asks again). req stays the caller's.
 */
void query_serve(struct daemon *d, const unsigned char *id, size_t idlen,
    const Indicator__SnapshotRequest *req);

/* notify.c: systemd's notification protocol (sd_notify). Outside systemd
 * ($NOTIFY_SOCKET unset) every function does nothing. */

/* Reads $NOTIFY_SOCKET and $WATCHDOG_USEC; call once before the others. */
void notify_init(void);
/* The longest the main loop may sleep between notify_watchdog() calls, in
 * ms: max_ms, or a quarter of WatchdogSec= when that is shorter. */
int notify_wait_ms(int max_ms);
/* READY=1: only once the store is open and every socket bound, and again
 * after a reload. Makes the next notify_status() send at once. */
void notify_ready(void);
/* RELOADING=1 (with MONOTONIC_USEC), before a reload; notify_ready() after. */
void notify_reloading(void);
/* STOPPING=1, when the shutdown begins. */
void notify_stopping(void);
/* WATCHDOG=1 when half of WatchdogSec= has passed since the last ping; call
 * on every turn of the loop. */
void notify_watchdog(void);
/* STATUS=accepted N, rejected N, duplicate N, agents seen N: at most every
 * 5 s (sooner after notify_ready()); call on every turn of the loop. Agents
 * seen counts the (agent, epoch) pairs in the store's seq table. */
void notify_status(struct daemon *d);

#endif
