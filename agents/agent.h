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
	uint64_t start_ms; /* agent_now_ms() when the run began */

	/* This run's tally, for the summary line. */
	unsigned long sent;
	unsigned long observations;
	unsigned long accepted;
	unsigned long duplicate;
	unsigned long rejected;
	bool failed; /* a bad file, a rejected report or an error */
};

/* Set by the SIGINT and SIGTERM handlers. */
extern volatile sig_atomic_t agent_stop;

/* agent.c */

/* Monotonic time in milliseconds. */
uint64_t agent_now_ms(void);
/* Debug notes, printed with -v only. */
void agent_debug(const struct agent *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* agent_enqueue.c */

/*
 * Parses the CSV file at path and enqueues its rows into the outbox as
 * reports of at most cfg.report_size observations, all in one transaction.
 * Returns 0, or -1 after printing why to stderr; then nothing from the
 * file is enqueued.
 */
int agent_enqueue_file(struct agent *a, const char *path);

/* agent_flush.c */

/*
 * Sends every pending report to cfg.endpoint, window at a time, and applies
 * the daemon's acks to the outbox. Returns an AGENT_EXIT_* status: OK when
 * nothing is pending any more, PENDING when stopped by a signal or by
 * timeout_s with reports left, FAIL on an outbox error.
 */
int agent_flush(struct agent *a);

/*
 * Prints why a report was rejected to fp: "head: code: message", then one
 * line per bad observation, named (industry/metric/period) from the packed
 * AgentMessage in report when it decodes.
 */
void agent_print_rejection(FILE *fp, const char *head, const void *report,
    size_t report_len, const void *ack, size_t ack_len);

#endif
