#include "backends/blk_direct.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define PAGE 4096u
#define MAX_OFF_ALIGN 65536u
#define SLOT_UNIT (64u << 10)

static bool pow2(uint32_t x)
{
	return x && !(x & (x - 1));
}

/* A block device's queue's DMA alignment (its mask + 1), or 0 where sysfs
 * does not say (a partition's queue is its disk's, one level up). */
static uint32_t bdev_dma_align(dev_t rdev)
{
	static const char *const fmt[] = { "/sys/dev/block/%u:%u/queue/dma_alignment",
					   "/sys/dev/block/%u:%u/../queue/dma_alignment" };
	for (unsigned i = 0; i < 2; i++) {
		char path[96];
		snprintf(path, sizeof(path), fmt[i], major(rdev), minor(rdev));
		FILE *f = fopen(path, "re");
		unsigned mask = 0;
		int n = f ? fscanf(f, "%u", &mask) : 0;
		if (f)
			fclose(f);
		if (n == 1 && mask < PAGE)
			return mask + 1;
	}
	return 0;
}

/* statx's answer: true when it gave both alignments. */
static bool dio_statx(int fd, struct blk_dio *d)
{
#ifdef STATX_DIOALIGN
	struct statx stx;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) < 0 ||
	    !(stx.stx_mask & STATX_DIOALIGN) || !stx.stx_dio_mem_align || !stx.stx_dio_offset_align)
		return false;       /* 0 and 0: the file system says it has no direct I/O */
	d->mem_align = stx.stx_dio_mem_align;
	d->off_align = stx.stx_dio_offset_align;
	d->source = "statx";
	return true;
#else
	(void)fd;
	(void)d;
	return false;
#endif
}

int blk_dio_align(int fd, struct blk_dio *d)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	int lbs = 0;
	if (dio_statx(fd, d)) {
		/* as the kernel says */
	} else if (S_ISBLK(st.st_mode) && ioctl(fd, BLKSSZGET, &lbs) == 0 && lbs > 0) {
		uint32_t dma = bdev_dma_align(st.st_rdev);
		d->off_align = (uint32_t)lbs;
		d->mem_align = dma > (uint32_t)lbs ? dma : (uint32_t)lbs;
		d->source = "the logical block size";
	} else if (st.st_blksize > 0 && st.st_blksize <= (blksize_t)MAX_OFF_ALIGN) {
		/* a guess: no file system asks memory aligned beyond a page */
		d->off_align = (uint32_t)st.st_blksize;
		d->mem_align = d->off_align < PAGE ? d->off_align : PAGE;
		d->source = "the file system's block size";
	} else {
		d->mem_align = d->off_align = PAGE;
		d->source = "a default";
	}
	if (!pow2(d->mem_align) || !pow2(d->off_align) || d->mem_align > PAGE ||
	    d->off_align > MAX_OFF_ALIGN)
		return -EINVAL;
	return 0;
}

bool blk_dio_fits(const struct blk_dio *d, const struct iovec *iov, unsigned n, uint64_t off)
{
	if (off & (d->off_align - 1))
		return false;
	for (unsigned i = 0; i < n; i++)
		if (((uintptr_t)iov[i].iov_base & (d->mem_align - 1)) ||
		    (iov[i].iov_len & (d->off_align - 1)))
			return false;
	return true;
}

int bounce_init(struct bounce_pool *p, unsigned nslots, size_t slot)
{
	*p = (struct bounce_pool){ 0 };
	if (nslots == 0 || nslots > 64)
		return -EINVAL;
	slot = (slot + SLOT_UNIT - 1) / SLOT_UNIT * SLOT_UNIT;
	void *m = mmap(NULL, slot * nslots, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	if (m == MAP_FAILED)
		return -ENOMEM;
	p->mem = m;
	p->slot = slot;
	p->nslots = nslots;
	p->free_mask = nslots == 64 ? ~0ull : (1ull << nslots) - 1;
	return 0;
}

uint8_t *bounce_get(struct bounce_pool *p)
{
	if (!p->free_mask)
		return NULL;
	/* the lowest free slot: its pages are the likeliest to be in memory */
	unsigned i = (unsigned)__builtin_ctzll(p->free_mask);
	p->free_mask &= ~(1ull << i);
	return p->mem + (size_t)i * p->slot;
}

void bounce_put(struct bounce_pool *p, uint8_t *slot)
{
	size_t i = (size_t)(slot - p->mem) / p->slot;
	p->free_mask |= 1ull << i;
}

void bounce_destroy(struct bounce_pool *p)
{
	if (p->mem)
		munmap(p->mem, p->slot * p->nslots);
	*p = (struct bounce_pool){ 0 };
}
