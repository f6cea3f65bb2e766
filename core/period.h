/*
 * Reporting periods: "2025" (year), "2025-Q3" (quarter), "2025-09" (month).
 */
#ifndef INDICATOR_PERIOD_H
#define INDICATOR_PERIOD_H

#include <stdbool.h>
#include <stddef.h>

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

/*
 * Parses a period as clerks write it in their spreadsheets (s already
 * trimmed): a year "2025" or "2025年"; a month "2025-09", "2025-9",
 * "2025/9", "2025/09", "2025年9月" or "2025年09月"; a quarter "2025-Q3",
 * "2025Q3" (any case), "2025年第三季度", "2025年第3季度", "2025年3季度" or
 * "2025年三季度". false for anything else (out is then unspecified).
 */
bool period_parse_clerk(const char *s, struct period *out);

/* The wire form of p ("2025", "2025-Q3", "2025-09") into buf, which must
 * hold at least 8 bytes. */
void period_format(const struct period *p, char *buf, size_t len);

/* The forms period_parse_clerk() takes, for messages. */
extern const char period_clerk_forms[];

/* The first month (1-12) of the period. */
int period_first_month(const struct period *p);

/* True when the period has started on or before (year, month): a period that
 * has started may be reported. */
bool period_started(const struct period *p, int year, int month);

#endif
