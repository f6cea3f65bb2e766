#include <stdint.h>

#include "utf8.h"

/*
 * The length of the well-formed sequence at p (1 to 4), 0 when the bytes
 * there are not one, or -1 when they are the start of one that end cuts.
 */
static int
utf8_seq(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = *p;
	uint32_t cp;
	size_t n;

	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) {
		n = 1;
		cp = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		n = 2;
		cp = c & 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		n = 3;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i <= n; i++) {
		if (p + i == end)
			return -1;
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* Overlong forms, surrogates, beyond Unicode. */
	if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
	    (n == 3 && cp < 0x10000) || (cp >= 0xd800 && cp <= 0xdfff) ||
	    cp > 0x10ffff)
		return 0;
	return (int)n + 1;
}

bool
utf8_valid(const char *s, size_t len)
{
	bool bad;

	return utf8_prefix(s, len, &bad) == len;
}

size_t
utf8_prefix(const char *s, size_t len, bool *bad)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *end = p + len;
	int n;

	*bad = false;
	while (p < end) {
		if ((n = utf8_seq(p, end)) <= 0) {
			*bad = n == 0;
			break;
		}
		p += n;
	}
	return (size_t)(p - (const unsigned char *)s);
}

long
utf8_control(const char *s, size_t len, bool tab_ok)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < len; i++) {
		if ((p[i] < 0x20 && !(p[i] == '\t' && tab_ok)) || p[i] == 0x7f)
			return p[i];
		/* 0xc2 is never a continuation byte: it always leads. */
		if (p[i] == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 &&
		    p[i + 1] <= 0x9f)
			return p[i + 1];
	}
	return -1;
}
