/* Linux boot of a non-root cell: read the files, compute the layout for the
 * cell's architecture, check every image against the cell's loadable
 * memory, then create/load/start.  See cellmgr.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cellmgr/cellmgr.h"

static void add_image(struct cm_linux_plan *pl, const char *label, const void *data, uint64_t size,
		      uint64_t addr, const char *file, bool is_string)
{
	pl->imgs[pl->n] = (struct cm_load_image){ label, data, size, addr };
	pl->files[pl->n] = file;
	pl->is_string[pl->n] = is_string;
	pl->n++;
}

static int read_files(const struct cm_config *cell, const struct cm_linux_opts *o, bool need_loader,
		      struct cm_linux_plan *pl, struct cm_err *err)
{
	const char *loader = o->loader_path ? o->loader_path : CM_DEFAULT_LOADER;
	int ret;

	ret = cm_read_file(o->kernel_path, CM_IMAGE_MAX, &pl->kernel, &pl->kernel_len, err);
	if (ret == 0 && o->initrd_path)
		ret = cm_read_file(o->initrd_path, CM_IMAGE_MAX, &pl->initrd, &pl->initrd_len, err);
	if (ret == 0 && o->dtb_path)
		ret = cm_read_file(o->dtb_path, 64u << 20, &pl->dtb, &pl->dtb_len, err);
	if (ret == 0 && need_loader) {
		ret = cm_read_file(loader, 16u << 20, &pl->loader, &pl->loader_len, err);
		if (ret < 0)
			cm_err_hint(err, "pass the Jailhouse %s linux-loader.bin with --loader",
				    cell->arch == CM_ARCH_X86 ? "x86" : cm_arm_cell_aarch32(cell) ?
				    "32-bit ARM (inmates/tools/arm)" : "arm64");
	}
	return ret;
}

static int plan_x86(const struct cm_config *cell, const struct cm_linux_opts *o,
		    struct cm_linux_plan *pl, struct cm_report *rep, struct cm_err *err)
{
	const char *loader = o->loader_path ? o->loader_path : CM_DEFAULT_LOADER;
	struct cm_x86_boot_opts bo = {
		.kernel = pl->kernel, .kernel_len = pl->kernel_len, .has_initrd = o->initrd_path != NULL,
		.initrd_len = pl->initrd_len, .cmdline = o->cmdline, .decomp_factor = o->decomp_factor,
		.kernel_name = o->kernel_path,
	};
	int ret;

	if (o->dtb_path) {
		cm_err_set(err, "-d is for ARM cells; x86 Linux takes no device tree");
		return -EINVAL;
	}
	ret = cm_x86_boot_build(cell, &bo, &pl->boot, rep, err);
	if (ret < 0)
		return ret;
	/* Load order matters: the loader's zero-filled .cmdline section
	 * covers 0x1000-0x3fff and must not overwrite the parameters. */
	add_image(pl, "linux loader", pl->loader, pl->loader ? pl->loader_len : 1, CM_X86_LOADER_ADDR,
		  loader, false);
	add_image(pl, "kernel", pl->kernel, pl->kernel_len, pl->boot.kernel_addr, o->kernel_path, false);
	if (o->initrd_path)
		add_image(pl, "initrd", pl->initrd, pl->initrd_len, pl->boot.initrd_addr, o->initrd_path,
			  false);
	pl->out = pl->n;
	add_image(pl, "boot parameters", pl->boot.params, pl->boot.params_len, CM_X86_PARAMS_ADDR,
		  NULL, false);
	return 0;
}

static int plan_arm(const struct cm_config *cell, const struct cm_linux_opts *o, bool need_loader,
		    struct cm_linux_plan *pl, struct cm_report *rep, struct cm_err *err)
{
	const char *loader = o->loader_path ? o->loader_path : CM_DEFAULT_LOADER;
	struct cm_arm_boot *b = &pl->arm_boot;
	struct cm_arm_boot_opts bo = {
		.kernel = pl->kernel, .kernel_len = pl->kernel_len, .kernel_name = o->kernel_path,
		.dtb = pl->dtb, .dtb_len = pl->dtb_len, .dtb_name = o->dtb_path,
		.has_initrd = o->initrd_path != NULL, .initrd_len = pl->initrd_len,
		.cmdline = o->cmdline, .decomp_factor = o->decomp_factor, .loader_len = pl->loader_len,
	};
	int ret;

	pl->arm = true;
	ret = cm_arm_boot_build(cell, &bo, b, rep, err);
	if (ret < 0)
		return ret;
	/* The order of upstream's printed load command: the loader first,
	 * then its parameter string, which lands in the loader's buffer. */
	add_image(pl, "linux loader", pl->loader, pl->loader ? pl->loader_len : 1, b->loader_addr,
		  loader, false);
	add_image(pl, "loader parameters", b->params, b->params_len, b->params_addr, NULL, true);
	add_image(pl, "kernel", pl->kernel, pl->kernel_len, b->kernel_addr, o->kernel_path, false);
	if (o->initrd_path)
		add_image(pl, "initrd", pl->initrd, pl->initrd_len, b->initrd_addr, o->initrd_path, false);
	pl->out = pl->n;
	add_image(pl, "device tree", b->dtb, b->dtb_len, b->dtb_addr, NULL, false);
	return 0;
}

int cm_linux_plan(const struct cm_config *cell, const struct cm_linux_opts *o,
		  bool need_loader, struct cm_linux_plan *pl, struct cm_report *rep,
		  struct cm_err *err)
{
	int ret;

	memset(pl, 0, sizeof(*pl));
	/* Here it is known what runs in the cell. */
	if (!(cell->cell.flags & CM_CELL_PASSIVE_COMMREG))
		cm_report_add(rep, CM_SEV_WARN,
			      "cell \"%s\" boots Linux, which never answers through the comm region, but its "
			      "config does not set PASSIVE_COMMREG: shutting it down or destroying it, and "
			      "creating or destroying any other cell while it runs, %s", cell->cell.name,
			      cell->cell.msg_reply_timeout ? "waits for msg_reply_timeout and then marks it failed" :
			      "will hang (msg_reply_timeout 0 waits forever)");
	if (cell->arch != CM_ARCH_X86 && cell->arch != CM_ARCH_ARM && cell->arch != CM_ARCH_ARM64) {
		cm_err_set(err, "cell \"%s\": unknown architecture", cell->cell.name);
		cm_err_hint(err, "pass --arch for configs before revision 14");
		return -EINVAL;
	}
	/* The default loader is the one of the installed Jailhouse: on an
	 * arm64 system the arm64 loader, which cannot start AArch32 code. */
	if (need_loader && !o->loader_path && cell->arch == CM_ARCH_ARM64 && cm_arm_cell_aarch32(cell)) {
		cm_err_set(err, "cell \"%s\" runs 32-bit ARM (AARCH32): it needs the 32-bit ARM "
			   "linux-loader.bin, not the default %s", cell->cell.name, CM_DEFAULT_LOADER);
		cm_err_hint(err, "build inmates/tools/arm/linux-loader.bin and pass it with -l");
		return -EINVAL;
	}
	ret = read_files(cell, o, need_loader, pl, err);
	if (ret == 0)
		ret = cell->arch == CM_ARCH_X86 ? plan_x86(cell, o, pl, rep, err) :
		      plan_arm(cell, o, need_loader, pl, rep, err);
	if (ret == 0)
		ret = cm_images_fit(&cell->cell, pl->imgs, pl->n, err);
	if (ret < 0)
		goto fail;
	if (!need_loader)
		pl->imgs[0].size = 0;   /* not read: nothing to load */
	/* Overlaps between kernel and initrd would corrupt one of them (ARM:
	 * checked with the kernel's whole footprint in cm_arm_boot_build()). */
	if (!pl->arm && o->initrd_path && pl->boot.initrd_addr < pl->boot.kernel_addr + pl->kernel_len) {
		cm_err_set(err, "initrd at 0x%" PRIx64 " overlaps the kernel image (0x%" PRIx64 "+0x%zx)",
			   pl->boot.initrd_addr, pl->boot.kernel_addr, pl->kernel_len);
		ret = -EINVAL;
		goto fail;
	}
	return 0;
fail:
	cm_linux_plan_free(pl);
	return ret;
}

void cm_linux_plan_free(struct cm_linux_plan *pl)
{
	cm_x86_boot_free(&pl->boot);
	cm_arm_boot_free(&pl->arm_boot);
	free(pl->kernel);
	free(pl->initrd);
	free(pl->loader);
	free(pl->dtb);
	memset(pl, 0, sizeof(*pl));
}

int cm_linux_boot(const struct cm_hw *hw, const struct cm_config *cell,
		  const struct cm_linux_plan *pl, struct cm_report *rep, struct cm_err *err)
{
	struct cm_cell_ref ref = { .id = -1 };
	int id, ret;

	if (!pl->loader) {
		cm_err_set(err, "internal: Linux plan computed without the loader");
		return -EINVAL;
	}
	ret = cm_cell_create(hw, cell, true, &id, rep, err);
	if (ret < 0)
		return ret;
	memcpy(ref.name, cell->cell.name, strnlen(cell->cell.name, sizeof(ref.name) - 1));
	ret = cm_cell_load(hw, &ref, pl->imgs, pl->n, err);
	if (ret < 0)
		return ret;
	return cm_cell_start(hw, &ref, err);
}
