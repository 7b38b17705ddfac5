/* Helpers shared by the fuzz targets (tests/fuzz/fuzz_*.c).
 *
 * Every target is one LLVMFuzzerTestOneInput(): built with libFuzzer it is
 * fuzzed (meson -Dfuzz=true, scripts/fuzz), built with replay.c it runs the
 * committed corpus as a normal test (so a crash that was fixed stays fixed
 * under the compiler and sanitizers of the normal suite).
 *
 * Input: a cursor over the fuzzer's bytes.  Reading past the end gives
 * zeros, so every input is a complete, deterministic program and a short
 * input is simply a short one.
 *
 * Shared memory: fz_map_guarded() maps a region with an inaccessible page
 * on each side, so that any access outside the region faults at the access
 * (ASan only sees heap, stack and globals; a mapping is invisible to it).
 *
 * Oracles: FZ_CHECK(cond, fmt, ...) prints what broke and aborts, which
 * libFuzzer reports as a crash and saves the input for.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fz {
	const uint8_t *p;
	size_t n;
};

static inline bool fz_more(const struct fz *f)
{
	return f->n > 0;
}

uint8_t fz_u8(struct fz *f);
uint16_t fz_u16(struct fz *f);
uint32_t fz_u32(struct fz *f);
uint64_t fz_u64(struct fz *f);
/* Copy up to len bytes into dst; the rest of dst is zeroed.  Returns how
 * many came from the input. */
size_t fz_bytes(struct fz *f, void *dst, size_t len);

/* A region of size bytes (a multiple of the page size) between two
 * PROT_NONE pages.  Never fails (aborts instead): a target without its
 * region cannot run. */
void *fz_map_guarded(size_t size);
void fz_unmap_guarded(void *p, size_t size);
/* Make [p, p + len) of a guarded region inaccessible (len and p page
 * aligned), or accessible again. */
void fz_protect(void *p, size_t len, bool accessible);

/* Silence the product's log (it goes to stderr, one line per event: far
 * too slow and noisy at thousands of inputs per second). */
void fz_quiet(void);

void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((format(printf, 4, 5), noreturn));

#define FZ_CHECK(cond, ...) \
	do { if (!(cond)) fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); } while (0)

/* The entry point every target defines (libFuzzer's name and signature). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
