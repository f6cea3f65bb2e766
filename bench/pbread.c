/*
 * indicator-pbread: what reading a packed record costs, pbwire.h's field
 * walk against protobuf_c_message_unpack() (issue 14, item 4: "drop pbwire
 * if protobuf-c unpack with the batch arena costs the same").
 *
 *   indicator-pbread [--quick]
 *
 * The two records the daemon reads per observation or per touched
 * aggregate: an ObsRef (store_ref_decode(): three scalars) and an
 * Aggregate (agg_decode(), which the ledger uses: eight fields, the unit
 * copied into a fixed buffer). Each is read three ways: by those readers
 * themselves (pbwire_next()), by protobuf-c unpack into the daemon's batch
 * arena (arena.h, reset every 1000 records, as a batch gives it back),
 * and by protobuf-c unpack with malloc and free_unpacked. One line per way:
 * nanoseconds per record, the median of 5 runs on one core. Not a test.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregate.h"
#include "arena.h"
#include "indicator.pb-c.h"
#include "pbpack.h"
#include "store.h"
#include "store.pb-c.h"
#include "xmalloc.h"

#define PBREAD_BATCH 1000
#define PBREAD_RUNS 5
#define PBREAD_RECORDS 64 /* distinct records, read in turn */

struct value {
	struct agg_value agg;
	uint64_t revision;
	struct store_ref ref;
};

/* protobuf-c's allocator over the daemon's arena, as ingest.c has it. */
static void *
arena_pb_alloc(void *data, size_t size)
{
	return arena_alloc(data, size);
}

static void
arena_pb_free(void *data, void *ptr)
{
	(void)data;
	(void)ptr;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
agg_unpack(ProtobufCAllocator *a, const uint8_t *p, size_t len, struct value *v)
{
	Indicator__Aggregate *m = indicator__aggregate__unpack(a, len, p);

	if (m == NULL)
		return -1;
	memset(v, 0, sizeof(*v));
	v->agg.value = m->value;
	if (strlen(m->unit) < sizeof(v->agg.unit))
		strcpy(v->agg.unit, m->unit);
	v->agg.districts_reporting = m->districts_reporting;
	v->agg.districts_expected = m->districts_expected;
	v->agg.target = m->target;
	v->agg.target_year = m->target_year;
	v->agg.progress = m->progress;
	v->revision = m->revision;
	if (a == NULL)
		indicator__aggregate__free_unpacked(m, NULL);
	return 0;
}

static int
ref_unpack(ProtobufCAllocator *a, const uint8_t *p, size_t len, struct value *v)
{
	Indicator__Store__ObsRef *m =
	    indicator__store__obs_ref__unpack(a, len, p);

	if (m == NULL)
		return -1;
	v->ref.revision = m->revision;
	v->ref.value = m->value;
	v->ref.lsn = m->at;
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
	struct arena *ar = arena_new();
	ProtobufCAllocator arena = { arena_pb_alloc, arena_pb_free, ar };
	struct value v;
	double t0, sum = 0;
	int rc = 0;

	t0 = now();
	for (long i = 0; i < n; i++) {
		size_t k = (size_t)i % PBREAD_RECORDS;

		if (way == WAY_PBWIRE)
			rc = aggregate ? agg_decode(r->buf[k], r->len[k],
					     &v.agg, &v.revision)
				       : store_ref_decode(
					     r->buf[k], r->len[k], &v.ref);
		else
			rc = aggregate
				 ? agg_unpack(way == WAY_ARENA ? &arena : NULL,
				       r->buf[k], r->len[k], &v)
				 : ref_unpack(way == WAY_ARENA ? &arena : NULL,
				       r->buf[k], r->len[k], &v);
		if (rc == -1)
			abort();
		sum += aggregate ? v.agg.value : v.ref.value;
		if (way == WAY_ARENA && i % PBREAD_BATCH == PBREAD_BATCH - 1)
			arena_reset(ar);
	}
	t0 = now() - t0;
	arena_destroy(&ar);
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
