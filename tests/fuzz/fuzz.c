#include "tests/fuzz/fuzz.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log.h"

uint8_t fz_u8(struct fz *f)
{
	if (!f->n)
		return 0;
	f->n--;
	return *f->p++;
}

/* Little-endian, one call per byte: the order of the operands of | is
 * unspecified in C, so each byte is taken in its own statement. */
uint16_t fz_u16(struct fz *f)
{
	uint16_t lo = fz_u8(f);
	return (uint16_t)(lo | fz_u8(f) << 8);
}

uint32_t fz_u32(struct fz *f)
{
	uint32_t lo = fz_u16(f);
	return lo | (uint32_t)fz_u16(f) << 16;
}

uint64_t fz_u64(struct fz *f)
{
	uint64_t lo = fz_u32(f);
	return lo | (uint64_t)fz_u32(f) << 32;
}

size_t fz_bytes(struct fz *f, void *dst, size_t len)
{
	size_t n = len < f->n ? len : f->n;
	memcpy(dst, f->p, n);
	memset((uint8_t *)dst + n, 0, len - n);
	f->p += n;
	f->n -= n;
	return n;
}

static size_t page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

void *fz_map_guarded(size_t size)
{
	size_t pg = page();
	uint8_t *all = mmap(NULL, size + 2 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (all == MAP_FAILED || (size % pg) ||
	    mprotect(all + pg, size, PROT_READ | PROT_WRITE) < 0) {
		perror("fz_map_guarded");
		abort();
	}
	return all + pg;
}

void fz_unmap_guarded(void *p, size_t size)
{
	munmap((uint8_t *)p - page(), size + 2 * page());
}

void fz_protect(void *p, size_t len, bool accessible)
{
	if (mprotect(p, len, accessible ? PROT_READ | PROT_WRITE : PROT_NONE) < 0) {
		perror("fz_protect");
		abort();
	}
}

void fz_quiet(void)
{
	/* Below every real level: nothing is formatted or written. */
	log_set_level((enum log_level)0);
}

void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s:%d: oracle failed: %s: ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}
