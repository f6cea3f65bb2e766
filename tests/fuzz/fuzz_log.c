/*
 * libFuzzer target: the log's escaping (log/log.h, log_escape()) on
 * outside bytes, into a buffer whose size the first byte picks. The output
 * must be one printable line of well-formed UTF-8 that fits the buffer,
 * and unescaping it must give back exactly the bytes consumed (all of them
 * when the buffer is large enough): nothing lost, nothing forged.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
bad(const char *why)
{
	fprintf(stderr, "fuzz_log: %s\n", why);
	abort();
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	bad("\\x not followed by lower-case hex");
	return 0;
}

/* Undoes log_escape() into out; returns the length. */
static size_t
unescape(const char *s, size_t n, unsigned char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\') {
			out[o++] = (unsigned char)s[i];
			continue;
		}
		if (++i == n)
			bad("a lone backslash at the end");
		switch (s[i]) {
		case '\\':
			out[o++] = '\\';
			break;
		case 'n':
			out[o++] = '\n';
			break;
		case 'r':
			out[o++] = '\r';
			break;
		case 't':
			out[o++] = '\t';
			break;
		case 'x':
			if (i + 2 >= n)
				bad("\\x cut short");
			out[o++] = (unsigned char)(hexval(s[i + 1]) << 4 |
						   hexval(s[i + 2]));
			i += 2;
			break;
		default:
			bad("an unknown escape");
		}
	}
	return o;
}

static void
check(const uint8_t *in, size_t len, size_t dstsize)
{
	char *out = malloc(dstsize);
	unsigned char *back = malloc(len + 1);
	size_t n, used;

	if (out == NULL || back == NULL)
		abort();
	used = log_escape(out, dstsize, (const char *)in, len, &n);
	if (used > len)
		bad("consumed more than given");
	if (n >= dstsize || out[n] != '\0' || strlen(out) != n)
		bad("output does not fit or is not terminated");
	if (!utf8_valid(out, n))
		bad("output is not UTF-8");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)out[i];

		if (c < 0x20 || c == 0x7f)
			bad("a control character in the output");
		if (c == 0xc2 && i + 1 < n && (unsigned char)out[i + 1] < 0xa0)
			bad("a C1 control in the output");
		if (c == 0xe2 && i + 2 < n &&
		    (unsigned char)out[i + 1] == 0x80 &&
		    ((unsigned char)out[i + 2] == 0xa8 ||
			(unsigned char)out[i + 2] == 0xa9))
			bad("a line separator in the output");
	}
	if (unescape(out, n, back) != used || memcmp(back, in, used) != 0)
		bad("unescaping does not give the input back");
	if (dstsize > 4 * len && used != len)
		bad("a large enough buffer did not take everything");
	free(out);
	free(back);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	check(data + 1, size - 1, (size_t)data[0] + 1);
	check(data + 1, size - 1, 4 * (size - 1) + 1);
	return 0;
}
