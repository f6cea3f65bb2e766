#ifndef INDICATOR_UTF8_H
#define INDICATOR_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* utf8.c */

/* True when the len bytes at s are well-formed UTF-8 (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF). */
bool utf8_valid(const char *s, size_t len);

#endif
