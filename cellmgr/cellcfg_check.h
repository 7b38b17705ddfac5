/* Semantic checks of a parsed configuration (what `config check` reports).
 *
 * Errors are things the driver or hypervisor rejects, or that break a cell in
 * ways that are hard to debug (overlapping regions, inconsistent ivshmem
 * devices, wrong architecture).  Warnings are legal but suspicious settings.
 * The rules and their reasons are listed in docs/cellmgr.md.
 */
#pragma once
#include "cellmgr/cellcfg.h"
#include "cellmgr/report.h"

/* expected_arch: the architecture the config must be for (usually the
 * host's); CM_ARCH_UNKNOWN skips the architecture comparison. */
void cm_config_check(const struct cm_config *cfg, enum cm_arch expected_arch,
		     struct cm_report *rep);
