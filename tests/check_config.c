/*
 * Configuration, registry and periods: the built-in default is the plan as
 * DOMAIN.md describes it, the shipped file says the same thing, bad files
 * fail on the right line with a reason a person can act on, and the
 * registry answers the questions the validator and the aggregator ask.
 */
#include <check.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "period.h"
#include "registry.h"

#define S8 "abcdefgh"
#define S64 S8 S8 S8 S8 S8 S8 S8 S8

/* A registry small enough to read, complete enough to pass
 * registry_check(): 9 lines. */
#define MINI                                   \
	"[district 320583]\n"                  \
	"name = Kunshan\n"                     \
	"[industry photonics]\n"               \
	"name = Photonics\n"                   \
	"[metric output_value]\n"              \
	"kind = flow\n"                        \
	"unit = CNY_100M\n"                    \
	"accept = CNY_100M:1 CNY_10K:0.0001\n" \
	"max = 40000\n"
/* MINI without its district: 7 lines. */
#define MINI_NO_DISTRICT          \
	"[industry photonics]\n"  \
	"name = Photonics\n"      \
	"[metric output_value]\n" \
	"kind = flow\n"           \
	"unit = CNY_100M\n"       \
	"accept = CNY_100M:1\n"   \
	"max = 40000\n"

static struct config cfg, cfg2;
static char err[512];

/* a followed by b, in memory the caller frees. */
static char *
concat(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	char *s = malloc(na + nb + 1);

	ck_assert_ptr_nonnull(s);
	memcpy(s, a, na);
	memcpy(s + na, b, nb + 1);
	return s;
}

/* conf/indicatord.conf in the source tree, found from this file's path. */
static void
conf_path(char *buf, size_t len)
{
	const char *slash = strrchr(__FILE__, '/');
	int dirlen = slash ? (int)(slash - __FILE__) : 1;

	snprintf(buf, len, "%.*s/../conf/indicatord.conf", dirlen,
	    slash ? __FILE__ : ".");
}

static void
load_default(struct config *c)
{
	err[0] = '\0';
	ck_assert_msg(config_load(c, NULL, err, sizeof(err)) == 0,
	    "built-in default: %s", err);
}

/* --- the built-in default ------------------------------------------- */

static const char *const districts[] = { "320505", "320506", "320507", "320508",
	"320509", "320576", "320581", "320582", "320583", "320585" };
static const char *const industries[] = { "materials", "photonics", "metaverse",
	"hydrogen", "digifin", "cellgene", "aerospace", "quantum" };
static const struct {
	const char *code;
	enum metric_kind kind;
	const char *unit;
	double max;
	bool integer;
} metrics[] = {
	{ "output_value", METRIC_FLOW, "CNY_100M", 40000, false },
	{ "innovation_platforms", METRIC_STOCK, "count", 10000, true },
	{ "chain_leaders", METRIC_STOCK, "count", 10000, true },
	{ "pilot_parks", METRIC_STOCK, "count", 10000, true },
	{ "core_products", METRIC_STOCK, "count", 100000, true },
	{ "app_scenarios", METRIC_STOCK, "count", 100000, true },
};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

START_TEST(default_registry)
{
	const struct registry *reg = &cfg.reg;

	load_default(&cfg);
	ck_assert_int_eq(reg->first_year, 2015);
	ck_assert_uint_eq(reg->ndistricts, NELEM(districts));
	for (size_t i = 0; i < NELEM(districts); i++) {
		const struct reg_district *d =
		    registry_district(reg, districts[i]);

		ck_assert_msg(d != NULL, "district %s missing", districts[i]);
		ck_assert_str_eq(reg->districts[i].code, districts[i]);
		ck_assert_msg(d->name[0] != '\0', "%s: no name", d->code);
	}
	/* SIP's code before the 2023 edition is not registered. */
	ck_assert_ptr_null(registry_district(reg, "320571"));
	ck_assert_str_eq(
	    registry_district(reg, "320576")->name, "苏州工业园区");
	ck_assert_uint_eq(reg->nindustries, NELEM(industries));
	for (size_t i = 0; i < NELEM(industries); i++) {
		ck_assert_msg(registry_industry(reg, industries[i]) != NULL,
		    "industry %s missing", industries[i]);
		ck_assert_str_eq(reg->industries[i].code, industries[i]);
	}
	ck_assert_ptr_null(registry_industry(reg, "*"));
	ck_assert_uint_eq(reg->nmetrics, NELEM(metrics));
	for (size_t i = 0; i < NELEM(metrics); i++) {
		const struct reg_metric *m =
		    registry_metric(reg, metrics[i].code);

		ck_assert_msg(m != NULL, "metric %s missing", metrics[i].code);
		ck_assert_int_eq(m->kind, metrics[i].kind);
		ck_assert_str_eq(m->unit, metrics[i].unit);
		ck_assert_double_eq(m->max, metrics[i].max);
		ck_assert(m->integer == metrics[i].integer);
		ck_assert_ptr_nonnull(registry_metric_unit(m, m->unit));
		ck_assert_double_eq(
		    registry_metric_unit(m, m->unit)->factor, 1.0);
	}
	/* The derived metric is a target, not something districts report. */
	ck_assert_ptr_null(registry_metric(reg, "clusters_100bn"));
}
END_TEST

START_TEST(default_output_value_units)
{
	const struct reg_metric *m;
	const struct reg_unit *u;

	load_default(&cfg);
	m = registry_metric(&cfg.reg, "output_value");
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(m->kind, METRIC_FLOW);
	ck_assert_str_eq(m->unit, "CNY_100M");
	u = registry_metric_unit(m, "CNY_10K");
	ck_assert_ptr_nonnull(u);
	ck_assert_double_eq(u->factor, 0.0001);
	ck_assert_ptr_nonnull(registry_metric_unit(m, "CNY"));
	ck_assert_ptr_null(registry_metric_unit(m, "count"));
	ck_assert_ptr_null(registry_metric_unit(m, "cny_10k"));
	m = registry_metric(&cfg.reg, "chain_leaders");
	ck_assert_ptr_nonnull(registry_metric_unit(m, "count"));
	ck_assert_ptr_null(registry_metric_unit(m, "CNY_100M"));
}
END_TEST

START_TEST(default_targets)
{
	const struct reg_target *t;

	load_default(&cfg);
	t = registry_target(&cfg.reg, "output_value", "*", "city", 2030);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(t->year, 2030);
	ck_assert_double_eq(t->value, 5000);
	t = registry_target(&cfg.reg, "output_value", "*", "city", 2035);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(t->year, 2035);
	ck_assert_double_eq(t->value, 10000);
	t = registry_target(&cfg.reg, "clusters_100bn", "*", "city", 2035);
	ck_assert_ptr_nonnull(t);
	ck_assert_double_eq(t->value, 1);
}
END_TEST

/* The [daemon] and [limits] values a user reads in the shipped file. */
static void
assert_daemon_defaults(const struct config *c)
{
	ck_assert_str_eq(c->ingest, "tcp://127.0.0.1:7401");
	ck_assert_str_eq(c->publish, "tcp://127.0.0.1:7402");
	ck_assert_str_eq(c->snapshot, "tcp://127.0.0.1:7403");
	ck_assert_str_eq(c->data_dir, "");
	ck_assert_uint_eq(c->map_size, (uint64_t)64 << 20);
	ck_assert_uint_eq(c->map_max, (uint64_t)16384 << 20);
	ck_assert_uint_eq(c->batch_max, 1000);
	ck_assert_uint_eq(c->pub_hwm, 100000);
	ck_assert_int_eq(c->sync, CONFIG_SYNC_FULL);
	ck_assert_int_eq(c->log_level, CONFIG_LOG_INFO);
	ck_assert_int_eq(c->log_format, CONFIG_LOG_PLAIN);
	ck_assert_str_eq(c->timezone, "Asia/Shanghai");
	ck_assert_uint_eq(c->limits.max_observations, 1000);
	ck_assert_uint_eq(c->limits.max_agent_id, 64);
	ck_assert_uint_eq(c->limits.max_note, 256);
	ck_assert_uint_eq(c->limits.max_message_bytes, 1048576);
	ck_assert_uint_eq(c->limits.max_ack_errors, 100);
	/* The budgets (README, "Budgets"). */
	ck_assert_uint_eq(c->batch_bytes, (uint64_t)16 << 20);
	ck_assert_uint_eq(c->conn_batch_bytes, (uint64_t)4 << 20);
	ck_assert_uint_eq(c->conn_queue_bytes, (uint64_t)16 << 20);
	ck_assert_uint_eq(c->answer_bytes, (uint64_t)64 << 20);
	ck_assert_uint_eq(c->subscriber_bytes, (uint64_t)4 << 20);
	ck_assert_uint_eq(c->snapshot_queue, 4);
	ck_assert_uint_eq(c->handshake_ms, 5000);
	ck_assert_uint_eq(c->metrics_connections, 32);
	ck_assert_uint_eq(c->metrics_timeout_s, 5);
	ck_assert_int_eq(c->reg.first_year, 2015);
}

START_TEST(default_daemon_and_limits)
{
	load_default(&cfg);
	assert_daemon_defaults(&cfg);
}
END_TEST

/* A file with only a registry gets the same values from the table's
 * defaults as the shipped file spells out. */
START_TEST(table_defaults_match_file)
{
	ck_assert_msg(
	    config_parse(&cfg, MINI, "mini", err, sizeof(err)) == 0, "%s", err);
	assert_daemon_defaults(&cfg);
	ck_assert_uint_eq(cfg.reg.ndistricts, 1);
	ck_assert_uint_eq(cfg.reg.ntargets, 0);
}
END_TEST

static void
assert_same_config(const struct config *a, const struct config *b)
{
	const struct registry *ra = &a->reg, *rb = &b->reg;

	ck_assert_str_eq(a->ingest, b->ingest);
	ck_assert_str_eq(a->publish, b->publish);
	ck_assert_str_eq(a->snapshot, b->snapshot);
	ck_assert_str_eq(a->data_dir, b->data_dir);
	ck_assert_str_eq(a->timezone, b->timezone);
	ck_assert_uint_eq(a->map_size, b->map_size);
	ck_assert_uint_eq(a->map_max, b->map_max);
	ck_assert_uint_eq(a->batch_max, b->batch_max);
	ck_assert_uint_eq(a->pub_hwm, b->pub_hwm);
	ck_assert_int_eq(a->sync, b->sync);
	ck_assert_int_eq(a->log_level, b->log_level);
	ck_assert_int_eq(a->log_format, b->log_format);
	ck_assert(memcmp(&a->limits, &b->limits, sizeof(a->limits)) == 0);
	ck_assert_int_eq(ra->first_year, rb->first_year);
	ck_assert_uint_eq(ra->ndistricts, rb->ndistricts);
	for (size_t i = 0; i < ra->ndistricts; i++) {
		ck_assert_str_eq(ra->districts[i].code, rb->districts[i].code);
		ck_assert_str_eq(ra->districts[i].name, rb->districts[i].name);
	}
	ck_assert_uint_eq(ra->nindustries, rb->nindustries);
	for (size_t i = 0; i < ra->nindustries; i++) {
		ck_assert_str_eq(
		    ra->industries[i].code, rb->industries[i].code);
		ck_assert_str_eq(
		    ra->industries[i].name, rb->industries[i].name);
	}
	ck_assert_uint_eq(ra->nmetrics, rb->nmetrics);
	for (size_t i = 0; i < ra->nmetrics; i++) {
		const struct reg_metric *ma = &ra->metrics[i];
		const struct reg_metric *mb = &rb->metrics[i];

		ck_assert_str_eq(ma->code, mb->code);
		ck_assert_str_eq(ma->unit, mb->unit);
		ck_assert_int_eq(ma->kind, mb->kind);
		ck_assert_double_eq(ma->max, mb->max);
		ck_assert(ma->integer == mb->integer);
		ck_assert_uint_eq(ma->naccept, mb->naccept);
		for (size_t j = 0; j < ma->naccept; j++) {
			ck_assert_str_eq(
			    ma->accept[j].code, mb->accept[j].code);
			ck_assert_double_eq(
			    ma->accept[j].factor, mb->accept[j].factor);
		}
	}
	ck_assert_uint_eq(ra->ntargets, rb->ntargets);
	for (size_t i = 0; i < ra->ntargets; i++) {
		ck_assert_str_eq(ra->targets[i].metric, rb->targets[i].metric);
		ck_assert_str_eq(
		    ra->targets[i].industry, rb->targets[i].industry);
		ck_assert_str_eq(ra->targets[i].scope, rb->targets[i].scope);
		ck_assert_int_eq(ra->targets[i].year, rb->targets[i].year);
		ck_assert_double_eq(ra->targets[i].value, rb->targets[i].value);
	}
}

START_TEST(shipped_file_equals_default)
{
	char path[1024];
	FILE *f;
	char *text;
	long len;

	conf_path(path, sizeof(path));
	ck_assert_msg(config_load(&cfg, path, err, sizeof(err)) == 0, "%s: %s",
	    path, err);
	load_default(&cfg2);
	ck_assert_uint_eq(cfg.reg.ndistricts, 10);
	ck_assert_uint_eq(cfg.reg.nindustries, 8);
	ck_assert_uint_eq(cfg.reg.nmetrics, 6);
	ck_assert_uint_eq(cfg.reg.ntargets, cfg2.reg.ntargets);
	assert_same_config(&cfg, &cfg2);

	/* The embedded text is the file, byte for byte. */
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)len + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	ck_assert_str_eq(text, config_default_text);
	free(text);
}
END_TEST

/* --- bad files ------------------------------------------------------- */

/* line 0: a whole-file check, reported as "name: reason" with no line. */
static const struct bad_case {
	const char *name;
	const char *text;
	int line;
	const char *msg;
} bad[] = {
	{ "unknown section", "[daemon]\nbatch_max = 5\n[bogus]\nkey = 1\n", 4,
	    "unknown section [bogus]" },
	{ "key before any section", "batch_max = 5\n", 1,
	    "unknown section []" },
	{ "unknown key in [daemon]",
	    "[daemon]\nbatch_max = 5\nfrobnicate = 1\n", 3,
	    "[daemon]: unknown key 'frobnicate'" },
	{ "unknown key in [limits]", "[limits]\nmax_obs = 5\n", 2,
	    "[limits]: unknown key 'max_obs'" },
	{ "unknown key in [registry]", "[registry]\nlast_year = 2040\n", 2,
	    "[registry]: unknown key 'last_year'" },
	{ "word for an integer", "[daemon]\nbatch_max = ten\n", 2,
	    "batch_max: 'ten' is not an integer" },
	{ "integer with a suffix", "[daemon]\nmap_size_mb = 64M\n", 2,
	    "map_size_mb: '64M' is not an integer" },
	{ "hex integer", "[daemon]\npub_hwm = 0x10\n", 2,
	    "pub_hwm: '0x10' is not an integer" },
	{ "empty integer", "\n[daemon]\n\nbatch_max =\n", 4,
	    "batch_max: '' is not an integer" },
	{ "decimal integer", "[limits]\nmax_note = 2.5\n", 2,
	    "max_note: '2.5' is not an integer" },
	{ "batch_max 0", "[daemon]\nbatch_max = 0\n", 2,
	    "batch_max: 0 is outside 1..100000" },
	{ "batch_max above", "[daemon]\nbatch_max = 100001\n", 2,
	    "batch_max: 100001 is outside 1..100000" },
	{ "batch_max negative", "[daemon]\nbatch_max = -1\n", 2,
	    "batch_max: -1 is outside 1..100000" },
	{ "max_agent_id above the hard limit", "[limits]\nmax_agent_id = 65\n",
	    2, "max_agent_id: 65 is outside 1..64" },
	{ "max_note above the hard limit", "[limits]\nmax_note = 257\n", 2,
	    "max_note: 257 is outside 0..256" },
	{ "first_year too small", "[registry]\nfirst_year = 1899\n", 2,
	    "first_year: 1899 is outside 1900..9999" },
	{ "bad sync", "[daemon]\nsync = always\n", 2,
	    "sync: 'always' is not full, nometasync or none" },
	{ "sync is case-sensitive", "[daemon]\nsync = FULL\n", 2,
	    "sync: 'FULL' is not full, nometasync or none" },
	{ "bad log_level", "[daemon]\nlog_level = verbose\n", 2,
	    "log_level: 'verbose' is not error, warning, info or debug" },
	{ "bad log_format", "[daemon]\nlog_format = xml\n", 2,
	    "[daemon] log_format: 'xml' is not plain or json" },
	{ "line without '='", "[daemon]\nbatch_max\n", 2, "syntax error" },
	{ "first error wins",
	    "[daemon]\nbatch_max = 5\nsync = often\nbatch_max = x\n", 3,
	    "'often' is not full" },
	{ "bad metric kind", "[metric m]\nname = M\nkind = gauge\n", 3,
	    "[metric m] kind: 'gauge' is not flow or stock" },
	{ "bad metric integer", "[metric m]\ninteger = yes\n", 2,
	    "[metric m] integer: 'yes' is not true or false" },
	{ "metric max 0", "[metric m]\nmax = 0\n", 2,
	    "[metric m] max: '0' is not a number above 0" },
	{ "metric max not a number", "[metric m]\nmax = lots\n", 2,
	    "[metric m] max: 'lots' is not a number above 0" },
	{ "unknown key in a metric", "[metric m]\nunits = count\n", 2,
	    "[metric m]: unknown key 'units'" },
	{ "canonical unit not accepted",
	    MINI "[metric m]\nkind = stock\nunit = count\n"
		 "accept = piece:1\nmax = 5\n",
	    0, "metric m: accept must list the unit count with factor 1" },
	{ "canonical unit with factor 2",
	    MINI "[metric m]\nkind = stock\nunit = count\n"
		 "accept = count:2\nmax = 5\n",
	    0, "metric m: accept must list the unit count with factor 1" },
	{ "metric without unit", MINI "[metric m]\nkind = stock\nmax = 5\n", 0,
	    "metric m: no unit" },
	{ "metric without max",
	    MINI "[metric m]\nunit = count\naccept = count:1\n", 0,
	    "metric m: max must be above 0" },
	{ "accept token without ':'", "[metric m]\naccept = count:1 piece\n", 2,
	    "[metric m] accept: 'piece' is not UNIT:FACTOR" },
	{ "accept empty", "[metric m]\naccept =\n", 2,
	    "[metric m] accept: no unit" },
	{ "factor not a number", "[metric m]\naccept = count:one\n", 2,
	    "[metric m] accept: factor of count must be a number above 0" },
	{ "factor 0", "[metric m]\naccept = count:0\n", 2,
	    "factor of count must be a number above 0" },
	{ "factor negative", "[metric m]\naccept = count:1 dozen:-12\n", 2,
	    "factor of dozen must be a number above 0" },
	{ "factor missing", "[metric m]\naccept = count:\n", 2,
	    "factor of count must be a number above 0" },
	{ "factor infinite", "[metric m]\naccept = count:inf\n", 2,
	    "factor of count must be a number above 0" },
	{ "target with 3 parts", "[target]\noutput_value/*/2030 = 5000\n", 2,
	    "[target] output_value/*/2030: not metric/industry/scope/year" },
	{ "target with 5 parts",
	    "[target]\noutput_value/*/city/2030/x = 5000\n", 2,
	    "not metric/industry/scope/year" },
	{ "target with an empty part",
	    "[target]\noutput_value//city/2030 = 5000\n", 2,
	    "not metric/industry/scope/year" },
	{ "target bad year", "[target]\noutput_value/*/city/20x0 = 5000\n", 2,
	    "bad year '20x0'" },
	{ "target value 0", "[target]\noutput_value/*/city/2030 = 0\n", 2,
	    "'0' is not a number above 0" },
	{ "target of an unknown metric",
	    MINI "[target]\nexports/*/city/2030 = 5\n", 0,
	    "target exports/*/city/2030: unknown metric" },
	{ "target of an unknown industry",
	    MINI "[target]\noutput_value/quantum/city/2030 = 5\n", 0,
	    "target output_value/quantum/city/2030: unknown industry" },
	{ "target of an unknown scope",
	    MINI "[target]\noutput_value/*/320500/2030 = 5\n", 0,
	    "target output_value/*/320500/2030: scope is neither" },
	{ "district code with '/'", "[district 3205/83]\nname = x\n", 2,
	    "[district 3205/83]: a code is 1 to 32 letters" },
	{ "district code with a space", "[district 320 583]\nname = x\n", 2,
	    "a code is 1 to 32 letters" },
	{ "district code too long", "[district " S8 S8 S8 S8 "x]\nname = x\n",
	    2, "a code is 1 to 32 letters" },
	{ "industry code with a dot", "[industry a.b]\nname = x\n", 2,
	    "[industry a.b]: a code is 1 to 32 letters" },
	{ "unknown key in a district", "[district 320583]\ncode = 1\n", 2,
	    "[district 320583]: unknown key 'code'" },
	{ "no districts", MINI_NO_DISTRICT, 0,
	    "registry: no [district CODE] section" },
	{ "no industries", "[district 320583]\nname = K\n", 0,
	    "registry: no [industry CODE] section" },
	{ "no metrics",
	    "[district 320583]\nname = K\n[industry photonics]\nname = P\n", 0,
	    "registry: no [metric CODE] section" },
	{ "a registry without districts",
	    "[daemon]\nbatch_max = 5\n[target]\noutput_value/*/city/2030 = 1\n",
	    0,
	    "registry: no [district CODE] section (bad.conf defines part of "
	    "the registry, so the built-in one is not used" },
	{ "endpoint without a scheme", "[daemon]\ningest = 127.0.0.1:7401\n", 2,
	    "[daemon] ingest: '127.0.0.1:7401' has no scheme: expected "
	    "tcp://HOST:PORT (e.g. tcp://127.0.0.1:7401) or ipc://PATH" },
	{ "endpoint without a port", "[daemon]\npublish = tcp://127.0.0.1\n", 2,
	    "'tcp://127.0.0.1' is not tcp://HOST:PORT" },
	{ "endpoint on port 0", "[daemon]\nsnapshot = tcp://127.0.0.1:0\n", 2,
	    "is not tcp://HOST:PORT (a port from 1 to 65535)" },
	{ "endpoint on a port too high",
	    "[daemon]\nsnapshot = tcp://127.0.0.1:65536\n", 2,
	    "is not tcp://HOST:PORT" },
	{ "endpoint with a named port", "[daemon]\ningest = tcp://*:ingest\n",
	    2, "is not tcp://HOST:PORT" },
	{ "endpoint without a host", "[daemon]\ningest = tcp://:7401\n", 2,
	    "is not tcp://HOST:PORT" },
	{ "endpoint with a path", "[daemon]\ningest = tcp://h:1/x\n", 2,
	    "is not tcp://HOST:PORT" },
	{ "endpoint of an unknown scheme",
	    "[daemon]\ningest = http://127.0.0.1:7401\n", 2,
	    "'http://127.0.0.1:7401': unknown scheme: expected "
	    "tcp://HOST:PORT" },
	{ "inproc endpoint", "[daemon]\ningest = inproc://x\n", 2,
	    "unknown scheme" },
	{ "ipc endpoint without a path", "[daemon]\npublish = ipc://\n", 2,
	    "'ipc://' names no path" },
	{ "empty endpoint", "[daemon]\ningest =\n", 2,
	    "[daemon] ingest: must be set" },
	{ "control without a scheme", "[daemon]\ncontrol = /run/x\n", 2,
	    "[daemon] control: '/run/x' has no scheme" },
	{ "metrics on every address", "[daemon]\nmetrics = 0.0.0.0:9464\n", 2,
	    "[daemon] metrics: '0.0.0.0:9464' is not on loopback: the metrics "
	    "are for a local scraper; use 127.0.0.1:PORT" },
	{ "metrics without a port", "[daemon]\nmetrics = 127.0.0.1\n", 2,
	    "[daemon] metrics: '127.0.0.1' has no port: expected a loopback "
	    "HOST:PORT, e.g. 127.0.0.1:9464" },
	{ "metrics on a port too high", "[daemon]\nmetrics = 127.0.0.1:65536\n",
	    2, "the port must be a number from 1 to 65535" },
	{ "metrics on port 0", "[daemon]\nmetrics = 127.0.0.1:0\n", 2,
	    "the port must be a number from 1 to 65535" },
	{ "metrics on a name", "[daemon]\nmetrics = example.com:9464\n", 2,
	    "the host must be an IPv4 loopback address" },
	{ "metrics on a routable address",
	    "[daemon]\nmetrics = 10.0.0.1:9464\n", 2, "is not on loopback" },
	{ "metrics as a URL", "[daemon]\nmetrics = http://127.0.0.1:9464\n", 2,
	    "the host must be an IPv4 loopback address" },
	{ "time zone climbing out", "[daemon]\ntimezone = ../../etc/passwd\n",
	    2,
	    "[daemon] timezone: '../../etc/passwd' is not a tz database name "
	    "such as Asia/Shanghai" },
	{ "time zone as a path", "[daemon]\ntimezone = /etc/localtime\n", 2,
	    "is not a tz database name" },
	{ "empty time zone", "[daemon]\ntimezone =\n", 2,
	    "'' is not a tz database name" },
	{ "data_dir too long",
	    "[daemon]\ndata_dir = /" S64 S64 S64 S64 S64 S64 S64 S64 S64 S64 S64
		S64 S64 S64 S64 S64 "\n",
	    2, "[daemon] data_dir: longer than 1023 bytes" },
	{ "map_max below map_size",
	    MINI "[daemon]\nmap_size_mb = 100\nmap_max_mb = 50\n", 0,
	    "map_max_mb is below map_size_mb" },
	{ "an alias for two industries",
	    MINI "[industry materials]\nname = M\naliases = 新材料\n"
		 "[industry photonics]\naliases = 光子, 新材料\n",
	    0,
	    "alias '新材料' names both industry materials and industry "
	    "photonics" },
	{ "an alias that is another code, in another case",
	    MINI "[industry materials]\nname = M\naliases = Photonics\n", 0,
	    "industry materials: alias 'Photonics' is the code of another "
	    "industry" },
	{ "an alias for two units",
	    MINI "[unit CNY_100M]\naliases = 亿元\n[unit CNY_10K]\naliases = "
		 "亿元\n",
	    0, "alias '亿元' names both unit CNY_100M and unit CNY_10K" },
	{ "aliases for an unknown metric's code",
	    MINI "[metric output_value]\naliases = 产值\n[metric x]\naliases "
		 "= 产量\n",
	    0, "metric x: no unit" },
	{ "unknown column key", "[columns]\ncolour = 颜色\n", 2,
	    "[columns]: unknown key 'colour' (the keys are industry, metric, "
	    "period, value, unit, status or note)" },
	{ "unknown status key", "[status]\ndraft = 草稿\n", 2,
	    "[status]: unknown key 'draft' (the keys are provisional, final or "
	    "revised)" },
	{ "a unit section's unknown key", "[unit count]\nname = 个\n", 2,
	    "[unit count]: unknown key 'name'" },
	{ "a unit section with a Chinese code", "[unit 万元]\naliases = w\n", 2,
	    "[unit 万元]: a unit is 1 to 16 letters, digits, '_' or '-'" },
	{ "aliases for a district", "[district 320583]\naliases = 昆山\n", 2,
	    "[district 320583]: unknown key 'aliases'" },
	{ "an alias too long",
	    "[industry photonics]\naliases = " S64 "abcdefghijklmnopqrstuvwxyz"
	    "0123456\n",
	    2, "[industry photonics] aliases: '" S64 },
	{ "an empty name among aliases",
	    "[metric output_value]\naliases = 产值,,总产值\n", 2,
	    "[metric output_value] aliases: an empty name in the list" },
	{ "a control character in an alias", "[columns]\nvalue = 数\x01值\n", 2,
	    "[columns] aliases: a name holds a control character" },
};

START_TEST(bad_config)
{
	const struct bad_case *c = &bad[_i];
	char prefix[64];

	memset(&cfg, 0xa5, sizeof(cfg));
	ck_assert_msg(
	    config_parse(&cfg, c->text, "bad.conf", err, sizeof(err)) == -1,
	    "%s: accepted", c->name);
	if (c->line > 0)
		snprintf(prefix, sizeof(prefix), "bad.conf:%d: ", c->line);
	else
		snprintf(prefix, sizeof(prefix), "bad.conf: ");
	ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0,
	    "%s: '%s' does not start with '%s'", c->name, err, prefix);
	ck_assert_msg(strstr(err, c->msg) != NULL, "%s: '%s' does not say '%s'",
	    c->name, err, c->msg);
}
END_TEST

START_TEST(mini_is_good)
{
	ck_assert_msg(
	    config_parse(&cfg, MINI, "mini", err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(cfg.reg.nmetrics, 1);
	ck_assert_uint_eq(cfg.reg.metrics[0].naccept, 2);
}
END_TEST

static const char *const unreadable[] = {
	"/nonexistent-indicatord/indicatord.conf",
	"/",
};

START_TEST(unreadable_file)
{
	const char *path = unreadable[_i];

	err[0] = '\0';
	ck_assert_int_eq(config_load(&cfg, path, err, sizeof(err)), -1);
	ck_assert_msg(
	    strncmp(err, path, strlen(path)) == 0 && err[strlen(path)] == ':',
	    "'%s' does not name %s", err, path);
	ck_assert_msg(strlen(err) > strlen(path) + 2, "'%s': no reason", err);
}
END_TEST

START_TEST(missing_file_says_why)
{
	ck_assert_int_eq(
	    config_load(&cfg, "/nonexistent-indicatord/indicatord.conf", err,
		sizeof(err)),
	    -1);
	ck_assert_msg(strstr(err, "No such file") != NULL, "%s", err);
}
END_TEST

/* --- overrides ------------------------------------------------------- */

START_TEST(later_lines_override)
{
	char *text = concat(config_default_text,
	    "[daemon]\nbatch_max = 7\nsync = nometasync\n"
	    "data_dir = /srv/indicatord\n"
	    "[limits]\nmax_observations = 3\n"
	    "[target]\noutput_value/*/city/2030 = 6000\n"
	    "[district 320583]\nname = Kunshan\n"
	    "[metric output_value]\naccept = CNY_100M:1\n");

	ck_assert_msg(
	    config_parse(&cfg, text, "t", err, sizeof(err)) == 0, "%s", err);
	free(text);
	load_default(&cfg2);
	ck_assert_uint_eq(cfg.batch_max, 7);
	ck_assert_int_eq(cfg.sync, CONFIG_SYNC_NOMETASYNC);
	ck_assert_str_eq(cfg.data_dir, "/srv/indicatord");
	ck_assert_uint_eq(cfg.limits.max_observations, 3);
	/* Overridden in place: no duplicates appear. */
	ck_assert_uint_eq(cfg.reg.ntargets, cfg2.reg.ntargets);
	ck_assert_double_eq(
	    registry_target(&cfg.reg, "output_value", "*", "city", 2030)->value,
	    6000);
	ck_assert_uint_eq(cfg.reg.ndistricts, 10);
	ck_assert_str_eq(
	    registry_district(&cfg.reg, "320583")->name, "Kunshan");
	ck_assert_uint_eq(cfg.reg.nmetrics, 6);
	ck_assert_uint_eq(
	    registry_metric(&cfg.reg, "output_value")->naccept, 1);
	ck_assert_ptr_null(registry_metric_unit(
	    registry_metric(&cfg.reg, "output_value"), "CNY_10K"));
	/* Untouched keys keep the file's values. */
	ck_assert_uint_eq(cfg.pub_hwm, 100000);
	ck_assert_str_eq(
	    registry_metric(&cfg.reg, "output_value")->unit, "CNY_100M");
}
END_TEST

START_TEST(sync_and_log_values)
{
	static const struct {
		const char *text;
		int sync;
		int log;
		int format;
	} cases[] = {
		{ MINI "[daemon]\nsync = full\nlog_level = error\n",
		    CONFIG_SYNC_FULL, CONFIG_LOG_ERROR, CONFIG_LOG_PLAIN },
		{ MINI "[daemon]\nsync = nometasync\nlog_level = warning\n"
		       "log_format = json\n",
		    CONFIG_SYNC_NOMETASYNC, CONFIG_LOG_WARNING,
		    CONFIG_LOG_JSON },
		{ MINI "[daemon]\nsync = none\nlog_level = debug\n"
		       "log_format = plain\n",
		    CONFIG_SYNC_NONE, CONFIG_LOG_DEBUG, CONFIG_LOG_PLAIN },
	};

	for (size_t i = 0; i < NELEM(cases); i++) {
		ck_assert_msg(config_parse(&cfg, cases[i].text, "t", err,
				  sizeof(err)) == 0,
		    "%s", err);
		ck_assert_int_eq(cfg.sync, cases[i].sync);
		ck_assert_int_eq(cfg.log_level, cases[i].log);
		ck_assert_int_eq(cfg.log_format, cases[i].format);
	}
}
END_TEST

/* A config struct reused for a second file forgets the first. */
START_TEST(parse_starts_afresh)
{
	ck_assert_int_eq(config_load(&cfg, NULL, err, sizeof(err)), 0);
	ck_assert_msg(
	    config_parse(&cfg, MINI, "mini", err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(cfg.reg.ndistricts, 1);
	ck_assert_uint_eq(cfg.reg.nindustries, 1);
	ck_assert_uint_eq(cfg.reg.nmetrics, 1);
	ck_assert_uint_eq(cfg.reg.ntargets, 0);
}
END_TEST

/* Endpoints and metrics addresses that must pass. */
static const char *const good_lines[] = {
	"[daemon]\ningest = tcp://*:7401\n",
	"[daemon]\ningest = tcp://0.0.0.0:7401\nallow_insecure_remote = true\n",
	"[daemon]\npublish = tcp://[::1]:7402\n",
	"[daemon]\nsnapshot = tcp://localhost:65535\n",
	"[daemon]\ningest = ipc:///run/indicatord/ingest\n",
	"[daemon]\ncontrol = ipc:///tmp/indicatord-control\n",
	"[daemon]\ncontrol =\n",
	"[daemon]\nmetrics = 127.0.0.1:9464\n",
	"[daemon]\nmetrics = 127.1.2.3:1\n",
	"[daemon]\nmetrics = localhost:9464\n",
	"[daemon]\nmetrics =\n",
	"[daemon]\ntimezone = America/Port-au-Prince\n",
	"[daemon]\ntimezone = Etc/GMT+8\n",
	"",
	"# nothing but a comment\n",
};

START_TEST(good_config)
{
	err[0] = '\0';
	ck_assert_msg(config_parse(&cfg, good_lines[_i], "good.conf", err,
			  sizeof(err)) == 0,
	    "'%s': %s", good_lines[_i], err);
}
END_TEST

/* --- long lines ------------------------------------------------------- */

/* n copies of s, in memory the caller frees. */
static char *
repeat(const char *s, size_t n)
{
	size_t len = strlen(s);
	char *r = malloc(len * n + 1);

	ck_assert_ptr_nonnull(r);
	for (size_t i = 0; i < n; i++)
		memcpy(r + i * len, s, len);
	r[len * n] = '\0';
	return r;
}

/* printf into memory the caller frees. */
static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
format(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	ck_assert_int_ge(n, 0);
	s = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(s);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/*
 * A 300-character Chinese name (900 bytes of UTF-8) is taken whole: the
 * line is far past libinih's default 200 bytes, which cut such a line in
 * two.
 */
START_TEST(long_chinese_name)
{
	char *name = repeat("昆", 300);
	char *text = format("%s[district 320583]\nname = %s\n[daemon]\n"
			    "batch_max = 7\n",
	    config_default_text, name);

	ck_assert_uint_eq(strlen(name), 900);
	ck_assert_msg(
	    config_parse(&cfg, text, "t", err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(registry_district(&cfg.reg, "320583")->name, name);
	ck_assert_uint_eq(cfg.batch_max, 7);
	free(text);
	free(name);
}
END_TEST

/* Lines of 4 KiB: a comment, and a value with an inline comment. */
START_TEST(line_of_4k)
{
	char *pad = repeat("x", 4096);
	char *text = format("%s# %s\n[metric output_value]\n"
			    "name = 总产值 ; %s\n[daemon]\nbatch_max = 9\n",
	    config_default_text, pad, pad);

	ck_assert_msg(config_parse(&cfg, text, "t", err, sizeof(err)) == 0,
	    "%.200s", err);
	ck_assert_str_eq(
	    registry_metric(&cfg.reg, "output_value")->name, "总产值");
	ck_assert_uint_eq(cfg.batch_max, 9);
	free(text);
	free(pad);
}
END_TEST

/*
 * CONFIG_LINE_MAX bytes pass, with LF or CRLF; one more is refused with the
 * line's number, not cut into a "syntax error" further down.
 */
static const struct {
	size_t len; /* of the comment line, without its end */
	const char *end;
	bool ok;
} line_limits[] = {
	{ CONFIG_LINE_MAX, "\n", true },
	{ CONFIG_LINE_MAX, "\r\n", true },
	{ CONFIG_LINE_MAX + 1, "\n", false },
	{ CONFIG_LINE_MAX + 1, "\r\n", false },
};

START_TEST(line_limit)
{
	char *pad = repeat("y", line_limits[_i].len - 2);
	char *text = format("[daemon]%s# %s%sbatch_max = 3%s",
	    line_limits[_i].end, pad, line_limits[_i].end, line_limits[_i].end);
	int rc = config_parse(&cfg, text, "t", err, sizeof(err));

	if (line_limits[_i].ok) {
		ck_assert_msg(rc == 0, "%.200s", err);
		ck_assert_uint_eq(cfg.batch_max, 3);
	} else {
		ck_assert_int_eq(rc, -1);
		ck_assert_msg(
		    strstr(err, "t:2: line longer than 65536 bytes") != NULL,
		    "%s", err);
	}
	free(text);
	free(pad);
}
END_TEST

/* A name past IND_NAME_MAX bytes is refused, saying the limit. */
START_TEST(name_too_long)
{
	char *name = repeat("苏", IND_NAME_MAX / 3 + 1);
	char *text = format("[industry quantum]\nname = %s\n", name);

	ck_assert_int_eq(config_parse(&cfg, text, "t", err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "t:2: [industry quantum] name: longer than "
				  "1024 bytes") != NULL,
	    "%s", err);
	free(text);
	free(name);
}
END_TEST

/* --- drop-ins and the registry's layers ------------------------------- */

static char tmpdir[64];

static void
tmp_make(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_config.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
tmp_remove(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Writes text to tmpdir/name; its path into path (1024 bytes). */
static void
tmp_file(const char *name, const char *text, char *path)
{
	char buf[1024];
	FILE *f;

	if (path == NULL)
		path = buf;
	snprintf(path, 1024, "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	ck_assert_msg(f != NULL, "%s", path);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

static void
tmp_mkdir(const char *name)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	ck_assert_int_eq(mkdir(path, 0700), 0);
}

/*
 * Drop-ins are read after the file, in byte order of their names (upper
 * case before lower, whatever the locale), and only regular files named
 * *.conf that do not start with '.'.
 */
START_TEST(dropins_in_order)
{
	char path[1024], link[1024], **names;
	size_t n;

	tmp_make();
	tmp_file(
	    "indicatord.conf", "[daemon]\nbatch_max = 1\npub_hwm = 5\n", path);
	tmp_mkdir("conf.d");
	tmp_file("conf.d/b.conf", "[daemon]\nbatch_max = 3\n", NULL);
	tmp_file(
	    "conf.d/B.conf", "[daemon]\nbatch_max = 2\nrate_limit = 7\n", NULL);
	tmp_file("conf.d/10-limits.conf", "[limits]\nmax_note = 9\n", NULL);
	/* Not read: each would fail or change something. */
	tmp_file("conf.d/.hidden.conf", "[daemon]\nbatch_max = 99\n", NULL);
	tmp_file("conf.d/c.conf.orig", "bogus\n", NULL);
	tmp_file("conf.d/c.conf~", "bogus\n", NULL);
	tmp_file("conf.d/README", "bogus\n", NULL);
	tmp_file("conf.d/.conf", "bogus\n", NULL);
	tmp_mkdir("conf.d/d.conf");
	/* A link to a regular file is read. */
	tmp_file("linked", "[daemon]\npub_hwm = 6\n", NULL);
	snprintf(link, sizeof(link), "%s/conf.d/z.conf", tmpdir);
	ck_assert_int_eq(symlink("../linked", link), 0);

	ck_assert_msg(
	    config_load(&cfg, path, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(cfg.batch_max, 3);
	ck_assert_uint_eq(cfg.rate_limit, 7);
	ck_assert_uint_eq(cfg.limits.max_note, 9);
	ck_assert_uint_eq(cfg.pub_hwm, 6);
	ck_assert(cfg.registry_builtin);

	ck_assert_int_eq(config_dropins(path, &names, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_str_eq(strrchr(names[0], '/'), "/10-limits.conf");
	ck_assert_str_eq(strrchr(names[1], '/'), "/B.conf");
	ck_assert_str_eq(strrchr(names[2], '/'), "/b.conf");
	ck_assert_str_eq(strrchr(names[3], '/'), "/z.conf");
	ck_assert(strncmp(names[0], tmpdir, strlen(tmpdir)) == 0);
	config_dropins_free(names, n);
	tmp_remove();
}
END_TEST

/* No conf.d: the file alone. A path without a directory looks in ./conf.d. */
START_TEST(dropins_none)
{
	char **names;
	size_t n;

	tmp_make();
	ck_assert_int_eq(config_dropins("/nonexistent-indicatord/x.conf",
			     &names, &n, err, sizeof(err)),
	    0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(
	    config_dropins("x.conf", &names, &n, err, sizeof(err)), 0);
	config_dropins_free(names, n);
	tmp_remove();
}
END_TEST

/* An error in a drop-in names the drop-in and its line. */
static const struct {
	const char *file; /* under conf.d, or "conf.d" itself */
	const char *text; /* NULL: a dangling link */
	const char *want; /* after the path */
} dropin_errors[] = {
	{ "50-site.conf", "[daemon]\n\nbatch_max = 0\n",
	    ":3: [daemon] batch_max: 0 is outside 1..100000" },
	{ "50-site.conf", "[daemon]\ningest = 127.0.0.1:7401\n",
	    ":2: [daemon] ingest: '127.0.0.1:7401' has no scheme" },
	{ "50-site.conf", "[deamon]\nbatch_max = 5\n",
	    ":2: unknown section [deamon]" },
	{ "50-site.conf", NULL, ": No such file or directory" },
	{ "conf.d", "not a directory\n", ": Not a directory" },
};

START_TEST(dropin_error)
{
	char path[1024], want[2048];

	tmp_make();
	tmp_file("indicatord.conf", "[daemon]\nbatch_max = 1\n", path);
	if (strcmp(dropin_errors[_i].file, "conf.d") == 0) {
		tmp_file("conf.d", dropin_errors[_i].text, NULL);
		snprintf(want, sizeof(want), "%s/conf.d%s", tmpdir,
		    dropin_errors[_i].want);
	} else {
		tmp_mkdir("conf.d");
		snprintf(want, sizeof(want), "%s/conf.d/%s%s", tmpdir,
		    dropin_errors[_i].file, dropin_errors[_i].want);
		if (dropin_errors[_i].text != NULL) {
			char name[256];

			snprintf(name, sizeof(name), "conf.d/%s",
			    dropin_errors[_i].file);
			tmp_file(name, dropin_errors[_i].text, NULL);
		} else {
			char link[1024];

			snprintf(link, sizeof(link), "%s/conf.d/%s", tmpdir,
			    dropin_errors[_i].file);
			ck_assert_int_eq(symlink("nowhere", link), 0);
		}
	}
	ck_assert_int_eq(config_load(&cfg, path, err, sizeof(err)), -1);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
	    "'%s' does not start with '%s'", err, want);
	tmp_remove();
}
END_TEST

/* The agent's file has drop-ins too. */
START_TEST(agent_dropins)
{
	struct agent_config a;
	char path[1024];

	tmp_make();
	tmp_file("agent.conf", "[agent]\nid = kunshan-01\nwindow = 5\n", path);
	tmp_mkdir("conf.d");
	tmp_file("conf.d/district.conf", "[agent]\ndistrict = 320583\n", NULL);
	tmp_file("conf.d/window.conf", "[agent]\nwindow = 7\n", NULL);
	ck_assert_msg(
	    agent_config_load(&a, path, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(a.id, "kunshan-01");
	ck_assert_str_eq(a.district, "320583");
	ck_assert_uint_eq(a.window, 7);
	tmp_file("conf.d/window.conf", "[agent]\nwindow = 0\n", NULL);
	ck_assert_int_eq(agent_config_load(&a, path, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "conf.d/window.conf:2: [agent] window: 0 is "
				  "outside 1..10000") != NULL,
	    "%s", err);
	tmp_remove();
}
END_TEST

/*
 * The registry is the built-in one unless the files define any of it; then
 * exactly what they define, merged in reading order. Each case is a main
 * file and one drop-in (NULL: none); the result is counted.
 */
#define DEFAULT "@default@" /* stands for config_default_text */

static const struct {
	const char *name;
	const char *main;
	const char *dropin;
	bool builtin;
	size_t ndistricts, nindustries, nmetrics, ntargets;
	double target_2030; /* output_value/'*'/city/2030; 0: none */
	const char *kunshan; /* the name of 320583; NULL: not registered */
	const char *err; /* NULL: loads */
} layers[] = {
	{ "[daemon] only", "[daemon]\nbatch_max = 5\n", NULL, true, 10, 8, 6, 8,
	    5000, "昆山市", NULL },
	{ "[daemon] only, with a [daemon] drop-in", "[daemon]\nbatch_max = 5\n",
	    "[daemon]\nbatch_max = 6\n", true, 10, 8, 6, 8, 5000, "昆山市",
	    NULL },
	{ "first_year is a key, not the registry",
	    "[registry]\nfirst_year = 2020\n", NULL, true, 10, 8, 6, 8, 5000,
	    "昆山市", NULL },
	{ "the shipped file, a drop-in changing one target", DEFAULT,
	    "[target]\noutput_value/*/city/2030 = 6000\n", false, 10, 8, 6, 8,
	    6000, "昆山市", NULL },
	{ "the shipped file, a drop-in adding a target", DEFAULT,
	    "[target]\noutput_value/*/320583/2030 = 700\n", false, 10, 8, 6, 9,
	    5000, "昆山市", NULL },
	{ "the shipped file, a drop-in renaming a district", DEFAULT,
	    "[district 320583]\nname = Kunshan\n", false, 10, 8, 6, 8, 5000,
	    "Kunshan", NULL },
	{ "the shipped file, a drop-in adding a district", DEFAULT,
	    "[district 320599]\nname = 新区\n", false, 11, 8, 6, 8, 5000,
	    "昆山市", NULL },
	{ "a registry of its own", MINI, NULL, false, 1, 1, 1, 0, 0, "Kunshan",
	    NULL },
	{ "a registry of its own, a target in a drop-in", MINI,
	    "[target]\noutput_value/*/city/2030 = 50\n", false, 1, 1, 1, 1, 50,
	    "Kunshan", NULL },
	{ "[daemon] only, a drop-in with one target",
	    "[daemon]\nbatch_max = 5\n",
	    "[target]\noutput_value/*/city/2030 = 6000\n", false, 0, 0, 0, 0, 0,
	    NULL,
	    "registry: no [district CODE] section (@dropin@ defines part of "
	    "the registry, so the built-in one is not used: the files must "
	    "define all of it)" },
	{ "[daemon] only, a drop-in renaming a district",
	    "[daemon]\nbatch_max = 5\n", "[district 320583]\nname = Kunshan\n",
	    false, 0, 0, 0, 0, 0, NULL,
	    "registry: no [industry CODE] section (@dropin@ defines part" },
	{ "a registry without its targets' metrics", MINI_NO_DISTRICT,
	    "[district 320583]\nname = K\n[target]\nchain_leaders/*/city/2030 "
	    "= "
	    "20\n",
	    false, 0, 0, 0, 0, 0, NULL,
	    "target chain_leaders/*/city/2030: unknown metric" },
};

START_TEST(registry_layers)
{
	char path[1024], dropin[1024], want[4096];
	const char *at;

	tmp_make();
	tmp_file("indicatord.conf",
	    strcmp(layers[_i].main, DEFAULT) == 0 ? config_default_text
						  : layers[_i].main,
	    path);
	if (layers[_i].dropin != NULL) {
		tmp_mkdir("conf.d");
		tmp_file("conf.d/50-site.conf", layers[_i].dropin, dropin);
	}
	err[0] = '\0';
	if (layers[_i].err != NULL) {
		ck_assert_msg(config_load(&cfg, path, err, sizeof(err)) == -1,
		    "%s: loaded", layers[_i].name);
		/* "main: reason", the drop-in's path in place of @dropin@. */
		at = strstr(layers[_i].err, "@dropin@");
		if (at == NULL)
			snprintf(
			    want, sizeof(want), "%s: %s", path, layers[_i].err);
		else
			snprintf(want, sizeof(want), "%s: %.*s%s%s", path,
			    (int)(at - layers[_i].err), layers[_i].err, dropin,
			    at + strlen("@dropin@"));
		ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
		    "%s: '%s' does not start with '%s'", layers[_i].name, err,
		    want);
		tmp_remove();
		return;
	}
	ck_assert_msg(config_load(&cfg, path, err, sizeof(err)) == 0, "%s: %s",
	    layers[_i].name, err);
	ck_assert_msg(
	    cfg.registry_builtin == layers[_i].builtin, "%s", layers[_i].name);
	ck_assert_uint_eq(cfg.reg.ndistricts, layers[_i].ndistricts);
	ck_assert_uint_eq(cfg.reg.nindustries, layers[_i].nindustries);
	ck_assert_uint_eq(cfg.reg.nmetrics, layers[_i].nmetrics);
	ck_assert_uint_eq(cfg.reg.ntargets, layers[_i].ntargets);
	if (layers[_i].target_2030 > 0) {
		const struct reg_target *t = registry_target(
		    &cfg.reg, "output_value", "*", "city", 2030);

		ck_assert_ptr_nonnull(t);
		ck_assert_int_eq(t->year, 2030);
		ck_assert_double_eq(t->value, layers[_i].target_2030);
	}
	ck_assert_str_eq(
	    registry_district(&cfg.reg, "320583")->name, layers[_i].kunshan);
	tmp_remove();
}
END_TEST

/* The built-in registry keeps the files' first_year. */
START_TEST(registry_builtin_first_year)
{
	ck_assert_msg(config_parse(&cfg, "[registry]\nfirst_year = 2020\n", "t",
			  err, sizeof(err)) == 0,
	    "%s", err);
	ck_assert(cfg.registry_builtin);
	ck_assert_int_eq(cfg.reg.first_year, 2020);
	load_default(&cfg2);
	cfg2.reg.first_year = 2020;
	assert_same_config(&cfg, &cfg2);
}
END_TEST

/* --- validators and the command line's keys --------------------------- */

static const struct {
	const char *tz;
	const char *tzdir; /* NULL: the system's; "@tmp@": a test zone dir */
	const char *want; /* in the reason; NULL: valid */
} zones[] = {
	{ "Asia/Shanghai", NULL, NULL },
	{ "UTC", NULL, NULL },
	{ "Mars/Olympus", NULL,
	    "time zone 'Mars/Olympus' is unknown: "
	    "/usr/share/zoneinfo/Mars/Olympus is not a zone file" },
	{ "Asia", NULL, "time zone 'Asia' is unknown" },
	{ "Asia/", NULL, "is unknown" },
	{ "", NULL, "time zone '' is not a tz database name" },
	{ "/etc/localtime", NULL, "is not a tz database name" },
	{ "Asia/../../../etc/passwd", NULL, "is not a tz database name" },
	{ "Asia/Shang hai", NULL, "is not a tz database name" },
	{ "Test/Zone", "@tmp@", NULL },
	{ "Test/NotTZif", "@tmp@", "is unknown" },
	{ "Asia/Shanghai", "@tmp@", "is unknown" },
};

START_TEST(zone_check)
{
	char why[512], dir[1024];
	const char *tzdir = zones[_i].tzdir, *got;

	tmp_make();
	if (tzdir != NULL) {
		tmp_mkdir("Test");
		tmp_file(
		    "Test/Zone", "TZif2 and the rest of a zone file", NULL);
		tmp_file("Test/NotTZif", "# not a zone\n", NULL);
		snprintf(dir, sizeof(dir), "%s", tmpdir);
		tzdir = dir;
	}
	got = config_check_zone(zones[_i].tz, tzdir, why, sizeof(why));
	if (zones[_i].want == NULL)
		ck_assert_msg(got == NULL, "%s: %s", zones[_i].tz, why);
	else
		ck_assert_msg(got == why && strstr(why, zones[_i].want) != NULL,
		    "%s: '%s' does not say '%s'", zones[_i].tz,
		    got ? why : "(valid)", zones[_i].want);
	tmp_remove();
}
END_TEST

START_TEST(listen_parts)
{
	uint32_t addr = 0;
	uint16_t port = 0;
	char why[256];

	ck_assert_ptr_null(
	    config_check_listen("127.0.0.2:9464", &addr, &port, why, 256));
	ck_assert_uint_eq(addr, 0x7f000002);
	ck_assert_uint_eq(port, 9464);
	ck_assert_ptr_null(
	    config_check_listen("localhost:1", &addr, &port, why, 256));
	ck_assert_uint_eq(addr, 0x7f000001);
	ck_assert_uint_eq(port, 1);
}
END_TEST

/*
 * A command-line option that mirrors a key takes the key's bounds and
 * syntax from the one table, and its message names both.
 */
static const struct {
	const char *key;
	const char *val;
	const char *what;
	const char *want; /* NULL: taken */
} agent_sets[] = {
	{ "ack_timeout_ms", "99", "--ack-timeout",
	    "--ack-timeout (ack_timeout_ms): 99 is outside 100..600000" },
	{ "ack_timeout_ms", "600001", "--ack-timeout",
	    "--ack-timeout (ack_timeout_ms): 600001 is outside 100..600000" },
	{ "ack_timeout_ms", "100", "--ack-timeout", NULL },
	{ "window", "0", "--window",
	    "--window (window): 0 is outside 1..10000" },
	{ "window", "ten", "--window",
	    "--window (window): 'ten' is not an integer" },
	{ "heartbeat_ms", "3600001", "--heartbeat", "outside 0..3600000" },
	{ "endpoint", "127.0.0.1:7401", "--endpoint",
	    "--endpoint (endpoint): '127.0.0.1:7401' has no scheme" },
	{ "endpoint", "tcp://10.0.0.1:7401", "--endpoint", NULL },
	{ "id", S64 "x", "--id", "--id (id): longer than 64 bytes" },
	{ "colour", "red", "--colour", "--colour: no key [agent] colour" },
};

START_TEST(agent_set)
{
	struct agent_config a;

	agent_config_defaults(&a);
	err[0] = '\0';
	if (agent_sets[_i].want == NULL) {
		ck_assert_msg(
		    agent_config_set(&a, agent_sets[_i].key, agent_sets[_i].val,
			agent_sets[_i].what, err, sizeof(err)) == 0,
		    "%s", err);
		return;
	}
	ck_assert_int_eq(
	    agent_config_set(&a, agent_sets[_i].key, agent_sets[_i].val,
		agent_sets[_i].what, err, sizeof(err)),
	    -1);
	ck_assert_msg(strcmp(err, agent_sets[_i].want) == 0 ||
			  strstr(err, agent_sets[_i].want) != NULL,
	    "'%s' does not say '%s'", err, agent_sets[_i].want);
}
END_TEST

START_TEST(agent_bounds)
{
	long long min, max;
	const char *def;

	ck_assert_int_eq(
	    agent_config_bounds("ack_timeout_ms", &min, &max, &def), 0);
	ck_assert_int_eq(min, 100);
	ck_assert_int_eq(max, 600000);
	ck_assert_str_eq(def, "5000");
	ck_assert_int_eq(agent_config_bounds("window", &min, &max, &def), 0);
	ck_assert_int_eq(max, 10000);
	ck_assert_int_eq(agent_config_bounds("endpoint", &min, &max, &def), -1);
	ck_assert_int_eq(agent_config_bounds("colour", &min, &max, &def), -1);
}
END_TEST

START_TEST(daemon_set)
{
	load_default(&cfg);
	ck_assert_int_eq(config_set(&cfg, "daemon", "data_dir", "/srv/x", "-d",
			     err, sizeof(err)),
	    0);
	ck_assert_str_eq(cfg.data_dir, "/srv/x");
	ck_assert_int_eq(config_set(&cfg, "daemon", "publish", "127.0.0.1:7402",
			     "--publish", err, sizeof(err)),
	    -1);
	ck_assert_msg(strstr(err, "--publish (publish): '127.0.0.1:7402' has "
				  "no scheme") != NULL,
	    "%s", err);
}
END_TEST

/* --- config_resolve_dir ---------------------------------------------- */

static const struct {
	const char *data_dir;
	const char *state_dir;
	const char *want;
} dirs[] = {
	{ "/srv/indicatord", "/var/lib/indicatord", "/srv/indicatord" },
	{ "/srv/indicatord", NULL, "/srv/indicatord" },
	{ "", "/var/lib/indicatord", "/var/lib/indicatord" },
	{ "", NULL, "./indicatord-data" },
	{ "", "", "./indicatord-data" },
};

START_TEST(resolve_dir)
{
	load_default(&cfg);
	snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dirs[_i].data_dir);
	config_resolve_dir(&cfg, dirs[_i].state_dir);
	ck_assert_str_eq(cfg.data_dir, dirs[_i].want);
}
END_TEST

/* --- agent configuration --------------------------------------------- */

static void
assert_agent_defaults(const struct agent_config *a)
{
	ck_assert_str_eq(a->id, "");
	ck_assert_str_eq(a->district, "");
	ck_assert_str_eq(a->endpoint, "tcp://127.0.0.1:7401");
	ck_assert_str_eq(a->outbox, "./indicator-agent-outbox");
	ck_assert_uint_eq(a->window, 100);
	ck_assert_uint_eq(a->ack_timeout_ms, 5000);
	ck_assert_uint_eq(a->report_size, 50);
	ck_assert_uint_eq(a->heartbeat_ms, 0);
	ck_assert_int_eq(a->log_format, CONFIG_LOG_PLAIN);
}

START_TEST(agent_defaults)
{
	struct agent_config a;

	memset(&a, 0xa5, sizeof(a));
	agent_config_defaults(&a);
	assert_agent_defaults(&a);
	memset(&a, 0xa5, sizeof(a));
	ck_assert_msg(
	    agent_config_parse(&a, "# nothing\n", "a", err, sizeof(err)) == 0,
	    "%s", err);
	assert_agent_defaults(&a);
}
END_TEST

START_TEST(agent_full)
{
	struct agent_config a;
	const char *text = "[agent]\n"
			   "id = kunshan-01\n"
			   "district = 320583\n"
			   "endpoint = tcp://10.1.2.3:7401\n"
			   "outbox = /var/lib/indicator-agent/outbox\n"
			   "window = 10\n"
			   "ack_timeout_ms = 2000\n"
			   "report_size = 200\n"
			   "heartbeat_ms = 30000\n"
			   "log_format = json\n";

	ck_assert_msg(agent_config_parse(&a, text, "a", err, sizeof(err)) == 0,
	    "%s", err);
	ck_assert_str_eq(a.id, "kunshan-01");
	ck_assert_str_eq(a.district, "320583");
	ck_assert_str_eq(a.endpoint, "tcp://10.1.2.3:7401");
	ck_assert_str_eq(a.outbox, "/var/lib/indicator-agent/outbox");
	ck_assert_uint_eq(a.window, 10);
	ck_assert_uint_eq(a.ack_timeout_ms, 2000);
	ck_assert_uint_eq(a.report_size, 200);
	ck_assert_uint_eq(a.heartbeat_ms, 30000);
	ck_assert_int_eq(a.log_format, CONFIG_LOG_JSON);
}
END_TEST

START_TEST(agent_id_at_limit)
{
	struct agent_config a;

	ck_assert_msg(agent_config_parse(&a, "[agent]\nid = " S64 "\n", "a",
			  err, sizeof(err)) == 0,
	    "%s", err);
	ck_assert_str_eq(a.id, S64);
}
END_TEST

/* --- the names clerks use ------------------------------------------ */

static const struct {
	enum reg_kind kind;
	const char *text;
	const char *code; /* NULL: names nothing */
} resolves[] = {
	{ REG_INDUSTRY, "materials", "materials" },
	{ REG_INDUSTRY, "Materials", "materials" },
	{ REG_INDUSTRY, "MATERIALS", "materials" },
	{ REG_INDUSTRY, "前沿新材料", "materials" },
	{ REG_INDUSTRY, "新材料", "materials" },
	{ REG_INDUSTRY, "光子芯片与光器件", "photonics" },
	{ REG_INDUSTRY, "元宇宙", "metaverse" },
	{ REG_INDUSTRY, "氢能", "hydrogen" },
	{ REG_INDUSTRY, "数字金融", "digifin" },
	{ REG_INDUSTRY, "细胞和基因诊疗", "cellgene" },
	{ REG_INDUSTRY, "空天开发", "aerospace" },
	{ REG_INDUSTRY, "量子技术", "quantum" },
	{ REG_INDUSTRY, "新能源", NULL },
	{ REG_INDUSTRY, "output_value", NULL },
	{ REG_METRIC, "总产值", "output_value" },
	{ REG_METRIC, "产值", "output_value" },
	{ REG_METRIC, "Output_Value", "output_value" },
	{ REG_METRIC, "创新平台", "innovation_platforms" },
	{ REG_METRIC, "链主企业", "chain_leaders" },
	{ REG_METRIC, "先导园区", "pilot_parks" },
	{ REG_METRIC, "核心产品", "core_products" },
	{ REG_METRIC, "应用场景", "app_scenarios" },
	{ REG_METRIC, "materials", NULL },
	{ REG_UNIT, "亿元", "CNY_100M" },
	{ REG_UNIT, "万元", "CNY_10K" },
	{ REG_UNIT, "元", "CNY" },
	{ REG_UNIT, "个", "count" },
	{ REG_UNIT, "家", "count" },
	{ REG_UNIT, "项", "count" },
	{ REG_UNIT, "cny_100m", "CNY_100M" },
	{ REG_UNIT, "Count", "count" },
	{ REG_UNIT, "千元", NULL },
	{ REG_COLUMN, "行业", "industry" },
	{ REG_COLUMN, "指标", "metric" },
	{ REG_COLUMN, "报告期", "period" },
	{ REG_COLUMN, "期间", "period" },
	{ REG_COLUMN, "数值", "value" },
	{ REG_COLUMN, "数据", "value" },
	{ REG_COLUMN, "单位", "unit" },
	{ REG_COLUMN, "状态", "status" },
	{ REG_COLUMN, "备注", "note" },
	{ REG_COLUMN, "VALUE", "value" },
	{ REG_COLUMN, "颜色", NULL },
	{ REG_STATUS, "Final", "final" },
	{ REG_STATUS, "初步", "provisional" },
	{ REG_STATUS, "修订", "revised" },
	{ REG_STATUS, "草稿", NULL },
};

START_TEST(default_aliases)
{
	const char *t = resolves[_i].text;
	const char *got;

	load_default(&cfg);
	got = registry_resolve(&cfg.reg, resolves[_i].kind, t, strlen(t));
	if (resolves[_i].code == NULL)
		ck_assert_msg(got == NULL, "'%s' names %s", t, got);
	else
		ck_assert_msg(
		    got != NULL && strcmp(got, resolves[_i].code) == 0,
		    "'%s' names %s, not %s", t, got ? got : "nothing",
		    resolves[_i].code);
}
END_TEST

/* A later aliases line replaces the list; an empty one removes it; a
 * full-width comma separates as a comma does. */
START_TEST(aliases_override)
{
	char *text = concat(config_default_text,
	    "[industry materials]\naliases = 新材料产业，先进材料 , 材料\n"
	    "[metric output_value]\naliases =\n"
	    "[columns]\nvalue = 金额\n");
	char list[512];

	ck_assert_msg(
	    config_parse(&cfg, text, "t", err, sizeof(err)) == 0, "%s", err);
	free(text);
	ck_assert_str_eq(registry_resolve(&cfg.reg, REG_INDUSTRY, "先进材料",
			     strlen("先进材料")),
	    "materials");
	ck_assert_str_eq(
	    registry_resolve(&cfg.reg, REG_INDUSTRY, "材料", strlen("材料")),
	    "materials");
	ck_assert_ptr_null(registry_resolve(
	    &cfg.reg, REG_INDUSTRY, "前沿新材料", strlen("前沿新材料")));
	ck_assert_ptr_null(
	    registry_resolve(&cfg.reg, REG_METRIC, "产值", strlen("产值")));
	ck_assert_ptr_null(
	    registry_resolve(&cfg.reg, REG_COLUMN, "数值", strlen("数值")));
	ck_assert_str_eq(
	    registry_resolve(&cfg.reg, REG_COLUMN, "金额", strlen("金额")),
	    "value");
	ck_assert_str_eq(
	    registry_alias(&cfg.reg, REG_INDUSTRY, "materials"), "新材料产业");
	ck_assert_ptr_null(
	    registry_alias(&cfg.reg, REG_METRIC, "output_value"));
	registry_list(&cfg.reg, REG_METRIC, NULL, list, sizeof(list));
	ck_assert_msg(
	    strncmp(list, "output_value, innovation_platforms (创新平台), ",
		strlen("output_value, innovation_platforms (创新平台), ")) == 0,
	    "%s", list);
}
END_TEST

/* The lists in messages: a metric's units only, cut with "..." when the
 * buffer is short. */
START_TEST(registry_lists)
{
	char list[512], small[40];

	load_default(&cfg);
	registry_list(&cfg.reg, REG_UNIT,
	    registry_metric(&cfg.reg, "output_value"), list, sizeof(list));
	ck_assert_str_eq(list, "CNY_100M (亿元), CNY_10K (万元), CNY (元)");
	registry_list(&cfg.reg, REG_UNIT,
	    registry_metric(&cfg.reg, "chain_leaders"), list, sizeof(list));
	ck_assert_str_eq(list, "count (个)");
	registry_list(&cfg.reg, REG_UNIT, NULL, list, sizeof(list));
	ck_assert_str_eq(
	    list, "CNY_100M (亿元), CNY_10K (万元), CNY (元), count (个)");
	registry_list(&cfg.reg, REG_INDUSTRY, NULL, small, sizeof(small));
	ck_assert_msg(strlen(small) < sizeof(small) &&
			  strcmp(small + strlen(small) - 3, "...") == 0,
	    "%s", small);
}
END_TEST

/* The agent's file may carry the registry, as the daemon's does; without
 * it, the built-in one (with its aliases). */
START_TEST(agent_registry)
{
	struct agent_config a;

	ck_assert_msg(agent_config_parse(
			  &a, "[agent]\nid = k\n", "a", err, sizeof(err)) == 0,
	    "%s", err);
	ck_assert(a.registry_builtin);
	ck_assert_uint_eq(a.reg.nindustries, 8);
	ck_assert_str_eq(
	    registry_resolve(&a.reg, REG_UNIT, "万元", 6), "CNY_10K");
	ck_assert_uint_eq(a.limits.max_observations, 1000);
	ck_assert_int_eq(a.encoding, ENC_AUTO);
	ck_assert_str_eq(a.timezone, "Asia/Shanghai");

	ck_assert_msg(agent_config_parse(&a,
			  "[agent]\nid = k\nencoding = GBK\n"
			  "timezone = Europe/Paris\n[limits]\n"
			  "max_observations = 20\n" MINI
			  "[industry photonics]\naliases = 光子\n",
			  "a", err, sizeof(err)) == 0,
	    "%s", err);
	ck_assert(!a.registry_builtin);
	ck_assert_uint_eq(a.reg.ndistricts, 1);
	ck_assert_uint_eq(a.reg.nindustries, 1);
	ck_assert_str_eq(
	    registry_resolve(&a.reg, REG_INDUSTRY, "光子", 6), "photonics");
	ck_assert_uint_eq(a.limits.max_observations, 20);
	ck_assert_int_eq(a.encoding, ENC_GB18030);
	ck_assert_str_eq(a.timezone, "Europe/Paris");

	ck_assert_int_eq(agent_config_parse(&a,
			     "[agent]\nid = k\n[industry x]\naliases = y\n",
			     "a", err, sizeof(err)),
	    -1);
	ck_assert_msg(strstr(err, "a: registry: no [district CODE] section (a "
				  "defines part of the registry") != NULL,
	    "%s", err);
}
END_TEST

static const struct bad_case bad_agent[] = {
	{ "bad encoding", "[agent]\nencoding = latin1\n", 2,
	    "[agent] encoding: 'latin1' is not auto, utf-8, utf-16le, utf-16be "
	    "or gb18030" },
	{ "bad time zone", "[agent]\ntimezone = ../x\n", 2,
	    "[agent] timezone: '../x' is not a tz database name" },
	{ "limits out of bounds", "[limits]\nmax_observations = 0\n", 2,
	    "max_observations: 0 is outside 1..100000" },
	{ "unknown key", "[agent]\nid = k\ncolour = red\n", 3,
	    "[agent]: unknown key 'colour'" },
	{ "daemon section", "[daemon]\nbatch_max = 5\n", 2,
	    "unknown section [daemon]" },
	{ "window 0", "[agent]\nwindow = 0\n", 2,
	    "window: 0 is outside 1..10000" },
	{ "window above", "[agent]\nwindow = 10001\n", 2,
	    "window: 10001 is outside 1..10000" },
	{ "window not a number", "[agent]\nwindow = many\n", 2,
	    "window: 'many' is not an integer" },
	{ "ack timeout too short", "[agent]\nack_timeout_ms = 99\n", 2,
	    "ack_timeout_ms: 99 is outside 100..600000" },
	{ "heartbeat negative", "[agent]\nheartbeat_ms = -1\n", 2,
	    "heartbeat_ms: -1 is outside 0..3600000" },
	{ "id too long", "[agent]\nid = " S64 "x\n", 2,
	    "[agent] id: longer than 64 bytes" },
	{ "bad log_format", "[agent]\nlog_format = JSON\n", 2,
	    "[agent] log_format: 'JSON' is not plain or json" },
};

START_TEST(agent_bad)
{
	const struct bad_case *c = &bad_agent[_i];
	struct agent_config a;
	char prefix[64];

	ck_assert_msg(agent_config_parse(
			  &a, c->text, "agent.conf", err, sizeof(err)) == -1,
	    "%s: accepted", c->name);
	snprintf(prefix, sizeof(prefix), "agent.conf:%d: ", c->line);
	ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0,
	    "%s: '%s' does not start with '%s'", c->name, err, prefix);
	ck_assert_msg(strstr(err, c->msg) != NULL, "%s: '%s' does not say '%s'",
	    c->name, err, c->msg);
}
END_TEST

START_TEST(agent_load_file)
{
	char dir[] = "/tmp/check_config.XXXXXX";
	char path[sizeof(dir) + 16];
	struct agent_config a;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/agent.conf", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("[agent]\nid = taicang-01\ndistrict = 320585\nwindow = 0\n", f);
	fclose(f);
	ck_assert_int_eq(agent_config_load(&a, path, err, sizeof(err)), -1);
	ck_assert_msg(strncmp(err, path, strlen(path)) == 0 &&
			  strncmp(err + strlen(path), ":4: ", 4) == 0,
	    "%s", err);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("[agent]\nid = taicang-01\ndistrict = 320585\n", f);
	fclose(f);
	ck_assert_msg(
	    agent_config_load(&a, path, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(a.id, "taicang-01");
	ck_assert_str_eq(a.district, "320585");
	ck_assert_uint_eq(a.window, 100);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(agent_config_load(&a, path, err, sizeof(err)), -1);
	ck_assert_msg(strncmp(err, path, strlen(path)) == 0, "%s", err);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* --- registry -------------------------------------------------------- */

static const struct {
	const char *metric;
	const char *industry;
	const char *scope;
	int year;
	int want_year; /* 0: no target */
	double want;
} targets[] = {
	{ "output_value", "*", "city", 2015, 2030, 5000 },
	{ "output_value", "*", "city", 2025, 2030, 5000 },
	{ "output_value", "*", "city", 2030, 2030, 5000 },
	{ "output_value", "*", "city", 2031, 2035, 10000 },
	{ "output_value", "*", "city", 2035, 2035, 10000 },
	{ "output_value", "*", "city", 2036, 0, 0 },
	{ "output_value", "photonics", "city", 2025, 0, 0 },
	{ "output_value", "*", "320583", 2025, 0, 0 },
	{ "innovation_platforms", "*", "city", 2026, 2030, 10 },
	{ "innovation_platforms", "*", "city", 2031, 0, 0 },
	{ "chain_leaders", "*", "city", 2030, 2030, 20 },
	{ "core_products", "*", "city", 2029, 2030, 100 },
	{ "clusters_100bn", "*", "city", 2030, 2035, 1 },
	{ "exports", "*", "city", 2030, 0, 0 },
};

START_TEST(target_lookup)
{
	const struct reg_target *t;

	load_default(&cfg);
	t = registry_target(&cfg.reg, targets[_i].metric, targets[_i].industry,
	    targets[_i].scope, targets[_i].year);
	if (targets[_i].want_year == 0) {
		ck_assert_msg(t == NULL, "%s/%s/%s/%d: got %d",
		    targets[_i].metric, targets[_i].industry, targets[_i].scope,
		    targets[_i].year, t ? t->year : 0);
		return;
	}
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(t->year, targets[_i].want_year);
	ck_assert_double_eq(t->value, targets[_i].want);
	ck_assert_str_eq(t->metric, targets[_i].metric);
}
END_TEST

/* Nearest, not first listed. */
START_TEST(target_nearest_whatever_order)
{
	const struct reg_target *t;

	ck_assert_msg(config_parse(&cfg,
			  MINI "[target]\n"
			       "output_value/*/city/2040 = 20000\n"
			       "output_value/*/city/2035 = 10000\n"
			       "output_value/*/city/2030 = 5000\n"
			       "output_value/*/320583/2030 = 700\n",
			  "t", err, sizeof(err)) == 0,
	    "%s", err);
	t = registry_target(&cfg.reg, "output_value", "*", "city", 2026);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(t->year, 2030);
	ck_assert_double_eq(t->value, 5000);
	t = registry_target(&cfg.reg, "output_value", "*", "city", 2036);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(t->year, 2040);
	t = registry_target(&cfg.reg, "output_value", "*", "320583", 2026);
	ck_assert_ptr_nonnull(t);
	ck_assert_double_eq(t->value, 700);
}
END_TEST

static const struct {
	const char *metric;
	const char *unit;
	double value;
	double want; /* exactly */
} conversions[] = {
	{ "output_value", "CNY_10K", 120000, 12 },
	{ "output_value", "CNY_10K", 1, 0.0001 },
	{ "output_value", "CNY_10K", 3, 0.0003 },
	{ "output_value", "CNY_10K", 400000000, 40000 },
	{ "output_value", "CNY_10K", 0, 0 },
	{ "output_value", "CNY", 5000000000.0, 50 },
	{ "output_value", "CNY", 100000000, 1 },
	{ "output_value", "CNY", 12345600000000.0, 123456 },
	{ "output_value", "CNY_100M", 12.5, 12.5 },
	{ "output_value", "CNY_100M", 0.1, 0.1 },
	{ "chain_leaders", "count", 7, 7 },
	{ "core_products", "count", 100000, 100000 },
};

START_TEST(unit_convert)
{
	const struct reg_metric *m;
	const struct reg_unit *u;
	double got;

	load_default(&cfg);
	m = registry_metric(&cfg.reg, conversions[_i].metric);
	ck_assert_ptr_nonnull(m);
	u = registry_metric_unit(m, conversions[_i].unit);
	ck_assert_ptr_nonnull(u);
	got = registry_unit_convert(u, conversions[_i].value);
	ck_assert_msg(got == conversions[_i].want,
	    "%.17g %s: got %.17g, want %.17g", conversions[_i].value,
	    conversions[_i].unit, got, conversions[_i].want);
}
END_TEST

START_TEST(unit_convert_other_factors)
{
	struct reg_unit half = { "half", 0.5 };
	struct reg_unit dozen = { "dozen", 12 };
	struct reg_unit third = { "x", 0.3 };

	ck_assert_double_eq(registry_unit_convert(&half, 7), 3.5);
	ck_assert_double_eq(registry_unit_convert(&dozen, 2), 24);
	ck_assert_double_eq_tol(registry_unit_convert(&third, 10), 3, 1e-12);
}
END_TEST

START_TEST(check_duplicate_target)
{
	struct registry *reg = &cfg.reg;
	char why[256];

	load_default(&cfg);
	ck_assert_ptr_null(registry_check(reg, why, sizeof(why)));
	reg->targets[reg->ntargets] = reg->targets[0];
	reg->ntargets++;
	ck_assert_ptr_eq(registry_check(reg, why, sizeof(why)), why);
	ck_assert_msg(strstr(why, "given twice") != NULL, "%s", why);
}
END_TEST

/*
 * registry.h promises "no duplicate codes". The config parser merges
 * repeated sections, so only a registry built in code can hit this.
 */
START_TEST(check_duplicate_code)
{
	struct registry *reg = &cfg.reg;
	char why[256];

	load_default(&cfg);
	switch (_i) {
	case 0:
		reg->districts[reg->ndistricts++] = reg->districts[3];
		break;
	case 1:
		reg->industries[reg->nindustries++] = reg->industries[0];
		break;
	default:
		reg->metrics[reg->nmetrics++] = reg->metrics[2];
		break;
	}
	ck_assert_msg(registry_check(reg, why, sizeof(why)) != NULL &&
			  strstr(why, "listed twice") != NULL,
	    "a duplicate %s code passed registry_check()",
	    _i == 0   ? "district"
	    : _i == 1 ? "industry"
		      : "metric");
}
END_TEST

/* --- periods --------------------------------------------------------- */

static const struct {
	const char *s;
	bool ok;
	int year;
	enum period_kind kind;
	int n;
	int first_month;
} periods[] = {
	{ "2025", true, 2025, PERIOD_YEAR, 0, 1 },
	{ "2015", true, 2015, PERIOD_YEAR, 0, 1 },
	{ "2025-Q1", true, 2025, PERIOD_QUARTER, 1, 1 },
	{ "2025-Q2", true, 2025, PERIOD_QUARTER, 2, 4 },
	{ "2025-Q3", true, 2025, PERIOD_QUARTER, 3, 7 },
	{ "2025-Q4", true, 2025, PERIOD_QUARTER, 4, 10 },
	{ "2025-01", true, 2025, PERIOD_MONTH, 1, 1 },
	{ "2025-02", true, 2025, PERIOD_MONTH, 2, 2 },
	{ "2025-03", true, 2025, PERIOD_MONTH, 3, 3 },
	{ "2025-04", true, 2025, PERIOD_MONTH, 4, 4 },
	{ "2025-05", true, 2025, PERIOD_MONTH, 5, 5 },
	{ "2025-06", true, 2025, PERIOD_MONTH, 6, 6 },
	{ "2025-07", true, 2025, PERIOD_MONTH, 7, 7 },
	{ "2025-08", true, 2025, PERIOD_MONTH, 8, 8 },
	{ "2025-09", true, 2025, PERIOD_MONTH, 9, 9 },
	{ "2025-10", true, 2025, PERIOD_MONTH, 10, 10 },
	{ "2025-11", true, 2025, PERIOD_MONTH, 11, 11 },
	{ "2025-12", true, 2025, PERIOD_MONTH, 12, 12 },
	{ "1999-12", true, 1999, PERIOD_MONTH, 12, 12 },
	{ "25", false, 0, 0, 0, 0 },
	{ "202", false, 0, 0, 0, 0 },
	{ "20255", false, 0, 0, 0, 0 },
	{ "2025-Q0", false, 0, 0, 0, 0 },
	{ "2025-Q5", false, 0, 0, 0, 0 },
	{ "2025-Q", false, 0, 0, 0, 0 },
	{ "2025Q1", false, 0, 0, 0, 0 },
	{ "2025-Q01", false, 0, 0, 0, 0 },
	{ "2025-00", false, 0, 0, 0, 0 },
	{ "2025-13", false, 0, 0, 0, 0 },
	{ "2025-99", false, 0, 0, 0, 0 },
	{ "2025-1", false, 0, 0, 0, 0 },
	{ "2025-q3", false, 0, 0, 0, 0 },
	{ "2025/09", false, 0, 0, 0, 0 },
	{ "2025-9a", false, 0, 0, 0, 0 },
	{ " 2025", false, 0, 0, 0, 0 },
	{ "2025 ", false, 0, 0, 0, 0 },
	{ "2025-09x", false, 0, 0, 0, 0 },
	{ "2025-09-01", false, 0, 0, 0, 0 },
	{ "-2025", false, 0, 0, 0, 0 },
	{ "+025", false, 0, 0, 0, 0 },
	{ "", false, 0, 0, 0, 0 },
	{ "abcd", false, 0, 0, 0, 0 },
	{ "２０２５", false, 0, 0, 0, 0 },
};

START_TEST(period_parse_table)
{
	struct period p;
	bool ok = period_parse(periods[_i].s, &p);

	ck_assert_msg(
	    ok == periods[_i].ok, "'%s': parse gave %d", periods[_i].s, ok);
	if (!ok)
		return;
	ck_assert_int_eq(p.year, periods[_i].year);
	ck_assert_int_eq(p.kind, periods[_i].kind);
	ck_assert_int_eq(p.n, periods[_i].n);
	ck_assert_int_eq(period_first_month(&p), periods[_i].first_month);
}
END_TEST

/* Periods as clerks write them: each form to its wire form, or refused. */
static const struct {
	const char *s;
	const char *wire; /* NULL: refused */
} clerk_periods[] = {
	{ "2025", "2025" },
	{ "2025年", "2025" },
	{ "2025-09", "2025-09" },
	{ "2025-9", "2025-09" },
	{ "2025/9", "2025-09" },
	{ "2025/09", "2025-09" },
	{ "2025/12", "2025-12" },
	{ "2025年9月", "2025-09" },
	{ "2025年09月", "2025-09" },
	{ "2025年12月", "2025-12" },
	{ "2025年1月", "2025-01" },
	{ "2025-Q3", "2025-Q3" },
	{ "2025-q3", "2025-Q3" },
	{ "2025Q3", "2025-Q3" },
	{ "2025q1", "2025-Q1" },
	{ "2025年第三季度", "2025-Q3" },
	{ "2025年第一季度", "2025-Q1" },
	{ "2025年第四季度", "2025-Q4" },
	{ "2025年第3季度", "2025-Q3" },
	{ "2025年3季度", "2025-Q3" },
	{ "2025年二季度", "2025-Q2" },
	{ "2025年4季度", "2025-Q4" },
	{ "2025年3月", "2025-03" },
	{ "2025-13", NULL },
	{ "2025-0", NULL },
	{ "2025-00", NULL },
	{ "2025/13", NULL },
	{ "2025-Q5", NULL },
	{ "2025-Q0", NULL },
	{ "2025-Q", NULL },
	{ "2025-Q31", NULL },
	{ "2025/Q3", NULL },
	{ "2025年13月", NULL },
	{ "2025年0月", NULL },
	{ "2025年9", NULL },
	{ "2025年9月份", NULL },
	{ "2025年第五季度", NULL },
	{ "2025年第0季度", NULL },
	{ "2025年第三季", NULL },
	{ "2025年5季度", NULL },
	{ "2025年12季度", NULL },
	{ "2025年第12季度", NULL },
	{ "2025.09", NULL },
	{ "2025-09-01", NULL },
	{ "2025/9/1", NULL },
	{ "25-09", NULL },
	{ "Q3 2025", NULL },
	{ "2025 Q3", NULL },
	{ "二〇二五年", NULL },
	{ "", NULL },
	{ "2025-", NULL },
	{ "2025/", NULL },
	{ "2025-123", NULL },
};

START_TEST(period_clerk_table)
{
	struct period p;
	char wire[8];
	bool ok = period_parse_clerk(clerk_periods[_i].s, &p);

	ck_assert_msg(ok == (clerk_periods[_i].wire != NULL),
	    "'%s': parse gave %d", clerk_periods[_i].s, ok);
	if (!ok)
		return;
	period_format(&p, wire, sizeof(wire));
	ck_assert_str_eq(wire, clerk_periods[_i].wire);
	/* The wire form reads back as the same period. */
	ck_assert(period_parse(wire, &p));
}
END_TEST

static const struct {
	const char *s;
	int year;
	int month;
	bool started;
} starts[] = {
	{ "2026-Q4", 2026, 10, true },
	{ "2026-Q4", 2026, 9, false },
	{ "2026-Q4", 2026, 12, true },
	{ "2026-Q1", 2026, 1, true },
	{ "2026-Q2", 2026, 3, false },
	{ "2026-Q2", 2026, 4, true },
	{ "2027", 2026, 12, false },
	{ "2027-01", 2026, 12, false },
	{ "2027-Q1", 2026, 12, false },
	{ "2026", 2026, 1, true },
	{ "2026", 2025, 12, false },
	{ "2026-12", 2026, 11, false },
	{ "2026-12", 2026, 12, true },
	{ "2026-11", 2026, 11, true },
	{ "2025-12", 2026, 1, true },
	{ "2025-Q4", 2026, 1, true },
	{ "2015", 2026, 11, true },
};

START_TEST(period_started_table)
{
	struct period p;

	ck_assert(period_parse(starts[_i].s, &p));
	ck_assert_msg(period_started(&p, starts[_i].year, starts[_i].month) ==
			  starts[_i].started,
	    "%s on %04d-%02d: want started=%d", starts[_i].s, starts[_i].year,
	    starts[_i].month, starts[_i].started);
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("default");
	tcase_add_test(tc, default_registry);
	tcase_add_test(tc, default_output_value_units);
	tcase_add_test(tc, default_targets);
	tcase_add_test(tc, default_daemon_and_limits);
	tcase_add_test(tc, table_defaults_match_file);
	tcase_add_test(tc, shipped_file_equals_default);
	suite_add_tcase(s, tc);

	tc = tcase_create("bad");
	tcase_add_test(tc, mini_is_good);
	tcase_add_loop_test(tc, bad_config, 0, NELEM(bad));
	tcase_add_loop_test(tc, good_config, 0, NELEM(good_lines));
	tcase_add_loop_test(tc, unreadable_file, 0, NELEM(unreadable));
	tcase_add_test(tc, missing_file_says_why);
	suite_add_tcase(s, tc);

	tc = tcase_create("override");
	tcase_add_test(tc, later_lines_override);
	tcase_add_test(tc, sync_and_log_values);
	tcase_add_test(tc, parse_starts_afresh);
	tcase_add_loop_test(tc, resolve_dir, 0, NELEM(dirs));
	suite_add_tcase(s, tc);

	tc = tcase_create("long lines");
	tcase_add_test(tc, long_chinese_name);
	tcase_add_test(tc, line_of_4k);
	tcase_add_loop_test(tc, line_limit, 0, NELEM(line_limits));
	tcase_add_test(tc, name_too_long);
	suite_add_tcase(s, tc);

	tc = tcase_create("layers");
	tcase_add_test(tc, dropins_in_order);
	tcase_add_test(tc, dropins_none);
	tcase_add_loop_test(tc, dropin_error, 0, NELEM(dropin_errors));
	tcase_add_test(tc, agent_dropins);
	tcase_add_loop_test(tc, registry_layers, 0, NELEM(layers));
	tcase_add_test(tc, registry_builtin_first_year);
	suite_add_tcase(s, tc);

	tc = tcase_create("checks");
	tcase_add_loop_test(tc, zone_check, 0, NELEM(zones));
	tcase_add_test(tc, listen_parts);
	tcase_add_loop_test(tc, agent_set, 0, NELEM(agent_sets));
	tcase_add_test(tc, agent_bounds);
	tcase_add_test(tc, daemon_set);
	suite_add_tcase(s, tc);

	tc = tcase_create("agent");
	tcase_add_test(tc, agent_defaults);
	tcase_add_test(tc, agent_full);
	tcase_add_test(tc, agent_id_at_limit);
	tcase_add_loop_test(tc, agent_bad, 0, NELEM(bad_agent));
	tcase_add_test(tc, agent_registry);
	tcase_add_loop_test(tc, default_aliases, 0, NELEM(resolves));
	tcase_add_test(tc, aliases_override);
	tcase_add_test(tc, registry_lists);
	tcase_add_test(tc, agent_load_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("registry");
	tcase_add_loop_test(tc, target_lookup, 0, NELEM(targets));
	tcase_add_test(tc, target_nearest_whatever_order);
	tcase_add_loop_test(tc, unit_convert, 0, NELEM(conversions));
	tcase_add_test(tc, unit_convert_other_factors);
	tcase_add_test(tc, check_duplicate_target);
	tcase_add_loop_test(tc, check_duplicate_code, 0, 3);
	suite_add_tcase(s, tc);

	tc = tcase_create("period");
	tcase_add_loop_test(tc, period_parse_table, 0, NELEM(periods));
	tcase_add_loop_test(tc, period_started_table, 0, NELEM(starts));
	tcase_add_loop_test(tc, period_clerk_table, 0, NELEM(clerk_periods));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
