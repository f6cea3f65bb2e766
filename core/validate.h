/*
 * The rules that decide whether a report is valid: a pure module, no I/O,
 * no logging, callable from tests with plain structs. Every failure has a
 * stable code from the contract (docs/protocol.md, "Error codes").
 */
#ifndef INDICATOR_VALIDATE_H
#define INDICATOR_VALIDATE_H

#include <limits.h> /* protoc-c's header needs INT_MAX */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "indicator.pb-c.h"
#include "registry.h"

#define VALIDATE_MSG_MAX 200

/* A calendar date in the daemon's configured time zone. */
struct civil_date {
	int year;
	int month; /* 1-12 */
	int day; /* 1-31 */
};

/* A NUL byte that the wire carried in a string field of an observation. */
struct wire_nul {
	uint32_t index; /* position in Report.observations */
	uint32_t field; /* the field's number in Observation */
};

struct obs_error {
	uint32_t index; /* position in Report.observations */
	const char *code; /* static string, e.g. "unknown_industry" */
	char message[VALIDATE_MSG_MAX];
};

/* The outcome of validate_report(). Initialise with validation_init(), free
 * with validation_free(); reusable between reports. */
struct validation {
	const char *code; /* report-level code, or NULL */
	char message[VALIDATE_MSG_MAX];
	struct obs_error *errors; /* every problem of every observation */
	size_t nerrors;
	size_t cap;
	double *values; /* canonical value of each observation */
	const struct reg_metric **metrics; /* metric of each observation */
	size_t nvalues_cap;
	/* Set by validate_wire() for the message about to be validated, read
	 * by validate_sender() and validate_report(), cleared by the latter:
	 * where the wire held a NUL byte in a string. */
	bool nul_agent_id; /* in an agent_id */
	bool nul_district;
	bool nul_other; /* in a field the decoded message does not keep */
	struct wire_nul *nul_obs; /* in observations, in order */
	size_t nnul_obs;
	size_t nul_obs_cap;
};

/* validate.c */

/*
 * Every code a REJECTED answer can carry, in the order of docs/protocol.md's
 * table and then its additions (malformed ... duplicate_key, bad_status,
 * and the file transactions' bad_file, file_rejected, file_unknown,
 * file_too_large), and every code of a RETRY_LATER answer (out_of_order,
 * rate_limited, store_full, store_error, busy). The metrics count answers by
 * these.
 */
#define VALIDATE_REJECT_CODES 25
#define VALIDATE_RETRY_CODES 5
extern const char *const validate_reject_codes[VALIDATE_REJECT_CODES];
extern const char *const validate_retry_codes[VALIDATE_RETRY_CODES];
/* Where code is among the n codes of list, or -1. */
int validate_code_index(const char *const list[], size_t n, const char *code);

void validation_init(struct validation *v);
void validation_free(struct validation *v);

/*
 * Reads the packed AgentMessage (len bytes at buf) that v is about to
 * validate, for what its decoded form cannot show: string fields holding a
 * NUL byte. protobuf-c's strings are NUL-terminated, so an industry
 * "photonics\0EVIL" decodes as "photonics" and an agent_id "a\0b" as
 * "a": without this, the string cut at its NUL would pass for another.
 * Records in v where each NUL is (an agent_id, the district, an
 * observation's field, or a field the decoded message does not keep: an
 * earlier occurrence of its body), for validate_sender() and
 * validate_report(). Call it after a successful unpack of the same bytes;
 * a message built in memory needs no call (its strings hold no NUL).
 */
void validate_wire(struct validation *v, const uint8_t *buf, size_t len);
/* What validate_wire() records for a message whose strings hold no NUL,
 * without reading it: for a caller that has looked at the bytes already. */
void validate_wire_none(struct validation *v);

/*
 * True when no string field of the packed message (len bytes at buf, of
 * type desc, sub-messages included) holds a NUL byte, so that its decoded
 * strings are exactly what was sent. For messages that validate_wire()
 * does not place, such as a SnapshotRequest.
 */
bool validate_wire_exact(
    const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len);

/*
 * Checks who sent a report or heartbeat, before anything else: agent_id
 * present, valid UTF-8 without control characters (C0, DEL, C1) or a NUL
 * on the wire (wire: the validation validate_wire() filled, or NULL), and
 * at most limits->max_agent_id bytes ("bad_agent_id"); no NUL in a string
 * the decoded message does not keep ("bad_string"); epoch not 0
 * ("bad_epoch"); and, when check_seq is true, seq not 0 ("bad_seq"). These
 * consume no seq. Returns NULL, or the code with a message in msg.
 */
const char *validate_sender(const struct config_limits *limits,
    const char *agent_id, uint64_t epoch, uint64_t seq, bool check_seq,
    const struct validation *wire, char *msg, size_t msglen);

/*
 * Checks a report's content against the registry and limits, with today
 * being the current date in the configured time zone. Every string must be
 * valid UTF-8 within its length limit and hold no NUL (as validate_wire()
 * found it) and no control character (C0, DEL, C1; a note may hold tabs):
 * else "bad_string". Report-level problems (unknown_district,
 * empty_report, too_many_observations, bad_string for the district) go to
 * v->code; every problem of every observation to v->errors. Clears what
 * validate_wire() recorded. When the report is valid, v->values[i] holds
 * observation i's value in its metric's canonical unit and v->metrics[i] its
 * metric. Returns 0 when the report is valid, 1 when it is not.
 */
int validate_report(const struct registry *reg,
    const struct config_limits *limits, const Indicator__Report *r,
    const struct civil_date *today, struct validation *v);
/*
 * The same for a report whose observations were counted on the wire
 * (counted of them) and not decoded, because there were more than
 * limits->max_observations: r holds the rest of the report and no
 * observation, and the answer is too_many_observations (after the
 * district's checks) without the cost of decoding them. counted 0 (or
 * r->n_observations) is validate_report().
 */
int validate_report_counted(const struct registry *reg,
    const struct config_limits *limits, const Indicator__Report *r,
    size_t counted, const struct civil_date *today, struct validation *v);

#endif
