/* Whole-system check: revisions, names, CPUs and memory.  See syscheck.h;
 * devices, ports and interrupts are in syscheck_res.c. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cellmgr/syscheck_int.h"

#define PAGE 0x1000ull

const char *sc_who(const struct sc_party *p, char *buf, size_t len)
{
	snprintf(buf, len, "%scell \"%s\" (%s)", p->root ? "the root " : "", p->cfg->cell.name,
		 p->file);
	return buf;
}


static void check_consistency(struct sc *s)
{
	char a[160], b[160];

	for (unsigned i = 0; i < s->np; i++) {
		const struct sc_party *x = &s->p[i];

		if (!x->root && x->cfg->kind != CM_CFG_CELL)
			cm_report_add(s->rep, CM_SEV_ERR, "%s is a system configuration; only the first "
				      "file may be one", x->file);
		/* The driver accepts only the revision it was built with. */
		if (x->cfg->revision != s->p[0].cfg->revision)
			cm_report_add(s->rep, CM_SEV_ERR, "%s is revision %u but %s is revision %u; the "
				      "driver accepts only the revision it was built with",
				      sc_who(x, a, sizeof(a)), x->cfg->revision,
				      sc_who(&s->p[0], b, sizeof(b)), s->p[0].cfg->revision);
		if (x->cfg->arch_from_file && s->p[0].cfg->arch_from_file &&
		    x->cfg->arch != s->p[0].cfg->arch)
			cm_report_add(s->rep, CM_SEV_ERR, "%s is for %s but %s is for %s",
				      sc_who(x, a, sizeof(a)), cm_arch_name(x->cfg->arch),
				      sc_who(&s->p[0], b, sizeof(b)), cm_arch_name(s->p[0].cfg->arch));
		/* hypervisor cell_create(): EEXIST for a name in use, root's too */
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(s->p[j].cfg->cell.name, x->cfg->cell.name))
				cm_report_add(s->rep, CM_SEV_ERR, "%s and %s have the same name; the second "
					      "create fails with EEXIST", sc_who(&s->p[j], a, sizeof(a)),
					      sc_who(x, b, sizeof(b)));
	}
}

static bool has_cpu(const struct cm_cell *c, size_t cpu)
{
	return cpu / 8 < c->cpu_set_size && ((c->cpus[cpu / 8] >> (cpu % 8)) & 1);
}

/* hypervisor cell_create(): the new cell's CPUs must all belong to the root
 * cell at that moment (EBUSY), and not include the CPU the request runs
 * on, which is one the root cell keeps. */
static void check_cpus(struct sc *s)
{
	size_t nbits = 0;
	uint8_t *bits, *all;
	char a[160], b[160], list[256];

	for (unsigned i = 0; i < s->np; i++)
		if ((size_t)s->p[i].cfg->cell.cpu_set_size * 8 > nbits)
			nbits = (size_t)s->p[i].cfg->cell.cpu_set_size * 8;
	if (nbits > CM_SYSCHECK_MAX_ITEMS) {
		cm_report_add(s->rep, CM_SEV_WARN, "CPU sets of %zu bits; CPUs between cells not checked",
			      nbits);
		return;
	}
	bits = calloc(nbits / 8 + 1, 1);
	all = calloc(nbits / 8 + 1, 1);
	if (!bits || !all) {
		cm_report_add(s->rep, CM_SEV_ERR, "out of memory while checking CPUs");
		goto out;
	}
	for (unsigned i = 0; i < s->np; i++) {
		const struct sc_party *x = &s->p[i];
		bool missing;

		if (x->root)
			continue;
		for (unsigned j = i + 1; j < s->np; j++) {
			bool any = false;

			memset(bits, 0, nbits / 8 + 1);
			for (size_t c = 0; c < (size_t)x->cfg->cell.cpu_set_size * 8; c++)
				if (has_cpu(&x->cfg->cell, c) && has_cpu(&s->p[j].cfg->cell, c)) {
					bits[c / 8] |= (uint8_t)(1u << (c % 8));
					any = true;
				}
			if (any)
				cm_report_add(s->rep, CM_SEV_ERR, "CPU %s claimed by %s and %s; creating the "
					      "second fails with EBUSY",
					      cm_bits_str(bits, nbits, 0, list, sizeof(list)),
					      sc_who(x, a, sizeof(a)), sc_who(&s->p[j], b, sizeof(b)));
		}
		if (!s->sys)
			continue;
		memset(bits, 0, nbits / 8 + 1);
		missing = false;
		for (size_t c = 0; c < (size_t)x->cfg->cell.cpu_set_size * 8; c++) {
			if (!has_cpu(&x->cfg->cell, c))
				continue;
			all[c / 8] |= (uint8_t)(1u << (c % 8));
			if (!has_cpu(&s->p[0].cfg->cell, c)) {
				bits[c / 8] |= (uint8_t)(1u << (c % 8));
				missing = true;
			}
		}
		if (missing)
			cm_report_add(s->rep, CM_SEV_ERR, "%s uses CPU %s, which the root cell does not own; "
				      "creating it fails with EBUSY", sc_who(x, a, sizeof(a)),
				      cm_bits_str(bits, nbits, 0, list, sizeof(list)));
	}
	if (s->sys && cm_cell_cpu_count(&s->p[0].cfg->cell)) {
		size_t c;

		for (c = 0; c < (size_t)s->p[0].cfg->cell.cpu_set_size * 8; c++)
			if (has_cpu(&s->p[0].cfg->cell, c) && !((all[c / 8] >> (c % 8)) & 1))
				break;
		if (c == (size_t)s->p[0].cfg->cell.cpu_set_size * 8 && s->np > 1)
			cm_report_add(s->rep, CM_SEV_ERR, "the non-root cells take every CPU of the root "
				      "cell; the root cell must keep one to create the last of them");
	}
out:
	free(bits);
	free(all);
}

struct resv {
	uint64_t base, size;
	char what[48];
};

static void add_resv(struct resv *r, unsigned *n, unsigned max, uint64_t base, uint64_t size,
		     const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void add_resv(struct resv *r, unsigned *n, unsigned max, uint64_t base, uint64_t size,
		     const char *fmt, ...)
{
	va_list ap;

	if (*n >= max || !size)
		return;
	r[*n].base = base;
	r[*n].size = size;
	va_start(ap, fmt);
	vsnprintf(r[*n].what, sizeof(r[*n].what), fmt, ap);
	va_end(ap);
	(*n)++;
}

/* What upstream's `jailhouse config check` lists as hypervisor-owned or
 * emulated, for every cell: hypervisor memory, MMCONFIG, IOMMUs, and the
 * xAPIC page and IOAPICs (x86) or the GIC (ARM). */
static unsigned reserved_ranges(const struct sc *s, struct resv *r, unsigned max)
{
	const struct cm_system *y = &s->sys->sys;
	const struct cm_cell *root = &s->sys->cell;
	unsigned n = 0;

	add_resv(r, &n, max, y->hv_mem.phys, y->hv_mem.size, "the hypervisor memory");
	if (y->mmconfig_base)
		add_resv(r, &n, max, y->mmconfig_base, ((uint64_t)y->mmconfig_end_bus + 1) * 256 * 4096,
			 "PCI MMCONFIG");
	for (int i = 0; i < CM_SYS_IOMMU_UNITS; i++)
		if (y->iommu[i].type || y->iommu[i].base)
			add_resv(r, &n, max, y->iommu[i].base, y->iommu[i].size ? y->iommu[i].size : PAGE,
				 "IOMMU unit %d", i);
	if (s->sys->arch == CM_ARCH_X86) {
		add_resv(r, &n, max, 0xfee00000ull, PAGE, "the xAPIC page");
		for (uint32_t i = 0; i < root->num_irqchips && i < 64; i++)
			add_resv(r, &n, max, root->irqchips[i].address, PAGE, "IOAPIC #%u", i);
	} else if (y->arm.gic_version == 2) {
		add_resv(r, &n, max, y->arm.gicd_base, 0x1000, "the GICD");
		add_resv(r, &n, max, y->arm.gicc_base, 0x2000, "the GICC");
		add_resv(r, &n, max, y->arm.gich_base, 0x2000, "the GICH");
		add_resv(r, &n, max, y->arm.gicv_base, 0x2000, "the GICV");
	} else if (y->arm.gic_version == 3) {
		add_resv(r, &n, max, y->arm.gicd_base, 0x10000, "the GICD");
		add_resv(r, &n, max, y->arm.gicr_base, 0x20000, "the GICR");
	}
	return n;
}

static bool overlap(uint64_t a, uint64_t asz, uint64_t b, uint64_t bsz)
{
	uint64_t aend = a + asz < a ? UINT64_MAX : a + asz;
	uint64_t bend = b + bsz < b ? UINT64_MAX : b + bsz;

	return asz && bsz && a < bend && b < aend;
}

struct mspan {
	uint64_t start, end;
	unsigned party;
	uint32_t idx;
	bool shared;
};

static int mspan_cmp(const void *a, const void *b)
{
	const struct mspan *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->party != y->party)
		return x->party < y->party ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Memory a non-root cell takes from the root cell (not ROOTSHARED) is
 * unmapped from the root and mapped into that cell only; the hypervisor
 * does not compare cells with each other, so a second cell would get the
 * same memory silently. */
static void check_memory(struct sc *s)
{
	struct resv resv[96];
	unsigned nresv = s->sys ? reserved_ranges(s, resv, 96) : 0;
	struct mspan *sp = NULL;
	size_t n = 0, total = 0, reported = 0;
	char a[160], b[160];

	for (unsigned i = 0; i < s->np; i++)
		if (!s->p[i].root)
			total += s->p[i].cfg->cell.num_mem;
	if (total > CM_SYSCHECK_MAX_ITEMS) {
		cm_report_add(s->rep, CM_SEV_WARN, "%zu memory regions; memory between cells not checked",
			      total);
		return;
	}
	sp = calloc(total ? total : 1, sizeof(*sp));
	if (!sp) {
		cm_report_add(s->rep, CM_SEV_ERR, "out of memory while checking memory");
		return;
	}
	for (unsigned i = 0; i < s->np; i++) {
		const struct cm_cell *c = &s->p[i].cfg->cell;

		if (s->p[i].root)
			continue;
		for (uint32_t r = 0; r < c->num_mem; r++) {
			const struct cm_mem *m = &c->mem[r];

			if (!m->size || (m->flags & CM_MEM_COMM_REGION) || m->phys + m->size < m->phys)
				continue;
			for (unsigned k = 0; k < nresv; k++)
				if (overlap(m->phys, m->size, resv[k].base, resv[k].size))
					cm_report_add(s->rep, CM_SEV_ERR, "%s: memory region #%u (phys 0x%" PRIx64
						      "-0x%" PRIx64 ") overlaps %s (0x%" PRIx64 "-0x%" PRIx64 ")",
						      sc_who(&s->p[i], a, sizeof(a)), r, m->phys,
						      m->phys + m->size - 1, resv[k].what, resv[k].base,
						      resv[k].base + resv[k].size - 1);
			sp[n++] = (struct mspan){ m->phys, m->phys + m->size, i, r,
						  (m->flags & CM_MEM_ROOTSHARED) != 0 };
		}
	}
	qsort(sp, n, sizeof(*sp), mspan_cmp);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n && sp[j].start < sp[i].end; j++) {
			if (sp[i].party == sp[j].party || (sp[i].shared && sp[j].shared))
				continue;
			if (++reported > 1000) {
				cm_report_add(s->rep, CM_SEV_ERR, "more overlaps between cells; stopped");
				goto out;
			}
			cm_report_add(s->rep, CM_SEV_ERR, "%s: memory region #%u (phys 0x%" PRIx64 "-0x%"
				      PRIx64 ") overlaps region #%u (phys 0x%" PRIx64 "-0x%" PRIx64 ") of %s; "
				      "only regions that are ROOTSHARED on both sides may be shared",
				      sc_who(&s->p[sp[i].party], a, sizeof(a)), sp[i].idx, sp[i].start,
				      sp[i].end - 1, sp[j].idx, sp[j].start, sp[j].end - 1,
				      sc_who(&s->p[sp[j].party], b, sizeof(b)));
		}
out:
	free(sp);
}

void cm_system_check(const struct cm_config *sys, const char *sys_file,
		     const struct cm_config *const *cells, const char *const *files,
		     unsigned n, struct cm_report *rep)
{
	struct sc s = { .sys = sys, .rep = rep };

	s.p = calloc((size_t)n + 1, sizeof(*s.p));
	if (!s.p) {
		cm_report_add(rep, CM_SEV_ERR, "out of memory while checking the system");
		return;
	}
	if (sys)
		s.p[s.np++] = (struct sc_party){ sys, sys_file, true };
	for (unsigned i = 0; i < n; i++)
		s.p[s.np++] = (struct sc_party){ cells[i], files[i], false };
	if (!s.np)
		goto out;
	s.arch = s.p[0].cfg->arch;
	if (sys && sys->kind != CM_CFG_SYSTEM)
		cm_report_add(rep, CM_SEV_ERR, "%s is a cell configuration; the first file must be "
			      "the system configuration", sys_file);
	check_consistency(&s);
	check_cpus(&s);
	check_memory(&s);
	sc_check_ivshmem(&s);
	sc_check_pci(&s);
	sc_check_pio(&s);
	sc_check_irqs(&s);
out:
	free(s.p);
}
