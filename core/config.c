/*
 * Configuration files, parsed by libinih. Scalar keys are rows of a table
 * (section, key, type, bounds, default); the registry sections
 * ([district CODE], [industry CODE], [metric CODE], [target]) are handled by
 * their own functions. A later line overrides an earlier one for the same
 * key, so a file may end with overrides of the defaults above it.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "xmalloc.h"

enum ctype {
	CT_STR, /* char array of size `size` */
	CT_UINT, /* unsigned */
	CT_INT, /* int */
	CT_MB, /* megabytes into a uint64_t of bytes */
	CT_SYNC, /* enum config_sync */
	CT_LOG, /* enum config_log */
	CT_LOGFMT, /* enum config_log_format */
	CT_BOOL, /* bool: true or false */
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
	{ "daemon", "ingest", CT_STR, C(ingest), 0, 0, "tcp://127.0.0.1:7401" },
	{ "daemon", "publish", CT_STR, C(publish), 0, 0,
	    "tcp://127.0.0.1:7402" },
	{ "daemon", "snapshot", CT_STR, C(snapshot), 0, 0,
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
	{ "daemon", "sync", CT_SYNC, C(sync), 0, 0, "full" },
	{ "daemon", "log_level", CT_LOG, C(log_level), 0, 0, "info" },
	{ "daemon", "log_format", CT_LOGFMT, C(log_format), 0, 0, "plain" },
	{ "daemon", "timezone", CT_STR, C(timezone), 0, 0, "Asia/Shanghai" },
	{ "daemon", "curve", CT_BOOL, C(curve), 0, 0, "false" },
	{ "daemon", "secret_key_file", CT_STR, C(secret_key_file), 0, 0, "" },
	{ "daemon", "authorised_agents", CT_STR, C(authorised_agents), 0, 0,
	    "" },
	{ "daemon", "feed_curve", CT_BOOL, C(feed_curve), 0, 0, "false" },
	{ "daemon", "subscriber_keys", CT_STR, C(subscriber_keys), 0, 0, "" },
	{ "daemon", "allow_insecure_remote", CT_BOOL, C(allow_insecure_remote),
	    0, 0, "false" },
	{ "daemon", "rate_limit", CT_UINT, C(rate_limit), 0, 10000000, "0" },
	{ "daemon", "control", CT_STR, C(control), 0, 0, "" },
	{ "daemon", "metrics", CT_STR, C(metrics), 0, 0, "" },
	{ "limits", "max_observations", CT_UINT, C(limits.max_observations), 1,
	    100000, "1000" },
	{ "limits", "max_agent_id", CT_UINT, C(limits.max_agent_id), 1,
	    IND_AGENT_ID_MAX, "64" },
	{ "limits", "max_note", CT_UINT, C(limits.max_note), 0, IND_NOTE_MAX,
	    "256" },
	{ "limits", "max_message_bytes", CT_UINT, C(limits.max_message_bytes),
	    1024, 64 << 20, "1048576" },
	{ "registry", "first_year", CT_INT, C(reg.first_year), 1900, 9999,
	    "2015" },
};

static const struct crow agent_rows[] = {
	{ "agent", "id", CT_STR, A(id), 0, 0, "" },
	{ "agent", "district", CT_STR, A(district), 0, 0, "" },
	{ "agent", "endpoint", CT_STR, A(endpoint), 0, 0,
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
};

/* libinih's INI_MAX_LINE (200) less the line end and its NUL. */
#define CONFIG_LINE_MAX 197

#define NROWS(t) (sizeof(t) / sizeof((t)[0]))

struct parse {
	struct config *cfg; /* daemon file, or NULL */
	struct agent_config *acfg; /* agent file, or NULL */
	struct reg_metric *metric; /* metric section being read */
	char err[256]; /* first error */
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

/* Sets one table row from its text; 1 on success, 0 (inih's error) with a
 * message in p->err. */
static int
row_set(struct parse *p, void *base, const struct crow *r, const char *val)
{
	char *dst = (char *)base + r->off;
	long long n;

	switch (r->type) {
	case CT_STR:
		if (!strlcpy_ok(dst, val, r->size))
			return fail(p, "[%s] %s: longer than %zu bytes",
			    r->section, r->key, r->size - 1);
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
			    "[%s] %s: '%s' is not full, nometasync or none",
			    r->section, r->key, val);
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
			    "[%s] %s: '%s' is not error, warning, info or "
			    "debug",
			    r->section, r->key, val);
		return 1;
	case CT_LOGFMT:
		if (strcmp(val, "plain") == 0)
			*(enum config_log_format *)dst = CONFIG_LOG_PLAIN;
		else if (strcmp(val, "json") == 0)
			*(enum config_log_format *)dst = CONFIG_LOG_JSON;
		else
			return fail(p, "[%s] %s: '%s' is not plain or json",
			    r->section, r->key, val);
		return 1;
	case CT_BOOL:
		if (strcmp(val, "true") == 0)
			*(bool *)dst = true;
		else if (strcmp(val, "false") == 0)
			*(bool *)dst = false;
		else
			return fail(p, "[%s] %s: '%s' is not true or false",
			    r->section, r->key, val);
		return 1;
	case CT_UINT:
	case CT_INT:
	case CT_MB:
		if (!parse_ll(val, &n))
			return fail(p, "[%s] %s: '%s' is not an integer",
			    r->section, r->key, val);
		if (n < r->min || n > r->max)
			return fail(p, "[%s] %s: %lld is outside %lld..%lld",
			    r->section, r->key, n, r->min, r->max);
		if (r->type == CT_UINT)
			*(unsigned *)dst = (unsigned)n;
		else if (r->type == CT_INT)
			*(int *)dst = (int)n;
		else
			*(uint64_t *)dst = (uint64_t)n << 20;
		return 1;
	}
	return fail(p, "[%s] %s: internal: bad row type", r->section, r->key);
}

static void
rows_defaults(void *base, const struct crow *rows, size_t n)
{
	struct parse p = { 0 };

	for (size_t i = 0; i < n; i++)
		(void)row_set(&p, base, &rows[i], rows[i].def);
}

static int
rows_handle(struct parse *p, void *base, const struct crow *rows, size_t n,
    const char *section, const char *key, const char *val)
{
	bool known_section = false;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(rows[i].section, section) != 0)
			continue;
		known_section = true;
		if (strcmp(rows[i].key, key) == 0)
			return row_set(p, base, &rows[i], val);
	}
	if (known_section)
		return fail(p, "[%s]: unknown key '%s'", section, key);
	return fail(p, "unknown section [%s]", section);
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

static int
handle_named(struct parse *p, const char *kind, const char *code,
    const char *key, const char *val)
{
	struct registry *reg = &p->cfg->reg;
	char *name;

	if (!code_ok(code))
		return fail(p,
		    "[%s %s]: a code is 1 to %d letters, digits, '_' or '-'",
		    kind, code, IND_CODE_MAX);
	if (strcmp(key, "name") != 0)
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
	struct registry *reg = &p->cfg->reg;
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

/* [target] metric/industry/scope/year = value */
static int
handle_target(struct parse *p, const char *key, const char *val)
{
	struct registry *reg = &p->cfg->reg;
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

/* inih handler: returns nonzero on success, 0 on error. */
static int
daemon_handler(
    void *user, const char *section, const char *key, const char *val)
{
	struct parse *p = user;
	const char *code;

	if (split_section(section, "district", &code))
		return handle_named(p, "district", code, key, val);
	if (split_section(section, "industry", &code))
		return handle_named(p, "industry", code, key, val);
	if (split_section(section, "metric", &code))
		return handle_metric(p, code, key, val);
	if (strcmp(section, "target") == 0)
		return handle_target(p, key, val);
	return rows_handle(
	    p, p->cfg, daemon_rows, NROWS(daemon_rows), section, key, val);
}

static int
agent_handler(void *user, const char *section, const char *key, const char *val)
{
	struct parse *p = user;

	return rows_handle(
	    p, p->acfg, agent_rows, NROWS(agent_rows), section, key, val);
}

/* Runs inih over text; 0, or -1 with "name:line: reason" in err. */
static int
run_ini(const char *text, const char *name, ini_handler h, struct parse *p,
    char *err, size_t errlen)
{
	int line = 1;

	/* libinih reads at most INI_MAX_LINE bytes a line and takes the rest
	 * as a new line: refuse long lines here, with their number. */
	for (const char *s = text; *s != '\0'; line++) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);

		if (len > CONFIG_LINE_MAX) {
			snprintf(err, errlen,
			    "%s:%d: line longer than %d bytes", name, line,
			    CONFIG_LINE_MAX);
			return -1;
		}
		s += len + (nl != NULL);
	}
	line = ini_parse_string(text, h, p);

	if (line == 0)
		return 0;
	if (line < 0)
		snprintf(err, errlen, "%s: cannot parse", name);
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

int
config_parse(struct config *cfg, const char *text, const char *name, char *err,
    size_t errlen)
{
	struct parse p = { 0 };
	char why[256];

	memset(cfg, 0, sizeof(*cfg));
	rows_defaults(cfg, daemon_rows, NROWS(daemon_rows));
	p.cfg = cfg;
	if (run_ini(text, name, daemon_handler, &p, err, errlen) == -1)
		return -1;
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
	if (registry_check(&cfg->reg, why, sizeof(why)) != NULL) {
		snprintf(err, errlen, "%s: %s", name, why);
		return -1;
	}
	return 0;
}

int
config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	char *text;
	int rc;

	if (path == NULL)
		return config_parse(cfg, config_default_text,
		    "(built-in default)", err, errlen);
	if ((text = config_read_text(path, err, errlen)) == NULL)
		return -1;
	rc = config_parse(cfg, text, path, err, errlen);
	free(text);
	return rc;
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

void
agent_config_defaults(struct agent_config *acfg)
{
	memset(acfg, 0, sizeof(*acfg));
	rows_defaults(acfg, agent_rows, NROWS(agent_rows));
}

int
agent_config_parse(struct agent_config *acfg, const char *text,
    const char *name, char *err, size_t errlen)
{
	struct parse p = { 0 };

	agent_config_defaults(acfg);
	p.acfg = acfg;
	return run_ini(text, name, agent_handler, &p, err, errlen);
}

int
agent_config_load(
    struct agent_config *acfg, const char *path, char *err, size_t errlen)
{
	char *text;
	int rc;

	if ((text = config_read_text(path, err, errlen)) == NULL)
		return -1;
	rc = agent_config_parse(acfg, text, path, err, errlen);
	free(text);
	return rc;
}
