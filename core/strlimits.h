/*
 * Hard limits on the lengths of the strings the system carries. The
 * configurable limits (config.h) may be lower, never higher: every fixed-size
 * buffer in the project is sized from these.
 */
#ifndef INDICATOR_LIMITS_H
#define INDICATOR_LIMITS_H

#define IND_AGENT_ID_MAX 64 /* bytes, without the NUL */
#define IND_CODE_MAX 32 /* district, industry, metric codes */
#define IND_PERIOD_MAX 7 /* "2025-Q3", "2025-09" */
#define IND_UNIT_MAX 16
#define IND_NOTE_MAX 256
#define IND_NAME_MAX 1024 /* registry display names: 341 CJK characters */
#define IND_SCOPE_MAX IND_CODE_MAX
/* File transactions (docs/protocol.md): the most parts a file may be cut
 * into, and the most bytes of parts the daemon stages for one. */
#define IND_FILE_PARTS_MAX 100000
#define IND_FILE_BYTES_MAX (64ULL << 20)
/* agg/<metric>/<industry>/<scope>/<period> */
#define IND_TOPIC_MAX (4 + 4 * IND_CODE_MAX + 4 + IND_PERIOD_MAX)

#endif
