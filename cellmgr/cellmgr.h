/* Cell manager operations: what the CLI commands (and later the daemon's
 * `up`/`down`) do, on top of struct cm_hw.
 *
 * Contract: every function validates its inputs (configs are checked with
 * cm_config_check() and refused on errors), calls the hardware ops, and on
 * failure returns the negative errno with err saying what failed and what to
 * check.  Warnings go to rep.  Nothing here prints or exits.
 */
#pragma once
#include <stdbool.h>
#include "cellmgr/cellcfg.h"
#include "cellmgr/err.h"
#include "cellmgr/hw.h"
#include "cellmgr/linux_arm.h"
#include "cellmgr/linux_x86.h"
#include "cellmgr/report.h"

#define CM_DEFAULT_LOADER "/usr/libexec/jailhouse/linux-loader.bin"
#define CM_IMAGE_MAX ((size_t)1 << 30)   /* 1 GiB per image */

/* Load and check a config of the expected kind; config errors fill rep and
 * make it fail with -EINVAL (err says "N errors in FILE"). */
int cm_config_open(const struct cm_hw *hw, const char *path, enum cm_cfg_kind kind,
		   struct cm_config **cfg, struct cm_report *rep, struct cm_err *err);

/* Load jailhouse.ko, then JAILHOUSE_ENABLE with the checked system config. */
int cm_enable(const struct cm_hw *hw, const char *sys_path, struct cm_report *rep,
	      struct cm_err *err);
int cm_enable_cfg(const struct cm_hw *hw, const struct cm_config *cfg,
		  struct cm_report *rep, struct cm_err *err);
int cm_disable(const struct cm_hw *hw, struct cm_err *err);

/* JAILHOUSE_CELL_CREATE; *id is the new cell's id from sysfs (-1 if it
 * could not be found there, with a warning in rep).  reuse: treat EEXIST
 * as success (what `jailhouse cell linux` does). */
int cm_cell_create(const struct cm_hw *hw, const struct cm_config *cfg, bool reuse,
		   int *id, struct cm_report *rep, struct cm_err *err);
int cm_cell_load(const struct cm_hw *hw, const struct cm_cell_ref *ref,
		 const struct cm_load_image *imgs, unsigned n, struct cm_err *err);
int cm_cell_start(const struct cm_hw *hw, const struct cm_cell_ref *ref, struct cm_err *err);
int cm_cell_shutdown(const struct cm_hw *hw, const struct cm_cell_ref *ref, struct cm_err *err);
int cm_cell_destroy(const struct cm_hw *hw, const struct cm_cell_ref *ref, struct cm_err *err);

/* Linux boot of a non-root cell (cellmgr/linux.c): x86 (linux_x86.h) or
 * arm/arm64 (linux_arm.h), chosen by the cell config's architecture. */
struct cm_linux_opts {
	const char *kernel_path;
	const char *initrd_path;   /* NULL: none */
	const char *cmdline;       /* NULL: empty */
	const char *loader_path;   /* NULL: CM_DEFAULT_LOADER */
	unsigned decomp_factor;    /* 0: from the kernel payload (x86) / 1 arm64, 4 arm */
	const char *dtb_path;      /* ARM only (required there); NULL: none */
};

#define CM_LINUX_MAX_IMAGES 5

/* The computed plan: the images in load order with their file names.
 * files[k] is NULL for the image -w writes (x86 parameters, ARM device
 * tree) until it is written, and for the ARM parameter string, which is
 * loaded as a string (is_string). */
struct cm_linux_plan {
	bool arm;                       /* arm_boot is valid, else boot */
	struct cm_x86_boot boot;
	struct cm_arm_boot arm_boot;
	uint8_t *kernel, *initrd, *loader, *dtb;
	size_t kernel_len, initrd_len, loader_len, dtb_len;
	struct cm_load_image imgs[CM_LINUX_MAX_IMAGES];
	const char *files[CM_LINUX_MAX_IMAGES];
	bool is_string[CM_LINUX_MAX_IMAGES];
	unsigned n;
	unsigned out;                   /* index of the image -w writes */
};

/* Read the images and compute the layout; checks that every image fits a
 * LOADABLE region.  need_loader=false (for -w) only checks the loader
 * address, without reading the file. */
int cm_linux_plan(const struct cm_config *cell, const struct cm_linux_opts *o,
		  bool need_loader, struct cm_linux_plan *plan, struct cm_report *rep,
		  struct cm_err *err);
void cm_linux_plan_free(struct cm_linux_plan *plan);

/* Create (reusing an existing cell of that name), load all images in one
 * JAILHOUSE_CELL_LOAD (loader before its parameters) and start. */
int cm_linux_boot(const struct cm_hw *hw, const struct cm_config *cell,
		  const struct cm_linux_plan *plan, struct cm_report *rep, struct cm_err *err);

/* Explain an errno from one of the driver ops: fills the hint of err for
 * the given operation (exported for the daemon's own use). */
enum cm_op { CM_OP_ENABLE, CM_OP_DISABLE, CM_OP_CREATE, CM_OP_LOAD, CM_OP_START,
	     CM_OP_SHUTDOWN, CM_OP_DESTROY };
void cm_explain(const struct cm_hw *hw, enum cm_op op, int ret, struct cm_err *err);
