/*
 * libmicrohttpd on a loopback socket of our own (so that a port clash is
 * reported with its errno, not as "Failed to bind to port 0"), and the
 * exposition format's writers (promhttp.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "promhttp.h"
#include "xmalloc.h"

struct promhttp {
	struct MHD_Daemon *mhd;
	int fd;
	promhttp_fn fn;
	void *arg;
};

bool
promhttp_parse_listen(const char *s, struct sockaddr_in *sa)
{
	uint32_t addr;
	uint16_t port;
	char why[256];

	/* The rule config_load() applied to the key: one source. */
	if (config_check_listen(s, &addr, &port, why, sizeof(why)) != NULL)
		return false;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(port);
	sa->sin_addr.s_addr = htonl(addr);
	return true;
}

static enum MHD_Result
answer(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_len, void **state)
{
	struct promhttp *h = cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned status;
	char *buf = NULL;
	size_t len = 0;
	FILE *body;

	(void)version, (void)upload, (void)upload_len, (void)state;
	if ((body = open_memstream(&buf, &len)) == NULL)
		return MHD_NO; /* out of memory: drop the connection */
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		fputs("GET only\n", body);
	} else {
		status = h->fn(url, body, h->arg);
	}
	if (fclose(body) != 0 || buf == NULL) {
		free(buf);
		return MHD_NO;
	}
	resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(buf);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type",
	    strcmp(url, "/metrics") == 0
		? "text/plain; version=0.0.4; charset=utf-8"
		: "text/plain; charset=utf-8");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

struct promhttp *
promhttp_start(
    const char *listen_on, promhttp_fn fn, void *arg, char *err, size_t errlen)
{
	return promhttp_start_limited(listen_on, PROMHTTP_CONNECTIONS,
	    PROMHTTP_TIMEOUT_S, fn, arg, err, errlen);
}

struct promhttp *
promhttp_start_limited(const char *listen_on, unsigned connections,
    unsigned timeout_s, promhttp_fn fn, void *arg, char *err, size_t errlen)
{
	struct promhttp *h;
	struct sockaddr_in sa;
	int one = 1, fd;

	if (!promhttp_parse_listen(listen_on, &sa)) {
		snprintf(err, errlen,
		    "'%s' is not a loopback HOST:PORT (e.g. 127.0.0.1:9464): "
		    "the metrics are for a local scraper",
		    listen_on);
		return NULL;
	}
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "cannot listen on %s: socket: %s",
		    listen_on, strerror(errno));
		return NULL;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(fd, (int)connections) == -1) {
		snprintf(err, errlen, "cannot listen on %s: %s", listen_on,
		    strerror(errno));
		close(fd);
		return NULL;
	}
	h = xcalloc(1, sizeof(*h));
	h->fd = fd;
	h->fn = fn;
	h->arg = arg;
	h->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC,
	    0, NULL, NULL, answer, h, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
	    MHD_OPTION_CONNECTION_LIMIT, connections,
	    MHD_OPTION_CONNECTION_TIMEOUT, timeout_s, MHD_OPTION_END);
	if (h->mhd == NULL) {
		snprintf(err, errlen,
		    "cannot serve on %s: libmicrohttpd did "
		    "not start",
		    listen_on);
		close(fd);
		free(h);
		return NULL;
	}
	return h;
}

void
promhttp_stop(struct promhttp **hp)
{
	struct promhttp *h;

	if (hp == NULL || (h = *hp) == NULL)
		return;
	/* Quiesce first: the listening socket is ours to close. */
	MHD_quiesce_daemon(h->mhd);
	MHD_stop_daemon(h->mhd);
	close(h->fd);
	free(h);
	*hp = NULL;
}

void
promhttp_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* %.15g when it reads back as v, else %.17g. */
static const char *
shortest(double v, char *buf, size_t len)
{
	snprintf(buf, len, "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, len, "%.17g", v);
	return buf;
}

void
promhttp_sample(FILE *f, const char *name, const char *labels, double v)
{
	char buf[40];

	fprintf(f, "%s%s ", name, labels);
	if (isnan(v))
		fputs("NaN\n", f);
	else if (isinf(v))
		fputs(v > 0 ? "+Inf\n" : "-Inf\n", f);
	else if (v == floor(v) && fabs(v) < 9007199254740992.0)
		fprintf(f, "%.0f\n", v);
	else
		fprintf(f, "%s\n", shortest(v, buf, sizeof(buf)));
}

void
promhttp_sample_u64(FILE *f, const char *name, const char *labels, uint64_t v)
{
	fprintf(f, "%s%s %llu\n", name, labels, (unsigned long long)v);
}

/* Appends "k=\"v\"" with v escaped to buf at *off. */
static void
label_put(char *buf, size_t len, size_t *off, const char *k, const char *v)
{
	int n = snprintf(buf + *off, len - *off, "%s=\"", k);

	if (n < 0 || (size_t)n >= len - *off) {
		*off = len - 1;
		return;
	}
	*off += (size_t)n;
	for (; *v != '\0' && *off + 3 < len; v++) {
		if (*v == '\\' || *v == '"') {
			buf[(*off)++] = '\\';
			buf[(*off)++] = *v;
		} else if (*v == '\n') {
			buf[(*off)++] = '\\';
			buf[(*off)++] = 'n';
		} else {
			buf[(*off)++] = *v;
		}
	}
	if (*off + 1 < len)
		buf[(*off)++] = '"';
	buf[*off] = '\0';
}

void
promhttp_labels(char *buf, size_t len, const char *k1, const char *v1,
    const char *k2, const char *v2)
{
	size_t off = 1;

	if (len < 3) {
		if (len > 0)
			buf[0] = '\0';
		return;
	}
	buf[0] = '{';
	buf[1] = '\0';
	label_put(buf, len, &off, k1, v1);
	if (k2 != NULL && off + 1 < len) {
		buf[off++] = ',';
		buf[off] = '\0';
		label_put(buf, len, &off, k2, v2);
	}
	if (off + 1 < len) {
		buf[off++] = '}';
		buf[off] = '\0';
	}
}
