/*
 * Key files on disk: the part of keys.h that reads files.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "keys.h"

static int
load_key(const char *path, char *out, char *err, size_t errlen)
{
	char why[256], *text;
	int rc;

	if ((text = config_read_text(path, why, sizeof(why))) == NULL) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	rc = keys_parse_key(text, out, why, sizeof(why));
	free(text);
	if (rc == -1)
		snprintf(err, errlen, "%s: %s", path, why);
	return rc;
}

int
keys_client_load(const char *server, const char *public_file,
    const char *secret_file, struct key_client *out, char *err, size_t errlen)
{
	struct stat st;

	memset(out, 0, sizeof(*out));
	if (public_file[0] == '\0' || secret_file[0] == '\0') {
		snprintf(err, errlen,
		    "a server key needs this side's public and secret key "
		    "files too");
		return -1;
	}
	if (keys_z85_valid(server))
		memcpy(out->server, server, sizeof(out->server));
	else if (load_key(server, out->server, err, errlen) == -1)
		return -1;
	if (stat(secret_file, &st) == -1) {
		snprintf(err, errlen, "%s: %s", secret_file, strerror(errno));
		return -1;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen,
		    "secret key %s is accessible by others (mode %04o); fix "
		    "it with: chmod 600 %s",
		    secret_file, (unsigned)(st.st_mode & 07777), secret_file);
		return -1;
	}
	if (load_key(public_file, out->public_key, err, errlen) == -1 ||
	    load_key(secret_file, out->secret_key, err, errlen) == -1)
		return -1;
	return 0;
}
