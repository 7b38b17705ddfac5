/* Sample configurations modelled on the AGL x86 demo (Jailhouse's
 * configs/x86/qemu-x86.c and linux-x86-demo.c): a root config with a
 * virtio-blk back-end link and a Linux cell with the matching front-end. */
#pragma once
#include "cfgwriter.h"

#define R  0x01ull
#define W  0x02ull
#define X  0x04ull
#define DMA 0x08ull
#define IO 0x10ull
#define COMM 0x20ull
#define LOADABLE 0x40ull
#define ROOTSHARED 0x80ull

static const struct cw_mem linux_mem[] = {
	{ 0x22600000, 0x0, 0x100000, R | W | X | DMA | LOADABLE },       /* low RAM */
	{ 0, 0x100000, 0x1000, R | W | COMM },                           /* comm region */
	{ 0x22700000, 0x200000, 0x4700000, R | W | X | DMA | LOADABLE }, /* high RAM */
	{ 0x26e00000, 0x26e00000, 0x1000, R | ROOTSHARED },              /* state table */
	{ 0x26e01000, 0x26e01000, 0xdf000, R | W | ROOTSHARED },         /* rw section */
	{ 0, 0, 0, 0 },                                                  /* output 0 */
	{ 0, 0, 0, 0 },                                                  /* output 1 */
};
static const struct cw_irqchip linux_irq[] = { { 0xfec00000, 0xff00, 0, { 1u << 3 | 1u << 4 } } };
static const struct cw_pio linux_pio[] = { { 0x2e8, 8 }, { 0x3e8, 8 } };
static const struct cw_pci linux_pci[] = {
	{ .type = 3, .iommu = 1, .bdf = 0x0c << 3, .num_msix = 2, .shmem_start = 3,
	  .dev_id = 1, .peers = 2, .proto = 0x8002 },
};
static const struct cw_cell linux_cell = {
	.name = "agl-linux-x86-demo",
	.flags = 0x1 | 0x40000000,
	.cpus = 0xc,
	.mem = linux_mem, .nmem = 7,
	.irq = linux_irq, .nirq = 1,
	.pio = linux_pio, .npio = 2,
	.pci = linux_pci, .npci = 1,
};

static const struct cw_mem root_mem[] = {
	{ 0x0, 0x0, 0xa0000, R | W | X | DMA },
	{ 0x100000, 0x100000, 0x21f00000, R | W | X | DMA },
	{ 0x22600000, 0x22600000, 0x4800000, R | W | X | DMA },          /* inmate memory */
	{ 0x26e00000, 0x26e00000, 0x1000, R },                           /* state table */
	{ 0x26e01000, 0x26e01000, 0xdf000, R | W },                      /* rw section */
	{ 0, 0, 0, 0 },
	{ 0, 0, 0, 0 },
	{ 0xfed00000, 0xfed00000, 0x1000, R | W | IO },                  /* HPET */
};
static const struct cw_pci root_pci[] = {
	{ .type = 3, .iommu = 1, .bdf = 0x0c << 3, .num_msix = 2, .shmem_start = 3,
	  .dev_id = 0, .peers = 2, .proto = 0xc002 },
};
static const struct cw_cell root_cell = {
	.name = "AGL-Jailhouse-RootCell",
	.cpus = 0xf,
	.mem = root_mem, .nmem = 8,
	.irq = linux_irq, .nirq = 1,
	.pci = root_pci, .npci = 1,
	.ncaps = 2, .nstream = 1, .ncache = 0,
};
static const struct cw_sys root_sys = {
	.hv_phys = 0x22000000, .hv_size = 0x600000,
	.mmcfg_base = 0xb0000000, .mmcfg_end_bus = 0xff,
	.iommu0_base = 0xfed90000, .pm_timer = 0x608,
	.gic_version = 3, .gicd = 0xf9010000, .gicr = 0xf9100000,
};
