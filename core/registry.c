#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "aggregate.h"
#include "registry.h"
#include "xmalloc.h"

/* The derived metric: industries whose city output_value reaches 1000. */
#define DERIVED_CLUSTERS "clusters_100bn"

const char *const registry_columns[REG_COLUMNS] = { "industry", "metric",
	"period", "value", "unit", "status", "note" };
const char *const registry_statuses[REG_STATUSES] = { "provisional", "final",
	"revised" };

static const char *const kind_names[] = {
	[REG_INDUSTRY] = "industry",
	[REG_METRIC] = "metric",
	[REG_UNIT] = "unit",
	[REG_COLUMN] = "column",
	[REG_STATUS] = "status",
};

/* ASCII letters in any case; every other byte as itself, whatever the
 * locale. */
static bool
same_ascii_case(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

		if (x >= 'A' && x <= 'Z')
			x += 'a' - 'A';
		if (y >= 'A' && y <= 'Z')
			y += 'a' - 'A';
		if (x != y)
			return false;
	}
	return true;
}

/* The i-th code of a kind, NULL past the last. Units are those of every
 * metric's accept list, each once, in the order first met. */
static const char *
kind_code(const struct registry *reg, enum reg_kind kind, size_t i)
{
	switch (kind) {
	case REG_INDUSTRY:
		return i < reg->nindustries ? reg->industries[i].code : NULL;
	case REG_METRIC:
		return i < reg->nmetrics ? reg->metrics[i].code : NULL;
	case REG_COLUMN:
		return i < REG_COLUMNS ? registry_columns[i] : NULL;
	case REG_STATUS:
		return i < REG_STATUSES ? registry_statuses[i] : NULL;
	case REG_UNIT:
		break;
	}
	for (size_t m = 0; m < reg->nmetrics; m++)
		for (size_t u = 0; u < reg->metrics[m].naccept; u++) {
			const char *code = reg->metrics[m].accept[u].code;
			bool seen = false;

			for (size_t p = 0; p <= m && !seen; p++)
				for (size_t q = 0;
				     q < reg->metrics[p].naccept &&
				     (p < m || q < u);
				     q++)
					if (strcmp(
						reg->metrics[p].accept[q].code,
						code) == 0) {
						seen = true;
						break;
					}
			if (seen)
				continue;
			if (i-- == 0)
				return code;
		}
	return NULL;
}

const char *
registry_resolve(const struct registry *reg, enum reg_kind kind,
    const char *text, size_t len)
{
	const char *code;

	for (size_t i = 0; (code = kind_code(reg, kind, i)) != NULL; i++)
		if (strlen(code) == len && memcmp(code, text, len) == 0)
			return code;
	for (size_t i = 0; (code = kind_code(reg, kind, i)) != NULL; i++)
		if (same_ascii_case(code, strlen(code), text, len))
			return code;
	for (size_t i = 0; i < reg->naliases; i++) {
		const struct reg_alias *a = &reg->aliases[i];

		if (a->kind == kind &&
		    same_ascii_case(a->name, strlen(a->name), text, len))
			return a->code;
	}
	return NULL;
}

const char *
registry_alias(const struct registry *reg, enum reg_kind kind, const char *code)
{
	for (size_t i = 0; i < reg->naliases; i++)
		if (reg->aliases[i].kind == kind &&
		    strcmp(reg->aliases[i].code, code) == 0)
			return reg->aliases[i].name;
	return NULL;
}

/* Appends s to buf (of len bytes, holding *o); false when it did not fit
 * (then buf ends in "..."). */
static bool
list_add(char *buf, size_t len, size_t *o, const char *s)
{
	size_t n = strlen(s);

	if (*o + n + 4 > len) {
		if (*o + 4 <= len) {
			memcpy(buf + *o, "...", 4);
			*o += 3;
		}
		return false;
	}
	memcpy(buf + *o, s, n + 1);
	*o += n;
	return true;
}

static bool
metric_takes(const struct reg_metric *m, const char *unit)
{
	return m == NULL || registry_metric_unit(m, unit) != NULL;
}

const char *
registry_list(const struct registry *reg, enum reg_kind kind,
    const struct reg_metric *m, char *buf, size_t len)
{
	const char *code, *alias;
	size_t o = 0, n = 0;
	char item[IND_CODE_MAX + REG_ALIAS_MAX + 8];

	if (len == 0)
		return buf;
	buf[0] = '\0';
	for (size_t i = 0; (code = kind_code(reg, kind, i)) != NULL; i++) {
		if (kind == REG_UNIT && !metric_takes(m, code))
			continue;
		alias = registry_alias(reg, kind, code);
		if (alias != NULL)
			snprintf(item, sizeof(item), "%s%s (%s)",
			    n > 0 ? ", " : "", code, alias);
		else
			snprintf(item, sizeof(item), "%s%s", n > 0 ? ", " : "",
			    code);
		n++;
		if (!list_add(buf, len, &o, item))
			break;
	}
	return buf;
}

/* The next name of an alias list: up to ',' or '，', trimmed of spaces. */
static const char *
alias_next(const char *s, const char **name, size_t *len)
{
	const char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	for (e = s; *e != '\0' && *e != ',' && strncmp(e, "，", 3) != 0; e++)
		;
	*name = s;
	*len = (size_t)(e - s);
	while (*len > 0 && (s[*len - 1] == ' ' || s[*len - 1] == '\t'))
		(*len)--;
	if (*e == ',')
		return e + 1;
	if (*e != '\0')
		return e + 3;
	return NULL;
}

const char *
registry_set_aliases(struct registry *reg, enum reg_kind kind, const char *code,
    const char *list, char *err, size_t errlen)
{
	const char *name, *next = list;
	size_t j = 0, len;

	for (size_t i = 0; i < reg->naliases; i++)
		if (reg->aliases[i].kind != kind ||
		    strcmp(reg->aliases[i].code, code) != 0)
			reg->aliases[j++] = reg->aliases[i];
	reg->naliases = j;
	while (next != NULL) {
		struct reg_alias *a;

		next = alias_next(next, &name, &len);
		if (len == 0) {
			if (next == NULL)
				break; /* "aliases =", or a last comma */
			snprintf(err, errlen, "an empty name in the list");
			return err;
		}
		if (len > REG_ALIAS_MAX) {
			snprintf(err, errlen, "'%.*s' is longer than %d bytes",
			    (int)len, name, REG_ALIAS_MAX);
			return err;
		}
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) {
				snprintf(err, errlen,
				    "a name holds a control character");
				return err;
			}
		if (reg->naliases == REG_ALIASES_MAX) {
			snprintf(err, errlen, "more than %d aliases",
			    REG_ALIASES_MAX);
			return err;
		}
		a = &reg->aliases[reg->naliases++];
		a->kind = kind;
		strlcpy_ok(a->code, code, sizeof(a->code));
		memcpy(a->name, name, len);
		a->name[len] = '\0';
	}
	return NULL;
}

/* Every alias names a code of its kind, and no name stands for two. */
static const char *
check_aliases(const struct registry *reg, char *err, size_t errlen)
{
	for (size_t i = 0; i < reg->naliases; i++) {
		const struct reg_alias *a = &reg->aliases[i];
		const char *code, *k = kind_names[a->kind];
		bool known = false;

		for (size_t c = 0; (code = kind_code(reg, a->kind, c)) != NULL;
		     c++) {
			if (strcmp(code, a->code) == 0)
				known = true;
			else if (same_ascii_case(code, strlen(code), a->name,
				     strlen(a->name))) {
				snprintf(err, errlen,
				    "%s %s: alias '%s' is the code of another "
				    "%s",
				    k, a->code, a->name, k);
				return err;
			}
		}
		/* A unit no metric accepts may keep its names: a file
		 * that uses them is refused for the unit, by its code. */
		if (!known && a->kind != REG_UNIT) {
			snprintf(err, errlen,
			    "%s %s: aliases for an unknown code", k, a->code);
			return err;
		}
		for (size_t j = 0; j < i; j++) {
			const struct reg_alias *b = &reg->aliases[j];

			if (b->kind == a->kind &&
			    same_ascii_case(a->name, strlen(a->name), b->name,
				strlen(b->name)) &&
			    strcmp(a->code, b->code) != 0) {
				snprintf(err, errlen,
				    "alias '%s' names both %s %s and %s %s",
				    a->name, k, b->code, k, a->code);
				return err;
			}
		}
	}
	return NULL;
}

const struct reg_district *
registry_district(const struct registry *reg, const char *code)
{
	for (size_t i = 0; i < reg->ndistricts; i++)
		if (strcmp(reg->districts[i].code, code) == 0)
			return &reg->districts[i];
	return NULL;
}

const struct reg_industry *
registry_industry(const struct registry *reg, const char *code)
{
	for (size_t i = 0; i < reg->nindustries; i++)
		if (strcmp(reg->industries[i].code, code) == 0)
			return &reg->industries[i];
	return NULL;
}

const struct reg_metric *
registry_metric(const struct registry *reg, const char *code)
{
	for (size_t i = 0; i < reg->nmetrics; i++)
		if (strcmp(reg->metrics[i].code, code) == 0)
			return &reg->metrics[i];
	return NULL;
}

const struct reg_unit *
registry_metric_unit(const struct reg_metric *m, const char *unit)
{
	for (size_t i = 0; i < m->naccept; i++)
		if (strcmp(m->accept[i].code, unit) == 0)
			return &m->accept[i];
	return NULL;
}

const struct reg_target *
registry_target(const struct registry *reg, const char *metric,
    const char *industry, const char *scope, int year)
{
	const struct reg_target *best = NULL;

	for (size_t i = 0; i < reg->ntargets; i++) {
		const struct reg_target *t = &reg->targets[i];

		if (t->year < year || strcmp(t->metric, metric) != 0 ||
		    strcmp(t->industry, industry) != 0 ||
		    strcmp(t->scope, scope) != 0)
			continue;
		if (best == NULL || t->year < best->year)
			best = t;
	}
	return best;
}

static const char *
check_targets(const struct registry *reg, char *err, size_t errlen)
{
	for (size_t i = 0; i < reg->ntargets; i++) {
		const struct reg_target *t = &reg->targets[i];

		if (registry_metric(reg, t->metric) == NULL &&
		    strcmp(t->metric, DERIVED_CLUSTERS) != 0) {
			snprintf(err, errlen,
			    "target %s/%s/%s/%d: unknown metric", t->metric,
			    t->industry, t->scope, t->year);
			return err;
		}
		if (strcmp(t->industry, "*") != 0 &&
		    registry_industry(reg, t->industry) == NULL) {
			snprintf(err, errlen,
			    "target %s/%s/%s/%d: unknown industry", t->metric,
			    t->industry, t->scope, t->year);
			return err;
		}
		if (strcmp(t->scope, "city") != 0 &&
		    registry_district(reg, t->scope) == NULL) {
			snprintf(err, errlen,
			    "target %s/%s/%s/%d: scope is neither \"city\" nor "
			    "a district code",
			    t->metric, t->industry, t->scope, t->year);
			return err;
		}
		for (size_t j = 0; j < i; j++) {
			const struct reg_target *u = &reg->targets[j];

			if (strcmp(t->metric, u->metric) == 0 &&
			    strcmp(t->industry, u->industry) == 0 &&
			    strcmp(t->scope, u->scope) == 0 &&
			    t->year == u->year) {
				snprintf(err, errlen,
				    "target %s/%s/%s/%d: given twice",
				    t->metric, t->industry, t->scope, t->year);
				return err;
			}
		}
	}
	return NULL;
}

/* The first code listed twice among n rows of stride bytes, or NULL. The
 * code is the first member of each row. */
static const char *
duplicate_code(const void *rows, size_t n, size_t stride)
{
	const char *base = rows;

	for (size_t i = 1; i < n; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(base + i * stride, base + j * stride) == 0)
				return base + i * stride;
	return NULL;
}

const char *
registry_check(const struct registry *reg, char *err, size_t errlen)
{
	const char *dup;

	if (reg->ndistricts == 0) {
		snprintf(err, errlen, "registry: no [district CODE] section");
		return err;
	}
	if (reg->nindustries == 0) {
		snprintf(err, errlen, "registry: no [industry CODE] section");
		return err;
	}
	if (reg->nmetrics == 0) {
		snprintf(err, errlen, "registry: no [metric CODE] section");
		return err;
	}
	if ((dup = duplicate_code(reg->districts, reg->ndistricts,
		 sizeof(reg->districts[0]))) != NULL ||
	    (dup = duplicate_code(reg->industries, reg->nindustries,
		 sizeof(reg->industries[0]))) != NULL ||
	    (dup = duplicate_code(reg->metrics, reg->nmetrics,
		 sizeof(reg->metrics[0]))) != NULL) {
		snprintf(err, errlen, "registry: code %s is listed twice", dup);
		return err;
	}
	for (size_t i = 0; i < reg->nmetrics; i++) {
		const struct reg_metric *m = &reg->metrics[i];
		const struct reg_unit *u;

		if (m->unit[0] == '\0') {
			snprintf(err, errlen, "metric %s: no unit", m->code);
			return err;
		}
		u = registry_metric_unit(m, m->unit);
		if (u == NULL || u->factor != 1.0) {
			snprintf(err, errlen,
			    "metric %s: accept must list the unit %s with "
			    "factor 1",
			    m->code, m->unit);
			return err;
		}
		if (!(m->max > 0)) {
			snprintf(err, errlen, "metric %s: max must be above 0",
			    m->code);
			return err;
		}
		/* Aggregates sum whole units (aggregate.h): the largest city
		 * total must stay far inside a double's exact integers. */
		if (m->max * (double)reg->ndistricts *
			(double)reg->nindustries * AGG_UNITS_PER >=
		    0x1p51) {
			snprintf(err, errlen,
			    "metric %s: max %g is too large for exact sums "
			    "over "
			    "%zu districts and %zu industries",
			    m->code, m->max, reg->ndistricts, reg->nindustries);
			return err;
		}
	}
	if (check_targets(reg, err, errlen) != NULL)
		return err;
	return check_aliases(reg, err, errlen);
}

double
registry_unit_convert(const struct reg_unit *u, double value)
{
	double inv, r;

	if (u->factor >= 1.0)
		return value * u->factor;
	/* 0.0001 has no exact binary form, 10000 has: divide when the factor
	 * is the inverse of an integer, so 120000 CNY_10K is exactly 12. */
	inv = 1.0 / u->factor;
	r = nearbyint(inv);
	if (r >= 1.0 && fabs(inv - r) <= 1e-9 * r)
		return value / r;
	return value * u->factor;
}
