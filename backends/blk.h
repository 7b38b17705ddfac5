/* virtio-blk device model over an image file or a block device.
 *
 * Requests become io_uring operations whose buffers point straight into the
 * shared R/W section (no copy).  Everything found on one wakeup is submitted
 * with one io_uring_submit (io_engine.h); used entries are published once per
 * queue per batch and the driver is interrupted only when event-idx (or the
 * NO_INTERRUPT flag) says it wants it.  FLUSH completes after fdatasync.  A
 * failed or short write is reported to the driver as VIRTIO_BLK_S_IOERR.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/io_engine.h"
#include "server/transport.h"

struct blk_params {
	const char *name;           /* device name from the config, for logs */
	const char *image;          /* image file or block device */
	bool read_only;
	char serial[21];            /* GET_ID answer, up to 20 bytes */
	unsigned queues;            /* 1..64 */
	uint16_t queue_size;        /* power of two */
	uint32_t seg_max;           /* data segments per request */
	uint32_t blk_size;          /* 0: from the block device, else 512 */
};

struct blk_stats {
	uint64_t reqs[2], bytes[2], errors[2];   /* [0] read, [1] write */
	uint64_t flushes, discards, write_zeroes, get_ids, unsupported;
};

struct blk_dev;

/* Open the image and set the device up on port.  Negative errno with a
 * reason in err (e.g. the image is missing or cannot be opened for writing). */
int blk_open(const struct blk_params *params, struct ivshm_port *port, struct io_engine *eng,
	     struct blk_dev **ret, char *err, size_t err_len);

struct vdev *blk_vdev(struct blk_dev *dev);
const struct blk_stats *blk_stats(const struct blk_dev *dev);
uint64_t blk_capacity(const struct blk_dev *dev);

/* Re-read the image size and tell the driver (config change). */
int blk_resize(struct blk_dev *dev);

/* Swap the medium for image (NULL: eject, capacity 0) and tell the driver.
 * Refused with -EBUSY while a cell drives a writable disk (its file system
 * would be corrupted) or while I/O is in flight; reason in err. */
int blk_change(struct blk_dev *dev, const char *image, char *err, size_t err_len);

const char *blk_image(const struct blk_dev *dev);     /* "" when ejected */
bool blk_read_only(const struct blk_dev *dev);
unsigned blk_inflight(const struct blk_dev *dev);
unsigned blk_queue_inflight(const struct blk_dev *dev, unsigned q);

/* Free the device; it must be idle (vdev shut down). */
void blk_close(struct blk_dev *dev);
