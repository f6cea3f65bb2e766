/*
 * Lock files: one process at a time on a directory's state (the daemon's
 * data directory, an agent's outbox).
 *
 * The lock is an exclusive flock(2) on a file in the directory, taken
 * without waiting and held for as long as the descriptor stays open: for
 * the process's life. The kernel drops it when its holder exits or is
 * killed, so a file left by a killed process never blocks the next start.
 * The holder writes its PID into the file, so that a process refused can
 * name the one in its way.
 */
#ifndef INDICATOR_LOCKFILE_H
#define INDICATOR_LOCKFILE_H

#include <stddef.h>

/* lockfile.c */

/*
 * Takes the lock on dir/name (the file created mode 0600 if missing) and
 * records getpid() in it. Returns the descriptor (close-on-exec), which the
 * caller owns and closes to release the lock; or -1 with a message in err:
 * "WHO is in use by another process (pid N)" when another process holds
 * the lock (N "unknown" when it has not written its PID yet), or what
 * failed.
 */
int lockfile_take(const char *dir, const char *name, const char *who, char *err,
    size_t errlen);

/* Releases a lock taken by lockfile_take(): closes *fd (-1 is accepted)
 * and sets it to -1. The file stays: removing it would race with a process
 * that has just opened it. */
void lockfile_release(int *fd);

#endif
