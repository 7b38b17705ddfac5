/* Binding IVSHMEM back-end links to uio_ivshmem and mapping them to /dev/uioN.
 *
 * uio_ivshmem binds only protocol 0x0000 by itself; virtio back-ends need a
 * dynamic id (new_id) or a per-device driver_override (preferred: it touches
 * only the devices we mean).  Front-ends in the root cell are reported, not
 * bound: a root that exposes a front-end (class 0xff80xx) is the classic
 * misconfiguration behind "no /dev/uio0".
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "cellmgr/hw.h"
#include "cellmgr/pcidev.h"
#include "cellmgr/proto.h"

enum cm_bind_method { CM_BIND_OVERRIDE, CM_BIND_NEW_ID };

enum cm_link_action {
	CM_LINK_BOUND,      /* we bound it now */
	CM_LINK_ALREADY,    /* was bound to uio_ivshmem */
	CM_LINK_SKIPPED,    /* not a back-end: left alone (see note) */
	CM_LINK_FAILED,     /* error holds the cause, note what to check */
};

struct cm_link {
	struct cm_ivshmem_pci pci;
	enum cm_proto_kind kind;
	enum cm_link_action action;
	int error;
	char driver[64];    /* driver bound after the operation, "" if none */
	char uio[16];       /* "uio3", "" if none */
	char note[192];
};

#define CM_UIO_DRIVER "uio_ivshmem"

/* Scan (fresh libpci context, see pcidev.h), bind back-ends, map to uioN.
 * Returns a negative errno only for global failures (scan failed,
 * uio_ivshmem missing); per-link failures are in the links
 * (action CM_LINK_FAILED).  *links is malloc'ed. */
int cm_bind_links(const struct cm_hw *hw, const char *pci_dump, enum cm_bind_method method,
		  struct cm_link **links, size_t *n, struct cm_err *err);

/* Only scan and report, without binding (action is ALREADY or SKIPPED). */
int cm_list_links(const struct cm_hw *hw, const char *pci_dump,
		  struct cm_link **links, size_t *n, struct cm_err *err);
