/* Fake sysfs trees for the uio port: the layout the real kernel shows for a
 * PCI device bound to uio_ivshmem (read off a Debian 6.1 guest with the real
 * driver, see tests/realdriver/):
 *
 *   sys/devices/pci0000:00/BDF/{vendor,device,class,subsystem_vendor,
 *                               subsystem_device,irq,msi_irqs/N...}
 *   sys/devices/pci0000:00/BDF/uio/uioN/{name,version,event,dev}
 *   sys/devices/pci0000:00/BDF/uio/uioN/device -> ../../../BDF
 *   sys/devices/pci0000:00/BDF/uio/uioN/maps/mapK/{name,addr,size,offset}
 *   sys/class/uio/uioN -> ../../devices/pci0000:00/BDF/uio/uioN
 *   sys/bus/pci/devices/BDF -> ../../../devices/pci0000:00/BDF
 *
 * Maps are registered in uio_ivshmem's order (registers, state_table,
 * rw_section if its size is not 0, input_sections and output_section if the
 * output size is not 0) and printed in the kernel's formats ("0x%016llx" for
 * addr and size, "0x%llx" for offset).  dev/uioN is a regular file holding
 * map K at offset K * page size, registers (ID, MAX_PEERS) in map 0: mmap
 * works on it as on the real node, read() and poll() do not.
 */
#pragma once
#include <stdint.h>

struct fake_uio {
	const char *bdf;            /* "0000:00:02.0" */
	unsigned uio;               /* N of uioN */
	uint32_t vendor, device;    /* 0x110a, 0x4106 */
	uint32_t class_code;        /* 24 bits, e.g. 0xffc002 */
	uint32_t sub_vendor, sub_device;
	unsigned msix;              /* msi_irqs entries; 0: INTx (no directory) */
	uint32_t id, max_peers;     /* register values */
	uint64_t state_size, rw_size, output_size;
};

/* A block back-end as QEMU's ivshmem2 device shows it: class ffc002,
 * subsystem 1af4:1100, 2 MSI-X vectors, ID 0 of 2, 4 KiB state table. */
struct fake_uio fake_uio_default(void);

/* Create the tree under root/sys and the node root/dev/uioN.  Returns 0 or
 * a negative errno. */
int fake_sysfs_add_uio(const char *root, const struct fake_uio *u);
