/* The transport fuzz target's driver: the device's parameters and the
 * program of steps, decoded from the input (see fuzz_transport.c).
 *
 * Input: u8 queues/vectors, u8 queue size/segment limit, u8 flags (journal,
 * answer at once, cancel answers, polled queues, take over first, refill),
 * u64
 * backend features, u8 config size, u8 length answered at once; then, with
 * "take over first", a journal state (see adopt_first); then steps, each
 * an op byte and its arguments (see the switch in ft_program). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/shm.h"
#include "tests/fuzz/fuzz_transport.h"

enum { OP_REG, OP_PEER, OP_KICK, OP_DESC, OP_ITAB, OP_AVAIL, OP_POKE, OP_ANSWER, OP_BRINGUP,
       OP_PAUSE, OP_FLUSH, OP_CONFIG, OP_SHUTDOWN, OP_LINK_DOWN, OP_CRASH, OP_TICK, OP_WAIT,
       OP_SPIN, OP_COUNT };
#define MAX_WAITS 1     /* per input: each costs 1.5 ms of real time */

static const struct { uint16_t off; uint8_t width; } regs[] = {
	{ VI_DEVICE_FEATURES_SEL, 4 }, { VI_DRIVER_FEATURES, 4 }, { VI_DRIVER_FEATURES_SEL, 4 },
	{ VI_QUEUE_SEL, 4 }, { VI_QUEUE_SIZE, 2 }, { VI_QUEUE_DRIVER_VECTOR, 2 },
	{ VI_QUEUE_DESC, 8 }, { VI_QUEUE_DRIVER, 8 }, { VI_QUEUE_DEVICE, 8 },
	{ VI_QUEUE_ENABLE, 2 }, { VI_DEVICE_STATUS, 4 },
};
#define NREGS (sizeof(regs) / sizeof(regs[0]))

/* Where OP_BRINGUP puts queue q's rings, and where buffers usually go. */
#define DESC_AT(q)   (0x1000ull + 0x400ull * (q))
#define AVAIL_AT(q)  (0x2000ull + 0x100ull * (q))
#define USED_AT(q)   (0x2400ull + 0x300ull * (q))
#define BUF_AREA     0x3000ull

static void wr(uint64_t off, uint64_t v, unsigned width)
{
	uint8_t b[8];
	for (unsigned i = 0; i < width; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	ft_write(off, b, width);
}

/* One step: the driver's action happened; tell the device on vector. */
static void process(int vector)
{
	vdev_process(&ft.vd, vector);
	ft_step_end(vector <= 0);
}

static void reg(uint32_t off, uint64_t v, unsigned width)
{
	ft_step_begin();
	wr(off, v, width);
	wr(VI_WRITE_TRANSACTION, off, 4);
	process(0);
}

static void peer(uint32_t state)
{
	ft_step_begin();
	fake_port_set_peer_state(ft.fp, state);
	process(0);
}

static uint64_t addr(struct fz *f)
{
	uint8_t how = fz_u8(f);
	if (how < 8)
		return fz_u64(f);
	return how < 128 ? BUF_AREA + fz_u16(f) % 0x1000 : fz_u16(f) % FT_RW;
}

static void desc(struct fz *f, uint64_t table, unsigned i)
{
	uint64_t a = addr(f);
	uint32_t len = fz_u8(f) < 16 ? fz_u32(f) : fz_u16(f) % 0x800;
	uint16_t flags = fz_u8(f) & 7, next = fz_u8(f);
	wr(table + 16ull * i, a, 8);
	wr(table + 16ull * i + 8, len, 4);
	wr(table + 16ull * i + 12, flags, 2);
	wr(table + 16ull * i + 14, next, 2);
}

/* The queue's rings as the device has them, else where bring-up puts them. */
static void rings(unsigned q, uint64_t *d, uint64_t *a, uint16_t *num)
{
	const struct vq *vq = &ft.vd.q[q].vq;
	*d = vq->ready ? vq->desc : DESC_AT(q);
	*a = vq->ready ? vq->avail : AVAIL_AT(q);
	*num = vq->ready ? vq->num : (uint16_t)ft.qmax;
}

static void bringup(struct fz *f)
{
	uint8_t size_log2 = fz_u8(f) % 7;
	uint32_t lo = fz_u32(f), hi = fz_u32(f);
	if (ft.vd.phase == VDEV_WAIT_PEER_RESET)
		peer(VIRTIO_STATE_RESET);
	peer(VIRTIO_STATE_READY);
	reg(VI_DEVICE_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 4);
	reg(VI_DRIVER_FEATURES_SEL, 1, 4);
	reg(VI_DRIVER_FEATURES, hi | 0x3, 4);           /* VERSION_1, ACCESS_PLATFORM */
	reg(VI_DRIVER_FEATURES_SEL, 0, 4);
	reg(VI_DRIVER_FEATURES, lo, 4);
	reg(VI_DEVICE_STATUS, 0x0b, 4);
	for (unsigned q = 0; q < ft.nq; q++) {
		reg(VI_QUEUE_SEL, q, 4);
		reg(VI_QUEUE_SIZE, 1u << size_log2 < ft.qmax ? 1u << size_log2 : ft.qmax, 2);
		reg(VI_QUEUE_DRIVER_VECTOR, 1 + q, 2);
		reg(VI_QUEUE_DESC, DESC_AT(q), 8);
		reg(VI_QUEUE_DRIVER, AVAIL_AT(q), 8);
		reg(VI_QUEUE_DEVICE, USED_AT(q), 8);
		reg(VI_QUEUE_ENABLE, 1, 2);
	}
	reg(VI_DEVICE_STATUS, 0x0f, 4);
}

/* The driver makes head available on queue q (below 240: an index in the
 * ring, else any value). */
void ft_repost(unsigned q, uint16_t head)
{
	uint64_t d, a;
	uint16_t num;
	rings(q, &d, &a, &num);
	if (head < 240)
		head %= num;
	uint16_t idx = shm_ld16(ft.rw, a + 2);
	wr(a + 4 + 2ull * (idx & (num - 1)), head, 2);
	wr(a + 2, (uint16_t)(idx + 1), 2);
}

/* ---- the journal a new process finds ------------------------------------ */

static size_t align64(size_t n)
{
	return (n + 63) & ~(size_t)63;
}

/* core/journal.c's layout: header, published[nq], inflight[nq][qmax]. */
static uint16_t *published(uint8_t *j)
{
	return (uint16_t *)(j + align64(sizeof(struct journal_hdr)));
}

static uint32_t *inflight(uint8_t *j)
{
	return (uint32_t *)((uint8_t *)published(j) + align64(2 * ft.nq));
}

static void fix_checksums(struct journal_hdr *h)
{
	h->crc = journal_crc(h, offsetof(struct journal_hdr, crc));
	for (int k = 0; k < 2; k++)
		h->t[k].crc = journal_crc(&h->t[k], offsetof(struct journal_transport, crc));
}

/* Overwrite words anywhere in the journal; maybe fix the checksums. */
static void mutate(uint8_t *j, size_t size, void *arg)
{
	struct fz *f = arg;
	for (unsigned n = fz_u8(f) % 8; n--;) {
		size_t off = (size_t)fz_u16(f) * 4 % (size & ~(size_t)3);
		uint32_t v = fz_u32(f);
		memcpy(j + off, &v, 4);
	}
	if (fz_u8(f) & 1)
		fix_checksums((struct journal_hdr *)j);
}

/* A transport state, published indexes and in-flight heads from the input,
 * with valid checksums: what a take-over trusts, all of it hostile. */
static void adopt_first(uint8_t *j, size_t size, void *arg)
{
	struct fz *f = arg;
	struct journal_hdr *h = (struct journal_hdr *)j;
	struct journal_transport *t = &h->t[h->seq & 1];
	t->phase = fz_u8(f) % 4;
	t->status = fz_u8(f);
	t->guest_features = fz_u64(f) & t->host_features;
	t->queue_sel = fz_u8(f);
	t->config_gen = fz_u8(f);
	t->broken = fz_u8(f) & 1;
	for (unsigned q = 0; q < ft.nq; q++) {
		struct journal_queue *jq = &t->q[q];
		uint8_t how = fz_u8(f);
		jq->size = how & 0x80 ? fz_u16(f) : (uint16_t)(1u << (how % 8));
		jq->enable = how & 0x40 ? 0 : 1;
		jq->driver_vector = fz_u8(f);
		jq->desc = how & 0x20 ? addr(f) : DESC_AT(q);
		jq->driver = how & 0x20 ? addr(f) : AVAIL_AT(q);
		jq->device = how & 0x20 ? addr(f) : USED_AT(q);
		published(j)[q] = fz_u16(f);
		for (unsigned n = fz_u8(f) % 8; n--;) {
			unsigned head = fz_u8(f) % ft.qmax;
			inflight(j)[q * ft.qmax + head] = JOURNAL_TAKEN | fz_u16(f);
		}
	}
	fix_checksums(h);
	mutate(j, size, f);
}

/* One busy-poll spin over queue q, as core/busypoll.c runs its sources
 * (without the clock): kicks off, up to `looks` looks at the ring, kicks
 * on, and what came meanwhile run. */
static void spin(unsigned q, unsigned looks)
{
	if (!ft.vd.q || q >= ft.vd.nq)
		return;
	struct busypoll_source *s = &ft.vd.q[q].spin;
	if (!s->quiet || !s->quiet(s))
		return;
	for (unsigned i = 0; i < looks; i++)
		if (s->ready(s) && s->run(s))
			break;
	if (s->arm(s) && s->ready(s))
		s->run(s);
	if (ft.vd.q[q].vq.notify_off)
		abort();                /* the loop would sleep with kicks off */
}

/* ---- the program --------------------------------------------------------- */

static void step(struct fz *f)
{
	uint8_t op = fz_u8(f) % OP_COUNT;
	if (op == OP_REG) {
		uint8_t k = fz_u8(f) % (NREGS + 2);
		if (k < NREGS) {
			uint64_t v = regs[k].width == 8 ? addr(f)
				   : regs[k].width == 4 ? fz_u32(f) : fz_u16(f);
			reg(regs[k].off, v, regs[k].width);
		} else {
			/* a config byte, or any code at all */
			uint32_t code = k == NREGS ? (uint32_t)VI_CONFIG + fz_u8(f) % 64 : fz_u32(f);
			ft_step_begin();
			wr(VI_WRITE_TRANSACTION, code, 4);
			process(0);
		}
		return;
	}
	if (op == OP_PEER) {
		uint8_t s = fz_u8(f);
		peer(s < 128 ? 0u : s < 250 ? 1u : fz_u32(f));
		return;
	}
	if (op == OP_BRINGUP) {
		bringup(f);
		return;
	}
	ft_step_begin();
	switch (op) {
	case OP_KICK:
		process((int)(fz_u8(f) % (ft.fp->port.vectors + 2)) - 1);
		return;
	case OP_DESC: {
		uint64_t d, a;
		uint16_t num;
		rings(fz_u8(f) % ft.nq, &d, &a, &num);
		desc(f, d, fz_u16(f) % num);
		break;
	}
	case OP_ITAB: {
		uint64_t table = (BUF_AREA + fz_u16(f) % 0x1000) & ~15ull;
		for (unsigned n = fz_u8(f) % 8, i = 0; i < n; i++)
			desc(f, table, i);
		break;
	}
	case OP_AVAIL: {
		unsigned q = fz_u8(f) % ft.nq;
		uint8_t h = fz_u8(f);
		uint16_t head = h < 240 ? h : fz_u16(f);
		ft_repost(q, head);
		break;
	}
	case OP_POKE: {
		uint8_t b[16];
		uint64_t off = fz_u16(f) % FT_RW;
		size_t n = 1 + fz_u8(f) % sizeof(b);
		fz_bytes(f, b, n);
		ft_write(off, b, n < FT_RW - off ? n : FT_RW - off);
		break;
	}
	case OP_ANSWER: {
		unsigned q = fz_u8(f) % ft.nq, i = fz_u8(f);
		uint32_t len = fz_u8(f) < 16 ? fz_u32(f) : fz_u16(f) % 0x1000;
		if (ft.nheld[q])
			ft_answer(q, i % ft.nheld[q], len);
		break;
	}
	case OP_PAUSE:
		vdev_pause(&ft.vd, fz_u8(f) & 1);
		break;
	case OP_FLUSH:
		vdev_flush(&ft.vd);
		break;
	case OP_CONFIG:
		vdev_config_changed(&ft.vd);
		break;
	case OP_SHUTDOWN:
		ft_shutdown();
		break;
	case OP_LINK_DOWN:
		vdev_link_down(&ft.vd);
		break;
	case OP_CRASH:
		if (ft.vd.journal)
			ft_crash(mutate, f);
		break;
	case OP_TICK:
		break;
	case OP_SPIN: {
		uint8_t x = fz_u8(f);
		spin(x % ft.nq, 1 + (x >> 4) % 4);
		break;
	}
	case OP_WAIT:
		/* Long enough for the late interrupt decision of polled
		 * queues (core/transport.c). */
		if (ft.waits++ < MAX_WAITS)
			usleep(1500);
		break;
	}
	ft_step_end(false);
}

void ft_program(struct fz *f)
{
	uint8_t a = fz_u8(f), b = fz_u8(f), flags = fz_u8(f);
	ft.nq = 1 + a % FT_MAX_NQ;
	ft.qmax = 1u << (b % 7);
	ft.max_segments = (b >> 3) % 8;
	ft.answer_at_once = flags & 2;
	ft.cancel_answers = flags & 4;
	ft.refill = flags & 64;
	ft.polled = (flags >> 3) & 3;
	ft.features = fz_u64(f);
	ft.cfg_size = fz_u8(f) % 64;
	ft.at_once_len = fz_u8(f);
	ft.fp = fake_port_new_at(0, 1 + (a >> 2) % 6, ft.rw, FT_RW);
	if (!ft.fp)
		abort();
	ft_init_vdev();
	if (flags & 1) {
		if (journal_create(&ft.jr, "fuzz", 42, ft.nq, ft.qmax) < 0)
			abort();
		vdev_set_journal(&ft.vd, &ft.jr);
	}
	ft_step_begin();
	vdev_start(&ft.vd);
	ft_step_end(false);
	if ((flags & 32) && ft.vd.journal) {
		/* Taken over from a journal made of input bytes, on a section
		 * the input wrote. */
		for (unsigned k = fz_u8(f) % 8; k--;) {
			uint8_t buf[16];
			uint64_t off = fz_u16(f) % FT_RW;
			size_t n = sizeof(buf) < FT_RW - off ? sizeof(buf) : FT_RW - off;
			fz_bytes(f, buf, n);
			ft_write(off, buf, n);
		}
		fake_port_set_peer_state(ft.fp, fz_u8(f) & 1);
		ft_step_begin();
		ft_crash(adopt_first, f);
		ft_step_end(true);
	}
	while (fz_more(f))
		step(f);
}
