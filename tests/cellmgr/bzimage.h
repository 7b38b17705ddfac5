/* Synthetic x86 bzImage for layout tests: a boot-protocol header with
 * recognisable filler, setup_sects = 28 (so pref 0x1000000 gives the
 * AGL example load address 0xffc600) and a gzip payload magic. */
#pragma once
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BZ_LEN 0x6000u
#define BZ_SETUP_SECTS 28u
#define BZ_PREF 0x1000000ull
#define BZ_INIT_SIZE 0x20000u
#define BZ_HDR_END 0x26cu
#define BZ_PAYLOAD_OFF 0x100u

static inline uint8_t *bz_make(void)
{
	uint8_t *k = malloc(BZ_LEN);

	for (unsigned i = 0; i < BZ_LEN; i++)
		k[i] = (uint8_t)(i * 7 + 3);
	k[0x1f1] = BZ_SETUP_SECTS;
	k[0x200] = 0xeb;
	k[0x201] = BZ_HDR_END - 0x202;
	memcpy(k + 0x202, "HdrS", 4);
	k[0x206] = 0x0f; k[0x207] = 0x02;            /* protocol 2.15 */
	k[0x236] = 0x7f;                              /* xloadflags incl. KERNEL_64 */
	memset(k + 0x248, 0, 4); k[0x249] = BZ_PAYLOAD_OFF >> 8;
	memset(k + 0x258, 0, 8); k[0x25a] = 0x00; k[0x25b] = 0x01;   /* 0x1000000 */
	memset(k + 0x260, 0, 4); k[0x262] = 0x02;                    /* 0x20000 */
	k[(BZ_SETUP_SECTS + 1) * 512 + BZ_PAYLOAD_OFF] = 0x1f;       /* gzip */
	k[(BZ_SETUP_SECTS + 1) * 512 + BZ_PAYLOAD_OFF + 1] = 0x8b;
	return k;
}
