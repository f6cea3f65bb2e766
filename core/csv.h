/*
 * The agent's input: CSV files as district clerks export them from Excel
 * and WPS (docs/protocol.md, "Agents"; docs/domain.md, "Names clerks
 * use"). Comma separated, RFC 4180 quoting (quoted fields may hold commas,
 * doubled quotes, CR, LF), CRLF or LF line ends, an optional UTF-8 BOM,
 * and a header row naming the columns industry, metric, period, value,
 * unit and optionally status and note, in any order. The text is UTF-8:
 * files in other encodings go through encoding.h first.
 *
 * With a registry (csv_set_registry()) the parser also takes what clerks
 * write: column names and values by the registry's aliases (行业, 前沿新材料,
 * 万元...), codes in any case, surrounding spaces (full-width too), numbers
 * with thousands separators ("1,234.5"), periods in the clerks' forms
 * (period_parse_clerk()), and it skips Excel's empty rows and empty
 * columns. Each row delivered holds codes and wire forms.
 *
 * A push parser: feed it the file in chunks of any size, then finish it. It
 * does no I/O and holds one row at a time (and the keys seen, to refuse one
 * given twice), so memory stays flat whatever the file's size.
 *
 * Problems are reported as the clerk needs them: the line and the column
 * (a field's position, from 1) with "what is wrong; what to do",
 * translated (i18n.h). A bad row does not stop the parse: every problem of
 * every row is reported (up to CSV_ERRORS_MAX), and no row with a problem
 * is delivered. A file whose structure is broken (its header, an
 * unterminated quote) stops at the first problem.
 */
#ifndef INDICATOR_CSV_H
#define INDICATOR_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "registry.h"
#include "strlimits.h"

/* The most problems reported for one file; the parse stops after them. */
#define CSV_ERRORS_MAX 100
/* A problem's message, translated, in bytes. */
#define CSV_MSG_MAX 1024

/* The columns, in the order of registry_columns. */
enum csv_col {
	CSV_INDUSTRY,
	CSV_METRIC,
	CSV_PERIOD,
	CSV_VALUE,
	CSV_UNIT,
	CSV_STATUS,
	CSV_NOTE,
	CSV_NCOLS
};

struct csv_row {
	unsigned line; /* 1-based line where the row starts */
	char industry[IND_CODE_MAX + 1]; /* the code (or as written) */
	char metric[IND_CODE_MAX + 1];
	char period[IND_PERIOD_MAX + 1]; /* the wire form: 2025-09 */
	double value;
	char unit[IND_UNIT_MAX + 1];
	int status; /* Indicator__ObsStatus: 0 when the column is absent or
		       empty */
	char note[IND_NOTE_MAX + 1];
};

/* One problem. */
struct csv_problem {
	unsigned line; /* 1-based */
	unsigned column; /* 1-based field; 0 when it concerns no field */
	char message[CSV_MSG_MAX]; /* "what is wrong; what to do" */
};

/* Called for each good data row; return 0 to go on, -1 to stop the parse
 * (the parser then reports "stopped by caller"). */
typedef int (*csv_row_fn)(const struct csv_row *row, void *arg);
/* Called for each problem, in the order found. */
typedef void (*csv_problem_fn)(const struct csv_problem *e, void *arg);

struct csv_parser;

/* csv.c */

/* A new parser; caller owns it and frees it with csv_destroy(). Never NULL
 * (aborts on out of memory). arg goes to both callbacks. */
struct csv_parser *csv_new(csv_row_fn fn, void *arg);
void csv_destroy(struct csv_parser **p);

/*
 * Before the first csv_feed(): the registry whose aliases and codes name
 * columns and values (it must outlive the parser). Without one the header
 * names the columns in English, values are taken as written (trimmed), and
 * the messages list no accepted values.
 */
void csv_set_registry(struct csv_parser *p, const struct registry *reg);
/* Before the first csv_feed(): where every problem goes. */
void csv_set_problem_fn(struct csv_parser *p, csv_problem_fn fn);
/* Before the first csv_feed(): whether a key given twice is a problem
 * (true, the default). Off for a second pass over a file the first one
 * found clean, which then holds no keys. */
void csv_set_unique(struct csv_parser *p, bool unique);

/* Feed the next len bytes of UTF-8. Returns 0, or -1 once the parse has
 * stopped (a broken structure, too many problems, the caller); later calls
 * return -1. */
int csv_feed(struct csv_parser *p, const char *buf, size_t len);

/* End of input: handles a last line without a line end. Returns 0 when the
 * file had no problem, else -1. A file with a header and no data rows is
 * valid (0 rows); an empty file is an error (no header row). */
int csv_finish(struct csv_parser *p);

/*
 * Records a problem found outside the parser (the agent's decoder) at the
 * current place: the line and field being read. The parse stops.
 */
void csv_fail_here(struct csv_parser *p, const char *message);

/* The first problem's message, "" when none; valid until csv_destroy(). */
const char *csv_error(const struct csv_parser *p);
/* The first problem's line and column, 0 when none. */
unsigned csv_error_line(const struct csv_parser *p);
unsigned csv_error_column(const struct csv_parser *p);
/* Problems found so far. */
unsigned csv_errors(const struct csv_parser *p);
/* Data rows delivered so far. */
unsigned long csv_rows(const struct csv_parser *p);
/* The column's place in the header (from 1), 0 when absent or before the
 * header is read. */
unsigned csv_column(const struct csv_parser *p, enum csv_col c);

/* The column's name for a message, translated: "value" (数值). */
const char *csv_column_label(enum csv_col c);

#endif
