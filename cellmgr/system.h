/* Whole-system sequencing for the daemon's future `up`/`down` commands.
 *
 * cm_system_up(): enable the root cell, rescan PCI and bind the back-end
 * links, let the caller start its back-ends (links_ready), then boot the
 * cells in the given order.  The order is the caller's: back-ends must be
 * ready before their front-end cell boots (a front-end without back-end
 * stalls the Linux boot).  It uses exactly the functions the CLI uses.
 * cm_system_down(): destroy the cells in reverse order, then disable.
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
	void *opaque;
};

/* Read image files and load them into a cell in one JAILHOUSE_CELL_LOAD. */
int cm_cell_load_files(const struct cm_hw *hw, const struct cm_cell_ref *ref,
		       const struct cm_image_file *files, unsigned n, struct cm_err *err);

int cm_system_up(const struct cm_hw *hw, const struct cm_up_plan *plan,
		 struct cm_report *rep, struct cm_err *err);
/* names: the cells to destroy, in boot order (destroyed last to first). */
int cm_system_down(const struct cm_hw *hw, const char *const *names, unsigned n,
		   struct cm_err *err);
