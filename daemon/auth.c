/*
 * Who may talk to the daemon: CURVE on the sockets, a ZAP handler that
 * admits only listed keys, the binding of each agent key to one agent_id
 * and district, and the secure defaults checked at start (README,
 * "Security").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "indicatord.h"
#include "keys.h"
#include "utf8.h"
#include "xmalloc.h"

/* A draft option in libzmq 4.3's header, honoured by the library. */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define DOMAIN_INGEST "ingest"
#define DOMAIN_FEED "feed"

struct auth {
	void *zap; /* REP on ZAP_ENDPOINT; NULL without CURVE */
	char secret[KEY_Z85_LEN + 1];
	char public[KEY_Z85_LEN + 1];
	struct key_table agents; /* agent key -> agent_id, district */
	struct key_table subscribers; /* subscriber key -> name */
	uint64_t refused; /* handshakes refused */
};

/* True for endpoints no other machine can reach. */
bool
auth_endpoint_local(const char *ep)
{
	static const char *const local[] = { "ipc://", "inproc://",
		"tcp://127.", "tcp://localhost:", "tcp://[::1]:" };

	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
		if (strncmp(ep, local[i], strlen(local[i])) == 0)
			return true;
	return false;
}

/* The data directory must be its owner's only, as ssh insists for its
 * keys (the key files are checked by keys_file_read()). */
static int
check_private(const char *path, const char *what, mode_t forbidden)
{
	struct stat st;

	if (stat(path, &st) == -1) {
		if (errno == ENOENT)
			return 0; /* created later, with the right mode */
		log_error("indicatord: %s %s: %s", what, path, strerror(errno));
		return -1;
	}
	if (st.st_mode & forbidden) {
		log_error("indicatord: %s %s is accessible by others (mode "
			  "%04o); fix it with: chmod %s %s",
		    what, path, (unsigned)(st.st_mode & 07777),
		    S_ISDIR(st.st_mode) ? "700" : "600", path);
		return -1;
	}
	return 0;
}

/*
 * The daemon's user, for the key files' owner check (keys_file_read()):
 * when the check runs as root (`indicatord -n` by hand), the data
 * directory's owner, which is the user the service runs as (the unit's
 * User= and StateDirectory=); else none but the process's own.
 */
static uid_t
daemon_user(const struct config *cfg)
{
	struct stat st;

	if (geteuid() == 0 && stat(cfg->data_dir, &st) == 0)
		return st.st_uid;
	return (uid_t)-1;
}

/* Loads one key file into t; -1 with "what: path: reason" in err, what
 * being the key that names the file. */
static int
load_table(const struct config *cfg, const char *what, const char *path,
    bool with_district, struct key_table *t, char *err, size_t len)
{
	char why[512], *text;
	int rc;

	if ((text = keys_file_read(
		 path, false, daemon_user(cfg), why, sizeof(why))) == NULL) {
		snprintf(err, len, "%s: %s", what, why);
		return -1;
	}
	rc = keys_parse_table(text, path, with_district, t, why, sizeof(why));
	free(text);
	if (rc == -1)
		snprintf(err, len, "%s: %s", what, why);
	return rc;
}

/* Loads the key tables the configuration names into a; -1 leaves a as it
 * was, with the reason in err. Both are read either way, so that err
 * names every problem. */
static int
load_tables(const struct config *cfg, struct auth *a, char *err, size_t len)
{
	struct key_table agents = { 0 }, subs = { 0 };
	char why[2][640] = { "", "" };
	int rc = 0;

	if (cfg->curve &&
	    load_table(cfg, "authorised_agents", cfg->authorised_agents, true,
		&agents, why[0], sizeof(why[0])) == -1)
		rc = -1;
	if (cfg->feed_curve &&
	    load_table(cfg, "subscriber_keys", cfg->subscriber_keys, false,
		&subs, why[1], sizeof(why[1])) == -1)
		rc = -1;
	if (rc == -1) {
		snprintf(err, len, "%s%s%s", why[0],
		    why[0][0] != '\0' && why[1][0] != '\0' ? "; " : "", why[1]);
		keys_table_free(&agents);
		keys_table_free(&subs);
		return -1;
	}
	keys_table_free(&a->agents);
	keys_table_free(&a->subscribers);
	a->agents = agents;
	a->subscribers = subs;
	return 0;
}

static int
load_secret(const struct config *cfg, struct auth *a)
{
	char err[512], *text;
	int rc;

	if ((text = keys_file_read(cfg->secret_key_file, true, daemon_user(cfg),
		 err, sizeof(err))) == NULL) {
		log_error("indicatord: secret key %s", err);
		return -1;
	}
	rc = keys_parse_key(text, a->secret, err, sizeof(err));
	free(text);
	if (rc == -1) {
		log_error(
		    "indicatord: secret key %s: %s", cfg->secret_key_file, err);
		return -1;
	}
	if (zmq_curve_public(a->public, a->secret) == -1) {
		log_error("indicatord: secret key %s: %s", cfg->secret_key_file,
		    zmq_strerror(errno));
		return -1;
	}
	return 0;
}

/* Plaintext off loopback is refused unless the operator says so; every
 * socket is checked, so that -n names them all. */
static int
check_endpoints(const struct config *cfg)
{
	const struct {
		const char *ep;
		const char *what;
		bool curve;
	} eps[] = {
		{ cfg->ingest, "ingest", cfg->curve },
		{ cfg->publish, "publish", cfg->feed_curve },
		{ cfg->snapshot, "snapshot", cfg->feed_curve },
	};

	int rc = 0;

	for (size_t i = 0; i < sizeof(eps) / sizeof(eps[0]); i++) {
		if (eps[i].curve || auth_endpoint_local(eps[i].ep))
			continue;
		if (!cfg->allow_insecure_remote) {
			log_error("indicatord: refusing to bind the %s socket "
				  "to %s without CURVE: anyone on the network "
				  "could %s; set %s = true, or "
				  "allow_insecure_remote = true to accept the "
				  "risk",
			    eps[i].what, eps[i].ep,
			    i == 0 ? "send reports as any district"
				   : "read the figures",
			    i == 0 ? "curve" : "feed_curve");
			rc = -1;
			continue;
		}
		log_warn("indicatord: %s socket on %s without CURVE "
			 "(allow_insecure_remote = true): not authenticated, "
			 "not encrypted",
		    eps[i].what, eps[i].ep);
	}
	return rc;
}

int
auth_check(struct daemon *d)
{
	const struct config *cfg = &d->cfg;
	struct auth *a;
	char err[1400];
	int rc = 0;

	if (d->auth == NULL)
		d->auth = xcalloc(1, sizeof(*d->auth));
	a = d->auth;
	if (check_endpoints(cfg) == -1)
		rc = -1;
	if (check_private(cfg->data_dir, "data directory", 007) == -1)
		rc = -1;
	if (!cfg->curve && !cfg->feed_curve)
		return rc;
	if (load_secret(cfg, a) == -1)
		rc = -1;
	if (load_tables(cfg, a, err, sizeof(err)) == -1) {
		log_error("auth: %s", err);
		rc = -1;
	}
	return rc;
}

int
auth_start(struct daemon *d)
{
	const struct config *cfg = &d->cfg;
	struct auth *a = d->auth;

	if (!cfg->curve && !cfg->feed_curve)
		return 0;
	/* The handler must exist before any CURVE socket binds. */
	if ((a->zap = zmq_socket(d->zctx, ZMQ_REP)) == NULL ||
	    zmq_bind(a->zap, ZAP_ENDPOINT) == -1) {
		log_error("auth: ZAP handler: %s", zmq_strerror(errno));
		return -1;
	}
	log_info("auth: CURVE on %s%s; server public key %s; %zu agent keys, "
		 "%zu subscriber keys",
	    cfg->curve ? "ingest" : "",
	    cfg->feed_curve
		? (cfg->curve ? ", publish, snapshot" : "publish, snapshot")
		: "",
	    a->public, a->agents.n, a->subscribers.n);
	return 0;
}

void
auth_destroy(struct daemon *d)
{
	struct auth *a = d->auth;

	if (a == NULL)
		return;
	if (a->zap != NULL)
		zmq_close(a->zap);
	keys_table_free(&a->agents);
	keys_table_free(&a->subscribers);
	explicit_bzero(a->secret, sizeof(a->secret));
	free(a);
	d->auth = NULL;
}

int
auth_reload(struct daemon *d, const struct config *next, char *why, size_t len)
{
	if (!d->cfg.curve && !d->cfg.feed_curve)
		return 0;
	if (next->curve != d->cfg.curve ||
	    next->feed_curve != d->cfg.feed_curve)
		log_warn("auth: turning CURVE on or off needs a restart");
	if (load_tables(next, d->auth, why, len) == -1)
		return -1;
	log_info("auth: keys reloaded: %zu agent keys, %zu subscriber keys",
	    d->auth->agents.n, d->auth->subscribers.n);
	return 0;
}

void
auth_server_socket(struct daemon *d, void *sock, bool feed)
{
	const char *domain = feed ? DOMAIN_FEED : DOMAIN_INGEST;
	int one = 1;

	if (!(feed ? d->cfg.feed_curve : d->cfg.curve))
		return;
	zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one));
	zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, d->auth->secret, KEY_Z85_LEN);
	zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, domain, strlen(domain));
	if (zmq_setsockopt(sock, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof(one)) ==
	    -1)
		log_debug(
		    "auth: ZMQ_ZAP_ENFORCE_DOMAIN: %s", zmq_strerror(errno));
}

void *
auth_zap_socket(const struct daemon *d)
{
	return d->auth ? d->auth->zap : NULL;
}

/* Receives the frames of one ZAP request (RFC 27) into f; returns their
 * number, or -1. */
static int
zap_recv(void *sock, zmq_msg_t *f, int max)
{
	int n = 0, more;
	size_t moresz = sizeof(more);

	do {
		if (n == max) { /* too many frames: drain and refuse */
			zmq_msg_t junk;

			zmq_msg_init(&junk);
			zmq_msg_recv(&junk, sock, 0);
			zmq_msg_close(&junk);
		} else {
			zmq_msg_init(&f[n]);
			if (zmq_msg_recv(&f[n], sock, 0) == -1) {
				zmq_msg_close(&f[n]);
				return -1;
			}
			n++;
		}
	} while (
	    zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &moresz) == 0 && more);
	return n;
}

static bool
frame_is(zmq_msg_t *m, const char *s)
{
	return zmq_msg_size(m) == strlen(s) &&
	       memcmp(zmq_msg_data(m), s, strlen(s)) == 0;
}

int
auth_zap_serve(struct daemon *d)
{
	struct auth *a = d->auth;
	zmq_msg_t f[8];
	char key[KEY_Z85_LEN + 1] = "";
	const struct key_table *table = NULL;
	const char *status = "400", *text = "unknown key", *user = "";
	int n;

	if ((n = zap_recv(a->zap, f, 8)) == -1)
		return -1;
	/* version, request id, domain, address, identity, mechanism, key */
	if (n == 7 && frame_is(&f[0], "1.0") && frame_is(&f[5], "CURVE") &&
	    zmq_msg_size(&f[6]) == 32) {
		if (frame_is(&f[2], DOMAIN_INGEST))
			table = &a->agents;
		else if (frame_is(&f[2], DOMAIN_FEED))
			table = &a->subscribers;
		zmq_z85_encode(key, zmq_msg_data(&f[6]), 32);
		if (table != NULL && keys_lookup(table, key) != NULL) {
			status = "200";
			text = "OK";
			user = key; /* the key names the sender from here on */
		}
	} else {
		text = "bad request";
	}
	if (strcmp(status, "200") != 0) {
		a->refused++;
		log_warn("auth: handshake refused: %s %.40s", text, key);
	}
	zmq_send(a->zap, "1.0", 3, ZMQ_SNDMORE);
	zmq_send(a->zap, n > 1 ? zmq_msg_data(&f[1]) : "",
	    n > 1 ? zmq_msg_size(&f[1]) : 0, ZMQ_SNDMORE);
	zmq_send(a->zap, status, 3, ZMQ_SNDMORE);
	zmq_send(a->zap, text, strlen(text), ZMQ_SNDMORE);
	zmq_send(a->zap, user, strlen(user), ZMQ_SNDMORE);
	zmq_send(a->zap, "", 0, 0);
	for (int i = 0; i < n; i++)
		zmq_msg_close(&f[i]);
	return 0;
}

const char *
auth_check_sender(const struct daemon *d, const char *user_id,
    const char *agent_id, const char *district, char *why, size_t len)
{
	const struct key_binding *b;

	if (!d->cfg.curve)
		return NULL; /* loopback development: taken as sent */
	b = keys_lookup(&d->auth->agents, user_id);
	if (b == NULL) {
		snprintf(why, len, "the sender's key is no longer authorised");
		return "not_authorised";
	}
	if (strcmp(b->agent_id, agent_id) != 0) {
		snprintf(why, len, "the key of %s cannot report as agent %s",
		    b->agent_id, agent_id);
		return "not_authorised";
	}
	if (district != NULL && strcmp(b->district, district) != 0) {
		/* The district is not validated yet: echo it only when it is
		 * short, valid UTF-8 (an Ack must stay decodable). */
		if (strlen(district) <= IND_CODE_MAX &&
		    utf8_valid(district, strlen(district)))
			snprintf(why, len,
			    "agent %s reports for district %s only, not %s",
			    b->agent_id, b->district, district);
		else
			snprintf(why, len,
			    "agent %s reports for district %s only",
			    b->agent_id, b->district);
		return "not_authorised";
	}
	return NULL;
}
