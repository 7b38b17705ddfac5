/* enable/disable/create/load/start/shutdown/destroy/list and the Linux boot
 * through the fake hardware ops; error explanations; system up/down; the
 * real ops where they can run without Jailhouse. */
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
#include "cellmgr/sysfs.h"
#include "cellmgr/system.h"
#include "bzimage.h"
#include "fake_hw.h"
#include "samples.h"
#include "testutil.h"

static const char *cli_path;

struct env {
	char *dir;
	struct fake_hw f;
	struct cm_hw hw;
	struct cm_report rep;
	struct cm_err err;
	const char *root_cfg, *cell_cfg, *kernel, *initrd, *loader;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	size_t len;
	uint8_t *b;

	e->dir = tu_tmpdir();
	tu_mkdirs(tu_fmt("%s/sys/devices/jailhouse/cells", e->dir));
	tu_mkdirs(tu_fmt("%s/firmware", e->dir));
	tu_write_str(tu_fmt("%s/sys/devices/jailhouse/enabled", e->dir), "0\n");
	tu_write_str(tu_fmt("%s/jailhouse", e->dir), "");
	fake_hw_init(&e->f, strdup(tu_fmt("%s/sys", e->dir)));
	e->hw = (struct cm_hw){ &fake_hw_ops, &e->f, strdup(tu_fmt("%s/jailhouse", e->dir)),
				e->f.sysfs_root, strdup(tu_fmt("%s/firmware", e->dir)), CM_ARCH_X86 };
	b = cw_build(14, CW_X86, &root_sys, &root_cell, &len);
	e->root_cfg = strdup(tu_fmt("%s/root.cell", e->dir));
	tu_write(e->root_cfg, b, len);
	free(b);
	b = cw_build(14, CW_X86, NULL, &linux_cell, &len);
	e->cell_cfg = strdup(tu_fmt("%s/linux.cell", e->dir));
	tu_write(e->cell_cfg, b, len);
	free(b);
	b = bz_make();
	e->kernel = strdup(tu_fmt("%s/bzImage", e->dir));
	tu_write(e->kernel, b, BZ_LEN);
	free(b);
	e->initrd = strdup(tu_fmt("%s/initrd", e->dir));
	tu_write_str(e->initrd, "initrd-bytes");
	e->loader = strdup(tu_fmt("%s/linux-loader.bin", e->dir));
	{
		uint8_t ld[0x5000];

		memset(ld, 0xcc, sizeof(ld));
		memset(ld + 0x1000, 0, 0x3000);   /* .cmdline area is zero */
		tu_write(e->loader, ld, sizeof(ld));
	}
	cm_report_init(&e->rep);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	fake_hw_reset(&e->f);
	cm_report_free(&e->rep);
	tu_rmrf(e->dir);
	free(e->dir);
	free((char *)e->f.sysfs_root);
	free((char *)e->hw.dev_path);
	free((char *)e->hw.firmware_dir);
	free((char *)e->root_cfg);
	free((char *)e->cell_cfg);
	free((char *)e->kernel);
	free((char *)e->initrd);
	free((char *)e->loader);
	free(e);
	return 0;
}

static void enable_ok(void **state)
{
	struct env *e = *state;
	size_t len;
	uint8_t *b = cw_build(14, CW_X86, &root_sys, &root_cell, &len);

	assert_int_equal(cm_enable(&e->hw, e->root_cfg, &e->rep, &e->err), 0);
	assert_int_equal(e->f.ncalls, 2);
	assert_string_equal(e->f.calls[0], "module jailhouse");
	assert_string_equal(e->f.calls[1], tu_fmt("enable len=%zu sig=JHSYS", len));
	/* no firmware in the firmware dir: warned, not fatal */
	assert_true(cm_report_has(&e->rep, CM_SEV_WARN, "no hypervisor firmware (jailhouse-intel.bin or jailhouse-amd.bin)"));
	assert_int_equal(cm_sysfs_enabled(e->hw.sysfs_root), 1);
	free(b);
}

static void enable_errors(void **state)
{
	struct env *e = *state;

	e->f.ret_module_jailhouse = -ENOENT;
	assert_int_equal(cm_enable(&e->hw, e->root_cfg, &e->rep, &e->err), -ENOENT);
	assert_string_equal(e->err.what, "kernel module jailhouse not found");
	assert_non_null(strstr(e->err.hint, "depmod"));
	assert_int_equal(fake_hw_find(&e->f, "enable"), -1);

	e->f.ret_module_jailhouse = 0;
	e->f.ret_enable = -EIO;
	cm_err_clear(&e->err);
	assert_int_equal(cm_enable(&e->hw, e->root_cfg, &e->rep, &e->err), -EIO);
	assert_non_null(strstr(e->err.what, "JAILHOUSE_ENABLE with \"AGL-Jailhouse-RootCell\" failed"));
	assert_non_null(strstr(e->err.hint, "nested virtualisation"));

	/* ENOENT while the device exists: the firmware is missing */
	e->f.ret_enable = -ENOENT;
	cm_err_clear(&e->err);
	assert_int_equal(cm_enable(&e->hw, e->root_cfg, &e->rep, &e->err), -ENOENT);
	assert_non_null(strstr(e->err.hint, "firmware missing"));

	e->f.ret_enable = -EINVAL;
	cm_err_clear(&e->err);
	assert_int_equal(cm_enable(&e->hw, e->root_cfg, &e->rep, &e->err), -EINVAL);
	assert_non_null(strstr(e->err.hint, "memmap="));

	/* a cell config is refused before anything is loaded */
	fake_hw_reset(&e->f);
	cm_err_clear(&e->err);
	assert_int_equal(cm_enable(&e->hw, e->cell_cfg, &e->rep, &e->err), -EINVAL);
	assert_non_null(strstr(e->err.what, "is a cell configuration, expected a system"));
	assert_int_equal(e->f.ncalls, 0);
}

static void enable_refuses_bad_config(void **state)
{
	struct env *e = *state;
	struct cw_mem mem[8];
	struct cw_cell c = root_cell;
	size_t len;
	uint8_t *b;

	memcpy(mem, root_mem, sizeof(mem));
	mem[2].phys = mem[2].virt = 0x22000000;   /* over the hypervisor memory */
	c.mem = mem;
	b = cw_build(14, CW_X86, &root_sys, &c, &len);
	tu_write(e->root_cfg, b, len);
	free(b);
	assert_int_equal(cm_enable(&e->hw, e->root_cfg, &e->rep, &e->err), -EINVAL);
	assert_non_null(strstr(e->err.what, "configuration error(s)"));
	assert_true(cm_report_has(&e->rep, CM_SEV_ERR, "overlaps the hypervisor memory"));
	assert_int_equal(e->f.ncalls, 0);
}

static void create_and_cell_ops(void **state)
{
	struct env *e = *state;
	struct cm_config *cfg;
	struct cm_cell_ref ref;
	int id;

	assert_int_equal(cm_config_open(&e->hw, e->cell_cfg, CM_CFG_CELL, &cfg, &e->rep, &e->err), 0);
	e->f.ret_create = -E2BIG;
	assert_int_equal(cm_cell_create(&e->hw, cfg, false, &id, &e->rep, &e->err), -E2BIG);
	assert_non_null(strstr(e->err.what, "JAILHOUSE_CELL_CREATE for cell \"agl-linux-x86-demo\" failed"));
	assert_non_null(strstr(e->err.hint, "IOAPIC id"));
	e->f.ret_create = 0;
	cm_err_clear(&e->err);
	assert_int_equal(cm_cell_create(&e->hw, cfg, false, &id, &e->rep, &e->err), 0);
	assert_int_equal(id, 1);

	assert_int_equal(cm_cell_ref_parse("agl-linux-x86-demo", false, &ref), 0);
	assert_int_equal(cm_cell_start(&e->hw, &ref, &e->err), 0);
	assert_int_equal(cm_cell_ref_parse("1", false, &ref), 0);
	assert_int_equal(cm_cell_shutdown(&e->hw, &ref, &e->err), 0);
	assert_int_equal(cm_cell_destroy(&e->hw, &ref, &e->err), 0);
	assert_int_equal(cm_cell_ref_parse("1", true, &ref), 0);   /* --name 1 */
	assert_int_equal(ref.id, -1);
	assert_string_equal(e->f.calls[2], "start name=agl-linux-x86-demo");
	assert_string_equal(e->f.calls[3], "load id=1 n=0");
	assert_string_equal(e->f.calls[4], "destroy id=1");

	e->f.ret_destroy = -EINVAL;
	assert_int_equal(cm_cell_ref_parse("0", false, &ref), 0);
	assert_int_equal(cm_cell_destroy(&e->hw, &ref, &e->err), -EINVAL);
	e->f.ret_start = -ENOENT;
	cm_err_clear(&e->err);
	assert_int_equal(cm_cell_ref_parse("ghost", false, &ref), 0);
	assert_int_equal(cm_cell_start(&e->hw, &ref, &e->err), -ENOENT);
	assert_non_null(strstr(e->err.hint, "no such cell"));
	assert_int_equal(cm_cell_ref_parse("0123456789012345678901234567890123", false, &ref),
			 -ENAMETOOLONG);
	cm_config_free(cfg);
}

static void root_cell_hint(void **state)
{
	struct env *e = *state;
	struct cm_cell_ref ref = { .id = 0 };

	e->f.ret_destroy = -EINVAL;
	assert_int_equal(cm_cell_destroy(&e->hw, &ref, &e->err), -EINVAL);
	assert_non_null(strstr(e->err.hint, "root cell"));
}

static void linux_boot(void **state)
{
	struct env *e = *state;
	struct cm_config *cfg;
	struct cm_linux_plan plan;
	struct cm_linux_opts o = { e->kernel, e->initrd, "console=ttyS0", e->loader, 0, NULL };

	assert_int_equal(cm_config_open(&e->hw, e->cell_cfg, CM_CFG_CELL, &cfg, &e->rep, &e->err), 0);
	assert_int_equal(cm_linux_plan(cfg, &o, true, &plan, &e->rep, &e->err), 0);
	assert_int_equal(cm_linux_boot(&e->hw, cfg, &plan, &e->rep, &e->err), 0);
	assert_int_equal(e->f.ncalls, 3);
	assert_string_equal(e->f.calls[0], tu_fmt("create len=%zu name=agl-linux-x86-demo",
						  (size_t)132 + 8 + 7 * 32 + 32 + 8 + 56));
	/* one load, loader first and parameters last */
	assert_string_equal(e->f.calls[1], tu_fmt("load name=agl-linux-x86-demo n=4 0x0+0x5000 "
						  "0xffc600+0x6000 0x1027000+0xc 0x1000+0x%zx",
						  (size_t)0x112c + strlen("console=ttyS0") + 1));
	assert_string_equal(e->f.calls[2], "start name=agl-linux-x86-demo");
	assert_int_equal(e->f.images[0].data[0], 0xcc);
	assert_memory_equal(e->f.images[3].data, plan.boot.params, plan.boot.params_len);
	assert_memory_equal(e->f.images[2].data, "initrd-bytes", 12);

	/* Again: the cell exists; it is reused like `jailhouse cell linux` does. */
	e->f.ret_create = -EEXIST;
	assert_int_equal(cm_linux_boot(&e->hw, cfg, &plan, &e->rep, &e->err), 0);
	assert_true(cm_report_has(&e->rep, CM_SEV_WARN, "exists already; reusing it"));
	cm_linux_plan_free(&plan);

	/* Missing loader: says which file and how to pass another */
	o.loader_path = tu_fmt("%s/nope.bin", e->dir);
	assert_int_equal(cm_linux_plan(cfg, &o, true, &plan, &e->rep, &e->err), -ENOENT);
	assert_non_null(strstr(e->err.what, "nope.bin"));
	assert_non_null(strstr(e->err.hint, "--loader"));
	cm_config_free(cfg);
}

/* Where the tool knows the cell boots Linux, it says that Linux never
 * answers through the comm region. */
static void linux_without_passive_commreg(void **state)
{
	struct env *e = *state;
	struct cw_cell c = linux_cell;
	struct cm_config *cfg;
	struct cm_linux_plan plan;
	struct cm_linux_opts o = { e->kernel, NULL, NULL, e->loader, 0, NULL };
	size_t len;
	uint8_t *b;

	c.flags = 0;
	b = cw_build(14, CW_X86, NULL, &c, &len);
	tu_write(e->cell_cfg, b, len);
	free(b);
	assert_int_equal(cm_config_open(&e->hw, e->cell_cfg, CM_CFG_CELL, &cfg, &e->rep, &e->err), 0);
	assert_true(cm_report_has(&e->rep, CM_SEV_WARN, "does not set PASSIVE_COMMREG"));
	assert_false(cm_report_has(&e->rep, CM_SEV_WARN, "boots Linux"));
	assert_int_equal(cm_linux_plan(cfg, &o, true, &plan, &e->rep, &e->err), 0);
	assert_true(cm_report_has(&e->rep, CM_SEV_WARN, "boots Linux, which never answers through the "
				  "comm region, but its config does not set PASSIVE_COMMREG"));
	assert_true(cm_report_has(&e->rep, CM_SEV_WARN, "will hang (msg_reply_timeout 0 waits forever)"));
	cm_linux_plan_free(&plan);
	cm_config_free(cfg);
}

static void list_cells(void **state)
{
	struct env *e = *state;
	const char *r = e->hw.sysfs_root;
	struct cm_cell_info *c;
	size_t n;
	char out[2048];
	FILE *p;
	int st;

	tu_write_str(tu_fmt("%s/devices/jailhouse/enabled", r), "1\n");
	tu_write_str(tu_fmt("%s/devices/jailhouse/cells/0/name", r), "RootCell\n");
	tu_write_str(tu_fmt("%s/devices/jailhouse/cells/0/state", r), "running\n");
	tu_write_str(tu_fmt("%s/devices/jailhouse/cells/0/cpus_assigned_list", r), "0-1\n");
	tu_write_str(tu_fmt("%s/devices/jailhouse/cells/0/cpus_failed_list", r), "\n");
	tu_write_str(tu_fmt("%s/devices/jailhouse/cells/12/name", r), "linux\n");
	tu_write_str(tu_fmt("%s/devices/jailhouse/cells/12/state", r), "failed\n");
	tu_write_str(tu_fmt("%s/devices/jailhouse/cells/12/cpus_assigned_list", r), "2-3\n");
	tu_write_str(tu_fmt("%s/devices/jailhouse/cells/12/cpus_failed_list", r), "3\n");
	tu_write_str(tu_fmt("%s/devices/jailhouse/cells/2/name", r), "ivshmem-demo\n");
	tu_write_str(tu_fmt("%s/devices/jailhouse/cells/2/state", r), "shut down\n");
	assert_int_equal(cm_sysfs_cells(r, &c, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(c[0].id, 0);
	assert_int_equal(c[1].id, 2);
	assert_int_equal(c[2].id, 12);
	assert_string_equal(c[2].name, "linux");
	assert_string_equal(c[2].state, "failed");
	assert_string_equal(c[2].cpus_failed, "3");
	assert_string_equal(c[1].cpus, "?");
	free(c);

	p = popen(tu_fmt("%s --sysfs %s list", cli_path, r), "r");
	memset(out, 0, sizeof(out));
	if (fread(out, 1, sizeof(out) - 1, p) == 0)
		fail();
	st = pclose(p);
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_string_equal(out,
		"ID      Name                    State             Assigned CPUs           Failed CPUs\n"
		"0       RootCell                running           0-1                     \n"
		"2       ivshmem-demo            shut down         ?                       \n"
		"12      linux                   failed            2-3                     3\n");
}

static int links_ready_cb(void *opaque, const struct cm_link *links, size_t n, struct cm_err *err)
{
	struct fake_hw *f = opaque;
	(void)links; (void)err;
	/* Marks the moment back-ends would start: must be before create. */
	char *s = strdup(n ? "links-ready" : "links-ready(none)");
	f->calls[f->ncalls++] = s;
	return 0;
}

static void system_up_down(void **state)
{
	struct env *e = *state;
	const char *dump = tu_fmt("%s/empty.dump", e->dir);
	struct cm_up_cell cells[1] = { {
		.config_path = e->cell_cfg, .kind = CM_UP_LINUX,
		.linux_opts = { .kernel_path = e->kernel, .loader_path = e->loader },
	} };
	struct cm_up_plan plan = {
		.root_config = e->root_cfg, .pci_dump = dump, .cells = cells, .n_cells = 1,
		.links_ready = links_ready_cb, .opaque = &e->f,
	};
	const char *names[] = { "agl-linux-x86-demo" };

	tu_write_str(dump, "");
	assert_int_equal(cm_system_up(&e->hw, &plan, &e->rep, &e->err), 0);
	assert_string_equal(e->f.calls[0], "module jailhouse");
	assert_int_equal(strncmp(e->f.calls[1], "enable", 6), 0);
	assert_string_equal(e->f.calls[2], "links-ready(none)");
	assert_int_equal(strncmp(e->f.calls[3], "create", 6), 0);
	assert_int_equal(strncmp(e->f.calls[4], "load name=agl-linux-x86-demo n=3", 32), 0);
	assert_string_equal(e->f.calls[5], "start name=agl-linux-x86-demo");
	fake_hw_reset(&e->f);

	e->f.ret_destroy = -ENOENT;   /* gone already: fine */
	assert_int_equal(cm_system_down(&e->hw, names, 1, true, &e->err), 0);
	/* shutdown (a load without images), destroy, then disable */
	assert_string_equal(e->f.calls[0], "load name=agl-linux-x86-demo n=0");
	assert_string_equal(e->f.calls[1], "destroy name=agl-linux-x86-demo");
	assert_string_equal(e->f.calls[2], "disable");
	assert_int_equal(e->f.ncalls, 3);
	fake_hw_reset(&e->f);

	/* without disable the root cell stays as it is */
	e->f.ret_destroy = 0;
	assert_int_equal(cm_system_down(&e->hw, names, 1, false, &e->err), 0);
	assert_int_equal(e->f.ncalls, 2);
	assert_string_equal(e->f.calls[1], "destroy name=agl-linux-x86-demo");
	fake_hw_reset(&e->f);

	/* a cell that refuses: the error is reported, nothing is disabled */
	e->f.ret_load = -EPERM;
	assert_int_equal(cm_system_down(&e->hw, names, 1, true, &e->err), -EPERM);
	assert_int_equal(e->f.ncalls, 1);
	assert_non_null(strstr(e->err.what, "JAILHOUSE_CELL_LOAD (shutdown) cell \"agl-linux-x86-demo\" failed"));
}

static void real_ops_without_hardware(void **state)
{
	struct env *e = *state;
	struct cm_hw_real *r;
	const char *moddir = tu_fmt("%s/modules", e->dir);
	const char *dev = tu_fmt("%s/jailhouse", e->dir);   /* a regular file */
	struct cm_cell_ref ref = { .id = 1 };
	char *moddir_s = strdup(moddir), *dev_s = strdup(dev);

	tu_mkdirs(moddir);
	assert_int_equal(cm_hw_real_new(dev_s, moddir_s, &r), 0);
	/* libkmod on an empty module directory: "not found" */
	assert_int_equal(cm_hw_real_ops.load_module(r, "jailhouse"), -ENOENT);
	/* ioctls on something that is not the jailhouse device */
	assert_int_equal(cm_hw_real_ops.disable(r), -ENOTTY);
	assert_int_equal(cm_hw_real_ops.cell_start(r, &ref), -ENOTTY);
	assert_int_equal(cm_hw_real_ops.sysfs_write(r, tu_fmt("%s/nonexistent", e->dir), "x"), -ENOENT);
	assert_int_equal(cm_hw_real_ops.sysfs_write(r, dev_s, "1"), 0);
	cm_hw_real_free(r);
	free(moddir_s);
	free(dev_s);
}

static void cli_enable_missing_module(void **state)
{
	struct env *e = *state;
	char out[2048] = { 0 };
	FILE *p;
	int st;

	tu_mkdirs(tu_fmt("%s/modules", e->dir));
	/* --arch: the fixture is an x86 system; on another host the CLI would
	 * refuse it for its architecture before looking for the module. */
	p = popen(tu_fmt("%s --arch x86 --module-dir %s/modules --dev %s/nodev enable %s 2>&1",
			 cli_path, e->dir, e->dir, e->root_cfg), "r");
	if (fread(out, 1, sizeof(out) - 1, p) == 0)
		fail();
	st = pclose(p);
	assert_int_equal(WEXITSTATUS(st), 1);
	assert_string_equal(out,
		"jailhouse-cellmgr: kernel module jailhouse not found: No such file or directory\n"
		"  hint: install the Jailhouse driver (jailhouse.ko, usually under "
		"/lib/modules/$(uname -r)/extra) and run depmod\n");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(enable_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(enable_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(enable_refuses_bad_config, setup, teardown),
		cmocka_unit_test_setup_teardown(create_and_cell_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(root_cell_hint, setup, teardown),
		cmocka_unit_test_setup_teardown(linux_boot, setup, teardown),
		cmocka_unit_test_setup_teardown(linux_without_passive_commreg, setup, teardown),
		cmocka_unit_test_setup_teardown(list_cells, setup, teardown),
		cmocka_unit_test_setup_teardown(system_up_down, setup, teardown),
		cmocka_unit_test_setup_teardown(real_ops_without_hardware, setup, teardown),
		cmocka_unit_test_setup_teardown(cli_enable_missing_module, setup, teardown),
	};
	cli_path = argc > 1 ? argv[1] : "jailhouse-cellmgr";
	return cmocka_run_group_tests(tests, NULL, NULL);
}
