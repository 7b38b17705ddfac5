/* IVSHMEM link through a /dev/uioN node bound to the uio_ivshmem driver.
 *
 * The PCI function behind it (<sysfs>/class/uio/uioN/device/) must be an
 * IVSHMEM v2 device (110a:4106); the protocol, and with it our role and the
 * virtio device type, is read from its class code (ffc002: virtio-blk
 * back-end).  Maps are found by name under <sysfs>/class/uio/uioN/maps/
 * (their indices shift when a section is empty).  The node stays open while
 * the port exists:
 * closing it makes the driver write STATE=0, which the peer sees as
 * "backend failed".  The vector count comes from the PCI device's msi_irqs
 * directory (absent: INTx, one vector).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "core/port.h"

/* Open dev_path (e.g. "/dev/uio0").  sysfs_root is "/sys" on a real system.
 * On failure returns a negative errno and writes the reason to err. */
int port_uio_open(const char *dev_path, const char *sysfs_root, struct ivshm_port **ret,
		  char *err, size_t err_len);

/* The same with the fd of dev_path that a previous process kept open (see
 * core/handover.h): nothing is written to the device; an fd that is not of
 * dev_path is refused (-ESTALE); on failure the fd is closed (which may
 * reset the link). */
/* Is fd an open file of the node dev_path (its device, or for the tests'
 * regular-file nodes, its inode)? */
bool port_uio_same_node(int fd, const char *dev_path);

int port_uio_adopt(const char *dev_path, const char *sysfs_root, int fd,
		   struct ivshm_port **ret, char *err, size_t err_len);

/* Find the /dev/uioN serving PCI device bdf ("0000:00:0c.0") through
 * <sysfs_root>/bus/pci/devices/<bdf>/uio/.  Writes "<dev_root>/uioN". */
int port_uio_resolve_pci(const char *bdf, const char *sysfs_root, const char *dev_root,
			 char *out, size_t out_len, char *err, size_t err_len);
