/* Whole-system check (cm_system_check, `config check SYSTEM CELL...`): each
 * rule on generated configs, one deviation at a time from a clean set. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "cellmgr/cellcfg.h"
#include "cellmgr/syscheck.h"
#include "samples.h"
#include "testutil.h"

static const char *cli_path;

/* The root of samples.h plus the UART ports the Linux cell uses. */
static const struct cw_pio root_pio[] = { { 0x2e8, 8 }, { 0x3e8, 8 }, { 0x3f8, 8 } };

struct set {
	struct cm_config *cfg[4];
	unsigned n;          /* cfg[0] is the system */
	struct cm_report rep;
};

static struct cm_config *parse(unsigned rev, unsigned arch, const struct cw_sys *sys,
			       const struct cw_cell *c)
{
	size_t len;
	uint8_t *b = cw_build(rev, arch, sys, c, &len);
	struct cm_config *cfg;
	struct cm_err err = { 0 };

	assert_int_equal(cm_config_parse(b, len, arch, &cfg, &err), 0);
	free(b);
	return cfg;
}

static struct cw_cell x86_root(void)
{
	struct cw_cell r = root_cell;

	r.pio = root_pio;
	r.npio = 3;
	return r;
}

/* Check root + cells (x86, rev 14) and keep the report in s. */
static void run(struct set *s, const struct cw_cell *root, const struct cw_cell *const *cells,
		unsigned n)
{
	static const char *const files[] = { "a.cell", "b.cell", "c.cell" };

	memset(s, 0, sizeof(*s));
	s->cfg[0] = parse(14, CW_X86, &root_sys, root);
	for (unsigned i = 0; i < n; i++)
		s->cfg[1 + i] = parse(14, CW_X86, NULL, cells[i]);
	s->n = n + 1;
	cm_report_init(&s->rep);
	cm_system_check(s->cfg[0], "root.cell", (const struct cm_config *const *)s->cfg + 1, files,
			n, &s->rep);
}

static void done(struct set *s)
{
	for (unsigned i = 0; i < s->n; i++)
		cm_config_free(s->cfg[i]);
	cm_report_free(&s->rep);
}

static void dump(const struct set *s)
{
	for (size_t i = 0; i < s->rep.n; i++)
		fprintf(stderr, "  %s: %s\n", s->rep.items[i].sev == CM_SEV_ERR ? "error" : "warning",
			s->rep.items[i].msg);
}

static void expect(const struct set *s, enum cm_severity sev, const char *needle)
{
	if (!cm_report_has(&s->rep, sev, needle)) {
		dump(s);
		fail_msg("no %s containing \"%s\"", sev == CM_SEV_ERR ? "error" : "warning", needle);
	}
}

static void expect_counts(const struct set *s, size_t errors, size_t warnings)
{
	if (s->rep.errors != errors || s->rep.warnings != warnings) {
		dump(s);
		fail_msg("%zu errors, %zu warnings; expected %zu, %zu", s->rep.errors, s->rep.warnings,
			 errors, warnings);
	}
}

/* A second Linux cell on other memory, CPUs and without devices. */
static const struct cw_mem other_mem[] = {
	{ 0x10000000, 0x0, 0x100000, R | W | X | DMA | LOADABLE },
	{ 0, 0x100000, 0x1000, R | W | COMM },
};
static struct cw_cell other_cell(void)
{
	return (struct cw_cell){ .name = "other", .flags = 1, .cpus = 0x2, .mem = other_mem, .nmem = 2 };
}

static void clean_set(void **state)
{
	struct cw_cell r = x86_root(), o = other_cell();
	const struct cw_cell *cells[] = { &linux_cell, &o };
	struct set s;

	(void)state;
	run(&s, &r, cells, 2);
	expect_counts(&s, 0, 0);
	done(&s);
}

static void memory_rules(void **state)
{
	struct cw_cell r = x86_root(), o = other_cell(), l = linux_cell;
	const struct cw_cell *cells[] = { &l, &o };
	struct cw_mem lm[7], om[2];
	struct set s;

	(void)state;
	memcpy(lm, linux_mem, sizeof(lm));
	memcpy(om, other_mem, sizeof(om));
	l.mem = lm;
	o.mem = om;
	lm[0].phys = 0x22400000;   /* inside the hypervisor memory 0x22000000+0x600000 */
	run(&s, &r, cells, 2);
	expect(&s, CM_SEV_ERR, "cell \"agl-linux-x86-demo\" (a.cell): memory region #0 (phys "
	       "0x22400000-0x224fffff) overlaps the hypervisor memory (0x22000000-0x225fffff)");
	done(&s);

	memcpy(lm, linux_mem, sizeof(lm));
	om[0].phys = 0x22780000;   /* inside the Linux cell's high RAM */
	run(&s, &r, cells, 2);
	expect(&s, CM_SEV_ERR, "memory region #2 (phys 0x22700000-0x26dfffff) overlaps region #0 "
	       "(phys 0x22780000-0x2287ffff) of cell \"other\" (b.cell)");
	expect_counts(&s, 1, 0);
	done(&s);

	/* ROOTSHARED on both sides is sharing by intent; on one side it is not */
	om[0].phys = 0x26e00000;
	om[0].size = 0x1000;
	om[0].flags = R | ROOTSHARED;
	run(&s, &r, cells, 2);
	expect_counts(&s, 0, 0);
	done(&s);
	om[0].flags = R | W;
	run(&s, &r, cells, 2);
	expect(&s, CM_SEV_ERR, "cell \"agl-linux-x86-demo\" (a.cell): memory region #3 (phys "
	       "0x26e00000-0x26e00fff) overlaps region #0 (phys 0x26e00000-0x26e00fff) of cell \"other\"");
	done(&s);

	/* MMCONFIG, IOMMU, xAPIC and IOAPIC pages, as upstream checks them */
	memcpy(om, other_mem, sizeof(om));
	om[0].phys = 0xfee00000;
	om[0].size = 0x1000;
	run(&s, &r, cells, 2);
	expect(&s, CM_SEV_ERR, "overlaps the xAPIC page");
	done(&s);
	om[0].phys = 0xb0100000;
	run(&s, &r, cells, 2);
	expect(&s, CM_SEV_ERR, "overlaps PCI MMCONFIG (0xb0000000-0xbfffffff)");
	done(&s);
	om[0].phys = 0xfed90000;
	run(&s, &r, cells, 2);
	expect(&s, CM_SEV_ERR, "overlaps IOMMU unit 0");
	done(&s);
	om[0].phys = 0xfec00000;
	run(&s, &r, cells, 2);
	expect(&s, CM_SEV_ERR, "overlaps IOAPIC #0");
	done(&s);
}

static void cpu_rules(void **state)
{
	struct cw_cell r = x86_root(), o = other_cell();
	const struct cw_cell *cells[] = { &linux_cell, &o };
	struct set s;

	(void)state;
	o.cpus = 0x8;
	run(&s, &r, cells, 2);
	expect(&s, CM_SEV_ERR, "CPU 3 claimed by cell \"agl-linux-x86-demo\" (a.cell) and cell \"other\" "
	       "(b.cell); creating the second fails with EBUSY");
	done(&s);
	o.cpus = 0x32;
	run(&s, &r, cells, 2);
	expect(&s, CM_SEV_ERR, "cell \"other\" (b.cell) uses CPU 4-5, which the root cell does not own");
	done(&s);
	o.cpus = 0x3;   /* with the Linux cell's 2-3: all four */
	run(&s, &r, cells, 2);
	expect(&s, CM_SEV_ERR, "the non-root cells take every CPU of the root cell");
	done(&s);
}

static void identity_rules(void **state)
{
	struct cw_cell r = x86_root(), o = other_cell();
	const struct cw_cell *cells[] = { &linux_cell, &o };
	struct cm_config *cfg[3];
	const char *files[] = { "a.cell", "b.cell" };
	struct cm_report rep;

	(void)state;
	/* revision and architecture differ; the names clash */
	o.name = "agl-linux-x86-demo";
	cfg[0] = parse(14, CW_X86, &root_sys, &r);
	cfg[1] = parse(13, CW_X86, NULL, cells[0]);
	cfg[2] = parse(14, CW_ARM64, NULL, &o);
	cm_report_init(&rep);
	cm_system_check(cfg[0], "root.cell", (const struct cm_config *const *)cfg + 1, files, 2, &rep);
	assert_true(cm_report_has(&rep, CM_SEV_ERR, "cell \"agl-linux-x86-demo\" (a.cell) is revision 13 "
				  "but the root cell \"AGL-Jailhouse-RootCell\" (root.cell) is revision 14"));
	assert_true(cm_report_has(&rep, CM_SEV_ERR, "(b.cell) is for arm64 but the root cell"));
	assert_true(cm_report_has(&rep, CM_SEV_ERR, "(a.cell) and cell \"agl-linux-x86-demo\" (b.cell) "
				  "have the same name"));
	cm_report_free(&rep);
	/* a system config among the cells */
	cm_report_init(&rep);
	cm_system_check(cfg[0], "root.cell", (const struct cm_config *const *)cfg, files, 1, &rep);
	assert_true(cm_report_has(&rep, CM_SEV_ERR, "a.cell is a system configuration"));
	cm_report_free(&rep);
	for (int i = 0; i < 3; i++)
		cm_config_free(cfg[i]);
}

static void ivshmem_rules(void **state)
{
	struct cw_cell r = x86_root(), l = linux_cell;
	const struct cw_cell *cells[] = { &l };
	struct cw_pci pci = linux_pci[0];
	struct cw_mem lm[7];
	struct set s;

	(void)state;
	l.pci = &pci;
	l.mem = lm;
	memcpy(lm, linux_mem, sizeof(lm));

	pci.peers = 3;
	lm[5] = (struct cw_mem){ 0x27000000, 0x27000000, 0, 0 };
	l.nmem = 7;
	run(&s, &r, cells, 1);
	expect(&s, CM_SEV_ERR, "ivshmem link 00:0c.0: the root cell \"AGL-Jailhouse-RootCell\" (root.cell) "
	       "says 2 peers, cell \"agl-linux-x86-demo\" (a.cell) says 3");
	done(&s);

	pci = linux_pci[0];
	lm[4].size = 0xde000;
	run(&s, &r, cells, 1);
	expect(&s, CM_SEV_ERR, "ivshmem link 00:0c.0: the r/w section differs: the root cell "
	       "\"AGL-Jailhouse-RootCell\" (root.cell) has phys 0x26e01000 size 0xdf000 (region #4), cell "
	       "\"agl-linux-x86-demo\" (a.cell) has phys 0x26e01000 size 0xde000 (region #4)");
	done(&s);

	memcpy(lm, linux_mem, sizeof(lm));
	pci.dev_id = 0;
	run(&s, &r, cells, 1);
	expect(&s, CM_SEV_ERR, "are both peer 0; the second create fails with EBUSY");
	done(&s);

	pci = linux_pci[0];
	pci.bdf = 0x0d << 3;
	run(&s, &r, cells, 1);
	expect(&s, CM_SEV_ERR, "ivshmem state table at phys 0x26e00000 is used by link 00:0c.0 in the root "
	       "cell \"AGL-Jailhouse-RootCell\" (root.cell) and by link 00:0d.0 in cell "
	       "\"agl-linux-x86-demo\" (a.cell); all peers of a link must use the same BDF");
	expect(&s, CM_SEV_WARN, "ivshmem link 00:0d.0 of cell \"agl-linux-x86-demo\" (a.cell) has no peer");
	done(&s);

	pci = linux_pci[0];
	pci.proto = 0xc002;     /* two back-ends */
	run(&s, &r, cells, 1);
	expect(&s, CM_SEV_ERR, "ivshmem link 00:0c.0 has 2 virtio back-ends");
	done(&s);
	pci.proto = 0x8003;     /* console front-end against a block back-end */
	run(&s, &r, cells, 1);
	expect(&s, CM_SEV_ERR, "speaks virtio-blk back-end (0xc002), cell \"agl-linux-x86-demo\" (a.cell) "
	       "speaks virtio-console front-end (0x8003)");
	done(&s);
}

static void pci_pio_rules(void **state)
{
	struct cw_cell r = x86_root(), o = other_cell(), l = linux_cell;
	const struct cw_cell *cells[] = { &l, &o };
	static const struct cw_pci dev[] = { { .type = 1, .bdf = 0x1f << 3 } };
	static const struct cw_pio pio[] = { { 0x3e8, 8 }, { 0x60, 1 } };
	struct set s;

	(void)state;
	o.pci = dev;
	o.npci = 1;
	run(&s, &r, cells, 2);
	expect(&s, CM_SEV_WARN, "cell \"other\" (b.cell) has PCI device 0000:00:1f.0, which the root cell "
	       "does not own");
	expect_counts(&s, 0, 1);
	done(&s);
	l.pci = dev;
	l.npci = 1;
	run(&s, &r, cells, 2);
	expect(&s, CM_SEV_ERR, "PCI device 0000:00:1f.0 is given to cell \"agl-linux-x86-demo\" (a.cell) "
	       "and to cell \"other\" (b.cell)");
	done(&s);

	l = linux_cell;
	o = other_cell();
	o.pio = pio;
	o.npio = 2;
	run(&s, &r, cells, 2);
	expect(&s, CM_SEV_WARN, "cell \"other\" (b.cell): PIO range #0 (0x3e8-0x3ef) shares 8 ports with "
	       "cell \"agl-linux-x86-demo\" (a.cell)");
	expect(&s, CM_SEV_WARN, "cell \"other\" (b.cell): PIO range #1 (0x60-0x60): the root cell does not "
	       "own 1 of its ports");
	expect_counts(&s, 0, 2);
	done(&s);
}

static void irq_rules_x86(void **state)
{
	struct cw_cell r = x86_root(), o = other_cell();
	const struct cw_cell *cells[] = { &linux_cell, &o };
	struct cw_irqchip q = linux_irq[0];
	struct set s;

	(void)state;
	o.irq = &q;
	o.nirq = 1;
	q.id = 0xff01;
	q.pins[0] = 1u << 7;
	run(&s, &r, cells, 2);
	expect(&s, CM_SEV_ERR, "cell \"other\" (b.cell): irqchip #0 at 0xfec00000 has id 0xff01, the root "
	       "config has 0xff00 for it; creating the cell fails with E2BIG");
	expect(&s, CM_SEV_WARN, "irqchip #0 at 0xfec00000: the root cell does not own pins 7");
	done(&s);
	q.id = 0xff00;
	q.pins[0] = 1u << 4 | 1u << 3;
	run(&s, &r, cells, 2);
	expect(&s, CM_SEV_ERR, "cell \"other\" (b.cell): irqchip #0 at 0xfec00000: pins 3-4 are also given "
	       "to cell \"agl-linux-x86-demo\" (a.cell)");
	done(&s);
}

static void irq_rules_arm(void **state)
{
	struct cw_sys sys = root_sys;
	static const struct cw_irqchip rq[] = { { 0xf9010000, 0, 32, { ~0u, ~0u, ~0u, ~0u } } };
	struct cw_irqchip q1 = { 0xf9010000, 0, 32, { 1u << 1, 0, 0, 1u << 12 } };
	struct cw_irqchip q2 = q1;
	struct cw_cell r = root_cell, a = other_cell(), b = other_cell();
	struct cm_config *cfg[3];
	const char *files[] = { "a.cell", "b.cell" };
	struct cm_report rep;

	(void)state;
	sys.mmcfg_base = 0;
	sys.iommu0_base = 0;
	r.irq = rq;
	a.irq = &q1;
	a.nirq = 1;
	b.name = "b";
	b.cpus = 0x4;
	b.mem = (const struct cw_mem[]){ { 0x11000000, 0x0, 0x100000, R | W | X | DMA | LOADABLE },
					 { 0, 0x100000, 0x1000, R | W | COMM } };
	b.irq = &q2;
	b.nirq = 1;
	q2.pins[0] = 0;
	q2.pins[3] = 1u << 12;      /* pin 140 in both */
	cfg[0] = parse(14, CW_ARM64, &sys, &r);
	cfg[1] = parse(14, CW_ARM64, NULL, &a);
	cfg[2] = parse(14, CW_ARM64, NULL, &b);
	cm_report_init(&rep);
	cm_system_check(cfg[0], "root.cell", (const struct cm_config *const *)cfg + 1, files, 2, &rep);
	assert_true(cm_report_has(&rep, CM_SEV_ERR, "cell \"b\" (b.cell): irqchip #0 at 0xf9010000: pins "
				  "140 are also given to cell \"other\" (a.cell)"));
	assert_int_equal(rep.errors, 1);
	cm_report_free(&rep);
	for (int i = 1; i < 3; i++)
		cm_config_free(cfg[i]);

	q2.address = 0x8000000;          /* not the GICD */
	q1.pin_base = 48;                /* not a multiple of 32 */
	cfg[1] = parse(14, CW_ARM64, NULL, &a);
	cfg[2] = parse(14, CW_ARM64, NULL, &b);
	cm_report_init(&rep);
	cm_system_check(cfg[0], "root.cell", (const struct cm_config *const *)cfg + 1, files, 2, &rep);
	assert_true(cm_report_has(&rep, CM_SEV_ERR, "cell \"b\" (b.cell): irqchip #0 at 0x8000000 is not the "
				  "GIC distributor (0xf9010000); the hypervisor ignores it"));
	assert_true(cm_report_has(&rep, CM_SEV_ERR, "irqchip #0 has pin base 48; the hypervisor needs a "
				  "multiple of 32 of at most 896 (EINVAL)"));
	cm_report_free(&rep);
	for (int i = 0; i < 3; i++)
		cm_config_free(cfg[i]);
}

/* Without a root config (Jailhouse enabled by someone else) only the rules
 * between the cells run. */
static void without_root(void **state)
{
	struct cw_cell o = other_cell();
	struct cm_config *cfg[2];
	const char *files[] = { "a.cell", "b.cell" };
	struct cm_report rep;

	(void)state;
	o.cpus = 0x38;
	cfg[0] = parse(14, CW_X86, NULL, &linux_cell);
	cfg[1] = parse(14, CW_X86, NULL, &o);
	cm_report_init(&rep);
	cm_system_check(NULL, NULL, (const struct cm_config *const *)cfg, files, 2, &rep);
	assert_true(cm_report_has(&rep, CM_SEV_ERR, "CPU 3 claimed by"));
	assert_int_equal(rep.errors, 1);
	cm_report_free(&rep);
	cm_config_free(cfg[0]);
	cm_config_free(cfg[1]);
}

/* Corrupted cells must never crash the set checks or read out of bounds. */
static void mutations(void **state)
{
	size_t len;
	uint8_t *b = cw_build(14, CW_X86, NULL, &linux_cell, &len);
	struct cw_cell r = x86_root();
	struct cm_config *root = parse(14, CW_X86, &root_sys, &r);
	unsigned seed = 4242;
	const char *files[] = { "a.cell" };

	(void)state;
	for (int it = 0; it < 2000; it++) {
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

			cm_report_init(&rep);
			cm_system_check(root, "root.cell", (const struct cm_config *const *)&cfg, files, 1, &rep);
			cm_report_free(&rep);
			cm_config_free(cfg);
		}
		free(c);
	}
	cm_config_free(root);
	free(b);
}


static void cli(void **state)
{
	char *dir = tu_tmpdir();
	struct cw_cell r = x86_root(), o = other_cell();
	size_t len;
	uint8_t *b;
	char *out;
	int code;

	(void)state;
	b = cw_build(14, CW_X86, &root_sys, &r, &len);
	tu_write(tu_fmt("%s/root.cell", dir), b, len);
	free(b);
	b = cw_build(14, CW_X86, NULL, &linux_cell, &len);
	tu_write(tu_fmt("%s/linux.cell", dir), b, len);
	free(b);
	o.cpus = 0x8;
	b = cw_build(14, CW_X86, NULL, &o, &len);
	tu_write(tu_fmt("%s/other.cell", dir), b, len);
	free(b);

	out = tu_run(tu_fmt("cd %s && %s --arch x86 config check root.cell linux.cell 2>&1", dir, cli_path),
		      &code);
	assert_int_equal(code, 0);
	assert_string_equal(out,
		"root.cell: system configuration \"AGL-Jailhouse-RootCell\", revision 14: 0 error(s), 0 warning(s)\n"
		"linux.cell: cell configuration \"agl-linux-x86-demo\", revision 14: 0 error(s), 0 warning(s)\n"
		"whole system (root.cell and 1 cell): 0 error(s), 0 warning(s)\n");
	free(out);

	out = tu_run(tu_fmt("cd %s && %s --arch x86 config check root.cell linux.cell other.cell 2>&1",
			     dir, cli_path), &code);
	assert_int_equal(code, 1);
	assert_non_null(strstr(out, "whole system: error: CPU 3 claimed by cell \"agl-linux-x86-demo\" "
			       "(linux.cell) and cell \"other\" (other.cell)"));
	assert_non_null(strstr(out, "whole system (root.cell and 2 cells): 1 error(s), 0 warning(s)\n"));
	free(out);

	out = tu_run(tu_fmt("cd %s && %s --arch x86 config check linux.cell other.cell 2>&1", dir, cli_path),
		      &code);
	assert_int_equal(code, 1);
	assert_non_null(strstr(out, "linux.cell is a cell configuration; with several files the first "
			       "must be the system configuration"));
	free(out);

	out = tu_run(tu_fmt("cd %s && %s --arch x86 config check root.cell missing.cell 2>&1", dir, cli_path),
		      &code);
	assert_int_equal(code, 1);
	assert_non_null(strstr(out, "missing.cell: cannot open missing.cell"));
	assert_non_null(strstr(out, "whole system: not checked, a file could not be read"));
	free(out);
	tu_rmrf(dir);
	free(dir);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(clean_set),
		cmocka_unit_test(memory_rules),
		cmocka_unit_test(cpu_rules),
		cmocka_unit_test(identity_rules),
		cmocka_unit_test(ivshmem_rules),
		cmocka_unit_test(pci_pio_rules),
		cmocka_unit_test(irq_rules_x86),
		cmocka_unit_test(irq_rules_arm),
		cmocka_unit_test(without_root),
		cmocka_unit_test(mutations),
		cmocka_unit_test(cli),
	};
	cli_path = argc > 1 ? argv[1] : "jailhouse-cellmgr";
	return cmocka_run_group_tests(tests, NULL, NULL);
}
