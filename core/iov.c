#include "core/iov.h"

#include <string.h>

#include "core/shm.h"

uint64_t iov_len(const struct iovec *iov, unsigned n)
{
	uint64_t t = 0;
	for (unsigned i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

uint64_t iov_to_buf(const struct iovec *iov, unsigned n, void *dst, uint64_t len)
{
	uint64_t done = 0;
	for (unsigned i = 0; i < n && done < len; i++) {
		uint64_t c = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;
		shm_tsan_blind_begin();     /* ordered by the peer: core/shm.h */
		memcpy((uint8_t *)dst + done, iov[i].iov_base, c);
		shm_tsan_blind_end();
		done += c;
	}
	return done;
}

uint64_t iov_from_buf(const struct iovec *iov, unsigned n, const void *src, uint64_t len)
{
	uint64_t done = 0;
	for (unsigned i = 0; i < n && done < len; i++) {
		uint64_t c = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;
		shm_tsan_blind_begin();
		memcpy(iov[i].iov_base, (const uint8_t *)src + done, c);
		shm_tsan_blind_end();
		done += c;
	}
	return done;
}

unsigned iov_skip(struct iovec **piov, unsigned n, uint64_t bytes)
{
	struct iovec *iov = *piov;
	while (n && bytes) {
		if (bytes < iov->iov_len) {
			iov->iov_base = (uint8_t *)iov->iov_base + bytes;
			iov->iov_len -= bytes;
			break;
		}
		bytes -= iov->iov_len;
		iov++;
		n--;
	}
	*piov = iov;
	return n;
}
