/* Access to memory shared with an untrusted peer.
 *
 * Every load from shared memory goes through these helpers so that each value
 * is read exactly once (the compiler may not re-read it after we checked it)
 * and converted from the little-endian wire order.  Stores are single, sized
 * stores, as the peer may read concurrently.  Offsets are the caller's to
 * bounds-check; these helpers never check anything.
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
