/*
 * The output layer shared by indicatorctl and indicator-sub: aligned text
 * tables measured in display columns (a Chinese character takes two, so
 * the registry's names line up), JSON (one escaper for every string),
 * numbers that read back exactly, and times in the configured time zone.
 *
 * Nothing here depends on the locale: widths are computed from the UTF-8
 * bytes, numbers are written with '.' as the decimal point (the tools set
 * LC_MESSAGES only, for translated headers: log/intl.h). No function
 * fails; allocation failures abort
 * (xmalloc.h).
 */
#ifndef INDICATOR_OUT_H
#define INDICATOR_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <limits.h> /* protoc-c's header needs INT_MAX */

#include "indicator.pb-c.h"

#define OUT_NUM_MAX 40 /* out_num(): "-1.2345678901234567e-308" and more */
#define OUT_TIME_MAX 32 /* out_time(): "2025-03-01T10:00:00+08:00" */

/* An aligned text table. The first nhead rows are headers, underlined. */
struct out_table {
	size_t ncols;
	size_t nrows;
	size_t cap;
	size_t nhead;
	char **cells; /* nrows * ncols, owned */
	bool *right; /* per column: right-aligned (figures); set freely */
};

/* out.c */

/*
 * The number of terminal columns s takes: 2 for East Asian Wide and
 * Fullwidth characters (CJK ideographs, kana, hangul, fullwidth forms,
 * most emoji), 0 for combining marks and zero-width characters, 1 for the
 * rest. A byte that does not start a valid UTF-8 sequence counts as one
 * column. Independent of the locale.
 */
size_t out_width(const char *s);

/* A table of ncols columns, all left-aligned until right[] is set. Never
 * NULL; the caller frees it with out_table_destroy(), which accepts NULL
 * and *t == NULL and sets *t to NULL. */
struct out_table *out_table_new(size_t ncols);
void out_table_destroy(struct out_table **t);
/* Appends a row of ncols strings (copied; NULL is an empty cell). Header
 * rows come first. Control characters in a cell (C0, DEL, C1, U+2028,
 * U+2029) and bytes that are not well-formed UTF-8 are shown as '?', so
 * that a hostile string cannot move the cursor or break the alignment. */
void out_table_add(struct out_table *t, const char *const cells[], bool header);
/* Prints one line of text (a newline added) made by fmt, cleaned as a
 * table cell is: for lines that carry strings from the store or the wire
 * outside a table. At most 4095 bytes. */
void out_line(FILE *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The rows that are not headers. */
size_t out_table_rows(const struct out_table *t);
/* Prints the table: each column as wide as its widest cell (out_width()),
 * two spaces between columns, no trailing blanks, the header rows
 * underlined with '-' over each column's width. */
void out_table_print(const struct out_table *t, FILE *f);
/* Prints the table, or the line empty when it has no rows but headers. */
void out_table_finish(const struct out_table *t, FILE *f, const char *empty);

/*
 * The shortest decimal that reads back (strtod) as exactly v: the fewest
 * significant digits that round-trip, written positionally for exponents
 * -7..20 ("5000", "0.1", "2245.36") and as "1.5e+21" outside, as
 * JavaScript prints numbers; -0 stays "-0". Empty for NaN and infinities.
 * len of OUT_NUM_MAX is always enough.
 */
void out_num(double v, char *buf, size_t len);
/* v with exactly decimals digits after the point ("%.*f"), for table
 * columns whose digits line up; "-0" becomes "0"; "?" for NaN and
 * infinities. */
void out_fixed(double v, int decimals, char *buf, size_t len);
/* v with up to four decimals, trailing zeros removed ("12.34", "10000",
 * "0.0001"): figures in tables; "?" for NaN and infinities. */
void out_value(double v, char *buf, size_t len);

/*
 * Sets the time zone of out_time() and out_localtime() (an IANA name such
 * as "Asia/Shanghai", normally [daemon] timezone). 0, or -1 when no such
 * zone is installed (/usr/share/zoneinfo): the zone is then UTC, as glibc
 * would silently do.
 */
int out_tz_set(const char *tz);
/* ms since the epoch as local time in that zone, broken down; false for
 * ms <= 0 (unset) or a time that cannot be represented. */
bool out_localtime(int64_t ms, struct tm *tm);
/* ms as ISO 8601 local time with its UTC offset
 * ("2025-03-01T10:00:00+08:00"); "-" for ms <= 0 (unset). */
void out_time(int64_t ms, char *buf, size_t len);

/*
 * JSON. out_json_string() writes s as a JSON string: '"' and '\\'
 * escaped, control characters (U+0000-U+001F, U+007F-U+009F) and
 * U+2028/U+2029 as escapes, every byte that is not part of well-formed UTF-8
 * (RFC 3629: no overlong forms, surrogates or code points above U+10FFFF) as
 * \ufffd; everything else as its UTF-8 bytes. The result is valid JSON
 * whatever s holds.
 *
 * Object members: out_json_key() writes the separator unless *first,
 * then the key and ':', and clears *first; the others write a whole
 * member. Following protobuf's canonical JSON mapping, 64-bit integers
 * (out_json_u64(), out_json_i64()) are strings ("18446744073709551615"),
 * because a JSON number above 2^53 loses digits in JavaScript and jq;
 * 32-bit ones are numbers. Doubles are out_num() numbers, or null when not
 * finite.
 */
void out_json_string(FILE *f, const char *s);
void out_json_number(FILE *f, double v);
void out_json_key(FILE *f, bool *first, const char *key);
void out_json_str(FILE *f, bool *first, const char *key, const char *val);
void out_json_u64(FILE *f, bool *first, const char *key, uint64_t val);
void out_json_i64(FILE *f, bool *first, const char *key, int64_t val);
void out_json_u32(FILE *f, bool *first, const char *key, uint32_t val);
/* A tally of what this one run looked at (aggregates checked, differences
 * found): a number, such counts being far below 2^53. */
void out_json_count(FILE *f, bool *first, const char *key, size_t val);
void out_json_double(FILE *f, bool *first, const char *key, double val);
void out_json_bool(FILE *f, bool *first, const char *key, bool val);
void out_json_null(FILE *f, bool *first, const char *key);

/*
 * A copy of s that XML 1.0 can carry (xlsx): every byte that is not part
 * of well-formed UTF-8, every control character but tab and line feed,
 * and U+FFFE/U+FFFF become U+FFFD. Caller frees.
 */
char *out_xml_clean(const char *s);

/*
 * One aggregate as a JSON line (docs/protocol.md's Aggregate, field for
 * field, after "source" when source is not NULL and "topic"): revision, seq and
 * updated_at_ms as strings; where no target applies (target_year 0),
 * target, target_year and progress are null, never 0.
 */
void out_json_aggregate(FILE *f, const char *source, const char *topic,
    const Indicator__Aggregate *a);

#endif
