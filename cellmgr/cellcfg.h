/* Jailhouse binary cell/system configuration (.cell files), revisions 12-14.
 *
 * Contract:
 * - cm_config_parse() treats the buffer as untrusted.  It accepts a file only
 *   if the signature matches the revision, the revision is 12, 13 or 14, a
 *   revision-14 architecture byte is known, every count fits, and the file is
 *   exactly as long as the counts say (the driver and hypervisor trust these
 *   counts and would read past a short buffer).  It decodes every field into
 *   host-order structs; the raw bytes are kept (cfg->blob) because the ioctls
 *   take the file contents verbatim.
 * - Semantic rules (overlaps, flags, ivshmem consistency) are not parse
 *   errors; cm_config_check() in cellcfg_check.h reports them.
 * - Layout facts: Jailhouse's include/jailhouse/cell-config.h.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cellmgr/err.h"

enum cm_arch {
	CM_ARCH_X86 = 0,   /* values of the rev-14 architecture byte */
	CM_ARCH_ARM = 1,
	CM_ARCH_ARM64 = 2,
	CM_ARCH_UNKNOWN = 0xff,
};

const char *cm_arch_name(enum cm_arch arch);
/* "x86", "x86_64", "arm", "arm64", "aarch64"; -EINVAL otherwise. */
int cm_arch_parse(const char *s, enum cm_arch *out);
enum cm_arch cm_arch_host(void);

enum cm_cfg_kind { CM_CFG_SYSTEM, CM_CFG_CELL };

#define CM_CFG_REV_MIN 12
#define CM_CFG_REV_MAX 14
#define CM_CELL_DESC_SIZE 132
#define CM_CELL_NAMELEN 32

/* Cell flags */
#define CM_CELL_PASSIVE_COMMREG     0x00000001u
#define CM_CELL_TEST_DEVICE         0x00000002u
#define CM_CELL_AARCH32             0x00000004u   /* rev >= 13 */
#define CM_CELL_VCONSOLE_PERMITTED  0x40000000u
#define CM_CELL_VCONSOLE_ACTIVE     0x80000000u

/* Memory region flags */
#define CM_MEM_READ          0x0001ull
#define CM_MEM_WRITE         0x0002ull
#define CM_MEM_EXECUTE       0x0004ull
#define CM_MEM_DMA           0x0008ull
#define CM_MEM_IO            0x0010ull
#define CM_MEM_COMM_REGION   0x0020ull
#define CM_MEM_LOADABLE      0x0040ull
#define CM_MEM_ROOTSHARED    0x0080ull
#define CM_MEM_NO_HUGEPAGES  0x0100ull
#define CM_MEM_IO_UNALIGNED  0x8000ull
#define CM_MEM_IO_WIDTHS     0xf0000ull      /* IO_8/16/32/64 */
#define CM_MEM_KNOWN_FLAGS   (0x01ffull | CM_MEM_IO_UNALIGNED | CM_MEM_IO_WIDTHS)

#define CM_PCI_TYPE_DEVICE  1
#define CM_PCI_TYPE_BRIDGE  2
#define CM_PCI_TYPE_IVSHMEM 3

#define CM_IVSHMEM_MAX_PEERS 12
#define CM_IVSHMEM_MAX_MSIX  16

#define CM_SYS_IOMMU_UNITS 8

struct cm_console {
	uint64_t address;
	uint32_t size;
	uint16_t type, flags;
	uint32_t divider, gate_nr;
	uint64_t clock_reg;
};

struct cm_mem {
	uint64_t phys, virt, size, flags;
};

struct cm_cache {
	uint32_t start, size;
	uint8_t type;
	uint16_t flags;
};

struct cm_irqchip {
	uint64_t address;
	uint32_t id, pin_base;
	uint32_t pin_bitmap[4];
};

struct cm_pio {
	uint16_t base, length;
};

struct cm_pci_dev {
	uint8_t type, iommu;
	uint16_t domain, bdf;
	uint32_t bar_mask[6];
	uint16_t caps_start, num_caps;
	uint8_t num_msi_vectors;
	bool msi_64bits, msi_maskable;
	uint16_t num_msix_vectors, msix_region_size;
	uint64_t msix_address;
	uint32_t shmem_regions_start;
	uint8_t shmem_dev_id, shmem_peers;
	uint16_t shmem_protocol;
};

struct cm_pci_cap {
	uint16_t id, start, len, flags;
};

struct cm_iommu {
	uint32_t type;
	uint64_t base;
	uint32_t size;
};

/* One cell descriptor plus its arrays (the whole file for a cell config, the
 * embedded root cell for a system config). */
struct cm_cell {
	char name[CM_CELL_NAMELEN + 1];  /* always NUL-terminated copy */
	bool name_terminated;            /* the file had a NUL within 32 bytes */
	uint32_t flags;
	uint32_t cpu_set_size;
	uint32_t num_mem, num_cache, num_irqchips, num_pio, num_pci, num_caps,
		 num_stream_ids;
	uint32_t vpci_irq_base;
	uint64_t cpu_reset_address;
	uint64_t msg_reply_timeout;
	struct cm_console console;

	const uint8_t *cpus;             /* points into cm_config.blob */
	struct cm_mem *mem;
	struct cm_cache *cache;
	struct cm_irqchip *irqchips;
	struct cm_pio *pio;
	struct cm_pci_dev *pci;
	struct cm_pci_cap *caps;
	uint32_t *stream_ids;
};

struct cm_system {
	uint32_t flags;
	struct cm_mem hv_mem;
	struct cm_console debug_console;
	uint64_t mmconfig_base;
	uint8_t mmconfig_end_bus;
	uint8_t pci_is_virtual;
	uint16_t pci_domain;
	struct cm_iommu iommu[CM_SYS_IOMMU_UNITS];
	/* arch union; which half is meaningful depends on cm_config.arch */
	struct {
		uint16_t pm_timer_address;
		uint8_t apic_mode;
		uint32_t vtd_interrupt_limit, tsc_khz, apic_khz;
	} x86;
	struct {
		uint8_t maintenance_irq, gic_version;
		uint64_t gicd_base, gicc_base, gich_base, gicv_base, gicr_base;
	} arm;
};

struct cm_config {
	enum cm_cfg_kind kind;
	unsigned revision;
	/* rev 14: from the file; rev 12/13: the caller's assumption (the files
	 * do not record it), see arch_from_file. */
	enum cm_arch arch;
	bool arch_from_file;
	uint8_t *blob;        /* owned copy of the file */
	size_t len;
	struct cm_system sys; /* only for CM_CFG_SYSTEM */
	struct cm_cell cell;  /* the cell, or the root cell of a system config */
};

/* Parse a configuration.  assume_arch is used for rev 12/13 files, which do
 * not record their architecture (it decides the rev-12 system layout).
 * On success *out is a new config to free with cm_config_free().
 * Errors: -EINVAL (not a config / bad layout, err says which field),
 * -ENOMEM. */
int cm_config_parse(const void *data, size_t len, enum cm_arch assume_arch,
		    struct cm_config **out, struct cm_err *err);

/* Read the whole file (bounded to 64 MiB) and parse it.  Errors from open/read
 * are returned as negative errno with err naming the file. */
int cm_config_load(const char *path, enum cm_arch assume_arch,
		   struct cm_config **out, struct cm_err *err);

void cm_config_free(struct cm_config *cfg);

/* Header size before the root cell descriptor in a system config. */
size_t cm_system_header_size(unsigned revision);

/* CPU helpers over the cell's bitmap. */
bool cm_cell_has_cpu(const struct cm_cell *cell, unsigned cpu);
unsigned cm_cell_cpu_count(const struct cm_cell *cell);
/* Format as "2-3,5"; returns buf. */
/* Set bits of a bitmap as a list ("0-3,8"), each plus base; "" if none,
 * ending in "..." where buf is too short. */
char *cm_bits_str(const uint8_t *bits, size_t nbits, uint64_t base, char *buf, size_t len);
char *cm_cell_cpus_str(const struct cm_cell *cell, char *buf, size_t len);

/* Region classification shared by check, show and the Linux boot code. */
bool cm_mem_is_ram(const struct cm_mem *m);   /* R|W|X|DMA exactly (pyjailhouse) */
bool cm_mem_is_loadable(const struct cm_mem *m);  /* LOADABLE and WRITE */
/* "R W X DMA LOADABLE ..." into buf; returns buf. */
char *cm_mem_flags_str(uint64_t flags, char *buf, size_t len);

/* Read a whole file into a malloc'ed buffer (at most max bytes, else
 * -EFBIG).  Used for configs and boot images. */
int cm_read_file(const char *path, size_t max, uint8_t **data, size_t *len,
		 struct cm_err *err);
