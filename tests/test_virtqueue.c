/* Split virtqueue (server/virtqueue.c) against rings built by hand in a
 * private region: every validation rule of vq_setup() and vq_pop(), the good
 * paths, and the notification logic (vq_push/vq_publish/vq_enable_notify). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/shm.h"
#include "core/virtqueue.h"

#define REGION   0x10000ull     /* 64 KiB region */
#define LO       0x100ull       /* "transport header": no buffer may touch it */
#define HI       REGION
#define NUM      8
#define DESC     0x1000ull
#define AVAIL    0x2000ull
#define USED     0x3000ull
#define BUF      0x4000ull      /* data buffers from here */
#define ITAB     0x8000ull      /* indirect tables from here */

static uint8_t *r;              /* the region */
static struct vq vq;
static uint16_t avail_idx;      /* driver's shadow of avail->idx */

static int setup(void **state)
{
	r = malloc(REGION);
	assert_non_null(r);
	memset(r, 0xa5, REGION);
	memset(&vq, 0, sizeof(vq));
	avail_idx = 0;
	/* avail flags/idx, used_event start at 0 like a freshly allocated ring */
	shm_st16(r, AVAIL, 0);
	shm_st16(r, AVAIL + 2, 0);
	shm_st16(r, AVAIL + 4 + 2 * NUM, 0);
	return 0;
}

static int teardown(void **state)
{
	free(r);
	r = NULL;
	return 0;
}

static void set_desc_at(uint64_t table, unsigned i, uint64_t addr, uint32_t len,
			uint16_t flags, uint16_t next)
{
	uint64_t o = table + 16ull * i;
	shm_st64(r, o, addr);
	shm_st32(r, o + 8, len);
	shm_st16(r, o + 12, flags);
	shm_st16(r, o + 14, next);
}

static void set_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	set_desc_at(DESC, i, addr, len, flags, next);
}

/* Driver makes head available (ring entry, then idx). */
static void avail_add(uint16_t head)
{
	shm_st16(r, AVAIL + 4 + 2ull * (avail_idx % NUM), head);
	avail_idx++;
	shm_st16(r, AVAIL + 2, avail_idx);
}

static void std_setup(bool event_idx, bool indirect)
{
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC, AVAIL, USED, event_idx, indirect), 0);
}

/* One simple readable buffer at head, for "pop works" checks. */
static void simple_chain(unsigned head)
{
	set_desc(head, BUF, 16, 0, 0);
}

/* ---------------------------------------------------------------- setup */

static void test_setup_ok_initialises_used(void **state)
{
	shm_st16(r, USED, 0xffff);
	shm_st16(r, USED + 2, 0x1234);
	std_setup(false, false);
	assert_true(vq.ready);
	assert_int_equal(vq.num, NUM);
	assert_int_equal(vq.last_avail, 0);
	assert_int_equal(vq.used_idx, 0);
	assert_int_equal(shm_ld16(r, USED), 0);
	assert_int_equal(shm_ld16(r, USED + 2), 0);
	/* max_num larger than num, and num == max_num both fine */
	assert_int_equal(vq_setup(&vq, r, LO, HI, 4, 256, DESC, AVAIL, USED, false, false), 0);
	assert_int_equal(vq_setup(&vq, r, LO, HI, 1, 1, DESC, AVAIL, USED, false, false), 0);
}

static void test_setup_size(void **state)
{
	assert_int_equal(vq_setup(&vq, r, LO, HI, 0, 256, DESC, AVAIL, USED, false, false), -EINVAL);
	assert_false(vq.ready);
	assert_int_equal(vq_setup(&vq, r, LO, HI, 3, 256, DESC, AVAIL, USED, false, false), -EINVAL);
	assert_int_equal(vq_setup(&vq, r, LO, HI, 6, 256, DESC, AVAIL, USED, false, false), -EINVAL);
	assert_int_equal(vq_setup(&vq, r, LO, HI, 0xffff, 0xffff, DESC, AVAIL, USED, false, false),
			 -EINVAL);
	/* above max */
	assert_int_equal(vq_setup(&vq, r, LO, HI, 16, 8, DESC, AVAIL, USED, false, false), -EINVAL);
	assert_false(vq.ready);
	/* a failed setup leaves a dead queue: pop returns 0, nothing else */
	struct vq_elem e;
	struct iovec iov[4];
	avail_add(0);
	assert_int_equal(vq_pop(&vq, &e, iov, 4), 0);
	assert_false(vq_has_work(&vq));
}

static void test_setup_alignment(void **state)
{
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC + 8, AVAIL, USED, false, false), -ERANGE);
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC + 1, AVAIL, USED, false, false), -ERANGE);
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC, AVAIL + 1, USED, false, false), -ERANGE);
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC, AVAIL, USED + 2, false, false), -ERANGE);
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC, AVAIL, USED + 1, false, false), -ERANGE);
	assert_false(vq.ready);
	/* the minimum alignments themselves are accepted: 16 / 2 / 4 */
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC + 16, AVAIL + 2, USED + 4, false, false), 0);
}

static void test_setup_range(void **state)
{
	/* below lo (inside the header area) */
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, 0, AVAIL, USED, false, false), -ERANGE);
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC, LO - 2, USED, false, false), -ERANGE);
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC, AVAIL, LO - 4, false, false), -ERANGE);
	/* exactly at the end is fine, one element further is not */
	uint64_t d_end = HI - vq_desc_bytes(NUM);
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, d_end, AVAIL, USED, false, false), 0);
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, d_end + 16, AVAIL, USED, false, false), -ERANGE);
	uint64_t a_end = HI - vq_avail_bytes(NUM);     /* 0xffea, 2-aligned */
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC, a_end, USED, false, false), 0);
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC, a_end + 2, USED, false, false), -ERANGE);
	uint64_t u_end = (HI - vq_used_bytes(NUM)) & ~3ull;
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC, AVAIL, u_end, false, false), 0);
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC, AVAIL, u_end + 4, false, false), -ERANGE);
	/* entirely beyond */
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, HI, AVAIL, USED, false, false), -ERANGE);
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC, HI + 0x1000, USED, false, false), -ERANGE);
	/* 64-bit wrap: addr + size overflows to something small */
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, UINT64_MAX & ~15ull, AVAIL, USED, false, false),
			 -ERANGE);
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC, UINT64_MAX - 1, USED, false, false), -ERANGE);
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC, AVAIL, UINT64_MAX - 3, false, false), -ERANGE);
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC, AVAIL, (UINT64_MAX - 0x40) & ~3ull,
				  false, false), -ERANGE);
	assert_false(vq.ready);
}

static void test_setup_used_overlap(void **state)
{
	uint64_t dsz = vq_desc_bytes(NUM), asz = vq_avail_bytes(NUM), usz = vq_used_bytes(NUM);
	/* used overlapping the last bytes of desc */
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC, AVAIL, DESC + dsz - 4, false, false), -ERANGE);
	/* used starting before desc and reaching into it */
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC, AVAIL, DESC - usz + 4 - (usz & 3),
				  false, false), -ERANGE);
	/* used == desc */
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC, AVAIL, DESC, false, false), -ERANGE);
	/* used inside avail, and used reaching into avail (used_event last) */
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC, AVAIL, AVAIL + 4, false, false), -ERANGE);
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC, AVAIL, AVAIL + asz - 2 - ((AVAIL + asz - 2) & 3),
				  false, false), -ERANGE);
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, DESC, AVAIL, AVAIL - 0x40, false, false), -ERANGE);
	assert_false(vq.ready);
	/* adjacent is fine: desc | avail | used packed like the Linux layout */
	uint64_t d = 0x200, a = d + dsz, u = (a + asz + 3) & ~3ull;
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, d, a, u, false, false), 0);
	/* used right before desc, ending exactly at desc */
	assert_int_equal(vq_setup(&vq, r, LO, HI, NUM, NUM, 0x1000, AVAIL, 0x1000 - ((usz + 3) & ~3ull),
				  false, false), 0);
}

/* ---------------------------------------------------------------- pop: good paths */

static void test_pop_empty(void **state)
{
	std_setup(false, false);
	struct vq_elem e;
	struct iovec iov[4];
	assert_int_equal(vq_pop(&vq, &e, iov, 4), 0);
	assert_false(vq_has_work(&vq));
	assert_int_equal(vq.last_avail, 0);
}

static void test_pop_three_descriptor_chain(void **state)
{
	std_setup(false, false);
	set_desc(5, BUF, 16, VRING_DESC_F_NEXT, 2);
	set_desc(2, BUF + 0x100, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 7);
	set_desc(7, BUF + 0x400, 1, VRING_DESC_F_WRITE, 0);
	avail_add(5);
	assert_true(vq_has_work(&vq));
	struct vq_elem e;
	struct iovec iov[8];
	assert_int_equal(vq_pop(&vq, &e, iov, 8), 1);
	assert_int_equal(e.head, 5);
	assert_int_equal(e.n_out, 1);
	assert_int_equal(e.n_in, 2);
	assert_int_equal(e.in_bytes, 513);
	assert_ptr_equal(iov[0].iov_base, r + BUF);
	assert_int_equal(iov[0].iov_len, 16);
	assert_ptr_equal(iov[1].iov_base, r + BUF + 0x100);
	assert_int_equal(iov[1].iov_len, 512);
	assert_ptr_equal(iov[2].iov_base, r + BUF + 0x400);
	assert_int_equal(iov[2].iov_len, 1);
	assert_int_equal(vq.last_avail, 1);
	assert_int_equal(vq_pop(&vq, &e, iov, 8), 0);
	assert_false(vq_has_work(&vq));
}

static void test_pop_several_in_order(void **state)
{
	std_setup(false, false);
	for (unsigned i = 0; i < NUM; i++) {
		set_desc(i, BUF + 0x10 * i, 4 + i, 0, 0);
		avail_add((uint16_t)(NUM - 1 - i));
	}
	struct vq_elem e;
	struct iovec iov[2];
	for (unsigned i = 0; i < NUM; i++) {
		assert_int_equal(vq_pop(&vq, &e, iov, 2), 1);
		assert_int_equal(e.head, NUM - 1 - i);
		assert_int_equal(iov[0].iov_len, 4 + (NUM - 1 - i));
	}
	assert_int_equal(vq_pop(&vq, &e, iov, 2), 0);
}

static void test_pop_chain_of_full_length(void **state)
{
	/* A chain using every descriptor of the table is legal (not a loop). */
	std_setup(false, false);
	for (unsigned i = 0; i < NUM; i++)
		set_desc(i, BUF + 0x10 * i, 8, i + 1 < NUM ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	avail_add(0);
	struct vq_elem e;
	struct iovec iov[NUM];
	assert_int_equal(vq_pop(&vq, &e, iov, NUM), 1);
	assert_int_equal(e.n_out, NUM);
	assert_int_equal(e.n_in, 0);
	assert_int_equal(e.in_bytes, 0);
}

static void test_pop_indirect(void **state)
{
	std_setup(false, true);
	set_desc_at(ITAB, 0, BUF, 16, VRING_DESC_F_NEXT, 2);
	set_desc_at(ITAB, 2, BUF + 0x200, 4096, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	set_desc_at(ITAB, 1, BUF + 0x2000, 1, VRING_DESC_F_WRITE, 0);
	/* the WRITE flag on the indirect descriptor itself must be ignored */
	set_desc(3, ITAB, 3 * 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_WRITE, 0);
	avail_add(3);
	struct vq_elem e;
	struct iovec iov[4];
	assert_int_equal(vq_pop(&vq, &e, iov, 4), 1);
	assert_int_equal(e.head, 3);
	assert_int_equal(e.n_out, 1);
	assert_int_equal(e.n_in, 2);
	assert_int_equal(e.in_bytes, 4097);
	assert_ptr_equal(iov[0].iov_base, r + BUF);
	assert_int_equal(iov[0].iov_len, 16);
	assert_ptr_equal(iov[1].iov_base, r + BUF + 0x200);
	assert_int_equal(iov[1].iov_len, 4096);
	assert_ptr_equal(iov[2].iov_base, r + BUF + 0x2000);
	assert_int_equal(iov[2].iov_len, 1);
	assert_int_equal(vq.last_avail, 1);
}

static void test_pop_indirect_max_table(void **state)
{
	/* VQ_MAX_INDIRECT entries exactly: accepted, and a chain may use them all */
	std_setup(false, true);
	uint64_t t = 0x4000;          /* 16 KiB table: 0x4000..0x8000 */
	for (unsigned i = 0; i < VQ_MAX_INDIRECT; i++)
		set_desc_at(t, i, 0x9000 + i, 1, i + 1 < VQ_MAX_INDIRECT ? VRING_DESC_F_NEXT : 0,
			    (uint16_t)(i + 1));
	set_desc(0, t, 16 * VQ_MAX_INDIRECT, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	struct vq_elem e;
	static struct iovec iov[VQ_MAX_INDIRECT];
	assert_int_equal(vq_pop(&vq, &e, iov, VQ_MAX_INDIRECT), 1);
	assert_int_equal(e.n_out, VQ_MAX_INDIRECT);
	assert_ptr_equal(iov[VQ_MAX_INDIRECT - 1].iov_base, r + 0x9000 + VQ_MAX_INDIRECT - 1);
}

static void test_pop_zero_length_skipped(void **state)
{
	std_setup(false, false);
	set_desc(0, BUF, 16, VRING_DESC_F_NEXT, 1);
	set_desc(1, BUF + 0x100, 0, VRING_DESC_F_NEXT, 2);                       /* empty readable */
	set_desc(2, BUF + 0x200, 8, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 3);
	set_desc(3, BUF + 0x300, 0, VRING_DESC_F_NEXT, 4);                       /* empty readable after writable */
	set_desc(4, BUF + 0x400, 0, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 5);  /* empty writable */
	set_desc(5, BUF + 0x500, 1, VRING_DESC_F_WRITE, 0);
	avail_add(0);
	struct vq_elem e;
	struct iovec iov[3];
	/* only 3 non-empty buffers: must fit in cap 3 */
	assert_int_equal(vq_pop(&vq, &e, iov, 3), 1);
	assert_int_equal(e.n_out, 1);
	assert_int_equal(e.n_in, 2);
	assert_int_equal(e.in_bytes, 9);
	assert_ptr_equal(iov[0].iov_base, r + BUF);
	assert_ptr_equal(iov[1].iov_base, r + BUF + 0x200);
	assert_int_equal(iov[1].iov_len, 8);
	assert_ptr_equal(iov[2].iov_base, r + BUF + 0x500);
	assert_int_equal(iov[2].iov_len, 1);
}

static void test_pop_buffer_at_region_end(void **state)
{
	std_setup(false, false);
	set_desc(0, HI - 64, 64, VRING_DESC_F_WRITE, 0);
	set_desc(1, LO, 1, 0, 0);          /* first byte above the header */
	avail_add(0);
	avail_add(1);
	struct vq_elem e;
	struct iovec iov[1];
	assert_int_equal(vq_pop(&vq, &e, iov, 1), 1);
	assert_ptr_equal(iov[0].iov_base, r + HI - 64);
	assert_int_equal(vq_pop(&vq, &e, iov, 1), 1);
	assert_ptr_equal(iov[0].iov_base, r + LO);
}

static void test_pop_avail_index_wraps(void **state)
{
	std_setup(false, false);
	vq.last_avail = 65534;
	avail_idx = 65534;
	shm_st16(r, AVAIL + 2, avail_idx);
	for (unsigned i = 0; i < 4; i++)
		set_desc(i, BUF + 0x10 * i, 4, 0, 0);
	avail_add(3);       /* slot 65534 % 8 = 6 */
	avail_add(1);       /* slot 7, idx -> 0 */
	avail_add(2);       /* slot 0, idx -> 1 */
	assert_int_equal(shm_ld16(r, AVAIL + 2), 1);
	assert_int_equal(shm_ld16(r, AVAIL + 4 + 2 * 6), 3);
	struct vq_elem e;
	struct iovec iov[1];
	assert_true(vq_has_work(&vq));
	assert_int_equal(vq_pop(&vq, &e, iov, 1), 1);
	assert_int_equal(e.head, 3);
	assert_int_equal(vq.last_avail, 65535);
	assert_int_equal(vq_pop(&vq, &e, iov, 1), 1);
	assert_int_equal(e.head, 1);
	assert_int_equal(vq.last_avail, 0);
	assert_int_equal(vq_pop(&vq, &e, iov, 1), 1);
	assert_int_equal(e.head, 2);
	assert_int_equal(vq.last_avail, 1);
	assert_int_equal(vq_pop(&vq, &e, iov, 1), 0);
	/* an overflow check across the wrap too */
	vq.last_avail = 65534;
	shm_st16(r, AVAIL + 2, (uint16_t)(65534 + NUM + 1));
	assert_int_equal(vq_pop(&vq, &e, iov, 1), -EOVERFLOW);
	shm_st16(r, AVAIL + 2, (uint16_t)(65534 + NUM));
	assert_int_equal(vq_pop(&vq, &e, iov, 1), 1);
}

/* ---------------------------------------------------------------- pop: violations */

/* Pop expecting err; last_avail must not move; a second pop gives the same. */
static void expect_pop_error(int err, unsigned cap)
{
	struct vq_elem e;
	struct iovec iov[16];
	uint16_t before = vq.last_avail;
	assert_int_equal(vq_pop(&vq, &e, iov, cap), err);
	assert_int_equal(vq.last_avail, before);
	assert_int_equal(vq_pop(&vq, &e, iov, cap), err);
	assert_int_equal(vq.last_avail, before);
}

static void test_pop_avail_overflow(void **state)
{
	std_setup(false, false);
	for (unsigned i = 0; i < NUM; i++)
		simple_chain(i);
	/* exactly num pending is fine */
	shm_st16(r, AVAIL + 2, NUM);
	assert_true(vq_has_work(&vq));
	/* num + 1 is not */
	shm_st16(r, AVAIL + 2, NUM + 1);
	expect_pop_error(-EOVERFLOW, 4);
	/* far ahead, and "behind" (idx - last_avail wraps to a huge count) */
	shm_st16(r, AVAIL + 2, 0x8000);
	expect_pop_error(-EOVERFLOW, 4);
	shm_st16(r, AVAIL + 2, 0xffff);
	expect_pop_error(-EOVERFLOW, 4);
	/* back to sane: pops succeed again from the same position */
	shm_st16(r, AVAIL + 2, NUM);
	struct vq_elem e;
	struct iovec iov[1];
	for (unsigned i = 0; i < NUM; i++)
		shm_st16(r, AVAIL + 4 + 2 * i, (uint16_t)i);
	assert_int_equal(vq_pop(&vq, &e, iov, 1), 1);
	assert_int_equal(vq.last_avail, 1);
}

static void test_pop_head_out_of_range(void **state)
{
	std_setup(false, false);
	avail_add(NUM);
	expect_pop_error(-ERANGE, 4);
	shm_st16(r, AVAIL + 4, 0xffff);
	expect_pop_error(-ERANGE, 4);
	/* fixing the ring entry makes the same slot pop fine */
	simple_chain(NUM - 1);
	shm_st16(r, AVAIL + 4, NUM - 1);
	struct vq_elem e;
	struct iovec iov[1];
	assert_int_equal(vq_pop(&vq, &e, iov, 1), 1);
	assert_int_equal(e.head, NUM - 1);
	assert_int_equal(vq.last_avail, 1);
}

static void test_pop_next_out_of_range(void **state)
{
	std_setup(false, false);
	set_desc(0, BUF, 16, VRING_DESC_F_NEXT, 1);
	set_desc(1, BUF + 0x10, 16, VRING_DESC_F_NEXT, NUM);
	avail_add(0);
	expect_pop_error(-ERANGE, 4);
	set_desc(1, BUF + 0x10, 16, VRING_DESC_F_NEXT, 0xffff);
	expect_pop_error(-ERANGE, 4);
	/* without NEXT the bogus next field is irrelevant */
	set_desc(1, BUF + 0x10, 16, 0, 0xffff);
	struct vq_elem e;
	struct iovec iov[2];
	assert_int_equal(vq_pop(&vq, &e, iov, 2), 1);
	assert_int_equal(e.n_out, 2);
}

static void test_pop_loops(void **state)
{
	std_setup(false, false);
	/* self-loop */
	set_desc(0, BUF, 1, VRING_DESC_F_NEXT, 0);
	avail_add(0);
	expect_pop_error(-ELOOP, 16);
	/* caught after exactly num descriptors: with room for only num
	 * buffers the loop is still reported as a loop */
	expect_pop_error(-ELOOP, NUM);
	/* 2-cycle 1 -> 2 -> 1 */
	set_desc(0, BUF, 1, VRING_DESC_F_NEXT, 1);
	set_desc(1, BUF + 1, 1, VRING_DESC_F_NEXT, 2);
	set_desc(2, BUF + 2, 1, VRING_DESC_F_NEXT, 1);
	expect_pop_error(-ELOOP, 16);
	/* loops of zero-length buffers are loops too (they add no iovecs) */
	set_desc(0, BUF, 0, VRING_DESC_F_NEXT, 1);
	set_desc(1, BUF, 0, VRING_DESC_F_NEXT, 0);
	expect_pop_error(-ELOOP, 16);
}

static void test_pop_buffer_ranges(void **state)
{
	std_setup(false, false);
	avail_add(0);
	/* in the header area (below lo) */
	set_desc(0, 0, 16, 0, 0);
	expect_pop_error(-ERANGE, 4);
	set_desc(0, LO - 1, 2, 0, 0);
	expect_pop_error(-ERANGE, 4);
	/* past the end, and straddling it */
	set_desc(0, HI, 1, VRING_DESC_F_WRITE, 0);
	expect_pop_error(-ERANGE, 4);
	set_desc(0, HI - 8, 9, VRING_DESC_F_WRITE, 0);
	expect_pop_error(-ERANGE, 4);
	set_desc(0, BUF, 0xffffffffu, 0, 0);
	expect_pop_error(-ERANGE, 4);
	/* 64-bit wrap: addr + len overflows into the region */
	set_desc(0, UINT64_MAX - 7, 16, 0, 0);
	expect_pop_error(-ERANGE, 4);
	set_desc(0, UINT64_MAX, 0x1001, 0, 0);
	expect_pop_error(-ERANGE, 4);
	/* a bad buffer later in the chain */
	set_desc(0, BUF, 16, VRING_DESC_F_NEXT, 1);
	set_desc(1, HI - 4, 8, VRING_DESC_F_WRITE, 0);
	expect_pop_error(-ERANGE, 4);
}

static void test_pop_readable_after_writable(void **state)
{
	std_setup(false, false);
	set_desc(0, BUF, 16, VRING_DESC_F_NEXT, 1);
	set_desc(1, BUF + 0x10, 16, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	set_desc(2, BUF + 0x20, 16, 0, 0);
	avail_add(0);
	expect_pop_error(-EINVAL, 4);
}

static void test_pop_indirect_rules(void **state)
{
	/* without the feature */
	std_setup(false, false);
	set_desc_at(ITAB, 0, BUF, 16, 0, 0);
	set_desc(0, ITAB, 16, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_pop_error(-EINVAL, 4);

	/* with the feature, from here on */
	std_setup(false, true);
	avail_idx = 0;
	avail_add(0);
	struct vq_elem e;
	struct iovec iov[4];
	assert_int_equal(vq_pop(&vq, &e, iov, 4), 1);       /* the baseline works */
	std_setup(false, true);

	/* INDIRECT together with NEXT */
	set_desc(0, ITAB, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	set_desc(1, BUF, 16, 0, 0);
	expect_pop_error(-EINVAL, 4);
	/* length not a multiple of 16, zero, above the maximum */
	set_desc(0, ITAB, 24, VRING_DESC_F_INDIRECT, 0);
	expect_pop_error(-EINVAL, 4);
	set_desc(0, ITAB, 8, VRING_DESC_F_INDIRECT, 0);
	expect_pop_error(-EINVAL, 4);
	set_desc(0, ITAB, 0, VRING_DESC_F_INDIRECT, 0);
	expect_pop_error(-EINVAL, 4);
	set_desc(0, 0x4000, 16 * (VQ_MAX_INDIRECT + 1), VRING_DESC_F_INDIRECT, 0);   /* in region */
	expect_pop_error(-EINVAL, 4);
	/* table outside the region: past hi, straddling hi, below lo, 64-bit wrap */
	set_desc(0, HI, 16, VRING_DESC_F_INDIRECT, 0);
	expect_pop_error(-EINVAL, 4);
	set_desc(0, HI - 16, 32, VRING_DESC_F_INDIRECT, 0);
	expect_pop_error(-EINVAL, 4);
	set_desc(0, 0, 16, VRING_DESC_F_INDIRECT, 0);
	expect_pop_error(-EINVAL, 4);
	set_desc(0, UINT64_MAX & ~15ull, 32, VRING_DESC_F_INDIRECT, 0);
	expect_pop_error(-EINVAL, 4);
	/* a table that is not 16-byte aligned (read as 64-bit fields) */
	set_desc_at(ITAB + 8, 0, BUF, 16, 0, 0);
	set_desc(0, ITAB + 8, 16, VRING_DESC_F_INDIRECT, 0);
	expect_pop_error(-EINVAL, 4);
}

static void test_pop_indirect_nested(void **state)
{
	std_setup(false, true);
	set_desc_at(ITAB, 0, BUF, 16, VRING_DESC_F_NEXT, 1);
	set_desc_at(ITAB, 1, ITAB + 0x100, 16, VRING_DESC_F_INDIRECT, 0);
	set_desc_at(ITAB + 0x100, 0, BUF, 16, 0, 0);
	set_desc(0, ITAB, 32, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_pop_error(-EMLINK, 4);
	/* a table pointing at itself as indirect */
	set_desc_at(ITAB, 0, ITAB, 16, VRING_DESC_F_INDIRECT, 0);
	expect_pop_error(-EMLINK, 4);
}

static void test_pop_indirect_loops_and_next(void **state)
{
	std_setup(false, true);
	set_desc(0, ITAB, 4 * 16, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	/* self-loop inside the table */
	set_desc_at(ITAB, 0, BUF, 1, VRING_DESC_F_NEXT, 0);
	expect_pop_error(-ELOOP, 16);
	/* 2-cycle inside the table */
	set_desc_at(ITAB, 0, BUF, 1, VRING_DESC_F_NEXT, 2);
	set_desc_at(ITAB, 2, BUF, 1, VRING_DESC_F_NEXT, 3);
	set_desc_at(ITAB, 3, BUF, 1, VRING_DESC_F_NEXT, 2);
	expect_pop_error(-ELOOP, 16);
	/* next beyond the indirect table (but below the main ring size) */
	set_desc_at(ITAB, 3, BUF, 1, VRING_DESC_F_NEXT, 4);
	expect_pop_error(-ERANGE, 16);
	set_desc_at(ITAB, 3, BUF, 1, VRING_DESC_F_NEXT, 0xffff);
	expect_pop_error(-ERANGE, 16);
	/* bad buffers and direction order inside the table are caught as well */
	set_desc_at(ITAB, 3, 0, 16, 0, 0);
	expect_pop_error(-ERANGE, 16);
	set_desc_at(ITAB, 2, BUF, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 3);
	set_desc_at(ITAB, 3, BUF, 1, 0, 0);
	expect_pop_error(-EINVAL, 16);
	/* and fixed, it pops: 0 -> 2 -> 3 */
	set_desc_at(ITAB, 3, BUF, 1, VRING_DESC_F_WRITE, 0);
	struct vq_elem e;
	struct iovec iov[4];
	assert_int_equal(vq_pop(&vq, &e, iov, 4), 1);
	assert_int_equal(e.n_out, 1);
	assert_int_equal(e.n_in, 2);
}

static void test_pop_too_many_buffers(void **state)
{
	std_setup(false, false);
	for (unsigned i = 0; i < 4; i++)
		set_desc(i, BUF + 0x10 * i, 16, i < 3 ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	avail_add(0);
	expect_pop_error(-ENOBUFS, 3);
	expect_pop_error(-ENOBUFS, 0);
	struct vq_elem e;
	struct iovec iov[4];
	assert_int_equal(vq_pop(&vq, &e, iov, 4), 1);
	assert_int_equal(e.n_out, 4);

	/* same through an indirect table */
	std_setup(false, true);
	avail_idx = 0;
	for (unsigned i = 0; i < 5; i++)
		set_desc_at(ITAB, i, BUF + 0x10 * i, 16, i < 4 ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	set_desc(1, ITAB, 5 * 16, VRING_DESC_F_INDIRECT, 0);
	avail_add(1);
	expect_pop_error(-ENOBUFS, 4);
}

/* ---------------------------------------------------------------- used ring, notifications */

static void test_push_publish(void **state)
{
	std_setup(false, false);
	vq_push(&vq, 3, 100);
	vq_push(&vq, 5, 0x12345678);
	/* entries written, index not yet visible */
	assert_int_equal(shm_ld32(r, USED + 4), 3);
	assert_int_equal(shm_ld32(r, USED + 8), 100);
	assert_int_equal(shm_ld32(r, USED + 12), 5);
	assert_int_equal(shm_ld32(r, USED + 16), 0x12345678);
	assert_int_equal(shm_ld16(r, USED + 2), 0);
	assert_true(vq_publish(&vq));
	assert_int_equal(shm_ld16(r, USED + 2), 2);
	assert_int_equal(shm_ld16(r, USED), 0);        /* flags untouched */
	/* used ring slot wraps at num */
	for (unsigned i = 0; i < NUM; i++)
		vq_push(&vq, (uint16_t)i, i);
	vq_publish(&vq);
	assert_int_equal(shm_ld16(r, USED + 2), NUM + 2);
	/* entries 8, 9 went into slots 0, 1 */
	assert_int_equal(shm_ld32(r, USED + 4), NUM - 2);
	assert_int_equal(shm_ld32(r, USED + 12), NUM - 1);
	/* used idx wraps at 16 bits */
	vq.used_idx = 0xffff;
	vq_push(&vq, 1, 1);
	vq_publish(&vq);
	assert_int_equal(shm_ld16(r, USED + 2), 0);
	assert_int_equal(shm_ld32(r, USED + 4 + 8 * 7), 1);
}

static void test_publish_no_interrupt_flag(void **state)
{
	std_setup(false, false);
	vq_push(&vq, 0, 1);
	assert_true(vq_publish(&vq));
	shm_st16(r, AVAIL, VRING_AVAIL_F_NO_INTERRUPT);
	vq_push(&vq, 1, 1);
	assert_false(vq_publish(&vq));
	assert_int_equal(shm_ld16(r, USED + 2), 2);    /* published all the same */
	/* unknown flag bits don't suppress */
	shm_st16(r, AVAIL, 0xfffe);
	vq_push(&vq, 2, 1);
	assert_true(vq_publish(&vq));
	/* used_event is ignored without event-idx */
	shm_st16(r, AVAIL, 0);
	shm_st16(r, AVAIL + 4 + 2 * NUM, 100);
	vq_push(&vq, 3, 1);
	assert_true(vq_publish(&vq));
	/* nothing new pushed: no interrupt (it would be a spurious one) */
	assert_false(vq_publish(&vq));
	assert_false(vq_want_interrupt(&vq));
}

/* A driver that polls for completions (virtio_console's hvc transmit) has
 * taken the entries and moved used_event on before the late decision:
 * no interrupt, where deciding at publish time would have sent one that
 * finds nothing. */
static void test_late_interrupt_decision(void **state)
{
	std_setup(true, false);
	vq_push(&vq, 0, 1);
	assert_true(vq_publish(&vq));                  /* the first, always */
	shm_st16(r, AVAIL + 4 + 2 * NUM, 1);           /* driver: wake me after entry 1 */
	vq_push(&vq, 1, 1);
	vq_publish_idx(&vq);
	assert_int_equal(shm_ld16(r, USED + 2), 2);
	shm_st16(r, AVAIL + 4 + 2 * NUM, 2);           /* it polled entry 1 itself */
	assert_false(vq_want_interrupt(&vq));
	vq_push(&vq, 2, 1);
	vq_publish_idx(&vq);                           /* not taken this time */
	assert_true(vq_want_interrupt(&vq));
	assert_false(vq_want_interrupt(&vq));          /* decided once */
}

static void set_used_event(uint16_t v)
{
	shm_st16(r, AVAIL + 4 + 2 * NUM, v);
}

static void test_publish_event_idx(void **state)
{
	std_setup(true, false);
	/* first publish always interrupts, whatever used_event says */
	set_used_event(100);
	vq_push(&vq, 0, 1);
	assert_true(vq_publish(&vq));                  /* used 1 */
	/* NO_INTERRUPT is ignored with event-idx */
	shm_st16(r, AVAIL, VRING_AVAIL_F_NO_INTERRUPT);
	/* driver wants an interrupt once entry 1 is used (idx passes 1) */
	set_used_event(1);
	vq_push(&vq, 1, 1);
	assert_true(vq_publish(&vq));                  /* used 2: crossed 1 */
	vq_push(&vq, 2, 1);
	assert_false(vq_publish(&vq));                 /* used 3: 1 already signalled */
	/* nothing new: no interrupt */
	assert_false(vq_publish(&vq));
	set_used_event(5);
	vq_push(&vq, 3, 1);
	assert_false(vq_publish(&vq));                 /* used 4: event 5 not reached */
	vq_push(&vq, 4, 1);
	vq_push(&vq, 5, 1);
	assert_true(vq_publish(&vq));                  /* used 6: crossed 5 in a batch */
	assert_int_equal(shm_ld16(r, USED + 2), 6);
	/* event exactly at the old index (== 6): the next entry triggers */
	set_used_event(6);
	vq_push(&vq, 6, 1);
	assert_true(vq_publish(&vq));                  /* used 7 */
	/* event far behind (stale): no interrupt */
	set_used_event(2);
	vq_push(&vq, 7, 1);
	assert_false(vq_publish(&vq));
}

static void test_publish_event_idx_wrap(void **state)
{
	std_setup(true, false);
	vq_push(&vq, 0, 1);
	assert_true(vq_publish(&vq));                  /* first */
	vq.used_idx = 0xfffe;
	vq.signalled_used = 0xfffe;
	set_used_event(0xffff);
	vq_push(&vq, 1, 1);                            /* -> 0xffff */
	assert_false(vq_publish(&vq));
	vq_push(&vq, 2, 1);                            /* -> 0x0000: crossed 0xffff */
	assert_true(vq_publish(&vq));
	assert_int_equal(shm_ld16(r, USED + 2), 0);
	set_used_event(0);
	vq_push(&vq, 3, 1);
	vq_push(&vq, 4, 1);                            /* 0 -> 2: crossed 0 */
	assert_true(vq_publish(&vq));
}

static void test_enable_notify(void **state)
{
	uint64_t avail_event = USED + 4 + 8 * NUM;
	std_setup(true, false);
	shm_st16(r, avail_event, 0xbeef);
	assert_false(vq_enable_notify(&vq));
	assert_int_equal(shm_ld16(r, avail_event), 0);
	simple_chain(0);
	simple_chain(1);
	avail_add(0);
	avail_add(1);
	assert_true(vq_enable_notify(&vq));
	assert_int_equal(shm_ld16(r, avail_event), 0);
	struct vq_elem e;
	struct iovec iov[1];
	assert_int_equal(vq_pop(&vq, &e, iov, 1), 1);
	assert_true(vq_enable_notify(&vq));
	assert_int_equal(shm_ld16(r, avail_event), 1);
	assert_int_equal(vq_pop(&vq, &e, iov, 1), 1);
	assert_false(vq_enable_notify(&vq));
	assert_int_equal(shm_ld16(r, avail_event), 2);
	/* an index that ran ahead counts as "pending" (pop then reports it) */
	shm_st16(r, AVAIL + 2, 2 + NUM + 1);
	assert_true(vq_enable_notify(&vq));

	/* without event-idx avail_event is never written */
	std_setup(false, false);
	avail_idx = 0;
	shm_st16(r, AVAIL + 2, 0);
	shm_st16(r, avail_event, 0xbeef);
	assert_false(vq_enable_notify(&vq));
	avail_add(0);
	assert_true(vq_enable_notify(&vq));
	assert_int_equal(shm_ld16(r, avail_event), 0xbeef);

	/* a queue that is not set up reports nothing and writes nothing */
	struct vq dead;
	memset(&dead, 0, sizeof(dead));
	assert_false(vq_enable_notify(&dead));
}

/* Would the driver kick after publishing old..new?  As Linux's
 * virtqueue_kick_prepare decides, from what the ring shows now. */
static bool driver_kicks(bool event_idx, uint16_t old, uint16_t new)
{
	if (!event_idx)
		return !(shm_ld16(r, USED) & VRING_USED_F_NO_NOTIFY);
	uint16_t ev = shm_ld16(r, USED + 4 + 8 * NUM);
	return (uint16_t)(new - ev - 1) < (uint16_t)(new - old);
}

/* Kicks off while someone watches the ring: no batch the driver publishes
 * asks for one, popping to empty does not turn them back on, and turning
 * them on reports what came meanwhile. */
static void test_notify_off(void **state)
{
	for (int ei = 1; ei >= 0; ei--) {
		bool event_idx = ei;
		avail_idx = 0;
		shm_st16(r, AVAIL + 2, 0);
		std_setup(event_idx, false);
		struct vq_elem e;
		struct iovec iov[1];
		assert_false(vq_enable_notify(&vq));
		assert_true(driver_kicks(event_idx, 0, 1));
		vq_notify_off(&vq);
		assert_false(driver_kicks(event_idx, 0, 1));
		assert_false(driver_kicks(event_idx, 0, 5));
		for (unsigned h = 0; h < 3; h++)
			simple_chain(h);
		avail_add(0);
		avail_add(1);
		assert_int_equal(vq_pop(&vq, &e, iov, 1), 1);
		assert_int_equal(vq_pop(&vq, &e, iov, 1), 1);
		assert_int_equal(vq_pop(&vq, &e, iov, 1), 0);
		assert_false(vq_enable_notify(&vq));    /* looks, writes nothing */
		assert_false(driver_kicks(event_idx, 2, 3));
		assert_false(driver_kicks(event_idx, 2, 2 + NUM));
		/* published with kicks off: only notify_on's answer tells */
		avail_add(2);
		assert_true(vq_notify_on(&vq));
		assert_int_equal(vq_pop(&vq, &e, iov, 1), 1);
		assert_false(vq_enable_notify(&vq));
		assert_true(driver_kicks(event_idx, 3, 4));
		/* event-idx leaves the flags alone; without it avail_event is
		 * never written */
		if (event_idx)
			assert_int_equal(shm_ld16(r, USED), 0);
		else
			assert_int_equal(shm_ld16(r, USED + 4 + 8 * NUM), 3);   /* the event-idx round's */
	}
}

/* Linux publishes each request as it adds it and decides on the kick at
 * the end of the batch, so the device may have taken part of the batch
 * before it turned kicks off (the driver's old index behind last_avail),
 * and more of it after.  With kicks off no such batch asks for one. */
static void test_notify_off_linux_batch(void **state)
{
	struct vq_elem e;
	struct iovec iov[1];
	for (unsigned h = 0; h < NUM; h++)
		simple_chain(h);
	for (unsigned start = 0; start < 3; start++) {
		for (unsigned before = 0; before <= NUM; before++) {
			/* 0, near the middle and near the end of the index space */
			uint16_t old = (uint16_t)(start * 0x7ffe + 5 * before);
			avail_idx = old;
			shm_st16(r, AVAIL + 2, old);
			std_setup(true, false);
			vq.last_avail = vq.used_idx = old;
			for (unsigned k = 0; k < NUM; k++) {
				if (k == before)
					vq_notify_off(&vq);
				avail_add((uint16_t)k);
				if (k < before || k % 2)
					assert_int_equal(vq_pop(&vq, &e, iov, 1), 1);
			}
			if (before == NUM)
				vq_notify_off(&vq);
			assert_false(driver_kicks(true, old, (uint16_t)(old + NUM)));
			while (vq_pop(&vq, &e, iov, 1) == 1)
				;
			assert_false(vq_notify_on(&vq));
			assert_true(driver_kicks(true, (uint16_t)(old + NUM), (uint16_t)(old + NUM + 1)));
		}
	}
}

/* A process that died while it spun left avail_event far away: the one
 * that adopts the ring takes what is there and then asks for kicks as
 * always, which puts it back. */
static void test_adopt_event_idx_kicks_again(void **state)
{
	avail_idx = 0;
	shm_st16(r, AVAIL + 2, 0);
	std_setup(true, false);
	vq_notify_off(&vq);
	simple_chain(0);
	avail_add(0);
	assert_false(driver_kicks(true, 0, 1));
	struct vq next;
	assert_int_equal(vq_adopt(&next, r, LO, HI, NUM, NUM, DESC, AVAIL, USED, true, false), 0);
	struct vq_elem e;
	struct iovec iov[1];
	assert_int_equal(vq_pop(&next, &e, iov, 1), 1);
	assert_int_equal(vq_pop(&next, &e, iov, 1), 0);
	assert_false(vq_enable_notify(&next));
	assert_true(driver_kicks(true, 1, 2));
}

/* A process that died with kicks off left NO_NOTIFY in the ring: the one
 * that adopts the ring clears it the first time it asks for kicks. */
static void test_adopt_clears_no_notify(void **state)
{
	avail_idx = 0;
	shm_st16(r, AVAIL + 2, 0);
	std_setup(false, false);
	vq_notify_off(&vq);
	assert_int_equal(shm_ld16(r, USED), VRING_USED_F_NO_NOTIFY);
	struct vq next;
	assert_int_equal(vq_adopt(&next, r, LO, HI, NUM, NUM, DESC, AVAIL, USED, false, false), 0);
	assert_int_equal(shm_ld16(r, USED), VRING_USED_F_NO_NOTIFY);   /* adopting writes nothing */
	assert_false(vq_enable_notify(&next));
	assert_int_equal(shm_ld16(r, USED), 0);
	assert_true(driver_kicks(false, 0, 1));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_notify_off),
		T(test_notify_off_linux_batch),
		T(test_adopt_event_idx_kicks_again),
		T(test_adopt_clears_no_notify),
		T(test_setup_ok_initialises_used),
		T(test_setup_size),
		T(test_setup_alignment),
		T(test_setup_range),
		T(test_setup_used_overlap),
		T(test_pop_empty),
		T(test_pop_three_descriptor_chain),
		T(test_pop_several_in_order),
		T(test_pop_chain_of_full_length),
		T(test_pop_indirect),
		T(test_pop_indirect_max_table),
		T(test_pop_zero_length_skipped),
		T(test_pop_buffer_at_region_end),
		T(test_pop_avail_index_wraps),
		T(test_pop_avail_overflow),
		T(test_pop_head_out_of_range),
		T(test_pop_next_out_of_range),
		T(test_pop_loops),
		T(test_pop_buffer_ranges),
		T(test_pop_readable_after_writable),
		T(test_pop_indirect_rules),
		T(test_pop_indirect_nested),
		T(test_pop_indirect_loops_and_next),
		T(test_pop_too_many_buffers),
		T(test_push_publish),
		T(test_publish_no_interrupt_flag),
		T(test_late_interrupt_decision),
		T(test_publish_event_idx),
		T(test_publish_event_idx_wrap),
		T(test_enable_notify),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
