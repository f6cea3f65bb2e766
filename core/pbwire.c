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
