/* Access to memory shared with an untrusted peer.
 *
 * Every load from shared memory goes through these helpers so that each value
 * is read exactly once (the compiler may not re-read it after we checked it)
 * and converted from the little-endian wire order.  Stores are single, sized
 * stores, as the peer may read concurrently.  Offsets are the caller's to
 * bounds-check; these helpers never check anything.
 *
 * Ordering.  The peer runs on another CPU (a cell's core, or another
 * process), and on a weakly ordered CPU (arm64) neither its stores nor ours
 * are seen in program order without barriers.  The plain helpers are
 * relaxed: single-copy atomic, no ordering.  The ordered ones, and the rule
 * each use serves (the driver's halves: tests/frontend/fe.c, and Linux's
 * virtio_ring.c):
 *
 *  - acquire loads (shm_ld16_acquire, shm_ld32_acquire; arm64 LDAR): the
 *    index or flag that says "the rest is written" is read before the rest.
 *    avail->idx before the ring entries, the descriptors and the request
 *    buffers (virtqueue.c avail_pending); WRITE_TRANSACTION before the
 *    registers it names (transport_regs.c); the peer's state before the
 *    header (port.h); our own used->idx when a device is taken over.
 *  - release store (shm_st16_release; arm64 STLR): used->idx after the used
 *    entries and everything the requests wrote (data read from the disk,
 *    status bytes, console input), including what the kernel or an I/O
 *    pool thread wrote: their completion reached this thread through an
 *    acquire (the CQ tail, the pool's mutex) and release is cumulative, so
 *    those stores are ordered before the index too (core/io_engine.h).
 *  - shm_wmb (release fence; arm64 DMB ISH): stores before, stores after.
 *    The config generation around the config bytes (odd while they
 *    change); everything before a doorbell (port.h ivshm_port_notify: the
 *    doorbell is a store to a register, and the peer reads our memory when
 *    it sees the interrupt).
 *  - shm_rmb (acquire fence; arm64 DMB ISHLD): loads before, loads after
 *    (the driver's re-check of the config generation).
 *  - shm_mb (sequentially consistent fence; DMB ISH, x86 MFENCE): a store
 *    that must be visible before a later load, the one reordering x86
 *    makes too.  Most are one half of a pair where each side stores, then
 *    loads what the other stores, so that at least one sees the other:
 *      used->idx published, then the driver's used_event or flags read
 *        (virtqueue.c vq_want_interrupt), against the driver storing
 *        used_event, then re-reading used->idx (fe.c fe_vq_get);
 *      avail_event stored, then avail->idx re-read (vq_enable_notify),
 *        against the driver storing avail->idx, then reading avail_event
 *        (fe.c fe_vq_kick);
 *      INT_CONTROL re-armed, then shared memory rescanned (port.h
 *        ivshm_port_rearm): an interrupt is not latched while disarmed;
 *    and the rest order everything before a store the peer acts on: our
 *    state (port.h ivshm_port_set_state), WRITE_TRANSACTION cleared
 *    (transport_regs.c vdev_ack_transaction: the transaction's values are
 *    read and its answers written before the driver may start the next),
 *    an event flag before its doorbell (vdev_notify_driver).
 */
#pragma once
#include <endian.h>
#include <stdint.h>
#include <string.h>

static inline uint8_t shm_ld8(const void *base, uint64_t off)
{
	return __atomic_load_n((const uint8_t *)base + off, __ATOMIC_RELAXED);
}

static inline uint16_t shm_ld16(const void *base, uint64_t off)
{
	return le16toh(__atomic_load_n((const uint16_t *)((const uint8_t *)base + off),
				       __ATOMIC_RELAXED));
}

static inline uint32_t shm_ld32(const void *base, uint64_t off)
{
	return le32toh(__atomic_load_n((const uint32_t *)((const uint8_t *)base + off),
				       __ATOMIC_RELAXED));
}

static inline uint64_t shm_ld64(const void *base, uint64_t off)
{
	return le64toh(__atomic_load_n((const uint64_t *)((const uint8_t *)base + off),
				       __ATOMIC_RELAXED));
}

/* Acquire load: later loads (ring entries) are not hoisted above it. */
static inline uint16_t shm_ld16_acquire(const void *base, uint64_t off)
{
	return le16toh(__atomic_load_n((const uint16_t *)((const uint8_t *)base + off),
				       __ATOMIC_ACQUIRE));
}

static inline uint32_t shm_ld32_acquire(const void *base, uint64_t off)
{
	return le32toh(__atomic_load_n((const uint32_t *)((const uint8_t *)base + off),
				       __ATOMIC_ACQUIRE));
}

static inline void shm_st8(void *base, uint64_t off, uint8_t v)
{
	__atomic_store_n((uint8_t *)base + off, v, __ATOMIC_RELAXED);
}

static inline void shm_st16(void *base, uint64_t off, uint16_t v)
{
	__atomic_store_n((uint16_t *)((uint8_t *)base + off), htole16(v), __ATOMIC_RELAXED);
}

static inline void shm_st32(void *base, uint64_t off, uint32_t v)
{
	__atomic_store_n((uint32_t *)((uint8_t *)base + off), htole32(v), __ATOMIC_RELAXED);
}

static inline void shm_st64(void *base, uint64_t off, uint64_t v)
{
	__atomic_store_n((uint64_t *)((uint8_t *)base + off), htole64(v), __ATOMIC_RELAXED);
}

/* Release store: earlier stores (used entries) are visible before it. */
static inline void shm_st16_release(void *base, uint64_t off, uint16_t v)
{
	__atomic_store_n((uint16_t *)((uint8_t *)base + off), htole16(v), __ATOMIC_RELEASE);
}

static inline void shm_mb(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static inline void shm_wmb(void)
{
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static inline void shm_rmb(void)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
}

/* Does [off, off+len) lie inside [lo, hi)?  Safe against 64-bit wrap. */
static inline int shm_range_ok(uint64_t off, uint64_t len, uint64_t lo, uint64_t hi)
{
	return off >= lo && off <= hi && len <= hi - off;
}
