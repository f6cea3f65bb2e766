#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "csv.h"
#include "i18n.h"
#include "keyset.h"
#include "period.h"
#include "utf8.h"
#include "xmalloc.h"

/* The most bytes kept of one field: longer is a problem. */
#define CSV_FIELD_MAX 4096
/* The most columns of a header, named or empty. */
#define CSV_FIELDS_MAX 256
/* A header column with no name: its fields must stay empty. */
#define CSV_IGNORED CSV_NCOLS
/* The bytes of a value shown in a message. */
#define CSV_SHOW_MAX 40
#define CSV_SHOW_SIZE (4 * CSV_SHOW_MAX + 8)
/* A list of accepted values in a message. */
#define CSV_LIST_MAX 600

static const char *const labels[CSV_NCOLS] = {
	N_("industry"),
	N_("metric"),
	N_("period"),
	N_("value"),
	N_("unit"),
	N_("status"),
	N_("note"),
};

static const bool required[CSV_NCOLS] = { true, true, true, true, true, false,
	false };

enum csv_state {
	ST_FIELD_START, /* nothing of the field read yet */
	ST_UNQUOTED,
	ST_QUOTED,
	ST_CLOSED, /* a quote inside a quoted field: closing, or doubled */
};

struct csv_field {
	char text[CSV_FIELD_MAX + 1];
	size_t len;
	bool overflow; /* bytes past CSV_FIELD_MAX were dropped */
};

struct csv_parser {
	csv_row_fn fn;
	csv_problem_fn problem_fn;
	void *arg;
	const struct registry *reg;

	enum csv_state state;
	unsigned line; /* current physical line */
	unsigned row_line; /* where the current row started */
	unsigned quote_line; /* where the open quote was */
	bool after_cr; /* the previous byte was a CR */
	bool pending; /* the current row has begun */
	bool row_data; /* a field of the current row holds more than spaces */
	unsigned field; /* index of the current field in its row */
	size_t bom; /* BOM bytes matched so far */
	bool bom_done;

	bool header_done;
	unsigned ncols; /* fields of the header */
	unsigned char colmap[CSV_FIELDS_MAX]; /* position -> column */
	unsigned pos[CSV_NCOLS]; /* column -> position from 1; 0 absent */
	struct csv_field fields[CSV_NCOLS];
	struct csv_field other; /* the header's, or an unnamed column's */
	unsigned ignored_pos; /* an unnamed column holding something */
	char ignored_show[CSV_SHOW_SIZE];
	unsigned extra_pos; /* a field past the header's, not empty */

	struct keyset *keys;
	unsigned long rows;
	unsigned nerrors;
	bool stopped;
	bool finished;
	struct csv_problem first;
};

static const unsigned char csv_bom[3] = { 0xef, 0xbb, 0xbf };

struct csv_parser *
csv_new(csv_row_fn fn, void *arg)
{
	struct csv_parser *p = xcalloc(1, sizeof(*p));

	p->fn = fn;
	p->arg = arg;
	p->state = ST_FIELD_START;
	p->line = 1;
	p->row_line = 1;
	p->keys = keyset_new();
	return p;
}

void
csv_destroy(struct csv_parser **p)
{
	if (p == NULL || *p == NULL)
		return;
	keyset_destroy(&(*p)->keys);
	free(*p);
	*p = NULL;
}

void
csv_set_registry(struct csv_parser *p, const struct registry *reg)
{
	p->reg = reg;
}

void
csv_set_problem_fn(struct csv_parser *p, csv_problem_fn fn)
{
	p->problem_fn = fn;
}

void
csv_set_unique(struct csv_parser *p, bool unique)
{
	if (!unique)
		keyset_destroy(&p->keys);
	else if (p->keys == NULL)
		p->keys = keyset_new();
}

const char *
csv_column_label(enum csv_col c)
{
	return c < CSV_NCOLS ? _(labels[c]) : "";
}

static void csv_vproblem(struct csv_parser *, bool, unsigned, unsigned,
    const char *, va_list) __attribute__((format(printf, 5, 0)));
static int csv_problem(struct csv_parser *, unsigned, unsigned, const char *,
    ...) __attribute__((format(printf, 4, 5)));
static int csv_stop(struct csv_parser *, unsigned, unsigned, const char *, ...)
    __attribute__((format(printf, 4, 5)));

static void
csv_vproblem(struct csv_parser *p, bool stop, unsigned line, unsigned col,
    const char *fmt, va_list ap)
{
	struct csv_problem e;

	if (p->stopped)
		return;
	if (p->nerrors == CSV_ERRORS_MAX) {
		e.line = line;
		e.column = 0;
		snprintf(e.message, sizeof(e.message),
		    _("more than %d problems; fix these first, then check "
		      "the file again"),
		    CSV_ERRORS_MAX);
		stop = true;
	} else {
		e.line = line;
		e.column = col;
		vsnprintf(e.message, sizeof(e.message), fmt, ap);
	}
	if (p->nerrors++ == 0)
		p->first = e;
	if (p->problem_fn != NULL)
		p->problem_fn(&e, p->arg);
	if (stop)
		p->stopped = true;
}

/* A problem of one row: the parse goes on. Returns -1 for the caller's
 * convenience. */
static int
csv_problem(
    struct csv_parser *p, unsigned line, unsigned col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	csv_vproblem(p, false, line, col, fmt, ap);
	va_end(ap);
	return -1;
}

/* A problem that stops the parse. Returns -1. */
static int
csv_stop(
    struct csv_parser *p, unsigned line, unsigned col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	csv_vproblem(p, true, line, col, fmt, ap);
	va_end(ap);
	return -1;
}

void
csv_fail_here(struct csv_parser *p, const char *message)
{
	csv_stop(p, p->line, p->field + 1, "%s", message);
}

/*
 * A field's text as shown in a message: at most CSV_SHOW_MAX bytes, cut on
 * a character boundary, with control characters escaped so that the
 * message stays on one line.
 */
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
		bool bad;
		size_t ok;

		if (c >= 0x80) {
			/* A whole character, or its bytes escaped. */
			for (ok = 1; ok <= 4 && i + ok <= n; ok++)
				if (utf8_prefix(s + i, ok, &bad) == ok)
					break;
			if (ok <= 4 && i + ok <= n && o + ok + 1 < size) {
				memcpy(dst + o, s + i, ok);
				o += ok;
				i += ok - 1;
			} else {
				o += (size_t)snprintf(
				    dst + o, size - o, "\\x%02x", c);
			}
			continue;
		}
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

/* The length of the space at s (len bytes left) that surrounds values:
 * space, tab, no-break space, ideographic space, a stray BOM; 0 if none. */
static size_t
space_len(const char *s, size_t len)
{
	static const char *const wide[] = { "\xc2\xa0", "\xe3\x80\x80",
		"\xef\xbb\xbf" };

	if (len > 0 && (*s == ' ' || *s == '\t'))
		return 1;
	for (size_t i = 0; i < sizeof(wide) / sizeof(wide[0]); i++) {
		size_t n = strlen(wide[i]);

		if (len >= n && memcmp(s, wide[i], n) == 0)
			return n;
	}
	return 0;
}

/* The same, ending at e (the bytes before it from b). */
static size_t
space_len_back(const char *b, const char *e)
{
	for (size_t n = 1; n <= 3 && n <= (size_t)(e - b); n++)
		if (space_len(e - n, n) == n)
			return n;
	return 0;
}

static void
csv_trim(const struct csv_field *f, const char **s, size_t *len)
{
	const char *b = f->text, *e = f->text + f->len;
	size_t n;

	while (b < e && (n = space_len(b, (size_t)(e - b))) > 0)
		b += n;
	while (e > b && (n = space_len_back(b, e)) > 0)
		e -= n;
	*s = b;
	*len = (size_t)(e - b);
}

/* Where the bytes of the current field go. */
static struct csv_field *
csv_cur(struct csv_parser *p)
{
	if (p->header_done && p->field < p->ncols &&
	    p->colmap[p->field] != CSV_IGNORED)
		return &p->fields[p->colmap[p->field]];
	return &p->other;
}

static void
csv_append(struct csv_parser *p, unsigned char c)
{
	struct csv_field *f = csv_cur(p);

	p->pending = true;
	if (f->len == CSV_FIELD_MAX) {
		f->overflow = true;
		return;
	}
	f->text[f->len++] = (char)c;
}

/* "value (数值)": a column's English name and its first alias. */
static const char *
csv_column_names(
    const struct csv_parser *p, enum csv_col c, char *buf, size_t len)
{
	const char *alias = p->reg != NULL ? registry_alias(p->reg, REG_COLUMN,
						 registry_columns[c])
					   : NULL;

	if (alias != NULL)
		snprintf(buf, len, "%s (%s)", registry_columns[c], alias);
	else
		snprintf(buf, len, "%s", registry_columns[c]);
	return buf;
}

static const char *
csv_list(const struct csv_parser *p, enum reg_kind kind,
    const struct reg_metric *m, char *buf, size_t len)
{
	if (p->reg != NULL)
		return registry_list(p->reg, kind, m, buf, len);
	if (kind == REG_COLUMN || kind == REG_STATUS) {
		const char *const *w =
		    kind == REG_COLUMN ? registry_columns : registry_statuses;
		size_t n = kind == REG_COLUMN ? REG_COLUMNS : REG_STATUSES;
		size_t o = 0;

		buf[0] = '\0';
		for (size_t i = 0; i < n && o < len; i++)
			o += (size_t)snprintf(
			    buf + o, len - o, "%s%s", i > 0 ? ", " : "", w[i]);
		return buf;
	}
	snprintf(buf, len, "%s", _("a code of the registry"));
	return buf;
}

/* The code text names as a kind, or NULL. */
static const char *
csv_resolve(
    const struct csv_parser *p, enum reg_kind kind, const char *s, size_t len)
{
	const char *const *w;
	size_t n;

	if (p->reg != NULL)
		return registry_resolve(p->reg, kind, s, len);
	if (kind != REG_COLUMN && kind != REG_STATUS)
		return NULL;
	w = kind == REG_COLUMN ? registry_columns : registry_statuses;
	n = kind == REG_COLUMN ? REG_COLUMNS : REG_STATUSES;
	for (size_t i = 0; i < n; i++)
		if (strlen(w[i]) == len && strncasecmp(w[i], s, len) == 0)
			return w[i];
	return NULL;
}

static int
csv_header_field(struct csv_parser *p)
{
	char show[CSV_SHOW_SIZE], list[CSV_LIST_MAX];
	unsigned col = p->field + 1;
	const char *s, *code;
	size_t len;
	int c;

	if (p->field >= CSV_FIELDS_MAX)
		return csv_stop(p, p->row_line, col,
		    _("the header has more than %d columns; delete the "
		      "empty ones at its end"),
		    CSV_FIELDS_MAX);
	csv_trim(&p->other, &s, &len);
	p->other.len = 0;
	if (len == 0) {
		p->colmap[p->field] = CSV_IGNORED;
		return 0;
	}
	p->row_data = true;
	if (p->other.overflow || !utf8_valid(s, len) ||
	    memchr(s, '\0', len) != NULL ||
	    (code = csv_resolve(p, REG_COLUMN, s, len)) == NULL)
		return csv_stop(p, p->row_line, col,
		    _("'%s' is not a column name; name the columns %s"),
		    csv_show(show, sizeof(show), s, len),
		    csv_list(p, REG_COLUMN, NULL, list, sizeof(list)));
	for (c = 0; c < CSV_NCOLS; c++)
		if (strcmp(code, registry_columns[c]) == 0)
			break;
	if (p->pos[c] != 0)
		return csv_stop(p, p->row_line, col,
		    _("'%s' is the %s column again (it is column %u too); "
		      "keep one of the two"),
		    csv_show(show, sizeof(show), s, len), csv_column_label(c),
		    p->pos[c]);
	p->pos[c] = col;
	p->colmap[p->field] = (unsigned char)c;
	return 0;
}

static int
csv_header_end(struct csv_parser *p)
{
	char names[IND_CODE_MAX + REG_ALIAS_MAX + 8];

	for (int c = 0; c < CSV_NCOLS; c++)
		if (required[c] && p->pos[c] == 0)
			return csv_stop(p, p->row_line, 0,
			    _("the header has no %s column; add one, named "
			      "%s"),
			    csv_column_label(c),
			    csv_column_names(p, c, names, sizeof(names)));
	p->ncols = p->field + 1;
	p->header_done = true;
	return 0;
}

/* A character of a number, full-width forms made ASCII: its ASCII byte and
 * the bytes it took in *n, or 0 for any other character. */
static char
num_char(const char *s, size_t len, size_t *n)
{
	static const char wide[] = "0123456789.,-+%";
	/* U+FF10..FF19, U+FF0E, U+FF0C, U+FF0D, U+FF0B, U+FF05 */
	static const unsigned char wlast[] = { 0x90, 0x91, 0x92, 0x93, 0x94,
		0x95, 0x96, 0x97, 0x98, 0x99, 0x8e, 0x8c, 0x8d, 0x8b, 0x85 };
	unsigned char c = (unsigned char)s[0];

	*n = 1;
	if (c < 0x80)
		return (char)c;
	if (len >= 3 && c == 0xef && (unsigned char)s[1] == 0xbc)
		for (size_t i = 0; i < sizeof(wlast); i++)
			if ((unsigned char)s[2] == wlast[i]) {
				*n = 3;
				return wide[i];
			}
	/* Spaces that group digits: no-break, thin, narrow no-break. */
	if (len >= 2 && c == 0xc2 && (unsigned char)s[1] == 0xa0) {
		*n = 2;
		return ' ';
	}
	if (len >= 3 && c == 0xe2 && (unsigned char)s[1] == 0x80 &&
	    ((unsigned char)s[2] == 0x89 || (unsigned char)s[2] == 0xaf)) {
		*n = 3;
		return ' ';
	}
	return 0;
}

enum num_rc {
	NUM_OK,
	NUM_BAD,
	NUM_PERCENT,
	NUM_GROUPING, /* a comma that groups no thousands */
};

/*
 * A number as Excel writes it: an optional sign, digits grouped by three
 * with commas or spaces (or not at all), a decimal point, an exponent.
 */
static enum num_rc
csv_number(const char *s, size_t len, double *v)
{
	char a[CSV_FIELD_MAX + 1], clean[CSV_FIELD_MAX + 1], *end;
	size_t na = 0, nc = 0, i = 0, n, group = 0, ngroups = 0;
	char sep = 0;
	bool bad_group = false, digits = false;

	while (i < len) {
		char c = num_char(s + i, len - i, &n);

		if (c == 0)
			return NUM_BAD;
		a[na++] = c;
		i += n;
	}
	a[na] = '\0';
	if (na > 0 && a[na - 1] == '%')
		return NUM_PERCENT;
	i = 0;
	if (i < na && (a[i] == '+' || a[i] == '-'))
		clean[nc++] = a[i++];
	for (; i < na; i++) {
		if (a[i] >= '0' && a[i] <= '9') {
			clean[nc++] = a[i];
			group++;
			digits = true;
			continue;
		}
		if (a[i] != ',' && a[i] != ' ')
			break;
		if ((sep != 0 && a[i] != sep) || group == 0)
			return a[i] == ',' ? NUM_GROUPING : NUM_BAD;
		sep = a[i];
		if ((ngroups == 0 && group > 3) || (ngroups > 0 && group != 3))
			bad_group = true;
		ngroups++;
		group = 0;
	}
	/* A letter or a sign in the middle is no number, whatever the
	 * commas before it. */
	if (i < na && a[i] != '.' && a[i] != 'e' && a[i] != 'E')
		return NUM_BAD;
	if (ngroups > 0 && (group != 3 || bad_group))
		return sep == ',' ? NUM_GROUPING : NUM_BAD;
	if (i < na && a[i] == '.') {
		clean[nc++] = a[i++];
		for (; i < na && a[i] >= '0' && a[i] <= '9'; i++) {
			clean[nc++] = a[i];
			digits = true;
		}
	}
	if (!digits)
		return NUM_BAD;
	if (i < na && (a[i] == 'e' || a[i] == 'E')) {
		clean[nc++] = a[i++];
		if (i < na && (a[i] == '+' || a[i] == '-'))
			clean[nc++] = a[i++];
		if (i == na || a[i] < '0' || a[i] > '9')
			return NUM_BAD;
		for (; i < na && a[i] >= '0' && a[i] <= '9'; i++)
			clean[nc++] = a[i];
	}
	if (i != na)
		return a[i] == ',' ? NUM_GROUPING : NUM_BAD;
	clean[nc] = '\0';
	*v = strtod(clean, &end);
	if (*end != '\0' || !isfinite(*v))
		return NUM_BAD;
	return NUM_OK;
}

/* letters, digits, '_' and '-', 1 to max bytes: what a code can be. */
static bool
code_like(const char *s, size_t len, size_t max)
{
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/*
 * industry, metric, unit: a code, a code in another case or an alias
 * becomes the code; what could be a code the registry lacks is kept as
 * written for the daemon to judge (its registry may be newer); anything
 * else is a problem listing what the registry has.
 */
static int
csv_code(struct csv_parser *p, enum csv_col c, enum reg_kind kind,
    const char *s, size_t len, char *dst, size_t size)
{
	char show[CSV_SHOW_SIZE], list[CSV_LIST_MAX];
	const char *code = csv_resolve(p, kind, s, len);

	if (code != NULL) {
		strlcpy_ok(dst, code, size);
		return 0;
	}
	if (code_like(s, len, size - 1)) {
		memcpy(dst, s, len);
		dst[len] = '\0';
		return 0;
	}
	csv_show(show, sizeof(show), s, len);
	if (p->reg == NULL)
		return csv_problem(p, p->row_line, p->pos[c],
		    _("%s '%s' is not a code of at most %zu letters, digits, "
		      "'_' or '-'; write the registry's code"),
		    csv_column_label(c), show, size - 1);
	csv_list(p, kind, NULL, list, sizeof(list));
	switch (c) {
	case CSV_INDUSTRY:
		return csv_problem(p, p->row_line, p->pos[c],
		    _("industry '%s' is not in the registry; write one of: "
		      "%s"),
		    show, list);
	case CSV_METRIC:
		return csv_problem(p, p->row_line, p->pos[c],
		    _("metric '%s' is not in the registry; write one of: %s"),
		    show, list);
	default:
		return csv_problem(p, p->row_line, p->pos[c],
		    _("unit '%s' is not in the registry; write one of: %s"),
		    show, list);
	}
}

static int
csv_value(struct csv_parser *p, const char *s, size_t len, double *v)
{
	char show[CSV_SHOW_SIZE];
	unsigned col = p->pos[CSV_VALUE];

	csv_show(show, sizeof(show), s, len);
	switch (csv_number(s, len, v)) {
	case NUM_OK:
		return 0;
	case NUM_PERCENT:
		return csv_problem(p, p->row_line, col,
		    _("value '%s' is a percentage; give the figure itself, in "
		      "the unit of its line"),
		    show);
	case NUM_GROUPING:
		return csv_problem(p, p->row_line, col,
		    _("value '%s' has a comma that does not group thousands; "
		      "write decimals with a point and thousands in groups "
		      "of three, such as 1234.5 or 1,234.5"),
		    show);
	case NUM_BAD:
		break;
	}
	return csv_problem(p, p->row_line, col,
	    _("value '%s' is not a number; write digits with a decimal "
	      "point, such as 1234.5 or 1,234.5"),
	    show);
}

static int
csv_period(
    struct csv_parser *p, const char *s, size_t len, char *dst, size_t size)
{
	char show[CSV_SHOW_SIZE], buf[64];
	struct period per;

	if (len < sizeof(buf)) {
		memcpy(buf, s, len);
		buf[len] = '\0';
		if (period_parse_clerk(buf, &per) && per.year > 0) {
			period_format(&per, dst, size);
			return 0;
		}
	}
	return csv_problem(p, p->row_line, p->pos[CSV_PERIOD],
	    _("period '%s' is not a period; write it as one of %s"),
	    csv_show(show, sizeof(show), s, len), period_clerk_forms);
}

static int
csv_status(struct csv_parser *p, const char *s, size_t len, int *status)
{
	char show[CSV_SHOW_SIZE], list[CSV_LIST_MAX];
	const char *code;

	*status = 0;
	if (len == 0)
		return 0;
	if ((code = csv_resolve(p, REG_STATUS, s, len)) != NULL) {
		for (int i = 0; i < REG_STATUSES; i++)
			if (strcmp(code, registry_statuses[i]) == 0)
				*status = i + 1;
		return 0;
	}
	return csv_problem(p, p->row_line, p->pos[CSV_STATUS],
	    _("status '%s' is not a status; write one of: %s, or leave it "
	      "empty"),
	    csv_show(show, sizeof(show), s, len),
	    csv_list(p, REG_STATUS, NULL, list, sizeof(list)));
}

/* One column of a row into row; 0, or -1 after reporting the problem. */
static int
csv_cell(struct csv_parser *p, enum csv_col c, struct csv_row *row)
{
	struct csv_field *f = &p->fields[c];
	unsigned col = p->pos[c];
	const char *s;
	size_t len;

	if (c == CSV_NOTE) {
		s = f->text;
		len = f->len;
	} else {
		csv_trim(f, &s, &len);
	}
	if (f->overflow)
		return csv_problem(p, p->row_line, col,
		    _("%s is longer than %d bytes; shorten it"),
		    csv_column_label(c), CSV_FIELD_MAX);
	if (!utf8_valid(s, len))
		return csv_problem(p, p->row_line, col,
		    _("%s is not valid UTF-8; save the file as CSV UTF-8, or "
		      "set its encoding"),
		    csv_column_label(c));
	if (memchr(s, '\0', len) != NULL)
		return csv_problem(p, p->row_line, col,
		    _("%s holds a NUL byte; delete it"), csv_column_label(c));
	/* The daemon takes no control character but a tab in a note
	 * (bad_string); other fields with one are not codes, numbers or
	 * periods, and say so below. */
	if (c == CSV_NOTE && utf8_control(s, len, true) != -1)
		return csv_problem(p, p->row_line, col,
		    _("the note holds a line break or another control "
		      "character; keep it on one line"));
	if (len == 0 && c == CSV_VALUE)
		return csv_problem(p, p->row_line, col,
		    _("the value is empty; fill in the figure (0 when there "
		      "is none), or delete the line"));
	if (len == 0 && required[c])
		return csv_problem(p, p->row_line, col,
		    _("%s is empty; fill it in"), csv_column_label(c));
	switch (c) {
	case CSV_INDUSTRY:
		return csv_code(p, c, REG_INDUSTRY, s, len, row->industry,
		    sizeof(row->industry));
	case CSV_METRIC:
		return csv_code(
		    p, c, REG_METRIC, s, len, row->metric, sizeof(row->metric));
	case CSV_UNIT:
		return csv_code(
		    p, c, REG_UNIT, s, len, row->unit, sizeof(row->unit));
	case CSV_PERIOD:
		return csv_period(p, s, len, row->period, sizeof(row->period));
	case CSV_VALUE:
		return csv_value(p, s, len, &row->value);
	case CSV_STATUS:
		return csv_status(p, s, len, &row->status);
	case CSV_NOTE:
		if (len > IND_NOTE_MAX)
			return csv_problem(p, p->row_line, col,
			    _("the note is longer than %d bytes; shorten it"),
			    IND_NOTE_MAX);
		memcpy(row->note, s, len);
		row->note[len] = '\0';
		return 0;
	case CSV_NCOLS:
		break;
	}
	return 0;
}

static int
csv_row_end(struct csv_parser *p)
{
	unsigned nfields = p->field + 1, dup, keycol;
	bool bad = false;
	struct csv_row row;

	if (p->extra_pos != 0)
		return csv_problem(p, p->row_line, p->extra_pos,
		    _("this line has %u fields but the header names %u; "
		      "check the line's commas and quotes"),
		    nfields, p->ncols);
	for (int c = 0; c < CSV_NCOLS; c++)
		if (required[c] && p->pos[c] > nfields)
			return csv_problem(p, p->row_line, nfields,
			    _("this line has %u fields but the header names "
			      "%u; check the line's commas and quotes"),
			    nfields, p->ncols);
	if (p->ignored_pos != 0)
		csv_problem(p, p->row_line, p->ignored_pos,
		    _("this column has no name in the header, yet holds '%s'; "
		      "name the column, or empty it"),
		    p->ignored_show);

	memset(&row, 0, sizeof(row));
	row.line = p->row_line;
	for (int c = 0; c < CSV_NCOLS; c++)
		if (p->pos[c] != 0 && csv_cell(p, c, &row) == -1)
			bad = true;
	if (bad || p->ignored_pos != 0)
		return 0;

	dup = p->keys == NULL ? 0
			      : keyset_add(p->keys, row.industry, row.metric,
				    row.period, row.line);
	if (dup != 0) {
		keycol = p->pos[CSV_INDUSTRY];
		if (p->pos[CSV_METRIC] < keycol)
			keycol = p->pos[CSV_METRIC];
		if (p->pos[CSV_PERIOD] < keycol)
			keycol = p->pos[CSV_PERIOD];
		return csv_problem(p, p->row_line, keycol,
		    _("%s/%s/%s is also on line %u; keep one of the two lines"),
		    row.industry, row.metric, row.period, dup);
	}
	p->rows++;
	if (p->fn != NULL && p->fn(&row, p->arg) != 0)
		return csv_stop(p, p->row_line, 0, "stopped by caller");
	return 0;
}

/* The end of a data field: what an unnamed or extra column holds. */
static void
csv_data_field_end(struct csv_parser *p)
{
	const char *s;
	size_t len;
	struct csv_field *f = csv_cur(p);

	csv_trim(f, &s, &len);
	if (len > 0)
		p->row_data = true;
	if (f != &p->other)
		return;
	if (len > 0 && p->field >= p->ncols && p->extra_pos == 0)
		p->extra_pos = p->field + 1;
	if (len > 0 && p->field < p->ncols && p->ignored_pos == 0) {
		p->ignored_pos = p->field + 1;
		csv_show(p->ignored_show, sizeof(p->ignored_show), s, len);
	}
	p->other.len = 0;
	p->other.overflow = false;
}

static int
csv_field_end(struct csv_parser *p)
{
	if (!p->header_done)
		return csv_header_field(p);
	csv_data_field_end(p);
	return 0;
}

/* The next row starts at the current line. */
static void
csv_row_reset(struct csv_parser *p)
{
	p->field = 0;
	p->pending = false;
	p->row_data = false;
	p->state = ST_FIELD_START;
	p->row_line = p->line;
	p->other.len = 0;
	p->other.overflow = false;
	p->ignored_pos = 0;
	p->extra_pos = 0;
	for (int c = 0; c < CSV_NCOLS; c++) {
		p->fields[c].len = 0;
		p->fields[c].overflow = false;
	}
}

static int
csv_line_end(struct csv_parser *p)
{
	int rc = 0;

	if (p->pending || p->field > 0) {
		if ((rc = csv_field_end(p)) == 0 && p->row_data)
			rc =
			    p->header_done ? csv_row_end(p) : csv_header_end(p);
	}
	/* A row of empty fields (Excel writes ",,,,") is no row. */
	if (!p->header_done && rc == 0 && !p->row_data)
		memset(p->pos, 0, sizeof(p->pos));
	if (p->stopped)
		return -1;
	p->line++;
	csv_row_reset(p);
	return 0;
}

static int
csv_next_field(struct csv_parser *p)
{
	p->pending = true;
	if (csv_field_end(p) == -1)
		return -1;
	p->field++;
	p->state = ST_FIELD_START;
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
		csv_append(p, c);
		return 0;
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
			p->pending = true;
			return 0;
		}
		p->state = ST_UNQUOTED;
		csv_append(p, c);
		return 0;
	case ST_UNQUOTED:
		if (c == '"')
			return csv_stop(p, p->line, p->field + 1,
			    _("a quote inside a field that does not start with "
			      "one; put the whole field in quotes and double "
			      "the quote (\"\")"));
		csv_append(p, c);
		return 0;
	case ST_CLOSED:
		if (c == '"') {
			p->state = ST_QUOTED;
			csv_append(p, c);
			return 0;
		}
		if (c >= 0x20 && c < 0x7f)
			return csv_stop(p, p->line, p->field + 1,
			    _("'%c' after a closing quote; put the whole field "
			      "in quotes, or remove the quotes"),
			    c);
		return csv_stop(p, p->line, p->field + 1,
		    _("byte 0x%02x after a closing quote; put the whole field "
		      "in quotes, or remove the quotes"),
		    c);
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

	if (p->stopped || p->finished)
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
		if (csv_byte(p, s[i]) == -1 || p->stopped)
			return -1;
	}
	return 0;
}

int
csv_finish(struct csv_parser *p)
{
	char list[CSV_LIST_MAX];

	if (p->stopped)
		return -1;
	if (p->finished)
		return p->nerrors > 0 ? -1 : 0;
	p->finished = true;
	if (!p->bom_done && csv_bom_replay(p) == -1)
		return -1;
	if (p->state == ST_QUOTED)
		return csv_stop(p, p->quote_line, p->field + 1,
		    _("a quoted field begins here and is never closed; close "
		      "the quote, or remove it"));
	if ((p->pending || p->field > 0) && csv_line_end(p) == -1)
		return -1;
	if (!p->header_done)
		return csv_stop(p, 1, 0,
		    _("no header row; the first line must name the columns "
		      "%s"),
		    csv_list(p, REG_COLUMN, NULL, list, sizeof(list)));
	return p->nerrors > 0 ? -1 : 0;
}

const char *
csv_error(const struct csv_parser *p)
{
	return p->nerrors > 0 ? p->first.message : "";
}

unsigned
csv_error_line(const struct csv_parser *p)
{
	return p->nerrors > 0 ? p->first.line : 0;
}

unsigned
csv_error_column(const struct csv_parser *p)
{
	return p->nerrors > 0 ? p->first.column : 0;
}

unsigned
csv_errors(const struct csv_parser *p)
{
	return p->nerrors;
}

unsigned long
csv_rows(const struct csv_parser *p)
{
	return p->rows;
}

unsigned
csv_column(const struct csv_parser *p, enum csv_col c)
{
	return p->header_done && c < CSV_NCOLS ? p->pos[c] : 0;
}
