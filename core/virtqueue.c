#include "core/virtqueue.h"

#include <errno.h>
#include <string.h>

#include "core/shm.h"

/* Offsets inside the split ring structures. */
#define AVAIL_FLAGS      0
#define AVAIL_IDX        2
#define AVAIL_RING       4
#define USED_FLAGS       0
#define USED_IDX         2
#define USED_RING        4

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static void read_desc(const struct vq *vq, uint64_t table, uint32_t i, struct desc *d)
{
	uint64_t off = table + 16ull * i;
	d->addr = shm_ld64(vq->base, off);
	d->len = shm_ld32(vq->base, off + 8);
	d->flags = shm_ld16(vq->base, off + 12);
	d->next = shm_ld16(vq->base, off + 14);
}

/* Check the placement and size of a ring and describe it in *vq. */
static int place(struct vq *vq, uint8_t *base, uint64_t lo, uint64_t hi, uint16_t num,
		 uint16_t max_num, uint64_t desc, uint64_t avail, uint64_t used,
		 bool event_idx, bool indirect)
{
	memset(vq, 0, sizeof(*vq));
	if (num == 0 || (num & (num - 1)) || num > max_num || num > VQ_MAX_SIZE)
		return -EINVAL;
	if ((desc & 15) || (avail & 1) || (used & 3))
		return -ERANGE;
	if (!shm_range_ok(desc, vq_desc_bytes(num), lo, hi) ||
	    !shm_range_ok(avail, vq_avail_bytes(num), lo, hi) ||
	    !shm_range_ok(used, vq_used_bytes(num), lo, hi))
		return -ERANGE;
	/* The used ring is the one we write: it may not overlap the others,
	 * or our own stores would feed back into what we parse. */
	if (used < desc + vq_desc_bytes(num) && desc < used + vq_used_bytes(num))
		return -ERANGE;
	if (used < avail + vq_avail_bytes(num) && avail < used + vq_used_bytes(num))
		return -ERANGE;
	vq->base = base;
	vq->lo = lo;
	vq->hi = hi;
	vq->num = num;
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	return 0;
}

int vq_setup(struct vq *vq, uint8_t *base, uint64_t lo, uint64_t hi, uint16_t num,
	     uint16_t max_num, uint64_t desc, uint64_t avail, uint64_t used,
	     bool event_idx, bool indirect)
{
	int r = place(vq, base, lo, hi, num, max_num, desc, avail, used, event_idx, indirect);
	if (r < 0)
		return r;
	vq->ready = true;
	/* A newly enabled queue starts at index 0 on both sides (virtio 1.x);
	 * we own the used ring, so we put it into that state ourselves. */
	vq->used_idx = 0;
	vq->last_avail = 0;
	shm_st16(base, used + USED_FLAGS, 0);
	shm_st16(base, used + USED_IDX, 0);
	return 0;
}

int vq_adopt(struct vq *vq, uint8_t *base, uint64_t lo, uint64_t hi, uint16_t num,
	     uint16_t max_num, uint64_t desc, uint64_t avail, uint64_t used,
	     bool event_idx, bool indirect)
{
	int r = place(vq, base, lo, hi, num, max_num, desc, avail, used, event_idx, indirect);
	if (r < 0)
		return r;
	vq->used_idx = shm_ld16_acquire(base, used + USED_IDX);
	vq->last_avail = vq->used_idx;
	/* The process before us may have died with kicks off: the first
	 * vq_enable_notify clears the flag whatever it shows. */
	vq->no_notify_shown = true;
	vq->ready = true;
	return 0;
}

uint16_t vq_used_head(const struct vq *vq, uint16_t idx)
{
	return (uint16_t)shm_ld32(vq->base, vq->used + USED_RING + 8ull * (idx & (vq->num - 1)));
}

/* Returns the number of entries waiting, or -EOVERFLOW. */
static int avail_pending(struct vq *vq)
{
	uint16_t idx = shm_ld16_acquire(vq->base, vq->avail + AVAIL_IDX);
	uint16_t n = (uint16_t)(idx - vq->last_avail);
	if (n > vq->num)
		return -EOVERFLOW;
	return n;
}

bool vq_has_work(struct vq *vq)
{
	return vq->ready && avail_pending(vq) != 0;
}

static int add_buffer(struct vq *vq, const struct desc *d, struct vq_elem *e,
		      struct iovec *iov, unsigned cap)
{
	if (!shm_range_ok(d->addr, d->len, vq->lo, vq->hi))
		return -ERANGE;
	if (d->len == 0)
		return 0;
	if (d->flags & VRING_DESC_F_WRITE) {
		e->in_bytes += d->len;
		e->n_in++;
	} else {
		/* Readable buffers must all come before the writable ones. */
		if (e->n_in)
			return -EINVAL;
		e->out_bytes += d->len;
		e->n_out++;
	}
	unsigned n = e->n_out + e->n_in;
	if (n > cap)
		return -ENOBUFS;
	iov[n - 1].iov_base = vq->base + d->addr;
	iov[n - 1].iov_len = d->len;
	return 0;
}

/* Walk the chain at head into *e and iov. */
static int walk(struct vq *vq, uint16_t head, struct vq_elem *e, struct iovec *iov, unsigned cap)
{
	if (head >= vq->num)
		return -ERANGE;
	memset(e, 0, sizeof(*e));
	e->head = head;
	uint64_t table = vq->desc;
	uint32_t table_len = vq->num;
	uint32_t i = head;
	unsigned seen = 0;          /* descriptors visited in the current table */
	bool in_indirect = false;
	for (;;) {
		struct desc d;
		if (++seen > table_len)
			return -ELOOP;
		read_desc(vq, table, i, &d);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!vq->indirect)
				return -EINVAL;
			if (in_indirect)
				return -EMLINK;
			if (d.flags & VRING_DESC_F_NEXT)
				return -EINVAL;
			if (d.len == 0 || (d.len & 15) || d.len / 16 > VQ_MAX_INDIRECT ||
			    (d.addr & 15) || !shm_range_ok(d.addr, d.len, vq->lo, vq->hi))
				return -EINVAL;
			table = d.addr;
			table_len = d.len / 16;
			i = 0;
			seen = 0;
			in_indirect = true;
			continue;
		}
		int r = add_buffer(vq, &d, e, iov, cap);
		if (r < 0)
			return r;
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		if (d.next >= table_len)
			return -ERANGE;
		i = d.next;
	}
	return 1;
}

int vq_pop(struct vq *vq, struct vq_elem *e, struct iovec *iov, unsigned cap)
{
	if (!vq->ready)
		return 0;
	int pending = avail_pending(vq);
	if (pending <= 0)
		return pending;
	uint16_t head = shm_ld16(vq->base, vq->avail + AVAIL_RING + 2ull * (vq->last_avail & (vq->num - 1)));
	int r = walk(vq, head, e, iov, cap);
	if (r < 0)
		return r;
	vq->last_avail++;
	return 1;
}

int vq_chain(struct vq *vq, uint16_t head, struct vq_elem *e, struct iovec *iov, unsigned cap)
{
	return walk(vq, head, e, iov, cap);
}

void vq_push(struct vq *vq, uint16_t head, uint32_t len)
{
	uint64_t slot = vq->used + USED_RING + 8ull * (vq->used_idx & (vq->num - 1));
	shm_st32(vq->base, slot, head);
	shm_st32(vq->base, slot + 4, len);
	vq->used_idx++;
	vq->unsignalled++;
}

static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

void vq_publish_idx(struct vq *vq)
{
	shm_st16_release(vq->base, vq->used + USED_IDX, vq->used_idx);
}

bool vq_want_interrupt(struct vq *vq)
{
	uint16_t old = vq->signalled_used;
	bool valid = vq->signalled_valid;
	if (vq->unsignalled == 0)
		return false;       /* nothing new since the last decision */
	vq->unsignalled = 0;
	/* The driver's used_event / flags must be read after our index store. */
	shm_mb();
	vq->signalled_used = vq->used_idx;
	vq->signalled_valid = true;
	if (!vq->event_idx)
		return !(shm_ld16(vq->base, vq->avail + AVAIL_FLAGS) & VRING_AVAIL_F_NO_INTERRUPT);
	uint16_t used_event = shm_ld16(vq->base, vq->avail + AVAIL_RING + 2ull * vq->num);
	return !valid || need_event(used_event, vq->used_idx, old);
}

bool vq_publish(struct vq *vq)
{
	vq_publish_idx(vq);
	return vq_want_interrupt(vq);
}

static uint64_t avail_event(const struct vq *vq)
{
	return vq->used + USED_RING + 8ull * vq->num;
}

bool vq_enable_notify(struct vq *vq)
{
	if (!vq->ready)
		return false;
	if (!vq->notify_off) {
		if (vq->event_idx) {
			shm_st16(vq->base, avail_event(vq), vq->last_avail);
		} else if (vq->no_notify_shown) {
			shm_st16(vq->base, vq->used + USED_FLAGS, 0);
			vq->no_notify_shown = false;
		}
		shm_mb();
	}
	return avail_pending(vq) != 0;
}

void vq_notify_off(struct vq *vq)
{
	if (!vq->ready || vq->notify_off)
		return;
	vq->notify_off = true;
	if (vq->event_idx) {
		/* The driver kicks when avail_event lies in [old, new): old
		 * is its index at its last kick decision, new its index now.
		 * Linux publishes each request as it adds it and decides at
		 * the end of a batch, so old may be behind what we took, and
		 * new is at most a ring ahead of that.  The point half the index
		 * space away is in neither direction: a batch would have to
		 * span 32768 entries (what the spin takes meanwhile included)
		 * to cross it, and then it costs one kick. */
		shm_st16(vq->base, avail_event(vq), (uint16_t)(vq->last_avail + 0x8000u));
	} else {
		shm_st16(vq->base, vq->used + USED_FLAGS, VRING_USED_F_NO_NOTIFY);
		vq->no_notify_shown = true;
	}
}

bool vq_notify_on(struct vq *vq)
{
	vq->notify_off = false;
	return vq_enable_notify(vq);
}
