/* The command a virtio-blk request carries: parsing and checking (pure
 * functions, no I/O).
 *
 * A request is a descriptor chain validated by the virtqueue layer:
 * device-readable buffers iov[0..n_out), then device-writable ones.  With
 * VERSION_1 the framing is free (ANY_LAYOUT), so the request is two byte
 * streams: the header is the first 16 readable bytes, the status the last
 * writable byte, the data whatever lies between, in the direction its type
 * needs.  The header is copied out of shared memory before it is looked at.
 * Data in the wrong direction (an IN whose data the driver made
 * device-readable, an OUT with device-writable data) is an IOERR: the
 * device never writes into a buffer the driver marked device-readable
 * (virtio 1.2 §2.7.4), and a read must not "succeed" with no data.
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

struct blk_cmd {
	uint32_t type;
	uint64_t sector;
	uint8_t *status;             /* the status byte in shared memory */
	struct iovec *data;          /* data buffers, trimmed in place */
	unsigned ndata;
	uint64_t data_len;
	unsigned nranges;
	struct blk_range ranges[BLK_MAX_SEGMENTS];
};

/* Split a chain into header, data and status; fills *cmd.  Returns
 * VIRTIO_BLK_S_OK when the command can go on to blk_cmd_check(),
 * VIRTIO_BLK_S_* to complete it at once with that status, or -EINVAL when
 * there is no writable byte to put a status into (the request is then
 * answered empty). */
int blk_cmd_parse(struct iovec *iov, unsigned n_out, unsigned n_in, struct blk_cmd *cmd);

/* Check a parsed command against the device limits (range, alignment,
 * read-only, supported type, discard segments).  Returns VIRTIO_BLK_S_*. */
int blk_cmd_check(struct blk_cmd *cmd, const struct blk_limits *lim);
