/*
 * Logging: one escaped line per event on stderr, with sd-daemon(3)
 * priority prefixes when stderr is the journal (log.h).
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "utf8.h"

/* The escaped message; a line holds at most twice that (JSON doubles each
 * backslash) and its head. */
#define LOG_ESCAPED_MAX 4096
#define LOG_HEAD_MAX 256
/* A module name: the message's first word before ": ". */
#define LOG_MODULE_MAX 32

/* Set by log_init(), before any thread starts. */
static const char *log_ident = "";
static enum log_style log_style = LOG_STYLE_TOOL;
static bool log_on_journal;
/* Changed on reload while the metrics thread may log. */
static atomic_int log_level = CONFIG_LOG_INFO;
static atomic_int log_format = CONFIG_LOG_PLAIN;

/* Priority and word of each enum config_log, then fatal's. */
static const struct {
	int prio;
	const char *word;
} log_levels[] = {
	[CONFIG_LOG_ERROR] = { 3, "error" },
	[CONFIG_LOG_WARNING] = { 4, "warning" },
	[CONFIG_LOG_INFO] = { 6, "info" },
	[CONFIG_LOG_DEBUG] = { 7, "debug" },
};
static const int log_fatal_prio = 2;

/* Whether $JOURNAL_STREAM ("DEVICE:INODE", decimal) names stderr. */
static bool
log_stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat sb;
	char *end;

	if (env == NULL || *env < '0' || *env > '9')
		return false;
	errno = 0;
	dev = strtoull(env, &end, 10);
	if (errno != 0 || *end != ':' || end[1] < '0' || end[1] > '9')
		return false;
	ino = strtoull(end + 1, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	if (fstat(STDERR_FILENO, &sb) == -1)
		return false;
	return (unsigned long long)sb.st_dev == dev &&
	       (unsigned long long)sb.st_ino == ino;
}

void
log_init(const char *ident, enum log_style style)
{
	int saved = errno;

	log_ident = ident != NULL ? ident : "";
	log_style = style;
	log_on_journal = log_stderr_is_journal();
	errno = saved;
}

void
log_set_level(enum config_log level)
{
	atomic_store(&log_level, (int)level);
}

void
log_set_format(enum config_log_format format)
{
	atomic_store(&log_format, (int)format);
}

bool
log_enabled(enum config_log level)
{
	return (int)level <= atomic_load(&log_level);
}

bool
log_journal(void)
{
	return log_on_journal;
}

/* The length of the UTF-8 sequence that lead starts, or 0 for a byte that
 * cannot start one. */
static size_t
utf8_seq_len(unsigned char lead)
{
	if (lead < 0x80)
		return 1;
	if (lead >= 0xc2 && lead <= 0xdf)
		return 2;
	if (lead >= 0xe0 && lead <= 0xef)
		return 3;
	if (lead >= 0xf0 && lead <= 0xf4)
		return 4;
	return 0;
}

/* Whether the well-formed sequence of n bytes at p must be escaped. */
static bool
seq_unprintable(const unsigned char *p, size_t n)
{
	if (n == 1) /* the backslash too: it starts our escapes */
		return p[0] < 0x20 || p[0] == 0x7f || p[0] == '\\';
	if (n == 2) /* C1: U+0080..U+009F */
		return p[0] == 0xc2 && p[1] < 0xa0;
	/* U+2028 LINE SEPARATOR, U+2029 PARAGRAPH SEPARATOR */
	return n == 3 && p[0] == 0xe2 && p[1] == 0x80 &&
	       (p[2] == 0xa8 || p[2] == 0xa9);
}

size_t
log_escape(char *dst, size_t size, const char *src, size_t len, size_t *outlen)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)src;
	size_t i = 0, o = 0;

	if (size == 0) {
		if (outlen != NULL)
			*outlen = 0;
		return 0;
	}
	while (i < len) {
		size_t n = utf8_seq_len(s[i]);
		char esc = 0;

		if (n == 0 || n > len - i || !utf8_valid(src + i, n))
			n = 1; /* one bad byte: \xHH, then look again */
		else if (!seq_unprintable(s + i, n)) {
			if (o + n >= size)
				break;
			memcpy(dst + o, s + i, n);
			o += n;
			i += n;
			continue;
		}
		if (n == 1 && s[i] == '\\')
			esc = '\\';
		else if (n == 1 && s[i] == '\n')
			esc = 'n';
		else if (n == 1 && s[i] == '\r')
			esc = 'r';
		else if (n == 1 && s[i] == '\t')
			esc = 't';
		if (esc != 0) {
			if (o + 2 >= size)
				break;
			dst[o++] = '\\';
			dst[o++] = esc;
			i++;
			continue;
		}
		if (o + 4 * n >= size)
			break;
		for (size_t k = 0; k < n; k++, i++) {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[s[i] >> 4];
			dst[o++] = hex[s[i] & 0xf];
		}
	}
	dst[o] = '\0';
	if (outlen != NULL)
		*outlen = o;
	return i;
}

/* Local time, ISO 8601 with milliseconds and the offset:
 * 2025-09-30T14:05:01.123+08:00. */
static void
log_time(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;
	char zone[8];
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (localtime_r(&ts.tv_sec, &tm) == NULL ||
	    (n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm)) == 0 ||
	    strftime(zone, sizeof(zone), "%z", &tm) != 5) {
		snprintf(buf, size, "%lld", (long long)ts.tv_sec);
		return;
	}
	snprintf(buf + n, size - n, ".%03ld%.3s:%.2s", ts.tv_nsec / 1000000,
	    zone, zone + 3);
}

/* The message's module (its first word, when followed by ": ") and where
 * the rest starts; the program's name and the whole message otherwise. */
static const char *
log_module(const char *msg, char *module, size_t size)
{
	size_t n = strspn(msg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
			       "VWXYZ0123456789_.-");

	if (n > 0 && n < size && n <= LOG_MODULE_MAX && msg[n] == ':' &&
	    msg[n + 1] == ' ') {
		memcpy(module, msg, n);
		module[n] = '\0';
		return msg + n + 2;
	}
	snprintf(module, size, "%s", log_ident);
	return msg;
}

/* Appends s as the inside of a JSON string: s holds no control character
 * and is well-formed UTF-8 (log_escape()'s output), so only the quote and
 * the backslash need escaping. */
static size_t
json_append(char *out, size_t o, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			out[o++] = '\\';
		out[o++] = *s;
	}
	return o;
}

static void
log_write_all(const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(STDERR_FILENO, buf, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* nowhere to say so */
		buf += n;
		len -= (size_t)n;
	}
}

static void log_emit(int prio, const char *word, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void
log_emit(int prio, const char *word, const char *fmt, va_list ap)
{
	char msg[LOG_MESSAGE_MAX + 4], esc[LOG_ESCAPED_MAX];
	char line[LOG_HEAD_MAX + 2 * LOG_ESCAPED_MAX + 8];
	char when[48], module[LOG_MODULE_MAX + 1];
	const char *rest;
	size_t mlen, elen, o = 0;
	int n;

	n = vsnprintf(msg, LOG_MESSAGE_MAX, fmt, ap);
	if (n < 0)
		n = snprintf(msg, LOG_MESSAGE_MAX, "(unformattable: %s)", fmt);
	mlen = strlen(msg);
	if ((size_t)n >= LOG_MESSAGE_MAX) {
		memcpy(msg + mlen, "...", 4);
		mlen += 3;
	}
	if (log_escape(esc, sizeof(esc) - 3, msg, mlen, &elen) < mlen)
		memcpy(esc + elen, "...", 4);

	if (log_on_journal)
		o += (size_t)snprintf(line, LOG_HEAD_MAX, "<%d>", prio);
	if (atomic_load(&log_format) == CONFIG_LOG_JSON) {
		log_time(when, sizeof(when));
		rest = log_module(esc, module, sizeof(module));
		o += (size_t)snprintf(line + o, LOG_HEAD_MAX,
		    "{\"time\":\"%s\",\"level\":\"%s\",\"module\":\"", when,
		    word);
		o = json_append(line, o, module);
		memcpy(line + o, "\",\"message\":\"", 13);
		o += 13;
		o = json_append(line, o, rest);
		line[o++] = '"';
		line[o++] = '}';
	} else {
		if (log_style == LOG_STYLE_SERVICE && !log_on_journal) {
			log_time(when, sizeof(when));
			o += (size_t)snprintf(
			    line + o, LOG_HEAD_MAX, "%s %s ", when, word);
		}
		elen = strlen(esc);
		memcpy(line + o, esc, elen);
		o += elen;
	}
	line[o++] = '\n';
	log_write_all(line, o);
}

void
log_vlog(enum config_log level, const char *fmt, va_list ap)
{
	int saved = errno;

	if (log_enabled(level) &&
	    (size_t)level < sizeof(log_levels) / sizeof(log_levels[0]))
		log_emit(
		    log_levels[level].prio, log_levels[level].word, fmt, ap);
	errno = saved;
}

void
log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(CONFIG_LOG_ERROR, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(CONFIG_LOG_WARNING, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(CONFIG_LOG_INFO, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(CONFIG_LOG_DEBUG, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(log_fatal_prio, "fatal", fmt, ap);
	va_end(ap);
	exit(1);
}

static int64_t
log_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
log_limit_pass(struct log_limit *l, unsigned burst, unsigned long *suppressed)
{
	int64_t now = log_now_ms();

	if (now - l->window_ms >= 1000) {
		l->window_ms = now;
		l->in_window = 0;
	}
	if (l->in_window >= burst) {
		l->suppressed++;
		return false;
	}
	l->in_window++;
	*suppressed = l->suppressed;
	l->suppressed = 0;
	return true;
}
