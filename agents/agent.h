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
#include "csv.h"
#include "indicator.pb-c.h"
#include "outbox.h"

/* Exit statuses. */
#define AGENT_EXIT_OK 0
#define AGENT_EXIT_FAIL 1 /* a bad file, a rejected report, an error */
#define AGENT_EXIT_USAGE 2 /* usage or configuration */
#define AGENT_EXIT_PENDING 3 /* timeout or signal with reports pending */

struct agent_drop;

struct agent {
	struct agent_config cfg;
	struct outbox *ob;
	struct agent_drop *drop; /* run: the drop directory */
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
	unsigned long staged; /* parts STAGED, their file not yet decided */
	bool failed; /* a bad file, a rejected report or an error */

	/* For the metrics (agent_metrics.c). */
	unsigned long files_taken; /* run: moved to done/ (stored whole) */
	unsigned long files_rejected; /* run: moved to rejected/ */
	int64_t last_ack_wall_ms; /* 0: none yet */
	bool reachable; /* an answer came, none is overdue since */
};

/* Set by the SIGINT and SIGTERM handlers. */
extern volatile sig_atomic_t agent_stop;

/* Lines of text, each a new string: what a clerk is told about a file. */
struct agent_lines {
	char **v;
	size_t n;
	size_t cap;
};

/* agent.c */

/* Monotonic time in milliseconds. */
uint64_t agent_now_ms(void);
/* Wall-clock time in milliseconds since the epoch. */
int64_t agent_wall_ms(void);

/* Appends a line (printf format) to l; aborts on out of memory. */
void agent_lines_add(struct agent_lines *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Frees the lines; l is empty after. */
void agent_lines_free(struct agent_lines *l);

/* agent_enqueue.c */

/*
 * Parses the CSV file at path and enqueues its rows into the outbox as
 * reports of at most cfg.report_size observations, all in one transaction,
 * each with its source (the file, its columns, each observation's line)
 * for the mapping of the daemon's answers. The file is read in its
 * encoding (encoding.h: cfg.encoding, a BOM decides) and with the
 * registry's names (csv.h). Memory stays flat whatever the file's size: a
 * first pass only checks the file, a second builds one report at a time
 * into an open outbox batch. Returns 0, or -1 after logging every problem
 * as "FILE:LINE:COLUMN: what is wrong; what to do"; then nothing from the
 * file is enqueued.
 */
int agent_enqueue_file(struct agent *a, const char *path);

/*
 * Reads the file at path as agent_enqueue_file() does, without the
 * outbox: fn gets each good row (return 0 to go on); problems go to
 * *problems as "NAME:LINE:COLUMN: ..." lines, the file named name. cols
 * receives the columns' places in the header. 0 when the file has no
 * problem, 1 when it has (or cannot be read: said in *problems too).
 */
typedef int (*agent_row_fn)(const struct csv_row *row, void *arg);
int agent_read_file(struct agent *a, const char *path, const char *name,
    agent_row_fn fn, void *arg, unsigned cols[CSV_NCOLS],
    struct agent_lines *problems);

/*
 * The drop directory of `run`: files named *.csv (not starting with '.')
 * that are closed after writing in it or moved into it are enqueued as by
 * agent_enqueue_file(), then moved to sending/ (or, when bad, to rejected/
 * next to a NAME.err that says why); from sending/ to done/ once the
 * daemon has stored the whole file, to rejected/ when it refused it. A file's
 * identity (name, size, mtime, inode) is marked in the outbox in the
 * transaction that enqueues it, so a file enqueued but not yet moved when the
 * agent stopped is moved at the next start, not enqueued twice.
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
/* Moves the files of sending/ whose reports the outbox no longer holds
 * (it was replaced while they waited) back into the drop directory, to be
 * sent again. Returns how many, or -1 on an outbox error. */
int agent_drop_orphans(struct agent_drop *d);
/* Takes the files named by waiting inotify events. Returns the number of
 * files enqueued, or -1 on an outbox error. */
int agent_drop_events(struct agent_drop *d);
/*
 * The daemon rejected a report of the file whose identity is mark (taken
 * as name): the file moves from sending/ (or done/, where an agent from
 * before file transactions put it) to rejected/, or stays there when an
 * earlier report of it was rejected, and lines are added to its .err.
 * Logged; nothing is returned.
 */
void agent_drop_rejected(struct agent_drop *d, const char *name,
    const char *mark, const struct agent_lines *lines);
/* The daemon stored the file of mark (taken as name) whole: it moves from
 * sending/ to done/. Logged; nothing is returned. */
void agent_drop_stored(
    struct agent_drop *d, const char *name, const char *mark);

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

/* agent_explain.c: the daemon's codes in the clerk's terms. */

/*
 * Why report seq was rejected, as lines for the clerk: with its source
 * (the outbox's record of the file and lines: src_len bytes at src; NULL
 * when it has none) "FILE:LINE:COLUMN: what is
 * wrong; what to do" per problem of an observation, "FILE: ..." for one of
 * the whole report; without one, "report seq N, observation I
 * (industry/metric/period): ...". Translated; the accepted values are
 * listed from the agent's registry. *file and *mark (when not NULL)
 * receive the source's file and mark as new strings, NULL when none.
 * For a part of a file, the errors the daemon places in another part
 * (ObservationError.part) are told at that part's line, read from ob
 * while it is pending there (NULL: not read, as from inside a scan); a
 * later part refused only because the file was (file_rejected, no error
 * of its own) gives one line that says so.
 */
void agent_rejection(struct agent *a, struct outbox *ob, uint64_t seq,
    const void *report, size_t report_len, const void *ack, size_t ack_len,
    const void *src, size_t src_len, struct agent_lines *out, char **file,
    char **mark);

/*
 * One problem of an observation, for the clerk: the line "FILE:LINE:COL:
 * what; what to do" for the code the validation gave (core/validate.c's,
 * the daemon's or check's own), with msg the validation's message for
 * the codes it alone can explain. cols are the file's columns (csv.h).
 */
void agent_explain(struct agent *a, struct agent_lines *out, const char *file,
    unsigned line, const unsigned cols[CSV_NCOLS], const char *code,
    const char *msg, const Indicator__Observation *o);
/* The same for a problem of a whole report ("FILE: ..."). */
void agent_explain_report(struct agent *a, struct agent_lines *out,
    const char *file, uint64_t seq, const char *code, const char *msg);

/* agent_check.c: the clerk's tools. */

/* check FILE...: every file as the daemon would judge it, offline.
 * AGENT_EXIT_OK when each would be accepted whole, else FAIL. */
int agent_check_files(struct agent *a, char *const files[], int nfiles);
/* template: the CSV a clerk fills in for period, on stdout.
 * encoding is "utf-8-bom" (the default when NULL) or "gb18030". */
int agent_template(struct agent *a, const char *period, const char *encoding);

#endif
