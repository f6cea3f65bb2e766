/*
 * Lock files (lockfile.h): flock(2) on a file holding the holder's PID.
 */
#include <sys/file.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lockfile.h"

/* The PID written in the lock file, into buf; "unknown" when the holder has
 * not written it yet (it writes just after taking the lock: wait a little
 * for it). */
static void
lockfile_holder(int fd, char *buf, size_t size)
{
	const struct timespec pause = { 0, 5 * 1000 * 1000 };
	ssize_t n = 0;

	for (int tries = 0; tries < 40; tries++) {
		n = pread(fd, buf, size - 1, 0);
		if (n > 0 && memchr(buf, '\n', (size_t)n) != NULL)
			break;
		nanosleep(&pause, NULL);
	}
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (buf[0] == '\0' || strspn(buf, "0123456789") != strlen(buf))
		snprintf(buf, size, "unknown");
}

int
lockfile_take(const char *dir, const char *name, const char *who, char *err,
    size_t errlen)
{
	char path[4096], buf[32];
	int fd, len;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    sizeof(path)) {
		snprintf(err, errlen, "%s: path too long", who);
		return -1;
	}
	fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		snprintf(err, errlen, "%s: %s: %s", who, path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK) {
			lockfile_holder(fd, buf, sizeof(buf));
			snprintf(err, errlen,
			    "%s is in use by another process (pid %s)", who,
			    buf);
		} else {
			snprintf(err, errlen, "%s: lock %s: %s", who, path,
			    strerror(errno));
		}
		close(fd);
		return -1;
	}
	len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 || pwrite(fd, buf, (size_t)len, 0) != len) {
		snprintf(err, errlen, "%s: write %s: %s", who, path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

void
lockfile_release(int *fd)
{
	if (fd == NULL || *fd == -1)
		return;
	close(*fd);
	*fd = -1;
}
