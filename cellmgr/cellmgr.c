/* Cell manager operations.  See cellmgr.h. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cellmgr/cellcfg_check.h"
#include "cellmgr/cellmgr.h"
#include "cellmgr/sysfs.h"

static const char *const op_names[] = {
	[CM_OP_ENABLE] = "JAILHOUSE_ENABLE",
	[CM_OP_DISABLE] = "JAILHOUSE_DISABLE",
	[CM_OP_CREATE] = "JAILHOUSE_CELL_CREATE",
	[CM_OP_LOAD] = "JAILHOUSE_CELL_LOAD",
	[CM_OP_START] = "JAILHOUSE_CELL_START",
	[CM_OP_SHUTDOWN] = "JAILHOUSE_CELL_LOAD (shutdown)",
	[CM_OP_DESTROY] = "JAILHOUSE_CELL_DESTROY",
};

/* Errors every op shares: the device node itself. */
static bool explain_common(const struct cm_hw *hw, int ret, struct cm_err *err)
{
	switch (ret) {
	case -ENOENT:
		if (hw->dev_path && access(hw->dev_path, F_OK) < 0) {
			cm_err_hint(err, "%s does not exist: is the jailhouse module loaded (lsmod) and udev running?",
				    hw->dev_path);
			return true;
		}
		return false;
	case -EACCES:
	case -EPERM:
		if (hw->dev_path && access(hw->dev_path, R_OK | W_OK) < 0) {
			cm_err_hint(err, "no permission to open %s: run as root", hw->dev_path);
			return true;
		}
		return false;
	case -ENOTTY:
		cm_err_hint(err, "%s is not the Jailhouse device (a character device is expected)",
			    hw->dev_path ? hw->dev_path : "the device");
		return true;
	default:
		return false;
	}
}

void cm_explain(const struct cm_hw *hw, enum cm_op op, int ret, struct cm_err *err)
{
	if (explain_common(hw, ret, err))
		return;
	switch (op) {
	case CM_OP_ENABLE:
		switch (ret) {
		case -EIO:
			cm_err_hint(err, "the hypervisor failed to start on a CPU: VT-x/AMD-V features are missing, "
				    "typical under nested virtualisation (enable nested VMX, use -cpu host, "
				    "try -cpu ...,-xsaves); details in dmesg and the hypervisor console");
			break;
		case -EINVAL:
			cm_err_hint(err, "the driver rejected the configuration or the memory: check that the config "
				    "revision matches the driver (/sys/module/jailhouse/version), that the hypervisor "
				    "memory is reserved with memmap= on the kernel command line (/proc/cmdline), "
				    "and dmesg");
			break;
		case -ENODEV:
			cm_err_hint(err, "no usable VT-x/SVM (disabled or locked in the BIOS?) or, on ARM, the kernel "
				    "was not booted in HYP mode");
			break;
		case -EBUSY:
			cm_err_hint(err, "Jailhouse is already enabled (see `jailhouse-cellmgr list`)");
			break;
		case -ENOENT:
			cm_err_hint(err, "hypervisor firmware missing: install jailhouse-intel.bin / jailhouse-amd.bin "
				    "(x86) or jailhouse.bin (ARM) into %s",
				    hw->firmware_dir ? hw->firmware_dir : "/lib/firmware");
			break;
		case -ENOMEM:
			cm_err_hint(err, "out of memory; is the hypervisor memory region large enough?");
			break;
		}
		break;
	case CM_OP_DISABLE:
		switch (ret) {
		case -EINVAL:
			cm_err_hint(err, "Jailhouse is not enabled");
			break;
		case -EBUSY:
			cm_err_hint(err, "a root-cell CPU is offline: bring it online "
				    "(/sys/devices/system/cpu/cpuN/online) and retry");
			break;
		case -EPERM:
			cm_err_hint(err, "a cell refused to be destroyed (running/locked); shut it down first");
			break;
		}
		break;
	case CM_OP_CREATE:
		switch (ret) {
		case -E2BIG:
			cm_err_hint(err, "the hypervisor refused the config size or interrupt remapping: the config may "
				    "be larger than the hypervisor's mapping window, the IOAPIC id in the cell's irqchip "
				    "must equal the one in the root config, or VT-d interrupt remapping space is exhausted");
			break;
		case -EEXIST:
			cm_err_hint(err, "a cell with this name exists: destroy it first (`jailhouse-cellmgr list`)");
			break;
		case -EBUSY:
			cm_err_hint(err, "some of the cell's CPUs are not owned by the root cell (used by another cell?), "
				    "or an ivshmem endpoint (bdf, peer id) is taken already");
			break;
		case -EINVAL:
			cm_err_hint(err, "Jailhouse not enabled, wrong config revision/signature, CPU 0 assigned (x86), "
				    "or inconsistent ivshmem settings; see dmesg and `config check`");
			break;
		case -EPERM:
			cm_err_hint(err, "another cell is running in locked state");
			break;
		case -ENOMEM:
			cm_err_hint(err, "the hypervisor ran out of memory; increase hypervisor_memory.size");
			break;
		}
		break;
	case CM_OP_LOAD:
	case CM_OP_START:
	case CM_OP_SHUTDOWN:
	case CM_OP_DESTROY:
		switch (ret) {
		case -ENOENT:
			cm_err_hint(err, "no such cell (see `jailhouse-cellmgr list`)");
			break;
		case -EINVAL:
			cm_err_hint(err, op == CM_OP_LOAD ?
				    "Jailhouse not enabled, the root cell was named, or an image does not fit inside "
				    "one LOADABLE+WRITE region (check with `config show CELL.cell`)" :
				    "Jailhouse is not enabled, or the root cell (id 0) was named");
			break;
		case -EPERM:
			cm_err_hint(err, "the cell refused the request through its comm region, or another cell is "
				    "running locked; Linux cells need JAILHOUSE_CELL_PASSIVE_COMMREG");
			break;
		case -EBUSY:
			cm_err_hint(err, "mapping the target memory failed (ioremap)");
			break;
		case -EFAULT:
			cm_err_hint(err, "the driver could not read an image buffer (bug?)");
			break;
		}
		break;
	}
}

static int fail_op(const struct cm_hw *hw, enum cm_op op, const char *what, int ret,
		   struct cm_err *err)
{
	cm_err_set(err, "%s %s failed", op_names[op], what);
	cm_explain(hw, op, ret, err);
	return ret;
}

int cm_config_open(const struct cm_hw *hw, const char *path, enum cm_cfg_kind kind,
		   struct cm_config **cfg, struct cm_report *rep, struct cm_err *err)
{
	int ret = cm_config_load(path, hw->arch, cfg, err);
	size_t before = rep->errors;

	if (ret < 0) {
		/* parse messages lack the file name: prefix it */
		cm_err_prefix(err, path);
		return ret;
	}
	if ((*cfg)->kind != kind) {
		cm_err_set(err, "%s is a %s configuration, expected a %s configuration", path,
			   (*cfg)->kind == CM_CFG_SYSTEM ? "system (root cell)" : "cell",
			   kind == CM_CFG_SYSTEM ? "system (root cell)" : "non-root cell");
		cm_config_free(*cfg);
		*cfg = NULL;
		return -EINVAL;
	}
	cm_config_check(*cfg, hw->arch, rep);
	if (rep->errors > before) {
		cm_err_set(err, "%s: %zu configuration error(s)", path, rep->errors - before);
		cm_err_hint(err, "fix them (see `jailhouse-cellmgr config check %s`)", path);
		cm_config_free(*cfg);
		*cfg = NULL;
		return -EINVAL;
	}
	return 0;
}

static void firmware_precheck(const struct cm_hw *hw, struct cm_report *rep)
{
	const char *dir = hw->firmware_dir ? hw->firmware_dir : "/lib/firmware";
	static const char *const x86[] = { "jailhouse-intel.bin", "jailhouse-amd.bin", NULL };
	static const char *const arm[] = { "jailhouse.bin", NULL };
	const char *const *names = hw->arch == CM_ARCH_X86 ? x86 : arm;
	char path[PATH_MAX];

	if (hw->arch == CM_ARCH_UNKNOWN)
		return;
	for (int i = 0; names[i]; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (access(path, F_OK) == 0)
			return;
	}
	/* Only a warning: firmware_class can be pointed elsewhere. */
	cm_report_add(rep, CM_SEV_WARN, "no hypervisor firmware (%s%s%s) in %s; enable will fail with ENOENT "
		      "unless /sys/module/firmware_class/parameters/path points elsewhere",
		      names[0], names[1] ? " or " : "", names[1] ? names[1] : "", dir);
}

int cm_enable_cfg(const struct cm_hw *hw, const struct cm_config *cfg,
		  struct cm_report *rep, struct cm_err *err)
{
	char what[64];
	int ret;

	ret = hw->ops->load_module(hw->ctx, "jailhouse");
	if (ret == -ENOENT) {
		cm_err_set(err, "kernel module jailhouse not found");
		cm_err_hint(err, "install the Jailhouse driver (jailhouse.ko, usually under "
			    "/lib/modules/$(uname -r)/extra) and run depmod");
		return ret;
	} else if (ret < 0) {
		cm_err_set(err, "loading kernel module jailhouse failed");
		cm_err_hint(err, "see dmesg; \"Unknown symbol\" means the root kernel lacks the "
			    "Jailhouse-enabling patches (ioremap_page_range, __get_vm_area_caller exports)");
		return ret;
	}
	firmware_precheck(hw, rep);
	ret = hw->ops->enable(hw->ctx, cfg->blob, cfg->len);
	if (ret < 0) {
		snprintf(what, sizeof(what), "with \"%s\"", cfg->cell.name);
		return fail_op(hw, CM_OP_ENABLE, what, ret, err);
	}
	return 0;
}

int cm_enable(const struct cm_hw *hw, const char *sys_path, struct cm_report *rep,
	      struct cm_err *err)
{
	struct cm_config *cfg;
	int ret = cm_config_open(hw, sys_path, CM_CFG_SYSTEM, &cfg, rep, err);

	if (ret < 0)
		return ret;
	ret = cm_enable_cfg(hw, cfg, rep, err);
	cm_config_free(cfg);
	return ret;
}

int cm_disable(const struct cm_hw *hw, struct cm_err *err)
{
	int ret = hw->ops->disable(hw->ctx);

	return ret < 0 ? fail_op(hw, CM_OP_DISABLE, "", ret, err) : 0;
}

int cm_cell_create(const struct cm_hw *hw, const struct cm_config *cfg, bool reuse,
		   int *id, struct cm_report *rep, struct cm_err *err)
{
	char what[64];
	int ret;

	*id = -1;
	if (cfg->kind != CM_CFG_CELL) {
		cm_err_set(err, "\"%s\" is a system configuration; use enable", cfg->cell.name);
		return -EINVAL;
	}
	ret = hw->ops->cell_create(hw->ctx, cfg->blob, cfg->len);
	if (ret == -EEXIST && reuse) {
		cm_report_add(rep, CM_SEV_WARN, "cell \"%s\" exists already; reusing it", cfg->cell.name);
		ret = 0;
	}
	if (ret < 0) {
		snprintf(what, sizeof(what), "for cell \"%s\"", cfg->cell.name);
		return fail_op(hw, CM_OP_CREATE, what, ret, err);
	}
	/* The ioctl does not return the id: the driver picks the lowest free
	 * one, visible in sysfs. */
	if (cm_sysfs_cell_id(hw->sysfs_root, cfg->cell.name, id) < 0)
		cm_report_add(rep, CM_SEV_WARN, "cell \"%s\" created, but not found under %s/devices/jailhouse/cells",
			      cfg->cell.name, hw->sysfs_root);
	return 0;
}

static int cell_op(const struct cm_hw *hw, enum cm_op op, const struct cm_cell_ref *ref,
		   const struct cm_load_image *imgs, unsigned n, struct cm_err *err)
{
	char what[64];
	int ret;

	switch (op) {
	case CM_OP_LOAD:
	case CM_OP_SHUTDOWN:
		ret = hw->ops->cell_load(hw->ctx, ref, imgs, n);
		break;
	case CM_OP_START:
		ret = hw->ops->cell_start(hw->ctx, ref);
		break;
	default:
		ret = hw->ops->cell_destroy(hw->ctx, ref);
		break;
	}
	if (ret < 0) {
		cm_cell_ref_str(ref, what, sizeof(what));
		/* The driver may refuse id 0 with EINVAL: say so precisely. */
		if (ref->id == 0 && ret == -EINVAL) {
			cm_err_set(err, "%s %s failed", op_names[op], what);
			cm_err_hint(err, "cell 0 is the root cell; it cannot be loaded, started or destroyed (use disable)");
			return ret;
		}
		return fail_op(hw, op, what, ret, err);
	}
	return 0;
}

int cm_cell_load(const struct cm_hw *hw, const struct cm_cell_ref *ref,
		 const struct cm_load_image *imgs, unsigned n, struct cm_err *err)
{
	return cell_op(hw, CM_OP_LOAD, ref, imgs, n, err);
}

int cm_cell_start(const struct cm_hw *hw, const struct cm_cell_ref *ref, struct cm_err *err)
{
	return cell_op(hw, CM_OP_START, ref, NULL, 0, err);
}

int cm_cell_shutdown(const struct cm_hw *hw, const struct cm_cell_ref *ref, struct cm_err *err)
{
	/* There is no shutdown ioctl: a load without images parks the CPUs. */
	return cell_op(hw, CM_OP_SHUTDOWN, ref, NULL, 0, err);
}

int cm_cell_destroy(const struct cm_hw *hw, const struct cm_cell_ref *ref, struct cm_err *err)
{
	return cell_op(hw, CM_OP_DESTROY, ref, NULL, 0, err);
}
