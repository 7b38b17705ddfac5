/* Config parsing: every error by its exact message (file, line, key). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

static char dir[64];
static char conf[128];
static char img[128];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/vivcfg-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(conf, sizeof(conf), "%s/t.conf", dir);
	snprintf(img, sizeof(img), "%s/disk.img", dir);
	FILE *f = fopen(img, "w");
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	unlink(conf);
	unlink(img);
	rmdir(dir);
	return 0;
}

/* Write text (with %s replaced by the image path) and parse it. */
static int load(const char *text, char *err, size_t err_len, struct config **cfg)
{
	FILE *f = fopen(conf, "w");
	fprintf(f, text, img, img, img);
	fclose(f);
	*cfg = NULL;
	return config_load(conf, cfg, err, err_len);
}

static void expect_error(const char *text, const char *msg)
{
	char err[512], want[512];
	struct config *cfg;
	assert_true(load(text, err, sizeof(err), &cfg) < 0);
	snprintf(want, sizeof(want), "%s:%s", conf, msg);
	assert_string_equal(err, want);
	assert_null(cfg);
}

static void test_valid(void **state)
{
	char err[512];
	struct config *cfg;
	int r = load("# comment\n[daemon]\nlog-level = debug\n\n"
		     "[block disk0]\nuio = /dev/uio0\nimage = %s\nread-only = yes\nserial = ABC\n"
		     "queues = 2\nqueue-size = 64\n\n"
		     "[block disk1]\nsim = /run/x.sock\nimage = %s\nshm-size = 16M ; inline comment\n"
		     "vectors = 3\ncell = linux-1\n\n"
		     "[block disk2]\npci = 0000:01:0c.0\nimage = %s\n", err, sizeof(err), &cfg);
	if (r < 0)
		fail_msg("%s", err);
	assert_int_equal(cfg->ndevices, 3);
	assert_int_equal(cfg->daemon.log_level, 7);
	const struct cfg_device *b = &cfg->devices[0];
	assert_string_equal(b->name, "disk0");
	assert_int_equal(b->line, 5);
	assert_int_equal(b->link.kind, LINK_UIO);
	assert_string_equal(b->link.target, "/dev/uio0");
	assert_true(b->read_only);
	assert_string_equal(b->serial, "ABC");
	assert_int_equal(b->queues, 2);
	assert_int_equal(b->queue_size, 64);
	b = &cfg->devices[1];
	assert_int_equal(b->link.kind, LINK_SIM_HOST);
	assert_int_equal(b->link.shm_size, 16u << 20);
	assert_int_equal(b->link.vectors, 3);
	assert_string_equal(b->cell, "linux-1");
	assert_string_equal(b->serial, "disk1");     /* default: the name */
	assert_int_equal(b->queue_size, 256);         /* defaults */
	assert_int_equal(b->queues, 1);
	assert_false(b->read_only);
	assert_int_equal(cfg->devices[2].link.kind, LINK_PCI);
	config_free(cfg);
}

/* cache = writeback | none per disk: writeback when absent; a console
 * refuses the key. */
static void test_cache_key(void **state)
{
	char err[512];
	struct config *cfg;
	int r = load("[block a]\nsim = /s\nimage = %s\n"
		     "[block b]\nsim = /t\nimage = %s\ncache = none\n"
		     "[block c]\nsim = /u\nimage = %s\ncache = none\ncache = writeback\n",
		     err, sizeof(err), &cfg);
	if (r < 0)
		fail_msg("%s", err);
	assert_int_equal(cfg->devices[0].cache, CFG_CACHE_WRITEBACK);
	assert_int_equal(cfg->devices[1].cache, CFG_CACHE_NONE);
	assert_int_equal(cfg->devices[2].cache, CFG_CACHE_WRITEBACK);   /* the later value */
	config_free(cfg);
	expect_error("[block d]\nsim = /s\nimage = %s\ncache = direct\n",
		     "4: [block d] cache: must be writeback or none (got 'direct')");
	expect_error("[block d]\nsim = /s\ncache = None\nimage = %s\n",
		     "3: [block d] cache: must be writeback or none (got 'None')");
	expect_error("[block d]\nsim = /s\ncache =\nimage = %s\n",
		     "3: [block d] cache: must be writeback or none (got '')");
	expect_error("[console c]\nsim = /s\nendpoint = log\npath = /l\ncache = none\n",
		     "5: [console c] cache: not a console key");
}

/* cache = none on a file system without O_DIRECT is refused at load (so
 * by --check-config too), naming the image and the fix.  tmpfs had no
 * O_DIRECT before Linux 6.6: where /dev/shm takes it, nothing to see. */
static void test_cache_none_no_direct(void **state)
{
	char shm[] = "/dev/shm/vivcfg-XXXXXX";
	int fd = mkstemp(shm);
	if (fd < 0)
		skip();
	close(fd);
	int dfd = open(shm, O_RDONLY | O_DIRECT);
	if (dfd >= 0 || errno != EINVAL) {
		if (dfd >= 0)
			close(dfd);
		unlink(shm);
		print_message("skipped: /dev/shm takes O_DIRECT here (tmpfs since Linux 6.6)\n");
		skip();
	}
	FILE *f = fopen(conf, "w");
	fprintf(f, "[block d]\nsim = /s\nimage = %s\ncache = none\n", shm);
	fclose(f);
	char err[512], want[512];
	struct config *cfg = NULL;
	int r = config_load(conf, &cfg, err, sizeof(err));
	unlink(shm);
	assert_true(r < 0);
	snprintf(want, sizeof(want), "%s:4: [block d] cache: none needs direct I/O (O_DIRECT), "
		 "which the file system of %s does not support (tmpfs has none); use cache = "
		 "writeback or put the image on another file system", conf, shm);
	assert_string_equal(err, want);
}

static void test_unknown_key(void **state)
{
	expect_error("[block d]\nsim = /s\nimage = %s\nbogus = 1\n", "4: [block d] bogus: unknown key");
	expect_error("[daemon]\nthreadz = 2\n[block d]\nsim = /s\nimage = %s\n",
		     "2: [daemon] threadz: unknown key");
}

static void test_missing_keys(void **state)
{
	expect_error("\n[block d]\nsim = /s\n", "2: [block d]: missing key 'image'");
	expect_error("[block d]\nimage = %s\n",
		     "1: [block d]: missing key 'uio', 'pci', 'sim' or 'sim-connect' (the IVSHMEM link)");
	expect_error("# nothing\n", "1: no device configured (add a [block NAME] or [console NAME] "
		     "section)");
}

static void test_bad_values(void **state)
{
	expect_error("[block d]\nsim = /s\nqueue-size = 100\nimage = %s\n",
		     "3: [block d] queue-size: must be a power of two from 2 to 32768 (got '100')");
	expect_error("[block d]\nsim = /s\nqueues = 0\nimage = %s\n",
		     "3: [block d] queues: must be a number from 1 to 64 (got '0')");
	expect_error("[block d]\nsim = /s\nqueues = 2x\nimage = %s\n",
		     "3: [block d] queues: must be a number from 1 to 64 (got '2x')");
	expect_error("[block d]\nsim = /s\nread-only = maybe\nimage = %s\n",
		     "3: [block d] read-only: must be yes or no (got 'maybe')");
	expect_error("[block d]\nsim = /s\nserial = 123456789012345678901\nimage = %s\n",
		     "3: [block d] serial: at most 20 characters (got 21)");
	expect_error("[block d]\nsim = /s\nshm-size = 1K\nimage = %s\n",
		     "3: [block d] shm-size: must be a power of two from 64K to 4G, like 4M: the link's "
		     "whole shared memory, mapped as one PCI BAR (got '1K')");
	expect_error("[block d]\nsim = /s\nshm-size = 5M\nimage = %s\n",
		     "3: [block d] shm-size: must be a power of two from 64K to 4G, like 4M: the link's "
		     "whole shared memory, mapped as one PCI BAR (got '5M')");
	expect_error("[block d]\npci = 00:0c\nimage = %s\n",
		     "2: [block d] pci: '00:0c' is not a PCI address like 0000:00:0c.0");
	expect_error("[daemon]\nlog-level = loud\n[block d]\nsim = /s\nimage = %s\n",
		     "2: [daemon] log-level: must be error, warning, info or debug (got 'loud')");
	expect_error("[daemon]\njournal = perhaps\n[block d]\nsim = /s\nimage = %s\n",
		     "2: [daemon] journal: must be yes or no (got 'perhaps')");
	expect_error("[daemon]\nupgrade-drain-ms = 60001\n[block d]\nsim = /s\nimage = %s\n",
		     "2: [daemon] upgrade-drain-ms: must be a number of milliseconds from 0 to "
		     "60000 (got '60001')");
	expect_error("[daemon]\nbusy-poll-us = 1001\n[block d]\nsim = /s\nimage = %s\n",
		     "2: [daemon] busy-poll-us: must be a number of microseconds from 0 to "
		     "1000 (got '1001')");
	expect_error("[daemon]\nbusy-poll-us = -1\n[block d]\nsim = /s\nimage = %s\n",
		     "2: [daemon] busy-poll-us: must be a number of microseconds from 0 to "
		     "1000 (got '-1')");
	expect_error("[daemon]\nio-engine = uring\n[block d]\nsim = /s\nimage = %s\n",
		     "2: [daemon] io-engine: must be auto, io_uring or threads (got 'uring')");
}

/* io-engine: auto by default; each name gives its engine. */
static void test_io_engine_key(void **state)
{
	char err[512];
	struct config *cfg;
	assert_int_equal(load("[block d]\nsim = /s\nimage = %s\n", err, sizeof(err), &cfg), 0);
	assert_int_equal(cfg->daemon.io_engine, CFG_IO_ENGINE_AUTO);
	config_free(cfg);
	static const struct { const char *name; enum cfg_io_engine kind; } v[] = {
		{ "auto", CFG_IO_ENGINE_AUTO }, { "io_uring", CFG_IO_ENGINE_URING },
		{ "threads", CFG_IO_ENGINE_THREADS },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text), "[daemon]\nio-engine = %s\n[block d]\nsim = /s\n"
			 "image = %%s\n", v[i].name);
		int r = load(text, err, sizeof(err), &cfg);
		if (r < 0)
			fail_msg("%s: %s", v[i].name, err);
		assert_int_equal(cfg->daemon.io_engine, v[i].kind);
		config_free(cfg);
	}
}

static void test_daemon_handover_keys(void **state)
{
	char err[512];
	struct config *cfg;
	assert_int_equal(load("[block d]\nsim = /s\nimage = %s\n", err, sizeof(err), &cfg), 0);
	assert_true(cfg->daemon.journal);                       /* defaults */
	assert_int_equal(cfg->daemon.upgrade_drain_ms, 2000);
	assert_int_equal(cfg->daemon.busy_poll_us, 50);
	config_free(cfg);
	for (unsigned us = 0; us <= 1000; us += 1000) {
		char text[128];
		snprintf(text, sizeof(text), "[daemon]\nbusy-poll-us = %u\n[block d]\nsim = /s\n"
			 "image = %%s\n", us);
		if (load(text, err, sizeof(err), &cfg) < 0)
			fail_msg("%s", err);
		assert_int_equal(cfg->daemon.busy_poll_us, us);
		config_free(cfg);
	}
	int r = load("[daemon]\njournal = no\nupgrade-drain-ms = 0\n[block d]\nsim = /s\n"
		     "image = %s\n", err, sizeof(err), &cfg);
	if (r < 0)
		fail_msg("%s", err);
	assert_false(cfg->daemon.journal);
	assert_int_equal(cfg->daemon.upgrade_drain_ms, 0);
	config_free(cfg);
}

static void test_structure_errors(void **state)
{
	expect_error("[block d]\nsim = /s\nimage = %s\n[block d]\nsim = /t\nimage = %s\n",
		     "4: [block d]: duplicate device name 'd' (first at line 1)");
	expect_error("[block a]\nsim = /s\nimage = %s\n[block b]\nsim = /s\nimage = %s\n",
		     "5: [block b] sim: link /s is already used by [block a] (line 2)");
	expect_error("[block a]\nsim = /s\nuio = /dev/uio0\nimage = %s\n",
		     "3: [block a] uio: the device already has a link (sim, line 2); give exactly one of "
		     "uio, pci, sim, sim-connect");
	expect_error("[serial c]\n", "1: [serial c]: unknown section (expected [daemon], "
		     "[block NAME] or [console NAME])");
	expect_error("[block]\n", "1: [block]: a block section needs one name of letters, digits, "
		     "'-', '_' or '.' (e.g. [block disk0])");
	expect_error("[console a b]\n", "1: [console a b]: a console section needs one name of "
		     "letters, digits, '-', '_' or '.' (e.g. [console console0])");
	expect_error("image = x\n", "1: image: key outside of any section");
	expect_error("[block d]\nsim = /s\nthis line has no equals sign\nimage = %s\n",
		     "3: syntax error (expected [section] or key = value)");
}

static void test_console_errors(void **state)
{
	expect_error("[console c]\nsim = /s\n", "1: [console c]: missing key 'endpoint' (pty, socket, "
		     "log or stdio)");
	expect_error("[console c]\nsim = /s\nendpoint = pty\n",
		     "1: [console c]: missing key 'path' (where the pty goes)");
	expect_error("[console c]\nsim = /s\nendpoint = tty\n",
		     "3: [console c] endpoint: must be pty, socket, log or stdio (got 'tty')");
	expect_error("[console c]\nsim = /s\nendpoint = log\npath = /l\nimage = x\n",
		     "5: [console c] image: not a console key");
	expect_error("[console c]\nsim = /s\nendpoint = socket\npath = /p\nbacklog = 1G\n",
		     "5: [console c] backlog: must be a size up to 64M, like 64K (got '1G')");
	expect_error("[console a]\nsim = /s\nendpoint = stdio\n[console b]\nsim = /t\n"
		     "endpoint = stdio\n", "4: [console b] endpoint: only one console can use stdio");
	expect_error("[block a]\nsim = /s\nimage = %s\n[console b]\nsim = /s\nendpoint = stdio\n",
		     "5: [console b] sim: link /s is already used by [block a] (line 2)");
}

static void test_console_valid(void **state)
{
	char err[512];
	struct config *cfg;
	int r = load("[console con0]\nsim = /run/c.sock\nendpoint = socket\npath = /run/c.con\n"
		     "backlog = 16K\ncols = 132\nrows = 50\n", err, sizeof(err), &cfg);
	if (r < 0)
		fail_msg("%s", err);
	const struct cfg_device *c = &cfg->devices[0];
	assert_int_equal(c->type, DEV_CONSOLE);
	assert_int_equal(c->endpoint, EP_SOCKET);
	assert_string_equal(c->ep_path, "/run/c.con");
	assert_int_equal(c->backlog, 16 << 10);
	assert_int_equal(c->cols, 132);
	assert_int_equal(c->rows, 50);
	assert_int_equal(c->queue_size, 0);      /* the largest the link carries */
	config_free(cfg);
}

static void test_image_missing(void **state)
{
	char want[512];
	snprintf(want, sizeof(want), "1: [block d] image: %s/none.img: No such file or directory", dir);
	char text[256];
	snprintf(text, sizeof(text), "[block d]\nsim = /s\nimage = %s/none.img\n", dir);
	expect_error(text, want);
}

/* image = null:SIZE: the null disk, no file; its size by the config's
 * size rules, a multiple of 512 and of block-size. */
static void test_null_image(void **state)
{
	char err[512];
	struct config *cfg;
	int r = load("[block n]\nsim = /s\nimage = null:1G\nread-only = yes\n"
		     "[block m]\nsim = /t\nimage = %s\nimage = null:0x1000\nblock-size = 4096\n"
		     "[block f]\nsim = /u\nimage = null:4K\nimage = %s\n",
		     err, sizeof(err), &cfg);
	if (r < 0)
		fail_msg("%s", err);
	assert_string_equal(cfg->devices[0].image, "null:1G");
	assert_int_equal(cfg->devices[0].null_size, 1ull << 30);
	assert_true(cfg->devices[0].read_only);
	assert_string_equal(cfg->devices[1].image, "null:0x1000");
	assert_int_equal(cfg->devices[1].null_size, 4096);
	/* the later value wins, and a file is no null disk */
	assert_string_equal(cfg->devices[2].image, img);
	assert_int_equal(cfg->devices[2].null_size, 0);
	config_free(cfg);

	static const char *const bad[] = { "null:", "null:0", "null:1000", "null:1T", "null:-512",
					   "null: 1G", "null:4KB", "null:99999999999999999999" };
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[256], want[256];
		snprintf(text, sizeof(text), "[block d]\nsim = /s\nimage = %s\n", bad[i]);
		snprintf(want, sizeof(want), "3: [block d] image: the null disk needs a size in "
			 "bytes, a multiple of 512, like null:1G (got '%s')", bad[i]);
		expect_error(text, want);
	}
	expect_error("[block d]\nsim = /s\nimage = null:6K\nblock-size = 4096\n",
		     "1: [block d] image: the null disk's size (6144 bytes) is not a multiple of "
		     "block-size 4096");
}

/* [cell NAME] sections and [daemon] root-cell (for jailhouse-cellmgr up/down). */

/* Parse text as is (no %s substitution). */
static int load_text(const char *text, char *err, size_t err_len, struct config **cfg)
{
	FILE *f = fopen(conf, "w");
	fputs(text, f);
	fclose(f);
	*cfg = NULL;
	return config_load(conf, cfg, err, err_len);
}

static void expect_text_error(const char *text, const char *msg)
{
	char err[1024], want[1024];
	struct config *cfg;
	assert_true(load_text(text, err, sizeof(err), &cfg) < 0);
	snprintf(want, sizeof(want), "%s:%s", conf, msg);
	assert_string_equal(err, want);
	assert_null(cfg);
}

static void test_cells_valid(void **state)
{
	char text[4096], err[1024];
	struct config *cfg;
	snprintf(text, sizeof(text),
		 "[daemon]\nroot-cell = %s\n"                                  /* 1-2 */
		 "[block d0]\nsim = /s0\nimage = %s\ncell = late\n"            /* 3-6 */
		 "[console c0]\nsim = /s1\nendpoint = stdio\ncell = early\n"   /* 7-10 */
		 "[block d1]\nsim = /s2\nimage = %s\n"                         /* 11-13 */
		 "[cell late]\nconfig = %s\nkernel = %s\ninitrd = %s\n"        /* 14-17 */
		 "cmdline = console=ttyS2,115200\ncmdline = earlyprintk\n"
		 "  quiet\norder = 5\n"
		 "[cell early]\nconfig = %s\nkernel = %s\ndtb = %s\norder = 1\n"   /* 22-26 */
		 "[cell dflt]\nconfig = %s\nkernel = %s\n",
		 img, img, img, img, img, img, img, img, img, img, img);
	if (load_text(text, err, sizeof(err), &cfg) < 0)
		fail_msg("%s", err);
	assert_string_equal(cfg->daemon.root_cell, img);
	assert_int_equal(cfg->daemon.root_cell_line, 2);
	assert_int_equal(cfg->ncells, 3);
	const struct cfg_cell *c = &cfg->cells[0];
	assert_string_equal(c->name, "late");
	assert_int_equal(c->line, 14);
	assert_string_equal(c->config, img);
	assert_string_equal(c->kernel, img);
	assert_string_equal(c->initrd, img);
	assert_int_equal(c->config_line, 15);
	assert_int_equal(c->initrd_line, 17);
	assert_true(c->cmdline_set);
	/* repeated keys and continuation lines are joined with a space */
	assert_string_equal(c->cmdline, "console=ttyS2,115200 earlyprintk quiet");
	assert_true(c->order_set);
	assert_int_equal(c->order, 5);
	assert_string_equal(cfg->cells[2].initrd, "");
	/* dtb: a readable file, for ARM cells (only `up` knows the architecture) */
	assert_string_equal(cfg->cells[1].dtb, img);
	assert_int_equal(cfg->cells[1].dtb_line, 25);
	assert_string_equal(cfg->cells[0].dtb, "");
	assert_int_equal(cfg->cells[0].dtb_line, 0);
	assert_false(cfg->cells[2].cmdline_set);
	assert_false(cfg->cells[2].order_set);
	assert_ptr_equal(config_find_cell(cfg, "early"), &cfg->cells[1]);
	assert_null(config_find_cell(cfg, "nope"));
	assert_int_equal(cfg->devices[0].cell_line, 6);
	assert_int_equal(cfg->devices[2].cell_line, 0);
	unsigned idx[3];
	config_cell_boot_order(cfg, idx);
	/* dflt counts as 0, then early (1), then late (5) */
	assert_int_equal(idx[0], 2);
	assert_int_equal(idx[1], 1);
	assert_int_equal(idx[2], 0);
	config_free(cfg);

	/* Without order keys the file order is the boot order. */
	snprintf(text, sizeof(text),
		 "[block d]\nsim = /s\nimage = %s\n[cell b]\nconfig = %s\nkernel = %s\n"
		 "[cell a]\nconfig = %s\nkernel = %s\n[cell c]\nconfig = %s\nkernel = %s\norder = 0\n",
		 img, img, img, img, img, img, img);
	if (load_text(text, err, sizeof(err), &cfg) < 0)
		fail_msg("%s", err);
	config_cell_boot_order(cfg, idx);
	assert_int_equal(idx[0], 0);
	assert_int_equal(idx[1], 1);
	assert_int_equal(idx[2], 2);
	config_free(cfg);
}

static void test_cell_errors(void **state)
{
	char text[2048], msg[1024];
	const char *dev = "[block d]\nsim = /s\nimage = /dev/null\n";   /* lines 1-3 */

	snprintf(text, sizeof(text), "%s[cell a]\nkernel = %s\n", dev, img);
	expect_text_error(text, "4: [cell a]: missing key 'config' (the cell's .cell file)");
	snprintf(text, sizeof(text), "%s[cell a]\nconfig = %s\ncmdline = x\n", dev, img);
	expect_text_error(text, "4: [cell a]: missing key 'kernel' (the Linux kernel to boot: x86 "
			  "bzImage, arm64 Image or ARM zImage)");

	snprintf(text, sizeof(text), "%s[cell a]\nkernel = %s\nconfig = %s/none.cell\n", dev, img, dir);
	snprintf(msg, sizeof(msg), "6: [cell a] config: %s/none.cell: No such file or directory", dir);
	expect_text_error(text, msg);
	snprintf(text, sizeof(text), "%s[cell a]\nconfig = %s\nkernel = %s/bz\n", dev, img, dir);
	snprintf(msg, sizeof(msg), "6: [cell a] kernel: %s/bz: No such file or directory", dir);
	expect_text_error(text, msg);
	snprintf(text, sizeof(text), "%s[cell a]\nconfig = %s\nkernel = %s\ninitrd = %s/rd\n", dev,
		 img, img, dir);
	snprintf(msg, sizeof(msg), "7: [cell a] initrd: %s/rd: No such file or directory", dir);
	expect_text_error(text, msg);
	snprintf(text, sizeof(text), "%s[cell a]\nconfig = %s\nkernel = %s\ndtb = %s/cell.dtb\n", dev,
		 img, img, dir);
	snprintf(msg, sizeof(msg), "7: [cell a] dtb: %s/cell.dtb: No such file or directory", dir);
	expect_text_error(text, msg);
	snprintf(text, sizeof(text), "%s[cell a]\nconfig = %s\nkernel = %s\ndtb =\n", dev, img, img);
	expect_text_error(text, "7: [cell a] dtb: needs a file name");
	snprintf(text, sizeof(text), "[daemon]\nroot-cell = %s/root.cell\n%s", dir, dev);
	snprintf(msg, sizeof(msg), "2: [daemon] root-cell: %s/root.cell: No such file or directory",
		 dir);
	expect_text_error(text, msg);

	snprintf(text, sizeof(text), "%s[cell a]\nconfig = %s\nkernel = %s\norder = first\n", dev,
		 img, img);
	expect_text_error(text, "7: [cell a] order: must be a number from 0 to 9999 (got 'first')");
	snprintf(text, sizeof(text), "%s[cell a]\nconfig = %s\nkernel = %s\norder = 10000\n", dev,
		 img, img);
	expect_text_error(text, "7: [cell a] order: must be a number from 0 to 9999 (got '10000')");
	snprintf(text, sizeof(text), "%s[cell a]\nconfig = %s\nimage = %s\n", dev, img, img);
	expect_text_error(text, "6: [cell a] image: unknown key");
	expect_text_error("[cell]\n", "1: [cell]: a cell section needs one name of letters, digits, "
			  "'-', '_' or '.' (e.g. [cell linux-1])");
	expect_text_error("[cell a b]\n", "1: [cell a b]: a cell section needs one name of letters, "
			  "digits, '-', '_' or '.' (e.g. [cell linux-1])");
	snprintf(text, sizeof(text), "%s[cell a]\nconfig = %s\nkernel = %s\n[cell a]\n", dev, img, img);
	expect_text_error(text, "7: [cell a]: duplicate cell name 'a' (first at line 4)");

	/* With [cell] sections, `cell =` must name one of them (the error is at the key). */
	snprintf(text, sizeof(text),
		 "[block d]\nsim = /s\ncell = linux-2\nimage = /dev/null\n"
		 "[cell linux-1]\nconfig = %s\nkernel = %s\n[cell linux-3]\nconfig = %s\nkernel = %s\n",
		 img, img, img, img);
	expect_text_error(text, "3: [block d] cell: there is no [cell linux-2] section "
			  "(cells: linux-1, linux-3)");
	snprintf(text, sizeof(text),
		 "[console c]\nsim = /s\nendpoint = stdio\n\ncell = x\n"
		 "[cell y]\nconfig = %s\nkernel = %s\n", img, img);
	expect_text_error(text, "5: [console c] cell: there is no [cell x] section (cells: y)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_daemon_handover_keys),
		cmocka_unit_test(test_io_engine_key),
		cmocka_unit_test(test_cache_key),
		cmocka_unit_test(test_cache_none_no_direct),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_missing_keys),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_structure_errors),
		cmocka_unit_test(test_image_missing),
		cmocka_unit_test(test_null_image),
		cmocka_unit_test(test_console_errors),
		cmocka_unit_test(test_console_valid),
		cmocka_unit_test(test_cells_valid),
		cmocka_unit_test(test_cell_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
