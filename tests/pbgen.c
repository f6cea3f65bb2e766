#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "indicator.pb-c.h"
#include "pbgen.h"
#include "store.pb-c.h"
#include "xmalloc.h"

#define PBGEN_DEPTH_MAX 3
#define PBGEN_STRING_DEFAULT 12
#define PBGEN_REPEATED_MAX 3

struct pbgen {
	uint64_t state;
	void **allocs; /* every block handed out, for pbgen_reset */
	size_t nallocs, cap;
};

struct pbgen *
pbgen_new(uint64_t seed)
{
	struct pbgen *g = xcalloc(1, sizeof(*g));

	g->state = seed != 0 ? seed : 0x9e3779b97f4a7c15u;
	return g;
}

void
pbgen_reset(struct pbgen *g)
{
	for (size_t i = 0; i < g->nallocs; i++)
		free(g->allocs[i]);
	g->nallocs = 0;
}

void
pbgen_destroy(struct pbgen **g)
{
	if (*g == NULL)
		return;
	pbgen_reset(*g);
	free((*g)->allocs);
	free(*g);
	*g = NULL;
}

static void *
alloc(struct pbgen *g, size_t size)
{
	void *p = xcalloc(1, size > 0 ? size : 1);

	if (g->nallocs == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 64;
		g->allocs = xrealloc(g->allocs, g->cap * sizeof(*g->allocs));
	}
	g->allocs[g->nallocs++] = p;
	return p;
}

/* xorshift64* */
static uint64_t
rng(struct pbgen *g)
{
	g->state ^= g->state >> 12;
	g->state ^= g->state << 25;
	g->state ^= g->state >> 27;
	return g->state * 2685821657736338717u;
}

uint64_t
pbgen_u64(struct pbgen *g)
{
	switch (rng(g) % 6) {
	case 0:
		return 0;
	case 1:
		return rng(g) % 128;
	case 2:
		return (uint64_t) - (int64_t)(rng(g) % 1000 + 1);
	case 3:
		return UINT64_MAX;
	default:
		return rng(g) >> (rng(g) % 64);
	}
}

double
pbgen_double(struct pbgen *g)
{
	static const double edges[] = { 0.0, -0.0, 1e-300, -2245.36, 5000,
		1.0 / 3.0, INFINITY, -INFINITY };
	uint64_t bits;
	double d;

	if (rng(g) % 2)
		return edges[rng(g) % (sizeof(edges) / sizeof(edges[0]))];
	bits = rng(g);
	memcpy(&d, &bits, sizeof(d));
	return isnan(d) ? 7.5 : d;
}

/* 0 to max bytes of ASCII and UTF-8, max exactly a third of the time. */
static char *
string(struct pbgen *g, size_t max)
{
	static const char *const pieces[] = { "a", "Z", "_", "9",
		"\xe8\x8b\x8f", "\xe5\xb7\x9e", "-", "*" };
	size_t n = 0, want = rng(g) % 3 == 0 ? max : rng(g) % (max + 1);
	char *s = alloc(g, max + 1);

	while (n < want) {
		const char *p = pieces[rng(g) % 8];
		size_t len = strlen(p);

		if (n + len > want)
			p = "x", len = 1;
		memcpy(s + n, p, len);
		n += len;
	}
	s[n] = '\0';
	return s;
}

static void fill(
    struct pbgen *, ProtobufCMessage *, pbgen_bound_fn, void *, int);

/* How many bytes one value of field f takes in the C struct. */
static size_t
value_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return sizeof(uint32_t);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return sizeof(uint64_t);
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	abort();
}

/* A random value of field f at p. false when none is set (a sub-message
 * past the depth bound). */
static bool
value(struct pbgen *g, const ProtobufCFieldDescriptor *f, void *p,
    pbgen_bound_fn bound, void *arg, int depth)
{
	uint64_t u = pbgen_u64(g);

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32: {
		uint32_t v = (uint32_t)u;

		memcpy(p, &v, sizeof(v));
		return true;
	}
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		memcpy(p, &u, sizeof(u));
		return true;
	case PROTOBUF_C_TYPE_FLOAT: {
		float v = (float)pbgen_double(g);

		if (isnan(v))
			v = 0.5f;
		memcpy(p, &v, sizeof(v));
		return true;
	}
	case PROTOBUF_C_TYPE_DOUBLE: {
		double v = pbgen_double(g);

		memcpy(p, &v, sizeof(v));
		return true;
	}
	case PROTOBUF_C_TYPE_BOOL: {
		protobuf_c_boolean v = (protobuf_c_boolean)(u & 1);

		memcpy(p, &v, sizeof(v));
		return true;
	}
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *e = f->descriptor;
		int v = e->n_values > 0 ? e->values[u % e->n_values].value : 0;

		memcpy(p, &v, sizeof(v));
		return true;
	}
	case PROTOBUF_C_TYPE_STRING: {
		size_t max = bound != NULL ? bound(f, arg) : 0;
		char *s = string(g, max > 0 ? max : PBGEN_STRING_DEFAULT);

		memcpy(p, &s, sizeof(s));
		return true;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData b;

		b.len = (size_t)(u % 24);
		b.data = alloc(g, b.len);
		for (size_t i = 0; i < b.len; i++)
			b.data[i] = (uint8_t)rng(g); /* NULs among them */
		memcpy(p, &b, sizeof(b));
		return true;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessageDescriptor *d = f->descriptor;
		ProtobufCMessage *m;

		if (depth >= PBGEN_DEPTH_MAX)
			return false;
		m = alloc(g, d->sizeof_message);
		protobuf_c_message_init(d, m);
		fill(g, m, bound, arg, depth + 1);
		memcpy(p, &m, sizeof(m));
		return true;
	}
	}
	abort();
}

static void
fill(struct pbgen *g, ProtobufCMessage *m, pbgen_bound_fn bound, void *arg,
    int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		char *at = (char *)m + f->offset;
		char *q = (char *)m + f->quantifier_offset;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = (size_t)(rng(g) % (PBGEN_REPEATED_MAX + 1));
			size_t size = value_size(f), k = 0;
			char *arr = alloc(g, n * size);

			for (size_t j = 0; j < n; j++)
				if (value(g, f, arr + k * size, bound, arg,
					depth))
					k++;
			memcpy(at, &arr, sizeof(arr));
			memcpy(q, &k, sizeof(k));
		} else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			/* The members share the union: the last one set
			 * stands. */
			if (value(g, f, at, bound, arg, depth)) {
				uint32_t id = f->id;

				memcpy(q, &id, sizeof(id));
			}
		} else if (value(g, f, at, bound, arg, depth) &&
			   f->label == PROTOBUF_C_LABEL_OPTIONAL &&
			   f->type != PROTOBUF_C_TYPE_STRING &&
			   f->type != PROTOBUF_C_TYPE_MESSAGE) {
			protobuf_c_boolean has = 1;

			memcpy(q, &has, sizeof(has));
		}
	}
}

ProtobufCMessage *
pbgen_message(struct pbgen *g, const ProtobufCMessageDescriptor *d,
    pbgen_bound_fn bound, void *arg)
{
	ProtobufCMessage *m = alloc(g, d->sizeof_message);

	protobuf_c_message_init(d, m);
	fill(g, m, bound, arg, 0);
	return m;
}

static bool
value_equal(const ProtobufCFieldDescriptor *f, const void *a, const void *b,
    char *why, size_t why_size)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_FLOAT: {
		float x, y;

		memcpy(&x, a, sizeof(x));
		memcpy(&y, b, sizeof(y));
		return x == y;
	}
	case PROTOBUF_C_TYPE_DOUBLE: {
		double x, y;

		memcpy(&x, a, sizeof(x));
		memcpy(&y, b, sizeof(y));
		return x == y;
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *x, *y;

		memcpy(&x, a, sizeof(x));
		memcpy(&y, b, sizeof(y));
		return strcmp(x != NULL ? x : "", y != NULL ? y : "") == 0;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData x, y;

		memcpy(&x, a, sizeof(x));
		memcpy(&y, b, sizeof(y));
		return x.len == y.len &&
		       (x.len == 0 || memcmp(x.data, y.data, x.len) == 0);
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *x, *y;

		memcpy(&x, a, sizeof(x));
		memcpy(&y, b, sizeof(y));
		if (x == NULL || y == NULL)
			return x == y;
		return pbgen_equal(x, y, why, why_size);
	}
	default:
		return memcmp(a, b, value_size(f)) == 0;
	}
}

bool
pbgen_equal(const ProtobufCMessage *a, const ProtobufCMessage *b, char *why,
    size_t why_size)
{
	const ProtobufCMessageDescriptor *d = a->descriptor;

	if (why_size > 0)
		why[0] = '\0';
	if (b->descriptor != d) {
		snprintf(
		    why, why_size, "%s vs %s", d->name, b->descriptor->name);
		return false;
	}
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *pa = (const char *)a + f->offset;
		const char *pb = (const char *)b + f->offset;
		const char *qa = (const char *)a + f->quantifier_offset;
		const char *qb = (const char *)b + f->quantifier_offset;
		bool same = true;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t na, nb, size = value_size(f);
			const char *xa, *xb;

			memcpy(&na, qa, sizeof(na));
			memcpy(&nb, qb, sizeof(nb));
			memcpy(&xa, pa, sizeof(xa));
			memcpy(&xb, pb, sizeof(xb));
			same = na == nb;
			for (size_t j = 0; same && j < na; j++)
				same = value_equal(f, xa + j * size,
				    xb + j * size, why, why_size);
		} else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t ca, cb;

			memcpy(&ca, qa, sizeof(ca));
			memcpy(&cb, qb, sizeof(cb));
			same = ca == cb &&
			       (ca != f->id ||
				   value_equal(f, pa, pb, why, why_size));
		} else {
			same = value_equal(f, pa, pb, why, why_size);
		}
		if (!same) {
			/* The innermost field names the difference. */
			if (why_size > 0 && why[0] == '\0')
				snprintf(
				    why, why_size, "%s.%s", d->name, f->name);
			return false;
		}
	}
	return true;
}

const ProtobufCMessageDescriptor *const pbgen_messages[] = {
	/* indicator.proto, the contract */
	&indicator__observation__descriptor,
	&indicator__report__descriptor,
	&indicator__heartbeat__descriptor,
	&indicator__agent_message__descriptor,
	&indicator__observation_error__descriptor,
	&indicator__ack__descriptor,
	&indicator__aggregate__descriptor,
	&indicator__history_query__descriptor,
	&indicator__expected_query__descriptor,
	&indicator__agents_query__descriptor,
	&indicator__snapshot_request__descriptor,
	&indicator__revision__descriptor,
	&indicator__district_reporting__descriptor,
	&indicator__agent_state__descriptor,
	&indicator__snapshot__descriptor,
	/* store.proto */
	&indicator__store__stored_observation__descriptor,
	&indicator__store__obs_ref__descriptor,
	&indicator__store__seq_state__descriptor,
	&indicator__store__report_source__descriptor,
	&indicator__store__file_stage__descriptor,
};
const size_t pbgen_nmessages =
    sizeof(pbgen_messages) / sizeof(pbgen_messages[0]);
const size_t pbgen_ncontract = 15;
