/* ARM Linux boot of a non-root cell: what `jailhouse cell linux` computes
 * for arm64 (class ARM64) and 32-bit ARM (class ARM), same addresses and
 * the same device tree properties.
 *
 * Layout (guest addresses; upstream tools/jailhouse-cell-linux, ARMCommon):
 *   loader   linux-loader.bin at cpu_reset_address
 *   params   the string "kernel=0x... dtb=0x..." at cpu_reset_address +
 *            0x1000, the loader's command-line buffer (256 bytes); loaded
 *            AFTER the loader, whose image has zeros there
 *   dtb      at the start of the first RAM region big enough for all
 *            images (0x2000 into it if it starts at 0, to spare the loader)
 *   kernel   above the DTB at the next 2 MiB (arm64) or 4 KiB (arm)
 *            boundary, plus the Image's text_offset (arm64)
 *   initrd   right after the kernel plus factor x kernel size (factor 1 on
 *            arm64, 4 on arm, or -k), room for the kernel to grow into
 * "RAM" is pyjailhouse's rule: R W X DMA, not IO, COMM or ROOTSHARED.
 *
 * Beyond upstream, the build refuses what would not boot: a compressed or
 * foreign kernel file (with what to pass instead), an Image whose header
 * is broken, a zImage in a cell without AARCH32 (or an Image in one with
 * it), a kernel whose image_size runs into the initrd or out of its
 * region, images that overlap, a DTB over 2 MiB.  Whether each image lies
 * in LOADABLE memory is cm_images_fit()'s job (linux_x86.h).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cellmgr/cellcfg.h"
#include "cellmgr/err.h"
#include "cellmgr/report.h"

#define CM_ARM_PARAMS_OFFSET   0x1000ull     /* from cpu_reset_address */
#define CM_ARM_PARAMS_MAX      255u          /* the loader's buffer holds 256 with NUL */
#define CM_ARM64_ALIGN         0x200000ull
#define CM_ARM_ALIGN           0x1000ull
#define CM_ARM_DTB_MAX         (2u << 20)    /* arm64 MAX_FDT_SIZE */

struct cm_arm_kernel {
	bool aarch32;              /* 32-bit zImage */
	uint64_t text_offset;      /* arm64 header; 0 for a zImage */
	uint64_t image_size;       /* arm64 header; 0: unknown (before Linux 3.17) */
	uint64_t flags;            /* arm64 header */
};

/* Classify and validate a kernel file.  aarch32: the cell runs 32-bit ARM
 * (arm config, or arm64 with the AARCH32 flag): a zImage is expected,
 * else an arm64 Image.  name: the file, for messages. */
int cm_arm_kernel_parse(const uint8_t *k, size_t len, bool aarch32, const char *name,
			struct cm_arm_kernel *out, struct cm_err *err);

/* Does this cell run 32-bit ARM code? */
bool cm_arm_cell_aarch32(const struct cm_config *cfg);

struct cm_arm_boot_opts {
	const uint8_t *kernel;
	size_t kernel_len;
	const char *kernel_name;   /* for messages; NULL: "kernel" */
	const uint8_t *dtb;
	size_t dtb_len;
	const char *dtb_name;      /* for messages; NULL: "device tree" */
	bool has_initrd;
	uint64_t initrd_len;
	const char *cmdline;       /* NULL or "": the tree's own bootargs stay */
	unsigned decomp_factor;    /* 0: 1 on arm64, 4 on arm */
	uint64_t loader_len;       /* 0: not known (-w), not checked */
};

struct cm_arm_boot {
	struct cm_arm_kernel k;
	uint32_t region;           /* the RAM region the images go into */
	uint64_t loader_addr, params_addr, dtb_addr, kernel_addr, initrd_addr;
	uint64_t dtb_space;        /* page_align(DTB file) + 0x1000, as upstream */
	char params[64];           /* "kernel=0x... dtb=0x..." (no NUL loaded) */
	size_t params_len;
	uint8_t *dtb;              /* patched device tree (malloc'ed) */
	size_t dtb_len;
};

/* Compute the layout and patch the device tree.  Errors: -EINVAL (err
 * says what, and names the file when it is the file's fault), -ERANGE,
 * -ENOMEM; doubts go to rep. */
int cm_arm_boot_build(const struct cm_config *cfg, const struct cm_arm_boot_opts *o,
		      struct cm_arm_boot *b, struct cm_report *rep, struct cm_err *err);
void cm_arm_boot_free(struct cm_arm_boot *b);
