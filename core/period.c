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
