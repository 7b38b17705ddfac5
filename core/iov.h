/* Scatter-gather lists (struct iovec) over shared memory.  The caller has
 * validated every element (core/virtqueue.h); these only move bytes. */
#pragma once
#include <stdint.h>
#include <sys/uio.h>

/* Total length. */
uint64_t iov_len(const struct iovec *iov, unsigned n);
/* Copy up to len bytes out of the list (gather) into dst; returns bytes. */
uint64_t iov_to_buf(const struct iovec *iov, unsigned n, void *dst, uint64_t len);
/* Copy up to len bytes into the list (scatter); returns bytes copied. */
uint64_t iov_from_buf(const struct iovec *iov, unsigned n, const void *src, uint64_t len);
/* Drop the first bytes of a list in place; returns the new count (the list
 * start moves forward through *iov). */
unsigned iov_skip(struct iovec **iov, unsigned n, uint64_t bytes);
