/*
 * The output layer of indicatorctl and indicator-sub (out.h): tables in
 * display columns, JSON, numbers and local times.
 *
 * Tables are measured here rather than with util-linux's libsmartcols:
 * libsmartcols measures with the C library's multibyte functions, so under
 * the C locale (a systemd service, cron, ssh without LANG) it prints every
 * Chinese character as "\xe8\x99\x8e" escapes; this code reads UTF-8
 * whatever the locale (README, "Operator tools").
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "out.h"
#include "xmalloc.h"

/*
 * Decodes the UTF-8 sequence at p (NUL-terminated) into *cp. Returns its
 * length (1-4), or 0 when p does not start a well-formed sequence (RFC
 * 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
 */
static size_t
utf8_decode(const unsigned char *p, uint32_t *cp)
{
	size_t n;
	uint32_t c, min;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if ((p[0] & 0xe0) == 0xc0) {
		n = 2;
		c = p[0] & 0x1f;
		min = 0x80;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 3;
		c = p[0] & 0x0f;
		min = 0x800;
	} else if ((p[0] & 0xf8) == 0xf0) {
		n = 4;
		c = p[0] & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80) /* a NUL ends here too */
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/* Columns of one code point: East Asian Wide and Fullwidth (after Markus
 * Kuhn's wcwidth), combining and zero-width characters, the rest. */
static size_t
cp_width(uint32_t c)
{
	if ((c >= 0x0300 && c <= 0x036f) || (c >= 0x1ab0 && c <= 0x1aff) ||
	    (c >= 0x1dc0 && c <= 0x1dff) || (c >= 0x200b && c <= 0x200f) ||
	    (c >= 0x20d0 && c <= 0x20ff) || (c >= 0xfe00 && c <= 0xfe0f) ||
	    (c >= 0xfe20 && c <= 0xfe2f) || c == 0xfeff)
		return 0;
	if (c >= 0x1100 &&
	    (c <= 0x115f || c == 0x2329 || c == 0x232a ||
		(c >= 0x2e80 && c <= 0xa4cf && c != 0x303f) ||
		(c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
		(c >= 0xfe10 && c <= 0xfe19) || (c >= 0xfe30 && c <= 0xfe6f) ||
		(c >= 0xff00 && c <= 0xff60) || (c >= 0xffe0 && c <= 0xffe6) ||
		(c >= 0x1f300 && c <= 0x1f64f) ||
		(c >= 0x1f900 && c <= 0x1f9ff) ||
		(c >= 0x20000 && c <= 0x2fffd) ||
		(c >= 0x30000 && c <= 0x3fffd)))
		return 2;
	return 1;
}

size_t
out_width(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t w = 0;

	while (*p != '\0') {
		uint32_t cp;
		size_t n = utf8_decode(p, &cp);

		if (n == 0) {
			w++;
			p++;
			continue;
		}
		w += cp_width(cp);
		p += n;
	}
	return w;
}

struct out_table *
out_table_new(size_t ncols)
{
	struct out_table *t = xcalloc(1, sizeof(*t));

	t->ncols = ncols;
	t->right = xcalloc(ncols, sizeof(*t->right));
	return t;
}

void
out_table_destroy(struct out_table **tp)
{
	struct out_table *t;

	if (tp == NULL || (t = *tp) == NULL)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->right);
	free(t);
	*tp = NULL;
}

/* Whether code point cp must not reach a terminal as it is: C0 and C1
 * controls, DEL, and the line and paragraph separators. */
static bool
unprintable(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 ||
	       cp == 0x2029;
}

/* A copy of s with each unprintable character, and each byte that is not
 * part of well-formed UTF-8, replaced by '?'. */
static char *
cell_dup(const char *s)
{
	const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
	char *c = xmalloc(strlen((const char *)p) + 1), *o = c;

	while (*p != '\0') {
		uint32_t cp;
		size_t n = utf8_decode(p, &cp);

		if (n == 0 || unprintable(cp)) {
			*o++ = '?';
			p += n == 0 ? 1 : n;
			continue;
		}
		memcpy(o, p, n);
		o += n;
		p += n;
	}
	*o = '\0';
	return c;
}

void
out_line(FILE *f, const char *fmt, ...)
{
	char buf[4096], *clean;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	clean = cell_dup(buf);
	fputs(clean, f);
	fputc('\n', f);
	free(clean);
}

void
out_table_add(struct out_table *t, const char *const cells[], bool header)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 16;
		t->cells =
		    xrealloc(t->cells, t->cap * t->ncols * sizeof(*t->cells));
	}
	for (size_t c = 0; c < t->ncols; c++)
		t->cells[t->nrows * t->ncols + c] = cell_dup(cells[c]);
	t->nrows++;
	if (header)
		t->nhead = t->nrows;
}

size_t
out_table_rows(const struct out_table *t)
{
	return t->nrows - t->nhead;
}

static void
pad(FILE *f, size_t n, int ch)
{
	while (n-- > 0)
		fputc(ch, f);
}

void
out_table_print(const struct out_table *t, FILE *f)
{
	size_t *width = xcalloc(t->ncols, sizeof(*width));
	size_t *cw = xcalloc(t->ncols, sizeof(*cw));

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t w = out_width(t->cells[r * t->ncols + c]);

			if (w > width[c])
				width[c] = w;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		size_t end = t->ncols;

		for (size_t c = 0; c < t->ncols; c++)
			cw[c] = out_width(t->cells[r * t->ncols + c]);
		/* Empty trailing cells would only leave trailing blanks. */
		while (end > 1 && t->cells[r * t->ncols + end - 1][0] == '\0')
			end--;
		for (size_t c = 0; c < end; c++) {
			size_t gap = width[c] - cw[c];
			bool last = c + 1 == end;

			if (c > 0)
				fputs("  ", f);
			if (t->right[c])
				pad(f, gap, ' ');
			fputs(t->cells[r * t->ncols + c], f);
			if (!t->right[c] && !last)
				pad(f, gap, ' ');
		}
		fputc('\n', f);
		if (r + 1 == t->nhead) {
			for (size_t c = 0; c < t->ncols; c++) {
				if (c > 0)
					fputs("  ", f);
				pad(f, width[c], '-');
			}
			fputc('\n', f);
		}
	}
	free(cw);
	free(width);
}

void
out_table_finish(const struct out_table *t, FILE *f, const char *empty)
{
	if (out_table_rows(t) > 0)
		out_table_print(t, f);
	else
		fprintf(f, "%s\n", empty);
}

void
out_num(double v, char *buf, size_t len)
{
	char e[OUT_NUM_MAX], digits[20], out[OUT_NUM_MAX + 24], *p = e;
	size_t nd = 0, o = 0;
	int prec, exp;

	if (!isfinite(v)) {
		snprintf(buf, len, "%s", "");
		return;
	}
	/* The fewest significant digits that read back exactly: the value
	 * correctly rounded to p digits is the best p-digit candidate, so
	 * the first p that round-trips is the shortest. */
	for (prec = 1; prec <= 17; prec++) {
		snprintf(e, sizeof(e), "%.*e", prec - 1, v);
		if (strtod(e, NULL) == v)
			break;
	}
	if (*p == '-')
		out[o++] = *p++;
	for (; *p != 'e'; p++)
		if (*p != '.')
			digits[nd++] = *p;
	exp = (int)strtol(p + 1, NULL, 10);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	if (exp >= -7 && exp < 21) {
		if (exp < 0) {
			out[o++] = '0';
			out[o++] = '.';
			for (int i = -1; i > exp; i--)
				out[o++] = '0';
			for (size_t i = 0; i < nd; i++)
				out[o++] = digits[i];
		} else {
			for (size_t i = 0; i < nd || (int)i <= exp; i++) {
				if ((int)i == exp + 1)
					out[o++] = '.';
				out[o++] = i < nd ? digits[i] : '0';
			}
		}
		out[o] = '\0';
	} else {
		out[o++] = digits[0];
		if (nd > 1) {
			out[o++] = '.';
			for (size_t i = 1; i < nd; i++)
				out[o++] = digits[i];
		}
		snprintf(out + o, sizeof(out) - o, "e%c%d", exp < 0 ? '-' : '+',
		    abs(exp));
	}
	snprintf(buf, len, "%s", out);
}

void
out_fixed(double v, int decimals, char *buf, size_t len)
{
	if (!isfinite(v)) {
		snprintf(buf, len, "?");
		return;
	}
	snprintf(buf, len, "%.*f", decimals, v);
	/* A negative value that rounds to zero is zero. */
	if (buf[0] == '-' && strspn(buf + 1, "0.") == strlen(buf + 1))
		memmove(buf, buf + 1, strlen(buf));
}

void
out_value(double v, char *buf, size_t len)
{
	char *p;

	out_fixed(v, 4, buf, len);
	if (strchr(buf, '.') == NULL)
		return;
	p = buf + strlen(buf) - 1;
	while (*p == '0')
		*p-- = '\0';
	if (*p == '.')
		*p = '\0';
}

int
out_tz_set(const char *tz)
{
	char path[160];
	int rc = 0;

	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
	if (tz[0] == '\0' || strstr(tz, "..") != NULL ||
	    access(path, R_OK) != 0) {
		tz = "UTC";
		rc = -1;
	}
	setenv("TZ", tz, 1);
	tzset();
	return rc;
}

bool
out_localtime(int64_t ms, struct tm *tm)
{
	time_t t = (time_t)(ms / 1000);

	return ms > 0 && localtime_r(&t, tm) != NULL;
}

void
out_time(int64_t ms, char *buf, size_t len)
{
	struct tm tm;
	long off;
	size_t n;

	if (!out_localtime(ms, &tm) ||
	    (n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm)) == 0) {
		snprintf(buf, len, "-");
		return;
	}
	off = tm.tm_gmtoff / 60;
	snprintf(buf + n, len - n, "%c%02ld:%02ld", off < 0 ? '-' : '+',
	    labs(off) / 60, labs(off) % 60);
}

void
out_json_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	while (*p != '\0') {
		uint32_t cp;
		size_t n = utf8_decode(p, &cp);

		if (n == 0) {
			fputs("\\ufffd", f);
			p++;
			continue;
		}
		switch (cp) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\b':
			fputs("\\b", f);
			break;
		case '\f':
			fputs("\\f", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			/* U+2028 and U+2029 end a line in JavaScript; C1
			 * controls are valid JSON, but not for a terminal. */
			if (unprintable(cp))
				fprintf(f, "\\u%04x", (unsigned)cp);
			else
				fwrite(p, 1, n, f);
		}
		p += n;
	}
	fputc('"', f);
}

void
out_json_number(FILE *f, double v)
{
	char buf[OUT_NUM_MAX];

	if (!isfinite(v)) {
		fputs("null", f);
		return;
	}
	out_num(v, buf, sizeof(buf));
	fputs(buf, f);
}

void
out_json_key(FILE *f, bool *first, const char *key)
{
	if (!*first)
		fputc(',', f);
	*first = false;
	out_json_string(f, key);
	fputc(':', f);
}

void
out_json_str(FILE *f, bool *first, const char *key, const char *val)
{
	out_json_key(f, first, key);
	out_json_string(f, val);
}

void
out_json_u64(FILE *f, bool *first, const char *key, uint64_t val)
{
	out_json_key(f, first, key);
	fprintf(f, "\"%llu\"", (unsigned long long)val);
}

void
out_json_i64(FILE *f, bool *first, const char *key, int64_t val)
{
	out_json_key(f, first, key);
	fprintf(f, "\"%lld\"", (long long)val);
}

void
out_json_u32(FILE *f, bool *first, const char *key, uint32_t val)
{
	out_json_key(f, first, key);
	fprintf(f, "%lu", (unsigned long)val);
}

void
out_json_count(FILE *f, bool *first, const char *key, size_t val)
{
	out_json_key(f, first, key);
	fprintf(f, "%zu", val);
}

void
out_json_double(FILE *f, bool *first, const char *key, double val)
{
	out_json_key(f, first, key);
	out_json_number(f, val);
}

void
out_json_bool(FILE *f, bool *first, const char *key, bool val)
{
	out_json_key(f, first, key);
	fputs(val ? "true" : "false", f);
}

void
out_json_null(FILE *f, bool *first, const char *key)
{
	out_json_key(f, first, key);
	fputs("null", f);
}

char *
out_xml_clean(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	/* Each byte becomes at most the three of U+FFFD. */
	char *c = xmalloc(3 * strlen(s) + 1), *o = c;

	while (*p != '\0') {
		uint32_t cp;
		size_t n = utf8_decode(p, &cp);

		if (n == 0 || (cp < 0x20 && cp != '\t' && cp != '\n') ||
		    cp == 0xfffe || cp == 0xffff) {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			p += n == 0 ? 1 : n;
			continue;
		}
		memcpy(o, p, n);
		o += n;
		p += n;
	}
	*o = '\0';
	return c;
}

void
out_json_aggregate(FILE *f, const char *source, const char *topic,
    const Indicator__Aggregate *a)
{
	bool first = true;

	fputc('{', f);
	if (source != NULL)
		out_json_str(f, &first, "source", source);
	out_json_str(f, &first, "topic", topic);
	out_json_str(f, &first, "metric", a->metric);
	out_json_str(f, &first, "industry", a->industry);
	out_json_str(f, &first, "scope", a->scope);
	out_json_str(f, &first, "period", a->period);
	out_json_double(f, &first, "value", a->value);
	out_json_str(f, &first, "unit", a->unit);
	out_json_u32(f, &first, "districts_reporting", a->districts_reporting);
	out_json_u32(f, &first, "districts_expected", a->districts_expected);
	if (a->target_year != 0) {
		out_json_double(f, &first, "target", a->target);
		out_json_u32(f, &first, "target_year", a->target_year);
		out_json_double(f, &first, "progress", a->progress);
	} else {
		out_json_null(f, &first, "target");
		out_json_null(f, &first, "target_year");
		out_json_null(f, &first, "progress");
	}
	out_json_u64(f, &first, "revision", a->revision);
	out_json_u64(f, &first, "seq", a->seq);
	out_json_i64(f, &first, "updated_at_ms", a->updated_at_ms);
	fputs("}\n", f);
}
