#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "csv.h"
#include "utf8.h"
#include "xmalloc.h"

/* The most bytes buffered for one field: longer is an error. */
#define CSV_FIELD_MAX 4096

enum csv_col {
	COL_INDUSTRY,
	COL_METRIC,
	COL_PERIOD,
	COL_VALUE,
	COL_UNIT,
	COL_STATUS,
	COL_NOTE,
	COL_N
};

static const struct {
	const char *name;
	bool required;
	bool trim;
	size_t max; /* bytes after trimming */
} csv_cols[COL_N] = {
	[COL_INDUSTRY] = { "industry", true, true, IND_CODE_MAX },
	[COL_METRIC] = { "metric", true, true, IND_CODE_MAX },
	[COL_PERIOD] = { "period", true, true, IND_PERIOD_MAX },
	[COL_VALUE] = { "value", true, true, CSV_FIELD_MAX },
	[COL_UNIT] = { "unit", true, true, IND_UNIT_MAX },
	[COL_STATUS] = { "status", false, true, CSV_FIELD_MAX },
	/* A note is free text: its spaces are the author's. */
	[COL_NOTE] = { "note", false, false, IND_NOTE_MAX },
};

enum csv_state {
	ST_FIELD_START, /* nothing of the field read yet */
	ST_UNQUOTED,
	ST_QUOTED,
	ST_CLOSED, /* a quote inside a quoted field: closing, or doubled */
};

struct csv_field {
	char text[CSV_FIELD_MAX + 1];
	size_t len;
};

struct csv_parser {
	csv_row_fn fn;
	void *arg;

	enum csv_state state;
	unsigned line; /* current physical line */
	unsigned row_line; /* where the current row started */
	unsigned quote_line; /* where the open quote was */
	bool after_cr; /* the previous byte was a CR */
	bool nonspace; /* the row holds more than spaces */
	unsigned field; /* index of the current field in its row */
	size_t bom; /* BOM bytes matched so far */
	bool bom_done;

	bool header_done;
	unsigned ncols;
	enum csv_col col[COL_N]; /* header position -> column */
	bool seen[COL_N];
	struct csv_field hdr;
	struct csv_field fields[COL_N];

	unsigned long rows;
	bool failed;
	bool finished;
	unsigned err_line;
	char err[320];
};

static const unsigned char csv_bom[3] = { 0xef, 0xbb, 0xbf };

static int csv_fail(struct csv_parser *, unsigned, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static int
csv_fail(struct csv_parser *p, unsigned line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
	p->err_line = line;
	p->failed = true;
	return -1;
}

struct csv_parser *
csv_new(csv_row_fn fn, void *arg)
{
	struct csv_parser *p = xcalloc(1, sizeof(*p));

	p->fn = fn;
	p->arg = arg;
	p->state = ST_FIELD_START;
	p->line = 1;
	p->row_line = 1;
	return p;
}

void
csv_destroy(struct csv_parser **p)
{
	if (p == NULL || *p == NULL)
		return;
	free(*p);
	*p = NULL;
}

/* Where the bytes of the current field go; NULL: counted, not kept. */
static struct csv_field *
csv_cur(struct csv_parser *p)
{
	if (!p->header_done)
		return &p->hdr;
	if (p->field < p->ncols)
		return &p->fields[p->col[p->field]];
	return NULL;
}

static void
csv_trim(const struct csv_field *f, bool trim, const char **s, size_t *len)
{
	const char *b = f->text, *e = f->text + f->len;

	if (trim) {
		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
	}
	*s = b;
	*len = (size_t)(e - b);
}

static int
csv_append(struct csv_parser *p, unsigned char c)
{
	struct csv_field *f = csv_cur(p);

	if (c != ' ' && c != '\t')
		p->nonspace = true;
	if (f == NULL)
		return 0;
	if (f->len == CSV_FIELD_MAX) {
		if (!p->header_done)
			return csv_fail(p, p->row_line,
			    "column %u of the header is longer than %d bytes",
			    p->field + 1, CSV_FIELD_MAX);
		return csv_fail(p, p->row_line, "%s is longer than %zu bytes",
		    csv_cols[p->col[p->field]].name,
		    csv_cols[p->col[p->field]].max);
	}
	f->text[f->len++] = (char)c;
	return 0;
}

/*
 * A field's text as shown in a message: at most CSV_SHOW_MAX bytes, cut on
 * a character boundary, with control characters escaped so that the
 * message stays on one line.
 */
#define CSV_SHOW_MAX 40

static const char *
csv_show(char *dst, size_t size, const char *s, size_t len)
{
	size_t n = len, o = 0;

	if (n > CSV_SHOW_MAX) {
		n = CSV_SHOW_MAX;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	for (size_t i = 0; i < n && o + 5 < size; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\n' || c == '\r' || c == '\t') {
			dst[o++] = '\\';
			dst[o++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(dst + o, size - o, "\\x%02x", c);
		} else {
			dst[o++] = (char)c;
		}
	}
	dst[o] = '\0';
	if (n < len && o + 4 <= size)
		memcpy(dst + o, "...", 4);
	return dst;
}

static int
csv_header_field(struct csv_parser *p)
{
	const char *s;
	size_t len;
	int c;
	char show[4 * CSV_SHOW_MAX + 8];

	csv_trim(&p->hdr, true, &s, &len);
	if (!utf8_valid(s, len) || memchr(s, '\0', len) != NULL)
		return csv_fail(p, p->row_line,
		    "column %u of the header is not valid UTF-8", p->field + 1);
	for (c = 0; c < COL_N; c++)
		if (strlen(csv_cols[c].name) == len &&
		    strncasecmp(csv_cols[c].name, s, len) == 0)
			break;
	if (c == COL_N)
		return csv_fail(p, p->row_line,
		    "unknown column '%s' (expected industry, metric, "
		    "period, value, unit, status, note)",
		    csv_show(show, sizeof(show), s, len));
	if (p->seen[c])
		return csv_fail(p, p->row_line, "column '%s' appears twice",
		    csv_cols[c].name);
	p->seen[c] = true;
	p->col[p->field] = (enum csv_col)c;
	p->hdr.len = 0;
	return 0;
}

static int
csv_header_end(struct csv_parser *p)
{
	for (int c = 0; c < COL_N; c++)
		if (csv_cols[c].required && !p->seen[c])
			return csv_fail(p, p->row_line, "missing column '%s'",
			    csv_cols[c].name);
	p->ncols = p->field + 1;
	p->header_done = true;
	return 0;
}

static int
csv_parse_value(struct csv_parser *p, const char *s, size_t len, double *v)
{
	char *end;
	char show[4 * CSV_SHOW_MAX + 8];

	if (len == 0)
		return csv_fail(p, p->row_line, "value is empty, not a number");
	*v = strtod(s, &end);
	if (end != s + len || !isfinite(*v))
		return csv_fail(p, p->row_line, "value '%s' is not a number",
		    csv_show(show, sizeof(show), s, len));
	return 0;
}

static int
csv_parse_status(struct csv_parser *p, const char *s, size_t len, int *status)
{
	static const char *const names[] = { "provisional", "final",
		"revised" };
	char show[4 * CSV_SHOW_MAX + 8];

	*status = 0;
	if (len == 0)
		return 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == len &&
		    strncasecmp(names[i], s, len) == 0) {
			*status = (int)i + 1;
			return 0;
		}
	return csv_fail(p, p->row_line,
	    "status '%s' is not provisional, final or revised",
	    csv_show(show, sizeof(show), s, len));
}

static int
csv_row_end(struct csv_parser *p)
{
	struct csv_row row;

	if (p->field + 1 != p->ncols)
		return csv_fail(p, p->row_line, "expected %u fields, found %u",
		    p->ncols, p->field + 1);

	memset(&row, 0, sizeof(row));
	row.line = p->row_line;
	for (int c = 0; c < COL_N; c++) {
		const char *s;
		size_t len;
		char *dst = NULL;

		if (!p->seen[c])
			continue;
		/* strtod() needs the end marked. */
		p->fields[c].text[p->fields[c].len] = '\0';
		csv_trim(&p->fields[c], csv_cols[c].trim, &s, &len);
		if (!utf8_valid(s, len))
			return csv_fail(p, p->row_line, "%s is not valid UTF-8",
			    csv_cols[c].name);
		if (memchr(s, '\0', len) != NULL)
			return csv_fail(p, p->row_line,
			    "%s contains a NUL byte", csv_cols[c].name);
		if (len > csv_cols[c].max)
			return csv_fail(p, p->row_line,
			    "%s is longer than %zu bytes", csv_cols[c].name,
			    csv_cols[c].max);
		switch (c) {
		case COL_INDUSTRY:
			dst = row.industry;
			break;
		case COL_METRIC:
			dst = row.metric;
			break;
		case COL_PERIOD:
			dst = row.period;
			break;
		case COL_UNIT:
			dst = row.unit;
			break;
		case COL_NOTE:
			dst = row.note;
			break;
		case COL_VALUE:
			if (csv_parse_value(p, s, len, &row.value) == -1)
				return -1;
			continue;
		case COL_STATUS:
			if (csv_parse_status(p, s, len, &row.status) == -1)
				return -1;
			continue;
		}
		if (csv_cols[c].required && len == 0)
			return csv_fail(
			    p, p->row_line, "%s is empty", csv_cols[c].name);
		memcpy(dst, s, len);
		dst[len] = '\0';
	}

	p->rows++;
	if (p->fn != NULL && p->fn(&row, p->arg) != 0)
		return csv_fail(p, p->row_line, "stopped by caller");
	return 0;
}

static int
csv_field_end(struct csv_parser *p)
{
	if (!p->header_done)
		return csv_header_field(p);
	return 0;
}

/* The next row starts at the current line. */
static void
csv_row_reset(struct csv_parser *p)
{
	p->field = 0;
	p->nonspace = false;
	p->state = ST_FIELD_START;
	p->row_line = p->line;
	p->hdr.len = 0;
	for (int c = 0; c < COL_N; c++)
		p->fields[c].len = 0;
}

static int
csv_line_end(struct csv_parser *p)
{
	int rc = 0;

	/* Blank lines, spaces only included, are no rows. */
	if (p->field > 0 || p->nonspace) {
		if ((rc = csv_field_end(p)) == 0)
			rc =
			    p->header_done ? csv_row_end(p) : csv_header_end(p);
	}
	if (rc == 0) {
		p->line++;
		csv_row_reset(p);
	}
	return rc;
}

static int
csv_next_field(struct csv_parser *p)
{
	if (csv_field_end(p) == -1)
		return -1;
	p->field++;
	p->state = ST_FIELD_START;
	/* Too many header columns are caught as unknown or repeated. */
	return 0;
}

static int
csv_byte(struct csv_parser *p, unsigned char c)
{
	bool crlf = p->after_cr && c == '\n';

	p->after_cr = (c == '\r');
	switch (p->state) {
	case ST_QUOTED:
		if (c == '"') {
			p->state = ST_CLOSED;
			return 0;
		}
		if (c == '\r' || (c == '\n' && !crlf))
			p->line++;
		return csv_append(p, c);
	case ST_FIELD_START:
	case ST_UNQUOTED:
	case ST_CLOSED:
		if (crlf)
			return 0;
		if (c == '\r' || c == '\n')
			return csv_line_end(p);
		if (c == ',')
			return csv_next_field(p);
		break;
	}

	switch (p->state) {
	case ST_FIELD_START:
		if (c == '"') {
			p->state = ST_QUOTED;
			p->quote_line = p->line;
			p->nonspace = true;
			return 0;
		}
		p->state = ST_UNQUOTED;
		return csv_append(p, c);
	case ST_UNQUOTED:
		if (c == '"')
			return csv_fail(p, p->line,
			    "quote inside an unquoted field (quote the whole "
			    "field and double the quote)");
		return csv_append(p, c);
	case ST_CLOSED:
		if (c == '"') {
			p->state = ST_QUOTED;
			return csv_append(p, c);
		}
		if (c >= 0x20 && c < 0x7f)
			return csv_fail(p, p->line,
			    "unexpected '%c' after a closing quote", c);
		return csv_fail(p, p->line,
		    "unexpected byte 0x%02x after a closing quote", c);
	case ST_QUOTED:
		break;
	}
	return 0;
}

/* Bytes taken for the start of a BOM that turned out not to be one. */
static int
csv_bom_replay(struct csv_parser *p)
{
	size_t n = p->bom;

	p->bom_done = true;
	p->bom = 0;
	for (size_t i = 0; i < n; i++)
		if (csv_byte(p, csv_bom[i]) == -1)
			return -1;
	return 0;
}

int
csv_feed(struct csv_parser *p, const char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)buf;

	if (p->failed || p->finished)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!p->bom_done) {
			if (s[i] == csv_bom[p->bom]) {
				if (++p->bom == sizeof(csv_bom)) {
					p->bom_done = true;
					p->bom = 0;
				}
				continue;
			}
			if (csv_bom_replay(p) == -1)
				return -1;
		}
		if (csv_byte(p, s[i]) == -1)
			return -1;
	}
	return 0;
}

int
csv_finish(struct csv_parser *p)
{
	if (p->failed)
		return -1;
	if (p->finished)
		return 0;
	p->finished = true;
	if (!p->bom_done && csv_bom_replay(p) == -1)
		return -1;
	if (p->state == ST_QUOTED)
		return csv_fail(p, p->quote_line, "unterminated quoted field");
	if ((p->field > 0 || p->nonspace) && csv_line_end(p) == -1)
		return -1;
	if (!p->header_done)
		return csv_fail(p, 1, "no header row");
	return 0;
}

const char *
csv_error(const struct csv_parser *p)
{
	return p->failed ? p->err : "";
}

unsigned
csv_error_line(const struct csv_parser *p)
{
	return p->failed ? p->err_line : 0;
}

unsigned long
csv_rows(const struct csv_parser *p)
{
	return p->rows;
}
