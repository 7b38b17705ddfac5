/* Parsing and checking of virtio-blk requests (pure functions, no I/O).
 *
 * A request is a descriptor chain already validated by the virtqueue layer:
 * readable buffers iov[0..n_out), then writable ones.  With VERSION_1 the
 * layout is free (ANY_LAYOUT), so the request is treated as two byte streams:
 * the header is the first 16 readable bytes, the status the last writable
 * byte, the data whatever lies between.  The header is copied out of shared
 * memory before it is looked at.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "backends/virtio_blk.h"

#define BLK_MAX_SEGMENTS  16     /* discard / write-zeroes ranges per request */

struct blk_limits {
	uint64_t capacity;           /* in 512-byte sectors */
	uint32_t blk_size;           /* logical block size, a power of two >= 512 */
	bool read_only;
	uint32_t max_segments;       /* discard / write-zeroes ranges per request */
	uint32_t max_range_sectors;  /* sectors per discard / write-zeroes range */
};

struct blk_range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

struct blk_request {
	uint32_t type;
	uint64_t sector;
	uint8_t *status;             /* the status byte in shared memory */
	struct iovec *data;          /* data buffers, trimmed in place */
	unsigned ndata;
	uint64_t data_len;
	unsigned nranges;
	struct blk_range ranges[BLK_MAX_SEGMENTS];
};

/* Split a chain into header, data and status; fills *req.  Returns
 * VIRTIO_BLK_S_OK when the request can go on to blk_check(), VIRTIO_BLK_S_*
 * to complete it at once with that status, or -EINVAL when there is no
 * writable byte to put a status into (the chain is then completed empty). */
int blk_parse(struct iovec *iov, unsigned n_out, unsigned n_in, struct blk_request *req);

/* Check a parsed request against the device limits (range, alignment,
 * read-only, supported type, discard segments).  Returns VIRTIO_BLK_S_*. */
int blk_check(struct blk_request *req, const struct blk_limits *lim);

/* Copy up to len bytes from an iovec list (gather) into dst; returns bytes. */
uint64_t iov_to_buf(const struct iovec *iov, unsigned n, void *dst, uint64_t len);

/* Copy len bytes into an iovec list (scatter); returns bytes copied. */
uint64_t iov_from_buf(const struct iovec *iov, unsigned n, const void *src, uint64_t len);

/* Drop the first bytes of an iovec list in place; returns the new count
 * (the list start moves forward through *iov). */
unsigned iov_skip(struct iovec **iov, unsigned n, uint64_t bytes);
