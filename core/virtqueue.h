/* Split virtqueue living in memory shared with an untrusted driver.
 *
 * All addresses are byte offsets into one region (the IVSHMEM R/W section).
 * Every value the driver writes is read once into a local and then checked:
 * ring placement and size at setup; at pop time the avail index (may not run
 * ahead by more than the queue size), head and next indices, chain length
 * (loops), indirect tables (length, nesting), buffer ranges (inside the
 * region, above the transport header, no 64-bit wrap) and direction order.
 * A violation makes vq_pop() return a negative errno; the caller then treats
 * the device as broken.  Nothing here ever touches memory outside the region.
 *
 * Notification suppression follows VIRTIO_RING_F_EVENT_IDX when negotiated,
 * the NO_INTERRUPT flag otherwise.  Used entries are written with vq_push()
 * and published in one go by vq_publish(), so a batch costs one index store
 * and at most one interrupt.
 *
 * Ordering (core/shm.h says which barrier does what): avail->idx is read
 * with acquire before anything it covers; used->idx is stored with release
 * after the entries and the data; a full barrier separates publishing
 * used->idx from reading used_event or the flags (vq_want_interrupt), and
 * storing avail_event from re-reading avail->idx (vq_enable_notify), each
 * against the driver's mirror image, so that an interrupt or a kick is
 * never lost between the two sides.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define VRING_DESC_F_NEXT         1
#define VRING_DESC_F_WRITE        2
#define VRING_DESC_F_INDIRECT     4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY    1

#define VQ_MAX_SIZE               32768
#define VQ_MAX_INDIRECT           1024   /* descriptors in one indirect table */

struct vq {
	uint8_t *base;          /* region start */
	uint64_t lo, hi;        /* buffers and rings must lie in [lo, hi) */
	uint16_t num;           /* ring size, a power of two */
	uint64_t desc, avail, used;
	bool event_idx;
	bool indirect;
	uint16_t last_avail;    /* next avail entry to pop */
	uint16_t used_idx;      /* shadow of used->idx, published by vq_publish */
	uint16_t signalled_used;
	bool signalled_valid;
	uint32_t unsignalled;   /* entries pushed since the last interrupt decision */
	bool notify_off;        /* kicks turned off (vq_notify_off) until vq_notify_on */
	bool no_notify_shown;   /* VRING_USED_F_NO_NOTIFY may be set in the ring */
	bool ready;
};

struct vq_elem {
	uint16_t head;
	unsigned n_out;         /* device-readable buffers: iov[0 .. n_out) */
	unsigned n_in;          /* device-writable buffers: iov[n_out .. n_out+n_in) */
	uint64_t in_bytes;      /* total writable length */
	uint64_t out_bytes;     /* total readable length */
};

/* Ring sizes in bytes for a queue of num entries (with event-idx fields). */
static inline uint64_t vq_desc_bytes(uint16_t num)  { return 16ull * num; }
static inline uint64_t vq_avail_bytes(uint16_t num) { return 6ull + 2ull * num; }
static inline uint64_t vq_used_bytes(uint16_t num)  { return 6ull + 8ull * num; }

/* Check the placement and size of a ring and make it live.  lo..hi is the
 * part of the region the driver owns.  Returns 0, -EINVAL (size) or -ERANGE
 * (placement, alignment). */
int vq_setup(struct vq *vq, uint8_t *base, uint64_t lo, uint64_t hi, uint16_t num,
	     uint16_t max_num, uint64_t desc, uint64_t avail, uint64_t used,
	     bool event_idx, bool indirect);

/* Take over a live ring another process set up (see core/journal.h): the
 * same checks as vq_setup, but nothing is written; the used index is what
 * the ring shows, and last_avail starts there (the caller corrects it). */
int vq_adopt(struct vq *vq, uint8_t *base, uint64_t lo, uint64_t hi, uint16_t num,
	     uint16_t max_num, uint64_t desc, uint64_t avail, uint64_t used,
	     bool event_idx, bool indirect);

/* The head in used ring entry idx (as written there; the caller checks it). */
uint16_t vq_used_head(const struct vq *vq, uint16_t idx);

/* The chain at head, with the checks of vq_pop, without touching the avail
 * ring: a request taken before a restart, to execute again. */
int vq_chain(struct vq *vq, uint16_t head, struct vq_elem *e, struct iovec *iov, unsigned cap);

/* Pop one descriptor chain into iov (iov_cap entries).  Returns 1 with *elem
 * filled, 0 when the ring is empty, or a negative errno when the driver broke
 * the rules: -EOVERFLOW avail index ran ahead, -ERANGE bad index or buffer,
 * -ELOOP chain too long, -EMLINK nested indirect, -EINVAL bad indirect table
 * or readable-after-writable, -ENOBUFS more buffers than iov_cap. */
int vq_pop(struct vq *vq, struct vq_elem *elem, struct iovec *iov, unsigned iov_cap);

/* Is anything waiting in the avail ring?  (Read-only; same index check.) */
bool vq_has_work(struct vq *vq);

/* Queue a used entry (not visible to the driver until vq_publish). */
void vq_push(struct vq *vq, uint16_t head, uint32_t len);

/* Make the pushed entries visible.  Returns true when the driver wants an
 * interrupt for them (event-idx / NO_INTERRUPT rules): vq_publish_idx()
 * then vq_want_interrupt(). */
bool vq_publish(struct vq *vq);

/* Make the pushed entries visible, deciding nothing about an interrupt. */
void vq_publish_idx(struct vq *vq);

/* Does the driver want an interrupt for the entries published since the
 * last time this said yes?  Never for nothing new.  With event-idx this may
 * run well after vq_publish_idx(): a driver that has meanwhile taken the
 * entries by polling has moved used_event past them and gets no (spurious)
 * interrupt. */
bool vq_want_interrupt(struct vq *vq);

/* Ask the driver for a kick when more buffers arrive (event-idx: publish
 * last_avail as avail_event; else clear VRING_USED_F_NO_NOTIFY).  Returns
 * true if buffers arrived meanwhile, in which case the caller should pop
 * again instead of sleeping.  While kicks are off (vq_notify_off) it only
 * looks: nothing is written until vq_notify_on. */
bool vq_enable_notify(struct vq *vq);

/* Tell the driver it need not kick: someone is watching the avail index
 * (a busy-polling loop).  Event-idx: avail_event is put half the index
 * space away from what was taken, which no batch the driver publishes
 * crosses; else the NO_NOTIFY flag.  Only a hint: a driver that decided
 * to kick before it saw this still kicks, which costs a wake-up and loses
 * nothing.  The caller must end it with vq_notify_on() before it stops
 * watching. */
void vq_notify_off(struct vq *vq);

/* Ask for kicks again (vq_enable_notify, with its answer: true if buffers
 * arrived meanwhile, which no kick will announce). */
bool vq_notify_on(struct vq *vq);
