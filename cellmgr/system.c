#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cellmgr/sysfs.h"
#include "cellmgr/system.h"

int cm_cell_load_files(const struct cm_hw *hw, const struct cm_cell_ref *ref,
		       const struct cm_image_file *files, unsigned n, struct cm_err *err)
{
	struct cm_load_image *imgs;
	uint8_t **bufs;
	int ret = 0;

	imgs = calloc(n ? n : 1, sizeof(*imgs));
	bufs = calloc(n ? n : 1, sizeof(*bufs));
	if (!imgs || !bufs) {
		ret = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		size_t len;

		ret = cm_read_file(files[i].path, CM_IMAGE_MAX, &bufs[i], &len, err);
		if (ret < 0)
			goto out;
		imgs[i] = (struct cm_load_image){ files[i].path, bufs[i], len, files[i].addr };
	}
	ret = cm_cell_load(hw, ref, imgs, n, err);
out:
	for (unsigned i = 0; bufs && i < n; i++)
		free(bufs[i]);
	free(bufs);
	free(imgs);
	return ret;
}

/* Everything that can be checked without the hypervisor: the config, the
 * images and the boot layout.  The files are read again at boot time. */
static int check_cell(const struct cm_hw *hw, const struct cm_up_cell *c,
		      struct cm_report *rep, struct cm_err *err)
{
	struct cm_config *cfg;
	int ret;

	ret = cm_config_open(hw, c->config_path, CM_CFG_CELL, &cfg, rep, err);
	if (ret < 0)
		return ret;
	if (c->kind == CM_UP_LINUX) {
		struct cm_linux_plan plan;

		ret = cm_linux_plan(cfg, &c->linux_opts, true, &plan, rep, err);
		if (ret == 0)
			cm_linux_plan_free(&plan);
	} else {
		for (unsigned i = 0; i < c->n_images && ret == 0; i++) {
			if (access(c->images[i].path, R_OK) < 0) {
				ret = -errno;
				cm_err_set(err, "cannot read %s", c->images[i].path);
			}
		}
	}
	cm_config_free(cfg);
	return ret;
}

static int boot_cell(const struct cm_hw *hw, const struct cm_up_plan *up, unsigned i,
		     struct cm_report *rep, struct cm_err *err)
{
	const struct cm_up_cell *c = &up->cells[i];
	struct cm_config *cfg;
	int ret, id;

	ret = cm_config_open(hw, c->config_path, CM_CFG_CELL, &cfg, rep, err);
	if (ret < 0)
		return ret;
	if (up->before_boot) {
		ret = up->before_boot(up->opaque, i, cfg, err);
		if (ret < 0)
			goto out;
	}
	if (c->kind == CM_UP_LINUX) {
		struct cm_linux_plan plan;

		ret = cm_linux_plan(cfg, &c->linux_opts, true, &plan, rep, err);
		if (ret == 0) {
			ret = cm_linux_boot(hw, cfg, &plan, rep, err);
			cm_linux_plan_free(&plan);
		}
	} else {
		struct cm_cell_ref ref = { .id = -1 };

		memcpy(ref.name, cfg->cell.name, strnlen(cfg->cell.name, sizeof(ref.name) - 1));
		ret = cm_cell_create(hw, cfg, false, &id, rep, err);
		if (ret == 0)
			ret = cm_cell_load_files(hw, &ref, c->images, c->n_images, err);
		if (ret == 0)
			ret = cm_cell_start(hw, &ref, err);
	}
	if (ret == 0 && up->after_boot)
		up->after_boot(up->opaque, i, cfg);
out:
	cm_config_free(cfg);
	return ret;
}

int cm_system_up(const struct cm_hw *hw, const struct cm_up_plan *plan,
		 struct cm_report *rep, struct cm_err *err)
{
	struct cm_link *links = NULL;
	size_t n = 0;
	int ret;

	for (unsigned i = 0; i < plan->n_cells; i++) {
		ret = check_cell(hw, &plan->cells[i], rep, err);
		if (ret < 0)
			return ret;
	}
	if (cm_sysfs_enabled(hw->sysfs_root) == 1) {
		cm_report_add(rep, CM_SEV_WARN, "Jailhouse is enabled already; not enabling again");
	} else {
		ret = cm_enable(hw, plan->root_config, rep, err);
		if (ret < 0)
			return ret;
	}
	/* The root's ivshmem devices appear only now: scan afresh. */
	ret = cm_bind_links(hw, plan->pci_dump, plan->bind_method, &links, &n, err);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < n; i++)
		if (links[i].action == CM_LINK_FAILED) {
			cm_err_set(err, "binding ivshmem link %s to uio_ivshmem failed: %s",
				   links[i].pci.bdf, links[i].note);
			ret = links[i].error;
			goto out;
		}
	if (plan->links_ready) {
		ret = plan->links_ready(plan->opaque, links, n, err);
		if (ret < 0)
			goto out;
	}
	for (unsigned i = 0; i < plan->n_cells; i++) {
		ret = boot_cell(hw, plan, i, rep, err);
		if (ret < 0)
			goto out;
	}
	ret = 0;
out:
	free(links);
	return ret;
}

int cm_system_down(const struct cm_hw *hw, const char *const *names, unsigned n,
		   bool disable, struct cm_err *err)
{
	for (unsigned i = n; i-- > 0;) {
		struct cm_cell_ref ref;
		int ret = cm_cell_ref_parse(names[i], true, &ref);

		if (ret < 0) {
			cm_err_set(err, "bad cell name \"%s\"", names[i]);
			return ret;
		}
		/* Park the CPUs first (there is no shutdown ioctl: a load
		 * without images), then destroy.  A cell that is gone already
		 * is what we want. */
		ret = cm_cell_shutdown(hw, &ref, err);
		if (ret == 0)
			ret = cm_cell_destroy(hw, &ref, err);
		if (ret < 0 && ret != -ENOENT)
			return ret;
		cm_err_clear(err);
	}
	return disable ? cm_disable(hw, err) : 0;
}
