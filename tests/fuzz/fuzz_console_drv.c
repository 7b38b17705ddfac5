/* The console fuzz target's virtio driver (see fuzz_console.h). */
#include <stdlib.h>
#include <string.h>

#include "backends/console.h"
#include "core/shm.h"
#include "core/virtio_ivshmem.h"
#include "core/virtqueue.h"
#include "tests/fuzz/fuzz_console.h"

#define DESC_AT(q)     (0x1000ull + 0x1000ull * (q))
#define AVAIL_AT(q)    (DESC_AT(q) + 0x400)
#define USED_AT(q)     (DESC_AT(q) + 0x800)
#define SLOT_AT(q, d)  (0x3000ull + (16ull * (q) + (d)) * FC_SLOT)

static uint8_t shadow[FC_USED];

uint8_t *fc_shadow(void)
{
	return shadow;
}

void fc_write(uint64_t off, const void *src, size_t n)
{
	memcpy(fc.rw + off, src, n);
	memcpy(shadow + off, src, n);
}

static void wr(uint64_t off, uint64_t v, unsigned width)
{
	uint8_t b[8];
	for (unsigned i = 0; i < width; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	fc_write(off, b, width);
}

/* A register write, as the driver makes it: it waits for the device to
 * acknowledge (loop iterations: a reset or a disable is acknowledged once
 * the console has given back what it holds). */
void fc_reg(uint32_t off, uint64_t v, unsigned width)
{
	wr(off, v, width);
	wr(VI_WRITE_TRANSACTION, off, 4);
	vdev_process(console_vdev(fc.dev), 0);
	for (int i = 0; i < 8 && shm_ld32(fc.rw, VI_WRITE_TRANSACTION); i++)
		uv_run(fc.loop, UV_RUN_NOWAIT);
}

void fc_peer(uint32_t state)
{
	fake_port_set_peer_state(fc.fp, state);
	vdev_process(console_vdev(fc.dev), 0);
}

/* The driver forgets queue q (reset, disable, peer gone): its chains are
 * void, and so is any promise about the streams. */
void fc_forget_queue(unsigned q)
{
	memset(&fc.q[q], 0, sizeof(fc.q[q]));
	fc.pristine = false;
}

/* Everything up, as the Linux driver does it, on fresh rings. */
void fc_bringup(uint16_t size)
{
	struct vdev *vd = console_vdev(fc.dev);
	if (vd->phase == VDEV_WAIT_PEER_RESET)
		fc_peer(VIRTIO_STATE_RESET);
	fc_peer(VIRTIO_STATE_READY);
	fc_reg(VI_DEVICE_STATUS, 0, 4);
	fc_reg(VI_DEVICE_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 4);
	fc_reg(VI_DRIVER_FEATURES_SEL, 1, 4);
	fc_reg(VI_DRIVER_FEATURES, 0x3, 4);             /* VERSION_1, ACCESS_PLATFORM */
	fc_reg(VI_DRIVER_FEATURES_SEL, 0, 4);
	fc_reg(VI_DRIVER_FEATURES, 1u << 29 | 1u << VIRTIO_CONSOLE_F_SIZE, 4);   /* EVENT_IDX */
	fc_reg(VI_DEVICE_STATUS, 0x0b, 4);
	if (size > vd->q[0].max_size)
		size = vd->q[0].max_size;
	for (unsigned q = 0; q < 2; q++) {
		uint8_t zero[0xc00] = { 0 };
		fc_write(DESC_AT(q), zero, sizeof(zero));
		memset(&fc.q[q], 0, sizeof(fc.q[q]));
		fc.q[q].num = size;
		fc_reg(VI_QUEUE_SEL, q, 4);
		fc_reg(VI_QUEUE_SIZE, size, 2);
		fc_reg(VI_QUEUE_DRIVER_VECTOR, 1 + q, 2);
		fc_reg(VI_QUEUE_DESC, DESC_AT(q), 8);
		fc_reg(VI_QUEUE_DRIVER, AVAIL_AT(q), 8);
		fc_reg(VI_QUEUE_DEVICE, USED_AT(q), 8);
		fc_reg(VI_QUEUE_ENABLE, 1, 2);
	}
	fc_reg(VI_DEVICE_STATUS, 0x0f, 4);
	fc.up = vdev_driver_live(vd);
}

/* A chain of 1..4 descriptors from the free list: receive chains mostly
 * device-writable, transmit chains mostly readable and filled with input
 * bytes (both sometimes mixed, in either order: the device must cope). */
void fc_post(unsigned q, struct fz *f)
{
	struct fc_queue *fq = &fc.q[q];
	uint8_t shape = fz_u8(f);
	unsigned n = 1 + shape % FC_MAX_DESC, got = 0;
	if (!fq->num)
		return;
	uint8_t d[FC_MAX_DESC];
	for (unsigned i = 0; i < fq->num && got < n; i++)
		if (!fq->desc_busy[i])
			d[got++] = (uint8_t)i;
	if (got < n)
		return;
	struct fc_chain *c = &fq->chain[d[0]];
	memset(c, 0, sizeof(*c));
	c->ndesc = n;
	for (unsigned k = 0; k < n; k++) {
		bool odd = shape & (0x10 << k);
		bool writable = q == VCON_RX_QUEUE ? !odd : odd;
		uint16_t len = fz_u16(f) % (FC_SLOT + 1);
		if (!writable && q == VCON_TX_QUEUE && fc.nposted + c->tx_bytes + len > FC_STREAM)
			return;
		c->desc[k] = d[k];
		c->len[k] = len;
		c->writable[k] = writable;
		if (!writable && q == VCON_TX_QUEUE)
			c->tx_bytes += len;
	}
	/* Only now is the chain taken: write it out. */
	size_t at = fc.nposted;
	for (unsigned k = 0; k < n; k++) {
		uint64_t desc = DESC_AT(q) + 16ull * c->desc[k], slot = SLOT_AT(q, c->desc[k]);
		uint8_t data[FC_SLOT];
		if (c->writable[k]) {
			memset(data, 0xee, c->len[k]);
			if (q == VCON_RX_QUEUE)
				fc.may_write[q][c->desc[k]] = true;
		} else {
			fz_bytes(f, data, c->len[k]);
			if (q == VCON_TX_QUEUE) {
				memcpy(fc.posted + at, data, c->len[k]);
				at += c->len[k];
			}
		}
		fc_write(slot, data, c->len[k]);
		wr(desc, slot, 8);
		wr(desc + 8, c->len[k], 4);
		wr(desc + 12, (c->writable[k] ? VRING_DESC_F_WRITE : 0) |
			      (k + 1 < n ? VRING_DESC_F_NEXT : 0), 2);
		wr(desc + 14, k + 1 < n ? c->desc[k + 1] : 0, 2);
		fq->desc_busy[c->desc[k]] = true;
	}
	fc.nposted = at;
	c->busy = true;
	wr(AVAIL_AT(q) + 4 + 2ull * (fq->avail_idx & (fq->num - 1)), c->desc[0], 2);
	wr(AVAIL_AT(q) + 2, ++fq->avail_idx, 2);
}

/* A receive chain came back with len bytes: they are the next bytes the
 * client sent that reached the cell (some may have been lost before, in
 * answers a reset dropped; never reordered, never made up). */
static void rx_chunk(const struct fc_chain *c, uint32_t len)
{
	uint8_t chunk[FC_MAX_DESC * FC_SLOT];
	size_t n = 0, room = 0;
	for (unsigned k = 0; k < c->ndesc; k++) {
		if (!c->writable[k])
			continue;
		size_t take = c->len[k] < len - n ? c->len[k] : len - n;
		memcpy(chunk + n, fc.rw + SLOT_AT(VCON_RX_QUEUE, c->desc[k]), take);
		n += take;
		room += c->len[k];
	}
	FZ_CHECK(len <= room, "receive chain answered with %u bytes, %zu writable", len, room);
	if (!len)
		return;
	uint8_t *at = fc.rx_pos <= fc.nsent ?
		      memmem(fc.sent + fc.rx_pos, fc.nsent - fc.rx_pos, chunk, len) : NULL;
	FZ_CHECK(at, "%u bytes received by the cell that the client did not send (at %zu of %zu)",
		 len, fc.rx_pos, fc.nsent);
	FZ_CHECK(!fc.pristine || at == fc.sent + fc.rx_pos, "received bytes skipped %td sent ones",
		 at - (fc.sent + fc.rx_pos));
	fc.rx_pos = (size_t)(at - fc.sent) + len;
}

void fc_check_used(void)
{
	struct vdev *vd = console_vdev(fc.dev);
	for (unsigned q = 0; q < 2; q++) {
		struct fc_queue *fq = &fc.q[q];
		const struct vdev_queue *dq = &vd->q[q];
		if (!fq->num || !dq->enable || !dq->vq.ready || dq->vq.used != USED_AT(q))
			continue;
		uint16_t now = shm_ld16(fc.rw, USED_AT(q) + 2);
		FZ_CHECK((uint16_t)(now - fq->seen_used) <= fq->num, "queue %u: %u used at once", q,
			 (uint16_t)(now - fq->seen_used));
		for (; fq->seen_used != now; fq->seen_used++) {
			uint64_t e = USED_AT(q) + 4 + 8ull * (fq->seen_used & (fq->num - 1));
			uint32_t head = shm_ld32(fc.rw, e), len = shm_ld32(fc.rw, e + 4);
			FZ_CHECK(head < fq->num && fq->chain[head].busy,
				 "queue %u: used entry for head %u, which is not in flight", q, head);
			struct fc_chain *c = &fq->chain[head];
			if (q == VCON_RX_QUEUE)
				rx_chunk(c, len);
			else
				FZ_CHECK(len == 0, "a transmit chain answered with %u bytes written",
					 len);
			if (q == VCON_TX_QUEUE)
				fc.tx_answered += c->tx_bytes;
			for (unsigned k = 0; k < c->ndesc; k++)
				fq->desc_busy[c->desc[k]] = false;
			c->busy = false;
		}
	}
	/* Receive buffers are the device's to write; nothing else is. */
	memcpy(shadow, fc.rw, vd->hdr_size);
	for (unsigned q = 0; q < 2; q++) {
		memcpy(shadow + USED_AT(q), fc.rw + USED_AT(q), 0x800);
		for (unsigned d = 0; d < FC_QN; d++)
			if (fc.may_write[q][d])
				memcpy(shadow + SLOT_AT(q, d), fc.rw + SLOT_AT(q, d), FC_SLOT);
	}
	FZ_CHECK(memcmp(shadow, fc.rw, FC_USED) == 0, "the device wrote into a buffer that is not "
		 "a receive buffer");
}
