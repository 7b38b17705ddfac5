/* `up`/`down` from the daemon's config: the fake hypervisor driver, and a
 * REAL virtio-ivshmemd on software links.  The fake records, at the moment
 * of every CELL_CREATE, what the daemon reports over its control socket, so
 * the tests can assert that no cell is created (let alone loaded or
 * started) before all of its devices serve.  x86 cells, and an arm64 cell
 * whose loaded images are compared with what `linux -w` computes (device
 * trees compiled with dtc; skipped without it).  Also: the control-socket
 * client against a scripted server, the JSON reader, matching links to
 * cells by BDF, and the CLI wiring. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <libfdt.h>

#include "cellmgr/daemon_ctl.h"
#include "cellmgr/sysfs.h"
#include "cellmgr/up.h"
#include "tests/harness.h"
#include "armimage.h"
#include "bzimage.h"
#include "fake_hw.h"
#include "samples.h"
#include "testutil.h"

static const char *cli_path;

struct env {
	struct daemon_proc d;        /* d.dir: everything lives here */
	struct fake_hw f;
	struct cm_hw hw;
	struct cm_report rep;
	struct cm_err err;
	char sys[400], dev[400], fw[400], dump[400], loader[400], kernel[400], initrd[400];
	char dtb[400];               /* arm64 setup: the compiled device tree */
	char sock[400];
	char conf_text[8192];        /* the config `up` reads (d.conf) */
	char progress[8192];
	/* delayed daemon start */
	pthread_t th;
	unsigned delay_ms;
	int start_rc;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* A Linux cell like samples.h's.  Cells at other BDFs than 00:0c.0 get
 * their own CPU and memory and no IOAPIC pins or ports, so that cells of
 * one config pass the whole-system check together.  arch CW_ARM64: the
 * same memory (the loader at cpu_reset_address 0 in the low RAM, the
 * images in the high RAM, the first that holds them), no IOAPIC or ports. */
static void write_cell_arch(const char *path, const char *name, uint16_t bdf, uint16_t proto,
			    unsigned arch)
{
	struct cw_pci pci = linux_pci[0];
	struct cw_cell c = linux_cell;
	struct cw_mem mem[7];
	size_t len;
	uint8_t *b;

	pci.bdf = bdf;
	pci.proto = proto;
	c.name = name;
	c.pci = &pci;
	memcpy(mem, linux_mem, sizeof(mem));
	if (bdf != 0x0c << 3) {
		c.cpus = 0x2;
		c.nirq = 0;
		c.npio = 0;
		mem[0].phys = 0x10000000;
		mem[2].phys = 0x10100000;
		mem[3].phys = mem[3].virt = 0x26f00000;
		mem[4].phys = mem[4].virt = 0x26f01000;
	}
	c.mem = mem;
	if (arch != CW_X86) {
		c.nirq = 0;
		c.npio = 0;
	}
	b = cw_build(14, arch, NULL, &c, &len);
	tu_write(path, b, len);
	free(b);
}

static void write_cell(const char *path, const char *name, uint16_t bdf, uint16_t proto)
{
	write_cell_arch(path, name, bdf, proto, CW_X86);
}

/* At every CELL_CREATE: what does the daemon say?  One line
 * "daemon@create NAME: dev=state; dev=state; ..." or "... unreachable". */
static void record_daemon(struct fake_hw *f, const char *name)
{
	struct env *e = f->hook_data;
	struct cm_daemon_dev *devs;
	struct cm_err err = { 0 };
	char line[2048];
	size_t n, len;

	len = (size_t)snprintf(line, sizeof(line), "daemon@create %s:", name);
	if (cm_daemon_list(e->sock, 2000, &devs, &n, &err) < 0) {
		fake_hw_record(f, "%s unreachable", line);
		return;
	}
	for (size_t i = 0; i < n && len < sizeof(line); i++)
		len += (size_t)snprintf(line + len, sizeof(line) - len, " %s=%s;", devs[i].name,
					devs[i].state);
	free(devs);
	fake_hw_record(f, "%s", line);
}

static void collect_progress(void *opaque, const char *msg)
{
	struct env *e = opaque;
	size_t len = strlen(e->progress);

	snprintf(e->progress + len, sizeof(e->progress) - len, "%s\n", msg);
}

/* Two cells with devices on sim links, plus one device of no cell.  cell-a
 * boots second (order 2), cell-b first (order 1). */
static void make_conf(struct env *e, char *out, size_t len, bool with_disk_b)
{
	const char *dir = e->d.dir;

	snprintf(out, len,
		 "[daemon]\ncontrol-socket = %s\nroot-cell = %s/root.cell\n"
		 "[block disk-a]\nsim = %s/a.sock\nimage = %s/a.img\ncell = cell-a\n"
		 "[console con-a]\nsim = %s/ca.sock\nendpoint = log\npath = %s/ca.log\ncell = cell-a\n"
		 "%s%s%s%s%s"
		 "[block spare]\nsim = %s/s.sock\nimage = %s/s.img\n"
		 "[cell cell-a]\nconfig = %s/a.cell\nkernel = %s\ninitrd = %s\n"
		 "cmdline = console=ttyS0\norder = 2\n"
		 "[cell cell-b]\nconfig = %s/b.cell\nkernel = %s\norder = 1\n",
		 e->sock, dir, dir, dir, dir, dir,
		 with_disk_b ? "[block disk-b]\nsim = " : "", with_disk_b ? dir : "",
		 with_disk_b ? "/b.sock\nimage = " : "", with_disk_b ? dir : "",
		 with_disk_b ? "/b.img\ncell = cell-b\n" : "",
		 dir, dir, dir, e->kernel, e->initrd, dir, e->kernel);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	const char *dir;
	size_t len;
	uint8_t *b;

	if (harness_mkdir(&e->d) < 0)
		return -1;
	dir = e->d.dir;
	snprintf(e->sys, sizeof(e->sys), "%s/sys", dir);
	snprintf(e->dev, sizeof(e->dev), "%s/jailhouse", dir);
	snprintf(e->fw, sizeof(e->fw), "%s/firmware", dir);
	snprintf(e->dump, sizeof(e->dump), "%s/empty.dump", dir);
	snprintf(e->loader, sizeof(e->loader), "%s/linux-loader.bin", dir);
	snprintf(e->kernel, sizeof(e->kernel), "%s/bzImage", dir);
	snprintf(e->initrd, sizeof(e->initrd), "%s/initrd", dir);
	snprintf(e->sock, sizeof(e->sock), "%s/control.sock", dir);
	tu_mkdirs(tu_fmt("%s/devices/jailhouse/cells", e->sys));
	tu_mkdirs(e->fw);
	tu_write_str(tu_fmt("%s/devices/jailhouse/enabled", e->sys), "0\n");
	tu_write_str(e->dev, "");
	tu_write_str(e->dump, "");
	fake_hw_init(&e->f, e->sys);
	e->f.create_hook = record_daemon;
	e->f.hook_data = e;
	e->hw = (struct cm_hw){ &fake_hw_ops, &e->f, e->dev, e->sys, e->fw, CM_ARCH_X86 };

	b = cw_build(14, CW_X86, &root_sys, &root_cell, &len);
	tu_write(tu_fmt("%s/root.cell", dir), b, len);
	free(b);
	write_cell(tu_fmt("%s/a.cell", dir), "cell-a", 0x0c << 3, 0x8002);
	write_cell(tu_fmt("%s/b.cell", dir), "cell-b", 0x0d << 3, 0x8002);
	b = bz_make();
	tu_write(e->kernel, b, BZ_LEN);
	free(b);
	tu_write_str(e->initrd, "initrd-bytes");
	{
		uint8_t ld[0x5000];

		memset(ld, 0xcc, sizeof(ld));
		memset(ld + 0x1000, 0, 0x3000);
		tu_write(e->loader, ld, sizeof(ld));
	}
	harness_image(tu_fmt("%s/a.img", dir), 1 << 20, 1);
	harness_image(tu_fmt("%s/b.img", dir), 1 << 20, 2);
	harness_image(tu_fmt("%s/s.img", dir), 1 << 20, 3);
	make_conf(e, e->conf_text, sizeof(e->conf_text), true);
	tu_write_str(e->d.conf, e->conf_text);
	cm_report_init(&e->rep);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	harness_cleanup(&e->d);      /* stops the daemon if it runs */
	fake_hw_reset(&e->f);
	cm_report_free(&e->rep);
	free(e);
	return 0;
}

static struct cm_up_opts up_opts(struct env *e, unsigned timeout_ms)
{
	return (struct cm_up_opts){
		.config_path = e->d.conf, .loader = e->loader, .pci_dump = e->dump,
		.timeout_ms = timeout_ms, .progress = collect_progress, .opaque = e,
	};
}

static void start_daemon(struct env *e, const char *text, unsigned ndev)
{
	/* harness_start writes d.conf: keep `up`'s file where it is */
	char keep[8192];

	snprintf(keep, sizeof(keep), "%s", e->conf_text);
	if (harness_start(&e->d, text, ndev, NULL) < 0)
		fail_msg("daemon did not start; log in %s", e->d.log);
	tu_write_str(e->d.conf, keep);
}

/* The state of dev recorded at the create of cell (must follow it). */
static void assert_served_at_create(struct env *e, const char *cell, const char *const *devs)
{
	char want[128];
	int c = -1;

	/* the create line carries the length: find it by name */
	for (unsigned i = 0; i < e->f.ncalls; i++)
		if (!strncmp(e->f.calls[i], "create ", 7) &&
		    strstr(e->f.calls[i], tu_fmt(" name=%s", cell)))
			c = (int)i;
	assert_true(c >= 0);
	assert_true((unsigned)c + 1 < e->f.ncalls);
	snprintf(want, sizeof(want), "daemon@create %s:", cell);
	assert_int_equal(strncmp(e->f.calls[c + 1], want, strlen(want)), 0);
	for (; *devs; devs++) {
		const char *p = strstr(e->f.calls[c + 1], tu_fmt(" %s=", *devs));
		char st[64] = "";

		if (!p)
			fail_msg("%s not listed at the create of %s: %s", *devs, cell, e->f.calls[c + 1]);
		p += strlen(*devs) + 2;
		snprintf(st, sizeof(st), "%.*s", (int)strcspn(p, ";"), p);
		if (!cm_daemon_state_serving(st))
			fail_msg("%s was \"%s\" when %s was created", *devs, st, cell);
	}
}

static void assert_call(struct env *e, unsigned i, const char *prefix)
{
	if (i >= e->f.ncalls)
		fail_msg("call %u missing (want \"%s\")", i, prefix);
	if (strncmp(e->f.calls[i], prefix, strlen(prefix)))
		fail_msg("call %u is \"%s\", want \"%s...\"", i, e->f.calls[i], prefix);
}

static const char *const devs_a[] = { "disk-a", "con-a", NULL };
static const char *const devs_b[] = { "disk-b", NULL };

static void up_then_down(void **state)
{
	struct env *e = *state;
	struct cm_up_opts o = up_opts(e, 5000);
	struct cm_down_opts d = { e->d.conf, false, collect_progress, e };

	start_daemon(e, e->conf_text, 4);
	if (cm_up(&e->hw, &o, &e->rep, &e->err) < 0) {
		for (size_t i = 0; i < e->rep.n; i++)
			fprintf(stderr, "report: %s\n", e->rep.items[i].msg);
		fail_msg("%s (hint: %s)", e->err.what, e->err.hint);
	}
	if (getenv("CELLMGR_TEST_VERBOSE")) {
		for (unsigned i = 0; i < e->f.ncalls; i++)
			printf("call %u: %s\n", i, e->f.calls[i]);
		printf("%s", e->progress);
		for (size_t i = 0; i < e->rep.n; i++)
			printf("report: %s\n", e->rep.items[i].msg);
	}
	/* root first, then cell-b (order 1), then cell-a (order 2); each
	 * created only with its devices serving, loaded and started after */
	assert_call(e, 0, "module jailhouse");
	assert_call(e, 1, "enable len=");
	assert_call(e, 2, "create len=");
	assert_non_null(strstr(e->f.calls[2], "name=cell-b"));
	assert_call(e, 3, "daemon@create cell-b:");
	assert_call(e, 4, "load name=cell-b n=3 ");          /* loader, kernel, params */
	assert_call(e, 5, "start name=cell-b");
	assert_call(e, 6, "create len=");
	assert_non_null(strstr(e->f.calls[6], "name=cell-a"));
	assert_call(e, 7, "daemon@create cell-a:");
	assert_call(e, 8, "load name=cell-a n=4 ");          /* loader, kernel, initrd, params */
	assert_call(e, 9, "start name=cell-a");
	assert_int_equal(e->f.ncalls, 10);
	assert_served_at_create(e, "cell-b", devs_b);
	assert_served_at_create(e, "cell-a", devs_a);
	/* the command line of cell-a reached the parameter block */
	assert_non_null(memmem(e->f.images[3].data, e->f.images[3].size, "console=ttyS0", 13));
	assert_non_null(strstr(e->progress, "enabling Jailhouse with "));
	assert_non_null(strstr(e->progress, "cell cell-b: virtio-ivshmemd serves disk-b\n"));
	assert_non_null(strstr(e->progress, "cell cell-a: virtio-ivshmemd serves disk-a, con-a\n"));
	assert_non_null(strstr(e->progress, "cell cell-b: \"cell-b\" started\n"
				"cell cell-a: virtio-ivshmemd serves disk-a, con-a\n"));
	assert_non_null(strstr(e->progress, "cell cell-a: \"cell-a\" started\n"));

	/* down: reverse boot order, shut down before destroy, no disable */
	fake_hw_reset(&e->f);
	e->progress[0] = '\0';
	if (cm_down(&e->hw, &d, &e->rep, &e->err) < 0)
		fail_msg("%s", e->err.what);
	assert_call(e, 0, "load name=cell-a n=0");
	assert_call(e, 1, "destroy name=cell-a");
	assert_call(e, 2, "load name=cell-b n=0");
	assert_call(e, 3, "destroy name=cell-b");
	assert_int_equal(e->f.ncalls, 4);
	assert_non_null(strstr(e->progress, "cell \"cell-a\": shut down and destroyed\n"
				"cell \"cell-b\": shut down and destroyed\n"));

	/* again, with --disable: the cells are gone (skipped), then disable */
	fake_hw_reset(&e->f);
	e->progress[0] = '\0';
	d.disable = true;
	assert_int_equal(cm_down(&e->hw, &d, &e->rep, &e->err), 0);
	assert_int_equal(e->f.ncalls, 1);
	assert_string_equal(e->f.calls[0], "disable");
	assert_non_null(strstr(e->progress, "cell cell-b: \"cell-b\" does not exist; skipped\n"
				"cell cell-a: \"cell-a\" does not exist; skipped\n"));
}

static void *start_later(void *arg)
{
	struct env *e = arg;

	sleep_ms(e->delay_ms);
	e->start_rc = harness_start(&e->d, e->conf_text, 4, NULL);
	return NULL;
}

/* The daemon starts only after `up` has enabled the root cell: `up` waits
 * for it and creates nothing before the devices serve. */
static void up_waits_for_daemon(void **state)
{
	struct env *e = *state;
	struct cm_up_opts o = up_opts(e, 10000);
	int64_t t0 = now_ms();
	int ret;

	e->delay_ms = 700;
	assert_int_equal(pthread_create(&e->th, NULL, start_later, e), 0);
	ret = cm_up(&e->hw, &o, &e->rep, &e->err);
	pthread_join(e->th, NULL);
	assert_int_equal(e->start_rc, 0);
	if (ret < 0)
		fail_msg("%s (hint: %s)", e->err.what, e->err.hint);
	assert_true(now_ms() - t0 >= 700);
	assert_call(e, 1, "enable len=");
	assert_served_at_create(e, "cell-b", devs_b);
	assert_served_at_create(e, "cell-a", devs_a);
	assert_int_equal(e->f.ncalls, 10);
}

static void up_fails_without_daemon(void **state)
{
	struct env *e = *state;
	struct cm_up_opts o = up_opts(e, 300);

	assert_int_equal(cm_up(&e->hw, &o, &e->rep, &e->err), -ENOENT);
	assert_string_equal(e->err.what, tu_fmt("cannot reach virtio-ivshmemd at %s (waited 0.3 s "
						"before booting cell cell-b)", e->sock));
	assert_string_equal(e->err.hint, tu_fmt("start the daemon with this config first "
						"(virtio-ivshmemd -c %s), or pass --control SOCKET "
						"if it listens elsewhere", e->d.conf));
	assert_int_equal(fake_hw_find(&e->f, "create"), -1);
	assert_int_equal(fake_hw_find(&e->f, "load"), -1);
	assert_int_equal(fake_hw_find(&e->f, "start"), -1);

	/* a socket path nobody listens on: ECONNREFUSED, same message */
	{
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", e->sock);
		assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		cm_err_clear(&e->err);
		assert_int_equal(cm_up(&e->hw, &o, &e->rep, &e->err), -ECONNREFUSED);
		assert_non_null(strstr(e->err.what, "cannot reach virtio-ivshmemd at "));
		close(fd);
	}
	assert_int_equal(fake_hw_find(&e->f, "create"), -1);
}

/* The daemon runs with a config that lacks disk-b: `up` fails at once. */
static void up_fails_with_missing_device(void **state)
{
	struct env *e = *state;
	struct cm_up_opts o = up_opts(e, 5000);
	char text[8192];
	int64_t t0;

	make_conf(e, text, sizeof(text), false);
	start_daemon(e, text, 3);
	t0 = now_ms();
	assert_int_equal(cm_up(&e->hw, &o, &e->rep, &e->err), -ENODEV);
	assert_true(now_ms() - t0 < 3000);      /* no point in waiting */
	assert_string_equal(e->err.what, tu_fmt("device disk-b of cell cell-b is not served by "
						"virtio-ivshmemd (the daemon at %s has no such device)",
						e->sock));
	assert_string_equal(e->err.hint, tu_fmt("is the daemon running with this config "
						"(virtio-ivshmemd -c %s)? `virtio-ivshmemctl -s %s list` "
						"shows what it serves", e->d.conf, e->sock));
	assert_int_equal(fake_hw_find(&e->f, "create"), -1);
}

/* A cell that runs already is left alone; the others boot. */
static void up_leaves_running_cells(void **state)
{
	struct env *e = *state;
	struct cm_up_opts o = up_opts(e, 5000);
	int id;

	start_daemon(e, e->conf_text, 4);
	assert_int_equal(cm_up(&e->hw, &o, &e->rep, &e->err), 0);
	assert_int_equal(cm_sysfs_cell_id(e->sys, "cell-b", &id), 0);
	tu_write_str(tu_fmt("%s/devices/jailhouse/cells/%d/state", e->sys, id), "running\n");
	fake_hw_reset(&e->f);
	e->progress[0] = '\0';
	assert_int_equal(cm_up(&e->hw, &o, &e->rep, &e->err), 0);
	assert_non_null(strstr(e->progress, "cell cell-b: \"cell-b\" is running already; left alone\n"));
	assert_int_equal(fake_hw_find(&e->f, "enable"), -1);    /* enabled already */
	assert_call(e, 0, "create len=");
	assert_non_null(strstr(e->f.calls[0], "name=cell-a"));
	assert_int_equal(fake_hw_find_from(&e->f, 1, "create"), -1);
	assert_served_at_create(e, "cell-a", devs_a);
	assert_int_equal(fake_hw_find(&e->f, "load name=cell-b"), -1);
	assert_int_equal(fake_hw_find(&e->f, "start name=cell-b"), -1);
	assert_true(cm_report_has(&e->rep, CM_SEV_WARN, "Jailhouse is enabled already"));
}

static void up_config_errors(void **state)
{
	struct env *e = *state;
	struct cm_up_opts o = up_opts(e, 300);
	const char *dir = e->d.dir;

	/* no [cell] section */
	tu_write_str(e->d.conf, tu_fmt("[block d]\nsim = %s/x.sock\nimage = %s/a.img\n", dir, dir));
	assert_int_equal(cm_up(&e->hw, &o, &e->rep, &e->err), -EINVAL);
	assert_string_equal(e->err.what, tu_fmt("%s has no [cell NAME] section", e->d.conf));

	/* a config error: the parser's message as is */
	tu_write_str(e->d.conf, tu_fmt("[block d]\nsim = %s/x.sock\nimage = %s/a.img\ncell = c\n"
				       "[cell x]\nconfig = %s/a.cell\nkernel = %s\n", dir, dir, dir,
				       e->kernel));
	cm_err_clear(&e->err);
	assert_int_equal(cm_up(&e->hw, &o, &e->rep, &e->err), -EINVAL);
	assert_string_equal(e->err.what, tu_fmt("%s:4: [block d] cell: there is no [cell c] section "
						"(cells: x)", e->d.conf));

	/* not enabled and no root cell config */
	tu_write_str(e->d.conf, tu_fmt("[block d]\nsim = %s/x.sock\nimage = %s/a.img\ncell = x\n"
				       "[cell x]\nconfig = %s/a.cell\nkernel = %s\n", dir, dir, dir,
				       e->kernel));
	cm_err_clear(&e->err);
	assert_int_equal(cm_up(&e->hw, &o, &e->rep, &e->err), -EINVAL);
	assert_string_equal(e->err.what, "Jailhouse is not enabled and no root cell config is given");

	/* control-socket = none */
	tu_write_str(e->d.conf, tu_fmt("[daemon]\ncontrol-socket = none\n"
				       "[block d]\nsim = %s/x.sock\nimage = %s/a.img\ncell = x\n"
				       "[cell x]\nconfig = %s/a.cell\nkernel = %s\n", dir, dir, dir,
				       e->kernel));
	cm_err_clear(&e->err);
	assert_int_equal(cm_up(&e->hw, &o, &e->rep, &e->err), -EINVAL);
	assert_string_equal(e->err.what, tu_fmt("%s disables the daemon's control socket "
						"(control-socket = none)", e->d.conf));

	/* a cell config that is a system config: refused before anything */
	tu_write_str(e->d.conf, tu_fmt("[block d]\nsim = %s/x.sock\nimage = %s/a.img\ncell = x\n"
				       "[cell x]\nconfig = %s/root.cell\nkernel = %s\n", dir, dir, dir,
				       e->kernel));
	cm_err_clear(&e->err);
	o.root_config = tu_fmt("%s/root.cell", dir);
	assert_int_equal(cm_up(&e->hw, &o, &e->rep, &e->err), -EINVAL);
	assert_non_null(strstr(e->err.what, tu_fmt("%s:6: [cell x] config: %s/root.cell is a system "
						   "(root cell) configuration", e->d.conf, dir)));
	assert_int_equal(e->f.ncalls, 0);

	/* a kernel that is not a bzImage: found before enabling */
	tu_write_str(e->d.conf, tu_fmt("[block d]\nsim = %s/x.sock\nimage = %s/a.img\ncell = x\n"
				       "[cell x]\nconfig = %s/a.cell\nkernel = %s\n", dir, dir, dir,
				       e->initrd));
	cm_err_clear(&e->err);
	assert_true(cm_up(&e->hw, &o, &e->rep, &e->err) < 0);
	assert_non_null(strstr(e->err.what, e->initrd));
	assert_int_equal(e->f.ncalls, 0);
}

/* The whole-system check runs before anything is touched: here cell-b is
 * a second copy of cell-a (same CPUs, memory and ivshmem endpoint). */
static void up_refuses_conflicting_cells(void **state)
{
	struct env *e = *state;
	struct cm_up_opts o = up_opts(e, 300);

	write_cell(tu_fmt("%s/b.cell", e->d.dir), "cell-b", 0x0c << 3, 0x8002);
	assert_int_equal(cm_up(&e->hw, &o, &e->rep, &e->err), -EINVAL);
	assert_non_null(strstr(e->err.what, "error(s) in the whole-system check of the root cell "));
	assert_non_null(strstr(e->err.hint, "nothing was touched"));
	assert_true(cm_report_has(&e->rep, CM_SEV_ERR, "CPU 2-3 claimed by cell \"cell-a\""));
	assert_true(cm_report_has(&e->rep, CM_SEV_ERR, "are both peer 1; the second create fails"));
	assert_int_equal(e->f.ncalls, 0);
	assert_int_equal(e->progress[0], '\0');
}

/* ---- arm64 cells ---- */

/* The cell's device tree before patching (compiled with dtc). */
static const char arm_dts[] =
	"/dts-v1/;\n"
	"/ {\n"
	"	#address-cells = <2>;\n"
	"	#size-cells = <2>;\n"
	"	model = \"up test cell\";\n"
	"	hypervisor { compatible = \"jailhouse,cell\"; };\n"
	"};\n";

/* Lines 1-18; [cell cell-a] at line 13, its dtb at 17. */
static void make_arm_conf(struct env *e, char *out, size_t len)
{
	const char *dir = e->d.dir;

	snprintf(out, len,
		 "[daemon]\ncontrol-socket = %s\nroot-cell = %s/root.cell\n"
		 "[block disk-a]\nsim = %s/a.sock\nimage = %s/a.img\ncell = cell-a\n"
		 "[console con-a]\nsim = %s/ca.sock\nendpoint = log\npath = %s/ca.log\ncell = cell-a\n"
		 "[cell cell-a]\nconfig = %s/a.cell\nkernel = %s\ninitrd = %s\ndtb = %s\n"
		 "cmdline = console=ttyAMA0 earlycon\n",
		 e->sock, dir, dir, dir, dir, dir, dir, e->kernel, e->initrd, e->dtb);
}

/* The x86 setup turned into an arm64 system: the root and cell-a for
 * arm64, an Image instead of the bzImage, a device tree, an arm64-sized
 * loader, and a config with cell-a only.  Skipped without dtc. */
static int setup_arm(void **state)
{
	struct env *e;
	const char *dir;
	uint8_t *b, ld[0x1800];
	size_t len;
	char *dtb;

	if (setup(state) < 0)
		return -1;
	e = *state;
	dir = e->d.dir;
	e->hw.arch = CM_ARCH_ARM64;
	b = cw_build(14, CW_ARM64, &root_sys, &(struct cw_cell){ .name = "arm-root", .cpus = 0xf,
		     .mem = root_mem, .nmem = 8, .pci = root_pci, .npci = 1 }, &len);
	tu_write(tu_fmt("%s/root.cell", dir), b, len);
	free(b);
	write_cell_arch(tu_fmt("%s/a.cell", dir), "arm-a", 0x0c << 3, 0x8002, CW_ARM64);
	write_cell_arch(tu_fmt("%s/b.cell", dir), "arm-b", 0x0d << 3, 0x8002, CW_ARM64);
	snprintf(e->kernel, sizeof(e->kernel), "%s/Image", dir);
	b = arm64_image(0x123456, 0x80000, 0x200000);
	tu_write(e->kernel, b, 0x123456);
	free(b);
	memset(ld, 0xcc, sizeof(ld));
	tu_write(e->loader, ld, sizeof(ld));
	snprintf(e->dtb, sizeof(e->dtb), "%s/cell.dtb", dir);
	dtb = tu_dtc(dir, arm_dts, &len);
	if (dtb) {
		tu_write(e->dtb, dtb, len);
		free(dtb);
	}
	make_arm_conf(e, e->conf_text, sizeof(e->conf_text));
	tu_write_str(e->d.conf, e->conf_text);
	return 0;
}

static bool have_dtc(void)
{
	const char *tool = getenv("DTC");

	return tool && *tool;
}

static bool file_is(const char *path, const void *data, size_t size)
{
	size_t len;
	char *got = tu_read(path, &len);
	bool same = got && len == size && !memcmp(got, data, size);

	free(got);
	return same;
}

static int run_cli(const char *args, char *out, size_t len);

/* `up` boots an arm64 cell with what `linux -w` computes for the same
 * inputs: the same images at the same addresses, the same parameter
 * string, and the patched device tree byte for byte; and only once the
 * daemon serves the cell's devices. */
static void up_boots_arm64(void **state)
{
	struct env *e = *state;
	struct cm_up_opts o = up_opts(e, 5000);
	struct cm_down_opts d = { e->d.conf, false, collect_progress, e };
	const struct fake_image *im = e->f.images;
	char out[4096];
	int len;
	const void *v;

	if (!have_dtc())
		skip();
	start_daemon(e, e->conf_text, 2);
	if (cm_up(&e->hw, &o, &e->rep, &e->err) < 0) {
		for (size_t i = 0; i < e->rep.n; i++)
			fprintf(stderr, "report: %s\n", e->rep.items[i].msg);
		fail_msg("%s (hint: %s)", e->err.what, e->err.hint);
	}
	assert_call(e, 0, "module jailhouse");
	assert_call(e, 1, "enable len=");
	assert_call(e, 2, "create len=");
	assert_non_null(strstr(e->f.calls[2], "name=arm-a"));
	assert_call(e, 3, "daemon@create arm-a:");
	/* loader, parameter string, kernel, initrd, device tree */
	assert_call(e, 4, "load name=arm-a n=5 ");
	assert_call(e, 5, "start name=arm-a");
	assert_int_equal(e->f.ncalls, 6);
	assert_served_at_create(e, "arm-a", devs_a);
	assert_non_null(strstr(e->progress, tu_fmt("cell cell-a: creating \"arm-a\" and booting %s "
						   "(device tree %s)\n", e->kernel, e->dtb)));

	/* `linux -w` on the same files: its load line is the one `up` ran */
	assert_int_equal(e->f.nimages, 5);
	assert_int_equal(run_cli(tu_fmt("--arch arm64 linux %s/a.cell %s -d %s -i %s -c "
					"'console=ttyAMA0 earlycon' -l %s -w %s/out.dtb", e->d.dir,
					e->kernel, e->dtb, e->initrd, e->loader, e->d.dir),
				 out, sizeof(out)), 0);
	assert_string_equal(out, tu_fmt(
		"Patched device tree written to %s/out.dtb. Start Linux with these commands (adjust "
		"paths as needed):\n\n"
		"jailhouse-cellmgr create %s/a.cell\n"
		"jailhouse-cellmgr load arm-a %s -a 0x%" PRIx64 " -s '%.*s' -a 0x%" PRIx64 " %s -a 0x%"
		PRIx64 " %s -a 0x%" PRIx64 " %s/out.dtb -a 0x%" PRIx64 "\n"
		"jailhouse-cellmgr start arm-a\n", e->d.dir, e->d.dir, e->loader, im[0].addr,
		(int)im[1].size, (const char *)im[1].data, im[1].addr, e->kernel, im[2].addr,
		e->initrd, im[3].addr, e->d.dir, im[4].addr));
	assert_true(file_is(e->loader, im[0].data, im[0].size));
	assert_true(file_is(e->kernel, im[2].data, im[2].size));
	assert_true(file_is(e->initrd, im[3].data, im[3].size));
	assert_true(file_is(tu_fmt("%s/out.dtb", e->d.dir), im[4].data, im[4].size));
	/* By hand (test_linux_arm.c has the rules): high RAM at 0x200000 is
	 * the first region that holds the images; the tree at its start, the
	 * kernel at the next 2 MiB boundary plus text_offset 0x80000, the
	 * initrd after twice the page-aligned kernel; the loader's string. */
	assert_int_equal(im[0].addr, 0);
	assert_int_equal(im[4].addr, 0x200000);
	assert_int_equal(im[2].addr, 0x480000);
	assert_int_equal(im[3].addr, 0x480000 + 2 * 0x124000);
	assert_int_equal(im[1].addr, 0x1000);
	assert_memory_equal(im[1].data, "kernel=0x480000 dtb=0x200000", im[1].size);
	/* and the tree got the [cell]'s command line */
	assert_int_equal(fdt_check_full(im[4].data, im[4].size), 0);
	v = fdt_getprop(im[4].data, fdt_path_offset(im[4].data, "/chosen"), "bootargs", &len);
	assert_non_null(v);
	assert_int_equal(len, sizeof("console=ttyAMA0 earlycon"));
	assert_string_equal(v, "console=ttyAMA0 earlycon");

	/* down as on x86 */
	fake_hw_reset(&e->f);
	assert_int_equal(cm_down(&e->hw, &d, &e->rep, &e->err), 0);
	assert_call(e, 0, "load name=arm-a n=0");
	assert_call(e, 1, "destroy name=arm-a");
	assert_int_equal(e->f.ncalls, 2);
}

/* An arm64 cell without `dtb =` is refused before anything is touched,
 * even when it would boot last. */
static void up_refuses_arm_without_dtb(void **state)
{
	struct env *e = *state;
	struct cm_up_opts o = up_opts(e, 300);
	const char *dir = e->d.dir;

	/* [cell cell-b] at line 19, booting after cell-a */
	tu_write_str(e->d.conf, tu_fmt("%s[cell cell-b]\nconfig = %s/b.cell\nkernel = %s\norder = 1\n",
				       e->conf_text, dir, e->kernel));
	assert_int_equal(cm_up(&e->hw, &o, &e->rep, &e->err), -EINVAL);
	assert_string_equal(e->err.what, tu_fmt("%s:19: [cell cell-b]: %s/b.cell is an arm64 cell, "
						"whose Linux needs a device tree: add `dtb = FILE` to "
						"the section", e->d.conf, dir));
	assert_string_equal(e->err.hint, "FILE is the cell's compiled device tree, the one "
			    "`jailhouse-cellmgr linux CELL.cell KERNEL -d DTB` takes (dtc -I dts -O dtb "
			    "-o cell.dtb cell.dts)");
	assert_int_equal(e->f.ncalls, 0);
	assert_int_equal(e->progress[0], '\0');
}

/* An x86 cell with `dtb =`: refused before anything is touched, with the
 * line to remove. */
static void up_refuses_x86_with_dtb(void **state)
{
	struct env *e = *state;
	struct cm_up_opts o = up_opts(e, 300);
	char text[8192];
	const char *at = strstr(e->conf_text, "order = 2\n");

	/* make_conf(): [cell cell-a] at line 20, its order at 25; cell-a boots
	 * after cell-b.  The dtb goes to line 26. */
	assert_non_null(at);
	at += strlen("order = 2\n");
	tu_write_str(tu_fmt("%s/x.dtb", e->d.dir), "\xd0\x0d\xfe\xed");
	snprintf(text, sizeof(text), "%.*sdtb = %s/x.dtb\n%s", (int)(at - e->conf_text), e->conf_text,
		 e->d.dir, at);
	start_daemon(e, e->conf_text, 4);      /* all devices serve: only the dtb is wrong */
	tu_write_str(e->d.conf, text);
	assert_int_equal(cm_up(&e->hw, &o, &e->rep, &e->err), -EINVAL);
	assert_string_equal(e->err.what, tu_fmt("%s:20: [cell cell-a]: %s/a.cell is an x86 cell, whose "
						"Linux takes no device tree: remove `dtb = %s/x.dtb` "
						"(line 26)", e->d.conf, e->d.dir, e->d.dir));
	assert_int_equal(e->f.ncalls, 0);
	assert_int_equal(e->progress[0], '\0');
}

/* ---- a scripted control socket: states the real daemon will not show on demand ---- */

struct script {
	char path[400];
	const char *reply;
	int lfd;
	volatile int stop;
	pthread_t th;
};

static void *script_main(void *arg)
{
	struct script *s = arg;

	while (!s->stop) {
		struct pollfd p = { s->lfd, POLLIN, 0 };
		char buf[256];
		int fd;

		if (poll(&p, 1, 50) <= 0)
			continue;
		fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		if (read(fd, buf, sizeof(buf)) > 0 && write(fd, s->reply, strlen(s->reply)) < 0)
			break;
		close(fd);
	}
	return NULL;
}

static void script_start(struct script *s, const char *path, const char *reply)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(s->path, sizeof(s->path), "%s", path);
	s->reply = reply;
	s->stop = 0;
	s->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->lfd, 8), 0);
	assert_int_equal(pthread_create(&s->th, NULL, script_main, s), 0);
}

static void script_stop(struct script *s)
{
	s->stop = 1;
	pthread_join(s->th, NULL);
	close(s->lfd);
	unlink(s->path);
}

#define DEV_JSON(name, type, state, cell) \
	"{\"name\":\"" name "\",\"type\":\"" type "\",\"link\":\"sim:/x\",\"state\":\"" state \
	"\",\"status\":0,\"features\":\"0x0\",\"queues\":[{\"index\":0,\"size\":0,\"enabled\":false}]" \
	",\"cell\":\"" cell "\"}"

static void up_device_not_serving(void **state)
{
	struct env *e = *state;
	struct cm_up_opts o = up_opts(e, 300);
	struct script s;

	script_start(&s, e->sock, "ok\n{\"devices\":[" DEV_JSON("disk-b", "block", "broken", "cell-b")
		     "]}\n.\n");
	assert_int_equal(cm_up(&e->hw, &o, &e->rep, &e->err), -ETIMEDOUT);
	script_stop(&s);
	assert_string_equal(e->err.what, "device disk-b of cell cell-b is not served by virtio-ivshmemd "
			    "(state \"broken\" after 0.3 s)");
	assert_non_null(strstr(e->err.hint, "is the daemon running with this config"));
	assert_int_equal(fake_hw_find(&e->f, "create"), -1);

	/* a device of that name for another cell: another config */
	script_start(&s, e->sock, "ok\n{\"devices\":[" DEV_JSON("disk-b", "block", "running", "other")
		     "]}\n.\n");
	cm_err_clear(&e->err);
	assert_int_equal(cm_up(&e->hw, &o, &e->rep, &e->err), -ENODEV);
	script_stop(&s);
	assert_string_equal(e->err.what, tu_fmt("device disk-b of cell cell-b is not served by "
						"virtio-ivshmemd (the daemon at %s has a block device "
						"disk-b for cell other)", e->sock));

	/* the daemon refuses the command */
	script_start(&s, e->sock, "error: unknown command 'json'\n.\n");
	cm_err_clear(&e->err);
	assert_int_equal(cm_up(&e->hw, &o, &e->rep, &e->err), -EREMOTEIO);
	script_stop(&s);
	assert_string_equal(e->err.what, tu_fmt("virtio-ivshmemd at %s refused \"json list\": "
						"unknown command 'json'", e->sock));

	/* garbage */
	script_start(&s, e->sock, "ok\n{\"devices\":[{\"name\":}]}\n.\n");
	cm_err_clear(&e->err);
	assert_int_equal(cm_up(&e->hw, &o, &e->rep, &e->err), -EPROTO);
	script_stop(&s);
	assert_non_null(strstr(e->err.what, "malformed device list from virtio-ivshmemd"));
	assert_int_equal(fake_hw_find(&e->f, "create"), -1);
}

static void ctl_reply_framing(void **state)
{
	struct env *e = *state;
	struct script s;
	char *body;

	script_start(&s, e->sock, "ok\n.\n");
	assert_int_equal(cm_daemon_cmd(e->sock, "help", 1000, &body, &e->err), 0);
	assert_string_equal(body, "");
	free(body);
	script_stop(&s);
	script_start(&s, e->sock, "ok\nline 1\nline 2\n.\n");
	assert_int_equal(cm_daemon_cmd(e->sock, "list", 1000, &body, &e->err), 0);
	assert_string_equal(body, "line 1\nline 2");
	free(body);
	script_stop(&s);
	/* closed before the terminator */
	script_start(&s, e->sock, "ok\nhalf");
	assert_int_equal(cm_daemon_cmd(e->sock, "list", 1000, &body, &e->err), -EPROTO);
	assert_null(body);
	script_stop(&s);
	cm_err_clear(&e->err);
	assert_int_equal(cm_daemon_cmd(e->sock, "list\nx", 1000, &body, &e->err), -EINVAL);
}

static void json_reader(void **state)
{
	struct cm_daemon_dev *d;
	struct cm_err err = { 0 };
	char big[256];
	size_t n;
	(void)state;

	assert_int_equal(cm_daemon_parse_list("{\"devices\":[]}", &d, &n, &err), 0);
	assert_int_equal(n, 0);
	free(d);
	assert_int_equal(cm_daemon_parse_list(
		" { \"x\" : [1, -2.5e3, true, null, {\"y\": \"z\"}], \"devices\" : [ "
		"{\"name\":\"a\\\"b\",\"type\":\"block\",\"link\":\"sim:\\/r\\u00e9\",\"state\":"
		"\"waiting for peer\",\"status\":15,\"features\":\"0x1\",\"queues\":[{\"index\":0,"
		"\"size\":256,\"enabled\":true}],\"image\":\"/x.img\",\"capacity\":8192,"
		"\"read_only\":false,\"cell\":\"c1\"}, {\"name\":\"con\",\"type\":\"console\","
		"\"state\":\"stopped\"} ] } \n", &d, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(d[0].name, "a\"b");
	assert_string_equal(d[0].link, "sim:/r\xc3\xa9");
	assert_string_equal(d[0].state, "waiting for peer");
	assert_string_equal(d[0].cell, "c1");
	assert_string_equal(d[1].type, "console");
	assert_string_equal(d[1].cell, "");
	assert_true(cm_daemon_state_serving(d[0].state));
	assert_false(cm_daemon_state_serving(d[1].state));
	assert_false(cm_daemon_state_serving("broken"));
	assert_true(cm_daemon_state_serving("negotiating"));
	assert_true(cm_daemon_state_serving("running"));
	free(d);
	/* long names are cut, not overflowed */
	memset(big, 'n', sizeof(big));
	snprintf(big, sizeof(big), "{\"devices\":[{\"name\":\"%0200d\"}]}", 7);
	assert_int_equal(cm_daemon_parse_list(big, &d, &n, &err), 0);
	assert_int_equal(strlen(d[0].name), sizeof(d[0].name) - 1);
	free(d);

	static const char *const bad[] = {
		"", "{}", "[]", "{\"devices\":{}}", "{\"devices\":[{\"name\":\"a\"}]", "{\"devices\":[]} x",
		"{\"devices\":[{\"name\":\"a\nb\"}]}", "{\"devices\":[{\"name\":\"\\q\"}]}",
		"{\"devices\":[{\"name\":\"\\u12\"}]}", "{\"devices\":[{\"name\" \"a\"}]}",
		"{\"devices\":[{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}]}",
		"{\"devices\":[{\"a\":tru}]}", "{\"devices\":[{\"a\":-}]}", "{\"devices\":[1]}",
		"{\"devices\":[],}", "{\"devices\":[{\"name\":\"a\",}]}", "{\"devices\":[],\"devices\":[]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cm_err_clear(&err);
		if (cm_daemon_parse_list(bad[i], &d, &n, &err) != -EPROTO)
			fail_msg("accepted: %s", bad[i]);
		assert_null(d);
		assert_non_null(strstr(err.what, "malformed device list"));
	}
}

/* ---- matching links to cells by BDF ---- */

static int match(struct env *e, const char *text, const struct cm_link *links, size_t nlinks,
		 int *dev_cell)
{
	char msg[1024];
	struct config *cfg;
	struct cm_config *cells[3] = { 0 };
	int ret;

	tu_write_str(e->d.conf, text);
	if (config_load(e->d.conf, &cfg, msg, sizeof(msg)) < 0)
		fail_msg("%s", msg);
	for (unsigned k = 0; k < cfg->ncells; k++)
		assert_int_equal(cm_config_load(cfg->cells[k].config, CM_ARCH_X86, &cells[k], &e->err), 0);
	ret = cm_up_match(cfg, cells, links, nlinks, dev_cell, &e->rep, &e->err);
	for (unsigned k = 0; k < cfg->ncells; k++)
		cm_config_free(cells[k]);
	config_free(cfg);
	return ret;
}

static void match_links_to_cells(void **state)
{
	struct env *e = *state;
	const char *dir = e->d.dir;
	struct cm_link links[1] = { 0 };
	int dc[3];
	char cells[1024];

	write_cell(tu_fmt("%s/x.cell", dir), "cell-x", 0x0c << 3, 0x8002);   /* blk at 00:0c.0 */
	write_cell(tu_fmt("%s/y.cell", dir), "cell-y", 0x0d << 3, 0x8003);   /* con at 00:0d.0 */
	write_cell(tu_fmt("%s/z.cell", dir), "cell-z", 0x0c << 3, 0x8002);   /* blk at 00:0c.0 */
	snprintf(cells, sizeof(cells), "[cell cell-x]\nconfig = %s/x.cell\nkernel = %s\n"
		 "[cell cell-y]\nconfig = %s/y.cell\nkernel = %s\n", dir, e->kernel, dir, e->kernel);
	/* the bind results: uio7 serves 0000:00:0d.0 */
	snprintf(links[0].pci.bdf, sizeof(links[0].pci.bdf), "0000:00:0d.0");
	links[0].pci.dev = 0x0d;
	links[0].pci.protocol = 0xc003;
	links[0].kind = CM_PROTO_VIRTIO_BACK;
	snprintf(links[0].uio, sizeof(links[0].uio), "uio7");

	/* no `cell =`: pci = BDF and uio = /dev/uioN find their cells; an
	 * explicit cell on a sim link stays */
	assert_int_equal(match(e, tu_fmt("[block p]\npci = 0000:00:0c.0\nimage = %s/a.img\n"
					 "[console u]\nuio = /dev/uio7\nendpoint = stdio\n"
					 "[block s]\nsim = %s/s.sock\nimage = %s/a.img\ncell = cell-y\n%s",
					 dir, dir, dir, cells), links, 1, dc), 0);
	assert_int_equal(dc[0], 0);
	assert_int_equal(dc[1], 1);
	assert_int_equal(dc[2], 1);
	assert_int_equal(e->rep.n, 0);
	/* without the bind results, the uio device belongs to no cell */
	assert_int_equal(match(e, tu_fmt("[block p]\npci = 0000:00:0c.0\nimage = %s/a.img\n"
					 "[console u]\nuio = /dev/uio7\nendpoint = stdio\n%s",
					 dir, cells), NULL, 0, dc), 0);
	assert_int_equal(dc[1], -1);
	assert_true(cm_report_has(&e->rep, CM_SEV_WARN, "cell cell-y: its virtio-console front-end at "
				  "00:0d.0 has no device in "));

	/* `cell =` names a cell, but the link is in another cell's config */
	assert_int_equal(match(e, tu_fmt("[block p]\npci = 0000:00:0d.0\nimage = %s/a.img\n"
					 "cell = cell-x\n%s", dir, cells), links, 1, dc), -EINVAL);
	assert_string_equal(e->err.what, tu_fmt("%s:4: [block p] cell: the device names cell cell-x, "
						"but its link 00:0d.0 is in the config of cell cell-y "
						"(%s/y.cell)", e->d.conf, dir));
	/* a block device on a console front-end */
	cm_err_clear(&e->err);
	assert_int_equal(match(e, tu_fmt("[block p]\npci = 0000:00:0d.0\nimage = %s/a.img\n%s",
					 dir, cells), links, 1, dc), -EINVAL);
	assert_string_equal(e->err.what, tu_fmt("%s:1: [block p]: link 00:0d.0 of cell cell-y is a "
						"virtio-console front-end (protocol 0x8003), not a "
						"virtio-blk front-end", e->d.conf));
	/* two cells at the same BDF and no `cell =` */
	cm_err_clear(&e->err);
	assert_int_equal(match(e, tu_fmt("[block p]\npci = 0000:00:0c.0\nimage = %s/a.img\n%s"
					 "[cell cell-z]\nconfig = %s/z.cell\nkernel = %s\n", dir, cells,
					 dir, e->kernel), links, 1, dc), -EINVAL);
	assert_string_equal(e->err.what, tu_fmt("%s:1: [block p]: link 00:0c.0 is in the configs of "
						"2 cells", e->d.conf));
	assert_string_equal(e->err.hint, "say which cell the device belongs to with `cell = NAME`");
	/* ... which `cell =` settles */
	assert_int_equal(match(e, tu_fmt("[block p]\npci = 0000:00:0c.0\nimage = %s/a.img\n"
					 "cell = cell-z\n%s[cell cell-z]\nconfig = %s/z.cell\n"
					 "kernel = %s\n", dir, cells, dir, e->kernel), links, 1, dc), 0);
	assert_int_equal(dc[0], 2);
	/* the named cell has nothing at that BDF: a warning */
	cm_report_free(&e->rep);
	cm_report_init(&e->rep);
	assert_int_equal(match(e, tu_fmt("[block p]\npci = 0000:00:0e.0\nimage = %s/a.img\n"
					 "cell = cell-x\n%s", dir, cells), links, 1, dc), 0);
	assert_true(cm_report_has(&e->rep, CM_SEV_WARN, tu_fmt("%s:1: [block p]: cell cell-x has no "
				  "ivshmem device at 00:0e.0 in %s/x.cell", e->d.conf, dir)));
	assert_true(cm_report_has(&e->rep, CM_SEV_WARN, "cell cell-x: its virtio-blk front-end at "
				  "00:0c.0 has no device in "));
}

/* ---- the CLI ---- */

static int run_cli(const char *args, char *out, size_t len)
{
	FILE *p = popen(tu_fmt("%s %s 2>&1", cli_path, args), "r");
	size_t got;

	memset(out, 0, len);
	got = fread(out, 1, len - 1, p);
	out[got] = '\0';
	return WEXITSTATUS(pclose(p));
}

static void cli_up_down(void **state)
{
	struct env *e = *state;
	const char *dir = e->d.dir;
	char out[4096];

	tu_write_str(e->d.conf, tu_fmt("[block d]\nsim = %s/x.sock\nimage = %s/a.img\ncell = x\n"
				       "[cell x]\nconfig = %s/a.cell\nkernel = %s\n", dir, dir, dir,
				       e->kernel));
	assert_int_equal(run_cli(tu_fmt("--sysfs %s up %s", e->sys, e->d.conf), out, sizeof(out)), 1);
	assert_string_equal(out, tu_fmt("jailhouse-cellmgr: Jailhouse is not enabled and no root cell "
					"config is given: Invalid argument\n"
					"  hint: pass --root ROOT.cell, or set root-cell = ROOT.cell in "
					"[daemon] of %s\n", e->d.conf));
	assert_int_equal(run_cli("up", out, sizeof(out)), 2);
	assert_non_null(strstr(out, "usage: jailhouse-cellmgr up CONFIG"));
	assert_int_equal(run_cli(tu_fmt("up %s --timeout 0", e->d.conf), out, sizeof(out)), 2);
	assert_int_equal(run_cli(tu_fmt("down %s --bogus", e->d.conf), out, sizeof(out)), 2);
	assert_non_null(strstr(out, "usage: jailhouse-cellmgr down CONFIG [--disable]"));
	/* down with nothing enabled: nothing to do, success */
	assert_int_equal(run_cli(tu_fmt("--sysfs %s down --disable %s", e->sys, e->d.conf), out,
				 sizeof(out)), 0);
	assert_string_equal(out, "cell x: \"cell-a\" does not exist; skipped\n"
			    "Jailhouse is not enabled; nothing to disable\n");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(up_then_down, setup, teardown),
		cmocka_unit_test_setup_teardown(up_waits_for_daemon, setup, teardown),
		cmocka_unit_test_setup_teardown(up_fails_without_daemon, setup, teardown),
		cmocka_unit_test_setup_teardown(up_fails_with_missing_device, setup, teardown),
		cmocka_unit_test_setup_teardown(up_leaves_running_cells, setup, teardown),
		cmocka_unit_test_setup_teardown(up_config_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(up_refuses_conflicting_cells, setup, teardown),
		cmocka_unit_test_setup_teardown(up_refuses_x86_with_dtb, setup, teardown),
		cmocka_unit_test_setup_teardown(up_boots_arm64, setup_arm, teardown),
		cmocka_unit_test_setup_teardown(up_refuses_arm_without_dtb, setup_arm, teardown),
		cmocka_unit_test_setup_teardown(up_device_not_serving, setup, teardown),
		cmocka_unit_test_setup_teardown(ctl_reply_framing, setup, teardown),
		cmocka_unit_test(json_reader),
		cmocka_unit_test_setup_teardown(match_links_to_cells, setup, teardown),
		cmocka_unit_test_setup_teardown(cli_up_down, setup, teardown),
	};
	cli_path = argc > 1 ? argv[1] : "jailhouse-cellmgr";
	return cmocka_run_group_tests(tests, NULL, NULL);
}
