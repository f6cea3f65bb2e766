/*
 * CSV files into the outbox. A file goes in whole or not at all, and
 * memory stays flat whatever its size: a first pass only checks it, so that
 * a bad line anywhere keeps the entire file out; a second pass builds one
 * report at a time and puts each into one open outbox batch, committed at
 * the end of the file.
 *
 * The drop directory of `run` is here too: files closed after writing in
 * it or renamed into it are taken, then moved to done/ or rejected/.
 */
#define _GNU_SOURCE /* renameat2 */

#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "csv.h"
#include "encoding.h"
#include "i18n.h"
#include "indicator.pb-c.h"
#include "log.h"
#include "store.pb-c.h"
#include "xmalloc.h"

#define AGENT_READ_CHUNK (64 * 1024)
/* Suffixes tried for a name already taken in done/ or rejected/. */
#define AGENT_CLASH_MAX 10000

/* What agent_enqueue_fp() found wrong with a file. */
#define AGENT_FILE_BAD (-2)

/* The second pass: rows gathered into reports and put into the batch. */
struct agent_stream {
	const struct agent *a;
	const struct agent_file *f;
	struct outbox_batch *batch;
	struct csv_row *rows; /* cfg.report_size of them */
	size_t n;
	int64_t sent_at_ms;
	uint64_t first_seq;
	uint64_t last_seq;
	size_t reports;
	bool failed; /* the outbox failed */
	/* A file of several reports: its parts carry these
	 * (docs/protocol.md, "File transactions"); parts 1: none. */
	uint64_t file_id;
	uint32_t parts;
};

/* One file's enqueue. */
struct agent_file {
	const char *path; /* to open */
	const char *name; /* for messages */
	const void *mark; /* recorded with the reports, or NULL */
	size_t mark_len;
	enum encoding enc; /* decided by the sniffing pass */
	size_t bom;
	unsigned cols[CSV_NCOLS]; /* the header's columns */
	unsigned long observations;
	size_t reports;
	uint64_t first_seq;
	uint64_t last_seq;
	struct agent_lines problems; /* "NAME:LINE:COLUMN: ..." */
};

/* One pass over a file: rows to fn, problems to the file. */
struct agent_pass {
	struct agent_file *f;
	struct csv_parser *p;
	agent_row_fn fn;
	void *arg;
	unsigned *cols_out; /* the caller's copy of f->cols, or NULL */
	bool cols_done;
};

struct agent_drop {
	struct agent *a;
	int dirfd;
	int donefd;
	int rejfd;
	int sendfd; /* sending/: enqueued, not yet stored whole or refused */
	int ino; /* inotify */
};

void
agent_lines_add(struct agent_lines *l, const char *fmt, ...)
{
	va_list ap;
	char *s;

	char *raw;
	size_t len;

	va_start(ap, fmt);
	if (vasprintf(&raw, fmt, ap) == -1)
		abort();
	va_end(ap);
	/* The daemon's words and the report's strings, escaped as the log
	 * does: a line is one line, and no control character reaches a
	 * terminal or an .err file. */
	len = strlen(raw);
	s = xmalloc(4 * len + 1);
	log_escape(s, 4 * len + 1, raw, len, NULL);
	free(raw);
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = s;
}

void
agent_lines_free(struct agent_lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* "NAME:LINE:COLUMN: message", with what is unknown (0) left out. */
static void
agent_problem_line(struct agent_lines *l, const char *name, unsigned line,
    unsigned col, const char *msg)
{
	if (line == 0)
		agent_lines_add(l, "%s: %s", name, msg);
	else if (col == 0)
		agent_lines_add(l, "%s:%u: %s", name, line, msg);
	else
		agent_lines_add(l, "%s:%u:%u: %s", name, line, col, msg);
}

static void
agent_on_problem(const struct csv_problem *e, void *arg)
{
	struct agent_pass *ps = arg;

	agent_problem_line(
	    &ps->f->problems, ps->f->name, e->line, e->column, e->message);
}

static int
agent_on_row(const struct csv_row *row, void *arg)
{
	struct agent_pass *ps = arg;

	/* The header is read: its columns, before the first row. */
	if (!ps->cols_done) {
		for (int c = 0; c < CSV_NCOLS; c++)
			ps->f->cols[c] = csv_column(ps->p, c);
		if (ps->cols_out != NULL)
			memcpy(ps->cols_out, ps->f->cols, sizeof(ps->f->cols));
		ps->cols_done = true;
	}
	return ps->fn != NULL ? ps->fn(row, ps->arg) : 0;
}

/* The decoder's output goes to the parser; its failure stops both. */
static int
agent_on_text(const char *utf8, size_t len, void *arg)
{
	struct agent_pass *ps = arg;

	return csv_feed(ps->p, utf8, len) == 0 ? 0 : 1;
}

/*
 * The first look at a file: its encoding (a BOM, else cfg.encoding, else
 * UTF-8 when valid, else GB18030). 0, or AGENT_FILE_BAD with the problem
 * in f->problems.
 */
static int
agent_sniff(const struct agent *a, FILE *fp, struct agent_file *f)
{
	struct enc_sniff sn;
	char *buf;
	size_t n;

	if (fseek(fp, 0, SEEK_SET) == -1) {
		agent_problem_line(
		    &f->problems, f->name, 0, 0, strerror(errno));
		return AGENT_FILE_BAD;
	}
	buf = xmalloc(AGENT_READ_CHUNK);
	enc_sniff_init(&sn);
	while ((n = fread(buf, 1, AGENT_READ_CHUNK, fp)) > 0)
		enc_sniff_feed(&sn, buf, n);
	free(buf);
	if (ferror(fp)) {
		agent_problem_line(
		    &f->problems, f->name, 0, 0, _("the file cannot be read"));
		return AGENT_FILE_BAD;
	}
	if (enc_sniff_nul_no_bom(&sn)) {
		agent_problem_line(&f->problems, f->name, 0, 0,
		    _("the file holds NUL bytes, as UTF-16 saved without its "
		      "byte order mark does; save it as CSV UTF-8, or as "
		      "Unicode text"));
		return AGENT_FILE_BAD;
	}
	f->enc = enc_sniff_decide(&sn, a->cfg.encoding, &f->bom);
	return 0;
}

/* One pass over the file with fn for each row, refusing a key given twice
 * when unique. Returns 0, or AGENT_FILE_BAD with f->problems set (also
 * when fn stopped the parse). */
static int
agent_csv_pass(const struct agent *a, FILE *fp, struct agent_file *f,
    agent_row_fn fn, void *arg, unsigned *cols_out, bool unique,
    unsigned long *rows)
{
	struct agent_pass ps = { f, NULL, fn, arg, cols_out, false };
	struct enc_decoder *d;
	char *buf, msg[CSV_MSG_MAX];
	size_t n;
	int rc = 0;

	if (fseek(fp, 0, SEEK_SET) == -1) {
		agent_problem_line(
		    &f->problems, f->name, 0, 0, strerror(errno));
		return AGENT_FILE_BAD;
	}
	if ((d = enc_decoder_new(f->enc, f->bom)) == NULL) {
		agent_problem_line(&f->problems, f->name, 0, 0,
		    _("this system cannot convert the file's encoding"));
		return AGENT_FILE_BAD;
	}
	buf = xmalloc(AGENT_READ_CHUNK);
	ps.p = csv_new(agent_on_row, &ps);
	csv_set_registry(ps.p, &a->cfg.reg);
	csv_set_problem_fn(ps.p, agent_on_problem);
	csv_set_unique(ps.p, unique);
	while (rc == 0 && (n = fread(buf, 1, AGENT_READ_CHUNK, fp)) > 0)
		rc = enc_decode(d, buf, n, agent_on_text, &ps);
	if (rc == 0 && ferror(fp)) {
		agent_problem_line(
		    &f->problems, f->name, 0, 0, _("the file cannot be read"));
		rc = AGENT_FILE_BAD;
		goto parser_destroy;
	}
	if (rc == 0)
		rc = enc_decode_finish(d);
	if (rc == -1) {
		/* The bytes are not the encoding: say where, in the file's
		 * terms. */
		snprintf(msg, sizeof(msg),
		    _("the file is not valid %s here (bytes %s); save it as "
		      "CSV UTF-8, or set the agent's encoding"),
		    encoding_name(f->enc), enc_decoder_bad(d));
		csv_fail_here(ps.p, msg);
	}
	if (csv_finish(ps.p) == -1)
		rc = AGENT_FILE_BAD;
	else
		rc = 0;
	for (int c = 0; c < CSV_NCOLS; c++)
		f->cols[c] = csv_column(ps.p, c);
	*rows = csv_rows(ps.p);
	if (rc == AGENT_FILE_BAD && f->problems.n == 0)
		agent_problem_line(&f->problems, f->name, csv_error_line(ps.p),
		    csv_error_column(ps.p), csv_error(ps.p));
parser_destroy:
	csv_destroy(&ps.p);
	enc_decoder_destroy(&d);
	free(buf);
	return rc;
}

/* The source record of the rows gathered: the file, its columns, their
 * lines. A new buffer in *buf. */
static void
agent_stream_source(struct agent_stream *st, void **buf, size_t *len)
{
	Indicator__Store__ReportSource src =
	    INDICATOR__STORE__REPORT_SOURCE__INIT;
	uint32_t cols[CSV_NCOLS], *lines = xcalloc(st->n, sizeof(*lines));
	unsigned prev = 0;

	for (int c = 0; c < CSV_NCOLS; c++)
		cols[c] = st->f->cols[c];
	for (size_t k = 0; k < st->n; k++) {
		lines[k] = st->rows[k].line - prev;
		prev = st->rows[k].line;
	}
	src.file = (char *)st->f->name;
	src.n_columns = CSV_NCOLS;
	src.columns = cols;
	src.n_lines = st->n;
	src.lines = lines;
	src.mark = st->f->mark != NULL ? (char *)st->f->mark : "";
	src.encoding = (char *)encoding_name(st->f->enc);
	src.parts = st->parts;
	*len = indicator__store__report_source__get_packed_size(&src);
	*buf = xmalloc(*len > 0 ? *len : 1);
	indicator__store__report_source__pack(&src, *buf);
	free(lines);
}

/* Packs the rows gathered as the next report (outbox_build_fn). */
static int
agent_build_report(
    uint64_t epoch, uint64_t seq, size_t i, void **buf, size_t *len, void *arg)
{
	struct agent_stream *st = arg;
	Indicator__Observation *obs = xcalloc(st->n, sizeof(*obs));
	Indicator__Observation **obsp = xcalloc(st->n, sizeof(*obsp));
	Indicator__Report report = INDICATOR__REPORT__INIT;
	Indicator__AgentMessage msg = INDICATOR__AGENT_MESSAGE__INIT;

	for (size_t k = 0; k < st->n; k++) {
		struct csv_row *row = &st->rows[k];

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
	report.agent_id = (char *)st->a->cfg.id;
	report.district = (char *)st->a->cfg.district;
	report.epoch = epoch;
	report.seq = seq;
	report.sent_at_ms = st->sent_at_ms;
	report.n_observations = st->n;
	report.observations = obsp;
	if (st->parts > 1) {
		report.file_id = st->file_id;
		report.part = (uint32_t)st->reports + 1;
		report.parts = st->parts;
	}
	msg.body_case = INDICATOR__AGENT_MESSAGE__BODY_REPORT;
	msg.report = &report;

	*len = indicator__agent_message__get_packed_size(&msg);
	*buf = xmalloc(*len);
	indicator__agent_message__pack(&msg, *buf);
	free(obsp);
	free(obs);
	if (i == 0)
		st->first_seq = seq;
	st->last_seq = seq;
	return 0;
}

/* Puts the rows gathered into the batch as one report, with its source. */
static int
agent_stream_flush(struct agent_stream *st)
{
	void *src;
	size_t srclen;
	int rc;

	if (st->n == 0)
		return 0;
	agent_stream_source(st, &src, &srclen);
	rc = outbox_batch_add_source(
	    st->batch, agent_build_report, st, src, srclen);
	free(src);
	if (rc == -1) {
		st->failed = true;
		return -1;
	}
	st->reports++;
	st->n = 0;
	return 0;
}

static int
agent_stream_row(const struct csv_row *row, void *arg)
{
	struct agent_stream *st = arg;

	st->rows[st->n++] = *row;
	if (st->n < st->a->cfg.report_size)
		return 0;
	return agent_stream_flush(st);
}

/* A file id for the daemon: random, never 0. */
static uint64_t
agent_file_id(void)
{
	uint64_t id = 0;

	while (id == 0)
		if (getrandom(&id, sizeof(id), 0) != sizeof(id))
			id = (uint64_t)agent_wall_ms() ^ (uint64_t)getpid()
							     << 32;
	return id;
}

/* The second pass, into one outbox batch: 0, -1 (the outbox failed) or
 * AGENT_FILE_BAD (the file changed since the first pass, or is too big).
 * rows: what the first pass counted, which makes the parts. */
static int
agent_stream_file(
    struct agent *a, FILE *fp, struct agent_file *f, unsigned long rows)
{
	struct agent_stream st;
	unsigned long parts =
	    (rows + a->cfg.report_size - 1) / a->cfg.report_size;
	int rc;

	if (parts > IND_FILE_PARTS_MAX) {
		agent_problem_line(&f->problems, f->name, 0, 0,
		    _("the file makes more reports than one file may (its "
		      "rows in reports of report_size rows); split it into "
		      "smaller files"));
		return AGENT_FILE_BAD;
	}
	memset(&st, 0, sizeof(st));
	st.a = a;
	st.f = f;
	st.sent_at_ms = agent_wall_ms();
	st.parts = (uint32_t)parts;
	if (parts > 1)
		st.file_id = agent_file_id();
	if ((st.batch = outbox_batch_begin(a->ob)) == NULL)
		return -1;
	st.rows = xcalloc(a->cfg.report_size, sizeof(*st.rows));
	/* The first pass found no key twice: this one keeps no keys. */
	rc =
	    agent_csv_pass(a, fp, f, agent_stream_row, &st, NULL, false, &rows);
	if (rc == 0)
		agent_stream_flush(&st);
	if (st.failed)
		rc = -1;
	if (rc == 0 && st.reports != parts) {
		agent_problem_line(&f->problems, f->name, 0, 0,
		    _("the file changed while it was read; save it again"));
		rc = AGENT_FILE_BAD;
	}
	if (rc == 0 && f->mark != NULL)
		rc = outbox_batch_mark(st.batch, f->mark, f->mark_len);
	if (rc == 0) {
		rc = outbox_batch_commit(&st.batch);
		f->observations = rows;
		f->reports = st.reports;
		f->first_seq = st.first_seq;
		f->last_seq = st.last_seq;
	}
	outbox_batch_abort(&st.batch);
	free(st.rows);
	return rc;
}

/*
 * Enqueues the open file fp all or nothing. Returns 0; AGENT_FILE_BAD with
 * f->problems set; or -1 when the outbox failed (logged).
 */
static int
agent_enqueue_fp(struct agent *a, FILE *fp, struct agent_file *f)
{
	unsigned long rows = 0;
	int rc;

	if ((rc = agent_sniff(a, fp, f)) != 0)
		return rc;
	rc = agent_csv_pass(a, fp, f, NULL, NULL, NULL, true, &rows);
	if (rc != 0 || rows == 0)
		return rc;
	return agent_stream_file(a, fp, f, rows);
}

/* The last line about a refused file, after its problems. */
static void
agent_refused_line(struct agent_lines *l, const char *name)
{
	agent_lines_add(l,
	    _("%s: refused: nothing from this file is sent; correct the "
	      "lines above and send the whole file again"),
	    name);
}

int
agent_read_file(struct agent *a, const char *path, const char *name,
    agent_row_fn fn, void *arg, unsigned cols[CSV_NCOLS],
    struct agent_lines *problems)
{
	struct agent_file f;
	unsigned long rows = 0;
	FILE *fp;
	int rc;

	memset(&f, 0, sizeof(f));
	f.path = path;
	f.name = name;
	if ((fp = fopen(path, "rb")) == NULL) {
		agent_problem_line(problems, name, 0, 0, strerror(errno));
		return 1;
	}
	f.problems = *problems;
	rc = agent_sniff(a, fp, &f);
	if (rc == 0)
		rc = agent_csv_pass(a, fp, &f, fn, arg, cols, true, &rows);
	fclose(fp);
	*problems = f.problems;
	memcpy(cols, f.cols, sizeof(f.cols));
	return rc == 0 ? 0 : 1;
}

int
agent_enqueue_file(struct agent *a, const char *path)
{
	struct agent_file f;
	FILE *fp;
	int rc;

	memset(&f, 0, sizeof(f));
	f.path = path;
	f.name = path;
	if ((fp = fopen(path, "rb")) == NULL) {
		log_error("agent: %s: %s", path, strerror(errno));
		return -1;
	}
	rc = agent_enqueue_fp(a, fp, &f);
	fclose(fp);
	if (rc == AGENT_FILE_BAD) {
		agent_refused_line(&f.problems, path);
		for (size_t i = 0; i < f.problems.n; i++)
			log_error("agent: %s", f.problems.v[i]);
		agent_lines_free(&f.problems);
		return -1;
	}
	agent_lines_free(&f.problems);
	if (rc == -1) {
		log_error("agent: %s: could not store its reports in the "
			  "outbox; nothing from it is sent",
		    path);
		return -1;
	}
	if (f.reports == 0)
		log_debug("agent: %s: no rows", path);
	else
		log_debug(
		    "agent: %s: %lu observations in %zu reports, seq %" PRIu64
		    "-%" PRIu64,
		    path, f.observations, f.reports, f.first_seq, f.last_seq);
	return 0;
}

/* The drop directory. */

/* Only NAME.csv is taken, so writers can use .NAME.csv or NAME.tmp while
 * they write and rename when done. */
static bool
agent_drop_wanted(const char *name)
{
	size_t len = strlen(name);

	return name[0] != '.' && len > 4 && strcmp(name + len - 4, ".csv") == 0;
}

/* Opens (creating) sub under the drop directory. */
static int
agent_drop_subdir(struct agent_drop *d, const char *sub)
{
	int fd;

	if (mkdirat(d->dirfd, sub, 0777) == -1 && errno != EEXIST) {
		log_error("agent: mkdir %s/%s: %s", d->a->cfg.drop_dir, sub,
		    strerror(errno));
		return -1;
	}
	fd = openat(d->dirfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		log_error("agent: %s/%s: %s", d->a->cfg.drop_dir, sub,
		    strerror(errno));
	return fd;
}

struct agent_drop *
agent_drop_open(struct agent *a)
{
	struct agent_drop *d = xcalloc(1, sizeof(*d));
	const char *dir = a->cfg.drop_dir;

	d->a = a;
	d->dirfd = d->donefd = d->rejfd = d->sendfd = d->ino = -1;
	if (mkdir(dir, 0777) == -1 && errno != EEXIST) {
		log_error("agent: mkdir %s: %s", dir, strerror(errno));
		goto drop_close;
	}
	if ((d->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		log_error("agent: %s: %s", dir, strerror(errno));
		goto drop_close;
	}
	if ((d->donefd = agent_drop_subdir(d, "done")) == -1 ||
	    (d->rejfd = agent_drop_subdir(d, "rejected")) == -1 ||
	    (d->sendfd = agent_drop_subdir(d, "sending")) == -1)
		goto drop_close;
	if ((d->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1 ||
	    inotify_add_watch(
		d->ino, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_ONLYDIR) == -1) {
		log_error("agent: inotify %s: %s", dir, strerror(errno));
		goto drop_close;
	}
	return d;
drop_close:
	agent_drop_close(&d);
	return NULL;
}

void
agent_drop_close(struct agent_drop **dp)
{
	struct agent_drop *d;

	if (dp == NULL || (d = *dp) == NULL)
		return;
	if (d->ino != -1)
		close(d->ino);
	if (d->rejfd != -1)
		close(d->rejfd);
	if (d->sendfd != -1)
		close(d->sendfd);
	if (d->donefd != -1)
		close(d->donefd);
	if (d->dirfd != -1)
		close(d->dirfd);
	free(d);
	*dp = NULL;
}

int
agent_drop_fd(const struct agent_drop *d)
{
	return d->ino;
}

/*
 * Moves name from the directory fromdir into the subdirectory todir
 * without replacing anything there: base, else base.1, base.2... (base is
 * the file's name as dropped). The name used goes to final. 0 or -1,
 * logged.
 */
static int
agent_drop_move_from(struct agent_drop *d, int fromdir, const char *name,
    const char *base, int todir, const char *sub, char *final, size_t finallen)
{
	struct stat sb;

	for (unsigned i = 0; i < AGENT_CLASH_MAX; i++) {
		if (i == 0)
			snprintf(final, finallen, "%s", base);
		else
			snprintf(final, finallen, "%s.%u", base, i);
		if (renameat2(fromdir, name, todir, final, RENAME_NOREPLACE) ==
		    0)
			return 0;
		if (errno == EEXIST)
			continue;
		if (errno != EINVAL && errno != ENOSYS)
			break;
		/* No RENAME_NOREPLACE here: look first. The agent is the
		 * only one writing in done/ and rejected/. */
		if (fstatat(todir, final, &sb, AT_SYMLINK_NOFOLLOW) == 0)
			continue;
		if (renameat(fromdir, name, todir, final) == 0)
			return 0;
		break;
	}
	log_error("agent: %s: cannot move it to %s/%s: %s", name,
	    d->a->cfg.drop_dir, sub,
	    errno == EEXIST ? "too many files of that name" : strerror(errno));
	return -1;
}

/* Moves name out of the drop directory into todir (done/, rejected/). */
static int
agent_drop_move(struct agent_drop *d, const char *name, int todir,
    const char *sub, char *final, size_t finallen)
{
	return agent_drop_move_from(
	    d, d->dirfd, name, name, todir, sub, final, finallen);
}

/* Writes lines to rejected/NAME.err, or adds them to it (append). */
static void
agent_drop_err(struct agent_drop *d, const char *final,
    const struct agent_lines *lines, bool append)
{
	char err[NAME_MAX + 32];
	FILE *fp;
	int fd;

	/* A new .err appears whole: written under a hidden name, then
	 * renamed. */
	snprintf(err, sizeof(err), append ? "%s.err" : ".%s.err.tmp", final);
	fd = openat(d->rejfd, err,
	    O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC),
	    0666);
	if (fd == -1 || (fp = fdopen(fd, "w")) == NULL) {
		log_error("agent: %s/rejected/%s: %s", d->a->cfg.drop_dir, err,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return;
	}
	for (size_t i = 0; i < lines->n; i++)
		fprintf(fp, "%s\n", lines->v[i]);
	if (fclose(fp) == EOF) {
		log_error("agent: %s/rejected/%s: %s", d->a->cfg.drop_dir, err,
		    strerror(errno));
		return;
	}
	if (!append) {
		char to[NAME_MAX + 32];

		snprintf(to, sizeof(to), "%s.err", final);
		if (renameat(d->rejfd, err, d->rejfd, to) == -1)
			log_error("agent: %s/rejected/%s: %s",
			    d->a->cfg.drop_dir, to, strerror(errno));
	}
}

/* Moves a bad file to rejected/ and writes why next to it. */
static void
agent_drop_reject(
    struct agent_drop *d, const char *name, struct agent_lines *problems)
{
	char final[NAME_MAX + 16];

	agent_refused_line(problems, name);
	for (size_t i = 0; i < problems->n; i++)
		log_warn("agent: %s", problems->v[i]);
	if (agent_drop_move(
		d, name, d->rejfd, "rejected", final, sizeof(final)) == -1)
		return;
	agent_drop_err(d, final, problems, false);
	log_warn("agent: %s: moved to rejected/%s", name, final);
	d->a->files_rejected++;
}

/* The mark of the file name, as agent_drop_take() makes it, from sb. */
static void
agent_drop_mark(char *key, size_t len, const char *name, const struct stat *sb)
{
	snprintf(key, len, "file %s size %jd mtime %jd.%09ld ino %ju dev %ju",
	    name, (intmax_t)sb->st_size, (intmax_t)sb->st_mtim.tv_sec,
	    sb->st_mtim.tv_nsec, (uintmax_t)sb->st_ino, (uintmax_t)sb->st_dev);
}

/*
 * Finds the file of mark (dropped as name) in the subdirectory dirfd:
 * name or name.N, with the same identity. Its name there goes to found.
 */
static bool
agent_drop_find(
    int dirfd, const char *name, const char *mark, char *found, size_t len)
{
	size_t n = strlen(name);
	char key[OUTBOX_MARK_MAX];
	struct dirent *de;
	struct stat sb;
	bool hit = false;
	DIR *dir;
	int fd;

	if ((fd = dup(dirfd)) == -1 || (dir = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return false;
	}
	rewinddir(dir);
	while (!hit && (de = readdir(dir)) != NULL) {
		const char *rest = de->d_name + n;

		if (strncmp(de->d_name, name, n) != 0 ||
		    (*rest != '\0' && (*rest != '.' ||
					  strspn(rest + 1, "0123456789") !=
					      strlen(rest + 1) ||
					  rest[1] == '\0')))
			continue;
		if (fstatat(dirfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) ==
			-1 ||
		    !S_ISREG(sb.st_mode))
			continue;
		agent_drop_mark(key, sizeof(key), name, &sb);
		if (strcmp(key, mark) == 0) {
			snprintf(found, len, "%s", de->d_name);
			hit = true;
		}
	}
	closedir(dir);
	return hit;
}

void
agent_drop_rejected(struct agent_drop *d, const char *name, const char *mark,
    const struct agent_lines *lines)
{
	char where[NAME_MAX + 16], final[NAME_MAX + 16];
	const char *sub = "done";
	int from = d->donefd;

	if (agent_drop_find(d->rejfd, name, mark, where, sizeof(where))) {
		agent_drop_err(d, where, lines, true);
		log_warn("agent: %s: the reasons are added to rejected/%s.err",
		    name, where);
		return;
	}
	/* In sending/ until the daemon decides; in done/ when an agent
	 * from before file transactions enqueued it. */
	if (agent_drop_find(d->sendfd, name, mark, where, sizeof(where))) {
		from = d->sendfd;
		sub = "sending";
	} else if (!agent_drop_find(
		       d->donefd, name, mark, where, sizeof(where))) {
		log_warn("agent: %s: no longer in sending/: the reasons are "
			 "in the log only",
		    name);
		return;
	}
	if (agent_drop_move_from(d, from, where, name, d->rejfd, "rejected",
		final, sizeof(final)) == -1)
		return;
	agent_drop_err(d, final, lines, false);
	log_warn("agent: %s: moved from %s/%s to rejected/%s", name, sub, where,
	    final);
	d->a->files_rejected++;
}

void
agent_drop_stored(struct agent_drop *d, const char *name, const char *mark)
{
	char where[NAME_MAX + 16], final[NAME_MAX + 16];

	if (!agent_drop_find(d->sendfd, name, mark, where, sizeof(where))) {
		log_debug(
		    "agent: %s: stored; not in sending/ (moved already)", name);
		return;
	}
	if (agent_drop_move_from(d, d->sendfd, where, name, d->donefd, "done",
		final, sizeof(final)) == -1)
		return;
	log_info("agent: %s: stored whole; moved to done/%s", name, final);
	d->a->files_taken++;
}

/*
 * Moves an enqueued file to sending/ (to done/ when it had no rows: there
 * is nothing to wait for), then forgets its mark. It moves on when the
 * daemon has answered its last report (agent_drop_stored(),
 * agent_drop_rejected()).
 */
static int
agent_drop_sent(struct agent_drop *d, const char *name, const char *key,
    size_t key_len, const struct agent_file *f)
{
	char final[NAME_MAX + 16];
	bool empty = f != NULL && f->reports == 0;

	if (agent_drop_move(d, name, empty ? d->donefd : d->sendfd,
		empty ? "done" : "sending", final, sizeof(final)) == -1)
		return 0;
	if (f == NULL)
		log_info("agent: %s: enqueued before a restart; moved to "
			 "sending/%s",
		    name, final);
	else if (empty)
		log_info("agent: %s: no rows; moved to done/%s", name, final);
	else
		log_info("agent: %s: %lu observations in %zu reports, "
			 "seq %" PRIu64 "-%" PRIu64 "; moved to sending/%s",
		    name, f->observations, f->reports, f->first_seq,
		    f->last_seq, final);
	if (empty)
		d->a->files_taken++;
	if (key != NULL)
		return outbox_unmark(d->a->ob, key, key_len);
	return 0;
}

/*
 * Takes one file of the drop directory. Returns 1 when it enqueued
 * reports, 0 when not (not a file for us, gone, bad, already enqueued), -1
 * on an outbox error.
 */
static int
agent_drop_take(struct agent_drop *d, const char *name)
{
	struct agent_file f;
	char key[OUTBOX_MARK_MAX];
	struct stat sb;
	size_t key_len;
	bool marked;
	FILE *fp;
	int fd, rc;

	if (!agent_drop_wanted(name))
		return 0;
	fd = openat(d->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		/* Taken already, or not a regular file. */
		log_debug("agent: %s: skipped: %s", name, strerror(errno));
		return 0;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		log_debug("agent: %s: skipped: not a regular file", name);
		close(fd);
		return 0;
	}
	if ((fp = fdopen(fd, "rb")) == NULL) {
		log_error("agent: %s: %s", name, strerror(errno));
		close(fd);
		return 0;
	}
	agent_drop_mark(key, sizeof(key), name, &sb);
	key_len = strlen(key);
	if (outbox_marked(d->a->ob, key, key_len, &marked) == -1) {
		rc = -1;
		goto file_close;
	}
	if (marked) {
		fclose(fp);
		return agent_drop_sent(d, name, key, key_len, NULL);
	}

	memset(&f, 0, sizeof(f));
	f.path = name;
	f.name = name;
	f.mark = key;
	f.mark_len = key_len;
	rc = agent_enqueue_fp(d->a, fp, &f);
	fclose(fp);
	if (rc == AGENT_FILE_BAD) {
		agent_drop_reject(d, name, &f.problems);
		agent_lines_free(&f.problems);
		return 0;
	}
	agent_lines_free(&f.problems);
	if (rc == -1) {
		log_error("agent: %s: could not store its reports in the "
			  "outbox; left in %s",
		    name, d->a->cfg.drop_dir);
		return -1;
	}
	if (agent_drop_sent(d, name, f.reports ? key : NULL, key_len, &f) == -1)
		return -1;
	return f.reports > 0 ? 1 : 0;
file_close:
	fclose(fp);
	return rc;
}

static int
agent_name_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

int
agent_drop_scan(struct agent_drop *d)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *dir;
	int fd, rc, taken = 0;

	if ((fd = dup(d->dirfd)) == -1 || (dir = fdopendir(fd)) == NULL) {
		log_error("agent: %s: %s", d->a->cfg.drop_dir, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	rewinddir(dir);
	while ((de = readdir(dir)) != NULL) {
		if (!agent_drop_wanted(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	closedir(dir);
	if (n > 0)
		qsort(names, n, sizeof(*names), agent_name_cmp);
	for (size_t i = 0; i < n && !agent_stop && taken != -1; i++) {
		if ((rc = agent_drop_take(d, names[i])) == -1)
			taken = -1;
		else
			taken += rc;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	/* Every file enqueued before a stop and still here was moved: the
	 * marks left belong to files no longer here. */
	if (taken != -1 && !agent_stop &&
	    outbox_unmark(d->a->ob, NULL, 0) == -1)
		taken = -1;
	return taken;
}

/* renameat2(RENAME_NOREPLACE), or a look first where the file system
 * has no such flag (the agent is the only writer of its subdirectories). */
static int
agent_rename_noreplace(int fromdir, const char *from, int todir, const char *to)
{
	struct stat sb;

	if (renameat2(fromdir, from, todir, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (fstatat(todir, to, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		errno = EEXIST;
		return -1;
	}
	return renameat(fromdir, from, todir, to);
}

/* The pending reports' seqs, for agent_drop_orphans(). */
struct seq_list {
	uint64_t *v;
	size_t n, cap;
};

static int
agent_seq_collect(uint64_t seq, const void *buf, size_t len, void *arg)
{
	struct seq_list *l = arg;

	(void)buf;
	(void)len;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = seq;
	return 0;
}

/* name as it was dropped: NAME.csv, or NAME.csv for NAME.csv.N (a clash
 * in sending/). Into out; false when name is neither. */
static bool
agent_drop_base(const char *name, char *out, size_t len)
{
	const char *dot = strrchr(name, '.');

	if (agent_drop_wanted(name)) {
		snprintf(out, len, "%s", name);
		return true;
	}
	if (dot == NULL || dot[1] == '\0' ||
	    strspn(dot + 1, "0123456789") != strlen(dot + 1) ||
	    (size_t)(dot - name) >= len)
		return false;
	memcpy(out, name, (size_t)(dot - name));
	out[dot - name] = '\0';
	return agent_drop_wanted(out);
}

int
agent_drop_orphans(struct agent_drop *d)
{
	struct seq_list seqs = { 0 };
	char **marks = NULL, **names = NULL;
	size_t nmarks = 0, n = 0, cap = 0;
	struct dirent *de;
	int fd, moved = 0;
	DIR *dir;

	if ((fd = dup(d->sendfd)) == -1 || (dir = fdopendir(fd)) == NULL) {
		log_error("agent: %s/sending: %s", d->a->cfg.drop_dir,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	while ((de = readdir(dir)) != NULL) {
		char base[NAME_MAX + 1];

		if (!agent_drop_base(de->d_name, base, sizeof(base)))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	closedir(dir);
	if (n == 0)
		return 0;
	/* The identities of the files the outbox still has reports of. */
	if (outbox_scan(d->a->ob, 0, 0, agent_seq_collect, &seqs) == -1) {
		moved = -1;
		goto out;
	}
	marks = xcalloc(seqs.n + 1, sizeof(*marks));
	for (size_t i = 0; i < seqs.n; i++) {
		Indicator__Store__ReportSource *src;
		void *buf = NULL;
		size_t len = 0;

		if (outbox_source(d->a->ob, seqs.v[i], &buf, &len) != 0)
			continue;
		src = indicator__store__report_source__unpack(NULL, len, buf);
		free(buf);
		if (src == NULL)
			continue;
		if (src->mark[0] != '\0' &&
		    (nmarks == 0 || strcmp(marks[nmarks - 1], src->mark) != 0))
			marks[nmarks++] = xstrdup(src->mark);
		indicator__store__report_source__free_unpacked(src, NULL);
	}
	for (size_t i = 0; i < n; i++) {
		char base[NAME_MAX + 1], key[OUTBOX_MARK_MAX];
		struct stat sb;
		bool pending = false;

		if (!agent_drop_base(names[i], base, sizeof(base)) ||
		    fstatat(d->sendfd, names[i], &sb, AT_SYMLINK_NOFOLLOW) ==
			-1 ||
		    !S_ISREG(sb.st_mode))
			continue;
		agent_drop_mark(key, sizeof(key), base, &sb);
		for (size_t j = 0; j < nmarks && !pending; j++)
			pending = strcmp(marks[j], key) == 0;
		if (pending)
			continue;
		/* The outbox holds nothing of it: it was replaced (a new
		 * epoch) while the file waited. Whether the daemon stored it
		 * is unknown here: it is sent again, whole, as a file of its
		 * own (at worst its values are stored again as a new
		 * revision, which history shows), never left unsent. */
		if (agent_rename_noreplace(
			d->sendfd, names[i], d->dirfd, base) == -1) {
			log_warn(
			    "agent: sending/%s: the outbox holds no report "
			    "of it, and it cannot go back to %s/%s to be "
			    "sent again: %s",
			    names[i], d->a->cfg.drop_dir, base,
			    errno == EEXIST ? "a file of that name is there"
					    : strerror(errno));
			continue;
		}
		log_warn("agent: sending/%s: the outbox holds no report of it "
			 "(the outbox was replaced while it waited): moved "
			 "back to %s/%s to be sent again",
		    names[i], d->a->cfg.drop_dir, base);
		moved++;
	}
out:
	for (size_t i = 0; i < nmarks; i++)
		free(marks[i]);
	free(marks);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(seqs.v);
	return moved;
}

int
agent_drop_events(struct agent_drop *d)
{
	char buf[8192]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	int rc, taken = 0;
	bool rescan = false;
	ssize_t len = 0;

	while (!agent_stop && (len = read(d->ino, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + len; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->mask & IN_Q_OVERFLOW)
				rescan = true;
			if (ev->mask & IN_IGNORED)
				log_warn("agent: %s: no longer watched "
					 "(removed?)",
				    d->a->cfg.drop_dir);
			if (ev->len == 0 || (ev->mask & IN_ISDIR) || agent_stop)
				continue;
			if ((rc = agent_drop_take(d, ev->name)) == -1)
				return -1;
			taken += rc;
		}
	}
	if (len == -1 && errno != EAGAIN && errno != EINTR) {
		log_error("agent: inotify: %s", strerror(errno));
		return -1;
	}
	if (rescan && !agent_stop) {
		log_debug("agent: inotify queue overflowed: rescanning");
		if ((rc = agent_drop_scan(d)) == -1)
			return -1;
		taken += rc;
	}
	return taken;
}
