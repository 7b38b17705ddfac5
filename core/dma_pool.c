#include "core/dma_pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* log2 of the chunk count covering size bytes, rounded up to a power of two
 * (the driver's get_custom_order()). */
static unsigned order_of(uint64_t size, unsigned shift)
{
	uint64_t n = (size - 1) >> shift;
	return n ? 64u - (unsigned)__builtin_clzll(n) : 0;
}

/* Regions are naturally aligned powers of two: one of up to 64 chunks lies
 * inside one bitmap word, a larger one covers whole words. */
static bool region_free(const struct dma_pool *p, unsigned pos, unsigned n)
{
	if (n < 64)
		return !(p->bitmap[pos / 64] & (((1ull << n) - 1) << (pos % 64)));
	for (unsigned w = pos / 64; w < (pos + n) / 64; w++)
		if (p->bitmap[w])
			return false;
	return true;
}

static void mark(struct dma_pool *p, unsigned pos, unsigned n, bool used)
{
	if (n < 64) {
		uint64_t m = ((1ull << n) - 1) << (pos % 64);
		p->bitmap[pos / 64] = used ? p->bitmap[pos / 64] | m : p->bitmap[pos / 64] & ~m;
	} else {
		for (unsigned w = pos / 64; w < (pos + n) / 64; w++)
			p->bitmap[w] = used ? ~0ull : 0;
	}
	p->used = used ? p->used + n : p->used - n;
}

int dma_pool_init(struct dma_pool *p, uint64_t rw_size, uint32_t hdr_size)
{
	memset(p, 0, sizeof(*p));
	uint64_t chunk = rw_size / 4096;
	if (chunk < DMA_POOL_CACHE_LINE)
		chunk = DMA_POOL_CACHE_LINE;
	if (chunk > DMA_POOL_PAGE)
		chunk = DMA_POOL_PAGE;
	p->shift = order_of(chunk, 0);
	p->rw_size = rw_size;
	uint64_t n = rw_size >> p->shift;
	if (n > (1u << 30))
		return -EINVAL;
	p->nchunks = (unsigned)n;
	p->bitmap = calloc((p->nchunks + 63) / 64 + 1, sizeof(uint64_t));
	if (!p->bitmap)
		return -ENOMEM;
	unsigned hdr = 1u << order_of(hdr_size ? hdr_size : 1, p->shift);
	if (hdr > p->nchunks) {
		dma_pool_destroy(p);
		return -EINVAL;
	}
	mark(p, 0, hdr, true);
	return 0;
}

void dma_pool_destroy(struct dma_pool *p)
{
	free(p->bitmap);
	p->bitmap = NULL;
}

uint64_t dma_pool_alloc(struct dma_pool *p, uint64_t size)
{
	if (size == 0 || size > p->rw_size)
		return DMA_POOL_FULL;
	unsigned n = 1u << order_of(size, p->shift);
	/* Aligned regions of n chunks, lowest first, wholly inside the pool. */
	for (unsigned pos = 0; pos + n <= p->nchunks; pos += n) {
		if (n < 64 && p->bitmap[pos / 64] == ~0ull) {
			pos = (pos | 63) + 1 - n;       /* a full word: skip it */
			continue;
		}
		if (region_free(p, pos, n)) {
			mark(p, pos, n, true);
			return (uint64_t)pos << p->shift;
		}
	}
	return DMA_POOL_FULL;
}

void dma_pool_free(struct dma_pool *p, uint64_t off, uint64_t size)
{
	unsigned n = 1u << order_of(size, p->shift);
	mark(p, (unsigned)(off >> p->shift), n, false);
}

uint64_t dma_vring_bytes(unsigned num)
{
	uint64_t avail_end = 16ull * num + 2ull * (3 + num);
	uint64_t used = (avail_end + DMA_POOL_CACHE_LINE - 1) & ~(uint64_t)(DMA_POOL_CACHE_LINE - 1);
	return used + 2ull * 3 + 8ull * num;
}
