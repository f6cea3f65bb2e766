/*
 * Logging for the daemon, the agent, the store and the tools: one line per
 * event on stderr, each message starting with its module's name
 * ("ingest: ...", "store: ...", "agent: ...").
 *
 * How a line looks depends on where stderr goes and on the style chosen at
 * log_init():
 *
 *   on the journal      <4>ingest: message     (sd-daemon(3) priorities:
 *                                               <2> fatal, <3> error,
 *                                               <4> warning, <6> info,
 *                                               <7> debug)
 *   service, elsewhere  2025-09-30T14:05:01.123+08:00 warning ingest: message
 *   tool, elsewhere     indicatorctl: message
 *   json (any)          {"time":"...","level":"warning","module":"ingest",
 *                        "message":"..."}  (after <4> on the journal)
 *
 * stderr is the journal when $JOURNAL_STREAM (set by systemd for
 * StandardError=journal) names stderr's device and inode. Times are local
 * (TZ), ISO 8601 with milliseconds and the offset.
 *
 * Every line is one line: the formatted message is escaped (log_escape())
 * before it is written, so text from the wire (an agent id, a note) can
 * never start a line of its own or send a terminal escape. A line is
 * written with one write(2), so lines from threads and processes sharing
 * stderr do not mix.
 *
 * The level filter applies to every message of the process, the store's
 * and the outbox's included. Before log_init() the style is TOOL, the
 * level info and the format plain. errno is preserved by every function.
 */
#ifndef INDICATOR_LOG_H
#define INDICATOR_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum log_style {
	/* A long-running process (indicatord, indicator-agent): the time
	 * and level word on each line off the journal. */
	LOG_STYLE_SERVICE,
	/* An operator's command (indicatorctl): "module: message" only. */
	LOG_STYLE_TOOL,
};

/* The longest message kept, before escaping; longer ones end in "...". */
#define LOG_MESSAGE_MAX 2048

/* log.c */

/*
 * Chooses the style and looks whether stderr is the journal (read once,
 * here). ident names the program: the module of a JSON line whose message
 * has no "module: " prefix. ident must stay valid (a string literal).
 */
void log_init(const char *ident, enum log_style style);
/* Messages above level are dropped. Thread-safe. */
void log_set_level(enum config_log level);
/* Plain lines or JSON lines. Thread-safe. */
void log_set_format(enum config_log_format format);
/* Whether a message of level would be written. */
bool log_enabled(enum config_log level);
/* Whether log_init() found stderr to be the journal. */
bool log_journal(void);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_vlog(enum config_log level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Logs at priority 2 (level word "fatal") and exits 1: only where the
 * process cannot go on. */
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/*
 * Copies the len bytes at src into dst (size bytes, always NUL-terminated
 * when size > 0) so that the result is printable UTF-8 on one line:
 * backslash becomes \\, newline \n, carriage return \r, tab \t, and each
 * byte of any other C0 control, DEL, a C1 control (U+0080..U+009F), U+2028,
 * U+2029 or a byte that is not part of well-formed UTF-8 becomes \xHH
 * (lower-case hex). Stops before an escape or a character that would not
 * fit whole. Returns the number of bytes of src consumed (len when all of
 * it fit); *outlen, when not NULL, receives strlen(dst).
 */
size_t log_escape(
    char *dst, size_t size, const char *src, size_t len, size_t *outlen);

/*
 * A limiter for lines caused by outside input: log_limit_pass() is true
 * when this line may be logged (at most `burst` a second); the lines it
 * refused are counted, and their number is handed to *suppressed by the
 * next call that passes (0 when none), to be reported with it. Start from
 * a zeroed struct.
 */
struct log_limit {
	int64_t window_ms;
	unsigned in_window;
	unsigned long suppressed;
};
bool log_limit_pass(
    struct log_limit *l, unsigned burst, unsigned long *suppressed);

#endif
