/* The hardware-facing interface of the cell manager.
 *
 * Everything that touches the hypervisor driver, kernel modules or writes
 * sysfs goes through struct cm_hw_ops, so that the logic above it can be
 * tested without Jailhouse: hw_real.c is the real implementation (ioctl on
 * /dev/jailhouse, libkmod, write(2) on sysfs files), tests/cellmgr/fake_hw.c
 * records calls.  Reading sysfs is done by plain file access below
 * cm_hw.sysfs_root, which tests point at a fake tree.
 *
 * Every op returns 0 or a negative errno exactly as the kernel reported it;
 * interpretation (what to check) happens in cellmgr.c, which knows the
 * context.  Ops never print.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "cellmgr/cellcfg.h"

/* Cell selector, as in struct jailhouse_cell_id: id >= 0 selects by number,
 * id == -1 by name. */
struct cm_cell_ref {
	int32_t id;
	char name[CM_CELL_NAMELEN];
};

/* One preload image: size bytes from data go to guest address addr. */
struct cm_load_image {
	const char *label;    /* for messages: "kernel bzImage", a file name */
	const void *data;
	uint64_t size;
	uint64_t addr;
};

struct cm_hw_ops {
	/* /dev/jailhouse ioctls */
	int (*enable)(void *ctx, const void *sys_cfg, size_t len);
	int (*disable)(void *ctx);
	int (*cell_create)(void *ctx, const void *cell_cfg, size_t len);
	/* n == 0 is the "shutdown" form of JAILHOUSE_CELL_LOAD. */
	int (*cell_load)(void *ctx, const struct cm_cell_ref *cell,
			 const struct cm_load_image *imgs, unsigned n);
	int (*cell_start)(void *ctx, const struct cm_cell_ref *cell);
	int (*cell_destroy)(void *ctx, const struct cm_cell_ref *cell);
	/* Load a kernel module and its dependencies; 0 if already loaded.
	 * -ENOENT: not found in the module directory. */
	int (*load_module)(void *ctx, const char *name);
	/* Write a string to a sysfs attribute (absolute path). */
	int (*sysfs_write)(void *ctx, const char *path, const char *value);
};

struct cm_hw {
	const struct cm_hw_ops *ops;
	void *ctx;
	const char *dev_path;      /* "/dev/jailhouse", only for messages */
	const char *sysfs_root;    /* "/sys" */
	const char *firmware_dir;  /* "/lib/firmware", only for messages */
	enum cm_arch arch;         /* host architecture (config checks) */
};

/* Real implementation.  dev_path: "/dev/jailhouse"; module_dir: NULL for
 * /lib/modules/$(uname -r).  The strings must outlive the context. */
struct cm_hw_real;
int cm_hw_real_new(const char *dev_path, const char *module_dir,
		   struct cm_hw_real **out);
void cm_hw_real_free(struct cm_hw_real *r);
extern const struct cm_hw_ops cm_hw_real_ops;

/* Fill a struct cm_cell_ref from a CLI argument: a non-negative decimal
 * number selects by id unless by_name is set.  -ENAMETOOLONG for names of
 * 32 bytes or more, -EINVAL for an empty name. */
int cm_cell_ref_parse(const char *arg, bool by_name, struct cm_cell_ref *ref);
/* "cell \"name\"" or "cell 3" */
const char *cm_cell_ref_str(const struct cm_cell_ref *ref, char *buf, size_t len);
