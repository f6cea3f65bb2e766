/*
 * The dashboard's state: the daemon's aggregates by topic, as the feed
 * leaves them, and a ring of events for the live pages (Server-Sent
 * Events: "agg" for each aggregate applied, as indicator-sub writes it,
 * "resync" after a snapshot, "status" when the feed's connection
 * changes).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "web.h"
#include "xmalloc.h"

struct state *
state_new(const struct registry *reg)
{
	struct state *s = xcalloc(1, sizeof(*s));
	pthread_condattr_t ca;

	pthread_mutex_init(&s->lock, NULL);
	/* Timed waits on the monotonic clock: a clock step must not wake
	 * or stall the live pages. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	s->reg = reg;
	s->next_event = 1;
	return s;
}

static void
aggs_clear(struct state *s)
{
	for (size_t i = 0; i < s->n; i++)
		indicator__aggregate__free_unpacked(s->v[i].agg, NULL);
	s->n = 0;
}

void
state_destroy(struct state **sp)
{
	struct state *s;

	if (sp == NULL || (s = *sp) == NULL)
		return;
	aggs_clear(s);
	free(s->v);
	for (size_t i = 0; i < STATE_EVENTS; i++)
		free(s->events[i]);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
	*sp = NULL;
}

void
state_lock(struct state *s)
{
	pthread_mutex_lock(&s->lock);
}

void
state_unlock(struct state *s)
{
	pthread_mutex_unlock(&s->lock);
}

static size_t
search(const struct state *s, const char *topic, bool *found)
{
	size_t lo = 0, hi = s->n;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->v[mid].topic, topic);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Under lock: keeps a as topic's aggregate unless a newer one is held.
 * Takes a over. False when a was dropped. */
static bool
put(struct state *s, const char *topic, Indicator__Aggregate *a)
{
	bool found;
	size_t i = search(s, topic, &found);

	if (found) {
		if (s->v[i].agg->seq > a->seq) {
			indicator__aggregate__free_unpacked(a, NULL);
			return false;
		}
		indicator__aggregate__free_unpacked(s->v[i].agg, NULL);
		s->v[i].agg = a;
		return true;
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(*s->v));
	strlcpy_ok(s->v[i].topic, topic, sizeof(s->v[i].topic));
	s->v[i].agg = a;
	s->n++;
	return true;
}

/* Under lock: adds an event (data: one line of JSON, taken over) and wakes
 * the live pages. */
static void
event_add(struct state *s, const char *name, char *data)
{
	uint64_t id = s->next_event++;
	size_t slot = id % STATE_EVENTS, len;
	char *text;

	len = strlen(name) + strlen(data) + 64;
	text = xmalloc(len);
	snprintf(text, len, "id: %llu\nevent: %s\ndata: %s\n\n",
	    (unsigned long long)id, name, data);
	free(data);
	free(s->events[slot]);
	s->events[slot] = text;
	pthread_cond_broadcast(&s->cond);
}

/* The JSON of a state event: seq (a string, as every 64-bit integer),
 * live, connected, aggregates. */
static char *
status_json(const struct state *s)
{
	json_t *j = json_pack("{s:o, s:b, s:b, s:I}", "seq", api_u64(s->seq),
	    "live", s->live, "connected", s->connected, "aggregates",
	    (json_int_t)s->n);
	char *text = api_dump(j);

	json_decref(j);
	return text;
}

void
state_snapshot(struct state *s, Indicator__Snapshot *snap)
{
	char topic[IND_TOPIC_MAX + 1];

	state_lock(s);
	aggs_clear(s);
	for (size_t i = 0; i < snap->n_aggregates; i++) {
		Indicator__Aggregate *a = snap->aggregates[i];
		int n = snprintf(topic, sizeof(topic), "agg/%s/%s/%s/%s",
		    a->metric, a->industry, a->scope, a->period);

		if (n < 0 || (size_t)n >= sizeof(topic)) {
			indicator__aggregate__free_unpacked(a, NULL);
			continue;
		}
		put(s, topic, a);
	}
	/* The aggregates are the state's now. */
	snap->n_aggregates = 0;
	s->seq = snap->seq;
	s->live = true;
	s->snapshot_ms = web_now_ms();
	s->snapshots++;
	event_add(s, "resync", status_json(s));
	state_unlock(s);
}

void
state_update(struct state *s, const char *topic, Indicator__Aggregate *a)
{
	char *data = api_aggregate_json(topic, a);
	uint64_t seq = a->seq;

	state_lock(s);
	if (put(s, topic, a)) {
		s->seq = seq;
		s->update_ms = web_now_ms();
		s->updates++;
		event_add(s, "agg", data);
	} else {
		free(data);
	}
	state_unlock(s);
}

void
state_connected(struct state *s, bool up)
{
	state_lock(s);
	if (s->connected != up) {
		s->connected = up;
		if (!up)
			s->live = false;
		event_add(s, "status", status_json(s));
	}
	state_unlock(s);
}

void
state_quit(struct state *s)
{
	state_lock(s);
	s->quit = true;
	pthread_cond_broadcast(&s->cond);
	state_unlock(s);
}

const Indicator__Aggregate *
state_find(const struct state *s, const char *topic)
{
	bool found;
	size_t i = search(s, topic, &found);

	return found ? s->v[i].agg : NULL;
}

size_t
state_prefix(const struct state *s, const char *prefix, size_t *end)
{
	bool found;
	size_t first = search(s, prefix, &found), len = strlen(prefix), i;

	for (i = first; i < s->n && strncmp(s->v[i].topic, prefix, len) == 0;
	     i++)
		continue;
	*end = i;
	return first;
}

char *
state_event_wait(struct state *s, uint64_t *next, int timeout_ms)
{
	struct timespec until;
	char *text = NULL;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (!s->quit && *next >= s->next_event)
		if (pthread_cond_timedwait(&s->cond, &s->lock, &until) ==
		    ETIMEDOUT)
			break;
	if (s->quit || *next >= s->next_event)
		return NULL;
	if (s->next_event - *next > STATE_EVENTS - 1) {
		/* Fell behind the ring: start again from the figures. */
		*next = s->next_event;
		return xstrdup("event: resync\ndata: {}\n\n");
	}
	text = xstrdup(s->events[*next % STATE_EVENTS]);
	(*next)++;
	return text;
}
