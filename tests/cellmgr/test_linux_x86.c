/* x86 Linux boot layout: the parameter blob byte by byte, placements, errors,
 * and the CLI's -w output. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "cellmgr/cellmgr.h"
#include "cellmgr/linux_x86.h"
#include "bzimage.h"
#include "samples.h"
#include "testutil.h"

static const char *cli_path;

static struct cm_config *linux_cfg(const struct cw_cell *c)
{
	size_t len;
	uint8_t *b = cw_build(13, CW_X86, NULL, c, &len);
	struct cm_config *cfg;
	struct cm_err err = { 0 };

	assert_int_equal(cm_config_parse(b, len, CM_ARCH_X86, &cfg, &err), 0);
	free(b);
	return cfg;
}

static void p16(uint8_t *p, size_t o, uint16_t v) { p[o] = (uint8_t)v; p[o + 1] = (uint8_t)(v >> 8); }
static void p32(uint8_t *p, size_t o, uint32_t v) { p16(p, o, (uint16_t)v); p16(p, o + 2, (uint16_t)(v >> 16)); }
static void p64(uint8_t *p, size_t o, uint64_t v) { p32(p, o, (uint32_t)v); p32(p, o + 4, (uint32_t)(v >> 32)); }

/* The expected blob, written out from the layout in jailhouse.md §3.1. */
static uint8_t *expected_blob(const uint8_t *kernel, uint32_t initrd_addr, uint32_t initrd_size,
			      const char *cmdline, size_t *len)
{
	size_t n = 0x112c + strlen(cmdline) + 1;
	uint8_t *e = calloc(1, n);

	e[0x1e8] = 3;                                   /* e820 entries */
	memcpy(e + 0x1f0, kernel + 0x1f0, BZ_HDR_END - 0x1f0);
	e[0x210] = 0xff;                                /* type_of_loader */
	p32(e, 0x218, initrd_addr);
	p32(e, 0x21c, initrd_size);
	p32(e, 0x228, 0x212c);                          /* cmd_line_ptr */
	p64(e, 0x230, 0x1000000);                       /* "kernel_alignment" := pref */
	p64(e, 0x250, 0x2000);                          /* setup_data */
	/* e820: low RAM (RAM), comm region (reserved), high RAM (RAM) */
	p64(e, 0x2d0, 0x0);       p64(e, 0x2d8, 0x100000);  p32(e, 0x2e0, 1);
	p64(e, 0x2e4, 0x100000);  p64(e, 0x2ec, 0x1000);    p32(e, 0x2f4, 2);
	p64(e, 0x2f8, 0x200000);  p64(e, 0x300, 0x4700000); p32(e, 0x308, 1);
	/* setup_data at 0x2000: next, type 6, len 284, version 2, compat 1 */
	p32(e, 0x1008, 6);
	p32(e, 0x100c, 284);
	p16(e, 0x1010, 2);
	p16(e, 0x1012, 1);
	e[0x1028] = 1;                                  /* standard_ioapic */
	p32(e, 0x1128, 0x0c);                           /* UARTs 0x3e8 (bit 2), 0x2e8 (bit 3) */
	memcpy(e + 0x112c, cmdline, strlen(cmdline));
	*len = n;
	return e;
}

static void assert_same_bytes(const uint8_t *got, size_t gl, const uint8_t *exp, size_t el)
{
	assert_int_equal(gl, el);
	for (size_t i = 0; i < el; i++)
		if (got[i] != exp[i])
			fail_msg("blob differs at offset 0x%zx: got 0x%02x, expected 0x%02x", i,
				 got[i], exp[i]);
}

static void blob_with_initrd(void **state)
{
	uint8_t *k = bz_make();
	struct cm_config *cfg = linux_cfg(&linux_cell);
	struct cm_x86_boot b;
	struct cm_report rep;
	struct cm_err err = { 0 };
	const char *cmd = "console=ttyS2,115200 earlycon earlyprintk";
	struct cm_x86_boot_opts o = { k, BZ_LEN, true, 0x123456, cmd, 0, NULL };
	uint8_t *exp;
	size_t el;

	(void)state;
	cm_report_init(&rep);
	assert_int_equal(cm_x86_boot_build(cfg, &o, &b, &rep, &err), 0);
	assert_int_equal(rep.n, 0);
	assert_int_equal(b.kernel_addr, 0xffc600);          /* 0x1000000 - 29 * 512 */
	assert_string_equal(b.k.compression, "gzip");
	assert_int_equal(b.factor, 7);
	/* page_align(0xffc600 + 7 * 0x6000) = page_align(0x1026600) */
	assert_int_equal(b.initrd_addr, 0x1027000);
	exp = expected_blob(k, 0x1027000, 0x123456, cmd, &el);
	assert_same_bytes(b.params, b.params_len, exp, el);
	free(exp);
	cm_x86_boot_free(&b);
	cm_report_free(&rep);
	cm_config_free(cfg);
	free(k);
}

static void blob_without_initrd(void **state)
{
	uint8_t *k = bz_make();
	struct cm_config *cfg = linux_cfg(&linux_cell);
	struct cm_x86_boot b;
	struct cm_report rep;
	struct cm_err err = { 0 };
	struct cm_x86_boot_opts o = { k, BZ_LEN, false, 0, NULL, 0, NULL };
	uint8_t *exp;
	size_t el;

	(void)state;
	cm_report_init(&rep);
	assert_int_equal(cm_x86_boot_build(cfg, &o, &b, &rep, &err), 0);
	assert_int_equal(b.initrd_addr, 0);
	exp = expected_blob(k, 0, 0, "", &el);
	assert_int_equal(el, 0x112d);
	assert_same_bytes(b.params, b.params_len, exp, el);
	free(exp);
	cm_x86_boot_free(&b);
	cm_report_free(&rep);
	cm_config_free(cfg);
	free(k);
}

static void factors(void **state)
{
	static const struct { uint8_t m[4]; const char *name; unsigned f; } c[] = {
		{ { 0x42, 0x5a }, "bzip2", 4 }, { { 0x02, 0x21 }, "lz4", 6 },
		{ { 0x89, 0x4c }, "lzo", 6 }, { { 0x1f, 0x9e }, "gzip", 7 },
		{ { 0x5d, 0x00 }, "lzma", 8 }, { { 0xfd, 0x37 }, "xz", 9 },
		{ { 0x28, 0xb5, 0x2f, 0xfd }, "zstd", 9 }, { { 0x7f, 'E', 'L', 'F' }, "uncompressed", 9 },
		{ { 0x00, 0x00 }, "unknown", 9 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		uint8_t *k = bz_make();
		struct cm_x86_kernel ki;
		struct cm_err err = { 0 };

		memcpy(k + (BZ_SETUP_SECTS + 1) * 512 + BZ_PAYLOAD_OFF, c[i].m, 4);
		assert_int_equal(cm_x86_kernel_parse(k, BZ_LEN, &ki, &err), 0);
		assert_string_equal(ki.compression, c[i].name);
		assert_int_equal(ki.factor, c[i].f);
		free(k);
	}
}

static void explicit_factor_and_warning(void **state)
{
	uint8_t *k = bz_make();
	struct cm_config *cfg = linux_cfg(&linux_cell);
	struct cm_x86_boot b;
	struct cm_report rep;
	struct cm_err err = { 0 };
	struct cm_x86_boot_opts o = { k, BZ_LEN, true, 0x1000, NULL, 2, NULL };

	(void)state;
	cm_report_init(&rep);
	/* factor 2: initrd at page_align(0xffc600 + 0xc000) = 0x1009000, inside
	 * the decompression area that ends at 0x1020000 */
	assert_int_equal(cm_x86_boot_build(cfg, &o, &b, &rep, &err), 0);
	assert_int_equal(b.initrd_addr, 0x1009000);
	assert_true(cm_report_has(&rep, CM_SEV_WARN, "decompression area (0x1020000); raise -k"));
	cm_x86_boot_free(&b);
	cm_report_free(&rep);
	cm_config_free(cfg);
	free(k);
}

static void build_errors(void **state)
{
	uint8_t *k = bz_make();
	struct cm_x86_boot b;
	struct cm_report rep;
	struct cm_err err = { 0 };
	struct cm_x86_boot_opts o = { k, BZ_LEN, false, 0, NULL, 0, NULL };
	struct cw_cell c = linux_cell;
	struct cw_mem mem[7];
	struct cm_config *cfg;
	char *longcmd;

	(void)state;
	cm_report_init(&rep);
	c.cpu_reset = 0x1000;
	cfg = linux_cfg(&c);
	assert_int_equal(cm_x86_boot_build(cfg, &o, &b, &rep, &err), -EINVAL);
	assert_non_null(strstr(err.what, "cpu_reset_address 0x1000"));
	cm_config_free(cfg);

	c = linux_cell;
	memcpy(mem, linux_mem, sizeof(mem));
	mem[1].virt = 0x80000000;
	c.mem = mem;
	cfg = linux_cfg(&c);
	cm_err_clear(&err);
	assert_int_equal(cm_x86_boot_build(cfg, &o, &b, &rep, &err), -EINVAL);
	assert_non_null(strstr(err.what, "no comm region at guest address 0x100000"));
	cm_config_free(cfg);

	cfg = linux_cfg(&linux_cell);
	k[0x202] = 'X';
	cm_err_clear(&err);
	o.kernel_name = "bz.img";     /* faults of the kernel file name it */
	assert_int_equal(cm_x86_boot_build(cfg, &o, &b, &rep, &err), -EINVAL);
	assert_non_null(strstr(err.what, "not an x86 bzImage"));
	assert_true(strncmp(err.what, "bz.img: ", 8) == 0);
	o.kernel_name = NULL;
	k[0x202] = 'H';
	k[0x236] = 0;
	cm_err_clear(&err);
	assert_int_equal(cm_x86_boot_build(cfg, &o, &b, &rep, &err), -EINVAL);
	assert_non_null(strstr(err.what, "XLF_KERNEL_64"));
	k[0x236] = 0x7f;
	k[0x201] = 0xf0;   /* header end beyond the e820 table */
	cm_err_clear(&err);
	assert_int_equal(cm_x86_boot_build(cfg, &o, &b, &rep, &err), -EINVAL);
	k[0x201] = BZ_HDR_END - 0x202;
	o.kernel_len = 0x100;
	cm_err_clear(&err);
	assert_int_equal(cm_x86_boot_build(cfg, &o, &b, &rep, &err), -EINVAL);
	o.kernel_len = BZ_LEN;

	longcmd = malloc(0x3000);
	memset(longcmd, 'a', 0x3000 - 0x112c);
	longcmd[0x3000 - 0x112c] = '\0';        /* one byte too long */
	o.cmdline = longcmd;
	cm_err_clear(&err);
	assert_int_equal(cm_x86_boot_build(cfg, &o, &b, &rep, &err), -E2BIG);
	longcmd[0x3000 - 0x112c - 1] = '\0';    /* NUL lands on 0x3fff: fits exactly */
	assert_int_equal(cm_x86_boot_build(cfg, &o, &b, &rep, &err), 0);
	assert_int_equal(b.params_len, 0x3000);
	assert_true(cm_report_has(&rep, CM_SEV_WARN, "keeps only 2047"));
	cm_x86_boot_free(&b);
	free(longcmd);
	cm_config_free(cfg);
	cm_report_free(&rep);
	free(k);
}

static void fit_check_names_region(void **state)
{
	struct cm_config *cfg = linux_cfg(&linux_cell);
	struct cm_err err = { 0 };
	struct cm_load_image ok[] = { { "loader", "", 0x5000, 0 } };
	struct cm_load_image big[] = { { "initrd", "", 0x4000000, 0x1027000 } };
	struct cm_load_image nowhere[] = { { "kernel", "", 0x10, 0x90000000 } };
	struct cm_load_image notload[] = { { "blob", "", 0x10, 0x26e00000 } };

	(void)state;
	assert_int_equal(cm_images_fit(&cfg->cell, ok, 1, &err), 0);
	assert_int_equal(cm_images_fit(&cfg->cell, big, 1, &err), -EINVAL);
	assert_non_null(strstr(err.what, "initrd (0x4000000 bytes at 0x1027000) does not fit into memory region #2 "
			       "(virt 0x200000-0x48fffff): it would end at 0x5026fff, 0x727000 bytes past the region"));
	cm_err_clear(&err);
	assert_int_equal(cm_images_fit(&cfg->cell, nowhere, 1, &err), -EINVAL);
	assert_non_null(strstr(err.what, "not inside any memory region"));
	cm_err_clear(&err);
	assert_int_equal(cm_images_fit(&cfg->cell, notload, 1, &err), -EINVAL);
	assert_non_null(strstr(err.what, "region #3"));
	assert_non_null(strstr(err.what, "not LOADABLE and WRITE"));
	cm_config_free(cfg);
}

/* The CLI's -w: writes the blob and prints the equivalent commands. */
static void cli_write_params(void **state)
{
	char *dir = tu_tmpdir();
	uint8_t *k = bz_make();
	size_t len, el, gl;
	uint8_t *cell = cw_build(13, CW_X86, NULL, &linux_cell, &len);
	char initrd[0x2345];
	const char *cmd;
	char *out, *got;
	uint8_t *exp;
	FILE *p;
	size_t n;
	int st;

	(void)state;
	memset(initrd, 0x5a, sizeof(initrd));
	tu_write(tu_fmt("%s/demo.cell", dir), cell, len);
	tu_write(tu_fmt("%s/bzImage", dir), k, BZ_LEN);
	tu_write(tu_fmt("%s/rootfs.cpio", dir), initrd, sizeof(initrd));
	cmd = tu_fmt("cd %s && %s --arch x86 linux demo.cell bzImage -i rootfs.cpio "
		     "-w out.file -c 'console=ttyS2,115200 earlycon earlyprintk' 2>&1", dir, cli_path);
	p = popen(cmd, "r");
	out = calloc(1, 4096);
	n = fread(out, 1, 4095, p);
	st = pclose(p);
	(void)n;
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_string_equal(out,
		"Boot parameters written to out.file. Start Linux with these commands (adjust paths as needed):\n"
		"\n"
		"jailhouse-cellmgr create demo.cell\n"
		"jailhouse-cellmgr load agl-linux-x86-demo linux-loader.bin -a 0x0 bzImage -a 0xffc600 "
		"rootfs.cpio -a 0x1027000 out.file -a 0x1000\n"
		"jailhouse-cellmgr start agl-linux-x86-demo\n");
	got = tu_read(tu_fmt("%s/out.file", dir), &gl);
	exp = expected_blob(k, 0x1027000, sizeof(initrd), "console=ttyS2,115200 earlycon earlyprintk", &el);
	assert_same_bytes((uint8_t *)got, gl, exp, el);
	free(got);
	free(exp);
	free(out);

	/* An image that does not fit names the region and fails. */
	cmd = tu_fmt("cd %s && truncate -s 64M big.cpio && %s --arch x86 linux demo.cell bzImage "
		     "-i big.cpio -w out2.file 2>&1", dir, cli_path);
	p = popen(cmd, "r");
	out = calloc(1, 4096);
	n = fread(out, 1, 4095, p);
	st = pclose(p);
	assert_int_equal(WEXITSTATUS(st), 1);
	assert_non_null(strstr(out, "initrd (0x4000000 bytes at 0x1027000) does not fit into memory region #2"));
	assert_non_null(strstr(out, "hint:"));
	free(out);
	free(cell);
	free(k);
	tu_rmrf(dir);
	free(dir);
}


/* Regression: the printed `start` line lacked --name for an all-digit cell
 * name, so it addressed cell id 123 instead of the cell named "123". */
static void cli_numeric_name(void **state)
{
	char *dir = tu_tmpdir();
	uint8_t *k = bz_make();
	struct cw_cell c = linux_cell;
	uint8_t *cell;
	size_t len;
	char *out;
	int code;

	(void)state;
	c.name = "123";
	cell = cw_build(13, CW_X86, NULL, &c, &len);
	tu_write(tu_fmt("%s/n.cell", dir), cell, len);
	tu_write(tu_fmt("%s/bzImage", dir), k, BZ_LEN);
	out = tu_run(tu_fmt("cd %s && %s --arch x86 linux n.cell bzImage -w out.file 2>&1", dir, cli_path),
		  &code);
	assert_int_equal(code, 0);
	assert_non_null(strstr(out, "jailhouse-cellmgr load --name 123 linux-loader.bin"));
	if (!strstr(out, "jailhouse-cellmgr start --name 123\n"))
		fail_msg("start line without --name:\n%s", out);
	free(out);
	free(cell);
	free(k);
	tu_rmrf(dir);
	free(dir);
}

/* Regression: quoted words were cut at 512 bytes, so a long -w path was
 * printed truncated.  Paths of 600+ bytes must come out whole. */
static void cli_long_paths(void **state)
{
	char *dir = tu_tmpdir();
	char seg[201], sub[700];
	uint8_t *k = bz_make();
	size_t len;
	uint8_t *cell = cw_build(13, CW_X86, NULL, &linux_cell, &len);
	char *out;
	int code;

	(void)state;
	memset(seg, 'd', 200);
	seg[200] = '\0';
	/* three 200-byte directory names and a space, so the word is quoted */
	snprintf(sub, sizeof(sub), "%s/%s/%s x", seg, seg, seg);
	tu_mkdirs(tu_fmt("%s/%s", dir, sub));
	tu_write(tu_fmt("%s/%s/demo.cell", dir, sub), cell, len);
	tu_write(tu_fmt("%s/%s/bzImage", dir, sub), k, BZ_LEN);
	out = tu_run(tu_fmt("cd '%s' && %s --arch x86 linux '%s/demo.cell' '%s/bzImage' -w '%s/out.file' 2>&1",
			 dir, cli_path, sub, sub, sub), &code);
	assert_int_equal(code, 0);
	if (!strstr(out, tu_fmt("jailhouse-cellmgr create '%s/demo.cell'\n", sub)) ||
	    !strstr(out, tu_fmt(" '%s/bzImage' -a 0xffc600 '%s/out.file' -a 0x1000\n", sub, sub)))
		fail_msg("paths printed truncated:\n%s", out);
	free(out);
	free(cell);
	free(k);
	tu_rmrf(dir);
	free(dir);
}

/* Regression: a command line that is too long was reported as a fault of
 * the kernel file ("bzImage: kernel command line is ..."). */
static void cli_long_cmdline_not_kernel_fault(void **state)
{
	char *dir = tu_tmpdir();
	uint8_t *k = bz_make();
	size_t len;
	uint8_t *cell = cw_build(13, CW_X86, NULL, &linux_cell, &len);
	char *longcmd = malloc(7893);
	char *out;
	int code;

	(void)state;
	memset(longcmd, 'a', 7892);     /* one byte more than fits */
	longcmd[7892] = '\0';
	tu_write(tu_fmt("%s/demo.cell", dir), cell, len);
	tu_write(tu_fmt("%s/bzImage", dir), k, BZ_LEN);
	tu_write_str(tu_fmt("%s/cmdline", dir), longcmd);
	out = tu_run(tu_fmt("cd %s && %s --arch x86 linux demo.cell bzImage -c \"$(cat cmdline)\" -w out.file 2>&1",
			 dir, cli_path), &code);
	assert_int_equal(code, 1);
	assert_non_null(strstr(out, "command line"));
	assert_non_null(strstr(out, "7892 bytes"));
	if (strstr(out, "bzImage"))
		fail_msg("the kernel file is blamed for the command line:\n%s", out);
	free(out);
	free(longcmd);
	free(cell);
	free(k);
	tu_rmrf(dir);
	free(dir);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(blob_with_initrd),
		cmocka_unit_test(blob_without_initrd),
		cmocka_unit_test(factors),
		cmocka_unit_test(explicit_factor_and_warning),
		cmocka_unit_test(build_errors),
		cmocka_unit_test(fit_check_names_region),
		cmocka_unit_test(cli_write_params),
		cmocka_unit_test(cli_numeric_name),
		cmocka_unit_test(cli_long_paths),
		cmocka_unit_test(cli_long_cmdline_not_kernel_fault),
	};
	cli_path = argc > 1 ? argv[1] : "jailhouse-cellmgr";
	return cmocka_run_group_tests(tests, NULL, NULL);
}
