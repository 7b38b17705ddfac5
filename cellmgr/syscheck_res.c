/* Whole-system check: ivshmem links, PCI devices, PIO ports and interrupt
 * pins.  See syscheck.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cellmgr/proto.h"
#include "cellmgr/syscheck_int.h"

#define MAX_ENDPOINTS 4096u
#define MAX_RANGES    4096u   /* PIO ranges or irqchips per cell we look at */
#define GIC_PINS      1024u   /* u32 irq_bitmap[1024/32] in the ARM cell */
#define IOAPIC_PINS   128u

static const char *bdf_str(uint16_t bdf, char *buf, size_t len)
{
	snprintf(buf, len, "%02x:%02x.%u", bdf >> 8, (bdf >> 3) & 0x1f, bdf & 7);
	return buf;
}

/* ---- ivshmem ---- */

struct ep {
	unsigned party;
	const struct cm_pci_dev *d;
	const struct cm_mem *shm;     /* NULL when the regions are out of range */
};

static int ep_bdf_cmp(const void *a, const void *b)
{
	const struct ep *x = a, *y = b;

	if (x->d->bdf != y->d->bdf)
		return x->d->bdf < y->d->bdf ? -1 : 1;
	return x->party < y->party ? -1 : x->party > y->party;
}

static int ep_phys_cmp(const void *a, const void *b)
{
	const struct ep *x = a, *y = b;

	return x->shm[0].phys < y->shm[0].phys ? -1 : x->shm[0].phys > y->shm[0].phys;
}

static bool is_virtio(uint16_t proto)
{
	return cm_proto_kind(proto) == CM_PROTO_VIRTIO_BACK ||
	       cm_proto_kind(proto) == CM_PROTO_VIRTIO_FRONT;
}

/* Both ends of a virtio link: one back-end and front-ends of the same
 * device type.  Other protocols: the same value on every side. */
static void check_protocols(struct sc *s, const struct ep *g, size_t n)
{
	unsigned backs = 0, fronts = 0;
	char a[160], b[160], bs[16], pa[64], pb[64];

	for (size_t i = 0; i < n; i++) {
		enum cm_proto_kind k = cm_proto_kind(g[i].d->shmem_protocol);

		backs += k == CM_PROTO_VIRTIO_BACK;
		fronts += k == CM_PROTO_VIRTIO_FRONT;
	}
	for (size_t i = 1; i < n; i++) {
		uint16_t p0 = g[0].d->shmem_protocol, pi = g[i].d->shmem_protocol;
		bool virtio = backs || fronts;
		bool ok = virtio ? is_virtio(p0) && is_virtio(pi) &&
				   cm_proto_virtio_id(p0) == cm_proto_virtio_id(pi) : p0 == pi;

		if (ok)
			continue;
		cm_report_add(s->rep, virtio ? CM_SEV_ERR : CM_SEV_WARN,
			      "ivshmem link %s: %s speaks %s (0x%04x), %s speaks %s (0x%04x)",
			      bdf_str(g[0].d->bdf, bs, sizeof(bs)), sc_who(&s->p[g[0].party], a, sizeof(a)),
			      cm_proto_str(p0, pa, sizeof(pa)), p0, sc_who(&s->p[g[i].party], b, sizeof(b)),
			      cm_proto_str(pi, pb, sizeof(pb)), pi);
	}
	if (backs > 1)
		cm_report_add(s->rep, CM_SEV_ERR, "ivshmem link %s has %u virtio back-ends; a link has one",
			      bdf_str(g[0].d->bdf, bs, sizeof(bs)), backs);
	if (!backs && fronts && n == g[0].d->shmem_peers)
		cm_report_add(s->rep, CM_SEV_ERR, "ivshmem link %s has virtio front-ends only; one side "
			      "must be the back-end (0xc0xx)", bdf_str(g[0].d->bdf, bs, sizeof(bs)));
}

/* The hypervisor joins endpoints by BDF alone (ivshmem_init()) and trusts
 * each side's own region list: it checks neither the peer count nor that
 * both sides describe the same memory. */
static void check_link(struct sc *s, const struct ep *g, size_t n)
{
	char a[160], b[160], bs[16];
	const struct ep *x = &g[0];

	if (n == 1) {
		if (!s->p[x->party].root)
			cm_report_add(s->rep, CM_SEV_WARN, "ivshmem link %s of %s has no peer among the "
				      "checked configurations", bdf_str(x->d->bdf, bs, sizeof(bs)),
				      sc_who(&s->p[x->party], a, sizeof(a)));
		return;
	}
	if (n > x->d->shmem_peers)
		cm_report_add(s->rep, CM_SEV_ERR, "ivshmem link %s has %zu endpoints, but %s says %u peers",
			      bdf_str(x->d->bdf, bs, sizeof(bs)), n, sc_who(&s->p[x->party], a, sizeof(a)),
			      x->d->shmem_peers);
	for (size_t i = 1; i < n; i++) {
		const struct ep *y = &g[i];
		unsigned peers = x->d->shmem_peers < y->d->shmem_peers ? x->d->shmem_peers :
				 y->d->shmem_peers;

		sc_who(&s->p[x->party], a, sizeof(a));
		sc_who(&s->p[y->party], b, sizeof(b));
		bdf_str(x->d->bdf, bs, sizeof(bs));
		if (y->d->shmem_peers != x->d->shmem_peers)
			cm_report_add(s->rep, CM_SEV_ERR, "ivshmem link %s: %s says %u peers, %s says %u",
				      bs, a, x->d->shmem_peers, b, y->d->shmem_peers);
		for (size_t j = 0; j < i; j++)
			if (g[j].d->shmem_dev_id == y->d->shmem_dev_id)
				cm_report_add(s->rep, CM_SEV_ERR, "ivshmem link %s: %s and %s are both peer %u; "
					      "the second create fails with EBUSY", bs,
					      sc_who(&s->p[g[j].party], a, sizeof(a)), b, y->d->shmem_dev_id);
		sc_who(&s->p[x->party], a, sizeof(a));
		if (!x->shm || !y->shm)
			continue;
		for (unsigned k = 0; k < 2 + peers; k++) {
			const struct cm_mem *m = &x->shm[k], *o = &y->shm[k];

			if (m->size == o->size && (!m->size || m->phys == o->phys))
				continue;
			cm_report_add(s->rep, CM_SEV_ERR, "ivshmem link %s: the %s differs: %s has phys 0x%"
				      PRIx64 " size 0x%" PRIx64 " (region #%" PRIu64 "), %s has phys 0x%" PRIx64
				      " size 0x%" PRIx64 " (region #%" PRIu64 ")", bs,
				      k == 0 ? "state table" : k == 1 ? "r/w section" : "output section",
				      a, m->phys, m->size, (uint64_t)x->d->shmem_regions_start + k, b, o->phys,
				      o->size, (uint64_t)y->d->shmem_regions_start + k);
			break;
		}
	}
	check_protocols(s, g, n);
}

void sc_check_ivshmem(struct sc *s)
{
	struct ep *e = NULL, *byphys = NULL;
	size_t n = 0, nphys = 0;
	char a[160], b[160], b1[16], b2[16];

	e = calloc(MAX_ENDPOINTS, sizeof(*e));
	byphys = calloc(MAX_ENDPOINTS, sizeof(*byphys));
	if (!e || !byphys) {
		cm_report_add(s->rep, CM_SEV_ERR, "out of memory while checking ivshmem links");
		goto out;
	}
	for (unsigned i = 0; i < s->np; i++) {
		const struct cm_cell *c = &s->p[i].cfg->cell;

		for (uint32_t d = 0; d < c->num_pci; d++) {
			const struct cm_pci_dev *p = &c->pci[d];
			uint64_t last = (uint64_t)p->shmem_regions_start + 2 + p->shmem_peers;

			if (p->type != CM_PCI_TYPE_IVSHMEM)
				continue;
			if (n == MAX_ENDPOINTS) {
				cm_report_add(s->rep, CM_SEV_WARN, "more than %u ivshmem devices; the rest "
					      "are not checked", MAX_ENDPOINTS);
				goto check;
			}
			e[n] = (struct ep){ i, p, last <= c->num_mem ? &c->mem[p->shmem_regions_start] : NULL };
			if (e[n].shm && e[n].shm[0].size)
				byphys[nphys++] = e[n];
			n++;
		}
	}
check:
	qsort(e, n, sizeof(*e), ep_bdf_cmp);
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && e[j].d->bdf == e[i].d->bdf; j++)
			;
		check_link(s, &e[i], j - i);
	}
	/* The same shared memory behind two BDFs: the ends never meet. */
	qsort(byphys, nphys, sizeof(*byphys), ep_phys_cmp);
	for (size_t i = 1; i < nphys; i++) {
		const struct ep *x = &byphys[i - 1], *y = &byphys[i];

		if (x->shm[0].phys == y->shm[0].phys && x->d->bdf != y->d->bdf)
			cm_report_add(s->rep, CM_SEV_ERR, "ivshmem state table at phys 0x%" PRIx64 " is used "
				      "by link %s in %s and by link %s in %s; all peers of a link must use the "
				      "same BDF", x->shm[0].phys, bdf_str(x->d->bdf, b1, sizeof(b1)),
				      sc_who(&s->p[x->party], a, sizeof(a)), bdf_str(y->d->bdf, b2, sizeof(b2)),
				      sc_who(&s->p[y->party], b, sizeof(b)));
	}
out:
	free(e);
	free(byphys);
}

/* ---- PCI devices ---- */

struct dev {
	unsigned party;
	const struct cm_pci_dev *d;
};

static int dev_cmp(const void *a, const void *b)
{
	const struct dev *x = a, *y = b;
	uint32_t kx = (uint32_t)x->d->domain << 16 | x->d->bdf;
	uint32_t ky = (uint32_t)y->d->domain << 16 | y->d->bdf;

	if (kx != ky)
		return kx < ky ? -1 : 1;
	return x->party < y->party ? -1 : x->party > y->party;
}

static bool root_has_dev(const struct sc *s, const struct cm_pci_dev *d)
{
	const struct cm_cell *r = &s->sys->cell;

	for (uint32_t i = 0; i < r->num_pci; i++)
		if (r->pci[i].type != CM_PCI_TYPE_IVSHMEM && r->pci[i].domain == d->domain &&
		    r->pci[i].bdf == d->bdf)
			return true;
	return false;
}

/* hypervisor pci_cell_init(): a device is taken from the root cell if the
 * root has it, else simply added; a second cell gets it too. */
void sc_check_pci(struct sc *s)
{
	struct dev *v = calloc(MAX_ENDPOINTS, sizeof(*v));
	size_t n = 0;
	char a[160], b[160], bs[16];

	if (!v) {
		cm_report_add(s->rep, CM_SEV_ERR, "out of memory while checking PCI devices");
		return;
	}
	for (unsigned i = 0; i < s->np && n < MAX_ENDPOINTS; i++) {
		const struct cm_cell *c = &s->p[i].cfg->cell;

		if (s->p[i].root)
			continue;
		for (uint32_t k = 0; k < c->num_pci && n < MAX_ENDPOINTS; k++) {
			const struct cm_pci_dev *d = &c->pci[k];

			if (d->type == CM_PCI_TYPE_IVSHMEM)
				continue;
			v[n++] = (struct dev){ i, d };
			if (s->sys && !root_has_dev(s, d))
				cm_report_add(s->rep, CM_SEV_WARN, "%s has PCI device %04x:%s, which the root "
					      "cell does not own (a typo in the BDF?); the hypervisor hands it "
					      "over anyway", sc_who(&s->p[i], a, sizeof(a)), d->domain,
					      bdf_str(d->bdf, bs, sizeof(bs)));
		}
	}
	qsort(v, n, sizeof(*v), dev_cmp);
	for (size_t i = 1; i < n; i++)
		if (v[i].d->domain == v[i - 1].d->domain && v[i].d->bdf == v[i - 1].d->bdf &&
		    v[i].party != v[i - 1].party)
			cm_report_add(s->rep, CM_SEV_ERR, "PCI device %04x:%s is given to %s and to %s",
				      v[i].d->domain, bdf_str(v[i].d->bdf, bs, sizeof(bs)),
				      sc_who(&s->p[v[i - 1].party], a, sizeof(a)),
				      sc_who(&s->p[v[i].party], b, sizeof(b)));
	free(v);
}

/* ---- PIO ports (x86) ---- */

/* hypervisor vcpu_cell_init(): a cell's ports are opened for it and closed
 * for the root cell; nothing compares two non-root cells. */
void sc_check_pio(struct sc *s)
{
	uint8_t *root = NULL;
	uint16_t *owner = NULL;
	char a[160], b[160];

	if (s->arch != CM_ARCH_X86)
		return;
	root = calloc(65536 / 8, 1);
	owner = calloc(65536, sizeof(*owner));
	if (!root || !owner) {
		cm_report_add(s->rep, CM_SEV_ERR, "out of memory while checking PIO ports");
		goto out;
	}
	if (s->sys)
		for (uint32_t i = 0; i < s->sys->cell.num_pio && i < MAX_RANGES; i++)
			for (uint32_t p = s->sys->cell.pio[i].base;
			     p < 65536 && p < (uint32_t)s->sys->cell.pio[i].base + s->sys->cell.pio[i].length; p++)
				root[p / 8] |= (uint8_t)(1u << (p % 8));
	for (unsigned i = 0; i < s->np; i++) {
		const struct cm_cell *c = &s->p[i].cfg->cell;

		if (s->p[i].root)
			continue;
		if (c->num_pio > MAX_RANGES) {
			cm_report_add(s->rep, CM_SEV_WARN, "%s has %u PIO ranges; its ports are not checked "
				      "against other cells", sc_who(&s->p[i], a, sizeof(a)), c->num_pio);
			continue;
		}
		for (uint32_t r = 0; r < c->num_pio; r++) {
			uint32_t base = c->pio[r].base, end = base + c->pio[r].length;
			uint32_t missing = 0, clash = 0;
			unsigned other = 0;

			if (end > 65536)
				end = 65536;
			for (uint32_t p = base; p < end; p++) {
				if (s->sys && !((root[p / 8] >> (p % 8)) & 1))
					missing++;
				if (owner[p] && owner[p] != i + 1 && !clash++)
					other = owner[p] - 1u;
				owner[p] = (uint16_t)(i + 1);
			}
			if (missing)
				cm_report_add(s->rep, CM_SEV_WARN, "%s: PIO range #%u (0x%x-0x%x): the root cell "
					      "does not own %u of its ports; the hypervisor opens them anyway",
					      sc_who(&s->p[i], a, sizeof(a)), r, base, end - 1, missing);
			/* Upstream's own x86 demos share the debug UARTs on
			 * purpose, so this is only a warning. */
			if (clash)
				cm_report_add(s->rep, CM_SEV_WARN, "%s: PIO range #%u (0x%x-0x%x) shares %u ports "
					      "with %s; both cells can drive the device (fine for a shared "
					      "debug UART, wrong for anything with state)",
					      sc_who(&s->p[i], a, sizeof(a)), r, base, end - 1, clash,
					      sc_who(&s->p[other], b, sizeof(b)));
		}
	}
out:
	free(root);
	free(owner);
}

/* ---- interrupt pins ---- */

struct chip_owner {
	uint64_t address;
	uint16_t owner[GIC_PINS];      /* party index + 1 */
	uint8_t root[GIC_PINS / 8];
	bool root_has_chip;
	uint32_t root_id;
};

static struct chip_owner *find_chip(struct chip_owner *c, unsigned *n, uint64_t address)
{
	for (unsigned i = 0; i < *n; i++)
		if (c[i].address == address)
			return &c[i];
	if (*n == 64)
		return NULL;
	memset(&c[*n], 0, sizeof(c[*n]));
	c[*n].address = address;
	return &c[(*n)++];
}

/* Pins of one irqchip entry as absolute numbers [first, first + 128). */
static bool pin_set(const struct cm_irqchip *q, unsigned bit)
{
	return (q->pin_bitmap[bit / 32] >> (bit % 32)) & 1;
}

/* x86 ioapic_cell_init() / ARM irqchip_cell_init(): a cell's pins are
 * removed from the root cell; nothing compares two non-root cells.  On ARM
 * only entries at the system's GICD count, with pin_base a multiple of 32
 * and the 128 pins below 1024 (EINVAL otherwise); on x86 a non-root IOAPIC
 * must carry the root config's id for it (E2BIG at create otherwise,
 * jailhouse-dev Feb 2020). */
void sc_check_irqs(struct sc *s)
{
	struct chip_owner *chips = calloc(64, sizeof(*chips));
	unsigned nchips = 0;
	bool arm = s->arch == CM_ARCH_ARM || s->arch == CM_ARCH_ARM64;
	char a[160], b[160];

	if (!chips) {
		cm_report_add(s->rep, CM_SEV_ERR, "out of memory while checking interrupts");
		return;
	}
	for (unsigned i = 0; i < s->np; i++) {
		const struct cm_cell *c = &s->p[i].cfg->cell;

		if (c->num_irqchips > MAX_RANGES) {
			cm_report_add(s->rep, CM_SEV_WARN, "%s has %u irqchips; its interrupts are not "
				      "checked against other cells", sc_who(&s->p[i], a, sizeof(a)),
				      c->num_irqchips);
			continue;
		}
		for (uint32_t k = 0; k < c->num_irqchips; k++) {
			const struct cm_irqchip *q = &c->irqchips[k];
			struct chip_owner *o;
			uint8_t clash[GIC_PINS / 8] = { 0 }, missing[GIC_PINS / 8] = { 0 };
			bool any_clash = false, any_missing = false;
			unsigned other = 0;
			char list[256];

			if (arm && s->sys && q->address != s->sys->sys.arm.gicd_base) {
				cm_report_add(s->rep, CM_SEV_ERR, "%s: irqchip #%u at 0x%" PRIx64 " is not the GIC "
					      "distributor (0x%" PRIx64 "); the hypervisor ignores it, so the "
					      "cell gets none of its pins", sc_who(&s->p[i], a, sizeof(a)), k,
					      q->address, s->sys->sys.arm.gicd_base);
				continue;
			}
			if (arm && (q->pin_base % 32 || (uint64_t)q->pin_base + IOAPIC_PINS > GIC_PINS)) {
				cm_report_add(s->rep, CM_SEV_ERR, "%s: irqchip #%u has pin base %u; the hypervisor "
					      "needs a multiple of 32 of at most %u (EINVAL)",
					      sc_who(&s->p[i], a, sizeof(a)), k, q->pin_base,
					      GIC_PINS - IOAPIC_PINS);
				continue;
			}
			if (!arm && q->pin_base)
				continue;   /* the per-file check reports it */
			o = find_chip(chips, &nchips, q->address);
			if (!o) {
				cm_report_add(s->rep, CM_SEV_WARN, "more than 64 irqchip addresses; the rest "
					      "are not checked");
				goto out;
			}
			if (s->p[i].root) {
				o->root_has_chip = true;
				o->root_id = q->id;
				for (unsigned bit = 0; bit < IOAPIC_PINS; bit++)
					if (pin_set(q, bit))
						o->root[(q->pin_base + bit) / 8] |= (uint8_t)(1u << ((q->pin_base + bit) % 8));
				continue;
			}
			if (!arm && s->sys && o->root_has_chip && o->root_id != q->id)
				cm_report_add(s->rep, CM_SEV_ERR, "%s: irqchip #%u at 0x%" PRIx64 " has id 0x%x, the "
					      "root config has 0x%x for it; creating the cell fails with E2BIG",
					      sc_who(&s->p[i], a, sizeof(a)), k, q->address, q->id, o->root_id);
			if (!arm && s->sys && !o->root_has_chip)
				cm_report_add(s->rep, CM_SEV_WARN, "%s: irqchip #%u at 0x%" PRIx64 " is not in the "
					      "root config", sc_who(&s->p[i], a, sizeof(a)), k, q->address);
			for (unsigned bit = 0; bit < IOAPIC_PINS; bit++) {
				unsigned pin = q->pin_base + bit;

				/* SGIs and PPIs are per CPU; the hypervisor sets them itself */
				if (!pin_set(q, bit) || (arm && pin < 32))
					continue;
				if (s->sys && o->root_has_chip && !((o->root[pin / 8] >> (pin % 8)) & 1)) {
					missing[pin / 8] |= (uint8_t)(1u << (pin % 8));
					any_missing = true;
				}
				if (o->owner[pin] && o->owner[pin] != i + 1) {
					if (!any_clash)
						other = o->owner[pin] - 1u;
					clash[pin / 8] |= (uint8_t)(1u << (pin % 8));
					any_clash = true;
				}
				o->owner[pin] = (uint16_t)(i + 1);
			}
			if (any_missing)
				cm_report_add(s->rep, CM_SEV_WARN, "%s: irqchip #%u at 0x%" PRIx64 ": the root cell "
					      "does not own pins %s; the hypervisor hands them over anyway",
					      sc_who(&s->p[i], a, sizeof(a)), k, q->address,
					      cm_bits_str(missing, GIC_PINS, 0, list, sizeof(list)));
			if (any_clash)
				cm_report_add(s->rep, CM_SEV_ERR, "%s: irqchip #%u at 0x%" PRIx64 ": pins %s are "
					      "also given to %s", sc_who(&s->p[i], a, sizeof(a)), k, q->address,
					      cm_bits_str(clash, GIC_PINS, 0, list, sizeof(list)),
					      sc_who(&s->p[other], b, sizeof(b)));
		}
	}
out:
	free(chips);
}
