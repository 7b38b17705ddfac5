/* x86 Linux boot of a non-root cell: what `jailhouse cell linux` computes.
 *
 * Layout (guest-physical addresses of the cell; docs/cellmgr.md, and
 * Jailhouse's tools/jailhouse-cell-linux):
 *   0x0000  linux-loader.bin (loaded FIRST: its zero-filled .cmdline area
 *           0x1000-0x3fff would otherwise overwrite the parameters)
 *   0x1000  parameter blob: zero page (4 KiB), setup_data node (300 bytes)
 *           at 0x2000, command line + NUL at 0x212c; must end by 0x4000
 *   kernel  whole bzImage at pref_address - (setup_sects + 1) * 512, so the
 *           protected-mode code lands at pref_address
 *   initrd  page_align(kernel + factor * bzImage size), factor from the
 *           payload compression (or -k)
 * The blob is byte-compatible with the upstream tool's `-w` output.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cellmgr/cellcfg.h"
#include "cellmgr/err.h"
#include "cellmgr/hw.h"
#include "cellmgr/report.h"

#define CM_X86_LOADER_ADDR   0x0ull
#define CM_X86_PARAMS_ADDR   0x1000ull
#define CM_X86_PARAMS_END    0x4000ull   /* loader .text starts here */
#define CM_X86_SETUP_DATA_LEN 300u       /* 16-byte header + 284 payload */
#define CM_X86_COMM_REGION   0x100000ull
#define CM_X86_E820_MAX      128u

struct cm_x86_kernel {
	unsigned setup_sects;      /* effective (0 means 4) */
	unsigned header_end;       /* 0x202 + byte at 0x201 */
	uint16_t version;          /* boot protocol version */
	uint8_t xloadflags;
	uint32_t payload_offset;
	uint32_t init_size;
	uint64_t pref_address;
	const char *compression;   /* "gzip", "xz", ... */
	unsigned factor;           /* initrd distance factor from compression */
};

/* Validate a bzImage header: size, "HdrS", protocol >= 2.10, 64-bit entry,
 * header end inside the file and below the e820 table (0x2d0). */
int cm_x86_kernel_parse(const uint8_t *k, size_t len, struct cm_x86_kernel *out,
			struct cm_err *err);

struct cm_x86_boot_opts {
	const uint8_t *kernel;
	size_t kernel_len;
	bool has_initrd;
	uint64_t initrd_len;
	const char *cmdline;       /* NULL: empty */
	unsigned decomp_factor;    /* 0: derive from the payload */
	const char *kernel_name;   /* for messages about the kernel file; NULL: "kernel" */
};

struct cm_x86_boot {
	struct cm_x86_kernel k;
	uint64_t kernel_addr;
	uint64_t initrd_addr;      /* 0 without initrd */
	unsigned factor;
	unsigned e820_entries;
	uint8_t *params;           /* malloc'ed blob to load at CM_X86_PARAMS_ADDR */
	size_t params_len;
};

/* Compute the layout and the parameter blob for the cell.  Hard problems
 * (cpu_reset_address != 0, no comm region at 0x100000, blob too large) are
 * errors (-EINVAL with err set); doubtful placements go to rep as
 * warnings.  Errors that are the kernel file's fault start with
 * o->kernel_name, others do not.  The caller checks that the images fit
 * (cm_images_fit()). */
int cm_x86_boot_build(const struct cm_config *cell, const struct cm_x86_boot_opts *o,
		      struct cm_x86_boot *b, struct cm_report *rep, struct cm_err *err);
void cm_x86_boot_free(struct cm_x86_boot *b);

/* Each non-empty image must lie inside one LOADABLE+WRITE region of the
 * cell (guest addresses), as JAILHOUSE_CELL_LOAD demands; otherwise
 * -EINVAL with err naming the image and the region it misses. */
int cm_images_fit(const struct cm_cell *cell, const struct cm_load_image *imgs,
		  unsigned n, struct cm_err *err);
