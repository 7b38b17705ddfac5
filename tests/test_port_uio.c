/* The uio port against fake sysfs trees laid out as the real kernel shows a
 * device bound to uio_ivshmem (tests/fake_sysfs.h), and a regular file
 * standing in for /dev/uioN (mmap of map K at offset K * page size works the
 * same way). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/handover.h"
#include "core/port_uio.h"
#include "tests/fake_sysfs.h"

static char root[64];
static long page;

static int setup(void **state)
{
	page = sysconf(_SC_PAGESIZE);
	snprintf(root, sizeof(root), "/tmp/vivuio-XXXXXX");
	return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

/* A fresh tree for each test. */
static void fresh(void **state)
{
	teardown(state);
	setup(state);
}

static void add(const struct fake_uio *u)
{
	assert_int_equal(fake_sysfs_add_uio(root, u), 0);
}

static const char *node(unsigned n)
{
	static char p[256];
	snprintf(p, sizeof(p), "%s/dev/uio%u", root, n);
	return p;
}

static int open_port(unsigned n, struct ivshm_port **p, char *err)
{
	char sys[256];
	snprintf(sys, sizeof(sys), "%s/sys", root);
	return port_uio_open(node(n), sys, p, err, 512);
}

static uint32_t reg_at(unsigned off)
{
	uint32_t v = 0;
	int fd = open(node(0), O_RDONLY);
	assert_int_equal(pread(fd, &v, 4, off), 4);
	close(fd);
	return v;
}

/* Regression: the protocol comes from the PCI class (ffc002 -> 0xc002), not
 * a constant 0xc000, which made the daemon refuse every real device. */
static void test_real_block_backend(void **state)
{
	fresh(state);
	struct fake_uio u = fake_uio_default();
	add(&u);
	char err[512];
	struct ivshm_port *p;
	int r = open_port(0, &p, err);
	if (r < 0)
		fail_msg("%s", err);
	assert_int_equal(p->protocol, 0xc002);
	assert_int_equal(p->id, 0);
	assert_int_equal(p->peer_id, 1);
	assert_int_equal(p->max_peers, 2);
	assert_int_equal(p->vectors, 2);
	assert_int_equal(p->rw_size, 0x3ff000);
	assert_int_equal(p->state_table_size, 0x1000);
	assert_int_equal(p->n_watch, 1);
	char want[300];
	snprintf(want, sizeof(want), "uio:%s", node(0));
	assert_string_equal(p->name, want);
	/* The R/W section is map 2: writes land 2 pages into the node. */
	p->rw[0] = 0x7e;
	ivshm_port_notify(p, 1);
	ivshm_port_set_state(p, 1);
	ivshm_port_rearm(p);
	ivshm_port_destroy(p);
	assert_int_equal(reg_at(0x0c), (1u << 16) | 1);
	assert_int_equal(reg_at(0x10), 1);
	assert_int_equal(reg_at(0x08), 1);
	uint8_t b = 0;
	int fd = open(node(0), O_RDONLY);
	assert_int_equal(pread(fd, &b, 1, 2 * page), 1);
	close(fd);
	assert_int_equal(b, 0x7e);
}

static void test_console_backend_intx(void **state)
{
	fresh(state);
	struct fake_uio u = fake_uio_default();
	u.class_code = 0xffc003;
	u.msix = 0;                 /* INTx: no msi_irqs directory, one vector */
	u.id = 1;
	u.rw_size = 0xf000;         /* a Jailhouse console link */
	add(&u);
	char err[512];
	struct ivshm_port *p;
	int r = open_port(0, &p, err);
	if (r < 0)
		fail_msg("%s", err);
	assert_int_equal(p->protocol, 0xc003);
	assert_int_equal(p->vectors, 1);
	assert_int_equal(p->id, 1);
	assert_int_equal(p->peer_id, 0);
	assert_int_equal(p->rw_size, 0xf000);
	ivshm_port_destroy(p);
}

/* A front-end device (class ff8002) reports the front-end protocol; the
 * daemon refuses it by its role (tests/test_daemon_cli.c). */
static void test_frontend_class(void **state)
{
	fresh(state);
	struct fake_uio u = fake_uio_default();
	u.class_code = 0xff8002;
	add(&u);
	char err[512];
	struct ivshm_port *p;
	assert_int_equal(open_port(0, &p, err), 0);
	assert_int_equal(p->protocol, 0x8002);
	ivshm_port_destroy(p);
}

/* Output sections shift nothing before the R/W section; with RW size 0 the
 * input sections take map 2 and the port refuses the link. */
static void test_output_sections_and_no_rw(void **state)
{
	fresh(state);
	struct fake_uio u = fake_uio_default();
	u.output_size = 0x2000;
	add(&u);
	char err[512], want[512];
	struct ivshm_port *p;
	assert_int_equal(open_port(0, &p, err), 0);
	assert_int_equal(p->rw_size, 0x3ff000);
	ivshm_port_destroy(p);

	fresh(state);
	u.rw_size = 0;
	add(&u);
	assert_int_equal(open_port(0, &p, err), -ENODEV);
	snprintf(want, sizeof(want), "%s/sys/class/uio/uio0/maps has no 'rw_section' map: is the "
		 "device bound to uio_ivshmem, and does the link have a R/W section?", root);
	assert_string_equal(err, want);
}

static void test_not_ivshmem(void **state)
{
	char err[512], want[512];
	struct ivshm_port *p;
	fresh(state);
	struct fake_uio u = fake_uio_default();
	u.vendor = 0x1af4;          /* an ivshmem v1 device bound to some uio driver */
	u.device = 0x1110;
	add(&u);
	assert_int_equal(open_port(0, &p, err), -ENODEV);
	snprintf(want, sizeof(want), "%s is PCI device 1af4:1110, not an IVSHMEM v2 device "
		 "(110a:4106)", node(0));
	assert_string_equal(err, want);

	fresh(state);
	u = fake_uio_default();
	u.class_code = 0x050000;
	add(&u);
	assert_int_equal(open_port(0, &p, err), -EPROTO);
	snprintf(want, sizeof(want), "%s has PCI class 050000; an IVSHMEM v2 device has class "
		 "ffXXXX (XXXX: the protocol)", node(0));
	assert_string_equal(err, want);
}

static void test_errors(void **state)
{
	fresh(state);
	char err[512], want[512];
	struct ivshm_port *p;
	/* Three peers: not a virtio link. */
	struct fake_uio u = fake_uio_default();
	u.max_peers = 3;
	add(&u);
	assert_int_equal(open_port(0, &p, err), -EPROTO);
	snprintf(want, sizeof(want), "%s: link has 3 peers, virtio needs exactly 2", node(0));
	assert_string_equal(err, want);
	/* No such uio device in sysfs. */
	char sys[256];
	snprintf(sys, sizeof(sys), "%s/sys", root);
	assert_int_equal(port_uio_open("/nonexistent/uio7", sys, &p, err, sizeof(err)), -ENODEV);
	snprintf(want, sizeof(want), "%s/sys/class/uio/uio7/maps has no 'registers' map: is the "
		 "device bound to uio_ivshmem, and does the link have a R/W section?", root);
	assert_string_equal(err, want);
	/* In sysfs, but the node is missing. */
	u = fake_uio_default();
	u.uio = 7;
	u.bdf = "0000:00:07.0";
	add(&u);
	assert_int_equal(port_uio_open("/nonexistent/uio7", sys, &p, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "cannot open /nonexistent/uio7: No such file or directory");
	assert_int_equal(port_uio_open("/dev/sda", sys, &p, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "/dev/sda is not a /dev/uioN node");
}

/* The role rule is the same for every kind of link. */
static void test_role(void **state)
{
	struct ivshm_port p = { .id = 0 };
	char why[512];
	snprintf(p.name, sizeof(p.name), "uio:/dev/uio0");
	p.protocol = 0xc002;
	assert_int_equal(ivshm_port_check_role(&p, 2, why, sizeof(why)), 0);
	assert_int_equal(ivshm_port_check_role(&p, 3, why, sizeof(why)), -EPROTO);
	assert_string_equal(why, "link uio:/dev/uio0 carries protocol 0xc002, not a virtio-console "
			    "back-end (0xc003)");
	p.protocol = 0x8002;
	assert_int_equal(ivshm_port_check_role(&p, 2, why, sizeof(why)), -EPROTO);
	assert_string_equal(why, "link uio:/dev/uio0 is the virtio front-end side (class ff8002); "
			    "bind the back-end device (class ffc002) to uio_ivshmem instead");
	snprintf(p.name, sizeof(p.name), "sim:/run/a.sock");
	p.id = 1;
	assert_int_equal(ivshm_port_check_role(&p, 2, why, sizeof(why)), -EPROTO);
	assert_string_equal(why, "link sim:/run/a.sock gave us the front-end role (peer 1): start "
			    "the daemon before the front-end");
	p.protocol = 0xc003;
	assert_int_equal(ivshm_port_check_role(&p, 3, why, sizeof(why)), 0);
	p.protocol = 0x0000;
	assert_int_equal(ivshm_port_check_role(&p, 3, why, sizeof(why)), -EPROTO);
	assert_string_equal(why, "link sim:/run/a.sock carries protocol 0x0000, not a "
			    "virtio-console back-end (0xc003)");
}

static void test_resolve_pci(void **state)
{
	fresh(state);
	char sys[256], out[256], err[512], want[512];
	snprintf(sys, sizeof(sys), "%s/sys", root);
	struct fake_uio u = fake_uio_default();
	u.bdf = "0000:00:0c.0";
	u.uio = 3;
	add(&u);
	assert_int_equal(port_uio_resolve_pci("0000:00:0c.0", sys, "/dev", out, sizeof(out), err,
					      sizeof(err)), 0);
	assert_string_equal(out, "/dev/uio3");
	/* A device present but bound elsewhere (no uio directory). */
	char dir[300];
	snprintf(dir, sizeof(dir), "%s/devices/pci0000:00/0000:00:0d.0", sys);
	assert_int_equal(mkdir(dir, 0755), 0);
	char lnk[300];
	snprintf(lnk, sizeof(lnk), "%s/bus/pci/devices/0000:00:0d.0", sys);
	assert_int_equal(symlink("../../../devices/pci0000:00/0000:00:0d.0", lnk), 0);
	assert_int_equal(port_uio_resolve_pci("0000:00:0d.0", sys, "/dev", out, sizeof(out), err,
					      sizeof(err)), -ENODEV);
	assert_string_equal(err, "PCI device 0000:00:0d.0 is not bound to uio_ivshmem "
			    "(run 'jailhouse-cellmgr bind')");
	assert_int_equal(port_uio_resolve_pci("0000:00:0e.0", sys, "/dev", out, sizeof(out), err,
					      sizeof(err)), -ENODEV);
	snprintf(want, sizeof(want), "no PCI device 0000:00:0e.0 (%s/bus/pci/devices/0000:00:0e.0 "
		 "missing)", sys);
	assert_string_equal(err, want);
}

/* Taking over the fd a previous daemon kept open: the node is not opened
 * again (closing or opening it is what resets the link), no register is
 * written, and the memory is the same. */
static void test_adopt_writes_nothing(void **state)
{
	fresh(state);
	struct fake_uio u = fake_uio_default();
	add(&u);
	char err[512], sys[256];
	snprintf(sys, sizeof(sys), "%s/sys", root);
	struct ivshm_port *old;
	int r = open_port(0, &old, err);
	if (r < 0)
		fail_msg("%s", err);
	ivshm_port_set_state(old, 1);           /* READY, as a serving daemon left it */
	old->rw[100] = 0x5a;
	struct handover h = { 0 };
	uint8_t blob[64];
	assert_true(ivshm_port_export(old, "disk0/port", &h, blob, sizeof(blob)) >= 0);
	int fd = handover_take(&h, "disk0/port/uio");
	assert_true(fd >= 0);
	int fd_kept = dup(fd);
	/* the old process is gone without closing anything */
	handover_free(&h);
	/* whatever is at the path now is not what we adopt */
	char moved[300];
	snprintf(moved, sizeof(moved), "%s.moved", node(0));
	assert_int_equal(rename(node(0), moved), 0);
	uint8_t before[0x20];
	int rd = open(moved, O_RDONLY);
	assert_int_equal(pread(rd, before, sizeof(before), 0), (ssize_t)sizeof(before));
	struct ivshm_port *p;
	r = port_uio_adopt(node(0), sys, fd, &p, err, sizeof(err));
	if (r < 0)
		fail_msg("%s", err);
	uint8_t after[0x20];
	assert_int_equal(pread(rd, after, sizeof(after), 0), (ssize_t)sizeof(after));
	assert_memory_equal(before, after, sizeof(before));     /* no register written */
	uint32_t st;
	memcpy(&st, after + 0x10, 4);
	assert_int_equal(st, 1);                /* STATE as the old process left it */
	assert_int_equal(p->rw[100], 0x5a);
	assert_int_equal(p->vectors, 2);
	close(rd);
	close(fd_kept);
	ivshm_port_destroy(p);
	ivshm_port_destroy(old);
}

/* An fd of another node is not taken for this one (a stale or mixed-up
 * hand-over): refused, and closed like any fd a failed adopt was given. */
static void test_adopt_refuses_other_node(void **state)
{
	fresh(state);
	struct fake_uio u0 = fake_uio_default(), u1 = fake_uio_default();
	u1.bdf = "0000:00:03.0";
	u1.uio = 1;
	add(&u0);
	add(&u1);
	char err[512], sys[256];
	snprintf(sys, sizeof(sys), "%s/sys", root);
	int fd = open(node(1), O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	struct ivshm_port *p;
	assert_int_equal(port_uio_adopt(node(0), sys, fd, &p, err, sizeof(err)), -ESTALE);
	char want[400];
	snprintf(want, sizeof(want), "the fd handed over is not %s", node(0));
	assert_string_equal(err, want);
	assert_int_equal(fcntl(fd, F_GETFD), -1);       /* closed */
	int same = open(node(0), O_RDONLY | O_CLOEXEC);
	assert_true(port_uio_same_node(same, node(0)));
	close(same);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_block_backend),
		cmocka_unit_test(test_console_backend_intx),
		cmocka_unit_test(test_frontend_class),
		cmocka_unit_test(test_output_sections_and_no_rw),
		cmocka_unit_test(test_not_ivshmem),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_role),
		cmocka_unit_test(test_resolve_pci),
		cmocka_unit_test(test_adopt_writes_nothing),
		cmocka_unit_test(test_adopt_refuses_other_node),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
