#ifndef INDICATOR_UTF8_H
#define INDICATOR_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* utf8.c */

/* True when the len bytes at s are well-formed UTF-8 (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF). */
bool utf8_valid(const char *s, size_t len);

/*
 * The first control character in the len bytes at s, which should be
 * well-formed UTF-8: a C0 control (U+0000..U+001F; the tab U+0009 allowed
 * when tab_ok), DEL (U+007F) or a C1 control (U+0080..U+009F, encoded as
 * 0xc2 0x80..0x9f). -1 when there is none.
 */
long utf8_control(const char *s, size_t len, bool tab_ok);

/*
 * The number of bytes at the start of s that are whole well-formed UTF-8
 * sequences: len when all are. When less, *bad says why it stopped: true
 * at bytes that are not UTF-8, false at a sequence that the end of the
 * buffer cuts (it may go on in the next one).
 */
size_t utf8_prefix(const char *s, size_t len, bool *bad);

#endif
