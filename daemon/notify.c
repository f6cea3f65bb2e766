/*
 * systemd's notification protocol, through libsystemd's sd_notify(): READY,
 * RELOADING, STOPPING, a one-line STATUS and the watchdog's pings. Outside
 * systemd ($NOTIFY_SOCKET unset) every function does nothing, so the daemon
 * runs the same by hand, in tests and under other supervisors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "indicatord.h"

/* How often STATUS= is refreshed from the loop. */
#define NOTIFY_STATUS_MS 5000

struct notify {
	bool on; /* $NOTIFY_SOCKET is set */
	uint64_t watchdog_us; /* WatchdogSec= in microseconds, 0: off */
	uint64_t last_ping_us;
	uint64_t last_status_us;
	bool status_due; /* send STATUS= on the next notify_status() */
	uint64_t nagents; /* the last count read from the store */
};

static struct notify notify;

static uint64_t
notify_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void
notify_send(const char *state)
{
	int rc;

	if (!notify.on)
		return;
	/* Failing to tell systemd is worth a line, never worth stopping: the
	 * daemon's work does not depend on it. */
	if ((rc = sd_notify(0, state)) < 0)
		log_warn("notify: sd_notify: %s", strerror(-rc));
}

void
notify_init(void)
{
	const char *sock = getenv("NOTIFY_SOCKET");
	uint64_t usec = 0;
	int rc;

	notify.on = sock != NULL && sock[0] != '\0';
	notify.watchdog_us = 0;
	notify.status_due = true;
	if (!notify.on)
		return;
	/* unset_environment 0: nothing we start should inherit it anyway,
	 * and the daemon starts nothing. */
	rc = sd_watchdog_enabled(0, &usec);
	if (rc < 0)
		log_warn("notify: WATCHDOG_USEC: %s", strerror(-rc));
	else if (rc > 0)
		notify.watchdog_us = usec;
	notify.last_ping_us = notify_now_us();
}

int
notify_wait_ms(int max_ms)
{
	uint64_t quarter_ms;

	if (notify.watchdog_us == 0)
		return max_ms;
	/* Pings go out at half the interval; waking at a quarter keeps the
	 * latest ping well inside it. */
	quarter_ms = notify.watchdog_us / 4000;
	if (quarter_ms < 1)
		quarter_ms = 1;
	return quarter_ms < (uint64_t)max_ms ? (int)quarter_ms : max_ms;
}

void
notify_ready(void)
{
	notify_send("READY=1");
	notify.status_due = true;
}

void
notify_reloading(void)
{
	char state[64];

	/* MONOTONIC_USEC is what Type=notify-reload (systemd 253) requires;
	 * older managers ignore it. */
	snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)notify_now_us());
	notify_send(state);
}

void
notify_stopping(void)
{
	notify_send("STOPPING=1");
}

void
notify_watchdog(void)
{
	uint64_t now;

	if (!notify.on || notify.watchdog_us == 0)
		return;
	now = notify_now_us();
	if (now - notify.last_ping_us < notify.watchdog_us / 2)
		return;
	notify.last_ping_us = now;
	notify_send("WATCHDOG=1");
}

void
notify_status(struct daemon *d)
{
	struct store_stat st;
	struct store_txn *t;
	uint64_t now;
	char state[160];

	if (!notify.on)
		return;
	now = notify_now_us();
	if (!notify.status_due &&
	    now - notify.last_status_us < NOTIFY_STATUS_MS * 1000ULL)
		return;
	notify.status_due = false;
	notify.last_status_us = now;
	/* One entry in seq per (agent, epoch) the daemon has taken a report
	 * from: a read transaction every few seconds is cheap. */
	if ((t = store_txn_begin(d->store, false)) != NULL) {
		if (store_stat(t, &st) == 0)
			notify.nagents = st.nagents;
		store_txn_abort(&t);
	}
	snprintf(state, sizeof(state),
	    "STATUS=accepted %llu, rejected %llu, duplicate %llu, agents seen "
	    "%llu",
	    (unsigned long long)d->count.accepted,
	    (unsigned long long)d->count.rejected,
	    (unsigned long long)d->count.duplicate,
	    (unsigned long long)notify.nagents);
	notify_send(state);
}
