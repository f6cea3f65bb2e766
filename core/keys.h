/*
 * CURVE keys and the files that hold them. Pure: parsing of text already
 * read, so the daemon, the tools and the tests share it.
 *
 * A key file holds one Z85-encoded key (40 characters) on its first line
 * that is not blank or a '#' comment. The authorised-agents file binds each
 * agent public key to exactly one agent_id and one district, one binding a
 * line:
 *
 *   # public key (Z85)                        agent_id    district
 *   rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7  kunshan-01  320583
 *
 * The subscriber-keys file lists a key and a name on each line.
 */
#ifndef INDICATOR_KEYS_H
#define INDICATOR_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "strlimits.h"

#define KEY_Z85_LEN 40

struct key_binding {
	char key[KEY_Z85_LEN + 1];
	char agent_id[IND_AGENT_ID_MAX + 1]; /* the subscriber's name in a
						subscriber-keys file */
	char district[IND_CODE_MAX + 1]; /* "" in a subscriber-keys file */
};

struct key_table {
	struct key_binding *rows;
	size_t n;
};

/* keys.c */

/* True when s is exactly 40 characters of the Z85 alphabet. */
bool keys_z85_valid(const char *s);

/* The key in a key file's text, copied to out (KEY_Z85_LEN + 1 bytes).
 * 0, or -1 with a reason in err. */
int keys_parse_key(const char *text, char *out, char *err, size_t errlen);

/*
 * Parses an authorised-agents file (with_district true: three fields a
 * line) or a subscriber-keys file (false: two fields). Fills *t (caller
 * frees with keys_table_free()). A key or an agent_id listed twice is an
 * error: a key is bound to exactly one agent. 0, or -1 with "name:line:
 * reason" in err.
 */
int keys_parse_table(const char *text, const char *name, bool with_district,
    struct key_table *t, char *err, size_t errlen);
void keys_table_free(struct key_table *t);
/* The binding of a key, or NULL. */
const struct key_binding *keys_lookup(
    const struct key_table *t, const char *key);

/* A CURVE client's keys: the server's public key and its own pair. */
struct key_client {
	char server[KEY_Z85_LEN + 1];
	char public_key[KEY_Z85_LEN + 1];
	char secret_key[KEY_Z85_LEN + 1];
};

/* keyfile.c: the file side (reads files; kept out of keys.c, which is
 * pure). */

/*
 * Loads a client's keys: server is a Z85 key or a file holding one;
 * public_file and secret_file are key files. The secret file must be
 * readable by its owner only (the message says which chmod to run).
 * 0, or -1 with a reason in err.
 */
int keys_client_load(const char *server, const char *public_file,
    const char *secret_file, struct key_client *out, char *err, size_t errlen);

/* The largest key file keys_file_read() reads. */
#define KEYS_FILE_MAX (16 << 20)

/*
 * Reads a file that decides who may talk to the daemon (its secret key
 * when secret is true; an authorised-agents or subscriber-keys file
 * otherwise) into a new NUL-terminated string (caller frees), refusing it
 * unless it is a regular file
 *   - owned by root, by the process's effective user, or by user (the
 *     daemon's user when the check runs as another one, such as root's
 *     `indicatord -n`; (uid_t)-1 for none),
 *   - not writable by its group or others, since whoever can write it can
 *     add a key,
 *   - for a secret key, not readable by them either.
 * The checks are made on the open file (fstat), so what is read is what
 * was checked. NULL with the reason in err, with the chmod or chown that
 * fixes it. A file holding a NUL byte is refused too.
 */
char *keys_file_read(
    const char *path, bool secret, uid_t user, char *err, size_t errlen);

#endif
