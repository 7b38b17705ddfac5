#include "ctl/om_read.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P          "virtio_ivshmemd_"
#define MAX_LINE   1024

enum what { W_OTHER, W_REQS, W_BYTES, W_INFLIGHT, W_BUCKET };

struct sample {
	char name[128];
	char device[64], direction[16], le[40];
	bool has_device, has_direction, has_le;
	double value;
};

static const struct { const char *name; enum what what; } wanted[] = {
	{ P "blk_requests_total", W_REQS },
	{ P "blk_bytes_total", W_BYTES },
	{ P "blk_inflight", W_INFLIGHT },
	{ P "queue_latency_seconds_bucket", W_BUCKET },
};

static bool name_char(char c, bool first)
{
	return isalpha((unsigned char)c) || c == '_' || c == ':' || (!first && isdigit((unsigned char)c));
}

/* A label value up to the closing quote, unescaped into out (len bytes);
 * NULL when it is malformed or does not fit. */
static const char *label_value(const char *p, char *out, size_t len)
{
	size_t n = 0;
	for (; *p && *p != '"'; p++) {
		char c = *p;
		if (c == '\\') {
			c = *++p;
			if (c == 'n')
				c = '\n';
			else if (c != '\\' && c != '"')
				return NULL;
		}
		if (n + 1 >= len)
			return NULL;
		out[n++] = c;
	}
	if (*p != '"')
		return NULL;
	out[n] = '\0';
	return p + 1;
}

/* {name="value",...}: device, direction and le kept, others checked and
 * dropped. */
static const char *labels(const char *p, struct sample *s)
{
	p++;    /* '{' */
	while (*p != '}') {
		char key[64], val[256];
		size_t n = 0;
		while (name_char(*p, n == 0) && *p != ':' && n + 1 < sizeof(key))
			key[n++] = *p++;
		key[n] = '\0';
		if (n == 0 || p[0] != '=' || p[1] != '"')
			return NULL;
		p = label_value(p + 2, val, sizeof(val));
		if (!p)
			return NULL;
		char *dst = NULL;
		size_t cap = 0;
		bool *flag = NULL;
		if (strcmp(key, "device") == 0)
			dst = s->device, cap = sizeof(s->device), flag = &s->has_device;
		else if (strcmp(key, "direction") == 0)
			dst = s->direction, cap = sizeof(s->direction), flag = &s->has_direction;
		else if (strcmp(key, "le") == 0)
			dst = s->le, cap = sizeof(s->le), flag = &s->has_le;
		if (dst) {
			if (*flag || strlen(val) >= cap)
				return NULL;
			memcpy(dst, val, strlen(val) + 1);
			*flag = true;
		}
		if (*p == ',' && p[1] != '}')
			p++;
		else if (*p != '}')
			return NULL;
	}
	return p + 1;
}

/* NAME[{LABELS}] VALUE [TIMESTAMP] */
static bool parse_sample(const char *line, struct sample *s)
{
	const char *p = line;
	size_t n = 0;
	memset(s, 0, sizeof(*s));
	while (name_char(*p, n == 0)) {
		if (n + 1 >= sizeof(s->name))
			return false;
		s->name[n++] = *p++;
	}
	if (n == 0)
		return false;
	if (*p == '{' && !(p = labels(p, s)))
		return false;
	if (*p++ != ' ')
		return false;
	char *end;
	s->value = strtod(p, &end);
	return end != p && (*end == '\0' || *end == ' ') && !isnan(s->value);
}

static struct om_dev *device(struct om_snap *snap, const char *name, int *err)
{
	for (unsigned i = 0; i < snap->n; i++)
		if (strcmp(snap->dev[i].name, name) == 0)
			return &snap->dev[i];
	if (snap->n == OM_MAX_DEVS) {
		*err = -E2BIG;
		return NULL;
	}
	if ((snap->n & (snap->n - 1)) == 0) {  /* 0, 1, 2, 4, ...: grow */
		struct om_dev *d = realloc(snap->dev, (snap->n ? 2 * snap->n : 1) * sizeof(*d));
		if (!d) {
			*err = -ENOMEM;
			return NULL;
		}
		snap->dev = d;
	}
	struct om_dev *d = &snap->dev[snap->n++];
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	return d;
}

/* Add count to the bucket of bound le (kept sorted). */
static int add_bucket(struct om_dev *d, double le, uint64_t count)
{
	unsigned i = 0;
	while (i < d->nle && d->le[i] < le)
		i++;
	if (i < d->nle && d->le[i] == le) {
		d->cum[i] += count;
		return 0;
	}
	if (d->nle == OM_MAX_LE)
		return -E2BIG;
	memmove(&d->le[i + 1], &d->le[i], (d->nle - i) * sizeof(d->le[0]));
	memmove(&d->cum[i + 1], &d->cum[i], (d->nle - i) * sizeof(d->cum[0]));
	d->le[i] = le;
	d->cum[i] = count;
	d->nle++;
	return 0;
}

/* One sample into snap: 0, or a negative errno with why. */
static int take(struct om_snap *snap, const struct sample *s, const char **why)
{
	enum what w = W_OTHER;
	for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++)
		if (strcmp(s->name, wanted[i].name) == 0)
			w = wanted[i].what;
	if (w == W_OTHER)
		return 0;
	/* Counts: whole, not negative, within 64 bits. */
	if (!s->has_device || s->value < 0 || s->value >= 18446744073709551616.0 ||
	    s->value != floor(s->value)) {
		*why = "a count without a device or not a whole number";
		return -EBADMSG;
	}
	uint64_t v = (uint64_t)s->value;
	int err = 0;
	struct om_dev *d = device(snap, s->device, &err);
	if (!d) {
		*why = err == -E2BIG ? "too many devices" : "out of memory";
		return err;
	}
	int dir = -1;
	if (w == W_REQS || w == W_BYTES) {
		dir = !s->has_direction ? -1 : strcmp(s->direction, "read") == 0 ? 0
		    : strcmp(s->direction, "write") == 0 ? 1 : -1;
		if (dir < 0) {
			*why = "a direction other than read or write";
			return -EBADMSG;
		}
	}
	switch (w) {
	case W_REQS: d->blk = true; d->reqs[dir] = v; return 0;
	case W_BYTES: d->blk = true; d->bytes[dir] = v; return 0;
	case W_INFLIGHT: d->blk = true; d->inflight = v; return 0;
	case W_BUCKET: {
		char *end;
		double le = strcmp(s->le, "+Inf") == 0 ? INFINITY : strtod(s->le, &end);
		if (!s->has_le || (!isinf(le) && (end == s->le || *end || !(le >= 0)))) {
			*why = "a bucket without a bound";
			return -EBADMSG;
		}
		err = add_bucket(d, le, v);
		if (err)
			*why = "too many bucket bounds";
		return err;
	}
	case W_OTHER: break;
	}
	return 0;
}

int om_read(const char *body, struct om_snap *s, char *err, size_t err_len)
{
	om_snap_free(s);
	unsigned lineno = 0;
	for (const char *p = body; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char line[MAX_LINE];
		const char *why = "malformed sample";
		int r = -EBADMSG;
		lineno++;
		if (len >= sizeof(line)) {
			why = "line too long";
			goto bad;
		}
		memcpy(line, p, len);
		line[len] = '\0';
		p += len + (nl != NULL);
		if (line[0] == '#')
			continue;
		struct sample smp;
		if (!parse_sample(line, &smp))
			goto bad;
		r = take(s, &smp, &why);
		if (r < 0)
			goto bad;
		continue;
bad:
		snprintf(err, err_len, "line %u of the daemon's OpenMetrics answer: %s", lineno, why);
		om_snap_free(s);
		return r;
	}
	return 0;
}

void om_snap_free(struct om_snap *s)
{
	free(s->dev);
	s->dev = NULL;
	s->n = 0;
}

const struct om_dev *om_find(const struct om_snap *s, const char *name)
{
	for (unsigned i = 0; i < s->n; i++)
		if (strcmp(s->dev[i].name, name) == 0)
			return &s->dev[i];
	return NULL;
}
