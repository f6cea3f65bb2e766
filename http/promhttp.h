/*
 * A small HTTP endpoint for a Prometheus scraper: libmicrohttpd answering
 * from its own thread on a loopback address, and the helpers that write
 * the text exposition format (version 0.0.4). The daemon serves its
 * metrics with it (daemon/metrics.c), and so does the agent
 * (agents/agent_metrics.c).
 *
 * The page is written into a growing buffer (open_memstream): no size
 * limit, nothing truncated.
 */
#ifndef INDICATOR_PROMHTTP_H
#define INDICATOR_PROMHTTP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Writes the answer to a GET (or HEAD) of path ("/metrics", "/healthz"
 * ...) into body and returns the HTTP status: 200, 404 for an unknown
 * path, 503 when not healthy or not ready. Called on libmicrohttpd's
 * thread: it must only read state that the caller publishes for it under
 * a lock.
 */
typedef unsigned (*promhttp_fn)(const char *path, FILE *body, void *arg);

struct promhttp;

/* promhttp.c */

/* "127.0.0.1:9464" (or "localhost:9464") into *sa; false unless it is an
 * IPv4 loopback address and a port 1-65535. */
bool promhttp_parse_listen(const char *s, struct sockaddr_in *sa);

/*
 * Listens on listen (a loopback HOST:PORT) and answers each request with
 * fn(path, body, arg). NULL with the reason in err ("'0.0.0.0:9464' is not
 * a loopback HOST:PORT", "cannot listen on 127.0.0.1:9464: Address already
 * in use"). Caller owns the result.
 */
struct promhttp *promhttp_start(
    const char *listen, promhttp_fn fn, void *arg, char *err, size_t errlen);
/*
 * The same with the connections served at once (more wait in the listen
 * backlog of the same length, then are refused by the kernel) and the idle
 * time after which a connection that has not sent its request, or is not
 * reading its answer, is closed: a crowd of half-open requests holds the
 * port for timeout_s at most, and every request then gets its turn.
 * promhttp_start() uses PROMHTTP_CONNECTIONS and PROMHTTP_TIMEOUT_S.
 */
#define PROMHTTP_CONNECTIONS 16U
#define PROMHTTP_TIMEOUT_S 10U
struct promhttp *promhttp_start_limited(const char *listen,
    unsigned connections, unsigned timeout_s, promhttp_fn fn, void *arg,
    char *err, size_t errlen);
/* Stops answering and closes the socket; accepts NULL and *h == NULL and
 * sets *h to NULL. */
void promhttp_stop(struct promhttp **h);

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram):
 * once per metric family, before its samples. */
void promhttp_family(
    FILE *f, const char *name, const char *type, const char *help);
/* "name{labels} value": labels "" or as from promhttp_labels(); integers
 * below 2^53 printed as integers, others with the digits that read back
 * exactly (15, else 17), and +Inf, -Inf, NaN as Prometheus spells them. */
void promhttp_sample(FILE *f, const char *name, const char *labels, double v);
/* The same for a 64-bit counter, every digit kept. */
void promhttp_sample_u64(
    FILE *f, const char *name, const char *labels, uint64_t v);
/* {k1="v1"} or, with k2 not NULL, {k1="v1",k2="v2"} into buf, the values
 * escaped (backslash, double quote, line feed); truncated to len. */
void promhttp_labels(char *buf, size_t len, const char *k1, const char *v1,
    const char *k2, const char *v2);

#endif
