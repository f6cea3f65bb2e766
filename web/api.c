/*
 * The JSON the pages read, and each table as CSV. Figures come from the
 * state (the daemon's aggregates, as the feed left them) or, for what the
 * aggregates do not carry, from a question to the daemon (ask.c).
 *
 * jansson builds each document as a tree, which the CSV of its table is
 * then read from; the output layer of indicatorctl and indicator-sub
 * (tools/out.c) writes it, so that the dashboard's JSON follows the
 * project's one convention: the same string escaper, doubles as the
 * shortest decimal that reads back, 64-bit integers (seq, revision,
 * epoch, counters, times in ms) as strings, and null, never 0, for the
 * target, target year and progress of a figure no target applies to.
 * Every string is a JSON string, so whatever a district wrote in a note
 * reaches the page as text to show, never as markup; the page puts it in
 * the document with textContent only.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregate.h"
#include "out.h"
#include "period.h"
#include "utf8.h"
#include "web.h"
#include "xmalloc.h"

#define ASK_TIMEOUT_MS 3000
#define YEARS_MAX 256 /* years on the path page */
#define NUM_MAX 64

#define CITY "city"
#define ALL "*"

json_t *
api_string(const char *s)
{
	size_t len = strlen(s), n = 0;
	char *clean;
	json_t *j;

	if (utf8_valid(s, len))
		return json_stringn(s, len);
	/* Byte by byte: a valid sequence is kept, anything else is one
	 * U+FFFD (3 bytes) per byte. */
	clean = xmalloc(len * 3 + 1);
	for (size_t i = 0; i < len;) {
		size_t k;

		for (k = 4; k > 0; k--)
			if (i + k <= len && utf8_valid(s + i, k))
				break;
		if (k == 0) {
			memcpy(clean + n, "\xef\xbf\xbd", 3);
			n += 3;
			i++;
		} else {
			memcpy(clean + n, s + i, k);
			n += k;
			i += k;
		}
	}
	j = json_stringn(clean, n);
	free(clean);
	return j;
}

/* Writes j as JSON through the output layer (tools/out.c), members in
 * the order they were set. */
static void
dump(FILE *f, json_t *j)
{
	const char *key;
	json_t *v;
	size_t i;
	bool first = true;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
		fputc('{', f);
		json_object_foreach(j, key, v)
		{
			out_json_key(f, &first, key);
			dump(f, v);
		}
		fputc('}', f);
		break;
	case JSON_ARRAY:
		fputc('[', f);
		json_array_foreach(j, i, v)
		{
			if (i > 0)
				fputc(',', f);
			dump(f, v);
		}
		fputc(']', f);
		break;
	case JSON_STRING:
		out_json_string(f, json_string_value(j));
		break;
	case JSON_INTEGER:
		fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		break;
	case JSON_REAL:
		out_json_number(f, json_real_value(j));
		break;
	case JSON_TRUE:
		fputs("true", f);
		break;
	case JSON_FALSE:
		fputs("false", f);
		break;
	case JSON_NULL:
		fputs("null", f);
		break;
	}
}

char *
api_markup_safe(char *text)
{
	size_t n = 0, extra = 0;
	char *out;

	for (const char *p = text; *p != '\0'; p++)
		extra += (*p == '<' || *p == '>' || *p == '&') ? 5 : 0;
	if (extra == 0)
		return text;
	/* Outside strings JSON has none of these, so each is inside a
	 * string, where \u003c means the same. */
	out = xmalloc(strlen(text) + extra + 1);
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '<' || *p == '>' || *p == '&') {
			snprintf(out + n, 7, "\\u%04x", (unsigned)*p);
			n += 6;
		} else {
			out[n++] = *p;
		}
	}
	out[n] = '\0';
	free(text);
	return out;
}

/* A memory stream for the output layer to write into. It fails only for
 * want of memory: then abort, as xmalloc() does. */
static FILE *
mem_open(char **text, size_t *len)
{
	FILE *f = open_memstream(text, len);

	if (f == NULL) {
		fprintf(stderr, "fatal: out of memory (open_memstream)\n");
		abort();
	}
	return f;
}

static char *
mem_close(FILE *f, char **text)
{
	if (fclose(f) != 0) {
		fprintf(stderr, "fatal: out of memory (memory stream)\n");
		abort();
	}
	return *text;
}

char *
api_dump(const json_t *j)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = mem_open(&text, &len);

	dump(f, (json_t *)j);
	return api_markup_safe(mem_close(f, &text));
}

char *
api_aggregate_json(const char *topic, const Indicator__Aggregate *a)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = mem_open(&text, &len);

	out_json_aggregate(f, NULL, topic, a);
	mem_close(f, &text);
	/* One line: no newline at the end. */
	if (len > 0 && text[len - 1] == '\n')
		text[len - 1] = '\0';
	return api_markup_safe(text);
}

json_t *
api_u64(uint64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRIu64, v);
	return json_string(s);
}

json_t *
api_i64(int64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRId64, v);
	return json_string(s);
}

/* A double as JSON: null for what JSON cannot hold. */
static json_t *
real(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static bool
annual(const char *period, int *year)
{
	struct period p;

	if (!period_parse(period, &p) || p.kind != PERIOD_YEAR)
		return false;
	*year = p.year;
	return true;
}

/* A registry name "中文 (English)" split in two; a name without an
 * English part in parentheses is all Chinese. */
static void
name_split(json_t *o, const char *name)
{
	const char *open = strrchr(name, '(');
	size_t len = strlen(name);
	bool ascii = open != NULL && len > 0 && name[len - 1] == ')';
	char zh[IND_NAME_MAX + 1], en[IND_NAME_MAX + 1];

	for (const char *p = open; ascii && p < name + len; p++)
		if ((unsigned char)*p >= 0x80)
			ascii = false;
	if (!ascii) {
		json_object_set_new(o, "name_zh", api_string(name));
		json_object_set_new(o, "name_en", json_string(""));
		return;
	}
	snprintf(zh, sizeof(zh), "%.*s", (int)(open - name), name);
	for (size_t i = strlen(zh); i > 0 && zh[i - 1] == ' '; i--)
		zh[i - 1] = '\0';
	snprintf(
	    en, sizeof(en), "%.*s", (int)(name + len - 1 - open - 1), open + 1);
	json_object_set_new(o, "name_zh", api_string(zh));
	json_object_set_new(o, "name_en", api_string(en));
}

static json_t *
code_name(const char *code, const char *name)
{
	json_t *o = json_object();

	json_object_set_new(o, "code", api_string(code));
	json_object_set_new(o, "name", api_string(name));
	name_split(o, name);
	return o;
}

/* The metrics the plan names: those with a city-wide target for all
 * industries, in the configuration's order, and clusters_100bn. */
static size_t
plan_metrics(const struct registry *reg, const char **out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < reg->ntargets; i++) {
		const struct reg_target *t = &reg->targets[i];
		bool seen = false;

		if (strcmp(t->industry, ALL) != 0 ||
		    strcmp(t->scope, CITY) != 0)
			continue;
		for (size_t k = 0; k < n; k++)
			seen = seen || strcmp(out[k], t->metric) == 0;
		if (!seen && n < max)
			out[n++] = t->metric;
	}
	for (size_t k = 0; k < n; k++)
		if (strcmp(out[k], AGG_CLUSTERS_METRIC) == 0)
			return n;
	if (n < max)
		out[n++] = AGG_CLUSTERS_METRIC;
	return n;
}

/* The city-wide targets of metric, by year. */
static json_t *
city_targets(const struct registry *reg, const char *metric)
{
	json_t *a = json_array();
	int last = 0;

	/* Ascending years, whatever the configuration's order. */
	for (;;) {
		const struct reg_target *next = NULL;

		for (size_t i = 0; i < reg->ntargets; i++) {
			const struct reg_target *t = &reg->targets[i];

			if (strcmp(t->metric, metric) == 0 &&
			    strcmp(t->industry, ALL) == 0 &&
			    strcmp(t->scope, CITY) == 0 && t->year > last &&
			    (next == NULL || t->year < next->year))
				next = t;
		}
		if (next == NULL)
			return a;
		json_array_append_new(
		    a, json_pack("{s:i, s:o}", "year", next->year, "value",
			   real(next->value)));
		last = next->year;
	}
}

json_t *
api_registry(struct web *w)
{
	const struct registry *reg = &w->cfg.reg;
	json_t *j = json_object(), *a;
	const char *plan[REG_METRICS_MAX + 1];
	size_t np = plan_metrics(reg, plan, REG_METRICS_MAX + 1);

	json_object_set_new(j, "first_year", json_integer(reg->first_year));
	json_object_set_new(j, "stale_after_s", json_integer(w->stale_after_s));
	/* The operator's line for every page (--banner), a string like any
	 * other: escaped here, put in the page as text. */
	json_object_set_new(
	    j, "banner", w->banner ? api_string(w->banner) : json_null());
	a = json_array();
	for (size_t i = 0; i < reg->ndistricts; i++)
		json_array_append_new(a,
		    code_name(reg->districts[i].code, reg->districts[i].name));
	json_object_set_new(j, "districts", a);
	a = json_array();
	for (size_t i = 0; i < reg->nindustries; i++)
		json_array_append_new(a, code_name(reg->industries[i].code,
					     reg->industries[i].name));
	json_object_set_new(j, "industries", a);
	a = json_array();
	for (size_t i = 0; i < reg->nmetrics; i++) {
		const struct reg_metric *m = &reg->metrics[i];
		json_t *o = code_name(m->code, m->name);

		json_object_set_new(o, "unit", api_string(m->unit));
		json_object_set_new(o, "kind",
		    json_string(m->kind == METRIC_FLOW ? "flow" : "stock"));
		json_object_set_new(o, "integer", json_boolean(m->integer));
		json_array_append_new(a, o);
	}
	json_object_set_new(j, "metrics", a);
	a = json_array();
	for (size_t i = 0; i < reg->ntargets; i++) {
		const struct reg_target *t = &reg->targets[i];

		json_array_append_new(a,
		    json_pack("{s:o, s:o, s:o, s:i, s:o}", "metric",
			api_string(t->metric), "industry",
			api_string(t->industry), "scope", api_string(t->scope),
			"year", t->year, "value", real(t->value)));
	}
	json_object_set_new(j, "targets", a);
	a = json_array();
	for (size_t i = 0; i < np; i++)
		json_array_append_new(a, api_string(plan[i]));
	json_object_set_new(j, "plan_metrics", a);
	return j;
}

json_t *
api_status(struct web *w)
{
	struct state *s = w->state;
	json_t *j;

	state_lock(s);
	j = json_pack("{s:b, s:b, s:o, s:I, s:o, s:o, s:o, s:o, s:o}", "live",
	    s->live, "connected", s->connected, "seq", api_u64(s->seq),
	    "aggregates", (json_int_t)s->n, "snapshots", api_u64(s->snapshots),
	    "updates", api_u64(s->updates), "snapshot_at_ms",
	    api_i64(s->snapshot_ms), "updated_at_ms", api_i64(s->update_ms),
	    "now_ms", api_i64(web_now_ms()));
	state_unlock(s);
	return j;
}

/* Under lock: the latest annual city aggregate of (metric, industry). */
static const Indicator__Aggregate *
latest_annual(const struct state *s, const char *metric, const char *industry,
    const char **topic)
{
	char prefix[IND_TOPIC_MAX + 1];
	const Indicator__Aggregate *best = NULL;
	size_t i, end;
	int year, best_year = 0;

	snprintf(
	    prefix, sizeof(prefix), "agg/%s/%s/" CITY "/", metric, industry);
	for (i = state_prefix(s, prefix, &end); i < end; i++)
		if (annual(s->v[i].agg->period, &year) && year > best_year) {
			best = s->v[i].agg;
			best_year = year;
			*topic = s->v[i].topic;
		}
	return best;
}

json_t *
api_plan(struct web *w)
{
	const struct registry *reg = &w->cfg.reg;
	const char *plan[REG_METRICS_MAX + 1];
	size_t np = plan_metrics(reg, plan, REG_METRICS_MAX + 1);
	json_t *j = json_object(), *rows = json_array();
	int latest = 0, year;

	state_lock(w->state);
	for (size_t i = 0; i < np; i++) {
		const char *topic = NULL;
		const Indicator__Aggregate *a =
		    latest_annual(w->state, plan[i], ALL, &topic);
		const struct reg_metric *m = registry_metric(reg, plan[i]);
		json_t *r = json_object();

		json_object_set_new(r, "metric", api_string(plan[i]));
		json_object_set_new(r, "targets", city_targets(reg, plan[i]));
		if (a == NULL) {
			json_object_set_new(r, "unit",
			    api_string(m != NULL ? m->unit : "count"));
			json_object_set_new(r, "period", json_null());
			json_object_set_new(r, "value", json_null());
			json_object_set_new(r, "target", json_null());
			json_object_set_new(r, "target_year", json_null());
			json_object_set_new(r, "progress", json_null());
			json_object_set_new(r, "complete", json_false());
			json_array_append_new(rows, r);
			continue;
		}
		if (annual(a->period, &year) && year > latest)
			latest = year;
		json_object_set_new(r, "topic", api_string(topic));
		json_object_set_new(r, "period", api_string(a->period));
		json_object_set_new(r, "value", real(a->value));
		json_object_set_new(r, "unit", api_string(a->unit));
		/* No target: null, never 0 (as indicatorctl and
		 * indicator-sub write it). */
		json_object_set_new(r, "target",
		    a->target_year ? real(a->target) : json_null());
		json_object_set_new(r, "target_year",
		    a->target_year ? json_integer(a->target_year)
				   : json_null());
		json_object_set_new(r, "progress",
		    a->target_year ? real(a->progress) : json_null());
		json_object_set_new(r, "districts_reporting",
		    json_integer(a->districts_reporting));
		json_object_set_new(r, "districts_expected",
		    json_integer(a->districts_expected));
		json_object_set_new(r, "complete",
		    json_boolean(
			a->districts_reporting >= a->districts_expected));
		json_object_set_new(r, "revision", api_u64(a->revision));
		json_object_set_new(
		    r, "updated_at_ms", api_i64(a->updated_at_ms));
		json_array_append_new(rows, r);
	}
	state_unlock(w->state);
	json_object_set_new(
	    j, "year", latest ? json_integer(latest) : json_null());
	json_object_set_new(j, "rows", rows);
	return j;
}

/* Under lock: the annual city aggregates of (metric, industry) by year,
 * into by[year - y0] for years y0 .. y0 + YEARS_MAX - 1. */
static void
annual_series(const struct state *s, const char *metric, const char *industry,
    int y0, const Indicator__Aggregate **by)
{
	char prefix[IND_TOPIC_MAX + 1];
	size_t i, end;
	int year;

	snprintf(
	    prefix, sizeof(prefix), "agg/%s/%s/" CITY "/", metric, industry);
	for (i = state_prefix(s, prefix, &end); i < end; i++)
		if (annual(s->v[i].agg->period, &year) && year >= y0 &&
		    year < y0 + YEARS_MAX)
			by[year - y0] = s->v[i].agg;
}

/* The value at year on the path through the points (years ascending):
 * straight lines, or constant growth, between each two. */
static double
path_at(const int *py, const double *pv, size_t n, int year, bool growth)
{
	for (size_t k = 0; k + 1 < n; k++) {
		double f;

		if (year < py[k] || year > py[k + 1])
			continue;
		f = (double)(year - py[k]) / (py[k + 1] - py[k]);
		if (growth && pv[k] > 0)
			return pv[k] * pow(pv[k + 1] / pv[k], f);
		return pv[k] + (pv[k + 1] - pv[k]) * f;
	}
	return NAN;
}

static json_t *
rate_rows(const int *py, const double *pv, size_t n, int from, double v)
{
	json_t *a = json_array();

	for (size_t k = 0; k < n; k++) {
		if (py[k] <= from)
			continue;
		json_array_append_new(a,
		    json_pack("{s:i, s:o, s:o}", "year", py[k], "target",
			real(pv[k]), "rate",
			v > 0 ? real(pow(pv[k] / v, 1.0 / (py[k] - from)) - 1)
			      : json_null()));
	}
	return a;
}

json_t *
api_path(struct web *w, api_param_fn param, void *arg, unsigned *status,
    const char **why)
{
	const struct registry *reg = &w->cfg.reg;
	const char *metric = AGG_CLUSTERS_SOURCE, *bp = param(arg, "baseline");
	const Indicator__Aggregate **total, **ind;
	const struct reg_metric *m = registry_metric(reg, metric);
	int y0 = reg->first_year, first = 0, last = 0, base = 0, end;
	int py[REG_TARGETS_MAX + 1];
	double pv[REG_TARGETS_MAX + 1];
	size_t np = 0, ni = reg->nindustries;
	json_t *j, *a, *targets;

	if (m == NULL) {
		*status = 404;
		*why = "no_output_value";
		return NULL;
	}
	total = xcalloc(YEARS_MAX, sizeof(*total));
	ind = xcalloc(YEARS_MAX * (ni ? ni : 1), sizeof(*ind));
	state_lock(w->state);
	annual_series(w->state, metric, ALL, y0, total);
	for (size_t i = 0; i < ni; i++)
		annual_series(w->state, metric, reg->industries[i].code, y0,
		    ind + i * YEARS_MAX);
	for (int y = 0; y < YEARS_MAX; y++)
		if (total[y] != NULL) {
			first = first ? first : y0 + y;
			last = y0 + y;
		}
	/* The baseline: the year asked for if it has a figure, else the
	 * first year with one above zero. */
	if (bp != NULL) {
		base = atoi(bp);
		if (base < y0 || base >= y0 + YEARS_MAX ||
		    total[base - y0] == NULL)
			base = 0;
	}
	for (int y = first; base == 0 && first && y <= last; y++)
		if (total[y - y0] != NULL && total[y - y0]->value > 0)
			base = y;
	j = json_object();
	json_object_set_new(j, "metric", api_string(metric));
	json_object_set_new(j, "unit", api_string(m->unit));
	targets = city_targets(reg, metric);
	json_object_set_new(j, "targets", json_incref(targets));
	a = json_array();
	for (int y = first; first && y <= last; y++) {
		const Indicator__Aggregate *t = total[y - y0];
		json_t *row = json_pack("{s:i}", "year", y), *vals;

		json_object_set_new(
		    row, "value", t ? real(t->value) : json_null());
		json_object_set_new(row, "districts_reporting",
		    json_integer(t ? t->districts_reporting : 0));
		json_object_set_new(row, "districts_expected",
		    json_integer(t ? t->districts_expected
				   : (json_int_t)reg->ndistricts));
		vals = json_object();
		for (size_t i = 0; i < ni; i++) {
			const Indicator__Aggregate *v =
			    ind[i * YEARS_MAX + (y - y0)];

			json_object_set_new(vals, reg->industries[i].code,
			    v ? real(v->value) : json_null());
		}
		json_object_set_new(row, "industries", vals);
		json_array_append_new(a, row);
	}
	json_object_set_new(j, "years", a);
	if (base != 0) {
		double v0 = total[base - y0]->value,
		       vl = total[last - y0]->value;
		size_t n;

		json_object_set_new(j, "baseline",
		    json_pack("{s:i, s:o}", "year", base, "value", real(v0)));
		json_object_set_new(j, "latest",
		    json_pack("{s:i, s:o}", "year", last, "value", real(vl)));
		py[np] = base;
		pv[np++] = v0;
		json_array_foreach(targets, n, a)
		{
			int ty =
			    (int)json_integer_value(json_object_get(a, "year"));

			if (ty > base && np < REG_TARGETS_MAX + 1) {
				py[np] = ty;
				pv[np++] = json_real_value(
				    json_object_get(a, "value"));
			}
		}
		end = py[np - 1] > last ? py[np - 1] : last;
		a = json_array();
		for (int y = base; np > 1 && y <= end; y++)
			json_array_append_new(a,
			    json_pack("{s:i, s:o, s:o}", "year", y, "straight",
				real(path_at(py, pv, np, y, false)), "growth",
				real(path_at(py, pv, np, y, true))));
		json_object_set_new(j, "path", a);
		json_object_set_new(
		    j, "planned", rate_rows(py + 1, pv + 1, np - 1, base, v0));
		json_object_set_new(
		    j, "required", rate_rows(py + 1, pv + 1, np - 1, last, vl));
	}
	state_unlock(w->state);
	json_decref(targets);
	free(total);
	free(ind);
	return j;
}

/* Under lock: the periods of metric's city totals, latest first. */
static json_t *
periods_of(const struct state *s, const char *metric)
{
	char prefix[IND_TOPIC_MAX + 1];
	json_t *a = json_array();
	size_t i, end, first;

	snprintf(prefix, sizeof(prefix), "agg/%s/" ALL "/" CITY "/", metric);
	first = state_prefix(s, prefix, &end);
	for (i = end; i > first; i--)
		json_array_append_new(a, api_string(s->v[i - 1].agg->period));
	return a;
}

/* Under lock: the value of one aggregate, or null. */
static json_t *
value_of(const struct state *s, const char *metric, const char *industry,
    const char *scope, const char *period)
{
	char topic[IND_TOPIC_MAX + 1];
	const Indicator__Aggregate *a;

	snprintf(topic, sizeof(topic), "agg/%s/%s/%s/%s", metric, industry,
	    scope, period);
	a = state_find(s, topic);
	return a != NULL ? real(a->value) : json_null();
}

json_t *
api_matrix(struct web *w, api_param_fn param, void *arg, unsigned *status,
    const char **why)
{
	const struct registry *reg = &w->cfg.reg;
	const char *metric = param(arg, "metric"),
		   *period = param(arg, "period");
	const struct reg_metric *m;
	const char *topic = NULL;
	const Indicator__Aggregate *a, *t;
	char latest[IND_PERIOD_MAX + 1] = "";
	struct period p;
	json_t *j, *rows, *vals, *row;

	if (metric == NULL || metric[0] == '\0')
		metric = AGG_CLUSTERS_SOURCE;
	if ((m = registry_metric(reg, metric)) == NULL) {
		*status = 400;
		*why = "unknown_metric";
		return NULL;
	}
	if (period != NULL && period[0] != '\0' && !period_parse(period, &p)) {
		*status = 400;
		*why = "bad_period";
		return NULL;
	}
	state_lock(w->state);
	if (period == NULL || period[0] == '\0') {
		a = latest_annual(w->state, metric, ALL, &topic);
		if (a != NULL)
			strlcpy_ok(latest, a->period, sizeof(latest));
		period = latest;
	}
	j = json_object();
	json_object_set_new(j, "metric", api_string(metric));
	json_object_set_new(j, "unit", api_string(m->unit));
	json_object_set_new(
	    j, "period", period[0] ? api_string(period) : json_null());
	json_object_set_new(j, "periods", periods_of(w->state, metric));
	rows = json_array();
	for (size_t i = 0; period[0] && i < reg->nindustries; i++) {
		const char *ic = reg->industries[i].code;

		row = json_pack("{s:o}", "industry", api_string(ic));
		vals = json_array();
		for (size_t d = 0; d < reg->ndistricts; d++)
			json_array_append_new(
			    vals, value_of(w->state, metric, ic,
				      reg->districts[d].code, period));
		json_object_set_new(row, "values", vals);
		json_object_set_new(
		    row, "total", value_of(w->state, metric, ic, CITY, period));
		json_array_append_new(rows, row);
	}
	json_object_set_new(j, "rows", rows);
	vals = json_array();
	for (size_t d = 0; period[0] && d < reg->ndistricts; d++)
		json_array_append_new(
		    vals, value_of(w->state, metric, ALL,
			      reg->districts[d].code, period));
	row = json_pack("{s:o}", "values", vals);
	json_object_set_new(row, "total",
	    period[0] ? value_of(w->state, metric, ALL, CITY, period)
		      : json_null());
	if (period[0]) {
		char tp[IND_TOPIC_MAX + 1];

		snprintf(tp, sizeof(tp), "agg/%s/" ALL "/" CITY "/%s", metric,
		    period);
		t = state_find(w->state, tp);
		json_object_set_new(row, "districts_reporting",
		    json_integer(t ? t->districts_reporting : 0));
		json_object_set_new(row, "districts_expected",
		    json_integer(t ? t->districts_expected
				   : (json_int_t)reg->ndistricts));
	}
	json_object_set_new(j, "totals", row);
	state_unlock(w->state);
	return j;
}

/* A question's failure as an HTTP status: the daemon away is 504. */
static json_t *
ask_failed(const char *reason, unsigned *status, const char **why)
{
	*status = strcmp(reason, "daemon_unreachable") == 0 ? 504
		  : strcmp(reason, "busy") == 0		    ? 503
							    : 502;
	*why = reason;
	return NULL;
}

static const char *
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
		return "";
	}
}

json_t *
api_history(struct web *w, api_param_fn param, void *arg, unsigned *status,
    const char **why)
{
	Indicator__SnapshotRequest req = INDICATOR__SNAPSHOT_REQUEST__INIT;
	Indicator__HistoryQuery q = INDICATOR__HISTORY_QUERY__INIT;
	const char *names[] = { "district", "industry", "metric", "period" };
	const char *vals[4], *reason;
	char topic[IND_TOPIC_MAX + 1];
	const Indicator__Aggregate *a;
	Indicator__Snapshot *snap;
	json_t *j, *revs;

	for (size_t i = 0; i < 4; i++) {
		vals[i] = param(arg, names[i]);
		if (vals[i] == NULL || vals[i][0] == '\0' ||
		    strlen(vals[i]) > IND_CODE_MAX) {
			*status = 400;
			*why = "bad_query";
			return NULL;
		}
	}
	q.district = (char *)vals[0];
	q.industry = (char *)vals[1];
	q.metric = (char *)vals[2];
	q.period = (char *)vals[3];
	req.history = &q;
	if ((snap = ask_daemon(w, &req, ASK_TIMEOUT_MS, &reason)) == NULL)
		return ask_failed(reason, status, why);
	if (snap->error != NULL && snap->error[0] != '\0') {
		*status = 400;
		*why = strcmp(snap->error, "bad_period") == 0 ? "bad_period"
							      : "bad_query";
		indicator__snapshot__free_unpacked(snap, NULL);
		return NULL;
	}
	j = json_object();
	for (size_t i = 0; i < 4; i++)
		json_object_set_new(j, names[i], api_string(vals[i]));
	revs = json_array();
	for (size_t i = 0; i < snap->n_history; i++) {
		const Indicator__Revision *r = snap->history[i];
		json_t *o = json_object();

		json_object_set_new(o, "revision", json_integer(r->revision));
		json_object_set_new(o, "value", real(r->value));
		json_object_set_new(o, "unit", api_string(r->unit));
		json_object_set_new(o, "sent_value", real(r->sent_value));
		json_object_set_new(o, "sent_unit", api_string(r->sent_unit));
		json_object_set_new(
		    o, "status", json_string(status_name(r->status)));
		json_object_set_new(o, "note", api_string(r->note));
		json_object_set_new(o, "agent_id", api_string(r->agent_id));
		json_object_set_new(o, "epoch", api_u64(r->epoch));
		json_object_set_new(o, "seq", api_u64(r->seq));
		json_object_set_new(o, "sent_at_ms", api_i64(r->sent_at_ms));
		json_object_set_new(
		    o, "stored_at_ms", api_i64(r->stored_at_ms));
		json_array_append_new(revs, o);
	}
	json_object_set_new(j, "revisions", revs);
	json_object_set_new(j, "truncated", json_boolean(snap->truncated));
	indicator__snapshot__free_unpacked(snap, NULL);
	/* The district's aggregate of the key, as the feed has it. */
	snprintf(topic, sizeof(topic), "agg/%s/%s/%s/%s", vals[2], vals[1],
	    vals[0], vals[3]);
	state_lock(w->state);
	a = state_find(w->state, topic);
	json_object_set_new(j, "value", a ? real(a->value) : json_null());
	json_object_set_new(j, "topic", api_string(topic));
	state_unlock(w->state);
	return j;
}

json_t *
api_expected(struct web *w, api_param_fn param, void *arg, unsigned *status,
    const char **why)
{
	const struct registry *reg = &w->cfg.reg;
	Indicator__SnapshotRequest req = INDICATOR__SNAPSHOT_REQUEST__INIT;
	Indicator__ExpectedQuery q = INDICATOR__EXPECTED_QUERY__INIT;
	const char *period = param(arg, "period"), *reason, *topic = NULL;
	char latest[IND_PERIOD_MAX + 1];
	const Indicator__Aggregate *a;
	Indicator__Snapshot *snap;
	struct period p;
	json_t *j, *rows, *periods;
	size_t complete = 0;
	time_t now = time(NULL);
	struct tm tm;

	state_lock(w->state);
	periods = periods_of(w->state, AGG_CLUSTERS_SOURCE);
	a = latest_annual(w->state, AGG_CLUSTERS_SOURCE, ALL, &topic);
	if (a != NULL)
		strlcpy_ok(latest, a->period, sizeof(latest));
	state_unlock(w->state);
	if (period == NULL || period[0] == '\0') {
		/* The latest year with figures, else this year. */
		if (a == NULL) {
			localtime_r(&now, &tm);
			snprintf(latest, sizeof(latest), "%04d",
			    (tm.tm_year + 1900) % 10000);
		}
		period = latest;
	}
	if (strlen(period) > IND_PERIOD_MAX || !period_parse(period, &p)) {
		json_decref(periods);
		*status = 400;
		*why = "bad_period";
		return NULL;
	}
	q.period = (char *)period;
	req.expected = &q;
	if ((snap = ask_daemon(w, &req, ASK_TIMEOUT_MS, &reason)) == NULL) {
		json_decref(periods);
		return ask_failed(reason, status, why);
	}
	j = json_object();
	json_object_set_new(j, "period", api_string(period));
	json_object_set_new(j, "periods", periods);
	rows = json_array();
	for (size_t i = 0; i < snap->n_expected; i++) {
		const Indicator__DistrictReporting *r = snap->expected[i];
		const struct reg_district *d =
		    registry_district(reg, r->district);
		json_t *o = json_object(), *rep = json_array(),
		       *mis = json_array();

		for (size_t k = 0; k < r->n_reported; k++)
			json_array_append_new(rep, api_string(r->reported[k]));
		for (size_t k = 0; k < r->n_missing; k++)
			json_array_append_new(mis, api_string(r->missing[k]));
		json_object_set_new(o, "district", api_string(r->district));
		json_object_set_new(o, "name", api_string(d ? d->name : ""));
		json_object_set_new(o, "reported", rep);
		json_object_set_new(o, "missing", mis);
		json_object_set_new(
		    o, "complete", json_boolean(r->n_missing == 0));
		complete += r->n_missing == 0;
		json_array_append_new(rows, o);
	}
	json_object_set_new(j, "districts", rows);
	json_object_set_new(j, "complete", json_integer((json_int_t)complete));
	json_object_set_new(
	    j, "total", json_integer((json_int_t)snap->n_expected));
	indicator__snapshot__free_unpacked(snap, NULL);
	return j;
}

json_t *
api_agents(struct web *w, unsigned *status, const char **why)
{
	Indicator__SnapshotRequest req = INDICATOR__SNAPSHOT_REQUEST__INIT;
	Indicator__AgentsQuery q = INDICATOR__AGENTS_QUERY__INIT;
	Indicator__Snapshot *snap;
	const char *reason;
	int64_t now = web_now_ms();
	json_t *j, *rows;

	req.agents = &q;
	if ((snap = ask_daemon(w, &req, ASK_TIMEOUT_MS, &reason)) == NULL)
		return ask_failed(reason, status, why);
	j = json_object();
	rows = json_array();
	for (size_t i = 0; i < snap->n_agents; i++) {
		const Indicator__AgentState *a = snap->agents[i];
		bool stale =
		    now - a->last_seen_ms > (int64_t)w->stale_after_s * 1000;

		json_array_append_new(rows,
		    json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b}",
			"agent_id", api_string(a->agent_id), "epoch",
			api_u64(a->epoch), "last_seq", api_u64(a->last_seq),
			"accepted", api_u64(a->accepted), "rejected",
			api_u64(a->rejected), "first_seen_ms",
			api_i64(a->first_seen_ms), "last_seen_ms",
			api_i64(a->last_seen_ms), "stale", stale));
	}
	json_object_set_new(j, "agents", rows);
	json_object_set_new(j, "truncated", json_boolean(snap->truncated));
	json_object_set_new(j, "stale_after_s", json_integer(w->stale_after_s));
	json_object_set_new(j, "now_ms", api_i64(now));
	indicator__snapshot__free_unpacked(snap, NULL);
	return j;
}

/* CSV */

struct buf {
	char *p;
	size_t n;
	size_t cap;
};

static void
buf_add(struct buf *b, const char *s, size_t len)
{
	if (b->n + len + 1 > b->cap) {
		while (b->n + len + 1 > b->cap)
			b->cap = b->cap ? b->cap * 2 : 4096;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, s, len);
	b->n += len;
	b->p[b->n] = '\0';
}

/* One text cell: quoted when it must be (RFC 4180), and one that a
 * spreadsheet would run as a formula made inert with an apostrophe. */
static void
csv_text(struct buf *b, const char *s, bool last)
{
	bool quote = strpbrk(s, ",\"\r\n") != NULL;
	bool formula = s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL;

	if (quote || formula)
		buf_add(b, "\"", 1);
	if (formula)
		buf_add(b, "'", 1);
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '"')
			buf_add(b, "\"\"", 2);
		else
			buf_add(b, p, 1);
	}
	if (quote || formula)
		buf_add(b, "\"", 1);
	buf_add(b, last ? "\r\n" : ",", last ? 2 : 1);
}

/* A JSON value as a cell: numbers that read back exactly, null empty. */
static void
csv_json(struct buf *b, const json_t *v, bool last)
{
	char num[NUM_MAX] = "";

	if (json_is_string(v)) {
		csv_text(b, json_string_value(v), last);
		return;
	}
	if (json_is_integer(v))
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
	else if (json_is_real(v))
		out_num(json_real_value(v), num, sizeof(num));
	else if (json_is_true(v))
		snprintf(num, sizeof(num), "yes");
	else if (json_is_false(v))
		snprintf(num, sizeof(num), "no");
	buf_add(b, num, strlen(num));
	buf_add(b, last ? "\r\n" : ",", last ? 2 : 1);
}

/* A header row from a list of names. */
static void
csv_head(struct buf *b, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		csv_text(b, names[i], i + 1 == n);
}

/* Rows of objects: the named members of each. */
static void
csv_objects(
    struct buf *b, const json_t *rows, const char *const *names, size_t n)
{
	size_t i;
	json_t *row;

	csv_head(b, names, n);
	json_array_foreach(rows, i, row)
	{
		for (size_t k = 0; k < n; k++)
			csv_json(b, json_object_get(row, names[k]), k + 1 == n);
	}
}

/* A time in ms (a JSON string of digits, as api_i64() writes it) as UTC
 * ISO 8601, for a spreadsheet. */
static json_t *
iso_time(const json_t *v)
{
	const char *digits = json_string_value(v);
	long long ms = digits != NULL ? strtoll(digits, NULL, 10) : 0;
	char s[32];
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || gmtime_r(&t, &tm) == NULL)
		return json_string("");
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(s);
}

/* Joins an array of strings with spaces. */
static json_t *
joined(const json_t *a)
{
	struct buf b = { 0 };
	size_t i;
	json_t *v, *s;

	buf_add(&b, "", 0);
	json_array_foreach(a, i, v)
	{
		if (i > 0)
			buf_add(&b, " ", 1);
		buf_add(&b, json_string_value(v), strlen(json_string_value(v)));
	}
	s = json_string(b.p);
	free(b.p);
	return s;
}

static void
csv_matrix(struct web *w, struct buf *b, json_t *j)
{
	const struct registry *reg = &w->cfg.reg;
	json_t *rows = json_object_get(j, "rows"), *row, *vals;
	char head[IND_NAME_MAX + IND_CODE_MAX + 8];
	size_t i;

	csv_text(b, "industry", false);
	csv_text(b, "name", false);
	for (size_t d = 0; d < reg->ndistricts; d++) {
		snprintf(head, sizeof(head), "%s (%s)", reg->districts[d].name,
		    reg->districts[d].code);
		csv_text(b, head, false);
	}
	csv_text(b, "city", true);
	json_array_foreach(rows, i, row)
	{
		const struct reg_industry *ind = registry_industry(
		    reg, json_string_value(json_object_get(row, "industry")));

		csv_json(b, json_object_get(row, "industry"), false);
		csv_text(b, ind ? ind->name : "", false);
		vals = json_object_get(row, "values");
		for (size_t d = 0; d < json_array_size(vals); d++)
			csv_json(b, json_array_get(vals, d), false);
		csv_json(b, json_object_get(row, "total"), true);
	}
	row = json_object_get(j, "totals");
	if (json_array_size(rows) > 0) {
		csv_text(b, "*", false);
		csv_text(b, "all industries", false);
		vals = json_object_get(row, "values");
		for (size_t d = 0; d < json_array_size(vals); d++)
			csv_json(b, json_array_get(vals, d), false);
		csv_json(b, json_object_get(row, "total"), true);
	}
}

static void
csv_path(struct web *w, struct buf *b, json_t *j)
{
	const struct registry *reg = &w->cfg.reg;
	json_t *years = json_object_get(j, "years"),
	       *path = json_object_get(j, "path"), *row, *p;
	size_t i, k;
	int last = 0;

	csv_text(b, "year", false);
	csv_text(b, "total", false);
	for (size_t n = 0; n < reg->nindustries; n++)
		csv_text(b, reg->industries[n].code, false);
	csv_text(b, "straight_line_path", false);
	csv_text(b, "constant_growth_path", true);
	json_array_foreach(years, i, row)
	{
		json_int_t y = json_integer_value(json_object_get(row, "year"));
		json_t *ind = json_object_get(row, "industries");

		csv_json(b, json_object_get(row, "year"), false);
		csv_json(b, json_object_get(row, "value"), false);
		for (size_t n = 0; n < reg->nindustries; n++)
			csv_json(b,
			    json_object_get(ind, reg->industries[n].code),
			    false);
		p = NULL;
		json_array_foreach(path, k, p)
		{
			if (json_integer_value(json_object_get(p, "year")) == y)
				break;
		}
		csv_json(b,
		    k < json_array_size(path) ? json_object_get(p, "straight")
					      : NULL,
		    false);
		csv_json(b,
		    k < json_array_size(path) ? json_object_get(p, "growth")
					      : NULL,
		    true);
		last = (int)y;
	}
	/* The path on past the latest figure, to the last target. */
	json_array_foreach(path, k, p)
	{
		if (json_integer_value(json_object_get(p, "year")) <= last)
			continue;
		csv_json(b, json_object_get(p, "year"), false);
		csv_json(b, NULL, false);
		for (size_t n = 0; n < reg->nindustries; n++)
			csv_json(b, NULL, false);
		csv_json(b, json_object_get(p, "straight"), false);
		csv_json(b, json_object_get(p, "growth"), true);
	}
}

char *
api_csv(struct web *w, const char *what, json_t *j, size_t *len)
{
	static const char *const plan[] = { "metric", "period", "value", "unit",
		"target", "target_year", "progress", "districts_reporting",
		"districts_expected", "complete" };
	static const char *const history[] = { "revision", "value", "unit",
		"sent_value", "sent_unit", "status", "note", "agent_id",
		"epoch", "seq", "sent_at", "stored_at" };
	static const char *const expected[] = { "district", "name", "complete",
		"reported", "missing" };
	static const char *const agents[] = { "agent_id", "epoch", "last_seq",
		"accepted", "rejected", "first_seen", "last_seen", "stale" };
	struct buf b = { 0 };
	json_t *rows, *row;
	size_t i;

	buf_add(&b, "\xef\xbb\xbf", 3); /* BOM: Excel then reads UTF-8 */
	if (strcmp(what, "plan") == 0) {
		csv_objects(&b, json_object_get(j, "rows"), plan, 10);
	} else if (strcmp(what, "path") == 0) {
		csv_path(w, &b, j);
	} else if (strcmp(what, "matrix") == 0) {
		csv_matrix(w, &b, j);
	} else if (strcmp(what, "history") == 0) {
		rows = json_object_get(j, "revisions");
		json_array_foreach(rows, i, row)
		{
			json_object_set_new(row, "sent_at",
			    iso_time(json_object_get(row, "sent_at_ms")));
			json_object_set_new(row, "stored_at",
			    iso_time(json_object_get(row, "stored_at_ms")));
		}
		csv_objects(&b, rows, history, 12);
	} else if (strcmp(what, "expected") == 0) {
		rows = json_object_get(j, "districts");
		json_array_foreach(rows, i, row)
		{
			json_object_set_new(row, "reported",
			    joined(json_object_get(row, "reported")));
			json_object_set_new(row, "missing",
			    joined(json_object_get(row, "missing")));
		}
		csv_objects(&b, rows, expected, 5);
	} else if (strcmp(what, "agents") == 0) {
		rows = json_object_get(j, "agents");
		json_array_foreach(rows, i, row)
		{
			json_object_set_new(row, "first_seen",
			    iso_time(json_object_get(row, "first_seen_ms")));
			json_object_set_new(row, "last_seen",
			    iso_time(json_object_get(row, "last_seen_ms")));
		}
		csv_objects(&b, rows, agents, 8);
	}
	*len = b.n;
	return b.p;
}
