/*
 * Encodings into UTF-8: a sniffer that decides, and decoders (iconv for
 * UTF-16 and GB18030, a validator for UTF-8).
 */
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "encoding.h"
#include "utf8.h"
#include "xmalloc.h"

/* Output buffer of one iconv() call: GB18030 and UTF-16 take at most 4
 * bytes of UTF-8 per 2 bytes of input. */
#define ENC_OUT_MAX 8192

static const unsigned char bom_utf8[] = { 0xef, 0xbb, 0xbf };
static const unsigned char bom_le[] = { 0xff, 0xfe };
static const unsigned char bom_be[] = { 0xfe, 0xff };

struct enc_decoder {
	enum encoding e;
	iconv_t cd; /* (iconv_t)-1 for UTF-8 */
	size_t skip; /* BOM bytes still to drop */
	char carry[8]; /* a sequence cut by the chunk's end */
	size_t ncarry;
	bool failed;
	char bad[ENC_BAD_MAX * 5 + 1];
};

bool
encoding_parse(const char *s, enum encoding *e)
{
	static const struct {
		const char *name;
		enum encoding e;
	} names[] = {
		{ "auto", ENC_AUTO },
		{ "utf-8", ENC_UTF8 },
		{ "utf8", ENC_UTF8 },
		{ "utf-16", ENC_AUTO },
		{ "utf-16le", ENC_UTF16LE },
		{ "utf-16be", ENC_UTF16BE },
		{ "gb18030", ENC_GB18030 },
		{ "gbk", ENC_GB18030 },
		{ "gb2312", ENC_GB18030 },
		{ "cp936", ENC_GB18030 },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i].name) == 0) {
			*e = names[i].e;
			return true;
		}
	return false;
}

const char *
encoding_name(enum encoding e)
{
	switch (e) {
	case ENC_UTF8:
		return "UTF-8";
	case ENC_UTF16LE:
		return "UTF-16LE";
	case ENC_UTF16BE:
		return "UTF-16BE";
	case ENC_GB18030:
		return "GB18030";
	case ENC_AUTO:
		break;
	}
	return "auto";
}

void
enc_sniff_init(struct enc_sniff *s)
{
	memset(s, 0, sizeof(*s));
	s->utf8 = true;
}

/* Validates UTF-8 across chunks: a sequence the chunk cuts is carried. */
static void
sniff_utf8(struct enc_sniff *s, const char *p, size_t len)
{
	size_t ok;
	bool bad;

	while (s->ncarry > 0 && len > 0 && s->utf8) {
		s->carry[s->ncarry++] = *p++;
		len--;
		ok = utf8_prefix(s->carry, s->ncarry, &bad);
		if (ok == s->ncarry)
			s->ncarry = 0;
		else if (bad || s->ncarry == sizeof(s->carry))
			s->utf8 = false;
	}
	if (!s->utf8 || len == 0)
		return;
	ok = utf8_prefix(p, len, &bad);
	if (bad) {
		s->utf8 = false;
		return;
	}
	s->ncarry = len - ok;
	memcpy(s->carry, p + ok, s->ncarry);
}

void
enc_sniff_feed(struct enc_sniff *s, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len && s->nhead < sizeof(s->head); i++)
		s->head[s->nhead++] = p[i];
	if (!s->nul && memchr(p, '\0', len) != NULL)
		s->nul = true;
	if (s->utf8)
		sniff_utf8(s, buf, len);
}

static bool
has_bom(const struct enc_sniff *s, const unsigned char *bom, size_t n)
{
	return s->nhead >= n && memcmp(s->head, bom, n) == 0;
}

enum encoding
enc_sniff_decide(const struct enc_sniff *s, enum encoding want, size_t *bom)
{
	*bom = 0;
	if (has_bom(s, bom_utf8, sizeof(bom_utf8))) {
		*bom = sizeof(bom_utf8);
		return ENC_UTF8;
	}
	if (has_bom(s, bom_le, sizeof(bom_le))) {
		*bom = sizeof(bom_le);
		return ENC_UTF16LE;
	}
	if (has_bom(s, bom_be, sizeof(bom_be))) {
		*bom = sizeof(bom_be);
		return ENC_UTF16BE;
	}
	if (want != ENC_AUTO)
		return want;
	/* A file that ends inside a sequence is not valid UTF-8. */
	return s->utf8 && s->ncarry == 0 ? ENC_UTF8 : ENC_GB18030;
}

bool
enc_sniff_nul_no_bom(const struct enc_sniff *s)
{
	return s->nul && !has_bom(s, bom_le, sizeof(bom_le)) &&
	       !has_bom(s, bom_be, sizeof(bom_be));
}

struct enc_decoder *
enc_decoder_new(enum encoding e, size_t skip)
{
	struct enc_decoder *d;
	const char *from = NULL;

	switch (e) {
	case ENC_UTF16LE:
		from = "UTF-16LE";
		break;
	case ENC_UTF16BE:
		from = "UTF-16BE";
		break;
	case ENC_GB18030:
		from = "GB18030";
		break;
	case ENC_UTF8:
	case ENC_AUTO:
		e = ENC_UTF8;
		break;
	}
	d = xcalloc(1, sizeof(*d));
	d->e = e;
	d->skip = skip;
	d->cd = (iconv_t)-1;
	if (from != NULL &&
	    (d->cd = iconv_open("UTF-8", from)) == (iconv_t)-1) {
		free(d);
		return NULL;
	}
	return d;
}

void
enc_decoder_destroy(struct enc_decoder **dp)
{
	struct enc_decoder *d;

	if (dp == NULL || (d = *dp) == NULL)
		return;
	if (d->cd != (iconv_t)-1)
		iconv_close(d->cd);
	free(d);
	*dp = NULL;
}

static int
enc_fail(struct enc_decoder *d, const char *p, size_t n)
{
	size_t o = 0;

	if (n > ENC_BAD_MAX)
		n = ENC_BAD_MAX;
	d->bad[0] = '\0';
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(d->bad + o, sizeof(d->bad) - o,
		    "%s0x%02x", i > 0 ? " " : "", (unsigned char)p[i]);
	d->failed = true;
	return -1;
}

/* UTF-8 in, UTF-8 out once checked. *used: bytes of p consumed. */
static int
decode_utf8(struct enc_decoder *d, const char *p, size_t len, size_t *used,
    enc_out_fn out, void *arg)
{
	bool bad;
	size_t ok = utf8_prefix(p, len, &bad);
	int rc;

	if (ok > 0 && (rc = out(p, ok, arg)) != 0)
		return rc;
	*used = ok;
	if (bad)
		return enc_fail(d, p + ok, len - ok);
	return 0;
}

/* Through iconv. *used: bytes of p consumed (the rest is a cut sequence). */
static int
decode_iconv(struct enc_decoder *d, const char *p, size_t len, size_t *used,
    enc_out_fn out, void *arg)
{
	char obuf[ENC_OUT_MAX];
	char *in = (char *)p;
	size_t inleft = len;
	int rc;

	while (inleft > 0) {
		char *o = obuf;
		size_t oleft = sizeof(obuf);
		size_t r = iconv(d->cd, &in, &inleft, &o, &oleft);
		int err = errno;

		if (o > obuf && (rc = out(obuf, (size_t)(o - obuf), arg)) != 0)
			return rc;
		if (r != (size_t)-1 || err == E2BIG)
			continue;
		if (err == EINVAL) /* cut at the end: wait for more */
			break;
		*used = len - inleft;
		return enc_fail(d, in, inleft);
	}
	*used = len - inleft;
	return 0;
}

static int
decode_some(struct enc_decoder *d, const char *p, size_t len, size_t *used,
    enc_out_fn out, void *arg)
{
	if (d->e == ENC_UTF8)
		return decode_utf8(d, p, len, used, out, arg);
	return decode_iconv(d, p, len, used, out, arg);
}

int
enc_decode(struct enc_decoder *d, const void *buf, size_t len, enc_out_fn out,
    void *arg)
{
	const char *p = buf;
	size_t used;
	int rc;

	if (d->failed)
		return -1;
	while (d->skip > 0 && len > 0) {
		d->skip--;
		p++;
		len--;
	}
	/* First the carried sequence, completed a byte at a time. */
	while (d->ncarry > 0 && len > 0) {
		d->carry[d->ncarry++] = *p++;
		len--;
		used = 0;
		rc = decode_some(d, d->carry, d->ncarry, &used, out, arg);
		if (rc != 0)
			return rc;
		if (used == d->ncarry) {
			d->ncarry = 0;
		} else if (used > 0) {
			memmove(d->carry, d->carry + used, d->ncarry - used);
			d->ncarry -= used;
		} else if (d->ncarry == sizeof(d->carry)) {
			return enc_fail(d, d->carry, d->ncarry);
		}
	}
	if (len == 0)
		return 0;
	used = 0;
	if ((rc = decode_some(d, p, len, &used, out, arg)) != 0)
		return rc;
	if (len - used > sizeof(d->carry) / 2)
		return enc_fail(d, p + used, len - used);
	d->ncarry = len - used;
	memcpy(d->carry, p + used, d->ncarry);
	return 0;
}

int
enc_decode_finish(struct enc_decoder *d)
{
	if (d->failed)
		return -1;
	if (d->ncarry > 0)
		return enc_fail(d, d->carry, d->ncarry);
	return 0;
}

const char *
enc_decoder_bad(const struct enc_decoder *d)
{
	return d->failed ? d->bad : "";
}
