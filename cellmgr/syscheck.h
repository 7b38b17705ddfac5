/* Whole-system check: a system config and the non-root cells that run with
 * it (`config check SYSTEM.cell CELL.cell ...`, and `up` before it touches
 * anything).
 *
 * Contract:
 * - Every file was parsed and checked on its own (cm_config_check()); this
 *   adds only what the set shows.  Findings go to rep, nothing is printed.
 * - sys may be NULL when the root config is unknown (Jailhouse was enabled
 *   by someone else): then only the rules between non-root cells run.
 * - files[i] names cells[i] in messages (usually the file name).
 * - Errors: the driver or hypervisor refuses one of the cells (revision,
 *   names, CPUs, ivshmem ids), or two parties would use the same thing
 *   without knowing (memory, CPUs, PCI devices, interrupt pins,
 *   hypervisor-owned ranges), or the two ends of an ivshmem link disagree.
 *   Warnings: a cell gets a device, port range or interrupt pin that the
 *   root cell does not own (legal: the hypervisor hands it over anyway),
 *   two cells share PIO ports (upstream's demos share debug UARTs), or an
 *   ivshmem endpoint has no peer among the files.
 * - Counts come from untrusted files: every pairwise rule is bounded (see
 *   CM_SYSCHECK_MAX_ITEMS) and says so when it stops.
 * The rules and the hypervisor code behind them: docs/cellmgr.md.
 */
#pragma once
#include "cellmgr/cellcfg.h"
#include "cellmgr/report.h"

#define CM_SYSCHECK_MAX_ITEMS 65536u

void cm_system_check(const struct cm_config *sys, const char *sys_file,
		     const struct cm_config *const *cells, const char *const *files,
		     unsigned n, struct cm_report *rep);
