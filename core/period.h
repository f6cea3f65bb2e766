/*
 * Reporting periods: "2025" (year), "2025-Q3" (quarter), "2025-09" (month).
 */
#ifndef INDICATOR_PERIOD_H
#define INDICATOR_PERIOD_H

#include <stdbool.h>

enum period_kind {
	PERIOD_YEAR,
	PERIOD_QUARTER,
	PERIOD_MONTH,
};

struct period {
	int year;
	enum period_kind kind;
	int n; /* quarter 1-4, month 1-12, 0 for a year */
};

/* period.c */

/* Parses s strictly (no spaces, no other forms). Returns false when s is not
 * a period; out is then unspecified. */
bool period_parse(const char *s, struct period *out);

/* The first month (1-12) of the period. */
int period_first_month(const struct period *p);

/* True when the period has started on or before (year, month): a period that
 * has started may be reported. */
bool period_started(const struct period *p, int year, int month);

#endif
