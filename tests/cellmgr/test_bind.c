/* IVSHMEM discovery from libpci dumps, protocol decoding, binding through a
 * fake sysfs tree, and the BDF -> /dev/uioN mapping. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "cellmgr/bind.h"
#include "cellmgr/pcidev.h"
#include "fake_hw.h"
#include "testutil.h"

static const char *cli_path;

/* One device in `lspci -x` format (64 bytes of config space). */
static void dump_dev(FILE *f, const char *bdf, uint16_t ven, uint16_t dev, uint32_t class24,
		     uint16_t sv, uint16_t sd)
{
	uint8_t c[64] = { 0 };

	c[0] = ven & 0xff; c[1] = ven >> 8; c[2] = dev & 0xff; c[3] = dev >> 8;
	c[4] = 0x07; c[6] = 0x10;
	c[9] = class24 & 0xff; c[10] = (class24 >> 8) & 0xff; c[11] = class24 >> 16;
	c[0x2c] = sv & 0xff; c[0x2d] = sv >> 8; c[0x2e] = sd & 0xff; c[0x2f] = sd >> 8;
	fprintf(f, "%s Unassigned class [%04x]: Siemens AG Device %04x\n", bdf, class24 >> 8, dev);
	for (int row = 0; row < 64; row += 16) {
		fprintf(f, "%02x:", row);
		for (int i = 0; i < 16; i++)
			fprintf(f, " %02x", c[row + i]);
		fprintf(f, "\n");
	}
	fprintf(f, "\n");
}

struct env {
	char *dir, *sys, *dump;
	struct fake_hw f;
	struct cm_hw hw;
	int next_uio;
	int newid_calls;
};

static const char *const bdfs[] = { "0000:00:0c.0", "0000:00:0d.0", "0000:00:0e.0",
				    "0000:00:0f.0", "0000:00:1f.0", "0001:00:00.0" };

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	FILE *f;

	e->dir = tu_tmpdir();
	e->sys = strdup(tu_fmt("%s/sys", e->dir));
	e->dump = strdup(tu_fmt("%s/lspci.dump", e->dir));
	f = fopen(e->dump, "w");
	dump_dev(f, "00:0c.0", 0x110a, 0x4106, 0xffc002, 0x110a, 0x4106);   /* blk back-end */
	dump_dev(f, "00:0d.0", 0x110a, 0x4106, 0xff8003, 0x110a, 0x4106);   /* console front-end */
	dump_dev(f, "00:0e.0", 0x110a, 0x4106, 0xff0000, 0x110a, 0x4106);   /* raw */
	dump_dev(f, "00:0f.0", 0x110a, 0x4106, 0xff0001, 0x110a, 0x4106);   /* veth */
	dump_dev(f, "00:1f.0", 0x8086, 0x2918, 0x060100, 0x1af4, 0x1100);   /* not ours */
	dump_dev(f, "0001:00:00.0", 0x110a, 0x4106, 0xffc003, 0x1af4, 0x1100); /* console back-end, QEMU ids */
	fclose(f);
	for (size_t i = 0; i < sizeof(bdfs) / sizeof(bdfs[0]); i++) {
		tu_mkdirs(tu_fmt("%s/devices/pci0000:00/%s", e->sys, bdfs[i]));
		tu_write_str(tu_fmt("%s/devices/pci0000:00/%s/driver_override", e->sys, bdfs[i]), "(null)\n");
		tu_symlink(tu_fmt("../../../devices/pci0000:00/%s", bdfs[i]),
			   tu_fmt("%s/bus/pci/devices/%s", e->sys, bdfs[i]));
	}
	tu_mkdirs(tu_fmt("%s/bus/pci/drivers/uio_ivshmem", e->sys));
	tu_mkdirs(tu_fmt("%s/bus/pci/drivers/virtio_ivshmem", e->sys));
	/* the raw link is bound already (uio_ivshmem's own id table) */
	tu_symlink("../../../bus/pci/drivers/uio_ivshmem",
		   tu_fmt("%s/devices/pci0000:00/0000:00:0e.0/driver", e->sys));
	tu_mkdirs(tu_fmt("%s/devices/pci0000:00/0000:00:0e.0/uio/uio0", e->sys));
	e->next_uio = 1;
	fake_hw_init(&e->f, e->sys);
	e->f.hook_data = e;
	e->hw = (struct cm_hw){ &fake_hw_ops, &e->f, NULL, e->sys, NULL, CM_ARCH_X86 };
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	fake_hw_reset(&e->f);
	tu_rmrf(e->dir);
	free(e->dir);
	free(e->sys);
	free(e->dump);
	free(e);
	return 0;
}

static void bind_dev(struct env *e, const char *bdf)
{
	tu_symlink("../../../bus/pci/drivers/uio_ivshmem",
		   tu_fmt("%s/devices/pci0000:00/%s/driver", e->sys, bdf));
	tu_mkdirs(tu_fmt("%s/devices/pci0000:00/%s/uio/uio%d", e->sys, bdf, e->next_uio++));
}

/* What the kernel does for the attributes we write. */
static int kernel_hook(struct fake_hw *f, const char *path, const char *value)
{
	struct env *e = f->hook_data;
	const char *rel = path + strlen(e->sys);

	if (!strcmp(rel, "/bus/pci/drivers_probe")) {
		char *ov = tu_read(tu_fmt("%s/bus/pci/devices/%s/driver_override", e->sys, value), NULL);

		if (ov && !strcmp(ov, "uio_ivshmem"))
			bind_dev(e, value);
		free(ov);
		return 0;
	}
	if (strstr(rel, "/driver_override")) {
		tu_write_str(path, value);
		return 0;
	}
	if (!strcmp(rel, "/bus/pci/drivers/uio_ivshmem/new_id")) {
		/* second time: the id exists; older kernels do not probe then */
		if (e->newid_calls++)
			return -EEXIST;
		if (!strncmp(value, "110a 4106 110a 4106 ffc002", 26))
			bind_dev(e, "0000:00:0c.0");
		return 0;
	}
	if (!strcmp(rel, "/bus/pci/drivers/uio_ivshmem/bind")) {
		bind_dev(e, value);
		return 0;
	}
	return -ENOENT;
}

static void scan_dump(void **state)
{
	struct env *e = *state;
	struct cm_ivshmem_pci *d;
	struct cm_err err = { 0 };
	size_t n;

	assert_int_equal(cm_pci_scan(e->dump, &d, &n, &err), 0);
	assert_int_equal(n, 5);
	assert_string_equal(d[0].bdf, "0000:00:0c.0");
	assert_int_equal(d[0].protocol, 0xc002);
	assert_int_equal(d[0].class_code, 0xffc002);
	assert_int_equal(cm_proto_kind(d[0].protocol), CM_PROTO_VIRTIO_BACK);
	assert_int_equal(cm_proto_virtio_id(d[0].protocol), 2);
	assert_int_equal(d[1].protocol, 0x8003);
	assert_int_equal(cm_proto_kind(d[1].protocol), CM_PROTO_VIRTIO_FRONT);
	assert_int_equal(cm_proto_virtio_id(d[1].protocol), 3);
	assert_int_equal(cm_proto_kind(d[2].protocol), CM_PROTO_UNDEFINED);
	assert_int_equal(cm_proto_kind(d[3].protocol), CM_PROTO_VETH);
	assert_string_equal(d[4].bdf, "0001:00:00.0");
	assert_int_equal(d[4].protocol, 0xc003);
	assert_int_equal(d[4].subsys_vendor, 0x1af4);
	assert_int_equal(d[4].subsys_device, 0x1100);
	free(d);
}

static void scan_errors_do_not_exit(void **state)
{
	struct env *e = *state;
	struct cm_ivshmem_pci *d;
	struct cm_err err = { 0 };
	size_t n;

	/* libpci's default handler would exit() here */
	assert_int_equal(cm_pci_scan(tu_fmt("%s/missing.dump", e->dir), &d, &n, &err), -EIO);
	assert_non_null(strstr(err.what, "libpci: dump: Cannot open"));
	assert_non_null(strstr(err.hint, "lspci -x"));
	tu_write_str(tu_fmt("%s/bad.dump", e->dir), "00:0c.0 x\n00: 0a 11 zz\n");
	cm_err_clear(&err);
	assert_int_equal(cm_pci_scan(tu_fmt("%s/bad.dump", e->dir), &d, &n, &err), -EIO);
	assert_non_null(strstr(err.what, "Malformed line"));
	/* and a good scan still works afterwards */
	assert_int_equal(cm_pci_scan(e->dump, &d, &n, &err), 0);
	assert_int_equal(n, 5);
	free(d);
}

static void bind_override(void **state)
{
	struct env *e = *state;
	struct cm_link *l;
	struct cm_err err = { 0 };
	size_t n;

	e->f.write_hook = kernel_hook;
	assert_int_equal(cm_bind_links(&e->hw, e->dump, CM_BIND_OVERRIDE, &l, &n, &err), 0);
	assert_int_equal(n, 5);
	assert_string_equal(e->f.calls[0], "module uio_ivshmem");
	assert_string_equal(e->f.calls[1], "write /bus/pci/devices/0000:00:0c.0/driver_override uio_ivshmem");
	assert_string_equal(e->f.calls[2], "write /bus/pci/drivers_probe 0000:00:0c.0");
	assert_string_equal(e->f.calls[3], "write /bus/pci/devices/0001:00:00.0/driver_override uio_ivshmem");
	assert_string_equal(e->f.calls[4], "write /bus/pci/drivers_probe 0001:00:00.0");
	assert_int_equal(e->f.ncalls, 5);
	assert_int_equal(l[0].action, CM_LINK_BOUND);
	assert_string_equal(l[0].uio, "uio1");
	assert_string_equal(l[0].driver, "uio_ivshmem");
	assert_int_equal(l[1].action, CM_LINK_SKIPPED);     /* front-end in root */
	assert_non_null(strstr(l[1].note, "needs protocol 0xc003"));
	assert_int_equal(l[2].action, CM_LINK_ALREADY);     /* raw, bound by itself */
	assert_string_equal(l[2].uio, "uio0");
	assert_int_equal(l[3].action, CM_LINK_SKIPPED);     /* veth */
	assert_int_equal(l[4].action, CM_LINK_BOUND);
	assert_string_equal(l[4].uio, "uio2");
	free(l);

	/* Second run: nothing left to do */
	fake_hw_reset(&e->f);
	assert_int_equal(cm_bind_links(&e->hw, e->dump, CM_BIND_OVERRIDE, &l, &n, &err), 0);
	assert_int_equal(e->f.ncalls, 0);   /* everything bound: not even a module load */
	assert_int_equal(l[0].action, CM_LINK_ALREADY);
	assert_int_equal(l[4].action, CM_LINK_ALREADY);
	free(l);
}

static void bind_new_id(void **state)
{
	struct env *e = *state;
	struct cm_link *l;
	struct cm_err err = { 0 };
	size_t n;

	e->f.write_hook = kernel_hook;
	assert_int_equal(cm_bind_links(&e->hw, e->dump, CM_BIND_NEW_ID, &l, &n, &err), 0);
	assert_string_equal(e->f.calls[1], "write /bus/pci/drivers/uio_ivshmem/new_id 110a 4106 110a 4106 ffc002 ffffff");
	/* QEMU subsystem ids are used as the device reports them; EEXIST is fine */
	assert_string_equal(e->f.calls[2], "write /bus/pci/drivers/uio_ivshmem/new_id 110a 4106 1af4 1100 ffc003 ffffff");
	assert_string_equal(e->f.calls[3], "write /bus/pci/drivers/uio_ivshmem/bind 0001:00:00.0");
	assert_int_equal(l[0].action, CM_LINK_BOUND);
	assert_int_equal(l[4].action, CM_LINK_BOUND);
	assert_string_equal(l[4].uio, "uio2");
	free(l);
}

static void bind_failures(void **state)
{
	struct env *e = *state;
	struct cm_link *l;
	struct cm_err err = { 0 };
	size_t n;

	/* module missing: global failure with a hint */
	e->f.ret_module_uio = -ENOENT;
	assert_int_equal(cm_bind_links(&e->hw, e->dump, CM_BIND_OVERRIDE, &l, &n, &err), -ENOENT);
	assert_non_null(strstr(err.what, "uio_ivshmem not found"));
	assert_non_null(strstr(err.hint, "CONFIG_UIO_IVSHMEM"));
	free(l);

	/* writes succeed but the driver never binds: per-link failure */
	e->f.ret_module_uio = 0;
	e->f.write_hook = NULL;   /* plain file writes; drivers_probe missing */
	tu_write_str(tu_fmt("%s/bus/pci/drivers_probe", e->sys), "");
	assert_int_equal(cm_bind_links(&e->hw, e->dump, CM_BIND_OVERRIDE, &l, &n, &err), 0);
	assert_int_equal(l[0].action, CM_LINK_FAILED);
	assert_int_equal(l[0].error, -EIO);
	assert_non_null(strstr(l[0].note, "check dmesg"));
	free(l);

	/* A device held by another driver is unbound first */
	tu_symlink("../../../bus/pci/drivers/virtio_ivshmem",
		   tu_fmt("%s/devices/pci0000:00/0000:00:0c.0/driver", e->sys));
	fake_hw_reset(&e->f);
	e->f.write_hook = kernel_hook;
	assert_int_equal(cm_bind_links(&e->hw, e->dump, CM_BIND_OVERRIDE, &l, &n, &err), 0);
	assert_string_equal(e->f.calls[1], "write /bus/pci/devices/0000:00:0c.0/driver/unbind 0000:00:0c.0");
	free(l);
}

static void cli_bind_list(void **state)
{
	struct env *e = *state;
	char out[4096] = { 0 };
	FILE *p;
	int st;

	p = popen(tu_fmt("%s --sysfs %s --pci-dump %s bind --list 2>&1", cli_path, e->sys, e->dump), "r");
	if (fread(out, 1, sizeof(out) - 1, p) == 0)
		fail();
	st = pclose(p);
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_non_null(strstr(out, "0000:00:0c.0  virtio-blk back-end"));
	assert_non_null(strstr(out, "0000:00:0e.0  undefined (raw/uio)          ok       driver uio_ivshmem  /dev/uio0"));
	assert_non_null(strstr(out, "0000:00:0d.0  virtio-console front-end"));
	assert_non_null(strstr(out, "needs protocol 0xc003 (VIRTIO_BACK)"));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(scan_dump, setup, teardown),
		cmocka_unit_test_setup_teardown(scan_errors_do_not_exit, setup, teardown),
		cmocka_unit_test_setup_teardown(bind_override, setup, teardown),
		cmocka_unit_test_setup_teardown(bind_new_id, setup, teardown),
		cmocka_unit_test_setup_teardown(bind_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(cli_bind_list, setup, teardown),
	};
	cli_path = argc > 1 ? argv[1] : "jailhouse-cellmgr";
	return cmocka_run_group_tests(tests, NULL, NULL);
}
