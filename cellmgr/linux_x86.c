/* x86 Linux boot layout and parameter blob.  See linux_x86.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/le.h"
#include "cellmgr/linux_x86.h"

#define PAGE 0x1000ull

/* Boot-protocol setup header offsets (Documentation/x86/boot.rst). */
#define HDR_BASE          0x1f0u   /* upstream copies from here */
#define HDR_SETUP_SECTS   0x1f1u
#define HDR_JUMP          0x200u
#define HDR_MAGIC         0x202u
#define HDR_VERSION       0x206u
#define HDR_TYPE_OF_LOADER 0x210u
#define HDR_RAMDISK_IMAGE 0x218u
#define HDR_RAMDISK_SIZE  0x21cu
#define HDR_CMD_LINE_PTR  0x228u
#define HDR_KERNEL_ALIGN  0x230u
#define HDR_XLOADFLAGS    0x236u
#define HDR_PAYLOAD_OFF   0x248u
#define HDR_SETUP_DATA    0x250u
#define HDR_PREF_ADDRESS  0x258u
#define HDR_INIT_SIZE     0x260u
#define HDR_MIN_END       0x264u   /* through init_size (protocol 2.10) */
#define ZP_E820_ENTRIES   0x1e8u
#define ZP_E820_TABLE     0x2d0u
#define E820_ENTRY_SIZE   20u
#define E820_RAM          1u
#define E820_RESERVED     2u
#define XLF_KERNEL_64     0x1u

#define SETUP_TYPE_JAILHOUSE 6u
#define SETUP_JH_PAYLOAD_LEN 284u  /* v1 + v2 of struct jailhouse_setup_data */
#define SETUP_JH_VERSION     2u
#define SETUP_JH_COMPAT      1u
#define ZP_SIZE              0x1000u
#define SETUP_DATA_OFF       ZP_SIZE                       /* in the blob */
#define CMDLINE_OFF          (ZP_SIZE + CM_X86_SETUP_DATA_LEN)

static uint64_t page_align(uint64_t v)
{
	return (v + PAGE - 1) & ~(PAGE - 1);
}

/* Initrd distance factors by payload compression, as upstream: the kernel
 * decompresses in place and must not run over the initrd. */
static void detect_compression(const uint8_t *k, size_t len, size_t off,
			       const char **name, unsigned *factor)
{
	*name = "unknown";
	*factor = 9;
	if (off > len || len - off < 4)
		return;
	const uint8_t *m = k + off;
	if (m[0] == 0x1f && (m[1] == 0x8b || m[1] == 0x9e)) {
		*name = "gzip"; *factor = 7;
	} else if (m[0] == 0x42 && m[1] == 0x5a) {
		*name = "bzip2"; *factor = 4;
	} else if (m[0] == 0x5d && m[1] == 0x00) {
		*name = "lzma"; *factor = 8;
	} else if (m[0] == 0xfd && m[1] == 0x37) {
		*name = "xz";
	} else if (m[0] == 0x02 && m[1] == 0x21) {
		*name = "lz4"; *factor = 6;
	} else if (m[0] == 0x89 && m[1] == 0x4c) {
		*name = "lzo"; *factor = 6;
	} else if (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) {
		*name = "zstd";
	} else if (m[0] == 0x7f && m[1] == 'E' && m[2] == 'L' && m[3] == 'F') {
		*name = "uncompressed";
	}
}

int cm_x86_kernel_parse(const uint8_t *k, size_t len, struct cm_x86_kernel *out,
			struct cm_err *err)
{
	memset(out, 0, sizeof(*out));
	if (len < HDR_MIN_END) {
		cm_err_set(err, "kernel image is %zu bytes, too small for an x86 bzImage header", len);
		return -EINVAL;
	}
	if (memcmp(k + HDR_MAGIC, "HdrS", 4)) {
		cm_err_set(err, "kernel image has no \"HdrS\" boot header: not an x86 bzImage");
		cm_err_hint(err, "pass arch/x86/boot/bzImage, not vmlinux or an arm64 Image");
		return -EINVAL;
	}
	out->version = le16(k, HDR_VERSION);
	if (out->version < 0x020a) {
		cm_err_set(err, "kernel boot protocol %u.%02u is older than 2.10 (no pref_address/init_size)",
			   out->version >> 8, out->version & 0xff);
		return -EINVAL;
	}
	out->setup_sects = le8(k, HDR_SETUP_SECTS);
	if (!out->setup_sects)
		out->setup_sects = 4;   /* boot protocol: 0 means 4 */
	out->header_end = 0x202u + le8(k, HDR_JUMP + 1);
	if (out->header_end < HDR_MIN_END || out->header_end > ZP_E820_TABLE ||
	    out->header_end > len) {
		cm_err_set(err, "kernel setup header ends at 0x%x, outside 0x%x..0x%x",
			   out->header_end, HDR_MIN_END, ZP_E820_TABLE);
		return -EINVAL;
	}
	out->xloadflags = out->version >= 0x020c ? le8(k, HDR_XLOADFLAGS) : 0;
	if (out->version >= 0x020c && !(out->xloadflags & XLF_KERNEL_64)) {
		cm_err_set(err, "kernel has no 64-bit entry point (XLF_KERNEL_64 clear)");
		cm_err_hint(err, "the Jailhouse loader enters the kernel in 64-bit mode; build an x86_64 kernel");
		return -EINVAL;
	}
	out->payload_offset = le32(k, HDR_PAYLOAD_OFF);
	out->pref_address = le64(k, HDR_PREF_ADDRESS);
	out->init_size = le32(k, HDR_INIT_SIZE);
	detect_compression(k, len, (size_t)(out->setup_sects + 1) * 512 + out->payload_offset,
			   &out->compression, &out->factor);
	return 0;
}

static const struct cm_mem *region_containing(const struct cm_cell *c, uint64_t addr,
					      uint32_t *idx)
{
	for (uint32_t i = 0; i < c->num_mem; i++) {
		const struct cm_mem *m = &c->mem[i];

		if (m->size && addr >= m->virt && addr - m->virt < m->size) {
			if (idx)
				*idx = i;
			return m;
		}
	}
	return NULL;
}

int cm_images_fit(const struct cm_cell *c, const struct cm_load_image *imgs,
		  unsigned n, struct cm_err *err)
{
	for (unsigned i = 0; i < n; i++) {
		const struct cm_load_image *im = &imgs[i];
		const struct cm_mem *m = NULL;
		uint32_t idx = 0;

		if (!im->size)
			continue;
		/* Prefer a loadable region if regions overlap in guest space. */
		for (uint32_t r = 0; r < c->num_mem; r++) {
			const struct cm_mem *x = &c->mem[r];

			if (x->size && im->addr >= x->virt && im->addr - x->virt < x->size &&
			    (!m || cm_mem_is_loadable(x))) {
				m = x;
				idx = r;
			}
		}
		if (!m) {
			cm_err_set(err, "%s (0x%" PRIx64 " bytes) at guest address 0x%" PRIx64
				   " is not inside any memory region of cell \"%s\"",
				   im->label, im->size, im->addr, c->name);
			cm_err_hint(err, "see `jailhouse-cellmgr config show` for the loadable regions");
			return -EINVAL;
		}
		if (!cm_mem_is_loadable(m)) {
			cm_err_set(err, "%s at guest address 0x%" PRIx64 " lands in memory region #%u "
				   "(virt 0x%" PRIx64 "-0x%" PRIx64 "), which is not LOADABLE and WRITE",
				   im->label, im->addr, idx, m->virt, m->virt + m->size - 1);
			return -EINVAL;
		}
		if (im->size > m->size - (im->addr - m->virt)) {
			cm_err_set(err, "%s (0x%" PRIx64 " bytes at 0x%" PRIx64 ") does not fit into "
				   "memory region #%u (virt 0x%" PRIx64 "-0x%" PRIx64 "): it would end at 0x%"
				   PRIx64 ", 0x%" PRIx64 " bytes past the region",
				   im->label, im->size, im->addr, idx, m->virt,
				   m->virt + m->size - 1, im->addr + im->size - 1,
				   im->addr + im->size - (m->virt + m->size));
			cm_err_hint(err, "use a smaller image or enlarge the region in the cell config");
			return -EINVAL;
		}
	}
	return 0;
}

static void put_e820(uint8_t *zp, unsigned i, const struct cm_mem *m, unsigned type)
{
	size_t off = ZP_E820_TABLE + (size_t)i * E820_ENTRY_SIZE;

	put_le64(zp, off, m->virt);
	put_le64(zp, off + 8, m->size);
	put_le32(zp, off + 16, type);
}

int cm_x86_boot_build(const struct cm_config *cfg, const struct cm_x86_boot_opts *o,
		      struct cm_x86_boot *b, struct cm_report *rep, struct cm_err *err)
{
	const struct cm_cell *c = &cfg->cell;
	const char *cmdline = o->cmdline ? o->cmdline : "";
	const char *kname = o->kernel_name ? o->kernel_name : "kernel";
	size_t cmd_len = strlen(cmdline);
	uint64_t prot_off, kend;
	uint8_t *p, *sd;
	unsigned ioapic = 0, uarts = 0;
	int ret;

	memset(b, 0, sizeof(*b));
	if (cfg->kind != CM_CFG_CELL) {
		cm_err_set(err, "\"%s\" is a system configuration, Linux boots in a non-root cell", c->name);
		return -EINVAL;
	}
	if (c->cpu_reset_address != 0) {
		cm_err_set(err, "cell \"%s\" has cpu_reset_address 0x%" PRIx64 "; x86 Linux cells need 0",
			   c->name, c->cpu_reset_address);
		cm_err_hint(err, "the boot CPU starts the loader in real mode at the reset address");
		return -EINVAL;
	}
	{
		const struct cm_mem *cm = region_containing(c, CM_X86_COMM_REGION, NULL);

		if (!cm || !(cm->flags & CM_MEM_COMM_REGION) || cm->virt != CM_X86_COMM_REGION) {
			cm_err_set(err, "cell \"%s\" has no comm region at guest address 0x100000",
				   c->name);
			cm_err_hint(err, "the x86 Linux loader reads CPU count and timer data from the comm region there");
			return -EINVAL;
		}
	}
	ret = cm_x86_kernel_parse(o->kernel, o->kernel_len, &b->k, err);
	if (ret < 0) {
		cm_err_prefix(err, kname);
		return ret;
	}

	prot_off = (uint64_t)(b->k.setup_sects + 1) * 512;
	if (b->k.pref_address < prot_off + CM_X86_PARAMS_END) {
		cm_err_set(err, "%s: kernel pref_address 0x%" PRIx64 " is too low: the image would "
			   "overlap the loader and parameters below 0x4000", kname, b->k.pref_address);
		return -EINVAL;
	}
	b->kernel_addr = b->k.pref_address - prot_off;
	b->factor = o->decomp_factor ? o->decomp_factor : b->k.factor;
	if (o->has_initrd) {
		uint64_t dist = (uint64_t)b->factor * o->kernel_len;

		if (o->initrd_len > UINT32_MAX) {
			cm_err_set(err, "initrd is %" PRIu64 " bytes; the boot protocol field is 32 bits",
				   o->initrd_len);
			return -EFBIG;
		}
		b->initrd_addr = page_align(b->kernel_addr + dist);
		if (b->initrd_addr + o->initrd_len > UINT32_MAX) {
			cm_err_set(err, "initrd would end at 0x%" PRIx64 ", above 4 GiB; the boot protocol "
				   "cannot express that", b->initrd_addr + o->initrd_len);
			return -EINVAL;
		}
		/* The kernel decompresses up to pref_address + init_size. */
		kend = b->k.pref_address + b->k.init_size;
		if (b->initrd_addr < kend)
			cm_report_add(rep, CM_SEV_WARN,
				      "initrd at 0x%" PRIx64 " lies below the end of the kernel's "
				      "decompression area (0x%" PRIx64 "); raise -k (now %u)",
				      b->initrd_addr, kend, b->factor);
	}
	if (cmd_len > (CM_X86_PARAMS_END - CM_X86_PARAMS_ADDR) - CMDLINE_OFF - 1) {
		cm_err_set(err, "the kernel command line (-c) is %zu bytes; at most %llu fit before the "
			   "loader code at 0x4000", cmd_len,
			   (unsigned long long)((CM_X86_PARAMS_END - CM_X86_PARAMS_ADDR) - CMDLINE_OFF - 1));
		cm_err_hint(err, "shorten the command line; x86 Linux keeps only 2047 bytes of it anyway");
		return -E2BIG;
	}
	if (cmd_len > 2047)
		cm_report_add(rep, CM_SEV_WARN, "kernel command line is %zu bytes; x86 Linux keeps only 2047",
			      cmd_len);
	{
		uint32_t idx;
		const struct cm_mem *m = region_containing(c, b->k.pref_address, &idx);
		uint64_t need = b->k.init_size;

		if (!m || !cm_mem_is_ram(m) || need > m->size - (b->k.pref_address - m->virt))
			cm_report_add(rep, CM_SEV_WARN,
				      "kernel decompression area 0x%" PRIx64 "+0x%" PRIx64 " (init_size) is not "
				      "inside one RAM region of the cell", b->k.pref_address, need);
	}

	b->params_len = CMDLINE_OFF + cmd_len + 1;
	p = calloc(1, b->params_len);
	if (!p)
		return -ENOMEM;
	b->params = p;

	/* Zero page: setup header copied verbatim from the image, then patched. */
	memcpy(p + HDR_BASE, o->kernel + HDR_BASE, b->k.header_end - HDR_BASE);
	put_le8(p, HDR_TYPE_OF_LOADER, 0xff);
	put_le32(p, HDR_RAMDISK_IMAGE, (uint32_t)b->initrd_addr);
	put_le32(p, HDR_RAMDISK_SIZE, o->has_initrd ? (uint32_t)o->initrd_len : 0);
	put_le32(p, HDR_CMD_LINE_PTR, (uint32_t)(CM_X86_PARAMS_ADDR + CMDLINE_OFF));
	/* Upstream stores pref_address as 8 bytes into kernel_alignment: the
	 * Jailhouse loader reads it as the kernel base; this also clears
	 * relocatable_kernel, min_alignment and xloadflags.  Kept for parity. */
	put_le64(p, HDR_KERNEL_ALIGN, b->k.pref_address);
	put_le64(p, HDR_SETUP_DATA, CM_X86_PARAMS_ADDR + SETUP_DATA_OFF);

	for (uint32_t i = 0; i < c->num_mem; i++) {
		const struct cm_mem *m = &c->mem[i];
		bool ram = cm_mem_is_ram(m);

		if (!ram && !(m->flags & CM_MEM_COMM_REGION))
			continue;
		if (b->e820_entries >= CM_X86_E820_MAX) {
			cm_err_set(err, "cell \"%s\" has more than %u RAM/comm regions for the e820 table",
				   c->name, CM_X86_E820_MAX);
			cm_x86_boot_free(b);
			return -E2BIG;
		}
		put_e820(p, b->e820_entries++, m, ram ? E820_RAM : E820_RESERVED);
	}
	put_le8(p, ZP_E820_ENTRIES, (uint8_t)b->e820_entries);

	/* setup_data node with struct jailhouse_setup_data (v2): run-time
	 * fields stay 0, the loader fills them from the comm region. */
	for (uint32_t i = 0; i < c->num_irqchips; i++)
		if (c->irqchips[i].address == 0xfec00000ull)
			ioapic = 1;
	for (uint32_t i = 0; i < c->num_pio; i++) {
		static const uint16_t uart[4] = { 0x3f8, 0x2f8, 0x3e8, 0x2e8 };

		for (unsigned u = 0; u < 4; u++)
			if (c->pio[i].base == uart[u] && c->pio[i].length == 8)
				uarts |= 1u << u;
	}
	sd = p + SETUP_DATA_OFF;
	put_le64(sd, 0, 0);                       /* next */
	put_le32(sd, 8, SETUP_TYPE_JAILHOUSE);
	put_le32(sd, 12, SETUP_JH_PAYLOAD_LEN);
	put_le16(sd, 16 + 0, SETUP_JH_VERSION);
	put_le16(sd, 16 + 2, SETUP_JH_COMPAT);
	put_le8(sd, 16 + 24, (uint8_t)ioapic);   /* standard_ioapic */
	put_le32(sd, 16 + 280, uarts);            /* v2 flags: UARTs the cell may use */

	memcpy(p + CMDLINE_OFF, cmdline, cmd_len);   /* NUL from calloc */
	return 0;
}

void cm_x86_boot_free(struct cm_x86_boot *b)
{
	free(b->params);
	b->params = NULL;
	b->params_len = 0;
}
