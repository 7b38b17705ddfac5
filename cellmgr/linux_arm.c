/* ARM Linux boot layout and device tree.  See linux_arm.h.  The
 * placement follows upstream's ARMCommon.setup() step by step (the same in
 * v0.12, AGL's 63000120 and master); the comments name each step. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cellmgr/dtb.h"
#include "cellmgr/linux_arm.h"

#define PAGE 0x1000ull

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

struct span {
	const char *what;
	uint64_t start, len;
};

/* No two images may overlap: a later one would overwrite an earlier one
 * (the loader and its parameter string excepted: that is the point). */
static int check_disjoint(const struct span *s, unsigned n, struct cm_err *err)
{
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = i + 1; j < n; j++) {
			if (!s[i].len || !s[j].len || (i == 0 && j == 1))
				continue;
			if (s[i].start < s[j].start + s[j].len && s[j].start < s[i].start + s[i].len) {
				cm_err_set(err, "%s (0x%" PRIx64 "-0x%" PRIx64 ") overlaps %s (0x%" PRIx64
					   "-0x%" PRIx64 ")", s[i].what, s[i].start, s[i].start + s[i].len - 1,
					   s[j].what, s[j].start, s[j].start + s[j].len - 1);
				return -EINVAL;
			}
		}
	return 0;
}

/* The first RAM region of at least need bytes (upstream: "No space found
 * to load all images" otherwise). */
static int pick_region(const struct cm_cell *c, uint64_t need, uint32_t *idx, struct cm_err *err)
{
	uint64_t best = 0;
	int largest = -1;

	for (uint32_t i = 0; i < c->num_mem; i++) {
		if (!cm_mem_is_ram(&c->mem[i]))
			continue;
		if (c->mem[i].size >= need) {
			*idx = i;
			return 0;
		}
		if (c->mem[i].size > best) {
			best = c->mem[i].size;
			largest = (int)i;
		}
	}
	if (largest < 0)
		cm_err_set(err, "cell \"%s\" has no RAM region (flags R W X DMA, not IO, COMM or "
			   "ROOTSHARED) for the kernel, device tree and initrd", c->name);
	else
		cm_err_set(err, "no RAM region of cell \"%s\" can hold the images: they need 0x%" PRIx64
			   " bytes, the largest RAM region (#%d) has 0x%" PRIx64, c->name, need, largest, best);
	cm_err_hint(err, "use a smaller kernel or initrd, a smaller -k, or a larger RAM region "
		    "(the estimate is upstream's: kernel with its growth room, DTB and 2 pages)");
	return -EINVAL;
}

/* RAM for /memory: all RAM regions but a small one at 0 that holds the
 * loader (upstream: virt_start > 0 or size > 0x10000). */
static int ram_ranges(const struct cm_cell *c, struct cm_dtb_range **out, unsigned *n)
{
	*n = 0;
	*out = calloc(c->num_mem ? c->num_mem : 1, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->num_mem; i++) {
		const struct cm_mem *m = &c->mem[i];

		if (cm_mem_is_ram(m) && (m->virt > 0 || m->size > 0x10000))
			(*out)[(*n)++] = (struct cm_dtb_range){ m->virt, m->size };
	}
	return 0;
}

/* The kernel's own footprint (image_size, BSS included) must stay in its
 * region and clear of the initrd; upstream looks at the file size only. */
static int check_kernel_room(const struct cm_cell *c, const struct cm_arm_boot *b,
			     const char *kname, struct cm_err *err)
{
	const struct cm_mem *m = &c->mem[b->region];
	uint64_t end = b->kernel_addr + b->k.image_size;

	if (!b->k.image_size)
		return 0;
	if (end > m->virt + m->size) {
		cm_err_set(err, "%s needs 0x%" PRIx64 " bytes at 0x%" PRIx64 " (image_size), past the "
			   "end of memory region #%u (0x%" PRIx64 ")", kname, b->k.image_size,
			   b->kernel_addr, b->region, m->virt + m->size);
		return -EINVAL;
	}
	if (b->initrd_addr && b->initrd_addr < end) {
		cm_err_set(err, "initrd at 0x%" PRIx64 " lies inside the kernel's image_size (it ends at "
			   "0x%" PRIx64 "): the kernel would clear it", b->initrd_addr, end);
		cm_err_hint(err, "raise -k");
		return -EINVAL;
	}
	return 0;
}

int cm_arm_boot_build(const struct cm_config *cfg, const struct cm_arm_boot_opts *o,
		      struct cm_arm_boot *b, struct cm_report *rep, struct cm_err *err)
{
	const struct cm_cell *c = &cfg->cell;
	const char *kname = o->kernel_name ? o->kernel_name : "kernel";
	const char *dname = o->dtb_name ? o->dtb_name : "device tree";
	bool aarch32 = cm_arm_cell_aarch32(cfg);
	uint64_t align = aarch32 ? CM_ARM_ALIGN : CM_ARM64_ALIGN;
	uint64_t kernel_size, image_size, factor;
	struct cm_dtb_patch dp = { 0 };
	struct cm_dtb_range *ram = NULL;
	size_t cmd_len = o->cmdline ? strlen(o->cmdline) : 0;
	int ret;

	memset(b, 0, sizeof(*b));
	if (cfg->kind != CM_CFG_CELL) {
		cm_err_set(err, "\"%s\" is a system configuration, Linux boots in a non-root cell", c->name);
		return -EINVAL;
	}
	if (!o->dtb) {
		cm_err_set(err, "Linux on %s needs a device tree: pass -d DTB", cm_arch_name(cfg->arch));
		cm_err_hint(err, "upstream's inmate device trees are configs/%s/dts/inmate-*.dts",
			    cfg->arch == CM_ARCH_ARM ? "arm" : "arm64");
		return -EINVAL;
	}
	ret = cm_arm_kernel_parse(o->kernel, o->kernel_len, aarch32, kname, &b->k, err);
	if (ret < 0)
		return ret;

	/* image_size = text_offset + page_align(kernel) + alignment */
	kernel_size = align_up(o->kernel_len, PAGE);
	image_size = b->k.text_offset + kernel_size + align;
	if (o->has_initrd) {
		/* room between kernel and initrd: factor x kernel size */
		factor = o->decomp_factor ? o->decomp_factor : aarch32 ? 4 : 1;
		image_size += factor * kernel_size;
		kernel_size += factor * kernel_size;
	}
	/* dtb_size = page_align(DTB file) + one page; plus 2 pages for a loader */
	b->dtb_space = align_up(o->dtb_len, PAGE) + PAGE;
	image_size += b->dtb_space + 0x2000;
	ret = pick_region(c, image_size, &b->region, err);
	if (ret < 0)
		return ret;

	/* dtb at the region start, 0x2000 further if that is 0; the kernel at
	 * the next alignment boundary above it plus text_offset; the initrd
	 * after the kernel and its room */
	b->dtb_addr = c->mem[b->region].virt;
	if (!b->dtb_addr)
		b->dtb_addr += 0x2000;
	b->kernel_addr = align_up(b->dtb_addr + b->dtb_space, align) + b->k.text_offset;
	b->initrd_addr = o->has_initrd ? b->kernel_addr + kernel_size : 0;
	b->loader_addr = c->cpu_reset_address;
	b->params_addr = c->cpu_reset_address + CM_ARM_PARAMS_OFFSET;
	b->params_len = (size_t)snprintf(b->params, sizeof(b->params), "kernel=0x%" PRIx64 " dtb=0x%" PRIx64,
					 b->kernel_addr, b->dtb_addr);

	ret = check_kernel_room(c, b, kname, err);
	if (ret < 0)
		return ret;
	if (cmd_len > (aarch32 ? 1023u : 2047u))
		cm_report_add(rep, CM_SEV_WARN, "kernel command line is %zu bytes; %s Linux keeps only %u",
			      cmd_len, aarch32 ? "32-bit ARM" : "arm64", aarch32 ? 1023u : 2047u);

	ret = ram_ranges(c, &ram, &dp.nmem);
	if (ret < 0)
		return ret;
	dp.mem = ram;
	dp.bootargs = o->cmdline;
	dp.has_initrd = o->has_initrd;
	dp.initrd_start = b->initrd_addr;
	dp.initrd_end = b->initrd_addr + o->initrd_len;   /* the file size, as upstream */
	ret = cm_dtb_patch(o->dtb, o->dtb_len, dname, &dp, &b->dtb, &b->dtb_len, rep, err);
	free(ram);
	if (ret < 0)
		return ret;
	if (b->dtb_len > CM_ARM_DTB_MAX) {
		cm_err_set(err, "%s: the patched device tree is %zu bytes; Linux takes at most 2 MiB",
			   dname, b->dtb_len);
		ret = -EINVAL;
		goto fail;
	}
	{
		struct span s[] = {
			{ "the loader", b->loader_addr, o->loader_len },
			{ "the loader parameters", b->params_addr, b->params_len },
			{ "the kernel", b->kernel_addr, o->kernel_len > b->k.image_size ? o->kernel_len :
			  b->k.image_size },
			{ "the initrd", b->initrd_addr, o->has_initrd ? o->initrd_len : 0 },
			{ "the device tree", b->dtb_addr, b->dtb_len },
		};

		ret = check_disjoint(s, sizeof(s) / sizeof(s[0]), err);
		if (ret < 0)
			goto fail;
	}
	return 0;
fail:
	cm_arm_boot_free(b);
	return ret;
}

void cm_arm_boot_free(struct cm_arm_boot *b)
{
	free(b->dtb);
	b->dtb = NULL;
	b->dtb_len = 0;
}
