/*
 * The HTTP side, by libmicrohttpd, one thread per connection: the pages
 * (compiled in), Chart.js (read from Debian's libjs-chart.js at start), the
 * JSON and CSV of api.c, and the live feed as Server-Sent Events. Read
 * only: GET and HEAD, nothing else. Every answer carries the security
 * headers (a Content-Security-Policy that allows no inline script or
 * style, no framing, no sniffing); a Host that names neither the address
 * listened on nor loopback is refused, so that a web page elsewhere cannot
 * reach the dashboard through DNS rebinding.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "log.h"
#include "web.h"
#include "xmalloc.h"

#define SSE_KEEPALIVE_MS 15000
#define CONNECTIONS_MAX 256U
#define CONNECTION_TIMEOUT_S 60U

static struct MHD_Daemon *mhd;
static struct web *web;
static char host_port[16]; /* ":PORT" */
static char listen_host[CONFIG_ENDPOINT_MAX];

static const char csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/* The pages' paths: each is the one page, which draws the view its path
 * names. */
static const char *const pages[] = { "/", "/plan", "/path", "/matrix",
	"/history", "/reporting", NULL };

static void
headers_add(struct MHD_Response *r, const char *type, bool cache)
{
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, "Content-Security-Policy", csp);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
	MHD_add_response_header(
	    r, "Cross-Origin-Resource-Policy", "same-origin");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
	    cache ? "max-age=300" : "no-store");
}

/* Queues body (len bytes; copied) with the headers. */
static enum MHD_Result
respond(struct MHD_Connection *c, unsigned status, const char *type,
    const void *body, size_t len, bool cache, const char *disposition)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;
	headers_add(r, type, cache);
	if (disposition != NULL)
		MHD_add_response_header(
		    r, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
respond_error(struct MHD_Connection *c, unsigned status, const char *why)
{
	json_t *j = json_pack("{s:s}", "error", why);
	char *text = api_dump(j);
	enum MHD_Result ret = respond(c, status,
	    "application/json; charset=utf-8", text, strlen(text), false, NULL);

	free(text);
	json_decref(j);
	return ret;
}

static const char *
param(void *arg, const char *name)
{
	return MHD_lookup_connection_value(
	    (struct MHD_Connection *)arg, MHD_GET_ARGUMENT_KIND, name);
}

/* One endpoint: its JSON, or its table as CSV with ?format=csv. */
static enum MHD_Result
api(struct MHD_Connection *c, const char *what)
{
	const char *format = param(c, "format"), *why = "not_found";
	unsigned status = MHD_HTTP_NOT_FOUND;
	bool csv = format != NULL && strcmp(format, "csv") == 0;
	json_t *j = NULL;
	enum MHD_Result ret;
	char *text, disposition[96];
	size_t len;

	if (strcmp(what, "registry") == 0)
		j = api_registry(web);
	else if (strcmp(what, "status") == 0)
		j = api_status(web);
	else if (strcmp(what, "plan") == 0)
		j = api_plan(web);
	else if (strcmp(what, "path") == 0)
		j = api_path(web, param, c, &status, &why);
	else if (strcmp(what, "matrix") == 0)
		j = api_matrix(web, param, c, &status, &why);
	else if (strcmp(what, "history") == 0)
		j = api_history(web, param, c, &status, &why);
	else if (strcmp(what, "expected") == 0)
		j = api_expected(web, param, c, &status, &why);
	else if (strcmp(what, "agents") == 0)
		j = api_agents(web, &status, &why);
	if (j == NULL)
		return respond_error(c, status, why);
	if (csv && strcmp(what, "registry") != 0 &&
	    strcmp(what, "status") != 0) {
		text = api_csv(web, what, j, &len);
		snprintf(disposition, sizeof(disposition),
		    "attachment; filename=\"indicator-%s.csv\"", what);
		ret = respond(c, MHD_HTTP_OK, "text/csv; charset=utf-8", text,
		    len, false, disposition);
	} else {
		text = api_dump(j);
		ret = respond(c, MHD_HTTP_OK, "application/json; charset=utf-8",
		    text, strlen(text), false, NULL);
	}
	free(text);
	json_decref(j);
	return ret;
}

/* A live page's stream: what is left of the text in hand, then the next
 * event (or a keep-alive comment). */
struct sse {
	uint64_t next;
	char *text;
	size_t off;
};

static ssize_t
sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse *e = cls;
	struct state *s = web->state;
	size_t n;
	bool quit;

	(void)pos;
	if (e->text == NULL || e->text[e->off] == '\0') {
		free(e->text);
		e->off = 0;
		state_lock(s);
		e->text = state_event_wait(s, &e->next, SSE_KEEPALIVE_MS);
		quit = s->quit;
		state_unlock(s);
		if (quit) {
			free(e->text);
			e->text = NULL;
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
		if (e->text == NULL)
			e->text = xstrdup(": keep-alive\n\n");
	}
	n = strlen(e->text + e->off);
	if (n > max)
		n = max;
	memcpy(buf, e->text + e->off, n);
	e->off += n;
	return (ssize_t)n;
}

static void
sse_free(void *cls)
{
	struct sse *e = cls;

	free(e->text);
	free(e);
}

static enum MHD_Result
events(struct MHD_Connection *c)
{
	struct sse *e = xcalloc(1, sizeof(*e));
	struct MHD_Response *r;
	enum MHD_Result ret;
	json_t *st = api_status(web);
	char *data = api_dump(st);
	size_t len = strlen(data) + 64;

	json_decref(st);
	state_lock(web->state);
	e->next = web->state->next_event;
	state_unlock(web->state);
	/* The page reloads its figures on "hello" too: what changed while
	 * it connected is then in them. */
	e->text = xmalloc(len);
	snprintf(e->text, len, "retry: 2000\nevent: hello\ndata: %s\n\n", data);
	free(data);
	r = MHD_create_response_from_callback(
	    MHD_SIZE_UNKNOWN, 4096, sse_read, e, sse_free);
	if (r == NULL) {
		sse_free(e);
		return MHD_NO;
	}
	headers_add(r, "text/event-stream; charset=utf-8", false);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static const struct web_asset *
asset_find(const char *path)
{
	for (size_t i = 0; web_assets[i].path != NULL; i++)
		if (strcmp(web_assets[i].path, path) == 0)
			return &web_assets[i];
	return NULL;
}

/* The Host header names this server: the address listened on or a
 * loopback name, with the port (or none, for port 80). */
static bool
host_ok(struct MHD_Connection *c)
{
	static const char *const names[] = { "127.0.0.1", "localhost", "[::1]",
		listen_host, NULL };
	const char *host = MHD_lookup_connection_value(
	    c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	size_t len;

	if (host == NULL || web->allow_remote)
		return true;
	for (size_t i = 0; names[i] != NULL; i++) {
		len = strlen(names[i]);
		if (strncasecmp(host, names[i], len) == 0 &&
		    (host[len] == '\0' || strcmp(host + len, host_port) == 0))
			return true;
	}
	return false;
}

static enum MHD_Result
answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size,
    void **req_cls)
{
	const struct web_asset *a;

	(void)cls;
	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)req_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond_error(
		    c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed");
	if (!host_ok(c))
		return respond_error(
		    c, MHD_HTTP_MISDIRECTED_REQUEST, "unknown_host");
	for (size_t i = 0; pages[i] != NULL; i++)
		if (strcmp(url, pages[i]) == 0)
			url = "/index.html";
	if (strncmp(url, "/api/", 5) == 0)
		return api(c, url + 5);
	if (strcmp(url, "/events") == 0)
		return events(c);
	if (strcmp(url, "/chart.min.js") == 0) {
		if (web->chartjs == NULL)
			return respond_error(
			    c, MHD_HTTP_NOT_FOUND, "no_chartjs");
		return respond(c, MHD_HTTP_OK, "text/javascript; charset=utf-8",
		    web->chartjs, web->chartjs_len, true, NULL);
	}
	if (strcmp(url, "/favicon.ico") == 0)
		url = "/favicon.svg";
	if ((a = asset_find(url)) != NULL)
		return respond(c, MHD_HTTP_OK, a->type, a->data, a->len,
		    strcmp(a->path, "/index.html") != 0, NULL);
	return respond_error(c, MHD_HTTP_NOT_FOUND, "not_found");
}

/* libmicrohttpd's own messages, through the log module. */
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	log_warn("http: %s", line);
}

/* True for 127.0.0.0/8 and ::1 (and ::ffff:127.x). */
static bool
loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)
				  ->sin_addr.s_addr) >>
			   24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
		    &((const struct sockaddr_in6 *)sa)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

int
http_start(struct web *w)
{
	struct addrinfo hints = { 0 }, *ai = NULL;
	char host[CONFIG_ENDPOINT_MAX], *colon;
	const char *port;
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
			 MHD_USE_ERROR_LOG;
	int rc;

	web = w;
	strlcpy_ok(host, w->listen, sizeof(host));
	if ((colon = strrchr(host, ':')) == NULL) {
		log_error("http: --listen wants HOST:PORT, not "
			  "'%s'",
		    w->listen);
		return -1;
	}
	*colon = '\0';
	port = colon + 1;
	snprintf(host_port, sizeof(host_port), ":%.8s", port);
	strlcpy_ok(listen_host, host, sizeof(listen_host));
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0) {
		log_error("http: --listen %s: %s", w->listen, gai_strerror(rc));
		return -1;
	}
	if (!loopback(ai->ai_addr) && !w->allow_remote) {
		log_error(
		    "http: %s is not a loopback address: the "
		    "dashboard has no TLS and no login of its own; put it "
		    "behind a proxy that has them (README, \"The "
		    "dashboard\"), or give --allow-remote",
		    w->listen);
		freeaddrinfo(ai);
		return -1;
	}
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	mhd = MHD_start_daemon(flags, 0, NULL, NULL, answer, NULL,
	    MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
	    CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
	    CONNECTION_TIMEOUT_S, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_END);
	freeaddrinfo(ai);
	if (mhd == NULL) {
		log_error("http: cannot listen on %s: %s", w->listen,
		    strerror(errno));
		return -1;
	}
	return 0;
}

void
http_stop(void)
{
	if (mhd == NULL)
		return;
	state_quit(web->state);
	MHD_stop_daemon(mhd);
	mhd = NULL;
}
