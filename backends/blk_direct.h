/* Direct I/O for cache = none (backends/blk.h): what an image opened
 * O_DIRECT needs aligned, whether a request's buffers meet it, and a
 * device's bounce slots for the requests that do not.
 *
 * The kernel takes an O_DIRECT read or write only when the file offset and
 * every segment's length are multiples of the offset alignment and every
 * segment's address is a multiple of the memory alignment; anything else
 * fails with EINVAL.  blk_dio_align() finds both, in this order:
 *   - statx(2) STATX_DIOALIGN: files on ext4, xfs and f2fs since Linux 6.1,
 *     block devices since 6.11;
 *   - a block device's logical block size (BLKSSZGET), for both, or for
 *     addresses its queue's DMA alignment where sysfs says it is larger
 *     (kernels before 6.0 ask the logical block size for both);
 *   - a file's st_blksize, its file system's block size, for both: at least
 *     what the kernel asks, so the cost of guessing high is bounces, never
 *     an error;
 *   - 4096 when even that is missing.
 * An alignment that is not a power of two, a memory alignment above a page
 * (a bounce slot is only page-aligned) or an offset alignment above 64 KiB
 * (the largest block size a disk can have) is refused (-EINVAL).
 *
 * Bounce slots: nslots slots of slot bytes in one anonymous mapping made
 * once, page-aligned; a page takes memory only once a request went through
 * it.  The request path takes and returns slots, it never allocates.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct blk_dio {
	uint32_t mem_align;         /* buffer addresses: a power of two <= 4096 */
	uint32_t off_align;         /* file offsets and segment lengths: a power of two */
	const char *source;         /* where they come from, for the log */
};

/* The alignments O_DIRECT needs on fd (opened with it).  0, or a negative
 * errno (fstat failed; -EINVAL: values this daemon cannot meet). */
int blk_dio_align(int fd, struct blk_dio *d);

/* Can iov[0..n) go to the kernel as it is, at file offset off? */
bool blk_dio_fits(const struct blk_dio *d, const struct iovec *iov, unsigned n, uint64_t off);

struct bounce_pool {
	uint8_t *mem;               /* NULL: none */
	size_t slot;                /* bytes per slot, a multiple of 64 KiB */
	unsigned nslots;            /* at most 64 */
	uint64_t free_mask;         /* bit i: slot i is free */
};

/* nslots (1..64) slots of at least slot bytes (rounded up to 64 KiB).
 * 0 or -ENOMEM. */
int bounce_init(struct bounce_pool *p, unsigned nslots, size_t slot);
/* A free slot, or NULL when all are in use. */
uint8_t *bounce_get(struct bounce_pool *p);
void bounce_put(struct bounce_pool *p, uint8_t *slot);
void bounce_destroy(struct bounce_pool *p);
