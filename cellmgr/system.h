/* Whole-system sequencing, used by `jailhouse-cellmgr up`/`down` (up.h).
 *
 * cm_system_up(): check every cell config and boot plan first (nothing is
 * touched when one is wrong), enable the root cell (unless Jailhouse is
 * enabled already), rescan PCI and bind the back-end links, let the caller
 * start or check its back-ends (links_ready), then boot the cells in the
 * given order, calling before_boot right before each cell is created.  The
 * order is the caller's: back-ends must be ready before their front-end
 * cell boots (the Linux front-end refuses a back-end that is not READY and
 * never retries).  It uses exactly the functions the CLI uses.
 * cm_system_down(): shut down and destroy the cells in reverse order (cells
 * that do not exist are fine), then disable if asked.
 */
#pragma once
#include <stddef.h>
#include "cellmgr/bind.h"
#include "cellmgr/cellmgr.h"

struct cm_image_file {
	const char *path;
	uint64_t addr;
};

enum cm_up_kind { CM_UP_LINUX, CM_UP_IMAGES };

struct cm_up_cell {
	const char *config_path;
	enum cm_up_kind kind;
	struct cm_linux_opts linux_opts;       /* CM_UP_LINUX */
	const struct cm_image_file *images;    /* CM_UP_IMAGES */
	unsigned n_images;
};

struct cm_up_plan {
	const char *root_config;
	const char *pci_dump;                  /* NULL: real PCI */
	enum cm_bind_method bind_method;
	const struct cm_up_cell *cells;
	unsigned n_cells;
	/* After binding, before the first cell boots.  Return <0 to abort. */
	int (*links_ready)(void *opaque, const struct cm_link *links, size_t n,
			   struct cm_err *err);
	/* Before cells[i] is created (its config is checked).  <0 aborts. */
	int (*before_boot)(void *opaque, unsigned i, const struct cm_config *cell,
			   struct cm_err *err);
	/* After cells[i] was started (may be NULL). */
	void (*after_boot)(void *opaque, unsigned i, const struct cm_config *cell);
	void *opaque;
};

/* Read image files and load them into a cell in one JAILHOUSE_CELL_LOAD. */
int cm_cell_load_files(const struct cm_hw *hw, const struct cm_cell_ref *ref,
		       const struct cm_image_file *files, unsigned n, struct cm_err *err);

int cm_system_up(const struct cm_hw *hw, const struct cm_up_plan *plan,
		 struct cm_report *rep, struct cm_err *err);
/* names: the cells to stop, in boot order (shut down and destroyed last to
 * first); disable: JAILHOUSE_DISABLE afterwards. */
int cm_system_down(const struct cm_hw *hw, const char *const *names, unsigned n,
		   bool disable, struct cm_err *err);
