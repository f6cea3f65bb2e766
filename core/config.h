/*
 * Configuration: one INI file (parsed by libinih) for the daemon and the
 * tools, and one for each agent, each followed by its drop-ins
 * (the files NAME.conf in conf.d next to it). Every key is a row of a table in
 * config.c (section, key, bounds, default); unknown sections and keys are
 * errors.
 *
 * config_load() reads a file and its drop-ins; config_parse() parses text
 * already in memory. Both fill a struct that was not initialised by the
 * caller and return 0, or -1 with a message naming the file, the line and
 * the problem in err.
 *
 * The registry (districts, industries, metrics, targets) is the built-in
 * one (conf/indicatord.conf, compiled in) unless the files define any part
 * of it: then it is exactly what the files define, merged in reading order.
 * Scalar keys ([daemon], [limits], [registry] first_year) start from the
 * table's defaults, and a later line overrides an earlier one.
 */
#ifndef INDICATOR_CONFIG_H
#define INDICATOR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "encoding.h"
#include "registry.h"

#define CONFIG_ENDPOINT_MAX 256
#define CONFIG_PATH_MAX 1024
/* The longest line of a configuration file, in bytes without its line
 * end: far past any value a key takes (a registry name is at most
 * IND_NAME_MAX), so that no name in any script reaches it. */
#define CONFIG_LINE_MAX 65536

enum config_sync {
	CONFIG_SYNC_FULL, /* fsync on every commit (default) */
	CONFIG_SYNC_NOMETASYNC, /* data synced, meta page lazily */
	CONFIG_SYNC_NONE, /* the OS decides: acks are not durable */
};

enum config_log {
	CONFIG_LOG_ERROR,
	CONFIG_LOG_WARNING,
	CONFIG_LOG_INFO,
	CONFIG_LOG_DEBUG,
};

/* How log lines are written (log/log.h): words, or one JSON object each. */
enum config_log_format {
	CONFIG_LOG_PLAIN,
	CONFIG_LOG_JSON,
};

/* Limits on what one report may carry. */
struct config_limits {
	unsigned max_observations;
	unsigned max_agent_id;
	unsigned max_note;
	unsigned max_message_bytes;
	/* The errors a REJECTED answer lists, first ones first; the message
	 * counts the rest. */
	unsigned max_ack_errors;
};

struct config {
	char ingest[CONFIG_ENDPOINT_MAX];
	char publish[CONFIG_ENDPOINT_MAX];
	char snapshot[CONFIG_ENDPOINT_MAX];
	char data_dir[CONFIG_PATH_MAX]; /* "" until config_resolve_dir() */
	uint64_t map_size; /* bytes */
	uint64_t map_max; /* bytes */
	unsigned batch_max; /* reports per write transaction */
	/* The latest values and aggregates are written to their tables at
	 * most this long after the log (and when idle), or once this many
	 * keys wait. */
	unsigned checkpoint_ms;
	unsigned checkpoint_entries;
	unsigned checkpoint_idle_ms; /* 0: no checkpoint for being idle */
	unsigned pub_hwm; /* PUB high-water mark, messages */
	/* Memory budgets (README, "Budgets"), bytes: messages one batch
	 * decodes, and one connection's share of them; one connection's
	 * queue of messages not yet taken; answers (acks, snapshots) queued
	 * for peers, all together; publications queued per subscriber. */
	uint64_t batch_bytes;
	uint64_t conn_batch_bytes;
	uint64_t conn_queue_bytes;
	uint64_t answer_bytes;
	uint64_t subscriber_bytes;
	unsigned snapshot_queue; /* answers queued per snapshot peer */
	unsigned handshake_ms; /* ZMQ_HANDSHAKE_IVL */
	unsigned metrics_connections; /* the HTTP server's connections */
	unsigned metrics_timeout_s; /* and their idle timeout */
	enum config_sync sync;
	enum config_log log_level;
	enum config_log_format log_format;
	char timezone[64];
	/* CURVE (README, "Security"). */
	bool curve; /* ingest socket */
	char secret_key_file[CONFIG_PATH_MAX];
	char authorised_agents[CONFIG_PATH_MAX];
	bool feed_curve; /* publish and snapshot sockets */
	char subscriber_keys[CONFIG_PATH_MAX];
	bool allow_insecure_remote; /* plaintext off loopback */
	unsigned rate_limit; /* reports/s per agent_id; 0: none */
	char control[CONFIG_ENDPOINT_MAX]; /* "": ipc://DATA_DIR/control */
	char metrics[64]; /* HOST:PORT on loopback; "": off */
	struct config_limits limits;
	struct registry reg;
	/* Set by config_load() and config_parse(): true when no file defined
	 * any part of the registry, so reg holds the built-in one. */
	bool registry_builtin;
};

struct agent_config {
	char id[IND_AGENT_ID_MAX + 1];
	char district[IND_CODE_MAX + 1];
	char endpoint[CONFIG_ENDPOINT_MAX];
	char outbox[CONFIG_PATH_MAX];
	unsigned window; /* reports in flight */
	unsigned ack_timeout_ms; /* resend a report not acked by then */
	unsigned report_size; /* observations per report */
	unsigned heartbeat_ms; /* 0: none */
	char drop_dir[CONFIG_PATH_MAX]; /* run: where CSV files are dropped */
	enum config_log_format log_format;
	/* CURVE: the daemon's public key (Z85, or a file holding it) and
	 * this agent's key files; all empty for plaintext. */
	char server_key[CONFIG_PATH_MAX];
	char public_key_file[CONFIG_PATH_MAX];
	char secret_key_file[CONFIG_PATH_MAX];
	char metrics[64]; /* run: HOST:PORT on loopback; "": off */
	char timezone[64]; /* check: today's date is judged here */
	enum encoding encoding; /* of the CSV files */
	/* The daemon's limits and registry, as the daemon's file gives them:
	 * for check, and for the names clerks use (aliases). The built-in
	 * one unless the agent's files define any part of it. */
	struct config_limits limits;
	struct registry reg;
	bool registry_builtin;
};

/* config.c */

/* The default configuration compiled into the binaries
 * (conf/indicatord.conf). */
extern const char config_default_text[];

/*
 * Parses the daemon configuration: the file at path, then its drop-ins
 * (config_dropins()), each line overriding what came before; or the
 * embedded default alone when path is NULL. Checks the registry
 * (registry_check()), the endpoints' syntax and the metrics address.
 * 0, or -1 with "file:line: reason" (or "file: reason" for what no one
 * line decides) in err.
 */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/* The same for text in memory, with no drop-ins; name is used in
 * messages. */
int config_parse(struct config *cfg, const char *text, const char *name,
    char *err, size_t errlen);

/*
 * The drop-ins of the configuration file at path: the regular files (or
 * links to them) named *.conf, not starting with '.', in the directory
 * conf.d next to it, in the byte order of their names (the C locale's).
 * Sets *paths to a new array of *n new strings, "DIR/conf.d/NAME" (free
 * with config_dropins_free()); none when conf.d does not exist. 0, or -1
 * with "path: reason" in err.
 */
int config_dropins(
    const char *path, char ***paths, size_t *n, char *err, size_t errlen);
/* Frees what config_dropins() returned; accepts NULL. */
void config_dropins_free(char **paths, size_t n);

/*
 * Sets one key of the daemon configuration from text exactly as a line of
 * the file would (the table's type, bounds and syntax), for command-line
 * options that mirror a key, so that the bounds have one source. what names
 * the option in the message. 0, or -1 with "what (key): reason" in err.
 */
int config_set(struct config *cfg, const char *section, const char *key,
    const char *val, const char *what, char *err, size_t errlen);

/*
 * Decide the data directory when the file left it empty: $STATE_DIRECTORY
 * (set by systemd's StateDirectory=) when set, else "./indicatord-data".
 * state_dir is the value of $STATE_DIRECTORY or NULL; it is passed in so
 * the function stays free of I/O.
 */
void config_resolve_dir(struct config *cfg, const char *state_dir);

/* Reads a whole text file (no NUL bytes) into a new string the caller
 * frees; NULL with "path: reason" in err. */
char *config_read_text(const char *path, char *err, size_t errlen);

/*
 * Validators: NULL when the value is good, else why (filled with a reason
 * that quotes the value and says what form is expected).
 *
 * config_check_endpoint(): a ZeroMQ endpoint the daemon binds or an agent
 * connects to: tcp://HOST:PORT (PORT 1..65535) or ipc://PATH.
 * config_check_listen(): the metrics address, HOST:PORT on loopback
 * (127.0.0.0/8 or localhost); when good, *addr (host byte order) and *port
 * are set (either may be NULL).
 * config_check_zone(): a time zone of the tz database: a name such as
 * Asia/Shanghai whose file under tzdir (NULL: /usr/share/zoneinfo) is a
 * TZif file. Reads that file; the others do no I/O.
 */
const char *config_check_endpoint(const char *ep, char *why, size_t len);
const char *config_check_listen(
    const char *s, uint32_t *addr, uint16_t *port, char *why, size_t len);
const char *config_check_zone(
    const char *tz, const char *tzdir, char *why, size_t len);

/*
 * Parses an agent configuration file and its drop-ins, as config_load()
 * does for the daemon: the [agent] section, and the daemon's [limits] and
 * registry sections ([registry], [district CODE], [industry CODE],
 * [metric CODE], [unit CODE], [columns], [status], [target]), the
 * registry all or nothing as for the daemon, and checked.
 */
int agent_config_load(
    struct agent_config *acfg, const char *path, char *err, size_t errlen);
int agent_config_parse(struct agent_config *acfg, const char *text,
    const char *name, char *err, size_t errlen);

/* Defaults for an agent with no file: the built-in registry. */
void agent_config_defaults(struct agent_config *acfg);

/* config_set() for an [agent] key. */
int agent_config_set(struct agent_config *acfg, const char *key,
    const char *val, const char *what, char *err, size_t errlen);

/* The bounds and default of an [agent] integer key, for help text. 0, or
 * -1 when there is no such integer key. */
int agent_config_bounds(
    const char *key, long long *min, long long *max, const char **def);

#endif
