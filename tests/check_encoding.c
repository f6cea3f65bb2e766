/*
 * The encodings clerks' files come in (core/encoding.h): the sniffer picks
 * what Excel and WPS wrote (a BOM; else valid UTF-8; else GB18030), and
 * each decoder gives back exactly the UTF-8 text the bytes were made from,
 * whatever the chunks they are fed in, and refuses bytes that are not the
 * encoding with the bytes shown. The GB18030 and UTF-16 bytes are made
 * here with iconv(3) from the UTF-8 text.
 */
#include <check.h>
#include <errno.h>
#include <iconv.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoding.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Chinese, ASCII, CRLF, a character outside the BMP (U+20000: four bytes
 * in GB18030, a surrogate pair in UTF-16), and the euro sign (a
 * four-byte GB18030 sequence of the BMP). */
static const char sample[] =
    "行业,指标,报告期,数值,单位,备注\r\n"
    "前沿新材料,总产值,2025年第三季度,\"1,234.5\",亿元,昆山 𠀀 €\r\n"
    "量子技术,链主企业,2025年9月,3,家,\"引号\"\"内\"\r\n";

struct buf {
	char *p;
	size_t len;
	size_t cap;
};

static void
buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		ck_assert_ptr_nonnull(b->p);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static int
out_add(const char *utf8, size_t len, void *arg)
{
	buf_add(arg, utf8, len);
	return 0;
}

/* text (UTF-8) in encoding `to`, as iconv makes it, after prefix. */
static struct buf
encode(const char *to, const char *prefix, size_t prefix_len, const char *text)
{
	struct buf b = { NULL, 0, 0 };
	iconv_t cd = iconv_open(to, "UTF-8");
	char out[4096], *in = (char *)text, *o = out;
	size_t inleft = strlen(text), oleft = sizeof(out);

	ck_assert_msg(
	    cd != (iconv_t)-1, "iconv_open %s: %s", to, strerror(errno));
	ck_assert_msg(iconv(cd, &in, &inleft, &o, &oleft) != (size_t)-1,
	    "iconv to %s: %s", to, strerror(errno));
	iconv_close(cd);
	buf_add(&b, prefix, prefix_len);
	buf_add(&b, out, (size_t)(o - out));
	return b;
}

static const struct {
	const char *s;
	bool ok;
	enum encoding e;
} names[] = {
	{ "auto", true, ENC_AUTO },
	{ "AUTO", true, ENC_AUTO },
	{ "utf-8", true, ENC_UTF8 },
	{ "UTF8", true, ENC_UTF8 },
	{ "utf-16", true, ENC_AUTO },
	{ "utf-16le", true, ENC_UTF16LE },
	{ "UTF-16BE", true, ENC_UTF16BE },
	{ "gb18030", true, ENC_GB18030 },
	{ "GBK", true, ENC_GB18030 },
	{ "gb2312", true, ENC_GB18030 },
	{ "cp936", true, ENC_GB18030 },
	{ "latin1", false, ENC_AUTO },
	{ "", false, ENC_AUTO },
	{ "utf-8-bom", false, ENC_AUTO },
};

START_TEST(test_names)
{
	enum encoding e = ENC_UTF16BE;

	ck_assert_msg(
	    encoding_parse(names[_i].s, &e) == names[_i].ok, "%s", names[_i].s);
	if (names[_i].ok)
		ck_assert_int_eq(e, names[_i].e);
}
END_TEST

/* How each file is made, what it should be read as, and the BOM. */
static const struct {
	const char *name;
	const char *iconv; /* the encoding made with iconv */
	const char *bom;
	size_t bom_len;
	enum encoding want; /* configured */
	enum encoding read; /* decided */
} files[] = {
	{ "UTF-8", "UTF-8", "", 0, ENC_AUTO, ENC_UTF8 },
	{ "UTF-8 with BOM", "UTF-8", "\xef\xbb\xbf", 3, ENC_AUTO, ENC_UTF8 },
	{ "UTF-16LE with BOM", "UTF-16LE", "\xff\xfe", 2, ENC_AUTO,
	    ENC_UTF16LE },
	{ "UTF-16BE with BOM", "UTF-16BE", "\xfe\xff", 2, ENC_AUTO,
	    ENC_UTF16BE },
	{ "GB18030", "GB18030", "", 0, ENC_AUTO, ENC_GB18030 },
	{ "GB18030 configured", "GB18030", "", 0, ENC_GB18030, ENC_GB18030 },
	{ "a BOM wins over the configuration", "UTF-16LE", "\xff\xfe", 2,
	    ENC_GB18030, ENC_UTF16LE },
	{ "UTF-8 configured", "UTF-8", "", 0, ENC_UTF8, ENC_UTF8 },
};

START_TEST(test_decide_and_decode)
{
	static const size_t chunks[] = { 0, 1, 2, 3, 5, 7 };
	struct buf in =
	    encode(files[_i].iconv, files[_i].bom, files[_i].bom_len, sample);
	struct enc_sniff sn;
	enum encoding e;
	size_t bom;

	for (size_t k = 0; k < NELEM(chunks); k++) {
		size_t chunk = chunks[k] ? chunks[k] : in.len;
		struct buf out = { NULL, 0, 0 };
		struct enc_decoder *d;

		enc_sniff_init(&sn);
		for (size_t off = 0; off < in.len; off += chunk)
			enc_sniff_feed(&sn, in.p + off,
			    in.len - off < chunk ? in.len - off : chunk);
		e = enc_sniff_decide(&sn, files[_i].want, &bom);
		ck_assert_msg(e == files[_i].read, "%s: read as %s",
		    files[_i].name, encoding_name(e));
		ck_assert_uint_eq(bom, files[_i].bom_len);
		ck_assert(!enc_sniff_nul_no_bom(&sn));
		d = enc_decoder_new(e, bom);
		ck_assert_ptr_nonnull(d);
		for (size_t off = 0; off < in.len; off += chunk)
			ck_assert_int_eq(
			    enc_decode(d, in.p + off,
				in.len - off < chunk ? in.len - off : chunk,
				out_add, &out),
			    0);
		ck_assert_int_eq(enc_decode_finish(d), 0);
		ck_assert_str_eq(enc_decoder_bad(d), "");
		ck_assert_msg(out.len == strlen(sample) &&
				  memcmp(out.p, sample, out.len) == 0,
		    "%s, chunks of %zu: got %.*s", files[_i].name, chunk,
		    (int)out.len, out.p);
		enc_decoder_destroy(&d);
		ck_assert_ptr_null(d);
		free(out.p);
	}
	free(in.p);
}
END_TEST

/* Bytes that are not the encoding: what came before is decoded, then the
 * decoder stops and shows them. */
static const struct {
	const char *name;
	enum encoding e;
	const char *in;
	size_t len;
	const char *before; /* decoded before the failure */
	const char *bad;
	bool at_finish; /* the end cuts a sequence */
} invalid[] = {
	{ "UTF-8, a stray byte", ENC_UTF8,
	    "ab\xff"
	    "cd",
	    5, "ab", "0xff 0x63 0x64", false },
	{ "UTF-8, cut at the end", ENC_UTF8, "ab\xe6\x98", 4, "ab", "0xe6 0x98",
	    true },
	{ "GB18030, a lead byte and a space", ENC_GB18030, "x\x81 y", 4, "x",
	    "0x81 0x20 0x79", false },
	{ "GB18030, cut at the end", ENC_GB18030, "x\xc7", 2, "x", "0xc7",
	    true },
	{ "UTF-16LE, a lone high surrogate", ENC_UTF16LE,
	    "a\0\x00\xd8"
	    "b\0",
	    6, "a", "0x00 0xd8 0x62 0x00", false },
	{ "UTF-16LE, an odd byte at the end", ENC_UTF16LE, "a\0b", 3, "a",
	    "0x62", true },
};

START_TEST(test_invalid)
{
	struct buf out = { NULL, 0, 0 };
	struct enc_decoder *d = enc_decoder_new(invalid[_i].e, 0);
	int rc;

	ck_assert_ptr_nonnull(d);
	rc = enc_decode(d, invalid[_i].in, invalid[_i].len, out_add, &out);
	if (invalid[_i].at_finish) {
		ck_assert_int_eq(rc, 0);
		ck_assert_int_eq(enc_decode_finish(d), -1);
	} else {
		ck_assert_int_eq(rc, -1);
		ck_assert_int_eq(enc_decode(d, "z", 1, out_add, &out), -1);
	}
	ck_assert_msg(strncmp(out.p ? out.p : "", invalid[_i].before,
			  strlen(invalid[_i].before)) == 0 &&
			  out.len == strlen(invalid[_i].before),
	    "%s: decoded '%.*s'", invalid[_i].name, (int)out.len,
	    out.p ? out.p : "");
	ck_assert_str_eq(enc_decoder_bad(d), invalid[_i].bad);
	enc_decoder_destroy(&d);
	enc_decoder_destroy(&d);
	enc_decoder_destroy(NULL);
	free(out.p);
}
END_TEST

/* Without a BOM: a UTF-8 sequence cut by the file's end is not UTF-8; NUL
 * bytes say UTF-16 without its BOM; pure ASCII is UTF-8. */
START_TEST(test_sniff_edges)
{
	struct enc_sniff sn;
	size_t bom;

	enc_sniff_init(&sn);
	enc_sniff_feed(&sn, "abc\xe6\x98", 5);
	ck_assert_int_eq(enc_sniff_decide(&sn, ENC_AUTO, &bom), ENC_GB18030);

	enc_sniff_init(&sn);
	enc_sniff_feed(&sn, "a\0b\0", 4);
	ck_assert(enc_sniff_nul_no_bom(&sn));

	enc_sniff_init(&sn);
	enc_sniff_feed(&sn,
	    "\xff\xfe"
	    "a\0",
	    4);
	ck_assert(!enc_sniff_nul_no_bom(&sn));

	enc_sniff_init(&sn);
	enc_sniff_feed(&sn, "industry,metric\n", 16);
	ck_assert_int_eq(enc_sniff_decide(&sn, ENC_AUTO, &bom), ENC_UTF8);
	ck_assert_uint_eq(bom, 0);

	/* A BOM split over three feeds is still found. */
	enc_sniff_init(&sn);
	enc_sniff_feed(&sn, "\xef", 1);
	enc_sniff_feed(&sn, "\xbb", 1);
	enc_sniff_feed(&sn,
	    "\xbf"
	    "a",
	    2);
	ck_assert_int_eq(enc_sniff_decide(&sn, ENC_GB18030, &bom), ENC_UTF8);
	ck_assert_uint_eq(bom, 3);

	/* An empty file is UTF-8. */
	enc_sniff_init(&sn);
	ck_assert_int_eq(enc_sniff_decide(&sn, ENC_AUTO, &bom), ENC_UTF8);
}
END_TEST

static int
stop_out(const char *utf8, size_t len, void *arg)
{
	(void)utf8;
	(void)len;
	(void)arg;
	return 7;
}

/* The output function's nonzero return stops the decoding and is
 * returned. */
START_TEST(test_out_stops)
{
	struct enc_decoder *d = enc_decoder_new(ENC_GB18030, 0);

	ck_assert_int_eq(enc_decode(d, "abc", 3, stop_out, NULL), 7);
	enc_decoder_destroy(&d);
	d = enc_decoder_new(ENC_UTF8, 0);
	ck_assert_int_eq(enc_decode(d, "abc", 3, stop_out, NULL), 7);
	enc_decoder_destroy(&d);
}
END_TEST

static Suite *
encoding_suite(void)
{
	Suite *s = suite_create("encoding");
	TCase *tc = tcase_create("encoding");

	tcase_add_loop_test(tc, test_names, 0, NELEM(names));
	tcase_add_loop_test(tc, test_decide_and_decode, 0, NELEM(files));
	tcase_add_loop_test(tc, test_invalid, 0, NELEM(invalid));
	tcase_add_test(tc, test_sniff_edges);
	tcase_add_test(tc, test_out_stops);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(encoding_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
