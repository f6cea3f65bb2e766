/*
 * Allocation that aborts on out of memory, so callers grow no untested
 * failure branches (as Redis's zmalloc does).
 */
#ifndef INDICATOR_XMALLOC_H
#define INDICATOR_XMALLOC_H

#include <stddef.h>

/* xmalloc.c */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* Copies src into dst of size dstsize, always NUL-terminated. Returns true
 * when src fit whole. */
#include <stdbool.h>
bool strlcpy_ok(char *dst, const char *src, size_t dstsize);

#endif
