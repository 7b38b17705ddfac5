/* Test-data writer for Jailhouse .cell files (revisions 12, 13, 14).
 *
 * Written from the layout tables in Jailhouse's include/jailhouse/cell-config.h, on purpose
 * independent of cellmgr/cellcfg.c: a shared mistake would otherwise go
 * unnoticed.  Produces valid files; tests corrupt them afterwards.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cw_mem { uint64_t phys, virt, size, flags; };
struct cw_irqchip { uint64_t address; uint32_t id, pin_base; uint32_t pins[4]; };
struct cw_pio { uint16_t base, length; };
struct cw_cache { uint32_t start, size; uint8_t type; uint16_t flags; };
struct cw_cap { uint16_t id, start, len, flags; };
struct cw_pci {
	uint8_t type, iommu;
	uint16_t domain, bdf;
	uint16_t num_msix;
	uint32_t shmem_start;
	uint8_t dev_id, peers;
	uint16_t proto;
	uint16_t caps_start, num_caps;
	uint8_t msi_vectors, msi_flags;   /* flags: bit0 64-bit, bit1 maskable */
	uint64_t msix_address;
	uint16_t msix_size;
	bool custom_bars;                 /* else BAR0/1 0xfffff000 */
	uint32_t bars[6];
};

struct cw_cell {
	const char *name;
	uint32_t flags;
	uint64_t cpus;           /* bitmap, written as one u64 (cpu_set_size 8) */
	uint64_t cpu_reset;
	const struct cw_mem *mem; unsigned nmem;
	const struct cw_irqchip *irq; unsigned nirq;
	const struct cw_pio *pio; unsigned npio;
	const struct cw_pci *pci; unsigned npci;
	unsigned ncaps;          /* caps: from caps[] if given, else zeroed */
	unsigned nstream;        /* stream ids: from streams[] if given, else zeroed */
	unsigned ncache;         /* cache regions: from cache[] if given, else zeroed */
	const struct cw_cap *caps;
	const uint32_t *streams;
	const struct cw_cache *cache;
	uint64_t msg_reply_timeout;
	uint32_t vpci_irq_base;
};

struct cw_sys {
	uint64_t hv_phys, hv_size;
	uint64_t mmcfg_base;
	uint8_t mmcfg_end_bus;
	uint64_t iommu0_base;    /* one Intel VT-d unit if non-zero */
	uint16_t pm_timer;       /* x86 */
	uint8_t apic_mode;
	uint32_t vtd_limit, tsc_khz, apic_khz;
	uint8_t gic_version;     /* arm */
	uint8_t maint_irq;
	uint64_t gicd, gicc, gich, gicv, gicr;
};

#define CW_X86 0
#define CW_ARM 1
#define CW_ARM64 2

/* sys == NULL: a cell config.  Returns malloc'ed bytes, *len set. */
uint8_t *cw_build(unsigned rev, unsigned arch, const struct cw_sys *sys,
		  const struct cw_cell *cell, size_t *len);
