/*
 * The registry: districts, industries, metrics and targets of the plan.
 *
 * Plain data, filled by config.c and read by the validator and the
 * aggregator. No I/O. Lookups are linear: the registry holds tens of rows.
 */
#ifndef INDICATOR_REGISTRY_H
#define INDICATOR_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "strlimits.h"

#define REG_DISTRICTS_MAX 64
#define REG_INDUSTRIES_MAX 64
#define REG_METRICS_MAX 64
#define REG_UNITS_MAX 8
#define REG_TARGETS_MAX 512
#define REG_ALIASES_MAX 512
#define REG_ALIAS_MAX 96 /* bytes: 32 Chinese characters */
#define REG_COLUMNS 7
#define REG_STATUSES 3

struct reg_district {
	char code[IND_CODE_MAX + 1];
	char name[IND_NAME_MAX + 1];
};

struct reg_industry {
	char code[IND_CODE_MAX + 1];
	char name[IND_NAME_MAX + 1];
};

enum metric_kind {
	METRIC_FLOW, /* per period, summed over districts */
	METRIC_STOCK, /* count at period end */
};

struct reg_unit {
	char code[IND_UNIT_MAX + 1];
	double factor; /* value in this unit * factor = canonical value */
};

struct reg_metric {
	char code[IND_CODE_MAX + 1];
	char name[IND_NAME_MAX + 1];
	enum metric_kind kind;
	char unit[IND_UNIT_MAX + 1]; /* canonical unit */
	struct reg_unit accept[REG_UNITS_MAX];
	size_t naccept;
	double max; /* plausible maximum, canonical unit, one district */
	bool integer; /* counts: fractional values are refused */
};

/* A target: metric for an industry (or "*") in a scope ("city" or a
 * district code) by a year. */
struct reg_target {
	char metric[IND_CODE_MAX + 1];
	char industry[IND_CODE_MAX + 1];
	char scope[IND_SCOPE_MAX + 1];
	int year;
	double value;
};

/* What an alias is another name for. */
enum reg_kind {
	REG_INDUSTRY,
	REG_METRIC,
	REG_UNIT,
	REG_COLUMN, /* a column of the agent's CSV files (registry_columns) */
	REG_STATUS, /* an observation status (registry_statuses) */
};

/*
 * Another name for a code, as the district clerks write it: 前沿新材料 for
 * the industry materials, 万元 for the unit CNY_10K, 行业 for the column
 * industry. Configuration ([industry CODE] aliases, [columns], ...), so
 * that the names follow the plan's yearly revisions, not the code.
 */
struct reg_alias {
	enum reg_kind kind;
	char code[IND_CODE_MAX + 1];
	char name[REG_ALIAS_MAX + 1];
};

struct registry {
	int first_year;
	struct reg_district districts[REG_DISTRICTS_MAX];
	size_t ndistricts;
	struct reg_industry industries[REG_INDUSTRIES_MAX];
	size_t nindustries;
	struct reg_metric metrics[REG_METRICS_MAX];
	size_t nmetrics;
	struct reg_target targets[REG_TARGETS_MAX];
	size_t ntargets;
	struct reg_alias aliases[REG_ALIASES_MAX];
	size_t naliases;
};

/* The columns of the agent's CSV files, in the order of enum csv_col
 * (csv.h), and the statuses, in the order of the wire's ObsStatus from 1. */
extern const char *const registry_columns[REG_COLUMNS];
extern const char *const registry_statuses[REG_STATUSES];

/* registry.c */

/* Lookups by code; each returns a pointer into reg, or NULL if the code is
 * not registered. */
const struct reg_district *registry_district(
    const struct registry *reg, const char *code);
const struct reg_industry *registry_industry(
    const struct registry *reg, const char *code);
const struct reg_metric *registry_metric(
    const struct registry *reg, const char *code);

/* The factor converting unit to the metric's canonical unit, or NULL when the
 * metric does not accept that unit. */
const struct reg_unit *registry_metric_unit(
    const struct reg_metric *m, const char *unit);

/* value, in unit u, converted to the metric's canonical unit. Exact for
 * factors that are integers or inverses of integers. */
double registry_unit_convert(const struct reg_unit *u, double value);

/*
 * The code that the len bytes at text name as a kind: a code of that kind
 * as written, the same code in another case (ASCII letters), or one of its
 * aliases (ASCII letters in any case). The caller trims text. NULL when
 * text names nothing; else a string inside reg or a static one.
 */
const char *registry_resolve(const struct registry *reg, enum reg_kind kind,
    const char *text, size_t len);

/* The first alias of (kind, code), or NULL when it has none. */
const char *registry_alias(
    const struct registry *reg, enum reg_kind kind, const char *code);

/*
 * The codes of a kind for a message, each followed by its first alias in
 * parentheses: "materials (前沿新材料), photonics (光子芯片与光器件)". For
 * REG_UNIT, the units metric m accepts (every unit when m is NULL). Written
 * into buf (len bytes), cut with "..." when it does not fit. Returns buf.
 */
const char *registry_list(const struct registry *reg, enum reg_kind kind,
    const struct reg_metric *m, char *buf, size_t len);

/*
 * Replaces the aliases of (kind, code) with the names in list, separated
 * by ',' or '，' (a full-width comma), each trimmed of spaces; an empty
 * list removes them. NULL, or why (the name at fault) written to err.
 */
const char *registry_set_aliases(struct registry *reg, enum reg_kind kind,
    const char *code, const char *list, char *err, size_t errlen);

/*
 * The nearest target at or after year for (metric, industry, scope), or NULL
 * when none is configured.
 */
const struct reg_target *registry_target(const struct registry *reg,
    const char *metric, const char *industry, const char *scope, int year);

/*
 * Checks that the registry is complete and consistent: at least one
 * district, industry and metric, no duplicate codes, every metric's canonical
 * unit among its accepted units with factor 1, every target naming a known
 * metric, industry (or "*") and scope; every alias of an industry or a
 * metric naming a known code, and no alias of a kind naming two codes, or
 * another code of that kind. Returns NULL, or a
 * reason written to err.
 */
const char *registry_check(
    const struct registry *reg, char *err, size_t errlen);

#endif
