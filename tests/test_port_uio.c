/* The uio port against a fake sysfs tree and a regular file standing in for
 * /dev/uioN (mmap of map K at offset K * page size works the same way). */
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

#include "server/port_uio.h"

static char root[64];
static long page;

static void put(const char *rel, const char *text)
{
	char p[512], cmd[600];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", p);
	assert_int_equal(system(cmd), 0);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void add_map(int k, const char *name, unsigned long size)
{
	char rel[128], val[64];
	snprintf(rel, sizeof(rel), "sys/class/uio/uio0/maps/map%d/name", k);
	snprintf(val, sizeof(val), "%s\n", name);
	put(rel, val);
	snprintf(rel, sizeof(rel), "sys/class/uio/uio0/maps/map%d/size", k);
	snprintf(val, sizeof(val), "0x%016lx\n", size);
	put(rel, val);
}

/* The fake device node: pages for maps 0..n-1; registers in map 0. */
static void make_node(uint32_t id, uint32_t peers, int pages)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/dev/uio0", root);
	mkdir(p, 0755);
	rmdir(p);
	snprintf(p, sizeof(p), "%s/dev", root);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/dev/uio0", root);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, pages * page), 0);
	uint32_t regs[2] = { id, peers };
	assert_int_equal(pwrite(fd, regs, sizeof(regs), 0), (ssize_t)sizeof(regs));
	close(fd);
}

static uint32_t reg_at(unsigned off)
{
	char p[256];
	uint32_t v = 0;
	snprintf(p, sizeof(p), "%s/dev/uio0", root);
	int fd = open(p, O_RDONLY);
	assert_int_equal(pread(fd, &v, 4, off), 4);
	close(fd);
	return v;
}

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

static int open_port(struct ivshm_port **p, char *err)
{
	char dev[256], sys[256];
	snprintf(dev, sizeof(dev), "%s/dev/uio0", root);
	snprintf(sys, sizeof(sys), "%s/sys", root);
	return port_uio_open(dev, sys, p, err, 512);
}

static void test_maps_by_name_and_registers(void **state)
{
	teardown(state);
	setup(state);
	/* An extra map before the R/W section shifts its index: found by name. */
	add_map(0, "registers", 0x1000);
	add_map(1, "state_table", 0x1000);
	add_map(2, "something_else", 0x1000);
	add_map(3, "rw_section", 4 * page);
	put("sys/class/uio/uio0/device/msi_irqs/40", "msix\n");
	put("sys/class/uio/uio0/device/msi_irqs/41", "msix\n");
	put("sys/class/uio/uio0/device/msi_irqs/42", "msix\n");
	make_node(0, 2, 3 + 4);
	char err[512];
	struct ivshm_port *p;
	int r = open_port(&p, err);
	if (r < 0)
		fail_msg("%s", err);
	assert_int_equal(p->id, 0);
	assert_int_equal(p->peer_id, 1);
	assert_int_equal(p->vectors, 3);
	assert_int_equal(p->rw_size, 4 * page);
	assert_int_equal(p->n_watch, 1);
	/* R/W section is map 3: writes land at 3 pages into the node. */
	p->rw[0] = 0x7e;
	ivshm_port_notify(p, 2);
	ivshm_port_set_state(p, 1);
	ivshm_port_rearm(p);
	ivshm_port_destroy(p);
	assert_int_equal(reg_at(0x0c), (1u << 16) | 2);
	assert_int_equal(reg_at(0x10), 1);
	assert_int_equal(reg_at(0x08), 1);
	uint8_t b = 0;
	char node[256];
	snprintf(node, sizeof(node), "%s/dev/uio0", root);
	int fd = open(node, O_RDONLY);
	assert_int_equal(pread(fd, &b, 1, 3 * page), 1);
	close(fd);
	assert_int_equal(b, 0x7e);
}

static void test_intx_single_vector(void **state)
{
	teardown(state);
	setup(state);
	add_map(0, "registers", 0x1000);
	add_map(1, "state_table", 0x1000);
	add_map(2, "rw_section", 2 * page);
	make_node(1, 2, 4);
	char err[512];
	struct ivshm_port *p;
	assert_int_equal(open_port(&p, err), 0);
	assert_int_equal(p->vectors, 1);    /* no msi_irqs: INTx */
	assert_int_equal(p->id, 1);
	assert_int_equal(p->peer_id, 0);
	ivshm_port_destroy(p);
}

static void test_errors(void **state)
{
	teardown(state);
	setup(state);
	char err[512], want[512];
	struct ivshm_port *p;
	/* No R/W section (RW size 0: the input sections take map 2). */
	add_map(0, "registers", 0x1000);
	add_map(1, "state_table", 0x1000);
	add_map(2, "input_sections", 0x2000);
	make_node(0, 2, 4);
	assert_int_equal(open_port(&p, err), -ENODEV);
	snprintf(want, sizeof(want), "%s/sys/class/uio/uio0/maps has no 'rw_section' map: is the "
		 "device bound to uio_ivshmem, and does the link have a R/W section?", root);
	assert_string_equal(err, want);
	/* Three peers: not a virtio link. */
	add_map(2, "rw_section", 2 * page);
	make_node(0, 3, 4);
	assert_int_equal(open_port(&p, err), -EPROTO);
	snprintf(want, sizeof(want), "%s/dev/uio0: link has 3 peers, virtio needs exactly 2", root);
	assert_string_equal(err, want);
	/* A missing node. */
	char sys[256];
	snprintf(sys, sizeof(sys), "%s/sys", root);
	assert_int_equal(port_uio_open("/nonexistent/uio7", sys, &p, err, sizeof(err)), -ENODEV);
	snprintf(want, sizeof(want), "%s/sys/class/uio/uio7/maps has no 'registers' map: is the "
		 "device bound to uio_ivshmem, and does the link have a R/W section?", root);
	assert_string_equal(err, want);
	add_map(0, "registers", 0x1000);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "cp -r %s/sys/class/uio/uio0 %s/sys/class/uio/uio7", root, root);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(port_uio_open("/nonexistent/uio7", sys, &p, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "cannot open /nonexistent/uio7: No such file or directory");
	assert_int_equal(port_uio_open("/dev/sda", sys, &p, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "/dev/sda is not a /dev/uioN node");
}

static void test_resolve_pci(void **state)
{
	teardown(state);
	setup(state);
	char sys[256], out[256], err[512], want[512];
	snprintf(sys, sizeof(sys), "%s/sys", root);
	put("sys/bus/pci/devices/0000:00:0c.0/uio/uio3/name", "uio_ivshmem\n");
	put("sys/bus/pci/devices/0000:00:0d.0/vendor", "0x110a\n");
	assert_int_equal(port_uio_resolve_pci("0000:00:0c.0", sys, "/dev", out, sizeof(out), err,
					      sizeof(err)), 0);
	assert_string_equal(out, "/dev/uio3");
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_maps_by_name_and_registers),
		cmocka_unit_test(test_intx_single_vector),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_resolve_pci),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
