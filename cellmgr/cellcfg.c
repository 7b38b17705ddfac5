/* Parser for Jailhouse .cell files (revisions 12-14).  See cellcfg.h. */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cellmgr/cellcfg.h"
#include "core/le.h"

/* Element sizes of the arrays following a cell descriptor (§2.3/2.4). */
#define SZ_MEM     32u
#define SZ_CACHE   12u
#define SZ_IRQCHIP 32u
#define SZ_PIO      4u
#define SZ_PCI     56u
#define SZ_CAP      8u
#define SZ_STREAM   4u
#define SZ_IOMMU   28u

const char *cm_arch_name(enum cm_arch arch)
{
	switch (arch) {
	case CM_ARCH_X86: return "x86";
	case CM_ARCH_ARM: return "arm";
	case CM_ARCH_ARM64: return "arm64";
	default: return "unknown";
	}
}

int cm_arch_parse(const char *s, enum cm_arch *out)
{
	if (!strcmp(s, "x86") || !strcmp(s, "x86_64") || !strcmp(s, "i686"))
		*out = CM_ARCH_X86;
	else if (!strcmp(s, "arm") || !strcmp(s, "armv7l"))
		*out = CM_ARCH_ARM;
	else if (!strcmp(s, "arm64") || !strcmp(s, "aarch64"))
		*out = CM_ARCH_ARM64;
	else
		return -EINVAL;
	return 0;
}

enum cm_arch cm_arch_host(void)
{
	struct utsname u;
	enum cm_arch a;

	if (uname(&u) < 0 || cm_arch_parse(u.machine, &a) < 0)
		return CM_ARCH_UNKNOWN;
	return a;
}

size_t cm_system_header_size(unsigned revision)
{
	/* rev 12 had the IOMMU units inside a 266-byte arch union; rev 13
	 * moved them out, giving 2 more bytes before the root cell. */
	return revision == 12 ? 354 : 356;
}

static void parse_console(const uint8_t *p, size_t off, struct cm_console *c)
{
	c->address = le64(p, off);
	c->size = le32(p, off + 8);
	c->type = le16(p, off + 12);
	c->flags = le16(p, off + 14);
	c->divider = le32(p, off + 16);
	c->gate_nr = le32(p, off + 20);
	c->clock_reg = le64(p, off + 24);
}

static void parse_mem(const uint8_t *p, size_t off, struct cm_mem *m)
{
	m->phys = le64(p, off);
	m->virt = le64(p, off + 8);
	m->size = le64(p, off + 16);
	m->flags = le64(p, off + 24);
}

static void parse_iommus(const uint8_t *p, size_t off, struct cm_system *s)
{
	for (unsigned i = 0; i < CM_SYS_IOMMU_UNITS; i++) {
		size_t o = off + i * SZ_IOMMU;

		s->iommu[i].type = le32(p, o);
		s->iommu[i].base = le64(p, o + 4);
		s->iommu[i].size = le32(p, o + 12);
	}
}

static void parse_system(const uint8_t *p, unsigned rev, enum cm_arch arch,
			 struct cm_system *s)
{
	s->flags = le32(p, 8);
	parse_mem(p, 12, &s->hv_mem);
	parse_console(p, 44, &s->debug_console);
	s->mmconfig_base = le64(p, 76);
	s->mmconfig_end_bus = le8(p, 84);
	s->pci_is_virtual = le8(p, 85);
	s->pci_domain = le16(p, 86);

	if (rev >= 13) {
		parse_iommus(p, 88, s);
		if (arch == CM_ARCH_X86) {
			s->x86.pm_timer_address = le16(p, 312);
			s->x86.apic_mode = le8(p, 314);
			s->x86.vtd_interrupt_limit = le32(p, 316);
			s->x86.tsc_khz = le32(p, 320);
			s->x86.apic_khz = le32(p, 324);
		} else {
			s->arm.maintenance_irq = le8(p, 312);
			s->arm.gic_version = le8(p, 313);
			s->arm.gicd_base = le64(p, 316);
			s->arm.gicc_base = le64(p, 324);
			s->arm.gich_base = le64(p, 332);
			s->arm.gicv_base = le64(p, 340);
			s->arm.gicr_base = le64(p, 348);
		}
	} else if (arch == CM_ARCH_X86) {
		s->x86.pm_timer_address = le16(p, 88);
		s->x86.vtd_interrupt_limit = le32(p, 90);
		s->x86.apic_mode = le8(p, 94);
		s->x86.tsc_khz = le32(p, 98);
		s->x86.apic_khz = le32(p, 102);
		parse_iommus(p, 106, s);
	} else {
		s->arm.maintenance_irq = le8(p, 88);
		s->arm.gic_version = le8(p, 89);
		s->arm.gicd_base = le64(p, 90);
		s->arm.gicc_base = le64(p, 98);
		s->arm.gich_base = le64(p, 106);
		s->arm.gicv_base = le64(p, 114);
		s->arm.gicr_base = le64(p, 122);
		parse_iommus(p, 130, s);
	}
}

/* Decode the descriptor at blob+off and its arrays; the caller has checked
 * that [off, off + 132) is inside the file.  Checks the array extent against
 * the file length before touching the arrays. */
static int parse_cell(const uint8_t *p, size_t len, size_t off,
		      struct cm_cell *c, struct cm_err *err)
{
	const uint8_t *d = p + off;
	uint64_t need;
	size_t pos;

	memcpy(c->name, d + 8, CM_CELL_NAMELEN);
	c->name[CM_CELL_NAMELEN] = '\0';
	c->name_terminated = memchr(d + 8, 0, CM_CELL_NAMELEN) != NULL;
	c->flags = le32(d, 44);
	c->cpu_set_size = le32(d, 48);
	c->num_mem = le32(d, 52);
	c->num_cache = le32(d, 56);
	c->num_irqchips = le32(d, 60);
	c->num_pio = le32(d, 64);
	c->num_pci = le32(d, 68);
	c->num_caps = le32(d, 72);
	c->num_stream_ids = le32(d, 76);
	c->vpci_irq_base = le32(d, 80);
	c->cpu_reset_address = le64(d, 84);
	c->msg_reply_timeout = le64(d, 92);
	parse_console(d, 100, &c->console);

	/* Each term is < 2^32 * 56 < 2^38, so the sum cannot overflow 64 bits;
	 * it is then compared against the real file length. */
	need = (uint64_t)off + CM_CELL_DESC_SIZE + c->cpu_set_size +
	       (uint64_t)SZ_MEM * c->num_mem + (uint64_t)SZ_CACHE * c->num_cache +
	       (uint64_t)SZ_IRQCHIP * c->num_irqchips +
	       (uint64_t)SZ_PIO * c->num_pio + (uint64_t)SZ_PCI * c->num_pci +
	       (uint64_t)SZ_CAP * c->num_caps +
	       (uint64_t)SZ_STREAM * c->num_stream_ids;
	if (need != len) {
		cm_err_set(err, "file is %zu bytes but its counts describe %llu bytes "
			   "(cpu_set_size %u, %u memory regions, %u cache regions, "
			   "%u irqchips, %u pio regions, %u pci devices, %u pci caps, "
			   "%u stream ids)", len, (unsigned long long)need,
			   c->cpu_set_size, c->num_mem, c->num_cache, c->num_irqchips,
			   c->num_pio, c->num_pci, c->num_caps, c->num_stream_ids);
		cm_err_hint(err, need > len ?
			    "the file is truncated, or was built for another configuration revision" :
			    "trailing data: the file was built for another configuration revision or is corrupt");
		return -EINVAL;
	}

	/* From here on every count is bounded by the file length. */
	pos = off + CM_CELL_DESC_SIZE;
	c->cpus = p + pos;
	pos += c->cpu_set_size;

#define ALLOC_ARRAY(field, n) do {                                   \
		c->field = calloc((n) ? (n) : 1, sizeof(*c->field)); \
		if (!c->field)                                       \
			return -ENOMEM;                              \
	} while (0)

	ALLOC_ARRAY(mem, c->num_mem);
	for (uint32_t i = 0; i < c->num_mem; i++, pos += SZ_MEM)
		parse_mem(p, pos, &c->mem[i]);

	ALLOC_ARRAY(cache, c->num_cache);
	for (uint32_t i = 0; i < c->num_cache; i++, pos += SZ_CACHE) {
		c->cache[i].start = le32(p, pos);
		c->cache[i].size = le32(p, pos + 4);
		c->cache[i].type = le8(p, pos + 8);
		c->cache[i].flags = le16(p, pos + 10);
	}

	ALLOC_ARRAY(irqchips, c->num_irqchips);
	for (uint32_t i = 0; i < c->num_irqchips; i++, pos += SZ_IRQCHIP) {
		struct cm_irqchip *q = &c->irqchips[i];

		q->address = le64(p, pos);
		q->id = le32(p, pos + 8);
		q->pin_base = le32(p, pos + 12);
		for (int k = 0; k < 4; k++)
			q->pin_bitmap[k] = le32(p, pos + 16 + 4 * k);
	}

	ALLOC_ARRAY(pio, c->num_pio);
	for (uint32_t i = 0; i < c->num_pio; i++, pos += SZ_PIO) {
		c->pio[i].base = le16(p, pos);
		c->pio[i].length = le16(p, pos + 2);
	}

	ALLOC_ARRAY(pci, c->num_pci);
	for (uint32_t i = 0; i < c->num_pci; i++, pos += SZ_PCI) {
		struct cm_pci_dev *v = &c->pci[i];

		v->type = le8(p, pos);
		v->iommu = le8(p, pos + 1);
		v->domain = le16(p, pos + 2);
		v->bdf = le16(p, pos + 4);
		for (int k = 0; k < 6; k++)
			v->bar_mask[k] = le32(p, pos + 6 + 4 * k);
		v->caps_start = le16(p, pos + 30);
		v->num_caps = le16(p, pos + 32);
		v->num_msi_vectors = le8(p, pos + 34);
		v->msi_64bits = le8(p, pos + 35) & 1;
		v->msi_maskable = (le8(p, pos + 35) >> 1) & 1;
		v->num_msix_vectors = le16(p, pos + 36);
		v->msix_region_size = le16(p, pos + 38);
		v->msix_address = le64(p, pos + 40);
		v->shmem_regions_start = le32(p, pos + 48);
		v->shmem_dev_id = le8(p, pos + 52);
		v->shmem_peers = le8(p, pos + 53);
		v->shmem_protocol = le16(p, pos + 54);
	}

	ALLOC_ARRAY(caps, c->num_caps);
	for (uint32_t i = 0; i < c->num_caps; i++, pos += SZ_CAP) {
		c->caps[i].id = le16(p, pos);
		c->caps[i].start = le16(p, pos + 2);
		c->caps[i].len = le16(p, pos + 4);
		c->caps[i].flags = le16(p, pos + 6);
	}

	ALLOC_ARRAY(stream_ids, c->num_stream_ids);
	for (uint32_t i = 0; i < c->num_stream_ids; i++, pos += SZ_STREAM)
		c->stream_ids[i] = le32(p, pos);
#undef ALLOC_ARRAY
	return 0;
}

static void free_cell(struct cm_cell *c)
{
	free(c->mem);
	free(c->cache);
	free(c->irqchips);
	free(c->pio);
	free(c->pci);
	free(c->caps);
	free(c->stream_ids);
}

void cm_config_free(struct cm_config *cfg)
{
	if (!cfg)
		return;
	free_cell(&cfg->cell);
	free(cfg->blob);
	free(cfg);
}

/* Identify kind from the signature that belongs to the revision. */
static int parse_signature(const uint8_t *p, unsigned rev, enum cm_cfg_kind *kind,
			   struct cm_err *err)
{
	if (rev == 14) {
		/* "JHSYST" would pass the 5-byte test with architecture 'T'. */
		if (!memcmp(p, "JHSYST", 6) || !memcmp(p, "JHCELL", 6)) {
			cm_err_set(err, "signature \"%.6s\" belongs to revisions <= 13, but the revision "
				   "field says 14", (const char *)p);
			return -EINVAL;
		}
		if (!memcmp(p, "JHSYS", 5))
			*kind = CM_CFG_SYSTEM;
		else if (!memcmp(p, "JHCLL", 5))
			*kind = CM_CFG_CELL;
		else
			goto bad;
		return 0;
	}
	if (!memcmp(p, "JHSYST", 6))
		*kind = CM_CFG_SYSTEM;
	else if (!memcmp(p, "JHCELL", 6))
		*kind = CM_CFG_CELL;
	else
		goto bad;
	return 0;
bad:
	cm_err_set(err, "not a Jailhouse configuration: signature \"%.6s\" does not match "
		   "revision %u (expected %s)", (const char *)p, rev,
		   rev == 14 ? "\"JHSYS\" or \"JHCLL\" + architecture byte" :
		   "\"JHSYST\" or \"JHCELL\"");
	for (int i = 0; i < 6; i++)
		if (p[i] < 0x20 || p[i] > 0x7e) {
			cm_err_set(err, "not a Jailhouse configuration: bad signature bytes");
			break;
		}
	cm_err_hint(err, "pass the compiled .cell file, not the .c source; signatures changed in revision 14");
	return -EINVAL;
}

int cm_config_parse(const void *data, size_t len, enum cm_arch assume_arch,
		    struct cm_config **out, struct cm_err *err)
{
	const uint8_t *p = data;
	struct cm_config *cfg;
	size_t cell_off;
	unsigned rev;
	int ret;

	*out = NULL;
	if (len < 8) {
		cm_err_set(err, "file too short (%zu bytes) for a configuration header", len);
		return -EINVAL;
	}
	/* The revision sits at offset 6 in every layout; read it first and
	 * choose the signature and layout from it. */
	rev = le16(p, 6);
	if (rev < CM_CFG_REV_MIN || rev > CM_CFG_REV_MAX) {
		/* Still say whether it looks like a config at all. */
		if (memcmp(p, "JH", 2)) {
			cm_err_set(err, "not a Jailhouse configuration (no \"JH\" signature)");
			return -EINVAL;
		}
		cm_err_set(err, "unsupported configuration revision %u (supported: %d-%d)",
			   rev, CM_CFG_REV_MIN, CM_CFG_REV_MAX);
		cm_err_hint(err, "rebuild the config against the Jailhouse version that is installed");
		return -EINVAL;
	}

	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return -ENOMEM;
	cfg->revision = rev;
	ret = parse_signature(p, rev, &cfg->kind, err);
	if (ret < 0)
		goto fail;

	if (rev == 14) {
		uint8_t a = p[5];

		if (a > CM_ARCH_ARM64) {
			cm_err_set(err, "unknown architecture byte %u (expected 0 x86, 1 arm, 2 arm64)", a);
			ret = -EINVAL;
			goto fail;
		}
		cfg->arch = a;
		cfg->arch_from_file = true;
	} else {
		cfg->arch = assume_arch;
	}

	if (cfg->kind == CM_CFG_SYSTEM) {
		cell_off = cm_system_header_size(rev);
		if (cfg->arch == CM_ARCH_UNKNOWN && rev == 12) {
			cm_err_set(err, "revision-12 system config: layout depends on the architecture, which is unknown");
			cm_err_hint(err, "pass --arch x86|arm|arm64");
			ret = -EINVAL;
			goto fail;
		}
	} else {
		cell_off = 0;
	}
	if (len < cell_off + CM_CELL_DESC_SIZE) {
		cm_err_set(err, "file truncated: %zu bytes, but the %s header alone needs %zu",
			   len, cfg->kind == CM_CFG_SYSTEM ? "system" : "cell",
			   cell_off + CM_CELL_DESC_SIZE);
		ret = -EINVAL;
		goto fail;
	}

	cfg->blob = malloc(len);
	if (!cfg->blob) {
		ret = -ENOMEM;
		goto fail;
	}
	memcpy(cfg->blob, p, len);
	cfg->len = len;

	if (cfg->kind == CM_CFG_SYSTEM)
		parse_system(cfg->blob, rev, cfg->arch, &cfg->sys);
	ret = parse_cell(cfg->blob, len, cell_off, &cfg->cell, err);
	if (ret < 0)
		goto fail;
	*out = cfg;
	return 0;
fail:
	cm_config_free(cfg);
	return ret;
}

int cm_read_file(const char *path, size_t max, uint8_t **data, size_t *len,
		 struct cm_err *err)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t have = 0;
	int fd, ret;

	*data = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		cm_err_set(err, "cannot open %s", path);
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		cm_err_set(err, "cannot stat %s", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		cm_err_set(err, "%s is not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		ret = -EFBIG;
		cm_err_set(err, "%s is %lld bytes, more than the limit of %zu",
			   path, (long long)st.st_size, max);
		goto out;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	while (have < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + have, (size_t)st.st_size - have);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			cm_err_set(err, "cannot read %s", path);
			goto out;
		}
		if (n == 0)
			break;   /* file shrank: use what we got */
		have += (size_t)n;
	}
	*data = buf;
	*len = have;
	buf = NULL;
	ret = 0;
out:
	free(buf);
	close(fd);
	return ret;
}

int cm_config_load(const char *path, enum cm_arch assume_arch,
		   struct cm_config **out, struct cm_err *err)
{
	uint8_t *data;
	size_t len;
	int ret;

	*out = NULL;
	ret = cm_read_file(path, 64u << 20, &data, &len, err);
	if (ret < 0)
		return ret;
	ret = cm_config_parse(data, len, assume_arch, out, err);
	free(data);
	return ret;
}

bool cm_cell_has_cpu(const struct cm_cell *cell, unsigned cpu)
{
	if (cpu / 8 >= cell->cpu_set_size)
		return false;
	return (cell->cpus[cpu / 8] >> (cpu % 8)) & 1;
}

unsigned cm_cell_cpu_count(const struct cm_cell *cell)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < cell->cpu_set_size; i++)
		n += (unsigned)__builtin_popcount(cell->cpus[i]);
	return n;
}

char *cm_bits_str(const uint8_t *bits, size_t nbits, uint64_t base, char *buf, size_t len)
{
	size_t pos = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < nbits; i++) {
		size_t j;
		int n;

		if (!((bits[i / 8] >> (i % 8)) & 1))
			continue;
		for (j = i; j + 1 < nbits && ((bits[(j + 1) / 8] >> ((j + 1) % 8)) & 1); j++)
			;
		n = j == i ? snprintf(buf + pos, len - pos, "%s%" PRIu64, pos ? "," : "", base + i)
			   : snprintf(buf + pos, len - pos, "%s%" PRIu64 "-%" PRIu64, pos ? "," : "",
				      base + i, base + j);
		if (n < 0 || (size_t)n >= len - pos) {
			if (len >= 4)
				strcpy(buf + len - 4, "...");
			return buf;
		}
		pos += (size_t)n;
		i = j;
	}
	return buf;
}

char *cm_cell_cpus_str(const struct cm_cell *cell, char *buf, size_t len)
{
	cm_bits_str(cell->cpus, (size_t)cell->cpu_set_size * 8, 0, buf, len);
	if (!buf[0])
		snprintf(buf, len, "(none)");
	return buf;
}

bool cm_mem_is_ram(const struct cm_mem *m)
{
	const uint64_t mask = CM_MEM_READ | CM_MEM_WRITE | CM_MEM_EXECUTE |
			      CM_MEM_DMA | CM_MEM_IO | CM_MEM_COMM_REGION |
			      CM_MEM_ROOTSHARED;

	return (m->flags & mask) ==
	       (CM_MEM_READ | CM_MEM_WRITE | CM_MEM_EXECUTE | CM_MEM_DMA);
}

bool cm_mem_is_loadable(const struct cm_mem *m)
{
	return (m->flags & (CM_MEM_LOADABLE | CM_MEM_WRITE)) ==
	       (CM_MEM_LOADABLE | CM_MEM_WRITE);
}

char *cm_mem_flags_str(uint64_t flags, char *buf, size_t len)
{
	static const struct { uint64_t bit; const char *name; } names[] = {
		{ CM_MEM_READ, "R" }, { CM_MEM_WRITE, "W" }, { CM_MEM_EXECUTE, "X" },
		{ CM_MEM_DMA, "DMA" }, { CM_MEM_IO, "IO" },
		{ CM_MEM_COMM_REGION, "COMM" }, { CM_MEM_LOADABLE, "LOADABLE" },
		{ CM_MEM_ROOTSHARED, "ROOTSHARED" },
		{ CM_MEM_NO_HUGEPAGES, "NO_HUGEPAGES" },
		{ CM_MEM_IO_UNALIGNED, "IO_UNALIGNED" }, { 0x10000, "IO_8" },
		{ 0x20000, "IO_16" }, { 0x40000, "IO_32" }, { 0x80000, "IO_64" },
	};
	size_t pos = 0;
	uint64_t rest = flags & ~CM_MEM_KNOWN_FLAGS;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(flags & names[i].bit))
			continue;
		int n = snprintf(buf + pos, len - pos, "%s%s", pos ? " " : "", names[i].name);
		if (n < 0 || (size_t)n >= len - pos)
			return buf;
		pos += (size_t)n;
	}
	if (rest && pos < len)
		snprintf(buf + pos, len - pos, "%sunknown(0x%llx)", pos ? " " : "",
			 (unsigned long long)rest);
	else if (!pos)
		snprintf(buf, len, "-");
	return buf;
}
