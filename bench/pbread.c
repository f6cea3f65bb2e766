/*
 * indicator-pbread: what reading a packed record costs, pbwire.h's field
 * walk against protobuf_c_message_unpack() (issue 14, item 4: "drop pbwire
 * if protobuf-c unpack with the batch arena costs the same").
 *
 *   indicator-pbread [--quick]
 *
 * The two records the daemon reads per observation or per touched
 * aggregate: an ObsRef (store.c's ref_decode: three scalars) and an
 * Aggregate (publish.c's aggregate_decode: eight fields, the unit copied
 * into a fixed buffer). Each is read three ways: by pbwire_next() as those
 * readers do (the code below mirrors them), by protobuf-c unpack into a
 * batch arena like ingest.c's (1 MiB chunks, reset every 1000 records, as a
 * batch gives it back), and by protobuf-c unpack with malloc and
 * free_unpacked. One line per way: nanoseconds per record, the median of 5
 * runs on one core. Not a test.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "indicator.pb-c.h"
#include "pbfields.h"
#include "pbpack.h"
#include "pbwire.h"
#include "store.pb-c.h"
#include "xmalloc.h"

#define PBREAD_BATCH 1000
#define PBREAD_RUNS 5
#define PBREAD_RECORDS 64 /* distinct records, read in turn */

struct value {
	double value, target, progress;
	uint32_t reporting, expected, target_year;
	uint64_t revision;
	char unit[IND_UNIT_MAX + 1];
	uint32_t ref_revision;
	double ref_value;
	uint64_t ref_at;
};

/* The batch arena of ingest.c: chunks of 1 MiB, freed all at once. */
struct chunk {
	struct chunk *next;
	size_t used, size;
	max_align_t data[];
};

static void *
arena_alloc(void *data, size_t size)
{
	struct chunk **head = data, *c = *head;
	size_t need =
	    (size + _Alignof(max_align_t) - 1) & ~(_Alignof(max_align_t) - 1);
	void *p;

	if (c == NULL || c->size - c->used < need) {
		size_t csize = need > (1 << 20) ? need : (1 << 20);

		c = xmalloc(sizeof(*c) + csize);
		c->size = csize;
		c->used = 0;
		c->next = *head;
		*head = c;
	}
	p = (char *)c->data + c->used;
	c->used += need;
	return p;
}

static void
arena_free(void *data, void *ptr)
{
	(void)data;
	(void)ptr;
}

static void
arena_reset(struct chunk **head)
{
	struct chunk *c = *head;

	while (c != NULL && c->next != NULL) {
		struct chunk *next = c->next;

		c->next = next->next;
		free(next);
	}
	if (c != NULL)
		c->used = 0;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* As publish.c's aggregate_decode. */
static int
agg_pbwire(const uint8_t *p, size_t len, struct value *v)
{
	const uint8_t *end = p + len;
	struct pbwire_field f;
	int rc;

	memset(v, 0, sizeof(*v));
	while ((rc = pbwire_next(&p, end, &f)) == 1) {
		switch (f.number) {
		case PBF_AGGREGATE_VALUE:
			v->value =
			    f.type == PBF_WIRE_DOUBLE ? pbwire_double(&f) : 0;
			break;
		case PBF_AGGREGATE_UNIT:
			if (f.type == PBF_WIRE_STRING &&
			    f.len < sizeof(v->unit)) {
				memcpy(v->unit, f.data, f.len);
				v->unit[f.len] = '\0';
			}
			break;
		case PBF_AGGREGATE_DISTRICTS_REPORTING:
			v->reporting = (uint32_t)f.u;
			break;
		case PBF_AGGREGATE_DISTRICTS_EXPECTED:
			v->expected = (uint32_t)f.u;
			break;
		case PBF_AGGREGATE_TARGET:
			v->target =
			    f.type == PBF_WIRE_DOUBLE ? pbwire_double(&f) : 0;
			break;
		case PBF_AGGREGATE_TARGET_YEAR:
			v->target_year = (uint32_t)f.u;
			break;
		case PBF_AGGREGATE_PROGRESS:
			v->progress =
			    f.type == PBF_WIRE_DOUBLE ? pbwire_double(&f) : 0;
			break;
		case PBF_AGGREGATE_REVISION:
			v->revision = f.u;
			break;
		}
	}
	return rc;
}

static int
agg_unpack(ProtobufCAllocator *a, const uint8_t *p, size_t len, struct value *v)
{
	Indicator__Aggregate *m = indicator__aggregate__unpack(a, len, p);

	if (m == NULL)
		return -1;
	memset(v, 0, sizeof(*v));
	v->value = m->value;
	if (strlen(m->unit) < sizeof(v->unit))
		strcpy(v->unit, m->unit);
	v->reporting = m->districts_reporting;
	v->expected = m->districts_expected;
	v->target = m->target;
	v->target_year = m->target_year;
	v->progress = m->progress;
	v->revision = m->revision;
	if (a == NULL)
		indicator__aggregate__free_unpacked(m, NULL);
	return 0;
}

/* As store.c's ref_decode. */
static int
ref_pbwire(const uint8_t *p, size_t len, struct value *v)
{
	const uint8_t *end = p + len;
	struct pbwire_field f;
	int rc;

	while ((rc = pbwire_next(&p, end, &f)) == 1) {
		if (f.number == PBF_OBS_REF_REVISION &&
		    f.type == PBF_WIRE_UINT32)
			v->ref_revision = (uint32_t)f.u;
		else if (f.number == PBF_OBS_REF_VALUE &&
			 f.type == PBF_WIRE_DOUBLE)
			v->ref_value = pbwire_double(&f);
		else if (f.number == PBF_OBS_REF_AT &&
			 f.type == PBF_WIRE_UINT64)
			v->ref_at = f.u;
	}
	return rc;
}

static int
ref_unpack(ProtobufCAllocator *a, const uint8_t *p, size_t len, struct value *v)
{
	Indicator__Store__ObsRef *m =
	    indicator__store__obs_ref__unpack(a, len, p);

	if (m == NULL)
		return -1;
	v->ref_revision = m->revision;
	v->ref_value = m->value;
	v->ref_at = m->at;
	if (a == NULL)
		indicator__store__obs_ref__free_unpacked(m, NULL);
	return 0;
}

enum way { WAY_PBWIRE, WAY_ARENA, WAY_MALLOC };

struct records {
	uint8_t buf[PBREAD_RECORDS][PBPACK_AGGREGATE_MAX];
	size_t len[PBREAD_RECORDS];
};

/* ns per record over n reads, one way. */
static double
measure(const struct records *r, bool aggregate, enum way way, long n)
{
	struct chunk *head = NULL;
	ProtobufCAllocator arena = { arena_alloc, arena_free, &head };
	struct value v;
	double t0, sum = 0;
	int rc = 0;

	t0 = now();
	for (long i = 0; i < n; i++) {
		size_t k = (size_t)i % PBREAD_RECORDS;

		if (way == WAY_PBWIRE)
			rc = aggregate ? agg_pbwire(r->buf[k], r->len[k], &v)
				       : ref_pbwire(r->buf[k], r->len[k], &v);
		else
			rc = aggregate
				 ? agg_unpack(way == WAY_ARENA ? &arena : NULL,
				       r->buf[k], r->len[k], &v)
				 : ref_unpack(way == WAY_ARENA ? &arena : NULL,
				       r->buf[k], r->len[k], &v);
		if (rc == -1)
			abort();
		sum += v.value + v.ref_value;
		if (way == WAY_ARENA && i % PBREAD_BATCH == PBREAD_BATCH - 1)
			arena_reset(&head);
	}
	t0 = now() - t0;
	arena_reset(&head);
	free(head);
	if (sum == 12345.678) /* keeps the reads */
		printf(" ");
	return t0 * 1e9 / (double)n;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	static const char *const ways[] = { "pbwire field walk",
		"protobuf-c unpack, batch arena",
		"protobuf-c unpack, malloc + free_unpacked" };
	struct records agg, ref;
	long n = argc > 1 && strcmp(argv[1], "--quick") == 0 ? 200000 : 2000000;

	for (size_t k = 0; k < PBREAD_RECORDS; k++) {
		Indicator__Aggregate a = INDICATOR__AGGREGATE__INIT;
		Indicator__Store__ObsRef o = INDICATOR__STORE__OBS_REF__INIT;

		a.metric = "output_value";
		a.industry = k % 2 ? "photonics" : "*";
		a.scope = k % 3 ? "320583" : "city";
		a.period = "2025-Q3";
		a.value = 2245.36 + (double)k;
		a.unit = "CNY_100M";
		a.districts_reporting = (uint32_t)(k % 11);
		a.districts_expected = 11;
		a.target = 5000;
		a.target_year = 2030;
		a.progress = a.value / 5000;
		a.revision = 3 + k;
		a.seq = 1234567 + k;
		a.updated_at_ms = 1764900000000 + (int64_t)k;
		agg.len[k] = pbpack_aggregate(&a, agg.buf[k]);
		o.revision = (uint32_t)(1 + k % 4);
		o.value = 12.5 * (double)(k + 1);
		o.at = 1000000 + k;
		ref.len[k] = indicator__store__obs_ref__pack(&o, ref.buf[k]);
	}
	for (int rec = 0; rec < 2; rec++) {
		for (int w = 0; w < 3; w++) {
			double t[PBREAD_RUNS];

			for (int i = 0; i < PBREAD_RUNS; i++)
				t[i] = measure(rec ? &agg : &ref, rec == 1,
				    (enum way)w, n);
			qsort(t, PBREAD_RUNS, sizeof(t[0]), cmp);
			printf("pbread %s (%zu B): %s: %.1f ns/record "
			       "(min %.1f, max %.1f)\n",
			    rec ? "Aggregate" : "ObsRef",
			    rec ? agg.len[0] : ref.len[0], ways[w],
			    t[PBREAD_RUNS / 2], t[0], t[PBREAD_RUNS - 1]);
		}
	}
	return 0;
}
