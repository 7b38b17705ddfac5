/* Semantic checks of a configuration.  See cellcfg_check.h. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cellmgr/cellcfg_check.h"
#include "cellmgr/proto.h"

#define PAGE 0x1000ull

struct span {
	uint64_t start, end;   /* [start, end) ; end > start */
	uint32_t idx;
};

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

/* Report every region that starts before the furthest end seen so far:
 * O(n log n) instead of comparing all pairs (counts come from the file). */
static void report_overlaps(struct span *s, size_t n, const char *space,
			    struct cm_report *rep)
{
	uint64_t max_end = 0;
	uint32_t max_idx = 0;

	qsort(s, n, sizeof(*s), span_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i && s[i].start < max_end)
			cm_report_add(rep, CM_SEV_ERR,
				      "memory regions #%u and #%u overlap in %s address space "
				      "(at 0x%llx)", max_idx, s[i].idx, space,
				      (unsigned long long)s[i].start);
		if (!i || s[i].end > max_end) {
			max_end = s[i].end;
			max_idx = s[i].idx;
		}
	}
}

static void check_mem_overlaps(const struct cm_cell *c, struct cm_report *rep)
{
	struct span *phys, *virt;
	size_t np = 0, nv = 0;

	phys = calloc(c->num_mem ? c->num_mem : 1, sizeof(*phys));
	virt = calloc(c->num_mem ? c->num_mem : 1, sizeof(*virt));
	if (!phys || !virt) {
		cm_report_add(rep, CM_SEV_ERR, "out of memory while checking overlaps");
		goto out;
	}
	for (uint32_t i = 0; i < c->num_mem; i++) {
		const struct cm_mem *m = &c->mem[i];

		if (!m->size)
			continue;   /* e.g. an empty ivshmem R/W section */
		if (m->phys + m->size < m->phys || m->virt + m->size < m->virt)
			continue;   /* reported as wrap-around already */
		/* The comm region has no physical backing (phys is unused). */
		if (!(m->flags & CM_MEM_COMM_REGION))
			phys[np++] = (struct span){ m->phys, m->phys + m->size, i };
		virt[nv++] = (struct span){ m->virt, m->virt + m->size, i };
	}
	report_overlaps(phys, np, "physical", rep);
	report_overlaps(virt, nv, "guest-physical (virt)", rep);
out:
	free(phys);
	free(virt);
}

static bool ranges_overlap(uint64_t a, uint64_t asz, uint64_t b, uint64_t bsz)
{
	if (!asz || !bsz)
		return false;
	/* Saturate instead of wrapping: a wrapped region is reported elsewhere. */
	uint64_t aend = a + asz < a ? UINT64_MAX : a + asz;
	uint64_t bend = b + bsz < b ? UINT64_MAX : b + bsz;

	return a < bend && b < aend;
}

/* Root-cell regions must not cover hypervisor-owned or emulated ranges. */
static void check_reserved(const struct cm_cell *c, uint64_t base, uint64_t size,
			   const char *what, struct cm_report *rep)
{
	for (uint32_t i = 0; i < c->num_mem; i++) {
		const struct cm_mem *m = &c->mem[i];

		if (m->flags & CM_MEM_COMM_REGION)
			continue;
		if (ranges_overlap(m->phys, m->size, base, size))
			cm_report_add(rep, CM_SEV_ERR,
				      "memory region #%u (phys 0x%llx, size 0x%llx) overlaps %s "
				      "(0x%llx-0x%llx)", i, (unsigned long long)m->phys,
				      (unsigned long long)m->size, what,
				      (unsigned long long)base,
				      (unsigned long long)(base + size - 1));
	}
}

static void check_regions(const struct cm_config *cfg, struct cm_report *rep)
{
	const struct cm_cell *c = &cfg->cell;
	bool root = cfg->kind == CM_CFG_SYSTEM;
	unsigned comm = 0;
	char fl[160];

	for (uint32_t i = 0; i < c->num_mem; i++) {
		const struct cm_mem *m = &c->mem[i];
		uint64_t unknown = m->flags & ~CM_MEM_KNOWN_FLAGS;

		if (unknown)
			cm_report_add(rep, CM_SEV_ERR, "memory region #%u has unknown flag bits 0x%llx",
				      i, (unsigned long long)unknown);
		if (!m->size)
			continue;
		if (m->phys + m->size < m->phys || m->virt + m->size < m->virt) {
			cm_report_add(rep, CM_SEV_ERR,
				      "memory region #%u wraps around the address space "
				      "(phys 0x%llx / virt 0x%llx, size 0x%llx)", i,
				      (unsigned long long)m->phys, (unsigned long long)m->virt,
				      (unsigned long long)m->size);
			continue;
		}
		if (m->flags & CM_MEM_COMM_REGION) {
			comm++;
			if (root)
				cm_report_add(rep, CM_SEV_ERR,
					      "memory region #%u: the root cell cannot have a comm region", i);
			if (m->size != PAGE)
				cm_report_add(rep, CM_SEV_WARN,
					      "memory region #%u: comm region size 0x%llx, the hypervisor maps one page",
					      i, (unsigned long long)m->size);
		}
		if (!(m->flags & (CM_MEM_READ | CM_MEM_WRITE | CM_MEM_EXECUTE)) &&
		    !(m->flags & CM_MEM_COMM_REGION))
			cm_report_add(rep, CM_SEV_WARN,
				      "memory region #%u has no access rights (%s)", i,
				      cm_mem_flags_str(m->flags, fl, sizeof(fl)));
		if (m->flags & CM_MEM_LOADABLE) {
			if (root)
				cm_report_add(rep, CM_SEV_WARN,
					      "memory region #%u: LOADABLE has no meaning in the root cell", i);
			else if (!(m->flags & CM_MEM_WRITE))
				cm_report_add(rep, CM_SEV_ERR,
					      "memory region #%u is LOADABLE but not WRITE: the driver refuses to load into it", i);
		}
		if ((m->flags & CM_MEM_IO) && (m->flags & CM_MEM_EXECUTE))
			cm_report_add(rep, CM_SEV_WARN,
				      "memory region #%u: device memory (IO) marked executable", i);
		if ((m->flags & CM_MEM_IO_WIDTHS) && !(m->flags & CM_MEM_IO))
			cm_report_add(rep, CM_SEV_WARN,
				      "memory region #%u: IO access widths without IO flag", i);
		/* Unaligned regions are emulated by trapping every access: fine
		 * for small MMIO windows, wrong for RAM. */
		if (((m->virt | m->size) & (PAGE - 1)) && !(m->flags & CM_MEM_IO))
			cm_report_add(rep, CM_SEV_WARN,
				      "memory region #%u (virt 0x%llx, size 0x%llx) is not page-aligned; "
				      "such sub-page regions are trapped and emulated (meant for MMIO)",
				      i, (unsigned long long)m->virt, (unsigned long long)m->size);
		if (((m->phys ^ m->virt) & (PAGE - 1)) && !(m->flags & CM_MEM_COMM_REGION))
			cm_report_add(rep, CM_SEV_ERR,
				      "memory region #%u: phys 0x%llx and virt 0x%llx differ in their page offset",
				      i, (unsigned long long)m->phys, (unsigned long long)m->virt);
	}
	if (comm > 1)
		cm_report_add(rep, CM_SEV_ERR, "%u comm regions; a cell has at most one", comm);
	check_mem_overlaps(c, rep);
}

static void check_ivshmem(const struct cm_config *cfg, uint32_t di, struct cm_report *rep)
{
	const struct cm_cell *c = &cfg->cell;
	const struct cm_pci_dev *d = &c->pci[di];
	uint64_t first = d->shmem_regions_start;
	uint64_t last = first + 2 + (uint64_t)d->shmem_peers; /* exclusive */
	uint64_t out_size = 0, next_virt = 0;
	bool have_next = false;
	char ps[64];

	if (!d->shmem_peers || d->shmem_peers > CM_IVSHMEM_MAX_PEERS)
		cm_report_add(rep, CM_SEV_ERR, "pci device #%u (ivshmem): %u peers, must be 1..%d",
			      di, d->shmem_peers, CM_IVSHMEM_MAX_PEERS);
	if (d->shmem_dev_id >= d->shmem_peers || d->shmem_dev_id >= CM_IVSHMEM_MAX_PEERS)
		cm_report_add(rep, CM_SEV_ERR, "pci device #%u (ivshmem): peer id %u not below peer count %u",
			      di, d->shmem_dev_id, d->shmem_peers);
	if (d->num_msix_vectors > CM_IVSHMEM_MAX_MSIX)
		cm_report_add(rep, CM_SEV_ERR, "pci device #%u (ivshmem): %u MSI-X vectors, at most %d",
			      di, d->num_msix_vectors, CM_IVSHMEM_MAX_MSIX);
	switch (cm_proto_kind(d->shmem_protocol)) {
	case CM_PROTO_RESERVED:
		cm_report_add(rep, CM_SEV_WARN, "pci device #%u (ivshmem): protocol 0x%04x is in the reserved range",
			      di, d->shmem_protocol);
		break;
	case CM_PROTO_VIRTIO_FRONT:
	case CM_PROTO_VIRTIO_BACK:
		if (d->shmem_peers != 2)
			cm_report_add(rep, CM_SEV_WARN, "pci device #%u (%s): virtio links have 2 peers, this has %u",
				      di, cm_proto_str(d->shmem_protocol, ps, sizeof(ps)), d->shmem_peers);
		if (cm_proto_kind(d->shmem_protocol) == CM_PROTO_VIRTIO_BACK &&
		    d->shmem_dev_id != 0)
			cm_report_add(rep, CM_SEV_WARN, "pci device #%u (%s): the back-end is usually peer 0, this is peer %u",
				      di, cm_proto_str(d->shmem_protocol, ps, sizeof(ps)), d->shmem_dev_id);
		break;
	default:
		break;
	}
	if (last > c->num_mem) {
		cm_report_add(rep, CM_SEV_ERR,
			      "pci device #%u (ivshmem): uses memory regions #%llu..#%llu, but there are only %u",
			      di, (unsigned long long)first, (unsigned long long)last - 1, c->num_mem);
		return;
	}
	for (uint64_t r = first; r < last; r++) {
		const struct cm_mem *m = &c->mem[r];
		unsigned k = (unsigned)(r - first);
		bool own_out = k == 2u + d->shmem_dev_id;

		if (k == 0 && !m->size)
			cm_report_add(rep, CM_SEV_ERR, "pci device #%u (ivshmem): state table (region #%llu) is empty",
				      di, (unsigned long long)r);
		if (k == 0 && (m->flags & CM_MEM_WRITE))
			cm_report_add(rep, CM_SEV_ERR, "pci device #%u (ivshmem): state table (region #%llu) must be read-only",
				      di, (unsigned long long)r);
		if (k >= 2) {
			if (k == 2)
				out_size = m->size;
			else if (m->size != out_size)
				cm_report_add(rep, CM_SEV_ERR,
					      "pci device #%u (ivshmem): output sections differ in size (region #%llu)",
					      di, (unsigned long long)r);
			if (m->size && !own_out && (m->flags & CM_MEM_WRITE))
				cm_report_add(rep, CM_SEV_ERR,
					      "pci device #%u (ivshmem): region #%llu is peer %u's output section but writable here (peer %u)",
					      di, (unsigned long long)r, k - 2, d->shmem_dev_id);
			if (m->size && own_out && !(m->flags & CM_MEM_WRITE))
				cm_report_add(rep, CM_SEV_ERR,
					      "pci device #%u (ivshmem): own output section (region #%llu) is not writable",
					      di, (unsigned long long)r);
		}
		if (m->size && cfg->kind == CM_CFG_CELL && !(m->flags & CM_MEM_ROOTSHARED))
			cm_report_add(rep, CM_SEV_WARN,
				      "pci device #%u (ivshmem): region #%llu lacks ROOTSHARED; it is unmapped from the root cell",
				      di, (unsigned long long)r);
		if (!m->size)
			continue;
		/* The device exposes the sections as one window: they must be
		 * consecutive in the cell's address space. */
		if (have_next && m->virt != next_virt)
			cm_report_add(rep, CM_SEV_ERR,
				      "pci device #%u (ivshmem): region #%llu at virt 0x%llx does not follow the previous section (expected 0x%llx)",
				      di, (unsigned long long)r, (unsigned long long)m->virt,
				      (unsigned long long)next_virt);
		next_virt = m->virt + m->size;
		have_next = true;
	}
}

static void check_pci(const struct cm_config *cfg, struct cm_report *rep)
{
	const struct cm_cell *c = &cfg->cell;

	for (uint32_t i = 0; i < c->num_pci; i++) {
		const struct cm_pci_dev *d = &c->pci[i];

		if (d->type < CM_PCI_TYPE_DEVICE || d->type > CM_PCI_TYPE_IVSHMEM)
			cm_report_add(rep, CM_SEV_ERR, "pci device #%u has unknown type %u", i, d->type);
		if ((uint32_t)d->caps_start + d->num_caps > c->num_caps)
			cm_report_add(rep, CM_SEV_ERR,
				      "pci device #%u: capabilities #%u..+%u outside the %u listed",
				      i, d->caps_start, d->num_caps, c->num_caps);
		for (uint32_t j = 0; j < i; j++)
			if (c->pci[j].domain == d->domain && c->pci[j].bdf == d->bdf)
				cm_report_add(rep, CM_SEV_ERR,
					      "pci devices #%u and #%u have the same address %04x:%02x:%02x.%u",
					      j, i, d->domain, d->bdf >> 8, (d->bdf >> 3) & 0x1f, d->bdf & 7);
		if (d->type == CM_PCI_TYPE_IVSHMEM)
			check_ivshmem(cfg, i, rep);
		if (i > 4096) {
			cm_report_add(rep, CM_SEV_WARN, "more than 4096 pci devices; stopped checking");
			break;
		}
	}
}

static void check_cell_desc(const struct cm_config *cfg, struct cm_report *rep)
{
	const struct cm_cell *c = &cfg->cell;
	bool root = cfg->kind == CM_CFG_SYSTEM;
	uint32_t known = CM_CELL_PASSIVE_COMMREG | CM_CELL_TEST_DEVICE |
			 CM_CELL_VCONSOLE_PERMITTED | CM_CELL_VCONSOLE_ACTIVE;

	if (cfg->revision >= 13)
		known |= CM_CELL_AARCH32;
	if (!c->name_terminated)
		cm_report_add(rep, CM_SEV_ERR, "cell name is not NUL-terminated within 32 bytes");
	if (!c->name[0])
		cm_report_add(rep, CM_SEV_ERR, "cell name is empty");
	if (c->flags & ~known)
		cm_report_add(rep, CM_SEV_WARN, "unknown cell flag bits 0x%x for revision %u",
			      c->flags & ~known, cfg->revision);
	if (!c->cpu_set_size)
		cm_report_add(rep, CM_SEV_ERR, "cpu_set_size is 0");
	else if (c->cpu_set_size % 8)
		cm_report_add(rep, CM_SEV_WARN,
			      "cpu_set_size %u is not a multiple of 8 (the driver copies the set as 64-bit words)",
			      c->cpu_set_size);
	if (c->cpu_set_size && !cm_cell_cpu_count(c))
		cm_report_add(rep, CM_SEV_ERR, "the CPU set is empty");
	if (!root && cfg->arch == CM_ARCH_X86 && cm_cell_has_cpu(c, 0))
		cm_report_add(rep, CM_SEV_ERR, "CPU 0 is assigned to a non-root cell; x86 keeps CPU 0 in the root cell");
	/* Only the config is known here, not what will run in the cell: some
	 * inmates answer (apic-demo), Linux does not (cm_linux_plan() says so
	 * when it knows the cell boots Linux). */
	if (!root && !(c->flags & CM_CELL_PASSIVE_COMMREG))
		cm_report_add(rep, CM_SEV_WARN,
			      "the cell config does not set PASSIVE_COMMREG: while the cell runs, the hypervisor "
			      "waits for its answer through the comm region before shutting it down, loading or "
			      "destroying it, and after any other cell is created or destroyed (%s); only software "
			      "that implements the comm-region protocol answers",
			      c->msg_reply_timeout ? "msg_reply_timeout is set: then the cell is marked failed" :
			      "msg_reply_timeout 0: it waits forever");
	if ((c->flags & CM_CELL_AARCH32) && cfg->arch == CM_ARCH_X86)
		cm_report_add(rep, CM_SEV_WARN, "AARCH32 flag on an x86 config");
	/* x86 ioapic_cell_init() refuses any other pin base with EINVAL. */
	for (uint32_t i = 0; cfg->arch == CM_ARCH_X86 && i < c->num_irqchips; i++)
		if (c->irqchips[i].pin_base)
			cm_report_add(rep, CM_SEV_ERR, "irqchip #%u has pin base %u; x86 needs 0 (the "
				      "hypervisor refuses the cell with EINVAL)", i, c->irqchips[i].pin_base);
	for (uint32_t i = 0; i < c->num_pio; i++)
		if ((uint32_t)c->pio[i].base + c->pio[i].length > 0x10000)
			cm_report_add(rep, CM_SEV_ERR, "pio region #%u (0x%x, length 0x%x) exceeds port 0xffff",
				      i, c->pio[i].base, c->pio[i].length);
	if (c->console.type > 0xa)
		cm_report_add(rep, CM_SEV_WARN, "cell console has unknown type %u", c->console.type);
	for (uint32_t i = 0; i < c->num_cache; i++)
		if (c->cache[i].type < 1 || c->cache[i].type > 3)
			cm_report_add(rep, CM_SEV_WARN, "cache region #%u has unknown type %u", i, c->cache[i].type);
}

static void check_system(const struct cm_config *cfg, struct cm_report *rep)
{
	const struct cm_system *s = &cfg->sys;
	const struct cm_cell *c = &cfg->cell;

	if (!s->hv_mem.size)
		cm_report_add(rep, CM_SEV_ERR, "hypervisor memory size is 0");
	else
		check_reserved(c, s->hv_mem.phys, s->hv_mem.size, "the hypervisor memory", rep);
	if (s->debug_console.type > 0xa)
		cm_report_add(rep, CM_SEV_WARN, "debug console has unknown type %u", s->debug_console.type);
	if (s->mmconfig_base)
		check_reserved(c, s->mmconfig_base,
			       ((uint64_t)s->mmconfig_end_bus + 1) * 256 * 4096,
			       "the PCI MMCONFIG space", rep);
	for (int i = 0; i < CM_SYS_IOMMU_UNITS; i++) {
		char what[48];

		if (!s->iommu[i].type && !s->iommu[i].base)
			continue;
		if (s->iommu[i].type > 5)
			cm_report_add(rep, CM_SEV_WARN, "IOMMU unit %d has unknown type %u", i, s->iommu[i].type);
		snprintf(what, sizeof(what), "IOMMU unit %d", i);
		check_reserved(c, s->iommu[i].base, s->iommu[i].size ? s->iommu[i].size : PAGE,
			       what, rep);
	}
	if (cfg->arch == CM_ARCH_X86) {
		check_reserved(c, 0xfee00000, PAGE, "the xAPIC page", rep);
		for (uint32_t i = 0; i < c->num_irqchips; i++) {
			char what[48];

			snprintf(what, sizeof(what), "IOAPIC #%u", i);
			check_reserved(c, c->irqchips[i].address, PAGE, what, rep);
		}
		if (s->x86.apic_mode > 2)
			cm_report_add(rep, CM_SEV_WARN, "unknown apic_mode %u", s->x86.apic_mode);
	} else if (cfg->arch == CM_ARCH_ARM || cfg->arch == CM_ARCH_ARM64) {
		if (s->arm.gic_version == 2) {
			check_reserved(c, s->arm.gicd_base, 0x1000, "the GICD", rep);
			check_reserved(c, s->arm.gicc_base, 0x2000, "the GICC", rep);
			check_reserved(c, s->arm.gich_base, 0x2000, "the GICH", rep);
			check_reserved(c, s->arm.gicv_base, 0x2000, "the GICV", rep);
		} else if (s->arm.gic_version == 3) {
			check_reserved(c, s->arm.gicd_base, 0x10000, "the GICD", rep);
			check_reserved(c, s->arm.gicr_base, 0x20000, "the GICR", rep);
		} else {
			/* irqchip_cpu_init() fails with EINVAL at enable for
			 * anything else; GICv4 hardware is configured as 3. */
			cm_report_add(rep, CM_SEV_ERR, "GIC version %u: the hypervisor accepts only 2 or 3 "
				      "(use 3 for a GICv4) and refuses to enable otherwise",
				      s->arm.gic_version);
		}
	}
}

void cm_config_check(const struct cm_config *cfg, enum cm_arch expected_arch,
		     struct cm_report *rep)
{
	if (cfg->arch_from_file && expected_arch != CM_ARCH_UNKNOWN &&
	    cfg->arch != expected_arch)
		cm_report_add(rep, CM_SEV_ERR,
			      "configuration is for %s, expected %s (the driver rejects a system config; "
			      "it silently accepts a cell config of the wrong architecture)",
			      cm_arch_name(cfg->arch), cm_arch_name(expected_arch));
	check_cell_desc(cfg, rep);
	check_regions(cfg, rep);
	check_pci(cfg, rep);
	if (cfg->kind == CM_CFG_SYSTEM)
		check_system(cfg, rep);
}
