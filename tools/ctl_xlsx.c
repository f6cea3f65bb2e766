/*
 * indicatorctl export --format xlsx: one worksheet of observations or
 * aggregates, through Debian's libxlsxwriter, for analysts who open it in
 * Excel or LibreOffice: the registry's Chinese names beside the codes,
 * values and counts as numbers, times as Excel date-times in the
 * configured time zone, 64-bit identifiers (epoch, seq, revision) as text
 * because a spreadsheet number keeps only 15 digits.
 *
 * Rows are written in order in libxlsxwriter's constant-memory mode, so a
 * large export needs little memory (its temporary files go to $TMPDIR).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xlsxwriter.h>

#include "aggregate.h"
#include "indicatorctl.h"
#include "xmalloc.h"

/* Excel's last row is 1048576; the first holds the header. */
#define XLSX_ROWS_MAX 1048575

struct xlsx {
	char *path;
	const struct registry *reg;
	lxw_workbook *wb;
	lxw_worksheet *ws;
	lxw_format *head;
	lxw_format *when; /* date-time */
	lxw_format *pct;
	lxw_row_t row; /* the last row written */
	lxw_col_t ncols;
	bool failed; /* said on stderr */
};

struct xlsx_col {
	const char *name;
	double width;
};

static const struct xlsx_col obs_cols[] = {
	{ "district", 9 },
	{ "district_name", 20 },
	{ "industry", 11 },
	{ "industry_name", 16 },
	{ "metric", 20 },
	{ "metric_name", 30 },
	{ "period", 9 },
	{ "value", 12 },
	{ "unit", 10 },
	{ "sent_value", 12 },
	{ "sent_unit", 10 },
	{ "status", 11 },
	{ "note", 30 },
	{ "agent_id", 16 },
	{ "epoch", 22 },
	{ "seq", 8 },
	{ "sent_at", 20 },
	{ "stored_at", 20 },
	{ "revision", 9 },
};

static const struct xlsx_col agg_cols[] = {
	{ "topic", 40 },
	{ "metric", 20 },
	{ "metric_name", 30 },
	{ "industry", 11 },
	{ "industry_name", 16 },
	{ "scope", 9 },
	{ "scope_name", 20 },
	{ "period", 9 },
	{ "value", 12 },
	{ "unit", 10 },
	{ "districts_reporting", 10 },
	{ "districts_expected", 10 },
	{ "target", 10 },
	{ "target_year", 10 },
	{ "progress", 10 },
	{ "revision", 9 },
	{ "seq", 10 },
	{ "updated_at", 20 },
};

#define NCOLS(a) (sizeof(a) / sizeof((a)[0]))

/* Says once why the workbook cannot be written; -1. */
static int
xlsx_fail(struct xlsx *x, lxw_error err)
{
	if (!x->failed)
		fprintf(stderr, "indicatorctl: export: %s: %s\n", x->path,
		    err == LXW_ERROR_WORKSHEET_INDEX_OUT_OF_RANGE
			? "more rows than a worksheet holds (1048575); "
			  "narrow the export with --district, --period or "
			  "--prefix, or use --format csv"
			: lxw_strerror(err));
	x->failed = true;
	return -1;
}

static int
put_str(struct xlsx *x, lxw_col_t col, const char *s)
{
	char *clean = out_xml_clean(s);
	lxw_error err = LXW_NO_ERROR;

	/* An empty cell rather than an empty string: Excel treats them
	 * alike, and a blank reads as "none". */
	if (clean[0] != '\0')
		err = worksheet_write_string(x->ws, x->row, col, clean, NULL);
	free(clean);
	return err == LXW_NO_ERROR ? 0 : xlsx_fail(x, err);
}

static int
put_num(struct xlsx *x, lxw_col_t col, double v, lxw_format *fmt)
{
	lxw_error err = worksheet_write_number(x->ws, x->row, col, v, fmt);

	return err == LXW_NO_ERROR ? 0 : xlsx_fail(x, err);
}

/* A 64-bit integer as text: digits a spreadsheet would round. */
static int
put_u64(struct xlsx *x, lxw_col_t col, uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return put_str(x, col, buf);
}

/* ms since the epoch as a date-time in the configured zone; empty when
 * unset. */
static int
put_time(struct xlsx *x, lxw_col_t col, int64_t ms)
{
	struct tm tm;
	lxw_datetime dt;
	lxw_error err;

	if (!out_localtime(ms, &tm))
		return 0;
	dt.year = tm.tm_year + 1900;
	dt.month = tm.tm_mon + 1;
	dt.day = tm.tm_mday;
	dt.hour = tm.tm_hour;
	dt.min = tm.tm_min;
	dt.sec = tm.tm_sec + (double)(ms % 1000) / 1000.0;
	err = worksheet_write_datetime(x->ws, x->row, col, &dt, x->when);
	return err == LXW_NO_ERROR ? 0 : xlsx_fail(x, err);
}

struct xlsx *
xlsx_open(const char *path, bool aggregates, const struct registry *reg)
{
	lxw_workbook_options opt = { .constant_memory = LXW_TRUE };
	const struct xlsx_col *cols = aggregates ? agg_cols : obs_cols;
	struct xlsx *x = xcalloc(1, sizeof(*x));

	x->path = xstrdup(path);
	x->reg = reg;
	x->ncols = (lxw_col_t)(aggregates ? NCOLS(agg_cols) : NCOLS(obs_cols));
	x->wb = workbook_new_opt(path, &opt);
	if (x->wb == NULL) {
		fprintf(
		    stderr, "indicatorctl: export: cannot create %s\n", path);
		free(x->path);
		free(x);
		return NULL;
	}
	x->ws = workbook_add_worksheet(
	    x->wb, aggregates ? "aggregates" : "observations");
	x->head = workbook_add_format(x->wb);
	format_set_bold(x->head);
	x->when = workbook_add_format(x->wb);
	format_set_num_format(x->when, "yyyy-mm-dd hh:mm:ss");
	x->pct = workbook_add_format(x->wb);
	format_set_num_format(x->pct, "0.0%");
	for (lxw_col_t c = 0; c < x->ncols; c++) {
		worksheet_set_column(x->ws, c, c, cols[c].width, NULL);
		worksheet_write_string(x->ws, 0, c, cols[c].name, x->head);
	}
	worksheet_freeze_panes(x->ws, 1, 0);
	return x;
}

/* The next row, or -1 past the worksheet's last. */
static int
next_row(struct xlsx *x)
{
	if (x->row == XLSX_ROWS_MAX)
		return xlsx_fail(x, LXW_ERROR_WORKSHEET_INDEX_OUT_OF_RANGE);
	x->row++;
	return 0;
}

static const char *
district_name(const struct registry *reg, const char *code)
{
	const struct reg_district *d = registry_district(reg, code);

	if (strcmp(code, "city") == 0)
		return "全市";
	return d != NULL ? d->name : "";
}

static const char *
industry_name(const struct registry *reg, const char *code)
{
	const struct reg_industry *in = registry_industry(reg, code);

	if (strcmp(code, "*") == 0)
		return "全部";
	return in != NULL ? in->name : "";
}

static const char *
metric_name(const struct registry *reg, const char *code)
{
	const struct reg_metric *m = registry_metric(reg, code);

	if (strcmp(code, AGG_CLUSTERS_METRIC) == 0)
		return "千亿级创新集群";
	return m != NULL ? m->name : "";
}

int
xlsx_obs(struct xlsx *x, const struct store_obs *o)
{
	const struct registry *reg = x->reg;
	lxw_col_t c = 0;

	if (x->failed || next_row(x) == -1)
		return -1;
	if (put_str(x, c++, o->district) == -1 ||
	    put_str(x, c++, district_name(reg, o->district)) == -1 ||
	    put_str(x, c++, o->industry) == -1 ||
	    put_str(x, c++, industry_name(reg, o->industry)) == -1 ||
	    put_str(x, c++, o->metric) == -1 ||
	    put_str(x, c++, metric_name(reg, o->metric)) == -1 ||
	    put_str(x, c++, o->period) == -1 ||
	    put_num(x, c++, o->value, NULL) == -1 ||
	    put_str(x, c++, o->unit) == -1 ||
	    put_num(x, c++, o->sent_value, NULL) == -1 ||
	    put_str(x, c++, o->sent_unit) == -1 ||
	    put_str(x, c++,
		o->status == INDICATOR__OBS_STATUS__OBS_STATUS_UNSPECIFIED
		    ? ""
		    : status_name(o->status)) == -1 ||
	    put_str(x, c++, o->note) == -1 ||
	    put_str(x, c++, o->agent_id) == -1 ||
	    put_u64(x, c++, o->epoch) == -1 || put_u64(x, c++, o->seq) == -1 ||
	    put_time(x, c++, o->sent_at_ms) == -1 ||
	    put_time(x, c++, o->stored_at_ms) == -1 ||
	    put_num(x, c++, o->revision, NULL) == -1)
		return -1;
	return 0;
}

int
xlsx_agg(struct xlsx *x, const char *topic, const Indicator__Aggregate *a)
{
	const struct registry *reg = x->reg;
	lxw_col_t c = 0;

	if (x->failed || next_row(x) == -1)
		return -1;
	if (put_str(x, c++, topic) == -1 || put_str(x, c++, a->metric) == -1 ||
	    put_str(x, c++, metric_name(reg, a->metric)) == -1 ||
	    put_str(x, c++, a->industry) == -1 ||
	    put_str(x, c++, industry_name(reg, a->industry)) == -1 ||
	    put_str(x, c++, a->scope) == -1 ||
	    put_str(x, c++, district_name(reg, a->scope)) == -1 ||
	    put_str(x, c++, a->period) == -1 ||
	    put_num(x, c++, a->value, NULL) == -1 ||
	    put_str(x, c++, a->unit) == -1 ||
	    put_num(x, c++, a->districts_reporting, NULL) == -1 ||
	    put_num(x, c++, a->districts_expected, NULL) == -1)
		return -1;
	/* No target: empty cells, never 0. */
	if (a->target_year != 0 &&
	    (put_num(x, c, a->target, NULL) == -1 ||
		put_num(x, c + 1, a->target_year, NULL) == -1 ||
		put_num(x, c + 2, a->progress, x->pct) == -1))
		return -1;
	c += 3;
	if (put_u64(x, c++, a->revision) == -1 ||
	    put_u64(x, c++, a->seq) == -1 ||
	    put_time(x, c++, a->updated_at_ms) == -1)
		return -1;
	return 0;
}

int
xlsx_close(struct xlsx **xp, bool keep)
{
	struct xlsx *x = *xp;
	lxw_error err;
	int rc = x->failed ? -1 : 0;

	if (x->row > 0)
		worksheet_autofilter(x->ws, 0, 0, x->row, x->ncols - 1);
	/* workbook_close() writes the file and frees the workbook. */
	if ((err = workbook_close(x->wb)) != LXW_NO_ERROR)
		rc = xlsx_fail(x, err);
	if (rc == -1 || !keep)
		remove(x->path);
	free(x->path);
	free(x);
	*xp = NULL;
	return rc;
}
