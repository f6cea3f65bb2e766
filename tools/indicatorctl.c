/*
 * indicatorctl: the operator's view of the store. Reads the LMDB store
 * directly and read-only, in one read transaction, so it sees a consistent
 * state while the daemon goes on writing.
 *
 * Exit codes: 0 success (also when nothing matched), 1 failure (no store,
 * bad configuration, store error), 2 usage error. expected and verify also
 * exit 1 when they find something missing or wrong (ctl_ops.c).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aggregate.h"
#include "config.h"
#include "indicator.pb-c.h"
#include "i18n.h"
#include "indicatorctl.h"
#include "intl.h"
#include "log.h"
#include "period.h"
#include "store.h"
#include "utf8.h"
#include "version.h"
#include "xmalloc.h"

/* The city table: sums over districts of the latest values of one period,
 * by industry; row nindustries is all industries together. */
struct city_sums {
	double value[REG_INDUSTRIES_MAX + 1][REG_METRICS_MAX];
	bool reported[REG_INDUSTRIES_MAX + 1][REG_METRICS_MAX];
	bool district[REG_INDUSTRIES_MAX + 1][REG_DISTRICTS_MAX];
	bool synthetic;
	size_t nobs;
};

/*
 * A command: its function, its arguments and its help, for the usage,
 * `indicatorctl help CMD` and `indicatorctl CMD --help`. A command without
 * args or help is listed by its name alone.
 */
struct cmd {
	const char *name;
	int (*fn)(struct ctl *ctl, int argc, char *argv[]);
	const char *args;
	const char *help;
};

static const char usage_head[] =
    "usage: indicatorctl [-c CONFIG] [-d DATADIR] COMMAND [ARGS]\n"
    "       indicatorctl help [COMMAND] | COMMAND --help\n"
    "       indicatorctl --help | --version\n"
    "  -c, --config FILE    the daemon's configuration (default: the "
    "built-in one),\n"
    "                       then its conf.d/*.conf: registry and data_dir\n"
    "  -d, --data-dir DIR   the store directory, overriding data_dir\n"
    "commands:\n";

/* The length of the next word of args: up to a space outside brackets, so
 * that "[--metric M]" stays whole. */
static size_t
args_word(const char *a)
{
	size_t n = 0;
	int depth = 0;

	for (; a[n] != '\0' && (a[n] != ' ' || depth > 0); n++)
		depth += (a[n] == '[') - (a[n] == ']');
	return n;
}

/* LEAD NAME ARGS, ARGS wrapped before column 80 with continuation lines
 * indented by indent. */
static void
cmd_synopsis(FILE *f, const char *lead, const struct cmd *c, size_t indent)
{
	const char *a = c->args != NULL ? c->args : "";
	size_t col = strlen(lead) + strlen(c->name), word;

	fprintf(f, "%s%s", lead, c->name);
	for (; *a != '\0'; a += word, a += strspn(a, " ")) {
		word = args_word(a);
		if (col + 1 + word > 79 && col > indent) {
			fprintf(f, "\n%*s", (int)indent, "");
			col = indent;
		} else {
			fputc(' ', f);
			col++;
		}
		fprintf(f, "%.*s", (int)word, a);
		col += word;
	}
	fputc('\n', f);
}

void
ctl_head(struct out_table *t, const char *const head[], size_t n)
{
	const char **cells = xcalloc(n, sizeof(*cells));

	for (size_t i = 0; i < n; i++)
		cells[i] = _(head[i]);
	out_table_add(t, cells, true);
	free(cells);
}

const char *
status_name(int status)
{
	switch (status) {
	case INDICATOR__OBS_STATUS__PROVISIONAL:
		return "provisional";
	case INDICATOR__OBS_STATUS__FINAL:
		return "final";
	case INDICATOR__OBS_STATUS__REVISED:
		return "revised";
	default:
		return "unspecified";
	}
}

void
obs_json(FILE *f, const struct store_obs *o)
{
	bool first = true;

	fputc('{', f);
	out_json_str(f, &first, "district", o->district);
	out_json_str(f, &first, "industry", o->industry);
	out_json_str(f, &first, "metric", o->metric);
	out_json_str(f, &first, "period", o->period);
	out_json_double(f, &first, "value", o->value);
	out_json_str(f, &first, "unit", o->unit);
	out_json_double(f, &first, "sent_value", o->sent_value);
	out_json_str(f, &first, "sent_unit", o->sent_unit);
	out_json_str(f, &first, "status", status_name(o->status));
	out_json_str(f, &first, "note", o->note);
	out_json_str(f, &first, "agent_id", o->agent_id);
	out_json_u64(f, &first, "epoch", o->epoch);
	out_json_u64(f, &first, "seq", o->seq);
	out_json_i64(f, &first, "sent_at_ms", o->sent_at_ms);
	out_json_i64(f, &first, "stored_at_ms", o->stored_at_ms);
	out_json_u32(f, &first, "revision", o->revision);
	fputs("}\n", f);
}

/*
 * Parses a command's arguments: the options in opts (anywhere), --json, and
 * positional arguments into pos (exactly npos of them). Returns 0, or -1
 * after a message (a usage error).
 */
int
args_parse(struct ctl *ctl, int argc, char *argv[], const struct opt *opts,
    char *pos[], size_t npos)
{
	size_t got = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const struct opt *o = NULL;
		const char *val = NULL;
		size_t klen;

		if (strncmp(a, "--", 2) != 0) {
			if (got == npos) {
				fprintf(stderr,
				    "indicatorctl: %s: unexpected argument "
				    "'%s'\n",
				    argv[0], a);
				return -1;
			}
			pos[got++] = argv[i];
			continue;
		}
		if (strcmp(a, "--json") == 0) {
			ctl->json = true;
			continue;
		}
		klen = strcspn(a + 2, "=");
		for (size_t k = 0; opts != NULL && opts[k].name != NULL; k++)
			if (strlen(opts[k].name) == klen &&
			    strncmp(opts[k].name, a + 2, klen) == 0)
				o = &opts[k];
		if (o == NULL) {
			fprintf(stderr, "indicatorctl: %s: unknown option %s\n",
			    argv[0], a);
			return -1;
		}
		if (o->flag != NULL && a[2 + klen] == '\0') {
			*o->flag = true;
			continue;
		}
		if (a[2 + klen] == '=')
			val = a + 2 + klen + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		if (val == NULL) {
			fprintf(stderr, "indicatorctl: %s: %s needs a value\n",
			    argv[0], a);
			return -1;
		}
		*o->value = val;
	}
	if (got != npos) {
		fprintf(stderr, "indicatorctl: %s: expected %zu arguments\n",
		    argv[0], npos);
		return -1;
	}
	return 0;
}

/*
 * Loads the configuration, opens the store read-only and begins the read
 * transaction. Returns 0, or -1 after a message.
 */
int
ctl_open(struct ctl *ctl)
{
	struct store_opts so = { 0 };
	char err[512], path[CONFIG_PATH_MAX + 16];
	uint64_t applied, next;
	struct stat st;
	const char *dir;

	ctl->cfg = xcalloc(1, sizeof(*ctl->cfg));
	if (config_load(ctl->cfg, ctl->conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "indicatorctl: %s\n", err);
		return -1;
	}
	config_resolve_dir(ctl->cfg, getenv("STATE_DIRECTORY"));
	if (out_tz_set(ctl->cfg->timezone) == -1)
		fprintf(stderr,
		    "indicatorctl: time zone %s not found; times are shown "
		    "in UTC\n",
		    ctl->cfg->timezone);
	dir = ctl->dir != NULL ? ctl->dir : ctl->cfg->data_dir;

	/* A read-only open of a missing store fails with a bare ENOENT;
	 * say what the operator needs to know instead. */
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode) ||
	    stat(path, &st) == -1) {
		fprintf(stderr, "indicatorctl: no store at %s\n", dir);
		return -1;
	}
	ctl_checkpoint(ctl);
	so.dir = dir;
	so.readonly = true;
	if ((ctl->store = store_open(&so, err, sizeof(err))) == NULL) {
		fprintf(stderr, "indicatorctl: cannot open store at %s: %s\n",
		    dir, err);
		return -1;
	}
	if ((ctl->txn = store_txn_begin(ctl->store, false)) == NULL) {
		fprintf(stderr, "indicatorctl: cannot read store at %s\n", dir);
		return -1;
	}
	if (store_meta_get(ctl->txn, STORE_META_APPLIED, &applied) == 0 &&
	    store_log_next(ctl->txn, &next) == 0 && next - 1 > applied)
		fprintf(stderr,
		    "indicatorctl: %llu acknowledged observations are in the "
		    "log but not yet in the tables read here; the daemon "
		    "applies them at its next checkpoint or start\n",
		    (unsigned long long)(next - 1 - applied));
	return 0;
}

static void
ctl_close(struct ctl *ctl)
{
	store_txn_abort(&ctl->txn);
	store_close(&ctl->store);
	free(ctl->cfg);
	ctl->cfg = NULL;
}

static void
district_label(
    const struct registry *reg, const char *code, char *buf, size_t len)
{
	const struct reg_district *d = registry_district(reg, code);

	if (d != NULL)
		snprintf(buf, len, "%s %s", code, d->name);
	else
		snprintf(buf, len, "%s", code);
}

struct query_ctx {
	struct ctl *ctl;
	struct out_table *t;
};

static int
query_row(const struct store_obs *o, void *arg)
{
	struct query_ctx *q = arg;
	char district[CELL_MAX], value[OUT_NUM_MAX], rev[OUT_NUM_MAX],
	    at[OUT_TIME_MAX];
	const char *cells[10];

	if (q->ctl->json) {
		obs_json(stdout, o);
		return 0;
	}
	district_label(
	    &q->ctl->cfg->reg, o->district, district, sizeof(district));
	out_value(o->value, value, sizeof(value));
	snprintf(rev, sizeof(rev), "%u", (unsigned)o->revision);
	out_time(o->stored_at_ms, at, sizeof(at));
	cells[0] = district;
	cells[1] = o->industry;
	cells[2] = o->metric;
	cells[3] = o->period;
	cells[4] = value;
	cells[5] = o->unit;
	cells[6] = status_name(o->status);
	cells[7] = rev;
	cells[8] = o->agent_id;
	cells[9] = at;
	out_table_add(q->t, cells, false);
	return 0;
}

static int
cmd_query(struct ctl *ctl, int argc, char *argv[])
{
	static const char *const head[] = { N_("district"), N_("industry"),
		N_("metric"), N_("period"), N_("value"), N_("unit"),
		N_("status"), N_("rev"), N_("agent"), N_("stored at") };
	struct store_filter f = { 0 };
	const struct opt opts[] = {
		{ "district", &f.district, NULL },
		{ "industry", &f.industry, NULL },
		{ "metric", &f.metric, NULL },
		{ "period", &f.period, NULL },
		{ NULL, NULL, NULL },
	};
	struct query_ctx q = { ctl, NULL };
	int rc = 1;

	if (args_parse(ctl, argc, argv, opts, NULL, 0) == -1)
		return usage();
	if (ctl_open(ctl) == -1)
		return 1;
	q.t = out_table_new(10);
	q.t->right[4] = q.t->right[7] = true;
	ctl_head(q.t, head, sizeof(head) / sizeof(head[0]));
	if (store_obs_scan(ctl->txn, &f, query_row, &q) != 0)
		goto table_destroy;
	if (!ctl->json)
		out_table_finish(q.t, stdout, "(no observations)");
	rc = 0;
table_destroy:
	out_table_destroy(&q.t);
	return rc;
}

static int
history_row(const struct store_obs *o, void *arg)
{
	struct query_ctx *q = arg;
	char rev[OUT_NUM_MAX], value[OUT_NUM_MAX],
	    sent[OUT_NUM_MAX + IND_UNIT_MAX + 2], epoch[OUT_NUM_MAX],
	    seq[OUT_NUM_MAX], sent_at[OUT_TIME_MAX], stored_at[OUT_TIME_MAX];
	const char *cells[10];

	if (q->ctl->json) {
		obs_json(stdout, o);
		return 0;
	}
	snprintf(rev, sizeof(rev), "%u", (unsigned)o->revision);
	out_value(o->value, value, sizeof(value));
	out_value(o->sent_value, sent, sizeof(sent));
	snprintf(sent + strlen(sent), sizeof(sent) - strlen(sent), " %s",
	    o->sent_unit);
	snprintf(epoch, sizeof(epoch), "%llu", (unsigned long long)o->epoch);
	snprintf(seq, sizeof(seq), "%llu", (unsigned long long)o->seq);
	out_time(o->sent_at_ms, sent_at, sizeof(sent_at));
	out_time(o->stored_at_ms, stored_at, sizeof(stored_at));
	cells[0] = rev;
	cells[1] = value;
	cells[2] = o->unit;
	cells[3] = sent;
	cells[4] = status_name(o->status);
	cells[5] = o->agent_id;
	cells[6] = epoch;
	cells[7] = seq;
	cells[8] = sent_at;
	cells[9] = stored_at;
	out_table_add(q->t, cells, false);
	return 0;
}

static int
cmd_history(struct ctl *ctl, int argc, char *argv[])
{
	static const char *const head[] = { N_("rev"), N_("value"), N_("unit"),
		N_("sent"), N_("status"), N_("agent"), N_("epoch"), N_("seq"),
		N_("sent at"), N_("stored at") };
	struct query_ctx q = { ctl, NULL };
	char *key[4];
	int rc = 1;

	if (args_parse(ctl, argc, argv, NULL, key, 4) == -1)
		return usage();
	if (ctl_open(ctl) == -1)
		return 1;
	q.t = out_table_new(10);
	q.t->right[0] = q.t->right[1] = q.t->right[6] = q.t->right[7] = true;
	ctl_head(q.t, head, sizeof(head) / sizeof(head[0]));
	if (store_hist_scan(
		ctl->txn, key[0], key[1], key[2], key[3], history_row, &q) != 0)
		goto table_destroy;
	if (!ctl->json)
		out_table_finish(q.t, stdout, "(no observations)");
	rc = 0;
table_destroy:
	out_table_destroy(&q.t);
	return rc;
}

static int
agents_row(
    const char *agent_id, uint64_t epoch, const struct store_seq *st, void *arg)
{
	struct query_ctx *q = arg;
	char ep[OUT_NUM_MAX], last[OUT_NUM_MAX], acc[OUT_NUM_MAX],
	    rej[OUT_NUM_MAX];
	char first_seen[OUT_TIME_MAX], last_seen[OUT_TIME_MAX];
	const char *cells[7];
	bool first = true;

	if (q->ctl->json) {
		fputc('{', stdout);
		out_json_str(stdout, &first, "agent_id", agent_id);
		out_json_u64(stdout, &first, "epoch", epoch);
		out_json_u64(stdout, &first, "last_seq", st->last_seq);
		out_json_u64(stdout, &first, "accepted", st->accepted);
		out_json_u64(stdout, &first, "rejected", st->rejected);
		out_json_i64(
		    stdout, &first, "first_seen_ms", st->first_seen_ms);
		out_json_i64(stdout, &first, "last_seen_ms", st->last_seen_ms);
		fputs("}\n", stdout);
		return 0;
	}
	snprintf(ep, sizeof(ep), "%llu", (unsigned long long)epoch);
	snprintf(last, sizeof(last), "%llu", (unsigned long long)st->last_seq);
	snprintf(acc, sizeof(acc), "%llu", (unsigned long long)st->accepted);
	snprintf(rej, sizeof(rej), "%llu", (unsigned long long)st->rejected);
	out_time(st->first_seen_ms, first_seen, sizeof(first_seen));
	out_time(st->last_seen_ms, last_seen, sizeof(last_seen));
	cells[0] = agent_id;
	cells[1] = ep;
	cells[2] = last;
	cells[3] = acc;
	cells[4] = rej;
	cells[5] = first_seen;
	cells[6] = last_seen;
	out_table_add(q->t, cells, false);
	return 0;
}

static int
cmd_agents(struct ctl *ctl, int argc, char *argv[])
{
	static const char *const head[] = { N_("agent"), N_("epoch"),
		N_("last seq"), N_("accepted"), N_("rejected"),
		N_("first seen"), N_("last seen") };
	struct query_ctx q = { ctl, NULL };
	int rc = 1;

	if (args_parse(ctl, argc, argv, NULL, NULL, 0) == -1)
		return usage();
	if (ctl_open(ctl) == -1)
		return 1;
	q.t = out_table_new(7);
	for (size_t c = 1; c <= 4; c++)
		q.t->right[c] = true;
	ctl_head(q.t, head, sizeof(head) / sizeof(head[0]));
	if (store_seq_scan(ctl->txn, agents_row, &q) != 0)
		goto table_destroy;
	if (!ctl->json)
		out_table_finish(q.t, stdout, "(no agents)");
	rc = 0;
table_destroy:
	out_table_destroy(&q.t);
	return rc;
}

static int
latest_year_row(const struct store_obs *o, void *arg)
{
	int *year = arg;
	struct period p;

	if (period_parse(o->period, &p) && p.kind == PERIOD_YEAR &&
	    p.year > *year)
		*year = p.year;
	return 0;
}

/* Data made by indicator-gen-sample says so in its note. */
static bool
note_synthetic(const char *note)
{
	return strstr(note, "synthetic") != NULL;
}

struct city_ctx {
	const struct registry *reg;
	struct city_sums *sums;
};

static int
city_row(const struct store_obs *o, void *arg)
{
	struct city_ctx *c = arg;
	const struct registry *reg = c->reg;
	struct city_sums *s = c->sums;
	const struct reg_district *rd = registry_district(reg, o->district);
	const struct reg_industry *ri = registry_industry(reg, o->industry);
	const struct reg_metric *rm = registry_metric(reg, o->metric);
	size_t d, i, m, all = reg->nindustries;
	const struct reg_unit *u;
	double v = o->value;

	/* Codes dropped from the registry since they were stored. */
	if (rd == NULL || ri == NULL || rm == NULL)
		return 0;
	d = (size_t)(rd - reg->districts);
	i = (size_t)(ri - reg->industries);
	m = (size_t)(rm - reg->metrics);
	if (strcmp(o->unit, reg->metrics[m].unit) != 0) {
		/* The canonical unit changed since: convert if we can. */
		if ((u = registry_metric_unit(&reg->metrics[m], o->unit)) ==
		    NULL)
			return 0;
		v *= u->factor;
	}
	s->value[i][m] += v;
	s->value[all][m] += v;
	s->reported[i][m] = s->reported[all][m] = true;
	s->district[i][d] = s->district[all][d] = true;
	if (note_synthetic(o->note))
		s->synthetic = true;
	s->nobs++;
	return 0;
}

/*
 * The city table of one period: each cell the sum over districts of the
 * latest values. The one place that computes it, so that it can later be
 * read from the stored aggregates instead. Returns 0 or -1.
 */
static int
city_sum(struct store_txn *txn, const struct registry *reg, const char *period,
    struct city_sums *out)
{
	struct store_filter f = { .period = period };
	struct city_ctx c = { reg, out };

	memset(out, 0, sizeof(*out));
	return store_obs_scan(txn, &f, city_row, &c) == 0 ? 0 : -1;
}

static size_t
city_districts(
    const struct registry *reg, const struct city_sums *s, size_t row)
{
	size_t n = 0;

	for (size_t d = 0; d < reg->ndistricts; d++)
		n += s->district[row][d];
	return n;
}

static void
city_json(
    const struct registry *reg, const struct city_sums *s, const char *period)
{
	for (size_t i = 0; i <= reg->nindustries; i++) {
		bool all = i == reg->nindustries, first = true, mfirst = true;

		fputc('{', stdout);
		out_json_str(stdout, &first, "period", period);
		out_json_str(stdout, &first, "industry",
		    all ? "*" : reg->industries[i].code);
		out_json_str(stdout, &first, "name",
		    all ? "all industries" : reg->industries[i].name);
		out_json_key(stdout, &first, "metrics");
		fputc('{', stdout);
		for (size_t m = 0; m < reg->nmetrics; m++) {
			bool vfirst = true;

			out_json_key(stdout, &mfirst, reg->metrics[m].code);
			fputc('{', stdout);
			out_json_key(stdout, &vfirst, "value");
			if (s->reported[i][m])
				out_json_number(stdout, s->value[i][m]);
			else
				fputs("null", stdout);
			out_json_str(
			    stdout, &vfirst, "unit", reg->metrics[m].unit);
			fputc('}', stdout);
		}
		fputc('}', stdout);
		out_json_u32(stdout, &first, "districts_reporting",
		    (uint32_t)city_districts(reg, s, i));
		out_json_u32(stdout, &first, "districts_expected",
		    (uint32_t)reg->ndistricts);
		out_json_key(stdout, &first, "synthetic");
		fputs(s->synthetic ? "true" : "false", stdout);
		fputs("}\n", stdout);
	}
}

static void
city_print(
    const struct registry *reg, const struct city_sums *s, const char *period)
{
	size_t ncols = reg->nmetrics + 2;
	struct out_table *t = out_table_new(ncols);
	const char **cells = xcalloc(ncols, sizeof(*cells));
	char(*buf)[CELL_MAX] = xcalloc(ncols, sizeof(*buf));

	out_line(stdout, _("City of Suzhou, future industries, %s"), period);
	if (s->synthetic)
		printf(_("(synthetic sample data)\n"));

	cells[0] = _("industry");
	for (size_t m = 0; m < reg->nmetrics; m++) {
		cells[m + 1] = reg->metrics[m].code;
		t->right[m + 1] = true;
	}
	cells[ncols - 1] = _("districts");
	t->right[ncols - 1] = true;
	out_table_add(t, cells, true);
	cells[0] = cells[ncols - 1] = "";
	for (size_t m = 0; m < reg->nmetrics; m++) {
		snprintf(buf[m + 1], CELL_MAX, "(%s)", reg->metrics[m].unit);
		cells[m + 1] = buf[m + 1];
	}
	out_table_add(t, cells, true);

	for (size_t i = 0; i <= reg->nindustries; i++) {
		if (i < reg->nindustries)
			snprintf(buf[0], CELL_MAX, "%s (%s)",
			    reg->industries[i].name, reg->industries[i].code);
		else
			snprintf(buf[0], CELL_MAX, "all industries");
		for (size_t m = 0; m < reg->nmetrics; m++) {
			/* Fixed decimals per column, so that the digits of
			 * a column line up. */
			if (s->reported[i][m])
				snprintf(buf[m + 1], CELL_MAX, "%.*f",
				    reg->metrics[m].integer ? 0 : 2,
				    s->value[i][m]);
			else
				snprintf(buf[m + 1], CELL_MAX, "-");
		}
		snprintf(buf[ncols - 1], CELL_MAX, "%zu/%zu",
		    city_districts(reg, s, i), reg->ndistricts);
		for (size_t c = 0; c < ncols; c++)
			cells[c] = buf[c];
		out_table_add(t, cells, false);
	}
	out_table_print(t, stdout);
	free(buf);
	free(cells);
	out_table_destroy(&t);
}

static int
cmd_city(struct ctl *ctl, int argc, char *argv[])
{
	const char *period = NULL;
	const struct opt opts[] = {
		{ "period", &period, NULL },
		{ NULL, NULL, NULL },
	};
	char latest[IND_PERIOD_MAX + 8];
	struct city_sums *sums;
	struct period p;
	int year = 0, rc = 1;

	if (args_parse(ctl, argc, argv, opts, NULL, 0) == -1)
		return usage();
	if (period != NULL && !period_parse(period, &p)) {
		fprintf(
		    stderr, "indicatorctl: city: bad period '%s'\n", period);
		return usage();
	}
	if (ctl_open(ctl) == -1)
		return 1;
	if (period == NULL) {
		struct store_filter any = { 0 };

		if (store_obs_scan(ctl->txn, &any, latest_year_row, &year) != 0)
			return 1;
		if (year == 0) {
			if (!ctl->json)
				printf("(no observations)\n");
			return 0;
		}
		snprintf(latest, sizeof(latest), "%d", year);
		period = latest;
	}
	sums = xcalloc(1, sizeof(*sums));
	if (city_sum(ctl->txn, &ctl->cfg->reg, period, sums) == -1)
		goto free_sums;
	if (ctl->json)
		city_json(&ctl->cfg->reg, sums, period);
	else
		city_print(&ctl->cfg->reg, sums, period);
	rc = 0;
free_sums:
	free(sums);
	return rc;
}

/* Up to one decimal, as a percentage: 0.0834 is "8.3%". */
static void
percent_format(double progress, char *buf, size_t len)
{
	snprintf(buf, len, "%.1f%%", progress * 100);
}

void
aggregate_json(FILE *f, const char *topic, const Indicator__Aggregate *a)
{
	out_json_aggregate(f, NULL, topic, a);
}

struct aggregates_ctx {
	struct ctl *ctl;
	struct out_table *t;
	size_t bad; /* stored aggregates that do not decode */
};

static int
aggregates_row(const char *topic, const void *buf, size_t len, void *arg)
{
	struct aggregates_ctx *q = arg;
	Indicator__Aggregate *a = indicator__aggregate__unpack(NULL, len, buf);
	char value[OUT_NUM_MAX], reporting[OUT_NUM_MAX], target[OUT_NUM_MAX],
	    year[OUT_NUM_MAX], progress[OUT_NUM_MAX], rev[OUT_NUM_MAX],
	    seq[OUT_NUM_MAX], at[OUT_TIME_MAX];
	const char *cells[10];

	if (a == NULL) {
		fprintf(stderr,
		    "indicatorctl: aggregates: stored aggregate %s does not "
		    "decode\n",
		    topic);
		q->bad++;
		return 0;
	}
	if (q->ctl->json) {
		aggregate_json(stdout, topic, a);
		indicator__aggregate__free_unpacked(a, NULL);
		return 0;
	}
	out_value(a->value, value, sizeof(value));
	snprintf(reporting, sizeof(reporting), "%u/%u",
	    (unsigned)a->districts_reporting, (unsigned)a->districts_expected);
	if (a->target_year != 0) {
		out_value(a->target, target, sizeof(target));
		snprintf(year, sizeof(year), "%u", (unsigned)a->target_year);
		percent_format(a->progress, progress, sizeof(progress));
	} else {
		snprintf(target, sizeof(target), "-");
		snprintf(year, sizeof(year), "-");
		snprintf(progress, sizeof(progress), "-");
	}
	snprintf(rev, sizeof(rev), "%llu", (unsigned long long)a->revision);
	snprintf(seq, sizeof(seq), "%llu", (unsigned long long)a->seq);
	out_time(a->updated_at_ms, at, sizeof(at));
	cells[0] = topic;
	cells[1] = value;
	cells[2] = a->unit;
	cells[3] = reporting;
	cells[4] = target;
	cells[5] = year;
	cells[6] = progress;
	cells[7] = rev;
	cells[8] = seq;
	cells[9] = at;
	out_table_add(q->t, cells, false);
	indicator__aggregate__free_unpacked(a, NULL);
	return 0;
}

static int
cmd_aggregates(struct ctl *ctl, int argc, char *argv[])
{
	static const char *const head[] = { N_("topic"), N_("value"),
		N_("unit"), N_("reporting"), N_("target"), N_("target year"),
		N_("progress"), N_("rev"), N_("seq"), N_("updated at") };
	const char *prefix = "";
	const struct opt opts[] = {
		{ "prefix", &prefix, NULL },
		{ NULL, NULL, NULL },
	};
	struct aggregates_ctx q = { ctl, NULL, 0 };
	int rc = 1;

	if (args_parse(ctl, argc, argv, opts, NULL, 0) == -1)
		return usage();
	if (ctl_open(ctl) == -1)
		return 1;
	q.t = out_table_new(10);
	for (size_t c = 1; c <= 8; c++)
		q.t->right[c] = c != 2;
	ctl_head(q.t, head, sizeof(head) / sizeof(head[0]));
	if (store_agg_scan(ctl->txn, prefix, aggregates_row, &q) != 0)
		goto table_destroy;
	if (!ctl->json)
		out_table_finish(q.t, stdout, "(no aggregates)");
	rc = q.bad == 0 ? 0 : 1;
table_destroy:
	out_table_destroy(&q.t);
	return rc;
}

/* One metric of the plan: its latest annual city-wide aggregate. */
struct plan_row {
	const char *metric;
	Indicator__Aggregate *latest; /* NULL when none is stored */
	int year;
	size_t bad; /* stored aggregates that do not decode */
};

struct plan {
	struct plan_row rows[REG_METRICS_MAX + 1];
	size_t nrows;
	int years[REG_TARGETS_MAX]; /* target years, ascending */
	size_t nyears;
	int year; /* the latest of the rows' years; 0 for none */
	bool synthetic;
	size_t bad;
};

static void
plan_add_metric(struct plan *pl, const char *metric)
{
	for (size_t r = 0; r < pl->nrows; r++)
		if (strcmp(pl->rows[r].metric, metric) == 0)
			return;
	if (pl->nrows < sizeof(pl->rows) / sizeof(pl->rows[0]))
		pl->rows[pl->nrows++].metric = metric;
}

/* Keeps the years distinct and ascending. */
static void
plan_add_year(struct plan *pl, int year)
{
	size_t y;

	for (y = 0; y < pl->nyears; y++)
		if (pl->years[y] == year)
			return;
	for (y = pl->nyears++; y > 0 && pl->years[y - 1] > year; y--)
		pl->years[y] = pl->years[y - 1];
	pl->years[y] = year;
}

/* The metrics with a city-wide target for all industries, in the order
 * the configuration names them, clusters_100bn always among them; and
 * the distinct years of their targets. */
static void
plan_init(const struct registry *reg, struct plan *pl)
{
	memset(pl, 0, sizeof(*pl));
	for (size_t i = 0; i < reg->ntargets; i++) {
		const struct reg_target *t = &reg->targets[i];

		if (strcmp(t->industry, "*") != 0 ||
		    strcmp(t->scope, "city") != 0)
			continue;
		plan_add_metric(pl, t->metric);
		plan_add_year(pl, t->year);
	}
	plan_add_metric(pl, AGG_CLUSTERS_METRIC);
}

static void
plan_free(struct plan *pl)
{
	for (size_t r = 0; r < pl->nrows; r++)
		if (pl->rows[r].latest != NULL)
			indicator__aggregate__free_unpacked(
			    pl->rows[r].latest, NULL);
}

static int
plan_latest(const char *topic, const void *buf, size_t len, void *arg)
{
	struct plan_row *row = arg;
	Indicator__Aggregate *a = indicator__aggregate__unpack(NULL, len, buf);
	struct period p;

	if (a == NULL) {
		fprintf(stderr,
		    "indicatorctl: progress: stored aggregate %s does not "
		    "decode\n",
		    topic);
		row->bad++;
		return 0;
	}
	if (!period_parse(a->period, &p) || p.kind != PERIOD_YEAR ||
	    p.year <= row->year) {
		indicator__aggregate__free_unpacked(a, NULL);
		return 0;
	}
	if (row->latest != NULL)
		indicator__aggregate__free_unpacked(row->latest, NULL);
	row->latest = a;
	row->year = p.year;
	return 0;
}

static int
synthetic_row(const struct store_obs *o, void *arg)
{
	bool *synthetic = arg;

	if (!note_synthetic(o->note))
		return 0;
	*synthetic = true;
	return 1; /* one is enough */
}

/* Reads the latest annual aggregate of each plan metric, and whether the
 * observations are synthetic. Returns 0 or -1. */
static int
plan_read(struct store_txn *txn, struct plan *pl)
{
	struct store_filter any = { 0 };
	char prefix[IND_TOPIC_MAX + 1];
	int rc;

	for (size_t r = 0; r < pl->nrows; r++) {
		struct plan_row *row = &pl->rows[r];

		snprintf(prefix, sizeof(prefix), "agg/%s/*/city/", row->metric);
		if (store_agg_scan(txn, prefix, plan_latest, row) != 0)
			return -1;
		if (row->year > pl->year)
			pl->year = row->year;
		pl->bad += row->bad;
	}
	rc = store_obs_scan(txn, &any, synthetic_row, &pl->synthetic);
	return rc == 0 || (rc == 1 && pl->synthetic) ? 0 : -1;
}

static void
plan_json(const struct registry *reg, const struct plan *pl)
{
	for (size_t r = 0; r < pl->nrows; r++) {
		const struct plan_row *row = &pl->rows[r];
		const Indicator__Aggregate *a = row->latest;
		bool first = true, tfirst = true;

		fputc('{', stdout);
		out_json_str(stdout, &first, "metric", row->metric);
		out_json_key(stdout, &first, "period");
		if (a != NULL)
			out_json_string(stdout, a->period);
		else
			fputs("null", stdout);
		out_json_key(stdout, &first, "value");
		if (a != NULL)
			out_json_number(stdout, a->value);
		else
			fputs("null", stdout);
		out_json_key(stdout, &first, "unit");
		if (a != NULL)
			out_json_string(stdout, a->unit);
		else
			fputs("null", stdout);
		out_json_u32(stdout, &first, "districts_reporting",
		    a != NULL ? a->districts_reporting : 0);
		out_json_u32(stdout, &first, "districts_expected",
		    a != NULL ? a->districts_expected
			      : (uint32_t)reg->ndistricts);
		out_json_key(stdout, &first, "targets");
		fputc('[', stdout);
		for (size_t y = 0; y < pl->nyears; y++) {
			const struct reg_target *t = registry_target(
			    reg, row->metric, "*", "city", pl->years[y]);
			bool yfirst = true;

			if (t == NULL || t->year != pl->years[y])
				continue;
			if (!tfirst)
				fputc(',', stdout);
			tfirst = false;
			fputc('{', stdout);
			out_json_u32(
			    stdout, &yfirst, "year", (uint32_t)t->year);
			out_json_double(stdout, &yfirst, "target", t->value);
			out_json_key(stdout, &yfirst, "progress");
			if (a != NULL)
				out_json_number(stdout, a->value / t->value);
			else
				fputs("null", stdout);
			fputc('}', stdout);
		}
		fputc(']', stdout);
		out_json_key(stdout, &first, "synthetic");
		fputs(pl->synthetic ? "true" : "false", stdout);
		fputs("}\n", stdout);
	}
}

static void
plan_print(const struct registry *reg, const struct plan *pl)
{
	size_t ncols = 5 + 2 * pl->nyears + 1;
	struct out_table *t = out_table_new(ncols);
	const char **cells = xcalloc(ncols, sizeof(*cells));
	char(*buf)[CELL_MAX] = xcalloc(ncols, sizeof(*buf));

	printf(_("City progress toward the plan's targets (%d figures)\n"),
	    pl->year);
	if (pl->synthetic)
		printf(_("(synthetic sample data)\n"));

	cells[0] = _("metric");
	cells[1] = _("year");
	cells[2] = _("value");
	cells[3] = _("unit");
	cells[4] = _("districts");
	for (size_t y = 0; y < pl->nyears; y++) {
		snprintf(
		    buf[5 + 2 * y], CELL_MAX, _("target %d"), pl->years[y]);
		snprintf(
		    buf[6 + 2 * y], CELL_MAX, _("progress %d"), pl->years[y]);
		cells[5 + 2 * y] = buf[5 + 2 * y];
		cells[6 + 2 * y] = buf[6 + 2 * y];
	}
	cells[ncols - 1] = _("name");
	for (size_t c = 1; c < ncols - 1; c++)
		t->right[c] = c != 3;
	out_table_add(t, cells, true);

	for (size_t r = 0; r < pl->nrows; r++) {
		const struct plan_row *row = &pl->rows[r];
		const Indicator__Aggregate *a = row->latest;
		const struct reg_metric *m = registry_metric(reg, row->metric);

		snprintf(buf[0], CELL_MAX, "%s", row->metric);
		if (a != NULL) {
			snprintf(buf[1], CELL_MAX, "%d", row->year);
			out_value(a->value, buf[2], CELL_MAX);
			snprintf(buf[3], CELL_MAX, "%s", a->unit);
			snprintf(buf[4], CELL_MAX, "%u/%u",
			    (unsigned)a->districts_reporting,
			    (unsigned)a->districts_expected);
		} else {
			for (size_t c = 1; c <= 4; c++)
				snprintf(buf[c], CELL_MAX, "-");
		}
		for (size_t y = 0; y < pl->nyears; y++) {
			const struct reg_target *tg = registry_target(
			    reg, row->metric, "*", "city", pl->years[y]);

			if (tg == NULL || tg->year != pl->years[y]) {
				snprintf(buf[5 + 2 * y], CELL_MAX, "-");
				snprintf(buf[6 + 2 * y], CELL_MAX, "-");
				continue;
			}
			out_value(tg->value, buf[5 + 2 * y], CELL_MAX);
			if (a != NULL)
				percent_format(a->value / tg->value,
				    buf[6 + 2 * y], CELL_MAX);
			else
				snprintf(buf[6 + 2 * y], CELL_MAX, "-");
		}
		if (m != NULL)
			snprintf(buf[ncols - 1], CELL_MAX, "%s", m->name);
		else if (strcmp(row->metric, AGG_CLUSTERS_METRIC) == 0)
			snprintf(buf[ncols - 1], CELL_MAX,
			    "千亿级创新集群 (industries >= 1000 亿元)");
		else
			buf[ncols - 1][0] = '\0';
		for (size_t c = 0; c < ncols; c++)
			cells[c] = buf[c];
		out_table_add(t, cells, false);
	}
	out_table_print(t, stdout);
	free(buf);
	free(cells);
	out_table_destroy(&t);
}

static int
cmd_progress(struct ctl *ctl, int argc, char *argv[])
{
	struct plan *pl;
	int rc = 1;

	if (args_parse(ctl, argc, argv, NULL, NULL, 0) == -1)
		return usage();
	if (ctl_open(ctl) == -1)
		return 1;
	pl = xcalloc(1, sizeof(*pl));
	plan_init(&ctl->cfg->reg, pl);
	if (plan_read(ctl->txn, pl) == -1)
		goto plan_free;
	if (pl->year == 0) {
		if (!ctl->json)
			printf("(no annual city aggregates)\n");
	} else if (ctl->json) {
		plan_json(&ctl->cfg->reg, pl);
	} else {
		plan_print(&ctl->cfg->reg, pl);
	}
	rc = pl->bad == 0 ? 0 : 1;
plan_free:
	plan_free(pl);
	free(pl);
	return rc;
}

static const struct cmd cmds[] = {
	{ "query", cmd_query,
	    "[--district D] [--industry I] [--metric M] [--period P] [--json]",
	    "The latest value of each stored observation matching the "
	    "filters,\n"
	    "in the metric's canonical unit." },
	{ "history", cmd_history, "DISTRICT INDUSTRY METRIC PERIOD [--json]",
	    "Every revision of one observation, oldest first, with the agent,\n"
	    "epoch and seq that sent it and when." },
	{ "agents", cmd_agents, "[--json]",
	    "Each (agent, epoch) the daemon took reports from: the last seq,\n"
	    "accepted and rejected counts, first and last seen." },
	{ "city", cmd_city, "[--period P] [--json]",
	    "The city table: by industry, the sum over districts of each\n"
	    "metric for one period (the latest year by default), and how many\n"
	    "districts reported." },
	{ "aggregates", cmd_aggregates, "[--prefix TOPIC_PREFIX] [--json]",
	    "The stored aggregates, as published on the feed, under a topic\n"
	    "prefix such as agg/output_value/." },
	{ "progress", cmd_progress, "[--json]",
	    "The city's progress toward each target of the plan." },
	{ "expected", cmd_expected, "PERIOD [--metric M] [--json]",
	    "For each district of the registry, the metrics it has not\n"
	    "reported for PERIOD. Exit 0 when every district is complete, 1\n"
	    "when something is missing." },
	{ "export", cmd_export,
	    "[observations|aggregates] [--district D] [--industry I] "
	    "[--metric M] [--period P] [--prefix TOPIC_PREFIX] "
	    "[--format csv|json|agent|xlsx] [--bom] [-o FILE]",
	    "The latest value of every observation (default) or every stored\n"
	    "aggregate, as CSV (RFC 4180; --bom for Excel), JSON Lines, an\n"
	    "Excel workbook (xlsx: Chinese names, local times; needs -o), or,\n"
	    "for one --district, the agent's input format: a file\n"
	    "indicator-agent can send again." },
	{ "backup", cmd_backup, "DIR",
	    "A hot, compacted, consistent copy of the store into DIR (new or\n"
	    "empty, made 0700) while the daemon goes on writing; the copy is\n"
	    "then opened and counted." },
	{ "verify", cmd_verify, "[--json]",
	    "Recomputes every aggregate from the observations and compares it\n"
	    "with the stored one. Exit 1 on any difference." },
	{ "scrub", cmd_scrub, "[--json]",
	    "Reads every record of the store, the whole log included, and\n"
	    "checks its checksum. Lists each damaged record (its database and\n"
	    "key); exit 1 when there is any." },
	{ "status", cmd_status, "[--json]",
	    "Asks the running daemon, on its control socket, for its "
	    "counters.\n"
	    "Exit 1 when it does not answer within 5 s." },
	{ "reload", cmd_reload, "[--json]",
	    "Has the running daemon read its configuration file and its\n"
	    "drop-ins again (as SIGHUP does) and prints the outcome. Exit 1\n"
	    "when it refuses them (the old configuration stays) or does not\n"
	    "answer." },
	{ "keygen", cmd_keygen, "NAME",
	    "Writes a CURVE key pair: NAME.key (secret, mode 0600) and\n"
	    "NAME.pub." },
	{ "authorise", cmd_authorise,
	    "KEY|PUBFILE AGENT_ID DISTRICT [--file F]",
	    "Binds an agent's public key to one agent id and one district in\n"
	    "the authorised_agents file (or F). Reload the daemon to apply." },
	{ "revoke", cmd_revoke, "AGENT_ID|KEY [--file F]",
	    "Removes the bindings of a key or an agent id from the\n"
	    "authorised_agents file (or F). Reload the daemon to apply." },
};

static const size_t ncmds = sizeof(cmds) / sizeof(cmds[0]);

static void
usage_print(FILE *f)
{
	fputs(usage_head, f);
	for (size_t i = 0; i < ncmds; i++)
		cmd_synopsis(f, "  ", &cmds[i], 3 + strlen(cmds[i].name));
	fputs("'indicatorctl help COMMAND' says what a command does.\n", f);
}

int
usage(void)
{
	usage_print(stderr);
	return EXIT_USAGE;
}

static const struct cmd *
cmd_find(const char *name)
{
	for (size_t i = 0; i < ncmds; i++)
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

/* `help CMD` and `CMD --help`: the synopsis and what it does. */
static int
cmd_help(const char *name)
{
	const struct cmd *c = cmd_find(name);

	if (c == NULL) {
		fprintf(stderr, "indicatorctl: unknown command '%s'\n", name);
		return usage();
	}
	cmd_synopsis(
	    stdout, "usage: indicatorctl [-c CONFIG] [-d DATADIR] ", c, 8);
	if (c->help != NULL)
		printf("\n%s\n", c->help);
	return 0;
}

/* True when a command's arguments ask for its help (before any "--"). */
static bool
wants_help(int argc, char *argv[])
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

int
main(int argc, char *argv[])
{
	enum { OPT_VERSION = 256 };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl ctl = { 0 };
	const struct cmd *c;
	int ch, rc;

	log_init("indicatorctl", LOG_STYLE_TOOL);
	intl_init("indicatord");
	/* '+': stop at the command; its options are its own. */
	while ((ch = getopt_long(argc, argv, "+c:d:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			ctl.conf = optarg;
			break;
		case 'd':
			ctl.dir = optarg;
			break;
		case 'h':
			usage_print(stdout);
			return 0;
		case OPT_VERSION:
			printf("indicatorctl %s\n", INDICATOR_VERSION);
			return 0;
		default:
			return usage();
		}
	}
	if (optind >= argc)
		return usage();
	if (strcmp(argv[optind], "help") == 0) {
		if (argc - optind == 1) {
			usage_print(stdout);
			return 0;
		}
		if (argc - optind != 2)
			return usage();
		return cmd_help(argv[optind + 1]);
	}
	if ((c = cmd_find(argv[optind])) == NULL) {
		fprintf(stderr, "indicatorctl: unknown command '%s'\n",
		    argv[optind]);
		return usage();
	}
	if (wants_help(argc - optind, argv + optind))
		return cmd_help(c->name);
	rc = c->fn(&ctl, argc - optind, argv + optind);
	ctl_close(&ctl);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(
		    stderr, "indicatorctl: write error: %s\n", strerror(errno));
		return 1;
	}
	return rc;
}
