/*
 * The agent's input: CSV as the contract describes it. UTF-8, comma
 * separated, RFC 4180 quoting (quoted fields may hold commas, quotes doubled,
 * CR, LF), CRLF or LF line ends, an optional UTF-8 BOM, and a header row
 * naming the columns industry,metric,period,value,unit[,status][,note] in any
 * order.
 *
 * A push parser: feed it the file in chunks of any size, then finish it. It
 * does no I/O and holds one row at a time, so memory stays flat whatever the
 * file's size. Rows reach the caller through a callback; the first bad line
 * stops the parse with its line number and a reason.
 */
#ifndef INDICATOR_CSV_H
#define INDICATOR_CSV_H

#include <stddef.h>

#include "strlimits.h"

struct csv_row {
	unsigned line; /* 1-based line where the row starts */
	char industry[IND_CODE_MAX + 1];
	char metric[IND_CODE_MAX + 1];
	char period[IND_PERIOD_MAX + 1];
	double value;
	char unit[IND_UNIT_MAX + 1];
	int status; /* Indicator__ObsStatus: 0 when the column is absent or
		       empty; "provisional", "final", "revised" in any case */
	char note[IND_NOTE_MAX + 1];
};

/* Called for each data row; return 0 to go on, -1 to stop the parse (the
 * parser then reports "stopped by caller"). */
typedef int (*csv_row_fn)(const struct csv_row *row, void *arg);

struct csv_parser;

/* csv.c */

/* A new parser; caller owns it and frees it with csv_destroy(). Never NULL
 * (aborts on out of memory). */
struct csv_parser *csv_new(csv_row_fn fn, void *arg);
void csv_destroy(struct csv_parser **p);

/* Feed the next len bytes. Returns 0, or -1 on the first bad line: then
 * csv_error() says why and csv_error_line() where; later calls return -1. */
int csv_feed(struct csv_parser *p, const char *buf, size_t len);

/* End of input: handles a last line without a line end. Returns 0, or -1 as
 * csv_feed(). A file with a header and no data rows is valid (0 rows); an
 * empty file is an error ("no header row"). */
int csv_finish(struct csv_parser *p);

/* The reason for the failure, "" when none; valid until csv_destroy(). */
const char *csv_error(const struct csv_parser *p);
/* The 1-based line of the failure, 0 when none. */
unsigned csv_error_line(const struct csv_parser *p);
/* Data rows delivered so far. */
unsigned long csv_rows(const struct csv_parser *p);

#endif
