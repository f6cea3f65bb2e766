/*
 * indicator-agent: reads district CSV files, keeps their reports in a
 * durable outbox and sends them to indicatord until each is acknowledged.
 * Private to the agent; grouped by file, so it doubles as a map.
 */
#ifndef INDICATOR_AGENT_H
#define INDICATOR_AGENT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "outbox.h"

/* Exit statuses. */
#define AGENT_EXIT_OK 0
#define AGENT_EXIT_FAIL 1 /* a bad file, a rejected report, an error */
#define AGENT_EXIT_USAGE 2 /* usage or configuration */
#define AGENT_EXIT_PENDING 3 /* timeout or signal with reports pending */

struct agent {
	struct agent_config cfg;
	struct outbox *ob;
	unsigned timeout_s; /* 0: no limit */
	bool verbose;
	bool service; /* run: backoff, heartbeats, outage notes */
	uint64_t start_ms; /* agent_now_ms() when the run began */

	/* This run's tally, for the summary line. */
	unsigned long sent;
	unsigned long observations;
	unsigned long accepted;
	unsigned long duplicate;
	unsigned long rejected;
	bool failed; /* a bad file, a rejected report or an error */

	/* For the metrics (agent_metrics.c). */
	unsigned long files_taken; /* run: moved to done/ */
	unsigned long files_rejected; /* run: moved to rejected/ */
	int64_t last_ack_wall_ms; /* 0: none yet */
	bool reachable; /* an answer came, none is overdue since */
};

/* Set by the SIGINT and SIGTERM handlers. */
extern volatile sig_atomic_t agent_stop;

/* agent.c */

/* Monotonic time in milliseconds. */
uint64_t agent_now_ms(void);
/* Wall-clock time in milliseconds since the epoch. */
int64_t agent_wall_ms(void);

/* agent_enqueue.c */

/*
 * Parses the CSV file at path and enqueues its rows into the outbox as
 * reports of at most cfg.report_size observations, all in one transaction.
 * Memory stays flat whatever the file's size: a first pass only checks the
 * file, a second builds one report at a time into an open outbox batch.
 * Returns 0, or -1 after printing why to stderr; then nothing from the
 * file is enqueued.
 */
int agent_enqueue_file(struct agent *a, const char *path);

/*
 * The drop directory of `run`: files named *.csv (not starting with '.')
 * that are closed after writing in it or moved into it are enqueued as by
 * agent_enqueue_file(), then moved to done/ (or, when bad, to rejected/
 * next to a NAME.err that says why). A file's identity (name, size, mtime,
 * inode) is marked in the outbox in the transaction that enqueues it, so a
 * file enqueued but not yet moved when the agent stopped is moved at the
 * next start, not enqueued twice.
 */
struct agent_drop;

/* Opens cfg.drop_dir (created if missing, with done/ and rejected/) and
 * watches it with inotify. NULL on failure, logged. */
struct agent_drop *agent_drop_open(struct agent *a);
/* Accepts NULL and *d == NULL; sets *d to NULL. */
void agent_drop_close(struct agent_drop **d);
/* The inotify descriptor: readable when agent_drop_events() has work. */
int agent_drop_fd(const struct agent_drop *d);
/* Takes the files already in the directory, sorted by name, and forgets
 * the marks of files no longer there. Returns the number of files
 * enqueued, or -1 on an outbox error. */
int agent_drop_scan(struct agent_drop *d);
/* Takes the files named by waiting inotify events. Returns the number of
 * files enqueued, or -1 on an outbox error. */
int agent_drop_events(struct agent_drop *d);

/* agent_flush.c */

struct agent_flush;

/*
 * A flusher: a DEALER connected to cfg.endpoint that sends the outbox's
 * pending reports, at most cfg.window in flight, reading them from the
 * outbox a window at a time. In service mode (a->service) it also backs
 * resend timeouts off, sends heartbeats when idle and logs outages. NULL
 * on failure, logged. Caller owns it.
 */
struct agent_flush *agent_flush_new(struct agent *a);
/* Removes what was acknowledged and closes; accepts NULL, sets *f NULL. */
void agent_flush_destroy(struct agent_flush **f);
/* New reports were enqueued: look in the outbox again. */
void agent_flush_more(struct agent_flush *f);
/* True when nothing is in flight and the outbox had nothing more. */
bool agent_flush_idle(const struct agent_flush *f);
/*
 * One round: tops the window up, resends what is due, sends a heartbeat
 * when one is due, then waits at most max_wait_ms for answers, or for fd
 * (-1: none) to be readable, which sets *fd_ready. Applies the answers.
 * Returns 0, or -1 on an outbox or socket error (logged).
 */
int agent_flush_step(
    struct agent_flush *f, uint64_t max_wait_ms, int fd, bool *fd_ready);

/*
 * Sends every pending report to cfg.endpoint, window at a time, and applies
 * the daemon's acks to the outbox. Returns an AGENT_EXIT_* status: OK when
 * nothing is pending any more, PENDING when stopped by a signal or by
 * timeout_s with reports left, FAIL on an outbox error.
 */
int agent_flush(struct agent *a);

/* agent_metrics.c: the agent's metrics endpoint, for run. */

/*
 * With [agent] metrics set (a loopback HOST:PORT), serves /metrics
 * (pending reports, dead letters, last ack, daemon reachable, files taken
 * and rejected, build info), /healthz (the loop turned within 10 s) and
 * /readyz (running: outbox open, drop directory watched). 0, or -1 after
 * printing why.
 */
int agent_metrics_start(struct agent *a);
/* How long the loop may wait between updates: 1 s with metrics on. */
uint64_t agent_metrics_wait_ms(const struct agent *a);
/* Hands the current figures to the HTTP thread; ready says whether the
 * agent is running. Every turn of the loop. */
void agent_metrics_update(struct agent *a, bool ready);
void agent_metrics_stop(void);

/*
 * Prints why a report was rejected to fp: "head: code: message", then one
 * line per bad observation, named (industry/metric/period) from the packed
 * AgentMessage in report when it decodes, indented. With fp NULL the lines
 * are logged as errors instead, each starting with head.
 */
void agent_print_rejection(FILE *fp, const char *head, const void *report,
    size_t report_len, const void *ack, size_t ack_len);

#endif
