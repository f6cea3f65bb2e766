#include <stdio.h>
#include <string.h>

#include "period.h"

static bool
digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

bool
period_parse(const char *s, struct period *out)
{
	size_t len = strlen(s);

	if (len < 4 || !digits(s, 4))
		return false;
	out->year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 +
		    (s[2] - '0') * 10 + (s[3] - '0');
	if (len == 4) {
		out->kind = PERIOD_YEAR;
		out->n = 0;
		return true;
	}
	if (len != 7 || s[4] != '-')
		return false;
	if (s[5] == 'Q') {
		if (s[6] < '1' || s[6] > '4')
			return false;
		out->kind = PERIOD_QUARTER;
		out->n = s[6] - '0';
		return true;
	}
	if (!digits(s + 5, 2))
		return false;
	out->n = (s[5] - '0') * 10 + (s[6] - '0');
	if (out->n < 1 || out->n > 12)
		return false;
	out->kind = PERIOD_MONTH;
	return true;
}

int
period_first_month(const struct period *p)
{
	switch (p->kind) {
	case PERIOD_QUARTER:
		return (p->n - 1) * 3 + 1;
	case PERIOD_MONTH:
		return p->n;
	case PERIOD_YEAR:
	default:
		return 1;
	}
}

bool
period_started(const struct period *p, int year, int month)
{
	if (p->year != year)
		return p->year < year;
	return period_first_month(p) <= month;
}

const char period_clerk_forms[] = "2025, 2025年, 2025-09, 2025/9, "
				  "2025年9月, 2025-Q3, 2025年第三季度, "
				  "2025年3季度";

/* Skips the UTF-8 literal lit at *s; true when it was there. */
static bool
skip_lit(const char **s, const char *lit)
{
	size_t n = strlen(lit);

	if (strncmp(*s, lit, n) != 0)
		return false;
	*s += n;
	return true;
}

/* One or two digits; the number in *n. */
static bool
small_number(const char **s, int *n)
{
	const char *p = *s;

	if (*p < '0' || *p > '9')
		return false;
	*n = *p++ - '0';
	if (*p >= '0' && *p <= '9')
		*n = *n * 10 + (*p++ - '0');
	*s = p;
	return true;
}

/* A quarter's number: a digit or 一 二 三 四. */
static bool
quarter_number(const char **s, int *n)
{
	static const char *const cn[] = { "一", "二", "三", "四" };

	if (**s >= '1' && **s <= '4' && ((*s)[1] < '0' || (*s)[1] > '9')) {
		*n = *(*s)++ - '0';
		return true;
	}
	for (int i = 0; i < 4; i++)
		if (skip_lit(s, cn[i])) {
			*n = i + 1;
			return true;
		}
	return false;
}

bool
period_parse_clerk(const char *s, struct period *out)
{
	const char *after;
	int n;

	if (strlen(s) < 4 || !digits(s, 4))
		return false;
	out->year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 +
		    (s[2] - '0') * 10 + (s[3] - '0');
	out->kind = PERIOD_YEAR;
	out->n = 0;
	s += 4;
	if (*s == '\0')
		return true;
	if (*s == '-' || *s == '/') {
		bool dash = *s++ == '-';

		if (dash && (*s == 'Q' || *s == 'q')) {
			s++;
			if (*s < '1' || *s > '4' || s[1] != '\0')
				return false;
			out->kind = PERIOD_QUARTER;
			out->n = *s - '0';
			return true;
		}
		if (!small_number(&s, &n) || *s != '\0' || n < 1 || n > 12)
			return false;
		out->kind = PERIOD_MONTH;
		out->n = n;
		return true;
	}
	if (*s == 'Q' || *s == 'q') {
		s++;
		if (*s < '1' || *s > '4' || s[1] != '\0')
			return false;
		out->kind = PERIOD_QUARTER;
		out->n = *s - '0';
		return true;
	}
	if (!skip_lit(&s, "年"))
		return false;
	if (*s == '\0')
		return true;
	if (skip_lit(&s, "第")) {
		if (!quarter_number(&s, &n) || !skip_lit(&s, "季度") ||
		    *s != '\0')
			return false;
		out->kind = PERIOD_QUARTER;
		out->n = n;
		return true;
	}
	after = s;
	if (quarter_number(&s, &n) && skip_lit(&s, "季度")) {
		if (*s != '\0')
			return false;
		out->kind = PERIOD_QUARTER;
		out->n = n;
		return true;
	}
	s = after;
	if (!small_number(&s, &n) || !skip_lit(&s, "月") || *s != '\0' ||
	    n < 1 || n > 12)
		return false;
	out->kind = PERIOD_MONTH;
	out->n = n;
	return true;
}

void
period_format(const struct period *p, char *buf, size_t len)
{
	switch (p->kind) {
	case PERIOD_QUARTER:
		snprintf(buf, len, "%04d-Q%d", p->year, p->n);
		break;
	case PERIOD_MONTH:
		snprintf(buf, len, "%04d-%02d", p->year, p->n);
		break;
	case PERIOD_YEAR:
	default:
		snprintf(buf, len, "%04d", p->year);
		break;
	}
}
