/* The Linux virtio_ivshmem driver's DMA pool, modelled exactly.
 *
 * The front-end driver takes every ring and every bounce buffer from the R/W
 * section, through a bitmap allocator of its own:
 *   - chunk size: R/W size / 4096, clamped to [64, 4096] (SMP_CACHE_BYTES,
 *     PAGE_SIZE on x86-64 and arm64 with 4K pages), rounded up to a power
 *     of two; the pool has floor(R/W size / chunk) chunks;
 *   - the first 2^k chunks covering the header's `size` field are reserved
 *     at probe;
 *   - an allocation of n bytes takes 2^k chunks (the smallest power of two
 *     covering n), naturally aligned, first fit from chunk 0
 *     (bitmap_find_free_region); no allocation ever waits or splits;
 *   - streaming mappings (every data buffer, request header and status
 *     byte, indirect table) are bounce buffers allocated at map time and
 *     freed at unmap time; rings are allocated once per queue.
 * The daemon uses it to offer only sizes the real driver can allocate (a
 * console whose receive queue cannot be filled never appears in the cell,
 * a block request larger than the pool never completes); the userspace
 * front-end in tests/ allocates with it so that tests and the benchmark see
 * the same placement (and cache behaviour) as a real cell.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#define DMA_POOL_FULL        UINT64_MAX
#define DMA_POOL_PAGE        4096u      /* the guest's PAGE_SIZE */
#define DMA_POOL_CACHE_LINE  64u        /* the guest's SMP_CACHE_BYTES */

struct dma_pool {
	uint64_t rw_size;
	unsigned shift;          /* log2 of the chunk size */
	unsigned nchunks;
	uint64_t *bitmap;        /* 1 = chunk in use */
	unsigned used;           /* chunks in use */
};

/* A pool over a R/W section of rw_size bytes whose header says hdr_size.
 * Returns 0 or -ENOMEM (-EINVAL when the header does not fit). */
int dma_pool_init(struct dma_pool *p, uint64_t rw_size, uint32_t hdr_size);
void dma_pool_destroy(struct dma_pool *p);

/* Allocate size bytes (> 0): an R/W-section offset, or DMA_POOL_FULL (the
 * driver then logs "shared memory is full"). */
uint64_t dma_pool_alloc(struct dma_pool *p, uint64_t size);
/* Free what dma_pool_alloc(size) returned at off. */
void dma_pool_free(struct dma_pool *p, uint64_t off, uint64_t size);

static inline uint64_t dma_pool_chunk(const struct dma_pool *p)
{
	return 1ull << p->shift;
}

/* Bytes a split ring of num entries takes as Linux lays it out
 * (vring_size() with SMP_CACHE_BYTES alignment, event-idx fields included). */
uint64_t dma_vring_bytes(unsigned num);
