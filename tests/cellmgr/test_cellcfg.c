/* Config parser/checker tests: generated configs of revisions 12-14. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cellmgr/cellcfg.h"
#include "cellmgr/cellcfg_check.h"
#include "cellmgr/cellcfg_show.h"
#include "samples.h"

static int parse_copy(const uint8_t *buf, size_t len, enum cm_arch a, struct cm_config **cfg,
		      struct cm_err *err)
{
	/* exact-size heap copy so ASan catches any read past the end */
	uint8_t *c = malloc(len ? len : 1);
	int ret;

	memcpy(c, buf, len);
	ret = cm_config_parse(c, len, a, cfg, err);
	free(c);
	return ret;
}

static void valid_cells(void **state)
{
	(void)state;
	for (unsigned rev = 12; rev <= 14; rev++) {
		struct cm_config *cfg;
		struct cm_err err = { 0 };
		struct cm_report rep;
		size_t len;
		uint8_t *b = cw_build(rev, CW_X86, NULL, &linux_cell, &len);

		assert_int_equal(parse_copy(b, len, CM_ARCH_X86, &cfg, &err), 0);
		assert_int_equal(cfg->kind, CM_CFG_CELL);
		assert_int_equal(cfg->revision, rev);
		assert_int_equal(cfg->arch_from_file, rev == 14);
		assert_string_equal(cfg->cell.name, "agl-linux-x86-demo");
		assert_int_equal(cfg->cell.num_mem, 7);
		assert_int_equal(cfg->cell.mem[2].virt, 0x200000);
		assert_int_equal(cfg->cell.mem[2].size, 0x4700000);
		assert_int_equal(cfg->cell.pci[0].shmem_protocol, 0x8002);
		assert_int_equal(cfg->cell.pci[0].shmem_dev_id, 1);
		assert_int_equal(cfg->cell.pio[1].base, 0x3e8);
		assert_int_equal(cfg->cell.irqchips[0].id, 0xff00);
		assert_true(cm_cell_has_cpu(&cfg->cell, 2));
		assert_false(cm_cell_has_cpu(&cfg->cell, 0));
		cm_report_init(&rep);
		cm_config_check(cfg, CM_ARCH_X86, &rep);
		for (size_t i = 0; i < rep.n; i++)
			fprintf(stderr, "rev %u: %s\n", rev, rep.items[i].msg);
		assert_int_equal(rep.errors, 0);
		assert_int_equal(rep.warnings, 0);
		cm_report_free(&rep);
		cm_config_free(cfg);
		free(b);
	}
}

static void valid_systems(void **state)
{
	(void)state;
	for (unsigned rev = 12; rev <= 14; rev++) {
		for (unsigned arch = CW_X86; arch <= CW_ARM64; arch += 2) {
			struct cm_config *cfg;
			struct cm_err err = { 0 };
			struct cm_report rep;
			size_t len;
			uint8_t *b = cw_build(rev, arch, &root_sys, &root_cell, &len);

			assert_int_equal(len, (rev == 12 ? 354u : 356u) + 132 + 8 + 8 * 32 + 32 + 56 + 2 * 8 + 4);
			assert_int_equal(parse_copy(b, len, arch, &cfg, &err), 0);
			assert_int_equal(cfg->kind, CM_CFG_SYSTEM);
			assert_int_equal(cfg->sys.hv_mem.phys, 0x22000000);
			assert_int_equal(cfg->sys.hv_mem.size, 0x600000);
			assert_int_equal(cfg->sys.mmconfig_base, 0xb0000000);
			assert_int_equal(cfg->sys.iommu[0].type, 2);
			assert_int_equal(cfg->sys.iommu[0].base, 0xfed90000);
			if (arch == CW_X86) {
				assert_int_equal(cfg->sys.x86.pm_timer_address, 0x608);
			} else {
				assert_int_equal(cfg->sys.arm.gic_version, 3);
				assert_int_equal(cfg->sys.arm.gicd_base, 0xf9010000);
				assert_int_equal(cfg->sys.arm.gicr_base, 0xf9100000);
			}
			assert_string_equal(cfg->cell.name, "AGL-Jailhouse-RootCell");
			assert_int_equal(cfg->cell.num_caps, 2);
			assert_int_equal(cfg->cell.num_stream_ids, 1);
			cm_report_init(&rep);
			cm_config_check(cfg, arch, &rep);
			for (size_t i = 0; i < rep.n; i++)
				fprintf(stderr, "rev %u arch %u: %s\n", rev, arch, rep.items[i].msg);
			assert_int_equal(rep.errors, 0);
			cm_report_free(&rep);
			cm_config_free(cfg);
			free(b);
		}
	}
}

static void truncated(void **state)
{
	(void)state;
	for (unsigned rev = 12; rev <= 14; rev++)
		for (int sys = 0; sys < 2; sys++) {
			size_t len;
			uint8_t *b = cw_build(rev, CW_X86, sys ? &root_sys : NULL,
					      sys ? &root_cell : &linux_cell, &len);

			for (size_t l = 0; l < len; l++) {
				struct cm_config *cfg = NULL;
				struct cm_err err = { 0 };

				assert_int_equal(parse_copy(b, l, CM_ARCH_X86, &cfg, &err), -EINVAL);
				assert_null(cfg);
				assert_true(err.set);
			}
			free(b);
		}
}

static void trailing_data(void **state)
{
	size_t len;
	uint8_t *b = cw_build(13, CW_X86, NULL, &linux_cell, &len);
	uint8_t *c = calloc(1, len + 1);
	struct cm_config *cfg;
	struct cm_err err = { 0 };

	(void)state;
	memcpy(c, b, len);
	assert_int_equal(parse_copy(c, len + 1, CM_ARCH_X86, &cfg, &err), -EINVAL);
	assert_non_null(strstr(err.what, "counts describe"));
	assert_non_null(strstr(err.hint, "trailing"));
	free(b);
	free(c);
}

static void huge_counts(void **state)
{
	size_t len;
	uint8_t *b = cw_build(14, CW_X86, NULL, &linux_cell, &len);
	struct cm_config *cfg;
	struct cm_err err = { 0 };

	(void)state;
	/* counts that would overflow 32-bit arithmetic */
	for (size_t off = 48; off <= 76; off += 4) {
		uint8_t save[4];

		memcpy(save, b + off, 4);
		memset(b + off, 0xff, 4);
		cm_err_clear(&err);
		assert_int_equal(parse_copy(b, len, CM_ARCH_X86, &cfg, &err), -EINVAL);
		memcpy(b + off, save, 4);
	}
	free(b);
}

static void wrong_signature(void **state)
{
	static const struct { unsigned rev; const char *sig; } cases[] = {
		{ 14, "JHCELL" }, { 14, "JHSYST" }, { 13, "JHCLL\0" }, { 12, "JHSYS\0" },
		{ 13, "XXXXXX" }, { 14, "jhcll\0" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		uint8_t *b = cw_build(cases[i].rev, CW_X86, NULL, &linux_cell, &len);
		struct cm_config *cfg;
		struct cm_err err = { 0 };

		memcpy(b, cases[i].sig, 6);
		assert_int_equal(parse_copy(b, len, CM_ARCH_X86, &cfg, &err), -EINVAL);
		if (!strstr(err.what, "signature"))
			fail_msg("case %zu: %s", i, err.what);
		free(b);
	}
}

static void bad_revision(void **state)
{
	(void)state;
	for (unsigned rev = 10; rev <= 16; rev += 1) {
		size_t len;
		uint8_t *b;
		struct cm_config *cfg;
		struct cm_err err = { 0 };

		if (rev >= 12 && rev <= 14)
			continue;
		b = cw_build(14, CW_X86, NULL, &linux_cell, &len);
		b[6] = (uint8_t)rev;
		assert_int_equal(parse_copy(b, len, CM_ARCH_X86, &cfg, &err), -EINVAL);
		assert_non_null(strstr(err.what, "unsupported configuration revision"));
		free(b);
	}
}

static void wrong_architecture(void **state)
{
	size_t len;
	uint8_t *b = cw_build(14, CW_ARM64, NULL, &linux_cell, &len);
	struct cm_config *cfg;
	struct cm_err err = { 0 };
	struct cm_report rep;

	(void)state;
	assert_int_equal(parse_copy(b, len, CM_ARCH_X86, &cfg, &err), 0);
	assert_int_equal(cfg->arch, CM_ARCH_ARM64);
	cm_report_init(&rep);
	cm_config_check(cfg, CM_ARCH_X86, &rep);
	assert_true(cm_report_has(&rep, CM_SEV_ERR, "configuration is for arm64, expected x86"));
	cm_report_free(&rep);
	cm_config_free(cfg);

	b[5] = 7;   /* no such architecture */
	assert_int_equal(parse_copy(b, len, CM_ARCH_X86, &cfg, &err), -EINVAL);
	assert_non_null(strstr(err.what, "architecture byte 7"));
	free(b);
}

static void check_cell_with(const struct cw_cell *cell, const char *needle, enum cm_severity sev)
{
	size_t len;
	uint8_t *b = cw_build(14, CW_X86, NULL, cell, &len);
	struct cm_config *cfg;
	struct cm_err err = { 0 };
	struct cm_report rep;

	assert_int_equal(parse_copy(b, len, CM_ARCH_X86, &cfg, &err), 0);
	cm_report_init(&rep);
	cm_config_check(cfg, CM_ARCH_X86, &rep);
	if (!cm_report_has(&rep, sev, needle)) {
		for (size_t i = 0; i < rep.n; i++)
			fprintf(stderr, "finding: %s\n", rep.items[i].msg);
		fail_msg("no finding containing \"%s\"", needle);
	}
	cm_report_free(&rep);
	cm_config_free(cfg);
	free(b);
}

static void overlapping_regions(void **state)
{
	struct cw_mem mem[7];
	struct cw_cell c = linux_cell;

	(void)state;
	memcpy(mem, linux_mem, sizeof(mem));
	c.mem = mem;
	/* high RAM physically overlaps low RAM */
	mem[2].phys = 0x22680000;
	check_cell_with(&c, "memory regions #0 and #2 overlap in physical", CM_SEV_ERR);
	/* guest-physical overlap with the comm region */
	memcpy(mem, linux_mem, sizeof(mem));
	mem[0].size = 0x101000;
	check_cell_with(&c, "memory regions #0 and #1 overlap in guest-physical", CM_SEV_ERR);
	/* ivshmem state table inside low RAM (the case from the mailing list) */
	memcpy(mem, linux_mem, sizeof(mem));
	mem[3].phys = 0x22610000;
	check_cell_with(&c, "memory regions #0 and #3 overlap in physical", CM_SEV_ERR);
}

static void region_flags(void **state)
{
	struct cw_mem mem[7];
	struct cw_cell c = linux_cell;

	(void)state;
	c.mem = mem;
	memcpy(mem, linux_mem, sizeof(mem));
	mem[2].flags = R | X | DMA | LOADABLE;
	check_cell_with(&c, "LOADABLE but not WRITE", CM_SEV_ERR);
	memcpy(mem, linux_mem, sizeof(mem));
	mem[2].flags |= 0x4000;
	check_cell_with(&c, "unknown flag bits 0x4000", CM_SEV_ERR);
	memcpy(mem, linux_mem, sizeof(mem));
	mem[3].flags |= W;
	check_cell_with(&c, "state table (region #3) must be read-only", CM_SEV_ERR);
	memcpy(mem, linux_mem, sizeof(mem));
	mem[4].flags &= ~ROOTSHARED;
	check_cell_with(&c, "lacks ROOTSHARED", CM_SEV_WARN);
	memcpy(mem, linux_mem, sizeof(mem));
	mem[0].phys += 0x800;
	check_cell_with(&c, "differ in their page offset", CM_SEV_ERR);
}

static void ivshmem_rules(void **state)
{
	struct cw_pci pci = linux_pci[0];
	struct cw_cell c = linux_cell;

	(void)state;
	c.pci = &pci;
	pci.shmem_start = 5;
	check_cell_with(&c, "uses memory regions #5..#8, but there are only 7", CM_SEV_ERR);
	pci = linux_pci[0];
	pci.dev_id = 2;
	check_cell_with(&c, "peer id 2 not below peer count 2", CM_SEV_ERR);
	pci = linux_pci[0];
	pci.num_msix = 17;
	check_cell_with(&c, "17 MSI-X vectors", CM_SEV_ERR);
	pci = linux_pci[0];
	pci.proto = 0x0123;
	check_cell_with(&c, "reserved range", CM_SEV_WARN);
}

static void cell_rules(void **state)
{
	struct cw_cell c = linux_cell;

	(void)state;
	c.cpus = 0xd;
	check_cell_with(&c, "CPU 0 is assigned", CM_SEV_ERR);
	c = linux_cell;
	c.cpus = 0;
	check_cell_with(&c, "CPU set is empty", CM_SEV_ERR);
	c = linux_cell;
	c.flags = 0x40000000;
	check_cell_with(&c, "does not set PASSIVE_COMMREG", CM_SEV_WARN);
	c = linux_cell;
	c.irq = (const struct cw_irqchip[]){ { 0xfec00000, 0xff00, 24, { 1 } } };
	check_cell_with(&c, "irqchip #0 has pin base 24; x86 needs 0", CM_SEV_ERR);
}

static void root_rules(void **state)
{
	struct cw_mem mem[8];
	struct cw_cell c = root_cell;
	size_t len;
	uint8_t *b;
	struct cm_config *cfg;
	struct cm_err err = { 0 };
	struct cm_report rep;

	(void)state;
	memcpy(mem, root_mem, sizeof(mem));
	c.mem = mem;
	mem[1].size = 0x21f80000;                 /* runs into hypervisor memory */
	mem[7].phys = mem[7].virt = 0xfec00000;   /* IOAPIC page */
	b = cw_build(13, CW_X86, &root_sys, &c, &len);
	assert_int_equal(parse_copy(b, len, CM_ARCH_X86, &cfg, &err), 0);
	cm_report_init(&rep);
	cm_config_check(cfg, CM_ARCH_X86, &rep);
	assert_true(cm_report_has(&rep, CM_SEV_ERR, "#1 (phys 0x100000, size 0x21f80000) overlaps the hypervisor memory"));
	assert_true(cm_report_has(&rep, CM_SEV_ERR, "overlaps IOAPIC #0"));
	cm_report_free(&rep);
	cm_config_free(cfg);
	free(b);
}

static void rev12_arm_needs_arch(void **state)
{
	size_t len;
	uint8_t *b = cw_build(12, CW_ARM, &root_sys, &root_cell, &len);
	struct cm_config *cfg;
	struct cm_err err = { 0 };

	(void)state;
	assert_int_equal(parse_copy(b, len, CM_ARCH_UNKNOWN, &cfg, &err), -EINVAL);
	assert_non_null(strstr(err.hint, "--arch"));
	free(b);
}

static void show_output(void **state)
{
	size_t len;
	uint8_t *b = cw_build(13, CW_X86, NULL, &linux_cell, &len);
	struct cm_config *cfg;
	struct cm_err err = { 0 };
	char *out = NULL;
	size_t outlen = 0;
	FILE *f;

	(void)state;
	assert_int_equal(parse_copy(b, len, CM_ARCH_X86, &cfg, &err), 0);
	f = open_memstream(&out, &outlen);
	cm_config_show(cfg, f);
	fclose(f);
	assert_non_null(strstr(out, "cell configuration, revision 13, architecture x86 (assumed"));
	assert_non_null(strstr(out, "cpus:           2-3"));
	assert_non_null(strstr(out, "PASSIVE_COMMREG VIRTUAL_CONSOLE_PERMITTED"));
	assert_non_null(strstr(out, "#2   0x200000-0x48fffff (72704 KiB)"));
	assert_non_null(strstr(out, "0000:00:0c.0  protocol 0x8002 virtio-blk front-end, class 0xff8002"));
	assert_non_null(strstr(out, "peer 1 of 2, virtio front-end"));
	assert_non_null(strstr(out, "#3   state table"));
	free(out);
	cm_config_free(cfg);
	free(b);
}

/* Random corruption must never crash or read out of bounds (ASan). */
static void mutations(void **state)
{
	size_t len;
	uint8_t *b = cw_build(14, CW_X86, &root_sys, &root_cell, &len);
	unsigned seed = 12345;

	(void)state;
	for (int it = 0; it < 3000; it++) {
		uint8_t *c = malloc(len);
		struct cm_config *cfg;
		struct cm_err err = { 0 };

		memcpy(c, b, len);
		for (int k = 0; k < 4; k++) {
			seed = seed * 1103515245 + 12345;
			c[(seed >> 8) % len] = (uint8_t)(seed >> 20);
		}
		if (cm_config_parse(c, len, CM_ARCH_X86, &cfg, &err) == 0) {
			struct cm_report rep;
			char *out = NULL;
			size_t ol;
			FILE *f = open_memstream(&out, &ol);

			cm_report_init(&rep);
			cm_config_check(cfg, CM_ARCH_X86, &rep);
			cm_config_show(cfg, f);
			fclose(f);
			free(out);
			cm_report_free(&rep);
			cm_config_free(cfg);
		}
		free(c);
	}
	free(b);
}

/* Regression: a GIC version other than 2 or 3 was only a warning, but the
 * hypervisor refuses it (irqchip_cpu_init() returns -EINVAL). */
static void gic_version_is_error(void **state)
{
	struct cw_sys sys = root_sys;
	size_t len;
	uint8_t *b;
	struct cm_config *cfg;
	struct cm_err err = { 0 };
	struct cm_report rep;

	(void)state;
	sys.gic_version = 4;
	b = cw_build(14, CW_ARM64, &sys, &root_cell, &len);
	assert_int_equal(parse_copy(b, len, CM_ARCH_ARM64, &cfg, &err), 0);
	cm_report_init(&rep);
	cm_config_check(cfg, CM_ARCH_ARM64, &rep);
	if (!cm_report_has(&rep, CM_SEV_ERR, "GIC version 4"))
		fail_msg("GIC version 4 is not an error (%zu errors, %zu warnings)", rep.errors,
			 rep.warnings);
	cm_report_free(&rep);
	cm_config_free(cfg);
	free(b);
}

/* Regression: the PASSIVE_COMMREG warning claimed "Linux never answers" for
 * every cell, also for inmates that do answer shutdown requests (apic-demo).
 * The checker only knows what the config says. */
static void passive_commreg_wording(void **state)
{
	struct cw_cell c = linux_cell;
	size_t len;
	uint8_t *b;
	struct cm_config *cfg;
	struct cm_err err = { 0 };
	struct cm_report rep;

	(void)state;
	c.name = "apic-demo";
	c.flags = 0;
	b = cw_build(14, CW_X86, NULL, &c, &len);
	assert_int_equal(parse_copy(b, len, CM_ARCH_X86, &cfg, &err), 0);
	cm_report_init(&rep);
	cm_config_check(cfg, CM_ARCH_X86, &rep);
	for (size_t i = 0; i < rep.n; i++)
		if (strstr(rep.items[i].msg, "PASSIVE_COMMREG") && strstr(rep.items[i].msg, "never answers"))
			fail_msg("claims the cell never answers: %s", rep.items[i].msg);
	assert_true(cm_report_has(&rep, CM_SEV_WARN, "does not set PASSIVE_COMMREG"));
	cm_report_free(&rep);
	cm_config_free(cfg);
	free(b);
}

static char *show_str(const uint8_t *b, size_t len, enum cm_arch arch)
{
	struct cm_config *cfg;
	struct cm_err err = { 0 };
	char *out = NULL;
	size_t outlen = 0;
	FILE *f;

	assert_int_equal(parse_copy(b, len, arch, &cfg, &err), 0);
	f = open_memstream(&out, &outlen);
	cm_config_show(cfg, f);
	fclose(f);
	cm_config_free(cfg);
	return out;
}

static void expect_in(const char *out, const char *needle)
{
	if (!out)
		fail_msg("\"%s\" not shown: nothing was", needle);
	else if (!strstr(out, needle))
		fail_msg("\"%s\" not shown in:\n%s", needle, out);
}

/* config show prints what it used to leave out: cache regions, PCI
 * capabilities, stream ids, pin bitmaps, BAR masks, the x86 and ARM
 * platform fields. */
static void show_everything(void **state)
{
	static const struct cw_cache cache[] = { { 0, 4, 3, 1 } };
	static const struct cw_cap caps[] = { { 0x05, 0x50, 14, 1 }, { 0x8010, 0x100, 4, 0 } };
	static const uint32_t streams[] = { 0x10, 0x7f0012 };
	static const struct cw_irqchip irq[] = { { 0xfec00000, 0xff00, 0, { 0x18, 0, 0, 0x80000001 } } };
	struct cw_pci pci[2] = { root_pci[0], { .type = 1, .bdf = 0x1f << 3 | 2, .caps_start = 0,
		.num_caps = 2, .msi_vectors = 1, .msi_flags = 3, .msix_address = 0xfebd0000,
		.msix_size = 0x1000, .custom_bars = true,
		.bars = { 0xfffff800, 0, 0, 0, 0xffffffe0, 0xfffff000 } } };
	struct cw_cell c = root_cell;
	struct cw_sys sys = root_sys;
	size_t len;
	uint8_t *b;
	char *out;

	(void)state;
	c.cache = cache; c.ncache = 1;
	c.caps = caps; c.ncaps = 2;
	c.streams = streams; c.nstream = 2;
	c.irq = irq; c.nirq = 1;
	c.pci = pci; c.npci = 2;
	sys.apic_mode = 2;
	sys.vtd_limit = 256;
	sys.tsc_khz = 2000000;
	sys.apic_khz = 1000000;
	for (unsigned rev = 12; rev <= 14; rev++) {
		b = cw_build(rev, CW_X86, &sys, &c, &len);
		out = show_str(b, len, CM_ARCH_X86);
		expect_in(out, "x86:            pm timer 0x608, apic mode x2apic, vtd interrupt limit 256, "
			  "tsc 2000000 kHz, apic 1000000 kHz\n");
		expect_in(out, "iommu 0:        type 2 (intel) at 0xfed90000 size 0x1000");
		expect_in(out, "cache regions (1):\n  #0   start 0 size 4 L3 ROOTSHARED\n");
		expect_in(out, "stream ids (2): 0x10 0x7f0012\n");
		expect_in(out, "#0   0xfec00000 id 0xff00 pin base 0, pins 3-4,96,127\n");
		expect_in(out, "#1   0000:00:1f.2 device   iommu 0, 2 caps, MSI 1, MSI-X 0\n"
			  "       bar masks 0xfffff800 0x00000000 0x00000000 0x00000000 0xffffffe0 0xfffff000\n"
			  "       caps #0..#1\n"
			  "       MSI 64-bit, maskable\n"
			  "       MSI-X table at 0xfebd0000, region 0x1000 bytes\n");
		expect_in(out, "bar masks 0xfffff000 0xfffff000 0x00000000");
		expect_in(out, "pci capabilities (2):\n"
			  "  #0            id 0x05 at 0x050, 14 bytes, writable\n"
			  "  #1   extended id 0x10 at 0x100, 4 bytes\n");
		free(out);
		free(b);
	}

	sys.maint_irq = 25;
	c.irq = (const struct cw_irqchip[]){ { 0xf9010000, 0, 32, { 0x2, 0, 0, 0x3000 } } };
	c.msg_reply_timeout = 5000;
	c.vpci_irq_base = 108;
	for (unsigned rev = 12; rev <= 14; rev++) {
		b = cw_build(rev, CW_ARM64, &sys, &c, &len);
		out = show_str(b, len, CM_ARCH_ARM64);
		expect_in(out, "gic:            version 3, maintenance irq 25\n"
			  "                gicd 0xf9010000, gicr 0xf9100000, gicc 0x0, gich 0x0, gicv 0x0\n");
		expect_in(out, "pin base 32, pins 33,140-141\n");
		expect_in(out, "reply timeout:  5000 polls\n");
		expect_in(out, "vpci irq base:  108\n");
		free(out);
		free(b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(valid_cells),
		cmocka_unit_test(valid_systems),
		cmocka_unit_test(truncated),
		cmocka_unit_test(trailing_data),
		cmocka_unit_test(huge_counts),
		cmocka_unit_test(wrong_signature),
		cmocka_unit_test(bad_revision),
		cmocka_unit_test(wrong_architecture),
		cmocka_unit_test(overlapping_regions),
		cmocka_unit_test(region_flags),
		cmocka_unit_test(ivshmem_rules),
		cmocka_unit_test(cell_rules),
		cmocka_unit_test(root_rules),
		cmocka_unit_test(rev12_arm_needs_arch),
		cmocka_unit_test(show_output),
		cmocka_unit_test(show_everything),
		cmocka_unit_test(mutations),
		cmocka_unit_test(gic_version_is_error),
		cmocka_unit_test(passive_commreg_wording),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
