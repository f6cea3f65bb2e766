/*
 * The validation's codes (core/validate.c, the same for the daemon's
 * answers and for check) told to the clerk: the file, the line and the
 * column of the observation, what is wrong and what to do, translated,
 * with the accepted values listed from the agent's registry. The daemon's
 * Ack names an observation by its index in the report; the outbox keeps
 * each report's source (the file, its columns, each observation's line),
 * so the index becomes FILE:LINE:COLUMN.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "i18n.h"
#include "log.h"
#include "store.pb-c.h"
#include "xmalloc.h"

#define EXPLAIN_LIST_MAX 600
#define EXPLAIN_MSG_MAX 1200

/* The column a code is about. */
static enum csv_col
code_column(const char *code, const char *msg)
{
	static const struct {
		const char *code;
		enum csv_col col;
	} cols[] = {
		{ "unknown_industry", CSV_INDUSTRY },
		{ "unknown_metric", CSV_METRIC },
		{ "bad_period", CSV_PERIOD },
		{ "future_period", CSV_PERIOD },
		{ "too_early", CSV_PERIOD },
		{ "not_finite", CSV_VALUE },
		{ "negative", CSV_VALUE },
		{ "not_integer", CSV_VALUE },
		{ "implausible", CSV_VALUE },
		{ "unknown_unit", CSV_UNIT },
		{ "bad_status", CSV_STATUS },
		{ "duplicate_key", CSV_INDUSTRY },
	};

	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
		if (strcmp(cols[i].code, code) == 0)
			return cols[i].col;
	/* bad_string: the validation's message starts with the field. */
	for (int c = 0; c < CSV_NCOLS && msg != NULL; c++) {
		size_t n = strlen(registry_columns[c]);

		if (strncmp(msg, registry_columns[c], n) == 0 && msg[n] == ' ')
			return c;
	}
	return CSV_NCOLS;
}

/* A code as the lists show it: "chain_leaders (链主企业)". */
static const char *
named(const struct registry *reg, enum reg_kind kind, const char *code,
    char *buf, size_t len)
{
	const char *alias = registry_alias(reg, kind, code);

	if (alias != NULL)
		snprintf(buf, len, "%s (%s)", code, alias);
	else
		snprintf(buf, len, "%s", code);
	return buf;
}

static const char *
fmt_value(double v, char *buf, size_t len)
{
	snprintf(buf, len, "%.15g", v);
	return buf;
}

void
agent_explain(struct agent *a, struct agent_lines *out, const char *file,
    unsigned line, const unsigned cols[CSV_NCOLS], const char *code,
    const char *msg, const Indicator__Observation *o)
{
	const struct registry *reg = &a->cfg.reg;
	const struct reg_metric *m = registry_metric(reg, o->metric);
	char list[EXPLAIN_LIST_MAX], text[EXPLAIN_MSG_MAX], v[32], max[32];
	char mname[IND_CODE_MAX + REG_ALIAS_MAX + 8];
	char uname[IND_CODE_MAX + REG_ALIAS_MAX + 8];
	char cname[IND_CODE_MAX + REG_ALIAS_MAX + 8];
	enum csv_col c = code_column(code, msg);

	named(reg, REG_METRIC, o->metric, mname, sizeof(mname));
	named(reg, REG_UNIT, o->unit, uname, sizeof(uname));
	if (m != NULL)
		named(reg, REG_UNIT, m->unit, cname, sizeof(cname));
	unsigned col = c < CSV_NCOLS && cols != NULL ? cols[c] : 0;

	if (strcmp(code, "unknown_industry") == 0)
		snprintf(text, sizeof(text),
		    _("industry '%s' is not in the daemon's registry; write "
		      "one of: %s"),
		    o->industry,
		    registry_list(reg, REG_INDUSTRY, NULL, list, sizeof(list)));
	else if (strcmp(code, "unknown_metric") == 0)
		snprintf(text, sizeof(text),
		    _("metric '%s' is not in the daemon's registry; write one "
		      "of: %s"),
		    o->metric,
		    registry_list(reg, REG_METRIC, NULL, list, sizeof(list)));
	else if (strcmp(code, "unknown_unit") == 0)
		snprintf(text, sizeof(text),
		    _("unit '%s' is not one that %s takes; write one of: %s"),
		    o->unit, mname,
		    registry_list(reg, REG_UNIT, m, list, sizeof(list)));
	else if (strcmp(code, "future_period") == 0)
		snprintf(text, sizeof(text),
		    _("period %s has not begun yet; report it once it has "
		      "begun, or correct the year"),
		    o->period);
	else if (strcmp(code, "too_early") == 0)
		snprintf(text, sizeof(text),
		    _("period %s is before %d, the registry's first year; "
		      "correct the year"),
		    o->period, reg->first_year);
	else if (strcmp(code, "bad_period") == 0)
		snprintf(text, sizeof(text),
		    _("period '%s' is not one the daemon takes; write it as "
		      "one "
		      "of 2025, 2025-09, 2025-Q3"),
		    o->period);
	else if (strcmp(code, "not_finite") == 0)
		snprintf(text, sizeof(text),
		    _("the value is not a finite number; write the figure"));
	else if (strcmp(code, "negative") == 0)
		snprintf(text, sizeof(text),
		    _("value %s is below zero; no figure of the plan is "
		      "negative: check the sign"),
		    fmt_value(o->value, v, sizeof(v)));
	else if (strcmp(code, "not_integer") == 0)
		snprintf(text, sizeof(text),
		    _("%s is a count, and %s %s is not a whole number; write a "
		      "whole number"),
		    mname, fmt_value(o->value, v, sizeof(v)), uname);
	else if (strcmp(code, "implausible") == 0 && m != NULL)
		snprintf(text, sizeof(text),
		    _("value %s %s is more than one district can have of %s "
		      "(at most %s %s); check the unit (yuan, 10,000 yuan or "
		      "100 million yuan?) and the digits"),
		    fmt_value(o->value, v, sizeof(v)), uname, mname,
		    fmt_value(m->max, max, sizeof(max)), cname);
	else if (strcmp(code, "duplicate_key") == 0)
		snprintf(text, sizeof(text),
		    _("%s/%s/%s is twice in the file; keep one of the two "
		      "lines"),
		    o->industry, o->metric, o->period);
	else if (strcmp(code, "bad_status") == 0)
		snprintf(text, sizeof(text),
		    _("the status is not one the daemon takes; write one of: "
		      "%s, or leave it empty"),
		    registry_list(reg, REG_STATUS, NULL, list, sizeof(list)));
	else
		snprintf(text, sizeof(text), _("%s (%s); correct this field"),
		    msg != NULL && msg[0] != '\0' ? msg : code, code);

	if (line == 0)
		agent_lines_add(out, "%s: %s", file, text);
	else if (col == 0)
		agent_lines_add(out, "%s:%u: %s", file, line, text);
	else
		agent_lines_add(out, "%s:%u:%u: %s", file, line, col, text);
}

void
agent_explain_report(struct agent *a, struct agent_lines *out, const char *file,
    uint64_t seq, const char *code, const char *msg)
{
	char text[EXPLAIN_MSG_MAX];

	if (strcmp(code, "unknown_district") == 0)
		snprintf(text, sizeof(text),
		    _("district %s is not in the daemon's registry; set the "
		      "district of the agent's configuration"),
		    a->cfg.district);
	else if (strcmp(code, "too_many_observations") == 0)
		snprintf(text, sizeof(text),
		    _("a report of %u observations is more than the daemon "
		      "takes (%s); lower report_size in the agent's "
		      "configuration"),
		    a->cfg.report_size, msg);
	else if (strcmp(code, "not_authorised") == 0)
		snprintf(text, sizeof(text),
		    _("the daemon does not take this agent's reports for "
		      "district %s (%s); ask the city to authorise its key"),
		    a->cfg.district, msg);
	else
		snprintf(text, sizeof(text),
		    _("%s (%s); nothing of it is "
		      "stored"),
		    msg != NULL && msg[0] != '\0' ? msg : code, code);
	/* The code too: what the daemon's log and metrics count it by. */
	if (seq != 0)
		agent_lines_add(out, _("%s: report seq %llu: %s [%s]"), file,
		    (unsigned long long)seq, text, code);
	else
		agent_lines_add(out, "%s: %s [%s]", file, text, code);
}

/* The source's lines, made absolute; NULL when it has none. */
static unsigned *
source_lines(const Indicator__Store__ReportSource *src)
{
	unsigned *lines, at = 0;

	if (src->n_lines == 0)
		return NULL;
	lines = xcalloc(src->n_lines, sizeof(*lines));
	for (size_t i = 0; i < src->n_lines; i++) {
		at += src->lines[i];
		lines[i] = at;
	}
	return lines;
}

/* Another part of the file, pending in the outbox: its report and
 * source. */
struct other_part {
	Indicator__AgentMessage *msg;
	Indicator__Store__ReportSource *src;
	unsigned *lines;
	unsigned cols[CSV_NCOLS];
};

static int
other_part_report(uint64_t seq, const void *buf, size_t len, void *arg)
{
	struct other_part *op = arg;

	(void)seq;
	op->msg = indicator__agent_message__unpack(NULL, len, buf);
	return 1;
}

/* Reads part seq of the file from ob; false when it is not there. */
static bool
other_part_read(struct outbox *ob, uint64_t seq, struct other_part *op)
{
	void *buf = NULL;
	size_t len = 0;

	memset(op, 0, sizeof(*op));
	if (ob == NULL || outbox_source(ob, seq, &buf, &len) != 0)
		return false;
	op->src = indicator__store__report_source__unpack(NULL, len, buf);
	free(buf);
	if (op->src == NULL)
		return false;
	op->lines = source_lines(op->src);
	for (size_t c = 0; c < CSV_NCOLS && c < op->src->n_columns; c++)
		op->cols[c] = op->src->columns[c];
	if (outbox_scan(ob, seq, 1, other_part_report, op) == -1 ||
	    op->msg == NULL ||
	    op->msg->body_case != INDICATOR__AGENT_MESSAGE__BODY_REPORT ||
	    op->msg->report->seq != seq || op->lines == NULL)
		return false;
	return true;
}

static void
other_part_free(struct other_part *op)
{
	indicator__agent_message__free_unpacked(op->msg, NULL);
	if (op->src != NULL)
		indicator__store__report_source__free_unpacked(op->src, NULL);
	free(op->lines);
	memset(op, 0, sizeof(*op));
}

void
agent_rejection(struct agent *a, struct outbox *ob, uint64_t seq,
    const void *report, size_t report_len, const void *ackbuf, size_t ack_len,
    const void *srcbuf, size_t src_len, struct agent_lines *out, char **file,
    char **mark)
{
	Indicator__Store__ReportSource *src = NULL;
	Indicator__AgentMessage *msg;
	const Indicator__Report *r = NULL;
	unsigned cols[CSV_NCOLS] = { 0 }, *lines = NULL;
	char head[128];
	const char *name;
	Indicator__Ack *ack;
	bool part = false;

	if (file != NULL)
		*file = NULL;
	if (mark != NULL)
		*mark = NULL;
	if (srcbuf != NULL)
		src = indicator__store__report_source__unpack(
		    NULL, src_len, srcbuf);
	msg = indicator__agent_message__unpack(NULL, report_len, report);
	if (msg != NULL &&
	    msg->body_case == INDICATOR__AGENT_MESSAGE__BODY_REPORT) {
		r = msg->report;
		part = r->parts > 1 && r->part >= 1 && r->part <= r->parts &&
		       r->part <= seq;
	}
	snprintf(
	    head, sizeof(head), _("report seq %llu"), (unsigned long long)seq);
	name = src != NULL ? src->file : head;
	if (src != NULL) {
		lines = source_lines(src);
		for (size_t c = 0; c < CSV_NCOLS && c < src->n_columns; c++)
			cols[c] = src->columns[c];
		if (file != NULL)
			*file = xstrdup(src->file);
		if (mark != NULL)
			*mark = xstrdup(src->mark);
	}

	if ((ack = indicator__ack__unpack(NULL, ack_len, ackbuf)) == NULL) {
		agent_lines_add(out,
		    _("%s: the daemon's answer to report seq %llu does not "
		      "decode"),
		    name, (unsigned long long)seq);
		goto free_all;
	}
	/* A later part of a file refused earlier: one line says so. */
	if (part && ack->n_errors == 0 &&
	    strcmp(ack->code, "file_rejected") == 0) {
		agent_lines_add(out,
		    _("%s: part %u of %u (report seq %llu) was refused with "
		      "the file"),
		    name, r->part, r->parts, (unsigned long long)seq);
		goto free_ack;
	}
	if (part && src != NULL && lines != NULL)
		agent_lines_add(out,
		    _("%s: the daemon refused the file at part %u of %u "
		      "(report seq %llu, lines %u to %u): nothing of this "
		      "file is stored"),
		    name, r->part, r->parts, (unsigned long long)seq, lines[0],
		    lines[src->n_lines - 1]);
	else if (src != NULL && lines != NULL)
		agent_lines_add(out,
		    _("%s: the daemon refused report seq %llu (lines %u to "
		      "%u): nothing of it is stored"),
		    name, (unsigned long long)seq, lines[0],
		    lines[src->n_lines - 1]);
	if (ack->code[0] != '\0' && strcmp(ack->code, "file_rejected") != 0)
		agent_explain_report(a, out, name, src != NULL ? seq : 0,
		    ack->code, ack->message);
	for (size_t i = 0; i < ack->n_errors; i++) {
		const Indicator__ObservationError *e = ack->errors[i];
		Indicator__Observation empty = INDICATOR__OBSERVATION__INIT;
		const Indicator__Observation *o = &empty;
		struct other_part op;
		char where[256];

		if (e->part != 0 && part && e->part <= r->parts) {
			/* An observation of another part of the file. */
			uint64_t at = seq - r->part + e->part;

			if (other_part_read(ob, at, &op) &&
			    e->index < op.msg->report->n_observations &&
			    e->index < op.src->n_lines)
				agent_explain(a, out, op.src->file,
				    op.lines[e->index], op.cols, e->code,
				    e->message,
				    op.msg->report->observations[e->index]);
			else
				agent_lines_add(out,
				    _("%s: part %u of the file, observation "
				      "%u: %s [%s]"),
				    name, e->part, (unsigned)e->index,
				    e->message, e->code);
			other_part_free(&op);
			continue;
		}
		if (r != NULL && e->index < r->n_observations)
			o = r->observations[e->index];
		if (lines != NULL && e->index < src->n_lines) {
			agent_explain(a, out, src->file, lines[e->index], cols,
			    e->code, e->message, o);
			continue;
		}
		snprintf(where, sizeof(where),
		    _("%s, observation %u (%s/%s/%s)"), head,
		    (unsigned)e->index, o->industry, o->metric, o->period);
		agent_explain(a, out, where, 0, NULL, e->code, e->message, o);
	}
	if ((part || (src != NULL && src->parts == 1)) && src != NULL)
		agent_lines_add(out,
		    _("%s: correct the lines above and send the whole file "
		      "again"),
		    name);
	else if (src != NULL)
		agent_lines_add(out,
		    _("%s: other reports of this file may have been stored; "
		      "correct the lines above and send the whole file again"),
		    name);
free_ack:
	indicator__ack__free_unpacked(ack, NULL);
free_all:
	free(lines);
	indicator__agent_message__free_unpacked(msg, NULL);
	if (src != NULL)
		indicator__store__report_source__free_unpacked(src, NULL);
}
