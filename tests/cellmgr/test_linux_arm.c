/* ARM Linux boot: layouts and device tree properties against what
 * upstream's tool computes, kernel files, errors, the CLI's -w output and a
 * boot through the fake driver.
 *
 * The expected values are worked out by hand from upstream's
 * tools/jailhouse-cell-linux, class ARMCommon.setup() and the ARM/ARM64
 * classes, at siemens/jailhouse master e57d1eff (the ARM part is the same
 * at v0.12 and at AGL's 63000120).  "L314" below means line 314 of that
 * file.  The device trees are compiled with dtc from sources in this file;
 * the Image and zImage headers are built here. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <libfdt.h>

#include "cellmgr/cellmgr.h"
#include "cellmgr/linux_arm.h"
#include "armimage.h"
#include "fake_hw.h"
#include "samples.h"
#include "testutil.h"

static const char *cli_path;

/* ---- inputs ---- */

/* A cell like upstream's QEMU arm64 Linux demo (our own numbers): a small
 * loader RAM at 0 without DMA (so not "RAM" for Linux), the main RAM with
 * DMA, a UART, the comm region. */
static const struct cw_mem arm_mem[] = {
	{ 0x7f900000, 0x0, 0x10000, R | W | X | LOADABLE },                   /* #0 loader */
	{ 0x70000000, 0x70000000, 0x8000000, R | W | X | DMA | LOADABLE },    /* #1 RAM */
	{ 0x09000000, 0x09000000, 0x1000, R | W | IO | ROOTSHARED },          /* #2 UART */
	{ 0, 0x80000000, 0x1000, R | W | COMM },                              /* #3 comm */
};
static const struct cw_cell arm_cell = {
	.name = "arm-linux", .flags = 0x1 | 0x40000000, .cpus = 0xc,
	.mem = arm_mem, .nmem = 4,
};

/* Another with one RAM region at 0 that also holds the loader. */
static const struct cw_mem low_mem[] = {
	{ 0x60000000, 0x0, 0x4000000, R | W | X | DMA | LOADABLE },
	{ 0, 0x80000000, 0x1000, R | W | COMM },
};

static const char dts_64[] =
	"/dts-v1/;\n"
	"/ {\n"
	"	#address-cells = <2>;\n"
	"	#size-cells = <2>;\n"
	"	model = \"test cell\";\n"
	"	hypervisor { compatible = \"jailhouse,cell\"; };\n"
	"	serial@9000000 { compatible = \"arm,pl011\"; reg = <0x0 0x09000000 0x0 0x1000>; };\n"
	"};\n";

/* 32-bit cells, a memory@ node with the board's RAM, a second memory
 * node, and a /chosen with bootargs and a stale initrd. */
static const char dts_32[] =
	"/dts-v1/;\n"
	"/ {\n"
	"	#address-cells = <1>;\n"
	"	#size-cells = <1>;\n"
	"	memory@0 { device_type = \"memory\"; reg = <0x0 0x10000000>; };\n"
	"	memory@80000000 { device_type = \"memory\"; reg = <0x80000000 0x1000>; };\n"
	"	chosen {\n"
	"		bootargs = \"console=ttyAMA0\";\n"
	"		linux,initrd-start = <0x1000000>;\n"
	"		linux,initrd-end = <0x1100000>;\n"
	"	};\n"
	"};\n";

static uint8_t *dtc(const char *dir, const char *src, size_t *len)
{
	return (uint8_t *)tu_dtc(dir, src, len);
}

static void p32(uint8_t *p, size_t o, uint32_t v) { for (int i = 0; i < 4; i++) p[o + i] = (uint8_t)(v >> 8 * i); }
static void p64(uint8_t *p, size_t o, uint64_t v) { p32(p, o, (uint32_t)v); p32(p, o + 4, (uint32_t)(v >> 32)); }

/* An arm64 Image of len bytes (armimage.h). */
static uint8_t *image(size_t len, uint64_t text_offset, uint64_t image_size)
{
	return arm64_image(len, text_offset, image_size);
}

static uint8_t *zimage(size_t len)
{
	uint8_t *k = calloc(1, len);

	p32(k, 0x24, 0x016f2818);
	p32(k, 0x28, 0);
	p32(k, 0x2c, (uint32_t)len);
	return k;
}

static struct cm_config *cell_cfg(const struct cw_cell *c, unsigned arch)
{
	size_t len;
	uint8_t *b = cw_build(14, arch, NULL, c, &len);
	struct cm_config *cfg;
	struct cm_err err = { 0 };

	assert_int_equal(cm_config_parse(b, len, (enum cm_arch)arch, &cfg, &err), 0);
	free(b);
	return cfg;
}

static const void *prop(const uint8_t *fdt, const char *path, const char *name, int *len)
{
	int node = fdt_path_offset(fdt, path);

	if (node < 0)
		return NULL;
	return fdt_getprop(fdt, node, name, len);
}

static void be32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }
static void be64(uint8_t *p, uint64_t v) { be32(p, (uint32_t)(v >> 32)); be32(p + 4, (uint32_t)v); }

static void assert_prop(const uint8_t *fdt, const char *path, const char *name, const void *want,
			int wlen)
{
	int len;
	const void *v = prop(fdt, path, name, &len);

	if (!v)
		fail_msg("%s/%s missing", path, name);
	if (len != wlen || memcmp(v, want, (size_t)wlen))
		fail_msg("%s/%s: %d bytes, not the expected %d (or different bytes)", path, name, len, wlen);
}

struct fixture {
	char *dir;
	uint8_t *dtb;
	size_t dtb_len;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->dir = tu_tmpdir();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tu_rmrf(f->dir);
	free(f->dir);
	free(f->dtb);
	free(f);
	return 0;
}

static bool need_dtc(struct fixture *f, const char *src)
{
	free(f->dtb);
	f->dtb = dtc(f->dir, src, &f->dtb_len);
	return f->dtb != NULL;
}

/* ---- layouts ---- */

/* arm64, no initrd, text_offset 0 (Linux >= 5.8). */
static void arm64_layout(void **state)
{
	struct fixture *f = *state;
	struct cm_config *cfg = cell_cfg(&arm_cell, CW_ARM64);
	uint8_t *k = image(0x123456, 0, 0x150000);
	struct cm_arm_boot_opts o = { .kernel = k, .kernel_len = 0x123456 };
	struct cm_arm_boot b;
	struct cm_report rep;
	struct cm_err err = { 0 };
	uint8_t reg[16];

	if (!need_dtc(f, dts_64))
		skip();
	o.dtb = f->dtb;
	o.dtb_len = f->dtb_len;
	o.cmdline = "console=ttyAMA0 earlycon";
	assert_true(f->dtb_len <= 0x1000);   /* so page_align(dtb) is one page */
	cm_report_init(&rep);
	assert_int_equal(cm_arm_boot_build(cfg, &o, &b, &rep, &err), 0);
	/* L314-316: kernel_size = page_align(0x123456) = 0x124000, image_size =
	 * 0 + 0x124000 + 0x200000; L333-337: + (0x1000 + 0x1000) + 0x2000 =
	 * 0x328000.  L339-343: the first is_ram() region that large is #1
	 * (#0 lacks DMA).  L345-348: dtb at its start, 0x70000000.  L349-351:
	 * kernel at page_align(0x70000000 + 0x2000, 0x200000) + 0. */
	assert_int_equal(b.region, 1);
	assert_int_equal(b.dtb_space, 0x2000);
	assert_int_equal(b.dtb_addr, 0x70000000);
	assert_int_equal(b.kernel_addr, 0x70200000);
	assert_int_equal(b.initrd_addr, 0);
	/* L354-355 and L392-393 (ARMCommon.params_address): the string at
	 * cpu_reset_address + 0x1000; L418-419: the loader at cpu_reset_address */
	assert_string_equal(b.params, "kernel=0x70200000 dtb=0x70000000");
	assert_int_equal(b.params_len, strlen(b.params));
	assert_int_equal(b.params_addr, 0x1000);
	assert_int_equal(b.loader_addr, 0);
	/* L360-370: #address-cells 2 and #size-cells 2 give '>QQ'; L372:
	 * device_type "memory\0"; L373-380: reg of every RAM region except a
	 * small one at 0 (here: only #1); L382-384: bootargs + NUL */
	assert_prop(b.dtb, "/memory", "device_type", "memory", 7);
	be64(reg, 0x70000000);
	be64(reg + 8, 0x8000000);
	assert_prop(b.dtb, "/memory", "reg", reg, 16);
	assert_prop(b.dtb, "/chosen", "bootargs", "console=ttyAMA0 earlycon", 25);
	assert_null(prop(b.dtb, "/chosen", "linux,initrd-start", NULL));
	/* the rest of the tree is kept */
	assert_prop(b.dtb, "/", "model", "test cell", 10);
	assert_prop(b.dtb, "/hypervisor", "compatible", "jailhouse,cell", 15);
	assert_int_equal(rep.n, 0);
	cm_arm_boot_free(&b);
	cm_report_free(&rep);
	cm_config_free(cfg);
	free(k);
}

/* arm64 with an initrd, text_offset 0x80000 (older kernels), default and
 * explicit factor. */
static void arm64_layout_initrd(void **state)
{
	struct fixture *f = *state;
	struct cm_config *cfg = cell_cfg(&arm_cell, CW_ARM64);
	uint8_t *k = image(0x123456, 0x80000, 0x200000);
	struct cm_arm_boot_opts o = { .kernel = k, .kernel_len = 0x123456, .has_initrd = true,
				      .initrd_len = 0x12345 };
	struct cm_arm_boot b;
	struct cm_report rep;
	struct cm_err err = { 0 };
	uint8_t v[8];

	if (!need_dtc(f, dts_64))
		skip();
	o.dtb = f->dtb;
	o.dtb_len = f->dtb_len;
	cm_report_init(&rep);
	assert_int_equal(cm_arm_boot_build(cfg, &o, &b, &rep, &err), 0);
	/* L319-327: factor 1 (ARM64.default_decompression_factor, L476-477):
	 * kernel_size = 0x124000 + 0x124000 = 0x248000.  L349-352: kernel at
	 * 0x70200000 + text_offset 0x80000 = 0x70280000, ramdisk at kernel +
	 * kernel_size = 0x704c8000. */
	assert_int_equal(b.kernel_addr, 0x70280000);
	assert_int_equal(b.initrd_addr, 0x704c8000);
	assert_string_equal(b.params, "kernel=0x70280000 dtb=0x70000000");
	/* L385-390: initrd-start/-end in the address format (>Q), the end is
	 * start + the file size (L320, not page-aligned) = 0x704da345.  No -c:
	 * no bootargs (L382). */
	be64(v, 0x704c8000);
	assert_prop(b.dtb, "/chosen", "linux,initrd-start", v, 8);
	be64(v, 0x704da345);
	assert_prop(b.dtb, "/chosen", "linux,initrd-end", v, 8);
	assert_null(prop(b.dtb, "/chosen", "bootargs", NULL));
	cm_arm_boot_free(&b);

	/* -k 3 (L323-324): kernel_size = 4 * 0x124000 = 0x490000 */
	o.decomp_factor = 3;
	assert_int_equal(cm_arm_boot_build(cfg, &o, &b, &rep, &err), 0);
	assert_int_equal(b.initrd_addr, 0x70280000 + 0x490000);
	cm_arm_boot_free(&b);
	cm_report_free(&rep);
	cm_config_free(cfg);
	free(k);
}

/* A RAM region at 0 with the loader in it; 32-bit cells in the tree, which
 * also has memory@ nodes and a stale initrd. */
static void arm64_low_region_32bit_cells(void **state)
{
	struct fixture *f = *state;
	struct cw_cell c = arm_cell;
	struct cm_config *cfg;
	uint8_t *k = image(0x200000, 0, 0x280000);
	struct cm_arm_boot_opts o = { .kernel = k, .kernel_len = 0x200000, .cmdline = "",
				      .loader_len = 0x1800 };
	struct cm_arm_boot b;
	struct cm_report rep;
	struct cm_err err = { 0 };
	uint8_t reg[8];
	int node, n = 0;

	if (!need_dtc(f, dts_32))
		skip();
	c.mem = low_mem;
	c.nmem = 2;
	cfg = cell_cfg(&c, CW_ARM64);
	o.dtb = f->dtb;
	o.dtb_len = f->dtb_len;
	cm_report_init(&rep);
	assert_int_equal(cm_arm_boot_build(cfg, &o, &b, &rep, &err), 0);
	/* L345-348: region at 0, so the dtb goes to 0x2000; L349-351: kernel
	 * at page_align(0x2000 + 0x2000, 0x200000) = 0x200000 */
	assert_int_equal(b.dtb_addr, 0x2000);
	assert_int_equal(b.kernel_addr, 0x200000);
	/* L360-370 with cells 1: '>II'; L377-378: the region at 0 is larger
	 * than 0x10000, so it is in /memory */
	be32(reg, 0);
	be32(reg + 4, 0x4000000);
	assert_prop(b.dtb, "/memory@0", "reg", reg, 8);
	assert_prop(b.dtb, "/memory@0", "device_type", "memory", 7);
	/* Unlike upstream (which adds a second node "memory" next to them),
	 * the existing memory node is reused and the other one deleted: Linux
	 * would use the stale ranges of both. */
	fdt_for_each_subnode(node, b.dtb, 0)
		n += !strncmp(fdt_get_name(b.dtb, node, NULL), "memory", 6);
	assert_int_equal(n, 1);
	assert_true(cm_report_has(&rep, CM_SEV_WARN, "deleted memory node /memory@80000000"));
	/* -c "": the tree's bootargs stay (L382 tests the string's truth);
	 * the stale initrd goes, with a warning (upstream keeps it) */
	assert_prop(b.dtb, "/chosen", "bootargs", "console=ttyAMA0", 16);
	assert_null(prop(b.dtb, "/chosen", "linux,initrd-start", NULL));
	assert_null(prop(b.dtb, "/chosen", "linux,initrd-end", NULL));
	assert_true(cm_report_has(&rep, CM_SEV_WARN, "deleted /chosen/linux,initrd-start and -end"));
	cm_arm_boot_free(&b);

	/* a loader that runs into the device tree at 0x2000 */
	o.loader_len = 0x2400;
	assert_int_equal(cm_arm_boot_build(cfg, &o, &b, &rep, &err), -EINVAL);
	assert_non_null(strstr(err.what, "the loader (0x0-0x23ff) overlaps the device tree (0x2000-"));
	/* a RAM address that 32-bit cells cannot hold */
	cm_config_free(cfg);
	c.mem = (const struct cw_mem[]){ { 0x60000000, 0x100000000ull, 0x4000000, R | W | X | DMA | LOADABLE },
					 { 0x7f900000, 0x0, 0x10000, R | W | X | LOADABLE } };
	cfg = cell_cfg(&c, CW_ARM64);
	cm_err_clear(&err);
	o.loader_len = 0;
	assert_int_equal(cm_arm_boot_build(cfg, &o, &b, &rep, &err), -ERANGE);
	assert_non_null(strstr(err.what, "RAM 0x100000000+0x4000000 does not fit #address-cells 1"));
	cm_report_free(&rep);
	cm_config_free(cfg);
	free(k);
}

/* 32-bit ARM: an AARCH32 cell on arm64, and an arm config. */
static void aarch32_layout(void **state)
{
	struct fixture *f = *state;
	struct cw_cell c = arm_cell;
	uint8_t *z = zimage(0x345678), *k = image(0x123456, 0, 0);
	struct cm_arm_boot_opts o = { .kernel = z, .kernel_len = 0x345678, .has_initrd = true,
				      .initrd_len = 0x1000 };
	struct cm_arm_boot b;
	struct cm_report rep;
	struct cm_err err = { 0 };
	struct cm_config *cfg;
	uint8_t v[4];

	if (!need_dtc(f, dts_32))
		skip();
	o.dtb = f->dtb;
	o.dtb_len = f->dtb_len;
	cm_report_init(&rep);
	for (unsigned arch = CW_ARM; arch <= CW_ARM64; arch++) {
		c.flags = arm_cell.flags | (arch == CW_ARM64 ? 0x4 : 0);   /* AARCH32 */
		cfg = cell_cfg(&c, arch);
		assert_true(cm_arm_cell_aarch32(cfg));
		assert_int_equal(cm_arm_boot_build(cfg, &o, &b, &rep, &err), 0);
		/* class ARM: alignment 0x1000 (L442-443), offset 0 (L446-447),
		 * factor 4 (L450-451).  kernel_size = 0x346000, grown by
		 * 4 x 0x346000 to 0x105e000 (L319-327); dtb at 0x70000000,
		 * kernel at page_align(0x70002000, 0x1000) = 0x70002000, ramdisk
		 * at 0x70002000 + 0x105e000 = 0x71060000 */
		assert_int_equal(b.dtb_addr, 0x70000000);
		assert_int_equal(b.kernel_addr, 0x70002000);
		assert_int_equal(b.initrd_addr, 0x71060000);
		assert_int_equal(b.params_addr, 0x1000);
		assert_string_equal(b.params, "kernel=0x70002000 dtb=0x70000000");
		be32(v, 0x71060000);
		assert_prop(b.dtb, "/chosen", "linux,initrd-start", v, 4);
		be32(v, 0x71061000);
		assert_prop(b.dtb, "/chosen", "linux,initrd-end", v, 4);
		cm_arm_boot_free(&b);

		/* an arm64 Image in a 32-bit cell */
		o.kernel = k;
		o.kernel_len = 0x123456;
		cm_err_clear(&err);
		assert_int_equal(cm_arm_boot_build(cfg, &o, &b, &rep, &err), -EINVAL);
		assert_non_null(strstr(err.what, "is an arm64 Image, but the cell runs 32-bit ARM"));
		o.kernel = z;
		o.kernel_len = 0x345678;
		cm_config_free(cfg);
	}
	/* a zImage in an arm64 cell without AARCH32 */
	cfg = cell_cfg(&arm_cell, CW_ARM64);
	o.kernel_name = "zImage";
	cm_err_clear(&err);
	assert_int_equal(cm_arm_boot_build(cfg, &o, &b, &rep, &err), -EINVAL);
	assert_string_equal(err.what, "zImage is a 32-bit ARM zImage, but the cell is not AARCH32");
	assert_non_null(strstr(err.hint, "JAILHOUSE_CELL_AARCH32"));
	cm_config_free(cfg);
	cm_report_free(&rep);
	free(z);
	free(k);
}

/* ---- kernel files ---- */

static void kernel_files(void **state)
{
	struct cm_arm_kernel ki;
	struct cm_err err = { 0 };
	uint8_t *k = image(0x10000, 0, 0x20000);
	uint8_t buf[0x300] = { 0 };

	(void)state;
	assert_int_equal(cm_arm_kernel_parse(k, 0x10000, false, "Image", &ki, &err), 0);
	assert_int_equal(ki.image_size, 0x20000);
	assert_int_equal(ki.flags, 0xa);
	/* Image.gz */
	memcpy(buf, "\x1f\x8b\x08\x00", 4);
	assert_int_equal(cm_arm_kernel_parse(buf, sizeof(buf), false, "Image.gz", &ki, &err), -EINVAL);
	assert_string_equal(err.what, "Image.gz is gzip-compressed, not a bootable arm64 Image");
	assert_non_null(strstr(err.hint, "gunzip -c Image.gz > Image"));
	/* EFI zboot (vmlinuz.efi) */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "MZ\0\0zimg", 8);
	p32(buf, 8, 0x1234);
	p32(buf, 12, 0x56789);
	memcpy(buf + 24, "zstd", 5);
	memcpy(buf + 0x38, "\xcd\x23\x82\x81", 4);
	cm_err_clear(&err);
	assert_int_equal(cm_arm_kernel_parse(buf, sizeof(buf), false, "vmlinuz.efi", &ki, &err), -EINVAL);
	assert_string_equal(err.what, "vmlinuz.efi is an EFI zboot image (vmlinuz.efi, zstd payload), "
			    "which only EFI firmware can start");
	assert_non_null(strstr(err.hint, "pass arch/arm64/boot/Image from the same build; the "
			       "compressed Image is at offset 0x1234 in the file (354185 bytes)"));
	/* xz, vmlinux, a bzImage, garbage, too small, a bad text_offset */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "\xfd" "7zXZ", 6);
	cm_err_clear(&err);
	assert_int_equal(cm_arm_kernel_parse(buf, sizeof(buf), false, "k", &ki, &err), -EINVAL);
	assert_string_equal(err.what, "k is xz-compressed, not a bootable arm64 Image");
	memcpy(buf, "\x7f" "ELF", 4);
	cm_err_clear(&err);
	assert_int_equal(cm_arm_kernel_parse(buf, sizeof(buf), false, "vmlinux", &ki, &err), -EINVAL);
	assert_non_null(strstr(err.what, "vmlinux is an ELF file"));
	memset(buf, 0, sizeof(buf));
	memcpy(buf + 0x202, "HdrS", 4);
	cm_err_clear(&err);
	assert_int_equal(cm_arm_kernel_parse(buf, sizeof(buf), false, "bzImage", &ki, &err), -EINVAL);
	assert_string_equal(err.what, "bzImage is an x86 bzImage; this cell is arm64");
	memset(buf, 0, sizeof(buf));
	cm_err_clear(&err);
	assert_int_equal(cm_arm_kernel_parse(buf, sizeof(buf), false, "k", &ki, &err), -EINVAL);
	assert_string_equal(err.what, "k is not an arm64 Image (no \"ARM\\x64\" magic at 0x38)");
	cm_err_clear(&err);
	assert_int_equal(cm_arm_kernel_parse(k, 32, false, "k", &ki, &err), -EINVAL);
	assert_string_equal(err.what, "k is too small for an arm64 Image header");
	p64(k, 8, 0x200000);
	cm_err_clear(&err);
	assert_int_equal(cm_arm_kernel_parse(k, 0x10000, false, "k", &ki, &err), -EINVAL);
	assert_non_null(strstr(err.what, "text_offset 0x200000, not below 2 MiB"));
	free(k);
}

/* ---- errors of the layout ---- */

static void layout_errors(void **state)
{
	struct fixture *f = *state;
	struct cm_config *cfg = cell_cfg(&arm_cell, CW_ARM64);
	uint8_t *k = image(0x123456, 0, 0x300000), *k2 = image(0x200000, 0, 0);
	struct cm_arm_boot_opts o = { .kernel = k, .kernel_len = 0x123456, .kernel_name = "Image",
				      .dtb_name = "cell.dtb", .has_initrd = true, .initrd_len = 0x1000 };
	struct cm_arm_boot b;
	struct cm_report rep;
	struct cm_err err = { 0 };
	uint8_t *bad;

	if (!need_dtc(f, dts_64))
		skip();
	cm_report_init(&rep);
	/* no device tree (upstream: "No device tree specified") */
	assert_int_equal(cm_arm_boot_build(cfg, &o, &b, &rep, &err), -EINVAL);
	assert_string_equal(err.what, "Linux on arm64 needs a device tree: pass -d DTB");
	/* image_size 0x300000 from 0x70200000 runs into the initrd at
	 * 0x70200000 + 2 x 0x124000 */
	o.dtb = f->dtb;
	o.dtb_len = f->dtb_len;
	cm_err_clear(&err);
	assert_int_equal(cm_arm_boot_build(cfg, &o, &b, &rep, &err), -EINVAL);
	assert_string_equal(err.what, "initrd at 0x70448000 lies inside the kernel's image_size (it ends "
			    "at 0x70500000): the kernel would clear it");
	assert_string_equal(err.hint, "raise -k");
	o.decomp_factor = 2;
	assert_int_equal(cm_arm_boot_build(cfg, &o, &b, &rep, &err), 0);
	cm_arm_boot_free(&b);
	/* too big for every RAM region (upstream: "No space found to load all
	 * images"): 0x200000 + 0x200000 + 64 x 0x200000 + 0x2000 + 0x2000 */
	o.kernel = k2;
	o.kernel_len = 0x200000;
	o.decomp_factor = 64;
	cm_err_clear(&err);
	assert_int_equal(cm_arm_boot_build(cfg, &o, &b, &rep, &err), -EINVAL);
	assert_string_equal(err.what, "no RAM region of cell \"arm-linux\" can hold the images: they need "
			    "0x8404000 bytes, the largest RAM region (#1) has 0x8000000");
	o.decomp_factor = 0;
	/* not a device tree; a tree without #size-cells; a truncated one */
	o.dtb = (const uint8_t *)dts_64;
	o.dtb_len = sizeof(dts_64);
	cm_err_clear(&err);
	assert_int_equal(cm_arm_boot_build(cfg, &o, &b, &rep, &err), -EINVAL);
	assert_string_equal(err.what, "cell.dtb is not a flattened device tree (no 0xd00dfeed magic)");
	free(f->dtb);
	f->dtb = dtc(f->dir, "/dts-v1/;\n/ { #address-cells = <2>; };\n", &f->dtb_len);
	o.dtb = f->dtb;
	o.dtb_len = f->dtb_len;
	cm_err_clear(&err);
	assert_int_equal(cm_arm_boot_build(cfg, &o, &b, &rep, &err), -EINVAL);
	assert_string_equal(err.what, "cell.dtb: the root node has no #size-cells");
	bad = malloc(f->dtb_len);
	memcpy(bad, f->dtb, f->dtb_len);
	o.dtb = bad;
	o.dtb_len = f->dtb_len - 8;
	cm_err_clear(&err);
	assert_int_equal(cm_arm_boot_build(cfg, &o, &b, &rep, &err), -EINVAL);
	assert_non_null(strstr(err.what, "truncated"));
	free(bad);
	/* more memory nodes than it would delete */
	{
		char src[8192];
		size_t n = (size_t)snprintf(src, sizeof(src), "/dts-v1/;\n/ { #address-cells = <1>; "
					    "#size-cells = <1>;\n");

		for (int i = 0; i < 65; i++)
			n += (size_t)snprintf(src + n, sizeof(src) - n, "memory@%x { device_type = "
					      "\"memory\"; reg = <0x%x 0x1000>; };\n", i << 12, i << 12);
		snprintf(src + n, sizeof(src) - n, "};\n");
		free(f->dtb);
		f->dtb = dtc(f->dir, src, &f->dtb_len);
		o.dtb = f->dtb;
		o.dtb_len = f->dtb_len;
		cm_err_clear(&err);
		assert_int_equal(cm_arm_boot_build(cfg, &o, &b, &rep, &err), -EINVAL);
		assert_string_equal(err.what, "cell.dtb has more than 64 memory nodes");
	}
	cm_report_free(&rep);
	cm_config_free(cfg);
	free(k);
	free(k2);
}

/* Random corruption of the tree must never crash or read out of bounds. */
static void dtb_mutations(void **state)
{
	struct fixture *f = *state;
	struct cm_config *cfg = cell_cfg(&arm_cell, CW_ARM64);
	uint8_t *k = image(0x10000, 0, 0);
	unsigned seed = 777;

	if (!need_dtc(f, dts_32))
		skip();
	for (int it = 0; it < 2000; it++) {
		uint8_t *d = malloc(f->dtb_len);
		struct cm_arm_boot_opts o = { .kernel = k, .kernel_len = 0x10000, .dtb = d,
					      .dtb_len = f->dtb_len, .cmdline = "x", .has_initrd = true,
					      .initrd_len = 10 };
		struct cm_arm_boot b;
		struct cm_report rep;
		struct cm_err err = { 0 };

		memcpy(d, f->dtb, f->dtb_len);
		for (int n = 0; n < 3; n++) {
			seed = seed * 1103515245 + 12345;
			d[(seed >> 8) % f->dtb_len] = (uint8_t)(seed >> 20);
		}
		cm_report_init(&rep);
		if (cm_arm_boot_build(cfg, &o, &b, &rep, &err) == 0)
			cm_arm_boot_free(&b);
		cm_report_free(&rep);
		free(d);
	}
	cm_config_free(cfg);
	free(k);
}

/* ---- CLI and boot ---- */


static void write_inputs(struct fixture *f, const struct cw_cell *c, unsigned arch)
{
	size_t len;
	uint8_t *b = cw_build(14, arch, NULL, c, &len);
	uint8_t *k = image(0x123456, 0x80000, 0x200000);
	char initrd[0x12345];

	tu_write(tu_fmt("%s/arm.cell", f->dir), b, len);
	tu_write(tu_fmt("%s/Image", f->dir), k, 0x123456);
	memset(initrd, 0x33, sizeof(initrd));
	tu_write(tu_fmt("%s/rootfs.cpio", f->dir), initrd, sizeof(initrd));
	tu_write(tu_fmt("%s/cell.dtb", f->dir), f->dtb, f->dtb_len);
	free(b);
	free(k);
}

/* -w writes the patched tree and prints upstream's command order (L399-413):
 * loader, -s params, kernel, initrd, tree. */
static void cli_write_dtb(void **state)
{
	struct fixture *f = *state;
	char *out, *got;
	size_t glen;
	uint8_t v[8];
	int code;

	if (!need_dtc(f, dts_64))
		skip();
	write_inputs(f, &arm_cell, CW_ARM64);
	out = tu_run(tu_fmt("cd %s && %s --arch arm64 linux arm.cell Image -d cell.dtb -i rootfs.cpio "
			 "-c 'console=ttyAMA0' -w out.dtb 2>&1", f->dir, cli_path), &code);
	assert_int_equal(code, 0);
	assert_string_equal(out,
		"Patched device tree written to out.dtb. Start Linux with these commands (adjust paths "
		"as needed):\n"
		"\n"
		"jailhouse-cellmgr create arm.cell\n"
		"jailhouse-cellmgr load arm-linux linux-loader.bin -a 0x0 -s 'kernel=0x70280000 "
		"dtb=0x70000000' -a 0x1000 Image -a 0x70280000 rootfs.cpio -a 0x704c8000 out.dtb "
		"-a 0x70000000\n"
		"jailhouse-cellmgr start arm-linux\n");
	free(out);
	got = tu_read(tu_fmt("%s/out.dtb", f->dir), &glen);
	assert_int_equal(fdt_check_full(got, glen), 0);
	be64(v, 0x704c8000);
	assert_prop((uint8_t *)got, "/chosen", "linux,initrd-start", v, 8);
	assert_prop((uint8_t *)got, "/chosen", "bootargs", "console=ttyAMA0", 16);
	free(got);

	/* an AARCH32 cell: the note about the loader */
	write_inputs(f, &(struct cw_cell){ .name = "a32", .flags = 0x5, .cpus = 0xc, .mem = arm_mem,
					   .nmem = 4 }, CW_ARM64);
	got = (char *)zimage(0x2000);
	tu_write(tu_fmt("%s/zImage", f->dir), got, 0x2000);
	free(got);
	out = tu_run(tu_fmt("cd %s && %s --arch arm64 linux arm.cell zImage -d cell.dtb -w out.dtb 2>&1",
			 f->dir, cli_path), &code);
	assert_int_equal(code, 0);
	assert_non_null(strstr(out, "-s 'kernel=0x70002000 dtb=0x70000000' -a 0x1000 zImage -a 0x70002000 "
			       "out.dtb -a 0x70000000\n"));
	assert_non_null(strstr(out, "The cell runs 32-bit ARM (AARCH32): use the 32-bit ARM "
			       "linux-loader.bin"));
	free(out);
	/* ... and without -w it wants that loader */
	out = tu_run(tu_fmt("cd %s && %s --arch arm64 linux arm.cell zImage -d cell.dtb 2>&1", f->dir,
			 cli_path), &code);
	assert_int_equal(code, 1);
	assert_non_null(strstr(out, "cell \"a32\" runs 32-bit ARM (AARCH32): it needs the 32-bit ARM "
			       "linux-loader.bin"));
	free(out);
	/* the kernel file is named in its errors; -d on x86 is refused */
	write_inputs(f, &arm_cell, CW_ARM64);
	tu_write_str(tu_fmt("%s/Image.gz", f->dir), "\x1f\x8b\x08\x00rest");
	out = tu_run(tu_fmt("cd %s && %s --arch arm64 linux arm.cell Image.gz -d cell.dtb -w o 2>&1", f->dir,
			 cli_path), &code);
	assert_int_equal(code, 1);
	assert_non_null(strstr(out, "jailhouse-cellmgr: Image.gz is gzip-compressed, not a bootable arm64 "
			       "Image: Invalid argument\n  hint: pass the uncompressed Image"));
	free(out);
}

/* Boot through the fake driver: one CELL_LOAD with the loader first and
 * its parameters (without NUL) after it. */
static void boot_through_driver(void **state)
{
	struct fixture *f = *state;
	struct fake_hw fh;
	struct cm_hw hw;
	struct cm_config *cfg = cell_cfg(&arm_cell, CW_ARM64);
	struct cm_linux_plan plan;
	struct cm_linux_opts o = { 0 };
	struct cm_report rep;
	struct cm_err err = { 0 };
	uint8_t ld[0x1800];

	if (!need_dtc(f, dts_64))
		skip();
	write_inputs(f, &arm_cell, CW_ARM64);
	memset(ld, 0xcc, sizeof(ld));
	tu_write(tu_fmt("%s/loader.bin", f->dir), ld, sizeof(ld));
	tu_mkdirs(tu_fmt("%s/sys/devices/jailhouse/cells", f->dir));
	fake_hw_init(&fh, strdup(tu_fmt("%s/sys", f->dir)));
	hw = (struct cm_hw){ &fake_hw_ops, &fh, NULL, fh.sysfs_root, NULL, CM_ARCH_ARM64 };
	o.kernel_path = tu_fmt("%s/Image", f->dir);
	o.initrd_path = tu_fmt("%s/rootfs.cpio", f->dir);
	o.dtb_path = tu_fmt("%s/cell.dtb", f->dir);
	o.loader_path = tu_fmt("%s/loader.bin", f->dir);
	o.cmdline = "console=ttyAMA0";
	cm_report_init(&rep);
	assert_int_equal(cm_linux_plan(cfg, &o, true, &plan, &rep, &err), 0);
	assert_int_equal(cm_linux_boot(&hw, cfg, &plan, &rep, &err), 0);
	assert_non_null(strstr(fh.calls[1], "load name=arm-linux n=5 0x0+0x1800 0x1000+0x20 "
			       "0x70280000+0x123456 0x704c8000+0x12345 0x70000000+0x"));
	assert_memory_equal(fh.images[1].data, "kernel=0x70280000 dtb=0x70000000", 0x20);
	assert_memory_equal(fh.images[4].data, plan.arm_boot.dtb, plan.arm_boot.dtb_len);
	assert_string_equal(fh.calls[2], "start name=arm-linux");
	cm_linux_plan_free(&plan);
	/* the loader must lie in LOADABLE memory, as every image */
	cm_config_free(cfg);
	cfg = cell_cfg(&(struct cw_cell){ .name = "x", .flags = 1, .cpus = 0xc, .mem = arm_mem + 1,
					  .nmem = 3 }, CW_ARM64);
	cm_err_clear(&err);
	assert_int_equal(cm_linux_plan(cfg, &o, true, &plan, &rep, &err), -EINVAL);
	assert_string_equal(err.what, "linux loader (0x1800 bytes) at guest address 0x0 is not inside any "
			    "memory region of cell \"x\"");
	fake_hw_reset(&fh);
	free((char *)fh.sysfs_root);
	cm_report_free(&rep);
	cm_config_free(cfg);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(arm64_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(arm64_layout_initrd, setup, teardown),
		cmocka_unit_test_setup_teardown(arm64_low_region_32bit_cells, setup, teardown),
		cmocka_unit_test_setup_teardown(aarch32_layout, setup, teardown),
		cmocka_unit_test(kernel_files),
		cmocka_unit_test_setup_teardown(layout_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(dtb_mutations, setup, teardown),
		cmocka_unit_test_setup_teardown(cli_write_dtb, setup, teardown),
		cmocka_unit_test_setup_teardown(boot_through_driver, setup, teardown),
	};
	cli_path = argc > 1 ? argv[1] : "jailhouse-cellmgr";
	return cmocka_run_group_tests(tests, NULL, NULL);
}
