/*
 * A CSV file into the outbox: parse it whole first, so that a bad line
 * anywhere keeps the entire file out, then enqueue its reports in one
 * transaction.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "csv.h"
#include "indicator.pb-c.h"
#include "xmalloc.h"

#define AGENT_READ_CHUNK (64 * 1024)

/* One file's rows. */
struct agent_rows {
	struct csv_row *v;
	size_t n;
	size_t cap;
};

struct agent_build {
	const struct agent *a;
	const struct agent_rows *rows;
	int64_t sent_at_ms;
	uint64_t first_seq;
	uint64_t last_seq;
};

static int
agent_collect(const struct csv_row *row, void *arg)
{
	struct agent_rows *rows = arg;

	if (rows->n == rows->cap) {
		rows->cap = rows->cap ? rows->cap * 2 : 256;
		rows->v = xrealloc(rows->v, rows->cap * sizeof(*rows->v));
	}
	rows->v[rows->n++] = *row;
	return 0;
}

static int64_t
agent_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Packs the i-th report of the file as an AgentMessage (outbox_build_fn). */
static int
agent_build_report(
    uint64_t epoch, uint64_t seq, size_t i, void **buf, size_t *len, void *arg)
{
	struct agent_build *b = arg;
	size_t size = b->a->cfg.report_size;
	size_t first = i * size;
	size_t n = b->rows->n - first < size ? b->rows->n - first : size;
	Indicator__Observation *obs = xcalloc(n, sizeof(*obs));
	Indicator__Observation **obsp = xcalloc(n, sizeof(*obsp));
	Indicator__Report report = INDICATOR__REPORT__INIT;
	Indicator__AgentMessage msg = INDICATOR__AGENT_MESSAGE__INIT;

	for (size_t k = 0; k < n; k++) {
		struct csv_row *row = &b->rows->v[first + k];

		indicator__observation__init(&obs[k]);
		obs[k].industry = row->industry;
		obs[k].metric = row->metric;
		obs[k].period = row->period;
		obs[k].value = row->value;
		obs[k].unit = row->unit;
		obs[k].status = (Indicator__ObsStatus)row->status;
		obs[k].note = row->note;
		obsp[k] = &obs[k];
	}
	report.agent_id = (char *)b->a->cfg.id;
	report.district = (char *)b->a->cfg.district;
	report.epoch = epoch;
	report.seq = seq;
	report.sent_at_ms = b->sent_at_ms;
	report.n_observations = n;
	report.observations = obsp;
	msg.body_case = INDICATOR__AGENT_MESSAGE__BODY_REPORT;
	msg.report = &report;

	*len = indicator__agent_message__get_packed_size(&msg);
	*buf = xmalloc(*len);
	indicator__agent_message__pack(&msg, *buf);
	free(obsp);
	free(obs);
	if (i == 0)
		b->first_seq = seq;
	b->last_seq = seq;
	return 0;
}

/* Parses the whole file into rows; -1 after saying why. */
static int
agent_read_csv(const char *path, struct agent_rows *rows)
{
	struct csv_parser *p;
	FILE *fp;
	char *buf;
	size_t n;
	int rc = 0;

	if ((fp = fopen(path, "rb")) == NULL) {
		fprintf(
		    stderr, "indicator-agent: %s: %s\n", path, strerror(errno));
		return -1;
	}
	buf = xmalloc(AGENT_READ_CHUNK);
	p = csv_new(agent_collect, rows);
	while (rc == 0 && (n = fread(buf, 1, AGENT_READ_CHUNK, fp)) > 0)
		rc = csv_feed(p, buf, n);
	if (rc == 0 && ferror(fp)) {
		fprintf(stderr, "indicator-agent: %s: read error\n", path);
		rc = -1;
		goto parser_destroy;
	}
	if (rc == 0)
		rc = csv_finish(p);
	if (rc == -1)
		fprintf(stderr, "indicator-agent: %s: line %u: %s\n", path,
		    csv_error_line(p), csv_error(p));
parser_destroy:
	csv_destroy(&p);
	free(buf);
	fclose(fp);
	return rc;
}

int
agent_enqueue_file(struct agent *a, const char *path)
{
	struct agent_rows rows = { NULL, 0, 0 };
	struct agent_build b;
	size_t nreports;
	int rc = -1;

	if (agent_read_csv(path, &rows) == -1)
		goto rows_free;
	if (rows.n == 0) {
		agent_debug(a, "%s: no rows", path);
		rc = 0;
		goto rows_free;
	}
	nreports = (rows.n + a->cfg.report_size - 1) / a->cfg.report_size;
	memset(&b, 0, sizeof(b));
	b.a = a;
	b.rows = &rows;
	b.sent_at_ms = agent_wall_ms();
	if (outbox_enqueue(a->ob, nreports, agent_build_report, &b) == -1) {
		fprintf(stderr,
		    "indicator-agent: %s: could not store its reports in the "
		    "outbox; nothing from it is sent\n",
		    path);
		goto rows_free;
	}
	agent_debug(a,
	    "%s: %zu observations in %zu reports, seq %" PRIu64 "-%" PRIu64,
	    path, rows.n, nreports, b.first_seq, b.last_seq);
	rc = 0;
rows_free:
	free(rows.v);
	return rc;
}
