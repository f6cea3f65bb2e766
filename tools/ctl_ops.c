/*
 * indicatorctl commands for the statistics office and the operator:
 * expected (who has not reported), export (CSV, JSON Lines, agent input),
 * backup (a hot compact copy) and verify (the stored aggregates against
 * the observations). Like the rest of indicatorctl they read the store
 * read-only in one read transaction.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aggregate.h"
#include "config.h"
#include "indicator.pb-c.h"
#include "i18n.h"
#include "indicatorctl.h"
#include "period.h"
#include "store.h"
#include "xmalloc.h"

#define PATH_MAX_LEN 4096 /* a directory given on the command line */

/* expected */

struct expected_ctx {
	const struct registry *reg;
	const struct reg_metric *only; /* --metric, or NULL for all */
	bool seen[REG_DISTRICTS_MAX][REG_METRICS_MAX];
};

static int
expected_row(const struct store_obs *o, void *arg)
{
	struct expected_ctx *e = arg;
	const struct reg_district *d = registry_district(e->reg, o->district);
	const struct reg_metric *m = registry_metric(e->reg, o->metric);

	/* Codes dropped from the registry are nobody's duty any more. */
	if (d != NULL && m != NULL)
		e->seen[d - e->reg->districts][m - e->reg->metrics] = true;
	return 0;
}

static bool
expected_wanted(const struct expected_ctx *e, size_t m)
{
	return e->only == NULL || &e->reg->metrics[m] == e->only;
}

static void
expected_json(const struct expected_ctx *e, size_t d, const char *period)
{
	const struct registry *reg = e->reg;
	bool first = true, lfirst;

	fputc('{', stdout);
	out_json_str(stdout, &first, "district", reg->districts[d].code);
	out_json_str(stdout, &first, "name", reg->districts[d].name);
	out_json_str(stdout, &first, "period", period);
	for (int reported = 0; reported <= 1; reported++) {
		out_json_key(stdout, &first, reported ? "reported" : "missing");
		fputc('[', stdout);
		lfirst = true;
		for (size_t m = 0; m < reg->nmetrics; m++) {
			if (!expected_wanted(e, m) ||
			    e->seen[d][m] != (bool)reported)
				continue;
			if (!lfirst)
				fputc(',', stdout);
			lfirst = false;
			out_json_string(stdout, reg->metrics[m].code);
		}
		fputc(']', stdout);
	}
	fputs("}\n", stdout);
}

int
cmd_expected(struct ctl *ctl, int argc, char *argv[])
{
	static const char *const head[] = { N_("district"), N_("name"),
		N_("missing") };
	const char *metric = NULL;
	const struct opt opts[] = {
		{ "metric", &metric, NULL },
		{ NULL, NULL, NULL },
	};
	struct store_filter f = { 0 };
	struct expected_ctx *e;
	const struct registry *reg;
	struct out_table *t = NULL;
	struct period p;
	char *pos[1], *missing = NULL;
	size_t complete = 0, mlen;
	int rc = 1;

	if (args_parse(ctl, argc, argv, opts, pos, 1) == -1)
		return usage();
	if (!period_parse(pos[0], &p)) {
		fprintf(stderr, "indicatorctl: expected: bad period '%s'\n",
		    pos[0]);
		return usage();
	}
	if (ctl_open(ctl) == -1)
		return 1;
	reg = &ctl->cfg->reg;
	e = xcalloc(1, sizeof(*e));
	e->reg = reg;
	if (metric != NULL &&
	    (e->only = registry_metric(reg, metric)) == NULL) {
		fprintf(stderr, "indicatorctl: expected: unknown metric '%s'\n",
		    metric);
		free(e);
		return usage();
	}
	f.period = pos[0];
	f.metric = metric;
	if (store_obs_scan(ctl->txn, &f, expected_row, e) != 0)
		goto free_e;

	mlen = reg->nmetrics * (IND_CODE_MAX + 1) + 1;
	missing = xmalloc(mlen);
	t = out_table_new(3);
	ctl_head(t, head, sizeof(head) / sizeof(head[0]));
	for (size_t d = 0; d < reg->ndistricts; d++) {
		const char *cells[3];

		missing[0] = '\0';
		for (size_t m = 0; m < reg->nmetrics; m++) {
			if (!expected_wanted(e, m) || e->seen[d][m])
				continue;
			if (missing[0] != '\0')
				strlcpy_ok(missing + strlen(missing), " ",
				    mlen - strlen(missing));
			strlcpy_ok(missing + strlen(missing),
			    reg->metrics[m].code, mlen - strlen(missing));
		}
		if (missing[0] == '\0')
			complete++;
		if (ctl->json) {
			expected_json(e, d, pos[0]);
			continue;
		}
		cells[0] = reg->districts[d].code;
		cells[1] = reg->districts[d].name;
		cells[2] = missing[0] != '\0' ? missing : "complete";
		out_table_add(t, cells, false);
	}
	if (!ctl->json) {
		out_table_print(t, stdout);
		printf("%zu of %zu districts complete for %s\n", complete,
		    reg->ndistricts, pos[0]);
	}
	rc = complete == reg->ndistricts ? 0 : 1;
	out_table_destroy(&t);
	free(missing);
free_e:
	free(e);
	return rc;
}

/* export */

enum export_format {
	EXPORT_CSV,
	EXPORT_JSON,
	EXPORT_AGENT, /* the agent's input: industry,metric,...,note */
	EXPORT_XLSX, /* a workbook (ctl_xlsx.c) */
};

struct export_ctx {
	enum export_format format;
	const struct store_filter *f; /* aggregates: district is the scope */
	size_t bad; /* stored aggregates that do not decode */
	struct xlsx *xlsx; /* EXPORT_XLSX */
};

/* One CSV field, quoted (RFC 4180) when it holds a comma, a quote, CR or
 * LF; then the separator or the line end. */
static void
csv_field(const char *s, bool last)
{
	if (strpbrk(s, ",\"\r\n") == NULL) {
		fputs(s, stdout);
	} else {
		fputc('"', stdout);
		for (; *s != '\0'; s++) {
			if (*s == '"')
				fputc('"', stdout);
			fputc(*s, stdout);
		}
		fputc('"', stdout);
	}
	fputc(last ? '\n' : ',', stdout);
}

/* A number that reads back exactly; empty for what is not finite. */
static void
csv_double(double v, bool last)
{
	char buf[OUT_NUM_MAX] = "";

	if (isfinite(v))
		out_num(v, buf, sizeof(buf));
	csv_field(buf, last);
}

static void
csv_u64(uint64_t v, bool last)
{
	char buf[OUT_NUM_MAX];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	csv_field(buf, last);
}

static void
csv_i64(int64_t v, bool last)
{
	char buf[OUT_NUM_MAX];

	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	csv_field(buf, last);
}

/* The agent reads an empty status as unspecified, and no other word for
 * it. */
static const char *
csv_status(int status)
{
	return status == INDICATOR__OBS_STATUS__OBS_STATUS_UNSPECIFIED
		   ? ""
		   : status_name(status);
}

static int
export_obs_row(const struct store_obs *o, void *arg)
{
	struct export_ctx *x = arg;

	switch (x->format) {
	case EXPORT_XLSX:
		return xlsx_obs(x->xlsx, o) == 0 ? 0 : -1;
	case EXPORT_JSON:
		obs_json(stdout, o);
		break;
	case EXPORT_AGENT:
		csv_field(o->industry, false);
		csv_field(o->metric, false);
		csv_field(o->period, false);
		csv_double(o->value, false);
		csv_field(o->unit, false);
		csv_field(csv_status(o->status), false);
		csv_field(o->note, true);
		break;
	case EXPORT_CSV:
		csv_field(o->district, false);
		csv_field(o->industry, false);
		csv_field(o->metric, false);
		csv_field(o->period, false);
		csv_double(o->value, false);
		csv_field(o->unit, false);
		csv_double(o->sent_value, false);
		csv_field(o->sent_unit, false);
		csv_field(csv_status(o->status), false);
		csv_field(o->note, false);
		csv_field(o->agent_id, false);
		csv_u64(o->epoch, false);
		csv_u64(o->seq, false);
		csv_i64(o->sent_at_ms, false);
		csv_i64(o->stored_at_ms, false);
		csv_u64(o->revision, true);
		break;
	}
	return 0;
}

static bool
filter_match(const char *want, const char *have)
{
	return want == NULL || want[0] == '\0' || strcmp(want, have) == 0;
}

static int
export_agg_row(const char *topic, const void *buf, size_t len, void *arg)
{
	struct export_ctx *x = arg;
	const struct store_filter *f = x->f;
	Indicator__Aggregate *a = indicator__aggregate__unpack(NULL, len, buf);

	if (a == NULL) {
		fprintf(stderr,
		    "indicatorctl: export: stored aggregate %s does not "
		    "decode\n",
		    topic);
		x->bad++;
		return 0;
	}
	if (!filter_match(f->district, a->scope) ||
	    !filter_match(f->industry, a->industry) ||
	    !filter_match(f->metric, a->metric) ||
	    !filter_match(f->period, a->period)) {
		indicator__aggregate__free_unpacked(a, NULL);
		return 0;
	}
	if (x->format == EXPORT_XLSX) {
		int rc = xlsx_agg(x->xlsx, topic, a);

		indicator__aggregate__free_unpacked(a, NULL);
		return rc == 0 ? 0 : -1;
	} else if (x->format == EXPORT_JSON) {
		aggregate_json(stdout, topic, a);
	} else {
		csv_field(topic, false);
		csv_field(a->metric, false);
		csv_field(a->industry, false);
		csv_field(a->scope, false);
		csv_field(a->period, false);
		csv_double(a->value, false);
		csv_field(a->unit, false);
		csv_u64(a->districts_reporting, false);
		csv_u64(a->districts_expected, false);
		/* No target: empty fields, never 0. */
		if (a->target_year != 0) {
			csv_double(a->target, false);
			csv_u64(a->target_year, false);
			csv_double(a->progress, false);
		} else {
			csv_field("", false);
			csv_field("", false);
			csv_field("", false);
		}
		csv_u64(a->revision, false);
		csv_u64(a->seq, false);
		csv_i64(a->updated_at_ms, true);
	}
	indicator__aggregate__free_unpacked(a, NULL);
	return 0;
}

int
cmd_export(struct ctl *ctl, int argc, char *argv[])
{
	static const char obs_head[] =
	    "district,industry,metric,period,value,unit,sent_value,sent_unit,"
	    "status,note,agent_id,epoch,seq,sent_at_ms,stored_at_ms,revision\n";
	static const char agent_head[] =
	    "industry,metric,period,value,unit,status,note\n";
	static const char agg_head[] =
	    "topic,metric,industry,scope,period,value,unit,"
	    "districts_reporting,districts_expected,target,target_year,"
	    "progress,revision,seq,updated_at_ms\n";
	struct store_filter f = { 0 };
	const char *format = NULL, *prefix = NULL, *output = NULL;
	bool aggregates = false, bom = false;
	const struct opt opts[] = {
		{ "district", &f.district, NULL },
		{ "industry", &f.industry, NULL },
		{ "metric", &f.metric, NULL },
		{ "period", &f.period, NULL },
		{ "prefix", &prefix, NULL },
		{ "format", &format, NULL },
		{ "output", &output, NULL },
		{ "bom", NULL, &bom },
		{ NULL, NULL, NULL },
	};
	struct export_ctx x = { EXPORT_CSV, &f, 0, NULL };
	int rc;

	/* The optional first argument says what to export; the options
	 * follow it, so the rest is parsed as a command of its own. */
	if (argc > 1 && argv[1][0] != '-') {
		if (strcmp(argv[1], "aggregates") == 0)
			aggregates = true;
		else if (strcmp(argv[1], "observations") != 0) {
			fprintf(stderr,
			    "indicatorctl: export: '%s' is not observations "
			    "or aggregates\n",
			    argv[1]);
			return usage();
		}
		argv[1] = argv[0];
		argc--;
		argv++;
	}
	/* -o FILE is --output FILE. */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-o") == 0)
			argv[i] = "--output";
	if (args_parse(ctl, argc, argv, opts, NULL, 0) == -1)
		return usage();
	if (format == NULL)
		x.format = ctl->json ? EXPORT_JSON : EXPORT_CSV;
	else if (strcmp(format, "csv") == 0 && !ctl->json)
		x.format = EXPORT_CSV;
	else if (strcmp(format, "json") == 0)
		x.format = EXPORT_JSON;
	else if (strcmp(format, "agent") == 0 && !ctl->json)
		x.format = EXPORT_AGENT;
	else if (strcmp(format, "xlsx") == 0 && !ctl->json)
		x.format = EXPORT_XLSX;
	else {
		fprintf(
		    stderr, "indicatorctl: export: bad format '%s'\n", format);
		return usage();
	}
	if (!aggregates && prefix != NULL) {
		fprintf(stderr, "indicatorctl: export: --prefix is for "
				"aggregates\n");
		return usage();
	}
	if (x.format == EXPORT_AGENT &&
	    (aggregates || f.district == NULL || f.district[0] == '\0')) {
		fprintf(stderr, "indicatorctl: export: --format agent needs "
				"observations of one --district\n");
		return usage();
	}
	if (x.format == EXPORT_XLSX && output == NULL) {
		fprintf(stderr, "indicatorctl: export: --format xlsx needs -o "
				"FILE\n");
		return usage();
	}
	if (bom && x.format != EXPORT_CSV && x.format != EXPORT_AGENT) {
		fprintf(stderr, "indicatorctl: export: --bom is for csv and "
				"agent\n");
		return usage();
	}
	if (ctl_open(ctl) == -1)
		return 1;
	if (x.format == EXPORT_XLSX) {
		x.xlsx = xlsx_open(output, aggregates, &ctl->cfg->reg);
		if (x.xlsx == NULL)
			return 1;
	} else if (output != NULL && freopen(output, "w", stdout) == NULL) {
		fprintf(stderr, "indicatorctl: export: %s: %s\n", output,
		    strerror(errno));
		return 1;
	}
	/* Excel reads a CSV file as UTF-8 only after this mark. */
	if (bom)
		fputs("\xef\xbb\xbf", stdout);
	if (aggregates) {
		if (x.format == EXPORT_CSV)
			fputs(agg_head, stdout);
		rc = store_agg_scan(
		    ctl->txn, prefix != NULL ? prefix : "", export_agg_row, &x);
		rc = rc == 0 && x.bad == 0 ? 0 : 1;
	} else {
		if (x.format == EXPORT_CSV)
			fputs(obs_head, stdout);
		else if (x.format == EXPORT_AGENT)
			fputs(agent_head, stdout);
		rc = store_obs_scan(ctl->txn, &f, export_obs_row, &x);
		rc = rc == 0 ? 0 : 1;
	}
	if (x.xlsx != NULL && xlsx_close(&x.xlsx, rc == 0) == -1)
		rc = 1;
	return rc;
}

/* backup */

/* Makes dir (mode 0700) or checks that it is an empty directory. Returns
 * 0, or -1 after a message. */
static int
backup_dir(const char *dir)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int rc = 0;

	if (mkdir(dir, 0700) == 0)
		return 0;
	if (errno != EEXIST) {
		fprintf(stderr, "indicatorctl: backup: cannot create %s: %s\n",
		    dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "indicatorctl: backup: %s is not a directory\n",
		    dir);
		return -1;
	}
	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "indicatorctl: backup: cannot read %s: %s\n",
		    dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		fprintf(stderr,
		    "indicatorctl: backup: %s is not empty; give a new or "
		    "empty directory\n",
		    dir);
		rc = -1;
		break;
	}
	closedir(d);
	return rc;
}

/* Opens the copy as indicatorctl opens a store and says what it holds. */
static int
backup_check(const char *dir)
{
	struct store_opts so = { 0 };
	struct store_stat ss;
	struct store_txn *t;
	struct store *s;
	char err[512], path[PATH_MAX_LEN];
	struct stat st;
	int rc = -1;

	so.dir = dir;
	so.readonly = true;
	if ((s = store_open(&so, err, sizeof(err))) == NULL) {
		fprintf(stderr,
		    "indicatorctl: backup: the copy in %s does not "
		    "open: %s\n",
		    dir, err);
		return -1;
	}
	if ((t = store_txn_begin(s, false)) == NULL ||
	    store_stat(t, &ss) != 0) {
		fprintf(stderr,
		    "indicatorctl: backup: cannot read the copy in "
		    "%s\n",
		    dir);
		goto store_close;
	}
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (stat(path, &st) == -1) {
		fprintf(stderr, "indicatorctl: backup: %s: %s\n", path,
		    strerror(errno));
		goto store_close;
	}
	printf("backup: %llu observations, %llu aggregates, %llu agents, "
	       "%lld bytes in %s\n",
	    (unsigned long long)ss.nobs, (unsigned long long)ss.naggs,
	    (unsigned long long)ss.nagents, (long long)st.st_size, dir);
	rc = 0;
store_close:
	store_txn_abort(&t);
	store_close(&s);
	return rc;
}

int
cmd_backup(struct ctl *ctl, int argc, char *argv[])
{
	char *pos[1], path[PATH_MAX_LEN];

	if (args_parse(ctl, argc, argv, NULL, pos, 1) == -1)
		return usage();
	if (ctl_open(ctl) == -1)
		return 1;
	/* LMDB allows one read transaction per thread, and the copy takes
	 * its own. */
	store_txn_abort(&ctl->txn);
	if (backup_dir(pos[0]) == -1)
		return 1;
	if (store_backup(ctl->store, pos[0]) == -1) {
		/* Leave the directory empty, so the same command can be
		 * tried again. */
		snprintf(path, sizeof(path), "%s/data.mdb", pos[0]);
		unlink(path);
		snprintf(path, sizeof(path), "%s/store.id", pos[0]);
		unlink(path);
		fprintf(stderr, "indicatorctl: backup: copy to %s failed\n",
		    pos[0]);
		return 1;
	}
	return backup_check(pos[0]) == 0 ? 0 : 1;
}

/* verify */

struct verify_key {
	char topic[IND_TOPIC_MAX + 1];
	struct agg_key key;
};

struct verify {
	struct ctl *ctl;
	struct verify_key *keys; /* sorted by topic, distinct, after collect */
	size_t nkeys;
	size_t cap;
	size_t checked;
	size_t differences;
};

static int
verify_collect(const struct store_obs *o, void *arg)
{
	struct verify *v = arg;
	struct agg_key k[AGG_AFFECTED_MAX];
	size_t n =
	    agg_affected(o->district, o->industry, o->metric, o->period, k);

	for (size_t i = 0; i < n; i++) {
		if (v->nkeys == v->cap) {
			v->cap = v->cap ? 2 * v->cap : 256;
			v->keys = xrealloc(v->keys, v->cap * sizeof(*v->keys));
		}
		v->keys[v->nkeys].key = k[i];
		agg_topic(&k[i], v->keys[v->nkeys].topic,
		    sizeof(v->keys[v->nkeys].topic));
		v->nkeys++;
	}
	return 0;
}

static int
verify_key_cmp(const void *a, const void *b)
{
	const struct verify_key *ka = a, *kb = b;

	return strcmp(ka->topic, kb->topic);
}

static void
verify_dedupe(struct verify *v)
{
	size_t n = 0;

	if (v->nkeys == 0)
		return;
	qsort(v->keys, v->nkeys, sizeof(*v->keys), verify_key_cmp);
	for (size_t i = 1; i < v->nkeys; i++)
		if (strcmp(v->keys[i].topic, v->keys[n].topic) != 0)
			v->keys[++n] = v->keys[i];
	v->nkeys = n + 1;
}

/* The latest canonical value, or nothing (read without decoding the
 * whole record: verify reads every observation many times). */
static int
verify_lookup(void *arg, const char *district, const char *industry,
    const char *metric, const char *period, double *value)
{
	struct store_txn *t = arg;
	int rc;

	rc = store_obs_value(t, district, industry, metric, period, value);
	if (rc == STORE_NOTFOUND)
		return 0;
	return rc == 0 ? 1 : -1;
}

/* A problem with one aggregate that is not a field difference. */
static void
verify_problem(
    struct verify *v, const char *topic, const char *problem, const char *text)
{
	if (v->ctl->json) {
		bool first = true;

		fputc('{', stdout);
		out_json_str(stdout, &first, "topic", topic);
		out_json_str(stdout, &first, "problem", problem);
		out_json_str(stdout, &first, "detail", text);
		fputs("}\n", stdout);
	} else {
		out_line(stdout, "verify: %s: %s", topic, text);
	}
}

/* Aggregate values printed the same way in text and JSON. */
enum verify_kind {
	VK_DOUBLE,
	VK_U32,
	VK_STRING,
};

static void
verify_field(struct verify *v, const char *topic, const char *field,
    enum verify_kind kind, const void *stored, const void *recomputed)
{
	char s[OUT_NUM_MAX + IND_UNIT_MAX], r[OUT_NUM_MAX + IND_UNIT_MAX];
	bool first = true;

	switch (kind) {
	case VK_DOUBLE:
		out_num(*(const double *)stored, s, sizeof(s));
		out_num(*(const double *)recomputed, r, sizeof(r));
		break;
	case VK_U32:
		snprintf(s, sizeof(s), "%u", *(const uint32_t *)stored);
		snprintf(r, sizeof(r), "%u", *(const uint32_t *)recomputed);
		break;
	case VK_STRING:
		snprintf(s, sizeof(s), "%s", (const char *)stored);
		snprintf(r, sizeof(r), "%s", (const char *)recomputed);
		break;
	}
	if (!v->ctl->json) {
		out_line(stdout, "verify: %s: %s stored %s, recomputed %s",
		    topic, field, s, r);
		return;
	}
	fputc('{', stdout);
	out_json_str(stdout, &first, "topic", topic);
	out_json_str(stdout, &first, "problem", "differs");
	out_json_str(stdout, &first, "field", field);
	if (kind == VK_STRING) {
		out_json_str(stdout, &first, "stored", s);
		out_json_str(stdout, &first, "recomputed", r);
	} else {
		/* Already JSON numbers: out_num() and %u. */
		out_json_key(stdout, &first, "stored");
		fputs(s, stdout);
		out_json_key(stdout, &first, "recomputed");
		fputs(r, stdout);
	}
	fputs("}\n", stdout);
}

/* Compares field by field; returns the number of fields that differ. */
static size_t
verify_compare(struct verify *v, const char *topic,
    const Indicator__Aggregate *a, const struct agg_value *r)
{
	uint32_t reporting = a->districts_reporting;
	uint32_t expected = a->districts_expected;
	uint32_t year = a->target_year;
	size_t n = 0;

	/* Bits, not ==: the daemon sums in the same order, so even the
	 * last bit and the sign of a zero must agree. */
	if (memcmp(&a->value, &r->value, sizeof(double)) != 0) {
		verify_field(
		    v, topic, "value", VK_DOUBLE, &a->value, &r->value);
		n++;
	}
	if (strcmp(a->unit, r->unit) != 0) {
		verify_field(v, topic, "unit", VK_STRING, a->unit, r->unit);
		n++;
	}
	if (reporting != r->districts_reporting) {
		verify_field(v, topic, "districts_reporting", VK_U32,
		    &reporting, &r->districts_reporting);
		n++;
	}
	if (expected != r->districts_expected) {
		verify_field(v, topic, "districts_expected", VK_U32, &expected,
		    &r->districts_expected);
		n++;
	}
	if (memcmp(&a->target, &r->target, sizeof(double)) != 0) {
		verify_field(
		    v, topic, "target", VK_DOUBLE, &a->target, &r->target);
		n++;
	}
	if (year != r->target_year) {
		verify_field(
		    v, topic, "target_year", VK_U32, &year, &r->target_year);
		n++;
	}
	if (memcmp(&a->progress, &r->progress, sizeof(double)) != 0) {
		verify_field(v, topic, "progress", VK_DOUBLE, &a->progress,
		    &r->progress);
		n++;
	}
	return n;
}

/* Recomputes one key and compares it with what is stored. Returns 0, or
 * -1 when the store cannot be read. */
static int
verify_one(struct verify *v, const struct verify_key *vk)
{
	const struct registry *reg = &v->ctl->cfg->reg;
	Indicator__Aggregate *a;
	struct agg_value r;
	char text[OUT_NUM_MAX + 64];
	const void *buf;
	size_t len;
	int rc, got;

	if (strcmp(vk->key.metric, AGG_CLUSTERS_METRIC) != 0 &&
	    registry_metric(reg, vk->key.metric) == NULL) {
		v->checked++;
		v->differences++;
		verify_problem(v, vk->topic, "unknown_metric",
		    "observations of a metric not in the registry");
		return 0;
	}
	if ((rc = agg_compute(reg, &vk->key, verify_lookup, v->ctl->txn, &r)) ==
	    -1)
		return -1;
	got = store_agg_get(v->ctl->txn, vk->topic, &buf, &len);
	if (got != 0 && got != STORE_NOTFOUND)
		return -1;
	if (rc == 0 && got == STORE_NOTFOUND)
		return 0;
	v->checked++;
	if (got == STORE_NOTFOUND) {
		v->differences++;
		out_num(r.value, text, sizeof(text));
		strlcpy_ok(text + strlen(text), " recomputed, none stored",
		    sizeof(text) - strlen(text));
		verify_problem(v, vk->topic, "missing", text);
		return 0;
	}
	if ((a = indicator__aggregate__unpack(NULL, len, buf)) == NULL) {
		v->differences++;
		verify_problem(v, vk->topic, "undecodable",
		    "stored aggregate does not decode");
		return 0;
	}
	if (rc == 0) {
		v->differences++;
		out_num(a->value, text, sizeof(text));
		strlcpy_ok(text + strlen(text),
		    " stored, no observation "
		    "behind it",
		    sizeof(text) - strlen(text));
		verify_problem(v, vk->topic, "unsupported", text);
	} else if (verify_compare(v, vk->topic, a, &r) > 0) {
		v->differences++;
	}
	indicator__aggregate__free_unpacked(a, NULL);
	return 0;
}

/* Stored aggregates that no observation leads to. */
static int
verify_stored(const char *topic, const void *buf, size_t len, void *arg)
{
	struct verify *v = arg;
	struct verify_key probe;
	Indicator__Aggregate *a;
	char text[OUT_NUM_MAX + 64];

	if (!strlcpy_ok(probe.topic, topic, sizeof(probe.topic)) ||
	    v->nkeys == 0 ||
	    bsearch(&probe, v->keys, v->nkeys, sizeof(*v->keys),
		verify_key_cmp) == NULL) {
		v->checked++;
		v->differences++;
		if ((a = indicator__aggregate__unpack(NULL, len, buf)) ==
		    NULL) {
			verify_problem(v, topic, "undecodable",
			    "stored aggregate does not decode, no "
			    "observation behind it");
			return 0;
		}
		out_num(a->value, text, sizeof(text));
		strlcpy_ok(text + strlen(text),
		    " stored, no observation "
		    "behind it",
		    sizeof(text) - strlen(text));
		verify_problem(v, topic, "unsupported", text);
		indicator__aggregate__free_unpacked(a, NULL);
	}
	return 0;
}

int
cmd_verify(struct ctl *ctl, int argc, char *argv[])
{
	struct store_filter any = { 0 };
	struct verify v = { 0 };
	int rc = 1;

	if (args_parse(ctl, argc, argv, NULL, NULL, 0) == -1)
		return usage();
	if (ctl_open(ctl) == -1)
		return 1;
	v.ctl = ctl;
	if (store_obs_scan(ctl->txn, &any, verify_collect, &v) != 0)
		goto read_error;
	verify_dedupe(&v);
	for (size_t i = 0; i < v.nkeys; i++)
		if (verify_one(&v, &v.keys[i]) == -1)
			goto read_error;
	if (store_agg_scan(ctl->txn, "", verify_stored, &v) != 0)
		goto read_error;
	if (ctl->json) {
		bool first = true;

		fputc('{', stdout);
		out_json_count(stdout, &first, "checked", v.checked);
		out_json_count(stdout, &first, "differences", v.differences);
		fputs("}\n", stdout);
	} else {
		printf("verify: %zu aggregates checked, %zu differences\n",
		    v.checked, v.differences);
	}
	rc = v.differences == 0 ? 0 : 1;
	goto free_keys;
read_error:
	fprintf(stderr, "indicatorctl: verify: cannot read the store\n");
free_keys:
	free(v.keys);
	return rc;
}

/* scrub */

struct scrub {
	struct ctl *ctl;
};

static int
scrub_damaged(const char *db, const char *key, const char *why, void *arg)
{
	struct scrub *s = arg;
	bool first = true;

	if (!s->ctl->json) {
		out_line(stdout, "scrub: %s %s: %s", db, key, why);
		return 0;
	}
	fputc('{', stdout);
	out_json_str(stdout, &first, "db", db);
	out_json_str(stdout, &first, "key", key);
	out_json_str(stdout, &first, "problem", why);
	fputs("}\n", stdout);
	return 0;
}

int
cmd_scrub(struct ctl *ctl, int argc, char *argv[])
{
	struct scrub s = { ctl };
	uint64_t records = 0;
	int damaged;

	if (args_parse(ctl, argc, argv, NULL, NULL, 0) == -1)
		return usage();
	if (ctl_open(ctl) == -1)
		return 1;
	if (!store_checksummed(ctl->store)) {
		fprintf(stderr,
		    "indicatorctl: scrub: the store is of an older format "
		    "(2 or 3), without checksums: start indicatord on it once "
		    "to upgrade it\n");
		return 1;
	}
	damaged = store_scrub(ctl->txn, 1, scrub_damaged, &s, &records);
	if (damaged == -1) {
		fprintf(stderr, "indicatorctl: scrub: cannot read the store\n");
		return 1;
	}
	if (ctl->json) {
		bool first = true;

		fputc('{', stdout);
		out_json_count(stdout, &first, "records", (size_t)records);
		out_json_count(stdout, &first, "damaged", (size_t)damaged);
		fputs("}\n", stdout);
	} else {
		printf("scrub: %llu records read, %d damaged\n",
		    (unsigned long long)records, damaged);
	}
	return damaged == 0 ? 0 : 1;
}
