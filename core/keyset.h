/*
 * A set of observation keys (industry, metric, period) with the line each
 * was first seen on, to find a key given twice in one file, whatever the
 * file's size: each distinct string is kept once, each key as three small
 * numbers and its line, so a file of 100,000 distinct keys costs a few
 * MiB. Pure; allocation failures abort (xmalloc.h).
 */
#ifndef INDICATOR_KEYSET_H
#define INDICATOR_KEYSET_H

#include <stddef.h>

struct keyset;

/* keyset.c */

/* A new empty set; caller owns it. Never NULL. */
struct keyset *keyset_new(void);
/* Frees it; accepts NULL and *k == NULL; sets *k to NULL. */
void keyset_destroy(struct keyset **k);

/*
 * Adds the key seen on line (1 or more). Returns 0 when the key is new,
 * else the line it was first seen on (the set keeps that one).
 */
unsigned keyset_add(struct keyset *k, const char *industry, const char *metric,
    const char *period, unsigned line);

/* Keys in the set. */
size_t keyset_count(const struct keyset *k);

#endif
