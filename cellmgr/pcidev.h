/* Discovery of IVSHMEM v2 PCI devices through libpci.
 *
 * Contract: cm_pci_scan() builds a fresh libpci context on each call (libpci
 * caches its bus scan, so a new context is how we "rescan" after
 * JAILHOUSE_ENABLE hot-added the root cell's ivshmem devices).  libpci's
 * default error handler exits the process; we install one that longjmps
 * back into cm_pci_scan(), which then fails with -EIO and the message in
 * err.  dump_file selects libpci's "dump" access method (`lspci -x` text),
 * used by tests and for offline diagnosis; NULL means autodetect (sysfs).
 * Not thread-safe with respect to concurrent scans (libpci's error callback
 * has no context pointer; a thread-local jump buffer is used).
 */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "cellmgr/err.h"

struct cm_ivshmem_pci {
	char bdf[16];          /* "0000:00:0c.0" */
	uint16_t domain;
	uint8_t bus, dev, func;
	uint16_t subsys_vendor, subsys_device;
	uint32_t class_code;   /* 24 bits: 0xff << 16 | protocol */
	uint16_t protocol;
	uint8_t revision;
};

int cm_pci_scan(const char *dump_file, struct cm_ivshmem_pci **out, size_t *n,
		struct cm_err *err);
