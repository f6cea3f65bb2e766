/*
 * indicatorctl's private header: the state of one run, the helpers the
 * command files share, and the commands. Prototypes are grouped by the file
 * that defines them.
 */
#ifndef INDICATORCTL_H
#define INDICATORCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "indicator.pb-c.h"
#include "out.h"
#include "store.h"

#define EXIT_USAGE 2
#define CELL_MAX (IND_CODE_MAX + IND_NAME_MAX + 4)

struct ctl {
	const char *conf; /* -c, or NULL for the embedded default */
	const char *dir; /* -d, or NULL for the configured data_dir */
	struct config *cfg;
	struct store *store;
	struct store_txn *txn;
	bool json;
};

/* A long option of a command: --name VALUE, --name=VALUE or a --flag. */
struct opt {
	const char *name;
	const char **value; /* NULL for a flag */
	bool *flag;
};

/* indicatorctl.c */

/* Prints the usage to stderr; returns EXIT_USAGE. */
int usage(void);

/* One observation, or one aggregate under its topic, as a JSON line. */
void obs_json(FILE *f, const struct store_obs *o);
void aggregate_json(FILE *f, const char *topic, const Indicator__Aggregate *a);

/* Adds the header row head (n cells, English, marked N_()) to t, in the
 * language of the locale (log/intl.h): the tables' headers are for
 * people; JSON and CSV keep their English keys. */
void ctl_head(struct out_table *t, const char *const head[], size_t n);

/* "provisional", "final", "revised", or "unspecified". */
const char *status_name(int status);

/*
 * Parses a command's arguments (argv[0] is the command): the options in
 * opts (NULL-terminated, anywhere), --json (sets ctl->json), and exactly
 * npos positional arguments into pos. Returns 0, or -1 after a message on
 * stderr (a usage error).
 */
int args_parse(struct ctl *ctl, int argc, char *argv[], const struct opt *opts,
    char *pos[], size_t npos);

/* Loads the configuration (ctl->cfg), opens the store read-only
 * (ctl->store) and begins one read transaction (ctl->txn). Returns 0, or
 * -1 after a message; main() releases whatever was opened. */
int ctl_open(struct ctl *ctl);

/* ctl_ops.c: commands for the statistics office and the operator. Each
 * returns the process exit code. */

/* Which districts have not reported which metrics for a period: 0 when
 * all have, 1 when something is missing or on failure, 2 usage. */
int cmd_expected(struct ctl *ctl, int argc, char *argv[]);
/* Latest observations or aggregates as CSV (RFC 4180), JSON Lines, or the
 * agent's CSV input format. */
int cmd_export(struct ctl *ctl, int argc, char *argv[]);
/* A hot, compact copy of the store into a new or empty directory. */
int cmd_backup(struct ctl *ctl, int argc, char *argv[]);
/* Recomputes every aggregate from the observations and compares it with
 * the stored one: 0 when all agree, 1 on any difference or failure. */
int cmd_verify(struct ctl *ctl, int argc, char *argv[]);
/* Reads every record of the store and checks its checksum: 0 when none is
 * damaged, 1 when any is (each listed) or on failure. */
int cmd_scrub(struct ctl *ctl, int argc, char *argv[]);

/* ctl_xlsx.c: export --format xlsx. */

struct xlsx;
/* Starts a workbook at path with one worksheet of observations or
 * aggregates and its header row; names come from reg. NULL after a
 * message. */
struct xlsx *xlsx_open(
    const char *path, bool aggregates, const struct registry *reg);
/* Appends one row. 0, or -1 after a message (the worksheet is full, or
 * writing failed); later rows are refused too. */
int xlsx_obs(struct xlsx *x, const struct store_obs *o);
int xlsx_agg(struct xlsx *x, const char *topic, const Indicator__Aggregate *a);
/* Writes the file (removed again when anything failed or keep is false)
 * and frees x; sets *x to NULL. 0, or -1 after a message. */
int xlsx_close(struct xlsx **x, bool keep);

/* ctl_status.c: asks the running daemon (its control socket) for its
 * counters; 1 when it does not answer. */
int cmd_status(struct ctl *ctl, int argc, char *argv[]);
/* Has the running daemon reload its configuration file and prints the
 * outcome: 0 when it took the file, 1 when it refused it (its reason on
 * stderr; it keeps the old configuration) or did not answer. */
int cmd_reload(struct ctl *ctl, int argc, char *argv[]);
/* Sends req to the daemon's control socket (ctl->cfg loaded) and puts the
 * answer in reply. 0, or -1 when no daemon took the request within
 * connect_ms (said on stderr unless quiet) or answered within wait_ms. */
int ctl_ask(struct ctl *ctl, const char *req, int connect_ms, int wait_ms,
    char *reply, size_t len, bool quiet);
/* Asks a running daemon for a checkpoint, so that the store's tables hold
 * every acknowledged report; nothing when no daemon runs. */
void ctl_checkpoint(struct ctl *ctl);

/* ctl_keys.c: CURVE keys and the authorised-agents file. */

/* keygen NAME: NAME.key (secret, mode 0600) and NAME.pub, never over
 * existing files. */
int cmd_keygen(struct ctl *ctl, int argc, char *argv[]);
/* authorise KEY|PUBFILE AGENT_ID DISTRICT [--file F]: binds the key to the
 * agent and district, replacing any earlier binding of either. */
int cmd_authorise(struct ctl *ctl, int argc, char *argv[]);
/* revoke AGENT_ID|KEY [--file F]: removes the binding. */
int cmd_revoke(struct ctl *ctl, int argc, char *argv[]);

#endif
