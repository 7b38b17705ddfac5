/* The model of the Linux virtio_ivshmem driver's DMA pool, and the sizes the
 * daemon derives from it.  Expected placements are worked out by hand from
 * the driver's allocator (virtio_ivshmem.c: vi_dma_alloc, the chunk size in
 * virtio_ivshmem_probe, bitmap_find_free_region) and agree with what real
 * guests log (see docs/protocol.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backends/blk.h"
#include "backends/console.h"
#include "core/dma_pool.h"

static void test_chunk_size(void **state)
{
	struct dma_pool p;
	assert_int_equal(dma_pool_init(&p, 0xdf000, 0x98), 0);     /* Jailhouse blk link */
	assert_int_equal(dma_pool_chunk(&p), 256);                  /* 0xdf000/4096 = 223 -> 256 */
	assert_int_equal(p.nchunks, 0xdf000 / 256);
	assert_int_equal(p.used, 1);                                /* header: one chunk */
	dma_pool_destroy(&p);
	assert_int_equal(dma_pool_init(&p, 0x7000, 88), 0);
	assert_int_equal(dma_pool_chunk(&p), 64);                   /* clamped to a cache line */
	assert_int_equal(p.used, 2);                                /* 88 bytes: 2 chunks */
	dma_pool_destroy(&p);
	assert_int_equal(dma_pool_init(&p, (64u << 20) - 4096, 0x98), 0);
	assert_int_equal(dma_pool_chunk(&p), 4096);                 /* clamped to a page */
	assert_int_equal(p.nchunks, (64u << 10) / 4 - 1);
	dma_pool_destroy(&p);
}

/* The placements seen in real traces: desc 0x200 for an 8-entry ring after
 * a block header, 0x200 and 0x400 for the two console rings. */
static void test_ring_placement(void **state)
{
	struct dma_pool p;
	assert_int_equal(dma_vring_bytes(8), 262);
	assert_int_equal(dma_pool_init(&p, 0xdf000, 0x98), 0);
	assert_int_equal(dma_pool_alloc(&p, dma_vring_bytes(8)), 0x200);
	dma_pool_destroy(&p);
	assert_int_equal(dma_pool_init(&p, 0x7000, 88), 0);
	assert_int_equal(dma_pool_alloc(&p, dma_vring_bytes(8)), 0x200);
	assert_int_equal(dma_pool_alloc(&p, dma_vring_bytes(8)), 0x400);
	dma_pool_destroy(&p);
}

/* First fit from the start, naturally aligned, low buffers reused. */
static void test_first_fit(void **state)
{
	struct dma_pool p;
	assert_int_equal(dma_pool_init(&p, 0xf000, 88), 0);        /* chunk 64 */
	assert_int_equal(dma_pool_alloc(&p, 16), 0x80);
	assert_int_equal(dma_pool_alloc(&p, 4096), 0x1000);         /* page-aligned */
	assert_int_equal(dma_pool_alloc(&p, 4096), 0x2000);
	assert_int_equal(dma_pool_alloc(&p, 100), 0x100);           /* 2 chunks, aligned to 128 */
	assert_int_equal(dma_pool_alloc(&p, 1), 0xc0);              /* the hole before it */
	dma_pool_free(&p, 0x1000, 4096);
	assert_int_equal(dma_pool_alloc(&p, 4000), 0x1000);         /* the lowest again */
	dma_pool_destroy(&p);
}

/* A section that is not a multiple of the largest block: nothing is ever
 * handed out past its end, and it fills up exactly. */
static void test_full_and_tail(void **state)
{
	struct dma_pool p;
	assert_int_equal(dma_pool_init(&p, (4u << 20) - 4096, 0x98), 0);   /* chunk 1024 */
	assert_int_equal(dma_pool_alloc(&p, 4u << 20), DMA_POOL_FULL);
	unsigned got = 0;
	uint64_t off;
	while ((off = dma_pool_alloc(&p, 64 << 10)) != DMA_POOL_FULL) {
		assert_true(off + (64 << 10) <= (4u << 20) - 4096);
		got++;
	}
	assert_int_equal(got, 62);      /* the first 64K block holds the header, the last is cut */
	while ((off = dma_pool_alloc(&p, 1024)) != DMA_POOL_FULL)
		assert_true(off + 1024 <= (4u << 20) - 4096);
	assert_int_equal(p.used, p.nchunks);
	assert_int_equal(dma_pool_alloc(&p, 1), DMA_POOL_FULL);
	dma_pool_destroy(&p);
}

/* The console's receive queue must be fillable: 4 KiB per entry. */
static void test_console_fit(void **state)
{
	assert_int_equal(console_queue_fit(0xf000, 64), 8);         /* Jailhouse console link */
	assert_int_equal(console_queue_fit((256u << 10) - 4096, 64), 32);
	assert_int_equal(console_queue_fit((4u << 20) - 4096, 64), 64);
	assert_int_equal(console_queue_fit((4u << 20) - 4096, 16), 16);
	assert_int_equal(console_queue_fit(12 << 10, 64), 1);
	assert_int_equal(console_queue_fit(8 << 10, 64), 0);
	uint16_t qs = 0;
	char why[512];
	assert_int_equal(console_queue_size((256u << 10) - 4096, 0, &qs, why, sizeof(why)), 0);
	assert_int_equal(qs, 32);
	/* the old default: 64 entries on the default 256K link never worked */
	assert_int_equal(console_queue_size((256u << 10) - 4096, 64, &qs, why, sizeof(why)),
			 -ENOSPC);
	assert_string_equal(why, "queue-size 64 does not fit the link's R/W section (252 KiB): "
			    "the cell's driver fills the whole receive queue with 4 KiB buffers from "
			    "it, and at most 32 fit with the rings and a buffer to transmit; leave "
			    "queue-size out to get the largest that fits, or give the link more memory");
	assert_int_equal(console_queue_size(8 << 10, 0, &qs, why, sizeof(why)), -ENOSPC);
	assert_string_equal(why, "the link's R/W section (8 KiB) is too small for a console: the "
			    "cell's driver takes two rings, a 4 KiB buffer per receive queue entry "
			    "and one to transmit from it");
}

static void test_blk_layout(void **state)
{
	char why[512];
	assert_int_equal(blk_seg_max((4u << 20) - 4096, 0), 126);
	assert_int_equal(blk_size_max((4u << 20) - 4096, 126), 8192);
	assert_int_equal(blk_seg_max(0xdf000, 0), 55);             /* 892K / 4 / 4K */
	assert_int_equal(blk_seg_max((64u << 10) - 4096, 0), 3);
	assert_int_equal(blk_layout_check((4u << 20) - 4096, 1, 256, 0, why, sizeof(why)), 0);
	assert_int_equal(blk_layout_check(0xdf000, 1, 256, 0, why, sizeof(why)), 0);
	assert_int_equal(blk_layout_check((64u << 10) - 4096, 1, 256, 0, why, sizeof(why)), 0);
	/* 126 segments of a page cannot fit 252 KiB: such a request would never
	 * be allocated and the cell's I/O would hang */
	assert_int_equal(blk_layout_check((256u << 10) - 4096, 1, 256, 126, why, sizeof(why)),
			 -ENOSPC);
	assert_string_equal(why, "the cell's driver cannot work in the link's R/W section of 252 "
			    "KiB: 1 ring(s) of 256 entries take 8 KiB and one largest request "
			    "(seg-max 126 x size-max 4 KiB) needs 507 KiB more; lower queues, "
			    "queue-size or seg-max, or give the link more memory");
	/* 64 rings of 4096 entries do not fit 4 MiB */
	assert_int_equal(blk_layout_check((4u << 20) - 4096, 64, 4096, 0, why, sizeof(why)),
			 -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chunk_size),
		cmocka_unit_test(test_ring_placement),
		cmocka_unit_test(test_first_fit),
		cmocka_unit_test(test_full_and_tail),
		cmocka_unit_test(test_console_fit),
		cmocka_unit_test(test_blk_layout),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
