#include <string.h>

#include "pbwire.h"

static int
varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;
	unsigned shift = 0;

	do {
		if (*p == end || shift > 63)
			return -1;
		v |= (uint64_t)(**p & 0x7f) << shift;
		shift += 7;
	} while (*(*p)++ & 0x80);
	*out = v;
	return 0;
}

int
pbwire_next(const uint8_t **p, const uint8_t *end, struct pbwire_field *f)
{
	uint64_t tag;

	if (*p == end)
		return 0;
	if (varint(p, end, &tag) == -1 || (tag >> 3) == 0 ||
	    (tag >> 3) > UINT32_MAX)
		return -1;
	f->number = (uint32_t)(tag >> 3);
	f->type = (int)(tag & 7);
	f->u = 0;
	f->data = NULL;
	f->len = 0;
	switch (f->type) {
	case 0:
		return varint(p, end, &f->u) == 0 ? 1 : -1;
	case 1:
	case 5: {
		size_t n = f->type == 1 ? 8 : 4;

		if ((size_t)(end - *p) < n)
			return -1;
		for (size_t i = n; i-- > 0;)
			f->u = f->u << 8 | (*p)[i];
		*p += n;
		return 1;
	}
	case 2:
		if (varint(p, end, &f->u) == -1 || (uint64_t)(end - *p) < f->u)
			return -1;
		f->data = *p;
		f->len = (size_t)f->u;
		*p += f->len;
		return 1;
	default:
		return -1;
	}
}

double
pbwire_double(const struct pbwire_field *f)
{
	double d;

	memcpy(&d, &f->u, sizeof(d));
	return d;
}

/* Occurrences of each field number seen in one message occurrence, for
 * pbwire_path's index: a small table, searched linearly (messages have few
 * fields). */
#define SEEN_MAX 32

struct seen {
	uint32_t number[SEEN_MAX];
	size_t count[SEEN_MAX];
	size_t n;
};

static size_t
seen_next(struct seen *s, uint32_t number)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->number[i] == number)
			return s->count[i]++;
	if (s->n == SEEN_MAX)
		return 0; /* more field numbers than any message here has */
	s->number[s->n] = number;
	s->count[s->n++] = 1;
	return 0;
}

static int
walk(const ProtobufCMessageDescriptor *desc, const uint8_t *p,
    const uint8_t *end, struct pbwire_path *path, pbwire_string_fn fn,
    void *arg)
{
	struct pbwire_field f;
	struct seen seen;
	size_t depth = path->depth;
	int rc;

	seen.n = 0;
	while ((rc = pbwire_next(&p, end, &f)) == 1) {
		const ProtobufCFieldDescriptor *fd;

		if (f.type != 2) /* numbers: no lookup */
			continue;
		fd = protobuf_c_message_descriptor_get_field(desc, f.number);
		if (fd == NULL || (fd->type != PROTOBUF_C_TYPE_STRING &&
				      fd->type != PROTOBUF_C_TYPE_MESSAGE))
			continue;
		path->at[depth].number = f.number;
		path->at[depth].index = seen_next(&seen, f.number);
		path->depth = depth + 1;
		if (fd->type == PROTOBUF_C_TYPE_STRING)
			rc = fn(path, fd, f.data, f.len, arg);
		else if (depth + 1 < PBWIRE_DEPTH_MAX)
			rc = walk(fd->descriptor, f.data, f.data + f.len, path,
			    fn, arg);
		else
			rc = 0;
		path->depth = depth;
		if (rc != 0)
			return rc;
	}
	return rc;
}

int
pbwire_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
    size_t len, pbwire_string_fn fn, void *arg)
{
	struct pbwire_path path;

	path.depth = 0;
	return walk(desc, buf, buf + len, &path, fn, arg);
}
