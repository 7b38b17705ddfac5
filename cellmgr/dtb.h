/* Device tree patching for an ARM Linux cell, with libfdt.
 *
 * Contract:
 * - The input is untrusted: it must be a complete, well-formed flattened
 *   device tree (libfdt's full check) of version 17 (upstream's tool needs
 *   version >= 17 and last_comp_version <= 17), whose root node has
 *   #address-cells and #size-cells of 1 or 2.
 * - The output is a new, packed tree with:
 *   /memory     device_type = "memory" and reg = one (start, size) pair per
 *               range, in the root's cell sizes.  An existing node called
 *               "memory" or "memory@..." or with device_type "memory" is
 *               reused; further memory nodes are deleted (a warning names
 *               them), because Linux would use their stale ranges too.
 *   /chosen     bootargs (only if bootargs is non-empty: an empty command
 *               line leaves the tree's own, as upstream does), and
 *               linux,initrd-start / linux,initrd-end in the address cell
 *               size; without an initrd, stale linux,initrd-* properties
 *               are deleted (a warning says so).
 *   Both nodes are created when missing.
 * - A value that does not fit the cell size is an error (-ERANGE), as are
 *   a bad tree (-EINVAL) and libfdt failures (-EINVAL, err says which).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cellmgr/err.h"
#include "cellmgr/report.h"

struct cm_dtb_range {
	uint64_t start, size;
};

struct cm_dtb_patch {
	const struct cm_dtb_range *mem;
	unsigned nmem;
	const char *bootargs;          /* NULL or "": keep the tree's */
	bool has_initrd;
	uint64_t initrd_start, initrd_end;
};

/* name: the file, for messages.  *out is malloc'ed. */
int cm_dtb_patch(const uint8_t *in, size_t len, const char *name, const struct cm_dtb_patch *p,
		 uint8_t **out, size_t *out_len, struct cm_report *rep, struct cm_err *err);
