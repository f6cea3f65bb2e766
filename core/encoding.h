/*
 * The text encodings of the files district clerks export from Excel and
 * WPS: UTF-8 with or without a byte order mark ("CSV UTF-8"), UTF-16
 * little- or big-endian with one ("Unicode text"), and GB18030, the
 * superset of GBK that Chinese Windows writes as "ANSI". Everything is
 * turned into UTF-8 through iconv(3); what the project stores is UTF-8.
 *
 * Which encoding a file is in: a byte order mark always decides; without
 * one, the configured encoding, and for "auto" (the default) UTF-8 when
 * the whole file is valid UTF-8, else GB18030. Deciding needs the whole
 * file, so the caller feeds it to a sniffer first (struct enc_sniff),
 * then decodes it (struct enc_decoder). Both take the input in chunks of
 * any size and hold a few bytes at most.
 *
 * Pure: no I/O (iconv loads its conversion modules once), no logging.
 */
#ifndef INDICATOR_ENCODING_H
#define INDICATOR_ENCODING_H

#include <stdbool.h>
#include <stddef.h>

enum encoding {
	ENC_AUTO, /* a BOM, else UTF-8 when valid, else GB18030 */
	ENC_UTF8,
	ENC_UTF16LE,
	ENC_UTF16BE,
	ENC_GB18030,
};

/* Bytes shown of an invalid sequence in messages. */
#define ENC_BAD_MAX 4

struct enc_sniff {
	unsigned char head[3]; /* the file's first bytes */
	size_t nhead;
	char carry[4]; /* a UTF-8 sequence cut by the chunk's end */
	size_t ncarry;
	bool utf8; /* valid UTF-8 so far */
	bool nul; /* a NUL byte was seen */
};

struct enc_decoder;

/* Called with each piece of UTF-8 output; nonzero stops the decoding and
 * is returned by enc_decode(). */
typedef int (*enc_out_fn)(const char *utf8, size_t len, void *arg);

/* encoding.c */

/*
 * The encoding named s, case-insensitively: "auto"; "utf-8" or "utf8";
 * "utf-16le", "utf-16be" ("utf-16" means a BOM decides, as auto);
 * "gb18030", and "gbk", "gb2312", "cp936" for it (GB18030 reads them all).
 * false for any other name.
 */
bool encoding_parse(const char *s, enum encoding *e);
/* The encoding's name for messages: "UTF-8", "UTF-16LE", "UTF-16BE",
 * "GB18030", "auto". */
const char *encoding_name(enum encoding e);

void enc_sniff_init(struct enc_sniff *s);
void enc_sniff_feed(struct enc_sniff *s, const void *buf, size_t len);
/*
 * The encoding to read the whole file fed with: the BOM's (and its length
 * in *bom, else 0), else want unless ENC_AUTO, else UTF-8 when every byte
 * was valid UTF-8, else GB18030.
 */
enum encoding enc_sniff_decide(
    const struct enc_sniff *s, enum encoding want, size_t *bom);
/* True when the file holds a NUL byte and no BOM: no CSV does, but UTF-16
 * written without its BOM does. */
bool enc_sniff_nul_no_bom(const struct enc_sniff *s);

/*
 * A decoder from e (not ENC_AUTO) to UTF-8 that drops the first skip bytes
 * (the BOM). Caller owns it; enc_decoder_destroy() accepts NULL and *d ==
 * NULL and sets *d to NULL. NULL when iconv cannot convert from e (never
 * with glibc).
 */
struct enc_decoder *enc_decoder_new(enum encoding e, size_t skip);
void enc_decoder_destroy(struct enc_decoder **d);

/*
 * Decodes the next len bytes, handing the UTF-8 to out. A sequence the
 * chunk cuts waits for the next one. Returns 0; -1 at bytes that are not
 * valid in the encoding, after everything before them went to out (then
 * enc_decoder_bad() shows them; later calls return -1); or out's nonzero
 * return.
 */
int enc_decode(struct enc_decoder *d, const void *buf, size_t len,
    enc_out_fn out, void *arg);
/* End of input: -1 when it ends inside a sequence, else 0. */
int enc_decode_finish(struct enc_decoder *d);
/* The bytes that failed, as hex ("0xff 0x41"), "" when none; valid until
 * the decoder is destroyed. */
const char *enc_decoder_bad(const struct enc_decoder *d);

#endif
