/* Read-only sysfs queries below a configurable root (tests use a fake tree).
 *
 * Jailhouse: <root>/devices/jailhouse/{enabled,cells/<id>/{name,state,
 * cpus_assigned_list,cpus_failed_list}} (Jailhouse's Documentation/sysfs-entries.txt).
 * PCI/UIO: <root>/bus/pci/devices/<BDF>/{driver,uio/uioN}.
 */
#pragma once
#include <stddef.h>
#include "cellmgr/err.h"

struct cm_cell_info {
	int id;
	char name[64];
	char state[32];
	char cpus[128];
	char cpus_failed[128];
};

/* 1 enabled, 0 disabled (or module loaded, nothing enabled), -ENOENT if the
 * jailhouse module is not loaded. */
int cm_sysfs_enabled(const char *root);

/* All cells sorted by id; *out is malloc'ed (free()).  -ENOENT if the module
 * is not loaded. */
int cm_sysfs_cells(const char *root, struct cm_cell_info **out, size_t *n);

/* Id of the cell with this name, -ENOENT if none. */
int cm_sysfs_cell_id(const char *root, const char *name, int *id);

/* Name of the driver bound to a PCI device ("" if none). */
int cm_sysfs_pci_driver(const char *root, const char *bdf, char *buf, size_t len);

/* "uioN" of a PCI device bound to a UIO driver; -ENOENT if none. */
int cm_sysfs_pci_uio(const char *root, const char *bdf, char *buf, size_t len);

/* Read a small attribute, trailing newline stripped. */
int cm_sysfs_read(const char *path, char *buf, size_t len);
