/* Little-endian field access for on-disk and on-wire layouts, in private
 * buffers (memory shared with a peer goes through core/shm.h instead).
 * Header-only: the cell manager uses it without linking the core.
 *
 * Contract: every accessor takes a base pointer and a byte offset that the
 * caller has already bounds-checked; they never read or write outside
 * [p+off, p+off+width).  Byte-wise assembly keeps the code independent of the
 * host byte order and of alignment (config fields are packed).
 */
#pragma once
#include <stdint.h>
#include <string.h>

static inline uint8_t le8(const uint8_t *p, size_t off) { return p[off]; }

static inline uint16_t le16(const uint8_t *p, size_t off)
{
	return (uint16_t)(p[off] | (uint16_t)p[off + 1] << 8);
}

static inline uint32_t le32(const uint8_t *p, size_t off)
{
	return (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 |
	       (uint32_t)p[off + 2] << 16 | (uint32_t)p[off + 3] << 24;
}

static inline uint64_t le64(const uint8_t *p, size_t off)
{
	return (uint64_t)le32(p, off) | (uint64_t)le32(p, off + 4) << 32;
}

static inline void put_le8(uint8_t *p, size_t off, uint8_t v) { p[off] = v; }

static inline void put_le16(uint8_t *p, size_t off, uint16_t v)
{
	p[off] = (uint8_t)v;
	p[off + 1] = (uint8_t)(v >> 8);
}

static inline void put_le32(uint8_t *p, size_t off, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[off + i] = (uint8_t)(v >> (8 * i));
}

static inline void put_le64(uint8_t *p, size_t off, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[off + i] = (uint8_t)(v >> (8 * i));
}
