/*
 * Configuration files, parsed by libinih. Scalar keys are rows of a table
 * (section, key, type, bounds, default); the registry sections
 * ([district CODE], [industry CODE], [metric CODE], [target]) are handled by
 * their own functions. A later line overrides an earlier one for the same
 * key, so a file may end with overrides of the defaults above it, and a
 * drop-in overrides the file.
 *
 * The registry is all or nothing: the built-in one unless the files define
 * any district, industry, metric or target, then exactly what they define.
 * Per kind (districts from the files, targets built in) a one-line drop-in
 * could shrink ten districts to one and still pass every check; as a whole,
 * a partial registry fails registry_check() and says why.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "encoding.h"
#include "xmalloc.h"

enum ctype {
	CT_STR, /* char array of size `size` */
	CT_ENDPOINT, /* CT_STR holding an endpoint; min 1: must be set */
	CT_LISTEN, /* CT_STR holding a loopback HOST:PORT, or empty */
	CT_ZONE, /* CT_STR holding a time zone name */
	CT_UINT, /* unsigned */
	CT_INT, /* int */
	CT_MB, /* megabytes into a uint64_t of bytes */
	CT_SYNC, /* enum config_sync */
	CT_LOG, /* enum config_log */
	CT_LOGFMT, /* enum config_log_format */
	CT_BOOL, /* bool: true or false */
	CT_ENCODING, /* enum encoding (encoding.h) */
};

struct crow {
	const char *section;
	const char *key;
	enum ctype type;
	size_t off;
	size_t size;
	long long min;
	long long max;
	const char *def;
};

#define C(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)
#define A(f) \
	offsetof(struct agent_config, f), sizeof(((struct agent_config *)0)->f)

static const struct crow daemon_rows[] = {
	{ "daemon", "ingest", CT_ENDPOINT, C(ingest), 1, 0,
	    "tcp://127.0.0.1:7401" },
	{ "daemon", "publish", CT_ENDPOINT, C(publish), 1, 0,
	    "tcp://127.0.0.1:7402" },
	{ "daemon", "snapshot", CT_ENDPOINT, C(snapshot), 1, 0,
	    "tcp://127.0.0.1:7403" },
	{ "daemon", "data_dir", CT_STR, C(data_dir), 0, 0, "" },
	{ "daemon", "map_size_mb", CT_MB, C(map_size), 1, 1 << 20, "64" },
	{ "daemon", "map_max_mb", CT_MB, C(map_max), 1, 1 << 24, "16384" },
	{ "daemon", "batch_max", CT_UINT, C(batch_max), 1, 100000, "1000" },
	{ "daemon", "checkpoint_ms", CT_UINT, C(checkpoint_ms), 1, 3600000,
	    "1000" },
	{ "daemon", "checkpoint_entries", CT_UINT, C(checkpoint_entries), 1,
	    10000000, "100000" },
	{ "daemon", "checkpoint_idle_ms", CT_UINT, C(checkpoint_idle_ms), 0,
	    3600000, "5" },
	{ "daemon", "pub_hwm", CT_UINT, C(pub_hwm), 1, 10000000, "100000" },
	/* Memory budgets (README, "Budgets"). */
	{ "daemon", "batch_mb", CT_MB, C(batch_bytes), 1, 4096, "16" },
	{ "daemon", "connection_batch_mb", CT_MB, C(conn_batch_bytes), 1, 4096,
	    "4" },
	{ "daemon", "connection_queue_mb", CT_MB, C(conn_queue_bytes), 1, 4096,
	    "16" },
	{ "daemon", "answers_mb", CT_MB, C(answer_bytes), 1, 4096, "64" },
	{ "daemon", "subscriber_mb", CT_MB, C(subscriber_bytes), 1, 4096, "4" },
	{ "daemon", "snapshot_queue", CT_UINT, C(snapshot_queue), 1, 1000,
	    "4" },
	{ "daemon", "handshake_ms", CT_UINT, C(handshake_ms), 100, 600000,
	    "5000" },
	{ "daemon", "metrics_connections", CT_UINT, C(metrics_connections), 1,
	    10000, "32" },
	{ "daemon", "metrics_timeout_s", CT_UINT, C(metrics_timeout_s), 1, 3600,
	    "5" },
	{ "daemon", "sync", CT_SYNC, C(sync), 0, 0, "full" },
	{ "daemon", "log_level", CT_LOG, C(log_level), 0, 0, "info" },
	{ "daemon", "log_format", CT_LOGFMT, C(log_format), 0, 0, "plain" },
	{ "daemon", "timezone", CT_ZONE, C(timezone), 0, 0, "Asia/Shanghai" },
	{ "daemon", "curve", CT_BOOL, C(curve), 0, 0, "false" },
	{ "daemon", "secret_key_file", CT_STR, C(secret_key_file), 0, 0, "" },
	{ "daemon", "authorised_agents", CT_STR, C(authorised_agents), 0, 0,
	    "" },
	{ "daemon", "feed_curve", CT_BOOL, C(feed_curve), 0, 0, "false" },
	{ "daemon", "subscriber_keys", CT_STR, C(subscriber_keys), 0, 0, "" },
	{ "daemon", "allow_insecure_remote", CT_BOOL, C(allow_insecure_remote),
	    0, 0, "false" },
	{ "daemon", "rate_limit", CT_UINT, C(rate_limit), 0, 10000000, "0" },
	{ "daemon", "control", CT_ENDPOINT, C(control), 0, 0, "" },
	{ "daemon", "metrics", CT_LISTEN, C(metrics), 0, 0, "" },
	{ "limits", "max_observations", CT_UINT, C(limits.max_observations), 1,
	    100000, "1000" },
	{ "limits", "max_agent_id", CT_UINT, C(limits.max_agent_id), 1,
	    IND_AGENT_ID_MAX, "64" },
	{ "limits", "max_note", CT_UINT, C(limits.max_note), 0, IND_NOTE_MAX,
	    "256" },
	{ "limits", "max_message_bytes", CT_UINT, C(limits.max_message_bytes),
	    1024, 64 << 20, "1048576" },
	{ "limits", "max_ack_errors", CT_UINT, C(limits.max_ack_errors), 1,
	    100000, "100" },
	{ "registry", "first_year", CT_INT, C(reg.first_year), 1900, 9999,
	    "2015" },
};

static const struct crow agent_rows[] = {
	{ "agent", "id", CT_STR, A(id), 0, 0, "" },
	{ "agent", "district", CT_STR, A(district), 0, 0, "" },
	{ "agent", "endpoint", CT_ENDPOINT, A(endpoint), 1, 0,
	    "tcp://127.0.0.1:7401" },
	{ "agent", "outbox", CT_STR, A(outbox), 0, 0,
	    "./indicator-agent-outbox" },
	{ "agent", "window", CT_UINT, A(window), 1, 10000, "100" },
	{ "agent", "ack_timeout_ms", CT_UINT, A(ack_timeout_ms), 100, 600000,
	    "5000" },
	{ "agent", "report_size", CT_UINT, A(report_size), 1, 100000, "50" },
	{ "agent", "heartbeat_ms", CT_UINT, A(heartbeat_ms), 0, 3600000, "0" },
	{ "agent", "drop_dir", CT_STR, A(drop_dir), 0, 0, "./drop" },
	{ "agent", "log_format", CT_LOGFMT, A(log_format), 0, 0, "plain" },
	{ "agent", "server_key", CT_STR, A(server_key), 0, 0, "" },
	{ "agent", "public_key_file", CT_STR, A(public_key_file), 0, 0, "" },
	{ "agent", "secret_key_file", CT_STR, A(secret_key_file), 0, 0, "" },
	{ "agent", "metrics", CT_LISTEN, A(metrics), 0, 0, "" },
	{ "agent", "timezone", CT_ZONE, A(timezone), 0, 0, "Asia/Shanghai" },
	{ "agent", "encoding", CT_ENCODING, A(encoding), 0, 0, "auto" },
	/* The daemon's limits, for check: the same rows as its file's. */
	{ "limits", "max_observations", CT_UINT, A(limits.max_observations), 1,
	    100000, "1000" },
	{ "limits", "max_agent_id", CT_UINT, A(limits.max_agent_id), 1,
	    IND_AGENT_ID_MAX, "64" },
	{ "limits", "max_note", CT_UINT, A(limits.max_note), 0, IND_NOTE_MAX,
	    "256" },
	{ "limits", "max_message_bytes", CT_UINT, A(limits.max_message_bytes),
	    1024, 64 << 20, "1048576" },
	{ "limits", "max_ack_errors", CT_UINT, A(limits.max_ack_errors), 1,
	    100000, "100" },
	{ "registry", "first_year", CT_INT, A(reg.first_year), 1900, 9999,
	    "2015" },
};

#define NROWS(t) (sizeof(t) / sizeof((t)[0]))

/* The state of one parse, over the file and its drop-ins. */
struct parse {
	struct config *cfg; /* daemon file, or NULL */
	struct agent_config *acfg; /* agent file, or NULL */
	struct registry *reg; /* the registry either defines */
	const char *name; /* the file being read */
	/* The first file that defined part of the registry; "" while none
	 * has. */
	char reg_file[CONFIG_PATH_MAX];
	char err[512]; /* first error of the file being read */
};

static int fail(struct parse *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static int
fail(struct parse *p, const char *fmt, ...)
{
	va_list ap;

	if (p->err[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(p->err, sizeof(p->err), fmt, ap);
		va_end(ap);
	}
	return 0; /* inih: 0 is an error */
}

static bool
parse_ll(const char *s, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno == 0 && end != s && *end == '\0';
}

static bool
parse_double(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return errno == 0 && end != s && *end == '\0' && isfinite(*out);
}

/* tcp://HOST:PORT: HOST not empty (a name, an address, [IPv6] or * for
 * every interface), PORT a decimal from 1 to 65535. */
static bool
tcp_ok(const char *rest)
{
	const char *colon = strrchr(rest, ':');
	long long port;

	if (colon == NULL || colon == rest || strchr(rest, '/') != NULL)
		return false;
	if (rest[0] == '[' && colon[-1] != ']')
		return false;
	if (!isdigit((unsigned char)colon[1]) || !parse_ll(colon + 1, &port))
		return false;
	return port >= 1 && port <= 65535;
}

const char *
config_check_endpoint(const char *ep, char *why, size_t len)
{
	static const char form[] =
	    "expected tcp://HOST:PORT (e.g. tcp://127.0.0.1:7401) or "
	    "ipc://PATH";

	if (strncmp(ep, "tcp://", 6) == 0) {
		if (tcp_ok(ep + 6))
			return NULL;
		snprintf(why, len,
		    "'%s' is not tcp://HOST:PORT (a port from 1 "
		    "to 65535)",
		    ep);
		return why;
	}
	if (strncmp(ep, "ipc://", 6) == 0) {
		if (ep[6] != '\0')
			return NULL;
		snprintf(
		    why, len, "'%s' names no path: expected ipc://PATH", ep);
		return why;
	}
	if (strstr(ep, "://") == NULL)
		snprintf(why, len, "'%s' has no scheme: %s", ep, form);
	else
		snprintf(why, len, "'%s': unknown scheme: %s", ep, form);
	return why;
}

const char *
config_check_listen(
    const char *s, uint32_t *addr, uint16_t *port, char *why, size_t len)
{
	const char *colon = strrchr(s, ':');
	struct in_addr in;
	char host[64];
	long long n;

	if (colon == NULL) {
		snprintf(why, len,
		    "'%s' has no port: expected a loopback HOST:PORT, e.g. "
		    "127.0.0.1:9464",
		    s);
		return why;
	}
	if (!isdigit((unsigned char)colon[1]) || !parse_ll(colon + 1, &n) ||
	    n < 1 || n > 65535) {
		snprintf(why, len,
		    "'%s': the port must be a number from 1 to 65535", s);
		return why;
	}
	if ((size_t)(colon - s) >= sizeof(host))
		colon = s; /* too long to be an address: refused below */
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &in) != 1) {
		snprintf(why, len,
		    "'%s': the host must be an IPv4 loopback address (e.g. "
		    "127.0.0.1) or localhost",
		    s);
		return why;
	}
	if ((ntohl(in.s_addr) >> 24) != 127) {
		snprintf(why, len,
		    "'%s' is not on loopback: the metrics are for a local "
		    "scraper; use 127.0.0.1:PORT",
		    s);
		return why;
	}
	if (addr != NULL)
		*addr = ntohl(in.s_addr);
	if (port != NULL)
		*port = (uint16_t)n;
	return NULL;
}

/* A tz database name: letters, digits, '_', '-', '+' and '/' between
 * names, never absolute or climbing out with "..". */
static bool
zone_name_ok(const char *tz)
{
	if (tz[0] == '\0' || tz[0] == '/' || strstr(tz, "..") != NULL)
		return false;
	for (const char *c = tz; *c != '\0'; c++)
		if (!isalnum((unsigned char)*c) && strchr("_-+/", *c) == NULL)
			return false;
	return true;
}

const char *
config_check_zone(const char *tz, const char *tzdir, char *why, size_t len)
{
	char path[CONFIG_PATH_MAX + 64], magic[4];
	struct stat st;
	ssize_t n = -1;
	int fd;

	if (!zone_name_ok(tz)) {
		snprintf(why, len,
		    "time zone '%s' is not a tz database name such as "
		    "Asia/Shanghai",
		    tz);
		return why;
	}
	if (tzdir == NULL || tzdir[0] == '\0')
		tzdir = "/usr/share/zoneinfo";
	snprintf(path, sizeof(path), "%s/%s", tzdir, tz);
	/* glibc silently takes an unknown zone for UTC: insist on the file,
	 * and on a TZif one (a directory such as "Asia" would open). */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
			n = read(fd, magic, sizeof(magic));
		close(fd);
	}
	if (n != (ssize_t)sizeof(magic) || memcmp(magic, "TZif", 4) != 0) {
		snprintf(why, len,
		    "time zone '%s' is unknown: %s is not a zone file (the "
		    "tz database is Debian's tzdata package)",
		    tz, path);
		return why;
	}
	return NULL;
}

/* Sets one table row from its text; 1 on success, 0 (inih's error) with
 * "label: reason" in p->err. label names the key: "[section] key" for a
 * line of a file, the option for the command line. */
static int
row_set(struct parse *p, void *base, const struct crow *r, const char *val,
    const char *label)
{
	char *dst = (char *)base + r->off;
	char why[384];
	long long n;

	switch (r->type) {
	case CT_STR:
	case CT_ENDPOINT:
	case CT_LISTEN:
	case CT_ZONE:
		if (r->type == CT_ENDPOINT && val[0] == '\0' && r->min > 0)
			return fail(p, "%s: must be set: %s", label,
			    "expected tcp://HOST:PORT or ipc://PATH");
		if (r->type == CT_ENDPOINT && val[0] != '\0' &&
		    config_check_endpoint(val, why, sizeof(why)) != NULL)
			return fail(p, "%s: %s", label, why);
		if (r->type == CT_LISTEN && val[0] != '\0' &&
		    config_check_listen(val, NULL, NULL, why, sizeof(why)) !=
			NULL)
			return fail(p, "%s: %s", label, why);
		if (r->type == CT_ZONE && !zone_name_ok(val))
			return fail(p,
			    "%s: '%s' is not a tz database name such as "
			    "Asia/Shanghai",
			    label, val);
		if (!strlcpy_ok(dst, val, r->size))
			return fail(
			    p, "%s: longer than %zu bytes", label, r->size - 1);
		return 1;
	case CT_SYNC:
		if (strcmp(val, "full") == 0)
			*(enum config_sync *)dst = CONFIG_SYNC_FULL;
		else if (strcmp(val, "nometasync") == 0)
			*(enum config_sync *)dst = CONFIG_SYNC_NOMETASYNC;
		else if (strcmp(val, "none") == 0)
			*(enum config_sync *)dst = CONFIG_SYNC_NONE;
		else
			return fail(p,
			    "%s: '%s' is not full, nometasync or none", label,
			    val);
		return 1;
	case CT_LOG:
		if (strcmp(val, "error") == 0)
			*(enum config_log *)dst = CONFIG_LOG_ERROR;
		else if (strcmp(val, "warning") == 0)
			*(enum config_log *)dst = CONFIG_LOG_WARNING;
		else if (strcmp(val, "info") == 0)
			*(enum config_log *)dst = CONFIG_LOG_INFO;
		else if (strcmp(val, "debug") == 0)
			*(enum config_log *)dst = CONFIG_LOG_DEBUG;
		else
			return fail(p,
			    "%s: '%s' is not error, warning, info or debug",
			    label, val);
		return 1;
	case CT_LOGFMT:
		if (strcmp(val, "plain") == 0)
			*(enum config_log_format *)dst = CONFIG_LOG_PLAIN;
		else if (strcmp(val, "json") == 0)
			*(enum config_log_format *)dst = CONFIG_LOG_JSON;
		else
			return fail(
			    p, "%s: '%s' is not plain or json", label, val);
		return 1;
	case CT_ENCODING:
		if (!encoding_parse(val, (enum encoding *)dst))
			return fail(p,
			    "%s: '%s' is not auto, utf-8, utf-16le, utf-16be "
			    "or gb18030",
			    label, val);
		return 1;
	case CT_BOOL:
		if (strcmp(val, "true") == 0)
			*(bool *)dst = true;
		else if (strcmp(val, "false") == 0)
			*(bool *)dst = false;
		else
			return fail(
			    p, "%s: '%s' is not true or false", label, val);
		return 1;
	case CT_UINT:
	case CT_INT:
	case CT_MB:
		if (!parse_ll(val, &n))
			return fail(
			    p, "%s: '%s' is not an integer", label, val);
		if (n < r->min || n > r->max)
			return fail(p, "%s: %lld is outside %lld..%lld", label,
			    n, r->min, r->max);
		if (r->type == CT_UINT)
			*(unsigned *)dst = (unsigned)n;
		else if (r->type == CT_INT)
			*(int *)dst = (int)n;
		else
			*(uint64_t *)dst = (uint64_t)n << 20;
		return 1;
	}
	return fail(p, "%s: internal: bad row type", label);
}

static void
rows_defaults(void *base, const struct crow *rows, size_t n)
{
	struct parse p = { 0 };

	for (size_t i = 0; i < n; i++)
		(void)row_set(&p, base, &rows[i], rows[i].def, rows[i].key);
}

static const struct crow *
rows_find(const struct crow *rows, size_t n, const char *section,
    const char *key, bool *known_section)
{
	*known_section = false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(rows[i].section, section) != 0)
			continue;
		*known_section = true;
		if (strcmp(rows[i].key, key) == 0)
			return &rows[i];
	}
	return NULL;
}

static int
rows_handle(struct parse *p, void *base, const struct crow *rows, size_t n,
    const char *section, const char *key, const char *val)
{
	const struct crow *r;
	bool known_section;
	char label[128];

	if ((r = rows_find(rows, n, section, key, &known_section)) != NULL) {
		snprintf(label, sizeof(label), "[%s] %s", section, key);
		return row_set(p, base, r, val, label);
	}
	if (known_section)
		return fail(p, "[%s]: unknown key '%s'", section, key);
	return fail(p, "unknown section [%s]", section);
}

/* config_set() and agent_config_set(): one row from the command line. */
static int
rows_set(void *base, const struct crow *rows, size_t n, const char *section,
    const char *key, const char *val, const char *what, char *err,
    size_t errlen)
{
	struct parse p = { 0 };
	const struct crow *r;
	bool known_section;
	char label[128];

	if ((r = rows_find(rows, n, section, key, &known_section)) == NULL) {
		snprintf(err, errlen, "%s: no key [%s] %s", what, section, key);
		return -1;
	}
	snprintf(label, sizeof(label), "%s (%s)", what, key);
	if (row_set(&p, base, r, val, label) == 0) {
		snprintf(err, errlen, "%s", p.err);
		return -1;
	}
	return 0;
}

/* A registry code: letters, digits, '_' and '-', at most IND_CODE_MAX. */
static bool
code_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > IND_CODE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

/* "district 320583" -> kind "district", code "320583". */
static bool
split_section(const char *section, const char *kind, const char **code)
{
	size_t n = strlen(kind);

	if (strncmp(section, kind, n) != 0 || section[n] != ' ')
		return false;
	*code = section + n + 1;
	return true;
}

/* key aliases = NAME, NAME... of (kind, code), in section [what code] or
 * [what] when code is a key of it. */
static int
set_aliases(struct parse *p, enum reg_kind kind, const char *what,
    const char *code, const char *val)
{
	char why[256];

	if (registry_set_aliases(p->reg, kind, code, val, why, sizeof(why)) !=
	    NULL)
		return fail(p, "[%s%s%s] aliases: %s", what,
		    kind == REG_COLUMN || kind == REG_STATUS ? "" : " ",
		    kind == REG_COLUMN || kind == REG_STATUS ? "" : code, why);
	return 1;
}

static int
handle_named(struct parse *p, const char *kind, const char *code,
    const char *key, const char *val)
{
	struct registry *reg = p->reg;
	char *name;

	if (!code_ok(code))
		return fail(p,
		    "[%s %s]: a code is 1 to %d letters, digits, '_' or '-'",
		    kind, code, IND_CODE_MAX);
	if (strcmp(key, "name") != 0 &&
	    (strcmp(key, "aliases") != 0 || strcmp(kind, "district") == 0))
		return fail(p, "[%s %s]: unknown key '%s'", kind, code, key);
	if (strcmp(kind, "district") == 0) {
		struct reg_district *d =
		    (struct reg_district *)registry_district(reg, code);

		if (d == NULL) {
			if (reg->ndistricts == REG_DISTRICTS_MAX)
				return fail(p, "more than %d districts",
				    REG_DISTRICTS_MAX);
			d = &reg->districts[reg->ndistricts++];
			strlcpy_ok(d->code, code, sizeof(d->code));
		}
		name = d->name;
	} else {
		struct reg_industry *in =
		    (struct reg_industry *)registry_industry(reg, code);

		if (in == NULL) {
			if (reg->nindustries == REG_INDUSTRIES_MAX)
				return fail(p, "more than %d industries",
				    REG_INDUSTRIES_MAX);
			in = &reg->industries[reg->nindustries++];
			strlcpy_ok(in->code, code, sizeof(in->code));
		}
		if (strcmp(key, "aliases") == 0)
			return set_aliases(
			    p, REG_INDUSTRY, "industry", code, val);
		name = in->name;
	}
	if (!strlcpy_ok(name, val, IND_NAME_MAX + 1))
		return fail(p, "[%s %s] name: longer than %d bytes", kind, code,
		    IND_NAME_MAX);
	return 1;
}

/* accept = UNIT:FACTOR UNIT:FACTOR ... */
static int
metric_accept(struct parse *p, struct reg_metric *m, const char *val)
{
	char buf[256], *save = NULL, *tok;

	if (!strlcpy_ok(buf, val, sizeof(buf)))
		return fail(p, "[metric %s] accept: too long", m->code);
	m->naccept = 0;
	for (tok = strtok_r(buf, " \t", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t", &save)) {
		char *colon = strchr(tok, ':');
		struct reg_unit *u;

		if (colon == NULL)
			return fail(p,
			    "[metric %s] accept: '%s' is not UNIT:FACTOR",
			    m->code, tok);
		*colon = '\0';
		if (m->naccept == REG_UNITS_MAX)
			return fail(p, "[metric %s] accept: more than %d units",
			    m->code, REG_UNITS_MAX);
		u = &m->accept[m->naccept];
		if (!code_ok(tok) || strlen(tok) > IND_UNIT_MAX)
			return fail(p, "[metric %s] accept: bad unit '%s'",
			    m->code, tok);
		strlcpy_ok(u->code, tok, sizeof(u->code));
		if (!parse_double(colon + 1, &u->factor) || !(u->factor > 0))
			return fail(p,
			    "[metric %s] accept: factor of %s must be a "
			    "number above 0",
			    m->code, tok);
		m->naccept++;
	}
	if (m->naccept == 0)
		return fail(p, "[metric %s] accept: no unit", m->code);
	return 1;
}

static int
handle_metric(
    struct parse *p, const char *code, const char *key, const char *val)
{
	struct registry *reg = p->reg;
	struct reg_metric *m = (struct reg_metric *)registry_metric(reg, code);

	if (!code_ok(code))
		return fail(p,
		    "[metric %s]: a code is 1 to %d letters, digits, '_' or "
		    "'-'",
		    code, IND_CODE_MAX);
	if (m == NULL) {
		if (reg->nmetrics == REG_METRICS_MAX)
			return fail(p, "more than %d metrics", REG_METRICS_MAX);
		m = &reg->metrics[reg->nmetrics++];
		memset(m, 0, sizeof(*m));
		strlcpy_ok(m->code, code, sizeof(m->code));
	}
	if (strcmp(key, "name") == 0) {
		if (!strlcpy_ok(m->name, val, sizeof(m->name)))
			return fail(p, "[metric %s] name: too long", code);
	} else if (strcmp(key, "kind") == 0) {
		if (strcmp(val, "flow") == 0)
			m->kind = METRIC_FLOW;
		else if (strcmp(val, "stock") == 0)
			m->kind = METRIC_STOCK;
		else
			return fail(p,
			    "[metric %s] kind: '%s' is not flow or stock", code,
			    val);
	} else if (strcmp(key, "unit") == 0) {
		if (!code_ok(val) || strlen(val) > IND_UNIT_MAX)
			return fail(
			    p, "[metric %s] unit: bad unit '%s'", code, val);
		strlcpy_ok(m->unit, val, sizeof(m->unit));
	} else if (strcmp(key, "accept") == 0) {
		return metric_accept(p, m, val);
	} else if (strcmp(key, "aliases") == 0) {
		return set_aliases(p, REG_METRIC, "metric", code, val);
	} else if (strcmp(key, "max") == 0) {
		if (!parse_double(val, &m->max) || !(m->max > 0))
			return fail(p,
			    "[metric %s] max: '%s' is not a number above 0",
			    code, val);
	} else if (strcmp(key, "integer") == 0) {
		if (strcmp(val, "true") == 0)
			m->integer = true;
		else if (strcmp(val, "false") == 0)
			m->integer = false;
		else
			return fail(p,
			    "[metric %s] integer: '%s' is not true or false",
			    code, val);
	} else {
		return fail(p, "[metric %s]: unknown key '%s'", code, key);
	}
	return 1;
}

/* [unit CODE] aliases = ... */
static int
handle_unit(struct parse *p, const char *code, const char *key, const char *val)
{
	if (!code_ok(code) || strlen(code) > IND_UNIT_MAX)
		return fail(p,
		    "[unit %s]: a unit is 1 to %d letters, digits, '_' or '-'",
		    code, IND_UNIT_MAX);
	if (strcmp(key, "aliases") != 0)
		return fail(p, "[unit %s]: unknown key '%s'", code, key);
	return set_aliases(p, REG_UNIT, "unit", code, val);
}

/* [columns] COLUMN = NAME, NAME...; [status] STATUS = NAME, NAME... */
static int
handle_words(struct parse *p, enum reg_kind kind, const char *section,
    const char *key, const char *val)
{
	const char *const *words =
	    kind == REG_COLUMN ? registry_columns : registry_statuses;
	size_t n = kind == REG_COLUMN ? REG_COLUMNS : REG_STATUSES;
	char list[256];
	size_t o = 0;

	for (size_t i = 0; i < n; i++)
		if (strcmp(words[i], key) == 0)
			return set_aliases(p, kind, section, key, val);
	for (size_t i = 0; i < n && o < sizeof(list); i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s",
		    i == 0	 ? ""
		    : i + 1 == n ? " or "
				 : ", ",
		    words[i]);
	return fail(
	    p, "[%s]: unknown key '%s' (the keys are %s)", section, key, list);
}

/* [target] metric/industry/scope/year = value */
static int
handle_target(struct parse *p, const char *key, const char *val)
{
	struct registry *reg = p->reg;
	struct reg_target t = { 0 };
	char buf[IND_TOPIC_MAX + 1], *part[4], *save = NULL;
	long long year;
	size_t n = 0;

	if (!strlcpy_ok(buf, key, sizeof(buf)))
		return fail(p, "[target] %s: too long", key);
	for (char *tok = strtok_r(buf, "/", &save); tok != NULL;
	     tok = strtok_r(NULL, "/", &save)) {
		if (n == 4)
			return fail(p,
			    "[target] %s: not metric/industry/scope/year", key);
		part[n++] = tok;
	}
	if (n != 4)
		return fail(
		    p, "[target] %s: not metric/industry/scope/year", key);
	if (!code_ok(part[0]) ||
	    (!code_ok(part[1]) && strcmp(part[1], "*") != 0) ||
	    !code_ok(part[2]))
		return fail(p, "[target] %s: bad code", key);
	if (!parse_ll(part[3], &year) || year < 1900 || year > 9999)
		return fail(p, "[target] %s: bad year '%s'", key, part[3]);
	strlcpy_ok(t.metric, part[0], sizeof(t.metric));
	strlcpy_ok(t.industry, part[1], sizeof(t.industry));
	strlcpy_ok(t.scope, part[2], sizeof(t.scope));
	t.year = (int)year;
	if (!parse_double(val, &t.value) || !(t.value > 0))
		return fail(
		    p, "[target] %s: '%s' is not a number above 0", key, val);
	for (size_t i = 0; i < reg->ntargets; i++) {
		struct reg_target *u = &reg->targets[i];

		if (strcmp(u->metric, t.metric) == 0 &&
		    strcmp(u->industry, t.industry) == 0 &&
		    strcmp(u->scope, t.scope) == 0 && u->year == t.year) {
			u->value = t.value; /* a later line overrides */
			return 1;
		}
	}
	if (reg->ntargets == REG_TARGETS_MAX)
		return fail(p, "more than %d targets", REG_TARGETS_MAX);
	reg->targets[reg->ntargets++] = t;
	return 1;
}

/* The first file to define part of the registry: from then on the
 * registry is the files' own, not the built-in one. */
static void
reg_defined(struct parse *p)
{
	if (p->reg_file[0] == '\0')
		snprintf(p->reg_file, sizeof(p->reg_file), "%s", p->name);
}

/*
 * The registry's sections, in the daemon's file and in the agent's: 1 or
 * 0 as an inih handler, or -1 when section is not one of them.
 */
static int
registry_handler(
    struct parse *p, const char *section, const char *key, const char *val)
{
	const char *code;

	if (split_section(section, "district", &code)) {
		reg_defined(p);
		return handle_named(p, "district", code, key, val);
	}
	if (split_section(section, "industry", &code)) {
		reg_defined(p);
		return handle_named(p, "industry", code, key, val);
	}
	if (split_section(section, "metric", &code)) {
		reg_defined(p);
		return handle_metric(p, code, key, val);
	}
	if (strcmp(section, "target") == 0) {
		reg_defined(p);
		return handle_target(p, key, val);
	}
	if (split_section(section, "unit", &code)) {
		reg_defined(p);
		return handle_unit(p, code, key, val);
	}
	if (strcmp(section, "columns") == 0) {
		reg_defined(p);
		return handle_words(p, REG_COLUMN, section, key, val);
	}
	if (strcmp(section, "status") == 0) {
		reg_defined(p);
		return handle_words(p, REG_STATUS, section, key, val);
	}
	return -1;
}

/* inih handler: returns nonzero on success, 0 on error. */
static int
daemon_handler(
    void *user, const char *section, const char *key, const char *val)
{
	struct parse *p = user;
	int rc = registry_handler(p, section, key, val);

	if (rc != -1)
		return rc;
	return rows_handle(
	    p, p->cfg, daemon_rows, NROWS(daemon_rows), section, key, val);
}

static int
agent_handler(void *user, const char *section, const char *key, const char *val)
{
	struct parse *p = user;
	int rc = registry_handler(p, section, key, val);

	if (rc != -1)
		return rc;
	return rows_handle(
	    p, p->acfg, agent_rows, NROWS(agent_rows), section, key, val);
}

/*
 * libinih reads a line into a buffer of INI_MAX_LINE bytes, 200 in Debian's
 * build, and takes what does not fit for a new line: 65 Chinese characters
 * reach that. Debian's libinih (55-1) has its build options as run-time
 * variables too, among them a heap buffer that realloc() grows up to
 * ini_max_line; CMakeLists.txt checks that they exist. Our own
 * ini_parse_stream() reader could not help: the line buffer is libinih's,
 * and the reader only fills it. Lines longer than CONFIG_LINE_MAX are
 * refused by run_ini() with their number before libinih could cut them.
 * The settings are the process's: every parse sets them again.
 */
static void
ini_options(void)
{
	ini_use_stack = false;
	ini_allow_realloc = true;
	ini_max_line = CONFIG_LINE_MAX + 3; /* "\r\n" and the NUL */
}

/* Runs inih over text; 0, or -1 with "name:line: reason" in err. */
static int
run_ini(const char *text, const char *name, ini_handler h, struct parse *p,
    char *err, size_t errlen)
{
	int line = 1;

	for (const char *s = text; *s != '\0'; line++) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);

		if (len > CONFIG_LINE_MAX &&
		    !(len == CONFIG_LINE_MAX + 1 && s[len - 1] == '\r')) {
			snprintf(err, errlen,
			    "%s:%d: line longer than %d bytes", name, line,
			    CONFIG_LINE_MAX);
			return -1;
		}
		s += len + (nl != NULL);
	}
	p->name = name;
	p->err[0] = '\0';
	ini_options();
	line = ini_parse_string(text, h, p);

	if (line == 0)
		return 0;
	if (line < 0)
		snprintf(err, errlen, "%s: cannot parse (out of memory)", name);
	else if (p->err[0] != '\0')
		snprintf(err, errlen, "%s:%d: %s", name, line, p->err);
	else
		snprintf(err, errlen, "%s:%d: syntax error", name, line);
	return -1;
}

char *
config_read_text(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = xrealloc(buf, cap);
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[len] = '\0';
	if (strlen(buf) != len) {
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		free(buf);
		return NULL;
	}
	return buf;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A drop-in's name: NAME.conf, NAME not empty, not starting with '.'. */
static bool
dropin_name_ok(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".conf") == 0;
}

int
config_dropins(
    const char *path, char ***paths, size_t *n, char *err, size_t errlen)
{
	const char *slash = strrchr(path, '/');
	char dir[CONFIG_PATH_MAX + 16], *file;
	struct dirent *e;
	struct stat st;
	size_t cap = 0;
	DIR *d;

	*paths = NULL;
	*n = 0;
	if (slash == NULL)
		snprintf(dir, sizeof(dir), "conf.d");
	else if ((size_t)(slash - path) >= CONFIG_PATH_MAX) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	} else
		snprintf(dir, sizeof(dir), "%.*s/conf.d",
		    slash == path ? 0 : (int)(slash - path), path);
	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (!dropin_name_ok(e->d_name))
			continue;
		file = xmalloc(strlen(dir) + strlen(e->d_name) + 2);
		sprintf(file, "%s/%s", dir, e->d_name);
		/* A link to a regular file counts; a dangling one is an
		 * error, as a file the operator meant to be read. */
		if (stat(file, &st) == -1) {
			snprintf(err, errlen, "%s: %s", file, strerror(errno));
			free(file);
			goto dropins_free;
		}
		if (!S_ISREG(st.st_mode)) {
			free(file);
			continue;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			*paths = xrealloc(*paths, cap * sizeof(**paths));
		}
		(*paths)[(*n)++] = file;
	}
	closedir(d);
	if (*n > 0)
		qsort(*paths, *n, sizeof(**paths), name_cmp);
	return 0;
dropins_free:
	closedir(d);
	config_dropins_free(*paths, *n);
	*paths = NULL;
	*n = 0;
	return -1;
}

void
config_dropins_free(char **paths, size_t n)
{
	for (size_t i = 0; paths != NULL && i < n; i++)
		free(paths[i]);
	free(paths);
}

/* Parses one file (its text read here) into p. */
static int
parse_file(
    const char *path, ini_handler h, struct parse *p, char *err, size_t errlen)
{
	char *text;
	int rc;

	if ((text = config_read_text(path, err, errlen)) == NULL)
		return -1;
	rc = run_ini(text, path, h, p, err, errlen);
	free(text);
	return rc;
}

/* The file at path, then its drop-ins, into p. */
static int
parse_layers(
    const char *path, ini_handler h, struct parse *p, char *err, size_t errlen)
{
	char **dropins;
	size_t n;
	int rc = 0;

	if (parse_file(path, h, p, err, errlen) == -1 ||
	    config_dropins(path, &dropins, &n, err, errlen) == -1)
		return -1;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = parse_file(dropins[i], h, p, err, errlen);
	config_dropins_free(dropins, n);
	return rc;
}

static void
daemon_begin(struct config *cfg, struct parse *p)
{
	memset(cfg, 0, sizeof(*cfg));
	rows_defaults(cfg, daemon_rows, NROWS(daemon_rows));
	memset(p, 0, sizeof(*p));
	p->cfg = cfg;
	p->reg = &cfg->reg;
}

/* The registry of the built-in default into reg, but for first_year,
 * which is a key like the others. */
static void
builtin_registry(struct registry *reg)
{
	struct config *def = xmalloc(sizeof(*def));
	struct parse p;
	char err[512];
	int first_year = reg->first_year;

	daemon_begin(def, &p);
	if (run_ini(config_default_text, "(built-in default)", daemon_handler,
		&p, err, sizeof(err)) == -1)
		abort(); /* check_config proves it parses */
	*reg = def->reg;
	reg->first_year = first_year;
	free(def);
}

/* After the last file: the registry, and what no single line decides.
 * name is the main file, named in the messages. */
static int
daemon_end(struct config *cfg, struct parse *p, const char *name, char *err,
    size_t errlen)
{
	char why[256];

	cfg->registry_builtin = p->reg_file[0] == '\0';
	if (cfg->registry_builtin)
		builtin_registry(&cfg->reg);
	if (cfg->curve && (cfg->secret_key_file[0] == '\0' ||
			      cfg->authorised_agents[0] == '\0')) {
		snprintf(err, errlen,
		    "%s: curve = true needs secret_key_file and "
		    "authorised_agents",
		    name);
		return -1;
	}
	if (cfg->feed_curve && (cfg->secret_key_file[0] == '\0' ||
				   cfg->subscriber_keys[0] == '\0')) {
		snprintf(err, errlen,
		    "%s: feed_curve = true needs secret_key_file and "
		    "subscriber_keys",
		    name);
		return -1;
	}
	if (cfg->map_max < cfg->map_size) {
		snprintf(
		    err, errlen, "%s: map_max_mb is below map_size_mb", name);
		return -1;
	}
	if (registry_check(&cfg->reg, why, sizeof(why)) == NULL)
		return 0;
	/* A whole kind missing: most likely a file meant to amend the
	 * built-in registry. */
	if (!cfg->registry_builtin &&
	    (cfg->reg.ndistricts == 0 || cfg->reg.nindustries == 0 ||
		cfg->reg.nmetrics == 0))
		snprintf(err, errlen,
		    "%s: %s (%s defines part of the registry, so the "
		    "built-in one is not used: the files must define all of "
		    "it)",
		    name, why, p->reg_file);
	else
		snprintf(err, errlen, "%s: %s", name, why);
	return -1;
}

int
config_parse(struct config *cfg, const char *text, const char *name, char *err,
    size_t errlen)
{
	struct parse p;

	daemon_begin(cfg, &p);
	if (run_ini(text, name, daemon_handler, &p, err, errlen) == -1)
		return -1;
	return daemon_end(cfg, &p, name, err, errlen);
}

int
config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct parse p;

	if (path == NULL)
		return config_parse(cfg, config_default_text,
		    "(built-in default)", err, errlen);
	daemon_begin(cfg, &p);
	if (parse_layers(path, daemon_handler, &p, err, errlen) == -1)
		return -1;
	return daemon_end(cfg, &p, path, err, errlen);
}

int
config_set(struct config *cfg, const char *section, const char *key,
    const char *val, const char *what, char *err, size_t errlen)
{
	return rows_set(cfg, daemon_rows, NROWS(daemon_rows), section, key, val,
	    what, err, errlen);
}

void
config_resolve_dir(struct config *cfg, const char *state_dir)
{
	if (cfg->data_dir[0] != '\0')
		return;
	if (state_dir != NULL && state_dir[0] != '\0' &&
	    strlcpy_ok(cfg->data_dir, state_dir, sizeof(cfg->data_dir)))
		return;
	strlcpy_ok(cfg->data_dir, "./indicatord-data", sizeof(cfg->data_dir));
}

static void
agent_begin(struct agent_config *acfg, struct parse *p)
{
	memset(acfg, 0, sizeof(*acfg));
	rows_defaults(acfg, agent_rows, NROWS(agent_rows));
	memset(p, 0, sizeof(*p));
	p->acfg = acfg;
	p->reg = &acfg->reg;
}

/* The registry after the last file, as daemon_end() decides it. */
static int
agent_end(struct agent_config *acfg, struct parse *p, const char *name,
    char *err, size_t errlen)
{
	char why[256];

	acfg->registry_builtin = p->reg_file[0] == '\0';
	if (acfg->registry_builtin)
		builtin_registry(&acfg->reg);
	if (registry_check(&acfg->reg, why, sizeof(why)) == NULL)
		return 0;
	if (!acfg->registry_builtin)
		snprintf(err, errlen,
		    "%s: %s (%s defines part of the registry, so the "
		    "built-in one is not used: the files must define all of "
		    "it)",
		    name, why, p->reg_file);
	else
		snprintf(err, errlen, "%s: %s", name, why);
	return -1;
}

void
agent_config_defaults(struct agent_config *acfg)
{
	struct parse p;
	char err[512];

	agent_begin(acfg, &p);
	if (agent_end(acfg, &p, "(built-in default)", err, sizeof(err)) == -1)
		abort(); /* check_config proves the default is good */
}

int
agent_config_parse(struct agent_config *acfg, const char *text,
    const char *name, char *err, size_t errlen)
{
	struct parse p;

	agent_begin(acfg, &p);
	if (run_ini(text, name, agent_handler, &p, err, errlen) == -1)
		return -1;
	return agent_end(acfg, &p, name, err, errlen);
}

int
agent_config_load(
    struct agent_config *acfg, const char *path, char *err, size_t errlen)
{
	struct parse p;

	agent_begin(acfg, &p);
	if (parse_layers(path, agent_handler, &p, err, errlen) == -1)
		return -1;
	return agent_end(acfg, &p, path, err, errlen);
}

int
agent_config_set(struct agent_config *acfg, const char *key, const char *val,
    const char *what, char *err, size_t errlen)
{
	return rows_set(acfg, agent_rows, NROWS(agent_rows), "agent", key, val,
	    what, err, errlen);
}

int
agent_config_bounds(
    const char *key, long long *min, long long *max, const char **def)
{
	const struct crow *r;
	bool known_section;

	r = rows_find(
	    agent_rows, NROWS(agent_rows), "agent", key, &known_section);
	if (r == NULL || r->type != CT_UINT)
		return -1;
	*min = r->min;
	*max = r->max;
	*def = r->def;
	return 0;
}
