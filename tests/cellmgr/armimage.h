/* Synthetic arm64 Image for layout tests: the header of the kernel's
 * Documentation/arch/arm64/booting.rst (EFI-style code0 "MZ", magic
 * "ARM\x64" at 0x38, flags LE / 4K pages / anywhere) and recognisable
 * filler after it. */
#pragma once
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline void arm_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> 8 * i);
}

/* len bytes (at least 64), malloc'ed. */
static inline uint8_t *arm64_image(size_t len, uint64_t text_offset, uint64_t image_size)
{
	uint8_t *k = calloc(1, len);

	for (size_t i = 64; i < len; i++)
		k[i] = (uint8_t)(i * 13);
	memcpy(k, "MZ\x40\xfa", 4);
	arm_put_le64(k + 8, text_offset);
	arm_put_le64(k + 16, image_size);
	arm_put_le64(k + 24, 0xa);
	memcpy(k + 0x38, "ARM\x64", 4);
	return k;
}
