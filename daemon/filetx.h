/*
 * File transactions (docs/protocol.md, "File transactions"): the reports
 * an agent made of one file carry file_id, part and parts; the daemon
 * stages each valid part durably, in the transaction that uses up its seq,
 * and stores every part together in the transaction that takes the last
 * one, or none of them. A file is refused whole, with every error of every
 * part. At most one file is open per (agent_id, epoch): its parts have
 * consecutive seqs, and the exactly-once rule takes seqs in order, so a
 * report that is not the open file's next part ends it (abandoned).
 *
 * The daemon's side only; the store keeps the state ("stage", "staged").
 */
#ifndef INDICATOR_FILETX_H
#define INDICATOR_FILETX_H

#include <stdbool.h>
#include <stdint.h>

#include "indicatord.h"

/* The most parts a file may have (a file of more is refused, bad_file),
 * and the most bytes of parts staged for it (file_too_large). */
#define FILETX_PARTS_MAX IND_FILE_PARTS_MAX
#define FILETX_BYTES_MAX IND_FILE_BYTES_MAX
/* An open file whose latest part came longer ago than this is discarded
 * (abandoned): its agent is gone, or lost its outbox. */
#define FILETX_TTL_MS (7LL * 24 * 3600 * 1000)
/* How often the daemon looks for such files. */
#define FILETX_EXPIRE_EVERY_MS (3600LL * 1000)

/* One error of a file's answer: an observation of a part. */
struct filetx_error {
	uint32_t part; /* 0: the report answered; else the part it is in */
	uint32_t index;
	const char *code; /* static */
	char message[VALIDATE_MSG_MAX];
};

/* What a part of a file is answered. */
struct filetx_answer {
	int status; /* Indicator__AckStatus */
	const char *code; /* report-level code, or NULL */
	char message[VALIDATE_MSG_MAX];
	struct filetx_error *errors;
	size_t nerrors;
	size_t cap;
	bool stored; /* ACCEPTED: every part was stored */
	/* The reports this answer decides, for the agent's counters: every
	 * part when the file is stored; this one and the staged parts it
	 * discards when the file is refused; 0 when staged. */
	uint32_t reports;
	uint64_t observations; /* stored, when stored */
};

/* filetx.c */

/* True when r carries any of the file fields (file_id, part, parts). */
bool filetx_is_part(const Indicator__Report *r);

/*
 * In the batch's write transaction t, for the report r whose seq is the
 * next one of its (agent_id, epoch), after validate_report() said
 * invalid (v its outcome):
 *  - a report that is not the open file's next part abandons that file
 *    (its staged parts deleted, counted);
 *  - a report without file fields is left to the caller: returns 0 with
 *    ans->status 0;
 *  - a part is decided: STAGED (kept in "staged"), ACCEPTED (the last
 *    part: every part stored through ingest_apply_report() with its own
 *    seq), or REJECTED (bad_file, file_rejected, file_unknown, or its own
 *    and the file's errors), in ans.
 * The caller packs ans into the Ack, keeps a rejection as for any report
 * and moves the seq on. 0, STORE_FULL or -1 (the transaction must be
 * aborted).
 */
int filetx_take(struct daemon *d, struct store_txn *t,
    const Indicator__Report *r, struct validation *v, bool invalid, int64_t now,
    uint64_t batch, struct filetx_answer *ans);

/* Fills ack from ans (its errors point into ans and the arrays given
 * back in *errs and *ptrs, which the caller frees after packing). */
void filetx_ack(const struct filetx_answer *ans, Indicator__Ack *ack,
    Indicator__ObservationError **errs, Indicator__ObservationError ***ptrs);

void filetx_answer_free(struct filetx_answer *ans);

/*
 * Counts the open files (count.files_open) and discards those whose
 * latest part is older than FILETX_TTL_MS, in one write transaction: at
 * start and every FILETX_EXPIRE_EVERY_MS. 0 or -1 (logged).
 */
int filetx_expire(struct daemon *d);

#endif
