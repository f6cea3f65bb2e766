/*
 * libFuzzer target: the agent's CSV push parser (core/csv.h) on outside
 * bytes. The input is fed once whole and once in two chunks cut at a place
 * the first byte picks: the outcome must not depend on the cut. Every row
 * handed to the callback must keep csv.h's promises.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "csv.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
	int rc;
	unsigned long rows;
	unsigned line;
	char err[512];
	uint64_t hash; /* of every row's fields, in order */
};

static void
bad_row(const struct csv_row *row, const char *why)
{
	fprintf(stderr, "fuzz_csv: row at line %u: %s\n", row->line, why);
	abort();
}

static uint64_t
hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	/* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ULL;
	return h;
}

/* A text field: NUL-terminated inside its array, valid UTF-8; required
 * fields are not empty. */
static uint64_t
field(const struct csv_row *row, uint64_t h, const char *s, size_t size,
    int required)
{
	size_t n = strnlen(s, size);

	if (n == size)
		bad_row(row, "field not NUL-terminated");
	if (required && n == 0)
		bad_row(row, "required field empty");
	if (!utf8_valid(s, n))
		bad_row(row, "field not valid UTF-8");
	return hash_bytes(h, s, n + 1);
}

static int
on_row(const struct csv_row *row, void *arg)
{
	struct outcome *o = arg;
	uint64_t h = o->hash;

	if (row->line == 0)
		bad_row(row, "line 0");
	h = field(row, h, row->industry, sizeof(row->industry), 1);
	h = field(row, h, row->metric, sizeof(row->metric), 1);
	h = field(row, h, row->period, sizeof(row->period), 1);
	h = field(row, h, row->unit, sizeof(row->unit), 1);
	h = field(row, h, row->note, sizeof(row->note), 0);
	if (!isfinite(row->value))
		bad_row(row, "value not finite");
	if (row->status < 0 || row->status > 3)
		bad_row(row, "status outside 0-3");
	h = hash_bytes(h, &row->value, sizeof(row->value));
	h = hash_bytes(h, &row->status, sizeof(row->status));
	h = hash_bytes(h, &row->line, sizeof(row->line));
	o->hash = h;
	return 0;
}

/* The default registry, for inputs that ask for its names (aliases). */
static const struct registry *
default_registry(void)
{
	static struct config cfg;
	static bool loaded;
	char err[512];

	if (!loaded) {
		if (config_parse(&cfg, config_default_text, "default", err,
			sizeof(err)) != 0)
			abort();
		loaded = true;
	}
	return &cfg.reg;
}

static void
parse(const uint8_t *data, size_t size, size_t cut, struct outcome *o)
{
	struct csv_parser *p;

	memset(o, 0, sizeof(*o));
	o->hash = 0xcbf29ce484222325ULL;
	p = csv_new(on_row, o);
	/* An odd first byte: with the registry's names. */
	if (size > 0 && (data[0] & 1))
		csv_set_registry(p, default_registry());
	o->rc = csv_feed(p, (const char *)data, cut);
	if (o->rc == 0)
		o->rc = csv_feed(p, (const char *)data + cut, size - cut);
	if (o->rc == 0)
		o->rc = csv_finish(p);
	o->rows = csv_rows(p);
	o->line = csv_error_line(p);
	snprintf(o->err, sizeof(o->err), "%s", csv_error(p));
	if ((o->rc == -1) != (o->err[0] != '\0') ||
	    (o->rc == -1) != (o->line != 0)) {
		fprintf(stderr, "fuzz_csv: rc %d with error '%s' line %u\n",
		    o->rc, o->err, o->line);
		abort();
	}
	if (strchr(o->err, '\n') != NULL || strchr(o->err, '\r') != NULL ||
	    !utf8_valid(o->err, strlen(o->err))) {
		fprintf(stderr, "fuzz_csv: error is not one line of UTF-8\n");
		abort();
	}
	/* Later calls keep failing once the parse has failed. */
	if (o->rc == -1 && csv_feed(p, "x", 1) != -1) {
		fprintf(stderr, "fuzz_csv: feed after a failure succeeded\n");
		abort();
	}
	csv_destroy(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole, split;
	size_t cut = size > 0 ? (size_t)data[0] * size / 255 : 0;

	parse(data, size, size, &whole);
	parse(data, size, cut, &split);
	if (whole.rc != split.rc || whole.rows != split.rows ||
	    whole.line != split.line || whole.hash != split.hash ||
	    strcmp(whole.err, split.err) != 0) {
		fprintf(stderr,
		    "fuzz_csv: cut at %zu changes the outcome: "
		    "rc %d/%d rows %lu/%lu line %u/%u '%s'/'%s'\n",
		    cut, whole.rc, split.rc, whole.rows, split.rows, whole.line,
		    split.line, whole.err, split.err);
		abort();
	}
	return 0;
}
