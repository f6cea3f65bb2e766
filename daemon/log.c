/*
 * Logging to stderr, one line per event; journald adds the time under
 * systemd, so we add none.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "indicatord.h"

static enum config_log log_level = CONFIG_LOG_INFO;

void
log_init(enum config_log level)
{
	log_level = level;
	setvbuf(stderr, NULL, _IOLBF, 0);
}

void
log_set_level(enum config_log level)
{
	log_level = level;
}

static void
vlog(enum config_log level, const char *prefix, const char *fmt, va_list ap)
{
	if (level > log_level)
		return;
	fputs(prefix, stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(CONFIG_LOG_ERROR, "error: ", fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(CONFIG_LOG_WARNING, "warning: ", fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(CONFIG_LOG_INFO, "", fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(CONFIG_LOG_DEBUG, "debug: ", fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(CONFIG_LOG_ERROR, "fatal: ", fmt, ap);
	va_end(ap);
	exit(1);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
log_limit_pass(struct log_limit *l, unsigned burst, unsigned long *suppressed)
{
	int64_t now = now_ms();

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
