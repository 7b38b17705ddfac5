/* `jailhouse-cellmgr up CONFIG` / `down CONFIG`: the whole system from the
 * daemon's config file (config/config.h: [cell NAME] sections, and
 * [block]/[console] sections that name their cell and link).
 *
 * cm_up():
 *   1. loads CONFIG and checks every cell: its .cell file, that an ARM
 *      cell has `dtb =` and an x86 cell has none, then the whole system
 *      (the root .cell file and all cells together, cm_system_check()),
 *      then the kernel, initrd, device tree, command line and boot layout
 *      of each cell it boots; nothing is touched when one is wrong;
 *   2. enables the root cell unless Jailhouse is enabled already (the root
 *      .cell file: opts->root_config, else [daemon] root-cell);
 *   3. rescans PCI and binds the back-end links to uio_ivshmem, then matches
 *      devices to cells (cm_up_match());
 *   4. for each cell in boot order ([cell] order, then file order), cells
 *      that are running already are left alone: waits (bounded) until
 *      virtio-ivshmemd serves every device of the cell, asking the daemon
 *      over its control socket (`json list`), and only then creates, loads
 *      and starts it with the Linux boot of `jailhouse-cellmgr linux`
 *      (cm_linux_plan(), cm_linux_boot(); [cell] dtb is its -d).  The
 *      Linux front-end refuses a back-end that is not READY and never
 *      retries, so a cell is never created before its devices serve.
 *   On failure the cells booted so far keep running; `down` stops them.
 *
 * cm_down(): shuts down and destroys the cells of CONFIG in reverse boot
 * order, skipping those that do not exist; JAILHOUSE_DISABLE only with
 * opts->disable (the root cell may host other things).
 *
 * Nothing here prints: progress goes to opts->progress, warnings to rep,
 * the failure to err (see err.h).
 */
#pragma once
#include <stdbool.h>
#include "cellmgr/bind.h"
#include "cellmgr/cellmgr.h"
#include "config/config.h"

#define CM_UP_DEFAULT_TIMEOUT_MS 10000u

struct cm_up_opts {
	const char *config_path;
	const char *root_config;     /* NULL: [daemon] root-cell of CONFIG */
	const char *control;         /* NULL: [daemon] control-socket of CONFIG */
	const char *loader;          /* NULL: CM_DEFAULT_LOADER */
	const char *pci_dump;        /* NULL: the real PCI bus */
	enum cm_bind_method bind_method;
	unsigned timeout_ms;         /* per cell; 0: CM_UP_DEFAULT_TIMEOUT_MS */
	void (*progress)(void *opaque, const char *msg);
	void *opaque;
};

int cm_up(const struct cm_hw *hw, const struct cm_up_opts *o, struct cm_report *rep,
	  struct cm_err *err);

struct cm_down_opts {
	const char *config_path;
	bool disable;
	void (*progress)(void *opaque, const char *msg);
	void *opaque;
};

int cm_down(const struct cm_hw *hw, const struct cm_down_opts *o, struct cm_report *rep,
	    struct cm_err *err);

/* Which cell each device of cfg belongs to (dev_cell[i]: index into
 * cfg->cells, or -1).  `cell = NAME` decides where given.  Where it is not,
 * a device whose link has a BDF (pci = BDF, or uio = /dev/uioN mapped to
 * its BDF by the bind results in links) belongs to the configured cell
 * whose .cell file (cells[k], parsed, may be NULL) has an ivshmem device at
 * that BDF (ivshmem peers share the BDF; the domain may differ).  Errors
 * (-EINVAL): the link is in another cell's config than `cell =` says, two
 * cells claim it, or the cell's end of the link is not the matching virtio
 * front-end.  Warnings: a named cell has no ivshmem device at the BDF; a
 * cell's virtio front-end has no device in cfg. */
int cm_up_match(const struct config *cfg, struct cm_config *const *cells,
		const struct cm_link *links, size_t nlinks, int *dev_cell,
		struct cm_report *rep, struct cm_err *err);

/* Wait until the daemon at sock serves every device d with dev_cell[d] ==
 * cell (see cm_daemon_state_serving()), polling `json list`.  Fails at
 * once when the daemon lists no device of that name or one of another
 * type or cell (it runs with another config); after timeout_ms when it
 * cannot be reached (the errno of the last attempt) or a device is still
 * not serving (-ETIMEDOUT). */
int cm_up_wait_served(const char *sock, const struct config *cfg, const int *dev_cell,
		      unsigned cell, unsigned timeout_ms, struct cm_err *err);
