/* Fuzz target: the split virtqueue (core/virtqueue.c) against a hostile
 * driver.
 *
 * The input sets up one ring (size, placement, event-idx, indirect; by
 * vq_setup or vq_adopt) in a region of 4 pages whose first page is the
 * "transport header", then runs a program of driver writes (descriptors,
 * avail entries and index, raw bytes anywhere in the driver's part) and
 * device calls (pop, chain, push, publish, enable_notify, has_work).
 *
 * Oracles besides the sanitizers:
 *   - the region has a PROT_NONE page on each side and its header page is
 *     PROT_NONE too: any access outside [lo, hi) faults;
 *   - the device writes nothing but the used ring (a shadow copy of the
 *     region, updated with every driver write, must match everywhere
 *     else): in particular nothing into a device-readable buffer;
 *   - every popped head is below the ring size, every buffer lies in
 *     [lo, hi) and is non-empty, readable ones come first, in_bytes adds
 *     up, no more than the capacity; a failed pop consumes nothing;
 *   - has_work() false means pop() finds nothing;
 *   - the used index moves only by push(), which the program calls only for
 *     popped and unanswered heads, and publish() shows exactly it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/shm.h"
#include "core/virtqueue.h"
#include "tests/fuzz/fuzz.h"

#define PAGE     4096u
#define REGION   (4 * PAGE)
#define LO       PAGE               /* the header page: no access at all */
#define SPAN     (REGION - LO)
#define MAX_CAP  64

enum { OP_DESC, OP_ITAB, OP_AVAIL, OP_AVAIL_IDX, OP_POKE, OP_POP, OP_CHAIN, OP_PUSH,
       OP_PUBLISH, OP_NOTIFY, OP_HAS_WORK, OP_COUNT };

static uint8_t *r, *shadow;
static struct vq vq;
static uint16_t drv_avail;          /* the driver's next avail index */
static uint16_t popped[VQ_MAX_SIZE];    /* heads taken and not answered */
static unsigned npopped, pops, pushes;

/* The driver's write of n bytes at off (inside the driver's part). */
static void drv_write(uint64_t off, const void *src, size_t n)
{
	memcpy(r + off, src, n);
	memcpy(shadow + off, src, n);
}

static void drv_st16(uint64_t off, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	drv_write(off, b, 2);
}

/* An offset in the driver's part with room for n bytes, aligned to a. */
static uint64_t place(uint16_t v, unsigned n, unsigned a)
{
	uint64_t off = LO + (v % (SPAN - n + 1));
	return off & ~(uint64_t)(a - 1);
}

/* A buffer address: mostly inside the region, sometimes anything. */
static uint64_t buf_addr(struct fz *f)
{
	uint8_t how = fz_u8(f);
	if (how < 8)
		return fz_u64(f);
	return LO + fz_u16(f) % SPAN;
}

static void write_desc(uint64_t table, unsigned i, struct fz *f)
{
	uint8_t d[16];
	uint64_t addr = buf_addr(f);
	uint32_t len = fz_u8(f) < 16 ? fz_u32(f) : fz_u16(f) % 512;
	uint16_t flags = fz_u16(f) & 0xf, next = fz_u16(f);
	for (int k = 0; k < 8; k++)
		d[k] = (uint8_t)(addr >> (8 * k));
	for (int k = 0; k < 4; k++)
		d[8 + k] = (uint8_t)(len >> (8 * k));
	d[12] = (uint8_t)flags;
	d[13] = (uint8_t)(flags >> 8);
	d[14] = (uint8_t)next;
	d[15] = (uint8_t)(next >> 8);
	if (table + 16ull * i + 16 <= REGION)
		drv_write(table + 16ull * i, d, 16);
}

static void check_elem(const struct vq_elem *e, const struct iovec *iov, unsigned cap)
{
	FZ_CHECK(e->head < vq.num, "head %u of a ring of %u", e->head, vq.num);
	FZ_CHECK(e->n_out + e->n_in <= cap, "%u buffers, capacity %u", e->n_out + e->n_in, cap);
	uint64_t in = 0;
	for (unsigned i = 0; i < e->n_out + e->n_in; i++) {
		uint8_t *b = iov[i].iov_base;
		FZ_CHECK(iov[i].iov_len > 0, "empty buffer %u", i);
		FZ_CHECK(b >= r + LO && b <= r + REGION &&
			 iov[i].iov_len <= (size_t)(r + REGION - b),
			 "buffer %u at %td+%zu outside [%u, %u)", i, b - r, iov[i].iov_len, LO,
			 REGION);
		if (i >= e->n_out)
			in += iov[i].iov_len;
	}
	FZ_CHECK(in == e->in_bytes, "in_bytes %llu, buffers say %llu",
		 (unsigned long long)e->in_bytes, (unsigned long long)in);
}

static void op_pop(struct fz *f)
{
	struct vq_elem e;
	struct iovec iov[MAX_CAP];
	unsigned cap = 1 + fz_u8(f) % MAX_CAP;
	uint16_t before = vq.last_avail;
	bool work = vq_has_work(&vq);
	int ret = vq_pop(&vq, &e, iov, cap);
	FZ_CHECK(work || ret == 0, "has_work said no, pop returned %d", ret);
	if (ret <= 0) {
		FZ_CHECK(vq.last_avail == before, "a pop that returned %d moved last_avail", ret);
		return;
	}
	FZ_CHECK(ret == 1 && vq.last_avail == (uint16_t)(before + 1), "pop returned %d", ret);
	check_elem(&e, iov, cap);
	pops++;
	if (npopped < VQ_MAX_SIZE)
		popped[npopped++] = e.head;
}

static void op_push(struct fz *f)
{
	uint16_t k = fz_u16(f);
	uint32_t len = fz_u32(f);
	if (!npopped)
		return;
	k %= npopped;
	uint16_t head = popped[k];
	popped[k] = popped[--npopped];
	vq_push(&vq, head, len);
	pushes++;
}

static void run(struct fz *f)
{
	uint8_t mode = fz_u8(f);
	uint16_t nsel = fz_u16(f), msel = fz_u16(f);
	uint16_t num = mode & 1 ? nsel : (uint16_t)(1u << (nsel % 9));
	uint16_t max_num = mode & 2 ? msel : 256;
	uint64_t desc, avail, used;
	if (mode & 4) {
		desc = fz_u64(f);
		avail = fz_u64(f);
		used = fz_u64(f);
	} else {
		desc = place(fz_u16(f), 16u * (num ? num : 1), 16);
		avail = place(fz_u16(f), 6u + 2u * num, 2);
		used = place(fz_u16(f), 6u + 8u * num, 4);
	}
	bool event_idx = mode & 8, indirect = mode & 16, adopt = mode & 32;
	if (adopt && used >= LO && used <= REGION - 4) {
		uint16_t idx = fz_u16(f);
		drv_write(used + 2, &idx, 2);   /* what a previous process published */
	}
	int ret = adopt ? vq_adopt(&vq, r, LO, REGION, num, max_num, desc, avail, used,
				   event_idx, indirect)
			: vq_setup(&vq, r, LO, REGION, num, max_num, desc, avail, used,
				   event_idx, indirect);
	if (ret < 0) {
		FZ_CHECK(!vq.ready, "a refused ring (%d) is ready", ret);
		return;
	}
	/* What vq_setup wrote into the used ring is the device's. */
	memcpy(shadow + used, r + used, vq_used_bytes(num));
	uint16_t used0 = vq.used_idx;
	drv_avail = vq.last_avail;
	uint64_t itab = place(0, 16, 16);
	while (fz_more(f)) {
		switch (fz_u8(f) % OP_COUNT) {
		case OP_DESC:
			write_desc(desc, fz_u16(f) % num, f);
			break;
		case OP_ITAB:
			itab = place(fz_u16(f), 16, 16);
			for (unsigned n = fz_u8(f) % 8, i = 0; i < n; i++)
				write_desc(itab, i, f);
			break;
		case OP_AVAIL:
			drv_st16(avail + 4 + 2ull * (drv_avail & (num - 1)), fz_u16(f));
			drv_st16(avail + 2, ++drv_avail);
			break;
		case OP_AVAIL_IDX:
			drv_avail = fz_u16(f);
			drv_st16(avail + 2, drv_avail);
			break;
		case OP_POKE: {
			uint8_t b[32];
			uint64_t off = LO + fz_u16(f) % SPAN;
			size_t n = 1 + fz_u8(f) % sizeof(b);
			if (n > REGION - off)
				n = REGION - off;
			fz_bytes(f, b, n);
			drv_write(off, b, n);
			break;
		}
		case OP_POP:
			op_pop(f);
			break;
		case OP_CHAIN: {
			struct vq_elem e;
			struct iovec iov[MAX_CAP];
			if (vq_chain(&vq, fz_u16(f), &e, iov, MAX_CAP) == 1)
				check_elem(&e, iov, MAX_CAP);
			break;
		}
		case OP_PUSH:
			op_push(f);
			break;
		case OP_PUBLISH:
			vq_publish(&vq);
			FZ_CHECK(shm_ld16(r, used + 2) == vq.used_idx,
				 "published %u, pushed up to %u", shm_ld16(r, used + 2), vq.used_idx);
			break;
		case OP_NOTIFY:
			vq_enable_notify(&vq);
			break;
		case OP_HAS_WORK:
			vq_has_work(&vq);
			break;
		}
		FZ_CHECK((uint16_t)(vq.used_idx - used0) == (uint16_t)pushes && pushes <= pops,
			 "used index moved %u, %u pushes of %u pops", (uint16_t)(vq.used_idx - used0),
			 pushes, pops);
		/* The used ring is the device's; everything else must be as the
		 * driver left it. */
		memcpy(shadow + used, r + used, vq_used_bytes(num));
		FZ_CHECK(memcmp(r + LO, shadow + LO, SPAN) == 0,
			 "the device wrote outside the used ring");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!r) {
		r = fz_map_guarded(REGION);
		shadow = malloc(REGION);
		if (!shadow)
			abort();
	}
	fz_protect(r, LO, true);
	memset(r, 0, REGION);
	memset(shadow, 0, REGION);
	fz_protect(r, LO, false);
	memset(&vq, 0, sizeof(vq));
	npopped = pops = pushes = 0;
	struct fz f = { data, size };
	run(&f);
	return 0;
}
