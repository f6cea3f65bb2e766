/*
 * Key files on disk: the part of keys.h that reads files.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "keys.h"
#include "xmalloc.h"

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
	char why[256], *text;
	int rc;

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
	/* The secret key as the daemon's own: a regular file owned by root
	 * or this user, readable by nobody else, checked on the open file. */
	if ((text = keys_file_read(
		 secret_file, true, (uid_t)-1, why, sizeof(why))) == NULL) {
		snprintf(err, errlen, "secret key %s", why);
		return -1;
	}
	rc = keys_parse_key(text, out->secret_key, why, sizeof(why));
	explicit_bzero(text, strlen(text));
	free(text);
	if (rc == -1) {
		snprintf(err, errlen, "%s: %s", secret_file, why);
		return -1;
	}
	if (load_key(public_file, out->public_key, err, errlen) == -1) {
		explicit_bzero(out, sizeof(*out));
		return -1;
	}
	return 0;
}

/* "uid N (name)", or "uid N" for a user without a name. */
static void
user_name(uid_t uid, char *buf, size_t len)
{
	const struct passwd *pw = getpwuid(uid);

	if (pw != NULL)
		snprintf(
		    buf, len, "%s (uid %lu)", pw->pw_name, (unsigned long)uid);
	else
		snprintf(buf, len, "uid %lu", (unsigned long)uid);
}

/* Whether the open file fd (at path) may be trusted; -1 with why. */
static int
file_trusted(
    int fd, const char *path, bool secret, uid_t user, char *err, size_t errlen)
{
	mode_t forbidden = secret ? 077 : 022;
	char owner[96], self[96];
	struct stat st;

	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		return -1;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid() &&
	    (user == (uid_t)-1 || st.st_uid != user)) {
		uid_t want = user != (uid_t)-1 ? user : geteuid();
		const struct passwd *pw = getpwuid(want);

		user_name(st.st_uid, owner, sizeof(owner));
		user_name(want, self, sizeof(self));
		snprintf(err, errlen,
		    "%s belongs to %s, neither root nor the user %s it runs "
		    "as: its owner could %s; fix it with: chown %s %s",
		    path, owner, self,
		    secret ? "give the key away" : "add a key",
		    pw != NULL ? pw->pw_name : "root", path);
		return -1;
	}
	if (st.st_mode & forbidden) {
		if (secret)
			snprintf(err, errlen,
			    "%s is accessible by others (mode %04o); fix it "
			    "with: chmod 600 %s",
			    path, (unsigned)(st.st_mode & 07777), path);
		else
			snprintf(err, errlen,
			    "%s is writable by group or others (mode %04o): "
			    "whoever can write it can add a key; fix it "
			    "with: chmod go-w %s",
			    path, (unsigned)(st.st_mode & 07777), path);
		return -1;
	}
	return 0;
}

char *
keys_file_read(
    const char *path, bool secret, uid_t user, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (file_trusted(fd, path, secret, user, err, errlen) == -1)
		goto fd_close;
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = xrealloc(buf, cap);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto buf_free;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > KEYS_FILE_MAX) {
			snprintf(err, errlen, "%s: over %d bytes", path,
			    KEYS_FILE_MAX);
			goto buf_free;
		}
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		goto buf_free;
	}
	close(fd);
	return buf;
buf_free:
	free(buf);
fd_close:
	close(fd);
	return NULL;
}
