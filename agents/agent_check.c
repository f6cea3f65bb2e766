/*
 * The clerk's tools: check (a file judged as the daemon would, offline)
 * and template (the file a clerk fills in).
 *
 * check reads a file exactly as send does (the same encoding, names and
 * parser), cuts its rows into the same reports, and runs the daemon's own
 * validation (core/validate.c) on each, with the registry and limits of
 * the agent's configuration and today's date in its time zone: a file
 * check passes is accepted whole by a daemon with the same registry.
 */
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "i18n.h"
#include "log.h"
#include "period.h"
#include "validate.h"
#include "xmalloc.h"

struct check_file {
	struct agent *a;
	const char *name;
	unsigned cols[CSV_NCOLS];
	struct csv_row *rows; /* one report's: cfg.report_size */
	size_t n;
	unsigned long nrows;
	size_t reports;
	struct civil_date today;
	struct validation v;
	struct agent_lines *out;
	size_t problems;
};

/* Today in the configured time zone. -1 when the zone is unknown. */
static int
check_today(const struct agent *a, struct civil_date *today)
{
	char why[256];
	time_t now = time(NULL);
	struct tm tm;

	if (config_check_zone(a->cfg.timezone, NULL, why, sizeof(why)) !=
	    NULL) {
		log_error("agent: timezone: %s", why);
		return -1;
	}
	setenv("TZ", a->cfg.timezone, 1);
	tzset();
	if (localtime_r(&now, &tm) == NULL) {
		log_error("agent: localtime: %s", strerror(errno));
		return -1;
	}
	today->year = tm.tm_year + 1900;
	today->month = tm.tm_mon + 1;
	today->day = tm.tm_mday;
	return 0;
}

/* The daemon's validation of the rows gathered, as one report. */
static void
check_report(struct check_file *cf)
{
	struct agent *a = cf->a;
	Indicator__Observation *obs, **obsp;
	Indicator__Report r = INDICATOR__REPORT__INIT;

	if (cf->n == 0)
		return;
	obs = xcalloc(cf->n, sizeof(*obs));
	obsp = xcalloc(cf->n, sizeof(*obsp));
	for (size_t k = 0; k < cf->n; k++) {
		struct csv_row *row = &cf->rows[k];

		indicator__observation__init(&obs[k]);
		obs[k].industry = row->industry;
		obs[k].metric = row->metric;
		obs[k].period = row->period;
		obs[k].value = row->value;
		obs[k].unit = row->unit;
		obs[k].status = (Indicator__ObsStatus)row->status;
		obs[k].note = row->note;
		obsp[k] = &obs[k];
	}
	r.agent_id = a->cfg.id[0] != '\0' ? a->cfg.id : "check";
	r.district = a->cfg.district;
	r.epoch = 1;
	r.seq = cf->reports + 1;
	r.n_observations = cf->n;
	r.observations = obsp;
	if (validate_report(
		&a->cfg.reg, &a->cfg.limits, &r, &cf->today, &cf->v) != 0) {
		if (cf->v.code != NULL) {
			agent_explain_report(
			    a, cf->out, cf->name, 0, cf->v.code, cf->v.message);
			cf->problems++;
		}
		for (size_t i = 0; i < cf->v.nerrors; i++) {
			const struct obs_error *e = &cf->v.errors[i];

			agent_explain(a, cf->out, cf->name,
			    cf->rows[e->index].line, cf->cols, e->code,
			    e->message, obsp[e->index]);
			cf->problems++;
		}
	}
	cf->reports++;
	cf->n = 0;
	free(obsp);
	free(obs);
	/* Said as found: a file of many problems is not held. */
	for (size_t i = 0; i < cf->out->n; i++)
		printf("%s\n", cf->out->v[i]);
	agent_lines_free(cf->out);
}

static int
check_row(const struct csv_row *row, void *arg)
{
	struct check_file *cf = arg;

	cf->rows[cf->n++] = *row;
	cf->nrows++;
	if (cf->n == cf->a->cfg.report_size)
		check_report(cf);
	return 0;
}

/* One file: its problems printed; 0 when it has none. */
static int
check_one(struct agent *a, const char *path, const struct civil_date *today)
{
	struct agent_lines out = { 0 };
	struct check_file cf;
	int rc;

	memset(&cf, 0, sizeof(cf));
	cf.a = a;
	cf.name = path;
	cf.today = *today;
	cf.out = &out;
	cf.rows = xcalloc(a->cfg.report_size, sizeof(*cf.rows));
	validation_init(&cf.v);
	rc = agent_read_file(a, path, path, check_row, &cf, cf.cols, &out);
	if (rc == 0)
		check_report(&cf);
	else
		cf.problems = out.n;
	for (size_t i = 0; i < out.n; i++)
		printf("%s\n", out.v[i]);
	if (cf.problems == 0)
		printf(_("%s: %lu rows in %zu reports: the daemon would accept "
			 "them all\n"),
		    path, cf.nrows, cf.reports);
	else
		printf(
		    _("%s: problems found: %zu; correct them, then check the "
		      "file again before sending it\n"),
		    path, cf.problems);
	agent_lines_free(&out);
	validation_free(&cf.v);
	free(cf.rows);
	return cf.problems == 0 ? 0 : 1;
}

int
agent_check_files(struct agent *a, char *const files[], int nfiles)
{
	struct civil_date today;
	int bad = 0;

	if (check_today(a, &today) == -1)
		return AGENT_EXIT_USAGE;
	for (int i = 0; i < nfiles; i++)
		bad |= check_one(a, files[i], &today);
	if (fflush(stdout) != 0)
		return AGENT_EXIT_FAIL;
	return bad ? AGENT_EXIT_FAIL : AGENT_EXIT_OK;
}

/* A CSV field, quoted when it must be. */
static void
csv_put(char **line, size_t *len, size_t *cap, const char *s, bool last)
{
	bool quote = strpbrk(s, ",\"\r\n") != NULL;
	size_t need = 2 * strlen(s) + 8;

	if (*len + need > *cap) {
		*cap = (*len + need) * 2;
		*line = xrealloc(*line, *cap);
	}
	if (quote)
		(*line)[(*len)++] = '"';
	for (; *s != '\0'; s++) {
		if (*s == '"')
			(*line)[(*len)++] = '"';
		(*line)[(*len)++] = *s;
	}
	if (quote)
		(*line)[(*len)++] = '"';
	if (last) {
		(*line)[(*len)++] = '\r';
		(*line)[(*len)++] = '\n';
	} else {
		(*line)[(*len)++] = ',';
	}
	(*line)[*len] = '\0';
}

/* The name a clerk knows a code by: its first alias, else the code. */
static const char *
clerk_name(const struct registry *reg, enum reg_kind kind, const char *code)
{
	const char *alias = registry_alias(reg, kind, code);

	return alias != NULL ? alias : code;
}

/* The period as a clerk writes it, in a form Excel keeps as it is:
 * 2025年, 2025年第三季度, 2025年9月 (Excel would turn 2025-09 into a
 * date). */
static void
clerk_period(const struct period *p, char *buf, size_t len)
{
	static const char *const q[] = { "一", "二", "三", "四" };

	switch (p->kind) {
	case PERIOD_QUARTER:
		snprintf(buf, len, "%d年第%s季度", p->year, q[p->n - 1]);
		break;
	case PERIOD_MONTH:
		snprintf(buf, len, "%d年%d月", p->year, p->n);
		break;
	case PERIOD_YEAR:
	default:
		snprintf(buf, len, "%d年", p->year);
		break;
	}
}

/* Writes len bytes of UTF-8 to stdout, through cd when not -1. */
static int
template_write(iconv_t cd, const char *s, size_t len)
{
	char out[8192], *in = (char *)s;
	size_t inleft = len;

	if (cd == (iconv_t)-1)
		return fwrite(s, 1, len, stdout) == len ? 0 : -1;
	while (inleft > 0) {
		char *o = out;
		size_t oleft = sizeof(out);

		if (iconv(cd, &in, &inleft, &o, &oleft) == (size_t)-1 &&
		    errno != E2BIG) {
			log_error("agent: template: a name cannot be written "
				  "in GB18030: %s",
			    strerror(errno));
			return -1;
		}
		if (fwrite(out, 1, (size_t)(o - out), stdout) !=
		    (size_t)(o - out))
			return -1;
	}
	return 0;
}

int
agent_template(struct agent *a, const char *period, const char *encoding)
{
	const struct registry *reg = &a->cfg.reg;
	char *line = NULL, per[64];
	size_t len = 0, cap = 0;
	iconv_t cd = (iconv_t)-1;
	struct period p;
	int rc = AGENT_EXIT_OK;

	if (!period_parse_clerk(period, &p)) {
		log_error("agent: template: period '%s' is not a period; write "
			  "it as one of %s",
		    period, period_clerk_forms);
		return AGENT_EXIT_USAGE;
	}
	if (encoding != NULL && strcmp(encoding, "gb18030") != 0 &&
	    strcmp(encoding, "utf-8-bom") != 0) {
		log_error("agent: template: --encoding %s: write gb18030 or "
			  "utf-8-bom",
		    encoding);
		return AGENT_EXIT_USAGE;
	}
	if (encoding != NULL && strcmp(encoding, "gb18030") == 0) {
		if ((cd = iconv_open("GB18030", "UTF-8")) == (iconv_t)-1) {
			log_error(
			    "agent: template: iconv: %s", strerror(errno));
			return AGENT_EXIT_FAIL;
		}
	} else if (fwrite("\xef\xbb\xbf", 1, 3, stdout) != 3) {
		return AGENT_EXIT_FAIL;
	}
	clerk_period(&p, per, sizeof(per));
	for (int c = 0; c < CSV_NCOLS; c++)
		csv_put(&line, &len, &cap,
		    clerk_name(reg, REG_COLUMN, registry_columns[c]),
		    c == CSV_NCOLS - 1);
	if (template_write(cd, line, len) == -1)
		rc = AGENT_EXIT_FAIL;
	for (size_t i = 0; i < reg->nindustries && rc == AGENT_EXIT_OK; i++)
		for (size_t m = 0; m < reg->nmetrics && rc == AGENT_EXIT_OK;
		     m++) {
			const struct reg_metric *me = &reg->metrics[m];

			len = 0;
			csv_put(&line, &len, &cap,
			    clerk_name(
				reg, REG_INDUSTRY, reg->industries[i].code),
			    false);
			csv_put(&line, &len, &cap,
			    clerk_name(reg, REG_METRIC, me->code), false);
			csv_put(&line, &len, &cap, per, false);
			csv_put(&line, &len, &cap, "", false);
			csv_put(&line, &len, &cap,
			    clerk_name(reg, REG_UNIT, me->unit), false);
			csv_put(&line, &len, &cap, "", false);
			csv_put(&line, &len, &cap, "", true);
			if (template_write(cd, line, len) == -1)
				rc = AGENT_EXIT_FAIL;
		}
	if (cd != (iconv_t)-1)
		iconv_close(cd);
	free(line);
	if (fflush(stdout) != 0)
		rc = AGENT_EXIT_FAIL;
	return rc;
}
