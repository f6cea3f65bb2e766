#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "xmalloc.h"

static const char z85_alphabet[] =
    "0123456789abcdefghijklmnopqrstuvwxyz"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

bool
keys_z85_valid(const char *s)
{
	size_t n = strlen(s);

	if (n != KEY_Z85_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strchr(z85_alphabet, s[i]) == NULL)
			return false;
	return true;
}

/* The next line of *text into buf (without its end), trimmed; false at the
 * end of the text. Lines longer than buf are cut, and then fail the field
 * checks. */
static bool
next_line(const char **text, char *buf, size_t len)
{
	const char *s = *text, *nl;
	size_t n;

	if (*s == '\0')
		return false;
	nl = strchr(s, '\n');
	n = nl ? (size_t)(nl - s) : strlen(s);
	*text = s + n + (nl != NULL);
	while (
	    n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	if (n >= len)
		n = len - 1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return true;
}

int
keys_parse_key(const char *text, char *out, char *err, size_t errlen)
{
	char line[256];

	while (next_line(&text, line, sizeof(line))) {
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if (!keys_z85_valid(line)) {
			snprintf(err, errlen, "not a Z85 key of %d characters",
			    KEY_Z85_LEN);
			return -1;
		}
		memcpy(out, line, KEY_Z85_LEN + 1);
		return 0;
	}
	snprintf(err, errlen, "no key in the file");
	return -1;
}

int
keys_parse_table(const char *text, const char *name, bool with_district,
    struct key_table *t, char *err, size_t errlen)
{
	char line[512], *field[4], *save = NULL;
	size_t cap = 0, want = with_district ? 3 : 2;
	int lineno = 0;

	memset(t, 0, sizeof(*t));
	while (next_line(&text, line, sizeof(line))) {
		struct key_binding *b;
		size_t n = 0;

		lineno++;
		if (line[0] == '\0' || line[0] == '#')
			continue;
		for (char *f = strtok_r(line, " \t", &save); f != NULL && n < 4;
		     f = strtok_r(NULL, " \t", &save))
			field[n++] = f;
		if (n != want) {
			snprintf(err, errlen, "%s:%d: expected %s", name,
			    lineno,
			    with_district ? "KEY AGENT_ID DISTRICT"
					  : "KEY NAME");
			goto fail;
		}
		if (!keys_z85_valid(field[0])) {
			snprintf(err, errlen,
			    "%s:%d: not a Z85 key of %d characters", name,
			    lineno, KEY_Z85_LEN);
			goto fail;
		}
		if (strlen(field[1]) > IND_AGENT_ID_MAX ||
		    (with_district && strlen(field[2]) > IND_CODE_MAX)) {
			snprintf(
			    err, errlen, "%s:%d: name too long", name, lineno);
			goto fail;
		}
		for (size_t i = 0; i < t->n; i++) {
			if (strcmp(t->rows[i].key, field[0]) == 0 ||
			    strcmp(t->rows[i].agent_id, field[1]) == 0) {
				snprintf(err, errlen,
				    "%s:%d: key or name %s already bound", name,
				    lineno,
				    strcmp(t->rows[i].key, field[0]) == 0
					? "(the key)"
					: field[1]);
				goto fail;
			}
		}
		if (t->n == cap) {
			cap = cap ? cap * 2 : 16;
			t->rows = xrealloc(t->rows, cap * sizeof(*t->rows));
		}
		b = &t->rows[t->n++];
		memset(b, 0, sizeof(*b));
		strlcpy_ok(b->key, field[0], sizeof(b->key));
		strlcpy_ok(b->agent_id, field[1], sizeof(b->agent_id));
		if (with_district)
			strlcpy_ok(b->district, field[2], sizeof(b->district));
	}
	return 0;
fail:
	keys_table_free(t);
	return -1;
}

void
keys_table_free(struct key_table *t)
{
	free(t->rows);
	t->rows = NULL;
	t->n = 0;
}

const struct key_binding *
keys_lookup(const struct key_table *t, const char *key)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->rows[i].key, key) == 0)
			return &t->rows[i];
	return NULL;
}
