/* virtio-blk device model over an image file, a block device or nothing.
 *
 * The transport (core/transport.h) hands it requests; each becomes I/O
 * engine operations whose buffers point straight into the shared R/W
 * section (no copy), handed over with everything else of the loop iteration
 * at once (core/io_engine.h: io_uring or the thread pool, which behave the
 * same).  When an operation completes the
 * status byte is written and the request answered (vdev_complete); the
 * transport publishes and interrupts.  FLUSH completes after fdatasync.  A
 * failed or short write reaches the driver as VIRTIO_BLK_S_IOERR.
 *
 * The null disk: an image named "null:SIZE" (SIZE in bytes, a positive
 * multiple of 512, with an optional K, M or G suffix of 1024 as the
 * config's sizes) has no file.  Each request is parsed and checked as on
 * a real medium (sector range, alignment, read-only, segment limits) and
 * answered in the same loop iteration, without io_uring and without
 * touching data: a read's buffer is left as the driver mapped it (its used
 * length still counts the data), flush, discard and write-zeroes succeed.
 * Like Linux null_blk or SPDK's null bdev it measures the transport alone.
 * The name travels as any image's does (blk_image, the hand-over journal,
 * blk_change); a file called so is given as ./null:SIZE.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/io_engine.h"
#include "core/transport.h"

struct blk_params {
	const char *name;           /* device name from the config, for logs */
	const char *image;          /* image file, block device or "null:SIZE" */
	bool read_only;
	char serial[21];            /* GET_ID answer, up to 20 bytes */
	unsigned queues;            /* 1..64 */
	uint16_t queue_size;        /* power of two */
	uint32_t seg_max;           /* data segments per request; 0: automatic */
	uint32_t blk_size;          /* 0: from the block device, else 512 */
};

struct blk_stats {
	uint64_t reqs[2], bytes[2], errors[2];   /* [0] read, [1] write */
	uint64_t flushes, discards, write_zeroes, get_ids, unsupported;
};

struct blk_dev;

/* seg_max offered for a configured one (0: automatic): 126 (what QEMU
 * offers), fewer on a section too small for 126 pages in a quarter of it. */
uint32_t blk_seg_max(uint64_t rw_size, uint32_t want);

/* size_max offered on a R/W section of rw_size bytes: a page multiple from
 * 4 KiB to 1 MiB, so that the largest request (seg_max segments of
 * size_max) takes about a quarter of the section. */
uint32_t blk_size_max(uint64_t rw_size, uint32_t seg_max);

/* Can the Linux virtio_blk driver work in this R/W section?  It allocates a
 * ring of queue_size entries per queue, then bounces every request through
 * the section: a 16-byte header, an indirect table (16 bytes per
 * descriptor), each data segment and the status byte, each rounded up to a
 * power-of-two number of chunks (server/dma_pool.h).  A request that cannot
 * be allocated is retried until it can; one that can never be allocated
 * hangs the cell's I/O.  So the rings and one request of seg_max segments
 * of size_max must fit (seg_max 0: automatic, as blk_seg_max()).  Returns
 * 0, or -ENOSPC with the numbers in why. */
int blk_layout_check(uint64_t rw_size, unsigned queues, uint16_t queue_size, uint32_t seg_max,
		     char *why, size_t why_len);

/* Open the image and set the device up on port.  Negative errno with a
 * reason in err (e.g. the image is missing or cannot be opened for writing). */
int blk_open(const struct blk_params *params, struct ivshm_port *port, struct io_engine *eng,
	     struct blk_dev **ret, char *err, size_t err_len);

struct vdev *blk_vdev(struct blk_dev *dev);
const struct blk_stats *blk_stats(const struct blk_dev *dev);
uint64_t blk_capacity(const struct blk_dev *dev);

/* Re-read the image size and tell the driver (config change); the null
 * disk keeps its size. */
int blk_resize(struct blk_dev *dev);

/* Swap the medium for image (NULL: eject, capacity 0) and tell the driver.
 * Refused with -EBUSY while a cell drives a writable disk (its file system
 * would be corrupted) or while I/O is in flight; reason in err. */
int blk_change(struct blk_dev *dev, const char *image, char *err, size_t err_len);

const char *blk_image(const struct blk_dev *dev);     /* "" when ejected */
/* Changes with every change or eject of the medium. */
unsigned blk_generation(const struct blk_dev *dev);
bool blk_read_only(const struct blk_dev *dev);
unsigned blk_inflight(const struct blk_dev *dev);

/* Free the device; it must be idle (vdev shut down). */
void blk_close(struct blk_dev *dev);
