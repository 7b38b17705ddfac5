/* `config show`.  See cellcfg_show.h. */
#include <inttypes.h>
#include "cellmgr/cellcfg_show.h"
#include "cellmgr/proto.h"

static const char *pci_type_name(uint8_t t)
{
	switch (t) {
	case CM_PCI_TYPE_DEVICE: return "device";
	case CM_PCI_TYPE_BRIDGE: return "bridge";
	case CM_PCI_TYPE_IVSHMEM: return "ivshmem";
	default: return "unknown";
	}
}

static const char *console_type_name(uint16_t t)
{
	static const char *const n[] = { "none", "efifb", "8250", "pl011", "xuartps",
					 "mvebu", "hscif", "scifa", "imx", "imx-lpuart", "scif" };
	return t < sizeof(n) / sizeof(n[0]) ? n[t] : "unknown";
}

static void show_flags(FILE *out, uint32_t f)
{
	fprintf(out, "0x%08x", f);
	if (f & CM_CELL_PASSIVE_COMMREG) fputs(" PASSIVE_COMMREG", out);
	if (f & CM_CELL_TEST_DEVICE) fputs(" TEST_DEVICE", out);
	if (f & CM_CELL_AARCH32) fputs(" AARCH32", out);
	if (f & CM_CELL_VCONSOLE_PERMITTED) fputs(" VIRTUAL_CONSOLE_PERMITTED", out);
	if (f & CM_CELL_VCONSOLE_ACTIVE) fputs(" VIRTUAL_CONSOLE_ACTIVE", out);
	fputc('\n', out);
}

/* Print the set bits of a bitmap as "3-4,140" with base added, "(none)" if
 * there are none. */
static void show_bits(FILE *out, const uint32_t *words, unsigned nwords, uint64_t base)
{
	unsigned nbits = nwords * 32, n = 0;

	for (unsigned i = 0; i < nbits; i++) {
		unsigned j;

		if (!((words[i / 32] >> (i % 32)) & 1))
			continue;
		for (j = i; j + 1 < nbits && ((words[(j + 1) / 32] >> ((j + 1) % 32)) & 1); j++)
			;
		fprintf(out, "%s%" PRIu64, n++ ? "," : "", base + i);
		if (j > i)
			fprintf(out, "-%" PRIu64, base + j);
		i = j;
	}
	if (!n)
		fputs("(none)", out);
}

static const char *iommu_type_name(uint32_t t)
{
	static const char *const n[] = { "unused", "amd", "intel", "smmuv3", "pvu", "arm-mmu500" };

	return t < sizeof(n) / sizeof(n[0]) ? n[t] : "unknown";
}

static void show_arch(const struct cm_config *cfg, FILE *out)
{
	const struct cm_system *s = &cfg->sys;
	static const char *const apic[] = { "auto", "xapic", "x2apic" };

	if (cfg->arch == CM_ARCH_X86) {
		fprintf(out, "x86:            pm timer 0x%x, apic mode %s, vtd interrupt limit %u, "
			"tsc %u kHz, apic %u kHz%s\n", s->x86.pm_timer_address,
			s->x86.apic_mode < 3 ? apic[s->x86.apic_mode] : "unknown",
			s->x86.vtd_interrupt_limit, s->x86.tsc_khz, s->x86.apic_khz,
			!s->x86.tsc_khz || !s->x86.apic_khz ? " (0: the driver measures it)" : "");
	} else if (cfg->arch == CM_ARCH_ARM || cfg->arch == CM_ARCH_ARM64) {
		fprintf(out, "gic:            version %u, maintenance irq %u\n", s->arm.gic_version,
			s->arm.maintenance_irq);
		fprintf(out, "                gicd 0x%" PRIx64 ", gicr 0x%" PRIx64 ", gicc 0x%" PRIx64
			", gich 0x%" PRIx64 ", gicv 0x%" PRIx64 "\n", s->arm.gicd_base, s->arm.gicr_base,
			s->arm.gicc_base, s->arm.gich_base, s->arm.gicv_base);
	}
}

static void show_caches_and_streams(const struct cm_cell *c, FILE *out)
{
	static const char *const type[] = { "?", "L3 code", "L3 data", "L3" };

	if (c->num_cache) {
		fprintf(out, "cache regions (%u):\n", c->num_cache);
		for (uint32_t i = 0; i < c->num_cache; i++)
			fprintf(out, "  #%-3u start %u size %u %s%s\n", i, c->cache[i].start, c->cache[i].size,
				c->cache[i].type < 4 ? type[c->cache[i].type] : "unknown type",
				(c->cache[i].flags & 1) ? " ROOTSHARED" : "");
	}
	if (c->num_stream_ids) {
		fprintf(out, "stream ids (%u):", c->num_stream_ids);
		for (uint32_t i = 0; i < c->num_stream_ids; i++)
			fprintf(out, " 0x%x", c->stream_ids[i]);
		fputc('\n', out);
	}
}

static void show_pci(const struct cm_cell *c, FILE *out)
{
	fprintf(out, "pci devices (%u):\n", c->num_pci);
	for (uint32_t i = 0; i < c->num_pci; i++) {
		const struct cm_pci_dev *d = &c->pci[i];

		fprintf(out, "  #%-3u %04x:%02x:%02x.%u %-8s iommu %u, %u caps, MSI %u, MSI-X %u\n",
			i, d->domain, d->bdf >> 8, (d->bdf >> 3) & 0x1f, d->bdf & 7,
			pci_type_name(d->type), d->iommu, d->num_caps, d->num_msi_vectors,
			d->num_msix_vectors);
		fputs("       bar masks", out);
		for (int k = 0; k < 6; k++)
			fprintf(out, " 0x%08x", d->bar_mask[k]);
		fputc('\n', out);
		if (d->num_caps)
			fprintf(out, "       caps #%u..#%u\n", d->caps_start,
				d->caps_start + d->num_caps - 1);
		if (d->num_msi_vectors)
			fprintf(out, "       MSI%s%s\n", d->msi_64bits ? " 64-bit" : " 32-bit",
				d->msi_maskable ? ", maskable" : "");
		if (d->msix_address || d->msix_region_size)
			fprintf(out, "       MSI-X table at 0x%" PRIx64 ", region 0x%x bytes\n",
				d->msix_address, d->msix_region_size);
	}
	if (c->num_caps) {
		fprintf(out, "pci capabilities (%u):\n", c->num_caps);
		for (uint32_t i = 0; i < c->num_caps; i++) {
			const struct cm_pci_cap *k = &c->caps[i];

			fprintf(out, "  #%-3u %s id 0x%02x at 0x%03x, %u bytes%s\n", i,
				(k->id & 0x8000) ? "extended" : "        ", k->id & 0x7fff, k->start,
				k->len, (k->flags & 1) ? ", writable" : "");
		}
	}
}

static void show_links(const struct cm_config *cfg, FILE *out)
{
	const struct cm_cell *c = &cfg->cell;
	unsigned n = 0;
	char ps[64];

	for (uint32_t i = 0; i < c->num_pci; i++)
		n += c->pci[i].type == CM_PCI_TYPE_IVSHMEM;
	fprintf(out, "ivshmem links (%u):\n", n);
	for (uint32_t i = 0; i < c->num_pci; i++) {
		const struct cm_pci_dev *d = &c->pci[i];
		const char *role;

		if (d->type != CM_PCI_TYPE_IVSHMEM)
			continue;
		switch (cm_proto_kind(d->shmem_protocol)) {
		case CM_PROTO_VIRTIO_BACK: role = "virtio back-end (serves the device)"; break;
		case CM_PROTO_VIRTIO_FRONT: role = "virtio front-end (uses the device)"; break;
		default: role = "peer"; break;
		}
		fprintf(out, "  %04x:%02x:%02x.%u  protocol 0x%04x %s, class 0x%06x\n",
			d->domain, d->bdf >> 8, (d->bdf >> 3) & 0x1f, d->bdf & 7,
			d->shmem_protocol, cm_proto_str(d->shmem_protocol, ps, sizeof(ps)),
			0xff0000u | d->shmem_protocol);
		fprintf(out, "      this cell: peer %u of %u, %s; %u MSI-X vectors%s\n",
			d->shmem_dev_id, d->shmem_peers, role, d->num_msix_vectors,
			d->num_msix_vectors ? "" : " (INTx)");
		uint64_t first = d->shmem_regions_start;
		uint64_t last = first + 2 + d->shmem_peers;
		if (last > c->num_mem) {
			fprintf(out, "      shared memory regions #%" PRIu64 "..: out of range\n", first);
			continue;
		}
		for (uint64_t r = first; r < last; r++) {
			const struct cm_mem *m = &c->mem[r];
			unsigned k = (unsigned)(r - first);
			char label[32];

			if (k == 0)
				snprintf(label, sizeof(label), "state table");
			else if (k == 1)
				snprintf(label, sizeof(label), "r/w section");
			else
				snprintf(label, sizeof(label), "output peer %u%s", k - 2,
					 k - 2 == d->shmem_dev_id ? " (own)" : "");
			if (m->size)
				fprintf(out, "      #%-3" PRIu64 " %-20s virt 0x%" PRIx64 " size 0x%" PRIx64 "%s\n",
					r, label, m->virt, m->size,
					(m->flags & CM_MEM_WRITE) ? " rw" : " ro");
			else
				fprintf(out, "      #%-3" PRIu64 " %-20s (empty)\n", r, label);
		}
	}
}

void cm_config_show(const struct cm_config *cfg, FILE *out)
{
	const struct cm_cell *c = &cfg->cell;
	char buf[256];

	fprintf(out, "%s configuration, revision %u, architecture %s%s\n",
		cfg->kind == CM_CFG_SYSTEM ? "system (root cell)" : "cell",
		cfg->revision, cm_arch_name(cfg->arch),
		cfg->arch_from_file ? "" : " (assumed; not recorded before revision 14)");
	fprintf(out, "name:           \"%s\"\n", c->name);
	fprintf(out, "size:           %zu bytes\n", cfg->len);
	fputs("flags:          ", out);
	show_flags(out, c->flags);
	fprintf(out, "cpus:           %s (%u bytes of set)\n",
		cm_cell_cpus_str(c, buf, sizeof(buf)), c->cpu_set_size);
	if (cfg->kind == CM_CFG_CELL)
		fprintf(out, "cpu reset addr: 0x%" PRIx64 "\n", c->cpu_reset_address);
	if (c->console.type)
		fprintf(out, "console:        %s at 0x%" PRIx64 "%s\n",
			console_type_name(c->console.type), c->console.address,
			(c->console.flags & 1) ? " (MMIO)" : " (PIO)");

	if (cfg->kind == CM_CFG_SYSTEM) {
		const struct cm_system *s = &cfg->sys;

		fprintf(out, "hypervisor mem: phys 0x%" PRIx64 " size 0x%" PRIx64 "\n",
			s->hv_mem.phys, s->hv_mem.size);
		fprintf(out, "debug console:  %s at 0x%" PRIx64 "\n",
			console_type_name(s->debug_console.type), s->debug_console.address);
		if (s->mmconfig_base)
			fprintf(out, "pci mmconfig:   0x%" PRIx64 ", end bus 0x%02x, domain %u%s\n",
				s->mmconfig_base, s->mmconfig_end_bus, s->pci_domain,
				s->pci_is_virtual ? " (virtual host controller)" : "");
		for (int i = 0; i < CM_SYS_IOMMU_UNITS; i++)
			if (s->iommu[i].type || s->iommu[i].base)
				fprintf(out, "iommu %d:        type %u (%s) at 0x%" PRIx64 " size 0x%x\n",
					i, s->iommu[i].type, iommu_type_name(s->iommu[i].type),
					s->iommu[i].base, s->iommu[i].size);
		show_arch(cfg, out);
	}
	if (c->msg_reply_timeout)
		fprintf(out, "reply timeout:  %" PRIu64 " polls\n", c->msg_reply_timeout);
	if (c->vpci_irq_base)
		fprintf(out, "vpci irq base:  %u\n", c->vpci_irq_base);

	fprintf(out, "memory regions (%u):\n", c->num_mem);
	fprintf(out, "  %-4s %-18s %-18s %-12s %s\n", "#", "phys", "virt", "size", "flags");
	for (uint32_t i = 0; i < c->num_mem; i++) {
		const struct cm_mem *m = &c->mem[i];

		fprintf(out, "  %-4u 0x%016" PRIx64 " 0x%016" PRIx64 " 0x%-10" PRIx64 " %s\n",
			i, m->phys, m->virt, m->size,
			cm_mem_flags_str(m->flags, buf, sizeof(buf)));
	}
	if (cfg->kind == CM_CFG_CELL) {
		unsigned n = 0;

		fputs("loadable regions (guest addresses):\n", out);
		for (uint32_t i = 0; i < c->num_mem; i++) {
			const struct cm_mem *m = &c->mem[i];

			if (!(m->flags & CM_MEM_LOADABLE) || !m->size)
				continue;
			n++;
			fprintf(out, "  #%-3u 0x%" PRIx64 "-0x%" PRIx64 " (%" PRIu64 " KiB)%s\n",
				i, m->virt, m->virt + m->size - 1, m->size >> 10,
				(m->flags & CM_MEM_WRITE) ? "" : "  NOT WRITABLE: cannot be loaded");
		}
		if (!n)
			fputs("  (none)\n", out);
	}
	show_caches_and_streams(c, out);
	if (c->num_irqchips) {
		fprintf(out, "irqchips (%u):\n", c->num_irqchips);
		for (uint32_t i = 0; i < c->num_irqchips; i++) {
			fprintf(out, "  #%-3u 0x%" PRIx64 " id 0x%x pin base %u, pins ", i,
				c->irqchips[i].address, c->irqchips[i].id, c->irqchips[i].pin_base);
			show_bits(out, c->irqchips[i].pin_bitmap, 4, c->irqchips[i].pin_base);
			fputc('\n', out);
		}
	}
	if (c->num_pio) {
		fprintf(out, "pio regions (%u):\n", c->num_pio);
		for (uint32_t i = 0; i < c->num_pio; i++)
			fprintf(out, "  #%-3u 0x%04x length 0x%x\n", i, c->pio[i].base, c->pio[i].length);
	}
	show_pci(c, out);
	show_links(cfg, out);
}
