/*
 * The command lines, on the real binaries: --help and --version on every
 * installed binary, per-command help, `indicatord -n` and
 * `indicator-agent -n` refusing what a start refuses (each case also
 * started for real, to show that the two say the same), and drop-ins read
 * again at a reload.
 */
#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"
#include "xmalloc.h"

#ifndef PROJECT_VERSION_STRING
#error "tests/CMakeLists.txt passes CMake's PROJECT_VERSION"
#endif

#define RUN_S 60
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static struct daemon_proc dm;
static char *tmp; /* a scratch directory of the running test */

static void
setup(void)
{
	tmp = harness_tmpdir();
}

static void
teardown(void)
{
	harness_daemon_cleanup(&dm);
	harness_rmtree(tmp);
	free(tmp);
}

/* --- --help and --version on every binary ------------------------------ */

static const struct {
	const char *bin;
	const char *name;
} bins[] = {
	{ INDICATORD_BIN, "indicatord" },
	{ INDICATORCTL_BIN, "indicatorctl" },
	{ AGENT_BIN, "indicator-agent" },
	{ SUB_BIN, "indicator-sub" },
	{ GEN_SAMPLE_BIN, "indicator-gen-sample" },
	{ WEB_BIN, "indicator-web" },
};

/* --version: exit 0, "NAME VERSION" with CMake's project version. */
START_TEST(version)
{
	const char *argv[] = { bins[_i].bin, "--version", NULL };
	char *out, *err, want[128];

	ck_assert_int_eq(harness_run(argv, &out, &err, RUN_S), 0);
	snprintf(want, sizeof(want), "%s %s\n", bins[_i].name,
	    PROJECT_VERSION_STRING);
	ck_assert_str_eq(out, want);
	ck_assert_str_eq(err, "");
	free(out);
	free(err);
}
END_TEST

/* --help and -h: exit 0, the usage on stdout, nothing on stderr. */
START_TEST(help)
{
	const char *flags[] = { "--help", "-h" };
	char *out, *err, want[128];

	snprintf(want, sizeof(want), "usage: %s ", bins[_i].name);
	for (size_t i = 0; i < NELEM(flags); i++) {
		const char *argv[] = { bins[_i].bin, flags[i], NULL };

		ck_assert_msg(harness_run(argv, &out, &err, RUN_S) == 0,
		    "%s %s", bins[_i].name, flags[i]);
		ck_assert_msg(strncmp(out, want, strlen(want)) == 0,
		    "%s %s: %s", bins[_i].name, flags[i], out);
		ck_assert_msg(strstr(out, "--version") != NULL,
		    "%s %s does not mention --version", bins[_i].name,
		    flags[i]);
		ck_assert_str_eq(err, "");
		free(out);
		free(err);
	}
}
END_TEST

/* An unknown option: exit 2, the usage on stderr, nothing on stdout. */
START_TEST(bad_option)
{
	const char *argv[] = { bins[_i].bin, "--no-such-option", NULL };
	char *out, *err;

	ck_assert_int_eq(harness_run(argv, &out, &err, RUN_S), 2);
	ck_assert_str_eq(out, "");
	ck_assert_msg(strstr(err, "usage: ") != NULL, "%s", err);
	free(out);
	free(err);
}
END_TEST

/* --- per-command help -------------------------------------------------- */

/*
 * Every command the usage lists (the lines under "commands:" that start
 * with two spaces and a lower-case word) answers `help CMD` and `CMD
 * --help` with the same text, starting with its usage line.
 */
static void
each_command_has_help(const char *bin, const char *name, const char *usage)
{
	const char *argv[] = { bin, "--help", NULL };
	char *out, *line, *save = NULL, prefix[128];
	size_t ncmds = 0;

	ck_assert_int_eq(harness_run(argv, &out, NULL, RUN_S), 0);
	line = strstr(out, "commands:\n");
	ck_assert_msg(line != NULL, "%s --help lists no commands", name);
	for (line = strtok_r(line + 10, "\n", &save);
	     line != NULL && strncmp(line, "  ", 2) == 0 && line[2] >= 'a' &&
	     line[2] <= 'z';
	     line = strtok_r(NULL, "\n", &save)) {
		char cmd[64];
		char *h1, *h2;
		const char *a1[] = { bin, "help", cmd, NULL };
		const char *a2[] = { bin, cmd, "--help", NULL };

		snprintf(cmd, sizeof(cmd), "%.*s", (int)strcspn(line + 2, " "),
		    line + 2);
		ck_assert_msg(harness_run(a1, &h1, NULL, RUN_S) == 0,
		    "%s help %s", name, cmd);
		snprintf(prefix, sizeof(prefix), "%s%s", usage, cmd);
		ck_assert_msg(strncmp(h1, prefix, strlen(prefix)) == 0,
		    "%s help %s: '%s' does not start with '%s'", name, cmd, h1,
		    prefix);
		ck_assert_msg(harness_run(a2, &h2, NULL, RUN_S) == 0,
		    "%s %s --help", name, cmd);
		ck_assert_str_eq(h1, h2);
		free(h1);
		free(h2);
		ncmds++;
	}
	ck_assert_msg(ncmds >= 3, "%s: only %zu commands found", name, ncmds);
	free(out);
}

START_TEST(ctl_command_help)
{
	each_command_has_help(INDICATORCTL_BIN, "indicatorctl",
	    "usage: indicatorctl [-c CONFIG] [-d DATADIR] ");
}
END_TEST

START_TEST(agent_command_help)
{
	each_command_has_help(
	    AGENT_BIN, "indicator-agent", "usage: indicator-agent [OPTIONS] ");
}
END_TEST

/* help with an unknown command is a usage error. */
START_TEST(unknown_command_help)
{
	const char *a1[] = { INDICATORCTL_BIN, "help", "frobnicate", NULL };
	const char *a2[] = { AGENT_BIN, "help", "frobnicate", NULL };
	char *err;

	ck_assert_int_eq(harness_run(a1, NULL, &err, RUN_S), 2);
	ck_assert_msg(strstr(err, "unknown command 'frobnicate'"), "%s", err);
	free(err);
	ck_assert_int_eq(harness_run(a2, NULL, &err, RUN_S), 2);
	ck_assert_msg(strstr(err, "unknown command 'frobnicate'"), "%s", err);
	free(err);
}
END_TEST

/* The agent's help gives each option's bounds from the configuration's
 * table, and the option takes exactly those. */
START_TEST(agent_option_bounds)
{
	const char *usage[] = { AGENT_BIN, "help", "send", NULL };
	const char *low[] = { AGENT_BIN, "--id", "a", "--district", "320583",
		"--ack-timeout", "99", "-n", NULL };
	const char *ok[] = { AGENT_BIN, "--id", "a", "--district", "320583",
		"--ack-timeout", "100", "-n", NULL };
	char *out, *err;

	ck_assert_int_eq(harness_run(usage, &out, NULL, RUN_S), 0);
	ck_assert_msg(strstr(out, "(ack_timeout_ms: 100 to 600000, default "
				  "5000)") != NULL,
	    "%s", out);
	free(out);
	ck_assert_int_eq(harness_run(low, NULL, &err, RUN_S), 2);
	ck_assert_msg(strstr(err, "--ack-timeout (ack_timeout_ms): 99 is "
				  "outside 100..600000") != NULL,
	    "%s", err);
	free(err);
	ck_assert_int_eq(harness_run(ok, NULL, &err, RUN_S), 0);
	free(err);
}
END_TEST

/* --- indicatord -n ------------------------------------------------------ */

/* Writes a CURVE key pair tmp/NAME.key (0600) and tmp/NAME.pub. */
static void
keygen(const char *name)
{
	char path[1024];
	const char *argv[] = { INDICATORCTL_BIN, "keygen", path, NULL };

	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	ck_assert_int_eq(harness_run(argv, NULL, NULL, RUN_S), 0);
}

/*
 * Each case: lines appended to the harness's [daemon] section (@TMP@ stands
 * for the scratch directory, which holds server.key (0600), server.pub,
 * open.key (0644), group.key (0640), agents (an authorised_agents file,
 * 0644), open_agents (0666), group_subscribers (0664) and bad_agents), and
 * what the refusal must say.
 */
static const struct {
	const char *name;
	const char *extra;
	const char *want;
} refused[] = {
	{ "secret key missing",
	    "curve = true\nsecret_key_file = @TMP@/none.key\n"
	    "authorised_agents = @TMP@/agents\n",
	    "secret key @TMP@/none.key: No such file or directory" },
	{ "secret key readable by others",
	    "curve = true\nsecret_key_file = @TMP@/open.key\n"
	    "authorised_agents = @TMP@/agents\n",
	    "secret key @TMP@/open.key is accessible by others (mode 0644); "
	    "fix it with: chmod 600 @TMP@/open.key" },
	{ "secret key not a key",
	    "curve = true\nsecret_key_file = @TMP@/agents.key\n"
	    "authorised_agents = @TMP@/agents\n",
	    "secret key @TMP@/agents.key: " },
	{ "authorised_agents missing",
	    "curve = true\nsecret_key_file = @TMP@/server.key\n"
	    "authorised_agents = @TMP@/none\n",
	    "authorised_agents: @TMP@/none: No such file or directory" },
	{ "authorised_agents malformed",
	    "curve = true\nsecret_key_file = @TMP@/server.key\n"
	    "authorised_agents = @TMP@/bad_agents\n",
	    "authorised_agents: @TMP@/bad_agents:1: " },
	{ "authorised_agents writable by others",
	    "curve = true\nsecret_key_file = @TMP@/server.key\n"
	    "authorised_agents = @TMP@/open_agents\n",
	    "authorised_agents: @TMP@/open_agents is writable by group or "
	    "others (mode 0666): whoever can write it can add a key; fix it "
	    "with: chmod go-w @TMP@/open_agents" },
	{ "subscriber_keys writable by its group",
	    "feed_curve = true\nsecret_key_file = @TMP@/server.key\n"
	    "subscriber_keys = @TMP@/group_subscribers\n",
	    "subscriber_keys: @TMP@/group_subscribers is writable by group or "
	    "others (mode 0664)" },
	{ "secret key readable by its group",
	    "curve = true\nsecret_key_file = @TMP@/group.key\n"
	    "authorised_agents = @TMP@/agents\n",
	    "secret key @TMP@/group.key is accessible by others (mode 0640); "
	    "fix it with: chmod 600 @TMP@/group.key" },
	{ "subscriber_keys missing",
	    "feed_curve = true\nsecret_key_file = @TMP@/server.key\n"
	    "subscriber_keys = @TMP@/none\n",
	    "subscriber_keys: @TMP@/none: No such file or directory" },
	{ "curve without its files", "curve = true\n",
	    "curve = true needs secret_key_file and authorised_agents" },
	{ "endpoint without a scheme", "ingest = 127.0.0.1:7401\n",
	    "ingest: '127.0.0.1:7401' has no scheme: expected tcp://HOST:PORT "
	    "(e.g. tcp://127.0.0.1:7401) or ipc://PATH" },
	{ "plaintext off loopback", "ingest = tcp://0.0.0.0:7401\n",
	    "refusing to bind the ingest socket to tcp://0.0.0.0:7401 without "
	    "CURVE" },
	{ "metrics on every address", "metrics = 0.0.0.0:9464\n",
	    "metrics: '0.0.0.0:9464' is not on loopback" },
	{ "metrics without a port", "metrics = 127.0.0.1\n",
	    "metrics: '127.0.0.1' has no port" },
	{ "unknown time zone", "timezone = Mars/Olympus\n",
	    "time zone 'Mars/Olympus' is unknown" },
	{ "data directory open to others", "data_dir = @TMP@/open\n",
	    "data directory @TMP@/open is accessible by others (mode 0755); "
	    "fix it with: chmod 700 @TMP@/open" },
};

/* s with every @TMP@ replaced by tmp; caller frees. */
static char *
with_tmp(const char *s)
{
	size_t n = harness_count_str(s, "@TMP@");
	char *r = xmalloc(strlen(s) + n * strlen(tmp) + 1), *o = r;
	const char *at;

	while ((at = strstr(s, "@TMP@")) != NULL) {
		memcpy(o, s, (size_t)(at - s));
		o += at - s;
		strcpy(o, tmp);
		o += strlen(tmp);
		s = at + 5;
	}
	strcpy(o, s);
	return r;
}

static void
refused_files(void)
{
	char path[1024], *pub;
	FILE *f;

	keygen("server");
	keygen("open");
	snprintf(path, sizeof(path), "%s/open.key", tmp);
	ck_assert_int_eq(chmod(path, 0644), 0);
	snprintf(path, sizeof(path), "%s/server.pub", tmp);
	pub = harness_read_file(path);
	pub[strcspn(pub, "\n")] = '\0';
	snprintf(path, sizeof(path), "%s/agents", tmp);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s kunshan-01 320583\n", pub);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0644), 0);
	free(pub);
	snprintf(path, sizeof(path), "%s/agents.key", tmp);
	harness_write_file(path, "not a key\n");
	ck_assert_int_eq(chmod(path, 0600), 0);
	snprintf(path, sizeof(path), "%s/bad_agents", tmp);
	harness_write_file(path, "this is not a binding\n");
	ck_assert_int_eq(chmod(path, 0644), 0);
	/* The agents file, writable by others (0666), by its group (0664);
	 * a secret key its group may read (0640). */
	snprintf(path, sizeof(path), "%s/open_agents", tmp);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "# any local user could add a key here\n");
	fclose(f);
	ck_assert_int_eq(chmod(path, 0666), 0);
	snprintf(path, sizeof(path), "%s/group_subscribers", tmp);
	harness_write_file(path, "# the group could add a key here\n");
	ck_assert_int_eq(chmod(path, 0664), 0);
	keygen("group");
	snprintf(path, sizeof(path), "%s/group.key", tmp);
	ck_assert_int_eq(chmod(path, 0640), 0);
	snprintf(path, sizeof(path), "%s/open", tmp);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	ck_assert_int_eq(chmod(path, 0755), 0);
}

/*
 * -n exits 1 with the message, and so does a real start: the one
 * daemon_check() behind both. Neither says "configuration OK" or "ready".
 */
START_TEST(check_refuses)
{
	char *extra, *want, *out, *err;
	const char *check[] = { INDICATORD_BIN, "-n", "-c", dm.conf, NULL };
	const char *start[] = { INDICATORD_BIN, "-c", dm.conf, NULL };

	refused_files();
	extra = with_tmp(refused[_i].extra);
	want = with_tmp(refused[_i].want);
	harness_daemon_init(&dm, extra);

	ck_assert_msg(harness_run(check, &out, &err, RUN_S) == 1, "%s: -n",
	    refused[_i].name);
	ck_assert_msg(strstr(err, want) != NULL,
	    "%s: -n: '%s' does not say '%s'", refused[_i].name, err, want);
	ck_assert_msg(strstr(out, "configuration OK") == NULL, "%s: %s",
	    refused[_i].name, out);
	free(out);
	free(err);

	ck_assert_msg(harness_run(start, &out, &err, RUN_S) == 1, "%s: started",
	    refused[_i].name);
	ck_assert_msg(strstr(err, want) != NULL,
	    "%s: start: '%s' does not say '%s'", refused[_i].name, err, want);
	ck_assert_msg(strstr(err, "ready") == NULL, "%s", err);
	free(out);
	free(err);
	free(extra);
	free(want);
}
END_TEST

/*
 * A key file that belongs to another user is refused: its owner could add
 * a key. Run as root (`indicatord -n` by hand), the daemon's user is the
 * data directory's owner, so the same file is accepted once the data
 * directory belongs to that user too. Needs root for chown.
 */
START_TEST(check_refuses_foreign_owner)
{
	const char *check[] = { INDICATORD_BIN, "-n", "-c", dm.conf, NULL };
	const uid_t other = 54321;
	char *extra, *err, path[1024];

	if (geteuid() != 0) {
		fprintf(stderr, "check_cli: not root, owner case skipped\n");
		return;
	}
	refused_files();
	snprintf(path, sizeof(path), "%s/agents", tmp);
	ck_assert_int_eq(chown(path, other, (gid_t)-1), 0);
	extra = with_tmp("curve = true\nsecret_key_file = @TMP@/server.key\n"
			 "authorised_agents = @TMP@/agents\n");
	harness_daemon_init(&dm, extra);
	ck_assert_int_eq(harness_run(check, NULL, &err, RUN_S), 1);
	ck_assert_msg(strstr(err, "belongs to uid 54321, neither root nor "
				  "the user ") != NULL,
	    "%s", err);
	ck_assert_msg(strstr(err, "fix it with: chown ") != NULL, "%s", err);
	free(err);
	ck_assert_int_eq(mkdir(dm.data_dir, 0700), 0);
	ck_assert_int_eq(chown(dm.data_dir, other, (gid_t)-1), 0);
	ck_assert_int_eq(harness_run(check, NULL, &err, RUN_S), 0);
	free(err);
	free(extra);
}
END_TEST

/* -n of every problem at once names them all. */
START_TEST(check_names_every_problem)
{
	const char *check[] = { INDICATORD_BIN, "-n", "-c", dm.conf, NULL };
	char *extra, *err;

	refused_files();
	extra = with_tmp("timezone = Mars/Olympus\n"
			 "publish = tcp://0.0.0.0:7402\n"
			 "curve = true\nsecret_key_file = @TMP@/open.key\n"
			 "authorised_agents = @TMP@/none\n");
	harness_daemon_init(&dm, extra);
	ck_assert_int_eq(harness_run(check, NULL, &err, RUN_S), 1);
	ck_assert_msg(strstr(err, "Mars/Olympus") != NULL, "%s", err);
	ck_assert_msg(strstr(err, "publish socket") != NULL, "%s", err);
	ck_assert_msg(strstr(err, "chmod 600") != NULL, "%s", err);
	ck_assert_msg(strstr(err, "authorised_agents") != NULL, "%s", err);
	free(err);
	free(extra);
}
END_TEST

/* A good file, with CURVE and a drop-in: exit 0, what was read. */
START_TEST(check_accepts)
{
	const char *check[] = { INDICATORD_BIN, "-n", "-c", dm.conf, NULL };
	char *extra, *out, *err, path[1024], want[2048];

	refused_files();
	extra = with_tmp("curve = true\nsecret_key_file = @TMP@/server.key\n"
			 "authorised_agents = @TMP@/agents\n"
			 "metrics = 127.0.0.1:9464\n");
	harness_daemon_init(&dm, extra);
	snprintf(path, sizeof(path), "%s/conf.d", dm.dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/conf.d/50-site.conf", dm.dir);
	harness_write_file(path, "[daemon]\nbatch_max = 10\n");

	ck_assert_int_eq(harness_run(check, &out, &err, RUN_S), 0);
	snprintf(want, sizeof(want),
	    "indicatord: configuration OK: %s, then %s; registry from the "
	    "files: 10 districts, 8 industries, 6 metrics, 8 targets\n",
	    dm.conf, path);
	ck_assert_str_eq(out, want);
	free(out);
	free(err);
	free(extra);
}
END_TEST

/* A site file of [daemon] keys only gets the built-in registry. */
START_TEST(check_site_file)
{
	const char *check[] = { INDICATORD_BIN, "-n", "-c", dm.conf, NULL };
	char *out, *text;

	harness_daemon_init(&dm, NULL);
	text = with_tmp("[daemon]\ndata_dir = @TMP@/data\n");
	harness_write_file(dm.conf, text);
	ck_assert_int_eq(harness_run(check, &out, NULL, RUN_S), 0);
	ck_assert_msg(strstr(out, "; registry built-in: 10 districts, 8 "
				  "industries, 6 metrics, 8 targets\n") != NULL,
	    "%s", out);
	free(out);
	free(text);
}
END_TEST

/* --- indicator-agent -n --------------------------------------------------- */

static const struct {
	const char *name;
	const char *conf; /* the [agent] section's lines */
	int status;
	const char *want; /* in stdout for 0, stderr otherwise */
} agent_checks[] = {
	{ "good", "id = kunshan-01\ndistrict = 320583\n", 0,
	    "indicator-agent: configuration OK: agent kunshan-01, district "
	    "320583, daemon tcp://127.0.0.1:7401 (plaintext)" },
	{ "good with CURVE",
	    "id = kunshan-01\ndistrict = 320583\nserver_key = "
	    "@TMP@/server.pub\n"
	    "public_key_file = @TMP@/agent.pub\n"
	    "secret_key_file = @TMP@/agent.key\n",
	    0, "(CURVE)" },
	{ "no id", "district = 320583\n", 2, "no agent id" },
	{ "no district", "id = kunshan-01\n", 2, "no district" },
	{ "endpoint without a scheme",
	    "id = k\ndistrict = 320583\nendpoint = 10.0.0.1:7401\n", 2,
	    "endpoint: '10.0.0.1:7401' has no scheme" },
	{ "secret key readable by others",
	    "id = k\ndistrict = 320583\nserver_key = @TMP@/server.pub\n"
	    "public_key_file = @TMP@/open.pub\nsecret_key_file = "
	    "@TMP@/open.key\n",
	    2, "fix it with: chmod 600 @TMP@/open.key" },
	{ "secret key missing",
	    "id = k\ndistrict = 320583\nserver_key = @TMP@/server.pub\n"
	    "public_key_file = @TMP@/agent.pub\nsecret_key_file = @TMP@/none\n",
	    2, "@TMP@/none: No such file or directory" },
	{ "key files without server_key",
	    "id = k\ndistrict = 320583\npublic_key_file = @TMP@/agent.pub\n"
	    "secret_key_file = @TMP@/agent.key\n",
	    2, "need server_key" },
	{ "window out of bounds", "id = k\ndistrict = 320583\nwindow = 0\n", 2,
	    "[agent] window: 0 is outside 1..10000" },
};

START_TEST(agent_check)
{
	char path[1024], *conf, *text, *want, *out, *err;
	const char *argv[] = { AGENT_BIN, "-c", path, "-n", NULL };
	int rc;

	refused_files();
	keygen("agent");
	snprintf(path, sizeof(path), "%s/agent.conf", tmp);
	conf = with_tmp(agent_checks[_i].conf);
	text = xmalloc(strlen(conf) + 16);
	sprintf(text, "[agent]\n%s", conf);
	harness_write_file(path, text);
	free(text);
	want = with_tmp(agent_checks[_i].want);
	rc = harness_run(argv, &out, &err, RUN_S);
	ck_assert_msg(rc == agent_checks[_i].status, "%s: exit %d: %s",
	    agent_checks[_i].name, rc, err);
	ck_assert_msg(strstr(rc == 0 ? out : err, want) != NULL,
	    "%s: '%s' does not say '%s'", agent_checks[_i].name,
	    rc == 0 ? out : err, want);
	free(out);
	free(err);
	free(want);
	free(conf);
}
END_TEST

/* run checks the same before it opens the outbox: nothing is created. */
START_TEST(agent_run_refused_like_check)
{
	char path[1024], outbox[1024], *err, *text;
	const char *argv[] = { AGENT_BIN, "-c", path, "run", NULL };
	struct stat st;

	refused_files();
	snprintf(path, sizeof(path), "%s/agent.conf", tmp);
	snprintf(outbox, sizeof(outbox), "%s/outbox", tmp);
	text = with_tmp("[agent]\nid = k\ndistrict = 320583\n"
			"outbox = @TMP@/outbox\ndrop_dir = @TMP@/drop\n"
			"server_key = @TMP@/server.pub\n"
			"public_key_file = @TMP@/open.pub\n"
			"secret_key_file = @TMP@/open.key\n");
	harness_write_file(path, text);
	ck_assert_int_eq(harness_run(argv, NULL, &err, RUN_S), 2);
	ck_assert_msg(strstr(err, "chmod 600") != NULL, "%s", err);
	ck_assert_int_eq(stat(outbox, &st), -1);
	free(err);
	free(text);
}
END_TEST

/* The agent's secret key is held to the daemon's rule: a file another
 * user owns is refused, even at mode 0600 (its owner could swap the key).
 * Needs root for chown. */
START_TEST(agent_refuses_foreign_secret_key)
{
	char path[1024], key[1024], *err, *text;
	const char *argv[] = { AGENT_BIN, "-n", "-c", path, NULL };

	if (geteuid() != 0) {
		fprintf(stderr, "check_cli: not root, agent owner skipped\n");
		return;
	}
	refused_files();
	keygen("agent");
	snprintf(path, sizeof(path), "%s/agent.conf", tmp);
	snprintf(key, sizeof(key), "%s/agent.key", tmp);
	ck_assert_int_eq(chown(key, 54321, (gid_t)-1), 0);
	text = with_tmp("[agent]\nid = k\ndistrict = 320583\n"
			"server_key = @TMP@/server.pub\n"
			"public_key_file = @TMP@/agent.pub\n"
			"secret_key_file = @TMP@/agent.key\n");
	harness_write_file(path, text);
	ck_assert_int_eq(harness_run(argv, NULL, &err, RUN_S), 2);
	ck_assert_msg(strstr(err, "belongs to uid 54321") != NULL &&
			  strstr(err, "fix it with: chown ") != NULL,
	    "%s", err);
	free(err);
	free(text);
}
END_TEST

/* --- drop-ins at a reload ------------------------------------------------- */

/* The target the daemon gave agg/output_value/'*'/city/2024 (the nearest,
 * 2030's), after one more report. */
static double
city_target_after_report(void *sock, uint64_t seq)
{
	struct harness_report r = { "cli-agent", "320583", 77, seq, "photonics",
		10.0 + (double)seq };
	const char *args[] = { "aggregates", "--prefix",
		"agg/output_value/*/city/2024", "--json", NULL };
	char *out, buf[64];
	double t;

	harness_expect_ack(harness_report_one(sock, &r, 20000),
	    INDICATOR__ACK_STATUS__ACCEPTED, NULL);
	harness_checkpoint(&dm);
	out = harness_ctl(dm.data_dir, args, RUN_S);
	ck_assert_msg(
	    harness_json_get(out, "target", buf, sizeof(buf)), "%s", out);
	t = strtod(buf, NULL);
	free(out);
	return t;
}

/*
 * SIGHUP reads the drop-ins again: one that changes a target takes effect
 * on the next aggregate; a broken one is refused, named with its line, and
 * the old configuration stays.
 */
START_TEST(reload_reads_dropins)
{
	char dir[1024], path[1100];
	void *zctx, *sock;

	harness_daemon_init(&dm, NULL);
	harness_daemon_start(&dm);
	zctx = zmq_ctx_new();
	sock = harness_client_new(zctx, dm.ingest);
	ck_assert_double_eq(city_target_after_report(sock, 1), 5000);

	snprintf(dir, sizeof(dir), "%s/conf.d", dm.dir);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/50-target.conf", dir);
	harness_write_file(path, "[target]\noutput_value/*/city/2030 = 6000\n");
	ck_assert_int_eq(kill(dm.pid, SIGHUP), 0);
	harness_wait_log(dm.log,
	    "configuration reloaded: 10 districts, 8 industries, 6 metrics, 8 "
	    "targets",
	    30000);
	ck_assert_double_eq(city_target_after_report(sock, 2), 6000);

	snprintf(path, sizeof(path), "%s/60-broken.conf", dir);
	harness_write_file(path, "[daemon]\n\nbatch_max = 0\n");
	ck_assert_int_eq(kill(dm.pid, SIGHUP), 0);
	harness_wait_log(dm.log, "60-broken.conf:3: [daemon] batch_max", 30000);
	ck_assert(harness_daemon_log_has(&dm, "reload refused"));
	ck_assert_double_eq(city_target_after_report(sock, 3), 6000);

	zmq_close(sock);
	zmq_ctx_term(zctx);
	ck_assert_int_eq(WEXITSTATUS(harness_daemon_stop(&dm, SIGTERM)), 0);
}
END_TEST

static Suite *
cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc;

	tc = tcase_create("conventions");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, version, 0, NELEM(bins));
	tcase_add_loop_test(tc, help, 0, NELEM(bins));
	tcase_add_loop_test(tc, bad_option, 0, NELEM(bins));
	tcase_add_test(tc, ctl_command_help);
	tcase_add_test(tc, agent_command_help);
	tcase_add_test(tc, unknown_command_help);
	tcase_add_test(tc, agent_option_bounds);
	suite_add_tcase(s, tc);

	tc = tcase_create("check");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, check_refuses, 0, NELEM(refused));
	tcase_add_test(tc, check_refuses_foreign_owner);
	tcase_add_test(tc, check_names_every_problem);
	tcase_add_test(tc, check_accepts);
	tcase_add_test(tc, check_site_file);
	tcase_add_loop_test(tc, agent_check, 0, NELEM(agent_checks));
	tcase_add_test(tc, agent_run_refused_like_check);
	tcase_add_test(tc, agent_refuses_foreign_secret_key);
	suite_add_tcase(s, tc);

	tc = tcase_create("reload");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, reload_reads_dropins);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(cli_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
