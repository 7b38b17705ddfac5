#include <stdlib.h>
#include <string.h>
#include "cfgwriter.h"

static void w16(uint8_t *p, size_t o, uint16_t v) { p[o] = v & 0xff; p[o + 1] = v >> 8; }
static void w32(uint8_t *p, size_t o, uint32_t v) { w16(p, o, v & 0xffff); w16(p, o + 2, v >> 16); }
static void w64(uint8_t *p, size_t o, uint64_t v) { w32(p, o, (uint32_t)v); w32(p, o + 4, v >> 32); }

static size_t cell_size(const struct cw_cell *c)
{
	return 132 + 8 + 32u * c->nmem + 12u * c->ncache + 32u * c->nirq + 4u * c->npio +
	       56u * c->npci + 8u * c->ncaps + 4u * c->nstream;
}

static void sig(uint8_t *p, unsigned rev, unsigned arch, bool sys)
{
	if (rev >= 14) {
		memcpy(p, sys ? "JHSYS" : "JHCLL", 5);
		p[5] = (uint8_t)arch;
	} else {
		memcpy(p, sys ? "JHSYST" : "JHCELL", 6);
	}
	w16(p, 6, (uint16_t)rev);
}

static void write_cell(uint8_t *p, const struct cw_cell *c)
{
	size_t o;

	strncpy((char *)p + 8, c->name, 32);
	w32(p, 44, c->flags);
	w32(p, 48, 8);
	w32(p, 52, c->nmem);
	w32(p, 56, c->ncache);
	w32(p, 60, c->nirq);
	w32(p, 64, c->npio);
	w32(p, 68, c->npci);
	w32(p, 72, c->ncaps);
	w32(p, 76, c->nstream);
	w32(p, 80, c->vpci_irq_base);
	w64(p, 84, c->cpu_reset);
	w64(p, 92, c->msg_reply_timeout);
	o = 132;
	w64(p, o, c->cpus);
	o += 8;
	for (unsigned i = 0; i < c->nmem; i++, o += 32) {
		w64(p, o, c->mem[i].phys);
		w64(p, o + 8, c->mem[i].virt);
		w64(p, o + 16, c->mem[i].size);
		w64(p, o + 24, c->mem[i].flags);
	}
	for (unsigned i = 0; i < c->ncache; i++, o += 12) {
		if (!c->cache)
			continue;
		w32(p, o, c->cache[i].start);
		w32(p, o + 4, c->cache[i].size);
		p[o + 8] = c->cache[i].type;
		w16(p, o + 10, c->cache[i].flags);
	}
	for (unsigned i = 0; i < c->nirq; i++, o += 32) {
		w64(p, o, c->irq[i].address);
		w32(p, o + 8, c->irq[i].id);
		w32(p, o + 12, c->irq[i].pin_base);
		for (int k = 0; k < 4; k++)
			w32(p, o + 16 + 4 * k, c->irq[i].pins[k]);
	}
	for (unsigned i = 0; i < c->npio; i++, o += 4) {
		w16(p, o, c->pio[i].base);
		w16(p, o + 2, c->pio[i].length);
	}
	for (unsigned i = 0; i < c->npci; i++, o += 56) {
		const struct cw_pci *d = &c->pci[i];

		p[o] = d->type;
		p[o + 1] = d->iommu;
		w16(p, o + 2, d->domain);
		w16(p, o + 4, d->bdf);
		for (int k = 0; k < 6; k++)
			w32(p, o + 6 + 4 * k, d->custom_bars ? d->bars[k] : k < 2 ? 0xfffff000 : 0);
		w16(p, o + 30, d->caps_start);
		w16(p, o + 32, d->num_caps);
		p[o + 34] = d->msi_vectors;
		p[o + 35] = d->msi_flags;
		w16(p, o + 36, d->num_msix);
		w16(p, o + 38, d->msix_size);
		w64(p, o + 40, d->msix_address);
		w32(p, o + 48, d->shmem_start);
		p[o + 52] = d->dev_id;
		p[o + 53] = d->peers;
		w16(p, o + 54, d->proto);
	}
	for (unsigned i = 0; i < c->ncaps; i++, o += 8) {
		if (!c->caps)
			continue;
		w16(p, o, c->caps[i].id);
		w16(p, o + 2, c->caps[i].start);
		w16(p, o + 4, c->caps[i].len);
		w16(p, o + 6, c->caps[i].flags);
	}
	for (unsigned i = 0; i < c->nstream; i++, o += 4)
		if (c->streams)
			w32(p, o, c->streams[i]);
}

uint8_t *cw_build(unsigned rev, unsigned arch, const struct cw_sys *s,
		  const struct cw_cell *c, size_t *len)
{
	size_t hdr = s ? (rev == 12 ? 354 : 356) : 0;
	size_t total = hdr + cell_size(c);
	uint8_t *p = calloc(1, total);

	if (!p)
		return NULL;
	sig(p, rev, arch, s != NULL);
	if (s) {
		size_t iommu;

		w64(p, 12, s->hv_phys);
		w64(p, 20, s->hv_phys);
		w64(p, 28, s->hv_size);
		w64(p, 36, 0x7);
		w64(p, 76, s->mmcfg_base);
		p[84] = s->mmcfg_end_bus;
		if (rev >= 13) {
			iommu = 88;
			if (arch == CW_X86) {
				w16(p, 312, s->pm_timer);
				p[314] = s->apic_mode;
				w32(p, 316, s->vtd_limit);
				w32(p, 320, s->tsc_khz);
				w32(p, 324, s->apic_khz);
			} else {
				p[312] = s->maint_irq;
				p[313] = s->gic_version;
				w64(p, 316, s->gicd);
				w64(p, 324, s->gicc);
				w64(p, 332, s->gich);
				w64(p, 340, s->gicv);
				w64(p, 348, s->gicr);
			}
		} else if (arch == CW_X86) {
			w16(p, 88, s->pm_timer);
			w32(p, 90, s->vtd_limit);
			p[94] = s->apic_mode;
			w32(p, 98, s->tsc_khz);
			w32(p, 102, s->apic_khz);
			iommu = 106;
		} else {
			p[88] = s->maint_irq;
			p[89] = s->gic_version;
			w64(p, 90, s->gicd);
			w64(p, 98, s->gicc);
			w64(p, 106, s->gich);
			w64(p, 114, s->gicv);
			w64(p, 122, s->gicr);
			iommu = 130;
		}
		if (s->iommu0_base) {
			w32(p, iommu, 2);
			w64(p, iommu + 4, s->iommu0_base);
			w32(p, iommu + 12, 0x1000);
		}
	}
	write_cell(p + hdr, c);
	*len = total;
	return p;
}
