/*
 * libFuzzer target: the daemon's decode and validate path on outside bytes,
 * as daemon/ingest.c runs it (msg_recv, msg_prepare, msg_reject): unpack an
 * AgentMessage, read its strings on the wire (validate_wire), check the
 * sender, validate a report against the built-in registry, and pack the
 * Ack the daemon would send. An accepted report must hold no NUL and no
 * control character (a note's tab aside) in any string. The Ack must pack to
 * the size it announced, decode again, and carry only valid UTF-8 in its
 * strings (proto3 clients refuse anything else).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "pbwire.h"
#include "utf8.h"
#include "validate.h"
#include "xmalloc.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct config cfg;
static const struct civil_date today = { 2025, 9, 15 };

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	(void)argc;
	(void)argv;
	if (config_load(&cfg, NULL, err, sizeof(err)) == -1) {
		fprintf(stderr, "fuzz_ingest: %s\n", err);
		abort();
	}
	return 0;
}

static void
check_string(const char *what, const char *s)
{
	if (s == NULL || !utf8_valid(s, strlen(s))) {
		fprintf(
		    stderr, "fuzz_ingest: Ack %s is not valid UTF-8\n", what);
		abort();
	}
}

/* Packs ack as msg_set_ack() does, then checks what a client would get. */
static void
ack_check(const Indicator__Ack *ack)
{
	size_t len = indicator__ack__get_packed_size(ack);
	uint8_t *buf = xmalloc(len);
	Indicator__Ack *back;

	if (indicator__ack__pack(ack, buf) != len) {
		fprintf(stderr, "fuzz_ingest: Ack packed to another size\n");
		abort();
	}
	check_string("code", ack->code);
	check_string("message", ack->message);
	for (size_t i = 0; i < ack->n_errors; i++) {
		check_string("error code", ack->errors[i]->code);
		check_string("error message", ack->errors[i]->message);
	}
	back = indicator__ack__unpack(NULL, len, buf);
	if (back == NULL || back->n_errors != ack->n_errors ||
	    back->status != ack->status || back->seq != ack->seq) {
		fprintf(stderr, "fuzz_ingest: Ack does not decode back\n");
		abort();
	}
	indicator__ack__free_unpacked(back, NULL);
	free(buf);
}

/* The answer to a refused sender or a malformed message (msg_answer). */
static void
answer(uint64_t seq, const char *code, const char *message)
{
	Indicator__Ack ack = INDICATOR__ACK__INIT;

	ack.status = INDICATOR__ACK_STATUS__REJECTED;
	ack.seq = seq;
	ack.code = (char *)code;
	ack.message = (char *)message;
	ack_check(&ack);
}

/* The answer to a report that failed validation (msg_reject). */
static void
reject(const Indicator__Report *r, const struct validation *v)
{
	Indicator__Ack ack = INDICATOR__ACK__INIT;
	Indicator__ObservationError *errs, **ptrs;
	char summary[96];
	size_t bad = 0;

	errs = xcalloc(v->nerrors, sizeof(*errs));
	ptrs = xcalloc(v->nerrors, sizeof(*ptrs));
	for (size_t i = 0; i < v->nerrors; i++) {
		indicator__observation_error__init(&errs[i]);
		if (v->errors[i].index >= r->n_observations) {
			fprintf(stderr, "fuzz_ingest: error index %u of %zu\n",
			    v->errors[i].index, r->n_observations);
			abort();
		}
		errs[i].index = v->errors[i].index;
		errs[i].code = (char *)v->errors[i].code;
		errs[i].message = (char *)v->errors[i].message;
		ptrs[i] = &errs[i];
		if (i == 0 || v->errors[i].index != v->errors[i - 1].index)
			bad++;
	}
	ack.status = INDICATOR__ACK_STATUS__REJECTED;
	ack.seq = r->seq;
	ack.expected_seq = r->seq + 1;
	ack.code = (char *)(v->code ? v->code : "");
	if (v->code != NULL) {
		ack.message = (char *)v->message;
	} else {
		snprintf(summary, sizeof(summary),
		    "%zu of %zu observations invalid; nothing stored", bad,
		    r->n_observations);
		ack.message = summary;
	}
	ack.n_errors = v->nerrors;
	ack.errors = ptrs;
	ack_check(&ack);
	free(ptrs);
	free(errs);
}

/* A valid report: every observation has its value and metric. */
static void
accepted(const Indicator__Report *r, const struct validation *v)
{
	for (size_t i = 0; i < r->n_observations; i++)
		if (v->metrics[i] == NULL || v->values[i] < 0 ||
		    v->values[i] > v->metrics[i]->max) {
			fprintf(stderr,
			    "fuzz_ingest: observation %zu accepted without "
			    "a sound value\n",
			    i);
			abort();
		}
}

/* An accepted message's strings must be exactly what was sent: no NUL on
 * the wire (which the decoded string would hide). */
static int
wire_nul(const struct pbwire_path *path, const ProtobufCFieldDescriptor *field,
    const uint8_t *data, size_t len, void *arg)
{
	(void)path;
	(void)arg;
	if (memchr(data, '\0', len) != NULL) {
		fprintf(stderr,
		    "fuzz_ingest: accepted with a NUL in a string (%s)\n",
		    field->name);
		abort();
	}
	return 0;
}

/* And no control character but a note's tab. */
static void
printable(const char *what, const char *s, bool tab_ok)
{
	if (utf8_control(s, strlen(s), tab_ok) != -1) {
		fprintf(stderr,
		    "fuzz_ingest: accepted with a control character in %s\n",
		    what);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Indicator__AgentMessage *am;
	Indicator__Report *r;
	Indicator__Heartbeat *hb;
	struct validation v;
	const char *code;
	char why[VALIDATE_MSG_MAX];

	am = indicator__agent_message__unpack(NULL, size, data);
	if (am == NULL) {
		answer(0, "malformed",
		    "the frame does not decode as an AgentMessage");
		return 0;
	}
	validation_init(&v);
	validate_wire(&v, data, size);
	switch (am->body_case) {
	case INDICATOR__AGENT_MESSAGE__BODY_HEARTBEAT:
		hb = am->heartbeat;
		code = validate_sender(&cfg.limits, hb->agent_id, hb->epoch, 0,
		    false, &v, why, sizeof(why));
		if (code != NULL)
			answer(0, code, why);
		else
			printable("agent_id", hb->agent_id, false);
		break;
	case INDICATOR__AGENT_MESSAGE__BODY_REPORT:
		r = am->report;
		code = validate_sender(&cfg.limits, r->agent_id, r->epoch,
		    r->seq, true, &v, why, sizeof(why));
		if (code != NULL) {
			answer(r->seq, code, why);
			break;
		}
		if (validate_report(&cfg.reg, &cfg.limits, r, &today, &v) !=
		    0) {
			reject(r, &v);
			break;
		}
		accepted(r, &v);
		pbwire_strings(&indicator__agent_message__descriptor, data,
		    size, wire_nul, NULL);
		printable("agent_id", r->agent_id, false);
		printable("district", r->district, false);
		for (size_t i = 0; i < r->n_observations; i++) {
			const Indicator__Observation *o = r->observations[i];

			printable("industry", o->industry, false);
			printable("metric", o->metric, false);
			printable("period", o->period, false);
			printable("unit", o->unit, false);
			printable("note", o->note, true);
		}
		break;
	default:
		answer(0, "malformed",
		    "the AgentMessage has neither a report nor a heartbeat");
		break;
	}
	validation_free(&v);
	indicator__agent_message__free_unpacked(am, NULL);
	return 0;
}
