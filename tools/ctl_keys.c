/*
 * indicatorctl's key commands: keygen writes a CURVE keypair, authorise and
 * revoke edit the authorised-agents file that binds each agent key to one
 * agent_id and one district (README, "Security").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "indicatorctl.h"
#include "keys.h"
#include "xmalloc.h"

/* Writes text to path, failing if it exists: a key is never overwritten. */
static int
write_new(const char *path, const char *text, mode_t mode)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);

	if (fd == -1) {
		fprintf(
		    stderr, "indicatorctl: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) == -1) {
		fprintf(
		    stderr, "indicatorctl: %s: %s\n", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	return close(fd);
}

int
cmd_keygen(struct ctl *ctl, int argc, char *argv[])
{
	char pub[KEY_Z85_LEN + 1], sec[KEY_Z85_LEN + 1];
	char path[CONFIG_PATH_MAX], text[256];
	char *pos[1];

	if (args_parse(ctl, argc, argv, NULL, pos, 1) == -1)
		return usage();
	if (zmq_curve_keypair(pub, sec) == -1) {
		fprintf(
		    stderr, "indicatorctl: keygen: %s\n", zmq_strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), "%s.key", pos[0]);
	snprintf(text, sizeof(text),
	    "# CURVE secret key of %s: keep it readable by its owner only\n"
	    "%s\n",
	    pos[0], sec);
	explicit_bzero(sec, sizeof(sec));
	if (write_new(path, text, 0600) == -1) {
		explicit_bzero(text, sizeof(text));
		return 1;
	}
	explicit_bzero(text, sizeof(text));
	snprintf(path, sizeof(path), "%s.pub", pos[0]);
	snprintf(
	    text, sizeof(text), "# CURVE public key of %s\n%s\n", pos[0], pub);
	if (write_new(path, text, 0644) == -1)
		return 1;
	printf("%s.key (secret, mode 0600) and %s.pub written; public key "
	       "%s\n",
	    pos[0], pos[0], pub);
	return 0;
}

/* The key given on the command line: a Z85 key, or a file holding one. */
static int
key_arg(const char *arg, char *key)
{
	char err[256], *text;
	int rc;

	if (keys_z85_valid(arg)) {
		memcpy(key, arg, KEY_Z85_LEN + 1);
		return 0;
	}
	if ((text = config_read_text(arg, err, sizeof(err))) == NULL) {
		fprintf(stderr,
		    "indicatorctl: %s is neither a Z85 key nor a key file: "
		    "%s\n",
		    arg, err);
		return -1;
	}
	rc = keys_parse_key(text, key, err, sizeof(err));
	free(text);
	if (rc == -1)
		fprintf(stderr, "indicatorctl: %s: %s\n", arg, err);
	return rc;
}

/* The authorised-agents file: --file, else the configuration's. */
static const char *
bindings_path(struct ctl *ctl, const char *file)
{
	char err[512];

	if (file != NULL)
		return file;
	ctl->cfg = xmalloc(sizeof(*ctl->cfg));
	if (config_load(ctl->cfg, ctl->conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "indicatorctl: %s\n", err);
		return NULL;
	}
	if (ctl->cfg->authorised_agents[0] == '\0') {
		fprintf(stderr,
		    "indicatorctl: no authorised_agents file in the "
		    "configuration; give --file PATH\n");
		return NULL;
	}
	return ctl->cfg->authorised_agents;
}

/*
 * Rewrites the bindings file without the lines binding key or agent_id,
 * then with add appended (NULL: nothing), atomically (a temporary file
 * renamed over it). Comments and other lines are kept. *removed counts the
 * lines taken out.
 */
static int
bindings_rewrite(const char *path, const char *key, const char *agent_id,
    const char *add, int *removed)
{
	char err[256], tmp[CONFIG_PATH_MAX + 8], *text, *line, *save = NULL;
	FILE *f;
	int fd;

	*removed = 0;
	text = config_read_text(path, err, sizeof(err));
	if (text == NULL && errno != ENOENT) {
		fprintf(stderr, "indicatorctl: %s\n", err);
		return -1;
	}
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644)) == -1 ||
	    (f = fdopen(fd, "w")) == NULL) {
		fprintf(stderr, "indicatorctl: %s: %s\n", tmp, strerror(errno));
		if (fd != -1)
			close(fd);
		free(text);
		return -1;
	}
	for (line = text ? strtok_r(text, "\n", &save) : NULL; line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char k[128] = "", a[128] = "";

		if (line[0] != '#' && sscanf(line, "%127s %127s", k, a) == 2 &&
		    ((key != NULL && strcmp(k, key) == 0) ||
			(agent_id != NULL && strcmp(a, agent_id) == 0))) {
			(*removed)++;
			continue;
		}
		fprintf(f, "%s\n", line);
	}
	free(text);
	if (add != NULL)
		fprintf(f, "%s\n", add);
	if (fflush(f) != 0 || fsync(fileno(f)) == -1 || fclose(f) != 0 ||
	    rename(tmp, path) == -1) {
		fprintf(
		    stderr, "indicatorctl: %s: %s\n", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int
cmd_authorise(struct ctl *ctl, int argc, char *argv[])
{
	const char *file = NULL, *path;
	const struct opt opts[] = { { "file", &file, NULL },
		{ NULL, NULL, NULL } };
	char key[KEY_Z85_LEN + 1], line[256], *pos[3];
	struct config *cfg;
	char err[512] = "";
	int removed;

	if (args_parse(ctl, argc, argv, opts, pos, 3) == -1)
		return usage();
	if (key_arg(pos[0], key) == -1)
		return 1;
	if (strlen(pos[1]) == 0 || strlen(pos[1]) > IND_AGENT_ID_MAX ||
	    strpbrk(pos[1], " \t#") != NULL) {
		fprintf(stderr, "indicatorctl: bad agent_id '%s'\n", pos[1]);
		return 1;
	}
	cfg = xmalloc(sizeof(*cfg));
	if (config_load(cfg, ctl->conf, err, sizeof(err)) == -1 ||
	    registry_district(&cfg->reg, pos[2]) == NULL) {
		fprintf(stderr, "indicatorctl: %s\n",
		    err[0] ? err : "district not in the registry");
		free(cfg);
		return 1;
	}
	free(cfg);
	if ((path = bindings_path(ctl, file)) == NULL)
		return 1;
	snprintf(line, sizeof(line), "%s  %s  %s", key, pos[1], pos[2]);
	if (bindings_rewrite(path, key, pos[1], line, &removed) == -1)
		return 1;
	printf("%s: %s bound to agent %s, district %s%s; reload the daemon "
	       "(SIGHUP) to apply\n",
	    path, key, pos[1], pos[2],
	    removed ? " (replacing its earlier binding)" : "");
	return 0;
}

int
cmd_revoke(struct ctl *ctl, int argc, char *argv[])
{
	const char *file = NULL, *path;
	const struct opt opts[] = { { "file", &file, NULL },
		{ NULL, NULL, NULL } };
	char key[KEY_Z85_LEN + 1], *pos[1];
	bool is_key;
	int removed;

	if (args_parse(ctl, argc, argv, opts, pos, 1) == -1)
		return usage();
	is_key = keys_z85_valid(pos[0]);
	if (is_key)
		memcpy(key, pos[0], sizeof(key));
	if ((path = bindings_path(ctl, file)) == NULL)
		return 1;
	if (bindings_rewrite(path, is_key ? key : NULL, is_key ? NULL : pos[0],
		NULL, &removed) == -1)
		return 1;
	if (removed == 0) {
		fprintf(stderr, "indicatorctl: %s: no binding of %s\n", path,
		    pos[0]);
		return 1;
	}
	printf("%s: %s revoked; reload the daemon (SIGHUP) to apply\n", path,
	    pos[0]);
	return 0;
}
