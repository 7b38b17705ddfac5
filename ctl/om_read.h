/* What virtio-ivshmemctl top needs from the daemon's `openmetrics stats`
 * body (daemon/openmetrics.h), read into per-device sums: a disk's read
 * and write requests and bytes, its requests in flight, and its latency
 * histogram with the queues added up.
 *
 * The body is the daemon's reply and is read as untrusted input: every
 * line is checked (name, labels, value), at most OM_MAX_DEVS devices and
 * OM_MAX_LE bucket bounds per device are kept, and anything malformed
 * fails the whole body with the line in err.  Comment lines and families
 * top does not use are skipped.  It depends on no daemon header: the
 * bucket bounds are read from the "le" labels.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OM_MAX_DEVS 256
#define OM_MAX_LE   64

struct om_dev {
	char name[64];
	bool blk;                   /* it had blk_* samples: a disk */
	uint64_t reqs[2], bytes[2]; /* [0] read, [1] write */
	uint64_t inflight;
	unsigned nle;
	double le[OM_MAX_LE];       /* bucket bounds in seconds, ascending (+Inf: INFINITY) */
	uint64_t cum[OM_MAX_LE];    /* requests answered within le[i], every queue's added */
};

struct om_snap {
	struct om_dev *dev;
	unsigned n;
};

/* Read body into s (emptied first).  0, -EBADMSG (err names the line and
 * why), -E2BIG (too many devices or bounds), -ENOMEM. */
int om_read(const char *body, struct om_snap *s, char *err, size_t err_len);
void om_snap_free(struct om_snap *s);
const struct om_dev *om_find(const struct om_snap *s, const char *name);
