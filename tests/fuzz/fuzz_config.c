/*
 * libFuzzer target: the daemon and agent configuration parsers
 * (config_parse, agent_config_parse) on outside text. A file that parses
 * must leave every string NUL-terminated in its array; one that does not
 * must say why.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Large (the registry): kept out of the stack. */
static struct config cfg;
static struct agent_config acfg;

static void
check_str(const char *what, const char *s, size_t size)
{
	if (strnlen(s, size) == size) {
		fprintf(stderr, "fuzz_config: %s not NUL-terminated\n", what);
		abort();
	}
}

static void
check_err(int rc, const char *err)
{
	if (rc != 0 && rc != -1) {
		fprintf(stderr, "fuzz_config: returned %d\n", rc);
		abort();
	}
	if (rc == -1 && err[0] == '\0') {
		fprintf(stderr, "fuzz_config: failed without a reason\n");
		abort();
	}
}

static void
check_config(void)
{
	const struct registry *reg = &cfg.reg;
	char why[256];

	check_str("ingest", cfg.ingest, sizeof(cfg.ingest));
	check_str("publish", cfg.publish, sizeof(cfg.publish));
	check_str("snapshot", cfg.snapshot, sizeof(cfg.snapshot));
	check_str("data_dir", cfg.data_dir, sizeof(cfg.data_dir));
	check_str("timezone", cfg.timezone, sizeof(cfg.timezone));
	if (reg->ndistricts > REG_DISTRICTS_MAX ||
	    reg->nindustries > REG_INDUSTRIES_MAX ||
	    reg->nmetrics > REG_METRICS_MAX ||
	    reg->ntargets > REG_TARGETS_MAX) {
		fprintf(stderr, "fuzz_config: registry counts overflow\n");
		abort();
	}
	for (size_t i = 0; i < reg->ndistricts; i++) {
		check_str("district code", reg->districts[i].code,
		    sizeof(reg->districts[i].code));
		check_str("district name", reg->districts[i].name,
		    sizeof(reg->districts[i].name));
	}
	for (size_t i = 0; i < reg->nindustries; i++) {
		check_str("industry code", reg->industries[i].code,
		    sizeof(reg->industries[i].code));
		check_str("industry name", reg->industries[i].name,
		    sizeof(reg->industries[i].name));
	}
	for (size_t i = 0; i < reg->nmetrics; i++) {
		const struct reg_metric *m = &reg->metrics[i];

		check_str("metric code", m->code, sizeof(m->code));
		check_str("metric name", m->name, sizeof(m->name));
		check_str("metric unit", m->unit, sizeof(m->unit));
		if (m->naccept > REG_UNITS_MAX) {
			fprintf(stderr, "fuzz_config: accept overflow\n");
			abort();
		}
		for (size_t j = 0; j < m->naccept; j++)
			check_str("accepted unit", m->accept[j].code,
			    sizeof(m->accept[j].code));
	}
	/* config_parse() promises a registry that passes its check. */
	if (registry_check(reg, why, sizeof(why)) != NULL) {
		fprintf(stderr, "fuzz_config: parsed, but %s\n", why);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = xmalloc(size + 1);
	char err[512];
	int rc;

	memcpy(text, data, size);
	text[size] = '\0';

	err[0] = '\0';
	rc = config_parse(&cfg, text, "fuzz.conf", err, sizeof(err));
	check_err(rc, err);
	if (rc == 0) {
		check_config();
		config_resolve_dir(&cfg, "/var/lib/indicatord");
		check_str("data_dir", cfg.data_dir, sizeof(cfg.data_dir));
	}

	err[0] = '\0';
	rc = agent_config_parse(&acfg, text, "agent.conf", err, sizeof(err));
	check_err(rc, err);
	if (rc == 0) {
		check_str("agent id", acfg.id, sizeof(acfg.id));
		check_str(
		    "agent district", acfg.district, sizeof(acfg.district));
		check_str(
		    "agent endpoint", acfg.endpoint, sizeof(acfg.endpoint));
		check_str("agent outbox", acfg.outbox, sizeof(acfg.outbox));
	}
	free(text);
	return 0;
}
