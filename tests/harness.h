/*
 * Integration test harness: temporary directories, free loopback ports, and
 * the real binaries (indicatord, indicator-agent, indicatorctl) started as
 * child processes. Every function fails the running Check test (ck_abort)
 * rather than returning an error, so tests read straight. The unit suites
 * of the store use it for their temporary directories only.
 */
#ifndef INDICATOR_HARNESS_H
#define INDICATOR_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "indicator.pb-c.h"

struct daemon_proc {
	pid_t pid; /* 0 when not running */
	char dir[512]; /* temporary directory of this daemon */
	char data_dir[600]; /* dir/data */
	char conf[600]; /* dir/indicatord.conf */
	char log[600]; /* dir/indicatord.log: its stderr */
	char ingest[64]; /* tcp://127.0.0.1:PORT */
	char publish[64];
	char snapshot[64];
	/* With CURVE on the ingest socket: the daemon's public key and an
	 * authorised key pair (bound to agent "harness") that start-up uses
	 * for its heartbeat. Empty for plaintext. */
	char curve_server[41];
	char curve_public[41];
	char curve_secret[41];
};

/* One report with one observation, for harness_report_one(). */
struct harness_report {
	const char *agent;
	const char *district;
	uint64_t epoch;
	uint64_t seq;
	const char *industry;
	double value;
};

/* harness.c */

/* CLOCK_MONOTONIC in milliseconds, for deadlines. */
int64_t harness_now_ms(void);
/* Sleeps ms milliseconds, the whole time even when a signal comes. */
void harness_sleep_ms(long ms);

/* A new temporary directory (mkdtemp); caller owns the string. */
char *harness_tmpdir(void);
/* Removes a directory tree (rm -rf). */
void harness_rmtree(const char *dir);
/* A TCP port on 127.0.0.1, free, below the ephemeral range, and reserved
 * for this process's life against the other suites (harness.c). */
int harness_free_port(void);
/* GET path from 127.0.0.1:port (HTTP/1.0): the body (caller frees) and the
 * status in *status; NULL when nothing listens there. */
char *harness_http_get(int port, const char *path, int *status);

/*
 * Prepares a daemon in a new temporary directory: free ports, a config file
 * made of the default configuration followed by a [daemon] section with the
 * endpoints and data_dir, then `extra` (more INI text, or NULL) appended.
 */
void harness_daemon_init(struct daemon_proc *d, const char *extra);
/* Starts it and waits until it answers a heartbeat on the ingest socket. */
void harness_daemon_start(struct daemon_proc *d);
/* Sends sig and waits for the exit; returns the exit status as from
 * waitpid (use WIFEXITED/WEXITSTATUS). */
int harness_daemon_stop(struct daemon_proc *d, int sig);
/* Stops it if running and removes its directory. */
void harness_daemon_cleanup(struct daemon_proc *d);
/* The daemon's log so far; caller frees. */
char *harness_daemon_log(const struct daemon_proc *d);
/* Whether the daemon's log so far holds what. */
bool harness_daemon_log_has(const struct daemon_proc *d, const char *what);
/* Asks the running daemon for a checkpoint over its control socket and
 * waits for it: the store's tables then hold every acknowledged report, as
 * indicatorctl does before it reads. Fails the test if it is refused. */
void harness_checkpoint(const struct daemon_proc *d);
/*
 * Waits until the file at path holds needle, polling every 20 ms; fails the
 * test with the end of the file if it does not within timeout_ms.
 */
void harness_wait_log(const char *path, const char *needle, int timeout_ms);

/*
 * Runs argv[0] (a path) with argv to completion, with no stdin. Captures
 * stdout and stderr into *out and *err (caller frees; either pointer may be
 * NULL to discard). Returns the exit code, or 128 + signal. Aborts the test
 * if the program has not ended after timeout_s seconds.
 */
int harness_run(
    const char *const argv[], char **out, char **err, int timeout_s);
/* Starts argv in the background with stdout and stderr to the file log;
 * returns its pid. */
pid_t harness_spawn(const char *const argv[], const char *log);
/* Waits for pid; returns the exit code, or 128 + signal. */
int harness_wait(pid_t pid, int timeout_s);

/* Writes text to path. */
void harness_write_file(const char *path, const char *text);
/* Reads a whole file; caller frees. NULL if it does not exist. */
char *harness_read_file(const char *path);

/*
 * A raw DEALER client for the ingest socket, to send hand-made frames.
 * harness_client_new() connects to endpoint; harness_client_send() sends
 * nframes frames (lens[i] bytes each); harness_client_ack() waits up to
 * timeout_ms for one reply frame and decodes it as an Ack (NULL on timeout
 * or a reply that does not decode; free with indicator__ack__free_unpacked).
 */
void *harness_client_new(void *zctx, const char *endpoint);
/* The same, as a CURVE client of the server key with the key pair. */
void *harness_client_curve(void *zctx, const char *endpoint, const char *server,
    const char *public_key, const char *secret_key);
void harness_client_send(void *sock, const void *const frames[],
    const size_t lens[], size_t nframes);
Indicator__Ack *harness_client_ack(void *sock, int timeout_ms);
/* Packs and sends an AgentMessage carrying r; waits for the Ack. */
Indicator__Ack *harness_send_report(
    void *sock, const Indicator__Report *r, int timeout_ms);
/*
 * Sends one report of spec: one observation of spec->industry, metric
 * output_value, period 2024, spec->value CNY_100M, status PROVISIONAL,
 * sent_at_ms now. Returns the Ack, or NULL if none decodes within
 * timeout_ms; caller frees it with indicator__ack__free_unpacked.
 */
Indicator__Ack *harness_report_one(
    void *sock, const struct harness_report *spec, int timeout_ms);
/*
 * Fails the test unless ack is not NULL, has the status, and (when code is
 * not NULL) the code. Frees ack.
 */
void harness_expect_ack(Indicator__Ack *ack, int status, const char *code);

/*
 * Runs indicatorctl with -c conf and -d data_dir (each left out when NULL)
 * followed by args (NULL-ended, at most 10), as harness_run() does: the exit
 * code, *out and *err (either may be NULL to discard).
 */
int harness_ctl_run(const char *conf, const char *data_dir,
    const char *const args[], char **out, char **err, int timeout_s);
/*
 * Runs indicatorctl -d data_dir with args (NULL-ended, at most 12) and
 * returns its standard output; caller frees. Fails the test unless it exits
 * 0 within timeout_s seconds.
 */
char *harness_ctl(
    const char *data_dir, const char *const args[], int timeout_s);

/*
 * Reading program output. harness_count_lines(): the lines that are not
 * blank; harness_count_newlines(): the newline characters;
 * harness_count_str(): the occurrences of needle (overlapping ones too).
 */
size_t harness_count_lines(const char *text);
size_t harness_count_newlines(const char *text);
size_t harness_count_str(const char *text, const char *needle);
/* The whole line of text that holds needle first, without its newline;
 * caller frees. NULL if needle is absent. */
char *harness_line_with(const char *text, const char *needle);
/*
 * Copies the value of key in a flat one-line JSON object (as indicatorctl
 * --json prints) into buf of len bytes, truncated: a string without its
 * quotes (escapes kept as written), anything else without surrounding
 * blanks. false when key is absent.
 */
bool harness_json_get(const char *line, const char *key, char *buf, size_t len);

#endif
