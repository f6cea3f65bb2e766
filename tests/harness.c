/*
 * Integration test harness: see harness.h. Every failure aborts the running
 * Check test. In fork mode a failed test _exits without its teardown, so
 * every child started here is killed when the test process dies
 * (PR_SET_PDEATHSIG), and the temporary directory stays behind with the
 * daemon's log for a look. A test that exits normally without cleaning up
 * gets its daemons stopped and directories removed at exit.
 */
/* nftw() and FTW_PHYS are XSI. */
#define _XOPEN_SOURCE 700

#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "config.h"
#include "harness.h"
#include "xmalloc.h"

#define HARNESS_DAEMONS_MAX 16
#define HARNESS_START_MS 10000
#define HARNESS_STOP_MS 20000
#define HARNESS_LOG_TAIL 4000

static struct daemon_proc *live[HARNESS_DAEMONS_MAX];
static bool atexit_done;

int64_t
harness_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
harness_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static int
exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

/*
 * Waits for pid up to timeout_ms. Returns true with *status filled, or
 * false when it is still running.
 */
static bool
wait_timed(pid_t pid, int *status, int64_t timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	long nap = 1;
	pid_t r;

	for (;;) {
		r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return true;
		if (r == -1 && errno != EINTR)
			ck_abort_msg("harness: waitpid %d: %s", (int)pid,
			    strerror(errno));
		if (harness_now_ms() >= deadline)
			return false;
		harness_sleep_ms(nap);
		if (nap < 20)
			nap *= 2;
	}
}

static void
kill_reap(pid_t pid)
{
	int status;

	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
}

static void
cleanup_at_exit(void)
{
	size_t i;

	for (i = 0; i < HARNESS_DAEMONS_MAX; i++) {
		if (live[i] == NULL)
			continue;
		if (live[i]->pid > 0)
			kill_reap(live[i]->pid);
		live[i]->pid = 0;
		if (live[i]->dir[0] != '\0')
			harness_rmtree(live[i]->dir);
		live[i] = NULL;
	}
}

static void
track(struct daemon_proc *d)
{
	size_t i, slot = HARNESS_DAEMONS_MAX;

	if (!atexit_done) {
		atexit(cleanup_at_exit);
		atexit_done = true;
	}
	for (i = 0; i < HARNESS_DAEMONS_MAX; i++) {
		if (live[i] == d)
			return;
		if (live[i] == NULL && slot == HARNESS_DAEMONS_MAX)
			slot = i;
	}
	ck_assert_msg(slot < HARNESS_DAEMONS_MAX, "harness: too many daemons");
	live[slot] = d;
}

static void
untrack(struct daemon_proc *d)
{
	size_t i;

	for (i = 0; i < HARNESS_DAEMONS_MAX; i++)
		if (live[i] == d)
			live[i] = NULL;
}

/*
 * In a child between fork and exec: no stdin, outputs to the given
 * descriptors, and death with the test process so a failed test leaves no
 * stray binaries. Only async-signal-safe calls; _exit on failure.
 */
static void
child_setup(int outfd, int errfd)
{
	int nullfd;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1)
		_exit(126);
	if (getppid() == 1)
		_exit(126);
	nullfd = open("/dev/null", O_RDONLY);
	if (nullfd == -1 || dup2(nullfd, STDIN_FILENO) == -1)
		_exit(126);
	if (dup2(outfd, STDOUT_FILENO) == -1 ||
	    dup2(errfd, STDERR_FILENO) == -1)
		_exit(126);
}

char *
harness_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char path[512];
	int n;

	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	n = snprintf(path, sizeof(path), "%s/indicatord-test-XXXXXX", base);
	ck_assert_msg(
	    n > 0 && (size_t)n < sizeof(path), "harness: TMPDIR too long");
	ck_assert_msg(mkdtemp(path) != NULL, "harness: mkdtemp %s: %s", path,
	    strerror(errno));
	return xstrdup(path);
}

static int
rmtree_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	if (remove(path) == -1 && errno != ENOENT)
		fprintf(
		    stderr, "harness: remove %s: %s\n", path, strerror(errno));
	return 0;
}

void
harness_rmtree(const char *dir)
{
	if (dir == NULL || dir[0] == '\0')
		return;
	if (nftw(dir, rmtree_one, 16, FTW_DEPTH | FTW_PHYS) == -1 &&
	    errno != ENOENT)
		fprintf(stderr, "harness: nftw %s: %s\n", dir, strerror(errno));
}

/*
 * Ports for what the tests start. bind(0) alone is not enough: the port it
 * finds is free only until it is closed, and suites run side by side
 * (ctest -j) would be handed the same one, or a client's connect() the
 * same one as its own ephemeral port (a ZeroMQ socket reconnecting to a
 * port nothing listens on can even connect to itself). So a port is taken
 * from below Linux's ephemeral range (32768 and up), reserved for the
 * life of the process that asked by an flock on a file of its own in a
 * directory the suites share, and checked free by a bind.
 */
#define PORT_LO 20000
#define PORT_HI 32000

static bool
port_bindable(int port)
{
	struct sockaddr_in sin;
	int fd, one = 1;
	bool ok;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_msg(fd != -1, "harness: socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	ok = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

int
harness_free_port(void)
{
	const char *base = getenv("TMPDIR");
	char dir[512], path[600];
	unsigned span = PORT_HI - PORT_LO;
	unsigned start;
	int fd;

	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	snprintf(dir, sizeof(dir), "%s/indicatord-test-ports", base);
	if (mkdir(dir, 01777) == 0)
		chmod(dir, 01777);
	start = (unsigned)getpid() * 7919u + (unsigned)harness_now_ms();
	for (unsigned i = 0; i < span; i++) {
		int port = PORT_LO + (int)((start + i) % span);

		snprintf(path, sizeof(path), "%s/%d", dir, port);
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
		ck_assert_msg(
		    fd != -1, "harness: open %s: %s", path, strerror(errno));
		if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
			close(fd);
			continue;
		}
		if (!port_bindable(port)) {
			close(fd);
			continue;
		}
		/* fd stays open: the reservation ends with the process. */
		return port;
	}
	ck_abort_msg("harness: no free port in %d..%d", PORT_LO, PORT_HI);
	return -1;
}

void
harness_daemon_init(struct daemon_proc *d, const char *extra)
{
	int ports[3];
	char *dir, *conf;
	size_t i, j, len;
	int n;

	memset(d, 0, sizeof(*d));
	dir = harness_tmpdir();
	ck_assert_msg(strlcpy_ok(d->dir, dir, sizeof(d->dir)),
	    "harness: path too long: %s", dir);
	free(dir);
	snprintf(d->data_dir, sizeof(d->data_dir), "%s/data", d->dir);
	snprintf(d->conf, sizeof(d->conf), "%s/indicatord.conf", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/indicatord.log", d->dir);
	track(d);

	/* Three distinct ports: the kernel may hand the same one back. */
	for (i = 0; i < 3; i++) {
		do {
			ports[i] = harness_free_port();
			for (j = 0; j < i; j++)
				if (ports[j] == ports[i])
					break;
		} while (j < i);
	}
	snprintf(d->ingest, sizeof(d->ingest), "tcp://127.0.0.1:%d", ports[0]);
	snprintf(
	    d->publish, sizeof(d->publish), "tcp://127.0.0.1:%d", ports[1]);
	snprintf(
	    d->snapshot, sizeof(d->snapshot), "tcp://127.0.0.1:%d", ports[2]);

	if (extra == NULL)
		extra = "";
	len = strlen(config_default_text) + strlen(extra) + 1024 +
	      sizeof(d->data_dir);
	conf = xmalloc(len);
	n = snprintf(conf, len,
	    "%s\n[daemon]\ningest = %s\npublish = %s\nsnapshot = %s\n"
	    "data_dir = %s\n%s",
	    config_default_text, d->ingest, d->publish, d->snapshot,
	    d->data_dir, extra);
	ck_assert(n > 0 && (size_t)n < len);
	harness_write_file(d->conf, conf);
	free(conf);
}

static void
curve_client(void *sock, const char *server, const char *public_key,
    const char *secret_key)
{
	ck_assert(zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, 40) == 0);
	ck_assert(
	    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, public_key, 40) == 0);
	ck_assert(
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret_key, 40) == 0);
}

/*
 * A fresh DEALER that has sent one heartbeat. It retries its connection
 * every 10 ms rather than libzmq's 100 ms, so start-up waits no longer than
 * the daemon takes to bind.
 */
static void *
probe_new(void *zctx, const struct daemon_proc *d)
{
	const char *endpoint = d->ingest;
	Indicator__AgentMessage msg = INDICATOR__AGENT_MESSAGE__INIT;
	Indicator__Heartbeat hb = INDICATOR__HEARTBEAT__INIT;
	uint8_t buf[128];
	const void *frames[1] = { buf };
	size_t lens[1];
	int ivl = 10;
	void *sock;

	hb.agent_id = "harness";
	hb.epoch = 1;
	msg.body_case = INDICATOR__AGENT_MESSAGE__BODY_HEARTBEAT;
	msg.heartbeat = &hb;
	ck_assert(
	    indicator__agent_message__get_packed_size(&msg) <= sizeof(buf));
	lens[0] = indicator__agent_message__pack(&msg, buf);

	sock = zmq_socket(zctx, ZMQ_DEALER);
	ck_assert(sock != NULL);
	ck_assert(
	    zmq_setsockopt(sock, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl)) == 0);
	ivl = 0;
	ck_assert(zmq_setsockopt(sock, ZMQ_LINGER, &ivl, sizeof(ivl)) == 0);
	if (d->curve_server[0] != '\0')
		curve_client(
		    sock, d->curve_server, d->curve_public, d->curve_secret);
	ck_assert_msg(zmq_connect(sock, endpoint) == 0,
	    "harness: zmq_connect %s: %s", endpoint, zmq_strerror(zmq_errno()));
	harness_client_send(sock, frames, lens, 1);
	return sock;
}

/* Aborts the test with the tail of the daemon's log. */
static void
daemon_fail(const struct daemon_proc *d, const char *what)
{
	char *log = harness_daemon_log(d);
	size_t len = strlen(log);
	char tail[HARNESS_LOG_TAIL + 1];

	snprintf(tail, sizeof(tail), "%s",
	    len > HARNESS_LOG_TAIL ? log + len - HARNESS_LOG_TAIL : log);
	free(log);
	fprintf(stderr, "harness: %s; %s kept; indicatord log:\n%s\n", what,
	    d->dir, tail);
	ck_abort_msg("harness: %s; indicatord log: %s", what, tail);
}

void
harness_daemon_start(struct daemon_proc *d)
{
	int64_t deadline, sent_at = 0;
	int status, fd;
	void *zctx, *sock = NULL;
	Indicator__Ack *ack;
	pid_t pid;
	char what[128];

	ck_assert_msg(d->pid == 0, "harness: daemon already running");
	track(d);
	fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	ck_assert_msg(
	    fd != -1, "harness: open %s: %s", d->log, strerror(errno));
	pid = fork();
	ck_assert_msg(pid != -1, "harness: fork: %s", strerror(errno));
	if (pid == 0) {
		child_setup(fd, fd);
		/* INDICATOR_VALGRIND=1: the daemon runs under memcheck, and
		 * any error makes it exit 99, which the tests' clean-stop
		 * checks turn into a failure. */
		if (getenv("INDICATOR_VALGRIND") != NULL)
			execlp("valgrind", "valgrind", "--quiet",
			    "--error-exitcode=99", "--leak-check=full",
			    "--errors-for-leak-kinds=definite",
			    "--show-leak-kinds=definite", INDICATORD_BIN, "-c",
			    d->conf, (char *)NULL);
		else
			execl(INDICATORD_BIN, INDICATORD_BIN, "-c", d->conf,
			    (char *)NULL);
		_exit(127);
	}
	close(fd);
	d->pid = pid;

	zctx = zmq_ctx_new();
	ck_assert(zctx != NULL);
	deadline =
	    harness_now_ms() +
	    HARNESS_START_MS * (getenv("INDICATOR_VALGRIND") != NULL ? 6 : 1);
	for (;;) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			d->pid = 0;
			if (sock != NULL)
				zmq_close(sock);
			zmq_ctx_term(zctx);
			/* The harness signals a daemon only after its start:
			 * a signal now came from elsewhere (its log names the
			 * sender once the daemon's handlers are set). */
			snprintf(what, sizeof(what),
			    "indicatord exited during start-up with %d%s%s",
			    exit_code(status),
			    WIFSIGNALED(status) ? ": killed by " : "",
			    WIFSIGNALED(status) ? strsignal(WTERMSIG(status))
						: "");
			daemon_fail(d, what);
		}
		/* A heartbeat sent while the daemon was half up may be lost:
		 * start again on a new connection now and then. */
		if (sock == NULL || harness_now_ms() - sent_at >= 1000) {
			if (sock != NULL)
				zmq_close(sock);
			sock = probe_new(zctx, d);
			sent_at = harness_now_ms();
		}
		ack = harness_client_ack(sock, 20);
		if (ack != NULL) {
			indicator__ack__free_unpacked(ack, NULL);
			break;
		}
		if (harness_now_ms() >= deadline) {
			kill_reap(pid);
			d->pid = 0;
			zmq_close(sock);
			zmq_ctx_term(zctx);
			daemon_fail(d, "indicatord did not answer a heartbeat "
				       "within 10 s");
		}
	}
	zmq_close(sock);
	zmq_ctx_term(zctx);
}

int
harness_daemon_stop(struct daemon_proc *d, int sig)
{
	int status;
	pid_t pid = d->pid;

	ck_assert_msg(pid > 0, "harness: daemon not running");
	ck_assert_msg(
	    kill(pid, sig) == 0, "harness: kill: %s", strerror(errno));
	if (!wait_timed(pid, &status, HARNESS_STOP_MS)) {
		kill_reap(pid);
		d->pid = 0;
		daemon_fail(d, "indicatord did not exit within 20 s of a "
			       "signal");
	}
	d->pid = 0;
	return status;
}

void
harness_daemon_cleanup(struct daemon_proc *d)
{
	if (d->pid > 0)
		harness_daemon_stop(d, SIGTERM);
	harness_rmtree(d->dir);
	d->dir[0] = '\0';
	untrack(d);
}

char *
harness_daemon_log(const struct daemon_proc *d)
{
	char *s = harness_read_file(d->log);

	return s != NULL ? s : xstrdup("");
}

/* Reads all of fd from its start; caller frees. */
static char *
slurp_fd(int fd)
{
	size_t len = 0, cap = 4096;
	char *buf = xmalloc(cap);
	ssize_t n;

	ck_assert(lseek(fd, 0, SEEK_SET) == 0);
	for (;;) {
		if (cap - len < 2) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n == -1 && errno == EINTR)
			continue;
		ck_assert_msg(n != -1, "harness: read: %s", strerror(errno));
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

/* An anonymous temporary file, so large outputs never block the child. */
static int
tmp_fd(void)
{
	FILE *f = tmpfile();
	int fd;

	ck_assert_msg(f != NULL, "harness: tmpfile: %s", strerror(errno));
	fd = dup(fileno(f));
	ck_assert(fd != -1);
	fclose(f);
	return fd;
}

int
harness_run(const char *const argv[], char **out, char **err, int timeout_s)
{
	int outfd, errfd, status;
	pid_t pid;

	outfd = tmp_fd();
	errfd = tmp_fd();
	pid = fork();
	ck_assert_msg(pid != -1, "harness: fork: %s", strerror(errno));
	if (pid == 0) {
		child_setup(outfd, errfd);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (!wait_timed(pid, &status, (int64_t)timeout_s * 1000)) {
		kill_reap(pid);
		close(outfd);
		close(errfd);
		ck_abort_msg(
		    "harness: %s did not end within %d s", argv[0], timeout_s);
	}
	if (out != NULL)
		*out = slurp_fd(outfd);
	if (err != NULL)
		*err = slurp_fd(errfd);
	close(outfd);
	close(errfd);
	return exit_code(status);
}

pid_t
harness_spawn(const char *const argv[], const char *log)
{
	pid_t pid;
	int fd;

	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	ck_assert_msg(fd != -1, "harness: open %s: %s", log, strerror(errno));
	pid = fork();
	ck_assert_msg(pid != -1, "harness: fork: %s", strerror(errno));
	if (pid == 0) {
		child_setup(fd, fd);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fd);
	return pid;
}

int
harness_wait(pid_t pid, int timeout_s)
{
	int status;

	if (!wait_timed(pid, &status, (int64_t)timeout_s * 1000)) {
		kill_reap(pid);
		ck_abort_msg("harness: process %d did not end within %d s",
		    (int)pid, timeout_s);
	}
	return exit_code(status);
}

void
harness_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	size_t len = strlen(text);

	ck_assert_msg(
	    f != NULL, "harness: fopen %s: %s", path, strerror(errno));
	ck_assert_msg(
	    fwrite(text, 1, len, f) == len, "harness: write %s", path);
	ck_assert_msg(
	    fclose(f) == 0, "harness: close %s: %s", path, strerror(errno));
}

char *
harness_read_file(const char *path)
{
	char *s;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		ck_assert_msg(errno == ENOENT, "harness: open %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	s = slurp_fd(fd);
	close(fd);
	return s;
}

void *
harness_client_new(void *zctx, const char *endpoint)
{
	void *sock;
	int linger = 0;

	sock = zmq_socket(zctx, ZMQ_DEALER);
	ck_assert_msg(
	    sock != NULL, "harness: zmq_socket: %s", zmq_strerror(zmq_errno()));
	ck_assert(
	    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger)) == 0);
	ck_assert_msg(zmq_connect(sock, endpoint) == 0,
	    "harness: zmq_connect %s: %s", endpoint, zmq_strerror(zmq_errno()));
	return sock;
}

void *
harness_client_curve(void *zctx, const char *endpoint, const char *server,
    const char *public_key, const char *secret_key)
{
	void *sock;
	int linger = 0;

	sock = zmq_socket(zctx, ZMQ_DEALER);
	ck_assert(sock != NULL);
	ck_assert(
	    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger)) == 0);
	curve_client(sock, server, public_key, secret_key);
	ck_assert_msg(zmq_connect(sock, endpoint) == 0,
	    "harness: zmq_connect %s: %s", endpoint, zmq_strerror(zmq_errno()));
	return sock;
}

void
harness_client_send(
    void *sock, const void *const frames[], const size_t lens[], size_t nframes)
{
	size_t i;
	int flags;

	ck_assert_msg(nframes > 0, "harness: a message has at least 1 frame");
	for (i = 0; i < nframes; i++) {
		flags = i + 1 < nframes ? ZMQ_SNDMORE : 0;
		ck_assert_msg(zmq_send(sock, lens[i] > 0 ? frames[i] : "",
				  lens[i], flags) == (int)lens[i],
		    "harness: zmq_send: %s", zmq_strerror(zmq_errno()));
	}
}

Indicator__Ack *
harness_client_ack(void *sock, int timeout_ms)
{
	zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
	Indicator__Ack *ack = NULL;
	zmq_msg_t msg;
	int more, rc;
	bool first = true;

	do {
		rc = zmq_poll(&item, 1, timeout_ms);
	} while (rc == -1 && zmq_errno() == EINTR);
	ck_assert_msg(
	    rc != -1, "harness: zmq_poll: %s", zmq_strerror(zmq_errno()));
	if (rc == 0)
		return NULL;

	/* A reply of more than one frame breaks the contract: NULL. */
	do {
		zmq_msg_init(&msg);
		do {
			rc = zmq_msg_recv(&msg, sock, 0);
		} while (rc == -1 && zmq_errno() == EINTR);
		ck_assert_msg(rc != -1, "harness: zmq_msg_recv: %s",
		    zmq_strerror(zmq_errno()));
		more = zmq_msg_more(&msg);
		if (first && !more)
			ack = indicator__ack__unpack(
			    NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
		first = false;
		zmq_msg_close(&msg);
	} while (more);
	return ack;
}

Indicator__Ack *
harness_send_report(void *sock, const Indicator__Report *r, int timeout_ms)
{
	Indicator__AgentMessage msg = INDICATOR__AGENT_MESSAGE__INIT;
	const void *frames[1];
	size_t lens[1];
	uint8_t *buf;
	size_t len;

	msg.body_case = INDICATOR__AGENT_MESSAGE__BODY_REPORT;
	msg.report = (Indicator__Report *)r;
	len = indicator__agent_message__get_packed_size(&msg);
	buf = xmalloc(len > 0 ? len : 1);
	indicator__agent_message__pack(&msg, buf);
	frames[0] = buf;
	lens[0] = len;
	harness_client_send(sock, frames, lens, 1);
	free(buf);
	return harness_client_ack(sock, timeout_ms);
}

bool
harness_daemon_log_has(const struct daemon_proc *d, const char *what)
{
	char *log = harness_daemon_log(d);
	bool found = strstr(log, what) != NULL;

	free(log);
	return found;
}

void
harness_checkpoint(const struct daemon_proc *d)
{
	char endpoint[700], reply[256];
	void *zctx = zmq_ctx_new(), *sock;
	zmq_pollitem_t item;
	int linger = 0, n;

	ck_assert_ptr_nonnull(zctx);
	sock = zmq_socket(zctx, ZMQ_DEALER);
	ck_assert_ptr_nonnull(sock);
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	snprintf(endpoint, sizeof(endpoint), "ipc://%s/control", d->data_dir);
	ck_assert_int_eq(zmq_connect(sock, endpoint), 0);
	ck_assert_int_eq(zmq_send(sock, "checkpoint", 10, 0), 10);
	item = (zmq_pollitem_t){ sock, 0, ZMQ_POLLIN, 0 };
	ck_assert_msg(zmq_poll(&item, 1, 60000) == 1,
	    "no answer to checkpoint from %s", endpoint);
	n = zmq_recv(sock, reply, sizeof(reply) - 1, 0);
	ck_assert_int_ge(n, 0);
	reply[n < (int)sizeof(reply) ? n : (int)sizeof(reply) - 1] = '\0';
	ck_assert_msg(strstr(reply, "\"checkpoint\":true") != NULL,
	    "checkpoint refused: %s", reply);
	zmq_close(sock);
	zmq_ctx_term(zctx);
}

void
harness_wait_log(const char *path, const char *needle, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	char *text;
	size_t len;

	for (;;) {
		text = harness_read_file(path);
		if (text != NULL && strstr(text, needle) != NULL) {
			free(text);
			return;
		}
		if (harness_now_ms() >= deadline) {
			len = text != NULL ? strlen(text) : 0;
			ck_abort_msg("\"%s\" never came in %s: %s", needle,
			    path,
			    text == NULL ? "(no log)"
			    : len > HARNESS_LOG_TAIL
				? text + len - HARNESS_LOG_TAIL
				: text);
		}
		free(text);
		harness_sleep_ms(20);
	}
}

Indicator__Ack *
harness_report_one(
    void *sock, const struct harness_report *spec, int timeout_ms)
{
	Indicator__Report r = INDICATOR__REPORT__INIT;
	Indicator__Observation o = INDICATOR__OBSERVATION__INIT, *op = &o;

	o.industry = (char *)spec->industry;
	o.metric = "output_value";
	o.period = "2024";
	o.value = spec->value;
	o.unit = "CNY_100M";
	o.status = INDICATOR__OBS_STATUS__PROVISIONAL;
	r.agent_id = (char *)spec->agent;
	r.district = (char *)spec->district;
	r.epoch = spec->epoch;
	r.seq = spec->seq;
	r.sent_at_ms = (int64_t)time(NULL) * 1000;
	r.n_observations = 1;
	r.observations = &op;
	return harness_send_report(sock, &r, timeout_ms);
}

void
harness_expect_ack(Indicator__Ack *ack, int status, const char *code)
{
	ck_assert_msg(ack != NULL, "no answer");
	ck_assert_msg((int)ack->status == status, "status %d, want %d (%s: %s)",
	    ack->status, status, ack->code, ack->message);
	if (code != NULL)
		ck_assert_str_eq(ack->code, code);
	indicator__ack__free_unpacked(ack, NULL);
}

int
harness_ctl_run(const char *conf, const char *data_dir,
    const char *const args[], char **out, char **err, int timeout_s)
{
	const char *argv[16];
	size_t n = 0;

	argv[n++] = INDICATORCTL_BIN;
	if (conf != NULL) {
		argv[n++] = "-c";
		argv[n++] = conf;
	}
	if (data_dir != NULL) {
		argv[n++] = "-d";
		argv[n++] = data_dir;
	}
	for (size_t i = 0; args[i] != NULL; i++) {
		ck_assert_uint_lt(n, sizeof(argv) / sizeof(argv[0]) - 1);
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	return harness_run(argv, out, err, timeout_s);
}

char *
harness_ctl(const char *data_dir, const char *const args[], int timeout_s)
{
	char *out, *err;
	int rc;

	rc = harness_ctl_run(NULL, data_dir, args, &out, &err, timeout_s);
	ck_assert_msg(
	    rc == 0, "indicatorctl %s exited %d: %s", args[0], rc, err);
	free(err);
	return out;
}

size_t
harness_count_lines(const char *text)
{
	size_t n = 0;
	const char *p = text;

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);

		if (strspn(p, " \t\r") < len)
			n++;
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return n;
}

size_t
harness_count_newlines(const char *text)
{
	size_t n = 0;

	for (; *text != '\0'; text++)
		n += *text == '\n';
	return n;
}

size_t
harness_count_str(const char *text, const char *needle)
{
	size_t n = 0;

	for (const char *p = strstr(text, needle); p != NULL;
	     p = strstr(p + 1, needle))
		n++;
	return n;
}

char *
harness_line_with(const char *text, const char *needle)
{
	const char *p = strstr(text, needle), *b, *e;
	char *line;

	if (p == NULL)
		return NULL;
	for (b = p; b > text && b[-1] != '\n'; b--)
		;
	e = strchr(p, '\n');
	if (e == NULL)
		e = p + strlen(p);
	line = xmalloc((size_t)(e - b) + 1);
	memcpy(line, b, (size_t)(e - b));
	line[e - b] = '\0';
	return line;
}

bool
harness_json_get(const char *line, const char *key, char *buf, size_t len)
{
	char pat[64];
	const char *p, *end;
	size_t n;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	for (p = strstr(line, pat); p != NULL; p = strstr(p + 1, pat)) {
		const char *q = p + strlen(pat);

		q += strspn(q, " \t");
		if (*q != ':')
			continue;
		q++;
		q += strspn(q, " \t");
		if (*q == '"') {
			q++;
			for (end = q; *end != '\0' && *end != '"'; end++)
				if (*end == '\\' && end[1] != '\0')
					end++;
		} else {
			end = q + strcspn(q, ",}\n");
			while (end > q && (end[-1] == ' ' || end[-1] == '\t'))
				end--;
		}
		n = (size_t)(end - q);
		if (n >= len)
			n = len - 1;
		memcpy(buf, q, n);
		buf[n] = '\0';
		return true;
	}
	return false;
}

/*
 * GET path from 127.0.0.1:port: the body (caller frees) and the status in
 * *status; NULL when nothing listens there.
 */
char *
harness_http_get(int port, const char *path, int *status)
{
	struct sockaddr_in sa = { 0 };
	char req[256], *buf, *body;
	size_t off = 0, cap = 65536;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert(fd != -1);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		close(fd);
		return NULL;
	}
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
	    path);
	ck_assert(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
	buf = xmalloc(cap);
	while ((n = read(fd, buf + off, cap - off - 1)) > 0) {
		off += (size_t)n;
		if (cap - off < 4096)
			buf = xrealloc(buf, cap *= 2);
	}
	buf[off] = '\0';
	close(fd);
	ck_assert_msg(sscanf(buf, "HTTP/1.%*d %d", status) == 1, "%s", buf);
	body = strstr(buf, "\r\n\r\n");
	ck_assert_msg(body != NULL, "%s", buf);
	body = xstrdup(body + 4);
	free(buf);
	return body;
}
